//! Live indexes held in memory: changes over a built index, exact agreement with a
//! model of the contents, commit as a no-op, compaction in memory, save/open and
//! to_bytes/from_bytes round trips, and the refusals.

use std::collections::BTreeMap;

use panns_core::rng::gaussian_vector;
use panns_core::{BuildParams, Index, IndexBuilder, Metric, SearchParams};
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

fn vec_of(label: u64, version: u64) -> Vec<f32> {
    gaussian_vector(
        DIM,
        false,
        label.wrapping_mul(1_000_003) ^ version.wrapping_mul(7919) ^ 3,
    )
}

/// An index of items 0..n (version 0) and the model of its contents.
fn built(n: u64) -> (Index, BTreeMap<u64, Vec<f32>>) {
    let mut b = IndexBuilder::new(DIM, Metric::Euclidean).unwrap();
    let mut model = BTreeMap::new();
    for l in 0..n {
        b.add(&vec_of(l, 0)).unwrap();
        model.insert(l, vec_of(l, 0));
    }
    (b.build(&params()).unwrap(), model)
}

/// The exact k nearest of the model as (label, distance), ties by label.
fn exact(model: &BTreeMap<u64, Vec<f32>>, q: &[f32], k: usize) -> Vec<(u64, f32)> {
    let mut all: Vec<(u64, f32)> = model
        .iter()
        .map(|(&l, v)| (l, Metric::Euclidean.distance(q, v)))
        .collect();
    all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

/// Checks contents and exact search (a budget covering everything) against the model.
fn agrees(ix: &LiveIndex, model: &BTreeMap<u64, Vec<f32>>, probes: impl Iterator<Item = u64>) {
    assert_eq!(ix.len(), model.len());
    for l in probes {
        assert_eq!(ix.contains(l), model.contains_key(&l), "label {l}");
        assert_eq!(ix.get(l).as_ref(), model.get(&l), "label {l}");
    }
    let all = SearchParams::new(10).with_budget(1 << 20);
    for s in 0..20 {
        let q = gaussian_vector(DIM, false, 900 + s);
        let got = ix.search(&q, &all).unwrap();
        let want = exact(model, &q, 10);
        assert_eq!(
            got.iter().map(|h| h.0).collect::<Vec<_>>(),
            want.iter().map(|h| h.0).collect::<Vec<_>>()
        );
        for (g, w) in got.iter().zip(&want) {
            assert!((g.1 - w.1).abs() <= 1e-4 * w.1.max(1.0), "{g:?} vs {w:?}");
        }
    }
}

/// Adds 60 new labels, replaces 40 base items, removes 30 (and some unknown labels).
fn churn(ix: &mut LiveIndex, model: &mut BTreeMap<u64, Vec<f32>>) {
    let new: Vec<u64> = (5000..5060).collect();
    let rows: Vec<f32> = new.iter().flat_map(|&l| vec_of(l, 1)).collect();
    ix.add_batch(&new, &rows).unwrap();
    for &l in &new {
        model.insert(l, vec_of(l, 1));
    }
    for l in (0..200).step_by(5) {
        ix.add(l, &vec_of(l, 2)).unwrap();
        model.insert(l, vec_of(l, 2));
    }
    let gone: Vec<u64> = (1..300).step_by(10).chain([5001, 77_777]).collect();
    let removed = ix.remove(&gone).unwrap();
    let expected = gone.iter().filter(|l| model.remove(l).is_some()).count();
    assert_eq!(removed, expected);
}

#[test]
fn changes_over_a_built_index_answer_like_exact_search() {
    let (index, mut model) = built(400);
    let mut ix = LiveIndex::in_memory(index, None).unwrap();
    assert!(ix.is_in_memory() && ix.is_writable());
    assert_eq!((ix.generation(), ix.base_len(), ix.len()), (1, 400, 400));
    agrees(&ix, &model, 0..400);
    churn(&mut ix, &mut model);
    assert!(ix.delta_len() > 0 && ix.tombstones() > 0);
    agrees(&ix, &model, (0..400).chain(5000..5070));
    // Nothing to make durable, nothing to pick up; no files anywhere.
    ix.commit().unwrap();
    assert_eq!(ix.pending(), 0);
    assert!(!ix.refresh().unwrap());
    assert_eq!(ix.path(), std::path::Path::new(""));
    assert!(ix.delta_len() > 0, "commit in memory does not compact");
    // Compaction in memory: one base, the next generation, the same answers.
    ix.compact().unwrap();
    assert_eq!(
        (
            ix.generation(),
            ix.delta_len(),
            ix.tombstones(),
            ix.base_len()
        ),
        (2, 0, 0, model.len())
    );
    agrees(&ix, &model, (0..400).chain(5000..5070));
    // More changes after compaction.
    ix.add(123_456, &vec_of(123_456, 0)).unwrap();
    model.insert(123_456, vec_of(123_456, 0));
    agrees(&ix, &model, [123_456, 0, 5].into_iter());
}

#[test]
fn approximate_search_of_a_changed_index_finds_the_changes() {
    // Budget well below half the items: the base search is not an exact scan, yet
    // replaced and added items are found and removed ones never returned.
    let (index, mut model) = built(2000);
    let mut ix = LiveIndex::in_memory(index, None).unwrap();
    churn(&mut ix, &mut model);
    let p = SearchParams::new(1).with_budget(100);
    for l in (0..200)
        .step_by(5)
        .chain(5000..5060)
        .filter(|l| model.contains_key(l))
    {
        let (hits, stats) = ix.search_with_stats(&model[&l], &p).unwrap();
        assert!(!stats.exact_scan);
        assert_eq!(hits[0], (l, 0.0), "label {l}");
    }
    for l in (1..300).step_by(10) {
        let hits = ix.search(&vec_of(l, 0), &SearchParams::new(5).with_budget(100));
        assert!(
            hits.unwrap().iter().all(|h| h.0 != l),
            "removed {l} returned"
        );
    }
}

#[test]
fn an_empty_index_in_memory_grows_compacts_and_saves() {
    let opts = LiveOptions {
        delta_index_threshold: 64,
        ..LiveOptions::default()
    };
    let mut ix = LiveIndex::empty_in_memory(DIM, Metric::Euclidean, &params(), None, opts).unwrap();
    assert_eq!((ix.len(), ix.generation()), (0, 0));
    let mut model = BTreeMap::new();
    for l in (0..300u64).map(|i| i * 7 + 11) {
        ix.add(l, &vec_of(l, 0)).unwrap();
        model.insert(l, vec_of(l, 0));
    }
    // 300 rows > the threshold of 64: the delta has its own index and still agrees.
    agrees(&ix, &model, 0..50);
    ix.compact().unwrap();
    assert_eq!((ix.generation(), ix.base_len()), (1, 300));
    agrees(&ix, &model, 0..50);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("grown.panns");
    ix.save(&p).unwrap();
    let r = LiveIndex::open(&p, false).unwrap();
    assert_eq!(r.generation(), 1);
    agrees(&r, &model, 0..50);
}

#[test]
fn save_and_to_bytes_keep_labels_and_open_as_live_indexes() {
    let (index, mut model) = built(300);
    let mut ix = LiveIndex::in_memory(index, None).unwrap();
    churn(&mut ix, &mut model);
    // to_bytes of a changed index does not change it.
    let bytes = ix.to_bytes().unwrap();
    assert!(ix.delta_len() > 0);
    let copy = LiveIndex::from_bytes(bytes, LiveOptions::default()).unwrap();
    assert!(copy.is_in_memory());
    assert_eq!((copy.generation(), copy.delta_len()), (2, 0));
    agrees(&copy, &model, (0..300).chain(5000..5060));
    // save compacts in memory, then writes a base file with labels.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("saved.panns");
    ix.save(&p).unwrap();
    assert_eq!(
        (ix.generation(), ix.delta_len(), ix.tombstones()),
        (2, 0, 0)
    );
    panns_io::verify_file(&p).unwrap();
    let mut w = LiveIndex::open(&p, true).unwrap();
    agrees(&w, &model, (0..300).chain(5000..5060));
    // The saved file is a live index like any other: change, commit, reopen.
    w.add(99_999, &vec_of(99_999, 0)).unwrap();
    w.commit().unwrap();
    model.insert(99_999, vec_of(99_999, 0));
    let r = LiveIndex::open(&p, false).unwrap();
    agrees(&r, &model, [99_999].into_iter());
    // Refusals: its own base, a path with a log beside it, and an empty index.
    let err = w.save(&p).unwrap_err().to_string();
    assert!(err.contains("base file of this live index"), "{err}");
    let err = ix.save(&p).unwrap_err().to_string();
    assert!(err.contains("live-index log beside it"), "{err}");
    // A reader on files may save a compacted copy elsewhere and stays as it is.
    let mut r = LiveIndex::open(&p, false).unwrap();
    let q = dir.path().join("copy.panns");
    r.save(&q).unwrap();
    assert_eq!(r.delta_len(), 1);
    agrees(
        &LiveIndex::open(&q, false).unwrap(),
        &model,
        [99_999].into_iter(),
    );
    let mut empty = LiveIndex::empty_in_memory(
        DIM,
        Metric::Euclidean,
        &params(),
        None,
        LiveOptions::default(),
    )
    .unwrap();
    let err = empty
        .save(dir.path().join("e.panns"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("holds no items"), "{err}");
    assert!(empty.to_bytes().is_err());
}

#[test]
fn bad_labels_and_bad_batches_are_refused_and_apply_nothing() {
    let (index, mut model) = built(50);
    let err = LiveIndex::in_memory(index.clone(), Some(&[1, 2, 3])).unwrap_err();
    assert!(err.to_string().contains("3 labels for 50 items"), "{err}");
    let mut dup: Vec<u64> = (100..150).collect();
    dup[7] = 100;
    let err = LiveIndex::in_memory(index.clone(), Some(&dup)).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { .. }) && err.to_string().contains("label 100"),
        "{err}"
    );
    let labels: Vec<u64> = (0..50).map(|i| i * 1000).collect();
    let mut ix = LiveIndex::in_memory(index, Some(&labels)).unwrap();
    model = model.into_iter().map(|(l, v)| (l * 1000, v)).collect();
    agrees(&ix, &model, [0, 1000, 1, 49_000].into_iter());
    let mut rows: Vec<f32> = [7u64, 8, 9].iter().flat_map(|&l| vec_of(l, 0)).collect();
    rows[DIM + 2] = f32::NAN;
    let err = ix.add_batch(&[7, 8, 9], &rows).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadBatch {
                row: 1,
                label: 8,
                ..
            }
        ),
        "{err}"
    );
    let err = ix.add_batch(&[7, 8, 7], &[0.5; 3 * DIM]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadBatch {
                row: 2,
                label: 7,
                ..
            }
        ),
        "{err}"
    );
    let err = ix.add_batch(&[7], &[0.5; DIM + 1]).unwrap_err();
    assert!(err.to_string().contains("nothing of the batch"), "{err}");
    agrees(&ix, &model, [7, 8, 9].into_iter());
    let err = LiveIndex::empty_in_memory(
        0,
        Metric::Euclidean,
        &params(),
        None,
        LiveOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("dimension"), "{err}");
}

