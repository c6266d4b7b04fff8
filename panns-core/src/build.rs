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
    /// How the index stores its vectors: [`Dtype::F32`] (default) or [`Dtype::I8`]
    /// (8-bit codes, a quarter of the bytes; the forest is built from the `f32`
    /// vectors, which are then encoded and dropped).
    pub dtype: crate::Dtype,
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
            dtype: crate::Dtype::F32,
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

impl Forest {
    /// The arrays borrowed.
    pub(crate) fn view(&self) -> ForestRef<'_> {
        ForestRef {
            nodes: &self.nodes,
            roots: &self.roots,
            leaf_offsets: &self.leaf_offsets,
            leaf_ids: &self.leaf_ids,
        }
    }
}

/// Borrowed forest arrays (of an owned or a mapped index).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ForestRef<'a> {
    pub(crate) nodes: &'a [Node],
    pub(crate) roots: &'a [u32],
    pub(crate) leaf_offsets: &'a [u32],
    pub(crate) leaf_ids: &'a [u32],
}

/// Refuses a build whose working memory cannot be allocated, before any work: the
/// projection table of `n x pool_size` floats when the build keeps one
/// ([`keeps_table`]), plus one id per item per tree (the leaves) and per-thread node
/// scratch of `candidates` floats per item.
pub(crate) fn check_memory(n: usize, stride: usize, params: &BuildParams) -> Result<()> {
    let table = if keeps_table(stride, params) {
        n.checked_mul(params.pool_size)
            .and_then(|x| x.checked_mul(4))
    } else {
        Some(0)
    };
    let per_tree = params
        .n_trees
        .checked_add(params.candidates.saturating_add(1));
    let leaves = per_tree
        .and_then(|t| n.checked_mul(t))
        .and_then(|x| x.checked_mul(4));
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
        write_unit(row, &v);
    }
    pool
}

/// Writes `v / |v|` into `out` (the norm in f64, at least the smallest positive f64).
fn write_unit(out: &mut [f32], v: &[f64]) {
    let n = v
        .iter()
        .map(|x| x * x)
        .sum::<f64>()
        .sqrt()
        .max(f64::MIN_POSITIVE);
    for (o, x) in out.iter_mut().zip(v) {
        *o = (x / n) as f32;
    }
}

/// The pool of a build over `n` rows of `stride` floats (`dim` used): `pool_size` unit
/// vectors, each the direction from one random item to another, so that the pool leans
/// the way the data spread (as Annoy's split between two sampled points does; nodes
/// still pick the widest of a few pool vectors). Compared with Gaussian directions,
/// trees alone reached the same recall@10 with about half the candidates on sift,
/// minilm and patches (`docs/benchmarks.md`). A pair of identical items is drawn again
/// (up to 8 times), then the row falls back to a random Gaussian direction, as it does
/// for a single item. Computed in f64 from the stored rows: the same pool on every CPU.
pub fn data_pool(
    vectors: &[f32],
    n: usize,
    dim: usize,
    stride: usize,
    pool_size: usize,
    seed: u64,
) -> Vec<f32> {
    let mut rng = Rng::derive(seed, u64::MAX);
    let mut pool = vec![0f32; pool_size * stride];
    let row = |i: usize| &vectors[i * stride..i * stride + dim];
    let mut v = vec![0f64; dim];
    for out in pool.chunks_exact_mut(stride) {
        let mut found = false;
        for _ in 0..8 {
            if n < 2 {
                break;
            }
            let (a, b) = (rng.below(n), rng.below(n));
            for ((o, &x), &y) in v.iter_mut().zip(row(a)).zip(row(b)) {
                *o = x as f64 - y as f64;
            }
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm > 0.0 && norm.is_finite() {
                found = true;
                break;
            }
        }
        if !found {
            v.iter_mut().for_each(|o| *o = rng.gaussian());
        }
        write_unit(out, &v);
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
    // A group of pool vectors per task, each item's row read once for all of them
    // (the group, about 128 KiB, stays in cache): the vectors are streamed
    // pool_size / group times instead of pool_size times (long vectors are memory
    // bound here). The same kernel on the same operands, so the same table for any
    // group size.
    let group = (131_072 / (stride * 4).max(1)).clamp(8, 32);
    let n1 = n.max(1);
    table
        .par_chunks_mut(n1 * group)
        .zip(pool.par_chunks(stride * group))
        .for_each(|(cols, ps)| {
            let rows: Vec<&[f32]> = ps.chunks_exact(stride).collect();
            for (i, x) in vectors.chunks_exact(stride).enumerate() {
                // Four pool vectors per kernel call (bit-identical to one at a time).
                let mut quads = rows.chunks_exact(4);
                for (q, quad) in quads.by_ref().enumerate() {
                    let d = kernels::dot_x4(x, [quad[0], quad[1], quad[2], quad[3]]);
                    for (k, d) in d.into_iter().enumerate() {
                        cols[(4 * q + k) * n1 + i] = d;
                    }
                }
                let done = rows.len() - quads.remainder().len();
                for (k, p) in quads.remainder().iter().enumerate() {
                    cols[(done + k) * n1 + i] = kernels::dot(x, p);
                }
            }
        });
    Ok(table)
}

/// Where the tree builder gets the items' projections on the pool vectors. Both give
/// the same numbers (the same dot-product kernel, the same operands), so the same
/// forest: the table trades `n x pool_size` floats of memory for computing each
/// projection once instead of at every tree level.
#[derive(Clone, Copy)]
pub(crate) enum Projections<'a> {
    /// The table of [`project_all`]: `table[p * n + i]` is item `i` on pool vector `p`.
    Table {
        /// The column-major table.
        table: &'a [f32],
        /// Items (the column length).
        n: usize,
    },
    /// Computed when a node needs them, from the padded rows and the padded pool.
    OnTheFly {
        /// Row-major, `stride` floats per item.
        vectors: &'a [f32],
        /// Row-major, `stride` floats per pool vector.
        pool: &'a [f32],
        /// Floats per row.
        stride: usize,
    },
}

