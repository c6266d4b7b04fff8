//! `PannsBuilder`: collecting vectors and building an index.

use crate::dataset::PannsReadOptions;
use crate::error::{
    FfiError, FfiResult, PannsStatus, check_opt, check_ptr, guard, guard_value, mul, path_arg,
    slice, write_opt,
};
use crate::index::PannsIndex;
use panns_core::{BuildParams, IndexBuilder, Metric, SplitRule};
use std::ffi::c_char;

/// Most worker threads a build may ask for (more is certainly a mistake).
const MAX_THREADS: u32 = 1024;

/// Parameters of `panns_builder_build`. Start from `panns_build_options_default()`
/// (the defaults below are those of the current release).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PannsBuildOptions {
    /// Number of trees (default 32; more: better recall, bigger index, slower build).
    pub n_trees: u32,
    /// A node with at most this many points becomes a leaf (default 16).
    pub leaf_size: u32,
    /// Projection vectors in the pool shared by all trees (default 256).
    pub pool_size: u32,
    /// Pool vectors tried per node (default 8).
    pub candidates: u32,
    /// Split rule: 0 = at the mean projection (default), 1 = at the median.
    pub split: u32,
    /// Worker threads: 0 = all cores (default). Never changes the result.
    pub threads: u32,
    /// Seed of every random choice (default 42): same data + seed = identical index.
    pub seed: u64,
}

impl Default for PannsBuildOptions {
    fn default() -> Self {
        let p = BuildParams::default();
        let u = |x: usize| u32::try_from(x).unwrap_or(u32::MAX);
        PannsBuildOptions {
            n_trees: u(p.n_trees),
            leaf_size: u(p.leaf_size),
            pool_size: u(p.pool_size),
            candidates: u(p.candidates),
            split: match p.split {
                SplitRule::Mean => 0,
                SplitRule::Median => 1,
            },
            threads: u(p.threads),
            seed: p.seed,
        }
    }
}

impl PannsBuildOptions {
    /// The core build parameters, or `PANNS_INVALID_ARGUMENT` for an out-of-range field.
    pub fn to_params(&self) -> FfiResult<BuildParams> {
        let split = match self.split {
            0 => SplitRule::Mean,
            1 => SplitRule::Median,
            s => {
                return Err(FfiError::invalid(format!(
                    "invalid parameter split = {s}: must be 0 (mean) or 1 (median)"
                )));
            }
        };
        if self.threads > MAX_THREADS {
            return Err(FfiError::invalid(format!(
                "invalid parameter threads = {}: must be at most {MAX_THREADS} (0 = all cores)",
                self.threads
            )));
        }
        let params = BuildParams {
            n_trees: self.n_trees as usize,
            leaf_size: self.leaf_size as usize,
            pool_size: self.pool_size as usize,
            candidates: self.candidates as usize,
            split,
            seed: self.seed,
            threads: self.threads as usize,
            // Codes are chosen after the build (`panns_index_set_dtype`), keeping this
            // struct's layout.
            dtype: panns_core::Dtype::F32,
        };
        params.validate()?;
        Ok(params)
    }
}

/// Collects vectors, then builds a `PannsIndex`. Opaque; create with
/// `panns_builder_new`, free with `panns_builder_free`. Not thread-safe: never use one
/// builder from two threads at once.
pub struct PannsBuilder {
    inner: IndexBuilder,
}

impl PannsBuilder {
    /// The wrapped core builder.
    pub fn inner(&self) -> &IndexBuilder {
        &self.inner
    }
}

/// Borrows a builder handle.
///
/// # Safety
/// `b` must be NULL or a live pointer from `panns_builder_new`.
unsafe fn builder_ref<'a>(b: *const PannsBuilder) -> FfiResult<&'a PannsBuilder> {
    // SAFETY: the caller guarantees NULL or a live handle; `as_ref` handles NULL.
    unsafe { b.as_ref() }.ok_or_else(|| FfiError::null("builder"))
}

/// Borrows a builder handle mutably.
///
/// # Safety
/// `b` must be NULL or a live pointer from `panns_builder_new`, used by no other thread.
unsafe fn builder_mut<'a>(b: *mut PannsBuilder) -> FfiResult<&'a mut PannsBuilder> {
    // SAFETY: the caller guarantees NULL or a live, exclusively used handle.
    unsafe { b.as_mut() }.ok_or_else(|| FfiError::null("builder"))
}

/// The default build options (currently 32 trees, leaf size 16, pool 256, 8
/// candidates, mean split, all cores, seed 42).
#[unsafe(no_mangle)]
pub extern "C" fn panns_build_options_default() -> PannsBuildOptions {
    PannsBuildOptions::default()
}

