//! `panns._panns`: the Python extension module of panns, a thin PyO3 layer over
//! `panns-core` (building, searching) and `panns-io` (index files, dataset readers).
//!
//! One class, [`PyIndex`] (`panns._panns.Index`), holds the data set of the next build
//! (an [`IndexBuilder`]) and the searchable index (an `Arc<Index>`). The Python package
//! subclasses it as `panns.PannsIndex` and adds pure-Python conveniences (pickling,
//! `from_bytes`, typed overloads); the hot paths (`query`, `linear_search`) are native
//! methods called without any Python frame in between.
//!
//! Concurrency: searches clone the `Arc<Index>` under a mutex held for a few
//! nanoseconds and run with the GIL released, so `close()` or a rebuild never waits
//! for them: the old index is freed when its last search returns. Methods that change
//! the data set are serialised by a second mutex, always acquired with the GIL
//! released (whoever holds it may wait for the GIL; nobody waits for it while holding
//! the GIL), so they cannot deadlock against Python threads.

mod filter;
mod live;

use filter::{PyFilter, parse_filter, search_filtered};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

mod shard;

use numpy::{PyArray1, PyArray2, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use panns_core::{
    BuildParams, GraphParams, Index, IndexBuilder, MAX_GRAPH_DEGREE, Metric, Neighbor,
    SearchParams, SearchStats, SplitRule,
};
use parking_lot::Mutex;
use pyo3::create_exception;
use pyo3::exceptions::{
    PyIndexError, PyOSError, PyRuntimeError, PyTypeError, PyUserWarning, PyValueError,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyDict, PyInt, PyList, PySlice, PyTuple};

create_exception!(
    _panns,
    CorruptIndexError,
    PyValueError,
    "A file is not a valid panns index or dataset (status 8); the message says why."
);
create_exception!(
    _panns,
    UnsupportedError,
    PyValueError,
    "A file of a future format version, the other endianness or an unsupported dataset type \
     (status 9); the message says which."
);

// Status codes of the C ABI (include/panns.h), kept as the `status` attribute of exceptions.
const INVALID_ARGUMENT: i32 = 2;
const DIMENSION_MISMATCH: i32 = 3;
const NON_FINITE: i32 = 4;
const ZERO_VECTOR: i32 = 5;
const EMPTY: i32 = 6;
const IO: i32 = 7;
const CORRUPT: i32 = 8;
const UNSUPPORTED: i32 = 9;
const OUT_OF_RANGE: i32 = 10;
const BUFFER_TOO_SMALL: i32 = 11;
const OUT_OF_MEMORY: i32 = 13;

/// Rows converted to float32 at once by `load_matrix` (bounds the temporary copy).
const CHUNK_ROWS: usize = 1 << 16;
/// Most threads a build or batch search may ask for.
const MAX_THREADS: u64 = 1024;

// ---------------------------------------------------------------------------------------
// Errors

/// Which Python exception an error becomes.
enum Kind {
    Value,
    Corrupt,
    Unsupported,
    Index,
    Os(Option<i32>),
    /// `BlockingIOError` (an `OSError`): another writer holds a live index's lock.
    Locked,
    /// `io.UnsupportedOperation`: a change asked of an index opened read-only.
    ReadOnly,
}

/// The exception of `kind` with `message`, carrying `status` (the C ABI's code).
fn raise(py: Python<'_>, kind: Kind, status: i32, message: String) -> PyErr {
    let err = match kind {
        Kind::Value => PyValueError::new_err(message),
        Kind::Corrupt => CorruptIndexError::new_err(message),
        Kind::Unsupported => UnsupportedError::new_err(message),
        Kind::Index => PyIndexError::new_err(message),
        // OSError(errno, text) is instantiated as the matching subclass
        // (FileNotFoundError, PermissionError, IsADirectoryError, ...).
        Kind::Os(Some(errno)) => PyOSError::new_err((errno, message)),
        Kind::Os(None) => PyOSError::new_err(message),
        Kind::Locked => pyo3::exceptions::PyBlockingIOError::new_err(message),
        Kind::ReadOnly => live::unsupported_operation(py, message),
    };
    let _ = err.value(py).setattr("status", status);
    err
}

/// A `panns-core` error as a Python exception.
fn core_err(py: Python<'_>, e: panns_core::Error) -> PyErr {
    use panns_core::Error as E;
    let (kind, status) = match &e {
        E::DimensionMismatch { .. } | E::RaggedBatch { .. } => (Kind::Value, DIMENSION_MISMATCH),
        E::NonFinite { .. } => (Kind::Value, NON_FINITE),
        E::ZeroVector { .. } => (Kind::Value, ZERO_VECTOR),
        E::Empty => (Kind::Value, EMPTY),
        E::IdOutOfRange { .. } => (Kind::Index, OUT_OF_RANGE),
        E::Corrupt(_) => (Kind::Corrupt, CORRUPT),
        E::BufferSize { .. } => (Kind::Value, BUFFER_TOO_SMALL),
        E::OutOfMemory { .. } => {
            return raise_memory(py, e.to_string());
        }
        _ => (Kind::Value, INVALID_ARGUMENT),
    };
    raise(py, kind, status, e.to_string())
}

/// `MemoryError` with the library's message.
fn raise_memory(py: Python<'_>, message: String) -> PyErr {
    let err = pyo3::exceptions::PyMemoryError::new_err(message);
    let _ = err.value(py).setattr("status", OUT_OF_MEMORY);
    err
}

/// A `panns-io` error as a Python exception.
fn io_err(py: Python<'_>, e: panns_io::Error) -> PyErr {
    if let panns_io::Error::Core(core) = e {
        return core_err(py, core);
    }
    let (kind, status) = io_kind(&e);
    raise(py, kind, status, e.to_string())
}

/// The exception class and status of a `panns-io` error (a shard's error: its cause's).
fn io_kind(e: &panns_io::Error) -> (Kind, i32) {
    use panns_io::Error as E;
    match e {
        E::Core(_) => (Kind::Value, INVALID_ARGUMENT),
        E::Shard { source, .. } => io_kind(source),
        E::Io { source, .. } => {
            // A NotFound made by the library (no OS error) is still a FileNotFoundError.
            let errno = source.raw_os_error().or(
                (source.kind() == std::io::ErrorKind::NotFound).then_some(2), // ENOENT
            );
            (Kind::Os(errno), IO)
        }
        E::NonFinite { .. } => (Kind::Value, NON_FINITE),
        E::Parse { .. }
        | E::RaggedRow { .. }
        | E::Malformed { .. }
        | E::Hdf5 { .. }
        | E::NotAnIndex { .. }
        | E::Corrupt { .. }
        | E::ChecksumMismatch { .. } => (Kind::Corrupt, CORRUPT),
        E::Unsupported { .. } | E::UnsupportedVersion { .. } | E::WrongEndianness { .. } => {
            (Kind::Unsupported, UNSUPPORTED)
        }
        E::DatasetNotFound { .. } | E::InvalidArgument { .. } | E::BadBatch { .. } => {
            (Kind::Value, INVALID_ARGUMENT)
        }
        E::CorruptLog { .. } => (Kind::Corrupt, CORRUPT),
        E::Locked { .. } => (Kind::Locked, IO),
        E::ReadOnly { .. } => (Kind::ReadOnly, INVALID_ARGUMENT),
        _ => (Kind::Os(None), IO),
    }
}

/// `ValueError` (status 2) with `message`.
fn invalid(py: Python<'_>, message: String) -> PyErr {
    raise(py, Kind::Value, INVALID_ARGUMENT, message)
}

// ---------------------------------------------------------------------------------------
// Arguments

/// A non-negative integer argument: `ValueError` for a bool, a non-integer, a negative
/// value or one of 2**64 or more (never silently truncated).
fn count(py: Python<'_>, obj: &Bound<'_, PyAny>, name: &str) -> PyResult<u64> {
    if obj.is_instance_of::<PyBool>() {
        return Err(invalid(py, format!("{name} must be an integer, got {obj}")));
    }
    if let Ok(v) = obj.extract::<u64>() {
        return Ok(v);
    }
    // Not a u64: say why (an int, or anything with __index__ such as numpy integers).
    let as_int = obj
        .cast::<PyInt>()
        .map(|i| i.clone().into_any())
        .or_else(|_| obj.call_method0("__index__"));
    match as_int {
        Ok(i) if i.lt(0)? => Err(invalid(py, format!("{name} must be >= 0, got {i}"))),
        Ok(i) => Err(invalid(py, format!("{name} must be < 2**64, got {i}"))),
        Err(_) => Err(invalid(py, format!("{name} must be an integer, got {obj}"))),
    }
}

/// An optional count (`None` → `None`).
fn opt_count(py: Python<'_>, obj: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Option<u64>> {
    match obj {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) => count(py, o, name).map(Some),
    }
}

/// A count that must fit `usize` and be at most `max`.
fn bounded(py: Python<'_>, obj: &Bound<'_, PyAny>, name: &str, max: u64) -> PyResult<usize> {
    let v = count(py, obj, name)?;
    if v > max {
        return Err(invalid(py, format!("{name} = {v}: at most {max}")));
    }
    Ok(v as usize)
}

/// A count clamped to `usize` (k and budget: values above the index size are clamped
/// by the search anyway).
fn clamped(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// A metric name (case-insensitive "euclidean", "angular", "dot").
fn metric_of(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Metric> {
    let Ok(name) = obj.extract::<String>() else {
        return Err(invalid(
            py,
            format!("unknown metric {obj}: expected one of angular, dot, euclidean"),
        ));
    };
    match name.to_ascii_lowercase().as_str() {
        "euclidean" => Ok(Metric::Euclidean),
        "angular" => Ok(Metric::Angular),
        "dot" => Ok(Metric::Dot),
        _ => Err(invalid(
            py,
            format!("unknown metric {name:?}: expected one of angular, dot, euclidean"),
        )),
    }
}

/// A path argument: `str`, `bytes` or `os.PathLike` (`ValueError` for a NUL byte).
fn path_of(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<PathBuf> {
    static FSDECODE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let fsdecode = FSDECODE.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("os")?.getattr("fsdecode")?.unbind())
    })?;
    let text: String = fsdecode.bind(py).call1((obj,))?.extract()?;
    if text.contains('\0') {
        return Err(invalid(py, format!("path contains a NUL byte: {text:?}")));
    }
    Ok(PathBuf::from(text))
}

