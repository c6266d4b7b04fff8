//! End-to-end tests of the `panns` binary: every subcommand, every output format,
//! and the one-line error messages with their exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn panns(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_panns"))
        .args(args)
        .output()
        .expect("run the panns binary")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs and asserts success, returning stdout.
fn ok(args: &[&str]) -> String {
    let o = panns(args);
    assert!(
        o.status.success(),
        "panns {args:?} failed: {}\n{}",
        stderr(&o),
        stdout(&o)
    );
    stdout(&o)
}

/// Runs and asserts failure with `code` and a single `panns: error:` line on stderr
/// containing every string of `needles`.
fn fails(args: &[&str], code: i32, needles: &[&str]) {
    let o = panns(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "panns {args:?}: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected, got {err:?}");
    assert!(lines[0].starts_with("panns: error: "), "{err}");
    for n in needles {
        assert!(lines[0].contains(n), "{n:?} not in {err:?}");
    }
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"));
}

/// `n` deterministic pseudo-random rows of `dim` values in [-1, 1).
fn rows(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            (0..dim)
                .map(|_| {
                    s = s
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
                })
                .collect()
        })
        .collect()
}

fn write_csv(path: &Path, data: &[Vec<f32>]) {
    let text: String = data
        .iter()
        .map(|r| {
            let cells: Vec<String> = r.iter().map(|x| x.to_string()).collect();
            cells.join(",") + "\n"
        })
        .collect();
    std::fs::write(path, text).unwrap();
}

