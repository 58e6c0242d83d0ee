//! RFC-NOTES.md must not rot: every `file.rs::function` it names (code and tests alike) must
//! exist, and every row of its MUST table must name the code and the test, or say honestly why
//! not.

use std::path::Path;

fn notes() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("RFC-NOTES.md"))
        .expect("RFC-NOTES.md")
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
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let refs = references(&notes());
    assert!(refs.len() > 100, "only {} references found", refs.len());
    let mut missing = Vec::new();
    for (path, name) in &refs {
        match std::fs::read_to_string(root.join(path)) {
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
    assert!(rows.len() >= 40, "only {} rows", rows.len());
    for row in rows {
        let cells: Vec<&str> = row.trim_matches('|').split(" | ").map(str::trim).collect();
        assert_eq!(cells.len(), 5, "a row needs 5 cells: {row}");
        let (section, code, test) = (cells[0], cells[2], cells[3]);
        assert!(
            section.chars().next().is_some_and(|c| c.is_ascii_digit()),
            "the first cell is a section number: {row}"
        );
        let honest = code.starts_with("not ") || code.starts_with("no ");
        if !honest {
            assert!(!references(code).is_empty(), "no code named: {row}");
            assert!(!references(test).is_empty(), "no test named: {row}");
        }
    }
}
