//! The model layer: what training writes and serving reads.
//!
//! Neither the trainer (`crate::als`) nor the server (`crate::recommend`)
//! imports the other; both depend on this layer: the sparse matrix type
//! ([`csr`]), the trained model as plain data ([`FactorModel`]), how its
//! interaction weights were transformed ([`confidence`]) and the
//! model-table layout ([`table`]) that turns one into rows and back.

pub mod confidence;
pub mod csr;
pub mod neighbours;
pub mod table;

use csr::Csr;
use std::collections::HashMap;

/// A trained recommender: ids, factors and the per-product and per-user
/// facts serving blends in. Rows `i` of every per-product vector describe
/// `product_ids[i]`; likewise for users.
#[derive(Clone, Debug)]
pub struct FactorModel {
    /// A content hash ([`model_id`]).
    pub model_id: i64,
    pub factors: usize,
    pub user_ids: Vec<i64>,
    pub product_ids: Vec<i64>,
    /// `user_ids.len() × factors`, row-major.
    pub user_factors: Vec<f32>,
    /// `product_ids.len() × factors`, row-major.
    pub item_factors: Vec<f32>,
    /// category_id per product (-1 when unknown).
    pub product_category: Vec<i64>,
    /// Purchases (plus a tie-break below 1 from interaction weight) per product.
    pub popularity: Vec<f32>,
    /// Products each user bought in the training data.
    pub purchased: Csr,
    /// Each user's top-3 categories with their share of the user's interactions.
    pub interest: Vec<Vec<(i64, f32)>>,
    /// The serving blend chosen for this model (its `blend` param row):
    /// what `recommend` uses when the caller passes none.
    pub blend: f32,
    /// How the interaction weights were transformed before ALS saw them:
    /// what the fold-in repeats for users the model has not seen.
    pub weighting: confidence::Weighting,
    /// Brand and price per product, as last seen in the training events.
    pub attributes: ProductAttributes,
}

/// What serving rules filter on besides the category: per product, the
/// brand and the price of the product's last training event that had
/// one (events sources without these columns leave them unknown).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProductAttributes {
    /// `None`: no event named a brand.
    pub brand: Vec<Option<String>>,
    /// NaN: no event had a finite price.
    pub price: Vec<f64>,
}

impl ProductAttributes {
    /// Nothing known of `n` products.
    pub fn unknown(n: usize) -> Self {
        ProductAttributes {
            brand: vec![None; n],
            price: vec![f64::NAN; n],
        }
    }

    /// The attributes of `product_ids` (sorted) from `(product_id, brand,
    /// price)` facts in any order; products without a fact stay unknown,
    /// facts of other products are ignored.
    pub fn of_products(product_ids: &[i64], facts: Vec<(i64, Option<String>, f64)>) -> Self {
        let mut out = Self::unknown(product_ids.len());
        for (product, brand, price) in facts {
            if let Ok(i) = product_ids.binary_search(&product) {
                out.brand[i] = brand;
                out.price[i] = if price.is_finite() { price } else { f64::NAN };
            }
        }
        out
    }

    /// Whether any product has a brand or a price.
    pub fn any_known(&self) -> bool {
        self.brand.iter().any(Option::is_some) || self.price.iter().any(|p| !p.is_nan())
    }

    /// A hash of the attributes, mixed into a model's id (two models that
    /// differ only in prices are different models to the cache).
    pub fn hash_into(&self, id: i64) -> i64 {
        if !self.any_known() {
            return id;
        }
        let mut h = id as u64;
        for (brand, price) in self.brand.iter().zip(&self.price) {
            h = crate::rng::mix64(h ^ price.to_bits());
            for b in brand.as_deref().unwrap_or("\0").bytes() {
                h = crate::rng::mix64(h ^ b as u64);
            }
        }
        (h & ((1 << 52) - 1)) as i64
    }
}

/// `x` as the f64 of its shortest decimal form, for param rows people
/// read (0.1, not 0.10000000149011612); the f32 round trip is exact.
pub fn f32_decimal(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(x as f64)
}

/// The blend of a model table without a `blend` param row (made before
/// models stored their own): what such models were served with.
pub const LEGACY_BLEND: f32 = 0.8;

