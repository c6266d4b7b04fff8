//! `panns eval`: recall and speed over a grid of tree counts and candidate budgets on
//! an ann-benchmarks HDF5 file, measured the way `shared/bench/run_peers.py` measures
//! the peers, so that both land in comparable CSV rows and on one plot.

use crate::cli::EvalArgs;
use crate::error::{CliError, Context, Result};
use crate::measure::{self, Mode};
use crate::plot::{self, Plot, Series};
use crate::truth::{Recall, Scorer};
use crate::{files, peers, progress};
use panns_core::{IndexBuilder, SearchParams};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// recall@K is what is measured.
pub const K: usize = 10;

/// The CSV header: the agreed columns first, extras after.
pub const CSV_HEADER: &str = "dataset,metric,trees,budget,recall10,qps_single,qps_batch,build_s,\
index_bytes,library,recall10_ids,recall10_single,candidates,n_single,n_queries,n_train,dim,\
leaf_size,pool,split_candidates,seed,threads,graph_degree";

/// One measured setting.
#[derive(Debug, Clone)]
struct Row {
    library: &'static str,
    trees: usize,
    budget: usize,
    recall: Recall,
    recall_single: f64,
    qps_single: f64,
    qps_batch: f64,
    build_s: f64,
    index_bytes: u64,
    candidates: f64,
    n_single: usize,
}

/// Default beam widths for an index with a graph (HNSW-like ef values).
pub fn default_graph_budgets(n: usize) -> Vec<usize> {
    [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]
        .into_iter()
        .filter(|&b| 2 * b < n)
        .collect()
}

/// Default budgets for `n` items: a 1-2-3-5-7 series from 100 up to half the data.
pub fn default_budgets(n: usize) -> Vec<usize> {
    let limit = (n / 2).max(100);
    let mut v = Vec::new();
    let mut decade = 100;
    while decade <= limit {
        for m in [1, 15, 2, 3, 5, 7] {
            let b = if m == 15 { decade * 3 / 2 } else { decade * m };
            if b <= limit && !v.contains(&b) {
                v.push(b);
            }
        }
        decade *= 10;
    }
    v
}

/// Runs `panns eval`.
pub fn run(a: &EvalArgs) -> Result<()> {
    let path = a.data.as_path();
    if a.trees.is_empty() || a.trees.contains(&0) {
        return Err(CliError::usage("--trees needs one or more positive counts"));
    }
    if a.budgets.iter().any(|&b| b < K) {
        return Err(CliError::usage(format!(
            "every budget must be at least k = {K}"
        )));
    }
    if !a.point_seconds.is_finite() || a.point_seconds <= 0.0 {
        return Err(CliError::usage("--point-seconds must be positive"));
    }
    // Check what can fail cheaply before the long part.
    let peer_sets = a
        .peers
        .iter()
        .map(|f| Ok((f.clone(), peers::read(f)?)))
        .collect::<Result<Vec<_>>>()?;
    for out in a.csv.iter().chain(&a.plot) {
        let dir = out.parent().filter(|d| !d.as_os_str().is_empty());
        if dir.is_some_and(|d| !d.is_dir()) {
            return Err(CliError::new("the output directory does not exist").with_file(out));
        }
    }
    let pb = progress::spinner(format!("reading {}", path.display()));
    let data = files::read_benchmark(path, a.queries, K)?;
    pb.finish_and_clear();
    let metric = data.metric;
    let (n, dim, nq) = (data.n_train, data.dim, data.n_test);
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let scorer = Scorer::new(
        metric,
        dim,
        K,
        &data.train,
        &data.test,
        data.true_ids.clone(),
        data.kth_distances.clone(),
    );
    let budgets = if a.budgets.is_empty() && a.tree.graph > 0 {
        default_graph_budgets(n)
    } else if a.budgets.is_empty() {
        default_budgets(n)
    } else {
        a.budgets.clone()
    };
    let explicit = !a.budgets.is_empty();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.tree.threads)
        .build()
        .map_err(|e| CliError::new(format!("cannot start the thread pool: {e}")))?;
    let cap = Some(Duration::from_secs_f64(a.point_seconds));
    println!(
        "dataset {name}: {n} train x {dim}, {nq} queries, metric {metric}, {} threads for build and batch",
        pool.current_num_threads()
    );
    println!(
        "{:<10} {:>6} {:>7} {:>9} {:>9} {:>10} {:>11} {:>11} {:>8} {:>12}",
        "library",
        "trees",
        "budget",
        "recall10",
        "id rec",
        "cands",
        "qps_single",
        "qps_batch",
        "build_s",
        "index_bytes"
    );
    let print_row = |r: &Row| {
        println!(
            "{:<10} {:>6} {:>7} {:>9.4} {:>9.4} {:>10.0} {:>11.1} {:>11.1} {:>8.3} {:>12}",
            r.library,
            r.trees,
            r.budget,
            r.recall.threshold,
            r.recall.ids,
            r.candidates,
            r.qps_single,
            r.qps_batch,
            r.build_s,
            r.index_bytes
        )
    };
    let mut rows: Vec<Row> = Vec::new();
    for (gi, &trees) in a.trees.iter().enumerate() {
        let mut b = IndexBuilder::new(dim, metric).in_file(path)?;
        b.add_batch(&data.train).in_file(path)?;
        let t = Instant::now();
        let index = a.tree.build(b, trees)?;
        let build_s = t.elapsed().as_secs_f64();
        let index_bytes = files::saved_size(&index)?;
        let view = &index;
        if gi == 0 {
            // Exact search on the same data: the reference row.
            let pb = progress::spinner("timing exact search");
            let s = measure::single(view, &data.test, Mode::Exact(K), cap)?;
            let (res, qps_batch) = measure::batch(view, &data.test, Mode::Exact(K), &pool)?;
            pb.finish_and_clear();
            let r = Row {
                library: "bruteforce",
                trees: 0,
                budget: n,
                recall: scorer.recall(&res),
                recall_single: scorer.recall(&s.results).threshold,
                qps_single: s.qps,
                qps_batch,
                build_s: 0.0,
                index_bytes: (n * dim * 4) as u64,
                candidates: n as f64,
                n_single: s.timed,
            };
            print_row(&r);
            rows.push(r);
        }
        for &budget in &budgets {
            let mode = Mode::Approx(SearchParams::new(K).with_budget(budget));
            let s = measure::single(view, &data.test, mode, cap)?;
            let (res, qps_batch) = measure::batch(view, &data.test, mode, &pool)?;
            let r = Row {
                library: "panns",
                trees,
                budget,
                recall: scorer.recall(&res),
                recall_single: scorer.recall(&s.results).threshold,
                qps_single: s.qps,
                qps_batch,
                build_s,
                index_bytes,
                candidates: s.candidates,
                n_single: s.timed,
            };
            print_row(&r);
            let done = r.recall.threshold >= 0.999;
            rows.push(r);
            if done && !explicit {
                break;
            }
        }
    }
    if let Some(out) = &a.csv {
        let mut s = String::from(CSV_HEADER);
        s.push('\n');
        let t = &a.tree;
        for r in &rows {
            let _ = writeln!(
                s,
                "{name},{metric},{},{},{:.4},{:.1},{:.1},{:.3},{},{},{:.4},{:.4},{:.1},{},{nq},{n},{dim},{},{},{},{},{},{}",
                r.trees,
                r.budget,
                r.recall.threshold,
                r.qps_single,
                r.qps_batch,
                r.build_s,
                r.index_bytes,
                r.library,
                r.recall.ids,
                r.recall_single,
                r.candidates,
                r.n_single,
                t.leaf_size,
                t.pool,
                t.candidates,
                t.seed,
                pool.current_num_threads(),
                t.graph
            );
        }
        std::fs::write(out, s).in_file(out)?;
        println!("wrote {}", out.display());
    }
    if let Some(out) = &a.plot {
        let svg = plot::render(&plot_of(&name, a.tree.graph, &rows, &peer_sets));
        std::fs::write(out, svg).in_file(out)?;
        println!("wrote {}", out.display());
    }
    Ok(())
}

