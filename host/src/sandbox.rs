//! The sandbox: the component compiled once per process, and a fresh, limited instance for every
//! unit of work.
//!
//! Limits per instance: linear memory (StoreLimits; a refused grow traps), a CPU budget in
//! fuel (wasm instructions, deterministic; the guest yields to the runtime every 10M so a
//! spinning unit never holds a thread) and, in the service, a wall clock. A unit that hits one
//! fails alone; the host and the other units carry on.
//!
//! The CLI compiles the component per run with on-demand allocation. The service compiles it
//! once ([`Compiled`] with a pool) and gives each job a [`UnitPolicy`]: the tenant's ceiling on
//! every unit's limits, its wall clock, and its way through the process-wide [`UnitGate`].

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimitsBuilder};

use crate::bindings::{self, engine, types, Migrator, MigratorPre};
use crate::caps::blob_store::{BlobStoreState, Grants};
use crate::caps::meta_db::{MetaDbState, MetaSource};
use crate::caps::milvus::{MilvusConn, MilvusState};
use crate::caps::report::{ReportState, Warnings};
use crate::progress::{Note, Observer, Progress};
use crate::state::HostState;
use crate::unit_gate::{Permit, TenantGate};

/// The component, built from `guest/` by build.rs.
pub const GUEST_COMPONENT: &[u8] = include_bytes!(env!("GUEST_COMPONENT_PATH"));

/// Fuel the guest may burn between yields to the async runtime.
const FUEL_YIELD_INTERVAL: u64 = 10_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: usize,
    /// Wasm instructions per unit of work (about 1e9 a second).
    pub fuel: u64,
}

/// Why a unit of work failed.
#[derive(Debug, thiserror::Error)]
pub enum UnitError {
    /// The engine reported an expected failure (bad data, missing file, ...).
    #[error("{}", crate::caps::describe(.0))]
    Engine(types::Error),
    /// The instance was stopped: a limit, or a bug in the engine.
    #[error("{0}")]
    Trap(String),
}

/// Everything one unit of work is granted.
#[derive(Clone, Default)]
pub struct Caps {
    pub meta: Option<Arc<dyn MetaSource>>,
    pub grants: Grants,
    pub milvus: Option<Arc<MilvusConn>>,
    /// The job's leases, checked before each change to Milvus' rows.
    pub fence: crate::lease::Fence,
    pub progress: Option<Progress>,
    pub warnings: Warnings,
    /// Names the unit in log lines.
    pub unit: String,
    /// A memory limit and a CPU budget for this unit instead of the configured ones (a unit
    /// whose need is known from the plan).
    pub memory_bytes: Option<usize>,
    pub fuel: Option<u64>,
}

/// Where compiled components are cached: `$MILVUS_MIGRATION_CACHE`, else the user's cache dir.
fn cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("MILVUS_MIGRATION_CACHE") {
        return Some(d.into());
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("milvus-migration"))
}

/// The component, compiled. Compiling takes ~0.15 s; loading a cached compilation ~1 ms, so the
/// first run stores it under a key of the component's bytes and this engine's settings.
fn load_component(engine: &Engine) -> anyhow::Result<Component> {
    let mut h = DefaultHasher::new();
    GUEST_COMPONENT.hash(&mut h);
    engine.precompile_compatibility_hash().hash(&mut h);
    let cached = cache_dir().map(|d| d.join(format!("engine-{:016x}.cwasm", h.finish())));
    if let Some(path) = cached.as_ref().filter(|p| p.is_file()) {
        // SAFETY: the file is one this program serialized into the user's own cache, keyed by
        // the exact component and engine configuration; a file that fails to load is recompiled.
        match unsafe { Component::deserialize_file(engine, path) } {
            Ok(c) => return Ok(c),
            Err(e) => tracing::debug!("ignoring cached component {}: {e}", path.display()),
        }
    }
    let component = Component::new(engine, GUEST_COMPONENT)
        .map_err(anyhow::Error::from)
        .context("compiling the migration component")?;
    if let (Some(path), Ok(bytes)) = (cached, component.serialize()) {
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let stored = path.parent().map(std::fs::create_dir_all).transpose().is_ok()
            && std::fs::write(&tmp, bytes).is_ok()
            && std::fs::rename(&tmp, &path).is_ok();
        if !stored {
            let _ = std::fs::remove_file(&tmp);
            tracing::debug!("could not cache the compiled component at {}", path.display());
        }
    }
    Ok(component)
}

