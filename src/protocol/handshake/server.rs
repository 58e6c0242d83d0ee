//! The server's side of the opening handshake: RFC 6455 §4.2.1 (reading the client's
//! handshake) and §4.2.2 (sending the server's).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::accept_key;
use crate::protocol::http::RequestHead;

/// Why a request is not a valid WebSocket upgrade (§4.2.1), with the status §4.2.1 and §4.4
/// give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeError {
    /// Item 1: "An HTTP/1.1 or higher GET request": the method is not GET.
    NotGet,
    /// Item 1: the request is HTTP/1.0.
    NotHttp11,
    /// Item 2: no `Host`.
    MissingHost,
    /// Item 3: no `Upgrade: websocket`.
    MissingUpgrade,
    /// Item 4: no `Connection: Upgrade`.
    MissingConnection,
    /// Item 5: no `Sec-WebSocket-Key`.
    MissingKey,
    /// Item 5: a key that is not 16 bytes in base64.
    InvalidKey,
    /// §11.3.1: `Sec-WebSocket-Key` "MUST NOT appear more than once in an HTTP request".
    RepeatedKey,
    /// Item 6: no `Sec-WebSocket-Version`.
    MissingVersion,
    /// §11.3.5: `Sec-WebSocket-Version` "MUST NOT appear more than once" in a request.
    RepeatedVersion,
    /// Item 6: a version other than 13; §4.4 answers with the versions supported.
    UnsupportedVersion,
}

impl UpgradeError {
    /// The status to answer with: 426 with `Sec-WebSocket-Version: 13` for another version
    /// (§4.4), 405 for a method other than GET (RFC 9110 §15.5.6), 400 for the rest ("an
    /// appropriate error code (such as 400 Bad Request)", §4.2.1).
    pub fn status(self) -> u16 {
        match self {
            UpgradeError::NotGet => 405,
            UpgradeError::UnsupportedVersion => 426,
            _ => 400,
        }
    }
}

impl UpgradeError {
    /// What is wrong, in a few words.
    pub fn as_str(self) -> &'static str {
        match self {
            UpgradeError::NotGet => "a WebSocket upgrade must be a GET",
            UpgradeError::NotHttp11 => "WebSocket needs HTTP/1.1",
            UpgradeError::MissingHost => "missing Host",
            UpgradeError::MissingUpgrade => "missing Upgrade: websocket",
            UpgradeError::MissingConnection => "missing Connection: Upgrade",
            UpgradeError::MissingKey => "missing Sec-WebSocket-Key",
            UpgradeError::InvalidKey => "Sec-WebSocket-Key is not 16 bytes of base64",
            UpgradeError::RepeatedKey => "Sec-WebSocket-Key sent more than once",
            UpgradeError::MissingVersion => "missing Sec-WebSocket-Version",
            UpgradeError::RepeatedVersion => "Sec-WebSocket-Version sent more than once",
            UpgradeError::UnsupportedVersion => {
                "unsupported WebSocket version: this server speaks 13"
            }
        }
    }
}

impl fmt::Display for UpgradeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for UpgradeError {}

/// The parts of a valid upgrade request the server needs to decide and reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpgradeRequest<'a> {
    /// The path (`/`, `/echo`, ...).
    pub path: &'a str,
    /// The query string, if any.
    pub query: Option<&'a str>,
    /// The authority the request is for: `Host`, or the target's in absolute-form.
    pub host: &'a str,
    /// `Sec-WebSocket-Key`.
    pub key: &'a str,
    /// The `Origin` browsers send (item 7; §10.2).
    pub origin: Option<&'a str>,
    /// The `Authorization` field, if any.
    pub authorization: Option<&'a str>,
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
pub fn validate_upgrade<'a>(head: &RequestHead<'a>) -> Result<UpgradeRequest<'a>, UpgradeError> {
    if head.method != "GET" {
        return Err(UpgradeError::NotGet);
    }
    if head.minor_version < 1 {
        return Err(UpgradeError::NotHttp11);
    }
    let host = head
        .header("Host")
        .and(head.authority())
        .filter(|h| !h.is_empty())
        .ok_or(UpgradeError::MissingHost)?;
    if !head.wants_websocket() {
        return Err(UpgradeError::MissingUpgrade);
    }
    if !head.has_token("Connection", "Upgrade") {
        return Err(UpgradeError::MissingConnection);
    }
    if head.header_count("Sec-WebSocket-Key") > 1 {
        return Err(UpgradeError::RepeatedKey);
    }
    if head.header_count("Sec-WebSocket-Version") > 1 {
        return Err(UpgradeError::RepeatedVersion);
    }
    let key = head
        .header("Sec-WebSocket-Key")
        .ok_or(UpgradeError::MissingKey)?;
    if !is_valid_key(key) {
        return Err(UpgradeError::InvalidKey);
    }
    match head.header("Sec-WebSocket-Version") {
        Some("13") => {}
        Some(_) => return Err(UpgradeError::UnsupportedVersion),
        None => return Err(UpgradeError::MissingVersion),
    }
    Ok(UpgradeRequest {
        path: head.path(),
        query: head.query(),
        host,
        key,
        origin: head.header("Origin"),
        authorization: head.header("Authorization"),
    })
}

