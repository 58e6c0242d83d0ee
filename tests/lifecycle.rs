//! Timers, backpressure, limits and shutdown of the real server, with real sockets.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use common::*;
use tungstenite::Message;

#[test]
fn silent_peer_is_pinged_then_closed_but_an_answering_one_stays() {
    let server = ServerProcess::start(&["--ping-interval", "0.2", "--idle-timeout", "1"]);
    // A raw client that never answers: it sees Pings, then a Close 1001, then EOF.
    let (mut silent, head) = raw_upgrade(server.addr, "/echo", "");
    assert!(head.starts_with("HTTP/1.1 101 "));
    // tungstenite answers every Ping with a Pong, so it is never idle.
    let mut lively = connect(&server.ws_url("/echo"));
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = lively.get_ref() {
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
    }
    let start = Instant::now();
    let mut pings = 0;
    while start.elapsed() < Duration::from_secs(2) {
        match lively.read() {
            Ok(Message::Ping(_)) => pings += 1,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("the answering client was dropped: {e}"),
        }
        let _ = lively.flush();
    }
    assert!(pings >= 2, "pings seen: {pings}");
    lively.send(Message::text("alive")).unwrap();
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = lively.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    loop {
        match lively.read().unwrap() {
            Message::Ping(_) => continue,
            message => {
                assert_eq!(message, Message::text("alive"));
                break;
            }
        }
    }
    let frames = server_frames(&read_to_end(&mut silent));
    assert!(
        frames.iter().any(|(_, op, _)| *op == 0x9),
        "the silent client was pinged"
    );
    let (_, op, payload) = frames.last().unwrap();
    assert_eq!((*op, close_code(payload)), (0x8, Some(1001)));
}

#[test]
fn slow_handshake_is_cut_at_the_timeout() {
    let server = ServerProcess::start(&["--handshake-timeout", "0.5"]);
    let mut s = raw(server.addr);
    s.write_all(b"GET / HTTP/1.1\r\nHost: ").unwrap();
    let start = Instant::now();
    // Dribble a byte every 100 ms: the server must not wait for ever.
    let mut closed = false;
    while start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
        if s.write_all(b"a").is_err() {
            closed = true;
            break;
        }
        s.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 16];
        let r = s.read(&mut buf);
        s.set_nonblocking(false).unwrap();
        if matches!(r, Ok(0)) || matches!(&r, Err(e) if e.kind() != ErrorKind::WouldBlock) {
            closed = true;
            break;
        }
    }
    assert!(closed, "the dribbling client was never disconnected");
}

#[test]
fn a_client_that_never_reads_is_paused_then_closed_and_others_are_served() {
    let server = ServerProcess::start(&["--write-timeout", "1"]);
    let (mut hog, _) = raw_upgrade(server.addr, "/echo", "");
    hog.set_nonblocking(true).unwrap();
    // Send 1 MiB messages without reading the echoes until the socket refuses more: the server
    // stopped reading (backpressure) instead of buffering without bound.
    let frame = client_frame(true, 0x2, &vec![7u8; 1 << 20]);
    let mut sent = 0usize;
    let mut offset = 0usize;
    let start = Instant::now();
    loop {
        match hog.write(&frame[offset..]) {
            Ok(n) => {
                sent += n;
                offset = (offset + n) % frame.len();
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(200));
                if hog.write(&frame[offset..offset + 1]).is_err() {
                    break;
                }
                sent += 1;
                offset += 1;
            }
            Err(_) => break,
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the server never pushed back"
        );
    }
    let rss_while_stuck = server.rss_kib();
    assert!(sent < 256 << 20, "sent {sent} bytes before backpressure");
    // Meanwhile another client is served.
    let mut ws = connect(&server.ws_url("/echo"));
    ws.send(Message::text("fine")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("fine"));
    // After the write timeout without progress, the hog is dropped.
    hog.set_nonblocking(false).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let mut buf = vec![0u8; 1 << 16];
    let mut closed = false;
    for _ in 0..10_000 {
        match hog.read(&mut buf) {
            Ok(0) | Err(_) => {
                closed = true;
                break;
            }
            Ok(_) => {}
        }
    }
    assert!(closed, "the hog was not closed");
    assert!(
        rss_while_stuck < 64 * 1024,
        "server RSS {rss_while_stuck} KiB while one client refused to read"
    );
}

