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
//! Lifecycle: nothing runs until the first message, JSON `{"AuthToken","columns","rows"}`; with a good
//! token (or auth off, or a token already checked from the `Authorization` header) the program starts
//! at that size. When it exits, everything it printed is sent, then a close `1000` with the reason
//! `exit N` or `signal N`. When the client goes away first, the process group gets `SIGHUP`, then
//! `SIGKILL` after a grace period, and is reaped (see [`super::reaper`]).
//!
//! Flow control and memory: output is read only while the client has not paused it and the
//! connection's unsent bytes are under `high_water`; once over, reading stops (the program then blocks
//! in `write`) until they are back under `low_water`. Output is read until `EAGAIN` into one frame of at
//! most `chunk` bytes. Input the PTY did not take is kept, and [`Session::wants_input`] turns false
//! while it is over `max_pending_input`, so the server stops reading the socket.
#![forbid(unsafe_code)]

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use super::proto::{self, ClientMessage, DecodeError, ServerMessage};
use super::reaper::{self, Waker};
use super::sys::{self, Child, Command, Pty, PtyRead};
use std::net::IpAddr;

use crate::server::auth::{Policy, constant_time_eq};

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
}

/// Who may use the terminal.
#[derive(Clone)]
pub enum Auth {
    /// `--no-auth`: anyone who can connect.
    Disabled,
    /// The first message's `AuthToken` must equal this token (compared in constant time).
    Token(String),
    /// The server's policy decides (its token, or none with `--no-auth`); failures are counted there.
    Policy(Arc<Policy>),
}

impl std::fmt::Debug for Auth {
    /// Never prints the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Disabled => write!(f, "Disabled"),
            Auth::Token(_) => write!(f, "Token(<redacted>)"),
            Auth::Policy(p) => write!(f, "Policy(auth required: {})", p.auth_required()),
        }
    }
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
    pub auth: Auth,
    pub limits: Limits,
}

