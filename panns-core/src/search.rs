//! k-nearest-neighbour search over an [`IndexView`].
//!
//! A query is projected on the whole pool once (one SIMD dot product per pool vector);
//! every node's margin is then a table look-up. All trees are walked best-first from
//! one priority queue ordered by the smallest margin along the path (as Annoy does)
//! until `budget` distinct candidates are collected; those are re-ranked with exact
//! SIMD distances. Results are sorted by distance, ties broken by id.

use crate::layout::{IndexView, LEAF_FLAG, padded_dim};
use crate::{Error, Metric, Result, kernels};
use rayon::prelude::*;
use std::cell::RefCell;
use std::collections::BinaryHeap;

/// One search result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Neighbor {
    /// Item id (insertion order, from 0).
    pub id: u32,
    /// Distance to the query under the index metric.
    pub distance: f32,
}

/// Parameters of a search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SearchParams {
    /// Number of neighbours wanted (at least 1; more than the index holds returns all).
    pub k: usize,
    /// Search effort (larger: better recall, slower; 0 picks a default; at half the
    /// item count or more the search scans every item exactly). Without a
    /// neighbour graph: the number of distinct candidates re-ranked. With a graph: the
    /// number of best candidates kept while walking the graph (HNSW's `ef`).
    pub budget: usize,
}

impl SearchParams {
    /// `k` neighbours with the default budget.
    pub fn new(k: usize) -> Self {
        SearchParams { k, budget: 0 }
    }
    /// Sets the candidate budget.
    pub fn with_budget(mut self, budget: usize) -> Self {
        self.budget = budget;
        self
    }
}

/// Fewest forest candidates that seed a graph walk.
const SEEDS: usize = 64;

