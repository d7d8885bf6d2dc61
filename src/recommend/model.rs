//! A trained recommender as rows, and the in-process cache of served models.
//!
//! Models are data: `als_train` returns rows that the user stores with
//! CREATE TABLE AS, exports with COPY and queries from BI tools. One table,
//! one row kind per `side`:
//!
//! Every row also carries `seq`, its position (0, 1, …), and the model's
//! `model_id` (a hash of its content; constant per table, so it costs
//! nothing to store): a serving query that finds the model cached reads only
//! the row `seq = 0` (zone maps skip the rest) to learn which model the
//! table holds.
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
//! Serving a model reads all its rows; to answer `recommend(user_id)` in a
//! few milliseconds the indexed model is kept in a small in-process cache
//! keyed by `model_id`, a hash of the model's content stored in its `param`
//! rows. A model table is treated as immutable: change its rows and you must
//! also change (or drop) its model_id row.

use super::serving::ServingModel;
use crate::model::csr::Csr;
use crate::binding::rows::{RowSet, Values};
use crate::binding::{Column, SqlType};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

pub fn model_columns() -> Vec<Column> {
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

/// Column-wise builder of model rows.
#[derive(Default)]
pub struct ModelRows {
    model_id: i64,
    side: Vec<Option<String>>,
    id: Vec<Option<i64>>,
    item: Vec<Option<i64>>,
    name: Vec<Option<String>>,
    value: Vec<Option<f64>>,
    factors: Vec<Option<Vec<f32>>>,
}

impl ModelRows {
    pub fn push(
        &mut self,
        side: &str,
        id: Option<i64>,
        item: Option<i64>,
        name: Option<&str>,
        value: Option<f64>,
        factors: Option<Vec<f32>>,
    ) {
        self.side.push(Some(side.to_string()));
        self.id.push(id);
        self.item.push(item);
        self.name.push(name.map(str::to_string));
        self.value.push(value);
        self.factors.push(factors);
    }
    pub fn into_rowset(self) -> RowSet {
        let n = self.side.len();
        RowSet::new()
            .with("seq", Values::BigInt((0..n as i64).map(Some).collect()))
            .with("model_id", Values::BigInt(vec![Some(self.model_id); n]))
            .with("side", Values::Text(self.side))
            .with("id", Values::BigInt(self.id))
            .with("item", Values::BigInt(self.item))
            .with("name", Values::Text(self.name))
            .with("value", Values::Double(self.value))
            .with("factors", Values::FloatList(self.factors))
    }
}

/// Writes a serving model (and its training parameters and loss) as rows.
pub fn to_rows(model: &ServingModel, params: &[(&str, f64)], loss: &[f64]) -> ModelRows {
    let mut rows = ModelRows {
        model_id: model.model_id,
        ..ModelRows::default()
    };
    rows.push(
        "param",
        None,
        None,
        Some("model_id"),
        Some(model.model_id as f64),
        None,
    );
    for &(name, value) in params {
        rows.push("param", None, None, Some(name), Some(value), None);
    }
    for (i, &l) in loss.iter().enumerate() {
        rows.push("loss", Some(i as i64 + 1), None, None, Some(l), None);
    }
    let f = model.factors;
    for (u, &user) in model.user_ids.iter().enumerate() {
        rows.push(
            "user",
            Some(user),
            None,
            None,
            None,
            Some(model.user_factors[u * f..(u + 1) * f].to_vec()),
        );
    }
    for (i, &product) in model.product_ids.iter().enumerate() {
        rows.push(
            "product",
            Some(product),
            Some(model.product_category[i]),
            None,
            Some(model.popularity[i] as f64),
            Some(model.item_factors()[i * f..(i + 1) * f].to_vec()),
        );
    }
    for (u, &user) in model.user_ids.iter().enumerate() {
        for &i in model.purchased.row(u).0 {
            rows.push(
                "purchased",
                Some(user),
                Some(model.product_ids[i as usize]),
                None,
                None,
                None,
            );
        }
        for &(category, share) in &model.interest[u] {
            rows.push(
                "interest",
                Some(user),
                Some(category),
                None,
                Some(share as f64),
                None,
            );
        }
    }
    rows
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

/// Rebuilds the serving model `model_id` from its rows (any order).
pub fn from_rows(rows: Vec<ModelRow>, model_id: i64) -> anyhow::Result<ServingModel> {
    let mut users: Vec<(i64, Vec<f32>)> = Vec::new();
    let mut products: Vec<(i64, i64, f32, Vec<f32>)> = Vec::new();
    let mut purchased: Vec<(i64, i64)> = Vec::new();
    let mut interest: Vec<(i64, i64, f32)> = Vec::new();
    let need = |v: Option<i64>, what: &str| {
        v.ok_or_else(|| anyhow::anyhow!("a '{what}' row has a NULL id or item"))
    };
    for row in rows {
        match row.side.as_str() {
            "param" | "loss" => {}
            "user" => users.push((
                need(row.id, "user")?,
                row.factors
                    .ok_or_else(|| anyhow::anyhow!("a user row has no factors"))?,
            )),
            "product" => products.push((
                need(row.id, "product")?,
                row.item.unwrap_or(-1),
                row.value.unwrap_or(0.0) as f32,
                row.factors
                    .ok_or_else(|| anyhow::anyhow!("a product row has no factors"))?,
            )),
            "purchased" => {
                purchased.push((need(row.id, "purchased")?, need(row.item, "purchased")?))
            }
            "interest" => interest.push((
                need(row.id, "interest")?,
                need(row.item, "interest")?,
                row.value.unwrap_or(0.0) as f32,
            )),
            other => anyhow::bail!(
                "unknown model row side '{other}'; is this a table made by ecoreco.als_train?"
            ),
        }
    }
    anyhow::ensure!(
        !users.is_empty() && !products.is_empty(),
        "the model has no user or no product rows"
    );
    users.sort_by_key(|u| u.0);
    products.sort_by_key(|p| p.0);
    let f = products[0].3.len();
    anyhow::ensure!(f > 0, "the model's factors are empty");
    if let Some(bad) = users
        .iter()
        .map(|u| u.1.len())
        .chain(products.iter().map(|p| p.3.len()))
        .find(|&n| n != f)
    {
        anyhow::bail!(
            "factor lists have different lengths ({f} and {bad}); the model table is damaged"
        );
    }
    let user_ids: Vec<i64> = users.iter().map(|u| u.0).collect();
    let product_ids: Vec<i64> = products.iter().map(|p| p.0).collect();
    let user_pos: HashMap<i64, u32> = user_ids
        .iter()
        .enumerate()
        .map(|(i, &u)| (u, i as u32))
        .collect();
    let product_pos: HashMap<i64, u32> = product_ids
        .iter()
        .enumerate()
        .map(|(i, &p)| (p, i as u32))
        .collect();
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
    ServingModel::new(
        model_id,
        f,
        user_ids,
        product_ids,
        users.into_iter().flat_map(|u| u.1).collect(),
        products.iter().flat_map(|p| p.3.iter().copied()).collect(),
        products.iter().map(|p| p.1).collect(),
        products.iter().map(|p| p.2).collect(),
        purchased,
        interests,
    )
}

/// Models recently trained or loaded in this process, newest last.
const CACHED_MODELS: usize = 4;

fn cache() -> &'static Mutex<Vec<Arc<ServingModel>>> {
    static CACHE: OnceLock<Mutex<Vec<Arc<ServingModel>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

pub fn cached(model_id: i64) -> Option<Arc<ServingModel>> {
    let mut models = cache().lock().ok()?;
    let at = models.iter().position(|m| m.model_id == model_id)?;
    let model = models.remove(at);
    models.push(model.clone());
    Some(model)
}

/// Which model each model table (by the name the caller used) held when
/// it was last read: lets a query skip reading a cached model's rows.
fn table_models() -> &'static Mutex<HashMap<String, i64>> {
    static TABLES: OnceLock<Mutex<HashMap<String, i64>>> = OnceLock::new();
    TABLES.get_or_init(Default::default)
}

/// The cached model last read from `table`, if it is still cached.
pub fn cached_for_table(table: &str) -> Option<Arc<ServingModel>> {
    let id = *table_models().lock().ok()?.get(table)?;
    let models = cache().lock().ok()?;
    models.iter().find(|m| m.model_id == id).cloned()
}

pub fn note_table(table: &str, model_id: i64) {
    if let Ok(mut tables) = table_models().lock() {
        tables.insert(table.to_string(), model_id);
    }
}

pub fn forget_table(table: &str) {
    if let Ok(mut tables) = table_models().lock() {
        tables.remove(table);
    }
}

/// Drops every cached model; returns how many there were.
pub fn forget_all() -> usize {
    if let Ok(mut tables) = table_models().lock() {
        tables.clear();
    }
    cache()
        .lock()
        .map(|mut models| std::mem::take(&mut *models).len())
        .unwrap_or(0)
}

pub fn remember(model: ServingModel) -> Arc<ServingModel> {
    let model = Arc::new(model);
    if let Ok(mut models) = cache().lock() {
        models.retain(|m| m.model_id != model.model_id);
        models.push(model.clone());
        while models.len() > CACHED_MODELS {
            models.remove(0);
        }
    }
    model
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rowset_to_rows(rows: ModelRows) -> Vec<ModelRow> {
        (0..rows.side.len())
            .map(|i| ModelRow {
                side: rows.side[i].clone().unwrap(),
                id: rows.id[i],
                item: rows.item[i],
                name: rows.name[i].clone(),
                value: rows.value[i],
                factors: rows.factors[i].clone(),
            })
            .rev() // any order must do
            .collect()
    }

    #[test]
    fn model_round_trips_through_rows() {
        let purchased = Csr::from_triplets(2, 3, &[1], &[2], &[1.0]).unwrap();
        let model = ServingModel::new(
            12345,
            2,
            vec![5, 9],
            vec![100, 200, 300],
            vec![0.1, 0.2, 0.3, 0.4],
            vec![1.0, 0.0, 0.0, 1.0, 0.5, 0.5],
            vec![7, 7, 8],
            vec![3.0, 0.5, 1.0],
            purchased,
            vec![vec![(7, 1.0)], vec![(8, 0.6), (7, 0.4)]],
        )
        .unwrap();
        let rows = to_rows(&model, &[("factors", 2.0)], &[0.5, 0.25]);
        let back = from_rows(rowset_to_rows(rows), 12345).unwrap();
        assert_eq!(back.model_id, 12345);
        assert_eq!(back.user_ids, model.user_ids);
        assert_eq!(back.product_ids, model.product_ids);
        assert_eq!(back.user_factors, model.user_factors);
        assert_eq!(back.item_factors(), model.item_factors());
        assert_eq!(back.product_category, model.product_category);
        assert_eq!(back.popularity, model.popularity);
        assert_eq!(back.purchased.row(1).0, &[2]);
        assert_eq!(back.interest, model.interest);
    }

    #[test]
    fn damaged_models_are_refused() {
        let mut rows = vec![ModelRow {
            side: "param".into(),
            name: Some("model_id".into()),
            value: Some(1.0),
            ..Default::default()
        }];
        assert!(from_rows(rows.clone(), 1)
            .unwrap_err()
            .to_string()
            .contains("no user or no product"));
        rows.push(ModelRow {
            side: "user".into(),
            id: Some(1),
            factors: Some(vec![1.0, 2.0]),
            ..Default::default()
        });
        rows.push(ModelRow {
            side: "product".into(),
            id: Some(1),
            factors: Some(vec![1.0]),
            ..Default::default()
        });
        assert!(from_rows(rows.clone(), 1)
            .unwrap_err()
            .to_string()
            .contains("different lengths"));
        rows.push(ModelRow {
            side: "bogus".into(),
            ..Default::default()
        });
        assert!(from_rows(rows, 1)
            .unwrap_err()
            .to_string()
            .contains("unknown model row side"));
    }

    #[test]
    fn content_hash_fits_a_double_and_changes_with_content() {
        let a = model_id(&[&[1.0, 2.0]], &[&[1]]);
        let b = model_id(&[&[1.0, 2.5]], &[&[1]]);
        assert_ne!(a, b);
        assert_eq!((a as f64) as i64, a);
    }
}
