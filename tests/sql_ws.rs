//! The SQL route over a real socket: the server on an ephemeral port, `tungstenite` as the
//! client, Hrana JSON on the wire.

mod common;

use common::sql::{Hrana, TOKEN, TestServer, int, text};
use serde_json::{Value as Json, json};
use tungstenite::Message;
use tungstenite::protocol::frame::coding::CloseCode;

#[test]
fn subprotocol_negotiation_picks_the_highest_hrana_version() {
    let server = TestServer::start("negotiate", |_| {});
    for (path, offered, expected) in [
        ("/", "hrana2, hrana1", "hrana2"),
        ("/", "hrana2", "hrana2"),
        ("/", "hrana1", "hrana1"),
        ("/", "hrana3-protobuf, hrana3, hrana2, hrana1", "hrana3"),
        ("/sql", "hrana1, hrana3", "hrana3"),
        ("/sql", "hrana2", "hrana2"),
    ] {
        let (mut c, selected) = Hrana::connect(server.addr, path, Some(offered), None);
        assert_eq!(selected.as_deref(), Some(expected), "{path} {offered}");
        c.hello_ok(Some(TOKEN));
        c.open(1);
        assert_eq!(c.sql(1, "SELECT 1")["rows"][0][0], int(1));
    }
}

#[test]
fn wrong_token_gets_hello_error_and_a_close() {
    let server = TestServer::start("badtoken", |_| {});
    let (mut c, _) = Hrana::connect(server.addr, "/", Some("hrana2, hrana1"), None);
    c.send(&json!({"type": "hello", "jwt": "not-the-token"}));
    // A pipelining client's request after the hello is ignored.
    c.send(&json!({"type": "request", "request_id": 1, "request": {"type": "open_stream", "stream_id": 1}}));
    let msg = c.recv();
    assert_eq!(msg["type"], "hello_error");
    assert_eq!(msg["error"]["code"], "AUTH_JWT_INVALID");
    let close = c.expect_close().expect("close frame");
    assert_eq!(close.code, CloseCode::Policy);
}

#[test]
fn bearer_header_authenticates_the_connection() {
    let server = TestServer::start("bearer", |_| {});
    let (mut c, _) = Hrana::connect(server.addr, "/sql", Some("hrana3"), Some(TOKEN));
    c.hello_ok(None);
    c.open(1);
    // Without the header, a hello without a token is refused.
    let (mut c, _) = Hrana::connect(server.addr, "/sql", Some("hrana3"), None);
    c.send(&json!({"type": "hello"}));
    assert_eq!(c.recv()["error"]["code"], "AUTH_JWT_MISSING");
    assert_eq!(c.expect_close().expect("close").code, CloseCode::Policy);
}

#[test]
fn no_auth_accepts_a_hello_without_token() {
    let server = TestServer::start_with("noauth", None, |_| {});
    let (mut c, _) = Hrana::connect(server.addr, "/", Some("hrana2, hrana1"), None);
    c.hello_ok(None);
    c.open(1);
}

