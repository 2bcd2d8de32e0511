//! `verify --full` and `repair`: every primary key of each collection reconciled against the
//! dump, and what is wrong fixed from it.

use crate::bindings::engine;
use crate::exit::Failure;
use crate::job::model::{Job, LoadMode};
use crate::run_report::Recorder;
use crate::sandbox::Caps;

/// Ids the report lists per finding unless told otherwise (`--max-listed`, the service's
/// `reconcile.maxListed`).
pub const MAX_LISTED: u32 = 100;

/// Ids printed per finding on the terminal (the JSON report lists up to --max-listed).
const SHOWN: usize = 10;

/// Keys per Upsert when repairing: the load's batch size in insert mode, else 16 MiB.
fn batch_rows(s: &Job, c: &engine::CollectionLoad) -> u32 {
    let bytes = match s.load_mode {
        LoadMode::Insert { batch_bytes } => batch_bytes,
        LoadMode::Import => 16 << 20,
    };
    let width = if c.vector == engine::VectorKind::Binary { c.dim as u64 / 8 } else { c.dim as u64 * 4 };
    (bytes / (width + 10)).clamp(1, 100_000) as u32
}

/// Reconciles every collection (repairing first with `repair`); fails unless all are clean.
pub async fn run(s: &Job, rec: &Recorder, max_listed: u32, repair: Option<bool>) -> Result<(), Failure> {
    let (sandbox, caps, plan) = super::load::prepare(s, rec).await?;
    if let Some(delete_extra) = repair {
        println!("repair:");
        for c in &plan.collections {
            let o = engine::ReconcileOptions { max_listed, repair: true, delete_extra, batch_rows: batch_rows(s, c) };
            let r = sandbox
                .reconcile_collection(Caps { unit: format!("repair {}", c.name), ..caps.clone() }, c, o)
                .await
                .map_err(|e| Failure::Run(anyhow::anyhow!("repair of {} failed: {e}", c.name)))?;
            for p in &r.partitions {
                let extra = if delete_extra { format!("{} extra deleted", p.deleted) } else { format!("{} extra kept (--delete-extra deletes them)", p.extra.count) };
                println!(
                    "  {:<24} {:<24} {} missing, {} duplicated, {} differing: {} key(s) written again from the dump; {extra}",
                    c.name, p.name, p.missing.count, p.duplicated.count, p.differing.count, p.repaired
                );
            }
        }
    }
    println!("verify --full:");
    println!(
        "  {:<24} {:<24} {:>12} {:>12} {:>9} {:>10} {:>9} {:>9}  result",
        "collection", "partition", "source rows", "milvus rows", "missing", "duplicated", "extra", "differing"
    );
    let mut bad = 0;
    for c in &plan.collections {
        let o = engine::ReconcileOptions { max_listed, repair: false, delete_extra: false, batch_rows: batch_rows(s, c) };
        let result = sandbox.reconcile_collection(Caps { unit: format!("verify --full {}", c.name), ..caps.clone() }, c, o).await;
        rec.reconciled(c, result.as_ref().map_err(|e| e.to_string()), false);
        let r = match result {
            Ok(r) => r,
            Err(e) => {
                println!("  {:<24} verification failed: {e}", c.name);
                bad += 1;
                continue;
            }
        };
        for p in &r.partitions {
            let findings = [("missing", &p.missing), ("duplicated", &p.duplicated), ("extra", &p.extra), ("differing", &p.differing)];
            let clean = findings.iter().all(|(_, f)| f.count == 0);
            println!(
                "  {:<24} {:<24} {:>12} {:>12} {:>9} {:>10} {:>9} {:>9}  {}",
                c.name,
                p.name,
                p.expected_rows,
                p.milvus_rows,
                p.missing.count,
                p.duplicated.count,
                p.extra.count,
                p.differing.count,
                if clean { "ok" } else { "MISMATCH" }
            );
            for (what, f) in findings.iter().filter(|(_, f)| f.count > 0) {
                let ids: Vec<String> = f.first.iter().take(SHOWN).map(i64::to_string).collect();
                let more = if f.count as usize > ids.len() { ", ..." } else { "" };
                println!("      {what} ids: {}{more}", ids.join(", "));
            }
            bad += usize::from(!clean);
        }
        if r.rows_elsewhere > 0 {
            println!("  {:<24} {} row(s) stored in partitions the dump does not have", c.name, r.rows_elsewhere);
            bad += 1;
        }
    }
    if bad > 0 {
        let hint = if repair.is_some() { "" } else { "; `repair` fixes them from the dump" };
        return Err(Failure::Run(anyhow::anyhow!("verify --full found {bad} partition(s) that differ from the dump{hint} (the report lists the ids)")));
    }
    println!("verified: every primary key of every partition matches the dump");
    Ok(())
}
