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
    /// Uploads files to an S3 bucket with object_store multipart (16 MiB parts), as the dump's
    /// remote target does: the benchmark's baseline for a remote target.
    Upload {
        /// http://host:port of the S3 server
        #[arg(long)]
        endpoint: String,
        #[arg(long)]
        bucket: String,
        #[arg(long, default_value = "minioadmin")]
        ak: String,
        #[arg(long, default_value = "minioadmin")]
        sk: String,
        /// Key prefix
        #[arg(long)]
        prefix: String,
        files: Vec<PathBuf>,
    },
    /// One large float segment for the benchmark (or the same rows in many small ones).
    Bench {
        out: PathBuf,
        #[arg(long, default_value_t = 1.0)]
        gib: f64,
        /// Rows in all (instead of --gib).
        #[arg(long)]
        rows: Option<u64>,
        /// Segments the rows are spread over (a fragmented installation).
        #[arg(long, default_value_t = 1)]
        segments: u64,
        #[arg(long, default_value_t = 768)]
        dim: u32,
        /// Percent of rows deleted (spread over each segment, unsorted).
        #[arg(long, default_value_t = 1.0)]
        deleted_pct: f64,
    },
}

async fn upload(endpoint: &str, bucket: &str, ak: &str, sk: &str, prefix: &str, files: &[PathBuf]) -> anyhow::Result<()> {
    use object_store::{ObjectStore, WriteMultipart};
    use std::io::Read;
    let store = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(endpoint)
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_region("us-east-1")
        .with_bucket_name(bucket)
        .with_access_key_id(ak)
        .with_secret_access_key(sk)
        .build()?;
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy();
        let path = object_store::path::Path::from(format!("{prefix}/{name}"));
        let mut w = WriteMultipart::new_with_chunk_size(store.put_multipart(&path).await?, 8 << 20);
        let mut file = std::fs::File::open(f)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            w.wait_for_capacity(2).await?;
            w.write(&buf[..n]);
        }
        w.finish().await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (spec, out) = match Args::parse().what {
        What::Upload { endpoint, bucket, ak, sk, prefix, files } => return upload(&endpoint, &bucket, &ak, &sk, &prefix, &files).await,
        What::Sample { out } => (sample(), out),
        What::Spec { spec, out } => (serde_json::from_slice(&std::fs::read(&spec)?)?, out),
        What::Bench { out, gib, rows, segments, dim, deleted_pct } => {
            let total = rows.unwrap_or((gib * (1u64 << 30) as f64 / (dim as f64 * 4.0)) as u64);
            let segments = segments.max(1);
            let rows = total / segments;
            let n_deleted = (rows as f64 * deleted_pct / 100.0) as u64;
            // Every k-th row, written in descending order (unsorted, as 1.x batches leave them).
            let step = if n_deleted == 0 { rows } else { rows / n_deleted };
            let deleted: Vec<i32> = (0..n_deleted).rev().map(|i| (i * step + step / 2) as i32).collect();
            let stride = rows.div_ceil(1_000_000).max(1) as i64 * 1_000_000;
            let c = CollectionSpec {
                name: "bench".into(),
                dim,
                metric: 1,
                engine_type: 1,
                index_params: "{}".into(),
                dropped: false,
                // Ids k*stride + row: segments never share an id, also when one holds over 1M rows.
                segments: (0..segments)
                    .map(|k| SegmentSpec { rows, deleted: deleted.clone(), first_id: Some(k as i64 * stride), ..Default::default() })
                    .collect(),
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
