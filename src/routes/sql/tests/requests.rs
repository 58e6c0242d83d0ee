//! Sequence, describe, store_sql.

use super::*;

#[test]
fn sequence_runs_statements_until_the_first_error() {
    let (_db, shared) = file_db("sequence");
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.open(1);
    c.ok(json!({"type": "sequence", "stream_id": 1, "sql":
        "CREATE TABLE s (x); INSERT INTO s VALUES (1); -- c\n INSERT INTO s VALUES (2); SELECT * FROM s;"}));
    assert_eq!(c.sql(1, "SELECT count(*) FROM s")["rows"][0][0], int(2));
    let e = c.err(json!({"type": "sequence", "stream_id": 1, "sql":
        "INSERT INTO s VALUES (3); INSERT INTO nope VALUES (4); INSERT INTO s VALUES (5)"}));
    assert_eq!(e["code"], "SQLITE_ERROR");
    assert_eq!(c.sql(1, "SELECT count(*) FROM s")["rows"][0][0], int(3));
    let e = c.err(json!({"type": "sequence", "stream_id": 1, "sql": "SELECT 1; SELEC 2"}));
    assert_eq!(e["code"], "SQL_PARSE_ERROR");
    c.ok(json!({"type": "sequence", "stream_id": 1, "sql": ""}));
}

#[test]
fn describe_reports_params_columns_and_flags() {
    let (_db, shared) = file_db("describe");
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.open(1);
    c.sql(1, "CREATE TABLE d (id INTEGER PRIMARY KEY, name TEXT)");
    let r = c.ok(json!({"type": "describe", "stream_id": 1,
        "sql": "SELECT id, name AS nm, 1 + 1 FROM d WHERE id = :id AND name = ? AND ?4"}));
    let res = &r["result"];
    assert_eq!(
        res["params"],
        json!([{"name": ":id"}, {"name": null}, {"name": null}, {"name": "?4"}])
    );
    assert_eq!(
        res["cols"],
        json!([{"name": "id", "decltype": "INTEGER"}, {"name": "nm", "decltype": "TEXT"},
               {"name": "1 + 1", "decltype": null}])
    );
    assert_eq!(res["is_explain"], false);
    assert_eq!(res["is_readonly"], true);
    let r = c.ok(
        json!({"type": "describe", "stream_id": 1, "sql": "EXPLAIN INSERT INTO d VALUES (1, 'x')"}),
    );
    assert_eq!(r["result"]["is_explain"], true);
    let r = c.ok(json!({"type": "describe", "stream_id": 1, "sql": "DELETE FROM d"}));
    assert_eq!(r["result"]["is_readonly"], false);
    // describe does not run the statement
    assert_eq!(c.sql(1, "SELECT count(*) FROM d")["rows"][0][0], int(0));
    let e = c.err(json!({"type": "describe", "stream_id": 1, "sql": "SELEKT"}));
    assert_eq!(e["code"], "SQL_PARSE_ERROR");
}

#[test]
fn stored_sql_texts() {
    let (_db, shared) = file_db("storesql");
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.open(1);
    c.ok(json!({"type": "store_sql", "sql_id": 3, "sql": "SELECT ? * 2"}));
    let r = c.execute(1, json!({"sql_id": 3, "args": [int(21)]}));
    assert_eq!(r["rows"][0][0], int(42));
    let r = c.ok(json!({"type": "batch", "stream_id": 1, "batch": {"steps": [
        {"stmt": {"sql_id": 3, "args": [int(1)]}}]}}));
    assert_eq!(r["result"]["step_results"][0]["rows"][0][0], int(2));
    c.ok(json!({"type": "describe", "stream_id": 1, "sql_id": 3}));
    c.ok(json!({"type": "close_sql", "sql_id": 3}));
    c.ok(json!({"type": "close_sql", "sql_id": 99}));
    // The id is free again.
    c.ok(json!({"type": "store_sql", "sql_id": 3, "sql": "SELECT 3"}));
    assert_eq!(c.execute(1, json!({"sql_id": 3}))["rows"][0][0], int(3));
    c.protocol_error(json!({"type": "store_sql", "sql_id": 3, "sql": "SELECT 4"}));
}

#[test]
fn too_many_stored_sql_texts_is_an_error_response() {
    let db = TempDb::new("storemax");
    let shared = shared_with(&db.path_str(), Some(TOKEN), |c| c.max_stored_sqls = 2);
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.ok(json!({"type": "store_sql", "sql_id": 1, "sql": "SELECT 1"}));
    c.ok(json!({"type": "store_sql", "sql_id": 2, "sql": "SELECT 1"}));
    let e = c.err(json!({"type": "store_sql", "sql_id": 3, "sql": "SELECT 1"}));
    assert_eq!(e["code"], "SQL_STORE_TOO_MANY");
}

#[test]
fn stored_sql_texts_are_bounded_in_bytes_too() {
    let db = TempDb::new("storebytes");
    let shared = shared_with(&db.path_str(), Some(TOKEN), |c| c.max_stored_sql_bytes = 20);
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.ok(json!({"type": "store_sql", "sql_id": 1, "sql": "SELECT 1 -- ten more"}));
    let e = c.err(json!({"type": "store_sql", "sql_id": 2, "sql": "SELECT 2"}));
    assert_eq!(e["code"], "SQL_STORE_TOO_MANY");
    // Closing one frees its bytes.
    c.ok(json!({"type": "close_sql", "sql_id": 1}));
    c.ok(json!({"type": "store_sql", "sql_id": 2, "sql": "SELECT 2"}));
    assert!(c.session.held_bytes() >= "SELECT 2".len());
}
