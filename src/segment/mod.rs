//! Stage 4: K-Means customer segments.
//!
//! `ecoreco.kmeans_segments(features, ...)` and friends are macros that
//! unpivot the chosen feature columns into (user, feature, value) rows and
//! feed them to the Rust aggregates below, inside the caller's query. The
//! aggregate standardises the features, runs [`kmeans`] and names the
//! segments by the original pipeline's business rules.

pub mod kmeans;
pub mod rfm;

use crate::binding::aggregate::{self, AggregateFunction};
use crate::binding::blocks::{BlockSource, Computed};
use crate::binding::rows::{Col, InputChunk, RowSet};
use crate::binding::{Args, Check, Column, Param, SqlMacro, SqlType, Value};
use crate::tables;
use kmeans::{silhouette, squared_euclidean_silhouette, KMeansParams, Standardizer};
use std::collections::HashMap;
use std::sync::Arc;

/// Feature rows of one call, collected by the aggregate.
#[derive(Default)]
pub struct FeatureRows {
    /// (user_id, feature index (1-based), value or NULL).
    cells: Vec<(i64, u32, Option<f64>)>,
    names: HashMap<u32, String>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Settings {
    n_features: usize,
    k: i64,
    seed: i64,
    max_iter: i64,
    sample: i64,
    threads: i64,
    /// For the sweep: the largest k.
    k_max: i64,
    /// Independent k-means++ starts; the lowest inertia wins.
    n_init: i64,
    metric: SilhouetteMetric,
}

/// Which silhouette the summary reports.
#[derive(Clone, Copy, Debug, PartialEq)]
enum SilhouetteMetric {
    /// Spark's `ClusteringEvaluator` (the original's): squared Euclidean
    /// distance, every user, O(n · k · d).
    SquaredEuclidean,
    /// scikit-learn's `silhouette_score`: Euclidean distance over a seeded
    /// sample of at most `sample` users, O(sample² · d).
    Euclidean,
}

impl SilhouetteMetric {
    const NAMES: [&'static str; 2] = ["squared_euclidean", "euclidean"];

    fn read(name: &str) -> anyhow::Result<Self> {
        match name {
            "squared_euclidean" => Ok(Self::SquaredEuclidean),
            "euclidean" => Ok(Self::Euclidean),
            other => anyhow::bail!(
                "parameter `silhouette_distance` is '{other}'; pass one of {}",
                Self::NAMES.join(", ")
            ),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::SquaredEuclidean => Self::NAMES[0],
            Self::Euclidean => Self::NAMES[1],
        }
    }
}

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

fn merge(target: &mut FeatureRows, source: FeatureRows) -> anyhow::Result<()> {
    crate::budget::reserve(&mut target.cells, source.cells.len(), "the feature values")?;
    target.cells.extend(source.cells);
    for (k, v) in source.names {
        target.names.entry(k).or_insert(v);
    }
    Ok(())
}

/// The feature matrix in user_id order (so results do not depend on the
/// order DuckDB's threads delivered the rows), NULL imputed as 0.
struct Matrix {
    user_ids: Vec<i64>,
    names: Vec<String>,
    values: Vec<f64>,
    settings: Settings,
}

fn matrix(mut rows: FeatureRows, settings: Settings) -> anyhow::Result<Matrix> {
    let n = settings.n_features;
    anyhow::ensure!(n > 0, "`columns` is empty; pass the feature columns to cluster, e.g. columns := ['recency', 'frequency']");
    let mut names = Vec::with_capacity(n);
    for i in 1..=n as u32 {
        match rows.names.get(&i) {
            Some(name) => names.push(name.clone()),
            None => anyhow::bail!(
                "feature column number {i} of `columns` is not a column of the features table; \
                 pass names of numeric columns, e.g. columns := ['recency', 'frequency', 'monetary']"
            ),
        }
    }
    rows.cells
        .sort_unstable_by_key(|&(user, index, _)| (user, index));
    let mut user_ids = Vec::new();
    let mut values = Vec::new();
    crate::budget::reserve(&mut values, rows.cells.len(), "the feature matrix")?;
    let mut previous: Option<(i64, u32)> = None;
    for &(user, index, value) in &rows.cells {
        if previous == Some((user, index)) {
            anyhow::bail!("user_id {user} appears in more than one row; the features table needs one row per user");
        }
        if previous.map(|p| p.0) != Some(user) {
            user_ids.push(user);
            values.resize(values.len() + n, 0.0);
        }
        let value = value.unwrap_or(0.0);
        if !value.is_finite() {
            anyhow::bail!(
                "feature {} of user_id {user} is {value}; remove NaN/infinite values first",
                names[index as usize - 1]
            );
        }
        let base = (user_ids.len() - 1) * n;
        values[base + index as usize - 1] = value;
        previous = Some((user, index));
    }
    Ok(Matrix {
        user_ids,
        names,
        values,
        settings,
    })
}

/// The checks that depend on the data (the declared ones ran when the
/// call was read).
fn check_settings(s: &Settings, users: usize) -> anyhow::Result<()> {
    if s.k as usize > users {
        anyhow::bail!(
            "parameter `k` is {} but there are only {users} users; pass k <= {users}",
            s.k
        );
    }
    if s.sample == 1 {
        anyhow::bail!(
            "parameter `sample` is 1; pass 0 (no silhouette) or a sample of at least 2 users"
        );
    }
    Ok(())
}

/// The business name of a segment from its centroid in original units, by
/// the original pipeline's rules (checked in this order). A rule whose
/// feature is not among the clustered columns does not match.
pub fn business_name(centroid: &HashMap<&str, f64>) -> &'static str {
    let get = |name: &str| centroid.get(name).copied();
    let gt = |name: &str, x: f64| get(name).is_some_and(|v| v > x);
    let lt = |name: &str, x: f64| get(name).is_some_and(|v| v < x);
    if gt("monetary", 500.0) && gt("frequency", 10.0) && lt("recency", 30.0) {
        "VIP_Customers"
    } else if gt("frequency", 5.0) && lt("recency", 60.0) {
        "Loyal_Customers"
    } else if lt("recency", 30.0) && gt("conversion_rate", 0.1) {
        "Active_Buyers"
    } else if gt("recency", 60.0) && lt("frequency", 3.0) {
        "Dormant_Users"
    } else {
        "Casual_Browsers"
    }
}

/// Names for all segments; segments that share a rule's name are numbered
/// (`Casual_Browsers_1`, `Casual_Browsers_2`, in segment_id order) so they
/// stay visibly distinct instead of being merged.
pub fn segment_names(centroids: &[HashMap<&str, f64>]) -> Vec<String> {
    let base: Vec<&str> = centroids.iter().map(business_name).collect();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    base.iter()
        .map(|&name| {
            let total = base.iter().filter(|&&n| n == name).count();
            if total == 1 {
                name.to_string()
            } else {
                let i = seen.entry(name).or_insert(0);
                *i += 1;
                format!("{name}_{i}")
            }
        })
        .collect()
}

/// The best (lowest inertia) of `n_init` k-means runs, each seeded from
/// its own stream of `params.seed`; run 0 uses the seed itself.
fn best_of(
    values: &[f64],
    n_cols: usize,
    params: &KMeansParams,
    n_init: i64,
) -> anyhow::Result<kmeans::KMeansModel> {
    let mut best: Option<kmeans::KMeansModel> = None;
    for run in 0..n_init.max(1) as u64 {
        let seed = if run == 0 {
            params.seed
        } else {
            crate::rng::mix64(params.seed ^ crate::rng::mix64(run))
        };
        let model = kmeans::kmeans(values, n_cols, &KMeansParams { seed, ..*params })?;
        if best.as_ref().is_none_or(|b| model.inertia < b.inertia) {
            best = Some(model);
        }
    }
    Ok(best.expect("at least one run"))
}

/// Standardises the feature matrix in place (mean 0, std 1 per column) and
/// returns the scaler, to report centroids in original units.
fn standardize(values: &mut [f64], n_cols: usize) -> anyhow::Result<Standardizer> {
    let scaler = Standardizer::try_fit(values, n_cols)?;
    scaler.transform_in_place(values);
    Ok(scaler)
}

/// The best of `n_init` fits and, unless `sample` is 0 or fewer than two
/// segments are non-empty, its silhouette (score, users it was computed on).
fn fit_scored(
    values: &[f64],
    n_cols: usize,
    params: &KMeansParams,
    settings: &Settings,
) -> anyhow::Result<(kmeans::KMeansModel, Option<(f64, usize)>)> {
    let model = best_of(values, n_cols, params, settings.n_init)?;
    let non_empty = model.sizes.iter().filter(|&&s| s > 0).count();
    if non_empty < 2 || settings.sample == 0 {
        return Ok((model, None));
    }
    let score = match settings.metric {
        SilhouetteMetric::SquaredEuclidean => (
            squared_euclidean_silhouette(values, n_cols, &model.assignments, params.k)?,
            model.assignments.len(),
        ),
        SilhouetteMetric::Euclidean => silhouette(
            values,
            n_cols,
            &model.assignments,
            params.k,
            settings.sample as usize,
            params.seed,
        )?,
    };
    Ok((model, Some(score)))
}

fn with_threads<R: Send>(threads: i64, work: impl FnOnce() -> R + Send) -> anyhow::Result<R> {
    Ok(crate::binding::thread_pool(threads)?.install(work))
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

fn fit(state: FeatureRows, settings: Settings) -> anyhow::Result<Fitted> {
    let Matrix {
        user_ids,
        names,
        mut values,
        settings,
    } = matrix(state, settings)?;
    check_settings(&settings, user_ids.len())?;
    let n_cols = names.len();
    let scaler = standardize(&mut values, n_cols)?;
    let params = KMeansParams {
        k: settings.k as usize,
        max_iter: settings.max_iter as usize,
        seed: settings.seed as u64,
        ..KMeansParams::default()
    };
    let (model, score) = with_threads(settings.threads, || {
        fit_scored(&values, n_cols, &params, &settings)
    })??;

    // Segment ids by size, largest first (ties: lower k-means label), so
    // ids mean something and do not depend on seeding order.
    let k = params.k;
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by_key(|&c| (std::cmp::Reverse(model.sizes[c]), c));
    let mut segment_of = vec![0u32; k];
    for (id, &c) in order.iter().enumerate() {
        segment_of[c] = id as u32;
    }
    let centroids_original: Vec<Vec<f64>> = order
        .iter()
        .map(|&c| scaler.inverse_row(model.centroid(c)))
        .collect();
    let centroid_maps: Vec<HashMap<&str, f64>> = centroids_original
        .iter()
        .map(|c| {
            names
                .iter()
                .map(|n| n.as_str())
                .zip(c.iter().copied())
                .collect()
        })
        .collect();
    let segment_names = segment_names(&centroid_maps);
    let mut within = vec![0.0; k];
    for (row, &c) in model.assignments.iter().enumerate() {
        within[segment_of[c as usize] as usize] += model.distances[row] * model.distances[row];
    }
    let mut out = KindRows::new()?;
    for s in 0..k {
        out.push("segment", |r| {
            r.segment_id = Some(s as i32);
            r.segment = Some(segment_names[s].clone());
            r.users = Some(model.sizes[order[s]] as i64);
            r.within_ss = Some(within[s]);
        })?;
        for (f, name) in names.iter().enumerate() {
            out.push("centroid", |r| {
                r.segment_id = Some(s as i32);
                r.segment = Some(segment_names[s].clone());
                r.feature = Some(name.clone());
                r.value = Some(centroids_original[s][f]);
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
    out.push("model", |r| {
        r.users = Some(user_ids.len() as i64);
        r.within_ss = Some(model.inertia);
        r.silhouette = score.map(|s| s.0);
        r.silhouette_metric = score.map(|_| settings.metric.name().to_string());
        r.sample_size = score.map(|s| s.1 as i64);
        r.iterations = Some(model.iterations as i32);
    })?;
    Ok(Fitted {
        segment_of_user: model
            .assignments
            .iter()
            .map(|&c| segment_of[c as usize])
            .collect(),
        distances: model.distances,
        user_ids,
        segment_names,
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
            anyhow::bail!(
                "parameter `k_max` is {} but `k_min` is {}; pass k_max >= k_min",
                settings.k_max,
                settings.k
            );
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

#[cfg(test)]
mod tests {
    use super::*;

    fn centroid(pairs: &[(&'static str, f64)]) -> HashMap<&'static str, f64> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn business_rules_in_order() {
        let vip = centroid(&[
            ("monetary", 800.0),
            ("frequency", 12.0),
            ("recency", 5.0),
            ("conversion_rate", 0.2),
        ]);
        let loyal = centroid(&[("monetary", 100.0), ("frequency", 6.0), ("recency", 40.0)]);
        let active = centroid(&[
            ("frequency", 2.0),
            ("recency", 10.0),
            ("conversion_rate", 0.3),
        ]);
        let dormant = centroid(&[("frequency", 1.0), ("recency", 75.0)]);
        let casual = centroid(&[
            ("frequency", 4.0),
            ("recency", 45.0),
            ("conversion_rate", 0.01),
        ]);
        assert_eq!(business_name(&vip), "VIP_Customers");
        assert_eq!(business_name(&loyal), "Loyal_Customers");
        assert_eq!(business_name(&active), "Active_Buyers");
        assert_eq!(business_name(&dormant), "Dormant_Users");
        assert_eq!(business_name(&casual), "Casual_Browsers");
        // A rule whose feature was not clustered does not match.
        assert_eq!(
            business_name(&centroid(&[("recency", 10.0)])),
            "Casual_Browsers"
        );
    }

    #[test]
    fn shared_names_are_numbered_not_merged() {
        let a = centroid(&[("frequency", 1.0), ("recency", 75.0)]);
        let b = centroid(&[("frequency", 4.0), ("recency", 45.0)]);
        let names = segment_names(&[b.clone(), a, b.clone(), b]);
        assert_eq!(
            names,
            [
                "Casual_Browsers_1",
                "Dormant_Users",
                "Casual_Browsers_2",
                "Casual_Browsers_3"
            ]
        );
    }
}
