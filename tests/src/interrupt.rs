//! Interrupting the binary for exactly-once tests: `kill -9` at a seeded moment or at a named
//! step (the host's `MILVUS_MIGRATION_CRASH_AT` hook), each attempt with its own output dir and
//! 2.x collection, and the check that no npy file is half-written under its final name.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::milvus_env::{s, unique, Env};
use crate::npy::NpyFile;
use crate::tool::{binary, text};

/// A small, seeded generator (splitmix64): the kill times are the same on every run.
pub struct Rng(pub u64);

impl Rng {
    pub fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Where and how a run is interrupted.
#[derive(Debug, Clone)]
pub enum Kill {
    /// SIGKILL `after` into `dump` (or into `load` when `in_load`).
    At { in_load: bool, after: Duration },
    /// The process kills itself at a named step (host test hook), in dump or load.
    Step { in_load: bool, point: &'static str },
}

/// One attempt's own target: an output dir (with its journal) and a 2.x collection name.
pub struct Attempt {
    pub config: PathBuf,
    pub out: PathBuf,
    pub collection: String,
}

/// Attempt `k` of the test's config: its own output dir, and 1.x collection `source` renamed
/// to a new 2.x collection; `migration` adds keys to the `migration:` section.
pub fn attempt(env: &Env, k: usize, source: &str, migration: &str) -> Attempt {
    let out = env.dir.join(format!("out-{k}"));
    let collection = unique(&format!("{source}{k}"));
    let base = std::fs::read_to_string(&env.config).unwrap().replace(s(&env.dir.join("out")), s(&out));
    let config = env.dir.join(format!("migration-{k}.yaml"));
    std::fs::write(&config, format!("{base}migration:\n  rename:\n    {source}: {collection}\n{migration}")).unwrap();
    Attempt { config, out, collection }
}

pub fn spawn(env: &Env, a: &Attempt, cmd: &str, crash_at: Option<&str>) -> Child {
    let mut c = Command::new(binary());
    c.current_dir(&env.dir).arg(cmd).arg(format!("--config={}", s(&a.config))).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(p) = crash_at {
        c.env("MILVUS_MIGRATION_CRASH_AT", p);
    }
    c.spawn().unwrap()
}

pub fn finish(child: Child, what: &str) -> std::process::Output {
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{what}:\n{}", text(&o));
    o
}

/// Runs `cmd` and SIGKILLs it after `after` (if it has not ended). True when it was killed.
pub fn run_killed_after(env: &Env, a: &Attempt, cmd: &str, after: Duration) -> bool {
    let mut child = spawn(env, a, cmd, None);
    let deadline = Instant::now() + after;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            finish(child, &format!("{cmd} (not killed, it ended first)"));
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    let o = child.wait_with_output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    // It may have ended on its own in the last few milliseconds.
    assert!(o.status.success() || o.status.signal() == Some(libc::SIGKILL), "{cmd}:\n{}", text(&o));
    !o.status.success()
}

/// Runs `cmd` with the crash hook; it must die at that step.
pub fn run_killed_at(env: &Env, a: &Attempt, cmd: &str, point: &str) {
    let o = spawn(env, a, cmd, Some(point)).wait_with_output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(o.status.signal(), Some(libc::SIGKILL), "{cmd} did not reach {point}:\n{}", text(&o));
}

/// Every npy file under `dir` is complete: its header's shape matches its length.
pub fn no_torn_npy(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.map(Result::unwrap) {
        let p = e.path();
        if p.is_dir() {
            no_torn_npy(&p);
        } else if p.extension().is_some_and(|x| x == "npy") {
            NpyFile::read(&p).unwrap_or_else(|err| panic!("half-written npy under its final name: {err:#}"));
        }
    }
}