impl Projections<'_> {
    /// Writes the projections of `items` on each pool vector of `cand` to `out`, one
    /// run of `items.len()` values per candidate.
    fn gather(&self, cand: &[usize], items: &[u32], out: &mut Vec<f32>) {
        let m = items.len();
        out.clear();
        out.resize(cand.len() * m, 0.0);
        match *self {
            Projections::Table { table, n } => {
                for (run, &p) in out.chunks_exact_mut(m).zip(cand) {
                    let col = &table[p * n..(p + 1) * n];
                    for (o, &i) in run.iter_mut().zip(items) {
                        *o = col[i as usize];
                    }
                }
            }
            Projections::OnTheFly {
                vectors,
                pool,
                stride,
            } => {
                // Item by item, so each row is read from memory once for all candidates.
                for (j, &i) in items.iter().enumerate() {
                    let at = i as usize * stride;
                    let row = &vectors[at..at + stride];
                    for (k, &p) in cand.iter().enumerate() {
                        out[k * m + j] = kernels::dot(row, &pool[p * stride..(p + 1) * stride]);
                    }
                }
            }
        }
    }
}

/// Forests of at most this many trees compute projections per level instead of
/// keeping a table larger than the vectors.
pub(crate) const FEW_TREES: usize = 8;

/// Whether a build keeps the projection table: when it is no larger than the vectors
/// (`pool_size <= stride`), or when the forest has more than [`FEW_TREES`] trees (the
/// table's one pass then costs far less arithmetic than projecting at every level of
/// every tree). A small forest (as under a neighbour graph) over low-dimensional
/// vectors projects per level instead: the same forest without `n x pool_size` floats
/// of table (at 128 dimensions and the default pool, twice the vectors' memory).
pub(crate) fn keeps_table(stride: usize, params: &BuildParams) -> bool {
    params.pool_size <= stride || params.n_trees > FEW_TREES
}

/// Builds `params.n_trees` trees over the `n` items whose projections are in `table`.
pub fn build_forest(table: &[f32], n: usize, params: &BuildParams) -> Forest {
    build_forest_with(
        Projections::Table { table, n },
        n,
        params,
        &crate::progress::silent,
    )
}

