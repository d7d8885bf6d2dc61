//! Reading the (user, product) pairs the macros build: the columns a
//! training aggregate takes, the pairs with their last times and the
//! validation split inside them, and the products' latest brand and price.

use super::{validation, Pair};
use crate::binding::rows::InputChunk;
use crate::binding::{Column, SqlType};
use crate::budget::{self, Budget};
use crate::rng::FastMap;

/// The per-row inputs of a training aggregate: the pair over all the
/// training data, its last time, and the same pair over the validation
/// split inside it (`v_*`: the events before the validation cut; NULL
/// weight when there are none) with whether it is a validation target.
pub(crate) fn pair_inputs() -> Vec<Column> {
    use SqlType::*;
    vec![
        Column::new("user_id", BigInt),
        Column::new("product_id", BigInt),
        Column::new("weight", Double),
        Column::new("purchases", BigInt),
        Column::new("interactions", BigInt),
        Column::new("category_id", BigInt),
        Column::new("last_time", Double),
        Column::new("v_weight", Double),
        Column::new("v_purchases", BigInt),
        Column::new("v_interactions", BigInt),
        Column::new("v_time", Double),
        Column::new("v_target", Boolean),
        Column::new("v_cut", Double),
        Column::new("first_time", Double),
    ]
}

/// The SQL expressions the macros pass for [`pair_inputs`] (the columns of
/// [`pairs_sql`]).
pub(crate) const PAIR_INPUTS: [&str; 14] = [
    "user_id",
    "product_id",
    "weight",
    "purchases",
    "interactions",
    "category_id",
    "last_time",
    "v_weight",
    "v_purchases",
    "v_interactions",
    "v_time",
    "v_target",
    "v_cut",
    "first_time",
];

/// The product attribute columns of [`pairs_sql`]: the pair's last brand
/// and last finite price, each with its time (latest wins per product).
pub(crate) fn attribute_inputs() -> Vec<Column> {
    use SqlType::*;
    vec![
        Column::new("brand", Varchar),
        Column::new("brand_time", Double),
        Column::new("price", Double),
        Column::new("price_time", Double),
    ]
}

/// The SQL expressions for [`attribute_inputs`].
pub(crate) const ATTRIBUTE_INPUTS: [&str; 4] = ["brand", "brand_time", "price", "price_time"];

/// Per product, the latest brand and price seen in the pairs read so far:
/// (time, value); equal times keep the larger value, so the result does not
/// depend on the order the pairs arrive in.
#[derive(Default)]
pub struct LatestAttributes {
    brand: FastMap<i64, (f64, String)>,
    price: FastMap<i64, (f64, f64)>,
}

impl LatestAttributes {
    /// Reads the attribute columns of `rows`.
    pub(crate) fn read(
        &mut self,
        input: &InputChunk,
        rows: std::ops::Range<usize>,
    ) -> anyhow::Result<()> {
        let (product, brand, brand_time) = (
            input.col("product_id")?,
            input.col("brand")?,
            input.col("brand_time")?,
        );
        let (price, price_time) = (input.col("price")?, input.col("price_time")?);
        for row in rows {
            let Some(p) = input.i64(product, row) else {
                continue;
            };
            if let Some(b) = input.str(brand, row) {
                let t = input.f64(brand_time, row).unwrap_or(0.0);
                let newer = self
                    .brand
                    .get(&p)
                    .is_none_or(|(t0, b0)| (t, b) > (*t0, b0.as_str()));
                if newer {
                    self.brand.insert(p, (t, b.to_string()));
                }
            }
            if let Some(v) = input.f64(price, row).filter(|v| v.is_finite()) {
                let t = input.f64(price_time, row).unwrap_or(0.0);
                let newer = self.price.get(&p).is_none_or(|&old| (t, v) > old);
                if newer {
                    self.price.insert(p, (t, v));
                }
            }
        }
        Ok(())
    }

    /// Another thread's products.
    pub(crate) fn extend(&mut self, other: LatestAttributes) {
        for (p, (t, b)) in other.brand {
            if self
                .brand
                .get(&p)
                .is_none_or(|(t0, b0)| (t, b.as_str()) > (*t0, b0.as_str()))
            {
                self.brand.insert(p, (t, b));
            }
        }
        for (p, v) in other.price {
            if self.price.get(&p).is_none_or(|&old| v > old) {
                self.price.insert(p, v);
            }
        }
    }

    /// (product_id, brand, price) of every product read (NaN: no price).
    pub(crate) fn into_facts(self) -> Vec<(i64, Option<String>, f64)> {
        let mut facts: std::collections::BTreeMap<i64, (Option<String>, f64)> = self
            .brand
            .into_iter()
            .map(|(p, (_, b))| (p, (Some(b), f64::NAN)))
            .collect();
        for (p, (_, v)) in self.price {
            facts.entry(p).or_insert((None, f64::NAN)).1 = v;
        }
        facts.into_iter().map(|(p, (b, v))| (p, b, v)).collect()
    }

    /// The attributes of the model's products (`product_ids` sorted).
    pub(crate) fn of_products(self, product_ids: &[i64]) -> crate::model::ProductAttributes {
        let mut out = crate::model::ProductAttributes::unknown(product_ids.len());
        for (p, (_, b)) in self.brand {
            if let Ok(i) = product_ids.binary_search(&p) {
                out.brand[i] = Some(b);
            }
        }
        for (p, (_, v)) in self.price {
            if let Ok(i) = product_ids.binary_search(&p) {
                out.price[i] = v;
            }
        }
        out
    }
}

