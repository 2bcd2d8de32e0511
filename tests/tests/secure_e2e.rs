//! Login and TLS against a live server: Milvus 2.3.5 started by `MM_MILVUS_STORAGE=secure
//! scripts/milvus.sh start` (authorizationEnabled, one-way TLS with a CA the script made;
//! MILVUS_CA_CERT, MILVUS_USER and MILVUS_PASSWORD name them). scripts/test.sh runs these in
//! their own phase (tests named secure_*); without that server they fail, never skip.
//!   - the right user and password with migration.milvus.tls + caCert: the sample migrates and
//!     pymilvus (logged in, over TLS) finds every row;
//!   - a wrong password: the message names target.milvus2x.password, never its value;
//!   - no credentials: the message names target.milvus2x.username;
//!   - a CA that did not sign the server's certificate: the message names migration.milvus.caCert;
//!   - no TLS against the TLS port: the message suggests migration.milvus.tls.

use std::path::{Path, PathBuf};
use std::process::Command;

use mm_tests::interrupt::attempt;
use mm_tests::milvus_env::{pymilvus_check_with, setup, Env};
use mm_tests::samples::sample;
use mm_tests::tool::text;

fn required(key: &str) -> String {
    std::env::var(key).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
        panic!("{key} is not set: these tests need the secure Milvus (MM_MILVUS_STORAGE=secure scripts/milvus.sh start; scripts/test.sh does)")
    })
}

fn ca_cert() -> PathBuf {
    PathBuf::from(required("MILVUS_CA_CERT"))
}

/// The sample, exported, with `login` (lines under target.milvus2x) in its config.
async fn env_with(login: &str) -> Env {
    setup(&sample(), login).await
}

fn login(user: &str, password: &str) -> String {
    format!("    username: {user}\n    password: {password}\n")
}

fn tls(ca: &Path) -> String {
    format!("  milvus:\n    tls: true\n    caCert: {}\n", ca.display())
}

/// `migrate` of the float collection `books` with `config`.
fn migrate(env: &Env, config: &Path) -> std::process::Output {
    Command::new(mm_tests::tool::binary())
        .current_dir(&env.dir)
        .args(["migrate", "--col", "books", &format!("--config={}", config.display())])
        .env_remove("MILVUS_MIGRATION_MILVUS_PASSWORD")
        .output()
        .unwrap()
}

fn assert_failed_naming(o: &std::process::Output, setting: &str, secret: Option<&str>) {
    let all = text(o);
    assert!(!o.status.success(), "expected a failure naming {setting}: {all}");
    assert!(all.contains(setting), "the message names {setting}: {all}");
    if let Some(secret) = secret {
        assert!(!all.contains(secret), "the password is printed: {all}");
    }
}

#[tokio::test]
async fn secure_login_and_tls_migrate_every_row() {
    let env = env_with(&login(&required("MILVUS_USER"), &required("MILVUS_PASSWORD"))).await;
    let a = attempt(&env, 0, "books", &tls(&ca_cert()));
    let o = migrate(&env, &a.config);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("verified: every collection"), "{}", text(&o));
    assert!(!text(&o).contains(&required("MILVUS_PASSWORD")), "the password is printed: {}", text(&o));
    // pymilvus, logged in over TLS (milvus_env::login_args), counts and reads what landed.
    let partitions = [("2024 Q1/sales", "p_2024_Q1_sales"), ("empty", "empty")];
    pymilvus_check_with(&env, "books", &partitions, serde_json::json!({"collection": a.collection}));
}

#[tokio::test]
async fn secure_wrong_password_names_the_password_setting_never_its_value() {
    let wrong = "Wrong-Pw-4711";
    let env = env_with(&login(&required("MILVUS_USER"), wrong)).await;
    let a = attempt(&env, 0, "books", &tls(&ca_cert()));
    let o = migrate(&env, &a.config);
    assert_failed_naming(&o, "target.milvus2x.password", Some(wrong));
}

#[tokio::test]
async fn secure_no_credentials_names_the_username_setting() {
    let env = env_with("").await;
    let a = attempt(&env, 0, "books", &tls(&ca_cert()));
    let o = migrate(&env, &a.config);
    assert_failed_naming(&o, "target.milvus2x.username", None);
}

#[tokio::test]
async fn secure_a_ca_that_did_not_sign_the_server_names_ca_cert() {
    let env = env_with(&login(&required("MILVUS_USER"), &required("MILVUS_PASSWORD"))).await;
    // A CA of our own, made here: valid, but not the one that signed the server's certificate.
    let other = env.dir.join("other-ca.pem");
    let o = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=not the server's CA"])
        .args(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        .args(["-keyout", env.dir.join("other-ca.key").to_str().unwrap(), "-out", other.to_str().unwrap()])
        .output()
        .expect("openssl");
    assert!(o.status.success(), "{}", text(&o));
    let a = attempt(&env, 0, "books", &tls(&other));
    let o = migrate(&env, &a.config);
    assert_failed_naming(&o, "migration.milvus.caCert", Some(&required("MILVUS_PASSWORD")));
    assert!(text(&o).contains(other.to_str().unwrap()), "the file is named: {}", text(&o));
}

#[tokio::test]
async fn secure_a_plain_connection_to_the_tls_port_suggests_tls() {
    let env = env_with(&login(&required("MILVUS_USER"), &required("MILVUS_PASSWORD"))).await;
    let a = attempt(&env, 0, "books", "");
    let o = migrate(&env, &a.config);
    assert_failed_naming(&o, "set migration.milvus.tls: true", Some(&required("MILVUS_PASSWORD")));
}
