"""panns.ray on a real local Ray cluster (ray.init(num_cpus=2), one cluster for the module):
shards built in Ray tasks from an array, .npy files and a Ray Dataset; ShardedSearcher answers
equal panns.ShardedIndex in one process; an actor that dies mid-query is restarted (same
answer) or, without restarts, the query fails with ShardUnavailableError; BatchKnn under
map_batches."""

from __future__ import annotations

import os

import numpy as np
import pytest

ray = pytest.importorskip(
    "ray", reason="Ray is not installed (bindings/python/test.sh installs it with pip where a wheel exists)"
)
pytest.importorskip("ray.data", reason="ray[data] is not installed")

import panns  # noqa: E402
import panns.ray as pray  # noqa: E402
from panns import ShardedIndex  # noqa: E402

DIM = 12
N = 2000


@pytest.fixture(scope="module", autouse=True)
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return np.random.default_rng(5).standard_normal((N, DIM)).astype(np.float32)


@pytest.fixture(scope="module")
def queries() -> np.ndarray:
    return np.random.default_rng(6).standard_normal((40, DIM)).astype(np.float32)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory, data) -> str:
    out = tmp_path_factory.mktemp("ray-shards")
    return pray.build_shards(data, 4, out, metric="euclidean", n_trees=8, seed=3)


def test_built_shards_equal_local_builds(manifest, data, tmp_path):
    ix = ShardedIndex(manifest, verify=True)
    assert (len(ix), ix.n_shards, ix.dimension) == (N, 4, DIM)
    # The same shards built here in-process give bit-identical files (builds are deterministic).
    for s in range(4):
        a, b = s * N // 4, (s + 1) * N // 4
        p = tmp_path / f"local{s}.panns"
        panns._panns.build_shard(p, data[a:b], "euclidean", n_trees=8, seed=3, threads=1)
        with open(p, "rb") as f1, open(ix.shard_paths[s], "rb") as f2:
            assert f1.read() == f2.read(), f"shard {s}"


def test_searcher_equals_sharded_index(manifest, queries):
    local = ShardedIndex(manifest)
    searcher = pray.ShardedSearcher(manifest, replicas=2)
    try:
        assert len(searcher) == N
        for k, budget in [(10, 40), (5, None), (3000, 10)]:
            want_l, want_d = local.query(queries, k, budget)
            got_l, got_d = searcher.query(queries, k, budget=budget)
            assert got_l.shape == want_l.shape == (len(queries), min(k, N))
            np.testing.assert_array_equal(got_l, want_l)
            np.testing.assert_array_equal(got_d, want_d)
        # Stats of the same query: the per-shard searches were approximate (budget 40 << 250).
        _, stats = local.query_with_stats(queries[0], 10, 40)
        assert not any(s["exact_scan"] for s in stats)
        assert searcher.query(queries[0], 4, budget=40) == local.query(queries[0], 4, 40)
        # Filters reach every actor: a label list and a callable, as in one process.
        listed = np.arange(0, N, 37)
        for f in (listed, lambda label: label % 3 == 0):
            want_l, want_d = local.query(queries, 5, 40, filter=f)
            got_l, got_d = searcher.query(queries, 5, budget=40, filter=f)
            np.testing.assert_array_equal(got_l, want_l)
            np.testing.assert_array_equal(got_d, want_d)
        assert np.isin(got_l, np.arange(0, N, 3)).all()
    finally:
        searcher.shutdown()


def test_npy_files_and_labels(tmp_path, data, queries):
    files = []
    for i in range(5):
        f = tmp_path / f"part{i}.npy"
        np.save(f, data[i * 400 : (i + 1) * 400])
        files.append(str(f))
    labels = np.arange(N, dtype=np.int64) * 3 + 1
    m = pray.build_shards(files, 2, tmp_path / "out", metric="euclidean", labels=labels, n_trees=4)
    ix = ShardedIndex(m)
    assert ix.n_shards == 2 and len(ix) == N
    assert ix.query(data[1234], 1)[0][0] == labels[1234]
    # Without labels the label is the row in the concatenation of the files.
    m2 = pray.build_shards(files, None, tmp_path / "out2", n_trees=4)
    assert ShardedIndex(m2).n_shards == 5
    assert ShardedIndex(m2).query(data[1234], 1)[0][0] == 1234


