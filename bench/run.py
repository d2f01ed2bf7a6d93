#!/usr/bin/env python3
"""kvdex benchmark harness: kvdex vs LlamaIndex's Python stores vs the raw engines,
side by side in one run, reported as ratios (machines here are shared and noisy).

    .venv/bin/python bench/run.py                 # default sizes (a few minutes)
    .venv/bin/python bench/run.py --nodes 2000 --small 20000   # tiny (CI)
    .venv/bin/python bench/run.py --nodes 1000000 --only-native  # 10x workload A

Writes bench/out/results.csv and bench/out/results.md and prints the tables.
Every measurement runs in its own process, so peak RSS belongs to it alone.

Redis and PostgreSQL rows (raw engines and LlamaIndex's stores; kvdex's when those
backends exist) run against the servers scripts/servers.sh starts; servers this run
started are stopped at its end. Rows that cannot run here (servers, client libraries or
Python packages not installed) are listed as not measured; under CI they fail the run.
"""
import argparse
import csv
import importlib.util
import json
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import workloads  # noqa: E402


FAILURES = []
MISSING = []  # {"impl", "store", "workload", "reason"}: rows this machine cannot measure
SERVERS_SH = ROOT / "scripts" / "servers.sh"
# The servers' addresses: scripts/servers.sh's defaults and the same overrides.
REDIS_PORT = os.environ.get("KVDEX_REDIS_PORT", "16379")
PG_CONNINFO = (f"host=127.0.0.1 port={os.environ.get('KVDEX_PG_PORT', '15432')} "
               f"dbname={os.environ.get('KVDEX_PG_DATABASE', 'kvdex')} user=postgres")


def run_rows(cmd, env=None):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        FAILURES.append(" ".join(map(str, cmd)))
        print(f"  ! {' '.join(map(str, cmd))} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}",
              file=sys.stderr)
        return []
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return rows


def python_stores() -> set:
    """The kvdex stores the Python module was built with ("lmdb" when it has LmdbKVStore)."""
    proc = subprocess.run([sys.executable, "-c", "import kvdex; print(hasattr(kvdex, 'LmdbKVStore'))"],
                          capture_output=True, text=True)
    return {"lmdb"} if proc.stdout.strip() == "True" else set()


def generate(out_dir: pathlib.Path, kind: str, n: int) -> pathlib.Path:
    path = out_dir / f"workload_{kind}_{n}.json"
    if not path.exists():
        t = time.time()
        pairs = workloads.workload_a(n) if kind == "A" else workloads.workload_b(n)
        workloads.write_persist_file(str(path) + ".tmp", "docstore/data" if kind == "A" else "data", pairs)
        os.replace(str(path) + ".tmp", path)
        print(f"  generated {path.name} ({path.stat().st_size / 1e6:.1f} MB) in {time.time() - t:.1f}s",
              file=sys.stderr)
    return path


def not_measured(impl, store, workloads, reason):
    """Records rows that cannot run here; in CI (which installs everything) that fails."""
    for workload in workloads:
        MISSING.append({"impl": impl, "store": store, "workload": workload, "reason": reason})
    print(f"  ! {impl} {store} rows not measured: {reason}", file=sys.stderr)
    if os.environ.get("CI"):
        FAILURES.append(f"{impl} {store}: {reason}")


def start_servers():
    """Starts Redis and PostgreSQL with scripts/servers.sh. Returns (running, started):
    the servers usable now and those this run started (and so stops)."""
    running, started = set(), set()
    for server in ("redis", "postgres"):
        was_up = subprocess.run(["bash", SERVERS_SH, "status", server], capture_output=True).returncode == 0
        proc = subprocess.run(["bash", SERVERS_SH, "start", server], capture_output=True, text=True)
        if proc.returncode == 0:
            running.add(server)
            if not was_up:
                started.add(server)
            continue
        reason = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        if proc.returncode == 2:  # servers.sh: the server's binaries are not installed
            not_measured(f"raw-{server}, llamaindex", server, ["A", "B"], reason)
        else:
            FAILURES.append(f"scripts/servers.sh start {server}")
            print(f"  ! scripts/servers.sh start {server} failed: {proc.stderr.strip()[-500:]}", file=sys.stderr)
    return running, started


