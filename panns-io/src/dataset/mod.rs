//! Dataset readers: delimited text, raw little-endian `f32`, TEXMEX `.fvecs`/`.bvecs`/`.ivecs`,
//! NumPy `.npy` and (feature `hdf5`, on by default) HDF5 in the ann-benchmarks layout.
//!
//! Every reader returns a row-major [`Dataset`] of `f32` (or an [`IntDataset`] of `i32` for
//! ground-truth neighbour ids) or an [`Error`] that names the file and the position of the
//! problem. Float readers reject NaN and infinite values, naming where they are: that is the
//! only place the position is still known.
//!
//! Binary files are streamed through a small buffer straight into the output `Vec`, which is
//! sized from the file length, so a file is never held in memory twice. Declared sizes (NumPy
//! shapes, record dimensions, HDF5 shapes) are checked against the file length before anything is
//! allocated for them.
//!
//! [`read_any`] picks the reader from the file extension or an explicit [`Format`].

use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::str::FromStr;

use crate::error::{Error, Result};

mod csv;
#[cfg(feature = "hdf5")]
mod hdf5;
mod npy;
mod raw;
mod vecs;

pub use csv::{CsvOptions, HeaderMode, read_csv};
#[cfg(feature = "hdf5")]
pub use hdf5::{
    AnnBenchmarks, metric_of_distance, read_ann_benchmarks, read_hdf5, read_hdf5_attr_string,
    read_hdf5_i32,
};
pub use npy::read_npy;
pub use raw::read_raw_f32;
pub use vecs::{read_bvecs, read_fvecs, read_ivecs};

/// The largest vector dimension the readers accept (the index's limit: one constant).
pub use panns_core::MAX_DIM;

/// A dense set of `n` vectors of dimension `dim`, stored row-major as `f32`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dataset {
    /// The `n * dim` values, row after row.
    pub data: Vec<f32>,
    /// Number of rows (vectors).
    pub n: usize,
    /// Number of columns (the dimension of every vector).
    pub dim: usize,
}

impl Dataset {
    /// The rows as an `n x dim` array view (no copy).
    #[cfg(feature = "ndarray")]
    pub fn view(&self) -> ndarray::ArrayView2<'_, f32> {
        ndarray::ArrayView2::from_shape((self.n, self.dim), &self.data)
            .expect("a dataset holds n * dim floats")
    }

    /// Row `i` (0-based). Panics if `i >= n`, like slice indexing.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// All rows in order.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = &[f32]> {
        self.data.chunks_exact(self.dim.max(1))
    }
}

/// A dense set of `n` rows of `dim` `i32` values, row-major: ground-truth neighbour ids
/// (`.ivecs`, the `neighbors` dataset of an ann-benchmarks HDF5 file).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IntDataset {
    /// The `n * dim` values, row after row.
    pub data: Vec<i32>,
    /// Number of rows.
    pub n: usize,
    /// Number of columns.
    pub dim: usize,
}

impl IntDataset {
    /// Row `i` (0-based). Panics if `i >= n`, like slice indexing.
    pub fn row(&self, i: usize) -> &[i32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// All rows in order.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = &[i32]> {
        self.data.chunks_exact(self.dim.max(1))
    }
}

/// A dataset file format, as chosen by extension or named by the CLI's `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Delimited text with the separator of [`CsvOptions`] (`.csv`, `.txt`).
    Csv,
    /// Tab-separated text (`.tsv`).
    Tsv,
    /// NumPy `.npy`, 2-D, float32 or float64.
    Npy,
    /// TEXMEX `.fvecs`.
    Fvecs,
    /// TEXMEX `.bvecs` (bytes, converted to `f32`).
    Bvecs,
    /// Headerless little-endian `f32` (`.f32`, `.bin`, `.raw`); needs the dimension.
    RawF32,
    /// HDF5 (`.h5`, `.hdf5`); reads the dataset named in [`ReadOptions::dataset`], default `train`.
    Hdf5,
}

impl Format {
    /// Every format, in the order of the list printed for an unknown name.
    pub const ALL: [Format; 7] = [
        Format::Csv,
        Format::Tsv,
        Format::Npy,
        Format::Fvecs,
        Format::Bvecs,
        Format::RawF32,
        Format::Hdf5,
    ];

