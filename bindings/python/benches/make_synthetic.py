"""Writes a synthetic data set in the ann-benchmarks HDF5 layout (train, test, neighbors,
distances, attribute distance=euclidean), so that ``../shared/bench/run_peers.py`` can time every
library on it the same way as on the real sets:

    python bindings/python/benches/make_synthetic.py /tmp/synthetic-1m-128.hdf5 --n 1000000 --dim 128

Data: a seeded mixture of --clusters Gaussian clusters (centres N(0, 1), spread 0.5); the
queries are drawn the same way (disjoint from the train rows). Ground truth: exact top-100 by
brute force in float64 (NumPy, in blocks). No download.
"""

from __future__ import annotations

import argparse
import time

import h5py
import numpy as np


def mixture(rng: np.random.Generator, centers: np.ndarray, n: int) -> np.ndarray:
    out = np.empty((n, centers.shape[1]), dtype=np.float32)
    for a in range(0, n, 100_000):
        b = min(n, a + 100_000)
        c = rng.integers(0, len(centers), b - a)
        out[a:b] = centers[c] + 0.5 * rng.standard_normal((b - a, centers.shape[1])).astype(np.float32)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=5)
    a = ap.parse_args()
    t0 = time.time()
    rng = np.random.default_rng(a.seed)
    centers = rng.standard_normal((a.clusters, a.dim)).astype(np.float32)
    train = mixture(rng, centers, a.n)
    test = mixture(rng, centers, a.queries)
    k = 100
    norms = (train.astype(np.float64) ** 2).sum(1)
    neighbors = np.empty((a.queries, k), dtype=np.int32)
    distances = np.empty((a.queries, k), dtype=np.float32)
    for i in range(0, a.queries, 50):
        q = test[i : i + 50].astype(np.float64)
        d = norms[None, :] - 2 * q @ train.T.astype(np.float64) + (q**2).sum(1)[:, None]
        part = np.argpartition(d, k, axis=1)[:, :k]
        for j in range(len(q)):
            order = part[j][np.argsort(d[j, part[j]], kind="stable")]
            neighbors[i + j] = order
            distances[i + j] = np.sqrt(np.maximum(d[j, order], 0))
    with h5py.File(a.out, "w") as f:
        f.attrs["distance"] = "euclidean"
        f.create_dataset("train", data=train)
        f.create_dataset("test", data=test)
        f.create_dataset("neighbors", data=neighbors)
        f.create_dataset("distances", data=distances)
    print(f"wrote {a.out}: {a.n} x {a.dim} train, {a.queries} queries, in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
