//! `panns.ShardedIndex` (`panns._panns.ShardedIndex`): the shard files of a manifest
//! searched as one (`panns_io::ShardedIndex`), plus the two functions `panns.ray` builds
//! shards with (`build_shard`, `write_manifest`).

use std::path::PathBuf;
use std::sync::Arc;

use numpy::{PyArray1, PyArray2, PyArrayMethods};
use panns_core::{BuildParams, IndexBuilder, SearchParams};
use panns_io::{Extras, OpenOptions, ShardFilter as IoFilter, ShardedIndex};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use crate::{
    DIMENSION_MISMATCH, Kind, MAX_THREADS, PyIndex, as_f32, bounded, clamped, core_err,
    graph_params, invalid, io_err, metric_of, opt_count, path_of, raise, stats_dict,
};

/// The index shards named by a manifest file, searched as one: every query goes to
/// every shard (on threads) and the results are merged exactly by (distance, label).
#[pyclass(frozen, module = "panns._panns", name = "ShardedIndex")]
pub(crate) struct PyShardedIndex {
    inner: Arc<ShardedIndex>,
}

/// A label as a Python/NumPy int64 (labels above 2**63 - 1 are refused, never wrapped).
fn label_i64(py: Python<'_>, label: u64) -> PyResult<i64> {
    i64::try_from(label).map_err(|_| {
        invalid(
            py,
            format!("label {label} does not fit in int64 (labels above 2**63 - 1 cannot be returned to Python)"),
        )
    })
}

fn pairs<'py>(py: Python<'py>, hits: &[(u64, f32)]) -> PyResult<Bound<'py, PyList>> {
    let items = hits
        .iter()
        .map(|&(l, d)| Ok((label_i64(py, l)?, f64::from(d))))
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)
}

impl PyShardedIndex {
    /// `k` and `budget` (k >= 1).
    fn params(
        py: Python<'_>,
        k: &Bound<'_, PyAny>,
        budget: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<SearchParams> {
        let k = crate::count(py, k, "k")?;
        if k == 0 {
            return Err(invalid(py, "k must be at least 1, got 0".into()));
        }
        let budget = opt_count(py, budget, "budget")?.unwrap_or(0);
        Ok(SearchParams::new(clamped(k)).with_budget(clamped(budget)))
    }

    fn dim_error(&self, py: Python<'_>, got: usize) -> PyErr {
        raise(
            py,
            Kind::Value,
            DIMENSION_MISMATCH,
            format!(
                "query dimension mismatch: the queries have {got} columns, the index dimension is {}",
                self.inner.dim()
            ),
        )
    }
}

#[pymethods]
impl PyShardedIndex {
    /// Opens the manifest `manifest` (every shard file memory-mapped; `verify=True`
    /// hashes every shard and checks its values). `shards`: positions in the manifest of
    /// the shards to open (default: all), e.g. one per process; labels stay global.
    #[new]
    #[pyo3(signature = (manifest, *, shards=None, verify=false))]
    fn new(
        py: Python<'_>,
        manifest: &Bound<'_, PyAny>,
        shards: Option<Vec<usize>>,
        verify: bool,
    ) -> PyResult<Self> {
        let path = path_of(py, manifest)?;
        let opts = OpenOptions {
            verify_checksum: verify,
        };
        let inner = py
            .detach(|| match &shards {
                None => ShardedIndex::open(&path, &opts),
                Some(which) => ShardedIndex::open_subset(&path, which, &opts),
            })
            .map_err(|e| io_err(py, e))?;
        Ok(PyShardedIndex {
            inner: Arc::new(inner),
        })
    }

    /// The manifest's path.
    #[getter]
    fn manifest(&self) -> String {
        self.inner.manifest_path().display().to_string()
    }

    /// Vector dimension.
    #[getter]
    fn dimension(&self) -> usize {
        self.inner.dim()
    }

    /// Metric name: "euclidean", "angular" or "dot".
    #[getter]
    fn metric(&self) -> &'static str {
        self.inner.metric().name()
    }

    /// Number of opened shards.
    #[getter]
    fn n_shards(&self) -> usize {
        self.inner.n_shards()
    }

    /// Positions in the manifest of the opened shards.
    #[getter]
    fn shard_positions(&self) -> Vec<usize> {
        self.inner.shard_positions().to_vec()
    }

    /// File paths of the opened shards.
    #[getter]
    fn shard_paths(&self) -> Vec<String> {
        (0..self.inner.n_shards())
            .filter_map(|i| self.inner.shard_path(i))
            .map(|p| p.display().to_string())
            .collect()
    }

