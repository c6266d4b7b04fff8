//! Writing an index file atomically: temp file, fsync, rename, fsync the directory.

use std::cell::Cell;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use panns_core::{Dtype, Index, IndexParts};
use zerocopy::IntoBytes;

use super::checksum::Hasher;
use super::header::{
    ENDIAN_MARKER, FLAG_CODES, FLAG_F32_BESIDE_CODES, FLAG_ROW_ORDER, FORMAT_VERSION, HEADER_SIZE,
    Header, MAGIC, MAX_SECTIONS, SECTION_ALIGN, SectionEntry, SectionKind,
};
use super::{BuildInfo, Extras};
use crate::error::{Error, Result};

thread_local! {
    /// Test hook (see [`super::testing::fail_writes_after`]).
    pub(super) static FAIL_AFTER: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Saves `index` to `path` atomically (see [`save_parts`]).
pub fn save_index(index: &Index, path: impl AsRef<Path>) -> Result<()> {
    save_parts(&index.parts(), &BuildInfo::from(index.params()), path)
}

/// Saves `index` with the optional sections of `extras` (labels, generation) to `path`
/// atomically, as [`save_parts`] does.
pub fn save_index_with(index: &Index, extras: &Extras<'_>, path: impl AsRef<Path>) -> Result<()> {
    save_parts_with(
        &index.parts(),
        &BuildInfo::from(index.params()),
        extras,
        path,
    )
}

/// Saves the arrays of an index and its build information to `path`.
///
/// The parts are validated first (an index that would not open is never written). The
/// file is written to a temporary file in the same directory, flushed to disk and
/// renamed over `path`, and the directory is synced, so after a crash or an error
/// `path` holds either the complete old file or the complete new one; on error the
/// temporary file is removed. Readers that have the old file mapped keep seeing it.
///
/// A symlink `path` is followed: its final target is replaced and the link kept. A
/// `path` that is a directory, FIFO, device or socket is refused, not replaced. Temporary
/// files of earlier saves to the same name whose process has died are removed.
pub fn save_parts(parts: &IndexParts, info: &BuildInfo, path: impl AsRef<Path>) -> Result<()> {
    save_parts_with(parts, info, &Extras::default(), path)
}

/// [`save_parts`] with the optional sections of `extras`. Labels must number exactly
/// `parts.n_items`.
pub fn save_parts_with(
    parts: &IndexParts,
    info: &BuildInfo,
    extras: &Extras<'_>,
    path: impl AsRef<Path>,
) -> Result<()> {
    let path = path.as_ref();
    super::validate::check_host_endianness(path)?;
    parts.validate().map_err(|e| {
        Error::invalid(format!(
            "{}: refusing to save an invalid index: {e}",
            path.display()
        ))
    })?;
    let generation = extras.generation.map(u64::to_le_bytes);
    let sections = sections_with(parts, extras, generation.as_ref(), path)?;
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

/// The bytes of the index file [`save_index`] would write (e.g. to send or embed).
pub fn index_to_bytes(index: &Index) -> Result<Vec<u8>> {
    parts_to_bytes(&index.parts(), &BuildInfo::from(index.params()))
}

/// The length in bytes of the file [`save_index`] would write, without writing it.
pub fn serialized_len(index: &Index) -> Result<u64> {
    let parts = index.parts();
    let sections = sections_of(&parts);
    let info = BuildInfo::from(index.params());
    Ok(header_of(&parts, &info, &sections, Path::new("<bytes>"))?.file_len())
}

/// The bytes of the index file holding `parts` (see [`save_parts`]).
pub fn parts_to_bytes(parts: &IndexParts, info: &BuildInfo) -> Result<Vec<u8>> {
    parts_to_bytes_with(parts, info, &Extras::default())
}

/// [`parts_to_bytes`] with the optional sections of `extras`.
pub fn parts_to_bytes_with(
    parts: &IndexParts,
    info: &BuildInfo,
    extras: &Extras<'_>,
) -> Result<Vec<u8>> {
    let path = Path::new("<bytes>");
    parts
        .validate()
        .map_err(|e| Error::invalid(format!("refusing to serialize an invalid index: {e}")))?;
    let generation = extras.generation.map(u64::to_le_bytes);
    let sections = sections_with(parts, extras, generation.as_ref(), path)?;
    let mut header = header_of(parts, info, &sections, path)?;
    let len = usize::try_from(header.file_len())
        .map_err(|_| Error::invalid("index too large for this platform's memory"))?;
    let mut out: Vec<u8> = Vec::new();
    out.try_reserve_exact(len).map_err(|_| {
        Error::invalid(format!(
            "out of memory: cannot allocate {len} bytes for the index"
        ))
    })?;
    emit(&header, &sections, &mut |b| {
        out.extend_from_slice(b);
        Ok(())
    })
    .map_err(|e| Error::io(path, e))?;
    header.checksum = super::file_checksum(&out).into();
    out[..HEADER_SIZE].copy_from_slice(header.as_bytes());
    Ok(out)
}

/// The sections of `parts` in file order, as bytes.
fn sections_of<'a>(p: &IndexParts<'a>) -> Vec<(SectionKind, &'a [u8])> {
    let mut s = Vec::new();
    if p.dtype().has_f32() {
        s.push((SectionKind::Vectors, p.vectors.as_bytes()));
    }
    s.extend([
        (SectionKind::Pool, p.pool.as_bytes()),
        (SectionKind::Nodes, p.nodes.as_bytes()),
        (SectionKind::Roots, p.roots.as_bytes()),
        (SectionKind::LeafOffsets, p.leaf_offsets.as_bytes()),
        (SectionKind::LeafIds, p.leaf_ids.as_bytes()),
    ]);
    if p.graph_degree > 0 {
        s.push((SectionKind::Graph, p.graph.as_bytes()));
    }
    if let Some(c) = &p.codes {
        s.extend([
            (SectionKind::Codes, c.codes),
            (SectionKind::CodeLo, c.lo.as_bytes()),
            (SectionKind::CodeStep, c.step.as_bytes()),
            (SectionKind::CodeAux, c.aux.as_bytes()),
        ]);
    }
    if !p.row_ids.is_empty() {
        s.extend([
            (SectionKind::RowIds, p.row_ids.as_bytes()),
            (SectionKind::IdRows, p.id_rows.as_bytes()),
        ]);
    }
    s
}

/// The sections of `parts` plus the optional ones of `extras`, in file order.
fn sections_with<'a>(
    p: &IndexParts<'a>,
    extras: &Extras<'a>,
    generation: Option<&'a [u8; 8]>,
    path: &Path,
) -> Result<Vec<(SectionKind, &'a [u8])>> {
    let mut s = sections_of(p);
    // In kind order: labels and generation (8, 9) go before the code and row-order
    // sections (10-15).
    let after = SectionKind::Generation.code();
    let codes = s
        .iter()
        .position(|(k, _)| k.code() > after)
        .unwrap_or(s.len());
    let tail = s.split_off(codes);
    if let Some(labels) = extras.labels {
        if labels.len() != p.n_items {
            return Err(Error::invalid(format!(
                "{}: {} labels for {} items",
                path.display(),
                labels.len(),
                p.n_items
            )));
        }
        s.push((SectionKind::Labels, labels.as_bytes()));
    }
    if let Some(g) = generation {
        s.push((SectionKind::Generation, g.as_slice()));
    }
    s.extend(tail);
    Ok(s)
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
        flags: (match p.dtype() {
            Dtype::F32 => 0,
            Dtype::I8 => FLAG_CODES,
            Dtype::I8F32 => FLAG_CODES | FLAG_F32_BESIDE_CODES,
        } | if p.row_ids.is_empty() {
            0
        } else {
            FLAG_ROW_ORDER
        })
        .into(),
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
struct HookedFile<'a> {
    file: &'a mut File,
    written: u64,
}

