//! The order a graph build runs in.
//!
//! NN-descent compares every point with its neighbours' neighbours: reads of rows
//! scattered over the whole data set. In the first tree's leaf order, near items sit
//! at near positions, so the rounds run over positions in that order, on codes copied
//! (or moved) into it: a point's candidates are mostly the rows its predecessors just
//! read, still in cache. The exact rescoring and the pruning run in that order too
//! (reading the f32 rows where they are: consecutive positions share neighbours), and
//! the finished graph is mapped back to item ids. At 1M x 128 (rows in random order)
//! this halved the rounds' time; data already stored in a near-neighbour order gains
//! little.

use super::CodesIn;
use crate::build::ForestRef;
use crate::layout::LEAF_FLAG;
use crate::quant::{Codes, OwnedCodes};
use rayon::prelude::*;

/// A permutation of the items: position `i` holds item `perm[i]`, item `v` sits at
/// position `pos[v]`.
pub(crate) struct Order {
    pub(crate) perm: Vec<u32>,
    pub(crate) pos: Vec<u32>,
}

impl Order {
    /// The first tree's leaves left to right, when they hold each of the `n` items
    /// exactly once (always, for a forest built here; otherwise, or when the memory
    /// cannot be had, `None`: the build then runs in id order).
    pub(crate) fn of_first_tree(f: &ForestRef<'_>, n: usize) -> Option<Order> {
        let mut perm = Vec::new();
        perm.try_reserve_exact(n).ok()?;
        let mut pos = Vec::new();
        pos.try_reserve_exact(n).ok()?;
        pos.resize(n, u32::MAX);
        let mut stack = vec![*f.roots.first()?];
        // A forest that passed validation has no cycles; a bound keeps a damaged one
        // from looping.
        let mut visits = f.nodes.len() + f.leaf_offsets.len() + 1;
        while let Some(c) = stack.pop() {
            visits = visits.checked_sub(1)?;
            if c & LEAF_FLAG != 0 {
                let l = (c & !LEAF_FLAG) as usize;
                let (a, b) = (*f.leaf_offsets.get(l)?, *f.leaf_offsets.get(l + 1)?);
                for &id in f.leaf_ids.get(a as usize..b as usize)? {
                    let slot = pos.get_mut(id as usize)?;
                    if *slot != u32::MAX {
                        return None;
                    }
                    *slot = perm.len() as u32;
                    perm.push(id);
                }
            } else {
                let node = f.nodes.get(c as usize)?;
                stack.extend([node.right, node.left]);
            }
        }
        (perm.len() == n).then_some(Order { perm, pos })
    }

    /// True when every item is at its own position (nothing to move).
    pub(crate) fn is_identity(&self) -> bool {
        self.perm.iter().enumerate().all(|(i, &v)| i == v as usize)
    }

    /// Moves the rows of `items` (rows of `stride` values, one per item) into this
    /// order, in place.
    pub(crate) fn place<T: Copy + Default>(&self, items: &mut [T], stride: usize) {
        move_rows(items, stride.max(1), &self.pos);
    }

    /// `codes` (rows of `stride` bytes) in this order: moved in place when owned,
    /// else copied; given back unchanged when the copy's memory cannot be had.
    pub(super) fn arrange<'a>(
        &self,
        codes: CodesIn<'a>,
        stride: usize,
    ) -> Result<OwnedCodes, CodesIn<'a>> {
        match codes {
            CodesIn::Owned(mut c) => {
                move_rows(&mut c.codes, stride, &self.pos);
                move_rows(&mut c.aux, 1, &self.pos);
                Ok(c)
            }
            CodesIn::Borrowed(c) => self.copy(&c, stride).ok_or(CodesIn::Borrowed(c)),
        }
    }

    fn copy(&self, c: &Codes<'_>, stride: usize) -> Option<OwnedCodes> {
        let mut codes = Vec::new();
        codes.try_reserve_exact(self.perm.len() * stride).ok()?;
        codes.resize(self.perm.len() * stride, 0);
        codes
            .par_chunks_mut(stride.max(1))
            .zip(self.perm.par_iter())
            .for_each(|(row, &v)| {
                row.copy_from_slice(&c.codes[v as usize * stride..][..stride]);
            });
        Some(OwnedCodes {
            codes,
            lo: c.lo.to_vec(),
            step: c.step.to_vec(),
            aux: self.perm.iter().map(|&v| c.aux[v as usize]).collect(),
        })
    }

    /// A graph over positions (a row per position, entries naming positions, padded
    /// with `u32::MAX`) as a graph over items: row `u` moves to row `perm[u]`, an
    /// entry `v` becomes `perm[v]`.
    pub(super) fn graph_to_items(&self, graph: &mut [u32], degree: usize) {
        let perm = &self.perm;
        graph.par_iter_mut().for_each(|v| {
            if *v != u32::MAX {
                *v = perm[*v as usize];
            }
        });
        move_rows(graph, degree.max(1), perm);
    }
}

