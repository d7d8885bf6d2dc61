//! The SQL functions of the real-time stage, over the binding layer: the
//! `ecoreco_replay_*` aggregates (fed by the `ecoreco.replay*` macros with
//! the caller's events in arrival order plus the model's rows; what they
//! return is in [`super::outputs`]) and `ecoreco_recommend_session`. The
//! InfluxDB functions are in [`super::monitor`].
//!
//! A replay aggregate's rows carry either one event or one model row. The
//! model is read from the in-process cache when the table's model is
//! cached (then the macro feeds only its `param` rows, which also carry
//! alpha and the regularization the fold-in needs), else built from its
//! rows and cached. The weighting the fold-in repeats (confidence, decay
//! and their statistics) comes with the model, cached or read.

use super::foldin::FoldIn;
use super::http::Target;
use super::monitor::with_metrics_writer;
use super::replay::{self, Config, Event, LateRule};
use super::state::{Kind, Weights};
use crate::binding::aggregate::{self, AggregateFunction};
use crate::binding::blocks::BlockSource;
use crate::binding::rows::InputChunk;
use crate::binding::{Args, Check, Column, Param, SqlType, Value};
use crate::budget::{self, Budget};
use crate::model::table::ModelRows;
use crate::recommend::cache;
use crate::recommend::serving::ServingModel;
use anyhow::{anyhow, bail, ensure, Result};
use rayon::slice::ParallelSliceMut;
use std::sync::{Arc, Mutex, OnceLock};

/// The model-row inputs, shared by the replay and session aggregates.
pub(crate) fn model_inputs() -> Vec<Column> {
    use SqlType::*;
    vec![
        Column::new("side", Varchar),
        Column::new("id", BigInt),
        Column::new("item", BigInt),
        Column::new("name", Varchar),
        Column::new("value", Double),
        Column::new("factors", List(Box::new(Float))),
        Column::new("model_id", BigInt),
    ]
}

/// The model table as the macros feed it (only `param` rows when cached).
pub const MODEL_FEED: [&str; 7] = [
    "m.side::VARCHAR",
    "m.id::BIGINT",
    "m.item::BIGINT",
    "m.name::VARCHAR",
    "m.value::DOUBLE",
    "m.factors::FLOAT[]",
    "m.model_id::BIGINT",
];

/// Parameters every function that reads a model takes.
pub(crate) fn model_params() -> Vec<Param> {
    vec![
        Param::named(
            "model",
            SqlType::Varchar,
            Value::Text("model".into()),
            "the name of a model table, e.g. model := 'model'",
        ),
        Param::supplied(
            "planned_cached",
            SqlType::Boolean,
            "ecoreco_model_ready(model)",
        ),
    ]
}

/// The parameters of the session functions (`recommend_session` and
/// `recommend_sessions`): the model, the scoring, the event weights, the
/// host's settings.
pub(super) fn session_params() -> Vec<Param> {
    let mut p = model_params();
    p.extend(scoring_params());
    p.extend(crate::recommend::rules::rule_params());
    p.push(crate::recommend::items::weight_param());
    p.extend(crate::als::weight_params());
    p.extend(crate::binding::params::settings_params());
    p
}

pub(super) fn scoring_params() -> Vec<Param> {
    use SqlType::*;
    vec![Param::named(
        "k",
        BigInt,
        Value::Int(10),
        "how many products per list, e.g. k := 10",
    )
    .check(Check::IntRange(1, 1000))]
    .into_iter()
    // The serving functions' blend: NULL (the default) is the one stored with the model.
    .chain(
        crate::recommend::serving_params()
            .into_iter()
            .filter(|p| p.name == "blend"),
    )
    .collect()
}

/// The call's blend, else the model's.
pub(crate) fn blend(call: &Args, model: &ServingModel) -> Result<f32> {
    Ok(call.opt_double("blend")?.map_or(model.blend, |b| b as f32))
}

pub(crate) fn weights(call: &Args) -> Result<Weights> {
    let w = |name: &str| -> Result<f32> {
        let v = call.double(name)?;
        ensure!(v.is_finite() && v >= 0.0, "parameter `{name}` is {v}; pass a finite number >= 0 (the value the model was trained with)");
        Ok(v as f32)
    };
    Ok(Weights {
        view: w("view")?,
        cart: w("cart")?,
        purchase: w("purchase")?,
        cap: w("cap")?,
    })
}

