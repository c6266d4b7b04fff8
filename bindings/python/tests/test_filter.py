"""Filtered search and range search from Python: only allowed items come back, and recall
holds against exact search over the allowed items."""

import numpy as np
import pytest

import panns


def _index(n=4000, dim=16, graph=0, seed=1):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (30, dim))
    data = (centres[np.arange(n) % 30] + rng.normal(0, 1, (n, dim))).astype(np.float32)
    p = panns.PannsIndex(dimension=dim, metric="euclidean")
    p.load_matrix(data)
    p.build(8, graph_degree=graph) if graph else p.build(8)
    return p, data


def _exact_allowed(p, q, k, allowed):
    ranked = p.linear_search(q, len(p))
    return [i for i, _ in ranked if allowed[i]][:k]


@pytest.mark.parametrize("graph", [0, 24])
@pytest.mark.parametrize("every", [2, 10, 100])
def test_mask_filter_keeps_recall_and_only_allowed_items(graph, every):
    p, data = _index(graph=graph)
    n = len(p)
    allowed = (np.arange(n) * 2654435761 >> 7) % every == 0
    hits = total = 0
    for i in range(20):
        q = data[i * 97] + 0.3
        got = p.query(q, 10, budget=100, filter=allowed)
        assert all(allowed[j] for j, _ in got)
        want = _exact_allowed(p, q, 10, allowed)
        hits += len({j for j, _ in got} & set(want))
        total += len(want)
    assert hits / total >= 0.9, hits / total


def test_id_list_and_callable_filters_agree_with_the_mask():
    p, data = _index(n=2000)
    ids = np.arange(0, 2000, 7)
    mask = np.zeros(2000, dtype=bool)
    mask[ids] = True
    q = data[3]
    by_mask = p.query(q, 5, budget=200, filter=mask)
    assert p.query(q, 5, budget=200, filter=ids) == by_mask
    assert p.query(q, 5, budget=200, filter=list(ids)) == by_mask
    by_call = p.query(q, 5, budget=200, filter=lambda i: i % 7 == 0)
    assert all(i % 7 == 0 for i, _ in by_call) and len(by_call) == 5
    # A matrix of queries: one filtered list per row.
    rows = p.query(data[:3], 5, budget=200, filter=mask)
    assert len(rows) == 3 and all(all(mask[i] for i, _ in r) for r in rows)


def test_bad_filters_are_clear_errors():
    p, data = _index(n=500)
    q = data[0]
    with pytest.raises(ValueError, match="one bool per item"):
        p.query(q, 5, filter=np.ones(499, dtype=bool))
    with pytest.raises(ValueError, match="not an item"):
        p.query(q, 5, filter=[1, 2, 500])
    with pytest.raises(ValueError, match="not an item"):
        p.query(q, 5, filter=[-1])
    with pytest.raises(ZeroDivisionError):
        p.query(q, 5, filter=lambda i: 1 / 0)
    assert p.query(q, 5, filter=np.zeros(500, dtype=bool)) == []


def test_range_search():
    p, data = _index(n=3000, graph=24)
    q = data[5]
    ranked = p.linear_search(q, 3000)
    radius = ranked[40][1]
    want = {i for i, d in ranked if d <= radius}
    got = p.range_search(q, radius, max_results=1000, budget=3000)
    assert {i for i, _ in got} == want
    got, truncated = p.range_search(q, radius, max_results=10, budget=3000, return_truncated=True)
    assert len(got) == 10 and truncated
    approx = p.range_search(q, radius, budget=200)
    assert len({i for i, _ in approx} & want) >= 0.95 * len(want)
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="radius"):
            p.range_search(q, bad)


def test_strided_masks_and_unsigned_ids_read_through_numpy():
    p, data = _index(n=1000, graph=24)
    wide = np.zeros(2000, dtype=bool)
    wide[::6] = True
    strided = wide[::2]  # a non-contiguous view: every third item allowed
    assert not strided.flags["C_CONTIGUOUS"]
    q = data[11]
    want = p.query(q, 8, budget=50, filter=np.ascontiguousarray(strided))
    assert p.query(q, 8, budget=50, filter=strided) == want
    assert all(i % 3 == 0 for i, _ in want) and len(want) == 8
    ids = np.flatnonzero(strided)
    for dtype in (np.uint32, np.uint64, np.int32, np.int16):
        if np.iinfo(dtype).max >= 999:
            assert p.query(q, 8, budget=50, filter=ids.astype(dtype)) == want
    with pytest.raises(ValueError, match="filter id 1000 is not an item"):
        p.query(q, 8, filter=np.array([3, 1000], dtype=np.uint64))


