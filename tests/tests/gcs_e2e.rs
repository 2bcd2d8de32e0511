//! `cloud: gcp` through GCS's own API (object_store's GoogleCloudStorageBuilder, `useIAM: true`,
//! `endpoint`) against fake-gcs-server 1.54.0 (scripts/gcs.sh). A real dump reads the 1.x tables
//! from a bucket. What this emulator cannot show (scripts/gcs.sh says why): a dump written into
//! a bucket (it refuses object_store's XML-API PUT, so that test checks only that the refusal is
//! reported and nothing claims a complete dump), a wrong key (it checks none; an unusable key is
//! tested instead), and GCS's 404 for a missing bucket (it answers 500). The tests upload and list
//! through the emulator's JSON API with a client of their own.

mod cloud_support;
mod fault_support;

use std::path::Path;

use cloud_support::*;
use fault_support::{assert_exit, s, ClosedPort};
use mm_tests::tool::text;
use mm_tests::Generated;

const SCRIPT: &str = "scripts/gcs.sh";

fn endpoint() -> String {
    required("GCS_ENDPOINT", SCRIPT)
}

fn bucket() -> String {
    required("GCS_BUCKET", SCRIPT)
}

fn source_bucket() -> String {
    required("GCS_SOURCE_BUCKET", SCRIPT)
}

/// object_store's key for emulators: no OAuth, empty tokens (the host adds `gcs_base_url` from `endpoint`).
const EMULATOR_KEY: &str =
    r#"{"type": "service_account", "private_key": "", "private_key_id": "", "client_email": "", "disable_oauth": true}"#;

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// Uploads the 1.x tables of `g` under `<prefix>/tables` (JSON API, uploadType=media).
async fn upload_tables(g: &Generated, prefix: &str) {
    for (rel, bytes) in local_objects(&g.tables) {
        let url = format!("{}/upload/storage/v1/b/{}/o", endpoint(), source_bucket());
        let name = format!("{prefix}/tables/{rel}");
        let r = client().post(url).query(&[("uploadType", "media"), ("name", &name)]).body(bytes).send().await;
        let r = r.unwrap_or_else(|e| panic!("fake-gcs-server at {}: {e} (run {SCRIPT} start)", endpoint()));
        assert!(r.status().is_success(), "upload {name}: {}", r.status());
    }
}

/// Object names under `prefix` in `bucket` (JSON API).
async fn list(bucket: &str, prefix: &str) -> Vec<String> {
    let url = format!("{}/storage/v1/b/{bucket}/o", endpoint());
    let r = client().get(url).query(&[("prefix", prefix)]).send().await.unwrap();
    assert!(r.status().is_success(), "list {bucket}/{prefix}: {}", r.status());
    let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert!(v.get("nextPageToken").is_none(), "more than one page");
    v["items"].as_array().into_iter().flatten().map(|o| o["name"].as_str().unwrap().to_string()).collect()
}

fn remote(endpoint: &str, bucket: &str, prefix_key: &str, prefix: &str) -> String {
    format!(
        "  mode: remote\n  remote:\n    cloud: gcp\n    endpoint: {endpoint}\n    bucket: {bucket}\n    useIAM: true\n\
         \x20   checkBucket: false\n    {prefix_key}: {prefix}"
    )
}

fn local_target(dir: &Path) -> String {
    format!("  mode: local\n  local:\n    outputDir: {}", s(&dir.join("out")))
}

fn dump(dir: &Path, cfg: &Path, envs: &[(&str, &str)]) -> std::process::Output {
    run_env(dir, &["dump", "--config", s(cfg)], envs)
}

#[tokio::test]
async fn gcs_source_bucket_dumps_every_live_row() {
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    let prefix = unique("src");
    upload_tables(&g, &prefix).await;
    let source = remote(&endpoint(), &source_bucket(), "tablesDir", &format!("{prefix}/tables"));
    let cfg = config(dir.path(), &g, &source, &local_target(dir.path()));
    // The key the environment names, as a file (GOOGLE_SERVICE_ACCOUNT) and inline (..._KEY).
    let key_file = dir.path().join("sa.json");
    std::fs::write(&key_file, EMULATOR_KEY).unwrap();
    for env in [("GOOGLE_SERVICE_ACCOUNT", s(&key_file)), ("GOOGLE_SERVICE_ACCOUNT_KEY", EMULATOR_KEY), ("GOOGLE_SKIP_SIGNATURE", "true")] {
        std::fs::remove_dir_all(dir.path().join("out")).ok();
        let started = std::time::Instant::now();
        let o = dump(dir.path(), &cfg, &[env]);
        assert!(o.status.success(), "{}: {}", env.0, text(&o));
        eprintln!("dump from fake-gcs-server with {}: {:?}", env.0, started.elapsed());
        check_dump_objects(&g, &local_objects(&dir.path().join("out")));
    }
}

