//! Running the built `milvus-migration` binary and the project's Python, for end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The release binary next to this test executable (`target/<profile>/milvus-migration`).
/// The test command builds it first; a missing binary fails loudly.
pub fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("MILVUS_MIGRATION_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
    let bin = profile_dir.join("milvus-migration");
    assert!(
        bin.is_file(),
        "{} is missing: build it first (`cargo build --release --workspace --all-targets`, as scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// Runs the binary in `cwd` with `args`.
pub fn run(cwd: &Path, args: &[&str]) -> Output {
    Command::new(binary()).current_dir(cwd).args(args).output().expect("run milvus-migration")
}

/// The project's Python with numpy: MM_PYTHON, else `$MM_VENV` or `.venv` (made by
/// scripts/python-env.sh). Missing is a failure, never a skip.
pub fn python() -> PathBuf {
    let venv = std::env::var("MM_VENV").map(PathBuf::from).unwrap_or_else(|_| repo_root().join(".venv"));
    let p = std::env::var("MM_PYTHON").map(PathBuf::from).unwrap_or_else(|_| venv.join("bin/python"));
    assert!(p.is_file(), "{} is missing: run scripts/python-env.sh (the test command does)", p.display());
    p
}

pub fn text(o: &Output) -> String {
    format!("status {:?}\nstdout:\n{}\nstderr:\n{}", o.status.code(), String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A migration.yaml for a local dump; `meta` is the `meta:` section's body lines.
pub fn dump_config(dir: &Path, meta: &str, tables: &Path, out: &Path, extra: &str) -> PathBuf {
    let text = format!(
        "dumper:\n  worker:\n    limit: 2\n    workMode: milvus1x\n    reader:\n      bufferSize: 1024\n    writer:\n      bufferSize: 1024\n\
         meta:\n{meta}\nsource:\n  mode: local\n  local:\n    tablesDir: {}\ntarget:\n  mode: local\n  local:\n    outputDir: {}\n{extra}",
        tables.display(),
        out.display()
    );
    let path = dir.join("migration.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Overwrites `bytes` at `offset` of a file (a fixture made bad on purpose).
pub fn patch(path: &Path, offset: usize, bytes: &[u8]) {
    let mut b = std::fs::read(path).unwrap();
    b[offset..offset + bytes.len()].copy_from_slice(bytes);
    std::fs::write(path, b).unwrap();
}

/// Every file below `dir` (in no particular order).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}
