//! Live indexes: labels, batches, the log (torn tails, damage, full disks), the writer
//! lock, readers and refresh, compaction and generations, recall after churn, and a
//! kill -9 harness.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use panns_core::rng::gaussian_vector;
use panns_core::{BuildParams, IndexBuilder, Metric, SearchParams};
use panns_io::live::{lock_path, log_path, testing};
use panns_io::{Error, LiveIndex, LiveOptions};

const DIM: usize = 8;

fn params() -> BuildParams {
    BuildParams {
        n_trees: 8,
        leaf_size: 16,
        seed: 5,
        threads: 1,
        ..Default::default()
    }
}

/// The deterministic vector of (label, version).
fn vec_of(label: u64, version: u64) -> Vec<f32> {
    gaussian_vector(
        DIM,
        false,
        label.wrapping_mul(1_000_003) ^ version.wrapping_mul(7919) ^ 1,
    )
}

fn manual() -> LiveOptions {
    LiveOptions {
        auto_compact: false,
        ..LiveOptions::default()
    }
}

fn create(dir: &Path, name: &str) -> (PathBuf, LiveIndex) {
    let p = dir.join(name);
    let w = LiveIndex::create_with(&p, DIM, Metric::Euclidean, &params(), None, manual()).unwrap();
    (p, w)
}

fn add_range(w: &mut LiveIndex, labels: std::ops::Range<u64>, version: u64) {
    let ls: Vec<u64> = labels.collect();
    let rows: Vec<f32> = ls.iter().flat_map(|&l| vec_of(l, version)).collect();
    w.add_batch(&ls, &rows).unwrap();
}

fn reader(p: &Path) -> LiveIndex {
    LiveIndex::open_with(p, false, manual()).unwrap()
}

/// Every label the index holds with its vector, via exact search of everything.
fn contents(ix: &LiveIndex, candidates: impl IntoIterator<Item = u64>) -> HashMap<u64, Vec<f32>> {
    candidates
        .into_iter()
        .filter_map(|l| ix.get(l).map(|v| (l, v)))
        .collect()
}

#[test]
fn labels_search_get_contains_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (p, mut w) = create(dir.path(), "a.panns");
    assert_eq!((w.len(), w.generation(), w.delta_len()), (0, 0, 0));
    add_range(&mut w, 1000..1100, 0);
    assert_eq!(w.len(), 100);
    let q = vec_of(1042, 0);
    let hits = w.search(&q, &SearchParams::new(3)).unwrap();
    assert_eq!(hits[0], (1042, 0.0));
    assert!(w.contains(1042) && !w.contains(42));
    assert_eq!(w.get(1042).unwrap(), vec_of(1042, 0));
    // Uncommitted changes are invisible to other processes' readers.
    let r = reader(&p);
    assert_eq!(r.len(), 0);
    w.commit().unwrap();
    let mut r2 = reader(&p);
    assert_eq!(r2.len(), 100);
    assert_eq!(r2.search(&q, &SearchParams::new(3)).unwrap(), hits);
    // Replace and remove, then compact into generation 1 with labels in the file.
    w.add(1042, &vec_of(1042, 1)).unwrap();
    assert_eq!(w.remove(&[1000, 1001, 5, 1000]).unwrap(), 2);
    w.commit().unwrap();
    assert!(r2.refresh().unwrap());
    assert_eq!(r2.len(), 98);
    assert_eq!(r2.get(1042).unwrap(), vec_of(1042, 1));
    assert!(!r2.contains(1000));
    w.compact().unwrap();
    assert_eq!(
        (w.generation(), w.delta_len(), w.tombstones(), w.len()),
        (1, 0, 0, 98)
    );
    let r3 = reader(&p);
    assert_eq!((r3.generation(), r3.len()), (1, 98));
    assert_eq!(r3.get(1042).unwrap(), vec_of(1042, 1));
    let q = vec_of(1042, 1);
    assert_eq!(
        r3.search(&q, &SearchParams::new(1)).unwrap()[0],
        (1042, 0.0)
    );
    // A plain reader of the base sees ordinary ids; the file verifies.
    panns_io::verify_file(&p).unwrap();
}

