"""What the native module adds or guarantees: library defaults, hostile arguments, close() under
load, pickling and bytes, Annoy-style calls, search statistics, the Rust CSV reader, progress."""

from __future__ import annotations

import pickle
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import panns
from panns import PannsIndex


def test_defaults_are_the_rust_library_defaults(data: np.ndarray) -> None:
    # panns_core::BuildParams::default() and GraphParams::default() (panns-core/src/build.rs,
    # graph.rs), as exported by the native module; build() without arguments uses them.
    assert panns.BUILD_DEFAULTS == {
        "n_trees": 32,
        "leaf_size": 16,
        "pool_size": 256,
        "candidates": 8,
        "split": "mean",
        "seed": 42,
        "threads": 0,
        "dtype": "f32",
        "graph_degree": 24,
    }
    p = PannsIndex()
    p.load_matrix(data)
    p.build()
    assert p.n_trees == 32 and p.graph_degree == 0
    got = p.build_params
    for key in ("n_trees", "leaf_size", "pool_size", "candidates", "split", "seed", "dtype"):
        assert got[key] == panns.BUILD_DEFAULTS[key], key
    assert got["threads"] == 0  # all cores unless parallelize(False/n) or threads=
    p.build(64)  # the seed API: a count given means that many trees
    assert p.n_trees == 64
    p.build_graph()
    assert p.graph_degree == 24
    p.parallelize(False)
    p.build(4)
    assert p.build_params["threads"] == 1


def test_hostile_counts_raise_clear_value_errors(built: PannsIndex, data: np.ndarray) -> None:
    q = data[0]
    for bad, match in [(-1, ">= 0"), (2**64, "< 2\\*\\*64"), (2.5, "integer"), (True, "integer")]:
        with pytest.raises(ValueError, match=match):
            built.query(q, bad)
        with pytest.raises(ValueError, match=match):
            built.query(q, 5, budget=bad)
        with pytest.raises(ValueError, match=match):
            built.query(data[:3], bad)
    with pytest.raises(ValueError, match="budget must be >= 0"):
        built.query(q, 5, -3)
    # beyond the index size: clamped, numpy integers accepted
    assert len(built.query(q, 2**64 - 1, budget=2**64 - 1)) == len(data)
    assert len(built.query(q, np.int64(7), np.uint64(50))) == 7
    with pytest.raises(ValueError, match="threads"):
        built.query(data[:2], 3, threads=10**6)
    with pytest.raises(ValueError):
        built.build(n_trees=-4)
    with pytest.raises(ValueError):
        built.build(seed=2**64)


def test_batch_k_is_clamped_before_allocating() -> None:
    rng = np.random.default_rng(3)
    p = PannsIndex(dimension=8)
    p.load_matrix(rng.standard_normal((2000, 8)).astype(np.float32))
    p.build(4)
    queries = rng.standard_normal((100, 8)).astype(np.float32)
    tracemalloc.start()
    ids, dists = p.query(queries, 10**8)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert ids.shape == dists.shape == (100, 2000)
    assert peak < 20 * 2**20, f"peak {peak} bytes"  # 100 x 2000 x 12 bytes = 2.4 MB
    assert (np.diff(dists, axis=1) >= 0).all()


def test_nan_and_inf_name_row_and_component(built: PannsIndex, data: np.ndarray) -> None:
    q = data[:4].copy()
    q[2, 5] = np.nan
    with pytest.raises(ValueError, match="component 5 of vector 2") as e:
        built.query(q, 3)
    assert e.value.status == 4
    v = data[0].copy()
    v[7] = np.inf
    with pytest.raises(ValueError, match="component 7"):
        built.query(v, 3)
    p = PannsIndex(dimension=24)
    m = data[:10].copy()
    m[6, 1] = -np.inf
    with pytest.raises(ValueError, match="component 1 of vector 6"):
        p.load_matrix(m)


def test_query_after_close_says_closed(data: np.ndarray) -> None:
    p = PannsIndex()
    p.load_matrix(data)
    p.build(4)
    p.close()
    with pytest.raises(RuntimeError, match="closed"):
        p.query(data[0], 3)
    with pytest.raises(RuntimeError, match="not built"):
        PannsIndex(dimension=24).query(data[0], 3)
    assert p.closed and "closed" in repr(p)
    p.load_matrix(data[:50])  # a closed object can be filled and built again
    p.build(2)
    assert not p.closed and len(p.query(data[0], 3)) == 3


def test_close_is_prompt_while_threads_search(data: np.ndarray) -> None:
    p = PannsIndex()
    p.load_matrix(np.tile(data, (20, 1)))
    p.build(8)
    stop = threading.Event()
    counts = [0] * 4
    outcomes: list = []

    def search(t: int) -> None:
        try:
            while not stop.is_set():
                p.query(data[t], 10, budget=500)
                counts[t] += 1
        except RuntimeError as e:
            outcomes.append(str(e))
        except BaseException as e:  # noqa: BLE001 - reported below
            outcomes.append(e)

    workers = [threading.Thread(target=search, args=(t,)) for t in range(4)]
    for w in workers:
        w.start()
    while min(counts) < 5:
        time.sleep(0.01)
    t0 = time.perf_counter()
    p.close()
    took = time.perf_counter() - t0
    for w in workers:
        w.join(timeout=10)
    stop.set()
    assert took < 0.25, f"close() took {took:.3f} s with 4 searching threads"
    assert len(outcomes) == 4 and all(isinstance(o, str) and "closed" in o for o in outcomes)


