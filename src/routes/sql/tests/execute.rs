//! Execute: columns, rows, values, arguments, errors.

use super::*;

#[test]
fn execute_returns_columns_rows_and_counts() {
    let (_db, shared) = file_db("execute");
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.open(1);
    let r = c.sql(
        1,
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL)",
    );
    assert_eq!(r["affected_row_count"], 0);
    assert_eq!(r["cols"], json!([]));
    let r = c.sql(
        1,
        "INSERT INTO t (name, score) VALUES ('a', 1.5), ('b', 2.5)",
    );
    assert_eq!(r["affected_row_count"], 2);
    assert_eq!(r["last_insert_rowid"], "2");
    let r = c.sql(1, "SELECT id, name AS n, score * 2 FROM t ORDER BY id");
    assert_eq!(
        r["cols"],
        json!([{"name": "id", "decltype": "INTEGER"}, {"name": "n", "decltype": "TEXT"},
               {"name": "score * 2", "decltype": null}])
    );
    assert_eq!(
        r["rows"],
        json!([[int(1), text("a"), {"type": "float", "value": 3.0}],
               [int(2), text("b"), {"type": "float", "value": 5.0}]])
    );
    assert_eq!(r["affected_row_count"], 0);
    let r = c.sql(1, "UPDATE t SET score = 0");
    assert_eq!(r["affected_row_count"], 2);
    let r = c.execute(1, json!({"sql": "SELECT * FROM t", "want_rows": false}));
    assert_eq!(r["rows"], json!([]));
    assert_eq!(r["cols"].as_array().map(Vec::len), Some(3));
}

#[test]
fn values_round_trip_exactly() {
    let (_db, shared) = file_db("values");
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.open(1);
    c.sql(1, "CREATE TABLE v (i INTEGER, f REAL, t TEXT, b BLOB, n)");
    let big = (1i64 << 53) + 1;
    let blob = json!({"type": "blob", "base64": "AAEC/w=="});
    let args = json!([int(big), {"type": "float", "value": 0.1}, text("héllo ✓ \"q\" \u{0}"),
                      blob, {"type": "null"}]);
    c.execute(
        1,
        json!({"sql": "INSERT INTO v VALUES (?, ?, ?, ?, ?)", "args": args}),
    );
    c.execute(
        1,
        json!({"sql": "INSERT INTO v VALUES (?, ?, ?, ?, ?)", "args": [
        int(i64::MIN), {"type": "float", "value": -1e300}, text(""),
        {"type": "blob", "base64": ""}, int(i64::MAX)]}),
    );
    let r = c.sql(1, "SELECT i, f, t, b, n FROM v ORDER BY rowid");
    assert_eq!(
        r["rows"][0],
        json!([{"type": "integer", "value": "9007199254740993"}, {"type": "float", "value": 0.1},
               text("héllo ✓ \"q\" \u{0}"), {"type": "blob", "base64": "AAEC/w"}, {"type": "null"}])
    );
    assert_eq!(
        r["rows"][1],
        json!([{"type": "integer", "value": "-9223372036854775808"},
               {"type": "float", "value": -1e300}, text(""), {"type": "blob", "base64": ""},
               {"type": "integer", "value": "9223372036854775807"}])
    );
    // Integer arithmetic in SQLite stays exact above 2^53.
    let r = c.execute(1, json!({"sql": "SELECT ? + 1", "args": [int(big)]}));
    assert_eq!(r["rows"][0][0], int(big + 1));
}

