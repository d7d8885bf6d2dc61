//! `ecoreco.explain(model, user_id, product_id, events := 'events', k := 5)`:
//! why `recommend` scored a product for a user, as rows whose
//! contributions add up to the score it printed.
//!
//! The collaborative part is split over the user's history by the
//! decomposition of Hu, Koren and Volinsky ([`kernel`]), from the user's
//! rows in `events` weighed as the trainer weighed them (event weights
//! summed per product and capped, decayed and transformed by the model's
//! confidence: the fold-in's recipe). A model's stored user vector comes
//! from the last of a few conjugate-gradient steps, not the exact solve the
//! decomposition describes; the difference is its own row
//! (`model_residual`), so the parts add up to the printed score exactly.
//! The category-interest and popularity parts of the blend are rows too.

pub mod kernel;

use crate::binding::aggregate::{self, AggregateFunction};
use crate::binding::blocks::{BlockSource, Computed};
use crate::binding::rows::{InputChunk, RowSet};
use crate::binding::scalar::ScalarFunction;
use crate::binding::{Args, Check, Column, ColumnWriter, Param, SqlMacro, SqlType, Value};
use crate::budget;
use crate::recommend::serving::{Recommendation, ServingModel, Source};
use crate::stream::foldin::FoldIn;
use crate::stream::functions::{
    blend, model_inputs, model_params, weights, ModelInput, MODEL_FEED,
};
use crate::stream::state::{Kind, Weights};
use anyhow::{anyhow, bail, ensure, Result};
use kernel::Explainer;
use std::sync::Arc;

/// The parts a score is made of, as the `part` column names them.
pub const HISTORY: &str = "history";
pub const OTHER_HISTORY: &str = "other_history";
pub const MODEL_RESIDUAL: &str = "model_residual";
pub const CATEGORY_INTEREST: &str = "category_interest";
pub const POPULAR: &str = "popular";
pub const ITEM_TO_ITEM: &str = "item_to_item";

/// One row of an explanation.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    pub product: u32,
    /// The history product, for a `history` part.
    pub because: Option<u32>,
    pub contribution: f64,
    pub part: &'static str,
}

/// One event of the user, as the macro feeds it.
#[derive(Clone, Copy, Debug)]
pub struct UserEvent {
    pub kind: Option<Kind>,
    pub product: Option<i64>,
    pub category: Option<i64>,
    /// Epoch seconds (NaN: none).
    pub time: f64,
}

/// What to explain and how `recommend` was called.
pub struct Request<'a> {
    pub user_id: i64,
    pub products: &'a [i64],
    /// History rows kept per product (the rest is summed in one row).
    pub k: usize,
    /// The `k` of the `recommend` call whose scores are explained.
    pub list_k: usize,
    pub blend: f32,
    pub exclude_purchased: bool,
    pub weights: Weights,
    /// A known user's item-to-item weight (`None`: the model's).
    pub item_weight: Option<f32>,
}

/// The user's history as the trainer weighs it: model products touched
/// (ascending index) and their transformed weights.
pub fn history(
    model: &ServingModel,
    fold: &FoldIn,
    events: &[UserEvent],
    weights: &Weights,
) -> (Vec<u32>, Vec<f32>) {
    let mut sums: Vec<(u32, f32, f64)> = Vec::new();
    for e in events {
        let (Some(kind), Some(item)) = (e.kind, e.product.and_then(|p| model.product(p))) else {
            continue;
        };
        match sums.iter_mut().find(|s| s.0 == item) {
            Some(s) => {
                s.1 += weights.of(kind);
                s.2 = if s.2.is_nan() {
                    e.time
                } else {
                    s.2.max(e.time)
                };
            }
            None => sums.push((item, weights.of(kind), e.time)),
        }
    }
    sums.sort_by_key(|s| s.0);
    let items: Vec<u32> = sums.iter().map(|s| s.0).collect();
    let decayed: Vec<f32> = sums
        .iter()
        .map(|s| fold.weighting().decay(s.1.min(weights.cap), s.2))
        .collect();
    let mut transformed = Vec::new();
    fold.weighting().row(&items, &decayed, &mut transformed);
    (items, transformed)
}