#[test]
fn every_request_type() {
    let server = TestServer::start("requests", |_| {});
    let mut c = server.client_with("hrana3, hrana2, hrana1");
    c.open(1);
    c.sql(
        1,
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, data BLOB, score REAL)",
    );
    // execute with positional and named arguments
    let r = c.execute(1, json!({"sql": "INSERT INTO t (name, data, score) VALUES (?, ?, ?)",
        "args": [text("a"), {"type": "blob", "base64": "3q2+7w=="}, {"type": "float", "value": 1.25}]}));
    assert_eq!(r["affected_row_count"], 1);
    assert_eq!(r["last_insert_rowid"], "1");
    c.execute(
        1,
        json!({"sql": "INSERT INTO t (id, name) VALUES (:id, :name)", "named_args": [
        {"name": ":id", "value": int(1 << 60)}, {"name": "name", "value": text("big")}]}),
    );
    let r = c.sql(1, "SELECT id, name, data, score FROM t ORDER BY id");
    assert_eq!(r["cols"][0], json!({"name": "id", "decltype": "INTEGER"}));
    assert_eq!(
        r["rows"],
        json!([
        [int(1), text("a"), {"type": "blob", "base64": "3q2+7w"}, {"type": "float", "value": 1.25}],
        [int(1 << 60), text("big"), {"type": "null"}, {"type": "null"}]])
    );
    // batch
    let r = c.ok(json!({"type": "batch", "stream_id": 1, "batch": {"steps": [
        {"stmt": {"sql": "SELECT count(*) FROM t"}},
        {"condition": {"type": "ok", "step": 0}, "stmt": {"sql": "SELECT 'yes'"}},
        {"condition": {"type": "error", "step": 0}, "stmt": {"sql": "SELECT 'no'"}}]}}));
    assert_eq!(r["result"]["step_results"][0]["rows"][0][0], int(2));
    assert_eq!(r["result"]["step_results"][2], Json::Null);
    // sequence
    c.ok(json!({"type": "sequence", "stream_id": 1, "sql": "CREATE TABLE s (x); INSERT INTO s VALUES (1);"}));
    // describe
    let r =
        c.ok(json!({"type": "describe", "stream_id": 1, "sql": "SELECT name FROM t WHERE id = ?"}));
    assert_eq!(r["result"]["params"], json!([{"name": null}]));
    assert_eq!(
        r["result"]["cols"],
        json!([{"name": "name", "decltype": "TEXT"}])
    );
    // store_sql / close_sql
    c.ok(json!({"type": "store_sql", "sql_id": 1, "sql": "SELECT name FROM t WHERE id = ?"}));
    let r = c.execute(1, json!({"sql_id": 1, "args": [int(1)]}));
    assert_eq!(r["rows"][0][0], text("a"));
    c.ok(json!({"type": "close_sql", "sql_id": 1}));
    // get_autocommit
    assert_eq!(
        c.ok(json!({"type": "get_autocommit", "stream_id": 1}))["is_autocommit"],
        true
    );
    // cursors (the last insert was the sequence's, into `s`)
    c.ok(
        json!({"type": "open_cursor", "stream_id": 1, "cursor_id": 1, "batch": {"steps": [
        {"stmt": {"sql": "SELECT name FROM t ORDER BY id"}}]}}),
    );
    let r = c.ok(json!({"type": "fetch_cursor", "cursor_id": 1, "max_count": 100}));
    assert_eq!(r["done"], true);
    assert_eq!(
        r["entries"],
        json!([{"type": "step_begin", "step": 0, "cols": [{"name": "name", "decltype": "TEXT"}]},
               {"type": "row", "row": [text("a")]}, {"type": "row", "row": [text("big")]},
               {"type": "step_end", "affected_row_count": 0, "last_insert_rowid": "1"}])
    );
    c.ok(json!({"type": "close_cursor", "cursor_id": 1}));
    // errors
    let e = c.sql_err(1, "INSERT INTO t (name) VALUES ('a')");
    assert_eq!(e["code"], "SQLITE_CONSTRAINT_UNIQUE");
    assert_eq!(c.sql_err(1, "SELEC")["code"], "SQL_PARSE_ERROR");
    c.ok(json!({"type": "close_stream", "stream_id": 1}));
}

#[test]
fn interactive_transaction_on_two_streams() {
    let server = TestServer::start("tx", |_| {});
    let mut c = server.client();
    c.open(1);
    c.open(2);
    c.sql(1, "CREATE TABLE t (x)");
    c.sql(1, "BEGIN IMMEDIATE");
    c.sql(1, "INSERT INTO t VALUES (1)");
    assert_eq!(c.sql(2, "SELECT count(*) FROM t")["rows"][0][0], int(0));
    c.sql(1, "COMMIT");
    assert_eq!(c.sql(2, "SELECT count(*) FROM t")["rows"][0][0], int(1));
}

#[test]
fn pipelined_requests_on_many_streams_all_get_answers() {
    // Fewer outstanding requests allowed than sent: the server stops reading and resumes.
    let server = TestServer::start("pipeline", |c| c.max_outstanding_requests = 4);
    let mut c = server.client();
    let streams = 4;
    for s in 0..streams {
        c.request(json!({"type": "open_stream", "stream_id": s}));
    }
    let mut ids = Vec::new();
    for i in 0..400 {
        ids.push(
            c.request(json!({"type": "execute", "stream_id": i % streams,
            "stmt": {"sql": "SELECT ?", "args": [int(i64::from(i))]}})),
        );
    }
    for (i, id) in ids.into_iter().enumerate() {
        let msg = c.wait(id);
        assert_eq!(msg["type"], "response_ok");
        assert_eq!(msg["response"]["result"]["rows"][0][0], int(i as i64));
    }
}

