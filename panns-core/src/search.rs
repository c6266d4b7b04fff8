//! k-nearest-neighbour search over an [`IndexView`].
//!
//! A query is projected on each pool vector the walk meets (one SIMD dot product each, once);
//! every node's margin is then a table look-up. All trees are walked best-first from
//! one priority queue ordered by the smallest margin along the path (as Annoy does)
//! until `budget` distinct candidates are collected; those are re-ranked with exact
//! SIMD distances. Results are sorted by distance, ties broken by id.

use crate::filter::{Filter, bit, bitmap_ids, popcount};
use crate::layout::{IndexView, LEAF_FLAG, padded_dim};
use crate::scratch::Scratch;
use crate::{Error, Metric, Result, kernels, quant};

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

/// What one search did (see [`crate::Index::search_with_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SearchStats {
    /// Distinct items whose exact distance to the query was computed.
    pub scored: usize,
    /// True when the search scanned every (allowed) item exactly instead of walking the
    /// trees (or graph): the budget covered half of them, or, with a graph and a bitmap
    /// filter, the filtered walk would have scored more items than are allowed.
    pub exact_scan: bool,
    /// The effective budget after defaults and clamping (see [`SearchParams::budget`]).
    pub budget: usize,
}

/// Filters passing at most one item in this many walk two hops (with a graph, on
/// vectors of at least [`TWO_HOP_MIN_DIM`] dimensions).
const TWO_HOP_MAX_SHARE: usize = 6;
/// Vector length from which a two-hop filtered walk is cheaper than scoring refused items.
const TWO_HOP_MIN_DIM: usize = 256;
/// A two-hop filtered walk scans exactly when at most this many items per unit of beam
/// pass (see `IndexView::prefers_scan`).
const TWO_HOP_SCAN_PER_BEAM: usize = 80;

/// How the planner lists the allowed items of a filter whose count it knows.
#[derive(Clone, Copy)]
enum Allowed<'a> {
    /// Set bits of the bitmap (clear bits, when the flag is set: a deny map).
    Bits(&'a [u64], bool),
    /// These ids, ascending (a prepared [`crate::AllowList`]).
    Ids(&'a [u32]),
}

/// How many times more allowed items a filtered search scans exactly, instead of
/// walking, when the index is stored as codes only. Measured through Python on
/// 20,000 384-d embeddings at 10% allowed (2,041 items, 8-bit codes): the exact scan
/// ran 34.3k queries/s against the walk's 19.6k at beam 24, while with `f32` rows the
/// two were even (17.3k / 17.0k); on sift 50k at 10% the codes' scan won too (21.4k
/// against 20.0k at beam 24, losing to the walk's 39k at beam 10).
const CODE_SCAN_GAIN: usize = 2;

/// Fewest forest candidates that seed a graph walk.
const SEEDS: usize = 64;

/// About how many items a graph walk of beam width `ef` scores per unit of `ef` (measured:
/// 13 to 16 on sift-50k and minilm-20k at ef 16 to 64, seeds included); the planner's
/// estimate of a filtered walk's cost (see `IndexView::prefers_scan`).
const WALK_SCORED_PER_BEAM: usize = 16;

/// Largest magnitude accepted for a vector component (stored or query). Above it,
/// squared distances can overflow `f32` at the largest dimension ([`crate::MAX_DIM`]).
pub const MAX_COMPONENT: f32 = 1e16;

/// A distance, or +infinity when it is not finite (a damaged stored vector holding NaN
/// or infinity), so it never wins.
#[inline]
fn finite_or_inf(d: f32) -> f32 {
    if d.is_finite() { d } else { f32::INFINITY }
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

/// A heap entry ordering by `priority` (as a float), then by `item`.
#[inline]
fn heap_key(priority: f32, item: u32) -> u64 {
    ((ordered(priority) as u64) << 32) + item as u64
}

/// True when `key` is nearer than the worst (largest) key of a non-empty beam.
#[inline]
fn beats_worst(beam: &std::collections::BinaryHeap<u64>, key: u64) -> bool {
    beam.peek().is_some_and(|&worst| key < worst)
}

/// The beam admission rule: a beam of width `ef` takes any item while it is not full,
/// then only items nearer than its worst.
#[inline]
fn admits(beam: &std::collections::BinaryHeap<u64>, ef: usize, key: u64) -> bool {
    beam.len() < ef || beats_worst(beam, key)
}

/// True when a walk found fewer than the `want` results a search must return.
#[inline]
fn fell_short(found: usize, want: usize) -> bool {
    found < want
}

/// The priority of a [`heap_key`].
#[inline]
fn key_priority(key: u64) -> f32 {
    unordered((key >> 32) as u32)
}

/// The item of a [`heap_key`].
#[inline]
fn key_item(key: u64) -> u32 {
    key as u32
}

/// Checks one vector's values: finite and at most [`MAX_COMPONENT`] in magnitude.
/// `item` names the vector in the error (its would-be id, or the query's row).
pub(crate) fn check_values(v: &[f32], item: usize) -> Result<()> {
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(Error::NonFinite {
            item,
            index: i,
            value: v[i],
        });
    }
    if let Some(i) = v.iter().position(|x| x.abs() > MAX_COMPONENT) {
        return Err(Error::TooLarge {
            item,
            index: i,
            value: v[i],
        });
    }
    Ok(())
}

/// Scales `v` to unit length, computing the norm in f64 so tiny vectors (whose f32
/// squares underflow) are normalised correctly. False for a zero vector.
pub(crate) fn normalize(v: &mut [f32]) -> bool {
    let n = v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
    if n == 0.0 {
        return false;
    }
    v.iter_mut().for_each(|x| *x = (*x as f64 / n) as f32);
    true
}

/// Checks a query and writes it, prepared for `metric`, into a zero-padded buffer.
pub(crate) fn prepare(query: &[f32], dim: usize, metric: Metric, out: &mut Vec<f32>) -> Result<()> {
    if query.len() != dim {
        return Err(Error::DimensionMismatch {
            expected: dim,
            got: query.len(),
        });
    }
    check_values(query, 0)?;
    out.clear();
    out.resize(padded_dim(dim), 0.0);
    out[..dim].copy_from_slice(query);
    if metric == Metric::Angular && !normalize(out) {
        return Err(Error::ZeroVector { item: 0 });
    }
    Ok(())
}

/// Below this `k`, [`top_k`] keeps the best in a sorted prefix (one comparison per item
/// once it is full) instead of selecting (a partition of every item, several times).
const SMALL_K: usize = 32;

/// The order of `(distance, id)` results: nearer first, ties by id.
fn by_distance(a: &(f32, u32), b: &(f32, u32)) -> std::cmp::Ordering {
    a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))
}

