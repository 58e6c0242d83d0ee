//! `wsbridge serve --trace`: every frame in and out of every connection, annotated like the
//! dissector does, with the route's own message types (Hrana request types, ttyd message bytes).
//!
//! The tracer keeps its own incremental parser per direction and only ever reads copies of the
//! bytes, so with tracing off the server's hot path does not change at all. Secrets never reach
//! the log: the token in Hrana's `hello.jwt`, ttyd's `AuthToken`, `Authorization` headers and a
//! `token=` in the request target are redacted; terminal input is a byte count unless
//! `--trace-input` is given.

use std::fmt::Write;

use super::hex::{hex_bytes, preview};
use crate::protocol::Role;
use crate::protocol::close::CloseCode;
use crate::protocol::deflate::{ClientOffer, CodecConfig, Decompressor, DeflateParams};
use crate::protocol::frame::{FrameHeader, OpCode, RSV1};
use crate::protocol::http::{HeadLimits, RequestHead, parse_request};
use crate::protocol::mask::apply_mask;

/// What `--trace` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceConfig {
    /// Payload bytes shown per frame (`--trace-payload`).
    pub max_payload: usize,
    /// Show what is typed into terminals (`--trace-input`).
    pub show_input: bool,
}

impl Default for TraceConfig {
    fn default() -> Self {
        TraceConfig {
            max_payload: 64,
            show_input: false,
        }
    }
}

/// Which way bytes went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the peer to the server.
    In,
    /// From the server to the peer.
    Out,
}

/// How one route's messages read in a trace: each route supplies its own, so this module
/// needs to know none of them. Secrets are redacted by the decoder.
pub trait MessageDecoder: Sync {
    /// The route's name in trace lines.
    fn name(&self) -> &'static str;
    /// Whether frame payloads may be shown raw (only where nothing secret can be in them).
    fn shows_raw_payloads(&self) -> bool {
        false
    }
    /// The meaning of message `number` (counting from 1 in each direction), whole.
    fn describe(
        &self,
        direction: Direction,
        kind: OpCode,
        body: &[u8],
        number: u64,
        config: TraceConfig,
    ) -> String;
}

/// The decoder for a connection, from its upgrade request (the server's routing rule); `None`
/// for a request the server refuses.
pub type DecoderSelector = fn(&RequestHead<'_>) -> Option<&'static dyn MessageDecoder>;

/// The largest message kept whole to decode its route-level type.
const MAX_DECODED_MESSAGE: usize = 64 * 1024;
/// The largest compressed message kept (and inflated) to follow the peer's window: every one
/// must be inflated, or the next messages could not be.
const MAX_INFLATED_MESSAGE: usize = 64 << 20;

/// The frame whose payload is being read.
struct PendingFrame {
    header: FrameHeader,
    header_bytes: Vec<u8>,
    seen: u64,
    preview: Vec<u8>,
}

/// One direction of one connection.
struct Flow {
    direction: Direction,
    in_http: bool,
    pending: Vec<u8>,
    frame: Option<PendingFrame>,
    message: Option<(OpCode, Vec<u8>, bool)>,
    messages: u64,
    /// With permessage-deflate agreed (seen in the 101): this direction's receiver's inflater.
    inflater: Option<Box<Decompressor>>,
    /// The message in progress had RSV1 on its first frame.
    compressed: bool,
    /// The parameters a 101 seen in this direction agreed to.
    agreed: Option<DeflateParams>,
}

impl Flow {
    fn new(direction: Direction) -> Self {
        Flow {
            direction,
            in_http: true,
            pending: Vec::new(),
            frame: None,
            message: None,
            messages: 0,
            inflater: None,
            compressed: false,
            agreed: None,
        }
    }
}

/// Traces one connection: its HTTP head, then every frame both ways.
pub struct Tracer {
    config: TraceConfig,
    conn: u32,
    select: DecoderSelector,
    route: Option<&'static dyn MessageDecoder>,
    inbound: Flow,
    outbound: Flow,
}

impl Tracer {
    /// A tracer for connection `conn`; `select` finds the route's decoder from the request.
    pub fn new(conn: u32, config: TraceConfig, select: DecoderSelector) -> Tracer {
        Tracer {
            config,
            conn,
            select,
            route: None,
            inbound: Flow::new(Direction::In),
            outbound: Flow::new(Direction::Out),
        }
    }

    /// Bytes that went `direction`; returns the lines to log.
    pub fn bytes(&mut self, direction: Direction, bytes: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        let (config, conn) = (self.config, self.conn);
        let mut input = bytes;
        while !input.is_empty() {
            let flow = match direction {
                Direction::In => &mut self.inbound,
                Direction::Out => &mut self.outbound,
            };
            if flow.in_http {
                let derived;
                (input, derived) = http_bytes(flow, input, conn, self.select, &mut lines);
                // The route comes from the request itself, by the server's own rule, as soon as
                // its head is complete: frames sent in the same read as the request are then
                // already decoded and redacted (a Hrana `hello.jwt`, a ttyd `AuthToken`).
                if derived.is_some() {
                    self.route = derived;
                }
                // A 101 that agreed on permessage-deflate: both directions inflate from now on.
                if let Some(params) = flow.agreed.take() {
                    for (flow, receiver) in [
                        (&mut self.inbound, Role::Server),
                        (&mut self.outbound, Role::Client),
                    ] {
                        let config = CodecConfig::new(&params, receiver);
                        flow.inflater = Some(Box::new(Decompressor::new(&config)));
                    }
                }
            } else if flow.frame.is_none() {
                input = header_bytes(flow, input, conn, self.route, config, &mut lines);
            } else {
                input = payload_bytes(flow, input, conn, self.route, config, &mut lines);
            }
        }
        lines
    }
}

fn arrow(direction: Direction) -> &'static str {
    match direction {
        Direction::In => "client -> server",
        Direction::Out => "server -> client",
    }
}

