#!/usr/bin/env python3
"""Inputs of the lookup benchmark (benches/lookup/run.sh), from the hub's own
Parquet file of the population library (resource 101/000001).

    prepare.py PARQUET OUT_DIR [--keys 100000] [--seed 7]

Writes into OUT_DIR:

- keys.txt      a seeded random sample of real citizen IDs, one a line, shuffled;
                wrk, the constant-rate generator and the stream all use it;
- people.csv    every row, with a leading 1-based row number `n`, all values as
                text (dates as YYYY-MM-DD), header line; for PostgreSQL's \\copy;
- keys.csv      `n,citizen_id` for the sampled keys (n = 1..K), for the
                pgbench variant that selects by citizen_id;
- redis.proto   SET key:%012d <JSON of name, gender, residence_address of the
                sampled row> in the Redis protocol, for `redis-cli --pipe`:
                the keys redis-benchmark -r K asks for hold the same rows' values;
- columns.txt   the Parquet column names, one a line (citizen_id first).

Prints `rows N` and `keys K`.
"""

import argparse
import json
import random
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("parquet")
    ap.add_argument("out_dir")
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()

    table = pq.read_table(a.parquet)
    rows = table.num_rows
    if "citizen_id" not in table.column_names:
        print(f"{a.parquet}: no citizen_id column", file=sys.stderr)
        return 1
    k = min(a.keys, rows)
    picked = random.Random(a.seed).sample(range(rows), k)  # shuffled order

    ids = table.column("citizen_id").to_pylist()
    sample = table.take(pa.array(picked, type=pa.int64()))
    names = sample.column("name").to_pylist()
    genders = sample.column("gender").to_pylist()
    addresses = sample.column("residence_address").to_pylist()

    with open(f"{a.out_dir}/keys.txt", "w", encoding="utf-8") as f:
        for i in picked:
            f.write(ids[i] + "\n")
    with open(f"{a.out_dir}/keys.csv", "w", encoding="utf-8") as f:
        for n, i in enumerate(picked, start=1):
            f.write(f"{n},{ids[i]}\n")
    with open(f"{a.out_dir}/redis.proto", "wb") as f:
        for n in range(k):
            key = f"key:{n:012d}".encode()
            value = json.dumps(
                {"name": names[n], "gender": genders[n], "residence_address": addresses[n]},
                ensure_ascii=False,
                separators=(",", ":"),
            ).encode()
            f.write(b"*3\r\n$3\r\nSET\r\n")
            f.write(b"$%d\r\n%s\r\n" % (len(key), key))
            f.write(b"$%d\r\n%s\r\n" % (len(value), value))

    text = [pa.array(range(1, rows + 1), type=pa.int64()).cast(pa.string())]
    for col in table.columns:
        text.append(pc.cast(col, pa.string()))
    csv_table = pa.table(text, names=["n"] + table.column_names)
    pacsv.write_csv(csv_table, f"{a.out_dir}/people.csv")
    with open(f"{a.out_dir}/columns.txt", "w", encoding="utf-8") as f:
        f.write("\n".join(table.column_names) + "\n")

    print(f"rows {rows}")
    print(f"keys {k}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
