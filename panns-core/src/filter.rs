//! Which items a search may return: [`Filter`], and [`AllowList`], an allow-list prepared
//! once and reused by many searches.

use crate::{Error, Result, kernels};

/// Which items a search may return (see [`crate::Index::search_filtered`]).
///
/// Bitmaps hold bit `i % 64` of word `i / 64` for item `i` and must cover every item.
/// With a bitmap the allowed count is known, so when the budget covers half the
/// allowed items, or (with a graph) when a filtered walk would cost more than scanning
/// them (`allowed^2 <= 16 * budget * len`; `allowed <= 80 * budget` for the two-hop
/// walk below), the search scans exactly those (fast and exact for selective filters);
/// otherwise the trees (and graph) are walked, counting only allowed items towards the
/// budget. Disallowed items steer a graph walk but are never returned; with a bitmap
/// passing at most 1 item in 6 on vectors of 256 or more dimensions, the walk steps over
/// refused neighbours to their allowed neighbours without scoring them (ACORN's two-hop
/// expansion).
#[derive(Clone, Copy)]
pub enum Filter<'a> {
    /// Every item.
    All,
    /// Only items whose bit is set.
    Allow(&'a [u64]),
    /// Every item except those whose bit is set (e.g. deleted items).
    Deny(&'a [u64]),
    /// The items of an [`AllowList`] prepared once for many searches (its bitmap and
    /// ids are not recomputed per query).
    List(&'a AllowList),
    /// Items for which the predicate returns true (called once per candidate, from the
    /// searching thread).
    Predicate(&'a (dyn Fn(u32) -> bool + Sync)),
}

impl std::fmt::Debug for Filter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Filter::All => f.write_str("All"),
            Filter::Allow(b) => write!(f, "Allow({} words)", b.len()),
            Filter::Deny(b) => write!(f, "Deny({} words)", b.len()),
            Filter::List(l) => write!(f, "List({} of {} items)", l.len(), l.items()),
            Filter::Predicate(_) => f.write_str("Predicate"),
        }
    }
}

impl Filter<'_> {
    /// Checks a bitmap covers `n` items, and an allow-list was made for `n` items.
    pub(crate) fn check(&self, n: usize) -> Result<()> {
        if let Filter::Allow(b) | Filter::Deny(b) = self
            && b.len() < n.div_ceil(64)
        {
            return Err(Error::parameter(
                "filter",
                format!("a bitmap of {} words", b.len()),
                "must hold one bit per item: at least ceil(len / 64) words",
            ));
        }
        if let Filter::List(l) = self
            && l.items() != n
        {
            return Err(Error::parameter(
                "filter",
                format!("an allow-list prepared for {} items", l.items()),
                "must be prepared for this index (its item count differs)",
            ));
        }
        Ok(())
    }
}

/// A bitmap of `n` items with the bits of `ids` set (for [`Filter::Allow`] / [`Filter::Deny`]).
pub fn bitmap(n: usize, ids: impl IntoIterator<Item = u32>) -> Vec<u64> {
    let mut b = vec![0u64; n.div_ceil(64)];
    for i in ids {
        if let Some(w) = b.get_mut(i as usize / 64) {
            *w |= 1 << (i % 64);
        }
    }
    b
}

#[inline]
pub(crate) fn bit(bits: &[u64], i: u32) -> bool {
    bits[i as usize / 64] >> (i % 64) & 1 != 0
}

/// Set bits among the first `n`.
pub(crate) fn popcount(bits: &[u64], n: usize) -> usize {
    let full = n / 64;
    let mut c = kernels::popcount(&bits[..full]);
    if !n.is_multiple_of(64) {
        c += (bits[full] & ((1u64 << (n % 64)) - 1)).count_ones() as usize;
    }
    c
}

