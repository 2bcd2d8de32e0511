//! The `meta-db` capability: a read-only SQL database (SQLite or MySQL), schema-agnostic.

mod mysql;
mod sqlite;

pub use mysql::{parse_dsn, MySqlSource};
pub use sqlite::SqliteSource;

use std::sync::Arc;

use async_trait::async_trait;

use super::HostError;
use crate::bindings::{meta_db, types};

/// A meta database backend.
#[async_trait]
pub trait MetaSource: Send + Sync {
    async fn list_tables(&self) -> Result<Vec<String>, types::Error>;
    async fn query(&self, sql: &str, params: &[types::SqlValue]) -> Result<Vec<Vec<types::SqlValue>>, types::Error>;
}

/// The capability's state in a store: the source, when the unit of work was granted one.
#[derive(Default)]
pub struct MetaDbState {
    pub source: Option<Arc<dyn MetaSource>>,
}

impl MetaDbState {
    fn source(&self) -> Result<&Arc<dyn MetaSource>, HostError> {
        self.source
            .as_ref()
            .ok_or_else(|| types::Error::AccessDenied("no meta database was granted to this unit of work".into()).into())
    }
}

impl meta_db::Host for MetaDbState {
    async fn list_tables(&mut self) -> Result<Vec<String>, HostError> {
        Ok(self.source()?.list_tables().await?)
    }

    async fn query(&mut self, sql: String, params: Vec<types::SqlValue>) -> Result<Vec<Vec<types::SqlValue>>, HostError> {
        let head = sql.trim_start().split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        if head != "SELECT" && head != "WITH" {
            return Err(types::Error::AccessDenied(format!("the meta database is read-only; refused: {sql}")).into());
        }
        Ok(self.source()?.query(&sql, &params).await?)
    }
}

impl types::Host for MetaDbState {
    fn convert_error(&mut self, e: HostError) -> wasmtime::Result<types::Error> {
        super::convert(e)
    }
}

/// Binds the guest's `?` parameters, for any database sqlx encodes these types for.
pub(crate) fn bind_params<'q, DB>(
    mut q: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    params: &[types::SqlValue],
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    f64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    for p in params {
        q = match p {
            types::SqlValue::Null => q.bind(None::<i64>),
            types::SqlValue::Int(i) => q.bind(*i),
            types::SqlValue::Real(f) => q.bind(*f),
            types::SqlValue::Text(s) => q.bind(s.clone()),
            types::SqlValue::Blob(b) => q.bind(b.clone()),
        };
    }
    q
}

/// sqlx errors as guest errors; `what` names the database for the user (never its password).
pub(crate) fn sql_error(what: &str, e: sqlx::Error) -> types::Error {
    let msg = format!("meta database {what}: {e}");
    match e {
        sqlx::Error::Io(_) => types::Error::Unavailable(format!("meta database {what}: the connection failed or was closed: {e}")),
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => types::Error::Unavailable(msg),
        sqlx::Error::Database(d) => types::Error::Remote(types::RemoteError {
            code: d.code().and_then(|c| c.parse().ok()).unwrap_or(0),
            reason: msg,
        }),
        _ => types::Error::Other(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
    use std::path::Path;

    #[tokio::test]
    async fn reads_rows_by_storage_class_and_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sqlite");
        {
            let opts = SqliteConnectOptions::new().filename(&path).create_if_missing(true);
            let pool = SqlitePool::connect_with(opts).await.unwrap();
            sqlx::query("CREATE TABLE Tables (table_id TEXT, dimension INTEGER, x REAL, b BLOB)").execute(&pool).await.unwrap();
            sqlx::query("INSERT INTO Tables VALUES ('c', 16, 0.5, x'0102'), ('d', NULL, NULL, NULL)").execute(&pool).await.unwrap();
            pool.close().await;
        }
        let src = SqliteSource::open(&path).await.unwrap();
        assert_eq!(src.list_tables().await.unwrap(), ["Tables"]);
        let rows = src.query("SELECT table_id, dimension, x, b FROM Tables ORDER BY table_id", &[]).await.unwrap();
        assert!(matches!(&rows[0][0], types::SqlValue::Text(t) if t == "c"));
        assert!(matches!(rows[0][1], types::SqlValue::Int(16)));
        assert!(matches!(rows[0][2], types::SqlValue::Real(x) if x == 0.5));
        assert!(matches!(&rows[0][3], types::SqlValue::Blob(b) if b == &[1, 2]));
        assert!(matches!(rows[1][1], types::SqlValue::Null));

        let mut state = MetaDbState { source: Some(Arc::new(src)) };
        let e = meta_db::Host::query(&mut state, "DELETE FROM Tables".into(), vec![]).await.unwrap_err();
        assert!(matches!(e, HostError::Wit(types::Error::AccessDenied(_))));
        // Even a write disguised past the keyword check fails: the connection is read-only.
        let e = meta_db::Host::query(&mut state, "WITH x AS (SELECT 1) INSERT INTO Tables SELECT 'e',1,1,1 FROM x".into(), vec![])
            .await
            .unwrap_err();
        assert!(matches!(e, HostError::Wit(_)), "{e:?}");
    }

    #[tokio::test]
    async fn missing_file_is_named() {
        let e = SqliteSource::open(Path::new("/nonexistent/meta.sqlite")).await.err().unwrap().to_string();
        assert!(e.contains("/nonexistent/meta.sqlite"), "{e}");
    }
}
