//! Build progress: every stage is reported from 0 to its total, in order.

use panns_core::rng::Rng;
use panns_core::*;
use std::sync::Mutex;

#[test]
fn stages_are_reported_in_order_from_zero_to_total() {
    let (n, dim) = (1500, 8);
    let mut r = Rng::new(1);
    let data: Vec<f32> = (0..n * dim).map(|_| r.gaussian() as f32).collect();
    let mut b = IndexBuilder::new(dim, Metric::Euclidean).unwrap();
    b.add_batch(&data).unwrap();
    let seen = Mutex::new(Vec::new());
    let log = |p: Progress| seen.lock().unwrap().push(p);
    let params = BuildParams {
        n_trees: 6,
        ..Default::default()
    };
    let mut ix = b.build_with_progress(&params, &log).unwrap();
    ix.build_graph_with_progress(&GraphParams::default(), &log)
        .unwrap();
    let seen = seen.into_inner().unwrap();
    let stages: Vec<Stage> = seen.iter().map(|p| p.stage).fold(Vec::new(), |mut v, s| {
        if v.last() != Some(&s) {
            v.push(s);
        }
        v
    });
    assert_eq!(
        stages,
        [
            Stage::Projecting,
            Stage::Trees,
            Stage::GraphSeeds,
            Stage::GraphRounds,
            Stage::GraphPruning
        ]
    );
    for stage in stages {
        let reports: Vec<&Progress> = seen.iter().filter(|p| p.stage == stage).collect();
        let total = reports[0].total;
        assert_eq!(reports[0].done, 0, "{stage:?} starts at 0");
        assert_eq!(
            reports.last().unwrap().done,
            total,
            "{stage:?} ends at total"
        );
        assert!(reports.iter().all(|p| p.total == total && p.done <= total));
    }
    let trees: Vec<usize> = seen
        .iter()
        .filter(|p| p.stage == Stage::Trees)
        .map(|p| p.done)
        .collect();
    assert_eq!(trees.len(), 7, "one report per tree plus the start");
    let mut sorted = trees.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..=6).collect::<Vec<_>>());
}
