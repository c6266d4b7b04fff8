//! The one error type of `panns-io`.
//!
//! Every variant names the file it is about, and where it is known the line and column (text
//! files, both 1-based) or the row and dimension (binary files, both 0-based like vector ids).

use std::path::{Path, PathBuf};

/// Errors of the dataset readers (and, later, of the index file format).
///
/// The enum is `#[non_exhaustive]`: new variants may be added without a major version bump, so
/// match it with a wildcard arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// A cell of a delimited text file is not a finite number (or the line is not UTF-8).
    #[error("{}: line {line}, column {column}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// 1-based column (cell) number.
        column: usize,
        /// What is wrong, quoting the cell text.
        message: String,
    },

    /// A row of a delimited text file has a different number of cells than the first data row.
    #[error(
        "{}: line {line} has {columns} columns, expected {expected} (as on line {first_line})",
        path.display()
    )]
    RaggedRow {
        /// The file.
        path: PathBuf,
        /// 1-based line number of the offending row.
        line: usize,
        /// How many cells that line has.
        columns: usize,
        /// How many cells the first data row has.
        expected: usize,
        /// 1-based line number of the first data row.
        first_line: usize,
    },

    /// A value in a binary file is NaN or infinite (or, converted to `f32`, out of range).
    #[error(
        "{}: row {row}, dimension {dim}: value {value:?} is not a finite f32 (rows and dimensions count from 0)",
        path.display()
    )]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// 0-based row (vector) index.
        row: usize,
        /// 0-based dimension (column) index.
        dim: usize,
        /// The offending value as stored.
        value: f64,
    },

    /// The file's structure is broken: truncated, wrong size, inconsistent dimensions, a bad
    /// header, no data at all.
    #[error("{}: {message}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the offending sizes or positions.
        message: String,
    },

    /// The file is well-formed but uses something these readers do not handle (a dtype, Fortran
    /// order, a shape that is not 2-D, ...).
    #[error("{}: unsupported: {message}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is unsupported, naming the value found.
        message: String,
    },

    /// An HDF5 file has no dataset of the requested name.
    #[error(
        "{}: no dataset named '{name}'; the file has: {}",
        path.display(),
        if available.is_empty() { "(no datasets)".to_string() } else { available.join(", ") }
    )]
    DatasetNotFound {
        /// The file.
        path: PathBuf,
        /// The name asked for.
        name: String,
        /// The datasets that exist at the file's root.
        available: Vec<String>,
    },

    /// The HDF5 decoder reported an error.
    #[error("{}: HDF5: {message}", path.display())]
    Hdf5 {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        message: String,
    },

    /// The caller's options do not fit the file or are invalid (unknown format name, missing
    /// dimension for a raw file, dimension 0, ...).
    #[error("{message}")]
    InvalidArgument {
        /// What is wrong; names the file where there is one.
        message: String,
    },

    /// The file does not start with the panns index magic bytes.
    #[error("not a panns index file: {}", path.display())]
    NotAnIndex {
        /// The file.
        path: PathBuf,
    },

    /// The index file uses a format version this library cannot read.
    #[error(
        "{}: format version {found} is {} than this library supports ({supported}){}",
        path.display(),
        if found > supported { "newer" } else { "older" },
        if found > supported { "; upgrade panns" } else { "; rebuild the index" }
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version stored in the file.
        found: u32,
        /// The version this library reads and writes.
        supported: u32,
    },

    /// The index file was written on a big-endian machine (files are little-endian).
    #[error(
        "{}: index file was written on a big-endian machine; this library reads little-endian index files only",
        path.display()
    )]
    WrongEndianness {
        /// The file.
        path: PathBuf,
    },

    /// The index file's header, section table or tree structure is inconsistent.
    #[error("{}: corrupt index file: {detail}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the offending field, section, node or id.
        detail: String,
    },

    /// The index file's contents do not match its stored checksum.
    #[error(
        "{}: checksum mismatch: stored {stored:#018x}, computed {computed:#018x} (the file is damaged)",
        path.display()
    )]
    ChecksumMismatch {
        /// The file.
        path: PathBuf,
        /// The checksum stored in the header.
        stored: u64,
        /// The checksum of the file's contents.
        computed: u64,
    },

    /// Another process (or another `LiveIndex` in this one) holds the writer lock of a
    /// live index.
    #[error(
        "{}: another writer holds this lock file (one writer at a time; open with writable = false to read)",
        lock.display()
    )]
    Locked {
        /// The lock file.
        lock: PathBuf,
    },

    /// A complete record of a live index's log is damaged (not a torn tail, which is
    /// ignored): the log cannot be replayed past it.
    #[error(
        "{}: corrupt log record {record} (counting from 0) at byte offset {offset}: {detail}",
        path.display()
    )]
    CorruptLog {
        /// The log file.
        path: PathBuf,
        /// The record's number, counting from 0 after the log header.
        record: u64,
        /// The record's byte offset in the log file.
        offset: u64,
        /// What is wrong.
        detail: String,
    },

    /// A row of a batch given to `LiveIndex::add_batch` (or `add`) was refused; nothing
    /// of the batch was applied.
    #[error("batch row {row} (label {label}): {detail}; nothing of the batch was applied")]
    BadBatch {
        /// The row, counting from 0.
        row: usize,
        /// Its label.
        label: u64,
        /// What is wrong with it.
        detail: String,
    },

    /// A change was asked of a live index opened for reading only.
    #[error(
        "{}: the live index is open read-only; open it with writable = true to change it",
        path.display()
    )]
    ReadOnly {
        /// The index file.
        path: PathBuf,
    },

    /// A shard of a sharded index (see [`crate::ShardedIndex`]) could not be opened or
    /// disagrees with its manifest.
    #[error("{}: shard {shard}: {source}", manifest.display())]
    Shard {
        /// The manifest file.
        manifest: PathBuf,
        /// The shard's position in the manifest, from 0.
        shard: usize,
        /// What is wrong (names the shard file).
        #[source]
        source: Box<Error>,
    },

    /// An error of `panns-core` (building or searching an index).
    #[error(transparent)]
    Core(#[from] panns_core::Error),
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An [`Error::Io`] for `path`.
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// An [`Error::Malformed`] for `path`.
    pub(crate) fn malformed(path: &Path, message: impl Into<String>) -> Self {
        Error::Malformed {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    /// An [`Error::Unsupported`] for `path`.
    pub(crate) fn unsupported(path: &Path, message: impl Into<String>) -> Self {
        Error::Unsupported {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    /// An [`Error::InvalidArgument`].
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidArgument {
            message: message.into(),
        }
    }
}
