#!/usr/bin/env python3
"""Puts two runs of bench/run.py on the same sizes side by side: before and after a change.

    # the previous commit's build and wheel, then this one's, alternated:
    .venv-base/bin/python bench/run.py --bench-bin BASE/build/default/bench/kvdex_bench \
        --no-servers --out bench/out/before
    .venv/bin/python bench/run.py --no-servers --out bench/out/after
    .venv/bin/python bench/compare.py bench/out/before/results.csv bench/out/after/results.csv

For every measurement present in both runs it prints the time of each and the ratio
after/before (1.00 = unchanged, above 1 = slower). Rows slower by more than the noise
threshold (--noise, default 15%, what repeated runs of one build spread on this shared
2-core machine) are listed again at the end: those are the ones to re-measure or explain.
"""
import argparse
import csv


def read(path):
    with open(path, newline="") as f:
        return {(r["impl"], r["store"], r["workload"], r["op"]): r for r in csv.DictReader(f)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--noise", type=float, default=0.15)
    args = parser.parse_args()
    before, after = read(args.before), read(args.after)
    lines = ["| impl | store | workload | op | n | before s | after s | after/before |",
             "|---|---|---|---|---:|---:|---:|---:|"]
    slower = []
    for key in sorted(before.keys() & after.keys()):
        b, a = float(before[key]["seconds"]), float(after[key]["seconds"])
        if b <= 0 or a <= 0:
            continue
        ratio = a / b
        lines.append(f"| {' | '.join(key)} | {after[key]['n']} | {b:.4f} | {a:.4f} | {ratio:.2f} |")
        if ratio > 1 + args.noise:
            slower.append((ratio, key))
    print("\n".join(lines))
    only = sorted(before.keys() ^ after.keys())
    if only:
        print(f"\n{len(only)} rows in one run only: " + "; ".join(" ".join(k) for k in only))
    print(f"\nslower than {1 + args.noise:.2f}x: " +
          (", ".join(f"{' '.join(k)} ({r:.2f}x)" for r, k in sorted(slower, reverse=True))
           if slower else "none"))


if __name__ == "__main__":
    main()
