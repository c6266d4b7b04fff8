//! The C ABI called from Rust: every entry point with NULLs, bad sizes and bad codes
//! returns an error status with a message and never panics; the happy paths agree
//! with panns-core.

use panns::PannsStatus::{self, *};
use panns::builder::*;
use panns::index::*;
use panns::*;
use std::ffi::{CStr, CString, c_char};
use std::ptr::{null, null_mut};

fn last_error() -> String {
    // SAFETY: `panns_last_error_message` never returns NULL and the text stays valid
    // until the next panns call on this thread; it is copied at once.
    unsafe { CStr::from_ptr(panns_last_error_message()) }
        .to_str()
        .unwrap()
        .to_string()
}

/// Asserts a status and, for an error, a message containing `needle`.
#[track_caller]
fn expect(status: PannsStatus, want: PannsStatus, needle: &str) {
    let msg = last_error();
    assert_eq!(status, want, "message: {msg}");
    if want == PANNS_OK {
        assert_eq!(msg, "");
    } else {
        assert!(
            msg.to_lowercase().contains(&needle.to_lowercase()),
            "message {msg:?} lacks {needle:?}"
        );
    }
}

const DIM: usize = 8;

fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut r = panns_core::rng::Rng::new(seed);
    (0..n * DIM).map(|_| r.gaussian() as f32).collect()
}

/// A builder holding `n` random vectors.
fn builder(n: usize, metric: u32) -> *mut PannsBuilder {
    let mut b = null_mut();
    // SAFETY: valid out-pointer; `rows` holds n * DIM floats.
    unsafe {
        expect(panns_builder_new(DIM as u32, metric, &mut b), PANNS_OK, "");
        let rows = data(n, 7);
        expect(
            panns_builder_add_batch(b, rows.as_ptr(), n, DIM),
            PANNS_OK,
            "",
        );
    }
    b
}

/// An index over `n` random vectors.
fn index(n: usize, metric: u32) -> *mut PannsIndex {
    let b = builder(n, metric);
    let mut idx = null_mut();
    let opts = PannsBuildOptions {
        n_trees: 4,
        ..panns_build_options_default()
    };
    // SAFETY: live builder, valid options and out-pointer.
    unsafe {
        expect(panns_builder_build(b, &opts, &mut idx), PANNS_OK, "");
        panns_builder_free(b);
    }
    assert!(!idx.is_null());
    idx
}

#[test]
fn version_and_defaults() {
    // SAFETY: a static NUL-terminated string.
    let v = unsafe { CStr::from_ptr(panns_version()) };
    assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    let o = panns_build_options_default();
    assert_eq!(o.to_params().unwrap(), panns_core::BuildParams::default());
    assert_eq!((o.split, o.threads, o.seed), (0, 0, 42));
    assert_eq!(PANNS_OPEN_VERIFY, 1);
    assert_eq!(PANNS_PANIC as i32, 12);
    assert_eq!(std::mem::size_of::<PannsStatus>(), 4);
}

