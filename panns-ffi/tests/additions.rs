//! The 1.1 additions of the C ABI: indexes to and from bytes, search statistics,
//! status strings, per-call errors (`_e` twins), dataset probing/reading, the silent
//! panic hook and the frozen layout of the public structs.

use panns::PannsStatus::{self, *};
use panns::builder::*;
use panns::dataset::*;
use panns::index::*;
use panns::twins::*;
use panns::*;
use std::ffi::{CStr, CString, c_char};
use std::ptr::{null, null_mut};

const DIM: usize = 8;

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

fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut r = panns_core::rng::Rng::new(seed);
    (0..n * DIM).map(|_| r.gaussian() as f32).collect()
}

/// An index of `n` Gaussian vectors with `n_trees` trees.
fn index(n: usize, n_trees: u32) -> *mut PannsIndex {
    let mut b = null_mut();
    let mut idx = null_mut();
    let rows = data(n, 7);
    let opts = PannsBuildOptions {
        n_trees,
        ..panns_build_options_default()
    };
    // SAFETY: valid pointers throughout.
    unsafe {
        ok(panns_builder_new(DIM as u32, 0, &mut b));
        ok(panns_builder_add_batch(b, rows.as_ptr(), n, DIM));
        ok(panns_builder_build(b, &opts, &mut idx));
        panns_builder_free(b);
    }
    idx
}

fn search(
    idx: *const PannsIndex,
    q: &[f32],
    k: usize,
    budget: usize,
) -> (Vec<u32>, PannsSearchStats) {
    let mut ids = vec![0u32; k];
    let mut ds = vec![0f32; k];
    let mut n = 0;
    let mut stats = PannsSearchStats::default();
    // SAFETY: buffers of k entries.
    ok(unsafe {
        panns_index_search_with_stats(
            idx,
            q.as_ptr(),
            q.len(),
            k,
            budget,
            ids.as_mut_ptr(),
            ds.as_mut_ptr(),
            &mut n,
            &mut stats,
        )
    });
    ids.truncate(n);
    (ids, stats)
}

#[test]
fn bytes_round_trip_and_buffer_too_small() {
    let idx = index(500, 4);
    let mut len = 0usize;
    // SAFETY: live index, valid pointers; buffers sized as announced.
    unsafe {
        ok(panns_index_serialized_len(idx, &mut len));
        assert!(len > 500 * DIM * 4);
        // Size query with NULL/0, then a short buffer: the needed length comes back.
        let mut need = 0usize;
        assert_eq!(
            panns_index_serialize(idx, null_mut(), 0, &mut need),
            PANNS_BUFFER_TOO_SMALL
        );
        assert_eq!(need, len);
        let mut short = vec![0xAAu8; len - 1];
        need = 0;
        assert_eq!(
            panns_index_serialize(idx, short.as_mut_ptr(), short.len(), &mut need),
            PANNS_BUFFER_TOO_SMALL
        );
        assert_eq!(need, len);
        assert!(last_error().contains(&len.to_string()), "{}", last_error());
        assert!(
            short.iter().all(|&b| b == 0xAA),
            "a short buffer was written to"
        );
        let mut buf = vec![0u8; len + 10];
        let mut written = 0usize;
        ok(panns_index_serialize(
            idx,
            buf.as_mut_ptr(),
            buf.len(),
            &mut written,
        ));
        assert_eq!(written, len);
        buf.truncate(len);

        // The bytes are those of a saved file.
        let dir = tempfile::tempdir().unwrap();
        let path = CString::new(dir.path().join("a.panns").to_str().unwrap()).unwrap();
        ok(panns_index_save(idx, path.as_ptr()));
        assert_eq!(std::fs::read(dir.path().join("a.panns")).unwrap(), buf);

        // Open from bytes (copied: the caller's buffer is overwritten afterwards).
        let mut copy = null_mut();
        ok(panns_index_open_buffer(
            buf.as_ptr(),
            buf.len(),
            PANNS_OPEN_VERIFY,
            &mut copy,
        ));
        let q = data(1, 99);
        let want = search(idx, &q, 10, 64).0;
        buf.iter_mut().for_each(|b| *b = 0);
        assert_eq!(search(copy, &q, 10, 64).0, want);
        assert_eq!(panns_index_len(copy), 500);
        panns_index_free(copy);

        // Hostile input.
        let mut h = null_mut();
        assert_eq!(
            panns_index_open_buffer(null(), 10, 0, &mut h),
            PANNS_NULL_POINTER
        );
        assert!(h.is_null());
        assert_eq!(
            panns_index_open_buffer(buf.as_ptr(), buf.len(), 0, &mut h),
            PANNS_CORRUPT
        );
        assert_eq!(
            panns_index_open_buffer(buf.as_ptr(), 3, 0, &mut h),
            PANNS_CORRUPT
        );
        assert_eq!(
            panns_index_open_buffer(buf.as_ptr(), 3, 8, &mut h),
            PANNS_INVALID_ARGUMENT
        );
        assert_eq!(
            panns_index_serialized_len(null(), &mut len),
            PANNS_NULL_POINTER
        );
        assert_eq!(
            panns_index_serialize(idx, null_mut(), 5, &mut len),
            PANNS_NULL_POINTER
        );
        panns_index_free(idx);
    }
}

