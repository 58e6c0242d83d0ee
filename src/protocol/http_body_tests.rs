use super::*;
use crate::protocol::http::{HeadLimits, parse_request};

fn length_of(head: &str) -> Result<BodyLength, BodyError> {
    let (head, _) = parse_request(head.as_bytes(), &HeadLimits::default())
        .expect("valid head")
        .expect("complete head");
    body_length(&head)
}

/// Decodes `input` fed in the pieces `splits` cuts it into; returns the body and what was used.
fn decode_split(
    length: BodyLength,
    max: u64,
    input: &[u8],
    splits: &[usize],
) -> Result<(Vec<u8>, usize, bool), BodyError> {
    let mut decoder = BodyDecoder::new(length, max)?;
    let mut body = Vec::new();
    let mut used = 0;
    let mut cuts = splits.to_vec();
    cuts.push(input.len());
    for cut in cuts {
        // Like the server, bytes not consumed stay for the next call.
        let piece = &input[used.min(cut)..cut];
        let d = decoder.decode(piece, &mut body)?;
        used += d.consumed;
        if d.done {
            return Ok((body, used, true));
        }
    }
    Ok((body, used, decoder.is_done()))
}

#[test]
fn lengths_come_from_the_fields() {
    assert_eq!(length_of("POST / HTTP/1.1\r\n\r\n"), Ok(BodyLength::None));
    assert_eq!(
        length_of("POST / HTTP/1.1\r\nContent-Length: 12\r\n\r\n"),
        Ok(BodyLength::Exact(12))
    );
    assert_eq!(
        length_of("POST / HTTP/1.1\r\nContent-Length: 12, 12\r\n\r\n"),
        Ok(BodyLength::Exact(12)),
        "RFC 9112 §6.3: a list of identical values is one length"
    );
    assert_eq!(
        length_of("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
        Ok(BodyLength::Chunked)
    );
    for bad in ["12, 13", "-1", "+5", "0x10", "", "99999999999999999999"] {
        assert_eq!(
            length_of(&format!("POST / HTTP/1.1\r\nContent-Length: {bad}\r\n\r\n")),
            Err(BodyError::BadContentLength),
            "{bad:?}"
        );
    }
    assert_eq!(
        length_of("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
        Err(BodyError::Ambiguous)
    );
    assert_eq!(
        length_of("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
        Err(BodyError::UnsupportedCoding)
    );
}

/// RFC 9112 §7.1's grammar, with an extension and a trailer field.
const CHUNKED: &[u8] = b"4;name=value\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";

#[test]
fn a_chunked_body_split_at_every_byte_decodes_the_same() {
    let expected = b"Wikipedia in\r\n\r\nchunks.".to_vec();
    for cut in 0..=CHUNKED.len() {
        let (body, used, done) = decode_split(BodyLength::Chunked, 1024, CHUNKED, &[cut])
            .unwrap_or_else(|e| panic!("split at {cut}: {e}"));
        assert!(done, "split at {cut}");
        assert_eq!(body, expected, "split at {cut}");
        assert_eq!(
            &CHUNKED[used..],
            b"NEXT",
            "split at {cut}: the next request is left"
        );
    }
    // And one byte at a time.
    let every: Vec<usize> = (1..CHUNKED.len()).collect();
    let (body, used, _) = decode_split(BodyLength::Chunked, 1024, CHUNKED, &every).unwrap();
    assert_eq!(body, expected);
    assert_eq!(&CHUNKED[used..], b"NEXT");
}

#[test]
fn a_length_body_split_at_every_byte_stops_at_its_end() {
    let input = b"hello worldGET";
    for cut in 0..=input.len() {
        let (body, used, done) = decode_split(BodyLength::Exact(11), 64, input, &[cut]).unwrap();
        assert!(done);
        assert_eq!(body, b"hello world");
        assert_eq!(used, 11);
    }
}

#[test]
fn an_unfinished_body_is_not_done() {
    let (body, _, done) = decode_split(BodyLength::Chunked, 64, b"5\r\nhel", &[]).unwrap();
    assert!(!done);
    assert_eq!(body, b"hel");
    let (_, _, done) = decode_split(BodyLength::Exact(5), 64, b"hel", &[]).unwrap();
    assert!(!done);
}

#[test]
fn bodies_over_the_limit_are_refused_before_their_bytes() {
    assert_eq!(
        BodyDecoder::new(BodyLength::Exact(65), 64).unwrap_err(),
        BodyError::TooLarge
    );
    // A chunk size over the limit is refused as soon as its digits say so.
    let mut d = BodyDecoder::new(BodyLength::Chunked, 64).unwrap();
    assert_eq!(d.decode(b"41", &mut Vec::new()), Err(BodyError::TooLarge));
    // Many small chunks add up.
    let mut d = BodyDecoder::new(BodyLength::Chunked, 8).unwrap();
    let mut body = Vec::new();
    assert_eq!(
        d.decode(b"5\r\nabcde\r\n5\r\n", &mut body),
        Err(BodyError::TooLarge)
    );
    // A size that overflows 64 bits is too large, not a wrap-around.
    let mut d = BodyDecoder::new(BodyLength::Chunked, u64::MAX).unwrap();
    assert_eq!(
        d.decode(b"1ffffffffffffffff\r\n", &mut Vec::new()),
        Err(BodyError::TooLarge)
    );
}

#[test]
fn malformed_chunks_are_refused() {
    for bad in [
        &b"\r\n"[..],
        b"z\r\n",
        b"5\nhello\r\n",
        b"5\r\nhelloX",
        b"5\r\nhello\rX",
        b"0\r\nbad\nfield\r\n\r\n",
        b";ext\r\n",
    ] {
        let mut d = BodyDecoder::new(BodyLength::Chunked, 1024).unwrap();
        assert_eq!(
            d.decode(bad, &mut Vec::new()),
            Err(BodyError::MalformedChunk),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let long = format!("1;{}\r\n", "e".repeat(MAX_CHUNK_LINE));
    let mut d = BodyDecoder::new(BodyLength::Chunked, 1024).unwrap();
    assert_eq!(
        d.decode(long.as_bytes(), &mut Vec::new()),
        Err(BodyError::MalformedChunk)
    );
}
