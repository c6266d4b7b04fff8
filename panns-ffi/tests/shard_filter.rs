//! Filtered search of a sharded index through the C ABI
//! (`panns_sharded_search_filtered`): an allow-list planned per shard, a deny-list, a
//! predicate called from the shards' threads and its abort, a NULL filter, unknown
//! labels, against an exact filtered scan computed here.

use panns::PannsStatus::{self, *};
use panns::live_filter::*;
use panns::shard::*;
use panns::shard_filter::*;
use panns::*;
use panns_core::{BuildParams, Metric};
use std::collections::HashSet;
use std::ffi::{CStr, CString, c_int, c_void};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicUsize, Ordering};

const DIM: usize = 8;
const N: usize = 2400;
const SHARDS: usize = 3;

fn data() -> Vec<f32> {
    panns_core::rng::gaussian_vector(N * DIM, false, 77)
}

fn last_error() -> String {
    // SAFETY: never NULL; copied at once.
    unsafe { CStr::from_ptr(panns_last_error_message()) }
        .to_string_lossy()
        .into_owned()
}

/// Builds 3 shards of 800 rows with caller labels `5 * row + 3`, opens the manifest.
fn open(dir: &std::path::Path) -> *mut PannsShardedIndex {
    let labels: Vec<u64> = (0..N as u64).map(|r| 5 * r + 3).collect();
    let opts = panns_io::ShardBuildOptions {
        n_shards: SHARDS,
        params: BuildParams {
            n_trees: 8,
            ..Default::default()
        },
        ..Default::default()
    };
    let m =
        panns_io::build_shards(&data(), DIM, Metric::Euclidean, Some(&labels), dir, &opts).unwrap();
    let path = CString::new(m.to_str().unwrap()).unwrap();
    let mut ix = null_mut();
    // SAFETY: a valid path and out-pointer.
    let st = unsafe { panns_sharded_open(path.as_ptr(), 0, &mut ix) };
    assert_eq!(st, PANNS_OK, "{}", last_error());
    ix
}

/// Exact top-k labels among rows whose label `keep` accepts.
fn exact(q: &[f32], k: usize, keep: impl Fn(u64) -> bool) -> Vec<u64> {
    let d = data();
    let mut all: Vec<(f32, u64)> = d
        .chunks(DIM)
        .enumerate()
        .map(|(r, v)| {
            let dist: f32 = v.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum();
            (dist, 5 * r as u64 + 3)
        })
        .filter(|e| keep(e.1))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.into_iter().take(k).map(|e| e.1).collect()
}

fn search(
    ix: *const PannsShardedIndex,
    q: &[f32],
    k: usize,
    budget: usize,
    f: Option<&PannsLabelFilter>,
) -> Result<Vec<u64>, PannsStatus> {
    let mut labels = vec![0u64; k];
    let mut dists = vec![0f32; k];
    let mut n = 0usize;
    // SAFETY: buffers of k entries; the filter (if any) outlives the call.
    let st = unsafe {
        panns_sharded_search_filtered(
            ix,
            q.as_ptr(),
            q.len(),
            k,
            budget,
            f.map_or(std::ptr::null(), |f| f as *const _),
            labels.as_mut_ptr(),
            dists.as_mut_ptr(),
            &mut n,
        )
    };
    if st != PANNS_OK {
        return Err(st);
    }
    assert!(dists[..n].windows(2).all(|w| w[0] <= w[1]));
    labels.truncate(n);
    Ok(labels)
}

fn list(kind: PannsLabelFilterKind, labels: &[u64]) -> PannsLabelFilter {
    PannsLabelFilter {
        kind: kind as u32,
        labels: labels.as_ptr(),
        n_labels: labels.len(),
        predicate: None,
        user_data: null_mut(),
    }
}

struct Pred {
    calls: AtomicUsize,
    abort_after: usize,
}

unsafe extern "C" fn odd(label: u64, user_data: *mut c_void) -> c_int {
    // SAFETY: user_data is a live &Pred.
    let p = unsafe { &*(user_data as *const Pred) };
    if p.calls.fetch_add(1, Ordering::SeqCst) >= p.abort_after {
        return -1;
    }
    (label % 2 == 1) as c_int
}

