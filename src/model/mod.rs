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
pub mod recent;
pub mod table;

use csr::Csr;
use std::collections::HashMap;

/// A trained recommender: its id and its [`ModelParts`], which it reads as
/// its own fields (`model.user_ids`) and never changes.
///
/// Made only by [`FactorModel::new`] (its id computed by [`model_id`]) or
/// [`FactorModel::from_table`] (the id a model table carries), both of
/// which check that the parts agree; its fields are private, so no other
/// code writes one as a struct literal or changes a part afterwards.
#[derive(Clone, Debug)]
pub struct FactorModel {
    /// A content hash ([`model_id`]).
    model_id: i64,
    parts: ModelParts,
}

/// What a model is made of: ids, factors and the per-product and per-user
/// facts serving blends in. Rows `i` of every per-product vector describe
/// `product_ids[i]`; likewise for users.
#[derive(Clone, Debug)]
pub struct ModelParts {
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

impl std::ops::Deref for FactorModel {
    type Target = ModelParts;
    fn deref(&self) -> &ModelParts {
        &self.parts
    }
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
    /// differ only in prices are different models to the cache); the id
    /// itself when nothing is known.
    fn hash_into(&self, id: i64) -> i64 {
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
    /// A model from its parts, its id computed from them ([`model_id`]):
    /// what the trainer and the Spark import make.
    pub fn new(parts: ModelParts) -> anyhow::Result<Self> {
        let id = model_id(
            &parts.user_ids,
            &parts.product_ids,
            &parts.user_factors,
            &parts.item_factors,
            parts.blend,
            Some(&parts.attributes),
        );
        Self::from_table(parts, id)
    }

    /// A model read back from a model table, with the id the table carries
    /// (written by [`FactorModel::new`] when the model was made; hashing
    /// every factor again on each read would cost as much as the read).
    pub fn from_table(parts: ModelParts, model_id: i64) -> anyhow::Result<Self> {
        let model = FactorModel { model_id, parts };
        model.validate()?;
        Ok(model)
    }

    /// The model's id ([`model_id`]).
    pub fn id(&self) -> i64 {
        self.model_id
    }

    /// The id and the parts, for a user that takes the parts over (serving
    /// indexes them without a copy).
    pub fn into_parts(self) -> (i64, ModelParts) {
        (self.model_id, self.parts)
    }

    /// The model with the brands and prices of its products, which are part
    /// of its identity: the id becomes what [`model_id`] gives with them.
    /// For a model made without attributes (the trainer learns them from
    /// the events beside the pairs).
    pub fn with_attributes(mut self, attributes: ProductAttributes) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !self.attributes.any_known(),
            "the model already has product attributes"
        );
        anyhow::ensure!(
            attributes.brand.len() == self.product_ids.len()
                && attributes.price.len() == self.product_ids.len(),
            "product attributes do not match the number of products"
        );
        // Without attributes the id is the content hash alone, so mixing
        // the attributes into it is `model_id` with them.
        self.model_id = attributes.hash_into(self.model_id);
        self.parts.attributes = attributes;
        Ok(self)
    }

    /// The model whose id also covers what its table carries beside it (the
    /// item-to-item neighbours and their choice): `mix` folds that into the
    /// id [`model_id`] gave, so two tables that serve differently differ.
    pub fn with_id_mixed(mut self, mix: impl FnOnce(i64) -> i64) -> Self {
        self.model_id = mix(self.model_id);
        self
    }

    /// The model with the time decay its weights had before the fit (the
    /// half-life in seconds and the time it counts back from), which the
    /// fold-in repeats for users the model has not seen. Like the rest of
    /// the weighting, not part of the id.
    pub fn with_decay(mut self, half_life: f64, reference: f64) -> Self {
        self.parts.weighting.half_life = half_life;
        self.parts.weighting.reference = Some(reference);
        self
    }

