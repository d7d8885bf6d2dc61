//! The model table: a trained model as rows, and rows back into a model.
//!
//! Models are data: `als_train` returns rows that the user stores with
//! CREATE TABLE AS, exports with COPY and queries from BI tools. One table,
//! one row kind per `side`. Every row also carries `seq`, its position (0,
//! 1, …), and the model's `model_id` (a content hash, constant per table):
//! a serving query that finds the model cached reads only the row
//! `seq = 0` (zone maps skip the rest) to learn which model a table holds.
//!
//! | side      | id         | item        | name  | value                  | factors  |
//! |-----------|------------|-------------|-------|------------------------|----------|
//! | param     |            |             | name  | value                  |          |
//! | loss      | iteration  |             |       | training loss          |          |
//! | user      | user_id    |             |       |                        | FLOAT[f] |
//! | product   | product_id | category_id | brand | popularity             | FLOAT[f] |
//! | price     | product_id |             |       | last seen price        |          |
//! | product_users | product_id |         |       | users who touched it   |          |
//! | purchased | user_id    | product_id  |       |                        |          |
//! | interest  | user_id    | category_id |       | share of interactions  |          |
//! | neighbour | product_id | neighbour_id | kind | item-to-item score     |          |
//! | recent    | user_id    | product_id  |       | rank (1: the latest)   |          |
//!
//! Rows come in that order: the `model_id` param first, the other params,
//! the loss per iteration, the users, the products, the prices (products
//! with a known price only), the products' `product_users` (only in models
//! trained with bm25 confidence, whose fold-in needs them: see
//! [`super::confidence`]), then per user their purchases and interests,
//! then the item-to-item neighbours in models that keep them
//! ([`super::neighbours`]), then each user's latest products in models
//! that blend the item-to-item signal into known users' lists
//! ([`super::recent`]).
//! [`ModelTable`] writes any range of them on
//! demand, so a model of millions of users reaches DuckDB in bounded blocks.

use super::confidence::Weighting;
use super::csr::Csr;
use super::neighbours::{self, NeighbourRow};
use super::recent::{self, RecentRow};
use super::{FactorModel, ModelParts};
use std::collections::HashMap;

/// What a function that reads a model says of an empty model table.
pub const EMPTY_MODEL: &str = "the model table is empty; pass a table made by ecoreco.als_train";

/// The model table's columns, in order: `seq`, `model_id` (BIGINT), then
/// what [`RowOut`] holds (`side` VARCHAR, `id` and `item` BIGINT, `name`
/// VARCHAR, `value` DOUBLE, `factors` FLOAT[]).
pub const COLUMNS: [&str; 8] = [
    "seq", "model_id", "side", "id", "item", "name", "value", "factors",
];

/// A model with its training parameters and loss, as table rows.
pub struct ModelTable {
    model: FactorModel,
    params: Vec<(String, f64)>,
    loss: Vec<f64>,
    /// Where each user's purchased + interest rows start, relative to the
    /// first such row; one more entry for the end.
    extra_start: Vec<usize>,
    /// Products with a known price, in product order.
    priced: Vec<u32>,
    /// The item-to-item rows, written after the users' rows.
    neighbours: Vec<NeighbourRow>,
    /// The users' latest products, written last.
    recent: Vec<RecentRow>,
}

/// One row, before it is written.
enum Row<'a> {
    Param(&'a str, f64),
    Loss(usize, f64),
    User(usize),
    Product(usize),
    Price(usize),
    ProductUsers(usize),
    Purchased(usize, u32),
    Interest(usize, i64, f32),
    Neighbour(usize),
    Recent(usize),
}

impl ModelTable {
    /// `params` are written after `model_id`, followed by the model's
    /// `blend` (so that serving finds the blend the model was made for).
    pub fn new(model: FactorModel, mut params: Vec<(String, f64)>, loss: Vec<f64>) -> Self {
        params.retain(|(name, _)| name != "blend");
        // The blend's shortest decimal (0.8, not 0.800000011920929).
        params.push(("blend".to_string(), super::f32_decimal(model.blend)));
        let mut extra_start = Vec::with_capacity(model.user_ids.len() + 1);
        let mut at = 0;
        for u in 0..model.user_ids.len() {
            extra_start.push(at);
            at += model.purchased.row(u).0.len() + model.interest[u].len();
        }
        extra_start.push(at);
        let priced = (0..model.product_ids.len() as u32)
            .filter(|&i| !model.attributes.price[i as usize].is_nan())
            .collect();
        ModelTable {
            model,
            params,
            loss,
            extra_start,
            priced,
            neighbours: Vec::new(),
            recent: Vec::new(),
        }
    }

