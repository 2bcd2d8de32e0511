//! `plan`: everything a migration would do and every check that could stop it, computed
//! without writing anything.
use crate::prelude::*;

use serde_json::json;

use crate::dump::SegmentReport;
use crate::error::Result;
use crate::index::Version;
use crate::io::{Milvus, Role, Store};
use crate::load::{map_collections, LoadOptions, LoadPlan};
use crate::manifest;
use crate::meta::Installation;
use crate::paths;
use crate::plan::{plan_dump, DumpOptions, DumpPlan, SegmentUnit};

#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub ok: bool,
    pub what: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MigrationPlan {
    pub dump: DumpPlan,
    pub load: LoadPlan,
    pub checks: Vec<Check>,
    /// The whole plan as a JSON document (for `plan --json`).
    pub json: String,
}

/// The segment's files are there, and their sizes agree with the meta. Returns rows in the
/// files (deleted included) when they could be sized.
fn check_files(store: &impl Store, u: &SegmentUnit) -> (Check, Option<u64>) {
    let dir = paths::segment_dir(&u.table_id, &u.segment_id);
    let what = format!("source files of segment {} ({}{})", u.segment_id, u.collection, if u.partition_tag.is_empty() { String::new() } else { format!(" / {}", u.partition_tag) });
    let fail = |detail: String| (Check { ok: false, what: what.clone(), detail }, None);
    let names = match store.list(Role::Source, &dir) {
        Ok(n) => n,
        Err(e) => return fail(e.to_string()),
    };
    let find = |ext: &str| names.iter().find(|n| n.ends_with(ext)).map(|n| format!("{dir}/{n}"));
    let (Some(rv), Some(uid)) = (find(".rv"), find(".uid")) else {
        return fail(if names.is_empty() { format!("directory {dir} is missing or empty") } else { format!("{dir} has no .rv or no .uid file") });
    };
    let size = |p: &str| store.stat(Role::Source, p).ok().flatten();
    let (Some(rv_size), Some(uid_size)) = (size(&rv), size(&uid)) else { return fail(format!("cannot read the sizes in {dir}")) };
    let payload = rv_size.saturating_sub(8) + uid_size.saturating_sub(8);
    let rows_in = uid_size.saturating_sub(8) / 8;
    if u.file_size > 0 && payload != u.file_size {
        return fail(format!("{rv} and {uid} hold {payload} bytes of vectors and ids; the meta says {}", u.file_size));
    }
    let row_bytes = u.vector.row_bytes(u.dim).unwrap_or(1);
    if rv_size.saturating_sub(8) != rows_in * row_bytes {
        return fail(format!("{rv} holds {} bytes, {rows_in} rows of {row_bytes} bytes need {}", rv_size.saturating_sub(8), rows_in * row_bytes));
    }
    (Check { ok: true, what, detail: format!("{rows_in} rows, {payload} bytes") }, Some(rows_in))
}

pub fn plan_migration<M: Milvus>(
    store: &impl Store,
    milvus: &M,
    inst: Installation,
    dopts: &DumpOptions,
    lopts: &LoadOptions,
) -> Result<MigrationPlan> {
    let dump = plan_dump(inst, dopts)?;
    let mut checks = Vec::new();
    let mut reports = Vec::new();
    for u in &dump.units {
        let (check, rows_in) = check_files(store, u);
        checks.push(check);
        let rows_in = rows_in.unwrap_or(u.rows);
        reports.push(SegmentReport { rows_in, deleted: rows_in.saturating_sub(u.rows), rows_out: u.rows, bytes_in: u.file_size, ..Default::default() });
    }
    let planned = manifest::build(&dump, dopts, &reports, &vec![vec![]; dump.packs.len()])?;
    let (reachable, version) = match milvus.server_version() {
        Ok(v) => {
            checks.push(Check { ok: true, what: "target Milvus".into(), detail: format!("version {v}") });
            (true, Version::parse(&v))
        }
        Err(e) => {
            checks.push(Check { ok: false, what: "target Milvus".into(), detail: e.to_string() });
            (false, Version::parse(""))
        }
    };
    let (load, problems) = map_collections(&planned, reachable.then_some(milvus), version, lopts)?;
    for p in &problems {
        checks.push(Check { ok: false, what: "target collection".into(), detail: p.clone() });
    }
    for c in &load.collections {
        if c.exists {
            checks.push(Check { ok: true, what: format!("target collection {}", c.name), detail: "exists with the same schema; the load appends to it".into() });
        }
    }
    let mut warnings = dump.warnings.clone();
    warnings.extend(load.warnings.iter().cloned());
    let doc = json!({
        "ok": checks.iter().all(|c| c.ok),
        "inventory": {
            "collections": dump.collections.len(),
            "partitions": dump.collections.iter().map(|c| c.partitions.len()).sum::<usize>(),
            "segments": dump.units.len(),
            "rows": reports.iter().map(|r| r.rows_out).sum::<u64>(),
            "deletedRows": reports.iter().map(|r| r.deleted).sum::<u64>(),
            "bytes": dump.units.iter().map(|u| u.file_size).sum::<u64>(),
        },
        "collections": load.collections.iter().map(|c| json!({
            "name": c.name,
            "vectorType": c.vector.name(),
            "dim": c.dim,
            "schema": {"primary": c.id_field, "vector": c.vector_field},
            "index": c.index.as_ref().map(|i| json!({"indexType": i.index_type, "metric": i.metric, "params": i.params})),
            "exists": c.exists,
            "partitions": c.partitions.iter().map(|p| json!({"tag": p.tag, "name": p.name, "rows": p.rows})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "warnings": warnings,
        "checks": checks.iter().map(|c| json!({"ok": c.ok, "what": c.what, "detail": c.detail})).collect::<Vec<_>>(),
    });
    Ok(MigrationPlan { dump, load, checks, json: serde_json::to_string_pretty(&doc).expect("plan serializes") })
}
