//! NumPy `.npy` headers, byte for byte as `np.save` writes them.
//!
//! Written by hand rather than with npyz: the dump copies raw little-endian rows straight from
//! the 1.x files without decoding elements, so only the header is needed, and Milvus' npyio
//! parser is positional, so the text must match numpy's exactly (key order, `, ` before `}`,
//! the growth padding numpy >= 1.24 adds, space padding to a multiple of 64, final `\n`).
use crate::prelude::*;

/// Element types the migration writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    /// little-endian f32 (FloatVector)
    F4,
    /// u8 (BinaryVector, packed bits)
    U1,
    /// little-endian i64 (primary keys)
    I8,
}

impl Dtype {
    pub fn descr(self) -> &'static str {
        match self {
            Dtype::F4 => "<f4",
            Dtype::U1 => "|u1",
            Dtype::I8 => "<i8",
        }
    }
}

const MAGIC: &[u8] = b"\x93NUMPY";
/// numpy's `ARRAY_ALIGN`.
const ALIGN: usize = 64;
/// numpy's `GROWTH_AXIS_MAX_DIGITS`: spare room so the first axis can grow in place.
const GROWTH_AXIS_MAX_DIGITS: usize = 21;

/// The complete header (magic, version 1.0, length, dict text, padding) for a C-order array.
pub fn header(dtype: Dtype, shape: &[u64]) -> Vec<u8> {
    let shape_text = match shape {
        [] => "()".to_string(),
        [n] => format!("({n},)"),
        dims => format!("({})", dims.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")),
    };
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
        dtype.descr(),
        shape_text
    );
    if let Some(first) = shape.first() {
        let digits = first.to_string().len();
        dict.push_str(&" ".repeat(GROWTH_AXIS_MAX_DIGITS.saturating_sub(digits)));
    }
    // magic (6) + version (2) + u16 length (2) + dict + '\n', padded with spaces before the '\n'.
    let hlen = dict.len() + 1;
    let pad = ALIGN - ((MAGIC.len() + 2 + 2 + hlen) % ALIGN);
    let total_len = hlen + pad;
    assert!(total_len <= u16::MAX as usize, "npy header of {total_len} bytes needs format 2.0");
    let mut out = Vec::with_capacity(10 + total_len);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(total_len as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(out.len() + pad, b' ');
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_matrix_header_is_numpys() {
        // np.save of np.zeros((1000, 128), '<f4'), numpy 2.x: 128-byte header.
        let h = header(Dtype::F4, &[1000, 128]);
        assert_eq!(h.len(), 128);
        let text = core::str::from_utf8(&h[10..]).unwrap();
        assert!(text.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (1000, 128), }"));
        assert!(text.ends_with(" \n"));
        assert_eq!(u16::from_le_bytes([h[8], h[9]]) as usize, h.len() - 10);
    }

    #[test]
    fn one_dimensional_shape_has_trailing_comma() {
        let h = header(Dtype::I8, &[7]);
        let text = core::str::from_utf8(&h[10..]).unwrap();
        assert!(text.starts_with("{'descr': '<i8', 'fortran_order': False, 'shape': (7,), }"));
        assert_eq!(h.len() % 64, 0);
    }

    #[test]
    fn exact_alignment_adds_a_full_block_like_numpy() {
        // numpy pads by ALIGN - (len % ALIGN), i.e. 64 when already aligned; find such a shape.
        for n in 0u64..100_000 {
            let dict_len = format!("{{'descr': '|u1', 'fortran_order': False, 'shape': ({n}, 4), }}").len();
            let with_growth = dict_len + 21 - n.to_string().len();
            if (10 + with_growth + 1) % 64 == 0 {
                let h = header(Dtype::U1, &[n, 4]);
                assert_eq!(h.len(), 10 + with_growth + 1 + 64);
                return;
            }
        }
    }
}
