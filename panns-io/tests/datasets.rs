//! The dataset readers on small files written here, every error path, and the shared HDF5 files.

use std::path::{Path, PathBuf};

use panns_io::{
    CsvOptions, Dataset, Error, Format, HeaderMode, ReadOptions, read_any, read_bvecs, read_csv,
    read_fvecs, read_ivecs, read_npy, read_raw_f32,
};
use tempfile::TempDir;

/// Writes `bytes` to `name` in a fresh temporary directory (kept alive by the returned guard).
fn file(name: &str, bytes: impl AsRef<[u8]>) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

/// The error message, asserting that it names the file.
fn message(err: Error, path: &Path) -> String {
    let text = err.to_string();
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(
        text.contains(name),
        "error does not name the file {name}: {text}"
    );
    text
}

fn assert_contains(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "expected {part:?} in: {text}");
    }
}

fn le_f32(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

// ---------------------------------------------------------------- CSV

fn csv(text: &str) -> (TempDir, PathBuf, Result<Dataset, Error>) {
    let (dir, path) = file("data.csv", text);
    let result = read_csv(&path, &CsvOptions::default());
    (dir, path, result)
}

#[test]
fn csv_reads_values_exactly_skipping_header_blank_lines_and_whitespace() {
    let text = "\u{feff}x, y ,z\r\n\r\n 1.5, -2 ,3e2\r\n\n\"4\",5.25,  -0.125  \n\n\n";
    let (_d, _p, ds) = csv(text);
    let ds = ds.unwrap();
    assert_eq!((ds.n, ds.dim), (2, 3));
    assert_eq!(ds.data, [1.5, -2.0, 300.0, 4.0, 5.25, -0.125]);
    assert_eq!(ds.row(1), [4.0, 5.25, -0.125]);
    assert_eq!(ds.rows().count(), 2);
}

#[test]
fn csv_header_modes() {
    // Auto: a numeric first line is data.
    let (_d, p, ds) = csv("1,2\n3,4\n");
    assert_eq!(ds.unwrap().data, [1.0, 2.0, 3.0, 4.0]);
    // Yes: the first line is skipped even if numeric.
    let yes = CsvOptions {
        header: HeaderMode::Yes,
        ..CsvOptions::default()
    };
    assert_eq!(read_csv(&p, &yes).unwrap().data, [3.0, 4.0]);
    // No: a text first line is an error at line 1, naming the cell.
    let (_d, p, _) = csv("\nid,value\n1,2\n");
    let no = CsvOptions {
        header: HeaderMode::No,
        ..CsvOptions::default()
    };
    let text = message(read_csv(&p, &no).unwrap_err(), &p);
    assert_contains(&text, &["line 2, column 1", "'id' is not a number"]);
}

#[test]
fn csv_separators_tab_semicolon_and_space_runs() {
    let (_d, p) = file("t.csv", "1\t2\n3\t 4\n");
    let tab = CsvOptions {
        separator: b'\t',
        ..CsvOptions::default()
    };
    assert_eq!(read_csv(&p, &tab).unwrap().data, [1.0, 2.0, 3.0, 4.0]);
    let (_d, p) = file("s.txt", "1;2\n3;4\n");
    let semi = CsvOptions {
        separator: b';',
        ..CsvOptions::default()
    };
    assert_eq!(read_csv(&p, &semi).unwrap().data, [1.0, 2.0, 3.0, 4.0]);
    let (_d, p) = file("w.txt", "  1   2\t3\n4 5 6  \n");
    let space = CsvOptions {
        separator: b' ',
        ..CsvOptions::default()
    };
    let ds = read_csv(&p, &space).unwrap();
    assert_eq!(
        (ds.n, ds.dim, ds.data),
        (2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    );
    // The wrong separator gives a hint (the first line starts with a digit: data, not a
    // header).
    let text = message(read_csv(&p, &CsvOptions::default()).unwrap_err(), &p);
    assert_contains(
        &text,
        &["line 1, column 1", "'1   2\t3' is not a number", "a tab"],
    );
    let (_d2, p2) = file("w2.txt", "a b c\n4 5 6\n");
    let text = message(read_csv(&p2, &CsvOptions::default()).unwrap_err(), &p2);
    assert_contains(
        &text,
        &["line 2, column 1", "'4 5 6' is not a number", "a space"],
    );
    let no = CsvOptions {
        header: HeaderMode::No,
        ..CsvOptions::default()
    };
    let text = message(read_csv(&p, &no).unwrap_err(), &p);
    assert_contains(
        &text,
        &["line 1, column 1", "'1   2\t3' is not a number", "a tab"],
    );
}

#[test]
fn csv_ragged_row_names_line_and_counts() {
    let (_d, p, ds) = csv("a,b,c,d\n1,2,3,4\n\n5,6,7,8\n1,2,3,4\n\n1,2,3\n");
    let text = message(ds.unwrap_err(), &p);
    assert_contains(&text, &["line 7 has 3 columns, expected 4", "as on line 2"]);
    let (_d, p, ds) = csv("1,2\n3,4,5\n");
    assert!(
        matches!(
            ds,
            Err(Error::RaggedRow {
                line: 2,
                columns: 3,
                expected: 2,
                ..
            })
        ),
        "{p:?}"
    );
}

#[test]
fn csv_non_numeric_cell_names_line_column_and_text() {
    let (_d, p, ds) = csv("1,2,3\n4,five,6\n");
    let err = ds.unwrap_err();
    assert!(matches!(
        err,
        Error::Parse {
            line: 2,
            column: 2,
            ..
        }
    ));
    let text = message(err, &p);
    assert_contains(&text, &["line 2, column 2", "'five'"]);
    let (_d, p, ds) = csv("1,2,3\n4,,6\n");
    assert_contains(
        &message(ds.unwrap_err(), &p),
        &["line 2, column 2: empty cell"],
    );
}

#[test]
fn csv_rejects_nan_and_infinity_with_position() {
    for (cell, word) in [
        ("NaN", "NaN"),
        ("nan", "NaN"),
        ("inf", "infinite"),
        ("-Infinity", "infinite"),
        ("3e39", "out of f32 range"),
    ] {
        let (_d, p, ds) = csv(&format!("1,2\n3,4\n5,{cell}\n"));
        let text = message(ds.unwrap_err(), &p);
        assert_contains(&text, &["line 3, column 2", &format!("'{cell}'"), word]);
    }
    // In the first line, NaN is numeric, so Auto does not take it for a header.
    let (_d, p, ds) = csv("nan,1\n");
    assert_contains(
        &message(ds.unwrap_err(), &p),
        &["line 1, column 1", "'nan' is NaN"],
    );
}

#[test]
fn csv_first_row_with_a_bad_cell_is_an_error_not_a_header() {
    for (text, at, what) in [
        ("1,,3\n4,5,6\n", "line 1, column 2", "empty cell"),
        (
            "1,2.O,3\n4,5,6\n",
            "line 1, column 2",
            "'2.O' is not a number",
        ),
        (
            "\n2.O,x,y\n4,5,6\n",
            "line 2, column 1",
            "'2.O' is not a number",
        ),
    ] {
        let (_d, p, ds) = csv(text);
        let err = ds.unwrap_err();
        assert!(matches!(err, Error::Parse { .. }), "{text:?}: {err}");
        let msg = message(err, &p);
        assert_contains(&msg, &[at, what]);
        if text.starts_with('1') {
            assert_contains(
                &msg,
                &["the first line has number-like cells", "header yes"],
            );
        }
    }
    // A first line with no number-like cell is still a header, empty names included
    // (pandas writes `,a,b`).
    let (_d, _p, ds) = csv(",a,b\n1,2,3\n");
    assert_eq!(ds.unwrap().data, [1.0, 2.0, 3.0]);
}

#[test]
fn csv_cr_only_line_ends_are_line_ends() {
    let (_d, _p, ds) = csv("x,y\r1,2\r3,4\r");
    let ds = ds.unwrap();
    assert_eq!((ds.n, ds.dim, ds.data), (2, 2, vec![1.0, 2.0, 3.0, 4.0]));
    // Errors count CR-ended lines.
    let (_d, p, ds) = csv("1,2\r3,4\r5,x\r");
    assert_contains(
        &message(ds.unwrap_err(), &p),
        &["line 3, column 2", "'x' is not a number"],
    );
    let (_d, p) = file("cr.csv", b"1,2\r3,\xff\r");
    let text = message(read_csv(&p, &CsvOptions::default()).unwrap_err(), &p);
    assert_contains(&text, &["line 2, column 2", "invalid UTF-8 at byte 3"]);
}

/// Runs `f` on another thread and fails the test if it has not returned within 10 s
/// (opening a FIFO without a writer blocks forever).
fn within_10s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("the reader blocked on the FIFO")
}

#[cfg(unix)]
#[test]
fn binary_readers_refuse_fifos_and_directories_by_type() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.npy");
    if !std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success())
    {
        eprintln!("skipped: mkfifo is not available");
        return;
    }
    for format in [Format::Npy, Format::Fvecs, Format::Bvecs, Format::RawF32] {
        let p = fifo.clone();
        let r = within_10s(move || {
            let opts = ReadOptions {
                format: Some(format),
                dim: Some(4),
                ..ReadOptions::default()
            };
            read_any(&p, &opts).map(|_| ()).map_err(|e| e.to_string())
        });
        let e = r.unwrap_err();
        assert!(
            e.contains("pipe.npy: is a FIFO/named pipe, not a regular file")
                && e.contains("save the data to a file first")
                && !e.contains("too short"),
            "{format}: {e}"
        );
    }
    let e = read_npy(dir.path()).unwrap_err().to_string();
    assert!(e.ends_with(": is a directory"), "{e}");
    let e = read_csv(dir.path(), &CsvOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.ends_with(": is a directory"), "{e}");
}

