//! The neighbour-graph layer: structure, determinism, and recall against exact search.

use panns_core::rng::{Rng, gaussian_vector};
use panns_core::*;

fn clustered(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    // Points around 20 random centres: a structure trees alone find hard to pin down.
    let mut r = Rng::new(seed);
    let centres: Vec<f32> = (0..20 * dim).map(|_| 3.0 * r.gaussian() as f32).collect();
    (0..n)
        .flat_map(|i| {
            let c = (i % 20) * dim;
            let row: Vec<f32> = (0..dim)
                .map(|j| centres[c + j] + r.gaussian() as f32)
                .collect();
            row
        })
        .collect()
}

fn index(data: &[f32], dim: usize, metric: Metric, threads: usize, graph: bool) -> Index {
    let mut b = IndexBuilder::new(dim, metric).unwrap();
    b.add_batch(data).unwrap();
    let mut idx = b
        .build(&BuildParams {
            n_trees: 8,
            threads,
            ..Default::default()
        })
        .unwrap();
    if graph {
        idx.build_graph(&GraphParams {
            degree: 16,
            threads,
            ..Default::default()
        })
        .unwrap();
    }
    idx
}

/// recall@10 over 40 queries: near stored points (as real queries are), or, with
/// `far`, random points in the empty space between clusters.
fn recall(idx: &Index, dim: usize, budget: usize, far: bool) -> f64 {
    let v = idx;
    let mut hits = 0;
    for q in 0..40 {
        let noise = gaussian_vector(dim, false, 500 + q);
        let q: Vec<f32> = if far {
            noise.iter().map(|x| x * 3.0).collect()
        } else {
            let base = v.vector(q as usize * 97).unwrap();
            base.iter().zip(&noise).map(|(b, e)| b + 0.5 * e).collect()
        };
        let (got, st) = v
            .search_with_stats(&q, &SearchParams::new(10).with_budget(budget))
            .unwrap();
        assert!(!st.exact_scan, "budget {budget} is an exact scan: {st:?}");
        let mut ids: Vec<u32> = got.iter().map(|g| g.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 10, "duplicate ids in {got:?}");
        let want = v.linear_search(&q, 10).unwrap();
        hits += got
            .iter()
            .filter(|g| want.iter().any(|w| w.id == g.id))
            .count();
    }
    hits as f64 / 400.0
}

#[test]
fn graph_rows_are_valid_and_diverse() {
    let (n, dim) = (3000, 24);
    let idx = index(&clustered(n, dim, 1), dim, Metric::Euclidean, 0, true);
    let p = idx.parts();
    assert_eq!(p.graph_degree, 16);
    assert_eq!(p.graph.len(), n * 16);
    let mut edges = 0;
    for (u, row) in p.graph.chunks(16).enumerate() {
        let real: Vec<u32> = row.iter().copied().take_while(|&v| v != u32::MAX).collect();
        assert!(
            row[real.len()..].iter().all(|&v| v == u32::MAX),
            "padding only at the end"
        );
        assert!(!real.is_empty(), "item {u} has no neighbour");
        assert!(real.iter().all(|&v| (v as usize) < n && v as usize != u));
        let mut s = real.clone();
        s.sort_unstable();
        s.dedup();
        assert_eq!(s.len(), real.len(), "duplicate edge at {u}");
        edges += real.len();
    }
    assert!(edges > n * 4, "graph too sparse: {edges} edges");
    p.validate().expect("a built graph passes validation");
}

#[test]
fn graph_is_identical_for_1_and_2_threads() {
    let (n, dim) = (2500, 16);
    let data = clustered(n, dim, 2);
    let a = index(&data, dim, Metric::Angular, 1, true);
    let b = index(&data, dim, Metric::Angular, 2, true);
    assert_eq!(a.parts().graph, b.parts().graph);
}

#[test]
fn graph_search_beats_trees_alone_at_the_same_small_effort() {
    let (n, dim) = (5000, 32);
    let data = clustered(n, dim, 3);
    let trees = index(&data, dim, Metric::Euclidean, 0, false);
    let graph = index(&data, dim, Metric::Euclidean, 0, true);
    let r_trees = recall(&trees, dim, 100, false);
    let r_graph = recall(&graph, dim, 40, false);
    assert!(r_graph > 0.9, "graph recall@10 = {r_graph}");
    assert!(r_graph > r_trees, "graph {r_graph} vs trees {r_trees}");
    // Queries far from all data: the forest seeds keep the graph from getting stuck
    // in the wrong cluster, so high effort still approaches exact results.
    let far = recall(&graph, dim, 1000, true);
    assert!(far > 0.9, "far queries: recall@10 = {far}");
}

