//! A 1.x `meta.sqlite`, opened read-only.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{Row, TypeInfo, ValueRef};

use super::{bind_params, sql_error, MetaSource};
use crate::bindings::types;

/// A 1.x `meta.sqlite`, opened read-only.
pub struct SqliteSource {
    pool: SqlitePool,
    path: PathBuf,
}

impl SqliteSource {
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        if !path.is_file() {
            anyhow::bail!("meta database {} does not exist or is not a file", path.display());
        }
        let opts = SqliteConnectOptions::new().filename(path).read_only(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .map_err(|e| anyhow::anyhow!("cannot open meta database {}: {e}", path.display()))?;
        Ok(SqliteSource { pool, path: path.to_path_buf() })
    }

    fn err(&self, e: sqlx::Error) -> types::Error {
        sql_error(&self.path.display().to_string(), e)
    }
}

#[async_trait]
impl MetaSource for SqliteSource {
    async fn list_tables(&self) -> Result<Vec<String>, types::Error> {
        let rows = sqlx::query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        rows.iter().map(|r| r.try_get::<String, _>(0).map_err(|e| self.err(e))).collect()
    }

    async fn query(&self, sql: &str, params: &[types::SqlValue]) -> Result<Vec<Vec<types::SqlValue>>, types::Error> {
        let q = bind_params(sqlx::query(sql), params);
        let rows = q.fetch_all(&self.pool).await.map_err(|e| self.err(e))?;
        rows.iter()
            .map(|row| (0..row.columns().len()).map(|i| sqlite_value(row, i).map_err(|e| self.err(e))).collect())
            .collect()
    }
}

/// One cell by its SQLite storage class (the column's declared type does not bind it).
fn sqlite_value(row: &sqlx::sqlite::SqliteRow, i: usize) -> Result<types::SqlValue, sqlx::Error> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(types::SqlValue::Null);
    }
    let class = raw.type_info().name().to_ascii_uppercase();
    Ok(match class.as_str() {
        "INTEGER" | "INT" | "BIGINT" | "BOOLEAN" => types::SqlValue::Int(row.try_get(i)?),
        "REAL" | "FLOAT" | "DOUBLE" => types::SqlValue::Real(row.try_get(i)?),
        "BLOB" => types::SqlValue::Blob(row.try_get(i)?),
        _ => types::SqlValue::Text(row.try_get(i)?),
    })
}

