//! The in-memory view of a live index: the base with its tombstones, plus the delta
//! (items added since the base was written), and searching them as one.

use std::collections::HashMap;

use panns_core::{
    BuildParams, Filter, Index, IndexBuilder, Metric, SearchParams, SearchStats, padded_dim,
};

use super::base::Base;
use crate::error::{Error, Result};

/// Items added since the base was written: exact-scanned while few, with their own
/// small [`Index`] once more than `index_threshold` are not covered by one.
pub(crate) struct Delta {
    dim: usize,
    stride: usize,
    metric: Metric,
    /// Label of every row ever added (dead rows included).
    labels: Vec<u64>,
    /// Prepared rows (`stride` floats each, unit length under the angular metric).
    rows: Vec<f32>,
    /// Bit set per dead (removed or replaced) row.
    dead: Vec<u64>,
    /// Live rows by label.
    live: HashMap<u64, u32>,
    /// An index over the first `covered` rows.
    index: Option<(Index, usize)>,
}

impl Delta {
    fn new(dim: usize, metric: Metric) -> Delta {
        Delta {
            dim,
            stride: padded_dim(dim),
            metric,
            labels: Vec::new(),
            rows: Vec::new(),
            dead: Vec::new(),
            live: HashMap::new(),
            index: None,
        }
    }

    /// Live rows.
    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }

    fn row(&self, r: usize) -> &[f32] {
        &self.rows[r * self.stride..(r + 1) * self.stride]
    }

    fn is_dead(&self, r: usize) -> bool {
        self.dead[r / 64] >> (r % 64) & 1 != 0
    }

    fn kill(&mut self, label: u64) -> bool {
        match self.live.remove(&label) {
            Some(r) => {
                self.dead[r as usize / 64] |= 1 << (r % 64);
                true
            }
            None => false,
        }
    }

    fn push(&mut self, label: u64, row: &[f32]) {
        self.kill(label);
        let r = self.labels.len();
        self.labels.push(label);
        self.rows.extend_from_slice(row);
        if self.dead.len() < (r + 1).div_ceil(64) {
            self.dead.push(0);
        }
        self.live.insert(label, r as u32);
    }

    /// Rebuilds the delta's own index when more than `threshold` rows are outside it.
    fn maybe_index(&mut self, threshold: usize, params: &BuildParams) -> Result<()> {
        let covered = self.index.as_ref().map_or(0, |(_, c)| *c);
        let n = self.labels.len();
        if n - covered <= threshold || self.live.is_empty() {
            return Ok(());
        }
        let mut b = IndexBuilder::new(self.dim, self.metric)?;
        let mut flat = Vec::with_capacity(n * self.dim);
        for r in 0..n {
            flat.extend_from_slice(&self.row(r)[..self.dim]);
        }
        b.add_batch(&flat)?;
        let index = b.build(params)?;
        self.index = Some((index, n));
        Ok(())
    }

    /// The `k` nearest live rows to the prepared query `q` as (distance, label), only
    /// labels `allow` accepts when given.
    fn search(
        &self,
        query: &[f32],
        q: &[f32],
        params: &SearchParams,
        allow: Option<&LabelFilter<'_>>,
    ) -> Result<Vec<(f32, u64)>> {
        let mut out: Vec<(f32, u64)> = Vec::new();
        let covered = match &self.index {
            Some((index, covered)) => {
                let pred = |r: u32| {
                    !self.is_dead(r as usize) && allow.is_none_or(|f| f(self.labels[r as usize]))
                };
                let filter = match allow {
                    None => Filter::Deny(&self.dead),
                    Some(_) => Filter::Predicate(&pred),
                };
                let (hits, _) = index.search_filtered(query, params, &filter)?;
                out.extend(
                    hits.iter()
                        .map(|h| (h.distance, self.labels[h.id as usize])),
                );
                *covered
            }
            None => 0,
        };
        for r in covered..self.labels.len() {
            if !self.is_dead(r) && allow.is_none_or(|f| f(self.labels[r])) {
                let d = self.metric.distance(q, self.row(r));
                out.push((if d.is_nan() { f32::INFINITY } else { d }, self.labels[r]));
            }
        }
        sort_truncate(&mut out, params.k);
        Ok(out)
    }
}

impl Delta {
    /// The `k` nearest live rows among those holding one of `labels` (exact: only the
    /// listed rows are scored), as (distance, label).
    fn search_labels(&self, q: &[f32], labels: &[u64], k: usize) -> Vec<(f32, u64)> {
        let mut out: Vec<(f32, u64)> = labels
            .iter()
            .filter_map(|l| self.live.get(l).map(|&r| (r, *l)))
            .map(|(r, l)| {
                let d = self.metric.distance(q, self.row(r as usize));
                (if d.is_nan() { f32::INFINITY } else { d }, l)
            })
            .collect();
        out.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        out.dedup_by_key(|e| e.1);
        sort_truncate(&mut out, k);
        out
    }
}

