//! The index file format: round trips, atomic saves, damaged and hostile files.

use std::path::{Path, PathBuf};

use panns_core::rng::gaussian_vector;
use panns_core::{BuildParams, Index, IndexBuilder, Metric, SearchParams, padded_dim};
use panns_io::format::{CHECKSUM_OFFSET, HEADER_SIZE, testing};
use panns_io::{
    BuildInfo, Error, Header, OpenOptions, SectionKind, save_index, save_parts, verify_file,
};
use zerocopy::{FromBytes, IntoBytes};

fn build(metric: Metric, n: usize, dim: usize, n_trees: usize, seed: u64) -> Index {
    let mut b = IndexBuilder::new(dim, metric).unwrap();
    b.add_batch(&gaussian_vector(n * dim, false, seed)).unwrap();
    let params = BuildParams {
        n_trees,
        leaf_size: 20,
        seed,
        threads: 1,
        ..Default::default()
    };
    b.build(&params).unwrap()
}

fn open(path: &Path) -> panns_io::Result<Index> {
    panns_io::open_index(path, &OpenOptions::default())
}

fn open_verified(path: &Path) -> panns_io::Result<Index> {
    panns_io::open_index(
        path,
        &OpenOptions {
            verify_checksum: true,
        },
    )
}

fn err_text(r: panns_io::Result<Index>) -> String {
    match r {
        Ok(_) => panic!("expected an error, the file opened"),
        Err(e) => e.to_string(),
    }
}

/// A small saved index: (temp dir, path, file bytes, index).
fn small_file() -> (tempfile::TempDir, PathBuf, Vec<u8>, Index) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.panns");
    let index = build(Metric::Euclidean, 300, 37, 4, 7);
    save_index(&index, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    (dir, path, bytes, index)
}

fn header_of(bytes: &[u8]) -> Header {
    Header::read_from_prefix(bytes).unwrap().0
}

