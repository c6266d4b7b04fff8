//! Command-line arguments (clap derive).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// The library's default build parameters (the command-line defaults).
fn defaults() -> panns_core::BuildParams {
    panns_core::BuildParams::default()
}

/// panns: approximate nearest-neighbour search with random-projection trees.
#[derive(Debug, Parser)]
#[command(name = "panns", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build an index from a data set file and save it.
    Build(BuildArgs),
    /// Search an index for the nearest neighbours of one or more vectors (a live index:
    /// its last commit, ids are labels).
    Query(QueryArgs),
    /// Describe an index file; --verify checks its checksum and structure.
    Info(InfoArgs),
    /// Measure recall and speed on an ann-benchmarks HDF5 file over a parameter grid.
    Eval(EvalArgs),
    /// Re-run the original panns evaluation in memory (no download) and compare.
    Demo(DemoArgs),
    /// Add (or replace) vectors of a live index by label, and commit.
    Add(AddArgs),
    /// Remove items of a live index by label, and commit.
    Remove(RemoveArgs),
    /// Write a live index's items as a new base generation and start a fresh log.
    Compact(CompactArgs),
    /// Split a data set into shards, build each, and write their manifest (query it with
    /// `panns query MANIFEST`).
    Shard(ShardArgs),
}

/// `panns shard`.
#[derive(Debug, Args)]
pub struct ShardArgs {
    /// Data file (same formats as `panns build`).
    pub data: PathBuf,
    /// Output directory (created): shard-NNNNN.panns files and manifest.panns-shards.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Number of shards (contiguous runs of rows; an item's label is its row).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub shards: u32,
    /// Distance metric (as `panns build`).
    #[arg(long, value_enum)]
    pub metric: Option<MetricArg>,
    /// Number of trees of every shard.
    #[arg(long, default_value_t = defaults().n_trees)]
    pub trees: usize,
    /// Tree parameters.
    #[command(flatten)]
    pub tree: TreeArgs,
    /// How to read the data file (HDF5 data set defaults to "train").
    #[command(flatten)]
    pub read: ReadArgs,
}

/// `panns add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// Index file (built by `panns build`, or a live index).
    pub index: PathBuf,
    /// Data file of the vectors to add (same formats as `panns build`).
    #[arg(long)]
    pub data: PathBuf,
    /// Labels: a file of one integer per line, or a range `START..END` / `START..`
    /// (default: from one past the largest label in the index).
    #[arg(long)]
    pub labels: Option<String>,
    /// Do not compact automatically (by default a commit that leaves more than 10% of
    /// the base in the delta, or 20% of it removed, writes a new base generation).
    #[arg(long)]
    pub no_compact: bool,
    /// How to read the data file (HDF5 data set defaults to "train").
    #[command(flatten)]
    pub read: ReadArgs,
}

/// `panns remove`.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Index file.
    pub index: PathBuf,
    /// Labels to remove (labels not in the index are ignored).
    #[arg(required = true)]
    pub labels: Vec<u64>,
    /// Do not compact automatically (see `panns add --no-compact`).
    #[arg(long)]
    pub no_compact: bool,
}

/// `panns compact`.
#[derive(Debug, Args)]
pub struct CompactArgs {
    /// Index file.
    pub index: PathBuf,
}

/// Distance metric names accepted on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MetricArg {
    /// Euclidean (L2) distance.
    Euclidean,
    /// Cosine distance 1 - cos (vectors are normalised).
    Angular,
    /// Negative inner product.
    Dot,
}

impl From<MetricArg> for panns_core::Metric {
    fn from(m: MetricArg) -> Self {
        match m {
            MetricArg::Euclidean => panns_core::Metric::Euclidean,
            MetricArg::Angular => panns_core::Metric::Angular,
            MetricArg::Dot => panns_core::Metric::Dot,
        }
    }
}

/// Split rules accepted on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SplitArg {
    /// Split at the mean projection (the original panns rule).
    Mean,
    /// Split at the median projection (balanced trees).
    Median,
}

impl From<SplitArg> for panns_core::SplitRule {
    fn from(s: SplitArg) -> Self {
        match s {
            SplitArg::Mean => panns_core::SplitRule::Mean,
            SplitArg::Median => panns_core::SplitRule::Median,
        }
    }
}

