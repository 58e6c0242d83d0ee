//! The libc calls the server and the terminal route share, each in a small safe wrapper: the
//! `-1`-and-`errno` convention turned into [`io::Error`], and the open-file limit.

use std::io;

/// Turns the C convention "`-1` and `errno`" into an [`io::Error`].
pub fn cvt<T: MinusOne>(ret: T) -> io::Result<T> {
    if ret.is_minus_one() {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// [`cvt`], retrying while the call was interrupted by a signal (`EINTR`).
pub fn cvt_retry<T: MinusOne>(mut f: impl FnMut() -> T) -> io::Result<T> {
    loop {
        match cvt(f()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// The integer types libc calls return, whose `-1` means failure.
pub trait MinusOne: Copy {
    /// Whether this is the failure value.
    fn is_minus_one(self) -> bool;
}

impl MinusOne for libc::c_int {
    fn is_minus_one(self) -> bool {
        self == -1
    }
}

impl MinusOne for libc::c_long {
    fn is_minus_one(self) -> bool {
        self == -1
    }
}

impl MinusOne for libc::ssize_t {
    fn is_minus_one(self) -> bool {
        self == -1
    }
}

/// `RLIMIT_NOFILE`: the soft limit (what applies) and the hard one (how far it may be raised).
pub fn nofile_limit() -> io::Result<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one struct rlimit through the pointer, which points at `limit`.
    cvt(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) })?;
    Ok(limit)
}

/// The `RLIMIT_NOFILE` this process started with, once [`raise_nofile_limit`] raised it.
static ORIGINAL_NOFILE: std::sync::OnceLock<libc::rlimit> = std::sync::OnceLock::new();

/// Raise the soft `RLIMIT_NOFILE` to the hard limit. Returns the limit as it was before, also
/// kept for [`original_nofile_limit`]: child processes are given back the original (a shell
/// must not inherit a limit raised for a server with thousands of sockets).
pub fn raise_nofile_limit() -> io::Result<libc::rlimit> {
    let original = nofile_limit()?;
    let _ = ORIGINAL_NOFILE.set(original);
    if original.rlim_cur < original.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: original.rlim_max,
            rlim_max: original.rlim_max,
        };
        // SAFETY: setrlimit reads the rlimit we pass by valid pointer.
        cvt(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) })?;
    }
    Ok(original)
}

/// Wait until one of `fds` is readable (or hung up), for at most `timeout`: `poll(2)`. For
/// tools and tests that drive a route without the event loop.
pub fn poll_readable(fds: &[std::os::fd::RawFd], timeout: std::time::Duration) -> io::Result<bool> {
    let mut polled: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: poll reads and writes `polled.len()` pollfd structs, which the Vec owns.
    let ready = cvt_retry(|| unsafe {
        libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, millis)
    })?;
    Ok(ready > 0)
}

/// The limit before [`raise_nofile_limit`] raised it, if it did.
pub fn original_nofile_limit() -> Option<libc::rlimit> {
    ORIGINAL_NOFILE.get().copied()
}

/// Make `fd` close-on-exec and non-blocking (an inherited socket may be neither).
pub fn set_cloexec_nonblocking(fd: std::os::fd::RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor number; an invalid one is EBADF, nothing is dereferenced.
    let fd_flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    // SAFETY: as above, setting the flags just read plus FD_CLOEXEC.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, fd_flags | libc::FD_CLOEXEC) })?;
    // SAFETY: as above, for the file status flags.
    let fl_flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    // SAFETY: as above, adding O_NONBLOCK.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, fl_flags | libc::O_NONBLOCK) })?;
    Ok(())
}

/// The address family of the socket at `fd` (`AF_INET`, `AF_INET6`, `AF_UNIX`, ...).
pub fn socket_family(fd: std::os::fd::RawFd) -> io::Result<libc::c_int> {
    // SAFETY: a zeroed sockaddr_storage is a valid buffer for getsockname to fill.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: getsockname writes at most `len` bytes into our sockaddr_storage.
    cvt(unsafe {
        libc::getsockname(
            fd,
            (&mut addr as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    })?;
    Ok(libc::c_int::from(addr.ss_family))
}

/// systemd's socket activation (sd_listen_fds(3)): the first passed descriptor (3) when
/// `LISTEN_PID` is this process and `LISTEN_FDS` is at least 1. The variables are removed, so
/// the programs the terminal starts do not take the socket for theirs.
///
/// # Safety
/// Call before any other thread exists (it changes the environment).
pub unsafe fn take_systemd_socket() -> Option<std::os::fd::RawFd> {
    let for_us = std::env::var("LISTEN_PID").ok()?.parse::<u32>().ok()? == std::process::id();
    let count: u32 = std::env::var("LISTEN_FDS").ok()?.parse().ok()?;
    // SAFETY: the caller promises no other thread reads or writes the environment.
    unsafe {
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    (for_us && count >= 1).then_some(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cvt_maps_minus_one_to_errno() {
        assert_eq!(cvt(3 as libc::c_int).unwrap(), 3);
        // SAFETY: close of an fd that is not open only sets errno (EBADF).
        let err = cvt(unsafe { libc::close(-5) }).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
    }

    #[test]
    fn nofile_limit_is_readable() {
        let limit = nofile_limit().unwrap();
        assert!(limit.rlim_cur <= limit.rlim_max);
    }
}
