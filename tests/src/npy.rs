//! A small, strict .npy reader for checking dump output (version 1.0, C order).

use std::path::Path;

use anyhow::{bail, ensure, Context};

#[derive(Debug)]
pub struct NpyFile {
    pub header_text: String,
    pub descr: String,
    pub shape: Vec<u64>,
    pub data: Vec<u8>,
}

impl NpyFile {
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
        Self::parse(&bytes).with_context(|| format!("parse {}", path.display()))
    }

    pub fn parse(bytes: &[u8]) -> anyhow::Result<Self> {
        ensure!(bytes.len() >= 10 && &bytes[..6] == b"\x93NUMPY", "not an npy file");
        ensure!(bytes[6] == 1 && bytes[7] == 0, "version {}.{}", bytes[6], bytes[7]);
        let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        ensure!((10 + hlen) % 64 == 0, "header not aligned to 64");
        let text = std::str::from_utf8(&bytes[10..10 + hlen])?.to_string();
        ensure!(text.ends_with('\n'), "header does not end in newline");
        let descr = between(&text, "{'descr': '", "', 'fortran_order': False, 'shape': (")?;
        let shape_text = between(&text, "'shape': (", "), }")?;
        let shape = shape_text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<u64>())
            .collect::<Result<Vec<_>, _>>()?;
        let data = bytes[10 + hlen..].to_vec();
        let elem = match descr.as_str() {
            "<f4" => 4,
            "<i8" => 8,
            "|u1" => 1,
            d => bail!("unexpected descr {d}"),
        };
        let n: u64 = shape.iter().product();
        ensure!(data.len() as u64 == n * elem, "data is {} bytes, shape {:?} needs {}", data.len(), shape, n * elem);
        Ok(NpyFile { header_text: text, descr, shape, data })
    }
}

fn between(text: &str, start: &str, end: &str) -> anyhow::Result<String> {
    let a = text.find(start).with_context(|| format!("{start:?} missing in {text:?}"))? + start.len();
    let b = text[a..].find(end).with_context(|| format!("{end:?} missing in {text:?}"))? + a;
    Ok(text[a..b].to_string())
}
