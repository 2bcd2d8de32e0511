//! One run at a time per dump (issue 11), against the real Milvus 2.3.5: two `load`s started
//! together on one dump import it once and the loser names the holder; `--wait` waits and then
//! imports nothing; a holder killed with SIGKILL is taken over and every row lands once.

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
    let ids: Vec<i64> = env.expected.collections[0].partitions.iter().flat_map(|p| &p.segments).flat_map(|s| s.ids.clone()).collect();
    pymilvus_check_with(env, name, &[("p", "p")], serde_json::json!({"exact_ids": ids}));
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