    /// The table with item-to-item rows after the others.
    pub fn with_neighbours(mut self, rows: Vec<NeighbourRow>) -> Self {
        self.neighbours = rows;
        self
    }

    /// The table with the users' latest products after every other row.
    pub fn with_recent(mut self, rows: Vec<RecentRow>) -> Self {
        self.recent = rows;
        self
    }

    pub fn model(&self) -> &FactorModel {
        &self.model
    }

    fn head(&self) -> usize {
        1 + self.params.len() + self.loss.len()
    }

    /// How many rows the table has.
    pub fn rows(&self) -> usize {
        self.head()
            + self.model.user_ids.len()
            + self.model.product_ids.len()
            + self.priced.len()
            + self.product_users().len()
            + self.extra_start.last().copied().unwrap_or(0)
            + self.neighbours.len()
            + self.recent.len()
    }

    /// bm25's users per product, when the model was trained with it.
    fn product_users(&self) -> &[u32] {
        self.model
            .weighting
            .bm25
            .as_ref()
            .map_or(&[], |b| b.product_users.as_slice())
    }

    fn row(&self, seq: usize) -> Row<'_> {
        let m = &self.model;
        let mut s = seq;
        if s == 0 {
            return Row::Param("model_id", m.model_id as f64);
        }
        s -= 1;
        if s < self.params.len() {
            return Row::Param(&self.params[s].0, self.params[s].1);
        }
        s -= self.params.len();
        if s < self.loss.len() {
            return Row::Loss(s + 1, self.loss[s]);
        }
        s -= self.loss.len();
        if s < m.user_ids.len() {
            return Row::User(s);
        }
        s -= m.user_ids.len();
        if s < m.product_ids.len() {
            return Row::Product(s);
        }
        s -= m.product_ids.len();
        if s < self.priced.len() {
            return Row::Price(self.priced[s] as usize);
        }
        s -= self.priced.len();
        if s < self.product_users().len() {
            return Row::ProductUsers(s);
        }
        s -= self.product_users().len();
        let extras = self.extra_start.last().copied().unwrap_or(0);
        if s >= extras + self.neighbours.len() {
            return Row::Recent(s - extras - self.neighbours.len());
        }
        if s >= extras {
            return Row::Neighbour(s - extras);
        }
        // The user whose extra rows hold position s.
        let u = self.extra_start.partition_point(|&start| start <= s) - 1;
        let offset = s - self.extra_start[u];
        let bought = m.purchased.row(u).0;
        if offset < bought.len() {
            Row::Purchased(u, bought[offset])
        } else {
            let (category, share) = m.interest[u][offset - bought.len()];
            Row::Interest(u, category, share)
        }
    }

    /// Row `seq` (below [`rows`](Self::rows)) as the values of its columns.
    pub fn row_at(&self, seq: usize) -> RowOut<'_> {
        let m = &self.model;
        let (side, id, item, name, value, factors) = match self.row(seq) {
            Row::Param(name, value) => ("param", None, None, Some(name), Some(value), None),
            Row::Loss(i, loss) => ("loss", Some(i as i64), None, None, Some(loss), None),
            Row::User(u) => (
                "user",
                Some(m.user_ids[u]),
                None,
                None,
                None,
                Some(m.user_row(u)),
            ),
            Row::Product(i) => (
                "product",
                Some(m.product_ids[i]),
                Some(m.product_category[i]),
                m.attributes.brand[i].as_deref(),
                Some(m.popularity[i] as f64),
                Some(m.item_row(i)),
            ),
            Row::Price(i) => (
                "price",
                Some(m.product_ids[i]),
                None,
                None,
                Some(m.attributes.price[i]),
                None,
            ),
            Row::ProductUsers(i) => (
                "product_users",
                Some(m.product_ids[i]),
                None,
                None,
                Some(self.product_users()[i] as f64),
                None,
            ),
            Row::Purchased(u, i) => (
                "purchased",
                Some(m.user_ids[u]),
                Some(m.product_ids[i as usize]),
                None,
                None,
                None,
            ),
            Row::Interest(u, category, share) => (
                "interest",
                Some(m.user_ids[u]),
                Some(category),
                None,
                Some(share as f64),
                None,
            ),
            Row::Neighbour(i) => {
                let r = &self.neighbours[i];
                (
                    neighbours::SIDE,
                    Some(r.product),
                    Some(r.neighbour),
                    Some(r.kind()),
                    Some(r.score as f64),
                    None,
                )
            }
            Row::Recent(i) => {
                let r = &self.recent[i];
                (
                    recent::SIDE,
                    Some(r.user),
                    Some(r.product),
                    None,
                    Some(r.rank as f64),
                    None,
                )
            }
        };
        RowOut {
            side,
            id,
            item,
            name,
            value,
            factors,
        }
    }

    /// Bytes the table holds while its rows are read (the model and the
    /// row index).
    pub fn retained_bytes(&self) -> usize {
        let m = &self.model;
        (m.user_factors.len() + m.item_factors.len()) * 4
            + (m.user_ids.len() + self.extra_start.len()) * 8
            + m.interest
                .iter()
                .map(|i| 24 + i.capacity() * 16)
                .sum::<usize>()
            + m.purchased.indptr.len() * 8
            + m.purchased.nnz() * 8
            + self.priced.len() * 4
            + self.neighbours.len() * std::mem::size_of::<NeighbourRow>()
            + self.recent.len() * std::mem::size_of::<RecentRow>()
            + m.attributes.price.len() * 8
            + m.attributes
                .brand
                .iter()
                .map(|b| 24 + b.as_ref().map_or(0, |b| b.len()))
                .sum::<usize>()
    }
}

