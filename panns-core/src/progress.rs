//! Progress of long builds, reported stage by stage to a caller's callback.

/// A stage of building an index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    /// Projecting every item on the pool (one step).
    Projecting,
    /// Building trees: `done` of `total` trees.
    Trees,
    /// Seeding the neighbour lists from the forest's leaves (one step).
    GraphSeeds,
    /// NN-descent rounds: `done` of at most `total` (the last report has
    /// `done == total` even when the lists converge earlier).
    GraphRounds,
    /// Pruning the lists and adding reverse edges (one step).
    GraphPruning,
}

impl Stage {
    /// A short lower-case name ("trees", "graph rounds", ...).
    pub fn name(self) -> &'static str {
        match self {
            Stage::Projecting => "projecting",
            Stage::Trees => "trees",
            Stage::GraphSeeds => "graph seeds",
            Stage::GraphRounds => "graph rounds",
            Stage::GraphPruning => "graph pruning",
        }
    }
}

/// One progress report: `done` of `total` steps of `stage` are complete. Every stage
/// starts with a report of `done == 0` and ends with `done == total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The stage.
    pub stage: Stage,
    /// Steps done.
    pub done: usize,
    /// Steps in the stage.
    pub total: usize,
}

/// A progress callback. It may be called from any build thread (so it is `Sync`) and
/// should return quickly.
pub type ProgressFn<'a> = &'a (dyn Fn(Progress) + Sync);

/// A callback that ignores every report.
pub(crate) fn silent(_: Progress) {}

/// Reports `stage` from `done` = 0 to `total`.
pub(crate) fn report(f: ProgressFn<'_>, stage: Stage, done: usize, total: usize) {
    f(Progress { stage, done, total });
}
