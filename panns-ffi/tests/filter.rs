//! Filtered search, filtered batch search and range search through the C ABI, checked
//! against an exact scan computed here from the raw vectors.

use panns::PannsStatus::{self, *};
use panns::allow_list::*;
use panns::builder::*;
use panns::filter::*;
use panns::index::*;
use panns::twins::*;
use panns::*;
use std::ffi::{CStr, c_int, c_void};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicUsize, Ordering};

const DIM: usize = 8;
const N: usize = 3000;

fn last_error() -> String {
    // SAFETY: never NULL; copied at once.
    unsafe { CStr::from_ptr(panns_last_error_message()) }
        .to_string_lossy()
        .into_owned()
}

#[track_caller]
fn ok(status: PannsStatus) {
    assert_eq!(status, PANNS_OK, "{}", last_error());
}

#[track_caller]
fn expect(status: PannsStatus, want: PannsStatus, text: &str) {
    assert_eq!(status, want, "{}", last_error());
    assert!(
        last_error().contains(text),
        "message {:?} lacks {text:?}",
        last_error()
    );
}

fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut r = panns_core::rng::Rng::new(seed);
    (0..n * DIM).map(|_| r.gaussian() as f32).collect()
}

/// An index of the rows of `data(N, 7)`, with a neighbour graph when `graph`.
fn index(graph: bool) -> (*mut PannsIndex, Vec<f32>) {
    let rows = data(N, 7);
    let mut b = null_mut();
    let mut idx = null_mut();
    let opts = PannsBuildOptions {
        n_trees: 8,
        ..panns_build_options_default()
    };
    // SAFETY: valid pointers throughout.
    unsafe {
        ok(panns_builder_new(DIM as u32, 0, &mut b));
        ok(panns_builder_add_batch(b, rows.as_ptr(), N, DIM));
        ok(panns_builder_build(b, &opts, &mut idx));
        panns_builder_free(b);
        if graph {
            ok(panns_index_build_graph(idx, 16, 0));
        }
    }
    (idx, rows)
}

fn dist(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}

/// The exact `k` nearest allowed items of `q` (ids), by a scan written here.
fn exact(rows: &[f32], q: &[f32], k: usize, allowed: impl Fn(usize) -> bool) -> Vec<u32> {
    let mut all: Vec<(f32, u32)> = (0..rows.len() / DIM)
        .filter(|&i| allowed(i))
        .map(|i| (dist(q, &rows[i * DIM..(i + 1) * DIM]), i as u32))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.truncate(k);
    all.into_iter().map(|e| e.1).collect()
}

fn bitmap(allowed: &[bool]) -> Vec<u64> {
    let mut b = vec![0u64; allowed.len().div_ceil(64)];
    for (i, _) in allowed.iter().enumerate().filter(|e| *e.1) {
        b[i / 64] |= 1 << (i % 64);
    }
    b
}

/// The arrays of the four array kinds of filter for one allow-mask of `N` items.
struct KindArrays {
    words: Vec<u64>,
    deny_words: Vec<u64>,
    ids: Vec<u32>,
    denied: Vec<u32>,
}

impl KindArrays {
    fn new(allowed: &[bool]) -> Self {
        KindArrays {
            words: bitmap(allowed),
            deny_words: bitmap(&allowed.iter().map(|a| !a).collect::<Vec<_>>()),
            ids: (0..N as u32).filter(|&i| allowed[i as usize]).collect(),
            denied: (0..N as u32).filter(|&i| !allowed[i as usize]).collect(),
        }
    }

    /// The allow-bitmap, deny-bitmap, allow-ids and deny-ids filters, pointing into
    /// `self` (which must outlive them).
    fn filters(&self) -> [PannsFilter; 4] {
        let mut allow_bits = filter(PannsFilterKind::PANNS_FILTER_ALLOW_BITMAP);
        allow_bits.bits = self.words.as_ptr();
        allow_bits.n_bits = N;
        let mut deny_bits = filter(PannsFilterKind::PANNS_FILTER_DENY_BITMAP);
        deny_bits.bits = self.deny_words.as_ptr();
        deny_bits.n_bits = N;
        let mut allow_ids = filter(PannsFilterKind::PANNS_FILTER_ALLOW_IDS);
        allow_ids.ids = self.ids.as_ptr();
        allow_ids.n_ids = self.ids.len();
        let mut deny_ids = filter(PannsFilterKind::PANNS_FILTER_DENY_IDS);
        deny_ids.ids = self.denied.as_ptr();
        deny_ids.n_ids = self.denied.len();
        [allow_bits, deny_bits, allow_ids, deny_ids]
    }
}

