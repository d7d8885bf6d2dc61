//! The SQL functions of the real-time stage, over the binding layer:
//! `ecoreco_replay_*` aggregates (fed by the `ecoreco.replay*` macros with
//! the caller's events in arrival order plus the model's rows),
//! `ecoreco_recommend_session`, `ecoreco_influx_line` and
//! `ecoreco_influx_write`.
//!
//! Every row a replay aggregate receives carries the call's settings
//! (constants) and either one event or one model row. The model is read
//! from the in-process cache when the table's model is cached (then the
//! macro reads only its `param` rows, which also carry alpha and the
//! regularization the fold-in needs), else built from its rows and cached.

use super::foldin::{FoldIn, Scratch};
use super::http::{Target, Writer};
use super::lineproto::{self, FieldValue};
use super::replay::{self, Config, Emitted, Event, LateRule, WindowRow};
use super::state::{Kind, Touch, UserState, Weights};
use crate::binding::aggregate::AggregateFunction;
use crate::binding::rows::{InputChunk, RowSet, Values};
use crate::binding::scalar::ScalarFunction;
use crate::binding::{Column, ColumnWriter, SqlType};
use crate::recommend::model::{self, ModelRow};
use crate::recommend::serving::{top_categories, ServingModel};
use anyhow::{anyhow, bail, ensure, Result};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;

/// How long one InfluxDB request may take before it is an error.
const INFLUX_TIMEOUT: Duration = Duration::from_secs(10);

/// The call's settings, as the macro passes them (columns 0..SETTINGS).
#[derive(Clone, Debug)]
struct Settings {
    config: Config,
    model_table: String,
    planned_cached: bool,
    influx: Option<Target>,
    run: String,
}

const SETTINGS: usize = 19;

fn setting_types() -> Vec<SqlType> {
    use SqlType::*;
    vec![
        BigInt, BigInt, Double, BigInt, BigInt, Double, Boolean, Varchar, Double, Double, Double, Double, BigInt, Varchar,
        Boolean, Varchar, Varchar, Varchar, Boolean,
    ]
}

fn read_settings(input: &InputChunk, row: usize, keep: bool) -> Result<Settings> {
    let int = |c: usize, name: &str| input.i64(c, row).ok_or_else(|| anyhow!("parameter `{name}` is NULL; leave it out for the default"));
    let real = |c: usize, name: &str| input.f64(c, row).ok_or_else(|| anyhow!("parameter `{name}` is NULL; leave it out for the default"));
    let window_us = int(0, "window")?;
    ensure!(window_us > 0, "parameter `window` must be a positive interval such as INTERVAL 5 MINUTE, got {window_us} µs");
    let watermark_us = int(1, "watermark")?;
    ensure!(watermark_us >= 0, "parameter `watermark` must not be negative; pass e.g. INTERVAL 10 MINUTE");
    let speed = real(2, "speed")?;
    ensure!(speed.is_finite() && speed >= 0.0, "parameter `speed` is {speed}; pass 0 (as fast as possible) or a positive factor such as 60");
    let k = int(3, "k")?;
    ensure!((1..=1000).contains(&k), "parameter `k` is {k}; it must be between 1 and 1000");
    let seed = int(4, "seed")?;
    let blend = real(5, "blend")?;
    ensure!((0.0..=1.0).contains(&blend), "parameter `blend` is {blend}; it must be between 0 and 1");
    let exclude_purchased = input.bool(6, row).ok_or_else(|| anyhow!("parameter `exclude_purchased` is NULL; pass true or false"))?;
    let late = match input.str(7, row).map(str::to_ascii_lowercase).as_deref() {
        Some("skip") => LateRule::Skip,
        Some("apply") => LateRule::Apply,
        other => bail!("parameter `late` must be 'skip' or 'apply', got {}", other.map_or("NULL".into(), |o| format!("'{o}'"))),
    };
    let weight = |c: usize, name: &str| -> Result<f32> {
        let v = real(c, name)?;
        ensure!(v.is_finite() && v >= 0.0, "parameter `{name}` is {v}; it must be a finite number >= 0 (the value the model was trained with)");
        Ok(v as f32)
    };
    let weights = Weights { view: weight(8, "view")?, cart: weight(9, "cart")?, purchase: weight(10, "purchase")?, cap: weight(11, "cap")? };
    let threads = int(12, "threads")?.clamp(1, 256) as usize;
    let model_table = input.str(13, row).ok_or_else(|| anyhow!("parameter `model` is NULL; pass the name of a model table, e.g. model := 'model'"))?;
    let influx = match input.str(15, row) {
        None => None,
        Some(url) => {
            ensure!(
                input.bool(18, row) == Some(true),
                "sending metrics to InfluxDB is refused because enable_external_access is false; leave influx out or allow external access"
            );
            let database = input.str(16, row).ok_or_else(|| anyhow!("parameter `influx_database` is NULL; pass a database name"))?;
            Some(Target::new(url, database)?)
        }
    };
    Ok(Settings {
        config: Config {
            window_us,
            watermark_us,
            speed,
            k: k as usize,
            blend: blend as f32,
            exclude_purchased,
            late,
            weights,
            threads,
            seed: seed as u64,
            keep_recommendations: keep,
        },
        model_table: model_table.to_string(),
        planned_cached: input.bool(14, row).unwrap_or(false),
        influx,
        run: input.str(17, row).unwrap_or("replay").to_string(),
    })
}

