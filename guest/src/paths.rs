//! Paths on both sides of the conversion, relative to the roots the host grants.
//!
//! Source (the 1.x `tables` directory):
//! ```text
//! <table_id>/<segment_id>/<segment_id>.rv   vectors
//! <table_id>/<segment_id>/<segment_id>.uid  ids
//! <table_id>/<segment_id>/deleted_docs      deleted row offsets
//! ```
//! `table_id` is the collection name, or a partition's numeric id.
//!
//! Target (the dump output):
//! ```text
//! manifest.json                                        what was written, with checksums
//! <collection>/_default/<segment_id>/<field>.npy       the default partition
//! <collection>/<partition table_id>/<segment_id>/...   a named partition (tags may hold any
//!                                                      character, so the numeric id names the dir)
//! ```
use crate::prelude::*;

pub const DELETED_DOCS: &str = "deleted_docs";
pub const MANIFEST: &str = "manifest.json";
pub const DEFAULT_PARTITION_DIR: &str = "_default";

pub fn segment_dir(table_id: &str, segment_id: &str) -> String {
    format!("{table_id}/{segment_id}")
}

pub fn output_dir(collection: &str, partition_table_id: Option<&str>, segment_id: &str) -> String {
    format!("{collection}/{}/{segment_id}", partition_table_id.unwrap_or(DEFAULT_PARTITION_DIR))
}

pub fn npy_file(dir: &str, field: &str) -> String {
    format!("{dir}/{field}.npy")
}
