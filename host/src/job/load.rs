//! `load` and `verify`: plan against the target, import per collection, then compare.

use std::sync::Arc;

use futures::StreamExt;

use crate::bindings::engine;
use crate::caps::milvus::ImportPaths;
use crate::exit::Failure;
use crate::progress::Progress;
use crate::run_report::Recorder;
use crate::sandbox::{Caps, Sandbox};
use crate::job::model::{IndexChoice, Job, LoadMode, OnExists, StoreSpec};
use super::workers::{self, Finalized, Share, Work};

/// A sandbox and capabilities connected to the target Milvus and stores.
pub async fn connect(s: &Job) -> Result<(Sandbox, Caps), Failure> {
    let grants = super::dump::grants(s).await.map_err(Failure::Run)?;
    let paths = match &s.target {
        StoreSpec::Local(out) => ImportPaths::Local(
            std::fs::canonicalize(out).map_err(|e| Failure::Usage(anyhow::anyhow!("target.local.outputDir {}: {e}", out.display())))?,
        ),
        StoreSpec::Remote(r) => ImportPaths::Bucket { prefix: r.prefix.clone() },
    };
    let m = s.milvus.as_ref().expect("load settings carry milvus");
    let conn = s.milvus_conn(paths).await.map_err(Failure::Run)?;
    println!("Milvus {} at {}, database {:?}", conn.version, m.endpoint, m.database);
    let sandbox = Sandbox::with_policy(s.limits, &s.units).map_err(Failure::Run)?;
    let caps = Caps { grants, milvus: Some(Arc::new(conn)), fence: s.fence.clone(), ..Default::default() };
    Ok((sandbox, caps))
}

/// Connects to Milvus and plans the load; nothing is imported yet.
pub(super) async fn prepare(s: &Job, rec: &Recorder) -> Result<(Sandbox, Caps, engine::LoadPlan), Failure> {
    let (sandbox, caps) = connect(s).await?;
    let opts = load_options(s);
    let plan = sandbox
        .plan_load(Caps { unit: "plan".into(), ..caps.clone() }, &opts)
        .await
        .map_err(|e| Failure::Run(anyhow::anyhow!("planning the load failed: {e}")))?;
    for w in &plan.warnings {
        tracing::warn!("{w}");
    }
    rec.warnings(plan.warnings.iter().cloned());
    for c in &plan.collections {
        rec.planned(c);
    }
    Ok((sandbox, caps, plan))
}

/// The load options of the settings (also what `plan` maps with).
pub fn load_options(s: &Job) -> engine::LoadOptions {
    let index_mode = match s.index {
        IndexChoice::Keep => engine::IndexMode::Keep,
        IndexChoice::AutoIndex => engine::IndexMode::Autoindex,
        IndexChoice::None => engine::IndexMode::None,
    };
    let t = &s.collection;
    let m = s.milvus.as_ref();
    engine::LoadOptions {
        collections: s.collections.clone(),
        index_mode,
        load_after: s.load_after,
        renames: t.renames.clone(),
        shards: t.shards,
        consistency: t.consistency.clone(),
        description: t.description.clone(),
        on_exists: match t.on_exists {
            OnExists::Fail => engine::OnExists::Fail,
            OnExists::Append => engine::OnExists::Append,
            OnExists::Skip => engine::OnExists::Skip,
        },
        // The journal's scope: the server as configured, and the database.
        target: m.map(|m| format!("{}/{}", m.endpoint, m.database)).unwrap_or_default(),
        imports_in_flight: s.loader_workers.get() as u32,
        load_mode: match s.load_mode {
            LoadMode::Import => engine::LoadMode::BulkImport,
            LoadMode::Insert { batch_bytes } => engine::LoadMode::Insert(batch_bytes),
        },
    }
}

/// How many collections load at once, and each one's bound on imports in flight, so that at
/// most `loader.worker.limit` imports are pending on the server in all (2.4.14+ refuses more
/// than 1024 unfinished jobs).
fn concurrency(limit: usize, collections: usize) -> (usize, u32) {
    let at_once = limit.min(collections).max(1);
    (at_once, (limit / at_once).max(1) as u32)
}

fn rows(c: &engine::CollectionLoad) -> u64 {
    c.partitions.iter().map(|p| p.rows).sum()
}

pub async fn run(s: &Job, verify_after: bool, rec: &Recorder) -> Result<(), Failure> {
    match s.share {
        Some(share) => super::leased(s, "load", load_share(s, share, verify_after, rec)).await,
        None => super::leased(s, "load", load_all(s, verify_after, rec)).await,
    }
}

