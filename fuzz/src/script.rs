//! The structured target `connection_valid`: the fuzzer's bytes become a script of *valid*
//! client traffic (messages of every size, fragmented anywhere, even inside a UTF-8 character,
//! with Pings and Pongs between the fragments, random masking keys, a Close or not at the end),
//! optionally ending in one known violation. The stream is encoded, cut at random, fed to the
//! connection, and the connection must yield exactly the messages that were encoded, answer
//! exactly as RFC 6455 says, and fail with exactly the violation's error. Raw bytes rarely get
//! this deep: a random byte stream almost never holds a long, well-masked, fragmented message.

use arbitrary::Arbitrary;
use wsbridge::protocol::{Limits, ProtocolError, Role};

use crate::drive;
use crate::oracle::{self, Ev, Options, Out, close_code_allowed};
use crate::wire::{self, LenForm, ServerFrame};

/// Limits for scripts: room for the longest generated message with all its headers, and small
/// enough that the size violations stay cheap to encode.
pub const SCRIPT_LIMITS: Limits = Limits {
    max_frame_size: 100_000,
    max_message_size: 200_000,
};

/// At most this many fragments per message, so that headers never push a valid message over
/// [`SCRIPT_LIMITS`].
const MAX_FRAGMENTS: usize = 256;

#[derive(Debug, Arbitrary)]
pub struct Script {
    pub items: Vec<Item>,
    pub end: End,
    /// Read sizes (each + 1, cycled); none: the stream arrives in one read.
    pub splits: Vec<u16>,
    pub echo: bool,
}

#[derive(Debug, Arbitrary)]
pub enum Item {
    Message(Msg),
    Control(Control),
}

#[derive(Debug, Arbitrary)]
pub struct Msg {
    pub payload: Payload,
    /// Fragment boundaries (mod the payload length + 1; repeats make empty fragments).
    pub cuts: Vec<u16>,
    /// Control frames after fragment `i` (all but the last).
    pub between: Vec<Option<Control>>,
    /// Masking keys, one per frame, cycled.
    pub keys: Vec<[u8; 4]>,
}

#[derive(Debug, Arbitrary)]
pub enum Payload {
    Text(String),
    Binary(Vec<u8>),
    /// A long message (up to 70,000 bytes, so all three length forms occur), text made of one
    /// repeated character of 1 to 4 bytes, or a binary pattern.
    Long {
        text: bool,
        len: u32,
        fill: u8,
    },
}

