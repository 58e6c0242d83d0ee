//! The seam between a connection and its socket: what the HTTP and WebSocket layers read and
//! write is plaintext, whatever carries it: plain TCP or TLS (`tls.rs`). An enum, so the
//! common case stays a direct call.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown};

use mio::event::Source;
use mio::net::{TcpStream, UnixStream};

use super::tls::TlsStream;

/// How a connection's bytes travel.
pub enum Transport {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP (boxed: rustls' state is large, plain connections stay small).
    Tls(Box<TlsStream>),
    /// A Unix socket (`--listen unix:/path`): local peers, no address.
    Unix(UnixStream),
}

impl Transport {
    /// Plaintext in. `Ok(0)`: the peer closed its side. `WouldBlock`: nothing more for now.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(stream) => stream.read(buf),
            Transport::Tls(tls) => tls.read(buf),
            Transport::Unix(stream) => stream.read(buf),
        }
    }

    /// Plaintext out: how much was taken.
    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(stream) => stream.write(buf),
            Transport::Tls(tls) => tls.write(buf),
            Transport::Unix(stream) => stream.write(buf),
        }
    }

    /// Whether the transport itself holds bytes for the socket (TLS records would): the loop
    /// then waits for `WRITABLE` even with nothing of its own to send.
    pub fn wants_write(&self) -> bool {
        match self {
            Transport::Plain(_) | Transport::Unix(_) => false,
            Transport::Tls(tls) => tls.wants_write(),
        }
    }

    /// Push what the transport holds; `Ok(true)` when nothing is left.
    pub fn flush(&mut self) -> io::Result<bool> {
        match self {
            Transport::Plain(_) | Transport::Unix(_) => Ok(true),
            Transport::Tls(tls) => tls.flush(),
        }
    }

    /// After the last byte: FIN.
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(stream) => stream.shutdown(Shutdown::Write),
            Transport::Tls(tls) => tls.shutdown_write(),
            Transport::Unix(stream) => stream.shutdown(Shutdown::Write),
        }
    }

    /// Heap bytes the transport holds (for the memory budget).
    pub fn buffered_bytes(&self) -> usize {
        match self {
            Transport::Plain(_) | Transport::Unix(_) => 0,
            Transport::Tls(tls) => tls.buffered_bytes(),
        }
    }

    /// Whether a read shorter than the buffer means the socket is drained (edge-triggered
    /// readiness then comes again with new bytes). Not over TLS: a short read there may be the
    /// end of one record, with more ciphertext still in the socket.
    pub fn short_read_drains(&self) -> bool {
        matches!(self, Transport::Plain(_) | Transport::Unix(_))
    }

    /// Whether the bytes travel inside TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    /// The peer's address.
    pub fn peer_ip(&self) -> Option<IpAddr> {
        match self {
            Transport::Plain(stream) => stream.peer_addr().ok().map(|a| a.ip()),
            Transport::Tls(tls) => tls.socket_ref().peer_addr().ok().map(|a| a.ip()),
            Transport::Unix(_) => None,
        }
    }

    /// The socket, for registration with the loop.
    pub fn socket(&mut self) -> &mut dyn Source {
        match self {
            Transport::Plain(stream) => stream,
            Transport::Tls(tls) => tls.socket(),
            Transport::Unix(stream) => stream,
        }
    }
}
