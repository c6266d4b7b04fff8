//! The owned index and its builder.

use crate::build::{self, BuildParams};
use crate::filter::Filter;
use crate::graph::{self, GraphParams};
use crate::layout::{IndexParts, IndexView, Node, padded_dim};
use crate::progress::{ProgressFn, Stage, report};
use crate::quant::{self, Dtype};
use crate::scratch::ScratchPool;
use crate::search::{self, Neighbor, SearchParams, SearchStats};
use crate::storage::{Owned, Storage, WithGraph};
use crate::{Error, MAX_DIM, MAX_ITEMS, Metric, Result};
use rayon::prelude::*;
use std::borrow::Cow;
use std::sync::Arc;

/// Collects vectors, then builds an [`Index`].
#[derive(Clone, Debug)]
pub struct IndexBuilder {
    metric: Metric,
    dim: usize,
    stride: usize,
    vectors: Vec<f32>,
}

impl IndexBuilder {
    /// An empty builder for `dim`-dimensional vectors.
    pub fn new(dim: usize, metric: Metric) -> Result<Self> {
        if dim == 0 || dim > MAX_DIM {
            return Err(Error::InvalidDimension(dim));
        }
        Ok(IndexBuilder {
            metric,
            dim,
            stride: padded_dim(dim),
            vectors: Vec::new(),
        })
    }

