//! `dump`: plan from the meta, convert every segment in its own instance, then write the manifest.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;

use crate::bindings::engine;
use crate::caps::blob_store::Grants;
use crate::caps::meta_db::{MetaSource, MySqlSource, SqliteSource};
use crate::stores;
use super::overlap;
use super::workers::{self, Finalized, Work, FINALIZED};
use crate::exit::Failure;
use crate::progress::Progress;
use crate::run_report::Recorder;
use crate::sandbox::{Caps, Limits, Sandbox};
use crate::job::model::{BadData, FileFormat, MetaSpec, Job, StoreSpec};

pub async fn grants(s: &Job) -> anyhow::Result<Grants> {
    Ok(Grants { source: Some(stores::grant(&s.source, false).await?), target: Some(stores::grant(&s.target, true).await?) })
}

/// Where the engine reads the 1.x meta from: a meta.json's text, or a database.
pub async fn meta_source(meta: &MetaSpec, source: &StoreSpec) -> Result<(engine::MetaSource, Option<Arc<dyn MetaSource>>), Failure> {
    Ok(match meta {
        MetaSpec::Json(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| Failure::Usage(anyhow::anyhow!("cannot read meta file {}: {e}", p.display())))?;
            (engine::MetaSource::Json(text), None)
        }
        MetaSpec::Remote(key) => {
            let StoreSpec::Remote(r) = source else { unreachable!("settings require source.mode remote") };
            let text = stores::read_text(r, key, "meta.remoteMetaFile").await.map_err(Failure::Run)?;
            (engine::MetaSource::Json(text), None)
        }
        MetaSpec::Sqlite(p) => {
            (engine::MetaSource::Database, Some(Arc::new(SqliteSource::open(p).await.map_err(Failure::Usage)?)))
        }
        MetaSpec::Mysql(dsn) => {
            (engine::MetaSource::Database, Some(Arc::new(MySqlSource::open(dsn, "meta.mysqlUrl").await.map_err(Failure::Run)?)))
        }
    })
}

/// The engine's dump options from the settings.
pub fn dump_options(s: &Job) -> engine::DumpOptions {
    engine::DumpOptions {
        collections: s.collections.clone(),
        id_field: s.id_field.clone(),
        vector_field: s.vector_field.clone(),
        read_chunk: s.read_chunk,
        max_group_bytes: s.max_group_bytes,
        bad_data: match s.bad_data {
            BadData::Fail => engine::BadData::Fail,
            BadData::Skip => engine::BadData::Skip,
            BadData::Reject => engine::BadData::Reject,
        },
        keep_last: s.keep_last,
        pack: s.pack_segments,
        format: match s.format {
            FileFormat::Numpy => engine::FileFormat::Numpy,
            FileFormat::Parquet => engine::FileFormat::Parquet,
        },
    }
}

