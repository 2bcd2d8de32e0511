//! The `report` capability: the unit's log lines and progress, into tracing and the shared
//! progress display.

use std::sync::{Arc, Mutex};

use crate::bindings::report;
use crate::progress::Progress;

/// Warnings collected across all units of a run, for the summary.
pub type Warnings = Arc<Mutex<Vec<String>>>;

pub struct ReportState {
    /// What this unit works on, prefixed to its log lines.
    pub unit: String,
    pub progress: Option<Progress>,
    pub warnings: Warnings,
    /// The unit's last error line: the engine reports a panic this way just before it traps.
    pub error: Option<String>,
}

impl report::Host for ReportState {
    async fn log(&mut self, level: report::Level, message: String) -> wasmtime::Result<()> {
        let unit = &self.unit;
        match level {
            report::Level::Debug => tracing::debug!("{unit}: {message}"),
            report::Level::Info => tracing::info!("{unit}: {message}"),
            report::Level::Warn => {
                tracing::warn!("{unit}: {message}");
                self.warnings.lock().unwrap().push(format!("{unit}: {message}"));
            }
            report::Level::Error => {
                // Shown in the unit's failure message (see sandbox::outcome), not twice.
                tracing::debug!("{unit}: {message}");
                self.error = Some(message);
            }
        }
        Ok(())
    }

    async fn progress(&mut self, rows: u64, bytes: u64) -> wasmtime::Result<()> {
        if let Some(p) = &self.progress {
            p.advance(rows, bytes);
        }
        Ok(())
    }
}
