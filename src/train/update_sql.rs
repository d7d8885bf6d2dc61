//! `ecoreco.als_update(model, events, since := NULL, ...)`: a new model
//! table from an old one and new events (the kernel: [`super::update`]).
//!
//! Most of a model is copied, so DuckDB copies it: the macro hands the
//! aggregate only what the kernel reads (the params, every product, and
//! the rows of the users with events after `since`: their factors,
//! purchases, interests and latest products; every user's factors only when
//! a product is new) and the histories of those users. The aggregate
//! returns only the rows it writes: a new `model_id` and the params that
//! change, then per user with new events every row of theirs (re-solved or
//! added; purchases and interests redone; latest products, in models that
//! keep them, the products of their events after `since` first, then their
//! old ones), and per new product its rows (brand and price from the
//! events, as training keeps them). The macro adds every other row of the
//! old model as it is, under the new `model_id`: the rows keep their
//! parent's `seq` and the written rows follow them. The params record the
//! parent (`parent_model_id`), when the update ran (`updated_at`) and the
//! end of its data (`data_end`).

use super::update::{update, UpdatePair, UpdateParams, Updated};
use crate::als::LatestAttributes;
use crate::binding::aggregate::{self, AggregateFunction};
use crate::binding::blocks::{BlockSource, Computed};
use crate::binding::rows::{InputChunk, RowSet};
use crate::binding::{Args, Column, Param, SqlMacro, SqlType};
use crate::budget::{self, Budget};
use crate::model::recent::{self, RecentRow};
use crate::model::table::{self as model_table, ModelRows, RowOut};
use crate::model::ProductAttributes;
use crate::stream::functions::{model_inputs, weights};
use crate::stream::state::Kind;
use anyhow::{anyhow, bail, ensure, Result};
use std::sync::Arc;

#[derive(Default)]
pub struct UpdateState {
    /// The events, each a pair of one event (the kernel sums them).
    events: Vec<UpdatePair>,
    model_id: Option<i64>,
    rows: ModelRows,
    params: Vec<(String, f64)>,
    /// The latest brand and price of the new products' events.
    attributes: LatestAttributes,
}

/// When the model's data ends (epoch seconds): `since`, else the model's
/// `data_end` (a model made by an update), else its decay reference time.
const SINCE: &str = "coalesce(epoch(since::TIMESTAMP)::DOUBLE, \
     (SELECT max(m.value)::DOUBLE FROM query_table(model) m WHERE m.side = 'param' AND m.name = 'data_end'), \
     (SELECT max(m.value)::DOUBLE FROM query_table(model) m WHERE m.side = 'param' AND m.name = 'decay_reference_time'))";