/// The model's rows as the macros pass them.
#[derive(Default)]
pub(crate) struct ModelInput {
    model_id: Option<i64>,
    alpha: Option<f64>,
    regularization: Option<f64>,
    rows: ModelRows,
    /// The rule tables' rows, when the feed carries them (super::rules).
    pub(crate) rules: super::rules::RuleRows,
}

impl ModelInput {
    /// Reads a model row from the inputs starting at `first` (side, id,
    /// item, name, value, factors, model_id); false when the row has none.
    pub(crate) fn read(&mut self, input: &InputChunk, row: usize, first: usize) -> Result<bool> {
        let Some(side) = input.str(first, row) else {
            return Ok(false);
        };
        if self.rules.read(side, input.i64(first + 1, row)) {
            return Ok(true);
        }
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
            Some(Ok(v)) => Some(v),
            Some(Err(at)) => bail!("a factors list has a NULL at position {}; the model table is damaged, train it again", at + 1),
        };
        self.rows.push(
            side,
            input.i64(first + 1, row),
            input.i64(first + 2, row),
            name,
            value,
            factors,
        )?;
        Ok(true)
    }

    pub(crate) fn merge(&mut self, other: ModelInput) -> Result<()> {
        self.model_id = self.model_id.or(other.model_id);
        self.alpha = self.alpha.or(other.alpha);
        self.regularization = self.regularization.or(other.regularization);
        self.rules.merge(other.rules);
        self.rows.extend(other.rows)?;
        Ok(())
    }

    /// The serving model and its fold-in: cached, or built from the rows.
    pub(crate) fn load(
        self,
        call: &Args,
        pool: &rayon::ThreadPool,
    ) -> Result<(Arc<ServingModel>, Arc<FoldIn>)> {
        let table = call.text("model")?;
        let model_id = self
            .model_id
            .ok_or_else(|| anyhow!("the model table '{table}' is empty or its model_id is NULL; pass a table made by ecoreco.als_train"))?;
        let (Some(alpha), Some(regularization)) = (self.alpha, self.regularization) else {
            bail!("the model table '{table}' has no alpha or regularization param row; pass a table made by ecoreco.als_train");
        };
        let budget = Budget::from_setting(call.text("memory_limit")?);
        let served = match cache::cached(model_id) {
            Some(m) => m,
            None if !call.boolean("planned_cached")? => {
                budget.check(
                    "serving the model",
                    (self.rows.floats() * 8 + self.rows.rows() * 48) as u64,
                    "its factors twice plus 48 bytes per row",
                )?;
                let rows = self.rows;
                cache::remember(
                    pool.install(|| crate::recommend::items::serving_of_rows(rows, model_id))?,
                )
            }
            None => {
                cache::forget_table(table);
                bail!("the table '{table}' holds a different model than the one this session read from it before; it will be read afresh on the next call: run the query again");
            }
        };
        cache::note_table(table, model_id);
        // The fold-in repeats the model's weighting from the statistics its
        // rows record (older tables of log, bm25 or decayed models lack them).
        served
            .weighting
            .check(served.n_products())
            .map_err(|e| anyhow!("{e} (model table '{table}')"))?;
        budget.check(
            "the fold-in",
            FoldIn::bytes(served.n_products(), served.factors),
            "one float per product factor, two factors × factors matrices, and for at most 8,192 products one float per pair of products",
        )?;
        let fold = pool.install(|| fold_in_for(&served, regularization, alpha))?;
        Ok((served, fold))
    }
}

/// The fold-ins of recently used models (`YᵀY + λI`, its inverse and
/// `A₀⁻¹ y` per product cost about one ALS half-step: worth keeping).
fn fold_in_for(model: &Arc<ServingModel>, regularization: f64, alpha: f64) -> Result<Arc<FoldIn>> {
    type Key = (i64, u64, u64);
    type Entries = Vec<(Key, Arc<FoldIn>)>;
    static CACHE: OnceLock<Mutex<Entries>> = OnceLock::new();
    let key = (model.model_id, regularization.to_bits(), alpha.to_bits());
    let cache = CACHE.get_or_init(Default::default);
    if let Some((_, f)) = crate::threads::lock(cache).iter().find(|(k, _)| *k == key) {
        return Ok(f.clone());
    }
    let fold = Arc::new(
        FoldIn::new(model.item_factors(), model.factors, regularization, alpha)?
            .with_weighting(model.weighting.clone())?,
    );
    let mut entries = crate::threads::lock(cache);
    entries.retain(|(k, _)| *k != key);
    entries.push((key, fold.clone()));
    if entries.len() > 2 {
        entries.remove(0);
    }
    Ok(fold)
}

