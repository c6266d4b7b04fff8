//! Sharded indexes: a **manifest** naming several index files (shards) of one metric and
//! dimension, opened together as a [`ShardedIndex`] whose searches fan out over the shards
//! on rayon threads and merge their results exactly.
//!
//! Every item has a global **label** (u64): by default its row in the concatenation of
//! the shards (a shard's items are labelled `offset + id`), or, when a shard file carries
//! a labels section (kind 8, as written by [`build_shards`] with labels or by a live
//! index), the labels stored there. A search returns `(label, distance)` pairs, nearest
//! first, ties by label: exactly the merge of every shard's own top-k.
//!
//! The manifest is a small versioned text file with a checksum, specified in
//! `docs/format.md` ("Sharded indexes").
//!
//! ```no_run
//! # fn main() -> panns_io::Result<()> {
//! use panns_core::{BuildParams, Metric, SearchParams};
//! use panns_io::{OpenOptions, ShardBuildOptions, ShardedIndex, build_shards};
//! let data: Vec<f32> = (0..3000).map(|i| (i as f32).sin()).collect();
//! let manifest = build_shards(&data, 3, Metric::Euclidean, None, "shards",
//!                             &ShardBuildOptions { n_shards: 4, ..Default::default() })?;
//! let index = ShardedIndex::open(&manifest, &OpenOptions::default())?;
//! let hits = index.search(&data[..3], &SearchParams::new(10))?; // [(label, distance)]
//! assert_eq!(hits[0].0, 0);
//! # Ok(()) }
//! ```

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use panns_core::{
    BuildParams, Filter, GraphParams, Index, IndexBuilder, Metric, SearchParams, SearchStats,
};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::format::{Extras, OpenOptions, checksum::Hasher, corrupt};

/// First word of a manifest's first line.
pub const MANIFEST_MAGIC: &str = "panns-shards";
/// The manifest version this library reads and writes.
pub const MANIFEST_VERSION: u32 = 1;
/// The label written for a missing result in [`ShardedIndex::search_batch_into`].
pub const NO_LABEL: u64 = u64::MAX;

/// How the items of one shard are labelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardLabels {
    /// Item `id` of the shard has label `offset + id` (the row in the concatenation).
    Rows {
        /// The label of the shard's item 0.
        offset: u64,
    },
    /// The shard file's labels section (kind 8) holds one label per item.
    File,
}

/// One shard as the manifest records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestShard {
    /// The path as written in the manifest (relative paths are relative to the
    /// manifest's directory).
    pub path: PathBuf,
    /// Items in the shard.
    pub n_items: u64,
    /// The checksum field of the shard file's header (XXH64 of the whole file).
    pub checksum: u64,
    /// How its items are labelled.
    pub labels: ShardLabels,
}

/// The contents of a manifest file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The metric of every shard.
    pub metric: Metric,
    /// The dimension of every shard.
    pub dim: usize,
    /// The shards, in label order for row-labelled shards.
    pub shards: Vec<ManifestShard>,
}

impl Manifest {
    /// Total items over all shards.
    pub fn len(&self) -> u64 {
        self.shards.iter().map(|s| s.n_items).sum()
    }

    /// True when there are no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The manifest as text (the bytes [`Manifest::write`] stores), checksum line included.
    pub fn to_text(&self) -> Result<String> {
        let mut t = String::new();
        let _ = writeln!(t, "{MANIFEST_MAGIC} {MANIFEST_VERSION}");
        let _ = writeln!(t, "metric {}", self.metric.name());
        let _ = writeln!(t, "dim {}", self.dim);
        let _ = writeln!(t, "items {}", self.len());
        let _ = writeln!(t, "shards {}", self.shards.len());
        for s in &self.shards {
            let p = s.path.to_str().ok_or_else(|| {
                Error::invalid(format!(
                    "shard path {} is not UTF-8 (a manifest is UTF-8 text)",
                    s.path.display()
                ))
            })?;
            if p.is_empty() || p.contains(['\n', '\r']) || p.trim() != p {
                return Err(Error::invalid(format!(
                    "shard path {p:?} cannot be written in a manifest (empty, a line break, or \
                     leading/trailing white space)"
                )));
            }
            let labels = match s.labels {
                ShardLabels::Rows { offset } => format!("rows:{offset}"),
                ShardLabels::File => "file".to_string(),
            };
            let _ = writeln!(t, "shard {} {:016x} {labels} {p}", s.n_items, s.checksum);
        }
        let sum = text_checksum(t.as_bytes());
        let _ = writeln!(t, "checksum {sum:016x}");
        Ok(t)
    }

