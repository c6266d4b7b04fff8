//! `PannsIndex`: saving, opening and searching an index.

use crate::error::{
    FfiError, FfiResult, PannsStatus, check_ptr, guard, guard_value, mul, path_arg, slice,
    slice_mut, write_out,
};
use panns_core::{Index, IndexBuilder, Neighbor, SearchParams};
use panns_io::{Format, OpenOptions, ReadOptions};
use std::ffi::c_char;
use std::path::Path;

/// A built index, owned in memory, memory-mapped from a file or parsed from a caller's
/// bytes. Opaque; made by `panns_builder_build`, `panns_index_open` or
/// `panns_index_open_buffer`, freed by `panns_index_free`. Every function taking a
/// `const PannsIndex *` may run on many threads at once.
pub struct PannsIndex(pub Index);

impl PannsIndex {
    /// Saves to `path` atomically.
    pub fn save(&self, path: &str) -> FfiResult<()> {
        panns_io::save_index(&self.0, path)?;
        Ok(())
    }
}

/// Borrows an index handle.
///
/// # Safety
/// `idx` must be NULL or a live pointer from `panns_builder_build` / `panns_index_open`.
pub(crate) unsafe fn index_ref<'a>(idx: *const PannsIndex) -> FfiResult<&'a PannsIndex> {
    // SAFETY: the caller guarantees NULL or a live handle; `as_ref` handles NULL.
    unsafe { idx.as_ref() }.ok_or_else(|| FfiError::null("index"))
}

/// Reads a dataset file into `b` (see `panns_builder_add_file`); returns the count added.
pub(crate) fn add_file(
    b: &mut IndexBuilder,
    path: &str,
    dataset: Option<&str>,
) -> FfiResult<usize> {
    let format = Format::from_path(Path::new(path));
    let opts = ReadOptions {
        dataset: dataset.map(str::to_string),
        // Raw f32 files have no header: they take the builder's dimension.
        dim: (format == Some(Format::RawF32)).then_some(b.dim()),
        ..Default::default()
    };
    let data = panns_io::read_any(path, &opts)?;
    if data.dim != b.dim() {
        return Err(FfiError::from(panns_core::Error::DimensionMismatch {
            expected: b.dim(),
            got: data.dim,
        })
        .context(format_args!(
            "{path}: the file's vectors do not fit the builder"
        )));
    }
    b.add_batch(&data.data)
        .map_err(|e| FfiError::from(e).context(path))?;
    Ok(data.n)
}

/// Saves the index to `path` atomically (a temporary file beside it, fsync, rename).
/// Errors: `PANNS_NULL_POINTER`, `PANNS_INVALID_ARGUMENT` (empty or non-UTF-8 path),
/// `PANNS_IO` (the message names the path and the OS error).
///
/// # Safety
/// `idx` must be NULL or a live index; `path` NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_index_save(
    idx: *const PannsIndex,
    path: *const c_char,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let idx = unsafe { index_ref(idx) }?;
        // SAFETY: forwarded from the caller.
        let path = unsafe { path_arg(path, "path") }?;
        idx.save(path)
    })
}

/// Checks the flags of `panns_index_open` / `panns_index_open_buffer`.
fn open_options(flags: u32) -> FfiResult<OpenOptions> {
    if flags & !crate::PANNS_OPEN_VERIFY != 0 {
        return Err(FfiError::invalid(format!(
            "unknown flag bits {:#x} (known: PANNS_OPEN_VERIFY = 1)",
            flags & !crate::PANNS_OPEN_VERIFY
        )));
    }
    Ok(OpenOptions {
        verify_checksum: flags & crate::PANNS_OPEN_VERIFY != 0,
    })
}

/// Opens an index file by memory-mapping it and stores the handle in `*out` (set to
/// NULL on failure). The structure is always validated; with `flags` containing
/// `PANNS_OPEN_VERIFY` the checksum of the whole file is verified too. Errors:
/// `PANNS_NULL_POINTER`, `PANNS_INVALID_ARGUMENT` (unknown flag bits, bad path),
/// `PANNS_IO`, `PANNS_CORRUPT`, `PANNS_UNSUPPORTED`.
///
/// # Safety
/// `path` must be NULL or a NUL-terminated string; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_index_open(
    path: *const c_char,
    flags: u32,
    out: *mut *mut PannsIndex,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        unsafe {
            open_into(out, || {
                let path = path_arg(path, "path")?;
                Ok(panns_io::open_index(path, &open_options(flags)?)?)
            })
        }
    })
}

