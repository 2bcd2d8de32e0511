//! Writes an installation: meta.sqlite (the 1.1 DDL, column for column) and segment files.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

use crate::expect::{Expected, ExpectedCollection, ExpectedPartition, ExpectedSegment};
use crate::spec::{CollectionSpec, SegmentSpec, Spec};

/// The 1.1 SQLite DDL (spec: milvus1x-format.md §2).
pub const DDL: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS Environment (global_lsn INTEGER DEFAULT (0) NOT NULL)",
    "CREATE TABLE IF NOT EXISTS Tables (id INTEGER PRIMARY KEY NOT NULL, table_id TEXT UNIQUE NOT NULL, \
     state INTEGER NOT NULL, dimension INTEGER NOT NULL, created_on INTEGER NOT NULL, flag INTEGER DEFAULT (0) NOT NULL, \
     index_file_size INTEGER NOT NULL, engine_type INTEGER NOT NULL, index_params TEXT NOT NULL, metric_type INTEGER NOT NULL, \
     owner_table TEXT DEFAULT ('') NOT NULL, partition_tag TEXT DEFAULT ('') NOT NULL, version TEXT DEFAULT ('1.1.1') NOT NULL, \
     flush_lsn INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS TableFiles (id INTEGER PRIMARY KEY NOT NULL, table_id TEXT NOT NULL, \
     segment_id TEXT DEFAULT ('') NOT NULL, engine_type INTEGER NOT NULL, file_id TEXT NOT NULL, file_type INTEGER NOT NULL, \
     file_size INTEGER DEFAULT (0) NOT NULL, row_count INTEGER DEFAULT (0) NOT NULL, updated_time INTEGER NOT NULL, \
     created_on INTEGER NOT NULL, date INTEGER NOT NULL, flush_lsn INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS Fields (collection_id TEXT NOT NULL, field_name TEXT NOT NULL, field_type INTEGER NOT NULL, \
     field_params TEXT NOT NULL)",
];

const FILE_RAW: i64 = 1;
const FILE_TO_INDEX: i64 = 2;
const FILE_INDEX: i64 = 3;
const FILE_TO_DELETE: i64 = 4;
const FILE_NEW: i64 = 0;
const FILE_BACKUP: i64 = 7;
/// Rows generated per write while streaming a segment.
const GEN_CHUNK_ROWS: u64 = 4096;

pub struct Generated {
    /// `<root>/db`
    pub db: PathBuf,
    pub meta_sqlite: PathBuf,
    pub tables: PathBuf,
    pub expected: Expected,
    pub meta_rows: MetaRows,
}

