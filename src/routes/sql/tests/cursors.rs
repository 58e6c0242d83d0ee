//! Cursors (Hrana 3).

use super::*;

#[test]
fn cursor_streams_entries_across_fetches() {
    let (_db, shared) = file_db("cursor");
    let mut c = Client::ready(&shared, Version::Hrana3);
    c.open(1);
    c.ok(json!({"type": "open_cursor", "stream_id": 1, "cursor_id": 5, "batch": {"steps": [
        {"stmt": {"sql": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10) SELECT i FROM n"}},
        {"stmt": {"sql": "SELECT nope"}},
        {"condition": {"type": "ok", "step": 1}, "stmt": {"sql": "SELECT 'skipped'"}},
        {"condition": {"type": "error", "step": 1}, "stmt": {"sql": "SELECT 'last' AS l"}},
    ]}}));
    let mut entries = Vec::new();
    let mut fetches = 0;
    loop {
        let r = c.ok(json!({"type": "fetch_cursor", "cursor_id": 5, "max_count": 3}));
        fetches += 1;
        let got = r["entries"].as_array().expect("entries").clone();
        assert!(got.len() <= 3);
        entries.extend(got);
        if r["done"] == true {
            break;
        }
        assert!(fetches < 50);
    }
    let types: Vec<&str> = entries.iter().filter_map(|e| e["type"].as_str()).collect();
    let mut expected = vec!["step_begin"];
    expected.extend(["row"; 10]);
    expected.extend(["step_end", "step_error", "step_begin", "row", "step_end"]);
    assert_eq!(types, expected);
    assert_eq!(
        entries[0],
        json!({"type": "step_begin", "step": 0, "cols": [{"name": "i", "decltype": null}]})
    );
    assert_eq!(entries[10], json!({"type": "row", "row": [int(10)]}));
    assert_eq!(entries[12]["step"], 1);
    assert_eq!(entries[12]["error"]["code"], "SQLITE_ERROR");
    assert_eq!(entries[13]["step"], 3);
    assert_eq!(entries[14]["row"], json!([text("last")]));
    // After done: no entries, still done.
    let r = c.ok(json!({"type": "fetch_cursor", "cursor_id": 5, "max_count": 3}));
    assert_eq!(
        r,
        json!({"type": "fetch_cursor", "entries": [], "done": true})
    );
    c.ok(json!({"type": "close_cursor", "cursor_id": 5}));
    // The stream is usable again, and the cursor id is free.
    assert_eq!(c.sql(1, "SELECT 1")["rows"][0][0], int(1));
    c.ok(json!({"type": "open_cursor", "stream_id": 1, "cursor_id": 5, "batch": {"steps": []}}));
    let r = c.ok(json!({"type": "fetch_cursor", "cursor_id": 5, "max_count": 3}));
    assert_eq!(r["done"], true);
    c.ok(json!({"type": "close_stream", "stream_id": 1}));
    // Closing the stream closed the cursor.
    c.protocol_error(json!({"type": "fetch_cursor", "cursor_id": 5, "max_count": 1}));
}

#[test]
fn cursor_closed_early_and_misuse() {
    let (_db, shared) = file_db("cursor2");
    let mut c = Client::ready(&shared, Version::Hrana3);
    c.open(1);
    c.sql(1, "CREATE TABLE big (x)");
    c.sql(1, "INSERT INTO big WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) SELECT i FROM n");
    c.ok(
        json!({"type": "open_cursor", "stream_id": 1, "cursor_id": 1, "batch": {"steps": [
        {"stmt": {"sql": "SELECT x FROM big"}}]}}),
    );
    let r = c.ok(json!({"type": "fetch_cursor", "cursor_id": 1, "max_count": 2}));
    assert_eq!(r["done"], false);
    // Other requests on the stream while the cursor is open get an error.
    let e = c.sql_err(1, "SELECT 1");
    assert_eq!(e["code"], "CURSOR_OPEN");
    c.ok(json!({"type": "close_cursor", "cursor_id": 1}));
    assert_eq!(
        c.sql(1, "SELECT count(*) FROM big")["rows"][0][0],
        int(1000)
    );
    // A second cursor on a stream with one open is a protocol error.
    c.ok(json!({"type": "open_cursor", "stream_id": 1, "cursor_id": 1, "batch": {"steps": []}}));
    c.protocol_error(
        json!({"type": "open_cursor", "stream_id": 1, "cursor_id": 2, "batch": {"steps": []}}),
    );
}
