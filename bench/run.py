#!/usr/bin/env python3
"""kvdex benchmark harness: kvdex vs LlamaIndex's Python stores vs the raw engines,
side by side in one run, reported as ratios (machines here are shared and noisy).

    .venv/bin/python bench/run.py                 # default sizes (a few minutes)
    .venv/bin/python bench/run.py --nodes 2000 --small 20000   # tiny (CI)
    .venv/bin/python bench/run.py --nodes 1000000 --only-native  # 10x workload A

Writes bench/out/results.csv and bench/out/results.md and prints the tables.
Every measurement runs in its own process, so peak RSS belongs to it alone.
"""
import argparse
import csv
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


def run_rows(cmd, env=None):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        FAILURES.append(" ".join(map(str, cmd)))
        print(f"  ! {' '.join(map(str, cmd))} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}",
              file=sys.stderr)
        return []
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return rows


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
    parser.add_argument("--threads", default="1,2,4")
    parser.add_argument("--max-single-writes", type=int, default=3000,
                        help="single put/remove on LMDB (fsync per commit) measured on this many keys")
    parser.add_argument("--encoded-only", action="store_true",
                        help="C++ stores through the encoded API only (for 10x sizes: typed values need GBs)")
    args = parser.parse_args()

    out_dir = pathlib.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix="kvdex-bench-", dir=out_dir))
    bench = args.bench_bin
    python = sys.executable
    rows = []
    try:
        files = {"A": generate(out_dir, "A", args.nodes), "B": generate(out_dir, "B", args.small)}
        for workload, file in files.items():
            print(f"== workload {workload}: {file.stat().st_size / 1e6:.1f} MB", file=sys.stderr)
            common = ["--workload-file", file, "--workload", workload]
            # kvdex C++: in-memory SimpleKVStore and LMDB, 1..T threads.
            encoded = ["--encoded-only", "1"] if args.encoded_only else []
            for threads in [int(t) for t in args.threads.split(",")]:
                if args.encoded_only and threads > 1:
                    continue
                rows += run_rows([bench, "store", "--uri", "memory:", "--threads", threads, *encoded, *common])
                lmdb_dir = work / f"lmdb-{workload}-{threads}"
                rows += run_rows([bench, "store", "--uri", f"lmdb:{lmdb_dir}", "--threads", threads,
                                  "--max-single-writes", args.max_single_writes, *encoded, *common])
                if threads == 1:
                    rows += run_rows([bench, "open", "--uri", f"lmdb:{lmdb_dir}", "--workload", workload])
                shutil.rmtree(lmdb_dir, ignore_errors=True)
            rows += run_rows([bench, "load", *common])
            # The raw engines on the same bytes.
            rows += run_rows([bench, "raw-simdjson", *common])
            rows += run_rows([bench, "raw-lmdb", "--dir", work / f"raw-lmdb-{workload}", *common])
            if workload == "A":
                rows += run_rows([bench, "raw-write", "--dir", work, "--bytes", file.stat().st_size])
            if args.only_native:
                continue
            # Python: LlamaIndex's own store and kvdex's, same data, same process shape.
            for impl in ("llamaindex", "kvdex"):
                rows += run_rows([python, ROOT / "bench" / "bench_python.py", "--impl", impl, *common])
                rows += run_rows([python, ROOT / "bench" / "bench_python.py", "--impl", impl, "--mode", "load", *common])
            if workload == "A":
                for impl in ("llamaindex", "kvdex-llamaindex"):
                    docstore_file = work / f"docstore-{impl}.json"
                    for mode in ("docstore", "docstore-load"):
                        rows += run_rows([python, ROOT / "bench" / "bench_python.py", "--impl", impl,
                                          "--mode", mode, "--docstore-file", docstore_file, *common])
    finally:
        shutil.rmtree(work, ignore_errors=True)

    with open(out_dir / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["impl", "store", "workload", "op", "n", "seconds", "bytes", "rss_mb", "rate"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**{k: row.get(k) for k in writer.fieldnames}, "rate": rate(row)})

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
    lines += ratios(rows)
    return "\n".join(lines)