/// Sorts `(distance, id)` pairs and keeps the best `k` (ties by id), in front; the
/// rest of `scored` is left in no particular order (entries may be overwritten).
fn top_k(scored: &mut [(f32, u32)], k: usize) -> &[(f32, u32)] {
    use std::cmp::Ordering::Less;
    let cmp = by_distance;
    let keep = k.min(scored.len());
    if keep > 0 && keep <= SMALL_K && keep < scored.len() {
        let (best, rest) = scored.split_at_mut(keep);
        best.sort_unstable_by(cmp);
        for e in rest.iter() {
            if cmp(e, &best[keep - 1]) == Less {
                let mut j = keep - 1;
                while j > 0 && cmp(e, &best[j - 1]) == Less {
                    best[j] = best[j - 1];
                    j -= 1;
                }
                best[j] = *e;
            }
        }
        return &scored[..keep];
    }
    if keep < scored.len() {
        // Puts the (keep+1)-th smallest at `keep`, every smaller one before it.
        scored.select_nth_unstable_by(keep, cmp);
    }
    let best = &mut scored[..keep];
    best.sort_unstable_by(cmp);
    best
}

/// Trees a graph search descends straight to a leaf at least, whatever its budget.
const GREEDY_TREES: usize = 2;

/// Forest candidates that seed a graph walk of beam width `budget`: a quarter of it,
/// at least [`SEEDS`] (the graph cannot cross between well-separated clusters, the
/// forest can), never more than the budget.
fn graph_seeds(budget: usize) -> usize {
    budget.min((budget / 4).max(SEEDS))
}

/// ACORN's two-hop expansion of one graph row under a filter: appends to `out` the
/// allowed items of `row`, then, for each refused item of `row` not visited yet (it is
/// then marked visited: expanded once per search), the allowed items of its own row
/// (`neighbours`), each only if `visit` says it is new, and at most `cap` items in all.
/// Rows end at the first `u32::MAX`. Refused items are stepped over, never added.
fn two_hop<'g>(
    row: &[u32],
    neighbours: impl Fn(u32) -> &'g [u32],
    ok: &impl Fn(u32) -> bool,
    visit: &mut impl FnMut(u32) -> bool,
    cap: usize,
    out: &mut Vec<u32>,
) {
    let end = out.len() + cap;
    let row = &row[..row.iter().position(|&v| v == u32::MAX).unwrap_or(row.len())];
    for &v in row {
        if ok(v) && visit(v) {
            out.push(v);
            if out.len() == end {
                return;
            }
        }
    }
    for &v in row {
        if ok(v) || !visit(v) {
            continue;
        }
        for &w in neighbours(v).iter().take_while(|&&w| w != u32::MAX) {
            if ok(w) && visit(w) {
                out.push(w);
                if out.len() == end {
                    return;
                }
            }
        }
    }
}

/// A query ready to score: the prepared vector, and its weights and constant for
/// distances to codes (unused for `f32` vectors).
#[derive(Clone, Copy)]
struct Prepared<'a> {
    query: &'a [f32],
    w: &'a [f32],
    base: f32,
}

impl<'a> Prepared<'a> {
    #[inline]
    fn of(query: &'a [f32], w: &'a [f32], base: f32) -> Self {
        Prepared { query, w, base }
    }
}