#[test]
fn a_bad_batch_applies_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (p, mut w) = create(dir.path(), "b.panns");
    add_range(&mut w, 0..10, 0);
    w.commit().unwrap();
    let mut rows: Vec<f32> = (10..15).flat_map(|l| vec_of(l, 0)).collect();
    rows[3 * DIM + 2] = f32::NAN;
    let e = w.add_batch(&[10, 11, 12, 13, 14], &rows).unwrap_err();
    assert!(
        matches!(
            e,
            Error::BadBatch {
                row: 3,
                label: 13,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("nothing of the batch was applied"),
        "{e}"
    );
    // Duplicate label inside one batch.
    let rows: Vec<f32> = (20..23).flat_map(|l| vec_of(l, 0)).collect();
    let e = w.add_batch(&[20, 21, 20], &rows).unwrap_err();
    assert!(
        e.to_string()
            .contains("batch row 2 (label 20): the label is also on row 0"),
        "{e}"
    );
    // Wrong dimension (ragged batch).
    let e = w.add_batch(&[30, 31], &rows).unwrap_err();
    assert!(e.to_string().contains("2 labels need 16 floats"), "{e}");
    let e = w.add(30, &[1.0; 3]).unwrap_err();
    assert!(
        e.to_string().contains("need 8 floats (8 each), got 3"),
        "{e}"
    );
    assert_eq!((w.len(), w.pending()), (10, 0));
    for l in [10, 11, 12, 13, 14, 20, 21, 22, 30] {
        assert!(!w.contains(l), "{l}");
    }
    w.commit().unwrap();
    drop(w);
    let r = reader(&p);
    assert_eq!(r.len(), 10);
    assert_eq!(r.commits(), 1);
}

#[test]
fn removing_unknown_labels_is_ignored_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (p, mut w) = create(dir.path(), "c.panns");
    add_range(&mut w, 0..20, 0);
    w.commit().unwrap();
    w.compact().unwrap();
    add_range(&mut w, 100..110, 0);
    assert_eq!(w.remove(&[999, 3, 3, 105, 7777]).unwrap(), 2);
    assert_eq!(w.remove(&[]).unwrap(), 0);
    assert_eq!((w.len(), w.tombstones(), w.delta_len()), (28, 1, 9));
    w.commit().unwrap();
    let r = reader(&p);
    assert_eq!((r.len(), r.tombstones(), r.delta_len()), (28, 1, 9));
}

#[test]
fn one_writer_at_a_time_readers_any_number() {
    let dir = tempfile::tempdir().unwrap();
    let (p, mut w) = create(dir.path(), "d.panns");
    add_range(&mut w, 0..5, 0);
    w.commit().unwrap();
    let e = LiveIndex::open(&p, true).unwrap_err();
    assert!(matches!(e, Error::Locked { .. }), "{e}");
    assert!(
        e.to_string().contains(&lock_path(&p).display().to_string()),
        "{e}"
    );
    let mut r = LiveIndex::open(&p, false).unwrap();
    assert_eq!(r.len(), 5);
    let e = r.add(9, &vec_of(9, 0)).unwrap_err();
    assert!(matches!(e, Error::ReadOnly { .. }), "{e}");
    assert!(r.remove(&[1]).is_err() && r.commit().is_err() && r.compact().is_err());
    drop(w);
    let w2 = LiveIndex::open(&p, true).unwrap();
    assert_eq!(w2.len(), 5);
    // Creating over an existing index is refused.
    drop(w2);
    let e = LiveIndex::create(&p, DIM, Metric::Euclidean, &params()).unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
}

