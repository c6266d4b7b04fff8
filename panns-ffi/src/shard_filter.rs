//! Filtered and range search of a sharded index by global labels:
//! `panns_sharded_search_filtered`, `panns_sharded_search_batch_filtered` and
//! `panns_sharded_range_search`, taking the `PannsLabelFilter` of live indexes (see
//! `crate::live_filter`).
//!
//! An allow-list is planned per shard like a bitmap on a plain index
//! (`panns_io::ShardedIndex::search_labels`): each shard counts its listed items and
//! scans them exactly when few are listed, and shards holding none are not searched. A
//! deny-list or a predicate walks every shard with the filter
//! (`ShardedIndex::search_filtered`).

use crate::error::{FfiResult, PannsStatus, check_opt, check_ptr, guard, write_opt};
use crate::live::{write_batch, write_hits};
use crate::live_filter::{PannsLabelFilter, View, check_filter};
use crate::shard::{PannsShardedIndex, batch_args, batch_err, query_args, sharded_ref};
use panns_core::SearchParams;
use panns_io::ShardFilter;

/// The sharded index's view of a checked label filter.
fn shard_filter(view: View<'_>) -> ShardFilter<'_> {
    match view {
        View::All => ShardFilter::All,
        View::Labels(list) => ShardFilter::Labels(list),
        View::Predicate(f) => ShardFilter::Predicate(f),
    }
}

/// The k nearest items to one query of `dim` floats over all shards among those whose
/// global label `filter` allows (NULL `filter`: every item, exactly as
/// `panns_sharded_search`), nearest first, ties by label: the merge of every shard's
/// own filtered top-k, each searched with `budget` on its own thread. Writes up to `k`
/// labels to `out_labels[k]`, distances to `out_distances[k]` (may be NULL) and the
/// count to `*out_count`: `min(k, allowed items)` unless the allowed items are too
/// sparse for the budget to reach. An allow-list is planned per shard (an exact scan of
/// its listed items when few are listed; unknown labels match nothing, an empty list
/// gives 0 results); a deny-list or a predicate walks every shard with the filter
/// (raise the budget for a selective predicate). The predicate is called from the
/// shards' search threads, several at once, and never after it aborted. Errors: those
/// of `panns_sharded_search`, plus `PANNS_INVALID_ARGUMENT` (unknown filter kind),
/// `PANNS_NULL_POINTER` (a NULL `labels` with `n_labels` > 0, a NULL predicate for
/// `PANNS_LABEL_FILTER_PREDICATE`), `PANNS_CALLBACK_FAILED` (the predicate returned a
/// negative value; no result is written). Any number of threads may search one handle
/// at once. Ownership: every pointer is borrowed for the call only.
///
/// # Safety
/// As `panns_sharded_search`; `filter` NULL or a valid `PannsLabelFilter` whose
/// `labels` hold `n_labels` labels and whose predicate is callable with its
/// `user_data` from any thread.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn panns_sharded_search_filtered(
    idx: *const PannsShardedIndex,
    query: *const f32,
    dim: usize,
    k: usize,
    budget: usize,
    filter: *const PannsLabelFilter,
    out_labels: *mut u64,
    out_distances: *mut f32,
    out_count: *mut usize,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let ix = unsafe { sharded_ref(idx) }?;
        // SAFETY: forwarded from the caller.
        let q = unsafe { query_args(ix, query, dim, k, out_labels, out_distances, out_count) }?;
        // SAFETY: forwarded from the caller.
        let filter = unsafe { check_filter(filter) }?;
        let params = SearchParams::new(k).with_budget(budget);
        let hits = filter.run(|view| -> FfiResult<_> {
            Ok(ix.search_with_filter(q, &params, shard_filter(view))?.0)
        })?;
        // SAFETY: forwarded from the caller; `hits.len() <= k`.
        unsafe { write_hits(&hits, out_labels, out_distances, out_count) }
    })
}

