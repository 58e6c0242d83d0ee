//! Many terminal sessions opened and closed leave no fd and no child behind (real PTYs, real shells).
//! Alone in its own test binary: it counts this process's fds and children.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use wsbridge::auth::{Admission, Policy};
use wsbridge::routes::Waker;
use wsbridge::routes::tty::reaper;
use wsbridge::routes::tty::session::{Config, Outcome, Session, Transport};
use wsbridge::routes::tty::sys::Command;

#[derive(Default)]
struct Sink {
    close: Option<u16>,
}

impl Transport for Sink {
    fn send_binary(&mut self, _payload: &[u8]) {}
    fn send_close(&mut self, code: u16, _reason: &str) {
        self.close = Some(code);
    }
    fn unsent(&self) -> usize {
        0
    }
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Our children, zombies included, found through their parent pid.
fn children() -> Vec<u32> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may contain spaces, so split after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        if rest.split_whitespace().nth(1) == Some(me.as_str()) {
            found.push(pid);
        }
    }
    found
}

/// A connection's standing with the token, from an address of its own (so the token gate's
/// per-address rate never delays a cycle).
fn admission(policy: &Arc<Policy>) -> Admission {
    static PEERS: AtomicU32 = AtomicU32::new(1);
    let peer = IpAddr::from(PEERS.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    policy
        .admission(Some(peer), Waker::noop(), Instant::now())
        .expect("admission")
}

fn cycle(config: &Arc<Config>, policy: &Arc<Policy>, init: &[u8], wait_for_exit: bool) {
    let mut session = Session::new(config.clone(), admission(policy), None);
    let mut sink = Sink::default();
    let outcome = session.handle_message(init, Instant::now(), &mut sink);
    if outcome == Outcome::Spawned && wait_for_exit {
        let deadline = Instant::now() + Duration::from_secs(10);
        while session.handle_ready(&mut sink) != Outcome::Closed {
            assert!(Instant::now() < deadline, "the program did not exit");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(sink.close, Some(1000));
    }
    session.close();
}

#[test]
fn open_close_cycles_leak_nothing() {
    let token = "cycle-token";
    let policy = Arc::new(Policy::new(Some(token.into()), vec![], vec![]));
    let shell = Arc::new(Config::new(Command::new("/bin/sh")));
    let quick = Arc::new(Config::new(Command::new("/bin/sh").arg("-c").arg("exit 0")));
    let good = format!(r#"{{"AuthToken":"{token}","columns":80,"rows":24}}"#);
    let bad = br#"{"AuthToken":"nope"}"#;

    // Warm up lazily created things (the reaper thread) before counting.
    cycle(&shell, &policy, good.as_bytes(), false);
    assert!(reaper::wait_idle(Duration::from_secs(10)));
    let fds_before = fd_count();

    let start = Instant::now();
    for i in 0..500 {
        match i % 3 {
            0 => cycle(&shell, &policy, good.as_bytes(), false), // client leaves: hang-up path
            1 => cycle(&quick, &policy, good.as_bytes(), true),  // program exits: close 1000 path
            _ => cycle(&shell, &policy, bad, false),             // refused: nothing runs
        }
    }
    assert!(
        reaper::wait_idle(Duration::from_secs(20)),
        "children not reaped"
    );
    eprintln!("500 cycles in {:?}", start.elapsed());

    assert_eq!(fd_count(), fds_before, "fds leaked");
    assert_eq!(children(), Vec::<u32>::new(), "children (zombies?) left");
}