#[test]
fn a_torn_tail_is_ignored_and_cut_by_the_next_writer() {
    let dir = tempfile::tempdir().unwrap();
    let (p, mut w) = create(dir.path(), "e.panns");
    add_range(&mut w, 0..10, 0);
    w.commit().unwrap();
    add_range(&mut w, 10..20, 0);
    w.commit().unwrap();
    drop(w);
    let lp = log_path(&p);
    let good = std::fs::read(&lp).unwrap();
    // A third commit whose bytes are cut anywhere: a torn tail.
    let mut w = LiveIndex::open_with(&p, true, manual()).unwrap();
    add_range(&mut w, 20..23, 0);
    w.remove(&[0]).unwrap();
    w.commit().unwrap();
    drop(w);
    let full = std::fs::read(&lp).unwrap();
    for cut in (good.len()..full.len()).step_by(7) {
        std::fs::write(&lp, &full[..cut]).unwrap();
        let r = reader(&p);
        assert_eq!((r.len(), r.commits()), (20, 2), "cut at {cut}");
    }
    // Zero bytes after the last commit (allocated, never written): torn too.
    let mut z = good.clone();
    z.extend_from_slice(&[0u8; 300]);
    std::fs::write(&lp, &z).unwrap();
    assert_eq!(reader(&p).len(), 20);
    // The next writer cuts the tail and appends after the last commit.
    let cut = good.len() + 30;
    std::fs::write(&lp, &full[..cut]).unwrap();
    let mut w = LiveIndex::open_with(&p, true, manual()).unwrap();
    assert_eq!(std::fs::metadata(&lp).unwrap().len(), good.len() as u64);
    add_range(&mut w, 50..52, 0);
    w.commit().unwrap();
    drop(w);
    let r = reader(&p);
    assert_eq!((r.len(), r.commits()), (22, 3));
}

#[test]
fn a_damaged_record_in_the_middle_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (p, mut w) = create(dir.path(), "f.panns");
    add_range(&mut w, 0..3, 0);
    w.commit().unwrap();
    add_range(&mut w, 3..6, 0);
    w.commit().unwrap();
    drop(w);
    let lp = log_path(&p);
    let mut b = std::fs::read(&lp).unwrap();
    // Record 1 (the second add) starts at 128 + one add record (16 + 8 + 4 * DIM).
    let rec = 16 + 8 + 4 * DIM;
    b[128 + rec + 20] ^= 0x10;
    std::fs::write(&lp, &b).unwrap();
    let e = LiveIndex::open(&p, false).unwrap_err();
    let t = e.to_string();
    assert!(matches!(e, Error::CorruptLog { record: 1, .. }), "{t}");
    assert!(
        t.contains(&format!(
            "record 1 (counting from 0) at byte offset {}",
            128 + rec
        )) && t.contains("checksum mismatch")
            && t.contains(&lp.display().to_string()),
        "{t}"
    );
    assert!(LiveIndex::open(&p, true).is_err());
}

#[test]
fn a_full_disk_during_commit_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (p, mut w) = create(dir.path(), "g.panns");
    add_range(&mut w, 0..10, 0);
    w.commit().unwrap();
    let lp = log_path(&p);
    let before = std::fs::metadata(&lp).unwrap().len();
    add_range(&mut w, 10..20, 1);
    w.remove(&[0]).unwrap();
    for limit in [0u64, 1, 17, 100] {
        testing::fail_log_writes_after(Some(limit));
        let e = w.commit().unwrap_err();
        testing::fail_log_writes_after(None);
        assert!(e.to_string().contains("simulated full disk"), "{e}");
        // The log is cut back to the last commit; a reader sees exactly it.
        assert_eq!(
            std::fs::metadata(&lp).unwrap().len(),
            before,
            "limit {limit}"
        );
        let r = reader(&p);
        assert_eq!((r.len(), r.commits()), (10, 1));
        assert!(r.contains(0) && !r.contains(15));
    }
    // The changes stayed pending: committing again succeeds.
    assert_eq!(w.pending(), 11);
    w.commit().unwrap();
    let r = reader(&p);
    assert_eq!((r.len(), r.commits()), (19, 2));
    assert_eq!(r.get(15).unwrap(), vec_of(15, 1));
}

