//! `panns build`: read a data set, build the forest, save the index file.

use crate::cli::BuildArgs;
use crate::error::{CliError, Context, Result};
use crate::{files, progress};
use panns_core::IndexBuilder;
use std::time::Instant;

/// Human-readable byte count (binary units).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Runs `panns build`.
pub fn run(a: &BuildArgs) -> Result<()> {
    let params = a.tree.params(a.trees);
    params
        .validate()
        .map_err(|e| CliError::usage(e.to_string()))?;
    let dir = a.output.parent().filter(|d| !d.as_os_str().is_empty());
    if dir.is_some_and(|d| !d.is_dir()) {
        return Err(CliError::new("the output directory does not exist").with_file(&a.output));
    }
    let file_metric = files::hdf5_metric(&a.data, &a.read)?;
    let metric: panns_core::Metric = match (a.metric.map(Into::into), file_metric) {
        (Some(given), Some(file)) if given != file => {
            return Err(CliError::usage(format!(
                "--metric {given} disagrees with the file's distance attribute '{file}' \
                 (leave --metric out to use the file's)"
            ))
            .with_file(&a.data));
        }
        (Some(given), _) => given,
        (None, Some(file)) => file,
        (None, None) => panns_core::Metric::Euclidean,
    };
    let t0 = Instant::now();
    let pb = progress::spinner(format!("reading {}", a.data.display()));
    let data = files::read_vectors(&a.data, &a.read, "train")?;
    pb.finish_and_clear();
    progress::mem_trace("read");
    let read_s = t0.elapsed().as_secs_f64();

    let t1 = Instant::now();
    let mut b = IndexBuilder::new(data.dim, metric).in_file(&a.data)?;
    // The file's buffer becomes the builder's (no second copy of the vectors).
    b.add_vec(data.data).in_file(&a.data)?;
    progress::mem_trace("added");
    let index = a.tree.build(b, a.trees).in_file(&a.data)?;
    progress::mem_trace("built");
    let build_s = t1.elapsed().as_secs_f64();

    let t2 = Instant::now();
    let pb = progress::spinner(format!("writing {}", a.output.display()));
    files::save(&index, &a.output)?;
    pb.finish_and_clear();
    progress::mem_trace("saved");
    let save_s = t2.elapsed().as_secs_f64();
    let size = std::fs::metadata(&a.output).in_file(&a.output)?.len();

    println!("index      {}", a.output.display());
    println!("items      {} x {} ({metric})", data.n, data.dim);
    println!(
        "trees      {} (leaf size {}, pool {}, candidates {}, split {}, seed {})",
        a.trees,
        params.leaf_size,
        params.pool_size,
        params.candidates,
        format!("{:?}", params.split).to_lowercase(),
        params.seed
    );
    if a.tree.graph > 0 {
        println!("graph      {} neighbours per item", a.tree.graph);
    }
    println!("file size  {size} bytes ({})", human_bytes(size));
    println!(
        "time       {:.2} s (read {read_s:.2} s, build {build_s:.2} s, save {save_s:.2} s)",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_well() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
    }
}
