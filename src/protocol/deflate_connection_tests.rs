//! permessage-deflate inside the connection (RFC 7692 §6, §7.2): the RFC's own example frames
//! through a receiving connection, RSV1 where it may not be, bombs and bad data, and two peers
//! compressing to each other.

use super::connection_tests::{Owned, feed};
use super::deflate::{CodecConfig, DeflateParams};
use super::*;

const DEFAULT_PARAMS: DeflateParams = DeflateParams {
    server_no_context_takeover: false,
    client_no_context_takeover: false,
    server_max_window_bits: 15,
    client_max_window_bits: 15,
};

/// A client that negotiated permessage-deflate, reading the server's unmasked frames.
fn deflate_client(limits: Limits) -> Connection {
    let mut conn = Connection::client(limits, [3; 32]);
    conn.enable_deflate(&CodecConfig::new(&DEFAULT_PARAMS, Role::Client));
    conn
}

fn deflate_server(params: &DeflateParams) -> Connection {
    let mut conn = Connection::server(Limits::default());
    conn.enable_deflate(&CodecConfig::new(params, Role::Server));
    conn
}

/// The code of the Close a connection sent (masked or not), decoded from its output.
fn close_code_sent(out: &[u8]) -> Option<u16> {
    let (header, n) = FrameHeader::decode(out).ok()??;
    let mut body = out.get(n..n + 2)?.to_vec();
    if let Some(key) = header.mask {
        mask::apply_mask(&mut body, key, 0);
    }
    (header.opcode == 0x8).then(|| u16::from_be_bytes([body[0], body[1]]))
}

fn hello() -> Vec<Owned> {
    vec![Owned::Text("Hello".into())]
}