#[cfg(unix)]
#[test]
fn csv_streams_from_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.csv");
    if !std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success())
    {
        eprintln!("skipped: mkfifo is not available");
        return;
    }
    let w = fifo.clone();
    let writer = std::thread::spawn(move || std::fs::write(w, "x,y\n1,2\n3,4\n").unwrap());
    let p = fifo.clone();
    let ds = within_10s(move || read_csv(&p, &CsvOptions::default()).map_err(|e| e.to_string()));
    writer.join().unwrap();
    assert_eq!(ds.unwrap().data, [1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn csv_empty_blank_and_header_only_files_are_errors() {
    for (text, expect) in [
        ("", "no data rows"),
        ("\n\n  \n\r\n", "no data rows"),
        ("a,b,c\n\n", "only the header on line 1"),
    ] {
        let (_d, p, ds) = csv(text);
        let text = message(ds.unwrap_err(), &p);
        assert_contains(&text, &[expect]);
    }
}

#[test]
fn csv_invalid_utf8_is_a_parse_error_with_line() {
    let (_d, p) = file("bad.csv", b"1,2\n3,\xff\xfe\n");
    let text = message(read_csv(&p, &CsvOptions::default()).unwrap_err(), &p);
    assert_contains(&text, &["line 2, column 2", "invalid UTF-8"]);
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nope.csv");
    let err = read_csv(&p, &CsvOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Io { .. }));
    message(err, &p);
    let p = dir.path().join("nope.npy");
    assert!(matches!(read_npy(&p), Err(Error::Io { .. })));
}

// ---------------------------------------------------------------- raw f32

#[test]
fn raw_f32_reads_exact_values() {
    let values: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 1.0).collect();
    let (_d, p) = file("v.f32", le_f32(&values));
    let ds = read_raw_f32(&p, 4).unwrap();
    assert_eq!((ds.n, ds.dim), (3, 4));
    assert_eq!(ds.data, values);
    assert_eq!(read_raw_f32(&p, 12).unwrap().n, 1);
}

