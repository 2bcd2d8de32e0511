//! The one place that runs `bindgen!` for the `migrator` world.

wasmtime::component::bindgen!({
    world: "migrator",
    path: "../wit",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "milvus:migration/blob-store.reader": crate::caps::blob_store::BlobReader,
        "milvus:migration/blob-store.writer": crate::caps::blob_store::BlobWriter,
    },
    trappable_error_type: { "milvus:migration/types.error" => crate::caps::HostError },
});

pub use exports::milvus::migration::engine;
pub use milvus::migration::{blob_store, meta_db, report, types};
/// The `milvus` interface (the package namespace is also called `milvus`).
pub use milvus::migration::milvus as target;
