//! Checks of the header and the section table, before anything is sliced.

use std::fs::{File, Metadata};
use std::ops::Range;
use std::path::Path;

use panns_core::{MAX_DIM, MAX_GRAPH_DEGREE, MAX_ITEMS, Metric};
use zerocopy::FromBytes;

use super::corrupt;
use super::header::{
    ENDIAN_MARKER, FLAG_CODES, FLAG_F32_BESIDE_CODES, FLAG_ROW_ORDER, FORMAT_VERSION, HEADER_SIZE,
    Header, KNOWN_FLAGS, MAGIC, MAX_SECTIONS, SECTION_ALIGN, SectionKind,
};
use super::{OpenOptions, file_checksum};
use crate::error::{Error, Result};

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

/// Refuses to work on a big-endian host: the header is little-endian everywhere, but the
/// sections (f32 rows, u32 ids, nodes) are viewed in place in native byte order, which
/// must therefore be little-endian too (see `docs/format.md`).
pub(super) fn check_host_endianness(path: &Path) -> Result<()> {
    if cfg!(target_endian = "big") {
        return Err(Error::unsupported(
            path,
            "this machine is big-endian; panns index files are little-endian and are viewed \
             in place, so they can only be opened and written on little-endian machines",
        ));
    }
    Ok(())
}

/// Magic, endianness, version, size, checksum and the header's scalar fields.
pub(super) fn check_header(bytes: &[u8], path: &Path, opts: &OpenOptions) -> Result<Header> {
    check_host_endianness(path)?;
    if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
        return Err(Error::NotAnIndex {
            path: path.to_path_buf(),
        });
    }
    let short = |what: &str| {
        corrupt(
            path,
            format!(
                "file is {} bytes, too short for {what} (truncated?)",
                bytes.len()
            ),
        )
    };
    if bytes.len() < 16 {
        return Err(short("the format version"));
    }
    let endian = u32_at(bytes, 12);
    if endian == ENDIAN_MARKER.swap_bytes() {
        return Err(Error::WrongEndianness {
            path: path.to_path_buf(),
        });
    }
    if endian != ENDIAN_MARKER {
        return Err(corrupt(
            path,
            format!("bad endianness marker {endian:#010x}"),
        ));
    }
    let version = u32_at(bytes, 8);
    if version != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let header = Header::read_from_prefix(bytes)
        .map_err(|_| short(&format!("the {HEADER_SIZE}-byte header")))?
        .0;
    if header.file_len() != bytes.len() as u64 {
        return Err(corrupt(
            path,
            format!(
                "file is {} bytes but its header says {} (truncated or extended)",
                bytes.len(),
                header.file_len()
            ),
        ));
    }
    if opts.verify_checksum {
        let computed = file_checksum(bytes);
        if computed != header.checksum() {
            return Err(Error::ChecksumMismatch {
                path: path.to_path_buf(),
                stored: header.checksum(),
                computed,
            });
        }
    }
    let bad = |msg: String| Err(corrupt(path, msg));
    if header.header_size() as usize != HEADER_SIZE {
        return bad(format!(
            "header size {} differs from {HEADER_SIZE}",
            header.header_size()
        ));
    }
    if header.flags() & !KNOWN_FLAGS != 0 {
        return bad(format!(
            "unknown feature flags {:#x} (written by a newer panns?)",
            header.flags() & !KNOWN_FLAGS
        ));
    }
    if header.flags() & (FLAG_CODES | FLAG_F32_BESIDE_CODES) == FLAG_F32_BESIDE_CODES {
        return bad("the header flags f32 vectors beside codes, but no codes".to_string());
    }
    if Metric::from_code(header.metric_code()).is_none() {
        return bad(format!("unknown metric code {}", header.metric_code()));
    }
    if header.dim() == 0 || header.dim() as usize > MAX_DIM {
        return bad(format!(
            "dimension {} is not in 1..={MAX_DIM}",
            header.dim()
        ));
    }
    if header.n_items() == 0 || header.n_items() > MAX_ITEMS as u64 {
        return bad(format!(
            "item count {} is not in 1..={MAX_ITEMS}",
            header.n_items()
        ));
    }
    if header.n_trees() == 0 {
        return bad("tree count is 0".into());
    }
    if header.pool_size() == 0 {
        return bad("pool size is 0".into());
    }
    if header.graph_degree() as usize > MAX_GRAPH_DEGREE {
        return bad(format!(
            "graph degree {} exceeds {MAX_GRAPH_DEGREE}",
            header.graph_degree()
        ));
    }
    if header.n_sections() as usize > MAX_SECTIONS {
        return bad(format!(
            "{} sections listed, the table holds {MAX_SECTIONS}",
            header.n_sections()
        ));
    }
    Ok(header)
}

