//! The load journal, in the target store next to the dump: one small file per file group, so a
//! re-run knows what was already imported and never imports it twice.
//!
//! ```text
//! _journal/<collection>/<partition dir>/<segment>.json   {"task": 7, "state": "completed", ...}
//! ```
//! Written three times: before the import is submitted (`submitting`, the intent: a run killed
//! right after submitting asks the server whether the task exists instead of submitting again),
//! once the server has given the task id (`submitted`), and when the task ends.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::{read_exact, Reader, Role, Store, Writer};

const DIR: &str = "_journal";
const MAX_ENTRY_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Submitting,
    Submitted,
    Completed,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub collection: String,
    pub partition: String,
    pub files: Vec<String>,
    /// The files' CRC-32C from the manifest when the import was submitted.
    #[serde(default)]
    pub checksums: Vec<String>,
    pub task: i64,
    pub state: State,
    pub rows: u64,
    #[serde(default)]
    pub reason: String,
}

/// The journal path of the group whose first file is `first_file` (`<dir>/<field>.npy`).
pub fn path_for(first_file: &str) -> String {
    let dir = first_file.rsplit_once('/').map_or(first_file, |(d, _)| d);
    format!("{DIR}/{dir}.json")
}

pub fn read(store: &impl Store, path: &str) -> Result<Option<Entry>> {
    let Some(size) = store.stat(Role::Target, path)? else { return Ok(None) };
    if size > MAX_ENTRY_BYTES {
        return Err(Error::invalid(path, None, format!("{size} bytes is too large for a journal entry")));
    }
    let r = store.open(Role::Target, path)?;
    let bytes = read_exact(&r, r.size() as usize, path, 0)?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::invalid(path, None, format!("unreadable journal entry ({e}); delete it only if you know the import did not run")))
}

pub fn write(store: &impl Store, path: &str, entry: &Entry) -> Result<()> {
    let w = store.create(Role::Target, path)?;
    w.write(&serde_json::to_vec_pretty(entry).expect("entry serializes"))?;
    w.finish().map(|_| ())
}