/// The HTTP head, up to its blank line, logged with secrets redacted. Returns the rest of the
/// input and, for an upgrade request, the route it selects.
fn http_bytes<'a>(
    flow: &mut Flow,
    input: &'a [u8],
    conn: u32,
    select: DecoderSelector,
    lines: &mut Vec<String>,
) -> (&'a [u8], Option<&'static dyn MessageDecoder>) {
    let before = flow.pending.len();
    flow.pending.extend_from_slice(input);
    let Some(end) = flow.pending.windows(4).position(|w| w == b"\r\n\r\n") else {
        if flow.pending.len() > 64 * 1024 {
            flow.pending.clear(); // the server refuses such heads anyway
        }
        return (&[], None);
    };
    // The head is already known to be whole: the server's size limits do not matter here (a
    // head it refuses is never followed by frames).
    let unlimited = HeadLimits {
        max_request_line: usize::MAX,
        max_head_bytes: usize::MAX,
        max_headers: usize::MAX,
    };
    let route = match parse_request(&flow.pending[..end + 4], &unlimited) {
        Ok(Some((head, _))) => select(&head),
        _ => None,
    };
    let head = String::from_utf8_lossy(&flow.pending[..end]).into_owned();
    if head.starts_with("HTTP/1.1 101") {
        let extensions = head.split("\r\n").filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("Sec-WebSocket-Extensions")
                .then(|| value.trim())
        });
        flow.agreed = ClientOffer::default().accept(extensions).ok().flatten();
    }
    let mut text = format!("[conn {conn}] {} HTTP head:", arrow(flow.direction));
    for line in head.split("\r\n") {
        let _ = write!(text, "\n    {}", redact_http_line(line));
    }
    lines.push(text);
    let used = end + 4 - before;
    flow.pending.clear();
    // Only a 101 (or the request that asked for it) is followed by frames; the server closes
    // after any other response, so staying in HTTP mode is harmless.
    flow.in_http = !(head.starts_with("HTTP/1.1 101")
        || head.to_ascii_lowercase().contains("\r\nupgrade: websocket"));
    (&input[used..], route)
}

/// Headers whose whole value is a credential.
const SECRET_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

fn redact_http_line(line: &str) -> String {
    if let Some((name, _)) = line.split_once(':')
        && SECRET_HEADERS
            .iter()
            .any(|secret| name.trim().eq_ignore_ascii_case(secret))
    {
        return format!("{name}: <redacted>");
    }
    // `token=` anywhere (the request target, a Referer header carrying the page URL, ...).
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find("token=") {
        out.push_str(&rest[..at + 6]);
        out.push_str("<redacted>");
        let value = &rest[at + 6..];
        let end = value.find(['&', ' ', '#', ';']).unwrap_or(value.len());
        rest = &value[end..];
    }
    out.push_str(rest);
    out
}

fn header_bytes<'a>(
    flow: &mut Flow,
    input: &'a [u8],
    conn: u32,
    route: Option<&'static dyn MessageDecoder>,
    config: TraceConfig,
    lines: &mut Vec<String>,
) -> &'a [u8] {
    let before = flow.pending.len();
    let take = (14 - before).min(input.len());
    flow.pending.extend_from_slice(&input[..take]);
    match FrameHeader::decode_any_length(&flow.pending) {
        None => &input[take..],
        Some((header, len, _)) => {
            let used = len - before;
            if matches!(
                OpCode::from_u8(header.opcode),
                Some(OpCode::Text | OpCode::Binary)
            ) {
                flow.compressed = flow.inflater.is_some() && header.rsv & RSV1 != 0;
            }
            let frame = PendingFrame {
                header,
                header_bytes: flow.pending[..len].to_vec(),
                seen: 0,
                preview: Vec::new(),
            };
            flow.pending.clear();
            if header.payload_len == 0 {
                flow.frame = Some(frame);
                finish_frame(flow, conn, route, config, lines, true);
            } else {
                flow.frame = Some(frame);
            }
            &input[used..]
        }
    }
}

