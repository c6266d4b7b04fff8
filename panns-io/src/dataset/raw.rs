//! Headerless little-endian `f32` files.

use std::path::Path;

use super::{Dataset, check_finite, open, read_elements};
use crate::error::{Error, Result};

/// Reads a headerless file of little-endian `f32` values, `dim` per vector.
///
/// The file size must be a non-zero multiple of `4 * dim` bytes; `dim = 0` is an error. The
/// values are streamed straight into the result (sized from the file length) and must be finite.
pub fn read_raw_f32(path: impl AsRef<Path>, dim: usize) -> Result<Dataset> {
    let path = path.as_ref();
    if dim == 0 {
        return Err(Error::invalid(format!(
            "{}: the dimension of a raw f32 file must be at least 1, got 0",
            path.display()
        )));
    }
    let (mut reader, len) = open(path)?;
    let row_bytes = dim.checked_mul(4).ok_or_else(|| {
        Error::invalid(format!("{}: dimension {dim} is too large", path.display()))
    })? as u64;
    if len == 0 {
        return Err(Error::malformed(path, "the file is empty"));
    }
    if len % row_bytes != 0 {
        return Err(Error::malformed(
            path,
            format!(
                "file size {len} bytes is not a multiple of 4 * dim = {row_bytes} (dim {dim}); \
                 {} whole rows and {} bytes left over",
                len / row_bytes,
                len % row_bytes
            ),
        ));
    }
    let n = usize::try_from(len / row_bytes)
        .map_err(|_| Error::malformed(path, "the file is too large for this platform"))?;
    let count = n * dim;
    let mut data = Vec::new();
    data.try_reserve_exact(count).map_err(|_| {
        Error::malformed(
            path,
            format!("cannot allocate {n} x {dim} f32 values ({len} bytes)"),
        )
    })?;
    read_elements(&mut reader, count, &mut data, f32::from_le_bytes)
        .map_err(|e| Error::io(path, e))?;
    check_finite(path, &data, dim)?;
    Ok(Dataset { data, n, dim })
}
