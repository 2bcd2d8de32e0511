//! `cloud: azure` sources and targets against Azurite 3.35.0 (scripts/azurite.sh: blob service on
//! 127.0.0.1, the development account, Shared Key auth checked like Azure does). Real dump runs:
//! 1.x tables read from a container, a dump written into one; then the failures a user meets
//! (wrong key, missing container, endpoint down), each named by its setting, no key printed.
//! The tests talk to Azurite through a small Shared Key client of their own (not object_store).

mod cloud_support;
mod fault_support;

use std::collections::BTreeMap;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use cloud_support::*;
use fault_support::{assert_exit, assert_no_secret, s, ClosedPort};
use mm_tests::tool::text;
use mm_tests::Generated;

const SCRIPT: &str = "scripts/azurite.sh";
/// The x-ms-version the client sends.
const API_VERSION: &str = "2021-08-06";

struct Azure {
    /// The account URL, http://127.0.0.1:<port>/<account> (path style).
    endpoint: String,
    account: String,
    key: String,
}

fn azure() -> Azure {
    Azure { endpoint: required("AZURE_ENDPOINT", SCRIPT), account: required("AZURE_ACCOUNT", SCRIPT), key: required("AZURE_KEY", SCRIPT) }
}

fn container() -> String {
    required("AZURE_CONTAINER", SCRIPT)
}

fn source_container() -> String {
    required("AZURE_SOURCE_CONTAINER", SCRIPT)
}

// ---- a Shared Key client (https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key) ----

/// HMAC-SHA256 of `msg` under `key`.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// Now, as an RFC 1123 date (x-ms-date).
fn http_date() -> String {
    httpdate::fmt_http_date(std::time::SystemTime::now())
}

impl Azure {
    /// A signed request to `/<container>[/<blob>]` with query parameters (values unencoded).
    async fn send(&self, method: &str, path: &str, query: &[(&str, &str)], body: Vec<u8>) -> reqwest::Response {
        // The canonical resource is /<account> + the URL's path (in path style that path starts with
        // /<account> again: /<account>/<account>/<container>/<blob>).
        let host_and_path = self.endpoint.split_once("://").unwrap().1;
        let url_path = format!("{}{path}", host_and_path.find('/').map(|i| &host_and_path[i..]).unwrap_or(""));
        let mut headers = vec![("x-ms-date", http_date()), ("x-ms-version", API_VERSION.to_string())];
        if method == "PUT" {
            headers.push(("x-ms-blob-type", "BlockBlob".into()));
        }
        headers.sort();
        let mut q = query.to_vec();
        q.sort();
        let len = if body.is_empty() { String::new() } else { body.len().to_string() };
        // VERB, Content-Encoding, -Language, -Length, -MD5, -Type, Date, If-Modified-Since, If-Match,
        // If-None-Match, If-Unmodified-Since, Range; then x-ms-* headers and the resource.
        let sts = format!(
            "{method}\n\n\n{len}\n\n\n\n\n\n\n\n\n{}/{}{url_path}{}",
            headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect::<String>(),
            self.account,
            q.iter().map(|(k, v)| format!("\n{k}:{v}")).collect::<String>()
        );
        let key = B64.decode(&self.key).expect("the account key is base64");
        let sig = B64.encode(hmac_sha256(&key, sts.as_bytes()));
        let mut rb = reqwest::Client::new()
            .request(method.parse().unwrap(), format!("{}{path}", self.endpoint))
            .query(&q)
            .header("Authorization", format!("SharedKey {}:{sig}", self.account));
        for (k, v) in headers {
            rb = rb.header(k, v);
        }
        let resp = rb.body(body).send().await.unwrap_or_else(|e| panic!("Azurite at {}: {e} (run {SCRIPT} start)", self.endpoint));
        assert!(resp.status().is_success(), "{method} {path}: {}", resp.status());
        resp
    }

    async fn put(&self, container: &str, blob: &str, body: Vec<u8>) {
        self.send("PUT", &format!("/{container}/{blob}"), &[], body).await;
    }

