//! Reading an index: a pure parser over bytes, and [`Storage`] over any bytes (a
//! memory map, a `Vec<u8>`, a static slice), so one [`Index`] type serves them all.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use panns_core::{BuildParams, Codes, Dtype, Index, IndexParts, Node, SplitRule, Storage};
use zerocopy::FromBytes;

use super::header::{Header, SectionKind};
use super::validate::{check_header, check_padding, check_sections};
use super::{OpenOptions, corrupt};
use crate::error::{Error, Result};

/// Byte ranges of an index file's sections, found by [`parse`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The validated header.
    pub header: Header,
    /// Byte range of each known section, indexed like [`SectionKind::ALL`] (empty if absent).
    pub ranges: [Range<usize>; SectionKind::ALL.len()],
}

impl Layout {
    /// The arrays of the index held in `bytes` (the bytes [`parse`] checked).
    /// Fails only if `bytes` is not what was parsed, or is not 4-byte aligned.
    pub fn parts<'a>(&self, bytes: &'a [u8], source: &Path) -> Result<IndexParts<'a>> {
        let h = &self.header;
        let metric = h
            .metric()
            .ok_or_else(|| corrupt(source, format!("unknown metric code {}", h.metric_code())))?;
        let sec_f32 = |kind| section::<[f32]>(bytes, &self.ranges, kind, source);
        let codes = match h.dtype() {
            Dtype::F32 => None,
            Dtype::I8 | Dtype::I8F32 => Some(Codes {
                codes: section::<[u8]>(bytes, &self.ranges, SectionKind::Codes, source)?,
                lo: sec_f32(SectionKind::CodeLo)?,
                step: sec_f32(SectionKind::CodeStep)?,
                aux: sec_f32(SectionKind::CodeAux)?,
            }),
        };
        Ok(IndexParts {
            metric,
            dim: h.dim() as usize,
            n_items: h.n_items() as usize,
            vectors: sec_f32(SectionKind::Vectors)?,
            codes,
            pool: section::<[f32]>(bytes, &self.ranges, SectionKind::Pool, source)?,
            nodes: section::<[Node]>(bytes, &self.ranges, SectionKind::Nodes, source)?,
            roots: section::<[u32]>(bytes, &self.ranges, SectionKind::Roots, source)?,
            leaf_offsets: section::<[u32]>(bytes, &self.ranges, SectionKind::LeafOffsets, source)?,
            leaf_ids: section::<[u32]>(bytes, &self.ranges, SectionKind::LeafIds, source)?,
            graph: section::<[u32]>(bytes, &self.ranges, SectionKind::Graph, source)?,
            graph_degree: h.graph_degree() as usize,
            row_ids: section::<[u32]>(bytes, &self.ranges, SectionKind::RowIds, source)?,
            id_rows: section::<[u32]>(bytes, &self.ranges, SectionKind::IdRows, source)?,
        })
    }

    /// The labels section of the file held in `bytes` (`None` when absent: the label of
    /// item `i` is then `i`). Not checked for uniqueness here.
    pub fn labels<'a>(&self, bytes: &'a [u8], source: &Path) -> Result<Option<&'a [u64]>> {
        if self.ranges[SectionKind::Labels.slot()].is_empty() {
            return Ok(None);
        }
        section::<[u64]>(bytes, &self.ranges, SectionKind::Labels, source).map(Some)
    }

    /// The generation recorded in the file held in `bytes` (`None` when the section is
    /// absent).
    pub fn generation(&self, bytes: &[u8]) -> Option<u64> {
        let r = self.ranges[SectionKind::Generation.slot()].clone();
        let b: [u8; 8] = bytes.get(r)?.try_into().ok()?;
        Some(u64::from_le_bytes(b))
    }

    /// The build parameters recorded in the header (`threads` is 0).
    pub fn build_params(&self) -> BuildParams {
        let h = &self.header;
        BuildParams {
            n_trees: h.n_trees() as usize,
            leaf_size: h.leaf_size() as usize,
            pool_size: h.pool_size() as usize,
            candidates: h.candidates() as usize,
            split: if h.split() == 1 {
                SplitRule::Median
            } else {
                SplitRule::Mean
            },
            seed: h.seed(),
            threads: 0,
            dtype: h.dtype(),
        }
    }
}

