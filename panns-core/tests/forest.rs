//! Forest invariants, exactness at full budget, recall, determinism and errors.

use panns_core::rng::{Rng, gaussian_vector};
use panns_core::*;

fn gaussian_rows(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut r = Rng::new(seed);
    (0..n * dim).map(|_| r.gaussian() as f32).collect()
}

fn build(data: &[f32], dim: usize, metric: Metric, params: &BuildParams) -> Index {
    let mut b = IndexBuilder::new(dim, metric).unwrap();
    b.add_batch(data).unwrap();
    b.build(params).unwrap()
}

fn params(n_trees: usize, threads: usize) -> BuildParams {
    BuildParams {
        n_trees,
        threads,
        ..Default::default()
    }
}

#[test]
fn every_item_is_in_exactly_one_leaf_of_every_tree() {
    let (n, dim) = (3000, 24);
    let idx = build(
        &gaussian_rows(n, dim, 1),
        dim,
        Metric::Euclidean,
        &params(8, 0),
    );
    let p = idx.parts();
    for (t, &root) in p.roots.iter().enumerate() {
        let mut count = vec![0u32; n];
        let mut stack = vec![root];
        while let Some(c) = stack.pop() {
            if c & LEAF_FLAG != 0 {
                let l = (c & !LEAF_FLAG) as usize;
                let ids = &p.leaf_ids[p.leaf_offsets[l] as usize..p.leaf_offsets[l + 1] as usize];
                assert!(
                    !ids.is_empty() && ids.len() <= idx.params().leaf_size,
                    "tree {t} leaf {l}"
                );
                ids.iter().for_each(|&i| count[i as usize] += 1);
            } else {
                let node = &p.nodes[c as usize];
                assert!(node.offset.is_finite());
                stack.extend([node.left, node.right]);
            }
        }
        assert!(count.iter().all(|&c| c == 1), "tree {t}");
    }
}

#[test]
fn splits_separate_points_by_their_projection() {
    let (n, dim) = (500, 8);
    let idx = build(
        &gaussian_rows(n, dim, 2),
        dim,
        Metric::Euclidean,
        &params(2, 1),
    );
    let p = idx.parts();
    let v = &idx;
    let stride = padded_dim(dim);
    // Collect items under a child reference.
    fn items(p: &IndexParts, c: u32, out: &mut Vec<u32>) {
        if c & LEAF_FLAG != 0 {
            let l = (c & !LEAF_FLAG) as usize;
            out.extend_from_slice(
                &p.leaf_ids[p.leaf_offsets[l] as usize..p.leaf_offsets[l + 1] as usize],
            );
        } else {
            items(p, p.nodes[c as usize].left, out);
            items(p, p.nodes[c as usize].right, out);
        }
    }
    let root = p.roots[0] as usize;
    let node = p.nodes[root];
    let pv = &p.pool[node.proj as usize * stride..][..stride];
    let (mut l, mut r) = (vec![], vec![]);
    items(&p, node.left, &mut l);
    items(&p, node.right, &mut r);
    // Leaves list rows; the index stores the item id of each.
    let item = |r: u32| p.row_ids.get(r as usize).map_or(r, |&i| i) as usize;
    let proj = |r: u32| kernels::dot(pv, &v.vector(item(r)).unwrap());
    assert!(l.iter().all(|&i| proj(i) < node.offset));
    assert!(r.iter().all(|&i| proj(i) >= node.offset));
    assert_eq!(l.len() + r.len(), n);
}

#[test]
fn exact_scan_runs_exactly_from_half_the_items() {
    let (n, dim) = (2000, 32);
    let data = gaussian_rows(n, dim, 3);
    for metric in [Metric::Euclidean, Metric::Angular, Metric::Dot] {
        let idx = build(&data, dim, metric, &params(4, 0));
        for qs in 0..20 {
            let q = gaussian_vector(dim, false, 100 + qs);
            // At half the items the search is an exact scan and equals linear search.
            let (got, st) = idx
                .search_with_stats(&q, &SearchParams::new(10).with_budget(n / 2))
                .unwrap();
            assert!(st.exact_scan && st.scored == n, "{metric}: {st:?}");
            assert_eq!(got, idx.linear_search(&q, 10).unwrap(), "{metric}");
            assert!(got.windows(2).all(|w| w[0].distance <= w[1].distance));
            // One below: the trees are walked and about `budget` items are scored.
            let (_, st) = idx
                .search_with_stats(&q, &SearchParams::new(10).with_budget(n / 2 - 1))
                .unwrap();
            assert!(!st.exact_scan, "{metric}: {st:?}");
            assert!(st.scored >= n / 2 - 1 && st.scored < n, "{metric}: {st:?}");
        }
    }
}