/// Every `stride`-th item, shifted by `offset`: a selectivity of 1 / stride.
fn every(stride: usize, offset: usize) -> Vec<bool> {
    (0..N).map(|i| i % stride == offset).collect()
}

fn filter(kind: PannsFilterKind) -> PannsFilter {
    PannsFilter {
        kind: kind as u32,
        bits: null(),
        n_bits: 0,
        ids: null(),
        n_ids: 0,
        predicate: None,
        user_data: null_mut(),
    }
}

/// Results of one filtered search: (ids, distances, stats) or the status.
fn search(
    idx: *const PannsIndex,
    q: &[f32],
    k: usize,
    budget: usize,
    f: Option<&PannsFilter>,
) -> Result<(Vec<u32>, Vec<f32>, PannsSearchStats), PannsStatus> {
    let mut ids = vec![0u32; k];
    let mut ds = vec![0f32; k];
    let mut n = usize::MAX;
    let mut stats = PannsSearchStats::default();
    let fp = f.map_or(null(), |f| f as *const PannsFilter);
    // SAFETY: buffers of k entries.
    let st = unsafe {
        panns_index_search_filtered(
            idx,
            q.as_ptr(),
            q.len(),
            k,
            budget,
            fp,
            ids.as_mut_ptr(),
            ds.as_mut_ptr(),
            &mut n,
            &mut stats,
        )
    };
    if st != PANNS_OK {
        return Err(st);
    }
    ids.truncate(n);
    ds.truncate(n);
    Ok((ids, ds, stats))
}

/// The predicate of the tests: `user_data` is a `&Vec<bool>` of allowed items.
unsafe extern "C" fn allow_from_vec(id: u64, user_data: *mut c_void) -> c_int {
    // SAFETY: the tests pass a live `Vec<bool>`.
    let allowed = unsafe { &*(user_data as *const Vec<bool>) };
    c_int::from(allowed[id as usize])
}

#[test]
fn every_filter_kind_returns_only_allowed_items_near_exact_on_the_approximate_path() {
    for graph in [true, false] {
        let (idx, rows) = index(graph);
        // Graph: 50% (1500 items) at beam 40; forest: 25% (750) at 300 candidates. Both the
        // approximate path: 2 * budget < allowed, and with the graph allowed^2 > 16 budget n.
        let allowed = if graph { every(2, 1) } else { every(4, 1) };
        let arrays = KindArrays::new(&allowed);
        let [allow_bits, deny_bits, allow_ids, deny_ids] = arrays.filters();
        let mut pred = filter(PannsFilterKind::PANNS_FILTER_PREDICATE);
        pred.predicate = Some(allow_from_vec);
        pred.user_data = &allowed as *const Vec<bool> as *mut c_void;

        let queries = data(50, 99);
        let (k, budget) = (10, if graph { 40 } else { 300 });
        let (mut found, mut total) = (0, 0);
        for q in queries.chunks(DIM) {
            let truth = exact(&rows, q, k, |i| allowed[i]);
            let (got, ds, stats) = search(idx, q, k, budget, Some(&allow_bits)).unwrap();
            assert_eq!(stats.exact_scan, 0, "graph {graph}: the approximate path");
            assert_eq!(got.len(), k);
            for (&id, &d) in got.iter().zip(&ds) {
                assert!(allowed[id as usize], "item {id} is not allowed");
                let want = dist(q, &rows[id as usize * DIM..(id as usize + 1) * DIM]);
                assert!((d - want).abs() <= 1e-4 * want.max(1.0), "{d} vs {want}");
            }
            found += got.iter().filter(|i| truth.contains(i)).count();
            total += k;
            for other in [&deny_bits, &allow_ids, &deny_ids, &pred] {
                let (same, _, _) = search(idx, q, k, budget, Some(other)).unwrap();
                assert_eq!(same, got, "graph {graph}: kind {} differs", other.kind);
            }
        }
        let recall = found as f64 / total as f64;
        assert!(recall >= 0.95, "graph {graph}: recall {recall} < 0.95");
        // SAFETY: a live index.
        unsafe { panns_index_free(idx) };
    }
}

