//! Sharded indexes: the merged answer against an independent merge of every shard's own
//! search, against exact search, labels, subsets, and every refusal of a bad manifest or
//! shard.

use std::path::{Path, PathBuf};

use panns_core::rng::gaussian_vector;
use panns_core::{BuildParams, IndexBuilder, Metric, SearchParams};
use panns_io::shard::{NO_LABEL, shard_file_name, shard_rows};
use panns_io::{
    Error, Manifest, OpenOptions, ShardBuildOptions, ShardedIndex, build_shards, open_index,
    save_index, write_manifest,
};

const DIM: usize = 16;
const N: usize = 3000;
const SHARDS: usize = 4;

fn opts(n_shards: usize) -> ShardBuildOptions {
    ShardBuildOptions {
        n_shards,
        params: BuildParams {
            n_trees: 8,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn data() -> Vec<f32> {
    gaussian_vector(N * DIM, false, 7)
}

fn build(dir: &Path, labels: Option<&[u64]>) -> PathBuf {
    build_shards(&data(), DIM, Metric::Euclidean, labels, dir, &opts(SHARDS)).unwrap()
}

/// The shards of [`build`] (with `labels`, or labelled by row), opened.
fn open_built(dir: &Path, labels: Option<&Vec<u64>>) -> ShardedIndex {
    let manifest = build(dir, labels.map(|l| l.as_slice()));
    ShardedIndex::open(manifest, &OpenOptions::default()).unwrap()
}

fn sq_dist(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// The merge computed here, independently of the library: every shard file opened on
/// its own, searched, its ids turned into rows by the split, all sorted by (distance,
/// label).
fn independent(
    dir: &Path,
    q: &[f32],
    p: &SearchParams,
    label_of_row: &dyn Fn(usize) -> u64,
) -> Vec<(u64, f32)> {
    let mut all = Vec::new();
    for s in 0..SHARDS {
        let idx = open_index(dir.join(shard_file_name(s)), &OpenOptions::default()).unwrap();
        let start = shard_rows(N, SHARDS, s).start;
        for h in idx.search(q, p).unwrap() {
            all.push((label_of_row(start + h.id as usize), h.distance));
        }
    }
    all.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap().then(a.0.cmp(&b.0)));
    all.truncate(p.k);
    all
}

#[test]
fn merged_result_equals_the_merge_of_each_shards_top_k() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = build(dir.path(), None);
    let ix = ShardedIndex::open(&manifest, &OpenOptions::default()).unwrap();
    assert_eq!((ix.len(), ix.dim(), ix.n_shards()), (N, DIM, SHARDS));
    // 750 items per shard: a budget of 40 is far below half, so each shard walks its trees.
    let p = SearchParams::new(10).with_budget(40);
    let queries = gaussian_vector(50 * DIM, false, 99);
    let mut differs_from_exact = 0;
    for q in queries.chunks(DIM) {
        let (hits, stats) = ix.search_with_stats(q, &p).unwrap();
        assert_eq!(stats.len(), SHARDS);
        assert!(stats.iter().all(|s| !s.exact_scan), "{stats:?}");
        assert_eq!(hits, independent(dir.path(), q, &p, &|r| r as u64));
        let exact = exact_top(q, 10);
        differs_from_exact += usize::from(hits.iter().map(|h| h.0).collect::<Vec<_>>() != exact);
    }
    // The approximate path really is approximate somewhere (else this test checks little).
    assert!(differs_from_exact > 0);
    // Batch search gives the same lists, and fills buffers the same way.
    let batch = ix.search_batch(&queries, &p).unwrap();
    let mut labels = vec![0u64; 50 * 10];
    let mut dists = vec![0f32; 50 * 10];
    ix.search_batch_into(&queries, &p, &mut labels, Some(&mut dists))
        .unwrap();
    for (r, q) in queries.chunks(DIM).enumerate() {
        let one = ix.search(q, &p).unwrap();
        assert_eq!(batch[r], one);
        assert_eq!(
            labels[r * 10..(r + 1) * 10],
            one.iter().map(|h| h.0).collect::<Vec<_>>()[..]
        );
        assert_eq!(
            dists[r * 10..(r + 1) * 10],
            one.iter().map(|h| h.1).collect::<Vec<_>>()[..]
        );
    }
}

/// Exact top-k rows by brute force over the whole data set.
fn exact_top(q: &[f32], k: usize) -> Vec<u64> {
    let d = data();
    let mut all: Vec<(f32, u64)> = d
        .chunks(DIM)
        .enumerate()
        .map(|(i, r)| (sq_dist(q, r), i as u64))
        .collect();
    all.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap().then(a.1.cmp(&b.1)));
    all.into_iter().take(k).map(|x| x.1).collect()
}

#[test]
fn exact_budgets_give_exact_search() {
    let dir = tempfile::tempdir().unwrap();
    let ix = ShardedIndex::open(build(dir.path(), None), &OpenOptions::default()).unwrap();
    // 375 = half of a shard: every shard scans exactly.
    let p = SearchParams::new(15).with_budget(375);
    for q in gaussian_vector(20 * DIM, false, 5).chunks(DIM) {
        let (hits, stats) = ix.search_with_stats(q, &p).unwrap();
        assert!(stats.iter().all(|s| s.exact_scan));
        assert_eq!(
            hits.iter().map(|h| h.0).collect::<Vec<_>>(),
            exact_top(q, 15)
        );
        let d = data();
        for h in &hits {
            let want = sq_dist(q, &d[h.0 as usize * DIM..][..DIM]).sqrt();
            assert!(
                (h.1 - want).abs() <= 1e-4 * want.max(1.0),
                "{h:?} vs {want}"
            );
        }
    }
}

#[test]
fn caller_labels_are_stored_in_the_shards_and_returned() {
    let dir = tempfile::tempdir().unwrap();
    let labels: Vec<u64> = (0..N as u64)
        .map(|i| 1_000_000 + 7 * (N as u64 - i))
        .collect();
    let manifest = build(dir.path(), Some(&labels));
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(text.contains(" file shard-00000.panns"), "{text}");
    let ix = ShardedIndex::open(&manifest, &OpenOptions::default()).unwrap();
    let p = SearchParams::new(10).with_budget(40);
    for q in gaussian_vector(10 * DIM, false, 3).chunks(DIM) {
        let hits = ix.search(q, &p).unwrap();
        let want = independent(dir.path(), q, &p, &|r| labels[r]);
        assert_eq!(hits, want);
    }
    // Row labels of the same data: same distances, labels mapped through `labels`.
    let rows_dir = tempfile::tempdir().unwrap();
    let rows = ShardedIndex::open(build(rows_dir.path(), None), &OpenOptions::default()).unwrap();
    let q = &data()[5 * DIM..6 * DIM];
    let a = rows.search(q, &SearchParams::new(1)).unwrap();
    let b = ix.search(q, &SearchParams::new(1)).unwrap();
    assert_eq!((a[0].0, b[0].0), (5, labels[5]));
    // Duplicate labels are refused at build time.
    let mut dup = labels.clone();
    dup[10] = dup[2000];
    let e = build_shards(
        &data(),
        DIM,
        Metric::Euclidean,
        Some(&dup),
        dir.path().join("d"),
        &opts(2),
    )
    .unwrap_err();
    assert!(e.to_string().contains("given twice"), "{e}");
}

#[test]
fn subsets_merge_to_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = build(dir.path(), None);
    let whole = ShardedIndex::open(&manifest, &OpenOptions::default()).unwrap();
    let a = ShardedIndex::open_subset(&manifest, &[0, 2], &OpenOptions::default()).unwrap();
    let b = ShardedIndex::open_subset(&manifest, &[3, 1], &OpenOptions::default()).unwrap();
    assert_eq!(a.len() + b.len(), N);
    let p = SearchParams::new(8).with_budget(30);
    for q in gaussian_vector(10 * DIM, false, 11).chunks(DIM) {
        let merged =
            panns_io::merge_top_k(&[a.search(q, &p).unwrap(), b.search(q, &p).unwrap()], 8);
        assert_eq!(merged, whole.search(q, &p).unwrap());
    }
    for bad in [&[][..], &[4][..], &[1, 1][..]] {
        assert!(ShardedIndex::open_subset(&manifest, bad, &OpenOptions::default()).is_err());
    }
}