/// The per-row inputs of a replay: one event (ordinal, event time in µs,
/// type, product, category, user), or one model row.
fn replay_inputs() -> Vec<Column> {
    use SqlType::*;
    let mut c = vec![
        Column::new("ordinal", BigInt),
        Column::new("time_us", BigInt),
        Column::new("event_type", Varchar),
        Column::new("product_id", BigInt),
        Column::new("category_id", BigInt),
        Column::new("user_id", BigInt),
    ];
    c.extend(model_inputs());
    c
}

/// The feed's columns, in input order.
pub const REPLAY_FEED: [&str; 13] = [
    "f.ordinal",
    "f.time_us",
    "f.event_type",
    "f.product_id",
    "f.category_id",
    "f.user_id",
    "f.side",
    "f.id",
    "f.item",
    "f.name",
    "f.value",
    "f.factors",
    "f.model_id",
];

/// The replay's parameters (after the macro-only `events`, `window`,
/// `watermark` and `arrival`).
pub fn replay_params() -> Vec<Param> {
    use SqlType::*;
    let mut p = model_params();
    p.extend([
        Param::supplied("window_us", BigInt, "epoch(\"window\"::INTERVAL) * 1000000").nullable(),
        Param::supplied(
            "watermark_us",
            BigInt,
            "epoch(watermark::INTERVAL) * 1000000",
        )
        .nullable(),
        Param::named(
            "speed",
            Double,
            Value::Int(0),
            "0 (as fast as possible) or a factor of recorded time such as 60",
        )
        .check(Check::Range(0.0, 1e12)),
        Param::named(
            "max_seconds",
            Double,
            Value::Int(3600),
            "the longest a paced replay may last, in seconds, e.g. max_seconds := 3600",
        )
        .check(Check::Range(0.0, 1e9)),
    ]);
    p.extend(scoring_params());
    p.extend(crate::recommend::rules::rule_params());
    p.push(crate::recommend::items::weight_param());
    p.extend([
        Param::named(
            "seed",
            BigInt,
            Value::Int(42),
            "any integer (it seeds the user partitioning; results do not depend on it)",
        ),
        Param::named(
            "exclude_purchased",
            Boolean,
            Value::Bool(true),
            "true or false",
        ),
        Param::named(
            "late",
            Varchar,
            Value::Text("skip".into()),
            "'skip' or 'apply'",
        )
        .check(Check::OneOf(&["skip", "apply"])),
    ]);
    p.extend(crate::als::weight_params());
    p.extend([
        Param::named(
            "influx",
            Varchar,
            Value::Null,
            "an InfluxDB address such as 'http://127.0.0.1:8086'",
        )
        .nullable(),
        Param::named(
            "influx_database",
            Varchar,
            Value::Text("ecoreco".into()),
            "an InfluxDB database name, e.g. 'ecoreco'",
        ),
        Param::named(
            "run",
            Varchar,
            Value::Text("replay".into()),
            "a label for this run's metrics, e.g. 'demo'",
        ),
        Param::supplied(
            "external_access",
            Boolean,
            "current_setting('enable_external_access')",
        ),
    ]);
    p.extend(crate::binding::params::settings_params());
    p
}

fn config(call: &Args, keep: bool) -> Result<Config> {
    let window_us = call.opt_int("window_us")?.ok_or_else(|| {
        anyhow!("parameter `window` is NULL; pass an interval such as INTERVAL 5 MINUTE")
    })?;
    ensure!(
        window_us > 0,
        "parameter `window` is {window_us} µs; pass a positive interval such as INTERVAL 5 MINUTE"
    );
    let watermark_us = call.opt_int("watermark_us")?.ok_or_else(|| {
        anyhow!("parameter `watermark` is NULL; pass an interval such as INTERVAL 10 MINUTE")
    })?;
    ensure!(
        watermark_us >= 0,
        "parameter `watermark` is negative; pass an interval such as INTERVAL 10 MINUTE"
    );
    Ok(Config {
        window_us,
        watermark_us,
        speed: call.double("speed")?,
        max_seconds: call.double("max_seconds")?,
        k: call.int("k")? as usize,
        // Set from the call or the model once the model is read.
        blend: 0.0,
        exclude_purchased: call.boolean("exclude_purchased")?,
        late: if call.text("late")? == "apply" {
            LateRule::Apply
        } else {
            LateRule::Skip
        },
        weights: weights(call)?,
        threads: call.int("threads")?.clamp(1, 256) as usize,
        seed: call.int("seed")? as u64,
        keep_recommendations: keep,
        // Set once the model is read.
        rules: Default::default(),
        item_weight: crate::recommend::items::call_weight(call)?,
    })
}

