//! Every way the server says no in HTTP, and the status each gets.
//!
//! The protocol layer names what is malformed ([`HeadError`], [`UpgradeError`]); the policy
//! names what it refuses ([`Denied`]); this is where both become statuses.

use std::fmt;

use super::message::Response;
use super::response::write_response;
use crate::auth::Denied;
use crate::protocol::handshake::server::UpgradeError;
use crate::protocol::http::HeadError;
use crate::protocol::http_body::BodyError;

/// A refused request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 400: malformed HTTP, or an upgrade missing what RFC 6455 §4.2.1 requires.
    BadRequest(&'static str),
    /// 403: refused by policy (Origin, Host).
    Forbidden(&'static str),
    /// 404: nothing at that path.
    NotFound,
    /// 405: a method the resource does not allow; the value is the `Allow` field.
    MethodNotAllowed(&'static str),
    /// 401: a request that needs the token came without a right one (`Authorization: Bearer`).
    Unauthorized,
    /// 401 for ttyd's `/token`: the challenge is HTTP Basic (the token as the password).
    UnauthorizedBasic,
    /// 408: the body did not arrive in time.
    RequestTimeout,
    /// 411: a body is required and the request says nothing of its length.
    LengthRequired,
    /// 413: the body is over the limit (said before it is read, from `Content-Length`).
    ContentTooLarge,
    /// 414: the request line is over the limit.
    UriTooLong,
    /// 426: a `Sec-WebSocket-Version` other than 13 (RFC 6455 §4.4).
    UpgradeRequired,
    /// 429: this address has too many connections waiting for a token check; retry after this
    /// many seconds.
    TooManyRequests(u64),
    /// 431: too many header fields, or too many bytes of them.
    HeadersTooLarge,
    /// 501: a transfer coding the server does not implement (RFC 9112 §6.1).
    NotImplemented(&'static str),
    /// 503: the server is at a limit or shutting down.
    Unavailable,
}

impl Refusal {
    /// The HTTP status code.
    pub fn status(self) -> u16 {
        match self {
            Refusal::BadRequest(_) => 400,
            Refusal::Forbidden(_) => 403,
            Refusal::NotFound => 404,
            Refusal::MethodNotAllowed(_) => 405,
            Refusal::Unauthorized | Refusal::UnauthorizedBasic => 401,
            Refusal::RequestTimeout => 408,
            Refusal::LengthRequired => 411,
            Refusal::ContentTooLarge => 413,
            Refusal::UriTooLong => 414,
            Refusal::UpgradeRequired => 426,
            Refusal::TooManyRequests(_) => 429,
            Refusal::HeadersTooLarge => 431,
            Refusal::NotImplemented(_) => 501,
            Refusal::Unavailable => 503,
        }
    }

    /// The response, for a connection that may stay open after it.
    pub fn response(self) -> Response {
        // Exactly `text/plain`: hrana-client shows the body of an error only then (its text is
        // ASCII anyway).
        let mut response = Response::new(
            self.status(),
            "text/plain",
            format!("{self}\n").into_bytes(),
        );
        match self {
            Refusal::UpgradeRequired => {
                response = response
                    .with_field("Upgrade", "websocket")
                    .with_field("Sec-WebSocket-Version", "13");
            }
            Refusal::MethodNotAllowed(allow) => response = response.with_field("Allow", allow),
            Refusal::TooManyRequests(seconds) => {
                response = response.with_field("Retry-After", seconds.to_string())
            }
            // RFC 9110 §11.6.1: a 401 names the scheme.
            // Its body is JSON in the shape libSQL clients show (`{"message", "code"}`,
            // exactly `application/json`).
            Refusal::Unauthorized => {
                let body = serde_json::json!({"message": self.to_string(), "code": "UNAUTHORIZED"});
                response =
                    Response::json(401, body.to_string()).with_field("WWW-Authenticate", "Bearer")
            }
            // RFC 7617 §2: the realm, and UTF-8 for the user name and password.
            Refusal::UnauthorizedBasic => {
                response = response.with_field(
                    "WWW-Authenticate",
                    r#"Basic realm="wsbridge", charset="UTF-8""#,
                )
            }
            _ => {}
        }
        response
    }

    /// Write the whole response; the connection is closed after it.
    pub fn write(self, out: &mut Vec<u8>) {
        let retry_after;
        let fields: &[(&str, &str)] = match self {
            // RFC 9110 §15.5.22: a 426 names the protocol to upgrade to; RFC 6455 §4.4 the
            // versions supported.
            Refusal::UpgradeRequired => &[
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Version", "13"),
            ],
            Refusal::MethodNotAllowed(allow) => {
                retry_after = [("Allow", allow.to_string())];
                &[(retry_after[0].0, retry_after[0].1.as_str())]
            }
            Refusal::TooManyRequests(seconds) => {
                retry_after = [("Retry-After", seconds.to_string())];
                &[(retry_after[0].0, retry_after[0].1.as_str())]
            }
            _ => &[],
        };
        let body = format!("{self}\n");
        write_response(
            out,
            self.status(),
            fields,
            "text/plain; charset=utf-8",
            body.as_bytes(),
            true,
        );
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::BadRequest(why) => write!(f, "bad request: {why}"),
            Refusal::Forbidden(why) => write!(f, "forbidden: {why}"),
            Refusal::NotFound => f.write_str("not found"),
            Refusal::MethodNotAllowed(allow) => write!(f, "method not allowed: use {allow}"),
            Refusal::Unauthorized => f.write_str(
                "unauthorized: send the server's token as `Authorization: Bearer <token>`",
            ),
            Refusal::UnauthorizedBasic => f.write_str(
                "unauthorized: log in with the server's token as the password (any user name)",
            ),
            Refusal::RequestTimeout => f.write_str("the request body did not arrive in time"),
            Refusal::LengthRequired => {
                f.write_str("a body is required: send Content-Length or a chunked body")
            }
            Refusal::ContentTooLarge => f.write_str("request body too large"),
            Refusal::NotImplemented(what) => write!(f, "not implemented: {what}"),
            Refusal::UriTooLong => f.write_str("request line too long"),
            Refusal::UpgradeRequired => {
                f.write_str("unsupported WebSocket version: this server speaks 13")
            }
            Refusal::TooManyRequests(seconds) => {
                write!(
                    f,
                    "too many connections waiting for a token check: retry after {seconds} s"
                )
            }
            Refusal::HeadersTooLarge => f.write_str("request header fields too large"),
            Refusal::Unavailable => f.write_str("service unavailable"),
        }
    }
}

impl std::error::Error for Refusal {}

impl From<HeadError> for Refusal {
    fn from(error: HeadError) -> Self {
        match error {
            HeadError::RequestLineTooLong => Refusal::UriTooLong,
            HeadError::HeadTooLarge | HeadError::TooManyFields => Refusal::HeadersTooLarge,
            other => Refusal::BadRequest(other.as_str()),
        }
    }
}

impl From<UpgradeError> for Refusal {
    fn from(error: UpgradeError) -> Self {
        match error {
            UpgradeError::NotGet => Refusal::MethodNotAllowed("GET"),
            UpgradeError::UnsupportedVersion => Refusal::UpgradeRequired,
            other => Refusal::BadRequest(other.as_str()),
        }
    }
}

impl From<BodyError> for Refusal {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge => Refusal::ContentTooLarge,
            BodyError::UnsupportedCoding => Refusal::NotImplemented(error.as_str()),
            other => Refusal::BadRequest(other.as_str()),
        }
    }
}