/// The model's rows as the macros pass them, from column `first`: side,
/// id, item, name, value, factors, model_id.
#[derive(Default)]
struct ModelInput {
    model_id: Option<i64>,
    alpha: Option<f64>,
    regularization: Option<f64>,
    rows: Vec<ModelRow>,
}

impl ModelInput {
    /// Reads a model row; false when the row carries none.
    fn read(&mut self, input: &InputChunk, row: usize, first: usize) -> Result<bool> {
        let Some(side) = input.str(first, row) else { return Ok(false) };
        if self.model_id.is_none() {
            self.model_id = input.i64(first + 6, row);
        }
        let name = input.str(first + 3, row);
        let value = input.f64(first + 4, row);
        if side == "param" {
            match name {
                Some("alpha") => self.alpha = value,
                Some("regularization") => self.regularization = value,
                _ => {}
            }
        }
        let factors = match input.list::<f32>(first + 5, row) {
            None => None,
            Some(Ok(v)) => Some(v.to_vec()),
            Some(Err(at)) => bail!("a factors list has a NULL at position {}; the model table is damaged", at + 1),
        };
        self.rows.push(ModelRow {
            side: side.to_string(),
            id: input.i64(first + 1, row),
            item: input.i64(first + 2, row),
            name: name.map(str::to_string),
            value,
            factors,
        });
        Ok(true)
    }

    fn merge(&mut self, other: ModelInput) {
        self.model_id = self.model_id.or(other.model_id);
        self.alpha = self.alpha.or(other.alpha);
        self.regularization = self.regularization.or(other.regularization);
        self.rows.extend(other.rows);
    }

    /// The serving model and its fold-in: cached, or built from the rows.
    fn load(self, table: &str, planned_cached: bool) -> Result<(Arc<ServingModel>, Arc<FoldIn>)> {
        let model_id = self
            .model_id
            .ok_or_else(|| anyhow!("the model table '{table}' is empty or its model_id is NULL; pass a table made by ecoreco.als_train"))?;
        let (Some(alpha), Some(regularization)) = (self.alpha, self.regularization) else {
            bail!("the model table '{table}' has no alpha or regularization param row; pass a table made by ecoreco.als_train");
        };
        let served = match model::cached(model_id) {
            Some(m) => m,
            None if !planned_cached => model::remember(model::from_rows(self.rows, model_id)?),
            None => {
                model::forget_table(table);
                bail!("the table '{table}' holds a different model than the one this session read from it before; it will be read afresh on the next call: run the query again");
            }
        };
        model::note_table(table, model_id);
        let fold = fold_in_for(&served, regularization, alpha)?;
        Ok((served, fold))
    }
}

