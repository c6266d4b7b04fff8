//! `PannsLive`: a live index (additions and removals by label while it is searched),
//! over `panns_io::LiveIndex`. File layout and crash safety: `docs/format.md`, "Live
//! indexes"; the C contract: `docs/c-api.md`, "Live indexes".

use crate::builder::PannsBuildOptions;
use crate::error::{
    FfiError, FfiResult, PannsStatus, check_opt, check_ptr, guard, guard_value, mul, path_arg,
    slice, slice_mut, write_opt, write_out,
};
use crate::index::{PannsIndex, PannsSearchStats};
use panns_core::{GraphParams, Metric, SearchParams};
use panns_io::{LiveIndex, LiveOptions};
use rayon::prelude::*;
use std::ffi::{c_char, c_int};
use std::ptr::null_mut;

/// A live index: a base index file `NAME` plus an append-only log `NAME.log` of
/// additions and removals by 64-bit label. Opaque; made by `panns_live_create`,
/// `panns_live_from_index` or `panns_live_open`, freed by `panns_live_free`.
///
/// Threads: the functions taking a `const PannsLive *` (searches, `get`, `contains`
/// and the accessors) may run on many threads at once; those taking a `PannsLive *`
/// (`add`, `remove`, `commit`, `compact`, `refresh`) need the handle to themselves
/// (guard a shared handle with a reader-writer lock). Different handles are
/// independent, in one process or several.
pub struct PannsLive(pub LiveIndex);

/// Borrows a live handle.
///
/// # Safety
/// `live` must be NULL or a live pointer from a `panns_live_*` constructor.
pub(crate) unsafe fn live_ref<'a>(live: *const PannsLive) -> FfiResult<&'a LiveIndex> {
    // SAFETY: the caller guarantees NULL or a live handle; `as_ref` handles NULL.
    unsafe { live.as_ref() }
        .map(|l| &l.0)
        .ok_or_else(|| FfiError::null("live"))
}

/// Borrows a live handle mutably.
///
/// # Safety
/// `live` must be NULL or a live handle that no other thread uses during the call.
unsafe fn live_mut<'a>(live: *mut PannsLive) -> FfiResult<&'a mut LiveIndex> {
    // SAFETY: the caller guarantees NULL or a live, exclusively used handle.
    unsafe { live.as_mut() }
        .map(|l| &mut l.0)
        .ok_or_else(|| FfiError::null("live"))
}

/// Sets `*out` to NULL, makes a live index with `make` and stores its handle in `*out`.
///
/// # Safety
/// `out` must be NULL or writable; `make` may rely on the caller's pointer contracts.
unsafe fn open_into(
    out: *mut *mut PannsLive,
    make: impl FnOnce() -> FfiResult<LiveIndex>,
) -> FfiResult<()> {
    check_ptr(out, 1, "out")?;
    // SAFETY: checked non-NULL and aligned; the caller guarantees it is writable.
    unsafe { out.write(std::ptr::null_mut()) };
    let handle = Box::into_raw(Box::new(PannsLive(make()?)));
    // SAFETY: as above.
    unsafe { out.write(handle) };
    Ok(())
}

/// Checks one vector (`what` names it in the message): finite, not too large, not zero
/// under the angular metric. Gives the specific status of each problem.
pub(crate) fn check_vector(
    v: &[f32],
    metric: Metric,
    what: &dyn std::fmt::Display,
) -> FfiResult<()> {
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(FfiError::new(
            PannsStatus::PANNS_NON_FINITE,
            format!("{what}: component {i} is {} (values must be finite)", v[i]),
        ));
    }
    if let Some(i) = v.iter().position(|x| x.abs() > panns_core::MAX_COMPONENT) {
        return Err(FfiError::invalid(format!(
            "{what}: component {i} is {} (values must be at most {:e} in magnitude)",
            v[i],
            panns_core::MAX_COMPONENT
        )));
    }
    if metric == Metric::Angular && v.iter().all(|&x| x == 0.0) {
        return Err(FfiError::new(
            PannsStatus::PANNS_ZERO_VECTOR,
            format!("{what}: a zero vector has no direction (angular metric)"),
        ));
    }
    Ok(())
}

