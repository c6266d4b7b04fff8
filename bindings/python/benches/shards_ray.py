"""Sharded indexes on a local Ray cluster against one index: build time, batch QPS and recall@10.

    python bindings/python/benches/shards_ray.py --n 1000000 --dim 64 --shards 4 --trees 16

Data: a seeded mixture of 1000 Gaussian clusters (centres N(0, 1), spread 0.5; dimension --dim), queries drawn the same way.
One index: ``_panns.build_shard`` with all cores (``threads=0``). Shards: ``panns.ray.build_shards``
on ``ray.init(num_cpus=--cpus)``, one task per shard with ``threads=1`` (tasks run in parallel).
Recall@10 counts exact label matches against brute force (NumPy, float64) over --gt queries.
QPS: one batch of --queries queries through (a) the one index, (b) panns.ShardedIndex in this
process, (c) panns.ray.ShardedSearcher (one actor per shard), each at every --budgets value.
Prints one CSV-like table; the figures in docs/benchmarks.md come from it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import numpy as np


def mixture(n: int, dim: int, seed: int, centers: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    step = 100_000
    for a in range(0, n, step):
        b = min(n, a + step)
        c = rng.integers(0, len(centers), b - a)
        out[a:b] = centers[c] + 0.5 * rng.standard_normal((b - a, dim)).astype(np.float32)
    return out


def exact_top(data: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    norms = (data.astype(np.float64) ** 2).sum(1)
    out = np.empty((len(q), k), dtype=np.int64)
    for i in range(0, len(q), 50):
        qq = q[i : i + 50].astype(np.float64)
        d = norms[None, :] - 2 * qq @ data.T.astype(np.float64)
        part = np.argpartition(d, k, axis=1)[:, :k]
        order = np.take_along_axis(d, part, 1).argsort(1)
        out[i : i + 50] = np.take_along_axis(part, order, 1)
    return out


def recall(labels: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / truth.shape[1] for a, b in zip(labels, truth)]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--trees", type=int, default=16)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--gt", type=int, default=200)
    ap.add_argument("--budgets", default="100,400,1600")
    ap.add_argument("--dir", default=None)
    ap.add_argument("--reuse", action="store_true", help="query the files of an earlier run in --dir")
    args = ap.parse_args()

    import ray

    import panns
    import panns.ray as pray
    from panns import _panns

    centers = np.random.default_rng(1).standard_normal((1000, args.dim)).astype(np.float32)
    data = mixture(args.n, args.dim, 2, centers)
    queries = mixture(args.queries, args.dim, 3, centers)
    t = time.perf_counter()
    truth = exact_top(data, queries[: args.gt], 10)
    print(f"# data {args.n} x {args.dim}, ground truth for {args.gt} queries in {time.perf_counter() - t:.1f} s")

    work = args.dir or tempfile.mkdtemp(prefix="panns-shards-bench-")
    os.makedirs(work, exist_ok=True)
    one_path = os.path.join(work, "one.panns")
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    manifest = os.path.join(work, "shards", pray.MANIFEST_NAME)
    if args.reuse:
        print("reusing the files of an earlier run")
    else:
        t = time.perf_counter()
        _panns.build_shard(one_path, data, "euclidean", n_trees=args.trees, threads=0)
        one_build = time.perf_counter() - t
        print(f"one index: build {one_build:.1f} s ({args.cpus} threads)")
        t = time.perf_counter()
        manifest = pray.build_shards(
            data, args.shards, os.path.join(work, "shards"), metric="euclidean", n_trees=args.trees
        )
        shard_build = time.perf_counter() - t
        print(f"{args.shards} shards: build {shard_build:.1f} s (Ray tasks, 1 thread each, {args.cpus} CPUs)")
    one_mb = os.path.getsize(one_path) / 2**20
    shard_mb = sum(os.path.getsize(p) for p in panns.ShardedIndex(manifest).shard_paths) / 2**20
    print(f"files: one index {one_mb:.1f} MiB, {args.shards} shards {shard_mb:.1f} MiB in all")

    one = panns.PannsIndex(metric="euclidean")
    one.load(one_path)
    sharded = panns.ShardedIndex(manifest)
    searcher = pray.ShardedSearcher(manifest)
    print("budget,engine,recall@10,QPS (batch of %d, %d CPUs)" % (args.queries, args.cpus))
    for budget in [int(b) for b in args.budgets.split(",")]:
        for name, run in [
            ("one index", lambda: one.query(queries, 10, budget)),
            ("ShardedIndex", lambda: sharded.query(queries, 10, budget)),
            ("Ray ShardedSearcher", lambda: searcher.query(queries, 10, budget=budget)),
        ]:
            run()  # warm the pages and the actors
            t = time.perf_counter()
            labels, _ = run()
            dt = time.perf_counter() - t
            r = recall(labels[: args.gt], truth)
            print(f"{budget},{name},{r:.3f},{args.queries / dt:,.0f}")
    searcher.shutdown()
    ray.shutdown()
    if args.dir is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