    /// Number of vectors added so far.
    pub fn len(&self) -> usize {
        self.vectors.len() / self.stride
    }
    /// True when no vector has been added.
    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }
    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// Distance metric.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Adds one vector of exactly `dim` floats and returns its id (ids count from 0
    /// in insertion order). Values must be finite and at most
    /// [`crate::MAX_COMPONENT`] in magnitude; angular vectors must be non-zero.
    pub fn add(&mut self, v: &[f32]) -> Result<u32> {
        if v.len() != self.dim {
            return Err(Error::DimensionMismatch {
                expected: self.dim,
                got: v.len(),
            });
        }
        Ok(self.add_batch(v)?.start)
    }

    /// Adds row-major vectors (`dim` floats each). Either all are added or, on an
    /// error (which names the offending row and component), none.
    pub fn add_batch(&mut self, rows: &[f32]) -> Result<std::ops::Range<u32>> {
        let dim = self.dim;
        if !rows.len().is_multiple_of(dim) {
            return Err(Error::RaggedBatch {
                len: rows.len(),
                dim,
            });
        }
        let first = self.len();
        let count = rows.len() / dim;
        if first + count > MAX_ITEMS {
            return Err(Error::TooManyItems(first + count));
        }
        for (r, row) in rows.chunks_exact(dim).enumerate() {
            search::check_values(row, first + r)?;
            if self.metric == Metric::Angular && row.iter().all(|&x| x == 0.0) {
                return Err(Error::ZeroVector { item: first + r });
            }
        }
        let floats = count * self.stride;
        self.vectors
            .try_reserve(floats)
            .map_err(|_| Error::OutOfMemory {
                what: "vectors",
                bytes: floats.saturating_mul(4),
            })?;
        for row in rows.chunks_exact(dim) {
            let start = self.vectors.len();
            self.vectors.extend_from_slice(row);
            self.vectors.resize(start + self.stride, 0.0);
            if self.metric == Metric::Angular {
                // Checked non-zero above; the f64 norm cannot underflow.
                search::normalize(&mut self.vectors[start..]);
            }
        }
        Ok(first as u32..(first + count) as u32)
    }

    /// [`add_batch`](Self::add_batch) of a buffer the caller gives away: into an empty
    /// builder the buffer itself becomes the builder's storage (rows padded and, under
    /// the angular metric, normalised in place), so the data is never held twice. The
    /// same checks, errors and stored values as `add_batch(&rows)`.
    pub fn add_vec(&mut self, rows: Vec<f32>) -> Result<std::ops::Range<u32>> {
        if !self.vectors.is_empty() {
            return self.add_batch(&rows);
        }
        let dim = self.dim;
        if !rows.len().is_multiple_of(dim) {
            return Err(Error::RaggedBatch {
                len: rows.len(),
                dim,
            });
        }
        let count = rows.len() / dim;
        if count > MAX_ITEMS {
            return Err(Error::TooManyItems(count));
        }
        for (r, row) in rows.chunks_exact(dim).enumerate() {
            search::check_values(row, r)?;
            if self.metric == Metric::Angular && row.iter().all(|&x| x == 0.0) {
                return Err(Error::ZeroVector { item: r });
            }
        }
        let mut v = rows;
        let stride = self.stride;
        if stride != dim {
            let floats = count * stride;
            v.try_reserve_exact(floats - v.len())
                .map_err(|_| Error::OutOfMemory {
                    what: "vectors",
                    bytes: floats.saturating_mul(4),
                })?;
            v.resize(floats, 0.0);
            // Last row first: row r moves up from r * dim to r * stride, never over a
            // row not moved yet.
            for r in (0..count).rev() {
                v.copy_within(r * dim..(r + 1) * dim, r * stride);
                v[r * stride + dim..(r + 1) * stride].fill(0.0);
            }
        }
        if self.metric == Metric::Angular {
            for row in v.chunks_exact_mut(stride) {
                search::normalize(row);
            }
        }
        self.vectors = v;
        Ok(0..count as u32)
    }

    /// Builds the forest. Consumes the builder (its vectors move into the index).
    pub fn build(self, params: &BuildParams) -> Result<Index> {
        self.build_with_progress(params, &crate::progress::silent)
    }

    /// Checks, without building, that a build with `params` is valid and that its
    /// working memory can be allocated now ([`Error::OutOfMemory`] otherwise), so a
    /// caller can try smaller parameters while it still holds the vectors.
    pub fn check_build(&self, params: &BuildParams) -> Result<()> {
        params.validate()?;
        if self.is_empty() {
            return Err(Error::Empty);
        }
        build::check_memory(self.len(), self.stride, params)
    }

    /// [`build`](Self::build), reporting each stage (projection, then every tree) to
    /// `progress`, from any build thread.
    pub fn build_with_progress(
        self,
        params: &BuildParams,
        progress: ProgressFn<'_>,
    ) -> Result<Index> {
        params.validate()?;
        if self.is_empty() {
            return Err(Error::Empty);
        }
        let n_items = self.len();
        build::check_memory(n_items, self.stride, params)?;
        let run = || -> Result<_> {
            let pool = build::data_pool(
                &self.vectors,
                n_items,
                self.dim,
                self.stride,
                params.pool_size,
                params.seed,
            );
            report(progress, Stage::Projecting, 0, 1);
            let forest = if build::keeps_table(self.stride, params) {
                let table = build::project_all(&self.vectors, &pool, self.stride)?;
                report(progress, Stage::Projecting, 1, 1);
                let proj = build::Projections::Table {
                    table: &table,
                    n: n_items,
                };
                build::build_forest_with(proj, n_items, params, progress)
            } else {
                report(progress, Stage::Projecting, 1, 1);
                let proj = build::Projections::OnTheFly {
                    vectors: &self.vectors,
                    pool: &pool,
                    stride: self.stride,
                };
                build::build_forest_with(proj, n_items, params, progress)
            };
            Ok((pool, forest))
        };
        let (pool, mut forest) = with_threads(params.threads, run)??;
        let mut rows = self.vectors;
        let (row_ids, id_rows) = store_in_leaf_order(&mut rows, self.stride, &mut forest);
        let (vectors, codes) = quant::store_as(params.dtype, rows, self.dim, self.metric)?;
        let owned = Owned {
            metric: self.metric,
            dim: self.dim,
            n_items,
            vectors,
            codes,
            pool,
            forest,
            graph: Vec::new(),
            graph_degree: 0,
            row_ids,
            id_rows,
        };
        // Built by us, so this cannot fail; checking keeps the invariant in one place.
        Index::from_storage(Arc::new(owned), params.clone())
    }
}

/// Moves `rows` (one per item, `stride` floats each) into the order of the first
/// tree's leaves and renumbers the forest's leaves to match: near items then sit in
/// near rows, so a search's reads (the graph walk's above all) hit memory already in
/// cache. Returns the item id of each row and the row of each item id, both empty
/// when the order is the id order (or cannot be had: then nothing moves).
fn store_in_leaf_order(
    rows: &mut [f32],
    stride: usize,
    forest: &mut build::Forest,
) -> (Vec<u32>, Vec<u32>) {
    let n = rows.len() / stride.max(1);
    match graph::order::Order::of_first_tree(&forest.view(), n) {
        Some(o) if !o.is_identity() => {
            o.place(rows, stride);
            for id in forest.leaf_ids.iter_mut() {
                *id = o.pos[*id as usize];
            }
            (o.perm, o.pos)
        }
        _ => (Vec::new(), Vec::new()),
    }
}

/// Runs `f` on a pool of `threads` workers (0: the global pool of all cores).
fn with_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> Result<T> {
    if threads == 0 {
        return Ok(f());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|_| Error::parameter("threads", threads, "cannot start that many threads"))?;
    Ok(pool.install(f))
}

