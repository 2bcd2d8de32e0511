//! The 1.x meta: rows from the `Tables` / `TableFiles` tables (or a meta.json) turned into an
//! [`Installation`]: collections, their partitions and their live segments.
pub mod json;
pub mod model;
pub mod rows;

pub use model::{Collection, Installation, Partition, Segment, VectorKind};
