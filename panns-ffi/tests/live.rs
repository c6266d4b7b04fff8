//! The live-index C ABI (`panns_live_*`) called from Rust: add / search / remove /
//! commit / reader refresh / compact round trips checked against an exact scan kept in
//! the test, the writer lock and read-only handles, and every bad input giving its
//! status and a message naming the problem, with nothing applied.

use panns::PannsStatus::{self, *};
use panns::builder::*;
use panns::index::*;
use panns::live::*;
use panns::twins::*;
use panns::*;
use std::collections::BTreeMap;
use std::ffi::{CStr, CString, c_char};
use std::path::Path;
use std::ptr::{null, null_mut};

const DIM: usize = 8;

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
    panns_core::rng::gaussian_vector(DIM, false, label.wrapping_mul(7919) ^ version ^ 0xabc)
}

fn cpath(p: &Path) -> CString {
    CString::new(p.to_str().unwrap()).unwrap()
}

fn opts() -> PannsBuildOptions {
    PannsBuildOptions {
        n_trees: 8,
        threads: 1,
        ..panns_build_options_default()
    }
}

fn create(p: &Path, metric: u32) -> *mut PannsLive {
    let mut live = null_mut();
    let o = opts();
    // SAFETY: valid path, options and out-pointer.
    let st = unsafe { panns_live_create(cpath(p).as_ptr(), DIM as u32, metric, &o, 0, &mut live) };
    expect(st, PANNS_OK, "");
    assert!(!live.is_null());
    live
}

fn open(p: &Path, writable: u32) -> *mut PannsLive {
    let mut live = null_mut();
    // SAFETY: valid path and out-pointer.
    let st = unsafe { panns_live_open(cpath(p).as_ptr(), writable, &mut live) };
    expect(st, PANNS_OK, "");
    live
}

/// Adds `labels` (version `v`) through the C ABI and mirrors them into `model`.
fn add(
    live: *mut PannsLive,
    labels: &[u64],
    v: u64,
    model: &mut BTreeMap<u64, Vec<f32>>,
) -> PannsStatus {
    let rows: Vec<f32> = labels.iter().flat_map(|&l| vec_of(l, v)).collect();
    // SAFETY: `rows` holds labels.len() * DIM floats.
    let st = unsafe { panns_live_add(live, labels.as_ptr(), rows.as_ptr(), labels.len(), DIM) };
    if st == PANNS_OK {
        for &l in labels {
            model.insert(l, vec_of(l, v));
        }
    }
    st
}