/// One row of the model table as written (its `seq` and `model_id` are
/// the position and the model's id).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowOut<'a> {
    pub side: &'static str,
    pub id: Option<i64>,
    pub item: Option<i64>,
    pub name: Option<&'a str>,
    pub value: Option<f64>,
    pub factors: Option<&'a [f32]>,
}

/// One model row as read back from a table.
#[derive(Clone, Debug, Default)]
pub struct ModelRow {
    pub side: String,
    pub id: Option<i64>,
    pub item: Option<i64>,
    pub name: Option<String>,
    pub value: Option<f64>,
    pub factors: Option<Vec<f32>>,
}

/// The rows of a model table as they are read, already sorted by kind:
/// the users' factors in one flat buffer, the other rows as small tuples.
/// At the real data size a model has tens of millions of rows (8M users,
/// 20M interest rows at 110M events); kept as one struct per row, with its
/// side as a string and its factors as a list of their own, they took
/// about three times the memory of the model they describe.
#[derive(Debug, Default)]
pub struct ModelRows {
    factors: usize,
    user_ids: Vec<i64>,
    user_factors: Vec<f32>,
    /// (product_id, category_id, popularity), factors in `product_factors`.
    products: Vec<(i64, i64, f32)>,
    /// (product_id, brand) of the products that have one.
    brands: Vec<(i64, String)>,
    /// (product_id, price).
    prices: Vec<(i64, f64)>,
    product_factors: Vec<f32>,
    purchased: Vec<(i64, i64)>,
    interest: Vec<(i64, i64, f32)>,
    blend: Option<f32>,
    /// The other `param` rows with a value (a few dozen at most).
    params: Vec<(String, f64)>,
    /// (product_id, users who touched it).
    product_users: Vec<(i64, f64)>,
    /// The item-to-item rows.
    neighbours: Vec<NeighbourRow>,
    /// The users' latest products.
    recent: Vec<RecentRow>,
    rows: usize,
}

impl ModelRows {
    /// Rows pushed so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Factor values held (users and products).
    pub fn floats(&self) -> usize {
        self.user_factors.len() + self.product_factors.len()
    }

