//! Stage 4: K-Means customer segments.
//!
//! `ecoreco.kmeans_segments(features, ...)` and friends are macros that
//! unpivot the chosen feature columns into (user, feature, value) rows and
//! feed them to the Rust aggregates below, inside the caller's query. The
//! aggregate standardises the features, runs [`kmeans`] and names the
//! segments by the original pipeline's business rules. This file is the SQL
//! glue (parameters, rows in and out, the macros); the fit is in `fitting`,
//! the names in `naming`.

mod fitting;
pub mod kmeans;
mod naming;
pub mod rfm;

use crate::binding::aggregate::{self, AggregateFunction};
use crate::binding::blocks::{BlockSource, Computed};
use crate::binding::rows::{Col, InputChunk, RowSet};
use crate::binding::{Args, Check, Column, Param, SqlMacro, SqlType, Value};
use crate::tables;
use fitting::{
    check_settings, fit_scored, matrix, merge, standardize, with_threads, FeatureRows, Matrix,
    Segmentation, Settings, SilhouetteMetric,
};
use kmeans::KMeansParams;
pub use naming::{business_name, segment_names};
use std::sync::Arc;

/// The settings of one call, from its parameters.
impl Settings {
    fn read(call: &Args, k: &str, k_max: &str) -> anyhow::Result<Self> {
        Ok(Settings {
            n_features: call.int("n_features")? as usize,
            k: call.int(k)?,
            seed: call.int("seed")?,
            max_iter: call.int("max_iter")?,
            sample: call.int("sample")?,
            threads: call.int("threads")?,
            k_max: call.int(k_max)?,
            n_init: call.int("n_init")?,
            metric: SilhouetteMetric::read(call.text("silhouette_distance")?)?,
        })
    }
}

/// The per-row inputs: the unpivoted feature cells.
fn feature_inputs() -> Vec<Column> {
    use SqlType::*;
    vec![
        Column::new("user_id", BigInt),
        Column::new("feature_index", BigInt),
        Column::new("feature", Varchar),
        Column::new("value", Double),
    ]
}

const FEATURE_INPUTS: [&str; 4] = [
    "user_id",
    "list_position(columns, feature)::BIGINT",
    "feature",
    "value",
];

/// Parameters shared by the k-means aggregates, declared once.
fn fit_params() -> Vec<Param> {
    use SqlType::*;
    vec![
        Param::named(
            "seed",
            BigInt,
            Value::Int(42),
            "any integer seed, e.g. seed := 42",
        ),
        Param::named(
            "max_iter",
            BigInt,
            Value::Int(20),
            "the most Lloyd iterations, e.g. max_iter := 20",
        )
        .check(Check::IntRange(1, 10_000)),
        // 0 is how the per-user macros skip the silhouette they do not show.
        Param::named(
            "sample",
            BigInt,
            Value::Int(50_000),
            "the euclidean silhouette's sample size (0: no silhouette), e.g. sample := 50000",
        )
        .check(Check::IntRange(0, 1_000_000)),
        Param::named(
            "n_init",
            BigInt,
            Value::Int(1),
            "independent k-means++ starts, e.g. n_init := 1",
        )
        .check(Check::IntRange(1, 1_000)),
        Param::named(
            "silhouette_distance",
            Varchar,
            Value::Text(SilhouetteMetric::NAMES[0].into()),
            "the silhouette's distance, e.g. silhouette_distance := 'squared_euclidean'",
        )
        .check(Check::OneOf(&SilhouetteMetric::NAMES)),
        Param::supplied("n_features", BigInt, "len(columns)"),
        Param::supplied("threads", BigInt, "current_setting('threads')"),
        Param::supplied("memory_limit", Varchar, "current_setting('memory_limit')"),
    ]
}

