//! `submit`: the service's client in the CLI. It turns the guide's migration.yaml into a job
//! request against the connections the server grants by name, submits it, and follows the
//! job's events (reconnecting with Last-Event-ID) with the usual progress display, then saves
//! the job's run report like the other commands.
//!
//! The request carries no path of this machine, no endpoint and no secret: the yaml's paths
//! become paths inside the named stores (relative as written, or under `--source-root` /
//! `--staging-root`), `target.milvus2x` becomes `--milvus NAME`, a MySQL meta `--mysql NAME`,
//! and `migration.sandbox` the request's limits. Keys a request may not set (the server's own)
//! are left out with a note.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{json, Value};
use serde_yaml::Value as Yaml;

use crate::cli::SubmitArgs;
use crate::exit::Failure;
use crate::progress::{Observer, Progress};
use crate::serve::request::Kind;

/// `migration:` keys the server keeps for itself (the request's limits carry the sandbox).
const SERVER_KEYS: [&str; 2] = ["leaseSeconds", "milvus"];

fn get<'a>(doc: &'a Yaml, path: &str) -> Option<&'a Yaml> {
    path.split('.').try_fold(doc, |v, k| v.get(k))
}

fn text(doc: &Yaml, path: &str) -> Option<String> {
    get(doc, path).and_then(|v| v.as_str()).map(str::to_string)
}

/// A path of the yaml as a path inside a store: relative as written, or made relative to the
/// directory the store serves.
fn inside(doc: &Yaml, key: &str, root: Option<&Path>, flag: &str) -> anyhow::Result<String> {
    let p = text(doc, key).ok_or_else(|| anyhow!("{key} is missing"))?;
    let path = Path::new(&p);
    if path.is_relative() {
        return Ok(p.trim_start_matches("./").to_string());
    }
    let root = root.ok_or_else(|| {
        anyhow!("{key} {p} is a path of this machine: pass {flag} DIR (the directory the server's store serves) or write it relative to that store")
    })?;
    let rel = path.strip_prefix(root).map_err(|_| anyhow!("{key} {p} is not under {flag} {}", root.display()))?;
    Ok(rel.to_string_lossy().into_owned())
}

