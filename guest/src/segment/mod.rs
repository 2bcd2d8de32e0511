//! The 1.x segment files: counted headers of `.rv` / `.uid` and the `deleted_docs` offset set.
pub mod deleted;
pub mod header;

pub use deleted::DeletedSet;
pub use header::CountedFile;
