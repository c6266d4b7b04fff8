//! `ndarray` support (feature `ndarray`): add rows from and search with `ArrayView2<f32>`.
//!
//! ```
//! use ndarray::Array2;
//! use panns_core::{BuildParams, IndexBuilder, Metric, SearchParams};
//! let data = Array2::from_shape_fn((200, 4), |(i, j)| (i * 4 + j) as f32);
//! let mut b = IndexBuilder::new(4, Metric::Euclidean).unwrap();
//! b.add_array(data.view()).unwrap();
//! let index = b.build(&BuildParams::default()).unwrap();
//! let (ids, dists) = index.search_array(data.view(), &SearchParams::new(3)).unwrap();
//! assert_eq!(ids.shape(), &[200, 3]);
//! assert_eq!(ids[[17, 0]], 17);
//! assert_eq!(dists[[17, 0]], 0.0);
//! ```

use crate::{Error, Index, IndexBuilder, Result, SearchParams};
use ndarray::{Array2, ArrayView2};
use std::borrow::Cow;

/// The rows of `a` as one row-major slice: borrowed when `a` is in standard (C) layout,
/// copied otherwise (a transposed or strided view).
fn row_major<'a>(a: &'a ArrayView2<'_, f32>, dim: usize) -> Result<Cow<'a, [f32]>> {
    if a.ncols() != dim {
        return Err(Error::DimensionMismatch {
            expected: dim,
            got: a.ncols(),
        });
    }
    Ok(match a.as_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(a.iter().copied().collect()),
    })
}

impl IndexBuilder {
    /// Adds the rows of an `n x dim` array (any layout; C order is read in place). All
    /// rows are added, or none.
    pub fn add_array(&mut self, rows: ArrayView2<'_, f32>) -> Result<std::ops::Range<u32>> {
        let data = row_major(&rows, self.dim())?;
        self.add_batch(&data)
    }
}

impl Index {
    /// Searches every row of an `n x dim` array in parallel; returns `n x min(k, len)`
    /// arrays of ids and distances, nearest first (so an absurd `k` never allocates
    /// more than the index could return).
    pub fn search_array(
        &self,
        queries: ArrayView2<'_, f32>,
        params: &SearchParams,
    ) -> Result<(Array2<u32>, Array2<f32>)> {
        let data = row_major(&queries, self.dim())?;
        if params.k == 0 {
            return Err(Error::InvalidK(0));
        }
        let (n, k) = (queries.nrows(), params.k.min(self.len()));
        let params = &SearchParams { k, ..*params };
        let cells = n.checked_mul(k).ok_or(Error::parameter(
            "k",
            k,
            "n_queries * k does not fit in memory",
        ))?;
        let mut ids = Vec::new();
        let mut dists = Vec::new();
        ids.try_reserve_exact(cells)
            .and_then(|_| dists.try_reserve_exact(cells))
            .map_err(|_| Error::OutOfMemory {
                what: "search results",
                bytes: cells.saturating_mul(8),
            })?;
        ids.resize(cells, 0u32);
        dists.resize(cells, 0f32);
        self.search_batch_into(&data, params, &mut ids, Some(&mut dists))?;
        let shape = (n, k);
        let ids = Array2::from_shape_vec(shape, ids).expect("n * k ids");
        let dists = Array2::from_shape_vec(shape, dists).expect("n * k distances");
        Ok((ids, dists))
    }
}

#[cfg(test)]
mod tests {
    use crate::{BuildParams, IndexBuilder, Metric, SearchParams};
    use ndarray::Array2;

    #[test]
    fn any_layout_in_and_clamped_arrays_out() {
        let data =
            Array2::from_shape_fn((300, 6), |(i, j)| ((i * 7 + j * 3) % 11) as f32 + i as f32);
        let mut b = IndexBuilder::new(6, Metric::Euclidean).unwrap();
        // A transposed copy viewed back: not C-contiguous, read by value.
        let t = data.t().to_owned();
        b.add_array(t.t()).unwrap();
        let ix = b.build(&BuildParams::default()).unwrap();
        assert_eq!(ix.vector(5).unwrap(), data.row(5).as_slice().unwrap());
        let (ids, d) = ix
            .search_array(data.view(), &SearchParams::new(usize::MAX))
            .unwrap();
        assert_eq!(ids.shape(), &[300, 300]);
        for i in 0..300 {
            assert_eq!(ids[[i, 0]], i as u32);
            assert_eq!(d[[i, 0]], 0.0);
            let one = ix
                .search(data.row(i).as_slice().unwrap(), &SearchParams::new(300))
                .unwrap();
            assert_eq!(
                ids.row(i).to_vec(),
                one.iter().map(|h| h.id).collect::<Vec<_>>()
            );
        }
        let wrong = Array2::<f32>::zeros((2, 5));
        assert!(
            ix.search_array(wrong.view(), &SearchParams::new(1))
                .is_err()
        );
    }
}
