//! `serve` with tenants side by side on the live Milvus 2.3.5: a tenant whose units run out of
//! memory or CPU budget fails alone while another tenant's migration lands every row once; the
//! active-job quota answers 429 while other tenants' jobs start at once; the kernel's record of
//! file events shows a job touched only its tenant's root; a job's units, progress and log
//! lines arrive as events; and `submit` runs the guide's file through the service.

use std::path::Path;
use std::process::Command;

use inotify::{Inotify, WatchMask};
use mm_tests::milvus_env::{endpoint, pymilvus_check, s, unique, Env};
use mm_tests::service::{call, ended, serve, sha, wait, World};
use mm_tests::tool::binary;
use mm_tests::{generate, SegmentSpec, Spec};

const A: &str = "token-a";
const M: &str = "token-m";
const C: &str = "token-c";
const B: &str = "token-b";


/// Tenant a's 1.x installation, copied into the roots of m (too little memory per unit) and c
/// (too little CPU budget per unit); tenant b holds a planted file nobody may open.
async fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let name = unique("isolated");
    let spec = Spec::one_collection(9, &name, 8, vec![SegmentSpec { rows: 60_000, deleted: vec![7, 2], ..Default::default() }, SegmentSpec { rows: 300, ..Default::default() }]);
    let g = generate(&spec, &dir.join("a/src"), true).await.unwrap();
    for t in ["m", "c"] {
        std::fs::create_dir_all(dir.join(t)).unwrap();
        let ok = Command::new("cp").args(["-r", s(&dir.join("a/src")), s(&dir.join(t).join("src"))]).status().unwrap();
        assert!(ok.success());
    }
    // In m's copy, the small segment claims 2^30 rows (sparse files): a legal size whose
    // deletion bitset alone (128 MiB) does not fit m's instances.
    let c = &g.expected.collections[0];
    let seg = &c.partitions[0].segments[1].segment_id;
    let seg_dir = dir.join("m/src/db/tables").join(&c.name).join(seg);
    sparse_counted_file(&seg_dir.join(format!("{seg}.uid")), 8 << 30);
    sparse_counted_file(&seg_dir.join(format!("{seg}.rv")), 32 << 30);
    std::fs::create_dir_all(dir.join("b/secret")).unwrap();
    std::fs::write(dir.join("b/secret/meta.sqlite"), b"planted: no job may open this").unwrap();
    // Each tenant's Milvus grant is its own database: the same collection names never meet.
    let tenant = |id: &str, token: &str, quotas: &str| {
        format!(
            "- id: {id}\n  tokens: [{{sha256: {}}}]\n  stores: {{data: {{url: \"file://{}\"}}}}\n  milvus: {{main: {{endpoint: \"{}\", database: {}}}}}\n  quotas: {{{quotas}}}\n",
            sha(token),
            s(&dir.join(id)),
            endpoint(),
            if id == "a" { "default".to_string() } else { format!("tenant_{id}") },
        )
    };
    let config = dir.join("serve.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:0\ndataDir: {}\nconcurrentUnits: 4\ntenants:\n{}{}{}{}",
            s(&dir.join("service")),
            tenant("a", A, "activeJobs: 1, concurrentUnits: 2"),
            tenant("m", M, "memoryMiBPerUnit: 16"),
            tenant("c", C, "fuelPerUnit: 2000000"),
            tenant("b", B, "activeJobs: 1"),
        ),
    )
    .unwrap();
    let env = Env { _dir: tempfile::tempdir().unwrap(), dir: dir.clone(), config: config.clone(), expected: g.expected };
    World { _tmp: tmp, dir, config, env, name }
}

/// Makes `path` a sparse file of `payload + 8` bytes whose u64 header says `payload`.
fn sparse_counted_file(path: &Path, payload: u64) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(path).unwrap();
    f.write_all(&payload.to_le_bytes()).unwrap();
    f.set_len(payload + 8).unwrap();
}

fn migrate(prefix: &str) -> serde_json::Value {
    serde_json::json!({
        "kind": "migrate",
        "source": {"meta": {"sqlite": {"store": "data", "path": "src/db/meta.sqlite"}}, "tables": {"store": "data", "prefix": "src/db/tables"}},
        "staging": {"store": "data", "prefix": prefix},
        "target": {"milvus": "main"},
        "options": {"index": "none"},
    })
}