/// What a training aggregate collects: the pairs with their last times,
/// and the validation split inside them.
#[derive(Default)]
pub struct TrainingData {
    pub(crate) pairs: Vec<Pair>,
    pub(crate) times: Vec<f64>,
    pub(crate) validation: validation::ValidationSplit,
}

impl TrainingData {
    pub(crate) fn extend(&mut self, other: TrainingData) -> anyhow::Result<()> {
        budget::reserve(&mut self.pairs, other.pairs.len(), "interaction pairs")?;
        self.pairs.extend(other.pairs);
        self.times.extend(other.times);
        self.validation.extend(other.validation)
    }
}

/// Reads the pairs of `rows` (in the [`pair_inputs`] layout) into `data`;
/// pairs without a user, product or weight are skipped. The pairs' last
/// times are kept only with `keep_times` (a recency decay may be applied:
/// the search, or a half-life given), 8 bytes per pair otherwise saved.
pub(crate) fn read_pairs(
    data: &mut TrainingData,
    budget: &Budget,
    input: &InputChunk,
    rows: std::ops::Range<usize>,
    keep_times: bool,
) -> anyhow::Result<()> {
    let cols = PairCols::of(input)?;
    let (t, vw, vb, vn) = (
        input.col("last_time")?,
        input.col("v_weight")?,
        input.col("v_purchases")?,
        input.col("v_interactions")?,
    );
    let (vt, target, cut, first) = (
        input.col("v_time")?,
        input.col("v_target")?,
        input.col("v_cut")?,
        input.col("first_time")?,
    );
    budget::reserve(&mut data.pairs, rows.len(), "interaction pairs")?;
    if keep_times {
        budget::reserve(&mut data.times, rows.len(), "interaction times")?;
    }
    let per_pair = std::mem::size_of::<Pair>() + if keep_times { 8 } else { 0 };
    // The validation pairs always keep their times (the search decays them).
    let per_validation_pair = std::mem::size_of::<Pair>() + 8;
    budget.check(
        "holding the interaction pairs",
        ((data.pairs.len() + rows.len()) * per_pair
            + (data.validation.train.len() + rows.len()) * per_validation_pair) as u64,
        &format!(
            "{per_pair} bytes per (user, product) pair, and {per_validation_pair} per pair of \
             the validation part when the search is on"
        ),
    )?;
    let count = |col: usize, row: usize| count_at(input, col, row);
    for row in rows {
        let Some(pair) = cols.read(input, row) else {
            continue;
        };
        let (user, product) = (pair.user, pair.product);
        data.pairs.push(pair);
        if keep_times {
            data.times.push(input.f64(t, row).unwrap_or(f64::NAN));
        }
        let split = &mut data.validation;
        if let (Some(cut), Some(first)) = (input.f64(cut, row), input.f64(first, row)) {
            (split.cut, split.span) = (cut, cut - first);
        }
        if let Some(v_weight) = input.f64(vw, row) {
            split.train.push(Pair {
                weight: v_weight as f32,
                purchases: count(vb, row),
                interactions: count(vn, row),
                ..pair
            });
            split
                .train_times
                .push(input.f64(vt, row).unwrap_or(f64::NAN));
        }
        if input.bool(target, row) == Some(true) {
            split.targets.push((user, product));
        }
    }
    Ok(())
}

fn count_at(input: &InputChunk, col: usize, row: usize) -> u32 {
    input.i64(col, row).unwrap_or(0).max(0).min(u32::MAX as i64) as u32
}

/// Where the plain pair columns (the first six of [`pair_inputs`]) are in
/// a chunk; shared by every aggregate that reads (user, product) pairs.
pub(crate) struct PairCols {
    user: usize,
    product: usize,
    weight: usize,
    purchases: usize,
    interactions: usize,
    category: usize,
}

impl PairCols {
    pub(crate) fn of(input: &InputChunk) -> anyhow::Result<Self> {
        Ok(PairCols {
            user: input.col("user_id")?,
            product: input.col("product_id")?,
            weight: input.col("weight")?,
            purchases: input.col("purchases")?,
            interactions: input.col("interactions")?,
            category: input.col("category_id")?,
        })
    }

    /// The pair of `row`; `None` without a user, product or weight.
    pub(crate) fn read(&self, input: &InputChunk, row: usize) -> Option<Pair> {
        let (user, product, weight) = (
            input.i64(self.user, row)?,
            input.i64(self.product, row)?,
            input.f64(self.weight, row)?,
        );
        Some(Pair {
            user,
            product,
            weight: weight as f32,
            purchases: count_at(input, self.purchases, row),
            interactions: input
                .i64(self.interactions, row)
                .map_or(1, |_| count_at(input, self.interactions, row)),
            category: input.i64(self.category, row).unwrap_or(-1),
        })
    }
}

/// The plain pair inputs: user, product, weight, counts and category.
pub(crate) fn plain_pair_inputs() -> Vec<Column> {
    pair_inputs().into_iter().take(6).collect()
}

/// Reads the plain pairs of `rows` into `pairs`, fallibly.
pub(crate) fn read_plain_pairs(
    pairs: &mut Vec<Pair>,
    input: &InputChunk,
    rows: std::ops::Range<usize>,
) -> anyhow::Result<()> {
    let cols = PairCols::of(input)?;
    budget::reserve(pairs, rows.len(), "interaction pairs")?;
    pairs.extend(rows.filter_map(|row| cols.read(input, row)));
    Ok(())
}
