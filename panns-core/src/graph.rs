//! The optional neighbour-graph layer.
//!
//! Trees find a good neighbourhood quickly but need many candidates to pin down the
//! last few true neighbours. A k-nearest-neighbour graph fixes that: the search seeds
//! a beam with the forest's best candidates and walks the graph greedily (as HNSW's
//! bottom layer does).
//!
//! Build: every point starts with its leaf-mates in the first few trees, then rounds
//! of NN-descent ("a neighbour of my neighbour is likely my neighbour") refine the
//! lists. Each round reads only the previous round's lists and every point's new list
//! is computed on its own, so rounds run in parallel and the result is identical for
//! any thread count. Finally each list is diversified (an edge u→v is dropped when a
//! kept neighbour w is closer to v than u is) and reverse edges are added, which keeps
//! the graph navigable with few edges.

use crate::build::ForestRef;
use crate::layout::LEAF_FLAG;
use crate::quant::{self, Codes};
use crate::{Error, Metric, Result};
use rayon::prelude::*;

pub(crate) mod order;

/// Parameters of [`crate::Index::build_graph`].
#[derive(Clone, Debug, PartialEq)]
pub struct GraphParams {
    /// Neighbours kept per item after pruning (the stored degree).
    pub degree: usize,
    /// Length of the neighbour lists refined by NN-descent (at least `degree`).
    pub build_k: usize,
    /// Most NN-descent rounds (stops earlier once lists barely change).
    pub max_rounds: usize,
    /// Trees whose leaves seed the lists.
    pub seed_trees: usize,
    /// Worker threads (0: all cores). Never changes the result.
    pub threads: usize,
    /// Score NN-descent's candidates on 8-bit codes of the vectors (the index's own,
    /// or made for the build: one byte per component while it runs), then rescore the
    /// lists exactly before pruning. Faster (a quarter of the bytes fetched per
    /// candidate), at the cost of that memory for an f32 index. Default true.
    pub quantized: bool,
}

impl Default for GraphParams {
    fn default() -> Self {
        GraphParams {
            degree: 24,
            build_k: 32,
            max_rounds: 6,
            seed_trees: 6,
            threads: 0,
            quantized: true,
        }
    }
}

impl GraphParams {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<()> {
        let bad = |name, value: usize, reason| Err(Error::parameter(name, value, reason));
        if self.degree == 0 || self.degree > crate::MAX_GRAPH_DEGREE {
            return bad("degree", self.degree, "must be between 1 and 256");
        }
        if self.build_k < self.degree || self.build_k > 1024 {
            return bad("build_k", self.build_k, "must be between degree and 1024");
        }
        if self.seed_trees == 0 {
            return bad("seed_trees", self.seed_trees, "must be at least 1");
        }
        Ok(())
    }
}

/// Vectors and metric, for distances between stored items.
#[derive(Clone, Copy)]
struct Space<'a> {
    vectors: &'a [f32],
    stride: usize,
    metric: Metric,
    /// When set, [`Space::entries_below`] scores the codes (from the f32 row of `u`).
    codes: Option<Codes<'a>>,
    /// When set, ids are positions of [`order::Order`] (`perm`), and the codes are in
    /// that order: position `a`'s f32 row is item `perm[a]`'s.
    order: Option<&'a [u32]>,
}

/// The codes a graph build scores its candidates on: made for the build (owned, so
/// they can be moved into the rounds' order in place) or the index's own.
pub(crate) enum CodesIn<'a> {
    /// Made for this build.
    Owned(quant::OwnedCodes),
    /// The index's own.
    Borrowed(Codes<'a>),
}

/// Appends `(d, v, true)` for each `v` of `ids` with `d = dist(v) < limit`, four at a
/// time (`dist4`), each row prefetched a few ahead (they are scattered in memory).
#[inline(always)]
fn scan_below(
    ids: &[u32],
    limit: f32,
    out: &mut Vec<Entry>,
    prefetch: impl Fn(u32),
    dist4: impl Fn([u32; 4]) -> [f32; 4],
    dist: impl Fn(u32) -> f32,
) {
    const AHEAD: usize = 8;
    for &v in ids.iter().take(AHEAD) {
        prefetch(v);
    }
    let quads = ids.chunks_exact(4);
    let tail = quads.remainder();
    for (c, quad) in quads.enumerate() {
        let ahead = ids.get(c * 4 + AHEAD..(c * 4 + AHEAD + 4).min(ids.len()));
        for &next in ahead.unwrap_or(&[]) {
            prefetch(next);
        }
        let quad = [quad[0], quad[1], quad[2], quad[3]];
        for (d, v) in dist4(quad).into_iter().zip(quad) {
            if d < limit {
                out.push(Entry::new(d, v, true));
            }
        }
    }
    for &v in tail {
        let d = dist(v);
        if d < limit {
            out.push(Entry::new(d, v, true));
        }
    }
}

impl Space<'_> {
    #[inline]
    fn row(&self, a: u32) -> &[f32] {
        let a = self.order.map_or(a, |p| p[a as usize]) as usize * self.stride;
        &self.vectors[a..a + self.stride]
    }

    /// Distances from `a` to four items (each bit-identical to `Metric::distance` of
    /// the two rows either way round: the kernels are symmetric).
    #[inline]
    fn dist4(&self, a: u32, b: [u32; 4]) -> [f32; 4] {
        self.metric.distance4(self.row(a), b.map(|v| self.row(v)))
    }

    /// Entries `(d(u, v), v, true)` for each `v` of `ids` nearer than `limit`: exact,
    /// or on the codes when the space has them (`w`: the prepared query's scratch).
    /// Four rows at a time go through the four-row kernels (bit-identical to one call
    /// each).
    fn entries_below(
        &self,
        u: u32,
        ids: &[u32],
        limit: f32,
        w: &mut Vec<f32>,
        out: &mut Vec<Entry>,
    ) {
        use crate::kernels::prefetch;
        let (q, m, stride) = (self.row(u), self.metric, self.stride);
        match &self.codes {
            None => scan_below(
                ids,
                limit,
                out,
                |v| prefetch(self.row(v)),
                |quad| m.distance4(q, quad.map(|v| self.row(v))),
                |v| m.distance(q, self.row(v)),
            ),
            Some(c) => {
                let base = quant::prepare_query(c, m, q, w);
                let w = &w[..];
                let at = |v: u32| &c.codes[v as usize * stride..(v as usize + 1) * stride];
                scan_below(
                    ids,
                    limit,
                    out,
                    |v| prefetch(at(v)),
                    |quad| quant::distances4(c, m, stride, w, base, quad),
                    |v| quant::distance(c, m, stride, w, base, v as usize),
                )
            }
        }
    }
}

/// A neighbour list entry: the distance, and the id with NN-descent's "new since the
/// last round" flag in its top bit (ids are below 2^31). Eight bytes, not the twelve of
/// a `(f32, u32, bool)`: the lists are most of a graph build's memory.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Entry {
    d: f32,
    tagged: u32,
}