#[test]
fn builder_rejects_bad_arguments() {
    // SAFETY: every pointer passed is NULL or valid for its use.
    unsafe {
        let mut b = null_mut();
        expect(
            panns_builder_new(4, 0, null_mut()),
            PANNS_NULL_POINTER,
            "out",
        );
        expect(
            panns_builder_new(0, 0, &mut b),
            PANNS_INVALID_ARGUMENT,
            "dimension 0",
        );
        assert!(b.is_null());
        expect(
            panns_builder_new(1 << 20, 0, &mut b),
            PANNS_INVALID_ARGUMENT,
            "dimension",
        );
        expect(
            panns_builder_new(4, 3, &mut b),
            PANNS_INVALID_ARGUMENT,
            "metric code 3",
        );
        assert!(b.is_null());

        let b = builder(0, 1);
        let v = [1.0f32; DIM];
        let mut id = 99u32;
        expect(
            panns_builder_add(null_mut(), v.as_ptr(), DIM, &mut id),
            PANNS_NULL_POINTER,
            "builder",
        );
        expect(
            panns_builder_add(b, null(), DIM, &mut id),
            PANNS_NULL_POINTER,
            "vec",
        );
        expect(
            panns_builder_add(b, v.as_ptr(), DIM - 1, &mut id),
            PANNS_DIMENSION_MISMATCH,
            "expected 8",
        );
        expect(
            panns_builder_add(b, v.as_ptr(), 2 * DIM, &mut id),
            PANNS_DIMENSION_MISMATCH,
            "got 16",
        );
        let nan = [f32::NAN; DIM];
        expect(
            panns_builder_add(b, nan.as_ptr(), DIM, &mut id),
            PANNS_NON_FINITE,
            "NaN",
        );
        let zero = [0.0f32; DIM];
        expect(
            panns_builder_add(b, zero.as_ptr(), DIM, &mut id),
            PANNS_ZERO_VECTOR,
            "zero",
        );
        assert_eq!(id, 99);
        assert_eq!(panns_builder_len(b), 0);
        // Misaligned vector pointer.
        let raw = [0u32; DIM + 1];
        let mis = (raw.as_ptr() as *const u8).add(1) as *const f32;
        expect(
            panns_builder_add(b, mis, DIM, &mut id),
            PANNS_INVALID_ARGUMENT,
            "aligned",
        );

        expect(panns_builder_add(b, v.as_ptr(), DIM, &mut id), PANNS_OK, "");
        assert_eq!(id, 0);
        expect(
            panns_builder_add(b, v.as_ptr(), DIM, null_mut()),
            PANNS_OK,
            "",
        );
        assert_eq!(panns_builder_len(b), 2);
        assert_eq!(panns_builder_len(null()), 0);

        // Batches: all or nothing, errors name the row.
        let mut rows = data(3, 1);
        expect(
            panns_builder_add_batch(null_mut(), rows.as_ptr(), 3, DIM),
            PANNS_NULL_POINTER,
            "builder",
        );
        expect(
            panns_builder_add_batch(b, null(), 3, DIM),
            PANNS_NULL_POINTER,
            "rows",
        );
        expect(
            panns_builder_add_batch(b, rows.as_ptr(), 3, DIM + 1),
            PANNS_DIMENSION_MISMATCH,
            "expected 8",
        );
        expect(
            panns_builder_add_batch(b, rows.as_ptr(), usize::MAX, DIM),
            PANNS_INVALID_ARGUMENT,
            "overflows",
        );
        expect(
            panns_builder_add_batch(b, rows.as_ptr(), usize::MAX / DIM, DIM),
            PANNS_INVALID_ARGUMENT,
            "too large",
        );
        rows[DIM + 3] = f32::INFINITY;
        expect(
            panns_builder_add_batch(b, rows.as_ptr(), 3, DIM),
            PANNS_NON_FINITE,
            "component 3 of vector 3",
        );
        assert_eq!(panns_builder_len(b), 2);
        expect(
            panns_builder_add_batch(b, rows.as_ptr(), 0, DIM),
            PANNS_OK,
            "",
        );

        // Files.
        let path = CString::new("/nonexistent/x.fvecs").unwrap();
        expect(
            panns_builder_add_file(null_mut(), path.as_ptr(), null(), null_mut()),
            PANNS_NULL_POINTER,
            "builder",
        );
        expect(
            panns_builder_add_file(b, null(), null(), null_mut()),
            PANNS_NULL_POINTER,
            "path",
        );
        let bad_utf8 = [0xffu8, 0xfe, 0];
        expect(
            panns_builder_add_file(b, bad_utf8.as_ptr() as *const c_char, null(), null_mut()),
            PANNS_INVALID_ARGUMENT,
            "UTF-8",
        );

        // Build: bad options leave the builder untouched.
        let mut idx = null_mut();
        expect(
            panns_builder_build(b, null(), null_mut()),
            PANNS_NULL_POINTER,
            "out",
        );
        expect(
            panns_builder_build(null_mut(), null(), &mut idx),
            PANNS_NULL_POINTER,
            "builder",
        );
        for (opts, needle) in [
            (
                PannsBuildOptions {
                    n_trees: 0,
                    ..panns_build_options_default()
                },
                "n_trees",
            ),
            (
                PannsBuildOptions {
                    leaf_size: 0,
                    ..panns_build_options_default()
                },
                "leaf_size",
            ),
            (
                PannsBuildOptions {
                    pool_size: 0,
                    ..panns_build_options_default()
                },
                "pool_size",
            ),
            (
                PannsBuildOptions {
                    candidates: 0,
                    ..panns_build_options_default()
                },
                "candidates",
            ),
            (
                PannsBuildOptions {
                    split: 2,
                    ..panns_build_options_default()
                },
                "split",
            ),
            (
                PannsBuildOptions {
                    threads: u32::MAX,
                    ..panns_build_options_default()
                },
                "threads",
            ),
        ] {
            expect(
                panns_builder_build(b, &opts, &mut idx),
                PANNS_INVALID_ARGUMENT,
                needle,
            );
            assert!(idx.is_null());
            assert_eq!(panns_builder_len(b), 2);
        }
        expect(panns_builder_build(b, null(), &mut idx), PANNS_OK, "");
        assert!(!idx.is_null());
        assert_eq!(panns_builder_len(b), 0, "the vectors moved into the index");
        assert_eq!(panns_index_len(idx), 2);
        let mut idx2 = null_mut();
        expect(
            panns_builder_build(b, null(), &mut idx2),
            PANNS_EMPTY,
            "empty",
        );
        assert!(idx2.is_null());
        // The emptied builder is still usable.
        expect(panns_builder_add(b, v.as_ptr(), DIM, &mut id), PANNS_OK, "");
        assert_eq!(id, 0);
        panns_index_free(idx);
        panns_builder_free(b);
        panns_builder_free(null_mut());
        panns_index_free(null_mut());
    }
}

