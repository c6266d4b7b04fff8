//! The one error type of panns-core.

/// Everything that can go wrong in panns-core; each message names the offending value.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// A vector's length differs from the index dimension.
    #[error("dimension mismatch: expected {expected} components, got {got}")]
    DimensionMismatch {
        /// The index dimension.
        expected: usize,
        /// The length that was passed.
        got: usize,
    },
    /// A component is NaN or infinite.
    #[error("component {index} of vector {item} is {value}, not a finite number")]
    NonFinite {
        /// Which vector (its would-be id, or 0 for a query).
        item: usize,
        /// Which component.
        index: usize,
        /// The value found.
        value: f32,
    },
    /// A component is larger in magnitude than [`crate::MAX_COMPONENT`].
    #[error(
        "component {index} of vector {item} is {value}: magnitudes above {max:e} are refused (squared distances would overflow f32)",
        max = crate::MAX_COMPONENT
    )]
    TooLarge {
        /// Which vector (its would-be id, or the query's row).
        item: usize,
        /// Which component.
        index: usize,
        /// The value found.
        value: f32,
    },
    /// A flat array of vectors whose length is not a multiple of the dimension.
    #[error("{len} floats are not a whole number of {dim}-dimensional vectors")]
    RaggedBatch {
        /// Number of floats passed.
        len: usize,
        /// The index dimension.
        dim: usize,
    },
    /// An output buffer of the wrong size.
    #[error("output buffer {name} holds {got} entries, expected {expected}")]
    BufferSize {
        /// Which buffer.
        name: &'static str,
        /// Entries needed.
        expected: usize,
        /// Entries given.
        got: usize,
    },
    /// Memory could not be allocated (the estimate is named, so the cause is plain).
    #[error("out of memory: could not allocate {bytes} bytes for the {what}")]
    OutOfMemory {
        /// What was being allocated.
        what: &'static str,
        /// How many bytes were asked for.
        bytes: usize,
    },
    /// A zero vector cannot be normalised for the angular metric.
    #[error("vector {item} has zero length; the angular metric needs a non-zero vector")]
    ZeroVector {
        /// Which vector (its would-be id, or 0 for a query).
        item: usize,
    },
    /// `k` must be at least 1.
    #[error("k must be at least 1, got {0}")]
    InvalidK(usize),
    /// The index has no items.
    #[error("the index is empty: add at least one vector before building or searching")]
    Empty,
    /// A build or search parameter is out of range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// The value given, as text.
        value: String,
        /// What is allowed.
        reason: &'static str,
    },
    /// The dimension is zero or too large.
    #[error("invalid dimension {0}: must be between 1 and {max}", max = crate::MAX_DIM)]
    InvalidDimension(usize),
    /// Too many items for 31-bit ids.
    #[error("too many items: {0} (at most {max})", max = crate::MAX_ITEMS)]
    TooManyItems(usize),
    /// An unknown metric name.
    #[error("unknown metric {0:?}: expected \"euclidean\", \"angular\" or \"dot\"")]
    UnknownMetric(String),
    /// An unknown vector storage type name.
    #[error("unknown dtype {0:?}: expected \"f32\", \"i8\" or \"i8+f32\"")]
    UnknownDtype(String),
    /// An item id outside the index.
    #[error("item id {id} is out of range: the index has {len} items")]
    IdOutOfRange {
        /// The id asked for.
        id: u64,
        /// Number of items.
        len: usize,
    },
    /// Borrowed index parts (e.g. from a file) are inconsistent.
    #[error("corrupt index: {0}")]
    Corrupt(String),
}

impl Error {
    /// An [`Error::InvalidParameter`] for `name = value`.
    pub fn parameter(name: &'static str, value: impl ToString, reason: &'static str) -> Error {
        Error::InvalidParameter {
            name,
            value: value.to_string(),
            reason,
        }
    }
}

impl Error {
    /// The same error naming row `item` of a batch (for errors about one vector).
    pub fn with_item(self, item: usize) -> Error {
        match self {
            Error::NonFinite { index, value, .. } => Error::NonFinite { item, index, value },
            Error::TooLarge { index, value, .. } => Error::TooLarge { item, index, value },
            Error::ZeroVector { .. } => Error::ZeroVector { item },
            other => other,
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
