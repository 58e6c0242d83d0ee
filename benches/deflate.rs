//! permessage-deflate throughput, ratio and the choices behind the defaults (BENCHMARKS.md).
//!
//! `CARGO_BUILD_JOBS=1 cargo bench --bench deflate` (a plain binary: best of 5 runs of at
//! least 150 ms each). `-- quick` shortens the runs; `-- throughput|sweep|threshold|discard|restart`
//! runs one table (also `levels`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use wsbridge::protocol::deflate::{CodecConfig, Compressor, Decompressor};

/// splitmix64: deterministic data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const WORDS: [&str; 24] = [
    "alpha",
    "bravo",
    "session",
    "user",
    "query",
    "result",
    "timeout",
    "cursor",
    "invoice",
    "Lisbon",
    "pending",
    "active",
    "error",
    "widget",
    "42",
    "2024-05-01",
    "ok",
    "row",
    "table",
    "primary",
    "index",
    "the",
    "of",
    "value",
];

/// Hrana-like JSON: a response carrying a few rows of mixed columns.
fn json_message(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut s = format!(
        "{{\"type\":\"response\",\"request_id\":{},\"response\":{{\"type\":\"execute\",\"result\":{{\"cols\":[{{\"name\":\"id\",\"decltype\":\"INTEGER\"}},{{\"name\":\"name\",\"decltype\":\"TEXT\"}},{{\"name\":\"score\",\"decltype\":\"REAL\"}}],\"rows\":[",
        rng.below(100_000)
    );
    while s.len() < len {
        s += &format!(
            "[{{\"type\":\"integer\",\"value\":\"{}\"}},{{\"type\":\"text\",\"value\":\"{} {} {}\"}},{{\"type\":\"float\",\"value\":{}.{}}}],",
            rng.below(1_000_000),
            rng.pick(&WORDS),
            rng.pick(&WORDS),
            rng.pick(&WORDS),
            rng.below(1000),
            rng.below(100)
        );
    }
    short(s, len, rng, "{\"type\":\"ping\",\"id\":")
}

/// Terminal output: `ls -l` lines, colored compiler and log lines, prompts.
fn terminal_message(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut s = String::new();
    while s.len() < len {
        s += &match rng.below(4) {
            0 => format!(
                "-rw-r--r--  1 dev  staff  {:>6} May {:>2} {:02}:{:02} {}_{}.rs\r\n",
                rng.below(100_000),
                1 + rng.below(28),
                rng.below(24),
                rng.below(60),
                rng.pick(&WORDS),
                rng.pick(&WORDS)
            ),
            1 => format!(
                "\x1b[1m\x1b[32m   Compiling\x1b[0m {}-{} v0.{}.{}\r\n",
                rng.pick(&WORDS),
                rng.pick(&WORDS),
                rng.below(20),
                rng.below(10)
            ),
            2 => format!(
                "2024-05-{:02}T{:02}:{:02}:{:02}.{:03}Z \x1b[33mWARN\x1b[0m {}: {} {} took {}ms\r\n",
                1 + rng.below(28),
                rng.below(24),
                rng.below(60),
                rng.below(60),
                rng.below(1000),
                rng.pick(&WORDS),
                rng.pick(&WORDS),
                rng.pick(&WORDS),
                rng.below(5000)
            ),
            _ => format!(
                "\x1b[01;34mdev@box\x1b[00m:\x1b[01;32m~/{}\x1b[00m$ ",
                rng.pick(&WORDS)
            ),
        };
    }
    short(s, len, rng, "\x1b[K\r")
}

/// Small messages are a short text plus some varying bytes (a keystroke echo, a ping).
fn short(s: String, len: usize, rng: &mut Rng, prefix: &str) -> Vec<u8> {
    if len >= 64 {
        let mut v = s.into_bytes();
        v.truncate(len);
        return v;
    }
    let mut v = format!("{prefix}{}{}", rng.below(1_000_000), rng.pick(&WORDS)).into_bytes();
    v.resize(len, b'}');
    v
}

