//! Everything that touches files, through `panns-io`: data sets, ann-benchmarks
//! files and index files. Errors come back as [`CliError`]s naming the file.

use crate::cli::ReadArgs;
use crate::error::{CliError, Result};
use panns_core::Index;
use panns_io::{CsvOptions, Dataset, Format, OpenOptions, ReadOptions};
use std::path::Path;

/// Converts a `panns-io` error about `file` into a one-line [`CliError`] whose
/// message does not repeat the file name (it is shown in parentheses).
pub fn io_error(e: panns_io::Error, file: &Path) -> CliError {
    if let panns_io::Error::Io { source, .. } = e {
        return CliError::from(source).with_file(file);
    }
    let name = file.display().to_string();
    let text = e.to_string();
    let what = text
        .strip_prefix(&format!("{name}: "))
        .or_else(|| text.strip_suffix(&format!(": {name}")))
        .unwrap_or(&text);
    CliError::new(what).with_file(file)
}

/// Reads a data set file; `hdf5_default` is the HDF5 data set read when `--dataset`
/// is not given.
pub fn read_vectors(path: &Path, args: &ReadArgs, hdf5_default: &str) -> Result<Dataset> {
    let format = match &args.format {
        Some(f) => Some(
            f.parse::<Format>()
                .map_err(|e| CliError::usage(e.to_string()))?,
        ),
        None => None,
    };
    let effective = format.or_else(|| Format::from_path(path));
    let is_hdf5 = effective == Some(Format::Hdf5);
    if args.dataset.is_some() && !is_hdf5 {
        return Err(CliError::usage(format!(
            "--dataset names a data set inside an HDF5 file, but {} is not one{}",
            path.display(),
            effective.map_or(String::new(), |f| format!(" (format {f})"))
        )));
    }
    let is_text = matches!(effective, Some(Format::Csv | Format::Tsv));
    if (args.sep.is_some() || args.header.is_some()) && !is_text {
        return Err(CliError::usage(format!(
            "--sep and --header apply to CSV/text files, but {} is not one",
            path.display()
        )));
    }
    if args.sep.is_some() && effective == Some(Format::Tsv) {
        return Err(CliError::usage(
            "--sep cannot be used with a .tsv file (always tab-separated); use --format csv",
        ));
    }
    let mut csv = CsvOptions::default();
    if let Some(sep) = args.sep {
        csv.separator = sep;
    }
    if let Some(h) = args.header {
        csv.header = h.into();
    }
    let opts = ReadOptions {
        format,
        dataset: Some(
            args.dataset
                .clone()
                .unwrap_or_else(|| hdf5_default.to_string()),
        ),
        dim: args.dim,
        csv,
    };
    let d = panns_io::read_any(path, &opts).map_err(|e| io_error(e, path))?;
    if d.n == 0 || d.dim == 0 {
        return Err(CliError::new("the file holds no vectors").with_file(path));
    }
    Ok(d)
}

/// An ann-benchmarks data set, flattened for the evaluation.
#[derive(Debug, Clone)]
pub struct BenchData {
    /// Train vectors, row-major.
    pub train: Vec<f32>,
    /// Test (query) vectors, row-major.
    pub test: Vec<f32>,
    /// Number of train vectors.
    pub n_train: usize,
    /// Number of test vectors kept.
    pub n_test: usize,
    /// Dimension.
    pub dim: usize,
    /// The metric of the file's `distance` attribute.
    pub metric: panns_core::Metric,
    /// True top-10 ids of each kept query.
    pub true_ids: Vec<Vec<u32>>,
    /// 10th true distance of each kept query, when the file has `distances`.
    pub kth_distances: Option<Vec<f64>>,
}

/// Reads an ann-benchmarks HDF5 file, keeping at most `limit` queries, and checks
/// that it holds at least `k` true neighbours per query.
pub fn read_benchmark(path: &Path, limit: Option<usize>, k: usize) -> Result<BenchData> {
    let ab = panns_io::read_ann_benchmarks(path).map_err(|e| io_error(e, path))?;
    let nq = limit.unwrap_or(usize::MAX).min(ab.test.n);
    if nq == 0 {
        return Err(CliError::new("no test queries to evaluate").with_file(path));
    }
    if ab.neighbors.dim < k || ab.neighbors.n < nq {
        return Err(CliError::new(format!(
            "'neighbors' holds {} x {} ids; at least {nq} x {k} are needed",
            ab.neighbors.n, ab.neighbors.dim
        ))
        .with_file(path));
    }
    let mut true_ids = Vec::with_capacity(nq);
    for q in 0..nq {
        let row = &ab.neighbors.row(q)[..k];
        if let Some(&bad) = row.iter().find(|&&id| id < 0 || id as usize >= ab.train.n) {
            return Err(CliError::new(format!(
                "'neighbors' row {q} holds id {bad}, not a row of 'train'"
            ))
            .with_file(path));
        }
        true_ids.push(row.iter().map(|&id| id as u32).collect());
    }
    let kth_distances = ab
        .distances
        .as_ref()
        .filter(|d| d.dim >= k && d.n >= nq)
        .map(|d| (0..nq).map(|q| d.row(q)[k - 1] as f64).collect());
    let dim = ab.train.dim;
    let mut test = ab.test.data;
    test.truncate(nq * dim);
    Ok(BenchData {
        train: ab.train.data,
        test,
        n_train: ab.train.n,
        n_test: nq,
        dim,
        metric: ab.metric,
        true_ids,
        kth_distances,
    })
}

/// Saves an index to `path`.
pub fn save(index: &Index, path: &Path) -> Result<()> {
    panns_io::save_index(index, path).map_err(|e| io_error(e, path))
}

/// Size in bytes of the index once saved to a file (saved to a temporary file and
/// measured, so it is exactly what `panns build` would write).
pub fn saved_size(index: &Index) -> Result<u64> {
    panns_io::serialized_len(index).map_err(|e| CliError::new(e.to_string()))
}

/// Opens (maps and validates) an index file.
pub fn open_index(path: &Path) -> Result<Index> {
    panns_io::open_index(path, &OpenOptions::default()).map_err(|e| io_error(e, path))
}

/// The metric named by the `distance` root attribute of `path` if it is an HDF5 file
/// (by `--format` or extension) that has one.
pub fn hdf5_metric(path: &Path, args: &ReadArgs) -> Result<Option<panns_core::Metric>> {
    let format = match &args.format {
        Some(f) => f.parse::<Format>().ok(),
        None => Format::from_path(path),
    };
    if format != Some(Format::Hdf5) {
        return Ok(None);
    }
    let Some(name) =
        panns_io::read_hdf5_attr_string(path, "distance").map_err(|e| io_error(e, path))?
    else {
        return Ok(None);
    };
    match panns_io::metric_of_distance(&name) {
        Some(m) => Ok(Some(m)),
        None => Err(CliError::new(format!(
            "the file's distance attribute '{name}' is not a metric panns supports \
             (euclidean, angular, dot)"
        ))
        .with_file(path)),
    }
}
