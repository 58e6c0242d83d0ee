//! Harness for the libsql remote-mode tests: starts the wsbridge binary (WSBRIDGE_BIN) on an
//! ephemeral port with a fresh database file, and hands the `libsql` crate a plain-http
//! connector that records every byte on its sockets, so a test can check which endpoints the
//! client used and a failing test prints the exact requests and responses.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll};

use hyper::client::connect::{Connected, Connection};
use hyper::client::HttpConnector;
use hyper::Uri;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A running wsbridge server; killed (and its database directory removed) on drop.
pub struct Server {
    child: Child,
    dir: PathBuf,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub token: String,
}

static SERVERS: AtomicUsize = AtomicUsize::new(0);

impl Server {
    pub fn start() -> Server {
        let bin = std::env::var_os("WSBRIDGE_BIN")
            .expect("WSBRIDGE_BIN must point at the wsbridge binary (use run.sh)");
        let n = SERVERS.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("wsbridge-libsql-{pid}-{n}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let token = format!("libsql-remote-test-token-0123456789-{pid}-{n}");
        let mut child = Command::new(&bin)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--token", &token, "--db"])
            .arg(dir.join("test.db"))
            .env("WSBRIDGE_LOG", std::env::var("WSBRIDGE_LOG").unwrap_or("warn".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin:?}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Reads the address, then keeps draining stdout so the server never blocks on it.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split(" listening on ").nth(1) {
                    if let Some(tx) = tx.take() {
                        let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                        let _ = tx.send(addr);
                    }
                }
            }
        });
        let addr = match rx.recv() {
            Ok(addr) => addr,
            Err(_) => {
                let status = child.wait();
                panic!("wsbridge exited before listening: {status:?}");
            }
        };
        Server { child, dir, url: format!("http://{addr}"), token }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// client -> server
    Sent,
    /// server -> client
    Received,
}

/// Every chunk read or written on the connector's sockets, in order, tagged by connection.
#[derive(Clone, Default)]
pub struct Traffic {
    events: Arc<Mutex<Vec<(usize, Dir, Vec<u8>)>>>,
    connections: Arc<AtomicUsize>,
}

/// One HTTP/1.1 message, parsed back out of the recorded bytes.
#[derive(Clone, Debug)]
pub struct Message {
    pub conn: usize,
    /// `POST /v3/pipeline HTTP/1.1` or `HTTP/1.1 200 OK`
    pub start_line: String,
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// `POST /v3/cursor` for a request.
    pub fn method_path(&self) -> String {
        self.start_line.split(' ').take(2).collect::<Vec<_>>().join(" ")
    }
    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        self.start_line.split(' ').nth(1)?.parse().ok()
    }
}

impl Traffic {
    fn record(&self, conn: usize, dir: Dir, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.events.lock().unwrap().push((conn, dir, bytes.to_vec()));
        }
    }

    /// All bytes of one direction of one connection.
    fn stream(&self, conn: usize, dir: Dir) -> Vec<u8> {
        let events = self.events.lock().unwrap();
        let mut out = Vec::new();
        for (c, d, b) in events.iter() {
            if *c == conn && *d == dir {
                out.extend_from_slice(b);
            }
        }
        out
    }

    fn messages(&self, dir: Dir) -> Vec<Message> {
        let mut all = Vec::new();
        for conn in 0..self.connections.load(Ordering::SeqCst) {
            let bytes = self.stream(conn, dir);
            all.extend(parse_messages(conn, &bytes));
        }
        all
    }

    /// Requests the client sent, per connection in order (connections in the order they opened).
    pub fn requests(&self) -> Vec<Message> {
        self.messages(Dir::Sent)
    }

    /// Responses the server sent.
    pub fn responses(&self) -> Vec<Message> {
        self.messages(Dir::Received)
    }

    /// `POST /v3/pipeline` etc. for every request sent.
    pub fn request_lines(&self) -> Vec<String> {
        self.requests().iter().map(Message::method_path).collect()
    }

    /// Everything on the wire, in time order, as text (bodies of binary data shown lossily).
    pub fn transcript(&self) -> String {
        let events = self.events.lock().unwrap();
        let mut out = String::new();
        let mut last: Option<(usize, Dir)> = None;
        for (c, d, b) in events.iter() {
            if last != Some((*c, *d)) {
                let arrow = if *d == Dir::Sent { "client -> server" } else { "server -> client" };
                out.push_str(&format!("\n--- connection {c}, {arrow} ---\n"));
                last = Some((*c, *d));
            }
            out.push_str(&String::from_utf8_lossy(b));
        }
        const MAX: usize = 200_000;
        if out.len() > MAX {
            let mut cut = out.len() - MAX;
            while !out.is_char_boundary(cut) {
                cut += 1;
            }
            out = format!("[... {cut} bytes left off ...]{}", &out[cut..]);
        }
        out
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Splits a recorded byte stream into HTTP/1.1 messages (Content-Length or chunked bodies; a
/// response with neither runs to the end of the stream). Stops at anything it cannot parse.
fn parse_messages(conn: usize, mut bytes: &[u8]) -> Vec<Message> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let Some(end) = find(bytes, b"\r\n\r\n") else { break };
        let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
        bytes = &bytes[end + 4..];
        let mut lines = head.split("\r\n");
        let start_line = lines.next().unwrap_or("").to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let mut body = Vec::new();
        let bodyless = start_line
            .split(' ')
            .nth(1)
            .map_or(false, |s| s.starts_with('1') || s == "204" || s == "304");
        if get("transfer-encoding").map_or(false, |v| v.to_ascii_lowercase().contains("chunked")) {
            loop {
                let Some(eol) = find(bytes, b"\r\n") else {
                    body.extend_from_slice(bytes);
                    bytes = &[];
                    break;
                };
                let size_text = String::from_utf8_lossy(&bytes[..eol]).into_owned();
                let size_hex = size_text.split(';').next().unwrap_or("").trim();
                let Ok(size) = usize::from_str_radix(size_hex, 16) else {
                    bytes = &[];
                    break;
                };
                bytes = &bytes[eol + 2..];
                if size == 0 {
                    // trailers end with an empty line
                    match find(bytes, b"\r\n") {
                        Some(p) => bytes = &bytes[p + 2..],
                        None => bytes = &[],
                    }
                    break;
                }
                let take = size.min(bytes.len());
                body.extend_from_slice(&bytes[..take]);
                bytes = &bytes[take..];
                if bytes.starts_with(b"\r\n") {
                    bytes = &bytes[2..];
                }
            }
        } else if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
            let take = len.min(bytes.len());
            body.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        } else if start_line.starts_with("HTTP/") && !bodyless {
            body.extend_from_slice(bytes);
            bytes = &[];
        }
        out.push(Message { conn, start_line, headers, body });
    }
    out
}

