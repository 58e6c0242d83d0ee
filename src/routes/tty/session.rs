//! One terminal session per WebSocket connection: the `tty` protocol on one side, a shell on a PTY on
//! the other.
//!
//! The session does not own the socket or the event loop. It is driven by three calls and writes
//! through a [`Transport`] (the connection's sender):
//! * [`Session::handle_message`] for every complete WebSocket message;
//! * [`Session::handle_ready`] whenever one of its [`Session::sources`] was ready, it was woken, or the
//!   connection's unsent output drained (spurious calls are harmless);
//! * [`Session::close`] when the connection goes away.
//!
//! Lifecycle: nothing runs until the first message, JSON `{"AuthToken","columns","rows"}`; its
//! token is judged in its turn ([`crate::auth`]), and once admitted (or with auth off, or with a right
//! `Authorization` header at the upgrade) the program starts at that size. When it exits, everything it printed is sent, then a close `1000` with the reason
//! `exit N` or `signal N`. When the client goes away first, the process group gets `SIGHUP`, then
//! `SIGKILL` after a grace period, and is reaped (see [`super::reaper`]).
//!
//! Flow control and memory: output is read only while the client has not paused it and the
//! connection's unsent bytes are under `high_water`; once over, reading stops (the program then blocks
//! in `write`) until they are back under `low_water`. Output is read until `EAGAIN` into one frame of at
//! most `chunk` bytes. Input the PTY did not take is kept, and [`Session::wants_input`] turns false
//! while it is over `max_pending_input`, so the server stops reading the socket.
#![forbid(unsafe_code)]

use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::proto::{self, ClientMessage, DecodeError, ServerMessage};
use super::sessions::{SessionSlot, Sessions};
use super::sys::{self, Command, PtyRead};
use super::terminal::{Launcher, PtyLauncher, Terminal};
use crate::auth::{Admission, Verdict};
use crate::routes::Waker;

/// Close codes the session sends (RFC 6455 §7.4.1).
pub mod close_code {
    /// The program exited: the reason is `exit N` or `signal N`.
    pub const NORMAL: u16 = 1000;
    /// A message that is not valid for the `tty` protocol (bad JSON).
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// Authentication failed, or the first message was not the JSON init message.
    pub const POLICY_VIOLATION: u16 = 1008;
    /// The program could not be started.
    pub const INTERNAL_ERROR: u16 = 1011;
    /// `--max-sessions` programs are running already.
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// Sizes and times that bound a session.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most bytes of output in one frame.
    pub chunk: usize,
    /// Stop reading the PTY when the connection has this many unsent bytes.
    pub high_water: usize,
    /// Resume reading once unsent bytes are at or below this, or when
    /// [`Session::handle_drained`] is called. The server must call the latter when output that
    /// passed `high_water` drained: in wsbridge, `high_water` is set above the server's own mark,
    /// so the server has paused and calls `Ready::OutputDrained`.
    pub low_water: usize,
    /// Input kept for the PTY beyond which [`Session::wants_input`] is false.
    pub max_pending_input: usize,
    /// Time between `SIGHUP` and `SIGKILL` once the client is gone.
    pub hangup_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            chunk: 64 * 1024,
            high_water: 256 * 1024,
            low_water: 64 * 1024,
            max_pending_input: 64 * 1024,
            hangup_grace: Duration::from_secs(3),
        }
    }
}

/// The terminal route's options, shared by every session.
#[derive(Debug, Clone)]
pub struct Config {
    /// What runs on every terminal (program, arguments, working directory). The client never chooses.
    pub command: Command,
    /// `--read-only-tty`: output only, input is dropped.
    pub read_only: bool,
    /// `--signal`: what the program's process group gets when its client is gone (then
    /// `SIGKILL` after the grace period).
    pub hangup_signal: sys::Signal,
    /// `--client-option KEY=VALUE` (ttyd's `-t`): xterm.js and page options, sent in the
    /// preferences message.
    pub client_options: serde_json::Map<String, serde_json::Value>,
    /// The running sessions (`--max-sessions`; `--once` and `--exit-no-conn` watch them).
    pub sessions: Arc<Sessions>,
    pub limits: Limits,
    /// What starts the program: real PTYs, or a fake in tests.
    pub launcher: Arc<dyn Launcher>,
}

impl std::fmt::Debug for dyn Launcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Launcher")
    }
}

impl Config {
    pub fn new(command: Command) -> Config {
        Config {
            command,
            read_only: false,
            hangup_signal: sys::Signal::Hangup,
            client_options: serde_json::Map::new(),
            sessions: Sessions::new(usize::MAX),
            limits: Limits::default(),
            launcher: Arc::new(PtyLauncher),
        }
    }
}