/// A worker's part of a load: the file groups of the dump units (segments or packs) whose index
/// in the plan is its share (all groups of a unit go to one worker: they share journal entries), imported
/// without index or load; then the one worker that sees every share done runs the whole load
/// (which imports nothing again), with index, load and verify.
async fn load_share(s: &Job, share: Share, verify_after: bool, rec: &Recorder) -> Result<(), Failure> {
    let (sandbox, caps, plan) = prepare(s, rec).await?;
    let target = caps.grants.target.clone().expect("load grants a target");
    let mut text = format!("{}|{}\n", share.workers, load_options(s).target);
    for c in &plan.collections {
        for g in c.partitions.iter().flat_map(|p| &p.groups) {
            text.push_str(&format!("{}|{}\n", c.name, g.files.join(",")));
        }
    }
    let work = Work::new(&target, "load", workers::fnv1a(&text));
    if work.finalized().await? {
        println!("{}: this load is complete already (finalized by a worker of the same plan)", share.name());
        return Ok(());
    }
    let (_, in_flight) = concurrency(s.loader_workers.get(), 1);
    // Each dump unit's index in the plan, in order of first appearance.
    let mut units: std::collections::HashMap<(String, String), usize> = std::collections::HashMap::new();
    let mut failed = Vec::new();
    for c in &plan.collections {
        let mut mine = engine::CollectionLoad { index: None, load_after: false, imports_in_flight: in_flight, ..c.clone() };
        for p in &mut mine.partitions {
            p.groups.retain(|g| {
                let next = units.len();
                let k = *units.entry((c.name.clone(), g.unit_dir.clone())).or_insert(next);
                share.takes(k)
            });
        }
        if mine.partitions.iter().all(|p| p.groups.is_empty()) {
            continue;
        }
        let r = sandbox.load_collection(Caps { unit: c.name.clone(), ..caps.clone() }, &mine).await;
        match r {
            Ok(r) => println!("  {:<24} {}: imported {} group(s) ({} rows), {} already imported", c.name, share.name(), r.imported, r.rows, r.skipped),
            Err(e) => failed.push(format!("collection {}: {e}", c.name)),
        }
    }
    if !failed.is_empty() {
        for f in &failed {
            eprintln!("failed: {f}");
        }
        return Err(Failure::Run(anyhow::anyhow!("{}: {} collection(s) failed to load", share.name(), failed.len())));
    }
    work.create(&format!("worker-{}.json", share.worker), &serde_json::json!({"pid": std::process::id()})).await.map_err(Failure::Run)?;
    let mut waiting = Vec::new();
    for i in 0..share.workers {
        if work.get(&format!("worker-{i}.json")).await.map_err(Failure::Run)?.is_none() {
            waiting.push(i.to_string());
        }
    }
    if !waiting.is_empty() {
        println!("{}: its share is imported; worker(s) {} still running", share.name(), waiting.join(", "));
        return Ok(());
    }
    let announce = format!("every share is imported; finalizing (index, load{})", if verify_after { ", verify" } else { "" });
    if work.finalize(s.lease_ttl, share, &announce, load_all(s, verify_after, rec)).await? == Finalized::ByAnother {
        println!("{}: another worker is finalizing the load", share.name());
    }
    Ok(())
}