CLUSTER_PORT = int(os.environ.get("KVDEX_REDIS_CLUSTER_PORT", "17000"))
CLUSTER_MASTERS = int(os.environ.get("KVDEX_REDIS_CLUSTER_MASTERS", "3"))
# (label, URI, the ports to flush before the row): kvdex's RedisKVStore on one node and
# RedisClusterKVStore on the cluster, LlamaIndex's layout and the sharded one.
CLUSTER_SETUPS = [
    ("redis 1 node", f"redis://127.0.0.1:{REDIS_PORT}", [int(REDIS_PORT)]),
    ("redis 1 node, sharded x3", f"redis://127.0.0.1:{REDIS_PORT}?shards=3", [int(REDIS_PORT)]),
    (f"redis-cluster {CLUSTER_MASTERS} masters", f"redis://127.0.0.1:{CLUSTER_PORT}?cluster=1",
     [CLUSTER_PORT + i for i in range(CLUSTER_MASTERS)]),
    (f"redis-cluster {CLUSTER_MASTERS} masters, sharded x{CLUSTER_MASTERS}",
     f"redis://127.0.0.1:{CLUSTER_PORT}?cluster=1&shards={CLUSTER_MASTERS}",
     [CLUSTER_PORT + i for i in range(CLUSTER_MASTERS)]),
]


def start_cluster(started) -> bool:
    """scripts/servers.sh start cluster; True if it runs (added to `started` if this run
    started it)."""
    was_up = subprocess.run(["bash", SERVERS_SH, "status", "cluster"], capture_output=True).returncode == 0
    proc = subprocess.run(["bash", SERVERS_SH, "start", "cluster"], capture_output=True, text=True)
    if proc.returncode == 0:
        if not was_up:
            started.add("cluster")
        return True
    reason = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
    not_measured("kvdex-cpp", "redis-cluster", ["A"], reason)
    if proc.returncode != 2:
        FAILURES.append("scripts/servers.sh start cluster")
    return False


def flush_redis(ports):
    for port in ports:
        subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), "FLUSHALL"], capture_output=True)


def cluster_store_rows(bench, server_flags, common):
    rows = []
    for label, uri, ports in CLUSTER_SETUPS:
        flush_redis(ports)
        rows += run_rows([bench, "redis-store", "--uri", uri, "--label", label, *server_flags, *common])
        flush_redis(ports)
    return rows


def stop_servers(started):
    for server in sorted(started):
        proc = subprocess.run(["bash", SERVERS_SH, "stop", server], capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"  ! scripts/servers.sh stop {server} failed: {proc.stderr.strip()[-500:]}", file=sys.stderr)


def bench_modes(bench) -> set:
    """The modes kvdex_bench was built with (raw-redis, raw-postgres need hiredis, libpq)."""
    proc = subprocess.run([str(bench), "modes"], capture_output=True, text=True)
    return set(proc.stdout.split()) if proc.returncode == 0 else set()