fn collect(
    state: &mut FeatureRows,
    call: &Args,
    input: &InputChunk,
    rows: std::ops::Range<usize>,
) -> anyhow::Result<()> {
    let (u, i, f, v) = (
        input.col("user_id")?,
        input.col("feature_index")?,
        input.col("feature")?,
        input.col("value")?,
    );
    let budget = crate::budget::Budget::from_setting(call.text("memory_limit")?);
    crate::budget::reserve(&mut state.cells, rows.len(), "the feature values")?;
    budget.check(
        "holding the features",
        ((state.cells.len() + rows.len()) * 48) as u64,
        "48 bytes per user and feature",
    )?;
    for row in rows {
        let Some(user) = input.i64(u, row) else {
            anyhow::bail!("a row has a NULL user_id; filter it out or give every row a user_id")
        };
        let Some(index) = input.i64(i, row) else {
            let name = input.str(f, row).unwrap_or("?");
            anyhow::bail!(
                "column `{name}` cannot be both the id and a feature; pass numeric feature columns other than user_id, \
                 e.g. columns := ['recency', 'frequency', 'monetary']"
            )
        };
        let index = index as u32;
        state
            .names
            .entry(index)
            .or_insert_with(|| input.str(f, row).unwrap_or("").to_string());
        state.cells.push((user, index, input.f64(v, row)));
    }
    Ok(())
}

/// `ecoreco_kmeans`: the fitted segmentation as rows of several kinds
/// ('user', 'segment', 'centroid', 'scaling', 'model'), which the macros
/// select from.
pub struct KMeansAggregate;

fn kmeans_columns() -> Vec<Column> {
    use SqlType::*;
    vec![
        Column::new("kind", Varchar),
        Column::new("user_id", BigInt),
        Column::new("segment_id", Integer),
        Column::new("segment", Varchar),
        Column::new("distance", Double),
        Column::new("feature", Varchar),
        Column::new("value", Double),
        Column::new("users", BigInt),
        Column::new("within_ss", Double),
        Column::new("silhouette", Double),
        Column::new("silhouette_metric", Varchar),
        Column::new("sample_size", BigInt),
        Column::new("iterations", Integer),
    ]
}

/// One output row of `ecoreco_kmeans`, mostly NULL but for its kind's fields.
#[derive(Default)]
struct KindRow {
    user_id: Option<i64>,
    segment_id: Option<i32>,
    segment: Option<String>,
    distance: Option<f64>,
    feature: Option<String>,
    value: Option<f64>,
    users: Option<i64>,
    within_ss: Option<f64>,
    silhouette: Option<f64>,
    silhouette_metric: Option<String>,
    sample_size: Option<i64>,
    iterations: Option<i32>,
}

/// Rows of [`kmeans_columns`], written by column handles resolved once.
struct KindRows {
    rows: RowSet,
    kind: Col<String>,
    user_id: Col<i64>,
    segment_id: Col<i32>,
    segment: Col<String>,
    distance: Col<f64>,
    feature: Col<String>,
    value: Col<f64>,
    users: Col<i64>,
    within_ss: Col<f64>,
    silhouette: Col<f64>,
    silhouette_metric: Col<String>,
    sample_size: Col<i64>,
    iterations: Col<i32>,
}

impl KindRows {
    fn new() -> anyhow::Result<Self> {
        let rows = RowSet::for_columns(&kmeans_columns());
        Ok(KindRows {
            kind: rows.col("kind")?,
            user_id: rows.col("user_id")?,
            segment_id: rows.col("segment_id")?,
            segment: rows.col("segment")?,
            distance: rows.col("distance")?,
            feature: rows.col("feature")?,
            value: rows.col("value")?,
            users: rows.col("users")?,
            within_ss: rows.col("within_ss")?,
            silhouette: rows.col("silhouette")?,
            silhouette_metric: rows.col("silhouette_metric")?,
            sample_size: rows.col("sample_size")?,
            iterations: rows.col("iterations")?,
            rows,
        })
    }
    fn push(&mut self, kind: &str, fill: impl FnOnce(&mut KindRow)) -> anyhow::Result<()> {
        let mut r = KindRow::default();
        fill(&mut r);
        let out = &mut self.rows;
        out.put_str(self.kind, Some(kind));
        out.put(self.user_id, r.user_id);
        out.put(self.segment_id, r.segment_id);
        out.put(self.segment, r.segment);
        out.put(self.distance, r.distance);
        out.put(self.feature, r.feature);
        out.put(self.value, r.value);
        out.put(self.users, r.users);
        out.put(self.within_ss, r.within_ss);
        out.put(self.silhouette, r.silhouette);
        out.put(self.silhouette_metric, r.silhouette_metric);
        out.put(self.sample_size, r.sample_size);
        out.put(self.iterations, r.iterations);
        Ok(())
    }
}

/// Users per block of 'user' rows.
const USERS_PER_BLOCK: usize = 1024;