/// Creates an empty builder for `dim`-dimensional vectors under `metric` (a
/// `PannsMetric` code) and stores it in `*out` (set to NULL on failure).
/// Errors: `PANNS_NULL_POINTER` (out), `PANNS_INVALID_ARGUMENT` (dim 0 or above 65536,
/// unknown metric code).
///
/// # Safety
/// `out` must be NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_builder_new(
    dim: u32,
    metric: u32,
    out: *mut *mut PannsBuilder,
) -> PannsStatus {
    guard(|| {
        check_ptr(out, 1, "out")?;
        // SAFETY: checked non-NULL and aligned; the caller guarantees it is writable.
        unsafe { out.write(std::ptr::null_mut()) };
        let metric = Metric::from_code(metric).ok_or_else(|| {
            FfiError::invalid(format!(
                "unknown metric code {metric}: expected 0 (euclidean), 1 (angular) or 2 (dot)"
            ))
        })?;
        let inner = IndexBuilder::new(dim as usize, metric)?;
        let handle = Box::into_raw(Box::new(PannsBuilder { inner }));
        // SAFETY: as above.
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// Adds one vector of `len` floats (`len` must equal the builder's dimension) and
/// writes its id (ids count from 0 in insertion order) to `*out_id` unless `out_id`
/// is NULL. Errors: `PANNS_NULL_POINTER`, `PANNS_DIMENSION_MISMATCH`,
/// `PANNS_NON_FINITE`, `PANNS_ZERO_VECTOR` (angular); on error nothing is added.
///
/// # Safety
/// `b` must be NULL or a live builder; `vec` must be NULL or point to `len` floats;
/// `out_id` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_builder_add(
    b: *mut PannsBuilder,
    vec: *const f32,
    len: usize,
    out_id: *mut u32,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let b = unsafe { builder_mut(b) }?;
        // SAFETY: forwarded from the caller.
        let v = unsafe { slice(vec, len, "vec") }?;
        check_opt(out_id, "out_id")?;
        if len != b.inner.dim() {
            return Err(panns_core::Error::DimensionMismatch {
                expected: b.inner.dim(),
                got: len,
            }
            .into());
        }
        let id = b.inner.add(v)?;
        // SAFETY: forwarded from the caller.
        unsafe { write_opt(out_id, id, "out_id") }
    })
}

/// Adds `n_rows` row-major vectors of `dim` floats each (`dim` must equal the builder's
/// dimension). Either all rows are added or, on an error (whose message names the row
/// and component), none. Errors: `PANNS_NULL_POINTER`, `PANNS_DIMENSION_MISMATCH`,
/// `PANNS_NON_FINITE`, `PANNS_ZERO_VECTOR`, `PANNS_INVALID_ARGUMENT` (too many items).
///
/// # Safety
/// `b` must be NULL or a live builder; `rows` must be NULL or point to
/// `n_rows * dim` floats.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_builder_add_batch(
    b: *mut PannsBuilder,
    rows: *const f32,
    n_rows: usize,
    dim: usize,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let b = unsafe { builder_mut(b) }?;
        if dim != b.inner.dim() {
            check_ptr(rows, 0, "rows")?;
            return Err(panns_core::Error::DimensionMismatch {
                expected: b.inner.dim(),
                got: dim,
            }
            .into());
        }
        let total = mul(n_rows, dim, "n_rows * dim")?;
        // SAFETY: forwarded from the caller.
        let rows = unsafe { slice(rows, total, "rows") }?;
        b.inner.add_batch(rows)?;
        Ok(())
    })
}

/// Adds every vector of a dataset file in any format panns-io reads, chosen by the
/// file's extension (`.fvecs`, `.bvecs`, `.npy`, `.csv`, `.f32`, `.hdf5`/`.h5`, ...).
/// `dataset` names the HDF5 dataset (NULL = "train"; ignored by other formats). The
/// number of vectors added goes to `*out_added` unless it is NULL. All or nothing,
/// as `panns_builder_add_batch`. Errors: `PANNS_NULL_POINTER`,
/// `PANNS_INVALID_ARGUMENT` (bad UTF-8 path), `PANNS_IO`, `PANNS_CORRUPT`,
/// `PANNS_UNSUPPORTED`, `PANNS_DIMENSION_MISMATCH` and the errors of `add_batch`.
///
/// # Safety
/// `b` must be NULL or a live builder; `path` and `dataset` must be NULL or
/// NUL-terminated strings; `out_added` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_builder_add_file(
    b: *mut PannsBuilder,
    path: *const c_char,
    dataset: *const c_char,
    out_added: *mut usize,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let b = unsafe { builder_mut(b) }?;
        // SAFETY: forwarded from the caller.
        let path = unsafe { path_arg(path, "path") }?;
        let dataset = if dataset.is_null() {
            None
        } else {
            // SAFETY: forwarded from the caller.
            Some(unsafe { path_arg(dataset, "dataset") }?)
        };
        check_opt(out_added, "out_added")?;
        let added = crate::index::add_file(&mut b.inner, path, dataset)?;
        // SAFETY: forwarded from the caller.
        unsafe { write_opt(out_added, added, "out_added") }
    })
}