/// The fold-ins of recently used models (`YᵀY`, its inverse and `A₀⁻¹ y`
/// per product are worth keeping: they cost as much as one ALS half-step).
fn fold_in_for(model: &Arc<ServingModel>, regularization: f64, alpha: f64) -> Result<Arc<FoldIn>> {
    type Key = (i64, u64, u64);
    static CACHE: OnceLock<Mutex<Vec<(Key, Arc<FoldIn>)>>> = OnceLock::new();
    let key = (model.model_id, regularization.to_bits(), alpha.to_bits());
    let cache = CACHE.get_or_init(Default::default);
    if let Some((_, f)) = cache.lock().map_err(|_| anyhow!("fold-in cache poisoned"))?.iter().find(|(k, _)| *k == key) {
        return Ok(f.clone());
    }
    let fold = Arc::new(FoldIn::new(model.item_factors(), model.factors, regularization, alpha)?);
    let mut entries = cache.lock().map_err(|_| anyhow!("fold-in cache poisoned"))?;
    entries.retain(|(k, _)| *k != key);
    entries.push((key, fold.clone()));
    if entries.len() > 2 {
        entries.remove(0);
    }
    Ok(fold)
}

/// Event columns after the settings: ordinal, event_time (µs), event_type,
/// product_id, category_id, user_id; then the model columns.
const EVENT: usize = SETTINGS;
const MODEL: usize = EVENT + 6;

#[derive(Default)]
pub struct ReplayState {
    settings: Option<Settings>,
    events: Vec<(i64, Event)>,
    model: ModelInput,
}

/// What a replay function returns.
pub trait Output: 'static {
    const NAME: &'static str;
    const FUNCTION: &'static str;
    const KEEP_RECOMMENDATIONS: bool;
    fn columns() -> Vec<Column>;
    fn rows(outcome: replay::Outcome, events: &[Event], model: &ServingModel, window_us: i64) -> Result<RowSet>;
}

pub struct Replay<O: Output>(std::marker::PhantomData<O>);

impl<O: Output> AggregateFunction for Replay<O> {
    const NAME: &'static str = O::NAME;
    type State = ReplayState;
    fn params() -> Vec<SqlType> {
        use SqlType::*;
        let mut p = setting_types();
        p.extend([BigInt, BigInt, Varchar, BigInt, BigInt, BigInt]);
        p.extend([Varchar, BigInt, BigInt, Varchar, Double, List(Box::new(Float)), BigInt]);
        p
    }
    fn columns() -> Vec<Column> {
        O::columns()
    }
    fn update(state: &mut ReplayState, input: &InputChunk, rows: std::ops::Range<usize>) -> Result<()> {
        for row in rows {
            if state.settings.is_none() {
                state.settings = Some(read_settings(input, row, O::KEEP_RECOMMENDATIONS)?);
            }
            if state.model.read(input, row, MODEL)? {
                continue;
            }
            let Some(ordinal) = input.i64(EVENT, row) else { continue };
            let time = input.i64(EVENT + 1, row).ok_or_else(|| {
                anyhow!("event {ordinal} (in arrival order) has a NULL event_time; filter such rows out first (WHERE event_time IS NOT NULL)")
            })?;
            state.events.try_reserve(1).map_err(|_| anyhow!("not enough memory for {} events", state.events.len() + 1))?;
            state.events.push((
                ordinal,
                Event {
                    arrival: ordinal,
                    time,
                    kind: input.str(EVENT + 2, row).and_then(Kind::parse),
                    product: input.i64(EVENT + 3, row),
                    category: input.i64(EVENT + 4, row),
                    user: input.i64(EVENT + 5, row),
                },
            ));
        }
        Ok(())
    }
    fn combine(target: &mut ReplayState, source: ReplayState) -> Result<()> {
        if target.settings.is_none() {
            target.settings = source.settings;
        }
        target.events.try_reserve(source.events.len()).map_err(|_| anyhow!("not enough memory for the events"))?;
        target.events.extend(source.events);
        target.model.merge(source.model);
        Ok(())
    }
    fn finalize(state: ReplayState) -> Result<RowSet> {
        let settings = state.settings.ok_or_else(|| anyhow!("no rows: the model table is empty; pass a table made by ecoreco.als_train"))?;
        let (model, fold) = state.model.load(&settings.model_table, settings.planned_cached)?;
        let mut events = state.events;
        events.sort_unstable_by_key(|e| e.0);
        let events: Vec<Event> = events.into_iter().map(|e| e.1).collect();
        let pool = crate::binding::thread_pool(settings.config.threads as i64)?;
        let outcome = with_metrics_writer(&settings, |on_closed| replay::replay(&events, &model, &fold, &settings.config, &pool, on_closed))?;
        O::rows(outcome, &events, &model, settings.config.window_us)
    }
}

