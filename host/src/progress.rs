//! The run's progress display (indicatif): bytes with rate and ETA, rows with rate, on a
//! terminal. When stderr is not a terminal (a file, a CI log) the CLI prints a plain line every
//! 10 s instead (`MILVUS_MIGRATION_PROGRESS_SECONDS` changes the period) and one at the end.
//! Log lines go through [`LogWriter`] so they never tear the bar.
//! A front end that reports a run's events elsewhere (the service) hears progress and units
//! through an [`Observer`].

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use indicatif::{HumanBytes, HumanDuration, ProgressBar, ProgressStyle};

static ACTIVE: OnceLock<Mutex<Option<ProgressBar>>> = OnceLock::new();

fn active() -> &'static Mutex<Option<ProgressBar>> {
    ACTIVE.get_or_init(|| Mutex::new(None))
}

/// Colour in log lines: only on a terminal, and never when `NO_COLOR` is set (no-color.org).
pub fn color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Seconds between plain progress lines when stderr is not a terminal.
fn plain_period_ms() -> Option<u64> {
    if std::io::stderr().is_terminal() {
        return None;
    }
    let secs = std::env::var("MILVUS_MIGRATION_PROGRESS_SECONDS").ok().and_then(|v| v.parse::<f64>().ok()).unwrap_or(10.0);
    Some(((secs.max(0.001) * 1000.0) as u64).max(1))
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
    /// Not on a terminal, and the CLI's own run: a plain line every this many milliseconds.
    plain_ms: Option<u64>,
    /// Set when the run's phase ends: stops the plain-line ticker.
    done: Arc<std::sync::atomic::AtomicBool>,
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
            plain_ms: if observer.0.is_none() { plain_period_ms() } else { None },
            done: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
        .ticking()
    }

    /// Not on a terminal: a thread prints the plain line every period, also while nothing
    /// advances (an import being waited for), so a CI log shows the run is alive.
    fn ticking(self) -> Self {
        if let Some(period) = self.plain_ms {
            let p = self.clone();
            std::thread::spawn(move || loop {
                std::thread::sleep(std::time::Duration::from_millis(period));
                if p.done.load(Ordering::Relaxed) {
                    break;
                }
                eprintln!("{}", p.line(false));
            });
        }
        self
    }

    /// The plain progress line: done, of how much, rates, ETA.
    fn line(&self, end: bool) -> String {
        let (bytes, total, rows) = (self.bar.position(), self.bar.length().unwrap_or(0), self.rows.load(Ordering::Relaxed));
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let of = if total > 0 { format!(" of {} ({:.0}%)", HumanBytes(total), 100.0 * bytes as f64 / total as f64) } else { String::new() };
        // A phase that counts no bytes (an import: the server reads the files) shows rows only.
        let (amount, rates) = if bytes == 0 && total == 0 {
            (String::new(), format!("{:.0} rows/s", rows as f64 / secs))
        } else {
            (format!("{}, ", HumanBytes(bytes)), format!("{}/s, {:.0} rows/s", HumanBytes((bytes as f64 / secs) as u64), rows as f64 / secs))
        };
        if end {
            return format!("{}: done, {amount}{rows} rows in {:.1} s ({rates})", self.label, secs);
        }
        let eta = if total > bytes && bytes > 0 {
            format!(", ETA {}", HumanDuration(std::time::Duration::from_secs_f64(secs * (total - bytes) as f64 / bytes as f64)))
        } else {
            String::new()
        };
        if amount.is_empty() {
            return format!("{}: {rows} rows, {rates}", self.label);
        }
        format!("{}: {}{of}, {rows} rows, {rates}{eta}", self.label, HumanBytes(bytes))
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
        if self.plain_ms.is_some() && !self.done.swap(true, Ordering::Relaxed) {
            eprintln!("{}", self.line(true));
        }
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
