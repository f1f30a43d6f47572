#!/usr/bin/env python3
"""Waits until every replica's index serves the expected versions, polling
the replicas' /metrics every 10 ms; prints when each first did.

    served.py TIMEOUT_S NAME=METRICS_URL... -- RESOURCE=VERSION...

Prints one line per replica and resource: `NAME RESOURCE VERSION EPOCH_MS`
(`never` for a version not served within TIMEOUT_S). Used by
benches/scaling/run.sh, started before the publish so that nothing served
before the first look is missed.
"""

import sys
import time
import urllib.request


def main():
    args = sys.argv[1:]
    timeout = float(args.pop(0))
    split = args.index("--")
    replicas = dict(a.split("=", 1) for a in args[:split])
    wanted = {r: v for r, v in (a.split("=", 1) for a in args[split + 1 :])}
    seen = {}
    deadline = time.time() + timeout
    while len(seen) < len(replicas) * len(wanted) and time.time() < deadline:
        for name, url in replicas.items():
            try:
                text = urllib.request.urlopen(url, timeout=2).read().decode()
            except OSError:
                continue
            at = int(time.time() * 1000)
            for resource, version in wanted.items():
                gauge = f'tongban_index_version{{resource="{resource}"}} {version}\n'
                if (name, resource) not in seen and gauge in text:
                    seen[(name, resource)] = at
        time.sleep(0.01)
    for name in replicas:
        for resource, version in wanted.items():
            print(name, resource, version, seen.get((name, resource), "never"))


main()