fn search(live: *const PannsLive, q: &[f32], k: usize, budget: usize) -> Vec<(u64, f32)> {
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

/// The exact k nearest labels of `q` in `model` (squared Euclidean; ties by label).
fn exact(model: &BTreeMap<u64, Vec<f32>>, q: &[f32], k: usize) -> Vec<u64> {
    let mut all: Vec<(f32, u64)> = model
        .iter()
        .map(|(&l, v)| (v.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum(), l))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.into_iter().take(k).map(|(_, l)| l).collect()
}

/// Every label of `model` and no other is held (and holds its vector), via contains/get.
fn assert_holds(live: *const PannsLive, model: &BTreeMap<u64, Vec<f32>>, others: &[u64]) {
    // SAFETY: a live handle.
    unsafe {
        assert_eq!(panns_live_len(live), model.len());
        for (&l, v) in model {
            assert_eq!(panns_live_contains(live, l), 1, "label {l}");
            let mut out = vec![0f32; DIM];
            expect(panns_live_get(live, l, out.as_mut_ptr(), DIM), PANNS_OK, "");
            assert_eq!(&out, v, "label {l}");
        }
        for &l in others {
            assert_eq!(panns_live_contains(live, l), 0, "label {l}");
        }
    }
}

#[test]
fn add_search_remove_commit_refresh_compact() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("live.panns");
    let w = create(&p, PannsMetric::PANNS_EUCLIDEAN as u32);
    let mut model = BTreeMap::new();
    let labels: Vec<u64> = (0..400).map(|i| 1_000_000 + 3 * i).collect();
    expect(add(w, &labels, 0, &mut model), PANNS_OK, "");
    // SAFETY: live handles throughout.
    unsafe {
        assert_eq!(panns_live_pending(w), 400);
        assert_eq!(panns_live_is_writable(w), 1);
        assert_eq!((panns_live_dim(w), panns_live_metric(w)), (DIM as u32, 0));
        assert_eq!(panns_live_generation(w), 0);
        assert_eq!(panns_live_delta_len(w), 400);
    }
    // Each item is its own nearest neighbour, under its label; the delta is exact.
    for &l in labels.iter().step_by(37) {
        let hits = search(w, &vec_of(l, 0), 5, 0);
        assert_eq!(hits[0], (l, 0.0));
        let got: Vec<u64> = hits.iter().map(|h| h.0).collect();
        assert_eq!(got, exact(&model, &vec_of(l, 0), 5));
    }
    // A reader opened before the commit sees nothing; after commit + refresh, all.
    let r = open(&p, 0);
    // SAFETY: live handles.
    unsafe {
        assert_eq!(panns_live_len(r), 0);
        assert_eq!(panns_live_is_writable(r), 0);
        expect(panns_live_commit(w), PANNS_OK, "");
        assert_eq!(panns_live_pending(w), 0);
        let mut changed = -1;
        expect(panns_live_refresh(r, &mut changed), PANNS_OK, "");
        assert_eq!(changed, 1);
        expect(panns_live_refresh(r, &mut changed), PANNS_OK, "");
        assert_eq!(changed, 0);
        assert_holds(r, &model, &[0, 1_000_001]);
        // The writer is always current.
        expect(panns_live_refresh(w, &mut changed), PANNS_OK, "");
        assert_eq!(changed, 0);
    }
    // Compact: generation 1, the delta folded into the base.
    // SAFETY: live handles.
    unsafe {
        expect(panns_live_compact(w), PANNS_OK, "");
        assert_eq!(panns_live_generation(w), 1);
        assert_eq!((panns_live_base_len(w), panns_live_delta_len(w)), (400, 0));
    }
    // Replace one label, remove some (one twice, one never held), add new ones.
    expect(add(w, &[labels[5]], 1, &mut model), PANNS_OK, "");
    let gone = [labels[0], labels[1], labels[0], 7];
    let mut removed = 0usize;
    // SAFETY: live handle; `gone` holds 4 labels.
    unsafe {
        expect(
            panns_live_remove(w, gone.as_ptr(), gone.len(), &mut removed),
            PANNS_OK,
            "",
        );
    }
    assert_eq!(removed, 2);
    model.remove(&labels[0]);
    model.remove(&labels[1]);
    let fresh: Vec<u64> = (0..20).map(|i| 5 + 3 * i).collect();
    expect(add(w, &fresh, 0, &mut model), PANNS_OK, "");
    // SAFETY: live handles.
    unsafe {
        assert_eq!(panns_live_tombstones(w), 3); // two removed, one replaced
        assert_eq!(panns_live_delta_len(w), 21);
        assert_holds(w, &model, &[labels[0], labels[1], 7]);
        // The reader still sees generation 1 as it was until it refreshes.
        let mut changed = 0;
        expect(panns_live_refresh(r, &mut changed), PANNS_OK, "");
        assert_eq!(changed, 1, "the compaction is a change");
        assert_eq!(panns_live_generation(r), 1);
        assert_eq!(panns_live_len(r), 400);
        assert_eq!(panns_live_contains(r, labels[0]), 1);
        expect(panns_live_commit(w), PANNS_OK, "");
        expect(panns_live_refresh(r, &mut changed), PANNS_OK, "");
        assert_eq!(changed, 1);
        assert_holds(r, &model, &[labels[0], labels[1], 7]);
    }
    // A second reader opened now agrees with the first on every query.
    let r2 = open(&p, 0);
    for &l in model.keys().step_by(29) {
        let q = vec_of(l, 9);
        assert_eq!(search(r, &q, 10, 0), search(r2, &q, 10, 0));
    }
    // SAFETY: handles not used afterwards.
    unsafe {
        panns_live_free(r2);
        panns_live_free(r);
        panns_live_free(w);
    }
}

#[test]
fn recall_after_churn_against_exact_scan() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("recall.panns");
    let w = create(&p, 0);
    let mut model = BTreeMap::new();
    let labels: Vec<u64> = (0..2000).map(|i| 10 * i + 1).collect();
    expect(add(w, &labels, 0, &mut model), PANNS_OK, "");
    // SAFETY: live handle.
    unsafe { expect(panns_live_compact(w), PANNS_OK, "") };
    // Churn: remove 150 base items, replace 100, add 150 new ones (all in the delta).
    let gone: Vec<u64> = labels[..150].to_vec();
    // SAFETY: live handle.
    unsafe {
        expect(
            panns_live_remove(w, gone.as_ptr(), gone.len(), null_mut()),
            PANNS_OK,
            "",
        );
    }
    for l in &gone {
        model.remove(l);
    }
    expect(add(w, &labels[500..600], 1, &mut model), PANNS_OK, "");
    let fresh: Vec<u64> = (0..150).map(|i| 10 * i + 5).collect();
    expect(add(w, &fresh, 0, &mut model), PANNS_OK, "");
    let (k, budget, nq) = (10, 200, 60);
    let mut found = 0;
    for i in 0..nq {
        let q = vec_of(99_999 + i, 3);
        let (mut ls, mut n) = (vec![0u64; k], 0usize);
        let mut stats = PannsSearchStats::default();
        // SAFETY: buffers of k entries.
        unsafe {
            expect(
                panns_live_search_with_stats(
                    w,
                    q.as_ptr(),
                    DIM,
                    k,
                    budget,
                    ls.as_mut_ptr(),
                    null_mut(),
                    &mut n,
                    &mut stats,
                ),
                PANNS_OK,
                "",
            );
        }
        assert_eq!(stats.exact_scan, 0, "budget {budget} of 2000 must not scan");
        assert_eq!(n, k);
        for l in &ls {
            assert!(
                model.contains_key(l),
                "removed or unknown label {l} returned"
            );
        }
        let truth = exact(&model, &q, k);
        found += ls.iter().filter(|l| truth.contains(l)).count();
    }
    let recall = found as f64 / (k * nq as usize) as f64;
    eprintln!("live recall@{k} at budget {budget} after churn: {recall:.3}");
    assert!(recall >= 0.85, "recall {recall}");
    // SAFETY: not used afterwards.
    unsafe { panns_live_free(w) };
}