/// Moves row `u` of `items` (rows of `stride` values) to row `to[u]`, in place (`to`
/// is a permutation of the rows): each cycle of the permutation is followed once,
/// carrying one row.
fn move_rows<T: Copy + Default>(items: &mut [T], stride: usize, to: &[u32]) {
    let mut done = vec![false; to.len()];
    let mut carry = vec![T::default(); stride];
    for s in 0..to.len() {
        if done[s] {
            continue;
        }
        carry.copy_from_slice(&items[s * stride..(s + 1) * stride]);
        let mut d = to[s] as usize;
        loop {
            items[d * stride..(d + 1) * stride].swap_with_slice(&mut carry);
            done[d] = true;
            if d == s {
                break;
            }
            d = to[d] as usize;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Node;

    /// Tree 0: a root whose left child is a node over leaves 0 and 1, right child
    /// leaf 2; tree 1: one leaf. Items 0..6.
    fn forest<'a>(nodes: &'a [Node], leaf_ids: &'a [u32]) -> ForestRef<'a> {
        const OFFSETS: [u32; 5] = [0, 2, 4, 6, 12];
        ForestRef {
            nodes,
            roots: &[0, LEAF_FLAG | 3],
            leaf_offsets: &OFFSETS,
            leaf_ids,
        }
    }

    fn nodes() -> [Node; 2] {
        let node = |left, right| Node {
            proj: 0,
            offset: 0.0,
            left,
            right,
        };
        [node(1, LEAF_FLAG | 2), node(LEAF_FLAG, LEAF_FLAG | 1)]
    }

    #[test]
    fn the_order_is_the_first_trees_leaves_left_to_right() {
        let nodes = nodes();
        let ids = [4, 1, 5, 0, 3, 2, 0, 1, 2, 3, 4, 5];
        let o = Order::of_first_tree(&forest(&nodes, &ids), 6).unwrap();
        assert_eq!(o.perm, [4, 1, 5, 0, 3, 2]);
        for (i, &v) in o.perm.iter().enumerate() {
            assert_eq!(o.pos[v as usize], i as u32);
        }
        // An item twice (and one missing), an id out of range, or a forest over
        // fewer items: no order (the build runs in id order).
        let twice = [4, 1, 5, 0, 3, 4, 0, 1, 2, 3, 4, 5];
        assert!(Order::of_first_tree(&forest(&nodes, &twice), 6).is_none());
        let beyond = [4, 1, 5, 0, 3, 6, 0, 1, 2, 3, 4, 5];
        assert!(Order::of_first_tree(&forest(&nodes, &beyond), 6).is_none());
        assert!(Order::of_first_tree(&forest(&nodes, &ids), 7).is_none());
    }

    #[test]
    fn seeds_in_an_order_list_the_positions_of_leaf_mates() {
        let nodes = nodes();
        let ids = [4, 1, 5, 0, 3, 2, 0, 1, 2, 3, 4, 5];
        let f = forest(&nodes, &ids);
        let o = Order::of_first_tree(&f, 6).unwrap();
        // Item v is the one-dimensional point 10 v (rows padded to 16 floats).
        let stride = crate::layout::padded_dim(1);
        let mut vectors = vec![0f32; 6 * stride];
        for v in 0..6 {
            vectors[v * stride] = 10.0 * v as f32;
        }
        let sp = super::super::Space {
            vectors: &vectors,
            stride,
            metric: crate::Metric::Euclidean,
            codes: None,
            order: Some(&o.perm),
        };
        let lists = super::super::seed_lists(&sp, &f, 6, 5, 1, Some(&o.pos), &mut Vec::new());
        // Tree 0's leaves are {4, 1}, {5, 0}, {3, 2}: positions 0-1, 2-3, 4-5.
        for u in 0..6usize {
            let mate = (u ^ 1) as u32;
            let (a, b) = (o.perm[u] as f32, o.perm[mate as usize] as f32);
            let row: Vec<(f32, u32)> = lists.row(u).iter().map(|e| (e.d, e.id())).collect();
            assert_eq!(row, [(10.0 * (a - b).abs(), mate)], "position {u}");
        }
    }

    #[test]
    fn a_graph_over_positions_comes_back_over_items() {
        let nodes = nodes();
        let ids = [4, 1, 5, 0, 3, 2, 0, 1, 2, 3, 4, 5];
        let o = Order::of_first_tree(&forest(&nodes, &ids), 6).unwrap();
        // Position u links to positions u+1 and u+2 (those that exist), padded.
        const NONE: u32 = u32::MAX;
        let row = |u: u32| [u + 1, u + 2].map(|v| if v < 6 { v } else { NONE });
        let mut graph: Vec<u32> = (0..6).flat_map(row).collect();
        o.graph_to_items(&mut graph, 2);
        for u in 0..6u32 {
            let item = o.perm[u as usize] as usize;
            let want = row(u).map(|v| if v == NONE { NONE } else { o.perm[v as usize] });
            assert_eq!(
                graph[item * 2..item * 2 + 2],
                want,
                "position {u}, item {item}"
            );
        }
    }

    #[test]
    fn moving_rows_puts_each_row_where_the_permutation_says() {
        // Two cycles (0 -> 2 -> 3 -> 0, 1 -> 4 -> 1) and a fixed point (5).
        let to = [2u32, 4, 3, 0, 1, 5];
        let rows: Vec<u16> = (0..6).flat_map(|u| [u * 10, u * 10 + 1]).collect();
        let mut moved = rows.clone();
        move_rows(&mut moved, 2, &to);
        for (u, &t) in to.iter().enumerate() {
            assert_eq!(moved[t as usize * 2..][..2], rows[u * 2..][..2], "row {u}");
        }
    }
}