/// The "new" flag of [`Entry::tagged`].
const NEW: u32 = 1 << 31;

impl Entry {
    #[inline]
    fn new(d: f32, id: u32, new: bool) -> Entry {
        debug_assert!(id < NEW);
        Entry {
            d,
            tagged: id | if new { NEW } else { 0 },
        }
    }

    #[inline]
    fn id(self) -> u32 {
        self.tagged & !NEW
    }

    #[inline]
    fn is_new(self) -> bool {
        self.tagged & NEW != 0
    }
}

fn by_dist(a: &Entry, b: &Entry) -> std::cmp::Ordering {
    a.d.total_cmp(&b.d).then(a.id().cmp(&b.id()))
}

/// One short list per point, all in one flat array (no allocation per point): point
/// `u`'s items are `items[u * stride..u * stride + len[u]]`.
#[derive(Clone, Debug, PartialEq)]
struct Flat<T> {
    stride: usize,
    items: Vec<T>,
    len: Vec<u32>,
}

impl<T: Copy + Default + Send + Sync> Flat<T> {
    /// `n` lists of at most `stride` items, each filled by `fill(state, u, out)` (which
    /// returns a count summed over all points), in parallel; `init` makes the
    /// per-worker state. The result does not depend on the number of threads.
    fn fill<S>(
        n: usize,
        stride: usize,
        init: impl Fn() -> S + Sync + Send,
        fill: impl Fn(&mut S, usize, &mut [T]) -> (usize, usize) + Sync + Send,
    ) -> (Self, usize) {
        let mut items = vec![T::default(); n * stride];
        let mut len = vec![0u32; n];
        let total = items
            .par_chunks_mut(stride.max(1))
            .zip(len.par_iter_mut())
            .enumerate()
            .map_init(init, |st, (u, (row, l))| {
                let (m, count) = fill(st, u, row);
                *l = m as u32;
                count
            })
            .sum();
        (Flat { stride, items, len }, total)
    }

    #[inline]
    fn row(&self, u: usize) -> &[T] {
        let s = u * self.stride;
        &self.items[s..s + self.len[u] as usize]
    }

    #[cfg(test)]
    fn from_rows(rows: &[Vec<T>], stride: usize) -> Self {
        Self::fill(
            rows.len(),
            stride,
            || (),
            |_, u, out| {
                out[..rows[u].len()].copy_from_slice(&rows[u]);
                (rows[u].len(), 0)
            },
        )
        .0
    }
}

/// NN-descent's lists: up to `k` entries per point, nearest first.
type Lists = Flat<Entry>;

/// Builds the graph: `n * degree` ids, rows nearest first, padded with `u32::MAX`.
/// Refuses a graph build whose working memory cannot be had, before any work: one
/// generation of `n x build_k` list entries and a snapshot of one block's ids, reverse
/// samples, the seed trees' leaf map, per-worker visited stamps, the graph and its
/// reverse edges (the lists are pruned in place).
/// The allocator is asked once for the total (and it is given back), so a failure is
/// an error, not an abort.
pub(crate) fn check_memory(n: usize, p: &GraphParams) -> Result<()> {
    let per_item = p.build_k * (std::mem::size_of::<Entry>() + 4usize.div_ceil(ROUND_BLOCKS))
        + SAMPLE * 8 / ROUND_BLOCKS
        + p.seed_trees * 4
        + p.degree * (4 + 8)
        + rayon::current_num_threads() * 4;
    let bytes = n.checked_mul(per_item).ok_or(Error::OutOfMemory {
        what: "neighbour graph build",
        bytes: usize::MAX,
    })?;
    let mut probe: Vec<u8> = Vec::new();
    probe
        .try_reserve_exact(bytes)
        .map_err(|_| Error::OutOfMemory {
            what: "neighbour graph build",
            bytes,
        })
}

impl CodesIn<'_> {
    fn view(&self) -> Codes<'_> {
        match self {
            CodesIn::Owned(c) => c.parts(),
            CodesIn::Borrowed(c) => *c,
        }
    }
}

/// The graph of `n` items (rows of `stride` floats in `vectors`), seeded from the
/// forest; every stage runs over positions in the first tree's leaf order ([`order`])
/// and the graph is mapped back to item ids. With `codes` (the same items as codes),
/// NN-descent scores candidates on them and the lists are rescored exactly before
/// pruning.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build_graph(
    vectors: &[f32],
    codes: Option<CodesIn<'_>>,
    stride: usize,
    metric: Metric,
    forest: &ForestRef<'_>,
    n: usize,
    p: &GraphParams,
    progress: crate::ProgressFn<'_>,
) -> Vec<u32> {
    use crate::progress::{Stage, report};
    let exact = Space {
        vectors,
        stride,
        metric,
        codes: None,
        order: None,
    };
    let fits = codes.as_ref().is_some_and(|c| {
        codes_fit(
            &Space {
                codes: Some(c.view()),
                ..exact
            },
            forest,
        )
    });
    // The build runs in the first tree's leaf order, on the codes moved (or copied)
    // into it; in id order when that order cannot be had.
    // (An index built here already stores its rows in that order: nothing to move.)
    let mut order = order::Order::of_first_tree(forest, n).filter(|o| !o.is_identity());
    let held = match (codes.filter(|_| fits), &order) {
        (Some(c), Some(o)) => match o.arrange(c, stride) {
            Ok(moved) => Some(CodesIn::Owned(moved)),
            Err(c) => {
                order = None;
                Some(c)
            }
        },
        (c, _) => c,
    };
    let exact = Space {
        order: order.as_ref().map(|o| &o.perm[..]),
        ..exact
    };
    let sp = Space {
        codes: held.as_ref().map(CodesIn::view),
        ..exact
    };
    let k = p.build_k.min(n.saturating_sub(1)).max(1);
    report(progress, Stage::GraphSeeds, 0, 1);
    // One buffer, reserved once, holds the seed trees' leaf map and then each block's
    // snapshot of its lists' tags: freed buffers of these sizes can stay with the
    // allocator and add to the rounds' peak.
    let mut spare: Vec<u32> = Vec::new();
    let block = n.div_ceil(ROUND_BLOCKS).max(1);
    spare.reserve_exact((n * p.seed_trees.min(forest.roots.len())).max(block * k));
    let pos = order.as_ref().map(|o| &o.pos[..]);
    let mut lists = seed_lists(&sp, forest, n, k, p.seed_trees, pos, &mut spare);
    report(progress, Stage::GraphSeeds, 1, 1);
    report(progress, Stage::GraphRounds, 0, p.max_rounds);
    let mut work = RoundWork {
        spare,
        rev: Flat {
            stride: SAMPLE,
            items: Vec::new(),
            len: Vec::new(),
        },
        pool: ScratchPool::default(),
    };
    for round in 0..p.max_rounds {
        let changed = descent_round(&sp, &mut lists, n, k, round as u64, &mut work);
        if converged(changed, n, k) {
            break;
        }
        if round + 1 < p.max_rounds {
            report(progress, Stage::GraphRounds, round + 1, p.max_rounds);
        }
    }
    report(progress, Stage::GraphRounds, p.max_rounds, p.max_rounds);
    drop(work);
    report(progress, Stage::GraphPruning, 0, 1);
    let on_codes = sp.codes.is_some();
    drop(held);
    if on_codes {
        rescore(&exact, &mut lists);
    }
    let mut graph = diversify(&exact, lists, n, p.degree);
    if let Some(o) = &order {
        o.graph_to_items(&mut graph, p.degree);
    }
    report(progress, Stage::GraphPruning, 1, 1);
    graph
}

