//! The program on the far side of a terminal session, as the session sees it: a [`Terminal`] it
//! reads output from and writes input to, started by a [`Launcher`]. The real ones are a PTY
//! master and a child process ([`PtyLauncher`]); the session's own tests use a fake, so the
//! session's logic is tested without processes.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::reaper;
use super::stats::TTY_STATS;
use super::sys::{self, Child, Command, ExitStatus, Pty, PtyRead, Signal, WinSize};
use crate::routes::Waker;

/// A running program on a terminal.
pub trait Terminal {
    /// Read the program's output without blocking.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<PtyRead>;
    /// Write input without blocking; how much the terminal took.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize>;
    /// Change the terminal's size (the program gets `SIGWINCH`).
    fn resize(&mut self, size: WinSize) -> io::Result<()>;
    /// The exit status once the program has exited (reaping it), else `None`.
    fn try_wait(&mut self) -> io::Result<Option<ExitStatus>>;
    /// The program's process id.
    fn pid(&self) -> u32;
    /// The descriptors to watch while it runs: ready when there is output, or it exited.
    fn fds(&self) -> Vec<RawFd>;
    /// End the program: hang it up now, kill it after `grace`, reap it off the loop. The
    /// descriptors stay open (they may still be watched) until the terminal is dropped.
    fn hang_up(&mut self, grace: Duration, signal: Signal);
}

/// Starts programs on terminals.
pub trait Launcher: Send + Sync {
    /// Start `command` at `size`. `waker` is called when the program exits where the exit
    /// cannot be watched through a descriptor.
    fn launch(
        &self,
        command: &Command,
        size: WinSize,
        waker: Option<&Waker>,
    ) -> io::Result<Box<dyn Terminal>>;
}

/// Real programs on real pseudo-terminals.
pub struct PtyLauncher;

impl Launcher for PtyLauncher {
    fn launch(
        &self,
        command: &Command,
        size: WinSize,
        waker: Option<&Waker>,
    ) -> io::Result<Box<dyn Terminal>> {
        let (pty, child) = sys::spawn(command, size)?;
        TTY_STATS.session_started();
        let watched = child.pidfd().is_none();
        if watched {
            match waker {
                Some(waker) => reaper::watch(child.pid(), waker.clone()),
                None => log::warn!(
                    "tty: no pidfd and no waker: the program's exit is noticed only on EIO"
                ),
            }
        }
        Ok(Box::new(PtyTerminal {
            pty,
            pid: child.pid(),
            child: Some(child),
            pidfd: None,
            watched,
        }))
    }
}

/// A PTY master and the child on its slave.
struct PtyTerminal {
    pty: Pty,
    pid: u32,
    /// `None` once handed to the reaper.
    child: Option<Child>,
    /// The child's pidfd, kept open after the child is handed on (it may still be watched).
    pidfd: Option<OwnedFd>,
    /// The reaper watches for the exit (no pidfd).
    watched: bool,
}

impl Terminal for PtyTerminal {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<PtyRead> {
        let read = self.pty.read(buf);
        if let Ok(PtyRead::Data(n)) = read {
            TTY_STATS.read(n);
        }
        read
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.pty.write(buf);
        if let Ok(n) = written {
            TTY_STATS.written(n);
        }
        written
    }

    fn resize(&mut self, size: WinSize) -> io::Result<()> {
        self.pty.resize(size)
    }

    fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        match &mut self.child {
            Some(child) => child.try_wait(),
            None => Ok(None),
        }
    }

    fn pid(&self) -> u32 {
        self.pid
    }

    fn fds(&self) -> Vec<RawFd> {
        let pidfd = match &self.child {
            Some(child) => child.pidfd(),
            None => self.pidfd.as_ref().map(|fd| fd.as_raw_fd()),
        };
        std::iter::once(self.pty.as_raw_fd()).chain(pidfd).collect()
    }

    fn hang_up(&mut self, grace: Duration, signal: Signal) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if self.watched {
            reaper::unwatch(child.pid());
        }
        self.pidfd = child.take_pidfd();
        // The reaper keeps the terminal open until the program is gone: closing the last
        // master makes the kernel send SIGHUP, which would beat `--signal` to the program.
        let master = self.pty.try_clone_master().ok();
        reaper::hang_up(child, grace, signal, master);
    }
}

impl Drop for PtyTerminal {
    fn drop(&mut self) {
        TTY_STATS.session_ended();
        self.hang_up(Duration::from_secs(3), Signal::Hangup);
    }
}
