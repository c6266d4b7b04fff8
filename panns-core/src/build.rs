//! Building the projection pool and the forest of random-projection trees.
//!
//! Every point is projected once on every pool vector (one table of `n x pool`
//! floats); after that a tree is built from table look-ups alone: at each node a few
//! pool vectors are drawn at random, the one along which the node's points spread
//! most is kept, and the points are split at their mean (or median) projection.
//! Trees are built in parallel, each from its own random stream derived from the
//! seed, and concatenated in tree order, so the result is bit-identical for any
//! thread count.

use crate::layout::{LEAF_FLAG, Node};
use crate::rng::Rng;
use crate::{Error, Result, kernels};
use rayon::prelude::*;

/// Where a node splits its points along the chosen projection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitRule {
    /// At the mean projection (the original panns rule).
    Mean,
    /// At the median projection (balanced trees).
    Median,
}

/// Parameters of [`crate::IndexBuilder::build`].
#[derive(Clone, Debug, PartialEq)]
pub struct BuildParams {
    /// Number of trees (more trees: better recall, larger index, slower build).
    pub n_trees: usize,
    /// A node with at most this many points becomes a leaf.
    pub leaf_size: usize,
    /// Number of projection vectors in the pool shared by all trees.
    pub pool_size: usize,
    /// Pool vectors drawn at each node; the one with the largest spread is used.
    pub candidates: usize,
    /// Where to split.
    pub split: SplitRule,
    /// Seed of every random choice; same seed + data ⇒ identical index.
    pub seed: u64,
    /// Worker threads (0: all cores). Never changes the result.
    pub threads: usize,
}

impl Default for BuildParams {
    fn default() -> Self {
        BuildParams {
            n_trees: 32,
            leaf_size: 16,
            pool_size: 256,
            candidates: 8,
            split: SplitRule::Mean,
            seed: 42,
            threads: 0,
        }
    }
}

impl BuildParams {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<()> {
        let bad = |name, value: usize, reason| Err(Error::parameter(name, value, reason));
        if self.n_trees == 0 || self.n_trees > 65_536 {
            return bad("n_trees", self.n_trees, "must be between 1 and 65536");
        }
        if self.leaf_size == 0 || self.leaf_size > 1 << 20 {
            return bad("leaf_size", self.leaf_size, "must be between 1 and 2^20");
        }
        if self.pool_size == 0 || self.pool_size > 1 << 16 {
            return bad("pool_size", self.pool_size, "must be between 1 and 65536");
        }
        if self.candidates == 0 {
            return bad("candidates", self.candidates, "must be at least 1");
        }
        Ok(())
    }
}

/// The forest arrays produced by [`build_forest`] (see [`crate::IndexParts`]).
#[derive(Clone, Debug, Default)]
pub struct Forest {
    /// Inner nodes, each tree in pre-order, trees in order.
    pub nodes: Vec<Node>,
    /// Root reference of each tree.
    pub roots: Vec<u32>,
    /// `n_leaves + 1` offsets into `leaf_ids`.
    pub leaf_offsets: Vec<u32>,
    /// Item ids of all leaves.
    pub leaf_ids: Vec<u32>,
}

/// Borrowed forest arrays (of an owned or a mapped index).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ForestRef<'a> {
    pub(crate) nodes: &'a [Node],
    pub(crate) roots: &'a [u32],
    pub(crate) leaf_offsets: &'a [u32],
    pub(crate) leaf_ids: &'a [u32],
}