#[test]
fn distances_are_true_distances() {
    let dim = 5;
    let data: Vec<f32> = vec![1., 0., 0., 0., 0., 0., 2., 0., 0., 0., 3., 4., 0., 0., 0.];
    for (metric, want) in [
        (Metric::Euclidean, [0.0f32, 5f32.sqrt(), 20f32.sqrt()]),
        (Metric::Angular, [0.0, 1.0, 0.4]),
        (Metric::Dot, [-1.0, 0.0, -3.0]),
    ] {
        let idx = build(&data, dim, metric, &params(2, 1));
        let res = idx.search(&data[..dim], &SearchParams::new(3)).unwrap();
        for nb in res {
            assert!(
                (nb.distance - want[nb.id as usize]).abs() < 1e-5,
                "{metric} {nb:?}"
            );
        }
    }
}

#[test]
fn recall_beats_chance_by_far_at_a_modest_budget() {
    // 5000 unit Gaussian vectors in 200-d, the original panns evaluation.
    let (n, dim, k) = (5000, 200, 10);
    let mut data = gaussian_rows(n, dim, 4);
    for row in data.chunks_mut(dim) {
        let s = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        row.iter_mut().for_each(|x| *x /= s);
    }
    for metric in [Metric::Euclidean, Metric::Angular] {
        let idx = build(&data, dim, metric, &params(64, 0));
        let v = &idx;
        let mut hits = 0;
        for qs in 0..50 {
            let q = gaussian_vector(dim, true, 1000 + qs);
            let (got, st) = v
                .search_with_stats(&q, &SearchParams::new(k).with_budget(1280))
                .unwrap();
            assert!(!st.exact_scan && st.scored < 1400, "{st:?}");
            let mut ids: Vec<u32> = got.iter().map(|g| g.id).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), k, "duplicate ids in {got:?}");
            let want = v.linear_search(&q, k).unwrap();
            hits += got
                .iter()
                .filter(|g| want.iter().any(|w| w.id == g.id))
                .count();
        }
        let recall = hits as f64 / (50 * k) as f64;
        // Random 1280 of 5000 would give 0.256; a broken traversal lands near that.
        assert!(recall > 0.5, "{metric}: recall@10 = {recall}");
    }
}

