//! The run report: one JSON file per run (`--report`, by default
//! `milvus-migration-<command>-<UTC time>.json` in the working directory) and a table on stdout.
//! Per collection and partition: source rows, deleted, dropped by the bad-data policy, dumped,
//! imported, verified, with durations, bytes and throughput. It is filled from what each step
//! returned, never from what was planned, so it cannot claim work that did not complete: a
//! partition with a failed segment is `complete: false`, a collection whose import or
//! verification failed says so, and `outcome` is `succeeded` only when the command succeeded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::bindings::engine;

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartitionRow {
    /// The 1.x partition tag; empty for the default partition.
    pub tag: String,
    /// The 2.x partition name, once a load planned it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub segments: u32,
    pub segments_failed: u32,
    /// Rows in the source files of the segments that were converted.
    pub source_rows: u64,
    pub deleted: u64,
    /// Rows the bad-data policy dropped (skipped or rejected).
    pub dropped: u64,
    /// Older copies of repeated primary keys left out (migration.duplicateIds: keep-last).
    pub duplicates_dropped: u64,
    /// Deletions of rows outside their segment, ignored by the policy.
    pub ignored_deletes: u64,
    pub dumped: u64,
    pub bytes_in: u64,
    pub dump_seconds: f64,
    pub reject_files: Vec<String>,
    /// Every segment of the partition was converted.
    pub complete: bool,
    /// Rows this run imported into the partition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imported: Option<u64>,
    /// Rows the load expects here (from the manifest) and what Milvus counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_rows: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub milvus_rows: Option<u64>,
    /// True when verify found nothing wrong; absent when not verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    pub problems: Vec<String>,
    /// Every primary key reconciled (`verify --full`, `repair`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconciled: Option<Reconciled>,
    /// This run dumped the partition (for the table).
    #[serde(skip)]
    pub in_dump: bool,
}

/// Keys of one kind of finding: how many, and the first in key order.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ids {
    pub count: u64,
    pub first: Vec<i64>,
}

impl From<&engine::IdFinding> for Ids {
    fn from(f: &engine::IdFinding) -> Self {
        Ids { count: f.count, first: f.first.clone() }
    }
}

/// What reconciling a partition's every key found (before a repair's fixes), and what the
/// repair wrote and deleted.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reconciled {
    pub missing: Ids,
    pub duplicated: Ids,
    pub extra: Ids,
    pub differing: Ids,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repaired: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<u64>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectionRow {
    /// The 1.x name.
    pub name: String,
    /// The 2.x name, once a load planned it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub partitions: Vec<PartitionRow>,
    /// File groups imported by this run, and found already imported by an earlier run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups_imported: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups_already_imported: Option<u32>,
    /// Rows imported by this run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imported: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import_rows_per_second: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// Stored rows outside the dump's partitions (`verify --full`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_elsewhere: Option<u64>,
    /// Why the load or the verification of this collection failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub tool: String,
    pub command: String,
    pub config: Option<PathBuf>,
    pub started: String,
    pub seconds: f64,
    /// `succeeded`, or `failed` with `error`.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bad_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dump_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dump_mb_per_second: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    pub collections: Vec<CollectionRow>,
    pub warnings: Vec<String>,
}

/// Shared by the steps of one run; each records what it did.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Mutex<Report>>,
    started: Instant,
    /// What `migrate` imported while dumping, per 1.x collection: added to the load's counts.
    early: Arc<Mutex<std::collections::HashMap<String, engine::LoadReport>>>,
}