/// Every file event under `dir` (recursively, for the directories that exist now).
fn watch(dir: &Path) -> Inotify {
    let ino = Inotify::init().unwrap();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        ino.watches().add(&d, WatchMask::ALL_EVENTS).unwrap();
        dirs.extend(std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()));
    }
    // Our own listing above is not the service's.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let mut ino = ino;
    let ours = events_of(&mut ino);
    assert!(!ours.is_empty(), "the watch records events");
    ino
}

fn events_of(ino: &mut Inotify) -> Vec<String> {
    let mut buf = [0u8; 64 << 10];
    match ino.read_events(&mut buf) {
        Ok(evs) => evs.map(|e| format!("{:?} {:?}", e.mask, e.name)).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => vec![],
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn a_tenant_out_of_memory_or_cpu_fails_alone_while_another_lands_every_row_and_quotas_answer_429() {
    let w = world().await;
    let mut planted = watch(&w.dir.join("b"));
    let svc = serve(&w.config);
    let u = &svc.url;
    let jobs = format!("{u}/v1/jobs");

    let r = call("POST", &jobs, Some(A), Some(&migrate("out")), &[]).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let a = r.json()["id"].as_str().unwrap().to_string();
    // a's quota is one active job: a second is refused with a time to come back...
    let r = call("POST", &jobs, Some(A), Some(&migrate("out2")), &[]).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (429, Some("quota")), "{}", r.body);
    assert!(r.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() > 0);
    // ...while the other tenants' jobs start at once.
    let mut started = Vec::new();
    for token in [M, C] {
        let r = call("POST", &jobs, Some(token), Some(&migrate("out")), &[]).await;
        assert_eq!(r.status, 202, "{}", r.body);
        started.push(r.json()["id"].as_str().unwrap().to_string());
    }
    let [m, c] = <[String; 2]>::try_from(started).unwrap();

    // Both leave the queue while a's job still runs.
    wait(u, M, &m, |st| st != "queued").await;
    wait(u, C, &c, |st| st != "queued").await;
    let ja_then = call("GET", &format!("{jobs}/{a}"), Some(A), None, &[]).await.json();
    assert!(!ended(ja_then["state"].as_str().unwrap()), "m and c started while a's job ran: {ja_then:#}");
    let jm = wait(u, M, &m, ended).await;
    let jc = wait(u, C, &c, ended).await;
    // Each failed alone, in its units, naming the tenant's quota.
    let events_of_job = |token: &'static str, id: String| {
        let url = format!("{jobs}/{id}/events");
        async move { call("GET", &url, Some(token), None, &[]).await.body }
    };
    let (em, ec) = (events_of_job(M, m.clone()).await, events_of_job(C, c.clone()).await);
    assert_eq!(jm["state"], "failed", "{jm:#}");
    assert!(em.contains("\"state\":\"failed\"") && em.contains("memory limit exceeded (16 MiB; the tenant's quota memoryMiBPerUnit)"), "{em}");
    assert_eq!(jc["state"], "failed", "{jc:#}");
    assert!(ec.contains("\"state\":\"failed\"") && ec.contains("CPU budget exceeded (2000000 units of fuel; the tenant's quota fuelPerUnit)"), "{ec}");

    // a's job: every row once, the counts the generator expects (as when it runs alone).
    let ja = wait(u, A, &a, ended).await;
    assert_eq!(ja["state"], "succeeded", "{ja:#}");
    pymilvus_check(&w.env, &w.name, &[]);
    assert_eq!(ja["progress"]["phase"], "load", "{ja:#}");

    // Its units, progress and log lines came as events, in one gap-free sequence.
    let events = call("GET", &format!("{jobs}/{a}/events"), Some(A), None, &[]).await.body;
    for needle in ["event: unit", "\"state\":\"started\"", "\"state\":\"ok\"", "event: progress", "\"phase\":\"dump\"", "event: log", "event: end"] {
        assert!(events.contains(needle), "{needle} missing from:\n{events}");
    }
    let seqs: Vec<u64> = events.lines().filter_map(|l| l.strip_prefix("id:")).map(|v| v.trim().parse().unwrap()).collect();
    assert!(seqs.iter().enumerate().all(|(i, s)| *s == i as u64 + 1), "{events}");
    assert!(events.trim_end().ends_with("event: end\ndata: {\"state\":\"succeeded\"}"), "the end is last:\n{events}");
    let logs = call("GET", &format!("{jobs}/{a}/logs"), Some(A), None, &[]).await;
    assert!(logs.status == 200 && logs.body.contains(&format!("info {0} (early): created collection \"{0}\"", w.name)), "{}", logs.body);
    assert!(logs.body.contains("warn ") && logs.body.contains("no index (migration.index: none)"), "{}", logs.body);

    let t = call("GET", &format!("{u}/v1/tenant"), Some(C), None, &[]).await.json();
    assert_eq!(t["quotas"]["fuelPerUnit"], 2_000_000u64);
    assert_eq!(t["usage"]["runningUnits"], 0);

    // Nothing opened, read, listed or written tenant b's planted file or directory.
    let seen = events_of(&mut planted);
    assert!(seen.is_empty(), "tenant b's root was touched: {seen:?}");
    // Each tenant's job wrote only under its own root.
    for t in ["a", "m", "c"] {
        assert!(w.dir.join(t).join("out").is_dir(), "{t}'s staging is in its own root");
    }
    assert!(!w.dir.join("b/out").exists() && !w.dir.join("out").exists());
}

