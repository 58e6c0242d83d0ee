//! `wsbridge dissect`: frames annotated field by field (RFC 6455 §5.2), with Wireshark's field
//! names, masked and unmasked payloads side by side, close codes, the reassembly of fragmented
//! messages, and each violation explained.

use std::fmt::Write;

use super::explain;
use super::hex::{hex_bytes, preview};
use crate::protocol::close::{CloseCode, parse_close_payload};
use crate::protocol::deflate::{CodecConfig, Decompressor, DeflateError};
use crate::protocol::frame::{FrameHeader, LengthForm, OpCode, RSV1};
use crate::protocol::mask::apply_mask;
use crate::protocol::utf8::Utf8Validator;
use crate::protocol::{ProtocolError, Role};

/// How to read the bytes.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Who sent the frames; `None`: guess from the first frame's MASK bit.
    pub sender: Option<Role>,
    /// Payload bytes shown per frame.
    pub max_payload: usize,
    /// permessage-deflate was negotiated (RFC 7692): RSV1 on a message's first frame marks it
    /// compressed, and it is inflated, keeping the window across messages as a receiver would.
    pub deflate: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sender: None,
            max_payload: 64,
            deflate: false,
        }
    }
}

/// The most a dissected message is inflated to.
const INFLATE_LIMIT: usize = 64 << 20;

/// A message being reassembled across frames.
struct Assembly {
    opcode: OpCode,
    number: usize,
    frames: usize,
    payload: Vec<u8>,
    utf8: Utf8Validator,
    utf8_failed: bool,
    /// RSV1 on the first frame, with --deflate: the payload is compressed.
    compressed: bool,
}

