//! Live indexes: an index that takes additions and removals while it is searched.
//!
//! A live index at `NAME` is segments of the one [`Index`] type: an immutable,
//! validated, memory-mapped **base** file `NAME` (an ordinary index file with a labels
//! and a generation section) and a **delta** replayed from an append-only log
//! `NAME.log` beside it. Removals are tombstones (the base is searched with
//! [`panns_core::Filter::Deny`]); additions are scanned exactly while few and get their
//! own small [`Index`] when they grow. [`LiveIndex::compact`] writes the next base
//! generation (atomically, by rename) and starts a fresh log. One writer at a time holds
//! the advisory lock `NAME.lock`; any number of readers (in any process) open the same
//! files read-only and pick up committed changes with [`LiveIndex::refresh`].
//! File layouts and the generation rules: `docs/format.md`, "Live indexes".
//!
//! A live index can also be held **in memory only** ([`LiveIndex::in_memory`] over a
//! built [`Index`], [`LiveIndex::empty_in_memory`], [`LiveIndex::from_bytes`]): the same
//! base + tombstones + delta, with no file, log or lock; `commit` does nothing (nothing
//! to make durable), `compact` rebuilds the base in memory, and [`LiveIndex::save`]
//! writes the contents as a base file with labels, which `open` opens as a live index.
//!
//! ```no_run
//! # fn main() -> panns_io::Result<()> {
//! use panns_core::{BuildParams, Metric, SearchParams};
//! use panns_io::LiveIndex;
//! let mut w = LiveIndex::create("items.panns", 3, Metric::Euclidean, &BuildParams::default())?;
//! w.add(1001, &[1.0, 2.0, 3.0])?;
//! w.add_batch(&[7, 8], &[0.0, 0.0, 1.0, 5.0, 5.0, 5.0])?;
//! w.remove(&[8])?;
//! w.commit()?; // durable when it returns
//! let mut r = LiveIndex::open("items.panns", false)?; // another process, say
//! let hits = r.search(&[1.0, 2.0, 3.0], &SearchParams::new(1))?;
//! assert_eq!(hits[0].0, 1001);
//! r.refresh()?; // picks up later commits
//! # Ok(()) }
//! ```

mod base;
mod log;
mod memory;
mod state;

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use panns_core::{
    BuildParams, GraphParams, Index, IndexBuilder, Metric, SearchParams, SearchStats,
};

use self::base::{Base, stored_checksum};
use self::log::{LOG_HEADER_SIZE, LogHeader, Op};
pub use self::state::LabelFilter;
use self::state::State;
use crate::error::{Error, Result};
use crate::format::{Extras, OpenOptions, corrupt};

/// Test support: make log appends fail like a full disk.
#[doc(hidden)]
pub mod testing {
    /// After this many more bytes have been appended to live-index logs by commits on
    /// the calling thread, the next append writes only up to the limit and fails with a
    /// "storage full" I/O error (`None`: never). The log equivalent of
    /// [`crate::format::testing::fail_writes_after`].
    pub fn fail_log_writes_after(bytes: Option<u64>) {
        super::log::LOG_FAIL_AFTER.with(|c| c.set(bytes));
    }
}

/// When a live index compacts itself and when its delta gets its own index.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveOptions {
    /// Compact automatically after a commit that crosses a threshold below (default true).
    pub auto_compact: bool,
    /// Compact when tombstones (removed or replaced base items) reach this fraction of
    /// the base (default 0.2).
    pub compact_removed_fraction: f64,
    /// Compact when the delta holds more than this fraction of the base's item count
    /// (default 0.1). Without a base, compact once the delta holds
    /// `delta_index_threshold` items.
    pub compact_delta_fraction: f64,
    /// The delta is scanned exactly until this many of its items are outside its own
    /// index; then that index is (re)built over the whole delta (default 4096).
    pub delta_index_threshold: usize,
    /// Verify the base file on open (checksum and every vector value; default false).
    pub verify: bool,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            auto_compact: true,
            compact_removed_fraction: 0.2,
            compact_delta_fraction: 0.1,
            delta_index_threshold: 4096,
            verify: false,
        }
    }
}

