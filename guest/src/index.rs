//! The 1.x index (engine_type + index_params + metric_type) as a 2.x index, per target version.
//!
//! Same type and parameters where 2.x has them; otherwise the closest supported choice, with a
//! warning that says why (spec: milvus1x-format.md §3.3-3.6, milvus2x-protocol.md §9).
use crate::prelude::*;

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::meta::VectorKind;

/// What the user asked for (`migration.index`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexMode {
    /// Re-create the 1.x index (default).
    Keep,
    /// Let Milvus choose (AUTOINDEX) with the 1.x metric.
    AutoIndex,
    /// No index (the collection cannot be loaded until one is made).
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSpec {
    pub index_type: String,
    pub metric: String,
    /// Build parameters as a JSON object.
    pub params: String,
}

/// A 2.x server version, from its version string (`v2.3.5`, `2.4.0-rc`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32);

impl Version {
    /// Unknown versions count as the newest line (2.6).
    pub fn parse(s: &str) -> Self {
        let digits: Vec<u32> = s
            .trim_start_matches(|c: char| !c.is_ascii_digit())
            .split(|c: char| !c.is_ascii_digit())
            .take(2)
            .filter_map(|p| p.parse().ok())
            .collect();
        match digits.as_slice() {
            [a, b] => Version(*a, *b),
            _ => Version(2, 6),
        }
    }
}

/// The 2.x metric for a 1.x metric_type on this server, with a warning when it had to change.
pub fn metric(metric_type: u32, v: Version) -> Result<(&'static str, Option<String>)> {
    Ok(match metric_type {
        1 => ("L2", None),
        2 => ("IP", None),
        3 => ("HAMMING", None),
        4 => ("JACCARD", None),
        5 if v < Version(2, 3) => ("TANIMOTO", None),
        5 => ("JACCARD", Some("TANIMOTO is not in Milvus 2.3+; JACCARD ranks binary vectors the same way".into())),
        6 => ("SUBSTRUCTURE", None),
        7 => ("SUPERSTRUCTURE", None),
        m => return Err(Error::Unsupported(format!("1.x metric_type {m} has no 2.x metric"))),
    })
}

fn params(index_params: &str) -> Map<String, Value> {
    serde_json::from_str::<Value>(index_params).ok().and_then(|v| v.as_object().cloned()).unwrap_or_default()
}

/// Keeps the listed keys of the 1.x parameters, with defaults for missing ones.
fn pick(p: &Map<String, Value>, keys: &[(&str, i64)]) -> String {
    let mut out = Map::new();
    for (k, default) in keys {
        out.insert(k.to_string(), p.get(*k).cloned().unwrap_or(json!(default)));
    }
    Value::Object(out).to_string()
}

