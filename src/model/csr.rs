//! Compressed sparse row (CSR) matrix of `f32` values with `u32` column indices:
//! the user × item interaction matrix handed to ALS, its item × user transpose,
//! and the "already seen" exclusion lists used when recommending.
//!
//! Invariants of a matrix built by [`Csr::from_triplets`] or [`Csr::transpose`]:
//! `indptr.len() == n_rows + 1`, `indptr[0] == 0`, `indptr` non-decreasing,
//! `indptr[n_rows] == indices.len() == values.len()`, every column index
//! `< n_cols`, and column indices strictly increasing within a row (no
//! duplicates). The fields are public so callers can build or inspect a matrix
//! directly; [`Csr::validate`] re-checks the invariants for such matrices.

use anyhow::{bail, ensure, Result};

/// A sparse matrix in compressed sparse row form.
#[derive(Clone, Debug, PartialEq)]
pub struct Csr {
    pub n_rows: usize,
    pub n_cols: usize,
    /// Row `r` occupies `indices[indptr[r]..indptr[r + 1]]` (and the same range of `values`).
    pub indptr: Vec<usize>,
    /// Column index of each stored entry, ascending within a row.
    pub indices: Vec<u32>,
    /// Value of each stored entry.
    pub values: Vec<f32>,
}

impl Csr {
    /// Builds a matrix from coordinate triplets `(rows[k], cols[k], values[k])`.
    ///
    /// Column indices come out sorted within each row and duplicate
    /// coordinates are summed (in input order, so the result is reproducible
    /// bit for bit). Errors if the three slices differ in length, if a row or
    /// column index is out of range, or if `n_cols` does not fit the `u32`
    /// column index type.
    ///
    /// Runs in O(nnz + n_rows + n_cols) with two stable counting-sort passes
    /// (by column, then by row) instead of a comparison sort, which matters for
    /// interaction tables with tens of millions of rows.
    pub fn from_triplets(
        n_rows: usize,
        n_cols: usize,
        rows: &[u32],
        cols: &[u32],
        values: &[f32],
    ) -> Result<Csr> {
        ensure!(
            rows.len() == cols.len() && rows.len() == values.len(),
            "triplet slices differ in length: {} rows, {} cols, {} values",
            rows.len(),
            cols.len(),
            values.len()
        );
        ensure!(
            n_cols <= u32::MAX as usize + 1,
            "n_cols = {n_cols} does not fit a u32 column index"
        );
        for (k, (&r, &c)) in rows.iter().zip(cols).enumerate() {
            if r as usize >= n_rows {
                bail!("triplet {k}: row index {r} out of range (n_rows = {n_rows})");
            }
            if c as usize >= n_cols {
                bail!("triplet {k}: column index {c} out of range (n_cols = {n_cols})");
            }
        }
        let nnz_in = rows.len();
        // Triplets already in (row, column) order (the trainer's pairs are
        // sorted): the counting sorts would give back the input order, so
        // the compaction runs over it directly.
        if rows
            .windows(2)
            .zip(cols.windows(2))
            .all(|(r, c)| (r[0], c[0]) <= (r[1], c[1]))
        {
            return Ok(Self::compacted(
                n_rows,
                n_cols,
                rows,
                cols,
                values,
                0..nnz_in,
            ));
        }

        // Pass 1: stable counting sort of triplet positions by column.
        let by_col = counting_sort_positions(cols, n_cols, 0..nnz_in);
        // Pass 2: stable counting sort of that order by row; stability keeps
        // columns ascending within a row and duplicates in input order.
        let row_ptr = bucket_offsets(rows, n_rows);
        let mut next = row_ptr.clone();
        let mut order = vec![0usize; nnz_in];
        for &k in &by_col {
            let r = rows[k] as usize;
            order[next[r]] = k;
            next[r] += 1;
        }
        Ok(Self::compacted(
            n_rows,
            n_cols,
            rows,
            cols,
            values,
            order.into_iter(),
        ))
    }

    /// The matrix of entries already in CSR order: row `r`'s columns are
    /// `indices[indptr[r]..indptr[r + 1]]`, strictly increasing, with their
    /// `values`. Takes the vectors as they are (no copy: the trainer builds
    /// them straight from its sorted pairs, at 8 bytes per entry) and checks
    /// the invariants ([`Csr::validate`]); it is then the matrix
    /// [`Csr::from_triplets`] makes of the same entries.
    pub fn from_sorted_parts(
        n_rows: usize,
        n_cols: usize,
        indptr: Vec<usize>,
        indices: Vec<u32>,
        values: Vec<f32>,
    ) -> Result<Csr> {
        ensure!(
            n_cols <= u32::MAX as usize + 1,
            "n_cols = {n_cols} does not fit a u32 column index"
        );
        ensure!(
            indptr.len() == n_rows + 1 && indptr.windows(2).all(|w| w[0] <= w[1]),
            "indptr has {} entries or decreases; expected n_rows + 1 = {} non-decreasing offsets",
            indptr.len(),
            n_rows + 1
        );
        let matrix = Csr {
            n_rows,
            n_cols,
            indptr,
            indices,
            values,
        };
        matrix.validate()?;
        Ok(matrix)
    }

