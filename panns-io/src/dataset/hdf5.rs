//! HDF5 files (the ann-benchmarks layout), read with the pure-Rust `hdf5-reader` crate.

use std::path::Path;

use hdf5_reader::error::Error as H5Error;
use hdf5_reader::{ByteOrder, Datatype, Hdf5File, SliceInfo, SliceInfoElem};

use super::{Dataset, F64ToF32, IntDataset, check_finite};
use crate::error::{Error, Result};

/// Elements read per block: the decoder reads a whole selection into a buffer of its own before
/// decoding it, so reading row blocks bounds the memory beyond the result to one block.
const BLOCK_ELEMENTS: usize = 1 << 20;

/// The largest factor by which a chunked (possibly compressed) dataset may exceed the file size.
/// Deflate cannot compress better than about 1032:1, so a larger declared shape is a lie (or a
/// sparse file of fill values, which is not a dataset to index).
const MAX_EXPANSION: u64 = 1100;

/// An ann-benchmarks file: base vectors, queries, their exact neighbours and the metric.
#[derive(Debug, Clone, PartialEq)]
pub struct AnnBenchmarks {
    /// The base vectors (`train`).
    pub train: Dataset,
    /// The queries (`test`), of the same dimension.
    pub test: Dataset,
    /// For each query, the ids (rows of `train`) of its exact nearest neighbours, nearest first.
    pub neighbors: IntDataset,
    /// The distances to those neighbours, if the file has them (same shape as `neighbors`).
    pub distances: Option<Dataset>,
    /// The metric of the root attribute `distance`: `euclidean` (or `l2`) is
    /// [`Metric::Euclidean`](panns_core::Metric::Euclidean), `angular` (or `cosine`)
    /// [`Metric::Angular`](panns_core::Metric::Angular), `dot` or `ip`
    /// [`Metric::Dot`](panns_core::Metric::Dot).
    pub metric: panns_core::Metric,
}

/// Reads the 2-D float32 or float64 dataset `name` (a path like `train` or `/group/x`) of an HDF5
/// file as `f32`. A missing name gives [`Error::DatasetNotFound`] listing the datasets there are.
pub fn read_hdf5(path: impl AsRef<Path>, name: &str) -> Result<Dataset> {
    let path = path.as_ref();
    read_f32(&open(path)?, path, name)
}

/// Reads the 2-D integer dataset `name` of an HDF5 file (such as `neighbors`) as `i32`. Stored
/// `i32`, `i64`, `u32` and `u64` are accepted; values outside the `i32` range are an error.
pub fn read_hdf5_i32(path: impl AsRef<Path>, name: &str) -> Result<IntDataset> {
    let path = path.as_ref();
    read_i32(&open(path)?, path, name)
}

/// The string attribute `attr_name` of the file's root group (ann-benchmarks keep the metric in
/// `distance`), or `None` if the root has no such attribute.
pub fn read_hdf5_attr_string(path: impl AsRef<Path>, attr_name: &str) -> Result<Option<String>> {
    let path = path.as_ref();
    root_attr_string(&open(path)?, path, attr_name)
}

