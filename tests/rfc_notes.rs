//! RFC-NOTES.md must not rot: every `file.rs::function` it names (code and tests alike) must
//! exist, every row of its MUST table must name the code and the test, or say honestly why not,
//! and every annotated dump in it must be what wsbridge really prints.
//!
//! A dump is a fenced block right after a marker comment:
//!
//! * `<!-- dissect: ARGS -->`: the output of `wsbridge dissect ARGS` (the real binary, run in
//!   the crate's directory, ARGS split on whitespace);
//! * `<!-- trace: in HEX.. out HEX.. -->`: what `wsbridge serve --trace` logs (without the
//!   logger's prefix) when those bytes go in and out after the handshake of
//!   `tests/golden/rfc-notes/request.http` and `response.http`;
//! * `<!-- file: PATH -->`: that file, shown with LF line ends.
//!
//! After an intended change to the output, `UPDATE_GOLDEN=1 cargo test --release --test
//! rfc_notes` rewrites the blocks from the real output instead of failing; review the diff.

use std::ops::Range;
use std::path::Path;
use std::process::{Command, Stdio};

use wsbridge::dissect::hex::parse_hex;
use wsbridge::dissect::trace::{Direction, TraceConfig, Tracer};
use wsbridge::protocol::handshake::server::{Accept, validate_upgrade, write_accept_response};
use wsbridge::protocol::http::{HeadLimits, parse_request};
use wsbridge::routes::trace_decoder_for;

/// The handshake every `trace:` dump starts from (the one part 1 of the tour shows).
const TRACE_REQUEST: &str = "tests/golden/rfc-notes/request.http";
const TRACE_RESPONSE: &str = "tests/golden/rfc-notes/response.http";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn notes() -> String {
    std::fs::read_to_string(root().join("RFC-NOTES.md")).expect("RFC-NOTES.md")
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some()
}

/// Every `` `path.rs::a::b` `` in `text`: (path, last name).
fn references(text: &str) -> Vec<(String, String)> {
    let mut refs = Vec::new();
    for chunk in text.split('`').skip(1).step_by(2) {
        if let Some((path, item)) = chunk.split_once(".rs::") {
            let name = item.rsplit("::").next().unwrap_or(item);
            if !path.contains(' ') && name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                refs.push((format!("{path}.rs"), name.to_string()));
            }
        }
    }
    refs
}

fn defines(source: &str, name: &str) -> bool {
    [format!("fn {name}("), format!("fn {name}<")]
        .iter()
        .any(|pattern| source.contains(pattern.as_str()))
}

#[test]
fn every_reference_in_rfc_notes_exists() {
    let refs = references(&notes());
    assert!(refs.len() > 100, "only {} references found", refs.len());
    let mut missing = Vec::new();
    for (path, name) in &refs {
        match std::fs::read_to_string(root().join(path)) {
            Ok(source) if defines(&source, name) => {}
            Ok(_) => missing.push(format!("{path}: no fn {name}")),
            Err(_) => missing.push(format!("{path}: no such file")),
        }
    }
    assert!(
        missing.is_empty(),
        "RFC-NOTES.md names what does not exist:\n{}",
        missing.join("\n")
    );
}

/// A cell that says why there is no code or no test ("not implemented: ...", "not tested").
fn says_why_not(cell: &str) -> bool {
    cell.starts_with("not ") || cell.starts_with("no ")
}

#[test]
fn every_must_row_names_code_and_test_or_says_why_not() {
    let notes = notes();
    let table = notes
        .split("## Every MUST and MUST NOT")
        .nth(1)
        .expect("the MUST table section");
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| § "))
        .collect();
    assert!(rows.len() >= 90, "only {} rows", rows.len());
    for row in rows {
        let cells: Vec<&str> = row.trim_matches('|').split(" | ").map(str::trim).collect();
        assert_eq!(cells.len(), 5, "a row needs 5 cells: {row}");
        let [section, requirement, code, test, autobahn] = cells[..] else {
            unreachable!()
        };
        assert!(
            section.chars().next().is_some_and(|c| c.is_ascii_digit()),
            "the first cell is a section number: {row}"
        );
        assert!(
            ["server: ", "client: ", "both: "]
                .iter()
                .any(|side| requirement.starts_with(side)),
            "the requirement says whom it binds (server:, client: or both:): {row}"
        );
        if !says_why_not(code) {
            assert!(!references(code).is_empty(), "no code named: {row}");
            assert!(
                !references(test).is_empty() || says_why_not(test),
                "no test named, and no \"not tested\": {row}"
            );
        }
        assert!(!autobahn.is_empty(), "the Autobahn cell is empty: {row}");
    }
}

