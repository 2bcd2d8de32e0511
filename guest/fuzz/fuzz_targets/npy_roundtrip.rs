//! `npy::header` for arbitrary dtype and shape: the bytes numpy's `np.save` writes (format 1.0,
//! dict text, growth padding, total a multiple of 64, final '\n'), readable by npyz (an
//! independent reader) with the same dtype and shape; for small shapes, data appended after
//! the header reads back with npyz as the same values.
#![no_main]

use arbitrary::Arbitrary;
use guest::npy::{header, Dtype};
use libfuzzer_sys::fuzz_target;

/// Largest array (elements) whose data is appended and read back.
const MAX_ELEMENTS: u64 = 4096;
/// More axes than the migration ever writes, and few enough to stay in a format 1.0 header.
const MAX_AXES: usize = 32;

#[derive(Debug, Arbitrary)]
enum Axis {
    Small(u8),
    Any(u64),
}

#[derive(Debug, Arbitrary)]
struct Input {
    dtype: u8,
    shape: Vec<Axis>,
    data: Vec<u8>,
}

/// Python's `repr` of a tuple of ints.
fn py_tuple(shape: &[u64]) -> String {
    let items: Vec<String> = shape.iter().map(|n| n.to_string()).collect();
    match items.len() {
        1 => format!("({},)", items[0]),
        _ => format!("({})", items.join(", ")),
    }
}

/// numpy's `_write_array_header` + `_wrap_header` for version 1.0, transcribed.
fn numpy_header(descr: &str, shape: &[u64]) -> Vec<u8> {
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {}, }}", py_tuple(shape));
    if let Some(first) = shape.first() {
        // " " * (GROWTH_AXIS_MAX_DIGITS - len(repr(shape[0]))): empty when negative.
        h.push_str(&" ".repeat(21usize.saturating_sub(first.to_string().len())));
    }
    let hlen = h.len() + 1;
    let padlen = 64 - ((6 + 2 + 2 + hlen) % 64);
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&((hlen + padlen) as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out.extend(std::iter::repeat(b' ').take(padlen));
    out.push(b'\n');
    out
}

fn check_values<T: npyz::Deserialize + PartialEq + std::fmt::Debug>(file: &[u8], want: Vec<T>) {
    let got: Vec<T> = npyz::NpyFile::new(file).expect("npyz reads the file").into_vec().expect("npyz reads the data");
    assert_eq!(got.len(), want.len());
    assert!(got == want, "values differ");
}

fuzz_target!(|input: Input| {
    let dtype = [Dtype::F4, Dtype::U1, Dtype::I8][input.dtype as usize % 3];
    let shape: Vec<u64> = input
        .shape
        .iter()
        .take(MAX_AXES)
        .map(|a| match a {
            Axis::Small(n) => *n as u64,
            Axis::Any(n) => *n,
        })
        .collect();
    let h = header(dtype, &shape);

    // The invariants, then the exact bytes.
    assert_eq!(&h[..8], b"\x93NUMPY\x01\x00");
    let hlen = u16::from_le_bytes([h[8], h[9]]) as usize;
    assert_eq!(h.len(), 10 + hlen);
    assert_eq!(h.len() % 64, 0);
    assert_eq!(h.last(), Some(&b'\n'));
    let text = std::str::from_utf8(&h[10..h.len() - 1]).expect("ASCII header");
    let dict = format!("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", dtype.descr(), py_tuple(&shape));
    assert!(text.starts_with(&dict), "{text:?}");
    assert!(text[dict.len()..].bytes().all(|b| b == b' '));
    assert_eq!(h, numpy_header(dtype.descr(), &shape), "not numpy's bytes");

    // npyz computes the element count (and strides) by multiplying every axis: only when that fits.
    let nonzero_product = shape.iter().filter(|&&n| n != 0).try_fold(1u64, |acc, &n| acc.checked_mul(n));
    if nonzero_product.is_none() {
        return;
    }
    let elements: u64 = shape.iter().product();
    let npy = npyz::NpyFile::new(&h[..]).expect("npyz reads the header");
    assert_eq!(npy.shape(), &shape[..]);
    assert_eq!(npy.order(), npyz::Order::C);
    assert_eq!(npy.dtype().descr(), format!("'{}'", dtype.descr()));
    assert_eq!(npy.len(), elements);
    if elements > MAX_ELEMENTS {
        return;
    }

    let size = match dtype {
        Dtype::F4 => 4,
        Dtype::U1 => 1,
        Dtype::I8 => 8,
    };
    let n = elements as usize * size;
    let body: Vec<u8> = if input.data.is_empty() { vec![0; n] } else { input.data.iter().copied().cycle().take(n).collect() };
    let mut file = h.clone();
    file.extend_from_slice(&body);
    match dtype {
        // Compared bitwise: NaN payloads must survive too.
        Dtype::F4 => {
            let got: Vec<f32> = npyz::NpyFile::new(&file[..]).unwrap().into_vec().unwrap();
            let want: Vec<u32> = body.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
            assert!(got.iter().map(|f| f.to_bits()).eq(want), "f32 values differ");
        }
        Dtype::U1 => check_values::<u8>(&file, body.clone()),
        Dtype::I8 => check_values::<i64>(&file, body.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect()),
    }
});
