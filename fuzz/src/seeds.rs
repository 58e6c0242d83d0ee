//! The seed corpus, as code: each seed has a name that says what it is, and the test at the
//! bottom writes them to `fuzz/corpus/<target>/<name>` (`WRITE_SEEDS=1 cargo test`) or checks
//! that the committed files are exactly these. Connection seeds also state the error they must
//! end in, so a name cannot drift from what the seed does.

use wsbridge::protocol::ProtocolError;

use crate::targets::connection_input;
use crate::wire::{LenForm, client, frame, header};

/// One seed file.
#[derive(Clone)]
pub struct Seed {
    pub target: &'static str,
    pub name: String,
    pub bytes: Vec<u8>,
    /// For `connection` seeds: the error the oracle must end in (`None`: no error).
    pub expect: Option<Option<ProtocolError>>,
}

/// RFC 6455 §5.7's masking key.
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn seed(target: &'static str, name: &str, bytes: impl Into<Vec<u8>>) -> Seed {
    Seed {
        target,
        name: name.to_owned(),
        bytes: bytes.into(),
        expect: None,
    }
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn frame_header_seeds() -> Vec<Seed> {
    let t = "frame_header";
    vec![
        seed(
            t,
            "rfc-5-7-unmasked-hello",
            client(1, KEY, b"Hello")[..2].to_vec(),
        ),
        seed(
            t,
            "rfc-5-7-masked-hello",
            [
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
            ],
        ),
        seed(t, "rfc-5-7-len16-256", [0x82, 0x7e, 0x01, 0x00]),
        seed(
            t,
            "rfc-5-7-len64-65536",
            [0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0],
        ),
        seed(t, "len16-non-minimal", [0x82, 0x7e, 0x00, 0x7d]),
        seed(
            t,
            "len64-non-minimal",
            [0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0xff, 0xff],
        ),
        seed(t, "len64-msb-set", [0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0]),
        seed(
            t,
            "len64-max-masked",
            header(true, 0, 2, Some(KEY), u64::MAX >> 1, LenForm::Minimal),
        ),
        seed(t, "rsv1-set", [0xc1, 0x80, 1, 2, 3, 4]),
        seed(t, "reserved-opcode-3", [0x83, 0x80, 1, 2, 3, 4]),
        seed(
            t,
            "ping-126-bytes",
            header(true, 0, 9, Some(KEY), 126, LenForm::Minimal),
        ),
        seed(t, "fragmented-ping", [0x09, 0x80, 1, 2, 3, 4]),
        seed(t, "truncated-mask-key", [0x81, 0x85, 0x37, 0xfa]),
        seed(t, "one-byte", [0x81]),
    ]
}

const RFC_REQUEST: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

fn upgrade(lines: &[&str]) -> Vec<u8> {
    let mut s = String::new();
    for l in lines {
        s.push_str(l);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    s.into_bytes()
}

fn handshake_seeds() -> Vec<Seed> {
    let t = "handshake";
    let ok = [
        "GET /echo HTTP/1.1",
        "Host: 127.0.0.1",
        "Upgrade: websocket",
        "Connection: keep-alive, Upgrade",
        "Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==",
        "Sec-WebSocket-Version: 13",
    ];
    let with = |i: usize, line: &str| {
        let mut l = ok.to_vec();
        l[i] = line;
        upgrade(&l)
    };
    vec![
        seed(t, "rfc-1-2-opening-handshake", RFC_REQUEST),
        seed(t, "minimal-upgrade", upgrade(&ok)),
        seed(
            t,
            "upgrade-then-frames",
            cat(&[&upgrade(&ok), &client(1, KEY, b"Hello")]),
        ),
        seed(
            t,
            "plain-get-page",
            upgrade(&["GET /?token=abc HTTP/1.1", "Host: localhost"]),
        ),
        seed(t, "http-1-0", with(0, "GET /echo HTTP/1.0")),
        seed(t, "post-method", with(0, "POST /echo HTTP/1.1")),
        seed(
            t,
            "key-15-bytes",
            with(4, "Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4P"),
        ),
        seed(
            t,
            "key-not-base64",
            with(4, "Sec-WebSocket-Key: !QIDBAUGBwgJCgsMDQ4PEA=="),
        ),
        seed(t, "version-8", with(5, "Sec-WebSocket-Version: 8")),
        seed(t, "missing-upgrade", with(2, "X-Upgrade: websocket")),
        seed(
            t,
            "obsolete-line-folding",
            with(3, "Connection: keep-alive,\r\n Upgrade"),
        ),
        seed(t, "header-value-control-char", with(1, "Host: a\x01b")),
        seed(t, "header-name-space", with(1, "Ho st: a")),
        seed(
            t,
            "non-utf8-target",
            b"GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
        ),
        seed(
            t,
            "lf-only-line-ends",
            b"GET / HTTP/1.1\nHost: a\n\n".to_vec(),
        ),
        seed(
            t,
            "five-headers-over-small-limit",
            upgrade(&["GET / HTTP/1.1", "A: 1", "B: 2", "C: 3", "D: 4", "E: 5"]),
        ),
        seed(
            t,
            "request-line-over-small-limit",
            upgrade(&[&format!("GET /{} HTTP/1.1", "a".repeat(60)), "Host: a"]),
        ),
        seed(t, "incomplete-head", &RFC_REQUEST.as_bytes()[..100]),
    ]
}

fn utf8_input(pieces: &[u8], text: &[u8]) -> Vec<u8> {
    cat(&[&[pieces.len() as u8], pieces, text])
}

fn utf8_seeds() -> Vec<Seed> {
    let t = "utf8";
    vec![
        seed(
            t,
            "markus-kuhn-hello-whole",
            utf8_input(&[], "Hello-µ@ßöäüàá-UTF-8!!".as_bytes()),
        ),
        seed(
            t,
            "kosme-split-inside-chars",
            utf8_input(&[1, 2, 3], "κόσμε".as_bytes()),
        ),
        seed(
            t,
            "four-byte-chars-byte-by-byte",
            utf8_input(&[1], b"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"),
        ),
        seed(
            t,
            "surrogate-ed-a0-80",
            utf8_input(&[1, 1], b"ab\xed\xa0\x80cd"),
        ),
        seed(t, "above-max-f4-90", utf8_input(&[1], b"\xf4\x90\x80\x80")),
        seed(t, "overlong-c0-af", utf8_input(&[], b"\xc0\xaf")),
        seed(t, "overlong-e0-80-af", utf8_input(&[2], b"\xe0\x80\xaf")),
        seed(t, "truncated-e2-82-at-end", utf8_input(&[1], b"\xe2\x82")),
        seed(
            t,
            "autobahn-6-4-1-fail-fast",
            utf8_input(
                &[11, 2],
                b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80edited",
            ),
        ),
        seed(t, "empty-pieces", utf8_input(&[0, 0, 3], "€uro".as_bytes())),
    ]
}

fn mask_input(key: [u8; 4], offset: u64, align: u8, cut: u16, data: &[u8]) -> Vec<u8> {
    cat(&[
        &key,
        &offset.to_le_bytes(),
        &[align],
        &cut.to_le_bytes(),
        data,
    ])
}

fn mask_seeds() -> Vec<Seed> {
    let t = "mask";
    let long: Vec<u8> = (0..=255).collect();
    vec![
        seed(
            t,
            "rfc-5-7-hello",
            mask_input(KEY, 0, 0, 0, &[0x7f, 0x9f, 0x4d, 0x51, 0x58]),
        ),
        seed(
            t,
            "256-bytes-offset-3-unaligned-cut-33",
            mask_input(KEY, 3, 5, 33, &long),
        ),
        seed(
            t,
            "7-bytes-below-fast-path",
            mask_input([1, 2, 3, 4], 1, 1, 3, b"1234567"),
        ),
        seed(
            t,
            "40-bytes-block-and-tail",
            mask_input([9; 4], 2, 3, 32, &long[..40]),
        ),
        seed(
            t,
            "huge-offset",
            mask_input(KEY, u64::MAX, 7, 9, &long[..70]),
        ),
    ]
}

fn conn(name: &str, cfg: u8, chunks: &[u8], stream: &[u8], expect: Option<ProtocolError>) -> Seed {
    Seed {
        target: "connection",
        name: name.to_owned(),
        bytes: connection_input(cfg, chunks, stream),
        expect: Some(expect),
    }
}

fn connection_seeds() -> Vec<Seed> {
    use ProtocolError as E;
    let hello = client(1, KEY, b"Hello");
    let close_1000 = client(8, KEY, b"\x03\xe8bye");
    let fragmented = cat(&[
        &frame(false, 0, 1, Some(KEY), b"Hel"),
        &frame(true, 0, 0, Some(KEY), b"lo"),
    ]);
    let empty_continuations: Vec<u8> = cat(&[
        &frame(false, 0, 2, Some(KEY), b""),
        &frame(false, 0, 0, Some(KEY), b"").repeat(12),
    ]);
    vec![
        conn("rfc-5-7-masked-hello", 0, &[], &hello, None),
        conn(
            "rfc-5-7-masked-hello-byte-splits",
            0,
            &[0, 1, 2],
            &hello,
            None,
        ),
        conn("rfc-5-7-fragmented-text", 0, &[], &fragmented, None),
        conn(
            "rfc-5-7-fragmented-text-ping-between-echo",
            0x10,
            &[4],
            &cat(&[
                &frame(false, 0, 1, Some(KEY), b"Hel"),
                &client(9, KEY, b"Hello"),
                &frame(true, 0, 0, Some(KEY), b"lo"),
            ]),
            None,
        ),
        conn("rfc-5-7-ping", 0, &[], &client(9, KEY, b"Hello"), None),
        conn(
            "rfc-5-7-unsolicited-pong",
            0,
            &[],
            &client(10, KEY, b"Hello"),
            None,
        ),
        conn(
            "rfc-5-7-len16-256-binary",
            0,
            &[99],
            &client(2, KEY, &[0xab; 256]),
            None,
        ),
        conn(
            "rfc-5-7-len64-65536-over-frame-limit-1009",
            1,
            &[],
            &header(true, 0, 2, Some(KEY), 65536, LenForm::Minimal),
            Some(E::FrameTooLarge),
        ),
        conn("close-1000-with-reason", 0, &[], &close_1000, None),
        conn("close-empty-body", 0, &[], &client(8, KEY, b""), None),
        conn(
            "data-after-close-ignored",
            0,
            &[3],
            &cat(&[&close_1000, &hello]),
            None,
        ),
        // §5.5.2: having sent our own Close does not excuse the Pong.
        conn(
            "close-first-then-ping-still-answered",
            0x08,
            &[],
            &cat(&[&client(9, KEY, b"p"), &close_1000]),
            None,
        ),
        // Found by the `connection` target: after our own Close, a Ping's Pong follows that
        // Close, so a later failure's output does not end with a Close (and needs no second).
        conn(
            "close-first-ping-then-rsv-frame-pong-after-close",
            0x08,
            &[],
            &[
                0x89, 0x81, 0x37, 0xfa, 0x88, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x34, 0x12, 0x43, 0x44,
                0x52,
            ],
            Some(ProtocolError::ReservedBitsSet(7)),
        ),
        conn(
            "close-1-byte-body",
            0,
            &[],
            &client(8, KEY, b"\x03"),
            Some(E::CloseFrameTooShort),
        ),
        conn(
            "close-1005-never-on-wire",
            0,
            &[],
            &client(8, KEY, b"\x03\xed"),
            Some(E::InvalidCloseCode(1005)),
        ),
        conn(
            "close-reason-invalid-utf8-1007",
            0,
            &[],
            &client(8, KEY, b"\x03\xe8\xc3\x28"),
            Some(E::InvalidUtf8),
        ),
        conn(
            "len16-non-minimal",
            0,
            &[],
            &cat(&[
                &header(true, 0, 2, Some(KEY), 5, LenForm::Force16),
                b"12345",
            ]),
            Some(E::NonMinimalLength),
        ),
        conn(
            "len64-non-minimal",
            0,
            &[],
            &header(true, 0, 2, Some(KEY), 300, LenForm::Force64),
            Some(E::NonMinimalLength),
        ),
        conn(
            "len64-msb-set",
            7,
            &[],
            &header(true, 0, 2, Some(KEY), 1 << 63, LenForm::Force64),
            Some(E::LengthMsbSet),
        ),
        conn(
            "len64-2-pow-62-no-limit-no-allocation",
            7,
            &[],
            &header(true, 0, 2, Some(KEY), 1 << 62, LenForm::Minimal),
            None,
        ),
        conn(
            "len-60mib-default-limit-no-allocation",
            0,
            &[],
            &header(true, 0, 2, Some(KEY), 60 << 20, LenForm::Minimal),
            None,
        ),
        conn(
            "rsv1-set",
            0,
            &[],
            &frame(true, 4, 1, Some(KEY), b"Hello"),
            Some(E::ReservedBitsSet(4)),
        ),
        conn(
            "reserved-opcode-3",
            0,
            &[],
            &client(3, KEY, b""),
            Some(E::ReservedOpcode(3)),
        ),
        conn(
            "reserved-opcode-0xb",
            0,
            &[],
            &client(0xb, KEY, b""),
            Some(E::ReservedOpcode(0xb)),
        ),
        conn(
            "unmasked-text",
            0,
            &[],
            &frame(true, 0, 1, None, b"Hello"),
            Some(E::UnmaskedClientFrame),
        ),
        conn(
            "ping-126-bytes",
            0,
            &[],
            &client(9, KEY, &[0; 126]),
            Some(E::ControlFrameTooLong),
        ),
        conn(
            "fragmented-ping",
            0,
            &[],
            &frame(false, 0, 9, Some(KEY), b"p"),
            Some(E::FragmentedControlFrame),
        ),
        conn(
            "continuation-without-start",
            0,
            &[],
            &frame(true, 0, 0, Some(KEY), b"x"),
            Some(E::UnexpectedContinuation),
        ),
        conn(
            "text-inside-fragmented-message",
            0,
            &[],
            &cat(&[&frame(false, 0, 1, Some(KEY), b"Hel"), &hello]),
            Some(E::ExpectedContinuation),
        ),
        conn(
            "invalid-utf8-fail-fast-unfinished-frame",
            0,
            &[5],
            &cat(&[
                &header(true, 0, 1, Some([0; 4]), 100, LenForm::Minimal),
                b"ok\xf4\x90",
            ]),
            Some(E::InvalidUtf8),
        ),
        conn(
            "text-ends-inside-character",
            0,
            &[],
            &cat(&[
                &frame(false, 0, 1, Some(KEY), b"\xe2\x82"),
                &frame(true, 0, 0, Some(KEY), b""),
            ]),
            Some(E::InvalidUtf8),
        ),
        conn(
            "frame-over-limit-1009",
            2,
            &[],
            &client(2, KEY, &[1; 17]),
            Some(E::FrameTooLarge),
        ),
        conn(
            "message-over-limit-1009",
            2,
            &[],
            &cat(&[
                &frame(false, 0, 2, Some(KEY), &[1; 16]),
                &frame(false, 0, 0, Some(KEY), &[2; 16]),
                &frame(true, 0, 0, Some(KEY), &[3; 16]),
            ]),
            Some(E::MessageTooLarge),
        ),
        conn(
            "empty-continuation-flood-1009",
            2,
            &[],
            &empty_continuations,
            Some(E::MessageTooLarge),
        ),
        conn(
            "zero-limits-empty-text-1009",
            3,
            &[],
            &client(1, KEY, b""),
            Some(E::MessageTooLarge),
        ),
        conn("zero-limits-empty-ping", 3, &[], &client(9, KEY, b""), None),
        conn(
            "client-role-rfc-5-7-unmasked-hello-and-ping",
            0x30,
            &[2],
            &cat(&[
                &frame(true, 0, 1, None, b"Hello"),
                &frame(true, 0, 9, None, b"Hello"),
                &frame(true, 0, 8, None, b"\x03\xe8"),
            ]),
            None,
        ),
        conn(
            "client-role-masked-server-frame",
            0x20,
            &[],
            &hello,
            Some(E::MaskedServerFrame),
        ),
        conn(
            "header-split-across-reads",
            0x10,
            &[0, 0, 2, 4],
            &cat(&[&client(2, KEY, &[7; 200]), &hello]),
            None,
        ),
    ]
}

fn hrana_seeds() -> Vec<Seed> {
    let t = "hrana";
    let s = |name, text: &str| seed(t, name, text);
    vec![
        s("hello-jwt", r#"{"type":"hello","jwt":"t0k"}"#),
        s("hello-no-jwt", r#"{"type":"hello"}"#),
        s(
            "execute-positional-args",
            r#"{"type":"request","request_id":1,"request":{"type":"execute","stream_id":0,"stmt":{"sql":"SELECT ?","args":[{"type":"integer","value":"42"},{"type":"blob","base64":"AAEC"}],"want_rows":true}}}"#,
        ),
        s(
            "batch-with-conditions",
            r#"{"type":"request","request_id":2,"request":{"type":"batch","stream_id":0,"batch":{"steps":[{"stmt":{"sql":"BEGIN"}},{"condition":{"type":"ok","step":0},"stmt":{"sql":"COMMIT"}},{"condition":{"type":"not","cond":{"type":"is_autocommit"}},"stmt":{"sql":"ROLLBACK"}}]}}}"#,
        ),
        s(
            "open-cursor",
            r#"{"type":"request","request_id":3,"request":{"type":"open_cursor","stream_id":0,"cursor_id":1,"batch":{"steps":[]}}}"#,
        ),
        s(
            "value-integer-string",
            r#"{"type":"integer","value":"-9223372036854775808"}"#,
        ),
        s("value-integer-number", r#"{"type":"integer","value":7}"#),
        s("value-float", r#"{"type":"float","value":1.5e-300}"#),
        s(
            "value-text-escapes",
            r#"{"type":"text","value":"a\u00e9\ud83d\ude00\n"}"#,
        ),
        s(
            "value-blob-unpadded",
            r#"{"type":"blob","base64":"AAECAw"}"#,
        ),
        s("value-null", r#"{"type":"null"}"#),
        // Found by the `hrana` target: serde_json's default float parser read this two units
        // in the last place off, so the value changed on the way through; `float_roundtrip`.
        s(
            "value-float-long-digits",
            r#"{"type":"float","value":0.8405117300469474950376713159374e249}"#,
        ),
        s(
            "subprotocols-offered",
            "hrana3-protobuf, hrana3, hrana2, hrana1",
        ),
    ]
}

fn tty_seeds() -> Vec<Seed> {
    let t = "tty";
    vec![
        seed(
            t,
            "ttyd-init-token-and-size",
            r#"{"AuthToken":"s3cret","columns":120,"rows":40}"#,
        ),
        seed(t, "ttyd-init-null-token-no-size", r#"{"AuthToken":null}"#),
        seed(t, "ttyd-init-array-not-object", "[1,2]"),
        seed(t, "ttyd-input-ls", "0ls\r"),
        seed(t, "ttyd-input-binary", b"0\x00\xff\x1b[A".to_vec()),
        seed(t, "ttyd-resize", r#"1{"columns":100,"rows":30}"#),
        seed(
            t,
            "ttyd-resize-size-over-u16",
            r#"1{"columns":70000,"rows":30}"#,
        ),
        seed(t, "ttyd-pause", "2"),
        seed(t, "ttyd-resume-trailing-bytes", "3xyz"),
        seed(t, "server-title-utf8", "1bash — ~"),
        seed(t, "server-preferences", r#"2{"disableStdin":true}"#),
        seed(t, "unknown-type-9", "9"),
    ]
}

/// A small deterministic generator for the structured seeds.
struct XorShift(u64);

impl XorShift {
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                (self.0 >> 32) as u8
            })
            .collect()
    }
}

/// Seeds for the structured target: `arbitrary` has no inverse, so these are the first inputs of
/// a fixed pseudo-random sequence whose decoded script shows the named feature.
fn connection_valid_seeds() -> Vec<Seed> {
    use crate::script::{Control, End, Item, Payload, Script, Violation};
    use arbitrary::{Arbitrary, Unstructured};
    type Pred = fn(&Script) -> bool;
    let wanted: Vec<(&str, Pred)> = vec![
        ("fragmented-text-with-ping-between", |s| {
            s.items.iter().any(|i| {
                matches!(i, Item::Message(m) if matches!(m.payload, Payload::Text(ref t) if t.len() > 2)
                    && m.between.iter().any(|c| matches!(c, Some(Control::Ping(_)))))
            })
        }),
        ("long-message-16-bit-length", |s| {
            s.items.iter().any(|i| matches!(i, Item::Message(m)
                if matches!(m.payload, Payload::Long { len, .. } if (126..65536).contains(&(len % 70_000)))))
        }),
        ("long-message-64-bit-length", |s| {
            s.items.iter().any(|i| {
                matches!(i, Item::Message(m)
                if matches!(m.payload, Payload::Long { len, .. } if len % 70_000 >= 65536))
            })
        }),
        (
            "close-with-reason",
            |s| matches!(&s.end, End::Close { reason, .. } if !reason.is_empty()),
        ),
        ("violation-message-too-big", |s| {
            matches!(s.end, End::Violation(Violation::MessageTooBig))
        }),
        ("violation-bad-utf8-fragmented", |s| {
            matches!(s.end, End::Violation(Violation::BadUtf8(_, true)))
        }),
        ("violation-new-message-inside-fragmented", |s| {
            matches!(
                s.end,
                End::Violation(Violation::NewMessageInsideFragmented(_))
            )
        }),
    ];
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut seeds = Vec::new();
    for (name, pred) in wanted {
        let bytes = (0..200_000)
            .map(|i| rng.bytes(32 + i % 200))
            .find(|b| Script::arbitrary_take_rest(Unstructured::new(b)).is_ok_and(|s| pred(&s)))
            .unwrap_or_else(|| panic!("no input found for {name}"));
        seeds.push(seed("connection_valid", name, bytes));
    }
    seeds
}

fn http_head_input(cfg: u8, split1: u8, split2: u8, bytes: &[u8]) -> Vec<u8> {
    cat(&[&[cfg, split1, split2], bytes])
}

const RFC_RESPONSE: &str = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
Sec-WebSocket-Protocol: chat\r\n\r\n";

/// `http_head` seeds: a configuration byte ([`crate::targets::head_limits`]), two split
/// points (fractions of the length, in 255ths), then a request or a response head.
fn http_head_seeds() -> Vec<Seed> {
    let t = "http_head";
    let h = |name, cfg, s1, s2, bytes: &[u8]| seed(t, name, http_head_input(cfg, s1, s2, bytes));
    vec![
        h(
            "rfc-1-2-request-split-in-thirds",
            0,
            85,
            170,
            RFC_REQUEST.as_bytes(),
        ),
        h(
            "rfc-1-2-response-split-at-blank-line",
            0,
            250,
            254,
            RFC_RESPONSE.as_bytes(),
        ),
        h(
            "request-then-frame-bytes",
            0,
            40,
            200,
            &cat(&[RFC_REQUEST.as_bytes(), &client(1, KEY, b"Hello")]),
        ),
        h(
            "absolute-form-no-path",
            0,
            10,
            20,
            b"GET ws://example.com HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        h(
            "absolute-form-query",
            0,
            30,
            31,
            b"GET http://a.example:8080?q=1 HTTP/1.1\r\n\r\n",
        ),
        h(
            "asterisk-form",
            0,
            0,
            255,
            b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        h(
            "response-no-reason",
            0,
            5,
            6,
            b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
        ),
        h(
            "response-status-two-digits",
            0,
            128,
            128,
            b"HTTP/1.1 20 OK\r\n\r\n",
        ),
        h(
            "response-http-2",
            0,
            1,
            2,
            b"HTTP/2.0 101 Switching Protocols\r\n\r\n",
        ),
        h(
            "request-line-over-16-split-inside",
            0x02,
            50,
            51,
            b"GET /a-long-path-here HTTP/1.1\r\n\r\n",
        ),
        h(
            "head-over-32-bytes-no-end",
            0x08,
            200,
            220,
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: aaaaaaaa",
        ),
        h(
            "zero-fields-allowed-one-sent",
            0x30,
            100,
            200,
            b"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n\r\n",
        ),
        h(
            "cr-split-from-lf",
            0x01,
            127,
            128,
            b"GET / HTTP/1.1\r\nA: b\r\n\r\n",
        ),
        h(
            "obs-fold-in-response",
            0,
            60,
            61,
            b"HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n",
        ),
        h("not-utf8-reason", 0, 20, 21, b"HTTP/1.1 200 \xff\r\n\r\n"),
        h("empty-head-blank-line", 0, 0, 0, b"\r\n\r\n"),
        // Found by the `http_head` target: a reason phrase with a bare CR, a bare LF and a
        // control character was accepted; it is a malformed status line.
        h(
            "reason-with-bare-cr-lf-and-control",
            0,
            250,
            254,
            b"HTTP/1.1 101 OK\rUpgrade: x\n\x05\r\nUpgrade: websocket\r\n\r\n",
        ),
        // Found by the `http_head` target: with a head limit (4) below the line limit (64), a
        // prefix with its first line unfinished failed 431, the whole request 414; both 414 now.
        h(
            "line-limit-over-head-limit-431-vs-414",
            0x0d,
            128,
            255,
            format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(80)).as_bytes(),
        ),
        // Found by the `http_head` target: a first line exactly at the head limit (32) then a
        // CR was 431 at that prefix, 414 for the whole request; the prefix waits now.
        h(
            "line-at-head-limit-then-cr-431-vs-414",
            0x08,
            192,
            255,
            format!("GET /{} HTTP/1.1\rX-Lo: a\r\n\r\n", "a".repeat(18)).as_bytes(),
        ),
    ]
}

/// `hrana_session` seeds: scripts written as actions and encoded into the bytes `arbitrary`
/// reads back (the test below checks that they decode to the same actions).
pub fn hrana_session_scripts() -> Vec<(&'static str, crate::hrana_session::Script)> {
    use crate::hrana_session::{Action as A, Script, Step, Stmt};
    let sql = |i: u8| Stmt {
        sql: i,
        args: 0,
        want_rows: 0,
    };
    let step = |cond: u8, i: u8| Step { cond, stmt: sql(i) };
    let hello = A::Hello {
        jwt: 0,
        later: false,
    };
    // SQLS: 0 SELECT 1, 1 SELECT t, 2 INSERT, 5 BEGIN, 7 COMMIT, 8 ROLLBACK, 12 params,
    // 13 zeroblob, 14 300 rows, 22.. sql_id 0-3, 26 both, 27 neither.
    vec![
        (
            "hello-open-execute-close",
            Script {
                setup: 4,
                actions: vec![
                    hello,
                    A::OpenStream { stream: 2 },
                    A::Execute {
                        stream: 2,
                        stmt: sql(1),
                    },
                    A::CloseStream { stream: 2 },
                    A::Drain,
                ],
            },
        ),
        (
            "wrong-token-hello-error-1008",
            Script {
                setup: 4,
                actions: vec![
                    A::Hello {
                        jwt: 1,
                        later: false,
                    },
                    A::OpenStream { stream: 1 },
                ],
            },
        ),
        (
            "header-auth-hello-without-jwt",
            Script {
                setup: 4 | 8,
                actions: vec![
                    A::Hello {
                        jwt: 4,
                        later: false,
                    },
                    A::OpenStream { stream: 1 },
                    A::GetAutocommit { stream: 1 },
                    A::Drain,
                ],
            },
        ),
        (
            "request-before-hello-1002",
            Script {
                setup: 4,
                actions: vec![A::OpenStream { stream: 1 }],
            },
        ),
        (
            "repeated-hellos-wait-for-the-gate",
            Script {
                setup: 2,
                actions: vec![
                    hello,
                    hello,
                    hello,
                    hello,
                    A::OpenStream { stream: 1 },
                    A::Drain,
                ],
            },
        ),
        (
            "batch-transaction-with-conditions",
            Script {
                setup: 4,
                actions: vec![
                    hello,
                    A::OpenStream { stream: 1 },
                    A::Batch {
                        stream: 1,
                        steps: [step(0, 5), step(1, 2), step(1 | 8, 7)],
                        len: 3,
                    },
                    A::Execute {
                        stream: 1,
                        stmt: Stmt {
                            sql: 12,
                            args: 3 | 0x40,
                            want_rows: 1,
                        },
                    },
                    A::Drain,
                ],
            },
        ),
        (
            "two-streams-race-for-the-write-lock",
            Script {
                setup: 4,
                actions: vec![
                    hello,
                    A::OpenStream { stream: 1 },
                    A::OpenStream { stream: 2 },
                    A::Execute {
                        stream: 1,
                        stmt: sql(6),
                    },
                    A::Execute {
                        stream: 2,
                        stmt: sql(2),
                    },
                    A::Poll,
                    A::Execute {
                        stream: 1,
                        stmt: sql(8),
                    },
                    A::Drain,
                ],
            },
        ),
        (
            "store-sql-over-the-limits",
            Script {
                setup: 4,
                actions: vec![
                    hello,
                    A::StoreSql { sql_id: 0, sql: 14 },
                    A::StoreSql { sql_id: 1, sql: 0 },
                    A::StoreSql { sql_id: 2, sql: 1 },
                    A::OpenStream { stream: 1 },
                    A::Sequence { stream: 1, sql: 23 },
                    A::Describe { stream: 1, sql: 22 },
                    A::CloseSql { sql_id: 0 },
                    A::Drain,
                ],
            },
        ),
        (
            "cursor-fetch-300-rows",
            Script {
                setup: 4,
                actions: vec![
                    hello,
                    A::OpenStream { stream: 1 },
                    A::OpenCursor {
                        stream: 1,
                        cursor: 0,
                        steps: [step(0, 14), step(2, 13)],
                        len: 2,
                    },
                    A::FetchCursor {
                        cursor: 0,
                        max_count: 7,
                    },
                    A::Execute {
                        stream: 1,
                        stmt: sql(0),
                    },
                    A::FetchCursor {
                        cursor: 0,
                        max_count: 0,
                    },
                    A::Drain,
                    A::CloseCursor { cursor: 0 },
                    A::CloseStream { stream: 1 },
                    A::Drain,
                ],
            },
        ),
        (
            "response-too-large",
            Script {
                setup: 1 | 2,
                actions: vec![
                    hello,
                    A::OpenStream { stream: 0 },
                    A::Execute {
                        stream: 0,
                        stmt: sql(13),
                    },
                    A::Execute {
                        stream: 0,
                        stmt: sql(14),
                    },
                ],
            },
        ),
        (
            "server-wide-stream-limit",
            Script {
                setup: 1 | 4,
                actions: vec![
                    hello,
                    A::OpenStream { stream: 0 },
                    A::OpenStream { stream: 1 },
                    A::OpenStream { stream: 2 },
                    A::Execute {
                        stream: 2,
                        stmt: sql(0),
                    },
                    A::CloseStream { stream: 2 },
                    A::CloseStream { stream: 0 },
                    A::Drain,
                    A::OpenStream { stream: 2 },
                ],
            },
        ),
        (
            "large-message-on-the-decoder-thread",
            Script {
                setup: 4,
                actions: vec![
                    hello,
                    A::OpenStream { stream: 1 },
                    A::Large { stream: 1, sql: 1 },
                    A::Execute {
                        stream: 1,
                        stmt: sql(0),
                    },
                    A::Drain,
                ],
            },
        ),
        (
            "hrana1-sequence-is-a-protocol-error",
            Script {
                setup: 0,
                actions: vec![
                    hello,
                    A::OpenStream { stream: 1 },
                    A::Sequence { stream: 1, sql: 0 },
                ],
            },
        ),
        (
            "garbage-after-hello",
            Script {
                setup: 4,
                actions: vec![
                    hello,
                    A::Garbage {
                        pick: 11,
                        bytes: [0; 6],
                    },
                ],
            },
        ),
        (
            "binary-1003",
            Script {
                setup: 5,
                actions: vec![hello, A::Binary],
            },
        ),
    ]
}

fn hrana_session_seeds() -> Vec<Seed> {
    hrana_session_scripts()
        .into_iter()
        .map(|(name, script)| seed("hrana_session", name, script.encode()))
        .collect()
}

/// `tty_session` seeds, like [`hrana_session_scripts`].
pub fn tty_session_scripts() -> Vec<(&'static str, crate::tty_session::Script)> {
    use crate::tty_session::{Action as A, Script};
    let init = A::Init {
        token: 0,
        cols: 5,
        rows: 3,
        later: false,
    };
    vec![
        (
            "init-input-output-exit",
            Script {
                setup: 0,
                actions: vec![
                    init,
                    A::Input { len: 3, fill: b'l' },
                    A::Room { n: 1 },
                    A::Output { len: 10 },
                    A::Ready,
                    A::Exit {
                        code: 1,
                        close_pty: true,
                    },
                    A::Drained,
                    A::Ready,
                ],
            },
        ),
        (
            "wrong-token-1008",
            Script {
                setup: 0,
                actions: vec![
                    A::Init {
                        token: 1,
                        cols: 0,
                        rows: 0,
                        later: false,
                    },
                    A::Input { len: 3, fill: b'x' },
                ],
            },
        ),
        (
            "input-before-init-1008",
            Script {
                setup: 0,
                actions: vec![A::Input { len: 2, fill: b'a' }, init],
            },
        ),
        (
            "header-auth-init-without-token-size-zero",
            Script {
                setup: 8,
                actions: vec![
                    A::Init {
                        token: 4,
                        cols: 1,
                        rows: 4,
                        later: false,
                    },
                    A::Resize { cols: 1, rows: 3 },
                    A::Resize { cols: 5, rows: 5 },
                ],
            },
        ),
        (
            "verdict-waits-input-held",
            Script {
                setup: 16,
                actions: vec![
                    init,
                    A::Input { len: 8, fill: b'q' },
                    A::Judge,
                    A::Room { n: 10 },
                    A::Ready,
                ],
            },
        ),
        (
            "resize-over-u16-1007",
            Script {
                setup: 0,
                actions: vec![init, A::Resize { cols: 6, rows: 3 }],
            },
        ),
        (
            "pause-exit-resume",
            Script {
                setup: 0,
                actions: vec![
                    init,
                    A::Pause,
                    A::Output { len: 40 },
                    A::Exit {
                        code: 3,
                        close_pty: true,
                    },
                    A::Ready,
                    A::Resume,
                    A::Drained,
                    A::Drained,
                ],
            },
        ),
        (
            "high-water-then-client-reads",
            Script {
                setup: 1,
                actions: vec![
                    init,
                    A::Output { len: 5 },
                    A::Ready,
                    A::ClientReads { n: 1 },
                    A::Ready,
                    A::Drained,
                ],
            },
        ),
        (
            "input-backpressure-one-byte",
            Script {
                setup: 1,
                actions: vec![
                    init,
                    A::Input { len: 5, fill: 0 },
                    A::Input { len: 5, fill: 5 },
                    A::Room { n: 1 },
                    A::Ready,
                    A::Room { n: 4 },
                    A::Ready,
                ],
            },
        ),
        (
            "read-only-drops-input",
            Script {
                setup: 4,
                actions: vec![init, A::Input { len: 9, fill: b'r' }, A::Room { n: 9 }],
            },
        ),
        (
            "pty-closes-before-exit",
            Script {
                setup: 2,
                actions: vec![
                    init,
                    A::Output { len: 30 },
                    A::PtyClosed,
                    A::Ready,
                    A::Input { len: 4, fill: b'z' },
                    A::Exit {
                        code: 0,
                        close_pty: false,
                    },
                    A::Ready,
                ],
            },
        ),
        (
            "launch-fails-1011",
            Script {
                setup: 32,
                actions: vec![init],
            },
        ),
        (
            "garbage-while-running",
            Script {
                setup: 0,
                actions: vec![
                    init,
                    A::Garbage {
                        pick: 1,
                        bytes: [0; 4],
                    },
                    A::Garbage {
                        pick: 200,
                        bytes: *b"0abc",
                    },
                    A::Garbage {
                        pick: 8,
                        bytes: [0; 4],
                    },
                ],
            },
        ),
    ]
}

fn tty_session_seeds() -> Vec<Seed> {
    tty_session_scripts()
        .into_iter()
        .map(|(name, script)| seed("tty_session", name, script.encode()))
        .collect()
}

/// Every seed of every target.
pub fn all() -> Vec<Seed> {
    [
        frame_header_seeds(),
        handshake_seeds(),
        utf8_seeds(),
        mask_seeds(),
        connection_seeds(),
        connection_valid_seeds(),
        hrana_seeds(),
        tty_seeds(),
        hrana_session_seeds(),
        tty_session_seeds(),
        http_head_seeds(),
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::oracle;
    use crate::targets;

    fn corpus() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus")
    }

    /// `WRITE_SEEDS=1 cargo test` writes the corpus; otherwise the committed files must be
    /// exactly what this module generates.
    #[test]
    fn committed_corpus_matches_the_generator() {
        let write = std::env::var_os("WRITE_SEEDS").is_some();
        for s in all() {
            let dir = corpus().join(s.target);
            let path = dir.join(&s.name);
            if write {
                std::fs::create_dir_all(&dir).expect("mkdir");
                std::fs::write(&path, &s.bytes).expect("write seed");
            } else {
                let committed = std::fs::read(&path).unwrap_or_else(|e| {
                    panic!("{}: {e} (run WRITE_SEEDS=1 cargo test)", path.display())
                });
                assert_eq!(
                    committed,
                    s.bytes,
                    "{} differs from the generator",
                    path.display()
                );
            }
        }
    }

    /// The structured seeds are written as scripts: their bytes must decode to those scripts.
    #[test]
    fn session_seeds_decode_to_their_scripts() {
        use arbitrary::{Arbitrary, Unstructured};
        for (name, script) in hrana_session_scripts() {
            let bytes = script.encode();
            let back = crate::hrana_session::Script::arbitrary_take_rest(Unstructured::new(&bytes));
            assert_eq!(back.ok(), Some(script), "{name}");
        }
        for (name, script) in tty_session_scripts() {
            let bytes = script.encode();
            let back = crate::tty_session::Script::arbitrary_take_rest(Unstructured::new(&bytes));
            assert_eq!(back.ok(), Some(script), "{name}");
        }
    }

    #[test]
    fn connection_seeds_end_as_their_names_say() {
        for s in all() {
            let Some(expect) = s.expect else { continue };
            let [cfg, count, rest @ ..] = &s.bytes[..] else {
                unreachable!()
            };
            let stream = &rest[usize::from(*count)..];
            let opts = targets::connection_options(*cfg);
            assert_eq!(oracle::expect(stream, opts).error, expect, "{}", s.name);
        }
    }

    /// Every file in the corpus (seeds and anything added later) passes its target's checks.
    #[test]
    fn every_corpus_file_passes_its_target() {
        type Check = fn(&[u8]);
        let targets: [(&str, Check); 11] = [
            ("frame_header", targets::frame_header),
            ("handshake", targets::handshake),
            ("utf8", targets::utf8),
            ("mask", targets::mask),
            ("connection", targets::connection),
            ("hrana", targets::hrana),
            ("tty", targets::tty),
            ("http_head", targets::http_head),
            ("hrana_session", |data| {
                use arbitrary::{Arbitrary, Unstructured};
                if let Ok(s) =
                    crate::hrana_session::Script::arbitrary_take_rest(Unstructured::new(data))
                {
                    crate::hrana_session::check(&s);
                }
            }),
            ("tty_session", |data| {
                use arbitrary::{Arbitrary, Unstructured};
                if let Ok(s) =
                    crate::tty_session::Script::arbitrary_take_rest(Unstructured::new(data))
                {
                    crate::tty_session::check(&s);
                }
            }),
            ("connection_valid", |data| {
                use arbitrary::{Arbitrary, Unstructured};
                if let Ok(s) = crate::script::Script::arbitrary_take_rest(Unstructured::new(data)) {
                    crate::script::check(&s);
                }
            }),
        ];
        for (name, check) in targets {
            let Ok(entries) = std::fs::read_dir(corpus().join(name)) else {
                continue;
            };
            for entry in entries {
                let path = entry.expect("dir entry").path();
                check(&std::fs::read(&path).expect("read"));
            }
        }
    }
}
