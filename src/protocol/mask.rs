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
/// The same safe loop ([`mask_blocks`]) compiled three times: for the baseline x86-64 target
/// (SSE2, 16-byte vectors) and, chosen at run time when the CPU has them, for AVX2 (32 bytes)
/// and AVX-512 (64 bytes). glibc's `memcpy`, the ceiling this is measured against, makes the
/// same choice; with AVX-512, masking in place keeps up with `memcpy` from 1 KiB on
/// (BENCHMARKS.md). Short buffers skip the dispatch: there the call costs more than the
/// wide vectors save.
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    #[cfg(target_arch = "x86_64")]
    if buf.len() >= 128 {
        if std::arch::is_x86_feature_detected!("avx512bw") {
            #[allow(unsafe_code)]
            // SAFETY: `apply_mask_avx512` is safe code compiled with AVX-512 F and BW enabled;
            // the only requirement for calling it is that the CPU executes them, which
            // `is_x86_feature_detected!` just confirmed (avx512bw implies avx512f).
            unsafe {
                apply_mask_avx512(buf, key, offset)
            };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            #[allow(unsafe_code)]
            // SAFETY: `apply_mask_avx2` is safe code compiled with AVX2 enabled; the only
            // requirement for calling it is that the CPU executes AVX2, which was just checked.
            unsafe {
                apply_mask_avx2(buf, key, offset)
            };
            return;
        }
    }
    mask_blocks(buf, key, offset);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
fn apply_mask_avx512(buf: &mut [u8], key: [u8; 4], offset: usize) {
    mask_blocks(buf, key, offset);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn apply_mask_avx2(buf: &mut [u8], key: [u8; 4], offset: usize) {
    mask_blocks(buf, key, offset);
}

/// The fast path proper. The key is rotated to the phase of `offset`, widened to 64 bytes and
/// XORed a block at a time (the compiler turns the fixed-size block loop into vector
/// instructions of whatever width the caller was compiled for); the rest is done a 64-bit word
/// and then a byte at a time. No `unsafe`: the blocks come from `chunks_exact_mut`.
#[inline(always)]
fn mask_blocks(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let mut key = rotated(key, offset);
    let mut rest = buf;
    if rest.len() >= 128 {
        // The bytes up to a 64-byte boundary first, so that no vector store straddles two
        // cache lines: a payload starts wherever its frame header ended, and split stores cost
        // the wide loop up to half its speed.
        let head_len = rest.as_ptr().align_offset(64).min(rest.len());
        let (head, body) = rest.split_at_mut(head_len);
        mask_words(head, key);
        key = rotated(key, head_len);
        rest = body;
    }
    if rest.len() >= 64 {
        let mut wide = [0u8; 64];
        for chunk in wide.chunks_exact_mut(4) {
            chunk.copy_from_slice(&key);
        }
        let mut blocks = rest.chunks_exact_mut(64);
        for block in &mut blocks {
            for (byte, k) in block.iter_mut().zip(wide) {
                *byte ^= k;
            }
        }
        // 64 is a multiple of 4, so the tail starts at the same key phase.
        rest = blocks.into_remainder();
    }
    mask_words(rest, key);
}

/// A 64-bit word at a time, then bytes; `key` is at the phase of `buf[0]`.
#[inline(always)]
fn mask_words(buf: &mut [u8], key: [u8; 4]) {
    let word_key = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut words = buf.chunks_exact_mut(8);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        word.copy_from_slice(&(u64::from_ne_bytes(w) ^ word_key).to_ne_bytes());
    }
    for (i, byte) in words.into_remainder().iter_mut().enumerate() {
        *byte ^= key[i & 3];
    }
}

/// The key as seen from byte `offset` of the payload: `[k1, k2, k3, k0]` for offset 1, and so
/// on. A rotation of the little-endian word (one instruction; `<[u8]>::rotate_left` would call
/// `memmove`).
#[inline]
fn rotated(key: [u8; 4], offset: usize) -> [u8; 4] {
    let shift = 8 * (offset % 4) as u32;
    u32::from_le_bytes(key).rotate_right(shift).to_le_bytes()
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
            for len in (0..=64).chain([127, 128, 129, 150, 184]) {
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
