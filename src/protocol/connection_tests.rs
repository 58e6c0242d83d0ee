//! The connection state machine, driven in memory: the RFC's own example frames, every input
//! split at every byte, two peers talking to each other, and each failure's close code.

use super::*;
use crate::protocol::frame::write_frame;

/// An event with its borrowed data copied out, so a test can collect and compare them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Owned {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
}

pub(super) fn own(event: &Event<'_>) -> Owned {
    match *event {
        Event::Message(Message::Text(t)) => Owned::Text(t.to_owned()),
        Event::Message(Message::Binary(b)) => Owned::Binary(b.to_vec()),
        Event::Ping(p) => Owned::Ping(p.to_vec()),
        Event::Pong(p) => Owned::Pong(p.to_vec()),
        Event::Close(c) => Owned::Close(c.code.map(|c| c.0), c.reason.to_owned()),
    }
}

/// Feed `pieces` one after the other, collecting events, the bytes written back, and the error.
pub(super) fn feed(
    conn: &mut Connection,
    pieces: &[&[u8]],
) -> (Vec<Owned>, Vec<u8>, Option<ProtocolError>) {
    let mut events = Vec::new();
    let mut out = Vec::new();
    for piece in pieces {
        let mut buf = piece.to_vec();
        let mut pos = 0;
        while pos < buf.len() {
            match conn.handle_bytes(&mut buf[pos..], &mut out) {
                Ok(received) => {
                    assert!(received.consumed > 0, "no progress");
                    assert!(
                        pos + received.consumed <= piece.len(),
                        "consumed more than given"
                    );
                    if let Some(event) = &received.event {
                        events.push(own(event));
                    }
                    pos += received.consumed;
                }
                Err(error) => return (events, out, Some(error)),
            }
        }
    }
    (events, out, None)
}

fn server() -> Connection {
    Connection::server(Limits::default())
}

fn client() -> Connection {
    Connection::client(Limits::default(), [7; 32])
}

// RFC 6455 §5.7, the examples one by one.

#[test]
fn rfc_5_7_single_frame_unmasked_text() {
    let frame = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    let (events, _, err) = feed(&mut client(), &[&frame]);
    assert_eq!((events, err), (vec![Owned::Text("Hello".into())], None));
    // And the server writes exactly these bytes for "Hello".
    let mut out = Vec::new();
    server().sender().send_text("Hello", &mut out);
    assert_eq!(out, frame);
}

#[test]
fn rfc_5_7_single_frame_masked_text() {
    let frame = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let (events, _, err) = feed(&mut server(), &[&frame]);
    assert_eq!((events, err), (vec![Owned::Text("Hello".into())], None));
    let mut out = Vec::new();
    write_frame(
        &mut out,
        true,
        OpCode::Text,
        Some([0x37, 0xfa, 0x21, 0x3d]),
        b"Hello",
    );
    assert_eq!(out, frame);
}

#[test]
fn rfc_5_7_fragmented_unmasked_text() {
    let first = [0x01, 0x03, 0x48, 0x65, 0x6c];
    let second = [0x80, 0x02, 0x6c, 0x6f];
    let (events, _, err) = feed(&mut client(), &[&first, &second]);
    assert_eq!((events, err), (vec![Owned::Text("Hello".into())], None));
}