fn section<'a, T>(
    bytes: &'a [u8],
    ranges: &[Range<usize>],
    kind: SectionKind,
    source: &Path,
) -> Result<&'a T>
where
    T: FromBytes + zerocopy::Immutable + ?Sized + zerocopy::KnownLayout,
{
    let range = ranges[kind.slot()].clone();
    let b = bytes
        .get(range)
        .ok_or_else(|| corrupt(source, format!("{} section out of bounds", kind.name())))?;
    T::ref_from_bytes(b).map_err(|_| {
        corrupt(
            source,
            format!("{} section is misaligned or of a wrong size", kind.name()),
        )
    })
}

/// Parses and checks the header and section table of an index file held in `bytes`
/// (and its checksum when `opts.verify_checksum` is set). A pure function: no I/O.
/// `source` names the bytes in error messages. The tree structure is checked when an
/// [`Index`] is made from the parts ([`index_from_bytes`] does both).
pub fn parse(bytes: &[u8], source: &Path, opts: &OpenOptions) -> Result<Layout> {
    let header = check_header(bytes, source, opts)?;
    let ranges = check_sections(&header, bytes.len(), source)?;
    check_padding(bytes, &header, source)?;
    Ok(Layout { header, ranges })
}

/// Bytes that can hold an index: anything that derefs to a stable byte slice.
pub trait IndexBytes: AsRef<[u8]> + Send + Sync + 'static {}
impl<B: AsRef<[u8]> + Send + Sync + 'static> IndexBytes for B {}

/// [`Storage`] over the bytes of an index file.
struct FileStorage<B: IndexBytes> {
    bytes: B,
    layout: Layout,
    source: PathBuf,
}

impl<B: IndexBytes> Storage for FileStorage<B> {
    fn parts(&self) -> IndexParts<'_> {
        self.layout
            .parts(self.bytes.as_ref(), &self.source)
            .expect("sections were checked when the index was opened")
    }

    fn describe(&self) -> String {
        self.source.display().to_string()
    }
}

/// A byte buffer whose start is 64-byte aligned (the alignment the format assumes).
struct Aligned {
    words: Vec<[u64; 8]>,
    len: usize,
}

impl Aligned {
    fn copy_of(bytes: &[u8]) -> Result<Aligned> {
        let mut words: Vec<[u64; 8]> = Vec::new();
        words
            .try_reserve_exact(bytes.len().div_ceil(64))
            .map_err(|_| Error::invalid(format!("out of memory copying {} bytes", bytes.len())))?;
        words.resize(bytes.len().div_ceil(64), [0; 8]);
        zerocopy::IntoBytes::as_mut_bytes(words.as_mut_slice())[..bytes.len()]
            .copy_from_slice(bytes);
        Ok(Aligned {
            words,
            len: bytes.len(),
        })
    }
}

impl AsRef<[u8]> for Aligned {
    fn as_ref(&self) -> &[u8] {
        &zerocopy::IntoBytes::as_bytes(self.words.as_slice())[..self.len]
    }
}

/// Makes an [`Index`] of the bytes of an index file, validating the header, every
/// section and the whole structure (and the checksum with `opts.verify_checksum`).
/// Zero-copy when the bytes start 4-byte aligned (a memory map, any `Vec<u8>` from the
/// system allocator); otherwise they are copied once into an aligned buffer.
pub fn index_from_bytes<B: IndexBytes>(bytes: B, opts: &OpenOptions) -> Result<Index> {
    index_from_source(bytes, PathBuf::from("<bytes>"), opts)
}

