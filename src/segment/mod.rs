//! Stage 4: K-Means customer segments.
//!
//! `ecoreco.kmeans_segments(features, ...)` and friends are macros that
//! unpivot the chosen feature columns into (user, feature, value) rows and
//! feed them to the Rust aggregates below, inside the caller's query. The
//! aggregate standardises the features, runs [`kmeans`] and names the
//! segments by the original pipeline's business rules.

pub mod kmeans;

use crate::binding::aggregate::AggregateFunction;
use crate::binding::rows::{InputChunk, RowSet, Values};
use crate::binding::{Column, SqlMacro, SqlType};
use kmeans::{silhouette, KMeansParams, Standardizer};
use std::collections::HashMap;

/// Feature rows of one call, collected by the aggregate.
#[derive(Default)]
pub struct FeatureRows {
    /// (user_id, feature index (1-based), value or NULL).
    cells: Vec<(i64, u32, Option<f64>)>,
    names: HashMap<u32, String>,
    settings: Option<Settings>,
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
}

/// Argument layout shared by the k-means aggregates.
fn feature_params() -> Vec<SqlType> {
    use SqlType::*;
    vec![
        BigInt, BigInt, Varchar, Double, BigInt, BigInt, BigInt, BigInt, BigInt, BigInt, BigInt,
        BigInt,
    ]
}

fn collect(
    state: &mut FeatureRows,
    input: &InputChunk,
    rows: std::ops::Range<usize>,
) -> anyhow::Result<()> {
    for row in rows {
        if state.settings.is_none() {
            let get = |col: usize, name: &str| {
                input
                    .i64(col, row)
                    .ok_or_else(|| anyhow::anyhow!("parameter `{name}` is NULL; pass a number"))
            };
            state.settings = Some(Settings {
                n_features: get(4, "columns")? as usize,
                k: get(5, "k")?,
                seed: get(6, "seed")?,
                max_iter: get(7, "max_iter")?,
                sample: get(8, "sample")?,
                threads: get(9, "threads")?,
                k_max: get(10, "k_max")?,
                n_init: get(11, "n_init")?,
            });
        }
        let Some(user) = input.i64(0, row) else {
            anyhow::bail!("a row has a NULL user_id; filter it out or give every row a user_id")
        };
        let Some(index) = input.i64(1, row) else {
            anyhow::bail!("internal error: feature without a position in `columns`")
        };
        let index = index as u32;
        state
            .names
            .entry(index)
            .or_insert_with(|| input.str(2, row).unwrap_or("").to_string());
        state.cells.push((user, index, input.f64(3, row)));
    }
    Ok(())
}

fn merge(target: &mut FeatureRows, source: FeatureRows) {
    if target.settings.is_none() {
        target.settings = source.settings;
    }
    target.cells.extend(source.cells);
    for (k, v) in source.names {
        target.names.entry(k).or_insert(v);
    }
}

/// The feature matrix in user_id order (so results do not depend on the
/// order DuckDB's threads delivered the rows), NULL imputed as 0.
struct Matrix {
    user_ids: Vec<i64>,
    names: Vec<String>,
    values: Vec<f64>,
    settings: Settings,
}

