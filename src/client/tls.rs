//! `wss://` for the blocking client: rustls over a blocking `TcpStream`, trusting the CA in
//! `WSBRIDGE_CA_FILE` (PEM). There is no system trust store here on purpose: the clients of
//! this crate talk to servers whose certificate the user made or was given.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use rustls_pki_types::pem::PemObject;

/// The variable naming the CA certificates (PEM) a `wss://` client trusts.
pub const CA_FILE_VAR: &str = "WSBRIDGE_CA_FILE";

/// A client's byte stream: plain TCP or TLS over it.
pub enum ClientStream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl ClientStream {
    /// TLS to `host` (a name or an IP literal, IPv6 in brackets) over `tcp`, trusting the CA
    /// of [`CA_FILE_VAR`]; the handshake completes here, so a refused certificate fails now.
    pub fn tls(tcp: TcpStream, host: &str) -> io::Result<ClientStream> {
        let conn = connection_for(config_from_env()?, host)?;
        let mut stream = StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(ClientStream::Tls(Box::new(stream)))
    }

    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            ClientStream::Plain(s) => s.set_read_timeout(timeout),
            ClientStream::Tls(s) => s.sock.set_read_timeout(timeout),
        }
    }
}

impl Read for ClientStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ClientStream::Plain(s) => s.read(buf),
            // A server that closes without close_notify ends the stream as TCP's EOF would.
            ClientStream::Tls(s) => match s.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
        }
    }
}

impl Write for ClientStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ClientStream::Plain(s) => s.write(buf),
            ClientStream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            ClientStream::Plain(s) => s.flush(),
            ClientStream::Tls(s) => s.flush(),
        }
    }
}

/// A client-side TLS state for `host` (a name or an IP literal, IPv6 in brackets) under
/// `config`: the handshake starts when its records are written.
pub fn connection_for(config: Arc<ClientConfig>, host: &str) -> io::Result<ClientConnection> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| io::Error::other(format!("{host:?}: {e}")))?;
    ClientConnection::new(config, name).map_err(io::Error::other)
}

/// A client configuration trusting the certificates in [`CA_FILE_VAR`], ALPN `http/1.1`.
pub fn config_from_env() -> io::Result<Arc<ClientConfig>> {
    let path = std::env::var_os(CA_FILE_VAR).ok_or_else(|| {
        io::Error::other(format!(
            "wss:// needs {CA_FILE_VAR}: the CA certificate(s), PEM, that signed the server's"
        ))
    })?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&path)
        .map_err(|e| io::Error::other(format!("{}: {e}", path.to_string_lossy())))?
    {
        let cert = cert.map_err(|e| io::Error::other(e.to_string()))?;
        roots.add(cert).map_err(io::Error::other)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