/// `panns._convert.as_f32(obj)`: any array-like as a C-contiguous float32 ndarray
/// (values too large for float32 become inf, which the library then rejects).
fn as_f32<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    static CONVERT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let f = CONVERT.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("panns._convert")?.getattr("as_f32")?.unbind())
    })?;
    f.bind(py).call1((obj,))
}

/// The shape of an ndarray.
fn shape_of(arr: &Bound<'_, PyAny>) -> Vec<usize> {
    arr.cast::<PyUntypedArray>()
        .map(|a| a.shape().to_vec())
        .unwrap_or_default()
}

/// `(ids, distances)` pairs as a list of `(int, float)` tuples.
/// The hits (nearest first) within distance `r`, at most `cap` of them, and whether the
/// cap cut the list.
fn within_radius<H>(hits: Vec<H>, dist: impl Fn(&H) -> f32, r: f32, cap: usize) -> (Vec<H>, bool) {
    let mut within: Vec<H> = hits.into_iter().filter(|h| dist(h) <= r).collect();
    let truncated = within.len() > cap;
    within.truncate(cap);
    (within, truncated)
}

/// `max_results` (default 1000, at least 1) and `budget` (default 0) of a range search.
fn range_args(
    py: Python<'_>,
    max_results: Option<&Bound<'_, PyAny>>,
    budget: Option<&Bound<'_, PyAny>>,
) -> PyResult<(usize, usize)> {
    let cap = clamped(opt_count(py, max_results, "max_results")?.unwrap_or(1000));
    if cap == 0 {
        return Err(invalid(py, "max_results must be at least 1, got 0".into()));
    }
    Ok((cap, clamped(opt_count(py, budget, "budget")?.unwrap_or(0))))
}

/// What a range search returns: the pairs, or `(pairs, truncated)` with `return_truncated`.
fn range_result<'py>(
    py: Python<'py>,
    list: Bound<'py, PyList>,
    truncated: bool,
    return_truncated: bool,
) -> PyResult<Bound<'py, PyAny>> {
    if !return_truncated {
        return Ok(list.into_any());
    }
    let flag = PyBool::new(py, truncated).to_owned().into_any();
    Ok(PyTuple::new(py, [list.into_any(), flag])?.into_any())
}

fn pairs<'py>(py: Python<'py>, hits: &[Neighbor]) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, hits.iter().map(|n| (n.id, f64::from(n.distance))))
}

/// Search statistics as a dict.
fn stats_dict<'py>(py: Python<'py>, s: &SearchStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("scored", s.scored)?;
    d.set_item("exact_scan", s.exact_scan)?;
    d.set_item("budget", s.budget)?;
    Ok(d)
}

// ---------------------------------------------------------------------------------------
// The index

/// The searchable index (swapped as a whole; searches hold their own `Arc`).
#[derive(Default)]
struct Current {
    index: Option<Arc<Index>>,
    /// A live index (then `index` is `None`): see `live.rs`.
    live: Option<live::Live>,
    closed: bool,
}

/// Everything a mutation changes.
struct Data {
    dim: Option<usize>,
    dim_explicit: bool,
    metric: Metric,
    metric_explicit: bool,
    /// How the next build stores its vectors (`dtype=` of the constructor).
    dtype: panns_core::Dtype,
    /// Build threads from `parallelize()` (`None`: the library default, all cores).
    threads: Option<usize>,
    /// The data set of the next build: `None` after build()/load() until vectors are added.
    builder: Option<IndexBuilder>,
    /// The file of a read-only `load()` (such an index refuses add_items/remove).
    source: Option<PathBuf>,
    /// The next free label of the live index (cached; `None`: ask the index).
    next_label: Option<u64>,
}

/// Query arguments shared by the search methods.
struct QueryArgs {
    k: usize,
    budget: usize,
}

/// `panns._panns.Index`: the native index class (subclassed by `panns.PannsIndex`).
#[pyclass(subclass, frozen, module = "panns._panns", name = "Index")]
struct PyIndex {
    current: Mutex<Current>,
    data: Mutex<Data>,
    /// The thread pool of batch searches with `threads=n` (built on first use).
    pool: Mutex<Option<(usize, Arc<rayon::ThreadPool>)>>,
}

impl PyIndex {
    /// The searchable index, or `RuntimeError` (closed / not built).
    #[inline]
    fn index(&self) -> PyResult<Arc<Index>> {
        let cur = self.current.lock();
        match &cur.index {
            Some(i) => Ok(Arc::clone(i)),
            None if cur.live.is_some() => Err(live::unsupported("this method")),
            None if cur.closed => Err(PyRuntimeError::new_err(
                "the index is closed: close() was called (build() or load() to use it again)",
            )),
            None => Err(PyRuntimeError::new_err(
                "the index is not built: call build() or load() first",
            )),
        }
    }

    /// Locks the data set, waiting without the GIL.
    fn lock_data<'a>(&'a self, py: Python<'_>) -> parking_lot::MutexGuard<'a, Data> {
        if let Some(g) = self.data.try_lock() {
            return g;
        }
        py.detach(|| self.data.lock())
    }

    /// Makes `index` the searchable index; the previous one is freed after its last search.
    fn install(&self, index: Index) {
        let old = {
            let mut cur = self.current.lock();
            cur.closed = false;
            (cur.index.replace(Arc::new(index)), cur.live.take())
        };
        drop(old);
    }

    /// The k and budget arguments.
    fn query_args(
        py: Python<'_>,
        k: Option<&Bound<'_, PyAny>>,
        c: Option<&Bound<'_, PyAny>>,
        budget: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<QueryArgs> {
        let k = match (c, k) {
            (Some(c), _) if !c.is_none() => c,
            (_, Some(k)) if !k.is_none() => k,
            _ => {
                return Err(invalid(
                    py,
                    "k (the number of neighbours) is required".into(),
                ));
            }
        };
        let k = count(py, k, "k")?;
        if k == 0 {
            return Err(invalid(py, "k must be at least 1, got 0".into()));
        }
        let budget = opt_count(py, budget, "budget")?.unwrap_or(0);
        Ok(QueryArgs {
            k: clamped(k),
            budget: clamped(budget),
        })
    }

    /// Runs `f` on the query vector `v` (a 1-D float32 array is used in place; anything
    /// else is converted); `Err(matrix)` when `v` is a 2-D array (after conversion).
    fn with_vector<'py, R>(
        py: Python<'py>,
        v: &Bound<'py, PyAny>,
        allow_matrix: bool,
        f: impl FnOnce(&[f32]) -> PyResult<R>,
    ) -> PyResult<Result<R, Bound<'py, PyAny>>> {
        if let Ok(arr) = v.cast::<PyArray1<f32>>()
            && let Ok(ro) = arr.try_readonly()
            && let Ok(s) = ro.as_slice()
        {
            return f(s).map(Ok);
        }
        let conv = as_f32(py, v)?;
        let shape = shape_of(&conv);
        let as_vector = match shape.len() {
            1 => true,
            2 if !allow_matrix && shape[0] == 1 => true,
            2 if allow_matrix => return Ok(Err(conv)),
            _ => false,
        };
        if !as_vector {
            return Err(invalid(
                py,
                format!(
                    "expected a vector (1-D){}, got an array of shape {shape:?}",
                    if allow_matrix {
                        " or a matrix (2-D)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        let flat = conv.call_method1("reshape", (-1,))?;
        let arr = flat.cast::<PyArray1<f32>>()?;
        let ro = arr.try_readonly()?;
        let s = ro
            .as_slice()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        f(s).map(Ok)
    }

    /// The rows of a converted 2-D float32 array as one flat slice, with `f`.
    fn with_matrix<R>(
        m: &Bound<'_, PyAny>,
        f: impl FnOnce(&[f32], usize, usize) -> PyResult<R>,
    ) -> PyResult<R> {
        let arr = m.cast::<PyArray2<f32>>()?;
        let ro = arr.try_readonly()?;
        let (n, d) = {
            let s = ro.shape();
            (s[0], s[1])
        };
        let s = ro
            .as_slice()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        f(s, n, d)
    }

    /// `query(..., filter=f)`: one filtered search per vector (rows of a matrix are
    /// searched one after another).
    fn query_filtered<'py>(
        &self,
        py: Python<'py>,
        index: &Index,
        v: &Bound<'py, PyAny>,
        params: &SearchParams,
        filter: &PyFilter,
        include_distances: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let out = |hits: &[Neighbor]| -> PyResult<Bound<'py, PyAny>> {
            if include_distances {
                Ok(pairs(py, hits)?.into_any())
            } else {
                Ok(PyList::new(py, hits.iter().map(|n| n.id))?.into_any())
            }
        };
        let r = Self::with_vector(py, v, true, |q| {
            search_filtered(py, index, q, params, filter).map(|r| r.0)
        })?;
        match r {
            Ok(hits) => out(&hits),
            Err(m) => {
                let rows = Self::with_matrix(&m, |s, n, d| {
                    (0..n)
                        .map(|i| {
                            search_filtered(py, index, &s[i * d..(i + 1) * d], params, filter)
                                .map(|r| r.0)
                        })
                        .collect::<PyResult<Vec<_>>>()
                })?;
                let lists = rows.iter().map(|h| out(h)).collect::<PyResult<Vec<_>>>()?;
                Ok(PyList::new(py, lists)?.into_any())
            }
        }
    }

    /// The batch search of `query(M, k)`.
    #[allow(clippy::too_many_arguments)]
    fn search_matrix<'py>(
        &self,
        py: Python<'py>,
        index: &Arc<Index>,
        m: &Bound<'py, PyAny>,
        args: &QueryArgs,
        include_distances: bool,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let pool = match threads {
            None | Some(0) => None,
            Some(n) => Some(self.pool(py, n)?),
        };
        Self::with_matrix(m, |q, n, d| {
            if d != index.dim() {
                return Err(raise(
                    py,
                    Kind::Value,
                    DIMENSION_MISMATCH,
                    format!(
                        "query dimension mismatch: the queries have {d} columns, the index \
                         dimension is {}",
                        index.dim()
                    ),
                ));
            }
            // Clamped before allocating: k = 10**8 on a small index allocates n x len.
            let k = args.k.min(index.len());
            let params = SearchParams::new(k).with_budget(args.budget);
            let mut ids = vec![0u32; n * k];
            let out_d =
                include_distances.then(|| unsafe { PyArray2::<f32>::new(py, [n, k], false) });
            // SAFETY: the array was just created here, is C-contiguous and not shared yet.
            let dist_slice = match &out_d {
                Some(a) => Some(
                    unsafe { a.as_slice_mut() }
                        .map_err(|e| PyValueError::new_err(e.to_string()))?,
                ),
                None => None,
            };
            if n > 0 {
                let run = || index.search_batch_into(q, &params, &mut ids, dist_slice);
                let res = py.detach(|| match &pool {
                    Some(p) => p.install(run),
                    None => run(),
                });
                res.map_err(|e| core_err(py, e))?;
            }
            let out_ids = unsafe { PyArray2::<i64>::new(py, [n, k], false) };
            // SAFETY: as above.
            let dst = unsafe { out_ids.as_slice_mut() }
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
            for (o, &i) in dst.iter_mut().zip(&ids) {
                *o = if i == u32::MAX { -1 } else { i64::from(i) };
            }
            match out_d {
                Some(dists) => {
                    Ok(PyTuple::new(py, [out_ids.into_any(), dists.into_any()])?.into_any())
                }
                None => Ok(out_ids.into_any()),
            }
        })
    }

    /// The per-index pool of `n` threads (rebuilt when `n` changes).
    fn pool(&self, py: Python<'_>, n: usize) -> PyResult<Arc<rayon::ThreadPool>> {
        let mut slot = self.pool.lock();
        if let Some((m, p)) = slot.as_ref()
            && *m == n
        {
            return Ok(Arc::clone(p));
        }
        let p = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| invalid(py, format!("threads = {n}: cannot start the threads: {e}")))?;
        let p = Arc::new(p);
        *slot = Some((n, Arc::clone(&p)));
        Ok(p)
    }

