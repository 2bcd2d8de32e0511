//! The sandbox, enforced: paths from the 1.x meta cannot leave the granted roots, crafted
//! segment headers cannot make the process allocate or write what they claim, and the meta
//! database is only read.

mod fault_support;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use fault_support::*;
use mm_tests::tool::{run, text};

/// Peak resident memory allowed for a run that is fed a crafted segment.
const MAX_RSS_KIB: u64 = 200 << 10;

/// Everything under `root` except the dirs named in `skip` (the paths a run may write).
fn snapshot(root: &Path, skip: &[&str]) -> Vec<String> {
    files_under(root).into_iter().filter(|f| !skip.iter().any(|s| f.starts_with(s))).collect()
}

#[tokio::test]
async fn meta_paths_with_dotdot_or_absolute_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let g = install_spec(dir.path(), vec![collection("c", 4, 1, 2, 10), collection("b", 16, 3, 1, 10)]).await;
    let (bad_seg, _) = segment(&g, 1);
    let evil = dir.path().join("evil");
    // A segment id climbing out of the tables dir, and a collection whose name is an absolute path.
    sql(
        &g.meta_sqlite,
        &[
            &format!("UPDATE TableFiles SET segment_id = '../../../../x', file_id = '../../../../x' WHERE segment_id = '{bad_seg}'"),
            &format!("UPDATE Tables SET table_id = '{}' WHERE table_id = 'b'", s(&evil)),
            &format!("UPDATE TableFiles SET table_id = '{}' WHERE table_id = 'b'", s(&evil)),
        ],
    )
    .await;
    // Where a climbing path would land, as a file the guest might read.
    std::fs::write(dir.path().join("x"), b"outside").unwrap();
    let cwd = dir.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    // Segments alone (not packed): each is refused or written on its own.
    let cfg = sqlite_config(dir.path(), &g, "");
    let before = snapshot(dir.path(), &["cwd/", "out/"]);
    let o = run(&cwd, &["dump", "--config", s(&cfg)]);
    assert_exit(
        &o,
        1,
        &[
            "failed: segment c/../../../../x",
            "access denied: path \"c/../../../../x\" refused: empty, `.` and `..` segments are not allowed",
            &format!("access denied: path \"{}/", s(&evil)),
            "refused: paths must be relative to the store root",
            "2 of 3 segment(s) failed; no manifest was written",
        ],
    );
    assert_eq!(snapshot(dir.path(), &["cwd/", "out/"]), before, "a file appeared or vanished outside the output dir");
    assert!(!evil.exists());
    // Only the good segment was written.
    let (good, _) = segment(&g, 0);
    assert_eq!(files_under(&dir.path().join("out")), [format!("c/_default/{good}/data.npy"), format!("c/_default/{good}/id.npy")]);
}

#[tokio::test]
async fn output_paths_outside_the_output_dir_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let g = install_spec(dir.path(), vec![collection("c", 4, 1, 1, 10)]).await;
    let (seg, _) = segment(&g, 0);
    // The collection's files are in a partition (its source path is fine); the collection name
    // climbs out, and the output dir is <collection>/<partition id>/<segment>.
    let name = format!("../../escaped_{}", std::process::id());
    sql(
        &g.meta_sqlite,
        &[
            &format!("UPDATE Tables SET table_id = '{name}' WHERE table_id = 'c'"),
            &format!(
                "INSERT INTO Tables (table_id, state, dimension, created_on, flag, index_file_size, engine_type, index_params, \
                 metric_type, owner_table, partition_tag, version, flush_lsn) VALUES ('1234', 0, 4, 1, 0, 1, 1, '{{}}', 1, '{name}', 'p', '1.1.1', 1)"
            ),
            "UPDATE TableFiles SET table_id = '1234' WHERE table_id = 'c'",
        ],
    )
    .await;
    std::fs::rename(g.tables.join("c"), g.tables.join("1234")).unwrap();
    let cwd = dir.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    // Segments alone (not packed): each is refused or written on its own.
    let cfg = sqlite_config(dir.path(), &g, "");
    let before = snapshot(dir.path(), &["cwd/", "out/"]);
    let o = run(&cwd, &["dump", "--config", s(&cfg)]);
    assert_exit(
        &o,
        1,
        &[&format!("access denied: path \"{name}/1234/{seg}/"), "refused: empty, `.` and `..` segments are not allowed", "no manifest was written"],
    );
    assert_eq!(snapshot(dir.path(), &["cwd/", "out/"]), before);
    assert!(files_under(&dir.path().join("out")).is_empty(), "{:?}", files_under(&dir.path().join("out")));
    for up in [dir.path(), dir.path().parent().unwrap()] {
        assert!(!up.join(&name[6..]).exists(), "{} was created", up.join(&name[6..]).display());
    }
}