/// Scans each collection's ids for repeats, in an instance sized for it (8 bytes a row), and
/// marks the older copies to drop with keep-last.
async fn duplicates(sandbox: &Sandbox, base: &Caps, plan: &mut engine::DumpPlan, opts: &engine::DumpOptions, limits: Limits) -> Result<(), Failure> {
    let (memory, fuel) = (limits.memory_bytes, limits.fuel);
    for c in &plan.collections {
        let idx: Vec<usize> = (0..plan.units.len()).filter(|&i| plan.units[i].collection == c.name).collect();
        let units: Vec<engine::SegmentUnit> = idx.iter().map(|&i| plan.units[i].clone()).collect();
        let rows: u64 = units.iter().map(|u| u.rows).sum();
        let need = ((64 << 20) + rows.saturating_mul(12)).min(4 << 30) as usize;
        // Reading and sorting costs some thousand instructions a row at most.
        let caps = Caps {
            unit: format!("{} ids", c.name),
            memory_bytes: Some(need.max(memory)),
            fuel: Some(fuel.max(rows.saturating_mul(5_000))),
            ..base.clone()
        };
        // Under a ceiling (the service's tenant quota) the instance would be capped and trap
        // late; say so up front instead. The fuel estimate is generous, so it is only capped.
        let scan = match sandbox.ceiling() {
            Some(c) if need > c.memory_bytes => Err(format!(
                "the scan of {rows} ids needs {} MiB in one instance; the tenant's quota allows {} MiB per unit",
                need >> 20,
                c.memory_bytes >> 20
            )),
            _ => sandbox.find_duplicates(caps, &units, opts).await.map_err(|e| e.to_string()),
        };
        let r = match scan {
            Ok(r) => r,
            // keep-last cannot be honoured without the check; keep-all only loses the report
            // (a segment too broken to read fails in its own unit, with the reason).
            Err(e) if opts.keep_last => {
                return Err(Failure::Run(anyhow::anyhow!("checking the ids of collection {:?} for repeats failed: {e}", c.name)))
            }
            Err(e) => {
                let w = format!("collection {:?}: the ids could not be checked for repeats ({e}); every copy is kept", c.name);
                tracing::warn!("{w}");
                plan.warnings.push(w);
                continue;
            }
        };
        if r.repeated_ids > 0 {
            let w = format!(
                "collection {:?}: {} id(s) appear more than once ({} extra copies; e.g. {:?}); {}",
                c.name,
                r.repeated_ids,
                r.extra_copies,
                r.examples,
                if opts.keep_last {
                    "only the newest copy of each is kept (migration.duplicateIds: keep-last)"
                } else {
                    "every copy is kept, as 1.x kept them (migration.duplicateIds: keep-last keeps only the newest)"
                }
            );
            tracing::warn!("{w}");
            plan.warnings.push(w);
        }
        for (i, drops) in idx.into_iter().zip(r.drops) {
            plan.units[i].drop_rows = drops;
        }
    }
    Ok(())
}

fn unit_name(u: &engine::SegmentUnit) -> String {
    if u.partition_tag.is_empty() {
        format!("{}/{}", u.collection, u.segment_id)
    } else {
        format!("{}[{}]/{}", u.collection, u.partition_tag, u.segment_id)
    }
}

fn print_plan(plan: &engine::DumpPlan) {
    let packed: usize = plan.packs.iter().map(|p| p.units.len()).sum();
    let packs = if plan.packs.is_empty() { String::new() } else { format!(" ({packed} of them in {} pack(s) of small segments)", plan.packs.len()) };
    println!("plan: {} collection(s), {} segment(s){packs}", plan.collections.len(), plan.units.len());
    for c in &plan.collections {
        let rows: u64 = c.partitions.iter().map(|p| p.rows).sum();
        let segs: u32 = c.partitions.iter().map(|p| p.segments).sum();
        let kind = match c.vector {
            engine::VectorKind::Float => "float",
            engine::VectorKind::Binary => "binary",
        };
        println!(
            "  {:<24} {kind} dim {:<6} {} partition(s) {segs} segment(s) {rows} rows",
            c.name,
            c.dim,
            c.partitions.len()
        );
    }
    for w in &plan.warnings {
        tracing::warn!("{w}");
    }
}

pub async fn run(s: &Job, rec: &Recorder) -> Result<(), Failure> {
    super::leased(s, "dump", dump_all(s, rec, false, &None)).await
}

/// `dump` as the first step of `migrate`: a worker whose share is done waits for the others'
/// (the load needs the manifest). `early` hears of every finished unit, to import it at once;
/// its imports end before the lease is released (no other run may import meanwhile).
pub async fn run_before_load(s: &Job, rec: &Recorder, early: Option<overlap::EarlyLoad>) -> Result<Option<overlap::Outcome>, Failure> {
    let tx = early.as_ref().map(|e| e.sender());
    super::leased(s, "dump", async move {
        let dumped = dump_all(s, rec, true, &tx).await;
        drop(tx);
        let out = match early {
            Some(e) => Some(e.finish().await),
            None => None,
        };
        dumped.map(|_| out)
    })
    .await
}

