//! Vectors stored as 8-bit codes (scalar quantization, [`Dtype::I8`]).
//!
//! Each component `j` has its own range: `lo[j]` (the smallest value of that component
//! over the items) and `step[j]` (the range divided by 255). An item's component is
//! stored as the byte `c = round((x - lo[j]) / step[j])` and read back as
//! `lo[j] + step[j] * c`. A vector then takes a quarter of its `f32` bytes, and a
//! distance to it is one pass of [`crate::kernels::dot_u8`] over the codes with
//! weights prepared once per query:
//!
//! - Euclidean: with `q' = q - lo`, `|q - x|^2 = |q'|^2 - 2 (q' * step) . c + |step * c|^2`;
//!   the last term is stored per item (`aux`).
//! - Angular and dot: `q . x = q . lo + (q * step) . c`; under the angular metric the
//!   item's `1 / |x|` is stored per item (`aux`), so the cosine is exact for the decoded
//!   vector although decoding does not give a unit vector.
//!
//! Distances are those to the decoded vectors: a component whose values lie on a grid of
//! at most 256 points (SIFT's bytes, pixels / 255, small counts) gets that grid's spacing
//! as its step and is stored exactly (to float rounding); otherwise a value is off by at
//! most half a step.

use crate::kernels;
use crate::layout::padded_dim;
use crate::{Error, Metric, Result};
use rayon::prelude::*;

/// How an index stores its vectors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Dtype {
    /// 32-bit floats, as given (unit-normalised under the angular metric).
    #[default]
    F32 = 0,
    /// One byte per component with a per-component range (scalar quantization): a
    /// quarter of the bytes; distances are to the decoded vectors.
    I8 = 1,
    /// Both: searches walk the 8-bit codes, then re-rank the final candidates with the
    /// `f32` vectors, so distances returned are exact and rounding does not cap recall.
    /// Five quarters of the `f32` bytes; a search reads the `f32` row of only the few
    /// candidates it re-ranks (see [`RERANK_MIN`]).
    I8F32 = 2,
}

/// An index stored as [`Dtype::I8F32`] re-ranks with its `f32` vectors the best
/// `max(4 k, RERANK_MIN)` candidates by code distance, and every other candidate whose
/// code distance is within the rounding bound ([`rerank_margin`]) of the `k`-th best
/// (so the answer is the exact best `k` of the candidates); it answers exact scans
/// from `f32`.
pub const RERANK_MIN: usize = 64;

impl Dtype {
    /// The numeric code used in files and the C ABI.
    pub fn code(self) -> u32 {
        self as u32
    }

    /// The dtype of a numeric code.
    pub fn from_code(code: u32) -> Option<Dtype> {
        match code {
            0 => Some(Dtype::F32),
            1 => Some(Dtype::I8),
            2 => Some(Dtype::I8F32),
            _ => None,
        }
    }

    /// The dtype's name: "f32", "i8" or "i8+f32".
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::I8 => "i8",
            Dtype::I8F32 => "i8+f32",
        }
    }

    /// True when the vectors are stored as codes (with or without `f32` beside them).
    pub fn has_codes(self) -> bool {
        self != Dtype::F32
    }

    /// True when the `f32` vectors are stored (alone or beside codes).
    pub fn has_f32(self) -> bool {
        self != Dtype::I8
    }
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Dtype {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" | "float" => Ok(Dtype::F32),
            "i8" | "int8" | "u8" | "uint8" | "sq8" => Ok(Dtype::I8),
            "i8+f32" | "int8+float32" | "int8+f32" | "sq8+f32" => Ok(Dtype::I8F32),
            _ => Err(Error::UnknownDtype(s.to_string())),
        }
    }
}

