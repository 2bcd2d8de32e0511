//! The timestamp each read of a collection must see up to, so that counts and queries need not
//! ask for `Strong` consistency.
//!
//! `Strong` makes the server wait for its next time tick on every count and query (201 ms a
//! count on 2.3.5 here, against 3.0 ms with a guarantee timestamp already reached), and
//! `verify --full` makes one per key range and one per key the source repeats. A read instead
//! passes, as its guarantee timestamp (consistency `Customized`), the collection's last flush by
//! this process (2.3+ returns the flush's timestamp), moved on by each write this process made to
//! it since. Verify, reconcile and the load flush before they read, and a flush comes after every
//! write it must cover, so a read sees all that `Strong` would have shown it. A collection this
//! process has not flushed (or a 2.2 server, whose flush returns no timestamp) is read `Strong`.
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct ReadTs(Mutex<HashMap<String, u64>>);

impl ReadTs {
    /// A flush of `key` (database/collection) finished, covering writes up to `ts`.
    pub fn flushed(&self, key: String, ts: u64) {
        if ts > 0 {
            let mut m = self.0.lock().expect("read timestamps");
            let t = m.entry(key).or_insert(ts);
            *t = (*t).max(ts);
        }
    }

    /// This process wrote to `key` at `ts`: reads after a flush must see it too.
    pub fn wrote(&self, key: &str, ts: u64) {
        if let Some(t) = self.0.lock().expect("read timestamps").get_mut(key) {
            *t = (*t).max(ts);
        }
    }

    /// The guarantee timestamp for a read of `key`; `None`: read with `Strong`.
    pub fn get(&self, key: &str) -> Option<u64> {
        self.0.lock().expect("read timestamps").get(key).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_strong_until_a_flush_then_follow_the_newest_flush_or_write() {
        let r = ReadTs::default();
        r.wrote("db/c", 50);
        assert_eq!(r.get("db/c"), None, "a write alone does not say what earlier writers did");
        r.flushed("db/c".into(), 0);
        assert_eq!(r.get("db/c"), None, "no flush timestamp (2.2): Strong");
        r.flushed("db/c".into(), 100);
        r.wrote("db/c", 90);
        assert_eq!(r.get("db/c"), Some(100), "never moves back");
        r.wrote("db/c", 120);
        assert_eq!(r.get("db/c"), Some(120));
        r.flushed("db/c".into(), 110);
        assert_eq!(r.get("db/c"), Some(120));
        assert_eq!(r.get("db/other"), None, "per collection");
    }
}
