//! The receiving half of a connection (RFC 6455 §5.2-§5.6, §7.1.7; RFC 7692 §6, §7.2.2): frame
//! headers decoded across reads, payloads unmasked in place, fragments reassembled, compressed
//! messages inflated, control frames answered, and the connection failed on a violation.

use super::Role;
use super::close::CloseFrame;
use super::close::parse_close_payload;
use super::deflate::Decompressor;
use super::error::ProtocolError;
use super::frame::{FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode, RSV1};
use super::mask::apply_mask;
use super::message::{Message, Reassembler};
use super::sender::Sender;

/// Size limits on what a peer may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest payload of a single frame.
    pub max_frame_size: u64,
    /// The largest message, counted as the bytes it took on the wire (payloads and headers).
    pub max_message_size: u64,
}

impl Default for Limits {
    /// 64 MiB each: Autobahn 9.x sends 16 MiB messages, some as 65,536 fragments whose headers
    /// count too, and echo servers must pass it.
    fn default() -> Self {
        Limits {
            max_frame_size: 64 << 20,
            max_message_size: 64 << 20,
        }
    }
}

/// Something the peer did.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A complete text or binary message.
    Message(Message<'a>),
    /// A Ping; the Pong reply (§5.5.2) has already been written to `out`.
    Ping(&'a [u8]),
    /// A Pong, solicited or not (§5.5.3: "A response to an unsolicited Pong frame is not expected").
    Pong(&'a [u8]),
    /// The peer's Close. Unless this side had already sent one, the echo has been written to
    /// `out` (§5.5.1). Nothing more will be read: the server now closes the TCP connection (§7.1.1).
    Close(CloseFrame<'a>),
}

/// The payload of a frame whose header has been read.
struct FrameInProgress {
    opcode: OpCode,
    fin: bool,
    mask: Option<[u8; 4]>,
    remaining: u64,
    /// Payload bytes read so far, modulo 4: the masking key's phase.
    mask_phase: u8,
}

/// What completed in a call to [`Receiver::receive`], without borrowing anything yet.
enum Completed {
    /// A whole frame that was wholly in the input, now unmasked in place: a single-frame message
    /// or a control frame. The common case, and no copy.
    InPlace {
        start: usize,
        end: usize,
        opcode: OpCode,
    },
    /// A fragmented (or split) message, finished in the reassembly buffer.
    Reassembled,
    /// A control frame that arrived in pieces, gathered in the control buffer.
    Gathered(OpCode),
}

/// The payload of a control frame that arrives in pieces: at most 125 bytes (§5.5), boxed so
/// that a connection without one holds only a pointer.
struct ControlPayload {
    len: u8,
    bytes: [u8; MAX_CONTROL_PAYLOAD],
}

impl ControlPayload {
    fn new_boxed() -> Box<ControlPayload> {
        Box::new(ControlPayload {
            len: 0,
            bytes: [0; MAX_CONTROL_PAYLOAD],
        })
    }

    /// Append; the header check has bounded the frame to 125 bytes.
    fn push(&mut self, chunk: &[u8]) {
        let start = self.len as usize;
        let end = (start + chunk.len()).min(MAX_CONTROL_PAYLOAD);
        self.bytes[start..end].copy_from_slice(&chunk[..end - start]);
        self.len = end as u8;
    }

    fn bytes(this: &Option<Box<ControlPayload>>) -> &[u8] {
        this.as_ref().map_or(&[], |c| &c.bytes[..c.len as usize])
    }
}

/// permessage-deflate's receiving side (RFC 7692 §6, §7.2.2).
pub(super) struct Inflater {
    pub engine: Decompressor,
    /// The message in progress is compressed (RSV1 on its first frame).
    pub active: bool,
    /// The most a compressed message may inflate to besides the message limit (see
    /// [`Connection::set_inflate_headroom`](super::Connection::set_inflate_headroom)).
    pub cap: usize,
}

/// What the receiver keeps of the frame being read between two inputs: a header cut short,
/// or how far its payload has come. One or the other, never both.
enum Pending {
    /// Between frames.
    Nothing,
    /// The first bytes of a header the input cut short (fewer than it needs).
    Header {
        len: u8,
        bytes: [u8; MAX_HEADER_LEN],
    },
    /// A frame whose header was read, its payload in progress.
    Payload(FrameInProgress),
}

/// The receiving half.
pub(super) struct Receiver {
    role: Role,
    pub limits: Limits,
    /// What is kept of a frame between two inputs.
    pending: Pending,
    pub message: Reassembler,
    /// The payload of a control frame split across reads. Empty, and unallocated, otherwise: an
    /// idle connection carries no buffer.
    control: Option<Box<ControlPayload>>,
    /// permessage-deflate's receiving side, when negotiated (boxed: most connections have none).
    pub inflater: Option<Box<Inflater>>,
    /// The last event borrowed the reassembly buffer: clear it before reading on.
    release_message: bool,
    /// The last event borrowed the control buffer: free it before reading on. (A control frame
    /// may come in the middle of a fragmented message, whose buffer must then be kept.)
    release_control: bool,
    /// A Close was received or the connection failed.
    pub done: bool,
    /// Frame headers read since the server last took the count (for its metrics; a u32 fits
    /// in the padding after the flags, so an idle connection costs no more).
    pub frames: u32,
}

impl Receiver {
    pub fn new(role: Role, limits: Limits) -> Self {
        Receiver {
            role,
            limits,
            pending: Pending::Nothing,
            message: Reassembler::new(),
            control: None,
            inflater: None,
            release_message: false,
            release_control: false,
            done: false,
            frames: 0,
        }
    }

    pub fn receive<'a>(
        &'a mut self,
        input: &'a mut [u8],
        tx: &mut Sender,
        out: &mut Vec<u8>,
    ) -> Result<(usize, Option<Event<'a>>), ProtocolError> {
        if self.done {
            // §1.4: after the closing handshake nothing more is read; the rest is discarded.
            return Ok((input.len(), None));
        }
        if self.release_message {
            self.message.release();
            self.release_message = false;
        }
        if self.release_control {
            self.control = None;
            self.release_control = false;
        }
        let (consumed, completed) = match self.read_until_event(input, tx, out) {
            Ok(read) => read,
            Err(error) => return Err(fail(&mut self.done, tx, out, error)),
        };
        // Disjoint borrows: the event borrows the buffers, a late failure only touches `done`.
        let Receiver {
            message,
            control,
            release_message,
            release_control,
            done,
            ..
        } = self;
        let event = match completed {
            None => None,
            Some(Completed::InPlace { start, end, opcode }) => {
                let payload = &input[start..end];
                match frame_event(opcode, payload) {
                    Ok(event) => Some(event),
                    Err(error) => return Err(fail(done, tx, out, error)),
                }
            }
            Some(Completed::Reassembled) => {
                *release_message = true;
                match message.message() {
                    Ok(message) => Some(Event::Message(message)),
                    Err(error) => return Err(fail(done, tx, out, error)),
                }
            }
            Some(Completed::Gathered(opcode)) => {
                *release_control = true;
                match frame_event(opcode, ControlPayload::bytes(control)) {
                    Ok(event) => Some(event),
                    Err(error) => return Err(fail(done, tx, out, error)),
                }
            }
        };
        Ok((consumed, event))
    }

    fn read_until_event(
        &mut self,
        input: &mut [u8],
        tx: &mut Sender,
        out: &mut Vec<u8>,
    ) -> Result<(usize, Option<Completed>), ProtocolError> {
        let mut pos = 0;
        loop {
            if !matches!(self.pending, Pending::Payload(_)) {
                let Some((header, header_len)) = self.next_header(input, &mut pos)? else {
                    return Ok((input.len(), None));
                };
                self.frames = self.frames.wrapping_add(1);
                let (opcode, compressed) = self.start_frame(&header, header_len)?;
                // The fast path: the whole frame is in the input and is an event by itself (a
                // single-frame message, or a control frame). Unmask it where it lies. A
                // compressed message always goes through the inflater into the message buffer.
                let available = (input.len() - pos) as u64;
                let whole_event = opcode.is_control()
                    || (header.fin
                        && !compressed
                        && matches!(opcode, OpCode::Text | OpCode::Binary));
                if whole_event && header.payload_len <= available {
                    let start = pos;
                    let end = pos + header.payload_len as usize;
                    let payload = &mut input[start..end];
                    if let Some(key) = header.mask {
                        apply_mask(payload, key, 0);
                    }
                    self.answer_control(opcode, payload, tx, out)?;
                    return Ok((end, Some(Completed::InPlace { start, end, opcode })));
                }
                if opcode.is_control() {
                    self.control
                        .get_or_insert_with(ControlPayload::new_boxed)
                        .len = 0;
                } else {
                    if let Some(inflater) = self
                        .inflater
                        .as_mut()
                        .filter(|_| opcode != OpCode::Continuation)
                    {
                        inflater.active = compressed;
                    }
                    self.message
                        .begin_frame(opcode, header_len as u64 + header.payload_len);
                }
                self.pending = Pending::Payload(FrameInProgress {
                    opcode,
                    fin: header.fin,
                    mask: header.mask,
                    remaining: header.payload_len,
                    mask_phase: 0,
                });
            }
            if let Some(completed) = self.read_payload(input, &mut pos, tx, out)? {
                return Ok((pos, Some(completed)));
            }
            if pos == input.len() {
                return Ok((pos, None));
            }
        }
    }

    /// Decode the next header from the kept partial header and/or the input. `None` when the
    /// input ran out first (its bytes are kept).
    fn next_header(
        &mut self,
        input: &[u8],
        pos: &mut usize,
    ) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        let mut kept = match std::mem::replace(&mut self.pending, Pending::Nothing) {
            Pending::Header { len, bytes } => (len as usize, bytes),
            _ => (0, [0; MAX_HEADER_LEN]),
        };
        let have = kept.0;
        if have == 0 {
            return Ok(match FrameHeader::decode(&input[*pos..])? {
                Some((header, len)) => {
                    *pos += len;
                    Some((header, len))
                }
                None => {
                    // Shorter than the header it starts, so under MAX_HEADER_LEN bytes.
                    let rest = &input[*pos..];
                    if !rest.is_empty() {
                        kept.1[..rest.len()].copy_from_slice(rest);
                        self.pending = Pending::Header {
                            len: rest.len() as u8,
                            bytes: kept.1,
                        };
                    }
                    None
                }
            });
        }
        let take = (MAX_HEADER_LEN - have).min(input.len() - *pos);
        let bytes = &mut kept.1;
        bytes[have..have + take].copy_from_slice(&input[*pos..*pos + take]);
        match FrameHeader::decode(&bytes[..have + take])? {
            Some((header, len)) => {
                // `have` bytes were not enough before, so the header ends in this input.
                *pos += len - have;
                Ok(Some((header, len)))
            }
            None => {
                self.pending = Pending::Header {
                    len: (have + take) as u8,
                    bytes: kept.1,
                };
                *pos += take;
                Ok(None)
            }
        }
    }

    /// Apply every rule a header must pass before its payload is read; also says whether the
    /// frame starts a compressed message.
    ///
    /// RFC 7692 §6: with permessage-deflate, RSV1 set on the first frame of a data message marks
    /// it compressed; "An endpoint MUST NOT set the "Per-Message Compressed" bit of control
    /// frames and non-first fragments of a data message", so RSV1 anywhere else fails the
    /// connection. Without the extension RSV1 is a reserved bit like the others (§5.2).
    fn start_frame(
        &mut self,
        header: &FrameHeader,
        header_len: usize,
    ) -> Result<(OpCode, bool), ProtocolError> {
        let compressed = self.inflater.is_some() && header.rsv & RSV1 != 0;
        let opcode = if compressed {
            let opcode = FrameHeader {
                rsv: header.rsv & !RSV1,
                ..*header
            }
            .check(self.role)?;
            if !matches!(opcode, OpCode::Text | OpCode::Binary) {
                return Err(ProtocolError::CompressedBitMisplaced);
            }
            opcode
        } else {
            header.check(self.role)?
        };
        if header.payload_len > self.limits.max_frame_size {
            return Err(ProtocolError::FrameTooLarge);
        }
        if !opcode.is_control() {
            self.message.check_frame(
                opcode,
                header_len as u64 + header.payload_len,
                self.limits.max_message_size,
            )?;
        }
        Ok((opcode, compressed))
    }

    /// What a control frame obliges this side to send, as soon as it is read.
    ///
    /// * §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in response".
    /// * §5.5.1: the Close is validated, then answered with its status code unless this side
    ///   already sent a Close; nothing more is read after it.
    fn answer_control(
        &mut self,
        opcode: OpCode,
        payload: &[u8],
        tx: &mut Sender,
        out: &mut Vec<u8>,
    ) -> Result<(), ProtocolError> {
        match opcode {
            OpCode::Ping => {
                tx.send_pong(payload, out);
            }
            OpCode::Close => {
                let close = parse_close_payload(payload)?;
                self.done = true;
                tx.send_close(close.code, "", out);
            }
            _ => {}
        }
        Ok(())
    }

    /// Read what the input holds of the current frame's payload; `Some` when the frame completed
    /// an event.
    fn read_payload(
        &mut self,
        input: &mut [u8],
        pos: &mut usize,
        tx: &mut Sender,
        out: &mut Vec<u8>,
    ) -> Result<Option<Completed>, ProtocolError> {
        let Pending::Payload(frame) = &mut self.pending else {
            return Ok(None);
        };
        let take = frame.remaining.min((input.len() - *pos) as u64) as usize;
        let chunk = &mut input[*pos..*pos + take];
        *pos += take;
        if let Some(key) = frame.mask {
            apply_mask(chunk, key, frame.mask_phase as usize);
        }
        frame.mask_phase = ((frame.mask_phase as usize + take) % 4) as u8;
        frame.remaining -= take as u64;
        if frame.opcode.is_control() {
            self.control
                .get_or_insert_with(ControlPayload::new_boxed)
                .push(chunk);
        } else if let Some(inflater) = self.inflater.as_mut().filter(|i| i.active) {
            // RFC 7692 §7.2.2, as the payload arrives: the buffer never holds more than the
            // message limit, however far the data would inflate.
            let limit = inflate_limit(&self.limits, inflater.cap);
            self.message.push_with(|buf| {
                inflater
                    .engine
                    .inflate(chunk, buf, limit)
                    .map_err(ProtocolError::from)
            })?;
        } else {
            self.message.push(chunk)?;
        }
        if frame.remaining > 0 {
            return Ok(None);
        }
        let (opcode, fin) = (frame.opcode, frame.fin);
        self.pending = Pending::Nothing;
        if opcode.is_control() {
            let control = self.control.take();
            let answered = self.answer_control(opcode, ControlPayload::bytes(&control), tx, out);
            self.control = control;
            answered?;
            return Ok(Some(Completed::Gathered(opcode)));
        }
        if fin {
            if let Some(inflater) = self.inflater.as_mut().filter(|i| i.active) {
                // §7.2.2: "Append 4 octets of 0x00 0x00 0xff 0xff to the tail end of the payload
                // of the message" and inflate them too.
                inflater.active = false;
                let limit = inflate_limit(&self.limits, inflater.cap);
                self.message.push_with(|buf| {
                    inflater
                        .engine
                        .finish(buf, limit)
                        .map_err(ProtocolError::from)
                })?;
            }
            self.message.complete()?;
            return Ok(Some(Completed::Reassembled));
        }
        Ok(None)
    }
}

/// The most bytes a compressed message may inflate to: the message limit, counted in payload,
/// and the caller's memory headroom.
fn inflate_limit(limits: &Limits, cap: usize) -> usize {
    usize::try_from(limits.max_message_size)
        .unwrap_or(usize::MAX)
        .min(cap)
}

/// The event for a frame that is complete by itself (already validated, and answered).
fn frame_event(opcode: OpCode, payload: &[u8]) -> Result<Event<'_>, ProtocolError> {
    Ok(match opcode {
        // The one UTF-8 pass over a whole single-frame text message (§8.1).
        OpCode::Text => Event::Message(Message::Text(
            std::str::from_utf8(payload).map_err(|_| ProtocolError::InvalidUtf8)?,
        )),
        OpCode::Ping => Event::Ping(payload),
        OpCode::Pong => Event::Pong(payload),
        OpCode::Close => Event::Close(parse_close_payload(payload)?),
        OpCode::Binary | OpCode::Continuation => Event::Message(Message::Binary(payload)),
    })
}

/// Fail the WebSocket connection (§7.1.7): send the Close with the error's code (unless a Close
/// was already sent) and read nothing more.
fn fail(
    done: &mut bool,
    tx: &mut Sender,
    out: &mut Vec<u8>,
    error: ProtocolError,
) -> ProtocolError {
    *done = true;
    tx.send_close(Some(error.close_code()), &error.to_string(), out);
    error
}
