//! TLS under everything (`wss://`, `https://`): rustls driven sans-IO on the loop's own
//! non-blocking sockets. The HTTP and WebSocket layers above see plaintext through
//! [`super::transport::Transport`], exactly as over plain TCP.
//!
//! rustls never touches the socket by itself: `read_tls` takes ciphertext the loop read,
//! `process_new_packets` decrypts it (and queues handshake replies), `reader()` hands out
//! plaintext; `writer()` takes plaintext and `write_tls` pushes the records, vectored, in one
//! `writev` for everything queued. What rustls holds is bounded: the plaintext it accepts for
//! sending by [`SEND_BUFFER_LIMIT`], what it receives by its own limit (16 KiB unread).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// The plaintext and records rustls may hold for sending before `write` says "would block".
const SEND_BUFFER_LIMIT: usize = 64 << 10;
/// What one TLS connection is charged in the memory budget besides its unsent records: what
/// rustls keeps at rest after the handshake, measured at 7.8 KiB per connection
/// (`benches/idle_memory_tls.py`). A record being received can add up to one record (16 KiB)
/// that rustls does not report; charging it to every connection would let idle TLS connections
/// fill the budget at a third of what they hold.
pub const TLS_STATE_BYTES: usize = 8 << 10;
/// The answer to a plain HTTP request on the TLS port (instead of a hang, or a TLS alert the
/// client shows as garbage).
const PLAINTEXT_REFUSAL: &str = "This port speaks TLS: use https:// or wss:// to reach it.\n";

/// Where the certificate comes from.
#[derive(Debug, Clone)]
pub enum TlsSource {
    /// PEM files: the chain (leaf first) and its private key; reloaded on SIGHUP. With a
    /// client CA, clients must present a certificate it signed.
    Files {
        cert: PathBuf,
        key: PathBuf,
        client_ca: Option<PathBuf>,
    },
    /// A certificate for `localhost`, `127.0.0.1` and `::1` generated at start (development).
    SelfSigned,
}

/// Why TLS could not be set up.
#[derive(Debug)]
pub struct TlsError(String);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

/// A loaded server configuration and the SHA-256 fingerprint of its leaf certificate.
pub struct TlsSetup {
    pub config: Arc<ServerConfig>,
    /// Uppercase hex pairs joined by `:`, as browsers and `openssl x509 -fingerprint` show it.
    pub fingerprint: String,
}