#[test]
fn a_selective_filter_is_answered_by_an_exact_scan_of_the_allowed_items() {
    let (idx, rows) = index(true);
    let allowed = every(100, 3); // 30 items: the budget covers half of them
    let words = bitmap(&allowed);
    let mut f = filter(PannsFilterKind::PANNS_FILTER_ALLOW_BITMAP);
    f.bits = words.as_ptr();
    f.n_bits = N;
    for q in data(20, 5).chunks(DIM) {
        let (got, _, stats) = search(idx, q, 10, 0, Some(&f)).unwrap();
        assert_eq!(stats.exact_scan, 1);
        assert_eq!(stats.scored, 30, "only the allowed items are scored");
        assert_eq!(got, exact(&rows, q, 10, |i| allowed[i]));
    }
    // SAFETY: a live index.
    unsafe { panns_index_free(idx) };
}

#[test]
fn empty_filters_give_empty_results_and_a_null_filter_is_no_filter() {
    let (idx, _) = index(true);
    let q = &data(1, 3)[..];
    let zeros = vec![0u64; N.div_ceil(64)];
    let mut none_bits = filter(PannsFilterKind::PANNS_FILTER_ALLOW_BITMAP);
    none_bits.bits = zeros.as_ptr();
    none_bits.n_bits = N;
    let none_ids = filter(PannsFilterKind::PANNS_FILTER_ALLOW_IDS);
    let nothing = vec![false; N];
    let mut none_pred = filter(PannsFilterKind::PANNS_FILTER_PREDICATE);
    none_pred.predicate = Some(allow_from_vec);
    none_pred.user_data = &nothing as *const Vec<bool> as *mut c_void;
    for f in [&none_bits, &none_ids, &none_pred] {
        let (got, _, _) = search(idx, q, 10, 50, Some(f)).unwrap();
        assert!(got.is_empty(), "kind {}: {got:?}", f.kind);
    }
    let plain = search(idx, q, 10, 50, None).unwrap();
    let all = search(
        idx,
        q,
        10,
        50,
        Some(&filter(PannsFilterKind::PANNS_FILTER_ALL)),
    )
    .unwrap();
    let empty_deny = search(
        idx,
        q,
        10,
        50,
        Some(&filter(PannsFilterKind::PANNS_FILTER_DENY_IDS)),
    )
    .unwrap();
    let mut ids = vec![0u32; 10];
    let mut n = 0;
    // SAFETY: buffers of 10.
    ok(unsafe {
        panns_index_search(
            idx,
            q.as_ptr(),
            DIM,
            10,
            50,
            ids.as_mut_ptr(),
            null_mut(),
            &mut n,
        )
    });
    assert_eq!(plain.0, ids);
    assert_eq!(all.0, ids);
    assert_eq!(empty_deny.0, ids);
    // SAFETY: a live index.
    unsafe { panns_index_free(idx) };
}

#[test]
fn bad_filters_are_errors_naming_what_is_wrong() {
    let (idx, _) = index(false);
    let q = &data(1, 3)[..];
    let words = vec![u64::MAX; N.div_ceil(64) + 1];
    for n_bits in [N - 1, N + 1, 0] {
        let mut f = filter(PannsFilterKind::PANNS_FILTER_ALLOW_BITMAP);
        f.bits = words.as_ptr();
        f.n_bits = n_bits;
        let st = search(idx, q, 5, 0, Some(&f)).unwrap_err();
        expect(st, PANNS_INVALID_ARGUMENT, &format!("holds {n_bits} bits"));
    }
    let mut f = filter(PannsFilterKind::PANNS_FILTER_DENY_BITMAP);
    f.n_bits = N;
    expect(
        search(idx, q, 5, 0, Some(&f)).unwrap_err(),
        PANNS_NULL_POINTER,
        "filter->bits",
    );
    let bad = [3u32, 17, N as u32, 5];
    let mut f = filter(PannsFilterKind::PANNS_FILTER_ALLOW_IDS);
    f.ids = bad.as_ptr();
    f.n_ids = bad.len();
    let st = search(idx, q, 5, 0, Some(&f)).unwrap_err();
    expect(st, PANNS_OUT_OF_RANGE, &format!("filter id {N} (ids[2])"));
    let mut f = filter(PannsFilterKind::PANNS_FILTER_ALLOW_IDS);
    f.n_ids = 3;
    expect(
        search(idx, q, 5, 0, Some(&f)).unwrap_err(),
        PANNS_NULL_POINTER,
        "filter->ids",
    );
    let f = filter(PannsFilterKind::PANNS_FILTER_PREDICATE);
    expect(
        search(idx, q, 5, 0, Some(&f)).unwrap_err(),
        PANNS_NULL_POINTER,
        "filter->predicate",
    );
    let mut f = filter(PannsFilterKind::PANNS_FILTER_ALL);
    f.kind = 9;
    expect(
        search(idx, q, 5, 0, Some(&f)).unwrap_err(),
        PANNS_INVALID_ARGUMENT,
        "filter kind 9",
    );
    // Through the `_e` twin: this call's message.
    let mut ids = [0u32; 5];
    let mut n = 0;
    let mut err = null_mut();
    // SAFETY: buffers of 5; the message is freed.
    unsafe {
        let st = panns_index_search_filtered_e(
            idx,
            q.as_ptr(),
            DIM,
            5,
            0,
            &f,
            ids.as_mut_ptr(),
            null_mut(),
            &mut n,
            null_mut(),
            &mut err,
        );
        assert_eq!(st, PANNS_INVALID_ARGUMENT);
        assert!(
            CStr::from_ptr(err)
                .to_str()
                .unwrap()
                .contains("filter kind 9")
        );
        panns_error_free(err);
    }
    // SAFETY: a live index.
    unsafe { panns_index_free(idx) };
}

