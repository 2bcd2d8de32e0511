//! Runs jobs: the same phases as the CLI (job/), on the job model each request resolves into.
//! A tenant runs at most its quota of jobs at once; a cancelled job's task is aborted (the
//! import journal makes the next attempt import nothing twice).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use super::config::ServeConfig;
use super::request::{JobRequest, Kind};
use super::store::{JobStore, State};
use crate::exit::Failure;
use crate::job;
use crate::run_report::Recorder;

pub struct Runner {
    pub store: JobStore,
    pub config: Arc<ServeConfig>,
    /// Per tenant: permits for running jobs.
    slots: HashMap<String, Arc<Semaphore>>,
    /// Jobs that are queued or running, by id: sending `true` stops one.
    tasks: Mutex<HashMap<String, tokio::sync::watch::Sender<bool>>>,
}

impl Runner {
    pub fn new(store: JobStore, config: Arc<ServeConfig>) -> Arc<Self> {
        let slots = config.tenants.iter().map(|t| (t.id.clone(), Arc::new(Semaphore::new(t.quotas.running_jobs)))).collect();
        Arc::new(Runner { store, config, slots, tasks: Mutex::new(HashMap::new()) })
    }

    /// Starts a queued job: it waits for one of its tenant's slots, then runs. Each job runs on
    /// a thread of its own (the phases' futures are driven by `block_on`, as the CLI drives
    /// them), with its own small runtime for the tasks they spawn.
    pub fn start(self: &Arc<Self>, id: String) {
        let me = self.clone();
        let (stop, cancel) = job::model::Cancel::new();
        let mine = stop.clone();
        self.tasks.lock().unwrap().insert(id.clone(), stop);
        let spawned = std::thread::Builder::new().name(format!("job-{id}")).spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("job {id}: no runtime: {e}");
                    return;
                }
            };
            // A panic in a phase is a bug: the job fails with it instead of staying `running`.
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                rt.block_on(async {
                    if let Err(e) = me.run(&id, cancel).await {
                        tracing::error!("job {id}: {e:#}");
                        let _ = me.store.set_state(&id, State::Failed, Some(&format!("{e:#}"))).await;
                    }
                })
            }));
            if let Err(p) = ran {
                let why = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
                let _ = rt.block_on(me.store.set_state(&id, State::Failed, Some(&format!("the service failed running the job (a bug): {why}"))));
            }
            // Only its own entry: a resumed attempt may have registered already.
            let mut tasks = me.tasks.lock().unwrap();
            if tasks.get(&id).is_some_and(|t| t.same_channel(&mine)) {
                tasks.remove(&id);
            }
            drop(tasks);
            rt.shutdown_timeout(std::time::Duration::from_secs(5));
        });
        if let Err(e) = spawned {
            tracing::error!("cannot start a job thread: {e}");
        }
    }

    /// Asks a queued or running job to stop: it becomes `cancelling`, and `cancelled` once its
    /// phase has stopped and released the dump's lease. True when it was queued or running.
    pub async fn cancel(&self, id: &str) -> anyhow::Result<bool> {
        let stop = self.tasks.lock().unwrap().get(id).cloned();
        let Some(stop) = stop else { return Ok(false) };
        self.store.set_state(id, State::Cancelling, None).await?;
        let _ = stop.send(true);
        Ok(true)
    }

    async fn run(&self, id: &str, cancel: job::model::Cancel) -> anyhow::Result<()> {
        let rec = self.store.get_any(id).await?.ok_or_else(|| anyhow::anyhow!("no such job"))?;
        let tenant = self.config.tenants.iter().find(|t| t.id == rec.tenant).ok_or_else(|| anyhow::anyhow!("tenant {:?} is gone from serve.yaml", rec.tenant))?;
        let request: JobRequest = serde_json::from_value(rec.request.clone())?;
        let slots = self.slots.get(&tenant.id).expect("a semaphore per tenant").clone();
        let _slot = tokio::select! {
            s = slots.acquire_owned() => s?,
            _ = cancel.cancelled() => {
                self.store.set_state(id, State::Cancelled, Some("cancelled before it started")).await?;
                return Ok(());
            }
        };
        // The grants may have changed since the job was submitted: resolve again.
        let mut job = match request.resolve(tenant) {
            Ok(j) => j,
            Err(e) => {
                self.store.set_state(id, State::Failed, Some(&format!("{e:?}"))).await?;
                return Ok(());
            }
        };
        job.cancel = cancel.clone();
        self.store.set_state(id, State::Running, None).await?;
        let command = format!("{:?}", request.kind).to_lowercase();
        let recorder = Recorder::new(&command, None);
        let result: Result<(), Failure> = match request.kind {
            Kind::Migrate => job::migrate::run(&job, &recorder).await,
            Kind::Dump => job::dump::run(&job, &recorder).await,
            Kind::Load => job::load::run(&job, true, &recorder).await,
            Kind::Verify => job::load::verify(&job, &recorder).await,
            Kind::Plan => job::plan::run(&job, true).await,
            Kind::Export => match (&job.meta, &job.target) {
                (Some(meta), job::model::StoreSpec::Local(out)) => job::export::run(meta, "source.meta", out).await,
                _ => Err(Failure::Usage(anyhow::anyhow!("export writes meta.json into a file:// staging store"))),
            },
        };
        // The same run report the CLI writes, kept with the job.
        let dir = self.config.data_dir.join("reports");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{id}-{}.json", rec.attempt));
        recorder.finish(result.as_ref().map(|_| ()).map_err(Failure::message), &path);
        if let Ok(text) = std::fs::read_to_string(&path) {
            self.store.set_report(id, &text).await?;
        }
        match result {
            _ if cancel.is_cancelled() => self.store.set_state(id, State::Cancelled, Some("cancelled; resume continues it")).await?,
            Ok(()) => self.store.set_state(id, State::Succeeded, None).await?,
            Err(f) => self.store.set_state(id, State::Failed, Some(&f.message())).await?,
        }
        Ok(())
    }
}
