//! The sandbox: the component compiled once per process, and a fresh, limited instance for every
//! unit of work.
//!
//! Limits per instance: linear memory (StoreLimits; a refused grow traps) and a CPU budget in
//! fuel (wasm instructions, deterministic). A unit that hits either fails alone; the host and
//! the other units carry on.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store, StoreLimitsBuilder};

use crate::bindings::{self, engine, types, Migrator, MigratorPre};
use crate::caps::blob_store::{BlobStoreState, Grants};
use crate::caps::meta_db::{MetaDbState, MetaSource};
use crate::caps::milvus::{MilvusConn, MilvusState};
use crate::caps::report::{ReportState, Warnings};
use crate::progress::Progress;
use crate::state::HostState;

/// The component, built from `guest/` by build.rs.
pub const GUEST_COMPONENT: &[u8] = include_bytes!(env!("GUEST_COMPONENT_PATH"));

/// Fuel the guest may burn between yields to the async runtime.
const FUEL_YIELD_INTERVAL: u64 = 10_000_000;

#[derive(Debug, Clone, Copy)]
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

pub struct Sandbox {
    engine: Engine,
    pre: MigratorPre<HostState>,
    limits: Limits,
}

impl Sandbox {
    pub fn new(limits: Limits) -> anyhow::Result<Self> {
        let mut cfg = Config::new();
        cfg.wasm_component_model(true);
        cfg.consume_fuel(true);
        let engine = Engine::new(&cfg)?;
        let component = load_component(&engine)?;
        let mut linker = Linker::<HostState>::new(&engine);
        // Nothing else: the component imports exactly its world (no WASI; see guest/src/lib.rs).
        bindings::meta_db::add_to_linker::<HostState, HasSelf<MetaDbState>>(&mut linker, |s| &mut s.meta)?;
        bindings::blob_store::add_to_linker::<HostState, HasSelf<BlobStoreState>>(&mut linker, |s| &mut s.blobs)?;
        bindings::report::add_to_linker::<HostState, HasSelf<ReportState>>(&mut linker, |s| &mut s.report)?;
        bindings::target::add_to_linker::<HostState, HasSelf<MilvusState>>(&mut linker, |s| &mut s.milvus)?;
        let pre = MigratorPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Sandbox { engine, pre, limits })
    }

    /// A fresh instance with its own store, limits and capabilities.
    async fn instance(&self, caps: Caps) -> anyhow::Result<(Store<HostState>, Migrator)> {
        let memory = caps.memory_bytes.unwrap_or(self.limits.memory_bytes);
        let fuel = caps.fuel.unwrap_or(self.limits.fuel);
        let state = HostState {
            limits: StoreLimitsBuilder::new()
                .memory_size(memory)
                .instances(16)
                .tables(16)
                .memories(4)
                .trap_on_grow_failure(true)
                .build(),
            meta: MetaDbState { source: caps.meta },
            blobs: BlobStoreState::new(caps.grants),
            milvus: MilvusState { conn: caps.milvus },
            report: ReportState { unit: caps.unit, progress: caps.progress, warnings: caps.warnings, error: None },
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_fuel(fuel)?;
        store.fuel_async_yield_interval(Some(FUEL_YIELD_INTERVAL))?;
        let inst = self.pre.instantiate_async(&mut store).await?;
        Ok((store, inst))
    }

    /// Turns a call's outcome into the unit's result, naming limits when one was hit.
    fn outcome<T>(
        &self,
        r: wasmtime::Result<Result<T, types::Error>>,
        store: &Store<HostState>,
    ) -> Result<T, UnitError> {
        match r {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(UnitError::Engine(e)),
            Err(trap) => {
                let text = format!("{trap:?}");
                let why = if text.contains("all fuel consumed") {
                    format!("CPU budget exceeded ({} units of fuel; raise migration.sandbox.fuel)", self.limits.fuel)
                } else if text.contains("growing memory") || text.contains("memory.grow") {
                    format!(
                        "memory limit exceeded ({} MiB; raise migration.sandbox.memoryMiB)",
                        self.limits.memory_bytes >> 20
                    )
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
        let (mut store, inst) = self.instance(caps).await.map_err(|e| UnitError::Trap(format!("{e:#}")))?;
        let r = inst.milvus_migration_engine().call_export_meta(&mut store).await;
        self.outcome(r, &store)
    }

    pub async fn plan_dump(
        &self,
        caps: Caps,
        meta: &engine::MetaSource,
        opts: &engine::DumpOptions,
    ) -> Result<engine::DumpPlan, UnitError> {
        let (mut store, inst) = self.instance(caps).await.map_err(|e| UnitError::Trap(format!("{e:#}")))?;
        let r = inst.milvus_migration_engine().call_plan_dump(&mut store, meta, opts).await;
        self.outcome(r, &store)
    }

    pub async fn dump_segment(
        &self,
        caps: Caps,
        unit: &engine::SegmentUnit,
        opts: &engine::DumpOptions,
    ) -> Result<engine::SegmentReport, UnitError> {
        let (mut store, inst) = self.instance(caps).await.map_err(|e| UnitError::Trap(format!("{e:#}")))?;
        let r = inst.milvus_migration_engine().call_dump_segment(&mut store, unit, opts).await;
        self.outcome(r, &store)
    }

    pub async fn dump_pack(
        &self,
        caps: Caps,
        units: &[engine::SegmentUnit],
        output_dir: &str,
        opts: &engine::DumpOptions,
    ) -> Result<engine::PackReport, UnitError> {
        let (mut store, inst) = self.instance(caps).await.map_err(|e| UnitError::Trap(format!("{e:#}")))?;
        let r = inst.milvus_migration_engine().call_dump_pack(&mut store, units, output_dir, opts).await;
        self.outcome(r, &store)
    }

    pub async fn find_duplicates(
        &self,
        caps: Caps,
        units: &[engine::SegmentUnit],
        opts: &engine::DumpOptions,
    ) -> Result<engine::DuplicateReport, UnitError> {
        let (mut store, inst) = self.instance(caps).await.map_err(|e| UnitError::Trap(format!("{e:#}")))?;
        let r = inst.milvus_migration_engine().call_find_duplicates(&mut store, units, opts).await;
        self.outcome(r, &store)
    }

    pub async fn invalidate_manifest(&self, caps: Caps) -> Result<(), UnitError> {
        let (mut store, inst) = self.instance(caps).await.map_err(|e| UnitError::Trap(format!("{e:#}")))?;
        let r = inst.milvus_migration_engine().call_invalidate_manifest(&mut store).await;
        self.outcome(r, &store)
    }

    pub async fn write_manifest(
        &self,
        caps: Caps,
        plan: &engine::DumpPlan,
        opts: &engine::DumpOptions,
        reports: &[engine::SegmentReport],
        pack_files: &[Vec<bindings::blob_store::Written>],
    ) -> Result<bindings::blob_store::Written, UnitError> {
        let (mut store, inst) = self.instance(caps).await.map_err(|e| UnitError::Trap(format!("{e:#}")))?;
        let r = inst.milvus_migration_engine().call_write_manifest(&mut store, plan, opts, reports, pack_files).await;
        self.outcome(r, &store)
    }

    pub async fn plan_load(&self, caps: Caps, opts: &engine::LoadOptions) -> Result<engine::LoadPlan, UnitError> {
        let (mut store, inst) = self.instance(caps).await.map_err(|e| UnitError::Trap(format!("{e:#}")))?;
        let r = inst.milvus_migration_engine().call_plan_load(&mut store, opts).await;
        self.outcome(r, &store)
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
        let (mut store, inst) = self.instance(caps).await.map_err(|e| UnitError::Trap(format!("{e:#}")))?;
        let r = inst.milvus_migration_engine().call_plan_early_load(&mut store, plan, dump_options, reports, pack_files, load_options).await;
        self.outcome(r, &store)
    }

    pub async fn load_collection(&self, caps: Caps, c: &engine::CollectionLoad) -> Result<engine::LoadReport, UnitError> {
        let (mut store, inst) = self.instance(caps).await.map_err(|e| UnitError::Trap(format!("{e:#}")))?;
        let r = inst.milvus_migration_engine().call_load_collection(&mut store, c).await;
        self.outcome(r, &store)
    }

    pub async fn verify_collection(&self, caps: Caps, c: &engine::CollectionLoad) -> Result<engine::VerifyReport, UnitError> {
        let (mut store, inst) = self.instance(caps).await.map_err(|e| UnitError::Trap(format!("{e:#}")))?;
        let r = inst.milvus_migration_engine().call_verify_collection(&mut store, c).await;
        self.outcome(r, &store)
    }

    pub async fn plan_migration(
        &self,
        caps: Caps,
        meta: &engine::MetaSource,
        dopts: &engine::DumpOptions,
        lopts: &engine::LoadOptions,
    ) -> Result<engine::MigrationPlan, UnitError> {
        let (mut store, inst) = self.instance(caps).await.map_err(|e| UnitError::Trap(format!("{e:#}")))?;
        let r = inst.milvus_migration_engine().call_plan_migration(&mut store, meta, dopts, lopts).await;
        self.outcome(r, &store)
    }

    pub async fn cleanup_collection(&self, caps: Caps, c: &engine::CollectionLoad) -> Result<u32, UnitError> {
        let (mut store, inst) = self.instance(caps).await.map_err(|e| UnitError::Trap(format!("{e:#}")))?;
        let r = inst.milvus_migration_engine().call_cleanup_collection(&mut store, c).await;
        self.outcome(r, &store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        };
        let r = sandbox.write_manifest(Caps { unit: "manifest".into(), ..Default::default() }, &plan, &opts, &[], &[vec![]]).await;
        let Err(UnitError::Trap(msg)) = r else { panic!("expected a trap, got {r:?}") };
        assert!(msg.starts_with("the migration engine stopped (a bug; please report it)"), "{msg}");
        assert!(msg.contains("it said: engine panic (a bug, please report it): panicked at"), "{msg}");
        assert!(msg.contains("index out of bounds: the len is 0 but the index is 7"), "{msg}");
    }
}
