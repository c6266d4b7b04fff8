//! Filtered search and range search: `PannsFilter` and the functions taking it.
//!
//! A [`PannsFilter`] says which items a search may return: every item, an allow- or
//! deny-bitmap over the items, an allow- or deny-list of item ids, a predicate callback,
//! or an allow-list prepared once by `panns_allow_list_new` (`crate::allow_list`). The core's planner chooses per query: an exact scan over the allowed items
//! when few pass, else a filtered walk of the trees (and graph) that steps through
//! refused items but never returns them.
//!
//! A predicate callback returns 1 (or any positive value) to allow an item, 0 to refuse
//! it, and a negative value to abort the search: the call then returns
//! `PANNS_CALLBACK_FAILED` at once and the callback is not called again. The abort
//! unwinds out of the core's search with a private payload that only this module
//! catches (`catch_abort`); nothing unwinds through the caller's frames. The filtered
//! search of live indexes (`crate::live_filter`) uses the same `Callback` and
//! `catch_abort`.

use crate::allow_list::PannsAllowList;
use crate::error::{
    FfiError, FfiResult, PannsStatus, check_opt, check_ptr, guard, mul, slice, slice_mut, write_opt,
};
use crate::index::{PannsIndex, PannsSearchStats, check_k_dim, index_ref, query_args, write_hits};
use panns_core::{AllowList, Filter, Index, Neighbor, SearchParams, SearchStats};
use rayon::prelude::*;
use std::borrow::Cow;
use std::ffi::{c_int, c_void};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// A predicate over item ids: returns > 0 to allow item `id`, 0 to refuse it, < 0 to
/// abort the search (which then returns `PANNS_CALLBACK_FAILED`). It may call panns
/// functions (even searches of the same index), must not unwind or jump out (no C++
/// exception, no longjmp: return a negative value instead) and, for
/// `panns_index_search_batch_filtered`, must be safe to call from several threads at
/// once.
pub type PannsFilterFn = Option<unsafe extern "C" fn(id: u64, user_data: *mut c_void) -> c_int>;

/// The kinds of [`PannsFilter`] (the value of its `kind` field).
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PannsFilterKind {
    /// No filter: every item may be returned (the zero value of the struct).
    PANNS_FILTER_ALL = 0,
    /// Only items whose bit is set in `bits` (bit `i % 64` of word `i / 64` for item
    /// `i`; `n_bits` must equal the item count).
    PANNS_FILTER_ALLOW_BITMAP = 1,
    /// Every item except those whose bit is set in `bits` (e.g. deleted items).
    PANNS_FILTER_DENY_BITMAP = 2,
    /// Only the items listed in `ids[n_ids]` (any order, duplicates allowed).
    PANNS_FILTER_ALLOW_IDS = 3,
    /// Every item except those listed in `ids[n_ids]`.
    PANNS_FILTER_DENY_IDS = 4,
    /// Items for which `predicate(id, user_data)` returns > 0.
    PANNS_FILTER_PREDICATE = 5,
    /// The items of a prepared allow-list: `user_data` points to a `PannsAllowList` made by
    /// `panns_allow_list_new` for this index (same item count). The searches then skip
    /// counting and listing the allowed items on every call.
    PANNS_FILTER_ALLOW_LIST = 6,
}

/// Which items a search may return. Zero-initialise it (`PannsFilter f = {0};`: every
/// item), set `kind` and the fields that kind reads; the other fields are ignored. The
/// arrays are borrowed for the duration of the call only. Layout frozen: 56 bytes on
/// 64-bit platforms.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PannsFilter {
    /// A `PannsFilterKind` value.
    pub kind: u32,
    /// The bitmap of the `*_BITMAP` kinds: `(n_bits + 63) / 64` words, bit `i % 64` of
    /// word `i / 64` for item `i`; bits past `n_bits` are ignored.
    pub bits: *const u64,
    /// Bits in `bits`: must equal the item count (`panns_index_len`).
    pub n_bits: usize,
    /// The item ids of the `*_IDS` kinds (each below the item count).
    pub ids: *const u32,
    /// Entries in `ids` (0 is allowed: an empty allow-list returns no results).
    pub n_ids: usize,
    /// The callback of `PANNS_FILTER_PREDICATE`.
    pub predicate: PannsFilterFn,
    /// `PANNS_FILTER_PREDICATE`: passed unchanged to every `predicate` call.
    /// `PANNS_FILTER_ALLOW_LIST`: points to a `PannsAllowList` made by
    /// `panns_allow_list_new` for this index (read, never freed, by the search).
    pub user_data: *mut c_void,
}

