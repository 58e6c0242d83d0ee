//! The load generator's byte stream: plain TCP, or TLS over it driven sans-IO on the same
//! non-blocking socket, so that one mio loop drives `wss://` connections as it drives `ws://`
//! ones. rustls never touches the socket by itself: `read_tls` takes ciphertext,
//! `process_new_packets` decrypts it and queues handshake replies, `write_tls` pushes records
//! until the socket would block; what is left goes out on the next writable event.

use std::io::{self, Read, Write};

use mio::net::TcpStream;
use rustls::ClientConnection;

/// One connection's bytes.
pub enum BenchStream {
    Plain(TcpStream),
    /// Boxed: rustls' state is large.
    Tls(Box<TlsClient>),
}

/// A socket and the client side of TLS over it.
pub struct TlsClient {
    sock: TcpStream,
    tls: ClientConnection,
    /// The socket said EOF: what rustls decrypted is handed out, then `Ok(0)`.
    eof: bool,
}

impl BenchStream {
    /// TLS over `sock`, the handshake sent with the first writable event.
    pub fn tls(sock: TcpStream, tls: ClientConnection) -> BenchStream {
        BenchStream::Tls(Box::new(TlsClient {
            sock,
            tls,
            eof: false,
        }))
    }

    pub fn socket(&mut self) -> &mut TcpStream {
        match self {
            BenchStream::Plain(sock) => sock,
            BenchStream::Tls(client) => &mut client.sock,
        }
    }

    /// Plaintext in; `WouldBlock` when the socket has nothing more.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            BenchStream::Plain(sock) => sock.read(buf),
            BenchStream::Tls(client) => client.read(buf),
        }
    }

    /// Plaintext out: how much was taken; `WouldBlock` when nothing could be.
    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            BenchStream::Plain(sock) => sock.write(buf),
            BenchStream::Tls(client) => client.write(buf),
        }
    }

    /// Records queued by TLS out, as far as the socket takes them.
    pub fn push(&mut self) -> io::Result<()> {
        match self {
            BenchStream::Plain(_) => Ok(()),
            BenchStream::Tls(client) => client.push().map(drop),
        }
    }
}

impl TlsClient {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // Closed without close_notify: as TCP's EOF (the WebSocket layer sees the cut).
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if self.eof {
                return Ok(0);
            }
            if self.tls.read_tls(&mut self.sock)? == 0 {
                self.eof = true;
            }
            if let Err(error) = self.tls.process_new_packets() {
                let _ = self.push(); // the alert rustls queued, best effort
                return Err(io::Error::new(io::ErrorKind::InvalidData, error));
            }
            // Handshake replies go out now, not with the next message.
            self.push()?;
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            let taken = self.tls.writer().write(buf)?;
            let pushed = self.push()?;
            if taken > 0 {
                return Ok(taken);
            }
            if !pushed {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
    }

    /// `Ok(true)` when some records went out.
    fn push(&mut self) -> io::Result<bool> {
        let mut wrote = false;
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => wrote = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // Still connecting: the first writable event sends them.
                Err(e) if e.kind() == io::ErrorKind::NotConnected => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(wrote)
    }
}