/// A fitted segmentation: per-user rows are written block by block from
/// the assignments; the few summary rows come in the last block.
struct Fitted {
    user_ids: Vec<i64>,
    segment_of_user: Vec<u32>,
    distances: Vec<f64>,
    segment_names: Vec<String>,
    summary: RowSet,
}

impl BlockSource for Fitted {
    fn blocks(&self) -> usize {
        self.user_ids.len().div_ceil(USERS_PER_BLOCK) + 1
    }
    fn block(&self, index: usize) -> anyhow::Result<RowSet> {
        let user_blocks = self.user_ids.len().div_ceil(USERS_PER_BLOCK);
        if index == user_blocks {
            return Ok(self.summary.clone());
        }
        let mut out = KindRows::new()?;
        let start = index * USERS_PER_BLOCK;
        for row in start..(start + USERS_PER_BLOCK).min(self.user_ids.len()) {
            let segment = self.segment_of_user[row];
            out.push("user", |r| {
                r.user_id = Some(self.user_ids[row]);
                r.segment_id = Some(segment as i32);
                r.segment = Some(self.segment_names[segment as usize].clone());
                r.distance = Some(self.distances[row]);
            })?;
        }
        Ok(out.rows)
    }
}

/// The fitted segmentation as rows: the summary rows now, the per-user
/// rows block by block.
fn fit(state: FeatureRows, settings: Settings) -> anyhow::Result<Fitted> {
    let fitted = fitting::segment(state, settings)?;
    let Segmentation {
        names,
        segment_names,
        sizes,
        within,
        centroids,
        scaler,
        ..
    } = &fitted;
    let mut out = KindRows::new()?;
    for s in 0..sizes.len() {
        out.push("segment", |r| {
            r.segment_id = Some(s as i32);
            r.segment = Some(segment_names[s].clone());
            r.users = Some(sizes[s] as i64);
            r.within_ss = Some(within[s]);
        })?;
        for (f, name) in names.iter().enumerate() {
            out.push("centroid", |r| {
                r.segment_id = Some(s as i32);
                r.segment = Some(segment_names[s].clone());
                r.feature = Some(name.clone());
                r.value = Some(centroids[s][f]);
            })?;
        }
    }
    for (f, name) in names.iter().enumerate() {
        out.push("scaling", |r| {
            r.feature = Some(name.clone());
            r.value = Some(scaler.mean[f]);
            r.distance = Some(scaler.std[f]);
        })?;
    }
    let score = fitted.score;
    out.push("model", |r| {
        r.users = Some(fitted.user_ids.len() as i64);
        r.within_ss = Some(fitted.inertia);
        r.silhouette = score.map(|s| s.0);
        r.silhouette_metric = score.map(|_| fitted.metric.name().to_string());
        r.sample_size = score.map(|s| s.1 as i64);
        r.iterations = Some(fitted.iterations as i32);
    })?;
    Ok(Fitted {
        user_ids: fitted.user_ids,
        segment_of_user: fitted.segment_of_user,
        distances: fitted.distances,
        segment_names: fitted.segment_names,
        summary: out.rows,
    })
}

impl AggregateFunction for KMeansAggregate {
    const NAME: &'static str = "ecoreco_kmeans";
    const FUNCTION: &'static str = "ecoreco.kmeans_model";
    const EMPTY: &'static str =
        "the features table is empty: no users to segment; pass a table with one row per user";
    type State = FeatureRows;
    fn inputs() -> Vec<Column> {
        feature_inputs()
    }
    fn params() -> Vec<Param> {
        let mut params = vec![Param::named(
            "k",
            SqlType::BigInt,
            Value::Int(5),
            "the number of segments, e.g. k := 5",
        )
        .check(Check::IntRange(1, 10_000))];
        params.extend(fit_params());
        params
    }
    fn columns() -> Vec<Column> {
        kmeans_columns()
    }
    fn update(
        state: &mut FeatureRows,
        call: &Args,
        input: &InputChunk,
        rows: std::ops::Range<usize>,
    ) -> anyhow::Result<()> {
        collect(state, call, input, rows)
    }
    fn combine(target: &mut FeatureRows, source: FeatureRows) -> anyhow::Result<()> {
        merge(target, source)
    }
    fn finalize(state: FeatureRows, call: &Args) -> anyhow::Result<Arc<dyn BlockSource>> {
        Ok(Arc::new(fit(state, Settings::read(call, "k", "k")?)?))
    }
}

