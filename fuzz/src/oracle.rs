//! What a connection (server side, or client side) must do with a byte stream, computed the
//! simple way: whole frames parsed by hand from the complete stream, payloads unmasked with the
//! reference loop, fragments appended to a `Vec`, text checked with `std::str::from_utf8`.
//! Nothing here calls the crate's frame, mask, UTF-8 or reassembly code; only its `Limits` and
//! `ProtocolError` types are shared, so that errors can be compared exactly.
//!
//! The order in which a header's faults are judged is part of the contract the connection is held
//! to: once the whole header (masking key included) is in, the length encoding (§5.2), then RSV
//! bits, opcode, the mask bit as the role requires (§5.1), control-frame rules (§5.5), the frame
//! size limit, fragmentation (§5.4) and the message size limit (counting headers), all before any
//! payload byte. Text fails as soon as the bytes received so far cannot start a valid UTF-8
//! string (§8.1, fail fast), even inside a frame that has not fully arrived.

use wsbridge::protocol::{Limits, ProtocolError, Role};

use crate::wire::{ServerFrame, xor_mask};

/// An event with its data owned, comparable between the oracle and the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
}

/// How the connection under test is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Which side the connection is: a server expects masked frames, a client unmasked ones.
    pub role: Role,
    pub limits: Limits,
    /// The application calls `close(1000, "")` before any input: the state is `CloseSent`, so
    /// no Close echo and no failure Close are written afterwards; Pings are still answered
    /// (§5.5.2).
    pub close_first: bool,
    /// Every message is sent straight back through the `Sender` the event came with.
    pub echo: bool,
}

/// One frame the server is expected to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// Exactly this frame.
    Frame(ServerFrame),
    /// The Close that fails the connection: this code, and any UTF-8 reason that fits (§5.5).
    FailClose(u16),
}

/// Everything the connection must produce for a whole stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub events: Vec<Ev>,
    pub error: Option<ProtocolError>,
    pub out: Vec<Out>,
}

impl Out {
    /// Whether the frame a server actually wrote is this one.
    pub fn matches(&self, frame: &ServerFrame) -> bool {
        match self {
            Out::Frame(expected) => expected == frame,
            Out::FailClose(code) => {
                frame.opcode == 0x8
                    && frame.payload.len() >= 2
                    && u16::from_be_bytes([frame.payload[0], frame.payload[1]]) == *code
                    && std::str::from_utf8(&frame.payload[2..]).is_ok()
            }
        }
    }
}