/// The path of the log beside the base file `path` (`NAME.log`).
pub fn log_path(path: &Path) -> PathBuf {
    with_suffix(path, ".log")
}

/// The path of the writer's lock file beside the base file `path` (`NAME.lock`).
pub fn lock_path(path: &Path) -> PathBuf {
    with_suffix(path, ".lock")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// The writer's resources: the lock and the open log.
struct Writer {
    /// Held (advisory exclusive lock) for the writer's lifetime.
    _lock: File,
    log: File,
    /// Encoded records not yet committed.
    pending: Vec<u8>,
    /// Changes in `pending`.
    pending_changes: usize,
    /// A failed append may have left bytes after `log_end`; cut them before appending.
    dirty: bool,
}

/// An index that takes additions and removals by label while it is searched; see the
/// [module documentation](self).
///
/// Opened writable it holds the writer lock (`NAME.lock`) until dropped; changes are
/// visible to its own searches at once and to other processes after [`commit`](Self::commit)
/// and their [`refresh`](Self::refresh). Searches take `&self`; share one between
/// threads behind a `RwLock` (mutations and `refresh` take `&mut self`).
pub struct LiveIndex {
    path: PathBuf,
    log_path: PathBuf,
    options: LiveOptions,
    /// The current log's header (for a reader without a current log: made up from
    /// the base, with `log_id` 0).
    header: LogHeader,
    /// `Some((generation, log_id))` of the log the state replays, `None` if none.
    log_ident: Option<(u64, u64)>,
    state: State,
    /// Byte offset after the last applied commit, records and commits up to it.
    log_end: u64,
    records: u64,
    commits: u64,
    writer: Option<Writer>,
    /// True for an index held in memory only (no files, no lock, no log).
    memory: bool,
}

impl std::fmt::Debug for LiveIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveIndex")
            .field("path", &self.path)
            .field("in_memory", &self.memory)
            .field("writable", &self.is_writable())
            .field("generation", &self.generation())
            .field("len", &self.len())
            .field("delta_len", &self.delta_len())
            .field("tombstones", &self.tombstones())
            .finish()
    }
}

/// What [`load`] found on disk.
struct Loaded {
    header: LogHeader,
    log_ident: Option<(u64, u64)>,
    state: State,
    log_end: u64,
    records: u64,
    commits: u64,
    /// Bytes after the last commit (torn or uncommitted tail).
    ignored: u64,
    /// True when the log is missing or belongs to an older generation.
    needs_new_log: bool,
}

/// Reads the log at `path` from byte `from`: its header bytes and the rest, or `None`.
fn read_log(path: &Path, from: u64) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut head = Vec::with_capacity(LOG_HEADER_SIZE);
    (&mut f)
        .take(LOG_HEADER_SIZE as u64)
        .read_to_end(&mut head)
        .map_err(|e| Error::io(path, e))?;
    let mut rest = Vec::new();
    if head.len() == LOG_HEADER_SIZE {
        f.seek(SeekFrom::Start(from.max(LOG_HEADER_SIZE as u64)))
            .map_err(|e| Error::io(path, e))?;
        f.read_to_end(&mut rest).map_err(|e| Error::io(path, e))?;
    }
    Ok(Some((head, rest)))
}

fn header_of_base(b: &Base) -> LogHeader {
    LogHeader {
        dim: b.index.dim(),
        metric: b.index.metric(),
        base_generation: b.generation,
        base_checksum: b.checksum,
        log_id: 0,
        params: b.index.params().clone(),
        graph_degree: b.index.graph_degree(),
    }
}

