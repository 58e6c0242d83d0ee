//! The session against real programs on real PTYs.

use super::*;
use crate::routes::tty::sys::WinSize;
use std::time::Instant;

/// A connection's standing with a policy whose token is `token` (`None`: auth off), from an
/// address of its own (so the token gate's per-address rate never delays a test).
fn admission(token: Option<&str>) -> crate::auth::Admission {
    static PEERS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let n = PEERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let policy = Arc::new(crate::auth::Policy::new(
        token.map(str::to_owned),
        vec![],
        vec![],
    ));
    policy
        .admission(
            Some(std::net::IpAddr::from(n.to_be_bytes())),
            Waker::noop(),
            Instant::now(),
        )
        .expect("admission")
}

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

/// A session, the descriptors it watches, and its peer.
struct Harness {
    session: Session,
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
    let mut config = Config::new(command);
    config.limits.hangup_grace = Duration::from_millis(300);
    config
}

impl Harness {
    fn new(config: Config) -> Harness {
        // The harness polls on a short period, so being woken needs no action.
        let waker = Waker::new(|| {});
        Harness {
            session: Session::new(Arc::new(config), admission(Some(TOKEN)), Some(waker)),
            wire: Wire::default(),
            reading: true,
            output: Vec::new(),
            frames: Vec::new(),
            registered: Vec::new(),
        }
    }

    fn outcome(&mut self, outcome: Outcome) -> Outcome {
        if outcome == Outcome::Spawned {
            self.registered = self.session.sources();
        }
        if matches!(outcome, Outcome::Closed | Outcome::AuthFailed) {
            self.deregister();
        }
        self.deliver();
        outcome
    }

    fn deregister(&mut self) {
        self.registered.clear();
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
        let o = self
            .session
            .handle_message(msg, Instant::now(), &mut self.wire);
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
        while !done(self) {
            let now = Instant::now();
            if now >= deadline || self.session.is_closed() {
                return done(self);
            }
            // Level-triggered here: a PTY the session does not read (paused, throttled) stays
            // readable, so a ready poll that changed nothing waits a little before the next.
            let ready = crate::sys::poll_readable(
                &self.registered,
                (deadline - now).min(Duration::from_millis(50)),
            )
            .unwrap();
            let before = (self.output.len(), self.wire.unsent);
            if ready {
                let o = self.session.handle_ready(&mut self.wire);
                self.outcome(o);
            }
            // The server calls handle_ready when the unsent output drained.
            if self.deliver() || (self.reading && self.wire.unsent == 0 && !ready) {
                let o = self.session.handle_ready(&mut self.wire);
                self.outcome(o);
            }
            if ready && before == (self.output.len(), self.wire.unsent) {
                std::thread::sleep(Duration::from_millis(5));
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
    let mut h = Harness::new(config("sh", &["-c", "exit 0"]));
    h.session = Session::new(
        Arc::new(config("sh", &["-c", "exit 0"])),
        admission(None),
        None,
    );
    assert_eq!(h.send_raw(b"{}"), Outcome::Spawned);
    h.wait_close();

    // A right bearer token at the upgrade: the init message needs none.
    let cfg = Arc::new(config("sh", &["-c", "exit 0"]));
    let mut bearer = admission(Some(TOKEN));
    bearer.present(TOKEN, Instant::now());
    let mut s = Session::new(cfg, bearer, None);
    let mut wire = Wire::default();
    assert_eq!(
        s.handle_message(br#"{"columns":10,"rows":5}"#, Instant::now(), &mut wire),
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
