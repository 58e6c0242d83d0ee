//! HTTP/1.1 request bodies (RFC 9112 §6-§7), sans-IO and incremental: how long a body is, from
//! its head's fields, and a decoder that takes whatever bytes came and resumes where it stopped,
//! for `Content-Length` bodies and for the chunked transfer coding.

use std::fmt;

use super::http::RequestHead;

/// How a request's body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    /// No body: neither field present.
    None,
    /// `Content-Length: n`.
    Exact(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// What is wrong with a body or with the fields that frame it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// `Content-Length` is not one decimal number (repeated equal values are allowed, §6.3).
    BadContentLength,
    /// Both `Transfer-Encoding` and `Content-Length` (RFC 9112 §6.3 rule 3: a server MAY reject).
    Ambiguous,
    /// A transfer coding other than a lone `chunked` (501: RFC 9112 §6.1).
    UnsupportedCoding,
    /// A chunk-size line that is not hex digits, extensions and CRLF, or data not followed by
    /// CRLF (RFC 9112 §7.1).
    MalformedChunk,
    /// The body is longer than the limit given to the decoder.
    TooLarge,
}

impl BodyError {
    pub fn as_str(self) -> &'static str {
        match self {
            BodyError::BadContentLength => "invalid Content-Length",
            BodyError::Ambiguous => "both Transfer-Encoding and Content-Length",
            BodyError::UnsupportedCoding => "unsupported transfer coding",
            BodyError::MalformedChunk => "malformed chunked body",
            BodyError::TooLarge => "request body too large",
        }
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for BodyError {}

/// RFC 9112 §6.1, §6.3: the body's length from the head's fields.
pub fn body_length(head: &RequestHead<'_>) -> Result<BodyLength, BodyError> {
    let codings: Vec<&str> = head.header_tokens("Transfer-Encoding").collect();
    let lengths: Vec<&str> = head
        .header_values("Content-Length")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    if !codings.is_empty() {
        if !lengths.is_empty() {
            return Err(BodyError::Ambiguous);
        }
        return match codings.as_slice() {
            [only] if only.eq_ignore_ascii_case("chunked") => Ok(BodyLength::Chunked),
            _ => Err(BodyError::UnsupportedCoding),
        };
    }
    let Some(first) = lengths.first() else {
        return Ok(BodyLength::None);
    };
    if lengths.iter().any(|l| l != first)
        || first.is_empty()
        || first.len() > 19
        || !first.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(BodyError::BadContentLength);
    }
    first
        .parse()
        .map(BodyLength::Exact)
        .map_err(|_| BodyError::BadContentLength)
}

/// The longest chunk-size line accepted (size, extensions): generous, and bounded.
const MAX_CHUNK_LINE: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunked {
    /// Reading a chunk-size line: the size so far, whether a digit came, whether extensions
    /// began, and the line's length so far.
    Size {
        size: u64,
        digits: bool,
        in_ext: bool,
        len: usize,
    },
    /// The CR of the size line was seen.
    SizeLf {
        size: u64,
    },
    Data {
        left: u64,
    },
    DataCr,
    DataLf,
    /// In the trailer section: the current line's length, and whether its CR came.
    Trailer {
        len: usize,
        cr: bool,
    },
    Done,
}

/// Where a body stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Exact { left: u64 },
    Chunked(Chunked),
}

/// Decodes one body as its bytes come, into the caller's buffer, under a size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyDecoder {
    framing: Framing,
    /// Body bytes delivered so far.
    received: u64,
    max: u64,
}

/// What one call of [`BodyDecoder::decode`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    /// Input bytes used (the rest belongs to the next request).
    pub consumed: usize,
    /// The body is complete.
    pub done: bool,
}

impl BodyDecoder {
    /// A decoder for a body of `length`, refusing more than `max` body bytes. A
    /// `Content-Length` over `max` is refused at once (so the 413 goes out before the body).
    pub fn new(length: BodyLength, max: u64) -> Result<BodyDecoder, BodyError> {
        let framing = match length {
            BodyLength::None => Framing::Exact { left: 0 },
            BodyLength::Exact(n) if n > max => return Err(BodyError::TooLarge),
            BodyLength::Exact(n) => Framing::Exact { left: n },
            BodyLength::Chunked => Framing::Chunked(Chunked::Size {
                size: 0,
                digits: false,
                in_ext: false,
                len: 0,
            }),
        };
        Ok(BodyDecoder {
            framing,
            received: 0,
            max,
        })
    }