#[test]
fn search_batch_matches_single_searches_and_pads() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("batch.panns");
    let w = create(&p, 0);
    let mut model = BTreeMap::new();
    let labels: Vec<u64> = (0..300).map(|i| i * i).collect();
    expect(add(w, &labels, 0, &mut model), PANNS_OK, "");
    // SAFETY: live handle.
    unsafe { expect(panns_live_compact(w), PANNS_OK, "") };
    expect(add(w, &[7, 8, 9], 0, &mut model), PANNS_OK, "");
    let nq = 37;
    let k = 6;
    let qs: Vec<f32> = (0..nq).flat_map(|i| vec_of(i, 5)).collect();
    let (mut ls, mut ds) = (vec![0u64; nq as usize * k], vec![0f32; nq as usize * k]);
    // SAFETY: buffers of nq * k entries.
    unsafe {
        expect(
            panns_live_search_batch(
                w,
                qs.as_ptr(),
                nq as usize,
                DIM,
                k,
                0,
                ls.as_mut_ptr(),
                ds.as_mut_ptr(),
            ),
            PANNS_OK,
            "",
        );
    }
    for i in 0..nq as usize {
        let one = search(w, &qs[i * DIM..(i + 1) * DIM], k, 0);
        let row: Vec<(u64, f32)> = ls[i * k..(i + 1) * k]
            .iter()
            .copied()
            .zip(ds[i * k..(i + 1) * k].iter().copied())
            .collect();
        assert_eq!(row, one, "query {i}");
    }
    // Fewer live items than k: padded rows.
    let q = dir.path().join("small.panns");
    let s = create(&q, 0);
    expect(add(s, &[42, 43], 0, &mut BTreeMap::new()), PANNS_OK, "");
    let (mut ls, mut ds) = (vec![0u64; 2 * 4], vec![0f32; 2 * 4]);
    // SAFETY: buffers of 2 * 4 entries; `qs` holds at least 2 rows.
    unsafe {
        expect(
            panns_live_search_batch(
                s,
                qs.as_ptr(),
                2,
                DIM,
                4,
                0,
                ls.as_mut_ptr(),
                ds.as_mut_ptr(),
            ),
            PANNS_OK,
            "",
        );
        for row in 0..2 {
            assert_eq!(&ls[row * 4 + 2..row * 4 + 4], &[u64::MAX, u64::MAX]);
            assert!(ds[row * 4 + 2..row * 4 + 4].iter().all(|d| d.is_infinite()));
            let mut got = ls[row * 4..row * 4 + 2].to_vec();
            got.sort();
            assert_eq!(got, [42, 43]);
        }
        // NaN in row 1: the message names the row, the status is specific.
        let mut bad = qs[..2 * DIM].to_vec();
        bad[DIM + 3] = f32::NAN;
        expect(
            panns_live_search_batch(s, bad.as_ptr(), 2, DIM, 4, 0, ls.as_mut_ptr(), null_mut()),
            PANNS_NON_FINITE,
            "query row 1",
        );
        panns_live_free(s);
        panns_live_free(w);
    }
}

#[test]
fn one_writer_and_read_only_readers() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("lock.panns");
    let w = create(&p, 0);
    let mut second = std::ptr::dangling_mut::<PannsLive>();
    // SAFETY: valid arguments; handles freed at the end.
    unsafe {
        let st = panns_live_open(cpath(&p).as_ptr(), 1, &mut second);
        expect(st, PANNS_LOCKED, "another writer");
        assert!(second.is_null());
        assert_eq!(
            CStr::from_ptr(panns_status_string(PANNS_LOCKED as u32))
                .to_str()
                .unwrap(),
            "live index locked by another writer"
        );
        // The _e twin carries the same message, independent of the thread.
        let mut err: *mut c_char = null_mut();
        let st = panns_live_open_e(cpath(&p).as_ptr(), 1, &mut second, &mut err);
        assert_eq!(st, PANNS_LOCKED);
        let msg = CStr::from_ptr(err).to_str().unwrap().to_string();
        assert!(msg.contains("lock"), "{msg}");
        panns_error_free(err);
        // A reader may not change anything.
        let r = open(&p, 0);
        let mut m = BTreeMap::new();
        expect(add(r, &[1], 0, &mut m), PANNS_READ_ONLY, "read-only");
        expect(
            panns_live_remove(r, [1u64].as_ptr(), 1, null_mut()),
            PANNS_READ_ONLY,
            "read-only",
        );
        expect(panns_live_commit(r), PANNS_READ_ONLY, "read-only");
        expect(panns_live_compact(r), PANNS_READ_ONLY, "read-only");
        // Once the writer is freed, the lock is free again.
        panns_live_free(w);
        let w2 = open(&p, 1);
        assert_eq!(panns_live_is_writable(w2), 1);
        panns_live_free(w2);
        panns_live_free(r);
    }
}

