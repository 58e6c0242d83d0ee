//! Where connections come from: a TCP port, a Unix socket (`--listen unix:/path`), or the
//! socket systemd passed (socket activation, `LISTEN_FDS`).

use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// What to listen on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Tcp(SocketAddr),
    /// A Unix stream socket at `path`, its permissions set to `mode` (e.g. `0o660`: the
    /// socket's group may connect). A stale socket file left by an earlier run is replaced.
    Unix {
        path: PathBuf,
        mode: Option<u32>,
    },
    /// A listening socket already open at this descriptor (systemd's socket activation: the
    /// first passed socket is descriptor 3). TCP or Unix, whichever it is.
    Inherited(RawFd),
}

impl From<SocketAddr> for Listen {
    fn from(addr: SocketAddr) -> Self {
        Listen::Tcp(addr)
    }
}

impl std::str::FromStr for Listen {
    type Err = String;

    fn from_str(text: &str) -> Result<Listen, String> {
        Listen::parse(text)
    }
}

impl Listen {
    /// `--listen`: `HOST:PORT` or `unix:/path`.
    pub fn parse(text: &str) -> Result<Listen, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a path, e.g. unix:/run/wsbridge.sock".into());
            }
            return Ok(Listen::Unix {
                path: path.into(),
                mode: None,
            });
        }
        text.parse()
            .map(Listen::Tcp)
            .map_err(|e| format!("{text:?}: {e} (HOST:PORT or unix:/path)"))
    }
}

/// Which listener a connection came through: what it may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Door {
    /// `--listen`: everything, behind the token.
    Main,
    /// `--metrics-listen`: `GET /metrics` without the token, the probes, nothing else.
    Metrics,
}

/// A bound listener.
pub(super) enum Listener {
    Tcp(TcpListener),
    /// With the path it removes when the server is done.
    Unix(UnixListener, Option<PathBuf>),
}

/// A connection just accepted.
pub(super) enum Accepted {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// Where the server listens, as printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl fmt::Display for LocalAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocalAddr::Tcp(addr) => write!(f, "{addr}"),
            LocalAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl Listener {
    pub fn bind(listen: &Listen) -> io::Result<Listener> {
        match listen {
            Listen::Tcp(addr) => TcpListener::bind(*addr).map(Listener::Tcp),
            Listen::Unix { path, mode } => {
                remove_stale_socket(path)?;
                let listener = UnixListener::bind(path)?;
                if let Some(mode) = mode {
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(*mode))?;
                }
                Ok(Listener::Unix(listener, Some(path.clone())))
            }
            Listen::Inherited(fd) => inherit(*fd),
        }
    }

    pub fn local_addr(&self) -> io::Result<LocalAddr> {
        match self {
            Listener::Tcp(listener) => listener.local_addr().map(LocalAddr::Tcp),
            Listener::Unix(listener, _) => {
                let addr = listener.local_addr()?;
                let path = addr.as_pathname().map(PathBuf::from).unwrap_or_default();
                Ok(LocalAddr::Unix(path))
            }
        }
    }

    /// The next connection, with the peer as the log shows it.
    pub fn accept(&self) -> io::Result<(Accepted, String)> {
        match self {
            Listener::Tcp(listener) => listener
                .accept()
                .map(|(stream, peer)| (Accepted::Tcp(stream), peer.to_string())),
            Listener::Unix(listener, _) => listener
                .accept()
                .map(|(stream, _)| (Accepted::Unix(stream), "a unix socket peer".into())),
        }
    }

    pub fn source(&mut self) -> &mut dyn Source {
        match self {
            Listener::Tcp(listener) => listener,
            Listener::Unix(listener, _) => listener,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, Some(path)) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Accepted {
    /// Best effort: tell a refused client why, without waiting for it.
    pub fn refuse(self) {
        const BUSY: &[u8] =
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        let _ = match self {
            Accepted::Tcp(stream) => (&stream).write_all(BUSY),
            Accepted::Unix(stream) => (&stream).write_all(BUSY),
        };
    }
}

/// A socket file left by a run that did not remove it (killed) is replaced; one a live server
/// answers on is not: binding then fails with "address in use".
fn remove_stale_socket(path: &std::path::Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_err() {
                std::fs::remove_file(path)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Take over a listening socket at `fd` (TCP or Unix), non-blocking and close-on-exec.
fn inherit(fd: RawFd) -> io::Result<Listener> {
    crate::sys::set_cloexec_nonblocking(fd)?;
    match crate::sys::socket_family(fd)? {
        libc::AF_UNIX => {
            // SAFETY: the descriptor was passed to this process to own (LISTEN_FDS) and is a
            // listening Unix socket (its family checked above); nothing else uses it.
            let std = unsafe { std::os::unix::net::UnixListener::from_raw_fd(fd) };
            Ok(Listener::Unix(UnixListener::from_std(std), None))
        }
        libc::AF_INET | libc::AF_INET6 => {
            // SAFETY: as above, a listening TCP socket.
            let std = unsafe { std::net::TcpListener::from_raw_fd(fd) };
            Ok(Listener::Tcp(TcpListener::from_std(std)))
        }
        family => Err(io::Error::other(format!(
            "descriptor {fd} is a socket of family {family}, neither TCP nor Unix"
        ))),
    }
}
