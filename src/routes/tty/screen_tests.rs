//! The repaint, checked against the model itself: whatever a program wrote, a fresh terminal
//! fed the repaint shows the same cells (characters, colours, attributes), the same
//! scrollback, the same cursor and the same modes.

use super::*;

const SIZE: WinSize = WinSize { cols: 40, rows: 10 };

/// A cell as the client would draw it.
fn drawn(cell: &Cell) -> (char, Color, Color, Flags) {
    let shown = Flags::WIDE_CHAR | Flags::WIDE_CHAR_SPACER;
    let sgr = SGR_FLAGS.iter().fold(shown, |all, (f, _)| all | *f);
    (cell.c, cell.fg, cell.bg, cell.flags & sgr)
}

fn lines(model: &ScreenModel) -> Vec<Vec<(char, Color, Color, Flags)>> {
    let grid = model.term.grid();
    let first = -(grid.history_size() as i32);
    (first..grid.screen_lines() as i32)
        .map(|line| {
            let row = &grid[Line(line)];
            (0..grid.columns())
                .map(|c| drawn(&row[Column(c)]))
                .collect()
        })
        .collect()
}

fn modes(model: &ScreenModel) -> TermMode {
    *model.term.mode()
        & (TermMode::APP_CURSOR
            | TermMode::APP_KEYPAD
            | TermMode::BRACKETED_PASTE
            | TermMode::MOUSE_MODE
            | TermMode::SGR_MOUSE
            | TermMode::SHOW_CURSOR
            | TermMode::LINE_WRAP
            | TermMode::ALT_SCREEN
            | TermMode::INSERT)
}

/// Feed `output`, repaint into a fresh model, and compare everything a client shows.
fn assert_repaints(output: &[u8]) -> ScreenModel {
    let mut model = ScreenModel::new(SIZE, 100);
    model.feed(output);
    let mut repaint = Vec::new();
    model.repaint(&mut repaint);
    let mut fresh = ScreenModel::new(SIZE, 100);
    fresh.feed(&repaint);
    fresh.settle();
    assert_eq!(lines(&fresh), lines(&model), "cells after {output:?}");
    assert_eq!(fresh.cursor(), model.cursor(), "cursor");
    assert_eq!(modes(&fresh), modes(&model), "modes");
    assert_eq!(
        drawn(&fresh.term.grid().cursor.template),
        drawn(&model.term.grid().cursor.template),
        "the pen the program writes with next"
    );
    model
}

#[test]
fn plain_lines_and_a_prompt() {
    let model = assert_repaints(b"hello\r\nworld\r\n$ ls");
    assert_eq!(model.screen_text()[..3], ["hello", "world", "$ ls"]);
    assert_eq!(model.cursor(), (2, 4));
}

#[test]
fn colours_and_attributes_of_every_kind() {
    assert_repaints(
        b"\x1b[1;31mbold red\x1b[0m \x1b[2;3;4mdim italic under\x1b[0m\r\n\
          \x1b[7minverse\x1b[27m \x1b[9mstrike\x1b[29m \x1b[8mhidden\x1b[0m\r\n\
          \x1b[38;5;208m208\x1b[48;5;17m on 17\x1b[0m \x1b[38;2;1;2;3;48;2;250;251;252mrgb\x1b[0m\r\n\
          \x1b[92;104mbright\x1b[0m \x1b[21mdouble\x1b[0m \x1b[4:3mcurly\x1b[0m \x1b[44m  \x1b[0m\r\n\
          \x1b[1;33mstill yellow at the end",
    );
}

#[test]
fn scrolled_off_lines_come_back_as_scrollback() {
    let mut out = Vec::new();
    for i in 0..60 {
        out.extend_from_slice(format!("line {i} \x1b[3{}mcolour\x1b[0m\r\n", i % 8).as_bytes());
    }
    let model = assert_repaints(&out);
    assert_eq!(model.term.grid().history_size(), 51);
}

#[test]
fn soft_wrapped_lines_stay_one_line() {
    let long = "x".repeat(95);
    assert_repaints(format!("{long}\r\nnext").as_bytes());
}

#[test]
fn wide_and_combining_characters() {
    assert_repaints("日本語 text e\u{301} \u{1F600} ok".as_bytes());
    // A wide character that does not fit the last column wraps with a leading spacer.
    let almost = "y".repeat(39);
    assert_repaints(format!("{almost}日本").as_bytes());
}

#[test]
fn a_full_screen_program_on_the_alternate_screen() {
    // As vim or top start: save and switch (1049), clear, draw, application keys, a region.
    let model = assert_repaints(
        b"shell line\r\n$ top\r\n\x1b[?1049h\x1b[?1h\x1b=\x1b[H\x1b[2J\
          \x1b[7m  PID USER  %CPU\x1b[0m\r\n    1 root   0.3\r\n\x1b[5;10H\x1b[1mhere\x1b[?25l",
    );
    assert!(model.on_alternate_screen());
    assert_eq!(model.screen_text()[0], "  PID USER  %CPU");
}