#[test]
fn readers_refresh_across_compactions_and_old_generations_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let (p, mut w) = create(dir.path(), "h.panns");
    add_range(&mut w, 0..200, 0);
    w.commit().unwrap();
    w.compact().unwrap();
    let mut r = reader(&p);
    let old = reader(&p);
    assert_eq!(r.generation(), 1);
    add_range(&mut w, 200..260, 0);
    w.remove(&(0..50).collect::<Vec<_>>()).unwrap();
    w.commit().unwrap();
    assert!(r.refresh().unwrap());
    assert!(!r.refresh().unwrap());
    assert_eq!((r.len(), r.delta_len(), r.tombstones()), (210, 60, 50));
    let q = vec_of(3, 0);
    let before = r
        .search(&q, &SearchParams::new(10).with_budget(1000))
        .unwrap();
    assert!(before.iter().all(|&(l, _)| l >= 50));
    w.compact().unwrap();
    assert_eq!(w.generation(), 2);
    // The old reader still searches its generation (it holds the old inode).
    assert_eq!(old.generation(), 1);
    assert_eq!(old.len(), 200);
    assert_eq!(old.search(&q, &SearchParams::new(1)).unwrap()[0], (3, 0.0));
    assert!(r.refresh().unwrap());
    assert_eq!(
        (r.generation(), r.len(), r.delta_len(), r.tombstones()),
        (2, 210, 0, 0)
    );
    assert_eq!(
        r.search(&q, &SearchParams::new(10).with_budget(1000))
            .unwrap(),
        before
    );
}

#[test]
fn a_crash_between_the_base_rename_and_the_log_reset_is_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let (p, mut w) = create(dir.path(), "i.panns");
    add_range(&mut w, 0..100, 0);
    w.commit().unwrap();
    w.compact().unwrap();
    add_range(&mut w, 100..150, 0);
    w.remove(&[1, 2, 3]).unwrap();
    w.add(4, &vec_of(4, 9)).unwrap();
    w.commit().unwrap();
    let lp = log_path(&p);
    let old_log = std::fs::read(&lp).unwrap();
    let want = contents(&w, 0..200);
    w.compact().unwrap();
    drop(w);
    // Put back the generation-1 log beside the generation-2 base.
    std::fs::write(&lp, &old_log).unwrap();
    let r = reader(&p);
    assert_eq!((r.generation(), r.delta_len(), r.tombstones()), (2, 0, 0));
    assert_eq!(contents(&r, 0..200), want);
    let mut w = LiveIndex::open_with(&p, true, manual()).unwrap();
    assert_eq!(contents(&w, 0..200), want);
    add_range(&mut w, 300..301, 0);
    w.commit().unwrap();
    drop(w);
    assert_eq!(reader(&p).len(), want.len() + 1);
    // A log newer than its base (the base restored from an old copy) is an error.
    let lp2 = dir.path().join("j.panns");
    let (_, mut w) = create(dir.path(), "j.panns");
    add_range(&mut w, 0..10, 0);
    w.commit().unwrap();
    w.compact().unwrap();
    let g1 = std::fs::read(&lp2).unwrap();
    add_range(&mut w, 10..20, 0);
    w.commit().unwrap();
    w.compact().unwrap();
    drop(w);
    std::fs::write(&lp2, &g1).unwrap();
    let e = LiveIndex::open(&lp2, false).unwrap_err();
    assert!(
        e.to_string()
            .contains("the log applies to base generation 2, but"),
        "{e}"
    );
}

#[test]
fn from_index_keeps_labels_and_the_graph() {
    let dir = tempfile::tempdir().unwrap();
    let n = 300;
    let mut b = IndexBuilder::new(DIM, Metric::Angular).unwrap();
    let rows: Vec<f32> = (0..n as u64).flat_map(|l| vec_of(l, 0)).collect();
    b.add_batch(&rows).unwrap();
    let mut index = b.build(&params()).unwrap();
    index
        .build_graph(&panns_core::GraphParams {
            degree: 8,
            threads: 1,
            ..Default::default()
        })
        .unwrap();
    let labels: Vec<u64> = (0..n as u64).map(|i| 5000 + 3 * i).collect();
    let p = dir.path().join("k.panns");
    let e = LiveIndex::from_index(&p, &index, Some(&[1, 1, 2])).unwrap_err();
    assert!(
        e.to_string().contains("label 1 is held by items 0 and 1"),
        "{e}"
    );
    let mut w = LiveIndex::from_index(&p, &index, Some(&labels)).unwrap();
    assert_eq!((w.generation(), w.len()), (1, n));
    let q = vec_of(7, 0);
    assert_eq!(w.search(&q, &SearchParams::new(1)).unwrap()[0].0, 5021);
    w.remove(&[5000]).unwrap();
    w.compact().unwrap();
    assert_eq!(w.base().unwrap().graph_degree(), 8);
    assert_eq!(w.search(&q, &SearchParams::new(1)).unwrap()[0].0, 5021);
    assert!(!w.contains(5000) && w.contains(5003));
}

