//! Close codes and Close frame payloads (RFC 6455 §5.5.1, §7.4).

use std::fmt;

/// A WebSocket close status code (RFC 6455 §7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection has been fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigated away).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1005: no status code was present. Never sent on the wire (§7.4.1).
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: closed abnormally, without a Close frame. Never sent on the wire (§7.4.1).
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: data inconsistent with the message type (non-UTF-8 in a text message).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a message that violates the endpoint's policy.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a message too big to process.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: (client) the server did not negotiate a required extension.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: (server) an unexpected condition prevented fulfilling the request.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1012: service restart (IANA registry).
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later (IANA registry).
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
    /// 1015: TLS handshake failure. Never sent on the wire (§7.4.1).
    pub const TLS_HANDSHAKE: CloseCode = CloseCode(1015);

    /// Whether a peer may put this code in a Close frame (RFC 6455 §7.4.1, §7.4.2).
    ///
    /// 1000-1003 and 1007-1011 are defined by the RFC; 1012-1014 are registered with IANA;
    /// 3000-4999 belong to libraries, frameworks and applications. 1004 is reserved, and 1005,
    /// 1006 and 1015 "MUST NOT be set as a status code in a Close control frame". Everything
    /// else below 3000 is reserved for future versions of the protocol.
    pub fn is_allowed_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }

    /// The name of the code as the RFC and the IANA registry give it.
    pub fn name(self) -> &'static str {
        match self.0 {
            1000 => "Normal Closure",
            1001 => "Going Away",
            1002 => "Protocol error",
            1003 => "Unsupported Data",
            1004 => "Reserved",
            1005 => "No Status Rcvd",
            1006 => "Abnormal Closure",
            1007 => "Invalid frame payload data",
            1008 => "Policy Violation",
            1009 => "Message Too Big",
            1010 => "Mandatory Ext.",
            1011 => "Internal Error",
            1012 => "Service Restart",
            1013 => "Try Again Later",
            1014 => "Bad Gateway",
            1015 => "TLS handshake",
            3000..=3999 => "registered (libraries and frameworks)",
            4000..=4999 => "private use",
            _ => "reserved",
        }
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.0, self.name())
    }
}

/// A received Close frame's body: an optional status code and a UTF-8 reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    /// `None` when the payload was empty (the application sees 1005, which is never sent).
    pub code: Option<CloseCode>,
    /// The reason, possibly empty. Only present with a code.
    pub reason: &'a str,
}

/// Why a Close frame's body is invalid; the connection layer turns it into a
/// [`ProtocolError`](super::ProtocolError) and its close code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseBodyError {
    /// A body of exactly one byte (§5.5.1: the code is two bytes).
    TooShort,
    /// A code a peer may not send (§7.4.1, §7.4.2).
    InvalidCode(u16),
    /// A reason that is not UTF-8 (§5.5.1, §8.1).
    InvalidUtf8,
}

/// Parse and validate a Close frame payload (RFC 6455 §5.5.1).
///
/// "If there is a body, the first two bytes of the body MUST be a 2-byte unsigned integer (in
/// network byte order) representing a status code ... Following the 2-byte integer, the body MAY
/// contain UTF-8-encoded data". A one-byte body, a code from the reserved ranges (§7.4) and a
/// reason that is not UTF-8 all fail the connection.
pub fn parse_close_payload(payload: &[u8]) -> Result<CloseFrame<'_>, CloseBodyError> {
    match payload {
        [] => Ok(CloseFrame {
            code: None,
            reason: "",
        }),
        [_] => Err(CloseBodyError::TooShort),
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            if !code.is_allowed_on_wire() {
                return Err(CloseBodyError::InvalidCode(code.0));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| CloseBodyError::InvalidUtf8)?;
            Ok(CloseFrame {
                code: Some(code),
                reason,
            })
        }
    }
}

/// The longest reason that fits a control frame next to the two-byte code (§5.5: 125 bytes).
pub const MAX_CLOSE_REASON: usize = 123;

/// Cut `reason` to at most [`MAX_CLOSE_REASON`] bytes on a character boundary.
pub fn truncate_reason(reason: &str) -> &str {
    if reason.len() <= MAX_CLOSE_REASON {
        return reason;
    }
    let mut end = MAX_CLOSE_REASON;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_close_body_has_no_code() {
        assert_eq!(
            parse_close_payload(&[]),
            Ok(CloseFrame {
                code: None,
                reason: ""
            })
        );
    }

    #[test]
    fn one_byte_close_body_is_a_protocol_error() {
        assert_eq!(parse_close_payload(&[0x03]), Err(CloseBodyError::TooShort));
    }

    #[test]
    fn autobahn_7_7_valid_codes_are_accepted() {
        for code in [
            1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
        ] {
            let body = code.to_be_bytes();
            assert_eq!(
                parse_close_payload(&body).map(|c| c.code),
                Ok(Some(CloseCode(code)))
            );
        }
    }

    #[test]
    fn autobahn_7_9_invalid_codes_are_refused() {
        for code in [
            0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert_eq!(
                parse_close_payload(&code.to_be_bytes()),
                Err(CloseBodyError::InvalidCode(code))
            );
        }
    }

    #[test]
    fn close_reason_must_be_utf8() {
        assert_eq!(
            parse_close_payload(&[0x03, 0xe8, b'o', b'k']).map(|c| c.reason),
            Ok("ok")
        );
        assert_eq!(
            parse_close_payload(&[0x03, 0xe8, 0xff]),
            Err(CloseBodyError::InvalidUtf8)
        );
    }

    #[test]
    fn long_reasons_are_cut_on_a_char_boundary() {
        let reason = "é".repeat(100); // 200 bytes
        let cut = truncate_reason(&reason);
        assert!(cut.len() <= MAX_CLOSE_REASON);
        assert_eq!(cut.len(), 122);
    }
}