/// Whether the codes rank near neighbours well enough to build on: over up to
/// [`FIT_LEAVES`] leaves spread over the forest, the median (over leaves) of the largest
/// error of a code distance from a leaf's first item to its leaf-mates is at most a
/// tenth of the median spread of those exact distances. Typical data pass by far (on
/// sift, minilm, patches, digits and Gaussian sets the ratio is 0 to 0.008); values
/// whose range a huge outlier sets (most values then fall on a few codes) do not, and
/// the build scores exact distances instead.
fn codes_fit(sp: &Space, f: &ForestRef<'_>) -> bool {
    if sp.codes.is_none() {
        return false;
    }
    let leaves = f.leaf_offsets.len().saturating_sub(1);
    let exact = Space { codes: None, ..*sp };
    let (mut errs, mut spreads) = (Vec::new(), Vec::new());
    let (mut w, mut e, mut a) = (Vec::new(), Vec::new(), Vec::new());
    for l in (0..leaves).step_by(leaves.div_ceil(FIT_LEAVES).max(1)) {
        let ids = &f.leaf_ids[f.leaf_offsets[l] as usize..f.leaf_offsets[l + 1] as usize];
        let Some((&u, mates)) = ids.split_first() else {
            continue;
        };
        if mates.len() < 2 {
            continue;
        }
        e.clear();
        a.clear();
        exact.entries_below(u, mates, f32::INFINITY, &mut w, &mut e);
        sp.entries_below(u, mates, f32::INFINITY, &mut w, &mut a);
        let err = e.iter().zip(&a).map(|(x, y)| (x.d - y.d).abs());
        errs.push(err.fold(0f32, f32::max));
        let (lo, hi) = e
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), x| {
                (lo.min(x.d), hi.max(x.d))
            });
        spreads.push(hi - lo);
    }
    let median = |v: &mut Vec<f32>| {
        v.sort_unstable_by(f32::total_cmp);
        v.get(v.len() / 2).copied()
    };
    match (median(&mut errs), median(&mut spreads)) {
        (Some(err), Some(spread)) => err <= 0.1 * spread,
        _ => true,
    }
}

/// Leaves sampled by [`codes_fit`].
const FIT_LEAVES: usize = 256;

/// Recomputes every list entry's distance exactly (from the f32 rows) and re-sorts
/// each list: lists refined on codes, before pruning.
fn rescore(sp: &Space, lists: &mut Lists) {
    let k = lists.stride.max(1);
    lists
        .items
        .par_chunks_mut(k)
        .zip(lists.len.par_iter())
        .enumerate()
        .for_each(|(u, (row, &l))| {
            let row = &mut row[..l as usize];
            let mut quads = row.chunks_exact_mut(4);
            for quad in quads.by_ref() {
                let ds = sp.dist4(u as u32, std::array::from_fn(|j| quad[j].id()));
                for (e, d) in quad.iter_mut().zip(ds) {
                    e.d = d;
                }
            }
            for e in quads.into_remainder() {
                e.d = sp.metric.distance(sp.row(u as u32), sp.row(e.id()));
            }
            row.sort_unstable_by(by_dist);
        });
}

/// NN-descent has converged when a round changed fewer than 0.2% of the `n * k` list
/// entries (the original paper's delta = 0.002).
fn converged(changed: usize, n: usize, k: usize) -> bool {
    changed.saturating_mul(500) < n.saturating_mul(k)
}

/// Each point's nearest leaf-mates over the first `trees` trees. `spare` is the
/// buffer of the seed trees' leaf map (`trees x n` ids). With `pos` (item `v` is at
/// position `pos[v]`), rows and entries are positions, as `sp`'s ids are.
fn seed_lists(
    sp: &Space,
    f: &ForestRef<'_>,
    n: usize,
    k: usize,
    trees: usize,
    pos: Option<&[u32]>,
    spare: &mut Vec<u32>,
) -> Lists {
    let at = |v: u32| pos.map_or(v, |p| p[v as usize]);
    let trees = trees.min(f.roots.len());
    spare.clear();
    spare.resize(trees * n, 0);
    let leaf_of = &mut spare[..];
    for t in 0..trees {
        let mut stack = vec![f.roots[t]];
        while let Some(c) = stack.pop() {
            if c & LEAF_FLAG != 0 {
                let l = (c & !LEAF_FLAG) as usize;
                for &id in &f.leaf_ids[f.leaf_offsets[l] as usize..f.leaf_offsets[l + 1] as usize] {
                    leaf_of[t * n + at(id) as usize] = l as u32;
                }
            } else {
                let node = &f.nodes[c as usize];
                stack.extend([node.left, node.right]);
            }
        }
    }
    let init = || (Vec::<u32>::new(), Vec::<Entry>::new(), Vec::<f32>::new());
    Flat::fill(n, k, init, |(c, e, w), u, out| {
        c.clear();
        for t in 0..trees {
            let l = leaf_of[t * n + u] as usize;
            let mates = &f.leaf_ids[f.leaf_offsets[l] as usize..f.leaf_offsets[l + 1] as usize];
            c.extend(mates.iter().map(|&v| at(v)));
        }
        c.sort_unstable();
        c.dedup();
        c.retain(|&v| v as usize != u);
        e.clear();
        sp.entries_below(u as u32, c, f32::INFINITY, w, e);
        e.sort_unstable_by(by_dist);
        let m = e.len().min(k);
        out[..m].copy_from_slice(&e[..m]);
        (m, 0)
    })
    .0
}

/// New entries each point expands per round (NN-descent's sampling).
const SAMPLE: usize = 10;

/// Adds to `cands` the ids of a hub's list (`tags`: ids with the "new" flag) not
/// stamped yet: all of them when the hub is new to us, else only its new entries
/// (old×old pairs were compared before).
fn pull(
    tags: impl Iterator<Item = u32>,
    all: bool,
    stamp: &mut [u32],
    ep: u32,
    cands: &mut Vec<u32>,
) {
    for t in tags {
        let w = t & !NEW;
        if (all || t & NEW != 0) && stamp[w as usize] != ep {
            stamp[w as usize] = ep;
            cands.push(w);
        }
    }
}

