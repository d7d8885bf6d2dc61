//! Item-to-item similarity of factor rows.

use super::heap::top_k;

/// The `k` items most similar to `item` by cosine similarity of their
/// factor rows, excluding `item` itself. Items with an all-zero factor row
/// have similarity 0 to everything (no NaN). An out-of-range `item` gives an
/// empty list.
pub fn similar_items(item_factors: &[f32], factors: usize, item: u32, k: usize) -> Vec<(u32, f32)> {
    let f = factors;
    assert!(f > 0, "factors must be > 0");
    assert_eq!(
        item_factors.len() % f,
        0,
        "item_factors length is not a multiple of factors"
    );
    let n_items = item_factors.len() / f;
    if item as usize >= n_items || k == 0 {
        return Vec::new();
    }
    let row = |i: usize| &item_factors[i * f..(i + 1) * f];
    let norm = |v: &[f32]| v.iter().map(|a| a * a).sum::<f32>().sqrt();
    let query = row(item as usize);
    let query_norm = norm(query);
    let similarities: Vec<f32> = (0..n_items)
        .map(|i| {
            let other = row(i);
            let denominator = query_norm * norm(other);
            if denominator > 0.0 {
                query.iter().zip(other).map(|(a, b)| a * b).sum::<f32>() / denominator
            } else {
                0.0
            }
        })
        .collect();
    top_k(&similarities, k, |i| i == item)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_items_by_cosine() {
        // f = 2. Items: 0 = (1, 0), 1 = (2, 0.1), 2 = (0, 1), 3 = (-1, 0), 4 = (0, 0).
        // cos(0, 1) = 2/√4.01 ≈ 0.99875, cos(0, 2) = 0, cos(0, 3) = −1, cos(0, 4) := 0.
        let itf = [1.0, 0.0, 2.0, 0.1, 0.0, 1.0, -1.0, 0.0, 0.0, 0.0];
        let sims = similar_items(&itf, 2, 0, 10);
        let ids: Vec<u32> = sims.iter().map(|s| s.0).collect();
        assert_eq!(ids, vec![1, 2, 4, 3]);
        assert!((sims[0].1 - 2.0 / 4.01f32.sqrt()).abs() < 1e-6);
        assert_eq!((sims[1].1, sims[2].1, sims[3].1), (0.0, 0.0, -1.0));
        assert_eq!(similar_items(&itf, 2, 0, 1), vec![sims[0]]);
        // The zero item: all similarities 0, ties by index, itself excluded.
        assert_eq!(similar_items(&itf, 2, 4, 2), vec![(0, 0.0), (1, 0.0)]);
        assert_eq!(similar_items(&itf, 2, 9, 3), vec![]);
        assert_eq!(similar_items(&itf, 2, 1, 0), vec![]);
    }
}
