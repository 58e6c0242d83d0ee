//! Listeners other than a TCP port of its own: `--listen unix:/path` (with `--listen-mode`),
//! and the socket systemd passes with socket activation (`LISTEN_FDS`), against the real
//! binary with real clients (curl over the Unix socket, tungstenite, the terminal's shell).

mod common;

use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::ServerProcess;
use tungstenite::Message;

const TOKEN: &str = "listen-test-token-0123456789abcdef";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wsbridge-listen-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A server on a Unix socket; returns it with its first stdout line.
fn start_unix(path: &Path, extra: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsbridge"))
        .args(["serve", "--db", ":memory:", "--token", TOKEN, "--listen"])
        .arg(format!("unix:{}", path.display()))
        .args(extra)
        .env("WSBRIDGE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start wsbridge");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a line").expect("read");
    std::thread::spawn(move || for _ in lines {});
    (child, first)
}

fn curl_unix(socket: &Path, args: &[&str]) -> String {
    let socket = socket.to_string_lossy();
    common::curl(&[&["--unix-socket", socket.as_ref()], args].concat())
}

#[test]
fn a_unix_socket_serves_http_websocket_and_sql_with_its_permissions() {
    let dir = scratch("unix");
    let path = dir.join("wsbridge.sock");
    // A stale socket file from a run that was killed is replaced.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("a stale socket"));
    assert!(path.exists());
    let (mut child, first) = start_unix(&path, &["--listen-mode", "660"]);
    assert!(
        first.ends_with(&format!("listening on unix:{}", path.display())),
        "{first}"
    );
    let meta = std::fs::metadata(&path).expect("the socket");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);

    assert_eq!(
        curl_unix(
            &path,
            &[
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "http://localhost/health"
            ]
        ),
        "200"
    );
    let body = r#"{"requests":[{"type":"execute","stmt":{"sql":"SELECT 'over a unix socket'"}},{"type":"close"}]}"#;
    let reply: serde_json::Value = serde_json::from_str(&curl_unix(
        &path,
        &[
            "-H",
            &format!("Authorization: Bearer {TOKEN}"),
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
            "http://localhost/v2/pipeline",
        ],
    ))
    .expect("JSON");
    assert_eq!(
        reply["results"][0]["response"]["result"]["rows"][0][0]["value"],
        "over a unix socket"
    );

    let stream = UnixStream::connect(&path).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let (mut ws, response) =
        tungstenite::client("ws://localhost/echo", stream).expect("upgrade over the socket");
    assert_eq!(response.status(), 101);
    ws.send(Message::text("unix")).expect("send");
    assert_eq!(ws.read().expect("echo"), Message::text("unix"));
    drop(ws);

    // A graceful stop removes the socket file.
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().expect("wait").success());
    assert!(!path.exists(), "the socket file is removed at exit");
}

#[test]
fn a_live_servers_socket_is_not_taken_over() {
    let dir = scratch("live");
    let path = dir.join("wsbridge.sock");
    let (mut first, _) = start_unix(&path, &[]);
    let second = Command::new(env!("CARGO_BIN_EXE_wsbridge"))
        .args(["serve", "--db", ":memory:", "--token", TOKEN, "--listen"])
        .arg(format!("unix:{}", path.display()))
        .output()
        .expect("run");
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("cannot listen"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(
        curl_unix(
            &path,
            &[
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "http://localhost/health"
            ]
        ),
        "200",
        "the first server still answers"
    );
    let _ = first.kill();
    let _ = first.wait();
}

/// systemd's socket activation: the listening socket is descriptor 3, `LISTEN_PID` the server's
/// own pid (set by `sh` before it `exec`s the server, so the pid is the same), `LISTEN_FDS=1`.
/// The server listens on it, not on `--listen`, and the programs its terminal starts do not
/// see the variables.
#[test]
fn systemd_socket_activation_uses_the_passed_socket() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let fd = listener.as_raw_fd();
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(r#"LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_wsbridge"))
        .args(["serve", "--listen", "127.0.0.1:1", "--db", ":memory:"])
        .args(["--token", TOKEN, "--shell", "/bin/sh"]);
    // SAFETY: dup2 and fcntl are async-signal-safe; it runs in the child between fork and exec, giving it
    // the listener as descriptor 3 (dup2 clears close-on-exec on the copy).
    unsafe {
        command.pre_exec(move || {
            if fd == 3 {
                // Already there: only close-on-exec must go (dup2 onto itself keeps it).
                if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let server = ServerProcess::spawn(command);
    drop(listener);
    assert_eq!(server.addr, addr, "it listens on the passed socket");
    let mut http = common::http::HttpConn::connect(addr);
    assert_eq!(http.request("GET", "/health", &[], b"").status, 200);

    let mut tty = common::tty::connect(addr);
    let size = wsbridge::routes::tty::sys::WinSize { cols: 80, rows: 24 };
    common::tty::send_init(&mut tty, Some(TOKEN), size);
    let mut client = common::tty::Client::new(tty);
    client.input(b"echo \"fds=[${LISTEN_FDS}] pid=[${LISTEN_PID}]\"\r");
    client.wait_for("fds=[] pid=[]");
}