/// Opens the base and replays its log: a consistent snapshot of the latest complete
/// generation. Retries while a compaction in another process is between its two renames.
fn load(path: &Path, log_path: &Path, options: &LiveOptions) -> Result<Loaded> {
    let opts = OpenOptions {
        verify_checksum: options.verify,
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let base = Base::open(path, &opts)?;
        let log = read_log(log_path, LOG_HEADER_SIZE as u64)?;
        let base_gen = base.as_ref().map_or(0, |b| b.generation);
        let Some((head, rest)) = log else {
            let Some(b) = base else {
                return Err(Error::io(
                    path,
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!(
                            "no live index here: neither it nor {} exists",
                            log_path.display()
                        ),
                    ),
                ));
            };
            let header = header_of_base(&b);
            let state = State::new(header.dim, header.metric, Some(b), &header.params);
            return Ok(Loaded {
                header,
                log_ident: None,
                state,
                log_end: LOG_HEADER_SIZE as u64,
                records: 0,
                commits: 0,
                ignored: 0,
                needs_new_log: true,
            });
        };
        let h = LogHeader::decode(&head, log_path)?;
        if h.base_generation < base_gen {
            // A compaction renamed the new base but had not reset the log yet: every
            // change in this log is in the new base.
            let b = base.expect("base_gen > 0");
            let header = header_of_base(&b);
            let state = State::new(header.dim, header.metric, Some(b), &header.params);
            return Ok(Loaded {
                header,
                log_ident: Some((h.base_generation, h.log_id)),
                state,
                log_end: LOG_HEADER_SIZE as u64,
                records: 0,
                commits: 0,
                ignored: 0,
                needs_new_log: true,
            });
        }
        let mismatch = if h.base_generation > base_gen {
            Some(format!(
                "the log applies to base generation {}, but {} {}",
                h.base_generation,
                path.display(),
                if base.is_some() {
                    format!("holds generation {base_gen}")
                } else {
                    "is missing".to_string()
                }
            ))
        } else {
            base.as_ref()
                .filter(|b| b.checksum != h.base_checksum)
                .map(|b| {
                    format!(
                        "the log applies to the generation-{} base with checksum {:#018x}, but {} has checksum {:#018x}",
                        h.base_generation,
                        h.base_checksum,
                        path.display(),
                        b.checksum
                    )
                })
        };
        if let Some(m) = mismatch {
            // Possibly a compaction between its renames: look again.
            if attempt < 50 {
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            }
            return Err(corrupt(log_path, m));
        }
        if let Some(b) = &base
            && (b.index.dim() != h.dim || b.index.metric() != h.metric)
        {
            return Err(corrupt(
                log_path,
                format!(
                    "the log is for {}-dimensional {} vectors, the base holds {}-dimensional {} ones",
                    h.dim,
                    h.metric,
                    b.index.dim(),
                    b.index.metric()
                ),
            ));
        }
        let scan = log::scan(&rest, LOG_HEADER_SIZE as u64, 0, 0, h.dim, log_path)?;
        let mut state = State::new(h.dim, h.metric, base, &h.params);
        apply(&mut state, scan.ops, log_path)?;
        state.settle(options.delta_index_threshold)?;
        return Ok(Loaded {
            log_ident: Some((h.base_generation, h.log_id)),
            header: h,
            state,
            log_end: scan.end,
            records: scan.records,
            commits: scan.commits,
            ignored: scan.ignored,
            needs_new_log: false,
        });
    }
}

/// Applies replayed operations (by label: add = replace, remove = tombstone).
fn apply(state: &mut State, ops: Vec<Op>, log_path: &Path) -> Result<()> {
    let mut row = Vec::new();
    for op in ops {
        match op {
            Op::Add(label, v) => {
                state::prepare(&v, state.dim, state.metric, &mut row).map_err(|d| {
                    corrupt(log_path, format!("logged vector of label {label}: {d}"))
                })?;
                state.add(label, &row);
            }
            Op::Remove(label) => {
                state.remove(label);
            }
        }
    }
    Ok(())
}

/// Takes the writer lock of the live index at `path`.
fn lock(path: &Path) -> Result<File> {
    let lp = lock_path(path);
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&lp)
        .map_err(|e| Error::io(&lp, e))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(fs::TryLockError::WouldBlock) => Err(Error::Locked { lock: lp }),
        Err(fs::TryLockError::Error(e)) => Err(Error::io(&lp, e)),
    }
}

/// Writes a fresh log for `header` atomically (temp file, fsync, rename, directory fsync).
fn write_new_log(log_path: &Path, header: &LogHeader) -> Result<()> {
    let bytes = header.encode();
    crate::format::atomic_write(log_path, |w| io::Write::write_all(w, &bytes))
}

fn open_log_for_append(log_path: &Path) -> Result<File> {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(log_path)
        .map_err(|e| Error::io(log_path, e))
}

fn exists(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok()
}