#[tokio::test]
async fn submit_sends_the_guides_file_as_a_job_and_follows_it_to_its_report() {
    let w = world().await;
    let svc = serve(&w.config);
    let yaml = w.dir.join("migration.yaml");
    std::fs::write(
        &yaml,
        format!(
            "dumper:\n  worker:\n    workMode: milvus1x\nmeta:\n  mode: sqlite\n  sqliteFile: {a}/src/db/meta.sqlite\n\
             source:\n  mode: local\n  local:\n    tablesDir: {a}/src/db/tables\n\
             target:\n  mode: local\n  local:\n    outputDir: submitted\n  milvus2x:\n    endpoint: 127.0.0.1:1\n\
             migration:\n  badData: skip\n  leaseSeconds: 30\n",
            a = s(&w.dir.join("a"))
        ),
    )
    .unwrap();
    let report = w.dir.join("report.json");
    let run = |extra: &[&str]| {
        let mut c = Command::new(binary());
        c.args(["submit", "--server", &svc.url, "--token-env", "MM_TOKEN", "--config", s(&yaml), "--store", "data"]);
        c.args(extra).env("MM_TOKEN", A).current_dir(&w.dir);
        c.output().unwrap()
    };
    // A path of this machine outside the store's root is refused before anything is sent.
    let o = run(&["--kind", "dump", "--source-root", "/nowhere"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("meta.sqliteFile") && err.contains("is not under --source-root /nowhere"), "{err}");

    let o = run(&["--kind", "dump", "--source-root", s(&w.dir.join("a")), "--report", s(&report)]);
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains("submitted") && out.contains("succeeded"), "{out}");
    assert!(err.contains("migration.leaseSeconds is the server's to set"), "{err}");
    // The dump is where the request put it, inside tenant a's store.
    let dumped = w.dir.join("a/submitted").join(&w.name);
    assert!(dumped.is_dir(), "{out}\n{err}");
    // Every live row, checked against the generator's own expectations.
    w.env.expected.check_dump(&w.dir.join("a/submitted")).unwrap();
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!((r["command"].as_str(), r["outcome"].as_str()), (Some("dump"), Some("succeeded")), "{r:#}");

    // A wrong token is the server's refusal, named.
    let o = Command::new(binary())
        .args(["submit", "--server", &svc.url, "--token-env", "MM_TOKEN", "--config", s(&yaml), "--store", "data", "--kind", "dump", "--source-root", s(&w.dir.join("a"))])
        .env("MM_TOKEN", "wrong")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("401") && err.contains("unauthenticated"), "{err}");
}