/// Runs `body` with a window callback that sends each closed window's
/// metrics to InfluxDB from a separate thread (so the replay never waits
/// for the network); the first failed write ends the call with its error.
fn with_metrics_writer(
    settings: &Settings,
    body: impl FnOnce(&mut dyn FnMut(&[WindowRow]) -> Result<()>) -> Result<replay::Outcome>,
) -> Result<replay::Outcome> {
    let Some(target) = settings.influx.clone() else {
        return body(&mut |_| Ok(()));
    };
    let (send, receive) = mpsc::channel::<String>();
    let failed: Arc<Mutex<Option<String>>> = Arc::default();
    let failure = failed.clone();
    let writer = std::thread::spawn(move || {
        let mut writer = Writer::new(target, INFLUX_TIMEOUT);
        for body in receive {
            if let Err(e) = writer.post(&body) {
                *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{e:#}"));
                return;
            }
        }
    });
    let tags = [("model", settings.model_table.as_str()), ("run", settings.run.as_str())];
    let outcome = body(&mut |rows| {
        if let Some(e) = failed.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            bail!("{e}");
        }
        let mut text = String::new();
        for row in rows {
            window_lines(&mut text, row, &tags)?;
        }
        send.send(text).map_err(|_| anyhow!("the metrics writer stopped"))
    });
    drop(send);
    writer.join().map_err(|_| anyhow!("the metrics writer panicked"))?;
    let outcome = outcome?;
    if let Some(e) = failed.lock().unwrap_or_else(|p| p.into_inner()).clone() {
        bail!("{e}");
    }
    Ok(outcome)
}

/// The two points of one window: `ecoreco_events` and
/// `ecoreco_recommendations`, at the window's start.
pub fn window_lines(out: &mut String, w: &WindowRow, tags: &[(&str, &str)]) -> Result<()> {
    let tags: Vec<(String, Option<String>)> = tags.iter().map(|(k, v)| (k.to_string(), Some(v.to_string()))).collect();
    let int = |k: &str, v: u64| (k.to_string(), Some(FieldValue::Int(v as i64)));
    let float = |k: &str, v: Option<f64>| (k.to_string(), v.map(FieldValue::Float));
    let time = Some(w.start.saturating_mul(1000));
    lineproto::write_point(
        out,
        "ecoreco_events",
        &tags,
        &[
            int("events", w.events),
            int("late_events", w.late_events),
            int("ignored_events", w.ignored_events),
            int("active_users", w.active_users),
            int("new_users", w.new_users),
            int("unknown_users", w.unknown_users),
        ],
        time,
    )?;
    lineproto::write_point(
        out,
        "ecoreco_recommendations",
        &tags,
        &[
            int("recommendations", w.recommendations),
            float("fallback_share", w.fallback_share),
            float("processing_ms", w.processing_ms),
            float("events_per_s", w.events_per_s),
            float("p50_ms", w.p50_ms),
            float("p95_ms", w.p95_ms),
            float("p99_ms", w.p99_ms),
        ],
        time,
    )?;
    Ok(())
}