/// A predicate on labels: true for the items a filtered search may return.
pub type LabelFilter<'a> = dyn Fn(u64) -> bool + Sync + 'a;

fn sort_truncate(v: &mut Vec<(f32, u64)>, k: usize) {
    v.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    v.truncate(k);
}

/// Checks one vector as the core does and writes it prepared (padded, unit length under
/// the angular metric) into `out`; the error text says what is wrong.
pub(crate) fn prepare(
    v: &[f32],
    dim: usize,
    metric: Metric,
    out: &mut Vec<f32>,
) -> std::result::Result<(), String> {
    if v.len() != dim {
        return Err(format!("{} values, the index has dimension {dim}", v.len()));
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(format!("component {i} is {} (values must be finite)", v[i]));
    }
    if let Some(i) = v.iter().position(|x| x.abs() > panns_core::MAX_COMPONENT) {
        return Err(format!(
            "component {i} is {} (values must be at most {:e} in magnitude)",
            v[i],
            panns_core::MAX_COMPONENT
        ));
    }
    out.clear();
    out.extend_from_slice(v);
    out.resize(padded_dim(dim), 0.0);
    if metric == Metric::Angular {
        let n = v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
        if n == 0.0 {
            return Err("a zero vector has no direction (angular metric)".into());
        }
        out.iter_mut().for_each(|x| *x = (*x as f64 / n) as f32);
    }
    Ok(())
}

/// Base minus tombstones plus delta: what a live index holds at one commit.
pub(crate) struct State {
    pub(crate) dim: usize,
    pub(crate) metric: Metric,
    pub(crate) base: Option<Base>,
    /// Bit set per removed (or replaced) base item.
    pub(crate) tombs: Vec<u64>,
    pub(crate) n_tombs: usize,
    pub(crate) delta: Delta,
    /// Parameters of the delta's own index.
    pub(crate) delta_params: BuildParams,
}

impl State {
    pub(crate) fn new(
        dim: usize,
        metric: Metric,
        base: Option<Base>,
        params: &BuildParams,
    ) -> State {
        let n = base.as_ref().map_or(0, |b| b.index.len());
        State {
            dim,
            metric,
            base,
            tombs: vec![0; n.div_ceil(64)],
            n_tombs: 0,
            delta: Delta::new(dim, metric),
            delta_params: BuildParams {
                threads: 0,
                ..params.clone()
            },
        }
    }

    /// Items in the base file (tombstoned ones included).
    pub(crate) fn base_len(&self) -> usize {
        self.base.as_ref().map_or(0, |b| b.index.len())
    }

    /// Live items.
    pub(crate) fn len(&self) -> usize {
        self.base_len() - self.n_tombs + self.delta.len()
    }

    /// The base item holding `label`, if it is not tombstoned.
    fn base_id(&self, label: u64) -> Option<u32> {
        let id = self.base.as_ref()?.labels.id(label)?;
        (self.tombs[id as usize / 64] >> (id % 64) & 1 == 0).then_some(id)
    }

    fn tomb(&mut self, id: u32) {
        self.tombs[id as usize / 64] |= 1 << (id % 64);
        self.n_tombs += 1;
    }

    /// Adds or replaces `label` with the prepared `row`.
    pub(crate) fn add(&mut self, label: u64, row: &[f32]) {
        if let Some(id) = self.base_id(label) {
            self.tomb(id);
        }
        self.delta.push(label, row);
    }

    /// Removes `label`; false if it is not held.
    pub(crate) fn remove(&mut self, label: u64) -> bool {
        if self.delta.kill(label) {
            return true;
        }
        match self.base_id(label) {
            Some(id) => {
                self.tomb(id);
                true
            }
            None => false,
        }
    }

    /// Builds the delta's index if it has grown past `threshold` unindexed rows.
    pub(crate) fn settle(&mut self, threshold: usize) -> Result<()> {
        let params = self.delta_params.clone();
        self.delta.maybe_index(threshold, &params)
    }

    /// One more than the largest label ever seen in this generation (0 if none).
    pub(crate) fn next_label(&self) -> u64 {
        let base = self.base.as_ref().and_then(|b| match &b.labels {
            super::base::Labels::Identity(n) => n.checked_sub(1).map(|m| m as u64),
            super::base::Labels::Explicit { list, .. } => list.iter().copied().max(),
        });
        let delta = self.delta.labels.iter().copied().max();
        base.max(delta).map_or(0, |m| m.saturating_add(1))
    }