/// `user_data` of the aborting predicate: calls so far and the call that aborts.
struct Abort {
    calls: AtomicUsize,
    abort_at: usize,
}

unsafe extern "C" fn abort_later(id: u64, user_data: *mut c_void) -> c_int {
    // SAFETY: the tests pass a live `Abort`.
    let a = unsafe { &*(user_data as *const Abort) };
    let call = a.calls.fetch_add(1, Ordering::SeqCst) + 1;
    if call >= a.abort_at {
        -7
    } else {
        c_int::from(id.is_multiple_of(2))
    }
}

#[test]
fn a_negative_callback_result_aborts_the_search_at_once() {
    let (idx, _) = index(true);
    let q = &data(1, 3)[..];
    let a = Abort {
        calls: AtomicUsize::new(0),
        abort_at: 5,
    };
    let mut f = filter(PannsFilterKind::PANNS_FILTER_PREDICATE);
    f.predicate = Some(abort_later);
    f.user_data = &a as *const Abort as *mut c_void;
    let st = search(idx, q, 10, 100, Some(&f)).unwrap_err();
    expect(st, PANNS_CALLBACK_FAILED, "returned -7 for item");
    assert_eq!(a.calls.load(Ordering::SeqCst), 5, "no call after the abort");
    // The index still works, and a callback that never aborts gives results.
    let never = Abort {
        calls: AtomicUsize::new(0),
        abort_at: usize::MAX,
    };
    f.user_data = &never as *const Abort as *mut c_void;
    let (got, _, _) = search(idx, q, 10, 100, Some(&f)).unwrap();
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|i| i % 2 == 0));
    // A batch: every thread stops after the abort.
    let qs = data(64, 8);
    let a = Abort {
        calls: AtomicUsize::new(0),
        abort_at: 50,
    };
    f.user_data = &a as *const Abort as *mut c_void;
    let mut ids = vec![0u32; 64 * 10];
    // SAFETY: buffers of 64 * 10.
    let st = unsafe {
        panns_index_search_batch_filtered(
            idx,
            qs.as_ptr(),
            64,
            DIM,
            10,
            100,
            &f,
            ids.as_mut_ptr(),
            null_mut(),
            null_mut(),
        )
    };
    expect(st, PANNS_CALLBACK_FAILED, "search aborted");
    let calls = a.calls.load(Ordering::SeqCst);
    assert!(calls < 50 + 64, "{calls} calls: the other rows went on");
    // SAFETY: a live index.
    unsafe { panns_index_free(idx) };
}

