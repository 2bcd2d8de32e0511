//! generate -> export -> dump with the built binary, checked row by row against the generator.

use std::path::Path;
use std::process::Command;

use mm_tests::npy::NpyFile;
use mm_tests::samples::sample;
use mm_tests::tool::{dump_config, python, run, text};
use mm_tests::{generate, CollectionSpec, SegmentSpec, Spec};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

async fn sample_in(dir: &Path) -> mm_tests::Generated {
    generate(&sample(), &dir.join("src"), true).await.unwrap()
}

#[tokio::test]
async fn export_then_dump_from_meta_json_gives_exactly_the_live_rows() {
    let dir = tempfile::tempdir().unwrap();
    let g = sample_in(dir.path()).await;
    let meta_dir = dir.path().join("meta");
    let o = run(dir.path(), &["export", "-s", s(&g.meta_sqlite), "-o", s(&meta_dir)]);
    assert!(o.status.success(), "{}", text(&o));
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(meta_dir.join("meta.json")).unwrap()).unwrap();
    // Go-tool keys are there, with live row counts; the dropped collection is not.
    assert_eq!(meta["rows"], g.expected.live_rows());
    let names: Vec<_> = meta["collections"].as_array().unwrap().iter().map(|c| c["collection"].as_str().unwrap()).collect();
    assert_eq!(names, ["books", "fingerprints"]);
    assert_eq!(meta["collections"][0]["partitions"][0]["tag"], "2024 Q1/sales");
    assert_eq!(meta["collections"][1]["vectorType"], "binary");

    let out = dir.path().join("out");
    let meta_section = format!("  mode: local\n  localFile: {}", s(&meta_dir.join("meta.json")));
    let cfg = dump_config(dir.path(), &meta_section, &g.tables, &out, "");
    let o = run(dir.path(), &["dump", &format!("--config={}", s(&cfg))]);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains(&format!("dumped {} rows", g.expected.live_rows())), "{stdout}");
    g.expected.check_dump(&out).unwrap();
}

#[tokio::test]
async fn dump_straight_from_meta_sqlite_with_default_config_location() {
    let dir = tempfile::tempdir().unwrap();
    let g = sample_in(dir.path()).await;
    let out = dir.path().join("out");
    let meta_section = format!("  mode: sqlite\n  sqliteFile: {}", s(&g.meta_sqlite));
    let cfg = dump_config(dir.path(), &meta_section, &g.tables, &out, "");
    std::fs::create_dir(dir.path().join("configs")).unwrap();
    std::fs::rename(&cfg, dir.path().join("configs/migration.yaml")).unwrap();
    let o = run(dir.path(), &["dump"]);
    assert!(o.status.success(), "{}", text(&o));
    g.expected.check_dump(&out).unwrap();
}

