//! The MySQL meta (a real MariaDB, provisioned by scripts/mariadb.sh; MYSQL_URL names it): the
//! same installation written to MySQL and to SQLite must export to the same meta.json.

use std::path::Path;

use mm_tests::generate::write_mysql;
use mm_tests::samples::sample;
use mm_tests::tool::{dump_config, run, text};
use mm_tests::{generate, Generated};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// mysql://user:pw@host:port (no database), from MYSQL_URL.
fn server() -> (String, String, String) {
    let url = std::env::var("MYSQL_URL").unwrap_or_else(|_| "mysql://milvus:milvuspw@127.0.0.1:3306/milvus".into());
    let rest = url.strip_prefix("mysql://").expect("MYSQL_URL is mysql://...");
    let (cred, hostdb) = rest.split_once('@').unwrap();
    let host = hostdb.split('/').next().unwrap().to_string();
    (url.clone(), cred.to_string(), host)
}

/// A fresh database `mm_test_<n>` holding the sample's meta; returns its name.
async fn mysql_copy(g: &Generated) -> String {
    let (url, _, _) = server();
    let db = format!("mm_test_{}_{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() % 1_000_000_000);
    let pool = sqlx::mysql::MySqlPoolOptions::new().max_connections(1).connect(&url).await.unwrap_or_else(|e| {
        panic!("MariaDB at {url} is not reachable ({e}): run scripts/mariadb.sh ensure (scripts/test.sh does)")
    });
    sqlx::query(&format!("CREATE DATABASE {db}")).execute(&pool).await.unwrap();
    pool.close().await;
    let base = url.rsplit_once('/').unwrap().0;
    write_mysql(&g.meta_rows, &format!("{base}/{db}")).await.unwrap();
    db
}

/// Exports through the Go DSN `dsn` and from the SQLite copy; both meta.json must be equal.
fn exports_equal(dir: &Path, g: &Generated, dsn: &str) {
    let o = run(dir, &["export", "-m", dsn, "-o", s(&dir.join("from_mysql"))]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(dir, &["export", "-s", s(&g.meta_sqlite), "-o", s(&dir.join("from_sqlite"))]);
    assert!(o.status.success(), "{}", text(&o));
    let a = std::fs::read_to_string(dir.join("from_mysql/meta.json")).unwrap();
    let b = std::fs::read_to_string(dir.join("from_sqlite/meta.json")).unwrap();
    assert_eq!(a, b, "MySQL and SQLite exports differ");
}

#[tokio::test]
async fn export_from_mysql_with_the_guides_dsn_equals_export_from_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let g = generate(&sample(), &dir.path().join("src"), true).await.unwrap();
    let db = mysql_copy(&g).await;
    let (_, cred, host) = server();
    let dsn = format!("{cred}@tcp({host})/{db}?charset=utf8mb4&parseTime=True&loc=Local");
    exports_equal(dir.path(), &g, &dsn);

    // And dump straight from MySQL (meta.mode mysql, a mysql:// URL).
    let (url, _, _) = server();
    let base = url.rsplit_once('/').unwrap().0;
    let meta = format!("  mode: mysql\n  mysqlUrl: {base}/{db}");
    let cfg = dump_config(dir.path(), &meta, &g.tables, &dir.path().join("out"), "");
    let o = run(dir.path(), &["dump", "--config", s(&cfg)]);
    assert!(o.status.success(), "{}", text(&o));
    g.expected.check_dump(&dir.path().join("out")).unwrap();
}

#[tokio::test]
async fn wrong_password_and_unknown_host_are_named_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cred, host) = server();
    let user = cred.split(':').next().unwrap();
    let dsn = format!("{user}:not-the-Password-42@tcp({host})/milvus?charset=utf8mb4");
    let o = run(dir.path(), &["export", "-m", &dsn, "-o", s(&dir.path().join("o"))]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("access denied, check the user and password") && err.contains(&format!("{user}@")), "{}", text(&o));
    assert!(!err.contains("not-the-Password-42"), "password echoed: {err}");

    let o = run(dir.path(), &["export", "-m", "u:secret-pw@tcp(no-such-host.invalid:3306)/milvus", "-o", "o"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot reach the MySQL meta u@no-such-host.invalid:3306/milvus (-m)"), "{}", text(&o));
    assert!(!err.contains("secret-pw"), "password echoed: {err}");
    assert!(!dir.path().join("o/meta.json").exists());
}

/// The review's finding 12: a password with '?' (and '/', '@', ':') was cut at the first '?';
/// the Go driver splits after the database name. A real user with such a password exports.
#[tokio::test]
async fn a_password_with_the_dsn_separators_in_it_connects() {
    let dir = tempfile::tempdir().unwrap();
    let g = generate(&sample(), &dir.path().join("src"), true).await.unwrap();
    let db = mysql_copy(&g).await;
    let (_, _, host) = server();
    let user = std::env::var("MYSQL_Q_USER").expect("MYSQL_Q_USER (scripts/mariadb.sh ensure prints it)");
    let password = std::env::var("MYSQL_Q_PASSWORD").expect("MYSQL_Q_PASSWORD");
    assert!(password.contains('?') && password.contains('/'), "{password}");
    let dsn = format!("{user}:{password}@tcp({host})/{db}?charset=utf8mb4&parseTime=True&loc=Local");
    exports_equal(dir.path(), &g, &dsn);
}
