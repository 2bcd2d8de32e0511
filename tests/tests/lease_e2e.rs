//! One run at a time per dump (issue 11), against the real Milvus 2.3.5: two `load`s started
//! together on one dump import it once and the loser names the holder; `--wait` waits and then
//! imports nothing; a holder killed with SIGKILL is taken over and every row lands once; a holder
//! stopped (SIGSTOP) past `migration.leaseSeconds` is taken over and, resumed, changes no row.

use std::process::Output;

use mm_tests::milvus_env::{cmd, pymilvus_check_with, setup, spawn, unique, Env};
use mm_tests::tool::text;
use mm_tests::{CollectionSpec, PartitionSpec, SegmentSpec, Spec};

fn spec(name: &str) -> Spec {
    let seg = |rows, deleted: &[i32]| SegmentSpec { rows, deleted: deleted.to_vec(), ..Default::default() };
    Spec {
        seed: 31,
        collections: vec![CollectionSpec {
            name: name.into(),
            dim: 8,
            metric: 1,
            engine_type: 1,
            index_params: "{}".into(),
            dropped: false,
            segments: vec![seg(300, &[4, 2]), seg(200, &[])],
            partitions: vec![PartitionSpec { tag: "p".into(), dropped: false, segments: vec![seg(100, &[0])] }],
        }],
    }
}

fn exactly_once(env: &Env, name: &str) {
    exactly_once_with(env, name, serde_json::json!({}));
}

fn exactly_once_with(env: &Env, name: &str, mut extra: serde_json::Value) {
    let ids: Vec<i64> = env.expected.collections[0].partitions.iter().flat_map(|p| &p.segments).flat_map(|s| s.ids.clone()).collect();
    extra["exact_ids"] = serde_json::json!(ids);
    pymilvus_check_with(env, name, &[("p", "p")], extra);
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test]
async fn two_loads_at_once_import_once_and_the_loser_names_the_holder() {
    let name = unique("lease");
    let env = setup(&spec(&name), "").await;
    assert!(cmd(&env, &["dump"]).status.success());

    let (a, b) = (spawn(&env, &["load"], None), spawn(&env, &["load"], None));
    let (pa, pb) = (a.id(), b.id());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let (winner, loser, winner_pid) = match (a.status.success(), b.status.success()) {
        (true, false) => (&a, &b, pa),
        (false, true) => (&b, &a, pb),
        _ => panic!("exactly one load must win:\n--- a\n{}\n--- b\n{}", text(&a), text(&b)),
    };
    assert!(stdout(winner).contains("verified:"), "{}", text(winner));
    assert_eq!(loser.status.code(), Some(1), "{}", text(loser));
    let err = String::from_utf8_lossy(&loser.stderr);
    assert!(err.contains("is in use by run") && err.contains(&format!("load, pid {winner_pid} on")) && err.contains("--wait"), "{}", text(loser));
    exactly_once(&env, &name);

    // --wait: the second run waits for the first, then finds everything imported.
    let first = spawn(&env, &["load"], None);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let second = cmd(&env, &["load", "--wait"]);
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success(), "{}", text(&first));
    assert!(second.status.success(), "{}", text(&second));
    assert!(stdout(&second).contains(&format!("{name:<24} imported 0 group(s) (0 rows), 2 already imported")), "{}", text(&second));
    exactly_once(&env, &name);
}

#[tokio::test]
async fn a_holder_killed_with_sigkill_is_taken_over_and_every_row_lands_once() {
    let name = unique("lease_kill");
    let env = setup(&spec(&name), "").await;
    assert!(cmd(&env, &["dump"]).status.success());
    // Killed (SIGKILL, by the crash hook) while waiting on its first import, lease held.
    let o = spawn(&env, &["load"], Some("import-polled:1")).wait_with_output().unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    assert!(env.dir.join("out/_lease").read_dir().unwrap().count() >= 1);
    let o = cmd(&env, &["load"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("taking over the lease"), "{}", text(&o));
    exactly_once(&env, &name);
}

/// Seven segments, each its own file group (`packSegments: false`), so that a load stopped at its
/// first write has most of its writes ahead.
fn many_segments(name: &str) -> Spec {
    let mut s = spec(name);
    let seg = |rows| SegmentSpec { rows, deleted: vec![1], ..Default::default() };
    s.collections[0].segments = (0..6).map(|i| seg(80 + i * 10)).collect();
    s
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < std::time::Duration::from_secs(90), "timed out waiting until {what}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// `/proc/<pid>/stat`'s state is `T` for a stopped process.
fn stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('T')))
}

/// The fencing case: a load stops (SIGSTOP, by the crash hook) right after its first write to
/// Milvus, alive but silent. A second `load --wait` takes the lease over once the 3 s ttl passed
/// and finishes; then the first resumes (SIGCONT: a VM woken late). Without a fence the first goes
/// on and writes its remaining groups or batches a second time; it must stop naming the takeover,
/// and Milvus must hold every live row exactly once (pymilvus: row statistics and ids).
fn stopped_holder_resumes_after_a_takeover(mode: &str, point: &str, check: serde_json::Value) {
    let name = unique(&format!("lease_stop_{mode}"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let env = rt.block_on(setup(&many_segments(&name), &format!("migration:\n  leaseSeconds: 3\n  packSegments: false\n  loadMode: {mode}\n  index: none\n")));
    assert!(cmd(&env, &["dump"]).status.success());
    let first = spawn(&env, &["load"], Some(&format!("{point}:1:stop")));
    let pid = first.id();
    wait_until("the first load stops at its first write", || stopped(pid));
    let second = spawn(&env, &["load", "--wait"], None);
    let second = second.wait_with_output().unwrap();
    assert!(second.status.success(), "{}", text(&second));
    assert!(String::from_utf8_lossy(&second.stderr).contains("taking over the lease"), "{}", text(&second));
    assert!(std::process::Command::new("kill").args(["-CONT", &pid.to_string()]).status().unwrap().success());
    let first = first.wait_with_output().unwrap();
    // Rows first: this is what fails when the resumed run writes again.
    exactly_once_with(&env, &name, check);
    assert_eq!(first.status.code(), Some(1), "the resumed run must fail:\n{}", text(&first));
    let err = String::from_utf8_lossy(&first.stderr);
    assert!(err.contains("lost the lease") && err.contains("the run that took it over has finished"), "{}", text(&first));
}

#[test]
fn a_bulk_import_holder_stopped_past_its_lease_changes_nothing_when_it_resumes() {
    stopped_holder_resumes_after_a_takeover("import", "import-submitted", serde_json::json!({}));
}

#[test]
fn an_insert_holder_stopped_past_its_lease_changes_nothing_when_it_resumes() {
    // The batch in doubt is re-sent as an Upsert: compaction drops the copy it replaced.
    stopped_holder_resumes_after_a_takeover("insert", "insert-sent", serde_json::json!({"compact": true, "no_imports": true}));
}