#[test]
fn search_matches_core_and_checks_arguments() {
    let n = 300;
    let idx = index(n, 0);
    let q = data(1, 99);
    let mut ids = [0u32; 10];
    let mut ds = [0f32; 10];
    let mut count = 0usize;
    // SAFETY: every pointer passed is NULL or valid for its use.
    unsafe {
        assert_eq!(panns_index_len(idx), n);
        assert_eq!(panns_index_dim(idx), DIM as u32);
        assert_eq!(panns_index_metric(idx), 0);
        assert_eq!(panns_index_n_trees(idx), 4);
        assert_eq!(panns_index_len(null()), 0);
        assert_eq!(panns_index_dim(null()), 0);
        assert_eq!(panns_index_metric(null()), u32::MAX);
        assert_eq!(panns_index_n_trees(null()), 0);

        let (ip, dp, cp) = (ids.as_mut_ptr(), ds.as_mut_ptr(), &mut count as *mut usize);
        expect(
            panns_index_search(idx, q.as_ptr(), DIM, 10, 0, ip, dp, cp),
            PANNS_OK,
            "",
        );
        assert_eq!(count, 10);
        let want = (*idx)
            .0
            .search(&q, &panns_core::SearchParams::new(10))
            .unwrap();
        assert_eq!(ids.to_vec(), want.iter().map(|h| h.id).collect::<Vec<_>>());
        assert_eq!(
            ds.to_vec(),
            want.iter().map(|h| h.distance).collect::<Vec<_>>()
        );
        assert!(ds.windows(2).all(|w| w[0] <= w[1]));
        expect(
            panns_index_search(idx, q.as_ptr(), DIM, 10, 0, ip, null_mut(), cp),
            PANNS_OK,
            "",
        );

        // Exact search agrees with a brute-force scan, and a full budget finds it too.
        expect(
            panns_index_linear_search(idx, q.as_ptr(), DIM, 10, ip, dp, cp),
            PANNS_OK,
            "",
        );
        let mut truth: Vec<(f32, u32)> = (0..n as u32)
            .map(|i| {
                let v = (*idx).0.vector(i as usize).unwrap();
                let d = v
                    .iter()
                    .zip(&q)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f32>()
                    .sqrt();
                (d, i)
            })
            .collect();
        truth.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        assert_eq!(
            ids.to_vec(),
            truth[..10].iter().map(|t| t.1).collect::<Vec<_>>()
        );
        let exact = ids;
        expect(
            panns_index_search(idx, q.as_ptr(), DIM, 10, n, ip, dp, cp),
            PANNS_OK,
            "",
        );
        assert_eq!(ids, exact);

        for f in [
            |i, q, d, k, ip, dp, cp| panns_index_search(i, q, d, k, 0, ip, dp, cp),
            |i, q, d, k, ip, dp, cp| panns_index_linear_search(i, q, d, k, ip, dp, cp),
        ] {
            expect(
                f(null(), q.as_ptr(), DIM, 10, ip, dp, cp),
                PANNS_NULL_POINTER,
                "index",
            );
            expect(
                f(idx, null(), DIM, 10, ip, dp, cp),
                PANNS_NULL_POINTER,
                "query",
            );
            expect(
                f(idx, q.as_ptr(), DIM, 10, null_mut(), dp, cp),
                PANNS_NULL_POINTER,
                "out_ids",
            );
            expect(
                f(idx, q.as_ptr(), DIM, 10, ip, dp, null_mut()),
                PANNS_NULL_POINTER,
                "out_count",
            );
            expect(
                f(idx, q.as_ptr(), DIM, 0, ip, dp, cp),
                PANNS_INVALID_ARGUMENT,
                "k must be at least 1",
            );
            expect(
                f(idx, q.as_ptr(), DIM - 1, 10, ip, dp, cp),
                PANNS_DIMENSION_MISMATCH,
                "expected 8",
            );
            let nan = [f32::NAN; DIM];
            expect(
                f(idx, nan.as_ptr(), DIM, 10, ip, dp, cp),
                PANNS_NON_FINITE,
                "NaN",
            );
        }

        // k larger than the index: min(k, len) results.
        let small = index(3, 1);
        expect(
            panns_index_search(small, q.as_ptr(), DIM, 10, 0, ip, dp, cp),
            PANNS_OK,
            "",
        );
        assert_eq!(count, 3);
        let zero = [0.0f32; DIM];
        expect(
            panns_index_search(small, zero.as_ptr(), DIM, 10, 0, ip, dp, cp),
            PANNS_ZERO_VECTOR,
            "zero",
        );

        // get_vector.
        let mut v = [0f32; DIM];
        expect(
            panns_index_get_vector(small, 2, v.as_mut_ptr(), DIM),
            PANNS_OK,
            "",
        );
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!(
            (norm - 1.0).abs() < 1e-5,
            "angular vectors are stored normalised"
        );
        expect(
            panns_index_get_vector(small, 3, v.as_mut_ptr(), DIM),
            PANNS_OUT_OF_RANGE,
            "item id 3",
        );
        expect(
            panns_index_get_vector(small, u32::MAX, v.as_mut_ptr(), DIM),
            PANNS_OUT_OF_RANGE,
            "out of range",
        );
        expect(
            panns_index_get_vector(small, 0, v.as_mut_ptr(), DIM - 1),
            PANNS_BUFFER_TOO_SMALL,
            "holds 7",
        );
        expect(
            panns_index_get_vector(small, 0, v.as_mut_ptr(), DIM + 1),
            PANNS_DIMENSION_MISMATCH,
            "expected 8",
        );
        expect(
            panns_index_get_vector(small, 0, null_mut(), DIM),
            PANNS_NULL_POINTER,
            "out",
        );
        expect(
            panns_index_get_vector(null(), 0, v.as_mut_ptr(), DIM),
            PANNS_NULL_POINTER,
            "index",
        );
        panns_index_free(small);
        panns_index_free(idx);
    }
}