    /// Total items of the opened shards.
    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "ShardedIndex({:?}, {} shards, {} items, dimension {}, {})",
            self.manifest(),
            self.inner.n_shards(),
            self.inner.len(),
            self.inner.dim(),
            self.inner.metric().name()
        )
    }

    /// The `k` nearest items of one vector `v` as a list of `(label, distance)` tuples,
    /// nearest first, ties by label; or, for a 2-D array `v` of queries, the arrays
    /// `(labels, distances)` of shape `(len(v), min(k, len(self)))` (int64 and float32;
    /// a row with fewer results is padded with label -1 and distance inf). `budget`:
    /// each shard's search effort (see `PannsIndex.query`). `filter`: the allowed global
    /// labels (an array or list; unknown labels match nothing; each shard scans its
    /// listed items exactly when few) or a callable taking a label (called from the
    /// shards' search threads, one at a time under the GIL).
    #[pyo3(signature = (v, k, budget=None, *, filter=None))]
    fn query<'py>(
        &self,
        py: Python<'py>,
        v: &Bound<'py, PyAny>,
        k: &Bound<'py, PyAny>,
        budget: Option<&Bound<'py, PyAny>>,
        filter: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let params = Self::params(py, k, budget)?;
        let inner = Arc::clone(&self.inner);
        if let Some(f) = parse_shard_filter(py, filter)? {
            return self.query_filtered(py, v, &params, &f);
        }
        let r = PyIndex::with_vector(py, v, true, |q| {
            py.detach(|| inner.search(q, &params))
                .map_err(|e| io_err(py, e))
        })?;
        let m = match r {
            Ok(hits) => return Ok(pairs(py, &hits)?.into_any()),
            Err(m) => m,
        };
        PyIndex::with_matrix(&m, |q, n, d| {
            if d != inner.dim() {
                return Err(self.dim_error(py, d));
            }
            let k = params.k.min(inner.len());
            let params = SearchParams::new(k).with_budget(params.budget);
            let mut labels = vec![0u64; n * k];
            let out_d = unsafe { PyArray2::<f32>::new(py, [n, k], false) };
            // SAFETY: the array was just created here, is C-contiguous and not shared yet.
            let ds = unsafe { out_d.as_slice_mut() }
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
            if n > 0 {
                py.detach(|| inner.search_batch_into(q, &params, &mut labels, Some(ds)))
                    .map_err(|e| io_err(py, e))?;
            }
            let out_l = unsafe { PyArray2::<i64>::new(py, [n, k], false) };
            // SAFETY: as above.
            let dst = unsafe { out_l.as_slice_mut() }
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
            for (o, &l) in dst.iter_mut().zip(&labels) {
                *o = if l == panns_io::shard::NO_LABEL {
                    -1
                } else {
                    label_i64(py, l)?
                };
            }
            Ok(PyTuple::new(py, [out_l.into_any(), out_d.into_any()])?.into_any())
        })
    }

    /// `(pairs, stats)`: the result of `query(v, k, budget, filter=filter)` for one
    /// vector and, per opened shard, what its search did (`{'scored', 'exact_scan',
    /// 'budget'}`; a shard holding none of a filter's labels is not searched and reports
    /// 0 scored).
    #[pyo3(signature = (v, k, budget=None, *, filter=None))]
    fn query_with_stats<'py>(
        &self,
        py: Python<'py>,
        v: &Bound<'py, PyAny>,
        k: &Bound<'py, PyAny>,
        budget: Option<&Bound<'py, PyAny>>,
        filter: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let params = Self::params(py, k, budget)?;
        let inner = Arc::clone(&self.inner);
        let f = parse_shard_filter(py, filter)?;
        let r = PyIndex::with_vector(py, v, false, |q| match &f {
            Some(f) => search_filtered(py, &inner, q, &params, f),
            None => py
                .detach(|| inner.search_with_stats(q, &params))
                .map_err(|e| io_err(py, e)),
        })?;
        let (hits, stats) = r.map_err(|_| invalid(py, "expected one query vector".into()))?;
        let stats = stats
            .iter()
            .map(|s| stats_dict(py, s))
            .collect::<PyResult<Vec<_>>>()?;
        PyTuple::new(
            py,
            [
                pairs(py, &hits)?.into_any(),
                PyList::new(py, stats)?.into_any(),
            ],
        )
    }

    /// Every item within `radius` of `v` over all shards, nearest first, ties by label,
    /// at most `max_results` of them (as FAISS' `range_search`, and as
    /// `PannsIndex.range_search`): a list of `(label, distance)` pairs, or with
    /// `return_truncated=True` a tuple `(pairs, truncated)` where `truncated` says the
    /// cap cut the list. Each shard's candidates are its `max_results + 1` nearest at
    /// `budget`, and the merge is exact, so the answer is exact when the budget covers
    /// half of each shard's items. `filter` (allowed labels or a callable, as in
    /// :meth:`query`) keeps only allowed items.
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
        let (cap, budget) = crate::range_args(py, max_results, budget)?;
        let r = radius as f32;
        let f = parse_shard_filter(py, filter)?;
        let inner = Arc::clone(&self.inner);
        let hits = PyIndex::with_vector(py, v, false, |q| {
            with_filter(py, f.as_ref(), |sf| {
                inner.range_search(q, r, cap, budget, sf)
            })
        })?;
        let (hits, truncated) =
            hits.map_err(|_| invalid(py, "expected one query vector".into()))?;
        crate::range_result(py, pairs(py, &hits)?, truncated, return_truncated)
    }
}

