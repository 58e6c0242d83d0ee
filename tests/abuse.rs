//! Hostile and careless peers against the real server binary: wrong tokens, floods, resource
//! exhaustion, half-closed sockets. Each ends in a clear HTTP status or close code, and the
//! server keeps serving a well-behaved client.

mod common;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::process::CommandExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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

const RIGHT: &str = "the-right-token-0123456789abcdef";

/// Guessing from the same address never locks out a client with the right token: checks are
/// judged in turn at a bounded rate, right and wrong alike, and nothing is refused for having
/// guessed.
#[test]
fn guessing_never_locks_out_the_right_token() {
    let server = Arc::new(ServerProcess::start(&["--token", RIGHT]));
    let stop = Arc::new(AtomicBool::new(false));
    let guesses = Arc::new(AtomicUsize::new(0));
    let guessers: Vec<_> = (0..8)
        .map(|_| {
            let (server, stop, guesses) = (server.clone(), stop.clone(), guesses.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    assert_eq!(sql_hello(&server, "guess").as_deref(), Ok("hello_error"));
                    guesses.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // Let the guessing get going: more guesses than the burst the gate allows at once.
    while guesses.load(Ordering::Relaxed) < wsbridge::auth::BURST as usize {
        std::thread::sleep(Duration::from_millis(10));
    }
    for _ in 0..3 {
        assert_eq!(sql_hello(&server, RIGHT).as_deref(), Ok("hello_ok"));
    }
    stop.store(true, Ordering::Relaxed);
    for guesser in guessers {
        guesser.join().unwrap();
    }
    // The echo route needs no token and was never held back.
    let mut ws = connect(&server.ws_url("/echo"));
    ws.send(Message::text("open")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("open"));
}

/// At most MAX_WAITING connections of one address wait for a token check on the routes that
/// need one; beyond, 429 at the upgrade. Echo connections are not counted.
#[test]
fn connections_waiting_for_a_token_are_capped_per_address() {
    let server = ServerProcess::start(&["--token", RIGHT]);
    let protocol = "Sec-WebSocket-Protocol: hrana2\r\n";
    let mut waiting: Vec<_> = (0..wsbridge::auth::MAX_WAITING)
        .map(|_| {
            let (s, head) = raw_upgrade(server.addr, "/sql", protocol);
            assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
            s
        })
        .collect();
    let (_, head) = raw_upgrade(server.addr, "/sql", protocol);
    assert!(
        head.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nRetry-After: "), "{head}");
    let mut ws = connect(&server.ws_url("/echo"));
    ws.send(Message::text("open")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("open"));
    // One leaves: its place is free again (the server notices the FIN).
    drop(waiting.pop());
    let start = Instant::now();
    loop {
        let (_, head) = raw_upgrade(server.addr, "/sql", protocol);
        if head.starts_with("HTTP/1.1 101 ") {
            break;
        }
        assert!(head.starts_with("HTTP/1.1 429 "), "{head}");
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the place was never freed"
        );
        std::thread::sleep(Duration::from_millis(20));
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

/// A wrong `hello` ends in `hello_error` and Close 1008, and the closing handshake completes
/// with the client's Close: the server reads on after its own Close, though the SQL session
/// stopped reading. (Found with Node's ws: its close event came at the close timeout.) The
/// close timeout here is ten minutes, so only the client's Close can end the connection before
/// the read timeout fails the test.
#[test]
fn a_refused_hello_completes_the_closing_handshake_with_the_clients_close() {
    let server = ServerProcess::start(&["--token", RIGHT, "--close-timeout", "600"]);
    let mut request = server.ws_url("/sql").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "hrana2".parse().unwrap());
    let (mut ws, _) = tungstenite::connect(request).expect("connect");
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    }
    ws.send(Message::text(r#"{"type":"hello","jwt":"wrong"}"#))
        .unwrap();
    let reply = ws.read().expect("hello_error");
    assert!(
        reply.to_text().unwrap().contains("hello_error"),
        "{reply:?}"
    );
    let mut close = None;
    loop {
        match ws.read() {
            Ok(Message::Close(frame)) => close = frame.map(|f| u16::from(f.code)),
            Ok(other) => panic!("after hello_error: {other:?}"),
            // tungstenite answered the Close; the server then closed the connection.
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("the closing handshake did not complete: {e}"),
        }
    }
    assert_eq!(close, Some(1008));
}