/// A searchable index, over any storage: built in this process, memory-mapped from a
/// file, or parsed from bytes (see `panns_io::open_index` / `panns_io::index_from_bytes`).
///
/// Searches take `&self` and may run on many threads at once; each uses a scratch
/// buffer from a pool owned by the index (freed with it). Cloning is cheap: clones
/// share the storage and have their own scratch pool.
pub struct Index {
    storage: Arc<dyn Storage>,
    params: BuildParams,
    scratch: ScratchPool,
}

impl Clone for Index {
    fn clone(&self) -> Self {
        Index {
            storage: Arc::clone(&self.storage),
            params: self.params.clone(),
            scratch: ScratchPool::default(),
        }
    }
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("storage", &self.storage.describe())
            .field("metric", &self.metric())
            .field("dim", &self.dim())
            .field("len", &self.len())
            .field("n_trees", &self.n_trees())
            .field("graph_degree", &self.graph_degree())
            .finish()
    }
}

impl Index {
    /// An index over `storage`, whose parts are validated here once: every length,
    /// child reference, leaf range and id is checked, so hostile data yields
    /// [`Error::Corrupt`], never a panic or undefined behaviour. `params` records how
    /// it was built (informational: searches do not use it).
    pub fn from_storage(storage: Arc<dyn Storage>, params: BuildParams) -> Result<Index> {
        IndexView::new(storage.parts())?;
        Ok(Index {
            storage,
            params,
            scratch: ScratchPool::default(),
        })
    }