fn payload_bytes<'a>(
    flow: &mut Flow,
    input: &'a [u8],
    conn: u32,
    route: Option<&'static dyn MessageDecoder>,
    config: TraceConfig,
    lines: &mut Vec<String>,
) -> &'a [u8] {
    let Some(frame) = flow.frame.as_mut() else {
        return input;
    };
    let remaining = frame.header.payload_len - frame.seen;
    let take = remaining.min(input.len() as u64) as usize;
    let mut chunk = input[..take].to_vec();
    if let Some(key) = frame.header.mask {
        apply_mask(&mut chunk, key, (frame.seen % 4) as usize);
    }
    let keep = config
        .max_payload
        .saturating_sub(frame.preview.len())
        .min(chunk.len());
    frame.preview.extend_from_slice(&chunk[..keep]);
    frame.seen += take as u64;
    // Data frames also feed the message being reassembled, for the route's decoding.
    let opcode = OpCode::from_u8(frame.header.opcode);
    let done = frame.seen == frame.header.payload_len;
    if matches!(
        opcode,
        Some(OpCode::Text | OpCode::Binary | OpCode::Continuation)
    ) {
        let message = flow
            .message
            .get_or_insert_with(|| (opcode.unwrap_or(OpCode::Binary), Vec::new(), false));
        let keep_up_to = if flow.compressed {
            MAX_INFLATED_MESSAGE
        } else {
            MAX_DECODED_MESSAGE
        };
        if message.1.len() + chunk.len() <= keep_up_to {
            message.1.extend_from_slice(&chunk);
        } else {
            message.2 = true;
        }
    }
    if done {
        finish_frame(flow, conn, route, config, lines, false);
    }
    &input[take..]
}

fn finish_frame(
    flow: &mut Flow,
    conn: u32,
    route: Option<&'static dyn MessageDecoder>,
    config: TraceConfig,
    lines: &mut Vec<String>,
    empty: bool,
) {
    let Some(frame) = flow.frame.take() else {
        return;
    };
    let header = frame.header;
    let opcode = OpCode::from_u8(header.opcode);
    let name = opcode.map_or("Reserved", OpCode::name);
    let mut line = format!(
        "[conn {conn}] {} {name} ({}){}{} {} bytes",
        arrow(flow.direction),
        header.opcode,
        if header.fin { " FIN" } else { "" },
        match header.rsv {
            0 => "",
            RSV1 if flow.inflater.is_some() => " RSV1 (compressed)",
            _ => " RSV!",
        },
        header.payload_len
    );
    if let Some(key) = header.mask {
        let _ = write!(line, ", mask {}", hex_bytes(&key).replace(' ', ""));
    }
    let _ = write!(line, " [{}]", hex_bytes(&frame.header_bytes));
    let is_data = matches!(
        opcode,
        Some(OpCode::Text | OpCode::Binary | OpCode::Continuation)
    );
    if is_data && !route.is_some_and(|r| r.shows_raw_payloads()) {
        // Route payloads are shown decoded and redacted, never raw; and so are the payloads of
        // a connection whose route is unknown (its request was refused).
    } else if opcode == Some(OpCode::Close) && frame.preview.len() >= 2 {
        let code = CloseCode(u16::from_be_bytes([frame.preview[0], frame.preview[1]]));
        let _ = write!(
            line,
            ": close {} ({}) {:?}",
            code.0,
            code.name(),
            String::from_utf8_lossy(&frame.preview[2..])
        );
    } else if !frame.preview.is_empty() {
        let _ = write!(line, ": {}", preview(&frame.preview, config.max_payload));
        if header.payload_len as usize > frame.preview.len() {
            let _ = write!(line, " ... ({} bytes in all)", header.payload_len);
        }
    }
    if empty && is_data {
        flow.message
            .get_or_insert_with(|| (opcode.unwrap_or(OpCode::Binary), Vec::new(), false));
    }
    if is_data
        && header.fin
        && let Some((kind, mut body, mut too_big)) = flow.message.take()
    {
        flow.messages += 1;
        if std::mem::take(&mut flow.compressed)
            && let Some(inflater) = flow.inflater.as_mut()
        {
            // RFC 7692 §7.2.2, as the receiver does it, so that later messages inflate too.
            let mut plain = Vec::new();
            let inflated = !too_big
                && inflater
                    .inflate(&body, &mut plain, MAX_INFLATED_MESSAGE)
                    .and_then(|()| inflater.finish(&mut plain, MAX_INFLATED_MESSAGE))
                    .is_ok();
            if inflated {
                let _ = write!(
                    line,
                    "\n    permessage-deflate: {} compressed bytes inflate to {}",
                    body.len(),
                    plain.len()
                );
                too_big = plain.len() > MAX_DECODED_MESSAGE;
                body = plain;
            } else {
                let _ = write!(line, "\n    permessage-deflate: does not inflate here");
                too_big = true;
            }
        }
        if let Some(route) = route {
            let decoded = if too_big {
                "message too large to decode".to_string()
            } else {
                route.describe(flow.direction, kind, &body, flow.messages, config)
            };
            let _ = write!(line, "\n    {} message: {decoded}", route.name());
        }
    }
    lines.push(line);
}
