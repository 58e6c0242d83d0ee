//! Pseudo-terminals: opening a master and its slave, reading, writing, resizing.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::sys::{cvt, cvt_retry};

/// A terminal size in character cells, as `struct winsize` carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WinSize {
    pub cols: u16,
    pub rows: u16,
}

impl Default for WinSize {
    fn default() -> Self {
        WinSize { cols: 80, rows: 24 }
    }
}

impl WinSize {
    fn to_libc(self) -> libc::winsize {
        libc::winsize {
            ws_row: self.rows,
            ws_col: self.cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        }
    }
}

/// The master side of a pseudo-terminal: non-blocking, close-on-exec.
///
/// Reading returns what the program wrote; `EIO` (reported as [`PtyRead::Closed`]) means every slave fd
/// is closed: the program and everything it started have gone. Dropping it closes the master, which
/// hangs up the terminal (the kernel sends `SIGHUP` to the session still attached to it).
#[derive(Debug)]
pub struct Pty {
    master: OwnedFd,
}

/// The outcome of one non-blocking read from the PTY master.
#[derive(Debug, PartialEq, Eq)]
pub enum PtyRead {
    /// This many bytes were read (never 0).
    Data(usize),
    /// Nothing to read now (`EAGAIN`).
    WouldBlock,
    /// The slave side is closed (`EIO`, or end of file): nothing more will come.
    Closed,
}

impl Pty {
    /// Opens a new pseudo-terminal pair with the given size. Both fds are close-on-exec; the master is
    /// non-blocking.
    pub(super) fn open(size: WinSize) -> io::Result<(Pty, OwnedFd)> {
        let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
        // SAFETY: posix_openpt takes plain flags and returns a new fd or -1.
        let fd = cvt(unsafe { libc::posix_openpt(flags) })?;
        // SAFETY: fd was just returned by posix_openpt, is valid and owned by nobody else.
        let master = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: grantpt/unlockpt only read the fd argument, which is a valid open master.
        cvt(unsafe { libc::grantpt(master.as_raw_fd()) })?;
        // SAFETY: as above.
        cvt(unsafe { libc::unlockpt(master.as_raw_fd()) })?;
        let slave = open_slave(master.as_fd(), flags)?;
        set_nonblocking(master.as_fd())?;
        let pty = Pty { master };
        pty.resize(size)?;
        Ok((pty, slave))
    }

    /// The master fd, for the event loop to watch. Stays owned by `self`.
    /// Another descriptor for the master (`dup`): the terminal stays open while any is, so
    /// the kernel's hang-up (SIGHUP to the foreground group when the last master closes) waits.
    pub fn try_clone_master(&self) -> io::Result<OwnedFd> {
        self.master.try_clone()
    }

    pub fn as_raw_fd(&self) -> RawFd {
        self.master.as_raw_fd()
    }

    /// One non-blocking `read(2)`, retried on `EINTR`.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<PtyRead> {
        if buf.is_empty() {
            return Ok(PtyRead::WouldBlock);
        }
        let fd = self.master.as_raw_fd();
        // SAFETY: buf is a valid writable region of buf.len() bytes for the whole call.
        match cvt_retry(|| unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) }) {
            Ok(0) => Ok(PtyRead::Closed),
            Ok(n) => Ok(PtyRead::Data(n as usize)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(PtyRead::WouldBlock),
            Err(e) if e.raw_os_error() == Some(libc::EIO) => Ok(PtyRead::Closed),
            Err(e) => Err(e),
        }
    }

    /// One non-blocking `write(2)`, retried on `EINTR`. `ErrorKind::WouldBlock` when the terminal's
    /// input queue is full; `EIO` once the slave side is gone.
    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let fd = self.master.as_raw_fd();
        // SAFETY: buf is a valid readable region of buf.len() bytes for the whole call.
        cvt_retry(|| unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) }).map(|n| n as usize)
    }

    /// Sets the terminal size (`TIOCSWINSZ`); the kernel sends `SIGWINCH` to the foreground group.
    pub fn resize(&self, size: WinSize) -> io::Result<()> {
        let ws = size.to_libc();
        // SAFETY: TIOCSWINSZ reads one struct winsize from the pointer, which points at `ws`.
        cvt(unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) })?;
        Ok(())
    }

    /// The current terminal size (`TIOCGWINSZ`).
    pub fn size(&self) -> io::Result<WinSize> {
        let mut ws = WinSize::default().to_libc();
        // SAFETY: TIOCGWINSZ writes one struct winsize through the pointer, which points at `ws`.
        cvt(unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) })?;
        Ok(WinSize {
            cols: ws.ws_col,
            rows: ws.ws_row,
        })
    }
}

/// Opens the slave of `master`: `TIOCGPTPEER` (Linux 4.13, no path lookup), else `ptsname_r` + `open`.
fn open_slave(master: BorrowedFd<'_>, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: TIOCGPTPEER takes the open flags as its integer argument and returns a new fd or -1.
    match cvt(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) }) {
        // SAFETY: fd was just returned by the kernel and is owned by nobody else.
        Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
        Err(e)
            if e.raw_os_error() == Some(libc::EINVAL) || e.raw_os_error() == Some(libc::ENOTTY) => {
        }
        Err(e) => return Err(e),
    }
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: ptsname_r writes at most name.len() bytes, NUL included, into `name`.
    let rc = unsafe { libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    // SAFETY: name is NUL-terminated (ptsname_r succeeded) and outlives the call.
    let fd = cvt_retry(|| unsafe { libc::open(name.as_ptr(), flags) })?;
    // SAFETY: fd was just returned by open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: F_GETFL takes no argument and only reads the fd's flags.
    let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    // SAFETY: F_SETFL takes an int of flags.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) })?;
    Ok(())
}
