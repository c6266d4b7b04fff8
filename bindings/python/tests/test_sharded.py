"""panns.ShardedIndex: the merged answer against an independent merge of each shard searched on
its own, against brute force, caller labels, batch shapes, and refusals of bad manifests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import panns
from panns import PannsIndex, ShardedIndex, _panns

DIM = 16
PER = 400
SHARDS = 4


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return np.random.default_rng(3).standard_normal((SHARDS * PER, DIM)).astype(np.float32)


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory, data) -> Path:
    d = tmp_path_factory.mktemp("shards")
    paths = []
    for s in range(SHARDS):
        p = d / f"s{s}.panns"
        assert _panns.build_shard(p, data[s * PER : (s + 1) * PER], "euclidean", n_trees=8, seed=s) == PER
        paths.append(p)
    assert panns.write_manifest(d / "m.shards", paths) == SHARDS * PER
    return d


def independent(shard_dir: Path, q: np.ndarray, k: int, budget: int):
    """Each shard opened as a plain PannsIndex, searched, ids + row offsets, merged here."""
    hits = []
    for s in range(SHARDS):
        p = PannsIndex(metric="euclidean")
        p.load(str(shard_dir / f"s{s}.panns"))
        hits += [(s * PER + i, d) for i, d in p.query(q, k, budget)]
        p.close()
    hits.sort(key=lambda h: (np.float32(h[1]), h[0]))
    return hits[:k]


def test_merge_equals_independent_merge_and_batch(shard_dir, data):
    ix = ShardedIndex(shard_dir / "m.shards")
    assert (len(ix), ix.dimension, ix.metric, ix.n_shards) == (SHARDS * PER, DIM, "euclidean", SHARDS)
    Q = np.random.default_rng(9).standard_normal((30, DIM)).astype(np.float32)
    differs = 0
    for q in Q:
        got, stats = ix.query_with_stats(q, 10, budget=30)
        assert all(not s["exact_scan"] for s in stats) and len(stats) == SHARDS
        want = independent(shard_dir, q, 10, 30)
        assert [l for l, _ in got] == [l for l, _ in want]
        np.testing.assert_allclose([d for _, d in got], [d for _, d in want], rtol=1e-6)
        exact = np.argsort(((data - q) ** 2).sum(1), kind="stable")[:10]
        differs += list(exact) != [l for l, _ in got]
    assert differs > 0  # the approximate path is approximate somewhere
    labels, dists = ix.query(Q, 10, budget=30)
    assert labels.shape == dists.shape == (30, 10)
    assert labels.dtype == np.int64 and dists.dtype == np.float32
    for r, q in enumerate(Q):
        one = ix.query(q, 10, budget=30)
        assert list(labels[r]) == [l for l, _ in one]
    # k above the item count: clamped like PannsIndex's batch query.
    small = ShardedIndex(shard_dir / "m.shards", shards=[1])
    l2, d2 = small.query(Q[:2], PER + 50, budget=0)
    assert l2.shape == (2, PER) and set(l2[0]) == set(range(PER, 2 * PER))


def test_exact_budget_is_brute_force(shard_dir, data):
    ix = ShardedIndex(shard_dir / "m.shards", verify=True)
    Q = np.random.default_rng(4).standard_normal((10, DIM)).astype(np.float32)
    labels, dists = ix.query(Q, 7, budget=PER // 2)
    for r, q in enumerate(Q):
        d = np.sqrt(((data - q) ** 2).sum(1))
        exact = np.argsort(d, kind="stable")[:7]
        assert list(labels[r]) == list(exact)
        np.testing.assert_allclose(dists[r], d[exact], rtol=1e-4)


def test_subsets_merge_to_the_whole(shard_dir):
    m = shard_dir / "m.shards"
    whole = ShardedIndex(m)
    a, b = ShardedIndex(m, shards=[0, 3]), ShardedIndex(m, shards=[2, 1])
    assert a.shard_positions == [0, 3] and len(a) + len(b) == len(whole)
    q = np.random.default_rng(1).standard_normal(DIM).astype(np.float32)
    merged = sorted(a.query(q, 5, 20) + b.query(q, 5, 20), key=lambda h: (h[1], h[0]))[:5]
    assert merged == whole.query(q, 5, 20)


def test_caller_labels(tmp_path, data):
    labels = np.arange(len(data), dtype=np.int64)[::-1] * 10 + 5
    paths = []
    for s in range(2):
        p = tmp_path / f"l{s}.panns"
        half = len(data) // 2
        _panns.build_shard(p, data[s * half : (s + 1) * half], "euclidean", labels[s * half : (s + 1) * half], n_trees=4)
        paths.append(p)
    panns.write_manifest(tmp_path / "m", paths)
    ix = ShardedIndex(tmp_path / "m")
    got = ix.query(data[123], 1)
    assert got[0][0] == labels[123] and got[0][1] == 0.0
    with pytest.raises(ValueError, match="given twice"):
        _panns.build_shard(tmp_path / "d.panns", data[:3], "euclidean", [1, 2, 1])
    with pytest.raises(ValueError, match=">= 0"):
        _panns.build_shard(tmp_path / "d.panns", data[:3], "euclidean", [1, 2, -1])
    with pytest.raises(ValueError, match="one label per row"):
        _panns.build_shard(tmp_path / "d.panns", data[:3], "euclidean", [1, 2])


def test_refusals(tmp_path, shard_dir, data):
    import shutil

    d = tmp_path / "copy"
    shutil.copytree(shard_dir, d)
    m = d / "m.shards"
    q = data[0]
    with pytest.raises(ValueError, match="dimension"):
        ShardedIndex(m).query(q[:5], 3)
    with pytest.raises(ValueError, match="k must be at least 1"):
        ShardedIndex(m).query(q, 0)
    # Shards that disagree.
    _panns.build_shard(d / "ang.panns", data[:50], "angular")
    with pytest.raises(panns.CorruptIndexError, match="shard 1.*metric angular"):
        panns.write_manifest(d / "bad", [d / "s0.panns", d / "ang.panns"])
    # A shard replaced by another index of the same shape.
    _panns.build_shard(d / "s2.panns", data[:PER], "euclidean", seed=99)
    with pytest.raises(panns.CorruptIndexError, match=r"shard 2.*s2\.panns.*replaced"):
        ShardedIndex(m)
    # Missing: an OSError subclass naming the file.
    os.remove(d / "s2.panns")
    with pytest.raises(FileNotFoundError, match=r"s2\.panns"):
        ShardedIndex(m)
    # A damaged manifest.
    text = m.read_text()
    m.write_text(text.replace("rows:400", "rows:401", 1))
    with pytest.raises(panns.CorruptIndexError, match="checksum mismatch"):
        ShardedIndex(m)
    with pytest.raises(ValueError, match="does not exist"):
        ShardedIndex(shard_dir / "m.shards", shards=[7])


def _exact_allowed(data, q, k, keep):
    d = ((data.astype(np.float64) - q) ** 2).sum(1)
    rows = [i for i in np.argsort(d, kind="stable") if keep(i)]
    return [int(i) for i in rows[:k]]


def test_filters_by_label_list_and_callable(shard_dir, data):
    ix = ShardedIndex(shard_dir / "m.shards")
    q = data[17] + 0.05
    # A short list in shards 0 and 3 (plus an unknown label): exact scans there, the
    # other shards skipped.
    short = [17, 40, 90, 200, 1599, 10**9]
    got, stats = ix.query_with_stats(q, 3, 20, filter=short)
    assert [label for label, _ in got] == _exact_allowed(data, q, 3, lambda i: i in short)
    assert stats[0]["exact_scan"] and stats[0]["scored"] == 4, stats
    assert stats[1]["scored"] == stats[2]["scored"] == 0 and stats[3]["scored"] == 1, stats
    assert ix.query(q, 3, 20, filter=np.array(short)) == got
    # A callable over odd labels: only odd labels; exact at a budget of half a shard.
    odd = lambda label: label % 2 == 1  # noqa: E731
    got = ix.query(q, 5, 20, filter=odd)
    assert len(got) == 5 and all(label % 2 for label, _ in got)
    got = ix.query(q, 5, PER // 2, filter=odd)
    assert [label for label, _ in got] == _exact_allowed(data, q, 5, lambda i: i % 2 == 1)
    # A matrix of queries: padded arrays, one filtered search per row.
    labels, dists = ix.query(data[:4], 3, 20, filter=short)
    assert labels.shape == (4, 3) and dists.dtype == np.float32
    assert [int(x) for x in labels[0]] == _exact_allowed(data, data[0], 3, lambda i: i in short)
    assert ix.query(q, 3, filter=[]) == []
    with pytest.raises(ValueError, match="boolean mask"):
        ix.query(q, 3, filter=np.ones(len(data), dtype=bool))
    with pytest.raises(ZeroDivisionError):
        ix.query(q, 3, filter=lambda label: 1 / 0)


def _ball(data, q, n, keep=lambda i: True):
    """The rows `keep` accepts within a radius halfway between the n-th and n+1-th nearest of
    them, nearest first, and that radius (no distance on the boundary)."""
    d = np.sqrt(((data.astype(np.float64) - q) ** 2).sum(1))
    rows = [int(i) for i in np.argsort(d, kind="stable") if keep(int(i))]
    return rows[:n], float((d[rows[n - 1]] + d[rows[n]]) / 2)


def test_range_search_is_the_exact_ball_over_all_shards(shard_dir, data):
    ix = ShardedIndex(shard_dir / "m.shards")
    odd = lambda label: label % 2 == 1  # noqa: E731
    odd_rows = np.arange(1, len(data), 2)
    Q = np.random.default_rng(12).standard_normal((5, DIM)).astype(np.float32)
    for q in Q:
        want, radius = _ball(data, q, 30)
        # PER // 2: every shard scans exactly, so the merged ball is the exact one.
        got = ix.range_search(q, radius, max_results=1000, budget=PER // 2)
        assert [label for label, _ in got] == want
        assert all(isinstance(label, int) and d <= radius for label, d in got)
        assert [d for _, d in got] == sorted(d for _, d in got)
        got, truncated = ix.range_search(q, radius, max_results=1000, budget=PER // 2, return_truncated=True)
        assert len(got) == 30 and truncated is False
        cut, truncated = ix.range_search(q, radius, max_results=7, budget=PER // 2, return_truncated=True)
        assert [label for label, _ in cut] == want[:7] and truncated is True
        # Filtered: a label list (array or list) and a callable give the exact filtered ball.
        want, radius = _ball(data, q, 12, lambda i: i % 2 == 1)
        for f in (odd_rows, list(odd_rows), odd):
            got = ix.range_search(q, radius, max_results=1000, budget=PER // 2, filter=f)
            assert [label for label, _ in got] == want
        # A small budget: never outside the ball.
        got = ix.range_search(q, radius, budget=10, filter=odd)
        assert set(label for label, _ in got) <= set(want)
    # The same shape as PannsIndex.range_search: a list of (int, float) tuples.
    got = ix.range_search(data[3], 0.0)
    assert got[0][0] == 3 and got[0][1] == pytest.approx(0.0, abs=1e-3)
    assert isinstance(got, list) and isinstance(got[0], tuple)
    assert ix.range_search(data[3], 100.0, filter=[]) == []
    assert ix.range_search(data[3], 100.0, filter=[10**12, 10**13]) == []


def test_range_search_refuses_bad_input(shard_dir, data):
    ix = ShardedIndex(shard_dir / "m.shards")
    q = data[0]
    for bad in (-1.0, float("nan"), float("-inf")):
        with pytest.raises(ValueError, match="radius"):
            ix.range_search(q, bad)
        with pytest.raises(ValueError, match="radius"):
            ix.range_search(q, bad, filter=[1, 2])
    with pytest.raises(ValueError, match="max_results"):
        ix.range_search(q, 1.0, max_results=0)
    with pytest.raises(ValueError, match="dimension"):
        ix.range_search(q[:5], 1.0)
    with pytest.raises(ValueError):
        ix.range_search(data[:3], 1.0)
    with pytest.raises(ValueError):
        ix.range_search(np.full(DIM, np.nan, dtype=np.float32), 1.0)
    with pytest.raises(ZeroDivisionError):
        ix.range_search(q, 10.0, filter=lambda label: 1 / 0)
    with pytest.raises(ValueError, match="boolean mask"):
        ix.range_search(q, 1.0, filter=np.ones(len(data), dtype=bool))


def test_filtered_batches_equal_one_filtered_search_per_row(shard_dir, data):
    ix = ShardedIndex(shard_dir / "m.shards")
    Q = np.random.default_rng(13).standard_normal((9, DIM)).astype(np.float32)
    listed = np.arange(0, len(data), 23)
    third = lambda label: label % 3 == 0  # noqa: E731
    for f in (listed, third):
        labels, dists = ix.query(Q, 6, 40, filter=f)
        assert labels.shape == dists.shape == (9, 6) and labels.dtype == np.int64
        for i, q in enumerate(Q):
            one = ix.query(q, 6, 40, filter=f)
            assert [int(x) for x in labels[i]] == [label for label, _ in one]
            np.testing.assert_allclose(dists[i], [d for _, d in one], rtol=1e-6)
    # At a budget of half a shard: the exact filtered answer per row.
    labels, _ = ix.query(Q, 6, PER // 2, filter=listed)
    for i, q in enumerate(Q):
        assert [int(x) for x in labels[i]] == _exact_allowed(data, q, 6, lambda r: r % 23 == 0)
    # Fewer allowed than k: padded with -1 and inf; none allowed: every row padded.
    labels, dists = ix.query(Q, 5, 40, filter=[4, 8, 10**12])
    assert (labels[:, 2:] == -1).all() and np.isinf(dists[:, 2:]).all()
    assert set(labels[:, :2].ravel()) == {4, 8}
    labels, dists = ix.query(Q, 5, 40, filter=[])
    assert (labels == -1).all() and np.isinf(dists).all()
    with pytest.raises(ValueError, match="dimension"):
        ix.query(Q[:, :5], 3, filter=listed)
    with pytest.raises(ZeroDivisionError):
        ix.query(Q, 3, filter=lambda label: 1 / 0)
