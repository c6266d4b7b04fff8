//! `panns shard` and `panns query MANIFEST`: the labels printed are rows of the data file, an
//! exact query equals brute force, the merged answer equals the library's, and a damaged
//! manifest gives one error line.

use std::path::Path;
use std::process::{Command, Output};

fn panns(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_panns"))
        .args(args)
        .output()
        .expect("run the panns binary")
}

fn ok(args: &[&str]) -> String {
    let o = panns(args);
    assert!(
        o.status.success(),
        "panns {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn rows(n: usize, dim: usize) -> Vec<Vec<f32>> {
    let mut st = 0x2545F4914F6CDD1Du64;
    (0..n)
        .map(|_| {
            (0..dim)
                .map(|_| {
                    st ^= st << 13;
                    st ^= st >> 7;
                    st ^= st << 17;
                    ((st >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
                })
                .collect()
        })
        .collect()
}

/// (label, distance) rows of `--output csv`.
fn csv(out: &str) -> Vec<(usize, u64, f32)> {
    out.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn shard_then_query_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let data = rows(1200, 8);
    let text: String = data
        .iter()
        .map(|r| r.iter().map(f32::to_string).collect::<Vec<_>>().join(",") + "\n")
        .collect();
    let csv_path = dir.path().join("data.csv");
    std::fs::write(&csv_path, text).unwrap();
    let out_dir = dir.path().join("shards");
    let printed = ok(&[
        "shard",
        s(&csv_path),
        "-o",
        s(&out_dir),
        "--shards",
        "3",
        "--trees",
        "4",
    ]);
    assert!(printed.contains("in 3 shards"), "{printed}");
    let manifest = out_dir.join("manifest.panns-shards");
    let ix = panns_io::ShardedIndex::open(&manifest, &panns_io::OpenOptions::default()).unwrap();
    assert_eq!((ix.len(), ix.n_shards()), (1200, 3));

    // The queries are rows 5 and 900 of the data: each is its own nearest neighbour.
    let q: Vec<Vec<f32>> = vec![data[5].clone(), data[900].clone()];
    let qtext: String = q
        .iter()
        .map(|r| r.iter().map(f32::to_string).collect::<Vec<_>>().join(",") + "\n")
        .collect();
    let qpath = dir.path().join("q.csv");
    std::fs::write(&qpath, qtext).unwrap();
    let exact = csv(&ok(&[
        "query",
        s(&manifest),
        "--queries",
        s(&qpath),
        "-k",
        "6",
        "--exact",
        "--output",
        "csv",
    ]));
    for (qi, want_first) in [(0usize, 5u64), (1, 900)] {
        let hits: Vec<_> = exact.iter().filter(|h| h.0 == qi).collect();
        assert_eq!(hits.len(), 6);
        assert_eq!(hits[0].1, want_first);
        // Brute force over the data.
        let mut all: Vec<(f32, u64)> = data
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let d: f32 = r.iter().zip(&q[qi]).map(|(a, b)| (a - b) * (a - b)).sum();
                (d.sqrt(), i as u64)
            })
            .collect();
        all.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap().then(a.1.cmp(&b.1)));
        let want: Vec<u64> = all.iter().take(6).map(|x| x.1).collect();
        assert_eq!(hits.iter().map(|h| h.1).collect::<Vec<_>>(), want);
    }
    // The approximate answer is the library's merged answer.
    let approx = csv(&ok(&[
        "query",
        s(&manifest),
        "--queries",
        s(&qpath),
        "-k",
        "6",
        "--budget",
        "20",
        "--output",
        "csv",
    ]));
    let flat: Vec<f32> = q.concat();
    let lib = ix
        .search_batch(&flat, &panns_core::SearchParams::new(6).with_budget(20))
        .unwrap();
    let lib: Vec<(usize, u64)> = lib
        .iter()
        .enumerate()
        .flat_map(|(qi, h)| h.iter().map(move |x| (qi, x.0)))
        .collect();
    assert_eq!(approx.iter().map(|h| (h.0, h.1)).collect::<Vec<_>>(), lib);

    // A damaged manifest: one error line naming the file, exit status 1.
    let t = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, t.replacen("rows:400", "rows:401", 1)).unwrap();
    let o = panns(&["query", s(&manifest), "--vector", "0,0,0,0,0,0,0,0"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("panns: error: ")
            && err.contains("checksum mismatch")
            && err.contains("manifest.panns-shards"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}