#[test]
fn paused_reader_resumes_and_nothing_is_lost() {
    let server = ServerProcess::start(&[]);
    let (mut s, _) = raw_upgrade(server.addr, "/echo", "");
    let payload: Vec<u8> = (0..(256 << 10)).map(|i| (i % 253) as u8).collect();
    let frame = client_frame(true, 0x2, &payload);
    let count = 64; // 16 MiB through a server whose high-water mark is 1 MiB
    let writer = {
        let mut s = s.try_clone().unwrap();
        std::thread::spawn(move || {
            for _ in 0..count {
                s.write_all(&frame).unwrap();
            }
            s.write_all(&client_frame(true, 0x8, &[0x03, 0xe8]))
                .unwrap();
        })
    };
    // Read slowly at first so the server must pause reading, then catch up.
    std::thread::sleep(Duration::from_millis(500));
    let bytes = read_to_end(&mut s);
    writer.join().unwrap();
    let frames = server_frames(&bytes);
    assert_eq!(frames.len(), count + 1);
    for (fin, op, data) in &frames[..count] {
        assert!(*fin && *op == 0x2 && *data == payload);
    }
    assert_eq!(frames[count].1, 0x8);
}

#[test]
fn sigterm_sends_going_away_and_exits_zero() {
    let mut server = ServerProcess::start(&[]);
    let mut ws = connect(&server.ws_url("/echo"));
    ws.send(Message::text("before")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("before"));
    let (mut raw_client, _) = raw_upgrade(server.addr, "/echo", "");
    server.signal(libc::SIGTERM);
    match ws.read().unwrap() {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected Close 1001, got {other:?}"),
    }
    // tungstenite answers the Close; the raw client never does, so the server waits for it
    // at most the close timeout.
    let _ = ws.flush();
    let frames = server_frames(&read_to_end_or_timeout(&mut raw_client));
    assert_eq!(
        frames.last().map(|f| (f.1, close_code(&f.2))),
        Some((0x8, Some(1001)))
    );
    let status = server
        .wait_exit(Duration::from_secs(15))
        .expect("server exited");
    assert!(status.success(), "{status:?}");
}

fn read_to_end_or_timeout(s: &mut std::net::TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    read_to_end(s)
}

#[test]
fn connection_cap_refuses_with_503() {
    let server = ServerProcess::start(&["--max-connections", "2"]);
    let _a = connect(&server.ws_url("/echo"));
    let _b = connect(&server.ws_url("/echo"));
    let mut c = raw(server.addr);
    let _ = c.write_all(upgrade_request("/echo", "").as_bytes());
    let response = String::from_utf8_lossy(&read_to_end(&mut c)).into_owned();
    assert!(response.starts_with("HTTP/1.1 503 "), "{response:?}");
}

#[test]
fn handshake_cap_refuses_with_503() {
    let server = ServerProcess::start(&["--max-handshakes", "2"]);
    // Two connections that never finish their request head fill the handshake slots.
    let _a = raw(server.addr);
    let _b = raw(server.addr);
    std::thread::sleep(Duration::from_millis(200));
    let mut c = raw(server.addr);
    let _ = c.write_all(upgrade_request("/echo", "").as_bytes());
    let response = String::from_utf8_lossy(&read_to_end(&mut c)).into_owned();
    assert!(response.starts_with("HTTP/1.1 503 "), "{response:?}");
    // Upgraded connections do not count: once the slow ones go, others get in.
    drop((_a, _b));
    std::thread::sleep(Duration::from_millis(200));
    let mut ws = connect(&server.ws_url("/echo"));
    ws.send(Message::text("in")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("in"));
}

fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[test]
fn abrupt_resets_do_not_hurt_the_server() {
    let server = ServerProcess::start(&[]);
    let fds_before = open_fds(server.pid());
    for i in 0..50 {
        let (s, _) = raw_upgrade(server.addr, "/echo", "");
        let mut s = s;
        // Half a frame, then a reset (SO_LINGER 0) or a plain drop.
        let _ = s.write_all(&client_frame(true, 0x2, &[0u8; 1000])[..500]);
        if i % 2 == 0 {
            set_linger_zero(&s);
        }
        drop(s);
    }
    let mut ws = connect(&server.ws_url("/echo"));
    ws.send(Message::text("alive")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("alive"));
    drop(ws);
    // Every descriptor of the dropped connections is released (the server notices each peer's
    // reset or FIN; give it a moment).
    let start = Instant::now();
    while open_fds(server.pid()) > fds_before && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(open_fds(server.pid()), fds_before, "descriptors leaked");
}

/// Set SO_LINGER to zero so that close sends RST.
fn set_linger_zero(s: &std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads a linger struct of the size we pass, on a socket we own.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
}