def test_ray_dataset_input_and_batch_knn(tmp_path, data, queries):
    ds = ray.data.from_numpy(data).repartition(6)
    m = pray.build_shards(ds, 3, tmp_path / "ds", n_trees=4)
    ix = ShardedIndex(m)
    assert ix.n_shards == 3 and len(ix) == N
    assert ix.query(data[777], 1)[0][0] == 777  # block order kept: labels are rows
    qds = ray.data.from_numpy(queries)
    out = qds.map_batches(
        pray.BatchKnn,
        fn_constructor_kwargs={"manifest": m, "k": 5, "budget": 30},
        concurrency=1,
        batch_size=16,
        batch_format="numpy",
    ).take_all()
    even = np.arange(0, N, 2)
    filtered = qds.map_batches(
        pray.BatchKnn,
        fn_constructor_kwargs={"manifest": m, "k": 5, "budget": 30, "filter": even},
        concurrency=1,
        batch_size=16,
        batch_format="numpy",
    ).take_all()
    fq = np.stack([r["data"] for r in filtered])
    np.testing.assert_array_equal(np.stack([r["labels"] for r in filtered]), ix.query(fq, 5, 30, filter=even)[0])
    assert len(out) == len(queries)
    q = np.stack([r["data"] for r in out])
    want_l, want_d = ix.query(q, 5, 30)
    np.testing.assert_array_equal(np.stack([r["labels"] for r in out]), want_l)
    np.testing.assert_array_equal(np.stack([r["distances"] for r in out]), want_d)


def test_dead_actor_is_restarted_mid_query(manifest, queries, tmp_path):
    die = tmp_path / "die-once"
    searcher = pray.ShardedSearcher(manifest, max_restarts=1, _die_file=str(die))
    try:
        want = ShardedIndex(manifest).query(queries, 10, 40)
        die.write_text("x")  # the first actor to search now exits mid-query, once
        got = searcher.query(queries, 10, budget=40)
        assert not die.exists(), "no actor died"
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    finally:
        searcher.shutdown()


def test_dead_actor_without_restarts_fails_clearly(manifest, queries, tmp_path):
    die = tmp_path / "die"
    searcher = pray.ShardedSearcher(manifest, max_restarts=0, _die_file=str(die))
    try:
        die.write_text("x")
        with pytest.raises(pray.ShardUnavailableError, match="shard [0-3]: no replica answered"):
            searcher.query(queries, 10, budget=40)
    finally:
        searcher.shutdown()


def test_bad_manifest_is_refused(tmp_path, manifest):
    import shutil

    d = tmp_path / "bad"
    shutil.copytree(os.path.dirname(manifest), d)
    os.remove(d / "shard-00001.panns")
    with pytest.raises(Exception, match=r"shard-00001\.panns"):
        pray.ShardedSearcher(str(d / os.path.basename(manifest)), max_restarts=0)


def test_ray_dataset_with_a_label_column(tmp_path, data):
    items = [{"vec": data[i], "id": 10_000 + 7 * i} for i in range(600)]
    ds = ray.data.from_items(items).repartition(3)
    m = pray.build_shards(ds, 2, tmp_path / "lab", column="vec", label_column="id", n_trees=4)
    ix = ShardedIndex(m)
    assert len(ix) == 600
    for i in (0, 123, 599):
        assert ix.query(data[i], 1)[0][0] == 10_000 + 7 * i
    with pytest.raises(ValueError, match="label_column"):
        pray.build_shards(ds, 2, tmp_path / "x", labels=np.arange(600))
