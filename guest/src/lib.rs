//! The migration engine: Milvus 1.x meta and segments in, Milvus 2.x numpy files out.
//!
//! Pure modules (natively testable) do the work; [`adapter`] is the only place that knows WIT.

pub mod bad_data;
pub mod dump;
pub mod duplicates;
pub mod error;
pub mod imports;
pub mod index;
pub mod io;
pub mod journal;
pub mod load;
#[cfg(test)]
mod load_tests;
pub mod manifest;
pub mod meta;
pub mod names;
pub mod npy;
pub mod paths;
pub mod plan;
pub mod preflight;
pub mod segment;
pub mod verify;

// Only in the component: a native cdylib cannot carry the component's export symbols.
#[cfg(target_arch = "wasm32")]
mod adapter;
