//! Status codes, the thread-local error message, the panic boundary and argument checks.
//!
//! Every entry point runs its body through [`guard`] (or [`guard_value`] for the few
//! functions that cannot fail): a Rust panic is caught there and turned into
//! [`PannsStatus::PANNS_PANIC`], and every error, whichever crate it comes from, is
//! turned into a status code and a message in exactly one place ([`FfiError`]'s `From`
//! impls).

use std::cell::{Cell, RefCell};
use std::ffi::{CStr, CString, c_char};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

/// Result of every fallible panns function. `PANNS_OK` (0) is success; on any other
/// value `panns_last_error_message()` (or the `char **error` of the `_e` twin of the
/// function) describes the problem and `panns_status_string()` names the code. In C
/// the type is a `uint32_t`; codes are never renumbered, new ones are only appended.
#[repr(u32)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PannsStatus {
    /// Success.
    PANNS_OK = 0,
    /// A required pointer argument was NULL.
    PANNS_NULL_POINTER = 1,
    /// An out-of-range parameter (k = 0, n_trees = 0, bad metric code, bad UTF-8 path, misaligned pointer...).
    PANNS_INVALID_ARGUMENT = 2,
    /// A vector's length differs from the index dimension.
    PANNS_DIMENSION_MISMATCH = 3,
    /// A NaN or infinite component.
    PANNS_NON_FINITE = 4,
    /// A zero vector under the angular metric.
    PANNS_ZERO_VECTOR = 5,
    /// Building or searching with no items.
    PANNS_EMPTY = 6,
    /// A file could not be read or written (the message names the path and the OS error).
    PANNS_IO = 7,
    /// The file is not a valid panns index / dataset (the message says what is wrong).
    PANNS_CORRUPT = 8,
    /// A future format version, the other endianness, an unsupported dataset type.
    PANNS_UNSUPPORTED = 9,
    /// An item id beyond the index, or a label a live index does not hold.
    PANNS_OUT_OF_RANGE = 10,
    /// An output buffer is shorter than needed.
    PANNS_BUFFER_TOO_SMALL = 11,
    /// Internal error (a bug in panns): a Rust panic was caught at the boundary.
    PANNS_PANIC = 12,
    /// Memory could not be allocated (the message names what and how much).
    PANNS_OUT_OF_MEMORY = 13,
    /// Another writer (in this or another process) holds a live index's lock file:
    /// one writer at a time; open it with writable = 0 to read.
    PANNS_LOCKED = 15,
    /// A change was asked of a live index opened for reading only.
    PANNS_READ_ONLY = 16,
}

/// An error on its way out through the C ABI: a status code and a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FfiError {
    /// The status returned to the caller.
    pub status: PannsStatus,
    /// The text `panns_last_error_message()` will return.
    pub message: String,
}

