//! The engine's error type: the same cases as the WIT `error` variant, so host errors pass
//! through unchanged and the adapter converts one-to-one.
use crate::prelude::*;

use core::fmt;

pub type Result<T, E = Error> = core::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    NotFound(String),
    InvalidInput { file: String, offset: Option<u64>, reason: String },
    Unsupported(String),
    Limit(String),
    AccessDenied(String),
    Unavailable(String),
    Remote { code: i32, reason: String },
    AlreadyExists(String),
    Other(String),
}

impl Error {
    pub fn invalid(file: impl Into<String>, offset: Option<u64>, reason: impl Into<String>) -> Self {
        Error::InvalidInput { file: file.into(), offset, reason: reason.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound(m) => write!(f, "not found: {m}"),
            Error::InvalidInput { file, offset: Some(o), reason } => {
                write!(f, "invalid input in {file} at offset {o}: {reason}")
            }
            Error::InvalidInput { file, offset: None, reason } => write!(f, "invalid input in {file}: {reason}"),
            Error::Unsupported(m) => write!(f, "unsupported: {m}"),
            Error::Limit(m) => write!(f, "limit reached: {m}"),
            Error::AccessDenied(m) => write!(f, "access denied: {m}"),
            Error::Unavailable(m) => write!(f, "unavailable: {m}"),
            Error::Remote { code, reason } => write!(f, "remote error {code}: {reason}"),
            Error::AlreadyExists(m) => write!(f, "already exists: {m}"),
            Error::Other(m) => f.write_str(m),
        }
    }
}

impl core::error::Error for Error {}