/// `panns_sharded_search_filtered` for `n_queries` row-major queries of `dim` floats
/// each, in parallel on the library's worker threads, with one filter for all of them
/// (NULL `filter`: every item, exactly as `panns_sharded_search_batch`). Outputs in the
/// caller's buffers as `panns_sharded_search_batch`: `out_labels` and `out_distances`
/// (may be NULL) hold `n_queries * k` entries, row `i` at `i * k`, a row with fewer
/// than `k` results padded with label `UINT64_MAX` and distance `INFINITY`;
/// `out_counts` (may be NULL) receives the number of results of each row (use it: a
/// filter often leaves rows short, and `UINT64_MAX` may be a real label). Every row is
/// exactly what `panns_sharded_search_filtered` gives for it. `n_queries = 0` is a
/// successful no-op (the pointers must still be non-NULL). Errors as
/// `panns_sharded_search_filtered`; the message names an offending query row, and the
/// outputs are then unspecified. Any number of threads may call it on one handle at
/// once. A predicate is called from several threads at once and must be thread-safe;
/// after it aborts, the other rows stop at their next call. Ownership: every pointer is
/// borrowed for the call only.
///
/// # Safety
/// `idx` NULL or a live handle; `queries` NULL or `n_queries * dim` floats; `filter` as
/// in `panns_sharded_search_filtered`; `out_labels` NULL or room for `n_queries * k`
/// labels; `out_distances` NULL or room for `n_queries * k` floats; `out_counts` NULL
/// or room for `n_queries` sizes.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn panns_sharded_search_batch_filtered(
    idx: *const PannsShardedIndex,
    queries: *const f32,
    n_queries: usize,
    dim: usize,
    k: usize,
    budget: usize,
    filter: *const PannsLabelFilter,
    out_labels: *mut u64,
    out_distances: *mut f32,
    out_counts: *mut usize,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let ix = unsafe { sharded_ref(idx) }?;
        // SAFETY: forwarded from the caller.
        let qs = unsafe { batch_args(ix, queries, n_queries, dim, k, out_labels, out_distances) }?;
        if !out_counts.is_null() {
            check_ptr(out_counts, n_queries, "out_counts")?;
        }
        // SAFETY: forwarded from the caller.
        let filter = unsafe { check_filter(filter) }?;
        if n_queries == 0 {
            return Ok(());
        }
        let params = SearchParams::new(k).with_budget(budget);
        let hits = filter.run(|view| {
            ix.search_batch_filtered(qs, &params, shard_filter(view))
                .map_err(batch_err)
        })?;
        // SAFETY: forwarded from the caller (sizes checked above).
        unsafe { write_batch(&hits, k, out_labels, out_distances, out_counts) }
    })
}

/// Every item whose global label `filter` allows (NULL `filter`: every item) within
/// distance `radius` of one query of `dim` floats, over all shards (as FAISS'
/// range_search), nearest first, ties by label, at most `max_results` of them, into the
/// caller's `out_labels[max_results]` and `out_distances[max_results]` (may be NULL),
/// the count in `*out_count`; `*out_truncated` (may be NULL) is set to 1 when more items
/// were within the radius than `max_results` (the nearest are kept), else 0. Distances
/// are those of the metric (Euclidean: not squared; angular: `1 - cos` in [0, 2]). Each
/// shard's candidates are its `max_results + 1` nearest allowed items at `budget` (0:
/// the default), as `panns_index_range_search`; the merge is exact (the union of every
/// shard's items within the radius, sorted, cut to `max_results`, flagged when a shard
/// or the union held more), so the answer is approximate only where a shard's search
/// is: it is exact when the budget covers half of each shard's (allowed) items. The
/// filter is planned as in `panns_sharded_search_filtered` (an empty allow-list gives 0
/// results); a predicate is called from the shards' search threads, several at once,
/// and never after it aborted. Errors: those of `panns_sharded_search_filtered`, plus
/// `PANNS_INVALID_ARGUMENT` for a negative or NaN radius or `max_results = 0`. Any
/// number of threads may search one handle at once. Ownership: every pointer is
/// borrowed for the call only.
///
/// # Safety
/// As `panns_sharded_search_filtered` with `k = max_results`; `out_truncated` NULL or
/// writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn panns_sharded_range_search(
    idx: *const PannsShardedIndex,
    query: *const f32,
    dim: usize,
    radius: f32,
    max_results: usize,
    budget: usize,
    filter: *const PannsLabelFilter,
    out_labels: *mut u64,
    out_distances: *mut f32,
    out_count: *mut usize,
    out_truncated: *mut u8,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let ix = unsafe { sharded_ref(idx) }?;
        // SAFETY: forwarded from the caller (`max_results` stands for k; 0 is refused by
        // the range search with its own name).
        let q = unsafe {
            query_args(
                ix,
                query,
                dim,
                max_results.max(1),
                out_labels,
                out_distances,
                out_count,
            )
        }?;
        check_opt(out_truncated, "out_truncated")?;
        // SAFETY: forwarded from the caller.
        let filter = unsafe { check_filter(filter) }?;
        let (hits, capped) = filter.run(|view| -> FfiResult<_> {
            Ok(ix.range_search(q, radius, max_results, budget, shard_filter(view))?)
        })?;
        // SAFETY: forwarded from the caller; `hits.len() <= max_results`.
        unsafe { write_hits(&hits, out_labels, out_distances, out_count) }?;
        // SAFETY: forwarded from the caller.
        unsafe { write_opt(out_truncated, u8::from(capped), "out_truncated") }
    })
}