impl FfiError {
    /// An error with an explicit status.
    pub fn new(status: PannsStatus, message: impl Into<String>) -> Self {
        FfiError {
            status,
            message: message.into(),
        }
    }
    /// `PANNS_NULL_POINTER` naming the argument.
    pub fn null(arg: &str) -> Self {
        Self::new(
            PannsStatus::PANNS_NULL_POINTER,
            format!("argument `{arg}` is NULL"),
        )
    }
    /// `PANNS_INVALID_ARGUMENT`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(PannsStatus::PANNS_INVALID_ARGUMENT, message)
    }
    /// The same error with `context: ` in front of its message.
    pub fn context(mut self, context: impl std::fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl From<panns_core::Error> for FfiError {
    fn from(e: panns_core::Error) -> Self {
        use PannsStatus::*;
        use panns_core::Error as E;
        let status = match &e {
            E::DimensionMismatch { .. } => PANNS_DIMENSION_MISMATCH,
            E::NonFinite { .. } => PANNS_NON_FINITE,
            E::ZeroVector { .. } => PANNS_ZERO_VECTOR,
            E::Empty => PANNS_EMPTY,
            E::IdOutOfRange { .. } => PANNS_OUT_OF_RANGE,
            E::Corrupt(_) => PANNS_CORRUPT,
            E::RaggedBatch { .. } => PANNS_DIMENSION_MISMATCH,
            E::BufferSize { .. } => PANNS_BUFFER_TOO_SMALL,
            E::OutOfMemory { .. } => PANNS_OUT_OF_MEMORY,
            E::TooLarge { .. }
            | E::InvalidK(_)
            | E::InvalidParameter { .. }
            | E::InvalidDimension(_)
            | E::TooManyItems(_)
            | E::UnknownMetric(_) => PANNS_INVALID_ARGUMENT,
            // `Error` is non-exhaustive: a variant added later is most likely a bad argument.
            _ => PANNS_INVALID_ARGUMENT,
        };
        FfiError::new(status, e.to_string())
    }
}

impl From<panns_io::Error> for FfiError {
    fn from(e: panns_io::Error) -> Self {
        if let panns_io::Error::Core(core) = e {
            return core.into();
        }
        FfiError::new(io_status(&e), e.to_string())
    }
}

/// The status of a `panns_io` error.
fn io_status(e: &panns_io::Error) -> PannsStatus {
    use PannsStatus::*;
    use panns_io::Error as E;
    match e {
        E::Core(core) => FfiError::from(core.clone()).status,
        // A shard's error keeps the status of its cause (a missing file is PANNS_IO).
        E::Shard { source, .. } => io_status(source),
        E::Io { .. } => PANNS_IO,
        E::NonFinite { .. } => PANNS_NON_FINITE,
        E::Parse { .. }
        | E::RaggedRow { .. }
        | E::Malformed { .. }
        | E::Hdf5 { .. }
        | E::NotAnIndex { .. }
        | E::Corrupt { .. }
        | E::ChecksumMismatch { .. }
        | E::CorruptLog { .. } => PANNS_CORRUPT,
        E::Locked { .. } => PANNS_LOCKED,
        E::ReadOnly { .. } => PANNS_READ_ONLY,
        E::BadBatch { .. } => PANNS_INVALID_ARGUMENT,
        E::Unsupported { .. } | E::UnsupportedVersion { .. } | E::WrongEndianness { .. } => {
            PANNS_UNSUPPORTED
        }
        E::DatasetNotFound { .. } | E::InvalidArgument { .. } => PANNS_INVALID_ARGUMENT,
        // `Error` is non-exhaustive: a variant added later is most likely about the file.
        _ => PANNS_IO,
    }
}

/// Shorthand for the result of an entry point's body.
pub type FfiResult<T> = Result<T, FfiError>;

impl PannsStatus {
    /// A short static description of the code (what `panns_status_string` returns).
    pub fn describe(code: u32) -> &'static CStr {
        match code {
            0 => c"ok",
            1 => c"null pointer argument",
            2 => c"invalid argument",
            3 => c"dimension mismatch",
            4 => c"non-finite value",
            5 => c"zero vector under the angular metric",
            6 => c"no items",
            7 => c"input/output error",
            8 => c"corrupt index or dataset",
            9 => c"unsupported format or type",
            10 => c"item id out of range",
            11 => c"buffer too small",
            12 => c"internal error (caught panic)",
            13 => c"out of memory",
            15 => c"live index locked by another writer",
            16 => c"live index open read-only",
            _ => c"unknown status code",
        }
    }
}

thread_local! {
    /// The message of the last failed call on this thread ("" after a success).
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
    /// How many guards are running on this thread: the panic hook stays silent while
    /// it is above zero.
    static IN_GUARD: Cell<u32> = const { Cell::new(0) };
    /// Where the last panic caught by a guard on this thread happened.
    static PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Installs (once per process) a panic hook that is silent for panics inside a guard
/// (their message goes into the returned error instead of the host's stderr) and
/// hands every other panic to the hook that was installed before.
fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let inside = IN_GUARD.try_with(|g| g.get() > 0).unwrap_or(false);
            if inside {
                let at = info.location().map(|l| l.to_string());
                let _ = PANIC_LOCATION.try_with(|p| {
                    if let Ok(mut p) = p.try_borrow_mut() {
                        *p = at;
                    }
                });
            } else {
                previous(info);
            }
        }));
    });
}

