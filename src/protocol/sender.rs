//! The sending half of a connection (RFC 6455 §5.2, §5.3, §5.5): frames written into the
//! caller's buffer, masked with fresh keys on the client side, nothing after our Close.

use rand_chacha::ChaCha12Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

use super::Role;
use super::close::{CloseCode, truncate_reason};
use super::deflate::Compressor;
use super::frame::{FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode, RSV1, write_frame};
use std::num::NonZeroU16;

use super::mask::apply_mask;
use super::message::Message;

/// The sending half: writes frames into the caller's buffer.
pub struct Sender {
    role: Role,
    /// The code of the Close this side sent (1005 for an empty body), once sent. (Close codes
    /// are never 0, and `NonZeroU16` keeps the option at two bytes.)
    sent_close: Option<NonZeroU16>,
    /// Frames written since the server last took the count (for its metrics).
    frames: u32,
    /// Boxed: only clients have one, and it is larger than the rest of the connection.
    masks: Option<Box<ChaCha12Rng>>,
    /// permessage-deflate's compressor, when negotiated (boxed: most connections have none).
    compressor: Option<Box<Compressor>>,
}

impl Sender {
    pub(super) fn server() -> Self {
        Sender {
            role: Role::Server,
            sent_close: None,
            frames: 0,
            masks: None,
            compressor: None,
        }
    }

    pub(super) fn client(seed: [u8; 32]) -> Self {
        Sender {
            role: Role::Client,
            sent_close: None,
            frames: 0,
            masks: Some(Box::new(ChaCha12Rng::from_seed(seed))),
            compressor: None,
        }
    }

    /// Send a text message as one frame, compressed if permessage-deflate is in use and that
    /// makes it shorter. Returns false (and sends nothing) after a Close was sent (§5.5.1: "the
    /// endpoint MUST NOT send any more data frames").
    pub fn send_text(&mut self, text: &str, out: &mut Vec<u8>) -> bool {
        self.send_whole(OpCode::Text, text.as_bytes(), out)
    }

    /// Send a binary message as one frame (see [`Sender::send_text`]).
    pub fn send_binary(&mut self, data: &[u8], out: &mut Vec<u8>) -> bool {
        self.send_whole(OpCode::Binary, data, out)
    }

    /// Send a message of the given type as one frame (see [`Sender::send_text`]).
    pub fn send_message(&mut self, message: Message<'_>, out: &mut Vec<u8>) -> bool {
        self.send_whole(message.opcode(), message.as_bytes(), out)
    }

    /// A whole message: compressed when the extension is on and the compressor takes it
    /// (RFC 7692 §6: the choice is per message), as it is otherwise.
    fn send_whole(&mut self, opcode: OpCode, payload: &[u8], out: &mut Vec<u8>) -> bool {
        if self.sent_close.is_some() {
            return false;
        }
        if self.compressor.is_some() && self.send_compressed(opcode, payload, out) {
            return true;
        }
        self.write_frame(true, opcode, payload, out)
    }

    /// RFC 7692 §7.2.1 and §6: compress into `out` after room for the longest header, then put
    /// the header right before the compressed bytes (RSV1 set), closing the gap. No buffer of
    /// its own: one move of the (smaller) compressed bytes. False when `out` is unchanged and
    /// the message should go uncompressed.
    fn send_compressed(&mut self, opcode: OpCode, payload: &[u8], out: &mut Vec<u8>) -> bool {
        let Some(compressor) = self.compressor.as_mut() else {
            return false;
        };
        let start = out.len();
        out.resize(start + MAX_HEADER_LEN, 0);
        if !compressor.compress(payload, out) {
            out.truncate(start);
            return false;
        }
        let body = start + MAX_HEADER_LEN;
        let len = out.len() - body;
        let mask = self.next_mask();
        let header = FrameHeader {
            rsv: RSV1,
            ..FrameHeader::new(true, opcode, mask, len as u64)
        };
        let mut encoded = [0u8; MAX_HEADER_LEN];
        let n = header.encode(&mut encoded);
        out.copy_within(body.., start + n);
        out.truncate(start + n + len);
        out[start..start + n].copy_from_slice(&encoded[..n]);
        if let Some(key) = mask {
            apply_mask(&mut out[start + n..], key, 0);
        }
        self.frames = self.frames.wrapping_add(1);
        true
    }