impl PyShardedIndex {
    /// `query(v, k, budget, filter=f)`: a list of pairs for one vector, the padded
    /// `(labels, distances)` arrays for a matrix (its rows searched in parallel, each
    /// as one filtered search).
    fn query_filtered<'py>(
        &self,
        py: Python<'py>,
        v: &Bound<'py, PyAny>,
        params: &SearchParams,
        f: &ShardFilter,
    ) -> PyResult<Bound<'py, PyAny>> {
        let inner = Arc::clone(&self.inner);
        let r = PyIndex::with_vector(py, v, true, |q| search_filtered(py, &inner, q, params, f))?;
        let m = match r {
            Ok((hits, _)) => return Ok(pairs(py, &hits)?.into_any()),
            Err(m) => m,
        };
        PyIndex::with_matrix(&m, |q, n, d| {
            if d != inner.dim() {
                return Err(self.dim_error(py, d));
            }
            let k = params.k.min(inner.len());
            let mut labels = vec![-1i64; n * k];
            let mut dists = vec![f32::INFINITY; n * k];
            let rows = with_filter(py, Some(f), |sf| inner.search_batch_filtered(q, params, sf))?;
            for (i, hits) in rows.iter().enumerate() {
                for (j, &(l, dist)) in hits.iter().take(k).enumerate() {
                    labels[i * k + j] = label_i64(py, l)?;
                    dists[i * k + j] = dist;
                }
            }
            let out_l = PyArray1::from_vec(py, labels).reshape([n, k])?;
            let out_d = PyArray1::from_vec(py, dists).reshape([n, k])?;
            Ok(PyTuple::new(py, [out_l.into_any(), out_d.into_any()])?.into_any())
        })
    }
}

use crate::live::LiveFilter as ShardFilter;

