//! Helpers shared by the panns criterion benches: locating the shared data sets
//! (`../shared/data`, or the directory in `PANNS_DATA`) and loading them, skipping
//! politely when a file is absent.
#![warn(missing_docs)]

use panns_core::Metric;
use std::path::PathBuf;

/// A loaded ann-benchmarks data set.
#[derive(Debug, Clone)]
pub struct BenchSet {
    /// File stem, e.g. `sift-images-50k-128-euclidean`.
    pub name: String,
    /// Train vectors, row-major.
    pub train: Vec<f32>,
    /// Number of train vectors.
    pub n: usize,
    /// Dimension.
    pub dim: usize,
    /// Test vectors, row-major (at most the number asked for).
    pub test: Vec<f32>,
    /// The data set's metric.
    pub metric: Metric,
}

/// The directory holding the shared data sets.
pub fn data_dir() -> PathBuf {
    match std::env::var_os("PANNS_DATA") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"),
    }
}

/// Loads `NAME.hdf5` from [`data_dir`] with at most `max_queries` test vectors, or
/// prints why it is skipped and returns `None`.
pub fn load(name: &str, max_queries: usize) -> Option<BenchSet> {
    let path = data_dir().join(format!("{name}.hdf5"));
    if !path.exists() {
        eprintln!("skipped: {} is absent", path.display());
        return None;
    }
    let train = match panns_io::read_hdf5(&path, "train") {
        Ok(d) => d,
        Err(e) => {
            eprintln!("skipped: {e}");
            return None;
        }
    };
    let test = panns_io::read_hdf5(&path, "test").ok()?;
    let metric = match panns_io::read_hdf5_attr_string(&path, "distance") {
        Ok(Some(m)) if m.eq_ignore_ascii_case("angular") => Metric::Angular,
        _ => Metric::Euclidean,
    };
    let nq = test.n.min(max_queries);
    Some(BenchSet {
        name: name.to_string(),
        n: train.n,
        dim: train.dim,
        train: train.data,
        test: test.data[..nq * test.dim].to_vec(),
        metric,
    })
}

/// The shared data sets used by the build and search benches, smallest first.
pub const DATA_SETS: [&str; 4] = [
    "digits-64-euclidean",
    "gauss-5000x200-euclidean",
    "minilm-docs-20k-384-angular",
    "sift-images-50k-128-euclidean",
];

/// `len` floats starting at a 64-byte aligned address inside `buf` (which must hold
/// `len + 16` floats), like the rows of an index.
pub fn aligned(buf: &mut [f32], len: usize) -> &mut [f32] {
    let off = buf.as_ptr().align_offset(64).min(16);
    &mut buf[off..off + len]
}
