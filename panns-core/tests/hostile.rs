//! Hostile values and resources: nothing may crash the host or win a search it should not.
//! Each test fails without the fix it guards (issue #11, "values that must never win").

use panns_core::rng::Rng;
use panns_core::*;
use std::sync::Arc;

fn rows(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut r = Rng::new(seed);
    (0..n * dim).map(|_| r.gaussian() as f32).collect()
}

fn build(data: &[f32], dim: usize, metric: Metric) -> Index {
    let mut b = IndexBuilder::new(dim, metric).unwrap();
    b.add_batch(data).unwrap();
    b.build(&BuildParams {
        n_trees: 4,
        ..Default::default()
    })
    .unwrap()
}

/// Storage over arrays a test can damage (as a bit flip in an unverified file would).
struct Damaged {
    vectors: Vec<f32>,
    base: Index,
}

impl Storage for Damaged {
    fn parts(&self) -> IndexParts<'_> {
        IndexParts {
            vectors: &self.vectors,
            ..self.base.parts()
        }
    }
}

/// The row holding item `id` (a build stores rows in its first tree's leaf order).
fn row_of(p: &IndexParts, id: usize) -> usize {
    if p.id_rows.is_empty() {
        id
    } else {
        p.id_rows[id] as usize
    }
}

/// The index `base` with the stored row of item `id` overwritten by `value` in every
/// component.
fn damage(base: &Index, id: usize, value: f32) -> Index {
    let dim = base.dim();
    let stride = padded_dim(dim);
    let mut vectors = base.parts().vectors.to_vec();
    let row = row_of(&base.parts(), id);
    vectors[row * stride..row * stride + dim].fill(value);
    let params = base.params().clone();
    Index::from_storage(
        Arc::new(Damaged {
            vectors,
            base: base.clone(),
        }),
        params,
    )
    .unwrap()
}

#[test]
fn non_finite_stored_rows_never_win_and_sort_last() {
    let dim = 8;
    let data = rows(400, dim, 1);
    for metric in [Metric::Euclidean, Metric::Angular, Metric::Dot] {
        let base = build(&data, dim, metric);
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let ix = damage(&base, 7, bad);
            for q in data.chunks_exact(dim).take(20) {
                for params in [SearchParams::new(5), SearchParams::new(400)] {
                    let hits = ix.search(q, &params).unwrap();
                    assert!(
                        hits.iter().all(|h| !h.distance.is_nan()),
                        "{metric} {bad}: NaN distance returned"
                    );
                    if let Some(h) = hits.iter().find(|h| h.id == 7) {
                        assert_eq!(h.distance, f32::INFINITY, "{metric} {bad}: {hits:?}");
                        assert_eq!(hits.last().unwrap().id, 7, "{metric} {bad}: not last");
                    }
                }
                let exact = ix.linear_search(q, 3).unwrap();
                assert!(exact.iter().all(|h| h.id != 7), "{metric} {bad}: {exact:?}");
            }
        }
    }
}

#[test]
fn value_check_finds_damaged_rows_and_padding() {
    let dim = 5;
    let data = rows(50, dim, 2);
    let base = build(&data, dim, Metric::Angular);
    assert!(base.parts().check_values().is_ok());
    let e = damage(&base, 3, f32::NAN)
        .parts()
        .check_values()
        .unwrap_err();
    assert!(e.to_string().contains("stored vector 3"), "{e}");
    let e = damage(&base, 4, 0.1).parts().check_values().unwrap_err();
    assert!(e.to_string().contains("unit vectors"), "{e}");
    // Non-zero padding (which enters every distance) is refused too.
    let mut vectors = base.parts().vectors.to_vec();
    vectors[padded_dim(dim) * 2 + dim] = 1.0;
    let parts = IndexParts {
        vectors: &vectors,
        ..base.parts()
    };
    let e = parts.check_values().unwrap_err();
    assert!(e.to_string().contains("padding"), "{e}");
}

