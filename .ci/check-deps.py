#!/usr/bin/env python3
"""Fails when a workspace crate depends on one it may not (DESIGN.md §2).

Reads `cargo metadata` and checks every normal and build dependency between
workspace crates against the ladder below: a crate may depend only on the
crates listed for it (all of them lower down), so dependencies point down,
nothing imports the server, and there are no circles. DataFusion may be a
dependency of tongban-sync alone. Dev-dependencies (tests) are not checked.
Keep this table and docs/architecture.md's crate graph the same.
"""
import json
import subprocess
import sys

# crate -> the workspace crates it may depend on.
ALLOWED = {
    "tongban-policies": set(),
    "tongban-catalog": {"tongban-policies"},
    "tongban-connectors": set(),
    "tongban-datasets": {"tongban-catalog"},
    "tongban-audit": set(),
    "tongban-lookup": {"tongban-policies", "tongban-catalog", "tongban-datasets"},
    "tongban-sync": {"tongban-policies", "tongban-catalog", "tongban-connectors", "tongban-datasets"},
    "tongban-datagen": {"tongban-policies", "tongban-catalog", "tongban-datasets", "tongban-core"},
    "tongban-core": {"tongban-policies", "tongban-catalog", "tongban-audit", "tongban-datasets",
                     "tongban-lookup"},
    # Interface calls: one more release path over the pipeline.
    "tongban-services": {"tongban-policies", "tongban-catalog", "tongban-audit", "tongban-core"},
    "tongban-delivery": {"tongban-policies", "tongban-catalog", "tongban-connectors",
                         "tongban-datasets", "tongban-audit", "tongban-core"},
    "tongban-console": {"tongban-policies", "tongban-catalog", "tongban-audit", "tongban-core",
                        "tongban-delivery", "tongban-services"},
    # The composition root: the transports and the wiring of the others.
    "tongban-server": {"tongban-policies", "tongban-catalog", "tongban-connectors",
                       "tongban-datasets", "tongban-audit", "tongban-lookup", "tongban-sync",
                       "tongban-core", "tongban-delivery", "tongban-services",
                       "tongban-console"},
    # The `tongban` binary (CLI, demo) on top of everything: a binary only,
    # which nothing can import.
    "tongban-hub": {"tongban-policies", "tongban-catalog", "tongban-connectors", "tongban-datasets",
                    "tongban-audit", "tongban-lookup", "tongban-sync", "tongban-core",
                    "tongban-delivery", "tongban-services", "tongban-console", "tongban-server",
                    "tongban-datagen"},
    "tongban-benches": {"tongban-policies", "tongban-datasets", "tongban-lookup", "tongban-audit"},
}
ONLY_IN_SYNC = {"datafusion"}


def main() -> int:
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"],
        check=True, capture_output=True, text=True,
    ).stdout
    meta = json.loads(out)
    members = {p["name"]: p for p in meta["packages"]}
    problems = []
    for name, pkg in sorted(members.items()):
        if name not in ALLOWED:
            problems.append(f"{name}: not in the ladder of .ci/check-deps.py; add it with what it may depend on")
            continue
        for dep in pkg["dependencies"]:
            if dep.get("kind") == "dev":
                continue
            d = dep["name"]
            if d in members and d not in ALLOWED[name]:
                problems.append(f"{name} depends on {d}: not allowed (dependencies point down; see docs/architecture.md)")
            bin_only = all(t["kind"] == ["bin"] for t in pkg["targets"] if t["kind"] != ["test"])
            if d == "tongban-server" and not bin_only:
                problems.append(f"{name} depends on tongban-server but is a library: nothing imports the server")
            if d in ONLY_IN_SYNC and name != "tongban-sync":
                problems.append(f"{name} depends on {d}: DataFusion belongs to tongban-sync alone")
    # The table itself must point down: no circles.
    seen, stack = set(), set()

    def visit(n):
        if n in stack:
            problems.append(f"the ladder has a circle through {n}")
            return
        if n in seen:
            return
        stack.add(n)
        for d in ALLOWED.get(n, ()):
            visit(d)
        stack.discard(n)
        seen.add(n)

    for n in ALLOWED:
        visit(n)
    for p in problems:
        print(f"dependency check: {p}")
    if not problems:
        print(f"dependency check: {len(members)} crates, every dependency points down")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
