//! The session's logic against a fake terminal: authentication, flow control, pause and
//! resume, input backpressure and the exit, with every byte and every step under the test's
//! control (no process, no PTY, no waiting).

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::routes::tty::proto::{self, ClientMessage, Init};
use crate::routes::tty::sys::{Command, ExitStatus, PtyRead, WinSize};
use crate::routes::tty::terminal::{Launcher, Terminal};

const TOKEN: &str = "s3cret-token";

/// What the fake program did and was given.
#[derive(Default)]
struct Program {
    /// Started at this size.
    launched: Option<WinSize>,
    /// Output not yet read by the session.
    output: VecDeque<u8>,
    /// The program closed its terminal (the session then reads EIO).
    closed: bool,
    exit: Option<ExitStatus>,
    /// Input the program has taken.
    input: Vec<u8>,
    /// How much more input it takes before writes would block.
    input_room: usize,
    size: Option<WinSize>,
    hung_up: bool,
    reads: usize,
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<Program>>);

impl Fake {
    fn with<T>(&self, f: impl FnOnce(&mut Program) -> T) -> T {
        f(&mut self.0.lock().unwrap())
    }
}

impl Launcher for Fake {
    fn launch(
        &self,
        _: &Command,
        size: WinSize,
        _: Option<&crate::routes::Waker>,
    ) -> io::Result<Box<dyn Terminal>> {
        self.with(|p| p.launched = Some(size));
        Ok(Box::new(self.clone()))
    }
}

impl Terminal for Fake {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<PtyRead> {
        self.with(|p| {
            p.reads += 1;
            if p.output.is_empty() {
                return Ok(if p.closed {
                    PtyRead::Closed
                } else {
                    PtyRead::WouldBlock
                });
            }
            let n = buf.len().min(p.output.len());
            for (slot, byte) in buf.iter_mut().zip(p.output.drain(..n)) {
                *slot = byte;
            }
            Ok(PtyRead::Data(n))
        })
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.with(|p| {
            if p.input_room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(p.input_room);
            p.input_room -= n;
            p.input.extend_from_slice(&buf[..n]);
            Ok(n)
        })
    }

    fn resize(&mut self, size: WinSize) -> io::Result<()> {
        self.with(|p| p.size = Some(size));
        Ok(())
    }

    fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        Ok(self.with(|p| p.exit))
    }

    fn pid(&self) -> u32 {
        4242
    }

    fn fds(&self) -> Vec<RawFd> {
        Vec::new()
    }

    fn hang_up(&mut self, _grace: Duration, _signal: crate::routes::tty::sys::Signal) {
        self.with(|p| p.hung_up = true);
    }
}

/// The connection: what the session queued, and how much of it the client has not read.
#[derive(Default)]
struct Wire {
    frames: Vec<Vec<u8>>,
    unsent: usize,
    close: Option<(u16, String)>,
}

impl Transport for Wire {
    fn send_binary(&mut self, payload: &[u8]) {
        assert!(self.close.is_none(), "a frame after the close");
        self.unsent += payload.len();
        self.frames.push(payload.to_vec());
    }
    fn send_close(&mut self, code: u16, reason: &str) {
        assert!(self.close.is_none(), "two closes");
        self.close = Some((code, reason.to_owned()));
    }
    fn unsent(&self) -> usize {
        self.unsent
    }
}

impl Wire {
    /// The terminal output the client received, in order.
    fn output(&self) -> Vec<u8> {
        self.frames
            .iter()
            .filter(|f| f.first() == Some(&proto::OUTPUT))
            .flat_map(|f| f[1..].to_vec())
            .collect()
    }
}

fn limits() -> Limits {
    Limits {
        chunk: 16,
        high_water: 64,
        low_water: 16,
        max_pending_input: 32,
        hangup_grace: Duration::from_millis(1),
    }
}

fn session(fake: &Fake, read_only: bool) -> Session {
    let mut config = Config::new(Command::new("fake"));
    config.limits = limits();
    config.read_only = read_only;
    config.launcher = Arc::new(fake.clone());
    let policy = Arc::new(crate::auth::Policy::new(Some(TOKEN.into()), vec![], vec![]));
    let admission = policy
        .admission(None, crate::routes::Waker::noop(), Instant::now())
        .expect("admission");
    Session::new(Arc::new(config), admission, None)
}

