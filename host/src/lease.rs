//! An exclusive lease on a dump: `dump`, `load` and `migrate` hold one on the target store (the
//! output directory or bucket prefix) for as long as they write into it or import from it, so two
//! runs on one dump (a second terminal, a cron retry, a replaced pod) never import it twice.
//!
//! The lease is a chain of generations, `_lease/gen-<n>.json`, each created with create-only
//! semantics (`PutMode::Create`: an atomic no-replace publish on a local directory,
//! `If-None-Match: *` on S3), so of two runs that try the same generation exactly one wins. The
//! newest generation says who holds the lease; its holder refreshes it (a heartbeat) and marks
//! it released at the end. A lease whose holder is gone (released, its process no longer alive on
//! this host, or no heartbeat for `migration.leaseSeconds`) is taken over by creating the next
//! generation, never by deleting: a takeover race has one winner too. What a taken-over run had
//! done is still decided by the journal, so a takeover keeps every exactly-once guarantee.
//!
//! Some S3-compatible servers check `If-None-Match: *` and then write, not atomically (the test
//! server s3s-fs does), or ignore it: two runs that start together can then both "create" the
//! same generation. So a creator reads its generation back after a short settle and holds the
//! lease only if the file still names its run; the later writer wins and the other looks again.
//! This narrows that window to writes slower than the settle; on a store that honours create-only
//! (S3, MinIO, the local filesystem) it costs one read.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail};
use object_store::path::Path;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

/// The lease of a whole dump; workers (`--workers`) each hold one below it.
pub const DIR: &str = "_lease";
/// How often `--wait` looks again.
const WAIT_POLL: Duration = Duration::from_millis(500);
/// How long a creator waits before reading its generation back (see the module comment).
const CREATE_SETTLE: Duration = Duration::from_millis(300);

/// Who holds (or held) a generation of the lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    pub run: String,
    pub host: String,
    pub pid: u32,
    pub command: String,
    /// Unix seconds.
    pub started: u64,
    /// Unix seconds of the last heartbeat.
    pub heartbeat: u64,
    pub released: bool,
    /// Tells apart two holders of one process (two jobs of the service) in the read-back.
    #[serde(default)]
    pub nonce: u64,
}

impl Holder {
    fn new(command: &str) -> Self {
        let now = unix_now();
        let pid = std::process::id();
        Holder { run: format!("{now}-{pid}"), host: host_name(), pid, command: command.into(), started: now, heartbeat: now, released: false, nonce: nonce() }
    }

    /// Why this holder no longer holds the lease, if it does not.
    fn gone(&self, ttl: Duration) -> Option<String> {
        if self.released {
            return Some("released".into());
        }
        if self.host == host_name() && !process_alive(self.pid) {
            return Some(format!("process {} is no longer running on {}", self.pid, self.host));
        }
        let silent = unix_now().saturating_sub(self.heartbeat);
        (silent > ttl.as_secs()).then(|| format!("no heartbeat for {silent} s (migration.leaseSeconds: {})", ttl.as_secs()))
    }

    fn describe(&self) -> String {
        format!(
            "run {} ({}, pid {} on {}, started {} s ago, last heartbeat {} s ago)",
            self.run,
            self.command,
            self.pid,
            self.host,
            unix_now().saturating_sub(self.started),
            unix_now().saturating_sub(self.heartbeat)
        )
    }
}

/// A held lease; `release` ends it (a run that dies leaves it to expire).
pub struct Lease {
    store: Arc<dyn ObjectStore>,
    dir: String,
    /// This lease's generation.
    generation: u64,
    holder: Holder,
    heartbeat: tokio::task::JoinHandle<()>,
    stop: tokio::sync::oneshot::Sender<()>,
}

fn gen_path(dir: &str, n: u64) -> Path {
    Path::from(format!("{dir}/gen-{n:020}.json"))
}

/// The generation a lease file name holds (the inverse of `gen_path`).
fn generation_of(path: &Path) -> Option<u64> {
    path.filename()?.strip_prefix("gen-")?.strip_suffix(".json")?.parse().ok()
}