/// `bytes` with the header replaced by `edit(header)` (the checksum is left stale, so
/// these files are opened without verification).
fn with_header(bytes: &[u8], edit: impl FnOnce(&mut Header)) -> Vec<u8> {
    let mut h = header_of(bytes);
    edit(&mut h);
    let mut out = bytes.to_vec();
    out[..HEADER_SIZE].copy_from_slice(h.as_bytes());
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn queries(dim: usize, n: usize) -> Vec<Vec<f32>> {
    (0..n)
        .map(|i| gaussian_vector(dim, false, 10_000 + i as u64))
        .collect()
}

#[test]
fn round_trip_every_metric() {
    let dir = tempfile::tempdir().unwrap();
    for metric in [Metric::Euclidean, Metric::Angular, Metric::Dot] {
        let dim = 37;
        let index = build(metric, 2000, dim, 8, 3);
        let path = dir.path().join(format!("{metric}.panns"));
        save_index(&index, &path).unwrap();
        let m = open_verified(&path).unwrap();
        let h = &panns_io::read_header(&path, &OpenOptions::default()).unwrap();
        assert_eq!(h.metric(), Some(metric));
        let pool = index.params().pool_size as u32;
        assert_eq!(
            (h.dim(), h.n_items(), h.n_trees(), h.pool_size()),
            (37, 2000, 8, pool)
        );
        let cand = index.params().candidates as u32;
        assert_eq!(
            (h.leaf_size(), h.candidates(), h.split(), h.seed()),
            (20, cand, 0, 3)
        );
        assert_eq!(h.n_nodes() as usize, index.nodes().len());
        assert_eq!(
            panns_io::serialized_len(&m).unwrap(),
            std::fs::metadata(&path).unwrap().len()
        );
        assert!(m.storage_description().contains(path.to_str().unwrap()));
        assert_eq!(verify_file(&path).unwrap(), *h);

        let (a, b) = (&index, &m);
        assert_eq!(
            (b.len(), b.dim(), b.metric(), b.n_trees()),
            (2000, dim, metric, 8)
        );
        for i in 0..2000 {
            assert_eq!(a.vector(i).unwrap(), b.vector(i).unwrap());
        }
        for q in queries(dim, 50) {
            for params in [SearchParams::new(10), SearchParams::new(3).with_budget(400)] {
                let x = a.search(&q, &params).unwrap();
                let y = b.search(&q, &params).unwrap();
                assert_eq!(x.len(), y.len());
                for (u, v) in x.iter().zip(&y) {
                    assert_eq!((u.id, u.distance.to_bits()), (v.id, v.distance.to_bits()));
                }
            }
        }
    }
}

#[test]
fn opening_does_not_copy() {
    let (_dir, path, bytes, _) = small_file();
    let h = header_of(&bytes);
    // A mapped file: every section sits at its file offset from one base address.
    let m = open(&path).unwrap();
    let p = m.parts();
    let base =
        p.vectors.as_ptr() as usize - h.section(SectionKind::Vectors).unwrap().offset() as usize;
    let sections = [
        (p.vectors.as_ptr() as usize, SectionKind::Vectors),
        (p.pool.as_ptr() as usize, SectionKind::Pool),
        (p.nodes.as_ptr() as usize, SectionKind::Nodes),
        (p.leaf_ids.as_ptr() as usize, SectionKind::LeafIds),
    ];
    for (ptr, kind) in sections {
        assert_eq!(
            ptr - base,
            h.section(kind).unwrap().offset() as usize,
            "{kind:?}"
        );
        assert_eq!(ptr % 64, 0, "section not 64-byte aligned");
    }
    // Owned bytes: the index searches them in place.
    let owned = bytes.clone();
    let range = owned.as_ptr_range();
    let ix = panns_io::index_from_bytes(owned, &OpenOptions::default()).unwrap();
    let p = ix.parts();
    for ptr in [
        p.vectors.as_ptr() as *const u8,
        p.leaf_ids.as_ptr() as *const u8,
    ] {
        assert!(
            range.contains(&ptr),
            "section not inside the caller's bytes"
        );
    }
}

#[test]
fn build_info_and_sections_follow_the_spec() {
    let (_dir, _path, bytes, index) = small_file();
    let h = header_of(&bytes);
    assert_eq!(&bytes[..8], b"PANNSIDX");
    assert_eq!(BuildInfo::from(index.params()).leaf_size, 20);
    let stride = padded_dim(37) as u64;
    let vectors = h.section(SectionKind::Vectors).unwrap();
    assert_eq!(vectors.offset(), HEADER_SIZE as u64);
    assert_eq!(vectors.length(), 300 * stride * 4);
    for s in h.used_sections() {
        assert_eq!(s.offset() % 64, 0);
    }
    assert!(h.section(SectionKind::Graph).is_none());
    assert_eq!(h.file_len(), bytes.len() as u64);
}

#[test]
fn header_integers_are_little_endian_at_the_documented_offsets() {
    // The fields are little-endian types whatever the host (a native `u32` here would be
    // big-endian on a big-endian machine), so the struct has alignment 1.
    fn unaligned<T: zerocopy::Unaligned>() {}
    unaligned::<Header>();
    unaligned::<panns_io::SectionEntry>();
    let (_dir, _path, bytes, index) = small_file();
    let h = header_of(&bytes);
    let _: zerocopy::little_endian::U64 = h.n_items;
    let le32 = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let le64 = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    assert_eq!(le32(8), 1, "version");
    assert_eq!(bytes[12..16], [0x04, 0x03, 0x02, 0x01], "endian marker");
    assert_eq!(le32(16), 512, "header_size");
    assert_eq!(le32(24), 37, "dim");
    assert_eq!(le32(28), 4, "n_trees");
    assert_eq!(le64(32), 300, "n_items");
    assert_eq!(le64(64), index.nodes().len() as u64, "n_nodes");
    assert_eq!(le64(96), h.checksum(), "checksum");
    assert_eq!(le64(104), bytes.len() as u64, "file_len");
    // First section table entry: the vectors at offset 512.
    assert_eq!(le32(128), SectionKind::Vectors.code());
    assert_eq!(le64(136), 512);
    assert_eq!(le64(144), 300 * padded_dim(37) as u64 * 4);
}

#[test]
fn truncation_is_an_error() {
    let (dir, _path, bytes, _) = small_file();
    let h = header_of(&bytes);
    let mut cuts = vec![
        0,
        1,
        7,
        8,
        15,
        16,
        100,
        CHECKSUM_OFFSET + 4,
        HEADER_SIZE - 1,
        HEADER_SIZE,
    ];
    for s in h.used_sections() {
        cuts.extend([s.offset() as usize, (s.offset() + s.length()) as usize - 1]);
        cuts.push((s.offset() + s.length() / 2) as usize);
    }
    cuts.push(bytes.len() - 1);
    for cut in cuts {
        let p = write(dir.path(), "cut.panns", &bytes[..cut]);
        let e = err_text(open(&p));
        assert!(e.contains("cut.panns"), "cut at {cut}: {e}");
    }
    let p = write(dir.path(), "cut.panns", &bytes[..HEADER_SIZE]);
    assert!(err_text(open(&p)).contains("truncated"));
}

#[test]
fn byte_flips_never_panic_and_are_caught_by_the_checksum() {
    let (dir, _path, bytes, _) = small_file();
    let mut positions: Vec<usize> = (0..HEADER_SIZE).step_by(3).collect();
    let n = 150;
    positions.extend((0..n).map(|i| HEADER_SIZE + i * (bytes.len() - HEADER_SIZE) / n));
    positions.push(bytes.len() - 1);
    let qs = queries(37, 3);
    let mut undetected = 0;
    for &pos in &positions {
        let mut b = bytes.clone();
        b[pos] ^= 1 << (pos % 8);
        let p = write(dir.path(), "flip.panns", &b);
        match open(&p) {
            Err(e) => assert!(e.to_string().contains("flip.panns"), "{e}"),
            Ok(m) => {
                undetected += 1;
                for q in &qs {
                    let _ = m.search(q, &SearchParams::new(5));
                }
            }
        }
        let e = err_text(open_verified(&p));
        assert!(e.contains("flip.panns"), "flip at {pos}: {e}");
    }
    // Flips inside vector data (and padding) are only visible to the checksum.
    assert!(undetected > 0 && undetected < positions.len());
}

#[test]
fn checksum_mismatch_names_both_values() {
    let (dir, _path, mut bytes, _) = small_file();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x10;
    let p = write(dir.path(), "damaged.panns", &bytes);
    let e = err_text(open_verified(&p));
    assert!(e.contains("checksum mismatch: stored 0x"), "{e}");
    assert!(matches!(
        open_verified(&p),
        Err(Error::ChecksumMismatch { .. })
    ));
    assert!(matches!(
        verify_file(&p),
        Err(Error::ChecksumMismatch { .. })
    ));
}

#[test]
fn hostile_headers_get_specific_errors() {
    let (dir, _path, bytes, _) = small_file();
    let h = header_of(&bytes);
    let idx = |k: SectionKind| {
        h.used_sections()
            .iter()
            .position(|s| s.kind() == k.code())
            .unwrap()
    };
    let (vec_i, pool_i, nodes_i) = (
        idx(SectionKind::Vectors),
        idx(SectionKind::Pool),
        idx(SectionKind::Nodes),
    );
    let len = bytes.len() as u64;
    type Edit = Box<dyn Fn(&mut Header)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "past-eof",
            Box::new(move |h| h.sections[pool_i].offset.set(len + 64)),
            "extends past the end",
        ),
        (
            "huge-len",
            Box::new(move |h| h.sections[pool_i].length.set(u64::MAX - 10)),
            "extends past the end",
        ),
        (
            "overlap",
            Box::new(move |h| {
                h.sections[pool_i]
                    .offset
                    .set(h.sections[vec_i].offset() + 64)
            }),
            "overlap",
        ),
        (
            "misaligned",
            Box::new(move |h| {
                h.sections[pool_i]
                    .offset
                    .set(h.sections[pool_i].offset() + 4)
            }),
            "not aligned",
        ),
        (
            "in-header",
            Box::new(move |h| h.sections[vec_i].offset.set(64)),
            "overlaps the header",
        ),
        (
            "n-items-max",
            Box::new(|h| h.n_items.set(u64::MAX)),
            "item count 18446744073709551615",
        ),
        (
            "n-items-wrong",
            Box::new(|h| h.n_items.set(h.n_items() - 1)),
            "vectors section is",
        ),
        (
            "n-nodes-huge",
            Box::new(|h| h.n_nodes.set(u64::MAX / 8)),
            "nodes section size overflows",
        ),
        (
            "n-leaves-max",
            Box::new(|h| h.n_leaves.set(u64::MAX)),
            "leaf_offsets section size overflows",
        ),
        ("dim-0", Box::new(|h| h.dim.set(0)), "dimension 0"),
        (
            "metric",
            Box::new(|h| h.metric.set(9)),
            "unknown metric code 9",
        ),
        (
            "flags",
            Box::new(|h| h.flags.set(8)),
            "unknown feature flags 0x8",
        ),
        (
            "n-sections",
            Box::new(|h| h.n_sections.set(17)),
            "17 sections",
        ),
        (
            "missing",
            Box::new(move |h| h.sections[pool_i].kind.set(0)),
            "required pool section is missing",
        ),
        (
            "twice",
            Box::new(move |h| h.sections[nodes_i] = h.sections[pool_i]),
            "pool section listed twice",
        ),
        (
            "graph-deg",
            Box::new(|h| h.graph_degree.set(4)),
            "required graph section is missing",
        ),
        (
            "file-len",
            Box::new(|h| h.file_len.set(h.file_len() + 1)),
            "but its header says",
        ),
        (
            "header-size",
            Box::new(|h| h.header_size.set(1024)),
            "header size 1024",
        ),
        (
            "version-0",
            Box::new(|h| h.version.set(0)),
            "format version 0 is older",
        ),
        (
            "big-endian",
            Box::new(|h| h.endian.set(0x0403_0201)),
            "written on a big-endian machine",
        ),
        (
            "endian-junk",
            Box::new(|h| h.endian.set(7)),
            "bad endianness marker",
        ),
    ];
    for (name, edit, want) in cases {
        let p = write(
            dir.path(),
            &format!("{name}.panns"),
            &with_header(&bytes, edit),
        );
        let e = err_text(open(&p));
        assert!(
            e.contains(want) && e.contains(&format!("{name}.panns")),
            "{name}: {e}"
        );
    }

    let p = write(
        dir.path(),
        "v7.panns",
        &with_header(&bytes, |h| h.version.set(7)),
    );
    assert_eq!(
        err_text(open(&p)),
        format!(
            "{}: format version 7 is newer than this library supports (1); upgrade panns",
            p.display()
        )
    );
    let mut junk = bytes.clone();
    junk[..8].copy_from_slice(b"NOTPANNS");
    for (name, b) in [
        ("magic", &junk[..]),
        ("empty", &[][..]),
        ("tiny", &b"PAN"[..]),
    ] {
        let p = write(dir.path(), name, b);
        assert_eq!(
            err_text(open(&p)),
            format!("not a panns index file: {}", p.display())
        );
    }
    assert!(matches!(
        open(&dir.path().join("does-not-exist")),
        Err(Error::Io { .. })
    ));
}