/// How a data file is read.
#[derive(Debug, Clone, Args)]
pub struct ReadArgs {
    /// File format (csv, tsv, npy, fvecs, bvecs, raw, hdf5); default: from the extension.
    #[arg(long)]
    pub format: Option<String>,
    /// Data set inside an HDF5 file (default: train for build, test for query).
    #[arg(long)]
    pub dataset: Option<String>,
    /// Dimension of a raw f32 file (for other formats, checked against the file).
    #[arg(long)]
    pub dim: Option<usize>,
    /// CSV/text only: the cell separator, one ASCII character (`tab` and `space` name
    /// those; a space means any run of blanks). Default: `,` (a tab for .tsv).
    #[arg(long, value_parser = parse_sep)]
    pub sep: Option<u8>,
    /// CSV/text only: whether the first non-blank line is a header (auto: only if none
    /// of its cells looks like a number).
    #[arg(long, value_enum)]
    pub header: Option<HeaderArg>,
}

/// `--header` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HeaderArg {
    /// The first non-blank line is a header.
    Yes,
    /// There is no header.
    No,
    /// A header if none of its cells looks like a number.
    Auto,
}

impl From<HeaderArg> for panns_io::HeaderMode {
    fn from(h: HeaderArg) -> Self {
        match h {
            HeaderArg::Yes => panns_io::HeaderMode::Yes,
            HeaderArg::No => panns_io::HeaderMode::No,
            HeaderArg::Auto => panns_io::HeaderMode::Auto,
        }
    }
}

/// Parses `--sep`: one ASCII character other than a quote or line end, or `tab`/`space`.
fn parse_sep(s: &str) -> Result<u8, String> {
    match s {
        "tab" | "\\t" | "\t" => return Ok(b'\t'),
        "space" => return Ok(b' '),
        _ => {}
    }
    match s.as_bytes() {
        [b] if b.is_ascii() && !matches!(b, b'"' | b'\n' | b'\r') && !b.is_ascii_digit() => Ok(*b),
        _ => Err(format!(
            "'{s}' is not a separator: give one ASCII character (not a digit, quote or line \
             end), or tab or space"
        )),
    }
}

/// The largest `--threads`.
pub const MAX_THREADS: usize = 1024;

/// Parses `--threads`: 0 (all cores) to [`MAX_THREADS`].
fn parse_threads(s: &str) -> Result<usize, String> {
    let n: usize = s
        .parse()
        .map_err(|_| format!("'{s}' is not a thread count"))?;
    if n > MAX_THREADS {
        return Err(format!(
            "{n} threads is more than the {MAX_THREADS} allowed (0 uses all cores)"
        ));
    }
    Ok(n)
}

fn parse_dtype(s: &str) -> Result<panns_core::Dtype, String> {
    s.parse().map_err(|e: panns_core::Error| e.to_string())
}

/// Build parameters shared by `build` and `eval`.
#[derive(Debug, Clone, Args)]
pub struct TreeArgs {
    /// Items per leaf (at most).
    #[arg(long, default_value_t = defaults().leaf_size)]
    pub leaf_size: usize,
    /// Projection vectors in the shared pool.
    #[arg(long, default_value_t = defaults().pool_size)]
    pub pool: usize,
    /// Pool vectors tried at each node (the widest spread wins).
    #[arg(long, default_value_t = defaults().candidates)]
    pub candidates: usize,
    /// Where nodes split.
    #[arg(long, value_enum, default_value_t = SplitArg::Mean)]
    pub split: SplitArg,
    /// Random seed (same data and seed: identical index).
    #[arg(long, default_value_t = defaults().seed)]
    pub seed: u64,
    /// Neighbours per item of the optional neighbour graph (0: trees only). A graph
    /// (24 is a good degree) makes high-recall searches several times faster; the
    /// search budget then sets the beam width, like HNSW's ef.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=256))]
    pub graph: u32,
    /// Score the graph build's candidates exactly on the f32 vectors instead of on
    /// 8-bit codes (slower; saves the codes' memory, one byte per component, for an
    /// f32 index).
    #[arg(long)]
    pub exact_graph_build: bool,
    /// How to store the vectors: f32; i8 (one byte per component with a range per
    /// component: a quarter of the bytes; distances are to the decoded vectors); or
    /// i8+f32 (walks score the codes, the best candidates are re-ranked from the f32
    /// vectors kept beside them: exact distances, 1.25x the f32 bytes).
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    pub dtype: panns_core::Dtype,
    /// Worker threads (0: all cores; at most 1024).
    #[arg(long, default_value_t = 0, value_parser = parse_threads)]
    pub threads: usize,
}