fn send(s: &mut Session, wire: &mut Wire, msg: &ClientMessage<'_>) -> Outcome {
    let mut buf = Vec::new();
    proto::encode_client(msg, &mut buf);
    s.handle_message(&buf, Instant::now(), wire)
}

fn init(token: &str) -> ClientMessage<'static> {
    ClientMessage::Init(Init {
        auth_token: Some(token.into()),
        size: Some(WinSize {
            cols: 100,
            rows: 30,
        }),
    })
}

/// A running session whose title and preferences frames were already read.
fn running(read_only: bool) -> (Fake, Session, Wire) {
    let fake = Fake::default();
    let mut s = session(&fake, read_only);
    let mut wire = Wire::default();
    assert_eq!(send(&mut s, &mut wire, &init(TOKEN)), Outcome::Spawned);
    assert_eq!(wire.frames.len(), 2);
    wire.frames.clear();
    wire.unsent = 0;
    (fake, s, wire)
}

#[test]
fn the_right_token_starts_the_program_at_the_clients_size() {
    let fake = Fake::default();
    let mut s = session(&fake, false);
    let mut wire = Wire::default();
    assert_eq!(send(&mut s, &mut wire, &init(TOKEN)), Outcome::Spawned);
    assert_eq!(
        fake.with(|p| p.launched),
        Some(WinSize {
            cols: 100,
            rows: 30
        })
    );
    assert_eq!(wire.frames[0][0], proto::SET_WINDOW_TITLE);
    assert_eq!(wire.frames[1], b"2{}");
    assert_eq!(s.pid(), Some(4242));
}

#[test]
fn a_wrong_or_missing_token_starts_nothing() {
    for first in [init("wrong"), ClientMessage::Init(Init::default())] {
        let fake = Fake::default();
        let mut s = session(&fake, false);
        let mut wire = Wire::default();
        assert_eq!(send(&mut s, &mut wire, &first), Outcome::AuthFailed);
        assert_eq!(wire.close, Some((1008, "authentication failed".into())));
        assert_eq!(fake.with(|p| p.launched), None);
    }
}

#[test]
fn output_is_framed_in_chunks_and_the_exit_closes_after_all_of_it() {
    let (fake, mut s, mut wire) = running(false);
    fake.with(|p| {
        p.output.extend(b"0123456789abcdefghij");
        p.exit = Some(ExitStatus::Exited(3));
        p.closed = true;
    });
    // The first call reads at most the high-water mark's worth, then the client reads.
    let mut outcome = s.handle_ready(&mut wire);
    while outcome == Outcome::Continue {
        wire.unsent = 0;
        outcome = s.handle_drained(&mut wire);
    }
    assert_eq!(outcome, Outcome::Closed);
    assert_eq!(wire.output(), b"0123456789abcdefghij");
    // Frames of at most `chunk` bytes, each starting with the output type.
    assert!(wire.frames.iter().all(|f| f.len() <= 1 + limits().chunk));
    assert_eq!(wire.close, Some((1000, "exit 3".into())));
    assert!(
        fake.with(|p| p.hung_up),
        "the program's remains are hung up"
    );
}

#[test]
fn an_exit_waits_for_output_the_client_has_paused() {
    let (fake, mut s, mut wire) = running(false);
    send(&mut s, &mut wire, &ClientMessage::Pause);
    fake.with(|p| {
        p.output.extend(b"last words");
        p.exit = Some(ExitStatus::Signaled(15));
        p.closed = true;
    });
    assert_eq!(s.handle_ready(&mut wire), Outcome::Continue);
    assert!(wire.output().is_empty() && wire.close.is_none());
    assert_eq!(
        send(&mut s, &mut wire, &ClientMessage::Resume),
        Outcome::Closed
    );
    assert_eq!(wire.output(), b"last words");
    assert_eq!(wire.close, Some((1000, "signal 15".into())));
}

