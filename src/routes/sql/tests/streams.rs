//! Interactive transactions and streams.

use super::*;

#[test]
fn interactive_transaction_across_requests() {
    let (_db, shared) = file_db("interactive");
    let mut c = Client::ready(&shared, Version::Hrana3);
    c.open(1);
    c.open(2);
    c.sql(1, "CREATE TABLE i (x)");
    assert_eq!(
        c.ok(json!({"type": "get_autocommit", "stream_id": 1}))["is_autocommit"],
        true
    );
    c.sql(1, "BEGIN IMMEDIATE");
    assert_eq!(
        c.ok(json!({"type": "get_autocommit", "stream_id": 1}))["is_autocommit"],
        false
    );
    c.sql(1, "INSERT INTO i VALUES (1)");
    // Another stream (another connection) does not see the uncommitted row.
    assert_eq!(c.sql(2, "SELECT count(*) FROM i")["rows"][0][0], int(0));
    assert_eq!(c.sql(1, "SELECT count(*) FROM i")["rows"][0][0], int(1));
    c.sql(1, "COMMIT");
    assert_eq!(c.sql(2, "SELECT count(*) FROM i")["rows"][0][0], int(1));

    c.sql(1, "BEGIN");
    c.sql(1, "INSERT INTO i VALUES (2)");
    c.sql(1, "ROLLBACK");
    assert_eq!(c.sql(2, "SELECT count(*) FROM i")["rows"][0][0], int(1));
}

#[test]
fn closing_a_stream_rolls_back_its_transaction() {
    let (_db, shared) = file_db("closestream");
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.open(1);
    c.sql(1, "CREATE TABLE c (x)");
    c.sql(1, "BEGIN IMMEDIATE");
    c.sql(1, "INSERT INTO c VALUES (1)");
    c.ok(json!({"type": "close_stream", "stream_id": 1}));
    // The id can be reused at once, and the write lock is free.
    c.open(1);
    c.sql(1, "INSERT INTO c VALUES (2)");
    assert_eq!(c.sql(1, "SELECT x FROM c")["rows"], json!([[int(2)]]));
}

#[test]
fn requests_on_one_stream_run_in_order_when_pipelined() {
    let (_db, shared) = file_db("pipeline");
    let mut c = Client::ready(&shared, Version::Hrana2);
    // Everything sent before any response, as @libsql/client does.
    let ids: Vec<i32> = [
        json!({"type": "open_stream", "stream_id": 1}),
        json!({"type": "execute", "stream_id": 1, "stmt": {"sql": "CREATE TABLE p (x)"}}),
        json!({"type": "store_sql", "sql_id": 1, "sql": "INSERT INTO p VALUES (?)"}),
    ]
    .into_iter()
    .chain((0..50).map(|i| json!({"type": "execute", "stream_id": 1, "stmt": {"sql_id": 1, "args": [int(i)]}})))
    .chain([
        json!({"type": "execute", "stream_id": 1, "stmt": {"sql": "SELECT group_concat(x) FROM p"}}),
        json!({"type": "close_stream", "stream_id": 1}),
    ])
    .map(|r| c.request(r))
    .collect();
    let mut last = Json::Null;
    for id in ids {
        let msg = c.wait(id);
        assert_eq!(msg["type"], "response_ok", "{msg}");
        last = msg;
        if msg_is_select(&last) {
            let expected = (0..50).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
            assert_eq!(last["response"]["result"]["rows"][0][0], text(&expected));
        }
    }
    assert_eq!(last["response"]["type"], "close_stream");
}

fn msg_is_select(msg: &Json) -> bool {
    msg["response"]["result"]["cols"]
        .as_array()
        .is_some_and(|cols| cols.len() == 1 && cols[0]["name"] == "group_concat(x)")
}

#[test]
fn begin_transaction_readonly_is_emulated() {
    let (_db, shared) = file_db("readtx");
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.open(1);
    c.sql(1, "CREATE TABLE r (x)");
    c.sql(1, "BEGIN TRANSACTION READONLY");
    let e = c.sql_err(1, "INSERT INTO r VALUES (1)");
    assert!(
        e["code"]
            .as_str()
            .is_some_and(|code| code.starts_with("SQLITE_READONLY")),
        "{e}"
    );
    c.sql(1, "SELECT * FROM r");
    c.sql(1, "COMMIT");
    c.sql(1, "INSERT INTO r VALUES (1)");
}

#[test]
fn committed_writes_are_in_the_file() {
    let (db, shared) = file_db("durable");
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.open(1);
    c.sql(1, "CREATE TABLE k (x)");
    c.sql(1, "INSERT INTO k VALUES (42)");
    let conn = rusqlite::Connection::open(&db.path).expect("open");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("journal mode");
    assert_eq!(mode, "wal");
    let x: i64 = conn
        .query_row("SELECT x FROM k", [], |r| r.get(0))
        .expect("row");
    assert_eq!(x, 42);
}
