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

mod process;
mod pty;
mod spawn;

pub use self::process::{
    Child, ExitStatus, Signal, has_exited, hostname, session_members, signal_session,
};
pub use self::pty::{Pty, PtyRead, WinSize};
pub use self::spawn::{Command, resolve_program, spawn};

/// The value of `TERM` every spawned program sees (what xterm.js implements).
pub const TERM: &str = "xterm-256color";

/// `PATH` used to resolve the program when the server's environment has none.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::io;
    use std::path::Path;
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
