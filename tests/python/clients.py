"""Reads one subscription with the official Python clients, as a department
would, and prints what they returned as JSON on standard output.

    python clients.py '{"profile": "config.share", "table": "share.schema.table",
                        "start": 1, "end": 2, "flight": "grpc://127.0.0.1:8081",
                        "token": "tb_...", "subscription": "payments",
                        "exchange": {"cmd": {...}, "keys": ["..."], "denied": {...}}}'

- delta_sharing: the tables listed, the table version, load_as_pandas and
  load_table_changes_as_pandas(start, end);
- pyarrow.flight: ListFlights and DoGet of the subscription's newest version;
  DoExchange of the keys under `cmd` (a lookup), and under `denied`, whose
  refusal is printed as the error's class.

Values are printed as text (None for nulls) so that the caller compares them
exactly; the assertions live in the Rust test that runs this script.
"""

import json
import sys

import delta_sharing
import pandas as pd
import pyarrow as pa
import pyarrow.flight as flight


def rows(df: pd.DataFrame) -> list:
    return [
        [None if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v) for v in row]
        for row in df.itertuples(index=False)
    ]


def frame(df: pd.DataFrame) -> dict:
    return {"columns": [str(c) for c in df.columns], "rows": rows(df)}


def exchange(fl: flight.FlightClient, options, cmd: dict, keys: list) -> pa.Table:
    """DoExchange as pyarrow's documentation has it: a command descriptor,
    begin(schema), one batch of keys, done_writing(), then read the answers."""
    descriptor = flight.FlightDescriptor.for_command(json.dumps(cmd).encode())
    batch = pa.record_batch([pa.array(keys, pa.utf8())], names=["key"])
    writer, reader = fl.do_exchange(descriptor, options=options)
    with writer:
        writer.begin(batch.schema)
        writer.write_batch(batch)
        writer.done_writing()
        return reader.read_all()


def main() -> None:
    args = json.loads(sys.argv[1])
    url = f"{args['profile']}#{args['table']}"
    out = {}
    client = delta_sharing.SharingClient(args["profile"])
    out["tables"] = sorted(f"{t.share}.{t.schema}.{t.name}" for t in client.list_all_tables())
    out["version"] = delta_sharing.get_table_version(url)
    out["snapshot"] = frame(delta_sharing.load_as_pandas(url))
    out["limited"] = len(delta_sharing.load_as_pandas(url, limit=3))
    out["changes"] = frame(
        delta_sharing.load_table_changes_as_pandas(
            url, starting_version=args["start"], ending_version=args["end"]
        )
    )

    fl = flight.FlightClient(args["flight"])
    options = flight.FlightCallOptions(
        headers=[(b"authorization", f"Bearer {args['token']}".encode())]
    )
    out["flights"] = sorted(
        "/".join(p.decode() for p in f.descriptor.path) for f in fl.list_flights(options=options)
    )
    ticket = flight.Ticket(json.dumps({"subscription": args["subscription"]}).encode())
    table = fl.do_get(ticket, options=options).read_all()
    out["flight"] = frame(table.to_pandas())

    ask = args["exchange"]
    out["exchange"] = frame(exchange(fl, options, ask["cmd"], ask["keys"]).to_pandas())
    try:
        exchange(fl, options, ask["denied"], ask["keys"])
        out["exchange_denied"] = None
    except flight.FlightError as e:
        out["exchange_denied"] = type(e).__name__
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