    /// Writes the manifest to `path` atomically (temporary file, fsync, rename).
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let text = self.to_text()?;
        crate::format::atomic_write(path.as_ref(), |w| w.write_all(text.as_bytes()))
    }

    /// Reads and checks the manifest at `path` (syntax, version, checksum, counts).
    pub fn read(path: impl AsRef<Path>) -> Result<Manifest> {
        let path = path.as_ref();
        let mut f = crate::format::open_regular_as(path, "a manifest file")?;
        let mut bytes = Vec::new();
        (&mut f)
            .take(64 << 20)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(path, e))?;
        if bytes.len() >= 64 << 20 {
            return Err(Error::malformed(path, "larger than 64 MiB: not a manifest"));
        }
        Manifest::parse(&bytes, path)
    }

    /// Parses the bytes of a manifest; `source` names it in errors.
    pub fn parse(bytes: &[u8], source: &Path) -> Result<Manifest> {
        let bad =
            |line: usize, msg: String| Error::malformed(source, format!("line {line}: {msg}"));
        if !bytes.starts_with(MANIFEST_MAGIC.as_bytes()) {
            return Err(Error::malformed(
                source,
                format!("not a panns shard manifest (it must start with \"{MANIFEST_MAGIC}\")"),
            ));
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|e| Error::malformed(source, format!("not UTF-8 text: {e}")))?;
        if !text.ends_with('\n') {
            return Err(Error::malformed(
                source,
                "does not end with a line break (truncated?)",
            ));
        }
        // The checksum line is the last one; it covers every byte before it.
        let body_end = text[..text.len() - 1].rfind('\n').map_or(0, |i| i + 1);
        let last = &text[body_end..text.len() - 1];
        let n_lines = text.lines().count();
        let stored = last
            .strip_prefix("checksum ")
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .ok_or_else(|| {
                bad(
                    n_lines,
                    format!("expected the last line \"checksum <16 hex digits>\", found {last:?} (truncated?)"),
                )
            })?;
        let computed = text_checksum(&bytes[..body_end]);
        if stored != computed {
            return Err(Error::ChecksumMismatch {
                path: source.to_path_buf(),
                stored,
                computed,
            });
        }
        let mut lines = text[..body_end]
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l));
        let mut field = |name: &str| -> Result<(usize, String)> {
            let (n, l) = lines
                .next()
                .ok_or_else(|| Error::malformed(source, format!("missing the \"{name}\" line")))?;
            let mut it = l.splitn(2, ' ');
            let key = it.next().unwrap_or("");
            if key != name {
                return Err(bad(n, format!("expected \"{name} ...\", found {l:?}")));
            }
            Ok((n, it.next().unwrap_or("").to_string()))
        };
        let (n, version) = field(MANIFEST_MAGIC)?;
        let version: u32 = version
            .parse()
            .map_err(|_| bad(n, format!("version {version:?} is not a number")))?;
        if version != MANIFEST_VERSION {
            return Err(bad(
                n,
                format!(
                    "manifest version {version}; this library reads version {MANIFEST_VERSION}{}",
                    if version > MANIFEST_VERSION {
                        " (upgrade panns)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        let (n, metric) = field("metric")?;
        let metric: Metric = metric
            .parse()
            .map_err(|_| bad(n, format!("unknown metric {metric:?}")))?;
        let (n, dim) = field("dim")?;
        let dim: usize = dim
            .parse()
            .ok()
            .filter(|&d| (1..=65536).contains(&d))
            .ok_or_else(|| bad(n, format!("dim {dim:?} is not a number in 1..=65536")))?;
        let (n_items_line, items) = field("items")?;
        let items: u64 = items
            .parse()
            .map_err(|_| bad(n_items_line, format!("items {items:?} is not a number")))?;
        let (n, count) = field("shards")?;
        let count: usize = count
            .parse()
            .ok()
            .filter(|&c| c >= 1)
            .ok_or_else(|| bad(n, format!("shards {count:?} is not a number >= 1")))?;
        let mut shards = Vec::new();
        for _ in 0..count {
            let (n, rest) = field("shard")?;
            let parts: Vec<&str> = rest.splitn(4, ' ').collect();
            let [n_items, checksum, labels, path] = parts[..] else {
                return Err(bad(
                    n,
                    "expected \"shard <items> <checksum> <rows:OFFSET|file> <path>\"".into(),
                ));
            };
            let n_items: u64 =
                n_items.parse().ok().filter(|&c| c >= 1).ok_or_else(|| {
                    bad(n, format!("item count {n_items:?} is not a number >= 1"))
                })?;
            let checksum = u64::from_str_radix(checksum, 16)
                .map_err(|_| bad(n, format!("checksum {checksum:?} is not hexadecimal")))?;
            let labels = if labels == "file" {
                ShardLabels::File
            } else {
                let offset = labels
                    .strip_prefix("rows:")
                    .and_then(|o| o.parse().ok())
                    .ok_or_else(|| {
                        bad(
                            n,
                            format!("labels {labels:?}: expected rows:OFFSET or file"),
                        )
                    })?;
                ShardLabels::Rows { offset }
            };
            if path.is_empty() {
                return Err(bad(n, "empty shard path".into()));
            }
            shards.push(ManifestShard {
                path: PathBuf::from(path),
                n_items,
                checksum,
                labels,
            });
        }
        if let Some((n, l)) = lines.next() {
            return Err(bad(
                n,
                format!("unexpected line {l:?} after the {count} shards"),
            ));
        }
        let m = Manifest {
            metric,
            dim,
            shards,
        };
        if m.len() != items {
            return Err(bad(
                n_items_line,
                format!("items {items}, but the shards hold {} in all", m.len()),
            ));
        }
        Ok(m)
    }
}

/// XXH64 (seed 0) of the manifest text before its checksum line.
fn text_checksum(bytes: &[u8]) -> u64 {
    let mut h = Hasher::default();
    h.update(bytes);
    h.finish()
}

/// A read-only memory map shared by a shard's index and its labels.
struct SharedMap(Arc<Mmap>);

impl AsRef<[u8]> for SharedMap {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A shard file, mapped: its index, header checksum and labels section.
struct ShardFile {
    index: Index,
    checksum: u64,
    labels: Option<Vec<u64>>,
}

fn open_shard_file(path: &Path, opts: &OpenOptions) -> Result<ShardFile> {
    let file = crate::format::open_regular(path)?;
    // SAFETY: read-only map of an immutable shard file (replaced only by rename, never
    // written in place; docs/format.md).
    let map = Arc::new(unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?);
    let index =
        crate::format::index_from_source(SharedMap(Arc::clone(&map)), path.to_path_buf(), opts)?;
    let layout = crate::format::parse(&map, path, &OpenOptions::default())?;
    let labels = layout.labels(&map, path)?.map(<[u64]>::to_vec);
    Ok(ShardFile {
        index,
        checksum: layout.header.checksum(),
        labels,
    })
}

/// Wraps an error about shard `i` of `manifest`.
fn shard_err(manifest: &Path, shard: usize, e: Error) -> Error {
    Error::Shard {
        manifest: manifest.to_path_buf(),
        shard,
        source: Box::new(e),
    }
}

/// `path` as the manifest at `manifest` resolves it.
fn resolve(manifest: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        manifest
            .parent()
            .unwrap_or_else(|| Path::new(""))
            .join(path)
    }
}

/// Writes a manifest at `manifest` naming the index files `shards` (in this order) and
/// returns it. Each file is opened and checked (structure, not values); all must share
/// one metric and dimension. Shards with a labels section are labelled by it; the others
/// by their row in the concatenation of all shards (`offset` = items of the shards
/// before). Paths are stored relative to the manifest's directory when they are inside
/// it, absolute otherwise.
pub fn write_manifest(manifest: impl AsRef<Path>, shards: &[impl AsRef<Path>]) -> Result<Manifest> {
    let manifest = manifest.as_ref();
    if shards.is_empty() {
        return Err(Error::invalid(format!(
            "{}: a manifest needs at least one shard",
            manifest.display()
        )));
    }
    let dir = manifest.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = match dir {
        Some(d) => d.canonicalize().map_err(|e| Error::io(d, e))?,
        None => std::env::current_dir().map_err(|e| Error::io(Path::new("."), e))?,
    };
    let mut out: Vec<ManifestShard> = Vec::new();
    let mut first: Option<(Metric, usize, PathBuf)> = None;
    let mut offset = 0u64;
    for (i, p) in shards.iter().enumerate() {
        let p = p.as_ref();
        let f =
            open_shard_file(p, &OpenOptions::default()).map_err(|e| shard_err(manifest, i, e))?;
        let (metric, dim) = (f.index.metric(), f.index.dim());
        match &first {
            None => first = Some((metric, dim, p.to_path_buf())),
            Some((m, d, p0)) if (*m, *d) != (metric, dim) => {
                return Err(shard_err(
                    manifest,
                    i,
                    corrupt(
                        p,
                        format!(
                            "metric {metric}, dimension {dim}, but shard 0 ({}) has metric {m}, \
                             dimension {d} (every shard must agree)",
                            p0.display()
                        ),
                    ),
                ));
            }
            Some(_) => {}
        }
        let abs = p.canonicalize().map_err(|e| Error::io(p, e))?;
        let stored = abs
            .strip_prefix(&dir)
            .map_or(abs.clone(), Path::to_path_buf);
        let n = f.index.len() as u64;
        out.push(ManifestShard {
            path: stored,
            n_items: n,
            checksum: f.checksum,
            labels: if f.labels.is_some() {
                ShardLabels::File
            } else {
                ShardLabels::Rows { offset }
            },
        });
        offset += n;
    }
    let (metric, dim, _) = first.expect("at least one shard");
    let m = Manifest {
        metric,
        dim,
        shards: out,
    };
    m.write(manifest)?;
    Ok(m)
}

/// Search results: `(label, distance)` pairs, nearest first, ties by label.
pub type Hits = Vec<(u64, f32)>;

/// How one shard maps its item ids to labels.
#[derive(Debug)]
enum LabelMap {
    Offset(u64),
    List(Vec<u64>),
}

impl LabelMap {
    #[inline]
    fn label(&self, id: u32) -> u64 {
        match self {
            LabelMap::Offset(o) => o + u64::from(id),
            LabelMap::List(l) => l[id as usize],
        }
    }
}

impl Shard {
    /// The item of this shard holding global `label`, if any (a list's label→id table
    /// is built on first use).
    fn id_of(&self, label: u64) -> Option<u32> {
        let n = self.index.len() as u64;
        match &self.labels {
            LabelMap::Offset(o) => label.checked_sub(*o).filter(|&i| i < n).map(|i| i as u32),
            LabelMap::List(l) => {
                let sorted = self.by_label.get_or_init(|| {
                    let mut v: Vec<(u64, u32)> =
                        l.iter().enumerate().map(|(i, &x)| (x, i as u32)).collect();
                    v.sort_unstable();
                    v
                });
                let i = sorted.partition_point(|e| e.0 < label);
                sorted.get(i).filter(|e| e.0 == label).map(|e| e.1)
            }
        }
    }
}

/// One opened shard.
struct Shard {
    index: Index,
    path: PathBuf,
    labels: LabelMap,
    /// (label, id) sorted by label, for label lists (built on first use).
    by_label: std::sync::OnceLock<Vec<(u64, u32)>>,
}

/// Several index files searched as one: fan-out on rayon threads, exact top-k merge by
/// (distance, label). Searches take `&self` and may run on many threads at once.
pub struct ShardedIndex {
    manifest: PathBuf,
    metric: Metric,
    dim: usize,
    len: usize,
    shards: Vec<Shard>,
    /// Positions in the manifest of the opened shards.
    selected: Vec<usize>,
}

impl std::fmt::Debug for ShardedIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedIndex")
            .field("manifest", &self.manifest)
            .field("metric", &self.metric)
            .field("dim", &self.dim)
            .field("len", &self.len)
            .field("shards", &self.selected)
            .finish()
    }
}

/// Which global labels a sharded search may return: the label filters of
/// [`ShardedIndex::search_labels`] and [`ShardedIndex::search_filtered`] as one value.
#[derive(Clone, Copy)]
pub enum ShardFilter<'a> {
    /// Every item.
    All,
    /// Only the listed labels (an allow-list: unknown labels match nothing, an empty
    /// list gives no results; planned per shard, an exact scan when few are listed).
    Labels(&'a [u64]),
    /// The labels the predicate accepts (called from the shards' search threads).
    Predicate(&'a (dyn Fn(u64) -> bool + Sync)),
}

impl std::fmt::Debug for ShardFilter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShardFilter::All => f.write_str("All"),
            ShardFilter::Labels(l) => f.debug_tuple("Labels").field(l).finish(),
            ShardFilter::Predicate(_) => f.write_str("Predicate(..)"),
        }
    }
}

