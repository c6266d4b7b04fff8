//! The index's in-memory layout, shared by owned indexes and memory-mapped files.
//!
//! An index is a handful of flat arrays ([`IndexParts`]); nothing in them is a pointer,
//! so the same arrays can live in `Vec`s or be borrowed straight from a mapped file.
//! [`IndexView::new`] checks every length, child reference, leaf range and id before
//! the search code trusts them, so hostile data yields an [`Error::Corrupt`], never
//! a panic, an endless loop or undefined behaviour.

use crate::quant::{Codes, Dtype};
use crate::{Error, MAX_DIM, MAX_ITEMS, Metric, Result};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Flag bit of a child reference: set for a leaf (index into the leaf table),
/// clear for an inner node (index into the node array).
pub const LEAF_FLAG: u32 = 1 << 31;

/// Row stride in floats for a dimension: rows are padded with zeros to a multiple
/// of 16 floats (64 bytes) so every row starts cache-line aligned.
pub fn padded_dim(dim: usize) -> usize {
    dim.div_ceil(16) * 16
}

/// One inner node of a tree: split on pool vector `proj` at `offset`.
///
/// A point `x` goes right when `pool[proj]·x >= offset`, else left. `left` and
/// `right` are child references (see [`LEAF_FLAG`]). 16 bytes, little-endian on disk.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct Node {
    /// Index of the projection vector in the shared pool.
    pub proj: u32,
    /// Split threshold on the projection.
    pub offset: f32,
    /// Child reference for projections below `offset`.
    pub left: u32,
    /// Child reference for projections at or above `offset`.
    pub right: u32,
}

/// Borrowed arrays making up an index. See `docs/format.md` for the file layout.
#[derive(Clone, Copy, Debug)]
pub struct IndexParts<'a> {
    /// Distance metric (vectors are stored unit-normalised for `Angular`).
    pub metric: Metric,
    /// Number of components of a vector.
    pub dim: usize,
    /// Number of items.
    pub n_items: usize,
    /// `n_items` rows of [`padded_dim`]`(dim)` floats; empty when the vectors are
    /// stored as `codes` only ([`Dtype::I8`]).
    pub vectors: &'a [f32],
    /// The vectors stored as 8-bit codes, instead of `vectors` ([`Dtype::I8`]) or
    /// beside them ([`Dtype::I8F32`]); `None` for `f32` vectors.
    pub codes: Option<Codes<'a>>,
    /// Projection pool: `pool_size` rows of `padded_dim(dim)` floats.
    pub pool: &'a [f32],
    /// Inner nodes of all trees, each tree in pre-order.
    pub nodes: &'a [Node],
    /// One child reference per tree: its root.
    pub roots: &'a [u32],
    /// `n_leaves + 1` ascending offsets into `leaf_ids`; leaf `i` is
    /// `leaf_ids[leaf_offsets[i]..leaf_offsets[i + 1]]`.
    pub leaf_offsets: &'a [u32],
    /// The rows (item ids when `row_ids` is empty) of all leaves.
    pub leaf_ids: &'a [u32],
    /// Optional neighbour graph: `n_items * graph_degree` rows, row `i` holding the
    /// neighbours of row `i` nearest first, padded with `u32::MAX`. Empty when absent.
    pub graph: &'a [u32],
    /// Neighbours per graph row (0 when there is no graph).
    pub graph_degree: usize,
    /// The item id stored in each row, when rows are not in id order (a build stores
    /// them in the first tree's leaf order, so near items sit in near rows); empty:
    /// row `i` holds item `i`. Vectors, codes, leaf entries and graph entries all
    /// count rows; searches, filters and [`crate::Index::vector`] use item ids.
    pub row_ids: &'a [u32],
    /// The inverse of `row_ids`: the row of each item id (empty when `row_ids` is).
    pub id_rows: &'a [u32],
}

