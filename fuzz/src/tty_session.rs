//! The structured target `tty_session`: the terminal route's whole session machine
//! ([`Session`]) against a fake program, driven by a script of client messages (the init
//! message with the right or a wrong token and any sizes, input, resizes including zero and
//! out-of-range sizes, pause and resume, garbage) and of the program's and the server's doings
//! (output, exit, the terminal closing, room for input, readiness, the client reading, the token
//! gate judging).
//!
//! The fake implements the crate's public [`Terminal`] and [`Launcher`] traits here (the one in
//! the session's unit tests is `cfg(test)`); every byte and step is under the script's control,
//! so a run is deterministic. The driver keeps the server's contract: messages are handed over
//! only while [`Session::wants_input`] is true, and `Outcome::Spawned` is followed by a
//! `handle_ready` (registering the descriptors reports what is pending). Checked:
//! * no panic; nothing is sent after the close frame, and there is one close at most;
//! * the program starts only if the token was right (in the init message, or at the upgrade),
//!   at most once, at the size the init message asked for (80x24 when it gave none or a zero);
//! * no input reaches the program before it started, and what it got is a prefix of the input
//!   the client sent while it ran (all of it, once it has room), none with `--read-only-tty`;
//! * every resize that reaches the terminal is one the client sent, non-zero in both
//!   dimensions, in order; an out-of-range one closes with 1007;
//! * the close code is the one the model expects (1008 for a missing or wrong token or a first
//!   message that is not the init, 1007 for bad JSON, 1000 with `exit N`/`signal N`, 1011 when
//!   the program cannot start), and an exit closes only after all the output was sent;
//! * frames: the title, the preferences, then output frames of 1 to `chunk` bytes whose
//!   concatenation is what the program wrote, in order;
//! * the output queue stays under `high_water` plus one frame plus the first two; the session's
//!   [`Session::held_bytes`] under twice the pending-input limit plus a message plus a frame;
//! * after `close()`, a started program has been hung up.

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use serde_json::{Value as Json, json};
use wsbridge::auth::Policy;
use wsbridge::routes::Waker;
use wsbridge::routes::tty::session::{Config, Limits, Outcome, Session, Transport};
use wsbridge::routes::tty::sys::{Command, ExitStatus, PtyRead, WinSize};
use wsbridge::routes::tty::terminal::{Launcher, Terminal};

use crate::gate::{fresh_run, variant_tag};

/// The server's token.
pub const TOKEN: &str = "s3cret-tty-token";

/// At most this many actions of a script are played.
pub const MAX_ACTIONS: usize = 48;

/// The limits a script picks with the low bits of its setup byte.
fn limits(pick: u8) -> Limits {
    let (chunk, high_water, low_water, max_pending_input) = match pick % 4 {
        0 => (16, 64, 16, 32),
        1 => (1, 3, 0, 1),
        2 => (100, 1000, 999, 300),
        _ => (64 << 10, 256 << 10, 64 << 10, 64 << 10),
    };
    Limits {
        chunk,
        high_water,
        low_water,
        max_pending_input,
        hangup_grace: Duration::from_millis(1),
    }
}

/// A size field's value: absent, or the JSON it holds.
fn size_value(pick: u8) -> Option<Json> {
    Some(match pick % 11 {
        0 => return None,
        1 => json!(0),
        2 => json!(1),
        3 => json!(24),
        4 => json!(80),
        5 => json!(65535),
        6 => json!(65536),
        7 => json!(-1),
        8 => json!(1.5),
        9 => json!("80"),
        _ => Json::Null,
    })
}

/// What the model makes of a size field: a number (absent and `null` are 0), or malformed.
fn size_model(pick: u8) -> Result<u16, ()> {
    match size_value(pick) {
        None | Some(Json::Null) => Ok(0),
        Some(v) => v.as_u64().and_then(|n| u16::try_from(n).ok()).ok_or(()),
    }
}

/// Messages that are no ttyd command: empty, unknown types, malformed JSON.
const GARBAGE: &[&[u8]] = &[
    b"",
    b"9",
    b"\xff\xfe",
    b"1",
    b"1{",
    b"1[80,24]",
    b"1{\"columns\":80,\"rows\":24,\"columns\":81}",
    b"{\"AuthToken\":[]}",
    b"{not json",
    b"{\"AuthToken\":\"\xff\"}",
];