    /// The matrix of the triplets visited in `order`, which is (row, column)
    /// order: runs of equal (row, column) summed in visiting order.
    fn compacted(
        n_rows: usize,
        n_cols: usize,
        rows: &[u32],
        cols: &[u32],
        values: &[f32],
        order: impl Iterator<Item = usize>,
    ) -> Csr {
        let mut indptr = Vec::with_capacity(n_rows + 1);
        let mut indices: Vec<u32> = Vec::with_capacity(rows.len());
        let mut out_values: Vec<f32> = Vec::with_capacity(rows.len());
        indptr.push(0);
        let mut last: Option<(u32, u32)> = None;
        for k in order {
            let (r, c) = (rows[k], cols[k]);
            if last == Some((r, c)) {
                *out_values.last_mut().unwrap() += values[k];
                continue;
            }
            // Rows before r (and empty ones) end here.
            while indptr.len() <= r as usize {
                indptr.push(indices.len());
            }
            indices.push(c);
            out_values.push(values[k]);
            last = Some((r, c));
        }
        while indptr.len() <= n_rows {
            indptr.push(indices.len());
        }
        Csr {
            n_rows,
            n_cols,
            indptr,
            indices,
            values: out_values,
        }
    }

    /// The n_cols × n_rows transpose, with sorted indices within each row.
    pub fn transpose(&self) -> Csr {
        let nnz = self.nnz();
        let indptr = bucket_offsets(&self.indices, self.n_cols);
        let mut next = indptr.clone();
        let mut indices = vec![0u32; nnz];
        let mut values = vec![0f32; nnz];
        // Visiting rows in ascending order makes each output row's indices ascending.
        for r in 0..self.n_rows {
            let (cols, vals) = self.row(r);
            for (&c, &v) in cols.iter().zip(vals) {
                let slot = &mut next[c as usize];
                indices[*slot] = r as u32;
                values[*slot] = v;
                *slot += 1;
            }
        }
        Csr {
            n_rows: self.n_cols,
            n_cols: self.n_rows,
            indptr,
            indices,
            values,
        }
    }

    /// Column indices and values of row `r`. Panics if `r >= n_rows`.
    #[inline]
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let range = self.indptr[r]..self.indptr[r + 1];
        (&self.indices[range.clone()], &self.values[range])
    }

    /// Number of stored entries.
    #[inline]
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Checks the structural invariants listed in the module documentation,
    /// for matrices assembled by hand through the public fields.
    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.indptr.len() == self.n_rows + 1,
            "indptr has {} entries, expected n_rows + 1 = {}",
            self.indptr.len(),
            self.n_rows + 1
        );
        ensure!(
            self.indptr[0] == 0,
            "indptr[0] is {}, expected 0",
            self.indptr[0]
        );
        ensure!(
            self.indices.len() == self.values.len(),
            "{} column indices but {} values",
            self.indices.len(),
            self.values.len()
        );
        ensure!(
            self.indptr[self.n_rows] == self.indices.len(),
            "indptr ends at {} but there are {} entries",
            self.indptr[self.n_rows],
            self.indices.len()
        );
        for r in 0..self.n_rows {
            ensure!(
                self.indptr[r] <= self.indptr[r + 1] && self.indptr[r + 1] <= self.indices.len(),
                "indptr decreases or overruns the entries at row {r}"
            );
            let (cols, _) = self.row(r);
            for (k, &c) in cols.iter().enumerate() {
                ensure!(
                    (c as usize) < self.n_cols,
                    "row {r}: column index {c} out of range (n_cols = {})",
                    self.n_cols
                );
                ensure!(
                    k == 0 || cols[k - 1] < c,
                    "row {r}: column indices not strictly increasing"
                );
            }
        }
        Ok(())
    }
}

/// Start offset of each bucket (plus the total at the end) for the keys.
fn bucket_offsets(keys: &[u32], n_buckets: usize) -> Vec<usize> {
    let mut offsets = vec![0usize; n_buckets + 1];
    for &k in keys {
        offsets[k as usize + 1] += 1;
    }
    for b in 0..n_buckets {
        offsets[b + 1] += offsets[b];
    }
    offsets
}

