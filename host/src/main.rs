//! milvus-migration: parse, resolve settings, run, exit code.

mod bindings;
mod caps;
mod cli;
mod exit;
mod job;
mod progress;
mod sandbox;
mod settings;
mod state;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command};
use exit::Failure;

fn init_logging(verbose: u8, level: Option<&str>) {
    let level = match verbose {
        0 => level.unwrap_or("info").to_string(),
        1 => "debug".into(),
        _ => "trace".into(),
    };
    let filter = EnvFilter::try_from_env("MILVUS_MIGRATION_LOG").unwrap_or_else(|_| {
        EnvFilter::new(format!("warn,milvus_migration={level}"))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(|| progress::LogWriter)
        .try_init();
}

async fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Version => {
            println!("milvus-migration {} (component API milvus:migration@0.1.0)", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Export(args) => {
            init_logging(cli.verbose, None);
            job::export::run(args).await
        }
        Command::Dump(args) => {
            let path = settings::locate(args.config.as_deref()).map_err(|e| Failure::Usage(e.into()))?;
            let s = settings::DumpSettings::load(&path, args.collections).map_err(|e| Failure::Usage(e.into()))?;
            init_logging(cli.verbose, s.log_level.as_deref());
            job::dump::run(s).await
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