/// Every tree's leaves hold every item exactly once (as the builder makes them), so a
/// search always finds `min(k, n)` items. Structure is already checked: this walks each
/// tree from its root. Cost: one pass over nodes and leaf ids, `4 n` bytes of stamps.
fn check_coverage(p: &IndexParts) -> Result<()> {
    let n = p.n_items;
    // Zeroed lazily by the OS: only the pages of ids present in the leaves are touched.
    let mut stamp = crate::scratch::zeroed_u32(n)?;
    let mut stack = Vec::new();
    for (t, &root) in p.roots.iter().enumerate() {
        let mark = t as u32 + 1;
        let mut count = 0usize;
        stack.clear();
        stack.push(root);
        while let Some(c) = stack.pop() {
            if c & LEAF_FLAG != 0 {
                let l = (c & !LEAF_FLAG) as usize;
                let ids = &p.leaf_ids[p.leaf_offsets[l] as usize..p.leaf_offsets[l + 1] as usize];
                for &id in ids {
                    let st = &mut stamp[id as usize];
                    if *st == mark {
                        return Err(corrupt(format!("item {id} appears twice in tree {t}")));
                    }
                    *st = mark;
                }
                count += ids.len();
            } else {
                let node = &p.nodes[c as usize];
                stack.extend([node.left, node.right]);
            }
        }
        if count != n {
            return Err(corrupt(format!(
                "tree {t} holds {count} of the {n} items in its leaves"
            )));
        }
    }
    Ok(())
}

