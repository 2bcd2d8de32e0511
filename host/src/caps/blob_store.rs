//! The `blob-store` capability: byte stores granted by role, through object_store.
//!
//! Every guest path is checked before it reaches a store: relative, `/`-separated, no empty,
//! `.` or `..` segment. Each role's store is already rooted (a `LocalFileSystem` with a prefix,
//! or a bucket behind a `PrefixStore`), so a valid path cannot leave its root.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use object_store::path::Path;
use object_store::{ObjectStore, WriteMultipart};
use wasmtime::component::{Resource, ResourceTable};

use super::value_check::FiniteF32;
use super::HostError;
use crate::bindings::{blob_store, types};

/// Largest read served in one call, whatever the guest asks for.
pub const MAX_READ_CHUNK: u32 = 16 << 20;
/// Block fetched for readers that ask in small pieces.
const MIN_READ_BLOCK: u64 = 1 << 20;
/// Block size of a reader first used by `append-from`.
const APPEND_BLOCK: u64 = 2 << 20;
/// Requests at least this large set the reader's block size.
const SMALL_READ: u64 = 64 << 10;
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
    /// Whether a create-only write (`PutMode::Create`) is atomic for certain: a local directory
    /// (link(2)). An S3-compatible server may check and then write (see lease.rs).
    pub atomic_create: bool,
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

/// A sequential reader that fetches the next block while the guest works on the current one.
pub struct BlobReader {
    role: blob_store::Role,
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
    /// Offset of the next byte the guest will get.
    pos: u64,
    /// Fetched bytes starting at `pos`.
    buffer: Bytes,
    /// The block after `buffer`, being fetched.
    ahead: Option<(u64, tokio::task::JoinHandle<object_store::Result<Bytes>>)>,
    /// Block size: the guest's first request (so row-aligned requests get whole blocks, uncopied).
    block: u64,
}

impl BlobReader {
    fn fetch(&self, at: u64) -> (u64, tokio::task::JoinHandle<object_store::Result<Bytes>>) {
        let (store, path) = (self.store.clone(), self.path.clone());
        let range = at..(at + self.block).min(self.size);
        (at, tokio::spawn(async move { store.get_range(&path, range).await }))
    }

    /// Moves to `offset`: within the buffer by slicing it, beyond it by dropping it.
    fn skip_to(&mut self, offset: u64) {
        if offset < self.pos {
            if let Some((_, h)) = self.ahead.take() {
                h.abort();
            }
            self.buffer = Bytes::new();
        } else if offset - self.pos <= self.buffer.len() as u64 {
            let _ = self.buffer.split_to((offset - self.pos) as usize);
        } else {
            self.buffer = Bytes::new();
        }
        self.pos = offset;
    }

    /// Up to `max` bytes from `pos`, keeping one block in flight.
    async fn next(&mut self, max: u64) -> object_store::Result<Bytes> {
        if self.block == 0 {
            if max >= SMALL_READ {
                self.block = max.min(MAX_READ_CHUNK as u64);
            } else if self.pos > 0 {
                self.block = MIN_READ_BLOCK;
            } else {
                // A header read at the start: fetch just that, so the reads after it stay aligned.
                let out = self.store.get_range(&self.path, 0..max).await?;
                self.pos = out.len() as u64;
                return Ok(out);
            }
        }
        if self.buffer.is_empty() {
            // The block fetched ahead serves when it covers `pos` (also after a skip).
            let (at, handle) = match self.ahead.take() {
                Some((at, h)) if at <= self.pos && self.pos < at + self.block => (at, h),
                Some((_, h)) => {
                    h.abort();
                    self.fetch(self.pos)
                }
                None => self.fetch(self.pos),
            };
            let mut block = handle.await.map_err(|e| object_store::Error::Generic { store: "reader", source: Box::new(e) })??;
            let skip = ((self.pos - at) as usize).min(block.len());
            let _ = block.split_to(skip);
            self.buffer = block;
        }
        let next_block = self.pos + self.buffer.len() as u64;
        if self.ahead.is_none() && next_block < self.size {
            self.ahead = Some(self.fetch(next_block));
        }
        let n = (max as usize).min(self.buffer.len());
        let out = if n == self.buffer.len() { std::mem::take(&mut self.buffer) } else { self.buffer.split_to(n) };
        self.pos += out.len() as u64;
        Ok(out)
    }
}