/// Orders hits by distance, then label (NaN last; -0 equals +0).
fn cmp_hit(a: &(u64, f32), b: &(u64, f32)) -> Ordering {
    match a.1.partial_cmp(&b.1) {
        Some(Ordering::Equal) | None if a.1.is_nan() == b.1.is_nan() => a.0.cmp(&b.0),
        Some(o) if o != Ordering::Equal => o,
        _ => a.1.is_nan().cmp(&b.1.is_nan()),
    }
}

/// The `k` best of several `(label, distance)` lists: all hits sorted by distance, ties
/// by label, cut to `k` (the exact merge [`ShardedIndex`] uses).
pub fn merge_top_k(lists: &[Vec<(u64, f32)>], k: usize) -> Vec<(u64, f32)> {
    let mut all: Vec<(u64, f32)> = lists.iter().flatten().copied().collect();
    all.sort_unstable_by(cmp_hit);
    all.truncate(k);
    all
}

/// A range search over labelled hits (of [`ShardedIndex::range_search`] and
/// [`crate::LiveIndex::range_search`]): refuses a negative or NaN `radius` and
/// `max_results = 0`, gets the `max_results + 1` nearest at `budget` from `search` (one
/// more than the cap tells whether the cap was hit), keeps those within the radius, cut
/// to `max_results`, and says whether the cap cut the list.
pub(crate) fn range_of(
    radius: f32,
    max_results: usize,
    budget: usize,
    search: impl FnOnce(&SearchParams) -> Result<Hits>,
) -> Result<(Hits, bool)> {
    if radius.is_nan() || radius < 0.0 {
        return Err(panns_core::Error::parameter("radius", radius, "must be a number >= 0").into());
    }
    if max_results == 0 {
        return Err(panns_core::Error::parameter("max_results", 0, "must be at least 1").into());
    }
    let hits = search(&SearchParams::new(max_results.saturating_add(1)).with_budget(budget))?;
    let mut within: Hits = hits.into_iter().filter(|h| h.1 <= radius).collect();
    let capped = within.len() > max_results;
    within.truncate(max_results);
    Ok((within, capped))
}

