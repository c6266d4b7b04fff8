//! Search scratch owned by an index: a pool of reusable buffers.
//!
//! A search needs a visited set over all items (an epoch-stamped `u32` per item, as
//! hnswlib's visited lists), a projection buffer and a few heaps. Allocating them per
//! query would dominate small searches, and keeping them in thread-locals would keep
//! `n_items x 4` bytes per OS thread alive after the index is gone. So each index owns
//! a pool: a search takes a scratch, uses it and gives it back; concurrent searches
//! take different ones, so the pool grows to the peak number of concurrent searches
//! and is freed with the index.
//!
//! The visited stamps are allocated zeroed by the allocator (fresh pages from the OS
//! for large sizes), so only the pages of items a query actually visits are touched.

use crate::{Error, Result};
use std::collections::BinaryHeap;
use std::sync::Mutex;

/// Reusable buffers of one search.
#[derive(Default)]
pub(crate) struct Scratch {
    pub(crate) query: Vec<f32>,
    /// The query's weights for distances to codes (see `quant::prepare_query`).
    pub(crate) qw: Vec<f32>,
    /// The query's constant term for distances to codes.
    pub(crate) qbase: f32,
    pub(crate) proj: Vec<f32>,
    pub(crate) heap: BinaryHeap<u64>,
    stamp: Vec<u32>,
    epoch: u32,
    pub(crate) cands: Vec<u32>,
    pub(crate) scored: Vec<(f32, u32)>,
    pub(crate) frontier: BinaryHeap<std::cmp::Reverse<u64>>,
    pub(crate) best: BinaryHeap<u64>,
}

impl Scratch {
    /// Starts a new visited set over `n` items (O(1) except on first use and once
    /// every 2^32 queries).
    pub(crate) fn new_epoch(&mut self, n: usize) -> Result<()> {
        if self.stamp.len() != n || self.epoch == u32::MAX {
            self.stamp = Vec::new();
            self.stamp = zeroed_u32(n)?;
            self.epoch = 0;
        }
        self.epoch += 1;
        Ok(())
    }

    /// Marks `id` visited; true if it was not visited yet in this epoch.
    #[inline]
    pub(crate) fn visit(&mut self, id: u32) -> bool {
        let st = &mut self.stamp[id as usize];
        if *st == self.epoch {
            false
        } else {
            *st = self.epoch;
            true
        }
    }
}

/// `n` zeros, allocated fallibly and zeroed by the allocator (lazily by the OS for
/// large sizes), so an index declaring billions of items cannot abort the process.
pub(crate) fn zeroed_u32(n: usize) -> Result<Vec<u32>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let layout = std::alloc::Layout::array::<u32>(n).map_err(|_| Error::OutOfMemory {
        what: "visited set",
        bytes: n.saturating_mul(4),
    })?;
    // SAFETY: `layout` has a non-zero size (n > 0). A non-null result is a zeroed,
    // properly aligned allocation of exactly `n` u32s from the global allocator, which
    // is what `Vec::from_raw_parts` requires (capacity n, length n, zero is a valid u32).
    unsafe {
        let ptr = std::alloc::alloc_zeroed(layout) as *mut u32;
        if ptr.is_null() {
            return Err(Error::OutOfMemory {
                what: "visited set",
                bytes: layout.size(),
            });
        }
        Ok(Vec::from_raw_parts(ptr, n, n))
    }
}

/// A pool of [`Scratch`]es shared by the searches of one index.
#[derive(Default)]
pub(crate) struct ScratchPool {
    free: Mutex<Vec<Scratch>>,
}

impl ScratchPool {
    /// Runs `f` with a scratch taken from the pool (or a new one) and returns it after.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Scratch) -> R) -> R {
        let taken = self.lock().pop();
        let mut s = taken.unwrap_or_default();
        let r = f(&mut s);
        self.lock().push(s);
        r
    }

    /// Number of scratches held (for tests).
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Scratch>> {
        // A panic while holding the lock cannot leave the Vec inconsistent.
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for ScratchPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ScratchPool({} free)", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visited_sets_reuse_their_stamps_and_reset_on_wrap() {
        let mut s = Scratch::default();
        s.new_epoch(100).unwrap();
        assert!(s.visit(7));
        assert!(!s.visit(7), "a second visit in one epoch is not new");
        let stamps = s.stamp.as_ptr();
        s.new_epoch(100).unwrap();
        assert_eq!(s.stamp.as_ptr(), stamps, "same size: the stamps are reused");
        assert!(s.visit(7), "a new epoch forgets earlier visits");
        // At the last epoch the stamps are renewed, so old stamps never alias new ones.
        s.epoch = u32::MAX - 1;
        s.new_epoch(100).unwrap();
        assert_eq!(s.epoch, u32::MAX);
        assert!(s.visit(3));
        s.new_epoch(100).unwrap();
        assert_eq!(s.epoch, 1);
        assert!(
            s.visit(3),
            "stamps of the last epoch do not leak into the first"
        );
        // Another item count: new stamps of that size.
        s.new_epoch(10).unwrap();
        assert_eq!(s.stamp.len(), 10);
    }

    #[test]
    fn the_pool_hands_out_distinct_scratches_and_keeps_them() {
        let pool = ScratchPool::default();
        pool.with(|a| {
            a.epoch = 5;
            pool.with(|b| assert_eq!(b.epoch, 0, "a nested search gets its own scratch"));
        });
        assert_eq!(pool.len(), 2);
        pool.with(|s| assert!(s.epoch == 5 || s.epoch == 0));
        assert_eq!(pool.len(), 2);
    }
}
