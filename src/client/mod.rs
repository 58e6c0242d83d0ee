//! The client side: `ws://` and `wss://` URLs, and a small blocking client on the protocol
//! core (what the Autobahn client runner and tools use; the load generator has its own mio loop
//! in [`crate::bench`]).

pub mod tls;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use self::tls::ClientStream;
use crate::protocol::deflate::{ClientOffer, CodecConfig};
use crate::protocol::handshake::client::{
    Offer, client_key, parse_client_response, write_client_request,
};
use crate::protocol::{CloseCode, Connection, Event, Limits, Role, Sender, State};

/// How a client compresses once permessage-deflate is agreed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CodecTuning {
    /// Compress every message (see `CodecConfig::compress_all`).
    pub compress_all: bool,
}

/// A parsed `ws://host:port/path` or `wss://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    /// `wss://`: TLS (RFC 6455 §3).
    pub secure: bool,
    /// Host name or IP literal (IPv6 in brackets).
    pub host: String,
    /// Port, 80 (443 for `wss://`) when absent.
    pub port: u16,
    /// Path and query, `/` when absent.
    pub path: String,
}

impl WsUrl {
    /// Parse a `ws://` or `wss://` URL (RFC 6455 §3).
    pub fn parse(url: &str) -> Result<WsUrl, String> {
        let (secure, rest) = match (url.strip_prefix("ws://"), url.strip_prefix("wss://")) {
            (Some(rest), _) => (false, rest),
            (_, Some(rest)) => (true, rest),
            _ => return Err(format!("{url:?}: not a ws:// or wss:// URL")),
        };
        // RFC 6455 §3: fragment identifiers "MUST NOT be used on these URIs"; §4.1: the client
        // fails rather than send one.
        if rest.contains('#') {
            return Err(format!("{url:?}: a WebSocket URL has no #fragment"));
        }
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{url:?}: bad IPv6 host"))?;
            (format!("[{host}]"), after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host.to_string(), Some(port)),
                None => (authority.to_string(), None),
            }
        };
        let port = match port {
            Some(p) => p.parse().map_err(|_| format!("{url:?}: bad port"))?,
            None if secure => 443,
            None => 80,
        };
        if host.is_empty() {
            return Err(format!("{url:?}: no host"));
        }
        Ok(WsUrl {
            secure,
            host,
            port,
            path,
        })
    }

    /// `host:port` for connecting and for the Host header.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// 32 bytes from the operating system, to seed a client's masking-key generator.
pub fn mask_seed() -> io::Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(seed)
}

/// A random `Sec-WebSocket-Key`.
pub fn random_key() -> io::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(client_key(bytes))
}

/// How a connection ended, from the client's point of view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// The code in the server's Close frame, or the one we failed with.
    pub code: Option<u16>,
    /// Whether the closing handshake completed.
    pub clean: bool,
}

/// A blocking WebSocket client over TCP, or TLS for `wss://`.
pub struct BlockingClient {
    stream: ClientStream,
    conn: Connection,
    buf: Vec<u8>,
    out: Vec<u8>,
    /// Frames that arrived with the handshake response.
    early: Vec<u8>,
    /// The subprotocol the server chose.
    pub protocol: Option<String>,
}

impl BlockingClient {
    /// Connect and complete the opening handshake.
    pub fn connect(url: &str, protocols: &[&str], limits: Limits) -> io::Result<BlockingClient> {
        Self::connect_with(url, protocols, limits, None)
    }

