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
//! | product   | product_id | category_id |       | popularity             | FLOAT[f] |
//! | purchased | user_id    | product_id  |       |                        |          |
//! | interest  | user_id    | category_id |       | share of interactions  |          |
//!
//! Rows come in that order: the `model_id` param first, the other params,
//! the loss per iteration, the users, the products, then per user their
//! purchases and interests. [`ModelTable`] writes any range of them on
//! demand, so a model of millions of users reaches DuckDB in bounded blocks.

use super::csr::Csr;
use super::FactorModel;
use crate::binding::blocks::BlockSource;
use crate::binding::rows::{Col, RowSet};
use crate::binding::{Column, SqlType};
use std::collections::HashMap;

pub fn columns() -> Vec<Column> {
    vec![
        Column::new("seq", SqlType::BigInt),
        Column::new("model_id", SqlType::BigInt),
        Column::new("side", SqlType::Varchar),
        Column::new("id", SqlType::BigInt),
        Column::new("item", SqlType::BigInt),
        Column::new("name", SqlType::Varchar),
        Column::new("value", SqlType::Double),
        Column::new("factors", SqlType::List(Box::new(SqlType::Float))),
    ]
}

/// Model rows per block: a user or product row carries its factors, so a
/// block is at most this many factor lists.
const ROWS_PER_BLOCK: usize = 128;

/// A model with its training parameters and loss, as table rows.
pub struct ModelTable {
    model: FactorModel,
    params: Vec<(String, f64)>,
    loss: Vec<f64>,
    /// Where each user's purchased + interest rows start, relative to the
    /// first such row; one more entry for the end.
    extra_start: Vec<usize>,
}

/// One row, before it is written.
enum Row<'a> {
    Param(&'a str, f64),
    Loss(usize, f64),
    User(usize),
    Product(usize),
    Purchased(usize, u32),
    Interest(usize, i64, f32),
}

struct Cols {
    seq: Col<i64>,
    model_id: Col<i64>,
    side: Col<String>,
    id: Col<i64>,
    item: Col<i64>,
    name: Col<String>,
    value: Col<f64>,
    factors: Col<Vec<f32>>,
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
        ModelTable {
            model,
            params,
            loss,
            extra_start,
        }
    }

    pub fn model(&self) -> &FactorModel {
        &self.model
    }

    fn head(&self) -> usize {
        1 + self.params.len() + self.loss.len()
    }

    /// How many rows the table has.
    pub fn rows(&self) -> usize {
        self.head() + self.model.user_ids.len() + self.model.product_ids.len() + self.extra_start.last().copied().unwrap_or(0)
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

    /// Rows `range` (by seq), written against the declared columns.
    pub fn write(&self, range: std::ops::Range<usize>) -> anyhow::Result<RowSet> {
        let mut out = RowSet::for_columns(&columns());
        let c = Cols {
            seq: out.col("seq")?,
            model_id: out.col("model_id")?,
            side: out.col("side")?,
            id: out.col("id")?,
            item: out.col("item")?,
            name: out.col("name")?,
            value: out.col("value")?,
            factors: out.col("factors")?,
        };
        let m = &self.model;
        for seq in range {
            let (side, id, item, name, value, factors) = match self.row(seq) {
                Row::Param(name, value) => ("param", None, None, Some(name), Some(value), None),
                Row::Loss(i, loss) => ("loss", Some(i as i64), None, None, Some(loss), None),
                Row::User(u) => ("user", Some(m.user_ids[u]), None, None, None, Some(m.user_row(u).to_vec())),
                Row::Product(i) => (
                    "product",
                    Some(m.product_ids[i]),
                    Some(m.product_category[i]),
                    None,
                    Some(m.popularity[i] as f64),
                    Some(m.item_row(i).to_vec()),
                ),
                Row::Purchased(u, i) => ("purchased", Some(m.user_ids[u]), Some(m.product_ids[i as usize]), None, None, None),
                Row::Interest(u, category, share) => {
                    ("interest", Some(m.user_ids[u]), Some(category), None, Some(share as f64), None)
                }
            };
            out.put(c.seq, Some(seq as i64));
            out.put(c.model_id, Some(m.model_id));
            out.put_str(c.side, Some(side));
            out.put(c.id, id);
            out.put(c.item, item);
            out.put_str(c.name, name);
            out.put(c.value, value);
            out.put(c.factors, factors);
        }
        Ok(out)
    }
}