#[test]
fn stats_tell_the_approximate_path_from_the_exact_scan() {
    let n = 2000;
    let idx = index(n, 8);
    let q = data(1, 5);
    // Default budget (max(8 * 10, 100 * 10) = 1000) covers half the items: exact scan.
    let (_, s) = search(idx, &q, 10, 0);
    assert_eq!((s.exact_scan, s.budget, s.scored), (1, 1000, n));
    // Budget 200: the trees are walked and about 200 items scored.
    let (ids, s) = search(idx, &q, 10, 200);
    assert_eq!((s.exact_scan, s.budget), (0, 200));
    assert!(s.scored >= 200 && s.scored < n / 2, "{s:?}");
    assert_eq!(ids.len(), 10);
    // Budget below k is raised to k.
    let (_, s) = search(idx, &q, 10, 3);
    assert_eq!((s.exact_scan, s.budget), (0, 10));
    let mut stats = PannsSearchStats::default();
    let mut count = 0;
    let mut id = [0u32; 1];
    // SAFETY: NULL stats is refused before anything is written.
    unsafe {
        assert_eq!(
            panns_index_search_with_stats(
                idx,
                q.as_ptr(),
                DIM,
                1,
                0,
                id.as_mut_ptr(),
                null_mut(),
                &mut count,
                null_mut()
            ),
            PANNS_NULL_POINTER
        );
        assert!(last_error().contains("out_stats"));
        // An empty query is a dimension problem, not a NULL argument.
        assert_eq!(
            panns_index_search_with_stats(
                idx,
                null(),
                0,
                1,
                0,
                id.as_mut_ptr(),
                null_mut(),
                &mut count,
                &mut stats
            ),
            PANNS_DIMENSION_MISMATCH
        );
        assert!(last_error().contains("empty"), "{}", last_error());
        assert_eq!(
            panns_index_search(
                idx,
                null(),
                0,
                1,
                0,
                id.as_mut_ptr(),
                null_mut(),
                &mut count
            ),
            PANNS_DIMENSION_MISMATCH
        );
        panns_index_free(idx);
    }
}

#[test]
fn status_strings_are_static_and_total() {
    let s = |c: u32| {
        // SAFETY: a static NUL-terminated string.
        unsafe { CStr::from_ptr(panns_status_string(c)) }
            .to_str()
            .unwrap()
    };
    assert_eq!(s(0), "ok");
    assert_eq!(s(PANNS_DIMENSION_MISMATCH as u32), "dimension mismatch");
    assert_eq!(s(PANNS_OUT_OF_MEMORY as u32), "out of memory");
    assert_eq!(s(14), "unknown status code");
    assert_eq!(s(u32::MAX), "unknown status code");
    for c in 0..=13 {
        assert_ne!(s(c), "unknown status code", "code {c}");
    }
    assert_eq!(std::mem::size_of::<PannsStatus>(), 4);
}

