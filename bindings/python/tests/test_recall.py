"""Recall on the shared Gaussian data set (read by the Rust HDF5 reader) against exact search."""

from __future__ import annotations

import numpy as np
from conftest import gauss_file

from panns import PannsIndex, gaussian_vector


def test_recall_at_10_on_gauss_5000x200() -> None:
    path = gauss_file("angular")
    p = PannsIndex(metric="angular")  # dimension taken from the file
    assert p.load_hdf5(path, "train") == 5000
    assert p.dimension == 200 and len(p) == 5000
    p.parallelize(True)
    p.build(64)
    queries = np.stack([gaussian_vector(200, normalize=True, seed=1000 + i) for i in range(100)])
    truth = [[i for i, _ in p.linear_search(q, 10)] for q in queries]
    hits = sum(
        len(set(t) & {i for i, _ in p.query(q, 10, budget=3000)}) for q, t in zip(queries, truth)
    )
    recall = hits / (10 * len(queries))
    assert recall > 0.8, f"recall@10 = {recall:.3f}"
    # the batch path gives the same answers as single queries
    ids, _ = p.query(queries, 10, budget=3000)
    assert [row.tolist() for row in ids] == [
        [i for i, _ in p.query(q, 10, budget=3000)] for q in queries
    ]
    # more budget never hurts much, the default budget still finds a good part
    low = sum(len(set(t) & {i for i, _ in p.query(q, 10)}) for q, t in zip(queries, truth)) / 1000
    assert 0.2 < low <= recall + 0.05, f"default-budget recall {low:.3f} vs {recall:.3f}"


def test_recall_against_the_files_ground_truth_with_h5py() -> None:
    path = gauss_file("angular")
    try:
        import h5py  # type: ignore[import-not-found]
    except ImportError:
        import pytest

        pytest.skip("h5py is not installed: ground truth of the file not read")
    with h5py.File(path, "r") as f:
        test = np.asarray(f["test"][:100], dtype=np.float32)
        neighbors = np.asarray(f["neighbors"][:100, :10])
    p = PannsIndex(metric="angular")
    p.load_hdf5(path, "train")
    p.parallelize(True)
    p.build(64)
    ids, _ = p.query(test, 10, budget=3000)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids.tolist(), neighbors.tolist())])
    assert recall > 0.8, recall