#[test]
fn batch_filtered_search_equals_single_searches_and_pads_short_rows() {
    let (idx, rows) = index(true);
    let allowed = every(3, 0);
    let words = bitmap(&allowed);
    let mut f = filter(PannsFilterKind::PANNS_FILTER_ALLOW_BITMAP);
    f.bits = words.as_ptr();
    f.n_bits = N;
    let (nq, k) = (16, 10);
    let qs = data(nq, 21);
    let mut ids = vec![0u32; nq * k];
    let mut ds = vec![0f32; nq * k];
    let mut counts = vec![0usize; nq];
    // SAFETY: buffers of nq * k and nq.
    ok(unsafe {
        panns_index_search_batch_filtered(
            idx,
            qs.as_ptr(),
            nq,
            DIM,
            k,
            100,
            &f,
            ids.as_mut_ptr(),
            ds.as_mut_ptr(),
            counts.as_mut_ptr(),
        )
    });
    for (r, q) in qs.chunks(DIM).enumerate() {
        let (one, d, _) = search(idx, q, k, 100, Some(&f)).unwrap();
        assert_eq!(&ids[r * k..(r + 1) * k], &one[..], "row {r}");
        assert_eq!(&ds[r * k..(r + 1) * k], &d[..], "row {r}");
        assert_eq!(counts[r], k);
    }
    // Three allowed items: rows of 3 results, padded.
    let three = [5u32, 900, 2999];
    let mut f3 = filter(PannsFilterKind::PANNS_FILTER_ALLOW_IDS);
    f3.ids = three.as_ptr();
    f3.n_ids = 3;
    // SAFETY: as above.
    ok(unsafe {
        panns_index_search_batch_filtered(
            idx,
            qs.as_ptr(),
            nq,
            DIM,
            k,
            0,
            &f3,
            ids.as_mut_ptr(),
            ds.as_mut_ptr(),
            counts.as_mut_ptr(),
        )
    });
    for (r, q) in qs.chunks(DIM).enumerate() {
        assert_eq!(counts[r], 3);
        assert_eq!(
            &ids[r * k..r * k + 3],
            exact(&rows, q, 3, |i| three.contains(&(i as u32)))
        );
        assert!(ids[r * k + 3..(r + 1) * k].iter().all(|&i| i == u32::MAX));
        assert!(
            ds[r * k + 3..(r + 1) * k]
                .iter()
                .all(|&d| d == f32::INFINITY)
        );
    }
    // A bad row is named.
    let mut bad = qs.clone();
    bad[5 * DIM + 2] = f32::NAN;
    // SAFETY: as above.
    let st = unsafe {
        panns_index_search_batch_filtered(
            idx,
            bad.as_ptr(),
            nq,
            DIM,
            k,
            0,
            &f,
            ids.as_mut_ptr(),
            null_mut(),
            null_mut(),
        )
    };
    expect(st, PANNS_NON_FINITE, "query row 5");
    // SAFETY: a live index.
    unsafe { panns_index_free(idx) };
}

/// One range search: (ids, distances, truncated) or the status.
fn range(
    idx: *const PannsIndex,
    q: &[f32],
    radius: f32,
    max_results: usize,
    budget: usize,
    f: Option<&PannsFilter>,
) -> Result<(Vec<u32>, Vec<f32>, bool), PannsStatus> {
    let mut ids = vec![0u32; max_results];
    let mut ds = vec![0f32; max_results];
    let mut n = usize::MAX;
    let mut truncated = 9u8;
    let fp = f.map_or(null(), |f| f as *const PannsFilter);
    // SAFETY: buffers of max_results.
    let st = unsafe {
        panns_index_range_search(
            idx,
            q.as_ptr(),
            DIM,
            radius,
            max_results,
            budget,
            fp,
            ids.as_mut_ptr(),
            ds.as_mut_ptr(),
            &mut n,
            &mut truncated,
        )
    };
    if st != PANNS_OK {
        return Err(st);
    }
    assert!(truncated <= 1);
    ids.truncate(n);
    ds.truncate(n);
    Ok((ids, ds, truncated == 1))
}

