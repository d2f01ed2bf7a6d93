#!/usr/bin/env python3
"""Puts two runs of bench/run.py side by side to show how cost grows with size.

    .venv/bin/python bench/run.py --encoded-only --only-native --threads 1 --out bench/out/1x
    .venv/bin/python bench/run.py --nodes 1000000 --encoded-only --only-native --threads 1 \
        --out bench/out/10x
    .venv/bin/python bench/scaling.py bench/out/1x/results.csv bench/out/10x/results.csv

For every measurement present in both runs it prints the cost per item (or per MB for
byte-rate rows) at each size and their ratio: 1.00 means cost grows linearly with
size, above 1 faster than linearly. Peak RSS is compared per MB of input the same way.
"""
import csv
import sys

BYTE_OPS = {"load", "persist", "parse", "read+parse", "write+fsync"}


def read(path):
    with open(path, newline="") as f:
        return {(r["impl"], r["store"], r["workload"], r["op"]): r for r in csv.DictReader(f)}


def unit_cost(row):
    """Seconds per item, or per MB for whole-file rows; None when not measurable."""
    seconds, n, nbytes = float(row["seconds"]), float(row["n"] or 0), float(row["bytes"] or 0)
    if seconds <= 0:
        return None, ""
    if row["op"] in BYTE_OPS and nbytes:
        return seconds / (nbytes / 1e6), "ms/MB"
    if n:
        return seconds / n, "us/item"
    return None, ""


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    small, large = read(sys.argv[1]), read(sys.argv[2])
    lines = ["| impl | store | workload | op | n small | n large | cost small | cost large | "
             "large / small | peak RSS MB small | large |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for key, a in small.items():
        b = large.get(key)
        if b is None:
            continue
        ca, unit = unit_cost(a)
        cb, _ = unit_cost(b)
        if ca is None or cb is None:
            continue
        scale = 1e3 if unit == "ms/MB" else 1e6
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {a['n']} | {b['n']} | "
                     f"{ca * scale:.3f} {unit} | {cb * scale:.3f} {unit} | {cb / ca:.2f} | "
                     f"{float(a['rss_mb']):.0f} | {float(b['rss_mb']):.0f} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
