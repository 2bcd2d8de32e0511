//! `serve`, the multi-tenant service, end to end on loopback against the real Milvus 2.3.5: a
//! tenant's migration lands every row once (pymilvus, entity counts), tenants cannot see or
//! reach each other's jobs, stores or connections, names and paths are checked, idempotency
//! keys hold under concurrent submits, events replay, and a service killed mid-job comes back
//! with the job `interrupted`, which resumes to an exact load.

use std::time::Duration;

use mm_tests::milvus_env::{endpoint, pymilvus_check, pymilvus_check_with, s, unique, Env};
use mm_tests::service::{call, ended, serve, sha, wait, World};
use mm_tests::{generate, SegmentSpec, Spec};

const TOKEN_A: &str = "token-of-tenant-a";
const TOKEN_B: &str = "token-of-tenant-b";
const TOKEN_R: &str = "token-of-tenant-r";

/// Two tenants, each with its own directory; tenant A's holds a 1.x installation.

async fn world(rows: u64) -> World {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let (a, b) = (dir.join("a"), dir.join("b"));
    let name = unique("served");
    let spec = Spec::one_collection(5, &name, 8, vec![SegmentSpec { rows, deleted: vec![3, 1, 3], ..Default::default() }, SegmentSpec { rows: 40, ..Default::default() }]);
    let g = generate(&spec, &a.join("src"), true).await.unwrap();
    // Tenant B's own file, which no request of A may reach.
    std::fs::create_dir_all(b.join("secret")).unwrap();
    std::fs::write(b.join("secret/meta.sqlite"), b"not for tenant a").unwrap();
    // Tenant r: the same installation in its own root, its own Milvus database, autoResume.
    std::fs::create_dir_all(dir.join("r")).unwrap();
    assert!(std::process::Command::new("cp").args(["-r", s(&a.join("src")), s(&dir.join("r/src"))]).status().unwrap().success());
    let config = dir.join("serve.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:0\ndataDir: {data}\ntenants:\n\
             - id: a\n  tokens: [{{sha256: {ha}}}]\n  stores: {{data: {{url: \"file://{a}\"}}}}\n  milvus: {{main: {{endpoint: \"{ep}\"}}}}\n  quotas: {{activeJobs: 3, runningJobs: 2, memoryMiBPerUnit: 256}}\n\
             - id: b\n  tokens: [{{sha256: {hb}}}]\n  stores: {{data: {{url: \"file://{b}\"}}}}\n  milvus: {{main: {{endpoint: \"{ep}\"}}}}\n\
             - id: r\n  tokens: [{{sha256: {hr}}}]\n  stores: {{data: {{url: \"file://{r}\"}}}}\n  milvus: {{main: {{endpoint: \"{ep}\", database: tenant_r}}}}\n  quotas: {{autoResume: true}}\n",
            data = s(&dir.join("service")),
            ha = sha(TOKEN_A),
            hb = sha(TOKEN_B),
            hr = sha(TOKEN_R),
            r = s(&dir.join("r")),
            a = s(&a),
            b = s(&b),
            ep = endpoint(),
        ),
    )
    .unwrap();
    let env = Env { _dir: tempfile::tempdir().unwrap(), dir: dir.clone(), config: config.clone(), expected: g.expected };
    World { _tmp: tmp, dir, config, env, name }
}

fn migrate_request() -> serde_json::Value {
    serde_json::json!({
        "kind": "migrate",
        "source": {"meta": {"sqlite": {"store": "data", "path": "src/db/meta.sqlite"}}, "tables": {"store": "data", "prefix": "src/db/tables"}},
        "staging": {"store": "data", "prefix": "out"},
        "target": {"milvus": "main"},
        "options": {"index": "none", "load": true},
    })
}

