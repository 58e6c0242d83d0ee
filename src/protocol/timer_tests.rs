//! The connection's timers with time passed in: every deadline checked to the millisecond, no
//! clock, no sleep.

use std::time::Duration;

use super::frame::FrameHeader;
use super::{Connection, Expiry, Limits, Stamp, State, Timeouts};

const TIMEOUTS: Timeouts = Timeouts {
    ping_interval: Duration::from_secs(30),
    idle_timeout: Duration::from_secs(120),
    close_timeout: Duration::from_secs(5),
    message_stall: Duration::from_secs(20),
};

fn at(secs: u64) -> Stamp {
    Stamp::from_millis(secs * 1000)
}

fn at_ms(ms: u64) -> Stamp {
    Stamp::from_millis(ms)
}

/// The opcodes of the frames in `out`.
fn opcodes(out: &[u8]) -> Vec<u8> {
    let mut ops = Vec::new();
    let mut rest = out;
    while let Ok(Some((header, len))) = FrameHeader::decode(rest) {
        ops.push(header.opcode);
        rest = &rest[len + header.payload_len as usize..];
    }
    ops
}

/// A server connection whose timers started at `start`.
fn started(start: Stamp) -> Connection {
    let mut ws = Connection::server(Limits::default());
    ws.on_heard(start);
    ws
}

#[test]
fn no_timer_before_time_is_passed_in() {
    let ws = Connection::server(Limits::default());
    assert_eq!(ws.poll_timeout(&TIMEOUTS), None);
}

#[test]
fn a_silent_peer_is_pinged_at_the_interval_and_every_interval_after() {
    let mut ws = started(at(100));
    let mut out = Vec::new();
    assert_eq!(ws.poll_timeout(&TIMEOUTS), Some(at(130)));
    assert_eq!(ws.handle_timeout(at_ms(129_999), &TIMEOUTS, &mut out), None);
    assert!(out.is_empty());
    assert_eq!(
        ws.handle_timeout(at(130), &TIMEOUTS, &mut out),
        Some(Expiry::PingSent)
    );
    assert_eq!(opcodes(&out), [0x9]);
    // Called again at once: nothing more (the next Ping is an interval away).
    assert_eq!(ws.handle_timeout(at(130), &TIMEOUTS, &mut out), None);
    assert_eq!(ws.poll_timeout(&TIMEOUTS), Some(at(160)));
    assert_eq!(
        ws.handle_timeout(at(160), &TIMEOUTS, &mut out),
        Some(Expiry::PingSent)
    );
    assert_eq!(opcodes(&out), [0x9, 0x9]);
}

#[test]
fn hearing_from_the_peer_postpones_the_ping() {
    let mut ws = started(at(0));
    let mut out = Vec::new();
    ws.on_heard(at(25));
    assert_eq!(ws.handle_timeout(at(30), &TIMEOUTS, &mut out), None);
    assert_eq!(ws.poll_timeout(&TIMEOUTS), Some(at(55)));
    assert_eq!(
        ws.handle_timeout(at(55), &TIMEOUTS, &mut out),
        Some(Expiry::PingSent)
    );
}

#[test]
fn total_silence_ends_in_close_1001_at_the_idle_timeout() {
    let mut ws = started(at(0));
    let mut out = Vec::new();
    for t in [30, 60, 90] {
        assert_eq!(
            ws.handle_timeout(at(t), &TIMEOUTS, &mut out),
            Some(Expiry::PingSent)
        );
    }
    assert_eq!(ws.poll_timeout(&TIMEOUTS), Some(at(120)));
    out.clear();
    assert_eq!(
        ws.handle_timeout(at(120), &TIMEOUTS, &mut out),
        Some(Expiry::Idle)
    );
    assert_eq!(opcodes(&out), [0x8]);
    assert_eq!(&out[2..4], &1001u16.to_be_bytes());
    assert_eq!(ws.state(), State::CloseSent);
}

