//! What a correct dump of a generated installation contains, and the check against real output.

use std::path::Path;

use anyhow::{bail, ensure, Context};

use crate::npy::NpyFile;

#[derive(Debug, Clone, Default)]
pub struct Expected {
    pub collections: Vec<ExpectedCollection>,
}

#[derive(Debug, Clone)]
pub struct ExpectedCollection {
    pub name: String,
    pub binary: bool,
    pub dim: u32,
    pub partitions: Vec<ExpectedPartition>,
}

#[derive(Debug, Clone)]
pub struct ExpectedPartition {
    /// Empty for the default partition.
    pub tag: String,
    pub table_id: String,
    pub segments: Vec<ExpectedSegment>,
}

#[derive(Debug, Clone)]
pub struct ExpectedSegment {
    pub segment_id: String,
    pub rows_in: u64,
    /// Live ids in file order.
    pub ids: Vec<i64>,
    /// Live rows' vector bytes, back to back.
    pub vectors: Vec<u8>,
}

impl ExpectedPartition {
    pub fn dir_name(&self) -> &str {
        if self.tag.is_empty() {
            "_default"
        } else {
            &self.table_id
        }
    }
}

/// Every packed segment's rows as its pack holds them (segment id -> ids, vector bytes), read
/// from the pack's file groups in order and cut by the manifest's row counts.
fn read_packs(out: &Path, mp: &serde_json::Value, width: usize) -> anyhow::Result<std::collections::HashMap<String, (Vec<i64>, Vec<u8>)>> {
    let mut packed = std::collections::HashMap::new();
    for pk in mp["packs"].as_array().into_iter().flatten() {
        let (mut ids, mut vectors) = (Vec::new(), Vec::new());
        for g in pk["groups"].as_array().into_iter().flatten() {
            let dir = out.join(g["dir"].as_str().context("group dir")?);
            let i = NpyFile::read(&dir.join("id.npy"))?;
            ensure!(i.descr == "<i8" && i.shape == vec![g["rows"].as_u64().unwrap_or(0)], "{}: id.npy {:?} {:?}", dir.display(), i.descr, i.shape);
            ids.extend(i.data.chunks(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())));
            vectors.extend(NpyFile::read(&dir.join("data.npy"))?.data);
        }
        ensure!(pk["rows"] == ids.len() && vectors.len() == ids.len() * width, "pack {}: {} ids, {} vector bytes", pk["dir"], ids.len(), vectors.len());
        let mut at = 0;
        for seg in pk["segments"].as_array().into_iter().flatten() {
            let entry = mp["segments"].as_array().into_iter().flatten().find(|m| m["segment"] == *seg).context("pack segment in manifest")?;
            let n = entry["rows"].as_u64().context("rows")? as usize;
            packed.insert(seg.as_str().unwrap_or("").to_string(), (ids[at..at + n].to_vec(), vectors[at * width..(at + n) * width].to_vec()));
            at += n;
        }
    }
    Ok(packed)
}

impl Expected {
    pub fn live_rows(&self) -> u64 {
        self.collections.iter().flat_map(|c| &c.partitions).flat_map(|p| &p.segments).map(|s| s.ids.len() as u64).sum()
    }

    /// Compares a dump's output directory with the expectation: every live row exactly, no
    /// deleted row, no extra collection, partition or segment, and a manifest that agrees.
    pub fn check_dump(&self, out: &Path) -> anyhow::Result<()> {
        let manifest: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out.join("manifest.json")).context("manifest.json missing")?,
        )?;
        ensure!(manifest["rows"] == self.live_rows(), "manifest rows {} != expected {}", manifest["rows"], self.live_rows());
        let mut dirs: Vec<String> = std::fs::read_dir(out)?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "_journal" && n != "_lease") // the load journal and the lease, not dump output
            .collect();
        dirs.sort();
        let mut want: Vec<String> = self.collections.iter().map(|c| c.name.clone()).collect();
        want.sort();
        ensure!(dirs == want, "collections in output {dirs:?}, expected {want:?}");
        for c in &self.collections {
            let mc = manifest["collections"].as_array().unwrap().iter().find(|m| m["name"] == c.name.as_str());
            let mc = mc.with_context(|| format!("{} not in manifest", c.name))?;
            ensure!(mc["vectorType"] == if c.binary { "binary" } else { "float" }, "{}: vectorType {}", c.name, mc["vectorType"]);
            for p in &c.partitions {
                let mp = mc["partitions"].as_array().unwrap().iter().find(|m| m["tag"] == p.tag.as_str());
                let mp = mp.with_context(|| format!("{}: partition {:?} not in manifest", c.name, p.tag))?;
                let pdir = out.join(&c.name).join(p.dir_name());
                let width = if c.binary { c.dim as usize / 8 } else { c.dim as usize * 4 };
                let packed = read_packs(out, mp, width)?;
                for s in &p.segments {
                    let sdir = pdir.join(&s.segment_id);
                    let ms = mp["segments"].as_array().unwrap().iter().find(|m| m["segment"] == s.segment_id.as_str());
                    let ms = ms.with_context(|| format!("segment {} not in manifest", s.segment_id))?;
                    ensure!(ms["rows"] == s.ids.len(), "segment {}: manifest rows {}", s.segment_id, ms["rows"]);
                    if let Some(pack) = ms["pack"].as_str() {
                        let (ids, vectors) = packed.get(&s.segment_id).with_context(|| format!("segment {} not in pack {pack}", s.segment_id))?;
                        ensure!(*ids == s.ids, "segment {} in pack {pack}: ids differ", s.segment_id);
                        ensure!(*vectors == s.vectors, "segment {} in pack {pack}: vector bytes differ", s.segment_id);
                        ensure!(!sdir.exists(), "{}: a packed segment has a directory of its own", sdir.display());
                        continue;
                    }
                    if s.ids.is_empty() {
                        ensure!(!sdir.join("id.npy").exists(), "{}: empty segment has files", sdir.display());
                        continue;
                    }
                    let ids = NpyFile::read(&sdir.join("id.npy"))?;
                    ensure!(ids.descr == "<i8" && ids.shape == vec![s.ids.len() as u64], "{}: id.npy {:?} {:?}", sdir.display(), ids.descr, ids.shape);
                    let got: Vec<i64> = ids.data.chunks(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect();
                    ensure!(got == s.ids, "{}: ids differ", sdir.display());
                    let v = NpyFile::read(&sdir.join("data.npy"))?;
                    let (descr, width) = if c.binary { ("|u1", c.dim as u64 / 8) } else { ("<f4", c.dim as u64) };
                    ensure!(v.descr == descr && v.shape == vec![s.ids.len() as u64, width], "{}: data.npy {} {:?}", sdir.display(), v.descr, v.shape);
                    if v.data != s.vectors {
                        bail!("{}: vector bytes differ", sdir.display());
                    }
                }
                let mut seg_dirs: Vec<String> = std::fs::read_dir(&pdir)
                    .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
                    .unwrap_or_default();
                seg_dirs.sort();
                let mut want: Vec<String> = p.segments.iter().filter(|s| !s.ids.is_empty() && !packed.contains_key(&s.segment_id)).map(|s| s.segment_id.clone()).collect();
                for pk in mp["packs"].as_array().into_iter().flatten().filter(|pk| pk["rows"].as_u64() > Some(0)) {
                    want.push(pk["dir"].as_str().unwrap_or("").rsplit('/').next().unwrap_or("").to_string());
                }
                want.sort();
                ensure!(seg_dirs == want, "{}: segment dirs {seg_dirs:?}, expected {want:?}", pdir.display());
            }
        }
        Ok(())
    }
}