#[test]
fn corrupt_structure_is_reported_by_the_core_check() {
    let (dir, _path, bytes, _) = small_file();
    let h = header_of(&bytes);
    let nodes = h.section(SectionKind::Nodes).unwrap();
    let n_nodes = h.n_nodes() as u32;
    let mut b = bytes.clone();
    let left = nodes.offset() as usize + 8; // node 0's `left`
    b[left..left + 4].copy_from_slice(&(n_nodes + 5).to_le_bytes());
    let p = write(dir.path(), "child.panns", &b);
    let e = err_text(open(&p));
    assert!(
        e.contains(&format!(
            "node 0 refers to node {} of {n_nodes}",
            n_nodes + 5
        )),
        "{e}"
    );
    assert!(e.contains("child.panns: corrupt index file"), "{e}");

    let ids = h.section(SectionKind::LeafIds).unwrap().offset() as usize;
    let mut b = bytes.clone();
    b[ids..ids + 4].copy_from_slice(&300u32.to_le_bytes());
    let p = write(dir.path(), "leafid.panns", &b);
    assert!(err_text(open(&p)).contains("leaf id 300 at position 0"));
}

#[test]
fn trailing_bytes_after_the_last_section_are_an_error() {
    let (dir, _path, bytes, _index) = small_file();
    // Extended by 64 zero bytes, with file_len updated so only the new check catches it.
    let mut b = with_header(&bytes, |h| h.file_len.set(h.file_len() + 64));
    b.resize(b.len() + 64, 0);
    let p = write(dir.path(), "trailing.panns", &b);
    let e = err_text(open(&p));
    assert!(
        e.contains("corrupt index file: 64 trailing bytes after the last section"),
        "{e}"
    );
}

