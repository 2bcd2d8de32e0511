//! Unit tests of `settings.rs`: the guide's keys, ours, and the errors that name them.

use super::*;

fn load(yaml: &str) -> Result<Job, SettingsError> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("migration.yaml");
    std::fs::write(&p, yaml).unwrap();
    Job::load(&p, vec![], Needs { meta: true, milvus: true })
}

const GUIDE: &str = r#"
dumper:
  worker:
    limit: 2
    workMode: milvus1x
    reader:
      bufferSize: 1024
    writer:
      bufferSize: 1024
loader:
  worker:
    limit: 16
meta:
  mode: local
  localFile: /outputDir/test/meta.json
source:
  mode: local
  local:
    tablesDir: /db/tables/
target:
  mode: local
  local:
    outputDir: /out
  remote:
    outputDir: "migration/test/xx"
    ak: xxxx
    sk: xxxx
    cloud: aws
    region: us-west-2
    bucket: xxxxx
    useIAM: true
    checkBucket: false
  milvus2x:
    endpoint: "localhost:19530"
    username: xxxx
    password: s3cr3t-pw
"#;

#[test]
fn the_guides_file_parses() {
    let s = load(GUIDE).unwrap();
    assert_eq!(s.meta, Some(MetaSpec::Json("/outputDir/test/meta.json".into())));
    let m = s.milvus.unwrap();
    assert_eq!((m.endpoint.as_str(), m.database.as_str(), m.password.as_deref()), ("localhost:19530", "default", Some("s3cr3t-pw")));
    assert!(!format!("{m:?}").contains("s3cr3t"), "password in Debug output");
    assert_eq!(s.source, StoreSpec::Local("/db/tables/".into()));
    assert_eq!(s.target, StoreSpec::Local("/out".into()));
    assert_eq!(s.workers.get(), 2);
    assert_eq!(s.read_chunk, 1 << 20);
    assert_eq!(s.vector_field, "data");
}

#[test]
fn the_guides_bucket_target_and_mysql_meta() {
    let yaml = GUIDE
        .replace("  mode: local\n  local:\n    outputDir: /out", "  mode: remote")
        .replace("  mode: local\n  localFile: /outputDir/test/meta.json", "  mode: mysql\n  mysqlUrl: root:pw@tcp(db:3306)/milvus?charset=utf8mb4");
    let s = load(&yaml).unwrap();
    let StoreSpec::Remote(r) = &s.target else { panic!("{:?}", s.target) };
    assert_eq!((r.bucket.as_str(), r.prefix.as_str(), r.cloud), ("xxxxx", "migration/test/xx", Cloud::Aws));
    assert!(r.use_iam && !r.check_bucket);
    assert!(matches!(&s.meta, Some(MetaSpec::Mysql(u)) if u.starts_with("root:pw@")));
    let shown = format!("{:?} {:?}", s.meta, s.target);
    assert!(!shown.contains("pw@") && !shown.contains("secret"), "{shown}");
}

#[test]
fn unknown_key_is_reported_with_its_line() {
    let e = load(&GUIDE.replace("    workMode: milvus1x", "    workMod: milvus1x")).unwrap_err().to_string();
    assert!(e.contains("workMod") && e.contains("line 5"), "{e}");
}

#[test]
fn all_problems_at_once() {
    let e = load("meta:\n  mode: sqlite\ntarget:\n  mode: remote\ndumper:\n  worker:\n    limit: 0\n").unwrap_err().to_string();
    assert!(e.contains("meta.sqliteFile"), "{e}");
    assert!(e.contains("target.remote.bucket is required"), "{e}");
    assert!(e.contains("target.remote.ak and .sk are required unless useIAM"), "{e}");
    assert!(e.contains("dumper.worker.limit"), "{e}");
    assert!(e.contains("source.local.tablesDir"), "{e}");
}

#[test]
fn load_mode_and_insert_batches_are_read_and_bounded() {
    let s = load(GUIDE).unwrap();
    assert_eq!(s.load_mode, LoadMode::Import);
    let s = load(&format!("{GUIDE}migration:\n  loadMode: insert\n")).unwrap();
    assert_eq!(s.load_mode, LoadMode::Insert { batch_bytes: 16 << 20 });
    let s = load(&format!("{GUIDE}migration:\n  loadMode: insert\n  insertBatchMiB: 4\n")).unwrap();
    assert_eq!(s.load_mode, LoadMode::Insert { batch_bytes: 4 << 20 });
    let e = load(&format!("{GUIDE}migration:\n  loadMode: grpc\n  insertBatchMiB: 64\n")).unwrap_err().to_string();
    assert!(e.contains("migration.loadMode \"grpc\" is not one of import, insert"), "{e}");
    assert!(e.contains("migration.insertBatchMiB 64 is outside 1..48"), "{e}");
}

#[test]
fn azure_and_gcs_buckets_at_an_endpoint() {
    // Azure: the account URL (Azurite's path style here), the account name and key as ak / sk.
    let azure = "  mode: remote\n  remote:\n    cloud: azure\n    endpoint: http://127.0.0.1:10000/devstoreaccount1\n    bucket: c\n    ak: devstoreaccount1\n    sk: a2V5\n    outputDir: out";
    let milvus = "  milvus2x:\n    endpoint: localhost:19530\n";
    let yaml = format!(
        "meta:\n  mode: local\n  localFile: /m.json\nsource:\n  mode: local\n  local:\n    tablesDir: /t\ntarget:\n{azure}\n{milvus}"
    );
    let s = load(&yaml).unwrap();
    let StoreSpec::Remote(r) = &s.target else { panic!("{:?}", s.target) };
    assert_eq!(
        (r.cloud, r.endpoint.as_deref(), r.bucket.as_str(), r.prefix.as_str()),
        (Cloud::Azure, Some("http://127.0.0.1:10000/devstoreaccount1"), "c", "out")
    );
    assert!(!format!("{r:?}").contains("a2V5"), "key in Debug output");
    // GCS's own API: useIAM (credentials from the environment), no ak / sk needed.
    let gcs = "  mode: remote\n  remote:\n    cloud: gcp\n    endpoint: http://127.0.0.1:4443\n    bucket: b\n    useIAM: true\n    tablesDir: one/tables";
    let yaml = format!(
        "meta:\n  mode: local\n  localFile: /m.json\nsource:\n{gcs}\ntarget:\n  mode: local\n  local:\n    outputDir: /o\n{milvus}"
    );
    let s = load(&yaml).unwrap();
    let StoreSpec::Remote(r) = &s.source else { panic!("{:?}", s.source) };
    assert_eq!(
        (r.cloud, r.endpoint.as_deref(), r.use_iam, r.prefix.as_str()),
        (Cloud::Gcp, Some("http://127.0.0.1:4443"), true, "one/tables")
    );
    let e = load(&yaml.replace("useIAM: true", "useSSL: true")).unwrap_err().to_string();
    assert!(e.contains("source.remote.useSSL is true but source.remote.endpoint \"http://127.0.0.1:4443\" says http://"), "{e}");
    assert!(e.contains("source.remote.ak and .sk are required unless useIAM is true"), "{e}");
}
