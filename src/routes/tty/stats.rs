//! What the terminals did, for `GET /metrics`: sessions open, bytes through their PTYs.
//! Process-wide atomics; the loop thread is the only writer.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::http::exposition::Exposition;

/// Terminal counters.
pub struct TtyStats {
    sessions_started: AtomicU64,
    sessions_ended: AtomicU64,
    pty_bytes_read: AtomicU64,
    pty_bytes_written: AtomicU64,
}

/// The process's terminal statistics.
pub static TTY_STATS: TtyStats = TtyStats {
    sessions_started: AtomicU64::new(0),
    sessions_ended: AtomicU64::new(0),
    pty_bytes_read: AtomicU64::new(0),
    pty_bytes_written: AtomicU64::new(0),
};

impl TtyStats {
    pub fn session_started(&self) {
        self.sessions_started.fetch_add(1, Ordering::Relaxed);
    }

    pub fn session_ended(&self) {
        self.sessions_ended.fetch_add(1, Ordering::Relaxed);
    }

    pub fn read(&self, n: usize) {
        self.pty_bytes_read.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn written(&self, n: usize) {
        self.pty_bytes_written
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn write(&self, out: &mut Exposition) {
        let started = self.sessions_started.load(Ordering::Relaxed);
        let ended = self.sessions_ended.load(Ordering::Relaxed);
        out.gauge(
            "wsbridge_terminal_sessions",
            "Terminal sessions running (a program on a PTY).",
            started.saturating_sub(ended) as f64,
        );
        out.counter(
            "wsbridge_terminal_sessions_started_total",
            "Terminal sessions started.",
            started,
        );
        out.labeled(
            "wsbridge_pty_bytes_total",
            "counter",
            "Bytes read from (output) and written to (input) PTY masters.",
            "direction",
            [
                ("output", self.pty_bytes_read.load(Ordering::Relaxed)),
                ("input", self.pty_bytes_written.load(Ordering::Relaxed)),
            ],
        );
    }
}
