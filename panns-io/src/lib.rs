//! Dataset readers (CSV, raw f32, fvecs/bvecs/ivecs, NumPy .npy, HDF5) and the panns index file format.
//!
//! Every reader returns a row-major [`Dataset`] of `f32` (or an [`IntDataset`] of ground-truth
//! ids) or an [`Error`] naming the file and the position of the problem; see [`dataset`].

#![warn(missing_docs)]

pub mod dataset;
pub mod error;
pub mod eval;
pub mod format;

#[cfg(feature = "hdf5")]
pub use dataset::{
    AnnBenchmarks, metric_of_distance, read_ann_benchmarks, read_hdf5, read_hdf5_attr_string,
    read_hdf5_i32,
};
pub use dataset::{
    CsvOptions, Dataset, Format, HeaderMode, IntDataset, ReadOptions, read_any, read_bvecs,
    read_csv, read_fvecs, read_ivecs, read_npy, read_raw_f32,
};
pub use error::{Error, Result};
pub use format::{
    BuildInfo, Extras, Header, IndexBytes, Layout, OpenOptions, SectionEntry, SectionKind,
    index_from_bytes, index_from_slice, index_to_bytes, load_index, open_index, parse,
    parts_to_bytes, parts_to_bytes_with, read_header, save_index, save_index_with, save_parts,
    save_parts_with, serialized_len, verify_file,
};
pub mod live;
pub use live::{LiveIndex, LiveOptions};
pub mod shard;
pub use shard::{
    Manifest, ManifestShard, ShardBuildOptions, ShardFilter, ShardLabels, ShardedIndex,
    build_shards, merge_top_k, write_manifest,
};