/// A writer whose checksum and upload run on their own task, so the guest's next chunk is
/// converted while this one is being written.
pub struct BlobWriter {
    tx: Option<mpsc::Sender<Chunk>>,
    task: Option<tokio::task::JoinHandle<object_store::Result<(u64, u32)>>>,
    path: String,
}

enum Chunk {
    Data(Bytes),
    Finish,
}

/// Chunks queued per writer before `write` waits.
const WRITE_QUEUE: usize = 4;

/// Checksums and uploads chunks in order; aborts the upload unless told to finish. A file that
/// ends within the first part is written with one plain PUT (no multipart upload for journal
/// entries, manifests and other small files: fewer requests, and no upload state on the server).
async fn upload_chunks(store: Arc<dyn ObjectStore>, path: Path, mut rx: mpsc::Receiver<Chunk>) -> object_store::Result<(u64, u32)> {
    let (mut bytes, mut crc) = (0u64, 0u32);
    let mut first: Vec<Bytes> = Vec::new();
    let mut first_len = 0usize;
    let mut upload: Option<WriteMultipart> = None;
    while let Some(chunk) = rx.recv().await {
        match chunk {
            Chunk::Data(b) => {
                crc = crc32c::crc32c_append(crc, &b);
                bytes += b.len() as u64;
                if upload.is_none() {
                    first_len += b.len();
                    first.push(b);
                    if first_len < WRITE_PART {
                        continue;
                    }
                    let mut u = WriteMultipart::new_with_chunk_size(store.put_multipart(&path).await?, WRITE_PART);
                    for b in first.drain(..) {
                        u.put(b);
                    }
                    upload = Some(u);
                    continue;
                }
                let u = upload.as_mut().expect("started above");
                if let Err(e) = u.wait_for_capacity(WRITE_PARALLEL).await {
                    let _ = upload.take().expect("started").abort().await;
                    return Err(e);
                }
                u.put(b);
            }
            Chunk::Finish => {
                match upload {
                    Some(u) => u.finish().await?,
                    None => store.put(&path, first.into_iter().collect::<object_store::PutPayload>()).await?,
                };
                return Ok((bytes, crc));
            }
        }
    }
    if let Some(u) = upload {
        u.abort().await?;
    }
    Err(object_store::Error::Generic { store: "writer", source: "dropped before finish; upload aborted".into() })
}

/// Largest file `create-new` holds before its create-only publish.
const MAX_CREATE_NEW: u64 = 16 << 20;

/// Collects chunks and publishes them create-only (`PutMode::Create`) on finish; nothing is
/// written unless told to finish.
async fn put_create(store: Arc<dyn ObjectStore>, path: Path, mut rx: mpsc::Receiver<Chunk>) -> object_store::Result<(u64, u32)> {
    let (mut buf, mut crc) = (Vec::new(), 0u32);
    while let Some(chunk) = rx.recv().await {
        match chunk {
            Chunk::Data(b) => {
                crc = crc32c::crc32c_append(crc, &b);
                buf.extend_from_slice(&b);
                if buf.len() as u64 > MAX_CREATE_NEW {
                    return Err(object_store::Error::Generic { store: "writer", source: format!("create-new holds at most {MAX_CREATE_NEW} bytes").into() });
                }
            }
            Chunk::Finish => {
                let bytes = buf.len() as u64;
                let opts = object_store::PutOptions { mode: object_store::PutMode::Create, ..Default::default() };
                store.put_opts(&path, buf.into(), opts).await?;
                return Ok((bytes, crc));
            }
        }
    }
    Err(object_store::Error::Generic { store: "writer", source: "dropped before finish; nothing written".into() })
}