#[test]
fn batch_search_pads_and_names_the_bad_row() {
    let idx = index(5, 0);
    let nq = 4;
    let k = 8;
    let mut qs = data(nq, 3);
    let mut ids = vec![0u32; nq * k];
    let mut ds = vec![0f32; nq * k];
    // SAFETY: every pointer passed is NULL or valid for its use.
    unsafe {
        let (ip, dp) = (ids.as_mut_ptr(), ds.as_mut_ptr());
        expect(
            panns_index_search_batch(idx, qs.as_ptr(), nq, DIM, k, 0, ip, dp),
            PANNS_OK,
            "",
        );
        for r in 0..nq {
            let row = &ids[r * k..(r + 1) * k];
            let mut single = [0u32; 8];
            let mut count = 0;
            panns_index_search(
                idx,
                qs[r * DIM..].as_ptr(),
                DIM,
                k,
                0,
                single.as_mut_ptr(),
                null_mut(),
                &mut count,
            );
            assert_eq!(count, 5);
            assert_eq!(&row[..5], &single[..5]);
            assert_eq!(&row[5..], &[u32::MAX; 3]);
            assert!(
                ds[r * k + 5..(r + 1) * k]
                    .iter()
                    .all(|d| *d == f32::INFINITY)
            );
            assert!(ds[r * k..r * k + 5].iter().all(|d| d.is_finite()));
        }
        expect(
            panns_index_search_batch(idx, qs.as_ptr(), nq, DIM, k, 0, ip, null_mut()),
            PANNS_OK,
            "",
        );
        expect(
            panns_index_search_batch(idx, qs.as_ptr(), 0, DIM, k, 0, ip, dp),
            PANNS_OK,
            "",
        );
        expect(
            panns_index_search_batch(null(), qs.as_ptr(), nq, DIM, k, 0, ip, dp),
            PANNS_NULL_POINTER,
            "index",
        );
        expect(
            panns_index_search_batch(idx, null(), nq, DIM, k, 0, ip, dp),
            PANNS_NULL_POINTER,
            "queries",
        );
        expect(
            panns_index_search_batch(idx, qs.as_ptr(), nq, DIM, k, 0, null_mut(), dp),
            PANNS_NULL_POINTER,
            "out_ids",
        );
        expect(
            panns_index_search_batch(idx, qs.as_ptr(), nq, DIM, 0, 0, ip, dp),
            PANNS_INVALID_ARGUMENT,
            "k must be",
        );
        expect(
            panns_index_search_batch(idx, qs.as_ptr(), nq, DIM + 1, k, 0, ip, dp),
            PANNS_DIMENSION_MISMATCH,
            "expected 8",
        );
        expect(
            panns_index_search_batch(idx, qs.as_ptr(), usize::MAX, DIM, k, 0, ip, dp),
            PANNS_INVALID_ARGUMENT,
            "overflows",
        );
        expect(
            panns_index_search_batch(idx, qs.as_ptr(), nq, DIM, usize::MAX, 0, ip, dp),
            PANNS_INVALID_ARGUMENT,
            "overflows",
        );
        qs[2 * DIM + 1] = f32::NAN;
        expect(
            panns_index_search_batch(idx, qs.as_ptr(), nq, DIM, k, 0, ip, dp),
            PANNS_NON_FINITE,
            "query row 2",
        );
        panns_index_free(idx);
    }
}

