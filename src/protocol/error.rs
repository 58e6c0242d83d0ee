//! The errors of the protocol layer, each mapped to what goes on the wire.
//!
//! A [`ProtocolError`] is a reason to *fail the WebSocket connection* (RFC 6455 §7.1.7): the
//! connection sends a Close frame carrying [`ProtocolError::close_code`] and stops reading.

use std::fmt;

use super::close::{CloseBodyError, CloseCode};
use super::deflate::DeflateError;

/// Why a peer's bytes were refused after the upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// RSV1, RSV2 or RSV3 set while no extension defining them was negotiated (§5.2).
    ReservedBitsSet(u8),
    /// An opcode RFC 6455 reserves (3-7, 0xB-0xF) (§5.2).
    ReservedOpcode(u8),
    /// A client-to-server frame without the mask bit (§5.1, §5.3).
    UnmaskedClientFrame,
    /// A server-to-client frame with the mask bit (§5.1).
    MaskedServerFrame,
    /// A 16- or 64-bit length where a shorter form fits (§5.2: "the minimal number of bytes MUST be used").
    NonMinimalLength,
    /// A 64-bit length with its most significant bit set (§5.2).
    LengthMsbSet,
    /// A control frame with more than 125 bytes of payload (§5.5).
    ControlFrameTooLong,
    /// A control frame with FIN clear (§5.5: "control frames MUST NOT be fragmented").
    FragmentedControlFrame,
    /// A continuation frame with no message in progress (§5.4).
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is in progress (§5.4).
    ExpectedContinuation,
    /// A text message or close reason that is not UTF-8 (§5.6, §8.1).
    InvalidUtf8,
    /// A close frame whose payload is exactly one byte (§5.5.1: the code is two bytes).
    CloseFrameTooShort,
    /// A close code a peer may not send (§7.4.1, §7.4.2).
    InvalidCloseCode(u16),
    /// A frame whose payload is larger than the configured maximum frame size.
    FrameTooLarge,
    /// A message (payload plus frame headers) larger than the configured maximum message size.
    MessageTooLarge,
    /// RSV1 (the compressed bit of permessage-deflate) on a continuation or control frame
    /// (RFC 7692 §6.1: it is set on the first frame of a message only, and control frames are
    /// never compressed).
    CompressedBitMisplaced,
    /// A compressed message that does not inflate: invalid DEFLATE data, or more than the
    /// message limit once inflated (RFC 7692 §7.2.2).
    Deflate(DeflateError),
}

impl ProtocolError {
    /// The status code sent in the Close frame that fails the connection (§7.4.1).
    pub fn close_code(self) -> CloseCode {
        match self {
            ProtocolError::InvalidUtf8 => CloseCode::INVALID_PAYLOAD,
            ProtocolError::FrameTooLarge | ProtocolError::MessageTooLarge => {
                CloseCode::MESSAGE_TOO_BIG
            }
            ProtocolError::Deflate(error) => error.close_code(),
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }

    /// The RFC 6455 section that states the violated rule.
    pub fn rfc_section(self) -> &'static str {
        match self {
            ProtocolError::ReservedBitsSet(_)
            | ProtocolError::ReservedOpcode(_)
            | ProtocolError::NonMinimalLength
            | ProtocolError::LengthMsbSet => "§5.2",
            ProtocolError::UnmaskedClientFrame => "§5.1",
            ProtocolError::MaskedServerFrame => "§5.1",
            ProtocolError::ControlFrameTooLong | ProtocolError::FragmentedControlFrame => "§5.5",
            ProtocolError::UnexpectedContinuation | ProtocolError::ExpectedContinuation => "§5.4",
            ProtocolError::InvalidUtf8 => "§8.1",
            ProtocolError::CloseFrameTooShort => "§5.5.1",
            ProtocolError::InvalidCloseCode(_) => "§7.4",
            ProtocolError::FrameTooLarge | ProtocolError::MessageTooLarge => "§10.4",
            ProtocolError::CompressedBitMisplaced => "RFC 7692 §6.1",
            ProtocolError::Deflate(_) => "RFC 7692 §7.2.2",
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ProtocolError::ReservedBitsSet(bits) => {
                write!(
                    f,
                    "reserved bits {bits:#05b} set but no extension negotiated"
                )
            }
            ProtocolError::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            ProtocolError::UnmaskedClientFrame => f.write_str("client frame is not masked"),
            ProtocolError::MaskedServerFrame => f.write_str("server frame is masked"),
            ProtocolError::NonMinimalLength => f.write_str("payload length not minimally encoded"),
            ProtocolError::LengthMsbSet => f.write_str("64-bit payload length has its top bit set"),
            ProtocolError::ControlFrameTooLong => {
                f.write_str("control frame payload over 125 bytes")
            }
            ProtocolError::FragmentedControlFrame => f.write_str("control frame without FIN"),
            ProtocolError::UnexpectedContinuation => {
                f.write_str("continuation frame with no message in progress")
            }
            ProtocolError::ExpectedContinuation => {
                f.write_str("new data frame while a fragmented message is in progress")
            }
            ProtocolError::InvalidUtf8 => f.write_str("invalid UTF-8 in text"),
            ProtocolError::CloseFrameTooShort => f.write_str("close frame payload of one byte"),
            ProtocolError::InvalidCloseCode(code) => write!(f, "invalid close code {code}"),
            ProtocolError::FrameTooLarge => f.write_str("frame over the size limit"),
            ProtocolError::MessageTooLarge => f.write_str("message over the size limit"),
            ProtocolError::CompressedBitMisplaced => {
                f.write_str("RSV1 on a continuation or control frame")
            }
            ProtocolError::Deflate(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for ProtocolError {}

impl From<DeflateError> for ProtocolError {
    fn from(error: DeflateError) -> Self {
        ProtocolError::Deflate(error)
    }
}

impl From<CloseBodyError> for ProtocolError {
    fn from(error: CloseBodyError) -> Self {
        match error {
            CloseBodyError::TooShort => ProtocolError::CloseFrameTooShort,
            CloseBodyError::InvalidCode(code) => ProtocolError::InvalidCloseCode(code),
            CloseBodyError::InvalidUtf8 => ProtocolError::InvalidUtf8,
        }
    }
}