/// A key is 16 bytes in base64: 24 characters, the last two `==`.
fn is_valid_key(key: &str) -> bool {
    let mut decoded = [0u8; 18];
    key.len() == 24 && matches!(BASE64.decode_slice(key, &mut decoded), Ok(16))
}

/// What the 101 reply carries besides the accept value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Accept<'a> {
    /// The subprotocol selected (§4.2.2, item 5.5: one of those the client offered).
    pub protocol: Option<&'a str>,
    /// The `Sec-WebSocket-Extensions` value for the extensions in use (item 5.6).
    pub extensions: Option<&'a str>,
}

/// Write the 101 response that completes the handshake (§4.2.2, item 5).
pub fn write_accept_response(key: &str, accept: Accept<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
    );
    out.extend_from_slice(&accept_key(key));
    if let Some(protocol) = accept.protocol {
        out.extend_from_slice(b"\r\nSec-WebSocket-Protocol: ");
        out.extend_from_slice(protocol.as_bytes());
    }
    if let Some(extensions) = accept.extensions {
        out.extend_from_slice(b"\r\nSec-WebSocket-Extensions: ");
        out.extend_from_slice(extensions.as_bytes());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::http::{HeadLimits, parse_request};

    /// RFC 6455 §1.2/§1.3: the sample request and the accept value it must produce.
    pub(crate) const RFC_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
Host: server.example.com\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Origin: http://example.com\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

    fn refusal(request: &str) -> UpgradeError {
        let (head, _) = parse_request(request.as_bytes(), &HeadLimits::default())
            .unwrap()
            .unwrap();
        validate_upgrade(&head).unwrap_err()
    }

    #[test]
    fn rfc_1_2_sample_request_is_accepted() {
        let (head, used) = parse_request(RFC_REQUEST, &HeadLimits::default())
            .unwrap()
            .unwrap();
        assert_eq!(used, RFC_REQUEST.len());
        let upgrade = validate_upgrade(&head).unwrap();
        assert_eq!(upgrade.path, "/chat");
        assert_eq!(upgrade.host, "server.example.com");
        assert_eq!(upgrade.origin, Some("http://example.com"));
        let offered: Vec<_> = head.header_tokens("Sec-WebSocket-Protocol").collect();
        assert_eq!(offered, ["chat", "superchat"]);
        let mut out = Vec::new();
        let accept = Accept {
            protocol: Some("chat"),
            extensions: None,
        };
        write_accept_response(upgrade.key, accept, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(text.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(text.contains("\r\nSec-WebSocket-Protocol: chat\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn header_names_and_tokens_ignore_case_and_lists_are_split() {
        let req = "GET / HTTP/1.1\r\nhost: a\r\nUPGRADE: WebSocket\r\nconnection: keep-alive, upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n";
        let (head, _) = parse_request(req.as_bytes(), &HeadLimits::default())
            .unwrap()
            .unwrap();
        assert!(validate_upgrade(&head).is_ok());
    }

    /// RFC 9112 §3.2.2: with an absolute-form target, its authority is the host.
    #[test]
    fn absolute_form_target_names_the_host() {
        let req = "GET http://127.0.0.1:9/tty HTTP/1.1\r\nHost: evil.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let (head, _) = parse_request(req.as_bytes(), &HeadLimits::default())
            .unwrap()
            .unwrap();
        let upgrade = validate_upgrade(&head).unwrap();
        assert_eq!((upgrade.host, upgrade.path), ("127.0.0.1:9", "/tty"));
    }

    #[test]
    fn each_missing_requirement_has_its_error() {
        let ok = "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let cases = [
            (ok.replace("GET", "POST"), UpgradeError::NotGet),
            (ok.replace("HTTP/1.1", "HTTP/1.0"), UpgradeError::NotHttp11),
            (ok.replace("Host: a\r\n", ""), UpgradeError::MissingHost),
            (
                ok.replace("Upgrade: websocket\r\n", ""),
                UpgradeError::MissingUpgrade,
            ),
            (
                ok.replace("Connection: Upgrade", "Connection: close"),
                UpgradeError::MissingConnection,
            ),
            (
                ok.replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="),
                UpgradeError::InvalidKey,
            ),
            (
                ok.replace("dGhlIHNhbXBsZSBub25jZQ==", "!!!!!!!!!!!!!!!!!!!!!!=="),
                UpgradeError::InvalidKey,
            ),
            (
                ok.replace("Version: 13", "Version: 8"),
                UpgradeError::UnsupportedVersion,
            ),
            (
                ok.replace("Sec-WebSocket-Version: 13\r\n", ""),
                UpgradeError::MissingVersion,
            ),
            (
                ok.replace(
                    "\r\n\r\n",
                    "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                ),
                UpgradeError::RepeatedKey,
            ),
            (
                ok.replace("\r\n\r\n", "\r\nSec-WebSocket-Version: 13\r\n\r\n"),
                UpgradeError::RepeatedVersion,
            ),
        ];
        for (request, error) in cases {
            assert_eq!(refusal(&request), error, "{request:?}");
        }
        assert_eq!(UpgradeError::UnsupportedVersion.status(), 426);
        assert_eq!(UpgradeError::NotGet.status(), 405);
        assert_eq!(UpgradeError::MissingKey.status(), 400);
    }
}