impl Write for HookedFile<'_> {
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

/// The file a save to `path` must replace: `path` itself, or for a symlink (a chain of
/// them) its final target, which need not exist yet. The symlinks are kept.
fn resolve_target(path: &Path) -> Result<PathBuf> {
    let mut target = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&target) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = fs::read_link(&target).map_err(|e| Error::io(path, e))?;
                target = match target.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            _ => return Ok(target),
        }
    }
    Err(Error::invalid(format!(
        "{}: too many levels of symbolic links",
        path.display()
    )))
}

/// Writes `path` through a synced temporary file in its directory and a rename.
///
/// A symlink is followed (its final target is replaced, the link kept); a directory, FIFO,
/// device or socket is refused, never replaced. Temporary files of this name left by
/// saves that were killed (their process is gone) are removed first.
pub(crate) fn atomic_write(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<()> {
    let target = resolve_target(path)?;
    let existing = match fs::metadata(&target) {
        Ok(meta) => {
            if let Some(what) = super::validate::not_regular(&meta, &target) {
                let via = if target == path {
                    String::new()
                } else {
                    format!(" (the target of {})", path.display())
                };
                return Err(Error::invalid(format!(
                    "{}{via}: refusing to save an index there: it {what}; only a regular file is \
                     replaced",
                    target.display()
                )));
            }
            Some(meta)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(path, e)),
    };
    let name = target
        .file_name()
        .ok_or_else(|| Error::invalid(format!("{}: not a file name", path.display())))?;
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    remove_stale_temps(&dir, name);
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(name);
    prefix.push(format!(".tmp-{}-", std::process::id()));
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).rand_bytes(8);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Like a plain `create`: 0666 less the umask, or the mode of the file replaced
        // (tempfile's default, 0600, would hide a shared index from other users).
        let mode = existing
            .as_ref()
            .map_or(0o666, |m| m.permissions().mode() & 0o7777);
        builder.permissions(fs::Permissions::from_mode(mode));
    }
    let _ = &existing;
    let mut tmp = builder
        .tempfile_in(&dir)
        .map_err(|e| Error::io(path, context(e, "cannot create a temporary file in", &dir)))?;
    let tmp_path = tmp.path().to_path_buf();
    let result = (|| {
        let mut w = BufWriter::with_capacity(
            1 << 20,
            HookedFile {
                file: tmp.as_file_mut(),
                written: 0,
            },
        );
        write(&mut w).map_err(|e| context(e, "writing", &tmp_path))?;
        w.into_inner()
            .map_err(|e| context(e.into_error(), "writing", &tmp_path))?;
        tmp.as_file()
            .sync_all()
            .map_err(|e| context(e, "syncing", &tmp_path))
    })();
    // On error `tmp` is dropped here, which removes the temporary file.
    result.map_err(|e| Error::io(path, e))?;
    tmp.persist(&target)
        .map_err(|e| Error::io(path, context(e.error, "renaming", &tmp_path)))?;
    sync_dir(&dir).map_err(|e| Error::io(path, context(e, "syncing directory", &dir)))
}

/// Removes `.NAME.tmp-PID-*` files in `dir` whose writer process `PID` no longer exists
/// (a save killed before its rename). Best effort: errors are ignored, and nothing is
/// removed where liveness cannot be told (no `/proc`).
fn remove_stale_temps(dir: &Path, name: &std::ffi::OsStr) {
    if !cfg!(target_os = "linux") || !Path::new("/proc/self").exists() {
        return;
    }
    let Some(name) = name.to_str() else { return };
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let own = std::process::id();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let Some((pid, random)) = rest.split_once('-') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid == own || pid == 0 || random.is_empty() || random.contains('-') {
            continue;
        }
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = fs::remove_file(entry.path());
        }
    }
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