#[test]
fn padding_between_sections_must_be_zero() {
    let (dir, _path, bytes, _index) = small_file();
    let h = header_of(&bytes);
    let mut spans: Vec<(u64, u64)> = h
        .used_sections()
        .iter()
        .map(|s| (s.offset(), s.offset() + s.length()))
        .collect();
    spans.sort_unstable();
    let gap = spans
        .windows(2)
        .find(|w| w[0].1 < w[1].0)
        .expect("the small file has a padding gap (after nodes or roots)");
    let mut b = bytes.clone();
    b[gap[0].1 as usize] = 0x5A;
    let p = write(dir.path(), "gap.panns", &b);
    let e = err_text(open(&p));
    assert!(
        e.contains(&format!(
            "non-zero byte 0x5a at offset {} in the padding between the section ending at offset {} \
             and the section at offset {}",
            gap[0].1, gap[0].1, gap[1].0
        )),
        "{e}"
    );
}

#[test]
fn padding_after_the_header_must_be_zero() {
    let (dir, _path, bytes, index) = small_file();
    // Move every section 64 bytes further: a zero gap after the header is accepted...
    let mut b = with_header(&bytes, |h| {
        let n = h.n_sections() as usize;
        for s in &mut h.sections[..n] {
            s.offset.set(s.offset() + 64);
        }
        h.file_len.set(h.file_len() + 64);
    });
    let tail = b.split_off(HEADER_SIZE);
    b.resize(HEADER_SIZE + 64, 0);
    b.extend_from_slice(&tail);
    let p = write(dir.path(), "shifted.panns", &b);
    let m = open(&p).unwrap();
    let q = gaussian_vector(37, false, 3);
    let params = SearchParams::new(5);
    assert_eq!(
        m.search(&q, &params).unwrap(),
        index.search(&q, &params).unwrap()
    );
    drop(m);
    // ...a non-zero byte in it is not.
    b[HEADER_SIZE + 10] = 1;
    let p = write(dir.path(), "shifted-dirty.panns", &b);
    let e = err_text(open(&p));
    assert!(
        e.contains("non-zero byte 0x01 at offset 522 in the padding between the header and the section at offset 576"),
        "{e}"
    );
}