/// The payload a callback's abort unwinds with (caught in [`catch_abort`], never
/// elsewhere).
struct Aborted;

/// A caller's predicate callback (of a [`PannsFilter`] over item ids or of a
/// `PannsLabelFilter` over labels), with the record of its first abort. Shared by every
/// filtered search of the C ABI; run the search under [`catch_abort`].
pub(crate) struct Callback {
    f: unsafe extern "C" fn(u64, *mut c_void) -> c_int,
    user_data: *mut c_void,
    /// What the callback is asked about ("item", "label"), for the error message.
    noun: &'static str,
    aborted: AtomicBool,
    first: Mutex<Option<(c_int, u64)>>,
}

// SAFETY: the pointers are only handed back to the caller's callback, which the
// contracts of `PannsFilterFn` and `PannsLabelFilterFn` require to be callable from the
// threads of a batch search; this type reads no memory through them.
unsafe impl Sync for Callback {}

impl Callback {
    /// The callback `f` with its `user_data`; `noun` names what it is asked about.
    pub(crate) fn new(
        f: unsafe extern "C" fn(u64, *mut c_void) -> c_int,
        user_data: *mut c_void,
        noun: &'static str,
    ) -> Self {
        Callback {
            f,
            user_data,
            noun,
            aborted: AtomicBool::new(false),
            first: Mutex::new(None),
        }
    }

    /// Asks the callback about `key` (an item id or a label); unwinds with [`Aborted`]
    /// when it (or an earlier call, on any thread) returned a negative value. Call it
    /// only under [`catch_abort`].
    pub(crate) fn allows(&self, key: u64) -> bool {
        if self.aborted.load(Ordering::Relaxed) {
            panic::resume_unwind(Box::new(Aborted));
        }
        // SAFETY: the caller guarantees a callable function and its user data.
        let r = unsafe { (self.f)(key, self.user_data) };
        if r < 0 {
            if let Ok(mut first) = self.first.lock() {
                first.get_or_insert((r, key));
            }
            self.aborted.store(true, Ordering::Relaxed);
            // `resume_unwind` runs no panic hook: nothing is printed.
            panic::resume_unwind(Box::new(Aborted));
        }
        r > 0
    }

    fn error(&self) -> FfiError {
        let first = self.first.lock().ok().and_then(|f| *f);
        let what = match first {
            Some((r, key)) => format!("returned {r} for {} {key}", self.noun),
            None => "returned a negative value".to_string(),
        };
        FfiError::new(
            PannsStatus::PANNS_CALLBACK_FAILED,
            format!("the filter's predicate callback {what}: search aborted"),
        )
    }
}

/// Runs `body`, in which `cb` (if any) is called; the abort of `cb` becomes
/// `PANNS_CALLBACK_FAILED`, any other panic keeps unwinding to the entry's guard.
pub(crate) fn catch_abort<T>(
    cb: Option<&Callback>,
    body: impl FnOnce() -> FfiResult<T>,
) -> FfiResult<T> {
    match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(r) => r,
        Err(payload) => match cb {
            Some(cb) if payload.is::<Aborted>() => Err(cb.error()),
            _ => panic::resume_unwind(payload),
        },
    }
}