/// The job request for `args.kind` from the yaml document.
pub fn request(doc: &Yaml, args: &SubmitArgs) -> anyhow::Result<Value> {
    let src_store = args.store.clone();
    let stage_store = args.staging_store.clone().unwrap_or_else(|| args.store.clone());
    let src_root = args.source_root.as_deref();
    let stage_root = args.staging_root.as_deref();
    let kind: Kind = serde_json::from_value(json!(args.kind)).map_err(|e| anyhow!("--kind {}: {e}", args.kind))?;
    let mut req = json!({ "kind": args.kind });
    if args.delete_extra {
        if args.kind != "repair" {
            bail!("--delete-extra goes with --kind repair");
        }
        req["reconcile"] = json!({"deleteExtra": true});
    }

    if let Some(mode) = text(doc, "meta.mode") {
        let file = |key: &str| -> anyhow::Result<Value> { Ok(json!({"store": src_store, "path": inside(doc, key, src_root, "--source-root")?})) };
        let meta = match mode.as_str() {
            "sqlite" => json!({ "sqlite": file("meta.sqliteFile")? }),
            "local" => json!({ "json": file("meta.localFile")? }),
            "mock" => json!({ "json": file("meta.mockFile")? }),
            "remote" => json!({ "json": file("meta.remoteMetaFile")? }),
            "mysql" => {
                let name = args.mysql.as_ref().ok_or_else(|| {
                    anyhow!("meta.mode mysql: name the server's MySQL connection with --mysql NAME (a request never carries meta.mysqlUrl)")
                })?;
                json!({ "mysql": name })
            }
            other => bail!("meta.mode {other:?} is not one submit knows (sqlite, local, mock, remote, mysql)"),
        };
        let tables = match text(doc, "source.mode").as_deref() {
            Some("remote") => inside(doc, "source.remote.tablesDir", None, "--source-root")?,
            _ => inside(doc, "source.local.tablesDir", src_root, "--source-root")?,
        };
        req["source"] = json!({ "meta": meta, "tables": {"store": src_store, "prefix": tables} });
    }
    let staging = match text(doc, "target.mode").as_deref() {
        Some("remote") => inside(doc, "target.remote.outputDir", None, "--staging-root")?,
        _ => inside(doc, "target.local.outputDir", stage_root, "--staging-root")?,
    };
    req["staging"] = json!({"store": stage_store, "prefix": staging});
    match &args.milvus {
        Some(name) => req["target"] = json!({ "milvus": name }),
        None if kind.needs().milvus => {
            bail!("{} imports into Milvus: name the server's Milvus connection with --milvus NAME (target.milvus2x is not sent)", args.kind)
        }
        None => {}
    }
    if let Some(Yaml::Mapping(m)) = get(doc, "migration") {
        let mut options = serde_json::Map::new();
        for (k, v) in m {
            let Some(k) = k.as_str() else { continue };
            if k == "sandbox" {
                let n = |key: &str| v.get(key).and_then(|x| x.as_f64()).map(|x| x as u64);
                req["limits"] = json!({ "memoryMiB": n("memoryMiB"), "fuel": n("fuel") });
            } else if SERVER_KEYS.contains(&k) {
                eprintln!("note: migration.{k} is the server's to set; it is not sent");
            } else {
                options.insert(k.to_string(), serde_json::to_value(v)?);
            }
        }
        if !options.is_empty() {
            req["options"] = Value::Object(options);
        }
    }
    if let Some(l) = req.get_mut("limits").and_then(|l| l.as_object_mut()) {
        l.retain(|_, v| !v.is_null());
    }
    Ok(req)
}

/// The problem document's words, or the status.
async fn refusal(r: reqwest::Response) -> anyhow::Error {
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    let v: Value = serde_json::from_str(&body).unwrap_or_default();
    match (v["code"].as_str(), v["detail"].as_str()) {
        (Some(code), Some(detail)) => anyhow!("the server refused: {status} {code}: {detail}"),
        _ => anyhow!("the server answered {status}: {}", body.chars().take(300).collect::<String>()),
    }
}

/// Follows the job's progress display from its events.
#[derive(Default)]
struct Display {
    bar: Option<(String, Progress, u64, u64)>,
}

impl Display {
    fn show(&mut self, kind: &str, data: &Value) {
        match kind {
            "progress" => {
                let phase = data["phase"].as_str().unwrap_or("").to_string();
                let (rows, bytes) = (data["rows"].as_u64().unwrap_or(0), data["bytes"].as_u64().unwrap_or(0));
                if self.bar.as_ref().is_none_or(|b| b.0 != phase) {
                    self.close();
                    let p = Progress::start(data["totalBytes"].as_u64().unwrap_or(0), &phase, &Observer::default());
                    self.bar = Some((phase, p, 0, 0));
                }
                let (_, p, r0, b0) = self.bar.as_mut().expect("set above");
                p.advance(rows.saturating_sub(*r0), bytes.saturating_sub(*b0));
                (*r0, *b0) = (rows.max(*r0), bytes.max(*b0));
            }
            "unit" if data["state"] == "failed" => {
                tracing::error!("unit {} failed: {}", data["unit"].as_str().unwrap_or("?"), data["error"].as_str().unwrap_or(""))
            }
            "warning" => tracing::warn!("{}", data["message"].as_str().unwrap_or("")),
            "state" => {
                self.close();
                let err = data["error"].as_str().map(|e| format!(": {e}")).unwrap_or_default();
                tracing::info!("job {}{err}", data["state"].as_str().unwrap_or("?"));
            }
            _ => {}
        }
    }

    fn close(&mut self) {
        if let Some((_, p, _, _)) = self.bar.take() {
            p.finish();
        }
    }
}

