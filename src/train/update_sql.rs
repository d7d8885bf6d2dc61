//! `ecoreco.als_update(model, events, since := NULL, ...)`: a new model
//! table from an old one and new events (the kernel: [`super::update`]).
//! The aggregate reads the caller's events and every row of the old
//! model, and returns the new model's rows, which record their parent
//! (`parent_model_id`), when the update ran (`updated_at`) and the end of
//! their data (`data_end`), each as a `param` row. The item-to-item rows
//! are copied; each user's latest products (`recent` rows) are the
//! products of their events after `since` first, then their old ones.

use super::update::{update, UpdateEvent, UpdateParams};
use crate::binding::aggregate::{self, AggregateFunction};
use crate::binding::blocks::BlockSource;
use crate::binding::rows::InputChunk;
use crate::binding::{Args, Column, Param, SqlMacro, SqlType};
use crate::budget::{self, Budget};
use crate::model::table::{self as model_table, ModelRows, ModelTable};
use crate::stream::functions::{model_inputs, weights};
use crate::stream::state::Kind;
use anyhow::{anyhow, bail, ensure, Result};
use std::sync::Arc;

#[derive(Default)]
pub struct UpdateState {
    events: Vec<UpdateEvent>,
    model_id: Option<i64>,
    rows: ModelRows,
    params: Vec<(String, f64)>,
    loss: Vec<(i64, f64)>,
    /// The item-to-item neighbours, copied as they are.
    neighbours: Vec<crate::model::neighbours::NeighbourRow>,
}

/// The param rows an update writes afresh (the rest are copied).
const REWRITTEN: [&str; 10] = [
    "model_id",
    "blend",
    "users",
    "products",
    "parent_model_id",
    "data_end",
    "updated_at",
    "updated_users",
    "added_users",
    "added_products",
];