/// A NumPy 1.0 `.npy` file of little-endian float32.
fn write_npy(path: &Path, data: &[Vec<f32>]) {
    let dict = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}",
        data.len(),
        data[0].len()
    );
    let mut header = dict.into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(&header);
    for r in data {
        for x in r {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
    }
    std::fs::write(path, bytes).unwrap();
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn vector_arg(v: &[f32]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn build_from_csv_then_query_info_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let data = rows(300, 12, 1);
    let csv = dir.path().join("data.csv");
    write_csv(&csv, &data);
    let idx = dir.path().join("data.panns");
    let out = ok(&[
        "build",
        s(&csv),
        "-o",
        s(&idx),
        "--trees",
        "8",
        "--seed",
        "7",
    ]);
    assert!(out.contains("300 x 12"), "{out}");
    assert!(out.contains("file size"), "{out}");
    let size = std::fs::metadata(&idx).unwrap().len();
    assert!(out.contains(&size.to_string()), "{out}");

    // Text output: the item itself comes first at distance 0.
    let q = vector_arg(&data[17]);
    let out = ok(&["query", s(&idx), "--vector", &q, "-k", "5"]);
    let first: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(first[..2], ["1", "17"], "{out}");
    assert_eq!(first[2].parse::<f32>().unwrap(), 0.0);
    assert_eq!(out.lines().count(), 6);

    // CSV output, exact search, parsed back.
    let out = ok(&[
        "query",
        s(&idx),
        "--vector",
        &q,
        "-k",
        "4",
        "--exact",
        "--output",
        "csv",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "query,rank,id,distance");
    assert_eq!(lines.len(), 5);
    let mut last = -1.0f32;
    for (i, l) in lines[1..].iter().enumerate() {
        let c: Vec<&str> = l.split(',').collect();
        assert_eq!(c[0], "0");
        assert_eq!(c[1], (i + 1).to_string());
        let d: f32 = c[3].parse().unwrap();
        assert!(d >= last);
        last = d;
    }
    assert_eq!(lines[1].split(',').nth(2), Some("17"));

    // JSON output with a budget.
    let out = ok(&[
        "query",
        s(&idx),
        "--vector",
        &q,
        "-k",
        "3",
        "--budget",
        "50",
        "--output",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let hits = v["results"][0]["neighbors"].as_array().unwrap();
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[0]["id"], 17);
    assert_eq!(v["results"][0]["query"], 0);

    // info and info --verify describe the header in words.
    let info = ok(&["info", s(&idx)]);
    for want in [
        "metric           euclidean",
        "dimension        12",
        "items            300",
        "trees            8",
        "seed             7",
        "rows             in the first tree's leaf order",
        "vectors",
        "leaf_ids",
        "row_ids",
    ] {
        assert!(info.contains(want), "{want:?} not in {info}");
    }
    assert!(info.contains(&size.to_string()));
    let v = ok(&["info", "--verify", s(&idx)]);
    assert!(v.contains("verify") && v.contains("ok"), "{v}");
}

#[test]
fn build_from_npy_angular_and_query_a_file_of_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let data = rows(200, 8, 2);
    let npy = dir.path().join("data.npy");
    write_npy(&npy, &data);
    let idx = dir.path().join("a.panns");
    let out = ok(&[
        "build",
        s(&npy),
        "-o",
        s(&idx),
        "--metric",
        "angular",
        "--trees",
        "4",
        "--split",
        "median",
        "--leaf-size",
        "8",
        "--pool",
        "32",
        "--threads",
        "1",
    ]);
    assert!(out.contains("200 x 8 (angular)"), "{out}");
    assert!(ok(&["info", s(&idx)]).contains("median"));
    // The same data as raw little-endian f32 (needs --dim), under a neutral extension.
    let raw = dir.path().join("data.vectors");
    let bytes: Vec<u8> = data
        .iter()
        .flatten()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    std::fs::write(&raw, bytes).unwrap();
    let idx2 = dir.path().join("r.panns");
    let args = [
        "build",
        s(&raw),
        "-o",
        s(&idx2),
        "--format",
        "raw",
        "--dim",
        "8",
    ];
    assert!(ok(&args).contains("200 x 8"));
    fails(
        &["build", s(&raw), "-o", s(&idx2), "--format", "raw"],
        1,
        &["data.vectors"],
    );
    fails(&["build", s(&raw), "-o", s(&idx2)], 1, &["data.vectors"]);
    // Queries from a CSV file (format by extension), exact: each row finds itself.
    let qcsv = dir.path().join("q.csv");
    write_csv(&qcsv, &data[..5]);
    let out = ok(&[
        "query",
        s(&idx),
        "--queries",
        s(&qcsv),
        "-k",
        "2",
        "--exact",
        "--output",
        "csv",
    ]);
    let lines: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(lines.len(), 10);
    for q in 0..5 {
        let first: Vec<&str> = lines[2 * q].split(',').collect();
        assert_eq!(first[..3], [q.to_string(), "1".into(), q.to_string()]);
    }
    // The same queries through --format with an unhelpful extension.
    let raw = dir.path().join("q.data");
    std::fs::copy(&qcsv, &raw).unwrap();
    let out = ok(&[
        "query",
        s(&idx),
        "--queries",
        s(&raw),
        "--format",
        "csv",
        "-k",
        "1",
    ]);
    assert!(out.contains("query 4"), "{out}");
}

fn digits() -> Option<PathBuf> {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/digits-64-euclidean.hdf5");
    if p.exists() {
        Some(p)
    } else {
        println!("skipped: {} is absent", p.display());
        None
    }
}

#[test]
fn eval_on_digits_writes_csv_and_svg() {
    let Some(data) = digits() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (csv, svg, peers) = (
        dir.path().join("e.csv"),
        dir.path().join("e.svg"),
        dir.path().join("peers.csv"),
    );
    std::fs::write(
        &peers,
        "dataset,library,version,build_params,query_params,recall10,recall10_ids,qps_single\n\
         d,annoy,1,\"{\"\"n_trees\"\": 10}\",\"{\"\"search_k\"\": 100}\",0.7,0.7,9000\n\
         d,annoy,1,\"{\"\"n_trees\"\": 10}\",\"{\"\"search_k\"\": 1000}\",0.95,0.95,3000\n",
    )
    .unwrap();
    let out = ok(&[
        "eval",
        s(&data),
        "--trees",
        "4,8",
        "--budgets",
        "50,200,600",
        "--queries",
        "100",
        "--csv",
        s(&csv),
        "--plot",
        s(&svg),
        "--peers",
        s(&peers),
    ]);
    assert!(out.contains("bruteforce"), "{out}");
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        header[..9],
        [
            "dataset",
            "metric",
            "trees",
            "budget",
            "recall10",
            "qps_single",
            "qps_batch",
            "build_s",
            "index_bytes"
        ]
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 1 + 2 * 3, "{text}");
    for r in &rows {
        assert_eq!(r.len(), header.len());
        assert_eq!(r[0], "digits-64-euclidean");
        assert_eq!(r[1], "euclidean");
        for c in 4..9 {
            assert!(r[c].parse::<f64>().unwrap() >= 0.0, "{r:?}");
        }
    }
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    // Exact search is exact; the largest budget (600 of 1597 items: below the exact-scan
    // switch at half, so the trees are walked, as the candidate count shows) nearly so.
    assert_eq!(rows[0][col("library")], "bruteforce");
    assert_eq!(rows[0][col("recall10")].parse::<f64>().unwrap(), 1.0);
    for r in rows.iter().skip(1) {
        let cands: f64 = r[col("candidates")].parse().unwrap();
        assert!(cands < 1597.0 / 2.0, "an exact scan ran: {r:?}");
    }
    for r in rows.iter().filter(|r| r[3] == "600") {
        let rec: f64 = r[4].parse().unwrap();
        assert!(rec > 0.9, "recall {rec} at budget 600: {r:?}");
        assert!(r[8].parse::<u64>().unwrap() > 1597 * 64 * 4);
    }
    let plot = std::fs::read_to_string(&svg).unwrap();
    assert!(!plot.is_empty() && plot.contains("<svg") && plot.contains("annoy"));
}

#[test]
fn demo_quick_prints_the_table() {
    let out = ok(&["demo", "--quick"]);
    for want in [
        "euclidean",
        "angular",
        "1660",
        "1280",
        "recall@10",
        "69.2%",
        "48.8%",
        "exact",
    ] {
        assert!(out.contains(want), "{want:?} not in {out}");
    }
    let row = out
        .lines()
        .find(|l| l.starts_with("euclidean") && l.contains(" 5000 "))
        .unwrap();
    assert!(
        row.contains("100.0%"),
        "budget 5000 scans everything: {row}"
    );
}

#[test]
fn mistakes_give_one_line_and_the_right_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.csv");
    // Usage mistakes: exit 2.
    fails(&["build"], 2, &[]);
    fails(&["frobnicate"], 2, &["frobnicate"]);
    fails(
        &["build", "x.csv", "-o", "y", "--metric", "manhattan"],
        2,
        &["manhattan"],
    );
    fails(&["query", "x.panns"], 2, &["--vector"]);
    fails(
        &["query", "x.panns", "--vector", "1,2", "-k", "0"],
        2,
        &["-k"],
    );
    // Missing files: exit 1, the file named.
    fails(
        &["build", s(&missing), "-o", "y.panns"],
        1,
        &["missing.csv"],
    );
    fails(&["info", s(&missing)], 1, &["missing.csv"]);
    fails(&["eval", s(&missing)], 1, &["missing.csv"]);
    // Garbage instead of an index.
    let junk = dir.path().join("junk.panns");
    let bytes: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&junk, bytes).unwrap();
    fails(&["info", s(&junk)], 1, &["junk.panns"]);
    fails(&["info", "--verify", s(&junk)], 1, &["junk.panns"]);
    fails(&["query", s(&junk), "--vector", "1"], 1, &["junk.panns"]);
    // A damaged real index: --verify catches it.
    let csv = dir.path().join("d.csv");
    write_csv(&csv, &rows(100, 4, 3));
    let idx = dir.path().join("d.panns");
    ok(&["build", s(&csv), "-o", s(&idx), "--trees", "2"]);
    fails(
        &["query", s(&idx), "--vector", "1,2"],
        1,
        &["dimension 4", "d.panns"],
    );
    let mut b = std::fs::read(&idx).unwrap();
    let n = b.len();
    b[n - 200] ^= 0x55;
    std::fs::write(&idx, b).unwrap();
    fails(&["info", "--verify", s(&idx)], 1, &["d.panns"]);
    // Bad data: a non-number in the CSV names the file.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "1,2\n3,x\n").unwrap();
    fails(
        &["build", s(&bad), "-o", s(&dir.path().join("b.panns"))],
        1,
        &["bad.csv"],
    );
    // An HDF5 data set that does not exist.
    if let Some(data) = digits() {
        fails(
            &[
                "build",
                s(&data),
                "-o",
                s(&dir.path().join("h.panns")),
                "--dataset",
                "nope",
            ],
            1,
            &["nope", "digits-64-euclidean.hdf5"],
        );
    }
}