/// The sides of the rows that belong to one user (`id` the user_id).
const USER_SIDES: &str = "('user', 'purchased', 'interest', 'recent')";

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
        c.extend(crate::als::attribute_inputs());
        c.extend(model_inputs());
        c
    }
    fn params() -> Vec<Param> {
        let mut p = vec![
            Param::supplied("since_s", SqlType::Double, SINCE).nullable(),
            // When the events end (only the histories of the users with
            // new events are read; this one from the column's statistics).
            Param::supplied(
                "events_end",
                SqlType::Double,
                "(SELECT epoch(max(e.event_time))::DOUBLE FROM query_table(events) e)",
            )
            .nullable(),
            Param::supplied(
                "model_users",
                SqlType::BigInt,
                "(SELECT count(*) FROM query_table(model) m WHERE m.side = 'user')",
            ),
        ];
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
        state.attributes.read(input, rows.clone())?;
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
                if let ("param", Some(name), Some(value)) = (side, name, value) {
                    state.params.push((name.to_string(), value));
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
            let last = input.f64(e + 4, row).ok_or_else(|| {
                anyhow!("an event of user {user} has a NULL event_time; filter such rows out first (WHERE event_time IS NOT NULL)")
            })?;
            budget::reserve(&mut state.events, 1, "the events")?;
            state.events.push(UpdatePair::event(
                user,
                product,
                input.i64(e + 2, row),
                kind,
                last,
            ));
        }
        Ok(())
    }
    fn combine(target: &mut UpdateState, source: UpdateState) -> Result<()> {
        budget::reserve(&mut target.events, source.events.len(), "the events")?;
        target.events.extend(source.events);
        target.model_id = target.model_id.or(source.model_id);
        target.rows.extend(source.rows)?;
        target.params.extend(source.params);
        target.attributes.extend(source.attributes);
        Ok(())
    }
    fn finalize(state: UpdateState, call: &Args) -> Result<Arc<dyn BlockSource>> {
        let parent = state
            .model_id
            .ok_or_else(|| anyhow!("the model table is empty or its model_id is NULL; pass a table made by ecoreco.als_train"))?;
        let param = |name: &str| state.params.iter().find(|p| p.0 == name).map(|p| p.1);
        let (Some(alpha), Some(regularization)) = (param("alpha"), param("regularization")) else {
            bail!("the model table has no alpha or regularization param row; pass a table made by ecoreco.als_train");
        };
        let since = call.opt_double("since_s")?.ok_or_else(|| {
            anyhow!("the model does not record when its data ends; pass since := TIMESTAMP '...' (the time of its last training event)")
        })?;
        ensure!(
            since.is_finite(),
            "parameter `since` is not a finite time; pass a TIMESTAMP"
        );
        if let Some(end) = call.opt_double("events_end")? {
            ensure!(
                end > since,
                "the events end at {end} (epoch seconds), not after the model's data, which ends at {since}; pass events that include what came after the model"
            );
        }
        ensure!(
            !state.events.is_empty(),
            "the events table has no view, cart or purchase event after the model's data (after {since}, epoch seconds); pass the events of the users to update"
        );
        let model_users = usize::try_from(call.int("model_users")?)?;
        let budget = Budget::from_setting(call.text("memory_limit")?);
        budget.check(
            "the update",
            (state.rows.floats() * 4 * 3 + state.rows.rows() * 48) as u64,
            "the model's factors read three times (read, fold-in, new rows) plus 48 bytes per row",
        )?;
        let pool = crate::threads::pool(call.int("threads")?)?;
        let params = UpdateParams {
            regularization,
            alpha,
            weights: weights(call)?,
            since,
            model_users,
        };
        let keeps_recent = param(recent::PARAM).is_some_and(|w| w > 0.0);
        let (mut rows, events) = (state.rows, state.events);
        let old_recent = rows.take_recent();
        // Products touched after the model's data come first in the users'
        // latest products (only in models that keep such rows).
        let recent = if old_recent.is_empty() && !keeps_recent {
            Vec::new()
        } else {
            // A pair's last time is its product's latest touch.
            let newer: Vec<(i64, i64, f64)> = events
                .iter()
                .filter(|e| e.last > since)
                .map(|e| (e.user, e.product, e.last))
                .collect();
            recent::merged(old_recent, newer, recent::PER_USER)
        };
        let facts = state.attributes.into_facts();
        let updated = pool.install(|| {
            let old = model_table::from_some_rows(rows, parent, model_users)?;
            update(&old, events, &params, facts)
        })?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs() as f64);
        let written = [
            ("users", updated.users as f64),
            ("products", updated.model.product_ids.len() as f64),
            ("parent_model_id", parent as f64),
            ("data_end", updated.data_end),
            ("updated_at", now),
            ("updated_users", updated.users_resolved as f64),
            ("added_users", updated.users_added as f64),
            ("added_products", updated.products_added as f64),
        ];
        Ok(Arc::new(Computed::new(written_rows(
            &updated, parent, &written, &recent,
        )?)))
    }
}