pub async fn run(args: SubmitArgs, report: Option<PathBuf>) -> Result<(), Failure> {
    let token = std::env::var(&args.token_env)
        .map_err(|_| Failure::Usage(anyhow!("--token-env {}: the environment variable is not set", args.token_env)))?;
    let path = crate::settings::locate(args.config.as_deref()).map_err(|e| Failure::Usage(e.into()))?;
    let text = std::fs::read_to_string(&path).map_err(|e| Failure::Usage(anyhow!("cannot read {}: {e}", path.display())))?;
    let doc: Yaml = serde_yaml::from_str(&text).map_err(|e| Failure::Usage(anyhow!("{}: {e}", path.display())))?;
    let body = request(&doc, &args).map_err(|e| Failure::Usage(anyhow!("{}: {e}", path.display())))?;
    let server = args.server.trim_end_matches('/').to_string();
    let client = reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).build().map_err(|e| Failure::Run(e.into()))?;

    let mut post = client.post(format!("{server}/v1/jobs")).bearer_auth(&token).header("content-type", "application/json").body(body.to_string());
    if let Some(k) = &args.idempotency_key {
        post = post.header("Idempotency-Key", k);
    }
    let r = post.send().await.with_context(|| format!("cannot reach the service at {server} (--server)")).map_err(Failure::Run)?;
    if !r.status().is_success() {
        return Err(Failure::Run(refusal(r).await));
    }
    let job: Value = r.json().await.map_err(|e| Failure::Run(e.into()))?;
    let id = job["id"].as_str().ok_or_else(|| Failure::Run(anyhow!("the server's answer has no job id")))?.to_string();
    println!("job {id} submitted ({})", job["state"].as_str().unwrap_or("?"));
    if args.no_follow {
        return Ok(());
    }
    follow(&client, &server, &token, &id).await.map_err(Failure::Run)?;

    let r = client.get(format!("{server}/v1/jobs/{id}")).bearer_auth(&token).send().await.map_err(|e| Failure::Run(e.into()))?;
    if !r.status().is_success() {
        return Err(Failure::Run(refusal(r).await));
    }
    let job: Value = r.json().await.map_err(|e| Failure::Run(e.into()))?;
    if job["report"].is_object() {
        let path = report.unwrap_or_else(|| crate::run_report::default_path(job["kind"].as_str().unwrap_or("job")));
        let text = serde_json::to_string_pretty(&job["report"]).unwrap_or_default();
        match std::fs::write(&path, text) {
            Ok(()) => println!("run report: {}", path.display()),
            Err(e) => eprintln!("cannot write the run report {}: {e}", path.display()),
        }
    }
    match job["state"].as_str() {
        Some("succeeded") => {
            println!("job {id} succeeded");
            Ok(())
        }
        other => Err(Failure::Run(anyhow!(
            "job {id} {}: {} (resume it with POST {server}/v1/jobs/{id}/resume)",
            other.unwrap_or("?"),
            job["error"].as_str().unwrap_or("no reason given")
        ))),
    }
}