/// `PANNS_DIMENSION_MISMATCH` unless `dim` is the live index's dimension.
pub(crate) fn check_dim(live: &LiveIndex, dim: usize, what: &str) -> FfiResult<()> {
    if dim != live.dim() {
        return Err(FfiError::from(panns_core::Error::DimensionMismatch {
            expected: live.dim(),
            got: dim,
        })
        .context(what));
    }
    Ok(())
}

/// Creates an empty live index at `path` (the log `path.log` and the writer lock
/// `path.lock` go beside it; the base file `path` is written by the first compaction)
/// for `dim`-dimensional vectors under `metric` (a `PannsMetric` code), and stores the
/// writer's handle in `*out` (NULL on failure). A NULL `path` makes a live index held in
/// memory only (no file, log or lock: `panns_live_commit` does nothing, `panns_live_compact`
/// rebuilds the base in memory, `panns_live_save` writes it to a file). `params` (NULL = defaults) are used by
/// every compaction; `graph_degree` > 0 gives each compacted base a neighbour graph of
/// that degree (0: none). Fails if `path` or its log exists. Any thread may call it.
/// Errors: `PANNS_NULL_POINTER`, `PANNS_INVALID_ARGUMENT` (dim 0 or too large, unknown
/// metric, bad parameter, existing files, bad path), `PANNS_LOCKED` (another writer
/// holds `path.lock`), `PANNS_IO`.
///
/// # Safety
/// `path` NULL or a NUL-terminated string; `params` NULL or a readable
/// `PannsBuildOptions`; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_live_create(
    path: *const c_char,
    dim: u32,
    metric: u32,
    params: *const PannsBuildOptions,
    graph_degree: u32,
    out: *mut *mut PannsLive,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        unsafe {
            open_into(out, || {
                let path = if path.is_null() {
                    None
                } else {
                    Some(path_arg(path, "path")?)
                };
                let metric = Metric::from_code(metric).ok_or_else(|| {
                    FfiError::invalid(format!(
                        "unknown metric code {metric}: expected 0 (euclidean), 1 (angular) or 2 (dot)"
                    ))
                })?;
                let opts = if params.is_null() {
                    PannsBuildOptions::default()
                } else {
                    check_ptr(params, 1, "params")?;
                    params.read()
                };
                let params = opts.to_params()?;
                let graph = (graph_degree > 0).then(|| {
                    let d = graph_degree as usize;
                    GraphParams {
                        degree: d,
                        build_k: d.max(GraphParams::default().build_k),
                        ..GraphParams::default()
                    }
                });
                Ok(match path {
                    Some(path) => LiveIndex::create_with(
                        path,
                        dim as usize,
                        metric,
                        &params,
                        graph.as_ref(),
                        LiveOptions::default(),
                    )?,
                    None => LiveIndex::empty_in_memory(
                        dim as usize,
                        metric,
                        &params,
                        graph.as_ref(),
                        LiveOptions::default(),
                    )?,
                })
            })
        }
    })
}

/// Writes `index` as generation 1 of a new live index at `path` (with the log and lock
/// beside it) and stores the writer's handle in `*out` (NULL on failure). `labels`
/// holds one distinct label per item (`n_labels` must equal the item count), or is
/// NULL for the item ids as labels (`n_labels` is then ignored). The index is only
/// read: free it whenever you like. A NULL `path` makes a live index held in memory only
/// over a copy of `index` (see `panns_live_create`). Fails if `path` or its log exists. Any thread may
/// call it. Errors: `PANNS_NULL_POINTER`, `PANNS_INVALID_ARGUMENT` (label count,
/// repeated label, existing files, bad path), `PANNS_LOCKED`, `PANNS_IO`.
///
/// # Safety
/// `index` NULL or a live index; `path` NULL or a NUL-terminated string; `labels` NULL
/// or `n_labels` readable labels; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_live_from_index(
    index: *const PannsIndex,
    path: *const c_char,
    labels: *const u64,
    n_labels: usize,
    out: *mut *mut PannsLive,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        unsafe {
            open_into(out, || {
                let index = &index.as_ref().ok_or_else(|| FfiError::null("index"))?.0;
                let path = if path.is_null() {
                    None
                } else {
                    Some(path_arg(path, "path")?)
                };
                let labels = if labels.is_null() {
                    None
                } else {
                    let l = slice(labels, n_labels, "labels")?;
                    if l.len() != index.len() {
                        return Err(FfiError::invalid(format!(
                            "n_labels = {}: the index holds {} items (one label each)",
                            l.len(),
                            index.len()
                        )));
                    }
                    Some(l)
                };
                Ok(match path {
                    Some(path) => LiveIndex::from_index(path, index, labels)?,
                    // Clones share the index's storage: cheap.
                    None => LiveIndex::in_memory(index.clone(), labels)?,
                })
            })
        }
    })
}