/// Dissect every frame in `bytes`.
pub fn dissect_frames(bytes: &[u8], options: &Options) -> String {
    let mut out = String::new();
    let sender = match options.sender {
        Some(role) => {
            let _ = writeln!(out, "Frames sent by a {}", role_name(role));
            role
        }
        None => {
            let guess = if bytes.get(1).is_some_and(|b| b & 0x80 != 0) {
                Role::Client
            } else {
                Role::Server
            };
            let _ = writeln!(
                out,
                "Frames sent by a {} (guessed from the MASK bit of the first frame; --role says otherwise)",
                role_name(guess)
            );
            guess
        }
    };
    // The receiver is the other side: its rules apply.
    let receiver = match sender {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    };
    let mut pos = 0;
    let mut number = 0;
    let mut messages = 0;
    let mut assembly: Option<Assembly> = None;
    let mut closed = false;
    // One inflater for the whole stream: with context takeover (the default) a message may
    // refer to the text of earlier ones (RFC 7692 §7.2.3.2).
    let mut inflater = options.deflate.then(|| {
        Decompressor::new(&CodecConfig::new(
            &crate::protocol::deflate::DeflateParams {
                server_no_context_takeover: false,
                client_no_context_takeover: false,
                server_max_window_bits: 15,
                client_max_window_bits: 15,
            },
            receiver,
        ))
    });
    while pos < bytes.len() {
        number += 1;
        let rest = &bytes[pos..];
        let Some((header, header_len, form)) = FrameHeader::decode_any_length(rest) else {
            let _ = writeln!(
                out,
                "\nFrame {number}, at byte {pos}: truncated header ({} bytes: {}); a header needs 2 to 14 bytes",
                rest.len(),
                hex_bytes(rest)
            );
            break;
        };
        let total = header_len as u64 + header.payload_len;
        let available = rest.len() as u64;
        let end = pos + total.min(available) as usize;
        let _ = writeln!(
            out,
            "\nFrame {number}, bytes {pos}-{} ({} bytes): {}",
            end.saturating_sub(1),
            end - pos,
            hex_bytes(&rest[..(end - pos).min(header_len + 16)])
                + if end - pos > header_len + 16 {
                    " ..."
                } else {
                    ""
                }
        );
        if closed {
            let _ = writeln!(
                out,
                "    ! after a Close frame: a receiver reads nothing more (RFC 6455 §5.5.1)"
            );
        }
        describe_header(&mut out, &header, header_len, form);
        let mut violations = Vec::new();
        if let Err(e) = FrameHeader::decode(rest) {
            violations.push(e);
        }
        // RFC 7692 §6: with the extension, RSV1 is the "Per-Message Compressed" bit.
        let compressed = options.deflate && header.rsv & RSV1 != 0;
        let checked = FrameHeader {
            rsv: if compressed {
                header.rsv & !RSV1
            } else {
                header.rsv
            },
            ..header
        };
        let opcode = match checked.check(receiver) {
            Ok(opcode) => Some(opcode),
            Err(e) => {
                violations.push(e);
                OpCode::from_u8(header.opcode)
            }
        };
        if compressed && !matches!(opcode, Some(OpCode::Text | OpCode::Binary)) {
            violations.push(ProtocolError::CompressedBitMisplaced);
        }
        if !options.deflate && header.rsv & RSV1 != 0 {
            let _ = writeln!(
                out,
                "    (with permessage-deflate negotiated, RSV1 marks a compressed message: --deflate reads it so)"
            );
        }
        let payload_end =
            pos + header_len + header.payload_len.min(available - header_len as u64) as usize;
        let mut payload = bytes[pos + header_len..payload_end].to_vec();
        if let Some(key) = header.mask {
            let _ = writeln!(out, "    Masking-Key: {}", hex_bytes(&key).replace(' ', ""));
            let _ = writeln!(
                out,
                "    Masked payload:   {}",
                preview(&payload, options.max_payload)
            );
            apply_mask(&mut payload, key, 0);
            let _ = writeln!(
                out,
                "    Unmasked payload: {}",
                preview(&payload, options.max_payload)
            );
        } else if !payload.is_empty() {
            let _ = writeln!(
                out,
                "    Payload: {}",
                preview(&payload, options.max_payload)
            );
        }
        let truncated = available < total;
        if truncated {
            let _ = writeln!(
                out,
                "    ! truncated: the header announces {} bytes of payload, only {} are here",
                header.payload_len,
                available - header_len as u64
            );
        }
        match opcode {
            Some(OpCode::Close) if !truncated => {
                closed = true;
                describe_close(&mut out, &payload, &mut violations);
            }
            Some(op @ (OpCode::Text | OpCode::Binary | OpCode::Continuation)) if !truncated => {
                let frame = Fragment {
                    opcode: op,
                    fin: header.fin,
                    compressed,
                    payload: &payload,
                };
                let done = reassemble(
                    &mut out,
                    frame,
                    &mut assembly,
                    &mut messages,
                    &mut violations,
                    options,
                    inflater.as_mut(),
                );
                if let Some(done) = done {
                    let _ = writeln!(out, "    => {done}");
                }
            }
            // Only a valid Ping is answered: a fragmented or oversized one fails the connection.
            Some(OpCode::Ping) if violations.is_empty() && !truncated => {
                let _ = writeln!(
                    out,
                    "    (the receiver answers with a Pong carrying the same payload: §5.5.2)"
                );
            }
            Some(OpCode::Pong) => {
                let _ = writeln!(out, "    (a Pong needs no answer: §5.5.3)");
            }
            _ => {}
        }
        for violation in violations {
            let _ = writeln!(out, "    ! {}", explain(violation));
        }
        if truncated {
            break;
        }
        pos = end;
    }
    if let Some(open) = assembly {
        let _ = writeln!(
            out,
            "\nMessage {} is incomplete: {} frames, {} bytes so far, waiting for a final frame (FIN set, opcode 0)",
            open.number,
            open.frames,
            open.payload.len()
        );
    }
    out
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Client => "client (to a server: frames must be masked)",
        Role::Server => "server (to a client: frames must not be masked)",
    }
}

/// `1... ....`: the bits of `byte` selected by `mask`, the others as dots.
fn bits(byte: u8, mask: u8) -> String {
    let mut s = String::with_capacity(9);
    for i in (0..8).rev() {
        if i == 3 {
            s.push(' ');
        }
        s.push(if mask >> i & 1 == 0 {
            '.'
        } else if byte >> i & 1 == 1 {
            '1'
        } else {
            '0'
        });
    }
    s
}

