//! The fixed file header and its section table (see `docs/format.md`).
//!
//! Every integer field is stored little-endian whatever the host (zerocopy's
//! [`little_endian`](zerocopy::little_endian) types, which have alignment 1); read them
//! as plain integers through the accessor methods of the same names
//! ([`Header::dim`], [`SectionEntry::offset`], ...) and write them with `.set(..)` or
//! `.into()`.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// First 8 bytes of every index file.
pub const MAGIC: [u8; 8] = *b"PANNSIDX";
/// The format version this library writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The endianness marker as written by a little-endian machine.
pub const ENDIAN_MARKER: u32 = 0x0102_0304;
/// Size of [`Header`] in bytes; the first section starts at or after it.
pub const HEADER_SIZE: usize = 512;
/// Number of entries in the section table.
pub const MAX_SECTIONS: usize = 16;
/// Every section starts at a multiple of this many bytes.
pub const SECTION_ALIGN: u64 = 64;
/// Byte offset of [`Header::checksum`] in the file.
pub const CHECKSUM_OFFSET: usize = 96;
/// Feature flag: the vectors are stored as 8-bit codes ([`panns_core::Dtype::I8`]) in
/// the `codes`, `code_lo`, `code_step` and `code_aux` sections instead of `vectors`.
/// Readers that do not know a flag refuse the file (older versions refuse this one).
pub const FLAG_CODES: u32 = 1;
/// Feature flag, only with [`FLAG_CODES`]: the `f32` vectors are kept beside the codes
/// in the `vectors` section, to re-rank the walk's best candidates
/// ([`panns_core::Dtype::I8F32`]). Older readers refuse the file.
pub const FLAG_F32_BESIDE_CODES: u32 = 2;
/// Feature flag: rows are not in item-id order (a build stores them in the first
/// tree's leaf order); the `row_ids` and `id_rows` sections map between the two.
/// Older readers refuse the file (they would answer with row numbers).
pub const FLAG_ROW_ORDER: u32 = 4;
/// Every flag this version knows.
pub const KNOWN_FLAGS: u32 = FLAG_CODES | FLAG_F32_BESIDE_CODES | FLAG_ROW_ORDER;

/// What a section holds. Kind codes are stable across format versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SectionKind {
    /// `n_items` rows of `padded_dim(dim)` `f32` (required unless [`FLAG_CODES`] is set).
    Vectors,
    /// `pool_size` rows of `padded_dim(dim)` `f32` (required).
    Pool,
    /// `n_nodes` [`panns_core::Node`]s of 16 bytes (required).
    Nodes,
    /// `n_trees` `u32` root references (required).
    Roots,
    /// `n_leaves + 1` `u32` offsets into the leaf ids (required).
    LeafOffsets,
    /// `u32` item ids of all leaves (required).
    LeafIds,
    /// `n_items * graph_degree` `u32` neighbour ids (present exactly when `graph_degree > 0`).
    Graph,
    /// `n_items` `u64` labels chosen by the caller, one per item id (optional; absent:
    /// the label of item `i` is `i`). Used by `panns_io::LiveIndex`.
    Labels,
    /// One `u64`: the generation of a live index's base file (optional; absent: 1).
    Generation,
    /// `n_items` rows of `padded_dim(dim)` code bytes (present exactly when [`FLAG_CODES`] is set).
    Codes,
    /// `padded_dim(dim)` `f32`: each component's value of code 0 (with [`FLAG_CODES`]).
    CodeLo,
    /// `padded_dim(dim)` `f32`: each component's code step (with [`FLAG_CODES`]).
    CodeStep,
    /// `n_items` `f32`: each item's norm term (see [`panns_core::Codes::aux`]; with [`FLAG_CODES`]).
    CodeAux,
    /// `n_items` `u32`: the item id held in each row (present exactly when [`FLAG_ROW_ORDER`] is set).
    RowIds,
    /// `n_items` `u32`: the row of each item id, the inverse of `row_ids` (with [`FLAG_ROW_ORDER`]).
    IdRows,
}

impl SectionKind {
    /// Every kind this version knows, in file order.
    pub const ALL: [SectionKind; 15] = [
        SectionKind::Vectors,
        SectionKind::Pool,
        SectionKind::Nodes,
        SectionKind::Roots,
        SectionKind::LeafOffsets,
        SectionKind::LeafIds,
        SectionKind::Graph,
        SectionKind::Labels,
        SectionKind::Generation,
        SectionKind::Codes,
        SectionKind::CodeLo,
        SectionKind::CodeStep,
        SectionKind::CodeAux,
        SectionKind::RowIds,
        SectionKind::IdRows,
    ];

