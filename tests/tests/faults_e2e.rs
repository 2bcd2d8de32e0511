//! Bad inputs and faults not covered by bad_input_e2e.rs: each runs the built binary and checks
//! the exit code, the key parts of the message (file, setting, reason), that nothing claims a
//! complete result, and that no secret is printed. Services: MariaDB (scripts/mariadb.sh) and
//! the s3s-fs S3 server (scripts/s3.sh), as scripts/test.sh starts them; no Milvus.

mod fault_support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::ObjectStore;

use fault_support::*;
use mm_tests::generate::write_mysql;
use mm_tests::tool::{dump_config, run, text};
use mm_tests::Generated;

// ---- segment files and the meta's dimension ----

#[tokio::test]
async fn truncated_uid_names_file_and_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    let (id, seg) = segment(&g, 1);
    // 10 ids: 8 + 80 bytes; 3 bytes are lost.
    std::fs::OpenOptions::new().write(true).open(seg.join(format!("{id}.uid"))).unwrap().set_len(85).unwrap();
    let o = dump(dir.path(), &sqlite_config(dir.path(), &g, ""));
    assert_exit(
        &o,
        1,
        &[
            &format!("segment c/{id}"),
            &format!("invalid input in c/{id}/{id}.uid at offset 0"),
            "header says 80 payload bytes, so the file should be 88 bytes, but it is 85 bytes (truncated?)",
            "1 of 2 segment(s) failed; no manifest was written",
        ],
    );
    assert_no_output_for(&dir.path().join("out"), "c", &id);
}

#[tokio::test]
async fn dimension_that_does_not_match_the_row_width() {
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    let (id, _) = segment(&g, 0);
    // The files hold 10 rows of dim 4 (16 bytes); the meta says 8 (32 bytes per row).
    sql(&g.meta_sqlite, &["UPDATE Tables SET dimension = 8 WHERE table_id = 'c'"]).await;
    let cfg = sqlite_config(dir.path(), &g, "");
    let o = dump(dir.path(), &cfg);
    assert_exit(
        &o,
        1,
        &[
            &format!("invalid input in c/{id}/{id}.rv at offset 0"),
            &format!("expected 320 bytes of vectors (10 rows from c/{id}/{id}.uid x 32 bytes per 8-dim float row), found 160"),
            "2 of 2 segment(s) failed",
        ],
    );
    assert_no_output_for(&dir.path().join("out"), "c", &id);

    // Dim 12 (48 bytes): 160 bytes are not even whole rows.
    sql(&g.meta_sqlite, &["UPDATE Tables SET dimension = 12 WHERE table_id = 'c'"]).await;
    let o = dump(dir.path(), &cfg);
    assert_exit(&o, 1, &[&format!("c/{id}/{id}.rv"), "160 bytes is not a whole number of rows, so the dimension 12 does not match the row width"]);
    assert_no_output_for(&dir.path().join("out"), "c", &id);
}

#[tokio::test]
async fn binary_dimension_not_a_multiple_of_8() {
    let dir = tempfile::tempdir().unwrap();
    let g = install_spec(dir.path(), vec![collection("bits", 16, 3, 1, 10)]).await;
    sql(&g.meta_sqlite, &["UPDATE Tables SET dimension = 12 WHERE table_id = 'bits'"]).await;
    let why = "collection \"bits\": dimension 12 is not valid for binary vectors (binary dimensions are bits, a multiple of 8)";

    let o = run(dir.path(), &["export", "-s", s(&g.meta_sqlite), "-o", s(&dir.path().join("meta"))]);
    assert_exit(&o, 1, &["export failed: invalid input in meta table Tables", why]);
    assert!(!dir.path().join("meta/meta.json").exists());

    let o = dump(dir.path(), &sqlite_config(dir.path(), &g, ""));
    assert_exit(&o, 1, &["planning the dump failed", why]);
    assert!(files_under(&dir.path().join("out")).is_empty(), "{:?}", files_under(&dir.path().join("out")));
}

// ---- the meta database ----