    /// The staging builder of `data`: created on first use after a build or load,
    /// holding the vectors of the current index (adding to a built index extends it).
    fn staging<'a>(&self, py: Python<'_>, data: &'a mut Data) -> PyResult<&'a mut IndexBuilder> {
        if data.builder.is_none() && self.current.lock().live.is_some() {
            return Err(live::unsupported(
                "add_vector()/load_csv() (use add_items()) or build() (use compact())",
            ));
        }
        if data.builder.is_none() {
            let dim = data.dim.ok_or_else(|| {
                invalid(
                    py,
                    "the dimension is unknown: pass dimension= or add a vector first".into(),
                )
            })?;
            let mut b = IndexBuilder::new(dim, data.metric).map_err(|e| core_err(py, e))?;
            let current = self.current.lock().index.clone();
            if let Some(index) = current {
                let rows: Vec<f32> = (0..index.len())
                    .flat_map(|i| index.vector(i).map(|v| v.into_owned()).unwrap_or_default())
                    .collect();
                b.add_batch(&rows).map_err(|e| core_err(py, e))?;
            }
            data.builder = Some(b);
        }
        Ok(data.builder.as_mut().expect("created above"))
    }

    /// Fixes the dimension from the first data seen; `ValueError` on a mismatch.
    fn set_dim(py: Python<'_>, data: &mut Data, d: usize) -> PyResult<bool> {
        match data.dim {
            Some(dim) if dim != d => Err(raise(
                py,
                Kind::Value,
                DIMENSION_MISMATCH,
                format!("dimension mismatch: expected {dim} components, got {d}"),
            )),
            Some(_) => Ok(false),
            None => {
                if d == 0 || d > panns_core::MAX_DIM {
                    return Err(core_err(py, panns_core::Error::InvalidDimension(d)));
                }
                data.dim = Some(d);
                Ok(true)
            }
        }
    }

    /// Appends rows (flat, `d` per row) to the staging builder; returns the first id.
    fn append(&self, py: Python<'_>, data: &mut Data, rows: &[f32], d: usize) -> PyResult<u32> {
        let inferred = Self::set_dim(py, data, d)?;
        let res = self
            .staging(py, data)
            .and_then(|b| b.add_batch(rows).map_err(|e| core_err(py, e)));
        match res {
            Ok(r) => Ok(r.start),
            Err(e) => {
                if inferred && data.builder.as_ref().is_none_or(|b| b.is_empty()) {
                    data.builder = None;
                    data.dim = None;
                }
                Err(e)
            }
        }
    }

    /// Replaces the data set by a fresh builder filled by `fill`.
    fn replace_with(
        &self,
        py: Python<'_>,
        data: &mut Data,
        d: usize,
        fill: impl FnOnce(&mut IndexBuilder) -> PyResult<()>,
    ) -> PyResult<usize> {
        let inferred = Self::set_dim(py, data, d)?;
        let res = IndexBuilder::new(d, data.metric)
            .map_err(|e| core_err(py, e))
            .and_then(|mut b| fill(&mut b).map(|_| b));
        match res {
            Ok(b) => {
                let n = b.len();
                data.builder = Some(b);
                Ok(n)
            }
            Err(e) => {
                if inferred {
                    data.dim = None;
                }
                Err(e)
            }
        }
    }

    /// Writes a progress line to `sys.stderr`.
    fn progress(py: Python<'_>, on: bool, line: &str) {
        if !on {
            return;
        }
        if let Ok(err) = py.import("sys").and_then(|s| s.getattr("stderr")) {
            let _ = err.call_method1("write", (format!("{line}\n"),));
            let _ = err.call_method0("flush");
        }
    }
}

#[pymethods]
impl PyIndex {
    #[new]
    #[pyo3(signature = (dimension=None, metric=None, dtype=None))]
    fn new(
        py: Python<'_>,
        dimension: Option<&Bound<'_, PyAny>>,
        metric: Option<&Bound<'_, PyAny>>,
        dtype: Option<&str>,
    ) -> PyResult<Self> {
        let dtype = match dtype {
            None => panns_core::Dtype::F32,
            Some(d) => d.parse().map_err(|e| core_err(py, e))?,
        };
        let metric_explicit = metric.is_some_and(|m| !m.is_none());
        let metric = match metric {
            Some(m) if !m.is_none() => metric_of(py, m)?,
            _ => Metric::Euclidean,
        };
        let dim = match opt_count(py, dimension, "dimension")? {
            Some(0) => return Err(invalid(py, "dimension must be positive".into())),
            Some(d) if d > panns_core::MAX_DIM as u64 => {
                return Err(invalid(
                    py,
                    format!("dimension {d}: at most {}", panns_core::MAX_DIM),
                ));
            }
            d => d.map(|d| d as usize),
        };
        Ok(PyIndex {
            current: Mutex::new(Current::default()),
            data: Mutex::new(Data {
                dim,
                dim_explicit: dim.is_some(),
                metric,
                metric_explicit,
                dtype,
                threads: None,
                builder: None,
                source: None,
                next_label: None,
            }),
            pool: Mutex::new(None),
        })
    }

    // -- properties -------------------------------------------------------------------

    /// The length of every vector (`None` until known).
    #[getter]
    fn dimension(&self, py: Python<'_>) -> Option<usize> {
        self.lock_data(py).dim
    }

