//! meta.json: the Go tool's document, plus keys of our own so that nothing is lost.
//!
//! Go tool keys: `collections[].{collection, metric, rows, dim, segments[].{collection, segment,
//! dim, rows, fileSize}}` and a top-level `rows`. Its `segments` are the collection's own files
//! (the default partition); it exports partitions as if they were collections.
//! Ours (all optional on reading): `format`, and per collection `vectorType`, `engineType`,
//! `indexParams`, `flag`, `indexFileSize`, `version`, `partitions[].{tag, tableId, rows,
//! segments}`; per segment `tableId`, `fileId`, `fileType`, `hasIndex`.
//! A Go-tool document (no `format`) still loads; what it lacks is inferred and said so.
use crate::prelude::*;

use serde::{Deserialize, Serialize};

use super::model::{Collection, Installation, Partition, Segment, VectorKind, FILE_RAW};
use crate::error::{Error, Result};

pub const FORMAT: &str = "milvus-migration-rs/meta/1";

#[derive(Debug, Serialize, Deserialize)]
struct MetaJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    format: Option<String>,
    collections: Vec<CollectionJson>,
    #[serde(default)]
    rows: i64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CollectionJson {
    collection: String,
    metric: i64,
    rows: i64,
    dim: i64,
    #[serde(default)]
    segments: Vec<SegmentJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    vector_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    engine_type: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    index_params: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    flag: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    index_file_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    partitions: Option<Vec<PartitionJson>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PartitionJson {
    tag: String,
    table_id: String,
    rows: i64,
    segments: Vec<SegmentJson>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SegmentJson {
    collection: String,
    segment: String,
    dim: i64,
    rows: i64,
    file_size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    table_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file_type: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    has_index: Option<bool>,
}

fn segment_json(c: &Collection, p: &Partition, s: &Segment) -> SegmentJson {
    SegmentJson {
        collection: c.name.clone(),
        segment: s.segment_id.clone(),
        dim: c.dim as i64,
        rows: s.row_count,
        file_size: s.file_size,
        table_id: Some(p.table_id.clone()),
        file_id: Some(s.file_id.clone()),
        file_type: Some(s.file_type),
        has_index: Some(s.has_index),
    }
}

/// The meta.json text for an installation.
pub fn to_json(inst: &Installation) -> String {
    let collections: Vec<CollectionJson> = inst
        .collections
        .iter()
        .map(|c| CollectionJson {
            collection: c.name.clone(),
            metric: c.metric,
            rows: c.rows(),
            dim: c.dim as i64,
            segments: c.default.segments.iter().map(|s| segment_json(c, &c.default, s)).collect(),
            vector_type: Some(c.vector.name().to_string()),
            engine_type: Some(c.engine_type),
            index_params: Some(c.index_params.clone()),
            flag: Some(c.flag),
            index_file_size: Some(c.index_file_size),
            version: Some(c.version.clone()),
            partitions: Some(
                c.partitions
                    .iter()
                    .map(|p| PartitionJson {
                        tag: p.tag.clone(),
                        table_id: p.table_id.clone(),
                        rows: p.rows(),
                        segments: p.segments.iter().map(|s| segment_json(c, p, s)).collect(),
                    })
                    .collect(),
            ),
        })
        .collect();
    let rows = collections.iter().fold(0i64, |sum, c| sum.saturating_add(c.rows));
    let doc = MetaJson { format: Some(FORMAT.to_string()), collections, rows };
    serde_json::to_string_pretty(&doc).expect("meta.json serializes")
}

fn segment_from(s: SegmentJson, engine_type: i64) -> Segment {
    Segment {
        file_id: s.file_id.unwrap_or_else(|| s.segment.clone()),
        segment_id: s.segment,
        file_type: s.file_type.unwrap_or(FILE_RAW),
        file_size: s.file_size,
        row_count: s.rows,
        engine_type,
        has_index: s.has_index.unwrap_or(false),
    }
}

/// Reads meta.json (ours or the Go tool's); `source` names the document in errors.
pub fn from_json(text: &str, source: &str) -> Result<Installation> {
    let doc: MetaJson = serde_json::from_str(text).map_err(|e| {
        Error::invalid(source, Some(e.line() as u64), format!("not a valid meta.json: {e}"))
    })?;
    let ours = doc.format.as_deref() == Some(FORMAT);
    if let Some(f) = doc.format.as_deref().filter(|f| *f != FORMAT) {
        return Err(Error::Unsupported(format!("{source}: meta.json format {f:?} is not known (expected {FORMAT:?})")));
    }
    let mut warnings = Vec::new();
    if !ours {
        warnings.push(format!(
            "{source} was written by the Go tool: partitions, index settings and binary/float are not recorded there; \
             vector type is inferred from the metric, the index from nothing (FLAT), and partitions appear as collections"
        ));
    }
    let mut collections = Vec::new();
    for c in doc.collections {
        let vector = match c.vector_type.as_deref() {
            Some("float") => VectorKind::Float,
            Some("binary") => VectorKind::Binary,
            Some(other) => {
                return Err(Error::invalid(source, None, format!("collection {:?}: unknown vectorType {other:?}", c.collection)))
            }
            None => VectorKind::from_metric(c.metric).ok_or_else(|| {
                Error::Unsupported(format!("{source}: collection {:?} has metric {}, not a 1.x metric (1-7)", c.collection, c.metric))
            })?,
        };
        let dim = u32::try_from(c.dim).ok().filter(|d| vector.row_bytes(*d).is_some()).ok_or_else(|| {
            Error::invalid(source, None, format!("collection {:?}: dim {} is not valid for {} vectors", c.collection, c.dim, vector.name()))
        })?;
        let engine_type = c.engine_type.unwrap_or(1);
        let partitions = c
            .partitions
            .unwrap_or_default()
            .into_iter()
            .map(|p| Partition {
                tag: p.tag,
                table_id: p.table_id,
                segments: p.segments.into_iter().map(|s| segment_from(s, engine_type)).collect(),
            })
            .collect();
        collections.push(Collection {
            default: Partition {
                tag: String::new(),
                table_id: c.collection.clone(),
                segments: c.segments.into_iter().map(|s| segment_from(s, engine_type)).collect(),
            },
            name: c.collection,
            dim,
            metric: c.metric,
            vector,
            engine_type,
            index_params: c.index_params.unwrap_or_else(|| "{}".to_string()),
            flag: c.flag.unwrap_or(0),
            index_file_size: c.index_file_size.unwrap_or(0),
            version: c.version.unwrap_or_default(),
            partitions,
        });
    }
    Ok(Installation { collections, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_go_tools_fixture() {
        let go = r#"{"collections":[{"collection":"test1w","metric":1,"rows":10000,"dim":256,
          "segments":[{"collection":"test1w","segment":"1678354366132931000","dim":256,"rows":10000,"fileSize":10320000}]}],
          "rows":10000}"#;
        let inst = from_json(go, "meta.json").unwrap();
        let c = &inst.collections[0];
        assert_eq!((c.name.as_str(), c.dim, c.vector), ("test1w", 256, VectorKind::Float));
        assert_eq!(c.default.table_id, "test1w");
        assert_eq!(c.default.segments[0].row_count, 10000);
        assert_eq!(inst.warnings.len(), 1);
    }

    #[test]
    fn our_document_round_trips_and_keeps_go_keys() {
        let inst = Installation {
            collections: vec![Collection {
                name: "b".into(),
                dim: 64,
                metric: 4,
                vector: VectorKind::Binary,
                engine_type: 10,
                index_params: r#"{"nlist":16}"#.into(),
                flag: 2,
                index_file_size: 1024,
                version: "1.1.1".into(),
                default: Partition { tag: String::new(), table_id: "b".into(), segments: vec![] },
                partitions: vec![Partition {
                    tag: "p/1".into(),
                    table_id: "1614841359084566000".into(),
                    segments: vec![Segment {
                        segment_id: "9".into(),
                        file_id: "9".into(),
                        file_type: 7,
                        file_size: 160,
                        row_count: 10,
                        engine_type: 10,
                        has_index: true,
                    }],
                }],
            }],
            warnings: vec![],
        };
        let text = to_json(&inst);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["rows"], 10);
        assert_eq!(v["collections"][0]["collection"], "b");
        assert_eq!(v["collections"][0]["partitions"][0]["segments"][0]["fileSize"], 160);
        let back = from_json(&text, "meta.json").unwrap();
        assert_eq!(back.collections, inst.collections);
        assert!(back.warnings.is_empty());
    }

    #[test]
    fn huge_row_counts_saturate_instead_of_overflowing() {
        // Found by the meta_json fuzz target: row counts whose sum overflows i64 made to_json
        // panic (debug) or wrap (release).
        let seg = |id: &str| {
            format!(r#"{{"collection":"a","segment":"{id}","dim":2,"rows":9223372036854775807,"fileSize":1}}"#)
        };
        let text = format!(
            r#"{{"collections":[{{"collection":"a","metric":1,"rows":1,"dim":2,"segments":[{},{}]}},
                {{"collection":"b","metric":1,"rows":1,"dim":2,"segments":[{}]}}],"rows":1}}"#,
            seg("1"),
            seg("2"),
            seg("3")
        );
        let inst = from_json(&text, "meta.json").unwrap();
        assert_eq!(inst.collections[0].rows(), i64::MAX);
        let v: serde_json::Value = serde_json::from_str(&to_json(&inst)).unwrap();
        assert_eq!((v["rows"].as_i64(), v["collections"][0]["rows"].as_i64()), (Some(i64::MAX), Some(i64::MAX)));
    }

    #[test]
    fn garbage_names_the_document() {
        let err = from_json("{\"collections\": 3}", "/x/meta.json").unwrap_err().to_string();
        assert!(err.contains("/x/meta.json") && err.contains("not a valid meta.json"), "{err}");
    }
}
