//! A job's events besides its state changes: progress (at most one a second), units started,
//! succeeded or failed, and the log lines its phases write. They reach the job store through
//! one writer task, in the order they happened; `flush` waits until all sent so far are stored
//! (the runner flushes before it records a job's end, so nothing trails the end).
//!
//! Log lines are told apart by thread: every thread of a job's runtime is named `job-<id>`,
//! so a tracing layer can file an event under its job without spans threaded through the
//! phases.

use std::sync::OnceLock;

use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

use super::store::JobStore;
use crate::progress::{Note, Observer};

enum Msg {
    Event { job: String, kind: &'static str, data: serde_json::Value },
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct EventSink {
    tx: mpsc::UnboundedSender<Msg>,
}

/// The sink the log layer files lines into, once the service has started one.
static SINK: OnceLock<EventSink> = OnceLock::new();

/// The name of every thread that runs a job's work.
pub fn thread_name(job: &str) -> String {
    format!("job-{job}")
}

impl EventSink {
    /// Starts the writer on the current runtime; the first sink started also takes log lines.
    pub fn start(store: JobStore) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                match m {
                    Msg::Event { job, kind, data } => {
                        if kind == "progress" {
                            let _ = store.set_progress(&job, &data).await;
                        }
                        if let Err(e) = store.event(&job, kind, &data).await {
                            eprintln!("cannot store an event of job {job}: {e:#}");
                        }
                    }
                    Msg::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        let sink = EventSink { tx };
        let _ = SINK.set(sink.clone());
        sink
    }

    fn send(&self, job: &str, kind: &'static str, data: serde_json::Value) {
        let _ = self.tx.send(Msg::Event { job: job.to_string(), kind, data });
    }

    /// What the job's phases and units tell, as events of `job`.
    pub fn observer(&self, job: &str) -> Observer {
        let (sink, job) = (self.clone(), job.to_string());
        Observer::new(move |n| match n {
            Note::Progress { phase, rows, bytes, total_bytes } => {
                let percent = (total_bytes > 0).then(|| (bytes as f64 * 100.0 / total_bytes as f64).min(100.0));
                sink.send(&job, "progress", json!({"phase": phase, "rows": rows, "bytes": bytes, "totalBytes": total_bytes, "percent": percent}))
            }
            Note::Unit { name, ok, error } => {
                let state = match ok {
                    None => "started",
                    Some(true) => "ok",
                    Some(false) => "failed",
                };
                let mut data = json!({"unit": name, "state": state});
                if let Some(e) = error {
                    data["error"] = e.into();
                }
                sink.send(&job, "unit", data)
            }
        })
    }

    /// Returns once every event sent before it is stored.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

/// The tracing layer that files a job's log lines as its events (`warning` for warnings and
/// errors, `log` for the rest).
pub struct JobLogLayer;

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_string();
        } else {
            self.0.push_str(&format!(" {}={value}", field.name()));
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for JobLogLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let Some(sink) = SINK.get() else { return };
        let thread = std::thread::current();
        let Some(job) = thread.name().and_then(|n| n.strip_prefix("job-")) else { return };
        let level = *event.metadata().level();
        let mut m = Message(String::new());
        event.record(&mut m);
        let kind = if level <= tracing::Level::WARN { "warning" } else { "log" };
        sink.send(job, kind, json!({"level": level.as_str().to_lowercase(), "message": m.0}));
    }
}