#[tokio::test]
async fn sparse_terabyte_segment_fails_fast_with_little_memory() {
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    let (id, seg) = segment(&g, 1);
    // Headers that agree with their (sparse) files: 2^37 ids (1 TiB) and 2^37 dim-4 rows (2 TiB).
    sparse_counted_file(&seg.join(format!("{id}.uid")), 1 << 40);
    sparse_counted_file(&seg.join(format!("{id}.rv")), 1 << 41);
    let cfg = sqlite_config(dir.path(), &g, "");
    let (o, rss_kib, took) = run_measured(dir.path(), &["dump", "--config", s(&cfg)]);
    assert_exit(
        &o,
        1,
        &[
            &format!("invalid input in c/{id}/{id}.uid at offset 0"),
            "header says 1099511627776 payload bytes, 137438953472 8-byte ids: more than a 1.x segment can hold",
        ],
    );
    assert!(rss_kib < MAX_RSS_KIB, "peak RSS {rss_kib} KiB");
    assert!(took.as_secs() < 30, "took {took:?}");
    assert_no_output_for(&dir.path().join("out"), "c", &id);
}

#[tokio::test]
async fn huge_header_in_a_small_file_fails_fast_with_little_memory() {
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    let (id, seg) = segment(&g, 1);
    let rv = seg.join(format!("{id}.rv"));
    let mut bytes = std::fs::read(&rv).unwrap();
    bytes[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    std::fs::write(&rv, bytes).unwrap();
    let (o, rss_kib, took) = run_measured(dir.path(), &["dump", "--config", s(&sqlite_config(dir.path(), &g, ""))]);
    assert_exit(
        &o,
        1,
        &[&format!("c/{id}/{id}.rv"), "header says 1099511627776 payload bytes, so the file should be 1099511627784 bytes, but it is 168 bytes"],
    );
    assert!(rss_kib < MAX_RSS_KIB, "peak RSS {rss_kib} KiB");
    assert!(took.as_secs() < 30, "took {took:?}");
    assert_no_output_for(&dir.path().join("out"), "c", &id);
}

#[tokio::test]
async fn segment_bigger_than_the_instance_memory_is_stopped_by_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    let (id, seg) = segment(&g, 1);
    // 2^30 rows is a legal size (8 GiB of ids, 16 GiB of vectors, sparse), but its deletion
    // bitset alone (128 MiB) does not fit a 64 MiB instance.
    sparse_counted_file(&seg.join(format!("{id}.uid")), 8 << 30);
    sparse_counted_file(&seg.join(format!("{id}.rv")), 16 << 30);
    let cfg = sqlite_config(dir.path(), &g, "migration:\n  sandbox:\n    memoryMiB: 64\n");
    let (o, rss_kib, took) = run_measured(dir.path(), &["dump", "--config", s(&cfg)]);
    // The segment's conversion is stopped by the instance's limit, not by the host; the
    // collection's repeated-id check could not read it either, which is only a warning.
    assert_exit(&o, 1, &[&format!("failed: segment c/{id}"), "memory limit exceeded (64 MiB; raise migration.sandbox.memoryMiB)"]);
    assert!(stderr(&o).contains("the ids could not be checked for repeats"), "{}", stderr(&o));
    assert!(rss_kib < MAX_RSS_KIB, "peak RSS {rss_kib} KiB");
    assert!(took.as_secs() < 30, "took {took:?}");
    assert_no_output_for(&dir.path().join("out"), "c", &id);
}

/// The meta file's bytes and times, and the files next to it.
fn meta_state(db: &Path) -> (Vec<u8>, i64, i64, Vec<String>) {
    let m = std::fs::metadata(db).unwrap();
    let mut siblings: Vec<String> =
        std::fs::read_dir(db.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    siblings.sort();
    (std::fs::read(db).unwrap(), m.mtime(), m.mtime_nsec(), siblings)
}

#[tokio::test]
async fn meta_database_is_only_read() {
    for wal in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let g = install(dir.path()).await;
        if wal {
            // How Milvus 1.x keeps it; a clean stop leaves no -wal / -shm file.
            sql(&g.meta_sqlite, &["PRAGMA journal_mode = WAL"]).await;
            assert_eq!(std::fs::read(&g.meta_sqlite).unwrap()[18..20], [2, 2]);
        }
        let before = meta_state(&g.meta_sqlite);
        assert_eq!(before.3, ["meta.sqlite", "tables"], "wal={wal}");
        std::thread::sleep(std::time::Duration::from_millis(20));

        let o = run(dir.path(), &["export", "-s", s(&g.meta_sqlite), "-o", s(&dir.path().join("meta"))]);
        assert!(o.status.success(), "wal={wal}: {}", text(&o));
        let o = run(dir.path(), &["dump", "--config", s(&sqlite_config(dir.path(), &g, ""))]);
        assert!(o.status.success(), "wal={wal}: {}", text(&o));
        g.expected.check_dump(&dir.path().join("out")).unwrap();
        let o = run(dir.path(), &["plan", "--config", s(&sqlite_config(dir.path(), &g, ""))]);
        assert!(o.status.success(), "wal={wal}: {}", text(&o));

        let after = meta_state(&g.meta_sqlite);
        assert!(before.0 == after.0, "wal={wal}: meta.sqlite's bytes changed");
        assert_eq!((before.1, before.2), (after.1, after.2), "wal={wal}: meta.sqlite's mtime changed");
        assert_eq!(after.3, before.3, "wal={wal}: files appeared next to meta.sqlite (-journal, -wal, -shm?)");
    }
}