def median_rows(rows):
    """One row per (impl, store, workload, op): the run with the median time, with
    every run's seconds kept in "runs"."""
    groups = {}
    for row in rows:
        groups.setdefault((row["impl"], row["store"], row["workload"], row["op"]), []).append(row)
    out = []
    for group in groups.values():
        group.sort(key=lambda r: r["seconds"])
        median = dict(group[len(group) // 2])
        if len(group) > 1:
            median["runs"] = [r["seconds"] for r in group]
        out.append(median)
    return out


def warm_page_cache(path: pathlib.Path) -> None:
    with open(path, "rb", buffering=0) as f:
        while f.read(8 << 20):
            pass


def rate(row):
    if row["seconds"] <= 0:
        return None
    if row["op"] in ("load", "persist", "parse", "read+parse", "write+fsync", "docstore.persist",
                     "docstore.load") and row["bytes"]:
        return row["bytes"] / row["seconds"] / 1e6  # MB/s
    return row["n"] / row["seconds"] if row["n"] else None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=100_000, help="workload A size")
    parser.add_argument("--small", type=int, default=1_000_000, help="workload B size")
    parser.add_argument("--out", default=str(ROOT / "bench" / "out"))
    parser.add_argument("--bench-bin", default=str(ROOT / "build" / "default" / "bench" / "kvdex_bench"))
    parser.add_argument("--only-native", action="store_true", help="skip the Python rows")
    parser.add_argument("--only-python", action="store_true",
                        help="only the Python rows (kvdex and LlamaIndex), no native or server rows")
    parser.add_argument("--threads", default="1,2,4")
    parser.add_argument("--max-single-writes", type=int, default=3000,
                        help="single put/remove on LMDB (fsync per commit) measured on this many keys")
    parser.add_argument("--lmdb-repeats", type=int, default=3,
                        help="kvdex-vs-raw LMDB runs alternated this many times (median reported)")
    parser.add_argument("--encoded-only", action="store_true",
                        help="C++ stores through the encoded API only (for 10x sizes: typed values need GBs)")
    parser.add_argument("--server-put-limit", type=int, default=200_000,
                        help="Redis/PostgreSQL rows load at most this many pairs (LlamaIndex's PostgresKVStore "
                             "writes ~10k rows/s)")
    parser.add_argument("--server-sample", type=int, default=10_000,
                        help="Redis/PostgreSQL per-key gets on this many random keys (LlamaIndex's "
                             "PostgresKVStore gets ~1k keys/s)")
    parser.add_argument("--server-delete-sample", type=int, default=1_000,
                        help="Redis/PostgreSQL per-key deletes on this many keys (PostgreSQL commits each)")
    parser.add_argument("--no-servers", action="store_true", help="skip the Redis and PostgreSQL rows")
    args = parser.parse_args()

    out_dir = pathlib.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix="kvdex-bench-", dir=out_dir))
    bench = args.bench_bin
    python = sys.executable
    rows = []
    started = set()
    try:
        files = {"A": generate(out_dir, "A", args.nodes), "B": generate(out_dir, "B", args.small)}
        # Which Redis/PostgreSQL rows can run: servers up, kvdex_bench built with their
        # client libraries, LlamaIndex's integrations installed.
        raw_servers, llamaindex_servers = set(), set()
        cluster_rows = False
        if not args.no_servers and not args.only_python:
            servers, started = start_servers()
            modes = bench_modes(bench)
            # kvdex's Redis store on one node and on a 3-master Redis Cluster, both
            # layouts (workload A): the cluster from scripts/servers.sh's `cluster` target.
            if "redis" in servers and "redis-store" in modes:
                cluster_rows = start_cluster(started)
            for mode, server, package in (("raw-redis", "redis", "libhiredis-dev"),
                                          ("raw-postgres", "postgres", "libpq-dev")):
                if server not in servers:
                    continue
                if mode in modes:
                    raw_servers.add(server)
                else:
                    not_measured(mode, server, ["A", "B"],
                                 f"kvdex_bench was built without {mode} ({package} missing at configure time)")
            for server in servers if not args.only_native else ():
                module = f"llama_index.storage.kvstore.{server}"
                if importlib.util.find_spec(module) is not None:
                    llamaindex_servers.add(server)
                else:
                    not_measured("llamaindex", server, ["A", "B"],
                                 f"{module} not installed (scripts/python-env.sh installs bench/requirements.txt)")
        server_flags = ["--put-limit", args.server_put_limit, "--sample", args.server_sample,
                        "--delete-sample", args.server_delete_sample]
        for workload, file in files.items():
            print(f"== workload {workload}: {file.stat().st_size / 1e6:.1f} MB", file=sys.stderr)
            common = ["--workload-file", file, "--workload", workload]
            # kvdex C++: in-memory SimpleKVStore and LMDB, 1..T threads.
            encoded = ["--encoded-only", "1"] if args.encoded_only else []
            for threads in [int(t) for t in args.threads.split(",")] if not args.only_python else ():
                if args.encoded_only and threads > 1:
                    continue
                rows += run_rows([bench, "store", "--uri", "memory:", "--threads", threads, *encoded, *common])
                lmdb_dir = work / f"lmdb-{workload}-{threads}"
                rows += run_rows([bench, "store", "--uri", f"lmdb:{lmdb_dir}", "--threads", threads,
                                  "--max-single-writes", args.max_single_writes, *encoded, *common])
                if threads == 1:
                    rows += run_rows([bench, "open", "--uri", f"lmdb:{lmdb_dir}", "--workload", workload])
                shutil.rmtree(lmdb_dir, ignore_errors=True)
            # Loads are measured from the page cache (the file read once just before), so
            # kvdex and simdjson read the same way whatever ran before them: at 10x sizes
            # the LMDB rows evict the file and a cold read measures the disk instead.
            # The load, then a persist of what was loaded, alternated with a sequential
            # write + fsync of as many bytes (--lmdb-repeats times, medians): large writes
            # on these shared disks move by 2x from one minute to the next.
            persisted = []
            for repeat in range(args.lmdb_repeats if not args.only_python else 0):
                warm_page_cache(file)
                persisted += run_rows([bench, "load", "--persist-dir", work, *common])
                if workload == "A":
                    persisted += run_rows([bench, "raw-write", "--dir", work, "--bytes", file.stat().st_size])
            rows += median_rows(persisted)
            # The raw engines on the same bytes.
            if not args.only_python:
                warm_page_cache(file)
                rows += run_rows([bench, "raw-simdjson", *common])
            # kvdex's LMDB store through the encoded API in a process of its own, then raw
            # LMDB, alternated --lmdb-repeats times, each row the median run: the same
            # bytes in and out as raw mdb_put/mdb_get, and no typed values in memory (the
            # typed process above holds a parsed copy of the workload, which costs its
            # gets cache misses raw LMDB does not pay). On shared machines one pair of
            # runs moves by 20%; the alternation keeps drift out of the ratio.
            paired = []
            for repeat in range(0 if args.only_python else 1 if args.encoded_only else args.lmdb_repeats):
                if not args.encoded_only:
                    lean_dir = work / f"lmdb-{workload}-encoded"
                    for row in run_rows([bench, "store", "--uri", f"lmdb:{lean_dir}", "--encoded-only", "1",
                                         *common]):
                        if row["op"] in ("get_encoded", "scan"):
                            row["op"] += ", encoded-only process"
                        paired.append(row)
                    shutil.rmtree(lean_dir, ignore_errors=True)
                paired += run_rows([bench, "raw-lmdb", "--dir", work / f"raw-lmdb-{workload}", *common])
            rows += median_rows(paired)
            # Redis and PostgreSQL: raw engines and LlamaIndex's stores on the same servers,
            # pairs and sample sizes (the anchors kvdex's RedisKVStore / PostgresKVStore
            # rows will be measured against).
            if "redis" in raw_servers:
                rows += run_rows([bench, "raw-redis", "--redis-port", REDIS_PORT, *server_flags, *common])
                if "kvdex-redis" in modes:
                    rows += run_rows([bench, "kvdex-redis", "--redis-port", REDIS_PORT, *server_flags,
                                      *common])
            if cluster_rows and workload == "A":
                rows += cluster_store_rows(bench, server_flags, common)
            if "postgres" in raw_servers:
                rows += run_rows([bench, "raw-postgres", "--pg-conninfo", PG_CONNINFO, *server_flags, *common])
                # kvdex's PostgresKVStore (C++) on the same server, pairs and samples; then
                # a scan of what it left in a process of its own (peak RSS).
                rows += run_rows([bench, "kvdex-postgres", "--pg-conninfo", PG_CONNINFO, *server_flags, *common])
                rows += run_rows([bench, "kvdex-postgres-scan", "--pg-conninfo", PG_CONNINFO,
                                  "--workload", workload, "--collection",
                                  "docstore/data" if workload == "A" else "data"])
            for server in sorted(llamaindex_servers):
                rows += run_rows([python, ROOT / "bench" / "bench_python.py", "--impl", "llamaindex",
                                  "--mode", server, *server_flags, *common])
            if "postgres" in raw_servers and not args.only_native:
                rows += run_rows([python, ROOT / "bench" / "bench_python.py", "--impl", "kvdex",
                                  "--mode", "postgres", *server_flags, *common])
            if args.only_native:
                continue
            if "redis" in raw_servers:
                # kvdex's RedisKVStore from Python, beside LlamaIndex's on the same server.
                rows += run_rows([python, ROOT / "bench" / "bench_python.py", "--impl", "kvdex",
                                  "--mode", "redis", *server_flags, *common])
            # Python: LlamaIndex's own store and kvdex's, same data, same process shape.
            if "lmdb" in python_stores():
                rows += run_rows([python, ROOT / "bench" / "bench_python.py", "--impl", "kvdex", "--mode", "lmdb",
                                  "--max-single-writes", args.max_single_writes, "--tmp-dir", work, *common])
            for impl in ("llamaindex", "kvdex"):
                rows += run_rows([python, ROOT / "bench" / "bench_python.py", "--impl", impl, *common])
                warm_page_cache(file)
                rows += run_rows([python, ROOT / "bench" / "bench_python.py", "--impl", impl, "--mode", "load", *common])
            if workload == "A":
                for impl in ("llamaindex", "kvdex-llamaindex"):
                    docstore_file = work / f"docstore-{impl}.json"
                    for mode in ("docstore", "docstore-load"):
                        rows += run_rows([python, ROOT / "bench" / "bench_python.py", "--impl", impl,
                                          "--mode", mode, "--docstore-file", docstore_file, *common])
                # The same reads from a SimpleDocumentStore over kvdex's LMDB store.
                if "lmdb" in python_stores():
                    rows += run_rows([python, ROOT / "bench" / "bench_python.py", "--impl", "kvdex-lmdb",
                                      "--mode", "docstore-load", "--tmp-dir", work,
                                      "--docstore-file", work / "docstore-kvdex-llamaindex.json", *common])
    finally:
        stop_servers(started)
        shutil.rmtree(work, ignore_errors=True)

    with open(out_dir / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["impl", "store", "workload", "op", "n", "seconds", "bytes", "rss_mb",
                                               "rate", "note"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**{k: row.get(k) for k in writer.fieldnames}, "rate": rate(row), "note": note(row)})
        for m in MISSING:
            writer.writerow({"impl": m["impl"], "store": m["store"], "workload": m["workload"], "op": "not measured",
                             "note": m["reason"]})

    md = render(rows, args)
    (out_dir / "results.md").write_text(md)
    print(md)
    if FAILURES:
        print(f"{len(FAILURES)} benchmark command(s) failed:", *FAILURES, sep="\n  ", file=sys.stderr)
        sys.exit(1)


