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

/// The `done` values of the NN-descent round reports: 0, then one per finished round
/// that did not converge, then `total`.
fn round_reports(n: usize, max_rounds: usize) -> (Vec<usize>, usize) {
    let dim = 8;
    let mut r = Rng::new(7);
    let data: Vec<f32> = (0..n * dim).map(|_| r.gaussian() as f32).collect();
    let mut b = IndexBuilder::new(dim, Metric::Euclidean).unwrap();
    b.add_batch(&data).unwrap();
    let mut ix = b
        .build(&BuildParams {
            n_trees: 4,
            ..Default::default()
        })
        .unwrap();
    let seen = Mutex::new(Vec::new());
    let log = |p: Progress| {
        if p.stage == Stage::GraphRounds {
            seen.lock().unwrap().push(p)
        }
    };
    let gp = GraphParams {
        max_rounds,
        threads: 1,
        ..Default::default()
    };
    ix.build_graph_with_progress(&gp, &log).unwrap();
    let seen = seen.into_inner().unwrap();
    assert!(seen.iter().all(|p| p.total == max_rounds));
    (seen.iter().map(|p| p.done).collect(), max_rounds)
}

#[test]
fn nn_descent_stops_when_few_lists_change_and_reports_each_round_once() {
    // Seeded from 4 trees, the lists of 2000 random 8-d points need several rounds, and
    // converge (fewer than n * k / 500 changes in a round) long before 40 rounds.
    let (done, total) = round_reports(2000, 40);
    let (last, rounds) = done.split_last().unwrap();
    assert_eq!(*last, total, "the last report says the stage is complete");
    assert_eq!(
        rounds,
        (0..rounds.len()).collect::<Vec<_>>(),
        "one report per round, in order, none twice: {done:?}"
    );
    // `rounds` = 0 plus one report per round that did not converge: the round that
    // converged is not reported, so rounds.len() rounds ran.
    assert!(rounds.len() >= 3, "NN-descent stopped too early: {done:?}");
    assert!(rounds.len() < 12, "NN-descent did not stop: {done:?}");

    // With a cap below convergence every round is reported, and the cap is never passed.
    let (done, total) = round_reports(2000, 2);
    assert_eq!(done, [0, 1, 2], "total {total}");
}