impl ShardedIndex {
    /// Opens every shard of the manifest at `manifest` (memory-mapped; with
    /// `opts.verify_checksum` every shard file is hashed and its values checked too).
    ///
    /// Refused, with an error naming the shard: a missing or damaged shard file, a shard
    /// whose metric, dimension or item count differs from the manifest, a shard whose
    /// header checksum differs from the manifest's (the file was replaced, or the
    /// manifest is stale), a `file`-labelled shard without labels, and labels held by
    /// two items.
    pub fn open(manifest: impl AsRef<Path>, opts: &OpenOptions) -> Result<ShardedIndex> {
        let manifest = manifest.as_ref();
        let m = Manifest::read(manifest)?;
        let all: Vec<usize> = (0..m.shards.len()).collect();
        Self::open_manifest(manifest, &m, &all, opts)
    }

    /// Opens only the shards at positions `which` of the manifest (e.g. one per process
    /// or Ray actor); labels stay global, so merging the results of disjoint subsets
    /// with [`merge_top_k`] gives the answer of the whole index.
    pub fn open_subset(
        manifest: impl AsRef<Path>,
        which: &[usize],
        opts: &OpenOptions,
    ) -> Result<ShardedIndex> {
        let manifest = manifest.as_ref();
        let m = Manifest::read(manifest)?;
        Self::open_manifest(manifest, &m, which, opts)
    }

    /// Opens the shards `which` of the parsed manifest `m`, read from `manifest`.
    pub fn open_manifest(
        manifest: &Path,
        m: &Manifest,
        which: &[usize],
        opts: &OpenOptions,
    ) -> Result<ShardedIndex> {
        if which.is_empty() {
            return Err(Error::invalid(format!(
                "{}: no shard selected",
                manifest.display()
            )));
        }
        for (j, &i) in which.iter().enumerate() {
            if i >= m.shards.len() {
                return Err(Error::invalid(format!(
                    "{}: shard {i} does not exist (the manifest names {})",
                    manifest.display(),
                    m.shards.len()
                )));
            }
            if which[..j].contains(&i) {
                return Err(Error::invalid(format!(
                    "{}: shard {i} selected twice",
                    manifest.display()
                )));
            }
        }
        check_row_ranges(manifest, m)?;
        let opened: Vec<Result<Shard>> = which
            .par_iter()
            .map(|&i| open_one(manifest, m, i, opts).map_err(|e| shard_err(manifest, i, e)))
            .collect();
        let shards = opened.into_iter().collect::<Result<Vec<Shard>>>()?;
        check_distinct(manifest, m, which, &shards)?;
        let len = shards.iter().map(|s| s.index.len()).sum();
        Ok(ShardedIndex {
            manifest: manifest.to_path_buf(),
            metric: m.metric,
            dim: m.dim,
            len,
            shards,
            selected: which.to_vec(),
        })
    }

    /// Total items of the opened shards.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no item is held (never, for an opened index).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Distance metric.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Number of opened shards.
    pub fn n_shards(&self) -> usize {
        self.shards.len()
    }

    /// The manifest's path.
    pub fn manifest_path(&self) -> &Path {
        &self.manifest
    }

    /// The opened shards' positions in the manifest.
    pub fn shard_positions(&self) -> &[usize] {
        &self.selected
    }

    /// The index of opened shard `i` (its ids are not labels; see [`Self::label`]).
    pub fn shard(&self, i: usize) -> Option<&Index> {
        self.shards.get(i).map(|s| &s.index)
    }

