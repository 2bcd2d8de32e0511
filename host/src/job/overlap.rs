//! `migrate` imports while it dumps: each unit of work the dump finishes (a segment, or a pack)
//! is sent here, and its file groups are imported at once, while the dump goes on, so that a
//! migration takes about the longer of dump and import instead of their sum. The full load that
//! follows the dump imports only what is left (the journal knows what is in), then builds the
//! index, loads and verifies.
//!
//! Collections that exist before the migration are decided first, as `migration.onExists`
//! says: with `fail`, nothing is imported early (the load then stops with the usual message);
//! with `skip`, they are left out of both; otherwise, and for every collection this run creates,
//! the early imports and the full load append.

use tokio::sync::mpsc;

use crate::bindings::{blob_store, engine};
use crate::caps::milvus::MilvusConn;
use crate::run_report::Recorder;
use crate::sandbox::{Caps, Sandbox};
use crate::job::model::{OnExists, Job};

/// What the dump tells the early load.
pub enum Event {
    /// The plan, before any unit runs.
    Plan(engine::DumpPlan, engine::DumpOptions),
    /// A unit finished: a segment (its index in the plan) with its report, or a pack.
    Segment(usize, engine::SegmentReport),
    Pack(usize, engine::PackReport),
}

/// The early load, running beside the dump.
pub struct EarlyLoad {
    tx: mpsc::UnboundedSender<Event>,
    task: tokio::task::JoinHandle<Outcome>,
}

/// How the full load after the dump must run, and what the early load did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// `migration.onExists` and the collections (1.x names) for the full load, when the early
    /// load created or appended to collections (else the settings stand).
    pub load_as: Option<(OnExists, Vec<String>)>,
    pub groups: u32,
    pub rows: u64,
    /// Why early imports stopped, if they did (the full load retries what they left).
    pub stopped: Option<String>,
}

impl EarlyLoad {
    /// Starts the early load for `s`, connected to Milvus through `caps`.
    pub fn start(s: &Job, sandbox: Sandbox, caps: Caps, rec: &Recorder) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let (s, rec) = (s.clone(), rec.clone());
        let task = tokio::spawn(async move { run(&s, &sandbox, &caps, rec, rx).await });
        EarlyLoad { tx, task }
    }

    /// Where the dump sends its plan and finished units.
    pub fn sender(&self) -> mpsc::UnboundedSender<Event> {
        self.tx.clone()
    }

    /// Waits for the imports submitted so far (the dump has ended).
    pub async fn finish(self) -> Outcome {
        drop(self.tx);
        self.task.await.unwrap_or_else(|e| Outcome { stopped: Some(format!("the early load panicked: {e}")), ..Default::default() })
    }
}

/// The 2.x names of the plan's collections that exist already.
async fn existing(conn: &MilvusConn, s: &Job, plan: &engine::DumpPlan) -> Result<Vec<String>, String> {
    let mut found = Vec::new();
    for c in &plan.collections {
        let target = s.collection.renames.iter().find(|(from, _)| *from == c.name).map_or(c.name.as_str(), |(_, to)| to.as_str());
        if conn.describe_collection(target).await.map_err(|e| e.to_string())?.is_some() {
            found.push(c.name.clone());
        }
    }
    Ok(found)
}

async fn run(s: &Job, sandbox: &Sandbox, caps: &Caps, rec: Recorder, mut rx: mpsc::UnboundedReceiver<Event>) -> Outcome {
    let mut out = Outcome::default();
    let Some(Event::Plan(plan, dopts)) = rx.recv().await else { return out };
    let conn = caps.milvus.clone().expect("the early load has a Milvus connection");
    let before = match existing(&conn, s, &plan).await {
        Ok(found) => found,
        Err(e) => {
            out.stopped = Some(e);
            return out;
        }
    };
    let names: Vec<String> = plan.collections.iter().map(|c| c.name.clone()).filter(|n| !before.contains(n)).collect();
    let mut opts = super::load::load_options(s);
    match s.collection.on_exists {
        OnExists::Fail if !before.is_empty() => return drain(rx, out).await,
        OnExists::Skip if !before.is_empty() => {
            for n in &before {
                tracing::warn!("collection {n:?} (1.x name) already exists in the target; skipped (migration.onExists: skip)");
            }
            if names.is_empty() {
                return drain(rx, out).await;
            }
            opts.collections = names.clone();
            out.load_as = Some((OnExists::Append, names));
        }
        _ => out.load_as = Some((OnExists::Append, s.collections.clone())),
    }
    opts.on_exists = engine::OnExists::Append;
    while let Some(first) = rx.recv().await {
        // What finished since the last round: this event and any queued behind it.
        let mut new_reports: Vec<Option<engine::SegmentReport>> = vec![None; plan.units.len()];
        let mut new_files: Vec<Option<Vec<blob_store::Written>>> = vec![None; plan.packs.len()];
        let mut next = Some(first);
        while let Some(ev) = next {
            match ev {
                Event::Segment(k, r) => new_reports[k] = Some(r),
                Event::Pack(p, r) => {
                    for (&k, seg) in plan.packs[p].units.iter().zip(r.segments) {
                        new_reports[k as usize] = Some(seg);
                    }
                    new_files[p] = Some(r.files);
                }
                Event::Plan(..) => {}
            }
            next = rx.try_recv().ok();
        }
        if out.stopped.is_some() {
            continue;
        }
        if let Err(e) = import(sandbox, caps, &plan, &dopts, &new_reports, &new_files, &opts, &rec, &mut out).await {
            tracing::warn!("importing during the dump stopped ({e}); the load after the dump takes over");
            out.stopped = Some(e);
        }
    }
    out
}

/// One round: the load plan of the newly finished units, imported without index or load.
#[allow(clippy::too_many_arguments)]
async fn import(
    sandbox: &Sandbox,
    caps: &Caps,
    plan: &engine::DumpPlan,
    dopts: &engine::DumpOptions,
    reports: &[Option<engine::SegmentReport>],
    pack_files: &[Option<Vec<blob_store::Written>>],
    opts: &engine::LoadOptions,
    rec: &Recorder,
    out: &mut Outcome,
) -> Result<(), String> {
    let load = sandbox
        .plan_early_load(Caps { unit: "early load plan".into(), ..caps.clone() }, plan, dopts, reports, pack_files, opts)
        .await
        .map_err(|e| e.to_string())?;
    for c in &load.collections {
        let c = engine::CollectionLoad { index: None, load_after: false, ..c.clone() };
        let r = sandbox.load_collection(Caps { unit: format!("{} (early)", c.name), ..caps.clone() }, &c).await.map_err(|e| e.to_string())?;
        rec.imported_early(&c, &r);
        out.groups += r.imported;
        out.rows += r.rows;
    }
    Ok(())
}

/// No early imports: let the dump send its events into the void.
async fn drain(mut rx: mpsc::UnboundedReceiver<Event>, out: Outcome) -> Outcome {
    while rx.recv().await.is_some() {}
    out
}

/// The early load's handle, for the dump: None outside `migrate`.
pub type Sender = Option<mpsc::UnboundedSender<Event>>;

/// Sends an event when there is an early load; a closed one is ignored.
pub fn send(tx: &Sender, ev: impl FnOnce() -> Event) {
    if let Some(tx) = tx {
        let _ = tx.send(ev());
    }
}