/// The parts of each requested product's score, as `recommend(user_id,
/// k := list_k, blend, exclude_purchased)` computes it: for a product that
/// call lists as `popular`, its popularity; else `(1 − blend) · als +
/// blend · interest`, the collaborative part split over the history (a
/// product that call proposed by category interest alone, outside the
/// collaborative candidates, has no collaborative part).
pub fn explain(
    model: &ServingModel,
    fold: &FoldIn,
    events: &[UserEvent],
    request: &Request,
) -> Result<Vec<Part>> {
    let user = model.user(request.user_id);
    // A user the model does not know: interest and purchases from their events.
    let mut counts: std::collections::HashMap<i64, f32> = Default::default();
    let mut cold_bought = Vec::new();
    for e in events.iter().filter(|e| e.kind.is_some()) {
        if let Some(c) = e.category {
            *counts.entry(c).or_default() += 1.0;
        }
        if e.kind == Some(Kind::Purchase) {
            cold_bought.extend(e.product.and_then(|p| model.product(p)));
        }
    }
    let cold_interest = crate::model::top_categories(&counts);
    let (interest, also) = match user {
        Some(u) => (model.interest[u as usize].as_slice(), &[][..]),
        None => (cold_interest.as_slice(), cold_bought.as_slice()),
    };
    // A known user's list in a model with a user_item_weight is the blend
    // of their own list of `user_base_length` and the item-to-item scores
    // of their latest products (recommend::items): the own list is
    // explained as below, then each part scaled to the rank part it became.
    let item_side = user.and_then(|u| {
        crate::recommend::items::user_item_scores(
            model,
            u,
            also,
            request.exclude_purchased,
            request.item_weight,
        )
    });
    let (k, blend) = match item_side {
        Some(_) => (
            crate::recommend::items::user_base_length(request.list_k),
            request.blend,
        ),
        None => (request.list_k, request.blend),
    };
    let list = model.recommend(user, interest, also, k, blend, request.exclude_purchased);
    let mut excluded: Vec<u32> = Vec::new();
    if request.exclude_purchased {
        excluded.extend_from_slice(also);
        if let Some(u) = user {
            excluded.extend_from_slice(model.purchased.row(u as usize).0);
        }
        excluded.sort_unstable();
        excluded.dedup();
    }
    let vector = user
        .filter(|_| blend < 1.0)
        .map(|u| &model.user_factors[u as usize * model.factors..(u as usize + 1) * model.factors]);
    let als_top = vector.map_or_else(Vec::new, |x| {
        model.collaborative_top(x, ServingModel::collaborative_candidates(k), &excluded)
    });
    let als_max = als_top.first().map_or(0.0, |t| t.1);
    let als_scale = if als_max > 0.0 { 1.0 / als_max } else { 0.0 };
    let explainer = match vector {
        Some(_) => {
            let (items, transformed) = history(model, fold, events, &request.weights);
            Some(Explainer::new(
                fold.gram(),
                model.item_factors(),
                model.factors,
                fold.alpha,
                &items,
                &transformed,
            )?)
        }
        None => None,
    };
    // The item-to-item side of a known user's blend, when there is one:
    // its rows, and the product's other parts (from `start`) scaled to it.
    let item_parts = |parts: &mut Vec<Part>, product: u32, start: usize| {
        if let (Some((w, new_w, scored)), Some(u)) = (&item_side, user) {
            blended_parts(model, u, &list, scored, (*w, *new_w), product, parts, start);
        }
    };
    let mut parts = Vec::new();
    for &product_id in request.products {
        let start = parts.len();
        let product = model.product(product_id).ok_or_else(|| {
            anyhow!("product {product_id} is not in the model (it had no interactions in the training data); pass a product_id of the model")
        })?;
        let listed: Option<&Recommendation> = list.iter().find(|r| r.product == product);
        if let Some(r) = listed.filter(|r| r.source == Source::Popular) {
            parts.push(Part {
                product,
                because: None,
                contribution: r.score as f64,
                part: POPULAR,
            });
            item_parts(&mut parts, product, start);
            continue;
        }
        // As recommend's blend: f32, the same operations.
        let category = model.product_category[product as usize];
        let share = interest
            .iter()
            .fold(0.0f32, |v, c| if c.0 == category { c.1 } else { v });
        let b = blend * (share * model.popularity_score(product));
        let in_top = als_top.iter().any(|t| t.0 == product);
        let interest_only = listed.is_some() && !in_top;
        if let (Some(x), Some(explainer), false) = (vector, &explainer, interest_only) {
            let s = model.collaborative_score(x, product);
            let a = (1.0 - blend) * (s * als_scale);
            let scale = (1.0 - blend) as f64 * als_scale as f64;
            let mut history: Vec<(u32, f64)> = explainer
                .items()
                .iter()
                .copied()
                .zip(explainer.contributions(model.item_factors(), product))
                .map(|(j, c)| (j, c * scale))
                .collect();
            history.sort_by(|p, q| {
                q.1.total_cmp(&p.1)
                    .then(model.product_ids[p.0 as usize].cmp(&model.product_ids[q.0 as usize]))
            });
            let explained: f64 = history.iter().map(|h| h.1).sum();
            let rest: f64 = history.iter().skip(request.k).map(|h| h.1).sum();
            parts.extend(history.iter().take(request.k).map(|&(j, c)| Part {
                product,
                because: Some(j),
                contribution: c,
                part: HISTORY,
            }));
            if history.len() > request.k {
                parts.push(Part {
                    product,
                    because: None,
                    contribution: rest,
                    part: OTHER_HISTORY,
                });
            }
            parts.push(Part {
                product,
                because: None,
                contribution: a as f64 - explained,
                part: MODEL_RESIDUAL,
            });
        }
        if b != 0.0 {
            parts.push(Part {
                product,
                because: None,
                contribution: b as f64,
                part: CATEGORY_INTEREST,
            });
        }
        item_parts(&mut parts, product, start);
    }
    Ok(parts)
}

