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
        let Some(list) = list else {
            return Ok(Labels::Identity(n));
        };
        if list.iter().enumerate().all(|(i, &l)| l == i as u64) {
            return Ok(Labels::Identity(n));
        }
        let mut ids = HashMap::with_capacity(list.len());
        for (i, &l) in list.iter().enumerate() {
            if let Some(first) = ids.insert(l, i as u32) {
                return Err(corrupt(
                    path,
                    format!("label {l} is held by items {first} and {i} (labels must be distinct)"),
                ));
            }
        }
        Ok(Labels::Explicit {
            list: list.to_vec(),
            ids,
        })
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

/// A shared memory map (the index and the labels read the same pages).
struct SharedMap(Arc<Mmap>);

impl AsRef<[u8]> for SharedMap {
    fn as_ref(&self) -> &[u8] {
        &self.0
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
        let index = crate::format::index_from_source(
            SharedMap(Arc::clone(&map)),
            path.to_path_buf(),
            opts,
        )?;
        let layout = crate::format::parse(&map, path, &OpenOptions::default())?;
        let labels = Labels::new(layout.labels(&map, path)?, index.len(), path)?;
        let generation = layout.generation(&map).unwrap_or(1);
        if generation == 0 {
            return Err(corrupt(
                path,
                "generation 0 in a base file (must be 1 or more)",
            ));
        }
        Ok(Some(Base {
            index,
            labels,
            generation,
            checksum: layout.header.checksum(),
        }))
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