/// What identifies a dump plan for its workers: every unit and the options that shape output.
fn plan_hash(plan: &engine::DumpPlan, opts: &engine::DumpOptions) -> u64 {
    let mut text = format!("{}|{}|{}|{:?}|{}|{}\n", opts.id_field, opts.vector_field, opts.max_group_bytes, opts.bad_data, opts.keep_last, opts.pack);
    for u in &plan.units {
        text.push_str(&format!("{}|{}|{}|{}|{}|{}|{:?}\n", u.collection, u.table_id, u.segment_id, u.rows, u.file_size, u.output_dir, u.drop_rows));
    }
    for p in &plan.packs {
        text.push_str(&format!("{}|{:?}\n", p.output_dir, p.units));
    }
    workers::fnv1a(&text)
}

async fn dump_all(s: &Job, rec: &Recorder, wait_for_others: bool, early: &overlap::Sender) -> Result<(), Failure> {
    let started = Instant::now();
    let grants = grants(s).await.map_err(Failure::Run)?;
    let meta = s.meta.as_ref().expect("dump settings carry the meta");
    let (meta_source, db) = meta_source(meta, &s.source).await?;
    let sandbox = Sandbox::with_policy(s.limits, &s.units).map_err(Failure::Run)?;
    let opts = dump_options(s);
    let warnings = Arc::new(std::sync::Mutex::new(Vec::new()));
    let base = Caps { grants: grants.clone(), warnings: warnings.clone(), ..Default::default() };

    let plan_caps = Caps { meta: db, unit: "plan".into(), ..base.clone() };
    let mut plan = sandbox
        .plan_dump(plan_caps, &meta_source, &opts)
        .await
        .map_err(|e| Failure::Run(anyhow::anyhow!("planning the dump failed: {e}")))?;
    duplicates(&sandbox, &base, &mut plan, &opts, s.limits).await?;
    print_plan(&plan);
    overlap::send(early, || overlap::Event::Plan(plan.clone(), opts.clone()));
    rec.warnings(plan.warnings.iter().cloned());
    rec.planned_dump(&plan);
    rec.bad_data(match s.bad_data {
        BadData::Fail => "fail",
        BadData::Skip => "skip",
        BadData::Reject => "reject",
    });

    let target = grants.target.as_ref().expect("dump grants a target");
    let work = s.share.map(|_| Work::new(&target, "dump", plan_hash(&plan, &opts)));
    let run_err = |e: anyhow::Error| Failure::Run(e);
    if let (Some(work), Some(share)) = (&work, s.share) {
        if work.finalized().await? {
            println!("{}: this dump is complete already (finalized by a worker of the same plan)", share.name());
            return Ok(());
        }
    }
    // Before anything is rewritten: a dump that stops half way must leave no manifest that
    // describes files it has since changed (load would trust it). Workers of one plan do it
    // once, before the first of them starts (so never after another one finalized).
    let first = match &work {
        Some(w) => w.get("started.json").await.map_err(run_err)?.is_none(),
        None => true,
    };
    if first {
        sandbox
            .invalidate_manifest(Caps { unit: "manifest".into(), ..base.clone() })
            .await
            .map_err(|e| Failure::Run(anyhow::anyhow!("removing the earlier dump's manifest failed: {e}")))?;
        if let Some(w) = &work {
            w.create("started.json", &serde_json::json!({"pid": std::process::id()})).await.map_err(run_err)?;
        }
    }

    // This process's units of work: all of them, or its share less what is recorded as done.
    let items = work_items(&plan);
    let mut done = Done { units: vec![None; plan.units.len()], packs: vec![None; plan.packs.len()] };
    let mut todo = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match (&work, s.share) {
            (Some(w), Some(share)) if share.takes(i) => match w.get(&item.record()).await.map_err(run_err)? {
                Some(v) => done.take(&plan, *item, &v).ok_or_else(|| Failure::Run(anyhow::anyhow!("{} is not a dump report", item.record())))?,
                None => todo.push(*item),
            },
            (Some(_), _) => {}
            (None, _) => todo.push(*item),
        }
    }
    let total: u64 = todo.iter().flat_map(|item| item.units(&plan)).map(|k| plan.units[k].file_size).sum();
    let progress = Progress::start(total, "dump", &s.units.observer);
    let results: Vec<_> = futures::stream::iter(todo.iter().copied())
        .map(|item| {
            let sandbox = &sandbox;
            let (opts, work, plan, base, progress) = (&opts, &work, &plan, &base, &progress);
            async move {
                let t = Instant::now();
                let r = match item {
                    Item::Segment(k) => {
                        let caps = Caps { unit: unit_name(&plan.units[k]), progress: Some(progress.clone()), ..base.clone() };
                        sandbox.dump_segment(caps, &plan.units[k], opts).await.map(Report::Segment)
                    }
                    Item::Pack(p) => {
                        let pk = &plan.packs[p];
                        let units: Vec<engine::SegmentUnit> = pk.units.iter().map(|&k| plan.units[k as usize].clone()).collect();
                        let caps = Caps { unit: pk.output_dir.clone(), progress: Some(progress.clone()), ..base.clone() };
                        sandbox.dump_pack(caps, &units, &pk.output_dir, opts).await.map(Report::Pack)
                    }
                }
                .map_err(|e| e.to_string());
                if let Ok(rep) = &r {
                    overlap::send(early, || match (item, rep) {
                        (Item::Segment(k), Report::Segment(r)) => overlap::Event::Segment(k, r.clone()),
                        (Item::Pack(p), Report::Pack(r)) => overlap::Event::Pack(p, r.clone()),
                        _ => unreachable!("a unit of work returns its own kind of report"),
                    });
                }
                // A worker records each unit it finished, for restarts and for the finalizer.
                let r = match (r, work) {
                    (Ok(rep), Some(w)) => w.create(&item.record(), &rep.json()).await.map(|_| rep).map_err(|e| e.to_string()),
                    (r, _) => r,
                };
                (item, t.elapsed(), r)
            }
        })
        .buffered(s.workers.get())
        .collect()
        .await;
    progress.finish();

    let source_root = grants.source.as_ref().map(|g| g.display.clone()).unwrap_or_default();
    let target_root = target.display.clone();
    let mut failures = Vec::new();
    for (item, took, r) in results {
        record_item(rec, &plan, item, took, r.as_ref());
        match r {
            Ok(rep) => done.put(&plan, item, rep),
            Err(e) => failures.push(format!("{} (source {source_root}, target {target_root}): {e}", item.name(&plan))),
        }
    }
    rec.warnings(warnings.lock().unwrap().iter().cloned());
    if !failures.is_empty() {
        rec.dump_done(started.elapsed(), None);
        for f in &failures {
            eprintln!("failed: {f}");
        }
        let what = if plan.packs.is_empty() { "segment(s)" } else { "unit(s) (segments dumped alone, and packs)" };
        return Err(Failure::Run(anyhow::anyhow!(
            "{} of {} {what} failed; no manifest was written, so this dump is not complete",
            failures.len(),
            todo.len()
        )));
    }

    if let (Some(work), Some(share)) = (&work, s.share) {
        // Every unit recorded (by any worker)? Then one worker writes the manifest.
        for item in &items {
            if !done.has(*item) {
                if let Some(v) = work.get(&item.record()).await.map_err(run_err)? {
                    done.take(&plan, *item, &v);
                }
            }
        }
        let missing = items.iter().filter(|item| !done.has(**item)).count();
        let own = todo.len();
        if missing > 0 || work.finalized().await? {
            println!("{}: dumped {own} unit(s) of its share; {missing} unit(s) of other workers still to do", share.name());
            rec.dump_done(started.elapsed(), None);
            if wait_for_others {
                work.wait_for(FINALIZED, "the other workers' segments and the manifest").await.map_err(run_err)?;
            }
            return Ok(());
        }
        let (reports, pack_files) = done.complete();
        let announce = "every segment is dumped; finalizing (writing the manifest)";
        let job = finish(&sandbox, &base, &plan, &opts, &reports, &pack_files, rec, started, &target_root, &warnings);
        if work.finalize(s.lease_ttl, share, announce, job).await? == Finalized::ByAnother {
            println!("{}: another worker is writing the manifest", share.name());
            if wait_for_others {
                work.wait_for(FINALIZED, "the manifest").await.map_err(run_err)?;
            }
        }
        return Ok(());
    }
    let (reports, pack_files) = done.complete();
    finish(&sandbox, &base, &plan, &opts, &reports, &pack_files, rec, started, &target_root, &warnings).await
}

