//! Writes a real Milvus 1.x installation (meta.sqlite + tables/) for demos, tests and benches.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use mm_tests::samples::sample;
use mm_tests::{generate, CollectionSpec, SegmentSpec, Spec};

#[derive(Parser)]
#[command(about = "Write a real Milvus 1.x installation (db/meta.sqlite and db/tables/) under OUT")]
struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// A small installation with float and binary collections, partitions, deletions, an index,
    /// a dropped collection and stale files.
    Sample { out: PathBuf },
    /// From a JSON description (see tests/src/spec.rs).
    Spec { spec: PathBuf, out: PathBuf },
    /// One large float segment for the benchmark.
    Bench {
        out: PathBuf,
        #[arg(long, default_value_t = 1.0)]
        gib: f64,
        #[arg(long, default_value_t = 768)]
        dim: u32,
        /// Percent of rows deleted (spread over the segment, unsorted).
        #[arg(long, default_value_t = 1.0)]
        deleted_pct: f64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (spec, out) = match Args::parse().what {
        What::Sample { out } => (sample(), out),
        What::Spec { spec, out } => (serde_json::from_slice(&std::fs::read(&spec)?)?, out),
        What::Bench { out, gib, dim, deleted_pct } => {
            let rows = (gib * (1u64 << 30) as f64 / (dim as f64 * 4.0)) as u64;
            let n_deleted = (rows as f64 * deleted_pct / 100.0) as u64;
            // Every k-th row, written in descending order (unsorted, as 1.x batches leave them).
            let step = if n_deleted == 0 { rows } else { rows / n_deleted };
            let deleted: Vec<i32> = (0..n_deleted).rev().map(|i| (i * step + step / 2) as i32).collect();
            let c = CollectionSpec {
                name: "bench".into(),
                dim,
                metric: 1,
                engine_type: 1,
                index_params: "{}".into(),
                dropped: false,
                segments: vec![SegmentSpec { rows, deleted, ..Default::default() }],
                partitions: vec![],
            };
            (Spec { seed: 1, collections: vec![c] }, out)
        }
    };
    if out.join("db").exists() {
        anyhow::bail!("{} already holds an installation (db/); choose an empty directory", out.display());
    }
    let g = generate(&spec, &out, false).await?;
    println!("meta:   {}", g.meta_sqlite.display());
    println!("tables: {}", g.tables.display());
    Ok(())
}
