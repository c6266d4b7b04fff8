//! SIMD distance kernels for `f32` slices: dot product and squared Euclidean distance.
//!
//! The best implementation for the running CPU is chosen once, on first use
//! ([`Kernels::detect`]): AVX-512F, AVX2 + FMA, or a portable fallback that compiles
//! everywhere (aarch64 included). Each implementation is also reachable on its own
//! ([`Kernels::all_available`]) so tests can check every one against a reference.
//!
//! Both slices must have the same length; a longer slice is read only up to the
//! shorter one's length (never out of bounds).

use std::sync::OnceLock;

/// A pair of kernels for one instruction set.
#[derive(Clone, Copy, Debug)]
pub struct Kernels {
    /// Short name of the instruction set ("avx512", "avx2", "portable").
    pub name: &'static str,
    /// `sum(a[i] * b[i])`.
    pub dot: fn(&[f32], &[f32]) -> f32,
    /// `sum((a[i] - b[i])^2)`.
    pub l2sq: fn(&[f32], &[f32]) -> f32,
    /// `sum(w[i] * c[i])` of `f32` weights and 8-bit codes (the inner loop of
    /// distances to vectors stored as codes, see [`crate::Dtype::I8`]).
    pub dot_u8: fn(&[f32], &[u8]) -> f32,
    /// `dot_u8(w, c[r])` of four code rows at once, each bit-identical to `dot_u8`
    /// alone (the weights are loaded once for all four, and four independent sums
    /// keep the arithmetic units busy where one row's sum waits on itself).
    pub dot_u8_x4: fn(&[f32], [&[u8]; 4]) -> [f32; 4],
    /// `dot(a, b[r])` of four rows at once, each bit-identical to `dot` alone.
    pub dot_x4: fn(&[f32], [&[f32]; 4]) -> [f32; 4],
    /// `l2sq(a, b[r])` of four rows at once, each bit-identical to `l2sq` alone.
    pub l2sq_x4: fn(&[f32], [&[f32]; 4]) -> [f32; 4],
}

static ACTIVE: OnceLock<Kernels> = OnceLock::new();

impl Kernels {
    /// The portable implementation, available on every target.
    pub const PORTABLE: Kernels = Kernels {
        name: "portable",
        dot: portable::dot,
        l2sq: portable::l2sq,
        dot_u8: portable::dot_u8,
        dot_u8_x4: portable::dot_u8_x4,
        dot_x4: portable::dot_x4,
        l2sq_x4: portable::l2sq_x4,
    };

    /// The fastest implementation this CPU supports.
    pub fn detect() -> Kernels {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return x86::AVX512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return x86::AVX2;
            }
        }
        Self::PORTABLE
    }

    /// Every implementation this CPU can run, fastest first.
    pub fn all_available() -> Vec<Kernels> {
        let mut v = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                v.push(x86::AVX512);
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                v.push(x86::AVX2);
            }
        }
        v.push(Self::PORTABLE);
        v
    }
}

/// The kernels in use (detected once per process).
#[inline]
pub fn active() -> &'static Kernels {
    ACTIVE.get_or_init(Kernels::detect)
}

/// Dot product of two equally long slices, with the fastest kernel available.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    (active().dot)(a, b)
}

/// Squared Euclidean distance of two equally long slices.
#[inline]
pub fn l2sq(a: &[f32], b: &[f32]) -> f32 {
    (active().l2sq)(a, b)
}

/// `sum(w[i] * c[i])` of weights and 8-bit codes, with the fastest kernel available.
#[inline]
pub fn dot_u8(w: &[f32], c: &[u8]) -> f32 {
    (active().dot_u8)(w, c)
}

/// [`dot_u8`] of four code rows at once (bit-identical to four calls, faster).
#[inline]
pub fn dot_u8_x4(w: &[f32], c: [&[u8]; 4]) -> [f32; 4] {
    (active().dot_u8_x4)(w, c)
}