/// A unit of work of a dump, each in an instance of its own: a segment alone, or a pack.
#[derive(Debug, Clone, Copy)]
enum Item {
    /// Index into `plan.units`.
    Segment(usize),
    /// Index into `plan.packs`.
    Pack(usize),
}

/// The dump's units of work in order: the segments in no pack, then the packs. A worker's
/// share is taken by index in this list.
fn work_items(plan: &engine::DumpPlan) -> Vec<Item> {
    let mut packed = vec![false; plan.units.len()];
    for p in &plan.packs {
        for &k in &p.units {
            packed[k as usize] = true;
        }
    }
    let mut items: Vec<Item> = (0..plan.units.len()).filter(|&k| !packed[k]).map(Item::Segment).collect();
    items.extend((0..plan.packs.len()).map(Item::Pack));
    items
}

impl Item {
    /// Its record among the workers' progress.
    fn record(self) -> String {
        match self {
            Item::Segment(k) => unit_record(k),
            Item::Pack(p) => format!("pack-{p:06}.json"),
        }
    }

    fn units(self, plan: &engine::DumpPlan) -> Vec<usize> {
        match self {
            Item::Segment(k) => vec![k],
            Item::Pack(p) => plan.packs[p].units.iter().map(|&k| k as usize).collect(),
        }
    }