/// `ecoreco.replay`: one row per window.
pub struct Windows;
impl Output for Windows {
    const NAME: &'static str = "ecoreco_replay_windows";
    const FUNCTION: &'static str = "ecoreco.replay";
    const KEEP_RECOMMENDATIONS: bool = false;
    fn columns() -> Vec<Column> {
        let mut c = vec![Column::new("window_start_us", SqlType::BigInt), Column::new("window_end_us", SqlType::BigInt)];
        for name in ["events", "late_events", "ignored_events", "active_users", "new_users", "unknown_users", "recommendations"] {
            c.push(Column::new(name, SqlType::BigInt));
        }
        for name in ["fallback_share", "processing_ms", "events_per_s", "p50_ms", "p95_ms", "p99_ms"] {
            c.push(Column::new(name, SqlType::Double));
        }
        c.push(Column::new("closed_by", SqlType::BigInt));
        c
    }
    fn rows(outcome: replay::Outcome, _: &[Event], _: &ServingModel, _: i64) -> Result<RowSet> {
        let w = &outcome.windows;
        let int = |f: fn(&WindowRow) -> u64| Values::BigInt(w.iter().map(|r| Some(f(r) as i64)).collect());
        let real = |f: fn(&WindowRow) -> Option<f64>| Values::Double(w.iter().map(f).collect());
        Ok(RowSet::new()
            .with("window_start_us", Values::BigInt(w.iter().map(|r| Some(r.start)).collect()))
            .with("window_end_us", Values::BigInt(w.iter().map(|r| Some(r.end)).collect()))
            .with("events", int(|r| r.events))
            .with("late_events", int(|r| r.late_events))
            .with("ignored_events", int(|r| r.ignored_events))
            .with("active_users", int(|r| r.active_users))
            .with("new_users", int(|r| r.new_users))
            .with("unknown_users", int(|r| r.unknown_users))
            .with("recommendations", int(|r| r.recommendations))
            .with("fallback_share", real(|r| r.fallback_share))
            .with("processing_ms", real(|r| r.processing_ms))
            .with("events_per_s", real(|r| r.events_per_s))
            .with("p50_ms", real(|r| r.p50_ms))
            .with("p95_ms", real(|r| r.p95_ms))
            .with("p99_ms", real(|r| r.p99_ms))
            .with("closed_by", Values::BigInt(w.iter().map(|r| r.closed_by).collect())))
    }
}