impl IndexView<'_> {
    /// The default search effort for `k` neighbours (see [`SearchParams::budget`]).
    pub(crate) fn default_budget(&self, k: usize) -> usize {
        if self.p.graph_degree > 0 {
            k.saturating_mul(4).max(64)
        } else {
            self.n_trees().saturating_mul(k).max(k.saturating_mul(100))
        }
    }

    /// The budget a search with `params` uses: the default for 0, never below `k`
    /// (so a search returns `min(k, len)` results), never above the item count.
    pub(crate) fn effective_budget(&self, params: &SearchParams) -> usize {
        match params.budget {
            0 => self.default_budget(params.k),
            b => b,
        }
        .max(params.k)
        .min(self.len())
    }

    /// Searches one query with `s`; leaves the results in `s.scored[..returned count]`.
    pub(crate) fn search_in(
        &self,
        query: &[f32],
        params: &SearchParams,
        s: &mut Scratch,
    ) -> Result<(usize, SearchStats)> {
        self.search_filtered_in(query, params, &Filter::All, s)
    }

    /// [`search_in`](Self::search_in) returning only items `filter` allows.
    pub(crate) fn search_filtered_in(
        &self,
        query: &[f32],
        params: &SearchParams,
        filter: &Filter<'_>,
        s: &mut Scratch,
    ) -> Result<(usize, SearchStats)> {
        if params.k == 0 {
            return Err(Error::InvalidK(0));
        }
        filter.check(self.len())?;
        match *filter {
            Filter::All => self.plan(query, params, None, s, |_| true),
            Filter::Allow(bits) => {
                let known = (popcount(bits, self.len()), Allowed::Bits(bits, false));
                self.plan(query, params, Some(known), s, |i| bit(bits, i))
            }
            Filter::Deny(bits) => {
                let allowed = self.len() - popcount(bits, self.len());
                let known = (allowed, Allowed::Bits(bits, true));
                self.plan(query, params, Some(known), s, |i| !bit(bits, i))
            }
            Filter::List(l) => {
                let (bits, known) = (l.bits(), (l.len(), Allowed::Ids(l.ids())));
                self.plan(query, params, Some(known), s, |i| bit(bits, i))
            }
            Filter::Predicate(f) => self.plan(query, params, None, s, f),
        }
    }

    /// True when a search of effective `budget` should scan the `allowed` items exactly
    /// instead of walking: always when the budget covers half of them (the scan is then
    /// no more work); with a graph also when the filtered walk would score more items
    /// than there are allowed ones. A walk of beam `budget` scores about
    /// [`WALK_SCORED_PER_BEAM`]` * budget` items to fill its beam with allowed ones, and
    /// refused items are scored too (they steer it), so about that many divided by the
    /// allowed fraction: the scan wins when `allowed^2 <= 16 * budget * n`. (Without a
    /// graph, refused items cost the forest only a bit test, so the walk stays cheap.)
    ///
    /// A selective bitmap filter on long vectors walks two hops instead (see
    /// [`walks_two_hops`](Self::walks_two_hops)): it scores only allowed items, about
    /// `WALK_SCORED_PER_BEAM * budget` of them, but pays for every step through refused
    /// ones, so it scans when `allowed <= TWO_HOP_SCAN_PER_BEAM * budget` (measured on
    /// 20,000 384-d embeddings: the walk won at 10% allowed, the scan at 5%).
    pub(crate) fn prefers_scan(&self, budget: usize, allowed: usize) -> bool {
        let n = self.len();
        if budget.saturating_mul(2) >= allowed {
            return true;
        }
        if self.p.graph_degree == 0 || allowed >= n {
            return false;
        }
        // A scan of codes only ([`quant::Dtype::I8`]) costs about half as much per item
        // as the walk's scoring of them (which also reads graph rows and keeps a beam).
        let cheaper = if self.p.dtype() == crate::Dtype::I8 {
            CODE_SCAN_GAIN as u128
        } else {
            1
        };
        if self.walks_two_hops(allowed) {
            return allowed as u128 <= cheaper * TWO_HOP_SCAN_PER_BEAM as u128 * budget as u128;
        }
        (allowed as u128).pow(2)
            <= cheaper * WALK_SCORED_PER_BEAM as u128 * budget as u128 * n as u128
    }

    /// True when a graph walk under a bitmap filter passing `allowed` items should step
    /// over refused neighbours to their allowed neighbours (ACORN's two-hop expansion)
    /// instead of scoring them: when at most 1 item in [`TWO_HOP_MAX_SHARE`] passes and
    /// vectors have at least [`TWO_HOP_MIN_DIM`] dimensions. Below that length a distance
    /// costs less than the extra graph rows two hops read (measured on 128-d SIFT: the
    /// one-hop walk was as fast or faster at 5-20% allowed).
    /// (Only asked with a graph.)
    pub(crate) fn walks_two_hops(&self, allowed: usize) -> bool {
        self.dim() >= TWO_HOP_MIN_DIM && allowed.saturating_mul(TWO_HOP_MAX_SHARE) <= self.len()
    }

    /// Chooses how to answer: an exact scan over the allowed items when the budget
    /// covers half of them (or half the index), else the forest (and graph) walked with
    /// only allowed items counted and returned.
    fn plan(
        &self,
        query: &[f32],
        params: &SearchParams,
        known: Option<(usize, Allowed<'_>)>,
        s: &mut Scratch,
        ok: impl Fn(u32) -> bool,
    ) -> Result<(usize, SearchStats)> {
        self.prepare_query(query, s)?;
        // `ok` and the filters name item ids; the search works on rows.
        let ok = |row: u32| ok(self.item_of(row));
        let budget = self.effective_budget(params);
        let pool = known.map_or(self.len(), |k| k.0);
        let exact_scan = match known {
            Some((allowed, _)) => self.prefers_scan(budget, allowed),
            None => budget.saturating_mul(2) >= pool,
        };
        let mut extra = 0;
        if exact_scan {
            // Scanning half the (allowed) items or more, or fewer items than a filtered
            // walk would score: an exact scan is cheaper and gives the exact answer
            // (from the f32 rows when the index keeps them beside codes).
            s.cands.clear();
            match known {
                Some((_, Allowed::Bits(bits, deny))) => {
                    bitmap_ids(bits, self.len(), deny, &mut s.cands);
                    self.ids_to_rows(&mut s.cands);
                }
                Some((_, Allowed::Ids(ids))) => {
                    s.cands.extend(ids.iter().map(|&id| self.row_of(id)))
                }
                None => s.cands.extend((0..self.len() as u32).filter(|&r| ok(r))),
            }
            self.score_candidates_with(s, self.reranks());
        } else if self.p.graph_degree > 0 {
            // Seed the walk with forest candidates, then follow the graph. More seeds
            // at higher effort: the graph cannot cross between well-separated
            // clusters, the forest can.
            self.collect_candidates(s, graph_seeds(budget), true, &ok)?;
            self.score_candidates(s);
            let two_hop = known.is_some_and(|(allowed, _)| self.walks_two_hops(allowed));
            self.walk_graph(s, budget, two_hop, &ok);
            let want = params.k.min(pool);
            if fell_short(s.scored.len(), want) {
                // The walk ran out of graph (k above the size of the seeds' cluster):
                // top up from the forest, which reaches every item.
                let walked = std::mem::take(&mut s.scored);
                extra = s.cands.len();
                self.collect_candidates(s, budget.max(want), false, &ok)?;
                self.score_candidates(s);
                s.scored.extend(walked);
                s.scored.sort_unstable_by_key(|e| e.1);
                s.scored.dedup_by_key(|e| e.1);
            }
        } else {
            self.collect_candidates(s, budget, false, &ok)?;
            self.score_candidates(s);
        }
        let stats = SearchStats {
            scored: s.cands.len() + extra,
            exact_scan,
            budget,
        };
        if self.reranks() && !exact_scan {
            self.rerank(s, params.k);
        }
        // Item ids before the selection, so that ties at the k-th place go to the
        // smaller id, as in an exact answer. (The rows of one search are mostly near
        // each other in the stored order, so these reads are too.)
        self.rows_to_items(&mut s.scored);
        let n = top_k(&mut s.scored, params.k).len();
        Ok((n, stats))
    }

    /// Replaces the row of each `(distance, row)` in `scored` by the item id it holds.
    fn rows_to_items(&self, scored: &mut [(f32, u32)]) {
        if !self.p.row_ids.is_empty() {
            for e in scored.iter_mut() {
                e.1 = self.p.row_ids[e.1 as usize];
            }
        }
    }

    /// Replaces each item id in `ids` by its row.
    fn ids_to_rows(&self, ids: &mut [u32]) {
        if !self.p.id_rows.is_empty() {
            for id in ids.iter_mut() {
                *id = self.p.id_rows[*id as usize];
            }
        }
    }

    /// Distance under the index metric, with any non-finite result (a damaged stored
    /// vector holding NaN or infinity) scored as +infinity, so it never wins.
    #[inline]
    fn score(&self, q: Prepared<'_>, id: u32) -> f32 {
        finite_or_inf(match &self.p.codes {
            None => self.metric().distance(q.query, self.row(id as usize)),
            Some(c) => quant::distance(c, self.metric(), self.stride, q.w, q.base, id as usize),
        })
    }

    /// [`score`](Self::score)s `ids` in order, handing each `(distance, id)` to `emit`;
    /// rows four per kernel call (bit-identical to one at a time). When
    /// `ahead`, asks for rows a few ids ahead (the walk asks when it queues them).
    #[inline(always)]
    fn score_ids(&self, q: Prepared<'_>, ids: &[u32], ahead: bool, mut emit: impl FnMut(f32, u32)) {
        if ahead {
            self.prefetch_ahead(ids, None, false);
        }
        let mut quads = ids.chunks_exact(4);
        for (b, quad) in quads.by_ref().enumerate() {
            if ahead {
                (4 * b..4 * b + 4).for_each(|i| self.prefetch_ahead(ids, Some(i), false));
            }
            let quad = [quad[0], quad[1], quad[2], quad[3]];
            let d = match &self.p.codes {
                Some(c) => quant::distances4(c, self.metric(), self.stride, q.w, q.base, quad),
                None => {
                    let rows = quad.map(|id| self.row(id as usize));
                    self.metric().distance4(q.query, rows)
                }
            };
            for (d, id) in d.into_iter().zip(quad) {
                emit(finite_or_inf(d), id);
            }
        }
        for &id in quads.remainder() {
            emit(self.score(q, id), id);
        }
    }

    /// True when the index keeps `f32` rows beside its codes ([`quant::Dtype::I8F32`]):
    /// walks score codes, then the best candidates are re-ranked from `f32`.
    #[inline]
    fn reranks(&self) -> bool {
        self.p.codes.is_some() && !self.p.vectors.is_empty()
    }

    /// The exact distance of item `id` from its `f32` row (an index keeping them), with
    /// a non-finite result scored as +infinity like [`score`](Self::score).
    #[inline]
    fn score_f32(&self, query: &[f32], id: u32) -> f32 {
        let d = self.metric().distance(query, self.row(id as usize));
        if d.is_finite() { d } else { f32::INFINITY }
    }

    /// Keeps in `s.scored` its best `max(4 k, RERANK_MIN)` entries and those within
    /// the rounding margin of the `k`-th best, re-scored from the `f32` rows: the codes
    /// steered the search, the `f32` rows rank its answer (see [`quant::RERANK_MIN`]).
    fn rerank(&self, s: &mut Scratch, k: usize) {
        let n = s.scored.len();
        let Some(c) = &self.p.codes else { return };
        if n == 0 {
            return;
        }
        let cmp = by_distance;
        let r = k.saturating_mul(4).max(quant::RERANK_MIN).min(n);
        if r < n {
            s.scored.select_nth_unstable_by(r - 1, cmp);
        }
        let kk = k.min(r);
        let head = &mut s.scored[..r];
        head.select_nth_unstable_by(kk - 1, cmp);
        let kth = head[kk - 1].0;
        let limit = kth + quant::rerank_margin(c, self.metric(), &s.query) + 1e-4 * kth.abs();
        let mut kept = r;
        for i in r..n {
            if s.scored[i].0 <= limit {
                s.scored.swap(kept, i);
                kept += 1;
            }
        }
        s.scored.truncate(kept);
        for &(_, id) in &s.scored {
            kernels::prefetch(self.row(id as usize));
        }
        for e in s.scored.iter_mut() {
            e.0 = self.score_f32(&s.query, e.1);
        }
    }

    /// Checks `query` and prepares it in `s` for scoring: normalised and padded, and
    /// for an index stored as codes its weights and constant too.
    fn prepare_query(&self, query: &[f32], s: &mut Scratch) -> Result<()> {
        prepare(query, self.dim(), self.metric(), &mut s.query)?;
        if let Some(c) = &self.p.codes {
            s.qbase = quant::prepare_query(c, self.metric(), &s.query, &mut s.qw);
        }
        Ok(())
    }

    /// Asks the cache for item `id`'s stored row (f32 or codes).
    #[inline(always)]
    fn prefetch_item(&self, id: u32) {
        self.prefetch_row(id, false)
    }

    /// Asks the cache for item `id`'s scored row: codes if any, unless `f32`.
    #[inline(always)]
    fn prefetch_row(&self, id: u32, f32: bool) {
        match &self.p.codes {
            Some(c) if !f32 => {
                let a = id as usize * self.stride;
                kernels::prefetch(&c.codes[a..a + self.stride]);
            }
            _ => kernels::prefetch(self.row(id as usize)),
        }
    }

    /// Rows are scattered in memory: while scoring candidate `i`, asks for the row a few
    /// places ahead (`None`: the first few). A hint only: results never depend on it.
    #[inline]
    fn prefetch_ahead(&self, cands: &[u32], i: Option<usize>, f32: bool) {
        const AHEAD: usize = 6;
        match i {
            None => cands
                .iter()
                .take(AHEAD)
                .for_each(|&id| self.prefetch_row(id, f32)),
            Some(i) => {
                if let Some(&next) = cands.get(i + AHEAD) {
                    self.prefetch_row(next, f32);
                }
            }
        }
    }

    /// Computes the distance of every candidate in `s.cands` into `s.scored`.
    fn score_candidates(&self, s: &mut Scratch) {
        self.score_candidates_with(s, false)
    }

    /// [`score_candidates`](Self::score_candidates) from the `f32` rows when `f32` (an
    /// index keeping them beside codes), else from what the walk scores.
    fn score_candidates_with(&self, s: &mut Scratch, f32: bool) {
        let q = Prepared::of(&s.query, &s.qw, s.qbase);
        let (cands, scored) = (&s.cands, &mut s.scored);
        if f32 {
            self.score_each(cands, scored, true, |id| self.score_f32(q.query, id));
        } else {
            scored.clear();
            self.score_ids(q, cands, true, |d, id| scored.push((d, id)));
        }
    }

    /// `scored` := `(score(id), id)` for every id in `cands`, asking for the rows (`f32`
    /// or what the walk scores) a few candidates ahead.
    #[inline(always)]
    fn score_each(
        &self,
        cands: &[u32],
        scored: &mut Vec<(f32, u32)>,
        f32: bool,
        score: impl Fn(u32) -> f32,
    ) {
        scored.clear();
        self.prefetch_ahead(cands, None, f32);
        for (i, &id) in cands.iter().enumerate() {
            self.prefetch_ahead(cands, Some(i), f32);
            scored.push((score(id), id));
        }
    }

    /// Best-first beam search over the neighbour graph from the scored seeds; leaves
    /// the best `ef` items found in `s.scored` and every scored item in `s.cands`.
    /// Items `ok` refuses are walked through (they steer the search) but never kept.
    fn walk_graph(&self, s: &mut Scratch, ef: usize, two_hop: bool, ok: &impl Fn(u32) -> bool) {
        let (graph, deg) = (self.p.graph, self.p.graph_degree);
        let key = heap_key;
        // `frontier`: min-heap of items to expand; `best`: max-heap of the ef nearest.
        let mut frontier = std::mem::take(&mut s.frontier);
        let mut best = std::mem::take(&mut s.best);
        frontier.clear();
        best.clear();
        // Every seed may be expanded; the beam starts with the best `ef` of them (a
        // last leaf can take the forest a little past its seed budget).
        for &(d, id) in &s.scored {
            frontier.push(std::cmp::Reverse(key(d, id)));
        }
        best.extend(top_k(&mut s.scored, ef).iter().map(|&(d, id)| key(d, id)));
        while let Some(std::cmp::Reverse(k)) = frontier.pop() {
            if best.len() >= ef && best.peek().is_some_and(|&w| k > w) {
                break;
            }
            let c = (k as u32) as usize;
            let row = &graph[c * deg..(c + 1) * deg];
            // The next item to expand is probably the frontier's best now: ask for its
            // graph row while this one is scored.
            if let Some(std::cmp::Reverse(next)) = frontier.peek() {
                let n = (*next as u32) as usize;
                kernels::prefetch(&graph[n * deg..(n + 1) * deg]);
            }
            let start = s.cands.len();
            if two_hop {
                self.two_hop_neighbours(s, row, ok);
            } else {
                for &v in row {
                    if v == u32::MAX {
                        break;
                    }
                    if s.visit(v) {
                        s.cands.push(v);
                        self.prefetch_item(v);
                    }
                }
            }
            let q = Prepared::of(&s.query, &s.qw, s.qbase);
            self.score_ids(q, &s.cands[start..], false, |d, v| {
                let kv = key(d, v);
                if admits(&best, ef, kv) {
                    frontier.push(std::cmp::Reverse(kv));
                    if ok(v) {
                        best.push(kv);
                        if best.len() > ef {
                            best.pop();
                        }
                    }
                }
            });
        }
        s.scored.clear();
        s.scored
            .extend(best.drain().map(|k| (key_priority(k), key_item(k))));
        s.frontier = frontier;
        s.best = best;
    }

    /// ACORN-style expansion for selective filters (see [`two_hop`]), into `s.cands`.
    fn two_hop_neighbours(&self, s: &mut Scratch, row: &[u32], ok: &impl Fn(u32) -> bool) {
        let (graph, deg) = (self.p.graph, self.p.graph_degree);
        let start = s.cands.len();
        let mut cands = std::mem::take(&mut s.cands);
        two_hop(
            row,
            |v| &graph[v as usize * deg..(v as usize + 1) * deg],
            ok,
            &mut |v| s.visit(v),
            deg,
            &mut cands,
        );
        for &v in &cands[start..] {
            self.prefetch_item(v);
        }
        s.cands = cands;
    }

    /// Walks all trees best-first until `budget` distinct items are in `s.cands`.
    /// Only items `ok` allows are collected (and counted towards the budget).
    ///
    /// When `greedy`, each tree is first descended straight to the leaf on the query's
    /// side (one projection per level, the far sides queued), tree after tree, and only
    /// then best-first: the cheapest way to a few good graph seeds. Best-first from the
    /// roots alone expands the shallow nodes of every tree before it reaches any leaf.
    fn collect_candidates(
        &self,
        s: &mut Scratch,
        budget: usize,
        greedy: bool,
        ok: &impl Fn(u32) -> bool,
    ) -> Result<()> {
        let p = &self.p;
        // Projections are computed on first use: a walk that meets few pool vectors
        // (a graph search's seeds, a small budget) pays only for those. NaN marks
        // "not yet": a finite query on a finite pool never projects to NaN.
        s.proj.clear();
        s.proj.resize(self.pool_size, f32::NAN);
        s.new_epoch(p.n_items)?;
        s.cands.clear();
        s.heap.clear();
        if greedy {
            for (t, &root) in p.roots.iter().enumerate() {
                let mut key = heap_key(f32::INFINITY, root);
                while key_item(key) & LEAF_FLAG == 0 {
                    let (right, left) = self.children(s, key);
                    let (near, far) = if right > left {
                        (right, left)
                    } else {
                        (left, right)
                    };
                    s.heap.push(far);
                    key = near;
                }
                if self.take_leaf(s, key_item(key), ok) >= budget && t + 1 >= GREEDY_TREES {
                    return Ok(());
                }
            }
        } else {
            s.heap
                .extend(p.roots.iter().map(|&r| heap_key(f32::INFINITY, r)));
        }
        // Best first. A node's nearer child that would be the next to leave the heap
        // anyway (its key at least the heap's largest) is descended into directly:
        // the same visiting order without its push and pop.
        while let Some(mut key) = s.heap.pop() {
            loop {
                let child = key_item(key);
                if child & LEAF_FLAG != 0 {
                    if self.take_leaf(s, child, ok) >= budget {
                        return Ok(());
                    }
                    break;
                }
                let (right, left) = self.children(s, key);
                let (near, far) = if right > left {
                    (right, left)
                } else {
                    (left, right)
                };
                s.heap.push(far);
                if s.heap.peek().is_some_and(|&top| top > near) {
                    s.heap.push(near);
                    break;
                }
                key = near;
            }
        }
        Ok(())
    }

    /// Adds the new, allowed items of leaf `child` (flagged) to `s.cands`; returns
    /// how many candidates there are now.
    #[inline]
    fn take_leaf(&self, s: &mut Scratch, child: u32, ok: &impl Fn(u32) -> bool) -> usize {
        let p = &self.p;
        let l = (child & !LEAF_FLAG) as usize;
        let (a, b) = (p.leaf_offsets[l] as usize, p.leaf_offsets[l + 1] as usize);
        for &id in &p.leaf_ids[a..b] {
            if s.visit(id) && ok(id) {
                s.cands.push(id);
            }
        }
        s.cands.len()
    }

    /// The heap keys of the right and left children of split node `key`: each side's
    /// priority is the smallest margin on the way to it (the query's side positive).
    #[inline]
    fn children(&self, s: &mut Scratch, key: u64) -> (u64, u64) {
        let p = &self.p;
        let stride = self.stride;
        let d = key_priority(key);
        let node = &p.nodes[key_item(key) as usize];
        let pj = node.proj as usize;
        let mut x = s.proj[pj];
        if x.is_nan() {
            x = kernels::dot(&p.pool[pj * stride..(pj + 1) * stride], &s.query);
            s.proj[pj] = x;
        }
        let m = x - node.offset;
        (
            heap_key(d.min(m), node.right),
            heap_key(d.min(-m), node.left),
        )
    }

    /// Exact `k` nearest neighbours by scanning every item, into `s.scored`.
    pub(crate) fn linear_search_in(
        &self,
        query: &[f32],
        k: usize,
        s: &mut Scratch,
    ) -> Result<usize> {
        if k == 0 {
            return Err(Error::InvalidK(0));
        }
        self.prepare_query(query, s)?;
        s.cands.clear();
        s.cands.extend(0..self.len() as u32);
        self.score_candidates_with(s, self.reranks());
        self.rows_to_items(&mut s.scored);
        Ok(top_k(&mut s.scored, k).len())
    }
}

