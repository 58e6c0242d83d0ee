//! 500 terminal sessions opened and closed over real sockets leave the fd count and the children
//! unchanged. Alone in its binary: it counts this process's fds and children.

mod common;

use std::time::{Duration, Instant};

use common::tty::*;
use wsbridge::routes::tty::reaper;

#[test]
fn five_hundred_cycles_leak_nothing() {
    // Auth off: this is about descriptors and children, and 500 token checks from one address
    // would be judged at the gate's rate (tests/abuse.rs covers that).
    let server = TestServer::start(Options {
        token: None,
        ..Options::default()
    });
    // Warm up (the reaper thread, lazily created buffers).
    let mut client = open_session(server.addr);
    client.input(b"echo warm\r");
    client.wait_for("warm");
    drop(client);
    assert!(reaper::wait_idle(Duration::from_secs(10)));
    std::thread::sleep(Duration::from_millis(200));
    let fds = fd_count();

    let start = Instant::now();
    for i in 0..500 {
        let mut client = open_session(server.addr);
        if i % 2 == 0 {
            // Wait for the shell to really run before leaving.
            client.input(b"echo ok\r");
            client.wait_for("ok");
        }
        if i % 3 == 0 {
            client.ws.close(None).unwrap();
            while client.poll() {}
        }
        drop(client);
    }
    eprintln!("500 cycles in {:?}", start.elapsed());

    assert!(
        reaper::wait_idle(Duration::from_secs(30)),
        "children not reaped"
    );
    // The server closes its side of each connection once the peer's FIN arrived.
    let deadline = Instant::now() + Duration::from_secs(10);
    while fd_count() != fds && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(fd_count(), fds, "fds leaked");
    assert_eq!(children(), Vec::<u32>::new(), "children left");
}