#[test]
fn identical_index_for_1_2_and_4_threads() {
    let (n, dim) = (4000, 40);
    let data = gaussian_rows(n, dim, 5);
    let idx: Vec<Index> = [1, 2, 4]
        .iter()
        .map(|&t| build(&data, dim, Metric::Angular, &params(12, t)))
        .collect();
    for other in &idx[1..] {
        let (a, b) = (idx[0].parts(), other.parts());
        assert_eq!(a.nodes, b.nodes);
        assert_eq!(a.roots, b.roots);
        assert_eq!(a.leaf_offsets, b.leaf_offsets);
        assert_eq!(a.leaf_ids, b.leaf_ids);
        assert_eq!(
            a.pool.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            b.pool.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }
    // A different seed gives a different forest.
    let other = build(
        &data,
        dim,
        Metric::Angular,
        &BuildParams {
            seed: 7,
            ..params(12, 2)
        },
    );
    assert_ne!(other.parts().leaf_ids, idx[0].parts().leaf_ids);
}

#[test]
fn batch_search_matches_single_search() {
    let (n, dim) = (1000, 16);
    let idx = build(
        &gaussian_rows(n, dim, 6),
        dim,
        Metric::Euclidean,
        &params(8, 0),
    );
    let qs = gaussian_rows(30, dim, 7);
    let p = SearchParams::new(5).with_budget(200);
    let batch = idx.search_batch(&qs, &p).unwrap();
    for (q, got) in qs.chunks(dim).zip(batch) {
        assert_eq!(got, idx.search(q, &p).unwrap());
    }
}

#[test]
fn duplicates_and_tiny_indexes_work() {
    let dim = 4;
    let data: Vec<f32> = std::iter::repeat_n([1.0, 2.0, 3.0, 4.0], 300)
        .flatten()
        .collect();
    let idx = build(
        &data,
        dim,
        Metric::Euclidean,
        &BuildParams {
            leaf_size: 4,
            ..params(3, 0)
        },
    );
    let res = idx
        .search(&[1.0, 2.0, 3.0, 4.0], &SearchParams::new(5))
        .unwrap();
    assert_eq!(res.len(), 5);
    assert!(res.iter().all(|r| r.distance == 0.0));
    // Ties are broken by id.
    assert!(res.windows(2).all(|w| w[0].id < w[1].id));

    let one = build(&[0.5, 0.5, 0.5, 0.5], dim, Metric::Angular, &params(2, 0));
    let res = one
        .search(&[1.0, 1.0, 1.0, 1.0], &SearchParams::new(10))
        .unwrap();
    assert_eq!(res.len(), 1, "k above the item count returns every item");
    assert!(res[0].distance.abs() < 1e-6);
}

#[test]
fn errors_name_the_bad_value() {
    let mut b = IndexBuilder::new(3, Metric::Angular).unwrap();
    let e = b.add(&[1.0, 2.0]).unwrap_err();
    assert_eq!(
        e,
        Error::DimensionMismatch {
            expected: 3,
            got: 2
        }
    );
    let e = b.add(&[1.0, f32::NAN, 2.0]).unwrap_err();
    assert!(
        e.to_string().contains("component 1") && e.to_string().contains("NaN"),
        "{e}"
    );
    let e = b.add(&[1.0, 2.0, f32::INFINITY]).unwrap_err();
    assert!(e.to_string().contains("inf"), "{e}");
    assert_eq!(
        b.add(&[0.0, 0.0, 0.0]).unwrap_err(),
        Error::ZeroVector { item: 0 }
    );
    // A failed batch adds nothing.
    assert!(b.add_batch(&[1.0, 1.0, 1.0, 0.0, 0.0, 0.0]).is_err());
    assert_eq!(b.len(), 0);
    assert_eq!(
        b.clone().build(&BuildParams::default()).unwrap_err(),
        Error::Empty
    );
    assert!(matches!(
        IndexBuilder::new(0, Metric::Euclidean),
        Err(Error::InvalidDimension(0))
    ));
    b.add(&[1.0, 0.0, 0.0]).unwrap();
    let e = b
        .clone()
        .build(&BuildParams {
            n_trees: 0,
            ..Default::default()
        })
        .unwrap_err();
    assert!(e.to_string().contains("n_trees = 0"), "{e}");
    let idx = b.build(&BuildParams::default()).unwrap();
    let v = &idx;
    assert_eq!(
        v.search(&[1.0, 0.0, 0.0], &SearchParams::new(0))
            .unwrap_err(),
        Error::InvalidK(0)
    );
    assert_eq!(
        v.search(&[0.0, 0.0, 0.0], &SearchParams::new(1))
            .unwrap_err(),
        Error::ZeroVector { item: 0 }
    );
    assert!(matches!(
        v.search(&[1.0; 4], &SearchParams::new(1)),
        Err(Error::DimensionMismatch {
            expected: 3,
            got: 4
        })
    ));
    assert!(matches!(
        v.search(&[f32::NAN, 0.0, 0.0], &SearchParams::new(1)),
        Err(Error::NonFinite { .. })
    ));
    assert!(matches!(
        v.vector(1),
        Err(Error::IdOutOfRange { id: 1, len: 1 })
    ));
    assert!("cosine".parse::<Metric>().is_ok());
    assert!(
        "manhattan"
            .parse::<Metric>()
            .unwrap_err()
            .to_string()
            .contains("manhattan")
    );
}

#[test]
fn corrupt_parts_are_rejected() {
    let (n, dim) = (300, 8);
    let idx = build(
        &gaussian_rows(n, dim, 8),
        dim,
        Metric::Euclidean,
        &params(3, 0),
    );
    let good = idx.parts();
    assert!(good.validate().is_ok());
    let mut nodes = good.nodes.to_vec();
    let mut ids = good.leaf_ids.to_vec();
    let mut offs = good.leaf_offsets.to_vec();
    let check = |parts: IndexParts, what: &str| {
        let e = parts.validate().unwrap_err();
        assert!(e.to_string().contains(what), "expected {what:?} in {e}");
    };
    nodes[0].left = nodes.len() as u32 + 5;
    check(
        IndexParts {
            nodes: &nodes,
            ..good
        },
        "refers to node",
    );
    nodes[0] = good.nodes[0];
    nodes[1].right = 0; // back edge: a cycle
    check(
        IndexParts {
            nodes: &nodes,
            ..good
        },
        "refers back",
    );
    nodes[1] = good.nodes[1];
    nodes[2].proj = 10_000;
    check(
        IndexParts {
            nodes: &nodes,
            ..good
        },
        "pool vector",
    );
    nodes[2] = good.nodes[2];
    nodes[3].offset = f32::NAN;
    check(
        IndexParts {
            nodes: &nodes,
            ..good
        },
        "offset",
    );
    nodes[3] = good.nodes[3];
    nodes[4].right = nodes[4].left; // shared child
    check(
        IndexParts {
            nodes: &nodes,
            ..good
        },
        "twice",
    );
    ids[7] = n as u32;
    check(
        IndexParts {
            leaf_ids: &ids,
            ..good
        },
        "leaf id",
    );
    ids[7] = good.leaf_ids[7];
    offs[3] = offs[4] + 1;
    check(
        IndexParts {
            leaf_offsets: &offs,
            ..good
        },
        "decrease",
    );
    check(
        IndexParts {
            vectors: &good.vectors[1..],
            ..good
        },
        "vector section",
    );
    check(
        IndexParts {
            pool: &good.pool[..5],
            ..good
        },
        "pool",
    );
    check(
        IndexParts {
            roots: &good.roots[..1],
            ..good
        },
        "not reachable",
    );
    check(IndexParts { roots: &[], ..good }, "no trees");
}

#[test]
fn default_budgets_follow_the_documented_rule() {
    let (n, dim) = (6000, 8);
    let data = gaussian_rows(n, dim, 11);
    let mut idx = build(&data, dim, Metric::Euclidean, &params(16, 0));
    // Forest: max(n_trees * k, 100 * k), at least k, at most n.
    assert_eq!(idx.effective_budget(&SearchParams::new(10)), 1000);
    assert_eq!(idx.effective_budget(&SearchParams::new(1)), 100);
    assert_eq!(idx.effective_budget(&SearchParams::new(50)), 5000);
    assert_eq!(idx.effective_budget(&SearchParams::new(100)), n);
    assert_eq!(
        idx.effective_budget(&SearchParams::new(10).with_budget(7)),
        10
    );
    let (_, st) = idx
        .search_with_stats(&data[..dim], &SearchParams::new(10))
        .unwrap();
    assert_eq!(st.budget, 1000);
    assert!(
        !st.exact_scan && st.scored >= 1000 && st.scored < 1200,
        "{st:?}"
    );
    // Graph: a beam of max(4 k, 64).
    idx.build_graph(&GraphParams::default()).unwrap();
    assert_eq!(idx.effective_budget(&SearchParams::new(10)), 64);
    assert_eq!(idx.effective_budget(&SearchParams::new(40)), 160);
}

#[test]
fn parameter_bounds_are_exact() {
    let ok = |p: BuildParams| p.validate().is_ok();
    let d = BuildParams::default;
    for (p, want) in [
        (BuildParams { n_trees: 0, ..d() }, false),
        (BuildParams { n_trees: 1, ..d() }, true),
        (
            BuildParams {
                n_trees: 65_536,
                ..d()
            },
            true,
        ),
        (
            BuildParams {
                n_trees: 65_537,
                ..d()
            },
            false,
        ),
        (
            BuildParams {
                leaf_size: 0,
                ..d()
            },
            false,
        ),
        (
            BuildParams {
                leaf_size: 1,
                ..d()
            },
            true,
        ),
        (
            BuildParams {
                leaf_size: 1 << 20,
                ..d()
            },
            true,
        ),
        (
            BuildParams {
                leaf_size: (1 << 20) + 1,
                ..d()
            },
            false,
        ),
        (
            BuildParams {
                pool_size: 0,
                ..d()
            },
            false,
        ),
        (
            BuildParams {
                pool_size: 1,
                ..d()
            },
            true,
        ),
        (
            BuildParams {
                pool_size: 1 << 16,
                ..d()
            },
            true,
        ),
        (
            BuildParams {
                pool_size: (1 << 16) + 1,
                ..d()
            },
            false,
        ),
        (
            BuildParams {
                candidates: 0,
                ..d()
            },
            false,
        ),
        (
            BuildParams {
                candidates: 1,
                ..d()
            },
            true,
        ),
    ] {
        assert_eq!(ok(p.clone()), want, "{p:?}");
    }
    let g = GraphParams::default;
    let gok = |p: GraphParams| p.validate().is_ok();
    for (p, want) in [
        (GraphParams { degree: 0, ..g() }, false),
        (GraphParams { degree: 1, ..g() }, true),
        (
            GraphParams {
                degree: 256,
                build_k: 256,
                ..g()
            },
            true,
        ),
        (
            GraphParams {
                degree: 257,
                build_k: 300,
                ..g()
            },
            false,
        ),
        (
            GraphParams {
                degree: 24,
                build_k: 23,
                ..g()
            },
            false,
        ),
        (
            GraphParams {
                degree: 24,
                build_k: 24,
                ..g()
            },
            true,
        ),
        (
            GraphParams {
                build_k: 1024,
                ..g()
            },
            true,
        ),
        (
            GraphParams {
                build_k: 1025,
                ..g()
            },
            false,
        ),
        (
            GraphParams {
                seed_trees: 0,
                ..g()
            },
            false,
        ),
        (
            GraphParams {
                seed_trees: 1,
                ..g()
            },
            true,
        ),
    ] {
        assert_eq!(gok(p.clone()), want, "{p:?}");
    }
}

/// `add_vec` (the buffer becomes the builder's storage) stores exactly what
/// `add_batch` stores, padded and normalised alike, and refuses the same rows.
#[test]
fn add_vec_stores_what_add_batch_stores() {
    for (dim, metric) in [
        (24, Metric::Angular),
        (16, Metric::Euclidean),
        (5, Metric::Dot),
    ] {
        let data = gaussian_rows(300, dim, 11);
        let params = params(3, 1);
        let a = build(&data, dim, metric, &params);
        let mut b = IndexBuilder::new(dim, metric).unwrap();
        assert_eq!(b.add_vec(data.clone()).unwrap(), 0..300);
        let b = b.build(&params).unwrap();
        assert_eq!(a.parts().vectors, b.parts().vectors, "{dim} {metric:?}");
        assert_eq!(a.parts().leaf_ids, b.parts().leaf_ids);
        // Into a builder that already holds rows, it appends like add_batch.
        let mut c = IndexBuilder::new(dim, metric).unwrap();
        c.add_batch(&data[..100 * dim]).unwrap();
        assert_eq!(c.add_vec(data[100 * dim..].to_vec()).unwrap(), 100..300);
        let c = c.build(&params).unwrap();
        assert_eq!(a.parts().vectors, c.parts().vectors);
    }
    let mut b = IndexBuilder::new(3, Metric::Angular).unwrap();
    let e = b.add_vec(vec![1.0; 7]).unwrap_err();
    assert_eq!(e, Error::RaggedBatch { len: 7, dim: 3 });
    let e = b.add_vec(vec![1.0, 2.0, 3.0, 0.0, 0.0, 0.0]).unwrap_err();
    assert_eq!(e, Error::ZeroVector { item: 1 });
    let e = b.add_vec(vec![1.0, f32::NAN, 3.0]).unwrap_err();
    assert!(matches!(e, Error::NonFinite { item: 0, .. }), "{e:?}");
    assert!(b.is_empty());
}
