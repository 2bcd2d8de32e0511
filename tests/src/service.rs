//! A client for `serve` in tests: start the service on a free loopback port, call its API,
//! wait for a job.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::milvus_env::{s, Env};
use crate::tool::binary;

/// Tenants' directories under one temporary root, the service's config, and what the
/// migrated collection must hold.
pub struct World {
    pub _tmp: tempfile::TempDir,
    pub dir: std::path::PathBuf,
    pub config: std::path::PathBuf,
    pub env: Env,
    pub name: String,
}

/// The SHA-256 of a token, as serve.yaml lists it.
pub fn sha(t: &str) -> String {
    Sha256::digest(t.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

pub struct Service {
    pub child: Child,
    pub url: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `serve` on a free loopback port and waits for its first line.
pub fn serve(config: &Path) -> Service {
    let mut child = Command::new(binary()).args(["serve", "--config", s(config)]).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut line).unwrap();
    // Keep reading what the service prints (a closed pipe would fail its writes).
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap_or_else(|| panic!("serve said: {line}")).to_string();
    Service { child, url }
}

pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

pub async fn call(method: &str, url: &str, token: Option<&str>, body: Option<&serde_json::Value>, extra: &[(&str, &str)]) -> Answer {
    let client = reqwest::Client::new();
    let mut rq = client.request(method.parse().unwrap(), url);
    if let Some(t) = token {
        rq = rq.header("authorization", format!("Bearer {t}"));
    }
    if let Some(b) = body {
        rq = rq.header("content-type", "application/json").body(b.to_string());
    }
    for (k, v) in extra {
        rq = rq.header(*k, *v);
    }
    let r = rq.send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    Answer { status, headers, body: r.text().await.unwrap() }
}

/// Polls a job until it ends (or `until` says stop).
pub async fn wait(url: &str, token: &str, id: &str, until: impl Fn(&str) -> bool) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let j = call("GET", &format!("{url}/v1/jobs/{id}"), Some(token), None, &[]).await.json();
        let state = j["state"].as_str().unwrap().to_string();
        if until(&state) {
            return j;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "job {id} still {state}: {j:#}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

pub fn ended(s: &str) -> bool {
    matches!(s, "succeeded" | "failed" | "cancelled" | "interrupted")
}