#[test]
fn eval_with_a_graph_reaches_high_recall_at_small_budgets() {
    let Some(data) = digits() else { return };
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("g.csv");
    ok(&[
        "eval",
        s(&data),
        "--trees",
        "4",
        "--graph",
        "12",
        "--budgets",
        "10,40",
        "--queries",
        "100",
        "--csv",
        s(&csv),
    ]);
    let text = std::fs::read_to_string(&csv).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let last: Vec<&str> = text.lines().last().unwrap().split(',').collect();
    assert_eq!(last[col("graph_degree")], "12");
    assert_eq!(last[col("budget")], "40");
    let recall: f64 = last[col("recall10")].parse().unwrap();
    assert!(recall > 0.9, "recall@10 with graph at budget 40: {recall}");
}

/// A small ann-benchmarks style HDF5 file: `train` (`n` x `dim` f32) and the root
/// attribute `distance`.
fn write_h5(path: &Path, data: &[Vec<f32>], distance: &str) {
    use hdf5_writer::{AttributeBuilder, DatasetBuilder, Hdf5Builder, WriteOptions};
    let flat: Vec<f32> = data.iter().flatten().copied().collect();
    let shape = vec![data.len() as u64, data[0].len() as u64];
    let bytes = Hdf5Builder::new()
        .dataset(DatasetBuilder::typed_data("train", shape, &flat).unwrap())
        .attribute(AttributeBuilder::vlen_strings("distance", &[distance]).unwrap())
        .into_plan()
        .unwrap()
        .encode(WriteOptions::default())
        .unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn build_takes_the_metric_from_the_hdf5_distance_attribute() {
    let dir = tempfile::tempdir().unwrap();
    let h5 = dir.path().join("small-angular.hdf5");
    write_h5(&h5, &rows(300, 8, 5), "angular");
    let out = dir.path().join("a.panns");
    let text = ok(&["build", s(&h5), "-o", s(&out), "--trees", "2"]);
    assert!(text.contains("300 x 8 (angular)"), "{text}");
    let info = ok(&["info", s(&out)]);
    assert!(info.contains("metric           angular"), "{info}");
    // Given and agreeing: fine. Disagreeing: a usage error naming both.
    ok(&[
        "build",
        s(&h5),
        "-o",
        s(&out),
        "--trees",
        "2",
        "--metric",
        "angular",
    ]);
    fails(
        &["build", s(&h5), "-o", s(&out), "--metric", "euclidean"],
        2,
        &[
            "--metric euclidean disagrees",
            "distance attribute 'angular'",
            "small-angular.hdf5",
        ],
    );
    // An unknown distance attribute.
    let ham = dir.path().join("ham.hdf5");
    write_h5(&ham, &rows(50, 8, 5), "hamming");
    fails(
        &["build", s(&ham), "-o", s(&out)],
        1,
        &["distance attribute 'hamming'", "ham.hdf5"],
    );
}

#[test]
fn read_options_are_checked_and_csv_options_wired_through() {
    let dir = tempfile::tempdir().unwrap();
    let data = rows(200, 4, 9);
    let csv = dir.path().join("d.csv");
    write_csv(&csv, &data);
    let out = dir.path().join("d.panns");
    // --dataset for a CSV file is a mistake, not ignored.
    fails(
        &["build", s(&csv), "-o", s(&out), "--dataset", "train"],
        2,
        &["--dataset names a data set inside an HDF5 file", "d.csv"],
    );
    // --threads is bounded.
    fails(
        &["build", s(&csv), "-o", s(&out), "--threads", "5000"],
        2,
        &["5000 threads is more than the 1024 allowed"],
    );
    fails(&["demo", "--threads", "1025"], 2, &["1024"]);
    ok(&[
        "build",
        s(&csv),
        "-o",
        s(&out),
        "--trees",
        "2",
        "--threads",
        "1024",
    ]);
    fails(
        &["query", s(&out), "--queries", s(&csv), "--dataset", "test"],
        2,
        &["--dataset"],
    );
    // --sep and --header.
    let semi = dir.path().join("semi.txt");
    let text: String = std::iter::once("1;2;3;4\n".to_string())
        .chain(data.iter().map(|r| {
            r.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(";")
                + "\n"
        }))
        .collect();
    std::fs::write(&semi, text).unwrap();
    let t = ok(&[
        "build",
        s(&semi),
        "-o",
        s(&out),
        "--trees",
        "2",
        "--sep",
        ";",
    ]);
    assert!(t.contains("201 x 4"), "{t}");
    let t = ok(&[
        "build",
        s(&semi),
        "-o",
        s(&out),
        "--trees",
        "2",
        "--sep",
        ";",
        "--header",
        "yes",
    ]);
    assert!(t.contains("200 x 4"), "{t}");
    fails(
        &["build", s(&semi), "-o", s(&out), "--header", "no"],
        1,
        &["line 1, column 1", "(is the separator ';'?)"],
    );
    fails(
        &["build", s(&semi), "-o", s(&out), "--sep", "ab"],
        2,
        &["'ab' is not a separator"],
    );
    let npy = dir.path().join("d.npy");
    write_npy(&npy, &data);
    fails(
        &["build", s(&npy), "-o", s(&out), "--sep", ";"],
        2,
        &["--sep and --header apply to CSV/text files"],
    );
}

#[test]
fn live_add_remove_compact_and_info() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("data.csv");
    write_csv(&csv, &rows(300, 12, 1));
    let idx = dir.path().join("live.panns");
    ok(&["build", s(&csv), "-o", s(&idx), "--trees", "4"]);
    let more = dir.path().join("more.csv");
    let new_rows = rows(50, 12, 2);
    write_csv(&more, &new_rows);
    let out = ok(&[
        "add",
        s(&idx),
        "--data",
        s(&more),
        "--labels",
        "1000..",
        "--no-compact",
    ]);
    assert!(
        out.contains("added 50 items") && out.contains("350 items, generation 1, delta 50"),
        "{out}"
    );
    let info = ok(&["info", s(&idx)]);
    assert!(info.contains("generation       1"), "{info}");
    assert!(info.contains("delta            50 items"), "{info}");
    // Labels from a file; default labels continue after the largest one.
    let labels = dir.path().join("labels.txt");
    std::fs::write(
        &labels,
        (0..50)
            .map(|i| format!("{}\n", 5000 + i))
            .collect::<String>(),
    )
    .unwrap();
    let out = ok(&[
        "add",
        s(&idx),
        "--data",
        s(&more),
        "--labels",
        s(&labels),
        "--no-compact",
    ]);
    assert!(out.contains("400 items, generation 1, delta 100"), "{out}");
    // Without --no-compact, a delta above 10% of the base is compacted.
    let out = ok(&["add", s(&idx), "--data", s(&more)]);
    assert!(out.contains("450 items, generation 2, delta 0"), "{out}");
    let out = ok(&["remove", s(&idx), "1000", "5", "5049", "99999"]);
    assert!(out.contains("removed 3 of 4 labels"), "{out}");
    let info = ok(&["info", s(&idx)]);
    assert!(info.contains("tombstones       3 base"), "{info}");
    let out = ok(&["compact", s(&idx)]);
    assert!(
        out.contains("447 items, generation 3, delta 0, tombstones 0"),
        "{out}"
    );
    let info = ok(&["info", s(&idx), "--verify"]);
    assert!(
        info.contains("items            447") && info.contains("labels"),
        "{info}"
    );
    // Mistakes: one line naming the file.
    fails(
        &["add", s(&idx), "--data", s(&more), "--labels", "0..10"],
        2,
        &["--labels 0..10 names 10 labels, the data file has 50 rows"],
    );
    std::fs::write(&labels, "1\nx\n").unwrap();
    fails(
        &["add", s(&idx), "--data", s(&more), "--labels", s(&labels)],
        1,
        &["line 2: 'x' is not a label", "labels.txt"],
    );
    let wide = dir.path().join("wide.csv");
    write_csv(&wide, &rows(3, 5, 3));
    fails(
        &["add", s(&idx), "--data", s(&wide)],
        1,
        &["dimension 5, the index 12", "wide.csv"],
    );
    let held = panns_io::LiveIndex::open(&idx, true).unwrap();
    fails(
        &["remove", s(&idx), "1"],
        1,
        &["another writer holds the lock", "live.panns.lock"],
    );
    drop(held);
    ok(&["remove", s(&idx), "1"]);
    fails(
        &["compact", s(&dir.path().join("none.panns"))],
        1,
        &["none.panns"],
    );
}

