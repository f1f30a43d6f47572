"""pyarrow.flight against the hub's Flight endpoint over TLS.

Argument: one JSON object with `url` (grpc+tls://HOST:PORT), `ca` (the CA
file that signs the hub's certificate), `cert` and `key` (a client
certificate registered to a department), `stranger_cert`/`stranger_key`
(one nobody registered), `token`, `cmd` and `keys` (a DoExchange lookup).
Prints a JSON object: what each kind of caller got.
"""

import json
import sys

import pyarrow as pa
import pyarrow.flight as flight


def exchange(fl: flight.FlightClient, options, cmd: dict, keys: list) -> dict:
    descriptor = flight.FlightDescriptor.for_command(json.dumps(cmd).encode())
    batch = pa.record_batch([pa.array(keys, pa.utf8())], names=["key"])
    writer, reader = fl.do_exchange(descriptor, options=options)
    with writer:
        writer.begin(batch.schema)
        writer.write_batch(batch)
        writer.done_writing()
        table = reader.read_all()
    return {"columns": table.column_names, "found": table.column("found").to_pylist()}


def attempt(f) -> dict:
    try:
        return {"ok": f()}
    except flight.FlightError as e:
        return {"error": type(e).__name__, "message": str(e)[:200]}


def main() -> None:
    a = json.loads(sys.argv[1])
    ca = open(a["ca"], "rb").read()
    read = lambda p: open(p, "rb").read()
    no_headers = flight.FlightCallOptions()
    bearer = flight.FlightCallOptions(
        headers=[(b"authorization", f"Bearer {a['token']}".encode())]
    )
    out = {}
    # A registered client certificate is the identity: no token at all.
    with flight.FlightClient(a["url"], tls_root_certs=ca, cert_chain=read(a["cert"]),
                             private_key=read(a["key"])) as fl:
        out["certificate"] = attempt(lambda: exchange(fl, no_headers, a["cmd"], a["keys"]))
    # TLS without a certificate: a token works, nothing does not.
    with flight.FlightClient(a["url"], tls_root_certs=ca) as fl:
        out["token"] = attempt(lambda: exchange(fl, bearer, a["cmd"], a["keys"]))
        out["nothing"] = attempt(lambda: exchange(fl, no_headers, a["cmd"], a["keys"]))
    # A certificate from the CA that nobody registered identifies nobody.
    with flight.FlightClient(a["url"], tls_root_certs=ca, cert_chain=read(a["stranger_cert"]),
                             private_key=read(a["stranger_key"])) as fl:
        out["stranger"] = attempt(lambda: exchange(fl, no_headers, a["cmd"], a["keys"]))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