/// [`build_forest`] from `proj`, reporting each finished tree to `progress`.
///
/// Memory: each tree permutes its own `n`-id slice of the final `leaf_ids` (its leaves
/// are consecutive runs of that permutation, left to right), and the node scratch
/// (`candidates` projections per item) is allocated once per concurrent tree and
/// reused, not once per tree: freed per-tree buffers of that size would stay in the
/// allocator's per-thread heaps and add to the peak of the stages that follow.
pub(crate) fn build_forest_with(
    proj: Projections<'_>,
    n: usize,
    params: &BuildParams,
    progress: crate::ProgressFn<'_>,
) -> Forest {
    use crate::progress::{Stage, report};
    use std::sync::Mutex;
    let done = std::sync::atomic::AtomicUsize::new(0);
    report(progress, Stage::Trees, 0, params.n_trees);
    let mut leaf_ids = vec![0u32; params.n_trees * n];
    let spare: Mutex<Vec<TreeScratch>> = Mutex::new(Vec::new());
    let trees: Vec<Forest> = leaf_ids
        .par_chunks_mut(n.max(1))
        .enumerate()
        .map(|(t, ids)| {
            let taken = spare.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let mut scratch = taken.unwrap_or_else(|| TreeScratch::new(n, params));
            let tree = build_tree(
                proj,
                ids,
                params,
                Rng::derive(params.seed, t as u64),
                &mut scratch,
            );
            spare
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(scratch);
            let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            report(progress, Stage::Trees, d, params.n_trees);
            tree
        })
        .collect();
    drop(spare);
    let total = |f: fn(&Forest) -> usize| trees.iter().map(f).sum::<usize>();
    let mut f = Forest {
        nodes: Vec::with_capacity(total(|t| t.nodes.len())),
        roots: Vec::with_capacity(trees.len()),
        leaf_offsets: Vec::with_capacity(1 + total(|t| t.leaf_offsets.len() - 1)),
        leaf_ids,
    };
    f.leaf_offsets.push(0);
    for (t, tree) in trees.into_iter().enumerate() {
        let node_base = f.nodes.len() as u32;
        let leaf_base = (f.leaf_offsets.len() - 1) as u32;
        let id_base = (t * n) as u32;
        let rebase = |c: u32| {
            if c & LEAF_FLAG != 0 {
                c + leaf_base
            } else {
                c + node_base
            }
        };
        f.roots.push(rebase(tree.roots[0]));
        f.nodes.extend(tree.nodes.iter().map(|n| Node {
            left: rebase(n.left),
            right: rebase(n.right),
            ..*n
        }));
        f.leaf_offsets
            .extend(tree.leaf_offsets[1..].iter().map(|o| o + id_base));
    }
    f
}

/// A range of `ids` still to split: (start, end, parent node and whether this is its right child).
type Pending = (usize, usize, Option<(usize, bool)>);

/// Node scratch of one tree build, reused by the next tree built on the same worker.
struct TreeScratch {
    /// The node's items projected on each candidate, candidate after candidate.
    vals: Vec<f32>,
    /// A copy of the chosen projections (median split).
    col: Vec<f32>,
    /// The ids going right (stable partition).
    right: Vec<u32>,
}

impl TreeScratch {
    /// Scratch sized for the root node of `n` items (no growth later).
    fn new(n: usize, params: &BuildParams) -> Self {
        let cand = params.candidates.min(params.pool_size);
        TreeScratch {
            vals: Vec::with_capacity(cand * n),
            col: Vec::new(),
            right: Vec::with_capacity(n),
        }
    }
}