/// Opens the live index at `path` (a base file, its log, or both; any panns index file
/// opens as generation 1 with its item ids as labels) and stores the handle in `*out`
/// (NULL on failure). `writable` = 1 takes the writer lock `path.lock` (one writer at a
/// time, across processes); 0 opens a reader, which sees the last commit made before it
/// opened and later ones after `panns_live_refresh`. Any thread may call it. Errors:
/// `PANNS_NULL_POINTER`, `PANNS_INVALID_ARGUMENT` (writable not 0 or 1, bad path),
/// `PANNS_LOCKED` (another writer holds the lock), `PANNS_IO` (no such index),
/// `PANNS_CORRUPT`, `PANNS_UNSUPPORTED`.
///
/// # Safety
/// `path` NULL or a NUL-terminated string; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_live_open(
    path: *const c_char,
    writable: u32,
    out: *mut *mut PannsLive,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        unsafe {
            open_into(out, || {
                let path = path_arg(path, "path")?;
                if writable > 1 {
                    return Err(FfiError::invalid(format!(
                        "writable = {writable}: must be 0 (reader) or 1 (writer)"
                    )));
                }
                Ok(LiveIndex::open(path, writable == 1)?)
            })
        }
    })
}

/// Adds `n` items: `labels[i]` with the vector `vectors[i * dim .. (i + 1) * dim]`
/// (row-major). A label already held is replaced. Either the whole batch is applied or,
/// on an error (whose message names the row and label), nothing. Visible to this
/// handle's searches at once; durable after `panns_live_commit`. `n = 0` is a
/// successful no-op (the pointers must still be non-NULL). Needs the handle to itself.
/// Errors: `PANNS_NULL_POINTER`, `PANNS_DIMENSION_MISMATCH` (dim is not the index
/// dimension), `PANNS_NON_FINITE`, `PANNS_ZERO_VECTOR` (angular),
/// `PANNS_INVALID_ARGUMENT` (a label twice in the batch, a value too large),
/// `PANNS_READ_ONLY` (a reader).
///
/// # Safety
/// `live` NULL or a live handle used by no other thread; `labels` NULL or `n` labels;
/// `vectors` NULL or `n * dim` floats.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_live_add(
    live: *mut PannsLive,
    labels: *const u64,
    vectors: *const f32,
    n: usize,
    dim: usize,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let live = unsafe { live_mut(live) }?;
        // SAFETY: forwarded from the caller.
        let labels = unsafe { slice(labels, n, "labels") }?;
        let total = mul(n, dim, "n * dim")?;
        // SAFETY: forwarded from the caller.
        let rows = unsafe { slice(vectors, total, "vectors") }?;
        if !live.is_writable() {
            return Err(panns_io::Error::ReadOnly {
                path: live.path().to_path_buf(),
            }
            .into());
        }
        check_dim(live, dim, "vectors")?;
        let metric = live.metric();
        for (i, (row, label)) in rows.chunks_exact(dim).zip(labels).enumerate() {
            check_vector(
                row,
                metric,
                &format_args!("batch row {i} (label {label}); nothing of the batch was applied"),
            )?;
        }
        live.add_batch(labels, rows)?;
        Ok(())
    })
}