#[test]
fn bad_batches_apply_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.panns");
    let w = create(&p, PannsMetric::PANNS_ANGULAR as u32);
    let mut model = BTreeMap::new();
    expect(add(w, &[1, 2, 3], 0, &mut model), PANNS_OK, "");
    let labels = [10u64, 11, 12, 13];
    let good: Vec<f32> = labels.iter().flat_map(|&l| vec_of(l, 0)).collect();
    let check_nothing_applied = || {
        // SAFETY: live handle.
        unsafe {
            assert_eq!(panns_live_len(w), 3);
            assert_eq!(panns_live_pending(w), 3);
            for l in labels {
                assert_eq!(panns_live_contains(w, l), 0);
            }
        }
    };
    // SAFETY: every buffer holds what its length says.
    unsafe {
        let mut rows = good.clone();
        rows[2 * DIM + 1] = f32::NAN;
        expect(
            panns_live_add(w, labels.as_ptr(), rows.as_ptr(), 4, DIM),
            PANNS_NON_FINITE,
            "batch row 2 (label 12)",
        );
        assert!(last_error().contains("nothing of the batch was applied"));
        check_nothing_applied();
        rows = good.clone();
        rows[3 * DIM] = f32::INFINITY;
        expect(
            panns_live_add(w, labels.as_ptr(), rows.as_ptr(), 4, DIM),
            PANNS_NON_FINITE,
            "row 3",
        );
        check_nothing_applied();
        rows = good.clone();
        rows[DIM..2 * DIM].fill(0.0);
        expect(
            panns_live_add(w, labels.as_ptr(), rows.as_ptr(), 4, DIM),
            PANNS_ZERO_VECTOR,
            "batch row 1 (label 11)",
        );
        check_nothing_applied();
        rows = good.clone();
        rows[5] = 1e30;
        expect(
            panns_live_add(w, labels.as_ptr(), rows.as_ptr(), 4, DIM),
            PANNS_INVALID_ARGUMENT,
            "magnitude",
        );
        check_nothing_applied();
        let dup = [10u64, 11, 10, 13];
        expect(
            panns_live_add(w, dup.as_ptr(), good.as_ptr(), 4, DIM),
            PANNS_INVALID_ARGUMENT,
            "also on row 0",
        );
        check_nothing_applied();
        expect(
            panns_live_add(w, labels.as_ptr(), good.as_ptr(), 2, DIM * 2),
            PANNS_DIMENSION_MISMATCH,
            "8",
        );
        check_nothing_applied();
        expect(
            panns_live_add(w, null(), good.as_ptr(), 4, DIM),
            PANNS_NULL_POINTER,
            "labels",
        );
        expect(
            panns_live_add(w, labels.as_ptr(), null(), 4, DIM),
            PANNS_NULL_POINTER,
            "vectors",
        );
        expect(
            panns_live_add(null_mut(), labels.as_ptr(), good.as_ptr(), 4, DIM),
            PANNS_NULL_POINTER,
            "live",
        );
        expect(
            panns_live_add(w, labels.as_ptr(), good.as_ptr(), usize::MAX, DIM),
            PANNS_INVALID_ARGUMENT,
            "too large",
        );
        check_nothing_applied();
        // n = 0 is a no-op.
        expect(
            panns_live_add(w, labels.as_ptr(), good.as_ptr(), 0, DIM),
            PANNS_OK,
            "",
        );
        check_nothing_applied();
        // A good batch afterwards is applied whole.
        expect(
            panns_live_add(w, labels.as_ptr(), good.as_ptr(), 4, DIM),
            PANNS_OK,
            "",
        );
        assert_eq!(panns_live_len(w), 7);
        panns_live_free(w);
    }
}

