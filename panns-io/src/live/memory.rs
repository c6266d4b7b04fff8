//! Live indexes held in memory only (no base file, no log, no lock), and writing the
//! current contents of any live index as one index file (or its bytes).

use std::path::{Path, PathBuf};

use panns_core::{BuildParams, GraphParams, Index, Metric};

use super::base::Base;
use super::log::{LOG_HEADER_SIZE, LogHeader};
use super::state::State;
use super::{LiveIndex, LiveOptions, exists, log_path};
use crate::error::{Error, Result};
use crate::format::{BuildInfo, Extras, OpenOptions};

/// What a snapshot of a live index writes: the index, its labels (`None`: identity)
/// and its generation.
type Snapshot = (Index, Option<Vec<u64>>, u64);

impl LiveIndex {
    /// A live index held in memory only, over `index` (generation 1) with `labels` (one
    /// per item, distinct; `None`: the item ids). Takes changes at once, with no file,
    /// log or lock: [`commit`](Self::commit) does nothing (there is nothing to make
    /// durable), [`compact`](Self::compact) rebuilds the base in memory with the
    /// parameters `index` was built with, and [`save`](Self::save) writes the contents
    /// as an index file with labels (which [`open`](Self::open) then opens as a live
    /// index). Cloning `index` first is cheap (clones share storage).
    ///
    /// ```
    /// # fn main() -> panns_io::Result<()> {
    /// use panns_core::{BuildParams, IndexBuilder, Metric, SearchParams};
    /// use panns_io::LiveIndex;
    /// let mut b = IndexBuilder::new(2, Metric::Euclidean)?;
    /// for i in 0..100 {
    ///     b.add(&[i as f32, 0.0])?;
    /// }
    /// let index = b.build(&BuildParams::default())?;
    /// let mut live = LiveIndex::in_memory(index, None)?; // labels 0..100
    /// live.add(1_000_000, &[50.2, 0.0])?;
    /// assert_eq!(live.remove(&[50, 7, 123_456])?, 2);
    /// let hits = live.search(&[50.0, 0.0], &SearchParams::new(2))?;
    /// assert_eq!(hits[0].0, 1_000_000);
    /// live.commit()?; // nothing to make durable: does nothing
    /// live.compact()?; // one base again, in memory
    /// assert_eq!((live.len(), live.delta_len(), live.generation()), (99, 0, 2));
    /// # Ok(()) }
    /// ```
    pub fn in_memory(index: Index, labels: Option<&[u64]>) -> Result<LiveIndex> {
        Self::in_memory_with(index, labels, LiveOptions::default())
    }

    /// [`in_memory`](Self::in_memory) with `options` (only the delta settings apply:
    /// an index in memory never compacts by itself).
    pub fn in_memory_with(
        index: Index,
        labels: Option<&[u64]>,
        options: LiveOptions,
    ) -> Result<LiveIndex> {
        let (dim, metric) = (index.dim(), index.metric());
        let params = index.params().clone();
        let degree = index.graph_degree();
        let base = Base::in_memory(index, labels, 1)?;
        Ok(Self::memory_of(
            dim,
            metric,
            Some(base),
            &params,
            degree,
            options,
        ))
    }

    /// An empty live index held in memory only (generation 0) for `dim`-dimensional
    /// vectors; `params` (and `graph`) are used by every [`compact`](Self::compact).
    /// See [`in_memory`](Self::in_memory).
    pub fn empty_in_memory(
        dim: usize,
        metric: Metric,
        params: &BuildParams,
        graph: Option<&GraphParams>,
        options: LiveOptions,
    ) -> Result<LiveIndex> {
        params.validate()?;
        if dim == 0 || dim > panns_core::MAX_DIM {
            return Err(panns_core::Error::InvalidDimension(dim).into());
        }
        if let Some(g) = graph {
            g.validate()?;
        }
        let degree = graph.map_or(0, |g| g.degree);
        Ok(Self::memory_of(dim, metric, None, params, degree, options))
    }

