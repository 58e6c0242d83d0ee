//! Child processes: exit status, signals to a session, reaping, the pidfd.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::sys::{cvt, cvt_retry};

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It called `exit(code)`.
    Exited(i32),
    /// A signal ended it.
    Signaled(i32),
}

impl std::fmt::Display for ExitStatus {
    /// `exit N` or `signal N`: the close reason the terminal route sends.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Exited(code) => write!(f, "exit {code}"),
            ExitStatus::Signaled(sig) => write!(f, "signal {sig}"),
        }
    }
}

/// Signals the terminal route sends to a shell's process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Hangup,
    Terminate,
    Kill,
    /// Another signal by number (`--signal`, as ttyd's `-s`).
    Numbered(libc::c_int),
}

impl Signal {
    fn raw(self) -> libc::c_int {
        match self {
            Signal::Hangup => libc::SIGHUP,
            Signal::Terminate => libc::SIGTERM,
            Signal::Kill => libc::SIGKILL,
            Signal::Numbered(n) => n,
        }
    }
}

/// A spawned program: session leader of its own session and process group (pgid = pid).
///
/// Not reaped on drop: hand it to the reaper (`reaper::hang_up`) or call [`Child::try_wait`] until it
/// reports the status. Once reaped, signals are no longer sent (the pid may be reused).
#[derive(Debug)]
pub struct Child {
    pid: libc::pid_t,
    pidfd: Option<OwnedFd>,
    status: Option<ExitStatus>,
}

impl Child {
    /// The child `pid` just forked, with its pidfd if the kernel gave one.
    pub(super) fn new(pid: libc::pid_t, pidfd: Option<OwnedFd>) -> Child {
        Child {
            pid,
            pidfd,
            status: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// A pidfd (Linux 5.3+): readable once the child has exited. Watch it to learn of the
    /// exit without polling. `None` when the kernel refused `pidfd_open`.
    pub fn pidfd(&self) -> Option<RawFd> {
        self.pidfd.as_ref().map(|fd| fd.as_raw_fd())
    }

    /// Takes the pidfd out (to keep it open, e.g. while it is registered with an event loop, after
    /// the child itself is handed on).
    pub fn take_pidfd(&mut self) -> Option<OwnedFd> {
        self.pidfd.take()
    }

    /// The exit status, if already reaped.
    pub fn status(&self) -> Option<ExitStatus> {
        self.status
    }

    /// Non-blocking `waitpid(pid, WNOHANG)`: reaps the child if it has exited. Idempotent.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_some() {
            return Ok(self.status);
        }
        let mut raw = 0;
        // SAFETY: waitpid writes one int through the pointer, which points at `raw`.
        let pid = cvt_retry(|| unsafe { libc::waitpid(self.pid, &mut raw, libc::WNOHANG) })?;
        if pid == 0 {
            return Ok(None);
        }
        let status = if libc::WIFEXITED(raw) {
            ExitStatus::Exited(libc::WEXITSTATUS(raw))
        } else if libc::WIFSIGNALED(raw) {
            ExitStatus::Signaled(libc::WTERMSIG(raw))
        } else {
            // Stopped/continued are not reported without WUNTRACED/WCONTINUED.
            return Ok(None);
        };
        // The pidfd stays open (it may still be watched) until the Child is dropped.
        self.status = Some(status);
        Ok(self.status)
    }

    /// Whether the child has exited, without reaping it (`waitid(WNOWAIT)`). For watchers that must
    /// leave the reaping to the owner.
    pub fn has_exited(&self) -> io::Result<bool> {
        if self.status.is_some() {
            return Ok(true);
        }
        has_exited(self.pid)
    }

    /// Sends `sig` to the child's whole process group (`kill(-pgid, sig)`). Does nothing once reaped.
    pub fn signal_group(&self, sig: Signal) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        // SAFETY: kill takes plain integers.
        match cvt(unsafe { libc::kill(-self.pid, sig.raw()) }) {
            // The leader may have moved itself to another group; signal it directly then.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                // SAFETY: as above; the pid is not reaped, so it is still our child.
                match cvt(unsafe { libc::kill(self.pid, sig.raw()) }) {
                    Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
                    other => other.map(drop),
                }
            }
            other => other.map(drop),
        }
    }
}

/// Pids of the processes in session `sid` (background jobs of a shell that was its leader live in
/// their own process groups, but stay in its session unless they call `setsid`). Read from `/proc`.
pub fn session_members(sid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut members = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp session ...": comm may hold anything, so split after the last ')'.
        let session = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(3))
            .and_then(|s| s.parse::<u32>().ok());
        let zombie = stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
        if session == Some(sid) && !zombie {
            members.push(pid);
        }
    }
    members
}

/// Sends `sig` to every live process of session `sid`; returns how many were signalled.
pub fn signal_session(sid: u32, sig: Signal) -> usize {
    let mut sent = 0;
    for pid in session_members(sid) {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            continue;
        };
        // SAFETY: kill takes plain integers.
        if cvt(unsafe { libc::kill(pid, sig.raw()) }).is_ok() {
            sent += 1;
        }
    }
    sent
}

/// `waitid(P_PID, pid, WEXITED | WNOHANG | WNOWAIT)`: has this child exited (not reaping it)?
pub fn has_exited(pid: libc::pid_t) -> io::Result<bool> {
    // SAFETY: siginfo_t is plain data; all zeroes is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    // SAFETY: waitid writes one siginfo_t through the pointer, which points at `info`.
    cvt_retry(|| unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) })?;
    // With WNOHANG and no state change, the kernel leaves si_signo (and si_pid) zero.
    Ok(info.si_signo != 0)
}

/// `pidfd_open(2)`; the fd is close-on-exec by definition.
pub(super) fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = cvt(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: fd was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// The machine's host name, for the window title.
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    cvt(unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) }).ok()?;
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..len]).into_owned())
}
