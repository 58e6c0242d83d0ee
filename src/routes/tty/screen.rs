//! The server's model of a terminal's screen: every byte the program writes goes through a VT
//! parser into a grid of cells (alacritty's, `alacritty_terminal`), so that a client attaching
//! later can be given the screen exactly as it stands, scrollback included, instead of a tail
//! of raw output cut in the middle of an escape sequence.
//!
//! Chosen by measurement (`cargo run --release --example vt_models`, MB/s, 64 KiB pieces):
//!
//! | output | vt100 | alacritty | this model | vte's parser alone |
//! |---|---|---|---|---|
//! | `tty_bench`'s lines | 71 | 111 | 461 | 860 |
//! | `seq` | 15 | 124 | 1144 | 912 |
//! | `ls --color` | 70 | 135 | 107 | 427 |
//! | `top` redraws | 90 | 149 | 113 | 502 |
//!
//! Both crates build on vte; their grids are the cost. This model is alacritty's, fed in
//! batches in which plain text that would scroll away is skipped, exactly (`plain.rs`). A PTY
//! delivers 54-110 MB/s here. Fed every byte on the loop, alacritty alone halved bulk output
//! (`tty_bench`: 43 MB/s against a ceiling of 82); with the fast path it was 63 where the loop
//! without a model gave 74, on a noisy machine. Sessions do not feed it yet: that comes with
//! reattaching (issue 16), with the scans made faster first (the escape tracker byte by byte is
//! why `ls` and `top` run below alacritty alone).
//!
//! [`ScreenModel::repaint`] writes what a fresh terminal (xterm.js, ECMA-48 with xterm's private
//! modes) needs to show the same thing: the scrollback and the screen line by line with their
//! attributes (SGR, ECMA-48 §8.3.117), the alternate screen if a full-screen program is on it,
//! the cursor's place, attributes and visibility, and the input modes the program set
//! (application cursor keys, bracketed paste, mouse reporting).

use std::fmt::Write as _;

use alacritty_terminal::event::VoidListener;
use alacritty_terminal::grid::Dimensions;
use alacritty_terminal::index::{Column, Line};
use alacritty_terminal::term::cell::{Cell, Flags};
use alacritty_terminal::term::test::TermSize;
use alacritty_terminal::term::{Config, Term, TermMode};
use alacritty_terminal::vte::ansi::{Color, NamedColor, Processor};

use super::plain::{EscapeTracker, skippable_run};
use super::sys::WinSize;

/// What one cell costs the model, for the memory budget (alacritty's `Cell` is 24 bytes; a
/// row has a little more around it).
const CELL_BYTES: usize = 24;
/// The largest screen the model keeps (see [`dimensions`]).
const MAX_COLS: u16 = 1000;
const MAX_ROWS: u16 = 500;

/// One terminal's screen and scrollback, following its output.
pub struct ScreenModel {
    term: Term<VoidListener>,
    parser: Processor,
    scrollback: usize,
    /// Output not parsed yet: parsed a batch at a time (see `plain.rs`), or when asked.
    pending: Vec<u8>,
    /// Where the parsed bytes left escape sequences.
    tracker: EscapeTracker,
    /// A scrolling region was set at some point: plain runs are never skipped after that.
    region_seen: bool,
    /// Bytes parsed so far (those skipped are not).
    parsed: u64,
}

/// Output is parsed in batches of this much, so that plain runs can be skipped (`plain.rs`):
/// the most a loop turn parses for one session, and what a session holds unparsed.
const BATCH: usize = 256 << 10;

impl ScreenModel {
    /// A blank screen of `size` keeping up to `scrollback` lines above it.
    pub fn new(size: WinSize, scrollback: usize) -> ScreenModel {
        let config = Config {
            scrolling_history: scrollback,
            ..Config::default()
        };
        ScreenModel {
            term: Term::new(config, &dimensions(size), VoidListener),
            parser: Processor::new(),
            scrollback,
            pending: Vec::new(),
            tracker: EscapeTracker::Ground,
            region_seen: false,
            parsed: 0,
        }
    }

