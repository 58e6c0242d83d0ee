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
use crate::protocol::close::CloseCode;
use crate::protocol::frame::{FrameHeader, OpCode};
use crate::protocol::handshake::{HeadLimits, parse_request};
use crate::protocol::mask::apply_mask;
use crate::routes::{RouteKind, select};

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

/// The largest message kept whole to decode its route-level type.
const MAX_DECODED_MESSAGE: usize = 64 * 1024;

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
        }
    }
}

/// Traces one connection: its HTTP head, then every frame both ways.
pub struct Tracer {
    config: TraceConfig,
    conn: u32,
    route: Option<RouteKind>,
    inbound: Flow,
    outbound: Flow,
}

impl Tracer {
    /// A tracer for connection `conn`.
    pub fn new(conn: u32, config: TraceConfig) -> Tracer {
        Tracer {
            config,
            conn,
            route: None,
            inbound: Flow::new(Direction::In),
            outbound: Flow::new(Direction::Out),
        }
    }

    /// Bytes that went `direction`; returns the lines to log.
    pub fn bytes(&mut self, direction: Direction, bytes: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        let (config, conn) = (self.config, self.conn);
        let flow = match direction {
            Direction::In => &mut self.inbound,
            Direction::Out => &mut self.outbound,
        };
        let mut input = bytes;
        while !input.is_empty() {
            if flow.in_http {
                let derived;
                (input, derived) = http_bytes(flow, input, conn, &mut lines);
                // The route comes from the request itself, by the server's own rule, as soon as
                // its head is complete: frames sent in the same read as the request are then
                // already decoded and redacted (a Hrana `hello.jwt`, a ttyd `AuthToken`).
                if derived.is_some() {
                    self.route = derived;
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
    lines: &mut Vec<String>,
) -> (&'a [u8], Option<RouteKind>) {
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
        Ok(Some((head, _))) => select(&head).ok().map(|(kind, _)| kind),
        _ => None,
    };
    let head = String::from_utf8_lossy(&flow.pending[..end]).into_owned();
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
    route: Option<RouteKind>,
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
    route: Option<RouteKind>,
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
        if message.1.len() + chunk.len() <= MAX_DECODED_MESSAGE {
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
    route: Option<RouteKind>,
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
        if header.rsv != 0 { " RSV!" } else { "" },
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
    if is_data && route != Some(RouteKind::Echo) {
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
        && let Some((kind, body, too_big)) = flow.message.take()
    {
        flow.messages += 1;
        if let Some(route) = route {
            let decoded = if too_big {
                "message too large to decode".to_string()
            } else {
                decode_route_message(route, flow.direction, kind, &body, flow.messages, config)
            };
            let _ = write!(line, "\n    {route:?} message: {decoded}");
        }
    }
    lines.push(line);
}

/// The route-level meaning of a whole message, secrets redacted.
fn decode_route_message(
    route: RouteKind,
    direction: Direction,
    kind: OpCode,
    body: &[u8],
    number: u64,
    config: TraceConfig,
) -> String {
    match route {
        RouteKind::Sql => describe_hrana(body, config),
        RouteKind::Tty => describe_ttyd(direction, body, number, config),
        RouteKind::Echo => {
            let what = if kind == OpCode::Text {
                "text"
            } else {
                "binary"
            };
            format!("{what}, {} bytes", body.len())
        }
    }
}

fn describe_hrana(body: &[u8], config: TraceConfig) -> String {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return format!("not JSON ({} bytes)", body.len());
    };
    if let Some(jwt) = value.get_mut("jwt")
        && !jwt.is_null()
    {
        *jwt = serde_json::Value::String("<redacted>".into());
    }
    let kind = value["type"].as_str().unwrap_or("?").to_string();
    let mut summary = kind.clone();
    if let Some(id) = value.get("request_id") {
        let _ = write!(summary, " #{id}");
    }
    for key in ["request", "response"] {
        if let Some(inner) = value
            .get(key)
            .and_then(|v| v.get("type"))
            .and_then(|t| t.as_str())
        {
            let _ = write!(summary, " {inner}");
        }
    }
    let json = value.to_string();
    let shown: String = json.chars().take(config.max_payload.max(16)).collect();
    let ellipsis = if shown.len() < json.len() { " ..." } else { "" };
    format!("{summary}: {shown}{ellipsis}")
}

fn describe_ttyd(direction: Direction, body: &[u8], number: u64, config: TraceConfig) -> String {
    match (direction, body.first()) {
        (Direction::In, Some(b'{')) if number == 1 => {
            let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
            format!(
                "init (AuthToken <redacted>), {} columns x {} rows",
                value["columns"], value["rows"]
            )
        }
        (Direction::In, Some(b'0')) if config.show_input => {
            format!("'0' input: {}", preview(&body[1..], config.max_payload))
        }
        (Direction::In, Some(b'0')) => format!(
            "'0' input, {} bytes (--trace-input shows them)",
            body.len() - 1
        ),
        (Direction::In, Some(b'1')) => {
            format!("'1' resize {}", String::from_utf8_lossy(&body[1..]))
        }
        (Direction::In, Some(b'2')) => "'2' pause".into(),
        (Direction::In, Some(b'3')) => "'3' resume".into(),
        (Direction::Out, Some(b'0')) => {
            format!("'0' output: {}", preview(&body[1..], config.max_payload))
        }
        (Direction::Out, Some(b'1')) => {
            format!("'1' title {:?}", String::from_utf8_lossy(&body[1..]))
        }
        (Direction::Out, Some(b'2')) => {
            format!("'2' preferences {}", String::from_utf8_lossy(&body[1..]))
        }
        (_, Some(other)) => format!("type byte {other:#04x}, {} bytes", body.len()),
        (_, None) => "empty".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::encode::{FrameSpec, encode_frame};

    fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        encode_frame(&FrameSpec {
            fin: true,
            rsv: 0,
            opcode,
            mask: Some([1, 2, 3, 4]),
            payload: payload.to_vec(),
        })
    }

    fn trace_all(route: RouteKind, config: TraceConfig, inbound: &[&[u8]]) -> String {
        let mut tracer = Tracer::new(7, config);
        let protocol = match route {
            RouteKind::Sql => "hrana2",
            RouteKind::Tty => "tty",
            RouteKind::Echo => "-",
        };
        let request = format!(
            "GET /?token=s3cr3t HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
             Authorization: Bearer s3cr3t\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n"
        );
        let mut lines = tracer.bytes(Direction::In, request.as_bytes());
        for bytes in inbound {
            // Byte by byte: the tracer is incremental.
            for b in bytes.iter() {
                lines.extend(tracer.bytes(Direction::In, std::slice::from_ref(b)));
            }
        }
        lines.join("\n")
    }

    #[test]
    fn secrets_never_reach_the_trace() {
        let hello = client_frame(1, br#"{"type":"hello","jwt":"s3cr3t"}"#);
        let out = trace_all(RouteKind::Sql, TraceConfig::default(), &[&hello]);
        assert!(!out.contains("s3cr3t"), "{out}");
        assert!(out.contains("token=<redacted>"), "{out}");
        assert!(out.contains("Authorization: <redacted>"), "{out}");
        assert!(out.contains("Sql message: hello"), "{out}");

        let init = client_frame(2, br#"{"AuthToken":"s3cr3t","columns":80,"rows":24}"#);
        let input = client_frame(2, b"0ls -la s3cr3t\r");
        let out = trace_all(RouteKind::Tty, TraceConfig::default(), &[&init, &input]);
        assert!(!out.contains("s3cr3t"), "{out}");
        assert!(
            out.contains("init (AuthToken <redacted>), 80 columns x 24 rows"),
            "{out}"
        );
        assert!(out.contains("'0' input, 14 bytes"), "{out}");
        let shown = TraceConfig {
            show_input: true,
            ..TraceConfig::default()
        };
        let out = trace_all(RouteKind::Tty, shown, &[&init, &input]);
        assert!(out.contains("|ls -la"), "{out}");
    }

    /// Regression: a client may send its first frames in the same segment as the upgrade
    /// request, so the tracer sees them before the server has chosen the route. The route is
    /// then derived from the request, and the token in those frames is still redacted.
    #[test]
    fn frames_in_the_upgrade_read_are_redacted() {
        let cases: [(&str, &[u8], &str); 2] = [
            (
                "hrana2",
                br#"{"type":"hello","jwt":"s3cr3t"}"#,
                "Sql message: hello",
            ),
            (
                "tty",
                br#"{"AuthToken":"s3cr3t","columns":80,"rows":24}"#,
                "AuthToken <redacted>",
            ),
        ];
        for (protocol, payload, expected) in cases {
            let mut bytes = format!(
                "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Cookie: session=s3cr3t\r\nReferer: http://x/?token=s3cr3t#top\r\n\
                 Sec-WebSocket-Protocol: {protocol}\r\n\r\n"
            )
            .into_bytes();
            bytes.extend(client_frame(if protocol == "tty" { 2 } else { 1 }, payload));
            let mut tracer = Tracer::new(3, TraceConfig::default());
            let out = tracer.bytes(Direction::In, &bytes).join("\n");
            assert!(!out.contains("s3cr3t"), "{out}");
            assert!(out.contains(expected), "{out}");
            assert!(out.contains("Cookie: <redacted>"), "{out}");
            assert!(out.contains("?token=<redacted>#top"), "{out}");
        }
    }

    #[test]
    fn frames_are_annotated_both_ways() {
        let mut tracer = Tracer::new(1, TraceConfig::default());
        tracer.bytes(
            Direction::In,
            b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n",
        );
        tracer.bytes(
            Direction::Out,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
        );
        let lines = tracer.bytes(
            Direction::Out,
            &[
                0x81, 0x05, b'H', b'e', b'l', b'l', b'o', 0x88, 0x02, 0x03, 0xe8,
            ],
        );
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].contains("server -> client Text (1) FIN 5 bytes"),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains("|Hello|"), "{}", lines[0]);
        assert!(
            lines[1].contains("close 1000 (Normal Closure)"),
            "{}",
            lines[1]
        );
    }
}
