//! Vectors stored as 8-bit codes (`Dtype::I8`): a quarter of the bytes, recall close to
//! the f32 index on the approximate path, distances to the decoded vectors, and every
//! damaged code array refused. With `f32` kept beside them (`Dtype::I8F32`): the codes
//! steer, the `f32` rows rank, so recall and distances are those of `f32`.

mod common;

use common::clustered;
use panns_core::*;

fn build(data: &[f32], dim: usize, metric: Metric, dtype: Dtype, graph: bool) -> Index {
    let mut b = IndexBuilder::new(dim, metric).unwrap();
    b.add_batch(data).unwrap();
    let mut ix = b
        .build(&BuildParams {
            n_trees: 8,
            dtype,
            ..Default::default()
        })
        .unwrap();
    if graph {
        ix.build_graph(&GraphParams::default()).unwrap();
    }
    ix
}

/// Mean recall@10 against the exact neighbours of the f32 vectors, over 40 queries,
/// asserting every search took the approximate path.
fn recall(ix: &Index, truth: &Index, data: &[f32], dim: usize, budget: usize) -> f64 {
    let mut hits = 0;
    for qi in 0..40 {
        let q: Vec<f32> = data[qi * 97 * dim..][..dim]
            .iter()
            .map(|x| x + 0.2)
            .collect();
        let want: Vec<u32> = truth
            .linear_search(&q, 10)
            .unwrap()
            .iter()
            .map(|h| h.id)
            .collect();
        let (got, st) = ix
            .search_with_stats(&q, &SearchParams::new(10).with_budget(budget))
            .unwrap();
        assert!(!st.exact_scan, "budget {budget} must not scan");
        hits += got.iter().filter(|h| want.contains(&h.id)).count();
    }
    hits as f64 / 400.0
}

#[test]
fn codes_keep_recall_on_the_approximate_path_for_every_metric() {
    let (n, dim) = (6000, 48);
    let data = clustered(n, dim, 7);
    for metric in [Metric::Euclidean, Metric::Angular, Metric::Dot] {
        for graph in [false, true] {
            let f = build(&data, dim, metric, Dtype::F32, graph);
            let q = build(&data, dim, metric, Dtype::I8, graph);
            assert_eq!(q.dtype(), Dtype::I8);
            assert!(q.parts().vectors.is_empty());
            assert_eq!(q.parts().codes.unwrap().codes.len(), n * padded_dim(dim));
            let budget = if graph { 40 } else { 600 };
            let (rf, rq) = (
                recall(&f, &f, &data, dim, budget),
                recall(&q, &f, &data, dim, budget),
            );
            // A broken code kernel or query preparation answers at random (recall ~0.002).
            assert!(rq >= 0.8, "{metric} graph={graph}: i8 recall {rq}");
            assert!(
                rq >= rf - 0.06,
                "{metric} graph={graph}: i8 {rq} vs f32 {rf}"
            );
        }
    }
}

#[test]
fn distances_are_those_to_the_decoded_vectors() {
    let dim = 20;
    let data = clustered(500, dim, 3);
    for metric in [Metric::Euclidean, Metric::Angular, Metric::Dot] {
        let q = build(&data, dim, metric, Dtype::I8, false);
        let query: Vec<f32> = data[..dim].iter().map(|x| x * 0.5 + 0.1).collect();
        let mut prepared = query.clone();
        if metric == Metric::Angular {
            let n = prepared.iter().map(|x| x * x).sum::<f32>().sqrt();
            prepared.iter_mut().for_each(|x| *x /= n);
        }
        let hits = q.linear_search(&query, 500).unwrap();
        assert_eq!(hits.len(), 500);
        for h in hits.iter().step_by(37) {
            let v = q.vector(h.id as usize).unwrap();
            let want = metric.distance(&prepared, &v);
            assert!(
                (h.distance - want).abs() <= 1e-3 * (1.0 + want.abs()),
                "{metric} item {}: {} vs {want}",
                h.id,
                h.distance
            );
        }
        // Decoded vectors are within half a step of the originals (per component).
        let c = q.parts().codes.unwrap();
        let v = q.vector(3).unwrap();
        if metric != Metric::Angular {
            for j in 0..dim {
                assert!((v[j] - data[3 * dim + j]).abs() <= c.step[j] * 0.5 + 1e-4);
            }
        }
    }
}

