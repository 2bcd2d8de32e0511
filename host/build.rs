//! Builds the guest component (wasm32-wasip2) so the binary can embed it: one file to ship.
//!
//! A nested cargo with its own target dir (target/<profile>/guest-wasm), so it never waits on the
//! outer build's lock. Also compiles the Milvus proto subset (proto/) into a tonic client, with protox
//! so that no system protoc is needed.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest.parent().unwrap().to_path_buf();
    compile_protos(&workspace.join("proto"));
    embed_wit(&workspace.join("wit"));
    build_guest(&workspace);
}

/// The WIT package, for `milvus-migration component --wit DIR` and the API version check: its
/// version (from `package milvus:migration@X;`) and every file's text.
fn embed_wit(wit: &std::path::Path) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(wit)
        .expect("read wit/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wit"))
        .collect();
    files.sort();
    let mut api = None;
    let mut table = String::from("/// The WIT package: (file name, text), sorted by name.\npub const WIT_FILES: &[(&str, &str)] = &[\n");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let text = std::fs::read_to_string(f).expect("read a wit file");
        if let Some(line) = text.lines().find(|l| l.trim_start().starts_with("package ")) {
            api = Some(line.trim().trim_start_matches("package ").trim_end_matches(';').trim().to_string());
        }
        table.push_str(&format!("    ({:?}, include_str!({:?})),\n", f.file_name().unwrap().to_string_lossy(), f.display().to_string()));
    }
    table.push_str("];\n");
    let digest = wit.join("API-DIGEST");
    println!("cargo:rerun-if-changed={}", digest.display());
    table.push_str(&format!("/// The committed digest of each API version (`wit/API-DIGEST`).\n#[cfg(test)]\npub const API_DIGESTS: &str = include_str!({:?});\n", digest.display().to_string()));
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("wit_files.rs");
    std::fs::write(out, table).expect("write wit_files.rs");
    println!("cargo:rustc-env=COMPONENT_API={}", api.expect("wit/ declares `package milvus:migration@<version>;`"));
}

fn compile_protos(proto_dir: &std::path::Path) {
    let files = ["common.proto", "schema.proto", "milvus.proto"].map(|f| proto_dir.join(f));
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let fds = protox::compile(&files, [proto_dir]).expect("parse proto/*.proto");
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        // The `Connect` RPC would collide with tonic's `connect(dst)` constructor.
        .build_transport(false)
        .include_file("milvus_proto.rs")
        .compile_fds(fds)
        .expect("generate the Milvus gRPC client");
}

fn build_guest(workspace: &std::path::Path) {
    for p in ["guest/src", "guest/Cargo.toml", "wit", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", workspace.join(p).display());
    }
    // Beside the outer profile's artifacts (target/<profile>/guest-wasm), not inside OUT_DIR: OUT_DIR
    // changes whenever the host's features or dependencies do (a `cargo test --workspace` after a
    // `cargo build -p`, say), and a fresh OUT_DIR would compile the guest and arrow-rs again from
    // nothing. Its own target dir, so the nested cargo never waits on the outer build's lock.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let profile = out_dir.ancestors().nth(3).expect("OUT_DIR is target/<profile>/build/<pkg>/out");
    let target_dir = profile.join("guest-wasm");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    require_wasm_target();
    let status = Command::new(cargo)
        .current_dir(workspace)
        .args(["build", "--release", "--target", "wasm32-wasip2", "-p", "guest"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .status()
        .expect("run cargo to build the guest component");
    if !status.success() {
        panic!(
            "building the guest component failed (is the target installed? `rustup target add wasm32-wasip2`)"
        );
    }
    let wasm = target_dir.join("wasm32-wasip2/release/guest.wasm");
    assert!(wasm.exists(), "guest component missing at {}", wasm.display());
    println!("cargo:rustc-env=GUEST_COMPONENT_PATH={}", wasm.display());
}

/// Stops with one line naming the fix when the toolchain has no wasm32-wasip2 standard library
/// (otherwise the nested build fails with pages of "can't find crate for `core`").
fn require_wasm_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let libdir = Command::new(&rustc).args(["--print", "target-libdir", "--target", "wasm32-wasip2"]).output();
    let present = libdir.ok().filter(|o| o.status.success()).map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if !present.is_some_and(|dir| dir.is_dir() && std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some())) {
        eprintln!("error: the Rust target wasm32-wasip2 is not installed (the engine component is built for it); run: rustup target add wasm32-wasip2");
        std::process::exit(1);
    }
}