#[test]
fn range_search_finds_every_item_within_the_radius_and_flags_the_cap() {
    let (idx, rows) = index(true);
    let q = &data(1, 11)[..];
    let mut by_dist: Vec<(f32, u32)> = (0..N)
        .map(|i| (dist(q, &rows[i * DIM..(i + 1) * DIM]), i as u32))
        .collect();
    by_dist.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    // A radius half-way between the 40th and 41st nearest: exactly 40 items inside.
    let radius = (by_dist[39].0 + by_dist[40].0) / 2.0;
    let inside: Vec<u32> = by_dist[..40].iter().map(|e| e.1).collect();
    // Exact (budget covers half the items): every item inside, nothing else.
    let (got, ds, truncated) = range(idx, q, radius, 100, N, None).unwrap();
    assert_eq!(got, inside);
    assert!(!truncated);
    assert!(ds.iter().all(|&d| d <= radius));
    // Approximate (graph walk): at least 95% of them, nothing outside.
    let (got, _, truncated) = range(idx, q, radius, 100, 0, None).unwrap();
    assert!(!truncated);
    assert!(got.iter().all(|i| inside.contains(i)));
    assert!(got.len() >= 38, "{} of 40", got.len());
    // The cap: the 10 nearest, flagged.
    let (got, _, truncated) = range(idx, q, radius, 10, N, None).unwrap();
    assert_eq!(got, &inside[..10]);
    assert!(truncated);
    // Exactly at the cap: not flagged.
    let (got, _, truncated) = range(idx, q, radius, 40, N, None).unwrap();
    assert_eq!(got.len(), 40);
    assert!(!truncated);
    // Filtered: only allowed items within the radius.
    let allowed = every(2, 1);
    let words = bitmap(&allowed);
    let mut f = filter(PannsFilterKind::PANNS_FILTER_ALLOW_BITMAP);
    f.bits = words.as_ptr();
    f.n_bits = N;
    let (got, _, _) = range(idx, q, radius, 100, N, Some(&f)).unwrap();
    let odd: Vec<u32> = inside.iter().copied().filter(|i| i % 2 == 1).collect();
    assert_eq!(got, odd);
    // Radius 0 finds nothing (no item equals the query); bad radii are errors.
    assert!(range(idx, q, 0.0, 10, 0, None).unwrap().0.is_empty());
    for bad in [-1.0, f32::NAN, -f32::INFINITY] {
        let st = range(idx, q, bad, 10, 0, None).unwrap_err();
        expect(st, PANNS_INVALID_ARGUMENT, "radius");
    }
    expect(
        range(idx, q, 1.0, 0, 0, None).unwrap_err(),
        PANNS_INVALID_ARGUMENT,
        "max_results",
    );
    // SAFETY: a live index.
    unsafe { panns_index_free(idx) };
}

#[test]
fn the_filter_struct_layout_is_frozen() {
    assert_eq!(std::mem::size_of::<PannsFilter>(), 56);
    assert_eq!(std::mem::offset_of!(PannsFilter, bits), 8);
    assert_eq!(std::mem::offset_of!(PannsFilter, predicate), 40);
    assert_eq!(std::mem::offset_of!(PannsFilter, user_data), 48);
}

/// `panns_allow_list_new` of `f` for `idx`, checked to succeed.
fn prepare(idx: *const PannsIndex, f: Option<&PannsFilter>) -> *mut PannsAllowList {
    let mut list = null_mut();
    let fp = f.map_or(null(), |f| f as *const PannsFilter);
    // SAFETY: a live index, a valid filter, a writable out-pointer.
    ok(unsafe { panns_allow_list_new(idx, fp, &mut list) });
    assert!(!list.is_null());
    list
}

/// The `PANNS_FILTER_ALLOW_LIST` filter of `list`.
fn list_filter(list: *const PannsAllowList) -> PannsFilter {
    let mut f = filter(PannsFilterKind::PANNS_FILTER_ALLOW_LIST);
    f.user_data = list as *mut c_void;
    f
}

/// Rows of a batch: ids, distances (row `i` at `i * k`) and counts.
type Rows = (Vec<u32>, Vec<f32>, Vec<usize>);

/// A filtered batch: its rows or the status.
fn batch(
    idx: *const PannsIndex,
    qs: &[f32],
    k: usize,
    budget: usize,
    f: &PannsFilter,
) -> Result<Rows, PannsStatus> {
    let nq = qs.len() / DIM;
    let mut ids = vec![0u32; nq * k];
    let mut ds = vec![0f32; nq * k];
    let mut counts = vec![0usize; nq];
    // SAFETY: buffers of nq * k and nq.
    let st = unsafe {
        panns_index_search_batch_filtered(
            idx,
            qs.as_ptr(),
            nq,
            DIM,
            k,
            budget,
            f,
            ids.as_mut_ptr(),
            ds.as_mut_ptr(),
            counts.as_mut_ptr(),
        )
    };
    if st != PANNS_OK {
        return Err(st);
    }
    Ok((ids, ds, counts))
}