#[test]
fn bad_queries_handles_and_paths() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("q.panns");
    let w = create(&p, PannsMetric::PANNS_ANGULAR as u32);
    let mut model = BTreeMap::new();
    expect(add(w, &[1, 2, 3], 0, &mut model), PANNS_OK, "");
    let q = vec_of(1, 0);
    let (mut ls, mut ds, mut n) = ([0u64; 4], [0f32; 4], 0usize);
    // SAFETY: buffers as declared; NULLs and wrong sizes are the point.
    unsafe {
        let (lp, dp, np) = (ls.as_mut_ptr(), ds.as_mut_ptr(), &raw mut n);
        let s =
            |live, q: &[f32], dim, k| panns_live_search(live, q.as_ptr(), dim, k, 0, lp, dp, np);
        expect(s(w, &q, DIM, 0), PANNS_INVALID_ARGUMENT, "k");
        expect(s(w, &q, DIM - 1, 2), PANNS_DIMENSION_MISMATCH, "8");
        expect(s(null(), &q, DIM, 2), PANNS_NULL_POINTER, "live");
        let mut nan = q.clone();
        nan[0] = f32::NAN;
        expect(s(w, &nan, DIM, 2), PANNS_NON_FINITE, "query: component 0");
        let zero = vec![0f32; DIM];
        expect(s(w, &zero, DIM, 2), PANNS_ZERO_VECTOR, "query");
        expect(
            panns_live_search(w, null(), 0, 2, 0, ls.as_mut_ptr(), null_mut(), &mut n),
            PANNS_DIMENSION_MISMATCH,
            "empty",
        );
        expect(
            panns_live_search(w, q.as_ptr(), DIM, 2, 0, null_mut(), null_mut(), &mut n),
            PANNS_NULL_POINTER,
            "labels_out",
        );
        expect(
            panns_live_search(
                w,
                q.as_ptr(),
                DIM,
                2,
                0,
                ls.as_mut_ptr(),
                null_mut(),
                null_mut(),
            ),
            PANNS_NULL_POINTER,
            "n_found",
        );
        // A huge k: at most the live items are written.
        expect(s(w, &q, DIM, usize::MAX), PANNS_OK, "");
        assert_eq!(n, 3);
        // get: a missing label, small and large buffers.
        let mut out = vec![0f32; DIM + 1];
        expect(
            panns_live_get(w, 99, out.as_mut_ptr(), DIM),
            PANNS_OUT_OF_RANGE,
            "label 99 is not held",
        );
        expect(
            panns_live_get(w, 1, out.as_mut_ptr(), DIM - 1),
            PANNS_BUFFER_TOO_SMALL,
            "dimension is 8",
        );
        expect(
            panns_live_get(w, 1, out.as_mut_ptr(), DIM + 1),
            PANNS_DIMENSION_MISMATCH,
            "",
        );
        // Unit length under the angular metric.
        expect(panns_live_get(w, 1, out.as_mut_ptr(), DIM), PANNS_OK, "");
        let norm: f32 = out[..DIM].iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        // Accessors on NULL.
        assert_eq!(panns_live_len(null()), 0);
        assert_eq!(panns_live_metric(null()), u32::MAX);
        assert_eq!(panns_live_contains(null(), 1), 0);
        panns_live_free(null_mut());
        // Opening and creating.
        let mut h = std::ptr::dangling_mut::<PannsLive>();
        expect(
            panns_live_open(cpath(&p).as_ptr(), 2, &mut h),
            PANNS_INVALID_ARGUMENT,
            "writable = 2",
        );
        assert!(h.is_null());
        let nowhere = dir.path().join("nowhere.panns");
        expect(
            panns_live_open(cpath(&nowhere).as_ptr(), 0, &mut h),
            PANNS_IO,
            "no live index here",
        );
        expect(
            panns_live_open(null(), 0, &mut h),
            PANNS_NULL_POINTER,
            "path",
        );
        expect(
            panns_live_open(c"".as_ptr(), 0, &mut h),
            PANNS_INVALID_ARGUMENT,
            "empty",
        );
        let o = opts();
        expect(
            panns_live_create(cpath(&p).as_ptr(), DIM as u32, 0, &o, 0, &mut h),
            PANNS_LOCKED,
            "another writer",
        );
        panns_live_free(w);
        expect(
            panns_live_create(cpath(&p).as_ptr(), DIM as u32, 0, &o, 0, &mut h),
            PANNS_INVALID_ARGUMENT,
            "already exists",
        );
        let other = dir.path().join("other.panns");
        expect(
            panns_live_create(cpath(&other).as_ptr(), DIM as u32, 7, null(), 0, &mut h),
            PANNS_INVALID_ARGUMENT,
            "metric code 7",
        );
        expect(
            panns_live_create(cpath(&other).as_ptr(), 0, 0, null(), 0, &mut h),
            PANNS_INVALID_ARGUMENT,
            "dimension",
        );
        let bad = PannsBuildOptions { n_trees: 0, ..o };
        expect(
            panns_live_create(cpath(&other).as_ptr(), 4, 0, &bad, 0, &mut h),
            PANNS_INVALID_ARGUMENT,
            "n_trees",
        );
        assert!(h.is_null());
        assert!(!other.exists());
    }
}