/// Sets `*out` to NULL, makes an index with `make` and stores its new handle in `*out`
/// (the shared tail of every function that opens an index).
///
/// # Safety
/// `out` must be NULL or writable; `make` may rely on the caller's pointer contracts.
unsafe fn open_into(
    out: *mut *mut PannsIndex,
    make: impl FnOnce() -> FfiResult<Index>,
) -> FfiResult<()> {
    check_ptr(out, 1, "out")?;
    // SAFETY: checked non-NULL and aligned; the caller guarantees it is writable.
    unsafe { out.write(std::ptr::null_mut()) };
    let handle = Box::into_raw(Box::new(PannsIndex(make()?)));
    // SAFETY: as above.
    unsafe { out.write(handle) };
    Ok(())
}

/// Opens an index from `len` bytes in memory (the bytes of an index file, e.g. from
/// `panns_index_serialize`, a network message or a database blob) and stores the
/// handle in `*out` (set to NULL on failure). The bytes are **copied**: the caller may
/// free or reuse `data` as soon as the call returns. The structure is always
/// validated; `flags` as `panns_index_open` (`PANNS_OPEN_VERIFY` checks the checksum
/// too). Any thread may call it. Errors: `PANNS_NULL_POINTER`,
/// `PANNS_INVALID_ARGUMENT` (unknown flag bits), `PANNS_CORRUPT`, `PANNS_UNSUPPORTED`,
/// `PANNS_OUT_OF_MEMORY`.
///
/// # Safety
/// `data` must be NULL or point to `len` readable bytes; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_index_open_buffer(
    data: *const u8,
    len: usize,
    flags: u32,
    out: *mut *mut PannsIndex,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        unsafe {
            open_into(out, || {
                let bytes = slice(data, len, "data")?;
                Ok(panns_io::index_from_slice(bytes, &open_options(flags)?)?)
            })
        }
    })
}

/// The serialized length of the index in bytes (exactly what `panns_index_serialize`
/// writes and `panns_index_save` would store), in `*out_len`. Any thread may call it,
/// also during searches. Errors: `PANNS_NULL_POINTER`, `PANNS_INVALID_ARGUMENT` (an
/// index too large for the format).
///
/// # Safety
/// `idx` NULL or a live index; `out_len` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_index_serialized_len(
    idx: *const PannsIndex,
    out_len: *mut usize,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let idx = unsafe { index_ref(idx) }?;
        check_ptr(out_len, 1, "out_len")?;
        let len = byte_len(&idx.0)?;
        // SAFETY: forwarded from the caller.
        unsafe { write_out(out_len, len, "out_len") }
    })
}

/// `panns_io::serialized_len` as a `usize`.
fn byte_len(index: &Index) -> FfiResult<usize> {
    let len = panns_io::serialized_len(index)?;
    usize::try_from(len).map_err(|_| {
        FfiError::invalid(format!(
            "the index takes {len} bytes, more than this platform can address"
        ))
    })
}

/// Writes the index in the file format (the bytes `panns_index_save` would store) into
/// the caller-owned `buf` of `cap` bytes and the length written to `*out_len`. When
/// `cap` is too small nothing is written to `buf`, the needed length goes to
/// `*out_len` and the status is `PANNS_BUFFER_TOO_SMALL`; `buf` may be NULL when `cap`
/// is 0 (a size query, like `panns_index_serialized_len`). Any thread may call it,
/// also during searches. Errors: `PANNS_NULL_POINTER`, `PANNS_BUFFER_TOO_SMALL`,
/// `PANNS_OUT_OF_MEMORY`.
///
/// # Safety
/// `idx` NULL or a live index; `buf` NULL or `cap` writable bytes; `out_len` NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_index_serialize(
    idx: *const PannsIndex,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let idx = unsafe { index_ref(idx) }?;
        check_ptr(out_len, 1, "out_len")?;
        if !(buf.is_null() && cap == 0) {
            check_ptr(buf, cap, "buf")?;
        }
        let need = byte_len(&idx.0)?;
        if cap < need {
            // SAFETY: forwarded from the caller.
            unsafe { write_out(out_len, need, "out_len") }?;
            return Err(FfiError::new(
                PannsStatus::PANNS_BUFFER_TOO_SMALL,
                format!("the buffer holds {cap} bytes, the index needs {need}"),
            ));
        }
        let bytes = panns_io::index_to_bytes(&idx.0)?;
        if bytes.len() != need {
            return Err(FfiError::new(
                PannsStatus::PANNS_PANIC,
                format!(
                    "serialized {} bytes, announced {need} (a bug in panns)",
                    bytes.len()
                ),
            ));
        }
        // SAFETY: forwarded from the caller (`cap >= need` writable bytes).
        unsafe { slice_mut(buf, need, "buf") }?.copy_from_slice(&bytes);
        // SAFETY: forwarded from the caller.
        unsafe { write_out(out_len, need, "out_len") }
    })
}

