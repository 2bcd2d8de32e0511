//! milvus-migration: parse, resolve settings, run, exit code.

mod bindings;
mod caps;
mod cli;
mod component;
mod crash;
mod exit;
mod help_tables;
mod job;
mod lease;
mod pb;
mod progress;
mod run_report;
mod sandbox;
mod serve;
mod settings;
mod state;
mod stores;
mod submit;
mod unit_gate;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use std::path::PathBuf;

use cli::{Cli, Command};
use run_report::Recorder;
use exit::Failure;
use job::model::Job;
use settings::Needs;

fn init_logging(verbose: u8, level: Option<&str>) {
    init_logging_for(verbose, level, false)
}

/// `jobs`: also file each job's log lines as its events (the service).
fn init_logging_for(verbose: u8, level: Option<&str>, jobs: bool) {
    use tracing_subscriber::prelude::*;
    let level = match verbose {
        0 => level.unwrap_or("info").to_string(),
        1 => "debug".into(),
        _ => "trace".into(),
    };
    let filter = EnvFilter::try_from_env("MILVUS_MIGRATION_LOG").unwrap_or_else(|_| {
        // sqlx warns about pool housekeeping after a lost connection, which the error already says.
        EnvFilter::new(format!("warn,sqlx=error,milvus_migration={level}"))
    });
    let fmt = tracing_subscriber::fmt::layer().with_target(false).with_ansi(progress::color()).with_writer(|| progress::LogWriter);
    let _ = tracing_subscriber::registry().with(filter).with(fmt).with(jobs.then_some(serve::events::JobLogLayer)).try_init();
}

/// Finds, reads and checks migration.yaml, then starts logging at its level.
fn settings(config: Option<&std::path::Path>, collections: Vec<String>, needs: Needs, verbose: u8) -> Result<Job, Failure> {
    let path = settings::locate(config).map_err(|e| Failure::Usage(e.into()))?;
    let s = Job::load(&path, collections, needs).map_err(|e| Failure::Usage(e.into()))?;
    init_logging(verbose, s.log_level.as_deref());
    Ok(s)
}

/// Writes the run report of a command that ran (however it ended), and passes its result on.
fn reported(rec: &Recorder, result: Result<(), Failure>, path: Option<PathBuf>) -> Result<(), Failure> {
    let path = path.unwrap_or_else(|| run_report::default_path(&rec.command()));
    rec.finish(result.as_ref().map(|_| ()).map_err(Failure::message), &path);
    result
}

/// The run options of a command that writes into a dump or imports from it.
fn apply_run(s: &mut crate::job::model::Job, run: &cli::RunArgs) -> Result<(), Failure> {
    s.wait_for_lease = run.wait;
    s.share = match (run.workers, run.worker) {
        (None, _) => None,
        (Some(0), _) => return Err(Failure::Usage(anyhow::anyhow!("--workers must be at least 1"))),
        (Some(_), None) => return Err(Failure::Usage(anyhow::anyhow!("--workers needs --worker I (or $JOB_COMPLETION_INDEX)"))),
        (Some(n), Some(i)) if i >= n => return Err(Failure::Usage(anyhow::anyhow!("--worker {i} is not below --workers {n} (workers are 0..{})", n - 1))),
        (Some(n), Some(i)) => Some(job::workers::Share { workers: n, worker: i }),
    };
    Ok(())
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let report_path = cli.report.clone();
    match cli.command {
        Command::Version => {
            println!("milvus-migration {} (component API {}, component sha256 {})", env!("CARGO_PKG_VERSION"), component::API, component::sha256());
            Ok(())
        }
        Command::Serve(args) => {
            init_logging_for(cli.verbose, None, true);
            serve::run(&args.config).await
        }
        Command::Submit(args) => {
            init_logging(cli.verbose, None);
            submit::run(args, report_path).await
        }
        Command::Component(args) => component::write(&args.out, args.wit.as_deref()).map_err(Failure::Run),
        Command::Export(args) => {
            init_logging(cli.verbose, None);
            let (meta, setting) = match (args.sqlite, args.mysql) {
                (Some(path), _) => (job::model::MetaSpec::Sqlite(path), "-s"),
                (None, Some(dsn)) => (job::model::MetaSpec::Mysql(dsn), "-m"),
                (None, None) => unreachable!("clap requires -m or -s"),
            };
            job::export::run(&meta, setting, &args.output, &Default::default()).await
        }
        Command::Dump(args) => {
            let mut s = settings(args.config.as_deref(), args.collections, Needs { meta: true, milvus: false }, cli.verbose)?;
            apply_run(&mut s, &args.run)?;
            let rec = Recorder::new("dump", args.config);
            reported(&rec, job::dump::run(&s, &rec).await, report_path)
        }
        Command::Load(args) => {
            let c = args.common;
            let mut s = settings(c.config.as_deref(), c.collections, Needs { meta: false, milvus: true }, cli.verbose)?;
            apply_run(&mut s, &args.run)?;
            let rec = Recorder::new("load", c.config);
            reported(&rec, job::load::run(&s, !args.no_verify, &rec).await, report_path)
        }
        Command::Verify(args) => {
            let c = args.common;
            let s = settings(c.config.as_deref(), c.collections, Needs { meta: false, milvus: true }, cli.verbose)?;
            let rec = Recorder::new("verify", c.config);
            let result = if args.full { job::reconcile::run(&s, &rec, args.max_listed, None).await } else { job::load::verify(&s, &rec).await };
            reported(&rec, result, report_path)
        }
        Command::Repair(args) => {
            let c = args.common;
            let s = settings(c.config.as_deref(), c.collections, Needs { meta: false, milvus: true }, cli.verbose)?;
            let rec = Recorder::new("repair", c.config);
            reported(&rec, job::reconcile::run(&s, &rec, args.max_listed, Some(args.delete_extra)).await, report_path)
        }
        Command::Plan(args) => {
            let c = args.common;
            let s = settings(c.config.as_deref(), c.collections, Needs { meta: true, milvus: false }, cli.verbose)?;
            job::plan::run(&s, args.json).await
        }
        Command::Migrate(args) => {
            let c = args.common;
            let mut s = settings(c.config.as_deref(), c.collections, Needs { meta: true, milvus: true }, cli.verbose)?;
            apply_run(&mut s, &args.run)?;
            let rec = Recorder::new("migrate", c.config);
            let result = job::migrate::run(&s, &rec).await;
            reported(&rec, result, report_path)
        }
    }
}

