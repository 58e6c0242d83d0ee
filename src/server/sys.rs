//! The server's own libc calls, in small safe wrappers: a self-pipe that turns signals into
//! readiness on the event loop.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use crate::sys::cvt;

/// The write end of the signal pipe, for the handler. -1 when not installed.
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

/// The signal handler: write the signal number to the pipe. Only async-signal-safe calls
/// (`write`), and `errno` is preserved for the code it interrupted.
extern "C" fn on_signal(signal: libc::c_int) {
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    let byte = signal as u8;
    // SAFETY: __errno_location returns this thread's errno slot, valid for the thread's life.
    let errno = unsafe { *libc::__errno_location() };
    // SAFETY: write(2) is async-signal-safe; the buffer is one byte on our stack. A full pipe
    // (EAGAIN) drops the byte, which is fine: the loop only needs one to wake up.
    unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    // SAFETY: as above; restoring the interrupted code's errno.
    unsafe { *libc::__errno_location() = errno };
}

/// Signals delivered as bytes on a non-blocking, close-on-exec pipe the event loop polls.
pub struct SignalPipe {
    read: OwnedFd,
    _write: OwnedFd,
}

impl SignalPipe {
    /// Install handlers for `signals` that write to a new pipe. One pipe per process.
    pub fn install(signals: &[libc::c_int]) -> io::Result<SignalPipe> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: pipe2 writes two new descriptors into the array we pass.
        cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) })?;
        // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        SIGNAL_PIPE.store(write.as_raw_fd(), Ordering::Relaxed);
        for &signal in signals {
            // SAFETY: a zeroed sigaction is a valid value to fill in (no flags, empty mask).
            let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
            action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            // SAFETY: sigemptyset initialises the mask inside our sigaction.
            unsafe { libc::sigemptyset(&mut action.sa_mask) };
            // SAFETY: the action is fully initialised and the handler only does
            // async-signal-safe work.
            cvt(unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) })?;
        }
        Ok(SignalPipe {
            read,
            _write: write,
        })
    }

    /// The descriptor to register with the event loop.
    pub fn raw_fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Read the signals delivered since the last call.
    pub fn drain(&self) -> Vec<libc::c_int> {
        let mut signals = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: reading into our own stack buffer of the length we pass.
            let n =
                unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return signals;
            }
            signals.extend(buf[..n as usize].iter().map(|&b| b as libc::c_int));
        }
    }
}