/// `ecoreco_kmeans_sweep`: inertia and silhouette for every k in [k_min, k_max].
pub struct KMeansSweep;

impl AggregateFunction for KMeansSweep {
    const NAME: &'static str = "ecoreco_kmeans_sweep";
    const FUNCTION: &'static str = "ecoreco.kmeans_sweep";
    const EMPTY: &'static str = KMeansAggregate::EMPTY;
    type State = FeatureRows;
    fn inputs() -> Vec<Column> {
        feature_inputs()
    }
    fn params() -> Vec<Param> {
        use SqlType::*;
        let mut params = vec![
            Param::named(
                "k_min",
                BigInt,
                Value::Int(2),
                "the smallest k, e.g. k_min := 2",
            )
            .check(Check::IntRange(1, 10_000)),
            Param::named(
                "k_max",
                BigInt,
                Value::Int(8),
                "the largest k, e.g. k_max := 8",
            )
            .check(Check::IntRange(1, 10_000)),
        ];
        let mut fit = fit_params();
        if let Some(sample) = fit.iter_mut().find(|p| p.name == "sample") {
            sample.default = Some(Value::Int(10_000));
        }
        params.extend(fit);
        params
    }
    fn columns() -> Vec<Column> {
        use SqlType::*;
        vec![
            Column::new("k", Integer),
            Column::new("inertia", Double),
            Column::new("silhouette", Double),
            Column::new("silhouette_metric", Varchar),
            Column::new("sample_size", BigInt),
            Column::new("iterations", Integer),
        ]
    }
    fn update(
        state: &mut FeatureRows,
        call: &Args,
        input: &InputChunk,
        rows: std::ops::Range<usize>,
    ) -> anyhow::Result<()> {
        collect(state, call, input, rows)
    }
    fn combine(target: &mut FeatureRows, source: FeatureRows) -> anyhow::Result<()> {
        merge(target, source)
    }
    fn finalize(state: FeatureRows, call: &Args) -> anyhow::Result<Arc<dyn BlockSource>> {
        let settings = Settings::read(call, "k_min", "k_max")?;
        if settings.k_max < settings.k {
            return Err(crate::error::param(format!(
                "parameter `k_max` is {} but `k_min` is {}; pass k_max >= k_min",
                settings.k_max, settings.k
            )));
        }
        let Matrix {
            user_ids,
            names,
            mut values,
            settings,
        } = matrix(state, settings)?;
        check_settings(
            &Settings {
                k: settings.k_max,
                ..settings
            },
            user_ids.len(),
        )?;
        check_settings(&settings, user_ids.len())?;
        let n_cols = names.len();
        standardize(&mut values, n_cols)?;
        let results = with_threads(settings.threads, || -> anyhow::Result<Vec<_>> {
            (settings.k..=settings.k_max)
                .map(|k| {
                    let params = KMeansParams {
                        k: k as usize,
                        max_iter: settings.max_iter as usize,
                        seed: settings.seed as u64,
                        ..KMeansParams::default()
                    };
                    let (model, score) = fit_scored(&values, n_cols, &params, &settings)?;
                    Ok((k, model.inertia, score, model.iterations))
                })
                .collect()
        })??;
        let mut rows = RowSet::for_columns(&Self::columns());
        let (k, inertia, silhouette) = (
            rows.col("k")?,
            rows.col("inertia")?,
            rows.col("silhouette")?,
        );
        let (sample_size, iterations) = (rows.col("sample_size")?, rows.col("iterations")?);
        let metric = rows.col("silhouette_metric")?;
        for r in &results {
            rows.put(k, Some(r.0 as i32));
            rows.put(inertia, Some(r.1));
            rows.put(silhouette, r.2.map(|s| s.0));
            rows.put_str(metric, r.2.map(|_| settings.metric.name()));
            rows.put(sample_size, r.2.map(|s| s.1 as i64));
            rows.put(iterations, Some(r.3 as i32));
        }
        Ok(Arc::new(Computed::new(rows)))
    }
}

/// The default clustering features: columns of `rfm_features`.
pub const DEFAULT_COLUMNS: &str =
    "['recency', 'frequency', 'monetary', 'total_events', 'purchases', \
                                   'conversion_rate', 'cart_abandonment', 'unique_products']";

