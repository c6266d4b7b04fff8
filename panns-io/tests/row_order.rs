//! Rows stored in the first tree's leaf order (`FLAG_ROW_ORDER`, sections `row_ids`
//! and `id_rows`): searches, filters and vectors keep using item ids, files round-trip,
//! and damaged or inconsistent row-order sections are refused.

use panns_core::rng::gaussian_vector;
use panns_core::{AllowList, BuildParams, Filter, GraphParams, Index, IndexBuilder, Metric};
use panns_core::{SearchParams, padded_dim};
use panns_io::format::{FLAG_ROW_ORDER, HEADER_SIZE};
use panns_io::{Header, OpenOptions, SectionKind};
use zerocopy::{FromBytes, IntoBytes};

const DIM: usize = 16;

fn data(n: usize) -> Vec<f32> {
    gaussian_vector(n * DIM, false, 11)
}

fn build(rows: &[f32], graph: bool) -> Index {
    let mut b = IndexBuilder::new(DIM, Metric::Euclidean).unwrap();
    b.add_batch(rows).unwrap();
    let mut ix = b
        .build(&BuildParams {
            n_trees: 4,
            threads: 1,
            ..Default::default()
        })
        .unwrap();
    if graph {
        ix.build_graph(&GraphParams {
            threads: 1,
            ..Default::default()
        })
        .unwrap();
    }
    ix
}

fn header(bytes: &[u8]) -> Header {
    Header::read_from_prefix(bytes).unwrap().0
}

fn open_bytes(bytes: Vec<u8>) -> panns_io::Result<Index> {
    panns_io::index_from_bytes(
        bytes,
        &OpenOptions {
            verify_checksum: false,
        },
    )
}

fn err(bytes: Vec<u8>) -> String {
    match open_bytes(bytes) {
        Ok(_) => panic!("a damaged file opened"),
        Err(e) => e.to_string(),
    }
}

/// The byte offset of section `kind` in `bytes`.
fn section(bytes: &[u8], kind: SectionKind) -> usize {
    header(bytes).section(kind).unwrap().offset() as usize
}

#[test]
fn a_build_stores_rows_in_leaf_order_and_answers_with_item_ids() {
    let n = 3000;
    let rows = data(n);
    for graph in [false, true] {
        let ix = build(&rows, graph);
        let p = ix.parts();
        // The rows moved: a permutation other than the identity, with its inverse.
        assert_eq!(p.row_ids.len(), n);
        assert!(p.row_ids.iter().enumerate().any(|(r, &i)| r != i as usize));
        for (r, &id) in p.row_ids.iter().enumerate() {
            assert_eq!(p.id_rows[id as usize] as usize, r);
        }
        // Stored row r holds the vector added as item row_ids[r]; vector(id) finds it.
        let stride = padded_dim(DIM);
        for id in (0..n).step_by(7) {
            let r = p.id_rows[id] as usize;
            assert_eq!(
                &p.vectors[r * stride..r * stride + DIM],
                &rows[id * DIM..][..DIM]
            );
            assert_eq!(&ix.vector(id).unwrap()[..], &rows[id * DIM..][..DIM]);
        }
        // The approximate path answers each added vector with its own id first.
        let budget = if graph { 32 } else { 200 };
        let mut found = 0;
        for id in (0..n).step_by(13) {
            let q = &rows[id * DIM..][..DIM];
            let (hits, st) = ix
                .search_with_stats(q, &SearchParams::new(5).with_budget(budget))
                .unwrap();
            assert!(!st.exact_scan);
            found += usize::from(hits[0].id as usize == id && hits[0].distance == 0.0);
        }
        assert!(found >= (n / 13) * 95 / 100, "graph={graph}: {found}");
        // Exact answers equal a scan in id order, ties included.
        let q = &rows[5 * DIM..][..DIM];
        let exact = ix.linear_search(q, 20).unwrap();
        let mut want: Vec<(f32, u32)> = (0..n)
            .map(|i| {
                let d: f32 = rows[i * DIM..][..DIM]
                    .iter()
                    .zip(q)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum();
                (d, i as u32)
            })
            .collect();
        want.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let got: Vec<u32> = exact.iter().map(|h| h.id).collect();
        let want: Vec<u32> = want[..20].iter().map(|e| e.1).collect();
        assert_eq!(got, want);
    }
}

