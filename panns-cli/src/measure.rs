//! Timing a search setting: single-thread QPS (one query per call in a loop, like
//! ann-benchmarks) and batched QPS (`search_batch` on a thread pool).

use crate::error::Result;
use panns_core::{Index, SearchParams};
use rayon::prelude::*;
use std::time::{Duration, Instant};

/// Result of timing one query at a time on one thread.
#[derive(Debug, Clone)]
pub struct Single {
    /// Ids returned for each timed query (the first `timed` queries).
    pub results: Vec<Vec<u32>>,
    /// Queries per second: queries timed / sum of per-call times.
    pub qps: f64,
    /// Mean number of distinct candidates re-ranked (0 for exact search).
    pub candidates: f64,
    /// Number of queries timed (all, unless the time cap stopped the loop early).
    pub timed: usize,
}

/// How a query is answered.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// Approximate search with these parameters.
    Approx(SearchParams),
    /// Exact brute-force search for the k nearest.
    Exact(usize),
}

fn ids(v: Vec<panns_core::Neighbor>) -> Vec<u32> {
    v.into_iter().map(|n| n.id).collect()
}

/// Timings shorter than this are repeated (whole passes over the same queries) until
/// they add up to it: a few milliseconds are too noisy on a shared machine.
pub const MIN_TIME: Duration = Duration::from_millis(250);

/// Runs the queries (row-major, `dim` floats each) one per call on this thread,
/// after one warm-up call. The first pass stops once `cap` has elapsed and at least
/// 100 queries ran (`cap = None`: never early), as `run_peers.py --point-seconds`
/// does; passes over the same queries are repeated until [`MIN_TIME`] is reached.
pub fn single(view: &Index, queries: &[f32], mode: Mode, cap: Option<Duration>) -> Result<Single> {
    let dim = view.dim();
    let run = |q: &[f32]| -> Result<(Vec<u32>, usize)> {
        Ok(match mode {
            Mode::Approx(p) => {
                let (r, st) = view.search_with_stats(q, &p)?;
                (ids(r), st.scored)
            }
            Mode::Exact(k) => (ids(view.linear_search(q, k)?), 0),
        })
    };
    if let Some(q) = queries.chunks_exact(dim).next() {
        run(q)?;
    }
    let (mut total, mut cands) = (Duration::ZERO, 0usize);
    let mut results = Vec::new();
    for q in queries.chunks_exact(dim) {
        let t = Instant::now();
        let (r, c) = run(q)?;
        total += t.elapsed();
        results.push(r);
        cands += c;
        if cap.is_some_and(|cap| results.len() >= 100 && total > cap) {
            break;
        }
    }
    let timed = results.len();
    let mut count = timed;
    while total < MIN_TIME && timed > 0 {
        for q in queries.chunks_exact(dim).take(timed) {
            let t = Instant::now();
            std::hint::black_box(run(q)?);
            total += t.elapsed();
        }
        count += timed;
    }
    Ok(Single {
        results,
        qps: count as f64 / total.as_secs_f64().max(1e-9),
        candidates: cands as f64 / timed.max(1) as f64,
        timed,
    })
}

/// Answers all queries in one batch on `pool` (repeated until [`MIN_TIME`]);
/// returns the ids and the QPS.
pub fn batch(
    view: &Index,
    queries: &[f32],
    mode: Mode,
    pool: &rayon::ThreadPool,
) -> Result<(Vec<Vec<u32>>, f64)> {
    let n = queries.len() / view.dim();
    let once = || -> Result<Vec<Vec<u32>>> {
        Ok(match mode {
            Mode::Approx(p) => view
                .search_batch(queries, &p)?
                .into_iter()
                .map(ids)
                .collect(),
            Mode::Exact(k) => queries
                .par_chunks(view.dim())
                .map(|q| view.linear_search(q, k).map(ids))
                .collect::<Result<_, _>>()?,
        })
    };
    let t = Instant::now();
    let res = pool.install(once)?;
    let mut batches = 1;
    while t.elapsed() < MIN_TIME {
        std::hint::black_box(pool.install(once)?);
        batches += 1;
    }
    let secs = t.elapsed().as_secs_f64().max(1e-9);
    Ok((res, (batches * n) as f64 / secs))
}
