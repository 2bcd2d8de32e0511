//! Value checks applied while the host copies a range for the component (`append-from`): the
//! component decides which ranges hold which values; the host only tests them on the way, so
//! the fast copy path keeps the same guarantees as bytes passing through the component.

/// Finds the first non-finite little-endian f32 (NaN, ±infinity) in a stream of chunks; a
/// value may straddle two chunks.
#[derive(Default)]
pub struct FiniteF32 {
    carry: [u8; 4],
    have: usize,
}

const EXPONENT: u32 = 0x7f80_0000;

fn bad(c: &[u8]) -> bool {
    u32::from_le_bytes(c.try_into().expect("4 bytes")) & EXPONENT == EXPONENT
}

impl FiniteF32 {
    /// The offset in `chunk` where the first bad value starts (for a value begun in an earlier
    /// chunk: 0, the chunk start, so that the caller keeps nothing of it), or none.
    pub fn scan(&mut self, chunk: &[u8]) -> Option<usize> {
        let mut start = 0;
        if self.have > 0 {
            let need = (4 - self.have).min(chunk.len());
            self.carry[self.have..self.have + need].copy_from_slice(&chunk[..need]);
            self.have += need;
            if self.have < 4 {
                return None;
            }
            self.have = 0;
            if bad(&self.carry) {
                return Some(0);
            }
            start = need;
        }
        let body = &chunk[start..];
        // Branch-free fold per block of 64 values (vectorizes), then find the value.
        for (b, block) in body.chunks(256).enumerate() {
            if block.chunks_exact(4).fold(false, |acc, c| acc | bad(c)) {
                return block.chunks_exact(4).position(bad).map(|i| start + b * 256 + 4 * i);
            }
        }
        let tail = body.len() % 4;
        self.carry[..tail].copy_from_slice(&body[body.len() - tail..]);
        self.have = tail;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|f| f.to_le_bytes()).collect()
    }

    #[test]
    fn finds_bad_values_across_chunk_boundaries() {
        let mut v = vec![1.25f32; 200];
        v[150] = f32::NAN;
        let b = bytes(&v);
        assert_eq!(FiniteF32::default().scan(&b), Some(600));
        // Split at every odd place: the first bad value is always found at stream offset 600.
        for cut in [1, 3, 598, 599, 601, 603, 797] {
            let mut f = FiniteF32::default();
            let found = match f.scan(&b[..cut]) {
                Some(i) => i,
                None => cut + f.scan(&b[cut..]).expect("found in the second chunk"),
            };
            // A value straddling the cut is reported at the second chunk's start.
            assert!(found == 600 || (cut > 600 && cut < 604 && found == cut), "cut {cut}: {found}");
        }
        assert_eq!(FiniteF32::default().scan(&bytes(&[0.0, -1.0, f32::MAX])), None);
        assert_eq!(FiniteF32::default().scan(&bytes(&[0.0, f32::NEG_INFINITY])), Some(4));
    }
}
