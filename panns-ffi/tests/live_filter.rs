//! Filtered search of a live index through the C ABI (`PannsLabelFilter`,
//! `panns_live_search_filtered`, `panns_live_search_batch_filtered`): allow- and
//! deny-lists, predicates (and their abort), a NULL filter, unknown and removed labels,
//! checked against an exact filtered scan computed here and against
//! `LiveIndex::search_filtered` called directly.

use panns::PannsStatus::{self, *};
use panns::builder::*;
use panns::live::*;
use panns::live_filter::*;
use panns::twins::*;
use panns::*;
use std::collections::{BTreeMap, HashSet};
use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicUsize, Ordering};

const DIM: usize = 8;
/// Items in the base (labels `10 * i + 1`).
const N: usize = 2000;
const K: usize = 10;
/// Well below N / 2: the base is walked, not scanned.
const SMALL_BUDGET: usize = 120;
/// Above N: the base search is an exact scan of the allowed items.
const EXACT_BUDGET: usize = 4 * N;

fn last_error() -> String {
    // SAFETY: never NULL; copied at once.
    unsafe { CStr::from_ptr(panns_last_error_message()) }
        .to_string_lossy()
        .into_owned()
}

/// Asserts a status and, for an error, a message containing `needle`.
#[track_caller]
fn expect(status: PannsStatus, want: PannsStatus, needle: &str) {
    let msg = last_error();
    assert_eq!(status, want, "message: {msg}");
    if want != PANNS_OK {
        assert!(
            msg.to_lowercase().contains(&needle.to_lowercase()),
            "message {msg:?} lacks {needle:?}"
        );
    }
}

/// The deterministic vector of (label, version).
fn vec_of(label: u64, version: u64) -> Vec<f32> {
    panns_core::rng::gaussian_vector(DIM, false, label.wrapping_mul(7919) ^ version ^ 0x51f)
}

type Model = BTreeMap<u64, Vec<f32>>;

/// Adds `labels` (version `v`) through the C ABI and mirrors them into `model`.
fn add(live: *mut PannsLive, labels: &[u64], v: u64, model: &mut Model) {
    let rows: Vec<f32> = labels.iter().flat_map(|&l| vec_of(l, v)).collect();
    // SAFETY: `rows` holds labels.len() * DIM floats.
    let st = unsafe { panns_live_add(live, labels.as_ptr(), rows.as_ptr(), labels.len(), DIM) };
    expect(st, PANNS_OK, "");
    for &l in labels {
        model.insert(l, vec_of(l, v));
    }
}

/// Removes `labels` through the C ABI and from `model`.
fn remove(live: *mut PannsLive, labels: &[u64], model: &mut Model) {
    // SAFETY: `labels` holds labels.len() labels.
    let st = unsafe { panns_live_remove(live, labels.as_ptr(), labels.len(), null_mut()) };
    expect(st, PANNS_OK, "");
    for l in labels {
        model.remove(l);
    }
}

/// An in-memory live index with a compacted base of N items (with a graph when `graph`),
/// then churn: 100 base items removed, 50 replaced, 150 new ones in the delta. Returns
/// the handle, the model and the removed labels.
fn fixture(graph: bool) -> (*mut PannsLive, Model, Vec<u64>) {
    let mut live = null_mut();
    let o = PannsBuildOptions {
        n_trees: 8,
        threads: 1,
        ..panns_build_options_default()
    };
    // SAFETY: NULL path (in memory), valid options and out-pointer.
    let st = unsafe {
        panns_live_create(
            null(),
            DIM as u32,
            0,
            &o,
            if graph { 12 } else { 0 },
            &mut live,
        )
    };
    expect(st, PANNS_OK, "");
    let mut model = Model::new();
    let labels: Vec<u64> = (0..N as u64).map(|i| 10 * i + 1).collect();
    add(live, &labels, 0, &mut model);
    // SAFETY: a live handle.
    expect(unsafe { panns_live_compact(live) }, PANNS_OK, "");
    // SAFETY: a live handle.
    assert_eq!(unsafe { panns_live_base_len(live) }, N);
    let gone: Vec<u64> = labels.iter().step_by(20).copied().collect();
    remove(live, &gone, &mut model);
    // Replace 50 base items (none of the removed ones: they stay removed).
    let replaced: Vec<u64> = labels[1001..1061]
        .iter()
        .copied()
        .filter(|l| !gone.contains(l))
        .take(50)
        .collect();
    add(live, &replaced, 1, &mut model);
    let fresh: Vec<u64> = (0..150).map(|i| 10 * i + 5).collect();
    add(live, &fresh, 0, &mut model);
    // SAFETY: a live handle.
    assert!(unsafe { panns_live_delta_len(live) } >= 150);
    (live, model, gone)
}