#[test]
fn to_dtype_converts_both_ways_keeping_trees_and_graph() {
    let dim = 16;
    let data = clustered(2000, dim, 11);
    let f = build(&data, dim, Metric::Euclidean, Dtype::F32, true);
    let q = f.to_dtype(Dtype::I8).unwrap();
    assert_eq!(q.dtype(), Dtype::I8);
    assert_eq!(q.params().dtype, Dtype::I8);
    assert_eq!(q.graph_degree(), f.graph_degree());
    assert_eq!(q.parts().graph, f.parts().graph);
    assert_eq!(q.nodes(), f.nodes());
    let back = q.to_dtype(Dtype::F32).unwrap();
    assert_eq!(back.dtype(), Dtype::F32);
    for id in [0usize, 77, 1999] {
        assert_eq!(&back.vector(id).unwrap()[..], &q.vector(id).unwrap()[..]);
    }
    // Built as codes directly: the same codes as converting after the build.
    let direct = build(&data, dim, Metric::Euclidean, Dtype::I8, false);
    assert_eq!(
        direct.parts().codes.unwrap().codes,
        q.parts().codes.unwrap().codes
    );
    // A graph can be built on an index stored as codes (from the decoded vectors).
    let mut g = direct.clone();
    g.build_graph(&GraphParams::default()).unwrap();
    assert!(g.graph_degree() > 0);
    assert_eq!(g.dtype(), Dtype::I8);
}

#[test]
fn damaged_code_arrays_are_refused_and_damaged_values_found() {
    let dim = 5;
    let data = clustered(300, dim, 5);
    let q = build(&data, dim, Metric::Euclidean, Dtype::I8, false);
    let good = q.parts();
    let c = good.codes.unwrap();
    let stride = padded_dim(dim);
    let check = |p: IndexParts, what: &str| {
        let e = p.validate().unwrap_err().to_string();
        assert!(e.contains(what), "{e:?} should mention {what:?}");
    };
    let mut step = c.step.to_vec();
    step[2] = -1.0;
    check(
        IndexParts {
            codes: Some(Codes { step: &step, ..c }),
            ..good
        },
        "negative",
    );
    let mut lo = c.lo.to_vec();
    lo[1] = f32::NAN;
    check(
        IndexParts {
            codes: Some(Codes { lo: &lo, ..c }),
            ..good
        },
        "code range lo",
    );
    let mut lo_pad = c.lo.to_vec();
    lo_pad[dim] = 1.0;
    check(
        IndexParts {
            codes: Some(Codes { lo: &lo_pad, ..c }),
            ..good
        },
        "padding",
    );
    check(
        IndexParts {
            codes: Some(Codes {
                codes: &c.codes[..stride],
                ..c
            }),
            ..good
        },
        "code section",
    );
    check(
        IndexParts {
            codes: Some(Codes {
                aux: &c.aux[1..],
                ..c
            }),
            ..good
        },
        "norm terms",
    );
    let f32s = vec![0f32; 299 * stride];
    check(
        IndexParts {
            vectors: &f32s,
            ..good
        },
        "vector section beside the codes",
    );
    // Values: a damaged norm term or padding byte is found by check_values.
    good.check_values().unwrap();
    let mut aux = c.aux.to_vec();
    aux[9] *= 0.5;
    let bad = IndexParts {
        codes: Some(Codes { aux: &aux, ..c }),
        ..good
    };
    bad.validate().unwrap();
    // Messages name the item held in the damaged row.
    let item9 = good.row_ids.get(9).map_or(9, |&i| i);
    assert!(
        bad.check_values()
            .unwrap_err()
            .to_string()
            .contains(&format!("stored vector {item9}"))
    );
    let mut codes = c.codes.to_vec();
    codes[4 * stride + dim] = 1;
    let bad = IndexParts {
        codes: Some(Codes { codes: &codes, ..c }),
        ..good
    };
    assert!(
        bad.check_values()
            .unwrap_err()
            .to_string()
            .contains("padding")
    );
    // A norm term out of range is refused at open (NaN would otherwise score 0).
    for v in [f32::NAN, -1.0, f32::INFINITY] {
        let mut aux = c.aux.to_vec();
        aux[7] = v;
        let bad = IndexParts {
            codes: Some(Codes { aux: &aux, ..c }),
            ..good
        };
        let item7 = good.row_ids.get(7).map_or(7, |&i| i);
        check(bad, &format!("stored vector {item7}"));
        check(bad, "has norm term");
    }
}

