//! A client that never reads while `yes` floods its terminal keeps the server's memory bounded, and
//! the output flows again once it reads. Alone in its binary: it measures this process's RSS.

mod common;

use std::time::{Duration, Instant};

use common::tty::*;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_client_that_never_reads_keeps_memory_bounded() {
    let server = TestServer::start(Options {
        program: "yes".into(),
        ..Options::default()
    });
    let mut client = open_session(server.addr);
    client.wait_for("y\r\ny\r\n");
    let before = rss_kib();
    // Not reading: socket buffers fill, then the server's output queue, then the PTY.
    std::thread::sleep(Duration::from_secs(3));
    let grown = rss_kib().saturating_sub(before);
    eprintln!("RSS grew by {grown} KiB while the client did not read");
    assert!(grown < 16 * 1024, "RSS grew by {grown} KiB");

    // Reading again: output flows (several MiB within a second).
    let start_len = client.output.len();
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        client.poll();
    }
    let read = client.output.len() - start_len;
    assert!(read > 4 << 20, "only {read} bytes after resuming");
}