#[test]
fn short_rows_are_padded_and_bad_queries_refused() {
    let dir = tempfile::tempdir().unwrap();
    let small: Vec<f32> = gaussian_vector(5 * 4, false, 1);
    let m = build_shards(&small, 4, Metric::Euclidean, None, dir.path(), &opts(2)).unwrap();
    let ix = ShardedIndex::open(&m, &OpenOptions::default()).unwrap();
    let mut labels = vec![0u64; 8];
    let mut d = vec![0f32; 8];
    ix.search_batch_into(
        &small[..4],
        &SearchParams::new(8),
        &mut labels,
        Some(&mut d),
    )
    .unwrap();
    assert_eq!(labels[0], 0);
    assert_eq!(labels[5..], [NO_LABEL; 3]);
    assert!(d[5..].iter().all(|x| x.is_infinite()));
    let e = ix.search(&[1.0, 2.0], &SearchParams::new(1)).unwrap_err();
    assert!(e.to_string().contains("dimension"), "{e}");
    let e = ix
        .search(&[1.0, f32::NAN, 0.0, 0.0], &SearchParams::new(1))
        .unwrap_err();
    assert!(
        matches!(e, Error::Core(panns_core::Error::NonFinite { .. })),
        "{e}"
    );
    let mut q2 = small[..8].to_vec();
    q2[6] = f32::INFINITY;
    let e = ix.search_batch(&q2, &SearchParams::new(1)).unwrap_err();
    assert!(
        matches!(e, Error::Core(panns_core::Error::NonFinite { item: 1, .. })),
        "{e}"
    );
    assert!(ix.search(&small[..4], &SearchParams::new(0)).is_err());
}

