//! `--trace` with each route's decoder: what the tracer shows of real route traffic, and that
//! secrets never reach it.

use super::{RouteKind, trace_decoder_for};
use crate::dissect::encode::{FrameSpec, encode_frame};
use crate::dissect::trace::{Direction, TraceConfig, Tracer};

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
    let mut tracer = Tracer::new(7, config, trace_decoder_for);
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
        let mut tracer = Tracer::new(3, TraceConfig::default(), trace_decoder_for);
        let out = tracer.bytes(Direction::In, &bytes).join("\n");
        assert!(!out.contains("s3cr3t"), "{out}");
        assert!(out.contains(expected), "{out}");
        assert!(out.contains("Cookie: <redacted>"), "{out}");
        assert!(out.contains("?token=<redacted>#top"), "{out}");
    }
}

#[test]
fn frames_are_annotated_both_ways() {
    let mut tracer = Tracer::new(1, TraceConfig::default(), trace_decoder_for);
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
