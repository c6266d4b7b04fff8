//! Search speed on the shared data sets (skipped when absent): one query at a
//! time on one thread at a few candidate budgets, and exact linear search, over
//! 100 test queries. Throughput is in queries (elem/s = QPS).
//!
//! `cargo bench -p panns-bench --bench search`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use panns_bench::{DATA_SETS, load};
use panns_core::{BuildParams, IndexBuilder, SearchParams};
use std::hint::black_box;
use std::time::Duration;

const QUERIES: usize = 100;
const K: usize = 10;

fn search(c: &mut Criterion) {
    let mut g = c.benchmark_group("search");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for name in DATA_SETS {
        let Some(d) = load(name, QUERIES) else {
            continue;
        };
        let mut b = IndexBuilder::new(d.dim, d.metric).expect("dimension");
        b.add_batch(&d.train).expect("finite data");
        let index = b.build(&BuildParams::default()).expect("build");
        let view = &index;
        let n = index.len();
        let nq = d.test.len() / d.dim;
        g.throughput(Throughput::Elements(nq as u64));
        // Budgets at or above n / 2 are exact scans (timed separately below).
        for budget in [200, 1000, 4000].into_iter().filter(|&b| 2 * b < n) {
            let p = SearchParams::new(K).with_budget(budget);
            g.bench_function(BenchmarkId::new(format!("budget{budget}"), name), |bch| {
                bch.iter(|| {
                    for q in d.test.chunks_exact(d.dim) {
                        black_box(view.search(black_box(q), &p).expect("search"));
                    }
                })
            });
        }
        g.bench_function(BenchmarkId::new("exact", name), |bch| {
            bch.iter(|| {
                for q in d.test.chunks_exact(d.dim) {
                    black_box(view.linear_search(black_box(q), K).expect("search"));
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, search);
criterion_main!(benches);