fn one_index(dim: usize, metric: Metric, seed: u64, path: &Path) {
    let mut b = IndexBuilder::new(dim, metric).unwrap();
    b.add_batch(&gaussian_vector(100 * dim, false, seed))
        .unwrap();
    let ix = b
        .build(&BuildParams {
            n_trees: 2,
            seed,
            ..Default::default()
        })
        .unwrap();
    save_index(&ix, path).unwrap();
}

/// Opens `manifest` and returns the error text (the open must fail).
fn refusal(manifest: &Path, verify: bool) -> String {
    let e = ShardedIndex::open(
        manifest,
        &OpenOptions {
            verify_checksum: verify,
        },
    )
    .unwrap_err();
    e.to_string()
}

#[test]
fn mismatched_shards_are_refused_naming_the_shard() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    one_index(8, Metric::Euclidean, 1, &p("a.panns"));
    one_index(9, Metric::Euclidean, 2, &p("dim9.panns"));
    one_index(8, Metric::Angular, 3, &p("angular.panns"));
    let e = write_manifest(p("m"), &[p("a.panns"), p("dim9.panns")])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("shard 1") && e.contains("dim9.panns") && e.contains("dimension 9"),
        "{e}"
    );
    let e = write_manifest(p("m"), &[p("a.panns"), p("angular.panns")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("shard 1") && e.contains("metric angular"), "{e}");

    // A manifest edited to another metric (checksum recomputed by hand): the shards disagree.
    let m = write_manifest(p("m"), &[p("a.panns")]).unwrap();
    assert_eq!(m.shards[0].path, PathBuf::from("a.panns"));
    let mut other = m.clone();
    other.metric = Metric::Dot;
    other.write(p("m-dot")).unwrap();
    let e = refusal(&p("m-dot"), false);
    assert!(
        e.contains("shard 0")
            && e.contains("a.panns")
            && e.contains("metric euclidean, but the manifest says dot"),
        "{e}"
    );
    let mut other = m.clone();
    other.dim = 4;
    other.write(p("m-dim")).unwrap();
    assert!(refusal(&p("m-dim"), false).contains("dimension 8, but the manifest says 4"));
    let mut other = m.clone();
    other.shards[0].n_items = 99;
    other.write(p("m-count")).unwrap();
    assert!(refusal(&p("m-count"), false).contains("item count 100, but the manifest says 99"));
    let mut other = m.clone();
    other.shards[0].labels = panns_io::ShardLabels::File;
    other.write(p("m-labels")).unwrap();
    assert!(refusal(&p("m-labels"), false).contains("no labels section"));
}