#[test]
fn positional_and_named_arguments() {
    let (_db, shared) = file_db("args");
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.open(1);
    let r = c.execute(
        1,
        json!({"sql": "SELECT ?, ?3, ?2", "args": [int(1), int(2), int(3)]}),
    );
    assert_eq!(r["rows"][0], json!([int(1), int(3), int(2)]));
    let r = c.execute(
        1,
        json!({"sql": "SELECT :a, @b, $c", "named_args": [
        {"name": ":a", "value": int(1)}, {"name": "b", "value": int(2)},
        {"name": "$c", "value": int(3)}]}),
    );
    assert_eq!(r["rows"][0], json!([int(1), int(2), int(3)]));
    // Named arguments win over positional ones for the same parameter.
    let r = c.execute(
        1,
        json!({"sql": "SELECT :a, :b", "args": [int(1), int(2)],
        "named_args": [{"name": "b", "value": int(20)}]}),
    );
    assert_eq!(r["rows"][0], json!([int(1), int(20)]));

    for (stmt, what) in [
        (json!({"sql": "SELECT ?, ?", "args": [int(1)]}), "missing"),
        (
            json!({"sql": "SELECT ?", "args": [int(1), int(2)]}),
            "too many",
        ),
        (
            json!({"sql": "SELECT :a", "named_args": [{"name": "zz", "value": int(1)}]}),
            "unknown",
        ),
    ] {
        let e = c.err(json!({"type": "execute", "stream_id": 1, "stmt": stmt}));
        assert_eq!(e["code"], "ARGS_INVALID", "{what}: {e}");
    }
}

#[test]
fn sqlite_errors_carry_codes() {
    let (_db, shared) = file_db("errors");
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.open(1);
    c.sql(
        1,
        "CREATE TABLE u (id INTEGER PRIMARY KEY, email TEXT UNIQUE NOT NULL)",
    );
    c.sql(1, "INSERT INTO u VALUES (1, 'a@x')");
    let e = c.sql_err(1, "INSERT INTO u VALUES (2, 'a@x')");
    assert_eq!(e["code"], "SQLITE_CONSTRAINT_UNIQUE");
    assert_eq!(e["message"], "UNIQUE constraint failed: u.email");
    let e = c.sql_err(1, "INSERT INTO u VALUES (1, 'b@x')");
    assert_eq!(e["code"], "SQLITE_CONSTRAINT_PRIMARYKEY");
    let e = c.sql_err(1, "INSERT INTO u VALUES (3, NULL)");
    assert_eq!(e["code"], "SQLITE_CONSTRAINT_NOTNULL");
    let e = c.sql_err(1, "SELEC 1");
    assert_eq!(e["code"], "SQL_PARSE_ERROR");
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("syntax error")),
        "{e}"
    );
    let e = c.sql_err(1, "SELECT * FROM nowhere");
    assert_eq!(e["code"], "SQLITE_ERROR");
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("no such table")),
        "{e}"
    );
    let e = c.sql_err(1, "  -- nothing\n ; ");
    assert_eq!(e["code"], "SQL_NO_STATEMENT");
    let e = c.sql_err(1, "SELECT 1; SELECT 2");
    assert_eq!(e["code"], "SQL_MANY_STATEMENTS");
    // A trailing semicolon is fine.
    c.sql(1, "SELECT 1;");
    // The stream keeps working after errors.
    assert_eq!(c.sql(1, "SELECT count(*) FROM u")["rows"][0][0], int(1));
}

#[test]
fn attach_is_refused() {
    let (db, shared) = file_db("attach");
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.open(1);
    let other = format!("{}-other", db.path_str());
    let e = c.sql_err(1, &format!("ATTACH '{other}' AS o"));
    assert_eq!(e["code"], "SQLITE_AUTH", "{e}");
    let e = c.sql_err(1, &format!("VACUUM INTO '{other}'"));
    assert_eq!(e["code"], "SQLITE_AUTH", "{e}");
    assert!(!std::path::Path::new(&other).exists());
}

/// A message over the inline limit is decoded off the loop, and answered like any other; the
/// session reads nothing more until it is decoded.
#[test]
fn large_messages_are_decoded_off_the_loop() {
    let (_db, shared) = file_db("largemsg");
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.open(1);
    let big = "x".repeat(200 << 10);
    let id = c.request(json!({"type": "execute", "stream_id": 1,
        "stmt": {"sql": "SELECT length(?)", "args": [text(&big)]}}));
    assert!(!c.session.wants_input(), "reading waits for the decode");
    let msg = c.wait(id);
    assert_eq!(msg["response"]["result"]["rows"][0][0], int(200 << 10));
    assert!(c.session.wants_input());
}