/// The exact k nearest labels of `q` among the items of `model` that `allow` accepts
/// (squared Euclidean; ties by label).
fn exact(model: &Model, q: &[f32], k: usize, allow: impl Fn(u64) -> bool) -> Vec<u64> {
    let mut all: Vec<(f32, u64)> = model
        .iter()
        .filter(|&(&l, _)| allow(l))
        .map(|(&l, v)| (v.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum(), l))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.into_iter().take(k).map(|(_, l)| l).collect()
}

fn query(i: u64) -> Vec<f32> {
    vec_of(77_777 + i, 9)
}

fn allow_list(labels: &[u64]) -> PannsLabelFilter {
    PannsLabelFilter {
        kind: PannsLabelFilterKind::PANNS_LABEL_FILTER_ALLOW_LABELS as u32,
        labels: if labels.is_empty() {
            null()
        } else {
            labels.as_ptr()
        },
        n_labels: labels.len(),
        predicate: None,
        user_data: null_mut(),
    }
}

fn deny_list(labels: &[u64]) -> PannsLabelFilter {
    PannsLabelFilter {
        kind: PannsLabelFilterKind::PANNS_LABEL_FILTER_DENY_LABELS as u32,
        ..allow_list(labels)
    }
}

/// The zero value: every label.
fn no_filter() -> PannsLabelFilter {
    PannsLabelFilter {
        kind: 0,
        labels: null(),
        n_labels: 0,
        predicate: None,
        user_data: null_mut(),
    }
}

/// A predicate over a `Pred`: allows the labels of its set, counts its calls and, once
/// `abort_after` calls have been made, returns `abort_with`.
struct Pred {
    set: HashSet<u64>,
    calls: AtomicUsize,
    abort_after: usize,
    abort_with: c_int,
}

unsafe extern "C" fn pred_cb(label: u64, user_data: *mut c_void) -> c_int {
    // SAFETY: the tests pass a `Pred` that outlives the search.
    let p = unsafe { &*(user_data as *const Pred) };
    let n = p.calls.fetch_add(1, Ordering::SeqCst);
    if n >= p.abort_after {
        return p.abort_with;
    }
    c_int::from(p.set.contains(&label))
}

fn pred(set: HashSet<u64>) -> Pred {
    Pred {
        set,
        calls: AtomicUsize::new(0),
        abort_after: usize::MAX,
        abort_with: 0,
    }
}

fn predicate(p: &Pred) -> PannsLabelFilter {
    PannsLabelFilter {
        kind: PannsLabelFilterKind::PANNS_LABEL_FILTER_PREDICATE as u32,
        predicate: Some(pred_cb),
        user_data: p as *const Pred as *mut c_void,
        ..no_filter()
    }
}

/// `panns_live_search_filtered` (filter NULL when `filter` is None): (label, distance)s.
fn search_f(
    live: *const PannsLive,
    q: &[f32],
    k: usize,
    budget: usize,
    filter: Option<&PannsLabelFilter>,
) -> Result<Vec<(u64, f32)>, PannsStatus> {
    let (mut ls, mut ds, mut n) = (vec![0u64; k], vec![0f32; k], usize::MAX);
    let f = filter.map_or(null(), |f| f as *const PannsLabelFilter);
    // SAFETY: buffers hold k entries; the filter is valid.
    let st = unsafe {
        panns_live_search_filtered(
            live,
            q.as_ptr(),
            q.len(),
            k,
            budget,
            f,
            ls.as_mut_ptr(),
            ds.as_mut_ptr(),
            &mut n,
        )
    };
    if st != PANNS_OK {
        return Err(st);
    }
    assert!(n <= k);
    Ok(ls.into_iter().zip(ds).take(n).collect())
}

