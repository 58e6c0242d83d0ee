//! The client's side of the opening handshake (RFC 6455 §4.1): the request it sends and its
//! checks of the server's reply.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::accept_key;
use crate::protocol::http::{HeadError, HeadLimits, ResponseHead, parse_response};

/// Why a client refuses the server's reply to its opening handshake (§4.1: "the client MUST
/// _Fail the WebSocket Connection_").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientHandshakeError {
    /// The response head is malformed or over the limits.
    Malformed(HeadError),
    /// "If the status code received from the server is not 101" (item 1).
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

/// What a client asks for besides the upgrade itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offer<'a> {
    /// Subprotocols, most preferred first (item 10).
    pub protocols: &'a [&'a str],
    /// The `Sec-WebSocket-Extensions` value offered (item 11).
    pub extensions: Option<&'a str>,
}

/// Write the client's opening handshake (§4.1): a GET with Host, Upgrade, Connection,
/// Sec-WebSocket-Key, Sec-WebSocket-Version 13, and what `offer` asks for.
pub fn write_client_request(out: &mut Vec<u8>, host: &str, path: &str, key: &str, offer: Offer) {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if !offer.protocols.is_empty() {
        let _ = write!(
            out,
            "Sec-WebSocket-Protocol: {}\r\n",
            offer.protocols.join(", ")
        );
    }
    if let Some(extensions) = offer.extensions {
        let _ = write!(out, "Sec-WebSocket-Extensions: {extensions}\r\n");
    }
    let _ = write!(
        out,
        "User-Agent: wsbridge/{}\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
}

/// What the server accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted<'a> {
    /// The subprotocol it chose, one of ours.
    pub protocol: Option<&'a str>,
    /// Its `Sec-WebSocket-Extensions` answer, for the caller to check against its offer.
    pub extensions: Option<&'a str>,
    /// The bytes the response head took (what follows are frames).
    pub head_len: usize,
}

/// Parse the server's response to the opening handshake and check it as §4.1 says. Returns
/// `Ok(None)` while incomplete.
///
/// An extension in the answer is refused unless `offer.extensions` offered some; checking the
/// parameters against the offer is the extension's business.
pub fn parse_client_response<'a>(
    buf: &'a [u8],
    key: &str,
    offer: Offer,
) -> Result<Option<Accepted<'a>>, ClientHandshakeError> {
    let Some((response, head_len)) =
        parse_response(buf, &HeadLimits::default()).map_err(ClientHandshakeError::Malformed)?
    else {
        return Ok(None);
    };
    check_response(&response, key, offer).map(|(protocol, extensions)| {
        Some(Accepted {
            protocol,
            extensions,
            head_len,
        })
    })
}

type Chosen<'a> = (Option<&'a str>, Option<&'a str>);

/// §4.1, the checks of items 1 to 6 on a complete response head.
fn check_response<'a>(
    response: &ResponseHead<'a>,
    key: &str,
    offer: Offer,
) -> Result<Chosen<'a>, ClientHandshakeError> {
    if response.status != 101 {
        return Err(ClientHandshakeError::Status(response.status));
    }
    let headers = &response.headers;
    if !headers.has_token("Upgrade", "websocket") {
        return Err(ClientHandshakeError::MissingUpgrade);
    }
    if !headers.has_token("Connection", "Upgrade") {
        return Err(ClientHandshakeError::MissingConnection);
    }
    if headers.get("Sec-WebSocket-Accept").map(str::as_bytes) != Some(&accept_key(key)[..]) {
        return Err(ClientHandshakeError::BadAccept);
    }
    let extensions = headers.get("Sec-WebSocket-Extensions");
    if extensions.is_some() && offer.extensions.is_none() {
        return Err(ClientHandshakeError::UnexpectedExtension);
    }
    let protocol = headers.get("Sec-WebSocket-Protocol");
    if let Some(chosen) = protocol
        && !offer.protocols.contains(&chosen)
    {
        return Err(ClientHandshakeError::UnexpectedProtocol);
    }
    Ok((protocol, extensions))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::handshake::server::{Accept, validate_upgrade, write_accept_response};
    use crate::protocol::http::parse_request;

    #[test]
    fn client_handshake_round_trip_with_our_server_side() {
        let key = client_key([7; 16]);
        let protocols = ["chat", "superchat"];
        let offer = Offer {
            protocols: &protocols,
            extensions: None,
        };
        let mut request = Vec::new();
        write_client_request(&mut request, "example.com:80", "/chat?x=1", &key, offer);
        let (head, _) = parse_request(&request, &HeadLimits::default())
            .unwrap()
            .unwrap();
        let upgrade = validate_upgrade(&head).unwrap();
        assert_eq!(
            (upgrade.host, upgrade.path, upgrade.query),
            ("example.com:80", "/chat", Some("x=1"))
        );
        let mut response = Vec::new();
        let accept = Accept {
            protocol: Some("superchat"),
            extensions: None,
        };
        write_accept_response(upgrade.key, accept, &mut response);
        response.extend_from_slice(&[0x81, 0x00]);
        let accepted = parse_client_response(&response, &key, offer)
            .unwrap()
            .unwrap();
        assert_eq!(
            (accepted.protocol, accepted.head_len),
            (Some("superchat"), response.len() - 2)
        );
        for cut in 0..accepted.head_len {
            assert_eq!(
                parse_client_response(&response[..cut], &key, offer),
                Ok(None)
            );
        }
    }

    #[test]
    fn client_refuses_bad_responses() {
        let key = client_key([1; 16]);
        let mut good = Vec::new();
        write_accept_response(&key, Accept::default(), &mut good);
        let good = String::from_utf8(good).unwrap();
        let check = |text: &str| {
            parse_client_response(text.as_bytes(), &key, Offer::default())
                .map(|a| a.map(|a| a.protocol.map(str::to_owned)))
        };
        assert_eq!(check(&good), Ok(Some(None)));
        assert_eq!(
            check("HTTP/1.1 403 Forbidden\r\n\r\n"),
            Err(ClientHandshakeError::Status(403))
        );
        assert_eq!(
            check(&good.replace("Upgrade: websocket\r\n", "")),
            Err(ClientHandshakeError::MissingUpgrade)
        );
        assert_eq!(
            check(&good.replace("Accept: ", "Accept: x")),
            Err(ClientHandshakeError::BadAccept)
        );
        assert_eq!(
            check(&good.replace("\r\n\r\n", "\r\nSec-WebSocket-Protocol: chat\r\n\r\n")),
            Err(ClientHandshakeError::UnexpectedProtocol)
        );
        assert_eq!(
            check(&good.replace(
                "\r\n\r\n",
                "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
            )),
            Err(ClientHandshakeError::UnexpectedExtension)
        );
        assert_eq!(
            check("HTTP/1.1 1O1 x\r\n\r\n"),
            Err(ClientHandshakeError::Malformed(
                HeadError::MalformedStatusLine
            ))
        );
    }
}
