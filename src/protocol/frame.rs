//! The base framing protocol: frame headers (RFC 6455 §5.2).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! ```

use super::Role;
use super::error::ProtocolError;

/// The longest header: 2 bytes, 8 bytes of extended length, 4 bytes of masking key.
pub const MAX_HEADER_LEN: usize = 14;

/// The largest payload of a control frame (§5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// RSV1 in [`FrameHeader::rsv`]: permessage-deflate's "Per-Message Compressed" bit (RFC 7692 §6).
pub const RSV1: u8 = 0b100;

/// The opcodes RFC 6455 defines (§5.2); the others are reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: a continuation of a fragmented message (§5.4).
    Continuation,
    /// 0x1: the first frame of a text message.
    Text,
    /// 0x2: the first frame of a binary message.
    Binary,
    /// 0x8: connection close (§5.5.1).
    Close,
    /// 0x9: ping (§5.5.2).
    Ping,
    /// 0xA: pong (§5.5.3).
    Pong,
}

impl OpCode {
    /// The opcode for a 4-bit value, `None` for the reserved ones.
    pub fn from_u8(value: u8) -> Option<OpCode> {
        Some(match value {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    /// The 4-bit value on the wire.
    pub fn as_u8(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Control frames have opcodes with the most significant bit set (§5.5).
    pub fn is_control(self) -> bool {
        self.as_u8() & 0x8 != 0
    }

    /// The name Wireshark and the RFC use.
    pub fn name(self) -> &'static str {
        match self {
            OpCode::Continuation => "Continuation",
            OpCode::Text => "Text",
            OpCode::Binary => "Binary",
            OpCode::Close => "Connection Close",
            OpCode::Ping => "Ping",
            OpCode::Pong => "Pong",
        }
    }
}

/// Which of the three forms carried the payload length (§5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthForm {
    /// 0-125 in the 7 bits of the second byte.
    Bits7,
    /// 126, then a 16-bit length.
    Bits16,
    /// 127, then a 64-bit length.
    Bits64,
}

/// A frame header as it is on the wire, before the rules about what its fields may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the final fragment of a message.
    pub fin: bool,
    /// RSV1, RSV2, RSV3 as the low three bits (RSV1 = 0b100).
    pub rsv: u8,
    /// The 4-bit opcode, reserved values included.
    pub opcode: u8,
    /// The masking key, present when the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// The payload length in bytes.
    pub payload_len: u64,
}

impl FrameHeader {
    /// A header for a frame this endpoint sends.
    pub fn new(fin: bool, opcode: OpCode, mask: Option<[u8; 4]>, payload_len: u64) -> Self {
        FrameHeader {
            fin,
            rsv: 0,
            opcode: opcode.as_u8(),
            mask,
            payload_len,
        }
    }

    /// Decode a header from the start of `input` (RFC 6455 §5.2).
    ///
    /// Returns `Ok(None)` when `input` does not yet hold the whole header: nothing is consumed,
    /// call again with more bytes. Otherwise returns the header and its length in bytes.
    ///
    /// Only the length encoding is judged here: "the minimal number of bytes MUST be used to
    /// encode the length", and of a 64-bit length "the most significant bit MUST be 0". The rules
    /// that depend on who is receiving are in [`FrameHeader::check`].
    #[inline]
    pub fn decode(input: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        let Some((header, len, form)) = Self::decode_any_length(input) else {
            return Ok(None);
        };
        if header.payload_len >> 63 != 0 {
            return Err(ProtocolError::LengthMsbSet);
        }
        if form != header.length_form() {
            return Err(ProtocolError::NonMinimalLength);
        }
        Ok(Some((header, len)))
    }