/// Where the session's messages go: the connection's sender.
pub trait Transport {
    /// Queues one binary message.
    fn send_binary(&mut self, payload: &[u8]);
    /// Queues a close frame. The session sends nothing after it.
    fn send_close(&mut self, code: u16, reason: &str);
    /// Bytes queued on the connection and not yet written to the socket, including what this session
    /// queued during the current call.
    fn unsent(&self) -> usize;
}

/// What the caller must do after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing new.
    Continue,
    /// The program started: register every fd of [`Session::sources`] (readable and writable,
    /// edge-triggered is fine) with the event loop.
    Spawned,
    /// The session queued a close frame and is finished; deregister its sources.
    Closed,
    /// Like [`Outcome::Closed`], because the token was wrong (the server may slow such peers down).
    AuthFailed,
}

enum State {
    AwaitingInit,
    /// The init message's token waits for its verdict, then the program starts at `size`.
    AwaitingVerdict {
        size: sys::WinSize,
    },
    Running(Box<Running>),
    /// The close frame is queued and the program gone or hung up; the fds stay open (they may still
    /// be watched) until [`Session::close`].
    Ended {
        term: Box<dyn Terminal>,
    },
    Closed,
}

/// Input waiting for the PTY. The PTY takes a few KiB per write, so the bytes it took are skipped by an
/// offset, not moved: draining the front of a 64 MiB message after every write moved the whole rest
/// each time, which froze the loop for seconds (issue 12's largest-message measurement).
#[derive(Default)]
struct PendingInput {
    bytes: Vec<u8>,
    /// How many of `bytes` the PTY has taken.
    taken: usize,
}

impl PendingInput {
    fn push(&mut self, more: &[u8]) {
        // Move the untaken rest to the front before growing, so the buffer never holds taken bytes
        // for long; at most one move of the rest per message.
        if self.taken > 0 {
            self.bytes.drain(..self.taken);
            self.taken = 0;
        }
        self.bytes.extend_from_slice(more);
    }

    fn untaken(&self) -> &[u8] {
        &self.bytes[self.taken..]
    }

    fn len(&self) -> usize {
        self.bytes.len() - self.taken
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The PTY took `n` more bytes. Once all is taken, a buffer grown past `keep` by one large
    /// message is given back.
    fn take(&mut self, n: usize, keep: usize) {
        self.taken = (self.taken + n).min(self.bytes.len());
        if self.taken == self.bytes.len() {
            self.clear();
            if self.bytes.capacity() > keep {
                self.bytes = Vec::new();
            }
        }
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.taken = 0;
    }

    fn held_bytes(&self) -> usize {
        self.bytes.capacity()
    }
}

struct Running {
    term: Box<dyn Terminal>,
    /// Its place in `--max-sessions`, given back when the program is hung up.
    _slot: SessionSlot,
    /// Input the PTY has not taken yet.
    input: PendingInput,
    /// The output frame buffer: `'0'` then room for `chunk` bytes.
    frame: Vec<u8>,
    client_paused: bool,
    /// Over `high_water`: reading stays off until unsent is at or below `low_water`.
    throttled: bool,
    /// The PTY master reported `EIO`: no more output will come.
    pty_closed: bool,
}

/// One terminal session. See the module documentation.
pub struct Session {
    config: Arc<Config>,
    /// The connection's standing with the token.
    admission: Admission,
    waker: Option<Waker>,
    state: State,
}

impl Session {
    /// A session waiting for its first message. `admission`: the connection's standing with the
    /// token (a bearer header may be presented already). `waker`: called from another thread to
    /// make the server call [`Session::handle_ready`] (when the token is judged, and where
    /// `pidfd_open` is unavailable, when the program exits).
    pub fn new(config: Arc<Config>, admission: Admission, waker: Option<Waker>) -> Session {
        Session {
            config,
            admission,
            waker,
            state: State::AwaitingInit,
        }
    }

    /// Whether the client may use the terminal.
    pub fn is_admitted(&self) -> bool {
        self.admission.is_admitted()
    }

    /// Heap bytes the session holds for its client: input not yet taken by the PTY and the
    /// output frame (for the server's memory budget).
    pub fn held_bytes(&self) -> usize {
        match &self.state {
            State::Running(r) => r.input.held_bytes() + r.frame.capacity(),
            _ => 0,
        }
    }

    /// The fds to register with the event loop once [`Outcome::Spawned`] was returned: the PTY master,
    /// and the child's pidfd when there is one. They stay open until [`Session::close`] or drop, so
    /// deregister them before.
    pub fn sources(&self) -> Vec<RawFd> {
        match &self.state {
            State::Running(r) => r.term.fds(),
            State::Ended { term } => term.fds(),
            State::AwaitingInit | State::AwaitingVerdict { .. } | State::Closed => Vec::new(),
        }
    }