/// The 0.11 snapshot meta (milvus-io/milvus 0.11 `SqliteEngine::Initialize`: Collection,
/// CollectionCommit, Partition, ..., FieldElement, in WAL mode). It has no Tables / TableFiles,
/// and its segments are laid out differently, so it is refused by name: this tool reads 0.9-1.x.
#[tokio::test]
async fn milvus_0_11_snapshot_meta_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("meta.sqlite");
    let common = "lsn BIGINT NOT NULL, state TINYINT NOT NULL, created_on BIGINT NOT NULL, updated_on BIGINT NOT NULL";
    let mut ddl = vec!["PRAGMA journal_mode = WAL".to_string()];
    for (table, cols) in [
        ("Collection", "id BIGINT PRIMARY KEY, name VARCHAR(255) NOT NULL, params VARCHAR(255) NOT NULL"),
        ("CollectionCommit", "id BIGINT PRIMARY KEY, collection_id BIGINT NOT NULL, schema_id BIGINT NOT NULL, mappings VARCHAR(255) NOT NULL, row_count UNSIGNED BIG INT NOT NULL, size UNSIGNED BIG INT NOT NULL"),
        ("Partition", "id BIGINT PRIMARY KEY, name VARCHAR(255) NOT NULL, collection_id BIGINT NOT NULL"),
        ("PartitionCommit", "id BIGINT PRIMARY KEY, collection_id BIGINT NOT NULL, partition_id BIGINT NOT NULL, mappings VARCHAR(255) NOT NULL, row_count UNSIGNED BIG INT NOT NULL, size UNSIGNED BIG INT NOT NULL"),
        ("Segment", "id BIGINT PRIMARY KEY, collection_id BIGINT NOT NULL, partition_id BIGINT NOT NULL, num BIGINT NOT NULL"),
        ("SegmentCommit", "id BIGINT PRIMARY KEY, schema_id BIGINT NOT NULL, partition_id BIGINT NOT NULL, segment_id BIGINT NOT NULL, mappings VARCHAR(255) NOT NULL, row_count UNSIGNED BIG INT NOT NULL, size UNSIGNED BIG INT NOT NULL"),
        ("SegmentFile", "id BIGINT PRIMARY KEY, collection_id BIGINT NOT NULL, partition_id BIGINT NOT NULL, segment_id BIGINT NOT NULL, field_element_id BIGINT NOT NULL, fetype BIGINT NOT NULL, row_count UNSIGNED BIG INT NOT NULL, size UNSIGNED BIG INT NOT NULL"),
        ("SchemaCommit", "id BIGINT PRIMARY KEY, collection_id BIGINT NOT NULL, mappings VARCHAR(255) NOT NULL"),
        ("Field", "id BIGINT PRIMARY KEY, name VARCHAR(255) NOT NULL, num BIGINT NOT NULL, ftype BIGINT NOT NULL, params VARCHAR(255) NOT NULL"),
        ("FieldCommit", "id BIGINT PRIMARY KEY, collection_id BIGINT NOT NULL, field_id BIGINT NOT NULL, mappings VARCHAR(255) NOT NULL"),
        ("FieldElement", "id BIGINT PRIMARY KEY, collection_id BIGINT NOT NULL, field_id BIGINT NOT NULL, name VARCHAR(255) NOT NULL, fetype BIGINT NOT NULL, type_name VARCHAR(255) NOT NULL, params VARCHAR(255) NOT NULL"),
    ] {
        ddl.push(format!("CREATE TABLE IF NOT EXISTS {table} ({cols}, {common})"));
    }
    ddl.push("INSERT INTO Collection VALUES (1, 'books', '{}', 0, 1, 0, 0)".into());
    sql(&db, &ddl.iter().map(String::as_str).collect::<Vec<_>>()).await;

    let o = run(dir.path(), &["export", "-s", s(&db), "-o", s(&dir.path().join("o"))]);
    assert_exit(
        &o,
        1,
        &["not a Milvus 0.9-1.x meta database: table Tables and TableFiles missing (it looks like the 0.11 snapshot meta, which is not supported)"],
    );
    assert!(!dir.path().join("o/meta.json").exists());
}

