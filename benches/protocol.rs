//! Criterion micro-benchmarks of the protocol core, each group with tungstenite's equivalent
//! beside ours, at payload sizes 16 B, 125 B, 1 KiB, 16 KiB and 1 MiB.
//!
//! `cargo bench --bench protocol` (add `-- mask` to run one group). Results: BENCHMARKS.md.

use std::hint::black_box;
use std::io::{Cursor, Read, Write};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tungstenite::protocol::{Role as TRole, WebSocketContext};
use tungstenite::{Bytes, Message as TMessage};
use wsbridge::protocol::frame::{OpCode, write_frame};
use wsbridge::protocol::handshake::server::{Accept, validate_upgrade, write_accept_response};
use wsbridge::protocol::http::{HeadLimits, parse_request};
use wsbridge::protocol::mask::{apply_mask, apply_mask_reference};
use wsbridge::protocol::utf8::Utf8Validator;
use wsbridge::protocol::{Connection, Event, Limits};

const SIZES: [usize; 5] = [16, 125, 1024, 16 * 1024, 1 << 20];
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 31 + 7) as u8).collect()
}

/// In-memory stream for tungstenite: reads from a buffer, writes into a Vec.
struct Duplex {
    input: Cursor<Vec<u8>>,
    output: Vec<u8>,
}

impl Read for Duplex {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Duplex {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn bench_mask(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let mut buf = payload(size);
        let source = payload(size);
        group.bench_with_input(BenchmarkId::new("wsbridge", size), &size, |b, _| {
            b.iter(|| apply_mask(black_box(&mut buf), KEY, 0))
        });
        group.bench_with_input(BenchmarkId::new("reference-loop", size), &size, |b, _| {
            b.iter(|| apply_mask_reference(black_box(&mut buf), KEY, 0))
        });
        group.bench_with_input(BenchmarkId::new("memcpy-ceiling", size), &size, |b, _| {
            b.iter(|| buf.copy_from_slice(black_box(&source)))
        });
    }
    group.finish();
}

/// A stream of client frames carrying about 256 KiB (at least one message), each message in
/// `fragments` frames.
fn client_stream(size: usize, fragments: usize) -> (Vec<u8>, usize) {
    let data = payload(size);
    let messages = (256 * 1024 / size).max(1);
    let mut stream = Vec::new();
    for _ in 0..messages {
        let piece = size.div_ceil(fragments).max(1);
        let chunks: Vec<&[u8]> = data.chunks(piece).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let opcode = if i == 0 {
                OpCode::Binary
            } else {
                OpCode::Continuation
            };
            write_frame(&mut stream, i + 1 == chunks.len(), opcode, Some(KEY), chunk);
        }
    }
    (stream, messages)
}

fn bench_decode(c: &mut Criterion) {
    for (name, fragments) in [("decode", 1), ("decode-fragmented", 4)] {
        let mut group = c.benchmark_group(name);
        for size in SIZES {
            let (stream, messages) = client_stream(size, fragments);
            group.throughput(Throughput::Bytes((size * messages) as u64));
            group.bench_with_input(BenchmarkId::new("wsbridge", size), &size, |b, _| {
                b.iter_batched_ref(
                    || (stream.clone(), Vec::new()),
                    |(input, out)| {
                        let mut conn = Connection::server(Limits::default());
                        let mut pos = 0;
                        let mut seen = 0;
                        while pos < input.len() {
                            let received =
                                conn.handle_bytes(&mut input[pos..], out).expect("valid");
                            pos += received.consumed;
                            if let Some(Event::Message(m)) = received.event {
                                black_box(m);
                                seen += 1;
                            }
                        }
                        assert_eq!(seen, messages);
                    },
                    BatchSize::LargeInput,
                )
            });
            group.bench_with_input(BenchmarkId::new("tungstenite", size), &size, |b, _| {
                b.iter_batched_ref(
                    || Duplex {
                        input: Cursor::new(stream.clone()),
                        output: Vec::new(),
                    },
                    |duplex| {
                        let mut ws = WebSocketContext::new(TRole::Server, None);
                        for _ in 0..messages {
                            black_box(ws.read(duplex).expect("valid"));
                        }
                    },
                    BatchSize::LargeInput,
                )
            });
        }
        group.finish();
    }
}