/// Per-thread reusable buffers, so a search allocates nothing in the steady state.
#[derive(Default)]
struct Scratch {
    query: Vec<f32>,
    proj: Vec<f32>,
    heap: BinaryHeap<u64>,
    stamp: Vec<u32>,
    epoch: u32,
    cands: Vec<u32>,
    scored: Vec<(f32, u32)>,
    frontier: BinaryHeap<std::cmp::Reverse<u64>>,
    best: BinaryHeap<u64>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Maps a float to a `u32` whose unsigned order is the float's order.
#[inline]
fn ordered(f: f32) -> u32 {
    let b = f.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

#[inline]
fn unordered(u: u32) -> f32 {
    f32::from_bits(if u & 0x8000_0000 != 0 {
        u & 0x7fff_ffff
    } else {
        !u
    })
}

/// Checks a query and writes it, prepared for `metric`, into a zero-padded buffer.
pub(crate) fn prepare(query: &[f32], dim: usize, metric: Metric, out: &mut Vec<f32>) -> Result<()> {
    if query.len() != dim {
        return Err(Error::DimensionMismatch {
            expected: dim,
            got: query.len(),
        });
    }
    if let Some(i) = query.iter().position(|x| !x.is_finite()) {
        return Err(Error::NonFinite {
            item: 0,
            index: i,
            value: query[i],
        });
    }
    out.clear();
    out.resize(padded_dim(dim), 0.0);
    out[..dim].copy_from_slice(query);
    if metric == Metric::Angular {
        let n = kernels::norm(out);
        if n == 0.0 || !n.is_finite() {
            return Err(Error::ZeroVector { item: 0 });
        }
        out.iter_mut().for_each(|x| *x /= n);
    }
    Ok(())
}

/// Sorts `(distance, id)` pairs and keeps the best `k`.
fn top_k(scored: &mut Vec<(f32, u32)>, k: usize) -> Vec<Neighbor> {
    let cmp = |a: &(f32, u32), b: &(f32, u32)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
    if scored.len() > k {
        scored.select_nth_unstable_by(k - 1, cmp);
        scored.truncate(k);
    }
    scored.sort_unstable_by(cmp);
    scored
        .iter()
        .map(|&(distance, id)| Neighbor { id, distance })
        .collect()
}

impl IndexView<'_> {
    /// The default search effort for `k` neighbours (see [`SearchParams::budget`]).
    pub fn default_budget(&self, k: usize) -> usize {
        if self.p.graph_degree > 0 {
            (4 * k).max(64)
        } else {
            (self.n_trees() * k).max(100 * k)
        }
    }

    /// Approximate `k` nearest neighbours of `query`, nearest first.
    pub fn search(&self, query: &[f32], params: &SearchParams) -> Result<Vec<Neighbor>> {
        Ok(self.search_with_stats(query, params)?.0)
    }

    /// Like [`search`](Self::search), also returning how many distinct candidates
    /// were re-ranked.
    pub fn search_with_stats(
        &self,
        query: &[f32],
        params: &SearchParams,
    ) -> Result<(Vec<Neighbor>, usize)> {
        if params.k == 0 {
            return Err(Error::InvalidK(0));
        }
        SCRATCH.with(|s| {
            let s = &mut *s.borrow_mut();
            prepare(query, self.dim(), self.metric(), &mut s.query)?;
            let budget = match params.budget {
                0 => self.default_budget(params.k),
                b => b,
            }
            .min(self.len());
            if 2 * budget >= self.len() {
                // Scanning half the items or more: an exact scan is cheaper than the
                // traversal and gives the exact answer.
                s.cands.clear();
                s.cands.extend(0..self.len() as u32);
                self.score_candidates(s);
            } else if self.p.graph_degree > 0 {
                // Seed the walk with forest candidates, then follow the graph. More seeds
                // at higher effort: the graph cannot cross between well-separated
                // clusters, the forest can.
                self.collect_candidates(s, budget.min((budget / 4).max(SEEDS)));
                self.score_candidates(s);
                self.walk_graph(s, budget.max(params.k));
            } else {
                self.collect_candidates(s, budget);
                self.score_candidates(s);
            }
            let n = s.cands.len();
            Ok((top_k(&mut s.scored, params.k), n))
        })
    }

    /// Computes the distance of every candidate in `s.cands` into `s.scored`.
    fn score_candidates(&self, s: &mut Scratch) {
        let metric = self.metric();
        let q = &s.query;
        s.scored.clear();
        // Rows are scattered in memory: ask for a few rows ahead while scoring one.
        const AHEAD: usize = 6;
        for &id in s.cands.iter().take(AHEAD) {
            kernels::prefetch(self.row(id as usize));
        }
        for (i, &id) in s.cands.iter().enumerate() {
            if let Some(&next) = s.cands.get(i + AHEAD) {
                kernels::prefetch(self.row(next as usize));
            }
            s.scored
                .push((metric.distance(q, self.row(id as usize)), id));
        }
    }

    /// Best-first beam search over the neighbour graph from the scored seeds; leaves
    /// the best `ef` items found in `s.scored` and every scored item in `s.cands`.
    fn walk_graph(&self, s: &mut Scratch, ef: usize) {
        let (graph, deg) = (self.p.graph, self.p.graph_degree);
        let metric = self.metric();
        let key = |d: f32, id: u32| ((ordered(d) as u64) << 32) | id as u64;
        // `frontier`: min-heap of items to expand; `best`: max-heap of the ef nearest.
        let mut frontier = std::mem::take(&mut s.frontier);
        let mut best = std::mem::take(&mut s.best);
        frontier.clear();
        best.clear();
        for &(d, id) in &s.scored {
            frontier.push(std::cmp::Reverse(key(d, id)));
            best.push(key(d, id));
            if best.len() > ef {
                best.pop();
            }
        }
        let epoch = s.epoch;
        while let Some(std::cmp::Reverse(k)) = frontier.pop() {
            if best.len() >= ef && best.peek().is_some_and(|&w| k > w) {
                break;
            }
            let c = (k as u32) as usize;
            let row = &graph[c * deg..(c + 1) * deg];
            let start = s.cands.len();
            for &v in row {
                if v == u32::MAX {
                    break;
                }
                let st = &mut s.stamp[v as usize];
                if *st != epoch {
                    *st = epoch;
                    s.cands.push(v);
                    kernels::prefetch(self.row(v as usize));
                }
            }
            for i in start..s.cands.len() {
                let v = s.cands[i];
                let d = metric.distance(&s.query, self.row(v as usize));
                let kv = key(d, v);
                if best.len() < ef || best.peek().is_some_and(|&w| kv < w) {
                    frontier.push(std::cmp::Reverse(kv));
                    best.push(kv);
                    if best.len() > ef {
                        best.pop();
                    }
                }
            }
        }
        s.scored.clear();
        s.scored.extend(
            best.into_iter()
                .map(|k| (unordered((k >> 32) as u32), k as u32)),
        );
    }

    /// Walks all trees best-first until `budget` distinct items are in `s.cands`.
    fn collect_candidates(&self, s: &mut Scratch, budget: usize) {
        let p = &self.p;
        let stride = self.stride;
        s.proj.clear();
        s.proj.extend(
            p.pool
                .chunks_exact(stride)
                .map(|row| kernels::dot(row, &s.query)),
        );
        if s.stamp.len() < p.n_items {
            s.stamp.resize(p.n_items, 0);
        }
        s.epoch = s.epoch.wrapping_add(1);
        if s.epoch == 0 {
            s.stamp.iter_mut().for_each(|x| *x = 0);
            s.epoch = 1;
        }
        let epoch = s.epoch;
        s.cands.clear();
        s.heap.clear();
        let top = (ordered(f32::INFINITY) as u64) << 32;
        s.heap.extend(p.roots.iter().map(|&r| top | r as u64));
        while let Some(key) = s.heap.pop() {
            let child = key as u32;
            if child & LEAF_FLAG != 0 {
                let l = (child & !LEAF_FLAG) as usize;
                let (a, b) = (p.leaf_offsets[l] as usize, p.leaf_offsets[l + 1] as usize);
                for &id in &p.leaf_ids[a..b] {
                    let st = &mut s.stamp[id as usize];
                    if *st != epoch {
                        *st = epoch;
                        s.cands.push(id);
                    }
                }
                if s.cands.len() >= budget {
                    break;
                }
            } else {
                let d = unordered((key >> 32) as u32);
                let node = &p.nodes[child as usize];
                let m = s.proj[node.proj as usize] - node.offset;
                s.heap
                    .push(((ordered(d.min(m)) as u64) << 32) | node.right as u64);
                s.heap
                    .push(((ordered(d.min(-m)) as u64) << 32) | node.left as u64);
            }
        }
    }

    /// Searches many queries (row-major, `dim` floats each) in parallel on the rayon pool.
    pub fn search_batch(
        &self,
        queries: &[f32],
        params: &SearchParams,
    ) -> Result<Vec<Vec<Neighbor>>> {
        let dim = self.dim();
        if !queries.len().is_multiple_of(dim) {
            return Err(Error::DimensionMismatch {
                expected: dim,
                got: queries.len() % dim,
            });
        }
        queries
            .par_chunks(dim)
            .map(|q| self.search(q, params))
            .collect()
    }

    /// Exact `k` nearest neighbours by scanning every item (the reference for recall).
    pub fn linear_search(&self, query: &[f32], k: usize) -> Result<Vec<Neighbor>> {
        if k == 0 {
            return Err(Error::InvalidK(0));
        }
        let mut q = Vec::new();
        prepare(query, self.dim(), self.metric(), &mut q)?;
        let metric = self.metric();
        let mut scored: Vec<(f32, u32)> = (0..self.len())
            .map(|i| (metric.distance(&q, self.row(i)), i as u32))
            .collect();
        Ok(top_k(&mut scored, k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_keys_sort_like_floats() {
        let xs = [
            f32::NEG_INFINITY,
            -3.5,
            -0.0,
            0.0,
            1e-30,
            2.0,
            f32::INFINITY,
        ];
        for w in xs.windows(2) {
            assert!(ordered(w[0]) <= ordered(w[1]), "{w:?}");
        }
        for x in xs {
            assert_eq!(unordered(ordered(x)).to_bits(), x.to_bits());
        }
    }
}
