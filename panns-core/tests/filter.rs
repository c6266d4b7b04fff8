//! Filtered search: only allowed items come back, recall holds at any selectivity, and
//! the planner scans exactly when few items pass.

mod common;

use common::clustered;
use panns_core::*;

fn index(data: &[f32], dim: usize, graph: bool) -> Index {
    let mut b = IndexBuilder::new(dim, Metric::Euclidean).unwrap();
    b.add_batch(data).unwrap();
    let mut ix = b
        .build(&BuildParams {
            n_trees: 8,
            ..Default::default()
        })
        .unwrap();
    if graph {
        ix.build_graph(&GraphParams::default()).unwrap();
    }
    ix
}

/// Exact k nearest among the allowed items.
fn exact(ix: &Index, q: &[f32], k: usize, allowed: &dyn Fn(u32) -> bool) -> Vec<u32> {
    let all = ix.linear_search(q, ix.len()).unwrap();
    all.into_iter()
        .filter(|h| allowed(h.id))
        .take(k)
        .map(|h| h.id)
        .collect()
}

/// Mean recall@10 of filtered searches over 30 queries; asserts every hit is allowed.
fn recall(
    ix: &Index,
    data: &[f32],
    dim: usize,
    filter: &Filter,
    allowed: &dyn Fn(u32) -> bool,
    budget: usize,
) -> (f64, bool) {
    let (mut hits, mut total, mut any_exact) = (0, 0, false);
    for qi in 0..30 {
        let q: Vec<f32> = data[qi * 53 * dim..][..dim]
            .iter()
            .map(|x| x + 0.3)
            .collect();
        let (got, st) = ix
            .search_filtered(&q, &SearchParams::new(10).with_budget(budget), filter)
            .unwrap();
        any_exact |= st.exact_scan;
        assert!(
            got.iter().all(|h| allowed(h.id)),
            "a filtered-out item came back"
        );
        let want = exact(ix, &q, 10, allowed);
        hits += got.iter().filter(|h| want.contains(&h.id)).count();
        total += want.len();
    }
    (hits as f64 / total.max(1) as f64, any_exact)
}

#[test]
fn filtered_search_keeps_recall_at_every_selectivity() {
    let (n, dim) = (6000, 16);
    let data = clustered(n, dim, 1);
    for graph in [false, true] {
        let ix = index(&data, dim, graph);
        for (every, floor) in [(2u32, 0.9), (10, 0.9), (100, 0.99), (1000, 0.99)] {
            let allowed = move |i: u32| (i.wrapping_mul(2_654_435_761) >> 7).is_multiple_of(every);
            let bits = bitmap(n, (0..n as u32).filter(|&i| allowed(i)));
            let budget = if graph { 40 } else { 100 };
            let (r, exact_ran) = recall(&ix, &data, dim, &Filter::Allow(&bits), &allowed, budget);
            eprintln!("graph {graph}, 1/{every} allowed: recall@10 {r:.3}, exact scan {exact_ran}");
            assert!(r >= floor, "graph {graph}, 1/{every}: recall {r}");
            // Selective filters are answered by an exact scan of the allowed items,
            // broad ones by the walk; with a graph, also filters selective enough that the
            // walk would score more items than are allowed (allowed^2 <= 16 budget n).
            let count = (0..n as u32).filter(|&i| allowed(i)).count();
            let scan = 2 * budget >= count || (graph && count * count <= 16 * budget * n);
            assert_eq!(exact_ran, scan, "graph {graph}, 1/{every}: {count} allowed");
            // The same through a predicate (no count known: always the walk) and a deny map.
            if every <= 10 {
                let (r, _) = recall(
                    &ix,
                    &data,
                    dim,
                    &Filter::Predicate(&allowed),
                    &allowed,
                    budget,
                );
                assert!(
                    r >= floor - 0.05,
                    "predicate, graph {graph}, 1/{every}: {r}"
                );
                let deny = bitmap(n, (0..n as u32).filter(|&i| !allowed(i)));
                let (r, _) = recall(&ix, &data, dim, &Filter::Deny(&deny), &allowed, budget);
                assert!(r >= floor, "deny, graph {graph}, 1/{every}: {r}");
            }
        }
    }
}