fn bench_encode(c: &mut Criterion) {
    for (name, role) in [
        ("encode-server", TRole::Server),
        ("encode-client-masked", TRole::Client),
    ] {
        let mut group = c.benchmark_group(name);
        for size in SIZES {
            group.throughput(Throughput::Bytes(size as u64));
            let data = payload(size);
            let bytes = Bytes::from(data.clone());
            let mut conn = match role {
                TRole::Server => Connection::server(Limits::default()),
                TRole::Client => Connection::client(Limits::default(), [9; 32]),
            };
            let mut out = Vec::with_capacity(size + 14);
            group.bench_with_input(BenchmarkId::new("wsbridge", size), &size, |b, _| {
                b.iter(|| {
                    out.clear();
                    conn.sender().send_binary(black_box(&data), &mut out);
                    black_box(&out);
                })
            });
            let mut ws = WebSocketContext::new(role, None);
            let mut sink = Duplex {
                input: Cursor::new(Vec::new()),
                output: Vec::with_capacity(size + 14),
            };
            group.bench_with_input(BenchmarkId::new("tungstenite", size), &size, |b, _| {
                b.iter(|| {
                    sink.output.clear();
                    ws.write(&mut sink, TMessage::Binary(bytes.clone()))
                        .expect("write");
                    ws.flush(&mut sink).expect("flush");
                    black_box(&sink.output);
                })
            });
        }
        group.finish();
    }
}

fn text(size: usize) -> Vec<u8> {
    // Mostly ASCII with a two-byte and a three-byte character every 64 bytes.
    let mut s = String::with_capacity(size + 4);
    while s.len() < size {
        s.push_str("The quick brown fox jumps over the lazy dog, é and € too. ");
    }
    let mut end = size;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.into_bytes()
}