#[test]
fn replaced_missing_and_damaged_shards_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = build(dir.path(), None);
    assert!(
        ShardedIndex::open(
            &manifest,
            &OpenOptions {
                verify_checksum: true
            }
        )
        .is_ok()
    );
    let s2 = dir.path().join(shard_file_name(2));
    let original = std::fs::read(&s2).unwrap();

    // Replaced by another valid index of the same shape: the header checksum differs.
    let mut b = IndexBuilder::new(DIM, Metric::Euclidean).unwrap();
    b.add_batch(&gaussian_vector(750 * DIM, false, 1234))
        .unwrap();
    save_index(&b.build(&BuildParams::default()).unwrap(), &s2).unwrap();
    let e = refusal(&manifest, false);
    assert!(
        e.contains("shard 2") && e.contains("shard-00002.panns") && e.contains("replaced"),
        "{e}"
    );

    // Damaged inside a vector (header intact): only verification sees it.
    let mut bad = original.clone();
    bad[600] ^= 0x40;
    std::fs::write(&s2, &bad).unwrap();
    assert!(ShardedIndex::open(&manifest, &OpenOptions::default()).is_ok());
    let e = refusal(&manifest, true);
    assert!(
        e.contains("shard 2") && e.contains("checksum mismatch"),
        "{e}"
    );

    // Truncated.
    std::fs::write(&s2, &original[..original.len() - 64]).unwrap();
    let e = refusal(&manifest, false);
    assert!(
        e.contains("shard 2") && e.contains("shard-00002.panns"),
        "{e}"
    );

    // Missing.
    std::fs::remove_file(&s2).unwrap();
    let e = ShardedIndex::open(&manifest, &OpenOptions::default()).unwrap_err();
    match &e {
        Error::Shard {
            shard: 2, source, ..
        } => assert!(matches!(**source, Error::Io { .. }), "{e}"),
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("shard-00002.panns"), "{e}");

    // The manifest itself damaged.
    std::fs::write(&s2, &original).unwrap();
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replacen("rows:750", "rows:751", 1)).unwrap();
    assert!(matches!(
        ShardedIndex::open(&manifest, &OpenOptions::default()),
        Err(Error::ChecksumMismatch { .. })
    ));
    std::fs::write(&manifest, &text[..text.len() / 2]).unwrap();
    assert!(refusal(&manifest, false).contains("truncated"));
}

#[test]
fn labels_held_twice_across_shards_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = data();
    let labels: Vec<u64> = (0..N as u64).map(|i| i * 3).collect();
    build_shards(
        &d,
        DIM,
        Metric::Euclidean,
        Some(&labels),
        dir.path().join("x"),
        &opts(2),
    )
    .unwrap();
    build_shards(
        &d,
        DIM,
        Metric::Euclidean,
        Some(&labels),
        dir.path().join("y"),
        &opts(2),
    )
    .unwrap();
    let a = dir.path().join("x").join(shard_file_name(0));
    let b = dir.path().join("y").join(shard_file_name(0));
    let m = dir.path().join("both");
    write_manifest(&m, &[&a, &b]).unwrap();
    let e = refusal(&m, false);
    assert!(e.contains("held twice"), "{e}");
    // A labelled shard whose labels fall inside a row-labelled shard's range.
    let rows = dir.path().join("r.panns");
    one_index(DIM, Metric::Euclidean, 5, &rows); // rows 0..100 ... then labels 0,3,6...
    let m2 = dir.path().join("mixed");
    let man = write_manifest(&m2, &[&rows, &a]).unwrap();
    assert_eq!(
        man.shards[0].labels,
        panns_io::ShardLabels::Rows { offset: 0 }
    );
    let e = refusal(&m2, false);
    assert!(e.contains("also the row label"), "{e}");
    // Overlapping row ranges written by hand.
    let mut man = Manifest::read(dir.path().join("x").join("manifest.panns-shards")).unwrap();
    for s in &mut man.shards {
        s.labels = panns_io::ShardLabels::Rows { offset: 0 };
    }
    man.write(dir.path().join("x").join("overlap")).unwrap();
    let e = refusal(&dir.path().join("x").join("overlap"), false);
    assert!(e.contains("overlapping label ranges"), "{e}");
}