/// What a round reads of the points' lists: each entry's id with its "new" flag
/// (`Entry::tagged`).
trait TagSource: Sync {
    /// Number of points.
    fn points(&self) -> usize;
    /// The tags of point `u`'s list, in list order.
    fn tags_of(&self, u: usize) -> impl Iterator<Item = u32> + '_;
}

#[cfg(test)]
impl TagSource for Flat<u32> {
    fn points(&self) -> usize {
        self.len.len()
    }
    fn tags_of(&self, u: usize) -> impl Iterator<Item = u32> + '_ {
        self.row(u).iter().copied()
    }
}

impl TagSource for Lists {
    fn points(&self) -> usize {
        self.len.len()
    }
    fn tags_of(&self, u: usize) -> impl Iterator<Item = u32> + '_ {
        self.row(u).iter().map(|e| e.tagged)
    }
}

/// Reverse neighbours of every point (who lists it, as the lister's id with the
/// entry's "new" flag in the top bit), at most `cap` per point, from the lists' tags
/// (`Lists::tags`). A point listed by more than `cap` others keeps a sample
/// chosen by a hash of (point, lister, round): unbiased with respect to ids, different
/// in each round, and independent of thread count. (Keeping the first `cap` listers in
/// id order, as before, meant high-id listers of a popular point were never used.)
///
/// One pass over the lists keeps, per point, the `cap` smallest (hash, tagged lister)
/// pairs in ascending order: `cap` pairs per point of working memory, not one per list
/// entry. The rows hold those pairs; the second of each is the sample.
///
/// Only the points `points` (a block) get their rows, into `out` (row `v - points.start`
/// is point `v`'s), whose buffers are reused.
fn reverse_sample(
    tags: &impl TagSource,
    points: std::ops::Range<usize>,
    cap: usize,
    round: u64,
    out: &mut Flat<(u32, u32)>,
) {
    let salt = crate::rng::mix(round ^ 0x7265_7665_7273_6521);
    // (the top 32 bits of the hash, the lister with the entry's "new" flag in its top
    // bit). Ties of the 32-bit key fall back to the lister's id.
    let m = points.len();
    out.stride = cap;
    out.items.clear();
    out.items.resize(m * cap, (0, 0));
    out.len.clear();
    out.len.resize(m, 0);
    if cap == 0 {
        return;
    }
    // One part of the block per worker, each a pass over the tags: every row sees its
    // listers in the same (ascending) order as one pass would.
    let per = m.div_ceil(rayon::current_num_threads().max(1)).max(1);
    out.items
        .par_chunks_mut(per * cap)
        .zip(out.len.par_chunks_mut(per))
        .enumerate()
        .for_each(|(c, (best, len))| {
            let start = points.start + c * per;
            sample_part(tags, start..start + len.len(), cap, salt, best, len);
        });
}

/// [`reverse_sample`]'s rows of the points `points` into `best` and `len`.
fn sample_part(
    tags: &impl TagSource,
    points: std::ops::Range<usize>,
    cap: usize,
    salt: u64,
    best: &mut [(u32, u32)],
    len: &mut [u32],
) {
    for u in 0..tags.points() {
        for t in tags.tags_of(u) {
            let v = (t & !NEW) as usize;
            if !points.contains(&v) {
                continue;
            }
            let r = v - points.start;
            let key = crate::rng::mix(((v as u64) << 32 | u as u64) ^ salt);
            let e = ((key >> 32) as u32, u as u32 | (t & NEW));
            let row = &mut best[r * cap..(r + 1) * cap];
            let l = len[r] as usize;
            if l < cap {
                len[r] += 1;
            } else if e >= row[cap - 1] {
                continue;
            }
            // Insert e in order, dropping the largest when the row is full.
            let mut i = l.min(cap - 1);
            while i > 0 && row[i - 1] > e {
                row[i] = row[i - 1];
                i -= 1;
            }
            row[i] = e;
        }
    }
}

/// Per-worker scratch of a descent round: visit stamps, their epoch, candidates, the
/// point's own list (flags updated), the candidates that can enter it, and a prepared
/// query's weights (when scoring codes).
type RoundScratch = (Vec<u32>, u32, Vec<u32>, Vec<Entry>, Vec<Entry>, Vec<f32>);

/// The buffers a descent keeps from round to round: the snapshot's (which first held
/// the seed trees' leaf map), the reverse samples' and the per-worker scratch.
struct RoundWork {
    /// The buffer of the lists' tags snapshot.
    spare: Vec<u32>,
    /// One block's reverse samples.
    rev: Flat<(u32, u32)>,
    /// Per-worker scratch.
    pool: ScratchPool,
}

/// Round scratch kept for the next block and round (the stamps are `n` words: made
/// once per concurrent task, not once per task).
type ScratchPool = std::sync::Mutex<Vec<RoundScratch>>;

/// Scratch taken from a [`ScratchPool`], given back when dropped.
struct Lease<'a> {
    scratch: RoundScratch,
    pool: &'a ScratchPool,
}

impl<'a> Lease<'a> {
    /// Scratch for `n` points from `pool` (new when the pool is empty). Stamps from
    /// earlier uses are below the epoch, so they never match; when the epoch would
    /// wrap, the stamps are reset.
    fn take(pool: &'a ScratchPool, n: usize) -> Self {
        let taken = pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let fresh = || (vec![u32::MAX; n], 0, vec![], vec![], vec![], vec![]);
        let mut scratch = taken.unwrap_or_else(fresh);
        if scratch.1 >= u32::MAX - 1 - n as u32 {
            scratch.0.fill(u32::MAX);
            scratch.1 = 0;
        }
        Lease { scratch, pool }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let s = std::mem::take(&mut self.scratch);
        self.pool.lock().unwrap_or_else(|e| e.into_inner()).push(s);
    }
}

impl Lists {
    /// Every entry's id with its "new" flag (`Entry::tagged`), in the same layout: what
    /// other points read of a list during a round (they compute their own distances).
    /// `buf` becomes the snapshot's buffer (no allocation when its capacity suffices).
    #[cfg(test)]
    fn tags(&self, mut buf: Vec<u32>) -> Flat<u32> {
        buf.clear();
        buf.extend(self.items.iter().map(|e| e.tagged));
        Flat {
            stride: self.stride,
            items: buf,
            len: self.len.clone(),
        }
    }
}

/// One NN-descent round, in place; returns how many entries changed.
///
/// The points are done in [`ROUND_BLOCKS`] blocks, one after another. A point reads its
/// own row (which only it writes) and the ids and flags of other rows: those of earlier
/// blocks as this round left them, later blocks' as the last round did, and its own
/// block's from a snapshot of the block taken when it began (4 bytes per entry of one
/// block: a snapshot of every list would take a quarter of the lists' memory more, 122
/// MiB at 1M points). So the result does not depend on the number of threads; the
/// reverse samples of one block at a time (a pass over the lists each) are all a round
/// holds of them.
///
/// `work` holds the buffers kept from round to round.
fn descent_round(
    sp: &Space,
    lists: &mut Lists,
    n: usize,
    k: usize,
    round: u64,
    work: &mut RoundWork,
) -> usize {
    let block = n.div_ceil(ROUND_BLOCKS).max(1);
    let mut changed = 0;
    for lo in (0..n).step_by(block) {
        let hi = (lo + block).min(n);
        reverse_sample(&*lists, lo..hi, SAMPLE, round, &mut work.rev);
        let rev = &work.rev;
        changed += descent_block(sp, lists, &mut work.spare, rev, lo..hi, k, &work.pool);
    }
    changed
}