/// Borrowed arrays of vectors stored as codes (see the [module docs](self)).
#[derive(Clone, Copy, Debug)]
pub struct Codes<'a> {
    /// `n_items` rows of [`padded_dim`]`(dim)` bytes; padding bytes are 0.
    pub codes: &'a [u8],
    /// `padded_dim(dim)` floats: the value of code 0 for each component (0 in the padding).
    pub lo: &'a [f32],
    /// `padded_dim(dim)` floats: the value one code step adds, at least 0 (0 in the padding).
    pub step: &'a [f32],
    /// `n_items` floats: `|step * c|^2` under the Euclidean metric, `1 / |decoded|`
    /// under the angular metric, 0 under the dot metric.
    pub aux: &'a [f32],
}

/// Codes owned in memory.
#[derive(Clone, Debug, Default)]
pub(crate) struct OwnedCodes {
    pub(crate) codes: Vec<u8>,
    pub(crate) lo: Vec<f32>,
    pub(crate) step: Vec<f32>,
    pub(crate) aux: Vec<f32>,
}

impl OwnedCodes {
    /// Borrowed view.
    pub(crate) fn parts(&self) -> Codes<'_> {
        Codes {
            codes: &self.codes,
            lo: &self.lo,
            step: &self.step,
            aux: &self.aux,
        }
    }
}

fn oom(what: &'static str, bytes: usize) -> Error {
    Error::OutOfMemory { what, bytes }
}

/// Rows of `padded_dim(dim)` floats stored as `dtype`: the rows themselves for
/// [`Dtype::F32`], no rows and their codes for [`Dtype::I8`], both for [`Dtype::I8F32`].
pub(crate) fn store_as(
    dtype: Dtype,
    rows: Vec<f32>,
    dim: usize,
    metric: Metric,
) -> Result<(Vec<f32>, Option<OwnedCodes>)> {
    Ok(match dtype {
        Dtype::F32 => (rows, None),
        Dtype::I8 => (Vec::new(), Some(encode(&rows, dim, metric)?)),
        Dtype::I8F32 => {
            let codes = encode(&rows, dim, metric)?;
            (rows, Some(codes))
        }
    })
}

/// Encodes `vectors` (rows of `padded_dim(dim)` floats, prepared for `metric`) as codes
/// with a range fitted to them.
pub(crate) fn encode(vectors: &[f32], dim: usize, metric: Metric) -> Result<OwnedCodes> {
    let stride = padded_dim(dim);
    let n = vectors.len() / stride;
    let mut lo = vec![0f32; stride];
    let mut hi = vec![0f32; stride];
    if let Some(first) = vectors.get(..dim) {
        lo[..dim].copy_from_slice(first);
        hi[..dim].copy_from_slice(first);
    }
    for row in vectors.chunks_exact(stride) {
        for j in 0..dim {
            lo[j] = lo[j].min(row[j]);
            hi[j] = hi[j].max(row[j]);
        }
    }
    // A component whose values lie on a grid of at most 256 points (bytes, pixels / 255,
    // small counts) gets the grid's spacing as its step: stored exactly.
    let grid = grid_steps(vectors, dim, stride, &lo);
    // Computed in f64 so that lo + 255 * step lands on hi without overflow.
    let step: Vec<f32> = (0..stride)
        .map(|j| match grid.get(j).copied().flatten() {
            Some(q) => q,
            None => ((hi[j] as f64 - lo[j] as f64) / 255.0) as f32,
        })
        .collect();
    let mut codes = Vec::new();
    codes
        .try_reserve_exact(n * stride)
        .map_err(|_| oom("vector codes", n * stride))?;
    codes.resize(n * stride, 0u8);
    let mut aux = Vec::new();
    aux.try_reserve_exact(n)
        .map_err(|_| oom("vector codes", n * 4))?;
    aux.resize(n, 0.0);
    vectors
        .par_chunks_exact(stride)
        .zip(codes.par_chunks_exact_mut(stride))
        .zip(aux.par_iter_mut())
        .for_each(|((row, out), a)| {
            for j in 0..dim {
                if step[j] > 0.0 {
                    let c = ((row[j] as f64 - lo[j] as f64) / step[j] as f64).round();
                    out[j] = c.clamp(0.0, 255.0) as u8;
                }
            }
            *a = item_aux(out, &lo, &step, dim, metric);
        });
    Ok(OwnedCodes {
        codes,
        lo,
        step,
        aux,
    })
}