    /// The distance metric: 'euclidean', 'angular' or 'dot'.
    #[getter]
    fn metric(&self, py: Python<'_>) -> &'static str {
        self.lock_data(py).metric.name()
    }

    /// How the vectors are stored: 'f32', or 'i8' (one byte per component with a range
    /// per component; distances are to the decoded vectors). That of the built or loaded
    /// index, else the constructor's `dtype=`.
    #[getter]
    fn dtype(&self, py: Python<'_>) -> &'static str {
        match self.any_index(py) {
            Some(i) => i.dtype().name(),
            None => self.lock_data(py).dtype.name(),
        }
    }

    /// The number of trees of the built or loaded index (0 before).
    #[getter]
    fn n_trees(&self, py: Python<'_>) -> usize {
        self.any_index(py).map_or(0, |i| i.n_trees())
    }

    /// Neighbours per item of the neighbour graph (0 without a graph, or before build()/load()).
    #[getter]
    fn graph_degree(&self, py: Python<'_>) -> usize {
        self.any_index(py).map_or(0, |i| i.graph_degree())
    }

    /// The parameters the index was built with (as recorded in the file for a loaded index).
    #[getter]
    fn build_params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let index = match self.any_index(py) {
            Some(i) => i,
            None => self.index().map(|i| (*i).clone())?,
        };
        params_dict(py, index.params(), index.pool_size())
    }

    /// True once build() or load() has made an index to search.
    #[getter]
    fn is_built(&self) -> bool {
        let cur = self.current.lock();
        cur.index.is_some() || cur.live.is_some()
    }

    /// True after close() (until the next build() or load()).
    #[getter]
    fn closed(&self) -> bool {
        self.current.lock().closed
    }

    /// The number of vectors: of the pending data set if vectors were added since the
    /// last build, else of the index.
    fn __len__(&self, py: Python<'_>) -> usize {
        if let Some(b) = &self.lock_data(py).builder {
            return b.len();
        }
        if let Some(l) = self.live() {
            return live::read(py, &l).len();
        }
        self.current.lock().index.as_ref().map_or(0, |i| i.len())
    }

    /// The number of vectors (same as `len(index)`).
    fn len(&self, py: Python<'_>) -> usize {
        self.__len__(py)
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let py = slf.py();
        let me = slf.get();
        let name = slf.get_type().name()?;
        let (dim, metric) = {
            let d = me.lock_data(py);
            (d.dim, d.metric)
        };
        let state = {
            let c = me.current.lock();
            if c.live.is_some() {
                "live"
            } else if c.index.is_some() {
                "built"
            } else if c.closed {
                "closed"
            } else {
                "not built"
            }
        };
        let dim = dim.map_or("None".to_string(), |d| d.to_string());
        Ok(format!(
            "{name}(dimension={dim}, metric='{}', len={}, {state})",
            metric.name(),
            me.__len__(py)
        ))
    }

    // -- lifetime ---------------------------------------------------------------------

    /// Frees the index and any pending vectors now (idempotent; also done on garbage
    /// collection). Returns at once: searches running in other threads finish on the
    /// index they started with, which is freed when the last of them returns. Searching a
    /// closed index raises `RuntimeError` ("the index is closed").
    fn close(&self, py: Python<'_>) {
        let builder = self.lock_data(py).builder.take();
        let old = {
            let mut cur = self.current.lock();
            cur.closed = true;
            (cur.index.take(), cur.live.take())
        };
        *self.pool.lock() = None;
        py.detach(move || {
            drop(builder);
            drop(old);
        });
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) {
        self.close(py);
    }

    // -- collecting vectors -------------------------------------------------------------

    /// Adds one vector to the data set and returns its id (0, 1, 2, ... in order of
    /// addition). `ValueError` for a wrong length, a NaN or infinite component (naming it),
    /// or a zero vector under the angular metric.
    fn add_vector(&self, py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<u32> {
        let mut data = self.lock_data(py);
        let r = Self::with_vector(py, v, false, |s| self.append(py, &mut data, s, s.len()))?;
        match r {
            Ok(id) => Ok(id),
            Err(_) => unreachable!("matrices are refused above"),
        }
    }

    /// Replaces the data set by the rows of `A` (a 2-D array, memmap, or list of rows);
    /// other dtypes are converted to float32 a chunk of rows at a time. On error (wrong
    /// dimension, NaN...) the previous data set is kept. Returns the number of rows.
    #[allow(non_snake_case)]
    fn load_matrix(&self, py: Python<'_>, A: &Bound<'_, PyAny>) -> PyResult<usize> {
        let mut data = self.lock_data(py);
        let shape = shape_of(A);
        let is_array = A.cast::<PyUntypedArray>().is_ok();
        if is_array && shape.len() == 2 {
            let (n, d) = (shape[0], shape[1]);
            if n == 0 && d == 0 && data.dim.is_none() {
                return Ok(0);
            }
            return self.replace_with(py, &mut data, d, |b| {
                if let Ok(m) = A.cast::<PyArray2<f32>>()
                    && let Ok(ro) = m.try_readonly()
                    && let Ok(s) = ro.as_slice()
                {
                    return py
                        .detach(|| b.add_batch(s))
                        .map(|_| ())
                        .map_err(|e| core_err(py, e));
                }
                for start in (0..n).step_by(CHUNK_ROWS) {
                    let end = (start + CHUNK_ROWS).min(n);
                    let chunk = as_f32(
                        py,
                        &A.get_item(PySlice::new(py, start as isize, end as isize, 1))?,
                    )?;
                    Self::with_matrix(&chunk, |s, _, _| {
                        b.add_batch(s).map(|_| ()).map_err(|e| core_err(py, e))
                    })?;
                }
                Ok(())
            });
        }
        let m = as_f32(py, A)?;
        let shape = shape_of(&m);
        match shape.len() {
            2 => {}
            1 if shape[0] == 0 => {
                if data.dim.is_none() {
                    return Ok(0);
                }
                let d = data.dim.unwrap_or(1);
                return self.replace_with(py, &mut data, d, |_| Ok(()));
            }
            _ => {
                return Err(invalid(
                    py,
                    format!("expected a matrix (2-D), got an array of shape {shape:?}"),
                ));
            }
        }
        let d = shape[1];
        self.replace_with(py, &mut data, d, |b| {
            Self::with_matrix(&m, |s, _, _| {
                b.add_batch(s).map(|_| ()).map_err(|e| core_err(py, e))
            })
        })
    }

    /// Appends the rows of a delimited text file to the data set and returns how many
    /// were added (none if the file is rejected). Read by panns-io's reader: one rule for
    /// the header (`header='auto'`: the first non-blank line is skipped when none of its
    /// cells is number-like; 'yes'/'no' force it), errors naming the line and column.
    /// `sep` is one character (' ' = any run of spaces and tabs).
    #[pyo3(signature = (fname, sep=",", header="auto"))]
    fn load_csv(
        &self,
        py: Python<'_>,
        fname: &Bound<'_, PyAny>,
        sep: &str,
        header: &str,
    ) -> PyResult<usize> {
        let path = path_of(py, fname)?;
        let sep = match sep.as_bytes() {
            [b] if b.is_ascii() => *b,
            _ => {
                return Err(invalid(
                    py,
                    format!("sep must be one ASCII character, got {sep:?}"),
                ));
            }
        };
        let header = match header {
            "auto" => panns_io::HeaderMode::Auto,
            "yes" => panns_io::HeaderMode::Yes,
            "no" => panns_io::HeaderMode::No,
            _ => {
                return Err(invalid(
                    py,
                    format!("header must be 'auto', 'yes' or 'no', got {header:?}"),
                ));
            }
        };
        let opts = panns_io::CsvOptions {
            separator: sep,
            header,
        };
        let ds = py
            .detach(|| panns_io::read_csv(&path, &opts))
            .map_err(|e| io_err(py, e))?;
        let mut data = self.lock_data(py);
        self.append(py, &mut data, &ds.data, ds.dim).map_err(|e| {
            let msg = format!("{}: {}", path.display(), e.value(py));
            let status = e
                .value(py)
                .getattr("status")
                .ok()
                .and_then(|s| s.extract::<i32>().ok());
            raise(py, Kind::Value, status.unwrap_or(INVALID_ARGUMENT), msg)
        })?;
        Ok(ds.n)
    }

    /// Replaces the data set by the 2-D float dataset `dataset` of an HDF5 file (read by
    /// the pure-Rust reader: no h5py needed) and returns the number of rows.
    #[pyo3(signature = (fname, dataset="panns"))]
    fn load_hdf5(
        &self,
        py: Python<'_>,
        fname: &Bound<'_, PyAny>,
        dataset: &str,
    ) -> PyResult<usize> {
        let path = path_of(py, fname)?;
        let ds = py
            .detach(|| panns_io::read_hdf5(&path, dataset))
            .map_err(|e| io_err(py, e))?;
        let mut data = self.lock_data(py);
        self.replace_with(py, &mut data, ds.dim, |b| {
            py.detach(|| b.add_batch(&ds.data))
                .map(|_| ())
                .map_err(|e| core_err(py, e))
        })
    }

    // -- building -----------------------------------------------------------------------

    /// Chooses how many threads build() uses: True = all cores (the library default,
    /// also when parallelize() is never called), False = one, an integer n > 0 = n (0 = all
    /// cores). The index does not depend on it.
    #[pyo3(signature = (enable=None))]
    fn parallelize(&self, py: Python<'_>, enable: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        // panns 0.x: parallelize() and parallelize(False) mean one thread.
        let threads = match enable {
            None => 1,
            Some(e) if e.is_none() => 1,
            Some(e) => match e.cast::<PyBool>() {
                Ok(b) => usize::from(!b.is_true()),
                Err(_) => bounded(py, e, "threads", MAX_THREADS)?,
            },
        };
        self.lock_data(py).threads = Some(threads);
        Ok(())
    }

    /// Builds the index over the current data set: a forest of `n_trees` trees (None:
    /// the library default, 32), plus a neighbour graph when `graph_degree > 0`.
    /// `exact_graph_build=True` scores the graph build's candidates on exact distances
    /// instead of 8-bit codes: slower, without the codes' memory (a byte per component).
    #[pyo3(signature = (n_trees=None, *, leaf_size=None, pool_size=None, seed=None,
                        candidates=None, split=None, threads=None, c=None, graph_degree=None,
                        progress=false, exact_graph_build=false))]
    #[allow(clippy::too_many_arguments)]
    fn build(
        &self,
        py: Python<'_>,
        n_trees: Option<&Bound<'_, PyAny>>,
        leaf_size: Option<&Bound<'_, PyAny>>,
        pool_size: Option<&Bound<'_, PyAny>>,
        seed: Option<&Bound<'_, PyAny>>,
        candidates: Option<&Bound<'_, PyAny>>,
        split: Option<&str>,
        threads: Option<&Bound<'_, PyAny>>,
        c: Option<&Bound<'_, PyAny>>,
        graph_degree: Option<&Bound<'_, PyAny>>,
        progress: bool,
        exact_graph_build: bool,
    ) -> PyResult<()> {
        let mut params = BuildParams::default();
        let n_trees = match c {
            Some(c) if !c.is_none() => Some(c),
            _ => n_trees,
        };
        let big = 1u64 << 32;
        if let Some(n) = opt_count(py, n_trees, "n_trees")? {
            params.n_trees = clamped(n.min(big));
        }
        if let Some(n) = opt_count(py, leaf_size, "leaf_size")? {
            params.leaf_size = clamped(n.min(big));
        }
        if let Some(n) = opt_count(py, pool_size, "pool_size")? {
            params.pool_size = clamped(n.min(big));
        }
        if let Some(n) = opt_count(py, candidates, "candidates")? {
            params.candidates = clamped(n.min(big));
        }
        if let Some(s) = opt_count(py, seed, "seed")? {
            params.seed = s;
        }
        match split {
            None | Some("mean") => {}
            Some("median") => params.split = SplitRule::Median,
            Some(s) => {
                return Err(invalid(
                    py,
                    format!("unknown split {s:?}: expected 'mean' or 'median'"),
                ));
            }
        }
        let degree = match opt_count(py, graph_degree, "graph_degree")? {
            None | Some(0) => 0,
            Some(d) => clamped(d.min(big)),
        };
        let explicit_threads = match threads {
            Some(t) if !t.is_none() => Some(bounded(py, t, "threads", MAX_THREADS)?),
            _ => None,
        };
        params.validate().map_err(|e| core_err(py, e))?;

        let mut data = self.lock_data(py);
        params.threads = explicit_threads.or(data.threads).unwrap_or(0);
        params.dtype = data.dtype;
        if data.builder.is_none() && !self.is_built() {
            return Err(core_err(py, panns_core::Error::Empty));
        }
        let builder = self.staging(py, &mut data)?;
        if builder.is_empty() {
            return Err(core_err(py, panns_core::Error::Empty));
        }
        let builder = data.builder.take().expect("staged above");
        data.source = None;
        let n = builder.len();
        Self::progress(
            py,
            progress,
            &format!(
                "panns build [1/{}] trees: {} trees over {n} vectors ...",
                if degree > 0 { 2 } else { 1 },
                params.n_trees
            ),
        );
        let t = Instant::now();
        let mut index = py
            .detach(|| builder.build(&params))
            .map_err(|e| core_err(py, e))?;
        Self::progress(
            py,
            progress,
            &format!(
                "panns build [1/{}] trees: done in {:.2} s",
                if degree > 0 { 2 } else { 1 },
                t.elapsed().as_secs_f64()
            ),
        );
        let mut graph_error = None;
        if degree > 0 {
            Self::progress(
                py,
                progress,
                &format!("panns build [2/2] graph: degree {degree} (NN-descent) ..."),
            );
            let t = Instant::now();
            let gp = graph_params(degree, params.threads, exact_graph_build);
            match py.detach(|| index.build_graph(&gp)) {
                Ok(()) => Self::progress(
                    py,
                    progress,
                    &format!(
                        "panns build [2/2] graph: done in {:.2} s",
                        t.elapsed().as_secs_f64()
                    ),
                ),
                // The vectors have moved into the new forest: keep it (without a graph).
                Err(e) => graph_error = Some(core_err(py, e)),
            }
        }
        self.install(index);
        drop(data);
        match graph_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Adds (or replaces) a neighbour graph of `degree` neighbours per item (0 = the
    /// library default, 24), on a built or loaded index. Searches from other threads go on
    /// meanwhile (on the index without the new graph). `exact_graph_build` as in `build`.
    #[pyo3(signature = (degree=None, threads=None, *, exact_graph_build=false))]
    fn build_graph(
        &self,
        py: Python<'_>,
        degree: Option<&Bound<'_, PyAny>>,
        threads: Option<&Bound<'_, PyAny>>,
        exact_graph_build: bool,
    ) -> PyResult<()> {
        let degree = match opt_count(py, degree, "degree")? {
            None | Some(0) => GraphParams::default().degree,
            Some(d) => clamped(d.min(1 << 32)),
        };
        let explicit = match threads {
            Some(t) if !t.is_none() => Some(bounded(py, t, "threads", MAX_THREADS)?),
            _ => None,
        };
        let data = self.lock_data(py);
        let index = self.index()?;
        if data.builder.is_some() {
            return Err(PyRuntimeError::new_err(
                "vectors were added since the last build(): call build() first",
            ));
        }
        let gp = graph_params(
            degree,
            explicit.or(data.threads).unwrap_or(0),
            exact_graph_build,
        );
        let mut copy = (*index).clone();
        py.detach(|| copy.build_graph(&gp))
            .map_err(|e| core_err(py, e))?;
        self.install(copy);
        Ok(())
    }

    // -- files --------------------------------------------------------------------------

    /// Writes the index to `fname` (one file, written to a temporary file and renamed, so
    /// readers never see a partial index). `mmap` is accepted for panns 0.x compatibility.
    #[pyo3(signature = (fname=None, mmap=true))]
    ///
    /// A live index is written with its labels (compacted first when held in memory; a
    /// live index on files writes a compacted copy and refuses its own base file, which
    /// `compact()` rewrites); `load()` opens such a file as a live index again.
    fn save(&self, py: Python<'_>, fname: Option<&Bound<'_, PyAny>>, mmap: bool) -> PyResult<()> {
        let _ = mmap;
        let data = self.lock_data(py);
        if data.builder.is_some() {
            return Err(PyRuntimeError::new_err(
                "vectors were added since the last build(): call build() first",
            ));
        }
        let path = match fname {
            Some(f) if !f.is_none() => path_of(py, f)?,
            _ => PathBuf::from("panns.idx"),
        };
        if let Some(l) = self.live() {
            return py
                .detach(|| l.write().save(&path))
                .map_err(|e| io_err(py, e));
        }
        let index = self.index()?;
        py.detach(|| panns_io::save_index(&index, &path))
            .map_err(|e| io_err(py, e))
    }

    /// Opens an index file: memory-mapped when `mmap` (pages shared by every process
    /// opening the file; the file must then be replaced by renaming a new file over it,
    /// never modified in place), else read into memory. `verify` checks the checksum.
    ///
    /// `writable=True` opens the file as a live index taking `add_items`/`remove`
    /// (holding the writer lock `fname.lock` until closed: one writer at a time,
    /// `BlockingIOError` otherwise; changes are durable after `commit()`). A file with a
    /// live-index log or labels beside or in it opens as a live index read-only (ids are
    /// labels; `refresh()` picks up commits). Any other file loaded read-only refuses
    /// `add_items`/`remove` (`io.UnsupportedOperation`). A live index always maps its
    /// base file (`mmap` does not apply).
    #[pyo3(signature = (fname, mmap=true, verify=false, writable=false))]
    fn load(
        &self,
        py: Python<'_>,
        fname: &Bound<'_, PyAny>,
        mmap: bool,
        verify: bool,
        writable: bool,
    ) -> PyResult<()> {
        let path = path_of(py, fname)?;
        if writable || live::is_live_file(&path) {
            let opts = panns_io::LiveOptions {
                verify,
                ..Default::default()
            };
            let l = py
                .detach(|| panns_io::LiveIndex::open_with(&path, writable, opts))
                .map_err(|e| io_err(py, e))?;
            let source = (!writable).then(|| path.clone());
            return self.adopt_live(py, l, &path.display().to_string(), source);
        }
        let opts = panns_io::OpenOptions {
            verify_checksum: verify,
        };
        let index = py
            .detach(|| {
                if mmap {
                    panns_io::open_index(&path, &opts)
                } else {
                    panns_io::load_index(&path, &opts)
                }
            })
            .map_err(|e| io_err(py, e))?;
        let name = path.display().to_string();
        self.adopt(py, index, &name, Some(path))
    }

    /// Replaces this object's index by one parsed from `data` (bytes of an index file, as
    /// written by `to_bytes()` or `save()`).
    #[pyo3(signature = (data, verify=false))]
    fn _load_bytes(&self, py: Python<'_>, data: &Bound<'_, PyAny>, verify: bool) -> PyResult<()> {
        let bytes: Vec<u8> = if let Ok(b) = data.cast::<PyBytes>() {
            b.as_bytes().to_vec()
        } else {
            data.call_method0("__bytes__")
                .or_else(|_| py.import("builtins")?.getattr("bytes")?.call1((data,)))?
                .cast::<PyBytes>()?
                .as_bytes()
                .to_vec()
        };
        if live::bytes_have_labels(&bytes) {
            let opts = panns_io::LiveOptions {
                verify,
                ..Default::default()
            };
            let l = py
                .detach(|| panns_io::LiveIndex::from_bytes(bytes, opts))
                .map_err(|e| io_err(py, e))?;
            return self.adopt_live(py, l, "<bytes>", None);
        }
        let opts = panns_io::OpenOptions {
            verify_checksum: verify,
        };
        let index = py
            .detach(|| panns_io::index_from_bytes(bytes, &opts))
            .map_err(|e| io_err(py, e))?;
        self.adopt(py, index, "<bytes>", None)
    }

    /// The index as the bytes of an index file (what `save()` writes).
    /// A live index gives the bytes of a compacted copy with its labels (the index itself
    /// is not changed).
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let data = self.lock_data(py);
        if data.builder.is_some() {
            return Err(PyRuntimeError::new_err(
                "vectors were added since the last build(): call build() first",
            ));
        }
        if let Some(l) = self.live() {
            drop(data);
            let bytes = py
                .detach(|| l.read().to_bytes())
                .map_err(|e| io_err(py, e))?;
            return Ok(PyBytes::new(py, &bytes));
        }
        let index = self.index()?;
        drop(data);
        let bytes = py
            .detach(|| panns_io::index_to_bytes(&index))
            .map_err(|e| io_err(py, e))?;
        Ok(PyBytes::new(py, &bytes))
    }

    // -- searching ----------------------------------------------------------------------

    /// The `k` approximate nearest neighbours of `v` (see `panns.PannsIndex.query`).
    #[pyo3(signature = (v, k=None, budget=None, *, c=None, include_distances=true, threads=None, filter=None))]
    #[allow(clippy::too_many_arguments)]
    fn query<'py>(
        &self,
        py: Python<'py>,
        v: &Bound<'py, PyAny>,
        k: Option<&Bound<'py, PyAny>>,
        budget: Option<&Bound<'py, PyAny>>,
        c: Option<&Bound<'py, PyAny>>,
        include_distances: bool,
        threads: Option<&Bound<'py, PyAny>>,
        filter: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let args = Self::query_args(py, k, c, budget)?;
        if let Some(l) = self.live() {
            return self.query_live(py, &l, v, &args, include_distances, threads, filter);
        }
        let index = self.index()?;
        let params = SearchParams::new(args.k).with_budget(args.budget);
        if let Some(f) = parse_filter(py, filter, index.len())? {
            return self.query_filtered(py, &index, v, &params, &f, include_distances);
        }
        let r = Self::with_vector(py, v, true, |q| {
            py.detach(|| index.search(q, &params))
                .map_err(|e| core_err(py, e))
        })?;
        match r {
            Ok(hits) if include_distances => Ok(pairs(py, &hits)?.into_any()),
            Ok(hits) => Ok(PyList::new(py, hits.iter().map(|n| n.id))?.into_any()),
            Err(m) => {
                let threads = match threads {
                    Some(t) if !t.is_none() => Some(bounded(py, t, "threads", MAX_THREADS)?),
                    _ => None,
                };
                self.search_matrix(py, &index, &m, &args, include_distances, threads)
            }
        }
    }

    /// `filter` (a boolean mask of one bool per item or an array of ids) prepared once
    /// for many queries of this index: pass the result as `filter=` (see
    /// `panns.PannsIndex.prepare_filter`).
    fn prepare_filter(
        &self,
        py: Python<'_>,
        filter: &Bound<'_, PyAny>,
    ) -> PyResult<filter::PreparedFilter> {
        let index = self.index()?;
        filter::prepare(py, filter, index.len())
    }

    /// `(pairs, stats)`: the result of `query(v, k, budget, filter=filter)` and what the
    /// search did: `{'scored': distinct items whose exact distance was computed,
    /// 'exact_scan': True when every (allowed) item was scanned exactly instead of
    /// walking the trees or graph, 'budget': the effective budget}`.
    #[pyo3(signature = (v, k, budget=None, *, filter=None))]
    fn query_with_stats<'py>(
        &self,
        py: Python<'py>,
        v: &Bound<'py, PyAny>,
        k: &Bound<'py, PyAny>,
        budget: Option<&Bound<'py, PyAny>>,
        filter: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyDict>)> {
        let args = Self::query_args(py, Some(k), None, budget)?;
        let params = SearchParams::new(args.k).with_budget(args.budget);
        let vector = |py| invalid(py, "expected a vector".into());
        if let Some(l) = self.live() {
            if let Some(f) = live::parse_live_filter(py, filter)? {
                let r = Self::with_vector(py, v, false, |q| {
                    live::search_live_filtered(py, &l, q, &params, &f)
                })?;
                let (hits, stats) = r.map_err(|_| vector(py))?;
                return Ok((live::label_pairs(py, &hits)?, stats_dict(py, &stats)?));
            }
            let r = Self::with_vector(py, v, false, |q| {
                py.detach(|| l.read().search_with_stats(q, &params))
                    .map_err(|e| io_err(py, e))
            })?;
            let (hits, stats) = r.map_err(|_| invalid(py, "expected a vector".into()))?;
            return Ok((live::label_pairs(py, &hits)?, stats_dict(py, &stats)?));
        }
        let index = self.index()?;
        if let Some(f) = parse_filter(py, filter, index.len())? {
            let r = Self::with_vector(py, v, false, |q| {
                search_filtered(py, &index, q, &params, &f)
            })?;
            let (hits, stats) = r.map_err(|_| vector(py))?;
            return Ok((pairs(py, &hits)?, stats_dict(py, &stats)?));
        }
        let r = Self::with_vector(py, v, false, |q| {
            py.detach(|| index.search_with_stats(q, &params))
                .map_err(|e| core_err(py, e))
        })?;
        let (hits, stats) = r.map_err(|_| invalid(py, "expected a vector".into()))?;
        Ok((pairs(py, &hits)?, stats_dict(py, &stats)?))
    }

    /// The budget a search for `k` neighbours with `budget` actually uses (defaults
    /// applied, at least k, at most the item count).
    #[pyo3(signature = (k, budget=None))]
    fn effective_budget(
        &self,
        py: Python<'_>,
        k: &Bound<'_, PyAny>,
        budget: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let args = Self::query_args(py, Some(k), None, budget)?;
        let params = SearchParams::new(args.k).with_budget(args.budget);
        if self.live().is_some() {
            // The base's budget (the delta is searched apart).
            return Ok(self
                .any_index(py)
                .map_or(args.k, |i| i.effective_budget(&params)));
        }
        let index = self.index()?;
        Ok(index.effective_budget(&params))
    }

    /// Every item within `radius` of `v`, nearest first, at most `max_results` of them
    /// (as FAISS' `range_search`): a list of `(id, distance)` pairs, or with
    /// `return_truncated=True` a tuple `(pairs, truncated)` where `truncated` says the
    /// cap cut the list. Approximate unless `budget` covers half the items. `filter`
    /// (a boolean mask, ids or a callable, as in :meth:`query`) keeps only allowed items.
    #[pyo3(signature = (v, radius, max_results=None, budget=None, *, return_truncated=false, filter=None))]
    #[allow(clippy::too_many_arguments)]
    fn range_search<'py>(
        &self,
        py: Python<'py>,
        v: &Bound<'py, PyAny>,
        radius: f64,
        max_results: Option<&Bound<'py, PyAny>>,
        budget: Option<&Bound<'py, PyAny>>,
        return_truncated: bool,
        filter: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (cap, budget) = range_args(py, max_results, budget)?;
        let has_filter = filter.is_some_and(|f| !f.is_none());
        // A filtered range search: the nearest `cap + 1` allowed items (one more than
        // the cap tells whether it was hit), kept within the radius.
        let r = radius as f32;
        if has_filter && (r.is_nan() || r < 0.0) {
            return Err(invalid(
                py,
                format!("radius = {radius}: must be a number >= 0"),
            ));
        }
        let capped = SearchParams::new(cap.saturating_add(1)).with_budget(budget);
        let (list, truncated) = if let Some(l) = self.live().filter(|_| has_filter) {
            let f = live::parse_live_filter(py, filter)?.expect("a filter was given");
            let hits = Self::with_vector(py, v, false, |q| {
                live::search_live_filtered(py, &l, q, &capped, &f).map(|r| r.0)
            })?;
            let hits = hits.map_err(|_| invalid(py, "expected a vector".into()))?;
            let (within, truncated) = within_radius(hits, |h| h.1, r, cap);
            (live::label_pairs(py, &within)?, truncated)
        } else if has_filter {
            let index = self.index()?;
            let f = parse_filter(py, filter, index.len())?.expect("a filter was given");
            let hits = Self::with_vector(py, v, false, |q| {
                search_filtered(py, &index, q, &capped, &f).map(|r| r.0)
            })?;
            let hits = hits.map_err(|_| invalid(py, "expected a vector".into()))?;
            let (within, truncated) = within_radius(hits, |h| h.distance, r, cap);
            (pairs(py, &within)?, truncated)
        } else if let Some(l) = self.live() {
            let r = Self::with_vector(py, v, false, |q| {
                py.detach(|| l.read().range_search(q, radius as f32, cap, budget))
                    .map_err(|e| io_err(py, e))
            })?;
            let (hits, truncated) = r.map_err(|_| invalid(py, "expected a vector".into()))?;
            (live::label_pairs(py, &hits)?, truncated)
        } else {
            let index = self.index()?;
            let r = Self::with_vector(py, v, false, |q| {
                py.detach(|| index.range_search(q, radius as f32, cap, budget))
                    .map_err(|e| core_err(py, e))
            })?;
            let (hits, truncated) = r.map_err(|_| invalid(py, "expected a vector".into()))?;
            (pairs(py, &hits)?, truncated)
        };
        range_result(py, list, truncated, return_truncated)
    }

    /// The exact `k` nearest neighbours of `v` by scanning every item.
    #[pyo3(signature = (v, k=None, *, c=None))]
    fn linear_search<'py>(
        &self,
        py: Python<'py>,
        v: &Bound<'py, PyAny>,
        k: Option<&Bound<'py, PyAny>>,
        c: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let args = Self::query_args(py, k, c, None)?;
        if let Some(l) = self.live() {
            // A budget covering every item: exact scans of the base and the delta.
            let params = SearchParams::new(args.k).with_budget(usize::MAX);
            let r = Self::with_vector(py, v, false, |q| {
                py.detach(|| l.read().search(q, &params))
                    .map_err(|e| io_err(py, e))
            })?;
            let hits = r.map_err(|_| invalid(py, "expected a vector".into()))?;
            return live::label_pairs(py, &hits);
        }
        let index = self.index()?;
        let r = Self::with_vector(py, v, false, |q| {
            py.detach(|| index.linear_search(q, args.k))
                .map_err(|e| core_err(py, e))
        })?;
        let hits = r.map_err(|_| invalid(py, "expected a vector".into()))?;
        pairs(py, &hits)
    }

    /// A copy of the stored vector of item `i` (unit-normalised under the angular metric).
    fn get_vector<'py>(
        &self,
        py: Python<'py>,
        i: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        if let Some(l) = self.live() {
            return Ok(PyArray1::from_vec(py, live::vector_of(py, &l, i)?));
        }
        let index = self.index()?;
        let id = item_id(py, i, &index)?;
        let v = index.vector(id).map_err(|e| core_err(py, e))?;
        Ok(PyArray1::from_slice(py, &v))
    }

    /// Annoy's call: the `n` nearest neighbours of stored item `i` (itself first).
    /// `search_k` is the budget (-1 or 0: the default). Returns the ids, or
    /// `(ids, distances)` with `include_distances=True`.
    #[pyo3(signature = (i, n, search_k=-1, include_distances=false))]
    fn get_nns_by_item<'py>(
        &self,
        py: Python<'py>,
        i: &Bound<'py, PyAny>,
        n: &Bound<'py, PyAny>,
        search_k: i64,
        include_distances: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let budget = if search_k < 0 { 0 } else { search_k as usize };
        if let Some(l) = self.live() {
            let q = live::vector_of(py, &l, i)?;
            let args = Self::query_args(py, Some(n), None, None)?;
            let params = SearchParams::new(args.k).with_budget(budget);
            let hits = py
                .detach(|| l.read().search(&q, &params))
                .map_err(|e| io_err(py, e))?;
            let ids = PyList::new(py, hits.iter().map(|h| h.0))?;
            if include_distances {
                let d = PyList::new(py, hits.iter().map(|h| f64::from(h.1)))?;
                return Ok(PyTuple::new(py, [ids.into_any(), d.into_any()])?.into_any());
            }
            return Ok(ids.into_any());
        }
        let index = self.index()?;
        let id = item_id(py, i, &index)?;
        let args = Self::query_args(py, Some(n), None, None)?;
        let q = index.vector(id).map_err(|e| core_err(py, e))?;
        let params = SearchParams::new(args.k).with_budget(budget);
        let hits = py
            .detach(|| index.search(&q, &params))
            .map_err(|e| core_err(py, e))?;
        let ids = PyList::new(py, hits.iter().map(|h| h.id))?;
        if include_distances {
            let d = PyList::new(py, hits.iter().map(|h| f64::from(h.distance)))?;
            Ok(PyTuple::new(py, [ids.into_any(), d.into_any()])?.into_any())
        } else {
            Ok(ids.into_any())
        }
    }

    /// The distance between stored items `i` and `j` under the index metric.
    fn get_distance(
        &self,
        py: Python<'_>,
        i: &Bound<'_, PyAny>,
        j: &Bound<'_, PyAny>,
    ) -> PyResult<f64> {
        if let Some(l) = self.live() {
            let (va, vb) = (live::vector_of(py, &l, i)?, live::vector_of(py, &l, j)?);
            let metric = live::read(py, &l).metric();
            return Ok(f64::from(metric.distance(&va, &vb)));
        }
        let index = self.index()?;
        let (a, b) = (item_id(py, i, &index)?, item_id(py, j, &index)?);
        let va = index.vector(a).map_err(|e| core_err(py, e))?;
        let vb = index.vector(b).map_err(|e| core_err(py, e))?;
        Ok(f64::from(index.metric().distance(&va, &vb)))
    }

    // -- live index (issue #13) ------------------------------------------------------------

    /// Adds `vectors` (one vector, or a matrix of rows) under `labels` (one non-negative
    /// integer each; `None`: the next free labels, counting on from the largest label
    /// held, i.e. from `len()` on an index built from vectors). An existing label is
    /// replaced. Nothing of the batch is applied if a row has the wrong dimension, a
    /// NaN/inf or too large value, is zero under the angular metric, or a label repeats
    /// in the batch (`ValueError` naming the row). Makes the index live: after
    /// `build()` (or on a new index) it changes in memory; after
    /// `load(path, writable=True)` it changes the files, durably after `commit()`.
    /// Returns the labels (a uint64 array).
    #[pyo3(signature = (vectors, labels=None))]
    fn add_items<'py>(
        &self,
        py: Python<'py>,
        vectors: &Bound<'py, PyAny>,
        labels: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyArray1<u64>>> {
        let m = Self::rows_of(py, vectors)?;
        let shape = shape_of(&m);
        let (n, d) = (shape[0], shape[1]);
        let given = match labels {
            Some(l) if !l.is_none() => Some(live::labels_of(py, l, n as i64)?),
            _ => None,
        };
        let mut data = self.lock_data(py);
        let l = self.make_live(py, &mut data, Some(d))?;
        let dim = live::read(py, &l).dim();
        if d != dim {
            return Err(raise(
                py,
                Kind::Value,
                DIMENSION_MISMATCH,
                format!(
                    "the vectors have {d} components, the index dimension is {dim}; nothing of \
                     the batch was applied"
                ),
            ));
        }
        // The next free label: cached, or asked of the index (O(items)) when needed.
        let mut next = data.next_label;
        let labels = match given {
            Some(v) => v,
            None => {
                let first = *next.get_or_insert_with(|| live::read(py, &l).next_label());
                if first.checked_add(n as u64).is_none() {
                    return Err(invalid(py, "no free labels left below 2**64".into()));
                }
                (first..first + n as u64).collect()
            }
        };
        if n > 0 {
            Self::with_matrix(&m, |rows, _, _| {
                py.detach(|| l.write().add_batch(&labels, rows))
                    .map_err(|e| io_err(py, e))
            })?;
            let top = labels.iter().copied().max().unwrap_or(0);
            next = next.map(|x| x.max(top.saturating_add(1)));
        }
        data.next_label = next;
        Ok(PyArray1::from_vec(py, labels))
    }

    /// Removes the items of `labels` (an integer or a sequence of them); labels not
    /// held are ignored. Returns how many items were removed. Makes a built index live
    /// (see `add_items`).
    fn remove(&self, py: Python<'_>, labels: &Bound<'_, PyAny>) -> PyResult<usize> {
        let labels = live::labels_of(py, labels, -1)?;
        let mut data = self.lock_data(py);
        if !self.is_built() && data.builder.is_none() {
            return Ok(0);
        }
        let l = self.make_live(py, &mut data, None)?;
        py.detach(|| l.write().remove(&labels))
            .map_err(|e| io_err(py, e))
    }

    /// Makes every change since the last commit durable (appended to the log and
    /// fsynced before it returns) for a live index opened with `load(path,
    /// writable=True)`; may then compact (see `compact`). In memory (an index changed
    /// after `build()`) there is nothing to make durable: it does nothing (`save()`
    /// writes a file). Does nothing on an index that is not live.
    fn commit(&self, py: Python<'_>) -> PyResult<()> {
        let _data = self.lock_data(py);
        match self.live() {
            Some(l) => py.detach(|| l.write().commit()).map_err(|e| io_err(py, e)),
            None => Ok(()),
        }
    }

    /// For an index loaded read-only: picks up the changes committed (and compactions
    /// made) by the writer since it was loaded or last refreshed. Returns True if
    /// anything changed. A writer or an index in memory is always current (False).
    fn refresh(&self, py: Python<'_>) -> PyResult<bool> {
        let data = self.lock_data(py);
        if let Some(l) = self.live() {
            return py.detach(|| l.write().refresh()).map_err(|e| io_err(py, e));
        }
        // A plain file loaded before any writer opened it: switch to its live view
        // once a writer has made a log.
        match data.source.clone() {
            Some(path) if panns_io::live::log_path(&path).exists() => {
                drop(data);
                let opts = panns_io::LiveOptions::default();
                let l = py
                    .detach(|| panns_io::LiveIndex::open_with(&path, false, opts))
                    .map_err(|e| io_err(py, e))?;
                self.adopt_live(py, l, &path.display().to_string(), Some(path.clone()))?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Rebuilds a live index as one base without removed items (a new forest, with a
    /// graph if it had one): in memory for an index changed after `build()`, or as the
    /// next base file generation (atomically) for one loaded with `writable=True`,
    /// after committing. Searches stay fast after heavy churn. Does nothing on an index
    /// that is not live.
    fn compact(&self, py: Python<'_>) -> PyResult<()> {
        let _data = self.lock_data(py);
        match self.live() {
            Some(l) => py.detach(|| l.write().compact()).map_err(|e| io_err(py, e)),
            None => Ok(()),
        }
    }

    /// `label in index`: True if an item holds `label` (on an index that is not live,
    /// labels are the ids `0..len`). False for anything that is not an integer.
    fn __contains__(&self, py: Python<'_>, label: &Bound<'_, PyAny>) -> bool {
        let Ok(Some(l)) = live::label_arg(label) else {
            return false;
        };
        if let Some(live) = self.live() {
            return live::read(py, &live).contains(l);
        }
        self.current
            .lock()
            .index
            .as_ref()
            .is_some_and(|i| l < i.len() as u64)
    }

    /// True when the index is live (see `add_items`); `writable` and `in_memory` say how.
    #[getter]
    fn is_live(&self) -> bool {
        self.live().is_some()
    }

    /// What a live index holds: `{'len', 'base_len', 'delta_len', 'tombstones',
    /// 'generation', 'in_memory', 'writable', 'pending'}` (`None` if not live).
    fn live_stats<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(l) = self.live() else {
            return Ok(None);
        };
        let g = live::read(py, &l);
        let d = PyDict::new(py);
        d.set_item("len", g.len())?;
        d.set_item("base_len", g.base_len())?;
        d.set_item("delta_len", g.delta_len())?;
        d.set_item("tombstones", g.tombstones())?;
        d.set_item("generation", g.generation())?;
        d.set_item("in_memory", g.is_in_memory())?;
        d.set_item("writable", g.is_writable())?;
        d.set_item("pending", g.pending())?;
        Ok(Some(d))
    }

    /// The compaction and delta settings of a live index as a dict, after setting those
    /// given: `auto_compact` (a writer on files compacts after a commit that crosses a
    /// threshold; default True; an index in memory never compacts by itself),
    /// `compact_removed_fraction` (removed or replaced base items per base item, default
    /// 0.2), `compact_delta_fraction` (delta items per base item, default 0.1),
    /// `delta_index_threshold` (unindexed delta items before the delta gets its own
    /// forest, default 4096). `RuntimeError` if the index is not live.
    #[pyo3(signature = (*, auto_compact=None, compact_removed_fraction=None,
                        compact_delta_fraction=None, delta_index_threshold=None))]
    fn live_options<'py>(
        &self,
        py: Python<'py>,
        auto_compact: Option<bool>,
        compact_removed_fraction: Option<f64>,
        compact_delta_fraction: Option<f64>,
        delta_index_threshold: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let _data = self.lock_data(py);
        let Some(l) = self.live() else {
            return Err(PyRuntimeError::new_err(
                "not a live index: live_options() applies after add_items()/remove() or \
                 load(path, writable=True)",
            ));
        };
        for (name, v) in [
            ("compact_removed_fraction", compact_removed_fraction),
            ("compact_delta_fraction", compact_delta_fraction),
        ] {
            if let Some(x) = v
                && !(x.is_finite() && x >= 0.0)
            {
                return Err(invalid(
                    py,
                    format!("{name} must be a finite number >= 0, got {x}"),
                ));
            }
        }
        let threshold = match opt_count(py, delta_index_threshold, "delta_index_threshold")? {
            Some(0) => {
                return Err(invalid(
                    py,
                    "delta_index_threshold must be at least 1, got 0".into(),
                ));
            }
            t => t.map(clamped),
        };
        let o = py.detach(|| {
            let mut g = l.write();
            let mut o = g.options().clone();
            o.auto_compact = auto_compact.unwrap_or(o.auto_compact);
            o.compact_removed_fraction =
                compact_removed_fraction.unwrap_or(o.compact_removed_fraction);
            o.compact_delta_fraction = compact_delta_fraction.unwrap_or(o.compact_delta_fraction);
            o.delta_index_threshold = threshold.unwrap_or(o.delta_index_threshold);
            g.set_options(o.clone());
            o
        });
        let d = PyDict::new(py);
        d.set_item("auto_compact", o.auto_compact)?;
        d.set_item("compact_removed_fraction", o.compact_removed_fraction)?;
        d.set_item("compact_delta_fraction", o.compact_delta_fraction)?;
        d.set_item("delta_index_threshold", o.delta_index_threshold)?;
        Ok(d)
    }

    // -- internals for the Python layer ---------------------------------------------------

    /// For benchmarks: searches each row of `queries` (2-D float32) once from Rust, one at
    /// a time on this thread, timing each search alone as `panns eval` does; returns the
    /// summed seconds. The reference the Python call path is compared with
    /// (`benches/single_query.py`), measured in the same process and sitting.
    #[pyo3(signature = (queries, k, budget=0))]
    fn _time_native(
        &self,
        py: Python<'_>,
        queries: &Bound<'_, PyAny>,
        k: usize,
        budget: usize,
    ) -> PyResult<f64> {
        let index = self.index()?;
        let params = SearchParams::new(k).with_budget(budget);
        Self::with_matrix(queries, |q, _, d| {
            py.detach(|| {
                let mut total = 0.0;
                for row in q.chunks_exact(d.max(1)) {
                    let t = Instant::now();
                    let r = index.search_with_stats(row, &params);
                    total += t.elapsed().as_secs_f64();
                    std::hint::black_box(r).map_err(|e| e.to_string())?;
                }
                Ok::<f64, String>(total)
            })
            .map_err(PyValueError::new_err::<String>)
        })
    }

    /// `(dimension, metric, dimension given, metric given, build threads or None)`.
    fn _settings(
        &self,
        py: Python<'_>,
    ) -> (Option<usize>, &'static str, bool, bool, Option<usize>) {
        let d = self.lock_data(py);
        (
            d.dim,
            d.metric.name(),
            d.dim_explicit,
            d.metric_explicit,
            d.threads,
        )
    }

    /// True when vectors were added since the last build.
    fn _pending(&self, py: Python<'_>) -> bool {
        self.lock_data(py).builder.is_some()
    }
}