    async fn get(&self, container: &str, blob: &str) -> Vec<u8> {
        self.send("GET", &format!("/{container}/{blob}"), &[], vec![]).await.bytes().await.unwrap().to_vec()
    }

    /// Blob names under `prefix` (one page: the tests write far fewer than 5000).
    async fn list(&self, container: &str, prefix: &str) -> Vec<String> {
        let q = [("comp", "list"), ("prefix", prefix), ("restype", "container")];
        let xml = self.send("GET", &format!("/{container}"), &q, vec![]).await.text().await.unwrap();
        assert!(!xml.contains("<NextMarker>") || xml.contains("<NextMarker />") || xml.contains("<NextMarker/>"), "more than one page");
        xml.split("<Blob>").skip(1).map(|b| b.split_once("<Name>").unwrap().1.split_once("</Name>").unwrap().0.to_string()).collect()
    }

    /// Every blob under `prefix/`, by key relative to it.
    async fn objects(&self, container: &str, prefix: &str) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        for name in self.list(container, &format!("{prefix}/")).await {
            let bytes = self.get(container, &name).await;
            out.insert(name[prefix.len() + 1..].to_string(), bytes);
        }
        out
    }

    /// The 1.x tables of `g` under `<prefix>/tables`.
    async fn upload_tables(&self, g: &Generated, prefix: &str) {
        for (rel, bytes) in local_objects(&g.tables) {
            self.put(&source_container(), &format!("{prefix}/tables/{rel}"), bytes).await;
        }
    }
}

// ---- configs ----

/// A `remote:` section for `cloud: azure`; `prefix_key` is tablesDir or outputDir.
fn remote(endpoint: &str, container: &str, key: &str, prefix_key: &str, prefix: &str) -> String {
    format!(
        "  mode: remote\n  remote:\n    cloud: azure\n    endpoint: {endpoint}\n    bucket: {container}\n    ak: {}\n    sk: {key}\n\
         \x20   useIAM: false\n    useSSL: false\n    checkBucket: false\n    {prefix_key}: {prefix}",
        azure().account
    )
}

fn local_target(dir: &Path) -> String {
    format!("  mode: local\n  local:\n    outputDir: {}", s(&dir.join("out")))
}

fn local_source(g: &Generated) -> String {
    format!("  mode: local\n  local:\n    tablesDir: {}", s(&g.tables))
}

fn dump(dir: &Path, cfg: &Path) -> std::process::Output {
    run_env(dir, &["dump", "--config", s(cfg)], &[])
}

// ---- tests ----

#[tokio::test]
async fn azure_source_container_dumps_every_live_row() {
    let az = azure();
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    let prefix = unique("src");
    az.upload_tables(&g, &prefix).await;
    let source = remote(&az.endpoint, &source_container(), &az.key, "tablesDir", &format!("{prefix}/tables"));
    let cfg = config(dir.path(), &g, &source, &local_target(dir.path()));
    let started = std::time::Instant::now();
    let o = dump(dir.path(), &cfg);
    assert!(o.status.success(), "{}", text(&o));
    eprintln!("dump from Azurite: {:?}", started.elapsed());
    check_dump_objects(&g, &local_objects(&dir.path().join("out")));
    assert_no_secret(&o, &[&az.key]);
}

#[tokio::test]
async fn azure_source_and_target_containers_hold_the_whole_dump() {
    let az = azure();
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    let prefix = unique("both");
    az.upload_tables(&g, &prefix).await;
    let source = remote(&az.endpoint, &source_container(), &az.key, "tablesDir", &format!("{prefix}/tables"));
    let target = remote(&az.endpoint, &container(), &az.key, "outputDir", &format!("migration/{prefix}"));
    let cfg = config(dir.path(), &g, &source, &target);
    let o = dump(dir.path(), &cfg);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("manifest: az://{}/migration/{prefix}/manifest.json", container())),
        "{}",
        text(&o)
    );
    let objects = az.objects(&container(), &format!("migration/{prefix}")).await;
    check_dump_objects(&g, &objects);
    assert_no_secret(&o, &[&az.key]);

    // Again into the same prefix: the lease (created create-only, If-None-Match on Azure) is taken
    // and removed again, the files are replaced, and the dump still checks out.
    let o = dump(dir.path(), &cfg);
    assert!(o.status.success(), "{}", text(&o));
    let again = az.objects(&container(), &format!("migration/{prefix}")).await;
    assert_eq!(again.keys().collect::<Vec<_>>(), objects.keys().collect::<Vec<_>>(), "a finished run leaves no lease behind");
    check_dump_objects(&g, &again);
}

