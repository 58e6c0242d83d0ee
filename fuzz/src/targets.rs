//! The raw-bytes fuzz targets. Each takes the fuzzer's bytes and panics on a broken invariant.

use arbitrary::{Arbitrary, Unstructured};
use wsbridge::http::Refusal;
use wsbridge::protocol::frame::MAX_HEADER_LEN;
use wsbridge::protocol::handshake::accept_key;
use wsbridge::protocol::handshake::client::{Offer, parse_client_response};
use wsbridge::protocol::handshake::server::{Accept, validate_upgrade, write_accept_response};
use wsbridge::protocol::http::{
    HeadError, HeadLimits, HeadScan, RequestHead, TargetForm, parse_request,
};
use wsbridge::protocol::mask::{apply_mask, apply_mask_reference};
use wsbridge::protocol::utf8::Utf8Validator;
use wsbridge::protocol::{FrameHeader, Limits, ProtocolError, Role};

use crate::alloc;
use crate::drive;
use crate::oracle::{self, Options};

// ---------------------------------------------------------------------------------------------
// frame_header
// ---------------------------------------------------------------------------------------------

/// What `FrameHeader::decode` must return, worked out from §5.2 directly: `Ok(None)` while the
/// header (masking key included) is incomplete, then an error for a badly encoded length, else
/// the header's length and its payload length.
fn header_model(data: &[u8]) -> Result<Option<(usize, u64)>, ProtocolError> {
    let [_, b1, ..] = *data else {
        return Ok(None);
    };
    let ext = match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let n = 2 + ext + if b1 & 0x80 != 0 { 4 } else { 0 };
    if data.len() < n {
        return Ok(None);
    }
    let len = match ext {
        0 => u64::from(b1 & 0x7f),
        _ => data[2..2 + ext]
            .iter()
            .fold(0u64, |a, &b| a << 8 | u64::from(b)),
    };
    if ext == 8 && len >= 1 << 63 {
        return Err(ProtocolError::LengthMsbSet);
    }
    if (ext == 2 && len < 126) || (ext == 8 && len < 65536) {
        return Err(ProtocolError::NonMinimalLength);
    }
    Ok(Some((n, len)))
}

/// The receiver's rules (§5.1, §5.2, §5.5) in the order the connection applies them.
fn check_model(h: &FrameHeader, role: Role) -> Result<u8, ProtocolError> {
    if h.rsv != 0 {
        return Err(ProtocolError::ReservedBitsSet(h.rsv));
    }
    if !matches!(h.opcode, 0 | 1 | 2 | 8 | 9 | 10) {
        return Err(ProtocolError::ReservedOpcode(h.opcode));
    }
    match (role, h.mask.is_some()) {
        (Role::Server, false) => return Err(ProtocolError::UnmaskedClientFrame),
        (Role::Client, true) => return Err(ProtocolError::MaskedServerFrame),
        _ => {}
    }
    if h.opcode >= 8 && h.payload_len > 125 {
        return Err(ProtocolError::ControlFrameTooLong);
    }
    if h.opcode >= 8 && !h.fin {
        return Err(ProtocolError::FragmentedControlFrame);
    }
    Ok(h.opcode)
}

