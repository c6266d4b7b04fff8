//! Vectors stored as 8-bit codes (`Dtype::I8`): a quarter of the bytes, recall close to
//! the f32 index on the approximate path, distances to the decoded vectors, and every
//! damaged code array refused.

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
    let f32s = vec![0f32; 300 * stride];
    check(
        IndexParts {
            vectors: &f32s,
            ..good
        },
        "both",
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
    assert!(
        bad.check_values()
            .unwrap_err()
            .to_string()
            .contains("stored vector 9")
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
        check(bad, "stored vector 7 has norm term");
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
