//! Writes the cross-language fixture every binding's tests compare against
//! (see the end of `docs/c-api.md`):
//!
//! ```text
//! cargo run -p panns-ffi --example fixture -- DIR
//! ```
//!
//! - `DIR/index.panns`: an angular index over 2000 Gaussian vectors of dimension 48
//!   (16 trees, seed 42), built and saved by Rust;
//! - `DIR/queries.f32`: 20 Gaussian queries, raw little-endian f32, row-major;
//! - `DIR/meta.txt`: `dim=`, `n_queries=`, `k=`, `budget=`, `metric=` lines;
//! - `DIR/expected_ids.u32`, `DIR/expected_dist.f32`: `n_queries x k` results of
//!   searching the index *opened from the file* (little-endian; rows padded with
//!   `u32::MAX` / infinity, which never happens here since k < n).
//!
//! Every value comes from `panns_core::rng::Rng`, so the fixture is the same on every run.

use panns_core::rng::Rng;
use panns_core::{BuildParams, IndexBuilder, Metric, SearchParams};
use panns_io::OpenOptions;
use std::path::PathBuf;

const N: usize = 2000;
const DIM: usize = 48;
const N_QUERIES: usize = 20;
const K: usize = 10;
const BUDGET: usize = 300;
const N_TREES: usize = 16;

fn gaussian_rows(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n * DIM).map(|_| rng.gaussian() as f32).collect()
}

fn le_bytes<T: Copy, const W: usize>(xs: &[T], f: impl Fn(T) -> [u8; W]) -> Vec<u8> {
    xs.iter().flat_map(|&x| f(x)).collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir: PathBuf = std::env::args_os()
        .nth(1)
        .ok_or("usage: cargo run -p panns-ffi --example fixture -- DIR")?
        .into();
    std::fs::create_dir_all(&dir)?;

    let mut rng = Rng::new(20_240_601);
    let data = gaussian_rows(&mut rng, N);
    let queries = gaussian_rows(&mut rng, N_QUERIES);

    let mut b = IndexBuilder::new(DIM, Metric::Angular)?;
    b.add_batch(&data)?;
    let index = b.build(&BuildParams {
        n_trees: N_TREES,
        seed: 42,
        ..Default::default()
    })?;
    let index_path = dir.join("index.panns");
    panns_io::save_index(&index, &index_path)?;

    // Expected results come from the file, exactly as the bindings will see it.
    let mapped = panns_io::open_index(
        &index_path,
        &OpenOptions {
            verify_checksum: true,
        },
    )?;
    let view = &mapped;
    let params = SearchParams::new(K).with_budget(BUDGET);
    let mut ids = Vec::with_capacity(N_QUERIES * K);
    let mut dists = Vec::with_capacity(N_QUERIES * K);
    for q in queries.chunks_exact(DIM) {
        let hits = view.search(q, &params)?;
        for i in 0..K {
            ids.push(hits.get(i).map_or(u32::MAX, |h| h.id));
            dists.push(hits.get(i).map_or(f32::INFINITY, |h| h.distance));
        }
    }

    std::fs::write(
        dir.join("queries.f32"),
        le_bytes(&queries, f32::to_le_bytes),
    )?;
    std::fs::write(
        dir.join("expected_ids.u32"),
        le_bytes(&ids, u32::to_le_bytes),
    )?;
    std::fs::write(
        dir.join("expected_dist.f32"),
        le_bytes(&dists, f32::to_le_bytes),
    )?;
    std::fs::write(
        dir.join("meta.txt"),
        format!(
            "dim={DIM}\nn_queries={N_QUERIES}\nk={K}\nbudget={BUDGET}\nmetric={}\nn_items={N}\nn_trees={N_TREES}\n",
            Metric::Angular.name()
        ),
    )?;
    println!("wrote the fixture to {}", dir.display());
    Ok(())
}