#[test]
fn limits_report_clear_errors() {
    let server = TestServer::start("limits", |c| {
        c.max_response_bytes = 100_000;
        c.statement_timeout = std::time::Duration::from_millis(200);
        c.max_streams_per_connection = 1;
    });
    let mut c = server.client();
    c.open(1);
    assert_eq!(
        c.sql_err(1, "SELECT zeroblob(200000)")["code"],
        "RESPONSE_TOO_LARGE"
    );
    let e = c.sql_err(
        1,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n",
    );
    assert_eq!(e["code"], "SQLITE_INTERRUPT");
    assert_eq!(
        c.err(json!({"type": "open_stream", "stream_id": 2}))["code"],
        "STREAMS_TOO_MANY"
    );
    c.ok(json!({"type": "close_stream", "stream_id": 2}));
}

#[test]
fn read_only_server_refuses_writes() {
    let server = TestServer::start("ro-setup", |_| {});
    {
        let mut c = server.client();
        c.open(1);
        c.sql(1, "CREATE TABLE t (x)");
        c.sql(1, "INSERT INTO t VALUES (1)");
    }
    let db_path = server.db.path_str();
    let ro = TestServer::start("ro", move |c| {
        c.db = db_path;
        c.read_only = true;
    });
    let mut c = ro.client();
    c.open(1);
    assert_eq!(c.sql(1, "SELECT x FROM t")["rows"], json!([[int(1)]]));
    let e = c.sql_err(1, "INSERT INTO t VALUES (2)");
    assert_eq!(e["code"], "SQLITE_READONLY");
}

#[test]
fn malformed_json_closes_with_1002() {
    let server = TestServer::start("malformed", |_| {});
    let mut c = server.client();
    c.send_raw(Message::text("{not json"));
    assert_eq!(c.expect_close().expect("close").code, CloseCode::Protocol);
    let mut c = server.client();
    c.send(&json!({"type": "request", "request_id": 1, "request": {"type": "execute", "stream_id": 9, "stmt": {"sql": "SELECT 1"}}}));
    assert_eq!(c.expect_close().expect("close").code, CloseCode::Protocol);
    let (mut c, _) = Hrana::connect(server.addr, "/", Some("hrana2"), None);
    c.send(&json!({"type": "request", "request_id": 1, "request": {"type": "open_stream", "stream_id": 1}}));
    assert_eq!(c.expect_close().expect("close").code, CloseCode::Protocol);
}

#[test]
fn binary_message_closes_with_1003() {
    let server = TestServer::start("binary", |_| {});
    let mut c = server.client();
    c.send_raw(Message::binary(vec![1, 2, 3]));
    assert_eq!(
        c.expect_close().expect("close").code,
        CloseCode::Unsupported
    );
}

#[test]
fn memory_database_is_shared_between_connections() {
    let server = TestServer::start("memory", |c| c.db = ":memory:".to_owned());
    let mut a = server.client();
    let mut b = server.client();
    a.open(1);
    a.sql(1, "CREATE TABLE m (x)");
    a.sql(1, "INSERT INTO m VALUES (5)");
    b.open(1);
    assert_eq!(b.sql(1, "SELECT x FROM m")["rows"], json!([[int(5)]]));
    assert!(!server.db.path.exists(), "no file for :memory:");
}

#[test]
fn dropping_the_connection_rolls_back_and_frees_the_lock() {
    let server = TestServer::start("drop", |_| {});
    {
        let mut a = server.client();
        a.open(1);
        a.sql(1, "CREATE TABLE t (x)");
        a.sql(1, "BEGIN IMMEDIATE");
        a.sql(1, "INSERT INTO t VALUES (1)");
        // dropped without a close handshake
    }
    let mut b = server.client();
    b.open(1);
    b.sql(1, "INSERT INTO t VALUES (2)");
    assert_eq!(b.sql(1, "SELECT x FROM t")["rows"], json!([[int(2)]]));
}
