//! The only place with libc calls for the terminal: pseudo-terminals and child processes.
//!
//! Small safe wrappers. Every fd is wrapped in an [`OwnedFd`] the moment it exists and is opened
//! close-on-exec, so no shell inherits the listener, other connections or other terminals. Every libc
//! call that reports failure with `-1` goes through [`cvt`].
//!
//! Spawning follows posix_spawn's discipline: everything the child needs (the resolved program path,
//! every `CString` of argv and the environment, the working directory, the error message) is prepared
//! **before** `fork`, because the server has other threads (SQLite workers) and after `fork` only
//! async-signal-safe calls are allowed in the child: no allocation, no locks, no `execvp`.
//!
//! Linux only (`posix_openpt`, `pidfd_open`, `/proc`).

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The value of `TERM` every spawned program sees (what xterm.js implements).
pub const TERM: &str = "xterm-256color";

/// `PATH` used to resolve the program when the server's environment has none.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Turns the C convention "`-1` and `errno`" into an [`io::Error`].
fn cvt<T: MinusOne>(ret: T) -> io::Result<T> {
    if ret.is_minus_one() {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// [`cvt`], retrying while the call was interrupted by a signal (`EINTR`).
fn cvt_retry<T: MinusOne>(mut f: impl FnMut() -> T) -> io::Result<T> {
    loop {
        match cvt(f()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

trait MinusOne: Copy {
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
    fn open(size: WinSize) -> io::Result<(Pty, OwnedFd)> {
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

    /// The master fd, for registering with mio (`SourceFd`). Stays owned by `self`.
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

/// What to run on a new terminal.
#[derive(Debug, Clone)]
pub struct Command {
    /// A path, or a name looked up in `PATH`.
    pub program: OsString,
    /// Arguments after `argv[0]` (which is `program` as given).
    pub args: Vec<OsString>,
    /// Working directory; `None` keeps the server's.
    pub cwd: Option<PathBuf>,
    /// Extra environment variables, applied over the server's environment (and over `TERM`).
    pub env: Vec<(OsString, OsString)>,
    /// Open a pidfd for the child (default). `false` exercises the fallback for kernels older than 5.3.
    #[doc(hidden)]
    pub use_pidfd: bool,
}

impl Command {
    pub fn new(program: impl Into<OsString>) -> Command {
        Command {
            program: program.into(),
            args: Vec::new(),
            cwd: None,
            env: Vec::new(),
            use_pidfd: true,
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Command {
        self.args.push(arg.into());
        self
    }

    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Command {
        self.cwd = Some(dir.into());
        self
    }
}

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
}

impl Signal {
    fn raw(self) -> libc::c_int {
        match self {
            Signal::Hangup => libc::SIGHUP,
            Signal::Terminate => libc::SIGTERM,
            Signal::Kill => libc::SIGKILL,
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
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// A pidfd (Linux 5.3+): readable once the child has exited. Register it with mio to learn of the
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
        // The pidfd stays open (it may still be registered with mio) until the Child is dropped.
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

/// Resolves `program` the way `execvp` would, but before forking: a name with a `/` is used as is,
/// otherwise the first executable regular file named so in `PATH` (or a default `PATH`).
pub fn resolve_program(program: &OsStr, path: Option<&OsStr>) -> io::Result<PathBuf> {
    if program.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "empty program name",
        ));
    }
    if program.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(program));
    }
    let path = path.unwrap_or(OsStr::new(DEFAULT_PATH));
    for dir in std::env::split_paths(path) {
        // An empty PATH entry means the current directory, as for execvp.
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let candidate = dir.join(program);
        if is_executable_file(&candidate) {
            return Ok(candidate);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: not found in PATH", Path::new(program).display()),
    ))
}

fn is_executable_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn cstring(bytes: impl Into<Vec<u8>>) -> io::Result<CString> {
    CString::new(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in argument"))
}

/// Everything the child needs, built before `fork`. Owns the storage the raw pointers point into.
struct Prepared {
    path: CString,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    _envp: Vec<CString>,
    envp_ptrs: Vec<*const libc::c_char>,
    cwd: Option<CString>,
    exec_error: Vec<u8>,
    cwd_error: Vec<u8>,
    max_signal: libc::c_int,
    /// Upper bound for closing fds one by one where `close_range` is unavailable.
    max_fd: libc::c_int,
}

impl Prepared {
    fn new(cmd: &Command) -> io::Result<Prepared> {
        let path_var = std::env::var_os("PATH");
        let resolved = resolve_program(&cmd.program, path_var.as_deref())?;
        if !is_executable_file(&resolved) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: not an executable file", resolved.display()),
            ));
        }
        let path = cstring(resolved.into_os_string().into_vec())?;
        let mut argv = vec![cstring(cmd.program.as_bytes())?];
        for arg in &cmd.args {
            argv.push(cstring(arg.as_bytes())?);
        }
        // The server's environment, TERM replaced, then the command's own variables.
        let mut vars: Vec<(OsString, OsString)> =
            std::env::vars_os().filter(|(k, _)| k != "TERM").collect();
        vars.push(("TERM".into(), TERM.into()));
        for (k, v) in &cmd.env {
            vars.retain(|(key, _)| key != k);
            vars.push((k.clone(), v.clone()));
        }
        let mut envp = Vec::with_capacity(vars.len());
        for (k, v) in vars {
            if k.is_empty() || k.as_bytes().contains(&b'=') {
                continue;
            }
            let mut entry = k.into_vec();
            entry.push(b'=');
            entry.extend_from_slice(v.as_bytes());
            envp.push(cstring(entry)?);
        }
        let cwd = match &cmd.cwd {
            Some(dir) => {
                if !dir.is_dir() {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{}: not a directory", dir.display()),
                    ));
                }
                Some(cstring(dir.as_os_str().as_bytes())?)
            }
            None => None,
        };
        let program = Path::new(&cmd.program).display().to_string();
        let exec_error = format!("wsbridge: cannot execute {program}\r\n").into_bytes();
        let cwd_error = format!(
            "wsbridge: cannot change directory to {}\r\n",
            cmd.cwd.as_deref().unwrap_or(Path::new("")).display()
        )
        .into_bytes();
        let argv_ptrs = argv
            .iter()
            .map(|s| s.as_ptr())
            .chain([std::ptr::null()])
            .collect();
        let envp_ptrs = envp
            .iter()
            .map(|s| s.as_ptr())
            .chain([std::ptr::null()])
            .collect();
        Ok(Prepared {
            path,
            _argv: argv,
            argv_ptrs,
            _envp: envp,
            envp_ptrs,
            cwd,
            exec_error,
            cwd_error,
            max_signal: libc::SIGRTMAX(),
            max_fd: open_files_limit().min(65_536),
        })
    }
}

/// The soft `RLIMIT_NOFILE`: no fd of this process is at or above it.
fn open_files_limit() -> libc::c_int {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one struct rlimit through the pointer, which points at `lim`.
    match cvt(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }) {
        Ok(_) => libc::c_int::try_from(lim.rlim_cur).unwrap_or(libc::c_int::MAX),
        Err(_) => 1024,
    }
}

/// Starts `cmd` on a new pseudo-terminal of the given size, as the leader of a new session whose
/// controlling terminal is that PTY. Returns the master and the child.
///
/// The program is resolved against `PATH` here, so a missing program is an error now rather than an
/// exit status 127 later (which still happens if `execve` itself fails, after printing a line on the
/// terminal).
pub fn spawn(cmd: &Command, size: WinSize) -> io::Result<(Pty, Child)> {
    let prepared = Prepared::new(cmd)?;
    let (pty, slave) = Pty::open(size)?;

    // Block every signal around fork so that no handler of ours runs in the child before the child
    // resets the dispositions (posix_spawn does the same).
    // SAFETY: sigset_t is plain data; sigfillset initialises it fully before use.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: sigfillset writes one sigset_t through the pointer.
    unsafe { libc::sigfillset(&mut all) };
    // SAFETY: both pointers point at initialised sigset_t values.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }

    // SAFETY: fork has no memory-safety preconditions by itself; what makes it sound here is that the
    // child only runs `child_after_fork`, which makes async-signal-safe calls on prepared data and
    // never returns.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: we are the child of a fork; `prepared` and `slave` were built before it; the parent's
        // signal mask (all blocked) was inherited.
        unsafe { child_after_fork(&prepared, slave.as_raw_fd()) }
    }
    let fork_error = io::Error::last_os_error();
    // SAFETY: `old` holds the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    if pid < 0 {
        return Err(fork_error);
    }
    drop(slave);
    drop(prepared);
    let pidfd = if cmd.use_pidfd {
        pidfd_open(pid).ok()
    } else {
        None
    };
    Ok((
        pty,
        Child {
            pid,
            pidfd,
            status: None,
        },
    ))
}

