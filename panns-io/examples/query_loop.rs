//! Runs the test queries of an ann-benchmarks file against an index file in a loop, one
//! thread, for profiling: `query_loop INDEX DATA.hdf5 BUDGET SECONDS`.
use panns_core::SearchParams;
use panns_io::{OpenOptions, open_index};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    let ix = open_index(&a[1], &OpenOptions::default())?;
    let test = panns_io::read_any(
        &a[2],
        &panns_io::ReadOptions {
            dataset: Some("test".into()),
            ..Default::default()
        },
    )?;
    let budget: usize = a[3].parse()?;
    let secs: f64 = a[4].parse()?;
    let p = SearchParams::new(10).with_budget(budget);
    let (t, mut n) = (Instant::now(), 0usize);
    while t.elapsed().as_secs_f64() < secs {
        for q in test.data.chunks(test.dim) {
            std::hint::black_box(ix.search(q, &p)?);
            n += 1;
        }
    }
    println!("{:.0} queries/s", n as f64 / t.elapsed().as_secs_f64());
    Ok(())
}
