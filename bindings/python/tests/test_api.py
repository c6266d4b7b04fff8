"""Each method of PannsIndex, on small data with known answers."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import exact_knn

import panns
from panns import PannsIndex, gaussian_vector


def test_version_and_library() -> None:
    assert panns.__version__ and panns.__version__[0].isdigit()
    # a native extension module (no libpanns.so, no ctypes)
    assert Path(panns.library_path).name.startswith("_panns")
    assert panns.__version__ == panns._panns.__version__


def test_star_import_exposes_the_panns_0x_names() -> None:
    ns: dict = {}
    exec("from panns import *", ns)
    for name in ("PannsIndex", "gaussian_vector", "CorruptIndexError"):
        assert name in ns


def test_gaussian_vector() -> None:
    v = gaussian_vector(50)
    assert v.shape == (50,) and v.dtype == np.float32
    u = gaussian_vector(50, normalize=True)
    assert abs(float(np.linalg.norm(u)) - 1.0) < 1e-5
    assert np.array_equal(gaussian_vector(8, seed=3), gaussian_vector(8, seed=3))
    assert not np.array_equal(gaussian_vector(8, seed=3), gaussian_vector(8, seed=4))


def test_add_vector_returns_ids_and_infers_dimension(data: np.ndarray) -> None:
    p = PannsIndex(metric="angular")
    assert p.dimension is None and len(p) == 0
    for i, row in enumerate(data[:10]):
        assert p.add_vector(row) == i
    assert p.dimension == data.shape[1]
    assert len(p) == 10 and p.len() == 10
    # lists and 1×d matrices are vectors too
    assert p.add_vector(list(map(float, data[10]))) == 10
    assert p.add_vector(data[11:12]) == 11
    assert p.metric == "angular"


def test_load_matrix_replaces_the_data_set(data: np.ndarray) -> None:
    p = PannsIndex()
    p.add_vector(data[0])
    p.load_matrix(data[:100])
    assert len(p) == 100
    p.load_matrix(data[:50].tolist())  # a list of rows
    assert len(p) == 50
    p.load_matrix(data.astype(np.float64))  # converted, chunk by chunk
    assert len(p) == len(data)


def test_build_query_and_exact_search(built: PannsIndex, data: np.ndarray) -> None:
    assert built.n_trees == 16 and len(built) == len(data) and built.dimension == 24
    q = data[42]
    res = built.query(q, 10)
    assert isinstance(res, list) and len(res) == 10
    assert all(isinstance(i, int) and isinstance(d, float) for i, d in res)
    assert res[0][0] == 42 and res[0][1] == pytest.approx(0.0, abs=1e-3)
    assert [d for _, d in res] == sorted(d for _, d in res)
    exact = built.linear_search(q, 10)
    ids, _ = exact_knn(data, q.astype(np.float64), 10, "euclidean")
    assert [i for i, _ in exact] == ids.tolist()
    # a generous budget re-ranks enough candidates to find the exact answer on 500 items
    assert [i for i, _ in built.query(q, 10, budget=500)] == ids.tolist()
    # k larger than the index
    assert len(built.query(q, 10_000)) == len(data)
    assert len(built.linear_search(q, 10_000)) == len(data)


def test_distances_follow_the_metric(data: np.ndarray) -> None:
    q = gaussian_vector(data.shape[1], seed=99).astype(np.float64)
    for metric in ("euclidean", "angular", "dot"):
        p = PannsIndex(metric=metric)
        p.load_matrix(data)
        p.build(8)
        got = p.linear_search(q, 5)
        ids, dist = exact_knn(data, q, 5, metric)
        assert [i for i, _ in got] == ids.tolist(), metric
        assert np.allclose([d for _, d in got], dist, rtol=1e-4, atol=1e-4), metric


def test_batch_query_matches_single_queries(built: PannsIndex, data: np.ndarray) -> None:
    queries = data[:20] + 0.01
    ids, dists = built.query(queries, 5, budget=64)
    assert ids.shape == (20, 5) and dists.shape == (20, 5)
    assert ids.dtype == np.int64 and dists.dtype == np.float32
    for row, q in enumerate(queries):
        single = built.query(q, 5, budget=64)
        assert ids[row].tolist() == [i for i, _ in single]
        assert np.allclose(dists[row], [d for _, d in single], atol=1e-6)
    # k past the number of items is clamped (as for a single query): no padding columns
    small = PannsIndex(metric="euclidean")
    small.load_matrix(data[:3])
    small.build(2)
    ids, dists = small.query(queries[:2], 5)
    assert ids.shape == dists.shape == (2, 3)
    assert sorted(ids[0].tolist()) == [0, 1, 2] and np.isfinite(dists).all()
    ids, dists = built.query(np.empty((0, 24), np.float32), 5)
    assert ids.shape == (0, 5)


def test_get_vector(data: np.ndarray) -> None:
    p = PannsIndex(metric="euclidean")
    p.load_matrix(data)
    p.build(4)
    assert np.array_equal(p.get_vector(7), data[7])
    a = PannsIndex(metric="angular")
    a.load_matrix(data)
    a.build(4)
    v = a.get_vector(7)
    assert np.allclose(v, data[7] / np.linalg.norm(data[7]), atol=1e-6)
    with pytest.raises(IndexError):
        p.get_vector(len(data))
    with pytest.raises(IndexError):
        p.get_vector(-1)


def test_build_is_deterministic_for_any_thread_count(data: np.ndarray, tmp_path: Path) -> None:
    files = []
    for threads in (False, True, 2):
        p = PannsIndex(metric="angular")
        p.load_matrix(data)
        p.parallelize(threads)
        p.build(12, seed=5, leaf_size=16, pool_size=64, candidates=4)
        f = tmp_path / f"t{threads}.idx"
        p.save(f)
        files.append(f.read_bytes())
    assert files[0] == files[1] == files[2]
    p = PannsIndex(metric="angular")
    p.load_matrix(data)
    p.build(12, seed=6, leaf_size=16, pool_size=64, candidates=4)
    p.save(tmp_path / "other.idx")
    assert (tmp_path / "other.idx").read_bytes() != files[0]


def test_build_options_keywords(data: np.ndarray) -> None:
    p = PannsIndex(metric="euclidean")
    p.load_matrix(data)
    p.build(c=3, split="median", threads=1)
    assert p.n_trees == 3
    with pytest.raises(ValueError):
        p.build(4, split="mode")
    with pytest.raises(ValueError):
        p.build(4, leaf_size=-1)


def test_save_load_roundtrip(built: PannsIndex, data: np.ndarray, tmp_path: Path) -> None:
    f = tmp_path / "idx.panns"
    built.save(str(f))
    q = data[3] + 0.05
    p = PannsIndex(metric="euclidean")
    p.load(f)
    assert len(p) == len(data) and p.dimension == 24 and p.n_trees == 16
    assert p.query(q, 10) == built.query(q, 10)
    assert p.query(q, 10, budget=100) == built.query(q, 10, budget=100)
    assert p.linear_search(q, 10) == built.linear_search(q, 10)
    # with checksum verification and a pathlib/bytes path
    v = PannsIndex()
    v.load(bytes(f), verify=True)
    assert v.query(q, 5) == built.query(q, 5)
    # re-saving a loaded (memory-mapped) index gives the same bytes
    p.save(tmp_path / "again.panns")
    assert (tmp_path / "again.panns").read_bytes() == f.read_bytes()


def test_load_takes_metric_from_the_file(built: PannsIndex, tmp_path: Path) -> None:
    f = tmp_path / "e.panns"
    built.save(f)
    p = PannsIndex(metric="angular")
    with pytest.warns(UserWarning, match="euclidean"):
        p.load(f)
    assert p.metric == "euclidean"
    with pytest.raises(ValueError, match="dimension"):
        PannsIndex(dimension=5).load(f)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no metric given: no warning
        a = PannsIndex()
        a.load(f)
        assert a.metric == "euclidean" and a.dimension == 24


def test_adding_after_build_extends_the_data_set(data: np.ndarray) -> None:
    p = PannsIndex(metric="euclidean")
    p.load_matrix(data[:100])
    p.build(4)
    q = data[150]
    assert 150 not in [i for i, _ in p.linear_search(q, 3)]
    p.add_vector(data[150])  # id 100
    assert len(p) == 101
    with pytest.raises(RuntimeError, match="build"):
        p.save("/nonexistent/x.idx")
    p.build(4)
    assert len(p) == 101
    assert p.linear_search(q, 1)[0][0] == 100
    assert np.array_equal(p.get_vector(5), data[5])
    # build() again without new vectors rebuilds the same data set
    p.build(2)
    assert len(p) == 101 and p.n_trees == 2


def test_load_csv(tmp_path: Path, data: np.ndarray) -> None:
    rows = data[:30]
    comma = tmp_path / "d.csv"
    comma.write_text("\n".join(",".join(repr(float(x)) for x in r) for r in rows) + "\n")
    p = PannsIndex(metric="euclidean")
    assert p.load_csv(comma) == 30
    assert p.dimension == 24 and len(p) == 30
    assert p.load_csv(str(comma)) == 30  # appends, as in panns 0.x
    assert len(p) == 60
    semi = tmp_path / "d.dat"
    semi.write_text("\n".join(";".join(repr(float(x)) for x in r) for r in rows) + "\n")
    assert p.load_csv(semi, sep=";") == 30
    p.build(4)
    assert len(p) == 90
    assert np.allclose(p.get_vector(65), rows[5])
    assert np.allclose(p.get_vector(5), rows[5])


def test_len_repr_close_and_context_manager(data: np.ndarray) -> None:
    with PannsIndex(metric="dot") as p:
        p.load_matrix(data[:10])
        assert "dot" in repr(p) and "not built" in repr(p)
        p.build(2)
        assert "built" in repr(p) and "not built" not in repr(p)
    assert len(p) == 0
    with pytest.raises(RuntimeError):
        p.query(data[0], 1)
    p.close()  # idempotent


def test_concurrent_queries_from_threads(built: PannsIndex, data: np.ndarray) -> None:
    queries = data[:64] + 0.02
    expected = [built.query(q, 10, budget=50) for q in queries]
    results: dict = {}
    errors: list = []

    def worker(t: int) -> None:
        try:
            for rep in range(3):
                for i in range(t, len(queries), 8):
                    results[(rep, i)] = built.query(queries[i], 10, budget=50)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for (_rep, i), r in results.items():
        assert r == expected[i]
    assert len(results) == 3 * len(queries)


def test_close_waits_for_running_searches(data: np.ndarray) -> None:
    p = PannsIndex(metric="euclidean")
    p.load_matrix(np.tile(data, (20, 1)))
    p.build(4)
    big = np.tile(data[:50], (20, 1))
    done = []

    def search() -> None:
        try:
            done.append(p.query(big, 10, budget=2000)[0].shape)
        except RuntimeError:
            done.append("closed")  # close() came first: refused, no crash

    t = threading.Thread(target=search)
    t.start()
    p.close()
    t.join()
    assert done and (done[0] == "closed" or done[0] == (1000, 10))