/// Removes the items of the `n` labels (labels not held are ignored) and writes how
/// many were removed to `*removed` unless it is NULL. Durable after
/// `panns_live_commit`. Needs the handle to itself. Errors: `PANNS_NULL_POINTER`,
/// `PANNS_READ_ONLY`.
///
/// # Safety
/// `live` NULL or a live handle used by no other thread; `labels` NULL or `n` labels;
/// `removed` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_live_remove(
    live: *mut PannsLive,
    labels: *const u64,
    n: usize,
    removed: *mut usize,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let live = unsafe { live_mut(live) }?;
        // SAFETY: forwarded from the caller.
        let labels = unsafe { slice(labels, n, "labels") }?;
        check_opt(removed, "removed")?;
        let count = live.remove(labels)?;
        // SAFETY: forwarded from the caller.
        unsafe { write_opt(removed, count, "removed") }
    })
}

/// Makes every change since the last commit durable (appended to the log and fsynced
/// before it returns; in memory there is nothing to do), then compacts if the delta or the removals have grown past
/// their thresholds (a tenth of the base added, a fifth removed). On an I/O error the
/// changes stay pending and nothing committed before is lost. Needs the handle to
/// itself. Errors: `PANNS_NULL_POINTER`, `PANNS_READ_ONLY`, `PANNS_IO`,
/// `PANNS_OUT_OF_MEMORY`.
///
/// # Safety
/// `live` NULL or a live handle used by no other thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_live_commit(live: *mut PannsLive) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        unsafe { live_mut(live) }?.commit()?;
        Ok(())
    })
}

/// Commits, then writes the live items as the next base generation (a new index built
/// with the creation parameters, written to a temporary file, fsynced and renamed over
/// `path`) and starts a fresh log. Readers keep their mapped generation until their
/// next `panns_live_refresh`. Nothing is done for an empty index. Needs the handle to
/// itself. Errors: `PANNS_NULL_POINTER`, `PANNS_READ_ONLY`, `PANNS_IO`,
/// `PANNS_OUT_OF_MEMORY`.
///
/// # Safety
/// `live` NULL or a live handle used by no other thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_live_compact(live: *mut PannsLive) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        unsafe { live_mut(live) }?.compact()?;
        Ok(())
    })
}

/// For a reader: picks up the commits made (by the writer, in any process) since it
/// opened or last refreshed, moving to a new base generation if a compaction wrote
/// one. Writes 1 to `*changed` if anything changed, else 0 (a writer is always current:
/// 0); `changed` may be NULL. Needs the handle to itself. Errors: `PANNS_NULL_POINTER`,
/// `PANNS_IO`, `PANNS_CORRUPT`.
///
/// # Safety
/// `live` NULL or a live handle used by no other thread; `changed` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_live_refresh(
    live: *mut PannsLive,
    changed: *mut c_int,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let live = unsafe { live_mut(live) }?;
        check_opt(changed, "changed")?;
        let c = live.refresh()?;
        // SAFETY: forwarded from the caller.
        unsafe { write_opt(changed, c_int::from(c), "changed") }
    })
}

/// Checks the arguments of a single-query search and returns the query.
///
/// # Safety
/// As `panns_live_search`.
pub(crate) unsafe fn query_args<'a>(
    live: &LiveIndex,
    query: *const f32,
    dim: usize,
    k: usize,
    labels_out: *mut u64,
    distances_out: *mut f32,
    n_found: *mut usize,
) -> FfiResult<&'a [f32]> {
    if query.is_null() && dim == 0 {
        return Err(FfiError::new(
            PannsStatus::PANNS_DIMENSION_MISMATCH,
            format!(
                "the query is empty: expected {} components, got 0",
                live.dim()
            ),
        ));
    }
    // SAFETY: forwarded from the caller.
    let q = unsafe { slice(query, dim, "query") }?;
    // Only min(k, live items) entries are written: a huge k is fine (as in index.rs).
    check_ptr(labels_out, 0, "labels_out")?;
    if !distances_out.is_null() {
        check_ptr(distances_out, 0, "distances_out")?;
    }
    check_ptr(n_found, 1, "n_found")?;
    if k == 0 {
        return Err(panns_core::Error::InvalidK(0).into());
    }
    check_dim(live, dim, "query")?;
    check_vector(q, live.metric(), &"query")?;
    Ok(q)
}