#[track_caller]
fn ok_search(
    live: *const PannsLive,
    q: &[f32],
    k: usize,
    budget: usize,
    filter: Option<&PannsLabelFilter>,
) -> Vec<(u64, f32)> {
    search_f(live, q, k, budget, filter).unwrap_or_else(|st| panic!("{st:?}: {}", last_error()))
}

fn plain_search(live: *const PannsLive, q: &[f32], k: usize, budget: usize) -> Vec<(u64, f32)> {
    let (mut ls, mut ds, mut n) = (vec![0u64; k], vec![0f32; k], 0usize);
    // SAFETY: buffers hold k entries.
    let st = unsafe {
        panns_live_search(
            live,
            q.as_ptr(),
            q.len(),
            k,
            budget,
            ls.as_mut_ptr(),
            ds.as_mut_ptr(),
            &mut n,
        )
    };
    expect(st, PANNS_OK, "");
    ls.into_iter().zip(ds).take(n).collect()
}

fn labels_of(hits: &[(u64, f32)]) -> Vec<u64> {
    hits.iter().map(|h| h.0).collect()
}

/// Nearest first, ties by label.
#[track_caller]
fn assert_sorted(hits: &[(u64, f32)]) {
    for w in hits.windows(2) {
        assert!(
            w[0].1 < w[1].1 || (w[0].1 == w[1].1 && w[0].0 < w[1].0),
            "not sorted: {hits:?}"
        );
    }
}

/// The Rust API's answer for the same filter.
fn rust_search(
    live: *const PannsLive,
    q: &[f32],
    k: usize,
    budget: usize,
    allow: &(dyn Fn(u64) -> bool + Sync),
) -> Vec<(u64, f32)> {
    // SAFETY: a live handle, used only for reading here.
    let l = unsafe { &(*live).0 };
    let params = panns_core::SearchParams::new(k).with_budget(budget);
    l.search_filtered(q, &params, allow).unwrap().0
}

#[test]
fn layout_is_frozen() {
    use std::mem::{offset_of, size_of};
    if size_of::<usize>() == 8 {
        assert_eq!(size_of::<PannsLabelFilter>(), 40);
        assert_eq!(offset_of!(PannsLabelFilter, labels), 8);
        assert_eq!(offset_of!(PannsLabelFilter, n_labels), 16);
        assert_eq!(offset_of!(PannsLabelFilter, predicate), 24);
        assert_eq!(offset_of!(PannsLabelFilter, user_data), 32);
    }
    assert_eq!(PannsLabelFilterKind::PANNS_LABEL_FILTER_ALL as u32, 0);
    assert_eq!(
        PannsLabelFilterKind::PANNS_LABEL_FILTER_ALLOW_LABELS as u32,
        1
    );
    assert_eq!(
        PannsLabelFilterKind::PANNS_LABEL_FILTER_DENY_LABELS as u32,
        2
    );
    assert_eq!(PannsLabelFilterKind::PANNS_LABEL_FILTER_PREDICATE as u32, 3);
}

#[test]
fn allow_list_matches_the_exact_filtered_scan_and_the_rust_api() {
    let (live, model, gone) = fixture(false);
    // A third of the labels, some removed ones (must never come back), some never held.
    let mut allowed: Vec<u64> = model
        .keys()
        .copied()
        .filter(|l| (l / 10) % 3 == 0)
        .collect();
    allowed.extend(gone.iter().take(40));
    allowed.extend([3, 7_000_003, u64::MAX]);
    let set: HashSet<u64> = allowed.iter().copied().collect();
    let f = allow_list(&allowed);
    let (mut found, mut total) = (0, 0);
    let mut differs_from_unfiltered = 0;
    for i in 0..40 {
        let q = query(i);
        let truth = exact(&model, &q, K, |l| set.contains(&l));
        // Exact: the budget covers every item.
        let hits = ok_search(live, &q, K, EXACT_BUDGET, Some(&f));
        assert_eq!(labels_of(&hits), truth, "query {i}");
        assert_sorted(&hits);
        for (h, l) in hits.iter().zip(&truth) {
            let want = model[l]
                .iter()
                .zip(&q)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f32>()
                .sqrt();
            assert!(
                (h.1 - want).abs() <= 1e-4 * want.max(1.0),
                "{} vs {want}",
                h.1
            );
        }
        // Approximate: the same answer as the Rust API, only allowed live labels.
        let hits = ok_search(live, &q, K, SMALL_BUDGET, Some(&f));
        assert_eq!(
            hits,
            rust_search(live, &q, K, SMALL_BUDGET, &|l: u64| set.contains(&l))
        );
        assert_eq!(hits.len(), K);
        assert_sorted(&hits);
        for (l, _) in &hits {
            assert!(
                set.contains(l) && model.contains_key(l),
                "label {l} returned"
            );
        }
        found += hits.iter().filter(|h| truth.contains(&h.0)).count();
        total += K;
        if labels_of(&plain_search(live, &q, K, SMALL_BUDGET)) != labels_of(&hits) {
            differs_from_unfiltered += 1;
        }
    }
    let recall = found as f64 / total as f64;
    eprintln!("filtered live recall@{K} at budget {SMALL_BUDGET} (a third allowed): {recall:.3}");
    assert!(recall >= 0.9, "recall {recall}");
    assert!(
        differs_from_unfiltered >= 35,
        "the filter changed only {differs_from_unfiltered} answers"
    );
    // SAFETY: not used afterwards.
    unsafe { panns_live_free(live) };
}