#[test]
fn raw_f32_size_errors_name_size_and_dim() {
    let (_d, p) = file("v.bin", le_f32(&[1.0; 10]));
    let text = message(read_raw_f32(&p, 4).unwrap_err(), &p);
    assert_contains(&text, &["40 bytes", "4 * dim = 16", "dim 4"]);
    let (_d, p) = file("odd.raw", [0u8; 7]);
    assert_contains(&message(read_raw_f32(&p, 1).unwrap_err(), &p), &["7 bytes"]);
    let text = message(read_raw_f32(&p, 0).unwrap_err(), &p);
    assert_contains(&text, &["dimension", "got 0"]);
    let (_d, p) = file("empty.f32", []);
    assert_contains(&message(read_raw_f32(&p, 3).unwrap_err(), &p), &["empty"]);
}

#[test]
fn raw_f32_rejects_non_finite_with_row_and_dimension() {
    let (_d, p) = file("v.f32", le_f32(&[1.0, 2.0, 3.0, 4.0, 5.0, f32::NAN]));
    let err = read_raw_f32(&p, 3).unwrap_err();
    assert!(matches!(err, Error::NonFinite { row: 1, dim: 2, .. }));
    assert_contains(&message(err, &p), &["row 1, dimension 2", "NaN"]);
}

// ---------------------------------------------------------------- TEXMEX

fn vecs<T: Copy>(rows: &[(i32, &[T])], to_bytes: impl Fn(T) -> Vec<u8>) -> Vec<u8> {
    let mut out = Vec::new();
    for (dim, row) in rows {
        out.extend_from_slice(&dim.to_le_bytes());
        for &x in *row {
            out.extend(to_bytes(x));
        }
    }
    out
}

fn fvecs(rows: &[(i32, &[f32])]) -> Vec<u8> {
    vecs(rows, |x: f32| x.to_le_bytes().to_vec())
}

#[test]
fn fvecs_bvecs_ivecs_read_exact_values() {
    let (_d, p) = file(
        "a.fvecs",
        fvecs(&[(3, &[1.0, 2.0, 3.0]), (3, &[-1.5, 0.0, 7.25])]),
    );
    let ds = read_fvecs(&p).unwrap();
    assert_eq!((ds.n, ds.dim), (2, 3));
    assert_eq!(ds.data, [1.0, 2.0, 3.0, -1.5, 0.0, 7.25]);

    let (_d, p) = file(
        "a.bvecs",
        vecs(&[(2, &[0u8, 255][..]), (2, &[7, 128])], |x: u8| vec![x]),
    );
    let ds = read_bvecs(&p).unwrap();
    assert_eq!(
        (ds.n, ds.dim, ds.data),
        (2, 2, vec![0.0, 255.0, 7.0, 128.0])
    );

    let (_d, p) = file(
        "gt.ivecs",
        vecs(&[(2, &[5i32, -1][..]), (2, &[0, i32::MAX])], |x: i32| {
            x.to_le_bytes().to_vec()
        }),
    );
    let ds = read_ivecs(&p).unwrap();
    assert_eq!((ds.n, ds.dim), (2, 2));
    assert_eq!(ds.data, [5, -1, 0, i32::MAX]);
    assert_eq!(ds.row(1), [0, i32::MAX]);
}

#[test]
fn fvecs_inconsistent_dim_names_the_record() {
    let (_d, p) = file(
        "bad.fvecs",
        fvecs(&[(2, &[1.0, 2.0]), (2, &[3.0, 4.0]), (3, &[5.0, 6.0, 7.0])]),
    );
    let text = message(read_fvecs(&p).unwrap_err(), &p);
    assert_contains(
        &text,
        &["record 2", "declares dimension 3", "record 0 declares 2"],
    );
}

#[test]
fn fvecs_truncated_final_record() {
    let mut bytes = fvecs(&[(4, &[1.0, 2.0, 3.0, 4.0]), (4, &[1.0, 2.0, 3.0, 4.0])]);
    bytes.truncate(bytes.len() - 5);
    let (_d, p) = file("t.fvecs", &bytes);
    let text = message(read_fvecs(&p).unwrap_err(), &p);
    assert_contains(
        &text,
        &["record 1", "truncated", "11 of its 16 value bytes"],
    );
    // A dangling partial dimension header.
    let mut bytes = fvecs(&[(1, &[1.0])]);
    bytes.extend_from_slice(&[1, 0]);
    let (_d, p) = file("h.fvecs", &bytes);
    assert_contains(
        &message(read_fvecs(&p).unwrap_err(), &p),
        &["record 1", "truncated", "2 bytes left"],
    );
}

