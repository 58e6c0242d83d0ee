//! The permessage-deflate targets (RFC 7692): inflation under a limit (a bomb costs the limit,
//! not what it would expand to), the extension header parser and negotiation, and differential
//! round trips (what the compressor makes, the inflater gives back).

use arbitrary::{Arbitrary, Unstructured};
use wsbridge::protocol::deflate::codec::TAKEOVER_SLACK;
use wsbridge::protocol::deflate::extension::{Extension, parse_extensions};
use wsbridge::protocol::deflate::{
    ClientOffer, CodecConfig, Compressor, Decompressor, DeflateError, ServerPolicy,
};

use crate::alloc;

/// The heap block of a zlib-rs inflater (state and 32 KiB window), rounded up.
const INFLATER_BLOCK: usize = 48 * 1024;

#[derive(Debug, Arbitrary)]
struct InflateInput {
    /// The most a message may inflate to.
    limit: u16,
    /// Scales the limit up to 16 MiB, so both small and bomb-sized limits are tried.
    limit_shift: u8,
    /// The peer resets its window after each message.
    no_context_takeover: bool,
    /// Payloads are fed in pieces of this many bytes (0: whole).
    piece: u8,
    /// The compressed payloads, one per message; the fuzzer makes them up.
    messages: Vec<Vec<u8>>,
}