#[test]
fn the_wait_for_the_peers_close_ends_after_the_close_timeout() {
    let mut ws = started(at(0));
    let mut out = Vec::new();
    ws.close(super::CloseCode::NORMAL, "bye", &mut out);
    // The wait starts when time is next passed in.
    assert_eq!(ws.poll_timeout(&TIMEOUTS), Some(at(0)));
    assert_eq!(ws.handle_timeout(at(10), &TIMEOUTS, &mut out), None);
    assert_eq!(ws.poll_timeout(&TIMEOUTS), Some(at(15)));
    assert_eq!(ws.handle_timeout(at_ms(14_999), &TIMEOUTS, &mut out), None);
    assert_eq!(
        ws.handle_timeout(at(15), &TIMEOUTS, &mut out),
        Some(Expiry::CloseWaitOver)
    );
    // No Ping ever goes out after our Close.
    assert_eq!(opcodes(&out), [0x8]);
}

#[test]
fn a_closed_connection_has_no_timer() {
    let mut ws = started(at(0));
    let mut out = Vec::new();
    // The peer's Close, masked, empty body: answered, and the connection is closed.
    let mut close = vec![0x88, 0x80, 1, 2, 3, 4];
    let received = ws.handle_bytes(&mut close, &mut out).unwrap();
    assert_eq!(received.consumed, 6);
    assert_eq!(ws.state(), State::Closed);
    assert_eq!(ws.poll_timeout(&TIMEOUTS), None);
    assert_eq!(ws.handle_timeout(at(1000), &TIMEOUTS, &mut out), None);
}

#[test]
fn time_that_wraps_around_still_counts() {
    // 49.7 days after the clock's origin the stamps wrap; intervals across it are unchanged.
    let start = Stamp::from_millis(u32::MAX as u64 - 10_000);
    let mut ws = started(start);
    let mut out = Vec::new();
    let due = start.after(Duration::from_secs(30));
    assert_eq!(ws.poll_timeout(&TIMEOUTS), Some(due));
    assert_eq!(
        ws.handle_timeout(due, &TIMEOUTS, &mut out),
        Some(Expiry::PingSent)
    );
}

/// A masked client frame.
fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![
        (u8::from(fin) << 7) | opcode,
        0x80 | payload.len() as u8,
        9,
        8,
        7,
        6,
    ];
    out.extend(
        payload
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ [9, 8, 7, 6][i % 4]),
    );
    out
}

fn feed(ws: &mut Connection, bytes: &[u8], out: &mut Vec<u8>) {
    let mut bytes = bytes.to_vec();
    let mut pos = 0;
    while pos < bytes.len() {
        pos += ws.handle_bytes(&mut bytes[pos..], out).unwrap().consumed;
    }
}

/// A fragmented message that gets no further is closed at the stall deadline, although Pongs
/// keep arriving between its fragments; one that keeps coming is not.
#[test]
fn a_stalled_message_is_closed_whatever_control_frames_arrive() {
    let mut ws = started(at(0));
    let mut out = Vec::new();
    feed(&mut ws, &frame(false, 0x2, b"part one"), &mut out);
    assert_eq!(ws.handle_timeout(at(1), &TIMEOUTS, &mut out), None);
    for t in (2..21).step_by(3) {
        feed(&mut ws, &frame(true, 0xA, b""), &mut out);
        ws.on_heard(at(t));
        assert_eq!(
            ws.handle_timeout(at(t), &TIMEOUTS, &mut out),
            None,
            "at {t}"
        );
    }
    assert_eq!(ws.poll_timeout(&TIMEOUTS), Some(at(21)));
    assert_eq!(
        ws.handle_timeout(at(21), &TIMEOUTS, &mut out),
        Some(Expiry::MessageStalled)
    );
    assert_eq!(opcodes(&out), [0x8]);
    assert_eq!(&out[2..4], &1008u16.to_be_bytes());

    let mut ws = started(at(0));
    let mut out = Vec::new();
    feed(&mut ws, &frame(false, 0x2, b"a"), &mut out);
    assert_eq!(ws.handle_timeout(at(0), &TIMEOUTS, &mut out), None);
    for t in (10..100).step_by(10) {
        feed(&mut ws, &frame(false, 0x0, b"more"), &mut out);
        ws.on_heard(at(t));
        assert_eq!(
            ws.handle_timeout(at(t), &TIMEOUTS, &mut out),
            None,
            "at {t}"
        );
    }
}
