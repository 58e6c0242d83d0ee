//! Shared by the integration tests: start the real `wsbridge` binary on an ephemeral port and
//! talk to it over real sockets.
#![allow(dead_code)]

pub mod http;
pub mod inproc;
pub mod sql;
pub mod tls;
pub mod tty;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running `wsbridge serve`, stopped (SIGKILL) when dropped.
pub struct ServerProcess {
    pub child: Child,
    pub addr: SocketAddr,
    /// The URL line the server printed (`open http://...`).
    pub url: String,
    /// With TLS, the certificate's SHA-256 fingerprint the server printed after the URL.
    pub tls_fingerprint: Option<String>,
    /// The lines the server printed after those (e.g. `metrics on ...`).
    pub more_stdout: std::sync::Mutex<std::sync::mpsc::Receiver<String>>,
}

impl ServerProcess {
    /// `wsbridge serve --listen 127.0.0.1:0 ARGS...`, waiting until it prints its address.
    pub fn start(args: &[&str]) -> ServerProcess {
        Self::start_in(args, None)
    }

    /// As [`ServerProcess::start`], with a working directory.
    pub fn start_in(args: &[&str], cwd: Option<&std::path::Path>) -> ServerProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wsbridge"));
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args);
        if !args.contains(&"--db") {
            // Keep the tests' working directory free of database files.
            command.args(["--db", ":memory:"]);
        }
        command
            .env(
                "WSBRIDGE_LOG",
                std::env::var("WSBRIDGE_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(dir) = cwd {
            command.current_dir(dir);
        }
        Self::spawn(command)
    }

    /// Start a prepared `wsbridge serve` command (it must listen on port 0 and print its
    /// address), waiting until it prints its address.
    pub fn spawn(command: Command) -> ServerProcess {
        Self::spawn_with_stderr(command, Stdio::inherit())
    }

    /// As [`ServerProcess::spawn`], with the server's log (stderr) going to `stderr`.
    pub fn spawn_with_stderr(mut command: Command, stderr: Stdio) -> ServerProcess {
        command
            .env(
                "WSBRIDGE_LOG",
                std::env::var("WSBRIDGE_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = command.spawn().expect("start wsbridge");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().expect("a first line").expect("read stdout");
        let addr = first
            .rsplit(' ')
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {first:?}"));
        let url = lines
            .next()
            .expect("a second line")
            .expect("read stdout")
            .trim_start_matches("open ")
            .to_string();
        let tls_fingerprint = url.starts_with("https://").then(|| {
            let line = lines
                .next()
                .expect("a fingerprint line")
                .expect("read stdout");
            line.trim_start_matches("TLS certificate SHA-256 ")
                .to_string()
        });
        // Keep draining stdout so the server never blocks on a full pipe.
        let (more, more_stdout) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let _ = more.send(line);
            }
        });
        ServerProcess {
            child,
            addr,
            url,
            tls_fingerprint,
            more_stdout: std::sync::Mutex::new(more_stdout),
        }
    }

    /// The next line the server prints on stdout after its URL (and fingerprint).
    pub fn next_stdout_line(&self) -> String {
        self.more_stdout
            .lock()
            .expect("the receiver")
            .recv_timeout(Duration::from_secs(20))
            .expect("another line on stdout")
    }

    /// The token from the printed URL.
    pub fn token(&self) -> String {
        self.url
            .split("token=")
            .nth(1)
            .unwrap_or_default()
            .to_string()
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Send a signal.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe { libc::kill(self.pid(), signal) };
    }

    /// Wait for the process to exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The server's resident memory in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tungstenite client connected to `url`, with a read timeout so a broken server fails the
/// test instead of hanging it.
pub fn connect(
    url: &str,
) -> tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>> {
    let (ws, _) = tungstenite::connect(url).expect("connect");
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
    }
    ws
}

/// Run Debian's curl quietly (`-s -S`, at most 20 s) with `args`; its stdout, once it
/// succeeded.
pub fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "-S", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl (Debian's curl package) runs");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A raw TCP connection, for bytes no well-behaved client would send.
pub fn raw(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s.set_nodelay(true).expect("nodelay");
    s
}

/// A well-formed upgrade request for `path` with extra header lines.
pub fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// Read an HTTP response head (up to the blank line) from a raw stream.
pub fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Send a raw upgrade and return the response head.
pub fn raw_upgrade(addr: SocketAddr, path: &str, extra: &str) -> (TcpStream, String) {
    let mut s = raw(addr);
    s.write_all(upgrade_request(path, extra).as_bytes())
        .expect("write");
    let head = read_head(&mut s);
    (s, head)
}

/// Read everything until EOF (or an error such as a reset); returns the bytes.
pub fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
        }
    }
}

/// A masked client frame.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x11, 0x22, 0x33, 0x44];
    let mut frame = vec![(fin as u8) << 7 | opcode];
    match payload.len() {
        n @ 0..=125 => frame.push(0x80 | n as u8),
        n @ 126..=65535 => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    frame
}

/// Parse the server's (unmasked) frames from `bytes`: (fin, opcode, payload).
pub fn server_frames(mut bytes: &[u8]) -> Vec<(bool, u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while bytes.len() >= 2 {
        let fin = bytes[0] & 0x80 != 0;
        let opcode = bytes[0] & 0x0f;
        let (len, start) = match bytes[1] & 0x7f {
            126 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        if bytes.len() < start + len {
            break;
        }
        frames.push((fin, opcode, bytes[start..start + len].to_vec()));
        bytes = &bytes[start + len..];
    }
    frames
}

/// The close code in a Close frame's payload.
pub fn close_code(payload: &[u8]) -> Option<u16> {
    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]))
}