impl Config {
    pub fn new(command: Command, auth: Auth) -> Config {
        Config {
            command,
            read_only: false,
            auth,
            limits: Limits::default(),
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
    Running(Box<Running>),
    /// The close frame is queued and the program gone or hung up; the fds stay open (they may still
    /// be registered) until [`Session::close`].
    Ended {
        pty: Pty,
        pidfd: Option<OwnedFd>,
    },
    Closed,
}

struct Running {
    pty: Pty,
    child: Child,
    /// Input the PTY has not taken yet.
    input: Vec<u8>,
    /// The output frame buffer: `'0'` then room for `chunk` bytes.
    frame: Vec<u8>,
    client_paused: bool,
    /// Over `high_water`: reading stays off until unsent is at or below `low_water`.
    throttled: bool,
    /// The PTY master reported `EIO`: no more output will come.
    pty_closed: bool,
    /// Exit watched by the reaper thread (no pidfd).
    watched: bool,
}

/// One terminal session. See the module documentation.
pub struct Session {
    config: Arc<Config>,
    preauthenticated: bool,
    /// The client's address, whose wrong tokens the policy counts.
    peer: Option<IpAddr>,
    waker: Option<Waker>,
    state: State,
}

impl Session {
    /// A session waiting for its first message. `preauthenticated`: the server already checked the
    /// token (an `Authorization: Bearer` header). `waker`: called from another thread to make the
    /// server call [`Session::handle_ready`]; needed only where `pidfd_open` is unavailable.
    pub fn new(config: Arc<Config>, preauthenticated: bool, waker: Option<Waker>) -> Session {
        Session {
            config,
            preauthenticated,
            peer: None,
            waker,
            state: State::AwaitingInit,
        }
    }

    /// The client's address: wrong tokens from it are counted by the policy, which makes it
    /// wait after a few ([`Policy::verify_token`]).
    pub fn with_peer(mut self, peer: Option<IpAddr>) -> Session {
        self.peer = peer;
        self
    }

    /// The fds to register with the event loop once [`Outcome::Spawned`] was returned: the PTY master,
    /// and the child's pidfd when there is one. They stay open until [`Session::close`] or drop, so
    /// deregister them before.
    pub fn sources(&self) -> Vec<RawFd> {
        match &self.state {
            State::Running(r) => std::iter::once(r.pty.as_raw_fd())
                .chain(r.child.pidfd())
                .collect(),
            State::Ended { pty, pidfd } => std::iter::once(pty.as_raw_fd())
                .chain(pidfd.as_ref().map(|fd| fd.as_raw_fd()))
                .collect(),
            State::AwaitingInit | State::Closed => Vec::new(),
        }
    }

    /// The program's pid, once started.
    pub fn pid(&self) -> Option<u32> {
        match &self.state {
            State::Running(r) => Some(r.child.pid()),
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
            _ => true,
        }
    }

    /// One complete message from the client (binary, or text with the same bytes).
    pub fn handle_message(&mut self, msg: &[u8], tx: &mut dyn Transport) -> Outcome {
        match &mut self.state {
            State::Ended { .. } | State::Closed => Outcome::Continue,
            State::AwaitingInit => self.handle_init(msg, tx),
            State::Running(r) => {
                match proto::decode_client(msg) {
                    Ok(ClientMessage::Input(bytes)) => {
                        if !self.config.read_only && !r.pty_closed {
                            r.input.extend_from_slice(bytes);
                        }
                    }
                    Ok(ClientMessage::Resize(size)) => {
                        if size.cols > 0
                            && size.rows > 0
                            && let Err(e) = r.pty.resize(size)
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

    fn handle_init(&mut self, msg: &[u8], tx: &mut dyn Transport) -> Outcome {
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
        let authorised = self.preauthenticated
            || match &self.config.auth {
                Auth::Disabled => true,
                Auth::Token(expected) => init
                    .auth_token
                    .as_deref()
                    .is_some_and(|given| constant_time_eq(expected.as_bytes(), given.as_bytes())),
                Auth::Policy(policy) => {
                    !policy.auth_required()
                        || init
                            .auth_token
                            .as_deref()
                            .is_some_and(|given| policy.verify_token(given, self.peer))
                }
            };
        if !authorised {
            self.fail(tx, close_code::POLICY_VIOLATION, "authentication failed");
            return Outcome::AuthFailed;
        }
        let size = init.size.unwrap_or_default();
        let (pty, child) = match sys::spawn(&self.config.command, size) {
            Ok(spawned) => spawned,
            Err(e) => {
                log::error!("tty: cannot start {:?}: {e}", self.config.command.program);
                return self.fail(tx, close_code::INTERNAL_ERROR, "cannot start the program");
            }
        };
        log::info!(
            "tty: started {:?} (pid {}) at {}x{}",
            self.config.command.program,
            child.pid(),
            size.cols,
            size.rows
        );
        let watched = child.pidfd().is_none();
        if watched {
            if let Some(waker) = &self.waker {
                reaper::watch(child.pid(), waker.clone());
            } else {
                log::warn!("tty: no pidfd and no waker: the program's exit is noticed only on EIO");
            }
        }
        let mut frame = vec![0; 1 + self.config.limits.chunk.max(1)];
        frame[0] = proto::OUTPUT;
        self.state = State::Running(Box::new(Running {
            pty,
            child,
            input: Vec::new(),
            frame,
            client_paused: false,
            throttled: false,
            pty_closed: false,
            watched,
        }));
        let program = std::path::Path::new(&self.config.command.program)
            .display()
            .to_string();
        let title = match sys::hostname() {
            Some(host) => format!("{program} ({host})"),
            None => program,
        };
        let prefs = if self.config.read_only {
            r#"{"disableStdin":true}"#
        } else {
            "{}"
        };
        let mut buf = Vec::new();
        proto::encode_server(&ServerMessage::Title(&title), &mut buf);
        tx.send_binary(&buf);
        buf.clear();
        proto::encode_server(&ServerMessage::Preferences(prefs), &mut buf);
        tx.send_binary(&buf);
        // No reading yet: registering the fds reports whatever is already pending.
        Outcome::Spawned
    }

    /// A source was ready, or the session was woken.
    pub fn handle_ready(&mut self, tx: &mut dyn Transport) -> Outcome {
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
            match r.pty.write(&r.input) {
                Ok(n) => {
                    r.input.drain(..n);
                }
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
        let exit = match r.child.try_wait() {
            Ok(status) => status,
            Err(e) => {
                log::warn!("tty: waitpid({}): {e}", r.child.pid());
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
                match r.pty.read(&mut r.frame[filled..]) {
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
                log::info!("tty: pid {} ended: {status}", r.child.pid());
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
            let Running {
                pty,
                mut child,
                watched,
                ..
            } = *r;
            if watched {
                reaper::unwatch(child.pid());
            }
            let pidfd = child.take_pidfd();
            reaper::hang_up(child, self.config.limits.hangup_grace);
            self.state = State::Ended { pty, pidfd };
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::tty::sys::WinSize;
    use mio::unix::SourceFd;
    use mio::{Events, Interest, Poll, Token};
    use std::time::Instant;

    /// The connection as the session sees it: frames queued, and a client that reads them or not.
    #[derive(Default)]
    struct Wire {
        queued: Vec<Vec<u8>>,
        unsent: usize,
        close: Option<(u16, String)>,
        max_unsent: usize,
    }

    impl Transport for Wire {
        fn send_binary(&mut self, payload: &[u8]) {
            assert!(self.close.is_none(), "frame after close");
            self.unsent += payload.len() + 10;
            self.max_unsent = self.max_unsent.max(self.unsent);
            self.queued.push(payload.to_vec());
        }
        fn send_close(&mut self, code: u16, reason: &str) {
            assert!(self.close.is_none(), "two closes");
            self.close = Some((code, reason.to_owned()));
        }
        fn unsent(&self) -> usize {
            self.unsent
        }
    }

    /// A session, the event loop it is registered with, and its peer.
    struct Harness {
        session: Session,
        poll: Poll,
        wire: Wire,
        /// The client reads (drains `unsent`) after each step.
        reading: bool,
        /// Output received by the client.
        output: Vec<u8>,
        frames: Vec<Vec<u8>>,
        registered: Vec<RawFd>,
    }

    const TOKEN: &str = "s3cret-token";

    fn config(program: &str, args: &[&str]) -> Config {
        let mut command = Command::new(program);
        command.args = args.iter().map(Into::into).collect();
        let mut config = Config::new(command, Auth::Token(TOKEN.into()));
        config.limits.hangup_grace = Duration::from_millis(300);
        config
    }

    impl Harness {
        fn new(config: Config) -> Harness {
            let poll = Poll::new().unwrap();
            let waker = Arc::new(mio::Waker::new(poll.registry(), Token(1)).unwrap());
            let waker: Waker = Arc::new(move || waker.wake().unwrap());
            Harness {
                session: Session::new(Arc::new(config), false, Some(waker)),
                poll,
                wire: Wire::default(),
                reading: true,
                output: Vec::new(),
                frames: Vec::new(),
                registered: Vec::new(),
            }
        }

        fn outcome(&mut self, outcome: Outcome) -> Outcome {
            if outcome == Outcome::Spawned {
                for fd in self.session.sources() {
                    self.poll
                        .registry()
                        .register(
                            &mut SourceFd(&fd),
                            Token(0),
                            Interest::READABLE | Interest::WRITABLE,
                        )
                        .unwrap();
                    self.registered.push(fd);
                }
            }
            if matches!(outcome, Outcome::Closed | Outcome::AuthFailed) {
                self.deregister();
            }
            self.deliver();
            outcome
        }

        fn deregister(&mut self) {
            for fd in self.registered.drain(..) {
                self.poll.registry().deregister(&mut SourceFd(&fd)).unwrap();
            }
        }

        /// The client reads what was sent, if it is reading. Returns whether anything drained.
        fn deliver(&mut self) -> bool {
            if !self.reading || self.wire.queued.is_empty() {
                return false;
            }
            for frame in self.wire.queued.drain(..) {
                if frame.first() == Some(&proto::OUTPUT) {
                    self.output.extend_from_slice(&frame[1..]);
                }
                self.frames.push(frame);
            }
            self.wire.unsent = 0;
            true
        }

        fn send(&mut self, msg: &ClientMessage<'_>) -> Outcome {
            let mut buf = Vec::new();
            proto::encode_client(msg, &mut buf);
            self.send_raw(&buf)
        }

        fn send_raw(&mut self, msg: &[u8]) -> Outcome {
            let o = self.session.handle_message(msg, &mut self.wire);
            self.outcome(o)
        }

        fn init(&mut self, size: WinSize) -> Outcome {
            self.send(&ClientMessage::Init(proto::Init {
                auth_token: Some(TOKEN.into()),
                size: Some(size),
            }))
        }

        /// Runs the event loop until `done` or the timeout; the server's side of the contract.
        fn run_until(&mut self, timeout: Duration, mut done: impl FnMut(&Harness) -> bool) -> bool {
            let deadline = Instant::now() + timeout;
            let mut events = Events::with_capacity(8);
            while !done(self) {
                let now = Instant::now();
                if now >= deadline || self.session.is_closed() {
                    return done(self);
                }
                self.poll
                    .poll(
                        &mut events,
                        Some((deadline - now).min(Duration::from_millis(50))),
                    )
                    .unwrap();
                if !events.is_empty() {
                    let o = self.session.handle_ready(&mut self.wire);
                    self.outcome(o);
                }
                // The server calls handle_ready when the unsent output drained.
                if self.deliver() || (self.reading && self.wire.unsent == 0 && events.is_empty()) {
                    let o = self.session.handle_ready(&mut self.wire);
                    self.outcome(o);
                }
            }
            true
        }

        fn output_text(&self) -> String {
            String::from_utf8_lossy(&self.output).into_owned()
        }

        fn wait_output(&mut self, needle: &str) {
            let found = self.run_until(Duration::from_secs(10), |h| {
                h.output_text().contains(needle)
            });
            assert!(found, "no {needle:?} in {:?}", self.output_text());
        }

        fn wait_close(&mut self) -> (u16, String) {
            self.run_until(Duration::from_secs(10), |h| h.wire.close.is_some());
            self.wire.close.clone().expect("no close")
        }
    }

    fn wait_gone(pid: u32) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            assert!(
                Instant::now() < deadline,
                "pid {pid} still there (zombie or alive)"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn echo_through_the_session() {
        let mut h = Harness::new(config("/bin/sh", &[]));
        assert_eq!(h.init(WinSize::default()), Outcome::Spawned);
        // Title then preferences come first.
        assert_eq!(h.frames[0][0], proto::SET_WINDOW_TITLE);
        assert_eq!(h.frames[1], b"2{}");
        h.send(&ClientMessage::Input(b"echo $((6*7))\r"));
        h.wait_output("42\r\n");
        h.send(&ClientMessage::Input(b"exit 3\r"));
        assert_eq!(h.wait_close(), (1000, "exit 3".into()));
        assert!(h.session.is_closed());
    }

    #[test]
    fn resize_then_stty_size() {
        let mut h = Harness::new(config("sh", &[]));
        h.init(WinSize { cols: 80, rows: 24 });
        h.send(&ClientMessage::Resize(WinSize {
            cols: 100,
            rows: 30,
        }));
        h.send(&ClientMessage::Input(b"stty size\r"));
        h.wait_output("30 100");
    }

    #[test]
    fn initial_size_is_used() {
        let mut h = Harness::new(config("sh", &["-c", "stty size"]));
        h.init(WinSize {
            cols: 132,
            rows: 43,
        });
        assert_eq!(h.wait_close(), (1000, "exit 0".into()));
        assert!(h.output_text().contains("43 132"), "{:?}", h.output_text());
    }

    #[test]
    fn all_output_arrives_before_the_close() {
        let mut h = Harness::new(config("sh", &["-c", "seq 1 30000; exit 7"]));
        h.init(WinSize::default());
        assert_eq!(h.wait_close(), (1000, "exit 7".into()));
        let text = h.output_text();
        assert!(
            text.ends_with("29999\r\n30000\r\n"),
            "{:?}",
            &text[text.len().saturating_sub(50)..]
        );
        // Coalesced: far fewer frames than lines.
        assert!(h.frames.len() < 1000, "{} frames", h.frames.len());
    }

    #[test]
    fn signal_is_reported() {
        let mut h = Harness::new(config("sh", &["-c", "kill -KILL $$"]));
        h.init(WinSize::default());
        assert_eq!(h.wait_close(), (1000, "signal 9".into()));
    }

    #[test]
    fn exit_without_pidfd_uses_the_watcher() {
        let mut cfg = config("sh", &["-c", "sleep 0.2; exit 4"]);
        cfg.command.use_pidfd = false;
        let mut h = Harness::new(cfg);
        h.init(WinSize::default());
        assert_eq!(h.session.sources().len(), 1);
        assert_eq!(h.wait_close(), (1000, "exit 4".into()));
    }

    #[test]
    fn exit_while_a_background_job_holds_the_terminal() {
        // The shell exits; `sleep` keeps the slave open, so no EIO: the pidfd tells us.
        let mut h = Harness::new(config("sh", &["-c", "sleep 30 & echo started; exit 5"]));
        h.init(WinSize::default());
        assert_eq!(h.wait_close(), (1000, "exit 5".into()));
        assert!(h.output_text().contains("started"));
    }

    #[test]
    fn bad_token_is_refused_and_nothing_runs() {
        let mut h = Harness::new(config("sh", &[]));
        let o = h.send(&ClientMessage::Init(proto::Init {
            auth_token: Some("wrong".into()),
            size: None,
        }));
        assert_eq!(o, Outcome::AuthFailed);
        assert_eq!(h.wire.close, Some((1008, "authentication failed".into())));
        assert_eq!(h.session.pid(), None);

        let mut h = Harness::new(config("sh", &[]));
        assert_eq!(
            h.send(&ClientMessage::Init(proto::Init::default())),
            Outcome::AuthFailed
        );

        let mut h = Harness::new(config("sh", &[]));
        assert_eq!(h.send(&ClientMessage::Input(b"ls\r")), Outcome::Closed);
        assert_eq!(h.wire.close.as_ref().unwrap().0, 1008);

        let mut h = Harness::new(config("sh", &[]));
        assert_eq!(h.send_raw(b"{not json"), Outcome::Closed);
        assert_eq!(h.wire.close.as_ref().unwrap().0, 1008);
    }

    #[test]
    fn auth_disabled_or_preauthenticated() {
        let mut cfg = config("sh", &["-c", "exit 0"]);
        cfg.auth = Auth::Disabled;
        let mut h = Harness::new(cfg);
        assert_eq!(h.send_raw(b"{}"), Outcome::Spawned);
        h.wait_close();

        let cfg = Arc::new(config("sh", &["-c", "exit 0"]));
        let mut s = Session::new(cfg, true, None);
        let mut wire = Wire::default();
        assert_eq!(
            s.handle_message(br#"{"columns":10,"rows":5}"#, &mut wire),
            Outcome::Spawned
        );
    }

    #[test]
    fn spawn_failure_closes_1011() {
        let mut h = Harness::new(config("/no/such/program", &[]));
        assert_eq!(h.init(WinSize::default()), Outcome::Closed);
        assert_eq!(h.wire.close.as_ref().unwrap().0, 1011);
    }

    #[test]
    fn bad_resize_closes_1007_and_unknown_types_are_ignored() {
        let mut h = Harness::new(config("sh", &[]));
        h.init(WinSize::default());
        let pid = h.session.pid().unwrap();
        assert_eq!(h.send_raw(b"9whatever"), Outcome::Continue);
        assert_eq!(h.send_raw(b""), Outcome::Continue);
        assert_eq!(h.send_raw(b"1{\"columns\":\"x\"}"), Outcome::Closed);
        assert_eq!(h.wire.close.as_ref().unwrap().0, 1007);
        wait_gone(pid);
    }

    #[test]
    fn read_only_drops_input() {
        let mut cfg = config("cat", &[]);
        cfg.read_only = true;
        let mut h = Harness::new(cfg);
        h.init(WinSize::default());
        assert_eq!(h.frames[1], br#"2{"disableStdin":true}"#);
        h.send(&ClientMessage::Input(b"hello\r"));
        h.run_until(Duration::from_millis(300), |_| false);
        assert!(!h.output_text().contains("hello"), "{:?}", h.output_text());
    }

    #[test]
    fn client_pause_stops_output_and_resume_restarts_it() {
        let mut h = Harness::new(config("yes", &[]));
        h.init(WinSize::default());
        h.wait_output("y\r\ny\r\n");
        h.send(&ClientMessage::Pause);
        h.run_until(Duration::from_millis(100), |_| false);
        let before = h.output.len();
        h.run_until(Duration::from_millis(300), |_| false);
        assert_eq!(h.output.len(), before, "output while paused");
        h.send(&ClientMessage::Resume);
        h.run_until(Duration::from_millis(300), |_| false);
        assert!(h.output.len() > before, "no output after resume");
        let pid = h.session.pid().unwrap();
        h.deregister();
        h.session.close();
        wait_gone(pid);
    }

    #[test]
    fn output_is_bounded_when_the_client_does_not_read() {
        let mut h = Harness::new(config("yes", &[]));
        h.reading = false;
        h.init(WinSize::default());
        h.run_until(Duration::from_millis(500), |_| false);
        let limits = Limits::default();
        let bound = limits.high_water + limits.chunk + 64;
        assert!(
            h.wire.max_unsent <= bound,
            "{} > {bound}",
            h.wire.max_unsent
        );
        assert!(
            h.wire.unsent >= limits.high_water,
            "stopped early: {}",
            h.wire.unsent
        );
        // The client catches up: output flows again.
        h.reading = true;
        h.deliver();
        let before = h.output.len();
        let o = h.session.handle_ready(&mut h.wire);
        h.outcome(o);
        h.run_until(Duration::from_millis(200), |_| false);
        assert!(
            h.output.len() > before + limits.high_water,
            "did not resume"
        );
        let pid = h.session.pid().unwrap();
        drop(h);
        wait_gone(pid);
    }

    #[test]
    fn disconnect_hangs_up_and_reaps() {
        let mut h = Harness::new(config("sh", &[]));
        h.init(WinSize::default());
        let pid = h.session.pid().unwrap();
        h.send(&ClientMessage::Input(b"echo ready\r"));
        h.wait_output("ready");
        h.deregister();
        h.session.close();
        wait_gone(pid);
    }

    #[test]
    fn disconnect_kills_a_program_that_ignores_sighup() {
        let mut h = Harness::new(config(
            "sh",
            &["-c", "trap '' HUP; echo armed; while :; do sleep 1; done"],
        ));
        h.init(WinSize::default());
        h.wait_output("armed");
        let pid = h.session.pid().unwrap();
        let start = Instant::now();
        h.deregister();
        h.session.close();
        wait_gone(pid);
        assert!(
            start.elapsed() >= Duration::from_millis(250),
            "killed before the grace period"
        );
    }

    #[test]
    fn input_backpressure() {
        // `sleep` never reads its terminal: input piles up until the PTY's queue is full.
        let mut h = Harness::new(config("sleep", &["30"]));
        h.init(WinSize::default());
        let chunk = vec![b'a'; 8192];
        let mut sent = 0;
        while h.session.wants_input() && sent < 10 << 20 {
            h.send(&ClientMessage::Input(&chunk));
            sent += chunk.len();
        }
        assert!(!h.session.wants_input(), "the PTY took {sent} bytes");
        assert!(sent < 1 << 20);
    }
}