/// Load (or generate) the certificate and build the rustls configuration: TLS 1.2 and 1.3,
/// ALPN `http/1.1` (RFC 7301; the WebSocket upgrade is an HTTP/1.1 request, RFC 6455 §4.1).
pub fn load(source: &TlsSource) -> Result<TlsSetup, TlsError> {
    let (chain, key, client_ca) = match source {
        TlsSource::Files {
            cert,
            key,
            client_ca,
        } => (
            read_chain(cert)?,
            PrivateKeyDer::from_pem_file(key)
                .map_err(|e| TlsError(format!("{}: no private key: {e}", key.display())))?,
            client_ca.as_deref(),
        ),
        TlsSource::SelfSigned => {
            let names = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
            let generated = rcgen::generate_simple_self_signed(names)
                .map_err(|e| TlsError(format!("cannot generate a certificate: {e}")))?;
            let key = PrivateKeyDer::try_from(generated.signing_key.serialize_der())
                .map_err(|e| TlsError(format!("generated key: {e}")))?;
            (vec![generated.cert.der().clone()], key, None)
        }
    };
    let fingerprint = fingerprint(&chain[0]);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(format!("TLS versions: {e}")))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in read_chain(path)? {
                roots
                    .add(cert)
                    .map_err(|e| TlsError(format!("{}: {e}", path.display())))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError(format!("{}: {e}", path.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError(format!("certificate and key do not go together: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsSetup {
        config: Arc::new(config),
        fingerprint,
    })
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError(format!("{}: {e}", path.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError(format!("{}: {e}", path.display())))?;
    if chain.is_empty() {
        return Err(TlsError(format!("{}: no certificate", path.display())));
    }
    Ok(chain)
}

/// SHA-256 of a certificate's DER, as `AB:CD:...`.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = Sha256::digest(cert.as_ref());
    let pairs: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    pairs.join(":")
}

/// Where a TLS connection's own input stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    /// Nothing read yet: the first byte tells TLS from a plain HTTP request.
    Fresh,
    Open,
    /// The socket said EOF: what rustls decrypted is handed out, then `Ok(0)`.
    Eof,
}

/// One TLS connection: its socket and its rustls state.
pub struct TlsStream {
    sock: TcpStream,
    tls: ServerConnection,
    input: Input,
    /// `shutdown_write` was asked while the close_notify was still queued: FIN once it is out.
    fin_after_flush: bool,
}

impl TlsStream {
    pub fn new(sock: TcpStream, config: Arc<ServerConfig>) -> io::Result<TlsStream> {
        let mut tls = ServerConnection::new(config).map_err(io::Error::other)?;
        tls.set_buffer_limit(Some(SEND_BUFFER_LIMIT));
        Ok(TlsStream {
            sock,
            tls,
            input: Input::Fresh,
            fin_after_flush: false,
        })
    }

    /// Plaintext in: what rustls holds first, else one more read of ciphertext.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The peer closed without a close_notify: as plain TCP's EOF. (An HTTP body or
                // a WebSocket message cut short is caught by the layers above.)
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if self.input == Input::Eof {
                return Ok(0);
            }
            if self.input == Input::Fresh {
                self.refuse_plaintext()?;
                self.input = Input::Open;
            }
            match self.tls.read_tls(&mut self.sock) {
                Ok(0) => self.input = Input::Eof,
                Ok(_) => {}
                Err(e) => return Err(e),
            }
            if let Err(error) = self.tls.process_new_packets() {
                // Send the alert rustls queued, best effort, then give up on the connection.
                let _ = self.push();
                return Err(io::Error::new(io::ErrorKind::InvalidData, error));
            }
            // Handshake replies go out now, not when the layers above next write.
            self.push()?;
        }
    }

    /// A request that starts like plain HTTP (a TLS record starts with 0x16, a method with an
    /// uppercase letter) is answered in HTTP and the connection closed.
    fn refuse_plaintext(&mut self) -> io::Result<()> {
        let mut first = [0u8; 1];
        match self.sock.peek(&mut first) {
            Ok(1) if first[0].is_ascii_uppercase() => {}
            Ok(_) => return Ok(()),
            Err(e) => return Err(e),
        }
        // Take the request first, so that closing does not reset the connection before the
        // client has read the answer.
        let mut sink = [0u8; 4096];
        while matches!(self.sock.read(&mut sink), Ok(n) if n > 0) {}
        let answer = format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Connection: close\r\nContent-Length: {}\r\n\r\n{PLAINTEXT_REFUSAL}",
            PLAINTEXT_REFUSAL.len()
        );
        let _ = self.sock.write_all(answer.as_bytes());
        let _ = self.sock.shutdown(Shutdown::Write);
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "plain HTTP on the TLS port",
        ))
    }

    /// Plaintext out: how much rustls took (encrypted and, as far as the socket takes it,
    /// written). `WouldBlock` when its buffer is full and the socket takes nothing.
    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
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

    /// Write queued records until none are left or the socket would block. `Ok(true)` when
    /// some went out.
    fn push(&mut self) -> io::Result<bool> {
        let mut wrote = false;
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => wrote = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.fin_after_flush && !self.tls.wants_write() {
            self.fin_after_flush = false;
            let _ = self.sock.shutdown(Shutdown::Write);
        }
        Ok(wrote)
    }

    pub fn wants_write(&self) -> bool {
        self.tls.wants_write()
    }

    /// Push what rustls holds; `Ok(true)` when nothing is left.
    pub fn flush(&mut self) -> io::Result<bool> {
        self.push()?;
        Ok(!self.tls.wants_write())
    }

    /// close_notify (RFC 8446 §6.1), then FIN once it is out.
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        self.tls.send_close_notify();
        self.fin_after_flush = true;
        self.push().map(drop)
    }

    pub fn buffered_bytes(&self) -> usize {
        TLS_STATE_BYTES
            + if self.tls.wants_write() {
                SEND_BUFFER_LIMIT
            } else {
                0
            }
    }

    pub fn socket(&mut self) -> &mut TcpStream {
        &mut self.sock
    }

    pub fn socket_ref(&self) -> &TcpStream {
        &self.sock
    }
}