/// Frees an index (NULL is a no-op). A mapped index unmaps its file.
///
/// # Safety
/// `idx` must be NULL or a live index not used by any thread afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_index_free(idx: *mut PannsIndex) {
    guard_value((), || {
        if !idx.is_null() {
            // SAFETY: the caller guarantees a live handle from `Box::into_raw` that is
            // not used again.
            drop(unsafe { Box::from_raw(idx) });
        }
    })
}

/// Number of items (0 for NULL).
///
/// # Safety
/// `idx` must be NULL or a live index.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_index_len(idx: *const PannsIndex) -> usize {
    // SAFETY: forwarded from the caller.
    guard_value(0, || unsafe { index_ref(idx) }.map_or(0, |i| i.0.len()))
}

/// Vector dimension (0 for NULL).
///
/// # Safety
/// `idx` must be NULL or a live index.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_index_dim(idx: *const PannsIndex) -> u32 {
    guard_value(0, || {
        // SAFETY: forwarded from the caller.
        unsafe { index_ref(idx) }.map_or(0, |i| i.0.dim() as u32)
    })
}

/// Metric code (a `PannsMetric` value; `UINT32_MAX` for NULL).
///
/// # Safety
/// `idx` must be NULL or a live index.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_index_metric(idx: *const PannsIndex) -> u32 {
    guard_value(u32::MAX, || {
        // SAFETY: forwarded from the caller.
        unsafe { index_ref(idx) }.map_or(u32::MAX, |i| i.0.metric().code())
    })
}

/// Number of trees (0 for NULL).
///
/// # Safety
/// `idx` must be NULL or a live index.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_index_n_trees(idx: *const PannsIndex) -> usize {
    // SAFETY: forwarded from the caller.
    guard_value(0, || unsafe { index_ref(idx) }.map_or(0, |i| i.0.n_trees()))
}

/// Neighbours per item of the index's neighbour graph (0 when it has none, or for NULL).
///
/// # Safety
/// `idx` must be NULL or a live index.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_index_graph_degree(idx: *const PannsIndex) -> u32 {
    // SAFETY: forwarded from the caller.
    guard_value(0, || {
        unsafe { index_ref(idx) }.map_or(0, |i| i.0.graph_degree() as u32)
    })
}

/// Adds (or replaces) a neighbour graph of `degree` neighbours per item (0: the
/// default, 24) to any index (built in this process or opened from a file: the graph
/// then lives in memory beside the mapped file), using `threads` workers (0: all
/// cores; the result never depends on it). With a graph, searches reach high recall
/// with far fewer distance computations; `budget` then sets the beam width (like
/// HNSW's ef). Save the index afterwards to keep the graph. Errors:
/// `PANNS_NULL_POINTER`, `PANNS_INVALID_ARGUMENT` (degree above 256, too many
/// threads), `PANNS_OUT_OF_MEMORY`. Same as `panns_index_build_graph_flags` with
/// flags 0.
///
/// # Safety
/// `idx` must be NULL or a live index that no other thread uses during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_index_build_graph(
    idx: *mut PannsIndex,
    degree: u32,
    threads: u32,
) -> PannsStatus {
    // SAFETY: forwarded from the caller.
    unsafe { panns_index_build_graph_flags(idx, degree, threads, 0) }
}

/// Flag of `panns_index_build_graph_flags`: score NN-descent's candidates on exact
/// (f32) distances instead of 8-bit codes. Slower (about 1.3-1.7x the build time) with
/// a lower peak memory (no codes made for the build of an f32 index); the recall of the
/// finished graph is the same within noise.
pub const PANNS_GRAPH_EXACT_BUILD: u32 = 1;

