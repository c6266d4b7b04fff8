"""The :class:`PannsIndex` class: the panns 0.x Python API on top of ``libpanns`` (the C ABI).

Every operation is one or a few calls into ``libpanns`` through :mod:`ctypes`; the GIL is released
while Rust builds or searches. Status codes become Python exceptions:

=============================================================  ===================================
status                                                         exception
=============================================================  ===================================
invalid argument, dimension mismatch, NaN/inf, zero vector,     :class:`ValueError`
empty index
unsupported file version or type, an operation a file-backed   :class:`UnsupportedError`
index cannot do (adding a graph to a loaded index)             (a :class:`ValueError`)
corrupt index or dataset file                                  :class:`CorruptIndexError`
                                                               (a :class:`ValueError`)
I/O failure                                                    :class:`OSError` (with ``errno``,
                                                               so a missing file is a
                                                               :class:`FileNotFoundError`)
item id out of range                                           :class:`IndexError`
internal error (a caught Rust panic)                           :class:`RuntimeError`
=============================================================  ===================================

The message of each exception is ``panns_last_error_message()``; the status code is in its
``status`` attribute.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import threading
import warnings
import weakref
from ctypes import POINTER, byref, c_float, c_size_t, c_uint32
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

from . import _lib
from ._lib import LIB

__all__ = [
    "PannsIndex",
    "CorruptIndexError",
    "UnsupportedError",
    "gaussian_vector",
    "precision",
    "recall",
]

#: What the API accepts as a vector: a NumPy array or any sequence of numbers.
VectorLike = Union["npt.NDArray[Any]", Sequence[float]]
#: What the API accepts as a matrix: a 2-D NumPy array or a sequence of rows.
MatrixLike = Union["npt.NDArray[Any]", Sequence[Sequence[float]]]
#: A path: ``str``, ``bytes`` or :class:`os.PathLike`.
PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

_METRICS = {"euclidean": _lib.EUCLIDEAN, "angular": _lib.ANGULAR, "dot": _lib.DOT}
_METRIC_NAMES = {code: name for name, code in _METRICS.items()}
_U32_MAX = 2**32 - 1
# Rows converted to float32 and handed to the builder at once by load_matrix (bounds the copy).
_CHUNK_ROWS = 1 << 16
_FLOAT_P = POINTER(c_float)
_U32_P = POINTER(c_uint32)


class CorruptIndexError(ValueError):
    """A file is not a valid panns index or dataset (``PANNS_CORRUPT``); the message says why."""


class UnsupportedError(ValueError):
    """``PANNS_UNSUPPORTED``: a file of a future format version, the other endianness or an
    unsupported dataset type, or an operation the index cannot do (such as
    :meth:`PannsIndex.build_graph` on an index opened by :meth:`PannsIndex.load`, which is
    read-only). The message says which."""


# ---------------------------------------------------------------------------------------------
# Status codes -> exceptions


def _error(status: int, path: Optional[PathLike] = None) -> Exception:
    """The exception for a failed call's ``status``, carrying ``panns_last_error_message()``."""
    message = _lib.last_error_message() or _lib.STATUS_NAMES.get(status, f"panns status {status}")
    exc: Exception
    if status == _lib.CORRUPT:
        exc = CorruptIndexError(message)
    elif status == _lib.IO:
        found = re.search(r"os error (\d+)", message)
        if found:
            # OSError(errno, text) is instantiated as the matching subclass
            # (FileNotFoundError, PermissionError, IsADirectoryError, ...).
            exc = OSError(int(found.group(1)), message)
        elif path is not None and not os.path.exists(path):
            exc = FileNotFoundError(errno.ENOENT, message)
        else:
            exc = OSError(message)
    elif status == _lib.UNSUPPORTED:
        exc = UnsupportedError(message)
    elif status == _lib.OUT_OF_RANGE:
        exc = IndexError(message)
    elif status == _lib.PANIC:
        exc = RuntimeError(f"panns internal error (please report): {message}")
    else:
        exc = ValueError(message)
    setattr(exc, "status", status)  # noqa: B010 - read as e.status by callers
    return exc


def _check(status: int, path: Optional[PathLike] = None) -> None:
    """Raises the exception of :func:`_error` unless ``status`` is ``PANNS_OK``."""
    if status != _lib.OK:
        raise _error(status, path)


# ---------------------------------------------------------------------------------------------
# Handles


