//! The command line (clap types only; settings.rs turns them into typed settings).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::help_tables;

/// Migrate a Milvus 0.9.x-1.x installation into Milvus 2.x.
///
/// The steps of the official "From Milvus 1.x" guide: `export` the 1.x meta to meta.json, `dump`
/// the 1.x segments to NumPy files, then load them into Milvus 2.x. All reading of 1.x data runs
/// inside a sandboxed WebAssembly component, one isolated instance per segment.
#[derive(Debug, Parser)]
#[command(name = "milvus-migration", version, max_term_width = 100, after_help = help_tables::exit_codes())]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More log output (-v: debug); overrides log.level.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Where dump, load, verify and migrate write their JSON run report (default:
    /// ./milvus-migration-<command>-<UTC time>-<pid>.json). Written on failure too.
    #[arg(long, global = true, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Export the 1.x meta database (SQLite or MySQL) to DIR/meta.json.
    ///
    /// meta.json is the Go tool's document (collections, segments, rows, dims) plus keys of our
    /// own so nothing is lost: partitions with their tags, binary or float vectors, index type
    /// and parameters, file types. It is what `meta.mode: local` reads.
    #[command(after_help = help_tables::exit_codes())]
    Export(ExportArgs),
    /// Convert the 1.x segments into NumPy files (per collection, partition and segment).
    ///
    /// Reads migration.yaml, plans the work from the meta (meta.json or meta.sqlite), then
    /// converts each live segment in its own sandboxed instance: ids and vectors of the rows that
    /// were not deleted go to <outputDir>/<collection>/<partition>/<segment>/{id,data}.npy, and
    /// manifest.json at <outputDir> records every file with its rows, bytes and CRC-32C. The
    /// previous manifest is removed first, and a new one written only when every segment
    /// succeeded.
    #[command(after_help = help_tables::keys_and_exit_codes())]
    Dump(DumpArgs),
    /// Bulk-import a completed dump into Milvus 2.x, then verify it.
    ///
    /// Reads the dump's manifest.json, checks every collection against the server first (an
    /// existing collection must have the same schema, or nothing is imported), creates missing
    /// collections and partitions (1.x tags that 2.x rejects are mapped to valid names, and the
    /// mapping is printed), checks each file group against the manifest (size, CRC-32C), imports
    /// it with one Import request (at most loader.worker.limit pending), waits for it, and records
    /// it in a journal next to the dump, per target (database, collection id, partition)
    /// and by the segment rows it covers: running `load` again imports nothing twice, also after
    /// maxGroupMiB changed; loading into another collection, database or server imports every
    /// row there. Then runs `verify` unless --no-verify.
    #[command(after_help = help_tables::keys_and_exit_codes())]
    Load(LoadArgs),
    /// Compare Milvus 2.x with the 1.x source: exact row counts per collection and partition
    /// (count(*)), the stored entities after a flush (row_count statistics, which see a key
    /// imported twice), the 1.x meta's row counts, vectors of sampled rows of every file group
    /// byte for byte, deleted rows absent.
    ///
    /// With --full, every primary key instead: each partition's keys and vectors reconciled
    /// against the dump, both sides walked in key ranges (memory stays bounded at any size).
    /// Lists keys missing in Milvus, stored more than once, not in the dump (extra), and keys
    /// whose vector differs (every vector compared); exit 1 on any finding. The JSON report
    /// (--report) holds each finding's count and first --max-listed ids.
    #[command(after_help = help_tables::keys_and_exit_codes())]
    Verify(VerifyArgs),
    /// Fix what `verify --full` finds, from the dump, then run `verify --full`.
    ///
    /// Missing, duplicated and differing keys are written again with Upsert into their
    /// partition (one copy remains; a key the source itself repeats is deleted and inserted
    /// with every copy). Keys that are not in the dump are deleted only with --delete-extra.
    /// Keys found right are never touched. Exit 0 only when the final `verify --full` is clean.
    #[command(after_help = help_tables::keys_and_exit_codes())]
    Repair(RepairArgs),
    /// dump, load and verify in one command (export too: meta.json is written next to the dump).
    #[command(after_help = help_tables::keys_and_exit_codes())]
    Migrate(MigrateArgs),
    /// Show what a migration would do, and check that it can: writes nothing.
    ///
    /// Prints the inventory (collections, partitions, segments, rows, bytes), the 2.x mapping
    /// (schema, partition names, index and metric), every warning, and preflight checks: the
    /// source files present with the sizes the meta records, the stores reachable, the target
    /// Milvus reachable and its version, existing collections matching. Exit 0 only when
    /// nothing blocks the migration.
    #[command(after_help = help_tables::keys_and_exit_codes())]
    Plan(PlanArgs),
    /// Print the version, the component API it implements and the component's SHA-256.
    Version,
    /// Write the migration engine as a WebAssembly component, for embedding in another host.
    ///
    /// The bytes are exactly the component this binary runs (`version` prints their SHA-256).
    /// With --wit, also the WIT package (`milvus:migration`) it implements; wit/README.md in the
    /// repository is the host contract.
    Component(ComponentArgs),
    /// Run the multi-tenant migration service (HTTP API, job store, sandboxed units).
    ///
    /// serve.yaml (the operator's) names where to listen (`listen`), where the job store lives
    /// (`dataDir`) and each tenant: the SHA-256 of its tokens, its named stores, meta databases
    /// and Milvus connections, and its quotas. Jobs are submitted with `POST /v1/jobs` and a
    /// bearer token; they name those grants, never URLs, endpoints or secrets. GET /openapi.json
    /// describes the API.
    Serve(ServeArgs),
    /// Submit a job to a running `serve` and follow it.
    ///
    /// Turns migration.yaml into a job request against the server's named connections: the
    /// file's paths become paths inside the named store (relative as written, or under
    /// --source-root / --staging-root), target.milvus2x becomes --milvus NAME, a MySQL meta
    /// --mysql NAME, migration.sandbox the request's limits; the request carries no endpoint,
    /// URL or secret. Then it follows the job's events with the progress display, saves the
    /// job's run report (--report), and exits 0 only when the job succeeded.
    Submit(SubmitArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct SubmitArgs {
    /// The service's address, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// The environment variable holding the bearer token (never a flag: flags show in `ps`).
    #[arg(long, value_name = "VAR")]
    pub token_env: String,
    /// migration.yaml (default: ./migration.yaml, then ./configs/migration.yaml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What the job does: migrate, dump, load, verify, verify-full, repair, plan or export.
    #[arg(long, default_value = "migrate", value_parser = ["migrate", "dump", "load", "verify", "verify-full", "repair", "plan", "export"])]
    pub kind: String,
    /// With --kind repair: also delete keys the dump's partition does not hold.
    #[arg(long)]
    pub delete_extra: bool,
    /// The granted store holding the 1.x files (meta and tables).
    #[arg(long, value_name = "NAME")]
    pub store: String,
    /// The granted store for the dump (default: --store).
    #[arg(long, value_name = "NAME")]
    pub staging_store: Option<String>,
    /// The local directory --store serves: absolute source paths in the file are made relative to it.
    #[arg(long, value_name = "DIR")]
    pub source_root: Option<PathBuf>,
    /// The local directory the staging store serves (for an absolute target.local.outputDir).
    #[arg(long, value_name = "DIR")]
    pub staging_root: Option<PathBuf>,
    /// The granted Milvus connection (migrate, load, verify).
    #[arg(long, value_name = "NAME")]
    pub milvus: Option<String>,
    /// The granted MySQL meta database (meta.mode: mysql).
    #[arg(long, value_name = "NAME")]
    pub mysql: Option<String>,
    /// Sent as Idempotency-Key: submitting again with the same key returns the same job.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// Print the job id and return instead of following the job.
    #[arg(long)]
    pub no_follow: bool,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The service's configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct ComponentArgs {
    /// Where to write the component (.wasm).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Also write the WIT package (its .wit files) into this directory.
    #[arg(long, value_name = "DIR")]
    pub wit: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("meta").required(true).args(["mysql", "sqlite"])))]
