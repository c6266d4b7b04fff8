"""panns.AnnoyIndex: Annoy's class on a panns index."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from panns import AnnoyIndex


def test_annoy_dense_ids(data: np.ndarray, tmp_path: Path) -> None:
    a = AnnoyIndex(24, "angular")
    for i, v in enumerate(data):
        a.add_item(i, v)
    assert a.get_n_items() == len(data) and a.get_n_trees() == 0
    a.set_seed(3)
    a.build(10, n_jobs=1)
    assert a.get_n_trees() == 10 and a.get_n_items() == len(data)
    ids = a.get_nns_by_item(5, 5, search_k=200)
    assert ids[0] == 5 and len(ids) == 5
    ids2, dists = a.get_nns_by_vector(data[5], 5, search_k=200, include_distances=True)
    assert ids2 == ids and dists[0] == pytest.approx(0.0, abs=1e-3)
    u = data[5] / np.linalg.norm(data[5])
    w = data[9] / np.linalg.norm(data[9])
    assert a.get_distance(5, 9) == pytest.approx(math.sqrt(2 - 2 * float(u @ w)), rel=1e-4)
    assert np.allclose(a.get_item_vector(5), u, atol=1e-6)
    f = tmp_path / "a.ann"
    a.save(str(f))
    b = AnnoyIndex(24, "angular")
    b.load(str(f))
    assert b.get_nns_by_item(5, 5, search_k=200) == ids
    b.unload()
    with pytest.raises(RuntimeError):
        b.get_nns_by_item(5, 5)
    with pytest.raises(ValueError):
        AnnoyIndex(24, "hamming")


def test_annoy_sparse_ids_and_dot(data: np.ndarray, tmp_path: Path) -> None:
    a = AnnoyIndex(24, "dot")
    for i, v in enumerate(data[:50]):
        a.add_item(1000 + 7 * i, v)
    a.build(4)
    ids, dists = a.get_nns_by_item(1000 + 7 * 3, 3, include_distances=True)
    assert all((x - 1000) % 7 == 0 for x in ids)
    assert a.get_distance(1000, 1007) == pytest.approx(float(data[0] @ data[1]), rel=1e-4)
    f = tmp_path / "s.ann"
    a.save(f)
    b = AnnoyIndex(24, "dot")
    b.load(f)
    assert b.get_nns_by_item(1000 + 7 * 3, 3) == ids
    with pytest.raises(IndexError):
        b.get_item_vector(1001)
