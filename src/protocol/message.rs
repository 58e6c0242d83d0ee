//! Messages and their reassembly from fragments (RFC 6455 §5.4, §5.6), with size limits.

use super::error::ProtocolError;
use super::frame::OpCode;
use super::utf8::Utf8Validator;

/// A complete data message. Text has been checked to be UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// A text message (opcode 0x1).
    Text(&'a str),
    /// A binary message (opcode 0x2).
    Binary(&'a [u8]),
}

impl<'a> Message<'a> {
    /// The payload bytes, whatever the type.
    pub fn as_bytes(&self) -> &'a [u8] {
        match *self {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(data) => data,
        }
    }

    /// The opcode that starts a message of this type.
    pub fn opcode(&self) -> OpCode {
        match self {
            Message::Text(_) => OpCode::Text,
            Message::Binary(_) => OpCode::Binary,
        }
    }
}

impl Default for Reassembler {
    fn default() -> Self {
        Self::new()
    }
}

/// Reassembles one message from its fragments (§5.4), validating text as it arrives (§8.1) and
/// counting its size as the bytes it took on the wire: payloads *and* frame headers, so a flood of
/// empty continuation frames reaches the limit as surely as a big payload. There is no limit on
/// the number of fragments: only bytes count.
#[derive(Debug)]
pub struct Reassembler {
    /// The type of the message in progress, `None` between messages.
    kind: Option<OpCode>,
    /// The type of the completed message not yet released.
    completed: Option<OpCode>,
    buf: Vec<u8>,
    utf8: Utf8Validator,
    wire_bytes: u64,
}

/// Messages larger than this give their buffer back once delivered, so one big message does not
/// pin its memory for the rest of the connection.
const KEEP_CAPACITY: usize = 64 * 1024;

impl Reassembler {
    /// A reassembler between messages, holding no buffer.
    pub fn new() -> Self {
        Reassembler {
            kind: None,
            completed: None,
            buf: Vec::new(),
            utf8: Utf8Validator::new(),
            wire_bytes: 0,
        }
    }

    /// Whether a fragmented message has started and not yet finished.
    pub fn in_progress(&self) -> bool {
        self.kind.is_some()
    }

    /// The rules for a data frame's header, checked before its payload is read (§5.4):
    /// "a fragmented message consists of a single frame with the FIN bit clear and an opcode
    /// other than 0, followed by zero or more frames with the FIN bit clear and the opcode set to
    /// 0, and terminated by a single frame with the FIN bit set and an opcode of 0."
    /// The message, headers included, may not exceed `max_message_size` bytes.
    pub fn check_frame(
        &self,
        opcode: OpCode,
        wire_len: u64,
        max_message_size: u64,
    ) -> Result<(), ProtocolError> {
        match (opcode, self.in_progress()) {
            (OpCode::Continuation, false) => return Err(ProtocolError::UnexpectedContinuation),
            (OpCode::Text | OpCode::Binary, true) => {
                return Err(ProtocolError::ExpectedContinuation);
            }
            _ => {}
        }
        if self.wire_bytes.saturating_add(wire_len) > max_message_size {
            return Err(ProtocolError::MessageTooLarge);
        }
        Ok(())
    }

    /// Start reading a data frame that passed [`Reassembler::check_frame`].
    pub fn begin_frame(&mut self, opcode: OpCode, wire_len: u64) {
        if opcode != OpCode::Continuation {
            self.kind = Some(opcode);
        }
        self.wire_bytes += wire_len;
    }

    /// Append (unmasked) payload bytes of the current frame.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), ProtocolError> {
        if self.kind == Some(OpCode::Text) {
            self.utf8.feed(chunk)?;
        }
        self.buf.extend_from_slice(chunk);
        Ok(())
    }

    /// Append bytes that `fill` writes at the end of the buffer (an inflater's output, RFC 7692
    /// §7.2.2), validating text like [`Reassembler::push`]. What `fill` may append is its own
    /// business: the inflater bounds it by the message limit as it goes.
    pub fn push_with<E: From<ProtocolError>>(
        &mut self,
        fill: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let start = self.buf.len();
        fill(&mut self.buf)?;
        if self.kind == Some(OpCode::Text) {
            self.utf8.feed(&self.buf[start..])?;
        }
        Ok(())
    }

    /// The final fragment has been read: a text message must not end inside a character.
    pub fn complete(&mut self) -> Result<(), ProtocolError> {
        self.completed = self.kind.take();
        self.wire_bytes = 0;
        if self.completed == Some(OpCode::Text) {
            self.utf8.finish()?;
        }
        Ok(())
    }

    /// The message completed by [`Reassembler::complete`], until [`Reassembler::release`].
    pub fn message(&self) -> Result<Message<'_>, ProtocolError> {
        if self.completed == Some(OpCode::Text) {
            // Already validated piece by piece; the conversion checks once more so that this
            // module needs no `unsafe` (one fast pass, only for text that was fragmented).
            let text = std::str::from_utf8(&self.buf).map_err(|_| ProtocolError::InvalidUtf8)?;
            Ok(Message::Text(text))
        } else {
            Ok(Message::Binary(&self.buf))
        }
    }

    /// Forget the delivered message, keeping a modest buffer for the next one.
    pub fn release(&mut self) {
        self.completed = None;
        if self.buf.capacity() > KEEP_CAPACITY {
            self.buf = Vec::new();
        } else {
            self.buf.clear();
        }
    }

    /// How far the message in progress has come: frames begun and payload bytes received. It
    /// only grows while the message lasts, so a value that stays put means no progress.
    pub fn progress(&self) -> u64 {
        self.wire_bytes.wrapping_add(self.buf.len() as u64)
    }

    /// Payload bytes of the message in progress held so far.
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// Bytes of memory held by the buffer (for accounting).
    pub fn buffered_capacity(&self) -> usize {
        self.buf.capacity()
    }
}
