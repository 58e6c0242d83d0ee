//! Ends and reaps the children of closed terminal sessions, off the event loop.
//!
//! A session whose client went away hands its child here ([`hang_up`]): its process group and every
//! other process of its session (a shell's background jobs have their own groups) get `SIGHUP` at
//! once and `SIGKILL` when the grace period ends; the child is reaped with a non-blocking `waitpid`
//! (only our own pids: never `waitpid(-1)`, which would steal other children). The session's other
//! members are not our children: init reaps them.
//! One lazily started thread polls while there is work and sleeps on a condition variable otherwise.
//!
//! It also serves as the exit watcher on kernels without `pidfd_open` ([`watch`]): it then peeks with
//! `waitid(WNOWAIT)` and calls the session's waker, leaving the reaping to the session.
#![forbid(unsafe_code)]

use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::sys::{self, Child, Signal};
use crate::routes::Waker;

/// How often the thread looks at its children while it has any.
const POLL: Duration = Duration::from_millis(10);
/// How often it looks in `/proc` for what is left of a session whose leader is reaped.
const SCAN: Duration = Duration::from_millis(100);

enum Job {
    /// A hung-up child (and its session) to kill at `kill_at` if still alive, and to reap.
    Doomed {
        child: Child,
        kill_at: Instant,
        killed: bool,
        /// When the session was last looked for other live members (after the child was reaped).
        last_scan: Option<Instant>,
    },
    /// A live session's child to watch for exit (no pidfd): wake the session, do not reap.
    Watch { pid: libc::pid_t, waker: Waker },
}

struct Reaper {
    jobs: Mutex<Vec<Job>>,
    work: Condvar,
    idle: Condvar,
}

fn reaper() -> &'static Reaper {
    static REAPER: OnceLock<&'static Reaper> = OnceLock::new();
    REAPER.get_or_init(|| {
        let r: &'static Reaper = Box::leak(Box::new(Reaper {
            jobs: Mutex::new(Vec::new()),
            work: Condvar::new(),
            idle: Condvar::new(),
        }));
        if let Err(e) = std::thread::Builder::new()
            .name("wsbridge-reaper".into())
            .spawn(move || run(r))
        {
            log::error!("tty: cannot start the reaper thread: {e}");
        }
        r
    })
}

fn lock(r: &Reaper) -> MutexGuard<'_, Vec<Job>> {
    // A panic while holding the lock cannot leave the Vec inconsistent; keep going.
    r.jobs.lock().unwrap_or_else(|e| e.into_inner())
}

/// Hangs up `child`'s process group and session now (`SIGHUP`), kills them (`SIGKILL`) after `grace`
/// if anything is still alive, and reaps the child. Also for a child already reaped: what it left
/// running in its session goes too. Returns at once.
pub fn hang_up(mut child: Child, grace: Duration) {
    let reaped = matches!(child.try_wait(), Ok(Some(_)));
    if !reaped && let Err(e) = child.signal_group(Signal::Hangup) {
        log::warn!("tty: SIGHUP to process group {}: {e}", child.pid());
    }
    // The session id is the leader's pid; while any member lives, the kernel does not reuse it.
    let others = sys::signal_session(child.pid(), Signal::Hangup);
    if reaped && others == 0 {
        return;
    }
    let r = reaper();
    lock(r).push(Job::Doomed {
        child,
        kill_at: Instant::now() + grace,
        killed: false,
        last_scan: None,
    });
    r.work.notify_one();
}

/// Calls `waker` once when the child `pid` has exited, without reaping it. For kernels where
/// `pidfd_open` is unavailable. The watch ends by itself once it has fired.
pub fn watch(pid: u32, waker: Waker) {
    let r = reaper();
    lock(r).push(Job::Watch {
        pid: pid as libc::pid_t,
        waker,
    });
    r.work.notify_one();
}

/// Stops watching `pid` (the session reaped it itself, or is going away).
pub fn unwatch(pid: u32) {
    let pid = pid as libc::pid_t;
    lock(reaper()).retain(|job| !matches!(job, Job::Watch { pid: p, .. } if *p == pid));
}

/// How many hung-up children are not reaped yet.
pub fn pending() -> usize {
    lock(reaper())
        .iter()
        .filter(|j| matches!(j, Job::Doomed { .. }))
        .count()
}

/// Waits until every hung-up child is reaped or `timeout` passes; after the timeout every remaining one
/// gets `SIGKILL` at once (for shutdown). Returns whether all were reaped.
pub fn wait_idle(timeout: Duration) -> bool {
    let r = reaper();
    let deadline = Instant::now() + timeout;
    let mut jobs = lock(r);
    loop {
        if !jobs.iter().any(|j| matches!(j, Job::Doomed { .. })) {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            for job in jobs.iter_mut() {
                if let Job::Doomed { kill_at, .. } = job {
                    *kill_at = now;
                }
            }
            r.work.notify_one();
            // SIGKILLed processes die promptly; give the thread a moment to reap them.
            let (j, _) = r
                .idle
                .wait_timeout(jobs, Duration::from_millis(500))
                .unwrap_or_else(|e| e.into_inner());
            return !j.iter().any(|j| matches!(j, Job::Doomed { .. }));
        }
        jobs = r
            .idle
            .wait_timeout(jobs, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

fn run(r: &'static Reaper) {
    let mut jobs = lock(r);
    loop {
        if jobs.is_empty() {
            r.idle.notify_all();
            jobs = r.work.wait(jobs).unwrap_or_else(|e| e.into_inner());
            continue;
        }
        let now = Instant::now();
        let mut fired: Vec<Waker> = Vec::new();
        jobs.retain_mut(|job| match job {
            Job::Doomed {
                child,
                kill_at,
                killed,
                last_scan,
            } => {
                let reaped = match child.try_wait() {
                    Ok(status) => status.is_some(),
                    Err(e) => {
                        // ECHILD: someone else reaped it.
                        log::warn!("tty: waitpid({}): {e}", child.pid());
                        true
                    }
                };
                if !*killed && now >= *kill_at {
                    *killed = true;
                    if !reaped && let Err(e) = child.signal_group(Signal::Kill) {
                        log::warn!("tty: SIGKILL to process group {}: {e}", child.pid());
                    }
                    sys::signal_session(child.pid(), Signal::Kill);
                }
                if !reaped {
                    true
                } else if *killed {
                    false
                } else if last_scan.is_none_or(|t| now - t >= SCAN) {
                    *last_scan = Some(now);
                    !sys::session_members(child.pid()).is_empty()
                } else {
                    true
                }
            }
            Job::Watch { pid, waker } => match sys::has_exited(*pid) {
                Ok(false) => true,
                Ok(true) | Err(_) => {
                    fired.push(waker.clone());
                    false
                }
            },
        });
        if !fired.is_empty() {
            // Wake outside the lock: a waker may call back into this module.
            drop(jobs);
            for waker in fired {
                waker.wake();
            }
            jobs = lock(r);
        }
        if !jobs.iter().any(|j| matches!(j, Job::Doomed { .. })) {
            r.idle.notify_all();
        }
        jobs = r
            .work
            .wait_timeout(jobs, POLL)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}