fn stream(kind: &str, size: usize, total: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng(seed);
    let count = (total / size).clamp(16, 20_000);
    (0..count)
        .map(|_| match kind {
            "json" => json_message(&mut rng, size),
            _ => terminal_message(&mut rng, size),
        })
        .collect()
}

struct Timer {
    min_time: Duration,
}

impl Timer {
    /// Best time of 5 runs for one pass of `f`, each run repeating it for `min_time`.
    fn per_pass(&self, mut f: impl FnMut()) -> Duration {
        let mut best = Duration::MAX;
        for _ in 0..5 {
            let start = Instant::now();
            let mut passes = 0u32;
            while start.elapsed() < self.min_time || passes == 0 {
                f();
                passes += 1;
            }
            best = best.min(start.elapsed() / passes);
        }
        best
    }
}

fn mbps(bytes: usize, time: Duration) -> f64 {
    bytes as f64 / time.as_secs_f64() / 1e6
}

fn codec(
    window_bits: u8,
    mem_level: u8,
    level: u8,
    no_context_takeover: bool,
    min_size: usize,
) -> CodecConfig {
    CodecConfig {
        window_bits,
        compress_no_context_takeover: no_context_takeover,
        decompress_no_context_takeover: no_context_takeover,
        level,
        mem_level,
        min_size,
        low_memory: false,
        compress_all: false,
    }
}

/// Our compressor over a stream: (time per pass, wire bytes, messages compressed).
fn ours_compress(timer: &Timer, cfg: &CodecConfig, msgs: &[Vec<u8>]) -> (Duration, usize, usize) {
    let mut out = Vec::with_capacity(1 << 17);
    let run = |out: &mut Vec<u8>| {
        let mut tx = Compressor::new(cfg);
        let (mut wire, mut compressed) = (0, 0);
        for m in msgs {
            out.clear();
            if tx.compress(m, out) {
                wire += out.len();
                compressed += 1;
            } else {
                wire += m.len();
            }
        }
        (wire, compressed)
    };
    let (wire, compressed) = run(&mut out);
    let time = timer.per_pass(|| {
        black_box(run(&mut out));
    });
    (time, wire, compressed)
}

/// What our compressor sends, kept for the inflate runs (`None`: sent uncompressed).
fn compressed_stream(cfg: &CodecConfig, msgs: &[Vec<u8>]) -> Vec<Option<Vec<u8>>> {
    let mut tx = Compressor::new(cfg);
    msgs.iter()
        .map(|m| {
            let mut out = Vec::new();
            tx.compress(m, &mut out).then_some(out)
        })
        .collect()
}

fn ours_inflate(timer: &Timer, cfg: &CodecConfig, wire: &[Option<Vec<u8>>]) -> Duration {
    let mut out = Vec::with_capacity(1 << 17);
    timer.per_pass(|| {
        let mut rx = Decompressor::new(cfg);
        for payload in wire.iter().flatten() {
            out.clear();
            rx.inflate(payload, &mut out, 1 << 24).unwrap();
            rx.finish(&mut out, 1 << 24).unwrap();
            black_box(&out);
        }
    })
}

/// The ceiling: one bare flate2 stream (memLevel 8), a sync flush per message, nothing else.
fn bare_compress(
    timer: &Timer,
    window_bits: u8,
    level: u8,
    msgs: &[Vec<u8>],
) -> (Duration, usize, Vec<Vec<u8>>) {
    let mut out = Vec::with_capacity(1 << 17);
    let mut kept = Vec::new();
    let mut c =
        Compress::new_with_window_bits(Compression::new(level.into()), false, window_bits.max(9));
    let mut wire = 0;
    for m in msgs {
        out.clear();
        c.compress_vec(m, &mut out, FlushCompress::Sync).unwrap();
        wire += out.len() - 4;
        kept.push(out[..out.len() - 4].to_vec());
    }
    let time = timer.per_pass(|| {
        let mut c = Compress::new_with_window_bits(
            Compression::new(level.into()),
            false,
            window_bits.max(9),
        );
        for m in msgs {
            out.clear();
            c.compress_vec(m, &mut out, FlushCompress::Sync).unwrap();
            black_box(&out);
        }
    });
    (time, wire, kept)
}

