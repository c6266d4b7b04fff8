//! Filtered search natively, single thread: for uniform random allow-bitmaps of falling
//! selectivity, the exact scan of the allowed items against the planner's choice at
//! each budget (recall@10 against that scan, QPS, items scored, and whether the walk
//! or the scan ran). 8 trees + a degree-24 graph.
//!
//! ```text
//! cargo run --release -p panns-io --example filter_walk -- FILE.hdf5 [QUERIES]
//! ```

use panns_core::rng::Rng;
use panns_core::{BuildParams, Filter, GraphParams, IndexBuilder, SearchParams, bitmap};
use std::time::Instant;

fn main() -> panns_io::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| "../shared/data/minilm-docs-20k-384-angular.hdf5".into());
    let nq: usize = args
        .next()
        .map_or(200, |s| s.parse().expect("a query count"));
    let ab = panns_io::read_ann_benchmarks(&path)?;
    let (n, dim) = (ab.train.n, ab.train.dim);
    let mut b = IndexBuilder::new(dim, ab.metric)?;
    b.add_batch(&ab.train.data)?;
    let mut ix = b.build(&BuildParams {
        n_trees: 8,
        ..Default::default()
    })?;
    ix.build_graph(&GraphParams::default())?;
    let nq = nq.min(ab.test.n);
    println!("{path}: {n} x {dim}, {nq} queries");
    for sel in [0.5, 0.2, 0.1, 0.05, 0.02, 0.01] {
        let mut r = Rng::new(11);
        let ids: Vec<u32> = (0..n as u32).filter(|_| r.uniform() < sel).collect();
        let bits = bitmap(n, ids.iter().copied());
        let f = Filter::Allow(&bits);
        let all = SearchParams::new(10).with_budget(n);
        let t = Instant::now();
        let truth: Vec<Vec<u32>> = (0..nq)
            .map(|i| {
                let (h, _) = ix.search_filtered(ab.test.row(i), &all, &f).unwrap();
                h.iter().map(|x| x.id).collect()
            })
            .collect();
        let scan_qps = nq as f64 / t.elapsed().as_secs_f64();
        println!(
            "{sel} allowed ({}): exact scan {scan_qps:.0} QPS",
            ids.len()
        );
        for budget in [10, 16, 24, 32, 48, 64, 96] {
            let p = SearchParams::new(10).with_budget(budget);
            let (mut hits, mut scored, mut scans) = (0, 0, 0);
            let t = Instant::now();
            for (i, want) in truth.iter().enumerate() {
                let (h, st) = ix.search_filtered(ab.test.row(i), &p, &f).unwrap();
                scored += st.scored;
                scans += st.exact_scan as usize;
                hits += h.iter().filter(|x| want.contains(&x.id)).count();
            }
            let qps = nq as f64 / t.elapsed().as_secs_f64();
            let rec = hits as f64 / truth.iter().map(|t| t.len()).sum::<usize>().max(1) as f64;
            let path = if scans == nq { "scan" } else { "walk" };
            println!(
                "  budget {budget:3}: {path}, recall {rec:.3}, {qps:7.0} QPS, {} scored",
                scored / nq
            );
        }
    }
    Ok(())
}
