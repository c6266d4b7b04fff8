//! Opening an index file: memory map, header and section checks, structure check.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use panns_core::{IndexParts, IndexView, Metric, Node};
use zerocopy::FromBytes;

use super::header::{Header, SectionKind};
use super::validate::{check_header, check_padding, check_sections};
use super::{OpenOptions, corrupt};
use crate::error::{Error, Result};

/// An index file mapped read-only into memory and validated; search it through
/// [`MappedIndex::view`]. Pages are shared with every other process mapping the same
/// file and read from disk on first touch.
///
/// The file must not be modified in place while it is mapped (replacing it with
/// [`super::save_index`], which renames a new file over it, is safe).
#[derive(Debug)]
pub struct MappedIndex {
    map: Mmap,
    header: Header,
    path: PathBuf,
    metric: Metric,
    dim: usize,
    n_items: usize,
    graph_degree: usize,
    /// Byte range of each known section, indexed by [`SectionKind::slot`] (empty if absent).
    ranges: [Range<usize>; SectionKind::ALL.len()],
}

impl MappedIndex {
    /// Maps and validates the index file at `path`: header, section bounds, alignment
    /// and lengths, then the whole tree structure ([`IndexView::new`]), and the
    /// checksum when `opts.verify_checksum` is set. Nothing is copied.
    pub fn open(path: impl AsRef<Path>, opts: &OpenOptions) -> Result<MappedIndex> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the map is read-only and private to this struct; the file must not be
        // truncated or written in place while mapped (documented on `MappedIndex`).
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let header = check_header(&map, path, opts)?;
        let ranges = check_sections(&header, map.len(), path)?;
        check_padding(&map, &header, path)?;
        let metric = header.metric().ok_or_else(|| {
            corrupt(
                path,
                format!("unknown metric code {}", header.metric_code()),
            )
        })?;
        let m = MappedIndex {
            header,
            path: path.to_path_buf(),
            metric,
            dim: header.dim() as usize,
            n_items: header.n_items() as usize,
            graph_degree: header.graph_degree() as usize,
            ranges,
            map,
        };
        let parts = m.try_parts()?;
        IndexView::new(parts).map_err(|e| match e {
            panns_core::Error::Corrupt(detail) => corrupt(path, detail),
            other => corrupt(path, other.to_string()),
        })?;
        Ok(m)
    }

    /// A searchable view over the mapped sections (O(1): the structure was checked by
    /// [`MappedIndex::open`]).
    pub fn view(&self) -> IndexView<'_> {
        let parts = self
            .try_parts()
            .expect("sections were validated when the file was opened");
        IndexView::new_prevalidated(parts)
    }

    /// The file header (counts, build parameters, section table).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The path the index was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Length of the file in bytes.
    pub fn file_len(&self) -> u64 {
        self.map.len() as u64
    }

    /// The mapped bytes of the whole file.
    pub fn as_bytes(&self) -> &[u8] {
        &self.map
    }

    fn section<T: FromBytes + zerocopy::Immutable + ?Sized + zerocopy::KnownLayout>(
        &self,
        kind: SectionKind,
    ) -> Result<&T> {
        let range = self.ranges[kind.slot()].clone();
        let bytes = self
            .map
            .get(range)
            .ok_or_else(|| corrupt(&self.path, format!("{} section out of bounds", kind.name())))?;
        T::ref_from_bytes(bytes).map_err(|_| {
            corrupt(
                &self.path,
                format!("{} section is misaligned or of a wrong size", kind.name()),
            )
        })
    }

    fn try_parts(&self) -> Result<IndexParts<'_>> {
        Ok(IndexParts {
            metric: self.metric,
            dim: self.dim,
            n_items: self.n_items,
            vectors: self.section::<[f32]>(SectionKind::Vectors)?,
            pool: self.section::<[f32]>(SectionKind::Pool)?,
            nodes: self.section::<[Node]>(SectionKind::Nodes)?,
            roots: self.section::<[u32]>(SectionKind::Roots)?,
            leaf_offsets: self.section::<[u32]>(SectionKind::LeafOffsets)?,
            leaf_ids: self.section::<[u32]>(SectionKind::LeafIds)?,
            graph: self.section::<[u32]>(SectionKind::Graph)?,
            graph_degree: self.graph_degree,
        })
    }
}

/// Opens `path` with the checksum verified and the full structure checked, and returns
/// its header (for `panns info --verify`).
pub fn verify_file(path: impl AsRef<Path>) -> Result<Header> {
    let m = MappedIndex::open(
        path,
        &OpenOptions {
            verify_checksum: true,
        },
    )?;
    Ok(m.header)
}
