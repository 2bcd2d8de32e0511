//! What one store (one unit of work) holds: its limits and each capability's state.

use wasmtime::component::ResourceTable;
use wasmtime::StoreLimits;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::caps::blob_store::BlobStoreState;
use crate::caps::meta_db::MetaDbState;
use crate::caps::milvus::MilvusState;
use crate::caps::report::ReportState;

pub struct HostState {
    pub limits: StoreLimits,
    pub meta: MetaDbState,
    pub blobs: BlobStoreState,
    pub milvus: MilvusState,
    pub report: ReportState,
    /// The WASI that Rust's std on wasm32-wasip2 imports (stdio, environment, exit), empty: no
    /// environment variables, arguments, files, sockets or host stdio; output is discarded.
    pub wasi: WasiCtx,
    pub table: ResourceTable,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

