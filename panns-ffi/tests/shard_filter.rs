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