pub struct ExportArgs {
    /// MySQL meta: a Go driver DSN `user:password@tcp(host:port)/db?...` or `mysql://user:password@host:port/db`.
    #[arg(short = 'm', long = "mysql", value_name = "DSN")]
    pub mysql: Option<String>,
    /// SQLite meta: the 1.x `db/meta.sqlite` (opened read-only).
    #[arg(short = 's', long = "sqlite", value_name = "FILE")]
    pub sqlite: Option<PathBuf>,
    /// Directory for meta.json (created when missing).
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub output: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Skip the verification after the import.
    #[arg(long)]
    pub no_verify: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

/// How a run that writes into a dump or imports from it shares it with other runs.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// When another run holds the dump (its lease in <outputDir>/_lease/), wait for it instead
    /// of stopping with exit 1.
    #[arg(long)]
    pub wait: bool,
    /// Divide the plan among N worker processes (on one machine or many, e.g. a Kubernetes
    /// Indexed Job): this one does the units whose index modulo N is --worker, and the one
    /// worker that sees every unit done writes the manifest, or builds the indexes, loads and
    /// verifies. Progress is kept in the staging store (<outputDir>/_work/).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Which worker this is, 0..N-1 (default: $JOB_COMPLETION_INDEX, as Kubernetes sets it).
    #[arg(long, value_name = "I", env = "JOB_COMPLETION_INDEX")]
    pub worker: Option<usize>,
}

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Print the plan as one JSON document.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct CommonArgs {
    /// migration.yaml; default ./migration.yaml, then ./configs/migration.yaml.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Only these collections (comma-separated).
    #[arg(long = "col", value_name = "NAMES", value_delimiter = ',')]
    pub collections: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Reconcile every primary key and vector against the dump, not counts and samples.
    #[arg(long)]
    pub full: bool,
    /// With --full: ids listed per finding in the report (counts are always complete).
    #[arg(long, value_name = "N", default_value_t = crate::job::reconcile::MAX_LISTED)]
    pub max_listed: u32,
}

#[derive(Debug, clap::Args)]
pub struct RepairArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Also delete keys stored in a partition that the dump's partition does not hold.
    #[arg(long)]
    pub delete_extra: bool,
    /// Ids listed per finding in the report.
    #[arg(long, value_name = "N", default_value_t = crate::job::reconcile::MAX_LISTED)]
    pub max_listed: u32,
}

#[derive(Debug, clap::Args)]
pub struct DumpArgs {
    /// migration.yaml; default ./migration.yaml, then ./configs/migration.yaml.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Only these collections (comma-separated).
    #[arg(long = "col", value_name = "NAMES", value_delimiter = ',')]
    pub collections: Vec<String>,
    #[command(flatten)]
    pub run: RunArgs,
}