    /// Checks that every part has the sizes the ids say.
    fn validate(&self) -> anyhow::Result<()> {
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

/// The id of a model: a content hash of what is served (the factors, the
/// ids, the blend and, when known, the products' brands and prices), 52
/// bits so that it survives a round trip through a DOUBLE column exactly.
/// The one recipe: the trainer and the Spark import (through
/// [`FactorModel::new`]) and the export of a table without a `model_id`
/// column all call it, so the same model has the same id wherever it was
/// made, and the serving cache knows it.
pub fn model_id(
    user_ids: &[i64],
    product_ids: &[i64],
    user_factors: &[f32],
    item_factors: &[f32],
    blend: f32,
    attributes: Option<&ProductAttributes>,
) -> i64 {
    let id = content_hash(
        &[user_factors, item_factors, &[blend]],
        &[user_ids, product_ids],
    );
    attributes.map_or(id, |a| a.hash_into(id))
}

/// The id of a model made by `ecoreco.als_update` from the model `parent`:
/// the parent's id mixed with a content hash of what the update wrote (the
/// users re-solved or added, the products added with their brands and
/// prices); the rows copied are the parent's, which its id covers. The
/// same update of the same parent gets the same id; any change in what it
/// wrote, another.
pub fn updated_model_id(
    parent: i64,
    user_ids: &[i64],
    user_factors: &[f32],
    product_ids: &[i64],
    item_factors: &[f32],
    attributes: &ProductAttributes,
) -> i64 {
    let id = content_hash(
        &[user_factors, item_factors],
        &[&[parent], user_ids, product_ids],
    );
    attributes.hash_into(id)
}

fn content_hash(parts: &[&[f32]], ids: &[&[i64]]) -> i64 {
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
        let a = content_hash(&[&[1.0, 2.0]], &[&[1]]);
        let b = content_hash(&[&[1.0, 2.5]], &[&[1]]);
        assert_ne!(a, b);
        assert_eq!((a as f64) as i64, a);
    }

    fn parts(attributes: ProductAttributes) -> ModelParts {
        ModelParts {
            factors: 1,
            user_ids: vec![3],
            product_ids: vec![10, 20],
            user_factors: vec![0.5],
            item_factors: vec![1.0, -1.0],
            product_category: vec![1, 2],
            popularity: vec![1.0, 0.0],
            purchased: Csr::from_triplets(1, 2, &[0], &[0], &[1.0]).unwrap(),
            interest: vec![vec![(1, 1.0)]],
            blend: 0.25,
            weighting: confidence::Weighting::raw(),
            attributes,
        }
    }

    #[test]
    fn a_new_model_has_the_id_of_its_parts_whichever_way_it_was_made() {
        let priced = ProductAttributes::of_products(&[10, 20], vec![(20, Some("b".into()), 9.5)]);
        let unknown = ProductAttributes::unknown(2);
        let plain = FactorModel::new(parts(unknown.clone())).unwrap();
        assert_eq!(
            plain.model_id,
            model_id(&[3], &[10, 20], &[0.5], &[1.0, -1.0], 0.25, None)
        );
        assert_eq!(
            plain.model_id,
            model_id(&[3], &[10, 20], &[0.5], &[1.0, -1.0], 0.25, Some(&unknown))
        );
        // Attributes known from the start, or added after training: one id.
        let with = FactorModel::new(parts(priced.clone())).unwrap();
        assert_ne!(with.model_id, plain.model_id);
        assert_eq!(
            plain
                .clone()
                .with_attributes(priced.clone())
                .unwrap()
                .model_id,
            with.model_id
        );
        assert_eq!(
            with.with_attributes(priced).unwrap_err().to_string(),
            "the model already has product attributes"
        );
        // The blend is part of what is served, so of the id.
        let other_blend = FactorModel::new(ModelParts {
            blend: 0.5,
            ..parts(unknown)
        })
        .unwrap();
        assert_ne!(other_blend.model_id, plain.model_id);
        assert_eq!((plain.model_id as f64) as i64, plain.model_id);
    }

    #[test]
    fn parts_that_disagree_make_no_model() {
        let unknown = ProductAttributes::unknown(2);
        let message = |p: ModelParts| FactorModel::new(p).unwrap_err().to_string();
        assert_eq!(
            message(ModelParts {
                item_factors: vec![1.0],
                ..parts(unknown.clone())
            }),
            "product factors do not match the number of products"
        );
        assert_eq!(
            message(ModelParts {
                blend: 1.5,
                ..parts(unknown.clone())
            }),
            "the model's blend 1.5 is not between 0 and 1"
        );
        assert_eq!(
            message(parts(ProductAttributes::unknown(3))),
            "product attributes do not match the number of products"
        );
        assert_eq!(
            FactorModel::from_table(parts(unknown), 77)
                .unwrap()
                .model_id,
            77
        );
    }
}