impl LiveIndex {
    /// Creates an empty live index at `path` (no base file yet: generation 0; the first
    /// compaction writes one) for `dim`-dimensional vectors. `params` are used by every
    /// compaction. Fails if `path` or its log exists. Returns the writer.
    pub fn create(
        path: impl AsRef<Path>,
        dim: usize,
        metric: Metric,
        params: &BuildParams,
    ) -> Result<LiveIndex> {
        Self::create_with(path, dim, metric, params, None, LiveOptions::default())
    }

    /// [`create`](Self::create) with a neighbour graph of `graph.degree` for every base
    /// (built at compaction) and `options`.
    pub fn create_with(
        path: impl AsRef<Path>,
        dim: usize,
        metric: Metric,
        params: &BuildParams,
        graph: Option<&GraphParams>,
        options: LiveOptions,
    ) -> Result<LiveIndex> {
        let path = path.as_ref();
        params.validate()?;
        if dim == 0 || dim > panns_core::MAX_DIM {
            return Err(panns_core::Error::InvalidDimension(dim).into());
        }
        if let Some(g) = graph {
            g.validate()?;
        }
        let lock = lock(path)?;
        let log_path = log_path(path);
        for p in [path, log_path.as_path()] {
            if exists(p) {
                return Err(Error::invalid(format!(
                    "{}: already exists; open it, or remove {} and {} first",
                    p.display(),
                    path.display(),
                    log_path.display()
                )));
            }
        }
        let header = LogHeader {
            dim,
            metric,
            base_generation: 0,
            base_checksum: 0,
            log_id: log::new_log_id(),
            params: BuildParams {
                threads: 0,
                ..params.clone()
            },
            graph_degree: graph.map_or(0, |g| g.degree),
        };
        write_new_log(&log_path, &header)?;
        Self::finish_open(path, options, Some(lock))
    }

    /// Writes `index` as generation 1 of a new live index at `path`, with `labels`
    /// (one per item, distinct; `None`: the item ids), and returns the writer. Fails
    /// if `path` or its log exists.
    pub fn from_index(
        path: impl AsRef<Path>,
        index: &Index,
        labels: Option<&[u64]>,
    ) -> Result<LiveIndex> {
        let path = path.as_ref();
        let lock = lock(path)?;
        let log_path = log_path(path);
        for p in [path, log_path.as_path()] {
            if exists(p) {
                return Err(Error::invalid(format!("{}: already exists", p.display())));
            }
        }
        if let Some(l) = labels {
            // Checks the count and distinctness before anything is written.
            base::Labels::checked(Some(l), index.len()).map_err(Error::invalid)?;
        }
        let extras = Extras {
            labels,
            generation: Some(1),
        };
        crate::format::save_index_with(index, &extras, path)?;
        Self::finish_open(path, LiveOptions::default(), Some(lock))
    }

    /// Opens the live index at `path` (a base file, its log, or both; any panns index
    /// file is a live index of generation 1 with identity labels). `writable` takes the
    /// writer lock (failing with [`Error::Locked`] if another writer holds it); a
    /// reader sees the last commit made before it opened and later ones after
    /// [`refresh`](Self::refresh).
    pub fn open(path: impl AsRef<Path>, writable: bool) -> Result<LiveIndex> {
        Self::open_with(path, writable, LiveOptions::default())
    }

    /// [`open`](Self::open) with `options`.
    pub fn open_with(
        path: impl AsRef<Path>,
        writable: bool,
        options: LiveOptions,
    ) -> Result<LiveIndex> {
        let path = path.as_ref();
        let lock = if writable { Some(lock(path)?) } else { None };
        Self::finish_open(path, options, lock)
    }

    fn finish_open(path: &Path, options: LiveOptions, lock: Option<File>) -> Result<LiveIndex> {
        let log_path = log_path(path);
        let l = load(path, &log_path, &options)?;
        let mut live = LiveIndex {
            path: path.to_path_buf(),
            log_path,
            options,
            header: l.header,
            log_ident: l.log_ident,
            state: l.state,
            log_end: l.log_end,
            records: l.records,
            commits: l.commits,
            writer: None,
            memory: false,
        };
        if let Some(lock) = lock {
            if l.needs_new_log {
                live.reset_log()?;
            } else if l.ignored > 0 {
                // Cut the torn or uncommitted tail so appends follow the last commit.
                let f = open_log_for_append(&live.log_path)?;
                f.set_len(live.log_end)
                    .and_then(|()| f.sync_all())
                    .map_err(|e| Error::io(&live.log_path, e))?;
            }
            let log = open_log_for_append(&live.log_path)?;
            live.writer = Some(Writer {
                _lock: lock,
                log,
                pending: Vec::new(),
                pending_changes: 0,
                dirty: false,
            });
        }
        Ok(live)
    }