#[test]
fn struct_layouts_are_frozen() {
    // Growing a struct is an ABI break: a new field needs a new struct (docs/c-api.md).
    assert_eq!(std::mem::size_of::<PannsBuildOptions>(), 32);
    assert_eq!(std::mem::offset_of!(PannsBuildOptions, seed), 24);
    assert_eq!(
        std::mem::size_of::<PannsSearchStats>(),
        3 * std::mem::size_of::<usize>()
    );
    assert_eq!(
        std::mem::offset_of!(PannsSearchStats, exact_scan),
        2 * std::mem::size_of::<usize>()
    );
}

#[test]
fn error_twins_hand_the_message_to_the_caller() {
    let mut err: *mut c_char = null_mut();
    let mut b = null_mut();
    // SAFETY: valid pointers; the message is freed once.
    unsafe {
        assert_eq!(
            panns_builder_new_e(0, 0, &mut b, &mut err),
            PANNS_INVALID_ARGUMENT
        );
        assert!(!err.is_null());
        let msg = CStr::from_ptr(err).to_str().unwrap().to_string();
        assert!(msg.contains("dimension"), "{msg}");
        // The message belongs to the caller: later calls (here on another thread,
        // and a success on this one) do not change it.
        std::thread::spawn(|| {
            let mut b = null_mut();
            let _ = panns_builder_new(0, 9, &mut b);
        })
        .join()
        .unwrap();
        ok(panns_builder_new(4, 0, &mut b));
        assert_eq!(CStr::from_ptr(err).to_str().unwrap(), msg);
        panns_error_free(err);
        // Success writes NULL; a NULL `error` is allowed.
        err = std::ptr::dangling_mut::<c_char>();
        let v = [1.0f32, 2.0, 3.0, 4.0];
        assert_eq!(
            panns_builder_add_e(b, v.as_ptr(), 4, null_mut(), &mut err),
            PANNS_OK
        );
        assert!(err.is_null());
        assert_eq!(
            panns_builder_add_e(b, v.as_ptr(), 3, null_mut(), null_mut()),
            PANNS_DIMENSION_MISMATCH
        );
        panns_builder_free(b);
        panns_error_free(null_mut());
    }
}