/// `ecoreco.replay_recommendations`: every list emitted, row per rank.
pub struct Recommendations;
impl Output for Recommendations {
    const NAME: &'static str = "ecoreco_replay_recommendations";
    const FUNCTION: &'static str = "ecoreco.replay_recommendations";
    const KEEP_RECOMMENDATIONS: bool = true;
    fn columns() -> Vec<Column> {
        vec![
            Column::new("event", SqlType::BigInt),
            Column::new("event_time_us", SqlType::BigInt),
            Column::new("window_start_us", SqlType::BigInt),
            Column::new("user_id", SqlType::BigInt),
            Column::new("rank", SqlType::Integer),
            Column::new("product_id", SqlType::BigInt),
            Column::new("score", SqlType::Double),
            Column::new("source", SqlType::Varchar),
        ]
    }
    fn rows(outcome: replay::Outcome, events: &[Event], model: &ServingModel, window_us: i64) -> Result<RowSet> {
        let n: usize = outcome.emitted.iter().map(|e| e.recommendations.len()).sum();
        let mut cols: (Vec<Option<i64>>, Vec<Option<i64>>, Vec<Option<i64>>, Vec<Option<i64>>) = Default::default();
        let (mut rank, mut product, mut score, mut source) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for v in [&mut cols.0, &mut cols.1, &mut cols.2, &mut cols.3, &mut product] {
            v.try_reserve_exact(n).map_err(|_| anyhow!("not enough memory for {n} recommendation rows"))?;
        }
        for Emitted { position, user, recommendations } in &outcome.emitted {
            let e = &events[*position];
            for (r, rec) in recommendations.iter().enumerate() {
                cols.0.push(Some(e.arrival));
                cols.1.push(Some(e.time));
                cols.2.push(Some(super::clock::window_start(e.time, window_us)));
                cols.3.push(Some(*user));
                rank.push(Some(r as i32 + 1));
                product.push(Some(model.product_ids[rec.product as usize]));
                score.push(Some(rec.score as f64));
                source.push(Some(rec.source.as_str().to_string()));
            }
        }
        Ok(RowSet::new()
            .with("event", Values::BigInt(cols.0))
            .with("event_time_us", Values::BigInt(cols.1))
            .with("window_start_us", Values::BigInt(cols.2))
            .with("user_id", Values::BigInt(cols.3))
            .with("rank", Values::Integer(rank))
            .with("product_id", Values::BigInt(product))
            .with("score", Values::Double(score))
            .with("source", Values::Text(source)))
    }
}

/// `ecoreco.replay_products`: the stream's counters per product.
pub struct Products;
impl Output for Products {
    const NAME: &'static str = "ecoreco_replay_products";
    const FUNCTION: &'static str = "ecoreco.replay_products";
    const KEEP_RECOMMENDATIONS: bool = false;
    fn columns() -> Vec<Column> {
        ["product_id", "views", "carts", "purchases"].iter().map(|n| Column::new(n, SqlType::BigInt)).collect()
    }
    fn rows(outcome: replay::Outcome, _: &[Event], _: &ServingModel, _: i64) -> Result<RowSet> {
        let mut p: Vec<_> = outcome.products.into_iter().collect();
        p.sort_unstable_by_key(|x| x.0);
        Ok(RowSet::new()
            .with("product_id", Values::BigInt(p.iter().map(|x| Some(x.0)).collect()))
            .with("views", Values::BigInt(p.iter().map(|x| Some(x.1.views as i64)).collect()))
            .with("carts", Values::BigInt(p.iter().map(|x| Some(x.1.carts as i64)).collect()))
            .with("purchases", Values::BigInt(p.iter().map(|x| Some(x.1.purchases as i64)).collect())))
    }
}

/// `ecoreco_recommend_session(model, model_ready, k, blend, view, cart,
/// purchase, cap, product_ids, event_codes, side, id, item, name, value,
/// factors, model_id)`: the fold-in of one anonymous session (event codes
/// 1 view, 2 cart, 3 purchase, 0 other).
struct SessionCall {
    table: String,
    ready: bool,
    k: usize,
    blend: f32,
    weights: Weights,
    products: Vec<i64>,
    codes: Vec<i64>,
}

#[derive(Default)]
pub struct SessionState {
    call: Option<SessionCall>,
    model: ModelInput,
}

const SESSION_MODEL: usize = 10;