/// The compiled component with its linker: once per process in the service, shared by every
/// job's sandbox.
pub struct Compiled {
    engine: Engine,
    pre: MigratorPre<HostState>,
}

/// The pooling allocator's size: slots for this many instances at once, each memory up to
/// `max_memory_bytes` (the real per-unit cap stays in StoreLimits).
#[derive(Debug, Clone, Copy)]
pub struct Pool {
    pub units: u32,
    pub max_memory_bytes: usize,
}

/// Core instances, memories and tables one instance of the component may hold (the same
/// numbers cap the store).
const CORE_INSTANCES_PER_UNIT: u32 = 16;
const MEMORIES_PER_UNIT: u32 = 4;
const TABLES_PER_UNIT: u32 = 16;

impl Compiled {
    /// Compiles (or loads the cached compilation of) the component. With `pool`, instances come
    /// from the pooling allocator: their memory is reserved up front and reused, which makes a
    /// fresh instance per unit cheap for a server.
    pub fn new(pool: Option<Pool>) -> anyhow::Result<Arc<Self>> {
        let mut cfg = Config::new();
        cfg.wasm_component_model(true);
        cfg.consume_fuel(true);
        if let Some(p) = pool {
            let mut pc = PoolingAllocationConfig::default();
            pc.total_component_instances(p.units)
                .total_core_instances(p.units * CORE_INSTANCES_PER_UNIT)
                .total_memories(p.units * MEMORIES_PER_UNIT)
                .total_tables(p.units * TABLES_PER_UNIT)
                .total_stacks(p.units)
                .max_memory_size(p.max_memory_bytes);
            cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pc));
        }
        let engine = Engine::new(&cfg)?;
        let component = load_component(&engine)?;
        let mut linker = Linker::<HostState>::new(&engine);
        // The component's world, and the WASI std imports, with an empty context (state.rs).
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        bindings::meta_db::add_to_linker::<HostState, HasSelf<MetaDbState>>(&mut linker, |s| &mut s.meta)?;
        bindings::blob_store::add_to_linker::<HostState, HasSelf<BlobStoreState>>(&mut linker, |s| &mut s.blobs)?;
        bindings::report::add_to_linker::<HostState, HasSelf<ReportState>>(&mut linker, |s| &mut s.report)?;
        bindings::target::add_to_linker::<HostState, HasSelf<MilvusState>>(&mut linker, |s| &mut s.milvus)?;
        let pre = MigratorPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Arc::new(Compiled { engine, pre }))
    }
}

/// How a job's units run when it shares the process with other tenants' jobs (the service).
/// The default (the CLI) compiles its own component and has no ceiling, gate or wall clock.
#[derive(Clone, Default)]
pub struct UnitPolicy {
    pub compiled: Option<Arc<Compiled>>,
    /// Every unit waits here for its tenant's turn and a free slot.
    pub gate: Option<TenantGate>,
    /// The most any unit may take, budgets the host computes itself included (the tenant's quota).
    pub ceiling: Option<Limits>,
    pub wall_clock: Option<Duration>,
    /// Hears each unit start and end, and the phases' progress.
    pub observer: Observer,
}

impl std::fmt::Debug for UnitPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnitPolicy")
            .field("shared", &self.compiled.is_some())
            .field("gated", &self.gate.is_some())
            .field("ceiling", &self.ceiling)
            .field("wall_clock", &self.wall_clock)
            .finish()
    }
}

/// What a unit's trap says when its wall clock ran out.
const WALL_CLOCK: &str = "wall-clock limit of the unit reached";

