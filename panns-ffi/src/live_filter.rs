//! Filtered search of a live index: `PannsLabelFilter` and the functions taking it.
//!
//! A [`PannsLabelFilter`] says which labels a search of a `PannsLive` may return: every
//! label, an allow- or deny-list of labels, or a predicate callback over labels (Rust:
//! `panns_io::LiveIndex::search_labels` for an allow-list, `search_filtered` otherwise).
//! An allow-list is planned like a bitmap on a plain index: its live base items are
//! counted, and an exact scan of them is chosen when few are listed; a deny-list or a
//! predicate walks the base with the filter (refused and removed items are stepped
//! through, never returned), so a very selective predicate needs a large budget.
//!
//! A predicate's abort works as for `PannsFilter` (one implementation, in
//! `crate::filter`): a negative return value stops the search, which returns
//! `PANNS_CALLBACK_FAILED`, and the callback is not called again.

use crate::error::{FfiError, FfiResult, PannsStatus, check_opt, check_ptr, guard, slice};
use crate::filter::{Callback, catch_abort};
use crate::live::{PannsLive, batch_args, live_ref, query_args, write_batch, write_hits};
use panns_core::SearchParams;
use panns_io::LiveIndex;
use panns_io::live::LabelFilter;
use rayon::prelude::*;
use std::collections::HashSet;
use std::ffi::{c_int, c_void};

/// A predicate over labels: returns > 0 to allow the item of `label`, 0 to refuse it,
/// < 0 to abort the search (which then returns `PANNS_CALLBACK_FAILED`). Same contract
/// as `PannsFilterFn`: it may call panns functions (even searches of the same live
/// index), must not unwind or jump out (no C++ exception, no longjmp: return a negative
/// value instead) and, for `panns_live_search_batch_filtered`, must be safe to call from
/// several threads at once.
pub type PannsLabelFilterFn =
    Option<unsafe extern "C" fn(label: u64, user_data: *mut c_void) -> c_int>;

/// The kinds of [`PannsLabelFilter`] (the value of its `kind` field).
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PannsLabelFilterKind {
    /// No filter: every live item may be returned (the zero value of the struct).
    PANNS_LABEL_FILTER_ALL = 0,
    /// Only the items whose label is listed in `labels[n_labels]` (any order,
    /// duplicates allowed). A listed label that the index does not hold (never added,
    /// or removed) simply matches nothing; an empty list gives no results.
    PANNS_LABEL_FILTER_ALLOW_LABELS = 1,
    /// Every live item except those whose label is listed in `labels[n_labels]` (labels
    /// not held are ignored; an empty list allows every item).
    PANNS_LABEL_FILTER_DENY_LABELS = 2,
    /// The items for which `predicate(label, user_data)` returns > 0.
    PANNS_LABEL_FILTER_PREDICATE = 3,
}

/// Which labels a live-index search may return. Zero-initialise it
/// (`PannsLabelFilter f = {0};`: every label), set `kind` and the fields that kind
/// reads; the other fields are ignored. The list is borrowed for the duration of the
/// call only (copied into a set before the search). Layout frozen: 40 bytes on 64-bit
/// platforms.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PannsLabelFilter {
    /// A `PannsLabelFilterKind` value.
    pub kind: u32,
    /// The labels of `PANNS_LABEL_FILTER_ALLOW_LABELS` / `PANNS_LABEL_FILTER_DENY_LABELS`
    /// (may be NULL when `n_labels` is 0).
    pub labels: *const u64,
    /// Entries in `labels`.
    pub n_labels: usize,
    /// The callback of `PANNS_LABEL_FILTER_PREDICATE`.
    pub predicate: PannsLabelFilterFn,
    /// Passed unchanged to every `predicate` call.
    pub user_data: *mut c_void,
}

/// A checked label filter, owning the list or set it copied.
pub(crate) enum Checked {
    All,
    Allow(Vec<u64>),
    Deny(HashSet<u64>),
    Predicate(Callback),
}

