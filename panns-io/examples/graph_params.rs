//! Experiment: graph quality against NN-descent's list length and rounds.
//! cargo run --release -p panns-io --example graph_params -- FILE.hdf5 BUILD_K,ROUNDS ...

use panns_core::{BuildParams, GraphParams, IndexBuilder, SearchParams};
use std::time::Instant;

fn main() -> panns_io::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("FILE.hdf5");
    let ab = panns_io::read_ann_benchmarks(&path)?;
    let (n, dim) = (ab.train.n, ab.train.dim);
    let nq = ab.test.n.min(500);
    let mut b = IndexBuilder::new(dim, ab.metric)?;
    b.add_batch(&ab.train.data)?;
    let base = b.build(&BuildParams {
        n_trees: 8,
        ..Default::default()
    })?;
    let k = 10;
    let truth: Vec<Vec<u32>> = (0..nq)
        .map(|i| {
            ab.neighbors.data[i * ab.neighbors.dim..][..k]
                .iter()
                .map(|&x| x as u32)
                .collect()
        })
        .collect();
    println!("{path}: {n} x {dim}");
    for spec in args {
        let v: Vec<usize> = spec.split(',').map(|s| s.parse().unwrap()).collect();
        let mut ix = base.clone();
        let t = Instant::now();
        ix.build_graph(&GraphParams {
            degree: v.get(2).copied().unwrap_or(24),
            build_k: v[0],
            max_rounds: v[1],
            ..Default::default()
        })?;
        let bt = t.elapsed().as_secs_f64();
        let mut line = format!(
            "build_k {:3} rounds {:2} deg {:2}: build {bt:5.2} s |",
            v[0],
            v[1],
            v.get(2).copied().unwrap_or(24)
        );
        for budget in [10, 16, 24, 32] {
            let p = SearchParams::new(k).with_budget(budget);
            let (mut hits, mut scored) = (0, 0);
            let t = Instant::now();
            for (i, tr) in truth.iter().enumerate() {
                let (h, st) = ix.search_with_stats(ab.test.row(i), &p).unwrap();
                scored += st.scored;
                hits += h.iter().filter(|x| tr.contains(&x.id)).count();
            }
            let q = nq as f64 / t.elapsed().as_secs_f64();
            line += &format!(
                " b{budget}: {:.3} {:5.0}/s {:4} |",
                hits as f64 / (nq * k) as f64,
                q,
                scored / nq
            );
        }
        println!("{line}");
    }
    Ok(())
}
