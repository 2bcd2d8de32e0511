//! The dump streams: its peak memory does not grow with the segment's size.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

use mm_tests::tool::{binary, dump_config};
use mm_tests::{generate, CollectionSpec, SegmentSpec, Spec};

/// Peak RSS in KiB of a dump of one float segment of `rows` rows (dim 256, 1% deleted).
async fn dump_peak_rss_kib(dir: &Path, rows: u64) -> i64 {
    let spec = Spec {
        seed: 2,
        collections: vec![CollectionSpec {
            name: "c".into(),
            dim: 256,
            metric: 1,
            engine_type: 1,
            index_params: "{}".into(),
            dropped: false,
            segments: vec![SegmentSpec { rows, deleted: (0..rows as i32).step_by(100).rev().collect(), ..Default::default() }],
            partitions: vec![],
        }],
    };
    let g = generate(&spec, &dir.join("src"), false).await.unwrap();
    let meta = format!("  mode: sqlite\n  sqliteFile: {}", g.meta_sqlite.display());
    let cfg = dump_config(dir, &meta, &g.tables, &dir.join("out"), "");
    let child = Command::new(binary()).current_dir(dir).args(["dump", "--config"]).arg(&cfg).spawn().unwrap();
    let mut status = 0;
    // SAFETY: plain wait4 on our own child; rusage is a plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32);
    assert!(std::process::ExitStatus::from_raw(status).success(), "dump failed");
    usage.ru_maxrss
}

#[tokio::test]
async fn peak_memory_does_not_grow_with_segment_size() {
    let small_dir = tempfile::tempdir().unwrap();
    let large_dir = tempfile::tempdir().unwrap();
    let small = dump_peak_rss_kib(small_dir.path(), 20_000).await; // ~20 MiB of vectors
    let large = dump_peak_rss_kib(large_dir.path(), 240_000).await; // ~240 MiB of vectors
    eprintln!("peak RSS: {small} KiB for 20 MiB, {large} KiB for 240 MiB");
    assert!(large < small + 48 * 1024, "peak RSS grew from {small} KiB to {large} KiB");
    assert!(large < 160 * 1024, "peak RSS {large} KiB for a 240 MiB segment");
}