#[test]
fn rfc_5_7_unmasked_ping_and_masked_pong() {
    let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    let (events, out, err) = feed(&mut client(), &[&ping]);
    assert_eq!((events, err), (vec![Owned::Ping(b"Hello".to_vec())], None));
    // The client's automatic Pong carries the same data, masked with a fresh key.
    let (header, n) = FrameHeader::decode(&out).unwrap().unwrap();
    assert_eq!(
        (header.opcode, header.payload_len, header.mask.is_some()),
        (0xA, 5, true)
    );
    let mut payload = out[n..].to_vec();
    crate::protocol::mask::apply_mask(&mut payload, header.mask.unwrap(), 0);
    assert_eq!(payload, b"Hello");
    // §5.7's masked Pong, received by a server.
    let pong = [
        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let (events, out, err) = feed(&mut server(), &[&pong]);
    assert_eq!((events, err), (vec![Owned::Pong(b"Hello".to_vec())], None));
    assert!(out.is_empty(), "a Pong is not answered");
}

#[test]
fn rfc_5_7_256_bytes_binary_in_one_unmasked_frame() {
    let mut frame = vec![0x82, 0x7E, 0x01, 0x00];
    frame.extend((0..256).map(|i| i as u8));
    let (events, _, err) = feed(&mut client(), &[&frame]);
    assert_eq!(err, None);
    assert_eq!(events, vec![Owned::Binary(frame[4..].to_vec())]);
    let mut out = Vec::new();
    server().sender().send_binary(&frame[4..], &mut out);
    assert_eq!(out, frame);
}

#[test]
fn rfc_5_7_64_kib_binary_in_one_unmasked_frame() {
    let mut frame = vec![0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0];
    frame.extend((0..65536u32).map(|i| (i % 251) as u8));
    let (events, _, err) = feed(&mut client(), &[&frame]);
    assert_eq!(err, None);
    assert_eq!(events, vec![Owned::Binary(frame[10..].to_vec())]);
    let mut out = Vec::new();
    server().sender().send_binary(&frame[10..], &mut out);
    assert_eq!(out, frame);
}

/// A conversation in client frames: fragmented text with a Ping in the middle, a binary
/// message, an empty text message, a Close.
fn client_stream() -> Vec<u8> {
    let key = Some([0xa1, 0xb2, 0xc3, 0xd4]);
    let mut s = Vec::new();
    write_frame(&mut s, false, OpCode::Text, key, "κό".as_bytes());
    write_frame(&mut s, true, OpCode::Ping, key, b"are you there");
    write_frame(
        &mut s,
        false,
        OpCode::Continuation,
        key,
        &"σμε".as_bytes()[..3],
    );
    write_frame(
        &mut s,
        true,
        OpCode::Continuation,
        key,
        &"σμε".as_bytes()[3..],
    );
    write_frame(&mut s, true, OpCode::Binary, key, &[0, 1, 2, 3, 254, 255]);
    write_frame(&mut s, true, OpCode::Text, key, b"");
    write_frame(&mut s, true, OpCode::Binary, key, &[9u8; 300]);
    write_frame(
        &mut s,
        true,
        OpCode::Close,
        key,
        &[0x03, 0xe8, b'b', b'y', b'e'],
    );
    s
}

fn expected_client_events() -> Vec<Owned> {
    vec![
        Owned::Ping(b"are you there".to_vec()),
        Owned::Text("κόσμε".into()),
        Owned::Binary(vec![0, 1, 2, 3, 254, 255]),
        Owned::Text(String::new()),
        Owned::Binary(vec![9; 300]),
        Owned::Close(Some(1000), "bye".into()),
    ]
}

#[test]
fn whole_stream_at_once() {
    let stream = client_stream();
    let mut conn = server();
    let (events, out, err) = feed(&mut conn, &[&stream]);
    assert_eq!((events, err), (expected_client_events(), None));
    assert_eq!(conn.state(), State::Closed);
    // Replies: the Pong, then the echoed Close code.
    let mut expected = Vec::new();
    write_frame(&mut expected, true, OpCode::Pong, None, b"are you there");
    write_frame(&mut expected, true, OpCode::Close, None, &[0x03, 0xe8]);
    assert_eq!(out, expected);
}

#[test]
fn stream_split_at_every_byte_boundary() {
    let stream = client_stream();
    for cut in 0..=stream.len() {
        let (a, b) = stream.split_at(cut);
        let (events, _, err) = feed(&mut server(), &[a, b]);
        assert_eq!(
            (events, err),
            (expected_client_events(), None),
            "cut at {cut}"
        );
    }
}

#[test]
fn stream_split_at_every_pair_of_boundaries() {
    let stream = client_stream();
    for i in 0..=stream.len() {
        for j in i..=stream.len() {
            let (events, _, err) =
                feed(&mut server(), &[&stream[..i], &stream[i..j], &stream[j..]]);
            assert_eq!(
                (events, err),
                (expected_client_events(), None),
                "cuts {i} {j}"
            );
        }
    }
}

#[test]
fn stream_one_byte_at_a_time() {
    let stream = client_stream();
    let pieces: Vec<&[u8]> = stream.chunks(1).collect();
    let (events, _, err) = feed(&mut server(), &pieces);
    assert_eq!((events, err), (expected_client_events(), None));
}

#[test]
fn two_peers_talk_and_close_cleanly() {
    let mut client = client();
    let mut server = server();
    let mut to_server = Vec::new();
    let tx = client.sender();
    tx.send_text("hello server", &mut to_server);
    tx.send_binary(&[1, 2, 3], &mut to_server);
    tx.send_ping(b"p", &mut to_server);
    // The server echoes every message back.
    let mut to_client = Vec::new();
    let mut pos = 0;
    let mut seen = Vec::new();
    while pos < to_server.len() {
        let received = server
            .handle_bytes(&mut to_server[pos..], &mut to_client)
            .unwrap();
        pos += received.consumed;
        if let Some(event) = received.event {
            seen.push(own(&event));
            if let Event::Message(message) = event {
                received.tx.send_message(message, &mut to_client);
            }
        }
    }
    assert_eq!(
        seen,
        [
            Owned::Text("hello server".into()),
            Owned::Binary(vec![1, 2, 3]),
            Owned::Ping(b"p".to_vec())
        ]
    );
    let (events, _, err) = feed(&mut client, &[&to_client]);
    assert_eq!(err, None);
    assert_eq!(
        events,
        [
            Owned::Text("hello server".into()),
            Owned::Binary(vec![1, 2, 3]),
            Owned::Pong(b"p".to_vec())
        ]
    );
    // The server starts the closing handshake; the client echoes; both end Closed.
    let mut close = Vec::new();
    server.close(CloseCode::GOING_AWAY, "shutting down", &mut close);
    assert_eq!(server.state(), State::CloseSent);
    assert!(
        !server.sender().send_text("late", &mut close),
        "no data after Close"
    );
    let (events, reply, _) = feed(&mut client, &[&close]);
    assert_eq!(events, [Owned::Close(Some(1001), "shutting down".into())]);
    assert_eq!(client.state(), State::Closed);
    let (events, nothing, _) = feed(&mut server, &[&reply]);
    assert_eq!(events, [Owned::Close(Some(1001), String::new())]);
    assert!(nothing.is_empty(), "the initiator does not answer the echo");
    assert_eq!(server.state(), State::Closed);
}

/// The Close a failed connection sent, decoded from `out`.
pub(super) fn close_code_sent(out: &[u8]) -> Option<u16> {
    let (header, n) = FrameHeader::decode(out).ok()??;
    (header.opcode == 0x8 && out.len() >= n + 2).then(|| u16::from_be_bytes([out[n], out[n + 1]]))
}

fn failure(frames: &[u8]) -> (ProtocolError, Option<u16>) {
    let mut conn = server();
    let (_, out, err) = feed(&mut conn, &[frames]);
    assert_eq!(conn.state(), State::Closed);
    (err.expect("the stream must fail"), close_code_sent(&out))
}

fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let op = OpCode::from_u8(opcode).unwrap_or(OpCode::Binary);
    write_frame(&mut out, fin, op, Some([1, 2, 3, 4]), payload);
    out[0] = (out[0] & 0xf0) | opcode;
    out
}

