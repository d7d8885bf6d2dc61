//! Spark ML's `metadata/` JSON: what `DefaultParamsWriter` writes beside a
//! saved model, and what `DefaultParamsReader` expects to read back.
//!
//! One JSON object on one line (`metadata/part-00000` in Spark 3,
//! `metadata/part-00000-<uuid>-c000.txt` in Spark 4):
//! `class`, `timestamp` (ms), `sparkVersion`, `uid`, `paramMap` (the
//! params set explicitly), `defaultParamMap` (required by readers when
//! `sparkVersion` is 2.4 or later) and, for an `ALSModel`, `rank`.
//! Values are read from `paramMap` first, then `defaultParamMap`, as
//! Spark's own reader resolves them.

use serde_json::{json, Map, Value};

pub const ALS_MODEL: &str = "org.apache.spark.ml.recommendation.ALSModel";
pub const STRING_INDEXER_MODEL: &str = "org.apache.spark.ml.feature.StringIndexerModel";
pub const PIPELINE_MODEL: &str = "org.apache.spark.ml.PipelineModel";

/// Where an exported model keeps its serving blend: a top-level field,
/// which Spark's `ALSModel` reader (it reads `rank` and the params) ignores.
pub const BLEND_FIELD: &str = "ecorecoBlend";

/// The Spark release whose format the exporter writes (and whose readers
/// check `sparkVersion` only to know that `defaultParamMap` is present).
pub const WRITTEN_SPARK_VERSION: &str = "3.5.0";

/// One parsed metadata file.
#[derive(Clone, Debug)]
pub struct Metadata {
    pub class: String,
    pub uid: String,
    pub spark_version: String,
    json: Map<String, Value>,
}

impl Metadata {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        // Spark writes exactly one line; a reader takes the first.
        let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        let value: Value = serde_json::from_str(line)
            .map_err(|e| anyhow::anyhow!("its metadata is not Spark ML metadata JSON ({e})"))?;
        let Value::Object(json) = value else {
            anyhow::bail!("its metadata is not a JSON object");
        };
        let text_field = |name: &str| json.get(name).and_then(Value::as_str).map(str::to_string);
        Ok(Metadata {
            class: text_field("class")
                .ok_or_else(|| anyhow::anyhow!("its metadata has no `class`"))?,
            uid: text_field("uid").unwrap_or_default(),
            spark_version: text_field("sparkVersion").unwrap_or_default(),
            json,
        })
    }

    /// A parameter as Spark resolves it: set explicitly, else its default.
    pub fn param(&self, name: &str) -> Option<&Value> {
        ["paramMap", "defaultParamMap"]
            .iter()
            .filter_map(|map| self.json.get(*map)?.get(name))
            .next()
    }

    pub fn param_str(&self, name: &str) -> Option<&str> {
        self.param(name).and_then(Value::as_str)
    }

    /// A top-level field beside the params (`rank` for an ALSModel).
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.json.get(name)
    }
}

/// What an `ALSModel`'s metadata says about its factor files.
#[derive(Clone, Debug, PartialEq)]
pub struct AlsMetadata {
    pub rank: usize,
    pub user_col: String,
    pub item_col: String,
    pub spark_version: String,
    /// The serving blend of a model ecoreco exported (`ecorecoBlend`, a
    /// top-level field Spark's reader ignores); `None` for Spark's models.
    pub blend: Option<f32>,
}

impl AlsMetadata {
    pub fn from_metadata(meta: &Metadata) -> anyhow::Result<Self> {
        if meta.class != ALS_MODEL {
            let hint = if meta.class == PIPELINE_MODEL {
                " (a PipelineModel: pass its ALS stage's folder, stages/<n>_ALS_<uid>)"
            } else {
                ""
            };
            anyhow::bail!("it holds a {}, not an {ALS_MODEL}{hint}", meta.class);
        }
        let rank = meta
            .field("rank")
            .and_then(Value::as_u64)
            .filter(|&r| (1..=65_536).contains(&r))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "its metadata has no valid `rank` (a positive integer), got {}",
                    meta.field("rank")
                        .map_or("nothing".to_string(), Value::to_string)
                )
            })?;
        let column =
            |name: &str, default: &str| meta.param_str(name).unwrap_or(default).to_string();
        Ok(AlsMetadata {
            rank: rank as usize,
            user_col: column("userCol", "user"),
            item_col: column("itemCol", "item"),
            spark_version: meta.spark_version.clone(),
            blend: meta
                .field(BLEND_FIELD)
                .and_then(Value::as_f64)
                .filter(|b| (0.0..=1.0).contains(b))
                .map(|b| b as f32),
        })
    }
}

/// The output columns of a `StringIndexerModel`, in the order of its
/// `labelsArray` (one column with `outputCol`, several with `outputCols`).
pub fn indexer_output_columns(meta: &Metadata) -> Vec<String> {
    if let Some(Value::Array(cols)) = meta.param("outputCols") {
        let cols: Vec<String> = cols
            .iter()
            .filter_map(|c| c.as_str().map(str::to_string))
            .collect();
        if !cols.is_empty() {
            return cols;
        }
    }
    meta.param_str("outputCol")
        .map(|c| vec![c.to_string()])
        .unwrap_or_default()
}