/// What one attempt at a lease found.
pub enum Attempt {
    Taken(Lease),
    /// A live run holds generation `.0`.
    Held(u64, Holder),
}

/// The newest generation and its holder.
async fn newest(store: &dyn ObjectStore, dir: &str) -> anyhow::Result<Option<(u64, Holder)>> {
    let prefix = Path::from(dir);
    // Only this directory's generations (a worker's lease lives below the dump's).
    let listed: Vec<_> = store.list_with_delimiter(Some(&prefix)).await.map(|l| l.objects).or_else(|e| match e {
        object_store::Error::NotFound { .. } => Ok(vec![]),
        e => Err(e),
    })?;
    let Some(n) = listed.iter().filter_map(|m| generation_of(&m.location)).max() else {
        return Ok(None);
    };
    let bytes = store.get(&gen_path(dir, n)).await?.bytes().await?;
    let holder = serde_json::from_slice(&bytes).map_err(|e| anyhow!("{dir}/gen-{n:020}.json is not a lease ({e})"))?;
    Ok(Some((n, holder)))
}

/// Whether generation `path` still names `holder`'s run after the settle: false when a concurrent
/// creator replaced it (a store whose create-only write is not atomic) or it is gone.
async fn still_ours(store: &dyn ObjectStore, path: &Path, holder: &Holder) -> bool {
    tokio::time::sleep(CREATE_SETTLE).await;
    let read = async { serde_json::from_slice::<Holder>(&store.get(path).await?.bytes().await?).map_err(|e| anyhow!("{e}")) };
    match read.await {
        Ok(h) => h.nonce == holder.nonce && h.run == holder.run && h.host == holder.host,
        Err(e) => {
            tracing::debug!("reading back the lease generation {path}: {e}");
            false
        }
    }
}

async fn put(store: &dyn ObjectStore, path: &Path, holder: &Holder, mode: PutMode) -> object_store::Result<()> {
    let body = PutPayload::from(serde_json::to_vec_pretty(holder).expect("holder serializes"));
    store.put_opts(path, body, PutOptions { mode, ..Default::default() }).await.map(|_| ())
}

impl Lease {
    /// Takes the lease in directory `dir` of the dump in `store` (`place` names it) for
    /// `command`. When another live run holds it: waits for it with `wait`, otherwise fails
    /// naming the holder.
    pub async fn acquire(store: Arc<dyn ObjectStore>, place: &str, dir: &str, command: &str, ttl: Duration, wait: bool) -> anyhow::Result<Lease> {
        let mut waited = false;
        loop {
            match Lease::try_acquire(store.clone(), place, dir, command, ttl).await? {
                Attempt::Taken(lease) => return Ok(lease),
                Attempt::Held(_, h) if wait => {
                    if !waited {
                        println!("waiting for {} to finish with the dump at {place} (--wait)", h.describe());
                        waited = true;
                    }
                    tokio::time::sleep(WAIT_POLL).await;
                }
                Attempt::Held(n, h) => bail!(
                    "the dump at {place} is in use by {}. Wait for it to finish, or run again with --wait. If that run is gone, \
                     its lease ({dir}/gen-{n:020}.json) is taken over once its process is gone (same host) or after \
                     migration.leaseSeconds ({} s) without a heartbeat",
                    h.describe(),
                    ttl.as_secs()
                ),
            }
        }
    }

    /// Takes the lease unless a live run holds it (then says who): a released or gone holder is
    /// taken over by creating the next generation.
    pub async fn try_acquire(store: Arc<dyn ObjectStore>, place: &str, dir: &str, command: &str, ttl: Duration) -> anyhow::Result<Attempt> {
        loop {
            let next = match newest(store.as_ref(), dir).await.map_err(|e| anyhow!("reading the lease of the dump at {place}: {e}"))? {
                None => 1,
                Some((n, h)) => match h.gone(ttl) {
                    Some(why) => {
                        if !h.released {
                            tracing::warn!("taking over the lease of the dump at {} from {}: {why}", place, h.describe());
                        }
                        n + 1
                    }
                    None => return Ok(Attempt::Held(n, h)),
                },
            };
            let holder = Holder::new(command);
            let path = gen_path(dir, next);
            match put(store.as_ref(), &path, &holder, PutMode::Create).await {
                Ok(()) if !still_ours(store.as_ref(), &path, &holder).await => {
                    tracing::warn!(
                        "another run wrote the lease generation {path} of the dump at {place} at the same time: the store did \
                         not refuse the second create-only write; looking again"
                    );
                    continue;
                }
                Ok(()) => {
                    let (stop, stopped) = tokio::sync::oneshot::channel();
                    let heartbeat = tokio::spawn(beat(store.clone(), path, holder.clone(), ttl, stopped));
                    return Ok(Attempt::Taken(Lease { store, dir: dir.into(), generation: next, holder, heartbeat, stop }));
                }
                // Another run created this generation first: look again.
                Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => continue,
                Err(e) => bail!("taking the lease of the dump at {place} ({path}): {e}"),
            }
        }
    }