#[tokio::test]
async fn tenants_migrate_apart_and_every_route_checks_the_tenant() {
    let w = world(300).await;
    let svc = serve(&w.config);
    let u = &svc.url;
    assert_eq!(call("GET", &format!("{u}/healthz"), None, None, &[]).await.status, 200);
    let openapi = call("GET", &format!("{u}/openapi.json"), None, None, &[]).await;
    let committed = std::fs::read_to_string(mm_tests::tool::repo_root().join("host/src/serve/openapi.json")).unwrap();
    assert_eq!(openapi.body, committed, "the served OpenAPI document is the committed one");

    // Authentication.
    let r = call("POST", &format!("{u}/v1/jobs"), None, Some(&migrate_request()), &[]).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.headers["www-authenticate"], "Bearer");
    assert_eq!(r.headers["content-type"], "application/problem+json");
    assert_eq!(r.json()["code"], "unauthenticated");
    assert_eq!(call("GET", &format!("{u}/v1/jobs"), Some("wrong"), None, &[]).await.status, 401);

    // Tenant A's migration.
    let r = call("POST", &format!("{u}/v1/jobs"), Some(TOKEN_A), Some(&migrate_request()), &[]).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(r.headers["location"], format!("/v1/jobs/{id}").as_str());

    // Tenant B sees nothing of it, on every route.
    for (m, path) in [("GET", ""), ("POST", "/cancel"), ("POST", "/resume"), ("GET", "/report"), ("GET", "/events"), ("GET", "/logs")] {
        let r = call(m, &format!("{u}/v1/jobs/{id}{path}"), Some(TOKEN_B), None, &[]).await;
        assert_eq!((r.status, r.json()["code"].as_str()), (404, Some("job-not-found")), "{m} {path}: {}", r.body);
    }
    assert!(call("GET", &format!("{u}/v1/jobs"), Some(TOKEN_B), None, &[]).await.json()["jobs"].as_array().unwrap().is_empty());

    // Names not granted, paths outside the store, limits above the quota.
    let mut bad = migrate_request();
    bad["staging"]["store"] = "theirs".into();
    let r = call("POST", &format!("{u}/v1/jobs"), Some(TOKEN_A), Some(&bad), &[]).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (403, Some("not-granted")), "{}", r.body);
    let mut bad = migrate_request();
    bad["target"]["milvus"] = "other".into();
    assert_eq!(call("POST", &format!("{u}/v1/jobs"), Some(TOKEN_A), Some(&bad), &[]).await.status, 403);
    for escape in ["../b/secret", "/etc", "out//x", "./out"] {
        let mut bad = migrate_request();
        bad["source"]["tables"]["prefix"] = escape.into();
        let r = call("POST", &format!("{u}/v1/jobs"), Some(TOKEN_A), Some(&bad), &[]).await;
        assert_eq!((r.status, r.json()["code"].as_str()), (422, Some("invalid-job")), "{escape}: {}", r.body);
    }
    let mut bad = migrate_request();
    bad["source"]["meta"]["sqlite"]["path"] = "../b/secret/meta.sqlite".into();
    assert_eq!(call("POST", &format!("{u}/v1/jobs"), Some(TOKEN_B), Some(&bad), &[]).await.status, 422);
    let mut bad = migrate_request();
    bad["limits"] = serde_json::json!({"memoryMiB": 4096});
    assert_eq!(call("POST", &format!("{u}/v1/jobs"), Some(TOKEN_A), Some(&bad), &[]).await.status, 403);
    let mut bad = migrate_request();
    bad["options"] = serde_json::json!({"sandbox": {"memoryMiB": 4096}});
    assert_eq!(call("POST", &format!("{u}/v1/jobs"), Some(TOKEN_A), Some(&bad), &[]).await.status, 422);
    let mut bad = migrate_request();
    bad["options"] = serde_json::json!({"noSuchKey": 1});
    let r = call("POST", &format!("{u}/v1/jobs"), Some(TOKEN_A), Some(&bad), &[]).await;
    assert!(r.status == 422 && r.body.contains("noSuchKey"), "{}", r.body);
    assert_eq!(call("POST", &format!("{u}/v1/jobs"), Some(TOKEN_A), None, &[]).await.status, 400);

    // Idempotency: ten concurrent submits with one key make one job; another body is refused.
    let plan = serde_json::json!({"kind": "plan", "source": migrate_request()["source"].clone(), "staging": {"store": "data", "prefix": "out"}, "target": {"milvus": "main"}});
    let url = format!("{u}/v1/jobs");
    let answers = futures::future::join_all((0..10).map(|_| call("POST", &url, Some(TOKEN_B), Some(&plan), &[("idempotency-key", "k1")]))).await;
    assert!(answers.iter().all(|a| a.status == 202), "{:?}", answers.iter().map(|a| &a.body).collect::<Vec<_>>());
    let ids: std::collections::BTreeSet<String> = answers.iter().map(|a| a.json()["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 1, "one job for one key: {ids:?}");
    let mut other = plan.clone();
    other["kind"] = "dump".into();
    let r = call("POST", &url, Some(TOKEN_B), Some(&other), &[("idempotency-key", "k1")]).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (422, Some("idempotency-key-reused")), "{}", r.body);

    // A's job ends with every row in Milvus once.
    let j = wait(u, TOKEN_A, &id, ended).await;
    assert_eq!(j["state"], "succeeded", "{j:#}");
    assert_eq!(j["report"]["outcome"], "succeeded", "{j:#}");
    pymilvus_check(&w.env, &w.name, &[]);
    let r = call("POST", &format!("{u}/v1/jobs/{id}/resume"), Some(TOKEN_A), None, &[]).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (409, Some("job-not-resumable")));
    assert_eq!(call("POST", &format!("{u}/v1/jobs/{id}/cancel"), Some(TOKEN_A), None, &[]).await.status, 409);
    let report = call("GET", &format!("{u}/v1/jobs/{id}/report"), Some(TOKEN_A), None, &[]).await;
    assert_eq!(report.json()["command"], "migrate", "{}", report.body);

    // Events: every state change in order, gap-free; replayed after Last-Event-ID.
    let all = call("GET", &format!("{u}/v1/jobs/{id}/events"), Some(TOKEN_A), None, &[]).await.body;
    let seqs: Vec<u64> = all.lines().filter_map(|l| l.strip_prefix("id:")).map(|v| v.trim().parse().unwrap()).collect();
    assert!(seqs.len() >= 3 && seqs.iter().enumerate().all(|(i, s)| *s == i as u64 + 1), "{all}");
    assert!(all.contains("\"state\":\"running\"") && all.contains("\"state\":\"succeeded\""), "{all}");
    let rest = call("GET", &format!("{u}/v1/jobs/{id}/events"), Some(TOKEN_A), None, &[("last-event-id", "2")]).await.body;
    let first: u64 = rest.lines().find_map(|l| l.strip_prefix("id:")).unwrap().trim().parse().unwrap();
    assert_eq!(first, 3, "{rest}");
    // B's plan job, the same names as A's request, resolved into B's own root: B has no
    // installation there, so it fails naming B's path, never A's.
    let b_job = ids.into_iter().next().unwrap();
    let j = wait(u, TOKEN_B, &b_job, ended).await;
    let err = j["error"].as_str().unwrap_or_default();
    assert_eq!(j["state"], "failed", "{j:#}");
    assert!(err.contains(&format!("{}/b/src/db/meta.sqlite", s(&w.dir))) && !err.contains("/a/"), "{j:#}");
}