#[test]
fn vecs_reject_bad_dimensions_and_empty_files() {
    for dim in [0i32, -3, (1 << 16) + 1, i32::MAX] {
        let mut bytes = dim.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0u8; 64]);
        let (_d, p) = file("d.fvecs", &bytes);
        let text = message(read_fvecs(&p).unwrap_err(), &p);
        assert_contains(&text, &[&format!("declares dimension {dim}"), "1..=65536"]);
        let (_d, p) = file("d.ivecs", &bytes);
        assert!(read_ivecs(&p).is_err());
    }
    // A plausible but huge dimension in a tiny file: an error, not a huge allocation.
    let mut bytes = (1i32 << 16).to_le_bytes().to_vec();
    bytes.extend_from_slice(&[0u8; 8]);
    let (_d, p) = file("big.bvecs", &bytes);
    assert_contains(&message(read_bvecs(&p).unwrap_err(), &p), &["truncated"]);
    let (_d, p) = file("e.ivecs", []);
    assert_contains(&message(read_ivecs(&p).unwrap_err(), &p), &["empty"]);
}

#[test]
fn fvecs_rejects_non_finite() {
    let (_d, p) = file(
        "n.fvecs",
        fvecs(&[(2, &[1.0, 2.0]), (2, &[f32::INFINITY, 0.0])]),
    );
    let err = read_fvecs(&p).unwrap_err();
    assert!(
        matches!(err, Error::NonFinite { row: 1, dim: 0, .. }),
        "{err}"
    );
}

// ---------------------------------------------------------------- NumPy

/// A `.npy` file of format `major`.0 with the given header dict and raw data.
fn npy(major: u8, dict: &str, data: &[u8]) -> Vec<u8> {
    let prelude = if major == 1 { 10 } else { 12 };
    let mut header = dict.as_bytes().to_vec();
    while !(prelude + header.len() + 1).is_multiple_of(64) {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut out = b"\x93NUMPY".to_vec();
    out.extend_from_slice(&[major, 0]);
    if major == 1 {
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    out
}

fn dict(descr: &str, fortran: bool, shape: &str) -> String {
    let f = if fortran { "True" } else { "False" };
    format!("{{'descr': '{descr}', 'fortran_order': {f}, 'shape': {shape}, }}")
}

#[test]
fn npy_reads_f4_and_f8_in_versions_1_2_3() {
    let values = [1.0f32, -2.5, 3.25, 4.0, 0.0, -6.0];
    let bytes = npy(1, &dict("<f4", false, "(2, 3)"), &le_f32(&values));
    let (_d, p) = file("a.npy", bytes);
    let ds = read_npy(&p).unwrap();
    assert_eq!((ds.n, ds.dim, ds.data.as_slice()), (2, 3, &values[..]));

    let f8: Vec<u8> = [0.1f64, 2.0, -1e-3]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let (_d, p) = file("b.npy", npy(2, &dict("<f8", false, "(3, 1)"), &f8));
    let ds = read_npy(&p).unwrap();
    assert_eq!((ds.n, ds.dim), (3, 1));
    assert_eq!(ds.data, [0.1f64 as f32, 2.0, -1e-3f64 as f32]);

    let (_d, p) = file(
        "c.npy",
        npy(3, &dict("<f4", false, "(1, 6)"), &le_f32(&values)),
    );
    assert_eq!(read_npy(&p).unwrap().data, values);

    let be: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
    let (_d, p) = file("d.npy", npy(1, &dict(">f4", false, "(3, 2)"), &be));
    assert_eq!(read_npy(&p).unwrap().data, values);

    // Fortran order of a single row is the same layout as C order.
    let (_d, p) = file(
        "e.npy",
        npy(1, &dict("<f4", true, "(1, 6)"), &le_f32(&values)),
    );
    assert_eq!(read_npy(&p).unwrap().data, values);
}

#[test]
fn npy_unsupported_dtypes_are_named() {
    for descr in ["<i4", "<i8", "<f2", "|u1"] {
        let (_d, p) = file("i.npy", npy(1, &dict(descr, false, "(2, 2)"), &[0u8; 32]));
        let err = read_npy(&p).unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }));
        assert_contains(
            &message(err, &p),
            &["unsupported", &format!("dtype '{descr}'")],
        );
    }
}

#[test]
fn npy_shape_and_order_errors() {
    let data = le_f32(&[0.0; 6]);
    let (_d, p) = file("f.npy", npy(1, &dict("<f4", true, "(3, 2)"), &data));
    assert_contains(
        &message(read_npy(&p).unwrap_err(), &p),
        &["fortran_order: True"],
    );
    let (_d, p) = file("one.npy", npy(1, &dict("<f4", false, "(6,)"), &data));
    assert_contains(
        &message(read_npy(&p).unwrap_err(), &p),
        &["shape (6,) is 1-D", "2-D"],
    );
    let (_d, p) = file("three.npy", npy(1, &dict("<f4", false, "(1, 2, 3)"), &data));
    assert_contains(
        &message(read_npy(&p).unwrap_err(), &p),
        &["shape (1, 2, 3) is 3-D"],
    );
    let (_d, p) = file("zero.npy", npy(1, &dict("<f4", false, "(0, 3)"), &[]));
    assert_contains(&message(read_npy(&p).unwrap_err(), &p), &["no values"]);
}

