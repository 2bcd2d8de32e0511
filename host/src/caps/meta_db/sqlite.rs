//! A 1.x `meta.sqlite`, opened read-only.
//!
//! Milvus 1.x keeps its meta in WAL mode. A read-only connection to a WAL database creates
//! `meta.sqlite-wal` and `-shm` next to it (and cannot remove them when it closes), so a WAL
//! database without a `-wal` file (Milvus stopped cleanly: every commit is in the main file) is
//! opened `immutable`: no lock, no side file, nothing written. When a `-wal` file exists it may
//! hold commits, so the database is opened normally (read-only) to read them.

use std::io::Read;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{ConnectOptions, Row, TypeInfo, ValueRef};

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
        let immutable = wal_mode(path) && !has_wal_file(path);
        if wal_mode(path) && !immutable {
            tracing::warn!(
                "{}-wal exists: Milvus 1.x may still be running or did not stop cleanly; its last commits are read from it",
                path.display()
            );
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .immutable(immutable)
            .disable_statement_logging();
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .map_err(|e| anyhow::anyhow!("cannot open meta database {}: {e}", path.display()))?;
        Ok(SqliteSource { pool, path: path.to_path_buf() })
    }

    fn err(&self, e: sqlx::Error) -> types::Error {
        let shown = self.path.display().to_string();
        // SQLite result codes (primary code in the low byte): 5 BUSY, 6 LOCKED, 11 CORRUPT, 26 NOTADB.
        let code = match &e {
            sqlx::Error::Database(d) => d.code().and_then(|c| c.parse::<i32>().ok()).map(|c| c & 0xff),
            _ => None,
        };
        match code {
            Some(5 | 6) => types::Error::Unavailable(format!(
                "meta database {shown} is locked by another process (is Milvus 1.x still running? stop it, or copy \
                 meta.sqlite and read the copy): {e}"
            )),
            Some(11 | 26) => types::Error::InvalidInput(types::InvalidInput {
                file: shown,
                offset: None,
                reason: format!("the SQLite file is damaged, not a readable 1.x meta database: {e}"),
            }),
            _ => sql_error(&shown, e),
        }
    }
}

/// Whether the file's header marks a WAL database (format versions 2 at offsets 18 and 19).
fn wal_mode(path: &Path) -> bool {
    let mut head = [0u8; 20];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok()
        && head.starts_with(b"SQLite format 3\0")
        && head[18] == 2
        && head[19] == 2
}

/// Whether `<path>-wal` exists and is not empty.
fn has_wal_file(path: &Path) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(PathBuf::from(wal)).is_ok_and(|m| m.len() > 0)
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

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::{Connection, Executor};

    /// One connection, closed: in WAL mode the last close checkpoints and removes the -wal file.
    async fn make(path: &Path, wal: bool) {
        let opts = SqliteConnectOptions::new().filename(path).create_if_missing(true);
        let mut conn = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
        if wal {
            conn.execute("PRAGMA journal_mode = WAL").await.unwrap();
        }
        conn.execute("CREATE TABLE Tables (table_id TEXT)").await.unwrap();
        conn.close().await.unwrap();
    }

    fn siblings(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn a_cleanly_closed_wal_database_is_read_without_side_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.sqlite");
        make(&path, true).await;
        assert!(wal_mode(&path) && !has_wal_file(&path), "{:?}", siblings(dir.path()));
        let before = std::fs::read(&path).unwrap();
        let src = SqliteSource::open(&path).await.unwrap();
        assert_eq!(src.list_tables().await.unwrap(), ["Tables"]);
        src.pool.close().await;
        assert_eq!(siblings(dir.path()), ["meta.sqlite"]);
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[tokio::test]
    async fn locked_and_damaged_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.sqlite");
        make(&path, false).await;
        let mut holder = sqlx::SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(&path)).await.unwrap();
        holder.execute("BEGIN EXCLUSIVE").await.unwrap();
        let src = SqliteSource::open(&path).await.unwrap();
        let e = src.list_tables().await.unwrap_err();
        assert!(matches!(&e, types::Error::Unavailable(m) if m.contains("is locked by another process")), "{e:?}");
        holder.execute("ROLLBACK").await.unwrap();

        let junk = dir.path().join("junk.sqlite");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[100..].iter_mut().for_each(|b| *b = 0x5a);
        std::fs::write(&junk, bytes).unwrap();
        let e = SqliteSource::open(&junk).await.unwrap().list_tables().await.unwrap_err();
        assert!(matches!(&e, types::Error::InvalidInput(i) if i.reason.contains("damaged")), "{e:?}");
    }
}
