//! Writing a model as the folder `ALSModel.save(path)` writes, so that
//! `ALSModel.load(path)` reads it:
//!
//! ```text
//! path/metadata/part-00000            one JSON line (class, uid, params, rank)
//! path/metadata/_SUCCESS
//! path/userFactors/part-00000.parquet id INT, features ARRAY<FLOAT>
//! path/userFactors/_SUCCESS
//! path/itemFactors/part-00000.parquet
//! path/itemFactors/_SUCCESS
//! ```
//!
//! Everything is written into a hidden folder beside `path` and renamed
//! to `path` only once complete (files synced first), so a failure or a
//! crash never leaves a half-written model where Spark would load it.

use super::factor_parquet::write_factors;
use super::spark_metadata::als_model_json;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The factors of one model, rows sorted by id.
pub struct SparkFactors {
    pub model_id: i64,
    /// The model's serving blend, kept in the metadata for ecoreco.
    pub blend: f32,
    pub rank: usize,
    pub user_ids: Vec<i64>,
    pub user_factors: Vec<f32>,
    pub product_ids: Vec<i64>,
    pub product_factors: Vec<f32>,
}

/// Spark's ALS keys factors by INT: converts, naming the first id (in id
/// order) that does not fit.
pub fn int_ids(column: &str, ids: &[i64]) -> anyhow::Result<Vec<i32>> {
    let mut out = Vec::new();
    out.try_reserve_exact(ids.len())
        .map_err(|_| crate::error::memory(format!("not enough memory for {} ids", ids.len())))?;
    for &id in ids {
        let narrow = i32::try_from(id).map_err(|_| {
            anyhow::anyhow!(
                "{column} {id} does not fit Spark's INT ids ({} to {}); train on ids that fit, \
                 e.g. dense indices from a StringIndexer, and map them back after",
                i32::MIN,
                i32::MAX
            )
        })?;
        out.push(narrow);
    }
    Ok(out)
}

/// `ALS_` and 12 hex digits, as Spark's uids look, from the model's hash.
pub fn uid(model_id: i64) -> String {
    format!("ALS_{:012x}", (model_id as u64) & 0xffff_ffff_ffff)
}

/// Writes `model` as a Spark ALSModel folder at `path`, which must not
/// exist yet (Spark's `save` refuses an existing path too). Returns the
/// path written.
pub fn write_als_model(path: &str, model: &SparkFactors) -> anyhow::Result<PathBuf> {
    if path.is_empty() {
        return Err(crate::error::param(
            "parameter `path` is empty; pass the folder to create, e.g. 'models/als'",
        ));
    }
    anyhow::ensure!(
        !path.contains("://"),
        "path '{path}' is not a local path; export to a local folder and copy it (e.g. to HDFS or S3) from there"
    );
    let target = Path::new(path.trim_end_matches('/'));
    if fs::symlink_metadata(target).is_ok() {
        anyhow::bail!("'{path}' already exists; remove it or pass a path that does not exist (Spark's save refuses an existing path too)");
    }
    let name = target
        .file_name()
        .ok_or_else(|| anyhow::anyhow!("path '{path}' names no folder; pass e.g. 'models/als'"))?
        .to_string_lossy()
        .into_owned();
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    anyhow::ensure!(
        parent.is_dir(),
        "the folder '{}' does not exist; create it first or pass a path in an existing folder",
        parent.display()
    );
    // Every check that can fail on the data runs before anything is created.
    let users = int_ids("user_id", &model.user_ids)?;
    let products = int_ids("product_id", &model.product_ids)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let staging = parent.join(format!(".{name}.ecoreco-{}-{now}.tmp", std::process::id()));
    fs::create_dir(&staging)
        .map_err(|e| crate::error::host(format!("cannot create '{}': {e}", staging.display())))?;
    let written = (|| {
        let metadata = als_model_json(
            &uid(model.model_id),
            model.rank,
            model.blend,
            now / 1_000_000,
        );
        write_part(&staging.join("metadata"), "part-00000", |w| {
            writeln!(w, "{metadata}")?;
            Ok(())
        })?;
        write_part(&staging.join("userFactors"), "part-00000.parquet", |w| {
            write_factors(w, &users, &model.user_factors, model.rank).map(|_| ())
        })?;
        write_part(&staging.join("itemFactors"), "part-00000.parquet", |w| {
            write_factors(w, &products, &model.product_factors, model.rank).map(|_| ())
        })?;
        sync_dir(&staging)?;
        fs::rename(&staging, target).map_err(|e| {
            crate::error::host(format!("cannot rename the finished model to '{path}': {e}"))
        })?;
        sync_dir(&parent)
    })();
    if let Err(e) = written {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }
    Ok(target.to_path_buf())
}