/// Writes one query's hits to the caller's buffers.
///
/// # Safety
/// `labels_out` (and `distances_out` unless NULL) must hold `hits.len()` elements;
/// `n_found` must be NULL or writable.
pub(crate) unsafe fn write_hits(
    hits: &[(u64, f32)],
    labels_out: *mut u64,
    distances_out: *mut f32,
    n_found: *mut usize,
) -> FfiResult<()> {
    let names = ["labels_out", "distances_out", "n_found"];
    // SAFETY: forwarded from the caller.
    unsafe { crate::index::write_pairs(hits, |&h| h, labels_out, distances_out, n_found, names) }
}

/// Approximate k nearest live items to one query of `dim` floats, nearest first (ties
/// by label): the base searched without its removed items, merged with the delta
/// (scanned exactly while small). `budget` as in `panns_index_search` (0 = default).
/// Writes up to `k` labels to `labels_out[k]`, their distances to `distances_out[k]`
/// (may be NULL) and the number written, `min(k, live items)`, to `*n_found`. Any
/// number of threads may search one handle at once. Errors: `PANNS_NULL_POINTER`,
/// `PANNS_INVALID_ARGUMENT` (k = 0), `PANNS_DIMENSION_MISMATCH`, `PANNS_NON_FINITE`,
/// `PANNS_ZERO_VECTOR` (angular).
///
/// # Safety
/// `live` NULL or a live handle; `query` NULL or `dim` floats; `labels_out` NULL or
/// room for `k` labels; `distances_out` NULL or room for `k` floats; `n_found` NULL or
/// writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn panns_live_search(
    live: *const PannsLive,
    query: *const f32,
    dim: usize,
    k: usize,
    budget: usize,
    labels_out: *mut u64,
    distances_out: *mut f32,
    n_found: *mut usize,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let live = unsafe { live_ref(live) }?;
        // SAFETY: forwarded from the caller.
        let q = unsafe { query_args(live, query, dim, k, labels_out, distances_out, n_found) }?;
        let hits = live.search(q, &SearchParams::new(k).with_budget(budget))?;
        // SAFETY: forwarded from the caller; `hits.len() <= k`.
        unsafe { write_hits(&hits, labels_out, distances_out, n_found) }
    })
}

/// `panns_live_search` that also reports what the search of the base did in
/// `*out_stats` (all zero when there is no base yet): whether it scanned the base
/// exactly (`exact_scan`), the effective budget and how many items were scored. Same
/// arguments, output contract, errors and thread safety as `panns_live_search`;
/// `out_stats` must not be NULL.
///
/// # Safety
/// As `panns_live_search`; `out_stats` NULL or writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn panns_live_search_with_stats(
    live: *const PannsLive,
    query: *const f32,
    dim: usize,
    k: usize,
    budget: usize,
    labels_out: *mut u64,
    distances_out: *mut f32,
    n_found: *mut usize,
    out_stats: *mut PannsSearchStats,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let live = unsafe { live_ref(live) }?;
        // SAFETY: forwarded from the caller.
        let q = unsafe { query_args(live, query, dim, k, labels_out, distances_out, n_found) }?;
        check_ptr(out_stats, 1, "out_stats")?;
        let (hits, s) = live.search_with_stats(q, &SearchParams::new(k).with_budget(budget))?;
        // SAFETY: forwarded from the caller; `hits.len() <= k`.
        unsafe { write_hits(&hits, labels_out, distances_out, n_found) }?;
        // SAFETY: forwarded from the caller.
        unsafe { write_out(out_stats, PannsSearchStats::from(&s), "out_stats") }
    })
}