pub struct AlsUpdate;
impl AggregateFunction for AlsUpdate {
    const NAME: &'static str = "ecoreco_als_update";
    const FUNCTION: &'static str = "ecoreco.als_update";
    const EMPTY: &'static str = crate::model::table::EMPTY_MODEL;
    type State = UpdateState;
    fn inputs() -> Vec<Column> {
        use SqlType::*;
        let mut c = vec![
            Column::new("user_id", BigInt),
            Column::new("product_id", BigInt),
            Column::new("category_id", BigInt),
            Column::new("event_type", Varchar),
            Column::new("time_s", Double),
        ];
        c.extend(model_inputs());
        c
    }
    fn params() -> Vec<Param> {
        let mut p =
            vec![Param::supplied("since_s", SqlType::Double, "epoch(since::TIMESTAMP)").nullable()];
        p.extend(crate::als::weight_params());
        p.extend(crate::binding::params::settings_params());
        p
    }
    fn columns() -> Vec<Column> {
        crate::binding::model_table::columns()
    }
    fn update(
        state: &mut UpdateState,
        _call: &Args,
        input: &InputChunk,
        rows: std::ops::Range<usize>,
    ) -> Result<()> {
        let (e, m) = (input.col("user_id")?, input.col("side")?);
        for row in rows {
            if let Some(side) = input.str(m, row) {
                if state.model_id.is_none() {
                    state.model_id = input.i64(m + 6, row);
                }
                let (id, name, value) = (
                    input.i64(m + 1, row),
                    input.str(m + 3, row),
                    input.f64(m + 4, row),
                );
                if side == crate::model::neighbours::SIDE {
                    if let (Some(product), Some(neighbour), Some(score)) =
                        (id, input.i64(m + 2, row), value)
                    {
                        state
                            .neighbours
                            .push(crate::model::neighbours::NeighbourRow {
                                product,
                                neighbour,
                                score: score as f32,
                                sequence: name == Some("sequence"),
                            });
                    }
                }
                match (side, name, value) {
                    ("param", Some(name), Some(value)) => {
                        state.params.push((name.to_string(), value))
                    }
                    ("loss", _, Some(value)) => state.loss.push((id.unwrap_or(0), value)),
                    _ => {}
                }
                let factors = match input.list::<f32>(m + 5, row) {
                    None => None,
                    Some(Ok(v)) => Some(v),
                    Some(Err(at)) => bail!("a factors list has a NULL at position {}; the model table is damaged, train it again", at + 1),
                };
                state
                    .rows
                    .push(side, id, input.i64(m + 2, row), name, value, factors)?;
                continue;
            }
            let Some(kind) = input.str(e + 3, row).and_then(Kind::parse) else {
                continue;
            };
            let (Some(user), Some(product)) = (input.i64(e, row), input.i64(e + 1, row)) else {
                bail!("an event has a NULL user_id or product_id; filter such rows out first");
            };
            let time = input.f64(e + 4, row).ok_or_else(|| {
                anyhow!("an event of user {user} has a NULL event_time; filter such rows out first (WHERE event_time IS NOT NULL)")
            })?;
            budget::reserve(&mut state.events, 1, "the events")?;
            state.events.push(UpdateEvent {
                user,
                product,
                category: input.i64(e + 2, row),
                kind,
                time,
            });
        }
        Ok(())
    }
    fn combine(target: &mut UpdateState, source: UpdateState) -> Result<()> {
        budget::reserve(&mut target.events, source.events.len(), "the events")?;
        target.events.extend(source.events);
        target.model_id = target.model_id.or(source.model_id);
        target.rows.extend(source.rows)?;
        target.params.extend(source.params);
        target.loss.extend(source.loss);
        target.neighbours.extend(source.neighbours);
        Ok(())
    }
    fn finalize(state: UpdateState, call: &Args) -> Result<Arc<dyn BlockSource>> {
        let parent = state
            .model_id
            .ok_or_else(|| anyhow!("the model table is empty or its model_id is NULL; pass a table made by ecoreco.als_train"))?;
        ensure!(
            !state.events.is_empty(),
            "the events table has no view, cart or purchase events; pass the events of the users to update"
        );
        let param = |name: &str| state.params.iter().find(|p| p.0 == name).map(|p| p.1);
        let (Some(alpha), Some(regularization)) = (param("alpha"), param("regularization")) else {
            bail!("the model table has no alpha or regularization param row; pass a table made by ecoreco.als_train");
        };
        let since = match call.opt_double("since_s")? {
            Some(s) => s,
            None => param("data_end").or(param("decay_reference_time")).ok_or_else(|| {
                anyhow!("the model does not record when its data ends; pass since := TIMESTAMP '...' (the time of its last training event)")
            })?,
        };
        ensure!(
            since.is_finite(),
            "parameter `since` is not a finite time; pass a TIMESTAMP"
        );
        let budget = Budget::from_setting(call.text("memory_limit")?);
        budget.check(
            "the update",
            (state.rows.floats() * 4 * 3 + state.rows.rows() * 48) as u64,
            "the old model's factors three times (read, fold-in, new model) plus 48 bytes per row",
        )?;
        let pool = crate::threads::pool(call.int("threads")?)?;
        let params = UpdateParams {
            regularization,
            alpha,
            weights: weights(call)?,
            since,
        };
        let (mut rows, events) = (state.rows, state.events);
        let old_recent = rows.take_recent();
        // Products touched after the model's data come first in the users'
        // latest products (only in models that keep such rows).
        let recent = if old_recent.is_empty() {
            Vec::new()
        } else {
            let newer: Vec<(i64, i64, f64)> = events
                .iter()
                .filter(|e| e.time > since)
                .map(|e| (e.user, e.product, e.time))
                .collect();
            crate::model::recent::merged(old_recent, newer, crate::model::recent::PER_USER)
        };
        let updated = pool.install(|| {
            let old = model_table::from_rows(rows, parent)?;
            update(&old, &events, &params)
        })?;
        drop(events);
        let model = &updated.model;
        let mut out: Vec<(String, f64)> = state
            .params
            .iter()
            .filter(|p| !REWRITTEN.contains(&p.0.as_str()))
            .cloned()
            .collect();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs() as f64);
        out.extend(
            [
                ("users", model.user_ids.len() as f64),
                ("products", model.product_ids.len() as f64),
                ("parent_model_id", parent as f64),
                ("data_end", updated.data_end),
                ("updated_at", now),
                ("updated_users", updated.users_resolved as f64),
                ("added_users", updated.users_added as f64),
                ("added_products", updated.products_added as f64),
            ]
            .map(|(n, v)| (n.to_string(), v)),
        );
        let mut loss = state.loss;
        loss.sort_by_key(|l| l.0);
        let loss: Vec<f64> = loss.into_iter().map(|l| l.1).collect();
        let mut neighbours = state.neighbours;
        // In the order the trainer writes them: by product, then neighbour.
        neighbours.sort_by_key(|n| (n.product, !n.sequence, n.neighbour));
        Ok(Arc::new(
            ModelTable::new(updated.model, out, loss)
                .with_neighbours(neighbours)
                .with_recent(recent),
        ))
    }
}

pub fn macros() -> Vec<SqlMacro> {
    let signature = aggregate::signature::<AlsUpdate>(&["model", "events", "since := NULL"], &[]);
    let signature: Vec<&str> = signature.iter().map(String::as_str).collect();
    let mut inputs = vec![
        "f.user_id",
        "f.product_id",
        "f.category_id",
        "f.event_type",
        "f.time_s",
    ];
    let model: Vec<String> = crate::stream::functions::MODEL_FEED
        .iter()
        .map(|c| c.replace("m.", "f."))
        .collect();
    inputs.extend(model.iter().map(String::as_str));
    let feed = "(SELECT e.user_id::BIGINT AS user_id, e.product_id::BIGINT AS product_id, \
         e.category_id::BIGINT AS category_id, e.event_type::VARCHAR AS event_type, \
         epoch(e.event_time)::DOUBLE AS time_s, NULL::VARCHAR AS side, NULL::BIGINT AS id, \
         NULL::BIGINT AS item, NULL::VARCHAR AS name, NULL::DOUBLE AS value, NULL::FLOAT[] AS factors, \
         NULL::BIGINT AS model_id FROM query_table(events) e \
         UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, m.side, m.id, m.item, m.name, m.value, m.factors, m.model_id \
         FROM query_table(model) m) f";
    vec![SqlMacro::table(
        "als_update",
        &signature,
        aggregate::rows_sql::<AlsUpdate>("ecoreco.als_update", &inputs, &[], feed),
    )
    .checking(
        "model",
        &crate::tables::model(&["model_id", "side", "id", "item", "name", "value", "factors"]),
    )
    .checking(
        "events",
        &crate::tables::events(&[
            "event_time",
            "event_type",
            "product_id",
            "category_id",
            "user_id",
        ]),
    )]
}