/// A `tower::Service<Uri>` for `libsql::Builder::connector`: plain TCP (hyper's HttpConnector),
/// every socket wrapped in a [`Recorded`] that logs into a shared [`Traffic`].
#[derive(Clone)]
pub struct RecordingConnector {
    inner: HttpConnector,
    pub traffic: Traffic,
}

impl RecordingConnector {
    pub fn new() -> RecordingConnector {
        let mut inner = HttpConnector::new();
        inner.set_nodelay(true);
        RecordingConnector { inner, traffic: Traffic::default() }
    }
}

impl Default for RecordingConnector {
    fn default() -> Self {
        Self::new()
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Uri> for RecordingConnector {
    type Response = Recorded;
    type Error = BoxError;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<Recorded, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        tower_service::Service::<Uri>::poll_ready(&mut self.inner, cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let fut = tower_service::Service::<Uri>::call(&mut self.inner, uri);
        let traffic = self.traffic.clone();
        Box::pin(async move {
            let tcp = fut.await?;
            let id = traffic.connections.fetch_add(1, Ordering::SeqCst);
            Ok(Recorded { tcp, id, traffic })
        })
    }
}

/// A TCP stream that logs what passes through it.
pub struct Recorded {
    tcp: TcpStream,
    id: usize,
    traffic: Traffic,
}

impl Connection for Recorded {
    fn connected(&self) -> Connected {
        self.tcp.connected()
    }
}

impl AsyncRead for Recorded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let res = Pin::new(&mut this.tcp).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = res {
            this.traffic.record(this.id, Dir::Received, &buf.filled()[before..]);
        }
        res
    }
}

impl AsyncWrite for Recorded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.tcp).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = res {
            this.traffic.record(this.id, Dir::Sent, &buf[..n]);
        }
        res
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(mut n)) = res {
            for b in bufs {
                if n == 0 {
                    break;
                }
                let k = n.min(b.len());
                this.traffic.record(this.id, Dir::Sent, &b[..k]);
                n -= k;
            }
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}

/// A server plus a `libsql::Database` pointed at it through a [`RecordingConnector`]. If the
/// test panics while this is alive, its drop prints the whole HTTP transcript (cargo test shows
/// it under the failing test).
pub struct Harness {
    pub traffic: Traffic,
    pub db: libsql::Database,
    // Dropped last: the server outlives the database handle.
    pub server: Server,
}

impl Harness {
    pub async fn start() -> Harness {
        let server = Server::start();
        let (db, traffic) = open(&server.url, &server.token).await;
        Harness { traffic, db, server }
    }

    pub fn connect(&self) -> libsql::Connection {
        self.db.connect().expect("Database::connect")
    }

    /// Another database handle on the same server with the given token (its own traffic log).
    pub async fn open_with_token(&self, token: &str) -> (libsql::Database, Traffic) {
        open(&self.server.url, token).await
    }
}

pub async fn open(url: &str, token: &str) -> (libsql::Database, Traffic) {
    let connector = RecordingConnector::new();
    let traffic = connector.traffic.clone();
    let db = libsql::Builder::new_remote(url.to_string(), token.to_string())
        .connector(connector)
        .build()
        .await
        .expect("Builder::new_remote(..).build()");
    (db, traffic)
}

impl Drop for Harness {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "==== HTTP traffic between libsql and wsbridge ({}) ====\n{}\n==== end of traffic ====",
                self.server.url,
                self.traffic.transcript()
            );
        }
    }
}