fn fvecs(path: &std::path::Path, rows: &[f32], dim: usize) {
    let mut bytes = Vec::new();
    for r in rows.chunks(dim) {
        bytes.extend_from_slice(&(dim as i32).to_le_bytes());
        r.iter()
            .for_each(|x| bytes.extend_from_slice(&x.to_le_bytes()));
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn datasets_are_probed_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let rows = data(7, 3);
    let p = dir.path().join("q.fvecs");
    fvecs(&p, &rows, DIM);
    let path = CString::new(p.to_str().unwrap()).unwrap();
    let (mut n, mut d) = (0usize, 0usize);
    // SAFETY: valid pointers and buffers.
    unsafe {
        ok(panns_dataset_probe(path.as_ptr(), null(), &mut n, &mut d));
        assert_eq!((n, d), (7, DIM));
        d = 5;
        assert_eq!(
            panns_dataset_probe(path.as_ptr(), null(), &mut n, &mut d),
            PANNS_DIMENSION_MISMATCH
        );
        (n, d) = (0, 0);
        assert_eq!(
            panns_dataset_read(path.as_ptr(), null(), 0, null_mut(), 0, &mut n, &mut d),
            PANNS_BUFFER_TOO_SMALL
        );
        assert_eq!((n, d), (7, DIM));
        let mut buf = vec![0f32; n * d];
        ok(panns_dataset_read(
            path.as_ptr(),
            null(),
            DIM,
            buf.as_mut_ptr(),
            buf.len(),
            null_mut(),
            null_mut(),
        ));
        assert_eq!(buf, rows);
        assert_eq!(
            panns_dataset_read(
                path.as_ptr(),
                null(),
                4,
                buf.as_mut_ptr(),
                buf.len(),
                null_mut(),
                null_mut()
            ),
            PANNS_DIMENSION_MISMATCH
        );
        // Raw f32: the dimension comes from the caller.
        let raw = dir.path().join("q.f32");
        std::fs::write(
            &raw,
            rows.iter()
                .flat_map(|x| x.to_le_bytes())
                .collect::<Vec<u8>>(),
        )
        .unwrap();
        let raw = CString::new(raw.to_str().unwrap()).unwrap();
        (n, d) = (0, DIM);
        ok(panns_dataset_probe(raw.as_ptr(), null(), &mut n, &mut d));
        assert_eq!((n, d), (7, DIM));
        d = 0;
        assert_eq!(
            panns_dataset_probe(raw.as_ptr(), null(), &mut n, &mut d),
            PANNS_INVALID_ARGUMENT
        );
        let missing = CString::new(dir.path().join("none.fvecs").to_str().unwrap()).unwrap();
        assert_eq!(
            panns_dataset_probe(missing.as_ptr(), null(), &mut n, &mut d),
            PANNS_IO
        );
        assert_eq!(
            panns_dataset_probe(null(), null(), &mut n, &mut d),
            PANNS_NULL_POINTER
        );
    }
}

/// Run in a child process (see `caught_panics_print_nothing`): a panic caught at the
/// boundary, then one outside any guard.
#[test]
fn panic_child() {
    if std::env::var_os("PANNS_PANIC_CHILD").is_none() {
        return;
    }
    let st = panns::error::guard(|| -> Result<(), FfiError> { panic!("inside-{}", 42) });
    assert_eq!(st, PANNS_PANIC);
    let msg = last_error();
    assert!(
        msg.contains("inside-42") && msg.contains("additions.rs"),
        "{msg}"
    );
    eprintln!("CHILD: caught {msg:?}");
    let _ = std::panic::catch_unwind(|| panic!("outside-{}", 7));
}

#[test]
fn caught_panics_print_nothing() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "panic_child", "--nocapture", "--test-threads=1"])
        .env("PANNS_PANIC_CHILD", "1")
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stderr.contains("CHILD: caught"),
        "the child did not run:\n{stderr}"
    );
    // The caught panic is silent (its message went into the error) ...
    let before = &stderr[..stderr.find("CHILD: caught").unwrap()];
    assert!(
        !before.contains("panicked"),
        "the caught panic printed:\n{before}"
    );
    assert!(
        !before.contains("backtrace"),
        "the caught panic printed:\n{before}"
    );
    // ... while a panic outside panns still reaches the previous hook.
    assert!(
        stderr.contains("outside-7"),
        "the previous hook was lost:\n{stderr}"
    );
}

