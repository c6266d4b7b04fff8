//! `PannsShardedIndex`: several index files named by a manifest, searched as one with an
//! exact top-k merge (see `panns_io::ShardedIndex` and docs/format.md, "Sharded indexes").

use crate::error::{
    FfiError, FfiResult, PannsStatus, check_ptr, guard, guard_value, mul, path_arg, slice,
    slice_mut,
};
use crate::live::write_hits;
use panns_core::SearchParams;
use panns_io::ShardedIndex;
use std::ffi::c_char;

/// A sharded index: the shard files of a manifest, memory-mapped. Opaque; made by
/// `panns_sharded_open`, freed by `panns_sharded_free`. Every function taking a
/// `const PannsShardedIndex *` may run on many threads at once. Results carry
/// 64-bit **labels** (the item's row in the concatenation of the shards, or the label
/// stored in its shard file), not shard-local ids.
pub struct PannsShardedIndex(pub ShardedIndex);

/// Borrows a sharded index handle.
///
/// # Safety
/// `idx` must be NULL or a live pointer from `panns_sharded_open`.
pub(crate) unsafe fn sharded_ref<'a>(idx: *const PannsShardedIndex) -> FfiResult<&'a ShardedIndex> {
    // SAFETY: the caller guarantees NULL or a live handle; `as_ref` handles NULL.
    unsafe { idx.as_ref() }
        .map(|h| &h.0)
        .ok_or_else(|| FfiError::null("index"))
}

/// Opens the shard manifest at `manifest_path` (every shard file memory-mapped) and
/// stores the handle in `*out` (set to NULL on failure). `flags`: 0 or
/// `PANNS_OPEN_VERIFY` (hash every shard file and check its values). Refused, with a
/// message naming the shard: a missing or damaged shard, a shard whose metric,
/// dimension, item count or header checksum differs from the manifest, labels held
/// twice. Errors: `PANNS_NULL_POINTER`, `PANNS_INVALID_ARGUMENT` (unknown flag bits,
/// bad path), `PANNS_IO`, `PANNS_CORRUPT`, `PANNS_UNSUPPORTED`.
///
/// # Safety
/// `manifest_path` must be NULL or a NUL-terminated string; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_sharded_open(
    manifest_path: *const c_char,
    flags: u32,
    out: *mut *mut PannsShardedIndex,
) -> PannsStatus {
    guard(|| {
        check_ptr(out, 1, "out")?;
        // SAFETY: checked non-NULL and aligned; the caller guarantees it is writable.
        unsafe { out.write(std::ptr::null_mut()) };
        // SAFETY: forwarded from the caller.
        let path = unsafe { path_arg(manifest_path, "manifest_path") }?;
        let opts = open_flags(flags)?;
        let index = ShardedIndex::open(path, &opts)?;
        let handle = Box::into_raw(Box::new(PannsShardedIndex(index)));
        // SAFETY: as above.
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// Opens only the shards at positions `shards[0..n_shards]` of the manifest (e.g. the
/// ones one server of a cluster holds) and stores the handle in `*out` (NULL on
/// failure). Labels stay global: merging the results of servers holding disjoint
/// subsets by (distance, label) and keeping k gives exactly the answer of the whole
/// manifest. `flags` and errors as `panns_sharded_open`; a position out of range or
/// given twice is `PANNS_INVALID_ARGUMENT`.
///
/// # Safety
/// `manifest_path` NULL or a NUL-terminated string; `shards` NULL or `n_shards`
/// readable `size_t`; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_sharded_open_subset(
    manifest_path: *const c_char,
    shards: *const usize,
    n_shards: usize,
    flags: u32,
    out: *mut *mut PannsShardedIndex,
) -> PannsStatus {
    guard(|| {
        check_ptr(out, 1, "out")?;
        // SAFETY: checked non-NULL and aligned; the caller guarantees it is writable.
        unsafe { out.write(std::ptr::null_mut()) };
        // SAFETY: forwarded from the caller.
        let path = unsafe { path_arg(manifest_path, "manifest_path") }?;
        // SAFETY: forwarded from the caller.
        let which = unsafe { slice(shards, n_shards, "shards") }?;
        let opts = open_flags(flags)?;
        let index = ShardedIndex::open_subset(path, which, &opts)?;
        let handle = Box::into_raw(Box::new(PannsShardedIndex(index)));
        // SAFETY: as above.
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// Checks the flags of the open functions.
fn open_flags(flags: u32) -> FfiResult<panns_io::OpenOptions> {
    if flags & !crate::PANNS_OPEN_VERIFY != 0 {
        return Err(FfiError::invalid(format!(
            "unknown flag bits {:#x} (known: PANNS_OPEN_VERIFY = 1)",
            flags & !crate::PANNS_OPEN_VERIFY
        )));
    }
    Ok(panns_io::OpenOptions {
        verify_checksum: flags & crate::PANNS_OPEN_VERIFY != 0,
    })
}

/// Writes a manifest at `manifest_path` naming the `n_paths` index files `paths` (in
/// this order; all of one metric and dimension), atomically. Shards with a labels
/// section are labelled by it, the others by their row in the concatenation. Errors:
/// `PANNS_NULL_POINTER`, `PANNS_INVALID_ARGUMENT` (no paths, bad path), `PANNS_IO`,
/// `PANNS_CORRUPT` (a damaged shard, or shards that disagree; the message names it).
///
/// # Safety
/// `manifest_path` NULL or a NUL-terminated string; `paths` NULL or `n_paths` pointers,
/// each NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_sharded_write_manifest(
    manifest_path: *const c_char,
    paths: *const *const c_char,
    n_paths: usize,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let manifest = unsafe { path_arg(manifest_path, "manifest_path") }?;
        // SAFETY: forwarded from the caller.
        let ptrs = unsafe { slice(paths, n_paths, "paths") }?;
        let mut list = Vec::with_capacity(n_paths);
        for (i, &p) in ptrs.iter().enumerate() {
            // SAFETY: forwarded from the caller.
            list.push(unsafe { path_arg(p, &format!("paths[{i}]")) }?);
        }
        panns_io::write_manifest(manifest, &list)?;
        Ok(())
    })
}

/// Frees a sharded index (NULL is a no-op); unmaps its shard files.
///
/// # Safety
/// `idx` must be NULL or a live handle not used by any thread afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_sharded_free(idx: *mut PannsShardedIndex) {
    guard_value((), || {
        if !idx.is_null() {
            // SAFETY: the caller guarantees a live handle from `Box::into_raw`, not used
            // again.
            drop(unsafe { Box::from_raw(idx) });
        }
    })
}

/// Total items over all shards (0 for NULL).
///
/// # Safety
/// `idx` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_sharded_len(idx: *const PannsShardedIndex) -> usize {
    // SAFETY: forwarded from the caller.
    guard_value(0, || unsafe { sharded_ref(idx) }.map_or(0, |i| i.len()))
}