/// `panns_builder_add_file` with read options (`opts` NULL = the defaults; see
/// `PannsReadOptions`): the CSV separator and header mode, the HDF5 dataset. The file's
/// dimension must be the builder's (`opts->dim` 0 means the builder's; raw `.f32`
/// files are read with it). All of the file is added, or on error nothing. Errors: those
/// of `panns_builder_add_file`; `PANNS_INVALID_ARGUMENT` also for a bad separator or
/// header code, or CSV options given for a non-text file. Not thread-safe with other
/// calls on the same builder.
///
/// # Safety
/// `b` NULL or a live builder; `path` NULL or a NUL-terminated string; `opts` NULL or
/// a valid `PannsReadOptions` (its `dataset` NULL or NUL-terminated); `out_added` NULL
/// or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_builder_add_file_with(
    b: *mut PannsBuilder,
    path: *const c_char,
    opts: *const PannsReadOptions,
    out_added: *mut usize,
) -> PannsStatus {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let b = unsafe { builder_mut(b) }?;
        check_opt(out_added, "out_added")?;
        let mut o = if opts.is_null() {
            PannsReadOptions::default()
        } else {
            check_ptr(opts, 1, "opts")?;
            // SAFETY: non-NULL and aligned (checked); the caller guarantees it is readable.
            unsafe { opts.read() }
        };
        if o.dim == 0 {
            o.dim = b.inner.dim();
        } else if o.dim != b.inner.dim() {
            return Err(FfiError::from(panns_core::Error::DimensionMismatch {
                expected: b.inner.dim(),
                got: o.dim,
            })
            .context("opts.dim is not the builder's dimension"));
        }
        // SAFETY: forwarded from the caller; `o` is a valid local copy.
        let data = unsafe { crate::dataset::read_with(path, &o) }?;
        // SAFETY: `read_with` accepted `path`, so it is a NUL-terminated UTF-8 string.
        let name = unsafe { path_arg(path, "path") }?;
        b.inner
            .add_batch(&data.data)
            .map_err(|e| FfiError::from(e).context(name))?;
        // SAFETY: forwarded from the caller.
        unsafe { write_opt(out_added, data.n, "out_added") }
    })
}

/// Number of vectors added so far (0 for NULL).
///
/// # Safety
/// `b` must be NULL or a live builder.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_builder_len(b: *const PannsBuilder) -> usize {
    guard_value(0, || {
        // SAFETY: forwarded from the caller.
        unsafe { builder_ref(b) }.map_or(0, |b| b.inner.len())
    })
}

/// Builds the index from the builder's vectors (`opts` NULL = defaults) and stores it
/// in `*out` (set to NULL on failure). The vectors move into the index: afterwards the
/// builder is empty but still valid (and must still be freed). On an argument error
/// (`PANNS_INVALID_ARGUMENT`, `PANNS_EMPTY`, `PANNS_NULL_POINTER`) the builder is left
/// unchanged, and so it is on `PANNS_OUT_OF_MEMORY` found by the up-front memory check
/// (the projection table of `n x pool_size` floats cannot be allocated: the message
/// names the bytes), so the caller can retry with a smaller pool. Not thread-safe with
/// other calls on the same builder.
///
/// # Safety
/// `b` must be NULL or a live builder; `opts` must be NULL or point to a
/// `PannsBuildOptions`; `out` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_builder_build(
    b: *mut PannsBuilder,
    opts: *const PannsBuildOptions,
    out: *mut *mut PannsIndex,
) -> PannsStatus {
    guard(|| {
        check_ptr(out, 1, "out")?;
        // SAFETY: checked non-NULL and aligned; the caller guarantees it is writable.
        unsafe { out.write(std::ptr::null_mut()) };
        // SAFETY: forwarded from the caller.
        let b = unsafe { builder_mut(b) }?;
        let opts = if opts.is_null() {
            PannsBuildOptions::default()
        } else {
            check_ptr(opts, 1, "opts")?;
            // SAFETY: non-NULL and aligned (checked); the caller guarantees it is readable.
            unsafe { opts.read() }
        };
        let params = opts.to_params()?;
        // Refused before the vectors move into the build, so the builder keeps them
        // after an error (out of memory included) and the caller can retry.
        b.inner.check_build(&params)?;
        // Cannot fail: the same dimension was accepted when the builder was made.
        let fresh = IndexBuilder::new(b.inner.dim(), b.inner.metric())?;
        let full = std::mem::replace(&mut b.inner, fresh);
        let index = full.build(&params)?;
        let handle = Box::into_raw(Box::new(PannsIndex(index)));
        // SAFETY: as above.
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// Frees a builder (NULL is a no-op).
///
/// # Safety
/// `b` must be NULL or a live pointer from `panns_builder_new`, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_builder_free(b: *mut PannsBuilder) {
    guard_value((), || {
        if !b.is_null() {
            // SAFETY: the caller guarantees a live handle from `Box::into_raw` that is
            // not used again.
            drop(unsafe { Box::from_raw(b) });
        }
    })
}
