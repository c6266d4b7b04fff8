//! Mutated index files, opened and searched in memory; shared by the campaign example
//! and its test.

use panns_core::rng::Rng;
use panns_core::{BuildParams, Dtype, GraphParams, Index, IndexBuilder, Metric, SearchParams};
use panns_io::format::{CHECKSUM_OFFSET, HEADER_SIZE, file_checksum};
use panns_io::{OpenOptions, index_from_slice, index_to_bytes};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// What happened to the mutants.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    /// Inputs tried (each with and without verification).
    pub inputs: usize,
    /// Opens refused with an error.
    pub refused: usize,
    /// Opens that succeeded.
    pub opened: usize,
    /// Searches run on opened inputs.
    pub searches: usize,
    /// Searches refused with an error (e.g. a damaged stored row used as a query).
    pub search_errors: usize,
    /// Panics anywhere (must be 0).
    pub panics: usize,
    /// Broken invariants (must be 0).
    pub violations: usize,
}

impl Totals {
    /// No panic and no broken invariant.
    pub fn clean(&self) -> bool {
        self.panics == 0 && self.violations == 0
    }
}

impl std::fmt::Display for Totals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "campaign: {} inputs ({} opens refused, {} opened), {} searches ({} refused), {} panics, {} invariant violations",
            self.inputs,
            self.refused,
            self.opened,
            self.searches,
            self.search_errors,
            self.panics,
            self.violations
        )
    }
}

fn base(metric: Metric, graph: bool, seed: u64, dtype: Dtype) -> Vec<u8> {
    let (n, dim) = (300, 12);
    let mut r = Rng::new(seed);
    let mut b = IndexBuilder::new(dim, metric).unwrap();
    for _ in 0..n {
        let v: Vec<f32> = (0..dim).map(|_| r.gaussian() as f32).collect();
        b.add(&v).unwrap();
    }
    let mut ix = b
        .build(&BuildParams {
            n_trees: 3,
            leaf_size: 8,
            pool_size: 32,
            dtype,
            ..Default::default()
        })
        .unwrap();
    if graph {
        ix.build_graph(&GraphParams {
            degree: 8,
            ..Default::default()
        })
        .unwrap();
    }
    index_to_bytes(&ix).unwrap()
}

/// The clean base files: f32 under every metric, with and without a graph, two files
/// of 8-bit codes (their code ranges and norm terms are mutated too) and two of codes
/// with the f32 vectors beside them.
fn bases() -> [Vec<u8>; 8] {
    [
        base(Metric::Euclidean, false, 1, Dtype::F32),
        base(Metric::Angular, true, 2, Dtype::F32),
        base(Metric::Dot, true, 3, Dtype::F32),
        base(Metric::Euclidean, true, 4, Dtype::F32),
        base(Metric::Euclidean, true, 5, Dtype::I8),
        base(Metric::Angular, false, 6, Dtype::I8),
        base(Metric::Euclidean, true, 7, Dtype::I8F32),
        base(Metric::Dot, false, 8, Dtype::I8F32),
    ]
}

