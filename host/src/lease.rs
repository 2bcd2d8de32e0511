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
//! This narrows that window to writes slower than the settle. A local directory (link(2)) is
//! atomic for certain and skips it; on a bucket it costs 0.3 s and one read per lease.
//!
//! A holder that is alive but silent for longer than the ttl (stopped with SIGSTOP, a suspended
//! VM, a starved runtime) is taken over like a dead one, and must not go on when it resumes. So
//! the lease is also a fence (`Fence`): before each call that changes rows in Milvus the host
//! checks it. A lease confirmed less than ttl/2 ago passes at once (a takeover needs a heartbeat
//! older than the ttl); an older one is confirmed from the store first: our generation must still
//! be the newest, or the call is refused and the run stops (`Lease::lost`). The heartbeat does
//! the same check on every beat. What stays open without help from Milvus itself: a process
//! stopped between its check and its call, for longer than ttl/2.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail};
use object_store::path::Path;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::caps::blob_store::Grant;

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
    standing: Arc<Standing>,
    heartbeat: tokio::task::JoinHandle<()>,
    stop: tokio::sync::oneshot::Sender<()>,
}

/// What a held lease knows of itself, shared by its heartbeat and the fence.
struct Standing {
    store: Arc<dyn ObjectStore>,
    place: String,
    dir: String,
    /// This lease's generation.
    generation: u64,
    holder: Holder,
    ttl: Duration,
    /// When the store last confirmed that this generation is the newest (both clocks: a
    /// suspended machine stops the monotonic one, a clock step moves the wall one).
    confirmed: Mutex<(Instant, u64)>,
    /// Set once the lease is found taken over: why.
    lost: tokio::sync::watch::Sender<Option<String>>,
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
    pub async fn acquire(target: &Grant, dir: &str, command: &str, ttl: Duration, wait: bool) -> anyhow::Result<Lease> {
        let (mut waited, place) = (false, &target.display);
        loop {
            match Lease::try_acquire(target, dir, command, ttl).await? {
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
    pub async fn try_acquire(target: &Grant, dir: &str, command: &str, ttl: Duration) -> anyhow::Result<Attempt> {
        let (store, place) = (target.store.clone(), target.display.as_str());
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
                Ok(()) if !target.atomic_create && !still_ours(store.as_ref(), &path, &holder).await => {
                    tracing::warn!(
                        "another run wrote the lease generation {path} of the dump at {place} at the same time: the store did \
                         not refuse the second create-only write; looking again"
                    );
                    continue;
                }
                Ok(()) => {
                    let standing = Arc::new(Standing {
                        store,
                        place: place.into(),
                        dir: dir.into(),
                        generation: next,
                        holder,
                        ttl,
                        confirmed: Mutex::new((Instant::now(), unix_now())),
                        lost: tokio::sync::watch::channel(None).0,
                    });
                    let (stop, stopped) = tokio::sync::oneshot::channel();
                    let heartbeat = tokio::spawn(beat(standing.clone(), stopped));
                    return Ok(Attempt::Taken(Lease { standing, heartbeat, stop }));
                }
                // Another run created this generation first: look again.
                Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => continue,
                Err(e) => bail!("taking the lease of the dump at {place} ({path}): {e}"),
            }
        }
    }

    /// Ends the lease: marks it released (a run that looks now takes it at once), then removes
    /// this generation and the superseded ones, so a finished run leaves nothing behind. A lost
    /// lease is left as it is: the files belong to the run that took it over.
    pub async fn release(self) {
        // Stop the heartbeat and wait for it, so that no refresh lands after the removal.
        let _ = self.stop.send(());
        let _ = self.heartbeat.await;
        let me = &self.standing;
        if me.lost.borrow().is_some() {
            return;
        }
        let holder = Holder { released: true, heartbeat: unix_now(), ..me.holder.clone() };
        let path = gen_path(&me.dir, me.generation);
        if let Err(e) = put(me.store.as_ref(), &path, &holder, PutMode::Overwrite).await {
            // A full disk, say: removing it below still ends the lease.
            tracing::debug!("marking the lease {path} released: {e}");
        }
        for n in (1..=me.generation).rev() {
            match me.store.delete(&gen_path(&me.dir, n)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => tracing::warn!("removing lease generation {n} ({e}); it expires by itself"),
            }
        }
    }

    /// Resolves once the lease is found taken over, with why (never while it is held).
    pub async fn lost(&self) -> String {
        let mut rx = self.standing.lost.subscribe();
        let why = rx.wait_for(|l| l.is_some()).await.map(|l| l.clone().unwrap_or_default());
        match why {
            Ok(why) => why,
            // The sender lives as long as the lease: not reached.
            Err(_) => std::future::pending().await,
        }
    }

    /// Makes `fence` check this lease until `release`.
    pub fn guard(&self, fence: &Fence) {
        fence.0.lock().expect("fence lock").push(self.standing.clone());
    }

    /// Stops `fence` checking this lease.
    pub fn unguard(&self, fence: &Fence) {
        fence.0.lock().expect("fence lock").retain(|s| !Arc::ptr_eq(s, &self.standing));
    }
}

impl Standing {
    /// Whether the store confirmed this lease less than ttl/2 ago: no other run can have taken
    /// it over since (that needs a heartbeat older than the ttl).
    fn fresh(&self) -> bool {
        let (at, wall) = *self.confirmed.lock().expect("lease lock");
        let half = self.ttl / 2;
        at.elapsed() < half && unix_now().saturating_sub(wall) < half.as_secs().max(1)
    }

