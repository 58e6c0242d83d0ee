//! The opening handshake (RFC 6455 §4): an HTTP/1.1 request head parsed incrementally, the
//! server's validation of an upgrade request (§4.2.1) and its 101 reply (§4.2.2), and the plain
//! HTTP error responses a refused request gets.
//!
//! The parser borrows from the bytes it is given and allocates only the small list of header
//! slices. Short input is not an error: it returns `Ok(None)` and the caller reads more.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha1::{Digest, Sha1};

/// §1.3: the GUID appended to the key before hashing.
pub const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Bounds on a request head. Exceeding one is answered with 414 or 431 and the connection closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// The longest request line (method, target, version).
    pub max_request_line: usize,
    /// The longest head, request line and headers together.
    pub max_head_bytes: usize,
    /// The most header fields.
    pub max_headers: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        HeadLimits {
            max_request_line: 4096,
            max_head_bytes: 16 * 1024,
            max_headers: 64,
        }
    }
}

/// Why a request was refused, and the HTTP status it is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// 400: malformed HTTP, or an upgrade request missing what §4.2.1 requires.
    BadRequest(&'static str),
    /// 403: refused by policy (Origin, Host).
    Forbidden(&'static str),
    /// 404: no route at that path.
    NotFound,
    /// 405: a method other than GET.
    MethodNotAllowed,
    /// 414: the request line is over the limit.
    UriTooLong,
    /// 426: `Sec-WebSocket-Version` other than 13 (§4.2.2 asks for the versions we support).
    UnsupportedVersion,
    /// 429: too many wrong tokens from this address; retry after this many seconds.
    TooManyRequests(u64),
    /// 431: too many header fields, or too many bytes of them.
    HeadersTooLarge,
    /// 503: the server is at its connection limit or shutting down.
    Unavailable,
}

impl HandshakeError {
    /// The HTTP status code.
    pub fn status(self) -> u16 {
        match self {
            HandshakeError::BadRequest(_) => 400,
            HandshakeError::Forbidden(_) => 403,
            HandshakeError::NotFound => 404,
            HandshakeError::MethodNotAllowed => 405,
            HandshakeError::UriTooLong => 414,
            HandshakeError::UnsupportedVersion => 426,
            HandshakeError::TooManyRequests(_) => 429,
            HandshakeError::HeadersTooLarge => 431,
            HandshakeError::Unavailable => 503,
        }
    }

    /// Write the whole HTTP response for this error; the connection is closed after it.
    pub fn write_response(self, out: &mut Vec<u8>) {
        let retry_after;
        let extra: &[(&str, &str)] = match self {
            // RFC 9110 §15.5.22: a 426 names the protocol to upgrade to.
            HandshakeError::UnsupportedVersion => &[
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Version", "13"),
            ],
            HandshakeError::MethodNotAllowed => &[("Allow", "GET")],
            HandshakeError::TooManyRequests(seconds) => {
                retry_after = [("Retry-After", seconds.to_string())];
                &[(retry_after[0].0, retry_after[0].1.as_str())]
            }
            _ => &[],
        };
        let body = format!("{self}\n");
        write_response(
            out,
            self.status(),
            extra,
            "text/plain; charset=utf-8",
            body.as_bytes(),
        );
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::BadRequest(why) => write!(f, "bad request: {why}"),
            HandshakeError::Forbidden(why) => write!(f, "forbidden: {why}"),
            HandshakeError::NotFound => f.write_str("not found"),
            HandshakeError::MethodNotAllowed => f.write_str("method not allowed: use GET"),
            HandshakeError::UriTooLong => f.write_str("request line too long"),
            HandshakeError::UnsupportedVersion => {
                f.write_str("unsupported WebSocket version: this server speaks 13")
            }
            HandshakeError::TooManyRequests(seconds) => {
                write!(f, "too many wrong tokens: retry after {seconds} s")
            }
            HandshakeError::HeadersTooLarge => f.write_str("request header fields too large"),
            HandshakeError::Unavailable => f.write_str("service unavailable"),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// The reason phrase of the statuses this server sends.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        414 => "URI Too Long",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Write a complete HTTP/1.1 response with a body; the server closes the connection after it.
pub fn write_response(
    out: &mut Vec<u8>,
    status: u16,
    headers: &[(&str, &str)],
    content_type: &str,
    body: &[u8],
) {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {status} {}\r\nServer: wsbridge/{}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reason_phrase(status),
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    for (name, value) in headers {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// One header field, borrowed from the request bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The field name as sent (compare without case).
    pub name: &'a str,
    /// The value with surrounding whitespace removed.
    pub value: &'a str,
}

/// An HTTP/1.1 request head (RFC 9112 §3, §5), borrowed from the bytes it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead<'a> {
    /// The method, case-sensitive (`GET`).
    pub method: &'a str,
    /// The request target in origin form (`/path?query`).
    pub target: &'a str,
    /// The minor version of HTTP/1.x.
    pub minor_version: u8,
    /// The header fields in order.
    pub headers: Vec<Header<'a>>,
}

/// Parse a request head from the start of `buf`.
///
/// ```text
/// request-line = method SP request-target SP HTTP-version CRLF
/// field-line   = field-name ":" OWS field-value OWS CRLF
/// head         = request-line *( field-line ) CRLF
/// ```
///
/// Returns `Ok(None)` while the head is incomplete and within the limits, or the head and the
/// number of bytes it took (anything after it belongs to the WebSocket connection).
pub fn parse_request<'a>(
    buf: &'a [u8],
    limits: &HeadLimits,
) -> Result<Option<(RequestHead<'a>, usize)>, HandshakeError> {
    // The request line is judged first, whether or not the head is complete, so that a request
    // gets the same status however its bytes were split across reads. Without its CRLF yet, a
    // trailing CR may be the start of it and does not count.
    let line_len = match buf.windows(2).position(|w| w == b"\r\n") {
        Some(len) => len,
        None => buf.len() - usize::from(buf.ends_with(b"\r")),
    };
    if line_len > limits.max_request_line {
        return Err(HandshakeError::UriTooLong);
    }
    let Some(head_len) = find_head_end(buf) else {
        if buf.len() > limits.max_head_bytes {
            return Err(HandshakeError::HeadersTooLarge);
        }
        return Ok(None);
    };
    if head_len > limits.max_head_bytes {
        return Err(HandshakeError::HeadersTooLarge);
    }
    let head = std::str::from_utf8(&buf[..head_len - 4])
        .map_err(|_| HandshakeError::BadRequest("request head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    if request_line.len() > limits.max_request_line {
        return Err(HandshakeError::UriTooLong);
    }
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HandshakeError::BadRequest("malformed request line"));
    };
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(HandshakeError::BadRequest("malformed method"));
    }
    if !target.starts_with('/') || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(HandshakeError::BadRequest("malformed request target"));
    }
    let minor_version = match version.as_bytes() {
        [
            b'H',
            b'T',
            b'T',
            b'P',
            b'/',
            b'1',
            b'.',
            minor @ b'0'..=b'9',
        ] => minor - b'0',
        _ => return Err(HandshakeError::BadRequest("not an HTTP/1.x request")),
    };
    let mut headers = Vec::with_capacity(16);
    for line in lines {
        if headers.len() == limits.max_headers {
            return Err(HandshakeError::HeadersTooLarge);
        }
        if line.starts_with([' ', '\t']) {
            return Err(HandshakeError::BadRequest("obsolete line folding"));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(HandshakeError::BadRequest("malformed header field"));
        };
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(HandshakeError::BadRequest("malformed header name"));
        }
        let value = value.trim_matches([' ', '\t']);
        if value.bytes().any(|b| (b < b' ' && b != b'\t') || b == 0x7f) {
            return Err(HandshakeError::BadRequest(
                "control character in header value",
            ));
        }
        headers.push(Header { name, value });
    }
    Ok(Some((
        RequestHead {
            method,
            target,
            minor_version,
            headers,
        },
        head_len,
    )))
}