    /// The program's pid, once started.
    pub fn pid(&self) -> Option<u32> {
        match &self.state {
            State::Running(r) => Some(r.term.pid()),
            _ => None,
        }
    }

    /// Whether the session has finished (close frame queued, or closed by the caller).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Ended { .. } | State::Closed)
    }

    /// False while the input the PTY has not taken is over the limit: stop reading the socket.
    pub fn wants_input(&self) -> bool {
        match &self.state {
            State::Running(r) => r.input.len() < self.config.limits.max_pending_input,
            // Nothing more is read until the token is judged.
            State::AwaitingVerdict { .. } => false,
            _ => true,
        }
    }

    /// One complete message from the client (binary, or text with the same bytes), at `now`.
    pub fn handle_message(&mut self, msg: &[u8], now: Instant, tx: &mut dyn Transport) -> Outcome {
        match &mut self.state {
            State::Ended { .. } | State::Closed | State::AwaitingVerdict { .. } => {
                Outcome::Continue
            }
            State::AwaitingInit => self.handle_init(msg, now, tx),
            State::Running(r) => {
                match proto::decode_client(msg) {
                    Ok(ClientMessage::Input(bytes)) => {
                        if !self.config.read_only && !r.pty_closed {
                            r.input.push(bytes);
                        }
                    }
                    Ok(ClientMessage::Resize(size)) => {
                        if size.cols > 0
                            && size.rows > 0
                            && let Err(e) = r.term.resize(size)
                        {
                            log::debug!("tty: resize: {e}");
                        }
                    }
                    Ok(ClientMessage::Pause) => r.client_paused = true,
                    Ok(ClientMessage::Resume) => r.client_paused = false,
                    // Like ttyd: a second init message is ignored.
                    Ok(ClientMessage::Init(_)) => {}
                    // Forward compatible with newer ttyd clients: unknown commands are ignored.
                    Err(e @ (DecodeError::UnknownType(_) | DecodeError::Empty)) => {
                        log::debug!("tty: ignored message: {e}");
                    }
                    Err(e @ DecodeError::BadJson(_)) => {
                        log::debug!("tty: {e}");
                        return self.fail(tx, close_code::INVALID_PAYLOAD, "bad resize message");
                    }
                }
                self.pump(tx)
            }
        }
    }

    fn handle_init(&mut self, msg: &[u8], now: Instant, tx: &mut dyn Transport) -> Outcome {
        let init = match proto::decode_client(msg) {
            Ok(ClientMessage::Init(init)) => init,
            Ok(_) | Err(_) => {
                return self.fail(
                    tx,
                    close_code::POLICY_VIOLATION,
                    "expected the init message",
                );
            }
        };
        if let Some(token) = init.auth_token.as_deref().filter(|t| !t.is_empty()) {
            self.admission.present(token, now);
        }
        self.state = State::AwaitingVerdict {
            size: init.size.unwrap_or_default(),
        };
        self.settle_admission(tx)
    }

    /// Start the program once the token is judged right; refuse the client if wrong.
    fn settle_admission(&mut self, tx: &mut dyn Transport) -> Outcome {
        let State::AwaitingVerdict { size } = self.state else {
            return Outcome::Continue;
        };
        match self.admission.verdict() {
            Verdict::Pending => return Outcome::Continue,
            Verdict::Admitted => {}
            Verdict::Refused | Verdict::Absent => {
                self.fail(tx, close_code::POLICY_VIOLATION, "authentication failed");
                return Outcome::AuthFailed;
            }
        }
        self.start(size, tx)
    }

    /// Start the program at `size`.
    fn start(&mut self, size: sys::WinSize, tx: &mut dyn Transport) -> Outcome {
        let Some(slot) = self.config.sessions.acquire() else {
            // RFC 6455 §7.4.1: 1013, try again later.
            return self.fail(
                tx,
                close_code::TRY_AGAIN_LATER,
                "too many terminal sessions",
            );
        };
        let launched = self
            .config
            .launcher
            .launch(&self.config.command, size, self.waker.as_ref());
        let term = match launched {
            Ok(term) => term,
            Err(e) => {
                log::error!("tty: cannot start {:?}: {e}", self.config.command.program);
                return self.fail(tx, close_code::INTERNAL_ERROR, "cannot start the program");
            }
        };
        log::info!(
            "tty: started {:?} (pid {}) at {}x{}",
            self.config.command.program,
            term.pid(),
            size.cols,
            size.rows
        );
        let mut frame = vec![0; 1 + self.config.limits.chunk.max(1)];
        frame[0] = proto::OUTPUT;
        self.state = State::Running(Box::new(Running {
            term,
            _slot: slot,
            input: PendingInput::default(),
            frame,
            client_paused: false,
            throttled: false,
            pty_closed: false,
        }));
        let program = std::path::Path::new(&self.config.command.program)
            .display()
            .to_string();
        let title = match sys::hostname() {
            Some(host) => format!("{program} ({host})"),
            None => program,
        };
        let mut prefs = self.config.client_options.clone();
        if self.config.read_only {
            prefs.insert("disableStdin".into(), true.into());
        }
        let prefs = serde_json::Value::Object(prefs).to_string();
        let mut buf = Vec::new();
        proto::encode_server(&ServerMessage::Title(&title), &mut buf);
        tx.send_binary(&buf);
        buf.clear();
        proto::encode_server(&ServerMessage::Preferences(&prefs), &mut buf);
        tx.send_binary(&buf);
        // No reading yet: registering the fds reports whatever is already pending.
        Outcome::Spawned
    }