    fn lost_reason(&self) -> Option<String> {
        self.lost.borrow().clone()
    }

    /// Confirms from the store that this generation is still the newest, refreshing its
    /// heartbeat on the way (read, write, read: a takeover between the two reads is seen).
    async fn confirm(&self) -> Result<(), String> {
        if let Some(why) = self.lost_reason() {
            return Err(why);
        }
        let started = (Instant::now(), unix_now());
        self.still_newest().await?;
        let path = gen_path(&self.dir, self.generation);
        let holder = Holder { heartbeat: unix_now(), ..self.holder.clone() };
        put(self.store.as_ref(), &path, &holder, PutMode::Overwrite)
            .await
            .map_err(|e| format!("cannot refresh the lease of the dump at {} ({path}): {e}", self.place))?;
        self.still_newest().await?;
        *self.confirmed.lock().expect("lease lock") = started;
        Ok(())
    }

    /// Fails, and marks the lease lost, when a newer generation exists (or ours is gone).
    async fn still_newest(&self) -> Result<(), String> {
        let newest = newest(self.store.as_ref(), &self.dir)
            .await
            .map_err(|e| format!("cannot confirm the lease of the dump at {}: {e}", self.place))?;
        let why = match newest {
            Some((n, h)) if n == self.generation && h.nonce == self.holder.nonce && h.run == self.holder.run => return Ok(()),
            Some((n, h)) if n > self.generation => format!("{} took it over (generation {n})", h.describe()),
            Some((n, h)) if n == self.generation => format!("{} wrote over its generation {n}", h.describe()),
            _ => format!("its generation {} is gone: the run that took it over has finished and released it", self.generation),
        };
        let why = format!(
            "this run ({}) lost the lease of the dump at {} while it was not heard from for longer than migration.leaseSeconds \
             ({} s): {why}; it stops here and leaves the rest to that run",
            self.holder.run,
            self.place,
            self.ttl.as_secs()
        );
        self.lost.send_replace(Some(why.clone()));
        Err(why)
    }

    /// Passes when this run may still change rows under this lease.
    async fn check(&self) -> Result<(), String> {
        if let Some(why) = self.lost_reason() {
            return Err(why);
        }
        if self.fresh() {
            return Ok(());
        }
        self.confirm().await
    }
}

/// The leases a job holds: checked before every call that changes rows in Milvus (see the
/// module comment). The default holds none and passes.
#[derive(Clone, Default)]
pub struct Fence(Arc<Mutex<Vec<Arc<Standing>>>>);

impl std::fmt::Debug for Fence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fence({} lease(s))", self.0.lock().map_or(0, |l| l.len()))
    }
}