/// One mutation of `b`, chosen by `r`.
fn mutate(b: &[u8], r: &mut Rng) -> Vec<u8> {
    let mut m = b.to_vec();
    match r.below(8) {
        // A few random bit flips anywhere.
        0 => {
            for _ in 0..1 + r.below(4) {
                let i = r.below(m.len());
                m[i] ^= 1 << r.below(8);
            }
        }
        // Bit flips in the header (where every field is).
        1 => {
            for _ in 0..1 + r.below(3) {
                let i = r.below(HEADER_SIZE);
                m[i] ^= 1 << r.below(8);
            }
        }
        // A header word set to a boundary value.
        2 => {
            let at = 4 * r.below(HEADER_SIZE / 4);
            let v: u32 = [0, 1, 2, 0x7fff_ffff, 0x8000_0000, u32::MAX, 64, 511][r.below(8)];
            m[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
        // Truncated or extended.
        3 => {
            let len = r.below(m.len() + 200);
            m.resize(len, 0);
        }
        // A run of random bytes.
        4 => {
            let i = r.below(m.len());
            let end = (i + 1 + r.below(64)).min(m.len());
            for x in &mut m[i..end] {
                *x = r.next_u64() as u8;
            }
        }
        // A float in the data set to NaN, infinity or a huge value.
        5 => {
            let i = HEADER_SIZE + 4 * r.below((m.len() - HEADER_SIZE) / 4);
            let v = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30, -0.0][r.below(5)];
            m[i..i + 4].copy_from_slice(&v.to_le_bytes());
        }
        // A u32 in the data set to an id-like boundary value.
        6 => {
            let i = HEADER_SIZE + 4 * r.below((m.len() - HEADER_SIZE) / 4);
            let v: u32 = [0, 299, 300, 301, u32::MAX, 0x8000_0000, 0x8000_0001][r.below(7)];
            m[i..i + 4].copy_from_slice(&v.to_le_bytes());
        }
        // Two 64-byte blocks swapped.
        _ => {
            let blocks = m.len() / 64;
            if blocks >= 2 {
                let (a, c) = (r.below(blocks), r.below(blocks));
                for k in 0..64 {
                    m.swap(a * 64 + k, c * 64 + k);
                }
            }
        }
    }
    // Half the mutants get a valid checksum, as a crafted file would.
    if r.below(2) == 0 && m.len() >= CHECKSUM_OFFSET + 8 {
        let sum = file_checksum(&m);
        m[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 8].copy_from_slice(&sum.to_le_bytes());
    }
    m
}

/// Searches an opened index every way, checking the invariants of every answer.
fn exercise(ix: &Index, r: &mut Rng, t: &mut Totals) {
    let (n, dim) = (ix.len(), ix.dim());
    let damaged = |id: u32| {
        ix.vector(id as usize)
            .map(|v| v.iter().any(|x| !x.is_finite()))
            .unwrap_or(true)
    };
    let check = |hits: &[panns_core::Neighbor], k: usize, t: &mut Totals| {
        let ok = hits.len() <= k.min(n)
            && hits
                .iter()
                .all(|h| (h.id as usize) < n && !h.distance.is_nan())
            && hits.windows(2).all(|w| w[0].distance <= w[1].distance)
            && hits
                .iter()
                .all(|h| !damaged(h.id) || h.distance == f32::INFINITY);
        if !ok {
            t.violations += 1;
            if t.violations <= 3 {
                eprintln!("violation (k {k}, n {n}, {}): {hits:?}", ix.metric());
            }
        }
    };
    for _ in 0..3 {
        let q: Vec<f32> = (0..dim).map(|_| r.gaussian() as f32).collect();
        let k = [1, 5, 50, 400][r.below(4)];
        let budget = [0, 1, 20, 1000][r.below(4)];
        let p = SearchParams::new(k).with_budget(budget);
        for res in [
            ix.search(&q, &p),
            ix.linear_search(&q, k),
            ix.search_filtered(&q, &p, &panns_core::Filter::Predicate(&|i| i % 3 != 0))
                .map(|x| x.0),
        ] {
            t.searches += 1;
            match res {
                Ok(h) => check(&h, k, t),
                Err(_) => t.search_errors += 1,
            }
        }
        // A stored row as the query (may be damaged: then refused, never a panic).
        let id = r.below(n);
        if let Ok(v) = ix.vector(id) {
            t.searches += 1;
            match ix.search(&v, &p) {
                Ok(h) => check(&h, k, t),
                Err(_) => t.search_errors += 1,
            }
        }
    }
}

/// Runs `per_base` mutants of each of the six base files.
pub fn run(per_base: usize, seed: u64) -> Totals {
    // Panics are counted, not printed.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut t = Totals::default();
    let mut r = Rng::new(seed);
    let bases = bases();
    for b in &bases {
        for _ in 0..per_base {
            let m = mutate(b, &mut r);
            for verify in [false, true] {
                t.inputs += 1;
                let opened = catch_unwind(|| {
                    index_from_slice(
                        &m,
                        &OpenOptions {
                            verify_checksum: verify,
                        },
                    )
                });
                match opened {
                    Err(_) => t.panics += 1,
                    Ok(Err(_)) => t.refused += 1,
                    Ok(Ok(ix)) => {
                        t.opened += 1;
                        let mut local = Totals::default();
                        let ran =
                            catch_unwind(AssertUnwindSafe(|| exercise(&ix, &mut r, &mut local)));
                        if ran.is_err() {
                            t.panics += 1;
                        }
                        t.searches += local.searches;
                        t.search_errors += local.search_errors;
                        t.violations += local.violations;
                    }
                }
            }
        }
    }
    std::panic::set_hook(hook);
    t
}

/// Writes the six clean base files and `per_base` mutants of each into `dir` (named
/// `BASE-NNNNN.panns`, base 0 to 5), for the campaign through other entry points
/// (`scripts/campaign.sh`: the CLI, C, Go and Python). Returns the number of files.
#[allow(dead_code)]
pub fn write_files(dir: &std::path::Path, per_base: usize, seed: u64) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let mut r = Rng::new(seed);
    let bases = bases();
    let mut count = 0;
    for (i, b) in bases.iter().enumerate() {
        std::fs::write(dir.join(format!("{i}-clean.panns")), b)?;
        count += 1;
        for j in 0..per_base {
            std::fs::write(dir.join(format!("{i}-{j:05}.panns")), mutate(b, &mut r))?;
            count += 1;
        }
    }
    Ok(count)
}
