//! The component as a product: the exact bytes this binary runs, its SHA-256, the WIT package
//! it implements (`milvus-migration component --out FILE --wit DIR`), and the check that the
//! WIT never changes without a version bump.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::sandbox::GUEST_COMPONENT;

include!(concat!(env!("OUT_DIR"), "/wit_files.rs"));

/// `milvus:migration@<version>`, from `wit/world.wit`.
pub const API: &str = env!("COMPONENT_API");

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of the component bytes the binary runs.
pub fn sha256() -> String {
    hex(&Sha256::digest(GUEST_COMPONENT))
}

/// SHA-256 over the WIT package: each file's name and text, in name order.
#[cfg(test)]
pub fn wit_digest() -> String {
    let mut h = Sha256::new();
    for (name, text) in WIT_FILES {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        h.update([0]);
    }
    hex(&h.finalize())
}

/// Writes the component to `out` and, with `wit`, the WIT package into that directory.
pub fn write(out: &Path, wit: Option<&Path>) -> anyhow::Result<()> {
    std::fs::write(out, GUEST_COMPONENT).map_err(|e| anyhow::anyhow!("cannot write the component to {}: {e}", out.display()))?;
    println!("wrote {} ({} bytes, sha256 {}), {API}", out.display(), GUEST_COMPONENT.len(), sha256());
    if let Some(dir) = wit {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        for (name, text) in WIT_FILES {
            std::fs::write(dir.join(name), text).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", dir.join(name).display()))?;
        }
        println!("wrote the WIT package ({} files) to {}", WIT_FILES.len(), dir.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `wit/API-DIGEST` holds one line per released API version, oldest first:
    /// `milvus:migration@<version> <sha256 of the WIT>`. Changing `wit/` without bumping the
    /// version fails here; so does a bump whose digest line was not added.
    #[test]
    fn the_wit_does_not_change_without_a_version_bump() {
        let lines: Vec<(&str, &str)> = API_DIGESTS
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| l.split_once(' ').expect("`<api> <digest>` lines"))
            .collect();
        let digest = wit_digest();
        let (last_api, last_digest) = *lines.last().expect("wit/API-DIGEST lists at least the current version");
        assert_eq!(
            last_api, API,
            "wit/world.wit declares {API} but the newest line of wit/API-DIGEST is {last_api}: add the line `{API} {digest}`"
        );
        assert_eq!(
            last_digest.trim(),
            digest,
            "wit/ changed but {API} did not: a changed API needs a new version in wit/world.wit (and the line `<new api> {digest}` in \
             wit/API-DIGEST); never edit the line of a released version"
        );
        for w in lines.windows(2) {
            assert_ne!(w[0].1, w[1].1, "{} and {} have the same WIT: a version bump without a change", w[0].0, w[1].0);
        }
    }

    /// The shipped component imports the interfaces of its world and the WASI cli and io
    /// interfaces std links, and a hash seed (no clocks, files or sockets), so a host supplies
    /// nothing the contract (wit/README.md) does not describe. A new import fails here.
    #[test]
    fn the_component_imports_its_world_and_only_the_wasi_std_needs() {
        let mut cfg = wasmtime::Config::new();
        cfg.wasm_component_model(true);
        let engine = wasmtime::Engine::new(&cfg).unwrap();
        let component = wasmtime::component::Component::new(&engine, GUEST_COMPONENT).unwrap();
        let mut imports: Vec<String> =
            component.component_type().imports(&engine).map(|(name, _)| name.split('@').next().unwrap().to_string()).collect();
        imports.sort();
        let world = ["milvus:migration/blob-store", "milvus:migration/meta-db", "milvus:migration/milvus", "milvus:migration/report", "milvus:migration/types"];
        // What Rust's std links on wasm32-wasip2 (stdio for panics, environment, exit), linked
        // with an empty context; a new one (clocks, random, files, sockets) must be a decision.
        let std_wasi = [
            "wasi:cli/environment", "wasi:cli/exit", "wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout",
            "wasi:cli/terminal-input", "wasi:cli/terminal-output", "wasi:cli/terminal-stderr", "wasi:cli/terminal-stdin",
            "wasi:cli/terminal-stdout", "wasi:io/error", "wasi:io/poll", "wasi:io/streams",
            // Since 0.7.0: the seed of the Parquet writer's hash maps.
            "wasi:random/insecure-seed",
        ];
        let expected: Vec<&str> = world.iter().chain(&std_wasi).copied().collect();
        assert_eq!(imports, expected, "the component imports its world and std's WASI, nothing else");
        let contract = include_str!("../../wit/README.md");
        for i in &imports[..4] {
            let short = i.trim_start_matches("milvus:migration/");
            assert!(contract.contains(&format!("### `{short}`")), "wit/README.md has no section for the import {i}");
        }
    }

    #[test]
    fn the_embedded_component_is_a_component_and_hashes_stably() {
        assert_eq!(&GUEST_COMPONENT[..4], b"\0asm");
        assert_eq!(sha256(), sha256());
        assert_eq!(sha256().len(), 64);
        assert!(WIT_FILES.iter().any(|(n, _)| *n == "engine.wit"));
    }
}