#[tokio::test]
async fn azure_wrong_key_is_access_denied_and_no_key_is_printed() {
    let az = azure();
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    // A well-formed key (base64 of 64 bytes) that is not the account's.
    let wrong = B64.encode([7u8; 64]);
    let target = remote(&az.endpoint, &container(), &wrong, "outputDir", &unique("denied"));
    let o = dump(dir.path(), &config(dir.path(), &g, &local_source(&g), &target));
    assert_exit(
        &o,
        1,
        &[
            &format!("bucket \"{}\" (target.remote.bucket) at {}: access denied, check target.remote.ak / .sk", container(), az.endpoint),
            "403",
        ],
    );
    assert_no_secret(&o, &[&wrong, &az.key]);

    // The same for a source.
    let prefix = unique("denied-src");
    az.upload_tables(&g, &prefix).await;
    let source = remote(&az.endpoint, &source_container(), &wrong, "tablesDir", &format!("{prefix}/tables"));
    let o = dump(dir.path(), &config(dir.path(), &g, &source, &local_target(dir.path())));
    assert_exit(&o, 1, &["access denied, check source.remote.ak / .sk", "403"]);
    assert_no_secret(&o, &[&wrong, &az.key]);
    assert!(!dir.path().join("out/manifest.json").exists());
}

#[tokio::test]
async fn azure_missing_container_is_named() {
    let az = azure();
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    let missing = unique("no-such-container");
    let target = remote(&az.endpoint, &missing, &az.key, "outputDir", "x");
    let cfg = config(dir.path(), &g, &local_source(&g), &target);
    let o = dump(dir.path(), &cfg);
    assert_exit(
        &o,
        1,
        &[&format!(
            "bucket \"{missing}\" (target.remote.bucket) at {} does not exist; create it, or set target.remote.checkBucket: true",
            az.endpoint
        )],
    );
    // checkBucket creates S3 buckets only: an Azure container is never created behind the user's back.
    std::fs::write(&cfg, std::fs::read_to_string(&cfg).unwrap().replace("checkBucket: false", "checkBucket: true")).unwrap();
    let o = dump(dir.path(), &cfg);
    assert_exit(&o, 1, &[&format!("bucket \"{missing}\" (target.remote.bucket)"), "creating buckets is only supported for S3"]);
    assert_no_secret(&o, &[&az.key]);

    let source = remote(&az.endpoint, &missing, &az.key, "tablesDir", "x/tables");
    let o = dump(dir.path(), &config(dir.path(), &g, &source, &local_target(dir.path())));
    assert_exit(
        &o,
        1,
        &[&format!("bucket \"{missing}\" (source.remote.bucket) at {} does not exist: it should hold the 1.x tables", az.endpoint)],
    );
    assert!(!dir.path().join("out/manifest.json").exists());
}

#[tokio::test]
async fn azure_unreachable_endpoint_is_named() {
    let az = azure();
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    let closed = ClosedPort::new();
    let endpoint = format!("http://127.0.0.1:{}/{}", closed.port, az.account);
    let target = remote(&endpoint, &container(), &az.key, "outputDir", "x");
    let started = std::time::Instant::now();
    let o = dump(dir.path(), &config(dir.path(), &g, &local_source(&g), &target));
    assert_exit(
        &o,
        1,
        &[
            &format!("bucket \"{}\" (target.remote.bucket) at {endpoint}: cannot reach the store (target.remote.endpoint)", container()),
            "Connection refused",
        ],
    );
    assert!(started.elapsed().as_secs() < 60, "took {:?}", started.elapsed());
    assert_no_secret(&o, &[&az.key]);
}
