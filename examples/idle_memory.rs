//! The memory an idle upgraded connection costs a server: open N WebSocket connections to it,
//! keep them open and idle, and compare the server's resident memory before and after.
//!
//! `idle_memory ws://127.0.0.1:6455/echo SERVER_PID [N] [plain|deflate|deflate-after-one]`
//! prints one line of JSON. `deflate` offers permessage-deflate (as browsers do) and stays idle;
//! `deflate-after-one` also sends one compressed 1 KiB text message on each connection and reads
//! its (compressed) echo first, so that the server's engines have been used once.
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

/// A masked (key 0), compressed text frame of 1 KiB, the same for every connection (each starts
/// with an empty window).
fn compressed_frame() -> Vec<u8> {
    let text: Vec<u8> = (0..1024).map(|i| b"idle memory, "[i % 13]).collect();
    let mut compress = flate2::Compress::new(flate2::Compression::fast(), false);
    let mut payload = Vec::with_capacity(2048);
    compress
        .compress_vec(&text, &mut payload, flate2::FlushCompress::Sync)
        .expect("compress");
    payload.truncate(payload.len() - 4);
    assert!(payload.len() < 126);
    let mut frame = vec![0xc1, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(&payload);
    frame
}

/// Read one whole frame from the server.
fn read_frame(stream: &mut TcpStream) {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).expect("echo header");
    let len = match head[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            stream.read_exact(&mut b).expect("length");
            u16::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).expect("echo payload");
}

/// Open one connection and complete the upgrade.
fn upgrade(url: &WsUrl, deflate: bool) -> TcpStream {
    let mut stream = TcpStream::connect(url.authority()).expect("connect");
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{}\r\n",
        url.path,
        url.authority(),
        if deflate {
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        } else {
            ""
        }
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
    let mode = args.next().unwrap_or_else(|| "plain".into());
    let (deflate, one_message) = match mode.as_str() {
        "plain" => (false, false),
        "deflate" => (true, false),
        "deflate-after-one" => (true, true),
        other => panic!("unknown mode {other:?}"),
    };
    let frame = compressed_frame();
    raise_fd_limit();
    let open = || {
        let mut stream = upgrade(&url, deflate);
        if one_message {
            stream.write_all(&frame).expect("send");
            read_frame(&mut stream);
        }
        stream
    };
    // One connection first, so buffers every server allocates once are in the baseline.
    let first = open();
    std::thread::sleep(Duration::from_millis(300));
    let before = rss_kib(pid);
    let conns: Vec<TcpStream> = (0..n).map(|_| open()).collect();
    std::thread::sleep(Duration::from_secs(1));
    let after = rss_kib(pid);
    let per_conn = (after.saturating_sub(before)) as f64 / n as f64;
    println!(
        "{{\"mode\":\"{mode}\",\"connections\":{n},\"rss_before_kib\":{before},\"rss_after_kib\":{after},\"kib_per_connection\":{per_conn:.3}}}"
    );
    drop(conns);
    drop(first);
}