fn read_session(input: &InputChunk, row: usize) -> Result<SessionCall> {
    let table = input.str(0, row).ok_or_else(|| anyhow!("parameter `model` is NULL; pass the name of a model table"))?;
    let k = input.i64(2, row).ok_or_else(|| anyhow!("parameter `k` is NULL; pass e.g. k := 10"))?;
    ensure!((1..=1000).contains(&k), "parameter `k` is {k}; it must be between 1 and 1000");
    let real = |c: usize, name: &str| input.f64(c, row).ok_or_else(|| anyhow!("parameter `{name}` is NULL; leave it out for the default"));
    let blend = real(3, "blend")?;
    ensure!((0.0..=1.0).contains(&blend), "parameter `blend` is {blend}; it must be between 0 and 1");
    let weight = |c: usize, name: &str| -> Result<f32> {
        let v = real(c, name)?;
        ensure!(v.is_finite() && v >= 0.0, "parameter `{name}` is {v}; it must be a finite number >= 0 (the value the model was trained with)");
        Ok(v as f32)
    };
    let weights = Weights { view: weight(4, "view")?, cart: weight(5, "cart")?, purchase: weight(6, "purchase")?, cap: weight(7, "cap")? };
    let list = |c: usize, name: &str| -> Result<Vec<i64>> {
        match input.list::<i64>(c, row) {
            None => bail!("`{name}` is NULL; pass a list, e.g. [1005115, 1004767]"),
            Some(Err(at)) => bail!("`{name}` has a NULL at position {}; pass a list without NULLs", at + 1),
            Some(Ok(v)) => Ok(v.to_vec()),
        }
    };
    let products = list(8, "product_ids")?;
    let codes = list(9, "event_types")?;
    ensure!(
        products.len() == codes.len(),
        "product_ids has {} elements and event_types {}; pass one event type per product",
        products.len(),
        codes.len()
    );
    Ok(SessionCall { table: table.to_string(), ready: input.bool(1, row).unwrap_or(false), k: k as usize, blend: blend as f32, weights, products, codes })
}

pub struct RecommendSession;
impl AggregateFunction for RecommendSession {
    const NAME: &'static str = "ecoreco_recommend_session";
    type State = SessionState;
    fn params() -> Vec<SqlType> {
        use SqlType::*;
        vec![
            Varchar, Boolean, BigInt, Double, Double, Double, Double, Double, List(Box::new(BigInt)), List(Box::new(BigInt)),
            Varchar, BigInt, BigInt, Varchar, Double, List(Box::new(Float)), BigInt,
        ]
    }
    fn columns() -> Vec<Column> {
        vec![
            Column::new("rank", SqlType::Integer),
            Column::new("product_id", SqlType::BigInt),
            Column::new("score", SqlType::Double),
            Column::new("source", SqlType::Varchar),
        ]
    }
    fn update(state: &mut SessionState, input: &InputChunk, rows: std::ops::Range<usize>) -> Result<()> {
        for row in rows {
            if state.call.is_none() {
                state.call = Some(read_session(input, row)?);
            }
            state.model.read(input, row, SESSION_MODEL)?;
        }
        Ok(())
    }
    fn combine(target: &mut SessionState, source: SessionState) -> Result<()> {
        if target.call.is_none() {
            target.call = source.call;
        }
        target.model.merge(source.model);
        Ok(())
    }
    fn finalize(state: SessionState) -> Result<RowSet> {
        let call = state.call.ok_or_else(|| anyhow!("the model table has no rows; pass a table made by ecoreco.als_train"))?;
        let (model, fold) = state.model.load(&call.table, call.ready)?;
        let mut user = UserState::new(&[]);
        for (&product, &code) in call.products.iter().zip(&call.codes) {
            let kind = match code {
                1 => Kind::View,
                2 => Kind::Cart,
                3 => Kind::Purchase,
                _ => continue,
            };
            let item = model.product(product);
            let touch = Touch { kind, time: 0, item, category: item.map(|i| model.product_category[i as usize]) };
            user.apply(&touch, &call.weights, &fold, model.item_factors());
        }
        let mut vector = vec![0f32; model.factors];
        let vector = if user.fold.is_empty() {
            None
        } else {
            user.fold.solve(&fold, &mut Scratch::default(), &mut vector)?;
            Some(vector.as_slice())
        };
        let recs = model.recommend_vector(vector, &top_categories(&user.categories), &user.bought, call.k, call.blend);
        Ok(RowSet::new()
            .with("rank", Values::Integer((1..=recs.len() as i32).map(Some).collect()))
            .with("product_id", Values::BigInt(recs.iter().map(|r| Some(model.product_ids[r.product as usize])).collect()))
            .with("score", Values::Double(recs.iter().map(|r| Some(r.score as f64)).collect()))
            .with("source", Values::Text(recs.iter().map(|r| Some(r.source.as_str().to_string())).collect())))
    }
}

