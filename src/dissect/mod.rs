//! A protocol analyser for people learning RFC 6455: frames and handshakes printed field by
//! field, with Wireshark's field names where it has them, and every violation explained with the
//! section of the RFC it breaks.
//!
//! * [`frames`]: `wsbridge dissect` on frame bytes, including the reassembly of fragments.
//! * [`handshake`]: `wsbridge dissect --handshake` on an upgrade request or response.
//! * [`encode`]: `wsbridge dissect --encode`, building a frame from its fields.
//! * [`trace`]: `wsbridge serve --trace`, the same annotations for live connections.
//! * [`hex`]: reading hex as people paste it, and printing bytes as hex and text.
//!
//! Everything here reuses the protocol core's own parsers; nothing is decoded twice differently.
#![forbid(unsafe_code)]

pub mod encode;
pub mod extensions;
pub mod frames;
pub mod handshake;
pub mod hex;
pub mod trace;

use crate::protocol::ProtocolError;

/// A violation in plain words, with the section that states the rule and what a receiver does.
pub fn explain(error: ProtocolError) -> String {
    let what = match error {
        ProtocolError::ReservedBitsSet(bits) => {
            let names: Vec<&str> = [(0b100, "RSV1"), (0b010, "RSV2"), (0b001, "RSV3")]
                .into_iter()
                .filter(|(bit, _)| bits & bit != 0)
                .map(|(_, name)| name)
                .collect();
            format!("{} set but no extension negotiated", names.join(", "))
        }
        ProtocolError::ReservedOpcode(op) => {
            format!("opcode {op:#x} is reserved: only 0, 1, 2, 8, 9 and 0xA are defined")
        }
        ProtocolError::UnmaskedClientFrame => {
            "a frame from a client without the MASK bit: clients must mask every frame".into()
        }
        ProtocolError::MaskedServerFrame => {
            "a frame from a server with the MASK bit: servers must not mask".into()
        }
        ProtocolError::NonMinimalLength => {
            "the payload length uses a longer form than needed: the minimal number of bytes must be used".into()
        }
        ProtocolError::LengthMsbSet => {
            "a 64-bit payload length with its most significant bit set".into()
        }
        ProtocolError::ControlFrameTooLong => {
            "a control frame with more than 125 bytes of payload".into()
        }
        ProtocolError::FragmentedControlFrame => {
            "a control frame without FIN: control frames must not be fragmented".into()
        }
        ProtocolError::UnexpectedContinuation => {
            "a continuation frame while no fragmented message is in progress".into()
        }
        ProtocolError::ExpectedContinuation => {
            "a new text or binary frame while a fragmented message is still in progress".into()
        }
        ProtocolError::InvalidUtf8 => "text that is not valid UTF-8".into(),
        ProtocolError::CloseFrameTooShort => {
            "a Close frame with a one-byte body: the status code takes two bytes".into()
        }
        ProtocolError::InvalidCloseCode(code) => {
            format!("close code {code} may not be sent in a Close frame")
        }
        ProtocolError::FrameTooLarge => "a frame over the receiver's size limit".into(),
        ProtocolError::MessageTooLarge => "a message over the receiver's size limit".into(),
        ProtocolError::CompressedBitMisplaced => {
            "RSV1 on a continuation or control frame: permessage-deflate marks only the first frame of a data message".into()
        }
        ProtocolError::Deflate(error) => format!("a compressed message that cannot be inflated ({error})"),
    };
    let section = error.rfc_section();
    let rfc = if section.starts_with("RFC") {
        ""
    } else {
        "RFC 6455 "
    };
    format!(
        "{what}: {rfc}{section}, the receiver must fail the connection (close {})",
        error.close_code().0
    )
}
