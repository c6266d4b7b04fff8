//! `panns query`: nearest neighbours of one vector or of a file of vectors.

use crate::cli::{OutputFormat, QueryArgs};
use crate::error::{CliError, Context, Result};
use crate::files;
use panns_core::{Neighbor, SearchParams};
use panns_io::LiveIndex;
use rayon::prelude::*;
use std::io::Write;

/// Parses `"0.1, 0.2,-3e-2"` into numbers.
pub fn parse_vector(s: &str) -> Result<Vec<f32>> {
    let v = s
        .split(',')
        .map(str::trim)
        .enumerate()
        .map(|(i, x)| {
            x.parse::<f32>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    CliError::usage(format!(
                        "--vector component {} is {x:?}, not a finite number",
                        i + 1
                    ))
                })
        })
        .collect::<Result<Vec<f32>>>()?;
    Ok(v)
}

/// The index `panns query` searches: one file, a live index (a log beside the file, or
/// a file with labels: its base without the removed items plus the added ones, by label),
/// or the shards of a manifest.
enum Target {
    One(panns_core::Index),
    Live(Box<LiveIndex>),
    Sharded(panns_io::ShardedIndex),
}

/// True if `path` is searched as a live index: it has a log beside it, or the file
/// carries labels (a compacted base whose log is gone, or a saved live index), whose
/// labels are then printed as the ids. A file that cannot be read is not: opening it as a
/// plain index reports the problem.
fn is_live(path: &std::path::Path) -> bool {
    panns_io::live::log_path(path).exists()
        || panns_io::read_header(path, &panns_io::OpenOptions::default()).is_ok_and(|h| {
            h.used_sections().iter().any(|s| {
                panns_io::SectionKind::from_code(s.kind()) == Some(panns_io::SectionKind::Labels)
            })
        })
}

/// True when `path` starts like a shard manifest.
fn is_manifest(path: &std::path::Path) -> bool {
    let mut head = [0u8; 12];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok_and(|()| head == *panns_io::shard::MANIFEST_MAGIC.as_bytes())
}

/// Runs `panns query`.
pub fn run(a: &QueryArgs) -> Result<()> {
    let k = a.k as usize;
    let target = if is_manifest(&a.index) {
        Target::Sharded(
            panns_io::ShardedIndex::open(&a.index, &panns_io::OpenOptions::default())
                .map_err(|e| files::io_error(e, &a.index))?,
        )
    } else if is_live(&a.index) {
        Target::Live(Box::new(
            LiveIndex::open(&a.index, false)
                .map_err(|e| crate::cmd_live::live_error(e, &a.index))?,
        ))
    } else {
        Target::One(files::open_index(&a.index)?)
    };
    let (queries, qdim, source) = match (&a.vector, &a.queries) {
        (Some(v), _) => {
            let v = parse_vector(v)?;
            let d = v.len();
            (v, d, None)
        }
        (None, Some(f)) => {
            let d = files::read_vectors(f, &a.read, "test")?;
            (d.data, d.dim, Some(f))
        }
        (None, None) => {
            return Err(CliError::usage(
                "give a query: --vector \"x,y,...\" or --queries FILE",
            ));
        }
    };
    let dim = match &target {
        Target::One(i) => i.dim(),
        Target::Live(l) => l.dim(),
        Target::Sharded(s) => s.dim(),
    };
    if qdim != dim {
        let e = CliError::new(format!(
            "the queries have {qdim} components but the index has dimension {dim}"
        ));
        return Err(match source {
            Some(f) => e.with_file(f),
            None => e.with_file(&a.index),
        });
    }
    let params = SearchParams::new(k).with_budget(a.budget);
    let results: Vec<Vec<(u64, f32)>> = match &target {
        Target::One(view) => {
            let r: Vec<Vec<Neighbor>> = if a.exact {
                queries
                    .par_chunks(dim)
                    .map(|q| view.linear_search(q, k))
                    .collect::<Result<_, _>>()?
            } else {
                view.search_batch(&queries, &params)?
            };
            r.into_iter()
                .map(|hits| {
                    hits.into_iter()
                        .map(|h| (u64::from(h.id), h.distance))
                        .collect()
                })
                .collect()
        }
        Target::Live(live) => {
            // A budget covering every item makes every part of the search exact.
            let params = if a.exact {
                params.with_budget(usize::MAX)
            } else {
                params
            };
            queries
                .par_chunks(dim)
                .enumerate()
                .map(|(i, q)| {
                    live.search(q, &params)
                        .map_err(|e| CliError::new(format!("query {i}: {e}")))
                })
                .collect::<Result<_>>()?
        }
        Target::Sharded(s) => {
            // --exact: every shard scans exactly once its budget covers half of it.
            let p = if a.exact {
                SearchParams::new(k).with_budget(s.len())
            } else {
                params
            };
            s.search_batch(&queries, &p)
                .map_err(|e| files::io_error(e, &a.index))?
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match write_results(&mut out, a.output, &results).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.in_file("<stdout>"),
    }
}

/// Writes the results in the chosen format.
fn write_results(
    w: &mut impl Write,
    fmt: OutputFormat,
    res: &[Vec<(u64, f32)>],
) -> std::io::Result<()> {
    match fmt {
        OutputFormat::Text => {
            for (q, hits) in res.iter().enumerate() {
                if res.len() > 1 {
                    writeln!(w, "query {q}")?;
                }
                writeln!(w, "{:>6} {:>10} {:>14}", "rank", "id", "distance")?;
                for (r, h) in hits.iter().enumerate() {
                    writeln!(w, "{:>6} {:>10} {:>14.6}", r + 1, h.0, h.1)?;
                }
            }
        }
        OutputFormat::Csv => {
            writeln!(w, "query,rank,id,distance")?;
            for (q, hits) in res.iter().enumerate() {
                for (r, h) in hits.iter().enumerate() {
                    writeln!(w, "{q},{},{},{}", r + 1, h.0, h.1)?;
                }
            }
        }
        OutputFormat::Json => {
            let v: Vec<serde_json::Value> = res
                .iter()
                .enumerate()
                .map(|(q, hits)| {
                    let n: Vec<serde_json::Value> = hits
                        .iter()
                        .map(|h| serde_json::json!({"id": h.0, "distance": h.1}))
                        .collect();
                    serde_json::json!({"query": q, "neighbors": n})
                })
                .collect();
            serde_json::to_writer_pretty(&mut *w, &serde_json::json!({ "results": v }))?;
            writeln!(w)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_parse_and_bad_components_are_named() {
        assert_eq!(parse_vector(" 1, -2.5,3e-1").unwrap(), vec![1.0, -2.5, 0.3]);
        let e = parse_vector("1,x").unwrap_err();
        assert!(e.what.contains("component 2"), "{}", e.what);
        assert!(parse_vector("1,nan").is_err());
    }
}