#[tokio::test]
async fn locked_sqlite_meta_names_the_lock() {
    use sqlx::{Connection, Executor};
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    // Another process (here: another connection) holds an exclusive lock, as a writing 1.x
    // server with a rollback journal does.
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(&g.meta_sqlite);
    let mut holder = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
    holder.execute("BEGIN EXCLUSIVE").await.unwrap();

    let locked = format!("meta database {} is locked by another process (is Milvus 1.x still running?", s(&g.meta_sqlite));
    let o = run(dir.path(), &["export", "-s", s(&g.meta_sqlite), "-o", s(&dir.path().join("meta"))]);
    assert_exit(&o, 1, &["export failed", &locked, "database is locked"]);
    assert!(!dir.path().join("meta/meta.json").exists());
    let o = dump(dir.path(), &sqlite_config(dir.path(), &g, ""));
    assert_exit(&o, 1, &["planning the dump failed", &locked]);
    assert!(files_under(&dir.path().join("out")).is_empty());

    holder.execute("ROLLBACK").await.unwrap();
    holder.close().await.unwrap();
    let o = run(dir.path(), &["export", "-s", s(&g.meta_sqlite), "-o", s(&dir.path().join("meta"))]);
    assert!(o.status.success(), "{}", text(&o));
}

#[tokio::test]
async fn corrupt_sqlite_meta_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    let good = std::fs::read(&g.meta_sqlite).unwrap();
    assert!(good.len() > 8192);
    // A valid header and page 1 (the schema), garbage in every later page.
    let mut bytes = good.clone();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for b in &mut bytes[4096..] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let db = dir.path().join("corrupt.sqlite");
    std::fs::write(&db, &bytes).unwrap();
    let o = run(dir.path(), &["export", "-s", s(&db), "-o", s(&dir.path().join("o"))]);
    assert_exit(
        &o,
        1,
        &[&format!("invalid input in {}: the SQLite file is damaged, not a readable 1.x meta database", s(&db)), "database disk image is malformed"],
    );
    assert!(!dir.path().join("o/meta.json").exists());

    // Garbage right after the 100-byte header, page 1 included.
    bytes[100..4096].iter_mut().for_each(|b| *b = 0xA5);
    std::fs::write(&db, &bytes).unwrap();
    let o = dump(dir.path(), &dump_config(dir.path(), &format!("  mode: sqlite\n  sqliteFile: {}", s(&db)), &g.tables, &dir.path().join("out"), &unpacked("")));
    assert_exit(&o, 1, &["planning the dump failed", &format!("invalid input in {}: the SQLite file is damaged", s(&db))]);
    assert!(files_under(&dir.path().join("out")).is_empty());
}

// ---- the MySQL meta ----

/// mysql://user:pw@host:port/db from MYSQL_URL (scripts/mariadb.sh prints it).
fn mysql_url() -> String {
    std::env::var("MYSQL_URL").unwrap_or_else(|_| "mysql://milvus:milvuspw@127.0.0.1:3306/milvus".into())
}

/// (user, password, host:port)
fn mysql_parts() -> (String, String, String) {
    let url = mysql_url();
    let rest = url.strip_prefix("mysql://").expect("MYSQL_URL is mysql://...");
    let (cred, hostdb) = rest.split_once('@').unwrap();
    let (user, pw) = cred.split_once(':').unwrap();
    (user.into(), pw.into(), hostdb.split('/').next().unwrap().into())
}

/// A fresh database holding `g`'s meta; returns its name.
async fn mysql_copy(g: &Generated) -> String {
    let url = mysql_url();
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros();
    let db = format!("mm_test_f{}_{}", std::process::id(), t % 1_000_000_000);
    let pool = sqlx::mysql::MySqlPoolOptions::new().max_connections(1).connect(&url).await.unwrap_or_else(|e| {
        panic!("MariaDB at {url} is not reachable ({e}): run scripts/mariadb.sh ensure (scripts/test.sh does)")
    });
    sqlx::query(&format!("CREATE DATABASE {db}")).execute(&pool).await.unwrap();
    pool.close().await;
    write_mysql(&g.meta_rows, &format!("{}/{db}", url.rsplit_once('/').unwrap().0)).await.unwrap();
    db
}

#[tokio::test]
async fn mysql_refused_names_the_server_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    let closed = ClosedPort::new();
    let port = closed.port;
    let started = std::time::Instant::now();
    let o = run(dir.path(), &["export", "-m", &format!("milvus:Pw-Secret-91@tcp(127.0.0.1:{port})/milvus?charset=utf8mb4"), "-o", "o"]);
    assert_exit(&o, 1, &[&format!("cannot reach the MySQL meta milvus@127.0.0.1:{port}/milvus (-m)"), "Connection refused"]);
    assert!(started.elapsed().as_secs() < 8, "a refused connection took {:?}", started.elapsed());
    assert_no_secret(&o, &["Pw-Secret-91"]);
    assert!(!dir.path().join("o/meta.json").exists());

    let meta = format!("  mode: mysql\n  mysqlUrl: mysql://milvus:Pw-Secret-91@127.0.0.1:{port}/milvus");
    let cfg = dump_config(dir.path(), &meta, &g.tables, &dir.path().join("out"), &unpacked(""));
    let o = dump(dir.path(), &cfg);
    assert_exit(&o, 1, &[&format!("cannot reach the MySQL meta milvus@127.0.0.1:{port}/milvus (meta.mysqlUrl)"), "Connection refused"]);
    assert_no_secret(&o, &["Pw-Secret-91"]);
    assert!(files_under(&dir.path().join("out")).is_empty());
}