impl FactorModel {
    /// Checks that every part has the sizes the ids say.
    pub fn validate(&self) -> anyhow::Result<()> {
        let (n_users, n_items, f) = (self.user_ids.len(), self.product_ids.len(), self.factors);
        anyhow::ensure!(f > 0, "the model has no factors");
        anyhow::ensure!(
            self.user_factors.len() == n_users * f,
            "user factors do not match the number of users"
        );
        anyhow::ensure!(
            self.item_factors.len() == n_items * f,
            "product factors do not match the number of products"
        );
        anyhow::ensure!(
            self.product_category.len() == n_items && self.popularity.len() == n_items,
            "product columns disagree"
        );
        anyhow::ensure!(
            self.purchased.n_rows == n_users && self.purchased.n_cols == n_items,
            "purchases do not match the model"
        );
        anyhow::ensure!(
            self.interest.len() == n_users,
            "interests do not match the users"
        );
        anyhow::ensure!(
            self.attributes.brand.len() == n_items && self.attributes.price.len() == n_items,
            "product attributes do not match the number of products"
        );
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.blend),
            "the model's blend {} is not between 0 and 1",
            self.blend
        );
        if let Some(bm25) = &self.weighting.bm25 {
            // Empty: a table missing some rows (the fold-in says so).
            anyhow::ensure!(
                bm25.product_users.is_empty() || bm25.product_users.len() == n_items,
                "product_users do not match the products"
            );
        }
        Ok(())
    }

    pub fn user_row(&self, u: usize) -> &[f32] {
        &self.user_factors[u * self.factors..(u + 1) * self.factors]
    }

    pub fn item_row(&self, i: usize) -> &[f32] {
        &self.item_factors[i * self.factors..(i + 1) * self.factors]
    }
}

/// A content hash that identifies a model: 52 bits, so it survives a
/// round trip through a DOUBLE column exactly.
pub fn model_id(parts: &[&[f32]], ids: &[&[i64]]) -> i64 {
    let mut h = 0x0EC0_4EC0u64;
    for part in parts {
        for v in *part {
            h = crate::rng::mix64(h ^ v.to_bits() as u64);
        }
    }
    for part in ids {
        for v in *part {
            h = crate::rng::mix64(h ^ *v as u64);
        }
    }
    (h & ((1 << 52) - 1)) as i64
}

/// A user's top-3 categories by interaction count, with their shares of the
/// user's interactions (ties: smaller category id first).
pub fn top_categories<S: std::hash::BuildHasher>(counts: &HashMap<i64, f32, S>) -> Vec<(i64, f32)> {
    let counts: Vec<(i64, f32)> = counts.iter().map(|(&c, &n)| (c, n)).collect();
    top_categories_of(&counts)
}

/// [`top_categories`] of `(category, count)` entries, one per category, in
/// any order: a selection of three, no sort of them all.
pub fn top_categories_of(counts: &[(i64, f32)]) -> Vec<(i64, f32)> {
    let total: f32 = counts.iter().map(|c| c.1).sum();
    // Whether `a` ranks after `b` (the order of `top_categories`' sort).
    let after = |a: &(i64, f32), b: &(i64, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)).is_gt();
    let mut ranked: Vec<(i64, f32)> = Vec::with_capacity(3);
    for &entry in counts {
        let at = ranked
            .iter()
            .position(|r| after(r, &entry))
            .unwrap_or(ranked.len());
        if at < 3 {
            ranked.insert(at, entry);
            ranked.truncate(3);
        }
    }
    if total > 0.0 {
        for r in &mut ranked {
            r.1 /= total;
        }
    }
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_categories_by_count() {
        let counts: HashMap<i64, f32> = [(1, 2.0), (2, 5.0), (3, 2.0), (4, 1.0)]
            .into_iter()
            .collect();
        assert_eq!(top_categories(&counts), vec![(2, 0.5), (1, 0.2), (3, 0.2)]);
        let listed = [(4, 1.0), (3, 2.0), (2, 5.0), (1, 2.0)];
        assert_eq!(
            top_categories_of(&listed),
            vec![(2, 0.5), (1, 0.2), (3, 0.2)]
        );
        assert_eq!(top_categories_of(&[(9, 0.0)]), vec![(9, 0.0)]);
    }

    #[test]
    fn content_hash_fits_a_double_and_changes_with_content() {
        let a = model_id(&[&[1.0, 2.0]], &[&[1]]);
        let b = model_id(&[&[1.0, 2.5]], &[&[1]]);
        assert_ne!(a, b);
        assert_eq!((a as f64) as i64, a);
    }
}