#[test]
fn a_large_delta_gets_its_own_index_and_answers_like_exact_search() {
    let dir = tempfile::tempdir().unwrap();
    let (p, mut w) = create(dir.path(), "l.panns");
    w.set_options(LiveOptions {
        delta_index_threshold: 64,
        ..manual()
    });
    add_range(&mut w, 0..500, 0);
    w.remove(&(0..500).step_by(3).collect::<Vec<_>>()).unwrap();
    w.commit().unwrap();
    let r = LiveIndex::open_with(
        &p,
        false,
        LiveOptions {
            delta_index_threshold: 64,
            ..manual()
        },
    )
    .unwrap();
    for s in 0..20u64 {
        let q = gaussian_vector(DIM, false, 900 + s);
        // A budget covering everything makes every part exact.
        let got = r
            .search(&q, &SearchParams::new(5).with_budget(10_000))
            .unwrap();
        let mut exact: Vec<(u64, f32)> = (0..500u64)
            .filter(|l| l % 3 != 0)
            .map(|l| {
                let v = vec_of(l, 0);
                let d: f32 = v.iter().zip(&q).map(|(a, b)| (a - b) * (a - b)).sum();
                (l, d.sqrt())
            })
            .collect();
        exact.sort_by(|a, b| a.1.total_cmp(&b.1));
        let got_l: Vec<u64> = got.iter().map(|h| h.0).collect();
        let want_l: Vec<u64> = exact[..5].iter().map(|h| h.0).collect();
        assert_eq!(got_l, want_l, "query {s}");
    }
}

#[test]
fn automatic_compaction_on_thresholds() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.panns");
    let opts = LiveOptions {
        delta_index_threshold: 100,
        ..LiveOptions::default()
    };
    let mut w = LiveIndex::create_with(&p, DIM, Metric::Euclidean, &params(), None, opts).unwrap();
    add_range(&mut w, 0..99, 0);
    w.commit().unwrap();
    assert_eq!(w.generation(), 0);
    add_range(&mut w, 99..100, 0);
    w.commit().unwrap();
    assert_eq!((w.generation(), w.delta_len()), (1, 0));
    // 10% of the base in the delta does not compact; more does.
    add_range(&mut w, 100..110, 0);
    w.commit().unwrap();
    assert_eq!(w.generation(), 1);
    add_range(&mut w, 110..111, 0);
    w.commit().unwrap();
    assert_eq!((w.generation(), w.len()), (2, 111));
    // 20% removed compacts.
    w.remove(&(0..21).collect::<Vec<_>>()).unwrap();
    w.commit().unwrap();
    assert_eq!(w.generation(), 2);
    w.remove(&[21, 22]).unwrap();
    w.commit().unwrap();
    assert_eq!((w.generation(), w.len(), w.tombstones()), (3, 88, 0));
}

// ---------------------------------------------------------------------------------
// Recall after churn.

/// `n` clustered vectors of `dim` (40 Gaussian clusters), deterministic in `seed`.
fn clustered(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let centers = gaussian_vector(40 * dim, false, 77);
    let noise = gaussian_vector(n * dim, false, seed);
    let mut rng = panns_core::rng::Rng::new(seed);
    let mut out = Vec::with_capacity(n * dim);
    for i in 0..n {
        let c = rng.below(40);
        for j in 0..dim {
            out.push(centers[c * dim + j] * 3.0 + noise[i * dim + j]);
        }
    }
    out
}

fn recall(got: &[Vec<u64>], truth: &[Vec<u64>]) -> f64 {
    let hit: usize = got
        .iter()
        .zip(truth)
        .map(|(g, t)| g.iter().filter(|l| t.contains(l)).count())
        .sum();
    hit as f64 / truth.iter().map(Vec::len).sum::<usize>() as f64
}

