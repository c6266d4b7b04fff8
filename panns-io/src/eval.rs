//! Ground truth and recall, computed the ann-benchmarks way (as `run_peers.py` does), one
//! implementation for the CLI, the benches and every recall test.
//!
//! A returned point counts towards recall@k when its *true* distance to the query,
//! computed here in `f64` from the original vectors, is at most the k-th true
//! neighbour's distance plus `1e-3`. Plain id recall (`|returned ∩ true top-k| / k`)
//! is reported beside it.

use panns_core::Metric;

/// The tolerance ann-benchmarks adds to the k-th true distance.
pub const EPSILON: f64 = 1e-3;

/// Exact distances and per-query thresholds for scoring result lists.
#[derive(Debug, Clone)]
pub struct Scorer<'a> {
    metric: Metric,
    dim: usize,
    k: usize,
    train: &'a [f32],
    test: &'a [f32],
    train_norms: Vec<f64>,
    test_norms: Vec<f64>,
    /// k-th true distance of each query.
    thresholds: Vec<f64>,
    /// True top-k ids of each query, nearest first.
    true_ids: Vec<Vec<u32>>,
}

/// Recall of one sweep point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recall {
    /// ann-benchmarks recall@k (distance threshold with [`EPSILON`]).
    pub threshold: f64,
    /// Plain id recall@k.
    pub ids: f64,
}

fn norms(rows: &[f32], dim: usize) -> Vec<f64> {
    rows.chunks_exact(dim)
        .map(|r| r.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt())
        .collect()
}

impl<'a> Scorer<'a> {
    /// A scorer for `test` queries against `train` (row-major, `dim` floats each),
    /// given the true top-k ids of every query (at least `k` each, nearest first).
    /// `kth_distances`, when given (the `distances` data set's k-th column), sets the
    /// thresholds; otherwise they are computed from the true ids.
    pub fn new(
        metric: Metric,
        dim: usize,
        k: usize,
        train: &'a [f32],
        test: &'a [f32],
        true_ids: Vec<Vec<u32>>,
        kth_distances: Option<Vec<f64>>,
    ) -> Self {
        let angular = metric == Metric::Angular;
        let mut s = Scorer {
            metric,
            dim,
            k,
            train,
            test,
            train_norms: if angular {
                norms(train, dim)
            } else {
                Vec::new()
            },
            test_norms: if angular {
                norms(test, dim)
            } else {
                Vec::new()
            },
            thresholds: Vec::new(),
            true_ids,
        };
        s.thresholds = match kth_distances {
            Some(t) => t,
            None => (0..s.true_ids.len())
                .map(|q| match s.true_ids[q].get(k - 1) {
                    Some(&id) => s.true_distance(q, id as usize),
                    None => f64::INFINITY,
                })
                .collect(),
        };
        s
    }

    /// Exact distance from query `q` to train item `id` under the metric, in `f64`.
    pub fn true_distance(&self, q: usize, id: usize) -> f64 {
        let d = self.dim;
        let a = &self.train[id * d..(id + 1) * d];
        let b = &self.test[q * d..(q + 1) * d];
        match self.metric {
            Metric::Euclidean => a
                .iter()
                .zip(b)
                .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
                .sum::<f64>()
                .sqrt(),
            Metric::Angular => {
                let dot: f64 = a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum();
                let n = self.train_norms[id] * self.test_norms[q];
                if n > 0.0 { 1.0 - dot / n } else { 1.0 }
            }
            Metric::Dot => -a
                .iter()
                .zip(b)
                .map(|(&x, &y)| x as f64 * y as f64)
                .sum::<f64>(),
        }
    }

    /// Mean recall over `results[q]` = ids returned for query `q` (only the first k count).
    pub fn recall(&self, results: &[Vec<u32>]) -> Recall {
        let k = self.k;
        let (mut thr, mut ids) = (0.0, 0.0);
        for (q, res) in results.iter().enumerate() {
            let res = &res[..res.len().min(k)];
            let limit = self.thresholds[q] + EPSILON;
            let hits = res
                .iter()
                .filter(|&&id| self.true_distance(q, id as usize) <= limit)
                .count();
            thr += hits as f64 / k as f64;
            let truth = &self.true_ids[q][..self.true_ids[q].len().min(k)];
            ids += res.iter().filter(|id| truth.contains(id)).count() as f64 / k as f64;
        }
        let n = results.len().max(1) as f64;
        Recall {
            threshold: thr / n,
            ids: ids / n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_within_epsilon_count_but_ids_do_not() {
        // Items 0..4 on a line; query at 0. Items 1 and 2 are equally far (ties).
        let train = [0.0f32, 1.0, 1.0, 5.0];
        let test = [0.0f32];
        let s = Scorer::new(
            Metric::Euclidean,
            1,
            2,
            &train,
            &test,
            vec![vec![0, 1]],
            None,
        );
        let r = s.recall(&[vec![0, 2]]);
        assert_eq!(r.threshold, 1.0);
        assert_eq!(r.ids, 0.5);
        let r = s.recall(&[vec![3, 0]]);
        assert_eq!(r.threshold, 0.5);
    }

    #[test]
    fn angular_uses_cosine_distance_of_unnormalised_rows() {
        let train = [2.0f32, 0.0, 0.0, 3.0];
        let test = [1.0f32, 0.0];
        let s = Scorer::new(Metric::Angular, 2, 1, &train, &test, vec![vec![0]], None);
        assert!(s.true_distance(0, 0).abs() < 1e-12);
        assert!((s.true_distance(0, 1) - 1.0).abs() < 1e-12);
        assert_eq!(s.recall(&[vec![1]]).threshold, 0.0);
    }
}
