//! `migrate`: export (a meta.json of the source, kept next to the dump), dump while importing
//! what is finished, then the whole load with index, load and verify. The phases' sequence for
//! every front end.

use crate::exit::Failure;
use crate::job::{self, model::Job};
use crate::run_report::Recorder;

pub async fn run(s: &Job, rec: &Recorder) -> Result<(), Failure> {
    // The export step: a meta.json of the source, kept next to the dump.
    if let (Some(meta), job::model::StoreSpec::Local(out)) = (&s.meta, &s.target) {
        if let (_, Some(db)) = job::dump::meta_source(meta, &s.source).await? {
            job::export::export(db, out, &s.units).await?;
        }
    }
    // Import while dumping (one process only: workers share units across machines).
    let early = if s.share.is_none() {
        if let job::model::StoreSpec::Local(out) = &s.target {
            std::fs::create_dir_all(out).map_err(|e| Failure::Usage(anyhow::anyhow!("target.local.outputDir {}: {e}", out.display())))?;
        }
        let (sandbox, caps) = job::load::connect(s).await?;
        Some(job::overlap::EarlyLoad::start(s, sandbox, caps, rec))
    } else {
        None
    };
    let mut load = s.clone();
    if let Some(out) = job::dump::run_before_load(s, rec, early).await? {
        if out.groups > 0 {
            println!("imported {} group(s) ({} rows) while dumping", out.groups, out.rows);
        }
        if let Some(why) = &out.stopped {
            println!("importing while dumping stopped: {why}");
        }
        if let Some((on_exists, collections)) = out.load_as {
            load.collection.on_exists = on_exists;
            load.collections = collections;
        }
    }
    job::load::run(&load, true, rec).await
}