/// One tree over the items of `ids` (which must hold `0..n` in order on entry, and on
/// return holds the tree's leaves one after another, left to right: the tree's
/// `leaf_ids`), its nodes in pre-order (a child's index is always above its parent's).
/// The returned forest's `leaf_ids` is empty; its `leaf_offsets` index into `ids`.
fn build_tree(
    proj: Projections<'_>,
    ids: &mut [u32],
    params: &BuildParams,
    mut rng: Rng,
    scratch: &mut TreeScratch,
) -> Forest {
    let n = ids.len();
    let pool_size = params.pool_size;
    for (i, id) in ids.iter_mut().enumerate() {
        *id = i as u32;
    }
    let mut f = Forest {
        leaf_offsets: vec![0],
        ..Forest::default()
    };
    // An explicit stack, since mean splits on skewed data can make trees far deeper
    // than a thread's call stack allows.
    let mut stack: Vec<Pending> = vec![(0, n, None)];
    let mut cand = vec![0usize; params.candidates.min(pool_size)];
    let TreeScratch { vals, col, right } = scratch;
    while let Some((s, e, parent)) = stack.pop() {
        let child = if e - s <= params.leaf_size {
            // Leaves come in left-to-right order, so this leaf's ids are the next run.
            debug_assert_eq!(*f.leaf_offsets.last().unwrap_or(&0) as usize, s);
            f.leaf_offsets.push(e as u32);
            LEAF_FLAG | (f.leaf_offsets.len() - 2) as u32
        } else {
            let items = &mut ids[s..e];
            for c in cand.iter_mut() {
                *c = rng.below(pool_size);
            }
            proj.gather(&cand, items, vals);
            let (best, offset) = choose_split(vals, items.len(), params.split, col);
            let chosen = cand[best];
            let col = &vals[best * items.len()..(best + 1) * items.len()];
            // Stable partition (projections below the offset go left), so both halves
            // keep ascending ids and later column reads run front to back.
            right.clear();
            let mut mid = 0;
            for i in 0..items.len() {
                let id = items[i];
                if col[i] < offset {
                    items[mid] = id;
                    mid += 1;
                } else {
                    right.push(id);
                }
            }
            items[mid..].copy_from_slice(right);
            if mid == 0 || mid == items.len() {
                // All points project alike (duplicates): split them arbitrarily in halves.
                mid = items.len() / 2;
            }
            let me = f.nodes.len();
            f.nodes.push(Node {
                proj: chosen as u32,
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

/// Among the candidates, whose projections of the node's `m` items are the
/// consecutive runs of `vals`, the one with the largest variance (the first on ties):
/// its position, and the split offset along it.
fn choose_split(vals: &[f32], m: usize, rule: SplitRule, scratch: &mut Vec<f32>) -> (usize, f32) {
    let mut best = (0, f64::NEG_INFINITY, 0f64);
    for (k, col) in vals.chunks_exact(m).enumerate() {
        let (mut sum, mut sq) = (0f64, 0f64);
        for &v in col {
            let v = v as f64;
            sum += v;
            sq += v * v;
        }
        let mean = sum / m as f64;
        let var = sq / m as f64 - mean * mean;
        if var > best.1 {
            best = (k, var, mean);
        }
    }
    let (k, _, mean) = best;
    let offset = match rule {
        SplitRule::Mean => mean as f32,
        SplitRule::Median => {
            scratch.clear();
            scratch.extend_from_slice(&vals[k * m..(k + 1) * m]);
            let mid = m / 2;
            let (_, x, _) = scratch.select_nth_unstable_by(mid, f32::total_cmp);
            *x
        }
    };
    (k, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_points_from_item_to_item() {
        use crate::layout::padded_dim;
        let (dim, stride) = (3, padded_dim(3));
        let pts = [[0f32, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0]];
        let mut rows = vec![0f32; 3 * stride];
        for (r, p) in rows.chunks_exact_mut(stride).zip(&pts) {
            r[..dim].copy_from_slice(p);
        }
        let pool = data_pool(&rows, 3, dim, stride, 64, 9);
        assert_eq!(pool, data_pool(&rows, 3, dim, stride, 64, 9));
        let unit = |v: [f32; 3]| {
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.map(|x| x / n)
        };
        let mut dirs = Vec::new();
        for a in &pts {
            for b in &pts {
                if a != b {
                    dirs.push(unit([a[0] - b[0], a[1] - b[1], a[2] - b[2]]));
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        for row in pool.chunks_exact(stride) {
            assert!(row[dim..].iter().all(|&x| x == 0.0), "padding: {row:?}");
            let i = dirs
                .iter()
                .position(|d| d.iter().zip(row).all(|(x, y)| (x - y).abs() < 1e-6))
                .unwrap_or_else(|| panic!("{row:?} is no direction between two items"));
            seen.insert(i);
        }
        assert_eq!(seen.len(), 6, "64 draws should meet all six directions");
        // Identical items, or a single one: random unit directions, never NaN.
        let same: Vec<f32> = (0..4)
            .flat_map(|_| rows[stride..2 * stride].to_vec())
            .collect();
        for n in [4, 1] {
            let pool = data_pool(&same, n, dim, stride, 16, 9);
            for row in pool.chunks_exact(stride) {
                let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
                assert!((norm - 1.0).abs() < 1e-5, "n = {n}: {row:?}");
            }
        }
    }

    /// The table is kept exactly when it is no larger than the vectors or the forest
    /// has more than `FEW_TREES` trees.
    #[test]
    fn the_table_is_kept_when_small_or_worth_it() {
        let p = |pool_size, n_trees| BuildParams {
            pool_size,
            n_trees,
            ..Default::default()
        };
        assert!(keeps_table(256, &p(256, 1)));
        assert!(keeps_table(512, &p(256, 1)));
        assert!(!keeps_table(128, &p(256, FEW_TREES)));
        assert!(keeps_table(128, &p(256, FEW_TREES + 1)));
        assert!(!keeps_table(16, &p(17, 1)));
    }

    /// The table holds exactly `dot(item, pool vector)` at `p * n + i`, also when the
    /// pool size is not a multiple of the group of pool vectors projected together.
    #[test]
    fn the_table_is_every_items_dot_product_with_every_pool_vector() {
        let (n, dim, stride, pool_size) = (37, 5, 16, 13);
        let mut rng = Rng::new(4);
        let mut vectors = vec![0f32; n * stride];
        for row in vectors.chunks_exact_mut(stride) {
            for x in &mut row[..dim] {
                *x = rng.gaussian() as f32;
            }
        }
        let pool = gaussian_pool(dim, stride, pool_size, 7);
        let table = project_all(&vectors, &pool, stride).unwrap();
        assert_eq!(table.len(), n * pool_size);
        for (p, q) in pool.chunks_exact(stride).enumerate() {
            for (i, x) in vectors.chunks_exact(stride).enumerate() {
                assert_eq!(table[p * n + i].to_bits(), kernels::dot(x, q).to_bits());
            }
        }
    }

    /// Every item descends to the leaf that holds it by the nodes' documented rule
    /// (projection below the offset: left; at or above: right), for both split rules;
    /// the median rule puts an item exactly at the offset, which must go right.
    #[test]
    fn every_item_descends_to_its_own_leaf() {
        let (n, dim, stride) = (500, 6, 16);
        let mut rng = Rng::new(9);
        let mut vectors = vec![0f32; n * stride];
        for row in vectors.chunks_exact_mut(stride) {
            for x in &mut row[..dim] {
                *x = rng.gaussian() as f32;
            }
        }
        for split in [SplitRule::Mean, SplitRule::Median] {
            let params = BuildParams {
                n_trees: 2,
                pool_size: 16,
                leaf_size: 4,
                split,
                ..Default::default()
            };
            let pool = gaussian_pool(dim, stride, params.pool_size, params.seed);
            let table = project_all(&vectors, &pool, stride).unwrap();
            let f = build_forest(&table, n, &params);
            for &root in &f.roots {
                for id in 0..n {
                    let mut c = root;
                    while c & LEAF_FLAG == 0 {
                        let node = &f.nodes[c as usize];
                        let x = table[node.proj as usize * n + id];
                        c = if x < node.offset {
                            node.left
                        } else {
                            node.right
                        };
                    }
                    let l = (c & !LEAF_FLAG) as usize;
                    let leaf =
                        &f.leaf_ids[f.leaf_offsets[l] as usize..f.leaf_offsets[l + 1] as usize];
                    assert!(
                        leaf.contains(&(id as u32)),
                        "{split:?}: item {id} not in its leaf"
                    );
                }
            }
        }
    }

    /// The table and on-the-fly projections build the same forest, for both split rules.
    #[test]
    fn table_and_on_the_fly_projections_build_the_same_forest() {
        let (n, dim, stride) = (700, 5, 16);
        let mut rng = Rng::new(3);
        let mut vectors = vec![0f32; n * stride];
        for row in vectors.chunks_exact_mut(stride) {
            for x in &mut row[..dim] {
                *x = rng.gaussian() as f32;
            }
        }
        for split in [SplitRule::Mean, SplitRule::Median] {
            let params = BuildParams {
                n_trees: FEW_TREES,
                pool_size: 40,
                leaf_size: 5,
                split,
                ..Default::default()
            };
            assert!(!keeps_table(stride, &params));
            let pool = gaussian_pool(dim, stride, params.pool_size, params.seed);
            let table = project_all(&vectors, &pool, stride).unwrap();
            let a = build_forest(&table, n, &params);
            let fly = Projections::OnTheFly {
                vectors: &vectors,
                pool: &pool,
                stride,
            };
            let b = build_forest_with(fly, n, &params, &crate::progress::silent);
            assert!(a.nodes.len() > 50, "{}", a.nodes.len());
            assert_eq!(a.nodes, b.nodes, "{split:?}");
            assert_eq!(a.roots, b.roots);
            assert_eq!(a.leaf_offsets, b.leaf_offsets);
            assert_eq!(a.leaf_ids, b.leaf_ids);
        }
    }
}