impl PyIndex {
    /// Makes a freshly opened `index` this object's index (checks the dimension given to
    /// the constructor; warns when it has another metric than the one given).
    /// `file` is the file of a read-only load (then `add_items`/`remove` are refused).
    fn adopt(
        &self,
        py: Python<'_>,
        index: Index,
        source: &str,
        file: Option<PathBuf>,
    ) -> PyResult<()> {
        let mut data = self.lock_data(py);
        Self::check_adopt(py, &mut data, index.dim(), index.metric(), source)?;
        data.dtype = index.dtype();
        data.source = file;
        let old_builder = data.builder.take();
        self.install(index);
        drop(data);
        drop(old_builder);
        Ok(())
    }

    /// [`adopt`](Self::adopt) for a live index; `source` is the file of a read-only load.
    fn adopt_live(
        &self,
        py: Python<'_>,
        live: panns_io::LiveIndex,
        what: &str,
        source: Option<PathBuf>,
    ) -> PyResult<()> {
        let mut data = self.lock_data(py);
        Self::check_adopt(py, &mut data, live.dim(), live.metric(), what)?;
        let old_builder = data.builder.take();
        data.source = source;
        self.install_live(&mut data, live);
        drop(data);
        drop(old_builder);
        Ok(())
    }

    /// Checks an opened index of `dim` and `metric` against the constructor's arguments
    /// (a dimension mismatch is an error, another metric a warning) and takes them.
    fn check_adopt(
        py: Python<'_>,
        data: &mut Data,
        dim: usize,
        metric: Metric,
        source: &str,
    ) -> PyResult<()> {
        if data.dim_explicit && data.dim != Some(dim) {
            return Err(raise(
                py,
                Kind::Value,
                DIMENSION_MISMATCH,
                format!(
                    "{source}: the index has dimension {dim}, this object was created with \
                     dimension={}",
                    data.dim.unwrap_or(0)
                ),
            ));
        }
        if data.metric_explicit && data.metric != metric {
            let warnings = py.import("warnings")?;
            warnings.call_method1(
                "warn",
                (
                    format!(
                        "{source}: the index uses the {metric} metric, not {}; using the file's metric",
                        data.metric
                    ),
                    py.get_type::<PyUserWarning>(),
                    3,
                ),
            )?;
        }
        data.metric = metric;
        data.metric_explicit = true;
        data.dim = Some(dim);
        Ok(())
    }