fn describe_header(out: &mut String, header: &FrameHeader, header_len: usize, form: LengthForm) {
    let b0 = (header.fin as u8) << 7 | header.rsv << 4 | header.opcode;
    let name = OpCode::from_u8(header.opcode).map_or("Reserved", OpCode::name);
    let _ = writeln!(
        out,
        "    {} = Fin: {}",
        bits(b0, 0x80),
        if header.fin { "True" } else { "False" }
    );
    let _ = writeln!(out, "    {} = Reserved: {:#x}", bits(b0, 0x70), header.rsv);
    let _ = writeln!(
        out,
        "    {} = Opcode: {name} ({})",
        bits(b0, 0x0f),
        header.opcode
    );
    let short = match form {
        LengthForm::Bits7 => header.payload_len as u8,
        LengthForm::Bits16 => 126,
        LengthForm::Bits64 => 127,
    };
    let b1 = (header.mask.is_some() as u8) << 7 | short;
    let _ = writeln!(
        out,
        "    {} = Mask: {}",
        bits(b1, 0x80),
        if header.mask.is_some() {
            "True"
        } else {
            "False"
        }
    );
    match form {
        LengthForm::Bits7 => {
            let _ = writeln!(
                out,
                "    {} = Payload length: {} (7-bit form)",
                bits(b1, 0x7f),
                header.payload_len
            );
        }
        LengthForm::Bits16 => {
            let _ = writeln!(
                out,
                "    {} = Payload length: 126 (a 16-bit length follows)",
                bits(b1, 0x7f)
            );
            let _ = writeln!(
                out,
                "    Extended Payload length (16 bits): {}",
                header.payload_len
            );
        }
        LengthForm::Bits64 => {
            let _ = writeln!(
                out,
                "    {} = Payload length: 127 (a 64-bit length follows)",
                bits(b1, 0x7f)
            );
            let _ = writeln!(
                out,
                "    Extended Payload length (64 bits): {}",
                header.payload_len
            );
        }
    }
    let _ = writeln!(out, "    (header: {header_len} bytes)");
}

fn describe_close(out: &mut String, payload: &[u8], violations: &mut Vec<ProtocolError>) {
    match payload {
        [] => {
            let _ = writeln!(
                out,
                "    Close: no status code (the application sees 1005, which is never sent)"
            );
        }
        [_] => {}
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            let _ = writeln!(out, "    Close code: {} ({})", code.0, code.name());
            match std::str::from_utf8(reason) {
                Ok(text) => {
                    let _ = writeln!(out, "    Close reason: {text:?}");
                }
                Err(e) => {
                    let _ = writeln!(
                        out,
                        "    Close reason: invalid UTF-8 at byte {} of the reason",
                        e.valid_up_to()
                    );
                }
            }
        }
    }
    if let Err(e) = parse_close_payload(payload) {
        violations.push(e.into());
    } else {
        let _ = writeln!(
            out,
            "    (the receiver answers with a Close, usually echoing the code, then the server closes TCP: §5.5.1, §7.1.1)"
        );
    }
}

/// A data frame, as [`reassemble`] takes it.
struct Fragment<'a> {
    opcode: OpCode,
    fin: bool,
    /// RSV1 set, with --deflate.
    compressed: bool,
    payload: &'a [u8],
}

