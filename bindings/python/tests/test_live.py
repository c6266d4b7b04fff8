"""Live indexes from Python (issue #13): add_items / remove / commit / refresh / compact,
labels, ``label in index``, readers and the single writer, bad batches, pickling, and recall
after replacing half the items. Every answer is checked against an exact scan of the current
contents computed with NumPy (or against another process)."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from conftest import SHARED_DATA

from panns import PannsIndex

DIM = 16


def _rows(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


def _built(n: int = 600, seed: int = 1) -> "tuple[PannsIndex, dict]":
    data = _rows(n, seed)
    p = PannsIndex(dimension=DIM, metric="euclidean")
    p.load_matrix(data)
    p.build(8, seed=3)
    return p, {i: data[i] for i in range(n)}


def _exact(model: dict, q: np.ndarray, k: int) -> "list[tuple[int, float]]":
    """The k nearest (label, distance) of the model by NumPy, ties by label."""
    labels = np.array(sorted(model), dtype=np.uint64)
    X = np.stack([model[int(lab)] for lab in labels]).astype(np.float64)
    d = np.sqrt(((X - q.astype(np.float64)) ** 2).sum(axis=1))
    order = np.lexsort((labels, d))[:k]
    return [(int(labels[i]), float(d[i])) for i in order]


def _agrees(p: PannsIndex, model: dict, n_queries: int = 15) -> None:
    """Exact search (budget over everything) of p equals NumPy's scan of the model; so do
    linear_search and the batch query, and len / `in` agree."""
    assert len(p) == len(model)
    Q = _rows(n_queries, 99)
    ids, dists = p.query(Q, 10, budget=10**9)
    assert ids.dtype == np.uint64
    for i, q in enumerate(Q):
        want = _exact(model, q, 10)
        got = p.query(q, 10, budget=10**9)
        assert [lab for lab, _ in got] == [lab for lab, _ in want]
        assert np.allclose([d for _, d in got], [d for _, d in want], rtol=1e-4, atol=1e-5)
        assert p.linear_search(q, 10) == got
        assert [int(x) for x in ids[i]] == [lab for lab, _ in got]
        assert np.allclose(dists[i], [d for _, d in got], rtol=1e-6)
    for label in list(model)[:20]:
        assert label in p


def _churn(p: PannsIndex, model: dict, seed: int = 5) -> None:
    """Adds 100 new labels, replaces 100 held ones, removes 50 (and 3 unknown labels)."""
    new = np.arange(10**12, 10**12 + 100, dtype=np.uint64)
    rows = _rows(100, seed)
    assert list(p.add_items(rows, new)) == list(new)
    model.update({int(lab): r for lab, r in zip(new, rows)})
    replaced = list(range(0, 200, 2))
    rows = _rows(100, seed + 1)
    p.add_items(rows, replaced)
    model.update({lab: r for lab, r in zip(replaced, rows)})
    gone = list(range(1, 100, 2)) + [7 * 10**15, 10**12 + 5000, 2**64 - 1]
    assert p.remove(gone) == 50
    for lab in gone:
        model.pop(lab, None)


def test_changes_after_build_answer_like_an_exact_scan():
    p, model = _built()
    assert not p.is_live and 599 in p and 600 not in p and -1 not in p and "a" not in p
    _churn(p, model)
    assert p.is_live and repr(p).endswith("live)")
    s = p.live_stats()
    assert s["in_memory"] and s["delta_len"] == 200 and s["tombstones"] == 150
    _agrees(p, model)
    for lab in (1, 3, 99):
        assert lab not in p
    p.commit()  # nothing to make durable in memory: a no-op
    assert p.live_stats()["delta_len"] == 200
    p.compact()
    s = p.live_stats()
    assert (s["delta_len"], s["tombstones"], s["generation"]) == (0, 0, 2)
    _agrees(p, model)
    # the replaced and added vectors are found on the approximate path too
    for lab in (0, 2, 10**12 + 42):
        (hits, stats) = p.query_with_stats(model[lab], 1, budget=40)
        assert (
            not stats["exact_scan"]
            and hits[0][0] == lab
            and hits[0][1] == pytest.approx(0, abs=1e-5)
        )
    assert np.array_equal(p.get_vector(10**12 + 42), model[10**12 + 42])
    assert p.get_distance(0, 2) == pytest.approx(
        float(np.linalg.norm(model[0] - model[2])), rel=1e-5
    )
    assert p.get_nns_by_item(10**12 + 42, 1, search_k=10**9) == [10**12 + 42]
    with pytest.raises(IndexError, match="label 1 is not in the index"):
        p.get_vector(1)


def test_default_labels_count_on_from_the_ids_and_a_new_index_starts_empty():
    p, model = _built(50)
    assert list(p.add_items(_rows(2, 7))) == [50, 51]
    assert list(p.add_items(_rows(1, 8)[0])) == [52]
    p.add_items(_rows(1, 9), [1000])
    assert list(p.add_items(_rows(1, 10))) == [1001]
    q = PannsIndex(metric="euclidean")  # nothing built: an empty live index in memory
    assert q.remove([1, 2]) == 0
    labels = q.add_items(_rows(30, 11), np.arange(30) * 3)
    assert len(q) == 30 and 87 in q and 86 not in q
    _agrees(q, {int(lab): r for lab, r in zip(labels, _rows(30, 11))})


def test_labels_round_trip_through_save_load_pickle_and_bytes(tmp_path):
    p, model = _built()
    _churn(p, model)
    path = tmp_path / "live.idx"
    p.save(path)
    assert p.live_stats()["delta_len"] == 0  # saving compacted it in memory
    r = PannsIndex.load(path)  # a file with labels opens as a live index (read-only)
    assert r.is_live and not r.live_stats()["writable"]
    _agrees(r, model)
    for copy in (pickle.loads(pickle.dumps(p)), PannsIndex.from_bytes(p.to_bytes())):
        assert copy.is_live
        _agrees(copy, model)
    # another process sees the same labels
    code = (
        "import sys; from panns import PannsIndex; import numpy as np\n"
        "r = PannsIndex.load(sys.argv[1])\n"
        "v = np.frombuffer(bytes.fromhex(sys.argv[2]), np.float32)\n"
        "print(len(r), r.query(v, 3, budget=10**9))"
    )
    q = model[10**12 + 7]
    out = subprocess.run(
        [sys.executable, "-c", code, str(path), q.tobytes().hex()],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == f"{len(model)} {p.query(q, 3, budget=10**9)}"
    # the instance call of load keeps working (panns 0.x) and returns None
    s = PannsIndex()
    assert s.load(path) is None and s.is_live and len(s) == len(model)


def test_a_reader_sees_commits_only_after_refresh(tmp_path):
    p, model = _built()
    path = tmp_path / "w.idx"
    p.save(path)
    early = PannsIndex.load(path)  # no log yet: a plain read-only index
    assert not early.is_live and not early.refresh()
    w = PannsIndex.load(path, writable=True)
    r = PannsIndex.load(path)  # the writer made a log: a live reader
    assert w.is_live and r.is_live
    rows = _rows(3, 21)
    w.add_items(rows, [5000, 5001, 5002])
    assert w.remove([0, 1]) == 2
    assert 5000 in w and 0 not in w
    assert not r.refresh() and 5000 not in r and 0 in r  # nothing committed yet
    w.commit()
    assert 5000 not in r and 0 in r  # committed, not yet picked up
    assert r.refresh() and early.refresh()
    for reader in (r, early):
        assert 5000 in reader and 0 not in reader and len(reader) == len(model) + 1
        assert reader.query(rows[1], 1, budget=10**9)[0][0] == 5001
    # compaction by the writer: readers move to the new base on refresh
    w.compact()
    assert r.refresh() and r.live_stats()["generation"] == 2 and len(r) == len(model) + 1
    # another process opening the files sees the committed state
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from panns import PannsIndex; r = PannsIndex.load(sys.argv[1]);"
            "print(len(r), 5002 in r, 1 in r)",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == [str(len(model) + 1), "True", "False"]
    w.close()


def test_a_commit_survives_the_writer_dying_and_uncommitted_changes_do_not(tmp_path):
    p, model = _built(100)
    path = tmp_path / "crash.idx"
    p.save(path)
    child = (
        "import os, sys; import numpy as np; from panns import PannsIndex\n"
        "w = PannsIndex.load(sys.argv[1], writable=True)\n"
        "w.add_items(np.full((1, 16), 0.5, np.float32), [1000]); w.remove([3]); w.commit()\n"
        "w.add_items(np.full((1, 16), 0.7, np.float32), [2000]); w.remove([4])\n"
        "assert w.live_stats()['pending'] == 2\n"
        "os._exit(0)  # dies without closing: nothing after the commit is written\n"
    )
    subprocess.run([sys.executable, "-c", child, str(path)], check=True)
    r = PannsIndex.load(path)
    assert 1000 in r and 3 not in r and 2000 not in r and 4 in r and len(r) == 100
    assert np.allclose(r.get_vector(1000), 0.5)
    # the lock died with the writer: a new writer opens
    w = PannsIndex.load(path, writable=True)
    w.close()


def test_a_writer_compacts_after_a_commit_past_the_thresholds_unless_told_not_to(tmp_path):
    p, model = _built(200)
    path = tmp_path / "auto.idx"
    p.save(path)
    w = PannsIndex.load(path, writable=True)
    opts = w.live_options()
    assert opts == {
        "auto_compact": True,
        "compact_removed_fraction": 0.2,
        "compact_delta_fraction": 0.1,
        "delta_index_threshold": 4096,
    }
    w.live_options(auto_compact=False)
    assert w.remove(range(50)) == 50  # 25% of the base removed
    w.commit()
    assert w.live_stats()["generation"] == 1 and w.live_stats()["tombstones"] == 50
    w.live_options(auto_compact=True)
    w.add_items(_rows(1, 3), [777])
    w.commit()  # crosses the 20% threshold: compacts into generation 2
    s = w.live_stats()
    assert (s["generation"], s["tombstones"], s["delta_len"], s["len"]) == (2, 0, 0, 151)
    for lab in range(50):
        model.pop(lab)
    model[777] = _rows(1, 3)[0]
    _agrees(w, model, n_queries=5)
    with pytest.raises(ValueError, match="compact_delta_fraction must be a finite number"):
        w.live_options(compact_delta_fraction=float("nan"))
    with pytest.raises(ValueError, match="delta_index_threshold must be at least 1"):
        w.live_options(delta_index_threshold=0)
    with pytest.raises(RuntimeError, match="not a live index"):
        _built(10)[0].live_options()
    w.close()


def test_one_writer_at_a_time_and_read_only_loads_refuse_changes(tmp_path):
    p, _ = _built(100)
    path = tmp_path / "one.idx"
    p.save(path)
    w = PannsIndex.load(path, writable=True)
    with pytest.raises(BlockingIOError, match="another writer holds this lock"):
        PannsIndex.load(path, writable=True)
    other = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from panns import PannsIndex\n"
            "try:\n    PannsIndex.load(sys.argv[1], writable=True)\n"
            "except BlockingIOError as e:\n    print('refused:', e)",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert other.startswith("refused:") and "one writer at a time" in other
    r = PannsIndex.load(path)
    with pytest.raises(io.UnsupportedOperation, match="read-only"):
        r.add_items(_rows(1, 3), [9999])
    with pytest.raises(io.UnsupportedOperation, match="read-only"):
        r.remove([1])
    with pytest.raises(FileNotFoundError, match="no live index here"):
        PannsIndex.load(tmp_path / "none.idx", writable=True)
    w.close()  # releases the lock
    w2 = PannsIndex.load(path, writable=True)
    w2.add_items(_rows(1, 4), [7])
    w2.commit()
    w2.close()
    # a plain file loaded read-only refuses changes too (the file is not touched)
    plain = tmp_path / "plain.idx"
    p.save(plain)
    q = PannsIndex()
    q.load(plain)
    with pytest.raises(io.UnsupportedOperation, match="writable=True"):
        q.add_items(_rows(1, 5))
    assert not os.path.exists(str(plain) + ".log")


@pytest.mark.parametrize("on_file", [False, True])
def test_a_bad_batch_applies_nothing(tmp_path, on_file):
    p, model = _built(200)
    if on_file:
        path = tmp_path / "b.idx"
        p.save(path)
        p = PannsIndex.load(path, writable=True)
    p.add_items(_rows(1, 30), [10**9])
    model[10**9] = _rows(1, 30)[0]
    good = _rows(3, 31)
    nan = good.copy()
    nan[1, 4] = np.nan
    cases = [
        (nan, [500, 501, 502], "row 1 \\(label 501\\).*component 4"),
        (good, [500, 501, 500], "row 2 \\(label 500\\).*also on row 0"),
        (np.ones((3, DIM + 1), np.float32), [500, 501, 502], "dimension is 16"),
        (good, [500, 501], "2 labels for 3 vectors"),
        (good, [500, -1, 502], "labels must be >= 0"),
        (good, [500, 1.5, 502], "labels must be integers"),
        (np.ones((2, 3, DIM), np.float32), None, "1-D\\) or a matrix"),
    ]
    for rows, labels, msg in cases:
        with pytest.raises(ValueError, match=msg):
            p.add_items(rows, labels)
    # replacing 0 and adding 500 in a batch whose last row is bad: neither applied
    bad = _rows(2, 32)
    bad[1, 0] = np.inf
    with pytest.raises(ValueError, match="nothing of the batch was applied"):
        p.add_items(bad, [0, 500])
    assert 500 not in p and 501 not in p
    _agrees(p, model, n_queries=5)
    if on_file:
        p.commit()
        p.close()
        _agrees(PannsIndex.load(tmp_path / "b.idx"), model, n_queries=5)


def test_methods_a_live_index_does_not_support_say_so():
    p, _ = _built(100)
    p.remove([3])
    with pytest.raises(NotImplementedError, match="not supported on a live index"):
        p.build_graph(8)
    with pytest.raises(NotImplementedError, match="add_items"):
        p.add_vector(_rows(1, 1)[0])
    with pytest.raises(NotImplementedError, match="compact"):
        p.build(8)
    # starting over with a new data set still works (changes wait for its build)
    p.load_matrix(_rows(50, 2))
    with pytest.raises(RuntimeError, match="call build\\(\\) first"):
        p.add_items(_rows(1, 3), [1])
    p.build(4)
    assert not p.is_live and len(p) == 50 and 3 in p


def test_filters_on_a_live_index_take_labels():
    p, model = _built()
    _churn(p, model)
    allowed = {lab: v for lab, v in model.items() if lab % 3 == 0}
    as_list = sorted(allowed) + [2**64 - 3]  # an unknown label allows nothing more
    Q = _rows(8, 77)
    for q in Q:
        want = [lab for lab, _ in _exact(allowed, q, 10)]
        by_call = p.query(q, 10, budget=10**9, filter=lambda lab: lab % 3 == 0)
        by_labels = p.query(q, 10, budget=10**9, filter=np.array(as_list, dtype=np.uint64))
        assert [lab for lab, _ in by_call] == want == [lab for lab, _ in by_labels]
        approx = p.query(q, 10, budget=60, filter=as_list, include_distances=False)
        assert len(approx) == 10 and all(lab in allowed for lab in approx)
    rows = p.query(Q[:3], 5, budget=10**9, filter=lambda lab: lab % 3 == 0)
    assert [[lab for lab, _ in r] for r in rows] == [
        [lab for lab, _ in _exact(allowed, q, 5)] for q in Q[:3]
    ]
    with pytest.raises(ValueError, match="boolean mask has no meaning on a live index"):
        p.query(Q[0], 5, filter=np.ones(len(p), bool))

    def boom(label):
        raise KeyError(label)

    with pytest.raises(KeyError):
        p.query(Q[0], 5, filter=boom)


def test_range_search_on_a_live_index():
    p, model = _built()
    _churn(p, model)
    q = _rows(1, 5)[0]
    ranked = _exact(model, q, len(model))
    radius = ranked[30][1]
    want = [lab for lab, d in ranked if d <= radius]
    got = p.range_search(q, radius, 1000, budget=10**9)
    assert [lab for lab, _ in got] == want and len(want) >= 31
    got, truncated = p.range_search(q, radius, 12, budget=10**9, return_truncated=True)
    assert truncated and [lab for lab, _ in got] == want[:12]
    with pytest.raises(ValueError, match="radius"):
        p.range_search(q, -1.0)


def _recall(got: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean([len(set(g.tolist()) & set(t.tolist())) / len(t) for g, t in zip(got, truth)])
    )


def test_recall_after_replacing_half_the_items_matches_a_fresh_build():
    h5py = pytest.importorskip("h5py", reason="h5py is not installed")
    path = SHARED_DATA / "sift-images-50k-128-euclidean.hdf5"
    if not path.is_file():
        pytest.skip(f"{path} is absent (shared data sets are not available here)")
    with h5py.File(path, "r") as f:
        train = np.asarray(f["train"][:30000], dtype=np.float32)
        queries = np.asarray(f["test"][:300], dtype=np.float32)
    n = 20000
    first, extra = train[:n], train[n:]
    live = PannsIndex(dimension=128, metric="euclidean")
    live.load_matrix(first)
    live.build(16, seed=11)
    rng = np.random.default_rng(3)
    order = rng.permutation(n)
    replaced, removed = order[: n // 4], order[n // 4 : n // 2]
    # half the items change: a quarter replaced by new vectors, a quarter removed and
    # as many new labels added (in batches, as an application would)
    for lo in range(0, n // 4, 1000):
        live.add_items(extra[lo : lo + 1000], replaced[lo : lo + 1000])
    assert live.remove(removed) == n // 4
    new_labels = np.arange(n, n + n // 4)
    live.add_items(train[n + n // 4 : n + n // 2], new_labels)
    s = live.live_stats()
    assert (s["tombstones"], s["delta_len"]) == (n // 2, n // 2)
    budget = 300  # far below n / 2: never an exact scan
    before = live.query(queries, 10, budget=budget)[0]
    live.compact()
    # the contents, by label, and a fresh build over them
    contents = {int(lab): first[lab] for lab in range(n)}
    for lab in removed:
        del contents[int(lab)]
    for i, lab in enumerate(replaced):
        contents[int(lab)] = extra[i]
    for i, lab in enumerate(new_labels):
        contents[int(lab)] = train[n + n // 4 + i]
    labels = np.array(sorted(contents), dtype=np.uint64)
    X = np.stack([contents[int(lab)] for lab in labels])
    assert len(live) == len(X) == n
    fresh = PannsIndex(dimension=128, metric="euclidean")
    fresh.load_matrix(X)
    fresh.build(16, seed=11)
    # exact ground truth by NumPy (as labels)
    d2 = (queries**2).sum(1)[:, None] - 2 * queries @ X.T + (X**2).sum(1)[None, :]
    truth = labels[np.argsort(d2, axis=1)[:, :10]]
    assert not live.query_with_stats(queries[0], 10, budget)[1]["exact_scan"]
    got_live = live.query(queries, 10, budget=budget)[0]
    got_fresh = labels[fresh.query(queries, 10, budget=budget)[0]]
    r_live, r_fresh = _recall(got_live, truth), _recall(got_fresh, truth)
    r_before = _recall(before, truth)
    print(
        f"recall@10 at budget {budget}: churned {r_before:.4f}, "
        f"compacted {r_live:.4f}, fresh {r_fresh:.4f}"
    )
    assert r_fresh > 0.5, r_fresh
    assert abs(r_live - r_fresh) <= 0.02, (r_live, r_fresh)
    # before compaction (half the base tombstoned, half the items in the delta) no worse
    assert r_before >= r_fresh - 0.02, (r_before, r_fresh)


def test_searches_run_while_another_thread_adds_and_compacts():
    import threading

    p, model = _built(400)
    p.remove([0])
    del model[0]
    stop = threading.Event()
    errors: list = []

    def search() -> None:
        q = _rows(4, 50)
        while not stop.is_set():
            try:
                ids, _ = p.query(q, 5, budget=50)
                assert ids.shape == (4, 5)
                p.query(q[0], 5)
                len(p)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
                return

    threads = [threading.Thread(target=search) for _ in range(3)]
    for t in threads:
        t.start()
    for b in range(20):
        rows = _rows(10, 200 + b)
        labels = list(range(5000 + 10 * b, 5010 + 10 * b))
        p.add_items(rows, labels)
        model.update(zip(labels, rows))
        if b % 7 == 6:
            p.compact()
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors
    _agrees(p, model, n_queries=5)
