//! For the terminal tests: the server in this process (so the shells are this process's
//! children), and a `tungstenite` client speaking the `tty` protocol.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::inproc::InProcessServer;
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};
use wsbridge::auth::Policy;
use wsbridge::routes::tty::proto::{self, ClientMessage, Init, ServerMessage};
use wsbridge::routes::tty::sys::{Command, WinSize};
use wsbridge::routes::tty::{self, TerminalPages, TtyFactory};
use wsbridge::server::{Config, Routes};

pub const TOKEN: &str = "test-token-0123456789abcdef";

/// How a test server is set up.
pub struct Options {
    pub program: String,
    pub args: Vec<String>,
    pub read_only: bool,
    pub token: Option<String>,
    pub config: Config,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            program: "/bin/sh".into(),
            args: Vec::new(),
            read_only: false,
            token: Some(TOKEN.into()),
            config: Config::default(),
        }
    }
}

/// A terminal server in this process.
pub struct TestServer {
    pub addr: SocketAddr,
    server: InProcessServer,
}

impl TestServer {
    pub fn start(opts: Options) -> TestServer {
        let config = opts.config.clone();
        let server = InProcessServer::start(config, move || {
            let policy = Arc::new(Policy::new(opts.token.clone(), vec![], vec![]));
            let mut command = Command::new(&opts.program);
            command.args = opts.args.iter().map(Into::into).collect();
            let mut tty_config = tty::Config::new(command);
            tty_config.read_only = opts.read_only;
            tty_config.limits.hangup_grace = Duration::from_millis(500);
            let mut routes = Routes::echo_only(policy);
            routes.tty = Some(Box::new(TtyFactory::new(
                tty_config,
                opts.config.high_water,
                opts.config.low_water,
            )));
            routes.pages = Box::new(TerminalPages);
            routes
        });
        TestServer {
            addr: server.addr,
            server,
        }
    }

    /// Graceful shutdown, waiting for the loop to end.
    pub fn stop(&mut self) {
        self.server.stop();
    }
}

pub type Ws = WebSocket<TcpStream>;