#[test]
fn recall_after_replacing_half_the_items_matches_a_fresh_build() {
    let (n, dim, k, budget) = (6000usize, 24usize, 10usize, 150usize);
    let dir = tempfile::tempdir().unwrap();
    let bp = BuildParams {
        n_trees: 10,
        leaf_size: 24,
        seed: 11,
        threads: 0,
        ..Default::default()
    };
    let data = clustered(n, dim, 1);
    let mut b = IndexBuilder::new(dim, Metric::Euclidean).unwrap();
    b.add_batch(&data).unwrap();
    let index = b.build(&bp).unwrap();
    let p = dir.path().join("churn.panns");
    let mut w = LiveIndex::from_index(&p, &index, None).unwrap();
    drop(index);
    // Replace 50% in five rounds of 10%: remove old labels, add new ones.
    let fresh = clustered(n / 2, dim, 2);
    let mut vectors: HashMap<u64, Vec<f32>> = (0..n as u64)
        .map(|l| (l, data[l as usize * dim..(l as usize + 1) * dim].to_vec()))
        .collect();
    let mut generations = vec![w.generation()];
    for round in 0..5u64 {
        let per = n / 10;
        let gone: Vec<u64> = (0..per as u64).map(|i| i * 10 + round * 2).collect();
        assert_eq!(w.remove(&gone).unwrap(), per);
        let new: Vec<u64> = (0..per as u64)
            .map(|i| 100_000 + round * per as u64 + i)
            .collect();
        let rows = &fresh[round as usize * per * dim..(round as usize + 1) * per * dim];
        w.add_batch(&new, rows).unwrap();
        w.commit().unwrap();
        for l in &gone {
            vectors.remove(l);
        }
        for (i, l) in new.iter().enumerate() {
            vectors.insert(*l, rows[i * dim..(i + 1) * dim].to_vec());
        }
        generations.push(w.generation());
    }
    w.compact().unwrap();
    assert!(
        w.generation() >= 3,
        "automatic compactions: {generations:?}"
    );
    assert_eq!(w.len(), n);
    // A fresh build of the same items, same parameters.
    let mut labels: Vec<u64> = vectors.keys().copied().collect();
    labels.sort_unstable();
    let mut b = IndexBuilder::new(dim, Metric::Euclidean).unwrap();
    for l in &labels {
        b.add(&vectors[l]).unwrap();
    }
    let rebuilt = b.build(&bp).unwrap();
    let queries = clustered(300, dim, 3);
    let params = SearchParams::new(k).with_budget(budget);
    let (mut live, mut base, mut truth) = (Vec::new(), Vec::new(), Vec::new());
    for q in queries.chunks_exact(dim) {
        let (hits, stats) = w.search_with_stats(q, &params).unwrap();
        assert!(
            !stats.exact_scan,
            "the live search must take the approximate path"
        );
        live.push(hits.iter().map(|h| h.0).collect());
        let (hits, stats) = rebuilt.search_with_stats(q, &params).unwrap();
        assert!(!stats.exact_scan);
        base.push(hits.iter().map(|h| labels[h.id as usize]).collect());
        truth.push(
            rebuilt
                .linear_search(q, k)
                .unwrap()
                .iter()
                .map(|h| labels[h.id as usize])
                .collect::<Vec<u64>>(),
        );
    }
    let (r_live, r_fresh) = (recall(&live, &truth), recall(&base, &truth));
    eprintln!(
        "recall@{k} at budget {budget}: live after churn {r_live:.4}, fresh build {r_fresh:.4}"
    );
    assert!(
        r_fresh > 0.5 && r_fresh < 0.999,
        "budget should be informative: {r_fresh}"
    );
    assert!(
        r_live >= r_fresh - 0.01,
        "live {r_live:.4} vs fresh {r_fresh:.4}"
    );
}

// ---------------------------------------------------------------------------------
// kill -9 harness: a child process (this test binary, re-run with PANNS_LIVE_CHILD set)
// adds, removes, commits and compacts, printing "ack N" after commit N returns; the
// parent kills it with SIGKILL at a random moment and checks that every acknowledged
// commit survived and that the files open, verify and accept a new writer.

const KILL_LABELS: u64 = 300;

