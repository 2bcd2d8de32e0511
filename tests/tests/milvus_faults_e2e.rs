//! Faults on the Milvus side, against the real server: Milvus going away in the middle of a load
//! (a TCP proxy in front of it is shut), an import the server fails, and an import that outlives
//! `migration.milvus.importTimeoutSeconds`. Each fails with a clear message and exit code 1, and
//! a re-run then completes with every row exactly once.

use std::path::Path;
use std::time::Duration;

use mm_tests::milvus_env::{cmd, endpoint, pymilvus_check_with, s, setup, unique, Env};
use mm_tests::tool::text;
use mm_tests::{CollectionSpec, PartitionSpec, SegmentSpec, Spec};
use tokio::net::{TcpListener, TcpStream};

fn spec(name: &str) -> Spec {
    let seg = |rows, deleted: &[i32]| SegmentSpec { rows, deleted: deleted.to_vec(), ..Default::default() };
    Spec {
        seed: 17,
        collections: vec![CollectionSpec {
            name: name.into(),
            dim: 8,
            metric: 1,
            engine_type: 1,
            index_params: "{}".into(),
            dropped: false,
            segments: vec![seg(120, &[5]), seg(80, &[])],
            partitions: vec![PartitionSpec { tag: "p".into(), dropped: false, segments: vec![seg(60, &[0])] }],
        }],
    }
}

fn set_endpoint(env: &Env, endpoint_now: &str, to: &str) {
    let yaml = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(&env.config, yaml.replace(&format!("endpoint: {endpoint_now}"), &format!("endpoint: {to}"))).unwrap();
}

/// Every live row once, as pymilvus sees it.
fn exactly_once(env: &Env, name: &str) {
    let ids: Vec<i64> = env.expected.collections[0].partitions.iter().flat_map(|p| &p.segments).flat_map(|s| s.ids.clone()).collect();
    pymilvus_check_with(env, name, &[("p", "p")], serde_json::json!({"exact_ids": ids}));
}

/// A TCP proxy to Milvus that can be shut, connections and all.
struct Proxy {
    addr: String,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let upstream = endpoint();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { break };
                let upstream = upstream.clone();
                conns.spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        });
        Proxy { addr, task }
    }

    /// Milvus "goes down": the listener and every connection close (the JoinSet is dropped).
    fn shut(self) {
        self.task.abort();
    }
}

fn dump(env: &Env) {
    let o = cmd(env, &["dump"]);
    assert!(o.status.success(), "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn milvus_going_down_mid_load_is_named_and_a_rerun_completes_once() {
    let name = unique("down_mid");
    let env = setup(&spec(&name), "").await;
    dump(&env);
    let proxy = Proxy::start().await;
    let proxied = proxy.addr.clone();
    set_endpoint(&env, &endpoint(), &proxied);
    let (config, dir) = (env.config.clone(), env.dir.clone());
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new(mm_tests::tool::binary())
            .current_dir(&dir)
            .args(["load", &format!("--config={}", s(&config))])
            .output()
            .unwrap()
    });
    // The load is planning, importing or waiting on imports after 2.5 s (a clean one takes ~10 s).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    proxy.shut();
    let o = run.await.unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Milvus at") || err.contains("cannot reach Milvus"), "{}", text(&o));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("verified:"), "{}", text(&o));

    set_endpoint(&env, &proxied, &endpoint());
    let o = cmd(&env, &["load"]);
    assert!(o.status.success(), "{}", text(&o));
    exactly_once(&env, &name);
}

/// The first dumped group's directory and its `data.npy`.
fn first_group(env: &Env) -> std::path::PathBuf {
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(env.dir.join("out/manifest.json")).unwrap()).unwrap();
    let f = m["collections"][0]["partitions"][0]["segments"][0]["files"][0]["path"].as_str().unwrap().to_string();
    env.dir.join("out").join(Path::new(&f).parent().unwrap())
}

/// Records `file`'s current size and CRC-32C in the manifest, as if the dump had written it.
fn restate_in_manifest(env: &Env, file: &Path) {
    let out = env.dir.join("out");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let rel = file.strip_prefix(&out).unwrap().to_str().unwrap().to_string();
    let bytes = std::fs::read(file).unwrap();
    for f in m["collections"].as_array_mut().unwrap().iter_mut().flat_map(|c| c["partitions"].as_array_mut().unwrap()).flat_map(|p| p["segments"].as_array_mut().unwrap()).flat_map(|s| s["files"].as_array_mut().unwrap()) {
        if f["path"] == rel.as_str() {
            f["bytes"] = bytes.len().into();
            f["crc32c"] = format!("{:08x}", crc32c::crc32c(&bytes)).into();
        }
    }
    std::fs::write(out.join("manifest.json"), serde_json::to_vec_pretty(&m).unwrap()).unwrap();
}

#[tokio::test]
async fn an_import_the_server_fails_is_reported_and_retried_once_fixed() {
    let name = unique("srv_fail");
    let env = setup(&spec(&name), "").await;
    // Segments alone, so another group's vectors can be swapped in.
    let yaml = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(&env.config, format!("{yaml}migration:\n  packSegments: false\n")).unwrap();
    dump(&env);
    // Swap in another segment's vectors: the row counts of id.npy and data.npy differ.
    let dir = first_group(&env);
    let good = std::fs::read(dir.join("data.npy")).unwrap();
    let other = std::fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| *p != dir && p.join("data.npy").exists())
        .unwrap();
    std::fs::copy(other.join("data.npy"), dir.join("data.npy")).unwrap();
    // The manifest agrees (load checks the files against it): only the server can tell.
    let manifest = std::fs::read(env.dir.join("out/manifest.json")).unwrap();
    restate_in_manifest(&env, &dir.join("data.npy"));
    let o = cmd(&env, &["load"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("failed on the server:") && err.contains(&format!("collection {name}")), "{}", text(&o));

    std::fs::write(dir.join("data.npy"), good).unwrap();
    std::fs::write(env.dir.join("out/manifest.json"), manifest).unwrap();
    let o = cmd(&env, &["load"]);
    assert!(o.status.success(), "{}", text(&o));
    exactly_once(&env, &name);
}

#[tokio::test]
async fn an_import_past_its_timeout_is_named_and_awaited_by_the_rerun() {
    let name = unique("stall");
    let env = setup(&spec(&name), "").await;
    dump(&env);
    let yaml = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(&env.config, format!("{yaml}migration:\n  milvus:\n    importTimeoutSeconds: 0\n")).unwrap();
    let o = cmd(&env, &["load"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not done after 0 s (migration.milvus.importTimeoutSeconds)"), "{}", text(&o));

    std::fs::write(&env.config, yaml).unwrap();
    let o = cmd(&env, &["load"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("from an earlier run") || text(&o).contains("from an earlier run"), "{}", text(&o));
    exactly_once(&env, &name);
}
