//! `panns shard`: split a data set into shards, build each, write their manifest.

use crate::cli::ShardArgs;
use crate::error::{CliError, Result};
use crate::files;
use panns_io::ShardBuildOptions;
use std::time::Instant;

/// Runs `panns shard`.
pub fn run(a: &ShardArgs) -> Result<()> {
    let params = a.tree.params(a.trees);
    params
        .validate()
        .map_err(|e| CliError::usage(e.to_string()))?;
    let file_metric = files::hdf5_metric(&a.data, &a.read)?;
    let metric: panns_core::Metric = match (a.metric.map(Into::into), file_metric) {
        (Some(given), Some(file)) if given != file => {
            return Err(CliError::usage(format!(
                "--metric {given} disagrees with the file's distance attribute '{file}'"
            ))
            .with_file(&a.data));
        }
        (Some(given), _) => given,
        (None, Some(file)) => file,
        (None, None) => panns_core::Metric::Euclidean,
    };
    let data = files::read_vectors(&a.data, &a.read, "train")?;
    let t = Instant::now();
    let opts = ShardBuildOptions {
        n_shards: a.shards as usize,
        params,
        graph: a.tree.graph_params(),
        ..Default::default()
    };
    let manifest = panns_io::build_shards(&data.data, data.dim, metric, None, &a.output, &opts)
        .map_err(|e| files::io_error(e, &a.output))?;
    println!("manifest   {}", manifest.display());
    println!(
        "items      {} x {} ({metric}) in {} shards",
        data.n, data.dim, a.shards
    );
    println!("built in   {:.2} s", t.elapsed().as_secs_f64());
    Ok(())
}