/// The parts of `product`'s score in a known user's blended list (`list`
/// their own list, `parts[start..]` its parts of the product's score
/// there; `scored` the item-to-item scores, best first, at weights `w`
/// and `new_w`): `(1 − w) · (L − r) / L + share · s / s_max`
/// (recommend::items::user_share), the own
/// parts scaled to the first term (dropped when the product is not in the
/// own list), one `item_to_item` part per latest product of the user that
/// adds to `s`. A product in neither list keeps its own parts.
#[allow(clippy::too_many_arguments)]
fn blended_parts(
    model: &ServingModel,
    user: u32,
    list: &[Recommendation],
    scored: &[(u32, f32)],
    (w, new_w): (f32, f32),
    product: u32,
    parts: &mut Vec<Part>,
    start: usize,
) {
    let Some(items) = model.items.as_ref() else {
        return;
    };
    let at = list.iter().position(|r| r.product == product);
    let in_items = scored.iter().any(|x| x.0 == product);
    if at.is_none() && !in_items {
        return;
    }
    let len = list.len().max(1) as f32;
    match at {
        Some(r) => {
            let rank_part = ((1.0 - w) * (len - r as f32) / len) as f64;
            let own: f64 = parts[start..].iter().map(|p| p.contribution).sum();
            if own != 0.0 {
                for p in &mut parts[start..] {
                    p.contribution *= rank_part / own;
                }
            } else {
                // Nothing to scale (a popular fill of score 0): the rank
                // part as the row of the list it came from.
                parts.truncate(start);
                parts.push(Part {
                    product,
                    because: None,
                    contribution: rank_part,
                    part: if list[r].source == Source::Popular {
                        POPULAR
                    } else {
                        MODEL_RESIDUAL
                    },
                });
            }
        }
        None => parts.truncate(start),
    }
    let top = scored.first().map_or(0.0, |x| x.1);
    if in_items && top > 0.0 {
        let latest = items.recent.of(user);
        let share = crate::recommend::items::user_share(latest, product, w, new_w);
        let steps = crate::covisit::session::step_parts(
            &items.model,
            items.recent.of(user),
            &items.blend,
            product,
        );
        parts.extend(steps.into_iter().map(|(j, s)| Part {
            product,
            because: Some(j),
            contribution: share as f64 * s as f64 / top as f64,
            part: ITEM_TO_ITEM,
        }));
    }
}

