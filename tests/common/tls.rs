//! TLS for the tests: a throwaway CA with certificates for localhost written as PEM files, and
//! rustls clients that trust only that CA.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// A CA, its PEM file, and what it signed.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pub cert_der: CertificateDer<'static>,
    pub cert_pem: PathBuf,
}

/// A leaf certificate and key as PEM files.
pub struct Leaf {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub cert_der: CertificateDer<'static>,
    pub key_der: Vec<u8>,
}

impl TestCa {
    /// A new CA named `name`, its certificate written to `dir/<name>-ca.pem`.
    pub fn new(dir: &Path, name: &str) -> TestCa {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        let cert = params.self_signed(&key).expect("CA certificate");
        let cert_pem = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&cert_pem, cert.pem()).expect("write CA");
        TestCa {
            issuer: Issuer::new(params, key),
            cert_der: cert.der().clone(),
            cert_pem,
        }
    }

    /// A certificate for `names`, written to `dir/<file>.pem` and `dir/<file>-key.pem`.
    pub fn leaf(&self, dir: &Path, file: &str, names: &[&str]) -> Leaf {
        let key = KeyPair::generate().expect("leaf key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        params
            .distinguished_name
            .push(DnType::CommonName, file.to_string());
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        let paths = Leaf {
            cert: dir.join(format!("{file}.pem")),
            key: dir.join(format!("{file}-key.pem")),
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
        };
        std::fs::write(&paths.cert, cert.pem()).expect("write cert");
        std::fs::write(&paths.key, key.serialize_pem()).expect("write key");
        paths
    }

    /// A client configuration that trusts this CA only, offering ALPN `http/1.1`.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.client_config_with(None)
    }

    /// As [`TestCa::client_config`], presenting `identity` as a client certificate.
    pub fn client_config_with(&self, identity: Option<&Leaf>) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert_der.clone()).expect("trust CA");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots);
        let mut config = match identity {
            None => builder.with_no_client_auth(),
            Some(leaf) => builder
                .with_client_auth_cert(
                    vec![leaf.cert_der.clone()],
                    PrivateKeyDer::try_from(leaf.key_der.clone()).expect("key"),
                )
                .expect("client cert"),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// A blocking TLS stream to the server.
pub type TlsClient = StreamOwned<ClientConnection, TcpStream>;

/// Connect to `addr` as `localhost` and finish the handshake (so a refusal shows here).
pub fn connect(addr: SocketAddr, config: Arc<ClientConfig>) -> std::io::Result<TlsClient> {
    let sock = TcpStream::connect(addr)?;
    sock.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let name = ServerName::try_from("localhost").expect("name");
    let conn = ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    let mut stream = StreamOwned::new(conn, sock);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    // TLS 1.3: a refused client certificate shows as an alert after the client's flight.
    stream.flush()?;
    Ok(stream)
}

/// Send one HTTP/1.1 request with `Connection: close` and read the whole response.
pub fn http_get(stream: &mut TlsClient, path: &str) -> String {
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut response = Vec::new();
    match stream.read_to_end(&mut response) {
        Ok(_) => {}
        // A peer that closes right after its close_notify may reset: what came is enough.
        Err(e) if !response.is_empty() => eprintln!("after the response: {e}"),
        Err(e) => panic!("read response: {e}"),
    }
    String::from_utf8_lossy(&response).into_owned()
}