#[test]
fn deny_list_and_predicate() {
    let (live, model, _) = fixture(true);
    let denied: Vec<u64> = model
        .keys()
        .copied()
        .filter(|l| l % 2 == 1 && (l / 10) % 2 == 0)
        .collect();
    let dset: HashSet<u64> = denied.iter().copied().collect();
    let allowed: HashSet<u64> = model
        .keys()
        .copied()
        .filter(|l| !dset.contains(l))
        .collect();
    let fd = deny_list(&denied);
    let p = pred(allowed.clone());
    let fp = predicate(&p);
    for i in 0..30 {
        let q = query(100 + i);
        let truth = exact(&model, &q, K, |l| !dset.contains(&l));
        assert_eq!(
            labels_of(&ok_search(live, &q, K, EXACT_BUDGET, Some(&fd))),
            truth
        );
        assert_eq!(
            labels_of(&ok_search(live, &q, K, EXACT_BUDGET, Some(&fp))),
            truth
        );
        let by_deny = ok_search(live, &q, K, SMALL_BUDGET, Some(&fd));
        let by_pred = ok_search(live, &q, K, SMALL_BUDGET, Some(&fp));
        assert_eq!(
            by_deny,
            rust_search(live, &q, K, SMALL_BUDGET, &|l: u64| !dset.contains(&l))
        );
        // The predicate allows exactly the same live items: the same walk, the same answer.
        assert_eq!(by_pred, by_deny);
        assert_eq!(by_deny.len(), K);
        for (l, _) in &by_deny {
            assert!(
                !dset.contains(l) && model.contains_key(l),
                "label {l} returned"
            );
        }
    }
    let calls = p.calls.load(Ordering::SeqCst);
    assert!(calls >= 30 * K, "the predicate was called {calls} times");
    // SAFETY: not used afterwards.
    unsafe { panns_live_free(live) };
}

#[test]
fn null_and_empty_filters() {
    let (live, model, _) = fixture(false);
    let zero = no_filter();
    let empty_deny = deny_list(&[]);
    let empty_allow = allow_list(&[]);
    let p = pred(HashSet::new());
    let refuse_all = predicate(&p);
    for i in 0..20 {
        let q = query(200 + i);
        let plain = plain_search(live, &q, K, SMALL_BUDGET);
        assert_eq!(plain.len(), K);
        assert_eq!(ok_search(live, &q, K, SMALL_BUDGET, None), plain);
        assert_eq!(ok_search(live, &q, K, SMALL_BUDGET, Some(&zero)), plain);
        assert_eq!(
            ok_search(live, &q, K, SMALL_BUDGET, Some(&empty_deny)),
            plain
        );
        assert_eq!(
            ok_search(live, &q, K, SMALL_BUDGET, Some(&empty_allow)),
            vec![]
        );
        assert_eq!(
            ok_search(live, &q, K, SMALL_BUDGET, Some(&refuse_all)),
            vec![]
        );
    }
    // k above the allowed count: every allowed live item, no more.
    let few: Vec<u64> = model
        .keys()
        .copied()
        .take(3)
        .chain([9, 19_999_999])
        .collect();
    let hits = ok_search(live, &query(5), 50, SMALL_BUDGET, Some(&allow_list(&few)));
    let mut got = labels_of(&hits);
    got.sort_unstable();
    assert_eq!(got, few[..3].to_vec());
    // SAFETY: not used afterwards.
    unsafe { panns_live_free(live) };
}