/// Every live item within distance `radius` of one query, nearest first (ties by label),
/// at most `max_results` of them, into the caller's `labels_out[max_results]` and
/// `distances_out[max_results]` (may be NULL), the count in `*n_found`; `*truncated` (may
/// be NULL) is set to 1 when more items were within the radius than `max_results` (the
/// nearest are kept), else 0. Distances are those of the metric (Euclidean: not squared;
/// angular: `1 - cos`). The candidates are the `max_results + 1` nearest of
/// `panns_live_search` at `budget` (0: the default), so the answer is approximate unless
/// the budget covers half the items. Any number of threads may call it at once. Errors:
/// those of `panns_live_search`, plus `PANNS_INVALID_ARGUMENT` for a negative or NaN
/// radius or `max_results = 0`.
///
/// # Safety
/// As `panns_live_search` with `k = max_results`; `truncated` NULL or writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn panns_live_range_search(
    live: *const PannsLive,
    query: *const f32,
    dim: usize,
    radius: f32,
    max_results: usize,
    budget: usize,
    labels_out: *mut u64,
    distances_out: *mut f32,
    n_found: *mut usize,
    truncated: *mut u8,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let live = unsafe { live_ref(live) }?;
        // SAFETY: forwarded from the caller (`max_results` stands for k).
        let q = unsafe {
            query_args(
                live,
                query,
                dim,
                max_results.max(1),
                labels_out,
                distances_out,
                n_found,
            )
        }?;
        check_opt(truncated, "truncated")?;
        let (hits, capped) = live.range_search(q, radius, max_results, budget)?;
        // SAFETY: forwarded from the caller; `hits.len() <= max_results`.
        unsafe { write_hits(&hits, labels_out, distances_out, n_found) }?;
        // SAFETY: forwarded from the caller.
        unsafe { write_opt(truncated, u8::from(capped), "truncated") }
    })
}

/// Searches `n_queries` row-major queries of `dim` floats each, in parallel on all
/// cores. `labels_out` and `distances_out` (may be NULL) hold `n_queries * k` entries,
/// row `i` at `i * k`; a row with fewer than `k` results (fewer live items than `k`) is
/// padded with label `UINT64_MAX` and distance `INFINITY`. `n_queries = 0` is a
/// successful no-op (the pointers must still be non-NULL). Errors as
/// `panns_live_search`; every query is checked before any is searched, and the
/// message names the first offending row (the outputs are then untouched).
///
/// # Safety
/// `live` NULL or a live handle; `queries` NULL or `n_queries * dim` floats;
/// `labels_out` NULL or room for `n_queries * k` labels; `distances_out` NULL or room
/// for `n_queries * k` floats.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn panns_live_search_batch(
    live: *const PannsLive,
    queries: *const f32,
    n_queries: usize,
    dim: usize,
    k: usize,
    budget: usize,
    labels_out: *mut u64,
    distances_out: *mut f32,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let live = unsafe { live_ref(live) }?;
        // SAFETY: forwarded from the caller.
        let qs =
            unsafe { batch_args(live, queries, n_queries, dim, k, labels_out, distances_out) }?;
        if n_queries == 0 {
            return Ok(());
        }
        let params = SearchParams::new(k).with_budget(budget);
        // On the library's worker threads (rayon's global pool), as panns_index_search_batch.
        let hits = qs
            .par_chunks(dim)
            .map(|q| live.search(q, &params))
            .collect::<Result<Vec<_>, _>>()?;
        // SAFETY: forwarded from the caller.
        unsafe { write_batch(&hits, k, labels_out, distances_out, null_mut()) }
    })
}

/// Checks the arguments of a batch search (every query row included) and returns the
/// queries.
///
/// # Safety
/// As `panns_live_search_batch`.
pub(crate) unsafe fn batch_args<'a>(
    live: &LiveIndex,
    queries: *const f32,
    n_queries: usize,
    dim: usize,
    k: usize,
    labels_out: *mut u64,
    distances_out: *mut f32,
) -> FfiResult<&'a [f32]> {
    let n_in = mul(n_queries, dim, "n_queries * dim")?;
    let n_out = mul(n_queries, k, "n_queries * k")?;
    // SAFETY: forwarded from the caller.
    let qs = unsafe { slice(queries, n_in, "queries") }?;
    check_ptr(labels_out, n_out, "labels_out")?;
    if !distances_out.is_null() {
        check_ptr(distances_out, n_out, "distances_out")?;
    }
    if k == 0 {
        return Err(panns_core::Error::InvalidK(0).into());
    }
    check_dim(live, dim, "queries")?;
    let metric = live.metric();
    for (i, q) in qs.chunks_exact(dim).enumerate() {
        check_vector(q, metric, &format_args!("query row {i}"))?;
    }
    Ok(qs)
}