/// A TCP proxy to `upstream` that drops the connection (and stops listening, so reconnects
/// are refused) when the client sends `pattern`: the server going away in the middle of a run.
struct CuttingProxy {
    port: u16,
    cut: Arc<AtomicBool>,
}

fn cutting_proxy(upstream: String, pattern: &'static [u8]) -> CuttingProxy {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let cut = Arc::new(AtomicBool::new(false));
    let flag = cut.clone();
    std::thread::spawn(move || {
        while !flag.load(Ordering::SeqCst) {
            let client = match listener.accept() {
                Ok((c, _)) => c,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    continue;
                }
                Err(_) => break,
            };
            client.set_nonblocking(false).unwrap();
            let Ok(server) = TcpStream::connect(&upstream) else { break };
            let (mut from_server, mut to_client) = (server.try_clone().unwrap(), client.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut from_server, &mut to_client);
                let _ = to_client.shutdown(std::net::Shutdown::Both);
            });
            let flag = flag.clone();
            std::thread::spawn(move || {
                let (mut client, mut server) = (client, server);
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    let n = match client.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if buf[..n].windows(pattern.len()).any(|w| w == pattern) {
                        flag.store(true, Ordering::SeqCst);
                        break;
                    }
                    if server.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = server.shutdown(std::net::Shutdown::Both);
                let _ = client.shutdown(std::net::Shutdown::Both);
            });
        }
        // The listener is dropped here: from now on connections are refused.
    });
    CuttingProxy { port, cut }
}

#[tokio::test]
async fn mysql_connection_lost_mid_export() {
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    let db = mysql_copy(&g).await;
    let (user, pw, host) = mysql_parts();
    // Connecting and reading `Tables` work; the server goes away when TableFiles is queried.
    let proxy = cutting_proxy(host, b"FROM TableFiles");
    let dsn = format!("{user}:{pw}@tcp(127.0.0.1:{})/{db}?charset=utf8mb4", proxy.port);
    let o = run(dir.path(), &["export", "-m", &dsn, "-o", s(&dir.path().join("o"))]);
    assert!(proxy.cut.load(Ordering::SeqCst), "the export never queried TableFiles: {}", text(&o));
    assert_exit(
        &o,
        1,
        &["export failed: unavailable: ", &format!("meta database {user}@127.0.0.1:{}/{db}: the connection failed or was closed", proxy.port)],
    );
    assert_no_secret(&o, &[&format!(":{pw}@")]);
    assert!(!dir.path().join("o/meta.json").exists(), "a meta.json from half a database");

    // The same during a dump's planning (meta.mode mysql).
    let proxy = cutting_proxy(mysql_parts().2, b"FROM TableFiles");
    let meta = format!("  mode: mysql\n  mysqlUrl: mysql://{user}:{pw}@127.0.0.1:{}/{db}", proxy.port);
    let o = dump(dir.path(), &dump_config(dir.path(), &meta, &g.tables, &dir.path().join("out"), &unpacked("")));
    assert!(proxy.cut.load(Ordering::SeqCst), "{}", text(&o));
    assert_exit(
        &o,
        1,
        &["planning the dump failed: unavailable: ", &format!("meta database {user}@127.0.0.1:{}/{db}: the connection failed or was closed", proxy.port)],
    );
    assert_no_secret(&o, &[&format!(":{pw}@")]);
    assert!(files_under(&dir.path().join("out")).is_empty());
}

// ---- S3 sources (s3s-fs on 127.0.0.1:9000; no Milvus needed) ----

fn var(k: &str, default: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| default.into())
}

fn s3_host() -> String {
    var("S3_ENDPOINT", "http://127.0.0.1:9000").trim_start_matches("http://").to_string()
}

fn ak() -> String {
    var("S3_ACCESS_KEY", "minioadmin")
}

