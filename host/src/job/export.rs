//! `export`: the 1.x meta database to meta.json.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use super::write_atomically;
use crate::caps::meta_db::{parse_dsn, MetaSource, MySqlSource, SqliteSource};
use crate::exit::Failure;
use crate::sandbox::{Caps, Sandbox, UnitPolicy};
use crate::job::model::{MetaSpec, DEFAULT_LIMITS};

/// `export` of the 1.x meta database `meta` (SQLite or MySQL) into `<output>/meta.json`;
/// `setting` names where the database was given, for messages.
pub async fn run(meta: &MetaSpec, setting: &str, output: &Path, policy: &UnitPolicy) -> Result<(), Failure> {
    let meta: Arc<dyn MetaSource> = match meta {
        MetaSpec::Sqlite(path) => Arc::new(SqliteSource::open(path).await.map_err(Failure::Usage)?),
        MetaSpec::Mysql(dsn) => {
            parse_dsn(dsn).map_err(|e| Failure::Usage(anyhow::anyhow!("{setting}: {e}")))?;
            Arc::new(MySqlSource::open(dsn, setting).await.map_err(Failure::Run)?)
        }
        MetaSpec::Json(_) | MetaSpec::Remote(_) => {
            return Err(Failure::Usage(anyhow::anyhow!("{setting}: export reads a meta database (SQLite or MySQL), not meta.json")))
        }
    };
    export(meta, output, policy).await
}

/// Writes `<output>/meta.json` from a 1.x meta database.
pub async fn export(meta: Arc<dyn MetaSource>, output: &Path, policy: &UnitPolicy) -> Result<(), Failure> {
    let sandbox = Sandbox::with_policy(DEFAULT_LIMITS, policy).map_err(Failure::Run)?;
    let caps = Caps { meta: Some(meta), unit: "export".into(), ..Default::default() };
    let json = sandbox.export_meta(caps).await.map_err(|e| Failure::Run(anyhow::anyhow!("export failed: {e}")))?;
    std::fs::create_dir_all(output)
        .with_context(|| format!("cannot create output directory {}", output.display()))
        .map_err(Failure::Run)?;
    let path = output.join("meta.json");
    write_atomically(&path, json.as_bytes()).map_err(Failure::Run)?;
    println!("wrote {} ({} bytes)", path.display(), json.len());
    Ok(())
}
