//! A second real server for `loadMode: insert`: milvus-lite 3.2.2 (scripts/milvus-lite.sh, which
//! scripts/test.sh starts; MILVUS_LITE_ENDPOINT names it). The float sample collection (HNSW
//! index, a partition whose tag 2.x rejects, an empty partition, deleted rows) migrates over
//! gRPC only, verifies (counts, samples, and every key with `verify --full`), and lite's own
//! client then finds every live id in its partition with the source's vectors. Lite implements
//! neither bulk import nor binary vectors, and its Insert de-duplicates keys, so duplicate
//! semantics, binary vectors and limits are proven on the real 2.3.5 (insert_e2e, repair_e2e).

use mm_tests::interrupt::attempt;
use mm_tests::milvus_env::{endpoint, setup};

fn lite() -> (String, String) {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set: start milvus-lite with scripts/milvus-lite.sh start (scripts/test.sh does)"));
    (var("MILVUS_LITE_ENDPOINT"), var("MILVUS_LITE_PY"))
}

#[tokio::test]
async fn the_float_sample_migrates_into_milvus_lite_with_inserts_and_verifies() {
    let (lite, py) = lite();
    let env = setup(&mm_tests::samples::sample(), "").await;
    let a = attempt(&env, 0, "books", "  loadMode: insert\n  insertBatchMiB: 1\n");
    // The same config, pointed at lite.
    let text = std::fs::read_to_string(&a.config).unwrap();
    assert!(text.contains(&endpoint()));
    std::fs::write(&a.config, text.replace(&endpoint(), &lite)).unwrap();

    // Only the float collection: lite refuses binary vectors.
    let run = |args: &[&str]| -> String {
        let o = std::process::Command::new(mm_tests::tool::binary())
            .current_dir(&env.dir)
            .args(args)
            .args(["--col", "books", &format!("--config={}", a.config.display())])
            .output()
            .unwrap();
        let out = format!("{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(o.status.success(), "{args:?}: {out}");
        out
    };
    let out = run(&["migrate"]);
    assert!(out.contains("milvus_lite-3.2.2"), "the version is printed as the server says it: {out}");
    assert!(out.contains("verified: every collection"), "{out}");
    // Again: every batch acknowledged, nothing sent twice, still verified.
    assert!(run(&["load"]).contains("verified: every collection"));
    assert!(run(&["verify", "--full"]).contains("verified: every primary key"));

    // Lite's own client (pymilvus 3): every live id once in its 2.x partition, vectors equal.
    let c = env.expected.collections.iter().find(|c| c.name == "books").unwrap();
    let mut expect = serde_json::Map::new();
    for p in &c.partitions {
        // As plan_e2e and node_host_e2e see the mapping of tags 2.x rejects.
        let name = match p.tag.as_str() {
            "" => "_default",
            "2024 Q1/sales" => "p_2024_Q1_sales",
            other => other,
        };
        let rows: Vec<serde_json::Value> = p
            .segments
            .iter()
            .flat_map(|s| s.ids.iter().enumerate().map(move |(i, id)| (s, i, *id)))
            .map(|(s, i, id)| {
                let v: Vec<f32> = s.vectors[i * 32..(i + 1) * 32].chunks(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
                serde_json::json!([id, v])
            })
            .collect();
        expect.insert(name.to_string(), rows.into());
    }
    let script = r#"
import json, sys
from pymilvus import MilvusClient
uri, name, path = sys.argv[1:4]
expect = json.load(open(path))
c = MilvusClient(uri=uri)
parts = set(c.list_partitions(name))
assert parts == set(expect), (parts, set(expect))
total = 0
for part, rows in expect.items():
    ids = [r[0] for r in rows]
    n = c.query(name, filter="id <= 9223372036854775807", output_fields=["count(*)"], partition_names=[part])[0]["count(*)"]
    assert n == len(rows), (part, n, len(rows))
    got = {}
    for k in range(0, len(ids), 500):
        for r in c.query(name, filter=f"id in {ids[k:k + 500]}", output_fields=["id", "data"], partition_names=[part]):
            assert r["id"] not in got, ("twice", r["id"])
            got[r["id"]] = [float(x) for x in r["data"]]
    assert set(got) == set(ids), (part, len(got), len(ids))
    bad = [i for i, v in rows if got[i] != v]
    assert not bad, (part, bad[:5])
    total += len(rows)
print("lite holds", total, "rows as the source")
"#;
    let file = env.dir.join("lite-expect.json");
    std::fs::write(&file, serde_json::to_vec(&expect).unwrap()).unwrap();
    let o = std::process::Command::new(&py).args(["-c", script, &format!("http://{lite}"), &a.collection, file.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success(), "{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    eprintln!("{}", String::from_utf8_lossy(&o.stdout));
}
