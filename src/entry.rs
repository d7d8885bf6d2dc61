//! The extension entry point: DuckDB calls `ecoreco_init_c_api` at LOAD.
//!
//! It registers the Rust functions in the system catalog and creates the SQL
//! macros in the private `ecoreco` catalog, through a connection that is
//! closed again before LOAD returns.

use crate::binding::rows::InputChunk;
use crate::binding::{self, aggregate, scalar, sql::LoadConnection, table, ColumnWriter, SqlType};
use libduckdb_sys as ffi;

/// The oldest C API whose function table we need (all calls used are stable
/// since v1.2.0), so the same file loads in DuckDB 1.5 and 2.0.
const MIN_C_API: &str = "v1.2.0";

/// `ecoreco_version()`: the extension's version.
struct Version;

impl scalar::ScalarFunction for Version {
    const NAME: &'static str = "ecoreco_version";
    fn params() -> Vec<SqlType> {
        vec![]
    }
    fn returns() -> SqlType {
        SqlType::Varchar
    }
    fn invoke(input: &InputChunk, out: &mut ColumnWriter) -> anyhow::Result<()> {
        for row in 0..input.rows().max(1) {
            out.set_str(row, crate::VERSION);
        }
        Ok(())
    }
}

unsafe fn register_all(db: ffi::duckdb_database) -> anyhow::Result<()> {
    let con = LoadConnection::open(db)?;
    scalar::register::<Version>(con.0)?;
    scalar::register::<crate::ingest::CountDataLines>(con.0)?;
    scalar::register::<aggregate::DebugStateCounts>(con.0)?;
    table::register::<crate::synth::Synth>(con.0)?;
    aggregate::register::<crate::segment::KMeansAggregate>(con.0)?;
    aggregate::register::<crate::segment::KMeansSweep>(con.0)?;
    aggregate::register::<crate::train::AlsTrain>(con.0)?;
    aggregate::register::<crate::recommend::Serve>(con.0)?;
    aggregate::register::<crate::evaluate::Evaluate>(con.0)?;
    aggregate::register::<crate::covisit::train::CovisitTrain>(con.0)?;
    aggregate::register::<crate::covisit::serve::CovisitRecommend>(con.0)?;
    aggregate::register::<crate::evaluate::sessions::EvaluateSessions>(con.0)?;
    aggregate::register::<crate::interop::SparkImport>(con.0)?;
    aggregate::register::<crate::interop::SparkExport>(con.0)?;
    scalar::register::<crate::interop::ImportSql>(con.0)?;
    scalar::register::<crate::recommend::ModelReady>(con.0)?;
    scalar::register::<crate::recommend::RecommendSql>(con.0)?;
    scalar::register::<crate::recommend::RuleRowsSql>(con.0)?;
    scalar::register::<crate::recommend::ModelCacheClear>(con.0)?;
    scalar::register::<crate::report::ReportSql>(con.0)?;
    scalar::register::<crate::report::ReportWrite>(con.0)?;
    aggregate::register::<crate::stream::functions::Replay<crate::stream::outputs::Windows>>(
        con.0,
    )?;
    aggregate::register::<crate::stream::functions::Replay<crate::stream::outputs::Recommendations>>(
        con.0,
    )?;
    aggregate::register::<crate::stream::functions::Replay<crate::stream::outputs::Products>>(
        con.0,
    )?;
    aggregate::register::<crate::stream::sessions::RecommendSession>(con.0)?;
    aggregate::register::<crate::stream::sessions::RecommendSessions>(con.0)?;
    aggregate::register::<crate::stream::monitor::InfluxWrite>(con.0)?;
    aggregate::register::<crate::explain::Explain>(con.0)?;
    aggregate::register::<crate::train::update_sql::AlsUpdate>(con.0)?;
    scalar::register::<crate::explain::ExplainedSql>(con.0)?;
    scalar::register::<crate::stream::monitor::InfluxLine>(con.0)?;
    con.attach_private_catalog()?;
    for m in crate::ingest::macros()
        .into_iter()
        .chain(crate::synth::macros())
        .chain(crate::analytics::macros())
        .chain(crate::analytics::features::macros())
        .chain(crate::segment::macros())
        .chain(crate::segment::rfm::macros())
        .chain(crate::als::macros())
        .chain(crate::train::macros())
        .chain(crate::covisit::train::macros())
        .chain(crate::covisit::serve::macros())
        .chain(crate::recommend::macros())
        .chain(crate::evaluate::macros())
        .chain(crate::report::macros())
        .chain(crate::interop::macros())
        .chain(crate::stream::macros())
        .chain(crate::explain::macros())
        .chain(crate::train::update_sql::macros())
        .chain([
            binding::SqlMacro::scalar("version", &[], "ecoreco_version()"),
            binding::SqlMacro::scalar("model_cache_clear", &[], "ecoreco_model_cache_clear()"),
        ])
    {
        con.create_macro(&m)?;
    }
    Ok(())
}

/// # Safety
/// Called by DuckDB with valid `info` and `access` pointers.
#[no_mangle]
pub unsafe extern "C" fn ecoreco_init_c_api(
    info: ffi::duckdb_extension_info,
    access: *const ffi::duckdb_extension_access,
) -> bool {
    let outcome = binding::guard("ecoreco", "loading the extension", || {
        match ffi::duckdb_rs_extension_api_init(info, access, MIN_C_API) {
            Ok(true) => {}
            // DuckDB already recorded why (e.g. a host older than MIN_C_API).
            Ok(false) => return Ok(false),
            Err(e) => anyhow::bail!("{e}"),
        }
        let get_database = (*access)
            .get_database
            .ok_or_else(|| anyhow::anyhow!("no get_database in the access table"))?;
        let db = get_database(info);
        if db.is_null() {
            return Ok(false);
        }
        register_all(*db)?;
        Ok(true)
    });
    match outcome {
        Ok(loaded) => loaded,
        Err(message) => {
            if let Some(set_error) = (*access).set_error {
                binding::set_error(&message, |m| set_error(info, m));
            }
            false
        }
    }
}
