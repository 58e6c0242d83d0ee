//! Client-to-server masking (RFC 6455 §5.3).
//!
//! "Octet i of the transformed data ("transformed-octet-i") is the XOR of octet i of the original
//! data ("original-octet-i") with octet at index i modulo 4 of the masking key
//! ("masking-key-octet-j")". Masking and unmasking are the same operation.
//!
//! [`apply_mask_reference`] is that sentence as code; [`apply_mask`] is the fast path used
//! everywhere, and the tests (and a fuzz target) hold the two to the same output.

/// The RFC's definition, one byte at a time. `offset` is the position of `buf[0]` within the
/// frame's payload, so a payload can be unmasked in pieces as it arrives.
pub fn apply_mask_reference(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte ^= key[(offset + i) % 4];
    }
}

/// Unmask (or mask) `buf` in place, starting at `offset` within the payload.
///
/// The key is rotated to the phase of `offset`, widened to 32 bytes and XORed a block at a time
/// (the compiler turns the fixed-size block loop into vector instructions); the tail is done a
/// 64-bit word and then a byte at a time. No `unsafe`: the blocks come from `chunks_exact_mut`,
/// so unaligned buffers are handled by unaligned loads instead of a separate prologue.
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotated(key, offset);
    let word_key = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut rest = buf;
    if rest.len() >= 64 {
        let half = word_key.to_ne_bytes();
        let mut wide = [0u8; 32];
        for chunk in wide.chunks_exact_mut(8) {
            chunk.copy_from_slice(&half);
        }
        let mut blocks = rest.chunks_exact_mut(32);
        for block in &mut blocks {
            for (byte, k) in block.iter_mut().zip(wide) {
                *byte ^= k;
            }
        }
        // 32 is a multiple of 4, so the tail starts at key phase 0 again.
        rest = blocks.into_remainder();
    }
    let mut words = rest.chunks_exact_mut(8);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        word.copy_from_slice(&(u64::from_ne_bytes(w) ^ word_key).to_ne_bytes());
    }
    for (i, byte) in words.into_remainder().iter_mut().enumerate() {
        *byte ^= key[i & 3];
    }
}

/// The key as seen from byte `offset` of the payload.
#[inline]
fn rotated(key: [u8; 4], offset: usize) -> [u8; 4] {
    let mut k = key;
    k.rotate_left(offset % 4);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_5_7_masked_hello() {
        // §5.7: "A single-frame masked text message 0x81 0x85 0x37 0xfa 0x21 0x3d 0x7f 0x9f 0x4d
        // 0x51 0x58 (contains "Hello")"
        let mut payload = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        apply_mask(&mut payload, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(&payload, b"Hello");
    }

    #[test]
    fn fast_path_matches_reference_at_every_length_alignment_and_offset() {
        let key = [0x12, 0x34, 0x56, 0x78];
        let source: Vec<u8> = (0..200u32).map(|i| (i * 7 + 3) as u8).collect();
        for align in 0..16 {
            for len in 0..=64 {
                for offset in 0..4 {
                    let mut fast = source.clone();
                    let mut reference = source.clone();
                    apply_mask(&mut fast[align..align + len], key, offset);
                    apply_mask_reference(&mut reference[align..align + len], key, offset);
                    assert_eq!(fast, reference, "align {align} len {len} offset {offset}");
                }
            }
        }
    }

    #[test]
    fn masking_in_pieces_equals_masking_at_once() {
        let key = [0xde, 0xad, 0xbe, 0xef];
        let data: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        for cut in [1, 3, 5, 31, 33, 500, 999] {
            let mut pieces = data.clone();
            let (a, b) = pieces.split_at_mut(cut);
            apply_mask(a, key, 0);
            apply_mask(b, key, cut);
            assert_eq!(pieces, whole, "cut at {cut}");
        }
    }

    #[test]
    fn masking_twice_is_the_identity() {
        let data: Vec<u8> = (0..77u8).collect();
        let mut buf = data.clone();
        apply_mask(&mut buf, [1, 2, 3, 4], 2);
        apply_mask(&mut buf, [1, 2, 3, 4], 2);
        assert_eq!(buf, data);
    }
}