/// One unit's instance, with what it was given.
struct Unit {
    name: String,
    store: Store<HostState>,
    inst: Migrator,
    limits: Limits,
    _slot: Option<Permit>,
}

pub struct Sandbox {
    compiled: Arc<Compiled>,
    limits: Limits,
    policy: UnitPolicy,
}

impl Sandbox {
    /// A sandbox of its own (the CLI; tests).
    pub fn new(limits: Limits) -> anyhow::Result<Self> {
        Self::with_policy(limits, &UnitPolicy::default())
    }

    /// A job's sandbox: the shared compilation, gate and ceiling of `policy` when it has them.
    pub fn with_policy(limits: Limits, policy: &UnitPolicy) -> anyhow::Result<Self> {
        let compiled = match &policy.compiled {
            Some(c) => c.clone(),
            None => Compiled::new(None)?,
        };
        Ok(Sandbox { compiled, limits, policy: policy.clone() })
    }

    /// The most a unit may get (the tenant's quota in the service).
    pub fn ceiling(&self) -> Option<Limits> {
        self.policy.ceiling
    }

    /// A fresh instance with its own store, limits and capabilities, once the gate lets it run.
    /// A unit that cannot even be instantiated is reported as failed like any other.
    async fn instance(&self, caps: Caps) -> Result<Unit, UnitError> {
        let name = caps.unit.clone();
        self.instantiate(caps).await.map_err(|e| {
            let e = UnitError::Trap(format!("{e:#}"));
            self.policy.observer.note(|| Note::Unit { name, ok: Some(false), error: Some(e.to_string()) });
            e
        })
    }

    async fn instantiate(&self, caps: Caps) -> anyhow::Result<Unit> {
        let slot = match &self.policy.gate {
            Some(g) => Some(g.acquire().await),
            None => None,
        };
        self.policy.observer.note(|| Note::Unit { name: caps.unit.clone(), ok: None, error: None });
        let mut limits = Limits {
            memory_bytes: caps.memory_bytes.unwrap_or(self.limits.memory_bytes),
            fuel: caps.fuel.unwrap_or(self.limits.fuel),
        };
        if let Some(c) = self.policy.ceiling {
            limits = Limits { memory_bytes: limits.memory_bytes.min(c.memory_bytes), fuel: limits.fuel.min(c.fuel) };
        }
        let name = caps.unit.clone();
        let state = HostState {
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes)
                .instances(CORE_INSTANCES_PER_UNIT as usize)
                .tables(TABLES_PER_UNIT as usize)
                .memories(MEMORIES_PER_UNIT as usize)
                .trap_on_grow_failure(true)
                .build(),
            meta: MetaDbState { source: caps.meta },
            blobs: BlobStoreState::new(caps.grants),
            milvus: MilvusState { conn: caps.milvus, fence: caps.fence },
            report: ReportState { unit: caps.unit, progress: caps.progress, warnings: caps.warnings, error: None },
            wasi: wasmtime_wasi::WasiCtx::builder().build(),
            table: wasmtime::component::ResourceTable::new(),
        };
        let mut store = Store::new(&self.compiled.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_fuel(limits.fuel)?;
        store.fuel_async_yield_interval(Some(FUEL_YIELD_INTERVAL))?;
        let inst = self.compiled.pre.instantiate_async(&mut store).await?;
        Ok(Unit { name, store, inst, limits, _slot: slot })
    }

    /// A call, stopped when the unit's wall clock runs out (the call yields often, so the
    /// timer gets its turn even while the guest computes).
    async fn timed<T>(&self, call: impl std::future::Future<Output = wasmtime::Result<T>>) -> wasmtime::Result<T> {
        match self.policy.wall_clock {
            None => call.await,
            Some(d) => tokio::time::timeout(d, call).await.unwrap_or_else(|_| Err(wasmtime::Error::msg(WALL_CLOCK))),
        }
    }