def find(rows, impl, store, workload, op):
    for row in rows:
        if row["impl"] == impl and row["store"] == store and row["workload"] == workload and row["op"] == op:
            return row
    return None


def ratios(rows):
    """The ratios the issue's targets are stated in (higher is better for kvdex)."""
    out = ["### Ratios", "", "| what | kvdex | reference | ratio |", "|---|---:|---:|---:|"]

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
        add(f"{w}: load, kvdex C++ vs raw simdjson read+parse, cold (want >= 0.5x)",
            find(rows, "kvdex-cpp", "simple", w, "load"), find(rows, "raw-simdjson", "simdjson-dom", w, "read+parse"))
        add(f"{w}: load, kvdex C++ vs raw simdjson parse, warm and in memory",
            find(rows, "kvdex-cpp", "simple", w, "load"), find(rows, "raw-simdjson", "simdjson-dom", w, "parse"))
        add(f"{w}: load, kvdex Python vs LlamaIndex", find(rows, "kvdex-py", "simple", w, "load"),
            find(rows, "llamaindex", "simple", w, "load"))
        add(f"{w}: persist, kvdex C++ vs LlamaIndex", find(rows, "kvdex-cpp", "memory", w, "persist"),
            find(rows, "llamaindex", "simple", w, "persist"))
        add(f"{w}: persist, kvdex Python vs LlamaIndex", find(rows, "kvdex-py", "simple", w, "persist"),
            find(rows, "llamaindex", "simple", w, "persist"))
        add(f"{w}: LMDB put_all(1000) vs raw LMDB (want >= 0.8x)", find(rows, "kvdex-cpp", "lmdb", w, "put_all(1000)"),
            find(rows, "raw-lmdb", "lmdb", w, "put_all(1000)"))
        add(f"{w}: LMDB get vs raw LMDB (want >= 0.8x)", find(rows, "kvdex-cpp", "lmdb", w, "get_encoded"),
            find(rows, "raw-lmdb", "lmdb", w, "get"))
        for op in ("put", "get", "get_all", "remove"):
            add(f"{w}: {op}, kvdex Python vs LlamaIndex", find(rows, "kvdex-py", "simple", w, op),
                find(rows, "llamaindex", "simple", w, op))
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
    persist, raw = find(rows, "kvdex-cpp", "memory", "A", "persist"), find(rows, "raw-posix", "file", "-", "write+fsync")
    if persist and raw:
        p_rate, r_rate = persist["bytes"] / persist["seconds"], raw["bytes"] / raw["seconds"]
        out.append(f"| A: persist MB/s vs sequential write+fsync (want >= 0.7) | {p_rate / 1e6:.0f} | "
                   f"{r_rate / 1e6:.0f} | {p_rate / r_rate:.2f} |")
    for op in ("docstore.add_documents", "docstore.persist", "docstore.load", "docstore.get_node"):
        add(f"A: {op}, kvdex vs LlamaIndex", find(rows, "kvdex-llamaindex-py", "simple", "A", op),
            find(rows, "llamaindex", "simple", "A", op))
    mine, ref = (find(rows, "kvdex-llamaindex-py", "simple", "A", "docstore.resident"),
                 find(rows, "llamaindex", "simple", "A", "docstore.resident"))
    if mine and ref and mine["rss_mb"] > 0:
        out.append(f"| A: docstore resident memory, LlamaIndex / kvdex (want >= 1.5) | {mine['rss_mb']:.0f} MB | "
                   f"{ref['rss_mb']:.0f} MB | {ref['rss_mb'] / mine['rss_mb']:.2f}x |")
    out.append("")
    return out


if __name__ == "__main__":
    main()