fn sk() -> String {
    var("S3_SECRET_KEY", "minioadmin")
}

fn source_bucket() -> String {
    var("S3_SOURCE_BUCKET", "source-bucket")
}

/// The 1.x tables of `g` under `<prefix>/tables` in the source bucket.
async fn upload_tables(g: &Generated, prefix: &str) {
    let store = AmazonS3Builder::new()
        .with_endpoint(format!("http://{}", s3_host()))
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_region("us-east-1")
        .with_bucket_name(source_bucket())
        .with_access_key_id(ak())
        .with_secret_access_key(sk())
        .build()
        .unwrap();
    for rel in files_under(&g.tables) {
        let bytes = std::fs::read(g.tables.join(&rel)).unwrap();
        store.put(&Key::from(format!("{prefix}/tables/{rel}")), bytes.into()).await.unwrap_or_else(|e| {
            panic!("upload to the S3 server at {} failed ({e}): run scripts/s3.sh start (scripts/test.sh does)", s3_host())
        });
    }
}

fn unique(prefix: &str) -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros();
    format!("{prefix}_{}_{}", std::process::id(), t % 1_000_000_000)
}

/// A dump config with meta.sqlite, a bucket source (`endpoint`, `bucket`, `secret`) and a local target.
fn s3_source_config(dir: &Path, g: &Generated, endpoint: &str, bucket: &str, secret: &str, prefix: &str) -> std::path::PathBuf {
    let yaml = format!(
        "dumper:\n  worker:\n    workMode: milvus1x\nmeta:\n  mode: sqlite\n  sqliteFile: {}\nsource:\n  mode: remote\n  remote:\n\
         \x20   cloud: aws\n    endpoint: {endpoint}\n    region: us-east-1\n    bucket: {bucket}\n    ak: {}\n    sk: {secret}\n\
         \x20   useIAM: false\n    useSSL: false\n    checkBucket: false\n    tablesDir: {prefix}/tables\n\
         target:\n  mode: local\n  local:\n    outputDir: {}\nmigration:\n  packSegments: false\n",
        s(&g.meta_sqlite),
        ak(),
        s(&dir.join("out")),
    );
    let path = dir.join("migration.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

#[tokio::test]
async fn s3_wrong_secret_is_access_denied_and_no_key_is_printed() {
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    let prefix = unique("faults");
    upload_tables(&g, &prefix).await;
    let cfg = s3_source_config(dir.path(), &g, &s3_host(), &source_bucket(), "Wr0ng-Secret-Key-77", &prefix);
    let o = dump(dir.path(), &cfg);
    assert_exit(
        &o,
        1,
        &[
            &format!("bucket \"{}\" (source.remote.bucket) at {}: access denied, check source.remote.ak / .sk (or useIAM)", source_bucket(), s3_host()),
            "403 Forbidden",
        ],
    );
    assert_no_secret(&o, &["Wr0ng-Secret-Key-77", &ak(), &sk()]);
    assert!(files_under(&dir.path().join("out")).is_empty());

    // The right key works (the fault was the key, nothing else).
    let cfg = s3_source_config(dir.path(), &g, &s3_host(), &source_bucket(), &sk(), &prefix);
    let o = dump(dir.path(), &cfg);
    assert!(o.status.success(), "{}", text(&o));
    assert_no_secret(&o, &[&ak(), &sk()]);
    g.expected.check_dump(&dir.path().join("out")).unwrap();
}

#[tokio::test]
async fn s3_missing_bucket_and_missing_objects_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    let prefix = unique("faults");
    upload_tables(&g, &prefix).await;

    // 404 for the bucket: named, and a source bucket is never created (it should hold the data).
    let missing = unique("no-such-bucket").replace('_', "-");
    let cfg = s3_source_config(dir.path(), &g, &s3_host(), &missing, &sk(), &prefix);
    std::fs::write(&cfg, std::fs::read_to_string(&cfg).unwrap().replace("checkBucket: false", "checkBucket: true")).unwrap();
    let o = dump(dir.path(), &cfg);
    assert_exit(
        &o,
        1,
        &[&format!("bucket \"{missing}\" (source.remote.bucket) at {} does not exist: it should hold the 1.x tables", s3_host())],
    );
    assert_no_secret(&o, &[&ak(), &sk()]);
    assert!(files_under(&dir.path().join("out")).is_empty());

    // 404 for objects: one segment's .rv is gone, and a prefix that holds nothing.
    let (id, _) = segment(&g, 1);
    let cfg = s3_source_config(dir.path(), &g, &s3_host(), &source_bucket(), &sk(), &prefix);
    let store = AmazonS3Builder::new()
        .with_endpoint(format!("http://{}", s3_host()))
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_bucket_name(source_bucket())
        .with_access_key_id(ak())
        .with_secret_access_key(sk())
        .build()
        .unwrap();
    store.delete(&Key::from(format!("{prefix}/tables/c/{id}/{id}.rv"))).await.unwrap();
    let o = dump(dir.path(), &cfg);
    assert_exit(
        &o,
        1,
        &[
            &format!("segment c/{id} (source s3://{}/{prefix}/tables, target ", source_bucket()),
            &format!("not found: no .rv file in segment directory c/{id} (it holds: {id}.uid, bloom_filter, deleted_docs)"),
        ],
    );
    assert_no_output_for(&dir.path().join("out"), "c", &id);

    let cfg = s3_source_config(dir.path(), &g, &s3_host(), &source_bucket(), &sk(), &unique("empty"));
    let o = dump(dir.path(), &cfg);
    assert_exit(&o, 1, &[&format!("not found: segment directory c/{id} of collection \"c\" is missing or empty"), "2 of 2 segment(s) failed"]);
    assert_no_secret(&o, &[&ak(), &sk()]);
}

#[tokio::test]
async fn s3_endpoint_refused_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    let closed = ClosedPort::new();
    let port = closed.port;
    let cfg = s3_source_config(dir.path(), &g, &format!("127.0.0.1:{port}"), &source_bucket(), &sk(), "x");
    let started = std::time::Instant::now();
    let o = dump(dir.path(), &cfg);
    assert_exit(
        &o,
        1,
        &[
            &format!("bucket \"{}\" (source.remote.bucket) at 127.0.0.1:{port}: cannot reach the store (source.remote.endpoint)", source_bucket()),
            "Connection refused",
        ],
    );
    assert!(started.elapsed().as_secs() < 60, "took {:?}", started.elapsed());
    assert_no_secret(&o, &[&ak(), &sk()]);
    assert!(files_under(&dir.path().join("out")).is_empty());
}