/// Our lines (one per tree count, plus the exact-search point) and the peers' frontiers.
fn plot_of(
    name: &str,
    graph: u32,
    rows: &[Row],
    peer_sets: &[(PathBuf, Vec<peers::PeerPoint>)],
) -> Plot {
    let mut series: Vec<Series> = Vec::new();
    for r in rows {
        let label = match r.library {
            "panns" if graph > 0 => format!("panns + graph {graph}, {} trees", r.trees),
            "panns" => format!("panns, {} trees", r.trees),
            _ => "panns exact search".to_string(),
        };
        match series.iter_mut().find(|s| s.label == label) {
            Some(s) => s.points.push((r.recall.threshold, r.qps_single)),
            None => series.push(Series {
                label,
                points: vec![(r.recall.threshold, r.qps_single)],
                dashed: false,
            }),
        }
    }
    for (f, pts) in peer_sets {
        let tag = (peer_sets.len() > 1).then(|| {
            f.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        series.extend(peers::frontiers(pts, tag.as_deref()));
    }
    let x_min = recall_axis_start(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    Plot {
        title: format!("{name}: recall@10 vs queries per second (up and right is better)"),
        x_min,
        series,
    }
}

/// Left end of the recall axis: just below the lowest recall plotted, on a 0.05 grid,
/// so points are spread over the width instead of crowded at the right edge.
fn recall_axis_start(recalls: impl Iterator<Item = f64>) -> f64 {
    let lowest = recalls.filter(|r| r.is_finite()).fold(1.0f64, f64::min);
    (((lowest - 0.02) / 0.05).floor() * 0.05).clamp(0.0, 0.9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_axis_starts_just_below_the_lowest_point() {
        let start = |v: &[f64]| recall_axis_start(v.iter().copied());
        assert!((start(&[0.93, 0.99, 0.97]) - 0.9).abs() < 1e-9);
        assert!((start(&[0.21, 0.8]) - 0.15).abs() < 1e-9);
        assert_eq!(start(&[0.001]), 0.0);
        assert!(
            (start(&[1.0]) - 0.9).abs() < 1e-9,
            "never a zero-width axis"
        );
    }

    #[test]
    fn default_budgets_scale_with_the_data() {
        assert_eq!(default_budgets(1597), vec![100, 150, 200, 300, 500, 700]);
        let big = default_budgets(1_000_000);
        assert_eq!(big.first(), Some(&100));
        assert_eq!(big.last(), Some(&500_000));
        assert!(big.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(default_budgets(50), vec![100]);
    }

    #[test]
    fn the_agreed_columns_come_first() {
        assert!(CSV_HEADER.starts_with(
            "dataset,metric,trees,budget,recall10,qps_single,qps_batch,build_s,index_bytes,"
        ));
    }
}