/// The first `n` results left in `s.scored` as neighbours.
pub(crate) fn neighbors(s: &Scratch, n: usize) -> Vec<Neighbor> {
    s.scored[..n]
        .iter()
        .map(|&(distance, id)| Neighbor { id, distance })
        .collect()
}

#[cfg(test)]
mod tests {

    #[test]
    fn two_hops_add_allowed_neighbours_then_those_of_refused_ones_up_to_the_cap() {
        // Items 0..20; even ones allowed. Row of the expanded item: 2, 3, 5, 4, then
        // padding. 3's row: 6, 7, 8, 2; 5's row: 10, 12, 3, 14.
        let rows: Vec<Vec<u32>> = (0..20u32)
            .map(|v| match v {
                3 => vec![6, 7, 8, 2],
                5 => vec![10, 12, 3, 14],
                9 => vec![16, u32::MAX, 18, 18],
                _ => vec![u32::MAX; 4],
            })
            .collect();
        let ok = |v: u32| v.is_multiple_of(2);
        let run = |row: &[u32], cap: usize, seen: &[u32]| {
            let mut visited: Vec<u32> = seen.to_vec();
            let mut visit = |v: u32| {
                let new = !visited.contains(&v);
                visited.push(v);
                new
            };
            let mut out = vec![99];
            two_hop(row, |v| &rows[v as usize], &ok, &mut visit, cap, &mut out);
            (out, visited)
        };
        let row = [2, 3, 5, 4, u32::MAX, 16];
        let (out, visited) = run(&row, 10, &[]);
        // Direct allowed (2, 4) first; then 3's allowed (6, 8; 2 seen), 5's (10, 12, 14);
        // nothing after the padding (16 is never looked at).
        assert_eq!(out, [99, 2, 4, 6, 8, 10, 12, 14]);
        assert!(visited.contains(&3) && visited.contains(&5) && !visited.contains(&16));
        // The cap counts new items only, and may cut a direct or a two-hop run.
        assert_eq!(run(&row, 1, &[]).0, [99, 2]);
        assert_eq!(run(&row, 3, &[]).0, [99, 2, 4, 6]);
        // A refused item already visited is not expanded again; visited items are skipped.
        assert_eq!(run(&row, 10, &[3, 4]).0, [99, 2, 10, 12, 14]);
        // A neighbour's row ends at its padding too.
        assert_eq!(run(&[9], 10, &[]).0, [99, 16]);
        assert_eq!(run(&[u32::MAX, 2], 10, &[]).0, [99]);
    }
    use super::*;
    use crate::filter::bitmap;

