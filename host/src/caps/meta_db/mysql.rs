//! A 1.x MySQL meta, read-only: the Go driver's DSN (`user:pw@tcp(host:port)/db?params`, as
//! the guide writes it) or a `mysql://user:pw@host:port/db` URL.

use std::str::FromStr;

use anyhow::{anyhow, bail};
use async_trait::async_trait;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions, MySqlRow};
use sqlx::{ConnectOptions, Connection, Executor, Row, TypeInfo, ValueRef};

use super::{bind_params, sql_error, MetaSource};
use crate::bindings::types;

/// How long connecting may take (the first connection, and each one the pool opens).
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub struct MySqlSource {
    pool: MySqlPool,
    /// user@host:port/db, for messages (never the password).
    display: String,
}

/// Where a DSN points, without its password.
fn describe(o: &MySqlConnectOptions) -> String {
    format!("{}@{}:{}/{}", o.get_username(), o.get_host(), o.get_port(), o.get_database().unwrap_or(""))
}

/// Parses either DSN form. Go driver parameters (charset, parseTime, loc, ...) do not matter
/// for reading the meta and are ignored.
pub fn parse_dsn(dsn: &str) -> anyhow::Result<MySqlConnectOptions> {
    let dsn = dsn.trim();
    if dsn.starts_with("mysql://") || dsn.starts_with("mariadb://") {
        let url = dsn.replacen("mariadb://", "mysql://", 1);
        let url = url.split('?').next().unwrap_or("");
        return MySqlConnectOptions::from_str(url).map_err(|e| anyhow!("not a valid mysql:// URL: {e}"));
    }
    // As the Go driver: the database name follows the last '/', and parameters follow the first
    // '?' after it; the password may hold '?', '@', ':' or '/'.
    let Some((left, tail)) = dsn.rsplit_once('/') else {
        bail!("not a MySQL DSN: expected user:password@tcp(host:port)/dbname or mysql://user:password@host:port/dbname");
    };
    let db = tail.split('?').next().unwrap_or("");
    let (cred, addr) = left.rsplit_once('@').unwrap_or(("", left));
    let (user, pass) = cred.split_once(':').unwrap_or((cred, ""));
    let mut o = MySqlConnectOptions::new().username(user).password(pass).database(db);
    if let Some(a) = addr.strip_prefix("tcp(").and_then(|a| a.strip_suffix(')')) {
        let (host, port) = a.rsplit_once(':').unwrap_or((a, "3306"));
        let port = port.parse::<u16>().map_err(|_| anyhow!("port {port:?} in the DSN is not a number"))?;
        o = o.host(if host.is_empty() { "127.0.0.1" } else { host }).port(port);
    } else if let Some(sock) = addr.strip_prefix("unix(").and_then(|a| a.strip_suffix(')')) {
        o = o.socket(sock);
    } else if addr.is_empty() {
        o = o.host("127.0.0.1").port(3306);
    } else {
        bail!("unsupported address {addr:?} in the DSN: use tcp(host:port) or unix(/path)");
    }
    Ok(o)
}

impl MySqlSource {
    /// Connects read-only; `setting` names where the DSN came from (`-m`, `meta.mysqlUrl`).
    pub async fn open(dsn: &str, setting: &str) -> anyhow::Result<Self> {
        let opts = parse_dsn(dsn).map_err(|e| anyhow!("{setting}: {e}"))?.disable_statement_logging();
        let display = describe(&opts);
        let connect_error = |e: sqlx::Error| match &e {
            sqlx::Error::Database(d) if d.code().as_deref() == Some("28000") || d.message().contains("Access denied") => {
                anyhow!("MySQL meta {display} ({setting}): access denied, check the user and password: {}", d.message())
            }
            sqlx::Error::Database(d) => anyhow!("MySQL meta {display} ({setting}): {}", d.message()),
            _ => anyhow!("cannot reach the MySQL meta {display} ({setting}): {e}"),
        };
        // One direct connection first: the pool retries a refused connection until its timeout and
        // then reports only the timeout; this names the cause (refused, unknown host, password).
        match tokio::time::timeout(CONNECT_TIMEOUT, opts.connect()).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
            }
            Ok(Err(e)) => return Err(connect_error(e)),
            Err(_) => bail!("cannot reach the MySQL meta {display} ({setting}): no answer within {} s", CONNECT_TIMEOUT.as_secs()),
        }
        let pool = MySqlPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(CONNECT_TIMEOUT)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("SET SESSION TRANSACTION READ ONLY").await?;
                    Ok(())
                })
            })
            .connect_with(opts)
            .await
            .map_err(connect_error)?;
        Ok(MySqlSource { pool, display })
    }

    fn err(&self, e: sqlx::Error) -> types::Error {
        sql_error(&self.display, e)
    }
}