#[test]
fn from_index_with_labels_and_graph() {
    let dir = tempfile::tempdir().unwrap();
    let n = 200;
    let mut b = null_mut();
    let mut idx = null_mut();
    let rows: Vec<f32> = (0..n as u64).flat_map(|i| vec_of(i, 0)).collect();
    let o = opts();
    // SAFETY: valid arguments throughout; handles freed at the end.
    unsafe {
        expect(panns_builder_new(DIM as u32, 0, &mut b), PANNS_OK, "");
        expect(
            panns_builder_add_batch(b, rows.as_ptr(), n, DIM),
            PANNS_OK,
            "",
        );
        expect(panns_builder_build(b, &o, &mut idx), PANNS_OK, "");
        panns_builder_free(b);
        let labels: Vec<u64> = (0..n as u64).map(|i| 5000 + i).collect();
        let p = dir.path().join("from.panns");
        let mut h = null_mut();
        expect(
            panns_live_from_index(idx, cpath(&p).as_ptr(), labels.as_ptr(), n - 1, &mut h),
            PANNS_INVALID_ARGUMENT,
            "n_labels = 199",
        );
        let mut dup = labels.clone();
        dup[7] = dup[3];
        expect(
            panns_live_from_index(idx, cpath(&p).as_ptr(), dup.as_ptr(), n, &mut h),
            PANNS_INVALID_ARGUMENT,
            "distinct",
        );
        assert!(h.is_null() && !p.exists());
        expect(
            panns_live_from_index(idx, cpath(&p).as_ptr(), labels.as_ptr(), n, &mut h),
            PANNS_OK,
            "",
        );
        assert_eq!(panns_live_generation(h), 1);
        assert_eq!(search(h, &vec_of(17, 0), 1, 0)[0], (5017, 0.0));
        assert_eq!(panns_live_contains(h, 17), 0);
        panns_live_free(h);
        // NULL labels: the item ids.
        let p2 = dir.path().join("ids.panns");
        expect(
            panns_live_from_index(idx, cpath(&p2).as_ptr(), null(), 12345, &mut h),
            PANNS_OK,
            "",
        );
        assert_eq!(search(h, &vec_of(17, 0), 1, 0)[0], (17, 0.0));
        panns_live_free(h);
        panns_index_free(idx);
        // A live index with a graph: the compacted base has one.
        let p3 = dir.path().join("graph.panns");
        expect(
            panns_live_create(cpath(&p3).as_ptr(), DIM as u32, 0, &o, 8, &mut h),
            PANNS_OK,
            "",
        );
        let labels: Vec<u64> = (0..n as u64).collect();
        expect(
            panns_live_add(h, labels.as_ptr(), rows.as_ptr(), n, DIM),
            PANNS_OK,
            "",
        );
        expect(panns_live_compact(h), PANNS_OK, "");
        panns_live_free(h);
        let mut plain = null_mut();
        expect(
            panns_index_open(cpath(&p3).as_ptr(), 0, &mut plain),
            PANNS_OK,
            "",
        );
        assert_eq!(panns_index_graph_degree(plain), 8);
        assert_eq!(panns_index_len(plain), n);
        panns_index_free(plain);
    }
}

/// The live-index status codes: their values (15 and 16; 14 is left to
/// `PANNS_CALLBACK_FAILED` of the filtered search, developed in parallel) and descriptions,
/// and that the io errors map to them.
#[test]
fn live_status_codes() {
    assert_eq!(PANNS_LOCKED as u32, 15);
    assert_eq!(PANNS_READ_ONLY as u32, 16);
    let s = |c: u32| {
        // SAFETY: a static NUL-terminated string.
        unsafe { CStr::from_ptr(panns_status_string(c)) }
            .to_str()
            .unwrap()
    };
    assert_eq!(s(15), "live index locked by another writer");
    assert_eq!(s(16), "live index open read-only");
    assert_eq!(s(17), "unknown status code");
    let locked = panns_io::Error::Locked {
        lock: "x.lock".into(),
    };
    assert_eq!(error::FfiError::from(locked).status, PANNS_LOCKED);
    let corrupt_log = panns_io::Error::CorruptLog {
        path: "x.log".into(),
        record: 3,
        offset: 99,
        detail: "bad".into(),
    };
    assert_eq!(error::FfiError::from(corrupt_log).status, PANNS_CORRUPT);
}