    /// The resolved file path of opened shard `i`.
    pub fn shard_path(&self, i: usize) -> Option<&Path> {
        self.shards.get(i).map(|s| s.path.as_path())
    }

    /// The global label of item `id` of opened shard `i`.
    pub fn label(&self, i: usize, id: u32) -> Option<u64> {
        let s = self.shards.get(i)?;
        ((id as usize) < s.index.len()).then(|| s.labels.label(id))
    }

    /// Checks that `queries` holds whole rows and that `k >= 1`.
    fn check_batch(&self, queries: &[f32], params: &SearchParams) -> Result<()> {
        if !queries.len().is_multiple_of(self.dim) {
            return Err(panns_core::Error::RaggedBatch {
                len: queries.len(),
                dim: self.dim,
            }
            .into());
        }
        if params.k == 0 {
            return Err(panns_core::Error::InvalidK(0).into());
        }
        Ok(())
    }

    fn check_query(&self, query: &[f32]) -> Result<()> {
        if query.len() != self.dim {
            return Err(panns_core::Error::DimensionMismatch {
                expected: self.dim,
                got: query.len(),
            }
            .into());
        }
        Ok(())
    }

    /// Every opened shard's own top-k for `query` as `(label, distance)` lists, with what
    /// each shard's search did (in shard order). Searched in parallel.
    pub fn search_shards(
        &self,
        query: &[f32],
        params: &SearchParams,
    ) -> Result<Vec<(Hits, SearchStats)>> {
        self.check_query(query)?;
        self.shards
            .par_iter()
            .map(|s| {
                let (hits, stats) = s.index.search_with_stats(query, params)?;
                Ok((
                    hits.iter()
                        .map(|h| (s.labels.label(h.id), h.distance))
                        .collect(),
                    stats,
                ))
            })
            .collect()
    }

    /// The `k` nearest items to `query` as `(label, distance)`, nearest first, ties by
    /// label: the merge of every shard's own top-k (each searched with `params`).
    pub fn search(&self, query: &[f32], params: &SearchParams) -> Result<Vec<(u64, f32)>> {
        Ok(self.search_with_stats(query, params)?.0)
    }

    /// Like [`search`](Self::search), also returning each shard's search statistics.
    pub fn search_with_stats(
        &self,
        query: &[f32],
        params: &SearchParams,
    ) -> Result<(Hits, Vec<SearchStats>)> {
        if params.k == 0 {
            return Err(panns_core::Error::InvalidK(0).into());
        }
        let per = self.search_shards(query, params)?;
        let (lists, stats): (Vec<_>, Vec<_>) = per.into_iter().unzip();
        Ok((merge_top_k(&lists, params.k), stats))
    }

    /// Like [`search_with_stats`](Self::search_with_stats), returning only items whose
    /// global label is in `labels` (an allow-list: unknown labels match nothing, an empty
    /// list gives no results). Each shard gets an allow-bitmap of its listed items, so
    /// its planner sees how many pass (an exact scan of them when few do); shards
    /// holding none are not searched (their stats are the default).
    pub fn search_labels(
        &self,
        query: &[f32],
        params: &SearchParams,
        labels: &[u64],
    ) -> Result<(Hits, Vec<SearchStats>)> {
        self.filtered(query, params, |s| {
            let mut bits = vec![0u64; s.index.len().div_ceil(64)];
            let mut any = false;
            for id in labels.iter().filter_map(|&l| s.id_of(l)) {
                bits[id as usize / 64] |= 1 << (id % 64);
                any = true;
            }
            if !any {
                return Ok(None);
            }
            s.index
                .search_filtered(query, params, &Filter::Allow(&bits))
                .map(Some)
        })
    }

    /// Like [`search_with_stats`](Self::search_with_stats), returning only items whose
    /// global label `allow` accepts. `allow` is called from the shards' search threads
    /// (several at once); no exact scan is planned for a predicate (pass a list to
    /// [`search_labels`](Self::search_labels) for that).
    pub fn search_filtered(
        &self,
        query: &[f32],
        params: &SearchParams,
        allow: &(dyn Fn(u64) -> bool + Sync),
    ) -> Result<(Hits, Vec<SearchStats>)> {
        self.filtered(query, params, |s| {
            let pred = |id: u32| allow(s.labels.label(id));
            s.index
                .search_filtered(query, params, &Filter::Predicate(&pred))
                .map(Some)
        })
    }

    /// Like [`search_with_stats`](Self::search_with_stats) under `filter`: every item
    /// for [`ShardFilter::All`], else [`search_labels`](Self::search_labels) or
    /// [`search_filtered`](Self::search_filtered).
    pub fn search_with_filter(
        &self,
        query: &[f32],
        params: &SearchParams,
        filter: ShardFilter<'_>,
    ) -> Result<(Hits, Vec<SearchStats>)> {
        match filter {
            ShardFilter::All => self.search_with_stats(query, params),
            ShardFilter::Labels(list) => self.search_labels(query, params, list),
            ShardFilter::Predicate(allow) => self.search_filtered(query, params, allow),
        }
    }

    /// Every item `filter` allows within distance `radius` of `query` (as FAISS'
    /// `range_search`), nearest first, ties by label, at most `max_results` of them; the
    /// flag is true when more were found and the list was cut (the nearest are kept).
    /// Each shard's candidates are its `max_results + 1` nearest allowed items at
    /// `budget` (0: the default), as [`Index::range_search`]; the merge is exact: the
    /// union of every shard's items within the radius, sorted, cut to `max_results`, and
    /// flagged when a shard or the union held more. Approximate unless the budget covers
    /// half of each shard's (allowed) items. A negative or NaN radius and
    /// `max_results = 0` are errors; under the angular metric distances are `1 - cos`.
    pub fn range_search(
        &self,
        query: &[f32],
        radius: f32,
        max_results: usize,
        budget: usize,
        filter: ShardFilter<'_>,
    ) -> Result<(Hits, bool)> {
        // The merged top `max_results + 1` holds the union's nearest, so its part within
        // the radius is the union's, cut to `max_results + 1`.
        range_of(radius, max_results, budget, |p| {
            Ok(self.search_with_filter(query, p, filter)?.0)
        })
    }