/// splitmix64: deterministic, fast pseudo-random bytes for vector contents.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Row `row` of a segment, as the 1.x file stores it.
pub fn row_bytes(c: &CollectionSpec, seed: u64, segment_no: u64, row: u64, out: &mut Vec<u8>) {
    let base = mix(seed ^ mix(segment_no ^ mix(row)));
    if c.binary() {
        for j in 0..c.row_bytes() as u64 {
            out.push(mix(base ^ j) as u8);
        }
    } else {
        for j in 0..c.dim as u64 {
            let v = ((mix(base ^ j) % 20001) as f32 - 10000.0) / 97.0;
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

fn counted_file(path: &Path, payload_len: u64) -> anyhow::Result<BufWriter<std::fs::File>> {
    let f = std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    w.write_all(&payload_len.to_le_bytes())?;
    Ok(w)
}

/// Writes one segment's directory; returns its live rows when `keep` (tests), nothing for benches.
fn write_segment(
    dir: &Path,
    seg_id: &str,
    c: &CollectionSpec,
    s: &SegmentSpec,
    seed: u64,
    segment_no: u64,
    first_id: i64,
    keep: bool,
) -> anyhow::Result<ExpectedSegment> {
    std::fs::create_dir_all(dir)?;
    let rb = c.row_bytes() as u64;
    let mut rv = counted_file(&dir.join(format!("{seg_id}.rv")), s.rows * rb)?;
    let mut uid = counted_file(&dir.join(format!("{seg_id}.uid")), s.rows * 8)?;
    let deleted: std::collections::HashSet<u64> = s.deleted.iter().map(|d| *d as u64).collect();
    let mut exp = ExpectedSegment { segment_id: seg_id.to_string(), ids: vec![], vectors: vec![], rows_in: s.rows };
    let mut buf = Vec::with_capacity((GEN_CHUNK_ROWS * rb) as usize);
    let mut row = 0;
    while row < s.rows {
        let n = GEN_CHUNK_ROWS.min(s.rows - row);
        buf.clear();
        for r in row..row + n {
            let start = buf.len();
            row_bytes(c, seed, segment_no, r, &mut buf);
            let id = first_id + r as i64;
            uid.write_all(&id.to_le_bytes())?;
            if keep && !deleted.contains(&r) {
                exp.ids.push(id);
                exp.vectors.extend_from_slice(&buf[start..]);
            }
        }
        rv.write_all(&buf)?;
        row += n;
    }
    rv.flush()?;
    uid.flush()?;
    let offsets: Vec<u8> = s.deleted.iter().flat_map(|d| d.to_le_bytes()).collect();
    let mut dd = Vec::new();
    if !s.header_less_deletes {
        dd.extend_from_slice(&(offsets.len() as u64).to_le_bytes());
    }
    dd.extend_from_slice(&offsets);
    // Stale offsets after the counted ones (1.1.1+ rewrites the file without truncating it):
    // not deletions.
    dd.extend(s.stale_deletes.iter().flat_map(|d| d.to_le_bytes()));
    if !s.no_deleted_docs {
        std::fs::write(dir.join("deleted_docs"), dd)?;
    }
    // A 1.1-style bloom filter header; readers must ignore it.
    let mut bloom = 0x305F_6D6F_6F6C_62i64.to_le_bytes().to_vec();
    bloom.extend_from_slice(&(s.rows as u32).to_le_bytes());
    bloom.extend_from_slice(&0.01f64.to_le_bytes());
    bloom.extend_from_slice(&0u64.to_le_bytes());
    std::fs::write(dir.join("bloom_filter"), bloom)?;
    Ok(exp)
}

/// The meta rows of a generated installation, to write into SQLite or MySQL.
#[derive(Debug, Clone, Default)]
pub struct MetaRows {
    /// table_id, state, dimension, flag, engine_type, index_params, metric_type, owner_table, partition_tag
    tables: Vec<(String, i64, u32, i64, i64, String, i64, String, String)>,
    /// table_id, segment_id, engine_type, file_id, file_type, file_size, row_count, created_on
    files: Vec<(String, String, i64, String, i64, i64, i64, i64)>,
}

/// The 1.1 MySQL DDL (spec: milvus1x-format.md §2: SMALLINT dimension, VARCHAR ids).
pub const MYSQL_DDL: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS Environment (global_lsn BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS Tables (id BIGINT PRIMARY KEY AUTO_INCREMENT, table_id VARCHAR(255) UNIQUE NOT NULL, \
     state INT NOT NULL, dimension SMALLINT NOT NULL, created_on BIGINT NOT NULL, flag BIGINT DEFAULT 0 NOT NULL, \
     index_file_size BIGINT DEFAULT 1024 NOT NULL, engine_type INT DEFAULT 1 NOT NULL, index_params VARCHAR(512) NOT NULL, \
     metric_type INT DEFAULT 1 NOT NULL, owner_table VARCHAR(255) NOT NULL, partition_tag VARCHAR(255) NOT NULL, \
     version VARCHAR(64) DEFAULT '1.1.1', flush_lsn BIGINT DEFAULT 0 NOT NULL)",
    "CREATE TABLE IF NOT EXISTS TableFiles (id BIGINT PRIMARY KEY AUTO_INCREMENT, table_id VARCHAR(255) NOT NULL, \
     segment_id VARCHAR(255) NOT NULL, engine_type INT DEFAULT 1 NOT NULL, file_id VARCHAR(255) NOT NULL, \
     file_type INT DEFAULT 0 NOT NULL, file_size BIGINT DEFAULT 0 NOT NULL, row_count BIGINT DEFAULT 0 NOT NULL, \
     updated_time BIGINT NOT NULL, created_on BIGINT NOT NULL, date INT DEFAULT -1 NOT NULL, flush_lsn BIGINT DEFAULT 0 NOT NULL)",
    "CREATE TABLE IF NOT EXISTS Fields (collection_id VARCHAR(255) NOT NULL, field_name VARCHAR(255) NOT NULL, \
     field_type INT DEFAULT 0 NOT NULL, field_params VARCHAR(255) NOT NULL)",
];

const INSERT_TABLE: &str = "INSERT INTO Tables (table_id, state, dimension, created_on, flag, index_file_size, engine_type, \
     index_params, metric_type, owner_table, partition_tag, version, flush_lsn) VALUES (?, ?, ?, ?, ?, 1073741824, ?, ?, ?, ?, ?, '1.1.1', 42)";
const INSERT_FILE: &str = "INSERT INTO TableFiles (table_id, segment_id, engine_type, file_id, file_type, file_size, row_count, \
     updated_time, created_on, date, flush_lsn) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1230209, 42)";

/// Writes the meta rows into the MySQL database `url` names (the tables are created; the
/// database must exist and be empty).
pub async fn write_mysql(rows: &MetaRows, url: &str) -> anyhow::Result<()> {
    let pool = sqlx::mysql::MySqlPoolOptions::new().max_connections(1).connect(url).await?;
    for ddl in MYSQL_DDL {
        sqlx::query(ddl).execute(&pool).await?;
    }
    sqlx::query("INSERT INTO Environment VALUES (42)").execute(&pool).await?;
    for (i, t) in rows.tables.iter().enumerate() {
        sqlx::query(INSERT_TABLE)
            .bind(&t.0).bind(t.1).bind(t.2 as i64).bind(1_612_530_150_221_496i64 + i as i64).bind(t.3).bind(t.4)
            .bind(&t.5).bind(t.6).bind(&t.7).bind(&t.8)
            .execute(&pool)
            .await?;
    }
    for f in &rows.files {
        sqlx::query(INSERT_FILE)
            .bind(&f.0).bind(&f.1).bind(f.2).bind(&f.3).bind(f.4).bind(f.5).bind(f.6).bind(f.7).bind(f.7)
            .execute(&pool)
            .await?;
    }
    pool.close().await;
    Ok(())
}

/// Writes the installation under `root` (which must be empty or missing).
pub async fn generate(spec: &Spec, root: &Path, keep_expected: bool) -> anyhow::Result<Generated> {
    let db = root.join("db");
    let tables_dir = db.join("tables");
    std::fs::create_dir_all(&tables_dir)?;
    let mut rows = MetaRows::default();
    let mut expected = Expected::default();
    let mut segment_no = 0u64;
    let mut clock = 1_612_530_150_221_000_000i64; // µs*1000 style ids, increasing
    let mut next_id = || {
        clock += 1000;
        clock
    };

    for c in &spec.collections {
        let flag = 2; // user-supplied ids
        rows.tables.push((c.name.clone(), c.dropped as i64, c.dim, flag, c.engine_type, c.index_params.clone(), c.metric, String::new(), String::new()));
        let mut ec = ExpectedCollection { name: c.name.clone(), binary: c.binary(), dim: c.dim, partitions: vec![] };
        let mut parts: Vec<(String, String, bool, &Vec<SegmentSpec>)> = vec![(String::new(), c.name.clone(), c.dropped, &c.segments)];
        for p in &c.partitions {
            let table_id = next_id().to_string();
            rows.tables.push((
                table_id.clone(),
                (p.dropped || c.dropped) as i64,
                c.dim,
                0,
                c.engine_type,
                c.index_params.clone(),
                c.metric,
                c.name.clone(),
                p.tag.clone(),
            ));
            parts.push((p.tag.clone(), table_id, p.dropped || c.dropped, &p.segments));
        }
        for (tag, table_id, dropped, segs) in parts {
            let mut ep = ExpectedPartition { tag: tag.clone(), table_id: table_id.clone(), segments: vec![] };
            for s in segs {
                segment_no += 1;
                let seg_id = next_id().to_string();
                let first_id = s.first_id.unwrap_or(segment_no as i64 * 1_000_000);
                let dir = tables_dir.join(&table_id).join(&seg_id);
                let exp = write_segment(&dir, &seg_id, c, s, spec.seed, segment_no, first_id, keep_expected)?;
                let live = s.rows - s.deleted.iter().collect::<std::collections::HashSet<_>>().len() as u64;
                let size = (s.rows * (c.row_bytes() as u64 + 8)) as i64;
                let raw_type = if dropped || s.stale {
                    FILE_TO_DELETE
                } else if s.indexed {
                    FILE_BACKUP
                } else if s.to_index {
                    FILE_TO_INDEX
                } else {
                    FILE_RAW
                };
                rows.files.push((table_id.clone(), seg_id.clone(), c.engine_type, seg_id.clone(), raw_type, size, live as i64, segment_no as i64));
                if s.indexed {
                    let index_file = next_id().to_string();
                    std::fs::write(dir.join(&index_file), b"index bytes are never read")?;
                    let t = if dropped || s.stale { FILE_TO_DELETE } else { FILE_INDEX };
                    rows.files.push((table_id.clone(), seg_id.clone(), c.engine_type, index_file, t, 26, live as i64, segment_no as i64));
                }
                if raw_type != FILE_TO_DELETE {
                    ep.segments.push(exp);
                }
            }
            // A shadow row (NEW) with an empty directory, as a crash leaves behind.
            let shadow = next_id().to_string();
            std::fs::create_dir_all(tables_dir.join(&table_id).join(&shadow))?;
            rows.files.push((table_id.clone(), shadow.clone(), c.engine_type, shadow, FILE_NEW, 0, 0, 0));
            if !dropped {
                ec.partitions.push(ep);
            }
        }
        if !c.dropped {
            expected.collections.push(ec);
        }
    }

    let meta_sqlite = db.join("meta.sqlite");
    let opts = SqliteConnectOptions::new().filename(&meta_sqlite).create_if_missing(true);
    let pool = SqlitePool::connect_with(opts).await?;
    for ddl in DDL {
        sqlx::query(ddl).execute(&pool).await?;
    }
    sqlx::query("INSERT INTO Environment VALUES (42)").execute(&pool).await?;
    for (i, t) in rows.tables.iter().enumerate() {
        sqlx::query(INSERT_TABLE)
        .bind(&t.0)
        .bind(t.1)
        .bind(t.2 as i64)
        .bind(1_612_530_150_221_496i64 + i as i64)
        .bind(t.3)
        .bind(t.4)
        .bind(&t.5)
        .bind(t.6)
        .bind(&t.7)
        .bind(&t.8)
        .execute(&pool)
        .await?;
    }
    for f in &rows.files {
        sqlx::query(INSERT_FILE)
        .bind(&f.0)
        .bind(&f.1)
        .bind(f.2)
        .bind(&f.3)
        .bind(f.4)
        .bind(f.5)
        .bind(f.6)
        .bind(f.7)
        .bind(f.7)
        .execute(&pool)
        .await?;
    }
    pool.close().await;
    Ok(Generated { db, meta_sqlite, tables: tables_dir, expected, meta_rows: rows })
}
