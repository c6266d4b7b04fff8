//! Reads arbitrary bytes as TEXMEX `.fvecs`, `.bvecs` and `.ivecs` files.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = common::scratch_file("read_fvecs", data);
    if let Ok(d) = panns_io::read_fvecs(&path) {
        assert_eq!(d.data.len(), d.n * d.dim);
        assert!(d.data.iter().all(|x| x.is_finite()));
    }
    if let Ok(d) = panns_io::read_bvecs(&path) {
        assert_eq!(d.data.len(), d.n * d.dim);
    }
    if let Ok(d) = panns_io::read_ivecs(&path) {
        assert_eq!(d.data.len(), d.n * d.dim);
    }
});