    /// The code stored in [`SectionEntry::kind`].
    pub fn code(self) -> u32 {
        match self {
            SectionKind::Vectors => 1,
            SectionKind::Pool => 2,
            SectionKind::Nodes => 3,
            SectionKind::Roots => 4,
            SectionKind::LeafOffsets => 5,
            SectionKind::LeafIds => 6,
            SectionKind::Graph => 7,
            SectionKind::Labels => 8,
            SectionKind::Generation => 9,
            SectionKind::Codes => 10,
            SectionKind::CodeLo => 11,
            SectionKind::CodeStep => 12,
            SectionKind::CodeAux => 13,
            SectionKind::RowIds => 14,
            SectionKind::IdRows => 15,
        }
    }

    /// The kind of a code, `None` for codes this version does not know (readers skip those).
    pub fn from_code(code: u32) -> Option<SectionKind> {
        SectionKind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// Lower-case name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            SectionKind::Vectors => "vectors",
            SectionKind::Pool => "pool",
            SectionKind::Nodes => "nodes",
            SectionKind::Roots => "roots",
            SectionKind::LeafOffsets => "leaf_offsets",
            SectionKind::LeafIds => "leaf_ids",
            SectionKind::Graph => "graph",
            SectionKind::Labels => "labels",
            SectionKind::Generation => "generation",
            SectionKind::Codes => "codes",
            SectionKind::CodeLo => "code_lo",
            SectionKind::CodeStep => "code_step",
            SectionKind::CodeAux => "code_aux",
            SectionKind::RowIds => "row_ids",
            SectionKind::IdRows => "id_rows",
        }
    }

    /// True for the sections every index file holds (the graph is required exactly
    /// when `graph_degree > 0`; labels and generation are optional; the vectors are
    /// required without [`FLAG_CODES`], the four code sections with it).
    pub fn required(self) -> bool {
        !matches!(
            self,
            SectionKind::Vectors
                | SectionKind::Graph
                | SectionKind::Labels
                | SectionKind::Generation
                | SectionKind::Codes
                | SectionKind::CodeLo
                | SectionKind::CodeStep
                | SectionKind::CodeAux
                | SectionKind::RowIds
                | SectionKind::IdRows
        )
    }

    /// True for the row-order sections (present exactly when [`FLAG_ROW_ORDER`] is set).
    pub fn is_row_order(self) -> bool {
        matches!(self, SectionKind::RowIds | SectionKind::IdRows)
    }

    /// True for the sections that hold vectors stored as codes.
    pub fn is_code(self) -> bool {
        matches!(
            self,
            SectionKind::Codes | SectionKind::CodeLo | SectionKind::CodeStep | SectionKind::CodeAux
        )
    }

    /// Position in [`SectionKind::ALL`].
    pub(crate) fn slot(self) -> usize {
        self.code() as usize - 1
    }
}

/// One entry of the section table: 24 bytes.
#[repr(C)]
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
pub struct SectionEntry {
    /// Section kind code (see [`SectionKind::code`]); codes a reader does not know are skipped.
    pub kind: U32,
    /// Reserved, written as 0, ignored by readers.
    pub reserved: U32,
    /// Byte offset of the section from the start of the file (a multiple of 64).
    pub offset: U64,
    /// Length of the section in bytes.
    pub length: U64,
}

/// The fixed 512-byte header at the start of an index file, all fields little-endian.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
pub struct Header {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// Format version ([`FORMAT_VERSION`]).
    pub version: U32,
    /// [`ENDIAN_MARKER`]; reads as `0x04030201` in a file written big-endian.
    pub endian: U32,
    /// Size of this header in bytes ([`HEADER_SIZE`]).
    pub header_size: U32,
    /// Metric code ([`panns_core::Metric::code`]).
    pub metric: U32,
    /// Vector dimension (rows are padded to `panns_core::padded_dim(dim)` floats).
    pub dim: U32,
    /// Number of trees (= root references).
    pub n_trees: U32,
    /// Number of items.
    pub n_items: U64,
    /// Number of projection vectors in the pool.
    pub pool_size: U32,
    /// Build parameter: largest leaf (informational).
    pub leaf_size: U32,
    /// Build parameter: pool vectors tried per node (informational).
    pub candidates: U32,
    /// Build parameter: split rule, 0 = mean, 1 = median (informational).
    pub split: U32,
    /// Build parameter: random seed (informational).
    pub seed: U64,
    /// Number of inner nodes.
    pub n_nodes: U64,
    /// Number of leaves.
    pub n_leaves: U64,
    /// Feature flags ([`FLAG_CODES`]); readers reject files with a flag they do not know.
    pub flags: U32,
    /// Neighbours per row of the optional graph section (0: no graph).
    pub graph_degree: U32,
    /// Number of used entries at the start of the section table.
    pub n_sections: U32,
    /// Reserved, written as 0.
    pub reserved0: U32,
    /// XXH64 (seed 0) of the whole file with these 8 bytes read as zero.
    pub checksum: U64,
    /// Total file length in bytes.
    pub file_len: U64,
    /// Reserved, written as 0.
    pub reserved: [u8; 16],
    /// Section table: the first `n_sections` entries are used, the rest are zero.
    pub sections: [SectionEntry; MAX_SECTIONS],
}