/// Total RAM in bytes from /proc/meminfo, and whether the kernel refuses allocations far
/// beyond it (overcommit mode 0 or 2). None elsewhere.
fn refusing_huge_allocations() -> Option<u64> {
    let mode = std::fs::read_to_string("/proc/sys/vm/overcommit_memory").ok()?;
    if mode.trim() == "1" {
        return None;
    }
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = info
        .lines()
        .find(|l| l.starts_with("MemTotal:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

#[test]
fn a_build_too_big_for_memory_is_out_of_memory() {
    // 4M items x 65536 trees x 4 bytes = 1 TiB of leaves, refused up front.
    let Some(ram) = refusing_huge_allocations() else {
        eprintln!("overcommit mode 1 or no /proc: out-of-memory test skipped");
        return;
    };
    if ram > 1 << 39 {
        eprintln!("more than 512 GiB of RAM: out-of-memory test skipped");
        return;
    }
    let n = 4 << 20;
    let rows: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let mut b = null_mut();
    let mut idx = null_mut();
    let opts = PannsBuildOptions {
        n_trees: 65536,
        ..panns_build_options_default()
    };
    let mut err: *mut c_char = null_mut();
    // SAFETY: valid pointers; the message is freed once.
    unsafe {
        ok(panns_builder_new(1, 0, &mut b));
        ok(panns_builder_add_batch(b, rows.as_ptr(), n, 1));
        assert_eq!(
            panns_builder_build_e(b, &opts, &mut idx, &mut err),
            PANNS_OUT_OF_MEMORY
        );
        assert!(idx.is_null());
        let msg = CStr::from_ptr(err).to_str().unwrap().to_string();
        assert!(
            msg.contains("out of memory") && msg.contains("bytes"),
            "{msg}"
        );
        panns_error_free(err);
        // The up-front check refused it: the builder keeps its vectors, and fewer
        // trees build.
        assert_eq!(panns_builder_len(b), n);
        let small = PannsBuildOptions {
            pool_size: 4,
            n_trees: 1,
            ..panns_build_options_default()
        };
        ok(panns_builder_build(b, &small, &mut idx));
        assert_eq!(panns_index_len(idx), n);
        panns_index_free(idx);
        panns_builder_free(b);
    }
}

/// CSV separator and header mode through the C API (`PannsReadOptions`): a `;` file is
/// only readable with `separator = ';'`, a numeric first line is data or skipped as
/// the header mode says, and bad options are refused before the file is read.
#[test]
fn csv_options_reach_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v.csv");
    std::fs::write(&p, "1;2;3\n4;5;6\n7;8;9\n").unwrap();
    let path = CString::new(p.to_str().unwrap()).unwrap();
    let (mut n, mut d) = (0usize, 0usize);
    // SAFETY: valid pointers and buffers throughout.
    unsafe {
        // The default separator is ',': one cell per line that is not a number.
        assert_eq!(
            panns_dataset_probe_with(path.as_ptr(), null(), &mut n, &mut d),
            PANNS_CORRUPT,
            "{}",
            last_error()
        );
        assert!(last_error().contains("separator ';'"), "{}", last_error());
        let mut o = panns_read_options_default();
        o.separator = b';' as c_char;
        ok(panns_dataset_probe_with(path.as_ptr(), &o, &mut n, &mut d));
        assert_eq!((n, d), (3, 3));
        o.header = PANNS_HEADER_YES;
        let mut buf = [0f32; 9];
        ok(panns_dataset_read_with(
            path.as_ptr(),
            &o,
            buf.as_mut_ptr(),
            buf.len(),
            &mut n,
            &mut d,
        ));
        assert_eq!((n, d), (2, 3));
        assert_eq!(&buf[..6], &[4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        o.header = PANNS_HEADER_NO;
        o.dim = 4;
        assert_eq!(
            panns_dataset_probe_with(path.as_ptr(), &o, &mut n, &mut d),
            PANNS_DIMENSION_MISMATCH
        );
        o.dim = 0;
        for (sep, header) in [(b'7', 0), (b'"', 0), (b'\n', 0), (0xE9, 0), (b';', 3)] {
            o.separator = sep as c_char;
            o.header = header;
            assert_eq!(
                panns_dataset_probe_with(path.as_ptr(), &o, &mut n, &mut d),
                PANNS_INVALID_ARGUMENT,
                "separator {sep:#x}, header {header}"
            );
        }
        // CSV options on a non-text file are a mistake, not ignored.
        let fv = dir.path().join("v.fvecs");
        fvecs(&fv, &data(2, 1), DIM);
        let fv = CString::new(fv.to_str().unwrap()).unwrap();
        o.separator = b';' as c_char;
        o.header = PANNS_HEADER_AUTO;
        assert_eq!(
            panns_dataset_probe_with(fv.as_ptr(), &o, &mut n, &mut d),
            PANNS_INVALID_ARGUMENT
        );
        assert!(last_error().contains("CSV/text"), "{}", last_error());

        // The builder takes the same options; its dimension is the default `dim`.
        let mut b = null_mut();
        ok(panns_builder_new(
            3,
            PannsMetric::PANNS_EUCLIDEAN as u32,
            &mut b,
        ));
        let mut added = 0usize;
        o.separator = b';' as c_char;
        o.header = PANNS_HEADER_NO;
        ok(panns_builder_add_file_with(
            b,
            path.as_ptr(),
            &o,
            &mut added,
        ));
        assert_eq!((added, panns_builder_len(b)), (3, 3));
        o.separator = 0;
        assert_eq!(
            panns_builder_add_file_with(b, path.as_ptr(), &o, &mut added),
            PANNS_CORRUPT
        );
        assert_eq!(panns_builder_len(b), 3, "a failed file adds nothing");
        o.dim = 2;
        assert_eq!(
            panns_builder_add_file_with(b, path.as_ptr(), &o, &mut added),
            PANNS_DIMENSION_MISMATCH
        );
        panns_builder_free(b);
    }
}