/// The length of the head including its final blank line.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// RFC 9110 §5.6.2: `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The comma-separated elements of a list-valued header, trimmed, empty ones skipped.
pub fn list_tokens(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(',')
        .map(|t| t.trim_matches([' ', '\t']))
        .filter(|t| !t.is_empty())
}

impl<'a> RequestHead<'a> {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// How many times a header field appears.
    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .count()
    }

    /// Every element of a list-valued header, across repeated fields, in order.
    pub fn header_tokens<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .flat_map(|h| list_tokens(h.value))
    }

    /// Whether a list-valued header contains a token, compared without case.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.header_tokens(name)
            .any(|t| t.eq_ignore_ascii_case(token))
    }

    /// The path part of the target.
    pub fn path(&self) -> &'a str {
        self.target.split_once('?').map_or(self.target, |(p, _)| p)
    }

    /// The query part of the target, without the `?`.
    pub fn query(&self) -> Option<&'a str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// Whether the client asks to upgrade to WebSocket (an `Upgrade: websocket` token). Requests
    /// without it are plain HTTP.
    pub fn wants_websocket(&self) -> bool {
        self.has_token("Upgrade", "websocket")
    }

    /// Validate an upgrade request as RFC 6455 §4.2.1 lists it.
    ///
    /// 1. "An HTTP/1.1 or higher GET request".
    /// 2. "A |Host| header field containing the server's authority" (the authority itself is the
    ///    server's policy, checked outside the protocol layer).
    /// 3. "An |Upgrade| header field containing the value "websocket", treated as an ASCII
    ///    case-insensitive value."
    /// 4. "A |Connection| header field that includes the token "Upgrade", treated as an ASCII
    ///    case-insensitive value."
    /// 5. "A |Sec-WebSocket-Key| header field with a base64-encoded value that, when decoded, is
    ///    16 bytes in length."
    /// 6. "A |Sec-WebSocket-Version| header field, with a value of 13." Otherwise §4.4: answer
    ///    with the versions supported (426 and `Sec-WebSocket-Version: 13`).
    pub fn validate_upgrade(&self) -> Result<UpgradeRequest<'a>, HandshakeError> {
        if self.method != "GET" {
            return Err(HandshakeError::MethodNotAllowed);
        }
        if self.minor_version < 1 {
            return Err(HandshakeError::BadRequest("WebSocket needs HTTP/1.1"));
        }
        let host = self
            .header("Host")
            .filter(|h| !h.is_empty())
            .ok_or(HandshakeError::BadRequest("missing Host"))?;
        if !self.wants_websocket() {
            return Err(HandshakeError::BadRequest("missing Upgrade: websocket"));
        }
        if !self.has_token("Connection", "Upgrade") {
            return Err(HandshakeError::BadRequest("missing Connection: Upgrade"));
        }
        // §11.3.1 and §11.3.5: these two fields "MUST NOT appear more than once" in a request.
        for (name, why) in [
            ("Sec-WebSocket-Key", "Sec-WebSocket-Key sent more than once"),
            (
                "Sec-WebSocket-Version",
                "Sec-WebSocket-Version sent more than once",
            ),
        ] {
            if self.header_count(name) > 1 {
                return Err(HandshakeError::BadRequest(why));
            }
        }
        let key = self
            .header("Sec-WebSocket-Key")
            .ok_or(HandshakeError::BadRequest("missing Sec-WebSocket-Key"))?;
        if !is_valid_key(key) {
            return Err(HandshakeError::BadRequest(
                "Sec-WebSocket-Key is not 16 bytes of base64",
            ));
        }
        match self.header("Sec-WebSocket-Version") {
            Some("13") => {}
            Some(_) => return Err(HandshakeError::UnsupportedVersion),
            None => return Err(HandshakeError::BadRequest("missing Sec-WebSocket-Version")),
        }
        Ok(UpgradeRequest {
            path: self.path(),
            query: self.query(),
            host,
            key,
            origin: self.header("Origin"),
            authorization: self.header("Authorization"),
        })
    }
}