/// Vector dimension (0 for NULL).
///
/// # Safety
/// `idx` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_sharded_dim(idx: *const PannsShardedIndex) -> u32 {
    // SAFETY: forwarded from the caller.
    guard_value(0, || {
        unsafe { sharded_ref(idx) }.map_or(0, |i| i.dim() as u32)
    })
}

/// Metric code (a `PannsMetric` value; `UINT32_MAX` for NULL).
///
/// # Safety
/// `idx` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_sharded_metric(idx: *const PannsShardedIndex) -> u32 {
    guard_value(u32::MAX, || {
        // SAFETY: forwarded from the caller.
        unsafe { sharded_ref(idx) }.map_or(u32::MAX, |i| i.metric().code())
    })
}

/// Number of shards (0 for NULL).
///
/// # Safety
/// `idx` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_sharded_n_shards(idx: *const PannsShardedIndex) -> usize {
    // SAFETY: forwarded from the caller.
    guard_value(0, || {
        unsafe { sharded_ref(idx) }.map_or(0, |i| i.n_shards())
    })
}

/// Checks `k >= 1` and the query dimension.
pub(crate) fn check_k_dim(ix: &ShardedIndex, k: usize, dim: usize) -> FfiResult<()> {
    if k == 0 {
        return Err(panns_core::Error::InvalidK(0).into());
    }
    if dim != ix.dim() {
        return Err(panns_core::Error::DimensionMismatch {
            expected: ix.dim(),
            got: dim,
        }
        .into());
    }
    Ok(())
}

/// Checks one query's arguments as `panns_sharded_search` documents them and borrows the
/// query.
///
/// # Safety
/// `query` NULL or `dim` floats; the outputs NULL or as large as `k` (`out_count`: 1).
pub(crate) unsafe fn query_args<'a>(
    ix: &ShardedIndex,
    query: *const f32,
    dim: usize,
    k: usize,
    out_labels: *mut u64,
    out_distances: *mut f32,
    out_count: *mut usize,
) -> FfiResult<&'a [f32]> {
    if query.is_null() && dim == 0 {
        return Err(FfiError::new(
            PannsStatus::PANNS_DIMENSION_MISMATCH,
            format!(
                "the query is empty: expected {} components, got 0",
                ix.dim()
            ),
        ));
    }
    // SAFETY: forwarded from the caller.
    let q = unsafe { slice(query, dim, "query") }?;
    check_ptr(out_labels, k, "out_labels")?;
    if !out_distances.is_null() {
        check_ptr(out_distances, k, "out_distances")?;
    }
    check_ptr(out_count, 1, "out_count")?;
    check_k_dim(ix, k, dim)?;
    Ok(q)
}

