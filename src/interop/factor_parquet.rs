//! One Parquet file of ALS factors, laid out as Spark writes
//! `userFactors/` and `itemFactors/`: `id INT` (required) and
//! `features ARRAY<FLOAT>` (an optional three-level LIST of required
//! floats), with Spark's own schema in the key-value metadata so that
//! Spark reads back exactly the types and nullability it wrote.
//!
//! Written with the `parquet` crate's column writer (no Arrow): the file
//! format (Thrift footer, level encoding, page layout) is too easy to get
//! subtly wrong by hand for what it would save. Pages are uncompressed and
//! not dictionary-encoded: factors are near-random floats that neither
//! compresses.

use parquet::basic::Compression;
use parquet::data_type::{FloatType, Int32Type};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use std::io::Write;
use std::sync::Arc;

const SCHEMA: &str = "message spark_schema {
  required int32 id;
  optional group features (LIST) {
    repeated group list {
      required float element;
    }
  }
}";

/// The schema as Spark records it (`org.apache.spark.sql.parquet.row.metadata`).
const SPARK_ROW_METADATA: &str = r#"{"type":"struct","fields":[{"name":"id","type":"integer","nullable":false,"metadata":{}},{"name":"features","type":{"type":"array","elementType":"float","containsNull":false},"nullable":true,"metadata":{}}]}"#;

/// Rows per row group: Spark reads row groups in parallel, and each group's
/// level buffers stay small.
const ROWS_PER_GROUP: usize = 65_536;

/// Writes `ids.len()` rows; row `r` has features
/// `factors[r * rank..(r + 1) * rank]`.
pub fn write_factors<W: Write + Send>(
    out: W,
    ids: &[i32],
    factors: &[f32],
    rank: usize,
) -> anyhow::Result<W> {
    anyhow::ensure!(rank > 0, "internal error: rank 0");
    anyhow::ensure!(
        factors.len() == ids.len() * rank,
        "internal error: {} factors for {} rows of rank {rank}",
        factors.len(),
        ids.len()
    );
    let schema = Arc::new(parse_message_type(SCHEMA)?);
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::UNCOMPRESSED)
            .set_dictionary_enabled(false)
            .set_created_by(format!("ecoreco {}", crate::VERSION))
            .set_key_value_metadata(Some(vec![KeyValue::new(
                "org.apache.spark.sql.parquet.row.metadata".to_string(),
                SPARK_ROW_METADATA.to_string(),
            )]))
            .build(),
    );
    let mut writer = SerializedFileWriter::new(out, schema, props)?;
    // Levels for a row of `rank` present elements: definition level 2 (list
    // present, element present), repetition 0 starting each row, 1 after.
    let mut rep_row = vec![1i16; rank];
    rep_row[0] = 0;
    for start in (0..ids.len()).step_by(ROWS_PER_GROUP) {
        let end = (start + ROWS_PER_GROUP).min(ids.len());
        let rows = end - start;
        let mut group = writer.next_row_group()?;
        let mut column = 0;
        while let Some(mut col) = group.next_column()? {
            match column {
                0 => {
                    col.typed::<Int32Type>()
                        .write_batch(&ids[start..end], None, None)?;
                }
                _ => {
                    let def = vec![2i16; rows * rank];
                    let rep: Vec<i16> = rep_row.iter().copied().cycle().take(rows * rank).collect();
                    col.typed::<FloatType>().write_batch(
                        &factors[start * rank..end * rank],
                        Some(&def),
                        Some(&rep),
                    )?;
                }
            }
            col.close()?;
            column += 1;
        }
        group.close()?;
    }
    Ok(writer.into_inner()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;

    fn reader(bytes: &[u8]) -> SerializedFileReader<std::fs::File> {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        SerializedFileReader::new(file).unwrap()
    }

    fn read_back(bytes: Vec<u8>) -> (Vec<i32>, Vec<Vec<f32>>, Option<String>) {
        let reader = reader(&bytes);
        let spark_schema = reader
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .and_then(|kv| {
                kv.iter()
                    .find(|k| k.key.contains("row.metadata"))
                    .and_then(|k| k.value.clone())
            });
        let (mut ids, mut features) = (Vec::new(), Vec::new());
        for row in reader.get_row_iter(None).unwrap() {
            let row = row.unwrap();
            for (name, field) in row.get_column_iter() {
                match (name.as_str(), field) {
                    ("id", Field::Int(v)) => ids.push(*v),
                    ("features", Field::ListInternal(list)) => features.push(
                        list.elements()
                            .iter()
                            .map(|f| match f {
                                Field::Float(x) => *x,
                                other => panic!("{other:?}"),
                            })
                            .collect(),
                    ),
                    other => panic!("unexpected column {other:?}"),
                }
            }
        }
        (ids, features, spark_schema)
    }

    #[test]
    fn rows_read_back_with_spark_schema() {
        let ids = [7, -3, 2_147_483_647];
        let factors = [0.5, -1.0, 2.0, 3.5, f32::MIN_POSITIVE, -0.0];
        let bytes = write_factors(Vec::new(), &ids, &factors, 2).unwrap();
        let (got_ids, got, schema) = read_back(bytes);
        assert_eq!(got_ids, ids);
        assert_eq!(
            got,
            vec![
                vec![0.5, -1.0],
                vec![2.0, 3.5],
                vec![f32::MIN_POSITIVE, -0.0]
            ]
        );
        assert_eq!(schema.as_deref(), Some(SPARK_ROW_METADATA));
    }

    #[test]
    fn many_row_groups_and_rank_one() {
        let n = ROWS_PER_GROUP * 2 + 5;
        let ids: Vec<i32> = (0..n as i32).collect();
        let factors: Vec<f32> = (0..n).map(|i| i as f32 * 0.25).collect();
        let bytes = write_factors(Vec::new(), &ids, &factors, 1).unwrap();
        assert_eq!(reader(&bytes).metadata().num_row_groups(), 3);
        let (got_ids, got, _) = read_back(bytes);
        assert_eq!(got_ids, ids);
        assert_eq!(got[n - 1], vec![(n - 1) as f32 * 0.25]);
    }

    #[test]
    fn empty_and_mismatched_inputs() {
        let bytes = write_factors(Vec::new(), &[], &[], 3).unwrap();
        assert!(read_back(bytes).0.is_empty());
        assert!(write_factors(Vec::new(), &[1], &[1.0], 2).is_err());
        assert!(write_factors(Vec::new(), &[], &[], 0).is_err());
    }
}