#[test]
fn filter_edge_cases() {
    let (n, dim) = (500, 4);
    let data = clustered(n, dim, 2);
    let ix = index(&data, dim, false);
    let q = &data[..dim];
    // Nothing allowed: an empty result, not an error.
    let none = bitmap(n, []);
    let (got, _) = ix
        .search_filtered(q, &SearchParams::new(5), &Filter::Allow(&none))
        .unwrap();
    assert!(got.is_empty());
    // Fewer allowed than k: all of them.
    let three = bitmap(n, [3, 300, 499]);
    let (got, st) = ix
        .search_filtered(q, &SearchParams::new(10), &Filter::Allow(&three))
        .unwrap();
    assert_eq!(got.len(), 3);
    assert!(st.exact_scan);
    // The same through a deny map: the planner counts what is left and scans it.
    let deny_all_but_three = bitmap(n, (0..n as u32).filter(|i| ![3, 300, 499].contains(i)));
    let (got, st) = ix
        .search_filtered(
            q,
            &SearchParams::new(10).with_budget(100),
            &Filter::Deny(&deny_all_but_three),
        )
        .unwrap();
    assert_eq!(got.len(), 3);
    assert!(st.exact_scan && st.scored == 3, "{st:?}");
    // Denying a few leaves most: the trees are walked.
    let deny_three = bitmap(n, [3, 300, 499]);
    let (got, st) = ix
        .search_filtered(
            q,
            &SearchParams::new(10).with_budget(100),
            &Filter::Deny(&deny_three),
        )
        .unwrap();
    assert!(!st.exact_scan && got.len() == 10, "{st:?}");
    assert!(got.iter().all(|h| ![3, 300, 499].contains(&h.id)));
    // A bitmap too short for the index is refused, naming the parameter.
    let e = ix
        .search_filtered(q, &SearchParams::new(5), &Filter::Allow(&[0u64; 3]))
        .unwrap_err();
    assert!(e.to_string().contains("filter"), "{e}");
    // Filter::All equals a plain search.
    let p = SearchParams::new(7).with_budget(60);
    assert_eq!(
        ix.search_filtered(q, &p, &Filter::All).unwrap().0,
        ix.search(q, &p).unwrap()
    );
    // Bits beyond the item count are ignored.
    let mut all = bitmap(n, 0..n as u32);
    all[n / 64] |= u64::MAX << (n % 64);
    let (got, _) = ix.search_filtered(q, &p, &Filter::Allow(&all)).unwrap();
    assert_eq!(got, ix.search(q, &p).unwrap());
}

#[test]
fn range_search_returns_what_lies_within_the_radius() {
    let (n, dim) = (3000, 8);
    let data = clustered(n, dim, 3);
    let ix = index(&data, dim, true);
    let q = &data[5 * dim..6 * dim];
    let all = ix.linear_search(q, n).unwrap();
    let radius = all[40].distance;
    let want: Vec<u32> = all
        .iter()
        .filter(|h| h.distance <= radius)
        .map(|h| h.id)
        .collect();
    // Approximate path (graph, budget 200 of 3000): nearly every item within the radius.
    let (got, capped) = ix.range_search(q, radius, 1000, 200).unwrap();
    assert!(!capped);
    assert!(got.iter().all(|h| h.distance <= radius));
    let found = got.iter().filter(|h| want.contains(&h.id)).count();
    assert!(
        found as f64 >= 0.95 * want.len() as f64,
        "{found} of {}",
        want.len()
    );
    // Exact with a budget covering the index; the cap cuts and says so.
    let (got, capped) = ix.range_search(q, radius, 1000, n).unwrap();
    assert_eq!(got.iter().map(|h| h.id).collect::<Vec<_>>(), want);
    assert!(!capped);
    let (got, capped) = ix.range_search(q, radius, 10, n).unwrap();
    assert_eq!(got.len(), 10);
    assert!(capped);
    // Radius 0 finds the query's own row; bad radii are errors.
    let (got, _) = ix.range_search(q, 0.0, 5, 0).unwrap();
    assert_eq!(got[0].id, 5);
    for bad in [-1.0, f32::NAN] {
        let e = ix.range_search(q, bad, 5, 0).unwrap_err();
        assert!(e.to_string().contains("radius"), "{e}");
    }
}

/// The planner's scan rule is about refused items: a bitmap that allows every item
/// walks the graph like no filter, even where a budget this size would scan a filter
/// that refused a few (n = 1000, budget 100: 2 x 100 < 1000 but 1000^2 <= 16 x 100 x 1000).
#[test]
fn a_filter_allowing_everything_walks_like_no_filter() {
    let dim = 8;
    let data = clustered(1000, dim, 5);
    let ix = index(&data, dim, true);
    let q = &data[..dim];
    let p = SearchParams::new(10).with_budget(100);
    let all = bitmap(1000, 0..1000);
    let (hits, stats) = ix.search_filtered(q, &p, &Filter::Allow(&all)).unwrap();
    assert!(!stats.exact_scan, "{stats:?}");
    assert_eq!(hits, ix.search(q, &p).unwrap());
    // One refused item: the filtered walk would score more than the allowed items, so it scans.
    let most = bitmap(1000, (0..1000).filter(|&i| i != 7));
    let (_, stats) = ix.search_filtered(q, &p, &Filter::Allow(&most)).unwrap();
    assert!(stats.exact_scan, "{stats:?}");
}