/// `panns build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Data file (.csv/.tsv, .npy, .fvecs/.bvecs, raw .f32/.bin with --dim, .hdf5).
    pub data: PathBuf,
    /// Index file to write.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Distance metric (default: the `distance` attribute of an ann-benchmarks HDF5
    /// file, else euclidean; given, it must agree with that attribute).
    #[arg(long, value_enum)]
    pub metric: Option<MetricArg>,
    /// Number of trees.
    #[arg(long, default_value_t = defaults().n_trees)]
    pub trees: usize,
    /// Tree parameters.
    #[command(flatten)]
    pub tree: TreeArgs,
    /// How to read the data file (HDF5 data set defaults to "train").
    #[command(flatten)]
    pub read: ReadArgs,
}

/// Output formats of `panns query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A readable table.
    Text,
    /// `query,rank,id,distance` rows.
    Csv,
    /// One JSON document.
    Json,
}

/// `panns query`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["vector", "queries"])))]
pub struct QueryArgs {
    /// Index file, or a shard manifest (`panns shard`): then the ids printed are labels.
    pub index: PathBuf,
    /// One query vector: comma-separated numbers.
    #[arg(long, conflicts_with = "queries", allow_hyphen_values = true)]
    pub vector: Option<String>,
    /// A file of query vectors (any readable format; HDF5 data set defaults to "test").
    #[arg(long)]
    pub queries: Option<PathBuf>,
    /// Number of neighbours.
    #[arg(short, long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub k: u32,
    /// Distinct candidates to re-rank (0: the default, max(trees x k, 100 x k)).
    #[arg(long, default_value_t = 0)]
    pub budget: usize,
    /// Exact search (scan every item) instead of the trees.
    #[arg(long)]
    pub exact: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// How to read the queries file.
    #[command(flatten)]
    pub read: ReadArgs,
}

/// `panns info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Index file.
    pub index: PathBuf,
    /// Check the checksum and the whole structure.
    #[arg(long)]
    pub verify: bool,
}

/// `panns eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// ann-benchmarks HDF5 file (train, test, neighbors, distances).
    pub data: PathBuf,
    /// Tree counts to build, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "16,32,64")]
    pub trees: Vec<usize>,
    /// Candidate budgets to sweep, comma-separated (default: scaled to the data size).
    #[arg(long, value_delimiter = ',')]
    pub budgets: Vec<usize>,
    /// Use at most this many test queries.
    #[arg(long)]
    pub queries: Option<usize>,
    /// Cap on single-thread timing per point, in seconds (at least 100 queries are timed).
    #[arg(long, default_value_t = 6.0)]
    pub point_seconds: f64,
    /// Tree parameters.
    #[command(flatten)]
    pub tree: TreeArgs,
    /// Write the results as CSV.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Draw a recall-QPS plot (SVG).
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Peers' results (CSV from shared/bench/run_peers.py) to overlay on the plot.
    #[arg(long, num_args = 1..)]
    pub peers: Vec<PathBuf>,
}

/// `panns demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Fewer trees and queries (a smoke run).
    #[arg(long)]
    pub quick: bool,
    /// Seed of the data, queries and build.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Build threads (0: all cores; at most 1024).
    #[arg(long, default_value_t = 0, value_parser = parse_threads)]
    pub threads: usize,
}

impl TreeArgs {
    /// Build parameters for `trees` trees.
    pub fn params(&self, trees: usize) -> panns_core::BuildParams {
        panns_core::BuildParams {
            n_trees: trees,
            leaf_size: self.leaf_size,
            pool_size: self.pool,
            candidates: self.candidates,
            split: self.split.into(),
            seed: self.seed,
            threads: self.threads,
            dtype: self.dtype,
        }
    }

    /// Graph parameters, when a graph is wanted.
    pub fn graph_params(&self) -> Option<panns_core::GraphParams> {
        let d = panns_core::GraphParams::default();
        (self.graph > 0).then(|| panns_core::GraphParams {
            degree: self.graph as usize,
            build_k: d.build_k.max(self.graph as usize),
            threads: self.threads,
            quantized: !self.exact_graph_build,
            ..d
        })
    }

    /// Builds the forest, then the graph if one is wanted.
    pub fn build(
        &self,
        builder: panns_core::IndexBuilder,
        trees: usize,
    ) -> panns_core::Result<panns_core::Index> {
        let stages = crate::progress::Stages::default();
        let report = |p| stages.report(p);
        let mut index = builder.build_with_progress(&self.params(trees), &report)?;
        if let Some(g) = self.graph_params() {
            index.build_graph_with_progress(&g, &report)?;
        }
        stages.finish();
        Ok(index)
    }
}