#[async_trait]
impl MetaSource for MySqlSource {
    async fn list_tables(&self) -> Result<Vec<String>, types::Error> {
        let rows = sqlx::query("SHOW TABLES").fetch_all(&self.pool).await.map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| {
                r.try_get_unchecked::<String, _>(0)
                    .or_else(|_| r.try_get_unchecked::<Vec<u8>, _>(0).map(|b| String::from_utf8_lossy(&b).into_owned()))
                    .map_err(|e| self.err(e))
            })
            .collect()
    }

    async fn query(&self, sql: &str, params: &[types::SqlValue]) -> Result<Vec<Vec<types::SqlValue>>, types::Error> {
        let q = bind_params(sqlx::query(sql), params);
        let rows = q.fetch_all(&self.pool).await.map_err(|e| self.err(e))?;
        rows.iter()
            .map(|row| (0..row.len()).map(|i| mysql_value(row, i).map_err(|e| self.err(e))).collect())
            .collect()
    }
}

/// One cell by its MySQL column type (SMALLINT dimension, VARCHAR ids, BIGINT sizes, ...).
fn mysql_value(row: &MySqlRow, i: usize) -> Result<types::SqlValue, sqlx::Error> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(types::SqlValue::Null);
    }
    let t = raw.type_info().name().to_ascii_uppercase();
    Ok(if t.contains("INT") {
        if t.contains("UNSIGNED") {
            types::SqlValue::Int(row.try_get_unchecked::<u64, _>(i)? as i64)
        } else {
            types::SqlValue::Int(row.try_get_unchecked::<i64, _>(i)?)
        }
    } else if t == "DOUBLE" {
        types::SqlValue::Real(row.try_get_unchecked::<f64, _>(i)?)
    } else if t == "FLOAT" {
        types::SqlValue::Real(row.try_get_unchecked::<f32, _>(i)? as f64)
    } else {
        match row.try_get_unchecked::<String, _>(i) {
            Ok(s) => types::SqlValue::Text(s),
            Err(_) => types::SqlValue::Blob(row.try_get_unchecked::<Vec<u8>, _>(i)?),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_driver_dsns() {
        let o = parse_dsn("root:p@ss:w0rd@tcp(db.example:3307)/milvus?charset=utf8mb4&parseTime=True&loc=Local").unwrap();
        assert_eq!(describe(&o), "root@db.example:3307/milvus");
        let o = parse_dsn("u:pw@tcp(127.0.0.1)/m").unwrap();
        assert_eq!(describe(&o), "u@127.0.0.1:3306/m");
        let o = parse_dsn("mysql://milvus:milvuspw@127.0.0.1:3306/milvus").unwrap();
        assert_eq!(describe(&o), "milvus@127.0.0.1:3306/milvus");
        assert!(parse_dsn("u:pw@tcp(h:notaport)/m").unwrap_err().to_string().contains("notaport"));
        assert!(parse_dsn("just words").is_err());
        // The review's finding 12: a '?' in the password.
        let o = parse_dsn("milvus:pa?ss/w@rd@tcp(127.0.0.1:3306)/milvus?charset=utf8").unwrap();
        assert_eq!(describe(&o), "milvus@127.0.0.1:3306/milvus");
    }
}