/// Bounds, alignment, overlap and expected length of every section; returns the byte
/// range of each known kind.
pub(super) fn check_sections(
    h: &Header,
    file_len: usize,
    path: &Path,
) -> Result<[Range<usize>; SectionKind::ALL.len()]> {
    let bad = |msg: String| corrupt(path, msg);
    let overflow = |what: &str| bad(format!("{what} section size overflows"));
    let stride = panns_core::padded_dim(h.dim() as usize) as u64;
    let rows = |n: u64, what: &str| {
        n.checked_mul(stride)
            .and_then(|x| x.checked_mul(4))
            .ok_or_else(|| overflow(what))
    };
    let mut seen: [Option<Range<usize>>; SectionKind::ALL.len()] = Default::default();
    let mut spans: Vec<(u64, u64, usize)> = Vec::with_capacity(MAX_SECTIONS);
    for (i, s) in h.used_sections().iter().enumerate() {
        let end = s
            .offset()
            .checked_add(s.length())
            .filter(|&e| e <= file_len as u64)
            .ok_or_else(|| {
                bad(format!(
                    "section {i} (kind {}) at offset {} with length {} extends past the end of the {file_len}-byte file",
                    s.kind(), s.offset(), s.length()
                ))
            })?;
        if s.offset() < HEADER_SIZE as u64 {
            return Err(bad(format!(
                "section {i} (kind {}) at offset {} overlaps the header",
                s.kind(),
                s.offset()
            )));
        }
        if !s.offset().is_multiple_of(SECTION_ALIGN) {
            return Err(bad(format!(
                "section {i} (kind {}) at offset {} is not aligned to {SECTION_ALIGN} bytes",
                s.kind(),
                s.offset()
            )));
        }
        spans.push((s.offset(), end, i));
        let Some(kind) = SectionKind::from_code(s.kind()) else {
            continue; // a section of a later version: skipped
        };
        let expected = match kind {
            SectionKind::Vectors => Some(rows(h.n_items(), "vectors")?),
            SectionKind::Pool => Some(rows(h.pool_size() as u64, "pool")?),
            SectionKind::Nodes => Some(
                h.n_nodes()
                    .checked_mul(16)
                    .ok_or_else(|| overflow("nodes"))?,
            ),
            SectionKind::Roots => Some(h.n_trees() as u64 * 4),
            SectionKind::LeafOffsets => Some(
                h.n_leaves()
                    .checked_add(1)
                    .and_then(|n| n.checked_mul(4))
                    .ok_or_else(|| overflow("leaf_offsets"))?,
            ),
            SectionKind::LeafIds => None,
            SectionKind::Graph => Some(
                h.n_items()
                    .checked_mul(h.graph_degree() as u64)
                    .and_then(|n| n.checked_mul(4))
                    .ok_or_else(|| overflow("graph"))?,
            ),
            SectionKind::Labels => Some(
                h.n_items()
                    .checked_mul(8)
                    .ok_or_else(|| overflow("labels"))?,
            ),
            SectionKind::Generation => Some(8),
            SectionKind::Codes => Some(
                h.n_items()
                    .checked_mul(stride)
                    .ok_or_else(|| overflow("codes"))?,
            ),
            SectionKind::CodeLo | SectionKind::CodeStep => Some(stride * 4),
            SectionKind::CodeAux | SectionKind::RowIds | SectionKind::IdRows => Some(
                h.n_items()
                    .checked_mul(4)
                    .ok_or_else(|| overflow(kind.name()))?,
            ),
        };
        if let Some(want) = expected
            && want != s.length()
        {
            return Err(bad(format!(
                "{} section is {} bytes, the header's counts need {want}",
                kind.name(),
                s.length()
            )));
        }
        if !s.length().is_multiple_of(4) {
            return Err(bad(format!(
                "{} section length {} is not a multiple of 4",
                kind.name(),
                s.length()
            )));
        }
        let slot = &mut seen[kind.slot()];
        if slot.is_some() {
            return Err(bad(format!("{} section listed twice", kind.name())));
        }
        // `end <= file_len`, so both fit in usize.
        *slot = Some(s.offset() as usize..end as usize);
    }
    spans.sort_unstable();
    for w in spans.windows(2) {
        let ((_, end_a, a), (start_b, _, b)) = (w[0], w[1]);
        if end_a > start_b {
            return Err(bad(format!("sections {a} and {b} overlap")));
        }
    }
    // The file ends where its last section ends (docs/format.md: `file_len` = end of the
    // last section); anything after it is not part of any section.
    let last_end = spans
        .iter()
        .map(|&(_, end, _)| end)
        .max()
        .unwrap_or(HEADER_SIZE as u64);
    if last_end < file_len as u64 {
        return Err(bad(format!(
            "{} trailing bytes after the last section (it ends at offset {last_end}, the file is \
             {file_len} bytes)",
            file_len as u64 - last_end
        )));
    }
    let mut ranges: [Range<usize>; SectionKind::ALL.len()] = Default::default();
    let codes = h.flags() & FLAG_CODES != 0;
    let beside = h.flags() & FLAG_F32_BESIDE_CODES != 0;
    let row_order = h.flags() & FLAG_ROW_ORDER != 0;
    for kind in SectionKind::ALL {
        let optional = matches!(kind, SectionKind::Labels | SectionKind::Generation);
        let needed = kind.required()
            || (kind == SectionKind::Graph && h.graph_degree() > 0)
            || (kind == SectionKind::Vectors && (!codes || beside))
            || (kind.is_code() && codes)
            || (kind.is_row_order() && row_order);
        match (seen[kind.slot()].take(), needed) {
            (Some(r), true) => ranges[kind.slot()] = r,
            (Some(r), false) if optional => ranges[kind.slot()] = r,
            (None, false) => {}
            (None, true) => {
                let why = if kind.is_code() {
                    " (the header flags codes)"
                } else if kind.is_row_order() {
                    " (the header flags a row order)"
                } else {
                    ""
                };
                return Err(bad(format!(
                    "required {} section is missing{why}",
                    kind.name()
                )));
            }
            (Some(_), false) if kind == SectionKind::Graph => {
                return Err(bad("graph section present but graph degree is 0".into()));
            }
            (Some(_), false) if kind.is_row_order() => {
                return Err(bad(format!(
                    "{} section present but the header flags no row order",
                    kind.name()
                )));
            }
            (Some(_), false) => {
                let why = if codes {
                    "the header flags the vectors as stored in codes"
                } else {
                    "the header does not flag codes"
                };
                return Err(bad(format!("{} section present but {why}", kind.name())));
            }
        }
    }
    Ok(ranges)
}