// ---- the local target ----

/// A small tmpfs, unmounted on drop (needs root, as the tests run here).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let st = std::process::Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", s(dir)]).status().unwrap();
        assert!(st.success(), "mount -t tmpfs failed: this test needs root (or CAP_SYS_ADMIN) to make a full disk");
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").args(["-l", s(&self.0)]).status();
    }
}

#[tokio::test]
async fn disk_full_target_names_the_file_and_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    // A first segment that fits (1000 rows: ~40 KB), a second that cannot (20000 rows: ~800 KB).
    let mut spec = collection("c", 8, 1, 2, 1000);
    spec.segments[1].rows = 20_000;
    let g = install_spec(dir.path(), vec![spec]).await;
    let (good, _) = segment(&g, 0);
    let (id, _) = segment(&g, 1);
    let disk = dir.path().join("disk");
    let _mounted = Tmpfs::mount(&disk, "256k");
    let out = disk.join("out");
    // Segments alone (not packed), one at a time, so the first one completes before the disk fills.
    let cfg = dump_config(dir.path(), &format!("  mode: sqlite\n  sqliteFile: {}", s(&g.meta_sqlite)), &g.tables, &out, &unpacked(""));
    std::fs::write(&cfg, std::fs::read_to_string(&cfg).unwrap().replacen("limit: 2", "limit: 1", 1)).unwrap();
    let o = dump(dir.path(), &cfg);
    assert_exit(
        &o,
        1,
        &[
            &format!("failed: segment c/{id}"),
            &format!("target {})", s(&out)),
            &format!("target c/_default/{id}/"),
            "No space left on device",
            "1 of 2 segment(s) failed; no manifest was written",
        ],
    );
    assert_no_output_for(&out, "c", &id);
    // Only complete files, under their final names: the first segment's two npy files.
    assert_eq!(files_under(&out), [format!("c/_default/{good}/data.npy"), format!("c/_default/{good}/id.npy")]);
}

// ---- migration.yaml and the command line ----