#[test]
fn sharded_filters_by_label_list_deny_list_and_predicate() {
    let dir = tempfile::tempdir().unwrap();
    let ix = open(dir.path());
    let qs = panns_core::rng::gaussian_vector(10 * DIM, false, 5);
    // 9 listed labels (rows 0..800 and 1600..2400 only), an unknown one.
    let listed: Vec<u64> = [0u64, 90, 400, 799, 1600, 1700, 2000, 2200, 2399]
        .iter()
        .map(|r| 5 * r + 3)
        .chain([4, 1 << 40])
        .collect();
    let set: HashSet<u64> = listed.iter().copied().collect();
    let allow = list(
        PannsLabelFilterKind::PANNS_LABEL_FILTER_ALLOW_LABELS,
        &listed,
    );
    let deny = list(
        PannsLabelFilterKind::PANNS_LABEL_FILTER_DENY_LABELS,
        &listed,
    );
    for q in qs.chunks(DIM) {
        // Planned: each shard scans its few listed items, so a small budget is exact.
        assert_eq!(
            search(ix, q, 4, 4, Some(&allow)).unwrap(),
            exact(q, 4, |l| set.contains(&l))
        );
        // A deny-list at a budget of half a shard (exact per shard).
        assert_eq!(
            search(ix, q, 10, 400, Some(&deny)).unwrap(),
            exact(q, 10, |l| !set.contains(&l))
        );
        // No filter: as panns_sharded_search.
        assert_eq!(
            search(ix, q, 10, 400, None).unwrap(),
            exact(q, 10, |_| true)
        );
        // A predicate (odd labels: rows with an even index), from the shards' threads.
        let p = Pred {
            calls: AtomicUsize::new(0),
            abort_after: usize::MAX,
        };
        let pf = PannsLabelFilter {
            kind: PannsLabelFilterKind::PANNS_LABEL_FILTER_PREDICATE as u32,
            labels: std::ptr::null(),
            n_labels: 0,
            predicate: Some(odd),
            user_data: &p as *const Pred as *mut c_void,
        };
        let got = search(ix, q, 10, 400, Some(&pf)).unwrap();
        assert_eq!(got, exact(q, 10, |l| l % 2 == 1));
        assert!(p.calls.load(Ordering::SeqCst) > 0);
        let got = search(ix, q, 10, 30, Some(&pf)).unwrap();
        assert!(got.len() == 10 && got.iter().all(|l| l % 2 == 1));
    }
    // An empty allow-list: no results; an abort: PANNS_CALLBACK_FAILED and no more calls.
    let empty = list(PannsLabelFilterKind::PANNS_LABEL_FILTER_ALLOW_LABELS, &[]);
    assert!(
        search(ix, &qs[..DIM], 5, 10, Some(&empty))
            .unwrap()
            .is_empty()
    );
    let p = Pred {
        calls: AtomicUsize::new(0),
        abort_after: 5,
    };
    let pf = PannsLabelFilter {
        kind: PannsLabelFilterKind::PANNS_LABEL_FILTER_PREDICATE as u32,
        labels: std::ptr::null(),
        n_labels: 0,
        predicate: Some(odd),
        user_data: &p as *const Pred as *mut c_void,
    };
    assert_eq!(
        search(ix, &qs[..DIM], 5, 50, Some(&pf)),
        Err(PANNS_CALLBACK_FAILED)
    );
    let bad = PannsLabelFilter { kind: 9, ..empty };
    assert_eq!(
        search(ix, &qs[..DIM], 5, 10, Some(&bad)),
        Err(PANNS_INVALID_ARGUMENT)
    );
    assert!(last_error().contains("kind 9"), "{}", last_error());
    assert_eq!(
        search(ix, &qs[..3], 5, 10, Some(&allow)),
        Err(PANNS_DIMENSION_MISMATCH)
    );
    // SAFETY: the handle from open.
    unsafe { panns_sharded_free(ix) };
}

/// Every label within `radius` of `q` among rows whose label `keep` accepts, nearest
/// first, and a radius halfway between the `n`-th and `n + 1`-th of them.
fn exact_ball(q: &[f32], n: usize, keep: impl Fn(u64) -> bool) -> (Vec<u64>, f32) {
    let d = data();
    let mut all: Vec<(f32, u64)> = d
        .chunks(DIM)
        .enumerate()
        .map(|(r, v)| {
            let dist: f32 = v.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum();
            (dist.sqrt(), 5 * r as u64 + 3)
        })
        .filter(|e| keep(e.1))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let radius = (all[n - 1].0 + all[n].0) / 2.0;
    (all.into_iter().take(n).map(|e| e.1).collect(), radius)
}