/// The ids of `panns query ... --output csv` for query 0..n, in rank order.
fn csv_ids(out: &str, n_queries: usize) -> Vec<Vec<u64>> {
    let mut res = vec![Vec::new(); n_queries];
    for line in out.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        res[cells[0].parse::<usize>().unwrap()].push(cells[2].parse().unwrap());
    }
    res
}

/// The exact k nearest labels of `q` among `items` (Euclidean; ties by label).
fn exact_labels(items: &[(u64, Vec<f32>)], q: &[f32], k: usize) -> Vec<u64> {
    let mut all: Vec<(f32, u64)> = items
        .iter()
        .map(|(l, v)| (v.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum(), *l))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.into_iter().take(k).map(|(_, l)| l).collect()
}

#[test]
fn query_searches_a_live_index_with_its_delta_and_removals() {
    let dir = tempfile::tempdir().unwrap();
    let (dim, k) = (12, 5);
    let base = rows(400, dim, 11);
    let csv = dir.path().join("base.csv");
    write_csv(&csv, &base);
    let idx = dir.path().join("q.panns");
    ok(&["build", s(&csv), "-o", s(&idx), "--trees", "8"]);
    let added = rows(30, dim, 12);
    let more = dir.path().join("more.csv");
    write_csv(&more, &added);
    ok(&[
        "add",
        s(&idx),
        "--data",
        s(&more),
        "--labels",
        "7000..",
        "--no-compact",
    ]);
    ok(&["remove", s(&idx), "3", "4", "7001"]);
    // The model: base ids minus removed, plus the added labels.
    let mut items: Vec<(u64, Vec<f32>)> = base
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(i, v)| (i as u64, v.clone()))
        .collect();
    items.extend(
        added
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 1)
            .map(|(i, v)| (7000 + i as u64, v.clone())),
    );
    // Queries: an added item, a removed base item, a removed added item, others.
    let queries: Vec<Vec<f32>> = vec![
        added[0].clone(),
        base[3].clone(),
        added[1].clone(),
        base[50].clone(),
        rows(1, dim, 99)[0].clone(),
    ];
    let qfile = dir.path().join("queries.csv");
    write_csv(&qfile, &queries);
    let exact = ok(&[
        "query",
        s(&idx),
        "--queries",
        s(&qfile),
        "-k",
        &k.to_string(),
        "--exact",
        "--output",
        "csv",
    ]);
    let got = csv_ids(&exact, queries.len());
    for (i, q) in queries.iter().enumerate() {
        assert_eq!(got[i], exact_labels(&items, q, k), "query {i}");
    }
    assert_eq!(got[0][0], 7000);
    assert_eq!(got[3][0], 50);
    // The approximate path (budget well below n/2) returns live labels only, and
    // finds the added item itself.
    let approx = ok(&[
        "query",
        s(&idx),
        "--queries",
        s(&qfile),
        "-k",
        &k.to_string(),
        "--budget",
        "60",
        "--output",
        "csv",
    ]);
    let got = csv_ids(&approx, queries.len());
    assert_eq!(got[0][0], 7000);
    for row in &got {
        assert_eq!(row.len(), k);
        for l in row {
            assert!(items.iter().any(|(m, _)| m == l), "label {l} is not live");
        }
    }
    // One vector, JSON: the added item at distance 0 under its label.
    let json = ok(&[
        "query",
        s(&idx),
        "--vector",
        &vector_arg(&added[2]),
        "-k",
        "1",
        "--output",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["results"][0]["neighbors"][0]["id"], 7002);
    assert_eq!(v["results"][0]["neighbors"][0]["distance"], 0.0);
    // A compacted base copied without its log keeps its labels: still printed as ids.
    ok(&["compact", s(&idx)]);
    let copy = dir.path().join("copy.panns");
    std::fs::copy(&idx, &copy).unwrap();
    let out = ok(&[
        "query",
        s(&copy),
        "--vector",
        &vector_arg(&added[2]),
        "-k",
        "2",
        "--output",
        "csv",
    ]);
    assert_eq!(csv_ids(&out, 1)[0][0], 7002, "{out}");
    let exact_copy = ok(&[
        "query",
        s(&copy),
        "--queries",
        s(&qfile),
        "-k",
        &k.to_string(),
        "--exact",
        "--output",
        "csv",
    ]);
    assert_eq!(
        exact_copy, exact,
        "the compacted copy answers as the live index did"
    );
    // A live index with no base file yet (generation 0) is queried too.
    let fresh = dir.path().join("fresh.panns");
    let mut w = panns_io::LiveIndex::create(
        &fresh,
        dim,
        panns_core::Metric::Euclidean,
        &panns_core::BuildParams::default(),
    )
    .unwrap();
    w.add(77, &added[5]).unwrap();
    w.add(78, &added[6]).unwrap();
    w.commit().unwrap();
    let out = ok(&[
        "query",
        s(&fresh),
        "--vector",
        &vector_arg(&added[6]),
        "-k",
        "3",
        "--output",
        "csv",
    ]);
    assert_eq!(csv_ids(&out, 1)[0], [78, 77]);
    // The wrong dimension names the index.
    fails(
        &["query", s(&fresh), "--vector", "1,2,3"],
        1,
        &["3 components but the index has dimension 12", "fresh.panns"],
    );
}

