//! TEXMEX `.fvecs`, `.bvecs` and `.ivecs`: each record is a little-endian `i32` dimension
//! followed by that many values (`f32`, `u8` or `i32`).

use std::io::Read;
use std::path::Path;

use super::{Dataset, IntDataset, MAX_DIM, check_finite, open, read_elements_with};
use crate::error::{Error, Result};

/// Reads a `.fvecs` file (records of an `i32` dimension and that many `f32`). Every record must
/// have the dimension of the first; values must be finite.
pub fn read_fvecs(path: impl AsRef<Path>) -> Result<Dataset> {
    let path = path.as_ref();
    let (data, n, dim) = read_vecs(path, f32::from_le_bytes)?;
    check_finite(path, &data, dim)?;
    Ok(Dataset { data, n, dim })
}

/// Reads a `.bvecs` file (records of an `i32` dimension and that many bytes), converting each
/// byte to `f32`. Every record must have the dimension of the first.
pub fn read_bvecs(path: impl AsRef<Path>) -> Result<Dataset> {
    let (data, n, dim) = read_vecs(path.as_ref(), |[b]: [u8; 1]| f32::from(b))?;
    Ok(Dataset { data, n, dim })
}

/// Reads an `.ivecs` file (records of an `i32` dimension and that many `i32`), as used for
/// ground-truth neighbour ids. Every record must have the dimension of the first.
pub fn read_ivecs(path: impl AsRef<Path>) -> Result<IntDataset> {
    let (data, n, dim) = read_vecs(path.as_ref(), i32::from_le_bytes)?;
    Ok(IntDataset { data, n, dim })
}

/// Streams the records of a TEXMEX file whose values have `SIZE` bytes each; returns the values,
/// the number of records and the dimension.
fn read_vecs<T, const SIZE: usize>(
    path: &Path,
    mut convert: impl FnMut([u8; SIZE]) -> T,
) -> Result<(Vec<T>, usize, usize)> {
    let (mut reader, len) = open(path)?;
    if len == 0 {
        return Err(Error::malformed(path, "the file is empty (no records)"));
    }
    let io = |e| Error::io(path, e);
    let mut data: Vec<T> = Vec::new();
    let mut dim = 0usize;
    let mut record_bytes = 0u64;
    let mut pos = 0u64;
    let mut record = 0usize;
    let mut buf = Vec::new(); // one record's bytes, reused for every record
    while pos < len {
        let left = len - pos;
        if left < 4 {
            return Err(Error::malformed(
                path,
                format!(
                    "record {record} (0-based) is truncated: {left} bytes left at offset {pos}, \
                     a record starts with a 4-byte dimension"
                ),
            ));
        }
        let mut header = [0u8; 4];
        reader.read_exact(&mut header).map_err(io)?;
        let declared = i32::from_le_bytes(header);
        if record == 0 {
            dim = match usize::try_from(declared) {
                Ok(d) if (1..=MAX_DIM).contains(&d) => d,
                _ => {
                    return Err(Error::malformed(
                        path,
                        format!(
                            "record 0 declares dimension {declared}; expected 1..={MAX_DIM} \
                             (is this really a {} file?)",
                            kind(SIZE)
                        ),
                    ));
                }
            };
            record_bytes = 4 + (dim * SIZE) as u64;
            // Bounded by the file length, so a lying header cannot cause a huge allocation.
            let records = usize::try_from(len / record_bytes).unwrap_or(usize::MAX);
            data.try_reserve_exact(records.saturating_mul(dim))
                .map_err(|_| {
                    Error::malformed(path, format!("cannot allocate {records} x {dim} values"))
                })?;
        } else if usize::try_from(declared).ok() != Some(dim) {
            return Err(Error::malformed(
                path,
                format!(
                    "record {record} (0-based, offset {pos}) declares dimension {declared}, but \
                     record 0 declares {dim}; all records must have the same dimension"
                ),
            ));
        }
        if left < record_bytes {
            return Err(Error::malformed(
                path,
                format!(
                    "record {record} (0-based) is truncated: {} of its {} value bytes \
                     (dimension {dim}) are in the file",
                    left - 4,
                    record_bytes - 4
                ),
            ));
        }
        read_elements_with(&mut reader, dim, &mut data, &mut buf, &mut convert).map_err(io)?;
        pos += record_bytes;
        record += 1;
    }
    Ok((data, record, dim))
}

/// The format name for an element size, for messages.
fn kind(size: usize) -> &'static str {
    if size == 1 { ".bvecs" } else { ".fvecs/.ivecs" }
}
