//! The random stream of the build: xoshiro256++ from the `rand` family
//! (`rand_xoshiro`, through the `rand_core` traits), plus uniform, integer and
//! Gaussian draws that are bit-identical on every platform.
//!
//! The build must give bit-identical indexes for the same seed and data on every
//! thread count and platform, so every draw here is specified down to the bit:
//!
//! - the bits: [`Xoshiro256PlusPlus`], seeded with its own `seed_from_u64` (SplitMix64
//!   expansion of the seed); `rand_xoshiro` documents its output as portable and
//!   reproducible, and `golden.rs` plus the unit tests below pin the first values, so
//!   a dependency update that changed them would fail the tests;
//! - [`Rng::uniform`]: the top 53 bits times 2⁻⁵³ (exact);
//! - [`Rng::below`]: a 64×64→128-bit multiply (exact integer arithmetic);
//! - [`Rng::gaussian`]: Marsaglia's polar method with a logarithm ([`ln`]) computed
//!   here from `+ − × ÷` alone. Every operation used is an IEEE-754 basic operation
//!   (or `sqrt`), which IEEE-754 requires to be correctly rounded and Rust never
//!   contracts into fused multiply-adds, so a Gaussian draw does not depend on the
//!   platform's libm (whose `ln`/`cos`/`exp` may differ in the last bit between
//!   glibc, musl, macOS and Windows). `rand_distr`'s `StandardNormal` (a Ziggurat) was
//!   not used: it calls `exp` in about 1% of draws (the wedges, not just the tails)
//!   and `ln` in the tails, through `num-traits`, which uses either the `libm` crate
//!   or std's libm depending on which features other crates of the build enable.
//!
//! See `docs/determinism.md` for what is and is not bit-identical across machines.

use rand_core::{Rng as _, SeedableRng};
use rand_xoshiro::{SplitMix64, Xoshiro256PlusPlus};

/// The build's random generator: xoshiro256++ (256-bit state, period 2²⁵⁶ − 1) with a
/// cached second Gaussian deviate.
#[derive(Clone, Debug)]
pub struct Rng {
    bits: Xoshiro256PlusPlus,
    spare: Option<f64>,
}

/// A bijective 64-bit mix of `x` (the first output of `rand_xoshiro`'s SplitMix64
/// started at `x`): a hash for deterministic sampling, e.g. of reverse neighbours in
/// the graph build.
pub fn mix(x: u64) -> u64 {
    SplitMix64::seed_from_u64(x).next_u64()
}

impl Rng {
    /// A generator seeded with `seed` (the stream of `Xoshiro256PlusPlus::seed_from_u64(seed)`).
    pub fn new(seed: u64) -> Self {
        Rng {
            bits: Xoshiro256PlusPlus::seed_from_u64(seed),
            spare: None,
        }
    }

    /// An independent generator derived from `seed` and a stream number (e.g. a tree
    /// index). For a fixed seed, distinct streams get distinct 64-bit seeds (the map
    /// from `stream` is a bijection), each expanded to a full 256-bit state.
    pub fn derive(seed: u64, stream: u64) -> Self {
        Rng::new(mix(seed) ^ mix(stream ^ 0xA076_1D64_78BD_642F))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.bits.next_u64()
    }

    /// Uniform in `[0, 1)`: the top 53 bits of one draw, times 2⁻⁵³.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `0..n` (`n > 0`), by a widening multiply of one draw (bias at
    /// most `n / 2⁶⁴`).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Standard normal deviate (Marsaglia's polar method; deviates come in pairs, the
    /// second is returned by the next call). Bit-identical on every platform: see the
    /// module documentation.
    pub fn gaussian(&mut self) -> f64 {
        if let Some(g) = self.spare.take() {
            return g;
        }
        loop {
            let u = 2.0 * self.uniform() - 1.0;
            let v = 2.0 * self.uniform() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                let f = (-2.0 * ln(s) / s).sqrt();
                self.spare = Some(v * f);
                return u * f;
            }
        }
    }
}

/// Natural logarithm of a positive finite `x` from IEEE-754 basic operations alone
/// (`+ − × ÷`, exact scaling by powers of two), so its result is the same on every
/// platform. Accurate to a few units in the last place (unit-tested against std's
/// `ln`); not correctly rounded, which does not matter for sampling.
///
/// `x = 2^e · m` with `m ∈ [√½, √2)`; `ln m = 2 atanh t` with `t = (m − 1)/(m + 1)`,
/// `|t| ≤ 0.1716`, summed as an odd series to `t²³` (the next term is below 2⁻⁵⁸ of
/// the sum); `ln x = e · ln 2 + ln m` with `ln 2` split in a high part exact in
/// products with `e` and a low part.
pub fn ln(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_infinite() {
        return f64::INFINITY;
    }
    const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000); // ln 2, low 21 bits zero
    const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76); // ln 2 − LN2_HI
    let (mut x, mut e) = (x, 0i64);
    if x < f64::MIN_POSITIVE {
        x *= (1u64 << 54) as f64; // subnormal: scale into the normal range (exact)
        e -= 54;
    }
    let bits = x.to_bits();
    e += ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    // 1 + t²/3 + t⁴/5 + … + t²²/23, by Horner.
    let mut p = 1.0 / 23.0;
    for k in (0..11).rev() {
        p = p * t2 + 1.0 / (2 * k + 1) as f64;
    }
    let lnm = 2.0 * t * p;
    let e = e as f64;
    e * LN2_HI + (lnm + e * LN2_LO)
}