    /// Output of the program, in any pieces (the parser resumes mid-sequence). Parsed once a
    /// batch has come; [`ScreenModel::settle`] parses the rest.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= BATCH {
            self.settle();
        }
    }

    /// Parse what is pending, skipping a plain run that would scroll away (`plain.rs`).
    pub fn settle(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        let rows = self.term.grid().screen_lines();
        let run = skippable_run(&batch, 2 * rows + self.scrollback + 2);
        match run {
            Some(run) => {
                let mut start = run.start;
                self.parse(&batch[..start]);
                // A sequence left open at the start ends within a few bytes (a string may
                // not end at all): parse line by line until it has.
                while self.tracker != EscapeTracker::Ground && start < run.end {
                    let line_end = batch[start..run.end]
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(run.end, |at| start + at + 1);
                    self.parse(&batch[start..line_end]);
                    start = line_end;
                }
                let skip = self.tracker == EscapeTracker::Ground
                    && !self.region_seen
                    && !self.term.mode().contains(TermMode::INSERT);
                if !skip {
                    self.parse(&batch[start..run.end]);
                }
                self.parse(&batch[run.end..]);
            }
            None => self.parse(&batch),
        }
    }

    fn parse(&mut self, bytes: &[u8]) {
        self.parsed += bytes.len() as u64;
        self.region_seen |= self.tracker.follow(bytes);
        self.parser.advance(&mut self.term, bytes);
    }

    /// The terminal was resized (lines rewrap as a terminal's do).
    pub fn resize(&mut self, size: WinSize) {
        self.settle();
        self.term.resize(dimensions(size));
    }

    /// What the model holds now: its screen and the scrollback so far (at most `scrollback`
    /// lines, so at most `(rows + scrollback) * cols` cells).
    pub fn held_bytes(&self) -> usize {
        let grid = self.term.grid();
        grid.total_lines() * grid.columns() * CELL_BYTES + self.pending.capacity()
    }

    /// The text of the screen's lines (scrollback excluded), trailing blanks trimmed.
    pub fn screen_text(&self) -> Vec<String> {
        let grid = self.term.grid();
        (0..grid.screen_lines() as i32)
            .map(|line| {
                let row = &grid[Line(line)];
                let text: String = (0..grid.columns())
                    .map(|col| &row[Column(col)])
                    .filter(|cell| !cell.flags.contains(Flags::WIDE_CHAR_SPACER))
                    .map(|cell| cell.c)
                    .collect();
                text.trim_end().to_string()
            })
            .collect()
    }

    /// Where the cursor is: (line, column), from the top left of the screen, 0-based.
    pub fn cursor(&self) -> (usize, usize) {
        let point = self.term.grid().cursor.point;
        (point.line.0.max(0) as usize, point.column.0)
    }

    /// Whether a full-screen program has the alternate screen up.
    pub fn on_alternate_screen(&self) -> bool {
        self.term.mode().contains(TermMode::ALT_SCREEN)
    }

    /// Bytes that bring a freshly reset terminal of the same size to this screen (what is
    /// pending is parsed first).
    pub fn repaint(&mut self, out: &mut Vec<u8>) {
        self.settle();
        let mut text = String::new();
        // RIS (ECMA-48 §8.3.105): a clean slate, then the lines.
        text.push_str("\x1bc");
        let mode = *self.term.mode();
        let grid = self.term.grid();
        if mode.contains(TermMode::ALT_SCREEN) {
            // xterm's 1049: the main screen is saved and the alternate one shown; what the
            // main screen held is not replayed (its lines come back blank when the program
            // leaves: the price of not keeping two grids on the client).
            text.push_str("\x1b[?1049h\x1b[H");
        }
        let first = -(grid.history_size() as i32);
        let last = grid.screen_lines() as i32 - 1;
        let mut pen = Pen::default();
        for line in first..=last {
            let row = &grid[Line(line)];
            let columns = grid.columns();
            let wrapped = row[Column(columns - 1)].flags.contains(Flags::WRAPLINE);
            // Trailing cells that are blank and plain need not be written.
            let end = if wrapped {
                columns
            } else {
                (0..columns)
                    .rev()
                    .find(|&col| !is_blank(&row[Column(col)]))
                    .map_or(0, |col| col + 1)
            };
            for col in 0..end {
                let cell = &row[Column(col)];
                if cell.flags.contains(Flags::WIDE_CHAR_SPACER) {
                    continue;
                }
                pen.switch_to(cell, &mut text);
                text.push(if cell.flags.contains(Flags::LEADING_WIDE_CHAR_SPACER) {
                    ' '
                } else {
                    cell.c
                });
                if let Some(marks) = cell.zerowidth() {
                    text.extend(marks);
                }
            }
            if line < last && !wrapped {
                // Blank the rest of the line in the colours it ends with, then a new line.
                pen.reset(&mut text);
                text.push_str("\r\n");
            }
        }
        pen.reset(&mut text);
        // The cursor's place (CUP, 1-based) and the attributes the program writes with next.
        let (row, col) = self.cursor();
        let _ = write!(text, "\x1b[{};{}H", row + 1, col + 1);
        Pen::default().switch_to(&grid.cursor.template, &mut text);
        for (flag, set) in [
            (TermMode::APP_CURSOR, "\x1b[?1h"),
            (TermMode::APP_KEYPAD, "\x1b="),
            (TermMode::BRACKETED_PASTE, "\x1b[?2004h"),
            (TermMode::MOUSE_REPORT_CLICK, "\x1b[?1000h"),
            (TermMode::MOUSE_DRAG, "\x1b[?1002h"),
            (TermMode::MOUSE_MOTION, "\x1b[?1003h"),
            (TermMode::SGR_MOUSE, "\x1b[?1006h"),
            (TermMode::FOCUS_IN_OUT, "\x1b[?1004h"),
            (TermMode::INSERT, "\x1b[4h"),
        ] {
            if mode.contains(flag) {
                text.push_str(set);
            }
        }
        if !mode.contains(TermMode::LINE_WRAP) {
            text.push_str("\x1b[?7l");
        }
        if !mode.contains(TermMode::SHOW_CURSOR) {
            text.push_str("\x1b[?25l");
        }
        out.extend_from_slice(text.as_bytes());
    }
}