#[tokio::test]
async fn a_service_killed_mid_job_marks_it_interrupted_and_resume_lands_every_row_once() {
    let w = world(60_000).await;
    let mut svc = serve(&w.config);
    // a's job waits for a resume after the restart; r's tenant resumes by itself (autoResume).
    let mut ids = Vec::new();
    for token in [TOKEN_A, TOKEN_R] {
        let r = call("POST", &format!("{}/v1/jobs", svc.url), Some(token), Some(&migrate_request()), &[]).await;
        assert_eq!(r.status, 202, "{}", r.body);
        ids.push(r.json()["id"].as_str().unwrap().to_string());
    }
    let (id, rid) = (ids[0].clone(), ids[1].clone());
    wait(&svc.url, TOKEN_A, &id, |s| s == "running").await;
    wait(&svc.url, TOKEN_R, &rid, |s| s == "running").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    svc.child.kill().unwrap(); // SIGKILL: no goodbye
    svc.child.wait().unwrap();
    drop(svc);

    let svc = serve(&w.config);
    let j = call("GET", &format!("{}/v1/jobs/{id}", svc.url), Some(TOKEN_A), None, &[]).await.json();
    assert_eq!(j["state"], "interrupted", "never running without an owner: {j:#}");
    let events = call("GET", &format!("{}/v1/jobs/{id}/events", svc.url), Some(TOKEN_A), None, &[]).await.body;
    assert!(events.contains("\"state\":\"running\""), "events survive the restart: {events}");
    let r = call("POST", &format!("{}/v1/jobs/{id}/resume", svc.url), Some(TOKEN_A), None, &[]).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.json()["attempt"], 2);
    let j = wait(&svc.url, TOKEN_A, &id, ended).await;
    assert_eq!(j["state"], "succeeded", "{j:#}");
    pymilvus_check(&w.env, &w.name, &[]);

    // r's job went from interrupted back to the queue by itself, and landed every row once.
    let j = wait(&svc.url, TOKEN_R, &rid, ended).await;
    assert_eq!((j["state"].as_str(), j["attempt"].as_i64()), (Some("succeeded"), Some(2)), "{j:#}");
    let events = call("GET", &format!("{}/v1/jobs/{rid}/events", svc.url), Some(TOKEN_R), None, &[]).await.body;
    let lines: Vec<&str> = events.lines().collect();
    let states: Vec<String> = lines
        .windows(2)
        .filter(|w| w[0] == "event: state")
        .map(|w| serde_json::from_str::<serde_json::Value>(w[1].trim_start_matches("data: ")).unwrap()["state"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(states, ["queued", "running", "interrupted", "queued", "running", "succeeded"], "{events}");
    pymilvus_check_with(&w.env, &w.name, &[], serde_json::json!({"database": "tenant_r"}));
}

#[tokio::test]
async fn a_cancelled_job_resumes_and_lands_every_row_once() {
    let w = world(60_000).await;
    let svc = serve(&w.config);
    let u = &svc.url;
    let r = call("POST", &format!("{u}/v1/jobs"), Some(TOKEN_A), Some(&migrate_request()), &[]).await;
    let id = r.json()["id"].as_str().unwrap().to_string();
    wait(u, TOKEN_A, &id, |s| s == "running").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = call("POST", &format!("{u}/v1/jobs/{id}/cancel"), Some(TOKEN_A), None, &[]).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let j = wait(u, TOKEN_A, &id, ended).await;
    assert_eq!(j["state"], "cancelled", "{j:#}");
    let r = call("POST", &format!("{u}/v1/jobs/{id}/resume"), Some(TOKEN_A), None, &[]).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let j = wait(u, TOKEN_A, &id, ended).await;
    assert_eq!((j["state"].as_str(), j["attempt"].as_i64()), (Some("succeeded"), Some(2)), "{j:#}");
    pymilvus_check(&w.env, &w.name, &[]);
}

/// Deletes `delete` and inserts `foreign` (dim 8) in `collection` through pymilvus.
fn damage(collection: &str, delete: &[i64], foreign: &[i64]) {
    let script = r#"
import json, sys
from pymilvus import Collection, connections
host, port = sys.argv[1].rsplit(":", 1)
connections.connect(host=host, port=port)
c = Collection(sys.argv[2])
delete, foreign = json.loads(sys.argv[3]), json.loads(sys.argv[4])
c.load()
c.delete(expr=f"id in {delete}")
c.insert([foreign, [[0.5] * 8 for _ in foreign]])
c.flush()
"#;
    let j = |v: &[i64]| serde_json::to_string(v).unwrap();
    let o = std::process::Command::new(mm_tests::tool::python())
        .args(["-c", script, &endpoint(), collection, &j(delete), &j(foreign)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", mm_tests::tool::text(&o));
}

/// The service runs `verify --full` and `repair` as jobs: a migrated collection damaged through
/// pymilvus fails a verify-full job whose report lists exactly the damage; a repair job with
/// deleteExtra makes it clean, and pymilvus then finds every live id once and nothing else.
#[tokio::test]
async fn verify_full_and_repair_jobs_find_and_fix_what_pymilvus_broke() {
    let w = world(200).await;
    let svc = serve(&w.config);
    let u = &svc.url;
    let submit = |body: serde_json::Value| async move {
        let r = call("POST", &format!("{u}/v1/jobs"), Some(TOKEN_A), Some(&body), &[]).await;
        assert_eq!(r.status, 202, "{}", r.body);
        let id = r.json()["id"].as_str().unwrap().to_string();
        wait(u, TOKEN_A, &id, ended).await
    };
    let j = submit(migrate_request()).await;
    assert_eq!(j["state"], "succeeded", "{j:#}");
    let c = w.env.expected.collections.iter().find(|c| c.name == w.name).unwrap();
    let live: Vec<i64> = c.partitions.iter().flat_map(|p| &p.segments).flat_map(|s| s.ids.clone()).collect();
    let delete: Vec<i64> = live.iter().step_by(37).take(5).copied().collect();
    let foreign = vec![-5, -6];
    damage(&w.name, &delete, &foreign);

    let request = |kind: &str, reconcile: serde_json::Value| {
        let mut r = migrate_request();
        r["kind"] = kind.into();
        r["reconcile"] = reconcile;
        r
    };
    // deleteExtra is repair's alone.
    let r = call("POST", &format!("{u}/v1/jobs"), Some(TOKEN_A), Some(&request("verify-full", serde_json::json!({"deleteExtra": true}))), &[]).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (422, Some("invalid-job")), "{}", r.body);

    let j = submit(request("verify-full", serde_json::json!({"maxListed": 50}))).await;
    assert_eq!(j["state"], "failed", "{j:#}");
    assert!(j["error"].as_str().unwrap().contains("verify --full found"), "{j:#}");
    let p = &j["report"]["collections"][0]["partitions"][0]["reconciled"];
    let ids = |k: &str| -> Vec<i64> {
        let mut v: Vec<i64> = p[k]["first"].as_array().unwrap_or_else(|| panic!("{j:#}")).iter().map(|x| x.as_i64().unwrap()).collect();
        v.sort();
        v
    };
    let mut deleted = delete.clone();
    deleted.sort();
    assert_eq!((ids("missing"), ids("extra"), ids("duplicated"), ids("differing")), (deleted, vec![-6, -5], vec![], vec![]), "{j:#}");

    let j = submit(request("repair", serde_json::json!({"deleteExtra": true}))).await;
    assert_eq!(j["state"], "succeeded", "{j:#}");
    assert_eq!(j["report"]["command"], "repair", "{j:#}");
    pymilvus_check_with(&w.env, &w.name, &[], serde_json::json!({"exact_ids": live, "compact": true}));
}