#[derive(Default)]
pub struct ExplainState {
    products: Option<Vec<i64>>,
    events: Vec<UserEvent>,
    model: ModelInput,
}

/// `ecoreco_explain`: fed the products to explain (a list, the same on
/// every row), the user's events and the model's rows.
pub struct Explain;
impl AggregateFunction for Explain {
    const NAME: &'static str = "ecoreco_explain";
    const FUNCTION: &'static str = "ecoreco.explain";
    const EMPTY: &'static str = crate::model::table::EMPTY_MODEL;
    type State = ExplainState;
    fn inputs() -> Vec<Column> {
        use SqlType::*;
        let mut c = vec![
            Column::new("product_ids", List(Box::new(BigInt))),
            Column::new("event_type", Varchar),
            Column::new("product_id", BigInt),
            Column::new("category_id", BigInt),
            Column::new("time_s", Double),
        ];
        c.extend(model_inputs());
        c
    }
    fn params() -> Vec<Param> {
        use SqlType::*;
        let mut p = model_params();
        p.push(Param::supplied("user_id", BigInt, "uid").nullable());
        p.push(
            Param::named(
                "k",
                BigInt,
                Value::Int(5),
                "how many history products to name per product, e.g. k := 5",
            )
            .check(Check::IntRange(1, 10_000)),
        );
        p.push(
            Param::named(
                "list_k",
                BigInt,
                Value::Int(10),
                "the k of the recommend call whose scores are explained, e.g. list_k := 10",
            )
            .check(Check::IntRange(1, 10_000)),
        );
        p.extend(
            crate::recommend::serving_params()
                .into_iter()
                .filter(|p| p.name != "k"),
        );
        p.push(crate::recommend::items::weight_param());
        p.extend(crate::als::weight_params());
        p.extend(crate::binding::params::settings_params());
        p
    }
    fn columns() -> Vec<Column> {
        vec![
            Column::new("product_id", SqlType::BigInt),
            Column::new("because_product_id", SqlType::BigInt),
            Column::new("contribution", SqlType::Double),
            Column::new("share", SqlType::Double),
            Column::new("part", SqlType::Varchar),
        ]
    }
    fn update(
        state: &mut ExplainState,
        _call: &Args,
        input: &InputChunk,
        rows: std::ops::Range<usize>,
    ) -> Result<()> {
        let (products, e, m) = (
            input.col("product_ids")?,
            input.col("event_type")?,
            input.col("side")?,
        );
        for row in rows {
            if state.products.is_none() {
                match input.list::<i64>(products, row) {
                    None => {}
                    Some(Err(_)) => bail!("product_id is NULL; pass the id of a product"),
                    Some(Ok(v)) => state.products = Some(v.to_vec()),
                }
            }
            if state.model.read(input, row, m)? {
                continue;
            }
            budget::reserve(&mut state.events, 1, "the user's events")?;
            state.events.push(UserEvent {
                kind: input.str(e, row).and_then(Kind::parse),
                product: input.i64(e + 1, row),
                category: input.i64(e + 2, row),
                time: input.f64(e + 3, row).unwrap_or(f64::NAN),
            });
        }
        Ok(())
    }
    fn combine(target: &mut ExplainState, source: ExplainState) -> Result<()> {
        if target.products.is_none() {
            target.products = source.products;
        }
        budget::reserve(&mut target.events, source.events.len(), "the user's events")?;
        target.events.extend(source.events);
        target.model.merge(source.model)
    }
    fn finalize(state: ExplainState, call: &Args) -> Result<Arc<dyn BlockSource>> {
        let user_id = call
            .opt_int("user_id")?
            .ok_or_else(|| anyhow!("user_id is NULL; pass the id of a user"))?;
        let products = state.products.unwrap_or_default();
        let pool = crate::threads::pool(call.int("threads")?)?;
        let (model, fold) = state.model.load(call, &pool)?;
        let request = Request {
            user_id,
            products: &products,
            k: call.int("k")? as usize,
            list_k: call.int("list_k")? as usize,
            blend: blend(call, &model)?,
            exclude_purchased: call.boolean("exclude_purchased")?,
            weights: weights(call)?,
            item_weight: crate::recommend::items::call_weight(call)?,
        };
        let parts = pool.install(|| explain(&model, &fold, &state.events, &request))?;
        let mut rows = RowSet::for_columns(&Self::columns());
        let (product, because) = (rows.col("product_id")?, rows.col("because_product_id")?);
        let (contribution, share) = (rows.col("contribution")?, rows.col("share")?);
        let part = rows.col("part")?;
        for p in &parts {
            let total: f64 = parts
                .iter()
                .filter(|q| q.product == p.product)
                .map(|q| q.contribution)
                .sum();
            rows.put(product, Some(model.product_ids[p.product as usize]));
            rows.put(because, p.because.map(|j| model.product_ids[j as usize]));
            rows.put(contribution, Some(p.contribution));
            rows.put(share, (total != 0.0).then(|| p.contribution / total));
            rows.put_str(part, Some(p.part));
        }
        Ok(Arc::new(Computed::new(rows)))
    }
}