/// The metadata line of an exported `ALSModel`. Only the columns are set
/// explicitly; the defaults are those of Spark 3.5's `ALSModel`.
pub fn als_model_json(uid: &str, rank: usize, blend: f32, timestamp_ms: u128) -> String {
    let value = json!({
        "class": ALS_MODEL,
        "timestamp": timestamp_ms as u64,
        "sparkVersion": WRITTEN_SPARK_VERSION,
        "uid": uid,
        "paramMap": {
            "userCol": "user_id",
            "itemCol": "product_id",
        },
        "defaultParamMap": {
            "coldStartStrategy": "nan",
            "blockSize": 4096,
            "predictionCol": "prediction",
            "userCol": "user",
            "itemCol": "item",
        },
        "rank": rank,
        BLEND_FIELD: crate::model::f32_decimal(blend),
    });
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The line PySpark 3.5.9 wrote for `ALS(rank=10, ...).fit(...).save(p)`.
    const SPARK_35: &str = r#"{"class":"org.apache.spark.ml.recommendation.ALSModel","timestamp":1796114497350,"sparkVersion":"3.5.9","uid":"ALS_681a35810a0e","paramMap":{"coldStartStrategy":"drop","blockSize":4096,"userCol":"user_idx","itemCol":"product_idx"},"defaultParamMap":{"coldStartStrategy":"nan","blockSize":4096,"predictionCol":"prediction","userCol":"user","itemCol":"item"},"rank":10}"#;

    #[test]
    fn reads_what_spark_writes() {
        let meta = Metadata::parse(&format!("{SPARK_35}\n")).unwrap();
        assert_eq!(meta.uid, "ALS_681a35810a0e");
        assert_eq!(meta.param_str("predictionCol"), Some("prediction"));
        let als = AlsMetadata::from_metadata(&meta).unwrap();
        assert_eq!(
            als,
            AlsMetadata {
                rank: 10,
                user_col: "user_idx".into(),
                item_col: "product_idx".into(),
                spark_version: "3.5.9".into(),
                blend: None,
            }
        );
    }

    #[test]
    fn exported_metadata_reads_back() {
        let meta = Metadata::parse(&als_model_json("ALS_0123456789ab", 7, 0.8, 1)).unwrap();
        let als = AlsMetadata::from_metadata(&meta).unwrap();
        assert_eq!(als.blend, Some(0.8));
        assert_eq!(
            (als.rank, als.user_col.as_str(), als.item_col.as_str()),
            (7, "user_id", "product_id")
        );
        assert_eq!(meta.param_str("coldStartStrategy"), Some("nan"));
        assert_eq!(meta.field("timestamp").and_then(Value::as_u64), Some(1));
    }

    #[test]
    fn other_models_and_bad_ranks_are_refused() {
        let pipeline = r#"{"class":"org.apache.spark.ml.PipelineModel","uid":"P","paramMap":{},"defaultParamMap":{}}"#;
        let err = AlsMetadata::from_metadata(&Metadata::parse(pipeline).unwrap()).unwrap_err();
        assert!(
            err.to_string()
                .contains("holds a org.apache.spark.ml.PipelineModel"),
            "{err}"
        );
        assert!(err.to_string().contains("stages/<n>_ALS_<uid>"), "{err}");
        let no_rank = SPARK_35.replace(r#","rank":10"#, "");
        let err = AlsMetadata::from_metadata(&Metadata::parse(&no_rank).unwrap()).unwrap_err();
        assert!(err.to_string().contains("no valid `rank`"), "{err}");
        let zero = SPARK_35.replace(r#""rank":10"#, r#""rank":0"#);
        assert!(AlsMetadata::from_metadata(&Metadata::parse(&zero).unwrap()).is_err());
        assert!(Metadata::parse("not json")
            .unwrap_err()
            .to_string()
            .contains("not Spark ML metadata"));
        assert!(Metadata::parse("[1]").is_err());
    }

    #[test]
    fn indexer_columns_single_and_multi() {
        let single = r#"{"class":"org.apache.spark.ml.feature.StringIndexerModel","paramMap":{"outputCol":"user_idx","inputCol":"user_id"},"defaultParamMap":{"outputCol":"S__output"}}"#;
        assert_eq!(
            indexer_output_columns(&Metadata::parse(single).unwrap()),
            vec!["user_idx"]
        );
        let multi = r#"{"class":"org.apache.spark.ml.feature.StringIndexerModel","paramMap":{"outputCols":["u","p"]},"defaultParamMap":{"outputCol":"S__output"}}"#;
        assert_eq!(
            indexer_output_columns(&Metadata::parse(multi).unwrap()),
            vec!["u", "p"]
        );
        // Only the default: Spark would name the column uid__output.
        let default = r#"{"class":"org.apache.spark.ml.feature.StringIndexerModel","paramMap":{},"defaultParamMap":{"outputCol":"S__output"}}"#;
        assert_eq!(
            indexer_output_columns(&Metadata::parse(default).unwrap()),
            vec!["S__output"]
        );
    }
}