/// The rows of `aggregate` over the chosen columns of `features_table`
/// (one row per user), unpivoted into (user, feature, value) rows. NULLs are
/// kept (INCLUDE NULLS) and imputed as 0 in Rust, as the original pipeline
/// did. `values` overrides parameters (e.g. no silhouette for per-user rows).
fn feed<T: AggregateFunction>(function: &str, values: &[(&str, String)]) -> String {
    aggregate::rows_sql::<T>(
        function,
        &FEATURE_INPUTS,
        values,
        "(SELECT user_id, COLUMNS(lambda c: list_contains(columns, c))::DOUBLE FROM query_table(features_table)) \
         UNPIVOT INCLUDE NULLS (value FOR feature IN (COLUMNS(* EXCLUDE (user_id))))",
    )
}

pub fn macros() -> Vec<SqlMacro> {
    let columns = format!("columns := {DEFAULT_COLUMNS}");
    let common = aggregate::signature::<KMeansAggregate>(&["features_table", &columns], &[]);
    let common: Vec<&str> = common.iter().map(String::as_str).collect();
    let sweep = aggregate::signature::<KMeansSweep>(&["features_table", &columns], &[]);
    let sweep: Vec<&str> = sweep.iter().map(String::as_str).collect();
    let model = |name: &str| feed::<KMeansAggregate>(name, &[]);
    let features = tables::features();
    // Per-user and centroid outputs do not show the silhouette: skip it.
    let without_silhouette = |name: &str| feed::<KMeansAggregate>(name, &[("sample", "0".into())]);
    vec![
        // All rows of the fitted model (kinds: user, segment, centroid,
        // scaling, model): store it with CREATE TABLE AS.
        SqlMacro::table("kmeans_model", &common, model("ecoreco.kmeans_model")).checking("features_table", &features),
        SqlMacro::table(
            "kmeans_segments",
            &common,
            format!(
                "SELECT user_id, segment_id, segment, distance FROM ({}) WHERE kind = 'user' ORDER BY user_id",
                without_silhouette("ecoreco.kmeans_segments")
            ),
        )
        .checking("features_table", &features),
        SqlMacro::table(
            "kmeans_summary",
            &common,
            format!(
                "WITH m AS MATERIALIZED ({}) {}",
                model("ecoreco.kmeans_summary"),
                include_str!("../../sql/macros/kmeans_summary.sql")
            ),
        )
        .checking("features_table", &features),
        SqlMacro::table(
            "kmeans_centroids",
            &common,
            format!(
                "SELECT segment_id, segment, feature, value FROM ({}) WHERE kind = 'centroid' ORDER BY segment_id, feature",
                without_silhouette("ecoreco.kmeans_centroids")
            ),
        )
        .checking("features_table", &features),
        // A stored model (CREATE TABLE kmodel AS FROM ecoreco.kmeans_model(...))
        // assigns and summarises without refitting.
        SqlMacro::table("kmeans_assign", &["features_table", "model", &columns], include_str!("../../sql/macros/kmeans_assign.sql"))
            .checking("features_table", &features)
            .checking("model", &tables::kmeans_model(&["kind", "segment_id", "segment", "distance", "feature", "value"])),
        SqlMacro::table(
            "kmeans_model_summary",
            &["model"],
            format!("WITH m AS (SELECT * FROM query_table(model)) {}", include_str!("../../sql/macros/kmeans_summary.sql")),
        )
        .checking(
            "model",
            &tables::kmeans_model(&[
                "kind", "segment_id", "segment", "feature", "value", "users", "within_ss", "silhouette",
                "silhouette_metric", "sample_size", "iterations",
            ]),
        ),
        SqlMacro::table(
            "kmeans_model_centroids",
            &["model"],
            "SELECT segment_id, segment, feature, value FROM query_table(model) WHERE kind = 'centroid' ORDER BY segment_id, feature",
        )
        .checking("model", &tables::kmeans_model(&["kind", "segment_id", "segment", "feature", "value"])),
        SqlMacro::table(
            "kmeans_sweep",
            &sweep,
            format!("SELECT * FROM ({}) ORDER BY k", feed::<KMeansSweep>("ecoreco.kmeans_sweep", &[])),
        )
        .checking("features_table", &features),
    ]
}
