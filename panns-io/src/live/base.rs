//! The immutable base of a live index: the memory-mapped index file with its labels.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use memmap2::Mmap;
use panns_core::Index;

use crate::error::{Error, Result};
use crate::format::{HEADER_SIZE, Header, OpenOptions, corrupt};

/// How base item ids map to labels.
#[derive(Debug)]
pub(crate) enum Labels {
    /// No labels section: the label of item `i` is `i`.
    Identity(usize),
    /// One label per item, and the reverse map.
    Explicit {
        list: Vec<u64>,
        ids: HashMap<u64, u32>,
    },
}

impl Labels {
    /// From a labels section (or none), checking labels are distinct.
    pub(crate) fn new(list: Option<&[u64]>, n: usize, path: &Path) -> Result<Labels> {
        Labels::checked(list, n).map_err(|d| corrupt(path, d))
    }

    /// From labels given by a caller (one per item of `n`, distinct); the error says
    /// what is wrong.
    pub(crate) fn checked(list: Option<&[u64]>, n: usize) -> std::result::Result<Labels, String> {
        let Some(list) = list else {
            return Ok(Labels::Identity(n));
        };
        let identity = list.iter().enumerate().all(|(i, &l)| l == i as u64);
        let mut ids = HashMap::with_capacity(if identity { 0 } else { list.len() });
        if !identity {
            for (i, &l) in list.iter().enumerate() {
                if let Some(first) = ids.insert(l, i as u32) {
                    return Err(format!(
                        "label {l} is held by items {first} and {i} (labels must be distinct)"
                    ));
                }
            }
        }
        if list.len() != n {
            return Err(format!(
                "{} labels for {n} items (one label per item)",
                list.len()
            ));
        }
        if identity {
            return Ok(Labels::Identity(n));
        }
        Ok(Labels::Explicit {
            list: list.to_vec(),
            ids,
        })
    }

    /// The explicit list (`None` for identity labels).
    pub(crate) fn as_slice(&self) -> Option<&[u64]> {
        match self {
            Labels::Identity(_) => None,
            Labels::Explicit { list, .. } => Some(list),
        }
    }

    /// The label of item `id`.
    #[inline]
    pub(crate) fn label(&self, id: u32) -> u64 {
        match self {
            Labels::Identity(_) => u64::from(id),
            Labels::Explicit { list, .. } => list[id as usize],
        }
    }

    /// The item holding `label`.
    pub(crate) fn id(&self, label: u64) -> Option<u32> {
        match self {
            Labels::Identity(n) => (label < *n as u64).then_some(label as u32),
            Labels::Explicit { ids, .. } => ids.get(&label).copied(),
        }
    }
}

/// Shared bytes (the index and the labels read the same pages of a map or buffer).
struct Shared<B>(Arc<B>);

impl<B: AsRef<[u8]>> AsRef<[u8]> for Shared<B> {
    fn as_ref(&self) -> &[u8] {
        (*self.0).as_ref()
    }
}

/// The base file of one generation, mapped.
pub(crate) struct Base {
    pub(crate) index: Index,
    pub(crate) labels: Labels,
    /// Its generation (section 9; 1 when absent).
    pub(crate) generation: u64,
    /// The checksum stored in its header (its identity).
    pub(crate) checksum: u64,
}

impl Base {
    /// Maps and validates the base file at `path`; `None` if there is no such file.
    pub(crate) fn open(path: &Path, opts: &OpenOptions) -> Result<Option<Base>> {
        let file = match crate::format::open_regular(path) {
            Ok(f) => f,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        // SAFETY: read-only map of a file that is only ever replaced by rename, never
        // written in place (docs/format.md, "Live indexes").
        let map = Arc::new(unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?);
        Base::from_shared(map, path, opts).map(Some)
    }

    /// A base over the bytes of an index file held in memory (labels and generation
    /// from its sections); its checksum is 0 (it has no file identity).
    pub(crate) fn from_bytes(bytes: Vec<u8>, opts: &OpenOptions) -> Result<Base> {
        let mut b = Base::from_shared(Arc::new(bytes), Path::new("<bytes>"), opts)?;
        b.checksum = 0;
        Ok(b)
    }

    fn from_shared<B: AsRef<[u8]> + Send + Sync + 'static>(
        bytes: Arc<B>,
        path: &Path,
        opts: &OpenOptions,
    ) -> Result<Base> {
        let index =
            crate::format::index_from_source(Shared(Arc::clone(&bytes)), path.to_path_buf(), opts)?;
        let raw = (*bytes).as_ref();
        let layout = crate::format::parse(raw, path, &OpenOptions::default())?;
        let labels = Labels::new(layout.labels(raw, path)?, index.len(), path)?;
        let generation = layout.generation(raw).unwrap_or(1);
        if generation == 0 {
            return Err(corrupt(
                path,
                "generation 0 in a base file (must be 1 or more)",
            ));
        }
        Ok(Base {
            index,
            labels,
            generation,
            checksum: layout.header.checksum(),
        })
    }

    /// A base held in memory only (no file; checksum 0): `index` with `labels` (one per
    /// item, distinct; `None`: the item ids) as generation `generation`.
    pub(crate) fn in_memory(index: Index, labels: Option<&[u64]>, generation: u64) -> Result<Base> {
        let labels = Labels::checked(labels, index.len()).map_err(Error::invalid)?;
        Ok(Base {
            index,
            labels,
            generation,
            checksum: 0,
        })
    }
}

/// The checksum field of the index file at `path` (its identity), `None` if absent.
/// Reads only the header.
pub(crate) fn stored_checksum(path: &Path) -> Result<Option<u64>> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut b = [0u8; HEADER_SIZE];
    match f.read_exact(&mut b) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(corrupt(path, "shorter than an index header"));
        }
        Err(e) => return Err(Error::io(path, e)),
    }
    let h = <Header as zerocopy::FromBytes>::read_from_bytes(&b)
        .map_err(|_| corrupt(path, "unreadable header"))?;
    Ok(Some(h.checksum()))
}
