//! The live side of `panns._panns.Index` (issue #13): an index that takes `add_items`
//! and `remove` by label, held as a [`LiveIndex`] (in memory after `build()`, or on
//! files after `load(path, writable=True)` or the load of a file with a log or labels).
//!
//! Locking: mutations hold the data mutex (taken without the GIL) and then the
//! `RwLock`'s write side inside `py.detach`; searches take the read side inside
//! `py.detach`. Nobody waits for the GIL while holding either side, so Python threads
//! cannot deadlock against each other.

use std::path::Path;
use std::sync::Arc;

use numpy::{PyArray1, PyArray2, PyArrayMethods};
use panns_core::{BuildParams, Index, SearchParams, SearchStats};
use panns_io::{LiveIndex, LiveOptions, SectionKind};
use parking_lot::{RwLock, RwLockReadGuard};
use pyo3::exceptions::{PyNotImplementedError, PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyList, PyTuple};
use rayon::prelude::*;

use crate::{
    DIMENSION_MISMATCH, Data, Kind, PyIndex, QueryArgs, as_f32, invalid, io_err, raise, shape_of,
};

/// A live index shared by searches (read) and mutations (write).
pub(crate) type Live = Arc<RwLock<LiveIndex>>;

/// The error of a method a live index does not support.
pub(crate) fn unsupported(what: &str) -> PyErr {
    PyNotImplementedError::new_err(format!(
        "{what} is not supported on a live index (one changed by add_items()/remove(), or \
         loaded with writable=True or from a file with a log or labels). A live index \
         supports query (filter= by labels or a callable taking a label), query_with_stats, linear_search, get_vector, \
         get_nns_by_item, get_distance, range_search, `label in index`, add_items, remove, commit, \
         refresh, compact, save, to_bytes and pickling"
    ))
}

/// True if the index file at `path` is (part of) a live index: a log beside it, or a
/// labels section.
pub(crate) fn is_live_file(path: &Path) -> bool {
    if panns_io::live::log_path(path).exists() {
        return true;
    }
    panns_io::read_header(path, &panns_io::OpenOptions::default())
        .map(|h| h.section(SectionKind::Labels).is_some())
        .unwrap_or(false)
}

/// True if `bytes` (an index file) hold a labels section.
pub(crate) fn bytes_have_labels(bytes: &[u8]) -> bool {
    let src = Path::new("<bytes>");
    panns_io::parse(bytes, src, &panns_io::OpenOptions::default())
        .ok()
        .and_then(|l| l.labels(bytes, src).ok().flatten())
        .is_some()
}

/// `panns._convert.as_labels(obj, n)`: labels as a uint64 vector (`n < 0`: any count).
pub(crate) fn labels_of(py: Python<'_>, obj: &Bound<'_, PyAny>, n: i64) -> PyResult<Vec<u64>> {
    static CONVERT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let f = CONVERT.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("panns._convert")?.getattr("as_labels")?.unbind())
    })?;
    let arr = f.bind(py).call1((obj, n))?;
    let arr = arr.cast::<PyArray1<u64>>()?;
    Ok(arr.readonly().as_slice()?.to_vec())
}

/// One label argument: `TypeError` for a non-integer; `None` for an integer outside
/// `[0, 2**64)` (no item holds it).
pub(crate) fn label_arg(i: &Bound<'_, PyAny>) -> PyResult<Option<u64>> {
    if i.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "a label must be an integer, got {i}"
        )));
    }
    match i.extract::<u64>() {
        Ok(v) => Ok(Some(v)),
        Err(_) if i.cast::<pyo3::types::PyInt>().is_ok() || i.hasattr("__index__")? => Ok(None),
        Err(_) => Err(PyTypeError::new_err(format!(
            "a label must be an integer, got {i}"
        ))),
    }
}

/// The stored vector of label `i` or `IndexError` naming it.
pub(crate) fn vector_of(py: Python<'_>, live: &Live, i: &Bound<'_, PyAny>) -> PyResult<Vec<f32>> {
    let label = label_arg(i)?;
    label.and_then(|l| read(py, live).get(l)).ok_or_else(|| {
        raise(
            py,
            Kind::Index,
            crate::OUT_OF_RANGE,
            format!("label {i} is not in the index"),
        )
    })
}

/// The read side of `live`, waiting without the GIL (a compaction may hold the write
/// side for seconds; other Python threads keep running meanwhile).
pub(crate) fn read<'a>(py: Python<'_>, live: &'a Live) -> RwLockReadGuard<'a, LiveIndex> {
    if let Some(g) = live.try_read() {
        return g;
    }
    py.detach(|| live.read())
}

/// `(label, distance)` pairs as a list of tuples.
pub(crate) fn label_pairs<'py>(
    py: Python<'py>,
    hits: &[(u64, f32)],
) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, hits.iter().map(|&(l, d)| (l, f64::from(d))))
}