/// For each component, the spacing `q` of a grid `lo + m q` (`m` in `0..=255`) holding
/// every value of the component, when there is one: at most 256 distinct values, each
/// within 1/1000 of a grid point (`q` is the smallest gap between distinct values).
/// `None` for a component with more values, values off the grid, or a single value.
fn grid_steps(vectors: &[f32], dim: usize, stride: usize, lo: &[f32]) -> Vec<Option<f32>> {
    const MAX_VALUES: usize = 256;
    type Fast = std::hash::BuildHasherDefault<MixHasher>;
    let mut seen: Vec<Option<std::collections::HashSet<u32, Fast>>> =
        (0..dim).map(|_| Some(Default::default())).collect();
    for row in vectors.chunks_exact(stride) {
        let mut alive = false;
        for (j, set) in seen.iter_mut().enumerate() {
            if let Some(values) = set {
                values.insert(row[j].to_bits());
                if values.len() > MAX_VALUES {
                    *set = None;
                } else {
                    alive = true;
                }
            }
        }
        if !alive {
            break;
        }
    }
    seen.into_iter()
        .enumerate()
        .map(|(j, set)| {
            let mut v: Vec<f64> = set?.into_iter().map(|b| f32::from_bits(b) as f64).collect();
            v.sort_by(f64::total_cmp);
            let q = v
                .windows(2)
                .map(|w| w[1] - w[0])
                .fold(f64::INFINITY, f64::min);
            if !q.is_finite() || q <= 0.0 {
                return None;
            }
            let base = lo[j] as f64;
            let on_grid = v.iter().all(|&x| {
                let m = (x - base) / q;
                (m - m.round()).abs() <= 1e-3 && m.round() <= 255.0
            });
            on_grid.then_some(q as f32)
        })
        .collect()
}

/// A hasher for `u32` keys (float bits) of [`grid_steps`]' sets: one multiply-xorshift
/// mix, several times faster than the default SipHash. Not keyed, so crafted values
/// could collide; but a set is dropped past 256 values, which bounds what a collision
/// chain can cost per insert.
#[derive(Default)]
struct MixHasher(u64);

impl std::hash::Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u32(b as u32);
        }
    }
    fn write_u32(&mut self, x: u32) {
        self.0 = crate::rng::mix(self.0 ^ x as u64);
    }
}

/// The per-item term stored in [`Codes::aux`] for one row of codes.
pub(crate) fn item_aux(c: &[u8], lo: &[f32], step: &[f32], dim: usize, metric: Metric) -> f32 {
    match metric {
        Metric::Euclidean => (0..dim)
            .map(|j| {
                let d = step[j] as f64 * c[j] as f64;
                d * d
            })
            .sum::<f64>() as f32,
        Metric::Angular => {
            let n2: f64 = (0..dim)
                .map(|j| {
                    let x = lo[j] as f64 + step[j] as f64 * c[j] as f64;
                    x * x
                })
                .sum();
            if n2 > 0.0 {
                (1.0 / n2.sqrt()) as f32
            } else {
                // Decodes to zero: no direction; scores +infinity (never wins).
                f32::INFINITY
            }
        }
        Metric::Dot => 0.0,
    }
}

/// Writes the decoded vector of one row of codes into `out` (`dim` floats),
/// unit-normalised under the angular metric.
pub(crate) fn decode(codes: &Codes<'_>, id: usize, dim: usize, metric: Metric, out: &mut [f32]) {
    let stride = padded_dim(dim);
    let c = &codes.codes[id * stride..id * stride + dim];
    for j in 0..dim {
        out[j] = codes.lo[j] + codes.step[j] * c[j] as f32;
    }
    if metric == Metric::Angular {
        let a = codes.aux[id];
        if a.is_finite() {
            out[..dim].iter_mut().for_each(|x| *x *= a);
        }
    }
}

