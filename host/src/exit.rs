//! How a command ends, as an exit code (documented in README and `--help`).

use std::process::ExitCode;

#[derive(Debug)]
pub enum Failure {
    /// Exit 2: bad arguments or configuration; nothing was read or written.
    Usage(anyhow::Error),
    /// Exit 1: the migration itself failed.
    Run(anyhow::Error),
}

impl Failure {
    /// The message, as printed.
    pub fn message(&self) -> String {
        match self {
            Failure::Usage(e) | Failure::Run(e) => format!("{e:#}"),
        }
    }

    pub fn report(&self) -> ExitCode {
        match self {
            Failure::Usage(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
            Failure::Run(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        }
    }
}