fn no_imports() -> engine::LoadReport {
    engine::LoadReport { imported: 0, skipped: 0, rows: 0, partition_rows: vec![] }
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

impl Recorder {
    pub fn new(command: &str, config: Option<PathBuf>) -> Self {
        let report = Report {
            tool: format!("milvus-migration {}", env!("CARGO_PKG_VERSION")),
            command: command.into(),
            config,
            started: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            outcome: "running".into(),
            ..Default::default()
        };
        Recorder { inner: Arc::new(Mutex::new(report)), started: Instant::now(), early: Default::default() }
    }

    pub fn command(&self) -> String {
        self.with(|r| r.command.clone())
    }

    fn with<T>(&self, f: impl FnOnce(&mut Report) -> T) -> T {
        f(&mut self.inner.lock().expect("report lock"))
    }

    fn partition<'r>(r: &'r mut Report, collection: &str, tag: &str) -> &'r mut PartitionRow {
        let i = match r.collections.iter().position(|c| c.name == collection) {
            Some(i) => i,
            None => {
                r.collections.push(CollectionRow { name: collection.into(), ..Default::default() });
                r.collections.len() - 1
            }
        };
        let c = &mut r.collections[i];
        let j = match c.partitions.iter().position(|p| p.tag == tag) {
            Some(j) => j,
            None => {
                c.partitions.push(PartitionRow { tag: tag.into(), complete: true, ..Default::default() });
                c.partitions.len() - 1
            }
        };
        &mut c.partitions[j]
    }

    /// Every partition of a dump plan, so that empty ones are listed too.
    pub fn planned_dump(&self, plan: &engine::DumpPlan) {
        self.with(|r| {
            for c in &plan.collections {
                for p in &c.partitions {
                    Self::partition(r, &c.name, &p.tag).in_dump = true;
                }
            }
        });
    }

    pub fn bad_data(&self, policy: &str) {
        self.with(|r| r.bad_data = Some(policy.into()));
    }

    /// One converted (or failed) segment.
    pub fn segment(&self, u: &engine::SegmentUnit, took: Duration, result: Result<&engine::SegmentReport, String>) {
        self.with(|r| {
            let p = Self::partition(r, &u.collection, &u.partition_tag);
            p.segments += 1;
            p.dump_seconds = secs(Duration::from_secs_f64(p.dump_seconds) + took);
            match result {
                Ok(s) => {
                    p.source_rows += s.rows_in;
                    p.deleted += s.deleted;
                    p.dropped += s.dropped_rows.len() as u64 - s.duplicates_dropped;
                    p.duplicates_dropped += s.duplicates_dropped;
                    p.ignored_deletes += s.ignored_deletes;
                    p.dumped += s.rows_out;
                    p.bytes_in += s.bytes_in;
                    p.reject_files.extend(s.rejects.iter().map(|w| w.path.clone()));
                }
                Err(e) => {
                    p.segments_failed += 1;
                    p.complete = false;
                    p.problems.push(format!("segment {}: {e}", u.segment_id));
                }
            }
        });
    }

    pub fn dump_done(&self, took: Duration, manifest: Option<String>) {
        self.with(|r| {
            let bytes: u64 = r.collections.iter().flat_map(|c| &c.partitions).map(|p| p.bytes_in).sum();
            r.dump_seconds = Some(secs(took));
            r.dump_mb_per_second = Some(((bytes as f64 / 1e6 / took.as_secs_f64().max(1e-9)) * 10.0).round() / 10.0);
            r.manifest = manifest;
        });
    }

    pub fn warnings(&self, w: impl IntoIterator<Item = String>) {
        self.with(|r| r.warnings.extend(w));
    }

    /// The 2.x names a load planned for a collection and its partitions.
    pub fn planned(&self, c: &engine::CollectionLoad) {
        self.with(|r| {
            for p in &c.partitions {
                let row = Self::partition(r, &c.source_name, &p.tag);
                row.name = Some(p.name.clone());
                row.expected_rows = Some(p.rows);
            }
            if let Some(col) = r.collections.iter_mut().find(|x| x.name == c.source_name) {
                col.target = Some(c.name.clone());
            }
        });
    }

    fn collection<'r>(r: &'r mut Report, source_name: &str) -> Option<&'r mut CollectionRow> {
        r.collections.iter_mut().find(|x| x.name == source_name)
    }

    /// File groups `migrate` imported while the dump went on (the load that follows finds them
    /// imported already): counted as imported by this run.
    pub fn imported_early(&self, c: &engine::CollectionLoad, l: &engine::LoadReport) {
        let mut early = self.early.lock().unwrap();
        let e = early.entry(c.source_name.clone()).or_insert_with(no_imports);
        e.imported += l.imported;
        e.rows += l.rows;
        for (name, n) in &l.partition_rows {
            match e.partition_rows.iter_mut().find(|(p, _)| p == name) {
                Some((_, m)) => *m += n,
                None => e.partition_rows.push((name.clone(), *n)),
            }
        }
    }

    pub fn loaded(&self, c: &engine::CollectionLoad, took: Duration, result: Result<&engine::LoadReport, String>) {
        let early = self.early.lock().unwrap().get(&c.source_name).cloned().unwrap_or_else(no_imports);
        let result = result.map(|l| engine::LoadReport {
            imported: l.imported + early.imported,
            skipped: l.skipped.saturating_sub(early.imported),
            rows: l.rows + early.rows,
            partition_rows: l
                .partition_rows
                .iter()
                .map(|(name, n)| (name.clone(), n + early.partition_rows.iter().find(|(p, _)| p == name).map_or(0, |(_, m)| *m)))
                .collect(),
        });
        let result = result.as_ref().map_err(Clone::clone);
        self.with(|r| {
            let Some(col) = Self::collection(r, &c.source_name) else { return };
            col.load_seconds = Some(secs(took));
            match result {
                Ok(l) => {
                    for p in col.partitions.iter_mut() {
                        if let Some((_, n)) = l.partition_rows.iter().find(|(name, _)| Some(name) == p.name.as_ref()) {
                            p.imported = Some(*n);
                        }
                    }
                    col.groups_imported = Some(l.imported);
                    col.groups_already_imported = Some(l.skipped);
                    col.imported = Some(l.rows);
                    col.import_rows_per_second = Some((l.rows as f64 / took.as_secs_f64().max(1e-9)).round());
                }
                Err(e) => col.error = Some(format!("load: {e}")),
            }
        });
    }

    pub fn verified(&self, c: &engine::CollectionLoad, result: Result<&engine::VerifyReport, String>) {
        self.with(|r| {
            match result {
                Ok(v) => {
                    let mut all = v.expected_rows == v.actual_rows;
                    for (pv, pl) in v.partitions.iter().zip(&c.partitions) {
                        let ok = pv.problems.is_empty() && pv.expected_rows == pv.actual_rows;
                        all &= ok;
                        let row = Self::partition(r, &c.source_name, &pl.tag);
                        row.milvus_rows = Some(pv.actual_rows);
                        row.verified = Some(ok);
                        row.problems.extend(pv.problems.iter().cloned());
                    }
                    if let Some(col) = Self::collection(r, &c.source_name) {
                        col.verified = Some(all);
                    }
                }
                Err(e) => {
                    if let Some(col) = Self::collection(r, &c.source_name) {
                        col.verified = Some(false);
                        col.error = Some(format!("verify: {e}"));
                    }
                }
            }
        });
    }

    /// Records what reconciling a collection found; `repair`: what this pass fixed.
    pub fn reconciled(&self, c: &engine::CollectionLoad, result: Result<&engine::ReconcileReport, String>, repair: bool) {
        self.with(|r| match result {
            Ok(v) => {
                let mut all = v.rows_elsewhere == 0;
                for (pv, pl) in v.partitions.iter().zip(&c.partitions) {
                    let clean = pv.missing.count + pv.duplicated.count + pv.extra.count + pv.differing.count == 0;
                    all &= clean;
                    let row = Self::partition(r, &c.source_name, &pl.tag);
                    row.expected_rows = Some(pv.expected_rows);
                    row.milvus_rows = Some(pv.milvus_rows);
                    row.verified = Some(clean);
                    row.reconciled = Some(Reconciled {
                        missing: (&pv.missing).into(),
                        duplicated: (&pv.duplicated).into(),
                        extra: (&pv.extra).into(),
                        differing: (&pv.differing).into(),
                        repaired: repair.then_some(pv.repaired),
                        deleted: repair.then_some(pv.deleted),
                    });
                }
                if let Some(col) = Self::collection(r, &c.source_name) {
                    col.verified = Some(all);
                    col.rows_elsewhere = Some(v.rows_elsewhere);
                }
            }
            Err(e) => {
                if let Some(col) = Self::collection(r, &c.source_name) {
                    col.verified = Some(false);
                    col.error = Some(format!("verify --full: {e}"));
                }
            }
        });
    }

    /// Sets the outcome, writes the JSON file and prints the table. A report that cannot be
    /// written is an error of its own, printed, but does not change the command's exit code.
    pub fn finish(&self, outcome: Result<(), String>, path: &Path) {
        let text = self.with(|r| {
            r.seconds = secs(self.started.elapsed());
            match outcome {
                Ok(()) => r.outcome = "succeeded".into(),
                Err(e) => {
                    r.outcome = "failed".into();
                    r.error = Some(e);
                }
            }
            if !r.collections.is_empty() {
                print_table(r);
            }
            serde_json::to_vec_pretty(&*r).expect("report serializes")
        });
        match super::job::write_atomically(path, &text) {
            Ok(()) => println!("report: {}", path.display()),
            Err(e) => eprintln!("error: the run report could not be written: {e:#}"),
        }
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

fn print_table(r: &Report) {
    println!("summary ({}):", r.outcome);
    println!(
        "  {:<20} {:<20} {:>10} {:>8} {:>8} {:>10} {:>10} {:>10} {:>9}",
        "collection", "partition", "source", "deleted", "dropped", "dumped", "imported", "in milvus", "verified"
    );
    let mut by: BTreeMap<&str, &CollectionRow> = BTreeMap::new();
    for c in &r.collections {
        by.insert(&c.name, c);
    }
    for c in by.values() {
        for p in &c.partitions {
            let part = p.name.clone().unwrap_or_else(|| if p.tag.is_empty() { "_default".into() } else { p.tag.clone() });
            let dumped = if !p.in_dump { "-".into() } else if p.complete { p.dumped.to_string() } else { format!("{}!", p.dumped) };
            let verified = match p.verified {
                Some(true) => "ok",
                Some(false) => "MISMATCH",
                None => "-",
            };
            println!(
                "  {:<20} {:<20} {:>10} {:>8} {:>8} {:>10} {:>10} {:>10} {:>9}",
                c.target.as_deref().unwrap_or(&c.name),
                part,
                if !p.in_dump { "-".into() } else { p.source_rows.to_string() },
                if !p.in_dump { "-".into() } else { p.deleted.to_string() },
                if !p.in_dump { "-".into() } else { p.dropped.to_string() },
                dumped,
                opt(p.imported),
                opt(p.milvus_rows),
                verified
            );
        }
        if let Some(e) = &c.error {
            println!("  {:<20} {e}", c.target.as_deref().unwrap_or(&c.name));
        }
    }
    if r.collections.iter().flat_map(|c| &c.partitions).any(|p| !p.complete) {
        println!("  (! = not every segment of the partition was converted)");
    }
}

/// `milvus-migration-<command>-<UTC time>-<pid>.json` in the working directory: the time to the
/// millisecond and the process id, so two runs started in the same second (a second terminal, a
/// cron retry) never write the same file.
pub fn default_path(command: &str) -> PathBuf {
    let t = humantime::format_rfc3339_millis(SystemTime::now()).to_string().replace(':', "");
    PathBuf::from(format!("milvus-migration-{command}-{t}-{}.json", std::process::id()))
}