/// A query prepared for distances to codes: per-component weights and a constant.
pub(crate) fn prepare_query(
    codes: &Codes<'_>,
    metric: Metric,
    query: &[f32],
    w: &mut Vec<f32>,
) -> f32 {
    w.clear();
    w.resize(query.len(), 0.0);
    match metric {
        Metric::Euclidean => {
            let mut base = 0f64;
            for j in 0..query.len() {
                let d = query[j] - codes.lo[j];
                w[j] = d * codes.step[j];
                base += d as f64 * d as f64;
            }
            base as f32
        }
        Metric::Angular | Metric::Dot => {
            for j in 0..query.len() {
                w[j] = query[j] * codes.step[j];
            }
            kernels::dot(query, codes.lo)
        }
    }
}

/// How far the `k`-th best code distance may be from the `k`-th best exact one, twice
/// over: an item whose code distance exceeds the `k`-th best by more cannot be among
/// the exact best `k` (see [`RERANK_MIN`]). A decoded vector is within `e = |step| / 2`
/// of its original (half a step per component), so a distance moves by at most `e`
/// (Euclidean), `2 e` (angular: renormalising at most doubles it) or `|q| e` (dot,
/// `query` as prepared). A little is added for float rounding.
pub(crate) fn rerank_margin(codes: &Codes<'_>, metric: Metric, query: &[f32]) -> f32 {
    let e = 0.5 * codes.step.iter().map(|s| s * s).sum::<f32>().sqrt();
    let per_side = match metric {
        Metric::Euclidean => e,
        Metric::Angular => 2.0 * e,
        Metric::Dot => query.iter().map(|x| x * x).sum::<f32>().sqrt() * e,
    };
    2.0 * per_side * 1.01
}

/// Distance from a prepared query (`w`, `base`) to item `id` stored as codes.
#[inline]
pub(crate) fn distance(
    codes: &Codes<'_>,
    metric: Metric,
    stride: usize,
    w: &[f32],
    base: f32,
    id: usize,
) -> f32 {
    let row = &codes.codes[id * stride..(id + 1) * stride];
    finish(codes, metric, base, kernels::dot_u8(w, row), id)
}

/// [`distance`] to four items at once (bit-identical to four calls; one kernel call).
#[inline]
pub(crate) fn distances4(
    codes: &Codes<'_>,
    metric: Metric,
    stride: usize,
    w: &[f32],
    base: f32,
    ids: [u32; 4],
) -> [f32; 4] {
    let rows = ids.map(|id| &codes.codes[id as usize * stride..(id as usize + 1) * stride]);
    let dots = kernels::dot_u8_x4(w, rows);
    std::array::from_fn(|j| finish(codes, metric, base, dots[j], ids[j] as usize))
}