/// `FrameHeader::decode` on any bytes:
/// * agrees with [`header_model`]: `Ok(None)` iff shorter than the header it starts (masking key
///   included), then the exact error for a badly encoded length, the header length and payload
///   length otherwise;
/// * every prefix returns `Ok(None)` or the same result (an error is final);
/// * on `Some((h, n))`: `n <= len`, `n == h.encoded_len()`, `encode(h)` gives back `input[..n]`
///   byte for byte, and the fields are the bits of the input;
/// * `check` agrees with [`check_model`] for both roles;
/// * decode, check and encode allocate nothing, whatever length is announced;
/// * a header built from the input's bytes encodes to something that decodes back to it.
pub fn frame_header(data: &[u8]) {
    let (result, largest) = alloc::watch(|| FrameHeader::decode(data));
    assert_eq!(largest, 0, "decode allocated {largest} bytes");
    let model = header_model(data);
    match (&result, &model) {
        (Ok(None), Ok(None)) => {}
        (Err(e), Err(m)) => assert_eq!(e, m),
        (Ok(Some((h, n))), Ok(Some((mn, mlen)))) => {
            assert_eq!((*n, h.payload_len), (*mn, *mlen), "{data:x?}");
            assert!(*n <= data.len());
            assert_eq!(*n, h.encoded_len(), "minimal encoding");
            let mut buf = [0u8; MAX_HEADER_LEN];
            let (written, largest) = alloc::watch(|| h.encode(&mut buf));
            assert_eq!(largest, 0);
            assert_eq!(&buf[..written], &data[..*n], "encode(decode(x)) != x");
            assert_eq!(h.fin, data[0] & 0x80 != 0);
            assert_eq!(h.rsv, (data[0] >> 4) & 7);
            assert_eq!(h.opcode, data[0] & 0xf);
            let key = (data[1] & 0x80 != 0).then(|| [0, 1, 2, 3].map(|i| data[*n - 4 + i]));
            assert_eq!(h.mask, key);
            for role in [Role::Server, Role::Client] {
                let (checked, largest) = alloc::watch(|| h.check(role));
                assert_eq!(largest, 0);
                assert_eq!(checked.map(|op| op.as_u8()), check_model(h, role), "{h:?}");
            }
        }
        _ => panic!("decode({data:x?}) = {result:?}, expected {model:?}"),
    }
    for cut in 0..data.len().min(MAX_HEADER_LEN + 1) {
        let prefix = FrameHeader::decode(&data[..cut]);
        assert!(
            prefix == Ok(None) || prefix == result,
            "prefix {cut} of {data:x?}: {prefix:?} vs {result:?}"
        );
    }
    // Encode first: any fields (a payload length below 2^63) survive encode then decode.
    if let Some(d) = data.first_chunk::<14>() {
        let h = FrameHeader {
            fin: d[0] & 1 != 0,
            rsv: (d[0] >> 1) & 7,
            opcode: d[0] >> 4,
            mask: (d[1] & 1 != 0).then(|| [d[2], d[3], d[4], d[5]]),
            payload_len: u64::from_le_bytes(d[6..14].try_into().expect("8"))
                >> (u32::from(d[1] >> 1) % 64)
                & !(1 << 63),
        };
        let mut buf = [0u8; MAX_HEADER_LEN];
        let n = h.encode(&mut buf);
        assert_eq!(n, h.encoded_len());
        assert_eq!(FrameHeader::decode(&buf[..n]), Ok(Some((h, n))), "{h:?}");
        assert_eq!(FrameHeader::decode(&buf[..n - 1]), Ok(None));
    }
}

// ---------------------------------------------------------------------------------------------
// handshake
// ---------------------------------------------------------------------------------------------

const SMALL_HEAD: HeadLimits = HeadLimits {
    max_request_line: 40,
    max_head_bytes: 200,
    max_headers: 4,
};

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_base64(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'+' || c == b'/'
}

/// The invariants of a parsed head, from RFC 9112's grammar rather than from the parser.
fn check_head(data: &[u8], head: &RequestHead<'_>, n: usize, limits: &HeadLimits) {
    assert!(n <= data.len() && n >= 4);
    assert!(data[..n].ends_with(b"\r\n\r\n"));
    let first_end = data.windows(4).position(|w| w == b"\r\n\r\n");
    assert_eq!(
        first_end,
        Some(n - 4),
        "the head ends at the first blank line"
    );
    assert!(n <= limits.max_head_bytes);
    let line = format!(
        "{} {} HTTP/1.{}",
        head.method, head.target, head.minor_version
    );
    assert!(data.starts_with(line.as_bytes()), "request line {line:?}");
    assert!(line.len() <= limits.max_request_line);
    assert!(!head.method.is_empty() && head.method.bytes().all(is_tchar));
    match head.form {
        TargetForm::Origin => assert!(head.target.starts_with('/')),
        TargetForm::Absolute => assert!(head.target.contains("://") && head.authority().is_some()),
        TargetForm::Asterisk => assert_eq!(head.target, "*"),
    }
    assert!(head.path().starts_with('/') || head.path() == "*");
    assert!(head.target.bytes().all(|b| b > b' ' && b != 0x7f));
    assert!(head.minor_version <= 9);
    assert!(head.headers.len() <= limits.max_headers);
    for h in &head.headers {
        assert!(!h.name.is_empty() && h.name.bytes().all(is_tchar), "{h:?}");
        assert!(!h.value.starts_with([' ', '\t']) && !h.value.ends_with([' ', '\t']));
        assert!(
            h.value
                .bytes()
                .all(|b| b >= b' ' && b != 0x7f || b == b'\t')
        );
    }
}