/// Appends to `out` the ids below `n` whose bit is set in `bits` (clear, when `deny`),
/// in ascending order, a word at a time.
pub(crate) fn bitmap_ids(bits: &[u64], n: usize, deny: bool, out: &mut Vec<u32>) {
    for (w, &word) in bits[..n.div_ceil(64)].iter().enumerate() {
        let mut x = if deny { !word } else { word };
        if (w + 1) * 64 > n {
            // The last word's bits at or above n are not items (a deny map sets them).
            x &= u64::MAX >> ((w + 1) * 64 - n);
        }
        while x != 0 {
            out.push((w * 64) as u32 + x.trailing_zeros());
            x &= x - 1;
        }
    }
}

/// An allow-list prepared once for many searches of one index: the bitmap and the
/// ascending ids of the allowed items. A search under [`Filter::List`] skips counting
/// and listing the allowed items, which is most of the per-query cost of a selective
/// filter answered by an exact scan. Immutable; share it between threads freely.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowList {
    /// Items of the index it was prepared for.
    n: usize,
    /// One bit per item (bits at or above `n` clear).
    bits: Vec<u64>,
    /// The allowed ids, ascending.
    ids: Vec<u32>,
}

impl AllowList {
    /// The items of an index of `n` items whose bit is set in `bits` (bit `i % 64` of
    /// word `i / 64`; bits at or above `n` are ignored). Errors when `bits` holds fewer
    /// than `ceil(n / 64)` words.
    pub fn from_bits(n: usize, mut bits: Vec<u64>) -> Result<Self> {
        let words = n.div_ceil(64);
        if bits.len() < words {
            return Err(Error::parameter(
                "filter",
                format!("a bitmap of {} words for {n} items", bits.len()),
                "must hold one bit per item: at least ceil(len / 64) words",
            ));
        }
        bits.truncate(words);
        if let Some(last) = bits.last_mut()
            && !n.is_multiple_of(64)
        {
            *last &= (1u64 << (n % 64)) - 1;
        }
        let mut ids = Vec::with_capacity(popcount(&bits, n));
        bitmap_ids(&bits, n, false, &mut ids);
        Ok(AllowList { n, bits, ids })
    }

    /// The items `ids` (in any order, repeats allowed) of an index of `n` items. Errors
    /// on an id that is not below `n`.
    pub fn from_ids(n: usize, ids: impl IntoIterator<Item = u64>) -> Result<Self> {
        let mut bits = vec![0u64; n.div_ceil(64)];
        for id in ids {
            if id >= n as u64 {
                return Err(Error::IdOutOfRange { id, len: n });
            }
            bits[id as usize / 64] |= 1 << (id % 64);
        }
        Self::from_bits(n, bits)
    }

    /// Number of allowed items.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when no item is allowed (every search returns nothing).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Number of items of the index the list was prepared for.
    pub fn items(&self) -> usize {
        self.n
    }

    /// The allowed ids, ascending.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// The bitmap: bit `i % 64` of word `i / 64` is set when item `i` is allowed.
    pub fn bits(&self) -> &[u64] {
        &self.bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_from_bits_and_from_ids_agree_and_ignore_bits_past_the_end() {
        let n = 70;
        let ids = [69u64, 3, 64, 3, 0];
        let a = AllowList::from_ids(n, ids).unwrap();
        assert_eq!(a.ids(), &[0, 3, 64, 69]);
        assert_eq!((a.len(), a.items(), a.is_empty()), (4, 70, false));
        // Bits 70.. of the last word, and a third word, are not items.
        let b = AllowList::from_bits(n, vec![1 | 1 << 3, 1 | 1 << 5 | !0 << 6, !0]).unwrap();
        assert_eq!(b, a);
        assert_eq!(b.bits().len(), 2);
        assert!(AllowList::from_ids(n, [70]).is_err());
        assert!(AllowList::from_bits(n, vec![0]).is_err());
        assert!(AllowList::from_bits(0, vec![]).unwrap().is_empty());
    }
}
