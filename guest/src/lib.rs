//! The migration engine: Milvus 1.x meta and segments in, Milvus 2.x numpy files out.
//!
//! Pure modules (natively testable) do the work; [`adapter`] is the only place that knows WIT.
//!
//! std, on wasm32-wasip2 too (the Parquet writer needs it). std links WASI imports the world
//! does not name (environment, exit, stdio, terminals, streams, clocks, random), so every host
//! links WASI with an empty context: nothing of the host's environment, files or network is
//! visible. A panic is reported through `report.log` before the trap (see `adapter`).

extern crate alloc;

/// What std's prelude would give: the `alloc` types and macros every module uses.
pub(crate) mod prelude {
    pub use alloc::string::{String, ToString};
    pub use alloc::vec::Vec;
    pub use alloc::{format, vec};
}

pub mod bad_data;
pub mod dump;
pub mod duplicates;
pub mod error;
pub mod group_rows;
pub mod imports;
pub mod inserts;
pub mod index;
pub mod io;
pub mod journal;
pub mod load;
#[cfg(test)]
mod insert_tests;
#[cfg(test)]
mod load_tests;
pub mod manifest;
pub mod meta;
pub mod names;
pub mod npy;
pub mod parquet;
pub mod paths;
pub mod plan;
pub mod preflight;
pub mod reconcile;
#[cfg(test)]
mod reconcile_tests;
pub mod segment;
pub mod verify;

// Only in the component: a native cdylib cannot carry the component's export symbols.
#[cfg(target_arch = "wasm32")]
mod adapter;