/// The changes of step `s`: (adds, removes), deterministic in (seed, s).
fn step_ops(seed: u64, s: u64) -> (Vec<u64>, Vec<u64>) {
    let mut rng = panns_core::rng::Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(s));
    let mut adds = Vec::new();
    for _ in 0..1 + rng.below(20) {
        let l = rng.below(KILL_LABELS as usize) as u64;
        if !adds.contains(&l) {
            adds.push(l);
        }
    }
    let removes = (0..rng.below(6))
        .map(|_| rng.below(KILL_LABELS as usize) as u64)
        .collect();
    (adds, removes)
}

/// The expected contents after `n` commits.
fn simulate(seed: u64, n: u64) -> HashMap<u64, Vec<f32>> {
    let mut m = HashMap::new();
    for s in 1..=n {
        let (adds, removes) = step_ops(seed, s);
        for l in adds {
            m.insert(l, vec_of(l, s));
        }
        for l in removes {
            m.remove(&l);
        }
    }
    m
}

fn child_options() -> LiveOptions {
    LiveOptions {
        auto_compact: true,
        delta_index_threshold: 32,
        compact_delta_fraction: 0.3,
        compact_removed_fraction: 0.2,
        verify: false,
    }
}

#[test]
fn kill9_child() {
    let (Ok(path), Ok(seed)) = (
        std::env::var("PANNS_LIVE_CHILD"),
        std::env::var("PANNS_LIVE_SEED"),
    ) else {
        return; // only runs as the child of the harness below
    };
    let seed: u64 = seed.parse().unwrap();
    let mut w = LiveIndex::open_with(&path, true, child_options()).unwrap();
    for s in 1..100_000u64 {
        let (adds, removes) = step_ops(seed, s);
        let rows: Vec<f32> = adds.iter().flat_map(|&l| vec_of(l, s)).collect();
        w.add_batch(&adds, &rows).unwrap();
        w.remove(&removes).unwrap();
        w.commit().unwrap();
        println!("ack {s}");
        if s % 9 == 0 {
            w.compact().unwrap();
        }
    }
}

#[cfg(unix)]
#[test]
fn kill9_harness_every_acknowledged_commit_survives() {
    use std::io::Read;
    let runs: u64 = std::env::var("PANNS_KILL9_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let exe = std::env::current_exe().unwrap();
    let started = std::time::Instant::now();
    let mut acked_total = 0;
    for run in 0..runs {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k9.panns");
        drop(
            LiveIndex::create_with(&p, DIM, Metric::Euclidean, &params(), None, child_options())
                .unwrap(),
        );
        let seed = 1000 + run;
        let mut child = std::process::Command::new(&exe)
            .args(["kill9_child", "--exact", "--nocapture", "--test-threads=1"])
            .env("PANNS_LIVE_CHILD", &p)
            .env("PANNS_LIVE_SEED", seed.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut rng = panns_core::rng::Rng::new(run * 31 + 7);
        let delay = 20 + rng.below(400) as u64;
        std::thread::sleep(std::time::Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let acked = out
            .lines()
            .filter_map(|l| l.strip_prefix("ack "))
            .filter_map(|n| n.trim().parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        acked_total += acked;
        // The state is commit `acked` or the next one (durable, killed before its ack).
        let r = LiveIndex::open(&p, false)
            .unwrap_or_else(|e| panic!("run {run} (killed after {delay} ms, ack {acked}): {e}"));
        let got = contents(&r, 0..KILL_LABELS);
        let (a, b) = (simulate(seed, acked), simulate(seed, acked + 1));
        assert!(
            got == a || got == b,
            "run {run}: after ack {acked} the index holds {} items, expected {} or {}",
            got.len(),
            a.len(),
            b.len()
        );
        assert_eq!(r.len(), got.len(), "run {run}: labels outside the range");
        if r.generation() > 0 {
            panns_io::verify_file(&p).unwrap();
        }
        // A new writer takes over (cutting any torn tail) and commits.
        let mut w = LiveIndex::open_with(&p, true, child_options()).unwrap();
        w.add(KILL_LABELS + 1, &vec_of(1, 1)).unwrap();
        w.commit().unwrap();
        drop(w);
        assert!(
            LiveIndex::open(&p, false)
                .unwrap()
                .contains(KILL_LABELS + 1)
        );
    }
    eprintln!(
        "kill -9 harness: {runs} runs, {acked_total} acknowledged commits checked in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        acked_total > runs,
        "the children should get some commits done"
    );
}