fn influx_target(call: &Args) -> Result<Option<Target>> {
    let Some(url) = call.opt_text("influx")? else {
        return Ok(None);
    };
    ensure!(
        call.boolean("external_access")?,
        "sending metrics to InfluxDB is refused because enable_external_access is false; leave influx out or allow external access"
    );
    Ok(Some(Target::new(url, call.text("influx_database")?)?))
}

#[derive(Default)]
pub struct ReplayState {
    events: Vec<(i64, Event)>,
    model: ModelInput,
}

/// What a replay function returns.
pub trait Output: 'static {
    const NAME: &'static str;
    const FUNCTION: &'static str;
    const KEEP_RECOMMENDATIONS: bool;
    fn columns() -> Vec<Column>;
    fn result(
        outcome: replay::Outcome,
        events: Vec<Event>,
        model: Arc<ServingModel>,
        window_us: i64,
    ) -> Result<Arc<dyn BlockSource>>;
}

pub struct Replay<O: Output>(std::marker::PhantomData<O>);

impl<O: Output> AggregateFunction for Replay<O> {
    const NAME: &'static str = O::NAME;
    const FUNCTION: &'static str = O::FUNCTION;
    const EMPTY: &'static str = crate::model::table::EMPTY_MODEL;
    type State = ReplayState;
    fn inputs() -> Vec<Column> {
        replay_inputs()
    }
    fn params() -> Vec<Param> {
        replay_params()
    }
    fn columns() -> Vec<Column> {
        O::columns()
    }
    fn update(
        state: &mut ReplayState,
        _call: &Args,
        input: &InputChunk,
        rows: std::ops::Range<usize>,
    ) -> Result<()> {
        // Inputs are declared contiguous: the event's six, then the model's.
        let (e, m) = (input.col("ordinal")?, input.col("side")?);
        for row in rows {
            if state.model.read(input, row, m)? {
                continue;
            }
            let Some(ordinal) = input.i64(e, row) else {
                continue;
            };
            let time = input.i64(e + 1, row).ok_or_else(|| {
                anyhow!("event {ordinal} (in arrival order) has a NULL event_time; filter such rows out first (WHERE event_time IS NOT NULL)")
            })?;
            budget::reserve(&mut state.events, 1, "the events")?;
            state.events.push((
                ordinal,
                Event {
                    arrival: ordinal,
                    time,
                    kind: input.str(e + 2, row).and_then(Kind::parse),
                    product: input.i64(e + 3, row),
                    category: input.i64(e + 4, row),
                    user: input.i64(e + 5, row),
                },
            ));
        }
        Ok(())
    }
    fn combine(target: &mut ReplayState, mut source: ReplayState) -> Result<()> {
        if target.events.is_empty() {
            std::mem::swap(&mut target.events, &mut source.events);
        }
        budget::reserve(&mut target.events, source.events.len(), "the events")?;
        target.events.extend(source.events);
        target.model.merge(source.model)
    }
    fn finalize(mut state: ReplayState, call: &Args) -> Result<Arc<dyn BlockSource>> {
        let mut config = config(call, O::KEEP_RECOMMENDATIONS)?;
        let influx = influx_target(call)?;
        let pool = crate::threads::pool(config.threads as i64)?;
        let rule_rows = std::mem::take(&mut state.model.rules);
        let (model, fold) = state.model.load(call, &pool)?;
        config.blend = blend(call, &model)?;
        config.rules = Arc::new(rule_rows.rules(call, &model)?);
        let mut events = state.events;
        // Side by side: a serial sort of a million events is a few percent
        // of the whole replay.
        pool.install(|| events.par_sort_unstable_by_key(|e| e.0));
        let events: Vec<Event> = events.into_iter().map(|e| e.1).collect();
        let tags = [("model", call.text("model")?), ("run", call.text("run")?)];
        let outcome = with_metrics_writer(influx, &tags, |on_closed| {
            replay::replay(&events, &model, &fold, &config, &pool, on_closed)
        })?;
        O::result(outcome, events, model, config.window_us)
    }
}

/// The body of `ecoreco.replay*`: the aggregate over the feed of events
/// and model rows, read block by block.
pub fn replay_sql<T: AggregateFunction>(function: &str) -> String {
    aggregate::rows_sql::<T>(
        function,
        &REPLAY_FEED,
        &[],
        &format!("({}) f", include_str!("../../sql/macros/stream_feed.sql")),
    )
}