/// Reads an ann-benchmarks file: `train`, `test`, `neighbors`, the optional `distances` and the
/// root attribute `distance` (the metric), and checks that they fit together: same dimension
/// for train and test, one neighbour row per query, `distances` shaped like `neighbors`, every
/// neighbour id a row of `train`.
pub fn read_ann_benchmarks(path: impl AsRef<Path>) -> Result<AnnBenchmarks> {
    let path = path.as_ref();
    let file = open(path)?;
    let train = read_f32(&file, path, "train")?;
    let test = read_f32(&file, path, "test")?;
    let neighbors = read_i32(&file, path, "neighbors")?;
    let distances = match read_f32(&file, path, "distances") {
        Ok(d) => Some(d),
        Err(Error::DatasetNotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    let metric = root_attr_string(&file, path, "distance")?.ok_or_else(|| {
        Error::malformed(
            path,
            "the root attribute 'distance' (the metric) is missing",
        )
    })?;
    let metric = metric_of_distance(&metric).ok_or_else(|| {
        Error::unsupported(
            path,
            format!("distance attribute '{metric}' (euclidean, angular, dot and ip are supported)"),
        )
    })?;
    let bad = |message: String| Err(Error::malformed(path, message));
    if test.dim != train.dim {
        return bad(format!(
            "test has dimension {}, train has {}",
            test.dim, train.dim
        ));
    }
    if neighbors.n != test.n {
        return bad(format!(
            "neighbors has {} rows, test has {} queries",
            neighbors.n, test.n
        ));
    }
    if let Some(d) = &distances
        && (d.n, d.dim) != (neighbors.n, neighbors.dim)
    {
        return bad(format!(
            "distances has shape ({}, {}), neighbors has ({}, {})",
            d.n, d.dim, neighbors.n, neighbors.dim
        ));
    }
    if let Some(i) = neighbors
        .data
        .iter()
        .position(|&id| id < 0 || id as usize >= train.n)
    {
        return bad(format!(
            "neighbors row {}, column {} (0-based) is {}, not a row of train (0..{})",
            i / neighbors.dim,
            i % neighbors.dim,
            neighbors.data[i],
            train.n
        ));
    }
    Ok(AnnBenchmarks {
        train,
        test,
        neighbors,
        distances,
        metric,
    })
}

/// The metric named by an ann-benchmarks `distance` attribute (case-insensitive, trimmed):
/// `euclidean`/`l2`, `angular`/`cosine`, `dot`/`ip`/`inner_product`; `None` for others
/// (`hamming`, `jaccard`, ...).
pub fn metric_of_distance(name: &str) -> Option<panns_core::Metric> {
    name.trim().parse().ok()
}

fn open(path: &Path) -> Result<Hdf5File> {
    Hdf5File::open(path).map_err(|e| h5_error(path, e))
}

/// Maps a decoder error; I/O errors keep their kind.
fn h5_error(path: &Path, e: H5Error) -> Error {
    match e {
        H5Error::Io(io) => Error::io(path, io),
        other => Error::Hdf5 {
            path: path.to_path_buf(),
            message: other.to_string(),
        },
    }
}

fn is_not_found(e: &H5Error) -> bool {
    match e {
        H5Error::DatasetNotFound(_) | H5Error::GroupNotFound(_) => true,
        H5Error::Context { source, .. } => is_not_found(source),
        _ => false,
    }
}

/// Opens dataset `name`; if there is none, lists the datasets at the root.
fn find(file: &Hdf5File, path: &Path, name: &str) -> Result<hdf5_reader::Dataset> {
    match file.dataset(name) {
        Ok(ds) => Ok(ds),
        Err(e) if is_not_found(&e) => {
            let available = file
                .root_group()
                .and_then(|g| g.member_names())
                .map(|(_, datasets)| datasets)
                .unwrap_or_default();
            Err(Error::DatasetNotFound {
                path: path.to_path_buf(),
                name: name.to_string(),
                available,
            })
        }
        Err(e) => Err(h5_error(path, e)),
    }
}

/// Checks that `ds` is 2-D, non-empty, and that its size is plausible for the file; returns
/// `(n, dim)`.
fn shape_2d(
    path: &Path,
    name: &str,
    ds: &hdf5_reader::Dataset,
    elem_size: u64,
) -> Result<(usize, usize)> {
    let shape = ds.shape();
    let &[n, dim] = shape else {
        return Err(Error::unsupported(
            path,
            format!("dataset '{name}' has shape {shape:?}; a 2-D dataset (rows, dim) is expected"),
        ));
    };
    if n == 0 || dim == 0 {
        return Err(Error::malformed(
            path,
            format!("dataset '{name}' has shape ({n}, {dim}): no values"),
        ));
    }
    let file_len = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    match plausible_size(n, dim, elem_size, file_len, ds.chunks().is_some()) {
        Some(shape) => Ok(shape),
        None => Err(Error::malformed(
            path,
            format!(
                "dataset '{name}' declares shape ({n}, {dim}) of {elem_size}-byte values, more than \
                 a {file_len}-byte file can hold"
            ),
        )),
    }
}

/// `(n, dim)` as `usize` if `n * dim` values of `elem_size` bytes can come from a file of
/// `file_len` bytes: at most the file length when stored plainly, at most [`MAX_EXPANSION`] times
/// it when chunked (and so possibly compressed).
fn plausible_size(
    n: u64,
    dim: u64,
    elem_size: u64,
    file_len: u64,
    chunked: bool,
) -> Option<(usize, usize)> {
    let limit = if chunked {
        file_len.saturating_mul(MAX_EXPANSION)
    } else {
        file_len
    };
    let bytes = n.checked_mul(dim)?.checked_mul(elem_size)?;
    if bytes > limit || usize::try_from(bytes).is_err() || isize::try_from(bytes).is_err() {
        return None;
    }
    Some((usize::try_from(n).ok()?, usize::try_from(dim).ok()?))
}

/// Reads rows `[r0, r1)` of a 2-D dataset as `T`.
fn read_rows<T: hdf5_reader::H5Type>(
    ds: &hdf5_reader::Dataset,
    r0: usize,
    r1: usize,
    dim: usize,
) -> std::result::Result<Vec<T>, H5Error> {
    let sel = SliceInfo {
        selections: vec![
            SliceInfoElem::Slice {
                start: r0 as u64,
                end: r1 as u64,
                step: 1,
            },
            SliceInfoElem::Slice {
                start: 0,
                end: dim as u64,
                step: 1,
            },
        ],
    };
    Ok(ds.read_slice::<T>(&sel)?.iter().cloned().collect())
}

/// Reads a 2-D dataset block by block as `T`, converting each value with `convert` (which gets
/// the flat index and the value) into `out`.
fn read_blocks<T: hdf5_reader::H5Type + Copy, U>(
    ds: &hdf5_reader::Dataset,
    n: usize,
    dim: usize,
    out: &mut Vec<U>,
    mut convert: impl FnMut(usize, T) -> std::result::Result<U, Error>,
) -> std::result::Result<(), BlockError> {
    let rows_per_block = (BLOCK_ELEMENTS / dim).max(1);
    let mut r0 = 0;
    while r0 < n {
        let r1 = (r0 + rows_per_block).min(n);
        for x in read_rows::<T>(ds, r0, r1, dim).map_err(BlockError::Hdf5)? {
            let index = out.len();
            out.push(convert(index, x).map_err(BlockError::Value)?);
        }
        r0 = r1;
    }
    Ok(())
}

/// Why [`read_blocks`] stopped.
enum BlockError {
    Hdf5(H5Error),
    Value(Error),
}

impl BlockError {
    fn into_error(self, path: &Path) -> Error {
        match self {
            BlockError::Hdf5(e) => h5_error(path, e),
            BlockError::Value(e) => e,
        }
    }
}

fn read_f32(file: &Hdf5File, path: &Path, name: &str) -> Result<Dataset> {
    let ds = find(file, path, name)?;
    let (data, n, dim) = match ds.dtype().clone() {
        Datatype::FloatingPoint { size: 4, .. } => {
            let (n, dim) = shape_2d(path, name, &ds, 4)?;
            let mut data = Vec::with_capacity(n * dim);
            read_blocks::<f32, f32>(&ds, n, dim, &mut data, |_, x| Ok(x))
                .map_err(|e| e.into_error(path))?;
            check_finite(path, &data, dim)?;
            (data, n, dim)
        }
        Datatype::FloatingPoint { size: 8, .. } => {
            let (n, dim) = shape_2d(path, name, &ds, 8)?;
            let mut data = Vec::with_capacity(n * dim);
            let mut conv = F64ToF32::new(0);
            read_blocks::<f64, f32>(&ds, n, dim, &mut data, |_, x| Ok(conv.convert(x)))
                .map_err(|e| e.into_error(path))?;
            conv.check(path, dim)?;
            (data, n, dim)
        }
        other => {
            return Err(Error::unsupported(
                path,
                format!(
                    "dataset '{name}' has type {}; float32 or float64 is expected",
                    describe(&other)
                ),
            ));
        }
    };
    Ok(Dataset { data, n, dim })
}

fn read_i32(file: &Hdf5File, path: &Path, name: &str) -> Result<IntDataset> {
    let ds = find(file, path, name)?;
    let out_of_range = |dim: usize| {
        move |index: usize, value: i128| {
            i32::try_from(value).map_err(|_| {
                Error::malformed(
                    path,
                    format!(
                        "dataset '{name}' row {}, column {} (0-based): {value} does not fit in i32",
                        index / dim,
                        index % dim
                    ),
                )
            })
        }
    };
    let (data, n, dim) = match ds.dtype().clone() {
        Datatype::FixedPoint {
            size: 4,
            signed: true,
            ..
        } => {
            let (n, dim) = shape_2d(path, name, &ds, 4)?;
            let mut data = Vec::with_capacity(n * dim);
            read_blocks::<i32, i32>(&ds, n, dim, &mut data, |_, x| Ok(x))
                .map_err(|e| e.into_error(path))?;
            (data, n, dim)
        }
        Datatype::FixedPoint {
            size: size @ (4 | 8),
            signed,
            ..
        } => {
            let (n, dim) = shape_2d(path, name, &ds, u64::from(size))?;
            let mut data = Vec::with_capacity(n * dim);
            let check = out_of_range(dim);
            let result = match (size, signed) {
                (8, true) => {
                    read_blocks::<i64, i32>(&ds, n, dim, &mut data, |i, x| check(i, x.into()))
                }
                (8, false) => {
                    read_blocks::<u64, i32>(&ds, n, dim, &mut data, |i, x| check(i, x.into()))
                }
                _ => read_blocks::<u32, i32>(&ds, n, dim, &mut data, |i, x| check(i, x.into())),
            };
            result.map_err(|e| e.into_error(path))?;
            (data, n, dim)
        }
        other => {
            return Err(Error::unsupported(
                path,
                format!(
                    "dataset '{name}' has type {}; a 32- or 64-bit integer is expected",
                    describe(&other)
                ),
            ));
        }
    };
    Ok(IntDataset { data, n, dim })
}

/// A short description of an HDF5 datatype for messages.
fn describe(dtype: &Datatype) -> String {
    let order = |o: &ByteOrder| {
        if matches!(o, ByteOrder::BigEndian) {
            "big-endian "
        } else {
            ""
        }
    };
    match dtype {
        Datatype::FloatingPoint { size, byte_order } => {
            format!("{}float{}", order(byte_order), u32::from(*size) * 8)
        }
        Datatype::FixedPoint {
            size,
            signed,
            byte_order,
        } => format!(
            "{}{}int{}",
            order(byte_order),
            if *signed { "" } else { "u" },
            u32::from(*size) * 8
        ),
        Datatype::String { .. } | Datatype::VarLen { .. } => "string".to_string(),
        Datatype::Compound { .. } => "compound".to_string(),
        other => format!("{other:?}"),
    }
}

fn root_attr_string(file: &Hdf5File, path: &Path, attr_name: &str) -> Result<Option<String>> {
    let root = file.root_group().map_err(|e| h5_error(path, e))?;
    let attr = match root.attribute(attr_name) {
        Ok(a) => a,
        Err(H5Error::AttributeNotFound(_)) => return Ok(None),
        Err(e) => return Err(h5_error(path, e)),
    };
    match attr.read_string() {
        Ok(s) => Ok(Some(s)),
        Err(e) => Err(Error::Hdf5 {
            path: path.to_path_buf(),
            message: format!("attribute '{attr_name}' is not a string: {e}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_sizes_are_bounded_by_the_file() {
        assert_eq!(plausible_size(10, 4, 4, 160, false), Some((10, 4)));
        assert_eq!(plausible_size(10, 4, 4, 159, false), None);
        assert_eq!(plausible_size(10, 4, 4, 1, true), Some((10, 4)));
        assert_eq!(plausible_size(1 << 20, 1 << 10, 4, 1 << 20, true), None);
        assert_eq!(plausible_size(1 << 40, 1 << 40, 8, u64::MAX, true), None);
        assert_eq!(plausible_size(u64::MAX, 2, 1, u64::MAX, true), None);
    }
}
