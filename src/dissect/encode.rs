//! `wsbridge dissect --encode`: build a frame from its fields, for learning (and for making the
//! faulty frames a test needs: any opcode, RSV bits, no mask).

use super::hex::parse_hex;
use crate::protocol::Role;
use crate::protocol::deflate::{CodecConfig, Compressor, DeflateParams};
use crate::protocol::frame::{FrameHeader, MAX_HEADER_LEN};
use crate::protocol::mask::apply_mask;

/// The fields of a frame to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameSpec {
    /// FIN.
    pub fin: bool,
    /// RSV1-3 as the low three bits.
    pub rsv: u8,
    /// The 4-bit opcode, reserved values allowed.
    pub opcode: u8,
    /// The masking key; `None` sends the payload in the clear (as a server does).
    pub mask: Option<[u8; 4]>,
    /// The unmasked payload.
    pub payload: Vec<u8>,
}

/// The frame's bytes: the header in the minimal length form, then the (masked) payload.
pub fn encode_frame(spec: &FrameSpec) -> Vec<u8> {
    let header = FrameHeader {
        fin: spec.fin,
        rsv: spec.rsv & 0x7,
        opcode: spec.opcode & 0x0f,
        mask: spec.mask,
        payload_len: spec.payload.len() as u64,
    };
    let mut buf = [0u8; MAX_HEADER_LEN];
    let n = header.encode(&mut buf);
    let mut out = buf[..n].to_vec();
    let start = out.len();
    out.extend_from_slice(&spec.payload);
    if let Some(key) = spec.mask {
        apply_mask(&mut out[start..], key, 0);
    }
    out
}

/// A masking key as 8 hex digits (`37fa213d`, `0x37fa213d`, `37 fa 21 3d`).
pub fn parse_mask(text: &str) -> Result<[u8; 4], String> {
    let bytes = parse_hex(text)?;
    bytes
        .try_into()
        .map_err(|_| format!("{text:?}: a masking key is 4 bytes (8 hex digits)"))
}

/// A payload compressed as permessage-deflate sends it (RFC 7692 §7.2.1): DEFLATE with a
/// fresh window, flushed, the `00 00 ff ff` tail removed. Always compressed, even when longer.
pub fn deflate_payload(payload: &[u8]) -> Vec<u8> {
    let params = DeflateParams {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    let mut config = CodecConfig::new(&params, Role::Client);
    config.compress_all = true;
    let mut out = Vec::new();
    if !Compressor::new(&config).compress(payload, &mut out) {
        // Only an empty payload is not compressed: an empty stored block, tail removed.
        out = vec![0x00];
    }
    out
}

/// A Close body: the code in network byte order, then the reason.
pub fn close_body(code: u16, reason: &str) -> Vec<u8> {
    let mut body = code.to_be_bytes().to_vec();
    body.extend_from_slice(reason.as_bytes());
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(opcode: u8, fin: bool, mask: Option<&str>, payload: &[u8]) -> Vec<u8> {
        encode_frame(&FrameSpec {
            fin,
            rsv: 0,
            opcode,
            mask: mask.map(|m| parse_mask(m).unwrap()),
            payload: payload.to_vec(),
        })
    }

    #[test]
    fn rfc_5_7_examples_reproduce_exactly() {
        assert_eq!(
            frame(1, true, None, b"Hello"),
            parse_hex("81 05 48 65 6c 6c 6f").unwrap()
        );
        assert_eq!(
            frame(1, true, Some("37fa213d"), b"Hello"),
            parse_hex("81 85 37 fa 21 3d 7f 9f 4d 51 58").unwrap()
        );
        assert_eq!(
            frame(1, false, None, b"Hel"),
            parse_hex("01 03 48 65 6c").unwrap()
        );
        assert_eq!(
            frame(0, true, None, b"lo"),
            parse_hex("80 02 6c 6f").unwrap()
        );
        assert_eq!(
            frame(9, true, None, b"Hello"),
            parse_hex("89 05 48 65 6c 6c 6f").unwrap()
        );
        assert_eq!(
            frame(0xA, true, Some("37fa213d"), b"Hello"),
            parse_hex("8a 85 37 fa 21 3d 7f 9f 4d 51 58").unwrap()
        );
        assert_eq!(
            frame(2, true, None, &[0; 256])[..4],
            [0x82, 0x7E, 0x01, 0x00]
        );
        assert_eq!(
            frame(2, true, None, &vec![0; 65536])[..10],
            [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]
        );
    }

    #[test]
    fn masks_are_four_bytes() {
        assert_eq!(parse_mask("0x37fa213d"), Ok([0x37, 0xfa, 0x21, 0x3d]));
        assert!(parse_mask("37fa21").is_err());
    }
}