/// Follow fragmentation (§5.4), and inflate a compressed message once it is whole (RFC 7692
/// §7.2.2); returns a line when a message completes.
fn reassemble(
    out: &mut String,
    frame: Fragment<'_>,
    assembly: &mut Option<Assembly>,
    messages: &mut usize,
    violations: &mut Vec<ProtocolError>,
    options: &Options,
    inflater: Option<&mut Decompressor>,
) -> Option<String> {
    let Fragment {
        opcode,
        fin,
        compressed,
        payload,
    } = frame;
    match (opcode, assembly.is_some()) {
        (OpCode::Continuation, false) => {
            violations.push(ProtocolError::UnexpectedContinuation);
            return None;
        }
        (OpCode::Text | OpCode::Binary, true) => {
            violations.push(ProtocolError::ExpectedContinuation);
            *assembly = None;
        }
        _ => {}
    }
    if assembly.is_none() {
        *messages += 1;
        *assembly = Some(Assembly {
            opcode,
            number: *messages,
            frames: 0,
            payload: Vec::new(),
            utf8: Utf8Validator::new(),
            utf8_failed: false,
            compressed,
        });
    }
    let message = assembly.as_mut()?;
    message.frames += 1;
    message.payload.extend_from_slice(payload);
    if message.opcode == OpCode::Text
        && !message.compressed
        && !message.utf8_failed
        && message.utf8.feed(payload).is_err()
    {
        message.utf8_failed = true;
        let at = std::str::from_utf8(&message.payload)
            .err()
            .map_or(0, |e| e.valid_up_to());
        let _ = writeln!(
            out,
            "    Text: invalid UTF-8 at byte {at} of the message (a receiver fails here, without waiting for the rest: §8.1)"
        );
        violations.push(ProtocolError::InvalidUtf8);
    }
    if !fin {
        let _ = writeln!(
            out,
            "    (fragment {} of message {}: FIN is clear, more frames follow: §5.4)",
            message.frames, message.number
        );
        return None;
    }
    let mut done = assembly.take()?;
    let mut inflated_from = None;
    if done.compressed {
        let inflater = inflater?;
        let mut plain = Vec::new();
        let result = inflater
            .inflate(&done.payload, &mut plain, INFLATE_LIMIT)
            .and_then(|()| inflater.finish(&mut plain, INFLATE_LIMIT));
        match result {
            Ok(()) => {
                inflated_from = Some(done.payload.len());
                done.payload = plain;
                if done.opcode == OpCode::Text && done.utf8.feed(&done.payload).is_err() {
                    done.utf8_failed = true;
                    violations.push(ProtocolError::InvalidUtf8);
                }
            }
            Err(error) => {
                let _ = writeln!(
                    out,
                    "    Compressed message {}: {}",
                    done.number,
                    match error {
                        DeflateError::InvalidData if done.number > 1 =>
                            "does not inflate; with context takeover (the default) a message may refer back to the text of earlier ones, so a receiver reads it only with every earlier message of the connection: give dissect those too (RFC 7692 §7.2.3.2)",
                        DeflateError::InvalidData =>
                            "does not inflate: not valid DEFLATE data (RFC 1951), a receiver fails with 1007; unless earlier messages of the connection were left out, which with context takeover (the default) it may refer back to (RFC 7692 §7.2.3.2)",
                        DeflateError::TooBig =>
                            "inflates past 64 MiB; a receiver with that limit fails with 1009",
                        DeflateError::NoMemory => "no memory to inflate it",
                    }
                );
                violations.push(ProtocolError::Deflate(error));
                return None;
            }
        }
    }
    let kind = if done.opcode == OpCode::Text {
        "Text"
    } else {
        "Binary"
    };
    let mut line = format!(
        "Message {} complete: {kind}, {} bytes in {} frame{}",
        done.number,
        done.payload.len(),
        done.frames,
        if done.frames == 1 { "" } else { "s" }
    );
    if let Some(wire) = inflated_from {
        let _ = write!(
            line,
            ", inflated from {wire} compressed bytes (RFC 7692 §7.2.2: the payload, then 00 00 ff ff)"
        );
    }
    if done.opcode == OpCode::Text {
        let mut utf8 = done.utf8;
        match (done.utf8_failed, utf8.finish()) {
            (false, Ok(())) => {
                let text = String::from_utf8_lossy(&done.payload);
                let shown: String = text.chars().take(options.max_payload).collect();
                let _ = write!(line, ": {shown:?}");
                if shown.len() < text.len() {
                    line.push_str(" ...");
                }
            }
            (false, Err(e)) => {
                line.push_str(": ends inside a UTF-8 character");
                violations.push(e);
            }
            (true, _) => line.push_str(": not valid UTF-8"),
        }
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_patterns() {
        assert_eq!(bits(0x81, 0x80), "1... ....");
        assert_eq!(bits(0x81, 0x70), ".000 ....");
        assert_eq!(bits(0x81, 0x0f), ".... 0001");
        assert_eq!(bits(0x85, 0x7f), ".000 0101");
    }
}