    /// Starts a fresh, empty log for the current base (atomically).
    fn reset_log(&mut self) -> Result<()> {
        let mut header = match &self.state.base {
            Some(b) => LogHeader {
                params: self.header.params.clone(),
                graph_degree: self.header.graph_degree,
                ..header_of_base(b)
            },
            None => self.header.clone(),
        };
        header.log_id = log::new_log_id();
        write_new_log(&self.log_path, &header)?;
        self.log_ident = Some((header.base_generation, header.log_id));
        self.header = header;
        self.log_end = LOG_HEADER_SIZE as u64;
        self.records = 0;
        self.commits = 0;
        if let Some(w) = &mut self.writer {
            w.log = open_log_for_append(&self.log_path)?;
            w.dirty = false;
        }
        Ok(())
    }

    fn writer(&mut self) -> Result<&mut Writer> {
        let path = &self.path;
        self.writer
            .as_mut()
            .ok_or_else(|| Error::ReadOnly { path: path.clone() })
    }

    /// `Ok` if changes are allowed: in memory, or holding the writer lock.
    fn check_writable(&self) -> Result<()> {
        if self.is_writable() {
            Ok(())
        } else {
            Err(Error::ReadOnly {
                path: self.path.clone(),
            })
        }
    }

    /// Adds (or replaces) the item `label`; see [`add_batch`](Self::add_batch).
    pub fn add(&mut self, label: u64, vector: &[f32]) -> Result<()> {
        self.add_batch(&[label], vector)
    }

    /// Adds (or replaces) one item per label, `rows` holding `dim` floats per label.
    /// An existing label is replaced. Nothing of the batch is applied if a row has the
    /// wrong length, a non-finite or too large value, is zero under the angular
    /// metric, or repeats a label of the batch ([`Error::BadBatch`] names the row).
    /// Visible to this index's searches at once; durable after [`commit`](Self::commit).
    pub fn add_batch(&mut self, labels: &[u64], rows: &[f32]) -> Result<()> {
        self.check_writable()?;
        let dim = self.state.dim;
        if rows.len() != labels.len() * dim {
            return Err(Error::invalid(format!(
                "{} labels need {} floats ({} each), got {}; nothing of the batch was applied",
                labels.len(),
                labels.len() * dim,
                dim,
                rows.len()
            )));
        }
        let mut seen: HashMap<u64, usize> = HashMap::with_capacity(labels.len());
        let mut prepared = Vec::with_capacity(rows.len() + labels.len() * 16);
        let mut row = Vec::new();
        for (i, (&label, v)) in labels.iter().zip(rows.chunks_exact(dim.max(1))).enumerate() {
            if let Some(first) = seen.insert(label, i) {
                return Err(Error::BadBatch {
                    row: i,
                    label,
                    detail: format!("the label is also on row {first} of the batch"),
                });
            }
            state::prepare(v, dim, self.state.metric, &mut row).map_err(|detail| {
                Error::BadBatch {
                    row: i,
                    label,
                    detail,
                }
            })?;
            prepared.extend_from_slice(&row);
        }
        let stride = panns_core::padded_dim(dim);
        for (i, &label) in labels.iter().enumerate() {
            if let Some(w) = self.writer.as_mut() {
                log::encode_add(&mut w.pending, label, &rows[i * dim..(i + 1) * dim]);
            }
            self.state
                .add(label, &prepared[i * stride..(i + 1) * stride]);
        }
        if let Some(w) = self.writer.as_mut() {
            w.pending_changes += labels.len();
        }
        self.state.settle(self.options.delta_index_threshold)
    }

