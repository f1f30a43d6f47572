"""Helper of benches/sharing/run.sh: a 1M-row subscription read with the
official `delta-sharing` client against a local pyarrow read of the same
Parquet files.

    read.py setup BASE CREDENTIALS PROFILE NAME
        as the acceptance office (a city department: no return flow), files a
        `subscribe` need for every item of 101/000001 that may leave in bulk,
        has it approved by the provider (sh-gaj) and the data office, makes
        the pull subscription NAME and writes its Delta Sharing profile to
        PROFILE; prints `subscription ID` and `table SHARE.SCHEMA.NAME`.
    read.py files PROFILE TABLE DATA_DIR SUBSCRIPTION OUT
        queries the table once (the hub writes the shared files then; its
        time is printed), downloads every file the answer points at, and
        finds each one, byte for byte (SHA-256), among the Parquet files of
        the subscription's folder in the hub's dataset store
        (DATA_DIR/sharing/sub-<id>); writes their local paths to OUT; prints
        the files, rows, bytes and the rows of the raw dataset version
        (DATA_DIR/datasets/101-000001/v<version>[-<suffix>]).
    read.py rounds PROFILE TABLE FILES ROUNDS ROWS [HUB_PID]
        R rounds, each (a) delta_sharing.load_as_pandas then (b) a local
        pyarrow.parquet.read_table -> to_pandas of the same files, asserting
        ROWS rows each time; then, for where the time goes, best-of-R
        diagnostics: the query alone, a plain download of the files, and the
        client's own per-file conversion run on the local files; with
        PROFILE=1 in the environment, a cProfile of one more load_as_pandas
        (standard error).

Machine-readable `key value` lines on standard output; progress on standard
error.
"""

import gc
import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.request

import delta_sharing
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from delta_sharing.protocol import DeltaSharingProfile, Table
from delta_sharing.rest_client import DataSharingRestClient
from pyarrow.dataset import dataset

RESOURCE = "101/000001"
# Every item of the population resource that may leave in bulk: religion and
# health_status are never shared, phone is on the negative list for
# subscribe/batch.
ITEMS = [
    "citizen_id", "name", "gender", "ethnicity", "birth_date", "household_division",
    "household_address", "residence_address", "residence_street", "marital_status",
    "education", "status",
]


def out(key, value):
    print(f"{key} {value}", flush=True)