/// One script.
#[derive(Debug, Clone, PartialEq, Eq, Arbitrary)]
pub struct Script {
    /// Bits 0-1: the [`limits`]; bit 2: `--read-only-tty`; bit 3: the upgrade carried the right
    /// token; bit 4: the address spent its burst of token checks just before (the init's check
    /// waits for its turn); bit 5: the program cannot be started.
    pub setup: u8,
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub enum Action {
    /// The init message. `token % 6`: right, wrong, empty, `null`, absent, a number (malformed);
    /// `cols`/`rows`: [`size_value`]. `later`: a second passes first.
    Init {
        token: u8,
        cols: u8,
        rows: u8,
        later: bool,
    },
    /// `len` bytes of input, `fill` and on.
    Input {
        len: u8,
        fill: u8,
    },
    Resize {
        cols: u8,
        rows: u8,
    },
    Pause,
    Resume,
    /// The program prints `len * 4 + 1` bytes.
    Output {
        len: u8,
    },
    /// The program ends (`code % 4`: exit 0, 1, 255, signal 9), its terminal closing or not.
    Exit {
        code: u8,
        close_pty: bool,
    },
    /// The terminal's slave side closes (the program lives on).
    PtyClosed,
    /// The program takes `n * 4` more bytes of input.
    Room {
        n: u8,
    },
    /// A source was ready (or the session was woken).
    Ready,
    /// The client read `n * 4` bytes of the connection's output.
    ClientReads {
        n: u8,
    },
    /// The server's output drained.
    Drained,
    /// A message that is no command: `GARBAGE[pick]`, or `bytes` with a first byte that is no
    /// command either.
    Garbage {
        pick: u8,
        bytes: [u8; 4],
    },
    /// The token gate judges what waits (the clock jumps to its turn); the session is woken.
    Judge,
}

const ACTION_VARIANTS: usize = 14;

impl Action {
    fn encode(&self, out: &mut Vec<u8>) {
        let (index, fields): (usize, Vec<u8>) = match *self {
            Action::Init {
                token,
                cols,
                rows,
                later,
            } => (0, vec![token, cols, rows, u8::from(later)]),
            Action::Input { len, fill } => (1, vec![len, fill]),
            Action::Resize { cols, rows } => (2, vec![cols, rows]),
            Action::Pause => (3, vec![]),
            Action::Resume => (4, vec![]),
            Action::Output { len } => (5, vec![len]),
            Action::Exit { code, close_pty } => (6, vec![code, u8::from(close_pty)]),
            Action::PtyClosed => (7, vec![]),
            Action::Room { n } => (8, vec![n]),
            Action::Ready => (9, vec![]),
            Action::ClientReads { n } => (10, vec![n]),
            Action::Drained => (11, vec![]),
            Action::Garbage { pick, bytes } => (12, [&[pick][..], &bytes].concat()),
            Action::Judge => (13, vec![]),
        };
        out.extend(variant_tag(index, ACTION_VARIANTS));
        out.extend(fields);
    }
}

impl Script {
    /// The bytes `Script::arbitrary_take_rest` reads back as this script (for seeds).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.setup];
        for a in &self.actions {
            out.push(1);
            a.encode(&mut out);
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// The fake program and the connection.
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Program {
    fail_launch: bool,
    launches: Vec<WinSize>,
    /// Output not yet read.
    output: VecDeque<u8>,
    /// Everything it printed.
    printed: Vec<u8>,
    /// Its terminal's slave side closed.
    closed: bool,
    /// A read returned `Closed` (the session then stops reading).
    closed_seen: bool,
    exit: Option<ExitStatus>,
    input: Vec<u8>,
    input_room: usize,
    resizes: Vec<WinSize>,
    hung_up: bool,
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<Program>>);

impl Fake {
    fn with<T>(&self, f: impl FnOnce(&mut Program) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Launcher for Fake {
    fn launch(
        &self,
        _: &Command,
        size: WinSize,
        _: Option<&Waker>,
    ) -> io::Result<Box<dyn Terminal>> {
        self.with(|p| {
            if p.fail_launch {
                return Err(io::Error::other("the fuzz script says so"));
            }
            p.launches.push(size);
            Ok(())
        })?;
        Ok(Box::new(self.clone()))
    }
}

impl Terminal for Fake {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<PtyRead> {
        self.with(|p| {
            assert!(!p.hung_up, "read after hang_up");
            assert!(!p.closed_seen, "read after the terminal said it closed");
            if p.output.is_empty() {
                if p.closed {
                    p.closed_seen = true;
                    return Ok(PtyRead::Closed);
                }
                return Ok(PtyRead::WouldBlock);
            }
            assert!(!buf.is_empty(), "a read into an empty buffer");
            let n = buf.len().min(p.output.len());
            for (slot, byte) in buf.iter_mut().zip(p.output.drain(..n)) {
                *slot = byte;
            }
            Ok(PtyRead::Data(n))
        })
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.with(|p| {
            assert!(!p.hung_up, "write after hang_up");
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
        self.with(|p| p.resizes.push(size));
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

    fn hang_up(&mut self, _grace: Duration, _signal: wsbridge::routes::tty::sys::Signal) {
        self.with(|p| p.hung_up = true);
    }
}

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

// ---------------------------------------------------------------------------------------------
// The driver and its model.
// ---------------------------------------------------------------------------------------------

/// What a client message is, for the model.
#[derive(Debug, Clone, Copy)]
enum Msg {
    /// The init message: its token's verdict (`None`: malformed), its size.
    Init {
        right: Option<bool>,
        size: Option<WinSize>,
    },
    Input,
    /// A resize: the size, or malformed.
    Resize(Option<(u16, u16)>),
    Pause,
    Resume,
    /// Empty or of an unknown type: ignored once running.
    Ignored,
    /// Malformed JSON (a resize, or a second init).
    BadJson,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitingInit,
    Verdict,
    Running,
    Ended,
}

struct Driver {
    session: Session,
    fake: Fake,
    wire: Wire,
    policy: Arc<Policy>,
    clock: Instant,
    limits: Limits,
    read_only: bool,
    header_auth: bool,
    inbox: VecDeque<(Vec<u8>, Msg)>,
    phase: Phase,
    /// The code the model expects when it ends the session itself.
    expect_close: Option<u16>,
    /// Input the program should get, in order.
    input: Vec<u8>,
    resizes: Vec<WinSize>,
    launch_size: Option<WinSize>,
    /// Bytes of the title and preferences frames.
    first_frames: usize,
}

impl Driver {
    fn outcome(&mut self, outcome: Outcome, after: &str) {
        match outcome {
            Outcome::Continue => {}
            Outcome::Spawned => {
                assert_eq!(self.phase, Phase::Verdict, "spawned after {after}");
                self.phase = Phase::Running;
                self.first_frames = self.wire.frames.iter().map(Vec::len).sum();
                let frames = &self.wire.frames;
                assert_eq!(frames.len(), 2, "title and preferences");
                assert_eq!(frames[0][0], b'1', "the title first");
                let prefs: &[u8] = if self.read_only {
                    br#"2{"disableStdin":true}"#
                } else {
                    b"2{}"
                };
                assert_eq!(frames[1], prefs);
                assert!(self.session.sources().is_empty(), "the fake has no fds");
                let next = self.session.handle_ready(&mut self.wire);
                self.outcome(next, "the readiness after the spawn");
            }
            Outcome::Closed | Outcome::AuthFailed => {
                let (code, reason) =
                    self.wire.close.clone().unwrap_or_else(|| {
                        panic!("{outcome:?} without a close frame, after {after}")
                    });
                if outcome == Outcome::AuthFailed {
                    assert_eq!((code, reason.as_str()), (1008, "authentication failed"));
                }
                match (self.expect_close.take(), code) {
                    (Some(expected), _) => assert_eq!(code, expected, "{reason} after {after}"),
                    (None, 1000) => {
                        let exit = self.fake.with(|p| p.exit).expect("1000 after an exit");
                        assert_eq!(reason, exit.to_string());
                        let printed = self.fake.with(|p| p.printed.clone());
                        assert_eq!(self.output(), printed, "an exit closes after all output");
                    }
                    (None, _) => panic!("close {code} {reason:?} after {after}: not expected"),
                }
                assert!(self.session.is_closed());
                self.phase = Phase::Ended;
            }
        }
        self.check(after);
    }

    fn output(&self) -> Vec<u8> {
        self.wire
            .frames
            .iter()
            .skip(2)
            .flat_map(|f| f[1..].to_vec())
            .collect()
    }

    fn check(&self, after: &str) {
        let l = &self.limits;
        assert!(
            self.wire.unsent <= self.first_frames + l.high_water + 1 + l.chunk,
            "{} bytes unsent after {after}",
            self.wire.unsent
        );
        let held = self.session.held_bytes();
        let bound = 2 * (l.max_pending_input + 256) + 1 + l.chunk.max(1);
        assert!(
            held <= bound,
            "held_bytes {held} over {bound} after {after}"
        );
        for f in self.wire.frames.iter().skip(2) {
            assert_eq!(f[0], b'0', "an output frame");
            assert!(
                (2..=1 + l.chunk.max(1)).contains(&f.len()),
                "frame of {}",
                f.len()
            );
        }
        let (launches, input, resizes, printed) = self.fake.with(|p| {
            (
                p.launches.clone(),
                p.input.clone(),
                p.resizes.clone(),
                p.printed.clone(),
            )
        });
        let output = self.output();
        assert!(
            printed.starts_with(&output),
            "output is what the program printed"
        );
        match self.launch_size {
            None => assert!(launches.is_empty(), "started without the right token"),
            Some(size) => assert!(launches.is_empty() || launches == [size], "{launches:?}"),
        }
        assert!(input.is_empty() || !launches.is_empty());
        assert!(
            self.input.starts_with(&input),
            "the program got input nobody sent"
        );
        assert_eq!(resizes, self.resizes[..resizes.len()], "resizes");
        assert!(resizes.iter().all(|s| s.cols > 0 && s.rows > 0));
    }

    /// The model's part of a message, then the call.
    fn deliver(&mut self, bytes: &[u8], msg: Msg) {
        match (self.phase, msg) {
            (Phase::Ended, _) => {}
            (Phase::AwaitingInit, Msg::Init { right, size }) => match right {
                None => self.expect_close = Some(1008),
                Some(false) => {
                    self.phase = Phase::Verdict;
                    self.expect_close = Some(1008);
                }
                Some(true) => {
                    self.phase = Phase::Verdict;
                    let size = size.unwrap_or_default();
                    if self.fake.with(|p| p.fail_launch) {
                        self.expect_close = Some(1011);
                    } else {
                        self.launch_size = Some(size);
                    }
                }
            },
            (Phase::AwaitingInit, _) => self.expect_close = Some(1008),
            (Phase::Verdict, _) => panic!("a message handed over while the verdict waits"),
            (Phase::Running, m) => match m {
                Msg::Input => {
                    if !self.read_only && !self.fake.with(|p| p.closed_seen) {
                        self.input.extend_from_slice(&bytes[1..]);
                    }
                }
                Msg::Resize(Some((cols, rows))) => {
                    if cols > 0 && rows > 0 {
                        self.resizes.push(WinSize { cols, rows });
                    }
                }
                Msg::Resize(None) | Msg::BadJson | Msg::Init { right: None, .. } => {
                    self.expect_close = Some(1007)
                }
                Msg::Init { .. } | Msg::Pause | Msg::Resume | Msg::Ignored => {}
            },
        }
        let outcome = self
            .session
            .handle_message(bytes, self.clock, &mut self.wire);
        self.outcome(outcome, &format!("{msg:?} {bytes:x?}"));
        if let Some(code) = self.expect_close
            && self.phase != Phase::Ended
            && self.phase != Phase::Verdict
        {
            panic!("expected close {code} after {msg:?}");
        }
    }

    fn pump(&mut self) {
        while self.session.wants_input() {
            let Some((bytes, msg)) = self.inbox.pop_front() else {
                break;
            };
            self.deliver(&bytes, msg);
        }
    }

    fn ready(&mut self, what: &str) {
        let outcome = self.session.handle_ready(&mut self.wire);
        self.outcome(outcome, what);
        self.pump();
    }

    fn judge(&mut self) {
        if let Some(due) = self.policy.next_check_due() {
            self.clock = self.clock.max(due);
            self.policy.run_checks(self.clock);
        }
        self.ready("judge");
    }

    fn act(&mut self, a: &Action) {
        let message = match *a {
            Action::Init {
                token,
                cols,
                rows,
                later,
            } => {
                if later {
                    self.clock += Duration::from_secs(1);
                }
                let mut m = serde_json::Map::new();
                let presented = match token % 6 {
                    0 => Some(Some(TOKEN)),
                    1 => Some(Some("wrong")),
                    2 => Some(Some("")),
                    3 => Some(None),
                    4 => None,
                    _ => {
                        m.insert("AuthToken".into(), json!(7));
                        None
                    }
                };
                if let Some(t) = presented {
                    m.insert("AuthToken".into(), json!(t));
                }
                for (key, pick) in [("columns", cols), ("rows", rows)] {
                    if let Some(v) = size_value(pick) {
                        m.insert(key.into(), v);
                    }
                }
                let sizes = (size_model(cols), size_model(rows));
                let right = match (token % 6, sizes) {
                    (5, _) | (_, (Err(()), _) | (_, Err(()))) => None,
                    (0, _) => Some(true),
                    (1, _) => Some(false),
                    _ => Some(self.header_auth),
                };
                let size = match sizes {
                    (Ok(c), Ok(r)) if c > 0 && r > 0 => Some(WinSize { cols: c, rows: r }),
                    _ => None,
                };
                let bytes = serde_json::to_vec(&Json::Object(m)).expect("json");
                Some((bytes, Msg::Init { right, size }))
            }
            Action::Input { len, fill } => {
                let mut bytes = vec![b'0'];
                bytes.extend((0..len).map(|i| fill.wrapping_add(i)));
                Some((bytes, Msg::Input))
            }
            Action::Resize { cols, rows } => {
                let mut m = serde_json::Map::new();
                for (key, pick) in [("columns", cols), ("rows", rows)] {
                    if let Some(v) = size_value(pick) {
                        m.insert(key.into(), v);
                    }
                }
                let mut bytes = b"1".to_vec();
                bytes.extend(serde_json::to_vec(&Json::Object(m)).expect("json"));
                let size = match (size_model(cols), size_model(rows)) {
                    (Ok(c), Ok(r)) => Some((c, r)),
                    _ => None,
                };
                Some((bytes, Msg::Resize(size)))
            }
            Action::Pause => Some((b"2".to_vec(), Msg::Pause)),
            Action::Resume => Some((b"3".to_vec(), Msg::Resume)),
            Action::Garbage { pick, bytes } => {
                let (bytes, msg) = match GARBAGE.get(usize::from(pick) % (GARBAGE.len() + 1)) {
                    Some(g) => {
                        let msg = match g.first() {
                            None | Some(b'9' | 0xff) => Msg::Ignored,
                            Some(b'{') => Msg::Init {
                                right: None,
                                size: None,
                            },
                            _ => Msg::BadJson,
                        };
                        (g.to_vec(), msg)
                    }
                    None => {
                        let mut b = bytes.to_vec();
                        if b"0123{".contains(&b[0]) {
                            b[0] ^= 0x80;
                        }
                        (b, Msg::Ignored)
                    }
                };
                Some((bytes, msg))
            }
            Action::Output { len } => {
                self.fake.with(|p| {
                    if !p.launches.is_empty() && p.exit.is_none() && !p.closed {
                        let n = usize::from(len) * 4 + 1;
                        let start = p.printed.len();
                        let bytes: Vec<u8> = (start..start + n).map(|i| (i % 251) as u8).collect();
                        p.output.extend(&bytes);
                        p.printed.extend(bytes);
                    }
                });
                None
            }
            Action::Exit { code, close_pty } => {
                self.fake.with(|p| {
                    if !p.launches.is_empty() && p.exit.is_none() {
                        p.exit = Some(match code % 4 {
                            0 => ExitStatus::Exited(0),
                            1 => ExitStatus::Exited(1),
                            2 => ExitStatus::Exited(255),
                            _ => ExitStatus::Signaled(9),
                        });
                        p.closed |= close_pty;
                    }
                });
                None
            }
            Action::PtyClosed => {
                self.fake.with(|p| p.closed |= !p.launches.is_empty());
                None
            }
            Action::Room { n } => {
                self.fake.with(|p| p.input_room += usize::from(n) * 4);
                None
            }
            Action::Ready => {
                self.ready("ready");
                None
            }
            Action::ClientReads { n } => {
                self.wire.unsent = self.wire.unsent.saturating_sub(usize::from(n) * 4);
                None
            }
            Action::Drained => {
                self.wire.unsent = 0;
                let outcome = self.session.handle_drained(&mut self.wire);
                self.outcome(outcome, "drained");
                self.pump();
                None
            }
            Action::Judge => {
                self.judge();
                None
            }
        };
        if let Some(m) = message {
            self.inbox.push_back(m);
            self.pump();
        }
    }
}

fn policy() -> &'static Arc<Policy> {
    static POLICY: OnceLock<Arc<Policy>> = OnceLock::new();
    POLICY.get_or_init(|| Arc::new(Policy::new(Some(TOKEN.to_owned()), vec![], vec![])))
}

/// The `tty_session` target: see the module documentation.
pub fn check(script: &Script) {
    let policy = Arc::clone(policy());
    let (peer, clock) = fresh_run();
    policy.run_checks(clock);
    let limits = limits(script.setup);
    let read_only = script.setup & 4 != 0;
    let header_auth = script.setup & 8 != 0;
    if script.setup & 16 != 0 {
        // Three checks judged now spend the address's burst: the next one waits.
        for _ in 0..3 {
            let mut a = policy
                .admission(Some(peer), Waker::noop(), clock)
                .expect("room to wait");
            a.present("burst", clock);
            a.verdict();
        }
    }
    let fake = Fake::default();
    fake.with(|p| p.fail_launch = script.setup & 32 != 0);
    let mut config = Config::new(Command::new("fake-program"));
    config.limits = limits.clone();
    config.read_only = read_only;
    config.launcher = Arc::new(fake.clone());
    let mut admission = policy
        .admission(Some(peer), Waker::noop(), clock)
        .expect("room to wait");
    if header_auth {
        admission.present(TOKEN, clock);
    }
    let session = Session::new(Arc::new(config), admission, Some(Waker::noop()));
    let mut d = Driver {
        session,
        fake: fake.clone(),
        wire: Wire::default(),
        policy,
        clock,
        limits,
        read_only,
        header_auth,
        inbox: VecDeque::new(),
        phase: Phase::AwaitingInit,
        expect_close: None,
        input: Vec::new(),
        resizes: Vec::new(),
        launch_size: None,
        first_frames: 0,
    };
    for a in script.actions.iter().take(MAX_ACTIONS) {
        d.act(a);
    }
    // The end: the token judged, room for all input, the client reads everything.
    d.judge();
    if d.phase == Phase::Running {
        d.fake.with(|p| p.input_room = usize::MAX);
        d.ready("all the room");
        let (taken, closed_seen) = d.fake.with(|p| (p.input.clone(), p.closed_seen));
        if d.phase == Phase::Running && !closed_seen {
            assert_eq!(
                taken, d.input,
                "all input reaches the program once it has room"
            );
        }
        for _ in 0..1000 {
            if d.phase != Phase::Running || d.fake.with(|p| p.output.is_empty()) {
                break;
            }
            d.wire.unsent = 0;
            let outcome = d.session.handle_drained(&mut d.wire);
            d.outcome(outcome, "the final drain");
        }
    }
    d.session.close();
    assert!(d.session.is_closed() && d.session.sources().is_empty());
    let (launched, hung_up) = fake.with(|p| (!p.launches.is_empty(), p.hung_up));
    assert!(!launched || hung_up, "close() hangs the program up");
    assert_eq!(d.session.held_bytes(), 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use arbitrary::Unstructured;

    #[test]
    fn encode_is_read_back() {
        let script = Script {
            setup: 0x2a,
            actions: vec![
                Action::Init {
                    token: 0,
                    cols: 4,
                    rows: 3,
                    later: true,
                },
                Action::Garbage {
                    pick: 99,
                    bytes: *b"0abc",
                },
                Action::Judge,
            ],
        };
        let bytes = script.encode();
        let back = Script::arbitrary_take_rest(Unstructured::new(&bytes)).expect("decodes");
        assert_eq!(back, script);
    }
}