    /// Removes the items of `labels` (tombstones); labels not held are ignored.
    /// Returns how many were removed. Durable after [`commit`](Self::commit).
    pub fn remove(&mut self, labels: &[u64]) -> Result<usize> {
        self.check_writable()?;
        let mut n = 0;
        for &label in labels {
            if self.state.remove(label) {
                if let Some(w) = self.writer.as_mut() {
                    log::encode_remove(&mut w.pending, label);
                    w.pending_changes += 1;
                }
                n += 1;
            }
        }
        Ok(n)
    }

    /// Changes made since the last commit (always 0 in memory, where there is nothing
    /// to commit).
    pub fn pending(&self) -> usize {
        self.writer.as_ref().map_or(0, |w| w.pending_changes)
    }

    /// Makes every change since the last commit durable: appends them and a commit
    /// record to the log and fsyncs it before returning. On an error (a full disk, say)
    /// the log is cut back to the previous commit, nothing committed earlier is lost,
    /// and the changes stay pending (commit again, or drop the index to discard them).
    /// Then compacts if a threshold of [`LiveOptions`] is crossed (an error of that
    /// compaction is returned, but the commit is durable already).
    ///
    /// In memory ([`in_memory`](Self::in_memory)) there is nothing to make durable:
    /// `commit` succeeds and does nothing (no automatic compaction either); write the
    /// index to a file with [`save`](Self::save).
    pub fn commit(&mut self) -> Result<()> {
        if self.memory {
            return Ok(());
        }
        self.commit_only()?;
        if self.options.auto_compact && self.needs_compaction() {
            self.compact()?;
        }
        Ok(())
    }

    fn commit_only(&mut self) -> Result<()> {
        if self.memory {
            return Ok(());
        }
        let (log_end, seq) = (self.log_end, self.commits + 1);
        let log_path = self.log_path.clone();
        let w = self.writer()?;
        if w.pending_changes == 0 {
            return Ok(());
        }
        let mut buf = std::mem::take(&mut w.pending);
        let records = (w.pending_changes + 1) as u64;
        log::encode_commit(&mut buf, seq);
        let result = (|| -> io::Result<()> {
            if w.dirty {
                w.log.set_len(log_end)?;
                w.dirty = false;
            }
            log::write_at(&mut w.log, log_end, &buf)?;
            w.log.sync_data()
        })();
        if let Err(e) = result {
            // Cut back to the last commit; if even that fails, cut before the next append.
            w.dirty = w
                .log
                .set_len(log_end)
                .and_then(|()| w.log.sync_data())
                .is_err();
            buf.truncate(buf.len() - (log::RECORD_HEADER + 8));
            w.pending = buf;
            return Err(Error::io(&log_path, e));
        }
        w.pending_changes = 0;
        w.pending = Vec::new();
        self.log_end += buf.len() as u64;
        self.records += records;
        self.commits = seq;
        Ok(())
    }

    fn needs_compaction(&self) -> bool {
        let o = &self.options;
        let base = self.state.base_len();
        if base == 0 {
            return self.state.delta.len() >= o.delta_index_threshold.max(1);
        }
        (self.state.n_tombs > 0
            && self.state.n_tombs as f64 >= o.compact_removed_fraction * base as f64)
            || (self.state.delta.len() > 0
                && self.state.delta.len() as f64 > o.compact_delta_fraction * base as f64)
    }

