//! The `milvus` capability: the target Milvus 2.x, through one shared tonic connection.

pub mod client;
mod keys;
mod read_ts;
mod write;

use std::sync::Arc;

use super::HostError;
use crate::bindings::{target as wit, types};
pub use client::{ImportPaths, MilvusConn, MilvusConnection};

#[derive(Default)]
pub struct MilvusState {
    pub conn: Option<Arc<MilvusConn>>,
    /// The job's leases on the dump: a run that lost one changes no rows (see lease.rs).
    pub fence: crate::lease::Fence,
}

impl MilvusState {
    fn conn(&self) -> Result<&MilvusConn, HostError> {
        self.conn
            .as_deref()
            .ok_or_else(|| types::Error::AccessDenied("no Milvus connection was granted to this unit of work".into()).into())
    }

    /// The connection, for a call that changes rows: refused, unsent, once the job's lease on
    /// the dump was taken over by another run.
    async fn writer(&self) -> Result<&MilvusConn, HostError> {
        let conn = self.conn()?;
        self.fence.check().await.map_err(types::Error::AccessDenied)?;
        Ok(conn)
    }
}

impl wit::Host for MilvusState {
    async fn server_version(&mut self) -> Result<String, HostError> {
        Ok(self.conn()?.server_version().await?)
    }
    async fn describe_collection(&mut self, name: String) -> Result<Option<wit::CollectionInfo>, HostError> {
        Ok(self.conn()?.describe_collection(&name).await?)
    }
    async fn create_collection(&mut self, collection: wit::NewCollection) -> Result<(), HostError> {
        Ok(self.conn()?.create_collection(&collection).await?)
    }
    async fn create_partition(&mut self, collection: String, partition: String) -> Result<(), HostError> {
        Ok(self.conn()?.create_partition(&collection, &partition).await?)
    }
    async fn describe_indexes(&mut self, collection: String) -> Result<Vec<wit::IndexInfo>, HostError> {
        Ok(self.conn()?.describe_indexes(&collection).await?)
    }
    async fn create_index(&mut self, collection: String, index: wit::IndexInfo) -> Result<(), HostError> {
        Ok(self.conn()?.create_index(&collection, &index).await?)
    }
    async fn load(&mut self, collection: String) -> Result<(), HostError> {
        Ok(self.conn()?.load(&collection).await?)
    }
    async fn import_files(&mut self, collection: String, partition: String, files: Vec<String>) -> Result<i64, HostError> {
        for f in &files {
            super::blob_store::checked_path(f)?;
        }
        Ok(self.writer().await?.import_files(&collection, &partition, &files).await?)
    }
    async fn await_import(&mut self, task: i64) -> Result<wit::ImportOutcome, HostError> {
        Ok(self.conn()?.await_import(task).await?)
    }
    async fn list_imports(&mut self, collection: String) -> Result<Vec<wit::ImportTask>, HostError> {
        Ok(self.conn()?.list_imports(&collection).await?)
    }
    async fn insert(&mut self, collection: String, partition: String, rows: wit::Rows) -> Result<u64, HostError> {
        Ok(self.writer().await?.insert(&collection, &partition, &rows).await?)
    }
    async fn upsert(&mut self, collection: String, partition: String, rows: wit::Rows) -> Result<u64, HostError> {
        Ok(self.writer().await?.upsert(&collection, &partition, &rows).await?)
    }
    async fn flush(&mut self, collection: String) -> Result<(), HostError> {
        Ok(self.conn()?.flush(&collection).await?)
    }
    async fn stored_rows(&mut self, collection: String, partition: Option<String>) -> Result<u64, HostError> {
        Ok(self.conn()?.stored_rows(&collection, partition.as_deref()).await?)
    }
    async fn count_rows(&mut self, collection: String, partition: Option<String>) -> Result<u64, HostError> {
        Ok(self.conn()?.count_rows(&collection, partition.as_deref()).await?)
    }
    async fn get_entities(
        &mut self,
        collection: String,
        id_field: String,
        vector_field: String,
        ids: Vec<i64>,
    ) -> Result<Vec<wit::Entity>, HostError> {
        Ok(self.conn()?.get_entities(&collection, &id_field, &vector_field, &ids).await?)
    }
    async fn count_in_range(&mut self, collection: String, partition: Option<String>, id_field: String, range: wit::KeyRange) -> Result<u64, HostError> {
        Ok(self.conn()?.count_in_range(&collection, partition.as_deref(), &id_field, &range).await?)
    }
    async fn count_ids(&mut self, collection: String, partition: Option<String>, id_field: String, ids: Vec<i64>) -> Result<u64, HostError> {
        Ok(self.conn()?.count_ids(&collection, partition.as_deref(), &id_field, &ids).await?)
    }
    async fn query_range(
        &mut self,
        collection: String,
        partition: Option<String>,
        id_field: String,
        vector_field: String,
        range: wit::KeyRange,
        limit: u32,
    ) -> Result<Vec<wit::Entity>, HostError> {
        Ok(self.conn()?.query_range(&collection, partition.as_deref(), &id_field, &vector_field, &range, limit).await?)
    }
    async fn delete_ids(&mut self, collection: String, partition: String, id_field: String, ids: Vec<i64>) -> Result<u64, HostError> {
        Ok(self.writer().await?.delete_ids(&collection, &partition, &id_field, &ids).await?)
    }
}

impl types::Host for MilvusState {
    fn convert_error(&mut self, e: HostError) -> wasmtime::Result<types::Error> {
        super::convert(e)
    }
}