    /// Ends the lease: marks it released (a run that looks now takes it at once), then removes
    /// this generation and the superseded ones, so a finished run leaves nothing behind.
    pub async fn release(self) {
        // Stop the heartbeat and wait for it, so that no refresh lands after the removal.
        let _ = self.stop.send(());
        let _ = self.heartbeat.await;
        let holder = Holder { released: true, heartbeat: unix_now(), ..self.holder };
        let path = gen_path(&self.dir, self.generation);
        if let Err(e) = put(self.store.as_ref(), &path, &holder, PutMode::Overwrite).await {
            // A full disk, say: removing it below still ends the lease.
            tracing::debug!("marking the lease {path} released: {e}");
        }
        for n in (1..=self.generation).rev() {
            match self.store.delete(&gen_path(&self.dir, n)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => tracing::warn!("removing lease generation {n} ({e}); it expires by itself"),
            }
        }
    }
}

/// Refreshes the holder's heartbeat three times per `ttl`, until told to stop.
async fn beat(store: Arc<dyn ObjectStore>, path: Path, mut holder: Holder, ttl: Duration, mut stop: tokio::sync::oneshot::Receiver<()>) {
    let every = (ttl / 3).max(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(every) => {}
        }
        holder.heartbeat = unix_now();
        if let Err(e) = put(store.as_ref(), &path, &holder, PutMode::Overwrite).await {
            tracing::warn!("lease heartbeat {path}: {e}");
        }
    }
}

/// A value no other holder of this process has, and unlikely in another's (clock nanoseconds).
fn nonce() -> u64 {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed) << 48)
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into())
}

