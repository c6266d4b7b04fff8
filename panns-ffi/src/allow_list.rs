//! `PannsAllowList`: a filter prepared once for many searches of one index.
//!
//! `panns_allow_list_new` turns any non-predicate `PannsFilter` into the core's
//! [`AllowList`] (a bitmap plus the ascending allowed ids; a deny kind is inverted once
//! here). A search under `PANNS_FILTER_ALLOW_LIST`, with `user_data` pointing to the list,
//! then skips counting and listing the allowed items on every call, which is most of the
//! per-query cost of a selective filter answered by an exact scan.

use crate::error::{FfiError, FfiResult, PannsStatus, check_opt, check_ptr, guard, guard_value};
use crate::filter::{Checked, PannsFilter, PannsFilterKind, check_filter};
use crate::index::{PannsIndex, index_ref};
use panns_core::AllowList;

/// An allow-list prepared once for many searches of one index: made by
/// `panns_allow_list_new`, freed by `panns_allow_list_free`, passed to searches as a
/// `PannsFilter` of kind `PANNS_FILTER_ALLOW_LIST` with `user_data` pointing to it.
/// Opaque and immutable: any number of threads may search with one list at once (it
/// must stay alive, i.e. not be freed, while they do). It holds no reference to the
/// index: it may outlive it, and serves any index of the same item count.
pub struct PannsAllowList(pub AllowList);

/// Borrows an allow-list handle.
///
/// # Safety
/// `list` must be NULL or a live pointer from `panns_allow_list_new`.
unsafe fn list_ref<'a>(list: *const PannsAllowList) -> Option<&'a AllowList> {
    // SAFETY: the caller guarantees NULL or a live handle; `as_ref` handles NULL.
    unsafe { list.as_ref() }.map(|l| &l.0)
}

/// The allow-list of a checked filter over `n` items.
fn prepare(filter: Checked<'_>, n: usize) -> FfiResult<AllowList> {
    let invert = |bits: &[u64]| bits.iter().map(|w| !w).collect::<Vec<u64>>();
    let list = match filter {
        Checked::All => AllowList::from_bits(n, vec![u64::MAX; n.div_ceil(64)]),
        Checked::Allow(bits) => AllowList::from_bits(n, bits.into_owned()),
        Checked::Deny(bits) => AllowList::from_bits(n, invert(&bits)),
        Checked::List(list) => Ok(list.clone()),
        Checked::Predicate(_) => return Err(predicate_refused()),
    };
    Ok(list?)
}

/// The error of preparing a predicate.
fn predicate_refused() -> FfiError {
    FfiError::invalid(
        "a PANNS_FILTER_PREDICATE filter cannot be prepared into an allow-list (its items are \
         known only by calling it); pass it to the search directly",
    )
}

/// Prepares `filter` (NULL: every item) for many searches of `index` and stores the new
/// list in `*out` (set to NULL on failure; free it with `panns_allow_list_free`). Every
/// kind but `PANNS_FILTER_PREDICATE` can be prepared: `PANNS_FILTER_ALL` gives every
/// item, the `*_BITMAP` and `*_IDS` kinds their allowed items (a deny kind is inverted
/// once, here), `PANNS_FILTER_ALLOW_LIST` a copy of its list. The filter's arrays are
/// read during the call only (the list owns its own copy). Then pass the list as a
/// `PannsFilter` of kind `PANNS_FILTER_ALLOW_LIST` with `user_data` pointing to it to
/// `panns_index_search_filtered`, `panns_index_search_batch_filtered` or
/// `panns_index_range_search` of this index: the results and statistics are those of
/// the filter it was made from, without counting and listing the allowed items on every
/// call. Any thread may call it, also during searches of the index. Errors:
/// `PANNS_NULL_POINTER` (NULL index or `out`, a NULL array the kind needs),
/// `PANNS_INVALID_ARGUMENT` (`PANNS_FILTER_PREDICATE`, which cannot be prepared; an
/// unknown kind; `n_bits` not the item count; an allow-list made for another item
/// count), `PANNS_OUT_OF_RANGE` (an id not below the item count).
///
/// # Safety
/// `index` NULL or a live index; `filter` NULL or a valid `PannsFilter` whose arrays hold
/// what its fields say; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_allow_list_new(
    index: *const PannsIndex,
    filter: *const PannsFilter,
    out: *mut *mut PannsAllowList,
) -> PannsStatus {
    guard(|| {
        check_ptr(out, 1, "out")?;
        // SAFETY: checked non-NULL and aligned; the caller guarantees it is writable.
        unsafe { out.write(std::ptr::null_mut()) };
        // SAFETY: forwarded from the caller.
        let n = unsafe { index_ref(index) }?.0.len();
        check_opt(filter, "filter")?;
        // SAFETY: NULL or aligned (checked) and readable (the caller's guarantee).
        if let Some(f) = unsafe { filter.as_ref() }
            && f.kind == PannsFilterKind::PANNS_FILTER_PREDICATE as u32
        {
            return Err(predicate_refused());
        }
        // SAFETY: forwarded from the caller.
        let checked = unsafe { check_filter(filter, n) }?;
        let list = prepare(checked, n)?;
        let handle = Box::into_raw(Box::new(PannsAllowList(list)));
        // SAFETY: as above.
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// Number of items the list allows (0 for NULL). Any thread, any time while the list
/// lives.
///
/// # Safety
/// `list` must be NULL or a live allow-list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_allow_list_len(list: *const PannsAllowList) -> usize {
    // SAFETY: forwarded from the caller.
    guard_value(0, || unsafe { list_ref(list) }.map_or(0, AllowList::len))
}

/// Item count of the index the list was made for (0 for NULL): a search accepts the
/// list only for an index of this many items. Any thread, any time while the list lives.
///
/// # Safety
/// `list` must be NULL or a live allow-list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_allow_list_items(list: *const PannsAllowList) -> usize {
    // SAFETY: forwarded from the caller.
    guard_value(0, || unsafe { list_ref(list) }.map_or(0, AllowList::items))
}

/// Frees an allow-list (NULL is a no-op). No search may be using it: free it only after
/// every search given it has returned.
///
/// # Safety
/// `list` must be NULL or a live allow-list not used by any thread afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_allow_list_free(list: *mut PannsAllowList) {
    guard_value((), || {
        if !list.is_null() {
            // SAFETY: the caller guarantees a live handle from `Box::into_raw` that is
            // not used again.
            drop(unsafe { Box::from_raw(list) });
        }
    })
}
