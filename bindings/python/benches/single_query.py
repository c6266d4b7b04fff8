"""Single-query rate through Python against the native rate, on the same index, budget and
queries, in one process and sitting (the machines are noisy: passes alternate, so load hits
both alike).

A pass runs every test query once, one query per call on one thread; QPS = queries / sum of
per-call wall times (as `panns eval` and ann-benchmarks time it). "native" passes call
`Index.search_with_stats` from Rust in a loop (`_time_native`, the loop `panns eval` runs);
"python" passes call `index.query(q, k, budget)` from Python with a 1-D float32 row. Also prints
recall@10 against the file's ground truth (ids).

    python benches/single_query.py INDEX.panns DATA.hdf5 --budgets 10,16,32 [--rounds 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

import h5py
import numpy as np

import panns


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("index")
    ap.add_argument("data")
    ap.add_argument("--budgets", default="16")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("-k", type=int, default=10)
    a = ap.parse_args()
    with h5py.File(a.data, "r") as f:
        test = np.ascontiguousarray(f["test"][:], dtype=np.float32)
        gt = f["neighbors"][:, : a.k]
    p = panns.PannsIndex()
    p.load(a.index)
    print(f"{a.index}: {len(p)} x {p.dimension}, {p.n_trees} trees, graph {p.graph_degree}")
    rows = list(test)  # 1-D float32 C-contiguous views: the zero-copy path
    n = len(rows)
    for budget in (int(b) for b in a.budgets.split(",")):
        hits = sum(
            len({j for j, _ in p.query(q, a.k, budget)} & set(g.tolist())) for q, g in zip(rows, gt)
        )
        p._time_native(test, a.k, budget)  # warm-up
        native, python, ratios = 0.0, 0.0, []
        for _ in range(a.rounds):
            tn = p._time_native(test, a.k, budget)
            tp = 0.0
            for q in rows:
                t = time.perf_counter()
                p.query(q, a.k, budget)
                tp += time.perf_counter() - t
            native += tn
            python += tp
            ratios.append(tn / tp)
        print(
            f"budget {budget:4d}  recall10 {hits / (a.k * n):.4f}"
            f"  native {a.rounds * n / native:9.1f} qps ({1e6 * native / (a.rounds * n):6.2f} us)"
            f"  python {a.rounds * n / python:9.1f} qps ({1e6 * python / (a.rounds * n):6.2f} us)"
            f"  ratio {native / python:.3f} (median of passes {statistics.median(ratios):.3f})"
        )


if __name__ == "__main__":
    main()
