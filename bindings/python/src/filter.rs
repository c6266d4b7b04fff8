//! `filter=` arguments of searches: boolean masks and id arrays packed into bitmaps,
//! callables, and [`PreparedFilter`], an allow-list made once by `prepare_filter` and
//! reused by many queries.

use std::sync::Arc;

use numpy::{PyArray1, PyArrayMethods, PyUntypedArrayMethods};
use panns_core::{AllowList, Filter, Index, Neighbor, SearchParams, SearchStats};
use parking_lot::Mutex;
use pyo3::prelude::*;

use crate::{core_err, invalid};

/// `panns.PreparedFilter`: an allow-list made once by `index.prepare_filter(filter)` from a
/// boolean mask or an array of ids, then passed as `filter=` to many queries of that index.
/// Each query then skips packing the mask and listing the allowed items, which is most of
/// a selective filter's cost per call. Immutable, so safe to share between threads.
#[pyclass(frozen, module = "panns._panns", name = "PreparedFilter")]
pub(crate) struct PreparedFilter {
    list: Arc<AllowList>,
}

#[pymethods]
impl PreparedFilter {
    /// Number of allowed items.
    fn __len__(&self) -> usize {
        self.list.len()
    }

    /// Number of items of the index the filter was prepared for.
    #[getter]
    fn items(&self) -> usize {
        self.list.items()
    }

    /// The allowed ids, ascending (a new `uint32` array).
    fn ids<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        PyArray1::from_slice(py, self.list.ids())
    }

    fn __repr__(&self) -> String {
        format!(
            "PreparedFilter({} of {} items allowed)",
            self.list.len(),
            self.list.items()
        )
    }
}

/// `prepare_filter(filter)` of an index of `n` items: a mask or an id array (or an
/// already prepared filter) as a [`PreparedFilter`]; a callable cannot be prepared.
pub(crate) fn prepare(py: Python<'_>, f: &Bound<'_, PyAny>, n: usize) -> PyResult<PreparedFilter> {
    let list = match parse_filter(py, Some(f), n)? {
        Some(PyFilter::List(list)) => list,
        Some(PyFilter::Bits(bits)) => Arc::new(
            py.detach(|| AllowList::from_bits(n, bits))
                .map_err(|e| core_err(py, e))?,
        ),
        Some(PyFilter::Call(_)) | None => {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "prepare_filter takes a boolean mask or an array of ids (a callable or None \
                 cannot be prepared; pass a callable to query(filter=...) directly)",
            ));
        }
    };
    Ok(PreparedFilter { list })
}

/// A `filter=` argument: an allow-bitmap (from a boolean mask or an array of ids), a
/// prepared allow-list, or a Python callable taking an id.
pub(crate) enum PyFilter {
    Bits(Vec<u64>),
    /// A [`PreparedFilter`]'s list (shared, not copied).
    List(Arc<AllowList>),
    Call(Py<PyAny>),
}

