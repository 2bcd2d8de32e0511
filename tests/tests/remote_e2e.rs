//! Buckets: a 1.x installation in a source bucket (meta in MariaDB or in the bucket), dumped
//! into the bucket of a Milvus 2.3.5 that runs on the same S3 server (s3s-fs), loaded and
//! verified. scripts/test.sh starts s3s-fs and Milvus in `minio` storage mode for these.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::ObjectStore;

use mm_tests::generate::write_mysql;
use mm_tests::tool::{run, text};
use mm_tests::{generate, CollectionSpec, Generated, PartitionSpec, SegmentSpec, Spec};

fn var(k: &str, default: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| default.into())
}

fn s3_host() -> String {
    var("S3_ENDPOINT", "http://127.0.0.1:9000").trim_start_matches("http://").to_string()
}

fn require_minio_milvus() {
    let mode = var("MILVUS_STORAGE", "");
    assert_eq!(mode, "minio", "these tests need Milvus on S3 storage and s3s-fs: run scripts/test.sh (MILVUS_STORAGE={mode:?})");
}

fn bucket(name: &str, secret: &str) -> Arc<dyn ObjectStore> {
    Arc::new(
        AmazonS3Builder::new()
            .with_endpoint(format!("http://{}", s3_host()))
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_region("us-east-1")
            .with_bucket_name(name)
            .with_access_key_id(var("S3_ACCESS_KEY", "minioadmin"))
            .with_secret_access_key(secret)
            .build()
            .unwrap(),
    )
}

fn unique(prefix: &str) -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros();
    format!("{prefix}_{}_{}", std::process::id(), t % 1_000_000_000)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Uploads every file under `dir` to `prefix/<relative path>`.
async fn upload_dir(store: &dyn ObjectStore, dir: &Path, prefix: &str) {
    for p in mm_tests::tool::files_under(dir) {
        let rel = p.strip_prefix(dir).unwrap().to_str().unwrap();
        store.put(&Key::from(format!("{prefix}/{rel}")), std::fs::read(&p).unwrap().into()).await.unwrap();
    }
}

fn spec(name: &str) -> Spec {
    let seg = |rows, deleted: &[i32]| SegmentSpec { rows, deleted: deleted.to_vec(), ..Default::default() };
    Spec {
        seed: 21,
        collections: vec![
            CollectionSpec {
                name: name.into(),
                dim: 8,
                metric: 2,
                engine_type: 1,
                index_params: "{}".into(),
                dropped: false,
                segments: vec![seg(500, &[499, 2, 2, 250]), seg(120, &[])],
                partitions: vec![PartitionSpec { tag: "east/1".into(), dropped: false, segments: vec![seg(80, &[0])] }],
            },
            CollectionSpec {
                name: format!("{name}_bin"),
                dim: 32,
                metric: 3,
                engine_type: 9,
                index_params: "{}".into(),
                dropped: false,
                segments: vec![seg(90, &[1, 89])],
                partitions: vec![],
            },
        ],
    }
}