/// A vector of `dim` standard normal components, optionally scaled to unit length.
pub fn gaussian_vector(dim: usize, normalize: bool, seed: u64) -> Vec<f32> {
    let mut r = Rng::new(seed);
    let mut v: Vec<f64> = (0..dim).map(|_| r.gaussian()).collect();
    if normalize {
        let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if n > 0.0 {
            v.iter_mut().for_each(|x| *x /= n);
        }
    }
    v.into_iter().map(|x| x as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| Rng::new(7).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(Rng::derive(7, 0).next_u64(), Rng::derive(7, 1).next_u64());
        assert_ne!(Rng::derive(7, 0).next_u64(), Rng::derive(8, 0).next_u64());
    }

    #[test]
    fn the_stream_is_xoshiro256plusplus_from_rand_xoshiro() {
        let mut ours = Rng::new(12345);
        let mut theirs = Xoshiro256PlusPlus::seed_from_u64(12345);
        for _ in 0..100 {
            assert_eq!(ours.next_u64(), theirs.next_u64());
        }
    }

    /// The first values of the stream, pinned. A change here means every index built
    /// from the same seed changes: it must be deliberate (a new generator or seeding),
    /// and `tests/golden.rs` must be updated with it (see that file).
    #[test]
    fn first_values_of_the_stream_are_pinned() {
        let mut r = Rng::new(42);
        let got: Vec<u64> = (0..4).map(|_| r.next_u64()).collect();
        assert_eq!(got, PINNED_U64, "Rng::new(42) stream: {got:#018x?}");
        let mut r = Rng::derive(42, 3);
        let got: Vec<u64> = (0..2).map(|_| r.next_u64()).collect();
        assert_eq!(
            got, PINNED_DERIVED,
            "Rng::derive(42, 3) stream: {got:#018x?}"
        );
        let mut r = Rng::new(42);
        let got: Vec<u64> = (0..4).map(|_| r.gaussian().to_bits()).collect();
        assert_eq!(
            got, PINNED_GAUSS,
            "Rng::new(42) gaussians (bits): {got:#018x?}"
        );
    }

    const PINNED_U64: [u64; 4] = [
        0xd0764d4f4476689f,
        0x519e4174576f3791,
        0xfbe07cfb0c24ed8c,
        0xb37d9f600cd835b8,
    ];
    const PINNED_DERIVED: [u64; 2] = [0xc2d15b26deb36e36, 0xda86ccd4fc192c8b];
    const PINNED_GAUSS: [u64; 4] = [
        0x3fef679d98b6ab7b, // 0.9813983900724986
        0xbfe21a610c887574, // -0.565720104673956
        0x3ff571f94d19c30a, // 1.3403256427520227
        0x3fd9bf7e7b2c7e67, // 0.4023128702992608
    ];

    #[test]
    fn ln_matches_std_to_a_few_ulps() {
        let mut r = Rng::new(5);
        let mut xs: Vec<f64> = (0..200_000)
            .map(|_| {
                // log-uniform over the whole double range, plus subnormals and edges
                let e = r.below(2090) as i32 - 1074;
                (1.0 + r.uniform()) * 2f64.powi(e)
            })
            .filter(|x| *x > 0.0 && x.is_finite())
            .collect();
        xs.extend([
            1.0,
            2.0,
            0.5,
            std::f64::consts::SQRT_2,
            f64::MIN_POSITIVE,
            5e-324,
            f64::MAX,
            1.0 - f64::EPSILON,
            1.0 + f64::EPSILON,
        ]);
        for x in xs {
            let (a, b) = (ln(x), x.ln());
            let tol = 4.0 * f64::EPSILON * b.abs().max(f64::MIN_POSITIVE);
            // Near x = 1, ln x is tiny: compare with an absolute bound there.
            let tol = tol.max(4.0 * f64::EPSILON * (x - 1.0).abs());
            assert!((a - b).abs() <= tol, "ln({x:e}) = {a:e}, std says {b:e}");
        }
        assert_eq!(ln(1.0), 0.0);
        assert!(ln(0.0) == f64::NEG_INFINITY && ln(-1.0).is_nan());
    }

    #[test]
    fn gaussian_has_normal_moments_and_quantiles() {
        let mut r = Rng::new(1);
        let xs: Vec<f64> = (0..200_000).map(|_| r.gaussian()).collect();
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let kurt = xs.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n / (var * var);
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0).abs() < 0.015, "{var}");
        assert!((kurt - 3.0).abs() < 0.05, "{kurt}");
        // P(|X| < 1) = 0.6827, P(|X| < 2) = 0.9545, P(|X| < 3) = 0.9973.
        for (k, p) in [(1.0, 0.6827), (2.0, 0.9545), (3.0, 0.9973)] {
            let f = xs.iter().filter(|x| x.abs() < k).count() as f64 / n;
            assert!((f - p).abs() < 0.004, "P(|X| < {k}) = {f}");
        }
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut r = Rng::new(3);
        let mut seen = [0usize; 7];
        for _ in 0..70_000 {
            seen[r.below(7)] += 1;
        }
        assert!(
            seen.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{seen:?}"
        );
    }
}
