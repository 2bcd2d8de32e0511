//! Broken installations and settings: each fails with a message naming the problem, a non-zero
//! exit code, no manifest, and no output file for the broken segment.

use std::path::{Path, PathBuf};
use std::process::Output;

use mm_tests::tool::{dump_config, run, text};
use mm_tests::{generate, CollectionSpec, Generated, SegmentSpec, Spec};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Two float segments of 10 rows, dim 4.
async fn install(dir: &Path) -> Generated {
    let seg = SegmentSpec { rows: 10, ..Default::default() };
    let spec = Spec {
        seed: 9,
        collections: vec![CollectionSpec {
            name: "c".into(),
            dim: 4,
            metric: 1,
            engine_type: 1,
            index_params: "{}".into(),
            dropped: false,
            segments: vec![seg.clone(), seg],
            partitions: vec![],
        }],
    };
    generate(&spec, &dir.join("src"), true).await.unwrap()
}

/// The second segment's directory.
fn seg_dir(g: &Generated) -> (PathBuf, String) {
    let id = g.expected.collections[0].partitions[0].segments[1].segment_id.clone();
    (g.tables.join("c").join(&id), id)
}

/// Segments are dumped alone (`packSegments: false`): these tests look at each segment's own
/// output and failure.
fn dump(dir: &Path, g: &Generated, extra: &str) -> Output {
    let out = dir.join("out");
    let extra = match extra.strip_prefix("migration:\n") {
        Some(rest) => format!("migration:\n  packSegments: false\n{rest}"),
        None => format!("migration:\n  packSegments: false\n{extra}"),
    };
    let extra = extra.as_str();
    let cfg = dump_config(dir, &format!("  mode: sqlite\n  sqliteFile: {}", s(&g.meta_sqlite)), &g.tables, &out, extra);
    run(dir, &["dump", "--config", s(&cfg)])
}

/// Exit code 1, the message, no manifest, and nothing under the broken segment's output dir.
fn assert_failed(dir: &Path, o: &Output, seg: &str, needles: &[&str]) {
    assert_eq!(o.status.code(), Some(1), "{}", text(o));
    let err = String::from_utf8_lossy(&o.stderr);
    for n in needles {
        assert!(err.contains(n), "missing {n:?} in:\n{}", text(o));
    }
    assert!(err.contains("no manifest was written"), "{}", text(o));
    assert!(!dir.join("out/manifest.json").exists(), "a manifest claims a complete dump");
    let seg_out = dir.join("out/c/_default").join(seg);
    let left: Vec<_> = std::fs::read_dir(&seg_out).map(|r| r.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "files left for the failed segment: {left:?}");
}

#[tokio::test]
async fn truncated_rv_names_file_and_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    let (d, id) = seg_dir(&g);
    let rv = d.join(format!("{id}.rv"));
    let f = std::fs::OpenOptions::new().write(true).open(&rv).unwrap();
    f.set_len(8 + 160 - 5).unwrap();
    let o = dump(dir.path(), &g, "");
    assert_failed(dir.path(), &o, &id, &[&format!("c/{id}/{id}.rv"), "should be 168 bytes, but it is 163 bytes", "truncated"]);
    // The good segment was converted completely; only the manifest (completeness) is missing.
    let good = &g.expected.collections[0].partitions[0].segments[0].segment_id;
    assert!(dir.path().join("out/c/_default").join(good).join("id.npy").exists());
}

#[tokio::test]
async fn ids_and_vectors_disagree() {
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    let (d, id) = seg_dir(&g);
    let mut uid = 72u64.to_le_bytes().to_vec();
    uid.extend((0..9i64).flat_map(i64::to_le_bytes));
    std::fs::write(d.join(format!("{id}.uid")), uid).unwrap();
    let o = dump(dir.path(), &g, "");
    assert_failed(dir.path(), &o, &id, &[&format!("{id}.rv"), "expected 144 bytes of vectors (9 rows", "found 160"]);
}

#[tokio::test]
async fn uid_header_claims_more_than_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    let (d, id) = seg_dir(&g);
    let path = d.join(format!("{id}.uid"));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
    let o = dump(dir.path(), &g, "");
    assert_failed(dir.path(), &o, &id, &[&format!("{id}.uid"), "header says 1099511627776 payload bytes", "but it is 88 bytes"]);
}

#[tokio::test]
async fn missing_uid_file() {
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    let (d, id) = seg_dir(&g);
    std::fs::remove_file(d.join(format!("{id}.uid"))).unwrap();
    let o = dump(dir.path(), &g, "");
    assert_failed(dir.path(), &o, &id, &[&format!("no .uid file in segment directory c/{id}")]);
}

#[tokio::test]
async fn missing_segment_directory() {
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    let (d, id) = seg_dir(&g);
    std::fs::remove_dir_all(d).unwrap();
    let o = dump(dir.path(), &g, "");
    assert_failed(dir.path(), &o, &id, &[&format!("segment directory c/{id} of collection \"c\" is missing")]);
}

#[tokio::test]
async fn deleted_offset_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    let (d, id) = seg_dir(&g);
    // Only the out-of-range offset: an in-range one would leave fewer live rows than the meta's
    // row_count (10), which is an error of its own.
    let mut dd = 4u64.to_le_bytes().to_vec();
    dd.extend(10i32.to_le_bytes());
    std::fs::write(d.join("deleted_docs"), dd).unwrap();
    let o = dump(dir.path(), &g, "");
    assert_failed(
        dir.path(),
        &o,
        &id,
        &[&format!("c/{id}/deleted_docs at offset 8"), "deleted row offset 10 is outside the segment, which has 10 rows"],
    );
}

