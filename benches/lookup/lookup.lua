-- wrk script for the lookup benchmark (benches/lookup/run.sh).
--
--   wrk -t2 -c64 -d20s --latency -s lookup.lua http://127.0.0.1:18180 -- KEYS_FILE TOKEN
--
-- Every thread reads the keys file (one citizen ID a line) and pre-builds one
-- complete HTTP request per key, so the Lua side only returns a prepared
-- string per request. Threads start at different offsets and cycle through
-- all keys. Responses other than 200 are counted in `response` and reported
-- by `done` as a line `non200 N` (the script greps it).

local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

function init(args)
   local keys_file, token = args[1], args[2]
   local path = "/v1/lookup/101/000001"
   local headers = {
      ["Authorization"] = "Bearer " .. token,
      ["Content-Type"] = "application/json",
   }
   requests = {}
   local i = 0
   for key in io.lines(keys_file) do
      if key ~= "" then
         i = i + 1
         local body = '{"keys":["' .. key .. '"],"items":["name","gender","residence_address"],'
            .. '"matter":"310000-JZZ-001","case":"BENCH-' .. i .. '"}'
         requests[i] = wrk.format("POST", path, headers, body)
      end
   end
   count = i
   -- spread the threads over the key list
   next_req = (id * 7919) % count
   non200 = 0
   statuses = {}
end

function request()
   next_req = next_req + 1
   if next_req > count then next_req = 1 end
   return requests[next_req]
end

function response(status, headers, body)
   if status ~= 200 then
      non200 = non200 + 1
      statuses[status] = (statuses[status] or 0) + 1
   end
end

function done(summary, latency, requests)
   local total = 0
   for _, t in ipairs(threads) do
      total = total + (t:get("non200") or 0)
   end
   io.write(string.format("non200 %d\n", total))
   io.write(string.format("socket_errors connect=%d read=%d write=%d timeout=%d status=%d\n",
      summary.errors.connect, summary.errors.read, summary.errors.write,
      summary.errors.timeout, summary.errors.status))
   for _, p in ipairs({50, 90, 99, 99.9}) do
      io.write(string.format("latency_us p%s %d\n", p, latency:percentile(p)))
   end
   io.write(string.format("requests %d duration_us %d\n", summary.requests, summary.duration))
end
