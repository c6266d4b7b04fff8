//! How an index stores its vectors: `f32`, 8-bit codes, or both (`panns_index_set_dtype`).

use crate::error::{FfiError, PannsStatus, guard, guard_value};
use crate::index::{PannsIndex, index_ref};
use panns_core::Dtype;

/// Vector storage codes, as taken by `panns_index_set_dtype` and returned by
/// `panns_index_dtype`.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PannsDtype {
    /// 32-bit floats, as given (the default).
    PANNS_DTYPE_F32 = 0,
    /// One byte per component with a per-component range (scalar quantization): a
    /// quarter of the bytes; distances are those to the decoded vectors.
    PANNS_DTYPE_I8 = 1,
    /// Both: searches walk the 8-bit codes and re-rank their best candidates with the
    /// `f32` vectors kept beside them (exact distances; five quarters of the bytes).
    PANNS_DTYPE_I8_F32 = 2,
}

/// How `idx` stores its vectors: a `PannsDtype` code (0 for NULL).
///
/// # Safety
/// `idx` must be NULL or a live index.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_index_dtype(idx: *const PannsIndex) -> u32 {
    // SAFETY: forwarded from the caller.
    guard_value(0, || {
        unsafe { index_ref(idx) }.map_or(0, |i| i.0.dtype().code())
    })
}

/// Re-stores the vectors of `idx` as `dtype` (a `PannsDtype` code), keeping its trees
/// and graph: `PANNS_DTYPE_I8` encodes them in one byte per component (a quarter of
/// the bytes, searched with integer-weighted kernels); `PANNS_DTYPE_I8_F32` adds the
/// codes beside the `f32` vectors (walks score codes, the best candidates are re-ranked
/// from `f32`); `PANNS_DTYPE_F32` keeps the `f32` vectors, or decodes the codes of an
/// `i8` index (the rounding stays). The index then lives in memory; save it to keep the change.
/// Build the graph first (`panns_index_build_graph`): on codes it is built from the
/// decoded vectors. Errors: `PANNS_NULL_POINTER`, `PANNS_INVALID_ARGUMENT` (unknown
/// code), `PANNS_OUT_OF_MEMORY`; on error the index is unchanged.
///
/// # Safety
/// `idx` must be NULL or a live index that no other thread uses during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panns_index_set_dtype(idx: *mut PannsIndex, dtype: u32) -> PannsStatus {
    guard(|| {
        // SAFETY: the caller guarantees NULL or a live, unshared handle.
        let idx = unsafe { idx.as_mut() }.ok_or_else(|| FfiError::null("index"))?;
        let dtype = Dtype::from_code(dtype).ok_or_else(|| {
            FfiError::invalid(format!(
                "dtype = {dtype}: must be 0 (PANNS_DTYPE_F32), 1 (PANNS_DTYPE_I8) or 2 \
                 (PANNS_DTYPE_I8_F32)"
            ))
        })?;
        if idx.0.dtype() != dtype {
            idx.0 = idx.0.to_dtype(dtype)?;
        }
        Ok(())
    })
}
