#!/usr/bin/env python3
"""Flight DoExchange throughput of the lookup benchmark (benches/lookup/run.sh),
with pyarrow as the client: Arrow batches of keys in, Arrow batches of the
permitted, masked items out, no JSON.

    flight.py GRPC_URL TOKEN KEYS_FILE N [--batch 65536] [--items name,gender]

Sends N keys (the keys file cycled) as Utf8 batches of --batch keys in one
exchange, reading the answers on the main thread while a second thread
writes (the hub answers batch for batch, so a writer that never reads would
stall on flow control). One untimed warm-up exchange of the keys file first.
Prints `keys N`, `found F`, `errors E`, `seconds S`, `keys_per_s K`.
"""

import argparse
import json
import threading
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as flight


def exchange(client, options, cmd, batches):
    descriptor = flight.FlightDescriptor.for_command(json.dumps(cmd).encode())
    writer, reader = client.do_exchange(descriptor, options=options)
    failed = []

    def write():
        try:
            writer.begin(batches[0].schema)
            for b in batches:
                writer.write_batch(b)
            writer.done_writing()
        except Exception as e:  # reported by the reader's side
            failed.append(e)

    t = threading.Thread(target=write)
    t.start()
    keys = found = errors = 0
    for chunk in reader:
        b = chunk.data
        keys += b.num_rows
        found += pc.sum(b.column("found")).as_py() or 0
        errors += b.num_rows - b.column("error").null_count
    t.join()
    writer.close()
    if failed:
        raise failed[0]
    return keys, found, errors


def main():
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("token")
    p.add_argument("keys_file")
    p.add_argument("n", type=int)
    p.add_argument("--batch", type=int, default=65536)
    p.add_argument("--items", default="name,gender")
    p.add_argument("--resource", default="101/000001")
    a = p.parse_args()
    keys = open(a.keys_file).read().split()
    cmd = {"resource": a.resource, "matter": "310000-JZZ-001", "case": "BENCH-FLIGHT",
           "items": a.items.split(",")}
    options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {a.token}".encode())])
    client = flight.FlightClient(a.url)

    def batches(n):
        out, i = [], 0
        while i < n:
            m = min(a.batch, n - i)
            vals = [keys[(i + j) % len(keys)] for j in range(m)]
            out.append(pa.record_batch([pa.array(vals, pa.utf8())], names=["key"]))
            i += m
        return out

    exchange(client, options, cmd, batches(len(keys)))  # warm-up
    timed = batches(a.n)  # built before the clock starts
    t0 = time.perf_counter()
    n, found, errors = exchange(client, options, cmd, timed)
    s = time.perf_counter() - t0
    print(f"keys {n}\nfound {found}\nerrors {errors}\nseconds {s:.3f}\nkeys_per_s {n / s:.0f}")
    if n != a.n:
        raise SystemExit(f"flight.py: {n} answers for {a.n} keys")


if __name__ == "__main__":
    main()