/// Writes the hits of a batch search, `k` entries per row (padded with label
/// `UINT64_MAX` and distance `INFINITY`), and each row's count into `counts_out` unless
/// it is NULL.
///
/// # Safety
/// `labels_out` (and `distances_out` unless NULL) must hold `hits.len() * k` elements
/// (checked by [`batch_args`]); `counts_out` NULL or room for `hits.len()` sizes.
pub(crate) unsafe fn write_batch(
    hits: &[Vec<(u64, f32)>],
    k: usize,
    labels_out: *mut u64,
    distances_out: *mut f32,
    counts_out: *mut usize,
) -> FfiResult<()> {
    let n_out = mul(hits.len(), k, "n_queries * k")?;
    // SAFETY: forwarded from the caller (room for `n_queries * k` labels).
    let ls = unsafe { slice_mut(labels_out, n_out, "labels_out") }?;
    let mut ds = if distances_out.is_null() {
        None
    } else {
        // SAFETY: forwarded from the caller (room for `n_queries * k` floats).
        Some(unsafe { slice_mut(distances_out, n_out, "distances_out") }?)
    };
    let mut counts = if counts_out.is_null() {
        None
    } else {
        // SAFETY: forwarded from the caller (room for `n_queries` sizes).
        Some(unsafe { slice_mut(counts_out, hits.len(), "counts_out") }?)
    };
    for (i, row_hits) in hits.iter().enumerate() {
        let row = &mut ls[i * k..(i + 1) * k];
        row.fill(u64::MAX);
        for (o, h) in row.iter_mut().zip(row_hits) {
            *o = h.0;
        }
        if let Some(ds) = ds.as_deref_mut() {
            let row = &mut ds[i * k..(i + 1) * k];
            row.fill(f32::INFINITY);
            for (o, h) in row.iter_mut().zip(row_hits) {
                *o = h.1;
            }
        }
        if let Some(c) = counts.as_deref_mut() {
            c[i] = row_hits.len();
        }
    }
    Ok(())
}

/// Copies the stored vector of `label` (unit length under the angular metric) into
/// `out[dim]`; `dim` must equal the index dimension. Any number of threads may call it
/// at once. Errors: `PANNS_NULL_POINTER`, `PANNS_OUT_OF_RANGE` (the label is not held),
/// `PANNS_BUFFER_TOO_SMALL` (dim below the index dimension), `PANNS_DIMENSION_MISMATCH`
/// (dim above it).
///
/// # Safety
/// `live` NULL or a live handle; `out` NULL or room for `dim` floats.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_live_get(
    live: *const PannsLive,
    label: u64,
    out: *mut f32,
    dim: usize,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let live = unsafe { live_ref(live) }?;
        check_ptr(out, dim, "out")?;
        let d = live.dim();
        if dim < d {
            return Err(FfiError::new(
                PannsStatus::PANNS_BUFFER_TOO_SMALL,
                format!("output buffer holds {dim} floats, the index dimension is {d}"),
            ));
        }
        check_dim(live, dim, "out")?;
        let v = live.get(label).ok_or_else(|| {
            FfiError::new(
                PannsStatus::PANNS_OUT_OF_RANGE,
                format!("label {label} is not held by the live index"),
            )
        })?;
        // SAFETY: forwarded from the caller (room for `dim` floats).
        unsafe { slice_mut(out, d, "out") }?.copy_from_slice(&v);
        Ok(())
    })
}

/// 1 if the live index holds `label`, else 0 (0 for NULL). Any thread, any time.
///
/// # Safety
/// `live` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_live_contains(live: *const PannsLive, label: u64) -> c_int {
    guard_value(0, || {
        // SAFETY: forwarded from the caller.
        unsafe { live_ref(live) }.map_or(0, |l| c_int::from(l.contains(label)))
    })
}

/// Live items: the base minus removed items plus the delta (0 for NULL).
///
/// # Safety
/// `live` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_live_len(live: *const PannsLive) -> usize {
    // SAFETY: forwarded from the caller.
    guard_value(0, || unsafe { live_ref(live) }.map_or(0, |l| l.len()))
}

/// Vector dimension (0 for NULL).
///
/// # Safety
/// `live` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_live_dim(live: *const PannsLive) -> u32 {
    // SAFETY: forwarded from the caller.
    guard_value(0, || {
        unsafe { live_ref(live) }.map_or(0, |l| l.dim() as u32)
    })
}

