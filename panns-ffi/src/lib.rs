//! The C ABI of panns (`libpanns.so`, `libpanns.a`, `include/panns.h`).
//!
//! The contract is `docs/c-api.md`; `include/panns.h` is generated from this crate by
//! cbindgen (see `tests/header.rs`). Every entry point:
//! - runs under `catch_unwind` ([`error::guard`]): no panic crosses the boundary;
//! - checks every pointer for NULL (and alignment), every length and every code;
//! - returns a [`PannsStatus`] and, on failure, leaves a message for the calling
//!   thread in [`panns_last_error_message`].
#![warn(missing_docs)]

pub mod allow_list;
pub mod builder;
pub mod dataset;
pub mod dtype;
pub mod error;
pub mod filter;
pub mod index;
pub mod live;
pub mod live_filter;
pub mod shard;
pub mod shard_filter;
pub mod twins;

pub use allow_list::PannsAllowList;
pub use builder::{PannsBuildOptions, PannsBuilder};
pub use dataset::PannsReadOptions;
pub use dtype::PannsDtype;
pub use error::{FfiError, PannsStatus};
pub use filter::{PannsFilter, PannsFilterFn, PannsFilterKind};
pub use index::{PannsIndex, PannsSearchStats};
pub use live::PannsLive;
pub use live_filter::{PannsLabelFilter, PannsLabelFilterFn, PannsLabelFilterKind};
pub use shard::PannsShardedIndex;

use std::ffi::c_char;

/// Flag of `panns_index_open` and `panns_index_open_buffer`: verify the checksum
/// before using the index (reads every byte once). Other flag bits are rejected.
pub const PANNS_OPEN_VERIFY: u32 = 1;

/// Distance metric codes, as taken by `panns_builder_new` and returned by
/// `panns_index_metric`.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PannsMetric {
    /// Euclidean (L2) distance.
    PANNS_EUCLIDEAN = 0,
    /// Cosine distance `1 - cos(a, b)`; vectors are unit-normalised on insert.
    PANNS_ANGULAR = 1,
    /// Negative inner product `-(a . b)`.
    PANNS_DOT = 2,
}

/// The library version, e.g. "1.1.0" (a static string; never free it).
#[unsafe(no_mangle)]
pub extern "C" fn panns_version() -> *const c_char {
    const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    VERSION.as_ptr().cast()
}

/// The message of the last failed call on the calling thread, or "" when the last
/// status-returning call on this thread succeeded. Never NULL. The pointer stays valid
/// until the next status-returning panns call on this thread; copy the text to keep it.
/// Functions that return no status (accessors, `*_free`, `panns_version`) leave it
/// unchanged.
#[unsafe(no_mangle)]
pub extern "C" fn panns_last_error_message() -> *const c_char {
    error::guard_value(c"".as_ptr(), error::last_error_ptr)
}

/// A short static description of a status code, e.g. "dimension mismatch" for
/// `PANNS_DIMENSION_MISMATCH` ("unknown status code" for a value that is not one).
/// Stateless: any thread, any time, even before any other call; never NULL; never
/// free it.
#[unsafe(no_mangle)]
pub extern "C" fn panns_status_string(code: u32) -> *const c_char {
    error::guard_value(c"unknown status code".as_ptr(), || {
        PannsStatus::describe(code).as_ptr()
    })
}

/// Frees a message returned through the `char **error` argument of a `_e` function
/// (NULL is a no-op). Any thread may free it.
///
/// # Safety
/// `error` must be NULL or a message from a `_e` function, not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_error_free(error: *mut c_char) {
    error::guard_value((), || {
        if !error.is_null() {
            // SAFETY: the caller guarantees a pointer from `CString::into_raw`, freed once.
            drop(unsafe { std::ffi::CString::from_raw(error) });
        }
    })
}

/// The Rust examples of README.md, compiled and run as doctests (here, where
/// both panns-core and panns-io are dependencies).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