    fn factor_length(&mut self, n: usize) -> anyhow::Result<()> {
        anyhow::ensure!(
            n > 0,
            "the model's factors are empty; the model table is damaged"
        );
        if self.factors == 0 {
            self.factors = n;
        }
        anyhow::ensure!(
            n == self.factors,
            "factor lists have different lengths ({} and {n}); the model table is damaged",
            self.factors
        );
        Ok(())
    }

    /// Adds one row (its columns as read).
    pub fn push(
        &mut self,
        side: &str,
        id: Option<i64>,
        item: Option<i64>,
        name: Option<&str>,
        value: Option<f64>,
        factors: Option<&[f32]>,
    ) -> anyhow::Result<()> {
        let need = |v: Option<i64>| {
            v.ok_or_else(|| {
                anyhow::anyhow!("a '{side}' row has a NULL id or item; the model table is damaged")
            })
        };
        let factors_of = |what: &str| {
            factors.ok_or_else(|| {
                anyhow::anyhow!("a {what} row has no factors; the model table is damaged")
            })
        };
        match side {
            "param" if name == Some("blend") => {
                let blend = value.ok_or_else(|| {
                    anyhow::anyhow!(
                        "the model's blend param row is NULL; the model table is damaged"
                    )
                })?;
                self.blend = Some(blend as f32);
            }
            "param" => {
                if let (Some(name), Some(value)) = (name, value) {
                    self.params.push((name.to_string(), value));
                }
            }
            "loss" => {}
            "product_users" => {
                let users = value.ok_or_else(|| {
                    anyhow::anyhow!(
                        "a product_users row has a NULL value; the model table is damaged"
                    )
                })?;
                anyhow::ensure!(
                    users.is_finite() && users >= 0.0 && users <= u32::MAX as f64,
                    "a product_users row has the value {users}; the model table is damaged"
                );
                crate::budget::reserve(
                    &mut self.product_users,
                    1,
                    "the model's product_users rows",
                )?;
                self.product_users.push((need(id)?, users));
            }
            "user" => {
                let (id, factors) = (need(id)?, factors_of("user")?);
                self.factor_length(factors.len())?;
                crate::budget::reserve(
                    &mut self.user_factors,
                    factors.len(),
                    "the model's user factors",
                )?;
                self.user_ids.push(id);
                self.user_factors.extend_from_slice(factors);
            }
            "product" => {
                let (id, factors) = (need(id)?, factors_of("product")?);
                self.factor_length(factors.len())?;
                self.products
                    .push((id, item.unwrap_or(-1), value.unwrap_or(0.0) as f32));
                self.product_factors.extend_from_slice(factors);
                if let Some(brand) = name {
                    self.brands.push((id, brand.to_string()));
                }
            }
            "price" => {
                let price = value.ok_or_else(|| {
                    anyhow::anyhow!("a 'price' row has a NULL value; the model table is damaged")
                })?;
                self.prices.push((need(id)?, price));
            }
            "purchased" => {
                let pair = (need(id)?, need(item)?);
                crate::budget::reserve(&mut self.purchased, 1, "the model's purchase rows")?;
                self.purchased.push(pair);
            }
            neighbours::SIDE => {
                let row = NeighbourRow::read(id, item, name, value)?;
                crate::budget::reserve(&mut self.neighbours, 1, "the model's neighbour rows")?;
                self.neighbours.push(row);
            }
            recent::SIDE => {
                let row = RecentRow::read(id, item, value)?;
                crate::budget::reserve(&mut self.recent, 1, "the model's recent rows")?;
                self.recent.push(row);
            }
            "interest" => {
                let row = (need(id)?, need(item)?, value.unwrap_or(0.0) as f32);
                crate::budget::reserve(&mut self.interest, 1, "the model's interest rows")?;
                self.interest.push(row);
            }
            other => anyhow::bail!(
                "unknown model row side '{other}'; pass a table made by ecoreco.als_train"
            ),
        }
        self.rows += 1;
        Ok(())
    }

    /// The item-to-item rows read, taken out (serving indexes them itself).
    pub fn take_neighbours(&mut self) -> Vec<NeighbourRow> {
        std::mem::take(&mut self.neighbours)
    }