/// Like [`index_from_bytes`] for a caller's borrowed bytes: always copies them (an
/// [`Index`] owns its storage).
pub fn index_from_slice(bytes: &[u8], opts: &OpenOptions) -> Result<Index> {
    index_from_source(Aligned::copy_of(bytes)?, PathBuf::from("<bytes>"), opts)
}

pub(crate) fn index_from_source<B: IndexBytes>(
    bytes: B,
    source: PathBuf,
    opts: &OpenOptions,
) -> Result<Index> {
    if !(bytes.as_ref().as_ptr() as usize).is_multiple_of(4) {
        let copy = Aligned::copy_of(bytes.as_ref())?;
        return index_from_source(copy, source, opts);
    }
    let layout = parse(bytes.as_ref(), &source, opts)?;
    // Surface section errors with the source's name before handing out parts.
    layout.parts(bytes.as_ref(), &source)?;
    let params = layout.build_params();
    let storage = FileStorage {
        bytes,
        layout,
        source,
    };
    let source = storage.source.clone();
    let index =
        Index::from_storage(Arc::new(storage), params).map_err(|e| core_corrupt(&source, e))?;
    if opts.verify_checksum {
        index
            .parts()
            .check_values()
            .map_err(|e| core_corrupt(&source, e))?;
    }
    Ok(index)
}

/// A core validation error as a [`Error::Corrupt`] naming `source`.
fn core_corrupt(source: &Path, e: panns_core::Error) -> Error {
    match e {
        panns_core::Error::Corrupt(detail) => corrupt(source, detail),
        other => corrupt(source, other.to_string()),
    }
}

/// Opens an index file by memory-mapping it: the header, section bounds, alignment,
/// lengths and the whole tree structure are validated, and the checksum when
/// `opts.verify_checksum` is set. Nothing is copied; pages are shared with every other
/// process mapping the same file and read from disk on first touch.
///
/// The file must not be modified in place while it is open: replace it by renaming a
/// new file over it (as [`super::save_index`] does). Truncating a mapped file makes
/// reads of the lost pages fault (SIGBUS); writing into it changes answers.
pub fn open_index(path: impl AsRef<Path>, opts: &OpenOptions) -> Result<Index> {
    let path = path.as_ref();
    let file = super::open_regular(path)?;
    // SAFETY: the map is read-only and owned by the index's storage; the file must
    // not be truncated or written in place while mapped (documented above).
    let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    index_from_source(map, path.to_path_buf(), opts)
}

/// Reads an index file into memory (no mapping: the file may then change freely) and
/// validates it as [`open_index`] does.
pub fn load_index(path: impl AsRef<Path>, opts: &OpenOptions) -> Result<Index> {
    let path = path.as_ref();
    let mut file = super::open_regular(path)?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut bytes).map_err(|e| Error::io(path, e))?;
    index_from_source(bytes, path.to_path_buf(), opts)
}

/// The header of the index file at `path`, after the same checks as [`open_index`]
/// (with the checksum when `opts.verify_checksum` is set).
pub fn read_header(path: impl AsRef<Path>, opts: &OpenOptions) -> Result<Header> {
    let path = path.as_ref();
    let file = super::open_regular(path)?;
    // SAFETY: as in `open_index`; the map lives only during this call.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    let layout = parse(&map, path, opts)?;
    let parts = layout.parts(&map, path)?;
    parts.validate().map_err(|e| core_corrupt(path, e))?;
    if opts.verify_checksum {
        parts.check_values().map_err(|e| core_corrupt(path, e))?;
    }
    Ok(layout.header)
}

/// Opens `path` with the checksum verified and the full structure checked, and returns
/// its header (for `panns info --verify`).
pub fn verify_file(path: impl AsRef<Path>) -> Result<Header> {
    read_header(
        path,
        &OpenOptions {
            verify_checksum: true,
        },
    )
}