/// `source` and `meta` are the yaml section bodies; the target is always Milvus' bucket.
fn config(dir: &Path, meta: &str, source: &str, out_prefix: &str, target_extra: &str) -> PathBuf {
    let yaml = format!(
        "dumper:\n  worker:\n    workMode: milvus1x\nmeta:\n{meta}\nsource:\n{source}\ntarget:\n  mode: remote\n  remote:\n\
         \x20   outputDir: {out_prefix}\n    cloud: aws\n    endpoint: {}\n    region: us-east-1\n    bucket: {}\n\
         \x20   ak: {}\n    sk: {}\n    useIAM: false\n    useSSL: false\n    checkBucket: false\n{target_extra}\
         \x20 milvus2x:\n    endpoint: {}\n",
        s3_host(),
        var("MILVUS_BUCKET", "milvus-bucket"),
        var("S3_ACCESS_KEY", "minioadmin"),
        var("S3_SECRET_KEY", "minioadmin"),
        var("MILVUS_ENDPOINT", "127.0.0.1:19530"),
    );
    let path = dir.join("migration.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

fn remote_source(prefix: &str) -> String {
    format!(
        "  mode: remote\n  remote:\n    cloud: aws\n    endpoint: {}\n    region: us-east-1\n    bucket: {}\n    ak: {}\n    sk: {}\n\
         \x20   useIAM: false\n    useSSL: false\n    checkBucket: false\n    tablesDir: {prefix}/tables",
        s3_host(),
        var("S3_SOURCE_BUCKET", "source-bucket"),
        var("S3_ACCESS_KEY", "minioadmin"),
        var("S3_SECRET_KEY", "minioadmin"),
    )
}

fn cmd(dir: &Path, cfg: &Path, args: &[&str]) -> Output {
    let c = format!("--config={}", s(cfg));
    let mut all = args.to_vec();
    all.push(&c);
    run(dir, &all)
}

async fn installation(dir: &Path, name: &str) -> Generated {
    generate(&spec(name), &dir.join("src"), true).await.unwrap()
}

#[tokio::test]
async fn remote_mysql_meta_and_bucket_source_into_milvus_bucket() {
    require_minio_milvus();
    let dir = tempfile::tempdir().unwrap();
    let name = unique("rb");
    let g = installation(dir.path(), &name).await;
    // The 1.x installation: meta in MariaDB, tables/ in the source bucket.
    let url = var("MYSQL_URL", "mysql://milvus:milvuspw@127.0.0.1:3306/milvus");
    let db = unique("mm_test");
    let pool = sqlx::mysql::MySqlPoolOptions::new().max_connections(1).connect(&url).await.expect("MariaDB (scripts/mariadb.sh)");
    sqlx::query(&format!("CREATE DATABASE {db}")).execute(&pool).await.unwrap();
    let base = url.rsplit_once('/').unwrap().0.to_string();
    write_mysql(&g.meta_rows, &format!("{base}/{db}")).await.unwrap();
    let src = bucket(&var("S3_SOURCE_BUCKET", "source-bucket"), &var("S3_SECRET_KEY", "minioadmin"));
    upload_dir(src.as_ref(), &g.tables, &format!("{name}/tables")).await;

    // export -m with the guide's DSN, then meta.json goes to the source bucket (meta.mode remote).
    let cred_host = base.trim_start_matches("mysql://");
    let (cred, host) = cred_host.split_once('@').unwrap();
    let dsn = format!("{cred}@tcp({host})/{db}?charset=utf8mb4&parseTime=True&loc=Local");
    let o = run(dir.path(), &["export", "-m", &dsn, "-o", s(&dir.path().join("meta"))]);
    assert!(o.status.success(), "{}", text(&o));
    src.put(&Key::from(format!("{name}/meta.json")), std::fs::read(dir.path().join("meta/meta.json")).unwrap().into())
        .await
        .unwrap();

    let meta = format!("  mode: remote\n  remoteMetaFile: {name}/meta.json");
    let cfg = config(dir.path(), &meta, &remote_source(&name), &format!("migration/{name}"), "");
    let o = cmd(dir.path(), &cfg, &["dump"]);
    assert!(o.status.success(), "{}", text(&o));
    let dst = bucket(&var("MILVUS_BUCKET", "milvus-bucket"), &var("S3_SECRET_KEY", "minioadmin"));
    let manifest = dst.get(&Key::from(format!("migration/{name}/manifest.json"))).await.unwrap().bytes().await.unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(manifest["rows"], g.expected.live_rows());

    let o = cmd(dir.path(), &cfg, &["load"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("verified: every collection and partition matches the source"), "{}", text(&o));
    // Again: nothing imported twice.
    let o = cmd(dir.path(), &cfg, &["load"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("imported 0 group(s) (0 rows), 2 already imported"), "{}", text(&o));
}

#[tokio::test]
async fn remote_target_from_sqlite_and_local_tables_with_bucket_creation() {
    require_minio_milvus();
    let dir = tempfile::tempdir().unwrap();
    let name = unique("rl");
    let g = installation(dir.path(), &name).await;
    let meta = format!("  mode: sqlite\n  sqliteFile: {}", s(&g.meta_sqlite));
    let local_source = format!("  mode: local\n  local:\n    tablesDir: {}", s(&g.tables));
    let cfg = config(dir.path(), &meta, &local_source, &format!("migration/{name}"), "");
    let o = cmd(dir.path(), &cfg, &["migrate"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("verified:"), "{}", text(&o));

    // checkBucket: a missing bucket fails clearly when false, and is created when true.
    let missing = unique("newbucket").replace('_', "-");
    let yaml = std::fs::read_to_string(&cfg).unwrap().replace(&var("MILVUS_BUCKET", "milvus-bucket"), &missing);
    std::fs::write(&cfg, &yaml).unwrap();
    let o = cmd(dir.path(), &cfg, &["dump"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("bucket \"{missing}\" (target.remote.bucket)")) && err.contains("does not exist"), "{}", text(&o));
    assert!(err.contains("checkBucket: true"), "{}", text(&o));
    std::fs::write(&cfg, yaml.replace("checkBucket: false", "checkBucket: true")).unwrap();
    let o = cmd(dir.path(), &cfg, &["dump"]);
    assert!(o.status.success(), "{}", text(&o));
    let created = bucket(&missing, &var("S3_SECRET_KEY", "minioadmin"));
    assert!(created.head(&Key::from(format!("migration/{name}/manifest.json"))).await.is_ok());
}

#[tokio::test]
async fn remote_bad_secret_and_missing_meta_key_are_named() {
    require_minio_milvus();
    let dir = tempfile::tempdir().unwrap();
    let name = unique("rx");
    let g = installation(dir.path(), &name).await;
    let meta = format!("  mode: sqlite\n  sqliteFile: {}", s(&g.meta_sqlite));
    let local_source = format!("  mode: local\n  local:\n    tablesDir: {}", s(&g.tables));
    let cfg = config(dir.path(), &meta, &local_source, &format!("migration/{name}"), "");
    let yaml = std::fs::read_to_string(&cfg).unwrap();
    let secret = var("S3_SECRET_KEY", "minioadmin");
    std::fs::write(&cfg, yaml.replacen(&format!("sk: {secret}"), "sk: Wr0ng-Secret-Key", 1)).unwrap();
    let o = cmd(dir.path(), &cfg, &["dump"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("access denied, check target.remote.ak / .sk"), "{}", text(&o));
    assert!(!err.contains("Wr0ng-Secret-Key"), "secret echoed: {err}");
    // The run report says it failed, and does not carry the secret either.
    let reports: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("milvus-migration-dump-"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert_eq!(reports.len(), 1, "one report per run");
    assert!(reports[0].contains("\"outcome\": \"failed\"") && reports[0].contains("access denied"), "{}", reports[0]);
    assert!(!reports[0].contains("Wr0ng-Secret-Key"), "secret in the report: {}", reports[0]);

    let meta = format!("  mode: remote\n  remoteMetaFile: {name}/no-such-meta.json");
    let cfg = config(dir.path(), &meta, &remote_source(&name), &format!("migration/{name}"), "");
    let o = cmd(dir.path(), &cfg, &["dump"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!("meta.remoteMetaFile \"{name}/no-such-meta.json\": no such object")),
        "{}",
        text(&o)
    );
    let dst = bucket(&var("MILVUS_BUCKET", "milvus-bucket"), &secret);
    assert!(dst.head(&Key::from(format!("migration/{name}/manifest.json"))).await.is_err(), "something was written");
}

#[tokio::test]
async fn remote_import_killed_after_submit_is_found_on_the_server_not_repeated() {
    require_minio_milvus();
    let dir = tempfile::tempdir().unwrap();
    let name = unique("rk");
    let g = installation(dir.path(), &name).await;
    let meta = format!("  mode: sqlite\n  sqliteFile: {}", s(&g.meta_sqlite));
    let local_source = format!("  mode: local\n  local:\n    tablesDir: {}", s(&g.tables));
    let cfg = config(dir.path(), &meta, &local_source, &format!("migration/{name}"), "");
    let o = cmd(dir.path(), &cfg, &["dump"]);
    assert!(o.status.success(), "{}", text(&o));
    // Killed right after Milvus took the first import, before the journal has its task id.
    let o = std::process::Command::new(mm_tests::tool::binary())
        .current_dir(dir.path())
        .args(["load", &format!("--config={}", s(&cfg))])
        .env("MILVUS_MIGRATION_CRASH_AT", "import-submitted:1")
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(o.status.signal(), Some(9), "{}", text(&o));
    // The re-run finds that task by its bucket keys and waits on it; counts then match exactly.
    let o = cmd(dir.path(), &cfg, &["load"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("an earlier run's import reached the server as task"), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("verified:"), "{}", text(&o));
}

// --- One plan, many workers (issue 11): staging in Milvus' bucket on s3s-fs. ---

/// A local installation with its target in Milvus' bucket, as an Env for the pymilvus check.
async fn worker_env(name: &str) -> mm_tests::milvus_env::Env {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let g = installation(&dir, name).await;
    let meta = format!("  mode: sqlite\n  sqliteFile: {}", s(&g.meta_sqlite));
    let local_source = format!("  mode: local\n  local:\n    tablesDir: {}", s(&g.tables));
    let config = config(&dir, &meta, &local_source, &format!("migration/{name}"), "");
    mm_tests::milvus_env::Env { _dir: tmp, dir, config, expected: g.expected }
}

/// Every live row of both collections once, with vectors (pymilvus, entity counts included).
fn every_row_once(env: &mm_tests::milvus_env::Env, name: &str) {
    for (c, parts) in [(name.to_string(), vec![("east/1", "east_1")]), (format!("{name}_bin"), vec![])] {
        let e = env.expected.collections.iter().find(|x| x.name == c).unwrap();
        let ids: Vec<i64> = e.partitions.iter().flat_map(|p| &p.segments).flat_map(|s| s.ids.clone()).collect();
        mm_tests::milvus_env::pymilvus_check_with(env, &c, &parts, serde_json::json!({"exact_ids": ids}));
    }
}

fn outputs(children: Vec<std::process::Child>) -> Vec<Output> {
    children.into_iter().map(|c| c.wait_with_output().unwrap()).collect()
}

fn count_in(outs: &[Output], what: &str) -> usize {
    outs.iter().filter(|o| String::from_utf8_lossy(&o.stdout).contains(what)).count()
}

#[tokio::test]
async fn remote_three_workers_on_one_plan_land_every_row_once_with_one_finalize() {
    require_minio_milvus();
    let name = unique("w3");
    let env = worker_env(&name).await;
    let children = (0..3).map(|i| mm_tests::milvus_env::spawn(&env, &["migrate", "--workers=3", &format!("--worker={i}")], None)).collect();
    let outs = outputs(children);
    for o in &outs {
        assert!(o.status.success(), "{}", text(o));
    }
    assert_eq!(count_in(&outs, "finalizing (writing the manifest)"), 1, "one worker writes the manifest");
    assert_eq!(count_in(&outs, "finalizing (index, load, verify)"), 1, "one worker builds, loads and verifies");
    assert_eq!(count_in(&outs, "verified: every collection and partition matches the source"), 1);
    every_row_once(&env, &name);
}

#[tokio::test]
async fn remote_two_processes_with_one_worker_index_and_a_killed_worker_import_each_unit_once() {
    require_minio_milvus();
    let name = unique("w2");
    let env = worker_env(&name).await;
    // Worker 0 is killed (SIGKILL) while waiting on an import; worker 1 runs twice at once
    // (a replaced pod still running): the second waits for the first's lease. The second starts
    // once the first holds it: s3s-fs checks `If-None-Match` and then writes, not atomically, so
    // a start at the same instant tests the server, not the tool (the lease's read-back that
    // guards such stores is unit-tested in host/src/lease.rs; atomic stores in lease_e2e).
    let killed = mm_tests::milvus_env::spawn(&env, &["migrate", "--workers=2", "--worker=0"], Some("import-polled:1"));
    let first = mm_tests::milvus_env::spawn(&env, &["migrate", "--workers=2", "--worker=1", "--wait"], None);
    let lease = Key::from(format!("migration/{name}/_lease/worker-1-of-2"));
    let milvus_bucket = bucket(&var("MILVUS_BUCKET", "milvus-bucket"), &var("S3_SECRET_KEY", "minioadmin"));
    let held = async {
        loop {
            let listed = milvus_bucket.list_with_delimiter(Some(&lease)).await.map(|l| l.objects.len()).unwrap_or(0);
            if listed > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), held).await.expect("worker 1 takes its lease within 60 s");
    let twins = vec![first, mm_tests::milvus_env::spawn(&env, &["migrate", "--workers=2", "--worker=1", "--wait"], None)];
    let k = killed.wait_with_output().unwrap();
    assert!(!k.status.success(), "the crash hook killed worker 0: {}", text(&k));
    let outs = outputs(twins);
    for o in &outs {
        assert!(o.status.success(), "{}", text(o));
    }
    // Worker 0 again: it takes over its own lease and finishes its part; someone finalizes.
    let again = mm_tests::milvus_env::spawn(&env, &["migrate", "--workers=2", "--worker=0"], None).wait_with_output().unwrap();
    assert!(again.status.success(), "{}", text(&again));
    assert!(String::from_utf8_lossy(&again.stderr).contains("taking over the lease"), "{}", text(&again));
    let all: Vec<Output> = outs.into_iter().chain([again]).collect();
    assert_eq!(count_in(&all, "finalizing (index, load, verify)"), 1, "one finalize");
    every_row_once(&env, &name);
}

/// `migration.format: parquet` into a Milvus that reads its own bucket: each file group is one
/// rows.parquet in the bucket (no npy), Milvus 2.3.5 imports them from S3 storage, `verify`
/// passes, and pymilvus finds every live row of both collections (float and binary) once.
#[tokio::test]
async fn remote_parquet_dump_is_imported_from_milvus_bucket() {
    require_minio_milvus();
    let name = unique("rpq");
    let env = worker_env(&name).await;
    let yaml = std::fs::read_to_string(&env.config).unwrap() + "migration:\n  format: parquet\n";
    std::fs::write(&env.config, yaml).unwrap();
    let o = cmd(&env.dir, &env.config, &["migrate"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("verified: every collection and partition matches the source"), "{}", text(&o));
    let dst = bucket(&var("MILVUS_BUCKET", "milvus-bucket"), &var("S3_SECRET_KEY", "minioadmin"));
    use futures::TryStreamExt;
    let keys: Vec<String> =
        dst.list(Some(&Key::from(format!("migration/{name}")))).map_ok(|m| m.location.to_string()).try_collect().await.unwrap();
    assert!(keys.iter().any(|k| k.ends_with("/rows.parquet")), "{keys:?}");
    assert!(!keys.iter().any(|k| k.ends_with(".npy")), "{keys:?}");
    every_row_once(&env, &name);
}
