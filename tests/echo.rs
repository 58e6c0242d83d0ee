//! The echo route and the opening handshake, against the real server over real sockets, with
//! tungstenite as the independent client (and raw bytes where a client would not misbehave).

mod common;

use std::io::Write;

use common::*;
use tungstenite::Message;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

#[test]
fn echoes_text_and_binary_of_every_length_form() {
    let server = ServerProcess::start(&["--no-auth"]);
    let mut ws = connect(&server.ws_url("/echo"));
    for len in [0usize, 1, 125, 126, 65535, 65536, 1 << 20] {
        let text: String = (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect();
        ws.send(Message::text(text.clone())).unwrap();
        assert_eq!(ws.read().unwrap(), Message::text(text), "text of {len}");
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 256) as u8).collect();
        ws.send(Message::binary(data.clone())).unwrap();
        assert_eq!(ws.read().unwrap(), Message::binary(data), "binary of {len}");
    }
    ws.close(None).unwrap();
}

#[test]
fn root_path_without_subprotocol_is_echo() {
    let server = ServerProcess::start(&[]);
    let mut ws = connect(&server.ws_url("/"));
    ws.send(Message::text("κόσμε")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("κόσμε"));
}

#[test]
fn many_messages_pipelined_come_back_in_order() {
    let server = ServerProcess::start(&[]);
    let mut ws = connect(&server.ws_url("/echo"));
    for i in 0..2000 {
        ws.write(Message::text(format!("message {i}"))).unwrap();
    }
    ws.flush().unwrap();
    for i in 0..2000 {
        assert_eq!(ws.read().unwrap(), Message::text(format!("message {i}")));
    }
}

#[test]
fn ping_is_answered_with_the_same_payload() {
    let server = ServerProcess::start(&[]);
    let mut ws = connect(&server.ws_url("/echo"));
    ws.send(Message::Ping(b"are you there"[..].into())).unwrap();
    assert_eq!(
        ws.read().unwrap(),
        Message::Pong(b"are you there"[..].into())
    );
}

#[test]
fn close_handshake_echoes_the_code_then_closes_tcp() {
    let server = ServerProcess::start(&[]);
    let (mut s, head) = raw_upgrade(server.addr, "/echo", "");
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    s.write_all(&client_frame(true, 0x8, &[0x0f, 0xa0, b'b', b'y', b'e']))
        .unwrap();
    let frames = server_frames(&read_to_end(&mut s));
    assert_eq!(
        frames,
        vec![(true, 0x8, vec![0x0f, 0xa0])],
        "Close 4000 echoed, then EOF"
    );
}

#[test]
fn tungstenite_sees_a_clean_close() {
    let server = ServerProcess::start(&[]);
    let mut ws = connect(&server.ws_url("/echo"));
    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "done".into(),
    }))
    .unwrap();
    loop {
        match ws.read() {
            Ok(Message::Close(frame)) => {
                assert_eq!(frame.map(|f| f.code), Some(CloseCode::Normal));
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("unclean close: {e}"),
        }
    }
}

#[test]
fn fragmented_message_with_interleaved_ping_is_reassembled() {
    let server = ServerProcess::start(&[]);
    let (mut s, _) = raw_upgrade(server.addr, "/echo", "");
    let mut bytes = client_frame(false, 0x1, b"frag");
    bytes.extend(client_frame(true, 0x9, b"ping!"));
    bytes.extend(client_frame(false, 0x0, b"men"));
    bytes.extend(client_frame(true, 0x0, b"ted"));
    bytes.extend(client_frame(true, 0x8, &[0x03, 0xe8]));
    s.write_all(&bytes).unwrap();
    let frames = server_frames(&read_to_end(&mut s));
    assert_eq!(
        frames,
        vec![
            (true, 0xA, b"ping!".to_vec()),
            (true, 0x1, b"fragmented".to_vec()),
            (true, 0x8, vec![0x03, 0xe8]),
        ]
    );
}

#[test]
fn frames_sent_with_the_request_are_not_lost() {
    let server = ServerProcess::start(&[]);
    let mut s = raw(server.addr);
    let mut bytes = upgrade_request("/echo", "").into_bytes();
    bytes.extend(client_frame(true, 0x2, &[1, 2, 3]));
    bytes.extend(client_frame(true, 0x8, &[]));
    s.write_all(&bytes).unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101 "));
    let frames = server_frames(&read_to_end(&mut s));
    assert_eq!(
        frames,
        vec![(true, 0x2, vec![1, 2, 3]), (true, 0x8, vec![])]
    );
}

