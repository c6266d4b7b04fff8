#!/usr/bin/env python3
"""Summarises results/ (written by scripts/bench.sh) into the tables of docs/benchmarks.md.

For each data set and library: the best single-thread QPS among settings reaching recall@10
0.90 and 0.99 (ann-benchmarks recall), with build seconds and index bytes of that setting;
then panns's ratios to Annoy, FAISS-IVF, hnswlib and exact search.
"""
import csv, glob, os, sys

out = sys.argv[1] if len(sys.argv) > 1 else "results"


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def label(r, src):
    lib = r.get("library", "")
    if src.startswith("panns-graph"):
        return "panns+graph" if lib == "panns" else None
    if src.startswith("panns"):
        return "panns" if lib == "panns" else ("exact (panns SIMD scan)" if lib == "bruteforce" else None)
    return {"bruteforce": "exact (numpy)"}.get(lib, lib)


def best(points, thr):
    ok = [p for p in points if float(p["recall10"]) >= thr]
    return max(ok, key=lambda p: float(p["qps_single"])) if ok else None


datasets = sorted({os.path.basename(p)[len("peers-"):-4] for p in glob.glob(f"{out}/peers-*.csv")})
for ds in datasets:
    libs = {}
    for path in glob.glob(f"{out}/*{ds}.csv"):
        src = os.path.basename(path)
        for r in rows(path):
            name = label(r, src)
            if name:
                libs.setdefault(name, []).append(r)
    print(f"\n### {ds}\n")
    print("| library | QPS @0.90 | build s | index MB | QPS @0.99 | build s | index MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    table = {}
    for name in sorted(libs):
        cells = []
        for thr in (0.90, 0.99):
            b = best(libs[name], thr)
            table[(name, thr)] = b
            if b:
                cells += [f"{float(b['qps_single']):,.0f}", f"{float(b['build_s']):.1f}",
                          f"{int(float(b['index_bytes'])) / 1e6:.1f}"]
            else:
                cells += ["—", "", ""]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    for ours in ("panns", "panns+graph"):
        for peer in ("annoy", "faiss-ivf", "hnswlib", "exact (panns SIMD scan)"):
            parts = []
            for thr in (0.90, 0.99):
                a, b = table.get((ours, thr)), table.get((peer, thr))
                if a and b:
                    parts.append(f"@{thr:.2f}: {float(a['qps_single']) / float(b['qps_single']):.2f}x")
            if parts:
                print(f"- {ours} vs {peer}: " + ", ".join(parts))