    /// The canonical name, as accepted by [`FromStr`].
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Tsv => "tsv",
            Format::Npy => "npy",
            Format::Fvecs => "fvecs",
            Format::Bvecs => "bvecs",
            Format::RawF32 => "raw",
            Format::Hdf5 => "hdf5",
        }
    }

    /// The format implied by the file extension (case-insensitive), if any.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?;
        ext.parse().ok()
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = Error;

    /// Parses a format name or extension, case-insensitively, with or without a leading dot:
    /// `csv`/`txt`, `tsv`, `npy`, `fvecs`, `bvecs`, `raw`/`f32`/`bin`, `hdf5`/`h5`.
    fn from_str(s: &str) -> Result<Format> {
        let lower = s.trim().trim_start_matches('.').to_ascii_lowercase();
        Ok(match lower.as_str() {
            "csv" | "txt" => Format::Csv,
            "tsv" => Format::Tsv,
            "npy" => Format::Npy,
            "fvecs" => Format::Fvecs,
            "bvecs" => Format::Bvecs,
            "raw" | "f32" | "bin" => Format::RawF32,
            "hdf5" | "h5" => Format::Hdf5,
            _ => {
                let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
                return Err(Error::invalid(format!(
                    "unknown dataset format '{s}'; expected one of: {}",
                    names.join(", ")
                )));
            }
        })
    }
}

/// Options of [`read_any`].
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// The format; `None` chooses it from the file extension.
    pub format: Option<Format>,
    /// HDF5 only: the dataset to read; `None` reads `train`.
    pub dataset: Option<String>,
    /// The dimension: required for raw `f32` files; for every other format, if given, the file's
    /// dimension must equal it.
    pub dim: Option<usize>,
    /// Delimited text options (for [`Format::Tsv`] the separator is always a tab).
    pub csv: CsvOptions,
}

/// Reads a dataset in any supported format, chosen by `options.format` or else by the file
/// extension: `.csv`/`.txt` (separator from `options.csv`), `.tsv` (tab), `.npy`, `.fvecs`,
/// `.bvecs`, `.f32`/`.bin`/`.raw` (needs `options.dim`), `.h5`/`.hdf5` (dataset
/// `options.dataset`, default `train`).
pub fn read_any(path: impl AsRef<Path>, options: &ReadOptions) -> Result<Dataset> {
    let path = path.as_ref();
    let format = match options.format {
        Some(format) => format,
        None => Format::from_path(path).ok_or_else(|| {
            Error::invalid(format!(
                "{}: cannot tell the dataset format from the extension; name it (one of: csv, \
                 tsv, npy, fvecs, bvecs, raw, hdf5)",
                path.display()
            ))
        })?,
    };
    let dataset = match format {
        Format::Csv => read_csv(path, &options.csv)?,
        Format::Tsv => read_csv(
            path,
            &CsvOptions {
                separator: b'\t',
                ..options.csv
            },
        )?,
        Format::Npy => read_npy(path)?,
        Format::Fvecs => read_fvecs(path)?,
        Format::Bvecs => read_bvecs(path)?,
        Format::RawF32 => {
            let dim = options.dim.ok_or_else(|| {
                Error::invalid(format!(
                    "{}: a raw f32 file has no header; give its dimension",
                    path.display()
                ))
            })?;
            return read_raw_f32(path, dim);
        }
        Format::Hdf5 => read_hdf5_any(path, options.dataset.as_deref().unwrap_or("train"))?,
    };
    if let Some(dim) = options.dim
        && dim != dataset.dim
    {
        return Err(Error::invalid(format!(
            "{}: the file's vectors have dimension {}, but dimension {dim} was asked for",
            path.display(),
            dataset.dim
        )));
    }
    Ok(dataset)
}

#[cfg(feature = "hdf5")]
fn read_hdf5_any(path: &Path, name: &str) -> Result<Dataset> {
    read_hdf5(path, name)
}

#[cfg(not(feature = "hdf5"))]
fn read_hdf5_any(path: &Path, _name: &str) -> Result<Dataset> {
    Err(Error::unsupported(
        path,
        "HDF5 support was not compiled in (cargo feature `hdf5`)",
    ))
}

/// Opens `path` for buffered reading and returns the reader and the file length in bytes.
/// For the binary formats, which are checked against their length: a FIFO, device,
/// directory or `/proc` file is refused by type before it is opened (a pipe would read
/// as 0 bytes, or block).
pub(crate) fn open(path: &Path) -> Result<(BufReader<File>, u64)> {
    let file = crate::format::open_regular_as(
        path,
        "not a regular file: this format is checked against the file length, so save the \
         data to a file first",
    )?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    Ok((BufReader::with_capacity(1 << 16, file), len))
}