/// The bytes between the header and the first section and between sections (the
/// alignment padding) must be zero: a writer never puts anything there, so non-zero
/// bytes mean damage or data hidden outside every section. Call after
/// [`check_sections`] accepted `h` for `bytes` (bounds are re-checked, never trusted).
pub(super) fn check_padding(bytes: &[u8], h: &Header, path: &Path) -> Result<()> {
    let mut spans: Vec<(u64, u64)> = h
        .used_sections()
        .iter()
        .map(|s| (s.offset(), s.offset().saturating_add(s.length())))
        .collect();
    spans.sort_unstable();
    let mut pos = HEADER_SIZE as u64;
    for (start, end) in spans {
        let gap = usize::try_from(pos)
            .ok()
            .zip(usize::try_from(start).ok())
            .and_then(|(a, b)| bytes.get(a..b))
            .unwrap_or(&[]);
        if let Some(i) = gap.iter().position(|&b| b != 0) {
            let at = pos + i as u64;
            let after = if pos == HEADER_SIZE as u64 {
                "the header".to_string()
            } else {
                format!("the section ending at offset {pos}")
            };
            return Err(corrupt(
                path,
                format!(
                    "non-zero byte {:#04x} at offset {at} in the padding between {after} and the \
                     section at offset {start} (padding must be zero)",
                    gap[i]
                ),
            ));
        }
        pos = pos.max(end);
    }
    Ok(())
}

/// `O_NONBLOCK` (Linux x86_64/aarch64/riscv64/arm; std does not export it and `libc` is not
/// a dependency): opening a FIFO that appeared after the type check must not block.
#[cfg(target_os = "linux")]
const O_NONBLOCK: i32 = 0o4000;

/// What kind of non-regular file `meta` describes, as the end of a sentence about `path`
/// ("is a directory", ...), or `None` for a regular file.
pub(super) fn not_regular(meta: &Metadata, path: &Path) -> Option<&'static str> {
    let ft = meta.file_type();
    if ft.is_dir() {
        return Some("is a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return Some("is a FIFO/named pipe");
        }
        if ft.is_char_device() {
            return Some("is a character device");
        }
        if ft.is_block_device() {
            return Some("is a block device");
        }
        if ft.is_socket() {
            return Some("is a socket");
        }
    }
    if !ft.is_file() {
        return Some("is not a regular file");
    }
    // /proc and /sys files claim to be regular but report size 0 (or a page) whatever
    // they hold, and their contents change under a reader.
    if cfg!(target_os = "linux") {
        let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if real.starts_with("/proc") || real.starts_with("/sys") {
            return Some("is a /proc or /sys pseudo-file");
        }
    }
    None
}