/// Parses `filter=` (`None`: no filter); a boolean mask is refused (shards hold labels).
fn parse_shard_filter(
    py: Python<'_>,
    f: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<ShardFilter>> {
    crate::live::parse_label_filter(py, f, "a sharded index")
}

/// One filtered search. A callable runs under the GIL from the shards' threads (the
/// caller's thread releases it meanwhile); its first exception is raised afterwards.
fn search_filtered(
    py: Python<'_>,
    inner: &ShardedIndex,
    q: &[f32],
    params: &SearchParams,
    f: &ShardFilter,
) -> PyResult<(panns_io::shard::Hits, Vec<panns_core::SearchStats>)> {
    with_filter(py, Some(f), |sf| inner.search_with_filter(q, params, sf))
}

/// Runs `search` without the GIL, given the library's view of `f` (`None`: every item).
/// A callable runs under the GIL from the search threads, one call at a time; an
/// exception it raises refuses the label, and the first one is raised afterwards.
fn with_filter<T: Send>(
    py: Python<'_>,
    f: Option<&ShardFilter>,
    search: impl FnOnce(IoFilter<'_>) -> panns_io::Result<T> + Send,
) -> PyResult<T> {
    match f {
        None => py
            .detach(|| search(IoFilter::All))
            .map_err(|e| io_err(py, e)),
        Some(ShardFilter::Labels(labels)) => py
            .detach(|| search(IoFilter::Labels(labels)))
            .map_err(|e| io_err(py, e)),
        Some(ShardFilter::Call(call)) => {
            let failed: std::sync::Mutex<Option<PyErr>> = std::sync::Mutex::new(None);
            let allow = |label: u64| -> bool {
                Python::attach(|py| {
                    match call
                        .call1(py, (label,))
                        .and_then(|r| r.bind(py).is_truthy())
                    {
                        Ok(b) => b,
                        Err(e) => {
                            if let Ok(mut g) = failed.lock() {
                                g.get_or_insert(e);
                            }
                            false
                        }
                    }
                })
            };
            let r = py
                .detach(|| search(IoFilter::Predicate(&allow)))
                .map_err(|e| io_err(py, e));
            if let Some(e) = failed.into_inner().ok().flatten() {
                return Err(e);
            }
            r
        }
    }
}

/// Builds one shard file at `path` from the 2-D array `data` (rows), with `labels`
/// (one distinct int per row, stored in the file's labels section) or none (the
/// manifest then labels rows by position). Keyword arguments as `PannsIndex.build`.
#[pyfunction]
#[pyo3(signature = (path, data, metric, labels=None, *, n_trees=None, leaf_size=None,
                    pool_size=None, seed=None, candidates=None, graph_degree=None, threads=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn build_shard(
    py: Python<'_>,
    path: &Bound<'_, PyAny>,
    data: &Bound<'_, PyAny>,
    metric: &Bound<'_, PyAny>,
    labels: Option<&Bound<'_, PyAny>>,
    n_trees: Option<&Bound<'_, PyAny>>,
    leaf_size: Option<&Bound<'_, PyAny>>,
    pool_size: Option<&Bound<'_, PyAny>>,
    seed: Option<&Bound<'_, PyAny>>,
    candidates: Option<&Bound<'_, PyAny>>,
    graph_degree: Option<&Bound<'_, PyAny>>,
    threads: Option<&Bound<'_, PyAny>>,
) -> PyResult<usize> {
    let path: PathBuf = path_of(py, path)?;
    let metric = metric_of(py, metric)?;
    let mut params = BuildParams::default();
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
    if let Some(t) = threads.filter(|t| !t.is_none()) {
        params.threads = bounded(py, t, "threads", MAX_THREADS)?;
    }
    let degree = opt_count(py, graph_degree, "graph_degree")?.map_or(0, |d| clamped(d.min(big)));
    params.validate().map_err(|e| core_err(py, e))?;
    let conv = as_f32(py, data)?;
    let shape = crate::shape_of(&conv);
    if shape.len() != 2 {
        return Err(invalid(
            py,
            format!("data must be a 2-D array of rows, got shape {shape:?}"),
        ));
    }
    let labels: Option<Vec<u64>> =
        match labels.filter(|l| !l.is_none()) {
            None => None,
            Some(l) => {
                let arr = py
                    .import("numpy")?
                    .call_method1("ascontiguousarray", (l, "int64"))?;
                let arr = arr
                    .cast::<PyArray1<i64>>()
                    .map_err(|_| invalid(py, "labels must be a 1-D array of integers".into()))?;
                let ro = arr.try_readonly()?;
                let s = ro
                    .as_slice()
                    .map_err(|e| PyValueError::new_err(e.to_string()))?;
                let mut out = Vec::with_capacity(s.len());
                for (i, &x) in s.iter().enumerate() {
                    out.push(u64::try_from(x).map_err(|_| {
                        invalid(py, format!("labels[{i}] = {x}: labels must be >= 0"))
                    })?);
                }
                if out.len() != shape[0] {
                    return Err(invalid(
                        py,
                        format!(
                            "{} labels for {} rows (one label per row)",
                            out.len(),
                            shape[0]
                        ),
                    ));
                }
                let mut sorted = out.clone();
                sorted.sort_unstable();
                if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
                    return Err(invalid(
                        py,
                        format!("label {} is given twice; labels must be distinct", w[0]),
                    ));
                }
                Some(out)
            }
        };
    PyIndex::with_matrix(&conv, |rows, n, d| {
        py.detach(|| -> panns_io::Result<()> {
            let mut b = IndexBuilder::new(d, metric)?;
            b.add_batch(rows)?;
            let mut index = b.build(&params)?;
            if degree > 0 {
                index.build_graph(&graph_params(degree, params.threads, false))?;
            }
            let extras = Extras {
                labels: labels.as_deref(),
                generation: None,
            };
            panns_io::save_index_with(&index, &extras, &path)
        })
        .map_err(|e| io_err(py, e))?;
        Ok(n)
    })
}

/// Writes a manifest at `manifest` naming the index files `paths` (in order; one metric
/// and dimension), atomically. Files with a labels section are labelled by it, the
/// others by their row in the concatenation. Returns the number of items.
#[pyfunction]
pub(crate) fn write_manifest(
    py: Python<'_>,
    manifest: &Bound<'_, PyAny>,
    paths: Vec<Bound<'_, PyAny>>,
) -> PyResult<u64> {
    let manifest = path_of(py, manifest)?;
    let paths = paths
        .iter()
        .map(|p| path_of(py, p))
        .collect::<PyResult<Vec<_>>>()?;
    let m = py
        .detach(|| panns_io::write_manifest(&manifest, &paths))
        .map_err(|e| io_err(py, e))?;
    Ok(m.len())
}