/// A NULL path: a live index in memory (over a copy of an index, or empty), changed and
/// compacted without touching any file, saved to a file that opens as a live index with
/// the same contents and answers.
#[test]
fn in_memory_live_indexes_and_save() {
    let dir = tempfile::tempdir().unwrap();
    let n = 300;
    let rows: Vec<f32> = (0..n as u64).flat_map(|i| vec_of(i, 0)).collect();
    let (mut b, mut idx) = (null_mut(), null_mut());
    let o = opts();
    // SAFETY: valid arguments; handles freed at the end.
    unsafe {
        expect(panns_builder_new(DIM as u32, 0, &mut b), PANNS_OK, "");
        expect(
            panns_builder_add_batch(b, rows.as_ptr(), n, DIM),
            PANNS_OK,
            "",
        );
        expect(panns_builder_build(b, &o, &mut idx), PANNS_OK, "");
        panns_builder_free(b);
        let labels: Vec<u64> = (0..n as u64).map(|i| 10 * i + 3).collect();
        let mut m = null_mut();
        expect(
            panns_live_from_index(idx, null(), labels.as_ptr(), n, &mut m),
            PANNS_OK,
            "",
        );
        panns_index_free(idx); // the live index holds its own copy
        assert_eq!(panns_live_is_in_memory(m), 1);
        assert_eq!(panns_live_is_writable(m), 1);
        assert_eq!(panns_live_generation(m), 1);
        let mut model: BTreeMap<u64, Vec<f32>> = labels
            .iter()
            .enumerate()
            .map(|(i, &l)| (l, vec_of(i as u64, 0)))
            .collect();
        assert_holds(m, &model, &[0, 1]);
        // Changes: remove, replace, add; commit is a no-op, refresh changes nothing.
        let gone = [labels[0], labels[1]];
        let mut removed = 0;
        expect(
            panns_live_remove(m, gone.as_ptr(), 2, &mut removed),
            PANNS_OK,
            "",
        );
        assert_eq!(removed, 2);
        model.remove(&labels[0]);
        model.remove(&labels[1]);
        expect(add(m, &[labels[5], 1, 2], 4, &mut model), PANNS_OK, "");
        expect(panns_live_commit(m), PANNS_OK, "");
        let mut changed = 1;
        expect(panns_live_refresh(m, &mut changed), PANNS_OK, "");
        assert_eq!(changed, 0);
        assert_holds(m, &model, &gone);
        for &l in model.keys().step_by(41) {
            let q = vec_of(l, 4);
            let got: Vec<u64> = search(m, &q, 5, 0).iter().map(|h| h.0).collect();
            assert_eq!(got, exact(&model, &q, 5));
        }
        // Compact in memory: generation 2, no file anywhere.
        expect(panns_live_compact(m), PANNS_OK, "");
        assert_eq!(panns_live_generation(m), 2);
        assert_eq!((panns_live_delta_len(m), panns_live_tombstones(m)), (0, 0));
        assert_holds(m, &model, &gone);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // Save, then open the file as a live index: same contents, same answers.
        let saved = dir.path().join("saved.panns");
        expect(panns_live_save(m, cpath(&saved).as_ptr()), PANNS_OK, "");
        let r = open(&saved, 0);
        assert_eq!(panns_live_is_in_memory(r), 0);
        assert_holds(r, &model, &gone);
        for &l in model.keys().step_by(37) {
            let q = vec_of(l, 9);
            assert_eq!(search(r, &q, 7, 0), search(m, &q, 7, 0));
        }
        // A file with a live-index log beside it is refused.
        let w = create(&dir.path().join("files.panns"), 0);
        expect(
            panns_live_save(m, cpath(&dir.path().join("files.panns")).as_ptr()),
            PANNS_INVALID_ARGUMENT,
            "log beside it",
        );
        panns_live_free(w);
        panns_live_free(r);
        panns_live_free(m);
        // Empty in memory: create with a NULL path.
        let mut e = null_mut();
        expect(
            panns_live_create(null(), DIM as u32, 0, &o, 0, &mut e),
            PANNS_OK,
            "",
        );
        assert_eq!(panns_live_is_in_memory(e), 1);
        assert_eq!(panns_live_len(e), 0);
        let empty = dir.path().join("empty.panns");
        expect(
            panns_live_save(e, cpath(&empty).as_ptr()),
            PANNS_INVALID_ARGUMENT,
            "holds no items",
        );
        assert!(!empty.exists());
        let mut model = BTreeMap::new();
        expect(add(e, &[7, 8, 9], 0, &mut model), PANNS_OK, "");
        assert_eq!(search(e, &vec_of(8, 0), 1, 0)[0], (8, 0.0));
        expect(panns_live_compact(e), PANNS_OK, "");
        assert_eq!(panns_live_generation(e), 1);
        assert_holds(e, &model, &[1]);
        expect(panns_live_save(e, null()), PANNS_NULL_POINTER, "path");
        panns_live_free(e);
    }
}

