//! Reading dataset files (queries, vectors) into caller memory through panns-io.

use crate::error::{
    FfiError, FfiResult, PannsStatus, check_opt, check_ptr, guard, path_arg, slice_mut, write_opt,
};
use panns_io::{Format, ReadOptions};
use std::ffi::c_char;
use std::path::Path;

/// Reads a whole dataset file (format by extension, as `panns_builder_add_file`).
///
/// # Safety
/// `path` and `dataset` must be NULL or NUL-terminated strings.
unsafe fn read(
    path: *const c_char,
    dataset: *const c_char,
    dim: usize,
) -> FfiResult<panns_io::Dataset> {
    // SAFETY: forwarded from the caller.
    let path = unsafe { path_arg(path, "path") }?;
    let dataset = if dataset.is_null() {
        None
    } else {
        // SAFETY: forwarded from the caller.
        Some(unsafe { path_arg(dataset, "dataset") }?.to_string())
    };
    // Raw f32 files take the dimension from the caller; others are checked below.
    let raw = Format::from_path(Path::new(path)) == Some(Format::RawF32);
    let opts = ReadOptions {
        dataset,
        dim: (raw && dim != 0).then_some(dim),
        ..Default::default()
    };
    let data = panns_io::read_any(path, &opts)?;
    if dim != 0 && data.dim != dim {
        return Err(FfiError::from(panns_core::Error::DimensionMismatch {
            expected: dim,
            got: data.dim,
        })
        .context(format_args!("{path}: the file's vectors")));
    }
    Ok(data)
}

/// The shape of a dataset file in any format panns reads (`.fvecs`, `.bvecs`, `.npy`,
/// `.csv`/`.tsv`, `.hdf5`/`.h5`; format by extension): the number of vectors in `*n`
/// and their dimension in `*dim`. `dataset` names the HDF5 dataset (NULL = "train";
/// ignored by other formats). Raw `.f32` files have no header: pass their dimension
/// in `*dim` (0 otherwise; a non-zero `*dim` must match the file's). The current
/// version reads the whole file to validate it. Any thread may call it. Errors:
/// `PANNS_NULL_POINTER`, `PANNS_INVALID_ARGUMENT`, `PANNS_IO`, `PANNS_CORRUPT`,
/// `PANNS_UNSUPPORTED`, `PANNS_NON_FINITE`, `PANNS_DIMENSION_MISMATCH` (`*dim` given
/// and different).
///
/// # Safety
/// `path` and `dataset` must be NULL or NUL-terminated strings; `n` and `dim` NULL
/// or valid for reading and writing one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_dataset_probe(
    path: *const c_char,
    dataset: *const c_char,
    n: *mut usize,
    dim: *mut usize,
) -> PannsStatus {
    guard(|| {
        check_ptr(n, 1, "n")?;
        check_ptr(dim, 1, "dim")?;
        // SAFETY: checked non-NULL and aligned; the caller guarantees it is readable.
        let want = unsafe { dim.read() };
        // SAFETY: forwarded from the caller.
        let data = unsafe { read(path, dataset, want) }?;
        // SAFETY: checked above; the caller guarantees they are writable.
        unsafe {
            n.write(data.n);
            dim.write(data.dim);
        }
        Ok(())
    })
}

/// Reads every vector of a dataset file (as `panns_dataset_probe`) into the
/// caller-owned `buf` of `cap` floats, row-major, and writes the shape to `*out_n` and
/// `*out_dim` (each may be NULL). `dim` is the expected dimension (0 = any; required
/// for raw `.f32` files). When `cap < n * dim` nothing is written to `buf`, the shape
/// is still written and the status is `PANNS_BUFFER_TOO_SMALL`; `buf` may be NULL
/// when `cap` is 0 (a size query). Any thread may call it. Errors: those of
/// `panns_dataset_probe`, `PANNS_DIMENSION_MISMATCH` (dim given and different),
/// `PANNS_BUFFER_TOO_SMALL`.
///
/// # Safety
/// `path`, `dataset` as `panns_dataset_probe`; `buf` NULL or `cap` writable floats;
/// `out_n`, `out_dim` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_dataset_read(
    path: *const c_char,
    dataset: *const c_char,
    dim: usize,
    buf: *mut f32,
    cap: usize,
    out_n: *mut usize,
    out_dim: *mut usize,
) -> PannsStatus {
    guard(|| {
        check_opt(out_n, "out_n")?;
        check_opt(out_dim, "out_dim")?;
        if !(buf.is_null() && cap == 0) {
            check_ptr(buf, cap, "buf")?;
        }
        // SAFETY: forwarded from the caller.
        let data = unsafe { read(path, dataset, dim) }?;
        // SAFETY: forwarded from the caller.
        unsafe {
            write_opt(out_n, data.n, "out_n")?;
            write_opt(out_dim, data.dim, "out_dim")?;
        }
        let need = data.data.len();
        if cap < need {
            return Err(FfiError::new(
                PannsStatus::PANNS_BUFFER_TOO_SMALL,
                format!(
                    "the buffer holds {cap} floats, the file has {} x {} = {need}",
                    data.n, data.dim
                ),
            ));
        }
        // SAFETY: forwarded from the caller (`cap >= need` writable floats).
        unsafe { slice_mut(buf, need, "buf") }?.copy_from_slice(&data.data);
        Ok(())
    })
}
