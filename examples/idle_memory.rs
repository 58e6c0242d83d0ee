//! The memory an idle upgraded connection costs a server: open N WebSocket connections to it,
//! keep them open and idle, and compare the server's resident memory before and after.
//!
//! `idle_memory ws://127.0.0.1:6455/echo SERVER_PID [N]` prints one line of JSON.
//! Used by benches/idle_memory.sh; the figures are in BENCHMARKS.md.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use wsbridge::client::WsUrl;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("server is running");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

/// Open one connection and complete the upgrade.
fn upgrade(url: &WsUrl) -> TcpStream {
    let mut stream = TcpStream::connect(url.authority()).expect("connect");
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        url.path,
        url.authority()
    );
    stream.write_all(request.as_bytes()).expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("read the response");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "not upgraded: {}",
        String::from_utf8_lossy(&head)
    );
    stream
}

fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the rlimit we own.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let url = WsUrl::parse(&args.next().expect("URL")).expect("ws:// URL");
    let pid: u32 = args.next().expect("server PID").parse().expect("PID");
    let n: usize = args.next().map_or(10_000, |v| v.parse().expect("N"));
    raise_fd_limit();
    // One connection first, so buffers every server allocates once are in the baseline.
    let first = upgrade(&url);
    std::thread::sleep(Duration::from_millis(300));
    let before = rss_kib(pid);
    let conns: Vec<TcpStream> = (0..n).map(|_| upgrade(&url)).collect();
    std::thread::sleep(Duration::from_secs(1));
    let after = rss_kib(pid);
    let per_conn = (after.saturating_sub(before)) as f64 / n as f64;
    println!(
        "{{\"connections\":{n},\"rss_before_kib\":{before},\"rss_after_kib\":{after},\"kib_per_connection\":{per_conn:.3}}}"
    );
    drop(conns);
    drop(first);
}