/// The distance to item `id` from its code row's weighted sum `dot`.
#[inline]
fn finish(codes: &Codes<'_>, metric: Metric, base: f32, dot: f32, id: usize) -> f32 {
    let aux = codes.aux[id];
    match metric {
        Metric::Euclidean => {
            // Rounding can take a tiny distance below 0; NaN (a damaged term) stays
            // NaN and scores +infinity (`f32::max` would turn it into 0, a win).
            let d2 = base - 2.0 * dot + aux;
            if d2 > 0.0 {
                d2.sqrt()
            } else if d2 <= 0.0 {
                0.0
            } else {
                f32::NAN
            }
        }
        Metric::Angular => crate::metric::cosine_distance((base + dot) * aux),
        Metric::Dot => -(base + dot),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize, dim: usize, seed: u64, metric: Metric) -> Vec<f32> {
        let stride = padded_dim(dim);
        let mut out = vec![0f32; n * stride];
        for i in 0..n {
            let v = crate::rng::gaussian_vector(dim, metric == Metric::Angular, seed + i as u64);
            out[i * stride..i * stride + dim].copy_from_slice(&v);
        }
        out
    }

    #[test]
    fn code_distances_equal_distances_to_the_decoded_vectors() {
        for metric in [Metric::Euclidean, Metric::Angular, Metric::Dot] {
            let dim = 37;
            let stride = padded_dim(dim);
            let v = rows(50, dim, 1, metric);
            let c = encode(&v, dim, metric).unwrap();
            let codes = c.parts();
            let q = rows(1, dim, 999, metric);
            let mut w = Vec::new();
            let base = prepare_query(&codes, metric, &q, &mut w);
            let mut x = vec![0f32; stride];
            for id in 0..50 {
                decode(&codes, id, dim, metric, &mut x);
                if metric == Metric::Angular {
                    // Decoded angular vectors come back unit length.
                    let n: f32 = x.iter().map(|v| v * v).sum::<f32>().sqrt();
                    assert!((n - 1.0).abs() < 1e-4, "{id}: length {n}");
                }
                let want = metric.distance(&q, &x);
                let got = distance(&codes, metric, stride, &w, base, id);
                assert!(
                    (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                    "{metric} {id}: {got} vs {want}"
                );
                // Decoding is off by at most half a step per component.
                for j in 0..dim {
                    let err = (x[j]
                        / if metric == Metric::Angular {
                            codes.aux[id]
                        } else {
                            1.0
                        }
                        - v[id * stride + j])
                        .abs();
                    assert!(
                        err <= codes.step[j] * 0.5 + 1e-5,
                        "{metric} {id} {j}: {err}"
                    );
                }
            }
        }
    }

    #[test]
    fn values_on_a_byte_grid_are_stored_exactly() {
        let dim = 16;
        // Whole numbers spanning less than 255: step 1, not range / 255.
        let v: Vec<f32> = (0..32 * dim)
            .map(|i| ((i * 37) % 200) as f32 - 50.0)
            .collect();
        let c = encode(&v, dim, Metric::Euclidean).unwrap();
        let mut x = vec![0f32; dim];
        for id in 0..32 {
            decode(&c.parts(), id, dim, Metric::Euclidean, &mut x);
            assert_eq!(&x[..], &v[id * dim..(id + 1) * dim]);
        }
        // Steps of whole numbers (the smallest gap between a component's values).
        assert!(c.step[..dim].iter().all(|&s| s >= 1.0 && s.fract() == 0.0));
    }

    #[test]
    fn values_on_any_grid_of_256_points_are_stored_to_float_precision() {
        // Pixels / 255 (no component reaching both 0 and 1), and a coarse grid of 0.5.
        let dim = 16;
        let v: Vec<f32> = (0..64 * dim)
            .map(|i| match i % dim {
                0 => ((i * 7) % 11) as f32 * 0.5,
                _ => (3 + (i * 37) % 200) as f32 / 255.0,
            })
            .collect();
        let c = encode(&v, dim, Metric::Euclidean).unwrap();
        assert_eq!(c.step[0], 0.5);
        for j in 1..dim {
            let m = c.step[j] * 255.0;
            assert!(
                (m - m.round()).abs() < 1e-4,
                "component {j}: step {}",
                c.step[j]
            );
        }
        let mut x = vec![0f32; dim];
        for id in 0..64 {
            decode(&c.parts(), id, dim, Metric::Euclidean, &mut x);
            for j in 0..dim {
                assert!((x[j] - v[id * dim + j]).abs() <= 1e-6, "{id} {j}");
            }
        }
        // Off-grid values fall back to range / 255.
        let w: Vec<f32> = (0..300 * dim).map(|i| (i as f32 * 0.618).sin()).collect();
        let c = encode(&w, dim, Metric::Euclidean).unwrap();
        assert!(
            c.step[..dim]
                .iter()
                .all(|&s| s > 0.0 && s < 2.0 / 255.0 + 1e-6)
        );
    }

    #[test]
    fn a_grid_takes_at_most_256_points_all_on_it() {
        // Component 0: all 256 bytes (a grid, step 1); component 1: 0, 1, 2.5 (off the
        // grid of its smallest gap); component 2: 0, 1, 300 (a grid of 301 points). (With
        // exactly 256 points a grid's spacing is range / 255 anyway.)
        let dim = 3;
        let stride = padded_dim(dim);
        let mut v = vec![0f32; 256 * stride];
        for i in 0..256 {
            v[i * stride] = i as f32;
            v[i * stride + 1] = [0.0, 1.0, 2.5][i % 3];
            v[i * stride + 2] = [0.0, 1.0, 300.0][i % 3];
        }
        let c = encode(&v, dim, Metric::Euclidean).unwrap();
        assert_eq!(c.step[0], 1.0);
        assert!((c.step[1] - 2.5 / 255.0).abs() < 1e-7, "{}", c.step[1]);
        assert!((c.step[2] - 300.0 / 255.0).abs() < 1e-6, "{}", c.step[2]);
    }

    #[test]
    fn a_constant_component_has_step_zero_and_code_zero() {
        let dim = 2;
        let stride = padded_dim(dim);
        let mut v = vec![0f32; 3 * stride];
        for i in 0..3 {
            v[i * stride] = 5.0;
            v[i * stride + 1] = i as f32 * 0.5;
        }
        let c = encode(&v, dim, Metric::Euclidean).unwrap();
        assert_eq!(c.step[0], 0.0);
        assert_eq!(c.lo[0], 5.0);
        assert!(c.codes.chunks(stride).all(|r| r[0] == 0));
        // 0, 0.5, 1: a grid of step 0.5.
        assert_eq!(c.step[1], 0.5);
        assert_eq!(c.codes[2 * stride + 1], 2);
    }

    #[test]
    fn the_rerank_margin_bounds_every_code_distance_error_twice_over() {
        for metric in [Metric::Euclidean, Metric::Angular, Metric::Dot] {
            let dim = 29;
            let stride = padded_dim(dim);
            let v = rows(300, dim, 4, metric);
            let c = encode(&v, dim, metric).unwrap();
            let codes = c.parts();
            let mut q = rows(1, dim, 77, metric);
            q.iter_mut().for_each(|x| *x *= 3.0); // |q| = 3 (dot: the bound scales with it)
            if metric == Metric::Angular {
                crate::search::normalize(&mut q);
            }
            let mut w = Vec::new();
            let base = prepare_query(&codes, metric, &q, &mut w);
            let m = rerank_margin(&codes, metric, &q);
            // The documented value: twice the per-side bound, plus 1%.
            let e = 0.5 * codes.step.iter().map(|s| s * s).sum::<f32>().sqrt();
            let qn = q.iter().map(|x| x * x).sum::<f32>().sqrt();
            let side = match metric {
                Metric::Euclidean => e,
                Metric::Angular => 2.0 * e,
                Metric::Dot => qn * e,
            };
            assert!(
                (m - 2.02 * side).abs() <= 1e-5 * m,
                "{metric}: {m} vs {side}"
            );
            // And it holds: no code distance is off by more than half of it.
            for id in 0..300 {
                let exact = metric.distance(&q, &v[id * stride..(id + 1) * stride]);
                let got = distance(&codes, metric, stride, &w, base, id);
                assert!(
                    (got - exact).abs() <= m / 2.0,
                    "{metric} {id}: {got} vs {exact}"
                );
            }
        }
    }

    #[test]
    fn dtype_names_round_trip() {
        for d in [Dtype::F32, Dtype::I8, Dtype::I8F32] {
            assert_eq!(d.name().parse::<Dtype>().unwrap(), d);
            assert_eq!(Dtype::from_code(d.code()), Some(d));
            assert_eq!(d.to_string(), d.name());
            assert_eq!(d.has_codes(), d != Dtype::F32);
            assert_eq!(d.has_f32(), d != Dtype::I8);
        }
        assert_eq!(Dtype::I8F32.code(), 2);
        assert!("f16".parse::<Dtype>().is_err());
        assert_eq!(Dtype::from_code(3), None);
    }
}