/// The k nearest items to one query of `dim` floats over all shards, nearest first,
/// ties by label: exactly the merge of every shard's own top-k, each shard searched
/// with `budget` (0: the default; see `panns_index_search`) on its own thread. Writes
/// up to `k` labels to `out_labels[k]` and distances to `out_distances[k]` (may be
/// NULL), and the count, `min(k, len)`, to `*out_count`. Errors: `PANNS_NULL_POINTER`,
/// `PANNS_INVALID_ARGUMENT` (k = 0), `PANNS_DIMENSION_MISMATCH`, `PANNS_NON_FINITE`,
/// `PANNS_ZERO_VECTOR` (angular).
///
/// # Safety
/// `idx` NULL or a live handle; `query` NULL or `dim` floats; `out_labels` NULL or
/// room for `k` labels; `out_distances` NULL or room for `k` floats; `out_count` NULL
/// or writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn panns_sharded_search(
    idx: *const PannsShardedIndex,
    query: *const f32,
    dim: usize,
    k: usize,
    budget: usize,
    out_labels: *mut u64,
    out_distances: *mut f32,
    out_count: *mut usize,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let ix = unsafe { sharded_ref(idx) }?;
        // SAFETY: forwarded from the caller.
        let q = unsafe { query_args(ix, query, dim, k, out_labels, out_distances, out_count) }?;
        let hits = ix.search(q, &SearchParams::new(k).with_budget(budget))?;
        // SAFETY: forwarded from the caller; `hits.len() <= k`.
        unsafe { write_hits(&hits, out_labels, out_distances, out_count) }
    })
}

/// Searches `n_queries` row-major queries of `dim` floats each over all shards, in
/// parallel. `out_labels` and `out_distances` (may be NULL) hold `n_queries * k`
/// entries, row `i` at `i * k`; a row with fewer than `k` results is padded with label
/// `UINT64_MAX` and distance `INFINITY`. `n_queries = 0` is a successful no-op (the
/// pointers must still be non-NULL). Errors as `panns_sharded_search`; the message
/// names the first offending query row, and the buffers' contents are then
/// unspecified.
///
/// # Safety
/// `idx` NULL or a live handle; `queries` NULL or `n_queries * dim` floats;
/// `out_labels` NULL or room for `n_queries * k` labels; `out_distances` NULL or room
/// for `n_queries * k` floats.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn panns_sharded_search_batch(
    idx: *const PannsShardedIndex,
    queries: *const f32,
    n_queries: usize,
    dim: usize,
    k: usize,
    budget: usize,
    out_labels: *mut u64,
    out_distances: *mut f32,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let ix = unsafe { sharded_ref(idx) }?;
        // SAFETY: forwarded from the caller.
        let qs = unsafe { batch_args(ix, queries, n_queries, dim, k, out_labels, out_distances) }?;
        let n_out = n_queries * k; // checked by `batch_args`
        // SAFETY: forwarded from the caller (room for `n_queries * k` labels).
        let labels = unsafe { slice_mut(out_labels, n_out, "out_labels") }?;
        let distances = if out_distances.is_null() {
            None
        } else {
            // SAFETY: forwarded from the caller (room for `n_queries * k` floats).
            Some(unsafe { slice_mut(out_distances, n_out, "out_distances") }?)
        };
        let params = SearchParams::new(k).with_budget(budget);
        ix.search_batch_into(qs, &params, labels, distances)
            .map_err(batch_err)?;
        Ok(())
    })
}

/// Checks a batch's arguments as `panns_sharded_search_batch` documents them (sizes,
/// pointers, k and dimension) and borrows the queries.
///
/// # Safety
/// `queries` NULL or `n_queries * dim` floats; the outputs NULL or as large as
/// `n_queries * k`.
pub(crate) unsafe fn batch_args<'a>(
    ix: &ShardedIndex,
    queries: *const f32,
    n_queries: usize,
    dim: usize,
    k: usize,
    out_labels: *mut u64,
    out_distances: *mut f32,
) -> FfiResult<&'a [f32]> {
    let n_in = mul(n_queries, dim, "n_queries * dim")?;
    let n_out = mul(n_queries, k, "n_queries * k")?;
    // SAFETY: forwarded from the caller.
    let qs = unsafe { slice(queries, n_in, "queries") }?;
    check_ptr(out_labels, n_out, "out_labels")?;
    if !out_distances.is_null() {
        check_ptr(out_distances, n_out, "out_distances")?;
    }
    check_k_dim(ix, k, dim)?;
    Ok(qs)
}

/// A batch search's error, its message naming the query row it is about (if any).
pub(crate) fn batch_err(e: panns_io::Error) -> FfiError {
    use panns_core::Error as E;
    let row = match &e {
        panns_io::Error::Core(
            E::NonFinite { item, .. } | E::TooLarge { item, .. } | E::ZeroVector { item },
        ) => Some(*item),
        _ => None,
    };
    match row {
        Some(r) => FfiError::from(e).context(format_args!("query row {r}")),
        None => FfiError::from(e),
    }
}