    /// A forest of `n_trees` over `n` Gaussian points of `dim` components.
    fn forest_of(n: usize, dim: usize, n_trees: usize, seed: u64) -> crate::Index {
        let data = crate::rng::gaussian_vector(n * dim, false, seed);
        let mut b = crate::IndexBuilder::new(dim, Metric::Euclidean).unwrap();
        b.add_batch(&data).unwrap();
        b.build(&crate::BuildParams {
            n_trees,
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn graph_seeds_are_the_query_side_leaves_of_the_first_trees_in_tree_order() {
        let (n, dim) = (3000, 12);
        let index = forest_of(n, dim, 6, 8);
        let (v, p) = (index.view(), index.parts());
        let stride = p.pool.len() / v.pool_size;
        let mut s = Scratch::default();
        for q in 0..30 {
            let query = crate::rng::gaussian_vector(dim, false, 500 + q);
            v.prepare_query(&query, &mut s).unwrap();
            // Each tree's leaf on the query's side, found node by node.
            let leaf = |t: usize| {
                let mut c = p.roots[t];
                while c & LEAF_FLAG == 0 {
                    let node = &p.nodes[c as usize];
                    let pj = node.proj as usize;
                    let x = kernels::dot(&p.pool[pj * stride..(pj + 1) * stride], &s.query);
                    c = if x > node.offset {
                        node.right
                    } else {
                        node.left
                    };
                }
                let l = (c & !LEAF_FLAG) as usize;
                p.leaf_ids[p.leaf_offsets[l] as usize..p.leaf_offsets[l + 1] as usize].to_vec()
            };
            // The three leaves in tree order, each item once; `first_two` of them from
            // trees 0 and 1.
            let mut want: Vec<u32> = Vec::new();
            let mut first_two = 0;
            for t in 0..3 {
                for id in leaf(t) {
                    if !want.contains(&id) {
                        want.push(id);
                    }
                }
                if t == 1 {
                    first_two = want.len();
                }
            }
            // A budget of one still takes two trees' leaves; one more item than they
            // hold takes the third tree's too, before any best-first step.
            v.collect_candidates(&mut s, 1, true, &|_| true).unwrap();
            assert_eq!(s.cands, want[..first_two], "query {q}");
            v.collect_candidates(&mut s, first_two + 1, true, &|_| true)
                .unwrap();
            assert_eq!(s.cands, want, "query {q}");
            // Without `greedy` the same budget goes best-first from the roots.
            v.collect_candidates(&mut s, 1, false, &|_| true).unwrap();
            assert!(s.cands.len() <= 16, "one leaf");
        }
    }

    #[test]
    fn best_first_candidates_come_in_the_order_of_a_plain_priority_queue() {
        let (n, dim) = (4000, 10);
        let index = forest_of(n, dim, 12, 21);
        let (v, p) = (index.view(), index.parts());
        let stride = p.pool.len() / v.pool_size;
        let mut s = Scratch::default();
        for q in 0..20 {
            let query = crate::rng::gaussian_vector(dim, false, 900 + q);
            v.prepare_query(&query, &mut s).unwrap();
            // Every child of a popped node pushed, the best popped next; new items of
            // each leaf appended until the budget is reached.
            let budget = 300 + 40 * q as usize;
            let mut heap: std::collections::BinaryHeap<u64> = p
                .roots
                .iter()
                .map(|&r| heap_key(f32::INFINITY, r))
                .collect();
            let mut want: Vec<u32> = Vec::new();
            let mut seen = vec![false; n];
            while let Some(key) = heap.pop() {
                let c = key_item(key);
                if c & LEAF_FLAG != 0 {
                    let l = (c & !LEAF_FLAG) as usize;
                    let (a, z) = (p.leaf_offsets[l] as usize, p.leaf_offsets[l + 1] as usize);
                    for &id in &p.leaf_ids[a..z] {
                        if !std::mem::replace(&mut seen[id as usize], true) {
                            want.push(id);
                        }
                    }
                    if want.len() >= budget {
                        break;
                    }
                } else {
                    let node = &p.nodes[c as usize];
                    let pj = node.proj as usize;
                    let x = kernels::dot(&p.pool[pj * stride..(pj + 1) * stride], &s.query);
                    let (d, m) = (key_priority(key), x - node.offset);
                    heap.push(heap_key(d.min(m), node.right));
                    heap.push(heap_key(d.min(-m), node.left));
                }
            }
            v.collect_candidates(&mut s, budget, false, &|_| true)
                .unwrap();
            assert_eq!(s.cands, want, "query {q}");
        }
    }

    #[test]
    fn an_index_of_codes_only_scans_more_allowed_items_before_walking() {
        for (dim, allowed, budget) in [(300, 200, 2), (16, 1000, 20)] {
            let n = 2000;
            let data = crate::rng::gaussian_vector(n * dim, false, 3);
            let mut b = crate::IndexBuilder::new(dim, Metric::Euclidean).unwrap();
            b.add_batch(&data).unwrap();
            let mut f = b.build(&crate::BuildParams::default()).unwrap();
            f.build_graph(&crate::GraphParams::default()).unwrap();
            let codes = f.to_dtype(crate::Dtype::I8).unwrap();
            let both = f.to_dtype(crate::Dtype::I8F32).unwrap();
            assert_eq!(f.view().walks_two_hops(allowed), dim >= 256);
            // Twice the f32 threshold: the f32 rows walk, the codes scan.
            assert!(!f.view().prefers_scan(budget, allowed), "dim {dim}");
            assert!(codes.view().prefers_scan(budget, allowed), "dim {dim}");
            // Codes beside f32 rows scan the f32 rows: as f32.
            assert!(!both.view().prefers_scan(budget, allowed), "dim {dim}");
            // Beyond twice, the codes walk too.
            assert!(
                !codes.view().prefers_scan(budget / 2 - 1, allowed),
                "dim {dim}"
            );
        }
    }

    #[test]
    fn heap_keys_order_by_priority_then_item_and_round_trip() {
        let cases = [
            (-2.5f32, 7u32),
            (0.0, 0),
            (0.0, 1),
            (1e-30, u32::MAX),
            (3.0, 2),
            (f32::INFINITY, 5),
        ];
        for w in cases.windows(2) {
            assert!(heap_key(w[0].0, w[0].1) < heap_key(w[1].0, w[1].1), "{w:?}");
        }
        for (p, i) in cases {
            let k = heap_key(p, i);
            assert_eq!((key_priority(k).to_bits(), key_item(k)), (p.to_bits(), i));
        }
    }

    #[test]
    fn bitmaps_count_and_test_only_the_first_n_bits() {
        let b = bitmap(130, [0, 5, 63, 64, 129, 500]);
        assert_eq!(b.len(), 3);
        assert_eq!(popcount(&b, 130), 5, "id 500 is outside");
        assert_eq!(popcount(&b, 64), 3);
        assert_eq!(popcount(&b, 65), 4);
        assert_eq!(popcount(&b, 129), 4);
        let full = [u64::MAX; 3];
        assert_eq!(popcount(&full, 130), 130, "bits past n are not counted");
        assert_eq!(popcount(&full, 128), 128);
        assert_eq!(
            popcount(&[u64::MAX; 2], 128),
            128,
            "an exact multiple of 64 reads no extra word"
        );
        assert!(bit(&b, 63) && bit(&b, 64) && bit(&b, 129) && !bit(&b, 1) && !bit(&b, 65));
    }

    #[test]
    fn the_beam_takes_anything_until_full_then_only_improvements() {
        let mut beam = std::collections::BinaryHeap::new();
        assert!(
            admits(&beam, 2, heap_key(9.0, 1)),
            "an empty beam takes anything"
        );
        beam.push(heap_key(1.0, 1));
        assert!(
            admits(&beam, 2, heap_key(9.0, 2)),
            "a beam below its width takes a worse item"
        );
        beam.push(heap_key(9.0, 2));
        assert!(
            !admits(&beam, 2, heap_key(9.5, 3)),
            "a full beam refuses a worse item"
        );
        assert!(
            admits(&beam, 2, heap_key(5.0, 3)),
            "a full beam takes a better item"
        );
        assert!(!admits(&beam, 1, heap_key(9.5, 3)));
        assert!(fell_short(9, 10) && !fell_short(10, 10) && !fell_short(11, 10));
    }

    #[test]
    fn graph_seeds_are_a_quarter_of_the_beam_at_least_64() {
        assert_eq!(graph_seeds(400), 100);
        assert_eq!(graph_seeds(1000), 250);
        assert_eq!(graph_seeds(100), 64);
        assert_eq!(graph_seeds(30), 30);
    }

    #[test]
    fn top_k_keeps_the_k_smallest_sorted_with_ties_by_id() {
        let mut v = vec![(3.0, 1), (1.0, 9), (2.0, 4), (1.0, 2), (5.0, 0)];
        assert_eq!(top_k(&mut v.clone(), 3), &[(1.0, 2), (1.0, 9), (2.0, 4)]);
        assert_eq!(top_k(&mut v.clone(), 1), &[(1.0, 2)]);
        assert_eq!(top_k(&mut v.clone(), 5).len(), 5);
        assert_eq!(
            top_k(&mut v, 9),
            &[(1.0, 2), (1.0, 9), (2.0, 4), (3.0, 1), (5.0, 0)]
        );
        assert!(top_k(&mut [], 3).is_empty());
        // Both paths (a sorted prefix for small k, selection above) against a full sort,
        // with many ties.
        let mut r = crate::rng::Rng::new(5);
        for n in [1usize, 10, 33, 200, 1000] {
            let v: Vec<(f32, u32)> = (0..n as u32)
                .map(|i| ((r.uniform() * 20.0).floor() as f32, i * 7 % 1009))
                .collect();
            let mut sorted = v.clone();
            sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            for k in [1, 2, 10, SMALL_K, SMALL_K + 1, 100, n] {
                let want = &sorted[..k.min(n)];
                assert_eq!(top_k(&mut v.clone(), k), want, "n {n} k {k}");
            }
        }
    }

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
