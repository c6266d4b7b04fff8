//! Reads arbitrary bytes as delimited text; the first byte picks the options.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use panns_io::{CsvOptions, HeaderMode};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, text)) = data.split_first() else {
        return;
    };
    let path = common::scratch_file("read_csv", text);
    let options = CsvOptions {
        separator: [b',', b' ', b'\t', b';'][usize::from(sel & 3)],
        header: [HeaderMode::Auto, HeaderMode::Yes, HeaderMode::No][usize::from(sel >> 2) % 3],
    };
    if let Ok(d) = panns_io::read_csv(&path, &options) {
        assert_eq!(d.data.len(), d.n * d.dim);
        assert!(d.data.iter().all(|x| x.is_finite()));
    }
});