    /// Turns a call's outcome into the unit's result, naming limits when one was hit.
    fn outcome<T>(&self, r: wasmtime::Result<Result<T, types::Error>>, unit: &Unit) -> Result<T, UnitError> {
        let r = self.judge(r, unit);
        self.policy.observer.note(|| Note::Unit {
            name: unit.name.clone(),
            ok: Some(r.is_ok()),
            error: r.as_ref().err().map(|e| e.to_string()),
        });
        r
    }

    fn judge<T>(&self, r: wasmtime::Result<Result<T, types::Error>>, unit: &Unit) -> Result<T, UnitError> {
        let (store, limits) = (&unit.store, unit.limits);
        // In the service the limits are the tenant's quota, not the user's setting.
        let (memory_key, fuel_key) = match self.policy.ceiling {
            Some(_) => ("the tenant's quota memoryMiBPerUnit", "the tenant's quota fuelPerUnit"),
            None => ("raise migration.sandbox.memoryMiB", "raise migration.sandbox.fuel"),
        };
        match r {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(UnitError::Engine(e)),
            Err(trap) => {
                let text = format!("{trap:?}");
                let why = if text.contains("all fuel consumed") {
                    format!("CPU budget exceeded ({} units of fuel; {fuel_key})", limits.fuel)
                } else if text.contains("growing memory") || text.contains("memory.grow") {
                    format!("memory limit exceeded ({} MiB; {memory_key})", limits.memory_bytes >> 20)
                } else if text.contains(WALL_CLOCK) {
                    let limit = self.policy.wall_clock.unwrap_or_default();
                    format!("{WALL_CLOCK} ({limit:?}; the tenant's quota wallClockSecondsPerUnit)")
                } else {
                    // The root cause (e.g. the unreachable instruction a panic ends in) and what the
                    // engine reported before it (the panic message); the wasm backtrace only with -v.
                    tracing::debug!("engine trap: {trap:?}");
                    let said = store.data().report.error.as_deref().map(|m| format!("; it said: {m}")).unwrap_or_default();
                    format!("the migration engine stopped (a bug; please report it): {}{said}", trap.root_cause())
                };
                Err(UnitError::Trap(why))
            }
        }
    }

    pub async fn export_meta(&self, caps: Caps) -> Result<String, UnitError> {
        let mut u = self.instance(caps).await?;
        let r = self.timed(u.inst.milvus_migration_engine().call_export_meta(&mut u.store)).await;
        self.outcome(r, &u)
    }

    pub async fn plan_dump(
        &self,
        caps: Caps,
        meta: &engine::MetaSource,
        opts: &engine::DumpOptions,
    ) -> Result<engine::DumpPlan, UnitError> {
        let mut u = self.instance(caps).await?;
        let r = self.timed(u.inst.milvus_migration_engine().call_plan_dump(&mut u.store, meta, opts)).await;
        self.outcome(r, &u)
    }

    pub async fn dump_segment(
        &self,
        caps: Caps,
        unit: &engine::SegmentUnit,
        opts: &engine::DumpOptions,
    ) -> Result<engine::SegmentReport, UnitError> {
        let mut u = self.instance(caps).await?;
        let r = self.timed(u.inst.milvus_migration_engine().call_dump_segment(&mut u.store, unit, opts)).await;
        self.outcome(r, &u)
    }

    pub async fn dump_pack(
        &self,
        caps: Caps,
        units: &[engine::SegmentUnit],
        output_dir: &str,
        opts: &engine::DumpOptions,
    ) -> Result<engine::PackReport, UnitError> {
        let mut u = self.instance(caps).await?;
        let r = self.timed(u.inst.milvus_migration_engine().call_dump_pack(&mut u.store, units, output_dir, opts)).await;
        self.outcome(r, &u)
    }

    pub async fn find_duplicates(
        &self,
        caps: Caps,
        units: &[engine::SegmentUnit],
        opts: &engine::DumpOptions,
    ) -> Result<engine::DuplicateReport, UnitError> {
        let mut u = self.instance(caps).await?;
        let r = self.timed(u.inst.milvus_migration_engine().call_find_duplicates(&mut u.store, units, opts)).await;
        self.outcome(r, &u)
    }

