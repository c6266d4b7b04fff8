"""Live-index measurements through Python (issue #13 "Measure"), in one process and sitting:

1. adds per second, one item per call and in batches of 1,000, onto an index of BASE items
   (ADDS of them, default 4,500: up to the 10% delta at which a writer compacts by itself, so
   the add rate is not mixed with a compaction; the compaction is timed apart and an
   amortized rate with one compaction per 10% growth is printed): panns ``add_items`` (in
   memory; and on files with ``commit()`` every 100 adds or batch, and after every add),
   hnswlib ``add_items`` and USearch ``add`` (both single-threaded, like panns' calls; peers
   skipped when not installed);
2. panns single-query rate (one thread, k = 10, default budget) and recall@10 with a 1% and
   a 10% delta, against the compacted index (ROUNDS alternating passes over the four
   indexes, median rate: machine load hits them alike);
3. the time of ``compact()`` (in memory: rebuild of the forest);
4. recall@10 after replacing half the items (add/remove, then compact) against a fresh build
   over the same contents, at the same budget.

Recall is measured against an exact NumPy scan of the items held at that moment.

    python bindings/python/benches/live_bench.py ../shared/data/sift-images-50k-128-euclidean.hdf5 \
        [--base 45000] [--adds 4500] [--queries 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import h5py
import numpy as np

import panns


def exact_top(X: np.ndarray, labels: np.ndarray, Q: np.ndarray, k: int) -> np.ndarray:
    """The labels of the exact k nearest rows of X (Euclidean) for every query."""
    out = []
    xx = (X.astype(np.float32) ** 2).sum(1)
    for lo in range(0, len(Q), 256):
        q = Q[lo : lo + 256]
        d = xx[None, :] - 2 * q @ X.T
        idx = np.argpartition(d, k, axis=1)[:, :k]
        dd = np.take_along_axis(d, idx, 1)
        out.append(labels[np.take_along_axis(idx, np.argsort(dd, 1), 1)])
    return np.concatenate(out)


def recall(got: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean([len(set(g.tolist()) & set(t.tolist())) / len(t) for g, t in zip(got, truth)])
    )


def qps(
    p: panns.PannsIndex, Q: np.ndarray, k: int = 10, budget: int = 0
) -> "tuple[float, np.ndarray]":
    """Single-thread, one query per call: (queries per second, labels found)."""
    rows = list(Q)
    got = []
    t = time.perf_counter()
    for q in rows:
        got.append([lab for lab, _ in p.query(q, k, budget)])
    return len(rows) / (time.perf_counter() - t), np.array(got)


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:12,.0f} adds/s"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--base", type=int, default=45000)
    ap.add_argument("--adds", type=int, default=4500)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--trees", type=int, default=32)
    a = ap.parse_args()
    with h5py.File(a.data, "r") as f:
        train = np.ascontiguousarray(f["train"][:], dtype=np.float32)
        test = np.ascontiguousarray(f["test"][: a.queries], dtype=np.float32)
    B, M = a.base, min(a.adds, len(train) - a.base)
    base, new = train[:B], train[B : B + M]
    dim = train.shape[1]
    print(f"{a.data}: base {B} x {dim}, {M} adds, {len(test)} queries, panns {panns.__version__}")

    # -- 1. adds per second -------------------------------------------------------------
    results: "dict[str, dict[str, float]]" = {}
    t = time.perf_counter()
    p = panns.PannsIndex(dimension=dim, metric="euclidean")
    p.load_matrix(base)
    p.parallelize(1)
    p.build(a.trees)
    build_panns = time.perf_counter() - t
    print(f"panns build of the base ({a.trees} trees, 1 thread): {build_panns:.2f} s")
    labels = np.arange(B, B + M, dtype=np.uint64)

    def panns_fresh() -> panns.PannsIndex:
        return panns.PannsIndex.from_bytes(p.to_bytes())

    q1 = panns_fresh()
    t = time.perf_counter()
    for i in range(M):
        q1.add_items(new[i], labels[i : i + 1])
    results["panns (in memory)"] = {"one": M / (time.perf_counter() - t)}
    q2 = panns_fresh()
    t = time.perf_counter()
    for lo in range(0, M, 1000):
        q2.add_items(new[lo : lo + 1000], labels[lo : lo + 1000])
    results["panns (in memory)"]["batch"] = M / (time.perf_counter() - t)
    t = time.perf_counter()
    q2.compact()
    compact_s = time.perf_counter() - t

    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as d:
        path = os.path.join(d, "live.idx")
        p.save(path)
        w = panns.PannsIndex.load(path, writable=True)
        t = time.perf_counter()
        for i in range(M):
            w.add_items(new[i], labels[i : i + 1])
            if i % 100 == 99:
                w.commit()
        w.commit()
        results["panns (file, commit every 100)"] = {"one": M / (time.perf_counter() - t)}
        w.close()
        os.remove(path)
        os.remove(path + ".log")
        p.save(path)
        w = panns.PannsIndex.load(path, writable=True)
        t = time.perf_counter()
        for lo in range(0, M, 1000):
            w.add_items(new[lo : lo + 1000], labels[lo : lo + 1000])
            w.commit()
        results["panns (file, commit every 100)"]["batch"] = M / (time.perf_counter() - t)
        w.close()
        os.remove(path)
        os.remove(path + ".log")
        p.save(path)
        w = panns.PannsIndex.load(path, writable=True)
        n1 = min(M, 500)
        t = time.perf_counter()
        for i in range(n1):
            w.add_items(new[i], labels[i : i + 1])
            w.commit()
        results["panns (file, commit after each add)"] = {"one": n1 / (time.perf_counter() - t)}
        w.close()

    try:
        import hnswlib

        t = time.perf_counter()
        h = hnswlib.Index(space="l2", dim=dim)
        h.init_index(max_elements=B + 2 * M, M=16, ef_construction=200, random_seed=1)
        h.add_items(base, np.arange(B), num_threads=2)
        print(
            "hnswlib build of the base (M 16, ef_construction 200, 2 threads): "
            f"{time.perf_counter() - t:.2f} s"
        )
        snap = os.path.join(os.environ.get("TMPDIR", "/tmp"), "live_bench_hnsw.bin")
        h.save_index(snap)
        t = time.perf_counter()
        for i in range(M):
            h.add_items(new[i : i + 1], labels[i : i + 1].astype(np.int64), num_threads=1)
        results["hnswlib (M 16, ef_c 200)"] = {"one": M / (time.perf_counter() - t)}
        h2 = hnswlib.Index(space="l2", dim=dim)
        h2.load_index(snap, max_elements=B + 2 * M)
        os.remove(snap)
        t = time.perf_counter()
        for lo in range(0, M, 1000):
            h2.add_items(
                new[lo : lo + 1000], labels[lo : lo + 1000].astype(np.int64), num_threads=1
            )
        results["hnswlib (M 16, ef_c 200)"]["batch"] = M / (time.perf_counter() - t)
    except ImportError:
        print("hnswlib: not installed (bash ../shared/bench/setup.sh)")

    try:
        from usearch.index import Index as UIndex

        t = time.perf_counter()
        u = UIndex(ndim=dim, metric="l2sq", connectivity=16, expansion_add=128)
        u.add(np.arange(B), base, threads=2)
        print(
            "usearch build of the base (connectivity 16, expansion_add 128, 2 threads): "
            f"{time.perf_counter() - t:.2f} s"
        )
        blob = u.save()
        t = time.perf_counter()
        for i in range(M):
            u.add(int(labels[i]), new[i], threads=1)
        results["usearch (conn 16, exp_add 128)"] = {"one": M / (time.perf_counter() - t)}
        u2 = UIndex.restore(blob)
        t = time.perf_counter()
        for lo in range(0, M, 1000):
            u2.add(labels[lo : lo + 1000], new[lo : lo + 1000], threads=1)
        results["usearch (conn 16, exp_add 128)"]["batch"] = M / (time.perf_counter() - t)
    except ImportError:
        print("usearch: not installed (pip install usearch)")

    print("\nadds per second (one Python call per item | batches of 1,000)")
    ref = results["panns (in memory)"]
    for name, r in results.items():
        one, batch = r.get("one"), r.get("batch")
        print(
            f"  {name:38s} {one:12,.0f} | {'' if batch is None else f'{batch:12,.0f}'}"
            f"   (panns in memory / this: {ref['one'] / one:5.2f}"
            + ("" if batch is None else f" | {ref['batch'] / batch:5.2f}")
            + ")"
        )
    print(f"panns compact() of {B + M} items in memory (rebuild, all cores): {compact_s:.2f} s")
    # one compaction per 10% growth (what a writer on files does by itself)
    per_add = compact_s / (0.1 * B)
    for name in [n for n in results if n.startswith("panns")]:
        r = results[name]
        print(
            f"  {name:38s} amortized with compactions: {1 / (1 / r['one'] + per_add):12,.0f}"
            + ("" if "batch" not in r else f" | {1 / (1 / r['batch'] + per_add):12,.0f}")
        )

    # -- 2. query rate with a delta -----------------------------------------------------
    print(
        "\nqueries (one thread, one call each, k 10, default budget; "
        f"median of {a.rounds} alternating passes)"
    )
    d1, d10 = max(1, B // 100), min(B // 10, len(train) - B)
    more = train[B : B + d10]
    stages = []
    c0 = panns_fresh()
    stages.append(("compacted base", c0, B))
    c1 = panns_fresh()
    c1.add_items(more[:d1], np.arange(B, B + d1))
    stages.append((f"1% delta ({d1} added)", c1, B + d1))
    c10 = panns_fresh()
    c10.add_items(more[:d10], np.arange(B, B + d10))
    stages.append((f"10% delta ({d10} added)", c10, B + d10))
    cc = panns.PannsIndex.from_bytes(c10.to_bytes())
    stages.append((f"compacted again ({B + d10} items)", cc, B + d10))
    rates: "list[list[float]]" = [[] for _ in stages]
    recalls = []
    for _, ix, held in stages:
        truth = exact_top(train[:held], np.arange(held, dtype=np.uint64), test, 10)
        recalls.append(recall(qps(ix, test)[1], truth))
    for _ in range(a.rounds):
        for i, (_, ix, _) in enumerate(stages):
            rates[i].append(qps(ix, test)[0])
    med = [float(np.median(r)) for r in rates]
    for (name, _, _), r, rec in zip(stages, med, recalls):
        print(f"  {name:34s} {r:9,.0f} QPS ({r / med[0]:4.2f}x)  recall@10 {rec:.4f}")

    # -- 4. recall after churn ----------------------------------------------------------
    n = min(B, 20000) if len(train) >= 40000 else len(train) // 2
    first = train[:n]
    ch = panns.PannsIndex(dimension=dim, metric="euclidean")
    ch.load_matrix(first)
    ch.build(16, seed=11)
    rng = np.random.default_rng(3)
    order = rng.permutation(n)
    repl, rem = order[: n // 4], order[n // 4 : n // 2]
    ch.add_items(train[n : n + n // 4], repl)
    ch.remove(rem)
    add_l = np.arange(n, n + n // 4)
    ch.add_items(train[n + n // 4 : n + n // 2], add_l)
    contents = {int(i): first[i] for i in range(n)}
    for i in rem:
        del contents[int(i)]
    for j, i in enumerate(repl):
        contents[int(i)] = train[n + j]
    for j, i in enumerate(add_l):
        contents[int(i)] = train[n + n // 4 + j]
    L = np.array(sorted(contents), dtype=np.uint64)
    X = np.stack([contents[int(i)] for i in L])
    truth = exact_top(X, L, test, 10)
    budget = 300
    r_churn = recall(ch.query(test, 10, budget=budget)[0], truth)
    t = time.perf_counter()
    ch.compact()
    c_s = time.perf_counter() - t
    r_comp = recall(ch.query(test, 10, budget=budget)[0], truth)
    fresh = panns.PannsIndex(dimension=dim, metric="euclidean")
    fresh.load_matrix(X)
    fresh.build(16, seed=11)
    r_fresh = recall(L[fresh.query(test, 10, budget=budget)[0]], truth)
    print(
        f"\nrecall@10 after replacing half of {n} items (16 trees, budget {budget}): "
        f"churned {r_churn:.4f}, compacted {r_comp:.4f} (compact {c_s:.2f} s), "
        f"fresh build {r_fresh:.4f}"
    )


if __name__ == "__main__":
    main()