#[test]
fn a_stored_vector_finds_itself_first_at_distance_zero() {
    // Rounding can take the code distance of an item to its own decoded vector just
    // below 0: it must come out as about 0 (first), never as +infinity (last).
    let dim = 24;
    let data = clustered(400, dim, 9);
    for metric in [Metric::Euclidean, Metric::Angular] {
        let q = build(&data, dim, metric, Dtype::I8, false);
        for id in 0..400 {
            let v = q.vector(id).unwrap().into_owned();
            let hits = q.linear_search(&v, 1).unwrap();
            // Euclidean: |q-lo|^2 - 2 w.c + aux cancels to a few f32 ulps of |q-lo|^2,
            // which the square root turns into ~0.02 here.
            assert_eq!(hits[0].id, id as u32, "{metric}: {:?}", hits[0]);
            assert!(hits[0].distance < 0.05, "{metric} item {id}: {:?}", hits[0]);
        }
    }
}

/// Tight clusters far apart: at `scale` 10 a code step (the range over all clusters /
/// 255) is about as wide as a cluster, so codes alone rank the items of one cluster
/// poorly (i8 recall stops near 0.8 at any budget; f32 reaches 1); at 100 they cannot
/// tell them apart at all.
fn far_tight_clusters(n: usize, dim: usize, scale: f32) -> Vec<f32> {
    clustered(n, dim, 21)
        .chunks_exact(dim)
        .enumerate()
        .flat_map(|(i, row)| {
            // Centres of `scale`, points spread 0.1 around them.
            let c = (i % 30) as f32;
            row.iter()
                .enumerate()
                .map(move |(j, &x)| scale * ((c * 7.3 + j as f32 * 1.9).sin()) + 0.1 * x)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn rerank_from_f32_lifts_recall_past_the_rounding_of_codes() {
    let (n, dim) = (6000, 32);
    let data = far_tight_clusters(n, dim, 10.0);
    for metric in [Metric::Euclidean, Metric::Angular] {
        for graph in [false, true] {
            let f = build(&data, dim, metric, Dtype::F32, graph);
            let q = build(&data, dim, metric, Dtype::I8, graph);
            let r = build(&data, dim, metric, Dtype::I8F32, graph);
            assert_eq!(r.dtype(), Dtype::I8F32);
            assert_eq!(r.parts().vectors, f.parts().vectors);
            assert_eq!(
                r.parts().codes.unwrap().codes,
                q.parts().codes.unwrap().codes
            );
            let budget = if graph { 40 } else { 600 };
            let rf = recall(&f, &f, &data, dim, budget);
            let rq = recall(&q, &f, &data, dim, budget);
            let rr = recall(&r, &f, &data, dim, budget);
            // The premise: rounding costs the codes alone much of their recall here.
            assert!(
                rq <= rf - 0.15,
                "{metric} graph={graph}: i8 {rq} vs f32 {rf}"
            );
            assert!(
                rr >= rf - 0.03,
                "{metric} graph={graph}: i8+f32 {rr} vs f32 {rf}"
            );
        }
    }
}

#[test]
fn rerank_takes_every_candidate_the_rounding_could_have_misplaced() {
    // At scale 100 the 200 items of a cluster have about equal code distances: the
    // exact best 10 are anywhere among them, past any fixed re-rank count, so only the
    // rounding margin finds them (the forest scores them all at this budget).
    let (n, dim) = (6000, 32);
    let data = far_tight_clusters(n, dim, 100.0);
    for metric in [Metric::Euclidean, Metric::Angular] {
        let f = build(&data, dim, metric, Dtype::F32, false);
        let r = f.to_dtype(Dtype::I8F32).unwrap();
        let (rf, rr) = (
            recall(&f, &f, &data, dim, 600),
            recall(&r, &f, &data, dim, 600),
        );
        assert!(rf >= 0.99, "{metric}: f32 {rf}");
        assert_eq!(rr, rf, "{metric}");
    }
}

#[test]
fn rerank_returns_exact_distances_and_exact_scans_read_f32() {
    let dim = 20;
    let data = far_tight_clusters(3000, dim, 10.0);
    for metric in [Metric::Euclidean, Metric::Angular, Metric::Dot] {
        let f = build(&data, dim, metric, Dtype::F32, true);
        let r = f.to_dtype(Dtype::I8F32).unwrap();
        assert_eq!(r.graph_degree(), f.graph_degree());
        let query: Vec<f32> = data[5 * dim..][..dim].iter().map(|x| x + 0.05).collect();
        // Exact scans: identical to the f32 index, ids and distances.
        assert_eq!(
            r.linear_search(&query, 30).unwrap(),
            f.linear_search(&query, 30).unwrap()
        );
        // Walks: every distance returned is the f32 distance of that item.
        let (hits, st) = r
            .search_with_stats(&query, &SearchParams::new(10).with_budget(32))
            .unwrap();
        assert!(!st.exact_scan);
        assert_eq!(hits.len(), 10);
        for h in &hits {
            let want = f.linear_search(&query, 3000).unwrap();
            let w = want.iter().find(|x| x.id == h.id).unwrap();
            assert_eq!(h.distance, w.distance, "{metric} item {}", h.id);
        }
        assert!(hits.windows(2).all(|w| w[0].distance <= w[1].distance));
        // The stored vector is the f32 row, not the decoded codes.
        assert_eq!(&r.vector(7).unwrap()[..], &f.vector(7).unwrap()[..]);
        // Conversions: dropping either half gives the f32 or the i8 index.
        let back = r.to_dtype(Dtype::F32).unwrap();
        assert_eq!(back.parts().vectors, f.parts().vectors);
        assert!(back.parts().codes.is_none());
        let i8 = r.to_dtype(Dtype::I8).unwrap();
        assert!(i8.parts().vectors.is_empty());
        assert_eq!(
            i8.parts().codes.unwrap().codes,
            r.parts().codes.unwrap().codes
        );
    }
}

#[test]
fn a_damaged_f32_value_beside_codes_is_found() {
    let dim = 6;
    let data = clustered(200, dim, 4);
    let r = build(&data, dim, Metric::Euclidean, Dtype::I8F32, false);
    let good = r.parts();
    good.validate().unwrap();
    good.check_values().unwrap();
    let stride = padded_dim(dim);
    // Just over half a step from its code's value: beyond rounding, so damage.
    let c = good.codes.unwrap();
    let decoded = c.lo[2] + c.step[2] * c.codes[11 * stride + 2] as f32;
    for v in [f32::NAN, 1e6, 40.0, decoded + 0.6 * c.step[2]] {
        let mut vectors = good.vectors.to_vec();
        vectors[11 * stride + 2] = v;
        let bad = IndexParts {
            vectors: &vectors,
            ..good
        };
        bad.validate().unwrap();
        let e = bad.check_values().unwrap_err().to_string();
        let item = good.row_ids.get(11).map_or(11, |&i| i);
        assert!(e.contains(&format!("stored vector {item}")), "{v}: {e}");
    }
}
