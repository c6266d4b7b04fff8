//! Reads arbitrary bytes as a NumPy `.npy` file.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = common::scratch_file("read_npy", data);
    if let Ok(d) = panns_io::read_npy(&path) {
        assert_eq!(d.data.len(), d.n * d.dim);
        assert!(d.data.iter().all(|x| x.is_finite()));
    }
});