/// Reads the job's events until its `end`, reconnecting where the stream broke.
async fn follow(client: &reqwest::Client, server: &str, token: &str, id: &str) -> anyhow::Result<()> {
    let mut display = Display::default();
    let mut last: Option<String> = None;
    let mut failures = 0;
    loop {
        let mut get = client.get(format!("{server}/v1/jobs/{id}/events")).bearer_auth(token);
        if let Some(l) = &last {
            get = get.header("Last-Event-ID", l);
        }
        match get.send().await {
            Ok(r) if r.status().is_success() => {
                let mut events = r.bytes_stream().eventsource();
                while let Some(e) = events.next().await {
                    let Ok(e) = e else { break };
                    failures = 0;
                    last = Some(e.id.clone());
                    let data: Value = serde_json::from_str(&e.data).unwrap_or_default();
                    display.show(&e.event, &data);
                    if e.event == "end" {
                        display.close();
                        return Ok(());
                    }
                }
            }
            Ok(r) => return Err(refusal(r).await),
            Err(e) if failures >= 30 => return Err(anyhow!("lost the service at {server}: {e}")),
            Err(_) => {}
        }
        // The stream ended without the job's end (the server restarted, a proxy cut it):
        // reconnect and continue after the last event seen.
        failures += 1;
        if failures > 30 {
            bail!("the event stream of job {id} keeps breaking; see GET {server}/v1/jobs/{id}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(kind: &str) -> SubmitArgs {
        SubmitArgs {
            server: "http://127.0.0.1:1".into(),
            token_env: "T".into(),
            config: None,
            kind: kind.into(),
            store: "data".into(),
            staging_store: Some("stage".into()),
            source_root: Some("/srv/milvus".into()),
            staging_root: None,
            milvus: Some("prod".into()),
            mysql: None,
            idempotency_key: None,
            no_follow: false,
            delete_extra: false,
        }
    }

    #[test]
    fn the_guides_file_becomes_a_request_of_names_and_inner_paths() {
        let doc: Yaml = serde_yaml::from_str(
            "meta: {mode: sqlite, sqliteFile: /srv/milvus/db/meta.sqlite}\n\
             source: {mode: local, local: {tablesDir: /srv/milvus/db/tables}}\n\
             target: {mode: local, local: {outputDir: out/dump}, milvus2x: {endpoint: 'x:19530', password: secret}}\n\
             migration: {badData: skip, leaseSeconds: 5, sandbox: {memoryMiB: 128}}\n",
        )
        .unwrap();
        let r = request(&doc, &args("migrate")).unwrap();
        assert_eq!(
            r,
            json!({"kind": "migrate",
                   "source": {"meta": {"sqlite": {"store": "data", "path": "db/meta.sqlite"}}, "tables": {"store": "data", "prefix": "db/tables"}},
                   "staging": {"store": "stage", "prefix": "out/dump"},
                   "target": {"milvus": "prod"},
                   "options": {"badData": "skip"},
                   "limits": {"memoryMiB": 128}})
        );
        assert!(!r.to_string().contains("secret") && !r.to_string().contains("19530"));
        let mut repair = args("repair");
        repair.delete_extra = true;
        assert_eq!(request(&doc, &repair).unwrap()["reconcile"], json!({"deleteExtra": true}));
        let mut verify = args("verify-full");
        verify.delete_extra = true;
        assert!(request(&doc, &verify).unwrap_err().to_string().contains("--delete-extra goes with --kind repair"));
    }

    #[test]
    fn paths_of_this_machine_outside_a_root_and_missing_names_are_refused_with_the_key() {
        let doc: Yaml = serde_yaml::from_str(
            "meta: {mode: mysql, mysqlUrl: 'u:p@tcp(h:3306)/m'}\nsource: {mode: local, local: {tablesDir: /elsewhere/tables}}\ntarget: {mode: local, local: {outputDir: /tmp/out}}\n",
        )
        .unwrap();
        let e = request(&doc, &args("dump")).unwrap_err().to_string();
        assert!(e.contains("--mysql NAME"), "{e}");
        let mut a = args("dump");
        a.mysql = Some("meta".into());
        let e = request(&doc, &a).unwrap_err().to_string();
        assert!(e.contains("source.local.tablesDir /elsewhere/tables is not under --source-root /srv/milvus"), "{e}");
        a.source_root = Some("/elsewhere".into());
        let e = request(&doc, &a).unwrap_err().to_string();
        assert!(e.contains("target.local.outputDir /tmp/out is a path of this machine: pass --staging-root DIR"), "{e}");
        let mut l = args("load");
        l.milvus = None;
        let e = request(&serde_yaml::from_str("target: {local: {outputDir: d}}").unwrap(), &l).unwrap_err().to_string();
        assert!(e.contains("--milvus NAME"), "{e}");
    }
}
