//! Throughput of the SIMD distance kernels, in FLOP/s: criterion reports
//! "elements" per second with 2·dim elements (one multiply and one add per
//! component) per call, so Gelem/s reads as GFLOP/s.
//!
//! `cargo bench -p panns-bench --bench kernels -- --quick`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use panns_bench::aligned;
use panns_core::kernels::Kernels;
use std::hint::black_box;
use std::time::Duration;

const DIMS: [usize; 6] = [100, 128, 200, 384, 784, 960];

fn kernels(c: &mut Criterion) {
    for k in Kernels::all_available() {
        for (op, f) in [("dot", k.dot), ("l2sq", k.l2sq)] {
            let mut g = c.benchmark_group(format!("{op}/{}", k.name));
            g.warm_up_time(Duration::from_millis(300))
                .measurement_time(Duration::from_millis(700));
            for dim in DIMS {
                let (mut a, mut b) = (vec![0f32; dim + 16], vec![0f32; dim + 16]);
                let a = aligned(&mut a, dim);
                let b = aligned(&mut b, dim);
                for (i, (x, y)) in a.iter_mut().zip(b.iter_mut()).enumerate() {
                    *x = (i as f32 * 0.37).sin();
                    *y = (i as f32 * 0.11).cos();
                }
                g.throughput(Throughput::Elements(2 * dim as u64));
                g.bench_with_input(BenchmarkId::from_parameter(dim), &dim, |bch, _| {
                    bch.iter(|| f(black_box(&*a), black_box(&*b)))
                });
            }
            g.finish();
        }
    }
}

criterion_group!(benches, kernels);
criterion_main!(benches);