/// `panns_index_build_graph` with `flags`: 0 or `PANNS_GRAPH_EXACT_BUILD`. Errors as
/// `panns_index_build_graph`, and `PANNS_INVALID_ARGUMENT` for an unknown flag bit.
///
/// # Safety
/// `idx` must be NULL or a live index that no other thread uses during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_index_build_graph_flags(
    idx: *mut PannsIndex,
    degree: u32,
    threads: u32,
    flags: u32,
) -> PannsStatus {
    guard(|| {
        // SAFETY: the caller guarantees NULL or a live, unshared handle.
        let idx = unsafe { idx.as_mut() }.ok_or_else(|| FfiError::null("index"))?;
        let index = &mut idx.0;
        let defaults = panns_core::GraphParams::default();
        let degree = if degree == 0 {
            defaults.degree
        } else {
            degree as usize
        };
        if threads > 1024 {
            return Err(FfiError::invalid(format!(
                "threads = {threads}: at most 1024"
            )));
        }
        if flags & !PANNS_GRAPH_EXACT_BUILD != 0 {
            return Err(FfiError::invalid(format!(
                "flags = {flags:#x}: unknown bits {:#x} (known: PANNS_GRAPH_EXACT_BUILD = 1)",
                flags & !PANNS_GRAPH_EXACT_BUILD
            )));
        }
        let params = panns_core::GraphParams {
            degree,
            build_k: defaults.build_k.max(degree),
            threads: threads as usize,
            quantized: flags & PANNS_GRAPH_EXACT_BUILD == 0,
            ..defaults
        };
        index.build_graph(&params)?;
        Ok(())
    })
}

/// Checks `k >= 1` and that `dim` is the index dimension (every search entry point).
pub(crate) fn check_k_dim(view: &Index, k: usize, dim: usize) -> FfiResult<()> {
    if k == 0 {
        return Err(panns_core::Error::InvalidK(0).into());
    }
    if dim != view.dim() {
        return Err(panns_core::Error::DimensionMismatch {
            expected: view.dim(),
            got: dim,
        }
        .into());
    }
    Ok(())
}

/// Checks the arguments shared by the single-query searches and returns the query.
///
/// # Safety
/// As `panns_index_search`.
pub(crate) unsafe fn query_args<'a>(
    view: &Index,
    query: *const f32,
    dim: usize,
    k: usize,
    out_ids: *mut u32,
    out_distances: *mut f32,
    out_count: *mut usize,
) -> FfiResult<&'a [f32]> {
    if query.is_null() && dim == 0 {
        // An empty query (a NULL data pointer of an empty span or slice) is a
        // dimension problem, not a missing argument.
        return Err(FfiError::new(
            PannsStatus::PANNS_DIMENSION_MISMATCH,
            format!(
                "the query is empty: expected {} components, got 0",
                view.dim()
            ),
        ));
    }
    // SAFETY: forwarded from the caller.
    let q = unsafe { slice(query, dim, "query") }?;
    check_ptr(out_ids, 0, "out_ids")?;
    if !out_distances.is_null() {
        check_ptr(out_distances, 0, "out_distances")?;
    }
    check_ptr(out_count, 1, "out_count")?;
    check_k_dim(view, k, dim)?;
    Ok(q)
}

/// Writes one query's results to the caller's buffers.
///
/// # Safety
/// `out_ids` (and `out_distances` unless NULL) must hold `hits.len()` elements;
/// `out_count` must be writable.
pub(crate) unsafe fn write_hits(
    hits: &[Neighbor],
    out_ids: *mut u32,
    out_distances: *mut f32,
    out_count: *mut usize,
) -> FfiResult<()> {
    let names = ["out_ids", "out_distances", "out_count"];
    let split = |h: &Neighbor| (h.id, h.distance);
    // SAFETY: forwarded from the caller.
    unsafe { write_pairs(hits, split, out_ids, out_distances, out_count, names) }
}