/// The rows the update writes (see the module's description), `seq` 0 for
/// the `model_id` row and 1, 2, ... for the rest (the macro puts them after
/// the parent's rows).
fn written_rows(
    updated: &Updated,
    parent: i64,
    params: &[(&str, f64)],
    recent: &[RecentRow],
) -> Result<RowSet> {
    let m = &updated.model;
    let f = m.factors;
    let users: Vec<i64> = updated.replaced.iter().map(|&u| m.user_ids[u]).collect();
    let products: Vec<i64> = updated.added.iter().map(|&i| m.product_ids[i]).collect();
    let user_factors: Vec<f32> = updated
        .replaced
        .iter()
        .flat_map(|&u| m.user_row(u).iter().copied())
        .collect();
    let item_factors: Vec<f32> = updated
        .added
        .iter()
        .flat_map(|&i| m.item_row(i).iter().copied())
        .collect();
    let attributes = ProductAttributes {
        brand: updated
            .added
            .iter()
            .map(|&i| m.attributes.brand[i].clone())
            .collect(),
        price: updated
            .added
            .iter()
            .map(|&i| m.attributes.price[i])
            .collect(),
    };
    let id = crate::model::updated_model_id(
        parent,
        &users,
        &user_factors,
        &products,
        &item_factors,
        &attributes,
    );
    let (mut out, writer) = crate::binding::model_table::RowWriter::new()?;
    let mut at = 0i64;
    let mut put = |out: &mut RowSet,
                   side: &'static str,
                   id_value: Option<i64>,
                   item: Option<i64>,
                   name: Option<&str>,
                   value: Option<f64>,
                   factors: Option<&[f32]>| {
        let row = RowOut {
            side,
            id: id_value,
            item,
            name,
            value,
            factors,
        };
        writer.put(out, at, id, &row);
        at += 1;
    };
    put(
        &mut out,
        "param",
        None,
        None,
        Some("model_id"),
        Some(id as f64),
        None,
    );
    for &(n, v) in params {
        put(&mut out, "param", None, None, Some(n), Some(v), None);
    }
    for &u in &updated.replaced {
        let row = m.user_row(u);
        put(
            &mut out,
            "user",
            Some(m.user_ids[u]),
            None,
            None,
            None,
            Some(row),
        );
    }
    for &i in &updated.added {
        put(
            &mut out,
            "product",
            Some(m.product_ids[i]),
            Some(m.product_category[i]),
            m.attributes.brand[i].as_deref(),
            Some(m.popularity[i] as f64),
            Some(m.item_row(i)),
        );
    }
    for &i in &updated.added {
        let price = m.attributes.price[i];
        if !price.is_nan() {
            put(
                &mut out,
                "price",
                Some(m.product_ids[i]),
                None,
                None,
                Some(price),
                None,
            );
        }
    }
    if let Some(bm25) = &m.weighting.bm25 {
        for &i in &updated.added {
            let users = bm25.product_users.get(i).copied().ok_or_else(|| {
                anyhow!(
                    "internal error: product {} has no product_users count",
                    m.product_ids[i]
                )
            })?;
            put(
                &mut out,
                "product_users",
                Some(m.product_ids[i]),
                None,
                None,
                Some(users as f64),
                None,
            );
        }
    }
    for &u in &updated.replaced {
        let user = Some(m.user_ids[u]);
        for &j in m.purchased.row(u).0 {
            put(
                &mut out,
                "purchased",
                user,
                Some(m.product_ids[j as usize]),
                None,
                None,
                None,
            );
        }
        for &(category, share) in &m.interest[u] {
            put(
                &mut out,
                "interest",
                user,
                Some(category),
                None,
                Some(share as f64),
                None,
            );
        }
    }
    for r in recent
        .iter()
        .filter(|r| users.binary_search(&r.user).is_ok())
    {
        put(
            &mut out,
            recent::SIDE,
            Some(r.user),
            Some(r.product),
            None,
            Some(r.rank as f64),
            None,
        );
    }
    debug_assert_eq!(f, m.factors);
    Ok(out)
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
        "f.brand",
        "f.brand_time",
        "f.price",
        "f.price_time",
    ];
    let model: Vec<String> = crate::stream::functions::MODEL_FEED
        .iter()
        .map(|c| c.replace("m.", "f."))
        .collect();
    inputs.extend(model.iter().map(String::as_str));
    let written =
        aggregate::rows_sql::<AlsUpdate>("ecoreco.als_update", &inputs, &[], "ecoreco_feed f");
    let body = include_str!("../../sql/macros/als_update.sql")
        .replace("{since}", SINCE)
        .replace("{user_sides}", USER_SIDES)
        .replace("{written}", &written);
    vec![SqlMacro::table("als_update", &signature, body)
        .checking(
            "model",
            &crate::tables::model(&[
                "seq", "model_id", "side", "id", "item", "name", "value", "factors",
            ]),
        )
        .checking(
            "events",
            &crate::tables::events(&crate::tables::INTERACTION_COLUMNS),
        )]
}
