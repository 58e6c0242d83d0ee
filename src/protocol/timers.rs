//! The connection's timers, sans-IO in quinn's manner: time is passed in, never read.
//!
//! The caller tells the connection when bytes arrived ([`Connection::on_heard`]), asks when it
//! next needs attention ([`Connection::poll_timeout`]) and calls
//! [`Connection::handle_timeout`] at or after that time. Three timers:
//!
//! * **ping**: after `ping_interval` without hearing from the peer, a Ping (RFC 6455 §5.5.2:
//!   "A Ping frame MAY be sent ... as a keepalive or as a means to verify that the remote
//!   endpoint is still responsive"), and again every `ping_interval` while silent;
//! * **idle**: after `idle_timeout` of total silence (Pongs included), the connection is
//!   closed with 1001;
//! * **close wait**: after this side sent its Close, the peer has `close_timeout` to answer
//!   (§7.1.1 lets the server close the TCP connection then);
//! * **stalled message**: a fragmented message that gets no further for `message_stall` is
//!   closed with 1008, however many control frames arrive between its fragments (a Pong
//!   keeps the connection alive, not a half-sent message and its buffer).
//!
//! Times are [`Stamp`]s: milliseconds on the caller's monotonic clock in 4 bytes, so that
//! thousands of idle connections each carry a few of them cheaply.
//!
//! [`Connection::on_heard`]: super::Connection::on_heard
//! [`Connection::poll_timeout`]: super::Connection::poll_timeout
//! [`Connection::handle_timeout`]: super::Connection::handle_timeout

use std::time::{Duration, Instant};

/// A time as milliseconds on the caller's monotonic clock. It wraps after 49 days, so only
/// differences between recent stamps mean anything, which is all timers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stamp(u32);

impl Stamp {
    /// The stamp `millis` milliseconds after the clock's origin.
    pub fn from_millis(millis: u64) -> Stamp {
        Stamp(millis as u32)
    }

    /// The stamp of `now` on a clock that started at `origin`.
    pub fn at(origin: Instant, now: Instant) -> Stamp {
        Stamp::from_millis(now.saturating_duration_since(origin).as_millis() as u64)
    }

    /// Time from `earlier` to `self` (zero if `earlier` is later).
    pub fn since(self, earlier: Stamp) -> Duration {
        let diff = self.0.wrapping_sub(earlier.0);
        if (diff as i32) < 0 {
            Duration::ZERO
        } else {
            Duration::from_millis(diff as u64)
        }
    }

    /// `duration` after `self`.
    pub fn after(self, duration: Duration) -> Stamp {
        Stamp(
            self.0
                .wrapping_add(duration.as_millis().min(u32::MAX as u128 / 2) as u32),
        )
    }

    /// Whether `deadline` has come (for deadlines set less than 24 days before).
    pub fn reached(self, deadline: Stamp) -> bool {
        (self.0.wrapping_sub(deadline.0) as i32) >= 0
    }

    /// The earlier of two stamps that are less than 24 days apart.
    pub fn min(self, other: Stamp) -> Stamp {
        if self.reached(other) { other } else { self }
    }
}

/// How long the connection waits for each thing; the server's policy, passed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// A Ping is sent after this long without hearing from the peer.
    pub ping_interval: Duration,
    /// A connection that sent nothing at all (Pongs included) for this long is closed (1001).
    pub idle_timeout: Duration,
    /// How long to wait for the peer's Close after sending ours.
    pub close_timeout: Duration,
    /// How long a message in progress may go without a byte of it arriving.
    pub message_stall: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            close_timeout: Duration::from_secs(5),
            message_stall: Duration::from_secs(30),
        }
    }
}

/// What [`super::Connection::handle_timeout`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// A Ping went into `out` (keep-alive).
    PingSent,
    /// The peer was silent too long: a Close 1001 went into `out`. Nothing more is expected of
    /// the peer; close the TCP connection once `out` is flushed.
    Idle,
    /// The peer did not answer our Close in time: close the TCP connection now.
    CloseWaitOver,
    /// A message in progress got no further for too long: a Close 1008 went into `out`.
    MessageStalled,
}

/// Where the timers stand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum TimerPhase {
    /// No time has been passed in yet.
    #[default]
    Unstarted,
    /// Ping and idle run.
    Running,
    /// Our Close is out; `close_deadline` is when the wait for the peer's ends.
    CloseWait,
}

/// The timer state of one connection (24 bytes).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Timers {
    /// When bytes last arrived from the peer.
    pub last_heard: Stamp,
    /// When this side last sent a Ping (or the timers started).
    pub last_ping: Stamp,
    /// When the wait for the peer's Close ends (in [`TimerPhase::CloseWait`]).
    pub close_deadline: Stamp,
    /// The progress of the message in progress when it was last seen to move, and when.
    pub progress_mark: u32,
    pub progress_at: Stamp,
    pub phase: TimerPhase,
}

impl Timers {
    /// Timers that start at `now`.
    pub fn started(now: Stamp) -> Timers {
        Timers {
            last_heard: now,
            last_ping: now,
            close_deadline: now,
            progress_mark: 0,
            progress_at: now,
            phase: TimerPhase::Running,
        }
    }

    /// When the ping or the idle timer fires next.
    pub fn open_deadline(&self, timeouts: &Timeouts) -> Stamp {
        let ping_at = self
            .last_heard
            .max_stamp(self.last_ping)
            .after(timeouts.ping_interval);
        ping_at.min(self.last_heard.after(timeouts.idle_timeout))
    }
}

impl Stamp {
    /// The later of two stamps that are less than 24 days apart.
    fn max_stamp(self, other: Stamp) -> Stamp {
        if self.reached(other) { self } else { other }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_wrap_and_compare() {
        let a = Stamp(u32::MAX - 5);
        let b = a.after(Duration::from_millis(10));
        assert_eq!(b.since(a), Duration::from_millis(10));
        assert_eq!(a.since(b), Duration::ZERO);
        assert!(b.reached(a) && !a.reached(b));
        assert_eq!(a.min(b), a);
        assert_eq!(b.min(a), a);
    }
}