/// A key is 16 bytes in base64: 24 characters, the last two `==`.
fn is_valid_key(key: &str) -> bool {
    let mut decoded = [0u8; 18];
    key.len() == 24 && matches!(BASE64.decode_slice(key, &mut decoded), Ok(16))
}

/// The parts of a valid upgrade request the server needs to decide and reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpgradeRequest<'a> {
    /// The path (`/`, `/echo`, ...).
    pub path: &'a str,
    /// The query string, if any.
    pub query: Option<&'a str>,
    /// The Host header.
    pub host: &'a str,
    /// Sec-WebSocket-Key.
    pub key: &'a str,
    /// The Origin header browsers send (§4.2.1, item 7; §10.2).
    pub origin: Option<&'a str>,
    /// The Authorization header, if any.
    pub authorization: Option<&'a str>,
}

/// `Sec-WebSocket-Accept` for a key (§4.2.2, item 5.4): base64 of the SHA-1 of the key followed
/// by the GUID. Written into a fixed buffer: 20 bytes of digest are 28 characters of base64.
pub fn accept_key(key: &str) -> [u8; 28] {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WEBSOCKET_GUID.as_bytes());
    let digest = sha.finalize();
    let mut accept = [0u8; 28];
    // 20 bytes always encode to exactly 28 characters, so this cannot fail.
    let _ = BASE64.encode_slice(digest.as_slice(), &mut accept);
    accept
}