impl BlobWriter {
    /// The task's error once it has stopped (it stops only on failure before `finish`).
    async fn failure(&mut self) -> types::Error {
        let e = match self.task.take() {
            Some(t) => match t.await {
                Ok(Err(e)) => store_error(blob_store::Role::Target, &self.path, e),
                Ok(Ok(_)) => types::Error::Other(format!("{}: writer already finished", self.path)),
                Err(e) => types::Error::Other(format!("{}: writer task failed: {e}", self.path)),
            },
            None => types::Error::Other(format!("{}: writer already finished", self.path)),
        };
        self.tx = None;
        e
    }
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
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. } => types::Error::AlreadyExists(what),
        other => types::Error::Unavailable(format!("{what}: {other}")),
    }
}

impl blob_store::Host for BlobStoreState {
    async fn open(&mut self, role: blob_store::Role, path: String) -> Result<Resource<BlobReader>, HostError> {
        let p = checked_path(&path)?;
        let store = self.grant(role)?.store.clone();
        let meta = store.head(&p).await.map_err(|e| store_error(role, &path, e))?;
        Ok(self.table.push(BlobReader { role, store, path: p, size: meta.size, pos: 0, buffer: Bytes::new(), ahead: None, block: 0 })?)
    }

    async fn create(&mut self, role: blob_store::Role, path: String) -> Result<Resource<BlobWriter>, HostError> {
        let p = checked_path(&path)?;
        let store = self.grant(role)?.store.clone();
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let task = tokio::spawn(upload_chunks(store, p, rx));
        Ok(self.table.push(BlobWriter { tx: Some(tx), task: Some(task), path })?)
    }

    async fn create_new(&mut self, role: blob_store::Role, path: String) -> Result<Resource<BlobWriter>, HostError> {
        let p = checked_path(&path)?;
        let store = self.grant(role)?.store.clone();
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let task = tokio::spawn(put_create(store, p, rx));
        Ok(self.table.push(BlobWriter { tx: Some(tx), task: Some(task), path })?)
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

    async fn checksum(&mut self, role: blob_store::Role, path: String) -> Result<blob_store::Written, HostError> {
        use futures::StreamExt;
        let p = checked_path(&path)?;
        let store = self.grant(role)?.store.clone();
        let mut stream = store.get(&p).await.map_err(|e| store_error(role, &path, e))?.into_stream();
        let (mut bytes, mut crc) = (0u64, 0u32);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| store_error(role, &path, e))?;
            crc = crc32c::crc32c_append(crc, &chunk);
            bytes += chunk.len() as u64;
        }
        Ok(blob_store::Written { path, bytes, crc32c: crc })
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
        let bytes = r.next(n).await.map_err(|e| store_error(r.role, r.path.as_ref(), e))?;
        // Zero-copy when the block was handed over whole.
        Ok(Vec::from(bytes))
    }

    async fn seek(&mut self, this: Resource<BlobReader>, offset: u64) -> Result<(), HostError> {
        let r = self.table.get_mut(&this)?;
        if offset > r.size {
            return Err(types::Error::Other(format!("seek to {offset} past the end ({}) of {}", r.size, r.path)).into());
        }
        if offset == r.pos {
            return Ok(()); // keeps the read-ahead
        }
        if let Some((_, h)) = r.ahead.take() {
            h.abort();
        }
        r.buffer = Bytes::new();
        r.pos = offset;
        Ok(())
    }

    async fn drop(&mut self, this: Resource<BlobReader>) -> wasmtime::Result<()> {
        if let Some((_, h)) = self.table.delete(this)?.ahead {
            h.abort();
        }
        Ok(())
    }
}