/// Checks `filter` (NULL: every label) and copies its list into a set.
///
/// # Safety
/// `filter` NULL or a readable `PannsLabelFilter` whose `labels` hold `n_labels` labels.
pub(crate) unsafe fn check_filter(filter: *const PannsLabelFilter) -> FfiResult<Checked> {
    check_opt(filter, "filter")?;
    // SAFETY: NULL or aligned (checked) and readable (the caller's guarantee).
    let Some(f) = (unsafe { filter.as_ref() }) else {
        return Ok(Checked::All);
    };
    use PannsLabelFilterKind::*;
    let labels = || -> FfiResult<Vec<u64>> {
        if f.n_labels == 0 {
            return Ok(Vec::new());
        }
        // SAFETY: the caller guarantees `n_labels` readable labels.
        Ok(unsafe { slice(f.labels, f.n_labels, "filter->labels") }?.to_vec())
    };
    Ok(match f.kind {
        k if k == PANNS_LABEL_FILTER_ALL as u32 => Checked::All,
        k if k == PANNS_LABEL_FILTER_ALLOW_LABELS as u32 => Checked::Allow(labels()?),
        k if k == PANNS_LABEL_FILTER_DENY_LABELS as u32 => {
            Checked::Deny(labels()?.into_iter().collect())
        }
        k if k == PANNS_LABEL_FILTER_PREDICATE as u32 => Checked::Predicate(Callback::new(
            f.predicate
                .ok_or_else(|| FfiError::null("filter->predicate"))?,
            f.user_data,
            "label",
        )),
        k => {
            return Err(FfiError::invalid(format!(
                "label filter kind {k} is unknown (PANNS_LABEL_FILTER_ALL = 0 .. \
                 PANNS_LABEL_FILTER_PREDICATE = 3)"
            )));
        }
    })
}

impl Checked {
    /// Runs `body` with the live index's view of this filter (`None`: every label); a
    /// predicate's abort becomes `PANNS_CALLBACK_FAILED`, any other panic keeps unwinding
    /// to the entry's guard.
    pub(crate) fn run<T>(&self, body: impl FnOnce(View<'_>) -> FfiResult<T>) -> FfiResult<T> {
        match self {
            Checked::All => body(View::All),
            Checked::Deny(set) if set.is_empty() => body(View::All),
            Checked::Allow(list) => body(View::Labels(list)),
            Checked::Deny(set) => body(View::Predicate(&|label: u64| !set.contains(&label))),
            Checked::Predicate(cb) => catch_abort(Some(cb), || {
                body(View::Predicate(&|label: u64| cb.allows(label)))
            }),
        }
    }
}

/// What a search is given: every label, an allow-list, or a predicate.
#[derive(Clone, Copy)]
pub(crate) enum View<'a> {
    All,
    Labels(&'a [u64]),
    Predicate(&'a LabelFilter<'a>),
}

/// One query: the live index's search, filtered when a filter is given.
fn search_one(
    live: &LiveIndex,
    q: &[f32],
    params: &SearchParams,
    view: View<'_>,
) -> FfiResult<Vec<(u64, f32)>> {
    Ok(match view {
        View::All => live.search(q, params)?,
        View::Labels(list) => live.search_labels(q, params, list)?.0,
        View::Predicate(f) => live.search_filtered(q, params, f)?.0,
    })
}

/// Approximate k nearest live items to one query among those whose label `filter`
/// allows (NULL `filter`: every item, exactly as `panns_live_search`), nearest first
/// (ties by label). Arguments and outputs as `panns_live_search`: up to `k` labels in
/// `labels_out[k]`, their distances in `distances_out[k]` (may be NULL), the number
/// written in `*n_found`. That number is `min(k, allowed live items)` unless the allowed
/// items are too sparse for the budget to reach: an allow-list is planned (an exact
/// scan of its listed items when few are listed), a deny-list or a predicate walks the
/// base with the filter (raise the budget for a selective predicate); an empty
/// allow-list gives `*n_found = 0`. A removed label is never returned,
/// even if the filter allows it. Any number of threads may search one handle at once;
/// the predicate is called only from the calling thread, once per candidate, and never
/// after it aborted. Errors: those of `panns_live_search`, plus
/// `PANNS_INVALID_ARGUMENT` (unknown filter kind), `PANNS_NULL_POINTER` (a NULL
/// `labels` with `n_labels` > 0, a NULL predicate for `PANNS_LABEL_FILTER_PREDICATE`),
/// `PANNS_CALLBACK_FAILED` (the predicate returned a negative value; no result is
/// written). Ownership: every pointer is borrowed for the call only.
///
/// # Safety
/// As `panns_live_search`; `filter` NULL or a valid `PannsLabelFilter` whose `labels`
/// hold `n_labels` labels and whose predicate is callable with its `user_data`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn panns_live_search_filtered(
    live: *const PannsLive,
    query: *const f32,
    dim: usize,
    k: usize,
    budget: usize,
    filter: *const PannsLabelFilter,
    labels_out: *mut u64,
    distances_out: *mut f32,
    n_found: *mut usize,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let live = unsafe { live_ref(live) }?;
        // SAFETY: forwarded from the caller.
        let q = unsafe { query_args(live, query, dim, k, labels_out, distances_out, n_found) }?;
        // SAFETY: forwarded from the caller.
        let filter = unsafe { check_filter(filter) }?;
        let params = SearchParams::new(k).with_budget(budget);
        let hits = filter.run(|allow| search_one(live, q, &params, allow))?;
        // SAFETY: forwarded from the caller; `hits.len() <= k`.
        unsafe { write_hits(&hits, labels_out, distances_out, n_found) }
    })
}