    /// A source was ready, or the session was woken.
    pub fn handle_ready(&mut self, tx: &mut dyn Transport) -> Outcome {
        if let State::AwaitingVerdict { .. } = self.state {
            return self.settle_admission(tx);
        }
        self.pump(tx)
    }

    /// The connection's unsent output drained (the server's low-water mark): reading the PTY
    /// resumes whatever `low_water` says.
    pub fn handle_drained(&mut self, tx: &mut dyn Transport) -> Outcome {
        if let State::Running(r) = &mut self.state {
            r.throttled = false;
        }
        self.pump(tx)
    }

    /// Moves input to the PTY, output to the client, and ends the session once the program has exited
    /// and its output is flushed.
    fn pump(&mut self, tx: &mut dyn Transport) -> Outcome {
        let State::Running(r) = &mut self.state else {
            return Outcome::Continue;
        };
        let limits = &self.config.limits;

        // Input first: a full PTY input queue is what makes the program's output stall less often.
        while !r.input.is_empty() {
            match r.term.write(r.input.untaken()) {
                Ok(n) => r.input.take(n, limits.max_pending_input),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // EIO: the terminal is gone; nobody will read this input.
                    log::debug!("tty: write to pty: {e}");
                    r.input.clear();
                }
            }
        }

        // Learn of the exit before reading, so that a read ending in EAGAIN or EIO afterwards proves
        // every byte the program wrote has been read.
        let exit = match r.term.try_wait() {
            Ok(status) => status,
            Err(e) => {
                log::warn!("tty: waitpid({}): {e}", r.term.pid());
                None
            }
        };

        let mut drained = r.pty_closed;
        if r.throttled && tx.unsent() <= limits.low_water {
            r.throttled = false;
        }
        while !r.client_paused && !r.throttled && !r.pty_closed {
            if tx.unsent() >= limits.high_water {
                r.throttled = true;
                break;
            }
            // Coalesce: read until EAGAIN (or the frame is full) into one message.
            let mut filled = 1;
            let mut end = None;
            while filled < r.frame.len() {
                match r.term.read(&mut r.frame[filled..]) {
                    Ok(PtyRead::Data(n)) => filled += n,
                    Ok(PtyRead::WouldBlock) => {
                        end = Some(false);
                        break;
                    }
                    Ok(PtyRead::Closed) => {
                        end = Some(true);
                        break;
                    }
                    Err(e) => {
                        log::warn!("tty: read from pty: {e}");
                        end = Some(true);
                        break;
                    }
                }
            }
            if filled > 1 {
                tx.send_binary(&r.frame[..filled]);
            }
            match end {
                Some(closed) => {
                    r.pty_closed = closed;
                    drained = true;
                    break;
                }
                None => continue,
            }
        }

        match exit {
            Some(status) if drained => {
                log::info!("tty: pid {} ended: {status}", r.term.pid());
                let reason = status.to_string();
                self.finish();
                tx.send_close(close_code::NORMAL, &reason);
                Outcome::Closed
            }
            _ => Outcome::Continue,
        }
    }

    /// Queues a close frame and hangs up the program, if any.
    fn fail(&mut self, tx: &mut dyn Transport, code: u16, reason: &str) -> Outcome {
        log::debug!("tty: closing with {code} {reason}");
        tx.send_close(code, reason);
        self.finish();
        Outcome::Closed
    }

    /// The connection is going away: hang up the program (SIGHUP now, SIGKILL after the grace
    /// period, reaped off the loop) and close the PTY and pidfd. Deregister [`Session::sources`]
    /// before. Idempotent; also done on drop.
    pub fn close(&mut self) {
        self.finish();
        self.state = State::Closed;
    }

    /// Ends the program's part: a reaped child is forgotten, a live one is hung up and handed to the
    /// reaper. The fds stay open in [`State::Ended`].
    fn finish(&mut self) {
        if let State::Running(r) = std::mem::replace(&mut self.state, State::Closed) {
            let mut term = r.term;
            term.hang_up(self.config.limits.hangup_grace, self.config.hangup_signal);
            self.state = State::Ended { term };
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "session_logic_tests.rs"]
mod logic_tests;