fn matrix(mut rows: FeatureRows) -> anyhow::Result<Matrix> {
    let settings = rows
        .settings
        .ok_or_else(|| anyhow::anyhow!("the features table is empty: no users to segment"))?;
    let n = settings.n_features;
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

fn check_settings(s: &Settings, users: usize) -> anyhow::Result<()> {
    if s.k < 1 {
        anyhow::bail!("parameter `k` is {}; it must be at least 1", s.k);
    }
    if s.k as usize > users {
        anyhow::bail!(
            "parameter `k` is {} but there are only {users} users; choose k <= {users}",
            s.k
        );
    }
    if !(1..=10_000).contains(&s.max_iter) {
        anyhow::bail!(
            "parameter `max_iter` is {}; it must be between 1 and 10000",
            s.max_iter
        );
    }
    if !(1..=1_000).contains(&s.n_init) {
        anyhow::bail!(
            "parameter `n_init` is {}; it must be between 1 and 1000",
            s.n_init
        );
    }
    // sample = 0 is how the per-user macros skip the silhouette they do not show.
    if s.sample != 0 && !(2..=1_000_000).contains(&s.sample) {
        anyhow::bail!(
            "parameter `sample` is {}; it must be between 2 and 1000000",
            s.sample
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
/// segments are non-empty, its silhouette (score, sample size).
fn fit_scored(
    values: &[f64],
    n_cols: usize,
    params: &KMeansParams,
    settings: &Settings,
) -> anyhow::Result<(kmeans::KMeansModel, Option<(f64, usize)>)> {
    let model = best_of(values, n_cols, params, settings.n_init)?;
    let non_empty = model.sizes.iter().filter(|&&s| s > 0).count();
    let score = if non_empty >= 2 && settings.sample > 0 {
        Some(silhouette(
            values,
            n_cols,
            &model.assignments,
            params.k,
            settings.sample as usize,
            params.seed,
        )?)
    } else {
        None
    };
    Ok((model, score))
}

fn with_threads<R: Send>(threads: i64, work: impl FnOnce() -> R + Send) -> anyhow::Result<R> {
    Ok(crate::binding::thread_pool(threads)?.install(work))
}

/// `ecoreco_kmeans`: the fitted segmentation as rows of several kinds
/// ('user', 'segment', 'centroid', 'model'), which the macros select from.
pub struct KMeansAggregate;

impl AggregateFunction for KMeansAggregate {
    const NAME: &'static str = "ecoreco_kmeans";
    type State = FeatureRows;
    fn params() -> Vec<SqlType> {
        feature_params()
    }
    fn columns() -> Vec<Column> {
        vec![
            Column::new("kind", SqlType::Varchar),
            Column::new("user_id", SqlType::BigInt),
            Column::new("segment_id", SqlType::Integer),
            Column::new("segment", SqlType::Varchar),
            Column::new("distance", SqlType::Double),
            Column::new("feature", SqlType::Varchar),
            Column::new("value", SqlType::Double),
            Column::new("users", SqlType::BigInt),
            Column::new("within_ss", SqlType::Double),
            Column::new("silhouette", SqlType::Double),
            Column::new("sample_size", SqlType::BigInt),
            Column::new("iterations", SqlType::Integer),
        ]
    }
    fn update(
        state: &mut FeatureRows,
        input: &InputChunk,
        rows: std::ops::Range<usize>,
    ) -> anyhow::Result<()> {
        collect(state, input, rows)
    }
    fn combine(target: &mut FeatureRows, source: FeatureRows) -> anyhow::Result<()> {
        merge(target, source);
        Ok(())
    }
    fn finalize(state: FeatureRows) -> anyhow::Result<RowSet> {
        let Matrix {
            user_ids,
            names,
            mut values,
            settings,
        } = matrix(state)?;
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

        let mut out = KindRows::default();
        for (row, &user) in user_ids.iter().enumerate() {
            let segment = segment_of[model.assignments[row] as usize];
            out.push("user", |r| {
                r.user_id = Some(user);
                r.segment_id = Some(segment as i32);
                r.segment = Some(segment_names[segment as usize].clone());
                r.distance = Some(model.distances[row]);
            });
        }
        for s in 0..k {
            out.push("segment", |r| {
                r.segment_id = Some(s as i32);
                r.segment = Some(segment_names[s].clone());
                r.users = Some(model.sizes[order[s]] as i64);
                r.within_ss = Some(within[s]);
            });
            for (f, name) in names.iter().enumerate() {
                out.push("centroid", |r| {
                    r.segment_id = Some(s as i32);
                    r.segment = Some(segment_names[s].clone());
                    r.feature = Some(name.clone());
                    r.value = Some(centroids_original[s][f]);
                });
            }
        }
        for (f, name) in names.iter().enumerate() {
            out.push("scaling", |r| {
                r.feature = Some(name.clone());
                r.value = Some(scaler.mean[f]);
                r.distance = Some(scaler.std[f]);
            });
        }
        out.push("model", |r| {
            r.users = Some(user_ids.len() as i64);
            r.within_ss = Some(model.inertia);
            r.silhouette = score.map(|s| s.0);
            r.sample_size = score.map(|s| s.1 as i64);
            r.iterations = Some(model.iterations as i32);
        });
        Ok(out.into_rowset())
    }
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
    sample_size: Option<i64>,
    iterations: Option<i32>,
}

#[derive(Default)]
struct KindRows {
    kinds: Vec<Option<String>>,
    rows: Vec<KindRow>,
}

impl KindRows {
    fn push(&mut self, kind: &str, fill: impl FnOnce(&mut KindRow)) {
        let mut row = KindRow::default();
        fill(&mut row);
        self.kinds.push(Some(kind.to_string()));
        self.rows.push(row);
    }
    fn into_rowset(self) -> RowSet {
        let r = &self.rows;
        RowSet::new()
            .with("kind", Values::Text(self.kinds))
            .with(
                "user_id",
                Values::BigInt(r.iter().map(|x| x.user_id).collect()),
            )
            .with(
                "segment_id",
                Values::Integer(r.iter().map(|x| x.segment_id).collect()),
            )
            .with(
                "segment",
                Values::Text(r.iter().map(|x| x.segment.clone()).collect()),
            )
            .with(
                "distance",
                Values::Double(r.iter().map(|x| x.distance).collect()),
            )
            .with(
                "feature",
                Values::Text(r.iter().map(|x| x.feature.clone()).collect()),
            )
            .with("value", Values::Double(r.iter().map(|x| x.value).collect()))
            .with("users", Values::BigInt(r.iter().map(|x| x.users).collect()))
            .with(
                "within_ss",
                Values::Double(r.iter().map(|x| x.within_ss).collect()),
            )
            .with(
                "silhouette",
                Values::Double(r.iter().map(|x| x.silhouette).collect()),
            )
            .with(
                "sample_size",
                Values::BigInt(r.iter().map(|x| x.sample_size).collect()),
            )
            .with(
                "iterations",
                Values::Integer(r.iter().map(|x| x.iterations).collect()),
            )
    }
}

/// `ecoreco_kmeans_sweep`: inertia and silhouette for every k in [k, k_max].
pub struct KMeansSweep;

impl AggregateFunction for KMeansSweep {
    const NAME: &'static str = "ecoreco_kmeans_sweep";
    type State = FeatureRows;
    fn params() -> Vec<SqlType> {
        feature_params()
    }
    fn columns() -> Vec<Column> {
        vec![
            Column::new("k", SqlType::Integer),
            Column::new("inertia", SqlType::Double),
            Column::new("silhouette", SqlType::Double),
            Column::new("sample_size", SqlType::BigInt),
            Column::new("iterations", SqlType::Integer),
        ]
    }
    fn update(
        state: &mut FeatureRows,
        input: &InputChunk,
        rows: std::ops::Range<usize>,
    ) -> anyhow::Result<()> {
        collect(state, input, rows)
    }
    fn combine(target: &mut FeatureRows, source: FeatureRows) -> anyhow::Result<()> {
        merge(target, source);
        Ok(())
    }
    fn finalize(state: FeatureRows) -> anyhow::Result<RowSet> {
        let Matrix {
            user_ids,
            names,
            mut values,
            settings,
        } = matrix(state)?;
        if settings.k_max < settings.k {
            anyhow::bail!(
                "parameter `k_max` is {} but `k_min` is {}; k_max must be >= k_min",
                settings.k_max,
                settings.k
            );
        }
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
        Ok(RowSet::new()
            .with(
                "k",
                Values::Integer(results.iter().map(|r| Some(r.0 as i32)).collect()),
            )
            .with(
                "inertia",
                Values::Double(results.iter().map(|r| Some(r.1)).collect()),
            )
            .with(
                "silhouette",
                Values::Double(results.iter().map(|r| r.2.map(|s| s.0)).collect()),
            )
            .with(
                "sample_size",
                Values::BigInt(results.iter().map(|r| r.2.map(|s| s.1 as i64)).collect()),
            )
            .with(
                "iterations",
                Values::Integer(results.iter().map(|r| Some(r.3 as i32)).collect()),
            ))
    }
}

/// The default clustering features: columns of `rfm_features`.
pub const DEFAULT_COLUMNS: &str =
    "['recency', 'frequency', 'monetary', 'total_events', 'purchases', \
                                   'conversion_rate', 'cart_abandonment', 'unique_products']";

/// The shared front of every k-means macro: unpivot the chosen columns of
/// `features_table` (one row per user) into (user, feature, value) rows and
/// call `aggregate` on them. NULLs are kept (INCLUDE NULLS) and imputed as 0
/// in Rust, as the original pipeline did.
fn feed(aggregate: &str, k: &str, k_max: &str, sample: &str) -> String {
    format!(
        "SELECT unnest({aggregate}(user_id, list_position(columns, feature)::BIGINT, feature, value, \
         len(columns)::BIGINT, {k}::BIGINT, seed::BIGINT, max_iter::BIGINT, {sample}::BIGINT, \
         current_setting('threads')::BIGINT, {k_max}::BIGINT, n_init::BIGINT), recursive := true) \
         FROM (SELECT user_id, COLUMNS(lambda c: list_contains(columns, c))::DOUBLE FROM query_table(features_table)) \
         UNPIVOT INCLUDE NULLS (value FOR feature IN (COLUMNS(* EXCLUDE (user_id))))"
    )
}

pub fn macros() -> Vec<SqlMacro> {
    let common = [
        "features_table".to_string(),
        "k := 5".to_string(),
        "seed := 42".to_string(),
        "max_iter := 20".to_string(),
        format!("columns := {DEFAULT_COLUMNS}"),
        "sample := 50000".to_string(),
        "n_init := 1".to_string(),
    ];
    let common: Vec<&str> = common.iter().map(|s| s.as_str()).collect();
    let model = feed("ecoreco_kmeans", "k", "k", "sample");
    // Per-user and centroid outputs do not show the silhouette: skip it.
    let model_without_silhouette = feed("ecoreco_kmeans", "k", "k", "0 * sample");
    let sweep_params = [
        "features_table".to_string(),
        "k_min := 2".to_string(),
        "k_max := 8".to_string(),
        "seed := 42".to_string(),
        "max_iter := 20".to_string(),
        format!("columns := {DEFAULT_COLUMNS}"),
        "sample := 10000".to_string(),
        "n_init := 1".to_string(),
    ];
    let sweep_params: Vec<&str> = sweep_params.iter().map(|s| s.as_str()).collect();
    vec![
        // All rows of the fitted model (kinds: user, segment, centroid,
        // scaling, model): store it with CREATE TABLE AS.
        SqlMacro::table("kmeans_model", &common, model.clone()),
        SqlMacro::table(
            "kmeans_segments",
            &common,
            format!(
                "SELECT user_id, segment_id, segment, distance FROM ({model_without_silhouette}) WHERE kind = 'user' ORDER BY user_id"
            ),
        ),
        SqlMacro::table(
            "kmeans_summary",
            &common,
            format!(
                "WITH m AS MATERIALIZED ({model}), \
                 total AS (SELECT users AS all_users, within_ss AS inertia, silhouette, sample_size, iterations FROM m WHERE kind = 'model'), \
                 centroids AS (SELECT segment_id, map_from_entries(list((feature, value) ORDER BY feature)) AS centroid \
                               FROM m WHERE kind = 'centroid' GROUP BY segment_id) \
                 SELECT s.segment_id, s.segment, s.users, s.users / t.all_users AS share, s.within_ss, t.inertia, \
                 t.silhouette, t.sample_size, t.iterations, c.centroid \
                 FROM m s JOIN centroids c USING (segment_id), total t WHERE s.kind = 'segment' ORDER BY s.segment_id"
            ),
        ),
        SqlMacro::table(
            "kmeans_centroids",
            &common,
            format!("SELECT segment_id, segment, feature, value FROM ({model_without_silhouette}) WHERE kind = 'centroid' ORDER BY segment_id, feature"),
        ),
        SqlMacro::table(
            "kmeans_sweep",
            &sweep_params,
            format!("SELECT * FROM ({}) ORDER BY k", feed("ecoreco_kmeans_sweep", "k_min", "k_max", "sample")),
        ),
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