impl Fence {
    /// Ok while every lease held is still this run's; otherwise why not.
    pub async fn check(&self) -> Result<(), String> {
        let held: Vec<_> = self.0.lock().expect("fence lock").clone();
        for s in held {
            s.check().await?;
        }
        Ok(())
    }
}

/// Refreshes the heartbeat three times per ttl, confirming each time that no other run took
/// the lease over; stops when told to, or when it was.
async fn beat(me: Arc<Standing>, mut stop: tokio::sync::oneshot::Receiver<()>) {
    let every = (me.ttl / 3).max(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(every) => {}
        }
        match me.confirm().await {
            Ok(()) => {}
            // The job stops with this message (`Lease::lost`).
            Err(why) if me.lost_reason().is_some() => {
                tracing::debug!("{why}");
                return;
            }
            // The store did not answer: the next beat tries again; the fence refuses changes
            // meanwhile once the last confirmation is older than ttl/2.
            Err(e) => tracing::warn!("lease heartbeat: {e}"),
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

    /// A grant of `store` named "out"; `atomic`: skip the read-back, as for a local directory.
    fn grant(store: Arc<dyn ObjectStore>, atomic: bool) -> Grant {
        Grant { store, display: "out".into(), atomic_create: atomic }
    }

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
            let tasks: Vec<_> = (0..2).map(|_| {
                let g = grant(s.clone(), false);
                tokio::spawn(async move { Lease::try_acquire(&g, DIR, "load", ttl).await })
            }).collect();
            let mut taken = Vec::new();
            for t in tasks {
                if let Attempt::Taken(l) = t.await.unwrap().unwrap() {
                    taken.push(l);
                }
            }
            assert_eq!(taken.len(), 1, "round {round}: exactly one holder");
            let (_, h) = newest(s.as_ref(), DIR).await.unwrap().unwrap();
            assert_eq!(h.nonce, taken[0].standing.holder.nonce, "round {round}: the lease file names the holder");
            taken.pop().unwrap().heartbeat.abort();
        }
    }

    #[tokio::test]
    async fn a_held_lease_stops_the_next_run_and_a_released_or_dead_one_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let ttl = Duration::from_secs(60);
        let first = Lease::acquire(&grant(s.clone(), true), DIR, "load", ttl, false).await.unwrap();
        let e = Lease::acquire(&grant(s.clone(), true), DIR, "load", ttl, false).await.err().unwrap().to_string();
        assert!(e.contains("is in use by run") && e.contains(&format!("pid {}", std::process::id())) && e.contains("--wait"), "{e}");
        first.release().await;
        assert!(!dir.path().join("_lease/gen-00000000000000000001.json").exists(), "a released lease leaves nothing");
        let second = Lease::acquire(&grant(s.clone(), true), DIR, "dump", ttl, false).await.unwrap();
        assert_eq!(second.standing.generation, 1);
        second.heartbeat.abort();
        // A holder whose process is gone (this host), and one silent for longer than the ttl.
        let dead = Holder { pid: i32::MAX as u32 - 7, ..Holder::new("load") };
        put(s.as_ref(), &gen_path(DIR, 3), &dead, PutMode::Create).await.unwrap();
        let third = Lease::acquire(&grant(s.clone(), true), DIR, "load", ttl, false).await.unwrap();
        assert_eq!(third.standing.generation, 4);
        third.heartbeat.abort();
        let silent = Holder { host: "elsewhere".into(), heartbeat: unix_now() - 120, ..Holder::new("load") };
        put(s.as_ref(), &gen_path(DIR, 5), &silent, PutMode::Create).await.unwrap();
        let sixth = Lease::acquire(&grant(s.clone(), true), DIR, "load", ttl, false).await.unwrap();
        assert_eq!(sixth.standing.generation, 6);
        // Releasing the newest removes the superseded generations too.
        sixth.release().await;
        assert_eq!(std::fs::read_dir(dir.path().join("_lease")).unwrap().count(), 0);
    }

    /// A lease of 60 s on a fresh directory, guarding a fence.
    async fn guarded() -> (tempfile::TempDir, Arc<dyn ObjectStore>, Lease, Fence) {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let lease = Lease::acquire(&grant(s.clone(), true), DIR, "load", Duration::from_secs(60), false).await.unwrap();
        let fence = Fence::default();
        lease.guard(&fence);
        (dir, s, lease, fence)
    }

    /// As if the holder had been stopped (SIGSTOP) for the ttl: both clocks moved on.
    fn silent(lease: &Lease) {
        let ttl = lease.standing.ttl;
        *lease.standing.confirmed.lock().unwrap() = (Instant::now() - ttl, unix_now() - ttl.as_secs());
    }

    /// Another run takes the lease over (here: creates the next generation, as it does once the
    /// holder was silent for the ttl). While the holder's last confirmation is under ttl/2 old
    /// the fence passes without asking the store; past that it asks, refuses, and the lease
    /// reports itself lost. Releasing a lost lease leaves the new holder's files alone.
    #[tokio::test]
    async fn a_lease_taken_over_while_its_holder_was_silent_fails_the_fence() {
        let (_dir, s, lease, fence) = guarded().await;
        fence.check().await.unwrap();
        let taker = Holder { host: "elsewhere".into(), ..Holder::new("load") };
        put(s.as_ref(), &gen_path(DIR, 2), &taker, PutMode::Create).await.unwrap();
        fence.check().await.unwrap();
        silent(&lease);
        let e = fence.check().await.unwrap_err();
        assert!(e.contains("lost the lease") && e.contains("took it over (generation 2)") && e.contains("on elsewhere"), "{e}");
        let why = tokio::time::timeout(Duration::from_secs(1), lease.lost()).await.expect("the lease says it is lost");
        assert_eq!(why, e);
        assert!(fence.check().await.is_err(), "lost stays lost");
        lease.release().await;
        let (n, h) = newest(s.as_ref(), DIR).await.unwrap().unwrap();
        assert_eq!((n, h.host.as_str(), h.released), (2, "elsewhere", false));
    }

    /// A lease not confirmed for ttl/2 but still the newest passes, and its heartbeat is written.
    #[tokio::test]
    async fn a_late_but_unchallenged_lease_passes_and_refreshes_its_heartbeat() {
        let (_dir, s, lease, fence) = guarded().await;
        let stale = Holder { heartbeat: unix_now() - 40, ..lease.standing.holder.clone() };
        put(s.as_ref(), &gen_path(DIR, 1), &stale, PutMode::Overwrite).await.unwrap();
        silent(&lease);
        fence.check().await.unwrap();
        let (_, h) = newest(s.as_ref(), DIR).await.unwrap().unwrap();
        assert!(unix_now() - h.heartbeat <= 1, "heartbeat refreshed: {}", h.heartbeat);
        assert!(lease.standing.fresh());
        lease.unguard(&fence);
        assert_eq!(format!("{fence:?}"), "Fence(0 lease(s))");
        lease.release().await;
    }

    /// The heartbeat notices a takeover by itself, within a beat.
    #[tokio::test]
    async fn the_heartbeat_finds_a_takeover_and_reports_the_lease_lost() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let lease = Lease::acquire(&grant(s.clone(), true), DIR, "load", Duration::from_secs(3), false).await.unwrap();
        let taker = Holder { host: "elsewhere".into(), ..Holder::new("load") };
        put(s.as_ref(), &gen_path(DIR, 2), &taker, PutMode::Create).await.unwrap();
        let why = tokio::time::timeout(Duration::from_secs(3), lease.lost()).await.expect("lost within a beat (1 s)");
        assert!(why.contains("took it over (generation 2)"), "{why}");
        lease.release().await;
    }
}
