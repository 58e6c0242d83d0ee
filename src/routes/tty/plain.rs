//! The screen model's fast path: most bulk output (`cat` of a log, a build) is plain text, and
//! plain text that scrolls off beyond the scrollback leaves nothing behind. So in a batch of
//! output, a plain run followed by enough lines is skipped, not parsed, and the model ends in
//! the state a full parse would give. What must hold for that (checked here, tested in
//! `screen_tests.rs` against full parses):
//!
//! - The parser is in its ground state where the run starts: no escape sequence, control
//!   sequence or control string (OSC, DCS, APC, PM, SOS) open, since plain text inside one is
//!   not printed. [`EscapeTracker`] follows that over every byte that is parsed.
//! - The run holds only printable characters, tab, CR and LF: no escape, no charset shift, no
//!   other control. It ends with CR LF, so the cursor is in column 0 after it either way.
//! - No scrolling region was ever set (DECSTBM, ECMA-48's and xterm's `CSI t ; b r`): with one,
//!   lines outside the region stay put however much scrolls. And insert mode is off.
//! - After the run come at least `2 * rows + scrollback + 2` line feeds: every row the run
//!   would have left on the screen or in the scrollback, and every row of the model's own that
//!   the first line after the cut overwrites, has scrolled out of the scrollback by then.

/// Where parsing stands with respect to escape sequences, as far as skipping needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EscapeTracker {
    #[default]
    Ground,
    /// After ESC (and any intermediates).
    Escape,
    /// In a control sequence (`ESC [`), until its final byte.
    Control,
    /// In a control string (`ESC ]`, `ESC P`, `ESC _`, `ESC ^`, `ESC X`), until BEL or ST.
    String,
    /// ESC inside a control string: `\` ends it (ST).
    StringEscape,
}

impl EscapeTracker {
    /// Follow `bytes`; returns whether a scrolling region was set among them (a control
    /// sequence ending in `r` with parameters, the form DECSTBM takes).
    pub fn follow(&mut self, bytes: &[u8]) -> bool {
        let mut region = false;
        let mut params = false;
        for &b in bytes {
            *self = match (*self, b) {
                // CAN and SUB cancel whatever is open; ESC starts anew (outside strings).
                (EscapeTracker::String, 0x1b) => EscapeTracker::StringEscape,
                (EscapeTracker::String, 0x07) => EscapeTracker::Ground,
                (EscapeTracker::String, _) => EscapeTracker::String,
                (EscapeTracker::StringEscape, b'\\') => EscapeTracker::Ground,
                (EscapeTracker::StringEscape, 0x1b) => EscapeTracker::StringEscape,
                (EscapeTracker::StringEscape, _) => EscapeTracker::String,
                (_, 0x18 | 0x1a) => EscapeTracker::Ground,
                (_, 0x1b) => EscapeTracker::Escape,
                (EscapeTracker::Ground, _) => EscapeTracker::Ground,
                (EscapeTracker::Escape, b'[') => {
                    params = false;
                    EscapeTracker::Control
                }
                (EscapeTracker::Escape, b']' | b'P' | b'_' | b'^' | b'X') => EscapeTracker::String,
                (EscapeTracker::Escape, 0x20..=0x2f) => EscapeTracker::Escape,
                (EscapeTracker::Escape, 0x00..=0x1f) => EscapeTracker::Escape,
                (EscapeTracker::Escape, _) => EscapeTracker::Ground,
                (EscapeTracker::Control, 0x40..=0x7e) => {
                    region |= b == b'r' && params;
                    EscapeTracker::Ground
                }
                (EscapeTracker::Control, 0x30..=0x3f) => {
                    params = true;
                    EscapeTracker::Control
                }
                (EscapeTracker::Control, _) => EscapeTracker::Control,
            };
        }
        region
    }
}

/// Whether `b` may be in a skipped run.
fn is_plain(b: u8) -> bool {
    b >= 0x20 && b != 0x7f || matches!(b, b'\t' | b'\r' | b'\n')
}

/// The plain run of `batch` that may be skipped, as `start..end`: it ends with CR LF and is
/// followed by at least `lines_after` line feeds. It starts just after the last byte that is
/// not plain, which may leave a sequence open (`ESC` then `[0m`): the caller parses on until
/// its [`EscapeTracker`] is in the ground state before it skips. `None` when no run is worth it.
pub fn skippable_run(batch: &[u8], lines_after: usize) -> Option<std::ops::Range<usize>> {
    // The cut: just after the (lines_after + 1)-th line feed from the end.
    let mut feeds = 0;
    let mut end = None;
    for (at, &b) in batch.iter().enumerate().rev() {
        if b == b'\n' {
            feeds += 1;
            if feeds == lines_after + 1 {
                end = Some(at + 1);
                break;
            }
        }
    }
    let end = end?;
    if end < 2 || &batch[end - 2..end] != b"\r\n" {
        return None;
    }
    let start = batch[..end]
        .iter()
        .rposition(|&b| !is_plain(b))
        .map_or(0, |at| at + 1);
    // Only worth it when the run is long (short ones cost less to parse than to reason about).
    (end - start >= 4096).then_some(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tracker_follows_sequences_and_strings() {
        let mut t = EscapeTracker::default();
        t.follow(b"text \x1b[1;31mred");
        assert_eq!(t, EscapeTracker::Ground);
        t.follow(b"\x1b]0;title with \r\n inside");
        assert_eq!(t, EscapeTracker::String);
        t.follow(b"\x07");
        assert_eq!(t, EscapeTracker::Ground);
        t.follow(b"\x1bP dcs \x1b");
        assert_eq!(t, EscapeTracker::StringEscape);
        t.follow(b"\\");
        assert_eq!(t, EscapeTracker::Ground);
        t.follow(b"\x1b[12");
        assert_eq!(t, EscapeTracker::Control);
        t.follow(b"\x18");
        assert_eq!(t, EscapeTracker::Ground);
        assert!(t.follow(b"\x1b[2;20r"), "a scrolling region");
        assert!(!t.follow(b"\x1b[r"), "the reset form has no parameters");
        assert!(!t.follow(b"\x1b[?1h\x1b(B"));
        assert_eq!(t, EscapeTracker::Ground);
    }

    #[test]
    fn a_run_ends_at_crlf_with_enough_lines_after_it() {
        let mut batch = b"\x1b[0m".to_vec();
        for i in 0..1000 {
            batch.extend_from_slice(format!("line {i}\r\n").as_bytes());
        }
        let run = skippable_run(&batch, 100).expect("a run");
        // Just after the last byte that is not plain: the ESC. (`[0m` is plain; the caller
        // parses on to the end of the sequence before it skips.)
        assert_eq!(run.start, 1);
        assert_eq!(&batch[run.end - 2..run.end], b"\r\n");
        let after = batch[run.end..].iter().filter(|&&b| b == b'\n').count();
        assert_eq!(after, 100);
        assert!(skippable_run(&batch, 2000).is_none(), "not enough lines");
        let bare: Vec<u8> = batch.iter().copied().filter(|&b| b != b'\r').collect();
        assert!(skippable_run(&bare, 100).is_none(), "LF without CR");
    }
}
