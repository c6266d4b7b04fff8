//! Where an index's arrays live: owned vectors, a memory-mapped file, a caller's bytes.
//!
//! An [`crate::Index`] holds one [`Storage`] behind a shared pointer. The storage only
//! hands out borrowed [`IndexParts`]; the index validates them once when it is made
//! ([`crate::Index::from_storage`]) and searches them in place, so a file mapped into
//! memory is searched without copying a byte. `panns-io` implements [`Storage`] for
//! parsed index files over any bytes (a memory map, a `Vec<u8>`, a static slice).

use crate::build::Forest;
use crate::layout::IndexParts;

/// A source of index arrays. Implementations must return the same parts on every
/// call (the index validates them once, when it is made, and trusts them after).
///
/// Returning different parts later cannot cause undefined behaviour (every access is
/// bounds-checked) but may make a search panic or answer wrongly.
pub trait Storage: Send + Sync + 'static {
    /// The arrays of the index.
    fn parts(&self) -> IndexParts<'_>;

    /// A short description of where the arrays live, for messages and `Debug`
    /// (e.g. "memory", "file /data/x.panns", "bytes").
    fn describe(&self) -> String {
        "memory".to_string()
    }

    /// For a storage that only overlays a graph on another one, that other one.
    #[doc(hidden)]
    fn without_graph(&self) -> Option<std::sync::Arc<dyn Storage>> {
        None
    }
}

/// Arrays owned in memory (an index built in this process).
#[derive(Clone, Debug)]
pub(crate) struct Owned {
    pub(crate) metric: crate::Metric,
    pub(crate) dim: usize,
    pub(crate) n_items: usize,
    pub(crate) vectors: Vec<f32>,
    pub(crate) codes: Option<crate::quant::OwnedCodes>,
    pub(crate) pool: Vec<f32>,
    pub(crate) forest: Forest,
    pub(crate) graph: Vec<u32>,
    pub(crate) graph_degree: usize,
    pub(crate) row_ids: Vec<u32>,
    pub(crate) id_rows: Vec<u32>,
}

impl Storage for Owned {
    fn parts(&self) -> IndexParts<'_> {
        IndexParts {
            metric: self.metric,
            dim: self.dim,
            n_items: self.n_items,
            vectors: &self.vectors,
            codes: self.codes.as_ref().map(|c| c.parts()),
            pool: &self.pool,
            nodes: &self.forest.nodes,
            roots: &self.forest.roots,
            leaf_offsets: &self.forest.leaf_offsets,
            leaf_ids: &self.forest.leaf_ids,
            graph: &self.graph,
            graph_degree: self.graph_degree,
            row_ids: &self.row_ids,
            id_rows: &self.id_rows,
        }
    }
}

/// Another storage with its neighbour graph replaced (a graph built for an index
/// opened from a file: the file's sections stay mapped, only the graph is in memory).
pub(crate) struct WithGraph {
    pub(crate) base: std::sync::Arc<dyn Storage>,
    pub(crate) graph: Vec<u32>,
    pub(crate) graph_degree: usize,
}

impl Storage for WithGraph {
    fn parts(&self) -> IndexParts<'_> {
        IndexParts {
            graph: &self.graph,
            graph_degree: self.graph_degree,
            ..self.base.parts()
        }
    }

    fn describe(&self) -> String {
        format!("{} with a graph built in memory", self.base.describe())
    }

    fn without_graph(&self) -> Option<std::sync::Arc<dyn Storage>> {
        Some(std::sync::Arc::clone(&self.base))
    }
}