/// What the points of a block read of the lists during [`descent_block`]: the rows of
/// earlier blocks as this round left them, later ones as the last round did, and the
/// block's own as they were when it began.
struct BlockTags<'a> {
    stride: usize,
    lo: usize,
    hi: usize,
    before: &'a [Entry],
    after: &'a [Entry],
    len_before: &'a [u32],
    len_after: &'a [u32],
    snap: &'a [u32],
    snap_len: &'a [u32],
}

/// The tags of one row of [`BlockTags`]: read from entries or from the snapshot.
enum RowTags<'a> {
    Entries(std::slice::Iter<'a, Entry>),
    Tags(std::slice::Iter<'a, u32>),
}

impl Iterator for RowTags<'_> {
    type Item = u32;
    #[inline]
    fn next(&mut self) -> Option<u32> {
        match self {
            RowTags::Entries(i) => i.next().map(|e| e.tagged),
            RowTags::Tags(i) => i.next().copied(),
        }
    }
}

impl BlockTags<'_> {
    #[inline]
    fn tags_of(&self, v: usize) -> RowTags<'_> {
        let s = self.stride;
        if v < self.lo {
            let row = &self.before[v * s..v * s + self.len_before[v] as usize];
            RowTags::Entries(row.iter())
        } else if v >= self.hi {
            let r = v - self.hi;
            let row = &self.after[r * s..r * s + self.len_after[r] as usize];
            RowTags::Entries(row.iter())
        } else {
            let r = v - self.lo;
            RowTags::Tags(self.snap[r * s..r * s + self.snap_len[r] as usize].iter())
        }
    }
}

/// Blocks of points a descent round does one after another.
const ROUND_BLOCKS: usize = 4;

/// [`descent_round`] for the points `points`, whose reverse samples are `rev`.
fn descent_block(
    sp: &Space,
    lists: &mut Lists,
    snap: &mut Vec<u32>,
    rev: &Flat<(u32, u32)>,
    points: std::ops::Range<usize>,
    k: usize,
    pool: &ScratchPool,
) -> usize {
    let n = lists.len.len();
    let stride = lists.stride.max(1);
    let (lo, hi) = (points.start, points.end);
    // The block's rows as they were when it began (its points read each other's while
    // they rewrite their own); the other rows are read where they are.
    snap.clear();
    snap.extend(
        lists.items[lo * stride..hi * stride]
            .iter()
            .map(|e| e.tagged),
    );
    let snap_len = lists.len[lo..hi].to_vec();
    let (before, rest) = lists.items.split_at_mut(lo * stride);
    let (block_rows, after) = rest.split_at_mut((hi - lo) * stride);
    let (len_before, rest_len) = lists.len.split_at_mut(lo);
    let (block_len, len_after) = rest_len.split_at_mut(hi - lo);
    let tags = BlockTags {
        stride,
        lo,
        hi,
        before,
        after,
        len_before,
        len_after,
        snap,
        snap_len: &snap_len,
    };
    block_rows
        .par_chunks_mut(stride)
        .zip(block_len.par_iter_mut())
        .enumerate()
        .map_init(
            || Lease::take(pool, n),
            |lease, (r, (row, l))| {
                let (stamp, epoch, cands, merged, fresh, w) = &mut lease.scratch;
                let u = lo + r;
                *epoch += 1;
                let ep = *epoch;
                let mine = &row[..*l as usize];
                stamp[u] = ep;
                for e in mine {
                    stamp[e.id() as usize] = ep;
                }
                cands.clear();
                // Expand at most SAMPLE new entries (nearest first) and SAMPLE reverse
                // neighbours per round; other new entries stay new for the next round.
                let mut sampled = 0;
                // Which entries were expanded: a bit per entry (k <= 1024).
                let mut used = [0u64; 16];
                for (i, &e) in mine.iter().enumerate() {
                    let (v, new) = (e.id(), e.is_new());
                    let expand_all = new && sampled < SAMPLE;
                    if expand_all {
                        sampled += 1;
                        used[i / 64] |= 1 << (i % 64);
                    } else if new {
                        continue;
                    }
                    pull(tags.tags_of(v as usize), expand_all, stamp, ep, cands);
                }
                for &(_, t) in rev.row(r) {
                    pull(
                        tags.tags_of((t & !NEW) as usize),
                        t & NEW != 0,
                        stamp,
                        ep,
                        cands,
                    );
                }
                merged.clear();
                merged.extend(mine.iter().enumerate().map(|(i, &e)| {
                    let expanded = used[i / 64] >> (i % 64) & 1 != 0;
                    Entry::new(e.d, e.id(), e.is_new() && !expanded)
                }));
                // Only candidates nearer than the current k-th can enter the list.
                let limit = if merged.len() < k {
                    f32::INFINITY
                } else {
                    merged.iter().map(|e| e.d).fold(f32::NEG_INFINITY, f32::max)
                };
                fresh.clear();
                sp.entries_below(u as u32, cands, limit, w, fresh);
                fresh.sort_unstable_by(by_dist);
                // The list is sorted: merge the few candidates that can enter it.
                let m = (merged.len() + fresh.len()).min(k);
                let (mut a, mut b) = (0, 0);
                for slot in &mut row[..m] {
                    let take_fresh = match (merged.get(a), fresh.get(b)) {
                        (Some(x), Some(y)) => by_dist(y, x).is_lt(),
                        (None, _) => true,
                        (_, None) => false,
                    };
                    if take_fresh {
                        *slot = fresh[b];
                        b += 1;
                    } else {
                        *slot = merged[a];
                        a += 1;
                    }
                }
                *l = m as u32;
                // Entries taken from the candidates (never in the old list) changed.
                b
            },
        )
        .sum()
}

/// Relaxation of the pruning rule (as in Vamana): an edge u→v is dropped only when a
/// kept neighbour w is nearer to v than u is *by a factor ALPHA*.
const ALPHA: f32 = 1.1;

