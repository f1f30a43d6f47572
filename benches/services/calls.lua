-- wrk script for the interface-call benchmark (benches/services/run.sh).
--
--   direct backend and nginx (the provider's own GET):
--     wrk -t2 -c32 -d10s --latency -s calls.lua http://127.0.0.1:7401 -- get KEYS_FILE
--   through the hub (POST /v1/call/..., policy and audit on):
--     wrk -t2 -c32 -d10s --latency -s calls.lua http://127.0.0.1:18290 -- call KEYS_FILE TOKEN
--
-- Every thread reads the keys file (one citizen ID a line) and pre-builds one
-- complete HTTP request per key, so the Lua side only returns a prepared
-- string per request; threads start at different offsets and cycle through
-- all keys, so no target serves one hot key. Responses other than 200 are
-- counted and reported by `done` as a line `non200 N` (run.sh greps it),
-- with the latency percentiles in microseconds.

local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

function init(args)
   local mode, keys_file, token = args[1], args[2], args[3]
   requests = {}
   local i = 0
   for key in io.lines(keys_file) do
      if key ~= "" then
         i = i + 1
         if mode == "get" then
            requests[i] = wrk.format("GET", "/api/v1/insurance/contributions/" .. key)
         elseif mode == "call" then
            local body = '{"matter":"310000-JZZJF-001","case":"BENCH-' .. i
               .. '","params":{"citizen_id":"' .. key .. '"}}'
            requests[i] = wrk.format("POST", "/v1/call/302/000101/contribution-status", {
               ["Authorization"] = "Bearer " .. token,
               ["Content-Type"] = "application/json",
            }, body)
         else
            error("mode must be get or call, not " .. tostring(mode))
         end
      end
   end
   count = i
   if count == 0 then error("no keys in " .. keys_file) end
   next_req = (id * 7919) % count
   non200 = 0
end

function request()
   next_req = next_req + 1
   if next_req > count then next_req = 1 end
   return requests[next_req]
end

function response(status, headers, body)
   if status ~= 200 then
      non200 = non200 + 1
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
