//! Ground truth and recall, computed the ann-benchmarks way: see [`panns_io::eval`].

pub use panns_io::eval::{Recall, Scorer};
