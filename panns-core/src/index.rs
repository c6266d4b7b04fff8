//! The owned index and its builder.

use crate::build::{self, BuildParams, Forest};
use crate::graph::{self, GraphParams};
use crate::layout::{IndexParts, IndexView, Node, padded_dim};
use crate::{Error, MAX_DIM, MAX_ITEMS, Metric, Result, kernels};

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

    /// Adds one vector and returns its id (ids count from 0 in insertion order).
    pub fn add(&mut self, v: &[f32]) -> Result<u32> {
        let id = self.len();
        self.add_batch(v)?;
        Ok(id as u32)
    }

    /// Adds row-major vectors (`dim` floats each). Either all are added or, on an
    /// error (which names the offending row and component), none.
    pub fn add_batch(&mut self, rows: &[f32]) -> Result<std::ops::Range<u32>> {
        let dim = self.dim;
        if !rows.len().is_multiple_of(dim) {
            return Err(Error::DimensionMismatch {
                expected: dim,
                got: rows.len() % dim,
            });
        }
        let first = self.len();
        let count = rows.len() / dim;
        if first + count > MAX_ITEMS {
            return Err(Error::TooManyItems(first + count));
        }
        for (r, row) in rows.chunks_exact(dim).enumerate() {
            if let Some(i) = row.iter().position(|x| !x.is_finite()) {
                return Err(Error::NonFinite {
                    item: first + r,
                    index: i,
                    value: row[i],
                });
            }
            if self.metric == Metric::Angular && row.iter().all(|&x| x == 0.0) {
                return Err(Error::ZeroVector { item: first + r });
            }
        }
        self.vectors.reserve(count * self.stride);
        for row in rows.chunks_exact(dim) {
            let start = self.vectors.len();
            self.vectors.extend_from_slice(row);
            self.vectors.resize(start + self.stride, 0.0);
            if self.metric == Metric::Angular {
                let out = &mut self.vectors[start..];
                let n = kernels::norm(out);
                if n.is_finite() {
                    out.iter_mut().for_each(|x| *x /= n);
                } else {
                    // Components near f32::MAX overflow the norm: normalise in f64.
                    let n = out.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
                    out.iter_mut().for_each(|x| *x = (*x as f64 / n) as f32);
                }
            }
        }
        Ok(first as u32..(first + count) as u32)
    }

    /// Builds the forest. Consumes the builder (its vectors move into the index).
    pub fn build(self, params: &BuildParams) -> Result<Index> {
        params.validate()?;
        if self.is_empty() {
            return Err(Error::Empty);
        }
        let run = || {
            let pool = build::gaussian_pool(self.dim, self.stride, params.pool_size, params.seed);
            let table = build::project_all(&self.vectors, &pool, self.stride);
            let forest = build::build_forest(&table, self.len(), params);
            (pool, forest)
        };
        let (pool, forest) = with_threads(params.threads, run)?;
        let n_items = self.len();
        let index = Index {
            metric: self.metric,
            dim: self.dim,
            n_items,
            params: params.clone(),
            vectors: self.vectors,
            pool,
            forest,
            graph: Vec::new(),
            graph_degree: 0,
        };
        // Built by us, so this cannot fail; checking keeps the invariant in one place.
        IndexView::new(index.parts())?;
        Ok(index)
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

/// A built index held in memory. Search it through [`Index::view`].
#[derive(Clone, Debug)]
pub struct Index {
    metric: Metric,
    dim: usize,
    n_items: usize,
    params: BuildParams,
    vectors: Vec<f32>,
    pool: Vec<f32>,
    forest: Forest,
    graph: Vec<u32>,
    graph_degree: usize,
}

impl Index {
    /// The arrays of this index (e.g. to write them to a file).
    pub fn parts(&self) -> IndexParts<'_> {
        IndexParts {
            metric: self.metric,
            dim: self.dim,
            n_items: self.n_items,
            vectors: &self.vectors,
            pool: &self.pool,
            nodes: &self.forest.nodes,
            roots: &self.forest.roots,
            leaf_offsets: &self.forest.leaf_offsets,
            leaf_ids: &self.forest.leaf_ids,
            graph: &self.graph,
            graph_degree: self.graph_degree,
        }
    }

    /// A searchable view.
    pub fn view(&self) -> IndexView<'_> {
        IndexView::new_prevalidated(self.parts())
    }

    /// Adds (or replaces) the neighbour graph, which makes high-recall searches much
    /// faster at the cost of `degree * 4` bytes per item and a longer build.
    pub fn build_graph(&mut self, params: &GraphParams) -> Result<()> {
        params.validate()?;
        let stride = padded_dim(self.dim);
        let graph = with_threads(params.threads, || {
            graph::build_graph(
                &self.vectors,
                stride,
                self.metric,
                &self.forest,
                self.n_items,
                params,
            )
        })?;
        self.graph = graph;
        self.graph_degree = params.degree;
        Ok(())
    }

    /// The parameters it was built with.
    pub fn params(&self) -> &BuildParams {
        &self.params
    }

    /// Inner nodes of all trees.
    pub fn nodes(&self) -> &[Node] {
        &self.forest.nodes
    }
}