#[test]
fn angular_and_dot_shards_merge_like_their_parts() {
    for metric in [Metric::Angular, Metric::Dot] {
        let dir = tempfile::tempdir().unwrap();
        let d = data();
        let m = build_shards(&d, DIM, metric, None, dir.path(), &opts(SHARDS)).unwrap();
        let ix = ShardedIndex::open(
            &m,
            &OpenOptions {
                verify_checksum: true,
            },
        )
        .unwrap();
        assert_eq!(ix.metric(), metric);
        let p = SearchParams::new(10).with_budget(40);
        for q in gaussian_vector(10 * DIM, false, 21).chunks(DIM) {
            assert_eq!(
                ix.search(q, &p).unwrap(),
                independent(dir.path(), q, &p, &|r| r as u64),
                "{metric}"
            );
        }
        // Exact budgets: the smallest distance under the metric, computed here.
        let q = &d[17 * DIM..18 * DIM];
        let best = ix.search(q, &SearchParams::new(1).with_budget(N)).unwrap()[0];
        let score = |r: &[f32]| -> f32 {
            let dot: f32 = r.iter().zip(q).map(|(a, b)| a * b).sum();
            match metric {
                Metric::Angular => {
                    let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
                    1.0 - dot / (n(r) * n(q))
                }
                _ => -dot,
            }
        };
        let want = d
            .chunks(DIM)
            .enumerate()
            .min_by(|a, b| score(a.1).partial_cmp(&score(b.1)).unwrap())
            .unwrap()
            .0;
        assert_eq!(best.0, want as u64, "{metric}");
    }
}

/// Every row whose label `keep` accepts as (squared distance, label), nearest first.
fn ranked(
    q: &[f32],
    label_of_row: &dyn Fn(usize) -> u64,
    keep: &dyn Fn(u64) -> bool,
) -> Vec<(f32, u64)> {
    let d = data();
    let mut all: Vec<(f32, u64)> = d
        .chunks(DIM)
        .enumerate()
        .map(|(i, r)| (sq_dist(q, r), label_of_row(i)))
        .filter(|e| keep(e.1))
        .collect();
    all.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap().then(a.1.cmp(&b.1)));
    all
}

/// Exact top-k labels over the rows whose label `keep` accepts.
fn exact_allowed(
    q: &[f32],
    k: usize,
    label_of_row: &dyn Fn(usize) -> u64,
    keep: &dyn Fn(u64) -> bool,
) -> Vec<u64> {
    let all = ranked(q, label_of_row, keep);
    all.into_iter().take(k).map(|x| x.1).collect()
}

