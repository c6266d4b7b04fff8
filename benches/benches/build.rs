//! Index build time on the shared data sets (skipped when absent), with the
//! default parameters (32 trees) and all cores.
//!
//! `cargo bench -p panns-bench --bench build`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use panns_bench::{DATA_SETS, load};
use panns_core::{BuildParams, IndexBuilder};
use std::time::Duration;

fn build(c: &mut Criterion) {
    let mut g = c.benchmark_group("build");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(8));
    for name in DATA_SETS {
        let Some(d) = load(name, 0) else { continue };
        let mut b = IndexBuilder::new(d.dim, d.metric).expect("dimension");
        b.add_batch(&d.train).expect("finite data");
        let params = BuildParams::default();
        g.throughput(Throughput::Elements(d.n as u64));
        g.bench_with_input(
            BenchmarkId::new(format!("{}trees", params.n_trees), name),
            &b,
            |bch, b| bch.iter(|| b.clone().build(&params).expect("build")),
        );
    }
    g.finish();
}

criterion_group!(benches, build);
criterion_main!(benches);
