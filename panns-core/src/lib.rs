//! # panns-core
//!
//! Approximate k-nearest-neighbour search with a forest of random-projection trees
//! whose split directions come from one small pool shared by all trees. Pure compute:
//! SIMD kernels, forest building, search. No file I/O: one [`Index`] type searches
//! arrays held in any [`Storage`] (owned vectors, a memory-mapped file, a caller's
//! bytes: `panns-io` parses files), with one search implementation and scratch
//! buffers owned by the index.
//!
//! ```
//! use panns_core::{BuildParams, IndexBuilder, Metric, SearchParams};
//! let mut b = IndexBuilder::new(3, Metric::Euclidean).unwrap();
//! for i in 0..100 {
//!     b.add(&[i as f32, (i % 7) as f32, 1.0]).unwrap();
//! }
//! let index = b.build(&BuildParams { n_trees: 4, ..Default::default() }).unwrap();
//! let hits = index.search(&[10.0, 3.0, 1.0], &SearchParams::new(1)).unwrap();
//! assert_eq!(hits[0].id, 10);
//! ```
#![warn(missing_docs)]

#[cfg(feature = "ndarray")]
mod array;
#[doc(hidden)]
pub mod build;
mod error;
mod filter;
mod graph;
mod index;
#[doc(hidden)]
pub mod kernels;
mod layout;
mod metric;
mod progress;
mod quant;
#[doc(hidden)]
pub mod rng;
mod scratch;
mod search;
mod storage;

pub use build::{BuildParams, SplitRule};
pub use error::{Error, Result};
pub use filter::{AllowList, Filter, bitmap};
pub use graph::GraphParams;
pub use index::{Index, IndexBuilder};
pub use layout::{IndexParts, LEAF_FLAG, Node, padded_dim};
pub use metric::Metric;
pub use progress::{Progress, ProgressFn, Stage};
pub use quant::{Codes, Dtype, RERANK_MIN};
pub use search::{MAX_COMPONENT, Neighbor, SearchParams, SearchStats};
pub use storage::Storage;

/// Largest supported dimension.
pub const MAX_DIM: usize = 1 << 16;
/// Largest supported neighbour-graph degree.
pub const MAX_GRAPH_DEGREE: usize = 256;
/// Largest supported item count (ids are 31-bit).
pub const MAX_ITEMS: usize = (1 << 31) - 1;