/// `pidfd_open(2)`; the fd is close-on-exec by definition.
fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = cvt(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: fd was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// The child between `fork` and `execve`.
///
/// # Safety
///
/// Must only be called in the child right after `fork`, with every signal blocked. Only
/// async-signal-safe functions are called (setsid, ioctl, dup2, close, the close_range syscall, sigaction, pthread_sigmask,
/// chdir, execve, write, _exit); nothing allocates, locks or panics; every pointer comes from
/// `prepared`, built before the fork and still alive in this copy of the address space.
unsafe fn child_after_fork(prepared: &Prepared, slave: RawFd) -> ! {
    // SAFETY: (whole body) see the function's Safety section: async-signal-safe libc calls on
    // pointers into `prepared`, which stays alive until execve or _exit.
    unsafe {
        // A new session, no controlling terminal yet; then the PTY becomes it.
        if libc::setsid() == -1 || libc::ioctl(slave, libc::TIOCSCTTY, 0) == -1 {
            libc::_exit(126);
        }
        for target in 0..=2 {
            if libc::dup2(slave, target) == -1 {
                libc::_exit(126);
            }
        }
        // Our fds are all close-on-exec; this also closes what the server itself inherited without
        // it (a leaked pipe of whoever started the server), so the shell gets 0, 1 and 2 only.
        if libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            0 as libc::c_uint,
        ) == -1
        {
            for fd in 3..prepared.max_fd {
                libc::close(fd);
            }
        }
        // Dispositions back to default: handlers reset on exec anyway, but ignored signals (Rust
        // ignores SIGPIPE) would stay ignored in the shell and everything it starts.
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        for sig in 1..=prepared.max_signal {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                // Fails harmlessly (EINVAL) for the signals libc reserves.
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());

        if let Some(cwd) = &prepared.cwd
            && libc::chdir(cwd.as_ptr()) == -1
        {
            let msg = &prepared.cwd_error;
            libc::write(2, msg.as_ptr().cast(), msg.len());
            libc::_exit(127);
        }
        libc::execve(
            prepared.path.as_ptr(),
            prepared.argv_ptrs.as_ptr(),
            prepared.envp_ptrs.as_ptr(),
        );
        let msg = &prepared.exec_error;
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::_exit(127)
    }
}

