//! Hostile and careless peers against the real server binary: wrong tokens, floods, resource
//! exhaustion, half-closed sockets. Each ends in a clear HTTP status or close code, and the
//! server keeps serving a well-behaved client.

mod common;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use common::*;
use tungstenite::Message;
use tungstenite::client::IntoClientRequest;

/// Open the SQL route (subprotocol hrana2) and present `jwt` in hello; returns the reply type.
fn sql_hello(server: &ServerProcess, jwt: &str) -> Result<String, u16> {
    let mut request = server.ws_url("/sql").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "hrana2".parse().unwrap());
    let (mut ws, _) = match tungstenite::connect(request) {
        Ok(ok) => ok,
        Err(tungstenite::Error::Http(response)) => return Err(response.status().as_u16()),
        Err(e) => panic!("connect: {e}"),
    };
    ws.send(Message::text(format!(
        r#"{{"type":"hello","jwt":"{jwt}"}}"#
    )))
    .unwrap();
    let reply = ws.read().unwrap();
    let value: serde_json::Value = serde_json::from_str(reply.to_text().unwrap()).unwrap();
    Ok(value["type"].as_str().unwrap_or_default().to_string())
}

#[test]
fn repeated_wrong_tokens_are_slowed_down() {
    let server = ServerProcess::start(&["--token", "the-right-token"]);
    for _ in 0..3 {
        assert_eq!(sql_hello(&server, "guess").as_deref(), Ok("hello_error"));
    }
    // The fourth wrong token makes this address wait before its next attempt.
    assert_eq!(sql_hello(&server, "guess").as_deref(), Ok("hello_error"));
    assert_eq!(sql_hello(&server, "the-right-token"), Err(429));
    let (_, head) = raw_upgrade(server.addr, "/sql", "Sec-WebSocket-Protocol: hrana2\r\n");
    assert!(
        head.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nRetry-After: "), "{head}");
    // The echo route needs no token and is not held back.
    let mut ws = connect(&server.ws_url("/echo"));
    ws.send(Message::text("open")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("open"));
    // Once the wait is over, the right token works again.
    let start = Instant::now();
    loop {
        match sql_hello(&server, "the-right-token") {
            Ok(kind) => {
                assert_eq!(kind, "hello_ok");
                break;
            }
            Err(status) => assert_eq!(status, 429),
        }
        assert!(start.elapsed() < Duration::from_secs(30), "still refused");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn empty_continuation_flood_hits_the_byte_limit() {
    let server = ServerProcess::start(&["--max-message-size", "64KiB"]);
    let (mut s, _) = raw_upgrade(server.addr, "/echo", "");
    let mut flood = client_frame(false, 0x2, b"");
    for _ in 0..20_000 {
        flood.extend(client_frame(false, 0x0, b""));
    }
    let _ = s.write_all(&flood);
    let frames = server_frames(&read_to_end(&mut s));
    let (_, opcode, payload) = frames.last().expect("a close frame");
    assert_eq!((*opcode, close_code(payload)), (0x8, Some(1009)));
}

#[test]
fn a_huge_announced_frame_is_refused_at_once() {
    let server = ServerProcess::start(&[]);
    let (mut s, _) = raw_upgrade(server.addr, "/echo", "");
    // 2^62 bytes announced, four bytes of mask, no payload: refused from the header alone.
    s.write_all(&[0x82, 0xFF, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4])
        .unwrap();
    let frames = server_frames(&read_to_end(&mut s));
    assert_eq!(frames.last().map(|f| close_code(&f.2)), Some(Some(1009)));
    assert!(server.rss_kib() < 64 * 1024);
}

#[test]
fn half_closed_client_still_gets_its_echo() {
    let server = ServerProcess::start(&[]);
    let (mut s, _) = raw_upgrade(server.addr, "/echo", "");
    s.write_all(&client_frame(true, 0x1, b"last words"))
        .unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let frames = server_frames(&read_to_end(&mut s));
    assert_eq!(frames.first(), Some(&(true, 0x1, b"last words".to_vec())));
}

fn cpu_seconds(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / 100.0
}

#[test]
fn out_of_file_descriptors_does_not_spin_and_recovers() {
    // A server allowed 40 descriptors in all (soft and hard, so it cannot raise them).
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_wsbridge"));
    command.args(["serve", "--listen", "127.0.0.1:0", "--db", ":memory:"]);
    // SAFETY: setrlimit is async-signal-safe and only touches the child's own limits.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 40,
                rlim_max: 40,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let server = ServerProcess::spawn(command);
    let mut clients = Vec::new();
    for _ in 0..60 {
        clients.push(raw(server.addr));
    }
    // The backlog holds connections the server cannot accept: it must wait, not spin.
    let before = cpu_seconds(server.pid());
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_seconds(server.pid()) - before;
    assert!(
        used < 0.5,
        "the server burnt {used} s of CPU in 2 s while out of descriptors"
    );
    drop(clients);
    // Descriptors free again: a new client is served.
    let start = Instant::now();
    loop {
        let mut s = raw(server.addr);
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        if s.write_all(upgrade_request("/echo", "").as_bytes()).is_ok() {
            let head = read_head(&mut s);
            if head.starts_with("HTTP/1.1 101 ") {
                s.write_all(&client_frame(true, 0x1, b"back")).unwrap();
                let mut buf = [0u8; 6];
                s.read_exact(&mut buf).unwrap();
                assert_eq!(&buf, b"\x81\x04back");
                break;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the server did not recover"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