    /// Connect, offering permessage-deflate (RFC 7692) if `deflate` is given; it is used if the
    /// server accepts it, and an answer that does not fit the offer fails the handshake (§5).
    pub fn connect_with(
        url: &str,
        protocols: &[&str],
        limits: Limits,
        deflate: Option<(ClientOffer, CodecTuning)>,
    ) -> io::Result<BlockingClient> {
        let url = WsUrl::parse(url).map_err(io::Error::other)?;
        let tcp = TcpStream::connect(url.authority())?;
        tcp.set_nodelay(true)?;
        let mut stream = if url.secure {
            ClientStream::tls(tcp, &url.host)?
        } else {
            ClientStream::Plain(tcp)
        };
        let key = random_key()?;
        let mut request = Vec::new();
        let offered = deflate.map(|(d, _)| d.header_value());
        let offer = Offer {
            protocols,
            extensions: offered.as_deref(),
        };
        write_client_request(&mut request, &url.authority(), &url.path, &key, offer);
        stream.write_all(&request)?;
        let mut head = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed during handshake",
                ));
            }
            head.extend_from_slice(&buf[..n]);
            match parse_client_response(&head, &key, offer) {
                Ok(None) => continue,
                Ok(Some(accepted)) => {
                    let protocol = accepted.protocol.map(str::to_owned);
                    let early = head[accepted.head_len..].to_vec();
                    let mut conn = Connection::client(limits, mask_seed()?);
                    if let Some((offer, tuning)) = deflate {
                        let agreed = offer
                            .accept(accepted.extensions)
                            .map_err(|e| io::Error::other(format!("permessage-deflate: {e}")))?;
                        if let Some(params) = agreed {
                            let mut config = CodecConfig::new(&params, Role::Client);
                            config.compress_all = tuning.compress_all;
                            conn.enable_deflate(&config);
                        }
                    }
                    return Ok(BlockingClient {
                        stream,
                        conn,
                        buf,
                        out: Vec::new(),
                        early,
                        protocol,
                    });
                }
                Err(e) => return Err(io::Error::other(e.to_string())),
            }
        }
    }

    /// Set a read timeout on the socket.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(timeout)
    }

    /// Queue frames with `f` and write them.
    pub fn send(&mut self, f: impl FnOnce(&mut Sender, &mut Vec<u8>)) -> io::Result<()> {
        f(self.conn.sender(), &mut self.out);
        self.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.write_all(&self.out)?;
        self.out.clear();
        Ok(())
    }

    /// Read and handle events until the connection closes. `on_event` may send replies through
    /// the sender. Pings are answered automatically.
    pub fn run(
        &mut self,
        mut on_event: impl FnMut(&Event<'_>, &mut Sender, &mut Vec<u8>),
    ) -> io::Result<Closed> {
        let mut close_code = None;
        let mut pending = std::mem::take(&mut self.early);
        loop {
            let n = if pending.is_empty() {
                match self.stream.read(&mut self.buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            } else {
                let n = pending.len();
                self.buf[..n].copy_from_slice(&pending);
                pending.clear();
                n
            };
            let mut pos = 0;
            while pos < n {
                match self.conn.handle_bytes(&mut self.buf[pos..n], &mut self.out) {
                    Ok(received) => {
                        pos += received.consumed;
                        if let Some(event) = &received.event {
                            if let Event::Close(frame) = event {
                                close_code = frame.code.map(|c| c.0);
                            }
                            on_event(event, received.tx, &mut self.out);
                        }
                    }
                    Err(error) => {
                        close_code = Some(error.close_code().0);
                        break;
                    }
                }
            }
            self.flush()?;
            if self.conn.state() == State::Closed {
                // §7.1.1: the client waits for the server to close TCP first (bounded).
                self.stream.set_read_timeout(Some(Duration::from_secs(2)))?;
                while matches!(self.stream.read(&mut self.buf), Ok(n) if n > 0) {}
                return Ok(Closed {
                    code: close_code,
                    clean: true,
                });
            }
        }
        Ok(Closed {
            code: close_code,
            clean: false,
        })
    }

    /// Start the closing handshake.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> io::Result<()> {
        self.conn.close(code, reason, &mut self.out);
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = WsUrl::parse("ws://127.0.0.1:6455/echo").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 6455, "/echo")
        );
        let u = WsUrl::parse("ws://localhost").unwrap();
        assert_eq!((u.port, u.path.as_str()), (80, "/"));
        let u = WsUrl::parse("ws://[::1]:9001?case=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("[::1]", 9001, "/?case=1")
        );
        let u = WsUrl::parse("wss://x").unwrap();
        assert_eq!((u.secure, u.port, u.path.as_str()), (true, 443, "/"));
        assert!(!WsUrl::parse("ws://x").unwrap().secure);
        assert!(WsUrl::parse("http://x").is_err());
        assert!(WsUrl::parse("ws://:80/").is_err());
        assert!(WsUrl::parse("ws://x/echo#top").is_err());
    }
}