/// Metric code (a `PannsMetric` value; `UINT32_MAX` for NULL).
///
/// # Safety
/// `live` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_live_metric(live: *const PannsLive) -> u32 {
    guard_value(u32::MAX, || {
        // SAFETY: forwarded from the caller.
        unsafe { live_ref(live) }.map_or(u32::MAX, |l| l.metric().code())
    })
}

/// Generation of the base file (0 before the first compaction, or for NULL).
///
/// # Safety
/// `live` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_live_generation(live: *const PannsLive) -> u64 {
    // SAFETY: forwarded from the caller.
    guard_value(0, || {
        unsafe { live_ref(live) }.map_or(0, |l| l.generation())
    })
}

/// Items in the base file, removed ones included (0 for NULL).
///
/// # Safety
/// `live` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_live_base_len(live: *const PannsLive) -> usize {
    // SAFETY: forwarded from the caller.
    guard_value(0, || unsafe { live_ref(live) }.map_or(0, |l| l.base_len()))
}

/// Live items added since the base was written (the delta; 0 for NULL).
///
/// # Safety
/// `live` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_live_delta_len(live: *const PannsLive) -> usize {
    // SAFETY: forwarded from the caller.
    guard_value(0, || unsafe { live_ref(live) }.map_or(0, |l| l.delta_len()))
}

/// Base items removed or replaced since the base was written (0 for NULL).
///
/// # Safety
/// `live` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_live_tombstones(live: *const PannsLive) -> usize {
    // SAFETY: forwarded from the caller.
    guard_value(0, || {
        unsafe { live_ref(live) }.map_or(0, |l| l.tombstones())
    })
}

/// Changes made through this handle and not yet committed (0 for a reader or NULL).
///
/// # Safety
/// `live` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_live_pending(live: *const PannsLive) -> usize {
    // SAFETY: forwarded from the caller.
    guard_value(0, || unsafe { live_ref(live) }.map_or(0, |l| l.pending()))
}

/// 1 if this handle takes changes (the writer, holding the lock, or an index in memory),
/// 0 for a reader or NULL.
///
/// # Safety
/// `live` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_live_is_writable(live: *const PannsLive) -> c_int {
    guard_value(0, || {
        // SAFETY: forwarded from the caller.
        unsafe { live_ref(live) }.map_or(0, |l| c_int::from(l.is_writable()))
    })
}

/// Writes the live items to `path` as one index file with their labels (atomically: a
/// temporary file, fsync, rename); `panns_live_open` opens it as a live index, and
/// `panns_index_open` as a plain index. An index held in memory is compacted (in memory)
/// first if it changed; one on files writes a compacted copy and stays as it is (readers
/// may save too). Needs the handle to itself. Errors: `PANNS_NULL_POINTER`,
/// `PANNS_INVALID_ARGUMENT` (no live items, the index's own base file, a path with a
/// live-index log beside it, bad path), `PANNS_IO`.
///
/// # Safety
/// `live` NULL or a live handle used by no other thread; `path` NULL or a NUL-terminated
/// string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_live_save(live: *mut PannsLive, path: *const c_char) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let live = unsafe { live_mut(live) }?;
        // SAFETY: forwarded from the caller.
        let path = unsafe { path_arg(path, "path") }?;
        live.save(path)?;
        Ok(())
    })
}

/// 1 for a live index held in memory only (made with a NULL path), 0 for one on files or
/// NULL.
///
/// # Safety
/// `live` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_live_is_in_memory(live: *const PannsLive) -> c_int {
    guard_value(0, || {
        // SAFETY: forwarded from the caller.
        unsafe { live_ref(live) }.map_or(0, |l| c_int::from(l.is_in_memory()))
    })
}

/// Frees a live handle (NULL is a no-op). Uncommitted changes are discarded; a writer
/// releases its lock.
///
/// # Safety
/// `live` must be NULL or a live handle not used by any thread afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_live_free(live: *mut PannsLive) {
    guard_value((), || {
        if !live.is_null() {
            // SAFETY: the caller guarantees a live handle from `Box::into_raw` that is
            // not used again.
            drop(unsafe { Box::from_raw(live) });
        }
    })
}