#[test]
fn filtered_search_returns_only_allowed_labels_and_agrees_with_the_model() {
    // A delta with its own index (threshold 32) and exact-scanned rows, tombstones in
    // base and delta: a filter by label applies to every part.
    let (index, mut model) = built(500);
    let opts = LiveOptions {
        delta_index_threshold: 32,
        ..LiveOptions::default()
    };
    let mut ix = LiveIndex::in_memory_with(index, None, opts).unwrap();
    churn(&mut ix, &mut model);
    let allow = |l: u64| l.is_multiple_of(3);
    let allowed: BTreeMap<u64, Vec<f32>> = model
        .iter()
        .filter(|(l, _)| allow(**l))
        .map(|(l, v)| (*l, v.clone()))
        .collect();
    let all = SearchParams::new(10).with_budget(1 << 20);
    for s in 0..20 {
        let q = gaussian_vector(DIM, false, 700 + s);
        let (got, _) = ix.search_filtered(&q, &all, &allow).unwrap();
        let want = exact(&allowed, &q, 10);
        assert_eq!(
            got.iter().map(|h| h.0).collect::<Vec<_>>(),
            want.iter().map(|h| h.0).collect::<Vec<_>>()
        );
        // On the approximate path: only allowed labels, and most of the true ones.
        let (got, stats) = ix
            .search_filtered(&q, &SearchParams::new(10).with_budget(60), &allow)
            .unwrap();
        assert!(!stats.exact_scan);
        assert!(got.iter().all(|h| allow(h.0) && model.contains_key(&h.0)));
        assert_eq!(got.len(), 10);
    }
    // A filter allowing nothing returns nothing.
    let (none, _) = ix.search_filtered(&vec_of(1, 0), &all, &|_| false).unwrap();
    assert!(none.is_empty());
}

