//! Index files holding 8-bit codes (`Dtype::I8`, and `Dtype::I8F32` with the f32
//! vectors beside them): round trips through files and bytes, the header flags and
//! sections as docs/format.md specifies, and damaged files.

use panns_core::rng::gaussian_vector;
use panns_core::{BuildParams, Dtype, GraphParams, Index, IndexBuilder, Metric, SearchParams};
use panns_io::format::{FLAG_CODES, FLAG_F32_BESIDE_CODES, FLAG_ROW_ORDER, HEADER_SIZE};
use panns_io::{Header, OpenOptions, SectionKind, save_index};
use zerocopy::{FromBytes, IntoBytes};

fn build(metric: Metric, dtype: Dtype, n: usize, dim: usize) -> Index {
    let mut b = IndexBuilder::new(dim, metric).unwrap();
    b.add_batch(&gaussian_vector(n * dim, false, 5)).unwrap();
    let mut ix = b
        .build(&BuildParams {
            n_trees: 4,
            dtype,
            threads: 1,
            ..Default::default()
        })
        .unwrap();
    ix.build_graph(&GraphParams {
        threads: 1,
        ..Default::default()
    })
    .unwrap();
    ix
}

fn header(bytes: &[u8]) -> Header {
    Header::read_from_prefix(bytes).unwrap().0
}

fn open_bytes(bytes: Vec<u8>, verify: bool) -> panns_io::Result<Index> {
    panns_io::index_from_bytes(
        bytes,
        &OpenOptions {
            verify_checksum: verify,
        },
    )
}

#[test]
fn code_files_round_trip_and_search_like_the_index_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    for metric in [Metric::Euclidean, Metric::Angular, Metric::Dot] {
        let (n, dim) = (700, 21);
        let ix = build(metric, Dtype::I8, n, dim);
        let f32_len = panns_io::serialized_len(&build(metric, Dtype::F32, n, dim)).unwrap();
        let path = dir.path().join(format!("{metric}.panns"));
        save_index(&ix, &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        // Codes take a quarter of the vector bytes (plus one float per item).
        let stride = panns_core::padded_dim(dim) as u64;
        let saved = f32_len - bytes.len() as u64;
        assert!(
            saved + 4 * n as u64 + 1024 >= 3 * n as u64 * stride,
            "saved {saved}"
        );
        let h = header(&bytes);
        assert_eq!(h.flags() & FLAG_CODES, FLAG_CODES);
        assert_eq!(h.dtype(), Dtype::I8);
        assert!(h.section(SectionKind::Vectors).is_none());
        for kind in [
            SectionKind::Codes,
            SectionKind::CodeLo,
            SectionKind::CodeStep,
            SectionKind::CodeAux,
        ] {
            assert!(h.section(kind).is_some(), "{}", kind.name());
        }
        let opened = panns_io::open_index(
            &path,
            &OpenOptions {
                verify_checksum: true,
            },
        )
        .unwrap();
        assert_eq!(opened.dtype(), Dtype::I8);
        assert_eq!(opened.params().dtype, Dtype::I8);
        let from_bytes = open_bytes(bytes, true).unwrap();
        for qi in 0..20 {
            let q = gaussian_vector(dim, false, 1000 + qi);
            let p = SearchParams::new(10).with_budget(40);
            let want = ix.search(&q, &p).unwrap();
            assert_eq!(opened.search(&q, &p).unwrap(), want);
            assert_eq!(from_bytes.search(&q, &p).unwrap(), want);
        }
        assert_eq!(&opened.vector(5).unwrap()[..], &ix.vector(5).unwrap()[..]);
    }
}

#[test]
fn f32_files_are_unchanged_and_carry_no_flag() {
    let ix = build(Metric::Euclidean, Dtype::F32, 300, 8);
    let bytes = panns_io::index_to_bytes(&ix).unwrap();
    let h = header(&bytes);
    // No dtype flag (the rows are stored in leaf order: that flag only).
    assert_eq!(h.flags(), FLAG_ROW_ORDER);
    assert!(h.section(SectionKind::Codes).is_none());
    assert_eq!(open_bytes(bytes, true).unwrap().dtype(), Dtype::F32);
}

/// Rewrites the header of `bytes` with `edit` (the checksum is left stale: open without
/// verification).
fn edited(bytes: &[u8], edit: impl FnOnce(&mut Header)) -> Vec<u8> {
    let mut h = header(bytes);
    edit(&mut h);
    let mut out = bytes.to_vec();
    out[..HEADER_SIZE].copy_from_slice(h.as_bytes());
    out
}