#[tokio::test]
async fn not_a_1x_meta_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("other.sqlite");
    {
        let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(&db).create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        sqlx::query("CREATE TABLE users (id INTEGER)").execute(&pool).await.unwrap();
        pool.close().await;
    }
    let o = run(dir.path(), &["export", "-s", s(&db), "-o", s(&dir.path().join("o"))]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a Milvus 0.9-1.x meta database: table Tables and TableFiles missing (its tables are: users)"), "{}", text(&o));
    assert!(!dir.path().join("o/meta.json").exists());

    let junk = dir.path().join("junk.sqlite");
    std::fs::write(&junk, b"this is not sqlite at all, just text that is long enough to have a header....").unwrap();
    let o = run(dir.path(), &["export", "-s", s(&junk), "-o", s(&dir.path().join("o"))]);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains(s(&junk)), "{}", text(&o));
    assert!(!dir.path().join("o/meta.json").exists());
}

#[tokio::test]
async fn configuration_errors_exit_2_and_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    let o = dump(dir.path(), &g, "migration:\n  sandbox:\n    memoryMB: 64\n");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown field `memoryMB`"), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 23"), "{}", text(&o));

    let cfg = dump_config(dir.path(), "  mode: mysql\n  mysqlUrl: root:x@tcp(127.0.0.1:notaport)/milvus", &g.tables, &dir.path().join("out"), "");
    let o = run(dir.path(), &["dump", "--config", s(&cfg)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("meta.mysqlUrl: port \"notaport\" in the DSN is not a number"), "{}", text(&o));

    let o = run(dir.path(), &["dump", "--config", s(&dir.path().join("nope.yaml"))]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nope.yaml"), "{}", text(&o));

    let o = run(dir.path(), &["export", "-m", "root:pw@unix-ish(127.0.0.1:3306)/milvus?charset=utf8mb4", "-o", "x"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("-m: unsupported address"), "{}", text(&o));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("pw@"), "the password was echoed: {}", text(&o));
    assert!(!dir.path().join("out").exists(), "a configuration error wrote output");
}

#[tokio::test]
async fn sandbox_limits_stop_the_unit_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    // 16 MiB reads (bufferSize 16384 KB) of a 50 MiB segment cannot fit a 16 MiB instance.
    let spec = Spec {
        seed: 1,
        collections: vec![CollectionSpec {
            name: "c".into(),
            dim: 64,
            metric: 1,
            engine_type: 1,
            index_params: "{}".into(),
            dropped: false,
            // A big segment that cannot fit the limits, and a small one that can.
            segments: vec![
                SegmentSpec { rows: 200_000, deleted: (0..200_000).step_by(2).collect(), ..Default::default() },
                SegmentSpec { rows: 20, ..Default::default() },
            ],
            partitions: vec![],
        }],
    };
    let big = generate(&spec, &dir.path().join("big"), false).await.unwrap();
    let small_out = out_dir_of(&dir.path().join("out"), &big, 1);
    let out = dir.path().join("out");
    let cfg = dump_config(
        dir.path(),
        &format!("  mode: sqlite\n  sqliteFile: {}", s(&big.meta_sqlite)),
        &big.tables,
        &out,
        "migration:\n  packSegments: false\n  sandbox:\n    memoryMiB: 16\n",
    );
    let yaml = std::fs::read_to_string(&cfg).unwrap().replacen("bufferSize: 1024", "bufferSize: 16384", 1);
    std::fs::write(&cfg, yaml).unwrap();
    let o = run(dir.path(), &["dump", "--config", s(&cfg)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("memory limit exceeded (16 MiB"), "{}", text(&o));
    assert!(!out.join("manifest.json").exists());
    assert!(small_out.join("data.npy").exists(), "the other unit carried on: {}", text(&o));
    std::fs::remove_dir_all(&out).unwrap();

    // Dropping every other row of 200,000 costs far more than a million instructions.
    let yaml = std::fs::read_to_string(&cfg).unwrap().replace("memoryMiB: 16", "fuel: 1e6");
    std::fs::write(&cfg, yaml).unwrap();
    let o = run(dir.path(), &["dump", "--config", s(&cfg)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("CPU budget exceeded"), "{}", text(&o));
    assert!(!out.join("manifest.json").exists());
    assert!(small_out.join("data.npy").exists(), "the other unit carried on: {}", text(&o));
}

/// The output directory of segment `k` of the first collection.
fn out_dir_of(out: &Path, g: &Generated, k: usize) -> PathBuf {
    out.join("c/_default").join(&g.expected.collections[0].partitions[0].segments[k].segment_id)
}

#[test]
fn help_explains_commands_keys_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), &["--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    for w in ["export", "dump", "version", "Exit codes"] {
        assert!(help.contains(w), "{help}");
    }
    let o = run(dir.path(), &["dump", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    for key in ["dumper.worker.limit", "meta.sqliteFile", "source.local.tablesDir", "target.local.outputDir", "migration.sandbox.memoryMiB", "--col"] {
        assert!(help.contains(key), "{key} missing from dump --help:\n{help}");
    }
    let o = run(dir.path(), &["version"]);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("milvus-migration 0.1.0"));
}
