//! `ecoreco.covisit_train(events, ...)`: the item-to-item model as rows.
//!
//! The macro reads any events table through `sql/macros/session_rows.sql`
//! (session, order and product columns named by the caller) and feeds the
//! `ecoreco_covisit_train` aggregate, which orders the sessions
//! ([`super::Sessions`]), counts the neighbours ([`super::kernel`]) and
//! writes per product its `events` row, then its co-occurrence and sequence
//! neighbours, best first.

use super::choose;
use super::kernel::{Kind, Windows};
use super::session::SessionBlend;
use super::{Event, ItemModel, Sessions, EVENT_BYTES};
use crate::binding::aggregate::{self, AggregateFunction};
use crate::binding::blocks::{BlockSource, Ranges};
use crate::binding::rows::{InputChunk, RowSet};
use crate::binding::{Args, Check, Column, Param, SqlMacro, SqlType, Value};
use crate::budget::{self, Budget};
use crate::progress::Progress;
use std::sync::Arc;

/// The parameters that say which columns are sessions, order and products
/// (macro parameters only: `session_rows.sql` uses them).
pub fn column_params() -> Vec<Param> {
    use SqlType::*;
    vec![
        Param::named(
            "session_col",
            Varchar,
            Value::Text("user_session".into()),
            "the session column (any type; a user column works too), e.g. session_col := 'user_session'",
        ),
        Param::named(
            "item_col",
            Varchar,
            Value::Text("product_id".into()),
            "the product column, e.g. item_col := 'product_id'",
        ),
        Param::named(
            "time_col",
            Varchar,
            Value::Text("event_time".into()),
            "the column that orders a session's events (TIMESTAMP, DATE or a number), e.g. time_col := 'event_time'",
        ),
    ]
}

/// The counting parameters, shared with `evaluate_sessions`.
pub fn counting_params() -> Vec<Param> {
    use SqlType::*;
    vec![
        Param::named(
            "sequence_window",
            BigInt,
            Value::Int(10),
            "how many steps later a product still counts as following, e.g. sequence_window := 10",
        )
        .check(Check::IntRange(1, 1000)),
        Param::named(
            "cooccurrence_window",
            BigInt,
            Value::Int(0),
            "how many steps apart two products still co-occur, 0 for the whole session, e.g. cooccurrence_window := 0",
        )
        .check(Check::IntRange(0, 1_000_000)),
        Param::named(
            "neighbours",
            BigInt,
            Value::Int(100),
            "how many neighbours of each kind a product keeps, e.g. neighbours := 100",
        )
        .check(Check::IntRange(1, 10_000)),
    ]
}

/// The `kind` of the row that says how many held-out prefixes chose the
/// blend (0: none could, the defaults were kept).
pub const VALIDATION_KIND: &str = "validation_prefixes";

pub(crate) fn windows(call: &Args) -> anyhow::Result<Windows> {
    Ok(Windows {
        seq: call.int("sequence_window")? as usize,
        cooc: call.int("cooccurrence_window")? as usize,
    })
}

/// The per-row inputs: the columns of `session_rows.sql`.
pub(crate) fn event_inputs() -> Vec<Column> {
    vec![
        Column::new("session_key", SqlType::BigInt),
        Column::new("step_order", SqlType::Double),
        Column::new("product_id", SqlType::BigInt),
    ]
}

/// Appends rows `rows` of `input` to `events`, within the budget.
pub(crate) fn read_events(
    events: &mut Vec<Event>,
    input: &InputChunk,
    rows: std::ops::Range<usize>,
    budget: &Budget,
) -> anyhow::Result<()> {
    let (s, o, p) = (
        input.col("session_key")?,
        input.col("step_order")?,
        input.col("product_id")?,
    );
    budget.check(
        "holding the session events",
        (events.len() + rows.len()) as u64 * EVENT_BYTES,
        "24 bytes per event",
    )?;
    budget::reserve(events, rows.len(), "the session events")?;
    for row in rows {
        // The macro filters NULL sessions and products and fails on NULL order.
        if let (Some(session), Some(order), Some(product)) =
            (input.i64(s, row), input.f64(o, row), input.i64(p, row))
        {
            events.push(Event {
                session,
                order,
                product,
            });
        }
    }
    Ok(())
}

pub struct CovisitTrain;

