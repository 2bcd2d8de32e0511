//! The migration engine: Milvus 1.x meta and segments in, Milvus 2.x numpy files out.
//!
//! Pure modules (natively testable) do the work; [`adapter`] is the only place that knows WIT.
//!
//! `no_std` (with `alloc`): Rust's std on wasm32-wasip2 links WASI imports the world does not name
//! (environment, exit, stdio, terminals, streams: panics print to stderr and read
//! RUST_BACKTRACE). Without std the component imports exactly its world, and a panic is reported
//! through `report.log` before the trap (see `adapter`).
#![no_std]

extern crate alloc;
// Native builds (unit tests, the fuzz targets) have std; the component does not.
#[cfg(not(target_arch = "wasm32"))]
extern crate std;

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