impl IndexParts<'_> {
    /// How the vectors are stored.
    pub fn dtype(&self) -> Dtype {
        match (&self.codes, self.vectors.is_empty()) {
            (None, _) => Dtype::F32,
            (Some(_), true) => Dtype::I8,
            (Some(_), false) => Dtype::I8F32,
        }
    }

    /// Checks every length, reference and id (what [`crate::Index::from_storage`]
    /// checks): hostile data yields [`Error::Corrupt`], never a panic.
    pub fn validate(&self) -> Result<()> {
        IndexView::new(*self).map(|_| ())
    }

    /// Checks every stored vector value (reads all of them, like a checksum): finite,
    /// at most [`crate::MAX_COMPONENT`] in magnitude, zero in the row padding, and of
    /// unit length under the angular metric. Searches never trust these values anyway
    /// (a non-finite distance scores +infinity), but a damaged row may still rank
    /// wrongly; this finds it. Requires [`validate`](Self::validate) to have passed.
    pub fn check_values(&self) -> Result<()> {
        let stride = padded_dim(self.dim);
        if let Some(c) = &self.codes {
            check_code_values(c, self.dim, self.metric, self.row_ids)?;
            if !self.vectors.is_empty() {
                check_codes_match(c, self.vectors, self.dim, self.row_ids)?;
            }
        }
        for (r, row) in self.vectors.chunks_exact(stride).enumerate() {
            let i = Stored(self.row_ids, r);
            let (v, pad) = row.split_at(self.dim);
            if let Some(j) = v
                .iter()
                .position(|x| !x.is_finite() || x.abs() > crate::MAX_COMPONENT)
            {
                return Err(corrupt(format!(
                    "stored vector {i} has value {} at component {j}",
                    v[j]
                )));
            }
            if let Some(j) = pad.iter().position(|&x| x != 0.0) {
                return Err(corrupt(format!(
                    "stored vector {i} has {} in its padding (component {}), which must be 0",
                    pad[j],
                    self.dim + j
                )));
            }
            if self.metric == Metric::Angular {
                let n2: f64 = v.iter().map(|&x| x as f64 * x as f64).sum();
                if (n2 - 1.0).abs() > 1e-3 {
                    return Err(corrupt(format!(
                        "stored vector {i} has length {:.6}; the angular metric stores unit vectors",
                        n2.sqrt()
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Names the vector in row `.1` for messages (given `row_ids` as `.0`): its item id,
/// and the row when they differ. Formatted only when a message is made.
struct Stored<'a>(&'a [u32], usize);

impl std::fmt::Display for Stored<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.1;
        match self.0.get(r) {
            Some(&id) if id as usize != r => write!(f, "{id} (row {r})"),
            _ => write!(f, "{r}"),
        }
    }
}

/// [`IndexParts::check_values`] for codes: zero padding, and every stored per-item
/// term equal to the one its codes give (a damaged code or term is found).
fn check_code_values(c: &Codes<'_>, dim: usize, metric: Metric, row_ids: &[u32]) -> Result<()> {
    let stride = padded_dim(dim);
    for (r, (row, &aux)) in c.codes.chunks_exact(stride).zip(c.aux).enumerate() {
        let i = Stored(row_ids, r);
        if let Some(j) = row[dim..].iter().position(|&x| x != 0) {
            return Err(corrupt(format!(
                "stored vector {i} has code {} in its padding (component {}), which must be 0",
                row[dim + j],
                dim + j
            )));
        }
        let want = crate::quant::item_aux(row, c.lo, c.step, dim, metric);
        let close = want == aux || (want - aux).abs() <= 1e-4 * want.abs().max(1e-30);
        if !close {
            return Err(corrupt(format!(
                "stored vector {i} has norm term {aux}, but its codes give {want}"
            )));
        }
    }
    Ok(())
}

/// Under [`Dtype::I8F32`]: every code within half a step (plus rounding) of the `f32`
/// value beside it, so the walk is steered by the vectors the results are ranked by.
/// (The vectors' own values are checked by the caller.)
fn check_codes_match(c: &Codes<'_>, vectors: &[f32], dim: usize, row_ids: &[u32]) -> Result<()> {
    let stride = padded_dim(dim);
    let mut decoded = vec![0f32; dim];
    for (r, row) in vectors.chunks_exact(stride).enumerate() {
        let i = Stored(row_ids, r);
        // Angular codes encode the unit rows (the norm term only rescales decoding),
        // so compare without it.
        crate::quant::decode(c, r, dim, Metric::Dot, &mut decoded);
        for j in 0..dim {
            let tol = c.step[j] * 0.5 + 1e-5 * (row[j].abs() + c.lo[j].abs() + c.step[j] * 255.0);
            let off = (decoded[j] - row[j]).abs();
            if off.is_nan() || off > tol {
                return Err(corrupt(format!(
                    "stored vector {i} has value {} at component {j}, but its code gives {}",
                    row[j], decoded[j]
                )));
            }
        }
    }
    Ok(())
}

/// Checks the lengths and ranges of vectors stored as codes (not the code bytes);
/// `vectors` must be empty ([`Dtype::I8`]) or hold every row ([`Dtype::I8F32`]).
fn check_codes(p: &IndexParts<'_>, c: &Codes<'_>, stride: usize, rows: usize) -> Result<()> {
    if !p.vectors.is_empty() && p.vectors.len() != rows {
        return Err(corrupt(format!(
            "vector section beside the codes holds {} floats, expected {} items x {stride} = {rows}",
            p.vectors.len(),
            p.n_items
        )));
    }
    if c.codes.len() != rows {
        return Err(corrupt(format!(
            "code section holds {} bytes, expected {} items x {stride} = {rows}",
            c.codes.len(),
            p.n_items
        )));
    }
    for (name, a) in [("lo", c.lo), ("step", c.step)] {
        if a.len() != stride {
            return Err(corrupt(format!(
                "code range {name} holds {} floats, expected {stride}",
                a.len()
            )));
        }
        if let Some(j) = a
            .iter()
            .position(|x| !x.is_finite() || x.abs() > crate::MAX_COMPONENT)
        {
            return Err(corrupt(format!(
                "code range {name} has {} at component {j}",
                a[j]
            )));
        }
        if let Some(j) = a[p.dim..].iter().position(|&x| x != 0.0) {
            return Err(corrupt(format!(
                "code range {name} has {} in its padding (component {}), which must be 0",
                a[p.dim + j],
                p.dim + j
            )));
        }
    }
    if let Some(j) = c.step.iter().position(|&x| x < 0.0) {
        return Err(corrupt(format!(
            "code step of component {j} is negative: {}",
            c.step[j]
        )));
    }
    if let Some(j) =
        (0..p.dim).find(|&j| (c.lo[j] + 255.0 * c.step[j]).abs() > crate::MAX_COMPONENT * 2.0)
    {
        return Err(corrupt(format!(
            "code range of component {j} exceeds the largest value"
        )));
    }
    if c.aux.len() != p.n_items {
        return Err(corrupt(format!(
            "code norm terms hold {} floats, expected one per item ({})",
            c.aux.len(),
            p.n_items
        )));
    }
    // One float per item: cheap to check at open, and a term out of its range could
    // make a damaged item score 0 (win) instead of +infinity.
    let valid = |a: f32| match p.metric {
        Metric::Euclidean => a.is_finite() && a >= 0.0,
        Metric::Angular => a > 0.0, // +infinity: decodes to zero (never wins)
        Metric::Dot => a == 0.0,
    };
    if let Some(r) = c.aux.iter().position(|&a| !valid(a)) {
        return Err(corrupt(format!(
            "stored vector {} has norm term {}, out of range for the {} metric",
            Stored(p.row_ids, r),
            c.aux[r],
            p.metric
        )));
    }
    Ok(())
}

/// `row_ids` and `id_rows` are both empty, or both hold `n_items` entries below
/// `n_items` with `id_rows[row_ids[r]] == r` for every row: then each is a permutation
/// and the other's inverse (one pass, no extra memory).
fn check_row_ids(p: &IndexParts) -> Result<()> {
    let n = p.n_items;
    if p.row_ids.is_empty() && p.id_rows.is_empty() {
        return Ok(());
    }
    if p.row_ids.len() != n || p.id_rows.len() != n {
        return Err(corrupt(format!(
            "row ids hold {} and id rows {} entries, expected {n} each",
            p.row_ids.len(),
            p.id_rows.len()
        )));
    }
    if let Some(i) = p.id_rows.iter().position(|&r| r as usize >= n) {
        return Err(corrupt(format!(
            "item {i} is stored in row {} of {n}",
            p.id_rows[i]
        )));
    }
    for (r, &id) in p.row_ids.iter().enumerate() {
        if id as usize >= n || p.id_rows[id as usize] as usize != r {
            return Err(corrupt(format!(
                "row {r} holds item {id}, which the id rows do not place there"
            )));
        }
    }
    Ok(())
}

/// A validated, searchable view of an index's parts (what every search runs on).
#[derive(Clone, Copy, Debug)]
pub(crate) struct IndexView<'a> {
    pub(crate) p: IndexParts<'a>,
    pub(crate) stride: usize,
    pub(crate) pool_size: usize,
}

fn corrupt(msg: impl Into<String>) -> Error {
    Error::Corrupt(msg.into())
}

impl<'a> IndexView<'a> {
    /// Checks every length, reference and id in `parts` and returns a view that
    /// the search code can trust. Cost: one pass over nodes, leaves and the pool.
    pub(crate) fn new(parts: IndexParts<'a>) -> Result<Self> {
        let p = parts;
        if p.dim == 0 || p.dim > MAX_DIM {
            return Err(Error::InvalidDimension(p.dim));
        }
        if p.n_items == 0 {
            return Err(Error::Empty);
        }
        if p.n_items > MAX_ITEMS {
            return Err(Error::TooManyItems(p.n_items));
        }
        let stride = padded_dim(p.dim);
        let want = p
            .n_items
            .checked_mul(stride)
            .ok_or_else(|| corrupt("vector section size overflows"))?;
        if let Some(c) = &p.codes {
            check_codes(&p, c, stride, want)?;
        } else if p.vectors.len() != want {
            return Err(corrupt(format!(
                "vector section holds {} floats, expected {} items x {} = {}",
                p.vectors.len(),
                p.n_items,
                stride,
                want
            )));
        }
        if p.pool.is_empty() || !p.pool.len().is_multiple_of(stride) {
            return Err(corrupt(format!(
                "projection pool holds {} floats, not a positive multiple of the row stride {stride}",
                p.pool.len()
            )));
        }
        if let Some(i) = p.pool.iter().position(|x| !x.is_finite()) {
            return Err(corrupt(format!(
                "projection pool value {i} is {}",
                p.pool[i]
            )));
        }
        let pool_size = p.pool.len() / stride;
        if p.roots.is_empty() {
            return Err(corrupt("no trees"));
        }
        if p.nodes.len() >= LEAF_FLAG as usize {
            return Err(corrupt(format!("{} nodes is too many", p.nodes.len())));
        }
        // Leaf table.
        let lo = p.leaf_offsets;
        if lo.is_empty() || lo[0] != 0 {
            return Err(corrupt("leaf offsets must start at 0"));
        }
        let n_leaves = lo.len() - 1;
        if n_leaves >= LEAF_FLAG as usize {
            return Err(corrupt(format!("{n_leaves} leaves is too many")));
        }
        if let Some(i) = lo.windows(2).position(|w| w[0] > w[1]) {
            return Err(corrupt(format!(
                "leaf offsets decrease at leaf {i}: {} > {}",
                lo[i],
                lo[i + 1]
            )));
        }
        if lo[n_leaves] as usize != p.leaf_ids.len() {
            return Err(corrupt(format!(
                "last leaf offset {} differs from the {} leaf ids",
                lo[n_leaves],
                p.leaf_ids.len()
            )));
        }
        if let Some(i) = p.leaf_ids.iter().position(|&id| id as usize >= p.n_items) {
            return Err(corrupt(format!(
                "leaf id {} at position {i} is not below the item count {}",
                p.leaf_ids[i], p.n_items
            )));
        }
        if p.graph_degree == 0 {
            if !p.graph.is_empty() {
                return Err(corrupt("graph entries present but graph degree is 0"));
            }
        } else {
            if p.graph_degree > crate::MAX_GRAPH_DEGREE {
                return Err(corrupt(format!(
                    "graph degree {} is too large",
                    p.graph_degree
                )));
            }
            if p.n_items.checked_mul(p.graph_degree) != Some(p.graph.len()) {
                return Err(corrupt(format!(
                    "graph holds {} ids, expected {} items x {} neighbours",
                    p.graph.len(),
                    p.n_items,
                    p.graph_degree
                )));
            }
            if let Some(i) = p
                .graph
                .iter()
                .position(|&id| id != u32::MAX && id as usize >= p.n_items)
            {
                return Err(corrupt(format!(
                    "graph entry {i} names item {} of {}",
                    p.graph[i], p.n_items
                )));
            }
        }
        // Every node and leaf is referenced exactly once, children come after their
        // parent (so every path is finite and the search touches each at most once).
        let mut node_seen = vec![false; p.nodes.len()];
        let mut leaf_seen = vec![false; n_leaves];
        let what = |parent: Option<usize>, tree: usize| match parent {
            Some(i) => format!("node {i}"),
            None => format!("root of tree {tree}"),
        };
        let mut claim = |child: u32, parent: Option<usize>, tree: usize| -> Result<()> {
            if child & LEAF_FLAG != 0 {
                let l = (child & !LEAF_FLAG) as usize;
                let seen = leaf_seen.get_mut(l).ok_or_else(|| {
                    corrupt(format!(
                        "{} refers to leaf {l} of {n_leaves}",
                        what(parent, tree)
                    ))
                })?;
                if std::mem::replace(seen, true) {
                    return Err(corrupt(format!("leaf {l} is referenced twice")));
                }
            } else {
                let c = child as usize;
                if parent.is_some_and(|par| c <= par) {
                    return Err(corrupt(format!(
                        "{} refers back to node {c}",
                        what(parent, tree)
                    )));
                }
                let seen = node_seen.get_mut(c).ok_or_else(|| {
                    corrupt(format!(
                        "{} refers to node {c} of {}",
                        what(parent, tree),
                        p.nodes.len()
                    ))
                })?;
                if std::mem::replace(seen, true) {
                    return Err(corrupt(format!("node {c} is referenced twice")));
                }
            }
            Ok(())
        };
        for (t, &r) in p.roots.iter().enumerate() {
            claim(r, None, t)?;
        }
        for (i, n) in p.nodes.iter().enumerate() {
            if n.proj as usize >= pool_size {
                return Err(corrupt(format!(
                    "node {i} uses pool vector {} of {pool_size}",
                    n.proj
                )));
            }
            if !n.offset.is_finite() {
                return Err(corrupt(format!("node {i} has offset {}", n.offset)));
            }
            claim(n.left, Some(i), 0)?;
            claim(n.right, Some(i), 0)?;
        }
        if let Some(i) = node_seen.iter().position(|s| !s) {
            return Err(corrupt(format!("node {i} is not reachable from any root")));
        }
        if let Some(i) = leaf_seen.iter().position(|s| !s) {
            return Err(corrupt(format!("leaf {i} is not reachable from any root")));
        }
        check_coverage(&p)?;
        check_row_ids(&p)?;
        Ok(IndexView {
            p,
            stride,
            pool_size,
        })
    }

    /// A view of parts that already passed [`IndexView::new`] (an index re-creates its
    /// view for every search). No checks: parts that were never validated may make a
    /// search panic on an out-of-range index, but all accesses stay bounds-checked, so
    /// they can never cause undefined behaviour.
    pub(crate) fn new_prevalidated(p: IndexParts<'a>) -> Self {
        let stride = padded_dim(p.dim);
        IndexView {
            stride,
            pool_size: p.pool.len() / stride,
            p,
        }
    }

    /// Number of items.
    pub(crate) fn len(&self) -> usize {
        self.p.n_items
    }
    /// Vector dimension.
    pub(crate) fn dim(&self) -> usize {
        self.p.dim
    }
    /// Distance metric.
    pub(crate) fn metric(&self) -> Metric {
        self.p.metric
    }
    /// Number of trees.
    pub(crate) fn n_trees(&self) -> usize {
        self.p.roots.len()
    }
    /// Number of vectors in the projection pool.
    pub(crate) fn pool_size(&self) -> usize {
        self.pool_size
    }
    /// The item id stored in row `row`.
    #[inline]
    pub(crate) fn item_of(&self, row: u32) -> u32 {
        // No panic path: a search without a filter discards the answer, and the
        // compiler then drops the read too.
        self.p.row_ids.get(row as usize).copied().unwrap_or(row)
    }
    /// The row holding item `id`.
    #[inline]
    pub(crate) fn row_of(&self, id: u32) -> u32 {
        if self.p.id_rows.is_empty() {
            id
        } else {
            self.p.id_rows[id as usize]
        }
    }
    /// The stored vector of item `id` (unit-normalised under the angular metric),
    /// decoded when it is stored as codes only.
    pub(crate) fn vector(&self, id: usize) -> Result<std::borrow::Cow<'a, [f32]>> {
        if id >= self.p.n_items {
            return Err(Error::IdOutOfRange {
                id: id as u64,
                len: self.p.n_items,
            });
        }
        let id = self.row_of(id as u32) as usize;
        Ok(match &self.p.codes {
            Some(c) if self.p.vectors.is_empty() => {
                let mut v = vec![0f32; self.p.dim];
                crate::quant::decode(c, id, self.p.dim, self.p.metric, &mut v);
                std::borrow::Cow::Owned(v)
            }
            _ => std::borrow::Cow::Borrowed(&self.row(id)[..self.p.dim]),
        })
    }
    /// The stored `f32` row of item `id` (not for an index stored as codes only).
    #[inline]
    pub(crate) fn row(&self, id: usize) -> &'a [f32] {
        &self.p.vectors[id * self.stride..(id + 1) * self.stride]
    }

    /// Every vector decoded into rows of the stride (a copy; for builds over an
    /// index stored as codes), or the stored rows themselves.
    pub(crate) fn f32_rows(&self) -> Result<std::borrow::Cow<'a, [f32]>> {
        let Some(c) = self.p.codes.as_ref().filter(|_| self.p.vectors.is_empty()) else {
            return Ok(std::borrow::Cow::Borrowed(self.p.vectors));
        };
        let len = self.p.n_items * self.stride;
        let mut out = Vec::new();
        out.try_reserve_exact(len).map_err(|_| Error::OutOfMemory {
            what: "decoded vectors",
            bytes: len.saturating_mul(4),
        })?;
        out.resize(len, 0f32);
        for (id, row) in out.chunks_exact_mut(self.stride).enumerate() {
            crate::quant::decode(c, id, self.p.dim, self.p.metric, row);
        }
        Ok(std::borrow::Cow::Owned(out))
    }
}