/// Opens a WebSocket on `path` offering the `tty` subprotocol, with extra headers.
pub fn connect_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Result<Ws, String> {
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "tty".parse().unwrap());
    for (name, value) in headers {
        let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    match tungstenite::client(request, stream) {
        Ok((ws, response)) => {
            assert_eq!(
                response.headers().get("Sec-WebSocket-Protocol").unwrap(),
                "tty"
            );
            Ok(ws)
        }
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            Err(format!("HTTP {}", response.status().as_u16()))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Connects to `/tty`. A signal that interrupts the handshake's read (the test process reaps
/// children, and a signal mid-read gives EINTR through tungstenite) means a fresh try: the
/// abandoned connection is one more the server must clean up, which these tests check anyway.
pub fn connect(addr: SocketAddr) -> Ws {
    let mut tries = 0;
    loop {
        match connect_with(addr, "/tty", &[]) {
            Ok(ws) => return ws,
            Err(e) if e.contains("Interrupted") && tries < 5 => tries += 1,
            Err(e) => panic!("connect to /tty: {e}"),
        }
    }
}

pub fn send(ws: &mut Ws, msg: &ClientMessage<'_>) {
    let mut buf = Vec::new();
    proto::encode_client(msg, &mut buf);
    ws.send(Message::Binary(buf.into())).unwrap();
}

pub fn send_init(ws: &mut Ws, token: Option<&str>, size: WinSize) {
    send(
        ws,
        &ClientMessage::Init(Init {
            auth_token: token.map(Into::into),
            size: Some(size),
        }),
    );
}

/// Connects to `/tty` and starts the program at 80x24 with the test token.
pub fn open_session(addr: SocketAddr) -> Client {
    let mut ws = connect(addr);
    send_init(&mut ws, Some(TOKEN), WinSize { cols: 80, rows: 24 });
    Client::new(ws)
}

/// The client side of a session: what it received.
pub struct Client {
    pub ws: Ws,
    pub output: Vec<u8>,
    pub title: Option<String>,
    pub preferences: Option<String>,
    pub close: Option<(u16, String)>,
}

impl Client {
    pub fn new(ws: Ws) -> Client {
        Client {
            ws,
            output: Vec::new(),
            title: None,
            preferences: None,
            close: None,
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.output).into_owned()
    }

    pub fn input(&mut self, bytes: &[u8]) {
        send(&mut self.ws, &ClientMessage::Input(bytes));
    }

    /// Reads one message if one comes within the socket's read timeout. False once closed.
    pub fn poll(&mut self) -> bool {
        if self.close.is_some() {
            return false;
        }
        match self.ws.read() {
            Ok(Message::Binary(data)) => {
                match proto::decode_server(&data).expect("a tty message") {
                    ServerMessage::Output(bytes) => self.output.extend_from_slice(bytes),
                    ServerMessage::Title(t) => self.title = Some(t.into()),
                    ServerMessage::Preferences(p) => self.preferences = Some(p.into()),
                }
                true
            }
            Ok(Message::Close(frame)) => {
                let frame = frame.unwrap_or(CloseFrame {
                    code: 1005.into(),
                    reason: "".into(),
                });
                self.close = Some((frame.code.into(), frame.reason.to_string()));
                // Complete the closing handshake.
                let _ = self.ws.flush();
                true
            }
            Ok(_) => true,
            // A read with SO_RCVTIMEO returns EINTR after any signal or stop/continue of this
            // process, handler or not (signal(7)); it is safe to read again.
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                true
            }
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                if self.close.is_none() {
                    self.close = Some((1006, String::new()));
                }
                false
            }
            Err(e) => panic!("read: {e}"),
        }
    }

    /// Reads until the output contains `needle`.
    pub fn wait_for(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.text().contains(needle) {
            assert!(
                Instant::now() < deadline && self.poll(),
                "no {needle:?} in {:?} (close: {:?})",
                self.text(),
                self.close
            );
        }
    }

    /// Reads until the server's close frame.
    pub fn wait_close(&mut self) -> (u16, String) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.close.is_none() {
            assert!(
                Instant::now() < deadline,
                "no close; output {:?}",
                self.text()
            );
            self.poll();
        }
        self.close.clone().unwrap()
    }

    /// Runs `echo NAME=<expr>:` and returns the number printed (the terminal's echo of the command
    /// line itself shows the expression, not digits, so it is not mistaken for the answer).
    pub fn ask_number(&mut self, name: &str, expr: &str) -> u32 {
        self.input(format!("echo {name}={expr}:\r").as_bytes());
        let prefix = format!("{name}=");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.text();
            for (at, _) in text.match_indices(&prefix) {
                let rest = &text[at + prefix.len()..];
                let digits =
                    rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                if digits > 0 && rest[digits..].starts_with(':') {
                    return rest[..digits].parse().unwrap();
                }
            }
            assert!(
                Instant::now() < deadline && self.poll(),
                "no {name} in {text:?}"
            );
        }
    }

    /// The shell's pid, asked from the shell itself.
    pub fn shell_pid(&mut self) -> u32 {
        self.ask_number("PID", "$$")
    }
}

/// Whether a process exists (a zombie still does: gone means reaped).
pub fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

pub fn wait_gone(pid: u32, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while process_exists(pid) {
        assert!(
            Instant::now() < deadline,
            "pid {pid} still exists (alive or zombie)"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A plain HTTP GET; returns the raw response head and body.
pub fn http_get(addr: SocketAddr, path: &str) -> (String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    (head, response[split + 4..].to_vec())
}

/// This process's open fds.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// This process's children (zombies included).
pub fn children() -> Vec<u32> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if rest.split_whitespace().nth(1) == Some(me.as_str()) {
            found.push(pid);
        }
    }
    found
}