def say(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- setup

def api(base, token, method, path, body=None, expect=(200, 201)):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    if status not in expect:
        sys.exit(f"read.py: {method} {path}: {status} {text}")
    return text


def setup(base, creds_path, profile_path, name):
    tokens = {t["label"]: t["token"] for t in json.load(open(creds_path))["tokens"]}
    office, provider, consumer = tokens["data-office"], tokens["public-security"], tokens["acceptance"]
    need = json.loads(api(base, consumer, "POST", "/v1/lists/needs", {
        "resource": RESOURCE, "items": ITEMS, "matter": "310000-RKFX-001", "mode": "subscribe",
        "matter_name": "全市人口数据分析",
        "justification": "基准测试：全市实有人口数据按日订阅（Delta Sharing）",
    }))["id"]
    api(base, provider, "POST", f"/v1/lists/needs/{need}/approve", {"reason": "同意"})
    api(base, office, "POST", f"/v1/lists/needs/{need}/approve", {})
    sub = json.loads(api(base, consumer, "POST", "/v1/subscriptions", {
        "name": name, "resource": RESOURCE, "need": need, "channel": {"type": "pull"},
    }))
    profile = api(base, consumer, "POST", "/v1/sharing/profile")
    fd = os.open(profile_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(profile)
    # The table as the client lists it (the share is the base library).
    tables = [t for t in delta_sharing.SharingClient(profile_path).list_all_tables() if t.name == name]
    if len(tables) != 1:
        sys.exit(f"read.py: the profile lists {len(tables)} tables named {name}")
    t = tables[0]
    out("need", need)
    out("subscription", sub["id"])
    out("table", f"{t.share}.{t.schema}.{t.name}")


# ---------------------------------------------------------------- files

def rest(profile_path):
    return DataSharingRestClient(DeltaSharingProfile.read_from_file(profile_path))


def table_of(name):
    share, schema, table = name.split(".")
    return Table(name=table, share=share, schema=schema)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def one_dir(what, found):
    if len(found) != 1:
        sys.exit(f"read.py: {len(found)} folders for {what}: {found}")
    return found[0]


def files(profile_path, table, data_dir, sub_id, out_path):
    client = rest(profile_path)
    t0 = time.perf_counter()
    answer = client.list_files_in_table(table_of(table))
    out("first_query_s", f"{time.perf_counter() - t0:.3f}")
    version = delta_sharing.get_table_version(f"{profile_path}#{table}")
    # The store's root is the data dir: sharing/ is beside datasets/.
    sharing_dir = one_dir(f"subscription {sub_id}", [
        root for root, _, _ in os.walk(data_dir)
        if root.endswith(os.path.join("sharing", f"sub-{sub_id}"))])
    dataset_dir = os.path.join(data_dir, "datasets", RESOURCE.replace("/", "-"))
    raw = one_dir(f"version {version} in {dataset_dir}", [
        os.path.join(dataset_dir, n) for n in sorted(os.listdir(dataset_dir))
        if (n == f"v{version}" or n.startswith(f"v{version}-")) and not n.endswith("-changes")])
    local = {}
    for root, _, names in os.walk(sharing_dir):
        for n in names:
            if n.endswith(".parquet"):
                p = os.path.join(root, n)
                with open(p, "rb") as f:
                    local.setdefault(sha256(f.read()), []).append(p)
    paths = []
    for a in answer.add_files:
        with urllib.request.urlopen(a.url, timeout=300) as r:
            body = r.read()
        if len(body) != a.size:
            sys.exit(f"read.py: file {a.id}: {len(body)} bytes downloaded, {a.size} announced")
        found = local.get(sha256(body))
        if not found:
            sys.exit(f"read.py: file {a.id} ({a.size} bytes) is none of the files under {sharing_dir}")
        paths.append(found[0])
    if len(set(paths)) != len(paths):
        sys.exit("read.py: two served files are the same local file")
    folders = {os.path.dirname(p) for p in paths}
    if len(folders) != 1:
        sys.exit(f"read.py: the served files are in {len(folders)} folders: {sorted(folders)}")
    folder = folders.pop()
    manifest = json.load(open(os.path.join(folder, "manifest.json")))
    listed = {os.path.basename(f["path"]) for f in manifest["files"]}
    if listed != {os.path.basename(p) for p in paths}:
        sys.exit(f"read.py: the query's files are not the manifest's in {folder}")
    extra = [p for ps in local.values() for p in ps
             if os.path.dirname(p) == folder and p not in paths]
    if extra:
        sys.exit(f"read.py: files in {folder} that the query did not serve: {extra}")
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in paths)
    raw_rows = sum(pq.ParquetFile(os.path.join(raw, n)).metadata.num_rows
                   for n in os.listdir(raw) if n.endswith(".parquet"))
    with open(out_path, "w") as f:
        f.write("".join(p + "\n" for p in paths))
    out("version", version)
    out("folder", folder)
    out("dataset_folder", raw)
    out("files", len(paths))
    out("bytes", sum(os.path.getsize(p) for p in paths))
    out("rows", rows)
    out("dataset_rows", raw_rows)
    out("columns", len(pq.ParquetFile(paths[0]).schema_arrow))
    out("same_bytes", "yes")


# ---------------------------------------------------------------- rounds

def cpu_of(pid):
    """CPU seconds (user + system) process `pid` has used so far."""
    if not pid:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(fn, hub_pid=None):
    gc.collect()
    h0, c0, t0 = cpu_of(hub_pid), time.process_time(), time.perf_counter()
    result = fn()
    t = time.perf_counter() - t0
    return result, t, time.process_time() - c0, cpu_of(hub_pid) - h0


def rounds(profile_path, table, files_path, n, rows, hub_pid):
    url = f"{profile_path}#{table}"
    paths = open(files_path).read().split()
    client = rest(profile_path)
    tbl = table_of(table)

    def local_arrow():
        return pq.read_table(paths)

    # Warm-up, not counted: both paths once (imports, page cache, pools).
    say("warm-up: load_as_pandas and the local read once")
    df = delta_sharing.load_as_pandas(url)
    assert len(df) == rows, f"load_as_pandas: {len(df)} rows, expected {rows}"
    columns = list(df.columns)
    del df
    t = local_arrow().to_pandas()
    assert len(t) == rows, f"local read: {len(t)} rows, expected {rows}"
    assert sorted(t.columns) == sorted(columns), f"columns differ: {list(t.columns)} / {columns}"
    del t

    best = {}

    def keep(key, value):
        best[key] = min(best.get(key, float("inf")), value)

    for r in range(1, n + 1):
        df, t_load, cpu_load, hub_load = timed(lambda: delta_sharing.load_as_pandas(url), hub_pid)
        got = len(df)
        del df
        assert got == rows, f"round {r}: load_as_pandas gave {got} rows, expected {rows}"

        gc.collect()
        t0 = time.perf_counter()
        c0 = time.process_time()
        arrow = local_arrow()
        t_arrow = time.perf_counter() - t0
        pdf = arrow.to_pandas()
        t_local = time.perf_counter() - t0
        cpu_local = time.process_time() - c0
        got = len(pdf)
        del pdf, arrow
        assert got == rows, f"round {r}: the local read gave {got} rows, expected {rows}"

        say(f"round {r}: load_as_pandas {t_load:.3f} s (client CPU {cpu_load:.2f} s, hub CPU "
            f"{hub_load:.2f} s); local read_table+to_pandas {t_local:.3f} s (read_table "
            f"{t_arrow:.3f} s; CPU {cpu_local:.2f} s)")
        out(f"round{r}", f"{t_load:.3f} {t_local:.3f} {t_arrow:.3f}")
        for k, v in (("load_s", t_load), ("local_s", t_local), ("arrow_s", t_arrow)):
            keep(k, v)
        if t_load == best["load_s"]:
            best["load_cpu_s"], best["load_hub_cpu_s"] = cpu_load, hub_load
        if t_local == best["local_s"]:
            best["local_cpu_s"] = cpu_local

    # Where load_as_pandas's time goes (not part of the target).
    say("diagnostics: the query alone, a plain download, the client's conversion on local files")
    for _ in range(n):
        answer, t_query, _, _ = timed(lambda: client.list_files_in_table(tbl))
        keep("query_s", t_query)

        def download():
            size = 0
            for a in answer.add_files:
                with urllib.request.urlopen(a.url, timeout=300) as resp:
                    size += len(resp.read())
            return size

        _, t_dl, _, hub_dl = timed(download, hub_pid)
        keep("download_s", t_dl)
        if t_dl == best["download_s"]:
            best["download_hub_cpu_s"] = hub_dl

        def client_conversion():
            # DeltaSharingReader._to_pandas (delta-sharing 1.4.2), minus HTTP:
            # one file at a time, one thread, dates as Python objects.
            pdfs = [
                dataset(source=p, format="parquet").to_table().to_pandas(
                    date_as_object=True, use_threads=False, split_blocks=False, self_destruct=True)
                for p in paths
            ]
            return pd.concat(pdfs, axis=0, ignore_index=True, copy=False)

        pdf, t_conv, _, _ = timed(client_conversion)
        assert len(pdf) == rows
        del pdf
        keep("client_conversion_s", t_conv)

        def local_arrow_to_pandas_like_client():
            return local_arrow().to_pandas(date_as_object=True, use_threads=False, split_blocks=False)

        pdf, t_one, _, _ = timed(local_arrow_to_pandas_like_client)
        del pdf
        keep("local_one_thread_s", t_one)

    if os.environ.get("PROFILE") == "1":
        import cProfile
        import pstats
        say("cProfile of one load_as_pandas (PROFILE=1), by own time:")
        prof = cProfile.Profile()
        prof.enable()
        delta_sharing.load_as_pandas(url)
        prof.disable()
        pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(15)

    for k in sorted(best):
        out(k, f"{best[k]:.3f}")
    out("versions", f"delta-sharing {delta_sharing.__version__}, pyarrow {pa.__version__}, "
        f"pandas {pd.__version__}")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "setup":
        setup(*args)
    elif cmd == "files":
        files(*args)
    elif cmd == "rounds":
        profile, table, files_path, n, rows = args[:5]
        hub_pid = int(args[5]) if len(args) > 5 and args[5] else None
        rounds(profile, table, files_path, int(n), int(rows), hub_pid)
    else:
        sys.exit(f"read.py: unknown command {cmd}")


if __name__ == "__main__":
    main()
