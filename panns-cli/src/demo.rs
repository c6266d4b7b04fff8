//! `panns demo`: the original panns evaluation, generated in memory (no download).
//!
//! 5000 unit-normalised Gaussian vectors of dimension 200, 50 fresh random unit
//! queries, top 10, 128 trees, Euclidean and angular; exact ground truth by linear
//! search; a table of recall, candidates and speed over a sweep of budgets, printed
//! next to the figures of the original panns README.

use crate::error::Result;
use crate::measure::{self, Mode};
use crate::truth::Scorer;
use panns_core::rng::Rng;
use panns_core::{BuildParams, IndexBuilder, Metric, SearchParams};
use std::time::Instant;

/// Options of `panns demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Fewer trees and queries, for a fast smoke run.
    pub quick: bool,
    /// Seed of the data, the queries and the build.
    pub seed: u64,
    /// Build threads (0: all cores).
    pub threads: usize,
}

const N: usize = 5000;
const DIM: usize = 200;
const K: usize = 10;

/// `n` standard Gaussian rows of `dim` components, each scaled to unit length.
pub fn unit_gaussian(n: usize, dim: usize, rng: &mut Rng) -> Vec<f32> {
    let mut out = Vec::with_capacity(n * dim);
    let mut row = vec![0f64; dim];
    for _ in 0..n {
        row.iter_mut().for_each(|x| *x = rng.gaussian());
        let norm = row.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-300);
        out.extend(row.iter().map(|x| (x / norm) as f32));
    }
    out
}

/// Runs the demo and prints its table on stdout.
pub fn run(opts: &DemoOptions) -> Result<()> {
    let (trees, n_queries) = if opts.quick { (32, 20) } else { (128, 50) };
    let budgets = [500usize, 1000, 1280, 1660, 2500, 5000];
    let train = unit_gaussian(N, DIM, &mut Rng::derive(opts.seed, 1));
    let test = unit_gaussian(n_queries, DIM, &mut Rng::derive(opts.seed, 2));
    let params = BuildParams {
        n_trees: trees,
        seed: opts.seed,
        threads: opts.threads,
        ..BuildParams::default()
    };
    println!("panns demo: the original panns evaluation, generated in memory (no download)");
    println!(
        "{N} unit-normalised Gaussian vectors of dimension {DIM}, {n_queries} random unit queries, \
         k = {K}, {trees} trees (leaf size {}, pool {}, seed {}){}",
        params.leaf_size,
        params.pool_size,
        opts.seed,
        if opts.quick { " [--quick]" } else { "" }
    );
    println!(
        "recall@10 counts a result within 1e-3 of the 10th true distance (ann-benchmarks); \
         id recall counts exact id matches; QPS is one query at a time on one thread.\n"
    );
    println!(
        "{:<10} {:>7} {:>10} {:>10} {:>11} {:>9} {:>9} {:>12} {:>8}",
        "metric",
        "budget",
        "recall@10",
        "id recall",
        "candidates",
        "QPS",
        "ms/query",
        "index bytes",
        "build s"
    );
    for metric in [Metric::Euclidean, Metric::Angular] {
        let mut b = IndexBuilder::new(DIM, metric)?;
        b.add_batch(&train)?;
        let t = Instant::now();
        let index = b.build(&params)?;
        let build_s = t.elapsed().as_secs_f64();
        let bytes = crate::files::saved_size(&index)?;
        let view = &index;
        let truth = measure::single(view, &test, Mode::Exact(K), None)?;
        let scorer = Scorer::new(metric, DIM, K, &train, &test, truth.results, None);
        for &budget in &budgets {
            let p = SearchParams::new(K).with_budget(budget);
            let m = measure::single(view, &test, Mode::Approx(p), None)?;
            let r = scorer.recall(&m.results);
            println!(
                "{:<10} {:>7} {:>9.1}% {:>9.1}% {:>11.0} {:>9.0} {:>9.3} {:>12} {:>8.2}",
                metric.name(),
                budget,
                100.0 * r.threshold,
                100.0 * r.ids,
                m.candidates,
                m.qps,
                1000.0 / m.qps,
                bytes,
                build_s
            );
        }
        println!(
            "{:<10} {:>7} {:>9.1}% {:>9.1}% {:>11} {:>9.0} {:>9.3} {:>12} {:>8}",
            metric.name(),
            "exact",
            100.0,
            100.0,
            N,
            truth.qps,
            1000.0 / truth.qps,
            "-",
            "-"
        );
    }
    println!(
        "\nReference figures from the original panns README (same data shape, 128 trees, top 10):"
    );
    println!(
        "  panns (Python, 2014)       euclidean 69.2%  angular 70.1%  at ~1660 candidates, 75-80 ms/query"
    );
    println!(
        "  Annoy, 128 trees, 1280     euclidean 48.8%  angular 50.4%  (search_k = 1280, Annoy's default)"
    );
    println!(
        "Compare the rows at budget 1660 and 1280 above (budget = distinct candidates re-ranked)."
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_unit_length_and_seeded() {
        let a = unit_gaussian(3, 50, &mut Rng::new(1));
        let b = unit_gaussian(3, 50, &mut Rng::new(1));
        assert_eq!(a, b);
        for r in a.chunks_exact(50) {
            let n: f32 = r.iter().map(|x| x * x).sum();
            assert!((n - 1.0).abs() < 1e-5);
        }
    }
}
