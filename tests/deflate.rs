//! permessage-deflate (RFC 7692) against the real server over real sockets: what the 101 says
//! for the offers browsers and others make, compressed echoes checked with an independent
//! inflater (flate2's raw stream), and what hostile compressed data gets.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::*;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

/// Chrome's offer.
const CHROME: &str = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";

fn extensions_answer(head: &str) -> Option<String> {
    head.lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Extensions: "))
        .map(str::to_owned)
}

/// RFC 7692 §7.2.1 with flate2: compress, sync-flush, drop the `00 00 ff ff` tail.
fn compress(compressor: &mut Compress, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    compressor
        .compress_vec(data, &mut out, FlushCompress::Sync)
        .expect("compress");
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

/// RFC 7692 §7.2.2 with flate2: append the tail and inflate.
fn inflate(decompressor: &mut Decompress, payload: &[u8]) -> Vec<u8> {
    let input = [payload, &[0, 0, 0xff, 0xff][..]].concat();
    let mut out = Vec::with_capacity(1 << 20);
    decompressor
        .decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .expect("inflate");
    out
}

/// A compressed client frame: RSV1 set on a masked text or binary frame.
fn compressed_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = client_frame(true, opcode, payload);
    frame[0] |= 0x40;
    frame
}

/// Read one whole frame of the server's: (first byte, payload).
fn read_frame(s: &mut std::net::TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).expect("frame header");
    let len = match head[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).unwrap();
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).unwrap();
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).expect("payload");
    (head[0], payload)
}

#[test]
fn a_browser_offer_is_accepted_and_echoes_come_back_compressed() {
    let server = ServerProcess::start(&["--no-auth"]);
    let (mut s, head) = raw_upgrade(server.addr, "/echo", CHROME);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    // The server's window is 12 bits by default, so it says so (RFC 7692 §7.1.2.1).
    assert_eq!(
        extensions_answer(&head).as_deref(),
        Some("permessage-deflate; server_max_window_bits=12")
    );
    let mut tx = Compress::new(Compression::fast(), false);
    let mut rx = Decompress::new(false);
    // Several messages on one context (context takeover both ways), and one uncompressed: the
    // choice is per message (§6).
    for round in 0..5 {
        let text = format!("round {round}: ").repeat(200);
        s.write_all(&compressed_frame(0x1, &compress(&mut tx, text.as_bytes())))
            .unwrap();
        let (b0, payload) = read_frame(&mut s);
        assert_eq!(b0, 0x80 | 0x40 | 0x1, "FIN, RSV1, text");
        assert!(payload.len() < text.len() / 4);
        assert_eq!(inflate(&mut rx, &payload), text.as_bytes());
    }
    s.write_all(&client_frame(true, 0x2, b"plain")).unwrap();
    let (b0, payload) = read_frame(&mut s);
    assert_eq!(
        (b0, payload.as_slice()),
        (0x82, &b"plain"[..]),
        "too small to compress"
    );
}