/// The machine's host name, for the window title.
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    cvt(unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) }).ok()?;
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..len]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Reads from the PTY until `needle` shows up or the deadline passes; returns all output.
    fn read_until(pty: &Pty, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            match pty.read(&mut buf).unwrap() {
                PtyRead::Data(n) => out.extend_from_slice(&buf[..n]),
                PtyRead::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
                PtyRead::Closed => break,
            }
            if String::from_utf8_lossy(&out).contains(needle) {
                break;
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    fn wait(child: &mut Child) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "child did not exit");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn shell_computes() {
        let (pty, mut child) = spawn(&Command::new("/bin/sh"), WinSize::default()).unwrap();
        pty.write(b"echo $((6*7))\r").unwrap();
        let out = read_until(&pty, "42\r\n", Duration::from_secs(10));
        assert!(out.contains("42\r\n"), "{out:?}");
        pty.write(b"exit 0\r").unwrap();
        assert_eq!(wait(&mut child), ExitStatus::Exited(0));
    }

    #[test]
    fn resize_is_seen_by_stty() {
        let (pty, mut child) = spawn(&Command::new("sh"), WinSize { cols: 80, rows: 24 }).unwrap();
        pty.resize(WinSize {
            cols: 100,
            rows: 30,
        })
        .unwrap();
        assert_eq!(
            pty.size().unwrap(),
            WinSize {
                cols: 100,
                rows: 30
            }
        );
        pty.write(b"stty size\r").unwrap();
        let out = read_until(&pty, "30 100", Duration::from_secs(10));
        assert!(out.contains("30 100"), "{out:?}");
        pty.write(b"exit\r").unwrap();
        wait(&mut child);
    }

    #[test]
    fn initial_size_and_environment() {
        let cmd = Command::new("sh")
            .arg("-c")
            .arg("stty size; echo T=$TERM; trap");
        let (pty, mut child) = spawn(&cmd, WinSize { cols: 90, rows: 33 }).unwrap();
        let out = read_until(&pty, "\u{0}", Duration::from_secs(10));
        assert!(out.contains("33 90"), "{out:?}");
        assert!(out.contains("T=xterm-256color"), "{out:?}");
        // `trap` lists non-default dispositions: SIGPIPE must not be inherited as ignored.
        assert!(!out.contains("PIPE"), "{out:?}");
        assert_eq!(wait(&mut child), ExitStatus::Exited(0));
    }

    #[test]
    fn exit_status_and_signal() {
        let (_pty, mut child) = spawn(
            &Command::new("sh").arg("-c").arg("exit 3"),
            WinSize::default(),
        )
        .unwrap();
        assert_eq!(wait(&mut child), ExitStatus::Exited(3));
        assert_eq!(child.status().unwrap().to_string(), "exit 3");

        let (_pty, mut child) = spawn(
            &Command::new("sh").arg("-c").arg("kill -TERM $$; sleep 5"),
            WinSize::default(),
        )
        .unwrap();
        assert_eq!(wait(&mut child), ExitStatus::Signaled(libc::SIGTERM));
        assert_eq!(child.status().unwrap().to_string(), "signal 15");
    }

    #[test]
    fn kill_group_and_reap_leaves_no_zombie() {
        let (pty, mut child) =
            spawn(&Command::new("sleep").arg("1000"), WinSize::default()).unwrap();
        let pid = child.pid();
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        assert!(!child.has_exited().unwrap());
        child.signal_group(Signal::Kill).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !child.has_exited().unwrap() {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(2));
        }
        // has_exited does not reap: still a zombie until try_wait.
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        assert_eq!(wait(&mut child), ExitStatus::Signaled(libc::SIGKILL));
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "zombie left");
        // The slave is gone with the child: the master reads EIO.
        assert_eq!(read_until(&pty, "never", Duration::from_secs(5)), "");
        assert_eq!(pty.read(&mut [0u8; 16]).unwrap(), PtyRead::Closed);
    }

    #[test]
    fn background_jobs_are_found_in_the_session() {
        // An interactive shell puts `sleep &` in its own process group, but the same session.
        let (pty, mut child) = spawn(&Command::new("sh").arg("-i"), WinSize::default()).unwrap();
        pty.write(b"sleep 1000 & echo BG=$!:\r").unwrap();
        let out = read_until(&pty, ":\r\n", Duration::from_secs(10));
        let out = read_until_more(&pty, out, |o| o.matches(':').count() >= 2);
        let job: u32 = out
            .rsplit("BG=")
            .next()
            .and_then(|s| s.split(':').next())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| panic!("{out:?}"));
        let members = session_members(child.pid());
        assert!(
            members.contains(&child.pid()) && members.contains(&job),
            "{members:?} {job}"
        );
        assert_eq!(signal_session(child.pid(), Signal::Kill), 2);
        assert_eq!(wait(&mut child), ExitStatus::Signaled(libc::SIGKILL));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !session_members(child.pid()).is_empty() {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn read_until_more(pty: &Pty, mut out: String, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 4096];
        while !done(&out) && Instant::now() < deadline {
            match pty.read(&mut buf).unwrap() {
                PtyRead::Data(n) => out.push_str(&String::from_utf8_lossy(&buf[..n])),
                PtyRead::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
                PtyRead::Closed => break,
            }
        }
        out
    }

    #[test]
    fn missing_program_and_bad_cwd_fail_before_fork() {
        let err = spawn(
            &Command::new("no-such-program-wsbridge"),
            WinSize::default(),
        )
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let err = spawn(&Command::new("sh").cwd("/no/such/dir"), WinSize::default()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let err = spawn(&Command::new("sh").arg("a\0b"), WinSize::default()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn cwd_is_applied() {
        let cmd = Command::new("sh").arg("-c").arg("pwd").cwd("/tmp");
        let (pty, mut child) = spawn(&cmd, WinSize::default()).unwrap();
        let out = read_until(&pty, "\u{0}", Duration::from_secs(10));
        assert!(out.contains("/tmp"), "{out:?}");
        wait(&mut child);
    }

    #[test]
    fn resolve_program_uses_path() {
        let p = resolve_program(OsStr::new("sh"), Some(OsStr::new("/nonexistent:/bin"))).unwrap();
        assert_eq!(p, Path::new("/bin/sh"));
        assert!(resolve_program(OsStr::new("sh"), Some(OsStr::new("/nonexistent"))).is_err());
        assert_eq!(
            resolve_program(OsStr::new("./x"), None).unwrap(),
            Path::new("./x")
        );
    }

    #[test]
    fn fds_are_close_on_exec() {
        let (pty, mut child) = spawn(
            &Command::new("sh").arg("-c").arg("ls /proc/self/fd"),
            WinSize::default(),
        )
        .unwrap();
        let out = read_until(&pty, "\u{0}", Duration::from_secs(10));
        wait(&mut child);
        // ls sees 0, 1, 2 and the fd of the directory it reads, nothing of ours.
        let fds: Vec<&str> = out.split_whitespace().collect();
        assert!(fds.len() <= 4, "child inherited fds: {fds:?}");
        assert!(pty.as_raw_fd() >= 0);
    }
}