    pub async fn invalidate_manifest(&self, caps: Caps) -> Result<(), UnitError> {
        let mut u = self.instance(caps).await?;
        let r = self.timed(u.inst.milvus_migration_engine().call_invalidate_manifest(&mut u.store)).await;
        self.outcome(r, &u)
    }

    pub async fn write_manifest(
        &self,
        caps: Caps,
        plan: &engine::DumpPlan,
        opts: &engine::DumpOptions,
        reports: &[engine::SegmentReport],
        pack_files: &[Vec<bindings::blob_store::Written>],
    ) -> Result<bindings::blob_store::Written, UnitError> {
        let mut u = self.instance(caps).await?;
        let r = self.timed(u.inst.milvus_migration_engine().call_write_manifest(&mut u.store, plan, opts, reports, pack_files)).await;
        self.outcome(r, &u)
    }

    pub async fn plan_load(&self, caps: Caps, opts: &engine::LoadOptions) -> Result<engine::LoadPlan, UnitError> {
        let mut u = self.instance(caps).await?;
        let r = self.timed(u.inst.milvus_migration_engine().call_plan_load(&mut u.store, opts)).await;
        self.outcome(r, &u)
    }

    pub async fn plan_early_load(
        &self,
        caps: Caps,
        plan: &engine::DumpPlan,
        dump_options: &engine::DumpOptions,
        reports: &[Option<engine::SegmentReport>],
        pack_files: &[Option<Vec<bindings::blob_store::Written>>],
        load_options: &engine::LoadOptions,
    ) -> Result<engine::LoadPlan, UnitError> {
        let mut u = self.instance(caps).await?;
        let r = self.timed(u.inst.milvus_migration_engine().call_plan_early_load(&mut u.store, plan, dump_options, reports, pack_files, load_options)).await;
        self.outcome(r, &u)
    }

    pub async fn load_collection(&self, caps: Caps, c: &engine::CollectionLoad) -> Result<engine::LoadReport, UnitError> {
        let mut u = self.instance(caps).await?;
        let r = self.timed(u.inst.milvus_migration_engine().call_load_collection(&mut u.store, c)).await;
        self.outcome(r, &u)
    }

    pub async fn verify_collection(&self, caps: Caps, c: &engine::CollectionLoad) -> Result<engine::VerifyReport, UnitError> {
        let mut u = self.instance(caps).await?;
        let r = self.timed(u.inst.milvus_migration_engine().call_verify_collection(&mut u.store, c)).await;
        self.outcome(r, &u)
    }

    pub async fn reconcile_collection(&self, caps: Caps, c: &engine::CollectionLoad, o: engine::ReconcileOptions) -> Result<engine::ReconcileReport, UnitError> {
        let mut u = self.instance(caps).await?;
        let r = self.timed(u.inst.milvus_migration_engine().call_reconcile_collection(&mut u.store, c, o)).await;
        self.outcome(r, &u)
    }

    pub async fn plan_migration(
        &self,
        caps: Caps,
        meta: &engine::MetaSource,
        dopts: &engine::DumpOptions,
        lopts: &engine::LoadOptions,
    ) -> Result<engine::MigrationPlan, UnitError> {
        let mut u = self.instance(caps).await?;
        let r = self.timed(u.inst.milvus_migration_engine().call_plan_migration(&mut u.store, meta, dopts, lopts)).await;
        self.outcome(r, &u)
    }

