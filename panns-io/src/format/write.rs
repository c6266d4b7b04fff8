//! Writing an index file atomically: temp file, fsync, rename, fsync the directory.

use std::cell::Cell;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use panns_core::{Index, IndexParts, IndexView};
use zerocopy::IntoBytes;

use super::BuildInfo;
use super::checksum::Hasher;
use super::header::{
    ENDIAN_MARKER, FORMAT_VERSION, HEADER_SIZE, Header, MAGIC, MAX_SECTIONS, SECTION_ALIGN,
    SectionEntry, SectionKind,
};
use crate::error::{Error, Result};

thread_local! {
    /// Test hook (see [`super::testing::fail_writes_after`]).
    pub(super) static FAIL_AFTER: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Saves `index` to `path` atomically (see [`save_parts`]).
pub fn save_index(index: &Index, path: impl AsRef<Path>) -> Result<()> {
    save_parts(&index.parts(), &BuildInfo::from(index.params()), path)
}

/// Saves the arrays of an index and its build information to `path`.
///
/// The parts are validated first (an index that would not open is never written). The
/// file is written to a temporary file in the same directory, flushed to disk and
/// renamed over `path`, and the directory is synced, so after a crash or an error
/// `path` holds either the complete old file or the complete new one; on error the
/// temporary file is removed. Readers that have the old file mapped keep seeing it.
pub fn save_parts(parts: &IndexParts, info: &BuildInfo, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    super::validate::check_host_endianness(path)?;
    IndexView::new(*parts).map_err(|e| {
        Error::invalid(format!(
            "{}: refusing to save an invalid index: {e}",
            path.display()
        ))
    })?;
    let sections = sections_of(parts);
    let mut header = header_of(parts, info, &sections, path)?;
    let mut hasher = Hasher::default();
    emit(&header, &sections, &mut |b| {
        hasher.update(b);
        Ok(())
    })
    .map_err(|e| Error::io(path, e))?;
    header.checksum.set(hasher.finish());
    atomic_write(path, |w| emit(&header, &sections, &mut |b| w.write_all(b)))
}

/// The sections of `parts` in file order, as bytes.
fn sections_of<'a>(p: &IndexParts<'a>) -> Vec<(SectionKind, &'a [u8])> {
    let mut s = vec![
        (SectionKind::Vectors, p.vectors.as_bytes()),
        (SectionKind::Pool, p.pool.as_bytes()),
        (SectionKind::Nodes, p.nodes.as_bytes()),
        (SectionKind::Roots, p.roots.as_bytes()),
        (SectionKind::LeafOffsets, p.leaf_offsets.as_bytes()),
        (SectionKind::LeafIds, p.leaf_ids.as_bytes()),
    ];
    if p.graph_degree > 0 {
        s.push((SectionKind::Graph, p.graph.as_bytes()));
    }
    s
}

fn align_up(x: u64) -> u64 {
    x.div_ceil(SECTION_ALIGN) * SECTION_ALIGN
}

