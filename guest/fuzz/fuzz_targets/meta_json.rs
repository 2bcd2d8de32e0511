//! meta.json parsing (`meta::json::from_json`): never a panic; what it accepts is consistent
//! (valid dimensions) and survives `to_json` -> `from_json` unchanged. Inputs starting with `{`
//! (and the seeds) are the text itself; others build a well-formed document with arbitrary
//! numbers and strings, so the checks after parsing see extreme values (i64 bounds, negative
//! rows, huge dimensions) and not only syntax errors.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use guest::meta::json::{from_json, to_json, FORMAT};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};

#[derive(Debug, Arbitrary)]
struct Doc {
    ours: bool,
    format: Option<String>,
    collections: Vec<Coll>,
    rows: Option<i64>,
}

#[derive(Debug, Arbitrary)]
struct Coll {
    name: String,
    metric: i64,
    rows: i64,
    dim: i64,
    segments: Vec<Seg>,
    vector_type: Option<u8>,
    engine_type: Option<i64>,
    index_params: Option<String>,
    flag: Option<i64>,
    index_file_size: Option<i64>,
    version: Option<String>,
    partitions: Option<Vec<(String, String, i64, Vec<Seg>)>>,
}

#[derive(Debug, Arbitrary)]
struct Seg {
    segment: String,
    dim: i64,
    rows: i64,
    file_size: i64,
    file_id: Option<String>,
    file_type: Option<i64>,
    has_index: Option<bool>,
}

fn seg_json(coll: &str, s: &Seg) -> Value {
    let mut v = json!({"collection": coll, "segment": s.segment, "dim": s.dim, "rows": s.rows, "fileSize": s.file_size});
    if let Some(f) = &s.file_id {
        v["fileId"] = json!(f);
    }
    if let Some(t) = s.file_type {
        v["fileType"] = json!(t);
    }
    if let Some(h) = s.has_index {
        v["hasIndex"] = json!(h);
    }
    v
}

fn doc_json(d: &Doc) -> String {
    let mut top = Map::new();
    if let Some(f) = if d.ours { Some(FORMAT) } else { d.format.as_deref() } {
        top.insert("format".into(), json!(f));
    }
    let colls: Vec<Value> = d
        .collections
        .iter()
        .map(|c| {
            let mut v = json!({"collection": c.name, "metric": c.metric, "rows": c.rows, "dim": c.dim,
                "segments": c.segments.iter().map(|s| seg_json(&c.name, s)).collect::<Vec<_>>()});
            if let Some(t) = c.vector_type {
                v["vectorType"] = json!(["float", "binary", "other"][t as usize % 3]);
            }
            for (key, val) in [("engineType", c.engine_type), ("flag", c.flag), ("indexFileSize", c.index_file_size)] {
                if let Some(n) = val {
                    v[key] = json!(n);
                }
            }
            if let Some(p) = &c.index_params {
                v["indexParams"] = json!(p);
            }
            if let Some(p) = &c.version {
                v["version"] = json!(p);
            }
            if let Some(parts) = &c.partitions {
                v["partitions"] = parts
                    .iter()
                    .map(|(tag, id, rows, segs)| {
                        json!({"tag": tag, "tableId": id, "rows": rows, "segments": segs.iter().map(|s| seg_json(&c.name, s)).collect::<Vec<_>>()})
                    })
                    .collect();
            }
            v
        })
        .collect();
    top.insert("collections".into(), Value::Array(colls));
    if let Some(r) = d.rows {
        top.insert("rows".into(), json!(r));
    }
    Value::Object(top).to_string()
}

fuzz_target!(|data: &[u8]| {
    let text = if data.first() == Some(&b'{') {
        String::from_utf8_lossy(data).into_owned()
    } else {
        match Doc::arbitrary_take_rest(Unstructured::new(data)) {
            Ok(d) => doc_json(&d),
            Err(_) => return,
        }
    };
    let inst = match from_json(&text, "meta.json") {
        Ok(inst) => inst,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    for c in &inst.collections {
        assert!(c.vector.row_bytes(c.dim).is_some(), "accepted dim {} for {:?}", c.dim, c.vector);
        assert_eq!(c.default.table_id, c.name);
        assert!(c.default.tag.is_empty());
    }
    let again = to_json(&inst);
    assert!(again.contains(FORMAT));
    let back = from_json(&again, "meta.json").unwrap_or_else(|e| panic!("our own meta.json does not load: {e}\n{again}"));
    assert_eq!(back.collections, inst.collections, "round trip changed the installation");
    assert!(back.warnings.is_empty(), "{:?}", back.warnings);
    assert_eq!(to_json(&back), again, "to_json is not stable");
});