#[test]
fn graph_params_are_checked() {
    let mut idx = index(&clustered(100, 4, 4), 4, Metric::Euclidean, 1, false);
    let e = idx
        .build_graph(&GraphParams {
            degree: 0,
            ..Default::default()
        })
        .unwrap_err();
    assert!(e.to_string().contains("degree = 0"), "{e}");
    let e = idx
        .build_graph(&GraphParams {
            degree: 40,
            build_k: 20,
            ..Default::default()
        })
        .unwrap_err();
    assert!(e.to_string().contains("build_k"), "{e}");
}

#[test]
fn graph_walks_stop_early_and_fill_the_beam() {
    let (n, dim) = (5000, 32);
    let data = clustered(n, dim, 5);
    let graph = index(&data, dim, Metric::Euclidean, 0, true);
    let mut scored = Vec::new();
    for q in 0..40usize {
        let query = graph.vector(q * 101).unwrap().to_vec();
        // A beam of exactly k: all k come back (the beam is never one short).
        let (hits, st) = graph
            .search_with_stats(&query, &SearchParams::new(50).with_budget(50))
            .unwrap();
        assert_eq!(hits.len(), 50);
        assert!(!st.exact_scan);
        // Also when the beam starts below full (seeds are a quarter of a wide beam).
        let (hits, st) = graph
            .search_with_stats(&query, &SearchParams::new(300).with_budget(300))
            .unwrap();
        assert_eq!(hits.len(), 300);
        assert!(!st.exact_scan && st.scored >= 300, "{st:?}");
        // A small beam stops long before the walk has seen much of the index.
        let (_, st) = graph
            .search_with_stats(&query, &SearchParams::new(10).with_budget(40))
            .unwrap();
        scored.push(st.scored);
    }
    let mean = scored.iter().sum::<usize>() as f64 / scored.len() as f64;
    eprintln!("graph walk, beam 40: {mean:.0} items scored on average of {n}");
    assert!(
        // Measured: 186 (a beam that never drops its worst entry scores about 308).
        mean < n as f64 / 20.0,
        "the walk scored {mean} items on average"
    );
}

#[test]
fn the_walk_does_the_work_where_the_forest_alone_cannot() {
    // Unclustered 24-d Gaussian data: 64 forest candidates find few true neighbours;
    // the same 64 seeds followed through the graph must find nearly all of them.
    let (n, dim) = (8000, 24);
    let mut r = Rng::new(9);
    let data: Vec<f32> = (0..n * dim).map(|_| r.gaussian() as f32).collect();
    let trees = index(&data, dim, Metric::Euclidean, 0, false);
    let graph = index(&data, dim, Metric::Euclidean, 0, true);
    let (mut hits_t, mut hits_g) = (0, 0);
    for q in 0..40u64 {
        let query = gaussian_vector(dim, false, 7000 + q);
        let want = trees.linear_search(&query, 10).unwrap();
        let p = SearchParams::new(10).with_budget(64);
        let (t, st) = trees.search_with_stats(&query, &p).unwrap();
        assert!(!st.exact_scan);
        let (g, sg) = graph.search_with_stats(&query, &p).unwrap();
        assert!(!sg.exact_scan);
        hits_t += t.iter().filter(|h| want.contains(h)).count();
        hits_g += g.iter().filter(|h| want.contains(h)).count();
    }
    // A wide beam (its seeds fill only a quarter of it) still stops: it fills, then
    // tightens, long before it has seen the whole graph.
    let (_, st) = graph
        .search_with_stats(
            &gaussian_vector(dim, false, 1),
            &SearchParams::new(10).with_budget(300),
        )
        .unwrap();
    eprintln!("beam 300: {} of {n} scored", st.scored);
    assert!(st.scored < n / 3, "{st:?}");
    let (rt, rg) = (hits_t as f64 / 400.0, hits_g as f64 / 400.0);
    eprintln!("budget 64: trees {rt:.3}, graph {rg:.3}");
    assert!(rg > 0.8 && rg > rt + 0.3, "trees {rt}, graph {rg}");
}