#[test]
fn tiny_angular_vectors_normalise_in_f64() {
    // 1e-30 squared underflows f32: the old code stored (inf, NaN, NaN), first for every query.
    let mut b = IndexBuilder::new(3, Metric::Angular).unwrap();
    b.add(&[1e-30, 0.0, 0.0]).unwrap();
    b.add(&[0.0, 1.0, 0.0]).unwrap();
    b.add(&[0.0, 0.0, 1.0]).unwrap();
    let ix = b.build(&BuildParams::default()).unwrap();
    assert_eq!(&ix.vector(0).unwrap()[..], &[1.0, 0.0, 0.0]);
    ix.parts().check_values().unwrap();
    let hits = ix.search(&[0.0, 1.0, 0.1], &SearchParams::new(3)).unwrap();
    assert_eq!(hits[0].id, 1);
    assert!((hits[2].distance - 1.0).abs() < 1e-6, "{hits:?}");
    // A tiny query works too; only a true zero vector is refused.
    let hits = ix
        .search(&[0.0, 0.0, 1e-30], &SearchParams::new(1))
        .unwrap();
    assert_eq!(hits[0].id, 2);
    assert_eq!(
        ix.search(&[0.0, 0.0, 0.0], &SearchParams::new(1)),
        Err(Error::ZeroVector { item: 0 })
    );
}

#[test]
fn huge_components_are_refused_with_the_limit() {
    let mut b = IndexBuilder::new(3, Metric::Euclidean).unwrap();
    let e = b.add(&[1.0, 1e19, 0.0]).unwrap_err();
    assert!(matches!(e, Error::TooLarge { index: 1, .. }), "{e}");
    assert!(e.to_string().contains("1e16"), "{e}");
    b.add(&[1.0, MAX_COMPONENT, 0.0]).unwrap();
    b.add(&[1.0, -MAX_COMPONENT, 0.0]).unwrap();
    let ix = b.build(&BuildParams::default()).unwrap();
    // At the limit distances stay finite and ordered.
    let hits = ix
        .search(&[1.0, MAX_COMPONENT, 0.0], &SearchParams::new(2))
        .unwrap();
    assert_eq!(hits[0].id, 0);
    assert!(hits[1].distance.is_finite());
    // Queries too: an angular query whose norm overflows is not called "zero length".
    let mut b = IndexBuilder::new(2, Metric::Angular).unwrap();
    b.add(&[1.0, 0.0]).unwrap();
    let ix = b.build(&BuildParams::default()).unwrap();
    let e = ix.search(&[1e30, 1e30], &SearchParams::new(1)).unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e}");
}

#[test]
fn huge_k_and_budget_return_min_k_len_results() {
    let dim = 6;
    let data = rows(300, dim, 3);
    let mut ix = build(&data, dim, Metric::Euclidean);
    let q = &data[..dim];
    for k in [usize::MAX, 1 << 62, 301, 300] {
        for budget in [0, 1, usize::MAX, 1 << 62] {
            let hits = ix
                .search(q, &SearchParams::new(k).with_budget(budget))
                .unwrap();
            assert_eq!(hits.len(), 300, "k {k} budget {budget}");
        }
    }
    ix.build_graph(&GraphParams::default()).unwrap();
    for k in [usize::MAX, 5] {
        let hits = ix.search(q, &SearchParams::new(k).with_budget(1)).unwrap();
        assert_eq!(hits.len(), k.min(300), "graph, k {k}");
    }
}

#[test]
fn a_budget_below_k_still_returns_k_results() {
    let dim = 6;
    let data = rows(2000, dim, 4);
    let ix = build(&data, dim, Metric::Euclidean);
    for q in data.chunks_exact(dim).take(20) {
        let (hits, st) = ix
            .search_with_stats(q, &SearchParams::new(50).with_budget(3))
            .unwrap();
        assert_eq!(hits.len(), 50);
        assert!(!st.exact_scan && st.budget == 50, "{st:?}");
    }
}

