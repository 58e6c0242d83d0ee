//! Raw-bytes targets for HTTP request bodies and Hrana-over-HTTP bodies.
//!
//! * [`http_body`]: the body decoder (`Content-Length` and chunked) fed the same input at two
//!   splits must give the same body, the same bytes consumed and the same verdict; a body never
//!   exceeds the limit; and a decoded chunked body re-encoded in chunks of another size decodes
//!   to itself.
//! * [`hrana_http`]: the pipeline, cursor and v1 body parsers never panic, allocate a bounded
//!   multiple of their input, and agree on whether a body is valid whatever the endpoint's
//!   version.

use wsbridge::protocol::http_body::{BodyDecoder, BodyLength};
use wsbridge::routes::sql::http::wire::{self, BodyKind};

use crate::alloc;

/// `data`: a mode byte (bit 0: chunked or `Content-Length`; the rest: the limit), two split
/// points, then the input.
pub fn http_body(data: &[u8]) {
    let [mode, s1, s2, rest @ ..] = data else {
        return;
    };
    let max = u64::from(*mode >> 1) * 64;
    let length = if mode & 1 == 1 {
        BodyLength::Chunked
    } else {
        BodyLength::Exact(u64::from(*s1))
    };
    let whole = decode_in_pieces(length, max, rest, &[]);
    let len = rest.len();
    let a = usize::from(*s1) * len / 255;
    let b = (usize::from(*s2) * len / 255).max(a);
    let split = decode_in_pieces(length, max, rest, &[a, b]);
    assert_eq!(
        whole, split,
        "the verdict depends on how the input was split"
    );
    if let Ok((body, consumed, done)) = &whole {
        assert!(*consumed <= len);
        assert!(body.len() as u64 <= max, "a body over the limit");
        if *done && length == BodyLength::Chunked {
            // Re-encode with chunks of another size: the same body comes back.
            let size = usize::from(*s2 % 13) + 1;
            let mut encoded = Vec::new();
            for piece in body.chunks(size) {
                encoded.extend(format!("{:x}\r\n", piece.len()).into_bytes());
                encoded.extend_from_slice(piece);
                encoded.extend_from_slice(b"\r\n");
            }
            encoded.extend_from_slice(b"0\r\n\r\n");
            let again = decode_in_pieces(length, max, &encoded, &[]);
            assert_eq!(
                again,
                Ok((body.clone(), encoded.len(), true)),
                "re-encoded body"
            );
        }
    }
}

type Outcome = Result<(Vec<u8>, usize, bool), wsbridge::protocol::http_body::BodyError>;

fn decode_in_pieces(length: BodyLength, max: u64, input: &[u8], cuts: &[usize]) -> Outcome {
    let mut decoder = BodyDecoder::new(length, max)?;
    let mut body = Vec::new();
    let mut used = 0;
    let mut ends = cuts.to_vec();
    ends.push(input.len());
    for end in ends {
        let piece = &input[used.min(end)..end];
        let decoded = decoder.decode(piece, &mut body)?;
        used += decoded.consumed;
        if decoded.done {
            return Ok((body, used, true));
        }
        assert_eq!(
            decoded.consumed,
            piece.len(),
            "an unfinished body takes all it is given"
        );
    }
    Ok((body, used, decoder.is_done()))
}

/// `data`: the endpoint's body, parsed as every kind.
pub fn hrana_http(data: &[u8]) {
    for kind in [
        BodyKind::Pipeline,
        BodyKind::Cursor,
        BodyKind::V1Execute,
        BodyKind::V1Batch,
    ] {
        let (parsed, largest) = alloc::watch(|| wire::parse(kind, data));
        // Strings and arrays are at most the input's size; a few structures per input byte.
        assert!(
            largest <= 64 * data.len() + 4096,
            "{kind:?}: an allocation of {largest} for {} bytes",
            data.len()
        );
        if let Err(message) = parsed {
            assert!(!message.is_empty());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_pass_their_checks() {
        http_body(b"\xff\x05\x09");
        http_body(b"\xff\x05\x094;a=b\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n");
        http_body(b"\x03\x05\x09400\r\n");
        http_body(b"\x40\x05\x09hello world");
        hrana_http(
            br#"{"requests":[{"type":"execute","stmt":{"sql":"select 1"}},{"type":"close"}]}"#,
        );
        hrana_http(br#"{"batch":{"steps":[{"condition":null,"stmt":{"sql":"x"}}]}}"#);
        hrana_http(b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[");
    }
}