impl PyIndex {
    /// The live index, if this object holds one.
    pub(crate) fn live(&self) -> Option<Live> {
        self.current.lock().live.clone()
    }

    /// The plain index, or the base of the live index (`None` before build/load).
    pub(crate) fn any_index(&self, py: Python<'_>) -> Option<Index> {
        let (index, live) = {
            let cur = self.current.lock();
            (cur.index.clone(), cur.live.clone())
        };
        match (index, live) {
            (Some(i), _) => Some((*i).clone()),
            (None, Some(l)) => read(py, &l).base().cloned(),
            _ => None,
        }
    }

    /// Makes `live` this object's index (the previous one is freed after its last search).
    pub(crate) fn install_live(&self, data: &mut Data, live: LiveIndex) {
        data.next_label = None;
        let old = {
            let mut cur = self.current.lock();
            cur.closed = false;
            let old = (cur.index.take(), cur.live.take());
            cur.live = Some(Arc::new(RwLock::new(live)));
            old
        };
        drop(old);
    }

    /// The live index to change, making one when needed: in memory over the built
    /// index (labels = ids), or empty for `dim_hint`-dimensional vectors when nothing
    /// is built. Refuses pending vectors, a closed index and a read-only load.
    pub(crate) fn make_live(
        &self,
        py: Python<'_>,
        data: &mut Data,
        dim_hint: Option<usize>,
    ) -> PyResult<Live> {
        if data.builder.is_some() {
            return Err(PyRuntimeError::new_err(
                "vectors were added with add_vector()/load_matrix()/load_csv()/load_hdf5() \
                 since the last build(): call build() first (add_items() then changes the \
                 built index)",
            ));
        }
        let index = {
            let cur = self.current.lock();
            if let Some(l) = &cur.live {
                return Ok(Arc::clone(l));
            }
            if cur.closed && cur.index.is_none() {
                return Err(PyRuntimeError::new_err(
                    "the index is closed: close() was called (build() or load() to use it again)",
                ));
            }
            cur.index.clone()
        };
        if let Some(src) = &data.source {
            return Err(read_only(py, src));
        }
        let live = match index {
            Some(i) => LiveIndex::in_memory((*i).clone(), None),
            None => {
                let dim = data.dim.or(dim_hint).ok_or_else(|| {
                    invalid(
                        py,
                        "the dimension is unknown: pass dimension= or add vectors".into(),
                    )
                })?;
                let params = BuildParams {
                    threads: data.threads.unwrap_or(0),
                    ..BuildParams::default()
                };
                let l = LiveIndex::empty_in_memory(
                    dim,
                    data.metric,
                    &params,
                    None,
                    LiveOptions::default(),
                );
                if l.is_ok() {
                    data.dim = Some(dim);
                }
                l
            }
        }
        .map_err(|e| io_err(py, e))?;
        self.install_live(data, live);
        Ok(self.live().expect("installed above"))
    }

    /// The batch search of `query(M, k)` on a live index: `(labels, distances)` arrays
    /// (uint64 and float32; a row shorter than k is padded with 2**64-1 and inf).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn live_matrix<'py>(
        &self,
        py: Python<'py>,
        live: &Live,
        m: &Bound<'py, PyAny>,
        args: &QueryArgs,
        include_distances: bool,
        pool: Option<Arc<rayon::ThreadPool>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::with_matrix(m, |q, n, d| {
            let (dim, len) = {
                let g = read(py, live);
                (g.dim(), g.len())
            };
            if d != dim {
                return Err(raise(
                    py,
                    Kind::Value,
                    DIMENSION_MISMATCH,
                    format!(
                        "query dimension mismatch: the queries have {d} columns, the index \
                         dimension is {dim}"
                    ),
                ));
            }
            let k = args.k.min(len);
            let mut labels = vec![u64::MAX; n * k];
            let mut dists = vec![f32::INFINITY; n * k];
            if n > 0 && k > 0 {
                let params = SearchParams::new(k).with_budget(args.budget);
                let res = py.detach(|| {
                    let g = live.read();
                    let mut run = || {
                        labels
                            .par_chunks_mut(k)
                            .zip(dists.par_chunks_mut(k))
                            .enumerate()
                            .try_for_each(|(i, (l, dd))| {
                                let hits = g.search(&q[i * d..(i + 1) * d], &params)?;
                                for (j, &(label, dist)) in hits.iter().enumerate() {
                                    l[j] = label;
                                    dd[j] = dist;
                                }
                                Ok::<(), panns_io::Error>(())
                            })
                    };
                    match &pool {
                        Some(p) => p.install(run),
                        None => run(),
                    }
                });
                res.map_err(|e| io_err(py, e))?;
            }
            let out_ids = PyArray1::from_vec(py, labels).reshape([n, k])?;
            if include_distances {
                let out_d: Bound<'py, PyArray2<f32>> =
                    PyArray1::from_vec(py, dists).reshape([n, k])?;
                Ok(PyTuple::new(py, [out_ids.into_any(), out_d.into_any()])?.into_any())
            } else {
                Ok(out_ids.into_any())
            }
        })
    }

    /// `add_items(vectors, labels)`: the rows (flat) and their count and width.
    pub(crate) fn rows_of<'py>(
        py: Python<'py>,
        vectors: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let conv = as_f32(py, vectors)?;
        let shape = shape_of(&conv);
        match shape.len() {
            1 => conv.call_method1("reshape", ((1usize, shape[0]),)),
            2 => Ok(conv),
            _ => Err(invalid(
                py,
                format!(
                    "vectors must be one vector (1-D) or a matrix of rows (2-D), got an array of \
                     shape {shape:?}"
                ),
            )),
        }
    }
}