#[tokio::test]
async fn yaml_syntax_errors_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    // Without a migration: section, so each case can add one.
    let cfg = dump_config(dir.path(), &format!("  mode: sqlite\n  sqliteFile: {}", s(&g.meta_sqlite)), &g.tables, &dir.path().join("out"), "");
    let good = std::fs::read_to_string(&cfg).unwrap();

    // Line 4 indented by 3 spaces instead of 4.
    std::fs::write(&cfg, good.replacen("    workMode: milvus1x", "   workMode: milvus1x", 1)).unwrap();
    let o = dump(dir.path(), &cfg);
    assert_exit(&o, 2, &[&format!("error: {}: did not find expected key at line 4 column 4", s(&cfg))]);

    // A tab (YAML allows none for indentation) on line 20.
    std::fs::write(&cfg, format!("{good}migration:\n\tidField: pk\n")).unwrap();
    let o = dump(dir.path(), &cfg);
    assert_exit(&o, 2, &["found character that cannot start any token at line 21 column 1"]);

    // An unclosed quote on line 19.
    std::fs::write(&cfg, good.replacen("outputDir: ", "outputDir: \"", 1)).unwrap();
    let o = dump(dir.path(), &cfg);
    assert_exit(&o, 2, &[s(&cfg), "line 19"]);
    assert!(!dir.path().join("out").exists(), "a configuration error wrote output");
}

#[tokio::test]
async fn unknown_and_mistyped_keys_name_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    // Without a migration: section, so each case can add one.
    let cfg = dump_config(dir.path(), &format!("  mode: sqlite\n  sqliteFile: {}", s(&g.meta_sqlite)), &g.tables, &dir.path().join("out"), "");
    let good = std::fs::read_to_string(&cfg).unwrap();
    let cases = [
        (good.replacen("tablesDir:", "tableDir:", 1), "source.local: unknown field `tableDir`, expected `tablesDir` at line 15 column 5"),
        (good.replacen("target:", "targt:", 1), "unknown field `targt`, expected one of"),
        (good.replacen("limit: 2", "limit: two", 1), "dumper.worker.limit: invalid type: string \"two\", expected usize at line 3 column 12"),
        (format!("{good}migration:\n  sandbox:\n    memoryMiB: lots\n"), "migration.sandbox.memoryMiB: invalid type: string \"lots\", expected u64 at line 22"),
        (format!("{good}migration:\n  index: keep\n  index: none\n"), "migration: duplicate field `index` at line 21"),
    ];
    for (yaml, needle) in cases {
        std::fs::write(&cfg, &yaml).unwrap();
        let o = dump(dir.path(), &cfg);
        assert_exit(&o, 2, &[s(&cfg), needle]);
    }
    // Valid YAML, invalid values: every problem at once, each naming its key.
    std::fs::write(&cfg, good.replacen("limit: 2", "limit: 0", 1).replacen("workMode: milvus1x", "workMode: milvus2x", 1)).unwrap();
    let o = dump(dir.path(), &cfg);
    assert_exit(&o, 2, &["dumper.worker.workMode \"milvus2x\": only milvus1x is supported", "dumper.worker.limit must be at least 1"]);
    assert!(!dir.path().join("out").exists(), "a configuration error wrote output");
}

#[test]
fn conflicting_export_options_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), &["export", "-s", "meta.sqlite", "-m", "u:Pw-Secret-5@tcp(h:3306)/m", "-o", "o"]);
    assert_exit(&o, 2, &["the argument '--sqlite <FILE>' cannot be used with '--mysql <DSN>'"]);
    assert_no_secret(&o, &["Pw-Secret-5"]);
    let o = run(dir.path(), &["export", "-o", "o"]);
    assert_exit(&o, 2, &["the following required arguments were not provided", "<--mysql <DSN>|--sqlite <FILE>>"]);
    let o = run(dir.path(), &["export", "-s", "meta.sqlite"]);
    assert_exit(&o, 2, &["--output <DIR>"]);
    let o = run(dir.path(), &["dump", "--config"]);
    assert_exit(&o, 2, &["a value is required for '--config <FILE>'"]);
    let o = run(dir.path(), &["export", "-s", s(&dir.path().join("missing.sqlite")), "-o", "o"]);
    assert_exit(&o, 2, &[&format!("meta database {} does not exist or is not a file", s(&dir.path().join("missing.sqlite")))]);
    assert!(!dir.path().join("o").exists());
}