/// Refuses a build whose projection table alone cannot be allocated, before any
/// work: `n x pool_size` floats, plus one id per item per tree (the leaves).
pub(crate) fn check_memory(n: usize, params: &BuildParams) -> Result<()> {
    let table = n
        .checked_mul(params.pool_size)
        .and_then(|x| x.checked_mul(4));
    let leaves = n.checked_mul(params.n_trees).and_then(|x| x.checked_mul(4));
    let (Some(table), Some(leaves)) = (table, leaves) else {
        return Err(Error::OutOfMemory {
            what: "projection table",
            bytes: usize::MAX,
        });
    };
    // Ask the allocator up front (and give it back): a failure is an error, not an abort.
    let mut probe: Vec<u8> = Vec::new();
    probe
        .try_reserve_exact(table.saturating_add(leaves))
        .map_err(|_| Error::OutOfMemory {
            what: "projection table and leaves",
            bytes: table.saturating_add(leaves),
        })?;
    Ok(())
}

/// `pool_size` random unit Gaussian vectors of `dim` components, each padded with zeros
/// to `stride` floats.
pub fn gaussian_pool(dim: usize, stride: usize, pool_size: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::derive(seed, u64::MAX);
    let mut pool = vec![0f32; pool_size * stride];
    for row in pool.chunks_exact_mut(stride) {
        let v: Vec<f64> = (0..dim).map(|_| rng.gaussian()).collect();
        let n = v
            .iter()
            .map(|x| x * x)
            .sum::<f64>()
            .sqrt()
            .max(f64::MIN_POSITIVE);
        for (o, x) in row.iter_mut().zip(&v) {
            *o = (x / n) as f32;
        }
    }
    pool
}

/// Projection of every row of `vectors` on every pool vector, column-major:
/// `table[p * n + i]` is item `i` on pool vector `p`. Trees keep each node's items in
/// ascending id order, so a node reads each column it needs front to back.
pub(crate) fn project_all(vectors: &[f32], pool: &[f32], stride: usize) -> Result<Vec<f32>> {
    let n = vectors.len() / stride;
    let len = n * (pool.len() / stride);
    let mut table: Vec<f32> = Vec::new();
    table
        .try_reserve_exact(len)
        .map_err(|_| Error::OutOfMemory {
            what: "projection table",
            bytes: len.saturating_mul(4),
        })?;
    table.resize(len, 0.0);
    table
        .par_chunks_mut(n.max(1))
        .zip(pool.par_chunks(stride))
        .for_each(|(col, p)| {
            for (o, x) in col.iter_mut().zip(vectors.chunks_exact(stride)) {
                *o = kernels::dot(x, p);
            }
        });
    Ok(table)
}

/// Builds `params.n_trees` trees over the `n` items whose projections are in `table`.
pub fn build_forest(table: &[f32], n: usize, params: &BuildParams) -> Forest {
    build_forest_with(table, n, params, &crate::progress::silent)
}

/// [`build_forest`], reporting each finished tree to `progress`.
pub(crate) fn build_forest_with(
    table: &[f32],
    n: usize,
    params: &BuildParams,
    progress: crate::ProgressFn<'_>,
) -> Forest {
    use crate::progress::{Stage, report};
    let done = std::sync::atomic::AtomicUsize::new(0);
    report(progress, Stage::Trees, 0, params.n_trees);
    let trees: Vec<Forest> = (0..params.n_trees)
        .into_par_iter()
        .map(|t| {
            let tree = build_tree(table, n, params, Rng::derive(params.seed, t as u64));
            let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            report(progress, Stage::Trees, d, params.n_trees);
            tree
        })
        .collect();
    let mut f = Forest {
        leaf_offsets: vec![0],
        ..Forest::default()
    };
    for t in trees {
        let node_base = f.nodes.len() as u32;
        let leaf_base = (f.leaf_offsets.len() - 1) as u32;
        let id_base = f.leaf_ids.len() as u32;
        let rebase = |c: u32| {
            if c & LEAF_FLAG != 0 {
                c + leaf_base
            } else {
                c + node_base
            }
        };
        f.roots.push(rebase(t.roots[0]));
        f.nodes.extend(t.nodes.iter().map(|n| Node {
            left: rebase(n.left),
            right: rebase(n.right),
            ..*n
        }));
        f.leaf_offsets
            .extend(t.leaf_offsets[1..].iter().map(|o| o + id_base));
        f.leaf_ids.extend_from_slice(&t.leaf_ids);
    }
    f
}