impl blob_store::HostWriter for BlobStoreState {
    async fn append_from(
        &mut self,
        this: Resource<BlobWriter>,
        src: Resource<BlobReader>,
        offset: u64,
        len: u64,
        check: blob_store::ValueCheck,
    ) -> Result<Option<u64>, HostError> {
        let tx = self.table.get(&this)?.tx.clone();
        let r = self.table.get_mut(&src)?;
        if offset.checked_add(len).is_none_or(|end| end > r.size) {
            return Err(types::Error::Other(format!("append of {len} bytes at {offset} is past the end ({}) of {}", r.size, r.path)).into());
        }
        if r.block == 0 {
            r.block = APPEND_BLOCK;
        }
        r.skip_to(offset);
        let mut left = len;
        let mut failed = false;
        let mut finite = (check == blob_store::ValueCheck::FiniteF32).then(FiniteF32::default);
        while left > 0 {
            let mut bytes = r.next(left.min(MAX_READ_CHUNK as u64)).await.map_err(|e| store_error(r.role, r.path.as_ref(), e))?;
            if bytes.is_empty() {
                return Err(types::Error::Other(format!("{} ended before offset {}", r.path, offset + len)).into());
            }
            let at = offset + (len - left);
            left -= bytes.len() as u64;
            let mut bad = None;
            if let Some(f) = &mut finite {
                if let Some(i) = f.scan(&bytes) {
                    bad = Some(at + i as u64);
                    bytes.truncate(i);
                }
            }
            match &tx {
                Some(tx) if tx.send(Chunk::Data(bytes)).await.is_ok() => {}
                _ => {
                    failed = true;
                    break;
                }
            }
            if bad.is_some() {
                return Ok(bad);
            }
        }
        if failed {
            let w = self.table.get_mut(&this)?;
            return Err(w.failure().await.into());
        }
        Ok(None)
    }

    async fn write(&mut self, this: Resource<BlobWriter>, bytes: Vec<u8>) -> Result<(), HostError> {
        let w = self.table.get_mut(&this)?;
        let sent = match &w.tx {
            Some(tx) => tx.send(Chunk::Data(bytes.into())).await.is_ok(),
            None => false,
        };
        if !sent {
            return Err(w.failure().await.into());
        }
        Ok(())
    }

    async fn finish(&mut self, this: Resource<BlobWriter>) -> Result<blob_store::Written, HostError> {
        let w = self.table.get_mut(&this)?;
        let sent = match w.tx.take() {
            Some(tx) => tx.send(Chunk::Finish).await.is_ok(),
            None => false,
        };
        if !sent {
            return Err(w.failure().await.into());
        }
        let task = w.task.take().expect("task present until finished");
        match task.await {
            Ok(Ok((bytes, crc32c))) => {
                crate::crash::point("file-published");
                Ok(blob_store::Written { path: w.path.clone(), bytes, crc32c })
            }
            Ok(Err(e)) => Err(store_error(blob_store::Role::Target, &w.path, e).into()),
            Err(e) => Err(types::Error::Other(format!("{}: writer task failed: {e}", w.path)).into()),
        }
    }

    /// A writer dropped before `finish` aborts its upload: nothing appears under its path.
    async fn drop(&mut self, this: Resource<BlobWriter>) -> wasmtime::Result<()> {
        let mut w = self.table.delete(this)?;
        drop(w.tx.take()); // the task sees the channel close without Finish and aborts
        if let Some(task) = w.task.take() {
            if let Ok(Err(e)) = task.await {
                tracing::debug!("{}: unfinished upload aborted ({e})", w.path);
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

    /// `create-new` on a local directory: of writers racing for one path exactly one publishes,
    /// the others get `already-exists`; a writer dropped before finish leaves nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn create_new_has_one_winner() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let writers: Vec<_> = (0..12u8)
            .map(|i| {
                let (tx, rx) = mpsc::channel(WRITE_QUEUE);
                let task = tokio::spawn(put_create(store.clone(), Path::from("_claims/unit-7.json"), rx));
                (i, tx, task)
            })
            .collect();
        let mut won = Vec::new();
        for (i, tx, task) in writers {
            tx.send(Chunk::Data(Bytes::from(vec![i; 3]))).await.unwrap();
            tx.send(Chunk::Finish).await.unwrap();
            match task.await.unwrap() {
                Ok((3, _)) => won.push(i),
                Err(e) => assert!(matches!(store_error(blob_store::Role::Target, "x", e), types::Error::AlreadyExists(_))),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(won.len(), 1);
        assert_eq!(std::fs::read(dir.path().join("_claims/unit-7.json")).unwrap(), vec![won[0]; 3]);
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let task = tokio::spawn(put_create(store.clone(), Path::from("dropped.json"), rx));
        tx.send(Chunk::Data(Bytes::from_static(b"x"))).await.unwrap();
        drop(tx);
        assert!(task.await.unwrap().is_err());
        assert!(!dir.path().join("dropped.json").exists());
    }
}