/// Whether a kept neighbour `w` at distance `d_wv` from `v` leaves the edge u→v (of
/// length `d_uv`) in place: true unless w is clearly nearer to v than u is.
///
/// For non-negative distances (Euclidean, angular) "clearly nearer" is
/// `d_wv ≤ d_uv / ALPHA`, tested as `ALPHA · d_wv ≤ d_uv`. The dot metric's distance
/// `−(a·b)` is negative for similar vectors, and there the same product flips the
/// margin's direction: `ALPHA · d_wv ≤ d_uv` with `d_uv = −5` drops v already when
/// `d_wv ≤ −4.17`, i.e. when w is *less* similar to v than u is — ALPHA would then
/// prune more, not less. For `d_uv < 0` the margin is applied on the other side:
/// w is clearly nearer when `d_wv ≤ ALPHA · d_uv` (w·v at least ALPHA times u·v).
/// Both thresholds are increasing in `d_uv`, meet at 0, and lie below `d_uv`, so an
/// edge is never dropped for a w that is farther from v than u is; for non-negative
/// distances the rule is bit-for-bit the old one.
#[inline]
fn keeps(d_wv: f32, d_uv: f32) -> bool {
    if d_uv >= 0.0 {
        ALPHA * d_wv > d_uv
    } else {
        d_wv > ALPHA * d_uv
    }
}

/// Prunes the candidates `cands` of `u` (nearest first) to at most `degree` diverse
/// neighbours: keep v unless a kept w is clearly nearer to v than u is ([`keeps`]);
/// then fill free slots with the nearest pruned candidates, so no item loses all its
/// in-edges on data where every distance looks alike. Returns the kept entries sorted
/// by (distance, id).
///
/// `dist4(v, ws)` gives the distances from `v` to four items.
#[cfg(test)]
fn prune(
    u: u32,
    cands: &[(f32, u32)],
    degree: usize,
    dist4: impl Fn(u32, [u32; 4]) -> [f32; 4],
) -> Vec<(f32, u32)> {
    let marked: Vec<Cand> = cands.iter().map(|&(d, v)| (d, v, false)).collect();
    let kept = prune_marked(u, &marked, degree, &mut Vec::new(), dist4);
    kept.into_iter().map(|(d, v, _)| (d, v)).collect()
}

/// A pruning candidate: distance, id, and whether it is known to be diverse among the
/// others so marked (see [`prune_marked`]).
type Cand = (f32, u32, bool);

/// [`prune`] for candidates of which the marked ones are known to keep each other (no
/// marked w before a marked v drops v: they were kept together by an earlier pruning of
/// the same list with the same distances), so their pairs are not checked again. The
/// kept entries come back marked when kept as diverse (not as fill-ins). `ws` is
/// scratch.
fn prune_marked(
    u: u32,
    cands: &[Cand],
    degree: usize,
    ws: &mut Vec<u32>,
    dist4: impl Fn(u32, [u32; 4]) -> [f32; 4],
) -> Vec<Cand> {
    // Kept as diverse so far, each with its candidate's mark.
    let mut kept: Vec<Cand> = Vec::with_capacity(degree);
    let mut spare: Vec<Cand> = Vec::new();
    for &(d, v, known) in cands {
        if kept.len() == degree {
            break;
        }
        if v == u || kept.iter().any(|&(_, w, _)| w == v) {
            continue;
        }
        ws.clear();
        ws.extend(
            kept.iter()
                .filter(|&&(_, _, w_known)| !(known && w_known))
                .map(|&(_, w, _)| w),
        );
        if diverse(ws, v, d, &dist4) {
            kept.push((d, v, known));
        } else {
            spare.push((d, v, false));
        }
    }
    // From here on the mark says "kept as diverse".
    kept.iter_mut().for_each(|e| e.2 = true);
    for e in spare {
        if kept.len() == degree {
            break;
        }
        kept.push(e);
    }
    kept.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    kept
}

/// Whether every kept neighbour `w` of `ws` keeps the edge to `v` at distance `d`
/// ([`keeps`]), four distances at a time, stopping at the first four with one that
/// drops it.
fn diverse(ws: &[u32], v: u32, d: f32, dist4: &impl Fn(u32, [u32; 4]) -> [f32; 4]) -> bool {
    ws.chunks(4).all(|c| {
        let quad = std::array::from_fn(|i| c[i.min(c.len() - 1)]);
        dist4(v, quad)[..c.len()].iter().all(|&d_wv| keeps(d_wv, d))
    })
}

/// Keeps at most `degree` diverse neighbours per point ([`prune`]), then adds reverse
/// edges and prunes again. Rows are padded with `u32::MAX`.
///
/// Memory: the first pass prunes each list in place and the lists are then compacted
/// to `degree` entries per point (no second array of pruned lists); the reverse edges
/// are gathered for one block of points at a time ([`REVERSE_BLOCKS`] blocks, each a
/// pass over the pruned lists), so besides the vectors, the pruned lists and the graph
/// this stage holds about a quarter of the reverse edges at once.
fn diversify(sp: &Space, mut lists: Lists, n: usize, degree: usize) -> Vec<u32> {
    let prune = |u: u32, cands: &[Cand], ws: &mut Vec<u32>| {
        prune_marked(u, cands, degree, ws, |v, quad| sp.dist4(v, quad))
    };
    let k = lists.stride.max(1);
    lists
        .items
        .par_chunks_mut(k)
        .zip(lists.len.par_iter_mut())
        .enumerate()
        .for_each_init(
            Default::default,
            |(c, ws): &mut (Vec<Cand>, _), (u, (row, l))| {
                c.clear();
                c.extend(row[..*l as usize].iter().map(|e| (e.d, e.id(), false)));
                let kept = prune(u as u32, c, ws);
                // The flag now says "kept as diverse": the second pass need not recheck
                // pairs of such entries.
                for (o, &(d, v, diverse)) in row.iter_mut().zip(&kept) {
                    *o = Entry::new(d, v, diverse);
                }
                *l = kept.len() as u32;
            },
        );
    let first = compact(lists, n, degree);
    // Reverse edges by counting sort, block by block of points: in a block,
    // `incoming[start[v] - base..start[v + 1] - base]` are the (distance, u) of every u
    // whose pruned list holds v, in ascending u.
    let mut start = vec![0usize; n + 1];
    for u in 0..n {
        for e in first.row(u) {
            start[e.id() as usize + 1] += 1;
        }
    }
    for v in 0..n {
        start[v + 1] += start[v];
    }
    let mut g = vec![u32::MAX; n * degree];
    let per_block = start[n].div_ceil(REVERSE_BLOCKS).max(1);
    let mut incoming: Vec<(f32, u32)> = Vec::new();
    let mut next: Vec<usize> = Vec::new();
    let mut lo = 0;
    while lo < n {
        // The block: points lo..hi, about `per_block` reverse edges (at least one point).
        let base = start[lo];
        let mut hi = lo + 1;
        while hi < n && start[hi + 1] - base <= per_block {
            hi += 1;
        }
        incoming.clear();
        incoming.resize(start[hi] - base, (0.0, 0));
        next.clear();
        next.extend(start[lo..hi].iter().map(|s| s - base));
        for u in 0..n {
            for e in first.row(u) {
                let v = e.id() as usize;
                if (lo..hi).contains(&v) {
                    incoming[next[v - lo]] = (e.d, u as u32);
                    next[v - lo] += 1;
                }
            }
        }
        g[lo * degree..hi * degree]
            .par_chunks_mut(degree.max(1))
            .enumerate()
            .for_each_init(
                Default::default,
                |(c, ws): &mut (Vec<Cand>, _), (i, row)| {
                    let v = lo + i;
                    c.clear();
                    c.extend(first.row(v).iter().map(|e| (e.d, e.id(), e.is_new())));
                    let inc = &incoming[start[v] - base..start[v + 1] - base];
                    c.extend(inc.iter().map(|&(d, u)| (d, u, false)));
                    c.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                    // An id both listed and incoming keeps its mark (the same distance).
                    c.dedup_by(|later, kept| {
                        let same = later.1 == kept.1;
                        kept.2 |= same && later.2;
                        same
                    });
                    for (slot, &(_, w, _)) in row.iter_mut().zip(&prune(v as u32, c, ws)) {
                        *slot = w;
                    }
                },
            );
        lo = hi;
    }
    g
}