/// `panns_sharded_range_search` into buffers of `cap` entries: labels, distances and the
/// truncated flag.
fn range(
    ix: *const PannsShardedIndex,
    q: &[f32],
    radius: f32,
    cap: usize,
    budget: usize,
    f: Option<&PannsLabelFilter>,
) -> Result<(Vec<u64>, Vec<f32>, bool), PannsStatus> {
    let mut labels = vec![0u64; cap.max(1)];
    let mut dists = vec![0f32; cap.max(1)];
    let (mut n, mut truncated) = (usize::MAX, 7u8);
    // SAFETY: buffers of `cap` entries; the filter (if any) outlives the call.
    let st = unsafe {
        panns_sharded_range_search(
            ix,
            q.as_ptr(),
            q.len(),
            radius,
            cap,
            budget,
            f.map_or(std::ptr::null(), |f| f as *const _),
            labels.as_mut_ptr(),
            dists.as_mut_ptr(),
            &mut n,
            &mut truncated,
        )
    };
    if st != PANNS_OK {
        return Err(st);
    }
    assert!(truncated <= 1);
    assert!(dists[..n].windows(2).all(|w| w[0] <= w[1]));
    assert!(dists[..n].iter().all(|&d| d <= radius));
    labels.truncate(n);
    dists.truncate(n);
    Ok((labels, dists, truncated == 1))
}

fn predicate(p: &Pred) -> PannsLabelFilter {
    PannsLabelFilter {
        kind: PannsLabelFilterKind::PANNS_LABEL_FILTER_PREDICATE as u32,
        labels: std::ptr::null(),
        n_labels: 0,
        predicate: Some(odd),
        user_data: p as *const Pred as *mut c_void,
    }
}

#[test]
fn sharded_range_search_is_the_exact_ball_under_every_filter() {
    let dir = tempfile::tempdir().unwrap();
    let ix = open(dir.path());
    let qs = panns_core::rng::gaussian_vector(6 * DIM, false, 41);
    let odd_rows: Vec<u64> = (0..N as u64)
        .map(|r| 5 * r + 3)
        .filter(|l| l % 2 == 1)
        .collect();
    let allow = list(
        PannsLabelFilterKind::PANNS_LABEL_FILTER_ALLOW_LABELS,
        &odd_rows,
    );
    let even_rows: Vec<u64> = (0..N as u64)
        .map(|r| 5 * r + 3)
        .filter(|l| l % 2 == 0)
        .collect();
    let deny = list(
        PannsLabelFilterKind::PANNS_LABEL_FILTER_DENY_LABELS,
        &even_rows,
    );
    let p = Pred {
        calls: AtomicUsize::new(0),
        abort_after: usize::MAX,
    };
    let pf = predicate(&p);
    for q in qs.chunks(DIM) {
        // 400 = half a shard: exact per shard, so the merged ball is the exact one.
        let (want, radius) = exact_ball(q, 20, |_| true);
        let (got, _, capped) = range(ix, q, radius, 1000, 400, None).unwrap();
        assert_eq!((got, capped), (want, false));
        let (want, radius) = exact_ball(q, 20, |l| l % 2 == 1);
        for f in [&allow, &deny, &pf] {
            let (got, _, capped) = range(ix, q, radius, 1000, 400, Some(f)).unwrap();
            assert_eq!((&got, capped), (&want, false), "kind {}", f.kind);
            // The cap keeps the nearest and flags the cut; exactly at the count it does not.
            let (cut, _, capped) = range(ix, q, radius, 6, 400, Some(f)).unwrap();
            assert_eq!((&cut[..], capped), (&want[..6], true), "kind {}", f.kind);
            let (all, _, capped) = range(ix, q, radius, 20, 400, Some(f)).unwrap();
            assert_eq!((&all, capped), (&want, false), "kind {}", f.kind);
        }
        assert!(p.calls.load(Ordering::SeqCst) > 0);
        // A small budget: never outside the ball.
        let (few, _, _) = range(ix, q, radius, 1000, 10, Some(&pf)).unwrap();
        assert!(few.iter().all(|l| want.contains(l)));
    }
    // A stored row finds itself at distance 0.
    let row = &data()[9 * DIM..10 * DIM];
    let (hits, dists, _) = range(ix, row, 0.0, 3, 400, None).unwrap();
    assert_eq!((hits[0], dists[0]), (5 * 9 + 3, 0.0));
    // An empty allow-list, unknown labels: nothing.
    let empty = list(PannsLabelFilterKind::PANNS_LABEL_FILTER_ALLOW_LABELS, &[]);
    let unknown = list(
        PannsLabelFilterKind::PANNS_LABEL_FILTER_ALLOW_LABELS,
        &[4, 1 << 40],
    );
    for f in [&empty, &unknown] {
        let (got, _, capped) = range(ix, row, 1e6, 10, 0, Some(f)).unwrap();
        assert!(got.is_empty() && !capped);
    }
    // Bad input.
    let q = &qs[..DIM];
    for bad in [-0.5, f32::NAN, f32::NEG_INFINITY] {
        assert_eq!(
            range(ix, q, bad, 5, 0, None),
            Err(PANNS_INVALID_ARGUMENT),
            "{bad}"
        );
        assert!(last_error().contains("radius"), "{}", last_error());
    }
    assert_eq!(range(ix, q, 1.0, 0, 0, None), Err(PANNS_INVALID_ARGUMENT));
    assert!(last_error().contains("max_results"), "{}", last_error());
    assert_eq!(
        range(ix, &q[..5], 1.0, 5, 0, Some(&allow)),
        Err(PANNS_DIMENSION_MISMATCH)
    );
    let mut nan = q.to_vec();
    nan[1] = f32::NAN;
    assert_eq!(range(ix, &nan, 1.0, 5, 0, None), Err(PANNS_NON_FINITE));
    let bad = PannsLabelFilter { kind: 4, ..empty };
    assert_eq!(
        range(ix, q, 1.0, 5, 0, Some(&bad)),
        Err(PANNS_INVALID_ARGUMENT)
    );
    let abort = Pred {
        calls: AtomicUsize::new(0),
        abort_after: 3,
    };
    assert_eq!(
        range(ix, q, 10.0, 5, 50, Some(&predicate(&abort))),
        Err(PANNS_CALLBACK_FAILED)
    );
    // NULL pointers: refused, never dereferenced; the truncated flag may be NULL.
    let (mut l, mut d, mut n) = ([0u64; 4], [0f32; 4], 0usize);
    // SAFETY: NULL handle / NULL outputs are refused before any access.
    unsafe {
        assert_eq!(
            panns_sharded_range_search(
                std::ptr::null(),
                q.as_ptr(),
                DIM,
                1.0,
                4,
                0,
                std::ptr::null(),
                l.as_mut_ptr(),
                d.as_mut_ptr(),
                &mut n,
                null_mut()
            ),
            PANNS_NULL_POINTER
        );
        assert_eq!(
            panns_sharded_range_search(
                ix,
                q.as_ptr(),
                DIM,
                100.0,
                4,
                0,
                std::ptr::null(),
                l.as_mut_ptr(),
                std::ptr::null_mut(),
                &mut n,
                null_mut()
            ),
            PANNS_OK
        );
        assert_eq!(n, 4);
        assert_eq!(
            panns_sharded_range_search(
                ix,
                q.as_ptr(),
                DIM,
                1.0,
                4,
                0,
                std::ptr::null(),
                null_mut(),
                d.as_mut_ptr(),
                &mut n,
                null_mut()
            ),
            PANNS_NULL_POINTER
        );
        panns_sharded_free(ix);
    }
}