impl From<Denied> for Refusal {
    fn from(denied: Denied) -> Self {
        Refusal::Forbidden(denied.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_of_protocol_errors() {
        assert_eq!(Refusal::from(HeadError::RequestLineTooLong).status(), 414);
        assert_eq!(Refusal::from(HeadError::TooManyFields).status(), 431);
        assert_eq!(Refusal::from(HeadError::MalformedTarget).status(), 400);
        assert_eq!(Refusal::from(UpgradeError::NotGet).status(), 405);
        assert_eq!(Refusal::from(UpgradeError::InvalidKey).status(), 400);
        let refusal = Refusal::from(UpgradeError::UnsupportedVersion);
        assert_eq!(refusal.status(), UpgradeError::UnsupportedVersion.status());
        let mut out = Vec::new();
        refusal.write(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
        assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"));
        assert!(text.contains("\r\nUpgrade: websocket\r\n"));
    }

    #[test]
    fn retry_after_and_allow() {
        let mut out = Vec::new();
        Refusal::TooManyRequests(7).write(&mut out);
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("\r\nRetry-After: 7\r\n")
        );
        let mut out = Vec::new();
        Refusal::MethodNotAllowed("GET, HEAD").write(&mut out);
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("\r\nAllow: GET, HEAD\r\n")
        );
    }
}
