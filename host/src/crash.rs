//! A test hook: `MILVUS_MIGRATION_CRASH_AT=<point>:<n>` kills this process with SIGKILL (no
//! cleanup, exactly like `kill -9`) the n-th time it reaches `<point>`, so that tests can stop
//! a run between two precise steps: `import-submitted` (Milvus took an import, nothing recorded
//! its task id yet), `import-polled`, `index-polled`, `file-published` (a file or journal entry
//! was just published), `insert-sent` / `upsert-sent` (Milvus stored a batch, nothing recorded it). Unset, it is never triggered.
//! `<point>:<n>:stop` stops the process with SIGSTOP instead (alive but silent, like a suspended
//! VM), so that a test can let another run take its lease over and then resume it with SIGCONT.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static TARGET: OnceLock<Option<(String, u64, bool)>> = OnceLock::new();
static SEEN: AtomicU64 = AtomicU64::new(0);

fn target() -> &'static Option<(String, u64, bool)> {
    TARGET.get_or_init(|| {
        let v = std::env::var("MILVUS_MIGRATION_CRASH_AT").ok()?;
        let (v, stop) = v.strip_suffix(":stop").map_or((v.as_str(), false), |v| (v, true));
        let (point, n) = v.rsplit_once(':').unwrap_or((v, "1"));
        Some((point.to_string(), n.parse().unwrap_or(1), stop))
    })
}

pub fn point(name: &str) {
    let Some((want, n, stop)) = target() else { return };
    if want == name && SEEN.fetch_add(1, Ordering::SeqCst) + 1 == *n {
        if *stop {
            eprintln!("MILVUS_MIGRATION_CRASH_AT: stopping the process at {name} #{n} (SIGSTOP)");
            // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
            unsafe { libc::kill(libc::getpid(), libc::SIGSTOP) };
            return;
        }
        eprintln!("MILVUS_MIGRATION_CRASH_AT: killing the process at {name} #{n}");
        // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
}
