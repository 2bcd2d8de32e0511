//! Real Milvus 1.x installations from a small declarative description, for tests, the demo and
//! the benchmark: `db/meta.sqlite` with the 1.x DDL and `db/tables/<table>/<segment>/` files in
//! the 1.x byte formats, plus the rows a correct migration must produce.

pub mod expect;
pub mod generate;
pub mod interrupt;
pub mod milvus_env;
pub mod npy;
pub mod samples;
pub mod service;
pub mod spec;
pub mod tool;

pub use generate::{generate, Generated};
pub use spec::{CollectionSpec, PartitionSpec, SegmentSpec, Spec};