#[test]
fn build_with_each_dtype_and_info_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = rows(400, 10, 3);
    let npy = dir.path().join("data.npy");
    write_npy(&npy, &data);
    let mut sizes = Vec::new();
    for dtype in ["f32", "i8", "i8+f32"] {
        let idx = dir.path().join(format!("{dtype}.panns"));
        ok(&[
            "build",
            s(&npy),
            "-o",
            s(&idx),
            "--trees",
            "4",
            "--dtype",
            dtype,
        ]);
        let info = ok(&["info", s(&idx), "--verify"]);
        let line = info.lines().find(|l| l.starts_with("dtype")).unwrap();
        assert_eq!(line.split_whitespace().nth(1), Some(dtype), "{info}");
        sizes.push(std::fs::metadata(&idx).unwrap().len());
        // The item itself comes first; i8+f32 answers from the f32 rows: distance 0.
        let q = vector_arg(&data[33]);
        let out = ok(&["query", s(&idx), "--vector", &q, "-k", "3"]);
        let first: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(first[1], "33", "{dtype}: {out}");
        if dtype != "i8" {
            assert_eq!(first[2].parse::<f32>().unwrap(), 0.0, "{dtype}: {out}");
        }
    }
    // i8 < f32 < i8+f32 (codes: a quarter of the vector bytes; both: five quarters).
    assert!(sizes[1] < sizes[0] && sizes[0] < sizes[2], "{sizes:?}");
    fails(
        &[
            "build",
            s(&npy),
            "-o",
            s(&dir.path().join("x.panns")),
            "--dtype",
            "f16",
        ],
        2,
        &["f16"],
    );
}