/// Packs a mask of bytes (non-zero: allowed) into a bitmap, eight bytes per multiply.
fn pack_mask(mask: &[u8]) -> Vec<u64> {
    /// The 8 bits of 8 bytes (bit i: byte i is non-zero).
    #[inline]
    fn pack8(b: [u8; 8]) -> u64 {
        // Bit 0 of every byte := any bit of that byte.
        let mut x = u64::from_le_bytes(b);
        x |= x >> 4;
        x |= x >> 2;
        x |= x >> 1;
        x &= 0x0101_0101_0101_0101;
        // Byte i's bit lands at bit 56 + i (no two partial products collide).
        x.wrapping_mul(0x0102_0408_1020_4080) >> 56
    }
    let mut bits = vec![0u64; mask.len().div_ceil(64)];
    #[cfg(target_arch = "x86_64")]
    let done = if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, just checked.
        unsafe { pack_words_avx2(mask, &mut bits) }
    } else {
        use std::arch::x86_64::{
            _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_setzero_si128,
        };
        // Whole words, 16 bytes per compare (SSE2 is part of x86_64).
        let words = mask.chunks_exact(64);
        let n_words = words.len();
        for (word, chunk) in bits.iter_mut().zip(words) {
            let mut w = 0u64;
            for j in 0..4 {
                // SAFETY: SSE2 is always available on x86_64, and the unaligned load
                // reads bytes 16 j .. 16 j + 16 of a 64-byte chunk.
                let zero = unsafe {
                    let v = _mm_loadu_si128(chunk.as_ptr().add(16 * j).cast());
                    _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128())) as u32
                };
                w |= u64::from(!zero & 0xffff) << (16 * j);
            }
            *word = w;
        }
        n_words * 64
    };
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    let rest = &mask[done..];
    let mut eights = rest.chunks_exact(8);
    for (i, eight) in eights.by_ref().enumerate() {
        let i = i + done / 8;
        let b: [u8; 8] = eight.try_into().unwrap_or_default();
        bits[i / 8] |= pack8(b) << (8 * (i % 8));
    }
    let tail = eights.remainder();
    if !tail.is_empty() {
        let mut b = [0u8; 8];
        b[..tail.len()].copy_from_slice(tail);
        let i = mask.len() / 8;
        bits[i / 8] |= pack8(b) << (8 * (i % 8));
    }
    bits
}

/// [`pack_mask`]'s whole 64-byte words with AVX2 (32 bytes per compare); returns the
/// number of mask bytes done.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn pack_words_avx2(mask: &[u8], bits: &mut [u64]) -> usize {
    use std::arch::x86_64::{
        _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_setzero_si256,
    };
    let words = mask.chunks_exact(64);
    let n_words = words.len();
    for (word, chunk) in bits.iter_mut().zip(words) {
        // SAFETY: two unaligned 32-byte loads inside a 64-byte chunk.
        let (lo, hi) = unsafe {
            let zero = _mm256_setzero_si256();
            let a = _mm256_loadu_si256(chunk.as_ptr().cast());
            let b = _mm256_loadu_si256(chunk.as_ptr().add(32).cast());
            (
                _mm256_movemask_epi8(_mm256_cmpeq_epi8(a, zero)) as u32,
                _mm256_movemask_epi8(_mm256_cmpeq_epi8(b, zero)) as u32,
            )
        };
        *word = u64::from(!lo) | u64::from(!hi) << 32;
    }
    n_words * 64
}