#[test]
fn a_wide_beam_finds_the_wide_neighbourhood() {
    // k = budget = 300 on unclustered data: the beam starts with a quarter of its width
    // in seeds and must fill itself from the graph with near neighbours.
    let (n, dim) = (8000, 24);
    let mut r = Rng::new(21);
    let data: Vec<f32> = (0..n * dim).map(|_| r.gaussian() as f32).collect();
    let graph = index(&data, dim, Metric::Euclidean, 0, true);
    let mut hits = 0;
    for q in 0..10u64 {
        let query = gaussian_vector(dim, false, 9000 + q);
        let want = graph.linear_search(&query, 300).unwrap();
        let (got, st) = graph
            .search_with_stats(&query, &SearchParams::new(300).with_budget(300))
            .unwrap();
        assert!(!st.exact_scan);
        hits += got.iter().filter(|h| want.contains(h)).count();
    }
    let recall = hits as f64 / 3000.0;
    eprintln!("k = budget = 300: recall {recall:.3}");
    assert!(recall > 0.9, "{recall}");
}

#[test]
fn a_beam_of_one_still_walks_downhill() {
    // k = budget = 1: the beam holds one item, which must still be expanded (greedy
    // descent); stopping at it returns the best of the forest's seeds instead.
    let (n, dim) = (8000, 24);
    let mut r = Rng::new(33);
    let data: Vec<f32> = (0..n * dim).map(|_| r.gaussian() as f32).collect();
    let graph = index(&data, dim, Metric::Euclidean, 0, true);
    let trees = index(&data, dim, Metric::Euclidean, 0, false);
    let (mut g, mut t) = (0, 0);
    for q in 0..100u64 {
        let query = gaussian_vector(dim, false, 12_000 + q);
        let want = graph.linear_search(&query, 1).unwrap()[0].id;
        let p = SearchParams::new(1).with_budget(1);
        g += (graph.search(&query, &p).unwrap()[0].id == want) as usize;
        // The forest's best of 32 candidates: about what the walk's seeds (two
        // leaves) offer it.
        let p = SearchParams::new(1).with_budget(32);
        t += (trees.search(&query, &p).unwrap()[0].id == want) as usize;
    }
    eprintln!("k = budget = 1: graph {g}/100, trees at budget 32 {t}/100");
    assert!(g >= t + 8, "graph {g}, trees {t}");
}

/// `base` (a forest-only index) with a graph of degree 16 built on codes or exactly.
fn with_graph(base: &Index, quantized: bool) -> Index {
    let mut ix = base.clone();
    ix.build_graph(&GraphParams {
        degree: 16,
        quantized,
        ..Default::default()
    })
    .unwrap();
    ix
}

#[test]
fn a_graph_built_on_codes_is_as_good_as_an_exact_build() {
    let (n, dim) = (5000, 32);
    let data = clustered(n, dim, 3);
    // Floors: what the exact build reaches at budget 40 (0.95, 0.78) less a margin.
    for (metric, floor) in [(Metric::Euclidean, 0.9), (Metric::Angular, 0.7)] {
        let trees = index(&data, dim, metric, 0, false);
        let (q, e) = (with_graph(&trees, true), with_graph(&trees, false));
        assert_ne!(
            q.parts().graph,
            e.parts().graph,
            "{metric}: the codes did not score the build's candidates"
        );
        let (rq, re) = (recall(&q, dim, 40, false), recall(&e, dim, 40, false));
        assert!(
            rq > floor && rq >= re - 0.02,
            "{metric}: recall@10 {rq} on codes, {re} exact"
        );
    }
}

#[test]
fn values_whose_range_an_outlier_sets_build_on_exact_distances() {
    // One row a million times the data's scale in every component: every other value
    // falls on one or two codes, so code distances cannot rank neighbours. The build
    // must notice and score exact distances (the exact build's graph), not walk noise.
    let (n, dim) = (4000, 24);
    let mut data = clustered(n, dim, 5);
    data[dim..2 * dim].iter_mut().for_each(|x| *x = 1e6);
    let trees = index(&data, dim, Metric::Euclidean, 0, false);
    let q = with_graph(&trees, true);
    assert_eq!(q.parts().graph, with_graph(&trees, false).parts().graph);
    let r = recall(&q, dim, 40, false);
    assert!(r > 0.9, "recall@10 = {r}");
}