async fn load_all(s: &Job, verify_after: bool, rec: &Recorder) -> Result<(), Failure> {
    let (sandbox, caps, plan) = prepare(s, rec).await?;
    println!("load: {} collection(s)", plan.collections.len());
    for c in &plan.collections {
        let groups: usize = c.partitions.iter().map(|p| p.groups.len()).sum();
        let index = c.index.as_ref().map_or("no index".to_string(), |i| format!("{} {} {}", i.index_type, i.metric, i.params));
        let renamed = if c.name != c.source_name { format!(" (1.x {})", c.source_name) } else { String::new() };
        println!(
            "  {:<24} {} partition(s) {groups} file group(s) {} rows, index {index}{}{}",
            format!("{}{renamed}", c.name),
            c.partitions.len(),
            rows(c),
            if c.load_after { ", loaded after" } else { "" },
            if c.exists { " (collection exists)" } else { "" }
        );
    }
    let progress = Progress::start(0, "load", &s.units.observer);
    let (at_once, in_flight) = concurrency(s.loader_workers.get(), plan.collections.len());
    let results: Vec<_> = futures::stream::iter(plan.collections.iter())
        .map(|c| {
            let caps = Caps { unit: c.name.clone(), progress: Some(progress.clone()), ..caps.clone() };
            let sandbox = &sandbox;
            let c = engine::CollectionLoad { imports_in_flight: in_flight, ..c.clone() };
            async move {
                let t = std::time::Instant::now();
                let r = sandbox.load_collection(caps, &c).await;
                (t.elapsed(), r)
            }
        })
        .buffered(at_once)
        .collect()
        .await;
    progress.finish();
    let mut failed = Vec::new();
    for (c, (took, r)) in plan.collections.iter().zip(results) {
        rec.loaded(c, took, r.as_ref().map_err(|e| e.to_string()));
        match r {
            Ok(r) => println!(
                "  {:<24} imported {} group(s) ({} rows), {} already imported by an earlier run",
                c.name, r.imported, r.rows, r.skipped
            ),
            Err(e) => failed.push(format!("collection {}: {e}", c.name)),
        }
    }
    if !failed.is_empty() {
        for f in &failed {
            eprintln!("failed: {f}");
        }
        return Err(Failure::Run(anyhow::anyhow!("{} of {} collection(s) failed to load", failed.len(), plan.collections.len())));
    }
    if verify_after {
        check(&sandbox, &caps, &plan, rec).await?;
        if s.collection.delete_staged {
            for c in &plan.collections {
                let n = sandbox
                    .cleanup_collection(Caps { unit: format!("cleanup {}", c.name), ..caps.clone() }, c)
                    .await
                    .map_err(|e| Failure::Run(anyhow::anyhow!("cleanup of {} failed: {e}", c.name)))?;
                println!("  {:<24} deleted {n} staged file(s) (migration.cleanup: delete)", c.name);
            }
        }
        Ok(())
    } else {
        if s.collection.delete_staged {
            println!("staged files kept: migration.cleanup deletes them only after a verified load");
        }
        println!("not verified (--no-verify); run `verify` to compare with the source");
        Ok(())
    }
}

pub async fn verify(s: &Job, rec: &Recorder) -> Result<(), Failure> {
    let (sandbox, caps, plan) = prepare(s, rec).await?;
    check(&sandbox, &caps, &plan, rec).await
}

/// Verifies every collection and prints the table; fails on any mismatch.
async fn check(sandbox: &Sandbox, caps: &Caps, plan: &engine::LoadPlan, rec: &Recorder) -> Result<(), Failure> {
    println!("verify:");
    println!("  {:<24} {:<24} {:>12} {:>12} {:>8} {:>8}  result", "collection", "partition", "source rows", "milvus rows", "sampled", "deleted");
    let mut bad = 0;
    for c in &plan.collections {
        let caps = Caps { unit: format!("verify {}", c.name), ..caps.clone() };
        let result = sandbox.verify_collection(caps, c).await;
        rec.verified(c, result.as_ref().map_err(|e| e.to_string()));
        match result {
            Ok(r) => {
                for p in &r.partitions {
                    let ok = p.problems.is_empty() && p.expected_rows == p.actual_rows;
                    println!(
                        "  {:<24} {:<24} {:>12} {:>12} {:>8} {:>8}  {}",
                        c.name,
                        p.name,
                        p.expected_rows,
                        p.actual_rows,
                        p.sampled,
                        p.deleted_checked,
                        if ok { "ok" } else { "MISMATCH" }
                    );
                    for problem in &p.problems {
                        println!("      {problem}");
                    }
                    bad += usize::from(!ok);
                }
                let ok = r.expected_rows == r.actual_rows;
                println!("  {:<24} {:<24} {:>12} {:>12} {:>8} {:>8}  {}", c.name, "(all)", r.expected_rows, r.actual_rows, "", "", if ok { "ok" } else { "MISMATCH" });
                bad += usize::from(!ok);
            }
            Err(e) => {
                println!("  {:<24} verification failed: {e}", c.name);
                bad += 1;
            }
        }
    }
    if bad > 0 {
        return Err(Failure::Run(anyhow::anyhow!("verification found {bad} mismatch(es)")));
    }
    println!("verified: every collection and partition matches the source");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::concurrency;

    #[test]
    fn imports_in_flight_never_exceed_the_worker_limit() {
        for limit in 1..12 {
            for collections in 0..12 {
                let (at_once, each) = concurrency(limit, collections);
                assert!(at_once >= 1 && at_once * each as usize <= limit.max(1), "{limit} {collections}");
            }
        }
        assert_eq!(concurrency(8, 1), (1, 8));
        assert_eq!(concurrency(4, 10), (4, 1));
    }
}
