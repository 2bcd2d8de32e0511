//! Runs jobs: the same phases as the CLI (job/), on the job model each request resolves into.
//! A tenant runs at most its quota of jobs at once; a cancelled job's task is aborted (the
//! import journal makes the next attempt import nothing twice). Every job's units share one
//! compiled component (pooling allocator) and pass one gate: `concurrentUnits` in all, the
//! tenant's quota each, tenants served in turn; each unit is capped by the tenant's quota.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use super::config::ServeConfig;
use super::events::{self, EventSink};
use super::request::{JobRequest, Kind, Reconcile};
use super::store::{JobStore, State};
use crate::exit::Failure;
use crate::job;
use crate::run_report::Recorder;
use crate::sandbox::{Compiled, Pool, UnitPolicy};
use crate::unit_gate::UnitGate;

pub struct Runner {
    pub store: JobStore,
    pub config: Arc<ServeConfig>,
    /// Per tenant: permits for running jobs.
    slots: HashMap<String, Arc<Semaphore>>,
    /// Jobs that are queued or running, by id: sending `true` stops one.
    tasks: Mutex<HashMap<String, tokio::sync::watch::Sender<bool>>>,
    compiled: Arc<Compiled>,
    gate: UnitGate,
    events: EventSink,
    /// Milvus clients per (tenant, granted connection), never shared across tenants; they
    /// live on the service's runtime, so every job's runtime can use them.
    clients: tokio::sync::Mutex<HashMap<(String, String), job::model::PooledMilvus>>,
    io: tokio::runtime::Handle,
}

impl Runner {
    pub fn new(store: JobStore, config: Arc<ServeConfig>) -> anyhow::Result<Arc<Self>> {
        let slots = config.tenants.iter().map(|t| (t.id.clone(), Arc::new(Semaphore::new(t.quotas.running_jobs)))).collect();
        let largest = config.tenants.iter().map(|t| t.quotas.ceiling().memory_bytes).max().unwrap_or(256 << 20);
        let started = std::time::Instant::now();
        let compiled = Compiled::new(Some(Pool { units: config.concurrent_units, max_memory_bytes: largest }))?;
        tracing::info!("component ready in {:?}: {} unit slot(s) pooled", started.elapsed(), config.concurrent_units);
        let gate = UnitGate::new(config.concurrent_units as usize);
        let events = EventSink::start(store.clone());
        let (clients, io) = (Default::default(), tokio::runtime::Handle::current());
        Ok(Arc::new(Runner { store, config, slots, tasks: Mutex::new(HashMap::new()), compiled, gate, events, clients, io }))
    }

    /// Starts a queued job: it waits for one of its tenant's slots, then runs. Each job runs on
    /// a thread of its own (the phases' futures are driven by `block_on`, as the CLI drives
    /// them), with its own small runtime for the tasks they spawn.
    pub fn start(self: &Arc<Self>, id: String) {
        let me = self.clone();
        let (stop, cancel) = job::model::Cancel::new();
        let mine = stop.clone();
        self.tasks.lock().unwrap().insert(id.clone(), stop);
        let spawned = std::thread::Builder::new().name(events::thread_name(&id)).spawn(move || {
            // Its threads carry the job's name: the log layer files their lines under it.
            let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name(events::thread_name(&id)).enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("job {id}: no runtime: {e}");
                    return;
                }
            };
            // A panic in a phase is a bug: the job fails with it instead of staying `running`.
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                rt.block_on(async {
                    let r = me.run(&id, cancel).await;
                    me.events.flush().await;
                    if let Err(e) = r {
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

    /// The tenant's client for its granted Milvus connection `name`: made once, on the
    /// service's runtime, then shared by the tenant's jobs.
    async fn milvus(&self, tenant: &str, name: &str, params: &job::model::MilvusConnection) -> anyhow::Result<job::model::PooledMilvus> {
        let key = (tenant.to_string(), name.to_string());
        if let Some(c) = self.clients.lock().await.get(&key) {
            return Ok(c.clone());
        }
        // Connected without the lock: one tenant's unreachable server never delays another's.
        let params = params.clone();
        let paths = crate::caps::milvus::ImportPaths::Bucket { prefix: String::new() };
        let conn = self.io.spawn(async move { crate::caps::milvus::MilvusConn::connect(&params, paths).await }).await??;
        let pooled = job::model::PooledMilvus(Arc::new(conn));
        Ok(self.clients.lock().await.entry(key).or_insert(pooled).clone())
    }

    /// The tenant's units running now.
    pub fn units_running(&self, tenant: &str) -> usize {
        self.gate.running(tenant)
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
        if let (Some(target), Some(params)) = (&request.target, &job.milvus) {
            match self.milvus(&tenant.id, &target.milvus, params).await {
                Ok(c) => job.milvus_client = Some(c),
                Err(e) => {
                    self.store.set_state(id, State::Failed, Some(&format!("{e:#}"))).await?;
                    return Ok(());
                }
            }
        }
        let q = tenant.quotas;
        job.units = UnitPolicy {
            compiled: Some(self.compiled.clone()),
            gate: Some(self.gate.tenant(&tenant.id, q.concurrent_units)),
            ceiling: Some(q.ceiling()),
            wall_clock: Some(std::time::Duration::from_secs(q.wall_clock_seconds_per_unit)),
            observer: self.events.observer(id),
        };
        self.store.set_state(id, State::Running, None).await?;
        let recorder = Recorder::new(request.kind.command(), None);
        let max_listed = Reconcile::max_listed(request.reconcile.as_ref());
        let result: Result<(), Failure> = match request.kind {
            Kind::Migrate => job::migrate::run(&job, &recorder).await,
            Kind::Dump => job::dump::run(&job, &recorder).await,
            Kind::Load => job::load::run(&job, true, &recorder).await,
            Kind::Verify => job::load::verify(&job, &recorder).await,
            Kind::VerifyFull => job::reconcile::run(&job, &recorder, max_listed, None).await,
            Kind::Repair => {
                let delete_extra = request.reconcile.as_ref().is_some_and(|r| r.delete_extra);
                job::reconcile::run(&job, &recorder, max_listed, Some(delete_extra)).await
            }
            Kind::Plan => job::plan::run(&job, true).await,
            Kind::Export => match (&job.meta, &job.target) {
                (Some(meta), job::model::StoreSpec::Local(out)) => job::export::run(meta, "source.meta", out, &job.units).await,
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
        // Its units' and log lines' events before its end.
        self.events.flush().await;
        match result {
            _ if cancel.is_cancelled() => self.store.set_state(id, State::Cancelled, Some("cancelled; resume continues it")).await?,
            Ok(()) => self.store.set_state(id, State::Succeeded, None).await?,
            Err(f) => self.store.set_state(id, State::Failed, Some(&f.message())).await?,
        }
        Ok(())
    }
}