fn bare_inflate(timer: &Timer, wire: &[Vec<u8>]) -> Duration {
    let mut out = Vec::with_capacity(1 << 17);
    let mut input = Vec::with_capacity(1 << 17);
    timer.per_pass(|| {
        let mut d = Decompress::new(false);
        for payload in wire {
            out.clear();
            input.clear();
            input.extend_from_slice(payload);
            input.extend_from_slice(&[0, 0, 0xff, 0xff]);
            d.decompress_vec(&input, &mut out, FlushDecompress::Sync)
                .unwrap();
            black_box(&out);
        }
    })
}

const SIZES: [usize; 4] = [20, 1024, 16 * 1024, 64 * 1024];
const TOTAL: usize = 2 << 20;

fn throughput(timer: &Timer, window_bits: u8, mem_level: u8, level: u8, min_size: usize) {
    println!(
        "\n## Throughput: window {window_bits}, memLevel {mem_level}, level {level}, min_size {min_size}"
    );
    println!(
        "| data | size | context | ratio | compress MB/s | inflate MB/s | bare flate2 ratio | bare compress MB/s | bare inflate MB/s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for kind in ["json", "terminal"] {
        for size in SIZES {
            let msgs = stream(kind, size, TOTAL, 1);
            let input: usize = msgs.iter().map(Vec::len).sum();
            for no_ctx in [false, true] {
                let cfg = codec(window_bits, mem_level, level, no_ctx, min_size);
                let (ct, wire, compressed) = ours_compress(timer, &cfg, &msgs);
                let stream_out = compressed_stream(&cfg, &msgs);
                let inflated: usize = msgs
                    .iter()
                    .zip(&stream_out)
                    .filter(|(_, c)| c.is_some())
                    .map(|(m, _)| m.len())
                    .sum();
                let it = ours_inflate(timer, &cfg, &stream_out);
                let bare = if no_ctx {
                    "| – | – | – |".to_string()
                } else {
                    let (bt, bwire, kept) = bare_compress(timer, window_bits, level, &msgs);
                    let bi = bare_inflate(timer, &kept);
                    format!(
                        "| {:.3} | {:.0} | {:.0} |",
                        bwire as f64 / input as f64,
                        mbps(input, bt),
                        mbps(input, bi)
                    )
                };
                println!(
                    "| {kind} | {size} | {} | {:.3} ({}/{} compressed) | {:.0} | {:.0} {bare}",
                    if no_ctx { "no takeover" } else { "takeover" },
                    wire as f64 / input as f64,
                    compressed,
                    msgs.len(),
                    mbps(input, ct),
                    if inflated == 0 {
                        0.0
                    } else {
                        mbps(inflated, it)
                    },
                );
            }
        }
    }
}