def test_pickle_and_bytes(built: PannsIndex, data: np.ndarray, tmp_path: Path) -> None:
    q = data[9] + 0.01
    copy = pickle.loads(pickle.dumps(built))
    assert type(copy) is PannsIndex and len(copy) == len(built)
    assert copy.metric == built.metric and copy.n_trees == built.n_trees
    assert copy.query(q, 10, 60) == built.query(q, 10, 60)
    raw = built.to_bytes()
    f = tmp_path / "x.panns"
    built.save(f)
    assert raw == f.read_bytes()  # the same bytes as the file
    again = PannsIndex.from_bytes(raw, verify=True)
    assert again.query(q, 5) == built.query(q, 5)
    assert PannsIndex.from_bytes(bytearray(raw)).n_trees == 16
    with pytest.raises(panns.CorruptIndexError):
        PannsIndex.from_bytes(raw[:100])
    # an empty, unbuilt index pickles too; pending vectors must be built first
    empty = pickle.loads(pickle.dumps(PannsIndex(dimension=3, metric="dot")))
    assert empty.dimension == 3 and empty.metric == "dot" and len(empty) == 0
    built.add_vector(data[0])
    with pytest.raises(RuntimeError, match="build"):
        pickle.dumps(built)


def test_include_distances_and_annoy_calls(built: PannsIndex, data: np.ndarray) -> None:
    pairs = built.query(data[4], 5, 100)
    assert built.query(data[4], 5, 100, include_distances=False) == [i for i, _ in pairs]
    ids = built.query(data[:3], 5, 100, include_distances=False)
    assert isinstance(ids, np.ndarray) and ids.shape == (3, 5) and ids[1, 0] == 1
    nns = built.get_nns_by_item(4, 5, search_k=100)
    assert nns == [i for i, _ in pairs] and nns[0] == 4
    got_ids, got_d = built.get_nns_by_item(4, 5, search_k=100, include_distances=True)
    assert got_ids == nns and np.allclose(got_d, [d for _, d in pairs], atol=1e-5)
    d = built.get_distance(3, 8)
    assert d == pytest.approx(float(np.linalg.norm(data[3] - data[8])), rel=1e-5)
    assert built.get_distance(3, 3) == pytest.approx(0.0, abs=1e-4)
    with pytest.raises(IndexError):
        built.get_distance(0, len(data))
    with pytest.raises(IndexError):
        built.get_nns_by_item(-1, 3)


def test_batch_threads_and_input_forms(built: PannsIndex, data: np.ndarray) -> None:
    queries = data[:40] + 0.03
    ref_ids, ref_d = built.query(queries, 7, 80)
    for threads in (1, 2, 1, 0):
        ids, dists = built.query(queries, 7, 80, threads=threads)
        assert np.array_equal(ids, ref_ids) and np.array_equal(dists, ref_d)
    # float64, non-contiguous, lists and 1 x d rows all give the same answers
    q64 = queries.astype(np.float64)
    assert np.array_equal(built.query(q64, 7, 80)[0], ref_ids)
    wide = np.zeros((40, 48), np.float32)
    wide[:, ::2] = queries
    assert np.array_equal(built.query(wide[:, ::2], 7, 80)[0], ref_ids)
    assert built.query(queries[5].tolist(), 7, 80) == built.query(queries[5], 7, 80)
    assert built.query(wide[5, ::2], 7, 80) == built.query(queries[5], 7, 80)


def test_load_csv_uses_the_rust_reader(tmp_path: Path) -> None:
    f = tmp_path / "h.csv"
    f.write_text("a,b,c\n1,2,3\n4,5,6\n")  # header: skipped by the one rule (panns-io)
    p = PannsIndex()
    assert p.load_csv(f) == 2 and p.dimension == 3
    semi = tmp_path / "s.txt"
    semi.write_text("1;2;3\n4;5;6\n")
    assert p.load_csv(semi, sep=";") == 2 and len(p) == 4
    with pytest.raises(ValueError, match="line 1"):
        p.load_csv(semi)  # ';' rows read with ',' are not numbers: named by line and column
    trailing = tmp_path / "t.csv"
    trailing.write_text("1,2,3,\n4,5,6,\n")
    with pytest.raises(ValueError, match="t.csv"):
        p.load_csv(trailing)
    header_only = tmp_path / "e.csv"
    header_only.write_text("x,y,z\n")
    with pytest.raises(ValueError, match="e.csv"):
        p.load_csv(header_only)
    with pytest.raises(ValueError, match="header"):
        p.load_csv(f, header="maybe")
    with pytest.raises(ValueError, match="sep"):
        p.load_csv(f, sep=";;")
    with pytest.raises(ValueError, match="line 1"):
        p.load_csv(f, header="no")
    assert len(p) == 4


def test_build_progress(data: np.ndarray, capsys: pytest.CaptureFixture) -> None:
    p = PannsIndex()
    p.load_matrix(data)
    p.build(4, graph_degree=8, progress=True)
    err = capsys.readouterr().err
    assert "[1/2] trees" in err and "[2/2] graph" in err and "done" in err
    p.build(4)
    assert capsys.readouterr().err == ""


def test_load_without_mmap_reads_into_memory(built: PannsIndex, tmp_path: Path) -> None:
    f = tmp_path / "m.panns"
    built.save(f)
    p = PannsIndex()
    p.load(f, mmap=False)
    f.unlink()  # the index does not need the file any more
    q = np.ones(24, np.float32)
    assert p.query(q, 5) == built.query(q, 5)
