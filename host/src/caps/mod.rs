//! Host capabilities: one module per WIT interface, each with its own state.

pub mod blob_store;
pub mod meta_db;
pub mod milvus;
pub mod report;
pub mod value_check;

use crate::bindings::types;

/// What a host import returns on failure: a typed error for the guest, or a trap for host bugs.
#[derive(Debug)]
pub enum HostError {
    Wit(types::Error),
    Trap(wasmtime::Error),
}

impl From<types::Error> for HostError {
    fn from(e: types::Error) -> Self {
        HostError::Wit(e)
    }
}

impl From<wasmtime::component::ResourceTableError> for HostError {
    fn from(e: wasmtime::component::ResourceTableError) -> Self {
        HostError::Trap(e.into())
    }
}

/// Turns the guest-visible error into a trap only when the host itself failed.
pub fn convert(e: HostError) -> wasmtime::Result<types::Error> {
    match e {
        HostError::Wit(e) => Ok(e),
        HostError::Trap(t) => Err(t),
    }
}

/// A guest-visible error as one line for the user (the generated Display is Debug-like).
pub fn describe(e: &types::Error) -> String {
    use types::Error as E;
    match e {
        E::NotFound(m) => format!("not found: {m}"),
        E::InvalidInput(i) => match i.offset {
            Some(o) => format!("invalid input in {} at offset {o}: {}", i.file, i.reason),
            None => format!("invalid input in {}: {}", i.file, i.reason),
        },
        E::Unsupported(m) => format!("unsupported: {m}"),
        E::Limit(m) => format!("limit reached: {m}"),
        E::AccessDenied(m) => format!("access denied: {m}"),
        E::Unavailable(m) => format!("unavailable: {m}"),
        E::Remote(r) => format!("remote error {}: {}", r.code, r.reason),
        E::AlreadyExists(m) => format!("already exists: {m}"),
        E::Other(m) => m.clone(),
    }
}
