//! `serve`: the multi-tenant migration service. One process: the HTTP API, a job store in
//! SQLite, and the same phases and sandbox as the CLI; every unit of every job still runs in a
//! fresh, limited instance. See README "Service".

mod api;
pub mod config;
pub mod events;
pub mod request;
mod runner;
mod store;

use std::path::Path;
use std::sync::Arc;

use crate::exit::Failure;

pub async fn run(config_path: &Path) -> Result<(), Failure> {
    let config = Arc::new(config::ServeConfig::load(config_path).map_err(Failure::Usage)?);
    let store = store::JobStore::open(&config.data_dir).await.map_err(Failure::Run)?;
    // No job shows `running` without an owner: those of a previous process are interrupted,
    // and queued again where the tenant's quota says autoResume.
    let auto = |tenant: &str| config.tenants.iter().any(|t| t.id == tenant && t.quotas.auto_resume);
    let queued = store.recover(auto).await.map_err(Failure::Run)?;
    let runner = runner::Runner::new(store, config.clone()).map_err(Failure::Run)?;
    for id in queued {
        runner.start(id);
    }
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| Failure::Usage(anyhow::anyhow!("listen {}: {e}", config.listen)))?;
    let addr = listener.local_addr().map_err(|e| Failure::Run(e.into()))?;
    println!("serving on http://{addr} ({} tenant(s), job store {})", config.tenants.len(), config.data_dir.join("jobs.sqlite").display());
    axum::serve(listener, api::router(runner)).await.map_err(|e| Failure::Run(e.into()))
}