/// `ecoreco_influx_line(measurement, tags_json, fields_json, time_ns)`.
pub struct InfluxLine;
impl ScalarFunction for InfluxLine {
    const NAME: &'static str = "ecoreco_influx_line";
    fn params() -> Vec<SqlType> {
        vec![SqlType::Varchar, SqlType::Varchar, SqlType::Varchar, SqlType::BigInt]
    }
    fn returns() -> SqlType {
        SqlType::Varchar
    }
    fn invoke(input: &InputChunk, out: &mut ColumnWriter) -> Result<()> {
        for row in 0..input.rows() {
            let measurement = input
                .str(0, row)
                .ok_or_else(|| anyhow!("measurement is NULL, pass a name such as 'ecoreco_window'"))?;
            match lineproto::line_from_json(measurement, input.str(1, row), input.str(2, row), input.i64(3, row))? {
                Some(line) => out.set_str(row, &line),
                None => out.set_null(row),
            }
        }
        Ok(())
    }
}

/// `ecoreco_influx_write(line, url, database, external_access)`: sends
/// the lines (NULLs skipped), returns `lines, requests, bytes`.
#[derive(Default)]
pub struct WriteState {
    call: Option<(Target, bool)>,
    lines: Vec<String>,
}

pub struct InfluxWrite;
impl AggregateFunction for InfluxWrite {
    const NAME: &'static str = "ecoreco_influx_write";
    type State = WriteState;
    fn params() -> Vec<SqlType> {
        vec![SqlType::Varchar, SqlType::Varchar, SqlType::Varchar, SqlType::Boolean]
    }
    fn columns() -> Vec<Column> {
        ["lines", "requests", "bytes"].iter().map(|n| Column::new(n, SqlType::BigInt)).collect()
    }
    fn update(state: &mut WriteState, input: &InputChunk, rows: std::ops::Range<usize>) -> Result<()> {
        for row in rows {
            if state.call.is_none() {
                let url = input.str(1, row).ok_or_else(|| anyhow!("url is NULL, pass e.g. url := 'http://127.0.0.1:8086'"))?;
                let database = input.str(2, row).ok_or_else(|| anyhow!("database is NULL, pass e.g. database := 'ecoreco'"))?;
                let target = Target::new(url, database)?;
                state.call = Some((target, input.bool(3, row) == Some(true)));
            }
            if let Some(line) = input.str(0, row) {
                ensure!(!line.contains('\n'), "a line contains a line break, pass one point per row");
                state.lines.push(line.to_string());
            }
        }
        Ok(())
    }
    fn combine(target: &mut WriteState, source: WriteState) -> Result<()> {
        if target.call.is_none() {
            target.call = source.call;
        }
        target.lines.extend(source.lines);
        Ok(())
    }
    fn finalize(state: WriteState) -> Result<RowSet> {
        let written = match state.call {
            // No rows at all: nothing to send, nothing to refuse.
            None => Default::default(),
            Some((target, external)) => {
                ensure!(
                    external,
                    "refused because enable_external_access is false, allow external access to send metrics"
                );
                let mut writer = Writer::new(target, INFLUX_TIMEOUT);
                writer.send(&state.lines)?;
                writer.written
            }
        };
        Ok(RowSet::new()
            .with("lines", Values::BigInt(vec![Some(written.lines as i64)]))
            .with("requests", Values::BigInt(vec![Some(written.requests as i64)]))
            .with("bytes", Values::BigInt(vec![Some(written.bytes as i64)])))
    }
}
