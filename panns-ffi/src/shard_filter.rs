//! Filtered search of a sharded index by global labels: `panns_sharded_search_filtered`,
//! taking the `PannsLabelFilter` of live indexes (see `crate::live_filter`).
//!
//! An allow-list is planned per shard like a bitmap on a plain index
//! (`panns_io::ShardedIndex::search_labels`): each shard counts its listed items and
//! scans them exactly when few are listed, and shards holding none are not searched. A
//! deny-list or a predicate walks every shard with the filter
//! (`ShardedIndex::search_filtered`).

use crate::error::{FfiResult, PannsStatus, guard};
use crate::live::write_hits;
use crate::live_filter::{PannsLabelFilter, View, check_filter};
use crate::shard::{PannsShardedIndex, query_args, sharded_ref};
use panns_core::SearchParams;

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
            Ok(match view {
                View::All => ix.search(q, &params)?,
                View::Labels(list) => ix.search_labels(q, &params, list)?.0,
                View::Predicate(f) => ix.search_filtered(q, &params, f)?.0,
            })
        })?;
        // SAFETY: forwarded from the caller; `hits.len() <= k`.
        unsafe { write_hits(&hits, out_labels, out_distances, out_count) }
    })
}
