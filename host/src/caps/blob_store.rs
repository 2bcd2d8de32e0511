//! The `blob-store` capability: byte stores granted by role, through object_store.
//!
//! Every guest path is checked before it reaches a store: relative, `/`-separated, no empty,
//! `.` or `..` segment. Each role's store is already rooted (a `LocalFileSystem` with a prefix,
//! or a bucket behind a `PrefixStore`), so a valid path cannot leave its root.

use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, WriteMultipart};
use wasmtime::component::{Resource, ResourceTable};

use super::HostError;
use crate::bindings::{blob_store, types};

/// Largest read served in one call, whatever the guest asks for.
pub const MAX_READ_CHUNK: u32 = 16 << 20;
/// Bytes buffered per multipart part before it is handed to the store.
const WRITE_PART: usize = 8 << 20;
/// Parts in flight per writer.
const WRITE_PARALLEL: usize = 2;

/// A store granted for one role, and a name for it in messages.
#[derive(Clone)]
pub struct Grant {
    pub store: Arc<dyn ObjectStore>,
    /// Where the root is, for the user (a local path or a bucket URL). Never sent to the guest.
    pub display: String,
}

/// The stores a unit of work may use.
#[derive(Clone, Default)]
pub struct Grants {
    pub source: Option<Grant>,
    pub target: Option<Grant>,
}

pub struct BlobStoreState {
    table: ResourceTable,
    grants: Grants,
}

impl BlobStoreState {
    pub fn new(grants: Grants) -> Self {
        BlobStoreState { table: ResourceTable::new(), grants }
    }

    fn grant(&self, role: blob_store::Role) -> Result<&Grant, HostError> {
        let g = match role {
            blob_store::Role::Source => self.grants.source.as_ref(),
            blob_store::Role::Target => self.grants.target.as_ref(),
        };
        g.ok_or_else(|| types::Error::AccessDenied(format!("no {} store was granted to this unit of work", role_name(role))).into())
    }
}

pub struct BlobReader {
    role: blob_store::Role,
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
    pos: u64,
}

pub struct BlobWriter {
    upload: Option<WriteMultipart>,
    path: String,
    bytes: u64,
    crc: u32,
}

fn role_name(role: blob_store::Role) -> &'static str {
    match role {
        blob_store::Role::Source => "source",
        blob_store::Role::Target => "target",
    }
}

/// A guest path as an object_store path, or `access-denied` naming what is wrong with it.
pub fn checked_path(path: &str) -> Result<Path, types::Error> {
    let deny = |why: &str| Err(types::Error::AccessDenied(format!("path {path:?} refused: {why}")));
    if path.is_empty() {
        return deny("empty");
    }
    if path.starts_with('/') || path.contains('\\') || path.contains(':') {
        return deny("paths must be relative to the store root");
    }
    if path.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return deny("empty, `.` and `..` segments are not allowed");
    }
    Path::parse(path).or_else(|e| deny(&e.to_string()))
}

/// object_store errors as guest errors: the semantic variants keep their meaning.
pub fn store_error(role: blob_store::Role, path: &str, e: object_store::Error) -> types::Error {
    let what = format!("{} {path}", role_name(role));
    match e {
        object_store::Error::NotFound { .. } => types::Error::NotFound(what),
        object_store::Error::PermissionDenied { source, .. } | object_store::Error::Unauthenticated { source, .. } => {
            types::Error::AccessDenied(format!("{what}: {source}"))
        }
        object_store::Error::NotImplemented => types::Error::Unsupported(format!("{what}: not supported by this store")),
        other => types::Error::Unavailable(format!("{what}: {other}")),
    }
}

impl blob_store::Host for BlobStoreState {
    async fn open(&mut self, role: blob_store::Role, path: String) -> Result<Resource<BlobReader>, HostError> {
        let p = checked_path(&path)?;
        let store = self.grant(role)?.store.clone();
        let meta = store.head(&p).await.map_err(|e| store_error(role, &path, e))?;
        Ok(self.table.push(BlobReader { role, store, path: p, size: meta.size, pos: 0 })?)
    }

    async fn create(&mut self, role: blob_store::Role, path: String) -> Result<Resource<BlobWriter>, HostError> {
        let p = checked_path(&path)?;
        let store = self.grant(role)?.store.clone();
        let upload = store.put_multipart(&p).await.map_err(|e| store_error(role, &path, e))?;
        let upload = WriteMultipart::new_with_chunk_size(upload, WRITE_PART);
        Ok(self.table.push(BlobWriter { upload: Some(upload), path, bytes: 0, crc: 0 })?)
    }