#[test]
fn filters_name_item_ids_whatever_the_row_order() {
    let n = 3000;
    let rows = data(n);
    let ix = build(&rows, true);
    assert!(!ix.parts().row_ids.is_empty());
    // Every third id: walks (bitmap and list) and the exact scan (predicate at a large
    // budget) all return allowed ids only, and the scan equals a brute-force answer.
    let allowed: Vec<u64> = (0..n as u64).filter(|i| i.is_multiple_of(3)).collect();
    let list = AllowList::from_ids(n, allowed.iter().copied()).unwrap();
    let pred = |i: u32| i.is_multiple_of(3);
    let q = &rows[9 * DIM..][..DIM];
    for (budget, filter) in [
        (32, Filter::List(&list)),
        (32, Filter::Allow(list.bits())),
        (32, Filter::Predicate(&pred)),
        (n, Filter::List(&list)),
        (n, Filter::Allow(list.bits())),
    ] {
        let (hits, _) = ix
            .search_filtered(q, &SearchParams::new(10).with_budget(budget), &filter)
            .unwrap();
        assert_eq!(hits.len(), 10);
        assert!(hits.iter().all(|h| h.id.is_multiple_of(3)), "{hits:?}");
        assert_eq!(hits[0].id, 9, "the query is item 9, which is allowed");
    }
}

#[test]
fn files_keep_the_row_order_and_flag_it() {
    let ix = build(&data(2000), true);
    let bytes = panns_io::index_to_bytes(&ix).unwrap();
    let h = header(&bytes);
    assert_eq!(h.flags() & FLAG_ROW_ORDER, FLAG_ROW_ORDER);
    assert!(h.section(SectionKind::RowIds).is_some());
    assert!(h.section(SectionKind::IdRows).is_some());
    let opened = panns_io::index_from_bytes(
        bytes,
        &OpenOptions {
            verify_checksum: true,
        },
    )
    .unwrap();
    assert_eq!(opened.parts().row_ids, ix.parts().row_ids);
    assert_eq!(opened.parts().id_rows, ix.parts().id_rows);
    for id in [0usize, 17, 1999] {
        let q = ix.vector(id).unwrap().into_owned();
        let p = SearchParams::new(10).with_budget(40);
        assert_eq!(opened.search(&q, &p).unwrap(), ix.search(&q, &p).unwrap());
        assert_eq!(opened.vector(id).unwrap(), ix.vector(id).unwrap());
    }
    // An index small enough for one leaf stays in id order: no flag, no sections.
    let tiny = build(&data(10), false);
    assert!(tiny.parts().row_ids.is_empty());
    let bytes = panns_io::index_to_bytes(&tiny).unwrap();
    assert_eq!(header(&bytes).flags() & FLAG_ROW_ORDER, 0);
    assert!(header(&bytes).section(SectionKind::RowIds).is_none());
}

#[test]
fn damaged_row_order_sections_are_refused_with_the_reason() {
    let ix = build(&data(2000), false);
    let bytes = panns_io::index_to_bytes(&ix).unwrap();
    let ids = section(&bytes, SectionKind::RowIds);
    let rows = section(&bytes, SectionKind::IdRows);
    let word = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    // Two rows claiming each other's item: not the inverse of id_rows.
    let mut b = bytes.clone();
    let (a, c) = (word(&b, ids), word(&b, ids + 4));
    b[ids..ids + 4].copy_from_slice(&c.to_le_bytes());
    b[ids + 4..ids + 8].copy_from_slice(&a.to_le_bytes());
    let e = err(b);
    assert!(e.contains("row 0 holds item"), "{e}");
    // An item id past the end, and a row past the end.
    let mut b = bytes.clone();
    b[ids + 8..ids + 12].copy_from_slice(&2000u32.to_le_bytes());
    assert!(err(b).contains("row 2 holds item 2000"));
    let mut b = bytes.clone();
    b[rows..rows + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(err(b).contains("item 0 is stored in row 4294967295"));
    // The same item in two rows (id_rows consistent with one of them only).
    let mut b = bytes.clone();
    let first = word(&b, ids);
    b[ids + 4..ids + 8].copy_from_slice(&first.to_le_bytes());
    assert!(err(b).contains("row 1 holds item"));
    // Sections without the flag, and the flag without sections.
    let edited = |b: &[u8], flags: u32| {
        let mut h = header(b);
        h.flags = flags.into();
        let mut out = b.to_vec();
        out[..HEADER_SIZE].copy_from_slice(h.as_bytes());
        out
    };
    let e = err(edited(&bytes, header(&bytes).flags() & !FLAG_ROW_ORDER));
    assert!(
        e.contains("row_ids section present but the header flags no row order"),
        "{e}"
    );
    let tiny = panns_io::index_to_bytes(&build(&data(10), false)).unwrap();
    let e = err(edited(&tiny, FLAG_ROW_ORDER));
    assert!(e.contains("required row_ids section is missing"), "{e}");
}