    /// A live index held in memory only over the bytes of an index file (as written by
    /// [`to_bytes`](Self::to_bytes) or [`save`](Self::save): its labels and generation
    /// sections are kept). Validated as a file is; `options.verify` also checks the
    /// checksum and every value.
    pub fn from_bytes(bytes: Vec<u8>, options: LiveOptions) -> Result<LiveIndex> {
        let opts = OpenOptions {
            verify_checksum: options.verify,
        };
        let base = Base::from_bytes(bytes, &opts)?;
        let (dim, metric) = (base.index.dim(), base.index.metric());
        let params = base.index.params().clone();
        let degree = base.index.graph_degree();
        Ok(Self::memory_of(
            dim,
            metric,
            Some(base),
            &params,
            degree,
            options,
        ))
    }

    fn memory_of(
        dim: usize,
        metric: Metric,
        base: Option<Base>,
        params: &BuildParams,
        graph_degree: usize,
        options: LiveOptions,
    ) -> LiveIndex {
        let params = BuildParams {
            threads: 0,
            ..params.clone()
        };
        let header = LogHeader {
            dim,
            metric,
            base_generation: base.as_ref().map_or(0, |b| b.generation),
            base_checksum: 0,
            log_id: 0,
            params: params.clone(),
            graph_degree,
        };
        LiveIndex {
            path: PathBuf::new(),
            log_path: PathBuf::new(),
            options,
            header,
            log_ident: None,
            state: State::new(dim, metric, base, &params),
            log_end: LOG_HEADER_SIZE as u64,
            records: 0,
            commits: 0,
            writer: None,
            memory: true,
        }
    }

    /// True when items were added, replaced or removed since the base was made.
    fn changed(&self) -> bool {
        self.state.delta.len() > 0 || self.state.n_tombs > 0
    }

    /// The current contents as one index: the base itself when nothing changed since
    /// it was made (its generation), else a new build (the next generation).
    fn snapshot(&self) -> Result<Snapshot> {
        if let Some(b) = &self.state.base
            && !self.changed()
        {
            let labels = b.labels.as_slice().map(<[u64]>::to_vec);
            return Ok((b.index.clone(), labels, b.generation));
        }
        if self.state.len() == 0 {
            return Err(Error::invalid(
                "the live index holds no items: there is no index to write",
            ));
        }
        let (index, labels) = self.rebuilt()?;
        let identity = labels.iter().enumerate().all(|(i, &l)| l == i as u64);
        Ok((index, (!identity).then_some(labels), self.generation() + 1))
    }

    /// The bytes of an index file holding the current contents with their labels and
    /// generation (what [`save`](Self::save) writes; [`from_bytes`](Self::from_bytes)
    /// reads them back). Builds a new index if anything changed since the base was
    /// made (the index itself is not changed). Fails for an index holding no items.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let (index, labels, generation) = self.snapshot()?;
        crate::format::parts_to_bytes_with(
            &index.parts(),
            &BuildInfo::from(index.params()),
            &Extras {
                labels: labels.as_deref(),
                generation: Some(generation),
            },
        )
    }

    /// Writes the current contents to `path` as one index file with their labels and
    /// generation (atomically, like [`crate::save_index`]); [`open`](Self::open) opens
    /// it as a live index, and any reader of index files as a plain index (item ids in
    /// the order of the file's labels). In memory, a changed index is compacted first
    /// (in memory); a live index on files writes a compacted copy and stays as it is
    /// (readers may save too). Refuses this index's own base file (use
    /// [`compact`](Self::compact)) and a `path` that has a live-index log beside it.
    /// Fails for an index holding no items.
    pub fn save(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        if !self.memory && same_file(path, &self.path) {
            return Err(Error::invalid(format!(
                "{}: is the base file of this live index; compact() rewrites it",
                path.display()
            )));
        }
        let log = log_path(path);
        if exists(&log) {
            return Err(Error::invalid(format!(
                "{}: has a live-index log beside it ({}); open that live index to change it, \
                 or remove both files first",
                path.display(),
                log.display()
            )));
        }
        if self.memory && self.changed() {
            self.compact()?;
        }
        let (index, labels, generation) = self.snapshot()?;
        crate::format::save_index_with(
            &index,
            &Extras {
                labels: labels.as_deref(),
                generation: Some(generation),
            },
            path,
        )
    }
}

/// True if `a` and `b` name the same existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