#[test]
fn unknown_sections_are_skipped() {
    let (dir, _path, bytes, index) = small_file();
    let h = header_of(&bytes);
    let mut b = with_header(&bytes, |h| {
        let n = h.n_sections() as usize;
        h.sections[n].kind.set(99);
        h.sections[n].offset.set(h.file_len().div_ceil(64) * 64);
        h.sections[n].length.set(40);
        h.n_sections.set(h.n_sections() + 1);
        h.file_len.set(h.sections[n].offset() + 40);
    });
    // Zero padding up to the new section, then its (arbitrary) contents.
    b.resize(header_of(&b).file_len() as usize, 0);
    let len = b.len();
    b[len - 40..].fill(0xAB);
    let p = write(dir.path(), "future.panns", &b);
    let m = open(&p).unwrap();
    assert_eq!(
        panns_io::read_header(&p, &OpenOptions::default())
            .unwrap()
            .n_sections(),
        h.n_sections() + 1
    );
    let q = gaussian_vector(37, false, 1);
    let params = SearchParams::new(5);
    assert_eq!(
        m.search(&q, &params).unwrap(),
        index.search(&q, &params).unwrap()
    );
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect()
}

#[cfg(unix)]
#[test]
fn saves_refuse_fifos_and_directories_and_keep_them() {
    let dir = tempfile::tempdir().unwrap();
    let index = build(Metric::Euclidean, 100, 8, 2, 1);
    let empty = dir.path().join("empty-dir");
    std::fs::create_dir(&empty).unwrap();
    let e = save_index(&index, &empty).unwrap_err().to_string();
    assert!(
        e.ends_with(
            "refusing to save an index there: it is a directory; only a regular file is replaced"
        ),
        "{e}"
    );
    assert!(empty.is_dir());
    let fifo = dir.path().join("pipe.panns");
    if !std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success())
    {
        eprintln!("skipped the FIFO case: mkfifo is not available");
        return;
    }
    let e = save_index(&index, &fifo).unwrap_err().to_string();
    assert!(
        e.contains("pipe.panns: refusing to save an index there: it is a FIFO/named pipe"),
        "{e}"
    );
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo(),
        "the FIFO was replaced"
    );
    // Through a symlink, the message names both.
    let link = dir.path().join("link.panns");
    std::os::unix::fs::symlink("pipe.panns", &link).unwrap();
    let e = save_index(&index, &link).unwrap_err().to_string();
    assert!(
        e.contains("pipe.panns (the target of ") && e.contains("link.panns): refusing"),
        "{e}"
    );
    assert!(leftovers(dir.path()).is_empty());
}