class _Handle:
    """Owns one C handle (``PannsBuilder*`` or ``PannsIndex*``) and frees it exactly once.

    :meth:`use` lends the pointer for one call and counts the borrowers; :meth:`close` waits until
    no call is using the handle before freeing it, so closing or rebuilding an index while other
    threads search it never frees memory under them. A finalizer frees handles that were never
    closed when the owner is garbage-collected.
    """

    def __init__(self, ptr: Any, free: Any) -> None:
        self._ptr = ptr
        self._users = 0
        self._exclusive = False
        self._cond = threading.Condition()
        self._finalizer = weakref.finalize(self, free, ptr)

    @contextlib.contextmanager
    def use(self) -> Iterator[Any]:
        """Lends the pointer for the duration of a ``with`` block."""
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            if self._ptr is None:
                raise RuntimeError("panns: the index was closed")
            self._users += 1
            ptr = self._ptr
        try:
            yield ptr
        finally:
            with self._cond:
                self._users -= 1
                if self._users == 0:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def use_exclusive(self) -> Iterator[Any]:
        """Lends the pointer to one caller alone (for a call that modifies the handle, such as
        ``panns_index_build_graph``): waits until current borrowers are done and makes new ones
        wait until the block ends."""
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            self._exclusive = True
            try:
                while self._users:
                    self._cond.wait()
                if self._ptr is None:
                    raise RuntimeError("panns: the index was closed")
            except BaseException:
                self._exclusive = False
                self._cond.notify_all()
                raise
            self._users = 1  # so that close() waits for this block too
            ptr = self._ptr
        try:
            yield ptr
        finally:
            with self._cond:
                self._users = 0
                self._exclusive = False
                self._cond.notify_all()

    def close(self) -> None:
        """Frees the handle once every current borrower is done; later calls do nothing."""
        with self._cond:
            while self._users:
                self._cond.wait()
            if self._ptr is None:
                return
            self._ptr = None
        self._finalizer()


def _new_builder(dim: int, metric: int) -> _Handle:
    """A fresh ``PannsBuilder`` of dimension ``dim``."""
    out = _lib.BuilderPtr()
    _check(LIB.panns_builder_new(dim, metric, byref(out)))
    return _Handle(out, LIB.panns_builder_free)


def _index_handle(ptr: Any) -> _Handle:
    """Wraps a ``PannsIndex*`` returned by the library."""
    return _Handle(ptr, LIB.panns_index_free)


# ---------------------------------------------------------------------------------------------
# Argument conversion


def _metric_code(metric: str) -> int:
    """The ``PannsMetric`` code of a metric name (``ValueError`` for an unknown name)."""
    if not isinstance(metric, str) or metric.lower() not in _METRICS:
        raise ValueError(
            f"unknown metric {metric!r}: expected one of {', '.join(sorted(_METRICS))}"
        )
    return _METRICS[metric.lower()]


