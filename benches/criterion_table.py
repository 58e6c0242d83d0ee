#!/usr/bin/env python3
"""Markdown tables from criterion's results (target/criterion/GROUP/FUNCTION/SIZE/new/*.json):
throughput of each implementation per size, and wsbridge's ratio to the others.

usage: benches/criterion_table.py [target/criterion]
"""
import json
import os
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "target/criterion"


def gib_per_s(path):
    est = json.load(open(os.path.join(path, "new", "estimates.json")))
    bench = json.load(open(os.path.join(path, "new", "benchmark.json")))
    ns = est["median"]["point_estimate"]
    throughput = bench.get("throughput") or {}
    nbytes = throughput.get("Bytes") or throughput.get("BytesDecimal")
    return nbytes / ns * 1e9 / 2**30 if nbytes else None


def fmt(v):
    if v is None:
        return "-"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


for group in sorted(os.listdir(root)):
    gdir = os.path.join(root, group)
    if not os.path.isdir(gdir) or group == "report":
        continue
    # Criterion also writes one summary folder per size (named after the size): skip those.
    impls = sorted(
        d
        for d in os.listdir(gdir)
        if d != "report" and not d.isdigit() and os.path.isdir(os.path.join(gdir, d))
    )
    sizes = set()
    results = {}
    for impl in impls:
        idir = os.path.join(gdir, impl)
        if os.path.exists(os.path.join(idir, "new")):
            results[impl, ""] = gib_per_s(idir)
            sizes.add("")
            continue
        for size in os.listdir(idir):
            sdir = os.path.join(idir, size)
            if os.path.exists(os.path.join(sdir, "new")):
                results[impl, size] = gib_per_s(sdir)
                sizes.add(size)
    impls.sort(key=lambda i: (not i.startswith("wsbridge"), i))
    others = [i for i in impls if not i.startswith("wsbridge")]
    print(f"\n**{group}** (GiB/s, median)\n")
    header = ["size"] + impls + [f"wsbridge / {o}" for o in others]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for size in sorted(sizes, key=lambda s: int(s) if s else 0):
        row = [size or "request"] + [fmt(results.get((i, size))) for i in impls]
        ours = results.get((impls[0], size))
        for o in others:
            theirs = results.get((o, size))
            row.append(f"{ours / theirs:.2f}" if ours and theirs else "-")
        print("| " + " | ".join(row) + " |")
