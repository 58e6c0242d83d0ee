//! `wsbridge serve --trace` on the real binary: frames are logged both ways, and secrets never
//! reach the log, even when a client sends its first frame in the same segment as its upgrade
//! request (before the server has chosen the route).

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{ServerProcess, client_frame, raw, read_head, upgrade_request};

/// Start a tracing server whose log goes to a file, run `talk`, stop the server, return the log.
fn traced(name: &str, args: &[&str], talk: impl FnOnce(&ServerProcess)) -> String {
    let log_path =
        std::env::temp_dir().join(format!("wsbridge-trace-{}-{name}.log", std::process::id()));
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_wsbridge"));
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
            ":memory:",
            "--trace",
        ])
        .args(args)
        // The trace is asked for on the command line: it shows even with the log at `warn`.
        .env("WSBRIDGE_LOG", "warn");
    let mut server = ServerProcess::spawn_with_stderr(command, Stdio::from(log));
    talk(&server);
    server.signal(libc::SIGTERM);
    server.wait_exit(Duration::from_secs(10));
    let text = std::fs::read_to_string(&log_path).expect("read log");
    let _ = std::fs::remove_file(&log_path);
    text
}

/// Whether any 8 consecutive characters of the token appear in the log (a payload preview cut
/// short may show only part of it).
fn leaks(log: &str, token: &str) -> bool {
    token
        .as_bytes()
        .windows(8)
        .any(|w| log.contains(std::str::from_utf8(w).unwrap_or_default()))
}

/// Upgrade and first message in one write; returns the response head and the first frame.
fn upgrade_with_first_frame(
    server: &ServerProcess,
    protocol: &str,
    opcode: u8,
    payload: &[u8],
) -> (String, Vec<u8>) {
    let mut s = raw(server.addr);
    let mut bytes = upgrade_request(
        &format!("/?token={}", server.token()),
        &format!(
            "Sec-WebSocket-Protocol: {protocol}\r\nCookie: c={}\r\n",
            server.token()
        ),
    )
    .into_bytes();
    bytes.extend(client_frame(true, opcode, payload));
    s.write_all(&bytes).expect("write");
    let head = read_head(&mut s);
    let mut header = [0u8; 2];
    s.read_exact(&mut header).expect("frame header");
    let mut payload = vec![0u8; usize::from(header[1] & 0x7f)];
    s.read_exact(&mut payload).expect("frame payload");
    (head, payload)
}

#[test]
fn sql_hello_in_the_upgrade_segment_is_traced_redacted() {
    let mut token = String::new();
    let log = traced("sql", &[], |server| {
        token = server.token();
        let hello = format!(r#"{{"type":"hello","jwt":"{token}"}}"#);
        let (head, reply) = upgrade_with_first_frame(server, "hrana2", 1, hello.as_bytes());
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert_eq!(reply, br#"{"type":"hello_ok"}"#);
    });
    assert!(token.len() >= 16, "token {token:?}");
    assert!(!leaks(&log, &token), "the token leaked:\n{log}");
    assert!(log.contains("client -> server HTTP head"), "{log}");
    assert!(log.contains("token=<redacted>"), "{log}");
    assert!(log.contains("Cookie: <redacted>"), "{log}");
    assert!(log.contains("Sql message: hello"), "{log}");
    assert!(log.contains("server -> client Text (1) FIN"), "{log}");
}

#[test]
fn tty_auth_token_and_input_are_traced_redacted() {
    let mut token = String::new();
    let log = traced("tty", &["--shell", "/bin/cat"], |server| {
        token = server.token();
        let init = format!(r#"{{"AuthToken":"{token}","columns":80,"rows":24}}"#);
        let (head, _first) = upgrade_with_first_frame(server, "tty", 2, init.as_bytes());
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    });
    assert!(!leaks(&log, &token), "the token leaked:\n{log}");
    assert!(log.contains("AuthToken <redacted>"), "{log}");
}