def _as_f32(a: Any) -> "npt.NDArray[np.float32]":
    """``a`` as a C-contiguous float32 array (values too large for float32 become inf, which
    the library then rejects as non-finite)."""
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            arr = np.asarray(a, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise ValueError(f"not a numeric vector/matrix: {e}") from None
    return np.ascontiguousarray(arr)


def _as_vector(v: VectorLike) -> "npt.NDArray[np.float32]":
    """A vector as a 1-D float32 array (a 1×d row matrix is accepted too)."""
    arr = _as_f32(v)
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise ValueError(f"expected a vector (1-D), got an array of shape {arr.shape}")
    return arr


def _count(k: Any, name: str = "k") -> int:
    """A count argument as a non-negative ``int`` (``k = 0`` is left for the library to reject)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {k!r}")
    k = int(k)
    if k < 0:
        raise ValueError(f"{name} must be >= 0, got {k}")
    return k


def _u32(value: Any, name: str) -> int:
    """An option as an unsigned 32-bit ``int``."""
    value = _count(value, name)
    if value > _U32_MAX:
        raise ValueError(f"{name} must be < 2**32, got {value}")
    return value


def _fptr(arr: "npt.NDArray[np.float32]") -> Any:
    """The ``float*`` of a float32 array."""
    return arr.ctypes.data_as(_FLOAT_P)


def _path_bytes(path: PathLike) -> bytes:
    """A path as the bytes the C ABI expects (``ValueError`` for an embedded NUL)."""
    raw = os.fsencode(path)
    if b"\0" in raw:
        raise ValueError(f"path contains a NUL byte: {path!r}")
    return raw


def _pairs(
    ids: "npt.NDArray[np.uint32]", dists: "npt.NDArray[np.float32]", n: int
) -> List[Tuple[int, float]]:
    """The first ``n`` results as ``(id, distance)`` tuples of Python numbers."""
    return list(zip(ids[:n].tolist(), dists[:n].tolist()))


# ---------------------------------------------------------------------------------------------
# The index


class PannsIndex:
    """An approximate nearest-neighbour index: a forest of random-projection trees over vectors.

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
    indexed vectors plus the new ones, searched once :meth:`build` is called again. Searching
    (:meth:`query`, :meth:`linear_search`) is thread-safe and runs without the GIL; the methods
    that change the data set must not race with each other.

    Parameters:
        dimension: the length of every vector; ``None`` takes it from the first vector added.
        metric: ``'euclidean'`` (L2), ``'angular'`` (cosine distance ``1 - cos``; vectors are
            normalised) or ``'dot'`` (negated inner product). ``None`` means ``'euclidean'``
            (the panns 0.x default), or whatever metric a file opened by :meth:`load` has.
    """

    def __init__(self, dimension: Optional[int] = None, metric: Optional[str] = None) -> None:
        self._metric = _lib.EUCLIDEAN if metric is None else _metric_code(metric)
        self._metric_explicit = metric is not None
        if dimension is not None:
            dimension = _u32(dimension, "dimension")
            if dimension == 0:
                raise ValueError("dimension must be positive")
        self._dim: Optional[int] = dimension
        self._dim_explicit = dimension is not None
        self._threads = 1  # panns 0.x builds sequentially until parallelize(True)
        self._lock = threading.RLock()
        # The data set of the next build(). None after build()/load() until vectors are added.
        self._builder: Optional[_Handle] = None
        # The searchable index (from build() or load()), or None.
        self._index: Optional[_Handle] = None

    # -- properties ------------------------------------------------------------------------

    @property
    def dimension(self) -> Optional[int]:
        """The length of every vector (``None`` until known)."""
        return self._dim

    @property
    def metric(self) -> str:
        """The distance metric: ``'euclidean'``, ``'angular'`` or ``'dot'``."""
        return _METRIC_NAMES.get(self._metric, f"metric {self._metric}")

    @property
    def n_trees(self) -> int:
        """The number of trees of the built or loaded index (0 before)."""
        index = self._index
        if index is None:
            return 0
        with index.use() as p:
            return int(LIB.panns_index_n_trees(p))

    @property
    def graph_degree(self) -> int:
        """Neighbours per item of the index's neighbour graph (0 when it has none, or before
        build()/load()). Saved and loaded with the index."""
        index = self._index
        if index is None:
            return 0
        with index.use() as p:
            return int(LIB.panns_index_graph_degree(p))

    def __len__(self) -> int:
        """The number of vectors: of the pending data set if vectors were added since the last
        build, else of the index."""
        builder, index = self._builder, self._index
        if builder is not None:
            with builder.use() as p:
                return int(LIB.panns_builder_len(p))
        if index is not None:
            with index.use() as p:
                return int(LIB.panns_index_len(p))
        return 0

    def len(self) -> int:
        """The number of vectors (same as ``len(index)``)."""
        return len(self)

    def __repr__(self) -> str:
        built = "built" if self._index is not None else "not built"
        return (
            f"PannsIndex(dimension={self._dim}, metric={self.metric!r}, len={len(self)}, {built})"
        )

    # -- lifetime --------------------------------------------------------------------------

    def close(self) -> None:
        """Frees the index and any pending vectors now (idempotent); also done on garbage
        collection. Searching a closed index raises ``RuntimeError``."""
        with self._lock:
            for handle in (self._builder, self._index):
                if handle is not None:
                    handle.close()
            self._builder = None
            self._index = None

    def __enter__(self) -> "PannsIndex":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- collecting vectors ----------------------------------------------------------------

    @contextlib.contextmanager
    def _dimension_from(self, dim: Optional[int]) -> Iterator[None]:
        """Fixes the dimension from the first data seen (``dim``; ``None`` = not known yet);
        if that data is then rejected, the object goes back to having no dimension."""
        inferred = self._dim is None and dim is not None
        if inferred:
            assert dim is not None
            if dim <= 0 or dim > _U32_MAX:
                raise ValueError(f"invalid dimension {dim}")
            self._dim = dim
        try:
            yield
        except BaseException:
            if inferred and self._index is None and len(self) == 0:
                if self._builder is not None:
                    self._builder.close()
                    self._builder = None
                self._dim = None
            raise

    def _staging(self) -> _Handle:
        """The builder of the next data set, created on first use after a build or load,
        holding the vectors of the current index (so adding to a built index extends its data
        set, as in panns 0.x)."""
        if self._builder is not None:
            return self._builder
        builder = self._fresh_builder()
        try:
            if self._index is not None:
                self._copy_index_into(builder)
        except BaseException:
            builder.close()
            raise
        self._builder = builder
        return builder

    def _fresh_builder(self) -> _Handle:
        """An empty builder of this object's dimension and metric."""
        if self._dim is None:
            raise ValueError("the dimension is unknown: pass dimension= or add a vector first")
        return _new_builder(self._dim, self._metric)

    def _replace_builder(self, builder: _Handle) -> None:
        """Makes ``builder`` the data set of the next build, dropping the previous one."""
        if self._builder is not None:
            self._builder.close()
        self._builder = builder

    def _copy_index_into(self, builder: _Handle) -> None:
        """Adds every vector of the current index to ``builder`` (in id order)."""
        assert self._index is not None and self._dim is not None
        row = np.empty(self._dim, dtype=np.float32)
        with self._index.use() as ip, builder.use() as bp:
            for i in range(int(LIB.panns_index_len(ip))):
                _check(LIB.panns_index_get_vector(ip, i, _fptr(row), self._dim))
                _check(LIB.panns_builder_add(bp, _fptr(row), self._dim, None))

    def add_vector(self, v: VectorLike) -> int:
        """Adds one vector to the data set and returns its id (0, 1, 2, ... in order of addition).

        Raises ``ValueError`` for a wrong length, a NaN or infinite component, or a zero vector
        under the angular metric.
        """
        arr = _as_vector(v)
        with self._lock, self._dimension_from(arr.size):
            builder = self._staging()
            out_id = c_uint32()
            with builder.use() as p:
                _check(LIB.panns_builder_add(p, _fptr(arr), arr.size, byref(out_id)))
            return int(out_id.value)

    def load_matrix(self, A: MatrixLike) -> None:
        """Replaces the data set by the rows of ``A`` (a 2-D NumPy array, memmap, or a list of
        rows). Large float64 matrices are converted to float32 a chunk at a time. On error
        (wrong dimension, NaN...) the previous data set is kept."""
        if isinstance(A, np.ndarray):
            matrix: Any = A
        else:
            matrix = _as_f32(A)
            if matrix.ndim == 1 and matrix.size == 0:
                matrix = matrix.reshape(0, self._dim or 0)
        if matrix.ndim != 2:
            raise ValueError(f"expected a matrix (2-D), got an array of shape {matrix.shape}")
        n, d = matrix.shape
        with self._lock:
            if n == 0 and self._dim is None and d == 0:
                return
            with self._dimension_from(d):
                builder = self._fresh_builder()
                try:
                    with builder.use() as p:
                        for start in range(0, n, _CHUNK_ROWS):
                            chunk = _as_f32(matrix[start : start + _CHUNK_ROWS])
                            _check(LIB.panns_builder_add_batch(p, _fptr(chunk), chunk.shape[0], d))
                except BaseException:
                    builder.close()
                    raise
                self._replace_builder(builder)

    def load_csv(self, fname: PathLike, sep: str = ",") -> int:
        """Appends the rows of a delimited text file (one vector per line) to the data set and
        returns how many were added (none if the file is rejected).

        ``.csv``/``.txt`` files with ``sep=','`` and ``.tsv`` files with ``sep='\\t'`` are read
        by the Rust reader (a header line is skipped; errors name the line and column); other
        separators are read with :func:`numpy.loadtxt`.
        """
        if not isinstance(sep, str) or len(sep) == 0:
            raise ValueError(f"invalid separator {sep!r}")
        ext = os.path.splitext(os.fsdecode(fname))[1].lower()
        native = (ext in (".csv", ".txt") and sep == ",") or (ext == ".tsv" and sep == "\t")
        if not native:
            data = np.loadtxt(
                os.fsdecode(fname),
                delimiter=None if sep.isspace() else sep,
                dtype=np.float32,
                ndmin=2,
            )
            if data.size == 0:
                return 0
            chunk = _as_f32(data)
            with self._lock, self._dimension_from(chunk.shape[1]):
                builder = self._staging()
                with builder.use() as p:
                    _check(
                        LIB.panns_builder_add_batch(p, _fptr(chunk), chunk.shape[0], chunk.shape[1])
                    )
                return int(chunk.shape[0])
        with self._lock:
            dim = None
            if self._dim is None:
                dim = _peek_text_dimension(fname, sep)
                if dim is None:
                    if not os.path.exists(fname):
                        path = os.fsdecode(fname)
                        raise FileNotFoundError(errno.ENOENT, f"{path}: No such file or directory")
                    return 0  # no data line
            with self._dimension_from(dim):
                return self._add_file(self._staging(), fname, None)

    def load_hdf5(self, fname: PathLike, dataset: str = "panns") -> int:
        """Replaces the data set by the 2-D float dataset ``dataset`` of an HDF5 file (read by
        the Rust reader: no h5py needed) and returns the number of rows. On error the previous
        data set is kept.

        The file name must end in ``.hdf5`` or ``.h5``.
        """
        with self._lock:
            dim = None
            if self._dim is None:
                dim = _probe_file_dimension(fname, dataset)
            with self._dimension_from(dim):
                builder = self._fresh_builder()
                try:
                    added = self._add_file(builder, fname, dataset)
                except BaseException:
                    builder.close()
                    raise
                self._replace_builder(builder)
                return added

    def _add_file(self, builder: _Handle, fname: PathLike, dataset: Optional[str]) -> int:
        """``panns_builder_add_file`` on ``builder``; returns the number of rows added."""
        added = c_size_t()
        ds = dataset.encode("utf-8") if dataset is not None else None
        with builder.use() as p:
            _check(LIB.panns_builder_add_file(p, _path_bytes(fname), ds, byref(added)), fname)
        return int(added.value)

    # -- building --------------------------------------------------------------------------

    def parallelize(self, enable: Union[bool, int] = False) -> None:
        """Chooses how many threads :meth:`build` uses: ``True`` = all cores, ``False`` = one
        (the default), an integer ``n > 0`` = ``n``. The index does not depend on it."""
        if isinstance(enable, bool) or enable is None:
            self._threads = 0 if enable else 1
        else:
            n = _u32(enable, "threads")
            self._threads = n if n > 0 else 0

    def build(
        self,
        n_trees: int = 64,
        *,
        leaf_size: Optional[int] = None,
        pool_size: Optional[int] = None,
        seed: Optional[int] = None,
        candidates: Optional[int] = None,
        split: Optional[str] = None,
        threads: Optional[int] = None,
        c: Optional[int] = None,
        graph_degree: int = 0,
    ) -> None:
        """Builds the index (a forest of ``n_trees`` binary trees) over the current data set.

        Parameters:
            n_trees: number of trees; more trees, better recall, bigger index.
            leaf_size: most items per leaf (library default 32).
            pool_size: number of shared random projection vectors (default 128).
            seed: random seed (default 42); same data and seed give the same index.
            candidates: pool vectors tried per node (default 8).
            split: ``'mean'`` (default) or ``'median'`` split offset.
            threads: override :meth:`parallelize` (0 = all cores).
            c: alias of ``n_trees`` (the panns 0.x keyword).
            graph_degree: when > 0, also adds a neighbour graph of that many neighbours per
                item (as :meth:`build_graph`), so that ``budget`` in :meth:`query` becomes
                the beam width; 0 (the default) builds the forest only.

        Raises ``ValueError`` for an empty data set or an invalid parameter. If only the graph
        step fails (e.g. ``graph_degree`` above 256), the new forest is kept without a graph
        and the error is raised.
        """
        if c is not None:
            n_trees = c
        graph_degree = _u32(graph_degree, "graph_degree")
        opts = LIB.panns_build_options_default()
        opts.n_trees = _u32(n_trees, "n_trees")
        if leaf_size is not None:
            opts.leaf_size = _u32(leaf_size, "leaf_size")
        if pool_size is not None:
            opts.pool_size = _u32(pool_size, "pool_size")
        if candidates is not None:
            opts.candidates = _u32(candidates, "candidates")
        if seed is not None:
            seed = _count(seed, "seed")
            if seed >= 2**64:
                raise ValueError(f"seed must be < 2**64, got {seed}")
            opts.seed = seed
        if split is not None:
            splits = {"mean": 0, "median": 1}
            if split not in splits:
                raise ValueError(f"unknown split {split!r}: expected 'mean' or 'median'")
            opts.split = splits[split]
        opts.threads = self._threads if threads is None else _u32(threads, "threads")
        with self._lock:
            if self._builder is None and self._index is None:
                raise ValueError("cannot build an index with no vectors: add vectors first")
            builder = self._staging()
            out = _lib.IndexPtr()
            with builder.use() as p:
                _check(LIB.panns_builder_build(p, byref(opts), byref(out)))
            index = _index_handle(out)
            graph_error: Optional[Exception] = None
            if graph_degree > 0:
                # The new index is not shared yet: no other thread can be using it.
                with index.use() as p:
                    graph_status = LIB.panns_index_build_graph(p, graph_degree, opts.threads)
                if graph_status != _lib.OK:
                    graph_error = _error(graph_status)
            old = self._index
            self._index = index
            self._builder = None
            builder.close()
            if old is not None:
                old.close()
            if graph_error is not None:
                # The vectors have moved into the new forest: keep it (without a graph).
                raise graph_error

    def build_graph(self, degree: int = 24, threads: Optional[int] = None) -> None:
        """Adds (or replaces) a neighbour graph of ``degree`` neighbours per item (0 = the
        library default, 24) to the index built by :meth:`build`. With a graph, searches reach
        high recall with far fewer distance computations, and ``budget`` in :meth:`query` is the
        beam width (like HNSW's ``ef``; 0 = default 64). :meth:`save` keeps the graph.

        ``threads`` overrides :meth:`parallelize` (0 = all cores); the graph does not depend on
        it. Searches from other threads wait while the graph is built.

        Raises ``RuntimeError`` before :meth:`build`, ``RuntimeError`` too if vectors were added
        since the last build, :class:`UnsupportedError` (a ``ValueError``) for an index opened
        by :meth:`load` (file-backed indexes are read-only: rebuild, or build with
        ``graph_degree=``), ``ValueError`` for a degree above 256.
        """
        degree = _u32(degree, "degree")
        nthreads = self._threads if threads is None else _u32(threads, "threads")
        with self._lock:
            index = self._require_index()
            if self._builder is not None:
                raise RuntimeError("vectors were added since the last build(): call build() first")
            with index.use_exclusive() as p:
                _check(LIB.panns_index_build_graph(p, degree, nthreads))

    # -- files -----------------------------------------------------------------------------

    def save(self, fname: PathLike = "panns.idx", mmap: bool = True) -> None:
        """Writes the index to ``fname`` (one file; written to a temporary file and renamed, so
        readers never see a partial index). ``mmap`` is accepted for panns 0.x compatibility:
        saved indexes are always memory-mappable."""
        del mmap
        with self._lock:
            index = self._require_index()
            if self._builder is not None:
                raise RuntimeError("vectors were added since the last build(): call build() first")
            with index.use() as p:
                _check(LIB.panns_index_save(p, _path_bytes(fname)), fname)

    def load(self, fname: PathLike, mmap: bool = True, verify: bool = False) -> None:
        """Opens an index file (memory-mapped: pages are shared by every process that opens the
        same file, and loading is instant). Replaces any data set of this object.

        The metric and dimension are taken from the file; a dimension passed to the constructor
        must match (``ValueError``), a different metric passed to it gives a warning.
        ``verify`` checks the file's checksum first. Raises ``FileNotFoundError``/``OSError``
        if the file cannot be read, :class:`CorruptIndexError` if it is not a valid index.
        """
        del mmap
        out = _lib.IndexPtr()
        flags = _lib.OPEN_VERIFY if verify else 0
        _check(LIB.panns_index_open(_path_bytes(fname), flags, byref(out)), fname)
        index = _index_handle(out)
        with index.use() as p:
            dim = int(LIB.panns_index_dim(p))
            metric = int(LIB.panns_index_metric(p))
        if self._dim_explicit and dim != self._dim:
            index.close()
            raise ValueError(
                f"{os.fsdecode(fname)}: the index has dimension {dim}, this object was created "
                f"with dimension={self._dim}"
            )
        with self._lock:
            if metric != self._metric and self._metric_explicit:
                warnings.warn(
                    f"{os.fsdecode(fname)}: the index uses the {_METRIC_NAMES.get(metric, metric)} "
                    f"metric, not {self.metric}; using the file's metric",
                    stacklevel=2,
                )
            self._metric = metric
            self._metric_explicit = True
            self._dim = dim
            old = (self._builder, self._index)
            self._index, self._builder = index, None
            for handle in old:
                if handle is not None:
                    handle.close()

    # -- searching -------------------------------------------------------------------------

    def _require_index(self) -> _Handle:
        """The searchable index, or ``RuntimeError`` before build()/load()."""
        index = self._index
        if index is None:
            raise RuntimeError("the index is not built: call build() or load() first")
        return index

    def query(
        self,
        v: Union[VectorLike, MatrixLike],
        k: Optional[int] = None,
        budget: int = 0,
        *,
        c: Optional[int] = None,
    ) -> Any:
        """The ``k`` approximate nearest neighbours of ``v``.

        For a vector, returns a list of ``(id, distance)`` tuples, nearest first (ties by id),
        at most ``k`` and at most ``len(self)`` long. For a 2-D array of queries (one per row),
        searches them in parallel on all cores and returns ``(ids, distances)``: arrays of shape
        ``(n_queries, k)`` (``int64`` and ``float32``), rows padded with id ``-1`` and distance
        ``inf`` when the index has fewer than ``k`` items.

        ``budget`` is the number of candidates re-ranked by exact distance (0 = the library
        default); larger is slower and more accurate. With a neighbour graph
        (:attr:`graph_degree` > 0) it is the beam width of the graph search instead (0 = 64).
        ``c`` is an alias of ``k`` (panns 0.x).
        """
        if c is not None:
            k = c
        if k is None:
            raise ValueError("k (the number of neighbours) is required")
        k = _count(k)
        budget = _count(budget, "budget")
        q = _as_f32(v)
        if q.ndim == 2:
            return self._search_batch(q, k, budget)
        q = _as_vector(q)
        return self._search_one(
            k,
            lambda p, ids, dists, count: LIB.panns_index_search(
                p, _fptr(q), q.size, k, budget, ids, dists, count
            ),
        )

    def _search_one(self, k: int, call: Any) -> List[Tuple[int, float]]:
        """Runs one single-query C search ``call(index, ids, dists, count)`` into fresh
        buffers of ``min(k, len)`` entries and returns ``(id, distance)`` pairs."""
        index = self._require_index()
        with index.use() as p:
            cap = max(1, min(k, int(LIB.panns_index_len(p))))
            ids = np.empty(cap, dtype=np.uint32)
            dists = np.empty(cap, dtype=np.float32)
            count = c_size_t()
            status = call(p, ids.ctypes.data_as(_U32_P), _fptr(dists), byref(count))
        _check(status)
        return _pairs(ids, dists, count.value)

    def _search_batch(
        self, queries: "npt.NDArray[np.float32]", k: int, budget: int
    ) -> Tuple["npt.NDArray[np.int64]", "npt.NDArray[np.float32]"]:
        """``panns_index_search_batch`` over the rows of ``queries``."""
        index = self._require_index()
        n, d = queries.shape
        with index.use() as p:
            if self._dim is not None and d != self._dim:
                raise ValueError(
                    f"query dimension mismatch: the queries have {d} columns, the index "
                    f"dimension is {self._dim}"
                )
            # The library pads rows past len(index) itself; clamping k bounds the buffers for a
            # huge k, and the rest is padded here the same way.
            kk = min(k, int(LIB.panns_index_len(p))) if k > 0 else 0
            ids = np.empty((n, max(kk, 1)), dtype=np.uint32)
            dists = np.empty((n, max(kk, 1)), dtype=np.float32)
            if n > 0 or k == 0:
                status = LIB.panns_index_search_batch(
                    p,
                    _fptr(queries),
                    n,
                    d,
                    kk if k > 0 else 0,
                    budget,
                    ids.ctypes.data_as(_U32_P),
                    _fptr(dists),
                )
                _check(status)
        out_ids = np.full((n, k), -1, dtype=np.int64)
        out_dists = np.full((n, k), np.inf, dtype=np.float32)
        if kk > 0:
            got = ids[:, :kk].astype(np.int64)
            got[ids[:, :kk] == _U32_MAX] = -1
            out_ids[:, :kk] = got
            out_dists[:, :kk] = dists[:, :kk]
        return out_ids, out_dists

    def linear_search(
        self, v: VectorLike, k: Optional[int] = None, *, c: Optional[int] = None
    ) -> List[Tuple[int, float]]:
        """The exact ``k`` nearest neighbours of ``v`` by scanning every item: a list of
        ``(id, distance)`` tuples, nearest first (ties by id). ``c`` is an alias of ``k``."""
        if c is not None:
            k = c
        if k is None:
            raise ValueError("k (the number of neighbours) is required")
        k = _count(k)
        q = _as_vector(v)
        return self._search_one(
            k,
            lambda p, ids, dists, count: LIB.panns_index_linear_search(
                p, _fptr(q), q.size, k, ids, dists, count
            ),
        )

    def get_vector(self, i: int) -> "npt.NDArray[np.float32]":
        """A copy of the stored vector of item ``i`` (unit-normalised under the angular metric).
        Raises ``IndexError`` for an id outside the index."""
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"item id must be an integer, got {i!r}")
        i = int(i)
        index = self._require_index()
        if i < 0 or i > _U32_MAX:
            raise IndexError(f"item id {i} out of range")
        assert self._dim is not None
        out = np.empty(self._dim, dtype=np.float32)
        with index.use() as p:
            status = LIB.panns_index_get_vector(p, i, _fptr(out), out.size)
        _check(status)
        return out