fn bench_utf8(c: &mut Criterion) {
    let mut group = c.benchmark_group("utf8");
    for size in SIZES {
        let data = text(size);
        group.throughput(Throughput::Bytes(data.len() as u64));
        group.bench_with_input(BenchmarkId::new("wsbridge-whole", size), &size, |b, _| {
            b.iter(|| {
                let mut v = Utf8Validator::new();
                v.feed(black_box(&data)).expect("valid");
                v.finish().expect("valid");
            })
        });
        group.bench_with_input(
            BenchmarkId::new("wsbridge-in-1000-byte-pieces", size),
            &size,
            |b, _| {
                b.iter(|| {
                    let mut v = Utf8Validator::new();
                    for piece in black_box(&data).chunks(1000) {
                        v.feed(piece).expect("valid");
                    }
                    v.finish().expect("valid");
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("std-from-utf8", size), &size, |b, _| {
            b.iter(|| std::str::from_utf8(black_box(&data)).expect("valid").len())
        });
    }
    group.finish();
}

const BROWSER_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
Host: 127.0.0.1:6455\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: http://127.0.0.1:6455\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";

fn bench_handshake(c: &mut Criterion) {
    let mut group = c.benchmark_group("handshake");
    group.throughput(Throughput::Bytes(BROWSER_REQUEST.len() as u64));
    let limits = HeadLimits::default();
    let mut out = Vec::with_capacity(256);
    group.bench_function("wsbridge", |b| {
        b.iter(|| {
            let (head, _) = parse_request(black_box(BROWSER_REQUEST), &limits)
                .expect("valid")
                .expect("complete");
            let upgrade = validate_upgrade(&head).expect("valid");
            out.clear();
            write_accept_response(upgrade.key, Accept::default(), &mut out);
            black_box(&out);
        })
    });
    group.bench_function("tungstenite", |b| {
        b.iter(|| {
            let duplex = Duplex {
                input: Cursor::new(BROWSER_REQUEST.to_vec()),
                output: Vec::with_capacity(256),
            };
            let ws = tungstenite::accept(duplex).expect("valid");
            black_box(ws.get_ref().output.len());
        })
    });
    group.finish();
}

/// permessage-deflate (RFC 7692 §7.2): wsbridge's codec against a bare flate2 (zlib-rs) stream
/// doing the same work (the ceiling), per message size, with context takeover (the stream goes on
/// from message to message) and without (our compressor resets after each).
fn bench_deflate(c: &mut Criterion) {
    use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
    use wsbridge::protocol::Role;
    use wsbridge::protocol::deflate::{CodecConfig, Compressor, Decompressor, DeflateParams};
    let params = |no_context_takeover| DeflateParams {
        server_no_context_takeover: no_context_takeover,
        client_no_context_takeover: no_context_takeover,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    let mut group = c.benchmark_group("deflate");
    for size in [1024usize, 16 * 1024] {
        let message = text(size);
        group.throughput(Throughput::Bytes(size as u64));
        for (name, nct) in [("takeover", false), ("no_takeover", true)] {
            let config = CodecConfig::new(&params(nct), Role::Server);
            let mut tx = Compressor::new(&config);
            let mut out = Vec::with_capacity(2 * size);
            group.bench_with_input(
                BenchmarkId::new(format!("compress/{name}"), size),
                &message,
                |b, m| {
                    b.iter(|| {
                        out.clear();
                        tx.compress(m, &mut out)
                    })
                },
            );
            // A stream of the same message compressed over and over, inflated message by message.
            let mut wire = Vec::new();
            let mut sender = Compressor::new(&config);
            let receiver_config = CodecConfig::new(&params(nct), Role::Client);
            let mut rx = Decompressor::new(&receiver_config);
            let mut plain = Vec::with_capacity(2 * size);
            group.bench_with_input(
                BenchmarkId::new(format!("inflate/{name}"), size),
                &message,
                |b, m| {
                    b.iter_batched_ref(
                        || {
                            wire.clear();
                            sender.compress(m, &mut wire);
                            wire.clone()
                        },
                        |w| {
                            plain.clear();
                            rx.inflate(w, &mut plain, usize::MAX).unwrap();
                            rx.finish(&mut plain, usize::MAX).unwrap();
                        },
                        BatchSize::SmallInput,
                    )
                },
            );
        }
        let mut bare = Compress::new(Compression::fast(), false);
        let mut out = Vec::with_capacity(2 * size);
        group.bench_with_input(
            BenchmarkId::new("compress/bare_flate2", size),
            &message,
            |b, m| {
                b.iter(|| {
                    out.clear();
                    bare.compress_vec(m, &mut out, FlushCompress::Sync).unwrap()
                })
            },
        );
        let mut bare_tx = Compress::new(Compression::fast(), false);
        let mut bare_rx = Decompress::new(false);
        let mut plain = Vec::with_capacity(2 * size);
        group.bench_with_input(
            BenchmarkId::new("inflate/bare_flate2", size),
            &message,
            |b, m| {
                b.iter_batched_ref(
                    || {
                        let mut w = Vec::with_capacity(2 * size);
                        bare_tx
                            .compress_vec(m, &mut w, FlushCompress::Sync)
                            .unwrap();
                        w
                    },
                    |w| {
                        plain.clear();
                        bare_rx
                            .decompress_vec(w, &mut plain, FlushDecompress::Sync)
                            .unwrap()
                    },
                    BatchSize::SmallInput,
                )
            },
        );
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_deflate,
    bench_mask,
    bench_decode,
    bench_encode,
    bench_utf8,
    bench_handshake
);
criterion_main!(benches);