#[test]
fn unknown_and_removed_labels_match_nothing() {
    let (live, mut model, gone) = fixture(false);
    let q = query(300);
    // Only labels never held, or removed: no result at any budget.
    let unknown: Vec<u64> = vec![0, 2, 4, 6, 10 * N as u64 + 1, u64::MAX];
    for budget in [SMALL_BUDGET, EXACT_BUDGET] {
        assert_eq!(
            ok_search(live, &q, K, budget, Some(&allow_list(&unknown))),
            vec![]
        );
        assert_eq!(
            ok_search(live, &q, K, budget, Some(&allow_list(&gone))),
            vec![]
        );
    }
    // The nearest items, then removed (one from the base, one from the delta): allowed,
    // but never returned.
    let near = labels_of(&ok_search(live, &q, 40, EXACT_BUDGET, None));
    let victims: Vec<u64> = near[..2].to_vec();
    let delta_victim = *model
        .keys()
        .find(|l| *l % 10 == 5 && !near[..2 + K].contains(l))
        .unwrap();
    let mut doomed = victims.clone();
    doomed.push(delta_victim);
    remove(live, &doomed, &mut model);
    let mut allowed = near.clone();
    allowed.push(delta_victim);
    let set: HashSet<u64> = allowed.iter().copied().collect();
    let f = allow_list(&allowed);
    let p = pred(set.clone());
    let fp = predicate(&p);
    for budget in [SMALL_BUDGET, EXACT_BUDGET] {
        for filter in [&f, &fp] {
            let hits = ok_search(live, &q, K, budget, Some(filter));
            assert_eq!(hits.len(), K);
            for d in &doomed {
                assert!(!labels_of(&hits).contains(d), "removed label {d} returned");
            }
        }
    }
    let truth = exact(&model, &q, K, |l| set.contains(&l));
    assert_eq!(
        labels_of(&ok_search(live, &q, K, EXACT_BUDGET, Some(&f))),
        truth
    );
    assert_eq!(truth, near[2..2 + K].to_vec());
    // SAFETY: not used afterwards.
    unsafe { panns_live_free(live) };
}

#[test]
fn a_negative_predicate_aborts_with_callback_failed() {
    let (live, _, _) = fixture(false);
    let q = query(400);
    let mut p = pred(HashSet::new());
    p.abort_after = 5;
    p.abort_with = -7;
    let f = predicate(&p);
    let (mut ls, mut n) = (vec![42u64; K], 99usize);
    // SAFETY: buffers of K entries; `p` outlives the call.
    let st = unsafe {
        panns_live_search_filtered(
            live,
            q.as_ptr(),
            DIM,
            K,
            SMALL_BUDGET,
            &f,
            ls.as_mut_ptr(),
            null_mut(),
            &mut n,
        )
    };
    expect(st, PANNS_CALLBACK_FAILED, "returned -7 for label");
    assert_eq!(
        p.calls.load(Ordering::SeqCst),
        6,
        "called again after the abort"
    );
    assert_eq!((n, ls[0]), (99, 42), "a result was written");
    // The _e twin hands the message to the caller.
    let mut err: *mut c_char = null_mut();
    p.calls.store(0, Ordering::SeqCst);
    // SAFETY: as above; `err` is freed below.
    let st = unsafe {
        panns_live_search_filtered_e(
            live,
            q.as_ptr(),
            DIM,
            K,
            SMALL_BUDGET,
            &f,
            ls.as_mut_ptr(),
            null_mut(),
            &mut n,
            &mut err,
        )
    };
    assert_eq!(st, PANNS_CALLBACK_FAILED);
    // SAFETY: a message from a `_e` function.
    let msg = unsafe { CStr::from_ptr(err) }
        .to_string_lossy()
        .into_owned();
    assert!(msg.contains("search aborted"), "{msg}");
    // SAFETY: not freed before.
    unsafe { panns_error_free(err) };
    // In a batch: several threads, one abort, every row stops.
    let qs: Vec<f32> = (0..64).flat_map(|i| query(500 + i)).collect();
    p.calls.store(0, Ordering::SeqCst);
    p.abort_after = 200;
    let mut out = vec![0u64; 64 * K];
    // SAFETY: buffers of 64 * K entries.
    let st = unsafe {
        panns_live_search_batch_filtered(
            live,
            qs.as_ptr(),
            64,
            DIM,
            K,
            SMALL_BUDGET,
            &f,
            out.as_mut_ptr(),
            null_mut(),
            null_mut(),
        )
    };
    expect(st, PANNS_CALLBACK_FAILED, "search aborted");
    // The search still works afterwards, with the same filter struct.
    p.abort_after = usize::MAX;
    assert_eq!(ok_search(live, &q, K, SMALL_BUDGET, Some(&f)), vec![]);
    // SAFETY: not used afterwards.
    unsafe { panns_live_free(live) };
}