const _: () = assert!(size_of::<Header>() == HEADER_SIZE);
const _: () = assert!(std::mem::offset_of!(Header, checksum) == CHECKSUM_OFFSET);

const _: () = assert!(size_of::<SectionEntry>() == 24);

/// Accessors returning the native value of little-endian fields of the same name.
macro_rules! getters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty),* $(,)?) => {
        $(
            $(#[$doc])*
            #[inline]
            pub fn $name(&self) -> $ty {
                self.$name.get()
            }
        )*
    };
}

impl SectionEntry {
    getters! {
        /// [`SectionEntry::kind`] (the section kind code).
        kind: u32,
        /// [`SectionEntry::offset`] in bytes from the start of the file.
        offset: u64,
        /// [`SectionEntry::length`] in bytes.
        length: u64,
    }
}

impl Header {
    getters! {
        /// [`Header::version`].
        version: u32,
        /// [`Header::endian`].
        endian: u32,
        /// [`Header::header_size`].
        header_size: u32,
        /// [`Header::dim`].
        dim: u32,
        /// [`Header::n_trees`].
        n_trees: u32,
        /// [`Header::n_items`].
        n_items: u64,
        /// [`Header::pool_size`].
        pool_size: u32,
        /// [`Header::leaf_size`].
        leaf_size: u32,
        /// [`Header::candidates`].
        candidates: u32,
        /// [`Header::split`].
        split: u32,
        /// [`Header::seed`].
        seed: u64,
        /// [`Header::n_nodes`].
        n_nodes: u64,
        /// [`Header::n_leaves`].
        n_leaves: u64,
        /// [`Header::flags`].
        flags: u32,
        /// [`Header::graph_degree`].
        graph_degree: u32,
        /// [`Header::n_sections`].
        n_sections: u32,
        /// [`Header::checksum`].
        checksum: u64,
        /// [`Header::file_len`].
        file_len: u64,
    }

    /// [`Header::metric`] as stored (the method [`Header::metric`] decodes it).
    #[inline]
    pub fn metric_code(&self) -> u32 {
        self.metric.get()
    }

    /// The used entries of the section table (at most [`MAX_SECTIONS`]).
    pub fn used_sections(&self) -> &[SectionEntry] {
        let n = (self.n_sections() as usize).min(MAX_SECTIONS);
        &self.sections[..n]
    }

    /// The entry of a known section kind, if present.
    pub fn section(&self, kind: SectionKind) -> Option<&SectionEntry> {
        self.used_sections()
            .iter()
            .find(|s| s.kind() == kind.code())
    }

    /// How the vectors are stored ([`FLAG_CODES`]: as 8-bit codes; with
    /// [`FLAG_F32_BESIDE_CODES`] too: codes and `f32`).
    pub fn dtype(&self) -> panns_core::Dtype {
        let f = self.flags();
        if f & FLAG_CODES == 0 {
            panns_core::Dtype::F32
        } else if f & FLAG_F32_BESIDE_CODES == 0 {
            panns_core::Dtype::I8
        } else {
            panns_core::Dtype::I8F32
        }
    }

    /// The metric, if the code is known.
    pub fn metric(&self) -> Option<panns_core::Metric> {
        panns_core::Metric::from_code(self.metric_code())
    }

    /// The build parameters recorded in the header (informational).
    pub fn build_info(&self) -> super::BuildInfo {
        super::BuildInfo {
            leaf_size: self.leaf_size(),
            candidates: self.candidates(),
            split: self.split(),
            seed: self.seed(),
        }
    }
}