impl BlockSource for ModelTable {
    fn retained_bytes(&self) -> usize {
        let m = &self.model;
        (m.user_factors.len() + m.item_factors.len()) * 4
            + (m.user_ids.len() + self.extra_start.len()) * 8
            + m.interest.iter().map(|i| 24 + i.capacity() * 16).sum::<usize>()
            + m.purchased.indptr.len() * 8
            + m.purchased.nnz() * 8
    }
    fn blocks(&self) -> usize {
        self.rows().div_ceil(ROWS_PER_BLOCK)
    }
    fn block(&self, index: usize) -> anyhow::Result<RowSet> {
        let start = index * ROWS_PER_BLOCK;
        self.write(start..(start + ROWS_PER_BLOCK).min(self.rows()))
    }
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

/// Rebuilds the model `model_id` from its rows (any order).
pub fn from_rows(rows: Vec<ModelRow>, model_id: i64) -> anyhow::Result<FactorModel> {
    let mut users: Vec<(i64, Vec<f32>)> = Vec::new();
    let mut products: Vec<(i64, i64, f32, Vec<f32>)> = Vec::new();
    let mut purchased: Vec<(i64, i64)> = Vec::new();
    let mut interest: Vec<(i64, i64, f32)> = Vec::new();
    let mut blend = super::LEGACY_BLEND;
    let need = |v: Option<i64>, what: &str| {
        v.ok_or_else(|| anyhow::anyhow!("a '{what}' row has a NULL id or item; the model table is damaged"))
    };
    for row in rows {
        match row.side.as_str() {
            "param" if row.name.as_deref() == Some("blend") => {
                blend = row.value.ok_or_else(|| anyhow::anyhow!("the model's blend param row is NULL; the model table is damaged"))? as f32;
            }
            "param" | "loss" => {}
            "user" => users.push((
                need(row.id, "user")?,
                row.factors
                    .ok_or_else(|| anyhow::anyhow!("a user row has no factors; the model table is damaged"))?,
            )),
            "product" => products.push((
                need(row.id, "product")?,
                row.item.unwrap_or(-1),
                row.value.unwrap_or(0.0) as f32,
                row.factors
                    .ok_or_else(|| anyhow::anyhow!("a product row has no factors; the model table is damaged"))?,
            )),
            "purchased" => purchased.push((need(row.id, "purchased")?, need(row.item, "purchased")?)),
            "interest" => interest.push((
                need(row.id, "interest")?,
                need(row.item, "interest")?,
                row.value.unwrap_or(0.0) as f32,
            )),
            other => anyhow::bail!(
                "unknown model row side '{other}'; pass a table made by ecoreco.als_train"
            ),
        }
    }
    anyhow::ensure!(
        !users.is_empty() && !products.is_empty(),
        "the model has no user or no product rows; pass a table made by ecoreco.als_train"
    );
    users.sort_by_key(|u| u.0);
    products.sort_by_key(|p| p.0);
    if let Some(w) = users.windows(2).find(|w| w[0].0 == w[1].0) {
        anyhow::bail!("user {} has more than one row; the model table is damaged", w[0].0);
    }
    if let Some(w) = products.windows(2).find(|w| w[0].0 == w[1].0) {
        anyhow::bail!("product {} has more than one row; the model table is damaged", w[0].0);
    }
    let f = products[0].3.len();
    anyhow::ensure!(f > 0, "the model's factors are empty; the model table is damaged");
    if let Some(bad) = users
        .iter()
        .map(|u| u.1.len())
        .chain(products.iter().map(|p| p.3.len()))
        .find(|&n| n != f)
    {
        anyhow::bail!("factor lists have different lengths ({f} and {bad}); the model table is damaged");
    }
    let user_ids: Vec<i64> = users.iter().map(|u| u.0).collect();
    let product_ids: Vec<i64> = products.iter().map(|p| p.0).collect();
    let user_pos: HashMap<i64, u32> = user_ids.iter().enumerate().map(|(i, &u)| (u, i as u32)).collect();
    let product_pos: HashMap<i64, u32> = product_ids.iter().enumerate().map(|(i, &p)| (p, i as u32)).collect();
    let (mut rows, mut cols) = (Vec::new(), Vec::new());
    for (u, p) in purchased {
        if let (Some(&u), Some(&p)) = (user_pos.get(&u), product_pos.get(&p)) {
            rows.push(u);
            cols.push(p);
        }
    }
    let ones = vec![1.0f32; rows.len()];
    let purchased = Csr::from_triplets(user_ids.len(), product_ids.len(), &rows, &cols, &ones)?;
    let mut interests: Vec<Vec<(i64, f32)>> = vec![Vec::new(); user_ids.len()];
    for (u, c, share) in interest {
        if let Some(&u) = user_pos.get(&u) {
            interests[u as usize].push((c, share));
        }
    }
    for list in &mut interests {
        list.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    }
    let model = FactorModel {
        model_id,
        factors: f,
        user_ids,
        product_ids,
        user_factors: users.into_iter().flat_map(|u| u.1).collect(),
        product_category: products.iter().map(|p| p.1).collect(),
        popularity: products.iter().map(|p| p.2).collect(),
        item_factors: products.into_iter().flat_map(|p| p.3).collect(),
        purchased,
        interest: interests,
        blend,
    };
    model.validate()?;
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binding::rows::Values;

    fn model() -> FactorModel {
        FactorModel {
            model_id: 12345,
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
        }
    }

    /// Reads written rows back as ModelRows, in reverse (any order must do).
    fn read_back(rows: &RowSet) -> Vec<ModelRow> {
        let get = |name: &str| &rows.columns.iter().find(|(n, _)| n == name).unwrap().1;
        let (Values::Text(side), Values::BigInt(id), Values::BigInt(item), Values::Text(name), Values::Double(value), Values::FloatList(factors)) =
            (get("side"), get("id"), get("item"), get("name"), get("value"), get("factors"))
        else {
            panic!("column types")
        };
        (0..rows.rows())
            .map(|i| ModelRow {
                side: side[i].clone().unwrap(),
                id: id[i],
                item: item[i],
                name: name[i].clone(),
                value: value[i],
                factors: factors[i].clone(),
            })
            .rev()
            .collect()
    }

    #[test]
    fn model_round_trips_through_rows_in_any_block_size() {
        let table = ModelTable::new(model(), vec![("factors".into(), 2.0)], vec![0.5, 0.25]);
        // 1 model_id + 2 params (factors, blend) + 2 loss + 2 users + 3 products + 1 purchase + 3 interests.
        assert_eq!(table.rows(), 14);
        let whole = table.write(0..table.rows()).unwrap();
        let mut pieces = Vec::new();
        for start in (0..14).step_by(4) {
            pieces.extend(read_back(&table.write(start..(start + 4).min(14)).unwrap()).into_iter().rev());
        }
        let whole_rows: Vec<ModelRow> = read_back(&whole).into_iter().rev().collect();
        assert_eq!(format!("{pieces:?}"), format!("{whole_rows:?}"));
        assert_eq!(whole_rows[0].name.as_deref(), Some("model_id"));
        assert_eq!(whole_rows[13].side, "interest");
        assert_eq!((whole_rows[2].name.as_deref(), whole_rows[2].value), (Some("blend"), Some(0.3)));
        let back = from_rows(read_back(&whole), 12345).unwrap();
        let m = model();
        assert_eq!(back.user_ids, m.user_ids);
        assert_eq!(back.product_ids, m.product_ids);
        assert_eq!(back.user_factors, m.user_factors);
        assert_eq!(back.item_factors, m.item_factors);
        assert_eq!(back.product_category, m.product_category);
        assert_eq!(back.popularity, m.popularity);
        assert_eq!(back.purchased.row(1).0, &[2]);
        assert_eq!(back.interest, m.interest);
        assert_eq!(back.blend, 0.3);
        // A table without a blend row (made before models stored one) is
        // served with the blend such models had.
        let legacy: Vec<ModelRow> = read_back(&whole).into_iter().filter(|r| r.name.as_deref() != Some("blend")).collect();
        assert_eq!(from_rows(legacy, 12345).unwrap().blend, crate::model::LEGACY_BLEND);
    }

    #[test]
    fn damaged_models_are_refused() {
        let mut rows = vec![ModelRow {
            side: "param".into(),
            name: Some("model_id".into()),
            value: Some(1.0),
            ..Default::default()
        }];
        assert!(from_rows(rows.clone(), 1).unwrap_err().to_string().contains("no user or no product"));
        rows.push(ModelRow { side: "user".into(), id: Some(1), factors: Some(vec![1.0, 2.0]), ..Default::default() });
        rows.push(ModelRow { side: "product".into(), id: Some(1), factors: Some(vec![1.0]), ..Default::default() });
        assert!(from_rows(rows.clone(), 1).unwrap_err().to_string().contains("different lengths"));
        rows.push(ModelRow { side: "bogus".into(), ..Default::default() });
        assert!(from_rows(rows, 1).unwrap_err().to_string().contains("unknown model row side"));
    }
}