/// `io.UnsupportedOperation` (an `OSError` and a `ValueError`) with `message`.
pub(crate) fn unsupported_operation(py: Python<'_>, message: String) -> PyErr {
    let made = py
        .import("io")
        .and_then(|io| io.getattr("UnsupportedOperation"))
        .and_then(|t| t.call1((message.clone(),)));
    let err = match made {
        Ok(v) => PyErr::from_value(v),
        Err(_) => pyo3::exceptions::PyOSError::new_err(message),
    };
    let _ = err.value(py).setattr("status", crate::INVALID_ARGUMENT);
    err
}

/// The error of changing an index loaded read-only from `path`.
pub(crate) fn read_only(py: Python<'_>, path: &Path) -> PyErr {
    unsupported_operation(
        py,
        format!(
            "{}: loaded read-only; load(path, writable=True) to change the file (one writer \
             at a time), or from_bytes(to_bytes()) for a copy in memory",
            path.display()
        ),
    )
}

/// A `filter=` over labels (a live or sharded index): the allowed labels, or a callable
/// taking a label.
pub(crate) enum LiveFilter {
    Labels(Vec<u64>),
    Call(Py<PyAny>),
}

/// Parses `filter=` for a live index (`None`: no filter). A boolean mask is refused:
/// a live index's items are labels, not positions.
pub(crate) fn parse_live_filter(
    py: Python<'_>,
    f: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<LiveFilter>> {
    parse_label_filter(py, f, "a live index")
}

/// Parses a `filter=` over labels for `what` ("a live index", ...): a callable taking a
/// label, or the allowed labels (an array or list); a boolean mask is refused.
pub(crate) fn parse_label_filter(
    py: Python<'_>,
    f: Option<&Bound<'_, PyAny>>,
    what: &str,
) -> PyResult<Option<LiveFilter>> {
    let Some(f) = f.filter(|f| !f.is_none()) else {
        return Ok(None);
    };
    if f.cast::<crate::filter::PreparedFilter>().is_ok() {
        return Err(invalid(
            py,
            format!(
                "filter: a prepared filter lists item positions of a static index; {what} \
                 filters by labels (pass the allowed labels or a callable taking a label)"
            ),
        ));
    }
    if f.is_callable() {
        return Ok(Some(LiveFilter::Call(f.clone().unbind())));
    }
    let kind: Option<String> = py
        .import("numpy")?
        .call_method1("asarray", (f,))
        .and_then(|a| a.getattr("dtype")?.getattr("kind")?.extract())
        .ok();
    if kind.as_deref() == Some("b") {
        return Err(invalid(
            py,
            format!(
                "filter: a boolean mask has no meaning on {what} (its items are labels, not \
                 positions); pass the allowed labels (an array or list) or a callable taking a label"
            ),
        ));
    }
    Ok(Some(LiveFilter::Labels(labels_of(py, f, -1)?)))
}

/// One filtered search of a live index. A callable runs with the GIL held (and must not
/// change the index); its first exception is raised after the search.
pub(crate) fn search_live_filtered(
    py: Python<'_>,
    live: &Live,
    q: &[f32],
    params: &SearchParams,
    filter: &LiveFilter,
) -> PyResult<(Vec<(u64, f32)>, SearchStats)> {
    match filter {
        // A list tells the planner how many items pass (an exact scan when few do).
        LiveFilter::Labels(labels) => py
            .detach(|| live.read().search_labels(q, params, labels))
            .map_err(|e| io_err(py, e)),
        LiveFilter::Call(f) => {
            let failed: parking_lot::Mutex<Option<PyErr>> = parking_lot::Mutex::new(None);
            let allow = |label: u64| -> bool {
                Python::attach(|py| {
                    match f.call1(py, (label,)).and_then(|r| r.bind(py).is_truthy()) {
                        Ok(b) => b,
                        Err(e) => {
                            failed.lock().get_or_insert(e);
                            false
                        }
                    }
                })
            };
            let g = read(py, live);
            let r = g
                .search_filtered(q, params, &allow)
                .map_err(|e| io_err(py, e));
            drop(g);
            if let Some(e) = failed.into_inner() {
                return Err(e);
            }
            r
        }
    }
}