    /// Decode the fields as they are, whatever the length encoding (for tools that show a
    /// faulty frame rather than refuse it): the header, its length in bytes, and the form that
    /// carried the payload length. `None` when the input is shorter than the header.
    #[inline]
    pub fn decode_any_length(input: &[u8]) -> Option<(FrameHeader, usize, LengthForm)> {
        let [b0, b1, rest @ ..] = input else {
            return None;
        };
        let masked = b1 & 0x80 != 0;
        let (payload_len, form, len_bytes) = match b1 & 0x7f {
            126 => (
                u16::from_be_bytes(*rest.first_chunk::<2>()?) as u64,
                LengthForm::Bits16,
                2,
            ),
            127 => (
                u64::from_be_bytes(*rest.first_chunk::<8>()?),
                LengthForm::Bits64,
                8,
            ),
            short => (short as u64, LengthForm::Bits7, 0),
        };
        let mask = if masked {
            Some(*rest[len_bytes..].first_chunk::<4>()?)
        } else {
            None
        };
        let header = FrameHeader {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 0x7,
            opcode: b0 & 0x0f,
            mask,
            payload_len,
        };
        Some((header, 2 + len_bytes + if masked { 4 } else { 0 }, form))
    }

    /// The rules a receiver applies to a decoded header before reading its payload.
    ///
    /// * §5.2: "MUST be 0 unless an extension is negotiated that defines meanings for non-zero
    ///   values" (RSV1-3), and unknown opcodes fail the connection.
    /// * §5.1: "The server MUST close the connection upon receiving a frame that is not masked",
    ///   and "A client MUST close a connection if it detects a masked frame".
    /// * §5.5: "All control frames MUST have a payload length of 125 bytes or less and MUST NOT
    ///   be fragmented."
    pub fn check(&self, receiver: Role) -> Result<OpCode, ProtocolError> {
        if self.rsv != 0 {
            return Err(ProtocolError::ReservedBitsSet(self.rsv));
        }
        let opcode =
            OpCode::from_u8(self.opcode).ok_or(ProtocolError::ReservedOpcode(self.opcode))?;
        match (receiver, self.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedClientFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedServerFrame),
            _ => {}
        }
        if opcode.is_control() {
            if self.payload_len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(ProtocolError::ControlFrameTooLong);
            }
            if !self.fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
        }
        Ok(opcode)
    }

    /// Which form carries this header's payload length: always the shortest (§5.2).
    pub fn length_form(&self) -> LengthForm {
        match self.payload_len {
            0..=125 => LengthForm::Bits7,
            126..=0xffff => LengthForm::Bits16,
            _ => LengthForm::Bits64,
        }
    }

    /// The number of bytes [`FrameHeader::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        let len = match self.length_form() {
            LengthForm::Bits7 => 2,
            LengthForm::Bits16 => 4,
            LengthForm::Bits64 => 10,
        };
        len + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Encode the header into `buf` with the minimal length form; returns the bytes written.
    #[inline]
    pub fn encode(&self, buf: &mut [u8; MAX_HEADER_LEN]) -> usize {
        buf[0] = (self.fin as u8) << 7 | (self.rsv & 0x7) << 4 | (self.opcode & 0x0f);
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut n = match self.length_form() {
            LengthForm::Bits7 => {
                buf[1] = mask_bit | self.payload_len as u8;
                2
            }
            LengthForm::Bits16 => {
                buf[1] = mask_bit | 126;
                buf[2..4].copy_from_slice(&(self.payload_len as u16).to_be_bytes());
                4
            }
            LengthForm::Bits64 => {
                buf[1] = mask_bit | 127;
                buf[2..10].copy_from_slice(&self.payload_len.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            buf[n..n + 4].copy_from_slice(&key);
            n += 4;
        }
        n
    }

    /// Append the encoded header to `out`.
    #[inline]
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let mut buf = [0u8; MAX_HEADER_LEN];
        let n = self.encode(&mut buf);
        out.extend_from_slice(&buf[..n]);
    }
}