    /// [`search_batch`](Self::search_batch) under one `filter` for every query: one
    /// merged list per query, each as [`search_with_filter`](Self::search_with_filter)
    /// gives it (queries in parallel, each fanned out over the shards). A predicate is
    /// called from many threads at once. Errors name the first failing query row.
    pub fn search_batch_filtered(
        &self,
        queries: &[f32],
        params: &SearchParams,
        filter: ShardFilter<'_>,
    ) -> Result<Vec<Hits>> {
        if let ShardFilter::All = filter {
            return self.search_batch(queries, params);
        }
        self.check_batch(queries, params)?;
        queries
            .par_chunks(self.dim)
            .enumerate()
            .map(|(r, q)| {
                self.search_with_filter(q, params, filter)
                    .map(|h| h.0)
                    .map_err(|e| match e {
                        Error::Core(c) => Error::Core(c.with_item(r)),
                        other => other,
                    })
            })
            .collect()
    }

    /// Every shard searched in parallel with `one` (None: nothing to search there),
    /// labelled and merged.
    fn filtered(
        &self,
        query: &[f32],
        params: &SearchParams,
        one: impl Fn(&Shard) -> panns_core::Result<Option<(Vec<panns_core::Neighbor>, SearchStats)>>
        + Sync,
    ) -> Result<(Hits, Vec<SearchStats>)> {
        if params.k == 0 {
            return Err(panns_core::Error::InvalidK(0).into());
        }
        self.check_query(query)?;
        let per: Vec<(Hits, SearchStats)> = self
            .shards
            .par_iter()
            .map(|s| {
                Ok(match one(s)? {
                    Some((hits, stats)) => (
                        hits.iter()
                            .map(|h| (s.labels.label(h.id), h.distance))
                            .collect(),
                        stats,
                    ),
                    None => (Hits::new(), SearchStats::default()),
                })
            })
            .collect::<Result<_>>()?;
        let (lists, stats): (Vec<_>, Vec<_>) = per.into_iter().unzip();
        Ok((merge_top_k(&lists, params.k), stats))
    }

    /// Searches many queries (row-major, `dim` floats each) in parallel; one merged list
    /// per query. Errors name the first failing query row.
    pub fn search_batch(
        &self,
        queries: &[f32],
        params: &SearchParams,
    ) -> Result<Vec<Vec<(u64, f32)>>> {
        self.check_batch(queries, params)?;
        // Shard by shard (each batch parallel over the queries: one shard's pages stay hot),
        // then every query's lists merged.
        let per_shard = self
            .shards
            .iter()
            .map(|s| {
                let hits = s.index.search_batch(queries, params)?;
                Ok(hits
                    .into_iter()
                    .map(|h| {
                        h.into_iter()
                            .map(|n| (s.labels.label(n.id), n.distance))
                            .collect::<Hits>()
                    })
                    .collect::<Vec<Hits>>())
            })
            .collect::<Result<Vec<Vec<Hits>>>>()?;
        let nq = queries.len() / self.dim;
        Ok((0..nq)
            .into_par_iter()
            .map(|r| {
                let mut all: Hits = per_shard
                    .iter()
                    .flat_map(|s| s[r].iter().copied())
                    .collect();
                all.sort_unstable_by(cmp_hit);
                all.truncate(params.k);
                all
            })
            .collect())
    }

    /// Like [`search_batch`](Self::search_batch), writing `k` results per query into the
    /// caller's buffers: row `i` at `labels[i * k..(i + 1) * k]` (and `distances`, if
    /// given). A row with fewer than `k` results is padded with label [`NO_LABEL`] and
    /// distance `+inf`.
    pub fn search_batch_into(
        &self,
        queries: &[f32],
        params: &SearchParams,
        labels: &mut [u64],
        distances: Option<&mut [f32]>,
    ) -> Result<()> {
        let k = params.k;
        if k == 0 {
            return Err(panns_core::Error::InvalidK(0).into());
        }
        if !queries.len().is_multiple_of(self.dim) {
            return Err(panns_core::Error::RaggedBatch {
                len: queries.len(),
                dim: self.dim,
            }
            .into());
        }
        let nq = queries.len() / self.dim;
        let want = nq.saturating_mul(k);
        if labels.len() != want {
            return Err(panns_core::Error::BufferSize {
                name: "labels",
                expected: want,
                got: labels.len(),
            }
            .into());
        }
        if let Some(d) = distances.as_deref()
            && d.len() != want
        {
            return Err(panns_core::Error::BufferSize {
                name: "distances",
                expected: want,
                got: d.len(),
            }
            .into());
        }
        let results = self.search_batch(queries, params)?;
        let fill = |hits: &[(u64, f32)], l: &mut [u64], d: Option<&mut [f32]>| {
            for (i, o) in l.iter_mut().enumerate() {
                *o = hits.get(i).map_or(NO_LABEL, |h| h.0);
            }
            if let Some(d) = d {
                for (i, o) in d.iter_mut().enumerate() {
                    *o = hits.get(i).map_or(f32::INFINITY, |h| h.1);
                }
            }
        };
        match distances {
            Some(ds) => results
                .par_iter()
                .zip(labels.par_chunks_mut(k))
                .zip(ds.par_chunks_mut(k))
                .for_each(|((h, l), d)| fill(h, l, Some(d))),
            None => results
                .par_iter()
                .zip(labels.par_chunks_mut(k))
                .for_each(|(h, l)| fill(h, l, None)),
        }
        Ok(())
    }
}