#[cfg(unix)]
#[test]
fn saves_through_a_symlink_replace_its_target_and_keep_the_link() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let real_dir = dir.path().join("store");
    std::fs::create_dir(&real_dir).unwrap();
    let real = real_dir.join("real.panns");
    let old = build(Metric::Euclidean, 100, 8, 2, 1);
    save_index(&old, &real).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
    // A chain: top -> mid (relative) -> store/real.panns.
    let mid = dir.path().join("mid.panns");
    let top = dir.path().join("top.panns");
    std::os::unix::fs::symlink("store/real.panns", &mid).unwrap();
    std::os::unix::fs::symlink(&mid, &top).unwrap();
    let new = build(Metric::Angular, 150, 12, 3, 2);
    save_index(&new, &top).unwrap();
    for link in [&top, &mid] {
        assert!(
            std::fs::symlink_metadata(link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
    let m = open(&real).unwrap();
    assert_eq!((m.len(), m.dim()), (150, 12));
    assert_eq!(
        std::fs::metadata(&real).unwrap().permissions().mode() & 0o777,
        0o640,
        "the replaced file's mode is kept"
    );
    assert!(leftovers(dir.path()).is_empty() && leftovers(&real_dir).is_empty());
    // A dangling symlink: its target is created.
    let dangling = dir.path().join("dangling.panns");
    std::os::unix::fs::symlink("store/later.panns", &dangling).unwrap();
    save_index(&new, &dangling).unwrap();
    assert!(
        std::fs::symlink_metadata(&dangling)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    open(&real_dir.join("later.panns")).unwrap();
}

#[cfg(target_os = "linux")]
#[test]
fn stale_temp_files_of_dead_savers_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    // A pid that is surely gone: a child that has exited and been reaped.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let mut alive = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let live = alive.id();
    let stale = format!(".idx.panns.tmp-{dead}-AbC123");
    let keep = [
        format!(".idx.panns.tmp-{live}-XyZ789"), // its writer still runs
        format!(".other.panns.tmp-{dead}-AbC123"), // another file's
        format!(".idx.panns.tmp-{}-Qq1", std::process::id()), // this process's own
        "idx.panns.tmp-1-x".to_string(),         // not ours (no dot)
    ];
    for n in std::iter::once(&stale).chain(&keep) {
        std::fs::write(dir.path().join(n), b"partial").unwrap();
    }
    save_index(
        &build(Metric::Euclidean, 100, 8, 2, 1),
        dir.path().join("idx.panns"),
    )
    .unwrap();
    let _ = alive.kill();
    let _ = alive.wait();
    assert!(!dir.path().join(&stale).exists(), "stale temp file kept");
    for n in &keep {
        assert!(dir.path().join(n).exists(), "{n} was removed");
    }
}

#[test]
fn failed_saves_leave_the_old_file_intact() {
    let (dir, path, old, _) = small_file();
    let other = build(Metric::Angular, 500, 20, 3, 9);

    // A write failure in the middle of the vectors section.
    testing::fail_writes_after(Some(5000));
    let r = save_index(&other, &path);
    testing::fail_writes_after(None);
    let e = r.unwrap_err().to_string();
    assert!(
        e.contains("simulated write failure") && e.contains("small.panns"),
        "{e}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), old);
    assert!(leftovers(dir.path()).is_empty());

    // The target is a directory: refused before anything is written.
    let target = dir.path().join("busy");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("x"), b"x").unwrap();
    let e = save_index(&other, &target).unwrap_err().to_string();
    assert!(
        e.contains("busy: refusing to save an index there: it is a directory"),
        "{e}"
    );
    assert!(leftovers(dir.path()).is_empty());

    // A missing directory.
    let missing = dir.path().join("no/such/dir/x.panns");
    let e = save_index(&other, &missing).unwrap_err().to_string();
    assert!(e.contains(&missing.display().to_string()), "{e}");

    // A read-only directory (root ignores permissions: then only check nothing broke).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let ro = dir.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        let file = ro.join("idx.panns");
        std::fs::write(&file, &old).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        if std::fs::File::create(ro.join("probe")).is_err() {
            let e = save_index(&other, &file).unwrap_err().to_string();
            assert!(e.contains(&file.display().to_string()), "{e}");
            assert_eq!(std::fs::read(&file).unwrap(), old);
        }
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    // A successful save replaces the file; a mapping of the old one stays valid.
    let before = open(&path).unwrap();
    save_index(&other, &path).unwrap();
    assert_eq!(before.len(), 300);
    assert_eq!(open(&path).unwrap().len(), 500);
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn invalid_parts_are_not_saved() {
    let index = build(Metric::Dot, 100, 5, 2, 1);
    let mut parts = index.parts();
    parts.n_items = 99;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.panns");
    let info = BuildInfo::from(index.params());
    let e = save_parts(&parts, &info, &path).unwrap_err().to_string();
    assert!(e.contains("refusing to save an invalid index"), "{e}");
    assert!(!path.exists());
}

/// The fuzz seeds under `fuzz/seeds/open_index` open and verify; with
/// `PANNS_WRITE_FUZZ_SEEDS=1` they are rewritten first.
#[test]
fn fuzz_seeds_open() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/open_index");
    if std::env::var_os("PANNS_WRITE_FUZZ_SEEDS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        let seeds = [
            ("euclidean-40x3.panns", Metric::Euclidean, 40, 3, 2),
            ("angular-25x17.panns", Metric::Angular, 25, 17, 3),
            ("dot-12x1.panns", Metric::Dot, 12, 1, 1),
        ];
        for (name, metric, n, dim, n_trees) in seeds {
            let mut b = IndexBuilder::new(dim, metric).unwrap();
            b.add_batch(&gaussian_vector(n * dim, false, n as u64))
                .unwrap();
            let params = BuildParams {
                n_trees,
                leaf_size: 6,
                pool_size: 4,
                threads: 1,
                ..Default::default()
            };
            save_index(&b.build(&params).unwrap(), dir.join(name)).unwrap();
        }
        let mut b = IndexBuilder::new(4, Metric::Euclidean).unwrap();
        b.add_batch(&gaussian_vector(30 * 4, false, 30)).unwrap();
        let params = BuildParams {
            n_trees: 2,
            leaf_size: 6,
            pool_size: 4,
            threads: 1,
            ..Default::default()
        };
        let mut index = b.build(&params).unwrap();
        let graph = panns_core::GraphParams {
            degree: 4,
            build_k: 8,
            threads: 1,
            ..Default::default()
        };
        index.build_graph(&graph).unwrap();
        save_index(&index, dir.join("graph-30x4.panns")).unwrap();
        // Codes, and codes with f32 beside them: the code sections and both flags.
        for (name, dtype) in [
            ("i8-graph-30x4.panns", panns_core::Dtype::I8),
            ("i8f32-graph-30x4.panns", panns_core::Dtype::I8F32),
        ] {
            save_index(&index.to_dtype(dtype).unwrap(), dir.join(name)).unwrap();
        }
    }
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("skipping: {} is absent", dir.display());
        return;
    };
    for e in entries {
        verify_file(e.unwrap().path()).unwrap();
    }
}