def render(rows, args) -> str:
    lines = [f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.machine()}, "
             f"{os.cpu_count()} cores; workload A = {args.nodes} nodes, B = {args.small} small values.", ""]
    for workload in ("A", "B"):
        lines += [f"### Workload {workload}", "",
                  "| impl | store | op | n | seconds | ops/s or MB/s | peak RSS MB |",
                  "|---|---|---|---:|---:|---:|---:|"]
        for row in rows:
            if row["workload"] not in (workload, "-"):
                continue
            if row["workload"] == "-" and workload != "A":
                continue
            r = rate(row)
            lines.append(f"| {row['impl']} | {row['store']} | {row['op']} | {row['n']} | {row['seconds']:.3f} | "
                         f"{'' if r is None else f'{r:,.0f}'} | {row['rss_mb']:.0f} |")
        lines.append("")
        for row in rows:
            if row["workload"] == workload and note(row):
                lines.append(f"- {row['impl']} {row['store']} {row['op']}: {note(row)}")
        for m in MISSING:
            if m["workload"] == workload:
                lines.append(f"- not measured: {m['impl']} ({m['store']}): {m['reason']}")
        if lines[-1] != "":
            lines.append("")
    lines += ratios(rows)
    return "\n".join(lines)


def note(row) -> str:
    if "connections_opened" in row:
        return (f"{row['connections_opened']:,} connection(s) opened to Redis (INFO total_connections_received), "
                f"{row['connected_clients_after']:,} client(s) connected after the gather")
    if "runs" in row:
        return f"median of {len(row['runs'])} alternated runs: " + ", ".join(f"{s:.3f}" for s in row["runs"]) + " s"
    if "passes" in row:
        return "median of passes: " + ", ".join(f"{s:.3f}" for s in row["passes"]) + " s"
    return ""


