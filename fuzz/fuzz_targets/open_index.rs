//! Opens arbitrary bytes as an index file; when they open, searches them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use panns_core::SearchParams;
use panns_io::format::{CHECKSUM_OFFSET, file_checksum};
use panns_io::OpenOptions;

fuzz_target!(|data: &[u8]| {
    // Mode (from the length, so the header bytes stay free for mutation):
    // 0: the bytes as they are; 1: `file_len` patched to the real length, so resized
    // inputs get past that check; 2: also the checksum fixed, and verified.
    let mode = data.len() % 3;
    let mut bytes = data.to_vec();
    if mode > 0 && bytes.len() >= 112 {
        let len = bytes.len() as u64;
        bytes[104..112].copy_from_slice(&len.to_le_bytes());
        if mode == 2 {
            let sum = file_checksum(&bytes);
            bytes[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 8].copy_from_slice(&sum.to_le_bytes());
        }
    }
    // Parsed in memory: the file's bytes are one source of an index like any other.
    let verify_checksum = mode == 2;
    let Ok(view) = panns_io::index_from_slice(&bytes, &OpenOptions { verify_checksum }) else {
        return;
    };
    let dim = view.dim();
    let n = view.len();
    // Stored vectors are not validated on open (that would read the whole file), so a
    // damaged one may be NaN, infinite or zero: as a query it may be refused, but
    // never panic, and as a result it never beats a finite one (it scores +inf).
    for (i, k) in [(0usize, 1usize), (1, 5), (2, 100)] {
        let id = i * 7919 % n;
        let stored: Vec<f32> = view.vector(id).expect("id in range").to_vec();
        let _ = view.search(&stored, &SearchParams::new(k));
        let _ = view.linear_search(&stored, k);
        let query: Vec<f32> = (0..dim).map(|j| ((i + j) % 5) as f32 - 1.5).collect();
        let hits = view
            .search(&query, &SearchParams::new(k))
            .expect("a finite non-zero query on an opened index");
        assert!(hits.len() <= k.min(n));
        assert!(hits.iter().all(|h| (h.id as usize) < n));
        assert!(hits.iter().all(|h| !h.distance.is_nan()));
        assert!(hits.windows(2).all(|w| w[0].distance <= w[1].distance));
        for h in &hits {
            let v = view.vector(h.id as usize).expect("id in range");
            if v.iter().any(|x| !x.is_finite()) {
                assert_eq!(h.distance, f32::INFINITY, "a damaged row scored finite");
            }
        }
        let _ = view.search(&query, &SearchParams::new(k).with_budget(3));
        let _ = view.linear_search(&query, k);
    }
});
