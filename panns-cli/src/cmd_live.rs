//! `panns add`, `panns remove`, `panns compact`: changing a live index
//! (`panns_io::LiveIndex`), and the live lines of `panns info`.

use crate::cli::{AddArgs, CompactArgs, RemoveArgs};
use crate::error::{CliError, Result};
use crate::files;
use panns_io::LiveIndex;
use std::path::Path;
use std::time::Instant;

fn open_writer(path: &Path, auto_compact: bool) -> Result<LiveIndex> {
    let options = panns_io::LiveOptions {
        auto_compact,
        ..Default::default()
    };
    LiveIndex::open_with(path, true, options).map_err(|e| live_error(e, path))
}

/// A live-index error as a one-line CLI error naming the right file.
pub(crate) fn live_error(e: panns_io::Error, index: &Path) -> CliError {
    match &e {
        panns_io::Error::Locked { lock } => {
            let lock = lock.clone();
            CliError::new("another writer holds the lock of this index; try again when it is done")
                .with_file(lock)
        }
        panns_io::Error::CorruptLog { path, .. } | panns_io::Error::Corrupt { path, .. } => {
            let path = path.clone();
            files::io_error(e, &path)
        }
        _ => files::io_error(e, index),
    }
}

/// Parses `--labels`: `START..END`, `START..`, or a file of one label per line.
fn labels(spec: Option<&str>, n: usize, next: u64) -> Result<Vec<u64>> {
    let Some(spec) = spec else {
        return Ok((next..next + n as u64).collect());
    };
    if let Some((a, b)) = spec.split_once("..")
        && a.chars().all(|c| c.is_ascii_digit())
        && !a.is_empty()
        && !Path::new(spec).exists()
    {
        let start: u64 = a
            .parse()
            .map_err(|_| CliError::usage(format!("--labels {spec}: '{a}' is not a label")))?;
        let end = if b.is_empty() {
            start + n as u64
        } else {
            b.parse()
                .map_err(|_| CliError::usage(format!("--labels {spec}: '{b}' is not a label")))?
        };
        if end.checked_sub(start) != Some(n as u64) {
            return Err(CliError::usage(format!(
                "--labels {spec} names {} labels, the data file has {n} rows",
                end.saturating_sub(start)
            )));
        }
        return Ok((start..end).collect());
    }
    let path = Path::new(spec);
    let text = std::fs::read_to_string(path).map_err(|e| CliError::from(e).with_file(path))?;
    let mut out = Vec::with_capacity(n);
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        out.push(t.parse::<u64>().map_err(|_| {
            CliError::new(format!(
                "line {}: '{t}' is not a label (an integer 0 or more)",
                i + 1
            ))
            .with_file(path)
        })?);
    }
    if out.len() != n {
        return Err(
            CliError::new(format!("{} labels, the data file has {n} rows", out.len()))
                .with_file(path),
        );
    }
    Ok(out)
}

fn summary(w: &LiveIndex) -> String {
    format!(
        "{} items, generation {}, delta {}, tombstones {}",
        w.len(),
        w.generation(),
        w.delta_len(),
        w.tombstones()
    )
}

/// Runs `panns add`.
pub fn add(a: &AddArgs) -> Result<()> {
    let data = files::read_vectors(&a.data, &a.read, "train")?;
    let mut w = open_writer(&a.index, !a.no_compact)?;
    if data.dim != w.dim() {
        return Err(CliError::new(format!(
            "the data has dimension {}, the index {}",
            data.dim,
            w.dim()
        ))
        .with_file(&a.data));
    }
    let labels = labels(a.labels.as_deref(), data.n, w.next_label())?;
    let t = Instant::now();
    w.add_batch(&labels, &data.data)
        .map_err(|e| live_error(e, &a.data))?;
    w.commit().map_err(|e| live_error(e, &a.index))?;
    println!(
        "added {} items to {} in {:.2} s: {}",
        data.n,
        a.index.display(),
        t.elapsed().as_secs_f64(),
        summary(&w)
    );
    Ok(())
}

/// Runs `panns remove`.
pub fn remove(a: &RemoveArgs) -> Result<()> {
    let mut w = open_writer(&a.index, !a.no_compact)?;
    let n = w.remove(&a.labels).map_err(|e| live_error(e, &a.index))?;
    w.commit().map_err(|e| live_error(e, &a.index))?;
    println!(
        "removed {n} of {} labels from {}: {}",
        a.labels.len(),
        a.index.display(),
        summary(&w)
    );
    Ok(())
}

/// Runs `panns compact`.
pub fn compact(a: &CompactArgs) -> Result<()> {
    let mut w = open_writer(&a.index, false)?;
    let t = Instant::now();
    w.compact().map_err(|e| live_error(e, &a.index))?;
    println!(
        "compacted {} in {:.2} s: {}",
        a.index.display(),
        t.elapsed().as_secs_f64(),
        summary(&w)
    );
    Ok(())
}

/// The live-index lines of `panns info` when `path` has a log beside it.
pub fn info_lines(path: &Path) -> Result<Option<Vec<String>>> {
    if !panns_io::live::log_path(path).exists() {
        return Ok(None);
    }
    let r = LiveIndex::open(path, false).map_err(|e| live_error(e, path))?;
    Ok(Some(vec![
        format!("live items       {}", r.len()),
        format!("generation       {}", r.generation()),
        format!(
            "delta            {} items added since the base",
            r.delta_len()
        ),
        format!(
            "tombstones       {} base items removed or replaced",
            r.tombstones()
        ),
        format!("log              {} commits since the base", r.commits()),
    ]))
}
