//! Distance metrics.

use crate::{Error, kernels};

/// How distance between two vectors is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Metric {
    /// Euclidean (L2) distance, `sqrt(sum((a-b)^2))`.
    Euclidean = 0,
    /// Angular: vectors are normalised on insert; the distance reported is the cosine
    /// distance `1 - cos(a, b)`, in `[0, 2]` (as in ann-benchmarks' "angular").
    Angular = 1,
    /// Negative inner product `-(a·b)` (smaller is nearer; vectors are not normalised).
    Dot = 2,
}

impl Metric {
    /// The numeric code used in files and the C ABI.
    pub fn code(self) -> u32 {
        self as u32
    }

    /// The metric of a numeric code.
    pub fn from_code(code: u32) -> Option<Metric> {
        match code {
            0 => Some(Metric::Euclidean),
            1 => Some(Metric::Angular),
            2 => Some(Metric::Dot),
            _ => None,
        }
    }

    /// The metric's lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Euclidean => "euclidean",
            Metric::Angular => "angular",
            Metric::Dot => "dot",
        }
    }

    /// Distance between two prepared vectors (normalised already for `Angular`).
    #[inline]
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Metric::Euclidean => kernels::l2sq(a, b).sqrt(),
            Metric::Angular => cosine_distance(kernels::dot(a, b)),
            Metric::Dot => -kernels::dot(a, b),
        }
    }

    /// [`distance`](Self::distance) from `a` to four rows at once, each bit-identical
    /// to its own call (the four-row kernels).
    #[inline]
    pub fn distance4(self, a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
        match self {
            Metric::Euclidean => kernels::l2sq_x4(a, b).map(f32::sqrt),
            Metric::Angular => kernels::dot_x4(a, b).map(cosine_distance),
            Metric::Dot => kernels::dot_x4(a, b).map(|d| -d),
        }
    }
}

/// `1 - cos` of a cosine computed from unit (or decoded, rescaled) vectors. Rounding can
/// push it slightly below 0: that is clamped to 0. Anything further below (a damaged,
/// non-unit stored row) or NaN is not a distance: +inf, so it never wins.
#[inline]
pub(crate) fn cosine_distance(cos: f32) -> f32 {
    let d = 1.0 - cos;
    if d >= 0.0 {
        d
    } else if d > -1e-3 {
        0.0
    } else {
        f32::INFINITY
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Metric {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "euclidean" | "l2" => Ok(Metric::Euclidean),
            "angular" | "cosine" => Ok(Metric::Angular),
            "dot" | "ip" | "inner_product" => Ok(Metric::Dot),
            _ => Err(Error::UnknownMetric(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_row_distances_equal_one_row_at_a_time_under_every_metric() {
        let mut r = crate::rng::Rng::new(3);
        let mut v = |n: usize| (0..n).map(|_| r.gaussian() as f32).collect::<Vec<f32>>();
        let q = v(37);
        let rows: Vec<Vec<f32>> = (0..4).map(|_| v(37)).collect();
        let b = [&rows[0][..], &rows[1], &rows[2], &rows[3]];
        for m in [Metric::Euclidean, Metric::Angular, Metric::Dot] {
            let want = b.map(|row| m.distance(&q, row).to_bits());
            assert_eq!(m.distance4(&q, b).map(f32::to_bits), want, "{m}");
        }
        // Signs differ between the metrics (the dot distance of a row with itself is
        // negative), so a dropped negation or a swapped metric would show.
        assert!(Metric::Dot.distance4(&q, [&q; 4])[0] < 0.0);
    }
}
