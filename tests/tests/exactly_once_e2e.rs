//! Exactly once under `kill -9`: `dump` and `load` are killed at seeded random moments and at
//! named steps (right after Milvus took an import and before the journal recorded it, while
//! polling, during the index build, right after a file was published), then the same command is
//! run again. Every time, the real Milvus must hold each live source row exactly once (pymilvus
//! checks counts, every id once, vectors), and no npy file may be half-written under its name.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mm_tests::milvus_env::{pymilvus_check_with, s, setup, unique, Env};
use mm_tests::npy::NpyFile;
use mm_tests::tool::{binary, text};
use mm_tests::{CollectionSpec, PartitionSpec, SegmentSpec, Spec};

const SEED: u64 = 20261125;
const DUMP_POINTS: usize = 4;
const LOAD_POINTS: usize = 10;

/// One float collection: two default-partition segments and a tagged partition, with deletions.
fn spec() -> Spec {
    let seg = |rows, deleted: &[i32]| SegmentSpec { rows, deleted: deleted.to_vec(), ..Default::default() };
    Spec {
        seed: 5,
        collections: vec![CollectionSpec {
            name: "eo".into(),
            dim: 8,
            metric: 1,
            engine_type: 2,
            index_params: r#"{"nlist":8}"#.into(),
            dropped: false,
            segments: vec![seg(300, &[4, 299, 4]), seg(200, &[0])],
            partitions: vec![PartitionSpec { tag: "p".into(), dropped: false, segments: vec![seg(150, &[149, 7])] }],
        }],
    }
}

/// A small, seeded generator (splitmix64): the kill times are the same on every run.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Where and how a run is interrupted.
#[derive(Debug, Clone)]
enum Kill {
    /// SIGKILL `after` into `dump` (or into `load` when `in_load`).
    At { in_load: bool, after: Duration },
    /// The process kills itself at a named step (host test hook), in dump or load.
    Step { in_load: bool, point: &'static str },
}

/// One attempt's own target: an output dir (with its journal) and a 2.x collection name.
struct Attempt {
    config: PathBuf,
    out: PathBuf,
    collection: String,
}

fn attempt(env: &Env, k: usize) -> Attempt {
    let out = env.dir.join(format!("out-{k}"));
    let collection = unique(&format!("eo{k}"));
    let base = std::fs::read_to_string(&env.config).unwrap().replace(s(&env.dir.join("out")), s(&out));
    let config = env.dir.join(format!("migration-{k}.yaml"));
    std::fs::write(&config, format!("{base}migration:\n  rename:\n    eo: {collection}\n")).unwrap();
    Attempt { config, out, collection }
}

fn spawn(env: &Env, a: &Attempt, cmd: &str, crash_at: Option<&str>) -> Child {
    let mut c = Command::new(binary());
    c.current_dir(&env.dir).arg(cmd).arg(format!("--config={}", s(&a.config))).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(p) = crash_at {
        c.env("MILVUS_MIGRATION_CRASH_AT", p);
    }
    c.spawn().unwrap()
}

fn finish(child: Child, what: &str) -> std::process::Output {
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{what}:\n{}", text(&o));
    o
}

/// Runs `cmd` and SIGKILLs it after `after` (if it has not ended). True when it was killed.
fn run_killed_after(env: &Env, a: &Attempt, cmd: &str, after: Duration) -> bool {
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
fn run_killed_at(env: &Env, a: &Attempt, cmd: &str, point: &str) {
    let o = spawn(env, a, cmd, Some(point)).wait_with_output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(o.status.signal(), Some(libc::SIGKILL), "{cmd} did not reach {point}:\n{}", text(&o));
}

/// Every npy file under `dir` is complete: its header's shape matches its length.
fn no_torn_npy(dir: &Path) {
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

/// Interrupts as `kill` says, runs the interrupted command again, finishes the migration, and
/// checks that Milvus holds every live row exactly once.
fn interrupted_migration(env: &Env, k: usize, kill: &Kill) -> bool {
    let a = attempt(env, k);
    let killed = match kill {
        Kill::At { in_load: false, after } => run_killed_after(env, &a, "dump", *after),
        Kill::Step { in_load: false, point } => {
            run_killed_at(env, &a, "dump", point);
            true
        }
        Kill::At { in_load: true, after } => {
            finish(spawn(env, &a, "dump", None), "dump");
            run_killed_after(env, &a, "load", *after)
        }
        Kill::Step { in_load: true, point } => {
            finish(spawn(env, &a, "dump", None), "dump");
            run_killed_at(env, &a, "load", point);
            true
        }
    };
    no_torn_npy(&a.out);
    if matches!(kill, Kill::At { in_load: false, .. } | Kill::Step { in_load: false, .. }) {
        finish(spawn(env, &a, "dump", None), "dump again");
    }
    let o = finish(spawn(env, &a, "load", None), &format!("load after {kill:?}"));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("verified"), "{kill:?}: load did not verify:\n{out}");
    let ids: Vec<i64> = env.expected.collections[0].partitions.iter().flat_map(|p| &p.segments).flat_map(|s| s.ids.clone()).collect();
    pymilvus_check_with(env, "eo", &[("p", "p")], serde_json::json!({"collection": a.collection, "exact_ids": ids}));
    killed
}

#[tokio::test]
async fn killed_anywhere_a_rerun_leaves_each_live_row_exactly_once() {
    let env = setup(&spec(), "").await;

    // A clean run sets the time scale of the random points.
    let a = attempt(&env, 0);
    let t0 = Instant::now();
    finish(spawn(&env, &a, "dump", None), "dump");
    let dump_time = t0.elapsed();
    let t1 = Instant::now();
    finish(spawn(&env, &a, "load", None), "load");
    let load_time = t1.elapsed();
    eprintln!("clean run: dump {dump_time:?}, load {load_time:?}");

    let mut kills = vec![
        Kill::Step { in_load: false, point: "file-published:3" },
        Kill::Step { in_load: true, point: "import-submitted:1" },
        Kill::Step { in_load: true, point: "import-submitted:3" },
        Kill::Step { in_load: true, point: "file-published:2" },
        Kill::Step { in_load: true, point: "import-polled:2" },
        Kill::Step { in_load: true, point: "index-polled:1" },
    ];
    // Stratified: one point in each slice of the dump, then of the load, at a seeded place within it.
    let mut rng = Rng(SEED);
    for i in 0..DUMP_POINTS {
        kills.push(Kill::At { in_load: false, after: dump_time.mul_f64((i as f64 + rng.unit()) / DUMP_POINTS as f64) });
    }
    for i in 0..LOAD_POINTS {
        kills.push(Kill::At { in_load: true, after: load_time.mul_f64((i as f64 + rng.unit()) / LOAD_POINTS as f64) });
    }
    let mut killed = 0;
    for (k, kill) in kills.iter().enumerate() {
        eprintln!("point {}: {kill:?}", k + 1);
        killed += interrupted_migration(&env, k + 1, kill) as usize;
    }
    // Nearly every point must really interrupt something (a last slice may see the run end).
    assert!(killed >= kills.len() - 3, "only {killed} of {} runs were interrupted", kills.len());
}