/// Every `panns_live_*` entry point given a NULL handle: `PANNS_NULL_POINTER` naming
/// `live` (or the neutral value of an accessor), never a crash; out-handles are cleared.
#[test]
fn every_entry_point_refuses_a_null_handle() {
    let q = [0.5f32; DIM];
    let (mut l, mut d, mut n, mut c, mut r) = ([0u64; 2], [0f32; 2], 0usize, 0, 0usize);
    let mut st = PannsSearchStats::default();
    let mut v = [0f32; DIM];
    let mut out = std::ptr::dangling_mut::<PannsLive>();
    let labels = [1u64];
    // SAFETY: NULL handles are the point; every other pointer is valid.
    unsafe {
        let live = null_mut();
        for status in [
            panns_live_add(live, labels.as_ptr(), q.as_ptr(), 1, DIM),
            panns_live_remove(live, labels.as_ptr(), 1, &mut r),
            panns_live_commit(live),
            panns_live_compact(live),
            panns_live_refresh(live, &mut c),
            panns_live_save(live, c"x.panns".as_ptr()),
            panns_live_search(
                live,
                q.as_ptr(),
                DIM,
                2,
                0,
                l.as_mut_ptr(),
                d.as_mut_ptr(),
                &mut n,
            ),
            panns_live_search_with_stats(
                live,
                q.as_ptr(),
                DIM,
                2,
                0,
                l.as_mut_ptr(),
                d.as_mut_ptr(),
                &mut n,
                &mut st,
            ),
            panns_live_search_batch(live, q.as_ptr(), 1, DIM, 2, 0, l.as_mut_ptr(), null_mut()),
            panns_live_get(live, 1, v.as_mut_ptr(), DIM),
            panns_live_range_search(
                live,
                q.as_ptr(),
                DIM,
                1.0,
                2,
                0,
                l.as_mut_ptr(),
                null_mut(),
                &mut n,
                null_mut(),
            ),
        ] {
            expect(status, PANNS_NULL_POINTER, "`live`");
        }
        expect(
            panns_live_from_index(null(), c"x.panns".as_ptr(), null(), 0, &mut out),
            PANNS_NULL_POINTER,
            "`index`",
        );
        assert!(out.is_null(), "out is cleared on failure");
        expect(
            panns_live_open(c"x.panns".as_ptr(), 0, null_mut()),
            PANNS_NULL_POINTER,
            "`out`",
        );
        assert_eq!(panns_live_contains(live, 1), 0);
        assert_eq!(panns_live_len(live), 0);
        assert_eq!(panns_live_dim(live), 0);
        assert_eq!(panns_live_metric(live), u32::MAX);
        assert_eq!(panns_live_generation(live), 0);
        assert_eq!(panns_live_base_len(live), 0);
        assert_eq!(panns_live_delta_len(live), 0);
        assert_eq!(panns_live_tombstones(live), 0);
        assert_eq!(panns_live_pending(live), 0);
        assert_eq!(panns_live_is_writable(live), 0);
        assert_eq!(panns_live_is_in_memory(live), 0);
        panns_live_free(live);
    }
    assert!(!Path::new("x.panns").exists());
}

/// Range search over base + delta - removed, against the exact distances of the model:
/// at a budget covering every item it returns exactly the live labels within the radius,
/// nearest first, and reports truncation by the cap.
#[test]
fn range_search_matches_the_exact_ball() {
    let dir = tempfile::tempdir().unwrap();
    let w = create(&dir.path().join("range.panns"), 0);
    let mut model = BTreeMap::new();
    let labels: Vec<u64> = (0..300).map(|i| 2 * i + 1).collect();
    expect(add(w, &labels, 0, &mut model), PANNS_OK, "");
    // SAFETY: live handle; buffers sized below.
    unsafe {
        expect(panns_live_compact(w), PANNS_OK, "");
        expect(
            panns_live_remove(w, labels[..20].as_ptr(), 20, null_mut()),
            PANNS_OK,
            "",
        );
    }
    for l in &labels[..20] {
        model.remove(l);
    }
    expect(add(w, &[1000, 1002, 1004], 0, &mut model), PANNS_OK, "");
    let q = vec_of(labels[50], 0);
    // The exact ball: Euclidean distances (not squared) of every live item.
    let mut all: Vec<(f32, u64)> = model
        .iter()
        .map(|(&l, v)| {
            let d2: f32 = v.iter().zip(&q).map(|(a, b)| (a - b) * (a - b)).sum();
            (d2.sqrt(), l)
        })
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let radius = all[12].0 + 1e-4; // 13 items inside, the 14th a clear step away
    assert!(all[13].0 > radius);
    let (mut ls, mut ds, mut n, mut t) = (vec![0u64; 40], vec![0f32; 40], 0usize, 9u8);
    // SAFETY: buffers of 40 entries.
    unsafe {
        expect(
            panns_live_range_search(
                w,
                q.as_ptr(),
                DIM,
                radius,
                40,
                usize::MAX,
                ls.as_mut_ptr(),
                ds.as_mut_ptr(),
                &mut n,
                &mut t,
            ),
            PANNS_OK,
            "",
        );
        assert_eq!((n, t), (13, 0));
        let want: Vec<u64> = all[..13].iter().map(|h| h.1).collect();
        assert_eq!(&ls[..13], &want[..]);
        for (d, h) in ds[..13].iter().zip(&all) {
            assert!((d - h.0).abs() < 1e-3, "{d} vs {}", h.0);
        }
        // A cap below the ball: the nearest, truncated.
        expect(
            panns_live_range_search(
                w,
                q.as_ptr(),
                DIM,
                radius,
                5,
                usize::MAX,
                ls.as_mut_ptr(),
                null_mut(),
                &mut n,
                &mut t,
            ),
            PANNS_OK,
            "",
        );
        assert_eq!((n, t), (5, 1));
        assert_eq!(&ls[..5], &want[..5]);
        for (r, m, needle) in [
            (-1.0, 5, "radius"),
            (f32::NAN, 5, "radius"),
            (1.0, 0, "max_results"),
        ] {
            expect(
                panns_live_range_search(
                    w,
                    q.as_ptr(),
                    DIM,
                    r,
                    m,
                    0,
                    ls.as_mut_ptr(),
                    null_mut(),
                    &mut n,
                    null_mut(),
                ),
                PANNS_INVALID_ARGUMENT,
                needle,
            );
        }
        panns_live_free(w);
    }
}