#[test]
fn files_reject_bad_paths() {
    let idx = index(20, 0);
    let missing = CString::new("/nonexistent-dir/none.panns").unwrap();
    let bad_utf8 = [b'/', 0xff, 0];
    let empty = c"";
    // SAFETY: every pointer passed is NULL or valid for its use.
    unsafe {
        let mut out = null_mut();
        expect(
            panns_index_save(null(), missing.as_ptr()),
            PANNS_NULL_POINTER,
            "index",
        );
        expect(panns_index_save(idx, null()), PANNS_NULL_POINTER, "path");
        expect(
            panns_index_save(idx, bad_utf8.as_ptr() as *const c_char),
            PANNS_INVALID_ARGUMENT,
            "UTF-8",
        );
        expect(
            panns_index_save(idx, empty.as_ptr()),
            PANNS_INVALID_ARGUMENT,
            "empty",
        );
        expect(
            panns_index_open(missing.as_ptr(), 0, null_mut()),
            PANNS_NULL_POINTER,
            "out",
        );
        expect(
            panns_index_open(null(), 0, &mut out),
            PANNS_NULL_POINTER,
            "path",
        );
        expect(
            panns_index_open(missing.as_ptr(), 4, &mut out),
            PANNS_INVALID_ARGUMENT,
            "flag",
        );
        assert!(out.is_null());
        panns_index_free(idx);
    }
}

#[test]
fn errors_are_per_thread_and_cleared_by_success() {
    // SAFETY: NULL out-pointer is checked.
    let st = unsafe { panns_builder_new(4, 0, null_mut()) };
    assert_eq!(st, PANNS_NULL_POINTER);
    assert!(!last_error().is_empty());
    std::thread::spawn(|| assert_eq!(last_error(), ""))
        .join()
        .unwrap();
    assert!(last_error().contains("out"));
    // Accessors leave the message alone; a successful status call clears it.
    // SAFETY: NULL is allowed.
    assert_eq!(unsafe { panns_index_len(null()) }, 0);
    assert!(!last_error().is_empty());
    let mut b = null_mut();
    // SAFETY: valid out-pointer.
    unsafe {
        expect(panns_builder_new(4, 0, &mut b), PANNS_OK, "");
        panns_builder_free(b);
    }
}