#[test]
fn a_prepared_allow_list_gives_the_results_and_stats_of_the_filter_it_came_from() {
    for graph in [true, false] {
        let (idx, rows) = index(graph);
        // (allowed, budget, exact scan expected): 30 items at the default budget are scanned
        // exactly; 50% (graph, beam 40) or 25% (forest, 300 candidates) take the walk.
        let plans = [
            (every(100, 3), 0, 1u8),
            (
                if graph { every(2, 1) } else { every(4, 1) },
                if graph { 40 } else { 300 },
                0,
            ),
        ];
        for (allowed, budget, exact_scan) in plans {
            let n_allowed = allowed.iter().filter(|&&a| a).count();
            let arrays = KindArrays::new(&allowed);
            let [allow_bits, deny_bits, allow_ids, deny_ids] = arrays.filters();
            // One list per kind it can be made from (deny kinds are inverted once), and a
            // copy made from a list.
            let mut lists: Vec<*mut PannsAllowList> =
                [&allow_bits, &deny_bits, &allow_ids, &deny_ids]
                    .iter()
                    .map(|f| prepare(idx, Some(f)))
                    .collect();
            lists.push(prepare(idx, Some(&list_filter(lists[0]))));
            for &list in &lists {
                // SAFETY: a live list.
                unsafe {
                    assert_eq!(panns_allow_list_len(list), n_allowed);
                    assert_eq!(panns_allow_list_items(list), N);
                }
            }
            let queries = data(20, 31);
            for q in queries.chunks(DIM) {
                let want = search(idx, q, 10, budget, Some(&allow_bits)).unwrap();
                assert_eq!(want.2.exact_scan, exact_scan, "graph {graph}: the plan");
                assert!(want.0.iter().all(|&i| allowed[i as usize]));
                if exact_scan == 1 {
                    assert_eq!(want.0, exact(&rows, q, 10, |i| allowed[i]));
                }
                for &list in &lists {
                    let got = search(idx, q, 10, budget, Some(&list_filter(list))).unwrap();
                    assert_eq!(
                        got, want,
                        "graph {graph}, budget {budget}: ids, distances, stats"
                    );
                }
                // Range search: a radius taking about half of the results.
                let radius = want.1[want.1.len() / 2];
                let want_r = range(idx, q, radius, 8, budget, Some(&allow_bits)).unwrap();
                assert!(!want_r.0.is_empty());
                for &list in &lists {
                    let got = range(idx, q, radius, 8, budget, Some(&list_filter(list))).unwrap();
                    assert_eq!(got, want_r, "graph {graph}: range search");
                }
            }
            let want = batch(idx, &queries, 10, budget, &allow_bits).unwrap();
            for &list in &lists {
                let got = batch(idx, &queries, 10, budget, &list_filter(list)).unwrap();
                assert_eq!(got, want, "graph {graph}: batch");
            }
            for list in lists {
                // SAFETY: a live list, not used again.
                unsafe { panns_allow_list_free(list) };
            }
        }
        // PANNS_FILTER_ALL and a NULL filter: every item, as an unfiltered search.
        let q = &data(1, 4)[..];
        for all in [None, Some(&filter(PannsFilterKind::PANNS_FILTER_ALL))] {
            let list = prepare(idx, all);
            // SAFETY: a live list.
            assert_eq!(unsafe { panns_allow_list_len(list) }, N);
            let got = search(idx, q, 10, 50, Some(&list_filter(list))).unwrap();
            assert_eq!(got, search(idx, q, 10, 50, None).unwrap());
            // SAFETY: a live list, not used again.
            unsafe { panns_allow_list_free(list) };
        }
        // An empty allow-list: no results, no error.
        let list = prepare(idx, Some(&filter(PannsFilterKind::PANNS_FILTER_ALLOW_IDS)));
        // SAFETY: a live list.
        assert_eq!(unsafe { panns_allow_list_len(list) }, 0);
        assert!(
            search(idx, q, 10, 50, Some(&list_filter(list)))
                .unwrap()
                .0
                .is_empty()
        );
        // SAFETY: a live list, not used again; a live index.
        unsafe {
            panns_allow_list_free(list);
            panns_index_free(idx);
        }
    }
}