def test_masks_are_packed_exactly_whatever_their_bytes():
    p, data = _index(n=1003, graph=24)  # not a multiple of 8 or 64
    rng = np.random.default_rng(4)
    for s in (0.02, 0.3, 0.9):
        mask = rng.random(1003) < s
        ids = np.flatnonzero(mask)
        # Budget 1003: an exact scan of exactly the packed bits, compared with the id list.
        for q in data[:5]:
            assert p.query(q, 10, budget=1003, filter=mask) == p.query(
                q, 10, budget=1003, filter=ids
            )
        # Non-0/1 bytes (a view of uint8 data) count as true, as in NumPy.
        raw = mask.astype(np.uint8) * rng.integers(1, 256, 1003).astype(np.uint8)
        odd = raw.view(bool)
        assert p.query(data[0], 10, budget=1003, filter=odd) == p.query(
            data[0], 10, budget=1003, filter=ids
        )


def test_range_search_with_a_filter_keeps_only_allowed_items_within_the_radius():
    p, data = _index(n=3000, graph=24)
    q = data[5]
    ranked = p.linear_search(q, 3000)
    radius = ranked[60][1]
    mask = (np.arange(3000) // 30) % 2 == 0  # half of every cluster (clusters are i % 30)
    want = [(i, d) for i, d in ranked if d <= radius and mask[i]]
    assert len(want) > 10
    for f in (mask, np.flatnonzero(mask), lambda i: (i // 30) % 2 == 0):
        got = p.range_search(q, radius, max_results=1000, budget=3000, filter=f)
        assert [i for i, _ in got] == [i for i, _ in want]
    got, truncated = p.range_search(
        q, radius, max_results=5, budget=3000, return_truncated=True, filter=mask
    )
    assert [i for i, _ in got] == [i for i, _ in want[:5]] and truncated
    with pytest.raises(ValueError, match="radius"):
        p.range_search(q, -1.0, filter=mask)
    with pytest.raises(ValueError, match="one bool per item"):
        p.range_search(q, radius, filter=mask[:-1])


def test_query_with_stats_reports_the_filtered_plan():
    p, data = _index(graph=24)
    n = len(p)
    q = data[5] + 0.3
    broad = (np.arange(n) * 2654435761 >> 7) % 2 == 0
    got, st = p.query_with_stats(q, 10, 40, filter=broad)
    assert not st["exact_scan"] and 0 < st["scored"] < n, st
    assert got == p.query(q, 10, budget=40, filter=broad)
    assert all(broad[i] for i, _ in got)
    selective = np.zeros(n, dtype=bool)
    selective[::100] = True
    got, st = p.query_with_stats(q, 10, 40, filter=selective)
    assert st["exact_scan"] and st["scored"] == selective.sum(), st
    assert [i for i, _ in got] == _exact_allowed(p, q, 10, selective)
    # A callable: the count is unknown, so the walk runs.
    got, st = p.query_with_stats(q, 10, 40, filter=lambda i: i % 2 == 0)
    assert not st["exact_scan"] and all(i % 2 == 0 for i, _ in got)


def test_query_with_stats_filters_a_live_index_by_label():
    _, data = _index(n=1000)
    live = panns.PannsIndex(data.shape[1], "euclidean")
    live.add_items(data, labels=np.arange(1000) + 10_000)
    live.commit()
    q = data[7]
    allowed = np.arange(10_000, 10_500, 5)
    got, st = live.query_with_stats(q, 5, 50, filter=allowed)
    d = ((data[allowed - 10_000] - q) ** 2).sum(1)
    assert [label for label, _ in got] == list(allowed[np.argsort(d, kind="stable")[:5]])
    assert set(st) == {"scored", "exact_scan", "budget"}  # of the base: none here


def test_a_short_label_list_on_a_live_index_is_scanned_exactly():
    p, data = _index(n=3000, graph=24)
    extra = np.random.default_rng(9).normal(0, 3, (50, data.shape[1])).astype(np.float32)
    p.add_items(extra, labels=np.arange(50) + 5000)  # the built index becomes live
    p.remove([0, 3])
    listed = np.array([0, 3, 30, 60, 90, 120, 5001, 5007, 9_999_999])
    q = data[30] + 0.1
    got, st = p.query_with_stats(q, 5, 20, filter=listed)
    assert st["exact_scan"], st  # the base's listed items, counted, so scanned
    held = [30, 60, 90, 120, 5001, 5007]  # 0 and 3 removed, 9_999_999 unknown
    rows = np.vstack([data[[30, 60, 90, 120]], extra[[1, 7]]])
    d = ((rows - q) ** 2).sum(1)
    assert [label for label, _ in got] == [held[i] for i in np.argsort(d, kind="stable")[:5]]
    assert p.query(q, 5, budget=20, filter=[]) == []


def test_range_search_with_labels_on_a_live_index():
    _, data = _index(n=800)
    live = panns.PannsIndex(data.shape[1], "euclidean")
    live.add_items(data, labels=np.arange(800) * 10)
    q = data[4]
    d = np.sqrt(((data.astype(np.float64) - q) ** 2).sum(1))  # Euclidean distance
    radius = float(np.sort(d)[40:42].mean())  # not on a boundary
    listed = np.arange(0, 8000, 20)  # even rows
    got = live.range_search(q, radius, max_results=1000, budget=800, filter=listed)
    want = sorted((i * 10 for i in range(0, 800, 2) if d[i] <= radius), key=lambda l: (d[l // 10], l))
    assert [label for label, _ in got] == want and len(want) > 5
    got, truncated = live.range_search(
        q, radius, max_results=3, budget=800, return_truncated=True, filter=lambda l: l % 20 == 0
    )
    assert truncated and [label for label, _ in got] == want[:3]
    with pytest.raises(ValueError, match="radius"):
        live.range_search(q, float("nan"), filter=listed)


@pytest.mark.parametrize("n", [1, 63, 64, 65, 127, 200, 1031])
def test_every_mask_bit_counts_at_word_edges(n: int) -> None:
    # The mask is packed 64 items per word (32 per SIMD compare, 8 per multiply at the
    # tail): every allowed item, and no other, comes back from an exhaustive search.
    rng = np.random.default_rng(n)
    data = rng.standard_normal((n, 4)).astype(np.float32)
    p = panns.PannsIndex(4, "euclidean")
    p.load_matrix(data)
    p.build(2)
    for density in (0.02, 0.5, 1.0):
        mask = rng.random(n) < density
        if not mask.any():
            mask[n // 2] = True
        got = {i for i, _ in p.query(data[0], n, budget=n, filter=mask)}
        assert got == set(np.flatnonzero(mask).tolist()), (n, density)


def test_a_prepared_filter_answers_as_its_mask_and_ids_do():
    p, data = _index(graph=24)
    n = len(p)
    for every in [2, 100]:
        mask = (np.arange(n) * 2654435761 >> 7) % every == 0
        f = p.prepare_filter(mask)
        assert isinstance(f, panns.PreparedFilter)
        assert len(f) == mask.sum() and f.items == n
        assert f.ids().tolist() == np.flatnonzero(mask).tolist()
        assert p.prepare_filter(np.flatnonzero(mask)).ids().tolist() == f.ids().tolist()
        for i in range(10):
            q = data[i * 131] + 0.2
            got, st = p.query_with_stats(q, 10, 40, filter=f)
            assert (got, st) == p.query_with_stats(q, 10, 40, filter=mask)
            assert st["exact_scan"] == (every == 100), st
            assert p.query(q, 10, budget=40, filter=f) == got
        rows = p.query(data[:3], 5, budget=40, filter=f)
        assert rows == p.query(data[:3], 5, budget=40, filter=mask)
        radius = 4.0
        assert p.range_search(data[1], radius, filter=f) == p.range_search(
            data[1], radius, filter=mask
        )
    assert "PreparedFilter(" in repr(f)
    assert p.prepare_filter(f) is not None  # re-preparing a prepared filter is allowed


def test_prepared_filter_errors():
    p, data = _index(n=500)
    with pytest.raises(ValueError, match="one bool per item"):
        p.prepare_filter(np.ones(499, dtype=bool))
    with pytest.raises(ValueError, match="not an item"):
        p.prepare_filter([0, 500])
    with pytest.raises(TypeError, match="callable"):
        p.prepare_filter(lambda i: True)
    empty = p.prepare_filter(np.zeros(500, dtype=bool))
    assert len(empty) == 0 and p.query(data[0], 5, filter=empty) == []
    other, _ = _index(n=400)
    with pytest.raises(ValueError, match="made for an index of 400 items"):
        p.query(data[0], 5, filter=other.prepare_filter([1, 2]))
    live = panns.PannsIndex(data.shape[1], "euclidean")
    live.add_items(data[:50])
    with pytest.raises(ValueError, match="prepared filter"):
        live.query(data[0], 5, filter=p.prepare_filter([1, 2]))