# ---------------------------------------------------------------------------------------------
# Dimension discovery for files read by the Rust reader


def _peek_text_dimension(fname: PathLike, sep: str) -> Optional[int]:
    """The number of cells on the first numeric line of a delimited text file (``None`` when it
    has none or cannot be opened: the library then reports the problem)."""
    try:
        with open(fname, "r", encoding="utf-8", errors="replace") as f:
            for line in f:
                text = line.strip()
                if not text:
                    continue
                cells = text.split() if sep == " " else [c.strip() for c in text.split(sep)]
                try:
                    [float(c) for c in cells]
                except ValueError:
                    continue  # a header line
                return len(cells)
    except OSError:
        return None
    return None


def _probe_file_dimension(fname: PathLike, dataset: Optional[str]) -> int:
    """The row length of a dataset file, for a builder whose dimension is not known yet.

    Uses h5py when it is installed; otherwise asks the library to add the file to a throw-away
    builder of dimension 1 and reads the dataset's dimension from the mismatch message.
    """
    path = os.fsdecode(fname)
    if dataset is not None and path.lower().endswith((".hdf5", ".h5")):
        try:
            import h5py  # type: ignore[import-not-found]
        except ImportError:
            pass
        else:
            try:
                with h5py.File(path, "r") as f:
                    shape = f[dataset].shape
                if len(shape) == 2:
                    return int(shape[1])
            except Exception:  # noqa: BLE001 - let the library give the real error below
                pass
    probe = _new_builder(1, _lib.EUCLIDEAN)
    try:
        added = c_size_t()
        ds = dataset.encode("utf-8") if dataset is not None else None
        with probe.use() as p:
            status = LIB.panns_builder_add_file(p, _path_bytes(fname), ds, byref(added))
        if status == _lib.OK:
            return 1
        if status != _lib.DIMENSION_MISMATCH:
            raise _error(status, fname)
        message = _lib.last_error_message()
        found = re.search(r"\bgot (\d+)", message)
        numbers = {int(found.group(1))} if found else set()
        if not numbers:  # any other wording: the one number besides 1 that is not in the path
            numbers = {int(x) for x in re.findall(r"\d+", message.replace(path, ""))} - {0, 1}
        if len(numbers) != 1:
            raise ValueError(
                f"{path}: cannot tell the dataset's dimension ({message}); pass dimension= to "
                "PannsIndex"
            )
        return numbers.pop()
    finally:
        probe.close()


# ---------------------------------------------------------------------------------------------
# Helpers of panns 0.x

_rng = np.random.default_rng()


def gaussian_vector(
    dim: int, normalize: bool = False, seed: Optional[int] = None
) -> "npt.NDArray[np.float32]":
    """A vector of ``dim`` independent standard normal components (float32), scaled to unit
    length if ``normalize``. ``seed`` makes it reproducible; without it a module-wide generator
    is used."""
    dim = _count(dim, "dim")
    rng = _rng if seed is None else np.random.default_rng(seed)
    v = rng.standard_normal(dim).astype(np.float32)
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