/// A batch's rows (labels cut to each row's count), and its raw labels and distances.
type Batch = (Vec<Vec<u64>>, Vec<u64>, Vec<f32>);

/// `panns_sharded_search_batch_filtered` with `k` per row: each row's labels (cut to
/// its count) and the raw padded buffers.
fn batch(
    ix: *const PannsShardedIndex,
    qs: &[f32],
    k: usize,
    budget: usize,
    f: Option<&PannsLabelFilter>,
) -> Result<Batch, PannsStatus> {
    let nq = qs.len() / DIM;
    let mut labels = vec![0u64; (nq * k).max(1)];
    let mut dists = vec![0f32; (nq * k).max(1)];
    let mut counts = vec![usize::MAX; nq.max(1)];
    // SAFETY: buffers of nq * k entries and nq counts; the filter outlives the call.
    let st = unsafe {
        panns_sharded_search_batch_filtered(
            ix,
            qs.as_ptr(),
            nq,
            DIM,
            k,
            budget,
            f.map_or(std::ptr::null(), |f| f as *const _),
            labels.as_mut_ptr(),
            dists.as_mut_ptr(),
            counts.as_mut_ptr(),
        )
    };
    if st != PANNS_OK {
        return Err(st);
    }
    let rows = (0..nq)
        .map(|i| labels[i * k..i * k + counts[i]].to_vec())
        .collect();
    Ok((rows, labels, dists))
}