/// Parses `filter=` for an index of `n` items (`None`: no filter).
pub(crate) fn parse_filter(
    py: Python<'_>,
    f: Option<&Bound<'_, PyAny>>,
    n: usize,
) -> PyResult<Option<PyFilter>> {
    let Some(f) = f.filter(|f| !f.is_none()) else {
        return Ok(None);
    };
    if let Ok(p) = f.cast::<PreparedFilter>() {
        let list = &p.get().list;
        if list.items() != n {
            return Err(invalid(
                py,
                format!(
                    "this prepared filter was made for an index of {} items; this one has {n}",
                    list.items()
                ),
            ));
        }
        return Ok(Some(PyFilter::List(Arc::clone(list))));
    }
    if f.is_callable() {
        return Ok(Some(PyFilter::Call(f.clone().unbind())));
    }
    // The common case, a contiguous 1-D bool ndarray: its bytes are packed in place, with no
    // Python-level call (this runs on every query).
    if let Ok(a) = f.cast::<PyArray1<bool>>()
        && a.is_c_contiguous()
    {
        let ro = a.readonly();
        let len = ro.len();
        if len != n {
            return Err(invalid(
                py,
                format!(
                    "a filter mask must hold one bool per item: {len} given, the index has {n}"
                ),
            ));
        }
        if len == 0 {
            return Ok(Some(PyFilter::Bits(Vec::new())));
        }
        // Read as bytes, never as `bool`s: NumPy treats any non-zero byte as true.
        let data = a.data() as *const u8;
        // SAFETY: a C-contiguous 1-D array of `len` one-byte items, kept alive and
        // registered as shared-borrowed by `ro` while the slice is used.
        let bytes = unsafe { std::slice::from_raw_parts(data, len) };
        return Ok(Some(PyFilter::Bits(pack_mask(bytes))));
    }
    let arr = py.import("numpy")?.call_method1("asarray", (f,))?;
    let kind: String = arr.getattr("dtype")?.getattr("kind")?.extract()?;
    let ndim: usize = arr.getattr("ndim")?.extract()?;
    if ndim != 1 {
        return Err(invalid(
            py,
            format!(
                "filter must be 1-D (a boolean mask or an array of ids), got {ndim} dimensions"
            ),
        ));
    }
    match kind.as_str() {
        // Read through NumPy's buffers, not Python objects: a mask of a million items is
        // packed in about a millisecond (it is converted on every call).
        "b" => {
            // As bytes: NumPy treats any non-zero byte of a bool array as true.
            let bytes = arr.call_method1("view", ("uint8",))?;
            let mask = bytes.cast::<PyArray1<u8>>()?.readonly();
            let len = mask.len();
            if len != n {
                return Err(invalid(
                    py,
                    format!(
                        "a filter mask must hold one bool per item: {len} given, the index has {n}"
                    ),
                ));
            }
            let bits = match mask.as_slice() {
                Ok(s) => pack_mask(s),
                Err(_) => pack_mask(&mask.as_array().iter().copied().collect::<Vec<u8>>()),
            };
            Ok(Some(PyFilter::Bits(bits)))
        }
        "i" | "u" => {
            let dtype = if kind == "u" { "uint64" } else { "int64" };
            let wide = arr.call_method1("astype", (dtype,))?;
            let bad = |id: String| {
                invalid(
                    py,
                    format!("filter id {id} is not an item of the index (ids are 0..{n})"),
                )
            };
            let mut ids = Vec::new();
            if kind == "u" {
                let a = wide.cast::<PyArray1<u64>>()?.readonly();
                for &i in a.as_array().iter() {
                    if i >= n as u64 {
                        return Err(bad(i.to_string()));
                    }
                    ids.push(i as u32);
                }
            } else {
                let a = wide.cast::<PyArray1<i64>>()?.readonly();
                for &i in a.as_array().iter() {
                    if i < 0 || i as u64 >= n as u64 {
                        return Err(bad(i.to_string()));
                    }
                    ids.push(i as u32);
                }
            }
            Ok(Some(PyFilter::Bits(panns_core::bitmap(n, ids))))
        }
        _ => Err(invalid(
            py,
            format!(
                "filter must be a boolean mask, an array of ids or a callable, got dtype kind {kind:?}"
            ),
        )),
    }
}

/// One filtered search; a callable filter runs with the GIL held and its first
/// exception is raised after the search.
pub(crate) fn search_filtered(
    py: Python<'_>,
    index: &Index,
    q: &[f32],
    params: &SearchParams,
    filter: &PyFilter,
) -> PyResult<(Vec<Neighbor>, SearchStats)> {
    match filter {
        PyFilter::Bits(bits) => py
            .detach(|| index.search_filtered(q, params, &Filter::Allow(bits)))
            .map_err(|e| core_err(py, e)),
        PyFilter::List(list) => py
            .detach(|| index.search_filtered(q, params, &Filter::List(list)))
            .map_err(|e| core_err(py, e)),
        PyFilter::Call(f) => {
            let failed: Mutex<Option<PyErr>> = Mutex::new(None);
            let allow = |id: u32| -> bool {
                Python::attach(
                    |py| match f.call1(py, (id,)).and_then(|r| r.bind(py).is_truthy()) {
                        Ok(b) => b,
                        Err(e) => {
                            failed.lock().get_or_insert(e);
                            false
                        }
                    },
                )
            };
            let r = index
                .search_filtered(q, params, &Filter::Predicate(&allow))
                .map_err(|e| core_err(py, e));
            if let Some(e) = failed.into_inner() {
                return Err(e);
            }
            r
        }
    }
}