#[test]
fn add_takes_exactly_one_vector_and_batches_name_their_length() {
    let mut b = IndexBuilder::new(3, Metric::Euclidean).unwrap();
    assert_eq!(
        b.add(&[1.0; 6]).unwrap_err(),
        Error::DimensionMismatch {
            expected: 3,
            got: 6
        }
    );
    assert_eq!(b.len(), 0);
    let e = b.add_batch(&[1.0; 7]).unwrap_err();
    assert_eq!(e, Error::RaggedBatch { len: 7, dim: 3 });
    assert!(e.to_string().contains("7 floats"), "{e}");
    b.add_batch(&[1.0; 6]).unwrap();
    let ix = b.build(&BuildParams::default()).unwrap();
    let e = ix
        .search_batch(&[1.0; 5], &SearchParams::new(1))
        .unwrap_err();
    assert_eq!(e, Error::RaggedBatch { len: 5, dim: 3 });
}

#[test]
fn batch_errors_name_the_query_row() {
    let dim = 4;
    let data = rows(100, dim, 5);
    let ix = build(&data, dim, Metric::Euclidean);
    let mut qs = data[..5 * dim].to_vec();
    qs[3 * dim + 2] = f32::NAN;
    let e = ix.search_batch(&qs, &SearchParams::new(3)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::NonFinite {
                item: 3,
                index: 2,
                ..
            }
        ),
        "{e}"
    );
    let mut ids = vec![0u32; 15];
    let e = ix
        .search_batch_into(&qs, &SearchParams::new(3), &mut ids, None)
        .unwrap_err();
    assert!(matches!(e, Error::NonFinite { item: 3, .. }), "{e}");
}

