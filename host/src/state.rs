//! What one store (one unit of work) holds: its limits and each capability's state.

use wasmtime::StoreLimits;

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
}

