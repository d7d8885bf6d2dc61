//! Building an ecoreco model from the parts of a saved Spark `ALSModel`:
//! its metadata, its factor rows, optionally the `StringIndexerModel`s that
//! turned ids into the indices ALS trained on, and the (user, product)
//! pairs of an events table, which supply what Spark's model does not hold
//! (purchases, categories, popularity, interests), computed exactly as the
//! trainer computes them ([`crate::als::event_stats`]).

use super::spark_metadata::{indexer_output_columns, AlsMetadata, Metadata, STRING_INDEXER_MODEL};
use crate::als::{event_stats, Pair};
use crate::model::{FactorModel, ModelParts};
use std::path::Path;

/// Everything read from the files and the events, as the aggregate
/// collected it (any order).
#[derive(Default)]
pub struct SparkParts {
    /// (file name, content) of each `metadata/part-*` file of the model.
    pub metadata: Vec<(String, String)>,
    pub users: Vec<(i64, Vec<f32>)>,
    pub items: Vec<(i64, Vec<f32>)>,
    /// The indexer's metadata files, when an indexer was given.
    pub indexer_metadata: Vec<(String, String)>,
    /// Data files of the indexer's stages (interned: labels refer to them).
    pub label_files: Vec<String>,
    /// (label file, column in labelsArray, index, label).
    pub labels: Vec<(u32, u32, u32, String)>,
    pub(crate) pairs: Vec<Pair>,
}

/// The imported model and the parameters that go into its `param` rows.
pub struct Imported {
    pub model: FactorModel,
    pub params: Vec<(String, f64)>,
}

/// A stage folder: the folder two levels above one of its files
/// (`<stage>/metadata/part-00000`, `<stage>/data/part-00000-….parquet`).
fn stage_of(file: &str) -> &Path {
    let p = Path::new(file);
    p.parent().and_then(Path::parent).unwrap_or(p)
}

/// Labels of the StringIndexer column `output_col`: `labels[i]` is the id
/// that index `i` stands for.
fn labels_for(parts: &SparkParts, output_col: &str, what: &str) -> anyhow::Result<Vec<i64>> {
    let mut found: Vec<(&Path, u32)> = Vec::new();
    for (file, text) in &parts.indexer_metadata {
        let meta =
            Metadata::parse(text).map_err(|e| anyhow::anyhow!("the indexer file '{file}': {e}"))?;
        if meta.class != STRING_INDEXER_MODEL {
            continue;
        }
        if let Some(c) = indexer_output_columns(&meta)
            .iter()
            .position(|c| c == output_col)
        {
            found.push((stage_of(file), c as u32));
        }
    }
    let (stage, column) = match found.as_slice() {
        [one] => *one,
        [] => anyhow::bail!(
            "the indexer has no StringIndexerModel whose output column is '{output_col}' (the ALS model's {what}); \
             pass the StringIndexerModel or PipelineModel folder that indexed the {what} column"
        ),
        _ => anyhow::bail!("the indexer has {} StringIndexerModels writing '{output_col}'; pass the one the ALS model was trained with", found.len()),
    };
    let mut labels: Vec<Option<&str>> = Vec::new();
    for (file, col, idx, label) in &parts.labels {
        if *col != column || stage_of(&parts.label_files[*file as usize]) != stage {
            continue;
        }
        let i = *idx as usize;
        if labels.len() <= i {
            labels.resize(i + 1, None);
        }
        labels[i] = Some(label);
    }
    anyhow::ensure!(
        !labels.is_empty(),
        "the StringIndexerModel in '{}' has no labels for '{output_col}' (its data/ folder is missing or empty)",
        stage.display()
    );
    labels
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let label = label.ok_or_else(|| anyhow::anyhow!("the StringIndexerModel for '{output_col}' has no label for index {i}"))?;
            label.trim().parse::<i64>().map_err(|_| {
                anyhow::anyhow!(
                    "label '{label}' (index {i}) of the StringIndexerModel for '{output_col}' is not an integer id; \
                     ecoreco ids are BIGINT: index the ids as integers (not as doubles or text)"
                )
            })
        })
        .collect()
}