/// Writes results, each split by `split` into `(key, distance)`: the keys to `keys_out`, the distances to
/// `distances_out` unless NULL, and their number to `count_out`; `names` are those
/// three arguments' names for error messages.
///
/// # Safety
/// `keys_out` (and `distances_out` unless NULL) must hold `pairs.len()` elements;
/// `count_out` must be NULL or writable.
pub(crate) unsafe fn write_pairs<H, T>(
    pairs: &[H],
    split: impl Fn(&H) -> (T, f32),
    keys_out: *mut T,
    distances_out: *mut f32,
    count_out: *mut usize,
    names: [&str; 3],
) -> FfiResult<()> {
    // SAFETY: the caller guarantees room for the results.
    let ks = unsafe { slice_mut(keys_out, pairs.len(), names[0]) }?;
    for (o, h) in ks.iter_mut().zip(pairs) {
        *o = split(h).0;
    }
    if !distances_out.is_null() {
        // SAFETY: as above.
        let ds = unsafe { slice_mut(distances_out, pairs.len(), names[1]) }?;
        for (o, h) in ds.iter_mut().zip(pairs) {
            *o = split(h).1;
        }
    }
    // SAFETY: as above.
    unsafe { write_out(count_out, pairs.len(), names[2]) }
}

/// Approximate k nearest neighbours of one query of `dim` floats, nearest first, ties
/// by id. `budget` = distinct candidates to re-rank (0 = the default,
/// `max(n_trees * k, 100 * k)`; larger: better recall, slower). Writes up to `k`
/// results to the caller-owned `out_ids[k]` and `out_distances[k]` (`out_distances`
/// may be NULL) and the number written, `min(k, len)`, to `*out_count`. Errors:
/// `PANNS_NULL_POINTER`, `PANNS_INVALID_ARGUMENT` (k = 0), `PANNS_DIMENSION_MISMATCH`,
/// `PANNS_NON_FINITE`, `PANNS_ZERO_VECTOR` (angular).
///
/// # Safety
/// `idx` NULL or a live index; `query` NULL or `dim` floats; `out_ids` NULL or room
/// for `k` ids; `out_distances` NULL or room for `k` floats; `out_count` NULL or
/// writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn panns_index_search(
    idx: *const PannsIndex,
    query: *const f32,
    dim: usize,
    k: usize,
    budget: usize,
    out_ids: *mut u32,
    out_distances: *mut f32,
    out_count: *mut usize,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let view = &unsafe { index_ref(idx) }?.0;
        // SAFETY: forwarded from the caller.
        let q = unsafe { query_args(view, query, dim, k, out_ids, out_distances, out_count) }?;
        let hits = view.search(q, &SearchParams::new(k).with_budget(budget))?;
        // SAFETY: forwarded from the caller; `hits.len() <= k`.
        unsafe { write_hits(&hits, out_ids, out_distances, out_count) }
    })
}

/// What one search did (`panns_index_search_with_stats`). Fields may be appended in a
/// later release (never reordered); the size of this version is 24 bytes on 64-bit
/// platforms.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PannsSearchStats {
    /// Distinct items whose exact distance to the query was computed.
    pub scored: usize,
    /// The effective budget after defaults and clamping: `budget` (or the default
    /// when 0), at least `k`, at most the item count.
    pub budget: usize,
    /// 1 when the budget covered half the items or more and the search scanned every
    /// item exactly instead of walking the trees (or graph); 0 for the approximate path.
    pub exact_scan: u8,
}

impl From<&panns_core::SearchStats> for PannsSearchStats {
    fn from(s: &panns_core::SearchStats) -> Self {
        PannsSearchStats {
            scored: s.scored,
            budget: s.budget,
            exact_scan: u8::from(s.exact_scan),
        }
    }
}

/// `panns_index_search` that also reports what the search did in `*out_stats`:
/// whether it took the exact scan (`2 * effective budget >= len`) or the
/// approximate path, the effective budget and how many items were scored. Same
/// arguments, output contract, errors and thread safety as `panns_index_search`;
/// `out_stats` must not be NULL.
///
/// # Safety
/// As `panns_index_search`; `out_stats` NULL or writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn panns_index_search_with_stats(
    idx: *const PannsIndex,
    query: *const f32,
    dim: usize,
    k: usize,
    budget: usize,
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
        check_ptr(out_stats, 1, "out_stats")?;
        let (hits, stats) = view.search_with_stats(q, &SearchParams::new(k).with_budget(budget))?;
        // SAFETY: forwarded from the caller; `hits.len() <= k`.
        unsafe { write_hits(&hits, out_ids, out_distances, out_count) }?;
        // SAFETY: forwarded from the caller.
        unsafe { write_out(out_stats, PannsSearchStats::from(&stats), "out_stats") }
    })
}

