//! 2.x naming rules, and the mapping of 1.x partition tags (any characters) onto them.
use crate::prelude::*;

use alloc::collections::BTreeSet;

pub const DEFAULT_PARTITION: &str = "_default";
const MAX_NAME: usize = 255;

/// A valid 2.x collection, partition or field name: a letter or `_`, then letters, digits, `_`.
pub fn is_valid(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= MAX_NAME
}

/// Fails naming every wanted collection that `known` lacks; `source` says where they were looked for.
pub fn check_selection(wanted: &[String], known: &[&str], source: &str) -> crate::error::Result<()> {
    let unknown: Vec<String> = wanted.iter().filter(|n| !known.contains(&n.as_str())).map(|n| format!("{n:?}")).collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(crate::error::Error::NotFound(format!(
        "collection(s) {} not in {source} (it has: {})",
        unknown.join(", "),
        if known.is_empty() { "none".to_string() } else { known.join(", ") }
    )))
}

/// 2.x partition names for 1.x tags (in order; "" is the default partition). A valid tag keeps
/// its name; another gets its invalid characters replaced by `_` (a leading digit gets a `p_`
/// prefix), and a numbered suffix when that collides.
pub fn partition_names(tags: &[&str]) -> Vec<String> {
    let mut taken: BTreeSet<String> = [DEFAULT_PARTITION.to_string()].into();
    taken.extend(tags.iter().filter(|t| !t.is_empty() && is_valid(t)).map(|t| t.to_string()));
    tags.iter()
        .map(|tag| {
            if tag.is_empty() {
                return DEFAULT_PARTITION.to_string();
            }
            if is_valid(tag) && *tag != DEFAULT_PARTITION {
                return tag.to_string();
            }
            let mut base: String = tag.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
            if !base.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
                base.insert_str(0, "p_");
            }
            base.truncate(MAX_NAME - 8);
            let mut name = base.clone();
            let mut n = 2;
            while taken.contains(&name) {
                name = format!("{base}_{n}");
                n += 1;
            }
            taken.insert(name.clone());
            name
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_map_to_valid_unique_names() {
        let names = partition_names(&["", "ok_tag", "2024 Q1/sales", "2024_Q1_sales", "é", "_default", "x-y", "x_y"]);
        assert_eq!(names, ["_default", "ok_tag", "p_2024_Q1_sales", "p_2024_Q1_sales_2", "_", "_default_2", "x_y_2", "x_y"]);
        assert!(names.iter().all(|n| is_valid(n)));
    }

    #[test]
    fn validity() {
        assert!(is_valid("books") && is_valid("_x1"));
        assert!(!is_valid("1612530150221496000") && !is_valid("") && !is_valid("a-b"));
    }
}
