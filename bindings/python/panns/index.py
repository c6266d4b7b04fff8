"""The :class:`PannsIndex` class: the panns 0.x Python API over the native module ``panns._panns``.

Every method is implemented in Rust (``bindings/python/src/lib.rs``) on ``panns-core`` and
``panns-io``; this module adds pickling, :meth:`PannsIndex.from_bytes`, typed overloads and the
panns 0.x helpers. Errors:

=============================================================  ===================================
cause                                                          exception
=============================================================  ===================================
invalid argument, dimension mismatch, NaN/inf (naming the row   :class:`ValueError`
and component), zero vector, empty data set
a file of a newer format version or the other endianness       :class:`UnsupportedError`
                                                               (a :class:`ValueError`)
corrupt index or dataset file                                  :class:`CorruptIndexError`
                                                               (a :class:`ValueError`)
I/O failure                                                    :class:`OSError` (with ``errno``,
                                                               so a missing file is a
                                                               :class:`FileNotFoundError`)
item id out of range                                           :class:`IndexError`
searching before build()/load(), or after close()              :class:`RuntimeError`
=============================================================  ===================================

Exceptions raised by the library carry the C ABI's status code in their ``status`` attribute.
"""

from __future__ import annotations

import os
from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    List,
    Literal,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
    Union,
    overload,
)

import numpy as np
import numpy.typing as npt

from . import _panns
from ._panns import CorruptIndexError, UnsupportedError

__all__ = [
    "PannsIndex",
    "CorruptIndexError",
    "UnsupportedError",
    "gaussian_vector",
    "precision",
    "recall",
]

#: A vector: a 1-D NumPy array (float32 C-contiguous arrays are used in place) or a sequence.
VectorLike = Union["npt.NDArray[Any]", Sequence[float]]
#: A matrix: a 2-D NumPy array or a sequence of rows.
MatrixLike = Union["npt.NDArray[Any]", Sequence[Sequence[float]]]
#: A path: ``str``, ``bytes`` or :class:`os.PathLike`.
PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
#: ``(id, distance)`` pairs, nearest first.
Pairs = List[Tuple[int, float]]

_T = TypeVar("_T", bound="PannsIndex")


class _LoadMethod:
    """``load`` callable on an instance (``p.load(path)``, the panns 0.x call; returns
    ``None``) or on the class (``PannsIndex.load(path, writable=True)``; returns a new
    index)."""

    def __get__(self, obj: Any, cls: Any) -> Any:
        native = _panns.Index.load
        if obj is not None:
            return native.__get__(obj, cls)

        def load(
            fname: Any, mmap: bool = True, verify: bool = False, writable: bool = False
        ) -> Any:
            p = cls()
            native(p, fname, mmap, verify, writable)
            return p

        load.__doc__ = native.__doc__
        return load


def _restore(cls: "Type[_T]", state: Dict[str, Any]) -> _T:
    """Rebuilds a pickled :class:`PannsIndex` (see :meth:`PannsIndex.__reduce__`)."""
    p = cls(dimension=state["dimension"], metric=state["metric"], dtype=state.get("dtype"))
    if state.get("threads") is not None:
        p.parallelize(state["threads"] or True)
    if state.get("index") is not None:
        p._load_bytes(state["index"])
    return p