#[test]
fn rfc_7692_hello_from_the_rfc_is_read() {
    let server = ServerProcess::start(&["--no-auth"]);
    let (mut s, head) = raw_upgrade(
        server.addr,
        "/echo",
        "Sec-WebSocket-Extensions: permessage-deflate\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    // §7.2.3.1's "Hello", masked as a client sends it; echoed as it is (under the size at
    // which compressing pays), so uncompressed.
    s.write_all(&compressed_frame(
        0x1,
        &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
    ))
    .unwrap();
    let (b0, payload) = read_frame(&mut s);
    assert_eq!((b0, payload.as_slice()), (0x81, &b"Hello"[..]));
}

#[test]
fn offers_the_server_cannot_take_are_declined_and_bad_grammar_is_a_400() {
    let server = ServerProcess::start(&["--no-auth"]);
    for (offer, answer) in [
        // An unknown parameter, a duplicate, a bad value: declined (RFC 7692 §7.1).
        ("permessage-deflate; colour=blue", None),
        (
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            None,
        ),
        ("permessage-deflate; server_max_window_bits=16", None),
        // The first acceptable offer wins; others are skipped.
        (
            "x-webkit-deflate-frame, permessage-deflate; client_max_window_bits=7, permessage-deflate",
            Some("permessage-deflate; server_max_window_bits=12"),
        ),
        // What the client asks for is granted.
        (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8",
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8",
            ),
        ),
    ] {
        let (_, head) = raw_upgrade(
            server.addr,
            "/echo",
            &format!("Sec-WebSocket-Extensions: {offer}\r\n"),
        );
        assert!(head.starts_with("HTTP/1.1 101 "), "{offer}: {head}");
        assert_eq!(extensions_answer(&head).as_deref(), answer, "{offer}");
    }
    // RFC 6455 §9.1's grammar broken: refused with the reason.
    let (mut s, head) = raw_upgrade(
        server.addr,
        "/echo",
        "Sec-WebSocket-Extensions: permessage-deflate; =1\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
    let body = String::from_utf8_lossy(&read_to_end(&mut s)).into_owned();
    assert!(!body.is_empty(), "a 400 says why");
}

#[test]
fn deflate_off_declines_every_offer() {
    let server = ServerProcess::start(&["--no-auth", "--deflate", "off"]);
    let (_, head) = raw_upgrade(server.addr, "/echo", CHROME);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert_eq!(extensions_answer(&head), None);
}

/// A window of 8 bits (which zlib cannot make) works: the echoes inflate through a real
/// 256-byte window.
#[test]
fn an_8_bit_server_window_is_honoured() {
    let server = ServerProcess::start(&["--no-auth"]);
    let (mut s, head) = raw_upgrade(
        server.addr,
        "/echo",
        "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8\r\n",
    );
    assert_eq!(
        extensions_answer(&head).as_deref(),
        Some("permessage-deflate; server_max_window_bits=8")
    );
    let mut rx = Decompress::new_with_window_bits(false, 9);
    let text: String = (0..20_000)
        .map(|i| (b'a' + (i * i % 23) as u8) as char)
        .collect();
    s.write_all(&client_frame(true, 0x1, text.as_bytes()))
        .unwrap();
    let (b0, payload) = read_frame(&mut s);
    assert_eq!(b0 & 0x40, 0x40, "compressed");
    assert_eq!(inflate(&mut rx, &payload), text.as_bytes());
}

/// A zip bomb: 40 KiB on the wire that would inflate to 16 MiB, against a 1 MiB limit, ends
/// in 1009 at once, and the server holds no more than the limit meanwhile.
#[test]
fn a_zip_bomb_is_closed_with_1009_and_costs_the_server_nothing() {
    let server = ServerProcess::start(&["--no-auth", "--max-message-size", "1MiB"]);
    let before = server.rss_kib();
    let (mut s, _) = raw_upgrade(server.addr, "/echo", CHROME);
    let mut tx = Compress::new(Compression::best(), false);
    let bomb = compress(&mut tx, &vec![0u8; 16 << 20]);
    assert!(bomb.len() < 64 << 10, "{}", bomb.len());
    s.write_all(&compressed_frame(0x2, &bomb)).unwrap();
    let (b0, payload) = read_frame(&mut s);
    assert_eq!(b0 & 0x0f, 0x8, "a Close");
    assert_eq!(close_code(&payload), Some(1009));
    let grown = server.rss_kib().saturating_sub(before);
    assert!(grown < 8 << 10, "the server grew by {grown} KiB");
    // Invalid DEFLATE data is invalid payload data: 1007.
    let (mut s, _) = raw_upgrade(server.addr, "/echo", CHROME);
    s.write_all(&compressed_frame(0x2, &[0xff, 0xff, 0xff]))
        .unwrap();
    let (_, payload) = read_frame(&mut s);
    assert_eq!(close_code(&payload), Some(1007));
    // RSV1 on a continuation frame: 1002 (§6.1).
    let (mut s, _) = raw_upgrade(server.addr, "/echo", CHROME);
    let mut second = client_frame(true, 0x0, b"x");
    second[0] |= 0x40;
    s.write_all(&[client_frame(false, 0x1, b"a"), second].concat())
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (_, payload) = read_frame(&mut s);
    assert_eq!(close_code(&payload), Some(1002));
}