/// A checked filter, owning what it had to build (a bitmap from an id list).
pub(crate) enum Checked<'a> {
    All,
    Allow(Cow<'a, [u64]>),
    Deny(Cow<'a, [u64]>),
    /// A prepared allow-list (`PANNS_FILTER_ALLOW_LIST`), made for `n` items.
    List(&'a AllowList),
    Predicate(Callback),
}

/// Checks `filter` (NULL: every item) against an index of `n` items.
///
/// # Safety
/// `filter` NULL or a readable `PannsFilter` whose arrays hold what its fields say (for
/// `PANNS_FILTER_ALLOW_LIST`, `user_data` NULL or a live `PannsAllowList`).
pub(crate) unsafe fn check_filter<'a>(
    filter: *const PannsFilter,
    n: usize,
) -> FfiResult<Checked<'a>> {
    check_opt(filter, "filter")?;
    // SAFETY: NULL or aligned (checked) and readable (the caller's guarantee).
    let Some(f) = (unsafe { filter.as_ref() }) else {
        return Ok(Checked::All);
    };
    use PannsFilterKind::*;
    let kind = f.kind;
    let bitmap = || -> FfiResult<Cow<'a, [u64]>> {
        if f.n_bits != n {
            return Err(FfiError::invalid(format!(
                "the filter bitmap holds {} bits, the index has {n} items: n_bits must \
                 equal the item count",
                f.n_bits
            )));
        }
        // SAFETY: the caller guarantees `(n_bits + 63) / 64` readable words.
        Ok(Cow::Borrowed(unsafe {
            slice(f.bits, n.div_ceil(64), "filter->bits")
        }?))
    };
    let ids = || -> FfiResult<Cow<'a, [u64]>> {
        let ids: &[u32] = if f.n_ids == 0 {
            &[]
        } else {
            // SAFETY: the caller guarantees `n_ids` readable ids.
            unsafe { slice(f.ids, f.n_ids, "filter->ids") }?
        };
        if let Some((at, &id)) = ids.iter().enumerate().find(|&(_, &id)| id as usize >= n) {
            return Err(FfiError::new(
                PannsStatus::PANNS_OUT_OF_RANGE,
                format!("filter id {id} (ids[{at}]) is not an item of the index (ids are 0..{n})"),
            ));
        }
        Ok(Cow::Owned(panns_core::bitmap(n, ids.iter().copied())))
    };
    Ok(match kind {
        k if k == PANNS_FILTER_ALL as u32 => Checked::All,
        k if k == PANNS_FILTER_ALLOW_BITMAP as u32 => Checked::Allow(bitmap()?),
        k if k == PANNS_FILTER_DENY_BITMAP as u32 => Checked::Deny(bitmap()?),
        k if k == PANNS_FILTER_ALLOW_IDS as u32 => Checked::Allow(ids()?),
        k if k == PANNS_FILTER_DENY_IDS as u32 => Checked::Deny(ids()?),
        k if k == PANNS_FILTER_PREDICATE as u32 => Checked::Predicate(Callback::new(
            f.predicate
                .ok_or_else(|| FfiError::null("filter->predicate"))?,
            f.user_data,
            "item",
        )),
        k if k == PANNS_FILTER_ALLOW_LIST as u32 => {
            let list = f.user_data as *const PannsAllowList;
            check_ptr(list, 1, "filter->user_data (the PannsAllowList)")?;
            // SAFETY: non-NULL and aligned (checked); the caller guarantees a live list.
            let list = &unsafe { &*list }.0;
            if list.items() != n {
                return Err(FfiError::invalid(format!(
                    "the filter's allow-list was made for an index of {} items; this one has \
                     {n}",
                    list.items()
                )));
            }
            Checked::List(list)
        }
        k => {
            return Err(FfiError::invalid(format!(
                "filter kind {k} is unknown (PANNS_FILTER_ALL = 0 .. PANNS_FILTER_ALLOW_LIST = 6)"
            )));
        }
    })
}

impl Checked<'_> {
    /// Runs `body` with the core's view of this filter; a callback's abort becomes
    /// `PANNS_CALLBACK_FAILED`, any other panic keeps unwinding to the entry's guard.
    fn run<T>(&self, body: impl FnOnce(&Filter<'_>) -> FfiResult<T>) -> FfiResult<T> {
        let allows = |id: u32| match self {
            Checked::Predicate(cb) => cb.allows(u64::from(id)),
            _ => true,
        };
        let (filter, cb) = match self {
            Checked::All => (Filter::All, None),
            Checked::Allow(b) => (Filter::Allow(b), None),
            Checked::Deny(b) => (Filter::Deny(b), None),
            Checked::List(l) => (Filter::List(l), None),
            Checked::Predicate(cb) => (Filter::Predicate(&allows), Some(cb)),
        };
        catch_abort(cb, || body(&filter))
    }
}

/// Writes a search's statistics (NULL `out`: nothing).
///
/// # Safety
/// `out` NULL or writable.
unsafe fn write_stats(out: *mut PannsSearchStats, stats: &SearchStats) -> FfiResult<()> {
    // SAFETY: forwarded from the caller.
    unsafe { write_opt(out, PannsSearchStats::from(stats), "out_stats") }
}

