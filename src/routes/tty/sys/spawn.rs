//! Starting a program on a new terminal: everything prepared before `fork`, only
//! async-signal-safe calls after it.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::sys::nofile_limit;

use super::process::{Child, pidfd_open};
use super::pty::{Pty, WinSize};
use super::{DEFAULT_PATH, TERM};

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
    /// The open-file limit the server started with, given back to the child.
    nofile: Option<libc::rlimit>,
}

/// Variables of the server's environment no child sees: the token (`WSBRIDGE_TOKEN` is how it
/// is passed without showing in `ps`, and a shell must not hand it to everything it runs).
const SECRET_VARS: [&str; 1] = ["WSBRIDGE_TOKEN"];

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
        // The server's environment, secrets removed, TERM replaced, then the command's own
        // variables.
        let mut vars: Vec<(OsString, OsString)> = std::env::vars_os()
            .filter(|(k, _)| k != "TERM" && !SECRET_VARS.iter().any(|s| k == s))
            .collect();
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
            nofile: crate::sys::original_nofile_limit(),
        })
    }
}

/// The soft `RLIMIT_NOFILE`: no fd of this process is at or above it.
fn open_files_limit() -> libc::c_int {
    match nofile_limit() {
        Ok(limit) => libc::c_int::try_from(limit.rlim_cur).unwrap_or(libc::c_int::MAX),
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
    Ok((pty, Child::new(pid, pidfd)))
}

/// The child between `fork` and `execve`.
///
/// # Safety
///
/// Must only be called in the child right after `fork`, with every signal blocked. Only
/// async-signal-safe functions are called (setsid, ioctl, dup2, close, the close_range syscall, setrlimit, sigaction, pthread_sigmask,
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
        // The open-file limit the server started with (setrlimit is async-signal-safe); failing
        // leaves the raised one, which is harmless.
        if let Some(limit) = &prepared.nofile {
            libc::setrlimit(libc::RLIMIT_NOFILE, limit);
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