    /// The users' latest products read, taken out (serving indexes them
    /// itself).
    pub fn take_recent(&mut self) -> Vec<RecentRow> {
        std::mem::take(&mut self.recent)
    }

    /// The value of the `param` row `name`, if one was read.
    pub fn param(&self, name: &str) -> Option<f64> {
        self.params.iter().find(|p| p.0 == name).map(|p| p.1)
    }

    /// Rows read by another thread (any order: they are sorted at the end).
    pub fn extend(&mut self, other: ModelRows) -> anyhow::Result<()> {
        if other.factors > 0 {
            self.factor_length(other.factors)?;
        }
        crate::budget::reserve(
            &mut self.user_factors,
            other.user_factors.len(),
            "the model's user factors",
        )?;
        self.user_ids.extend(other.user_ids);
        self.user_factors.extend(other.user_factors);
        self.products.extend(other.products);
        self.product_factors.extend(other.product_factors);
        self.brands.extend(other.brands);
        self.prices.extend(other.prices);
        self.purchased.extend(other.purchased);
        self.interest.extend(other.interest);
        self.blend = self.blend.or(other.blend);
        self.params.extend(other.params);
        self.product_users.extend(other.product_users);
        self.neighbours.extend(other.neighbours);
        crate::budget::reserve(
            &mut self.recent,
            other.recent.len(),
            "the model's recent rows",
        )?;
        self.recent.extend(other.recent);
        self.rows += other.rows;
        Ok(())
    }

    /// From whole rows (tests, small tables).
    pub fn collect(rows: Vec<ModelRow>) -> anyhow::Result<ModelRows> {
        let mut out = ModelRows::default();
        for r in &rows {
            out.push(
                &r.side,
                r.id,
                r.item,
                r.name.as_deref(),
                r.value,
                r.factors.as_deref(),
            )?;
        }
        Ok(out)
    }
}

/// `ids` sorted ascending with their `f`-wide rows of `values` moved along
/// (nothing copied when they already are, as `ModelTable` writes them).
/// Errors name a repeated id.
fn sort_rows(
    ids: Vec<i64>,
    values: Vec<f32>,
    f: usize,
    what: &str,
) -> anyhow::Result<(Vec<i64>, Vec<f32>)> {
    let (ids, values) = if ids.windows(2).all(|w| w[0] <= w[1]) {
        (ids, values)
    } else {
        let mut order: Vec<u32> = (0..ids.len() as u32).collect();
        order.sort_unstable_by_key(|&i| ids[i as usize]);
        let sorted_ids = order.iter().map(|&i| ids[i as usize]).collect();
        let mut sorted = Vec::new();
        crate::budget::reserve(&mut sorted, values.len(), "the model's factors, sorted")?;
        for &i in &order {
            sorted.extend_from_slice(&values[i as usize * f..(i as usize + 1) * f]);
        }
        (sorted_ids, sorted)
    };
    if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
        anyhow::bail!(
            "{what} {} has more than one row; the model table is damaged",
            w[0]
        );
    }
    Ok((ids, values))
}

/// Rebuilds the model `model_id` from its rows (any order).
pub fn from_rows(rows: ModelRows, model_id: i64) -> anyhow::Result<FactorModel> {
    let users = rows.user_ids.len();
    from_some_rows(rows, model_id, users)
}