/// Send `frames` after a good handshake; return the close code the server answered with.
fn close_code_for(server: &ServerProcess, frames: &[u8]) -> Option<u16> {
    let (mut s, _) = raw_upgrade(server.addr, "/echo", "");
    s.write_all(frames).unwrap();
    let frames = server_frames(&read_to_end(&mut s));
    let (_, opcode, payload) = frames.last().expect("a close frame");
    assert_eq!(*opcode, 0x8);
    close_code(payload)
}

#[test]
fn protocol_violations_close_with_their_codes() {
    let server = ServerProcess::start(&["--max-message-size", "1KiB"]);
    // Unmasked client frame: 1002.
    assert_eq!(
        close_code_for(&server, &[0x81, 0x02, b'h', b'i']),
        Some(1002)
    );
    // RSV1 without an extension: 1002.
    let mut rsv = client_frame(true, 0x1, b"x");
    rsv[0] |= 0x40;
    assert_eq!(close_code_for(&server, &rsv), Some(1002));
    // Invalid UTF-8 in text: 1007.
    assert_eq!(
        close_code_for(&server, &client_frame(true, 0x1, b"\xc0\xaf")),
        Some(1007)
    );
    // Over the message limit: 1009, decided from the header.
    let mut huge = vec![0x82, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0];
    huge.extend_from_slice(&[1, 2, 3, 4]);
    assert_eq!(close_code_for(&server, &huge), Some(1009));
    // A 2^63 length: 1002 (most significant bit set), nothing allocated.
    let mut msb = vec![0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0];
    msb.extend_from_slice(&[1, 2, 3, 4]);
    assert_eq!(close_code_for(&server, &msb), Some(1002));
    // The server still serves others.
    let mut ws = connect(&server.ws_url("/echo"));
    ws.send(Message::text("still here")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("still here"));
}

fn response_to(server: &ServerProcess, request: &str) -> String {
    let mut s = raw(server.addr);
    s.write_all(request.as_bytes()).unwrap();
    String::from_utf8_lossy(&read_to_end(&mut s)).into_owned()
}

#[test]
fn bad_requests_get_http_errors() {
    let server = ServerProcess::start(&[]);
    let good = upgrade_request("/echo", "");
    let cases = [
        (
            good.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
            "400 Bad Request",
        ),
        (
            good.replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
            "426 Upgrade Required",
        ),
        (good.replace("/echo", "/nowhere"), "404 Not Found"),
        (good.replace("GET", "POST"), "405 Method Not Allowed"),
        (
            good.replace("Host: 127.0.0.1", "Host: evil.example"),
            "403 Forbidden",
        ),
        (
            good.replace(
                "Sec-WebSocket-Version",
                "Origin: http://evil.example\r\nSec-WebSocket-Version",
            ),
            "403 Forbidden",
        ),
        (
            good.replace(
                "Upgrade: websocket\r\n",
                "Upgrade: websocket\r\nSec-WebSocket-Protocol: tty\r\n",
            )
            .replace("/echo", "/sql"),
            "400 Bad Request",
        ),
        (
            format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(5000)),
            "414 URI Too Long",
        ),
        (
            format!("GET / HTTP/1.1\r\n{}\r\n", "X-Filler: 1\r\n".repeat(100)),
            "431 Request Header Fields Too Large",
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nX-Big: ".to_string() + &"b".repeat(20_000) + "\r\n\r\n",
            "431 Request Header Fields Too Large",
        ),
        ("HELLO\r\n\r\n".to_string(), "400 Bad Request"),
    ];
    for (request, status) in cases {
        let response = response_to(&server, &request);
        assert!(
            response.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "expected {status}, got {:?}",
            response.lines().next()
        );
        if status.starts_with("426") {
            assert!(response.contains("\r\nSec-WebSocket-Version: 13\r\n"));
        }
    }
}

#[test]
fn same_origin_browser_requests_are_accepted() {
    let server = ServerProcess::start(&[]);
    let origin = format!("Origin: http://{}\r\n", server.addr);
    let mut s = raw(server.addr);
    let request = upgrade_request("/echo", &origin)
        .replace("Host: 127.0.0.1", &format!("Host: {}", server.addr));
    s.write_all(request.as_bytes()).unwrap();
    assert!(read_head(&mut s).starts_with("HTTP/1.1 101 "));
}

#[test]
fn plain_get_serves_the_page_with_security_headers() {
    let server = ServerProcess::start(&[]);
    let response = response_to(&server, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.contains("\r\nReferrer-Policy: no-referrer\r\n"));
    assert!(response.contains("\r\nContent-Security-Policy: frame-ancestors 'none'\r\n"));
    assert!(response.contains("<html"));
}
