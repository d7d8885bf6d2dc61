//! Fitting the segments: the feature matrix from the collected rows, the
//! checks that depend on the data, the best of several k-means starts, the
//! silhouette, and the segments in a stable order with their names. Plain
//! data in and out; the SQL glue (`super`) reads the rows and writes the
//! result.

use super::kmeans::{self, silhouette, squared_euclidean_silhouette, KMeansParams, Standardizer};
use super::naming::segment_names;
use std::collections::HashMap;

/// Feature rows of one call, collected by the aggregate.
#[derive(Default)]
pub struct FeatureRows {
    /// (user_id, feature index (1-based), value or NULL).
    pub(super) cells: Vec<(i64, u32, Option<f64>)>,
    pub(super) names: HashMap<u32, String>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Settings {
    pub(super) n_features: usize,
    pub(super) k: i64,
    pub(super) seed: i64,
    pub(super) max_iter: i64,
    pub(super) sample: i64,
    pub(super) threads: i64,
    /// For the sweep: the largest k.
    pub(super) k_max: i64,
    /// Independent k-means++ starts; the lowest inertia wins.
    pub(super) n_init: i64,
    pub(super) metric: SilhouetteMetric,
}

/// Which silhouette the summary reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum SilhouetteMetric {
    /// Spark's `ClusteringEvaluator` (the original's): squared Euclidean
    /// distance, every user, O(n · k · d).
    SquaredEuclidean,
    /// scikit-learn's `silhouette_score`: Euclidean distance over a seeded
    /// sample of at most `sample` users, O(sample² · d).
    Euclidean,
}

impl SilhouetteMetric {
    pub(super) const NAMES: [&'static str; 2] = ["squared_euclidean", "euclidean"];

    pub(super) fn read(name: &str) -> anyhow::Result<Self> {
        match name {
            "squared_euclidean" => Ok(Self::SquaredEuclidean),
            "euclidean" => Ok(Self::Euclidean),
            other => Err(crate::error::param(format!(
                "parameter `silhouette_distance` is '{other}'; pass one of {}",
                Self::NAMES.join(", ")
            ))),
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Self::SquaredEuclidean => Self::NAMES[0],
            Self::Euclidean => Self::NAMES[1],
        }
    }
}

pub(super) fn merge(target: &mut FeatureRows, source: FeatureRows) -> anyhow::Result<()> {
    crate::budget::reserve(&mut target.cells, source.cells.len(), "the feature values")?;
    target.cells.extend(source.cells);
    for (k, v) in source.names {
        target.names.entry(k).or_insert(v);
    }
    Ok(())
}

/// The feature matrix in user_id order (so results do not depend on the
/// order DuckDB's threads delivered the rows), NULL imputed as 0.
pub(super) struct Matrix {
    pub(super) user_ids: Vec<i64>,
    pub(super) names: Vec<String>,
    pub(super) values: Vec<f64>,
    pub(super) settings: Settings,
}

pub(super) fn matrix(mut rows: FeatureRows, settings: Settings) -> anyhow::Result<Matrix> {
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
pub(super) fn check_settings(s: &Settings, users: usize) -> anyhow::Result<()> {
    if s.k as usize > users {
        return Err(crate::error::param(format!(
            "parameter `k` is {} but there are only {users} users; pass k <= {users}",
            s.k
        )));
    }
    if s.sample == 1 {
        return Err(crate::error::param(
            "parameter `sample` is 1; pass 0 (no silhouette) or a sample of at least 2 users",
        ));
    }
    Ok(())
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
pub(super) fn standardize(values: &mut [f64], n_cols: usize) -> anyhow::Result<Standardizer> {
    let scaler = Standardizer::try_fit(values, n_cols)?;
    scaler.transform_in_place(values);
    Ok(scaler)
}

/// The best of `n_init` fits and, unless `sample` is 0 or fewer than two
/// segments are non-empty, its silhouette (score, users it was computed on).
pub(super) fn fit_scored(
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

pub(super) fn with_threads<R: Send>(
    threads: i64,
    work: impl FnOnce() -> R + Send,
) -> anyhow::Result<R> {
    Ok(crate::threads::pool(threads)?.install(work))
}

/// A fitted segmentation, in segment-id order: ids by size, largest first
/// (ties: lower k-means label), so that ids mean something and do not
/// depend on the seeding order.
pub(super) struct Segmentation {
    pub(super) user_ids: Vec<i64>,
    /// The clustered feature columns.
    pub(super) names: Vec<String>,
    pub(super) segment_names: Vec<String>,
    pub(super) segment_of_user: Vec<u32>,
    /// Each user's distance to its segment's centroid (standardised units).
    pub(super) distances: Vec<f64>,
    /// Users per segment.
    pub(super) sizes: Vec<usize>,
    /// Within-segment sum of squares.
    pub(super) within: Vec<f64>,
    /// Centroids in original units, one row per segment.
    pub(super) centroids: Vec<Vec<f64>>,
    pub(super) scaler: Standardizer,
    pub(super) inertia: f64,
    pub(super) iterations: usize,
    /// Silhouette and the users it was computed on, when computed.
    pub(super) score: Option<(f64, usize)>,
    pub(super) metric: SilhouetteMetric,
}

/// Fits the segmentation of `rows` with `settings`.
pub(super) fn segment(rows: FeatureRows, settings: Settings) -> anyhow::Result<Segmentation> {
    let Matrix {
        user_ids,
        names,
        mut values,
        settings,
    } = matrix(rows, settings)?;
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
    let k = params.k;
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by_key(|&c| (std::cmp::Reverse(model.sizes[c]), c));
    let mut segment_of = vec![0u32; k];
    for (id, &c) in order.iter().enumerate() {
        segment_of[c] = id as u32;
    }
    let centroids: Vec<Vec<f64>> = order
        .iter()
        .map(|&c| scaler.inverse_row(model.centroid(c)))
        .collect();
    let centroid_maps: Vec<HashMap<&str, f64>> = centroids
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
    Ok(Segmentation {
        segment_of_user: model
            .assignments
            .iter()
            .map(|&c| segment_of[c as usize])
            .collect(),
        sizes: order.iter().map(|&c| model.sizes[c]).collect(),
        distances: model.distances,
        inertia: model.inertia,
        iterations: model.iterations,
        user_ids,
        names,
        segment_names,
        within,
        centroids,
        scaler,
        score,
        metric: settings.metric,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{kind_of, Kind};

    #[test]
    fn settings_the_data_cannot_meet_are_parameter_errors() {
        let settings = Settings {
            n_features: 2,
            k: 4,
            seed: 1,
            max_iter: 10,
            sample: 0,
            threads: 1,
            k_max: 4,
            n_init: 1,
            metric: SilhouetteMetric::SquaredEuclidean,
        };
        let e = check_settings(&settings, 3).unwrap_err();
        assert_eq!(kind_of(&e), Kind::Param);
        assert_eq!(
            e.to_string(),
            "parameter `k` is 4 but there are only 3 users; pass k <= 3"
        );
        let e = check_settings(
            &Settings {
                sample: 1,
                ..settings
            },
            5,
        )
        .unwrap_err();
        assert_eq!(kind_of(&e), Kind::Param);
        assert!(check_settings(&settings, 4).is_ok());
        let e = SilhouetteMetric::read("manhattan").unwrap_err();
        assert_eq!(
            (kind_of(&e), e.to_string()),
            (
                Kind::Param,
                "parameter `silhouette_distance` is 'manhattan'; pass one of squared_euclidean, euclidean"
                    .to_string()
            )
        );
    }
}