/// The aggregate over the products `products` (an SQL list), the user's
/// events and the model's rows: the body of `explain` (with the macro's
/// own parameters) and of `recommend(..., explain := true)`'s `because`
/// lists (with literals: `values` then names every parameter the caller
/// would pass).
fn explain_sql(
    products: &str,
    model: &str,
    events: &str,
    user: &str,
    values: &[(&str, String)],
) -> String {
    let mut inputs = vec![
        products,
        "f.event_type",
        "f.product_id",
        "f.category_id",
        "f.time_s",
    ];
    let model_feed: Vec<String> = MODEL_FEED.iter().map(|c| c.replace("m.", "f.")).collect();
    inputs.extend(model_feed.iter().map(String::as_str));
    let feed = format!(
        "(SELECT e.event_type::VARCHAR AS event_type, e.product_id::BIGINT AS product_id, \
         e.category_id::BIGINT AS category_id, epoch(e.event_time)::DOUBLE AS time_s, \
         NULL::VARCHAR AS side, NULL::BIGINT AS id, NULL::BIGINT AS item, NULL::VARCHAR AS name, \
         NULL::DOUBLE AS value, NULL::FLOAT[] AS factors, NULL::BIGINT AS model_id \
         FROM query_table({events}) e WHERE e.user_id = {user} \
         UNION ALL SELECT NULL, NULL, NULL, NULL, m.side, m.id, m.item, m.name, m.value, m.factors, m.model_id \
         FROM query_table({model}) m WHERE m.side = 'param' OR NOT ecoreco_model_ready({model})) f"
    );
    aggregate::rows_sql::<Explain>("ecoreco.explain", &inputs, values, &feed)
}

/// How many history products a `because` list names.
pub const BECAUSE: i64 = 3;

