//! The run's progress display (indicatif): bytes with rate and ETA, rows with rate. Hidden when
//! stderr is not a terminal. Log lines go through [`LogWriter`] so they never tear the bar.
//! A front end that reports a run's events elsewhere (the service) hears progress and units
//! through an [`Observer`].

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

static ACTIVE: OnceLock<Mutex<Option<ProgressBar>>> = OnceLock::new();

fn active() -> &'static Mutex<Option<ProgressBar>> {
    ACTIVE.get_or_init(|| Mutex::new(None))
}

/// What an observer hears of a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    /// At most once a second per phase, and once at its end.
    Progress { phase: String, rows: u64, bytes: u64, total_bytes: u64 },
    /// A unit of work started, succeeded or failed (with why).
    Unit { name: String, ok: Option<bool>, error: Option<String> },
}

/// Who hears a run's notes; the default (the CLI) nobody.
#[derive(Clone, Default)]
pub struct Observer(Option<Arc<dyn Fn(Note) + Send + Sync>>);

impl Observer {
    pub fn new(f: impl Fn(Note) + Send + Sync + 'static) -> Self {
        Observer(Some(Arc::new(f)))
    }

    pub fn note(&self, n: impl FnOnce() -> Note) {
        if let Some(f) = &self.0 {
            f(n())
        }
    }
}

#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
    rows: Arc<AtomicU64>,
    started: Instant,
    label: String,
    observer: Observer,
    /// Milliseconds after `started` of the last note sent.
    noted_ms: Arc<AtomicU64>,
}

impl Progress {
    pub fn start(total_bytes: u64, label: &str, observer: &Observer) -> Self {
        let bar = ProgressBar::new(total_bytes);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
            )
            .expect("valid template"),
        );
        bar.set_prefix(label.to_string());
        *active().lock().unwrap() = Some(bar.clone());
        Progress {
            bar,
            rows: Arc::new(AtomicU64::new(0)),
            started: Instant::now(),
            label: label.to_string(),
            observer: observer.clone(),
            noted_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn advance(&self, rows: u64, bytes: u64) {
        let total = self.rows.fetch_add(rows, Ordering::Relaxed) + rows;
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        self.bar.set_message(format!("{total} rows ({:.0} rows/s)", total as f64 / secs));
        self.bar.inc(bytes);
        // One note a second at most: whoever swaps the timestamp forward sends it.
        let now = self.started.elapsed().as_millis() as u64;
        let last = self.noted_ms.load(Ordering::Relaxed);
        if now >= last + 1000 && self.noted_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            self.note();
        }
    }

    fn note(&self) {
        self.observer.note(|| Note::Progress {
            phase: self.label.clone(),
            rows: self.rows.load(Ordering::Relaxed),
            bytes: self.bar.position(),
            total_bytes: self.bar.length().unwrap_or(0),
        });
    }

    pub fn finish(&self) {
        self.note();
        self.bar.finish_and_clear();
        *active().lock().unwrap() = None;
    }
}

/// stderr for tracing, suspending the progress bar while a line is written.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let guard = active().lock().unwrap();
        match guard.as_ref() {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf))?,
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
