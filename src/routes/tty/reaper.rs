//! Ends and reaps the children of closed terminal sessions, off the event loop.
//!
//! A session whose client went away hands its child here ([`hang_up`], which returns at once: the
//! signals and the look through `/proc` for the session's other processes happen on this module's
//! thread, never on the event loop): its process group and every other process of its session (a
//! shell's background jobs have their own groups) get `SIGHUP` at once and `SIGKILL` when the
//! grace period ends; the child is reaped with a non-blocking `waitpid`
//! (only our own pids: never `waitpid(-1)`, which would steal other children). The session's other
//! members are not our children: init reaps them.
//! One lazily started thread polls while there is work and sleeps on a condition variable otherwise.
//!
//! It also serves as the exit watcher on kernels without `pidfd_open` ([`watch`]): it then peeks with
//! `waitid(WNOWAIT)` and calls the session's waker, leaving the reaping to the session.
#![forbid(unsafe_code)]

use std::os::fd::OwnedFd;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::sys::{self, Child, Signal};
use crate::routes::Waker;

/// How often the thread looks at its children while it has any.
const POLL: Duration = Duration::from_millis(10);
/// How often it looks in `/proc` for what is left of a session whose leader is reaped.
const SCAN: Duration = Duration::from_millis(100);

enum Job {
    /// A child (and its session) to hang up, kill at `kill_at` if still alive, and reap.
    Doomed {
        child: Child,
        /// The hang-up signal (`--signal`, `SIGHUP` by default) while it is still to be sent.
        hang_up: Option<Signal>,
        /// The PTY master, held open until the job is done (see [`hang_up`]).
        _master: Option<OwnedFd>,
        kill_at: Instant,
        killed: bool,
        /// When the session was last looked for other live members (after the child was reaped).
        last_scan: Option<Instant>,
    },
    /// A live session's child to watch for exit (no pidfd): wake the session, do not reap.
    Watch { pid: libc::pid_t, waker: Waker },
}

#[derive(Default)]
struct State {
    /// Jobs not being worked on right now (the thread takes them out while it signals, scans
    /// and reaps, so that nobody waits for the lock meanwhile).
    jobs: Vec<Job>,
    /// Doomed children not yet done with, wherever their job is.
    doomed: usize,
    /// Kill whatever is left now (shutdown's deadline passed).
    kill_now: bool,
    /// The thread holds jobs taken out of `jobs` (set while it works on them).
    busy: bool,
}

struct Reaper {
    state: Mutex<State>,
    work: Condvar,
    idle: Condvar,
}