/// A range of `ids` still to split: (start, end, parent node and whether this is its right child).
type Pending = (usize, usize, Option<(usize, bool)>);

/// One tree, its nodes in pre-order (a child's index is always above its parent's).
fn build_tree(table: &[f32], n: usize, params: &BuildParams, mut rng: Rng) -> Forest {
    let pool_size = params.pool_size;
    let mut ids: Vec<u32> = (0..n as u32).collect();
    let mut f = Forest {
        leaf_offsets: vec![0],
        ..Forest::default()
    };
    // An explicit stack, since mean splits on skewed data can make trees far deeper
    // than a thread's call stack allows.
    let mut stack: Vec<Pending> = vec![(0, n, None)];
    let mut cand = vec![0usize; params.candidates.min(pool_size)];
    let mut vals: Vec<f32> = Vec::new();
    let mut right: Vec<u32> = Vec::new();
    while let Some((s, e, parent)) = stack.pop() {
        let child = if e - s <= params.leaf_size {
            f.leaf_ids.extend_from_slice(&ids[s..e]);
            f.leaf_offsets.push(f.leaf_ids.len() as u32);
            LEAF_FLAG | (f.leaf_offsets.len() - 2) as u32
        } else {
            let items = &mut ids[s..e];
            for c in cand.iter_mut() {
                *c = rng.below(pool_size);
            }
            let (proj, offset) = choose_split(table, n, items, &cand, params.split, &mut vals);
            // Stable partition (projections below the offset go left), so both halves
            // keep ascending ids and later column reads run front to back.
            let col = &table[proj * n..(proj + 1) * n];
            right.clear();
            let mut mid = 0;
            for i in 0..items.len() {
                let id = items[i];
                if col[id as usize] < offset {
                    items[mid] = id;
                    mid += 1;
                } else {
                    right.push(id);
                }
            }
            items[mid..].copy_from_slice(&right);
            if mid == 0 || mid == items.len() {
                // All points project alike (duplicates): split them arbitrarily in halves.
                mid = items.len() / 2;
            }
            let me = f.nodes.len();
            f.nodes.push(Node {
                proj: proj as u32,
                offset,
                left: 0,
                right: 0,
            });
            stack.push((s + mid, e, Some((me, true))));
            stack.push((s, s + mid, Some((me, false))));
            me as u32
        };
        match parent {
            None => f.roots.push(child),
            Some((p, false)) => f.nodes[p].left = child,
            Some((p, true)) => f.nodes[p].right = child,
        }
    }
    f
}

/// Among the candidate pool vectors, the one with the largest variance of the items'
/// projections, and the split offset along it.
fn choose_split(
    table: &[f32],
    n: usize,
    items: &[u32],
    cand: &[usize],
    rule: SplitRule,
    vals: &mut Vec<f32>,
) -> (usize, f32) {
    let mut best = (cand[0], f64::NEG_INFINITY, 0f64);
    for &c in cand {
        let col = &table[c * n..(c + 1) * n];
        let (mut sum, mut sq) = (0f64, 0f64);
        for &i in items {
            let v = col[i as usize] as f64;
            sum += v;
            sq += v * v;
        }
        let mean = sum / items.len() as f64;
        let var = sq / items.len() as f64 - mean * mean;
        if var > best.1 {
            best = (c, var, mean);
        }
    }
    let (proj, _, mean) = best;
    let offset = match rule {
        SplitRule::Mean => mean as f32,
        SplitRule::Median => {
            let col = &table[proj * n..(proj + 1) * n];
            vals.clear();
            vals.extend(items.iter().map(|&i| col[i as usize]));
            let mid = vals.len() / 2;
            let (_, m, _) = vals.select_nth_unstable_by(mid, f32::total_cmp);
            *m
        }
    };
    (proj, offset)
}