/// Exact k nearest neighbours by scanning every item (the reference for recall). Same
/// output contract and errors as `panns_index_search`.
///
/// # Safety
/// As `panns_index_search`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_index_linear_search(
    idx: *const PannsIndex,
    query: *const f32,
    dim: usize,
    k: usize,
    out_ids: *mut u32,
    out_distances: *mut f32,
    out_count: *mut usize,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let view = &unsafe { index_ref(idx) }?.0;
        // SAFETY: forwarded from the caller.
        let q = unsafe { query_args(view, query, dim, k, out_ids, out_distances, out_count) }?;
        let hits = view.linear_search(q, k)?;
        // SAFETY: forwarded from the caller; `hits.len() <= k`.
        unsafe { write_hits(&hits, out_ids, out_distances, out_count) }
    })
}

/// Searches `n_queries` row-major queries of `dim` floats each, in parallel on all
/// cores. `out_ids` and `out_distances` (may be NULL) hold `n_queries * k` entries,
/// row `i` at `i * k`; a row with fewer than `k` results (an index smaller than `k`)
/// is padded with id `UINT32_MAX` and distance `INFINITY`. `n_queries = 0` is a
/// successful no-op (the pointers must still be non-NULL). Errors as
/// `panns_index_search`; on an error the message names the first offending query row
/// and the output buffers' contents are unspecified.
///
/// # Safety
/// `idx` NULL or a live index; `queries` NULL or `n_queries * dim` floats; `out_ids`
/// NULL or room for `n_queries * k` ids; `out_distances` NULL or room for
/// `n_queries * k` floats.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn panns_index_search_batch(
    idx: *const PannsIndex,
    queries: *const f32,
    n_queries: usize,
    dim: usize,
    k: usize,
    budget: usize,
    out_ids: *mut u32,
    out_distances: *mut f32,
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
        check_k_dim(view, k, dim)?;
        let params = SearchParams::new(k).with_budget(budget);
        // SAFETY: forwarded from the caller (room for `n_queries * k` ids).
        let ids = unsafe { slice_mut(out_ids, n_out, "out_ids") }?;
        let distances = if out_distances.is_null() {
            None
        } else {
            // SAFETY: forwarded from the caller (room for `n_queries * k` floats).
            Some(unsafe { slice_mut(out_distances, n_out, "out_distances") }?)
        };
        view.search_batch_into(qs, &params, ids, distances)
            .map_err(|e| {
                use panns_core::Error as E;
                let row = match &e {
                    E::NonFinite { item, .. }
                    | E::TooLarge { item, .. }
                    | E::ZeroVector { item } => Some(*item),
                    _ => None,
                };
                match row {
                    Some(r) => FfiError::from(e).context(format_args!("query row {r}")),
                    None => FfiError::from(e),
                }
            })?;
        Ok(())
    })
}

/// Copies the stored vector of item `id` into `out[dim]` (unit-normalised under the
/// angular metric). `dim` must equal the index dimension. Errors:
/// `PANNS_NULL_POINTER`, `PANNS_OUT_OF_RANGE` (id not below the item count),
/// `PANNS_BUFFER_TOO_SMALL` (dim below the index dimension),
/// `PANNS_DIMENSION_MISMATCH` (dim above it).
///
/// # Safety
/// `idx` NULL or a live index; `out` NULL or room for `dim` floats.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_index_get_vector(
    idx: *const PannsIndex,
    id: u32,
    out: *mut f32,
    dim: usize,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let view = &unsafe { index_ref(idx) }?.0;
        check_ptr(out, dim, "out")?;
        let d = view.dim();
        if dim < d {
            return Err(FfiError::new(
                PannsStatus::PANNS_BUFFER_TOO_SMALL,
                format!("output buffer holds {dim} floats, the index dimension is {d}"),
            ));
        }
        if dim > d {
            return Err(panns_core::Error::DimensionMismatch {
                expected: d,
                got: dim,
            }
            .into());
        }
        let v = view.vector(id as usize)?;
        // SAFETY: forwarded from the caller (room for `dim` floats).
        unsafe { slice_mut(out, d, "out") }?.copy_from_slice(&v);
        Ok(())
    })
}