    fn name(self, plan: &engine::DumpPlan) -> String {
        match self {
            Item::Segment(k) => format!("segment {}", unit_name(&plan.units[k])),
            Item::Pack(p) => format!("pack {} ({} segments)", plan.packs[p].output_dir, plan.packs[p].units.len()),
        }
    }
}

/// What a unit of work returned.
enum Report {
    Segment(engine::SegmentReport),
    Pack(engine::PackReport),
}

impl Report {
    fn json(&self) -> serde_json::Value {
        match self {
            Report::Segment(r) => workers::report_json(r),
            Report::Pack(r) => workers::pack_report_json(r),
        }
    }
}

/// The reports gathered so far: per segment, and each pack's files.
struct Done {
    units: Vec<Option<engine::SegmentReport>>,
    packs: Vec<Option<Vec<crate::bindings::blob_store::Written>>>,
}

impl Done {
    fn put(&mut self, plan: &engine::DumpPlan, item: Item, r: Report) {
        match (item, r) {
            (Item::Segment(k), Report::Segment(r)) => self.units[k] = Some(r),
            (Item::Pack(p), Report::Pack(r)) => {
                for (&k, s) in plan.packs[p].units.iter().zip(r.segments) {
                    self.units[k as usize] = Some(s);
                }
                self.packs[p] = Some(r.files);
            }
            _ => unreachable!("a unit of work returns its own kind of report"),
        }
    }

    /// Takes a worker's record of `item`; None when it is not one.
    fn take(&mut self, plan: &engine::DumpPlan, item: Item, v: &serde_json::Value) -> Option<()> {
        let r = match item {
            Item::Segment(_) => Report::Segment(workers::report_from(v)?),
            Item::Pack(p) => {
                let r = workers::pack_report_from(v)?;
                if r.segments.len() != plan.packs[p].units.len() {
                    return None;
                }
                Report::Pack(r)
            }
        };
        self.put(plan, item, r);
        Some(())
    }

    fn has(&self, item: Item) -> bool {
        match item {
            Item::Segment(k) => self.units[k].is_some(),
            Item::Pack(p) => self.packs[p].is_some(),
        }
    }