#[test]
fn label_filters_cover_every_shard_and_lists_are_planned() {
    // Row labels and caller labels (a list map per shard): a short list is scanned
    // exactly in the shards holding its labels and skips the others; a predicate and a
    // long list walk; unknown labels match nothing.
    let caller: Vec<u64> = (0..N as u64).map(|i| 50_000 + 3 * (N as u64 - i)).collect();
    for labels in [None, Some(&caller)] {
        let dir = tempfile::tempdir().unwrap();
        let ix = open_built(dir.path(), labels);
        let label_of_row = |r: usize| labels.map_or(r as u64, |l| l[r]);
        // 12 rows of shard 0 and 1 of shard 3 (750 rows each), an unknown label, a duplicate.
        let mut short: Vec<u64> = (0..12).map(|i| label_of_row(i * 60)).collect();
        short.extend([label_of_row(2999), 7_777_777, label_of_row(0)]);
        let p = SearchParams::new(5).with_budget(40);
        for q in gaussian_vector(8 * DIM, false, 11).chunks(DIM) {
            let (hits, stats) = ix.search_labels(q, &p, &short).unwrap();
            let want = exact_allowed(q, 5, &label_of_row, &|l| short.contains(&l));
            assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), want);
            assert!(
                stats[0].exact_scan && stats[0].scored == 12,
                "{:?}",
                stats[0]
            );
            assert!(
                stats[3].exact_scan && stats[3].scored == 1,
                "{:?}",
                stats[3]
            );
            assert_eq!(
                stats[1].scored + stats[2].scored,
                0,
                "shards with no listed label are skipped"
            );
            // A predicate over every other label: only allowed labels, and the walk ran.
            let even = |l: u64| l.is_multiple_of(2);
            let (hits, stats) = ix.search_filtered(q, &p, &even).unwrap();
            assert_eq!(hits.len(), 5);
            assert!(hits.iter().all(|h| even(h.0)));
            assert!(stats.iter().all(|s| !s.exact_scan));
            // At a budget covering half of each shard both are exact.
            let full = SearchParams::new(5).with_budget(375);
            let want = exact_allowed(q, 5, &label_of_row, &even);
            let (hits, _) = ix.search_filtered(q, &full, &even).unwrap();
            assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), want);
            let list: Vec<u64> = (0..N).map(label_of_row).filter(|&l| even(l)).collect();
            let (hits, _) = ix.search_labels(q, &full, &list).unwrap();
            assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), want);
        }
        let q = &data()[..DIM];
        assert!(ix.search_labels(q, &p, &[]).unwrap().0.is_empty());
        assert!(ix.search_labels(q, &p, &[9_999_999]).unwrap().0.is_empty());
        assert!(ix.search_labels(q, &SearchParams::new(0), &short).is_err());
        assert!(ix.search_labels(&q[..3], &p, &short).is_err());
    }
}

/// The labels and distances of every row whose label `keep` accepts, nearest first, and a
/// radius halfway between the `n`-th and `n + 1`-th of them (no distance near the edge).
fn exact_ball(
    q: &[f32],
    n: usize,
    label_of_row: &dyn Fn(usize) -> u64,
    keep: &dyn Fn(u64) -> bool,
) -> (Vec<u64>, f32) {
    let all = ranked(q, label_of_row, keep);
    let radius = (all[n - 1].0.sqrt() + all[n].0.sqrt()) / 2.0;
    (all.into_iter().take(n).map(|x| x.1).collect(), radius)
}