/// Blocks of points whose reverse edges [`diversify`] gathers at once.
const REVERSE_BLOCKS: usize = 4;

/// The lists, each at most `degree` long, moved to `degree` entries per point in the
/// same buffer (front to back: a row never moves over one not moved yet), which is
/// then shrunk.
fn compact(mut lists: Lists, n: usize, degree: usize) -> Lists {
    let k = lists.stride;
    if degree < k {
        for u in 0..n {
            let l = lists.len[u] as usize;
            debug_assert!(l <= degree);
            lists.items.copy_within(u * k..u * k + l, u * degree);
        }
        lists.items.truncate(n * degree);
        lists.items.shrink_to_fit();
        lists.stride = degree;
    }
    lists
}

#[cfg(test)]
mod tests {
    #[test]
    fn descent_converges_below_a_fifth_of_a_percent_of_changed_entries() {
        // 1000 points x 32 entries: 64 changes is exactly 0.2%, 63 is below it.
        assert!(converged(63, 1000, 32));
        assert!(!converged(64, 1000, 32));
        assert!(!converged(1000, 1000, 32));
        assert!(converged(0, 1000, 32));
        assert!(
            !converged(0, 0, 32),
            "an empty round over no lists is not progress"
        );
        assert!(!converged(usize::MAX, usize::MAX, 32));
    }

    use super::*;

    /// `prune`'s four-at-a-time distances from a one-pair distance `dist(w, v)`.
    fn by_one(dist: impl Fn(u32, u32) -> f32) -> impl Fn(u32, [u32; 4]) -> [f32; 4] {
        move |v, ws| ws.map(|w| dist(w, v))
    }

    /// The reverse samples of all `n` points.
    fn sample(tags: &Flat<u32>, n: usize, cap: usize, round: u64) -> Flat<(u32, u32)> {
        let mut out = Flat {
            stride: cap,
            items: Vec::new(),
            len: Vec::new(),
        };
        reverse_sample(tags, 0..n, cap, round, &mut out);
        out
    }

    /// A block's reverse samples are the same rows as those of all points at once.
    #[test]
    fn reverse_samples_by_block_are_the_rows_of_the_whole() {
        let n = 500usize;
        let mut rng = crate::rng::Rng::new(8);
        let rows: Vec<Vec<Entry>> = (0..n)
            .map(|_| {
                (0..12)
                    .map(|_| Entry::new(1.0, rng.below(n) as u32, rng.below(2) == 0))
                    .collect()
            })
            .collect();
        let tags = Lists::from_rows(&rows, 12).tags(Vec::new());
        let whole = sample(&tags, n, SAMPLE, 3);
        let mut part = Flat {
            stride: SAMPLE,
            items: vec![(7, 7); 3],
            len: Vec::new(),
        };
        for (lo, hi) in [(0, 1), (1, 130), (130, 499), (499, 500)] {
            reverse_sample(&tags, lo..hi, SAMPLE, 3, &mut part);
            for v in lo..hi {
                assert_eq!(part.row(v - lo), whole.row(v), "point {v}");
            }
        }
    }

    /// Reverse-sample rows as (lister, new) pairs.
    fn untag(row: &[(u32, u32)]) -> Vec<(u32, bool)> {
        row.iter().map(|&(_, t)| (t & !NEW, t & NEW != 0)).collect()
    }

    #[test]
    fn pruning_never_drops_an_edge_for_a_farther_neighbour() {
        // w farther from v than u is ⇒ the edge u→v stays, whatever the sign (at equal
        // distances too, except at 0: a duplicate of v makes v redundant).
        let ds = [-100.0, -5.0, -1.0, -0.01, 0.0, 0.01, 1.0, 5.0, 100.0f32];
        for &d_uv in &ds {
            for &d_wv in &ds {
                if d_wv > d_uv || (d_wv == d_uv && d_uv != 0.0) {
                    assert!(keeps(d_wv, d_uv), "d(w,v) = {d_wv}, d(u,v) = {d_uv}");
                }
            }
        }
        // Clearly nearer (by more than ALPHA) ⇒ dropped; slightly nearer ⇒ kept.
        assert!(!keeps(4.0, 5.0) && keeps(4.7, 5.0));
        assert!(!keeps(-6.5, -5.0) && keeps(-5.4, -5.0));
        assert!(!keeps(-0.1, 0.0) && !keeps(-1.0, 5.0));
    }

    #[test]
    fn dot_metric_pruning_keeps_the_right_edges() {
        // Dot distance −(a·b). u's candidates, nearest first: w (u·w = 72.5), v (u·v = 5),
        // x (u·x = −5). w·v = 4.5 < u·v: w is *less* similar to v than u is, so the edge
        // u→v must stay. The old rule (ALPHA · d(w,v) > d(u,v): −5.4 > −5 is false)
        // dropped it and let the dissimilar x take its slot.
        let vecs: [[f32; 2]; 4] = [[5.0, 5.0], [1.0, 0.0], [4.5, 10.0], [0.0, -1.0]];
        let (u, v, w, x) = (0u32, 1u32, 2u32, 3u32);
        let dist = |a: u32, b: u32| Metric::Dot.distance(&vecs[a as usize], &vecs[b as usize]);
        let cands: Vec<(f32, u32)> = [w, v, x].iter().map(|&c| (dist(u, c), c)).collect();
        assert_eq!(cands, [(-72.5, w), (-5.0, v), (5.0, x)]);
        assert_eq!(prune(u, &cands, 2, by_one(dist)), [(-72.5, w), (-5.0, v)]);
        // A w clearly more similar to v (w·v = 7 ≥ ALPHA · 5) does make v redundant.
        let vecs2: [[f32; 2]; 4] = [[5.0, 5.0], [1.0, 0.0], [7.0, 10.0], [0.0, -1.0]];
        let dist2 = |a: u32, b: u32| Metric::Dot.distance(&vecs2[a as usize], &vecs2[b as usize]);
        let cands2: Vec<(f32, u32)> = [w, v, x].iter().map(|&c| (dist2(u, c), c)).collect();
        assert_eq!(prune(u, &cands2, 2, by_one(dist2)), [(-85.0, w), (5.0, x)]);
        // The spare fill-in still gives v a slot when there is room.
        assert_eq!(
            prune(u, &cands2, 3, by_one(dist2)),
            [(-85.0, w), (-5.0, v), (5.0, x)]
        );
    }

