//! Behind a real reverse proxy: Debian's nginx, started on loopback with the configuration the
//! deployment guide gives (docs/deployment.md), in front of wsbridge under `--base-path /term/`
//! with `--trusted-proxy`. Through it: the page, the echo, the SQL route, the terminal, Hrana
//! over HTTP; and the token throttle naming the client nginx forwarded for.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::ServerProcess;
use common::http::HttpConn;
use tungstenite::Message;
use tungstenite::client::IntoClientRequest;

/// The address nginx binds its side of proxied connections to: wsbridge trusts it alone.
const PROXY_SIDE: &str = "127.0.0.2";

/// A running nginx, stopped when dropped.
struct Nginx {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn nginx_binary() -> PathBuf {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("nginx (Debian's nginx package) is installed")
}

/// nginx proxying `/term/` to `upstream`, the configuration of docs/deployment.md with the
/// paths a test needs.
fn start_nginx(dir: &Path, upstream: SocketAddr) -> Nginx {
    let port = free_port();
    let d = dir.display();
    let conf = format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    server {{
        listen 127.0.0.1:{port};
        location /term/ {{
            proxy_pass http://{upstream};
            proxy_bind {PROXY_SIDE};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
            proxy_buffering off;
            proxy_request_buffering off;
            client_max_body_size 64m;
        }}
    }}
}}
"#
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).expect("write nginx.conf");
    let child = Command::new(nginx_binary())
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start nginx");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    // Owned from here: dropped (killed and waited for) if it never comes up.
    let nginx = Nginx { child, addr };
    for _ in 0..200 {
        if TcpStream::connect(addr).is_ok() {
            return nginx;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!(
        "nginx did not start: {}",
        std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
    );
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wsbridge-nginx-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// wsbridge under /term, trusting nginx's side, with its log on a pipe.
fn start_wsbridge(extra: &[&str]) -> ServerProcess {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wsbridge"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--db", ":memory:"])
        .args(["--base-path", "/term/", "--trusted-proxy", PROXY_SIDE])
        .args(["--shell", "/bin/sh"])
        .args(extra);
    ServerProcess::spawn_with_stderr(command, Stdio::piped())
}

/// Lines of the server's log until one contains `needle`.
fn log_line_with(server: &mut ServerProcess, needle: &str) -> String {
    let stderr = server.child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("the log ended before {needle:?}"))
            .expect("read log");
        if line.contains(needle) {
            return line;
        }
    }
}

#[test]
fn the_page_routes_and_http_endpoints_work_through_nginx_under_a_base_path() {
    let server = start_wsbridge(&[]);
    assert!(server.url.contains("/term/"), "{}", server.url);
    let dir = scratch("routes");
    let nginx = start_nginx(&dir, server.addr);
    let token = server.token();

    // The page and its assets, below the prefix.
    let mut http = HttpConn::connect(nginx.addr);
    let page = http.request("GET", "/term/", &[], b"");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("assets/app.js"), "{}", page.text());
    let script = http.request("GET", "/term/assets/app.js", &[], b"");
    assert_eq!(script.status, 200);
    let health = http.request("GET", "/term/health", &[], b"");
    assert_eq!(health.status, 200);

    // The echo route over WebSocket, through nginx's upgrade.
    let mut ws = common::connect(&format!("ws://{}/term/echo", nginx.addr));
    ws.send(Message::text("through nginx")).expect("send");
    assert_eq!(ws.read().expect("echo"), Message::text("through nginx"));
    let big = vec![7u8; 1 << 20];
    ws.send(Message::binary(big.clone())).expect("send");
    assert_eq!(ws.read().expect("echo"), Message::binary(big));

    // Hrana over HTTP with the token.
    let auth = format!("Bearer {token}");
    let body = br#"{"requests":[{"type":"execute","stmt":{"sql":"SELECT 'via nginx'"}},{"type":"close"}]}"#;
    let reply = http.request(
        "POST",
        "/term/v2/pipeline",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body,
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json()["results"][0]["response"]["result"]["rows"][0][0]["value"],
        "via nginx"
    );

    // The SQL route over WebSocket (Hrana 2).
    let mut request = format!("ws://{}/term/sql", nginx.addr)
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "hrana2".parse().expect("value"));
    let (mut sql, _) = tungstenite::connect(request).expect("upgrade through nginx");
    sql.send(Message::text(format!(
        r#"{{"type":"hello","jwt":"{token}"}}"#
    )))
    .expect("send");
    let hello = sql.read().expect("hello reply");
    assert!(
        hello.to_text().expect("text").contains("hello_ok"),
        "{hello:?}"
    );

    // The terminal: a shell answers through the proxy.
    let mut tty = common::tty::connect_with(nginx.addr, "/term/tty", &[]).expect("tty upgrade");
    let size = wsbridge::routes::tty::sys::WinSize { cols: 80, rows: 24 };
    common::tty::send_init(&mut tty, Some(&token), size);
    let mut client = common::tty::Client::new(tty);
    client.input(b"echo proxied-$((6*7))\r");
    client.wait_for("proxied-42");

    // Outside the prefix: 404, and the prefix without its slash is redirected (directly: nginx
    // itself redirects /term to /term/ for a location with a trailing slash).
    let mut direct = HttpConn::connect(server.addr);
    assert_eq!(direct.request("GET", "/health", &[], b"").status, 404);
    let redirect = direct.request("GET", "/term?x=1", &[], b"");
    assert_eq!(redirect.status, 308);
    assert_eq!(redirect.header("Location"), Some("/term/?x=1"));
    let (_s, head) = common::raw_upgrade(server.addr, "/echo", "");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
}