/// Opens shard `i` of `m` and checks it against the manifest.
fn open_one(manifest: &Path, m: &Manifest, i: usize, opts: &OpenOptions) -> Result<Shard> {
    let entry = &m.shards[i];
    let path = resolve(manifest, &entry.path);
    let f = open_shard_file(&path, opts)?;
    let mismatch = |what: &str, file: String, want: String| {
        corrupt(
            &path,
            format!("{what} {file}, but the manifest says {want}"),
        )
    };
    if f.checksum != entry.checksum {
        return Err(mismatch(
            "header checksum",
            format!("{:016x}", f.checksum),
            format!(
                "{:016x} (the file was replaced or the manifest is stale)",
                entry.checksum
            ),
        ));
    }
    if f.index.metric() != m.metric {
        return Err(mismatch(
            "metric",
            f.index.metric().to_string(),
            m.metric.to_string(),
        ));
    }
    if f.index.dim() != m.dim {
        return Err(mismatch(
            "dimension",
            f.index.dim().to_string(),
            m.dim.to_string(),
        ));
    }
    if f.index.len() as u64 != entry.n_items {
        return Err(mismatch(
            "item count",
            f.index.len().to_string(),
            entry.n_items.to_string(),
        ));
    }
    let labels = match (entry.labels, f.labels) {
        (ShardLabels::Rows { offset }, _) => LabelMap::Offset(offset),
        (ShardLabels::File, Some(l)) => LabelMap::List(l),
        (ShardLabels::File, None) => {
            return Err(corrupt(
                &path,
                "the manifest says its labels are in the file, but it has no labels section",
            ));
        }
    };
    Ok(Shard {
        index: f.index,
        path,
        labels,
        by_label: std::sync::OnceLock::new(),
    })
}

/// Checks that the row-labelled shards' label ranges do not overlap (nor overflow).
fn check_row_ranges(manifest: &Path, m: &Manifest) -> Result<()> {
    let mut ranges = Vec::new();
    for (i, s) in m.shards.iter().enumerate() {
        if let ShardLabels::Rows { offset } = s.labels {
            let end = offset.checked_add(s.n_items).ok_or_else(|| {
                Error::malformed(manifest, format!("shard {i}: rows:{offset} overflows"))
            })?;
            ranges.push((offset, end, i));
        }
    }
    ranges.sort_unstable();
    for w in ranges.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(Error::malformed(
                manifest,
                format!(
                    "shards {} and {} have overlapping label ranges {}..{} and {}..{}",
                    w[0].2, w[1].2, w[0].0, w[0].1, w[1].0, w[1].1
                ),
            ));
        }
    }
    Ok(())
}

