//! Feed a real [`Connection`] (server side, or client side) a stream in chunks, checking every call, and compare
//! what it did with the [`oracle`](crate::oracle).

use wsbridge::protocol::{CloseCode, Connection, Event, Message, ProtocolError, Role, State};

use crate::alloc;
use crate::oracle::{self, Ev, Options, Outcome};
use crate::wire::parse_frames;

/// What the connection did with a stream.
#[derive(Debug)]
pub struct Run {
    pub role: Role,
    pub events: Vec<Ev>,
    pub error: Option<ProtocolError>,
    pub out: Vec<u8>,
    pub state: State,
}

fn own(event: &Event<'_>) -> Ev {
    match *event {
        Event::Message(Message::Text(t)) => Ev::Text(t.to_owned()),
        Event::Message(Message::Binary(b)) => Ev::Binary(b.to_vec()),
        Event::Ping(p) => Ev::Ping(p.to_vec()),
        Event::Pong(p) => Ev::Pong(p.to_vec()),
        Event::Close(c) => Ev::Close(c.code.map(|c| c.0), c.reason.to_owned()),
    }
}

/// Feed `stream` cut into pieces of the given sizes (cycled; a size of 0 is read as 1), the way
/// a server loop does: call `handle_bytes` until each piece is used up. Checks, on every call:
/// * `Ok`: `consumed > 0` and `consumed <=` what was given;
/// * once `Closed` (the peer's Close, or an error): no event, everything consumed, no output;
/// * an `Err` comes only once and leaves the state `Closed`; a Close event leaves it `Closed`;
/// * no allocation inside `handle_bytes` larger than a small multiple of the bytes given so far
///   (never the length a header announces);
/// * the reassembly buffer stays within twice the bytes received.
pub fn run(stream: &[u8], chunk_sizes: &[usize], opts: Options) -> Run {
    let mut conn = match opts.role {
        Role::Server => Connection::server(opts.limits),
        Role::Client => Connection::client(opts.limits, [7; 32]),
    };
    let mut out = Vec::new();
    if opts.close_first {
        conn.close(CloseCode::NORMAL, "", &mut out);
        assert_eq!(conn.state(), State::CloseSent);
    }
    let mut events = Vec::new();
    let mut error = None;
    let mut closed = false;
    let mut start = 0;
    let mut sizes = chunk_sizes.iter().copied().cycle();
    while start < stream.len() {
        let size = sizes.next().unwrap_or(usize::MAX).max(1);
        let end = start.saturating_add(size).min(stream.len());
        let mut piece = stream[start..end].to_vec();
        let mut pos = 0;
        while pos < piece.len() {
            let given = piece.len() - pos;
            let out_before = out.len();
            let (result, largest) =
                alloc::watch(|| match conn.handle_bytes(&mut piece[pos..], &mut out) {
                    Ok(received) => {
                        let event = received.event.as_ref().map(own);
                        // An echo route sends the message straight back through `tx`.
                        if let (true, Some(Event::Message(m))) = (opts.echo, &received.event) {
                            received.tx.send_message(*m, &mut out);
                        }
                        Ok((received.consumed, event))
                    }
                    Err(e) => Err(e),
                });
            let bound = 4 * (start + pos + given) + 4096;
            assert!(
                largest <= bound,
                "allocated {largest} bytes after receiving {} (bound {bound})",
                start + pos + given
            );
            match result {
                Ok((consumed, event)) => {
                    assert!(consumed > 0, "no progress on {given} bytes");
                    assert!(consumed <= given, "consumed {consumed} of {given}");
                    if closed {
                        assert_eq!(event, None, "event after Closed");
                        assert_eq!(consumed, given, "Closed must discard everything");
                        assert_eq!(out.len(), out_before, "output after Closed");
                    }
                    if let Some(event) = event {
                        if matches!(event, Ev::Close(..)) {
                            assert_eq!(conn.state(), State::Closed, "state after a Close");
                            closed = true;
                        }
                        events.push(event);
                    }
                    pos += consumed;
                }
                Err(e) => {
                    assert!(!closed, "error {e:?} after Closed");
                    assert_eq!(conn.state(), State::Closed, "state after {e:?}");
                    error = Some(e);
                    closed = true;
                    // A server stops reading here; feeding the rest anyway checks that a failed
                    // connection ignores input.
                }
            }
            // Everything handed to the connection so far.
            let received = start + piece.len();
            assert!(
                conn.buffered_capacity() <= 2 * received + 64,
                "reassembly buffer of {} after {received} bytes",
                conn.buffered_capacity()
            );
        }
        start = end;
    }
    if !closed {
        let expected = if opts.close_first {
            State::CloseSent
        } else {
            State::Open
        };
        assert_eq!(conn.state(), expected);
    }
    Run {
        role: opts.role,
        events,
        error,
        out,
        state: conn.state(),
    }
}

/// Check a run against the oracle's outcome: the same events, the same error, and output that
/// parses as valid server frames matching the expected ones one for one. After an error the
/// output holds exactly one Close: the last frame, carrying the error's close code, unless the
/// application had already sent its Close (which Pongs may then follow).
pub fn check(run: &Run, expected: &Outcome, what: &str) {
    assert_eq!(run.events, expected.events, "{what}: events");
    assert_eq!(run.error, expected.error, "{what}: error");
    let masked = run.role == Role::Client;
    let frames = parse_frames(&run.out, masked)
        .unwrap_or_else(|e| panic!("{what}: output is not valid frames for its role: {e}"));
    assert_eq!(
        frames.len(),
        expected.out.len(),
        "{what}: output frames {frames:?}, expected {:?}",
        expected.out
    );
    for (i, (frame, want)) in frames.iter().zip(&expected.out).enumerate() {
        assert!(
            want.matches(frame),
            "{what}: output frame {i} is {frame:?}, expected {want:?}"
        );
    }
    let closes = frames.iter().filter(|f| f.opcode == 0x8).count();
    assert!(closes <= 1, "{what}: {closes} Close frames written");
    if let Some(error) = run.error {
        assert_eq!(run.state, State::Closed);
        assert_eq!(closes, 1, "{what}: exactly one Close");
        // Had the application already sent its Close, that Close comes first and Pongs may
        // follow it (§5.5.2); otherwise the failure's Close is the last frame written.
        let closed_first =
            matches!(expected.out.first(), Some(oracle::Out::Frame(f)) if f.opcode == 0x8);
        if !closed_first {
            let last = frames.last().expect("a Close after an error");
            assert_eq!(last.opcode, 0x8, "{what}: output must end with a Close");
            let code = u16::from_be_bytes([last.payload[0], last.payload[1]]);
            assert_eq!(
                code,
                error.close_code().0,
                "{what}: close code for {error:?}"
            );
        }
    }
}
