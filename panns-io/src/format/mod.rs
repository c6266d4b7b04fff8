//! The panns index file: a fixed header, a section table and 64-byte aligned sections
//! holding the arrays of [`panns_core::IndexParts`] verbatim, so a file is memory-mapped
//! and searched in place. The exact layout is specified in `docs/format.md`.
//!
//! ```no_run
//! # fn main() -> panns_io::Result<()> {
//! use panns_core::{BuildParams, IndexBuilder, Metric, SearchParams};
//! use panns_io::{OpenOptions, open_index, save_index};
//! let mut b = IndexBuilder::new(3, Metric::Euclidean)?;
//! b.add(&[1.0, 2.0, 3.0])?;
//! let index = b.build(&BuildParams::default())?;
//! save_index(&index, "example.panns")?; // atomic: a crash leaves the old file or the new one
//! let mapped = open_index("example.panns", &OpenOptions::default())?;
//! let hits = mapped.search(&[1.0, 2.0, 3.0], &SearchParams::new(1))?;
//! assert_eq!(hits[0].id, 0);
//! # Ok(()) }
//! ```
//!
//! Reading never trusts the file: the header, every section's bounds, alignment and
//! length, and (through [`panns_core::IndexView::new`]) every node, leaf and id are
//! checked when a file is opened, so a damaged or hostile file yields an [`Error`]
//! naming the path and the problem, never a panic. The optional checksum (XXH64 of the
//! whole file) detects damage inside vector data too.

use panns_core::{BuildParams, SplitRule};

use crate::error::Error;

pub(crate) mod checksum;
mod header;
mod read;
mod validate;
mod write;

pub use header::{
    CHECKSUM_OFFSET, ENDIAN_MARKER, FLAG_CODES, FLAG_F32_BESIDE_CODES, FLAG_ROW_ORDER,
    FORMAT_VERSION, HEADER_SIZE, Header, KNOWN_FLAGS, MAGIC, MAX_SECTIONS, SECTION_ALIGN,
    SectionEntry, SectionKind,
};
pub(crate) use read::index_from_source;
pub use read::{
    IndexBytes, Layout, index_from_bytes, index_from_slice, load_index, open_index, parse,
    read_header, verify_file,
};
pub(crate) use validate::{open_regular, open_regular_as};
pub(crate) use write::atomic_write;
pub use write::{
    index_to_bytes, parts_to_bytes, parts_to_bytes_with, save_index, save_index_with, save_parts,
    save_parts_with, serialized_len,
};

/// Optional sections written beside an index's arrays (see `docs/format.md`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extras<'a> {
    /// One `u64` label per item (section kind 8); `None` writes no section (identity labels).
    pub labels: Option<&'a [u64]>,
    /// The generation of a live index's base (section kind 9); `None` writes no section.
    pub generation: Option<u64>,
}

/// Build parameters recorded in the header for information (`panns info`); they are
/// not needed to search.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BuildInfo {
    /// Largest number of items in a leaf.
    pub leaf_size: u32,
    /// Pool vectors tried at each node.
    pub candidates: u32,
    /// Split rule code: 0 = mean, 1 = median.
    pub split: u32,
    /// Seed of the build.
    pub seed: u64,
}

impl From<&BuildParams> for BuildInfo {
    fn from(p: &BuildParams) -> Self {
        let clamp = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        BuildInfo {
            leaf_size: clamp(p.leaf_size),
            candidates: clamp(p.candidates),
            split: match p.split {
                SplitRule::Mean => 0,
                SplitRule::Median => 1,
            },
            seed: p.seed,
        }
    }
}

/// Options of [`open_index`] and [`index_from_bytes`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// Verify the whole file: hash it and compare with the stored checksum, and check
    /// every stored vector value (finite, zero padding, unit length under the angular
    /// metric). Reads every byte once; without it, damage inside vector data goes
    /// unnoticed (such rows still never win a search with a NaN or infinite value:
    /// they score +infinity).
    pub verify_checksum: bool,
}

/// Test support: make the writes of [`save_parts`] on the current thread fail.
#[doc(hidden)]
pub mod testing {
    /// After this many bytes have been written by a save on the calling thread, the next
    /// write fails with an I/O error (`None`: never). Simulates a full disk mid-write.
    pub fn fail_writes_after(bytes: Option<u64>) {
        super::write::FAIL_AFTER.with(|f| f.set(bytes));
    }
}

/// The checksum a complete index file `file` should store in [`Header::checksum`]:
/// XXH64 (seed 0) of the file with the 8 checksum bytes taken as zero.
pub fn file_checksum(file: &[u8]) -> u64 {
    let mut h = checksum::Hasher::default();
    if file.len() >= CHECKSUM_OFFSET + 8 {
        h.update(&file[..CHECKSUM_OFFSET]);
        h.update(&[0; 8]);
        h.update(&file[CHECKSUM_OFFSET + 8..]);
    } else {
        h.update(file); // too short to be an index file: hashed as it is
    }
    h.finish()
}

/// A [`Error::Corrupt`] for `path`.
pub(crate) fn corrupt(path: &std::path::Path, detail: impl Into<String>) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}