/// Stored vectors are not checked on open (that would read the whole file): a damaged
/// one may be zero or NaN. Searching must then refuse it as a query or rank it last,
/// never panic. (Found by the `open_index` fuzzer, which assumed stored vectors are
/// always valid queries.)
#[test]
fn damaged_vectors_do_not_break_search() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.panns");
    save_index(&build(Metric::Angular, 200, 37, 3, 5), &path).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let v = header_of(&bytes)
        .section(SectionKind::Vectors)
        .unwrap()
        .offset() as usize;
    let row = padded_dim(37) * 4;
    bytes[v..v + row].fill(0);
    bytes[v + row..v + row + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let p = write(dir.path(), "damaged.panns", &bytes);
    let m = open(&p).unwrap();
    let view = &m;
    // The items stored in rows 0 and 1.
    let item = |r: usize| m.parts().row_ids.get(r).map_or(r, |&i| i as usize);
    assert!(matches!(
        view.search(&view.vector(item(0)).unwrap(), &SearchParams::new(3)),
        Err(panns_core::Error::ZeroVector { .. })
    ));
    assert!(
        view.search(&view.vector(item(1)).unwrap(), &SearchParams::new(3))
            .is_err()
    );
    for q in queries(37, 5) {
        assert_eq!(view.search(&q, &SearchParams::new(200)).unwrap().len(), 200);
    }
    assert!(matches!(
        open_verified(&p),
        Err(Error::ChecksumMismatch { .. })
    ));
}

/// Every input under `fuzz/regressions/open_index` (inputs that once crashed the fuzz
/// target) opens or fails cleanly, and searches without panicking when it opens.
#[test]
fn fuzz_regressions_do_not_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/open_index");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("skipping: {} is absent", dir.display());
        return;
    };
    for e in entries {
        let path = e.unwrap().path();
        let Ok(m) = open(&path) else { continue };
        let view = &m;
        for id in [0, view.len() - 1] {
            let stored = view.vector(id).unwrap();
            let _ = view.search(&stored, &SearchParams::new(5));
            let _ = view.linear_search(&stored, 5);
        }
        let q: Vec<f32> = (0..view.dim()).map(|j| j as f32 - 1.5).collect();
        view.search(&q, &SearchParams::new(5)).unwrap();
    }
}

#[test]
fn mapped_index_is_send_and_sync_and_directories_are_refused() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Index>();
    let dir = tempfile::tempdir().unwrap();
    let e = err_text(open(dir.path()));
    assert!(e.contains(&dir.path().display().to_string()), "{e}");
}

#[test]
fn graph_section_round_trips() {
    let mut index = build(Metric::Euclidean, 600, 37, 4, 11);
    index
        .build_graph(&panns_core::GraphParams::default())
        .unwrap();
    let degree = index.parts().graph_degree;
    assert!(degree > 0);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("graph.panns");
    save_index(&index, &path).unwrap();
    let m = open_verified(&path).unwrap();
    let h = panns_io::read_header(&path, &OpenOptions::default()).unwrap();
    assert_eq!(h.graph_degree() as usize, degree);
    let g = h.section(SectionKind::Graph).unwrap();
    assert_eq!(g.length() as usize, 600 * degree * 4);
    assert_eq!(m.parts().graph, index.parts().graph);
    for q in queries(37, 20) {
        let p = SearchParams::new(10).with_budget(50);
        assert_eq!(m.search(&q, &p).unwrap(), index.search(&q, &p).unwrap());
    }
    // A graph entry naming a missing item is caught by the structure check.
    let mut bytes = std::fs::read(&path).unwrap();
    let at = g.offset() as usize;
    bytes[at..at + 4].copy_from_slice(&600u32.to_le_bytes());
    let p = write(dir.path(), "bad-graph.panns", &bytes);
    assert!(err_text(open(&p)).contains("graph entry 0 names item 600 of 600"));
}

/// `bytes` with the checksum recomputed (a crafted file that passes the hash).
fn resealed(mut bytes: Vec<u8>) -> Vec<u8> {
    let sum = panns_io::format::file_checksum(&bytes);
    bytes[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 8].copy_from_slice(&sum.to_le_bytes());
    bytes
}