#[test]
fn npy_data_length_must_match_the_shape() {
    let (_d, p) = file(
        "t.npy",
        npy(1, &dict("<f4", false, "(2, 3)"), &le_f32(&[1.0; 5])),
    );
    let text = message(read_npy(&p).unwrap_err(), &p);
    assert_contains(&text, &["truncated", "needs 24 data bytes", "has 20"]);
    let (_d, p) = file(
        "x.npy",
        npy(1, &dict("<f4", false, "(2, 3)"), &le_f32(&[1.0; 7])),
    );
    assert_contains(
        &message(read_npy(&p).unwrap_err(), &p),
        &["trailing bytes", "has 28"],
    );
    // An absurd shape is refused before anything is allocated.
    let shape = format!("({}, {})", 1u64 << 40, 1u64 << 40);
    let (_d, p) = file(
        "huge.npy",
        npy(1, &dict("<f4", false, &shape), &le_f32(&[1.0; 4])),
    );
    assert!(read_npy(&p).is_err());
    let shape = format!("({}, 2)", 1u64 << 40);
    let (_d, p) = file(
        "huge2.npy",
        npy(1, &dict("<f4", false, &shape), &le_f32(&[1.0; 4])),
    );
    assert_contains(&message(read_npy(&p).unwrap_err(), &p), &["truncated"]);
}

#[test]
fn npy_broken_preamble_and_header() {
    let (_d, p) = file("m.npy", b"NOTNUMPY\x01\x00\x10\x00{}");
    assert_contains(
        &message(read_npy(&p).unwrap_err(), &p),
        &["not a .npy file"],
    );
    let (_d, p) = file("s.npy", b"\x93NUMPY");
    assert_contains(&message(read_npy(&p).unwrap_err(), &p), &["too short"]);
    let (_d, p) = file("v.npy", b"\x93NUMPY\x09\x00\x10\x00{}");
    assert_contains(&message(read_npy(&p).unwrap_err(), &p), &["version 9.0"]);
    // A v2 header length of 4 GiB in a tiny file.
    let (_d, p) = file("h.npy", b"\x93NUMPY\x02\x00\xff\xff\xff\xff{}");
    assert_contains(
        &message(read_npy(&p).unwrap_err(), &p),
        &["4294967295 bytes"],
    );
    let (_d, p) = file(
        "g.npy",
        npy(1, "{'descr': '<f4', 'shape': (1, 1)}", &le_f32(&[1.0])),
    );
    assert_contains(
        &message(read_npy(&p).unwrap_err(), &p),
        &["'fortran_order' is missing"],
    );
    let (_d, p) = file(
        "q.npy",
        npy(
            1,
            "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1, 1)}",
            &[0; 4],
        ),
    );
    assert_contains(
        &message(read_npy(&p).unwrap_err(), &p),
        &["header", "Maybe"],
    );
}