/// The header for `parts` with its checksum field zero.
fn header_of(
    p: &IndexParts,
    info: &BuildInfo,
    sections: &[(SectionKind, &[u8])],
    path: &Path,
) -> Result<Header> {
    let too_big = |what: &str| Error::invalid(format!("{}: {what} too large", path.display()));
    let u32_of = |v: usize, what: &str| u32::try_from(v).map_err(|_| too_big(what));
    let mut table = [SectionEntry::default(); MAX_SECTIONS];
    let mut pos = HEADER_SIZE as u64;
    for (entry, (kind, bytes)) in table.iter_mut().zip(sections) {
        pos = align_up(pos);
        *entry = SectionEntry {
            kind: kind.code().into(),
            reserved: 0.into(),
            offset: pos.into(),
            length: (bytes.len() as u64).into(),
        };
        pos += bytes.len() as u64;
    }
    Ok(Header {
        magic: MAGIC,
        version: FORMAT_VERSION.into(),
        endian: ENDIAN_MARKER.into(),
        header_size: (HEADER_SIZE as u32).into(),
        metric: p.metric.code().into(),
        dim: u32_of(p.dim, "dimension")?.into(),
        n_trees: u32_of(p.roots.len(), "tree count")?.into(),
        n_items: (p.n_items as u64).into(),
        pool_size: u32_of(p.pool.len() / panns_core::padded_dim(p.dim), "pool")?.into(),
        leaf_size: info.leaf_size.into(),
        candidates: info.candidates.into(),
        split: info.split.into(),
        seed: info.seed.into(),
        n_nodes: (p.nodes.len() as u64).into(),
        n_leaves: (p.leaf_offsets.len().saturating_sub(1) as u64).into(),
        flags: 0.into(),
        graph_degree: u32_of(p.graph_degree, "graph degree")?.into(),
        n_sections: (sections.len() as u32).into(),
        reserved0: 0.into(),
        checksum: 0.into(),
        file_len: pos.into(),
        reserved: [0; 16],
        sections: table,
    })
}

/// Feeds the whole file, byte for byte, to `sink`.
fn emit(
    header: &Header,
    sections: &[(SectionKind, &[u8])],
    sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    const ZEROS: [u8; SECTION_ALIGN as usize] = [0; SECTION_ALIGN as usize];
    sink(header.as_bytes())?;
    let mut pos = HEADER_SIZE as u64;
    for (_, bytes) in sections {
        let pad = (align_up(pos) - pos) as usize;
        sink(&ZEROS[..pad])?;
        sink(bytes)?;
        pos += (pad + bytes.len()) as u64;
    }
    Ok(())
}

/// A file writer that honours the [`FAIL_AFTER`] test hook.
struct HookedFile {
    file: File,
    written: u64,
}

impl Write for HookedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(limit) = FAIL_AFTER.with(Cell::get)
            && self.written + buf.len() as u64 > limit
        {
            return Err(io::Error::other("simulated write failure (test hook)"));
        }
        let n = self.file.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// An `io::Error` saying what was being done to which file.
fn context(e: io::Error, what: &str, file: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", file.display()))
}

/// Writes `path` through a synced temporary file in its directory and a rename.
fn atomic_write(path: &Path, write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid(format!("{}: not a file name", path.display())))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (file, tmp) = create_temp(&dir, name).map_err(|e| Error::io(path, e))?;
    let result = (|| {
        let mut w = BufWriter::with_capacity(1 << 20, HookedFile { file, written: 0 });
        write(&mut w).map_err(|e| context(e, "writing", &tmp))?;
        let file = w
            .into_inner()
            .map_err(|e| context(e.into_error(), "writing", &tmp))?
            .file;
        file.sync_all().map_err(|e| context(e, "syncing", &tmp))?;
        drop(file);
        fs::rename(&tmp, path).map_err(|e| context(e, "renaming", &tmp))
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    sync_dir(&dir).map_err(|e| Error::io(path, context(e, "syncing directory", &dir)))
}

/// Creates `.NAME.tmp-<pid>-<random>` in `dir` (never an existing file).
fn create_temp(dir: &Path, name: &std::ffi::OsStr) -> io::Result<(File, PathBuf)> {
    use std::hash::{BuildHasher, Hasher as _};
    let mut last = None;
    for attempt in 0u64..16 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(attempt);
        if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            h.write_u128(t.as_nanos());
        }
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp-{}-{:016x}", std::process::id(), h.finish()));
        let tmp = dir.join(tmp_name);
        match File::options().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((f, tmp)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(context(e, "cannot create temporary file", &tmp)),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("cannot create a temporary file")))
}

/// Makes a rename in `dir` durable. Filesystems that cannot sync a directory are ignored.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        match File::open(dir).and_then(|d| d.sync_all()) {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported
                ) =>
            {
                Ok(())
            }
            r => r,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}