/// The 2.x index for a 1.x collection, and what changed on the way.
pub fn map_index(
    engine_type: u32,
    index_params: &str,
    metric_type: u32,
    vector: VectorKind,
    mode: IndexMode,
    v: Version,
) -> Result<(Option<IndexSpec>, Vec<String>)> {
    let (metric, metric_warning) = metric(metric_type, v)?;
    let mut warnings: Vec<String> = metric_warning.into_iter().collect();
    let spec = |t: &str, params: String| IndexSpec { index_type: t.into(), metric: metric.into(), params };
    match mode {
        IndexMode::None => return Ok((None, vec!["no index (migration.index: none); load needs one".into()])),
        IndexMode::AutoIndex => return Ok((Some(spec("AUTOINDEX", "{}".into())), warnings)),
        IndexMode::Keep => {}
    }
    let p = params(index_params);
    let nlist = [("nlist", 2048)];
    let s = match (vector, engine_type) {
        // SUBSTRUCTURE / SUPERSTRUCTURE only work with a flat index.
        (VectorKind::Binary, _) if metric_type >= 6 => {
            if engine_type == 10 {
                warnings.push(format!("{metric} needs BIN_FLAT; the 1.x BIN_IVF_FLAT index is not re-created as such"));
            }
            spec("BIN_FLAT", "{}".into())
        }
        (VectorKind::Binary, 10) => spec("BIN_IVF_FLAT", pick(&p, &nlist)),
        (VectorKind::Binary, 1 | 9) => spec("BIN_FLAT", "{}".into()),
        (VectorKind::Binary, e) => {
            warnings.push(format!("1.x engine_type {e} on binary vectors has no 2.x twin; using BIN_FLAT"));
            spec("BIN_FLAT", "{}".into())
        }
        (VectorKind::Float, 1) => spec("FLAT", "{}".into()),
        (VectorKind::Float, 2) => spec("IVF_FLAT", pick(&p, &nlist)),
        (VectorKind::Float, 3) => spec("IVF_SQ8", pick(&p, &nlist)),
        (VectorKind::Float, 5) => {
            warnings.push("IVF_SQ8H (GPU) has no 2.x twin; using IVF_SQ8 with the same nlist".into());
            spec("IVF_SQ8", pick(&p, &nlist))
        }
        (VectorKind::Float, 6) => {
            let mut out = Map::new();
            out.insert("nlist".into(), p.get("nlist").cloned().unwrap_or(json!(2048)));
            out.insert("m".into(), p.get("m").cloned().unwrap_or(json!(8)));
            out.insert("nbits".into(), p.get("nbits").cloned().unwrap_or(json!(8)));
            spec("IVF_PQ", Value::Object(out).to_string())
        }
        (VectorKind::Float, 11) => spec("HNSW", pick(&p, &[("M", 16), ("efConstruction", 200)])),
        (VectorKind::Float, 12) if v < Version(2, 3) => spec("ANNOY", pick(&p, &[("n_trees", 8)])),
        (VectorKind::Float, e @ (4 | 7 | 8 | 12)) => {
            let name = match e {
                4 => "RNSG",
                7 => "SPTAG_KDT",
                8 => "SPTAG_BKT",
                _ => "ANNOY (removed in 2.3)",
            };
            warnings.push(format!("1.x index {name} has no 2.x twin; using HNSW (M 16, efConstruction 200), the closest graph index"));
            spec("HNSW", json!({"M": 16, "efConstruction": 200}).to_string())
        }
        (VectorKind::Float, e) => {
            warnings.push(format!("unknown 1.x engine_type {e}; using FLAT"));
            spec("FLAT", "{}".into())
        }
    };
    Ok((Some(s), warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    const V23: Version = Version(2, 3);

    fn keep(engine: u32, params: &str, metric: u32, vector: VectorKind) -> (IndexSpec, Vec<String>) {
        let (s, w) = map_index(engine, params, metric, vector, IndexMode::Keep, V23).unwrap();
        (s.unwrap(), w)
    }

    #[test]
    fn twins_keep_type_params_and_metric() {
        let (s, w) = keep(11, r#"{"M":32,"efConstruction":300}"#, 2, VectorKind::Float);
        assert_eq!((s.index_type.as_str(), s.metric.as_str(), s.params.as_str()), ("HNSW", "IP", r#"{"M":32,"efConstruction":300}"#));
        assert!(w.is_empty());
        let (s, _) = keep(6, r#"{"nlist":1024,"m":16}"#, 1, VectorKind::Float);
        assert_eq!(s.params, r#"{"m":16,"nbits":8,"nlist":1024}"#);
        let (s, _) = keep(10, r#"{"nlist":16}"#, 4, VectorKind::Binary);
        assert_eq!((s.index_type.as_str(), s.metric.as_str()), ("BIN_IVF_FLAT", "JACCARD"));
    }

    #[test]
    fn missing_types_and_metrics_get_the_closest_with_a_reason() {
        let (s, w) = keep(4, r#"{"search_length":45}"#, 1, VectorKind::Float);
        assert_eq!(s.index_type, "HNSW");
        assert!(w[0].contains("RNSG has no 2.x twin"));
        let (s, w) = keep(9, "{}", 5, VectorKind::Binary);
        assert_eq!(s.metric, "JACCARD");
        assert!(w[0].contains("TANIMOTO"));
        let (s, _) = map_index(9, "{}", 5, VectorKind::Binary, IndexMode::Keep, Version(2, 2)).unwrap();
        assert_eq!(s.unwrap().metric, "TANIMOTO");
        let (s, w) = keep(10, r#"{"nlist":16}"#, 6, VectorKind::Binary);
        assert_eq!(s.index_type, "BIN_FLAT");
        assert!(w[0].contains("SUBSTRUCTURE needs BIN_FLAT"));
        let (s, _) = map_index(12, r#"{"n_trees":4}"#, 1, VectorKind::Float, IndexMode::Keep, Version(2, 2)).unwrap();
        assert_eq!(s.unwrap().index_type, "ANNOY");
        assert_eq!(keep(12, "{}", 1, VectorKind::Float).0.index_type, "HNSW");
    }

    #[test]
    fn modes_and_versions() {
        let (s, _) = map_index(11, "{}", 1, VectorKind::Float, IndexMode::AutoIndex, V23).unwrap();
        assert_eq!(s.unwrap().index_type, "AUTOINDEX");
        assert!(map_index(11, "{}", 1, VectorKind::Float, IndexMode::None, V23).unwrap().0.is_none());
        assert_eq!(Version::parse("v2.3.5-lite"), Version(2, 3));
        assert_eq!(Version::parse("2.4.0-rc.1"), Version(2, 4));
        assert_eq!(Version::parse("unknown"), Version(2, 6));
    }
}
