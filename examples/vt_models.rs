//! The terminal models measured for the server's screen (`src/routes/tty/screen.rs`): the
//! `vt100` crate against `alacritty_terminal`, on four kinds of output, fed in 64 KiB pieces as
//! the PTY gives them, and vte's parser alone (what both build on) for the floor.
//!
//! `cargo run --release --example vt_models`

use std::num::NonZeroU16;
use std::time::Instant;

use alacritty_terminal::event::VoidListener;
use alacritty_terminal::term::test::TermSize;
use alacritty_terminal::term::{Config, Term};
use alacritty_terminal::vte::ansi::Processor;

fn corpora() -> Vec<(&'static str, Vec<u8>)> {
    let mut bench_lines = Vec::new();
    for line in 0..1_000_000u32 {
        bench_lines.extend_from_slice(
            format!("line {line:>10}: the quick brown fox jumps over the lazy dog 0123456789\r\n")
                .as_bytes(),
        );
    }
    let mut seq = Vec::new();
    for i in 0..1_500_000u32 {
        seq.extend_from_slice(format!("{i}\r\n").as_bytes());
    }
    let mut ls = Vec::new();
    for i in 0..300_000u32 {
        ls.extend_from_slice(
            format!("\x1b[01;34mdir{i}\x1b[0m  \x1b[01;32mexec{i}\x1b[0m  file-{i}.txt\r\n")
                .as_bytes(),
        );
    }
    let mut top = Vec::new();
    for frame in 0..20_000u32 {
        top.extend_from_slice(b"\x1b[H");
        for row in 0..24 {
            top.extend_from_slice(
                format!(
                    "\x1b[{};1H\x1b[7m{:5}\x1b[0m process {:>8} {:>6.1}%\x1b[K",
                    row + 1,
                    frame + row,
                    frame * 7 + row,
                    f64::from(frame % 100) / 3.0
                )
                .as_bytes(),
            );
        }
    }
    vec![
        ("tty_bench lines", bench_lines),
        ("seq", seq),
        ("ls --color", ls),
        ("top redraws", top),
    ]
}

fn rate(bytes: usize, start: Instant) -> f64 {
    bytes as f64 / start.elapsed().as_secs_f64() / 1e6
}

struct Count(usize);

impl alacritty_terminal::vte::Perform for Count {
    fn print(&mut self, _c: char) {
        self.0 += 1;
    }
}

fn main() {
    let rows = NonZeroU16::new(24).expect("rows");
    let cols = NonZeroU16::new(80).expect("cols");
    println!(
        "| output | MB | vt100 MB/s | alacritty MB/s | wsbridge's model MB/s | vte alone MB/s |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, data) in corpora() {
        let start = Instant::now();
        let mut vt100 = vt100::Parser::new(rows, cols, 1000);
        for piece in data.chunks(64 << 10) {
            vt100.process(piece);
        }
        let vt100_rate = rate(data.len(), start);

        let start = Instant::now();
        let config = Config {
            scrolling_history: 1000,
            ..Config::default()
        };
        let mut term = Term::new(config, &TermSize::new(80, 24), VoidListener);
        let mut parser: Processor = Processor::new();
        for piece in data.chunks(64 << 10) {
            parser.advance(&mut term, piece);
        }
        let alacritty_rate = rate(data.len(), start);

        // wsbridge's model: alacritty's, fed in batches with plain runs skipped.
        let start = Instant::now();
        let size = wsbridge::routes::tty::sys::WinSize { cols: 80, rows: 24 };
        let mut model = wsbridge::routes::tty::screen::ScreenModel::new(size, 500);
        for piece in data.chunks(64 << 10) {
            model.feed(piece);
        }
        model.settle();
        let model_rate = rate(data.len(), start);

        let start = Instant::now();
        let mut vte = alacritty_terminal::vte::Parser::new();
        let mut count = Count(0);
        for piece in data.chunks(64 << 10) {
            vte.advance(&mut count, piece);
        }
        let vte_rate = rate(data.len(), start);
        assert!(count.0 > 0);
        println!(
            "| {name} | {} | {vt100_rate:.0} | {alacritty_rate:.0} | {model_rate:.0} | {vte_rate:.0} |",
            data.len() / 1_000_000
        );
    }
}