class PannsIndex(_panns.Index):
    """An approximate nearest-neighbour index: a forest of random-projection trees over vectors,
    optionally with a neighbour graph.

    The API is the one of the original panns package::

        p = PannsIndex(dimension=100, metric='euclidean')
        for i in range(1000):
            p.add_vector(gaussian_vector(100))
        p.parallelize(True)
        p.build(64)
        p.save('test.idx')
        q = PannsIndex(metric='euclidean')
        q.load('test.idx')
        q.query(gaussian_vector(100), 10)   # [(id, distance), ...] nearest first

    Vectors are collected (``add_vector``, ``load_matrix``, ``load_csv``, ``load_hdf5``) until
    :meth:`build`; adding vectors after a build (or a load) starts a new data set holding the
    indexed vectors plus the new ones, searched once :meth:`build` is called again.

    Live indexes (add and remove items by label while searching)::

        p.add_items(vectors, labels=None)   # adds or replaces; returns the labels
        p.remove(labels)                    # returns how many were removed
        label in p                          # __contains__
        p.query(v, 10)                      # [(label, distance), ...]
        p.compact()                         # one base again, without removed items
        w = PannsIndex.load('items.idx', writable=True)   # on files: one writer ...
        w.add_items(vectors, labels); w.commit()          # ... durable when commit returns
        r = PannsIndex.load('items.idx'); r.refresh()     # readers pick up commits

    ``add_items``/``remove`` on a built index (or a new one) change it in memory (``commit()``
    does nothing there; :meth:`save` writes a file with the labels, which ``load`` opens as a
    live index again); on a file loaded with ``writable=True`` they change the file (an
    append-only log beside it; ``commit()`` fsyncs). A file loaded read-only refuses them
    (:class:`io.UnsupportedOperation`); a second writer gets :class:`BlockingIOError`. On a
    live index ids are labels: ``query`` returns labels (a matrix of queries returns
    ``uint64`` label arrays), ``get_vector``/``get_distance``/``get_nns_by_item`` take labels,
    and ``filter=`` takes allowed labels or a callable taking a label (not a boolean mask).
    ``build_graph``, ``add_vector`` and ``build()`` raise
    :class:`NotImplementedError` on a live index (``compact()`` rebuilds it; ``load_matrix``
    then ``build()`` starts over). Pickling writes a compacted copy with its labels.

    Thread safety: every method may be called from any thread. Searches (:meth:`query`,
    :meth:`linear_search`, ...) run in parallel without the GIL; :meth:`close`,
    :meth:`build` and :meth:`build_graph` never wait for them (a search finishes on the index it
    started with, which is freed when its last search returns). Methods that change the data set
    run one at a time.

    Parameters:
        dimension: the length of every vector; ``None`` takes it from the first vector added.
        metric: ``'euclidean'`` (L2), ``'angular'`` (cosine distance ``1 - cos``; vectors are
            normalised) or ``'dot'`` (negated inner product). ``None`` means ``'euclidean'``
            (the panns 0.x default), or whatever metric a file opened by :meth:`load` has.

    Methods (all native): ``add_vector(v) -> id``, ``load_matrix(A)``,
    ``load_csv(fname, sep=',', header='auto')``, ``load_hdf5(fname, dataset='panns')``,
    ``parallelize(enable)``, ``build(n_trees=None, *, leaf_size, pool_size, seed, candidates,
    split, threads, c, graph_degree, progress, exact_graph_build=False)``,
    ``build_graph(degree=24, threads=None, *, exact_graph_build=False)``,
    ``save(fname)``, ``load(fname, mmap=True, verify=False, writable=False)``,
    ``add_items(vectors, labels=None)``, ``remove(labels)``, ``commit()``, ``refresh()``,
    ``compact()``, ``live_stats()``, ``live_options(...)``, ``query(v, k, budget=0)``,
    ``query_with_stats(v, k, budget=0, filter=None)``, ``prepare_filter(mask_or_ids)``,
    ``effective_budget(k, budget=0)``,
    ``linear_search(v, k)``, ``get_vector(i)``, ``get_nns_by_item(i, n, search_k=-1,
    include_distances=False)``, ``get_distance(i, j)``, ``to_bytes()``, ``close()``; properties
    ``dimension``, ``metric``, ``n_trees``, ``graph_degree``, ``build_params``, ``is_built``,
    ``closed``, ``is_live``. ``build()`` without arguments uses the library defaults
    (:data:`panns.BUILD_DEFAULTS`: 32 trees, leaf size 16, pool 256, 8 candidates, seed 42, all
    cores).
    """

    load = _LoadMethod()

    if TYPE_CHECKING:

        @overload
        def query(
            self,
            v: VectorLike,
            k: Optional[int] = None,
            budget: Optional[int] = None,
            *,
            c: Optional[int] = None,
            include_distances: Literal[True] = True,
            threads: Optional[int] = None,
            filter: Any = None,
        ) -> Pairs: ...

        @overload
        def query(
            self,
            v: VectorLike,
            k: Optional[int] = None,
            budget: Optional[int] = None,
            *,
            c: Optional[int] = None,
            include_distances: Literal[False],
            threads: Optional[int] = None,
            filter: Any = None,
        ) -> List[int]: ...

        @overload
        def query(
            self,
            v: "npt.NDArray[Any]",
            k: Optional[int] = None,
            budget: Optional[int] = None,
            *,
            c: Optional[int] = None,
            include_distances: Literal[True] = True,
            threads: Optional[int] = None,
            filter: Any = None,
        ) -> Tuple["npt.NDArray[np.int64]", "npt.NDArray[np.float32]"]: ...

        def query(
            self,
            v: Any,
            k: Optional[int] = None,
            budget: Optional[int] = None,
            *,
            c: Optional[int] = None,
            include_distances: bool = True,
            threads: Optional[int] = None,
            filter: Any = None,
        ) -> Any:
            """The ``k`` approximate nearest neighbours of ``v``.

            For a vector: a list of ``(id, distance)`` tuples, nearest first (ties by id),
            ``min(k, len(self))`` long (ids only with ``include_distances=False``). For a 2-D
            array of queries (one per row): ``(ids, distances)`` arrays of shape
            ``(n_queries, min(k, len(self)))`` (``int64`` and ``float32``; only ``ids`` with
            ``include_distances=False``), searched in parallel on all cores or on a pool of
            ``threads`` threads kept by this index.

            ``budget`` is the search effort (0 or None = the library default): without a graph
            the number of distinct candidates re-ranked by exact distance, with a graph
            (:attr:`graph_degree` > 0) the beam width. A budget of half the items or more scans
            every item exactly. ``k`` and ``budget`` above the index size are clamped; negative
            values or values of 2**64 or more raise ``ValueError``. ``c`` is an alias of ``k``.

            ``filter`` restricts the results to allowed items: a boolean mask of length
            ``len(self)``, an array or list of ids, or a callable taking an id and returning
            a bool (called with the GIL held; its first exception is raised). With a mask or
            ids, a budget covering half the allowed items scans exactly those (fast and exact
            for selective filters); otherwise the trees (and graph) are walked, counting only
            allowed items. With a filter, a matrix of queries returns one list per row. See
            also :meth:`range_search` (every item within a radius).

            A filter reused by many queries can be prepared once:
            ``f = index.prepare_filter(mask_or_ids)`` returns a :class:`panns.PreparedFilter`
            (``len(f)`` allowed items, ``f.ids()``) to pass as ``filter=f``; each query then
            skips packing the mask and listing the allowed items (same results).
            """

    def __reduce__(self) -> Tuple[Any, Tuple[Any, Dict[str, Any]]]:
        """Pickles the index as the bytes of its index file (the same bytes :meth:`save`
        writes), with its metric and dimension. Vectors added since the last :meth:`build`
        cannot be pickled (``RuntimeError``: build first). A live index pickles as a compacted
        copy with its labels (unpickled: a live index in memory); an empty one cannot be pickled
        (``ValueError``)."""
        dim, metric, _, _, threads = self._settings()
        if self._pending():
            raise RuntimeError(
                "cannot pickle a PannsIndex with vectors added since the last build(): "
                "call build() first"
            )
        state: Dict[str, Any] = {
            "dimension": dim,
            "metric": metric,
            "threads": threads,
            "dtype": self.dtype,
        }
        state["index"] = self.to_bytes() if self.is_built else None
        return (_restore, (type(self), state))

    @classmethod
    def from_bytes(cls: "Type[_T]", data: bytes, verify: bool = False) -> _T:
        """An index parsed from the bytes of an index file (as returned by :meth:`to_bytes`, or
        read from a file :meth:`save` wrote); ``verify`` checks the checksum first. The bytes are
        copied: the index does not keep ``data``."""
        p = cls()
        p._load_bytes(data, verify)
        return p

    def search_stats(self, v: VectorLike, k: int, budget: int = 0) -> Dict[str, Any]:
        """What ``query(v, k, budget)`` does: ``{'scored': items whose exact distance was
        computed, 'exact_scan': True when the search scanned every item (budget of half the
        items or more), 'budget': the effective budget}``."""
        return self.query_with_stats(v, k, budget)[1]


# ---------------------------------------------------------------------------------------------
# Helpers of panns 0.x

_rng = np.random.default_rng()


def gaussian_vector(
    dim: int, normalize: bool = False, seed: Optional[int] = None
) -> "npt.NDArray[np.float32]":
    """A vector of ``dim`` independent standard normal components (float32), scaled to unit
    length if ``normalize``. ``seed`` makes it reproducible; without it a module-wide generator
    is used."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 0:
        raise ValueError(f"dim must be a non-negative integer, got {dim!r}")
    rng = _rng if seed is None else np.random.default_rng(seed)
    v = rng.standard_normal(int(dim)).astype(np.float32)
    if normalize:
        norm = float(np.linalg.norm(v))
        if norm > 0:
            v /= norm
    return v


def precision(relevant: Sequence[Any], retrieved: Sequence[Any]) -> float:
    """The fraction of ``retrieved`` items that are in ``relevant``."""
    return len(set(relevant) & set(retrieved)) / len(retrieved) if len(retrieved) else 0.0


def recall(relevant: Sequence[Any], retrieved: Sequence[Any]) -> float:
    """The fraction of ``relevant`` items that are in ``retrieved``."""
    return len(set(relevant) & set(retrieved)) / len(relevant) if len(relevant) else 0.0