/// Write the 101 response that completes the handshake (§4.2.2, item 5).
pub fn write_accept_response(key: &str, protocol: Option<&str>, out: &mut Vec<u8>) {
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
    );
    out.extend_from_slice(&accept_key(key));
    if let Some(protocol) = protocol {
        out.extend_from_slice(b"\r\nSec-WebSocket-Protocol: ");
        out.extend_from_slice(protocol.as_bytes());
    }
    out.extend_from_slice(
        concat!(
            "\r\nServer: wsbridge/",
            env!("CARGO_PKG_VERSION"),
            "\r\n\r\n"
        )
        .as_bytes(),
    );
}

/// Why a client refuses the server's reply to its opening handshake (RFC 6455 §4.1: "the
/// client MUST _Fail the WebSocket Connection_").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientHandshakeError {
    /// The response head is malformed or over the limits.
    Malformed(&'static str),
    /// "If the status code received from the server is not 101" (§4.1, item 1).
    Status(u16),
    /// No `Upgrade: websocket` (item 2).
    MissingUpgrade,
    /// No `Connection: Upgrade` (item 3).
    MissingConnection,
    /// `Sec-WebSocket-Accept` missing or not the one our key implies (item 4).
    BadAccept,
    /// An extension we did not ask for (item 5).
    UnexpectedExtension,
    /// A subprotocol we did not offer (item 6).
    UnexpectedProtocol,
}

impl fmt::Display for ClientHandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientHandshakeError::Malformed(why) => write!(f, "malformed response: {why}"),
            ClientHandshakeError::Status(status) => write!(f, "server answered {status}, not 101"),
            ClientHandshakeError::MissingUpgrade => {
                f.write_str("response lacks Upgrade: websocket")
            }
            ClientHandshakeError::MissingConnection => {
                f.write_str("response lacks Connection: Upgrade")
            }
            ClientHandshakeError::BadAccept => f.write_str("wrong Sec-WebSocket-Accept"),
            ClientHandshakeError::UnexpectedExtension => {
                f.write_str("server chose an extension we did not offer")
            }
            ClientHandshakeError::UnexpectedProtocol => {
                f.write_str("server chose a subprotocol we did not offer")
            }
        }
    }
}

impl std::error::Error for ClientHandshakeError {}

/// A `Sec-WebSocket-Key` from 16 random bytes (§4.1: "a randomly selected 16-byte value that has
/// been base64-encoded"; the caller takes the bytes from a strong source).
pub fn client_key(random: [u8; 16]) -> String {
    BASE64.encode(random)
}