#[tokio::test]
async fn col_filter_dumps_only_the_named_collections() {
    let dir = tempfile::tempdir().unwrap();
    let g = sample_in(dir.path()).await;
    let out = dir.path().join("out");
    let cfg = dump_config(dir.path(), &format!("  mode: sqlite\n  sqliteFile: {}", s(&g.meta_sqlite)), &g.tables, &out, "");
    let o = run(dir.path(), &["dump", "--config", s(&cfg), "--col", "fingerprints"]);
    assert!(o.status.success(), "{}", text(&o));
    let mut expected = g.expected.clone();
    expected.collections.retain(|c| c.name == "fingerprints");
    expected.check_dump(&out).unwrap();

    let o = run(dir.path(), &["dump", "--config", s(&cfg), "--col", "nope"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("\"nope\" not in the 1.x meta (it has: books, fingerprints)"), "{}", text(&o));
}

#[tokio::test]
async fn npy_files_are_byte_identical_to_numpy_save() {
    let dir = tempfile::tempdir().unwrap();
    let g = sample_in(dir.path()).await;
    let out = dir.path().join("out");
    let cfg = dump_config(dir.path(), &format!("  mode: sqlite\n  sqliteFile: {}", s(&g.meta_sqlite)), &g.tables, &out, "");
    let o = run(dir.path(), &["dump", "--config", s(&cfg)]);
    assert!(o.status.success(), "{}", text(&o));
    // float32 (N, dim), uint8 (N, dim/8) and int64 (N,), each re-saved by numpy itself.
    // Every npy file the dump wrote: segments' and packs'.
    fn npy_under(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                npy_under(&p, files);
            } else if p.extension().is_some_and(|x| x == "npy") {
                files.push(p);
            }
        }
    }
    let mut files = Vec::new();
    npy_under(&out, &mut files);
    assert!(files.iter().any(|f| f.to_string_lossy().contains("/pack-")), "the sample's small segments are packed: {files:?}");
    let dtypes: std::collections::BTreeSet<String> = files.iter().map(|f| NpyFile::read(f).unwrap().descr).collect();
    assert_eq!(dtypes.into_iter().collect::<Vec<_>>(), ["<f4", "<i8", "|u1"]);
    let script = "import sys, io, numpy as np\n\
        for path in sys.argv[1:]:\n\
        \x20   a = np.load(path)\n\
        \x20   buf = io.BytesIO(); np.save(buf, a)\n\
        \x20   mine = open(path, 'rb').read()\n\
        \x20   if buf.getvalue() != mine:\n\
        \x20       print('DIFFERENT', path, repr(buf.getvalue()[:128]), repr(mine[:128])); sys.exit(1)\n\
        \x20   print(path, a.dtype, a.shape)\n";
    let o = Command::new(python()).arg("-c").arg(script).args(&files).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), files.len());
}

#[tokio::test]
async fn go_tool_meta_json_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec {
        seed: 3,
        collections: vec![CollectionSpec {
            name: "test1w".into(),
            dim: 16,
            metric: 1,
            engine_type: 1,
            index_params: "{}".into(),
            dropped: false,
            segments: vec![SegmentSpec { rows: 100, deleted: vec![4, 2], ..Default::default() }],
            partitions: vec![],
        }],
    };
    let g = generate(&spec, &dir.path().join("src"), true).await.unwrap();
    let seg = &g.expected.collections[0].partitions[0].segments[0];
    let go = format!(
        r#"{{"collections":[{{"collection":"test1w","metric":1,"rows":98,"dim":16,
          "segments":[{{"collection":"test1w","segment":"{}","dim":16,"rows":98,"fileSize":7200}}]}}],"rows":98}}"#,
        seg.segment_id
    );
    let meta = dir.path().join("meta.json");
    std::fs::write(&meta, go).unwrap();
    let out = dir.path().join("out");
    let cfg = dump_config(dir.path(), &format!("  mode: mock\n  mockFile: {}", s(&meta)), &g.tables, &out, "");
    let o = run(dir.path(), &["dump", "--config", s(&cfg)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("written by the Go tool"), "{}", text(&o));
    g.expected.check_dump(&out).unwrap();
}

#[tokio::test]
async fn header_less_deleted_docs_and_to_index_segments() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec {
        seed: 5,
        collections: vec![CollectionSpec {
            name: "legacy".into(),
            dim: 32,
            metric: 7,
            engine_type: 9,
            index_params: "{}".into(),
            dropped: false,
            segments: vec![
                SegmentSpec { rows: 50, deleted: vec![49, 0, 7, 7], header_less_deletes: true, ..Default::default() },
                SegmentSpec { rows: 20, to_index: true, deleted: (0..20).collect(), ..Default::default() },
            ],
            partitions: vec![],
        }],
    };
    let g = generate(&spec, &dir.path().join("src"), true).await.unwrap();
    let out = dir.path().join("out");
    let cfg = dump_config(dir.path(), &format!("  mode: sqlite\n  sqliteFile: {}", s(&g.meta_sqlite)), &g.tables, &out, "");
    let o = run(dir.path(), &["dump", "--config", s(&cfg)]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(g.expected.live_rows(), 47);
    g.expected.check_dump(&out).unwrap();
}