#[test]
fn sharded_filtered_batch_equals_one_filtered_search_per_row() {
    let dir = tempfile::tempdir().unwrap();
    let ix = open(dir.path());
    let qs = panns_core::rng::gaussian_vector(9 * DIM, false, 43);
    let listed: Vec<u64> = (0..N as u64)
        .step_by(97)
        .map(|r| 5 * r + 3)
        .chain([6])
        .collect();
    let allow = list(
        PannsLabelFilterKind::PANNS_LABEL_FILTER_ALLOW_LABELS,
        &listed,
    );
    let deny = list(
        PannsLabelFilterKind::PANNS_LABEL_FILTER_DENY_LABELS,
        &listed,
    );
    let empty = list(PannsLabelFilterKind::PANNS_LABEL_FILTER_ALLOW_LABELS, &[]);
    let p = Pred {
        calls: AtomicUsize::new(0),
        abort_after: usize::MAX,
    };
    let pf = predicate(&p);
    for f in [None, Some(&allow), Some(&deny), Some(&empty), Some(&pf)] {
        for (k, budget) in [(5, 30), (8, 400)] {
            let (rows, _, _) = batch(ix, &qs, k, budget, f).unwrap();
            for (row, q) in rows.iter().zip(qs.chunks(DIM)) {
                assert_eq!(row, &search(ix, q, k, budget, f).unwrap());
            }
        }
    }
    // At an exact budget the rows are the exact filtered answer; 30 > 25 listed pads.
    let set: HashSet<u64> = listed.iter().copied().collect();
    let (rows, labels, dists) = batch(ix, &qs, 30, 400, Some(&allow)).unwrap();
    for (i, (row, q)) in rows.iter().zip(qs.chunks(DIM)).enumerate() {
        assert_eq!(row, &exact(q, 30, |l| set.contains(&l)));
        assert_eq!(row.len(), 25);
        assert!(
            labels[i * 30 + 25..(i + 1) * 30]
                .iter()
                .all(|&l| l == u64::MAX)
        );
        assert!(
            dists[i * 30 + 25..(i + 1) * 30]
                .iter()
                .all(|d| d.is_infinite())
        );
    }
    let (rows, _, _) = batch(ix, &qs, 4, 0, Some(&empty)).unwrap();
    assert!(rows.iter().all(Vec::is_empty));
    // No queries: a no-op. Bad input: refused, naming the row.
    assert!(batch(ix, &[], 4, 0, Some(&allow)).unwrap().0.is_empty());
    assert_eq!(
        batch(ix, &qs, 0, 0, Some(&allow)),
        Err(PANNS_INVALID_ARGUMENT)
    );
    let mut bad = qs.clone();
    bad[4 * DIM + 2] = f32::INFINITY;
    assert_eq!(batch(ix, &bad, 4, 0, Some(&allow)), Err(PANNS_NON_FINITE));
    assert!(last_error().contains("row 4"), "{}", last_error());
    let unknown = PannsLabelFilter { kind: 11, ..empty };
    assert_eq!(
        batch(ix, &qs, 4, 0, Some(&unknown)),
        Err(PANNS_INVALID_ARGUMENT)
    );
    let abort = Pred {
        calls: AtomicUsize::new(0),
        abort_after: 10,
    };
    assert_eq!(
        batch(ix, &qs, 4, 50, Some(&predicate(&abort))),
        Err(PANNS_CALLBACK_FAILED)
    );
    assert!(last_error().contains("returned -1"), "{}", last_error());
    // A wrong dimension, a NULL output: refused.
    let (mut l, mut c) = ([0u64; 8], [0usize; 2]);
    // SAFETY: the lengths passed describe the buffers; NULL is refused before use.
    unsafe {
        assert_eq!(
            panns_sharded_search_batch_filtered(
                ix,
                qs.as_ptr(),
                2,
                DIM - 1,
                4,
                0,
                &allow,
                l.as_mut_ptr(),
                null_mut(),
                c.as_mut_ptr()
            ),
            PANNS_DIMENSION_MISMATCH
        );
        assert_eq!(
            panns_sharded_search_batch_filtered(
                ix,
                qs.as_ptr(),
                2,
                DIM,
                4,
                0,
                &allow,
                null_mut(),
                null_mut(),
                c.as_mut_ptr()
            ),
            PANNS_NULL_POINTER
        );
        // Only labels: distances and counts may be NULL.
        assert_eq!(
            panns_sharded_search_batch_filtered(
                ix,
                qs.as_ptr(),
                2,
                DIM,
                4,
                400,
                &allow,
                l.as_mut_ptr(),
                null_mut(),
                null_mut()
            ),
            PANNS_OK
        );
        assert_eq!(l[..4], exact(&qs[..DIM], 4, |x| set.contains(&x))[..]);
        panns_sharded_free(ix);
    }
}