    /// The validated view searched by every method (O(1)).
    #[inline]
    pub(crate) fn view(&self) -> IndexView<'_> {
        IndexView::new_prevalidated(self.storage.parts())
    }

    /// The arrays of this index (e.g. to write them to a file).
    pub fn parts(&self) -> IndexParts<'_> {
        self.storage.parts()
    }

    /// Where the arrays live ("memory", "file PATH", ...).
    pub fn storage_description(&self) -> String {
        self.storage.describe()
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.parts().n_items
    }
    /// Always false: an index has at least one item.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.parts().dim
    }
    /// Distance metric.
    pub fn metric(&self) -> Metric {
        self.parts().metric
    }
    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.parts().roots.len()
    }
    /// Number of vectors in the projection pool.
    pub fn pool_size(&self) -> usize {
        self.view().pool_size()
    }
    /// Neighbours per item of the neighbour graph (0 without a graph).
    pub fn graph_degree(&self) -> usize {
        self.parts().graph_degree
    }
    /// The parameters it was built with (as recorded in the file for opened indexes;
    /// `threads` is then 0).
    pub fn params(&self) -> &BuildParams {
        &self.params
    }
    /// Inner nodes of all trees.
    pub fn nodes(&self) -> &[Node] {
        self.parts().nodes
    }

    /// How the vectors are stored ([`Dtype::I8`]: as 8-bit codes; [`Dtype::I8F32`]: both).
    pub fn dtype(&self) -> Dtype {
        self.parts().dtype()
    }

    /// The stored vector of item `id` (unit-normalised under the angular metric):
    /// borrowed for `f32` storage (and [`Dtype::I8F32`]), decoded for [`Dtype::I8`].
    pub fn vector(&self, id: usize) -> Result<Cow<'_, [f32]>> {
        self.view().vector(id)
    }

    /// A copy of this index with its vectors stored as `dtype` (the trees and graph
    /// are kept). From `f32` to [`Dtype::I8`] encodes them with a range fitted to
    /// them; from `I8` to `f32` decodes them (the codes' rounding stays). To
    /// [`Dtype::I8F32`] adds the codes beside the `f32` vectors; from it, either half
    /// is dropped.
    pub fn to_dtype(&self, dtype: Dtype) -> Result<Index> {
        let p = self.parts();
        let view = self.view();
        let rows = view.f32_rows()?.into_owned();
        let (vectors, codes) = quant::store_as(dtype, rows, p.dim, p.metric)?;
        let owned = Owned {
            metric: p.metric,
            dim: p.dim,
            n_items: p.n_items,
            vectors,
            codes,
            pool: p.pool.to_vec(),
            forest: build::Forest {
                nodes: p.nodes.to_vec(),
                roots: p.roots.to_vec(),
                leaf_offsets: p.leaf_offsets.to_vec(),
                leaf_ids: p.leaf_ids.to_vec(),
            },
            graph: p.graph.to_vec(),
            graph_degree: p.graph_degree,
            row_ids: p.row_ids.to_vec(),
            id_rows: p.id_rows.to_vec(),
        };
        let params = BuildParams {
            dtype,
            ..self.params.clone()
        };
        Index::from_storage(Arc::new(owned), params)
    }

    /// The budget a search with `params` actually uses: `params.budget` (or the
    /// default for 0), at least `k`, at most the item count.
    pub fn effective_budget(&self, params: &SearchParams) -> usize {
        self.view().effective_budget(params)
    }

    /// Approximate `k` nearest neighbours of `query`, nearest first, ties by id;
    /// `min(k, len)` results.
    pub fn search(&self, query: &[f32], params: &SearchParams) -> Result<Vec<Neighbor>> {
        Ok(self.search_with_stats(query, params)?.0)
    }

    /// Like [`search`](Self::search), also saying what the search did.
    pub fn search_with_stats(
        &self,
        query: &[f32],
        params: &SearchParams,
    ) -> Result<(Vec<Neighbor>, SearchStats)> {
        let view = self.view();
        self.scratch.with(|s| {
            let (n, stats) = view.search_in(query, params, s)?;
            Ok((search::neighbors(s, n), stats))
        })
    }

    /// Approximate `k` nearest neighbours among the items `filter` allows, nearest
    /// first; `min(k, allowed)` results unless the allowed items are too sparse for the
    /// budget to reach them (raise the budget; with a bitmap, a budget covering half the
    /// allowed items makes the search an exact scan of just those).
    pub fn search_filtered(
        &self,
        query: &[f32],
        params: &SearchParams,
        filter: &Filter<'_>,
    ) -> Result<(Vec<Neighbor>, SearchStats)> {
        let view = self.view();
        self.scratch.with(|s| {
            let (n, stats) = view.search_filtered_in(query, params, filter, s)?;
            Ok((search::neighbors(s, n), stats))
        })
    }

    /// Every item within distance `radius` of `query` (as FAISS' `range_search`), nearest
    /// first, at most `max_results` of them; the flag is true when more were found and
    /// the list was cut. Candidates come from the same search as [`search`](Self::search)
    /// with `budget` (0: the default for `max_results`), so the result is approximate
    /// unless the budget covers half the items (then every item is scanned exactly).
    /// A negative or NaN radius is an error; under the angular metric distances are
    /// `1 - cos` in `[0, 2]`.
    pub fn range_search(
        &self,
        query: &[f32],
        radius: f32,
        max_results: usize,
        budget: usize,
    ) -> Result<(Vec<Neighbor>, bool)> {
        if radius.is_nan() || radius < 0.0 {
            return Err(Error::parameter("radius", radius, "must be a number >= 0"));
        }
        if max_results == 0 {
            return Err(Error::parameter("max_results", 0, "must be at least 1"));
        }
        // One more than the cap tells whether the cap was hit.
        let k = max_results.saturating_add(1);
        let hits = self.search(query, &SearchParams::new(k).with_budget(budget))?;
        let mut within: Vec<Neighbor> = hits.into_iter().filter(|h| h.distance <= radius).collect();
        let capped = within.len() > max_results;
        within.truncate(max_results);
        Ok((within, capped))
    }

    /// Exact `k` nearest neighbours by scanning every item (the reference for recall).
    pub fn linear_search(&self, query: &[f32], k: usize) -> Result<Vec<Neighbor>> {
        let view = self.view();
        self.scratch.with(|s| {
            let n = view.linear_search_in(query, k, s)?;
            Ok(search::neighbors(s, n))
        })
    }

    /// Searches many queries (row-major, `dim` floats each) in parallel on the current
    /// rayon pool; one result list per query.
    pub fn search_batch(
        &self,
        queries: &[f32],
        params: &SearchParams,
    ) -> Result<Vec<Vec<Neighbor>>> {
        let dim = self.dim();
        if !queries.len().is_multiple_of(dim) {
            return Err(Error::RaggedBatch {
                len: queries.len(),
                dim,
            });
        }
        queries
            .par_chunks(dim)
            .enumerate()
            .map(|(r, q)| self.search(q, params).map_err(|e| e.with_item(r)))
            .collect()
    }

    /// Searches many queries (row-major, `dim` floats each) in parallel on the current
    /// rayon pool and writes `k` results per query into the caller's buffers: row `i`
    /// at `ids[i * k..(i + 1) * k]` (and `distances`, if given). A row with fewer than
    /// `k` results (an index smaller than `k`) is padded with id `u32::MAX` and
    /// distance `+inf`. Errors name the first failing query row; the buffers' contents
    /// are then unspecified.
    pub fn search_batch_into(
        &self,
        queries: &[f32],
        params: &SearchParams,
        ids: &mut [u32],
        distances: Option<&mut [f32]>,
    ) -> Result<()> {
        let (dim, k) = (self.dim(), params.k);
        if k == 0 {
            return Err(Error::InvalidK(0));
        }
        if !queries.len().is_multiple_of(dim) {
            return Err(Error::RaggedBatch {
                len: queries.len(),
                dim,
            });
        }
        let nq = queries.len() / dim;
        let want = nq.checked_mul(k).ok_or(Error::BufferSize {
            name: "ids",
            expected: usize::MAX,
            got: ids.len(),
        })?;
        if ids.len() != want {
            return Err(Error::BufferSize {
                name: "ids",
                expected: want,
                got: ids.len(),
            });
        }
        if let Some(d) = distances.as_deref()
            && d.len() != want
        {
            return Err(Error::BufferSize {
                name: "distances",
                expected: want,
                got: d.len(),
            });
        }
        let view = self.view();
        let run = |r: usize, q: &[f32], ids: &mut [u32], ds: Option<&mut [f32]>| -> Result<()> {
            self.scratch.with(|s| {
                let (n, _) = view.search_in(q, params, s).map_err(|e| e.with_item(r))?;
                for (i, o) in ids.iter_mut().enumerate() {
                    *o = if i < n { s.scored[i].1 } else { u32::MAX };
                }
                if let Some(ds) = ds {
                    for (i, o) in ds.iter_mut().enumerate() {
                        *o = if i < n { s.scored[i].0 } else { f32::INFINITY };
                    }
                }
                Ok(())
            })
        };
        match distances {
            Some(ds) => queries
                .par_chunks(dim)
                .zip(ids.par_chunks_mut(k))
                .zip(ds.par_chunks_mut(k))
                .enumerate()
                .try_for_each(|(r, ((q, i), d))| run(r, q, i, Some(d))),
            None => queries
                .par_chunks(dim)
                .zip(ids.par_chunks_mut(k))
                .enumerate()
                .try_for_each(|(r, (q, i))| run(r, q, i, None)),
        }
    }

    /// Adds (or replaces) the neighbour graph, which makes high-recall searches much
    /// faster at the cost of `degree * 4` bytes per item and a longer build. Works on
    /// any index, opened from a file too (the graph then lives in memory beside the
    /// mapped file until the index is saved).
    pub fn build_graph(&mut self, params: &GraphParams) -> Result<()> {
        self.build_graph_with_progress(params, &crate::progress::silent)
    }

    /// [`build_graph`](Self::build_graph), reporting each stage (seeding, every
    /// NN-descent round, pruning) to `progress`, from any build thread.
    pub fn build_graph_with_progress(
        &mut self,
        params: &GraphParams,
        progress: ProgressFn<'_>,
    ) -> Result<()> {
        params.validate()?;
        let p = self.parts();
        let stride = padded_dim(p.dim);
        let forest = build::ForestRef {
            nodes: p.nodes,
            roots: p.roots,
            leaf_offsets: p.leaf_offsets,
            leaf_ids: p.leaf_ids,
        };
        let graph = with_threads(params.threads, || -> Result<Vec<u32>> {
            graph::check_memory(p.n_items, params)?;
            // An index stored as codes builds its graph on the decoded vectors (and
            // scores NN-descent's candidates on its codes when quantized).
            let rows = IndexView::new_prevalidated(p).f32_rows()?;
            let made = (params.quantized && p.codes.is_none())
                .then(|| crate::quant::encode(&rows, p.dim, p.metric))
                .transpose()?;
            let codes = match made {
                _ if !params.quantized => None,
                Some(m) => Some(graph::CodesIn::Owned(m)),
                None => p.codes.map(graph::CodesIn::Borrowed),
            };
            Ok(graph::build_graph(
                &rows, codes, stride, p.metric, &forest, p.n_items, params, progress,
            ))
        })??;
        // Replacing a graph built here: overlay the original storage, not the overlay.
        let base = self
            .storage
            .without_graph()
            .unwrap_or_else(|| Arc::clone(&self.storage));
        let storage = Arc::new(WithGraph {
            base,
            graph,
            graph_degree: params.degree,
        });
        IndexView::new(storage.parts())?;
        self.storage = storage;
        self.scratch = ScratchPool::default();
        Ok(())
    }

    /// Number of scratch buffers held by the index's pool (the peak number of
    /// concurrent searches so far). For tests and diagnostics.
    #[doc(hidden)]
    pub fn scratch_buffers(&self) -> usize {
        self.scratch.len()
    }
}
