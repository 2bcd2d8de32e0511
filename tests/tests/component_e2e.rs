//! The component as a product: `component --out FILE --wit DIR` writes the exact bytes the
//! binary runs (their SHA-256 is the one `version` prints) and the WIT package they implement.

use mm_tests::milvus_env::s;
use mm_tests::tool::{run, text};
use sha2::{Digest, Sha256};

#[test]
fn the_component_and_its_wit_are_written_as_the_binary_runs_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("engine.wasm");
    let wit = dir.path().join("wit");
    let o = run(dir.path(), &["component", "--out", s(&out), "--wit", s(&wit)]);
    assert!(o.status.success(), "{}", text(&o));
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(&bytes[..8], b"\0asm\x0d\0\x01\0", "a component (layer 1), not a core module");
    let sha: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    let v = run(dir.path(), &["version"]);
    let version = String::from_utf8_lossy(&v.stdout).to_string();
    assert!(version.contains(&format!("component sha256 {sha}")), "{version}");
    let world = std::fs::read_to_string(wit.join("world.wit")).unwrap();
    let api = world.lines().find(|l| l.starts_with("package ")).unwrap().trim_start_matches("package ").trim_end_matches(';');
    assert!(version.contains(&format!("component API {api}")), "{version}");
    for f in ["engine.wit", "blob-store.wit", "meta-db.wit", "milvus.wit", "report.wit", "types.wit"] {
        let repo = std::fs::read_to_string(mm_tests::tool::repo_root().join("wit").join(f)).unwrap();
        assert_eq!(std::fs::read_to_string(wit.join(f)).unwrap(), repo, "{f} as in the repository");
    }
}