#[test]
fn a_label_list_filter_is_planned_exact_when_selective_and_ignores_unknown_labels() {
    // Base tombstones, replaced items and a delta (partly indexed): a list of labels is
    // an allow-list over all of it; removed and unknown labels match nothing.
    let (index, mut model) = built(600);
    let opts = LiveOptions {
        delta_index_threshold: 32,
        ..LiveOptions::default()
    };
    let mut ix = LiveIndex::in_memory_with(index, None, opts).unwrap();
    churn(&mut ix, &mut model);
    let removed: Vec<u64> = (0..700).filter(|l| !model.contains_key(l)).collect();
    assert!(!removed.is_empty());
    let check = |labels: &[u64], budget: usize| {
        let listed: BTreeMap<u64, Vec<f32>> = model
            .iter()
            .filter(|(l, _)| labels.contains(l))
            .map(|(l, v)| (*l, v.clone()))
            .collect();
        for s in 0..10 {
            let q = gaussian_vector(DIM, false, 900 + s);
            let p = SearchParams::new(10).with_budget(budget);
            let (got, stats) = ix.search_labels(&q, &p, labels).unwrap();
            let want = exact(&listed, &q, 10);
            assert_eq!(
                got.iter().map(|h| h.0).collect::<Vec<_>>(),
                want.iter().map(|h| h.0).collect::<Vec<_>>(),
                "{} labels listed, budget {budget}",
                labels.len()
            );
            // The same labels through a predicate agree at a full budget.
            let all = SearchParams::new(10).with_budget(1 << 20);
            let (pred, _) = ix
                .search_filtered(&q, &all, &|l| labels.contains(&l))
                .unwrap();
            assert_eq!(pred, got);
            if labels.len() < 100 {
                assert!(stats.exact_scan, "a short list is scanned exactly");
            }
        }
    };
    // A short list (with a removed label, an unknown one and a duplicate): exact scan.
    let mut short: Vec<u64> = (0..600).step_by(23).collect();
    short.extend([removed[0], 1 << 40, 46]);
    check(&short, 20);
    // Half of the labels: the walk, still only listed labels (exact at this budget).
    let half: Vec<u64> = (0..700).filter(|l| l % 2 == 0).collect();
    check(&half, 1 << 20);
    let q = gaussian_vector(DIM, false, 5);
    let p = SearchParams::new(10).with_budget(40);
    let (got, stats) = ix.search_labels(&q, &p, &half).unwrap();
    assert!(!stats.exact_scan && got.len() == 10);
    assert!(got.iter().all(|h| h.0 % 2 == 0 && model.contains_key(&h.0)));
    // Nothing listed, or only labels not held: no results.
    assert!(ix.search_labels(&q, &p, &[]).unwrap().0.is_empty());
    assert!(
        ix.search_labels(&q, &p, &[removed[0], 1 << 50])
            .unwrap()
            .0
            .is_empty()
    );
}

#[test]
fn range_search_returns_every_live_item_within_the_radius() {
    let (index, mut model) = built(400);
    let mut ix = LiveIndex::in_memory(index, None).unwrap();
    churn(&mut ix, &mut model);
    let q = gaussian_vector(DIM, false, 4242);
    let ranked = exact(&model, &q, model.len());
    let radius = ranked[25].1;
    let (got, capped) = ix.range_search(&q, radius, 1000, 1 << 20).unwrap();
    let want: Vec<u64> = ranked
        .iter()
        .filter(|h| h.1 <= radius)
        .map(|h| h.0)
        .collect();
    assert!(!capped && want.len() >= 26);
    assert_eq!(got.iter().map(|h| h.0).collect::<Vec<_>>(), want);
    let (got, capped) = ix.range_search(&q, radius, 10, 1 << 20).unwrap();
    assert!(capped && got.len() == 10);
    assert!(ix.range_search(&q, -1.0, 10, 0).is_err());
    assert!(ix.range_search(&q, 1.0, 0, 0).is_err());
}