/// What nginx says the client is counts, from nginx only: the token throttle and the log name
/// the address nginx forwarded for, not nginx's own, and an `X-Forwarded-For` a client sends
/// itself is ignored.
#[test]
fn the_throttle_and_log_name_the_client_nginx_forwarded_for() {
    // Through nginx, from a client on 127.0.0.3 claiming to be 203.0.113.9: nginx appends the
    // real address, and that last entry is the one believed.
    let mut server = start_wsbridge(&[]);
    let dir = scratch("forwarded");
    let nginx = start_nginx(&dir, server.addr);
    let sock = socket2_bind_connect("127.0.0.3", nginx.addr);
    let mut http = HttpConn::from_stream(sock);
    let response = http.request(
        "POST",
        "/term/v2/pipeline",
        &[
            (
                "Authorization",
                "Bearer a-wrong-token-through-nginx-0123456789",
            ),
            ("X-Forwarded-For", "203.0.113.9"),
        ],
        br#"{"requests":[]}"#,
    );
    assert_eq!(response.status, 401);
    let line = log_line_with(&mut server, "wrong token from");
    assert!(line.contains("wrong token from 127.0.0.3 "), "{line}");

    // Directly, from a peer that is not the trusted proxy: its own X-Forwarded-For is ignored.
    let mut server = start_wsbridge(&[]);
    let mut http = HttpConn::connect(server.addr);
    let response = http.request(
        "POST",
        "/term/v2/pipeline",
        &[
            (
                "Authorization",
                "Bearer a-wrong-token-sent-directly-0123456789",
            ),
            ("X-Forwarded-For", "203.0.113.9"),
        ],
        br#"{"requests":[]}"#,
    );
    assert_eq!(response.status, 401);
    let line = log_line_with(&mut server, "wrong token from");
    assert!(line.contains("wrong token from 127.0.0.1 "), "{line}");
}

fn sockaddr_in(ip: std::net::Ipv4Addr, port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// A TCP connection to `to` from the loopback address `from` (port chosen by the kernel).
fn socket2_bind_connect(from: &str, to: SocketAddr) -> TcpStream {
    use std::os::fd::FromRawFd;
    let from: std::net::Ipv4Addr = from.parse().expect("an IPv4 address");
    // SAFETY: socket(2) returns a new descriptor or -1; checked below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: fd is a new socket we own; from here the TcpStream closes it.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let local = sockaddr_in(from, 0);
    // SAFETY: binding our socket to a sockaddr_in on our stack, with its size.
    let rc = unsafe {
        libc::bind(
            fd,
            (&local as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "bind: {}", std::io::Error::last_os_error());
    let SocketAddr::V4(to) = to else {
        panic!("IPv4 only")
    };
    let remote = sockaddr_in(*to.ip(), to.port());
    // SAFETY: connecting our bound socket to a sockaddr_in on our stack, with its size.
    let rc = unsafe {
        libc::connect(
            fd,
            (&remote as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "connect: {}", std::io::Error::last_os_error());
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream
}