    /// `query(...)` on a live index.
    #[allow(clippy::too_many_arguments)]
    fn query_live<'py>(
        &self,
        py: Python<'py>,
        l: &live::Live,
        v: &Bound<'py, PyAny>,
        args: &QueryArgs,
        include_distances: bool,
        threads: Option<&Bound<'py, PyAny>>,
        filter: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let params = SearchParams::new(args.k).with_budget(args.budget);
        if let Some(f) = live::parse_live_filter(py, filter)? {
            let out = |hits: &[(u64, f32)]| -> PyResult<Bound<'py, PyAny>> {
                if include_distances {
                    Ok(live::label_pairs(py, hits)?.into_any())
                } else {
                    Ok(PyList::new(py, hits.iter().map(|h| h.0))?.into_any())
                }
            };
            let r = Self::with_vector(py, v, true, |q| {
                live::search_live_filtered(py, l, q, &params, &f).map(|r| r.0)
            })?;
            return match r {
                Ok(hits) => out(&hits),
                Err(m) => {
                    let rows = Self::with_matrix(&m, |s, n, d| {
                        (0..n)
                            .map(|i| {
                                live::search_live_filtered(
                                    py,
                                    l,
                                    &s[i * d..(i + 1) * d],
                                    &params,
                                    &f,
                                )
                                .map(|r| r.0)
                            })
                            .collect::<PyResult<Vec<_>>>()
                    })?;
                    let lists = rows.iter().map(|h| out(h)).collect::<PyResult<Vec<_>>>()?;
                    Ok(PyList::new(py, lists)?.into_any())
                }
            };
        }
        let r = Self::with_vector(py, v, true, |q| {
            py.detach(|| l.read().search(q, &params))
                .map_err(|e| io_err(py, e))
        })?;
        match r {
            Ok(hits) if include_distances => Ok(live::label_pairs(py, &hits)?.into_any()),
            Ok(hits) => Ok(PyList::new(py, hits.iter().map(|h| h.0))?.into_any()),
            Err(m) => {
                let pool = match threads {
                    Some(t) if !t.is_none() => match bounded(py, t, "threads", MAX_THREADS)? {
                        0 => None,
                        n => Some(self.pool(py, n)?),
                    },
                    _ => None,
                };
                self.live_matrix(py, l, &m, args, include_distances, pool)
            }
        }
    }
}