#[test]
fn input_modes_the_program_set() {
    assert_repaints(b"\x1b[?2004h\x1b[?1000h\x1b[?1006h\x1b[?1004h\x1b[?7l\x1b[4hmodes");
}

#[test]
fn output_split_anywhere_gives_the_same_screen() {
    let output = "a\x1b[1;32mb\x1b[0m\r\n日\x1b[38;2;9;8;7mc\x1b[?1049hd\x1b[3;4He".as_bytes();
    let mut whole = ScreenModel::new(SIZE, 100);
    whole.feed(output);
    whole.settle();
    for at in 0..=output.len() {
        let mut split = ScreenModel::new(SIZE, 100);
        split.feed(&output[..at]);
        split.settle();
        split.feed(&output[at..]);
        split.settle();
        assert_eq!(lines(&split), lines(&whole), "split at {at}");
        assert_eq!(split.cursor(), whole.cursor());
    }
}

#[test]
fn resizing_follows_the_terminal() {
    let mut model = ScreenModel::new(SIZE, 100);
    model.feed(b"0123456789012345678901234567890123456789abc");
    model.resize(WinSize { cols: 20, rows: 5 });
    assert_eq!(model.term.grid().columns(), 20);
    assert_eq!(model.term.grid().screen_lines(), 5);
    assert!(model.held_bytes() >= 5 * 20 * CELL_BYTES);
    // A client may ask for any size; the model keeps to its bound.
    model.resize(WinSize {
        cols: u16::MAX,
        rows: u16::MAX,
    });
    assert_eq!(model.term.grid().columns(), usize::from(MAX_COLS));
    assert!(model.held_bytes() <= 600 * 1000 * CELL_BYTES);
}

/// The fast path (`plain.rs`) against a parse of every byte: the same cells, scrollback,
/// cursor, modes and pen.
fn assert_fast_path_exact(output: &[u8]) -> ScreenModel {
    let mut fast = ScreenModel::new(SIZE, 100);
    for piece in output.chunks(64 << 10) {
        fast.feed(piece);
    }
    fast.settle();
    let mut full = ScreenModel::new(SIZE, 100);
    full.parse(output);
    assert_eq!(lines(&fast), lines(&full));
    assert_eq!(fast.cursor(), full.cursor());
    assert_eq!(modes(&fast), modes(&full));
    assert_eq!(
        drawn(&fast.term.grid().cursor.template),
        drawn(&full.term.grid().cursor.template)
    );
    fast
}

fn flood(lines: usize, width: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..lines {
        let text = format!("{i:>8} {}", "abcdefghij".repeat(width / 10 + 1));
        out.extend_from_slice(&text.as_bytes()[..width.min(text.len())]);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[test]
fn a_plain_flood_is_skipped_to_the_same_screen() {
    let mut output = b"\x1b[1;34mbefore the flood\x1b[0m\r\n\x1b[33m".to_vec();
    output.extend(flood(40_000, 30));
    output.extend_from_slice("日本語 the end\x1b[0m $ ".as_bytes());
    let model = assert_fast_path_exact(&output);
    assert!(
        model.parsed < output.len() as u64 / 2,
        "{} of {} bytes parsed: the fast path was not taken",
        model.parsed,
        output.len()
    );
    // Lines longer than the screen is wide, wrapping.
    let mut wide = flood(20_000, 95);
    wide.extend_from_slice(b"tail");
    assert_fast_path_exact(&wide);
}

#[test]
fn a_flood_inside_an_open_string_is_not_skipped() {
    // An OSC never terminated: everything after it is the string's, printed nowhere.
    let mut output = b"visible\r\n\x1b]0;a title that goes on".to_vec();
    output.extend(flood(20_000, 30));
    output.extend_from_slice(b"\x07after");
    let model = assert_fast_path_exact(&output);
    assert_eq!(model.screen_text()[0], "visible");
}

#[test]
fn a_flood_inside_a_scrolling_region_is_not_skipped() {
    // A status line below a region of rows 1-8: only the region scrolls.
    let mut output = b"\x1b[10;1Hstatus line\x1b[1;8r\x1b[8;1H".to_vec();
    output.extend(flood(20_000, 30));
    let model = assert_fast_path_exact(&output);
    assert_eq!(model.screen_text()[9], "status line");
}

#[test]
fn a_flood_in_insert_mode_or_on_the_alternate_screen() {
    let mut output = b"\x1b[4h".to_vec();
    output.extend(flood(20_000, 30));
    assert_fast_path_exact(&output);
    let mut output = b"main\r\n\x1b[?1049h\x1b[H".to_vec();
    output.extend(flood(20_000, 30));
    assert!(assert_fast_path_exact(&output).on_alternate_screen());
}