/// What `validate_upgrade` promises when it succeeds (RFC 6455 §4.2.1), and that the 101 reply
/// built from it satisfies this crate's own client (§4.1).
fn check_upgrade(head: &RequestHead<'_>) {
    let Ok(req) = validate_upgrade(head) else {
        return;
    };
    assert_eq!(head.method, "GET");
    assert!(head.minor_version >= 1);
    assert!(!req.host.is_empty());
    assert!(req.path.starts_with('/') && head.target.contains(req.path));
    assert_eq!(head.header("Sec-WebSocket-Version"), Some("13"));
    let key = req.key.as_bytes();
    assert!(
        key.len() == 24 && key[..22].iter().all(|&c| is_base64(c)) && key.ends_with(b"=="),
        "Sec-WebSocket-Key {:?}",
        req.key
    );
    let accept = accept_key(req.key);
    assert!(accept[..27].iter().all(|&c| is_base64(c)) && accept[27] == b'=');
    let mut reply = Vec::new();
    write_accept_response(req.key, Accept::default(), &mut reply);
    let accepted = parse_client_response(&reply, req.key, Offer::default())
        .expect("our client accepts our 101")
        .expect("complete");
    assert_eq!((accepted.protocol, accepted.head_len), (None, reply.len()));
}

/// Where to cut the input to feed it incrementally: every point of a short input, a sample of
/// a long one, and always around the end of the head.
fn cut_points(len: usize, head_end: Option<usize>) -> Vec<usize> {
    let mut cuts: Vec<usize> = if len <= 300 {
        (0..=len).collect()
    } else {
        (0..=len).step_by(len / 64 + 1).chain([len]).collect()
    };
    if let Some(n) = head_end {
        cuts.extend([n - 1, n, n + 1].into_iter().filter(|&c| c <= len));
    }
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

/// `parse_request` on any bytes, with the default limits and with small ones:
/// * a complete head satisfies [`check_head`], and `consumed <= len`;
/// * incremental reading agrees with reading at once: for a head of `n` bytes every prefix
///   shorter than `n` is `Ok(None)` and every longer one gives the same head; for an input that
///   fails, each prefix is `Ok(None)` or an error of the same HTTP status, and once a prefix
///   fails every longer one fails the same way (a server answers the same status however the
///   bytes were split);
/// * `validate_upgrade` never panics, and its success means what [`check_upgrade`] says;
/// * the client's response parser never panics on the same bytes.
pub fn handshake(data: &[u8]) {
    for limits in [HeadLimits::default(), SMALL_HEAD] {
        let full = parse_request(data, &limits);
        let head_end = match &full {
            Ok(Some((head, n))) => {
                check_head(data, head, *n, &limits);
                check_upgrade(head);
                Some(*n)
            }
            _ => None,
        };
        let mut failed: Option<u16> = None;
        for cut in cut_points(data.len(), head_end) {
            let prefix = parse_request(&data[..cut], &limits);
            match (&full, &prefix) {
                (Ok(Some((_, n))), Ok(None)) => assert!(cut < *n, "prefix {cut} of a head of {n}"),
                (Ok(Some(_)), Ok(Some(_))) => assert_eq!(prefix, full, "prefix {cut}"),
                (Ok(None), Ok(None)) | (Err(_), Ok(None)) => {}
                (Err(e), Err(p)) => assert_eq!(
                    Refusal::from(*e).status(),
                    Refusal::from(*p).status(),
                    "prefix {cut} fails with {p:?}, the whole input with {e:?}"
                ),
                _ => panic!("prefix {cut}: {prefix:?}, whole input: {full:?}"),
            }
            match (&prefix, failed) {
                (Err(p), _) => failed = Some(Refusal::from(*p).status()),
                (Ok(_), Some(status)) => panic!("prefix {cut} is fine after failing with {status}"),
                _ => {}
            }
        }
        // The incremental scan, fed the same bytes in growing prefixes, agrees with a parse
        // of each prefix from scratch: resuming never changes a verdict.
        let mut scan = HeadScan::new();
        for cut in cut_points(data.len(), head_end) {
            let resumed = scan.request(&data[..cut], &limits);
            let fresh = parse_request(&data[..cut], &limits);
            assert_eq!(resumed, fresh, "resumed scan at {cut}");
            if !matches!(fresh, Ok(None)) {
                break;
            }
        }
    }
    let offer = Offer {
        protocols: &["chat"],
        extensions: None,
    };
    let _ = parse_client_response(data, "dGhlIHNhbXBsZSBub25jZQ==", offer);
}

// ---------------------------------------------------------------------------------------------
// utf8
// ---------------------------------------------------------------------------------------------

/// The shortest prefix that `std` calls invalid whatever might follow, if any.
fn first_definite_error(bytes: &[u8]) -> Option<usize> {
    let e = std::str::from_utf8(bytes).err()?;
    let k = e.valid_up_to();
    e.error_len()?;
    (k + 1..=bytes.len()).find(|&p| oracle::utf8_definitely_invalid(&bytes[..p]))
}

/// `Utf8Validator` against `std::str::from_utf8`. Input: a count `c`, then `c` piece lengths, then
/// the text. Fed whole and in those pieces (and a byte at a time):
/// * `feed` fails exactly when `std` finds an error that no continuation can repair, and on the
///   very piece that completes the shortest such prefix: never earlier (no false alarm on a
///   character cut between pieces), never later (fail fast, Autobahn 6.4.x);
/// * without such an error, `finish` succeeds exactly when `std` accepts the whole input;
/// * after `finish` or `reset` the validator is as new.
pub fn utf8(data: &[u8]) {
    let Some((&count, rest)) = data.split_first() else {
        return;
    };
    let count = usize::from(count % 9).min(rest.len());
    let (lens, text) = rest.split_at(count);
    let std_ok = std::str::from_utf8(text).is_ok();
    let fail_at = first_definite_error(text);
    let mut v = Utf8Validator::new();
    for pieces in [
        vec![text.len()],
        lens.iter().map(|&l| usize::from(l)).collect(),
        vec![1],
    ] {
        // Empty pieces are fed too, but something must make progress.
        let pieces = if pieces.iter().all(|&l| l == 0) {
            vec![1]
        } else {
            pieces
        };
        // The second round reuses the validator: after `finish` or `reset` it must be as new.
        for _round in 0..2 {
            let mut fed = 0;
            let mut failed = false;
            let mut sizes = pieces.iter().copied().cycle();
            while fed < text.len() {
                let size = sizes.next().unwrap_or(text.len());
                let end = (fed + size).min(text.len());
                let result = v.feed(&text[fed..end]);
                let should_fail = fail_at.is_some_and(|p| fed < p && p <= end);
                assert_eq!(
                    result.is_err(),
                    should_fail,
                    "feed({:x?}) after {fed} bytes of {text:x?} (pieces {pieces:?})",
                    &text[fed..end]
                );
                fed = end;
                if should_fail {
                    failed = true;
                    break;
                }
            }
            if failed {
                v.reset();
            } else {
                assert_eq!(fail_at, None);
                assert_eq!(v.finish().is_ok(), std_ok, "finish on {text:x?}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// mask
// ---------------------------------------------------------------------------------------------

/// `apply_mask` against `apply_mask_reference`, for any data, key, offset and alignment:
/// * the fast path equals the reference, and leaves the bytes around the slice alone;
/// * masking twice is the identity;
/// * masking in two pieces (the second at offset + cut) equals masking at once.
pub fn mask(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (Ok(key), Ok(offset), Ok(align), Ok(cut)) = (
        <[u8; 4]>::arbitrary(&mut u),
        u64::arbitrary(&mut u),
        u8::arbitrary(&mut u),
        u16::arbitrary(&mut u),
    ) else {
        return;
    };
    // A payload offset is below 2^63 (the longest frame), so `offset + i` cannot overflow.
    let offset = (offset & (u64::MAX >> 1)) as usize;
    let payload = u.take_rest();
    let align = usize::from(align % 64);
    let mut buf = vec![0xa5u8; align + payload.len() + 7];
    buf[align..align + payload.len()].copy_from_slice(payload);
    let mut reference = buf.clone();
    let range = align..align + payload.len();
    apply_mask(&mut buf[range.clone()], key, offset);
    apply_mask_reference(&mut reference[range.clone()], key, offset);
    assert_eq!(buf, reference, "key {key:x?} offset {offset} align {align}");
    let mut twice = buf.clone();
    apply_mask(&mut twice[range.clone()], key, offset);
    assert_eq!(&twice[range.clone()], payload, "masking twice");
    let cut = usize::from(cut) % (payload.len() + 1);
    let mut pieces = payload.to_vec();
    let (a, b) = pieces.split_at_mut(cut);
    apply_mask(a, key, offset);
    apply_mask(b, key, offset + cut);
    assert_eq!(&pieces[..], &buf[range], "cut at {cut}");
}

// ---------------------------------------------------------------------------------------------
// connection
// ---------------------------------------------------------------------------------------------

/// The limits a `connection` input picks with the low three bits of its first byte: the
/// defaults, small ones so that the 1009 paths are reached, zero, and no limit at all.
pub const LIMITS: [Limits; 8] = [
    Limits {
        max_frame_size: 64 << 20,
        max_message_size: 64 << 20,
    },
    Limits {
        max_frame_size: 125,
        max_message_size: 256,
    },
    Limits {
        max_frame_size: 16,
        max_message_size: 64,
    },
    Limits {
        max_frame_size: 0,
        max_message_size: 0,
    },
    Limits {
        max_frame_size: 64 << 20,
        max_message_size: 32,
    },
    Limits {
        max_frame_size: 8,
        max_message_size: 1 << 20,
    },
    Limits {
        max_frame_size: 1000,
        max_message_size: 1000,
    },
    Limits {
        max_frame_size: u64::MAX,
        max_message_size: u64::MAX,
    },
];

/// Input layout of the `connection` target: a configuration byte (bits 0-2: [`LIMITS`]; bit 3:
/// the application closes first; bit 4: echo every message; bit 5: a client-side connection,
/// which expects unmasked frames and masks its own), a count `c` (mod 16), `c` chunk
/// sizes (each byte + 1, cycled), then the client's byte stream.
/// The options a `connection` input's configuration byte selects.
pub fn connection_options(cfg: u8) -> Options {
    Options {
        role: if cfg & 32 != 0 {
            Role::Client
        } else {
            Role::Server
        },
        limits: LIMITS[usize::from(cfg & 7)],
        close_first: cfg & 8 != 0,
        echo: cfg & 16 != 0,
    }
}

pub fn connection_input(cfg: u8, chunks: &[u8], stream: &[u8]) -> Vec<u8> {
    assert!(chunks.len() < 16);
    let mut v = vec![cfg, chunks.len() as u8];
    v.extend_from_slice(chunks);
    v.extend_from_slice(stream);
    v
}

/// The whole `Connection` (server side, or client side per the configuration) on an arbitrary
/// stream, fed in the input's chunks, at once,
/// and a byte at a time. Each run is checked call by call by [`drive::run`] and then against the
/// [`oracle`] by [`drive::check`]: the same events, the same error, and the output frames
/// expected (Pongs, echoes, the Close echo or the failure Close with the error's code).
pub fn connection(data: &[u8]) {
    let [cfg, count, rest @ ..] = data else {
        return;
    };
    let count = usize::from(count % 16).min(rest.len());
    let (sizes, stream) = rest.split_at(count);
    let sizes: Vec<usize> = sizes.iter().map(|&b| usize::from(b) + 1).collect();
    let opts = connection_options(*cfg);
    let expected = oracle::expect(stream, opts);
    drive::check(&drive::run(stream, &sizes, opts), &expected, "chunked");
    if !sizes.is_empty() {
        drive::check(&drive::run(stream, &[], opts), &expected, "whole");
    }
    drive::check(&drive::run(stream, &[1], opts), &expected, "byte by byte");
}

// ---------------------------------------------------------------------------------------------
// hrana
// ---------------------------------------------------------------------------------------------

/// The Hrana (SQL route) JSON decoders on any text:
/// * `ClientMsg` decoding never panics;
/// * a `Value` that decodes re-encodes to JSON that decodes to the same value, floats to the
///   same bits (serde_json's `float_roundtrip` parser is exact; its default one was off by up
///   to two units in the last place, which a SQL server must not be);
/// * subprotocol negotiation picks the highest Hrana JSON version among the offered tokens.
pub fn hrana(data: &[u8]) {
    use wsbridge::routes::sql::proto::{ClientMsg, Value, Version};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = serde_json::from_str::<ClientMsg>(text);
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        let json = serde_json::to_string(&value).expect("a Value always serializes");
        let again: Value = serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("{value:?} encoded as {json} does not decode: {e}"));
        match (&value, &again) {
            (Value::Float(a), Value::Float(b)) => {
                assert_eq!(a.to_bits(), b.to_bits(), "{a} -> {json} -> {b}");
            }
            _ => assert_eq!(value, again, "{json}"),
        }
    }
    let offered: Vec<&str> = text.split(',').collect();
    let best = Version::ALL
        .into_iter()
        .find(|v| offered.iter().any(|t| t.trim() == v.subprotocol()));
    assert_eq!(
        Version::negotiate(offered.iter().copied()),
        best,
        "{text:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// tty
// ---------------------------------------------------------------------------------------------

/// The terminal route's ttyd message decoders on any bytes:
/// * `decode_client` never panics; the message type is the first byte (`Empty`, `UnknownType`
///   and `Input` exactly as the first byte says, the input being the rest unchanged); a first
///   message decodes only from a JSON *object*;
/// * whatever decodes re-encodes (`encode_client`) to bytes that decode to the same message;
/// * `decode_server` then `encode_server` gives back the input byte for byte.
pub fn tty(data: &[u8]) {
    use wsbridge::routes::tty::proto::{
        ClientMessage, DecodeError, decode_client, decode_server, encode_client, encode_server,
    };
    let decoded = decode_client(data);
    match (data.first(), &decoded) {
        (None, Err(DecodeError::Empty)) => {}
        (Some(b'0'), Ok(ClientMessage::Input(rest))) => assert_eq!(*rest, &data[1..]),
        (Some(b'1'), Ok(ClientMessage::Resize(_)) | Err(DecodeError::BadJson(_))) => {}
        (Some(b'2'), Ok(ClientMessage::Pause)) | (Some(b'3'), Ok(ClientMessage::Resume)) => {}
        (Some(b'{'), Ok(ClientMessage::Init(_))) => {
            // serde_json's Value refuses numbers beyond f64 (`1e999`), which JSON itself allows
            // and fields skipped unread accept: only a Value that does parse is checked.
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
                assert!(value.is_object());
            }
        }
        (Some(b'{'), Err(DecodeError::BadJson(_))) => {}
        (Some(&b), Err(DecodeError::UnknownType(t))) => {
            assert_eq!(b, *t);
            assert!(!b"0123{".contains(&b));
        }
        _ => panic!("decode_client({data:x?}) = {decoded:?}"),
    }
    if let Ok(message) = &decoded {
        let mut encoded = Vec::new();
        encode_client(message, &mut encoded);
        assert_eq!(
            decode_client(&encoded).as_ref(),
            Ok(message),
            "{message:?} encoded as {encoded:x?}"
        );
    }
    if let Ok(message) = decode_server(data) {
        let mut encoded = Vec::new();
        encode_server(&message, &mut encoded);
        assert_eq!(encoded, data, "{message:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// http_head
// ---------------------------------------------------------------------------------------------

/// The limits an `http_head` input picks with its first byte: two bits each for the request
/// line, the head and the number of field lines (the defaults, small ones, tiny ones, zero).
pub fn head_limits(b: u8) -> HeadLimits {
    HeadLimits {
        max_request_line: [4096, 64, 16, 0][usize::from(b & 3)],
        max_head_bytes: [16 * 1024, 256, 32, 4][usize::from(b >> 2 & 3)],
        max_headers: [64, 4, 1, 0][usize::from(b >> 4 & 3)],
    }
}

/// The errors each kind of head may end in.
fn request_error(e: HeadError) -> bool {
    !matches!(e, HeadError::MalformedStatusLine)
}

fn response_error(e: HeadError) -> bool {
    !matches!(
        e,
        HeadError::RequestLineTooLong
            | HeadError::MalformedRequestLine
            | HeadError::MalformedMethod
            | HeadError::MalformedTarget
    )
}

/// A non-empty field of a head points into the head's bytes (empty ones may be `""`).
fn within(head: &[u8], s: &str, what: &str) {
    if s.is_empty() {
        return;
    }
    let start = head.as_ptr() as usize;
    let p = s.as_ptr() as usize;
    assert!(
        p >= start && p + s.len() <= start + head.len(),
        "{what} {s:?} is not a slice of the head"
    );
}

fn check_fields(head: &[u8], headers: &wsbridge::protocol::http::Headers<'_>) {
    for h in headers {
        within(head, h.name, "a field name");
        within(head, h.value, "a field value");
        assert!(!h.name.is_empty() && h.name.bytes().all(is_tchar), "{h:?}");
        assert!(!h.value.starts_with([' ', '\t']) && !h.value.ends_with([' ', '\t']));
        assert!(
            h.value
                .bytes()
                .all(|b| b >= b' ' && b != 0x7f || b == b'\t')
        );
    }
}

/// Feeds one scan the input's prefixes at `cuts` (ascending), comparing each answer with a
/// fresh parse of that prefix, until one is not `Ok(None)`: that answer and where it came.
fn resume<'a, H: PartialEq + std::fmt::Debug>(
    data: &'a [u8],
    cuts: &[usize],
    step: impl Fn(&mut HeadScan, &'a [u8]) -> Result<Option<(H, usize)>, HeadError>,
) -> (Result<Option<(H, usize)>, HeadError>, usize) {
    let mut scan = HeadScan::new();
    let mut last = (Ok(None), 0);
    for &cut in cuts {
        let resumed = step(&mut scan, &data[..cut]);
        let fresh = step(&mut HeadScan::new(), &data[..cut]);
        assert_eq!(
            resumed, fresh,
            "the scan resumed at {cut} (after {})",
            last.1
        );
        if !matches!(resumed, Ok(None)) {
            return (resumed, cut);
        }
        last = (resumed, cut);
    }
    last
}

/// Resuming agrees with parsing at once: the first cut at or past the end of a head gives that
/// head; an input that fails gives the very same error once it fails, at any split; one that is
/// incomplete stays `Ok(None)`.
fn check_resume<'a, H: PartialEq + std::fmt::Debug>(
    data: &'a [u8],
    cuts: &[usize],
    whole: &Result<Option<(H, usize)>, HeadError>,
    step: impl Fn(&mut HeadScan, &'a [u8]) -> Result<Option<(H, usize)>, HeadError>,
) {
    let (got, at) = resume(data, cuts, step);
    match (whole, &got) {
        (Ok(Some((_, n))), Ok(Some((_, m)))) => {
            assert_eq!(got, *whole, "cut at {at}");
            assert!(*m == *n && at >= *n);
        }
        (Ok(None), Ok(None)) => {}
        (Err(e), Err(g)) => assert_eq!(e, g, "fed in pieces up to {at}"),
        _ => panic!("fed in pieces {cuts:?}: {got:?} at {at}, at once: {whole:?}"),
    }
}

/// The incremental HTTP head parser (`HeadScan`, for requests and responses) on any bytes.
/// Input: a byte of [`head_limits`], two bytes that place two split points, then the bytes.
/// (The `handshake` target covers requests under two fixed limits and the upgrade; this one
/// adds responses, limits down to zero, data-derived splits, and where fields point.)
/// * never a panic; errors only of the kinds each head can have (no status-line error for a
///   request, no request-line error for a response);
/// * resume equivalence: one scan fed the input split at the two points (and, for inputs up to
///   300 bytes, at every byte) answers each prefix exactly as a fresh parse does, and ends in
///   the result of parsing the whole input at once, the same head or the very same error;
/// * a parsed head's method, target, path, query, authority, reason and field names and values
///   are slices of the head's own bytes (`/` and `*` stand for an absolute-form target without
///   a path and the asterisk form), and obey the grammar ([`check_head`] for requests);
/// * parsing allocates only the list of fields.
pub fn http_head(data: &[u8]) {
    use wsbridge::protocol::http::{Header, parse_response};
    let [cfg, s1, s2, rest @ ..] = data else {
        return;
    };
    let limits = head_limits(*cfg);
    let data = rest;
    let len = data.len();
    let (a, b) = {
        let a = usize::from(*s1) * len / 255;
        let b = usize::from(*s2) * len / 255;
        (a.min(b), a.max(b))
    };
    let max_alloc =
        std::mem::size_of::<Header<'_>>() * limits.max_headers.next_power_of_two().max(16);

    let (request, largest) = alloc::watch(|| parse_request(data, &limits));
    assert!(largest <= max_alloc, "parse_request allocated {largest}");
    match &request {
        Ok(Some((head, n))) => {
            let bytes = &data[..*n];
            check_head(data, head, *n, &limits);
            within(bytes, head.method, "the method");
            within(bytes, head.target, "the target");
            let path_ok = (head.form == TargetForm::Absolute && head.path() == "/")
                || head.form == TargetForm::Asterisk;
            if !path_ok {
                within(bytes, head.path(), "the path");
            }
            if let Some(q) = head.query() {
                within(bytes, q, "the query");
            }
            if let Some(authority) = head.authority() {
                within(bytes, authority, "the authority");
            }
            check_fields(bytes, &head.headers);
            // Any field value as an `Authorization` (Bearer, or Basic decoded from base64):
            // no panic, and a token only when there is one to present.
            for field in &head.headers.0 {
                if let Some(token) = wsbridge::auth::presented_token(Some(field.value)) {
                    assert!(!token.is_empty(), "an empty token from {:?}", field.value);
                }
            }
        }
        Ok(None) => {}
        Err(e) => assert!(request_error(*e), "a request failing with {e:?}"),
    }
    let splits = [a, b, len];
    check_resume(data, &splits, &request, |s, buf| s.request(buf, &limits));

    let (response, largest) = alloc::watch(|| parse_response(data, &limits));
    assert!(largest <= max_alloc, "parse_response allocated {largest}");
    match &response {
        Ok(Some((head, n))) => {
            let bytes = &data[..*n];
            assert!(*n >= 4 && *n <= limits.max_head_bytes);
            assert_eq!(
                data.windows(4).position(|w| w == b"\r\n\r\n"),
                Some(n - 4),
                "the head ends at the first blank line"
            );
            let line = format!("HTTP/1.{} {:03}", head.minor_version, head.status);
            assert!(data.starts_with(line.as_bytes()), "status line {line:?}");
            assert!(head.minor_version <= 9 && head.status <= 999);
            within(bytes, head.reason, "the reason");
            // RFC 9112 §4: HTAB, SP, VCHAR and obs-text only (found by this target; seed
            // `reason-with-bare-cr-lf-and-control`).
            assert!(
                !head
                    .reason
                    .bytes()
                    .any(|b| (b < 0x20 && b != b'\t') || b == 0x7f),
                "a control byte in the reason {:?}",
                head.reason
            );
            assert!(head.headers.len() <= limits.max_headers);
            check_fields(bytes, &head.headers);
        }
        Ok(None) => {}
        Err(e) => assert!(response_error(*e), "a response failing with {e:?}"),
    }
    check_resume(data, &splits, &response, |s, buf| s.response(buf, &limits));
    if len <= 300 {
        let every: Vec<usize> = (0..=len).collect();
        check_resume(data, &every, &request, |s, buf| s.request(buf, &limits));
        check_resume(data, &every, &response, |s, buf| s.response(buf, &limits));
    }
}