/// Refuses an opened `file` that is not a regular file: a directory, a FIFO, a device, a
/// socket or a `/proc`/`/sys` pseudo-file, with an error naming `path` and what it is.
#[cfg_attr(
    not(test),
    expect(
        dead_code,
        reason = "MappedIndex::open calls it next (index refactoring)"
    )
)]
pub(crate) fn check_regular_file(file: &File, path: &Path) -> Result<()> {
    check_regular_file_as(file, path, INDEX_FILE)
}

/// What a non-regular file is not, in messages about index files.
const INDEX_FILE: &str = "not an index file";

/// The error for a non-regular `path` described by `what` (from [`not_regular`]).
fn refuse(path: &Path, what: &str, expected: &str) -> Error {
    // An I/O error (the C ABI's PANNS_IO): the path names something that is not a file.
    let msg = if what == "is a directory" {
        what.to_string()
    } else {
        format!("{what}, {expected}")
    };
    Error::io(
        path,
        std::io::Error::new(std::io::ErrorKind::InvalidInput, msg),
    )
}

/// [`check_regular_file`] with `expected` ("not an index file") ending the message.
fn check_regular_file_as(file: &File, path: &Path, expected: &str) -> Result<()> {
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    match not_regular(&meta, path) {
        None => Ok(()),
        Some(what) => Err(refuse(path, what, expected)),
    }
}

/// Opens `path` for reading only if it is a regular file. The type is checked with
/// `std::fs::metadata` **before** opening (opening a FIFO for reading blocks until a
/// writer appears), the file is opened non-blocking on Linux (in case it was replaced by
/// a FIFO in between), and the opened file is checked again.
pub(crate) fn open_regular(path: &Path) -> Result<File> {
    open_regular_as(path, INDEX_FILE)
}

/// [`open_regular`] with `expected` ending the message for a non-regular file (the dataset
/// readers say why they need a regular file).
pub(crate) fn open_regular_as(path: &Path, expected: &str) -> Result<File> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if let Some(what) = not_regular(&meta, path) {
        return Err(refuse(path, what, expected));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| Error::io(path, e))?;
    check_regular_file_as(&file, path, expected)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(path: &Path) -> String {
        match open_regular(path) {
            Ok(_) => panic!("{} was opened", path.display()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn regular_files_open() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.panns");
        std::fs::write(&p, b"PANNSIDX").unwrap();
        let f = open_regular(&p).unwrap();
        check_regular_file(&f, &p).unwrap();
        // An empty regular file is not refused here (the format checks say what is wrong).
        let e = dir.path().join("empty");
        std::fs::write(&e, b"").unwrap();
        open_regular(&e).unwrap();
        // Symlinks are followed.
        #[cfg(unix)]
        {
            let l = dir.path().join("link");
            std::os::unix::fs::symlink(&p, &l).unwrap();
            open_regular(&l).unwrap();
        }
    }

    #[test]
    fn directories_are_refused_before_and_after_opening() {
        let dir = tempfile::tempdir().unwrap();
        let e = refused(dir.path());
        assert!(e.ends_with(": is a directory"), "{e}");
        assert!(e.contains(&dir.path().display().to_string()), "{e}");
        // A directory can be opened on Linux: the opened-file check catches it too.
        if let Ok(f) = File::open(dir.path()) {
            let e = check_regular_file(&f, dir.path()).unwrap_err().to_string();
            assert!(e.ends_with(": is a directory"), "{e}");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn fifos_devices_and_proc_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.panns");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            // Would block forever with File::open (no writer).
            let e = refused(&fifo);
            assert!(
                e.ends_with(": is a FIFO/named pipe, not an index file"),
                "{e}"
            );
        } else {
            eprintln!("skipped the FIFO case: mkfifo is not available");
        }
        let e = refused(Path::new("/dev/null"));
        assert_eq!(e, "/dev/null: is a character device, not an index file");
        let e = refused(Path::new("/proc/self/status"));
        assert_eq!(
            e,
            "/proc/self/status: is a /proc or /sys pseudo-file, not an index file"
        );
        let f = File::open("/proc/self/status").unwrap();
        assert!(check_regular_file(&f, Path::new("/proc/self/status")).is_err());
        let e = refused(Path::new("/definitely/not/here.panns"));
        assert!(e.contains("No such file"), "{e}");
    }
}