#[test]
fn panics_are_caught_at_the_boundary() {
    let st = panns::error::guard(|| -> Result<(), FfiError> { panic!("boom {}", 42) });
    assert_eq!(st, PANNS_PANIC);
    assert!(last_error().contains("boom 42"), "{}", last_error());
    assert_eq!(panns::error::guard(|| Ok(())), PANNS_OK);
    assert_eq!(last_error(), "");
}

fn cstr(p: &std::path::Path) -> CString {
    CString::new(p.to_str().unwrap()).unwrap()
}

#[test]
fn save_open_round_trip_and_hostile_files() {
    let dir = tempfile::tempdir().unwrap();
    let idx = index(500, 1);
    let path = dir.path().join("a.panns");
    let q = data(1, 5);
    // SAFETY: every pointer passed is NULL or valid for its use.
    unsafe {
        expect(panns_index_save(idx, cstr(&path).as_ptr()), PANNS_OK, "");
        for flags in [0, PANNS_OPEN_VERIFY] {
            let mut m = null_mut();
            expect(
                panns_index_open(cstr(&path).as_ptr(), flags, &mut m),
                PANNS_OK,
                "",
            );
            assert!((*m).0.storage_description().contains(".panns"));
            assert_eq!(panns_index_len(m), 500);
            assert_eq!(panns_index_dim(m), DIM as u32);
            assert_eq!(panns_index_metric(m), 1);
            assert_eq!(panns_index_n_trees(m), 4);
            let (mut a, mut b) = ([0u32; 10], [0u32; 10]);
            let (mut da, mut db) = ([0f32; 10], [0f32; 10]);
            let (mut ca, mut cb) = (0, 0);
            panns_index_search(
                idx,
                q.as_ptr(),
                DIM,
                10,
                50,
                a.as_mut_ptr(),
                da.as_mut_ptr(),
                &mut ca,
            );
            expect(
                panns_index_search(
                    m,
                    q.as_ptr(),
                    DIM,
                    10,
                    50,
                    b.as_mut_ptr(),
                    db.as_mut_ptr(),
                    &mut cb,
                ),
                PANNS_OK,
                "",
            );
            assert_eq!(
                (a, da, ca),
                (b, db, cb),
                "the mapped index searches like the owned one"
            );
            // A mapped index saves too, to an identical file.
            let copy = dir.path().join("copy.panns");
            expect(panns_index_save(m, cstr(&copy).as_ptr()), PANNS_OK, "");
            assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&path).unwrap());
            panns_index_free(m);
        }

        let mut m = null_mut();
        let missing = dir.path().join("missing.panns");
        expect(
            panns_index_open(cstr(&missing).as_ptr(), 0, &mut m),
            PANNS_IO,
            "missing.panns",
        );
        assert!(m.is_null());
        let garbage = dir.path().join("garbage.panns");
        std::fs::write(&garbage, vec![0xabu8; 4096]).unwrap();
        expect(
            panns_index_open(cstr(&garbage).as_ptr(), 0, &mut m),
            PANNS_CORRUPT,
            "not a panns index",
        );
        let bytes = std::fs::read(&path).unwrap();
        let truncated = dir.path().join("truncated.panns");
        std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
        expect(
            panns_index_open(cstr(&truncated).as_ptr(), 0, &mut m),
            PANNS_CORRUPT,
            "truncated.panns",
        );
        // One flipped bit in the vectors: only the checksum notices.
        let mut flipped = bytes.clone();
        let at = flipped.len() - 8;
        flipped[at] ^= 1;
        let damaged = dir.path().join("damaged.panns");
        std::fs::write(&damaged, &flipped).unwrap();
        expect(
            panns_index_open(cstr(&damaged).as_ptr(), PANNS_OPEN_VERIFY, &mut m),
            PANNS_CORRUPT,
            "checksum",
        );
        assert!(m.is_null());
        let dir_path = cstr(dir.path());
        expect(panns_index_open(dir_path.as_ptr(), 0, &mut m), PANNS_IO, "");
        let unwritable = dir.path().join("no/such/dir/x.panns");
        expect(
            panns_index_save(idx, cstr(&unwritable).as_ptr()),
            PANNS_IO,
            "x.panns",
        );
        panns_index_free(idx);
    }
}