fn reaper() -> &'static Reaper {
    static REAPER: OnceLock<&'static Reaper> = OnceLock::new();
    REAPER.get_or_init(|| {
        let r: &'static Reaper = Box::leak(Box::new(Reaper {
            state: Mutex::new(State::default()),
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

fn lock(r: &Reaper) -> MutexGuard<'_, State> {
    // A panic while holding the lock cannot leave the state inconsistent; keep going.
    r.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Hangs up `child`'s process group and session (`signal`, normally `SIGHUP`), kills them
/// (`SIGKILL`) after `grace` if anything is still alive, and reaps the child. Also for a child
/// already reaped: what it left running in its session goes too. Returns at once; the work is
/// done on the reaper's thread. `master`, a descriptor of the PTY master, is closed when the
/// job is done: until then the kernel's own hang-up of the terminal does not come first.
pub fn hang_up(child: Child, grace: Duration, signal: Signal, master: Option<OwnedFd>) {
    let r = reaper();
    let mut state = lock(r);
    state.doomed += 1;
    state.jobs.push(Job::Doomed {
        child,
        hang_up: Some(signal),
        _master: master,
        kill_at: Instant::now() + grace,
        killed: false,
        last_scan: None,
    });
    drop(state);
    r.work.notify_one();
}

/// Calls `waker` once when the child `pid` has exited, without reaping it. For kernels where
/// `pidfd_open` is unavailable. The watch ends by itself once it has fired.
pub fn watch(pid: u32, waker: Waker) {
    let r = reaper();
    lock(r).jobs.push(Job::Watch {
        pid: pid as libc::pid_t,
        waker,
    });
    r.work.notify_one();
}

/// Stops watching `pid` (the session reaped it itself, or is going away). A watch the thread
/// is looking at right now may still fire once, which is harmless.
pub fn unwatch(pid: u32) {
    let pid = pid as libc::pid_t;
    lock(reaper())
        .jobs
        .retain(|job| !matches!(job, Job::Watch { pid: p, .. } if *p == pid));
}

/// How many hung-up children are not reaped yet.
pub fn pending() -> usize {
    lock(reaper()).doomed
}

/// Waits until every hung-up child is reaped or `timeout` passes; after the timeout every remaining one
/// gets `SIGKILL` at once (for shutdown). Returns whether all were reaped.
pub fn wait_idle(timeout: Duration) -> bool {
    let r = reaper();
    let deadline = Instant::now() + timeout;
    let mut state = lock(r);
    loop {
        if state.doomed == 0 {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            state.kill_now = true;
            r.work.notify_one();
            // SIGKILLed processes die promptly; give the thread a moment to reap them.
            let (state, _) = r
                .idle
                .wait_timeout(state, Duration::from_millis(500))
                .unwrap_or_else(|e| e.into_inner());
            return state.doomed == 0;
        }
        state = r
            .idle
            .wait_timeout(state, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// `SIGKILL` to the process group of every hung-up child, now, on the calling thread: for a
/// server that must exit at once (a second interrupt). Their other session members and the
/// reaping are left to the system.
pub fn kill_all_now() {
    let r = reaper();
    let mut state = lock(r);
    // Jobs the thread holds right now are not in `jobs`, and the process exits as soon as this
    // returns, before the thread could act on `kill_now`: wait (briefly: it holds them only
    // while it signals, scans and reaps) until it has put them back.
    let deadline = Instant::now() + Duration::from_secs(1);
    while state.busy {
        let now = Instant::now();
        if now >= deadline {
            log::warn!("tty: the reaper is busy; some terminal programs may be left running");
            break;
        }
        state = r
            .idle
            .wait_timeout(state, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    state.kill_now = true;
    r.work.notify_one();
    for job in &state.jobs {
        if let Job::Doomed { child, .. } = job
            && let Err(e) = child.signal_group(Signal::Kill)
        {
            log::warn!("tty: SIGKILL to process group {}: {e}", child.pid());
        }
    }
}

/// One look at a doomed child: signal what is due, reap. Returns whether the job goes on.
fn look_at(
    child: &mut Child,
    hang_up: &mut Option<Signal>,
    kill_at: Instant,
    killed: &mut bool,
    last_scan: &mut Option<Instant>,
    now: Instant,
) -> bool {
    let reaped = match child.try_wait() {
        Ok(status) => status.is_some(),
        Err(e) => {
            // ECHILD: someone else reaped it.
            log::warn!("tty: waitpid({}): {e}", child.pid());
            true
        }
    };
    if let Some(signal) = hang_up.take() {
        if !reaped && let Err(e) = child.signal_group(signal) {
            log::warn!("tty: {signal:?} to process group {}: {e}", child.pid());
        }
        // The session id is the leader's pid; while any member lives, the kernel does not
        // reuse it.
        let others = sys::signal_session(child.pid(), signal);
        if reaped && others == 0 {
            return false;
        }
    }
    if !*killed && now >= kill_at {
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

fn run(r: &'static Reaper) {
    let mut state = lock(r);
    loop {
        if state.jobs.is_empty() {
            r.idle.notify_all();
            state = r.work.wait(state).unwrap_or_else(|e| e.into_inner());
            continue;
        }
        let kill_now = std::mem::take(&mut state.kill_now);
        let mut batch = std::mem::take(&mut state.jobs);
        state.busy = true;
        drop(state);
        // Signals, waitpid and /proc scans without the lock: the event loop's hang_up never
        // waits for them.
        let now = Instant::now();
        let mut fired: Vec<Waker> = Vec::new();
        let mut done = 0;
        batch.retain_mut(|job| match job {
            Job::Doomed {
                child,
                hang_up,
                kill_at,
                killed,
                last_scan,
                ..
            } => {
                if kill_now {
                    *kill_at = now;
                }
                let keep = look_at(child, hang_up, *kill_at, killed, last_scan, now);
                if !keep {
                    done += 1;
                }
                keep
            }
            Job::Watch { pid, waker } => match sys::has_exited(*pid) {
                Ok(false) => true,
                Ok(true) | Err(_) => {
                    fired.push(waker.clone());
                    false
                }
            },
        });
        for waker in fired {
            waker.wake();
        }
        state = lock(r);
        batch.append(&mut state.jobs);
        state.jobs = batch;
        state.busy = false;
        state.doomed -= done;
        // Wakes `wait_idle` (which checks `doomed`) and `kill_all_now` (which checks `busy`).
        r.idle.notify_all();
        if state.jobs.is_empty() {
            continue;
        }
        state = r
            .work
            .wait_timeout(state, POLL)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}