    pub async fn cleanup_collection(&self, caps: Caps, c: &engine::CollectionLoad) -> Result<u32, UnitError> {
        let mut u = self.instance(caps).await?;
        let r = self.timed(u.inst.milvus_migration_engine().call_cleanup_collection(&mut u.store, c)).await;
        self.outcome(r, &u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A meta database that answers after a long pause (a unit stuck waiting on its host).
    struct SlowMeta;

    #[async_trait::async_trait]
    impl crate::caps::meta_db::MetaSource for SlowMeta {
        async fn list_tables(&self) -> Result<Vec<String>, types::Error> {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(vec![])
        }
        async fn query(&self, _: &str, _: &[types::SqlValue]) -> Result<Vec<Vec<types::SqlValue>>, types::Error> {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(vec![])
        }
    }

    /// The service's wall clock stops a unit however it spends its time, and names the quota;
    /// the unit's slot is free again afterwards.
    #[tokio::test]
    async fn a_unit_past_its_wall_clock_is_stopped_and_frees_its_slot() {
        let gate = crate::unit_gate::UnitGate::new(1);
        let policy = UnitPolicy {
            gate: Some(gate.tenant("t", 1)),
            ceiling: Some(Limits { memory_bytes: 64 << 20, fuel: 1_000_000_000 }),
            wall_clock: Some(Duration::from_millis(300)),
            ..Default::default()
        };
        let sandbox = Sandbox::with_policy(Limits { memory_bytes: 64 << 20, fuel: 1_000_000_000 }, &policy).unwrap();
        let caps = Caps { meta: Some(Arc::new(SlowMeta)), unit: "export".into(), ..Default::default() };
        let started = std::time::Instant::now();
        let r = sandbox.export_meta(caps).await;
        let Err(UnitError::Trap(msg)) = r else { panic!("expected the wall clock, got {r:?}") };
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        assert_eq!(msg, "wall-clock limit of the unit reached (300ms; the tenant's quota wallClockSecondsPerUnit)");
        assert_eq!(gate.running("t"), 0);
    }

    /// Benchmark, not a test (scripts/bench-serve.sh runs it): a fresh instance's creation,
    /// on-demand (the CLI) against the pooling allocator (the service), 500 each.
    #[tokio::test]
    #[ignore = "a benchmark: scripts/bench-serve.sh"]
    async fn bench_instance_creation() {
        let limits = Limits { memory_bytes: 256 << 20, fuel: 1_000_000_000 };
        for (label, pool) in [("on-demand", None), ("pooled", Some(Pool { units: 16, max_memory_bytes: 256 << 20 }))] {
            let sandbox = Sandbox::with_policy(limits, &UnitPolicy { compiled: Some(Compiled::new(pool).unwrap()), ..Default::default() }).unwrap();
            let mut took = Vec::new();
            for _ in 0..500 {
                let t = std::time::Instant::now();
                let u = sandbox.instance(Caps::default()).await.unwrap();
                took.push(t.elapsed());
                drop(u);
            }
            took.sort();
            println!("new instance ({label}): median {:?}, p99 {:?}", took[250], took[495]);
        }
    }

    /// The component has no stderr: a panic reaches the host through `report.log` just before
    /// the trap, and the unit's failure message carries it.
    #[tokio::test]
    async fn a_guest_panic_is_reported_through_the_log_and_named_in_the_failure() {
        let sandbox = Sandbox::new(Limits { memory_bytes: 64 << 20, fuel: 1_000_000_000 }).unwrap();
        // A pack naming a unit the plan does not have: no host sends this, and the engine
        // indexes by it (a bug's stand-in).
        let plan = engine::DumpPlan {
            collections: vec![],
            units: vec![],
            packs: vec![engine::PackPlan { output_dir: "c/_default/pack-1-2".into(), units: vec![7] }],
            warnings: vec![],
        };
        let opts = engine::DumpOptions {
            collections: vec![],
            id_field: "id".into(),
            vector_field: "data".into(),
            read_chunk: 1 << 20,
            max_group_bytes: 1 << 30,
            bad_data: engine::BadData::Fail,
            keep_last: false,
            pack: true,
            format: engine::FileFormat::Numpy,
        };
        let r = sandbox.write_manifest(Caps { unit: "manifest".into(), ..Default::default() }, &plan, &opts, &[], &[vec![]]).await;
        let Err(UnitError::Trap(msg)) = r else { panic!("expected a trap, got {r:?}") };
        assert!(msg.starts_with("the migration engine stopped (a bug; please report it)"), "{msg}");
        assert!(msg.contains("it said: engine panic (a bug, please report it): panicked at"), "{msg}");
        assert!(msg.contains("index out of bounds: the len is 0 but the index is 7"), "{msg}");
    }
}