/// The model's size: the terminal's, up to 1000 x 500. A client may ask for 65535 x 65535 (the
/// PTY takes it); a grid that size would be 100 GB. Past the bound the repaint is of the part
/// that fits.
fn dimensions(size: WinSize) -> TermSize {
    TermSize::new(
        usize::from(size.cols.clamp(1, MAX_COLS)),
        usize::from(size.rows.clamp(1, MAX_ROWS)),
    )
}

fn is_blank(cell: &Cell) -> bool {
    cell.c == ' '
        && cell.bg == Color::Named(NamedColor::Background)
        && !cell
            .flags
            .intersects(Flags::INVERSE | Flags::ALL_UNDERLINES | Flags::STRIKEOUT)
        && cell.zerowidth().is_none()
}

/// The attributes last written, so that SGR is sent only when they change.
#[derive(Clone, PartialEq)]
struct Pen {
    fg: Color,
    bg: Color,
    flags: Flags,
}

/// The flags SGR sets, each with its parameter (ECMA-48 §8.3.117; 21 as xterm's double
/// underline, 4:3 as its curly one).
const SGR_FLAGS: &[(Flags, &str)] = &[
    (Flags::BOLD, "1"),
    (Flags::DIM, "2"),
    (Flags::ITALIC, "3"),
    (Flags::UNDERLINE, "4"),
    (Flags::DOUBLE_UNDERLINE, "21"),
    (Flags::UNDERCURL, "4:3"),
    (Flags::DOTTED_UNDERLINE, "4:4"),
    (Flags::DASHED_UNDERLINE, "4:5"),
    (Flags::INVERSE, "7"),
    (Flags::HIDDEN, "8"),
    (Flags::STRIKEOUT, "9"),
];

impl Default for Pen {
    fn default() -> Pen {
        Pen {
            fg: Color::Named(NamedColor::Foreground),
            bg: Color::Named(NamedColor::Background),
            flags: Flags::empty(),
        }
    }
}

impl Pen {
    fn switch_to(&mut self, cell: &Cell, out: &mut String) {
        let flags = cell.flags
            & SGR_FLAGS
                .iter()
                .fold(Flags::empty(), |all, (f, _)| all | *f);
        let want = Pen {
            fg: cell.fg,
            bg: cell.bg,
            flags,
        };
        if want == *self {
            return;
        }
        // From a reset, not by difference: simpler, and a few bytes per change.
        out.push_str("\x1b[0");
        for (flag, param) in SGR_FLAGS {
            if flags.contains(*flag) {
                out.push(';');
                out.push_str(param);
            }
        }
        color(want.fg, false, out);
        color(want.bg, true, out);
        out.push('m');
        *self = want;
    }

    fn reset(&mut self, out: &mut String) {
        if *self != Pen::default() {
            out.push_str("\x1b[0m");
            *self = Pen::default();
        }
    }
}

/// The SGR parameters of a colour: 30-37/90-97 (40-47/100-107), `38;5;N`, `38;2;R;G;B`.
fn color(color: Color, background: bool, out: &mut String) {
    let base = if background { 40 } else { 30 };
    match color {
        Color::Named(named) => {
            let index = named as usize;
            match index {
                0..=7 => {
                    let _ = write!(out, ";{}", base + index);
                }
                8..=15 => {
                    let _ = write!(out, ";{}", base + 60 + index - 8);
                }
                // The dim colours are the normal ones drawn dim (the DIM flag says so); the
                // default colours are what the reset already set.
                _ => {
                    if let Some(index) = dim_base(named) {
                        let _ = write!(out, ";{}", base + index);
                    }
                }
            }
        }
        Color::Indexed(index) => {
            let _ = write!(out, ";{};5;{index}", base + 8);
        }
        Color::Spec(rgb) => {
            let _ = write!(out, ";{};2;{};{};{}", base + 8, rgb.r, rgb.g, rgb.b);
        }
    }
}

fn dim_base(named: NamedColor) -> Option<usize> {
    use NamedColor::*;
    Some(match named {
        DimBlack => 0,
        DimRed => 1,
        DimGreen => 2,
        DimYellow => 3,
        DimBlue => 4,
        DimMagenta => 5,
        DimCyan => 6,
        DimWhite => 7,
        _ => return None,
    })
}

#[cfg(test)]
#[path = "screen_tests.rs"]
mod tests;