/// An item id argument: `TypeError` for a non-integer, `IndexError` outside the index.
fn item_id(py: Python<'_>, i: &Bound<'_, PyAny>, index: &Index) -> PyResult<usize> {
    if i.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "item id must be an integer, got {i}"
        )));
    }
    let id = match i.extract::<i64>() {
        Ok(v) => v,
        Err(_) if i.cast::<PyInt>().is_ok() || i.hasattr("__index__")? => -1,
        Err(_) => {
            return Err(PyTypeError::new_err(format!(
                "item id must be an integer, got {i}"
            )));
        }
    };
    if id < 0 || id as u64 >= index.len() as u64 {
        return Err(raise(
            py,
            Kind::Index,
            OUT_OF_RANGE,
            format!(
                "item id {i} is out of range: the index has {} items",
                index.len()
            ),
        ));
    }
    Ok(id as usize)
}

/// Graph parameters for `degree` (the NN-descent list length follows the degree up),
/// scored on exact distances throughout when `exact`.
fn graph_params(degree: usize, threads: usize, exact: bool) -> GraphParams {
    let defaults = GraphParams::default();
    GraphParams {
        degree,
        build_k: defaults.build_k.max(degree.min(MAX_GRAPH_DEGREE)),
        threads,
        quantized: !exact,
        ..defaults
    }
}