#[test]
fn each_violation_fails_with_its_close_code() {
    let mut rsv = frame(true, 1, b"x");
    rsv[0] |= 0x40;
    assert_eq!(
        failure(&rsv),
        (ProtocolError::ReservedBitsSet(0b100), Some(1002))
    );
    assert_eq!(
        failure(&frame(true, 3, b"")),
        (ProtocolError::ReservedOpcode(3), Some(1002))
    );
    assert_eq!(
        failure(&frame(true, 0xB, b"")),
        (ProtocolError::ReservedOpcode(0xB), Some(1002))
    );
    assert_eq!(
        failure(&[0x81, 0x01, b'x']),
        (ProtocolError::UnmaskedClientFrame, Some(1002))
    );
    assert_eq!(
        failure(&frame(true, 0, b"x")),
        (ProtocolError::UnexpectedContinuation, Some(1002))
    );
    let mut two_starts = frame(false, 1, b"a");
    two_starts.extend(frame(true, 1, b"b"));
    assert_eq!(
        failure(&two_starts),
        (ProtocolError::ExpectedContinuation, Some(1002))
    );
    assert_eq!(
        failure(&frame(false, 9, b"")),
        (ProtocolError::FragmentedControlFrame, Some(1002))
    );
    assert_eq!(
        failure(&frame(true, 9, &[0; 126])),
        (ProtocolError::ControlFrameTooLong, Some(1002))
    );
    assert_eq!(
        failure(&frame(true, 1, b"\xff")),
        (ProtocolError::InvalidUtf8, Some(1007))
    );
    assert_eq!(
        failure(&frame(true, 8, &[3])),
        (ProtocolError::CloseFrameTooShort, Some(1002))
    );
    assert_eq!(
        failure(&frame(true, 8, &[0x03, 0xed])),
        (ProtocolError::InvalidCloseCode(1005), Some(1002))
    );
    assert_eq!(
        failure(&frame(true, 8, &[0x03, 0xe8, 0xff])),
        (ProtocolError::InvalidUtf8, Some(1007))
    );
}