/// Keeps freed chunk buffers in the process. Every chunk of a dump cycles ~1 MiB buffers through
/// the allocator; glibc's defaults hand them back to the kernel and fault them in again, which
/// measured 15-20% of a dump's wall time (scripts/bench.sh).
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; called before any other thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return Failure::Run(e.into()).report(),
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use serde::Deserialize;

    /// The Kubernetes manifest runs this binary's own command line and configuration, so the two
    /// cannot drift apart.
    #[test]
    fn the_kubernetes_manifest_matches_the_cli_and_the_settings() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/kubernetes/indexed-job.yaml")).unwrap();
        let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text).map(|d| serde_yaml::Value::deserialize(d).unwrap()).collect();
        let kind = |k: &str| docs.iter().find(|d| d["kind"] == k).unwrap_or_else(|| panic!("no {k} in the manifest"));
        let spec = &kind("Job")["spec"];
        assert_eq!(spec["completionMode"], "Indexed");
        assert_eq!(spec["podReplacementPolicy"], "Failed");
        assert!(spec["backoffLimitPerIndex"].as_u64().is_some());
        let n = spec["completions"].as_u64().unwrap() as usize;
        assert_eq!(spec["parallelism"].as_u64(), Some(n as u64));
        let pod = &spec["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Never");
        let c = &pod["containers"][0];
        let argv: Vec<String> = c["command"].as_sequence().unwrap().iter().chain(c["args"].as_sequence().unwrap()).map(|v| v.as_str().unwrap().to_string()).collect();
        let cli = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        let Command::Migrate(m) = cli.command else { panic!("{argv:?} is not migrate") };
        // Kubernetes gives each pod its index in JOB_COMPLETION_INDEX, which --worker defaults to.
        let run = cli::RunArgs { worker: Some(n - 1), ..m.run.clone() };
        assert!(run.wait, "a replacement pod must wait for a live predecessor");
        let config = m.common.config.clone().unwrap();
        let mount = &c["volumeMounts"][0];
        assert_eq!(config, std::path::Path::new(mount["mountPath"].as_str().unwrap()).join("migration.yaml"));
        let cm = kind("ConfigMap");
        let volume = pod["volumes"].as_sequence().unwrap().iter().find(|v| v["name"] == mount["name"]).unwrap();
        assert_eq!(volume["configMap"]["name"], cm["metadata"]["name"]);

        // The ConfigMap's migration.yaml, as the pod sees it: valid, but for the keys the Secret gives.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("migration.yaml");
        std::fs::write(&path, cm["data"]["migration.yaml"].as_str().unwrap()).unwrap();
        let secret = kind("Secret");
        assert_eq!(c["envFrom"][0]["secretRef"]["name"], secret["metadata"]["name"]);
        let given: Vec<&str> = secret["stringData"].as_mapping().unwrap().keys().map(|k| k.as_str().unwrap()).collect();
        for var in [settings::env::SOURCE_AK, settings::env::SOURCE_SK, settings::env::TARGET_AK, settings::env::TARGET_SK, settings::env::MILVUS_PASSWORD] {
            assert!(given.contains(&var), "the Secret lacks {var}");
        }
        let mut s = match Job::load(&path, vec![], settings::Needs { meta: true, milvus: true }) {
            Ok(s) => s,
            Err(settings::SettingsError::Invalid { problems, .. }) => {
                // Only the keys, which this test process does not have in its environment.
                assert!(problems.iter().all(|p| given.iter().any(|v| p.contains(v))), "{problems:?}");
                return check_share(n, &run);
            }
            Err(e) => panic!("{e}"),
        };
        apply_run(&mut s, &run).unwrap();
        assert_eq!(s.share, Some(job::workers::Share { workers: n, worker: n - 1 }));
    }

    fn check_share(n: usize, run: &cli::RunArgs) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.yaml");
        std::fs::write(&path, "meta:\n  mode: local\n  localFile: m.json\nsource:\n  mode: local\n  local:\n    tablesDir: /t\ntarget:\n  mode: local\n  local:\n    outputDir: /o\n").unwrap();
        let mut s = Job::load(&path, vec![], settings::Needs { meta: true, milvus: false }).unwrap();
        apply_run(&mut s, run).unwrap();
        assert_eq!(s.share, Some(job::workers::Share { workers: n, worker: n - 1 }));
        let bad = cli::RunArgs { worker: Some(n), ..run.clone() };
        assert!(apply_run(&mut s, &bad).is_err());
    }
}