/// Inflate fuzzer-made compressed messages under a limit. Invariants: no panic; each call's
/// output stays within the limit (an `Ok` message is at most `limit` bytes, an `Err` leaves the
/// output as it was); errors are only `TooBig` or `InvalidData`; and no allocation is larger
/// than the output limit (+1 to detect an overrun) or the inflater's own block, whatever the
/// data would expand to.
pub fn deflate_inflate(data: &[u8]) {
    let Ok(input) = InflateInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let limit = (usize::from(input.limit) << (input.limit_shift % 9)).min(16 << 20);
    let config = CodecConfig {
        window_bits: 15,
        compress_no_context_takeover: false,
        decompress_no_context_takeover: input.no_context_takeover,
        level: 1,
        mem_level: 8,
        min_size: 0,
        low_memory: false,
        compress_all: false,
    };
    let mut rx = Decompressor::new(&config);
    let mut out = Vec::new();
    let ((), largest) = alloc::watch(|| {
        for message in &input.messages {
            out.clear();
            let piece = if input.piece == 0 {
                message.len().max(1)
            } else {
                usize::from(input.piece)
            };
            let result = message
                .chunks(piece)
                .try_for_each(|chunk| rx.inflate(chunk, &mut out, limit))
                .and_then(|()| rx.finish(&mut out, limit));
            match result {
                Ok(()) => assert!(out.len() <= limit, "{} > {limit}", out.len()),
                Err(DeflateError::TooBig | DeflateError::InvalidData) => {
                    assert!(out.len() <= limit);
                    // The connection fails here: nothing more is read.
                    return;
                }
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
    });
    assert!(
        largest <= (limit + 1).max(INFLATER_BLOCK),
        "an allocation of {largest} bytes under a limit of {limit}"
    );
}

/// The extension header parser and negotiation. Invariants: no panic on any input; a parsed
/// list written back and parsed again is the same list; whatever the server answers is one
/// well-formed permessage-deflate element with windows in 8..=15, and a client that offered
/// everything accepts it; whatever a client accepts has windows in 8..=15.
pub fn deflate_extensions(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parsed: Vec<Extension<'_>> = Vec::new();
    if parse_extensions(&text, &mut parsed).is_ok() {
        let written = parsed
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let mut again = Vec::new();
        parse_extensions(&written, &mut again).expect("what we write parses");
        assert_eq!(parsed, again, "{text:?} -> {written:?}");
    }
    for policy in [
        ServerPolicy::default(),
        ServerPolicy {
            max_window_bits: 9 + data.len() as u8 % 7,
            no_context_takeover: true,
            request_client_no_context_takeover: true,
            ..ServerPolicy::default()
        },
    ] {
        if let Ok(Some(accepted)) = policy.negotiate([&*text]) {
            let p = accepted.params;
            assert!((8..=15).contains(&p.server_max_window_bits));
            assert!((8..=15).contains(&p.client_max_window_bits));
            let mut answer = Vec::new();
            parse_extensions(&accepted.response, &mut answer).expect("our answer parses");
            assert_eq!(answer.len(), 1);
            // A client that offered every parameter (asking for nothing) takes any valid answer
            // as the server meant it, except that it only reads windows it asked about.
            let everything = ClientOffer {
                client_max_window_bits: Some(15),
                ..ClientOffer::default()
            };
            let seen = everything
                .accept([accepted.response.as_str()])
                .expect("our answer is valid");
            assert_eq!(
                seen.map(|s| s.server_max_window_bits),
                Some(p.server_max_window_bits)
            );
        }
    }
    if let Ok(Some(params)) = ClientOffer::default().accept([&*text]) {
        assert!((8..=15).contains(&params.server_max_window_bits));
        assert!((8..=15).contains(&params.client_max_window_bits));
    }
}

#[derive(Debug, Arbitrary)]
struct RoundTripInput {
    window_bits: u8,
    mem_level: u8,
    level: u8,
    min_size: u8,
    no_context_takeover: bool,
    low_memory: bool,
    release_every: u8,
    piece: u8,
    messages: Vec<Vec<u8>>,
}

/// Differential round trip: fuzzer-made messages through our compressor, then through our
/// inflater (in pieces) and through a bare flate2 inflater that never resets (a reader with a
/// 32 KiB window and context takeover can read any valid stream). Invariants: a compressed
/// message is shorter than the original (or at most `TAKEOVER_SLACK` longer, with context
/// takeover); both inflaters give the original back; releasing the
/// compressor at any point keeps the stream readable.
pub fn deflate_roundtrip(data: &[u8]) {
    let Ok(input) = RoundTripInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let config = CodecConfig {
        window_bits: 8 + input.window_bits % 8,
        compress_no_context_takeover: input.no_context_takeover,
        decompress_no_context_takeover: input.no_context_takeover,
        level: 1 + input.level % 9,
        mem_level: 1 + input.mem_level % 9,
        min_size: usize::from(input.min_size),
        low_memory: input.low_memory,
        compress_all: false,
    };
    let mut tx = Compressor::new(&config);
    let mut rx = Decompressor::new(&config);
    let mut reference = flate2::Decompress::new(false);
    let mut wire = Vec::new();
    let mut back = Vec::new();
    for (i, message) in input.messages.iter().enumerate() {
        if input.release_every != 0 && i % usize::from(input.release_every) == 0 {
            tx.release();
        }
        wire.clear();
        if !tx.compress(message, &mut wire) {
            assert!(
                wire.is_empty(),
                "a declined message leaves the output alone"
            );
            continue;
        }
        // Shorter, except that with context takeover a little growth keeps the window in step.
        let slack = if config.compress_no_context_takeover {
            0
        } else {
            TAKEOVER_SLACK + 1
        };
        assert!(wire.len() < message.len() + slack, "{config:?}");
        back.clear();
        let piece = usize::from(input.piece).max(1);
        for chunk in wire.chunks(piece) {
            rx.inflate(chunk, &mut back, message.len())
                .expect("our own output inflates");
        }
        rx.finish(&mut back, message.len())
            .expect("our own output inflates");
        assert_eq!(&back, message, "{config:?}");

        let mut framed = wire.clone();
        framed.extend_from_slice(&[0x00, 0x00, 0xff, 0xff]);
        let mut plain = Vec::with_capacity(message.len() + 1);
        reference
            .decompress_vec(&framed, &mut plain, flate2::FlushDecompress::Sync)
            .expect("a bare inflater reads it");
        assert_eq!(&plain, message, "{config:?}");
    }
}