#[test]
fn verification_checks_vector_values_even_with_a_valid_checksum() {
    let (dir, _path, bytes, index) = small_file();
    let v = header_of(&bytes)
        .section(SectionKind::Vectors)
        .unwrap()
        .offset() as usize;
    let row = padded_dim(37) * 4;
    // The row holding item 5.
    let r5 = index.parts().id_rows.get(5).map_or(5, |&r| r as usize);
    let mut crafted = bytes.clone();
    crafted[v + r5 * row + 8..v + r5 * row + 12].copy_from_slice(&f32::NAN.to_le_bytes());
    let crafted = resealed(crafted);
    let p = write(dir.path(), "nan-sealed.panns", &crafted);
    // Without verification it opens, and the damaged row never scores finite.
    let m = open(&p).unwrap();
    let q: Vec<f32> = m
        .vector(5)
        .unwrap()
        .iter()
        .map(|x| if x.is_nan() { 0.0 } else { *x })
        .collect();
    let hits = m.search(&q, &SearchParams::new(300)).unwrap();
    let h5 = hits.iter().find(|h| h.id == 5).unwrap();
    assert_eq!(h5.distance, f32::INFINITY);
    assert_eq!(hits.last().unwrap().id, 5);
    // With verification (checksum + values) it is refused, naming the row.
    let e = err_text(open_verified(&p));
    assert!(e.contains("stored vector 5"), "{e}");
    assert!(e.contains("nan-sealed.panns"), "{e}");
    let e = verify_file(&p).unwrap_err().to_string();
    assert!(e.contains("stored vector 5"), "{e}");
    // Non-zero padding too.
    let mut padded = bytes.clone();
    padded[v + row - 4..v + row].copy_from_slice(&1.0f32.to_le_bytes());
    let p = write(dir.path(), "pad-sealed.panns", &resealed(padded));
    assert!(err_text(open_verified(&p)).contains("padding"));
}

#[test]
fn bytes_round_trip_in_memory() {
    let (_dir, path, bytes, index) = small_file();
    // Serialising gives exactly the file `save_index` writes.
    assert_eq!(panns_io::index_to_bytes(&index).unwrap(), bytes);
    assert_eq!(
        panns_io::serialized_len(&index).unwrap(),
        bytes.len() as u64
    );
    // Opened from owned bytes, from a misaligned borrowed slice, and loaded: same answers.
    let mut shifted = vec![0u8; bytes.len() + 1];
    shifted[1..].copy_from_slice(&bytes);
    let from_vec = panns_io::index_from_bytes(bytes.clone(), &OpenOptions::default()).unwrap();
    let from_slice = panns_io::index_from_slice(&shifted[1..], &OpenOptions::default()).unwrap();
    let loaded = panns_io::load_index(
        &path,
        &OpenOptions {
            verify_checksum: true,
        },
    )
    .unwrap();
    for q in queries(37, 10) {
        let p = SearchParams::new(7).with_budget(60);
        let want = index.search(&q, &p).unwrap();
        assert_eq!(from_vec.search(&q, &p).unwrap(), want);
        assert_eq!(from_slice.search(&q, &p).unwrap(), want);
        assert_eq!(loaded.search(&q, &p).unwrap(), want);
    }
    // Damaged bytes are refused with "<bytes>" as the source.
    let mut bad = bytes.clone();
    bad[0] = b'X';
    let e = panns_io::index_from_slice(&bad, &OpenOptions::default()).unwrap_err();
    assert!(e.to_string().contains("<bytes>"), "{e}");
}

#[test]
fn labels_and_generation_sections_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("labelled.panns");
    let index = build(Metric::Euclidean, 300, 37, 4, 7);
    let labels: Vec<u64> = (0..300u64).map(|i| i * 1_000_003 + (1 << 40)).collect();
    let extras = panns_io::Extras {
        labels: Some(&labels),
        generation: Some(42),
    };
    panns_io::save_index_with(&index, &extras, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let layout = panns_io::parse(&bytes, &path, &OpenOptions::default()).unwrap();
    assert_eq!(layout.labels(&bytes, &path).unwrap().unwrap(), &labels[..]);
    assert_eq!(layout.generation(&bytes), Some(42));
    let h = header_of(&bytes);
    assert!(h.section(SectionKind::Labels).is_some());
    // A plain reader opens it and answers as before (labels do not change ids).
    let m = open_verified(&path).unwrap();
    let q = gaussian_vector(37, false, 3);
    let p = SearchParams::new(5);
    assert_eq!(m.search(&q, &p).unwrap(), index.search(&q, &p).unwrap());
    // Without extras: no labels, no generation.
    let (_d, plain, pbytes, _) = small_file();
    let l2 = panns_io::parse(&pbytes, &plain, &OpenOptions::default()).unwrap();
    assert_eq!(l2.labels(&pbytes, &plain).unwrap(), None);
    assert_eq!(l2.generation(&pbytes), None);
    // A labels section of the wrong length is corrupt, named.
    let s = h.section(SectionKind::Labels).unwrap();
    let i = h
        .used_sections()
        .iter()
        .position(|e| e.kind() == SectionKind::Labels.code())
        .unwrap();
    let short = s.length() - 8;
    let b = with_header(&bytes, |h| h.sections[i].length.set(short));
    let e = err_text(panns_io::index_from_bytes(b, &OpenOptions::default()));
    assert!(e.contains("labels section is 2392 bytes"), "{e}");
    // Wrong label count refused on save.
    let bad = panns_io::Extras {
        labels: Some(&labels[..10]),
        generation: None,
    };
    let e = panns_io::save_index_with(&index, &bad, dir.path().join("x.panns")).unwrap_err();
    assert!(e.to_string().contains("10 labels for 300 items"), "{e}");
}
