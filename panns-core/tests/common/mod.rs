//! Data shared by the integration tests.

use panns_core::rng::Rng;

/// `n` rows of `dim` floats around 30 Gaussian centres (spread 3), row `i` in cluster
/// `i % 30`, seeded.
pub fn clustered(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut r = Rng::new(seed);
    let centres: Vec<f32> = (0..30 * dim).map(|_| 3.0 * r.gaussian() as f32).collect();
    (0..n)
        .flat_map(|i| {
            let c = (i % 30) * dim;
            (0..dim)
                .map(|j| centres[c + j] + r.gaussian() as f32)
                .collect::<Vec<_>>()
        })
        .collect()
}