    async fn stat(&mut self, role: blob_store::Role, path: String) -> Result<Option<u64>, HostError> {
        let p = checked_path(&path)?;
        match self.grant(role)?.store.head(&p).await {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_error(role, &path, e).into()),
        }
    }

    async fn list_dir(&mut self, role: blob_store::Role, prefix: String) -> Result<Vec<String>, HostError> {
        let p = checked_path(&prefix)?;
        let listing = match self.grant(role)?.store.list_with_delimiter(Some(&p)).await {
            Ok(l) => l,
            Err(object_store::Error::NotFound { .. }) => return Ok(vec![]),
            Err(e) => return Err(store_error(role, &prefix, e).into()),
        };
        let mut names: Vec<String> = listing
            .common_prefixes
            .iter()
            .chain(listing.objects.iter().map(|o| &o.location))
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    async fn delete(&mut self, role: blob_store::Role, path: String) -> Result<(), HostError> {
        let p = checked_path(&path)?;
        match self.grant(role)?.store.delete(&p).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_error(role, &path, e).into()),
        }
    }
}

impl blob_store::HostReader for BlobStoreState {
    async fn size(&mut self, this: Resource<BlobReader>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&this)?.size)
    }

    async fn read(&mut self, this: Resource<BlobReader>, max: u32) -> Result<Vec<u8>, HostError> {
        let r = self.table.get_mut(&this)?;
        let n = (max.min(MAX_READ_CHUNK) as u64).min(r.size - r.pos);
        if n == 0 {
            return Ok(Vec::new());
        }
        let range = r.pos..r.pos + n;
        let bytes = r.store.get_range(&r.path, range).await.map_err(|e| store_error(r.role, r.path.as_ref(), e))?;
        r.pos += bytes.len() as u64;
        Ok(Vec::from(bytes))
    }

    async fn seek(&mut self, this: Resource<BlobReader>, offset: u64) -> Result<(), HostError> {
        let r = self.table.get_mut(&this)?;
        if offset > r.size {
            return Err(types::Error::Other(format!("seek to {offset} past the end ({}) of {}", r.size, r.path)).into());
        }
        r.pos = offset;
        Ok(())
    }

    async fn drop(&mut self, this: Resource<BlobReader>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl blob_store::HostWriter for BlobStoreState {
    async fn write(&mut self, this: Resource<BlobWriter>, bytes: Vec<u8>) -> Result<(), HostError> {
        let w = self.table.get_mut(&this)?;
        let Some(upload) = w.upload.as_mut() else {
            return Err(types::Error::Other(format!("write to {} after finish", w.path)).into());
        };
        upload
            .wait_for_capacity(WRITE_PARALLEL)
            .await
            .map_err(|e| store_error(blob_store::Role::Target, &w.path, e))?;
        w.crc = crc32c::crc32c_append(w.crc, &bytes);
        w.bytes += bytes.len() as u64;
        upload.put(bytes.into());
        Ok(())
    }

    async fn finish(&mut self, this: Resource<BlobWriter>) -> Result<blob_store::Written, HostError> {
        let w = self.table.get_mut(&this)?;
        let Some(upload) = w.upload.take() else {
            return Err(types::Error::Other(format!("{} finished twice", w.path)).into());
        };
        upload.finish().await.map_err(|e| store_error(blob_store::Role::Target, &w.path, e))?;
        Ok(blob_store::Written { path: w.path.clone(), bytes: w.bytes, crc32c: w.crc })
    }

    /// A writer dropped before `finish` aborts its upload: nothing appears under its path.
    async fn drop(&mut self, this: Resource<BlobWriter>) -> wasmtime::Result<()> {
        let w = self.table.delete(this)?;
        if let Some(upload) = w.upload {
            if let Err(e) = upload.abort().await {
                tracing::warn!("could not abort the unfinished upload of {}: {e}", w.path);
            }
        }
        Ok(())
    }
}

impl types::Host for BlobStoreState {
    fn convert_error(&mut self, e: HostError) -> wasmtime::Result<types::Error> {
        super::convert(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_outside_the_root_are_refused() {
        for bad in ["", "/etc/passwd", "a/../../b", "..", "a//b", "./a", "a/.", "c:\\x", "a\\b"] {
            assert!(matches!(checked_path(bad), Err(types::Error::AccessDenied(_))), "{bad:?}");
        }
        assert_eq!(checked_path("c/_default/1/id.npy").unwrap().as_ref(), "c/_default/1/id.npy");
    }
}