fn err(bytes: Vec<u8>) -> String {
    match open_bytes(bytes, false) {
        Ok(_) => panic!("a damaged file opened"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn damaged_code_files_are_refused_with_the_reason() {
    let ix = build(Metric::Euclidean, Dtype::I8, 300, 8);
    let bytes = panns_io::index_to_bytes(&ix).unwrap();
    // Without the flag, the code sections are unexpected and the vectors missing.
    let e = err(edited(&bytes, |h| {
        h.flags = (h.flags() & FLAG_ROW_ORDER).into()
    }));
    assert!(
        e.contains("vectors section is missing") || e.contains("does not flag codes"),
        "{e}"
    );
    // An unknown flag beside it.
    let e = err(edited(&bytes, |h| h.flags = (FLAG_CODES | 8).into()));
    assert!(e.contains("unknown feature flags 0x8"), "{e}");
    // A code section of the wrong length.
    let e = err(edited(&bytes, |h| {
        let s = h
            .sections
            .iter_mut()
            .find(|s| s.kind() == SectionKind::CodeAux.code())
            .unwrap();
        s.length = (s.length() - 4).into();
    }));
    assert!(e.contains("code_aux section is"), "{e}");
    // A negative step inside the step section.
    let step = header(&bytes)
        .section(SectionKind::CodeStep)
        .unwrap()
        .offset() as usize;
    let mut b = bytes.clone();
    b[step..step + 4].copy_from_slice(&(-1.0f32).to_le_bytes());
    assert!(err(b).contains("negative"));
    // A damaged code byte opens (it is a valid code) but fails verification.
    let codes = header(&bytes).section(SectionKind::Codes).unwrap().offset() as usize;
    let mut b = bytes.clone();
    b[codes + 3] ^= 0x40;
    assert!(open_bytes(b.clone(), false).is_ok());
    assert!(open_bytes(b, true).is_err());
}

#[test]
fn codes_with_f32_beside_them_round_trip_with_both_flags() {
    let dir = tempfile::tempdir().unwrap();
    for metric in [Metric::Euclidean, Metric::Angular, Metric::Dot] {
        let (n, dim) = (500, 19);
        let ix = build(metric, Dtype::I8F32, n, dim);
        assert_eq!(ix.dtype(), Dtype::I8F32);
        let path = dir.path().join(format!("{metric}.panns"));
        save_index(&ix, &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let h = header(&bytes);
        assert_eq!(
            h.flags(),
            FLAG_CODES | FLAG_F32_BESIDE_CODES | FLAG_ROW_ORDER
        );
        assert_eq!(h.dtype(), Dtype::I8F32);
        for kind in [
            SectionKind::Vectors,
            SectionKind::Codes,
            SectionKind::CodeAux,
        ] {
            assert!(h.section(kind).is_some(), "{}", kind.name());
        }
        // Both sizes add up: the f32 file plus the codes of the i8 file.
        let f32_len = panns_io::serialized_len(&build(metric, Dtype::F32, n, dim)).unwrap();
        let i8_len = panns_io::serialized_len(&build(metric, Dtype::I8, n, dim)).unwrap();
        assert!(bytes.len() as u64 > f32_len && bytes.len() as u64 > i8_len);
        let opened = panns_io::open_index(
            &path,
            &OpenOptions {
                verify_checksum: true,
            },
        )
        .unwrap();
        assert_eq!(opened.dtype(), Dtype::I8F32);
        assert_eq!(opened.params().dtype, Dtype::I8F32);
        opened.parts().check_values().unwrap();
        for qi in 0..20 {
            let q = gaussian_vector(dim, false, 2000 + qi);
            let p = SearchParams::new(10).with_budget(40);
            assert_eq!(opened.search(&q, &p).unwrap(), ix.search(&q, &p).unwrap());
        }
        assert_eq!(&opened.vector(9).unwrap()[..], &ix.vector(9).unwrap()[..]);
    }
}

#[test]
fn damaged_code_and_f32_files_are_refused_with_the_reason() {
    let ix = build(Metric::Euclidean, Dtype::I8F32, 300, 8);
    let bytes = panns_io::index_to_bytes(&ix).unwrap();
    // The f32 flag without codes.
    let e = err(edited(&bytes, |h| h.flags = FLAG_F32_BESIDE_CODES.into()));
    assert!(e.contains("beside codes, but no codes"), "{e}");
    // Codes without the f32 flag: the vectors section is unexpected.
    let e = err(edited(&bytes, |h| h.flags = FLAG_CODES.into()));
    assert!(e.contains("vectors section present"), "{e}");
    // A damaged f32 value opens (any finite float is a value) but fails verification,
    // which checks every f32 value against its code.
    let vectors = header(&bytes)
        .section(SectionKind::Vectors)
        .unwrap()
        .offset() as usize;
    let mut b = bytes.clone();
    b[vectors + 4 * 3 + 2] ^= 0x10;
    assert!(open_bytes(b.clone(), false).is_ok());
    assert!(open_bytes(b, true).is_err());
}

#[test]
fn a_live_index_keeps_its_dtype_through_compaction() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (metric, dtype)) in [
        (Metric::Euclidean, Dtype::I8),
        (Metric::Angular, Dtype::I8F32),
    ]
    .into_iter()
    .enumerate()
    {
        let path = dir.path().join(format!("live{i}.panns"));
        save_index(&build(metric, dtype, 400, 12), &path).unwrap();
        let mut live = panns_io::LiveIndex::open(&path, true).unwrap();
        let extra = gaussian_vector(50 * 12, false, 77);
        for (j, v) in extra.chunks(12).enumerate() {
            live.add(10_000 + j as u64, v).unwrap();
        }
        live.commit().unwrap();
        live.compact().unwrap();
        let verify = OpenOptions {
            verify_checksum: true,
        };
        let reopened = panns_io::open_index(&path, &verify).unwrap();
        assert_eq!(reopened.dtype(), dtype);
        assert_eq!(reopened.len(), 450);
        reopened.parts().check_values().unwrap();
    }
}