/// One Spark output folder: a data file and the `_SUCCESS` marker.
fn write_part(
    dir: &Path,
    file: &str,
    body: impl FnOnce(&mut BufWriter<&mut File>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    fs::create_dir(dir)
        .map_err(|e| crate::error::host(format!("cannot create '{}': {e}", dir.display())))?;
    let path = dir.join(file);
    let mut f = File::create(&path)
        .map_err(|e| crate::error::host(format!("cannot create '{}': {e}", path.display())))?;
    {
        let mut w = BufWriter::with_capacity(1 << 20, &mut f);
        body(&mut w)
            .map_err(|e| crate::error::host(format!("cannot write '{}': {e}", path.display())))?;
        w.flush()
            .map_err(|e| crate::error::host(format!("cannot write '{}': {e}", path.display())))?;
    }
    f.sync_all()
        .map_err(|e| crate::error::host(format!("cannot write '{}': {e}", path.display())))?;
    File::create(dir.join("_SUCCESS"))?.sync_all()?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| crate::error::host(format!("cannot sync '{}': {e}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interop::spark_metadata::{AlsMetadata, Metadata};

    fn model() -> SparkFactors {
        SparkFactors {
            model_id: 0x1234_5678_9abc,
            blend: 0.25,
            rank: 2,
            user_ids: vec![1, 5],
            user_factors: vec![0.1, 0.2, 0.3, 0.4],
            product_ids: vec![100, 200, 300],
            product_factors: vec![1.0, 0.0, 0.0, 1.0, 0.5, 0.5],
        }
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_spark_layout_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("als");
        write_als_model(path.to_str().unwrap(), &model()).unwrap();
        // The staging folder is gone: only the model is left.
        assert_eq!(entries(tmp.path()), vec!["als"]);
        assert_eq!(
            entries(&path),
            vec!["itemFactors", "metadata", "userFactors"]
        );
        assert_eq!(
            entries(&path.join("metadata")),
            vec!["_SUCCESS", "part-00000"]
        );
        assert_eq!(
            entries(&path.join("userFactors")),
            vec!["_SUCCESS", "part-00000.parquet"]
        );
        let text = fs::read_to_string(path.join("metadata/part-00000")).unwrap();
        assert!(text.ends_with("}\n") && text.lines().count() == 1, "{text}");
        let meta = Metadata::parse(&text).unwrap();
        assert_eq!(meta.uid, "ALS_123456789abc");
        let als = AlsMetadata::from_metadata(&meta).unwrap();
        assert_eq!((als.rank, als.blend), (2, Some(0.25)));
        let parquet = fs::read(path.join("itemFactors/part-00000.parquet")).unwrap();
        assert_eq!(&parquet[..4], b"PAR1");
    }

    #[test]
    fn refuses_existing_paths_and_missing_folders() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("als");
        fs::create_dir(&path).unwrap();
        let err = write_als_model(path.to_str().unwrap(), &model()).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        let deep = tmp.path().join("no/such/als");
        let err = write_als_model(deep.to_str().unwrap(), &model()).unwrap_err();
        assert!(
            err.to_string().contains("does not exist; create it first"),
            "{err}"
        );
        let err = write_als_model("s3://bucket/als", &model()).unwrap_err();
        assert!(err.to_string().contains("not a local path"), "{err}");
        assert_eq!(entries(tmp.path()), vec!["als"]);
        assert!(entries(&path).is_empty());
    }

    #[test]
    fn ids_beyond_int_are_named_and_nothing_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("als");
        let mut m = model();
        m.product_ids = vec![100, 3_000_000_000, 4_000_000_000];
        let err = write_als_model(path.to_str().unwrap(), &m).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("product_id 3000000000 does not fit Spark's INT"),
            "{err}"
        );
        assert!(entries(tmp.path()).is_empty());
        assert_eq!(
            int_ids("user_id", &[i32::MIN as i64, i32::MAX as i64]).unwrap(),
            vec![i32::MIN, i32::MAX]
        );
        assert!(int_ids("user_id", &[i32::MIN as i64 - 1]).is_err());
    }

    #[test]
    fn a_failed_write_leaves_no_staging_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("als");
        let mut m = model();
        m.user_factors.pop(); // rank 2 but 3 floats: the parquet writer refuses
        assert!(write_als_model(path.to_str().unwrap(), &m).is_err());
        assert!(entries(tmp.path()).is_empty());
    }
}