#[tokio::test]
async fn contradictory_settings_are_usage_errors_naming_both_keys() {
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    let remote_target = |extra: &str| {
        format!(
            "target:\n  mode: remote\n  remote:\n    outputDir: x\n    cloud: aws\n    endpoint: http://127.0.0.1:9\n    bucket: b\n{extra}"
        )
    };
    let cases: Vec<(String, &str)> = vec![
        // The output inside the 1.x tables directory.
        (String::new(), "is inside source.local.tablesDir"),
        ("migration:\n  idField: v\n  vectorField: v\n".into(), "migration.idField and migration.vectorField are both \"v\""),
        ("migration:\n  milvus:\n    caCert: /tmp/ca.pem\n".into(), "migration.milvus.caCert /tmp/ca.pem is set but migration.milvus.tls is false"),
        (remote_target("    useSSL: true\n    ak: a\n    sk: s\n"), "target.remote.useSSL is true but target.remote.endpoint \"http://127.0.0.1:9\" says http://"),
        (remote_target("    useSSL: false\n    ak: a\n    sk: Sk-Secret-9\n").replace("http://", "https://"), "target.remote.useSSL is false but target.remote.endpoint \"https://127.0.0.1:9\" says https://"),
    ];
    for (i, (extra, needle)) in cases.into_iter().enumerate() {
        let out = if i == 0 { g.tables.join("out") } else { dir.path().join("out") };
        let mut yaml = std::fs::read_to_string(sqlite_config(dir.path(), &g, &extra)).unwrap();
        yaml = yaml.replace(s(&dir.path().join("out")), s(&out));
        if extra.starts_with("target:") {
            // Drop the local target the helper wrote; the case brings its own.
            let start = yaml.find("target:\n  mode: local").unwrap();
            let end = yaml[start..].find("outputDir").map(|k| start + k + yaml[start + k..].find('\n').unwrap() + 1).unwrap();
            yaml.replace_range(start..end, "");
        }
        let cfg = dir.path().join("conflict.yaml");
        std::fs::write(&cfg, yaml).unwrap();
        let o = dump(dir.path(), &cfg);
        assert_exit(&o, 2, &[needle]);
        assert_no_secret(&o, &["Sk-Secret-9"]);
        assert!(!out.exists(), "a configuration error wrote output");
    }
}

#[tokio::test]
async fn secrets_appear_in_no_help_log_error_or_report() {
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    let secrets = ["Ak-Secret-7", "Sk-Secret-7", "Pw-Secret-7", "Env-Sk-Secret-7", "Env-Pw-Secret-7"];
    let envs = [("MILVUS_MIGRATION_SOURCE_SK", "Env-Sk-Secret-7"), ("MILVUS_MIGRATION_MILVUS_PASSWORD", "Env-Pw-Secret-7")];
    let with_env = |args: &[&str]| {
        let mut c = std::process::Command::new(mm_tests::tool::binary());
        c.current_dir(dir.path()).args(args).envs(envs);
        c.output().unwrap()
    };
    for args in [&["--help"][..], &["dump", "--help"], &["load", "--help"], &["migrate", "--help"], &["export", "--help"]] {
        let o = with_env(args);
        assert!(o.status.success());
        assert_no_secret(&o, &secrets);
    }
    // A verbose load that fails: Milvus unreachable, target in a bucket with keys in the file.
    let yaml = format!(
        "meta:\n  mode: sqlite\n  sqliteFile: {}\nsource:\n  mode: local\n  local:\n    tablesDir: {}\n\
         target:\n  mode: remote\n  remote:\n    outputDir: x\n    cloud: aws\n    endpoint: 127.0.0.1:9\n    bucket: b\n    ak: Ak-Secret-7\n    sk: Sk-Secret-7\n\
         \x20 milvus2x:\n    endpoint: 127.0.0.1:1\n    username: root\n    password: Pw-Secret-7\n",
        s(&g.meta_sqlite),
        s(&g.tables)
    );
    let cfg = dir.path().join("secret.yaml");
    std::fs::write(&cfg, yaml).unwrap();
    let report = dir.path().join("report.json");
    for cmd in ["load", "migrate", "dump"] {
        let o = with_env(&["-vv", cmd, "--config", s(&cfg), "--report", s(&report)]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert_no_secret(&o, &secrets);
        let r = std::fs::read_to_string(&report).unwrap();
        assert!(r.contains("\"outcome\": \"failed\""), "{r}");
        for sec in secrets {
            assert!(!r.contains(sec), "{sec} in the report: {r}");
        }
    }
}