    #[test]
    fn euclidean_pruning_is_unchanged() {
        // Points on a line: 0 at 0.0, then 1.0, 1.9, 3.0. From 0, candidate 2 (d 1.9) is
        // 0.9 from kept 1: 1.2 · 0.9 = 1.08 ≤ 1.9 ⇒ pruned; 3 (d 3.0) is 1.1 from 2 but
        // 2 is not kept, and 2.0 from 1: 2.4 ≤ 3 ⇒ pruned too.
        let xs = [0.0f32, 1.0, 1.9, 3.0];
        let dist = |a: u32, b: u32| (xs[a as usize] - xs[b as usize]).abs();
        let cands: Vec<(f32, u32)> = (1..4).map(|c| (dist(0, c), c)).collect();
        assert_eq!(prune(0, &cands, 1, by_one(&dist)), [(1.0, 1)]);
        assert_eq!(prune(0, &cands, 2, by_one(&dist)), [(1.0, 1), (1.9, 2)]); // spare fill-in
    }

    #[test]
    fn reverse_samples_of_popular_points_are_not_biased_to_low_ids() {
        // Points 0..100 are listed by every point of 100..2000: each has 1900 listers,
        // far more than the cap. The old rule (first `cap` listers in id order) kept
        // listers 100..110 only; a fair sample's mean id is near 1050.
        let (n, hubs, cap) = (2000u32, 100u32, SAMPLE);
        let lists: Vec<Vec<Entry>> = (0..n)
            .map(|u| {
                if u < hubs {
                    vec![]
                } else {
                    (0..hubs).map(|v| Entry::new(1.0, v, u % 2 == 0)).collect()
                }
            })
            .collect();
        let lists = Lists::from_rows(&lists, hubs as usize);
        let tags = lists.tags(Vec::new());
        let rev = sample(&tags, n as usize, cap, 0);
        let rev: Vec<Vec<(u32, bool)>> = (0..n as usize).map(|v| untag(rev.row(v))).collect();
        let mut ids: Vec<u32> = Vec::new();
        for (v, r) in rev.iter().enumerate() {
            assert_eq!(r.len(), if (v as u32) < hubs { cap } else { 0 });
            assert!(r.windows(2).all(|w| w[0].0 != w[1].0), "duplicate lister");
            assert!(r.iter().all(|&(u, new)| u >= hubs && new == (u % 2 == 0)));
            ids.extend(r.iter().map(|e| e.0));
        }
        let mean = ids.iter().map(|&u| u as f64).sum::<f64>() / ids.len() as f64;
        let upper = ids.iter().filter(|&&u| u >= 1050).count() as f64 / ids.len() as f64;
        assert!((950.0..1150.0).contains(&mean), "mean lister id {mean}");
        assert!(
            (0.42..0.58).contains(&upper),
            "share of listers in the upper half {upper}"
        );
        // Deterministic, and a new sample each round.
        let again = sample(&tags, n as usize, cap, 0);
        assert!((0..n as usize).all(|v| untag(again.row(v)) == rev[v]));
        let next = sample(&tags, n as usize, cap, 1);
        let same = (0..hubs as usize)
            .filter(|&v| untag(next.row(v)) == rev[v])
            .count();
        assert!(
            same < 5,
            "{same} of {hubs} samples repeat in the next round"
        );
    }

    /// The "new" flag travels in the id's top bit, and `pull` takes a known hub's new
    /// entries only (old x old pairs were compared in an earlier round), every entry of
    /// a hub new to us, and never one already stamped.
    #[test]
    fn entries_keep_their_flag_and_pull_takes_only_new_ones() {
        let e = Entry::new;
        assert!(e(1.0, 5, true).is_new() && !e(1.0, 5, false).is_new());
        assert_eq!(e(1.0, (1 << 31) - 1, true).id(), (1 << 31) - 1);
        let list = [e(1.0, 1, true), e(2.0, 2, false), e(3.0, 3, true)].map(|e| e.tagged);
        let mut stamp = vec![0u32; 4];
        let mut cands = Vec::new();
        pull(list.iter().copied(), false, &mut stamp, 1, &mut cands);
        assert_eq!(cands, [1, 3]);
        cands.clear();
        stamp[3] = 2;
        pull(list.iter().copied(), true, &mut stamp, 2, &mut cands);
        assert_eq!(cands, [1, 2]);
    }

    /// A round expands at most SAMPLE new entries per point, nearest first, and marks
    /// exactly those old; new entries it did not expand stay new for the next round.
    #[test]
    fn a_round_expands_and_ages_at_most_sample_new_entries() {
        let (n, stride) = (40usize, 16usize);
        let mut vectors = vec![0f32; n * stride];
        for i in 0..n {
            vectors[i * stride] = i as f32;
        }
        let sp = Space {
            vectors: &vectors,
            stride,
            metric: Metric::Euclidean,
            codes: None,
            order: None,
        };
        // Point 0 lists points 1..=12 as new; the others list nothing.
        let rows: Vec<Vec<Entry>> = (0..n)
            .map(|u| {
                if u == 0 {
                    (1..=12)
                        .map(|v| Entry::new(v as f32 * v as f32, v, true))
                        .collect()
                } else {
                    Vec::new()
                }
            })
            .collect();
        let mut lists = Lists::from_rows(&rows, 16);
        let mut work = RoundWork {
            spare: Vec::new(),
            rev: Flat {
                stride: SAMPLE,
                items: Vec::new(),
                len: Vec::new(),
            },
            pool: ScratchPool::default(),
        };
        descent_round(&sp, &mut lists, n, 16, 0, &mut work);
        let row = lists.row(0);
        for v in 1..=12u32 {
            let e = row.iter().find(|e| e.id() == v).expect("kept");
            assert_eq!(e.is_new(), v > SAMPLE as u32, "entry {v}");
        }
    }

    #[test]
    fn reverse_lists_under_the_cap_are_complete() {
        let e = Entry::new;
        let lists: Vec<Vec<Entry>> = vec![
            vec![e(1.0, 1, true), e(2.0, 2, false)],
            vec![e(1.0, 0, false)],
            vec![e(1.0, 1, true)],
        ];
        let rev = sample(&Lists::from_rows(&lists, 2).tags(Vec::new()), 3, SAMPLE, 7);
        let mut rev: Vec<Vec<(u32, bool)>> = (0..3).map(|v| untag(rev.row(v))).collect();
        rev.iter_mut().for_each(|r| r.sort_unstable());
        assert_eq!(
            rev,
            [
                vec![(1, false)],
                vec![(0, true), (2, true)],
                vec![(0, false)]
            ]
        );
    }
}