#[test]
fn add_file_reads_datasets() {
    let dir = tempfile::tempdir().unwrap();
    let rows = data(50, 11);
    let mut fvecs = Vec::new();
    for r in rows.chunks(DIM) {
        fvecs.extend_from_slice(&(DIM as i32).to_le_bytes());
        r.iter()
            .for_each(|x| fvecs.extend_from_slice(&x.to_le_bytes()));
    }
    let fv = dir.path().join("d.fvecs");
    std::fs::write(&fv, &fvecs).unwrap();
    let raw = dir.path().join("d.f32");
    std::fs::write(
        &raw,
        rows.iter()
            .flat_map(|x| x.to_le_bytes())
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    // SAFETY: every pointer passed is NULL or valid for its use.
    unsafe {
        let b = builder(0, 0);
        let mut added = 0usize;
        expect(
            panns_builder_add_file(b, cstr(&fv).as_ptr(), null(), &mut added),
            PANNS_OK,
            "",
        );
        assert_eq!(added, 50);
        expect(
            panns_builder_add_file(b, cstr(&raw).as_ptr(), c"ignored".as_ptr(), null_mut()),
            PANNS_OK,
            "",
        );
        assert_eq!(panns_builder_len(b), 100);
        let mut v = [0f32; DIM];
        let mut idx = null_mut();
        expect(panns_builder_build(b, null(), &mut idx), PANNS_OK, "");
        expect(
            panns_index_get_vector(idx, 57, v.as_mut_ptr(), DIM),
            PANNS_OK,
            "",
        );
        assert_eq!(&v[..], &rows[7 * DIM..8 * DIM]);
        panns_index_free(idx);

        let other = null_mut::<PannsBuilder>();
        let mut other = other;
        expect(
            panns_builder_new(DIM as u32 + 1, 0, &mut other),
            PANNS_OK,
            "",
        );
        expect(
            panns_builder_add_file(other, cstr(&fv).as_ptr(), null(), &mut added),
            PANNS_DIMENSION_MISMATCH,
            "d.fvecs",
        );
        assert_eq!(panns_builder_len(other), 0);
        panns_builder_free(other);

        let missing = dir.path().join("none.fvecs");
        expect(
            panns_builder_add_file(b, cstr(&missing).as_ptr(), null(), null_mut()),
            PANNS_IO,
            "none.fvecs",
        );
        let broken = dir.path().join("broken.fvecs");
        std::fs::write(&broken, &fvecs[..fvecs.len() - 3]).unwrap();
        expect(
            panns_builder_add_file(b, cstr(&broken).as_ptr(), null(), null_mut()),
            PANNS_CORRUPT,
            "broken.fvecs",
        );
        let unknown = dir.path().join("d.xyz");
        std::fs::write(&unknown, b"1,2").unwrap();
        expect(
            panns_builder_add_file(b, cstr(&unknown).as_ptr(), null(), null_mut()),
            PANNS_INVALID_ARGUMENT,
            "format",
        );
        assert_eq!(panns_builder_len(b), 0);
        panns_builder_free(b);
    }
}

/// The graph array of an index, read back from its serialized bytes.
fn graph_of(idx: *const PannsIndex) -> Vec<u32> {
    let mut len = 0;
    // SAFETY: a live index; a buffer of the length it reports.
    unsafe {
        expect(panns_index_serialized_len(idx, &mut len), PANNS_OK, "");
        let mut buf = vec![0u8; len];
        expect(
            panns_index_serialize(idx, buf.as_mut_ptr(), len, &mut len),
            PANNS_OK,
            "",
        );
        let ix = panns_io::index_from_slice(&buf, &Default::default()).unwrap();
        ix.parts().graph.to_vec()
    }
}

#[test]
fn graph_flags_choose_the_exact_build() {
    // The same index built from Rust with codes (the default) and exact distances.
    let mut b = panns_core::IndexBuilder::new(DIM, panns_core::Metric::Euclidean).unwrap();
    b.add_batch(&data(2000, 7)).unwrap();
    let params = panns_core::BuildParams {
        n_trees: 4,
        ..Default::default()
    };
    let rust = b.build(&params).unwrap();
    let graph = |quantized| {
        let mut ix = rust.clone();
        let p = panns_core::GraphParams {
            degree: 8,
            quantized,
            ..Default::default()
        };
        ix.build_graph(&p).unwrap();
        ix.parts().graph.to_vec()
    };
    let (coded, exact) = (graph(true), graph(false));
    assert_ne!(coded, exact, "the two builds should differ on this data");
    // SAFETY: live handles.
    unsafe {
        let plain = index(2000, 0);
        expect(panns_index_build_graph(plain, 8, 0), PANNS_OK, "");
        assert_eq!(graph_of(plain), coded);
        let flagged = index(2000, 0);
        expect(
            panns_index_build_graph_flags(flagged, 8, 0, PANNS_GRAPH_EXACT_BUILD),
            PANNS_OK,
            "",
        );
        assert_eq!(graph_of(flagged), exact);
        expect(
            panns_index_build_graph_flags(flagged, 8, 0, 0),
            PANNS_OK,
            "",
        );
        assert_eq!(graph_of(flagged), coded);
        expect(
            panns_index_build_graph_flags(flagged, 8, 0, 6),
            PANNS_INVALID_ARGUMENT,
            "unknown bits 0x6",
        );
        expect(
            panns_index_build_graph_flags(null_mut(), 8, 0, 0),
            PANNS_NULL_POINTER,
            "index",
        );
        panns_index_free(plain);
        panns_index_free(flagged);
    }
}

#[test]
fn graph_is_built_saved_and_reopened() {
    let idx = index(600, 0);
    let dir = tempfile::tempdir().unwrap();
    let path = cstr(&dir.path().join("g.panns"));
    let q = data(1, 99);
    // SAFETY: live handles, valid buffers of the stated lengths.
    unsafe {
        assert_eq!(panns_index_graph_degree(idx), 0);
        expect(
            panns_index_build_graph(null_mut(), 8, 0),
            PANNS_NULL_POINTER,
            "index",
        );
        expect(
            panns_index_build_graph(idx, 300, 0),
            PANNS_INVALID_ARGUMENT,
            "degree",
        );
        expect(panns_index_build_graph(idx, 8, 1), PANNS_OK, "");
        assert_eq!(panns_index_graph_degree(idx), 8);
        expect(panns_index_save(idx, path.as_ptr()), PANNS_OK, "");
        let mut opened = null_mut();
        expect(
            panns_index_open(path.as_ptr(), 1, &mut opened),
            PANNS_OK,
            "",
        );
        assert_eq!(panns_index_graph_degree(opened), 8);
        // A mapped index takes a new graph too (kept in memory beside the mapping).
        let mut regraphed = null_mut();
        expect(
            panns_index_open(path.as_ptr(), 0, &mut regraphed),
            PANNS_OK,
            "",
        );
        expect(panns_index_build_graph(regraphed, 12, 0), PANNS_OK, "");
        assert_eq!(panns_index_graph_degree(regraphed), 12);
        let path12 = cstr(&dir.path().join("graph12.panns"));
        expect(panns_index_save(regraphed, path12.as_ptr()), PANNS_OK, "");
        panns_index_free(regraphed);
        expect(
            panns_index_open(path12.as_ptr(), PANNS_OPEN_VERIFY, &mut regraphed),
            PANNS_OK,
            "",
        );
        assert_eq!(panns_index_graph_degree(regraphed), 12);
        panns_index_free(regraphed);
        let (mut a, mut b) = ([0u32; 10], [0u32; 10]);
        let (mut da, mut db) = ([0f32; 10], [0f32; 10]);
        let (mut na, mut nb) = (0, 0);
        expect(
            panns_index_search(
                idx,
                q.as_ptr(),
                DIM,
                10,
                20,
                a.as_mut_ptr(),
                da.as_mut_ptr(),
                &mut na,
            ),
            PANNS_OK,
            "",
        );
        expect(
            panns_index_search(
                opened,
                q.as_ptr(),
                DIM,
                10,
                20,
                b.as_mut_ptr(),
                db.as_mut_ptr(),
                &mut nb,
            ),
            PANNS_OK,
            "",
        );
        assert_eq!((na, a, da), (nb, b, db));
        panns_index_free(opened);
        panns_index_free(idx);
    }
}