/// `ecoreco_explained_sql(recommend_sql, explain, model, events, user_id,
/// k, blend, exclude_purchased, item_weight)`: `recommend`'s query, with a `because`
/// column when `explain` is true (the [`BECAUSE`] history products that add
/// most to each product's collaborative score, largest first; empty when
/// there is no collaborative part). Values are written as literals.
pub struct ExplainedSql;
impl ScalarFunction for ExplainedSql {
    const NAME: &'static str = "ecoreco_explained_sql";
    fn params() -> Vec<SqlType> {
        use SqlType::*;
        vec![
            Varchar, Boolean, Varchar, Varchar, BigInt, BigInt, Double, Boolean, Double,
        ]
    }
    fn returns() -> SqlType {
        SqlType::Varchar
    }
    fn invoke(input: &InputChunk, out: &mut ColumnWriter) -> Result<()> {
        for row in 0..input.rows() {
            let recommend = input
                .str(0, row)
                .ok_or_else(|| {
                    anyhow!("ecoreco.recommend: the recommend query is NULL; ecoreco_explained_sql is called by ecoreco.recommend with the query it builds")
                })?;
            if !input.bool(1, row).unwrap_or(false) {
                out.set_str(row, recommend);
                continue;
            }
            let literal = |at: usize, what: &str| -> Result<String> {
                let text = input.str(at, row).ok_or_else(|| {
                    anyhow!("ecoreco.recommend: explain := true needs the user's events; pass {what}, e.g. events := 'events'")
                })?;
                ensure!(
                    !text.contains('\0'),
                    "ecoreco.recommend: parameter `{what}` contains a NUL character; pass a table name"
                );
                Ok(crate::binding::sql::quote_literal(text))
            };
            let model = literal(2, "model")?;
            let events = literal(3, "events")?;
            let user = input
                .i64(4, row)
                .ok_or_else(|| {
                    anyhow!("ecoreco.recommend: user_id is NULL; pass the id of a user")
                })?
                .to_string();
            let mut values: Vec<(&str, String)> = vec![
                ("model", model.clone()),
                ("planned_cached", format!("ecoreco_model_ready({model})")),
                ("user_id", user.clone()),
                ("k", BECAUSE.to_string()),
                ("list_k", input.i64(5, row).unwrap_or(10).to_string()),
                (
                    "blend",
                    input.f64(6, row).map_or("NULL".into(), |b| b.to_string()),
                ),
                (
                    "exclude_purchased",
                    input.bool(7, row).unwrap_or(true).to_string(),
                ),
                (
                    "item_weight",
                    input.f64(8, row).map_or("NULL".into(), |w| w.to_string()),
                ),
            ];
            // The event weights: the trainer's defaults, as `recommend` takes none.
            for p in Explain::params() {
                if !values.iter().any(|v| v.0 == p.name) {
                    if let Some(default) = p.default_sql() {
                        values.push((p.name, default));
                    }
                }
            }
            let because = explain_sql(
                "(SELECT list(product_id) FROM r)",
                &model,
                &events,
                &user,
                &values,
            );
            out.set_str(
                row,
                &format!(
                    "WITH r AS MATERIALIZED ({recommend}) \
                     SELECT r.user_id, r.rank, r.product_id, r.score, r.source, \
                     coalesce(b.because, []::BIGINT[]) AS because FROM r LEFT JOIN (\
                     SELECT product_id, list(because_product_id ORDER BY contribution DESC, because_product_id) \
                     FILTER (WHERE part = 'history') AS because FROM ({because}) GROUP BY product_id) b \
                     USING (product_id) ORDER BY r.rank"
                ),
            );
        }
        Ok(())
    }
}

pub fn macros() -> Vec<SqlMacro> {
    let mut signature =
        aggregate::signature::<Explain>(&["model", "uid", "pid", "events := 'events'"], &[]);
    signature.retain(|p| !p.starts_with("model :="));
    let signature: Vec<&str> = signature.iter().map(String::as_str).collect();
    vec![SqlMacro::table(
        "explain",
        &signature,
        format!(
            "SELECT * FROM ({})",
            explain_sql("[pid]::BIGINT[]", "model", "events", "uid", &[])
        ),
    )
    .checking(
        "model",
        &crate::tables::model(&["model_id", "side", "id", "item", "name", "value", "factors"])
            .by_name(),
    )
    .checking(
        "events",
        &crate::tables::events(&crate::tables::INTERACTION_COLUMNS).by_name(),
    )]
}