#[test]
fn reading_stops_at_the_high_water_mark_and_resumes_when_drained() {
    let (fake, mut s, mut wire) = running(false);
    fake.with(|p| p.output.extend(std::iter::repeat_n(b'y', 1000)));
    s.handle_ready(&mut wire);
    let limits = limits();
    assert!(wire.unsent >= limits.high_water);
    assert!(wire.unsent < limits.high_water + limits.chunk + 1);
    let left = fake.with(|p| p.output.len());
    // Still not drained: another readiness reads nothing.
    s.handle_ready(&mut wire);
    assert_eq!(fake.with(|p| p.output.len()), left);
    // Drained: it reads again.
    wire.unsent = 0;
    s.handle_drained(&mut wire);
    assert!(fake.with(|p| p.output.len()) < left);
}

#[test]
fn input_waits_for_room_and_backpressure_stops_the_socket() {
    let (fake, mut s, mut wire) = running(false);
    send(&mut s, &mut wire, &ClientMessage::Input(&[b'a'; 20]));
    assert!(s.wants_input());
    send(&mut s, &mut wire, &ClientMessage::Input(&[b'b'; 20]));
    assert!(!s.wants_input(), "40 bytes kept, over the 32-byte limit");
    fake.with(|p| p.input_room = 100);
    s.handle_ready(&mut wire);
    assert!(s.wants_input());
    let input = fake.with(|p| p.input.clone());
    assert_eq!(input.len(), 40);
    assert!(input[..20].iter().all(|&b| b == b'a') && input[20..].iter().all(|&b| b == b'b'));
}

#[test]
fn read_only_drops_input_and_says_so_in_the_preferences() {
    let fake = Fake::default();
    let mut s = session(&fake, true);
    let mut wire = Wire::default();
    send(&mut s, &mut wire, &init(TOKEN));
    assert_eq!(wire.frames[1], br#"2{"disableStdin":true}"#);
    fake.with(|p| p.input_room = 100);
    send(&mut s, &mut wire, &ClientMessage::Input(b"rm -rf /\r"));
    assert!(fake.with(|p| p.input.is_empty()));
}

#[test]
fn resizes_reach_the_terminal_and_empty_sizes_do_not() {
    let (fake, mut s, mut wire) = running(false);
    send(
        &mut s,
        &mut wire,
        &ClientMessage::Resize(WinSize { cols: 0, rows: 10 }),
    );
    assert_eq!(fake.with(|p| p.size), None);
    send(
        &mut s,
        &mut wire,
        &ClientMessage::Resize(WinSize {
            cols: 120,
            rows: 40,
        }),
    );
    assert_eq!(
        fake.with(|p| p.size),
        Some(WinSize {
            cols: 120,
            rows: 40
        })
    );
}

#[test]
fn closing_the_session_hangs_up_the_program() {
    let (fake, mut s, _wire) = running(false);
    s.close();
    assert!(fake.with(|p| p.hung_up));
    assert!(s.is_closed());
}

#[test]
fn a_large_message_taken_a_little_at_a_time_arrives_in_order_and_its_buffer_is_released() {
    let (fake, mut s, mut wire) = running(false);
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    send(&mut s, &mut wire, &ClientMessage::Input(&big));
    assert!(
        s.held_bytes() >= big.len(),
        "the message is held until taken"
    );
    // The program takes 7 bytes per turn, and one more message arrives halfway through.
    let mut sent_tail = false;
    while fake.with(|p| p.input.len()) < big.len() + 3 {
        fake.with(|p| p.input_room = 7);
        s.handle_ready(&mut wire);
        if !sent_tail && fake.with(|p| p.input.len()) > big.len() / 2 {
            send(&mut s, &mut wire, &ClientMessage::Input(b"end"));
            sent_tail = true;
        }
    }
    let input = fake.with(|p| p.input.clone());
    assert_eq!(&input[..big.len()], &big[..]);
    assert_eq!(&input[big.len()..], b"end");
    assert!(s.wants_input());
    assert!(
        s.held_bytes() < big.len(),
        "the large input buffer is given back once the PTY took it all ({} held)",
        s.held_bytes()
    );
}