/// Approximate k nearest neighbours of one query among the items `filter` allows
/// (NULL `filter`: every item), nearest first, ties by id. Arguments and outputs as
/// `panns_index_search`; `*out_count` is `min(k, allowed items)` unless the allowed
/// items are too sparse for the budget to reach (raise the budget). An empty filter
/// gives `*out_count = 0`. The planner scans exactly the allowed items (known for
/// bitmaps, id lists and prepared allow-lists) when the budget covers half of them or, with a graph, when
/// a filtered walk would cost more (`allowed^2 <= 16 * budget * len`; with at most 1 item
/// in 6 allowed on 256-d or longer vectors, where the walk steps two hops over refused
/// items, `allowed <= 80 * budget`), else walks the trees (and graph) counting only allowed items. `out_stats` may be NULL; otherwise it receives
/// what the search did (`exact_scan` is 1 for the exact scan over the allowed items).
/// Errors: those of `panns_index_search`, plus `PANNS_INVALID_ARGUMENT` (unknown
/// filter kind, `n_bits` not the item count, an allow-list made for an index of another
/// item count), `PANNS_NULL_POINTER` (a NULL array, predicate or allow-list the kind
/// needs), `PANNS_OUT_OF_RANGE` (an id of the list not below the
/// item count), `PANNS_CALLBACK_FAILED` (the predicate returned a negative value; no
/// result is written). The predicate is called only from the calling thread.
///
/// # Safety
/// As `panns_index_search`; `filter` NULL or a valid `PannsFilter` whose arrays hold
/// what its fields say; `out_stats` NULL or writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn panns_index_search_filtered(
    idx: *const PannsIndex,
    query: *const f32,
    dim: usize,
    k: usize,
    budget: usize,
    filter: *const PannsFilter,
    out_ids: *mut u32,
    out_distances: *mut f32,
    out_count: *mut usize,
    out_stats: *mut PannsSearchStats,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let view = &unsafe { index_ref(idx) }?.0;
        // SAFETY: forwarded from the caller.
        let q = unsafe { query_args(view, query, dim, k, out_ids, out_distances, out_count) }?;
        check_opt(out_stats, "out_stats")?;
        // SAFETY: forwarded from the caller.
        let filter = unsafe { check_filter(filter, view.len()) }?;
        let params = SearchParams::new(k).with_budget(budget);
        let (hits, stats) = filter.run(|f| Ok(view.search_filtered(q, &params, f)?))?;
        // SAFETY: forwarded from the caller; `hits.len() <= k`.
        unsafe { write_hits(&hits, out_ids, out_distances, out_count) }?;
        // SAFETY: forwarded from the caller.
        unsafe { write_stats(out_stats, &stats) }
    })
}

/// One query row of a batch: the search, with its row named in any error.
fn search_row(
    view: &Index,
    q: &[f32],
    params: &SearchParams,
    f: &Filter<'_>,
    row: usize,
) -> FfiResult<Vec<Neighbor>> {
    view.search_filtered(q, params, f)
        .map(|r| r.0)
        .map_err(|e| FfiError::from(e).context(format_args!("query row {row}")))
}

/// `panns_index_search_filtered` for `n_queries` row-major queries of `dim` floats
/// each, in parallel on all cores, with one filter for all of them. Outputs as
/// `panns_index_search_batch`: `out_ids` and `out_distances` (may be NULL) hold
/// `n_queries * k` entries, row `i` at `i * k`, a row with fewer than `k` results
/// padded with id `UINT32_MAX` and distance `INFINITY`; `out_counts` (may be NULL)
/// receives the number of results of each row. `n_queries = 0` is a successful no-op.
/// Errors as `panns_index_search_filtered`; the message names the first offending
/// query row, and the outputs are then unspecified. A predicate is called from several
/// threads at once and must be thread-safe; after it aborts, the other rows stop at
/// their next call.
///
/// # Safety
/// `idx` NULL or a live index; `queries` NULL or `n_queries * dim` floats; `filter` as
/// in `panns_index_search_filtered`; `out_ids` NULL or room for `n_queries * k` ids;
/// `out_distances` NULL or room for `n_queries * k` floats; `out_counts` NULL or room
/// for `n_queries` sizes.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn panns_index_search_batch_filtered(
    idx: *const PannsIndex,
    queries: *const f32,
    n_queries: usize,
    dim: usize,
    k: usize,
    budget: usize,
    filter: *const PannsFilter,
    out_ids: *mut u32,
    out_distances: *mut f32,
    out_counts: *mut usize,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let view = &unsafe { index_ref(idx) }?.0;
        let n_in = mul(n_queries, dim, "n_queries * dim")?;
        let n_out = mul(n_queries, k, "n_queries * k")?;
        // SAFETY: forwarded from the caller.
        let qs = unsafe { slice(queries, n_in, "queries") }?;
        check_ptr(out_ids, n_out, "out_ids")?;
        if !out_distances.is_null() {
            check_ptr(out_distances, n_out, "out_distances")?;
        }
        if !out_counts.is_null() {
            check_ptr(out_counts, n_queries, "out_counts")?;
        }
        check_k_dim(view, k, dim)?;
        // SAFETY: forwarded from the caller.
        let filter = unsafe { check_filter(filter, view.len()) }?;
        if n_queries == 0 {
            return Ok(());
        }
        let params = SearchParams::new(k).with_budget(budget);
        let rows: Vec<FfiResult<Vec<Neighbor>>> = filter.run(|f| {
            Ok(qs
                .par_chunks(dim)
                .enumerate()
                .map(|(r, q)| search_row(view, q, &params, f, r))
                .collect())
        })?;
        // SAFETY: forwarded from the caller (room for `n_queries * k` ids).
        let ids = unsafe { slice_mut(out_ids, n_out, "out_ids") }?;
        let mut distances = if out_distances.is_null() {
            None
        } else {
            // SAFETY: forwarded from the caller (room for `n_queries * k` floats).
            Some(unsafe { slice_mut(out_distances, n_out, "out_distances") }?)
        };
        let mut counts = if out_counts.is_null() {
            None
        } else {
            // SAFETY: forwarded from the caller (room for `n_queries` sizes).
            Some(unsafe { slice_mut(out_counts, n_queries, "out_counts") }?)
        };
        for (r, hits) in rows.into_iter().enumerate() {
            let hits = hits?;
            let (a, b) = (r * k, (r + 1) * k);
            for (j, o) in ids[a..b].iter_mut().enumerate() {
                *o = hits.get(j).map_or(u32::MAX, |h| h.id);
            }
            if let Some(d) = distances.as_deref_mut() {
                for (j, o) in d[a..b].iter_mut().enumerate() {
                    *o = hits.get(j).map_or(f32::INFINITY, |h| h.distance);
                }
            }
            if let Some(c) = counts.as_deref_mut() {
                c[r] = hits.len();
            }
        }
        Ok(())
    })
}