#[derive(Debug, Arbitrary)]
pub enum Control {
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
pub enum End {
    /// The stream stops; the connection stays open.
    Open,
    /// A Close with a code (made valid) and a reason (cut to fit).
    Close { code: u16, reason: String },
    /// A Close with an empty body.
    CloseEmpty,
    /// One frame that breaks a rule; the connection must fail with the matching error.
    Violation(Violation),
}

#[derive(Debug, Clone, Arbitrary)]
pub enum Violation {
    /// RSV1-3 (made non-zero) on a text frame.
    Rsv(u8),
    /// A reserved opcode (3-7, 0xB-0xF).
    ReservedOpcode(u8),
    /// A data frame without the mask bit.
    Unmasked,
    /// A length under 126 in the 16-bit form.
    NonMinimal16(u8),
    /// A length up to 0xFFFF in the 64-bit form.
    NonMinimal64(u16),
    /// A 64-bit length with its top bit set.
    LengthMsb(u64),
    /// A Ping or Pong, or Close announcing over 125 bytes.
    LongControl(u8, u8),
    /// A Ping without FIN.
    FragmentedPing,
    /// A continuation frame with no message started.
    LoneContinuation,
    /// A new data frame inside a fragmented message.
    NewMessageInsideFragmented(bool),
    /// Text whose bytes turn invalid after a valid prefix (a byte that never occurs in UTF-8).
    BadUtf8(String, bool),
    /// A Close whose body is one byte.
    CloseOneByte(u8),
    /// A Close with a code a peer may not send.
    CloseBadCode(u16),
    /// A Close whose reason is not UTF-8.
    CloseBadReason,
    /// A frame announcing more than the frame limit.
    FrameTooBig,
    /// A fragmented message whose second frame takes it over the message limit.
    MessageTooBig,
}

fn cut_utf8(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Payload {
    fn bytes(&self) -> (bool, Vec<u8>) {
        match self {
            Payload::Text(t) => (true, t.as_bytes().to_vec()),
            Payload::Binary(b) => (false, b.clone()),
            Payload::Long { text, len, fill } => {
                let len = *len as usize % 70_000;
                if *text {
                    let c = ['a', 'é', '€', '😀'][usize::from(*fill % 4)];
                    (true, c.to_string().repeat(len / c.len_utf8()).into_bytes())
                } else {
                    let bytes = (0..len)
                        .map(|i| (i as u8).wrapping_mul(*fill | 1))
                        .collect();
                    (false, bytes)
                }
            }
        }
    }
}

impl Control {
    fn frame(&self) -> (u8, &[u8]) {
        match self {
            Control::Ping(p) => (0x9, &p[..p.len().min(125)]),
            Control::Pong(p) => (0xA, &p[..p.len().min(125)]),
        }
    }
}

/// The stream a script encodes and everything the connection must do with it.
pub struct Encoded {
    pub stream: Vec<u8>,
    pub expected: oracle::Outcome,
}

struct Builder {
    stream: Vec<u8>,
    events: Vec<Ev>,
    out: Vec<Out>,
    echo: bool,
}

impl Builder {
    fn control(&mut self, c: &Control, key: [u8; 4]) {
        let (opcode, payload) = c.frame();
        self.stream.extend(wire::client(opcode, key, payload));
        if opcode == 0x9 {
            self.events.push(Ev::Ping(payload.to_vec()));
            self.out.push(Out::Frame(ServerFrame {
                opcode: 0xA,
                payload: payload.to_vec(),
            }));
        } else {
            self.events.push(Ev::Pong(payload.to_vec()));
        }
    }

    fn message(&mut self, m: &Msg) {
        let (text, bytes) = m.payload.bytes();
        let mut cuts: Vec<usize> = m
            .cuts
            .iter()
            .take(MAX_FRAGMENTS - 1)
            .map(|&c| usize::from(c) % (bytes.len() + 1))
            .collect();
        cuts.sort_unstable();
        cuts.push(bytes.len());
        let key = |i: usize| {
            m.keys
                .get(i % m.keys.len().max(1))
                .copied()
                .unwrap_or([0; 4])
        };
        let mut start = 0;
        for (i, &end) in cuts.iter().enumerate() {
            let fin = i + 1 == cuts.len();
            let opcode = if i == 0 { 1 + u8::from(!text) } else { 0 };
            let frame = wire::frame(fin, 0, opcode, Some(key(i)), &bytes[start..end]);
            self.stream.extend(frame);
            start = end;
            if let Some(Some(c)) = m.between.get(i).filter(|_| !fin) {
                self.control(c, key(i + 1000));
            }
        }
        let opcode = if text { 0x1 } else { 0x2 };
        self.events.push(if text {
            Ev::Text(String::from_utf8(bytes.clone()).expect("text payloads are UTF-8"))
        } else {
            Ev::Binary(bytes.clone())
        });
        if self.echo {
            self.out.push(Out::Frame(ServerFrame {
                opcode,
                payload: bytes,
            }));
        }
    }

    /// Append the violating frame(s) and return the error they must cause.
    fn violation(&mut self, v: &Violation) -> ProtocolError {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let s = &mut self.stream;
        match *v {
            Violation::Rsv(bits) => {
                let bits = (bits % 7) + 1;
                s.extend(wire::frame(true, bits, 0x1, Some(key), b"rsv"));
                ProtocolError::ReservedBitsSet(bits)
            }
            Violation::ReservedOpcode(op) => {
                let op = [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF][usize::from(op % 10)];
                s.extend(wire::client(op, key, b""));
                ProtocolError::ReservedOpcode(op)
            }
            Violation::Unmasked => {
                s.extend(wire::frame(true, 0, 0x1, None, b"Hello"));
                ProtocolError::UnmaskedClientFrame
            }
            Violation::NonMinimal16(len) => {
                let len = u64::from(len % 126);
                s.extend(wire::header(true, 0, 0x2, Some(key), len, LenForm::Force16));
                ProtocolError::NonMinimalLength
            }
            Violation::NonMinimal64(len) => {
                s.extend(wire::header(
                    true,
                    0,
                    0x2,
                    Some(key),
                    len.into(),
                    LenForm::Force64,
                ));
                ProtocolError::NonMinimalLength
            }
            Violation::LengthMsb(len) => {
                let len = len | 1 << 63;
                s.extend(wire::header(true, 0, 0x2, Some(key), len, LenForm::Force64));
                ProtocolError::LengthMsbSet
            }
            Violation::LongControl(op, extra) => {
                let op = [0x8, 0x9, 0xA][usize::from(op % 3)];
                let len = 126 + u64::from(extra);
                s.extend(wire::header(true, 0, op, Some(key), len, LenForm::Minimal));
                ProtocolError::ControlFrameTooLong
            }
            Violation::FragmentedPing => {
                s.extend(wire::frame(false, 0, 0x9, Some(key), b"p"));
                ProtocolError::FragmentedControlFrame
            }
            Violation::LoneContinuation => {
                s.extend(wire::frame(true, 0, 0x0, Some(key), b"c"));
                ProtocolError::UnexpectedContinuation
            }
            Violation::NewMessageInsideFragmented(binary) => {
                let op = 1 + u8::from(binary);
                s.extend(wire::frame(false, 0, 0x1, Some(key), b"Hel"));
                s.extend(wire::frame(true, 0, op, Some(key), b"lo"));
                ProtocolError::ExpectedContinuation
            }
            Violation::BadUtf8(ref prefix, fragmented) => {
                let mut bytes = cut_utf8(prefix, 100).as_bytes().to_vec();
                bytes.push(0xff);
                if fragmented {
                    // The bad byte in a first fragment: found before the message ends.
                    s.extend(wire::frame(false, 0, 0x1, Some(key), &bytes));
                } else {
                    s.extend(wire::client(0x1, key, &bytes));
                }
                ProtocolError::InvalidUtf8
            }
            Violation::CloseOneByte(b) => {
                s.extend(wire::client(0x8, key, &[b]));
                ProtocolError::CloseFrameTooShort
            }
            Violation::CloseBadCode(code) => {
                let code = if close_code_allowed(code) { 1005 } else { code };
                s.extend(wire::client(0x8, key, &code.to_be_bytes()));
                ProtocolError::InvalidCloseCode(code)
            }
            Violation::CloseBadReason => {
                s.extend(wire::client(0x8, key, b"\x03\xe8bad \xc3\x28"));
                ProtocolError::InvalidUtf8
            }
            Violation::FrameTooBig => {
                let len = SCRIPT_LIMITS.max_frame_size + 1;
                s.extend(wire::header(true, 0, 0x2, Some(key), len, LenForm::Minimal));
                ProtocolError::FrameTooLarge
            }
            Violation::MessageTooBig => {
                let len = SCRIPT_LIMITS.max_frame_size;
                s.extend(wire::frame(
                    false,
                    0,
                    0x2,
                    Some(key),
                    &vec![0; len as usize],
                ));
                s.extend(wire::header(true, 0, 0x0, Some(key), len, LenForm::Minimal));
                ProtocolError::MessageTooLarge
            }
        }
    }
}

/// Encode a script and work out, from the script alone, what the connection must do.
pub fn encode(script: &Script) -> Encoded {
    let mut b = Builder {
        stream: Vec::new(),
        events: Vec::new(),
        out: Vec::new(),
        echo: script.echo,
    };
    for (i, item) in script.items.iter().enumerate() {
        match item {
            Item::Message(m) => b.message(m),
            Item::Control(c) => b.control(c, [i as u8, 0x5a, 0xa5, 0xff]),
        }
    }
    let error = match &script.end {
        End::Open => None,
        End::Close { code, reason } => {
            let code = if close_code_allowed(*code) {
                *code
            } else {
                3000 + code % 2000
            };
            let reason = cut_utf8(reason, 123);
            let mut body = code.to_be_bytes().to_vec();
            body.extend_from_slice(reason.as_bytes());
            b.stream.extend(wire::client(0x8, [9, 8, 7, 6], &body));
            b.events.push(Ev::Close(Some(code), reason.to_owned()));
            b.out.push(Out::Frame(ServerFrame {
                opcode: 0x8,
                payload: code.to_be_bytes().to_vec(),
            }));
            None
        }
        End::CloseEmpty => {
            b.stream.extend(wire::client(0x8, [0; 4], b""));
            b.events.push(Ev::Close(None, String::new()));
            b.out.push(Out::Frame(ServerFrame {
                opcode: 0x8,
                payload: Vec::new(),
            }));
            None
        }
        End::Violation(v) => {
            let error = b.violation(v);
            b.out.push(Out::FailClose(error.close_code().0));
            Some(error)
        }
    };
    Encoded {
        stream: b.stream,
        expected: oracle::Outcome {
            events: b.events,
            error,
            out: b.out,
        },
    }
}

/// The `connection_valid` target: the oracle must agree with the script, and the connection,
/// fed the stream in the script's reads (and at once), must agree with both.
pub fn check(script: &Script) {
    let Encoded { stream, expected } = encode(script);
    let opts = Options {
        role: Role::Server,
        limits: SCRIPT_LIMITS,
        close_first: false,
        echo: script.echo,
    };
    assert_eq!(oracle::expect(&stream, opts), expected, "oracle vs script");
    let splits: Vec<usize> = script.splits.iter().map(|&s| usize::from(s) + 1).collect();
    drive::check(&drive::run(&stream, &splits, opts), &expected, "split");
    if !splits.is_empty() {
        drive::check(&drive::run(&stream, &[], opts), &expected, "whole");
    }
}
