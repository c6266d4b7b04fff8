//! Reading dataset files (queries, vectors) into caller memory through panns-io.

use crate::error::{
    FfiError, FfiResult, PannsStatus, check_opt, check_ptr, guard, path_arg, slice_mut, write_opt,
};
use panns_io::{CsvOptions, Format, HeaderMode, ReadOptions};
use std::ffi::c_char;
use std::path::Path;

/// Options for reading a dataset file: `panns_builder_add_file_with`,
/// `panns_dataset_probe_with`, `panns_dataset_read_with`. Start from
/// `panns_read_options_default()` and set the fields you need, so that fields added in
/// later versions keep their defaults.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PannsReadOptions {
    /// HDF5 only: the dataset to read (NULL = "train"); ignored by other formats.
    pub dataset: *const c_char,
    /// The expected dimension (0 = any). Required for raw `.f32` files, which have no
    /// header; for every other format a non-zero value must equal the file's.
    pub dim: usize,
    /// CSV/text only: the cell separator, one ASCII character other than a digit, a
    /// double quote or a line end (`' '` means any run of blanks). 0 = `','` (a tab for
    /// `.tsv` files, which cannot take another separator).
    pub separator: c_char,
    /// CSV/text only: `PANNS_HEADER_AUTO` (the first non-blank line is a header only
    /// if none of its cells looks like a number), `PANNS_HEADER_YES` or
    /// `PANNS_HEADER_NO`.
    pub header: u32,
}

/// `PannsReadOptions.header`: a header only if no cell of the first line looks like a
/// number (the default).
pub const PANNS_HEADER_AUTO: u32 = 0;
/// `PannsReadOptions.header`: the first non-blank line is a header.
pub const PANNS_HEADER_YES: u32 = 1;
/// `PannsReadOptions.header`: there is no header line.
pub const PANNS_HEADER_NO: u32 = 2;

impl Default for PannsReadOptions {
    fn default() -> Self {
        PannsReadOptions {
            dataset: std::ptr::null(),
            dim: 0,
            separator: 0,
            header: PANNS_HEADER_AUTO,
        }
    }
}

/// The default read options: HDF5 dataset "train", any dimension, `','` separated,
/// header detected. Never fails; any thread may call it.
#[unsafe(no_mangle)]
pub extern "C" fn panns_read_options_default() -> PannsReadOptions {
    PannsReadOptions::default()
}

/// `opts` (NULL = the defaults) as panns-io options for the file at `path`, and the
/// expected dimension (0 = any).
///
/// # Safety
/// `opts` must be NULL or point to a `PannsReadOptions` whose `dataset` is NULL or a
/// NUL-terminated string.
pub(crate) unsafe fn read_options(
    path: &str,
    opts: *const PannsReadOptions,
) -> FfiResult<(ReadOptions, usize)> {
    let o = if opts.is_null() {
        PannsReadOptions::default()
    } else {
        check_ptr(opts, 1, "opts")?;
        // SAFETY: non-NULL and aligned (checked); the caller guarantees it is readable.
        unsafe { opts.read() }
    };
    let dataset = if o.dataset.is_null() {
        None
    } else {
        // SAFETY: forwarded from the caller.
        Some(unsafe { path_arg(o.dataset, "opts.dataset") }?.to_string())
    };
    let format = Format::from_path(Path::new(path));
    let is_text = matches!(format, Some(Format::Csv | Format::Tsv));
    let mut csv = CsvOptions::default();
    if o.separator != 0 {
        if !is_text {
            return Err(invalid(format!(
                "{path}: opts.separator applies to CSV/text files (.csv, .tsv, .txt) only"
            )));
        }
        if format == Some(Format::Tsv) {
            return Err(invalid(format!(
                "{path}: a .tsv file is always tab-separated; leave opts.separator 0"
            )));
        }
        csv.separator = o.separator as u8;
    }
    csv.header = match o.header {
        PANNS_HEADER_AUTO => HeaderMode::Auto,
        PANNS_HEADER_YES => HeaderMode::Yes,
        PANNS_HEADER_NO => HeaderMode::No,
        h => {
            return Err(invalid(format!(
                "opts.header is {h}: use PANNS_HEADER_AUTO (0), PANNS_HEADER_YES (1) or \
                 PANNS_HEADER_NO (2)"
            )));
        }
    };
    if o.header != PANNS_HEADER_AUTO && !is_text {
        return Err(invalid(format!(
            "{path}: opts.header applies to CSV/text files (.csv, .tsv, .txt) only"
        )));
    }
    csv.check().map_err(FfiError::from)?;
    // Raw f32 files take the dimension from the caller; others are checked after reading.
    let raw = format == Some(Format::RawF32);
    let ropts = ReadOptions {
        dataset,
        dim: (raw && o.dim != 0).then_some(o.dim),
        csv,
        ..Default::default()
    };
    Ok((ropts, o.dim))
}

