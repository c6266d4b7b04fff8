"""Cross-language checks: the Rust-written fixture read from Python, and a Python-written index
read through the raw C ABI (ctypes on ``$PANNS_LIBRARY``, no PannsIndex involved; skipped when it
is not set)."""

from __future__ import annotations

import ctypes
from ctypes import byref, c_float, c_size_t, c_uint32
from pathlib import Path

import numpy as np
import pytest
from conftest import fixture_dir, read_meta

from panns import PannsIndex


def _capi():
    """The ctypes declarations of libpanns (skips the test when $PANNS_LIBRARY is unset)."""
    import _capi

    return _capi


def test_rust_fixture_gives_identical_results() -> None:
    d = fixture_dir()
    meta = read_meta(d)
    dim, nq, k, budget = (int(meta[x]) for x in ("dim", "n_queries", "k", "budget"))
    queries = np.fromfile(d / "queries.f32", dtype="<f4").reshape(nq, dim)
    expected_ids = np.fromfile(d / "expected_ids.u32", dtype="<u4").reshape(nq, k)
    expected_dist = np.fromfile(d / "expected_dist.f32", dtype="<f4").reshape(nq, k)
    p = PannsIndex()
    p.load(d / "index.panns", verify=True)
    assert p.dimension == dim and p.metric == meta.get("metric", p.metric)
    for i, q in enumerate(queries):
        got = p.query(q, k, budget=budget)
        valid = expected_ids[i] != 2**32 - 1
        assert [j for j, _ in got] == expected_ids[i][valid].tolist(), f"query {i}"
        assert np.allclose([x for _, x in got], expected_dist[i][valid], rtol=0, atol=1e-6)
    ids, dists = p.query(queries, k, budget=budget)
    exp = expected_ids.astype(np.int64)
    exp[expected_ids == 2**32 - 1] = -1
    assert np.array_equal(ids, exp)
    assert np.allclose(dists, expected_dist, rtol=0, atol=1e-6)


def _c_search(ptr, q: np.ndarray, k: int, budget: int):
    """One search through the raw C function."""
    _lib = _capi()
    ids = (c_uint32 * k)()
    dists = (c_float * k)()
    count = c_size_t()
    qc = np.ascontiguousarray(q, dtype=np.float32)
    st = _lib.LIB.panns_index_search(
        ptr,
        qc.ctypes.data_as(ctypes.POINTER(c_float)),
        qc.size,
        k,
        budget,
        ids,
        dists,
        byref(count),
    )
    assert st == _lib.OK, _lib.last_error_message()
    return list(zip(list(ids)[: count.value], list(dists)[: count.value]))


def test_python_saved_index_opens_through_the_c_abi(tmp_path: Path, data: np.ndarray) -> None:
    _lib = _capi()
    p = PannsIndex(metric="angular")
    p.load_matrix(data)
    p.build(10, seed=11)
    f = tmp_path / "from-python.panns"
    p.save(f)
    ptr = _lib.IndexPtr()
    st = _lib.LIB.panns_index_open(str(f).encode(), _lib.OPEN_VERIFY, byref(ptr))
    assert st == _lib.OK, _lib.last_error_message()
    try:
        assert _lib.LIB.panns_index_len(ptr) == len(data)
        assert _lib.LIB.panns_index_dim(ptr) == data.shape[1]
        assert _lib.LIB.panns_index_metric(ptr) == _lib.ANGULAR
        assert _lib.LIB.panns_index_n_trees(ptr) == 10
        for q in data[:25] + 0.1:
            c = _c_search(ptr, q, 7, 40)
            py = p.query(q, 7, budget=40)
            assert [i for i, _ in c] == [i for i, _ in py]
            assert np.allclose([x for _, x in c], [x for _, x in py], rtol=0, atol=1e-6)
    finally:
        _lib.LIB.panns_index_free(ptr)


def test_c_abi_null_and_error_message() -> None:
    _lib = _capi()
    ptr = _lib.IndexPtr()
    st = _lib.LIB.panns_index_open(None, 0, byref(ptr))
    assert st == _lib.NULL_POINTER and _lib.last_error_message()
    assert _lib.LIB.panns_index_len(None) == 0
    _lib.LIB.panns_index_free(None)
    _lib.LIB.panns_builder_free(None)


@pytest.mark.parametrize("metric", ["euclidean", "angular", "dot"])
def test_metric_codes_round_trip(tmp_path: Path, data: np.ndarray, metric: str) -> None:
    p = PannsIndex(metric=metric)
    p.load_matrix(data[:50])
    p.build(2)
    f = tmp_path / f"{metric}.panns"
    p.save(f)
    q = PannsIndex(metric=metric)
    q.load(f)
    assert q.metric == metric