    /// True if `label` is held.
    pub(crate) fn contains(&self, label: u64) -> bool {
        self.delta.live.contains_key(&label) || self.base_id(label).is_some()
    }

    /// The stored vector of `label` (unit length under the angular metric).
    pub(crate) fn get(&self, label: u64) -> Option<Vec<f32>> {
        if let Some(&r) = self.delta.live.get(&label) {
            return Some(self.delta.row(r as usize)[..self.dim].to_vec());
        }
        let id = self.base_id(label)?;
        let base = self.base.as_ref()?;
        base.index.vector(id as usize).ok().map(|v| v.into_owned())
    }

    /// Every live item as (label, vector), base items first in id order.
    pub(crate) fn items(&self) -> impl Iterator<Item = (u64, std::borrow::Cow<'_, [f32]>)> {
        let base = self.base.iter().flat_map(move |b| {
            (0..b.index.len() as u32)
                .filter(move |&id| self.tombs[id as usize / 64] >> (id % 64) & 1 == 0)
                .map(move |id| {
                    let v = b.index.vector(id as usize).expect("id in range");
                    (b.labels.label(id), v)
                })
        });
        let delta = (0..self.delta.labels.len())
            .filter(move |&r| !self.delta.is_dead(r))
            .map(move |r| {
                let v = std::borrow::Cow::Borrowed(&self.delta.row(r)[..self.dim]);
                (self.delta.labels[r], v)
            });
        base.chain(delta)
    }

    /// Checks `k` and prepares `query` (unit length under the angular metric).
    fn prepared(&self, query: &[f32], params: &SearchParams) -> Result<Vec<f32>> {
        if params.k == 0 {
            return Err(panns_core::Error::InvalidK(0).into());
        }
        let mut q = Vec::new();
        prepare(query, self.dim, self.metric, &mut q)
            .map_err(|detail| Error::invalid(format!("query: {detail}")))?;
        Ok(q)
    }

    /// The `k` nearest live items whose label is listed in `labels` (unknown and removed
    /// labels match nothing; duplicates are allowed). The base is searched with an
    /// allow-bitmap of its listed live items, so the core's planner sees how many pass
    /// (an exact scan of them when few do); the listed delta rows are scored exactly.
    pub(crate) fn search_labels(
        &self,
        query: &[f32],
        params: &SearchParams,
        labels: &[u64],
    ) -> Result<(Vec<(u64, f32)>, SearchStats)> {
        let q = self.prepared(query, params)?;
        let mut all: Vec<(f32, u64)> = Vec::new();
        let mut stats = SearchStats::default();
        if let Some(b) = &self.base {
            let mut bits = vec![0u64; b.index.len().div_ceil(64)];
            let mut any = false;
            for id in labels.iter().filter_map(|&l| self.base_id(l)) {
                bits[id as usize / 64] |= 1 << (id % 64);
                any = true;
            }
            if any {
                let (hits, s) = b
                    .index
                    .search_filtered(query, params, &Filter::Allow(&bits))?;
                stats = s;
                all.extend(hits.iter().map(|h| (h.distance, b.labels.label(h.id))));
            }
        }
        all.extend(self.delta.search_labels(&q, labels, params.k));
        sort_truncate(&mut all, params.k);
        Ok((all.into_iter().map(|(d, l)| (l, d)).collect(), stats))
    }

    /// The `k` nearest live items: the base searched with its tombstones denied, merged
    /// with the delta. The stats are the base search's (default without a base).
    pub(crate) fn search(
        &self,
        query: &[f32],
        params: &SearchParams,
        allow: Option<&LabelFilter<'_>>,
    ) -> Result<(Vec<(u64, f32)>, SearchStats)> {
        let q = self.prepared(query, params)?;
        let mut all: Vec<(f32, u64)> = Vec::new();
        let mut stats = SearchStats::default();
        if let Some(b) = &self.base
            && self.n_tombs < b.index.len()
        {
            let pred = |id: u32| {
                self.tombs[id as usize / 64] >> (id % 64) & 1 == 0
                    && allow.is_some_and(|f| f(b.labels.label(id)))
            };
            let (hits, s) = if allow.is_some() {
                b.index
                    .search_filtered(query, params, &Filter::Predicate(&pred))?
            } else if self.n_tombs == 0 {
                b.index.search_with_stats(query, params)?
            } else {
                b.index
                    .search_filtered(query, params, &Filter::Deny(&self.tombs))?
            };
            stats = s;
            all.extend(hits.iter().map(|h| (h.distance, b.labels.label(h.id))));
        }
        if self.delta.len() > 0 {
            all.extend(self.delta.search(query, &q, params, allow)?);
        }
        sort_truncate(&mut all, params.k);
        Ok((all.into_iter().map(|(d, l)| (l, d)).collect(), stats))
    }
}