def find(rows, impl, store, workload, op):
    for row in rows:
        if row["impl"] == impl and row["store"] == store and row["workload"] == workload and row["op"] == op:
            return row
    return None


def ratios(rows):
    """The ratios the issue's targets are stated in (higher is better for kvdex)."""
    out = ["### Ratios", "", "| what | measured | reference | ratio |", "|---|---:|---:|---:|"]

    def add(label, mine, ref, inverse_time=True, unit="s"):
        if not mine or not ref:
            return
        if inverse_time:
            a, b = mine["seconds"], ref["seconds"]
            if a > 0 and b > 0:
                out.append(f"| {label} | {a:.3f} {unit} | {b:.3f} {unit} | {b / a:.2f}x |")

    for w in ("A", "B"):
        add(f"{w}: load, kvdex C++ vs LlamaIndex", find(rows, "kvdex-cpp", "simple", w, "load"),
            find(rows, "llamaindex", "simple", w, "load"))
        add(f"{w}: load, kvdex C++ vs raw simdjson read+parse, file in the page cache (want >= 0.5x)",
            find(rows, "kvdex-cpp", "simple", w, "load"), find(rows, "raw-simdjson", "simdjson-dom", w, "read+parse"))
        add(f"{w}: load, kvdex C++ vs raw simdjson parse, warm and in memory",
            find(rows, "kvdex-cpp", "simple", w, "load"), find(rows, "raw-simdjson", "simdjson-dom", w, "parse"))
        add(f"{w}: load, kvdex Python vs LlamaIndex", find(rows, "kvdex-py", "simple", w, "load"),
            find(rows, "llamaindex", "simple", w, "load"))
        add(f"{w}: persist, kvdex C++ vs LlamaIndex", find(rows, "kvdex-cpp", "memory", w, "persist"),
            find(rows, "llamaindex", "simple", w, "persist"))
        add(f"{w}: persist, kvdex Python vs LlamaIndex", find(rows, "kvdex-py", "simple", w, "persist"),
            find(rows, "llamaindex", "simple", w, "persist"))
        # The target compares the same bytes: kvdex's encoded API (what raw LMDB is given
        # and returns). The typed API adds JSON encoding/decoding that raw never does.
        add(f"{w}: LMDB put_all(1000) vs raw LMDB, same bytes (encoded API; want >= 0.8x)",
            find(rows, "kvdex-cpp", "lmdb", w, "put_all_encoded(1000)"),
            find(rows, "raw-lmdb", "lmdb", w, "put_all(1000)"))
        add(f"{w}: LMDB get vs raw LMDB, same bytes (encoded API; want >= 0.8x)",
            find(rows, "kvdex-cpp", "lmdb", w, "get_encoded, encoded-only process")
            or find(rows, "kvdex-cpp", "lmdb", w, "get_encoded"),
            find(rows, "raw-lmdb", "lmdb", w, "get"))
        add(f"{w}: LMDB put_all(1000), typed API (encodes JSON) vs raw LMDB",
            find(rows, "kvdex-cpp", "lmdb", w, "put_all(1000)"), find(rows, "raw-lmdb", "lmdb", w, "put_all(1000)"))
        for op in ("put", "get", "get_all", "remove"):
            add(f"{w}: {op}, kvdex Python vs LlamaIndex", find(rows, "kvdex-py", "simple", w, op),
                find(rows, "llamaindex", "simple", w, op))
        # Results kept until the clock stops (issue #14; LlamaIndex's store is in memory
        # only, so kvdex's LMDB rows are set against it too).
        for store in ("simple", "lmdb"):
            add(f"{w}: get, kept, kvdex Python {store} vs LlamaIndex (want >= 0.5x)",
                find(rows, "kvdex-py", store, w, "get, kept"), find(rows, "llamaindex", "simple", w, "get, kept"))
            add(f"{w}: get_all, kept, kvdex Python {store} vs LlamaIndex",
                find(rows, "kvdex-py", store, w, "get_all, kept"),
                find(rows, "llamaindex", "simple", w, "get_all, kept"))
        add(f"{w}: LMDB put_all(1000), kvdex Python vs kvdex C++ typed API",
            find(rows, "kvdex-py", "lmdb", w, "put_all(1000)"), find(rows, "kvdex-cpp", "lmdb", w, "put_all(1000)"))
        add(f"{w}: LMDB get, kvdex Python vs kvdex C++ typed API",
            find(rows, "kvdex-py", "lmdb", w, "get"), find(rows, "kvdex-cpp", "lmdb", w, "get"))
        mine, ref = find(rows, "kvdex-py", "simple", w, "put_all(1000)"), find(rows, "llamaindex", "simple", w, "put_all(1)")
        add(f"{w}: put_all, kvdex Python (batch 1000) vs LlamaIndex (batch 1)", mine, ref)
    load = find(rows, "kvdex-cpp", "simple", "A", "load")
    if load and load["bytes"]:
        out.append(f"| A: peak RSS of the load (less the process before it) / file size (want <= 1.5) | {load['rss_mb']:.0f} MB | "
                   f"{load['bytes'] / 2**20:.0f} MB | {load['rss_mb'] / (load['bytes'] / 2**20):.2f} |")
    resident = find(rows, "kvdex-cpp", "simple", "A", "resident")
    if resident and resident["bytes"]:
        out.append(f"| A: resident after load / file size (want <= 1.2) | {resident['rss_mb']:.0f} MB | "
                   f"{resident['bytes'] / 2**20:.0f} MB | {resident['rss_mb'] / (resident['bytes'] / 2**20):.2f} |")
    persist = find(rows, "kvdex-cpp", "simple", "A", "persist") or find(rows, "kvdex-cpp", "memory", "A", "persist")
    raw = find(rows, "raw-posix", "file", "-", "write+fsync")
    if persist and raw:
        p_rate, r_rate = persist["bytes"] / persist["seconds"], raw["bytes"] / raw["seconds"]
        out.append(f"| A: persist MB/s vs sequential write+fsync (want >= 0.7) | {p_rate / 1e6:.0f} | "
                   f"{r_rate / 1e6:.0f} | {p_rate / r_rate:.2f} |")
    for op in ("docstore.add_documents", "docstore.persist", "docstore.load", "docstore.get_node"):
        add(f"A: {op}, kvdex vs LlamaIndex", find(rows, "kvdex-llamaindex-py", "simple", "A", op),
            find(rows, "llamaindex", "simple", "A", op))
    for op in ("get_node", "get_nodes", "docs", "ref_doc_info"):
        for store in ("simple", "lmdb"):
            add(f"A: docstore.{op}, kept, kvdex {store} vs LlamaIndex (want >= 0.91x)",
                find(rows, "kvdex-llamaindex-py", store, "A", f"docstore.{op}, kept"),
                find(rows, "llamaindex", "simple", "A", f"docstore.{op}, kept"))
    mine, ref = (find(rows, "kvdex-llamaindex-py", "simple", "A", "docstore.resident"),
                 find(rows, "llamaindex", "simple", "A", "docstore.resident"))
    if mine and ref and mine["rss_mb"] > 0:
        out.append(f"| A: docstore resident memory, LlamaIndex / kvdex (want >= 1.5) | {mine['rss_mb']:.0f} MB | "
                   f"{ref['rss_mb']:.0f} MB | {ref['rss_mb'] / mine['rss_mb']:.2f}x |")
    out += server_anchors(rows)
    out.append("")
    return out


