//! milvus-migration: parse, resolve settings, run, exit code.

mod bindings;
mod caps;
mod cli;
mod crash;
mod exit;
mod job;
mod lease;
mod pb;
mod progress;
mod run_report;
mod sandbox;
mod settings;
mod state;
mod stores;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use std::path::PathBuf;

use cli::{Cli, Command};
use run_report::Recorder;
use exit::Failure;
use settings::{Needs, Settings};

fn init_logging(verbose: u8, level: Option<&str>) {
    let level = match verbose {
        0 => level.unwrap_or("info").to_string(),
        1 => "debug".into(),
        _ => "trace".into(),
    };
    let filter = EnvFilter::try_from_env("MILVUS_MIGRATION_LOG").unwrap_or_else(|_| {
        // sqlx warns about pool housekeeping after a lost connection, which the error already says.
        EnvFilter::new(format!("warn,sqlx=error,milvus_migration={level}"))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(|| progress::LogWriter)
        .try_init();
}

/// Finds, reads and checks migration.yaml, then starts logging at its level.
fn settings(config: Option<&std::path::Path>, collections: Vec<String>, needs: Needs, verbose: u8) -> Result<Settings, Failure> {
    let path = settings::locate(config).map_err(|e| Failure::Usage(e.into()))?;
    let s = Settings::load(&path, collections, needs).map_err(|e| Failure::Usage(e.into()))?;
    init_logging(verbose, s.log_level.as_deref());
    Ok(s)
}

/// Writes the run report of a command that ran (however it ended), and passes its result on.
fn reported(rec: &Recorder, result: Result<(), Failure>, path: Option<PathBuf>) -> Result<(), Failure> {
    let path = path.unwrap_or_else(|| run_report::default_path(&rec.command()));
    rec.finish(result.as_ref().map(|_| ()).map_err(Failure::message), &path);
    result
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let report_path = cli.report.clone();
    match cli.command {
        Command::Version => {
            println!("milvus-migration {} (component API milvus:migration@0.2.0)", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Export(args) => {
            init_logging(cli.verbose, None);
            job::export::run(args).await
        }
        Command::Dump(args) => {
            let mut s = settings(args.config.as_deref(), args.collections, Needs { meta: true, milvus: false }, cli.verbose)?;
            s.wait_for_lease = args.wait;
            let rec = Recorder::new("dump", args.config);
            reported(&rec, job::dump::run(&s, &rec).await, report_path)
        }
        Command::Load(args) => {
            let c = args.common;
            let mut s = settings(c.config.as_deref(), c.collections, Needs { meta: false, milvus: true }, cli.verbose)?;
            s.wait_for_lease = args.wait;
            let rec = Recorder::new("load", c.config);
            reported(&rec, job::load::run(&s, !args.no_verify, &rec).await, report_path)
        }
        Command::Verify(c) => {
            let s = settings(c.config.as_deref(), c.collections, Needs { meta: false, milvus: true }, cli.verbose)?;
            let rec = Recorder::new("verify", c.config);
            reported(&rec, job::load::verify(&s, &rec).await, report_path)
        }
        Command::Plan(args) => {
            let c = args.common;
            let s = settings(c.config.as_deref(), c.collections, Needs { meta: true, milvus: false }, cli.verbose)?;
            job::plan::run(&s, args.json).await
        }
        Command::Migrate(args) => {
            let c = args.common;
            let mut s = settings(c.config.as_deref(), c.collections, Needs { meta: true, milvus: true }, cli.verbose)?;
            s.wait_for_lease = args.wait;
            let rec = Recorder::new("migrate", c.config);
            let result = async {
                // The export step: a meta.json of the source, kept next to the dump.
                if let (Some(meta), settings::StoreSetting::Local(out)) = (&s.meta, &s.target) {
                    if let (_, Some(db)) = job::dump::meta_source(meta, &s.source).await? {
                        job::export::export(db, out).await?;
                    }
                }
                job::dump::run(&s, &rec).await?;
                job::load::run(&s, true, &rec).await
            }
            .await;
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