#[tokio::test]
async fn gcs_target_refused_by_the_emulator_is_reported_and_leaves_no_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    let prefix = format!("migration/{}", unique("t"));
    let source = format!("  mode: local\n  local:\n    tablesDir: {}", s(&g.tables));
    let cfg = config(dir.path(), &g, &source, &remote(&endpoint(), &bucket(), "outputDir", &prefix));
    let o = dump(dir.path(), &cfg, &[("GOOGLE_SERVICE_ACCOUNT_KEY", EMULATOR_KEY)]);
    // The probe (a list) passes; the first write, the lease, is refused with a 400.
    assert_exit(&o, 1, &[&format!("taking the lease of the dump at gs://{}/{prefix}", bucket()), "400 Bad Request"]);
    assert_eq!(list(&bucket(), &prefix).await, Vec::<String>::new());
}

#[tokio::test]
async fn gcs_missing_or_unusable_credentials_are_named_and_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    let ep = endpoint();
    let cfg = config(dir.path(), &g, &remote(&ep, &source_bucket(), "tablesDir", "x/tables"), &local_target(dir.path()));
    let o = dump(dir.path(), &cfg, &[]);
    assert_exit(&o, 1, &[&format!("source.remote.endpoint {ep}: GCS at another endpoint (cloud gcp, useIAM) needs a service-account key")]);

    // A key whose private key is not one (no disable_oauth: it would sign with it).
    let bad = r#"{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\nU2VjcmV0UGVtQm9keQ==\n-----END PRIVATE KEY-----\n", "private_key_id": "k1", "client_email": "mm@example.iam.gserviceaccount.com"}"#;
    let o = dump(dir.path(), &cfg, &[("GOOGLE_SERVICE_ACCOUNT_KEY", bad)]);
    assert_exit(&o, 1, &["source.remote: invalid GCS settings (credentials from GOOGLE_SERVICE_ACCOUNT_KEY)"]);
    fault_support::assert_no_secret(&o, &["U2VjcmV0UGVtQm9keQ"]);

    let o = dump(dir.path(), &cfg, &[("GOOGLE_SERVICE_ACCOUNT_KEY", "{\"private_key\": \"U2VjcmV0UGVtQm9keQ\"")]);
    assert_exit(&o, 1, &["source.remote.endpoint: the service-account key in GOOGLE_SERVICE_ACCOUNT_KEY: is not JSON"]);
    fault_support::assert_no_secret(&o, &["U2VjcmV0UGVtQm9keQ"]);
    assert!(!dir.path().join("out/manifest.json").exists());
}

#[tokio::test]
async fn gcs_missing_bucket_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    let missing = unique("no-such-bucket");
    let cfg = config(dir.path(), &g, &remote(&endpoint(), &missing, "tablesDir", "x/tables"), &local_target(dir.path()));
    let o = dump(dir.path(), &cfg, &[("GOOGLE_SKIP_SIGNATURE", "true")]);
    // GCS says 404 ("does not exist"); fake-gcs-server says 500, retried, then "cannot reach".
    assert_exit(&o, 1, &[&format!("bucket \"{missing}\" (source.remote.bucket) at {}", endpoint())]);
    assert!(!dir.path().join("out/manifest.json").exists());
}

#[tokio::test]
async fn gcs_unreachable_endpoint_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let g = install(dir.path()).await;
    let closed = ClosedPort::new();
    let ep = format!("http://127.0.0.1:{}", closed.port);
    let cfg = config(dir.path(), &g, &remote(&ep, &source_bucket(), "tablesDir", "x/tables"), &local_target(dir.path()));
    let started = std::time::Instant::now();
    let o = dump(dir.path(), &cfg, &[("GOOGLE_SERVICE_ACCOUNT_KEY", EMULATOR_KEY)]);
    assert_exit(
        &o,
        1,
        &[
            &format!("bucket \"{}\" (source.remote.bucket) at {ep}: cannot reach the store (source.remote.endpoint)", source_bucket()),
            "Connection refused",
        ],
    );
    assert!(started.elapsed().as_secs() < 60, "took {:?}", started.elapsed());
}