#[test]
fn batch_matches_single_searches_with_counts() {
    let (live, model, _) = fixture(true);
    let allowed: Vec<u64> = model
        .keys()
        .copied()
        .filter(|l| (l / 10) % 4 == 1)
        .collect();
    let set: HashSet<u64> = allowed.iter().copied().collect();
    let p = pred(set.clone());
    let nq = 32;
    let qs: Vec<f32> = (0..nq as u64).flat_map(|i| query(600 + i)).collect();
    for filter in [
        Some(allow_list(&allowed)),
        Some(predicate(&p)),
        Some(deny_list(&[])),
        None,
    ] {
        let f = filter
            .as_ref()
            .map_or(null(), |f| f as *const PannsLabelFilter);
        let mut ls = vec![0u64; nq * K];
        let mut ds = vec![0f32; nq * K];
        let mut counts = vec![usize::MAX; nq];
        // SAFETY: buffers of nq * K entries and nq counts.
        let st = unsafe {
            panns_live_search_batch_filtered(
                live,
                qs.as_ptr(),
                nq,
                DIM,
                K,
                SMALL_BUDGET,
                f,
                ls.as_mut_ptr(),
                ds.as_mut_ptr(),
                counts.as_mut_ptr(),
            )
        };
        expect(st, PANNS_OK, "");
        for r in 0..nq {
            let single = ok_search(
                live,
                &qs[r * DIM..(r + 1) * DIM],
                K,
                SMALL_BUDGET,
                filter.as_ref(),
            );
            assert_eq!(counts[r], single.len());
            let row: Vec<(u64, f32)> = ls[r * K..(r + 1) * K]
                .iter()
                .copied()
                .zip(ds[r * K..(r + 1) * K].iter().copied())
                .collect();
            assert_eq!(&row[..counts[r]], &single[..], "row {r}");
            for &(l, d) in &row[counts[r]..] {
                assert_eq!((l, d), (u64::MAX, f32::INFINITY));
            }
        }
    }
    // Rows left short by the filter are padded, and the counts say so.
    let two: Vec<u64> = model.keys().copied().take(2).collect();
    let f = allow_list(&two);
    let mut ls = vec![0u64; 3 * K];
    let mut counts = vec![0usize; 3];
    // SAFETY: buffers of 3 * K labels and 3 counts.
    let st = unsafe {
        panns_live_search_batch_filtered(
            live,
            qs.as_ptr(),
            3,
            DIM,
            K,
            SMALL_BUDGET,
            &f,
            ls.as_mut_ptr(),
            null_mut(),
            counts.as_mut_ptr(),
        )
    };
    expect(st, PANNS_OK, "");
    assert_eq!(counts, vec![2, 2, 2]);
    for r in 0..3 {
        let mut row = ls[r * K..r * K + 2].to_vec();
        row.sort_unstable();
        assert_eq!(row, two);
        assert!(ls[r * K + 2..(r + 1) * K].iter().all(|&l| l == u64::MAX));
    }
    // n_queries = 0 is a no-op.
    // SAFETY: non-NULL pointers, nothing read or written.
    let st = unsafe {
        panns_live_search_batch_filtered(
            live,
            qs.as_ptr(),
            0,
            DIM,
            K,
            0,
            &f,
            ls.as_mut_ptr(),
            null_mut(),
            null_mut(),
        )
    };
    expect(st, PANNS_OK, "");
    // SAFETY: not used afterwards.
    unsafe { panns_live_free(live) };
}