fn sweep(timer: &Timer) {
    println!("\n## Settings sweep (1 KiB and 16 KiB messages, json + terminal, 2 MiB each)");
    println!(
        "| window | memLevel | level | compressor bytes | ratio 1K ctx | ratio 1K no-ctx | ratio 16K ctx | MB/s 1K ctx | MB/s 1K no-ctx | MB/s 16K ctx |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let streams: Vec<(usize, Vec<Vec<u8>>)> = [1024usize, 16 * 1024]
        .iter()
        .flat_map(|&size| ["json", "terminal"].map(|k| (size, stream(k, size, TOTAL, 2))))
        .collect();
    for (window_bits, mem_level, level) in [
        (15, 9, 1),
        (15, 8, 1),
        (15, 5, 1),
        (15, 2, 1),
        (15, 1, 1),
        (15, 8, 2),
        (15, 5, 2),
        (14, 1, 1),
        (13, 8, 1),
        (13, 1, 1),
        (12, 8, 1),
        (12, 5, 1),
        (12, 1, 1),
        (12, 5, 2),
        (12, 5, 6),
        (11, 1, 1),
        (10, 1, 1),
        (9, 1, 1),
    ] {
        let mut cells = Vec::new();
        let mut speeds = Vec::new();
        for (size, no_ctx) in [(1024, false), (1024, true), (16 * 1024, false)] {
            let cfg = codec(window_bits, mem_level, level, no_ctx, 0);
            let (mut t, mut wire, mut input) = (Duration::ZERO, 0, 0);
            for (s, msgs) in &streams {
                if *s == size {
                    let (ct, w, _) = ours_compress(timer, &cfg, msgs);
                    t += ct;
                    wire += w;
                    input += msgs.iter().map(Vec::len).sum::<usize>();
                }
            }
            cells.push(format!("{:.3}", wire as f64 / input as f64));
            speeds.push(format!("{:.0}", mbps(input, t)));
        }
        let bytes = {
            let cfg = codec(window_bits, mem_level, level, false, 0);
            let mut tx = Compressor::new(&cfg);
            tx.compress(&[b'a'; 100], &mut Vec::new());
            tx.held_bytes()
        };
        println!(
            "| {window_bits} | {mem_level} | {level} | {bytes} | {} | {} |",
            cells.join(" | "),
            speeds.join(" | ")
        );
    }
}

fn threshold(timer: &Timer) {
    println!(
        "\n## Small messages: is compressing worth it? (window 15, memLevel 8, level 1; min_size 0)"
    );
    println!(
        "| data | size | context | share sent compressed | bytes saved per message | ns per message (compress + inflate) |"
    );
    println!("|---|---|---|---|---|---|");
    for kind in ["json", "terminal"] {
        for size in [4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256] {
            let msgs = stream(kind, size, 100 * size, 3);
            for no_ctx in [false, true] {
                let cfg = codec(15, 8, 1, no_ctx, 0);
                let (ct, wire, compressed) = ours_compress(timer, &cfg, &msgs);
                let it = ours_inflate(timer, &cfg, &compressed_stream(&cfg, &msgs));
                let input: usize = msgs.iter().map(Vec::len).sum();
                println!(
                    "| {kind} | {size} | {} | {:.0}% | {:.1} | {:.0} |",
                    if no_ctx { "no takeover" } else { "takeover" },
                    100.0 * compressed as f64 / msgs.len() as f64,
                    (input - wire) as f64 / msgs.len() as f64,
                    (ct + it).as_nanos() as f64 / msgs.len() as f64
                );
            }
        }
    }
}

/// With context takeover, a message that does not shrink has entered the window: restart and
/// send it raw, or send the compressed form if at most `slack` bytes longer (`None`: always).
/// Simulated on zlib-rs directly, with the codec's own logic; zlib-rs has no state copy.
fn simulate(msgs: &[Vec<u8>], slack: Option<usize>) -> usize {
    let zcfg = zlib_rs::DeflateConfig {
        level: 1,
        method: zlib_rs::Method::Deflated,
        window_bits: -15,
        mem_level: 8,
        strategy: zlib_rs::Strategy::Default,
    };
    let mut d = zlib_rs::Deflate::new_with_config(zcfg);
    let mut out = vec![0u8; 1 << 17];
    let mut wire = 0;
    for m in msgs {
        let max_len = slack.map_or(out.len() - 8, |s| (m.len() + s).saturating_sub(1));
        let room = max_len + 5;
        let before = d.total_out();
        let _ = d.compress(m, &mut out[..room], zlib_rs::DeflateFlush::SyncFlush);
        let produced = (d.total_out() - before) as usize;
        if produced < room {
            wire += produced - 4;
        } else {
            d.reset();
            wire += m.len();
        }
    }
    wire
}

fn discard(timer: &Timer) {
    println!(
        "\n## Messages that do not shrink, context takeover (window 15, memLevel 8, level 1): wire bytes"
    );
    println!(
        "| stream | raw | restart, send raw | slack 8 | slack 16 | slack 64 | always compressed | codec MB/s |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mixes: [(&str, usize, usize); 7] = [
        ("json", 20, 0),
        ("terminal", 20, 0),
        ("json", 48, 0),
        ("json", 256, 10),
        ("json", 256, 4),
        ("json", 2048, 10),
        ("json", 2048, 3),
    ];
    for (kind, size, every) in mixes {
        let mut rng = Rng(9);
        let msgs: Vec<Vec<u8>> = (0..2000)
            .map(|i| {
                if every != 0 && i % every == 0 {
                    (0..size).map(|_| rng.next() as u8).collect()
                } else if kind == "json" {
                    json_message(&mut rng, size)
                } else {
                    terminal_message(&mut rng, size)
                }
            })
            .collect();
        let raw: usize = msgs.iter().map(Vec::len).sum();
        let cells: Vec<String> = [Some(0), Some(8), Some(16), Some(64), None]
            .iter()
            .map(|&slack| simulate(&msgs, slack).to_string())
            .collect();
        let (ct, _, _) = ours_compress(timer, &codec(15, 8, 1, false, 0), &msgs);
        let label = if every == 0 {
            format!("{kind} {size} B")
        } else {
            format!("{kind} {size} B, 1 in {every} random")
        };
        println!(
            "| {label} | {raw} | {} | {:.0} |",
            cells.join(" | "),
            mbps(raw, ct)
        );
    }
}

/// zlib-rs's levels on text, ours and bare flate2 (memLevel 8), context takeover.
fn levels(timer: &Timer) {
    println!("\n## Levels (window 15, memLevel 8, context takeover)");
    println!(
        "| level | json 1K ratio | json 1K MB/s | json 16K ratio | json 16K MB/s | terminal 16K ratio | terminal 16K MB/s | bare flate2 json 16K MB/s |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let j1 = stream("json", 1024, TOTAL, 5);
    let j16 = stream("json", 16 * 1024, TOTAL, 5);
    let t16 = stream("terminal", 16 * 1024, TOTAL, 5);
    for level in [1, 2, 3, 4, 6, 9] {
        let cfg = codec(15, 8, level, false, 0);
        let mut cells = Vec::new();
        for msgs in [&j1, &j16, &t16] {
            let input: usize = msgs.iter().map(Vec::len).sum();
            let (t, wire, _) = ours_compress(timer, &cfg, msgs);
            cells.push(format!(
                "{:.3} | {:.0}",
                wire as f64 / input as f64,
                mbps(input, t)
            ));
        }
        let input: usize = j16.iter().map(Vec::len).sum();
        let (bt, _, _) = bare_compress(timer, 15, level, &j16);
        println!(
            "| {level} | {} | {:.0} |",
            cells.join(" | "),
            mbps(input, bt)
        );
    }
}

/// The cost of forgetting after each message: reset versus free and allocate again.
fn restart(timer: &Timer) {
    println!(
        "\n## No context takeover: per-message cost of reset vs free-and-reallocate (1 KiB json)"
    );
    println!("| window | memLevel | reset µs/msg | low_memory µs/msg | takeover µs/msg |");
    println!("|---|---|---|---|---|");
    let msgs = stream("json", 1024, 1 << 20, 4);
    for (window_bits, mem_level) in [(15, 8), (12, 5), (9, 1)] {
        let mut cells = Vec::new();
        for (no_ctx, low_memory) in [(true, false), (true, true), (false, false)] {
            let cfg = CodecConfig {
                low_memory,
                ..codec(window_bits, mem_level, 1, no_ctx, 0)
            };
            let (t, _, _) = ours_compress(timer, &cfg, &msgs);
            cells.push(format!("{:.2}", t.as_secs_f64() * 1e6 / msgs.len() as f64));
        }
        println!("| {window_bits} | {mem_level} | {} |", cells.join(" | "));
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let quick = args.iter().any(|a| a == "quick");
    let timer = Timer {
        min_time: Duration::from_millis(if quick { 20 } else { 150 }),
    };
    let want = |name: &str| args.iter().all(|a| a == "quick") || args.iter().any(|a| a == name);
    if want("throughput") {
        throughput(&timer, 15, 8, 1, 0);
        throughput(&timer, 12, 5, 1, 0);
    }
    if want("sweep") {
        sweep(&timer);
    }
    if want("threshold") {
        threshold(&timer);
    }
    if want("levels") {
        levels(&timer);
    }
    if want("discard") {
        discard(&timer);
    }
    if want("restart") {
        restart(&timer);
    }
}