/// RFC 7692 §7.2.3.1: "Hello" compressed, in one frame.
const RFC_HELLO: &[u8] = &[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

#[test]
fn rfc_7692_7_2_3_1_a_message_compressed_in_one_frame() {
    let (events, _, error) = feed(&mut deflate_client(Limits::default()), &[RFC_HELLO]);
    assert_eq!((events, error), (hello(), None));
}

#[test]
fn rfc_7692_7_2_3_1_the_same_message_fragmented() {
    let first: &[u8] = &[0x41, 0x03, 0xf2, 0x48, 0xcd];
    let last: &[u8] = &[0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00];
    let (events, _, error) = feed(&mut deflate_client(Limits::default()), &[first, last]);
    assert_eq!((events, error), (hello(), None));
}

#[test]
fn rfc_7692_7_2_3_2_the_second_message_refers_to_the_first() {
    let second: &[u8] = &[0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00];
    let (events, _, error) = feed(&mut deflate_client(Limits::default()), &[RFC_HELLO, second]);
    assert_eq!((events, error), ([hello(), hello()].concat(), None));
}

#[test]
fn rfc_7692_7_2_3_3_a_stored_block() {
    let stored: &[u8] = &[
        0xc1, 0x0b, 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
    ];
    let (events, _, error) = feed(&mut deflate_client(Limits::default()), &[stored]);
    assert_eq!((events, error), (hello(), None));
}

#[test]
fn rfc_7692_7_2_3_4_a_block_with_bfinal_set() {
    let bfinal: &[u8] = &[0xc1, 0x08, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
    let mut client = deflate_client(Limits::default());
    let (events, _, error) = feed(&mut client, &[bfinal, RFC_HELLO]);
    assert_eq!((events, error), ([hello(), hello()].concat(), None));
}

#[test]
fn rfc_7692_7_2_3_5_two_deflate_blocks_in_one_message() {
    let two: &[u8] = &[
        0xc1, 0x0d, 0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
    ];
    let (events, _, error) = feed(&mut deflate_client(Limits::default()), &[two]);
    assert_eq!((events, error), (hello(), None));
}

#[test]
fn every_split_of_the_rfc_examples_gives_the_same_messages() {
    let stream: Vec<u8> = [
        RFC_HELLO,
        &[0x41, 0x03, 0xf2, 0x00, 0x11][..],
        &[0x89, 0x00][..],
        &[0x80, 0x02, 0x00, 0x00][..],
    ]
    .concat();
    for cut in 0..=stream.len() {
        let (events, _, error) = feed(
            &mut deflate_client(Limits::default()),
            &[&stream[..cut], &stream[cut..]],
        );
        assert_eq!(error, None, "cut at {cut}");
        assert_eq!(
            events,
            [hello(), vec![Owned::Ping(vec![])], hello()].concat(),
            "cut at {cut}"
        );
    }
}

/// RFC 7692 §6.1: RSV1 on a continuation or a control frame fails the connection (1002);
/// without the extension, RSV1 anywhere does (RFC 6455 §5.2).
#[test]
fn rsv1_where_it_may_not_be_fails_with_1002() {
    let continuation: &[u8] = &[
        0x41, 0x03, 0xf2, 0x48, 0xcd, 0xc0, 0x04, 0xc9, 0xc9, 0x07, 0x00,
    ];
    let ping: &[u8] = &[0xc9, 0x00];
    for (stream, expected) in [
        (continuation, ProtocolError::CompressedBitMisplaced),
        (ping, ProtocolError::CompressedBitMisplaced),
    ] {
        let (_, out, error) = feed(&mut deflate_client(Limits::default()), &[stream]);
        assert_eq!(error, Some(expected));
        assert_eq!(close_code_sent(&out), Some(1002));
    }
    let mut plain = Connection::client(Limits::default(), [3; 32]);
    let (_, out, error) = feed(&mut plain, &[RFC_HELLO]);
    assert_eq!(error, Some(ProtocolError::ReservedBitsSet(0b100)));
    assert_eq!(close_code_sent(&out), Some(1002));
}

#[test]
fn data_that_does_not_inflate_fails_with_1007() {
    // Block type 3 is reserved (RFC 1951 §3.2.3).
    let invalid: &[u8] = &[0xc2, 0x02, 0xff, 0xff];
    let (_, out, error) = feed(&mut deflate_client(Limits::default()), &[invalid]);
    assert!(
        matches!(error, Some(ProtocolError::Deflate(_))),
        "{error:?}"
    );
    assert_eq!(close_code_sent(&out), Some(1007));
}

#[test]
fn compressed_text_that_is_not_utf8_fails_with_1007() {
    let mut server = Connection::server(Limits::default());
    server.enable_deflate(&CodecConfig::new(&DEFAULT_PARAMS, Role::Server));
    let mut wire = Vec::new();
    // Compress invalid UTF-8 and send it as a text message, the way a broken peer would.
    let bytes = vec![0xff_u8; 200];
    assert!(server.sender().send_binary(&bytes, &mut wire));
    wire[0] = (wire[0] & 0xf0) | 0x1;
    let (_, out, error) = feed(&mut deflate_client(Limits::default()), &[&wire]);
    assert_eq!(error, Some(ProtocolError::InvalidUtf8));
    assert_eq!(close_code_sent(&out), Some(1007));
}

/// A zip bomb: a few KiB that inflate to far past the limit fail with 1009 while inflating,
/// and the buffer never holds much more than the limit.
#[test]
fn a_bomb_fails_with_1009_within_the_limit() {
    let limit = 64 << 10;
    let mut sender = deflate_server(&DEFAULT_PARAMS);
    let mut wire = Vec::new();
    assert!(sender.sender().send_binary(&vec![0u8; 4 << 20], &mut wire));
    assert!(
        wire.len() < 48 << 10,
        "the bomb is small: {} bytes",
        wire.len()
    );
    let mut client = deflate_client(Limits {
        max_frame_size: 1 << 20,
        max_message_size: limit,
    });
    let (events, out, error) = feed(&mut client, &[&wire]);
    assert!(events.is_empty());
    assert_eq!(
        error,
        Some(ProtocolError::Deflate(deflate::DeflateError::TooBig))
    );
    assert_eq!(close_code_sent(&out), Some(1009));
    assert!(client.buffered_capacity() <= limit as usize + (64 << 10));
}

/// The memory headroom a server passes in bounds inflation like the message limit does.
#[test]
fn inflation_stops_at_the_headroom() {
    let mut sender = deflate_server(&DEFAULT_PARAMS);
    let mut wire = Vec::new();
    assert!(sender.sender().send_binary(&vec![b'a'; 1 << 20], &mut wire));
    let mut client = deflate_client(Limits::default());
    client.set_inflate_headroom(100 << 10);
    let (_, out, error) = feed(&mut client, &[&wire]);
    assert_eq!(
        error,
        Some(ProtocolError::Deflate(deflate::DeflateError::TooBig))
    );
    assert_eq!(close_code_sent(&out), Some(1009));
}

/// Two peers, each compressing to the other with every combination of context takeover:
/// messages of many sizes arrive intact; compressible ones go with RSV1, tiny ones without.
#[test]
fn two_peers_compress_to_each_other() {
    for (server_nct, client_nct) in [(false, false), (true, false), (false, true), (true, true)] {
        let params = DeflateParams {
            server_no_context_takeover: server_nct,
            client_no_context_takeover: client_nct,
            server_max_window_bits: 10,
            client_max_window_bits: 15,
        };
        let mut server = deflate_server(&params);
        let mut client = Connection::client(Limits::default(), [9; 32]);
        client.enable_deflate(&CodecConfig::new(&params, Role::Client));
        for size in [0, 1, 5, 100, 1000, 5000, 70_000, 300_000] {
            let text: String = (0..size).map(|i| (b'a' + (i % 7) as u8) as char).collect();
            let mut wire = Vec::new();
            assert!(client.sender().send_text(&text, &mut wire));
            let compressed = wire[0] & 0x40 != 0;
            if size < 16 {
                assert!(!compressed, "size {size} is not worth compressing");
            }
            if size >= 1000 {
                assert!(compressed, "size {size}");
                assert!(wire.len() < size / 4, "size {size} sent as {}", wire.len());
            }
            let (events, _, error) = feed(&mut server, &[&wire]);
            assert_eq!((events, error), (vec![Owned::Text(text.clone())], None));
            let mut back = Vec::new();
            assert!(server.sender().send_text(&text, &mut back));
            let (events, _, error) = feed(&mut client, &[&back]);
            assert_eq!((events, error), (vec![Owned::Text(text)], None));
        }
    }
}

#[test]
fn engines_are_allocated_on_first_use_and_can_be_released() {
    let params = DeflateParams {
        client_no_context_takeover: true,
        ..DEFAULT_PARAMS
    };
    let mut server = deflate_server(&params);
    assert_eq!(
        server.buffered_capacity(),
        0,
        "nothing before the first message"
    );
    let mut client = Connection::client(Limits::default(), [9; 32]);
    client.enable_deflate(&CodecConfig::new(&params, Role::Client));
    let mut wire = Vec::new();
    assert!(
        client
            .sender()
            .send_text(&"compress me ".repeat(100), &mut wire)
    );
    let (events, _, _) = feed(&mut server, &[&wire]);
    assert_eq!(events.len(), 1);
    let mut back = Vec::new();
    assert!(
        server
            .sender()
            .send_text(&"and me too ".repeat(100), &mut back)
    );
    let held = server.buffered_capacity();
    assert!(held > 100_000, "both engines allocated: {held}");
    let freed = server.release_compression();
    assert!(
        held - freed <= 4096,
        "only the message buffer is left: {held} - {freed}"
    );
    // Still works afterwards: the client's next message starts from an empty window on both
    // sides (client_no_context_takeover), the server's from a fresh compressor.
    let mut wire = Vec::new();
    assert!(client.sender().send_text(&"again ".repeat(100), &mut wire));
    let (events, _, error) = feed(&mut server, &[&wire]);
    assert_eq!(
        (events, error),
        (vec![Owned::Text("again ".repeat(100))], None)
    );
    assert!(
        server
            .sender()
            .send_text(&"and me too ".repeat(100), &mut back)
    );
    let (events, _, error) = feed(&mut client, &[&back]);
    assert_eq!(error, None);
    assert_eq!(events.len(), 2);
}