/// [`dot`] of `a` with four rows at once (bit-identical to four calls, faster).
#[inline]
pub fn dot_x4(a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
    (active().dot_x4)(a, b)
}

/// [`l2sq`] of `a` and four rows at once (bit-identical to four calls, faster).
#[inline]
pub fn l2sq_x4(a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
    (active().l2sq_x4)(a, b)
}

/// Set bits in `words` (the `popcnt` instruction where the CPU has it: the build
/// targets baseline x86_64, whose `count_ones` is a dozen instructions a word).
#[inline]
pub fn popcount(words: &[u64]) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU has `popcnt`, just checked.
            return unsafe { x86::popcount_popcnt(words) };
        }
    }
    words.iter().map(|w| w.count_ones() as usize).sum()
}

/// Euclidean norm of a slice.
#[inline]
pub fn norm(a: &[f32]) -> f32 {
    dot(a, a).sqrt()
}

/// Hints the CPU to start loading `row` into cache (no effect where unsupported).
#[inline(always)]
pub fn prefetch<T>(row: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        for line in row.chunks((64 / std::mem::size_of::<T>().max(1)).max(1)) {
            // SAFETY: prefetching is a hint; the address is inside a live slice.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr() as *const i8) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}

mod portable {
    const LANES: usize = 16;

    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let mut acc = [0f32; LANES];
        let mut ca = a.chunks_exact(LANES);
        let mut cb = b.chunks_exact(LANES);
        for (x, y) in (&mut ca).zip(&mut cb) {
            for i in 0..LANES {
                acc[i] += x[i] * y[i];
            }
        }
        let mut s: f32 = acc.iter().sum();
        for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
            s += x * y;
        }
        s
    }

    pub fn l2sq(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let mut acc = [0f32; LANES];
        let mut ca = a.chunks_exact(LANES);
        let mut cb = b.chunks_exact(LANES);
        for (x, y) in (&mut ca).zip(&mut cb) {
            for i in 0..LANES {
                let d = x[i] - y[i];
                acc[i] += d * d;
            }
        }
        let mut s: f32 = acc.iter().sum();
        for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
            let d = x - y;
            s += d * d;
        }
        s
    }

    pub fn dot_u8_x4(w: &[f32], c: [&[u8]; 4]) -> [f32; 4] {
        c.map(|r| dot_u8(w, r))
    }

    pub fn dot_x4(a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
        b.map(|r| dot(a, r))
    }

    pub fn l2sq_x4(a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
        b.map(|r| l2sq(a, r))
    }

    pub fn dot_u8(w: &[f32], c: &[u8]) -> f32 {
        let n = w.len().min(c.len());
        let (w, c) = (&w[..n], &c[..n]);
        let mut acc = [0f32; LANES];
        let mut cw = w.chunks_exact(LANES);
        let mut cc = c.chunks_exact(LANES);
        for (x, y) in (&mut cw).zip(&mut cc) {
            for i in 0..LANES {
                acc[i] += x[i] * y[i] as f32;
            }
        }
        let mut s: f32 = acc.iter().sum();
        for (x, y) in cw.remainder().iter().zip(cc.remainder()) {
            s += x * *y as f32;
        }
        s
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Kernels;
    use std::arch::x86_64::*;

    pub const AVX2: Kernels = Kernels {
        name: "avx2",
        dot: dot_avx2_entry,
        l2sq: l2sq_avx2_entry,
        dot_u8: dot_u8_avx2_entry,
        dot_u8_x4: dot_u8_x4_avx2_entry,
        dot_x4: dot_x4_avx2_entry,
        l2sq_x4: l2sq_x4_avx2_entry,
    };
    pub const AVX512: Kernels = Kernels {
        name: "avx512",
        dot: dot_avx512_entry,
        l2sq: l2sq_avx512_entry,
        dot_u8: dot_u8_avx512_entry,
        dot_u8_x4: dot_u8_x4_avx512_entry,
        dot_x4: dot_x4_avx512_entry,
        l2sq_x4: l2sq_x4_avx512_entry,
    };

    // SAFETY (all six entries): these are only reachable through `AVX2` / `AVX512`,
    // which `Kernels::detect` and `Kernels::all_available` hand out only after
    // `is_x86_feature_detected!` confirmed the features.
    fn dot_avx2_entry(a: &[f32], b: &[f32]) -> f32 {
        unsafe { dot_avx2(a, b) }
    }
    fn l2sq_avx2_entry(a: &[f32], b: &[f32]) -> f32 {
        unsafe { l2sq_avx2(a, b) }
    }
    fn dot_avx512_entry(a: &[f32], b: &[f32]) -> f32 {
        unsafe { dot_avx512(a, b) }
    }
    fn l2sq_avx512_entry(a: &[f32], b: &[f32]) -> f32 {
        unsafe { l2sq_avx512(a, b) }
    }
    fn dot_u8_avx2_entry(w: &[f32], c: &[u8]) -> f32 {
        unsafe { dot_u8_avx2(w, c) }
    }
    fn dot_u8_avx512_entry(w: &[f32], c: &[u8]) -> f32 {
        unsafe { dot_u8_avx512(w, c) }
    }
    fn dot_u8_x4_avx2_entry(w: &[f32], c: [&[u8]; 4]) -> [f32; 4] {
        unsafe { dot_u8_x4_avx2(w, c) }
    }
    fn dot_u8_x4_avx512_entry(w: &[f32], c: [&[u8]; 4]) -> [f32; 4] {
        unsafe { dot_u8_x4_avx512(w, c) }
    }
    fn dot_x4_avx2_entry(a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
        unsafe { dot_x4_avx2(a, b) }
    }
    fn l2sq_x4_avx2_entry(a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
        unsafe { l2sq_x4_avx2(a, b) }
    }
    fn dot_x4_avx512_entry(a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
        unsafe { dot_x4_avx512(a, b) }
    }
    fn l2sq_x4_avx512_entry(a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
        unsafe { l2sq_x4_avx512(a, b) }
    }

    /// The length all four rows are read to, if it is the same for each (else the
    /// four-row kernels fall back to one row at a time).
    fn common_len<T>(w: &[f32], c: &[&[T]; 4]) -> Option<usize> {
        let n = w.len().min(c[0].len());
        c.iter().all(|r| w.len().min(r.len()) == n).then_some(n)
    }

    /// The scalar tail of the code kernels (rows are padded to 16, so rarely used).
    fn dot_u8_tail(w: &[f32], c: &[u8]) -> f32 {
        w.iter().zip(c).map(|(x, y)| x * *y as f32).sum()
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_u8_avx2(w: &[f32], c: &[u8]) -> f32 {
        let n = w.len().min(c.len());
        let (pw, pc) = (w.as_ptr(), c.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 2];
        let mut i = 0;
        // SAFETY: every load reads w[i..i + 8] and c[i..i + 8] with i + 8 <= n.
        unsafe {
            while i + 16 <= n {
                for (j, a_j) in acc.iter_mut().enumerate() {
                    let b = _mm_loadl_epi64(pc.add(i + 8 * j) as *const __m128i);
                    let y = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b));
                    *a_j = _mm256_fmadd_ps(_mm256_loadu_ps(pw.add(i + 8 * j)), y, *a_j);
                }
                i += 16;
            }
            if i + 8 <= n {
                let b = _mm_loadl_epi64(pc.add(i) as *const __m128i);
                let y = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b));
                acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(pw.add(i)), y, acc[0]);
                i += 8;
            }
        }
        hsum256(_mm256_add_ps(acc[0], acc[1])) + dot_u8_tail(&w[i..n], &c[i..n])
    }

    /// [`dot_u8_avx2`] of four rows, each summed in exactly its order.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_u8_x4_avx2(w: &[f32], c: [&[u8]; 4]) -> [f32; 4] {
        let Some(n) = common_len(w, &c) else {
            return c.map(|r| unsafe { dot_u8_avx2(w, r) });
        };
        let pw = w.as_ptr();
        let pc = c.map(|r| r.as_ptr());
        let mut acc = [[_mm256_setzero_ps(); 2]; 4];
        let mut i = 0;
        // SAFETY: every load reads w[i..i + 8] and c[r][i..i + 8] with i + 8 <= n, and
        // every row is at least n long.
        unsafe {
            while i + 16 <= n {
                for j in 0..2 {
                    let x = _mm256_loadu_ps(pw.add(i + 8 * j));
                    for (a, p) in acc.iter_mut().zip(&pc) {
                        let b = _mm_loadl_epi64(p.add(i + 8 * j) as *const __m128i);
                        let y = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b));
                        a[j] = _mm256_fmadd_ps(x, y, a[j]);
                    }
                }
                i += 16;
            }
            if i + 8 <= n {
                let x = _mm256_loadu_ps(pw.add(i));
                for (a, p) in acc.iter_mut().zip(&pc) {
                    let b = _mm_loadl_epi64(p.add(i) as *const __m128i);
                    let y = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b));
                    a[0] = _mm256_fmadd_ps(x, y, a[0]);
                }
                i += 8;
            }
        }
        let mut out = [0f32; 4];
        for ((o, a), r) in out.iter_mut().zip(&acc).zip(&c) {
            *o = hsum256(_mm256_add_ps(a[0], a[1])) + dot_u8_tail(&w[i..n], &r[i..n]);
        }
        out
    }

    /// [`dot_u8_avx512`] of four rows, each summed in exactly its order.
    #[target_feature(enable = "avx512f")]
    unsafe fn dot_u8_x4_avx512(w: &[f32], c: [&[u8]; 4]) -> [f32; 4] {
        let Some(n) = common_len(w, &c) else {
            return c.map(|r| unsafe { dot_u8_avx512(w, r) });
        };
        let pw = w.as_ptr();
        let pc = c.map(|r| r.as_ptr());
        let mut acc = [[_mm512_setzero_ps(); 2]; 4];
        let mut i = 0;
        // SAFETY: every load reads w[i..i + 16] and c[r][i..i + 16] with i + 16 <= n,
        // and every row is at least n long.
        unsafe {
            while i + 32 <= n {
                for j in 0..2 {
                    let x = _mm512_loadu_ps(pw.add(i + 16 * j));
                    for (a, p) in acc.iter_mut().zip(&pc) {
                        let b = _mm_loadu_si128(p.add(i + 16 * j) as *const __m128i);
                        let y = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b));
                        a[j] = _mm512_fmadd_ps(x, y, a[j]);
                    }
                }
                i += 32;
            }
            if i + 16 <= n {
                let x = _mm512_loadu_ps(pw.add(i));
                for (a, p) in acc.iter_mut().zip(&pc) {
                    let b = _mm_loadu_si128(p.add(i) as *const __m128i);
                    let y = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b));
                    a[0] = _mm512_fmadd_ps(x, y, a[0]);
                }
                i += 16;
            }
        }
        let mut out = [0f32; 4];
        for ((o, a), r) in out.iter_mut().zip(&acc).zip(&c) {
            *o = _mm512_reduce_add_ps(_mm512_add_ps(a[0], a[1])) + dot_u8_tail(&w[i..n], &r[i..n]);
        }
        out
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn dot_u8_avx512(w: &[f32], c: &[u8]) -> f32 {
        let n = w.len().min(c.len());
        let (pw, pc) = (w.as_ptr(), c.as_ptr());
        let mut acc = [_mm512_setzero_ps(); 2];
        let mut i = 0;
        // SAFETY: every load reads w[i..i + 16] and c[i..i + 16] with i + 16 <= n.
        unsafe {
            while i + 32 <= n {
                for (j, a_j) in acc.iter_mut().enumerate() {
                    let b = _mm_loadu_si128(pc.add(i + 16 * j) as *const __m128i);
                    let y = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b));
                    *a_j = _mm512_fmadd_ps(_mm512_loadu_ps(pw.add(i + 16 * j)), y, *a_j);
                }
                i += 32;
            }
            if i + 16 <= n {
                let b = _mm_loadu_si128(pc.add(i) as *const __m128i);
                let y = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b));
                acc[0] = _mm512_fmadd_ps(_mm512_loadu_ps(pw.add(i)), y, acc[0]);
                i += 16;
            }
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1])) + dot_u8_tail(&w[i..n], &c[i..n])
    }

    #[inline]
    /// Set bits in `words`, one `popcnt` a word.
    #[target_feature(enable = "popcnt")]
    pub unsafe fn popcount_popcnt(words: &[u64]) -> usize {
        words.iter().map(|w| w.count_ones() as usize).sum()
    }

    #[target_feature(enable = "avx2,fma")]
    fn hsum256(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps::<1>(v);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s));
        _mm_cvtss_f32(s)
    }

    /// Mask with the low `r` of 8 lanes set (r < 8).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn tail_mask256(r: usize) -> __m256i {
        let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        _mm256_cmpgt_epi32(_mm256_set1_epi32(r as i32), idx)
    }

    macro_rules! avx2_kernel {
        ($name:ident, |$x:ident, $y:ident, $acc:ident| $body:expr) => {
            #[target_feature(enable = "avx2,fma")]
            unsafe fn $name(a: &[f32], b: &[f32]) -> f32 {
                let n = a.len().min(b.len());
                let (pa, pb) = (a.as_ptr(), b.as_ptr());
                let mut acc = [_mm256_setzero_ps(); 4];
                let mut i = 0;
                // SAFETY: every load reads lanes i..i+8 with i + 8 <= n (or a masked tail).
                unsafe {
                    while i + 32 <= n {
                        for (j, a_j) in acc.iter_mut().enumerate() {
                            let $x = _mm256_loadu_ps(pa.add(i + 8 * j));
                            let $y = _mm256_loadu_ps(pb.add(i + 8 * j));
                            let $acc = *a_j;
                            *a_j = $body;
                        }
                        i += 32;
                    }
                    while i + 8 <= n {
                        let $x = _mm256_loadu_ps(pa.add(i));
                        let $y = _mm256_loadu_ps(pb.add(i));
                        let $acc = acc[0];
                        acc[0] = $body;
                        i += 8;
                    }
                    if i < n {
                        let m = tail_mask256(n - i);
                        let $x = _mm256_maskload_ps(pa.add(i), m);
                        let $y = _mm256_maskload_ps(pb.add(i), m);
                        let $acc = acc[1];
                        acc[1] = $body;
                    }
                }
                let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
                hsum256(s)
            }
        };
    }

    avx2_kernel!(dot_avx2, |x, y, acc| _mm256_fmadd_ps(x, y, acc));
    avx2_kernel!(l2sq_avx2, |x, y, acc| {
        let d = _mm256_sub_ps(x, y);
        _mm256_fmadd_ps(d, d, acc)
    });

    /// Four rows against one `a` in the steps of `avx2_kernel!`, each row's sums in
    /// exactly its order (so bit-identical to `$one` per row); `a` is loaded once per
    /// step for all four. Rows of unequal length fall back to `$one`.
    macro_rules! avx2_kernel_x4 {
        ($name:ident, $one:ident, |$x:ident, $y:ident, $acc:ident| $body:expr) => {
            #[target_feature(enable = "avx2,fma")]
            unsafe fn $name(a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
                let Some(n) = common_len(a, &b) else {
                    return b.map(|r| unsafe { $one(a, r) });
                };
                let pa = a.as_ptr();
                let pb = b.map(|r| r.as_ptr());
                let mut acc = [[_mm256_setzero_ps(); 4]; 4];
                let mut i = 0;
                // SAFETY: every load reads lanes i..i+8 with i + 8 <= n (or a masked
                // tail), and every row is at least n long.
                unsafe {
                    while i + 32 <= n {
                        for j in 0..4 {
                            let $x = _mm256_loadu_ps(pa.add(i + 8 * j));
                            for (r, p) in acc.iter_mut().zip(&pb) {
                                let $y = _mm256_loadu_ps(p.add(i + 8 * j));
                                let $acc = r[j];
                                r[j] = $body;
                            }
                        }
                        i += 32;
                    }
                    while i + 8 <= n {
                        let $x = _mm256_loadu_ps(pa.add(i));
                        for (r, p) in acc.iter_mut().zip(&pb) {
                            let $y = _mm256_loadu_ps(p.add(i));
                            let $acc = r[0];
                            r[0] = $body;
                        }
                        i += 8;
                    }
                    if i < n {
                        let m = tail_mask256(n - i);
                        let $x = _mm256_maskload_ps(pa.add(i), m);
                        for (r, p) in acc.iter_mut().zip(&pb) {
                            let $y = _mm256_maskload_ps(p.add(i), m);
                            let $acc = r[1];
                            r[1] = $body;
                        }
                    }
                }
                acc.map(|r| {
                    hsum256(_mm256_add_ps(
                        _mm256_add_ps(r[0], r[1]),
                        _mm256_add_ps(r[2], r[3]),
                    ))
                })
            }
        };
    }

    avx2_kernel_x4!(dot_x4_avx2, dot_avx2, |x, y, acc| _mm256_fmadd_ps(
        x, y, acc
    ));
    avx2_kernel_x4!(l2sq_x4_avx2, l2sq_avx2, |x, y, acc| {
        let d = _mm256_sub_ps(x, y);
        _mm256_fmadd_ps(d, d, acc)
    });

    macro_rules! avx512_kernel {
        ($name:ident, |$x:ident, $y:ident, $acc:ident| $body:expr) => {
            #[target_feature(enable = "avx512f")]
            unsafe fn $name(a: &[f32], b: &[f32]) -> f32 {
                let n = a.len().min(b.len());
                let (pa, pb) = (a.as_ptr(), b.as_ptr());
                let mut acc = [_mm512_setzero_ps(); 4];
                let mut i = 0;
                // SAFETY: every load reads lanes i..i+16 with i + 16 <= n, or is masked to n.
                unsafe {
                    while i + 64 <= n {
                        for (j, a_j) in acc.iter_mut().enumerate() {
                            let $x = _mm512_loadu_ps(pa.add(i + 16 * j));
                            let $y = _mm512_loadu_ps(pb.add(i + 16 * j));
                            let $acc = *a_j;
                            *a_j = $body;
                        }
                        i += 64;
                    }
                    while i + 16 <= n {
                        let $x = _mm512_loadu_ps(pa.add(i));
                        let $y = _mm512_loadu_ps(pb.add(i));
                        let $acc = acc[0];
                        acc[0] = $body;
                        i += 16;
                    }
                    if i < n {
                        let m: __mmask16 = (1u32 << (n - i)) as u16 - 1;
                        let $x = _mm512_maskz_loadu_ps(m, pa.add(i));
                        let $y = _mm512_maskz_loadu_ps(m, pb.add(i));
                        let $acc = acc[1];
                        acc[1] = $body;
                    }
                }
                let s = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
                _mm512_reduce_add_ps(s)
            }
        };
    }

    avx512_kernel!(dot_avx512, |x, y, acc| _mm512_fmadd_ps(x, y, acc));
    avx512_kernel!(l2sq_avx512, |x, y, acc| {
        let d = _mm512_sub_ps(x, y);
        _mm512_fmadd_ps(d, d, acc)
    });

    /// Four rows against one `a` in the steps of `avx512_kernel!` (see
    /// `avx2_kernel_x4!`): bit-identical to `$one` per row.
    macro_rules! avx512_kernel_x4 {
        ($name:ident, $one:ident, |$x:ident, $y:ident, $acc:ident| $body:expr) => {
            #[target_feature(enable = "avx512f")]
            unsafe fn $name(a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
                let Some(n) = common_len(a, &b) else {
                    return b.map(|r| unsafe { $one(a, r) });
                };
                let pa = a.as_ptr();
                let pb = b.map(|r| r.as_ptr());
                let mut acc = [[_mm512_setzero_ps(); 4]; 4];
                let mut i = 0;
                // SAFETY: every load reads lanes i..i+16 with i + 16 <= n, or is masked
                // to n, and every row is at least n long.
                unsafe {
                    while i + 64 <= n {
                        for j in 0..4 {
                            let $x = _mm512_loadu_ps(pa.add(i + 16 * j));
                            for (r, p) in acc.iter_mut().zip(&pb) {
                                let $y = _mm512_loadu_ps(p.add(i + 16 * j));
                                let $acc = r[j];
                                r[j] = $body;
                            }
                        }
                        i += 64;
                    }
                    while i + 16 <= n {
                        let $x = _mm512_loadu_ps(pa.add(i));
                        for (r, p) in acc.iter_mut().zip(&pb) {
                            let $y = _mm512_loadu_ps(p.add(i));
                            let $acc = r[0];
                            r[0] = $body;
                        }
                        i += 16;
                    }
                    if i < n {
                        let m: __mmask16 = (1u32 << (n - i)) as u16 - 1;
                        let $x = _mm512_maskz_loadu_ps(m, pa.add(i));
                        for (r, p) in acc.iter_mut().zip(&pb) {
                            let $y = _mm512_maskz_loadu_ps(m, p.add(i));
                            let $acc = r[1];
                            r[1] = $body;
                        }
                    }
                }
                acc.map(|r| {
                    _mm512_reduce_add_ps(_mm512_add_ps(
                        _mm512_add_ps(r[0], r[1]),
                        _mm512_add_ps(r[2], r[3]),
                    ))
                })
            }
        };
    }

    avx512_kernel_x4!(dot_x4_avx512, dot_avx512, |x, y, acc| _mm512_fmadd_ps(
        x, y, acc
    ));
    avx512_kernel_x4!(l2sq_x4_avx512, l2sq_avx512, |x, y, acc| {
        let d = _mm512_sub_ps(x, y);
        _mm512_fmadd_ps(d, d, acc)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u64) -> Vec<f32> {
        let mut r = crate::rng::Rng::new(seed);
        (0..n).map(|_| r.gaussian() as f32).collect()
    }

    #[test]
    fn every_kernel_matches_f64_reference_for_all_lengths() {
        let a = data(1024, 1);
        let b = data(1024, 2);
        for k in Kernels::all_available() {
            for n in 0..=1024 {
                let (x, y) = (&a[..n], &b[..n]);
                let dot_ref: f64 = x.iter().zip(y).map(|(p, q)| *p as f64 * *q as f64).sum();
                let l2_ref: f64 = x
                    .iter()
                    .zip(y)
                    .map(|(p, q)| (*p as f64 - *q as f64).powi(2))
                    .sum();
                let scale: f64 = x
                    .iter()
                    .zip(y)
                    .map(|(p, q)| (*p as f64 * *q as f64).abs())
                    .sum();
                let d = (k.dot)(x, y) as f64;
                assert!(
                    (d - dot_ref).abs() <= 1e-5 * (scale + 1.0),
                    "{} dot n={n}: {d} vs {dot_ref}",
                    k.name
                );
                let l = (k.l2sq)(x, y) as f64;
                assert!(
                    (l - l2_ref).abs() <= 1e-5 * (l2_ref + 1.0),
                    "{} l2sq n={n}: {l} vs {l2_ref}",
                    k.name
                );
            }
        }
    }

    #[test]
    fn kernels_never_read_past_the_shorter_slice() {
        let a = data(37, 3);
        let b = data(40, 4);
        for k in Kernels::all_available() {
            let want: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!(((k.dot)(&a, &b) - want).abs() < 1e-4, "{}", k.name);
        }
    }

    #[test]
    fn every_code_kernel_matches_f64_reference_for_all_lengths() {
        let w = data(1024, 5);
        let mut r = crate::rng::Rng::new(6);
        let c: Vec<u8> = (0..1027).map(|_| (r.next_u64() >> 56) as u8).collect();
        for k in Kernels::all_available() {
            for n in 0..=1024 {
                let want: f64 = w[..n]
                    .iter()
                    .zip(&c)
                    .map(|(x, y)| *x as f64 * *y as f64)
                    .sum();
                let scale: f64 = w[..n]
                    .iter()
                    .zip(&c)
                    .map(|(x, y)| (*x as f64 * *y as f64).abs())
                    .sum();
                // A longer code slice is read only up to the weights' length.
                let got = (k.dot_u8)(&w[..n], &c[..n + 3]) as f64;
                assert!(
                    (got - want).abs() <= 1e-5 * (scale + 1.0),
                    "{} dot_u8 n={n}: {got} vs {want}",
                    k.name
                );
            }
        }
    }

    #[test]
    fn four_row_code_kernels_equal_one_row_at_a_time_bit_for_bit() {
        let mut r = crate::rng::Rng::new(5);
        let w: Vec<f32> = (0..300).map(|_| r.gaussian() as f32).collect();
        let rows: Vec<Vec<u8>> = (0..4)
            .map(|_| (0..304).map(|_| (r.next_u64() % 256) as u8).collect())
            .collect();
        for k in Kernels::all_available() {
            for n in 0..=300 {
                let c = [
                    &rows[0][..n],
                    &rows[1][..n + 4],
                    &rows[2][..n],
                    &rows[3][..n],
                ];
                let want = c.map(|row| (k.dot_u8)(&w[..n], row).to_bits());
                let got = (k.dot_u8_x4)(&w[..n], c).map(f32::to_bits);
                assert_eq!(got, want, "{} dot_u8_x4 n={n}", k.name);
                // Rows of different lengths: each still read to its own length.
                let c = [
                    &rows[0][..n],
                    &rows[1][..n / 2],
                    &rows[2][..n],
                    &rows[3][..n],
                ];
                let want = c.map(|row| (k.dot_u8)(&w[..n], row).to_bits());
                let got = (k.dot_u8_x4)(&w[..n], c).map(f32::to_bits);
                assert_eq!(got, want, "{} dot_u8_x4 n={n}, short row", k.name);
            }
        }
    }

    #[test]
    fn four_row_f32_kernels_equal_one_row_at_a_time_bit_for_bit() {
        let a = data(300, 7);
        let rows: Vec<Vec<f32>> = (0..4).map(|r| data(304, 8 + r)).collect();
        for k in Kernels::all_available() {
            for n in 0..=300 {
                for short in [n, n / 2] {
                    let b = [
                        &rows[0][..n],
                        &rows[1][..n + 4],
                        &rows[2][..short],
                        &rows[3][..n],
                    ];
                    let want = b.map(|row| (k.dot)(&a[..n], row).to_bits());
                    let got = (k.dot_x4)(&a[..n], b).map(f32::to_bits);
                    assert_eq!(got, want, "{} dot_x4 n={n} short={short}", k.name);
                    let want = b.map(|row| (k.l2sq)(&a[..n], row).to_bits());
                    let got = (k.l2sq_x4)(&a[..n], b).map(f32::to_bits);
                    assert_eq!(got, want, "{} l2sq_x4 n={n} short={short}", k.name);
                }
            }
        }
    }

    #[test]
    fn popcount_counts_every_set_bit() {
        let words: Vec<u64> = (0..100u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i << 7))
            .collect();
        for n in [0, 1, 7, 64, 100] {
            let want: u32 = words[..n].iter().map(|w| w.count_ones()).sum();
            assert_eq!(super::popcount(&words[..n]), want as usize);
        }
        assert_eq!(super::popcount(&[u64::MAX; 3]), 192);
    }

    #[test]
    fn norm_of_3_4_is_5() {
        assert!((norm(&[3.0, 4.0]) - 5.0).abs() < 1e-6);
    }
}