/// Marks this thread as inside a guard for its lifetime.
struct InGuard;

impl InGuard {
    fn enter() -> Self {
        install_panic_hook();
        IN_GUARD.with(|g| g.set(g.get() + 1));
        InGuard
    }
}

impl Drop for InGuard {
    fn drop(&mut self) {
        IN_GUARD.with(|g| g.set(g.get().saturating_sub(1)));
    }
}

/// Runs `f` with the silent panic hook active on this thread.
fn catch<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    let _in = InGuard::enter();
    panic::catch_unwind(AssertUnwindSafe(f))
}

/// Stores `message` as this thread's last error (interior NULs become spaces).
pub(crate) fn set_last_error(message: &str) {
    let c = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// A pointer to this thread's last error message, valid until the next call that
/// sets or clears it on this thread.
pub(crate) fn last_error_ptr() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// Text of a caught panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

fn panicked(payload: Box<dyn std::any::Any + Send>) {
    let mut msg = panic_message(&*payload);
    if let Some(at) = PANIC_LOCATION.with(|p| p.borrow_mut().take()) {
        msg = format!("{msg} (at {at})");
    }
    // Dropping a payload can itself panic; never let that unwind out of here.
    let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(payload)));
    set_last_error(&format!(
        "internal error: {msg}. If an index file was written or truncated in place while \
         open, that is the cause (replace index files by renaming a new file over them); \
         otherwise this is a bug in panns, please report it"
    ));
}

/// Runs the body of a fallible entry point: catches panics, records the message of an
/// error (or clears it on success) and returns the status code.
pub fn guard(f: impl FnOnce() -> FfiResult<()>) -> PannsStatus {
    match catch(f) {
        Ok(Ok(())) => {
            set_last_error("");
            PannsStatus::PANNS_OK
        }
        Ok(Err(e)) => {
            set_last_error(&e.message);
            e.status
        }
        Err(payload) => {
            panicked(payload);
            PannsStatus::PANNS_PANIC
        }
    }
}

/// Runs the body of an entry point that cannot fail (accessors, `free`): catches a
/// panic, returning `default` and recording the panic message; otherwise leaves the
/// last error message untouched.
pub fn guard_value<T>(default: T, f: impl FnOnce() -> T) -> T {
    match catch(f) {
        Ok(v) => v,
        Err(payload) => {
            panicked(payload);
            default
        }
    }
}

/// Checks a pointer + length pair and borrows it as a slice.
///
/// # Safety
/// If `ptr` is non-NULL it must point to `len` readable, initialised `T`s that stay
/// valid and unmodified for `'a`.
pub(crate) unsafe fn slice<'a, T>(ptr: *const T, len: usize, arg: &str) -> FfiResult<&'a [T]> {
    check_ptr(ptr, len, arg)?;
    // SAFETY: `ptr` is non-NULL and aligned, `len * size_of::<T>()` fits in `isize`
    // (checked above), and the caller guarantees `len` readable elements.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Checks a pointer + length pair and borrows it as a mutable slice.
///
/// # Safety
/// If `ptr` is non-NULL it must point to `len` writable `T`s, valid for `'a` and not
/// accessed through any other pointer meanwhile.
pub(crate) unsafe fn slice_mut<'a, T>(
    ptr: *mut T,
    len: usize,
    arg: &str,
) -> FfiResult<&'a mut [T]> {
    check_ptr(ptr, len, arg)?;
    // SAFETY: as in `slice`, plus the caller guarantees exclusive access.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// Checks that `ptr` is non-NULL, aligned for `T`, and that `len` `T`s fit in `isize`.