/// A marker and the fenced block that follows it.
struct Dump {
    /// The marker's line, from 1.
    line: usize,
    /// `dissect`, `trace` or `file`.
    kind: String,
    /// The rest of the marker.
    args: String,
    /// The lines of the block between its fences, as indices into the file's lines.
    body: Range<usize>,
}

fn dumps(lines: &[&str]) -> Vec<Dump> {
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(inner) = line
            .trim()
            .strip_prefix("<!--")
            .and_then(|rest| rest.strip_suffix("-->"))
        else {
            continue;
        };
        let Some((kind, args)) = inner.trim().split_once(':') else {
            continue;
        };
        if !matches!(kind, "dissect" | "trace" | "file") {
            continue;
        }
        assert!(
            lines.get(i + 1).is_some_and(|l| l.starts_with("```")),
            "RFC-NOTES.md:{}: a {kind} marker must be followed by a ``` block",
            i + 1
        );
        let start = i + 2;
        let len = lines[start..]
            .iter()
            .position(|l| l.starts_with("```"))
            .unwrap_or_else(|| panic!("RFC-NOTES.md:{}: the block is not closed", i + 2));
        found.push(Dump {
            line: i + 1,
            kind: kind.to_string(),
            args: args.trim().to_string(),
            body: start..start + len,
        });
    }
    found
}