#[test]
fn search_batch_into_writes_rows_and_pads() {
    let dim = 4;
    let data = rows(10, dim, 6);
    let ix = build(&data, dim, Metric::Euclidean);
    let qs = &data[..3 * dim];
    let k = 12; // more than the 10 items: two padded slots per row
    let (mut ids, mut ds) = (vec![0u32; 3 * k], vec![0f32; 3 * k]);
    ix.search_batch_into(qs, &SearchParams::new(k), &mut ids, Some(&mut ds))
        .unwrap();
    for (r, q) in qs.chunks_exact(dim).enumerate() {
        let want = ix.search(q, &SearchParams::new(k)).unwrap();
        let row = &ids[r * k..(r + 1) * k];
        assert_eq!(
            &row[..10],
            &want.iter().map(|h| h.id).collect::<Vec<_>>()[..]
        );
        assert_eq!(&row[10..], &[u32::MAX, u32::MAX]);
        assert_eq!(ds[r * k + 11], f32::INFINITY);
        assert_eq!(ds[r * k], want[0].distance);
    }
    let e = ix
        .search_batch_into(qs, &SearchParams::new(k), &mut ids[..5], None)
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::BufferSize {
                expected: 36,
                got: 5,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn scratch_belongs_to_the_index_not_the_thread() {
    let dim = 8;
    let data = rows(3000, dim, 7);
    let ix = Arc::new(build(&data, dim, Metric::Euclidean));
    assert_eq!(ix.scratch_buffers(), 0);
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let ix = Arc::clone(&ix);
            let data = data.clone();
            std::thread::spawn(move || {
                for q in data.chunks_exact(dim).skip(t * 10).take(200) {
                    ix.search(q, &SearchParams::new(10).with_budget(100))
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // One scratch per concurrent search at most, kept by the index for reuse.
    let held = ix.scratch_buffers();
    assert!((1..=4).contains(&held), "{held}");
    ix.search(&data[..dim], &SearchParams::new(1)).unwrap();
    assert_eq!(ix.scratch_buffers(), held, "sequential searches reuse one");
}

#[test]
fn an_impossible_build_is_an_error_not_an_abort() {
    // The leaves of 300,000 items x 65,536 trees are 78 GB: with the kernel's default
    // (heuristic) overcommit the allocator refuses them and the build must say so.
    // Under "always overcommit" the probe could succeed, so skip there.
    let mode = std::fs::read_to_string("/proc/sys/vm/overcommit_memory").unwrap_or_default();
    if mode.trim() != "0" {
        eprintln!("skipped: vm.overcommit_memory is {:?}, not 0", mode.trim());
        return;
    }
    let mut b = IndexBuilder::new(1, Metric::Euclidean).unwrap();
    let data: Vec<f32> = (0..300_000).map(|i| i as f32).collect();
    b.add_batch(&data).unwrap();
    let e = b
        .build(&BuildParams {
            n_trees: 65_536,
            ..Default::default()
        })
        .unwrap_err();
    assert!(matches!(e, Error::OutOfMemory { .. }), "{e}");
    assert!(e.to_string().contains("out of memory"), "{e}");
}

#[test]
fn graphs_can_be_added_to_any_storage() {
    let dim = 8;
    let data = rows(1500, dim, 8);
    let base = build(&data, dim, Metric::Euclidean);
    // An index over borrowed-style storage (as a mapped file is): the graph overlays it.
    let mut ix = damage(&base, 0, 0.5);
    assert_eq!(ix.graph_degree(), 0);
    ix.build_graph(&GraphParams {
        degree: 12,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(ix.graph_degree(), 12);
    assert!(ix.storage_description().contains("graph"));
    // Replacing it does not stack overlays.
    ix.build_graph(&GraphParams {
        degree: 8,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(ix.graph_degree(), 8);
    assert_eq!(ix.storage_description().matches("graph").count(), 1);
    let (_, st) = ix
        .search_with_stats(&data[dim..2 * dim], &SearchParams::new(5).with_budget(30))
        .unwrap();
    assert!(!st.exact_scan);
}

#[test]
fn trees_that_miss_items_are_corrupt() {
    let dim = 4;
    let data = rows(200, dim, 9);
    let base = build(&data, dim, Metric::Euclidean);
    let p = base.parts();
    // Empty every leaf: structurally consistent offsets, but no tree holds any item.
    let offsets = vec![0u32; p.leaf_offsets.len()];
    let e = IndexParts {
        leaf_offsets: &offsets,
        leaf_ids: &[],
        ..p
    }
    .validate()
    .unwrap_err();
    assert!(e.to_string().contains("holds 0 of the 200 items"), "{e}");
    // One id listed twice in a tree (another missing).
    let mut ids = p.leaf_ids.to_vec();
    ids[1] = ids[0];
    let e = IndexParts {
        leaf_ids: &ids,
        ..p
    }
    .validate()
    .unwrap_err();
    assert!(e.to_string().contains("appears twice"), "{e}");
}

#[test]
fn an_angular_row_with_one_infinite_component_never_wins() {
    // dot = +inf makes 1 - dot = -inf: it once clamped to distance 0 (found by the
    // hostile-file campaign, `panns-io/examples/campaign.rs`).
    let dim = 4;
    let data = rows(200, dim, 10);
    let base = build(&data, dim, Metric::Angular);
    for (value, huge) in [(f32::INFINITY, false), (1e30, true)] {
        let stride = padded_dim(dim);
        let mut vectors = base.parts().vectors.to_vec();
        vectors[row_of(&base.parts(), 9) * stride] = value; // one component of item 9
        let ix = Index::from_storage(
            Arc::new(Damaged {
                vectors,
                base: base.clone(),
            }),
            base.params().clone(),
        )
        .unwrap();
        let q = [1.0, 0.1, 0.1, 0.1];
        let hits = ix.search(&q, &SearchParams::new(200)).unwrap();
        let h9 = hits.iter().find(|h| h.id == 9).unwrap();
        assert_eq!(h9.distance, f32::INFINITY, "value {value}: {h9:?}");
        assert_ne!(hits[0].id, 9);
        if huge {
            assert!(ix.parts().check_values().is_err(), "verification finds it");
        }
    }
}