fn invalid(message: String) -> FfiError {
    FfiError::new(PannsStatus::PANNS_INVALID_ARGUMENT, message)
}

/// Reads a whole dataset file with `opts` (format by extension, as
/// `panns_builder_add_file`), checking a non-zero `opts->dim` against the file's.
///
/// # Safety
/// `path` must be NULL or a NUL-terminated string; `opts` as [`read_options`].
pub(crate) unsafe fn read_with(
    path: *const c_char,
    opts: *const PannsReadOptions,
) -> FfiResult<panns_io::Dataset> {
    // SAFETY: forwarded from the caller.
    let path = unsafe { path_arg(path, "path") }?;
    // SAFETY: forwarded from the caller.
    let (ropts, dim) = unsafe { read_options(path, opts) }?;
    let data = panns_io::read_any(path, &ropts)?;
    if dim != 0 && data.dim != dim {
        return Err(FfiError::from(panns_core::Error::DimensionMismatch {
            expected: dim,
            got: data.dim,
        })
        .context(format_args!("{path}: the file's vectors")));
    }
    Ok(data)
}

/// Reads a whole dataset file (format by extension, as `panns_builder_add_file`).
///
/// # Safety
/// `path` and `dataset` must be NULL or NUL-terminated strings.
unsafe fn read(
    path: *const c_char,
    dataset: *const c_char,
    dim: usize,
) -> FfiResult<panns_io::Dataset> {
    let opts = PannsReadOptions {
        dataset,
        dim,
        ..Default::default()
    };
    // SAFETY: forwarded from the caller.
    unsafe { read_with(path, &opts) }
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
        unsafe { copy_out(&data, buf, cap, out_n, out_dim) }
    })
}

/// `panns_dataset_probe` with read options (`opts` NULL = the defaults): the CSV
/// separator and header mode, the HDF5 dataset, the expected dimension (`opts->dim`;
/// required for raw `.f32` files). Writes the shape to `*n` and `*dim`. Errors: those of
/// `panns_dataset_probe`; `PANNS_INVALID_ARGUMENT` also for a separator that is a
/// digit, quote, line end or non-ASCII, an unknown header code, or CSV options given
/// for a non-text file. Any thread may call it.
///
/// # Safety
/// `path` NULL or a NUL-terminated string; `opts` NULL or a valid `PannsReadOptions`
/// (its `dataset` NULL or NUL-terminated); `n`, `dim` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_dataset_probe_with(
    path: *const c_char,
    opts: *const PannsReadOptions,
    n: *mut usize,
    dim: *mut usize,
) -> PannsStatus {
    guard(|| {
        check_ptr(n, 1, "n")?;
        check_ptr(dim, 1, "dim")?;
        // SAFETY: forwarded from the caller.
        let data = unsafe { read_with(path, opts) }?;
        // SAFETY: checked above; the caller guarantees they are writable.
        unsafe {
            n.write(data.n);
            dim.write(data.dim);
        }
        Ok(())
    })
}

/// `panns_dataset_read` with read options (`opts` NULL = the defaults; see
/// `panns_dataset_probe_with`). The expected dimension is `opts->dim`. Errors: those
/// of `panns_dataset_read` and `panns_dataset_probe_with`. Any thread may call it.
///
/// # Safety
/// As `panns_dataset_probe_with` for `path` and `opts`; `buf` NULL or `cap` writable
/// floats; `out_n`, `out_dim` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_dataset_read_with(
    path: *const c_char,
    opts: *const PannsReadOptions,
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
        let data = unsafe { read_with(path, opts) }?;
        // SAFETY: forwarded from the caller.
        unsafe { copy_out(&data, buf, cap, out_n, out_dim) }
    })
}

/// Writes the shape of `data` to `out_n` / `out_dim` and its values to `buf`.
///
/// # Safety
/// `buf` NULL (then `cap` is 0) or `cap` writable floats; `out_n`, `out_dim` NULL or
/// writable.
unsafe fn copy_out(
    data: &panns_io::Dataset,
    buf: *mut f32,
    cap: usize,
    out_n: *mut usize,
    out_dim: *mut usize,
) -> FfiResult<()> {
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
}
