//! What one store (one unit of work) holds: an empty WASI context and each capability's state.

use wasmtime::component::ResourceTable;
use wasmtime::StoreLimits;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::caps::blob_store::BlobStoreState;
use crate::caps::meta_db::MetaDbState;
use crate::caps::milvus::MilvusState;
use crate::caps::report::ReportState;

pub struct HostState {
    /// No preopens, env, args or sockets: the guest's std links against WASI but reaches nothing.
    pub wasi: WasiCtx,
    pub wasi_table: ResourceTable,
    pub limits: StoreLimits,
    pub meta: MetaDbState,
    pub blobs: BlobStoreState,
    pub milvus: MilvusState,
    pub report: ReportState,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.wasi_table }
    }
}
