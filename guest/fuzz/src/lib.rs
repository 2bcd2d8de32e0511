//! Shared pieces of the fuzz targets: the engine's strict in-memory store and report (its
//! `memory` feature), and the 1.x counted-file layout.

pub use guest::io::memory::{MemReader, MemReport, MemStore};

/// A counted file: little-endian u64 byte count, then the payload.
pub fn counted(payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}