pub(crate) fn check_ptr<T>(ptr: *const T, len: usize, arg: &str) -> FfiResult<()> {
    if ptr.is_null() {
        return Err(FfiError::null(arg));
    }
    if !ptr.is_aligned() {
        return Err(FfiError::invalid(format!(
            "argument `{arg}` is not aligned to {} bytes",
            std::mem::align_of::<T>()
        )));
    }
    if len
        .checked_mul(std::mem::size_of::<T>())
        .is_none_or(|bytes| bytes > isize::MAX as usize)
    {
        return Err(FfiError::invalid(format!(
            "length {len} of argument `{arg}` is too large"
        )));
    }
    Ok(())
}

/// `a * b`, or `PANNS_INVALID_ARGUMENT` naming the product on overflow.
pub(crate) fn mul(a: usize, b: usize, what: &str) -> FfiResult<usize> {
    a.checked_mul(b)
        .ok_or_else(|| FfiError::invalid(format!("{what} = {a} x {b} overflows")))
}

/// Borrows a NUL-terminated UTF-8 path.
///
/// # Safety
/// If `ptr` is non-NULL it must point to a NUL-terminated string valid for `'a`.
pub(crate) unsafe fn path_arg<'a>(ptr: *const c_char, arg: &str) -> FfiResult<&'a str> {
    if ptr.is_null() {
        return Err(FfiError::null(arg));
    }
    // SAFETY: non-NULL, and the caller guarantees a NUL-terminated string.
    let c = unsafe { CStr::from_ptr(ptr) };
    let s = c.to_str().map_err(|e| {
        FfiError::invalid(format!(
            "argument `{arg}` is not valid UTF-8 ({e}): {:?}",
            c.to_string_lossy()
        ))
    })?;
    if s.is_empty() {
        return Err(FfiError::invalid(format!("argument `{arg}` is empty")));
    }
    Ok(s)
}

/// Writes `value` through an out-pointer that must not be NULL.
///
/// # Safety
/// If `ptr` is non-NULL it must be valid for a write of `T`.
pub(crate) unsafe fn write_out<T>(ptr: *mut T, value: T, arg: &str) -> FfiResult<()> {
    check_ptr(ptr, 1, arg)?;
    // SAFETY: non-NULL and aligned (checked); the caller guarantees it is writable.
    unsafe { ptr.write(value) };
    Ok(())
}

/// Checks an out-pointer that may be NULL (aligned when it is not), before any side effect.
pub(crate) fn check_opt<T>(ptr: *const T, arg: &str) -> FfiResult<()> {
    if ptr.is_null() {
        Ok(())
    } else {
        check_ptr(ptr, 1, arg)
    }
}

/// Writes `value` through an out-pointer that may be NULL (then nothing is written).
///
/// # Safety
/// If `ptr` is non-NULL it must be valid for a write of `T`.
pub(crate) unsafe fn write_opt<T>(ptr: *mut T, value: T, arg: &str) -> FfiResult<()> {
    if ptr.is_null() {
        return Ok(());
    }
    // SAFETY: forwarded from the caller.
    unsafe { write_out(ptr, value, arg) }
}

/// Hands the outcome of a call to the `char **error` of its `_e` twin: NULL on
/// success, else a copy of the message (freed by `panns_error_free`). A NULL `error`
/// is allowed (nothing is written); a misaligned one is ignored. Returns `status`.
///
/// # Safety
/// `error` must be NULL or valid for writing one pointer.
pub(crate) unsafe fn report(status: PannsStatus, error: *mut *mut c_char) -> PannsStatus {
    if error.is_null() || !error.is_aligned() {
        return status;
    }
    let msg = if status == PannsStatus::PANNS_OK {
        std::ptr::null_mut()
    } else {
        guard_value(std::ptr::null_mut(), || {
            LAST_ERROR.with(|e| e.borrow().clone()).into_raw()
        })
    };
    // SAFETY: non-NULL and aligned (checked); the caller guarantees it is writable.
    unsafe { error.write(msg) };
    status
}