    /// Commits, then writes the live items (the base without its tombstones, then the
    /// delta) as the next base generation: a new index built with the recorded build
    /// parameters (and a neighbour graph if the base had one), written to a temporary
    /// file, fsynced and renamed over the base, the directory fsynced; then starts a
    /// fresh log (atomically too). A crash at any point leaves a state that opens with
    /// every commit. Readers of the old generation keep their mapped file; their
    /// [`refresh`](Self::refresh) moves them to the new one. Nothing is done when
    /// the index is empty.
    ///
    /// In memory the new base is built in memory and replaces the old one (no file is
    /// written; the generation still counts up).
    pub fn compact(&mut self) -> Result<()> {
        self.commit_only()?;
        if self.state.len() == 0 {
            return Ok(());
        }
        let (dim, metric) = (self.state.dim, self.state.metric);
        let (index, labels) = self.rebuilt()?;
        let generation = self.generation() + 1;
        let identity = labels.iter().enumerate().all(|(i, &l)| l == i as u64);
        if self.memory {
            let base = Base::in_memory(index, (!identity).then_some(&labels[..]), generation)?;
            self.header.base_generation = generation;
            let params = self.header.params.clone();
            self.state = State::new(dim, metric, Some(base), &params);
            return Ok(());
        }
        let extras = Extras {
            labels: (!identity).then_some(labels.as_slice()),
            generation: Some(generation),
        };
        crate::format::save_index_with(&index, &extras, &self.path)?;
        drop(index);
        // The new base is durable: from here a crash leaves a stale log, ignored.
        let opts = OpenOptions {
            verify_checksum: false,
        };
        let base = Base::open(&self.path, &opts)?
            .ok_or_else(|| corrupt(&self.path, "vanished right after it was written"))?;
        let params = self.header.params.clone();
        self.state = State::new(dim, metric, Some(base), &params);
        self.reset_log()
    }

    /// A new index over the live items (base items first, then the delta) built with
    /// the recorded parameters (and graph degree), and the label of each of its items.
    fn rebuilt(&self) -> Result<(Index, Vec<u64>)> {
        let (dim, metric) = (self.state.dim, self.state.metric);
        let n = self.state.len();
        let mut labels = Vec::with_capacity(n);
        let mut flat = Vec::with_capacity(n * dim);
        for (label, v) in self.state.items() {
            labels.push(label);
            flat.extend_from_slice(&v);
        }
        let mut b = IndexBuilder::new(dim, metric)?;
        b.add_batch(&flat)?;
        drop(flat);
        let mut index = b.build(&self.header.params)?;
        if self.header.graph_degree > 0 {
            let d = self.header.graph_degree;
            index.build_graph(&GraphParams {
                degree: d,
                build_k: d.max(GraphParams::default().build_k),
                ..GraphParams::default()
            })?;
        }
        Ok((index, labels))
    }

    /// For a reader: picks up the commits made since it opened or last refreshed,
    /// reopening the base if a compaction replaced it (the old one stays valid until
    /// then). Returns true if anything changed. A writer (or an index in memory) is
    /// always current: false.
    pub fn refresh(&mut self) -> Result<bool> {
        if self.is_writable() {
            return Ok(false);
        }
        let base_now = stored_checksum(&self.path)?;
        if base_now != self.state.base.as_ref().map(|b| b.checksum) {
            return self.reload();
        }
        let Some((head, rest)) = read_log(&self.log_path, self.log_end)? else {
            return if self.log_ident.is_none() {
                Ok(false)
            } else {
                self.reload()
            };
        };
        let h = LogHeader::decode(&head, &self.log_path)?;
        if Some((h.base_generation, h.log_id)) != self.log_ident
            || h.base_generation < self.generation()
        {
            return self.reload();
        }
        let scan = log::scan(
            &rest,
            self.log_end,
            self.records,
            self.commits,
            h.dim,
            &self.log_path,
        )?;
        if scan.commits == self.commits {
            return Ok(false);
        }
        apply(&mut self.state, scan.ops, &self.log_path)?;
        self.state.settle(self.options.delta_index_threshold)?;
        self.log_end = scan.end;
        self.records = scan.records;
        self.commits = scan.commits;
        Ok(true)
    }

    fn reload(&mut self) -> Result<bool> {
        let l = load(&self.path, &self.log_path, &self.options)?;
        self.header = l.header;
        self.log_ident = l.log_ident;
        self.state = l.state;
        self.log_end = l.log_end;
        self.records = l.records;
        self.commits = l.commits;
        Ok(true)
    }

    /// The `k` nearest live items to `query` as (label, distance), nearest first
    /// (ties by label): the base searched without its tombstones, merged with the delta.
    pub fn search(&self, query: &[f32], params: &SearchParams) -> Result<Vec<(u64, f32)>> {
        Ok(self.state.search(query, params, None)?.0)
    }

