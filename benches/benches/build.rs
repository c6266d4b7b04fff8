//! Index build time on the shared data sets (skipped when absent), with the
//! default parameters (32 trees) and all cores; at most the first 20,000 train
//! vectors of each set, so that the whole bench takes about a minute.
//!
//! `cargo bench -p panns-bench --bench build`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use panns_bench::{DATA_SETS, load};
use panns_core::{BuildParams, IndexBuilder};
use std::time::Duration;

/// Train vectors used at most per data set.
const MAX_ITEMS: usize = 20_000;

fn build(c: &mut Criterion) {
    let mut g = c.benchmark_group("build");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    for name in DATA_SETS {
        let Some(d) = load(name, 0) else { continue };
        let n = d.n.min(MAX_ITEMS);
        let mut b = IndexBuilder::new(d.dim, d.metric).expect("dimension");
        b.add_batch(&d.train[..n * d.dim]).expect("finite data");
        let params = BuildParams::default();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(
            BenchmarkId::new(format!("{}trees", params.n_trees), format!("{name}/{n}")),
            &b,
            |bch, b| bch.iter(|| b.clone().build(&params).expect("build")),
        );
    }
    g.finish();
}

criterion_group!(benches, build);
criterion_main!(benches);