    pub(super) fn set_compressor(&mut self, compressor: Option<Box<Compressor>>) {
        self.compressor = compressor;
    }

    pub(super) fn release_compressor(&mut self) {
        if let Some(compressor) = &mut self.compressor {
            compressor.release();
        }
    }

    pub(super) fn compression_held_bytes(&self) -> usize {
        self.compressor.as_ref().map_or(0, |c| c.held_bytes())
    }

    /// Send a Ping (payload cut to 125 bytes).
    pub fn send_ping(&mut self, payload: &[u8], out: &mut Vec<u8>) -> bool {
        let payload = &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)];
        self.sent_close.is_none() && self.write_frame(true, OpCode::Ping, payload, out)
    }

    /// Send a Pong with the Ping's payload (§5.5.3: "MUST have identical Application data").
    ///
    /// Also after our own Close (RFC 6455 §5.5.2: a Ping is answered "unless it already
    /// received a Close frame"; §5.5.1 forbids only *data* frames after sending one). A Ping
    /// that arrives after the peer's Close or after a failure is never read (§7.1.7), so it gets
    /// no Pong.
    pub fn send_pong(&mut self, payload: &[u8], out: &mut Vec<u8>) -> bool {
        self.write_frame(true, OpCode::Pong, payload, out)
    }

    /// Send any frame: a fragment of a message being streamed, or a message at once.
    pub fn send_frame(
        &mut self,
        fin: bool,
        opcode: OpCode,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> bool {
        self.sent_close.is_none() && self.write_frame(fin, opcode, payload, out)
    }

    /// Send a Close frame, once (§5.5.1). `None` sends an empty body. Codes that must never be on
    /// the wire (1005, 1006, 1015) are replaced by an empty body; the reason is cut to fit.
    pub fn send_close(&mut self, code: Option<CloseCode>, reason: &str, out: &mut Vec<u8>) -> bool {
        if self.sent_close.is_some() {
            return false;
        }
        let mut body = [0u8; MAX_CONTROL_PAYLOAD];
        let on_wire = code.filter(|code| code.is_allowed_on_wire());
        self.sent_close = NonZeroU16::new(on_wire.map_or(1005, |code| code.0));
        let len = match on_wire {
            Some(code) => {
                let reason = truncate_reason(reason);
                body[..2].copy_from_slice(&code.0.to_be_bytes());
                body[2..2 + reason.len()].copy_from_slice(reason.as_bytes());
                2 + reason.len()
            }
            _ => 0,
        };
        self.write_frame(true, OpCode::Close, &body[..len], out)
    }

    /// Whether this side has sent its Close.
    pub fn close_sent(&self) -> bool {
        self.sent_close.is_some()
    }

    /// The code of the Close this side sent (1005 for an empty body), if it sent one.
    pub fn sent_close_code(&self) -> Option<u16> {
        self.sent_close.map(NonZeroU16::get)
    }

    fn write_frame(
        &mut self,
        fin: bool,
        opcode: OpCode,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> bool {
        let mask = self.next_mask();
        write_frame(out, fin, opcode, mask, payload);
        self.frames = self.frames.wrapping_add(1);
        true
    }

    /// Frames written since the last call.
    pub fn take_frames_sent(&mut self) -> u32 {
        std::mem::take(&mut self.frames)
    }

    /// §5.3: a fresh masking key for each frame a client sends; none on the server side.
    fn next_mask(&mut self) -> Option<[u8; 4]> {
        match (self.role, self.masks.as_mut()) {
            (Role::Client, Some(rng)) => Some(rng.next_u32().to_ne_bytes()),
            _ => None,
        }
    }
}