    /// Every report, once all units are done.
    fn complete(self) -> (Vec<engine::SegmentReport>, Vec<Vec<crate::bindings::blob_store::Written>>) {
        (
            self.units.into_iter().map(|d| d.expect("every unit is done")).collect(),
            self.packs.into_iter().map(|d| d.expect("every pack is done")).collect(),
        )
    }
}

/// Puts a unit of work's outcome into the run report, segment by segment (a pack's time goes
/// to its first segment, so the partition's total stays right).
fn record_item(rec: &Recorder, plan: &engine::DumpPlan, item: Item, took: std::time::Duration, r: Result<&Report, &String>) {
    match (item, r) {
        (Item::Segment(k), Ok(Report::Segment(rep))) => rec.segment(&plan.units[k], took, Ok(rep)),
        (Item::Pack(p), Ok(Report::Pack(rep))) => {
            for (i, (&k, s)) in plan.packs[p].units.iter().zip(&rep.segments).enumerate() {
                rec.segment(&plan.units[k as usize], if i == 0 { took } else { Default::default() }, Ok(s));
            }
        }
        (item, Err(e)) => {
            for (i, k) in item.units(plan).into_iter().enumerate() {
                let e = if i == 0 { e.clone() } else { format!("in {}, which failed", item.name(plan)) };
                rec.segment(&plan.units[k], if i == 0 { took } else { Default::default() }, Err(e));
            }
        }
        _ => unreachable!("a unit of work returns its own kind of report"),
    }
}

fn unit_record(k: usize) -> String {
    format!("unit-{k:06}.json")
}

/// Writes the manifest of a complete dump and prints the totals.
#[allow(clippy::too_many_arguments)]
async fn finish(
    sandbox: &Sandbox,
    base: &Caps,
    plan: &engine::DumpPlan,
    opts: &engine::DumpOptions,
    reports: &[engine::SegmentReport],
    pack_files: &[Vec<crate::bindings::blob_store::Written>],
    rec: &Recorder,
    started: Instant,
    target: &str,
    warnings: &Arc<std::sync::Mutex<Vec<String>>>,
) -> Result<(), Failure> {
    let manifest_caps = Caps { unit: "manifest".into(), ..base.clone() };
    let manifest = sandbox
        .write_manifest(manifest_caps, plan, opts, reports, pack_files)
        .await
        .map_err(|e| Failure::Run(anyhow::anyhow!("writing the manifest failed: {e}")))?;
    rec.dump_done(started.elapsed(), Some(format!("{target}/{}", manifest.path)));

    let secs = started.elapsed().as_secs_f64();
    let rows: u64 = reports.iter().map(|r| r.rows_out).sum();
    let deleted: u64 = reports.iter().map(|r| r.deleted).sum();
    let bytes_in: u64 = reports.iter().map(|r| r.bytes_in).sum();
    let files: usize = reports.iter().map(|r| r.files.len()).sum::<usize>() + pack_files.iter().map(Vec::len).sum::<usize>();
    let dropped: usize = reports.iter().map(|r| r.dropped_rows.len()).sum();
    let dropped = if dropped > 0 { format!(", {dropped} bad rows dropped (migration.badData)") } else { String::new() };
    println!(
        "dumped {rows} rows ({deleted} deleted rows left out{dropped}) from {} segment(s){} into {files} file(s) in {:.2}s, {:.1} MB/s",
        reports.len(),
        if plan.packs.is_empty() {
            String::new()
        } else {
            format!(" ({} of them packed into {} pack(s))", plan.packs.iter().map(|p| p.units.len()).sum::<usize>(), plan.packs.len())
        },
        secs,
        bytes_in as f64 / 1e6 / secs.max(1e-9)
    );
    println!("manifest: {target}/{} ({} bytes)", manifest.path, manifest.bytes);
    let n = warnings.lock().unwrap().len();
    if n > 0 {
        println!("{n} warning(s) above");
    }
    Ok(())
}
