"""panns on a Ray cluster: build index shards in Ray tasks, serve them with one actor per shard,
and run batch kNN over a Ray Dataset.

    import panns.ray
    manifest = panns.ray.build_shards(X, 4, "/shared/idx", metric="angular", n_trees=32)
    searcher = panns.ray.ShardedSearcher(manifest, replicas=1)
    labels, distances = searcher.query(Q, 10, budget=200)     # == panns.ShardedIndex(manifest).query(Q, 10, 200)
    ds.map_batches(panns.ray.BatchKnn, fn_constructor_kwargs={"manifest": manifest, "k": 10},
                   concurrency=2, batch_format="numpy")

Shard files and the manifest are ordinary panns files (docs/format.md): every process that
serves or reads them opens them by path, so on a multi-node cluster ``out_dir`` must be on a
file system every node sees (NFS, a parallel file system, or a local copy at the same path on
each node); docs/scaling.md explains placement, replicas and object storage.

The answers equal :class:`panns.ShardedIndex` in one process: each shard's actor returns its
own top-k (with global labels) and the driver merges them by (distance, label), the same exact
merge as the Rust library. An actor that dies is restarted by Ray (``max_restarts``) and the
call retried (``max_task_retries``), or another replica of its shard answers; when no replica
can, :class:`ShardUnavailableError` is raised. A query never returns a partial answer.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ._panns import ShardedIndex, build_shard, write_manifest

try:
    import ray as _ray
except ImportError as _e:  # pragma: no cover - exercised only without Ray
    raise ImportError(
        "panns.ray needs Ray: pip install 'ray[data]' (" + str(_e) + ")"
    ) from _e

__all__ = ["build_shards", "ShardedSearcher", "BatchKnn", "ShardUnavailableError", "merge"]

MANIFEST_NAME = "manifest.panns-shards"

# Errors of a call whose actor died or is restarting (ActorUnavailableError is Ray >= 2.30).
_ACTOR_GONE = tuple(
    getattr(_ray.exceptions, n)
    for n in ("RayActorError", "ActorUnavailableError", "ActorDiedError")
    if hasattr(_ray.exceptions, n)
)


class ShardUnavailableError(RuntimeError):
    """No actor of a shard could answer (all replicas dead and out of restarts): the query
    is refused rather than answered from the other shards only."""


def _shard_bounds(n: int, n_shards: int) -> List[int]:
    """Row boundaries of ``n_shards`` contiguous runs over ``n`` rows (as the Rust library)."""
    return [i * n // n_shards for i in range(n_shards + 1)]


def _shard_name(s: int) -> str:
    return f"shard-{s:05d}.panns"


@_ray.remote
def _build_task(path, parts, metric, labels, column, label_column, kwargs):
    """Builds one shard file from ``parts`` (arrays, object refs of arrays or blocks, or
    file names), in order; returns (path, rows)."""
    rows = []
    label_parts = []
    for p in parts:
        if isinstance(p, _ray.ObjectRef):
            p = _ray.get(p)
        if isinstance(p, (str, os.PathLike)):
            p = np.load(p, mmap_mode="r")
        if isinstance(p, dict):  # a Ray Dataset block as a dict of columns
            if column is None:
                cols = [c for c in p if c != label_column]
                if len(cols) != 1:
                    raise ValueError(
                        f"the dataset has columns {sorted(p)}: name the vectors with column="
                    )
                column_name = cols[0]
            else:
                column_name = column
            if label_column is not None:
                label_parts.append(np.asarray(p[label_column], dtype=np.int64))
            p = p[column_name]
        rows.append(np.asarray(p, dtype=np.float32))
    data = np.ascontiguousarray(np.concatenate(rows)) if len(rows) > 1 else rows[0]
    if labels is None and label_parts:
        labels = np.concatenate(label_parts)
    n = build_shard(path, data, metric, labels, **kwargs)
    return path, n


def build_shards(
    data: Any,
    n_shards: Optional[int],
    out_dir: Union[str, "os.PathLike[str]"],
    metric: str = "euclidean",
    *,
    labels: Optional[Any] = None,
    column: Optional[str] = None,
    label_column: Optional[str] = None,
    num_cpus: float = 1,
    manifest_name: str = MANIFEST_NAME,
    **build_kwargs: Any,
) -> str:
    """Builds ``n_shards`` index shards in parallel Ray tasks and writes their manifest;
    returns the manifest's path (``out_dir/manifest.panns-shards``).

    ``data`` is a 2-D NumPy array (split into contiguous runs of rows), a list of ``.npy``
    files (grouped into ``n_shards`` contiguous runs of files; ``n_shards=None``: one shard
    per file), or a Ray Dataset (its blocks, in order, grouped into ``n_shards`` runs; the
    vectors are the dataset's only column or ``column``, optional labels ``label_column``).
    Labels: ``labels`` (one distinct non-negative int per row) or ``label_column`` are
    stored in the shard files; without them, an item's label is its row in ``data``.
    Each task asks Ray for ``num_cpus`` CPUs and builds with as many threads (unless
    ``threads=`` is given); other keyword arguments as ``PannsIndex.build`` (``n_trees``,
    ``leaf_size``, ``pool_size``, ``seed``, ``candidates``, ``graph_degree``).
    ``out_dir`` must be visible at the same path to every node that runs a task.
    """
    out_dir = os.path.abspath(os.fspath(out_dir))
    os.makedirs(out_dir, exist_ok=True)
    kwargs = dict(build_kwargs)
    kwargs.setdefault("threads", max(1, int(num_cpus)))
    groups: List[List[Any]] = []
    group_labels: List[Optional[np.ndarray]] = []
    if isinstance(data, (list, tuple)) and data and all(
        isinstance(f, (str, os.PathLike)) for f in data
    ):
        files = [os.path.abspath(os.fspath(f)) for f in data]
        n_shards = len(files) if n_shards is None else n_shards
        if not 1 <= n_shards <= len(files):
            raise ValueError(f"n_shards = {n_shards}: must be in 1..={len(files)} (the number of files)")
        b = _shard_bounds(len(files), n_shards)
        groups = [files[b[s] : b[s + 1]] for s in range(n_shards)]
        if labels is not None:
            counts = [int(np.load(f, mmap_mode="r").shape[0]) for f in files]
            lab = np.asarray(labels)
            offs = np.concatenate([[0], np.cumsum(counts)])
            group_labels = [lab[offs[b[s]] : offs[b[s + 1]]] for s in range(n_shards)]
    elif hasattr(data, "to_numpy_refs") and hasattr(data, "num_blocks"):
        if labels is not None:
            raise ValueError("a Ray Dataset takes its labels from label_column=, not labels=")
        if n_shards is None or n_shards < 1:
            raise ValueError("n_shards must be at least 1")
        ctx = _ray.data.DataContext.get_current()
        keep = ctx.execution_options.preserve_order
        ctx.execution_options.preserve_order = True
        try:
            ds = data.materialize()
            if ds.num_blocks() < n_shards:
                ds = ds.repartition(n_shards).materialize()
            refs = ds.to_numpy_refs()
        finally:
            ctx.execution_options.preserve_order = keep
        b = _shard_bounds(len(refs), n_shards)
        groups = [refs[b[s] : b[s + 1]] for s in range(n_shards)]
    else:
        arr = np.asarray(data, dtype=np.float32)
        if arr.ndim != 2:
            raise ValueError(f"data must be a 2-D array, a list of .npy files or a Ray Dataset; got shape {arr.shape}")
        if n_shards is None or not 1 <= n_shards <= arr.shape[0]:
            raise ValueError(f"n_shards = {n_shards}: must be in 1..={arr.shape[0]} (the number of rows)")
        b = _shard_bounds(arr.shape[0], n_shards)
        groups = [[_ray.put(np.ascontiguousarray(arr[b[s] : b[s + 1]]))] for s in range(n_shards)]
        if labels is not None:
            lab = np.asarray(labels)
            if lab.shape != (arr.shape[0],):
                raise ValueError(f"labels has shape {lab.shape}, expected ({arr.shape[0]},): one per row")
            group_labels = [lab[b[s] : b[s + 1]] for s in range(n_shards)]
    if labels is not None:
        all_labels = np.concatenate(group_labels)
        if np.unique(all_labels).size != all_labels.size:
            raise ValueError("labels must be distinct")
    task = _build_task.options(num_cpus=num_cpus)
    futures = [
        task.remote(
            os.path.join(out_dir, _shard_name(s)),
            groups[s],
            metric,
            group_labels[s] if group_labels else None,
            column,
            label_column,
            kwargs,
        )
        for s in range(len(groups))
    ]
    built = _ray.get(futures)
    manifest = os.path.join(out_dir, manifest_name)
    write_manifest(manifest, [p for p, _ in built])
    return manifest


def merge(
    parts: Sequence[Tuple[np.ndarray, np.ndarray]], k: int
) -> Tuple[np.ndarray, np.ndarray]:
    """The exact merge of per-shard ``(labels, distances)`` arrays (one row per query): the
    ``k`` smallest distances of each row, ties by label (as the Rust library merges)."""
    labels = np.concatenate([p[0] for p in parts], axis=1)
    dists = np.concatenate([p[1] for p in parts], axis=1)
    # Padding (label -1, distance inf) sorts last; -0.0 and 0.0 tie (then by label).
    key_l = np.where(labels < 0, np.iinfo(np.int64).max, labels)
    order = np.lexsort((key_l, dists), axis=1)[:, :k]
    return np.take_along_axis(labels, order, 1), np.take_along_axis(dists, order, 1)


@_ray.remote
class _ShardActor:
    """One shard of a manifest, memory-mapped (actors on one node share its pages)."""

    def __init__(self, manifest: str, shard: int, verify: bool, die_file: Optional[str] = None):
        self.index = ShardedIndex(manifest, shards=[shard], verify=verify)
        self.die_file = die_file

    def info(self) -> Dict[str, Any]:
        return {"len": len(self.index), "dimension": self.index.dimension, "pid": os.getpid()}

    def search(self, q: np.ndarray, k: int, budget: Optional[int], filter: Any = None):
        if self.die_file and os.path.exists(self.die_file):
            # Test hook: die in the middle of a query, once. Several actors may see the file;
            # the one whose remove succeeds dies, the others go on.
            try:
                os.remove(self.die_file)
            except FileNotFoundError:
                pass
            else:
                os._exit(1)
        return self.index.query(q, k, budget, filter=filter)


def _shard_count(manifest: str) -> int:
    """The ``shards N`` line of a manifest (the actors check everything else)."""
    with open(manifest, "rb") as f:
        for line in f.read(1 << 20).decode("utf-8", "replace").splitlines():
            if line.startswith("shards "):
                return int(line.split()[1])
    raise ValueError(f"{manifest}: not a panns shard manifest (no 'shards' line)")


class ShardedSearcher:
    """One Ray actor per shard (``replicas`` per shard), each memory-mapping its shard file;
    :meth:`query` fans a batch of queries out to one replica of every shard and merges the
    answers exactly (equal to :class:`panns.ShardedIndex` in one process).

    ``max_restarts``: how often Ray restarts a dead actor (each restart reopens the shard);
    calls to a restarting actor are retried (``max_task_retries``). ``num_cpus`` per actor
    (default 0.25: an idle actor holds no CPU, and Ray's default of 1 would let a 2-CPU node
    host only 2 shard actors).
    ``resources`` / ``scheduling_strategy`` are passed to the actors (placement, e.g. one
    shard per node: see docs/scaling.md).
    """

    def __init__(
        self,
        manifest: Union[str, "os.PathLike[str]"],
        replicas: int = 1,
        *,
        num_cpus: float = 0.25,
        max_restarts: int = 3,
        max_task_retries: int = 3,
        verify: bool = False,
        actor_options: Optional[Dict[str, Any]] = None,
        _die_file: Optional[str] = None,
    ):
        if replicas < 1:
            raise ValueError(f"replicas = {replicas}: must be at least 1")
        self.manifest = os.path.abspath(os.fspath(manifest))
        self.n_shards = _shard_count(self.manifest)
        opts = dict(
            num_cpus=num_cpus,
            max_restarts=max_restarts,
            max_task_retries=max_task_retries if max_restarts != 0 else 0,
        )
        opts.update(actor_options or {})
        self._actors = [
            [
                _ShardActor.options(**opts).remote(self.manifest, s, verify, _die_file)
                for _ in range(replicas)
            ]
            for s in range(self.n_shards)
        ]
        self._next = 0
        infos = self._call_all(lambda a: a.info.remote())
        self.shard_lens = [i["len"] for i in infos]
        self.dimension = infos[0]["dimension"]

    def __len__(self) -> int:
        return int(sum(self.shard_lens))

    def _call_all(self, call) -> List[Any]:
        """``call(actor)`` on one replica of every shard; on an actor's death tries the
        shard's other replicas; raises ShardUnavailableError when none answers."""
        replicas = len(self._actors[0])
        start = self._next
        self._next = (self._next + 1) % replicas
        pending = {s: call(self._actors[s][start]) for s in range(self.n_shards)}
        tried = {s: 1 for s in range(self.n_shards)}
        out: Dict[int, Any] = {}
        while pending:
            s, ref = next(iter(pending.items()))
            try:
                out[s] = _ray.get(ref)
                del pending[s]
            except _ACTOR_GONE as e:
                if tried[s] >= replicas:
                    raise ShardUnavailableError(
                        f"{self.manifest}: shard {s}: no replica answered ({replicas} tried, "
                        f"restarts exhausted): {type(e).__name__}: {e}"
                    ) from e
                pending[s] = call(self._actors[s][(start + tried[s]) % replicas])
                tried[s] += 1
        return [out[s] for s in range(self.n_shards)]

    def query(self, Q: Any, k: int, budget: Optional[int] = None, *, filter: Any = None):
        """The ``k`` nearest items of every row of ``Q`` over all shards: ``(labels,
        distances)`` arrays of shape ``(len(Q), min(k, len(self)))`` (int64, float32), like
        :meth:`panns.ShardedIndex.query`. A 1-D ``Q`` gives a list of ``(label, distance)``.
        ``filter``: the allowed global labels (an array or list, sent to the actors once
        through the object store) or a picklable callable taking a label, as in
        :meth:`panns.ShardedIndex.query`."""
        q = np.asarray(Q, dtype=np.float32)
        single = q.ndim == 1
        if single:
            q = q[None, :]
        if q.ndim != 2:
            raise ValueError(f"expected a vector or a matrix of queries, got shape {q.shape}")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        ref = _ray.put(np.ascontiguousarray(q))
        if filter is not None and not callable(filter):
            filter = _ray.put(np.asarray(filter))
        parts = self._call_all(lambda a: a.search.remote(ref, k, budget, filter))
        labels, dists = merge(parts, min(k, len(self)))
        if single:
            return [(int(l), float(d)) for l, d in zip(labels[0], dists[0])]
        return labels, dists

    def shutdown(self) -> None:
        """Kills the actors."""
        for reps in self._actors:
            for a in reps:
                _ray.kill(a)
        self._actors = []


class BatchKnn:
    """A ``Dataset.map_batches`` callable class: adds the ``k`` nearest items of each row's
    vector (column ``column``) as columns ``labels`` (int64) and ``distances`` (float32),
    searching the whole manifest in-process (each worker maps the shard files once; workers
    on one node share the pages).

        ds.map_batches(BatchKnn, fn_constructor_kwargs={"manifest": m, "k": 10},
                       concurrency=2, batch_format="numpy")
    """

    def __init__(
        self,
        manifest: str,
        k: int,
        budget: Optional[int] = None,
        column: str = "data",
        labels_column: str = "labels",
        distances_column: str = "distances",
        filter: Any = None,
    ):
        self.index = ShardedIndex(manifest)
        self.k, self.budget, self.column, self.filter = k, budget, column, filter
        self.out = (labels_column, distances_column)

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        if self.column not in batch:
            raise KeyError(f"BatchKnn: the batch has no column {self.column!r} (it has {sorted(batch)})")
        q = np.ascontiguousarray(np.asarray(batch[self.column], dtype=np.float32))
        labels, dists = self.index.query(q, self.k, self.budget, filter=self.filter)
        out = dict(batch)
        out[self.out[0]] = labels
        out[self.out[1]] = dists
        return out