/// Checks that no label is held twice: within and across `file`-labelled shards, and
/// against every row range of the manifest.
fn check_distinct(manifest: &Path, m: &Manifest, which: &[usize], shards: &[Shard]) -> Result<()> {
    let mut explicit: Vec<(u64, usize)> = Vec::new();
    for (s, &i) in shards.iter().zip(which) {
        if let LabelMap::List(l) = &s.labels {
            explicit.extend(l.iter().map(|&x| (x, i)));
        }
    }
    if explicit.is_empty() {
        return Ok(());
    }
    explicit.par_sort_unstable();
    if let Some(w) = explicit.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(Error::malformed(
            manifest,
            format!(
                "label {} is held twice (shards {} and {}); labels must be distinct",
                w[0].0, w[0].1, w[1].1
            ),
        ));
    }
    for (i, s) in m.shards.iter().enumerate() {
        if let ShardLabels::Rows { offset } = s.labels {
            let at = explicit.partition_point(|e| e.0 < offset);
            if let Some(&(l, j)) = explicit.get(at)
                && l < offset + s.n_items
            {
                return Err(Error::malformed(
                    manifest,
                    format!(
                        "label {l} of shard {j} is also the row label of an item of shard {i} \
                         (rows {offset}..{}); labels must be distinct",
                        offset + s.n_items
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Options of [`build_shards`].
#[derive(Clone, Debug)]
pub struct ShardBuildOptions {
    /// Number of shards (at least 1; rows are split into contiguous, near-equal runs).
    pub n_shards: usize,
    /// Build parameters of every shard.
    pub params: BuildParams,
    /// A neighbour graph for every shard (`None`: trees only).
    pub graph: Option<GraphParams>,
    /// File name of the manifest inside the output directory.
    pub manifest_name: String,
}

impl Default for ShardBuildOptions {
    fn default() -> Self {
        ShardBuildOptions {
            n_shards: 2,
            params: BuildParams::default(),
            graph: None,
            manifest_name: "manifest.panns-shards".to_string(),
        }
    }
}

/// The rows `[start, end)` of shard `s` of `n_shards` over `n` rows.
pub fn shard_rows(n: usize, n_shards: usize, s: usize) -> std::ops::Range<usize> {
    let at = |i: usize| ((i as u128 * n as u128) / n_shards as u128) as usize;
    at(s)..at(s + 1)
}

/// The file name of shard `s` written by [`build_shards`].
pub fn shard_file_name(s: usize) -> String {
    format!("shard-{s:05}.panns")
}

/// Splits the row-major `data` (`dim` floats per row) into `opts.n_shards` contiguous
/// runs of rows, builds and saves each as `out_dir/shard-NNNNN.panns` (one after the
/// other, each build on all cores), and writes the manifest `out_dir/opts.manifest_name`;
/// returns its path. With `labels` (one per row, distinct) every shard file stores its
/// rows' labels; without, the label of an item is its row in `data`.
pub fn build_shards(
    data: &[f32],
    dim: usize,
    metric: Metric,
    labels: Option<&[u64]>,
    out_dir: impl AsRef<Path>,
    opts: &ShardBuildOptions,
) -> Result<PathBuf> {
    let out_dir = out_dir.as_ref();
    if dim == 0 || !data.len().is_multiple_of(dim) {
        return Err(panns_core::Error::RaggedBatch {
            len: data.len(),
            dim,
        }
        .into());
    }
    let n = data.len() / dim;
    if opts.n_shards == 0 || opts.n_shards > n {
        return Err(Error::invalid(format!(
            "n_shards = {}: must be in 1..={n} (the number of rows)",
            opts.n_shards
        )));
    }
    if let Some(l) = labels {
        if l.len() != n {
            return Err(Error::invalid(format!(
                "{} labels for {n} rows (one label per row)",
                l.len()
            )));
        }
        let mut sorted = l.to_vec();
        sorted.par_sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::invalid(format!(
                "label {} is given twice; labels must be distinct",
                w[0]
            )));
        }
    }
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let mut paths = Vec::with_capacity(opts.n_shards);
    for s in 0..opts.n_shards {
        let rows = shard_rows(n, opts.n_shards, s);
        let mut b = IndexBuilder::new(dim, metric)?;
        b.add_batch(&data[rows.start * dim..rows.end * dim])
            .map_err(|e| {
                use panns_core::Error as E;
                match e {
                    E::NonFinite { item, .. }
                    | E::TooLarge { item, .. }
                    | E::ZeroVector { item } => e.with_item(rows.start + item),
                    other => other,
                }
            })?;
        let mut index = b.build(&opts.params)?;
        if let Some(g) = &opts.graph {
            index.build_graph(g)?;
        }
        let path = out_dir.join(shard_file_name(s));
        let extras = Extras {
            labels: labels.map(|l| &l[rows.clone()]),
            generation: None,
        };
        crate::format::save_index_with(&index, &extras, &path)?;
        paths.push(path);
    }
    let manifest = out_dir.join(&opts.manifest_name);
    write_manifest(&manifest, &paths)?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_orders_by_distance_then_label() {
        let a = vec![(5, 1.0), (9, 2.0)];
        let b = vec![(3, 1.0), (1, 0.5), (2, f32::INFINITY)];
        assert_eq!(
            merge_top_k(&[a.clone(), b.clone()], 3),
            vec![(1, 0.5), (3, 1.0), (5, 1.0)]
        );
        assert_eq!(merge_top_k(&[a, b], 10).len(), 5);
        // -0 and +0 tie and fall back to the label.
        assert_eq!(
            merge_top_k(&[vec![(7, 0.0)], vec![(8, -0.0)]], 2),
            vec![(7, 0.0), (8, -0.0)]
        );
        assert_eq!(
            merge_top_k(&[vec![(7, f32::NAN)], vec![(8, 1.0)]], 2)[0].0,
            8
        );
    }

    #[test]
    fn rows_split_evenly_and_cover_everything() {
        for (n, s) in [(10, 3), (7, 7), (1000, 4), (5, 1)] {
            let mut next = 0;
            for i in 0..s {
                let r = shard_rows(n, s, i);
                assert_eq!(r.start, next);
                assert!(r.len() >= n / s && r.len() <= n.div_ceil(s));
                next = r.end;
            }
            assert_eq!(next, n);
        }
    }

    #[test]
    fn manifest_text_round_trips_and_is_checksummed() {
        let m = Manifest {
            metric: Metric::Angular,
            dim: 7,
            shards: vec![
                ManifestShard {
                    path: "a b/shard 0.panns".into(),
                    n_items: 10,
                    checksum: 0xdead_beef,
                    labels: ShardLabels::Rows { offset: 0 },
                },
                ManifestShard {
                    path: "/abs/s1.panns".into(),
                    n_items: 5,
                    checksum: 1,
                    labels: ShardLabels::File,
                },
            ],
        };
        let t = m.to_text().unwrap();
        assert_eq!(Manifest::parse(t.as_bytes(), Path::new("m")).unwrap(), m);
        // Any change of a byte before the checksum line is caught.
        let bad = t.replacen("dim 7", "dim 8", 1);
        assert!(matches!(
            Manifest::parse(bad.as_bytes(), Path::new("m")),
            Err(Error::ChecksumMismatch { .. })
        ));
        let cut = &t[..t.len() - 5];
        let e = Manifest::parse(cut.as_bytes(), Path::new("m")).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        let e = Manifest::parse(b"hello\n", Path::new("m")).unwrap_err();
        assert!(e.to_string().contains("not a panns shard manifest"), "{e}");
        let mut bad_path = m.clone();
        bad_path.shards[0].path = "x\ny".into();
        assert!(bad_path.to_text().is_err());
    }

    /// A manifest whose checksum is recomputed after editing.
    fn resign(text: &str) -> String {
        let body = &text[..text[..text.len() - 1].rfind('\n').unwrap() + 1];
        format!("{body}checksum {:016x}\n", text_checksum(body.as_bytes()))
    }

    #[test]
    fn manifest_fields_are_checked() {
        let m = Manifest {
            metric: Metric::Euclidean,
            dim: 3,
            shards: vec![ManifestShard {
                path: "s".into(),
                n_items: 4,
                checksum: 2,
                labels: ShardLabels::Rows { offset: 0 },
            }],
        };
        let t = m.to_text().unwrap();
        for (from, to, want) in [
            ("panns-shards 1", "panns-shards 2", "upgrade panns"),
            ("metric euclidean", "metric manhattan", "unknown metric"),
            ("dim 3", "dim 0", "dim"),
            ("items 4", "items 5", "the shards hold 4"),
            ("rows:0", "rows:x", "rows:OFFSET or file"),
            ("\nshards 1", "\nshards 2", "missing the \"shard\" line"),
        ] {
            let e = Manifest::parse(resign(&t.replacen(from, to, 1)).as_bytes(), Path::new("m"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{from} -> {to}: {e}");
        }
    }
}