/// [`from_rows`] of a model of `users` users whose rows were read for some
/// of them only (and every product): the weighting's statistics count
/// them all.
pub fn from_some_rows(rows: ModelRows, model_id: i64, users: usize) -> anyhow::Result<FactorModel> {
    let ModelRows {
        factors: f,
        user_ids,
        user_factors,
        mut products,
        product_factors,
        purchased,
        interest,
        blend,
        brands,
        prices,
        params,
        product_users,
        ..
    } = rows;
    anyhow::ensure!(
        users > 0 && !products.is_empty(),
        "the model has no user or no product rows; pass a table made by ecoreco.als_train"
    );
    let (user_ids, user_factors) = sort_rows(user_ids, user_factors, f, "user")?;
    let product_order: Vec<i64> = products.iter().map(|p| p.0).collect();
    let (product_ids, item_factors) = {
        let mut order: Vec<u32> = (0..products.len() as u32).collect();
        order.sort_by_key(|&i| product_order[i as usize]);
        let sorted_products: Vec<(i64, i64, f32)> =
            order.iter().map(|&i| products[i as usize]).collect();
        let ids: Vec<i64> = sorted_products.iter().map(|p| p.0).collect();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            anyhow::bail!(
                "product {} has more than one row; the model table is damaged",
                w[0]
            );
        }
        let factors: Vec<f32> = order
            .iter()
            .flat_map(|&i| {
                product_factors[i as usize * f..(i as usize + 1) * f]
                    .iter()
                    .copied()
            })
            .collect();
        products = sorted_products;
        (ids, factors)
    };
    let user_pos: crate::rng::FastMap<i64, u32> = user_ids
        .iter()
        .enumerate()
        .map(|(i, &u)| (u, i as u32))
        .collect();
    let product_pos: HashMap<i64, u32> = product_ids
        .iter()
        .enumerate()
        .map(|(i, &p)| (p, i as u32))
        .collect();
    let mut users_of: Vec<Option<u32>> = vec![None; product_ids.len()];
    for (p, users) in product_users {
        if let Some(&p) = product_pos.get(&p) {
            users_of[p as usize] = Some(users as u32);
        }
    }
    let weighting = Weighting::from_rows(
        |name| params.iter().find(|p| p.0 == name).map(|p| p.1),
        users_of,
        users,
    )?;
    let (mut rows, mut cols) = (Vec::new(), Vec::new());
    for (u, p) in purchased {
        if let (Some(&u), Some(&p)) = (user_pos.get(&u), product_pos.get(&p)) {
            rows.push(u);
            cols.push(p);
        }
    }
    let ones = vec![1.0f32; rows.len()];
    let purchased = Csr::from_triplets(user_ids.len(), product_ids.len(), &rows, &cols, &ones)?;
    drop((rows, cols, ones));
    let mut interests: Vec<Vec<(i64, f32)>> = vec![Vec::new(); user_ids.len()];
    for (u, c, share) in interest {
        if let Some(&u) = user_pos.get(&u) {
            interests[u as usize].push((c, share));
        }
    }
    drop(user_pos);
    let mut attributes = crate::model::ProductAttributes::unknown(product_ids.len());
    for (p, brand) in brands {
        if let Some(&i) = product_pos.get(&p) {
            attributes.brand[i as usize] = Some(brand);
        }
    }
    for (p, price) in prices {
        if let Some(&i) = product_pos.get(&p) {
            // A price that is not a finite number is no price.
            attributes.price[i as usize] = if price.is_finite() { price } else { f64::NAN };
        }
    }
    for list in &mut interests {
        list.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    }
    FactorModel::from_table(
        ModelParts {
            factors: f,
            user_ids,
            product_ids,
            user_factors,
            product_category: products.iter().map(|p| p.1).collect(),
            popularity: products.iter().map(|p| p.2).collect(),
            item_factors,
            purchased,
            interest: interests,
            blend: blend.unwrap_or(super::LEGACY_BLEND),
            attributes,
            weighting,
        },
        model_id,
    )
}

/// The small model the tests of the model table and of its binding share:
/// 2 users, 3 products (one without a price, one without a brand), 2 factors.
#[cfg(test)]
pub(crate) fn model_parts() -> ModelParts {
    ModelParts {
        factors: 2,
        user_ids: vec![5, 9],
        product_ids: vec![100, 200, 300],
        user_factors: vec![0.1, 0.2, 0.3, 0.4],
        item_factors: vec![1.0, 0.0, 0.0, 1.0, 0.5, 0.5],
        product_category: vec![7, 7, 8],
        popularity: vec![3.0, 0.5, 1.0],
        purchased: Csr::from_triplets(2, 3, &[1], &[2], &[1.0]).unwrap(),
        interest: vec![vec![(7, 1.0)], vec![(8, 0.6), (7, 0.4)]],
        blend: 0.3,
        attributes: crate::model::ProductAttributes {
            brand: vec![Some("acme".into()), None, Some("zeta".into())],
            price: vec![f64::NAN, 2.5, 10.0],
        },
        weighting: Weighting::raw(),
    }
}

#[cfg(test)]
mod tests;