/// Build parameters as a dict.
fn params_dict<'py>(
    py: Python<'py>,
    p: &BuildParams,
    pool_size: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("n_trees", p.n_trees)?;
    d.set_item("leaf_size", p.leaf_size)?;
    d.set_item("pool_size", pool_size)?;
    d.set_item("candidates", p.candidates)?;
    d.set_item(
        "split",
        match p.split {
            SplitRule::Mean => "mean",
            SplitRule::Median => "median",
        },
    )?;
    d.set_item("seed", p.seed)?;
    d.set_item("threads", p.threads)?;
    d.set_item("dtype", p.dtype.name())?;
    Ok(d)
}

/// The library's default build parameters (`panns_core::BuildParams::default()`) and
/// graph degree, as a dict: what `build()` uses for every argument left out.
#[pyfunction]
fn build_defaults(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let p = BuildParams::default();
    let d = params_dict(py, &p, p.pool_size)?;
    d.set_item("graph_degree", GraphParams::default().degree)?;
    Ok(d)
}

/// The module `panns._panns`.
#[pymodule]
fn _panns(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<PyIndex>()?;
    m.add_class::<filter::PreparedFilter>()?;
    m.add("CorruptIndexError", py.get_type::<CorruptIndexError>())?;
    m.add("UnsupportedError", py.get_type::<UnsupportedError>())?;
    m.add_function(wrap_pyfunction!(build_defaults, m)?)?;
    m.add_class::<shard::PyShardedIndex>()?;
    m.add_function(wrap_pyfunction!(shard::build_shard, m)?)?;
    m.add_function(wrap_pyfunction!(shard::write_manifest, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("MAX_COMPONENT", f64::from(panns_core::MAX_COMPONENT))?;
    Ok(())
}