/// Checks one side's factor rows and maps Spark ids to ecoreco ids;
/// returns (ids, factors) sorted by id.
fn side(
    rows: Vec<(i64, Vec<f32>)>,
    rank: usize,
    folder: &str,
    labels: Option<&[i64]>,
) -> anyhow::Result<(Vec<i64>, Vec<f32>)> {
    anyhow::ensure!(
        !rows.is_empty(),
        "{folder}/ has no rows; the model folder is incomplete"
    );
    let mut mapped: Vec<(i64, Vec<f32>)> = Vec::new();
    mapped
        .try_reserve_exact(rows.len())
        .map_err(|_| anyhow::anyhow!("not enough memory for {} rows of {folder}", rows.len()))?;
    for (id, features) in rows {
        anyhow::ensure!(
            features.len() == rank,
            "the metadata says rank {rank} but {folder} row id {id} has {} features; \
             the folder mixes files of different models: save the model again",
            features.len()
        );
        let id = match labels {
            None => id,
            Some(labels) => *usize::try_from(id).ok().and_then(|i| labels.get(i)).ok_or_else(|| {
                anyhow::anyhow!(
                    "{folder} has index {id}, but the indexer has {} labels; pass the indexer the ALS model was trained with",
                    labels.len()
                )
            })?,
        };
        mapped.push((id, features));
    }
    mapped.sort_unstable_by_key(|r| r.0);
    if let Some(w) = mapped.windows(2).find(|w| w[0].0 == w[1].0) {
        anyhow::bail!(
            "{folder} has id {} twice; the model folder is damaged",
            w[0].0
        );
    }
    let ids = mapped.iter().map(|r| r.0).collect();
    let mut factors = Vec::new();
    factors
        .try_reserve_exact(mapped.len() * rank)
        .map_err(|_| anyhow::anyhow!("not enough memory for the factors of {folder}"))?;
    for (_, f) in mapped {
        factors.extend_from_slice(&f);
    }
    Ok((ids, factors))
}