/// `panns_live_search_filtered` for `n_queries` row-major queries of `dim` floats each,
/// in parallel on the library's worker threads, with one filter for all of them.
/// Outputs as `panns_live_search_batch`: `labels_out` and `distances_out` (may be NULL)
/// hold `n_queries * k` entries, row `i` at `i * k`, a row with fewer than `k` results
/// padded with label `UINT64_MAX` and distance `INFINITY`; `counts_out` (may be NULL)
/// receives the number of results of each row (use it: a filter often leaves rows
/// short, and `UINT64_MAX` may be a real label). `n_queries = 0` is a successful no-op
/// (the pointers must still be non-NULL). Errors as `panns_live_search_filtered`; every
/// query is checked before any is searched and the message names the first offending
/// row. After an error the outputs are unspecified. Any number of threads may call it on
/// one handle at once. A predicate is called from several threads at once and must be
/// thread-safe; after it aborts, the other rows stop at their next call. Ownership:
/// every pointer is borrowed for the call only.
///
/// # Safety
/// `live` NULL or a live handle; `queries` NULL or `n_queries * dim` floats; `filter`
/// as in `panns_live_search_filtered`; `labels_out` NULL or room for `n_queries * k`
/// labels; `distances_out` NULL or room for `n_queries * k` floats; `counts_out` NULL
/// or room for `n_queries` sizes.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn panns_live_search_batch_filtered(
    live: *const PannsLive,
    queries: *const f32,
    n_queries: usize,
    dim: usize,
    k: usize,
    budget: usize,
    filter: *const PannsLabelFilter,
    labels_out: *mut u64,
    distances_out: *mut f32,
    counts_out: *mut usize,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let live = unsafe { live_ref(live) }?;
        // SAFETY: forwarded from the caller.
        let qs =
            unsafe { batch_args(live, queries, n_queries, dim, k, labels_out, distances_out) }?;
        if !counts_out.is_null() {
            check_ptr(counts_out, n_queries, "counts_out")?;
        }
        // SAFETY: forwarded from the caller.
        let filter = unsafe { check_filter(filter) }?;
        if n_queries == 0 {
            return Ok(());
        }
        let params = SearchParams::new(k).with_budget(budget);
        let hits = filter.run(|allow| {
            qs.par_chunks(dim)
                .enumerate()
                .map(|(r, q)| {
                    search_one(live, q, &params, allow)
                        .map_err(|e| e.context(format_args!("query row {r}")))
                })
                .collect::<FfiResult<Vec<_>>>()
        })?;
        // SAFETY: forwarded from the caller (sizes checked by `batch_args`).
        unsafe { write_batch(&hits, k, labels_out, distances_out, counts_out) }
    })
}