#[test]
fn bad_filters_and_arguments() {
    let (live, _, _) = fixture(false);
    let q = query(700);
    let mut bad = no_filter();
    bad.kind = 9;
    assert_eq!(
        search_f(live, &q, K, 0, Some(&bad)),
        Err(PANNS_INVALID_ARGUMENT)
    );
    expect(
        PANNS_INVALID_ARGUMENT,
        PANNS_INVALID_ARGUMENT,
        "label filter kind 9 is unknown",
    );
    let mut null_labels = allow_list(&[]);
    null_labels.n_labels = 3;
    assert_eq!(
        search_f(live, &q, K, 0, Some(&null_labels)),
        Err(PANNS_NULL_POINTER)
    );
    expect(PANNS_NULL_POINTER, PANNS_NULL_POINTER, "filter->labels");
    let mut no_pred = no_filter();
    no_pred.kind = PannsLabelFilterKind::PANNS_LABEL_FILTER_PREDICATE as u32;
    assert_eq!(
        search_f(live, &q, K, 0, Some(&no_pred)),
        Err(PANNS_NULL_POINTER)
    );
    expect(PANNS_NULL_POINTER, PANNS_NULL_POINTER, "filter->predicate");
    // The usual argument checks come first and stay the same.
    let f = no_filter();
    assert_eq!(
        search_f(live, &q, 0, 0, Some(&f)),
        Err(PANNS_INVALID_ARGUMENT)
    );
    assert_eq!(
        search_f(live, &q[..DIM - 1], K, 0, Some(&f)),
        Err(PANNS_DIMENSION_MISMATCH)
    );
    assert_eq!(
        search_f(null(), &q, K, 0, Some(&f)),
        Err(PANNS_NULL_POINTER)
    );
    let mut nan = q.clone();
    nan[2] = f32::NAN;
    assert_eq!(search_f(live, &nan, K, 0, Some(&f)), Err(PANNS_NON_FINITE));
    // Batch: the bad row is named, a bad filter is refused even for 0 queries.
    let mut qs: Vec<f32> = (0..4).flat_map(|i| query(800 + i)).collect();
    qs[2 * DIM + 1] = f32::INFINITY;
    let mut out = vec![0u64; 4 * K];
    // SAFETY: buffers of 4 * K labels.
    let st = unsafe {
        panns_live_search_batch_filtered(
            live,
            qs.as_ptr(),
            4,
            DIM,
            K,
            0,
            &f,
            out.as_mut_ptr(),
            null_mut(),
            null_mut(),
        )
    };
    expect(st, PANNS_NON_FINITE, "query row 2");
    // SAFETY: as above.
    let st = unsafe {
        panns_live_search_batch_filtered(
            live,
            qs.as_ptr(),
            0,
            DIM,
            K,
            0,
            &bad,
            out.as_mut_ptr(),
            null_mut(),
            null_mut(),
        )
    };
    expect(st, PANNS_INVALID_ARGUMENT, "label filter kind 9");
    // SAFETY: as above, labels_out NULL.
    let st = unsafe {
        panns_live_search_batch_filtered(
            live,
            qs.as_ptr(),
            1,
            DIM,
            K,
            0,
            &f,
            null_mut(),
            null_mut(),
            null_mut(),
        )
    };
    expect(st, PANNS_NULL_POINTER, "labels_out");
    // SAFETY: not used afterwards.
    unsafe { panns_live_free(live) };
}

#[test]
fn a_short_allow_list_is_scanned_exactly_at_a_small_budget() {
    // 12 held labels (plus a removed one): the list is planned like a bitmap, so a budget
    // of 6 (half the listed items) gives the exact answer over them; a predicate walk of
    // the forest would stop at the first 6 allowed items it meets.
    let (live, model, gone) = fixture(false);
    let mut listed: Vec<u64> = model.keys().copied().step_by(97).take(12).collect();
    assert_eq!(listed.len(), 12);
    listed.push(gone[0]);
    let set: HashSet<u64> = listed.iter().copied().collect();
    let f = allow_list(&listed);
    for i in 0..20 {
        let q = query(i);
        let hits = ok_search(live, &q, 3, 6, Some(&f));
        assert_eq!(
            labels_of(&hits),
            exact(&model, &q, 3, |l| set.contains(&l)),
            "query {i}"
        );
    }
    unsafe { panns_live_free(live) };
}