/// `wsbridge dissect ARGS`, from the crate's directory (so `--file` paths are the repository's).
fn dissect(args: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_wsbridge"))
        .arg("dissect")
        .args(args.split_whitespace())
        .current_dir(root())
        .stdin(Stdio::null())
        .output()
        .expect("run wsbridge dissect");
    assert!(
        output.status.success(),
        "wsbridge dissect {args}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("dissect prints UTF-8")
}

/// What `serve --trace` logs for `in HEX.. out HEX..` after the tour's handshake: the very
/// tracer the server runs, fed the same bytes (the server logs each line with a logger prefix).
fn trace(args: &str) -> String {
    let mut tracer = Tracer::new(1, TraceConfig::default(), trace_decoder_for);
    // The HTTP heads are logged too; the dumps show only the frames.
    tracer.bytes(Direction::In, &read(TRACE_REQUEST));
    tracer.bytes(Direction::Out, &read(TRACE_RESPONSE));
    let mut lines = Vec::new();
    let mut flush = |direction: Option<Direction>, hex: &mut String| {
        if let Some(direction) = direction {
            let bytes = parse_hex(hex).unwrap_or_else(|e| panic!("trace: {hex}: {e}"));
            lines.extend(tracer.bytes(direction, &bytes));
        }
        hex.clear();
    };
    let (mut direction, mut hex) = (None, String::new());
    for word in args.split_whitespace() {
        match word {
            "in" | "out" => {
                flush(direction, &mut hex);
                direction = Some(if word == "in" {
                    Direction::In
                } else {
                    Direction::Out
                });
            }
            _ => {
                assert!(direction.is_some(), "trace: bytes before `in` or `out`");
                hex.push_str(word);
                hex.push(' ');
            }
        }
    }
    flush(direction, &mut hex);
    lines.join("\n")
}

fn real_output(dump: &Dump) -> String {
    match dump.kind.as_str() {
        "dissect" => dissect(&dump.args),
        "trace" => trace(&dump.args),
        _ => String::from_utf8(read(&dump.args)).expect("a text file"),
    }
}

/// Lines without trailing whitespace (nor CR), and no blank lines at the end.
fn normalize(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(|l| l.trim_end().to_string()).collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

#[test]
fn dumps_in_rfc_notes_are_what_wsbridge_prints() {
    let text = notes();
    let lines: Vec<&str> = text.lines().collect();
    let found = dumps(&lines);
    assert!(found.len() >= 15, "only {} dumps found", found.len());
    let mut stale = Vec::new();
    let mut rewritten: Vec<String> = Vec::new();
    let mut next = 0;
    for dump in &found {
        let real = normalize(&real_output(dump));
        let shown = normalize(&lines[dump.body.clone()].join("\n"));
        if real != shown {
            let at = real
                .iter()
                .zip(&shown)
                .position(|(a, b)| a != b)
                .unwrap_or(real.len().min(shown.len()));
            stale.push(format!(
                "RFC-NOTES.md:{}: <!-- {}: {} -->: block line {} is {:?}, the real output has {:?}; the real output:\n{}",
                dump.line,
                dump.kind,
                dump.args,
                at + 1,
                shown.get(at).map_or("(end of block)", String::as_str),
                real.get(at).map_or("(end of output)", String::as_str),
                real.join("\n")
            ));
        }
        rewritten.extend(lines[next..dump.body.start].iter().map(|l| l.to_string()));
        rewritten.extend(real);
        next = dump.body.end;
    }
    rewritten.extend(lines[next..].iter().map(|l| l.to_string()));
    if updating() {
        if !stale.is_empty() {
            let mut new_text = rewritten.join("\n");
            if text.ends_with('\n') {
                new_text.push('\n');
            }
            // Write then rename: the other tests read the file at the same time.
            let path = root().join("RFC-NOTES.md");
            let temp = root().join("RFC-NOTES.md.update");
            std::fs::write(&temp, new_text).expect("write RFC-NOTES.md.update");
            std::fs::rename(&temp, &path).expect("replace RFC-NOTES.md");
            eprintln!("rewrote {} dump(s) in RFC-NOTES.md", stale.len());
        }
        return;
    }
    assert!(
        stale.is_empty(),
        "{} dump(s) in RFC-NOTES.md differ from what wsbridge prints (UPDATE_GOLDEN=1 rewrites them):\n\n{}",
        stale.len(),
        stale.join("\n\n")
    );
}

#[test]
fn every_part_of_the_tour_has_a_live_dissect_dump() {
    let notes = notes();
    let tour = notes
        .split("## Every MUST and MUST NOT")
        .next()
        .expect("the tour");
    let parts: Vec<&str> = tour.split("\n## ").skip(1).collect();
    assert!(parts.len() >= 9, "only {} parts", parts.len());
    for part in parts {
        let title = part.lines().next().unwrap_or_default();
        assert!(
            part.lines()
                .any(|l| l.trim_start().starts_with("<!-- dissect:")),
            "part {title:?} of the tour has no live-checked `wsbridge dissect` dump"
        );
    }
}

/// The tour's HTTP inputs are real HTTP (CRLF), requests the server accepts and routes as the
/// tour says, and responses byte for byte what it answers them with; so the 101s shown name
/// `Sec-WebSocket-Accept` and `Sec-WebSocket-Protocol` at most once and no extension (§11.3).
#[test]
fn handshake_files_are_what_wsbridge_accepts_and_writes() {
    let dir = root().join("tests/golden/rfc-notes");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/golden/rfc-notes") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "http") {
            let bytes = std::fs::read(&path).expect("read");
            let bare_lf = bytes
                .iter()
                .enumerate()
                .any(|(i, &b)| b == b'\n' && (i == 0 || bytes[i - 1] != b'\r'));
            assert!(!bare_lf, "{}: lines must end with CRLF", path.display());
            assert!(
                bytes.ends_with(b"\r\n\r\n"),
                "{}: the head must end with an empty line",
                path.display()
            );
            files += 1;
        }
    }
    assert!(files >= 4, "only {files} .http files");
    for (request, response, protocol) in [
        ("request.http", "response.http", None),
        (
            "request-browser.http",
            "response-hrana3.http",
            Some("hrana3"),
        ),
    ] {
        let bytes = read(&format!("tests/golden/rfc-notes/{request}"));
        let (head, used) = parse_request(&bytes, &HeadLimits::default())
            .expect("a well-formed request")
            .expect("a complete request");
        assert_eq!(used, bytes.len(), "{request}");
        let upgrade = validate_upgrade(&head).expect("a valid upgrade request");
        let (_, chosen) = wsbridge::routes::select(&head).expect("a route");
        assert_eq!(chosen, protocol, "{request}: the subprotocol chosen");
        let mut written = Vec::new();
        write_accept_response(
            upgrade.key,
            Accept {
                protocol: chosen,
                extensions: None,
            },
            &mut written,
        );
        let text = String::from_utf8(written).expect("ASCII");
        assert_eq!(
            String::from_utf8(read(&format!("tests/golden/rfc-notes/{response}"))).expect("text"),
            text,
            "{response} is not what wsbridge answers to {request}"
        );
        let count = |name: &str| text.to_ascii_lowercase().matches(name).count();
        assert_eq!(count("\r\nsec-websocket-accept:"), 1);
        assert_eq!(
            count("\r\nsec-websocket-protocol:"),
            usize::from(protocol.is_some())
        );
        assert_eq!(count("sec-websocket-extensions"), 0);
    }
}