/// Write the client's opening handshake (§4.1): a GET with Host, Upgrade, Connection,
/// Sec-WebSocket-Key, Sec-WebSocket-Version 13, and the subprotocols offered, if any.
pub fn write_client_request(
    out: &mut Vec<u8>,
    host: &str,
    path: &str,
    key: &str,
    protocols: &[&str],
) {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if !protocols.is_empty() {
        let _ = write!(out, "Sec-WebSocket-Protocol: {}\r\n", protocols.join(", "));
    }
    let _ = write!(
        out,
        "User-Agent: wsbridge/{}\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
}

/// Parse the server's response to the opening handshake and check it as §4.1 says. Returns
/// `Ok(None)` while incomplete, else the subprotocol chosen and the bytes the head took (what
/// follows are frames).
pub fn parse_client_response<'a>(
    buf: &'a [u8],
    key: &str,
    offered: &[&str],
) -> Result<Option<(Option<&'a str>, usize)>, ClientHandshakeError> {
    let Some(head_len) = find_head_end(buf) else {
        return if buf.len() > HeadLimits::default().max_head_bytes {
            Err(ClientHandshakeError::Malformed("response head too large"))
        } else {
            Ok(None)
        };
    };
    let head = std::str::from_utf8(&buf[..head_len - 4])
        .map_err(|_| ClientHandshakeError::Malformed("response head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or(ClientHandshakeError::Malformed("bad status line"))?;
    if status != 101 {
        return Err(ClientHandshakeError::Status(status));
    }
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or(ClientHandshakeError::Malformed("bad header line"))?;
        headers.push(Header {
            name: name.trim(),
            value: value.trim_matches([' ', '\t']),
        });
    }
    let response = RequestHead {
        method: "",
        target: "",
        minor_version: 1,
        headers,
    };
    if !response.has_token("Upgrade", "websocket") {
        return Err(ClientHandshakeError::MissingUpgrade);
    }
    if !response.has_token("Connection", "Upgrade") {
        return Err(ClientHandshakeError::MissingConnection);
    }
    if response.header("Sec-WebSocket-Accept").map(str::as_bytes) != Some(&accept_key(key)[..]) {
        return Err(ClientHandshakeError::BadAccept);
    }
    if response
        .header_tokens("Sec-WebSocket-Extensions")
        .next()
        .is_some()
    {
        return Err(ClientHandshakeError::UnexpectedExtension);
    }
    let protocol = response.header("Sec-WebSocket-Protocol");
    if let Some(chosen) = protocol
        && !offered.contains(&chosen)
    {
        return Err(ClientHandshakeError::UnexpectedProtocol);
    }
    Ok(Some((protocol, head_len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6455 §1.2/§1.3: the sample request and the accept value it must produce.
    const RFC_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
Host: server.example.com\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Origin: http://example.com\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

    fn parse(bytes: &[u8]) -> Result<Option<(RequestHead<'_>, usize)>, HandshakeError> {
        parse_request(bytes, &HeadLimits::default())
    }

    #[test]
    fn rfc_1_3_accept_key() {
        assert_eq!(
            &accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn rfc_1_2_sample_request_is_accepted() {
        let (head, used) = parse(RFC_REQUEST).unwrap().unwrap();
        assert_eq!(used, RFC_REQUEST.len());
        let upgrade = head.validate_upgrade().unwrap();
        assert_eq!(upgrade.path, "/chat");
        assert_eq!(upgrade.host, "server.example.com");
        assert_eq!(upgrade.origin, Some("http://example.com"));
        let offered: Vec<_> = head.header_tokens("Sec-WebSocket-Protocol").collect();
        assert_eq!(offered, ["chat", "superchat"]);
        let mut out = Vec::new();
        write_accept_response(upgrade.key, Some("chat"), &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(text.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(text.contains("\r\nSec-WebSocket-Protocol: chat\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn every_split_point_is_incomplete_until_the_end() {
        for cut in 0..RFC_REQUEST.len() {
            assert_eq!(parse(&RFC_REQUEST[..cut]), Ok(None), "cut at {cut}");
        }
        // Bytes after the head are not part of it.
        let mut with_frame = RFC_REQUEST.to_vec();
        with_frame.extend_from_slice(&[0x81, 0x80, 1, 2, 3, 4]);
        assert_eq!(parse(&with_frame).unwrap().unwrap().1, RFC_REQUEST.len());
    }

    fn refusal(request: &str) -> HandshakeError {
        let (head, _) = parse(request.as_bytes()).unwrap().unwrap();
        head.validate_upgrade().unwrap_err()
    }

    #[test]
    fn header_names_and_tokens_ignore_case_and_lists_are_split() {
        let req = "GET / HTTP/1.1\r\nhost: a\r\nUPGRADE: WebSocket\r\nconnection: keep-alive, upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n";
        let (head, _) = parse(req.as_bytes()).unwrap().unwrap();
        assert!(head.validate_upgrade().is_ok());
    }

    #[test]
    fn each_missing_requirement_has_its_status() {
        let ok = "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        assert_eq!(refusal(&ok.replace("GET", "POST")).status(), 405);
        assert_eq!(refusal(&ok.replace("HTTP/1.1", "HTTP/1.0")).status(), 400);
        assert_eq!(refusal(&ok.replace("Host: a\r\n", "")).status(), 400);
        assert_eq!(
            refusal(&ok.replace("Connection: Upgrade", "Connection: close")).status(),
            400
        );
        assert_eq!(
            refusal(&ok.replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ=")).status(),
            400
        );
        assert_eq!(
            refusal(&ok.replace("dGhlIHNhbXBsZSBub25jZQ==", "!!!!!!!!!!!!!!!!!!!!!!==")).status(),
            400
        );
        assert_eq!(
            refusal(&ok.replace("Version: 13", "Version: 8")),
            HandshakeError::UnsupportedVersion
        );
        assert_eq!(
            refusal(&ok.replace("Sec-WebSocket-Version: 13\r\n", "")).status(),
            400
        );
        // §11.3.1, §11.3.5: the key and the version at most once.
        let twice = |name: &str| ok.replace("\r\n\r\n", &format!("\r\n{name}\r\n\r\n"));
        assert_eq!(
            refusal(&twice("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")),
            HandshakeError::BadRequest("Sec-WebSocket-Key sent more than once")
        );
        assert_eq!(
            refusal(&twice("Sec-WebSocket-Version: 13")),
            HandshakeError::BadRequest("Sec-WebSocket-Version sent more than once")
        );
        let mut out = Vec::new();
        HandshakeError::UnsupportedVersion.write_response(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
        assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"));
        assert!(text.contains("\r\nUpgrade: websocket\r\n"));
    }

    /// Found by the `handshake` fuzz target (seed `request-line-over-small-limit`): a long
    /// request line was refused (414) while its CRLF had not arrived, accepted as incomplete
    /// once it had, and refused again when the head completed; and a line both too long and
    /// in a head over the byte limit got 414 in pieces but 431 at once. Every split must now
    /// give the same status as the whole head.
    #[test]
    fn fuzz_request_line_limit_is_the_same_at_every_split() {
        let limits = HeadLimits {
            max_request_line: 40,
            max_head_bytes: 200,
            max_headers: 4,
        };
        let line = format!("GET /{} HTTP/1.1", "a".repeat(60));
        let long_line = format!("{line}\r\nHost: a\r\n\r\n");
        let long_head = format!("{line}\r\nX: {}\r\n\r\n", "b".repeat(300));
        for head in [long_line, long_head] {
            assert_eq!(
                parse_request(head.as_bytes(), &limits),
                Err(HandshakeError::UriTooLong)
            );
            for cut in 0..head.len() {
                let prefix = parse_request(&head.as_bytes()[..cut], &limits);
                assert!(
                    prefix == Ok(None) || prefix == Err(HandshakeError::UriTooLong),
                    "cut {cut}: {prefix:?}"
                );
                if cut > 41 {
                    assert_eq!(prefix, Err(HandshakeError::UriTooLong), "cut {cut}");
                }
            }
        }
        // A CR that may start the line's CRLF is not part of the line.
        let exact = format!("GET /{} HTTP/1.1\r", "a".repeat(26));
        assert_eq!(exact.len(), 41);
        assert_eq!(parse_request(exact.as_bytes(), &limits), Ok(None));
    }

    #[test]
    fn limits_are_enforced_before_the_head_is_complete() {
        let limits = HeadLimits {
            max_request_line: 64,
            max_head_bytes: 256,
            max_headers: 4,
        };
        let long_line = format!("GET /{} HTTP/1.1", "a".repeat(100));
        assert_eq!(
            parse_request(long_line.as_bytes(), &limits),
            Err(HandshakeError::UriTooLong)
        );
        let many_bytes = format!("GET / HTTP/1.1\r\nX: {}", "b".repeat(300));
        assert_eq!(
            parse_request(many_bytes.as_bytes(), &limits),
            Err(HandshakeError::HeadersTooLarge)
        );
        let many_fields = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n";
        assert_eq!(
            parse_request(many_fields.as_bytes(), &limits),
            Err(HandshakeError::HeadersTooLarge)
        );
    }

    #[test]
    fn client_handshake_round_trip_with_our_server_side() {
        let key = client_key([7; 16]);
        let mut request = Vec::new();
        write_client_request(
            &mut request,
            "example.com:80",
            "/chat?x=1",
            &key,
            &["chat", "superchat"],
        );
        let (head, _) = parse(&request).unwrap().unwrap();
        let upgrade = head.validate_upgrade().unwrap();
        assert_eq!(
            (upgrade.host, upgrade.path, upgrade.query),
            ("example.com:80", "/chat", Some("x=1"))
        );
        let mut response = Vec::new();
        write_accept_response(upgrade.key, Some("superchat"), &mut response);
        response.extend_from_slice(&[0x81, 0x00]);
        let (protocol, used) = parse_client_response(&response, &key, &["chat", "superchat"])
            .unwrap()
            .unwrap();
        assert_eq!((protocol, used), (Some("superchat"), response.len() - 2));
        for cut in 0..used {
            assert_eq!(
                parse_client_response(&response[..cut], &key, &["superchat"]),
                Ok(None)
            );
        }
    }

    #[test]
    fn client_refuses_bad_responses() {
        let key = client_key([1; 16]);
        let mut good = Vec::new();
        write_accept_response(&key, None, &mut good);
        let good = String::from_utf8(good).unwrap();
        fn protocol_of(
            result: Result<Option<(Option<&str>, usize)>, ClientHandshakeError>,
        ) -> Result<Option<Option<String>>, ClientHandshakeError> {
            result.map(|r| r.map(|(p, _)| p.map(str::to_owned)))
        }
        let check = |text: &str, offered: &[&str]| {
            protocol_of(parse_client_response(text.as_bytes(), &key, offered))
        };
        assert_eq!(check(&good, &[]), Ok(Some(None)));
        assert_eq!(
            check("HTTP/1.1 403 Forbidden\r\n\r\n", &[]),
            Err(ClientHandshakeError::Status(403))
        );
        assert_eq!(
            check(&good.replace("Upgrade: websocket\r\n", ""), &[]),
            Err(ClientHandshakeError::MissingUpgrade)
        );
        assert_eq!(
            check(&good.replace("Accept: ", "Accept: x"), &[]),
            Err(ClientHandshakeError::BadAccept)
        );
        let with_protocol = good.replace("\r\n\r\n", "\r\nSec-WebSocket-Protocol: chat\r\n\r\n");
        assert_eq!(
            check(&with_protocol, &[]),
            Err(ClientHandshakeError::UnexpectedProtocol)
        );
        let with_extension = good.replace(
            "\r\n\r\n",
            "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
        );
        assert_eq!(
            check(&with_extension, &[]),
            Err(ClientHandshakeError::UnexpectedExtension)
        );
    }

    #[test]
    fn malformed_heads_are_bad_requests() {
        for bad in [
            "GET\r\n\r\n",
            "GET / HTTP/2.0\r\n\r\n",
            "GET  / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nNo colon\r\n\r\n",
            "GET / HTTP/1.1\r\n folded: x\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            "G(T / HTTP/1.1\r\n\r\n",
        ] {
            assert!(
                matches!(parse(bad.as_bytes()), Err(HandshakeError::BadRequest(_))),
                "{bad:?}"
            );
        }
    }
}