#[test]
fn selective_bitmaps_on_long_vectors_walk_two_hops_scoring_only_allowed_items() {
    // 1 item in 7 allowed on 256-d vectors: the graph walk steps over refused
    // neighbours to their allowed neighbours, so it scores allowed items only.
    let (n, dim) = (6000, 256);
    let data = clustered(n, dim, 4);
    let ix = index(&data, dim, true);
    let allowed = |i: u32| (i.wrapping_mul(2_654_435_761) >> 9).is_multiple_of(7);
    let ids: Vec<u32> = (0..n as u32).filter(|&i| allowed(i)).collect();
    let count = ids.len();
    assert!(count * 6 <= n && count > 80 * 10, "{count} allowed");
    let bits = bitmap(n, ids.iter().copied());
    let filter = Filter::Allow(&bits);
    let (mut hits, mut total, mut max_scored) = (0, 0, 0);
    for qi in 0..30 {
        let q: Vec<f32> = data[qi * 97 * dim..][..dim]
            .iter()
            .map(|x| x + 0.3)
            .collect();
        let (got, st) = ix
            .search_filtered(&q, &SearchParams::new(10).with_budget(10), &filter)
            .unwrap();
        assert!(
            !st.exact_scan,
            "budget 10 walks ({count} > 80 x 10 allowed)"
        );
        assert!(
            got.iter().all(|h| allowed(h.id)),
            "a refused item came back"
        );
        max_scored = max_scored.max(st.scored);
        let want = exact(&ix, &q, 10, &allowed);
        hits += got.iter().filter(|h| want.contains(&h.id)).count();
        total += want.len();
        // With a budget of 80 x allowed or more the planner scans the allowed items.
        let (all, st) = ix
            .search_filtered(
                &q,
                &SearchParams::new(10).with_budget(count / 80 + 1),
                &filter,
            )
            .unwrap();
        assert!(st.exact_scan && st.scored == count);
        assert_eq!(all.iter().map(|h| h.id).collect::<Vec<_>>(), want);
    }
    let recall = hits as f64 / total as f64;
    eprintln!(
        "two-hop walk: recall@10 {recall:.3}, at most {max_scored} of {count} allowed scored"
    );
    assert!(recall >= 0.9, "recall {recall}");
    // Two hops scored at most 32 items per query here; the one-hop walk, which scores
    // refused neighbours too, 150.
    assert!(max_scored <= 80, "{max_scored} items scored");
}

#[test]
fn short_vectors_keep_the_one_hop_plan() {
    // The same 1-in-7 filter on 16-d vectors: no two-hop walk, so the one-hop planner's
    // rule applies (allowed^2 <= 16 x budget x n: 855^2 < 960,000 at budget 10 scans,
    // where the two-hop rule, allowed <= 80 x budget, would walk).
    let (n, dim) = (6000, 16);
    let data = clustered(n, dim, 4);
    let ix = index(&data, dim, true);
    let allowed = |i: u32| (i.wrapping_mul(2_654_435_761) >> 9).is_multiple_of(7);
    let ids: Vec<u32> = (0..n as u32).filter(|&i| allowed(i)).collect();
    let bits = bitmap(n, ids.iter().copied());
    let q: Vec<f32> = data[..dim].iter().map(|x| x + 0.3).collect();
    let p = SearchParams::new(10).with_budget(10);
    let (_, st) = ix.search_filtered(&q, &p, &Filter::Allow(&bits)).unwrap();
    assert!(
        ids.len() > 800 && ids.len().pow(2) <= 16 * 10 * n,
        "{}",
        ids.len()
    );
    assert!(st.exact_scan, "{st:?}");
}

#[test]
fn a_prepared_allow_list_answers_as_its_bitmap_does_on_both_plans() {
    let (n, dim) = (6000, 16);
    let data = clustered(n, dim, 3);
    let ix = index(&data, dim, true);
    let params = SearchParams::new(10).with_budget(40);
    let mut plans = [false, false];
    for every in [2u32, 10, 100] {
        let allowed = move |i: u32| (i.wrapping_mul(2_654_435_761) >> 7).is_multiple_of(every);
        let bits = bitmap(n, (0..n as u32).filter(|&i| allowed(i)));
        let list = AllowList::from_bits(n, bits.clone()).unwrap();
        assert_eq!(list.len(), (0..n as u32).filter(|&i| allowed(i)).count());
        for qi in 0..20 {
            let q: Vec<f32> = data[qi * 97 * dim..][..dim]
                .iter()
                .map(|x| x - 0.2)
                .collect();
            let want = ix
                .search_filtered(&q, &params, &Filter::Allow(&bits))
                .unwrap();
            let got = ix
                .search_filtered(&q, &params, &Filter::List(&list))
                .unwrap();
            assert_eq!(got, want, "1/{every} allowed, query {qi}");
            plans[want.1.exact_scan as usize] = true;
        }
    }
    assert_eq!(
        plans,
        [true, true],
        "both the walk and the exact scan were compared"
    );
    // A list prepared for another index (a different item count) is refused.
    let other = AllowList::from_ids(n - 1, [0, 1, 2]).unwrap();
    let err = ix
        .search_filtered(&data[..dim], &params, &Filter::List(&other))
        .unwrap_err();
    assert!(err.to_string().contains("prepared for 5999 items"), "{err}");
}
