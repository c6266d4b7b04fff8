//! Measures a live index on an ann-benchmarks file (default
//! `../shared/data/sift-images-50k-128-euclidean.hdf5`): adds per second one at a time
//! and in batches, query throughput with a 1% and a 10% delta against the compacted
//! index, and compaction time. One run, one thread for queries; run it in release:
//!
//! ```text
//! cargo run --release -p panns-io --example live_bench [FILE.hdf5]
//! ```

use std::time::Instant;

use panns_core::{BuildParams, IndexBuilder, SearchParams};
use panns_io::{LiveIndex, LiveOptions};

fn qps(
    ix: &LiveIndex,
    queries: &panns_io::Dataset,
    truth: &panns_io::IntDataset,
    k: usize,
    budget: usize,
    held: &dyn Fn(u64) -> bool,
) -> (f64, f64) {
    let p = SearchParams::new(k).with_budget(budget);
    let nq = queries.n.min(2000);
    let t = Instant::now();
    let mut hits = 0usize;
    let mut total = 0usize;
    for i in 0..nq {
        let r = ix.search(queries.row(i), &p).unwrap();
        // Recall against the file's ground truth restricted to items held.
        let want: Vec<u64> = truth.data[i * truth.dim..(i + 1) * truth.dim]
            .iter()
            .map(|&x| x as u64)
            .filter(|&l| held(l))
            .take(k)
            .collect();
        total += want.len();
        hits += r.iter().filter(|h| want.contains(&h.0)).count();
    }
    (
        nq as f64 / t.elapsed().as_secs_f64(),
        hits as f64 / total.max(1) as f64,
    )
}

fn main() -> panns_io::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "../shared/data/sift-images-50k-128-euclidean.hdf5".into());
    let ab = panns_io::read_ann_benchmarks(&path)?;
    let (n, dim) = (ab.train.n, ab.train.dim);
    let base_n = n - n / 10;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let p = dir.path().join("live.panns");
    println!("{path}: {n} x {dim}; base of {base_n} items");
    let t = Instant::now();
    let mut b = IndexBuilder::new(dim, ab.metric)?;
    b.add_batch(&ab.train.data[..base_n * dim])?;
    let index = b.build(&BuildParams::default())?;
    println!("base build: {:.2} s", t.elapsed().as_secs_f64());
    let mut w = LiveIndex::from_index(&p, &index, None)?;
    drop(index);
    w.set_options(LiveOptions {
        auto_compact: false,
        ..LiveOptions::default()
    });
    let row = |i: usize| &ab.train.data[i * dim..(i + 1) * dim];
    let (k, budget) = (10, 0);
    let (q0, r0) = qps(&w, &ab.test, &ab.neighbors, k, budget, &|l| {
        (l as usize) < base_n
    });
    println!("compacted base ({base_n}): {q0:.0} QPS, recall@10 {r0:.3} (default budget)");

    // 1% delta: one at a time, commit after each.
    let one = n / 100 / 2;
    let t = Instant::now();
    for i in base_n..base_n + one {
        w.add(i as u64, row(i))?;
        w.commit()?;
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "add one at a time, commit each: {one} adds in {s:.2} s = {:.0} adds/s",
        one as f64 / s
    );
    // One at a time, commit every 100.
    let t = Instant::now();
    for i in base_n + one..base_n + 2 * one {
        w.add(i as u64, row(i))?;
        if (i + 1) % 100 == 0 {
            w.commit()?;
        }
    }
    w.commit()?;
    let s = t.elapsed().as_secs_f64();
    println!(
        "add one at a time, commit every 100: {one} adds in {s:.2} s = {:.0} adds/s",
        one as f64 / s
    );
    let upto = base_n + 2 * one;
    let (q1, r1) = qps(&w, &ab.test, &ab.neighbors, k, budget, &|l| {
        (l as usize) < upto
    });
    println!(
        "1% delta ({} items): {q1:.0} QPS, recall@10 {r1:.3}",
        w.delta_len()
    );

    // Up to a 10% delta in batches of 1000, commit per batch.
    let t = Instant::now();
    let target = base_n + base_n / 10;
    let mut i = upto;
    while i < target {
        let j = (i + 1000).min(target);
        let labels: Vec<u64> = (i as u64..j as u64).collect();
        w.add_batch(&labels, &ab.train.data[i * dim..j * dim])?;
        w.commit()?;
        i = j;
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "add_batch of 1000, commit each: {} adds in {s:.2} s = {:.0} adds/s (includes building the delta's own index past 4096)",
        target - upto,
        (target - upto) as f64 / s
    );
    let (q10, r10) = qps(&w, &ab.test, &ab.neighbors, k, budget, &|l| {
        (l as usize) < target
    });
    println!(
        "10% delta ({} items): {q10:.0} QPS, recall@10 {r10:.3}",
        w.delta_len()
    );

    let t = Instant::now();
    w.compact()?;
    println!(
        "compact to {} items: {:.2} s",
        w.len(),
        t.elapsed().as_secs_f64()
    );
    let (qc, rc) = qps(&w, &ab.test, &ab.neighbors, k, budget, &|l| {
        (l as usize) < target
    });
    println!(
        "compacted ({} items): {qc:.0} QPS, recall@10 {rc:.3}",
        w.len()
    );
    Ok(())
}