/// §7.4.1/§7.4.2: the codes a peer may put in a Close frame: those the RFC defines for use
/// (1000-1003, 1007-1011), the IANA-registered 1012-1014, and 3000-4999.
pub fn close_code_allowed(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Whether `bytes` can no longer be the start of a UTF-8 string, whatever follows.
pub fn utf8_definitely_invalid(bytes: &[u8]) -> bool {
    matches!(std::str::from_utf8(bytes), Err(e) if e.error_len().is_some())
}

fn close_frame(code: Option<u16>) -> Out {
    Out::Frame(ServerFrame {
        opcode: 0x8,
        payload: code.map(|c| c.to_be_bytes().to_vec()).unwrap_or_default(),
    })
}

/// A message being reassembled.
struct Partial {
    text: bool,
    buf: Vec<u8>,
    /// Wire bytes so far, headers included.
    wire: u64,
}

/// Run the oracle over a whole stream.
pub fn expect(stream: &[u8], opts: Options) -> Outcome {
    let mut events = Vec::new();
    let mut out = Vec::new();
    let mut close_sent = opts.close_first;
    if opts.close_first {
        out.push(close_frame(Some(1000)));
    }
    let error = match run(stream, opts, &mut events, &mut out, &mut close_sent) {
        Ok(()) => None,
        Err(error) => {
            if !close_sent {
                out.push(Out::FailClose(error.close_code().0));
            }
            Some(error)
        }
    };
    Outcome { events, error, out }
}

fn run(
    stream: &[u8],
    opts: Options,
    events: &mut Vec<Ev>,
    out: &mut Vec<Out>,
    close_sent: &mut bool,
) -> Result<(), ProtocolError> {
    let limits = opts.limits;
    let mut rest = stream;
    let mut message: Option<Partial> = None;
    loop {
        // §5.2, the header. Its faults are judged once all of it, masking key included, is in.
        let [b0, b1, ..] = *rest else {
            return Ok(());
        };
        let masked = b1 & 0x80 != 0;
        let ext_len = match b1 & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let header_len = 2 + ext_len + if masked { 4 } else { 0 };
        if rest.len() < header_len {
            return Ok(());
        }
        let len = match ext_len {
            0 => u64::from(b1 & 0x7f),
            2 => u64::from(u16::from_be_bytes([rest[2], rest[3]])),
            _ => u64::from_be_bytes(rest[2..10].try_into().expect("8 bytes")),
        };
        if len & (1 << 63) != 0 {
            return Err(ProtocolError::LengthMsbSet);
        }
        if (ext_len == 2 && len < 126) || (ext_len == 8 && len < 65536) {
            return Err(ProtocolError::NonMinimalLength);
        }
        let key: [u8; 4] = if masked {
            rest[2 + ext_len..header_len].try_into().expect("4 bytes")
        } else {
            [0; 4]
        };
        let fin = b0 & 0x80 != 0;
        let rsv = (b0 >> 4) & 7;
        let opcode = b0 & 0xf;
        if rsv != 0 {
            return Err(ProtocolError::ReservedBitsSet(rsv));
        }
        if !matches!(opcode, 0 | 1 | 2 | 8 | 9 | 10) {
            return Err(ProtocolError::ReservedOpcode(opcode));
        }
        match (opts.role, masked) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedClientFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedServerFrame),
            _ => {}
        }
        let control = opcode >= 8;
        if control && len > 125 {
            return Err(ProtocolError::ControlFrameTooLong);
        }
        if control && !fin {
            return Err(ProtocolError::FragmentedControlFrame);
        }
        if len > limits.max_frame_size {
            return Err(ProtocolError::FrameTooLarge);
        }
        if !control {
            match (opcode, &message) {
                (0, None) => return Err(ProtocolError::UnexpectedContinuation),
                (1 | 2, Some(_)) => return Err(ProtocolError::ExpectedContinuation),
                _ => {}
            }
            let so_far = message.as_ref().map_or(0, |m| m.wire);
            if so_far.saturating_add(header_len as u64 + len) > limits.max_message_size {
                return Err(ProtocolError::MessageTooLarge);
            }
            let m = message.get_or_insert_with(|| Partial {
                text: opcode == 1,
                buf: Vec::new(),
                wire: 0,
            });
            m.wire += header_len as u64 + len;
        }
        // The payload, or what has arrived of it.
        let body = &rest[header_len..];
        let have = usize::try_from(len).map_or(body.len(), |len| len.min(body.len()));
        let mut payload = body[..have].to_vec();
        xor_mask(&mut payload, key, 0);
        if let Some(m) = message.as_mut().filter(|_| !control) {
            let checked = std::str::from_utf8(&m.buf).map_or_else(|e| e.valid_up_to(), str::len);
            m.buf.extend_from_slice(&payload);
            if m.text && utf8_definitely_invalid(&m.buf[checked..]) {
                return Err(ProtocolError::InvalidUtf8);
            }
        }
        if (have as u64) < len {
            return Ok(());
        }
        rest = &body[have..];
        match opcode {
            0x9 => {
                events.push(Ev::Ping(payload.clone()));
                // §5.5.2: answered even after our own Close.
                out.push(Out::Frame(ServerFrame {
                    opcode: 0xA,
                    payload,
                }));
            }
            0xA => events.push(Ev::Pong(payload)),
            0x8 => {
                // §5.5.1: empty, or a two-byte code and a UTF-8 reason.
                let (code, reason) = match payload[..] {
                    [] => (None, String::new()),
                    [_] => return Err(ProtocolError::CloseFrameTooShort),
                    [hi, lo, ref reason @ ..] => {
                        let code = u16::from_be_bytes([hi, lo]);
                        if !close_code_allowed(code) {
                            return Err(ProtocolError::InvalidCloseCode(code));
                        }
                        let reason = String::from_utf8(reason.to_vec())
                            .map_err(|_| ProtocolError::InvalidUtf8)?;
                        (Some(code), reason)
                    }
                };
                events.push(Ev::Close(code, reason));
                if !*close_sent {
                    out.push(close_frame(code));
                    *close_sent = true;
                }
                // §1.4: nothing after the peer's Close is read.
                return Ok(());
            }
            _ if fin => {
                let m = message.take().expect("a data frame has a message");
                let (opcode, event) = if m.text {
                    let text = String::from_utf8(m.buf).map_err(|_| ProtocolError::InvalidUtf8)?;
                    (0x1, Ev::Text(text))
                } else {
                    (0x2, Ev::Binary(m.buf))
                };
                let payload = match &event {
                    Ev::Text(t) => t.as_bytes().to_vec(),
                    Ev::Binary(b) => b.clone(),
                    _ => unreachable!(),
                };
                events.push(event);
                if opts.echo && !*close_sent {
                    out.push(Out::Frame(ServerFrame { opcode, payload }));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::client;

    fn opts() -> Options {
        Options {
            role: Role::Server,
            limits: Limits::default(),
            close_first: false,
            echo: false,
        }
    }

    #[test]
    fn rfc_5_7_fragmented_text_with_a_ping_between() {
        let key = [1, 2, 3, 4];
        let mut s = crate::wire::frame(false, 0, 1, Some(key), b"Hel");
        s.extend(client(9, key, b"p"));
        s.extend(crate::wire::frame(true, 0, 0, Some(key), b"lo"));
        let o = expect(&s, opts());
        assert_eq!(
            o.events,
            [Ev::Ping(b"p".to_vec()), Ev::Text("Hello".into())]
        );
        assert_eq!(o.error, None);
    }

    #[test]
    fn fails_fast_inside_an_unfinished_frame() {
        let mut s =
            crate::wire::header(true, 0, 1, Some([0; 4]), 10, crate::wire::LenForm::Minimal);
        s.extend_from_slice(b"ab\xff");
        assert_eq!(expect(&s, opts()).error, Some(ProtocolError::InvalidUtf8));
        s.truncate(s.len() - 1);
        assert_eq!(expect(&s, opts()).error, None);
    }
}