#[test]
fn invalid_utf8_fails_before_the_frame_ends() {
    // Autobahn 6.4.x: the frame's first part already holds an impossible sequence; the Close must
    // go out before the rest of the frame arrives.
    let whole = frame(
        true,
        1,
        b"\xce\xba\xe1\xbd\xb9\xf4\x90\x80\x80-and-more-text",
    );
    let mut conn = server();
    let (_, out, err) = feed(&mut conn, &[&whole[..6 + 8]]);
    assert_eq!(err, Some(ProtocolError::InvalidUtf8));
    assert_eq!(close_code_sent(&out), Some(1007));
}

#[test]
fn oversized_frames_and_messages_are_refused_from_the_header() {
    let limits = Limits {
        max_frame_size: 1000,
        max_message_size: 2000,
    };
    // A header announcing 2^62 bytes: refused at once, nothing allocated for it.
    let mut conn = Connection::server(limits);
    let huge = [0x82, 0xFF, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
    let (_, out, err) = feed(&mut conn, &[&huge]);
    assert_eq!(
        (err, close_code_sent(&out)),
        (Some(ProtocolError::FrameTooLarge), Some(1009))
    );
    assert_eq!(conn.buffered_capacity(), 0);
    // Three fragments of 900 bytes: each frame is fine, the message is not.
    let mut stream = frame(false, 2, &[0; 900]);
    stream.extend(frame(false, 0, &[0; 900]));
    stream.extend(frame(false, 0, &[0; 900]));
    let mut conn = Connection::server(limits);
    let (_, out, err) = feed(&mut conn, &[&stream]);
    assert_eq!(
        (err, close_code_sent(&out)),
        (Some(ProtocolError::MessageTooLarge), Some(1009))
    );
}

#[test]
fn endless_empty_continuations_reach_the_byte_limit() {
    let limits = Limits {
        max_frame_size: 1 << 20,
        max_message_size: 600,
    };
    let mut stream = frame(false, 1, b"");
    for _ in 0..200 {
        stream.extend(frame(false, 0, b""));
    }
    let mut conn = Connection::server(limits);
    let (_, _, err) = feed(&mut conn, &[&stream]);
    // Each empty masked frame costs 6 header bytes: the 100th crosses 600.
    assert_eq!(err, Some(ProtocolError::MessageTooLarge));
}

#[test]
fn a_message_of_many_fragments_is_fine_under_the_byte_limit() {
    // Autobahn 9.4.x style: no cap on the number of fragments.
    let mut stream = frame(false, 2, &[1]);
    for _ in 0..10_000 {
        stream.extend(frame(false, 0, &[1]));
    }
    stream.extend(frame(true, 0, &[1]));
    let (events, _, err) = feed(&mut server(), &[&stream]);
    assert_eq!((events, err), (vec![Owned::Binary(vec![1; 10_002])], None));
}

#[test]
fn nothing_is_read_after_the_close() {
    let mut stream = frame(true, 8, &[0x03, 0xe8]);
    stream.extend(frame(true, 1, b"ignored"));
    let (events, _, err) = feed(&mut server(), &[&stream]);
    assert_eq!(
        (events, err),
        (vec![Owned::Close(Some(1000), String::new())], None)
    );
}

#[test]
fn empty_close_is_answered_with_an_empty_close() {
    let mut conn = server();
    let (events, out, _) = feed(&mut conn, &[&frame(true, 8, b"")]);
    assert_eq!(events, vec![Owned::Close(None, String::new())]);
    assert_eq!(out, [0x88, 0x00]);
}

#[test]
fn codes_never_sent_on_the_wire_are_dropped() {
    // §7.4.1: 1005, 1006 and 1015 "MUST NOT be set as a status code in a Close control frame".
    for code in [1005u16, 1006, 1015] {
        let mut out = Vec::new();
        server().close(CloseCode(code), "reason", &mut out);
        assert_eq!(out, [0x88, 0x00], "code {code}");
    }
}

#[test]
fn client_frames_get_a_fresh_mask_each() {
    // §5.3: "the masking key MUST be derived from a strong source of entropy, and the masking
    // key for a given frame MUST NOT make it simple for a server or proxy to predict the masking
    // key for a subsequent frame."
    let mut conn = client();
    let mut keys = std::collections::HashSet::new();
    for _ in 0..1000 {
        let mut out = Vec::new();
        conn.sender().send_binary(b"x", &mut out);
        let (header, _) = FrameHeader::decode(&out).unwrap().unwrap();
        keys.insert(header.mask.expect("client frames are masked"));
    }
    assert!(
        keys.len() > 990,
        "only {} distinct keys in 1000 frames",
        keys.len()
    );
}

#[test]
fn ping_after_our_own_close_is_still_answered() {
    // §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in response,
    // unless it already received a Close frame." Having *sent* one does not excuse it.
    let mut conn = server();
    let mut out = Vec::new();
    conn.close(CloseCode::GOING_AWAY, "", &mut out);
    let (events, reply, _) = feed(&mut conn, &[&frame(true, 9, b"hi")]);
    assert_eq!(events, [Owned::Ping(b"hi".to_vec())]);
    assert_eq!(reply, [0x8a, 0x02, b'h', b'i']);
}

#[test]
fn no_data_frame_after_close_but_close_is_still_answered() {
    // §5.5.1: after sending a Close, "the endpoint MUST NOT send any more data frames"; and an
    // endpoint that receives a Close without having sent one "MUST send a Close frame in
    // response".
    let mut conn = server();
    let mut out = Vec::new();
    conn.close(CloseCode::NORMAL, "", &mut out);
    out.clear();
    assert!(!conn.sender().send_text("late", &mut out));
    assert!(!conn.sender().send_binary(b"late", &mut out));
    assert!(out.is_empty());
    let (events, reply, _) = feed(&mut server(), &[&frame(true, 8, &[0x03, 0xe8])]);
    assert_eq!(events, [Owned::Close(Some(1000), String::new())]);
    assert_eq!(reply, [0x88, 0x02, 0x03, 0xe8]);
}