impl AggregateFunction for CovisitTrain {
    const NAME: &'static str = "ecoreco_covisit_train";
    const FUNCTION: &'static str = "ecoreco.covisit_train";
    const EMPTY: &'static str =
        "the events table is empty: nothing to count; pass a table with sessions of products";
    type State = Vec<Event>;
    fn inputs() -> Vec<Column> {
        event_inputs()
    }
    fn params() -> Vec<Param> {
        let mut params = counting_params();
        params.push(Param::named(
            "search",
            SqlType::Boolean,
            Value::Bool(true),
            "true to choose the session blend on the latest tenth of the sessions, false for the defaults",
        ));
        params.extend(crate::binding::params::settings_params());
        params
    }
    fn columns() -> Vec<Column> {
        use SqlType::*;
        vec![
            Column::new("product_id", BigInt),
            Column::new("neighbour_id", BigInt),
            Column::new("score", Double),
            Column::new("kind", Varchar),
            Column::new("rank", Integer),
        ]
    }
    fn update(
        state: &mut Vec<Event>,
        call: &Args,
        input: &InputChunk,
        rows: std::ops::Range<usize>,
    ) -> anyhow::Result<()> {
        read_events(
            state,
            input,
            rows,
            &Budget::from_setting(call.text("memory_limit")?),
        )
    }
    fn combine(target: &mut Vec<Event>, source: Vec<Event>) -> anyhow::Result<()> {
        budget::reserve(target, source.len(), "the session events")?;
        target.extend(source);
        Ok(())
    }
    fn finalize(state: Vec<Event>, call: &Args) -> anyhow::Result<Arc<dyn BlockSource>> {
        let budget = Budget::from_setting(call.text("memory_limit")?);
        let progress = Progress::new(call.function(), call.text("progress")?);
        let threads = call.int("threads")?;
        let neighbours = call.int("neighbours")? as usize;
        let windows = windows(call)?;
        let search = call.boolean("search")?;
        let (model, choice) = crate::threads::pool(threads)?.install(|| {
            let sessions = Sessions::build(state, &budget)?;
            progress.say(format!(
                "{} sessions, {} steps, {} products",
                sessions.len(),
                sessions.products.len(),
                sessions.product_ids.len()
            ));
            let choice = if search {
                progress.say("choosing the session blend on the latest sessions");
                choose::choose(&sessions, windows, neighbours, threads as usize, &budget)?
            } else {
                choose::Choice {
                    blend: SessionBlend::default(),
                    prefixes: 0,
                }
            };
            progress.say("counting the neighbours");
            let model =
                ItemModel::train(&sessions, windows, neighbours, threads as usize, &budget)?;
            anyhow::Ok((model, choice))
        })?;
        crate::pages::release_free_heap();
        let model = Arc::new(model);
        let columns = Self::columns();
        let n = model.product_ids.len();
        Ok(Arc::new(Ranges::new(n, 64, move |range| {
            let mut rows = RowSet::for_columns(&columns);
            if range.start == 0 {
                write_choice(&mut rows, &choice)?;
            }
            write_rows(&mut rows, &model, range)?;
            Ok(rows)
        })))
    }
}

/// The blend the model is served with, one row per weight (`kind` its
/// name, `score` its value), and how many held-out prefixes chose it.
fn write_choice(rows: &mut RowSet, choice: &choose::Choice) -> anyhow::Result<()> {
    let (product, neighbour, score, kind, rank) = (
        rows.col::<i64>("product_id")?,
        rows.col::<i64>("neighbour_id")?,
        rows.col::<f64>("score")?,
        rows.col::<String>("kind")?,
        rows.col::<i32>("rank")?,
    );
    let values = choice.blend.values().map(crate::model::f32_decimal);
    for (name, value) in SessionBlend::NAMES
        .iter()
        .zip(values)
        .chain([(&VALIDATION_KIND, choice.prefixes as f64)])
    {
        rows.put(product, None);
        rows.put(neighbour, None);
        rows.put(score, Some(value));
        rows.put_str(kind, Some(*name));
        rows.put(rank, None);
    }
    Ok(())
}

/// The rows of products `range`: each one's `events` row, then its
/// neighbours of each kind, best first.
fn write_rows(
    rows: &mut RowSet,
    model: &ItemModel,
    range: std::ops::Range<usize>,
) -> anyhow::Result<()> {
    let (product, neighbour, score, kind, rank) = (
        rows.col::<i64>("product_id")?,
        rows.col::<i64>("neighbour_id")?,
        rows.col::<f64>("score")?,
        rows.col::<String>("kind")?,
        rows.col::<i32>("rank")?,
    );
    for a in range {
        let id = model.product_ids[a];
        rows.put(product, Some(id));
        rows.put(neighbour, None);
        rows.put(score, Some(model.counts[a] as f64));
        rows.put_str(kind, Some("events"));
        rows.put(rank, None);
        for (k, list) in [
            (Kind::Cooccurrence, &model.cooc[a]),
            (Kind::Sequence, &model.seq[a]),
        ] {
            for (r, &(b, s)) in list.iter().enumerate() {
                rows.put(product, Some(id));
                rows.put(neighbour, Some(model.product_ids[b as usize]));
                rows.put(score, Some(s as f64));
                rows.put_str(kind, Some(k.name()));
                rows.put(rank, Some(r as i32 + 1));
            }
        }
    }
    Ok(())
}

/// The session events of the macro's `events` as `session_rows.sql`
/// normalises them, errors naming `function`.
pub fn session_rows_sql(function: &str) -> String {
    include_str!("../../sql/macros/session_rows.sql").replace(
        "ecoreco_function",
        &crate::binding::sql::quote_literal(function),
    )
}

pub fn macros() -> Vec<SqlMacro> {
    let params = aggregate::signature::<CovisitTrain>(&["events"], &column_params());
    let params: Vec<&str> = params.iter().map(String::as_str).collect();
    vec![SqlMacro::table(
        "covisit_train",
        &params,
        format!(
            "WITH {} {}",
            session_rows_sql("covisit_train"),
            aggregate::rows_sql::<CovisitTrain>(
                "ecoreco.covisit_train",
                &["session_key", "step_order", "product_id"],
                &[],
                "ecoreco_session_rows",
            )
        ),
    )]
}
