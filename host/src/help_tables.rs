//! The key and exit-code tables of `--help`, laid out for the width clap wraps help at.
//!
//! clap wraps every line of `after_help` longer than the terminal on its own, continuing at the
//! line's indentation, which tears a two-column table apart (a key's description ends up under
//! the key column). So the tables are rendered here at the width clap uses, each line already
//! within it, and clap has nothing left to wrap.

/// One row of a help table: a key and what it means. `\n` in the text starts a new line in the
/// text column (alternatives, one per line).
struct Row(&'static str, &'static str);

/// A heading line or a paragraph of free text, wrapped at the full width.
enum Item {
    Heading(&'static str),
    Rows(&'static [Row]),
    Text(&'static str),
}

const GUIDE_KEYS: &[Row] = &[
    Row("dumper.worker.workMode", "milvus1x (the only source this tool reads)"),
    Row("dumper.worker.limit", "segments converted at once (default 2)"),
    Row("dumper.worker.reader.bufferSize", "KB read from the 1.x files per call (default 1024)"),
    Row("dumper.worker.writer.bufferSize", "KB per write of the npy files (default 1024)"),
    Row("loader.worker.limit", "imports at once (load phase)"),
    Row(
        "meta.mode",
        "local | mock: a meta.json (meta.localFile / meta.mockFile)\n\
         sqlite: the 1.x meta.sqlite (meta.sqliteFile)\n\
         mysql: meta.mysqlUrl, a Go DSN user:pw@tcp(host:port)/db or mysql://\n\
         remote: meta.remoteMetaFile, a meta.json key in the source bucket",
    ),
    Row(
        "source.mode",
        "local: source.local.tablesDir = the 1.x `tables` directory\n\
         remote: source.remote.{cloud, endpoint, region, bucket, ak, sk, useIAM, useSSL, checkBucket, \
         tablesDir} (tablesDir = key prefix)",
    ),
    Row(
        "target.mode",
        "local: target.local.outputDir = where npy files go\n\
         remote: target.remote.{outputDir, cloud, endpoint, region, bucket, ak, sk, useIAM, useSSL, \
         checkBucket}: the bucket Milvus itself uses",
    ),
    Row("*.remote.cloud", "aws (also MinIO and any S3-compatible endpoint), gcp, azure"),
    Row(
        "*.remote.endpoint",
        "aws: host:port of an S3-compatible server\n\
         azure: the account URL (default https://<ak>.blob.core.windows.net; Azurite: \
         http://host:port/<account>)\n\
         gcp with useIAM: the GCS API base URL (a private endpoint or an emulator); needs a \
         service-account key in GOOGLE_SERVICE_ACCOUNT[_KEY] or GOOGLE_APPLICATION_CREDENTIALS, or \
         GOOGLE_SKIP_SIGNATURE=true\n\
         Without a scheme, useSSL picks https or http",
    ),
    Row(
        "*.remote.ak / .sk",
        "aws: access key / secret key; azure: account name / account key; gcp: HMAC keys (S3-style \
         API). Also from $MILVUS_MIGRATION_{SOURCE,TARGET}_{AK,SK}; never printed",
    ),
    Row("*.remote.checkBucket", "true: create the bucket when missing (S3); false: fail when missing"),
    Row("target.milvus2x.endpoint", "host:port of the Milvus 2.x server (load, verify, migrate)"),
    Row(
        "target.milvus2x.username, .password",
        "credentials (password also from $MILVUS_MIGRATION_MILVUS_PASSWORD)",
    ),
    Row("target.milvus2x.database", "database to use (created when missing; default `default`)"),
    Row("target.milvus2x.grpc.maxCallRecvMsgSize, .maxCallSendMsgSize", "gRPC message limits in bytes"),
    Row("log.level", "error | warn | info | debug (default info)"),
];

const OWN_KEYS: &[Row] = &[
    Row("migration.idField, .vectorField", "field (npy file) names, default id / data"),
    Row("migration.sandbox.memoryMiB", "memory limit per unit of work (default 256)"),
    Row("migration.sandbox.fuel", "CPU budget per unit, wasm instructions (default 2e11)"),
    Row("migration.milvus.tls, .caCert", "TLS to Milvus, with an optional CA certificate (PEM)"),
    Row("migration.milvus.importTimeoutSeconds", "how long to wait for one import (default 3600)"),
    Row(
        "migration.index",
        "keep (default: the 1.x index type, parameters and metric, or the closest 2.x has, with a \
         warning) | autoindex | none",
    ),
    Row("migration.load", "load collections into memory after import (default true)"),
    Row(
        "migration.leaseSeconds",
        "a run holds a lease on the dump (<outputDir>/_lease/) while it writes or imports; another \
         run stops (or waits with --wait); a lease with no heartbeat for this long (default 60), or \
         whose process is gone on this host, is taken over",
    ),
    Row(
        "migration.maxGroupMiB",
        "largest npy payload per import (default 4096); larger segments are split into part-NNNN groups",
    ),
    Row(
        "migration.format",
        "numpy (default) | parquet: each file group as <vectorField>.npy + <idField>.npy, or as one \
         rows.parquet (int64 ids, list<float32> or list<uint8> vectors, ~32 MiB row groups; Milvus \
         2.3.4+ imports it; insert, verify --full and repair read it too)",
    ),
    Row(
        "migration.packSegments",
        "true (default) | false: segments under half a group are packed, per partition, into shared \
         groups (pack-<first>-<last>), so the number of imports follows the bytes, not the segment count",
    ),
    Row("migration.collections", "only these collections (like --col, which wins)"),
    Row("migration.rename", "map of 1.x name -> 2.x name"),
    Row("migration.shards", "shards of created collections (default: server's)"),
    Row("migration.consistencyLevel", "Strong | Session | Bounded (default) | Eventually"),
    Row("migration.description", "description of created collections"),
    Row("migration.onExists", "fail | append (default) | skip, for existing collections"),
    Row(
        "migration.cleanup",
        "keep (default) | delete: remove the staged npy files after a verified load (manifest and \
         journal stay)",
    ),
    Row(
        "migration.badData",
        "fail (default) | skip | reject: rows Milvus 2.x refuses (NaN/inf floats), ids without vectors \
         or the reverse, deletions of rows that do not exist. fail stops with the file, offset and \
         reason; skip drops and counts them; reject also writes them with the reason to \
         <outputDir>/_rejects/<segment dir>.jsonl",
    ),
    Row(
        "migration.duplicateIds",
        "keep-all (default) | keep-last: primary keys repeated across the 1.x rows are always \
         reported; keep-last keeps only the newest copy (highest segment, row)",
    ),
    Row(
        "migration.loadMode",
        "import (default): bulk import; Milvus reads the dump from its own storage (its bucket, or \
         this machine's disk)\n\
         insert: rows go over gRPC only, in batches, each recorded before and after it is sent; a \
         batch whose reply was lost is re-sent with Upsert. Use it when Milvus cannot read the dump \
         (managed or remote)",
    ),
    Row("migration.insertBatchMiB", "bytes per Insert request (default 16, 1..48)"),
];

const CONFIG_KEYS: &[Item] = &[
    Item::Heading("migration.yaml keys (the Go tool's, same meaning):"),
    Item::Rows(GUIDE_KEYS),
    Item::Heading("Keys of our own (section `migration`):"),
    Item::Rows(OWN_KEYS),
    Item::Text(
        "With loadMode import, a local target (target.mode local) is imported by absolute path, so \
         Milvus must use local storage on this machine (common.storageType: local). Unknown keys are \
         errors, reported with their line.",
    ),
];

const EXIT_CODES: &[Item] = &[
    Item::Heading("Exit codes:"),
    Item::Rows(&[
        Row("0", "success"),
        Row("1", "the migration failed (bad or missing source data, a failed unit of work, a service error)"),
        Row("2", "usage or configuration error (nothing was read or written)"),
    ]),
    Item::Text(
        "dump, load, verify and migrate print a summary and write a JSON run report (--report), also \
         when they fail; an interrupted dump or load can be run again: nothing is imported twice.",
    ),
];

/// Widest layout used (cli.rs gives clap the same max_term_width): wider lines only read worse.
const MAX_WIDTH: usize = 100;
/// Below this width, descriptions go under their key instead of beside it.
const TWO_COLUMNS_FROM: usize = 64;

/// The width clap wraps help at (clap_builder's `term_w` with `wrap_help`: the terminal on
/// stdout, else $COLUMNS, else 100), capped at [`MAX_WIDTH`].
pub fn help_width() -> usize {
    let terminal = terminal_size::terminal_size().map(|(w, _)| usize::from(w.0));
    let columns = || std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok());
    terminal.or_else(columns).unwrap_or(MAX_WIDTH).min(MAX_WIDTH)
}

/// `after_help` of the root command and `export`: the exit codes.
pub fn exit_codes() -> String {
    render(EXIT_CODES, help_width())
}

/// `after_help` of the commands that read migration.yaml: its keys, then the exit codes.
pub fn keys_and_exit_codes() -> String {
    let w = help_width();
    format!("{}\n\n{}", render(CONFIG_KEYS, w), render(EXIT_CODES, w))
}

/// Lays `items` out within `width` columns (never wider, except a single word longer than a line).
fn render(items: &[Item], width: usize) -> String {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        match item {
            Item::Heading(h) => out.extend(wrap(h, width, "", "")),
            Item::Text(t) => out.extend(wrap(t, width, "", "")),
            Item::Rows(rows) => {
                let key_width = rows.iter().map(|r| r.0.len()).filter(|&n| n <= 32).max().unwrap_or(0);
                for Row(key, text) in rows.iter() {
                    out.extend(row(key, text, key_width, width));
                }
            }
        }
    }
    out.join("\n")
}

/// One row: `  key  text` with the text in its own column, or, when the key is too long for the
/// column or the width too small for two columns, the key alone and the text indented below.
fn row(key: &str, text: &str, key_width: usize, width: usize) -> Vec<String> {
    let two_columns = width >= TWO_COLUMNS_FROM;
    let indent = if two_columns { " ".repeat(2 + key_width + 2) } else { " ".repeat(6) };
    let mut lines = Vec::new();
    let mut first = if two_columns && key.len() <= key_width {
        Some(format!("  {key:key_width$}  "))
    } else {
        // A key wider than the screen continues on the next line, deeper than any key.
        lines.extend(wrap(key, width, "  ", "    "));
        None
    };
    for part in text.split('\n') {
        let head = first.take().unwrap_or_else(|| indent.clone());
        lines.extend(wrap(part, width, &head, &indent));
    }
    lines
}

fn wrap(text: &str, width: usize, first: &str, rest: &str) -> Vec<String> {
    let options = textwrap::Options::new(width).initial_indent(first).subsequent_indent(rest).break_words(false);
    textwrap::wrap(text, options).into_iter().map(|l| l.trim_end().to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line fits, every key starts a line at the key column, and every other line of a row
    /// continues in the text column: the table survives clap's wrapping at that width.
    fn assert_intact(items: &[Item], width: usize) {
        let text = render(items, width);
        for line in text.lines() {
            // Only a word longer than the text column may stick out, alone on its line.
            let one_word = !line.trim().contains(' ');
            assert!(line.len() <= width || one_word, "{width} columns: {line:?} is {} long", line.len());
        }
        for item in items {
            let Item::Rows(rows) = item else { continue };
            for Row(key, _) in rows.iter().filter(|r| r.0.len() + 2 <= width) {
                assert!(text.lines().any(|l| l.starts_with(&format!("  {key}"))), "{width}: no line starts with {key}");
            }
        }
        let keys_start = text.lines().filter(|l| l.starts_with("  ") && !l.starts_with("   ")).count();
        let rows: usize = items.iter().map(|i| if let Item::Rows(r) = i { r.len() } else { 0 }).sum();
        assert_eq!(keys_start, rows, "{width}: lines at the key column:\n{text}");
    }

    #[test]
    fn tables_fit_80_columns_a_wide_terminal_and_a_narrow_one() {
        for width in [40, 63, 64, 80, 100, 120] {
            assert_intact(CONFIG_KEYS, width.min(MAX_WIDTH));
            assert_intact(EXIT_CODES, width.min(MAX_WIDTH));
        }
        let at80 = render(CONFIG_KEYS, 80);
        assert!(at80.contains("\n  *.remote.checkBucket"), "{at80}");
        // A key longer than the column gets a line of its own, its text below in the column.
        let long = at80.lines().position(|l| l == "  target.milvus2x.grpc.maxCallRecvMsgSize, .maxCallSendMsgSize").unwrap();
        assert!(at80.lines().nth(long + 1).unwrap().trim_start().starts_with("gRPC message limits"), "{at80}");
    }
}