/// Every allowed item within distance `radius` of one query (as FAISS' range_search),
/// nearest first, at most `max_results` of them, into the caller's
/// `out_ids[max_results]` and `out_distances[max_results]` (may be NULL), the count in
/// `*out_count`; `*out_truncated` (may be NULL) is set to 1 when more items were within
/// the radius than `max_results` (the nearest are kept), else 0. Distances are those of
/// the index metric (Euclidean: not squared; angular: `1 - cos` in [0, 2]). Candidates
/// come from the same search as `panns_index_search_filtered` with
/// `k = max_results + 1` and `budget` (0: the default), so the answer is approximate
/// unless the budget covers half the (allowed) items, when it is exact. `filter` may be
/// NULL (every item). Errors: those of `panns_index_search_filtered`, plus
/// `PANNS_INVALID_ARGUMENT` for a negative or NaN radius or `max_results = 0`.
///
/// # Safety
/// As `panns_index_search_filtered` with `k = max_results`; `out_truncated` NULL or
/// writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn panns_index_range_search(
    idx: *const PannsIndex,
    query: *const f32,
    dim: usize,
    radius: f32,
    max_results: usize,
    budget: usize,
    filter: *const PannsFilter,
    out_ids: *mut u32,
    out_distances: *mut f32,
    out_count: *mut usize,
    out_truncated: *mut u8,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let view = &unsafe { index_ref(idx) }?.0;
        if radius.is_nan() || radius < 0.0 {
            return Err(FfiError::invalid(format!(
                "radius = {radius}: must be a number >= 0"
            )));
        }
        if max_results == 0 {
            return Err(FfiError::invalid("max_results = 0: must be at least 1"));
        }
        // SAFETY: forwarded from the caller.
        let q = unsafe {
            query_args(
                view,
                query,
                dim,
                max_results,
                out_ids,
                out_distances,
                out_count,
            )
        }?;
        check_opt(out_truncated, "out_truncated")?;
        // SAFETY: forwarded from the caller.
        let filter = unsafe { check_filter(filter, view.len()) }?;
        // One more than the cap tells whether the cap was hit.
        let params = SearchParams::new(max_results.saturating_add(1)).with_budget(budget);
        let (hits, _) = filter.run(|f| Ok(view.search_filtered(q, &params, f)?))?;
        let mut within: Vec<Neighbor> = hits.into_iter().filter(|h| h.distance <= radius).collect();
        let truncated = within.len() > max_results;
        within.truncate(max_results);
        // SAFETY: forwarded from the caller; `within.len() <= max_results`.
        unsafe { write_hits(&within, out_ids, out_distances, out_count) }?;
        // SAFETY: forwarded from the caller.
        unsafe { write_opt(out_truncated, u8::from(truncated), "out_truncated") }
    })
}