/// Whether process `pid` exists on this machine (signal 0 checks without sending anything).
fn process_alive(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists and may be signalled.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::local::LocalFileSystem;

    fn store(dir: &std::path::Path) -> Arc<dyn ObjectStore> {
        Arc::new(LocalFileSystem::new_with_prefix(dir).unwrap())
    }

    /// Create-only on the local store is atomic: of many concurrent creators exactly one wins.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn of_many_concurrent_creators_one_wins() {
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let s = store(dir.path());
            let path = gen_path(DIR, 1);
            let tasks: Vec<_> = (0..16)
                .map(|i| {
                    let (s, path) = (s.clone(), path.clone());
                    tokio::spawn(async move { put(s.as_ref(), &path, &Holder { pid: i, ..Holder::new("t") }, PutMode::Create).await })
                })
                .collect();
            let mut won = 0;
            for t in tasks {
                match t.await.unwrap() {
                    Ok(()) => won += 1,
                    Err(object_store::Error::AlreadyExists { .. }) => {}
                    Err(e) => panic!("{e}"),
                }
            }
            assert_eq!(won, 1, "round {round}");
        }
    }

    /// A store whose create-only write checks and then writes, like s3s-fs: two creators that
    /// check together both "succeed", and the later write replaces the earlier.
    #[derive(Debug)]
    struct CheckThenWrite(Arc<dyn ObjectStore>);

    impl std::fmt::Display for CheckThenWrite {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "CheckThenWrite({})", self.0)
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for CheckThenWrite {
        async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> object_store::Result<object_store::PutResult> {
            if opts.mode == PutMode::Create {
                if self.0.head(location).await.is_ok() {
                    return Err(object_store::Error::AlreadyExists { path: location.to_string(), source: "exists".into() });
                }
                tokio::time::sleep(Duration::from_millis(40)).await;
                return self.0.put_opts(location, payload, PutOptions::default()).await;
            }
            self.0.put_opts(location, payload, opts).await
        }
        async fn put_multipart_opts(
            &self,
            location: &Path,
            opts: object_store::PutMultipartOptions,
        ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
            self.0.put_multipart_opts(location, opts).await
        }
        async fn get_opts(&self, location: &Path, options: object_store::GetOptions) -> object_store::Result<object_store::GetResult> {
            self.0.get_opts(location, options).await
        }
        async fn delete(&self, location: &Path) -> object_store::Result<()> {
            self.0.delete(location).await
        }
        fn list(&self, prefix: Option<&Path>) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
            self.0.list(prefix)
        }
        async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<object_store::ListResult> {
            self.0.list_with_delimiter(prefix).await
        }
        async fn copy(&self, from: &Path, to: &Path) -> object_store::Result<()> {
            self.0.copy(from, to).await
        }
        async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> object_store::Result<()> {
            self.0.copy_if_not_exists(from, to).await
        }
    }

    /// Two runs (here two tasks of one process, as two service jobs would be) that start
    /// together on a store without atomic create-only writes: exactly one holds the lease.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_a_store_that_checks_then_writes_one_of_two_starters_holds_the_lease() {
        for round in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let s: Arc<dyn ObjectStore> = Arc::new(CheckThenWrite(store(dir.path())));
            let ttl = Duration::from_secs(60);
            let tasks: Vec<_> = (0..2).map(|_| tokio::spawn(Lease::try_acquire(s.clone(), "out", DIR, "load", ttl))).collect();
            let mut taken = Vec::new();
            for t in tasks {
                if let Attempt::Taken(l) = t.await.unwrap().unwrap() {
                    taken.push(l);
                }
            }
            assert_eq!(taken.len(), 1, "round {round}: exactly one holder");
            let (_, h) = newest(s.as_ref(), DIR).await.unwrap().unwrap();
            assert_eq!(h.nonce, taken[0].holder.nonce, "round {round}: the lease file names the holder");
            taken.pop().unwrap().heartbeat.abort();
        }
    }

    #[tokio::test]
    async fn a_held_lease_stops_the_next_run_and_a_released_or_dead_one_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let ttl = Duration::from_secs(60);
        let first = Lease::acquire(s.clone(), "out", DIR, "load", ttl, false).await.unwrap();
        let e = Lease::acquire(s.clone(), "out", DIR, "load", ttl, false).await.err().unwrap().to_string();
        assert!(e.contains("is in use by run") && e.contains(&format!("pid {}", std::process::id())) && e.contains("--wait"), "{e}");
        first.release().await;
        assert!(!dir.path().join("_lease/gen-00000000000000000001.json").exists(), "a released lease leaves nothing");
        let second = Lease::acquire(s.clone(), "out", DIR, "dump", ttl, false).await.unwrap();
        assert_eq!(second.generation, 1);
        second.heartbeat.abort();
        // A holder whose process is gone (this host), and one silent for longer than the ttl.
        let dead = Holder { pid: i32::MAX as u32 - 7, ..Holder::new("load") };
        put(s.as_ref(), &gen_path(DIR, 3), &dead, PutMode::Create).await.unwrap();
        let third = Lease::acquire(s.clone(), "out", DIR, "load", ttl, false).await.unwrap();
        assert_eq!(third.generation, 4);
        third.heartbeat.abort();
        let silent = Holder { host: "elsewhere".into(), heartbeat: unix_now() - 120, ..Holder::new("load") };
        put(s.as_ref(), &gen_path(DIR, 5), &silent, PutMode::Create).await.unwrap();
        let sixth = Lease::acquire(s.clone(), "out", DIR, "load", ttl, false).await.unwrap();
        assert_eq!(sixth.generation, 6);
        // Releasing the newest removes the superseded generations too.
        sixth.release().await;
        assert_eq!(std::fs::read_dir(dir.path().join("_lease")).unwrap().count(), 0);
    }
}