#[test]
fn npy_f8_out_of_f32_range_is_named_with_its_value() {
    let f8: Vec<u8> = [1.0f64, 2.0, 1e300, 4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let (_d, p) = file("r.npy", npy(1, &dict("<f8", false, "(2, 2)"), &f8));
    let err = read_npy(&p).unwrap_err();
    assert!(matches!(err, Error::NonFinite { row: 1, dim: 0, value, .. } if value == 1e300));
    assert_contains(&message(err, &p), &["row 1, dimension 0", "1e300"]);
}

// ---------------------------------------------------------------- read_any and Format

#[test]
fn format_names_parse_case_insensitively() {
    for (name, format) in [
        ("csv", Format::Csv),
        ("TXT", Format::Csv),
        ("tsv", Format::Tsv),
        (".npy", Format::Npy),
        ("fvecs", Format::Fvecs),
        ("bvecs", Format::Bvecs),
        ("raw", Format::RawF32),
        ("f32", Format::RawF32),
        ("bin", Format::RawF32),
        ("HDF5", Format::Hdf5),
        ("h5", Format::Hdf5),
    ] {
        assert_eq!(name.parse::<Format>().unwrap(), format, "{name}");
    }
    for format in Format::ALL {
        assert_eq!(format.to_string().parse::<Format>().unwrap(), format);
    }
    let text = "parquet".parse::<Format>().unwrap_err().to_string();
    assert_contains(&text, &["'parquet'", "csv", "npy", "hdf5"]);
    assert_eq!(
        Format::from_path(Path::new("x/y.FVECS")),
        Some(Format::Fvecs)
    );
    assert_eq!(Format::from_path(Path::new("noext")), None);
}

#[test]
fn read_any_dispatches_on_extension_and_format() {
    let values = [1.0f32, 2.0, 3.0, 4.0];
    let opts = ReadOptions::default();
    let (_d, p) = file("a.csv", "1,2\n3,4\n");
    assert_eq!(read_any(&p, &opts).unwrap().data, values);
    let (_d, p) = file("a.tsv", "1\t2\n3\t4\n");
    assert_eq!(read_any(&p, &opts).unwrap().data, values);
    let (_d, p) = file("a.fvecs", fvecs(&[(2, &[1.0, 2.0]), (2, &[3.0, 4.0])]));
    assert_eq!(read_any(&p, &opts).unwrap().data, values);
    let (_d, p) = file("a.bvecs", [2, 0, 0, 0, 1, 2, 2, 0, 0, 0, 3, 4]);
    assert_eq!(read_any(&p, &opts).unwrap().data, values);
    let (_d, p) = file(
        "a.npy",
        npy(1, &dict("<f4", false, "(2, 2)"), &le_f32(&values)),
    );
    assert_eq!(read_any(&p, &opts).unwrap().data, values);

    // Raw needs the dimension.
    let (_d, p) = file("a.f32", le_f32(&values));
    assert_contains(
        &message(read_any(&p, &opts).unwrap_err(), &p),
        &["give its dimension"],
    );
    let with_dim = ReadOptions {
        dim: Some(2),
        ..ReadOptions::default()
    };
    let ds = read_any(&p, &with_dim).unwrap();
    assert_eq!((ds.n, ds.dim), (2, 2));

    // An explicit format overrides the extension; an unknown extension needs one.
    let (_d, p) = file(
        "vectors.dat",
        npy(1, &dict("<f4", false, "(2, 2)"), &le_f32(&values)),
    );
    assert_contains(
        &message(read_any(&p, &opts).unwrap_err(), &p),
        &["cannot tell the dataset format"],
    );
    let as_npy = ReadOptions {
        format: Some(Format::Npy),
        ..ReadOptions::default()
    };
    assert_eq!(read_any(&p, &as_npy).unwrap().data, values);

    // A given dimension must match the file's.
    let (_d, p) = file("b.csv", "1,2\n3,4\n");
    let dim3 = ReadOptions {
        dim: Some(3),
        ..ReadOptions::default()
    };
    assert_contains(
        &message(read_any(&p, &dim3).unwrap_err(), &p),
        &["dimension 2", "dimension 3"],
    );
}

// ---------------------------------------------------------------- HDF5 (shared data sets)

#[cfg(feature = "hdf5")]
mod hdf5 {
    use super::*;
    use panns_io::{read_ann_benchmarks, read_hdf5, read_hdf5_attr_string, read_hdf5_i32};

    fn shared(name: &str) -> Option<PathBuf> {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data"));
        if !dir.is_dir() {
            eprintln!("skipped: ../shared/data not found ({})", dir.display());
            return None;
        }
        let path = dir.join(name);
        if !path.is_file() {
            eprintln!("skipped: {} not found", path.display());
            return None;
        }
        Some(path)
    }

    fn l2(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
            .sum::<f64>()
            .sqrt()
    }

    fn cosine_distance(a: &[f32], b: &[f32]) -> f64 {
        let dot: f64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum();
        let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        1.0 - dot / (na * nb)
    }

    /// Checks shapes, finiteness, the metric, and that the first neighbour of a few queries is
    /// their brute-force nearest (by distance, so ties do not matter).
    fn check_file(name: &str, n: usize, queries: usize, dim: usize, metric: &str) {
        let Some(path) = shared(name) else { return };
        let ab = read_ann_benchmarks(&path).unwrap();
        assert_eq!((ab.train.n, ab.train.dim), (n, dim), "{name} train");
        assert_eq!((ab.test.n, ab.test.dim), (queries, dim), "{name} test");
        assert_eq!(
            (ab.neighbors.n, ab.neighbors.dim),
            (queries, 100),
            "{name} neighbors"
        );
        assert_eq!(ab.train.data.len(), n * dim);
        assert_eq!(ab.metric.name(), metric);
        assert!(
            ab.train
                .data
                .iter()
                .chain(&ab.test.data)
                .all(|x| x.is_finite())
        );
        let distances = ab.distances.as_ref().expect("distances");
        assert_eq!((distances.n, distances.dim), (queries, 100));
        let dist = |a: &[f32], b: &[f32]| {
            if metric == "angular" {
                cosine_distance(a, b)
            } else {
                l2(a, b)
            }
        };
        for q in [0, queries / 2, queries - 1] {
            let query = ab.test.row(q);
            let best = ab
                .train
                .rows()
                .map(|row| dist(query, row))
                .fold(f64::INFINITY, f64::min);
            let first = ab.neighbors.row(q)[0] as usize;
            let got = dist(query, ab.train.row(first));
            assert!(
                (got - best).abs() <= 1e-5 * best.max(1.0),
                "{name} query {q}: {got} vs {best}"
            );
            let stored = f64::from(distances.row(q)[0]);
            assert!(
                (stored - best).abs() <= 1e-3 * best.max(1.0),
                "{name} query {q}: {stored} vs {best}"
            );
        }
    }

    #[test]
    fn digits_matches_brute_force() {
        check_file("digits-64-euclidean.hdf5", 1597, 200, 64, "euclidean");
        let Some(path) = shared("digits-64-euclidean.hdf5") else {
            return;
        };
        // The same through the single-dataset readers and read_any.
        let train = read_hdf5(&path, "train").unwrap();
        assert_eq!((train.n, train.dim), (1597, 64));
        let nb = read_hdf5_i32(&path, "neighbors").unwrap();
        assert_eq!((nb.n, nb.dim), (200, 100));
        assert_eq!(
            read_hdf5_attr_string(&path, "distance").unwrap().as_deref(),
            Some("euclidean")
        );
        assert_eq!(
            read_hdf5_attr_string(&path, "no-such-attribute").unwrap(),
            None
        );
        assert_eq!(read_any(&path, &ReadOptions::default()).unwrap(), train);
        let test = ReadOptions {
            dataset: Some("/test".into()),
            ..ReadOptions::default()
        };
        assert_eq!(read_any(&path, &test).unwrap().n, 200);
    }

    #[test]
    fn gauss_angular_and_euclidean_match_brute_force() {
        check_file("gauss-5000x200-angular.hdf5", 5000, 1000, 200, "angular");
        check_file(
            "gauss-5000x200-euclidean.hdf5",
            5000,
            1000,
            200,
            "euclidean",
        );
    }

    #[test]
    fn sift_and_minilm_match_brute_force() {
        check_file(
            "sift-images-50k-128-euclidean.hdf5",
            50_000,
            500,
            128,
            "euclidean",
        );
        check_file(
            "minilm-docs-20k-384-angular.hdf5",
            20_000,
            500,
            384,
            "angular",
        );
    }

    #[test]
    fn missing_dataset_lists_the_existing_names() {
        let Some(path) = shared("digits-64-euclidean.hdf5") else {
            return;
        };
        let err = read_hdf5(&path, "trian").unwrap_err();
        assert!(matches!(err, Error::DatasetNotFound { .. }));
        let text = message(err, &path);
        assert_contains(
            &text,
            &["'trian'", "train", "test", "neighbors", "distances"],
        );
        assert!(matches!(
            read_hdf5_i32(&path, "/a/b"),
            Err(Error::DatasetNotFound { .. })
        ));
    }

    #[test]
    fn wrong_types_are_named() {
        let Some(path) = shared("digits-64-euclidean.hdf5") else {
            return;
        };
        let text = message(read_hdf5(&path, "neighbors").unwrap_err(), &path);
        assert_contains(&text, &["'neighbors'", "int32", "float32 or float64"]);
        let text = message(read_hdf5_i32(&path, "train").unwrap_err(), &path);
        assert_contains(&text, &["'train'", "float32", "integer"]);
    }

    // ------------------------------------------------------------ small files written here

    use hdf5_writer::{
        AttributeBuilder, ByteOrder, DatasetBuilder, FILTER_DEFLATE, FilterDescription,
        Hdf5Builder, WriteOptions,
    };

    fn h5(datasets: Vec<DatasetBuilder>, attributes: Vec<AttributeBuilder>) -> (TempDir, PathBuf) {
        h5_with(WriteOptions::default(), datasets, attributes)
    }

    fn h5_with(
        options: WriteOptions,
        datasets: Vec<DatasetBuilder>,
        attributes: Vec<AttributeBuilder>,
    ) -> (TempDir, PathBuf) {
        let mut builder = Hdf5Builder::new();
        for d in datasets {
            builder = builder.dataset(d);
        }
        for a in attributes {
            builder = builder.attribute(a);
        }
        let bytes = builder.into_plan().unwrap().encode(options).unwrap();
        file("small.h5", bytes)
    }

    fn f64s(name: &str, rows: u64, cols: u64, values: &[f64]) -> DatasetBuilder {
        DatasetBuilder::typed_data(name, vec![rows, cols], values).unwrap()
    }

    fn metric(name: &str) -> AttributeBuilder {
        AttributeBuilder::vlen_strings("distance", &[name]).unwrap()
    }

    #[test]
    fn converts_f64_i64_chunked_deflate_and_big_endian() {
        let train = [0.5f64, -1.25, 3.0, 4.0, 1e-3, -7.5];
        let test: Vec<f32> = vec![1.0, 2.0, -3.0, 0.25];
        let deflate = FilterDescription {
            id: FILTER_DEFLATE,
            name: None,
            client_data: vec![6],
        };
        let test_ds = DatasetBuilder::typed_data("test", vec![2, 2], &test)
            .unwrap()
            .chunked(vec![1, 2])
            .filter(deflate);
        let neighbors =
            DatasetBuilder::typed_data("neighbors", vec![2, 2], &[2i64, 0, 1, 2]).unwrap();
        let in_group = DatasetBuilder::typed_data("g/x", vec![1, 1], &[42u32]).unwrap();
        let (_d, p) = h5(
            vec![f64s("train", 3, 2, &train), test_ds, neighbors, in_group],
            vec![metric("angular")],
        );
        let ab = read_ann_benchmarks(&p).unwrap();
        assert_eq!((ab.train.n, ab.train.dim), (3, 2));
        let expect: Vec<f32> = train.iter().map(|&x| x as f32).collect();
        assert_eq!(ab.train.data, expect);
        assert_eq!(ab.test.data, test);
        assert_eq!(ab.neighbors.data, [2, 0, 1, 2]);
        assert_eq!(ab.distances, None);
        assert_eq!(ab.metric, panns_core::Metric::Angular);

        assert_eq!(read_hdf5_i32(&p, "/g/x").unwrap().data, [42]);

        // A big-endian file: f32 and i64 values are swapped.
        let be = WriteOptions {
            byte_order: ByteOrder::BigEndian,
            ..WriteOptions::default()
        };
        let values = [9.0f32, -8.5];
        let x = DatasetBuilder::typed_with_order::<f32>("x", vec![1, 2], ByteOrder::BigEndian)
            .data(&values)
            .unwrap();
        let ids = DatasetBuilder::typed_with_order::<i64>("ids", vec![2, 1], ByteOrder::BigEndian)
            .data(&[7i64, -3])
            .unwrap();
        let (_d, p) = h5_with(be, vec![x, ids], vec![]);
        assert_eq!(read_hdf5(&p, "x").unwrap().data, values);
        assert_eq!(read_hdf5_i32(&p, "ids").unwrap().data, [7, -3]);
    }

    #[test]
    fn synthetic_error_paths() {
        let neighbors = |v: &[i64]| DatasetBuilder::typed_data("neighbors", vec![1, 2], v).unwrap();
        let train = || f64s("train", 2, 1, &[1.0, 2.0]);
        let test = || f64s("test", 1, 1, &[1.5]);

        // An i64 id that does not fit in i32.
        let (_d, p) = h5(vec![neighbors(&[0, 1 << 40])], vec![]);
        let text = message(read_hdf5_i32(&p, "neighbors").unwrap_err(), &p);
        assert_contains(
            &text,
            &["'neighbors' row 0, column 1", "1099511627776", "i32"],
        );

        // A neighbour id that is not a row of train.
        let (_d, p) = h5(
            vec![train(), test(), neighbors(&[1, 2])],
            vec![metric("euclidean")],
        );
        let text = message(read_ann_benchmarks(&p).unwrap_err(), &p);
        assert_contains(&text, &["neighbors row 0, column 1", "is 2", "0..2"]);

        // An unknown metric is an error naming it; dot and ip are Dot.
        let (_d, p) = h5(
            vec![train(), test(), neighbors(&[1, 0])],
            vec![metric("hamming")],
        );
        assert_contains(
            &message(read_ann_benchmarks(&p).unwrap_err(), &p),
            &["unsupported: distance attribute 'hamming'"],
        );
        for name in ["dot", "ip", "IP"] {
            let (_d, p) = h5(
                vec![train(), test(), neighbors(&[1, 0])],
                vec![metric(name)],
            );
            assert_eq!(
                read_ann_benchmarks(&p).unwrap().metric,
                panns_core::Metric::Dot
            );
        }

        // No metric attribute.
        let (_d, p) = h5(vec![train(), test(), neighbors(&[1, 0])], vec![]);
        assert_contains(
            &message(read_ann_benchmarks(&p).unwrap_err(), &p),
            &["'distance'"],
        );
        assert_eq!(read_hdf5_attr_string(&p, "distance").unwrap(), None);

        // Queries of another dimension.
        let (_d, p) = h5(
            vec![train(), f64s("test", 1, 2, &[1.0, 2.0]), neighbors(&[1, 0])],
            vec![metric("euclidean")],
        );
        let text = message(read_ann_benchmarks(&p).unwrap_err(), &p);
        assert_contains(&text, &["test has dimension 2, train has 1"]);

        // Non-finite values, named with row, dimension and the stored value.
        let (_d, p) = h5(vec![f64s("x", 2, 2, &[1.0, 2.0, 3.0, 1e300])], vec![]);
        let err = read_hdf5(&p, "x").unwrap_err();
        assert!(
            matches!(err, Error::NonFinite { row: 1, dim: 1, .. }),
            "{err}"
        );
        assert_contains(&message(err, &p), &["1e300"]);
        let nan = DatasetBuilder::typed_data("y", vec![1, 3], &[1f32, f32::NAN, 0.0]).unwrap();
        let (_d, p) = h5(vec![nan], vec![]);
        assert!(matches!(
            read_hdf5(&p, "y"),
            Err(Error::NonFinite { row: 0, dim: 1, .. })
        ));

        // Shapes that are not 2-D, empty datasets, and types that are not numbers.
        let one_d = DatasetBuilder::typed_data("v", vec![3], &[1f32, 2.0, 3.0]).unwrap();
        let empty = DatasetBuilder::typed_data::<f32>("e", vec![0, 4], &[]).unwrap();
        let strings = DatasetBuilder::fixed_string_data("s", vec![2], &["ab", "cd"]).unwrap();
        let (_d, p) = h5(vec![one_d, empty, strings], vec![]);
        assert_contains(
            &message(read_hdf5(&p, "v").unwrap_err(), &p),
            &["'v' has shape [3]", "2-D"],
        );
        assert_contains(
            &message(read_hdf5(&p, "e").unwrap_err(), &p),
            &["(0, 4): no values"],
        );
        assert_contains(
            &message(read_hdf5(&p, "s").unwrap_err(), &p),
            &["'s' has type string"],
        );
        assert_contains(
            &message(read_hdf5_i32(&p, "s").unwrap_err(), &p),
            &["integer"],
        );
    }

    #[test]
    fn non_hdf5_and_missing_files_are_errors_naming_them() {
        let (_d, p) = file("fake.h5", "1,2,3\n");
        let err = read_hdf5(&p, "train").unwrap_err();
        assert!(matches!(err, Error::Hdf5 { .. }), "{err}");
        message(err, &p);
        let (_d, p) = file("empty.hdf5", []);
        message(read_ann_benchmarks(&p).unwrap_err(), &p);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("absent.hdf5");
        let err = read_hdf5(&p, "train").unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        message(err, &p);
    }
}

#[cfg(not(feature = "hdf5"))]
#[test]
fn hdf5_without_the_feature_is_a_clear_error() {
    let (_d, p) = file("a.hdf5", "not read");
    let text = message(read_any(&p, &ReadOptions::default()).unwrap_err(), &p);
    assert_contains(&text, &["HDF5 support was not compiled in", "`hdf5`"]);
}

#[test]
fn datasets_are_viewable_as_ndarray_without_a_copy() {
    let d = panns_io::Dataset {
        data: (0..12).map(|x| x as f32).collect(),
        n: 4,
        dim: 3,
    };
    let v = d.view();
    assert_eq!(v.shape(), &[4, 3]);
    assert_eq!(v[[2, 1]], 7.0);
    assert_eq!(v.as_ptr(), d.data.as_ptr());
    // And straight into an index.
    let mut b = panns_core::IndexBuilder::new(3, panns_core::Metric::Euclidean).unwrap();
    b.add_array(d.view()).unwrap();
    assert_eq!(b.len(), 4);
}