/// Opens a delimited text file, which is streamed: a pipe or FIFO (`/dev/stdin`, `<(...)`)
/// is fine; a directory is refused. The length returned is 0 for a stream.
pub(crate) fn open_stream(path: &Path) -> Result<(BufReader<File>, u64)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::malformed(path, "is a directory"));
    }
    Ok((BufReader::with_capacity(1 << 16, file), meta.len()))
}

/// Size of the buffer binary readers convert through.
const CHUNK_BYTES: usize = 1 << 16;

/// Reads `count` elements of `SIZE` bytes each from `reader`, converts each with `convert` and
/// appends them to `out`. Reads through a fixed buffer, so nothing but `out` grows.
pub(crate) fn read_elements<R: Read, T, const SIZE: usize>(
    reader: &mut R,
    count: usize,
    out: &mut Vec<T>,
    convert: impl FnMut([u8; SIZE]) -> T,
) -> std::io::Result<()> {
    read_elements_with(reader, count, out, &mut Vec::new(), convert)
}

/// [`read_elements`] through the caller's `buf`, for readers that call it once per record:
/// `buf` grows to at most `min(count * SIZE, 64 KiB)` bytes once and is then reused as it is
/// (never re-zeroed: every byte used is overwritten by `read_exact` first).
pub(crate) fn read_elements_with<R: Read, T, const SIZE: usize>(
    reader: &mut R,
    count: usize,
    out: &mut Vec<T>,
    buf: &mut Vec<u8>,
    mut convert: impl FnMut([u8; SIZE]) -> T,
) -> std::io::Result<()> {
    let per_chunk = (CHUNK_BYTES / SIZE).max(1);
    let want = count.min(per_chunk) * SIZE;
    if buf.len() < want {
        buf.resize(want, 0);
    }
    let mut remaining = count;
    while remaining > 0 {
        let take = remaining.min(per_chunk);
        let bytes = &mut buf[..take * SIZE];
        reader.read_exact(bytes)?;
        for chunk in bytes.chunks_exact(SIZE) {
            let mut element = [0u8; SIZE];
            element.copy_from_slice(chunk);
            out.push(convert(element));
        }
        remaining -= take;
    }
    Ok(())
}

/// The first non-finite value of row-major `data` with dimension `dim`, as an
/// [`Error::NonFinite`].
pub(crate) fn check_finite(path: &Path, data: &[f32], dim: usize) -> Result<()> {
    match data.iter().position(|x| !x.is_finite()) {
        None => Ok(()),
        Some(i) => Err(Error::NonFinite {
            path: path.to_path_buf(),
            row: i / dim.max(1),
            dim: i % dim.max(1),
            value: f64::from(data[i]),
        }),
    }
}

/// Converts `f64` values to `f32`, remembering the first whose conversion is not finite (NaN,
/// infinite, or out of `f32` range) so that the error can quote the value as stored.
pub(crate) struct F64ToF32 {
    index: usize,
    /// Index and original value of the first bad element.
    pub first_bad: Option<(usize, f64)>,
}

impl F64ToF32 {
    /// A converter whose next element has index `start`.
    pub fn new(start: usize) -> Self {
        F64ToF32 {
            index: start,
            first_bad: None,
        }
    }

    /// Converts one value.
    pub fn convert(&mut self, x: f64) -> f32 {
        let y = x as f32;
        if !y.is_finite() && self.first_bad.is_none() {
            self.first_bad = Some((self.index, x));
        }
        self.index += 1;
        y
    }

    /// The [`Error::NonFinite`] for the first bad element, if any.
    pub fn check(&self, path: &Path, dim: usize) -> Result<()> {
        match self.first_bad {
            None => Ok(()),
            Some((i, value)) => Err(Error::NonFinite {
                path: path.to_path_buf(),
                row: i / dim.max(1),
                dim: i % dim.max(1),
                value,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_buffer_is_sized_to_the_record_and_reused() {
        let bytes: Vec<u8> = (0..32u8).collect();
        let mut reader = &bytes[..];
        let (mut out, mut buf) = (Vec::new(), Vec::new());
        read_elements_with(&mut reader, 4, &mut out, &mut buf, u32::from_le_bytes).unwrap();
        // 16 bytes for a 4-element record, not a zeroed 64 KiB chunk per call.
        assert_eq!(buf.len(), 16);
        let ptr = buf.as_ptr();
        read_elements_with(&mut reader, 4, &mut out, &mut buf, u32::from_le_bytes).unwrap();
        assert_eq!((buf.as_ptr(), buf.len()), (ptr, 16), "buffer reallocated");
        assert_eq!(out[4], u32::from_le_bytes([16, 17, 18, 19]));
        assert_eq!(out.len(), 8);
    }
}