/// The model the parts describe.
pub fn build(mut parts: SparkParts, path: &str, with_indexer: bool) -> anyhow::Result<Imported> {
    let (file, text) = match parts.metadata.as_slice() {
        [] => anyhow::bail!(
            "'{path}' is not a saved Spark model (it has no metadata/part-* file); pass the folder that ALSModel.save(path) wrote"
        ),
        [one] => one,
        more => anyhow::bail!("'{path}/metadata' has {} part files; pass a folder that ALSModel.save wrote once", more.len()),
    };
    let meta = Metadata::parse(text)
        .map_err(|e| anyhow::anyhow!("'{path}' is not an ALSModel: {e} (in {file})"))?;
    let als = AlsMetadata::from_metadata(&meta)
        .map_err(|e| anyhow::anyhow!("'{path}' is not an ALSModel: {e}"))?;
    let (user_labels, item_labels) = if with_indexer {
        (
            Some(labels_for(&parts, &als.user_col, "userCol")?),
            Some(labels_for(&parts, &als.item_col, "itemCol")?),
        )
    } else {
        (None, None)
    };
    let (user_ids, user_factors) = side(
        std::mem::take(&mut parts.users),
        als.rank,
        "userFactors",
        user_labels.as_deref(),
    )?;
    let (product_ids, item_factors) = side(
        std::mem::take(&mut parts.items),
        als.rank,
        "itemFactors",
        item_labels.as_deref(),
    )?;
    let product_pos: crate::rng::FastMap<i64, u32> = product_ids
        .iter()
        .enumerate()
        .map(|(i, &p)| (p, i as u32))
        .collect();
    let mut pairs = std::mem::take(&mut parts.pairs);
    pairs.sort_unstable_by_key(|p| (p.user, p.product));
    let stats = event_stats(&pairs, &user_ids, &product_pos)?;
    let params = [
        ("factors", als.rank as f64),
        ("users", user_ids.len() as f64),
        ("products", product_ids.len() as f64),
        ("interactions", stats.interactions as f64),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v))
    .collect();
    // Spark's model is collaborative only; a model ecoreco exported keeps
    // the blend it was made for (an extra metadata field Spark ignores).
    let blend = als.blend.unwrap_or(0.0);
    let n_products = product_ids.len();
    // The id as the trainer makes it: the blend is part of what is served.
    let model = FactorModel::new(ModelParts {
        factors: als.rank,
        user_ids,
        product_ids,
        user_factors,
        item_factors,
        product_category: stats.product_category,
        popularity: stats.popularity,
        purchased: stats.purchased,
        interest: stats.interest,
        blend,
        // Spark's model carries no product attributes.
        attributes: crate::model::ProductAttributes::unknown(n_products),
        // Spark's ALS weighs the ratings it is given as they are.
        weighting: crate::model::confidence::Weighting::raw(),
    })?;
    Ok(Imported { model, params })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALS: &str = r#"{"class":"org.apache.spark.ml.recommendation.ALSModel","uid":"ALS_1","sparkVersion":"3.5.9","paramMap":{"userCol":"u_idx","itemCol":"p_idx"},"defaultParamMap":{"userCol":"user","itemCol":"item"},"rank":2}"#;
    const USER_IDX: &str = r#"{"class":"org.apache.spark.ml.feature.StringIndexerModel","uid":"S1","paramMap":{"outputCol":"u_idx"},"defaultParamMap":{}}"#;
    const ITEM_IDX: &str = r#"{"class":"org.apache.spark.ml.feature.StringIndexerModel","uid":"S2","paramMap":{"outputCol":"p_idx"},"defaultParamMap":{}}"#;
    const PIPELINE: &str = r#"{"class":"org.apache.spark.ml.PipelineModel","uid":"P","paramMap":{},"defaultParamMap":{}}"#;

    fn pair(user: i64, product: i64, weight: f32, purchases: u32, category: i64) -> Pair {
        Pair {
            user,
            product,
            weight,
            purchases,
            interactions: 1,
            category,
        }
    }

    /// Two users (indices 0, 1 = ids 900, 800) and three products
    /// (indices 0, 1, 2 = ids 30, 10, 20) through a two-stage pipeline.
    fn parts() -> SparkParts {
        SparkParts {
            metadata: vec![("m/metadata/part-00000".into(), ALS.into())],
            users: vec![(1, vec![0.0, 1.0]), (0, vec![1.0, 0.0])],
            items: vec![
                (2, vec![0.5, 0.5]),
                (0, vec![1.0, 0.0]),
                (1, vec![0.0, 1.0]),
            ],
            indexer_metadata: vec![
                ("ix/metadata/part-00000".into(), PIPELINE.into()),
                ("ix/stages/0_S1/metadata/part-00000".into(), USER_IDX.into()),
                ("ix/stages/1_S2/metadata/part-00000".into(), ITEM_IDX.into()),
            ],
            label_files: vec![
                "ix/stages/0_S1/data/part-0.parquet".into(),
                "ix/stages/1_S2/data/part-0.parquet".into(),
            ],
            labels: vec![
                (0, 0, 0, "900".into()),
                (0, 0, 1, "800".into()),
                (1, 0, 2, "20".into()),
                (1, 0, 0, "30".into()),
                (1, 0, 1, "10".into()),
            ],
            pairs: vec![
                pair(900, 30, 5.0, 1, 7),
                pair(900, 10, 1.0, 0, 8),
                pair(800, 30, 1.0, 0, 7),
                pair(800, 99, 4.0, 1, 9), // a product Spark's model lacks
                pair(5, 20, 3.0, 1, 8),   // a user Spark's model lacks
            ],
        }
    }

    #[test]
    fn indices_map_back_to_ids_and_events_fill_the_rest() {
        let m = build(parts(), "m", true).unwrap().model;
        assert_eq!(m.user_ids, vec![800, 900]);
        assert_eq!(m.product_ids, vec![10, 20, 30]);
        // User 800 was index 1 ([0, 1]); product 10 was index 1, 30 index 0.
        assert_eq!(m.user_factors, vec![0.0, 1.0, 1.0, 0.0]);
        assert_eq!(m.item_factors, vec![0.0, 1.0, 0.5, 0.5, 1.0, 0.0]);
        assert_eq!(m.product_category, vec![8, 8, 7]);
        // Purchases + weight / (1 + largest weight): product 30 has 6 of weight.
        assert_eq!(
            m.popularity,
            vec![1.0 / 7.0, 1.0 + 3.0 / 7.0, 1.0 + 6.0 / 7.0]
        );
        // User 900 bought product 30 (position 2); 800's purchase of 99 is dropped.
        assert_eq!(m.purchased.row(1).0, &[2]);
        assert!(m.purchased.row(0).0.is_empty());
        // Interest counts every pair of the user, 99 included (category 9).
        assert_eq!(m.interest[0], vec![(7, 0.5), (9, 0.5)]);
        assert_eq!(m.interest[1], vec![(7, 0.5), (8, 0.5)]);
        assert_eq!(m.blend, 0.0, "Spark's model is served collaborative only");
    }

    #[test]
    fn without_indexer_ids_are_taken_as_they_are() {
        let mut p = parts();
        p.pairs = vec![pair(1, 2, 2.0, 0, 4)];
        let imported = build(p, "m", false).unwrap();
        assert_eq!(imported.model.user_ids, vec![0, 1]);
        assert_eq!(imported.model.product_ids, vec![0, 1, 2]);
        assert_eq!(imported.model.product_category, vec![-1, -1, 4]);
        let params: Vec<(&str, f64)> = imported
            .params
            .iter()
            .map(|(n, v)| (n.as_str(), *v))
            .collect();
        assert_eq!(
            params,
            vec![
                ("factors", 2.0),
                ("users", 2.0),
                ("products", 3.0),
                ("interactions", 1.0)
            ]
        );
    }

    #[test]
    fn the_same_factors_give_the_same_model_id() {
        let a = build(parts(), "m", true).unwrap().model.id();
        let mut p = parts();
        p.users.reverse();
        p.labels.reverse();
        assert_eq!(build(p, "m", true).unwrap().model.id(), a);
    }

    fn error(p: SparkParts, with_indexer: bool) -> String {
        match build(p, "m", with_indexer) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn damaged_or_foreign_folders_are_refused() {
        let mut p = parts();
        p.metadata.clear();
        assert!(error(p, true).contains("has no metadata/part-* file"));
        let mut p = parts();
        p.metadata[0].1 = PIPELINE.into();
        assert!(error(p, true).contains("holds a org.apache.spark.ml.PipelineModel, not an"));
        let mut p = parts();
        p.items[1].1.push(0.0);
        let e = error(p, true);
        assert!(
            e.contains("rank 2 but itemFactors row id 0 has 3 features"),
            "{e}"
        );
        let mut p = parts();
        p.users.push((0, vec![0.0, 0.0]));
        assert!(error(p, false).contains("userFactors has id 0 twice"));
        let mut p = parts();
        p.items.clear();
        assert!(error(p, false).contains("itemFactors/ has no rows"));
    }

    #[test]
    fn indexer_mismatches_are_refused() {
        let mut p = parts();
        p.indexer_metadata.pop();
        let e = error(p, true);
        assert!(
            e.contains("no StringIndexerModel whose output column is 'p_idx'"),
            "{e}"
        );
        let mut p = parts();
        p.labels.retain(|l| l.0 != 0 || l.2 != 1);
        let e = error(p, true);
        assert!(
            e.contains("userFactors has index 1, but the indexer has 1 labels"),
            "{e}"
        );
        let mut p = parts();
        p.labels[0].3 = "5.4E8".into();
        let e = error(p, true);
        assert!(
            e.contains("label '5.4E8' (index 0)") && e.contains("not an integer id"),
            "{e}"
        );
    }
}