#[test]
fn allow_list_errors_name_what_is_wrong() {
    let (idx, _) = index(false);
    let q = &data(1, 3)[..];
    let mut list = std::ptr::dangling_mut::<PannsAllowList>();
    // SAFETY: every pointer is NULL, live or writable; `*out` is NULL after each failure.
    unsafe {
        // A predicate cannot be prepared (even with its callback set).
        let mut pred = filter(PannsFilterKind::PANNS_FILTER_PREDICATE);
        pred.predicate = Some(allow_from_vec);
        expect(
            panns_allow_list_new(idx, &pred, &mut list),
            PANNS_INVALID_ARGUMENT,
            "PANNS_FILTER_PREDICATE filter cannot be prepared",
        );
        assert!(list.is_null());
        // The checks of the search's filter.
        let words = vec![0u64; N.div_ceil(64)];
        let mut f = filter(PannsFilterKind::PANNS_FILTER_ALLOW_BITMAP);
        f.bits = words.as_ptr();
        f.n_bits = N - 1;
        expect(
            panns_allow_list_new(idx, &f, &mut list),
            PANNS_INVALID_ARGUMENT,
            &format!("holds {} bits, the index has {N} items", N - 1),
        );
        f.bits = null();
        f.n_bits = N;
        expect(
            panns_allow_list_new(idx, &f, &mut list),
            PANNS_NULL_POINTER,
            "filter->bits",
        );
        let bad = [1u32, N as u32 + 2];
        let mut f = filter(PannsFilterKind::PANNS_FILTER_DENY_IDS);
        f.ids = bad.as_ptr();
        f.n_ids = 2;
        expect(
            panns_allow_list_new(idx, &f, &mut list),
            PANNS_OUT_OF_RANGE,
            &format!("filter id {} (ids[1])", N + 2),
        );
        f.kind = 7;
        expect(
            panns_allow_list_new(idx, &f, &mut list),
            PANNS_INVALID_ARGUMENT,
            "filter kind 7 is unknown (PANNS_FILTER_ALL = 0 .. PANNS_FILTER_ALLOW_LIST = 6)",
        );
        expect(
            panns_allow_list_new(null(), null(), &mut list),
            PANNS_NULL_POINTER,
            "index",
        );
        assert!(list.is_null());
        expect(
            panns_allow_list_new(idx, null(), null_mut()),
            PANNS_NULL_POINTER,
            "out",
        );
        // NULL handles: 0, and free is a no-op.
        assert_eq!(panns_allow_list_len(null()), 0);
        assert_eq!(panns_allow_list_items(null()), 0);
        panns_allow_list_free(null_mut());

        // A NULL list in the filter.
        let none = list_filter(null());
        expect(
            search(idx, q, 5, 0, Some(&none)).unwrap_err(),
            PANNS_NULL_POINTER,
            "filter->user_data",
        );
        expect(
            panns_allow_list_new(idx, &none, &mut list),
            PANNS_NULL_POINTER,
            "filter->user_data",
        );
        // A list made for an index of another item count: every search refuses it.
        let other_rows = data(N / 2, 9);
        let (mut b, mut other) = (null_mut(), null_mut());
        ok(panns_builder_new(DIM as u32, 0, &mut b));
        ok(panns_builder_add_batch(b, other_rows.as_ptr(), N / 2, DIM));
        ok(panns_builder_build(b, null(), &mut other));
        panns_builder_free(b);
        let foreign = prepare(other, None);
        assert_eq!(panns_allow_list_items(foreign), N / 2);
        let f = list_filter(foreign);
        let msg = format!("made for an index of {} items; this one has {N}", N / 2);
        expect(
            search(idx, q, 5, 0, Some(&f)).unwrap_err(),
            PANNS_INVALID_ARGUMENT,
            &msg,
        );
        expect(
            batch(idx, q, 5, 0, &f).unwrap_err(),
            PANNS_INVALID_ARGUMENT,
            &msg,
        );
        expect(
            range(idx, q, 1.0, 5, 0, Some(&f)).unwrap_err(),
            PANNS_INVALID_ARGUMENT,
            &msg,
        );
        expect(
            panns_allow_list_new(idx, &f, &mut list),
            PANNS_INVALID_ARGUMENT,
            &msg,
        );
        // The list outlives the index it was made for, and serves it while both live.
        let (got, _, _) = search(other, q, 5, 0, Some(&f)).unwrap();
        assert_eq!(got.len(), 5);
        panns_index_free(other);
        // Through the `_e` twin: this call's message.
        let mut err = null_mut();
        let st = panns_allow_list_new_e(idx, &pred, &mut list, &mut err);
        assert_eq!(st, PANNS_INVALID_ARGUMENT);
        assert!(
            CStr::from_ptr(err)
                .to_str()
                .unwrap()
                .contains("cannot be prepared")
        );
        panns_error_free(err);
        panns_allow_list_free(foreign);
        panns_index_free(idx);
    }
}
