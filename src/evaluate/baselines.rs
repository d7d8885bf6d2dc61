//! The simple session recommenders the next-click evaluation reports beside
//! ecoreco's lists (Ludewig & Jannach, "Evaluation of session-based
//! recommendation algorithms", 2018): session-kNN here; association rules
//! and sequential rules are the item-to-item kernel's lists of the last
//! product ([`crate::covisit::kernel`]).
//!
//! **SKNN**: the past sessions that share a product with the current one,
//! the `sample` most recent of them, the `neighbours` most similar by
//! cosine on product sets (|S ∩ T| / sqrt(|S| |T|)); a product scores the
//! sum of the similarities of the neighbour sessions that hold it.

use crate::covisit::Sessions;

/// Past sessions as product sets, with the sessions of each product.
pub struct SessionIndex {
    /// Each session's distinct products, sorted.
    sets: Vec<Vec<u32>>,
    /// Each product's sessions, most recent first.
    by_product: Vec<Vec<u32>>,
    /// Each session's rank by recency (0: the most recent).
    recency: Vec<u32>,
}

impl SessionIndex {
    pub fn new(sessions: &Sessions) -> Self {
        let n = sessions.len();
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_by(|&a, &b| {
            sessions.ends[b as usize]
                .total_cmp(&sessions.ends[a as usize])
                .then(a.cmp(&b))
        });
        let mut recency = vec![0u32; n];
        for (r, &s) in order.iter().enumerate() {
            recency[s as usize] = r as u32;
        }
        let sets: Vec<Vec<u32>> = (0..n)
            .map(|s| {
                let mut set = sessions.session(s).to_vec();
                set.sort_unstable();
                set.dedup();
                set
            })
            .collect();
        let mut by_product = vec![Vec::new(); sessions.product_ids.len()];
        for &s in &order {
            for &p in &sets[s as usize] {
                by_product[p as usize].push(s);
            }
        }
        SessionIndex {
            sets,
            by_product,
            recency,
        }
    }

    /// The `k` best products for a session of `products` (known products,
    /// any order), best first (ties: the smaller index).
    pub fn sknn(&self, products: &[u32], sample: usize, neighbours: usize, k: usize) -> Vec<u32> {
        let mut set = products.to_vec();
        set.sort_unstable();
        set.dedup();
        if set.is_empty() {
            return Vec::new();
        }
        // The most recent sessions sharing a product.
        let mut candidates: Vec<u32> = set
            .iter()
            .flat_map(|&p| self.by_product[p as usize].iter().copied())
            .collect();
        candidates.sort_unstable_by_key(|&s| self.recency[s as usize]);
        candidates.dedup();
        candidates.truncate(sample);
        let mut similar: Vec<(u32, f64)> = candidates
            .into_iter()
            .map(|s| {
                let other = &self.sets[s as usize];
                let common = intersection(&set, other);
                (s, common as f64 / ((set.len() * other.len()) as f64).sqrt())
            })
            .collect();
        similar.sort_by(|a, b| {
            b.1.total_cmp(&a.1)
                .then(self.recency[a.0 as usize].cmp(&self.recency[b.0 as usize]))
        });
        similar.truncate(neighbours);
        let mut scores: Vec<(u32, f64)> = Vec::new();
        for &(s, sim) in &similar {
            for &p in &self.sets[s as usize] {
                scores.push((p, sim));
            }
        }
        scores.sort_unstable_by_key(|x| x.0);
        let mut summed: Vec<(u32, f64)> = Vec::new();
        for (p, sim) in scores {
            match summed.last_mut() {
                Some(last) if last.0 == p => last.1 += sim,
                _ => summed.push((p, sim)),
            }
        }
        summed.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        summed.into_iter().take(k).map(|x| x.0).collect()
    }
}

/// |a ∩ b| of two sorted sets.
fn intersection(a: &[u32], b: &[u32]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Session `s` at orders `100 s`, `100 s + 1`, ...
    fn sessions(list: &[&[i64]]) -> Sessions {
        Sessions::of_lists(list.iter().enumerate().map(|(s, &p)| ((s * 100) as f64, p)))
    }

    #[test]
    fn sknn_by_hand() {
        // Products 0..4 are ids 0..4. Sessions: A {0,1}, B {0,2,3}, C {4}.
        let s = sessions(&[&[0, 1], &[0, 2, 3], &[4]]);
        let index = SessionIndex::new(&s);
        // Session {0}: A sim 1/sqrt(2) = 0.707, B 1/sqrt(3) = 0.577.
        // 0: both = 1.284; 1: 0.707; 2, 3: 0.577 each; 4 never.
        assert_eq!(index.sknn(&[0], 1000, 100, 10), vec![0, 1, 2, 3]);
        // One neighbour only: A.
        assert_eq!(index.sknn(&[0], 1000, 1, 10), vec![0, 1]);
        // A sample of one session: the most recent sharing 0, B.
        assert_eq!(index.sknn(&[0], 1, 100, 10), vec![0, 2, 3]);
        // Session {2, 4}: B 1/sqrt(6) = 0.408, C 1/sqrt(2) = 0.707.
        assert_eq!(index.sknn(&[4, 2], 1000, 100, 3), vec![4, 0, 2]);
        assert!(index.sknn(&[], 1000, 100, 3).is_empty());
    }

    #[test]
    fn intersections() {
        assert_eq!(intersection(&[1, 3, 5, 7], &[2, 3, 4, 7, 9]), 2);
        assert_eq!(intersection(&[], &[1]), 0);
    }
}