/// Positions `order` stably sorted by `keys[position]`.
fn counting_sort_positions(
    keys: &[u32],
    n_buckets: usize,
    order: impl Iterator<Item = usize>,
) -> Vec<usize> {
    let mut next = bucket_offsets(keys, n_buckets);
    let mut sorted = vec![0usize; keys.len()];
    for k in order {
        let slot = &mut next[keys[k] as usize];
        sorted[*slot] = k;
        *slot += 1;
    }
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 3 × 4 matrix
    /// ```text
    /// [ 0  2  0  1 ]
    /// [ 0  0  0  0 ]
    /// [ 5  0  3  0 ]
    /// ```
    /// given in scrambled order with (0,1) split into 1.5 + 0.5.
    fn example() -> Csr {
        Csr::from_triplets(
            3,
            4,
            &[2, 0, 0, 2, 0],
            &[2, 3, 1, 0, 1],
            &[3.0, 1.0, 1.5, 5.0, 0.5],
        )
        .unwrap()
    }

    #[test]
    fn from_triplets_sorts_and_sums_duplicates() {
        let m = example();
        assert_eq!(m.n_rows, 3);
        assert_eq!(m.n_cols, 4);
        assert_eq!(m.indptr, vec![0, 2, 2, 4]);
        assert_eq!(m.indices, vec![1, 3, 0, 2]);
        assert_eq!(m.values, vec![2.0, 1.0, 5.0, 3.0]);
        assert_eq!(m.nnz(), 4);
        assert_eq!(m.row(0), (&[1u32, 3][..], &[2.0f32, 1.0][..]));
        assert_eq!(m.row(1), (&[][..], &[][..]));
        assert_eq!(m.row(2), (&[0u32, 2][..], &[5.0f32, 3.0][..]));
        m.validate().unwrap();
    }

    #[test]
    fn duplicates_are_summed_in_input_order() {
        // 1e8 + 1 - 1e8 in f32: left to right gives 0 (1 is absorbed), which
        // shows the summation order is the input order.
        let m = Csr::from_triplets(1, 1, &[0, 0, 0], &[0, 0, 0], &[1e8, 1.0, -1e8]).unwrap();
        assert_eq!(m.values, vec![0.0]);
        let m = Csr::from_triplets(1, 1, &[0, 0, 0], &[0, 0, 0], &[1e8, -1e8, 1.0]).unwrap();
        assert_eq!(m.values, vec![1.0]);
    }

    #[test]
    fn sorted_triplets_give_the_matrix_of_any_order() {
        // Empty first, middle and last rows, a duplicate, a row of one:
        // the (row, column)-ordered input (built directly) and the same
        // triplets reversed (through both counting sorts) agree exactly.
        let (rows, cols, vals) = (
            vec![1u32, 1, 1, 3, 3, 4],
            vec![0u32, 2, 2, 1, 3, 0],
            vec![1.0f32, 2.0, 0.5, 3.0, 4.0, 5.0],
        );
        let sorted = Csr::from_triplets(6, 4, &rows, &cols, &vals).unwrap();
        assert_eq!(sorted.indptr, vec![0, 0, 2, 2, 4, 5, 5]);
        assert_eq!(sorted.indices, vec![0, 2, 1, 3, 0]);
        assert_eq!(sorted.values, vec![1.0, 2.5, 3.0, 4.0, 5.0]);
        sorted.validate().unwrap();
        let reversed = |v: &[u32]| v.iter().rev().copied().collect::<Vec<u32>>();
        let mut rev_vals = vals.clone();
        rev_vals.reverse();
        let shuffled =
            Csr::from_triplets(6, 4, &reversed(&rows), &reversed(&cols), &rev_vals).unwrap();
        // The duplicate sums as 0.5 + 2.0 there: same value, other order.
        assert_eq!(shuffled, sorted);
    }

    #[test]
    fn sorted_parts_equal_the_triplets_matrix_on_random_data() {
        // Random triplets with duplicates: the triplet path (counting sorts,
        // duplicates summed in input order) gives a matrix; its own parts,
        // handed back as sorted parts, give the same matrix bit for bit.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        for (n_rows, n_cols, nnz) in [(1, 1, 5), (7, 3, 40), (50, 80, 2000), (300, 20, 5000)] {
            let rows: Vec<u32> = (0..nnz).map(|_| next(n_rows) as u32).collect();
            let cols: Vec<u32> = (0..nnz).map(|_| next(n_cols) as u32).collect();
            let vals: Vec<f32> = (0..nnz).map(|_| next(1000) as f32 / 7.0).collect();
            let (n_rows, n_cols) = (n_rows as usize, n_cols as usize);
            let m = Csr::from_triplets(n_rows, n_cols, &rows, &cols, &vals).unwrap();
            assert!(
                m.nnz() < nnz as usize || nnz < 10,
                "the data has duplicates"
            );
            let rebuilt = Csr::from_sorted_parts(
                n_rows,
                n_cols,
                m.indptr.clone(),
                m.indices.clone(),
                m.values.clone(),
            )
            .unwrap();
            assert_eq!(rebuilt, m);
            // Each duplicate is the input-order sum of its triplets.
            for r in 0..n_rows {
                let (c, v) = m.row(r);
                for (&c, &v) in c.iter().zip(v) {
                    let sum = (0..nnz as usize)
                        .filter(|&k| rows[k] as usize == r && cols[k] == c)
                        .fold(0f32, |acc, k| acc + vals[k]);
                    assert_eq!(v.to_bits(), sum.to_bits());
                }
            }
        }
    }

    #[test]
    fn sorted_parts_reject_broken_structure() {
        let e = Csr::from_sorted_parts(2, 3, vec![0, 2], vec![0, 1], vec![1.0, 1.0])
            .unwrap_err()
            .to_string();
        assert!(e.contains("n_rows + 1 = 3"), "{e}");
        let e = Csr::from_sorted_parts(2, 3, vec![0, 2, 1], vec![0, 1], vec![1.0, 1.0])
            .unwrap_err()
            .to_string();
        assert!(e.contains("decreases"), "{e}");
        let e = Csr::from_sorted_parts(1, 3, vec![0, 2], vec![1, 1], vec![1.0, 1.0])
            .unwrap_err()
            .to_string();
        assert!(e.contains("strictly increasing"), "{e}");
        let e = Csr::from_sorted_parts(1, 3, vec![0, 1], vec![3], vec![1.0])
            .unwrap_err()
            .to_string();
        assert!(e.contains("out of range"), "{e}");
    }

    #[test]
    fn transpose_of_example() {
        let t = example().transpose();
        // [ 0 0 5 ]
        // [ 2 0 0 ]
        // [ 0 0 3 ]
        // [ 1 0 0 ]
        assert_eq!(t.n_rows, 4);
        assert_eq!(t.n_cols, 3);
        assert_eq!(t.indptr, vec![0, 1, 2, 3, 4]);
        assert_eq!(t.indices, vec![2, 0, 2, 0]);
        assert_eq!(t.values, vec![5.0, 2.0, 3.0, 1.0]);
        t.validate().unwrap();
        assert_eq!(t.transpose(), example());
    }

    #[test]
    fn transpose_sorts_indices_with_many_rows() {
        let rows: Vec<u32> = (0..50).rev().collect();
        let cols = vec![0u32; 50];
        let vals: Vec<f32> = (0..50).map(|v| v as f32).collect();
        let t = Csr::from_triplets(50, 1, &rows, &cols, &vals)
            .unwrap()
            .transpose();
        assert_eq!(t.indices, (0..50).collect::<Vec<u32>>());
        assert_eq!(
            t.values,
            (0..50).rev().map(|v| v as f32).collect::<Vec<f32>>()
        );
    }

    #[test]
    fn empty_shapes() {
        let m = Csr::from_triplets(0, 0, &[], &[], &[]).unwrap();
        assert_eq!(m.indptr, vec![0]);
        assert_eq!(m.nnz(), 0);
        let t = Csr::from_triplets(2, 0, &[], &[], &[]).unwrap().transpose();
        assert_eq!((t.n_rows, t.n_cols, t.indptr.clone()), (0, 2, vec![0]));
    }

    #[test]
    fn out_of_range_and_length_errors() {
        let e = Csr::from_triplets(2, 2, &[2], &[0], &[1.0])
            .unwrap_err()
            .to_string();
        assert!(e.contains("row index 2 out of range"), "{e}");
        let e = Csr::from_triplets(2, 2, &[0], &[5], &[1.0])
            .unwrap_err()
            .to_string();
        assert!(e.contains("column index 5 out of range"), "{e}");
        let e = Csr::from_triplets(2, 2, &[0, 1], &[0], &[1.0])
            .unwrap_err()
            .to_string();
        assert!(e.contains("differ in length"), "{e}");
    }

    #[test]
    fn validate_rejects_broken_structure() {
        let mut m = example();
        m.indices.swap(0, 1);
        assert!(m
            .validate()
            .unwrap_err()
            .to_string()
            .contains("strictly increasing"));
        let mut m = example();
        m.indptr[3] = 3;
        assert!(m.validate().is_err());
        let mut m = example();
        m.indices[0] = 9;
        assert!(m
            .validate()
            .unwrap_err()
            .to_string()
            .contains("out of range"));
    }
}