def server_anchors(rows):
    """Redis and PostgreSQL: the raw engines against LlamaIndex's stores, by rate (the
    rows' n are the same sample sizes). kvdex's RedisKVStore / PostgresKVStore rows and
    their targets (issue #5, in each label) join these lines when those backends exist."""
    out = []

    def add(label, mine, ref):
        a, b = (rate(mine) if mine else None), (rate(ref) if ref else None)
        if a and b:
            out.append(f"| {label} | {a:,.0f}/s | {b:,.0f}/s | {a / b:.2f}x |")

    for w in ("A", "B"):
        def r(impl, store, op):
            return find(rows, impl, store, w, op)
        add(f"{w}: Redis anchor, put_all(1000): raw pipelined HSET in MULTI/EXEC vs LlamaIndex RedisKVStore "
            f"(kvdex wants >= 0.7x raw, >= 3x LlamaIndex)",
            r("raw-redis", "redis", "put_all(1000)"), r("llamaindex", "redis", "put_all(1000)"))
        # kvdex's RedisKVStore against the targets of issue 10 (docs/redis.md).
        add(f"{w}: Redis, put_all(1000): kvdex C++ vs raw hiredis (want >= 0.8x)",
            r("kvdex", "redis", "put_all(1000)"), r("raw-redis", "redis", "put_all(1000)"))
        add(f"{w}: Redis, put_all(1000): kvdex C++ vs LlamaIndex (want >= 3x)",
            r("kvdex", "redis", "put_all(1000)"), r("llamaindex", "redis", "put_all(1000)"))
        add(f"{w}: Redis, get_all: kvdex C++ get_all_encoded vs LlamaIndex (want >= 10x)",
            r("kvdex", "redis", "get_all_encoded"), r("llamaindex", "redis", "get_all"))
        add(f"{w}: Redis, get_all: kvdex Python vs LlamaIndex",
            r("kvdex-py", "redis", "get_all"), r("llamaindex", "redis", "get_all"))
        add(f"{w}: Redis, 10,000 gathered aget: kvdex Python vs LlamaIndex (want >= 5x, <= 4 connections)",
            r("kvdex-py", "redis", "aget x gather"), r("llamaindex", "redis", "aget x gather"))
        add(f"{w}: Redis, sync get: kvdex C++ vs raw hiredis, interleaved in one process (want >= 0.9x)",
            r("kvdex", "redis", "get_encoded (interleaved)"),
            r("kvdex", "redis", "get (raw hiredis, interleaved)"))
        add(f"{w}: Redis anchor, get: raw HGET, one round trip each, vs LlamaIndex",
            r("raw-redis", "redis", "get"), r("llamaindex", "redis", "get"))
        add(f"{w}: Redis anchor, get: raw HGET pipelined 1,000 deep vs LlamaIndex",
            r("raw-redis", "redis", "get(pipelined 1000)"), r("llamaindex", "redis", "get"))
        add(f"{w}: Redis anchor, get_all: raw HSCAN COUNT 1000 vs LlamaIndex"
            + (" (kvdex wants >= 5x LlamaIndex)" if w == "A" else ""),
            r("raw-redis", "redis", "get_all(HSCAN 1000)"), r("llamaindex", "redis", "get_all"))
        add(f"{w}: Redis anchor, get_all: raw HGETALL vs LlamaIndex",
            r("raw-redis", "redis", "get_all(HGETALL)"), r("llamaindex", "redis", "get_all"))
        add(f"{w}: Redis anchor, raw pipelined HGET vs LlamaIndex aget x gather (kvdex's aget x gather wants "
            f">= 10x LlamaIndex's)",
            r("raw-redis", "redis", "get(pipelined 1000)"), r("llamaindex", "redis", "aget x gather"))
        add(f"{w}: Redis anchor, delete: raw HDEL vs LlamaIndex",
            r("raw-redis", "redis", "remove"), r("llamaindex", "redis", "remove"))
        if w == "A":
            one = "redis 1 node"
            for setup in (f"redis-cluster {CLUSTER_MASTERS} masters",
                          f"redis-cluster {CLUSTER_MASTERS} masters, sharded x{CLUSTER_MASTERS}",
                          "redis 1 node, sharded x3"):
                for op in ("put_all(1000)", "get_all", "get"):
                    add(f"A: kvdex {op}, {setup} vs {one} (same machine, 2 cores)",
                        r("kvdex-cpp", setup, op), r("kvdex-cpp", one, op))
        add(f"{w}: PostgreSQL anchor, put_all(1000): raw libpq multi-row upsert vs LlamaIndex PostgresKVStore "
            f"(kvdex wants >= 3x LlamaIndex)",
            r("raw-postgres", "postgres", "put_all(1000)"), r("llamaindex", "postgres", "put_all(1000)"))
        add(f"{w}: PostgreSQL anchor, get: raw prepared SELECT vs LlamaIndex (kvdex wants >= 4x LlamaIndex)",
            r("raw-postgres", "postgres", "get"), r("llamaindex", "postgres", "get"))
        add(f"{w}: PostgreSQL anchor, get: raw pipelined SELECT vs LlamaIndex",
            r("raw-postgres", "postgres", "get(pipelined 1000)"), r("llamaindex", "postgres", "get"))
        add(f"{w}: PostgreSQL anchor, get_all: raw vs LlamaIndex (kvdex wants >= 5x LlamaIndex)",
            r("raw-postgres", "postgres", "get_all"), r("llamaindex", "postgres", "get_all"))
        add(f"{w}: PostgreSQL anchor, delete (a commit each): raw vs LlamaIndex",
            r("raw-postgres", "postgres", "remove"), r("llamaindex", "postgres", "remove"))
        # kvdex's PostgresKVStore (issue #11 targets in each label).
        add(f"{w}: kvdex PostgresKVStore put_all(1000) vs raw libpq upsert (wants >= 0.9x)",
            r("kvdex", "postgres", "put_all(1000)"), r("raw-postgres", "postgres", "put_all(1000)"))
        add(f"{w}: kvdex PostgresKVStore put_all(1000) vs LlamaIndex (wants >= 3x)",
            r("kvdex", "postgres", "put_all(1000)"), r("llamaindex", "postgres", "put_all(1000)"))
        add(f"{w}: kvdex PostgresKVStore get vs raw prepared SELECT (wants >= 0.9x)",
            r("kvdex", "postgres", "get"), r("raw-postgres", "postgres", "get"))
        add(f"{w}: kvdex PostgresKVStore get vs LlamaIndex (wants >= 5x)",
            r("kvdex", "postgres", "get"), r("llamaindex", "postgres", "get"))
        add(f"{w}: kvdex PostgresKVStore gathered aget vs raw pipelined SELECT (wants >= 0.8x)",
            r("kvdex", "postgres", "get(pipelined, gathered)"),
            r("raw-postgres", "postgres", "get(pipelined 1000)"))
        add(f"{w}: kvdex PostgresKVStore get_all vs LlamaIndex" + (" (wants >= 10x)" if w == "A" else ""),
            r("kvdex", "postgres", "get_all"), r("llamaindex", "postgres", "get_all"))
        add(f"{w}: kvdex PostgresKVStore get_all vs raw", r("kvdex", "postgres", "get_all"),
            r("raw-postgres", "postgres", "get_all"))
        add(f"{w}: kvdex-py PostgresKVStore put_all(1000) vs LlamaIndex",
            r("kvdex-py", "postgres", "put_all(1000)"), r("llamaindex", "postgres", "put_all(1000)"))
        add(f"{w}: kvdex-py PostgresKVStore get vs LlamaIndex",
            r("kvdex-py", "postgres", "get"), r("llamaindex", "postgres", "get"))
        add(f"{w}: kvdex-py PostgresKVStore get_all vs LlamaIndex",
            r("kvdex-py", "postgres", "get_all"), r("llamaindex", "postgres", "get_all"))
    return out


if __name__ == "__main__":
    main()