/// Append a whole frame to `out`: header, then the payload, masked with `mask` if given.
pub fn write_frame(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) {
    let header = FrameHeader::new(fin, opcode, mask, payload.len() as u64);
    out.reserve(MAX_HEADER_LEN + payload.len());
    header.write_to(out);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        super::mask::apply_mask(&mut out[start..], key, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8]) -> (FrameHeader, usize) {
        FrameHeader::decode(bytes)
            .expect("valid header")
            .expect("complete header")
    }

    #[test]
    fn short_input_consumes_nothing_at_every_split() {
        let headers: [&[u8]; 4] = [
            &[0x81, 0x05],
            &[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d],
            &[0x82, 0x7E, 0x01, 0x00],
            &[0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4],
        ];
        for bytes in headers {
            for cut in 0..bytes.len() {
                assert_eq!(
                    FrameHeader::decode(&bytes[..cut]),
                    Ok(None),
                    "{bytes:x?} cut at {cut}"
                );
            }
            assert_eq!(decode_all(bytes).1, bytes.len());
        }
    }

    #[test]
    fn rfc_5_7_length_forms() {
        // §5.7: "256 bytes binary message in a single unmasked frame: 0x82 0x7E 0x0100 [256 bytes]"
        let (h, n) = decode_all(&[0x82, 0x7E, 0x01, 0x00]);
        assert_eq!(
            (h.payload_len, n, h.length_form()),
            (256, 4, LengthForm::Bits16)
        );
        // §5.7: "64KiB binary message in a single unmasked frame: 0x82 0x7F 0x0000000000010000"
        let (h, n) = decode_all(&[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(
            (h.payload_len, n, h.length_form()),
            (65536, 10, LengthForm::Bits64)
        );
    }

    #[test]
    fn non_minimal_lengths_are_refused() {
        assert_eq!(
            FrameHeader::decode(&[0x82, 0x7E, 0x00, 0x7D]),
            Err(ProtocolError::NonMinimalLength)
        );
        assert_eq!(
            FrameHeader::decode(&[0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0xff, 0xff]),
            Err(ProtocolError::NonMinimalLength)
        );
    }

    #[test]
    fn length_with_msb_set_is_refused_without_allocating() {
        assert_eq!(
            FrameHeader::decode(&[0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Err(ProtocolError::LengthMsbSet)
        );
    }

    #[test]
    fn receiver_rules() {
        let masked = FrameHeader::new(true, OpCode::Text, Some([1, 2, 3, 4]), 5);
        let unmasked = FrameHeader::new(true, OpCode::Text, None, 5);
        assert_eq!(masked.check(Role::Server), Ok(OpCode::Text));
        assert_eq!(
            unmasked.check(Role::Server),
            Err(ProtocolError::UnmaskedClientFrame)
        );
        assert_eq!(unmasked.check(Role::Client), Ok(OpCode::Text));
        assert_eq!(
            masked.check(Role::Client),
            Err(ProtocolError::MaskedServerFrame)
        );
        let rsv = FrameHeader {
            rsv: 0b100,
            ..masked
        };
        assert_eq!(
            rsv.check(Role::Server),
            Err(ProtocolError::ReservedBitsSet(0b100))
        );
        let reserved = FrameHeader {
            opcode: 0x3,
            ..masked
        };
        assert_eq!(
            reserved.check(Role::Server),
            Err(ProtocolError::ReservedOpcode(3))
        );
        let long_ping = FrameHeader::new(true, OpCode::Ping, Some([0; 4]), 126);
        assert_eq!(
            long_ping.check(Role::Server),
            Err(ProtocolError::ControlFrameTooLong)
        );
        let fragmented_ping = FrameHeader::new(false, OpCode::Ping, Some([0; 4]), 1);
        assert_eq!(
            fragmented_ping.check(Role::Server),
            Err(ProtocolError::FragmentedControlFrame)
        );
    }

    #[test]
    fn encode_then_decode_round_trips_every_length_form() {
        for len in [0u64, 1, 125, 126, 127, 65535, 65536, 1 << 40] {
            for mask in [None, Some([9, 8, 7, 6])] {
                let h = FrameHeader::new(len % 2 == 0, OpCode::Binary, mask, len);
                let mut buf = [0u8; MAX_HEADER_LEN];
                let n = h.encode(&mut buf);
                assert_eq!(n, h.encoded_len());
                assert_eq!(decode_all(&buf[..n]), (h, n));
            }
        }
    }
}