    /// Every live item within `radius` of `query`, nearest first, at most `max_results`
    /// of them, and whether that cap cut the list (as [`Index::range_search`]: the
    /// nearest `max_results + 1` at `budget`, kept within the radius; approximate unless
    /// the budget covers half the items).
    pub fn range_search(
        &self,
        query: &[f32],
        radius: f32,
        max_results: usize,
        budget: usize,
    ) -> Result<(Vec<(u64, f32)>, bool)> {
        crate::shard::range_of(radius, max_results, budget, |p| self.search(query, p))
    }

    /// Like [`search_with_stats`](Self::search_with_stats), returning only items whose
    /// label is in `labels` (an allow-list: unknown or removed labels match nothing, and
    /// an empty list gives no results). Unlike a predicate, the list tells the planner
    /// how many items pass, so a selective list is answered by an exact scan of just
    /// those items, and a broad one by a filtered walk (see
    /// [`panns_core::Filter`]); listed items added since the base are scored exactly.
    pub fn search_labels(
        &self,
        query: &[f32],
        params: &SearchParams,
        labels: &[u64],
    ) -> Result<(Vec<(u64, f32)>, SearchStats)> {
        self.state.search_labels(query, params, labels)
    }

    /// Like [`search_with_stats`](Self::search_with_stats), returning only items whose
    /// label `allow` accepts (called once per candidate, on the searching thread). The
    /// base is walked with the predicate (no exact scan of the allowed items is planned:
    /// a selective predicate needs a large budget; pass the labels to
    /// [`search_labels`](Self::search_labels) instead), the delta scanned or searched with it.
    pub fn search_filtered(
        &self,
        query: &[f32],
        params: &SearchParams,
        allow: &LabelFilter<'_>,
    ) -> Result<(Vec<(u64, f32)>, SearchStats)> {
        self.state.search(query, params, Some(allow))
    }

    /// Like [`search`](Self::search), also returning what the base search did (default
    /// stats when there is no base).
    pub fn search_with_stats(
        &self,
        query: &[f32],
        params: &SearchParams,
    ) -> Result<(Vec<(u64, f32)>, SearchStats)> {
        self.state.search(query, params, None)
    }

    /// The stored vector of `label` (unit length under the angular metric), if held.
    pub fn get(&self, label: u64) -> Option<Vec<f32>> {
        self.state.get(label)
    }

    /// True if `label` is held.
    pub fn contains(&self, label: u64) -> bool {
        self.state.contains(label)
    }

    /// One more than the largest label in the base or the delta (removed ones
    /// included; 0 for an empty index): a label no item holds. O(items).
    pub fn next_label(&self) -> u64 {
        self.state.next_label()
    }

    /// Live items.
    pub fn len(&self) -> usize {
        self.state.len()
    }

    /// True when no item is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.state.dim
    }

    /// Distance metric.
    pub fn metric(&self) -> Metric {
        self.state.metric
    }

    /// Generation of the base (0 before the first base file is written).
    pub fn generation(&self) -> u64 {
        self.state.base.as_ref().map_or(0, |b| b.generation)
    }

    /// Items in the base file (tombstoned ones included).
    pub fn base_len(&self) -> usize {
        self.state.base_len()
    }

    /// Live items added since the base was written.
    pub fn delta_len(&self) -> usize {
        self.state.delta.len()
    }

    /// Base items removed or replaced since the base was written.
    pub fn tombstones(&self) -> usize {
        self.state.n_tombs
    }

    /// Commits in the current log (since the last compaction).
    pub fn commits(&self) -> u64 {
        self.commits
    }

    /// True if this index takes changes: it holds the writer lock, or it is in memory.
    pub fn is_writable(&self) -> bool {
        self.memory || self.writer.is_some()
    }

    /// True for an index held in memory only ([`in_memory`](Self::in_memory),
    /// [`empty_in_memory`](Self::empty_in_memory), [`from_bytes`](Self::from_bytes)).
    pub fn is_in_memory(&self) -> bool {
        self.memory
    }

    /// The base file's path (empty for an index in memory).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The compaction and delta settings.
    pub fn options(&self) -> &LiveOptions {
        &self.options
    }

    /// Changes the compaction and delta settings.
    pub fn set_options(&mut self, options: LiveOptions) {
        self.options = options;
    }

    /// The base index (`None` before the first compaction). Its ids are not labels.
    pub fn base(&self) -> Option<&Index> {
        self.state.base.as_ref().map(|b| &b.index)
    }
}
