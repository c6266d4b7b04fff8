""":class:`AnnoyIndex`: a drop-in for Annoy's class on a panns index.

Covers Annoy's everyday calls (``add_item``, ``build``, ``save``/``load``/``unload``,
``get_nns_by_vector``/``get_nns_by_item`` with ``search_k`` and ``include_distances``,
``get_item_vector``, ``get_distance``, ``get_n_items``, ``get_n_trees``, ``set_seed``). Distances
are reported as Annoy reports them: Euclidean as is, angular as ``sqrt(2 - 2 cos)`` (panns
reports ``1 - cos``), dot as the inner product (larger is nearer; panns reports its negation).
``search_k`` is panns' search budget (-1: the default), not Annoy's node count.

Item ids may be sparse, as in Annoy: the index stores items densely in id order and keeps the
map; :meth:`AnnoyIndex.save` then writes it beside the index as ``FILE.ids.npy``, which
:meth:`AnnoyIndex.load` reads back.
"""

from __future__ import annotations

import math
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .index import PannsIndex

__all__ = ["AnnoyIndex"]

_METRICS = {"euclidean": "euclidean", "angular": "angular", "dot": "dot"}


class AnnoyIndex:
    """``AnnoyIndex(f, metric)``: ``f`` dimensions, metric ``'angular'``, ``'euclidean'`` or
    ``'dot'`` (Annoy's ``'manhattan'`` and ``'hamming'`` are not supported: ``ValueError``)."""

    def __init__(self, f: int, metric: str) -> None:
        if metric not in _METRICS:
            raise ValueError(
                f"metric {metric!r} is not supported: expected 'angular', 'euclidean' or 'dot'"
            )
        self.f = int(f)
        self._metric = metric
        self._items: Dict[int, np.ndarray] = {}
        self._index: Optional[PannsIndex] = None
        self._ids: Optional[np.ndarray] = None  # dense position -> item id (None: identity)
        self._seed: Optional[int] = None

    # -- building ------------------------------------------------------------------------

    def add_item(self, i: int, vector: Sequence[float]) -> None:
        """Adds item ``i`` (a non-negative integer; re-adding an id replaces its vector)."""
        if self._index is not None:
            raise RuntimeError("the index is built or loaded: add_item() is not possible now")
        i = int(i)
        if i < 0:
            raise IndexError(f"item id must be >= 0, got {i}")
        v = np.asarray(vector, dtype=np.float32)
        if v.shape != (self.f,):
            raise ValueError(f"vector of item {i} has shape {v.shape}, expected ({self.f},)")
        self._items[i] = v

    def set_seed(self, seed: int) -> None:
        """The seed of the next :meth:`build`."""
        self._seed = int(seed)

    def verbose(self, v: bool) -> bool:
        """Accepted for compatibility (build progress goes to stderr when true)."""
        self._verbose = bool(v)
        return True

    def build(self, n_trees: int, n_jobs: int = -1) -> bool:
        """Builds ``n_trees`` trees (-1: the library default) on ``n_jobs`` threads (-1: all)."""
        if self._index is not None:
            raise RuntimeError("the index is built already: unload() first")
        if not self._items:
            raise ValueError("cannot build an index with no items: add_item() first")
        ids = np.fromiter(sorted(self._items), dtype=np.int64, count=len(self._items))
        matrix = np.stack([self._items[int(i)] for i in ids])
        p = PannsIndex(dimension=self.f, metric=self._metric)
        p.load_matrix(matrix)
        p.build(
            None if n_trees is None or n_trees < 0 else int(n_trees),
            seed=self._seed,
            threads=0 if n_jobs is None or n_jobs < 0 else int(n_jobs),
            progress=getattr(self, "_verbose", False),
        )
        self._index = p
        self._ids = None if ids[-1] == len(ids) - 1 else ids
        self._items = {}
        return True

    def unbuild(self) -> bool:
        """Not supported: the vectors move into the index. Raises ``NotImplementedError``."""
        raise NotImplementedError("unbuild() is not supported by panns: create a new AnnoyIndex")

    def on_disk_build(self, fn: str) -> bool:
        """Not supported (panns builds in memory and saves atomically)."""
        raise NotImplementedError("on_disk_build() is not supported by panns: build() then save()")

    # -- files ---------------------------------------------------------------------------

    def save(self, fn: Union[str, "os.PathLike[str]"], prefault: bool = False) -> bool:
        """Writes the index to ``fn`` (and the id map to ``fn + '.ids.npy'`` for sparse ids)."""
        del prefault
        p = self._require()
        p.save(fn)
        side = os.fspath(fn) + ".ids.npy"
        if self._ids is not None:
            np.save(side, self._ids)
        elif os.path.exists(side):
            os.remove(side)
        return True

    def load(self, fn: Union[str, "os.PathLike[str]"], prefault: bool = False) -> bool:
        """Memory-maps an index file written by :meth:`save` (or by any panns API)."""
        del prefault
        p = PannsIndex(dimension=self.f)
        p.load(fn)
        if p.metric != self._metric:
            raise ValueError(f"{os.fspath(fn)}: the index uses {p.metric}, not {self._metric}")
        side = os.fspath(fn) + ".ids.npy"
        self._ids = np.load(side) if os.path.exists(side) else None
        self._index, self._items = p, {}
        return True

    def unload(self) -> bool:
        """Frees the index."""
        if self._index is not None:
            self._index.close()
        self._index, self._ids = None, None
        return True

    # -- queries -------------------------------------------------------------------------

    def _require(self) -> PannsIndex:
        if self._index is None:
            raise RuntimeError("the index is not built: call build() or load() first")
        return self._index

    def _pos(self, i: int) -> int:
        """The dense position of item ``i``."""
        if self._ids is None:
            return int(i)
        j = int(np.searchsorted(self._ids, i))
        if j >= len(self._ids) or self._ids[j] != i:
            raise IndexError(f"item {i} is not in the index")
        return j

    def _distance(self, d: float) -> float:
        if self._metric == "angular":
            return math.sqrt(max(0.0, 2.0 * d))
        if self._metric == "dot":
            return -d
        return d

    def _result(self, hits: List[Tuple[int, float]], include_distances: bool) -> Any:
        ids = [int(i) for i, _ in hits]
        if self._ids is not None:
            ids = self._ids[ids].tolist() if ids else []
        if include_distances:
            return ids, [self._distance(d) for _, d in hits]
        return ids

    def get_nns_by_vector(
        self, vector: Sequence[float], n: int, search_k: int = -1, include_distances: bool = False
    ) -> Any:
        """The ``n`` nearest items of ``vector``: ids, or ``(ids, distances)``."""
        budget = 0 if search_k is None or search_k < 0 else int(search_k)
        hits = self._require().query(np.asarray(vector, dtype=np.float32), n, budget)
        return self._result(hits, include_distances)

    def get_nns_by_item(
        self, i: int, n: int, search_k: int = -1, include_distances: bool = False
    ) -> Any:
        """The ``n`` nearest items of item ``i`` (itself first): ids, or ``(ids, distances)``."""
        p = self._require()
        budget = 0 if search_k is None or search_k < 0 else int(search_k)
        hits = p.query(p.get_vector(self._pos(i)), n, budget)
        return self._result(hits, include_distances)

    def get_item_vector(self, i: int) -> List[float]:
        """The stored vector of item ``i`` (unit length under the angular metric)."""
        return self._require().get_vector(self._pos(i)).tolist()

    def get_distance(self, i: int, j: int) -> float:
        """The distance between items ``i`` and ``j``, as Annoy reports it."""
        return self._distance(self._require().get_distance(self._pos(i), self._pos(j)))

    def get_n_items(self) -> int:
        """The number of items (added so far, or in the index)."""
        if self._index is None:
            return len(self._items)
        return len(self._index)

    def get_n_trees(self) -> int:
        """The number of trees (0 before build)."""
        return 0 if self._index is None else self._index.n_trees