#[test]
fn range_search_over_shards_is_the_exact_ball_and_flags_the_cap() {
    use panns_io::ShardFilter;
    let caller: Vec<u64> = (0..N as u64).map(|i| 90_000 + 7 * (N as u64 - i)).collect();
    for labels in [None, Some(&caller)] {
        let dir = tempfile::tempdir().unwrap();
        let ix = open_built(dir.path(), labels);
        let label_of_row = |r: usize| labels.map_or(r as u64, |l| l[r]);
        let odd = |l: u64| l % 2 == 1;
        let list: Vec<u64> = (0..N).map(label_of_row).filter(|&l| odd(l)).collect();
        for q in gaussian_vector(6 * DIM, false, 23).chunks(DIM) {
            // 375 = half a shard: every shard scans exactly, so the answer is exact.
            let filters: [(ShardFilter<'_>, &dyn Fn(u64) -> bool); 3] = [
                (ShardFilter::All, &|_| true),
                (ShardFilter::Labels(&list), &odd),
                (ShardFilter::Predicate(&odd), &odd),
            ];
            for (f, keep) in filters {
                let (want, radius) = exact_ball(q, 25, &label_of_row, keep);
                let (got, capped) = ix.range_search(q, radius, 1000, 375, f).unwrap();
                assert!(!capped, "{f:?}");
                assert_eq!(got.iter().map(|h| h.0).collect::<Vec<_>>(), want, "{f:?}");
                assert!(got.windows(2).all(|w| w[0].1 <= w[1].1));
                assert!(got.iter().all(|h| h.1 <= radius));
                // The cap keeps the nearest and says so; exactly at the count it does not.
                let (cut, capped) = ix.range_search(q, radius, 10, 375, f).unwrap();
                assert!(capped, "{f:?}");
                assert_eq!(cut, got[..10]);
                let (all, capped) = ix.range_search(q, radius, 25, 375, f).unwrap();
                assert!(!capped, "{f:?}");
                assert_eq!(all, got);
                // At a small budget: a subset of the ball, never outside it.
                let (few, _) = ix.range_search(q, radius, 1000, 30, f).unwrap();
                assert!(few.iter().all(|h| want.contains(&h.0)), "{f:?}");
            }
            // Zero radius: nothing (no query is a stored row); an empty list: nothing.
            let (none, capped) = ix.range_search(q, 0.0, 5, 0, ShardFilter::All).unwrap();
            assert!(none.is_empty() && !capped);
            let (none, _) = ix
                .range_search(q, 100.0, 5, 375, ShardFilter::Labels(&[]))
                .unwrap();
            assert!(none.is_empty());
            let (none, _) = ix
                .range_search(q, 100.0, 5, 375, ShardFilter::Labels(&[u64::MAX - 3]))
                .unwrap();
            assert!(none.is_empty());
        }
        // A stored row finds itself at distance 0.
        let row = &data()[17 * DIM..18 * DIM];
        let (hits, _) = ix.range_search(row, 0.0, 5, 375, ShardFilter::All).unwrap();
        assert_eq!(hits.first().map(|h| h.0), Some(label_of_row(17)));
        let q = &data()[..DIM];
        for bad in [-1.0, f32::NAN, f32::NEG_INFINITY] {
            let e = ix.range_search(q, bad, 5, 0, ShardFilter::All).unwrap_err();
            assert!(e.to_string().contains("radius"), "{e}");
        }
        let e = ix.range_search(q, 1.0, 0, 0, ShardFilter::All).unwrap_err();
        assert!(e.to_string().contains("max_results"), "{e}");
        let e = ix
            .range_search(&q[..3], 1.0, 5, 0, ShardFilter::All)
            .unwrap_err();
        assert!(e.to_string().contains("dimension"), "{e}");
        let mut nan = q.to_vec();
        nan[2] = f32::NAN;
        assert!(ix.range_search(&nan, 1.0, 5, 0, ShardFilter::All).is_err());
    }
}

#[test]
fn filtered_batches_equal_one_filtered_search_per_query() {
    use panns_io::ShardFilter;
    let dir = tempfile::tempdir().unwrap();
    let ix = ShardedIndex::open(build(dir.path(), None), &OpenOptions::default()).unwrap();
    let queries = gaussian_vector(12 * DIM, false, 31);
    let p = SearchParams::new(7).with_budget(40);
    let listed: Vec<u64> = (0..N as u64).step_by(37).chain([1 << 50]).collect();
    let third = |l: u64| l.is_multiple_of(3);
    for f in [
        ShardFilter::All,
        ShardFilter::Labels(&listed),
        ShardFilter::Labels(&[]),
        ShardFilter::Predicate(&third),
    ] {
        let batch = ix.search_batch_filtered(&queries, &p, f).unwrap();
        assert_eq!(batch.len(), 12);
        for (row, q) in batch.iter().zip(queries.chunks(DIM)) {
            assert_eq!(row, &ix.search_with_filter(q, &p, f).unwrap().0, "{f:?}");
        }
    }
    // The allow-list at an exact budget gives the exact filtered top-k.
    let full = SearchParams::new(7).with_budget(375);
    let batch = ix
        .search_batch_filtered(&queries, &full, ShardFilter::Labels(&listed))
        .unwrap();
    for (row, q) in batch.iter().zip(queries.chunks(DIM)) {
        let want = exact_allowed(q, 7, &|r| r as u64, &|l| listed.contains(&l));
        assert_eq!(row.iter().map(|h| h.0).collect::<Vec<_>>(), want);
    }
    assert!(
        ix.search_batch_filtered(&[], &p, ShardFilter::Predicate(&third))
            .unwrap()
            .is_empty()
    );
    let f = ShardFilter::Labels(&listed);
    assert!(
        ix.search_batch_filtered(&queries[..DIM + 3], &p, f)
            .is_err()
    );
    assert!(
        ix.search_batch_filtered(&queries, &SearchParams::new(0), f)
            .is_err()
    );
    let mut bad = queries.clone();
    bad[5 * DIM + 1] = f32::INFINITY;
    let e = ix.search_batch_filtered(&bad, &p, f).unwrap_err();
    assert!(
        matches!(e, Error::Core(panns_core::Error::NonFinite { item: 5, .. })),
        "names the row: {e}"
    );
}