    /// Whether the whole body has been decoded.
    pub fn is_done(&self) -> bool {
        matches!(
            self.framing,
            Framing::Exact { left: 0 } | Framing::Chunked(Chunked::Done)
        )
    }

    /// Decode from `input`, appending body bytes to `body`. Stops at the end of the body;
    /// what follows it is not consumed.
    pub fn decode(&mut self, input: &[u8], body: &mut Vec<u8>) -> Result<Decoded, BodyError> {
        let mut pos = 0;
        while pos < input.len() && !self.is_done() {
            match &mut self.framing {
                Framing::Exact { left } => {
                    let n = (*left).min((input.len() - pos) as u64) as usize;
                    body.extend_from_slice(&input[pos..pos + n]);
                    *left -= n as u64;
                    self.received += n as u64;
                    pos += n;
                }
                Framing::Chunked(state) => {
                    pos += step_chunked(state, &input[pos..], body, &mut self.received, self.max)?;
                }
            }
        }
        Ok(Decoded {
            consumed: pos,
            done: self.is_done(),
        })
    }
}

/// RFC 9112 §7.1: one step of the chunked coding; returns the input bytes used (at least one,
/// as `input` is not empty).
fn step_chunked(
    state: &mut Chunked,
    input: &[u8],
    body: &mut Vec<u8>,
    received: &mut u64,
    max: u64,
) -> Result<usize, BodyError> {
    let b = input[0];
    match state {
        Chunked::Size {
            size,
            digits,
            in_ext,
            len,
        } => {
            *len += 1;
            if *len > MAX_CHUNK_LINE {
                return Err(BodyError::MalformedChunk);
            }
            match b {
                b'\r' => {
                    if !*digits {
                        return Err(BodyError::MalformedChunk);
                    }
                    *state = Chunked::SizeLf { size: *size };
                }
                _ if *in_ext => {
                    // chunk-ext = *( BWS ";" BWS name [ "=" value ] ): ignored, but no control
                    // bytes (a bare LF would split the line differently elsewhere).
                    if b < 0x20 && b != b'\t' {
                        return Err(BodyError::MalformedChunk);
                    }
                }
                b';' | b' ' | b'\t' if *digits => *in_ext = true,
                _ => {
                    let digit = (b as char).to_digit(16).ok_or(BodyError::MalformedChunk)?;
                    *size = size
                        .checked_mul(16)
                        .and_then(|s| s.checked_add(digit as u64))
                        .ok_or(BodyError::TooLarge)?;
                    *digits = true;
                    if *received + *size > max {
                        return Err(BodyError::TooLarge);
                    }
                }
            }
            Ok(1)
        }
        Chunked::SizeLf { size } => {
            if b != b'\n' {
                return Err(BodyError::MalformedChunk);
            }
            *state = if *size == 0 {
                Chunked::Trailer { len: 0, cr: false }
            } else {
                Chunked::Data { left: *size }
            };
            Ok(1)
        }
        Chunked::Data { left } => {
            let n = (*left).min(input.len() as u64) as usize;
            body.extend_from_slice(&input[..n]);
            *left -= n as u64;
            *received += n as u64;
            if *left == 0 {
                *state = Chunked::DataCr;
            }
            Ok(n)
        }
        Chunked::DataCr => {
            if b != b'\r' {
                return Err(BodyError::MalformedChunk);
            }
            *state = Chunked::DataLf;
            Ok(1)
        }
        Chunked::DataLf => {
            if b != b'\n' {
                return Err(BodyError::MalformedChunk);
            }
            *state = Chunked::Size {
                size: 0,
                digits: false,
                in_ext: false,
                len: 0,
            };
            Ok(1)
        }
        Chunked::Trailer { len, cr } => {
            // trailer-section = *( field-line CRLF ) CRLF: the fields are read and dropped.
            match (b, *cr) {
                (b'\n', true) if *len == 0 => *state = Chunked::Done,
                (b'\n', true) => *state = Chunked::Trailer { len: 0, cr: false },
                (b'\r', false) => *cr = true,
                (_, false) if b != b'\n' => {
                    *len += 1;
                    if *len > MAX_CHUNK_LINE {
                        return Err(BodyError::MalformedChunk);
                    }
                }
                _ => return Err(BodyError::MalformedChunk),
            }
            Ok(1)
        }
        Chunked::Done => Ok(0),
    }
}

#[cfg(test)]
#[path = "http_body_tests.rs"]
mod tests;
