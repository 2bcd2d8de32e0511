//! `plan`: the inventory and mapping of a good installation (exit 0), and every problem of a
//! broken one (exit 1), with nothing written.

use std::path::Path;

use mm_tests::samples::sample;
use mm_tests::tool::{dump_config, run, text};
use mm_tests::generate;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test]
async fn plan_lists_inventory_mapping_and_problems_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let g = generate(&sample(), &dir.path().join("src"), true).await.unwrap();
    let out = dir.path().join("out");
    let cfg = dump_config(dir.path(), &format!("  mode: sqlite\n  sqliteFile: {}", s(&g.meta_sqlite)), &g.tables, &out, "");

    let o = run(dir.path(), &["plan", "--config", s(&cfg), "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["inventory"]["collections"], 2);
    assert_eq!(doc["inventory"]["segments"], 4);
    assert_eq!(doc["inventory"]["rows"], g.expected.live_rows());
    assert_eq!(doc["inventory"]["deletedRows"], 4 + 2 + 2, "{doc}");
    let books = &doc["collections"][0];
    assert_eq!(books["index"]["indexType"], "HNSW");
    assert_eq!(books["partitions"][1]["name"], "p_2024_Q1_sales");
    assert!(doc["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains("becomes 2.x partition")));
    assert!(!out.exists(), "plan wrote the target");

    // Break it: one segment loses its .uid, another's .rv is cut short.
    let segs = &g.expected.collections[0].partitions[0].segments;
    let (a, b) = (&segs[0].segment_id, &segs[1].segment_id);
    std::fs::remove_file(g.tables.join("books").join(a).join(format!("{a}.uid"))).unwrap();
    let rv = g.tables.join("books").join(b).join(format!("{b}.rv"));
    std::fs::OpenOptions::new().write(true).open(&rv).unwrap().set_len(100).unwrap();
    let o = run(dir.path(), &["plan", "--config", s(&cfg)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let report = String::from_utf8_lossy(&o.stdout);
    assert!(report.contains(&format!("[FAIL] source files of segment {a} (books): books/{a} has no .rv or no .uid file")), "{}", text(&o));
    assert!(report.contains(&format!("[FAIL] source files of segment {b} (books)")) && report.contains("the meta says 10000"), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("2 check(s) failed"), "{}", text(&o));
    assert!(!out.exists(), "plan wrote the target");
}
