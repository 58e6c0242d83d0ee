//! Session-level tests: JSON in, JSON out, against real SQLite files in the temp directory.

use std::collections::HashMap;
use std::sync::Arc;

use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use super::db::{SqlConfig, SqlShared};
use super::proto::Version;
use super::session::{HranaSession, SessionError};
use super::temp_db::TempDb;
use crate::auth::Policy;

const TOKEN: &str = "s3cret-token";

fn shared_with(
    db: &str,
    token: Option<&str>,
    tweak: impl FnOnce(&mut SqlConfig),
) -> Arc<SqlShared> {
    let mut config = SqlConfig {
        db: db.to_owned(),
        ..SqlConfig::default()
    };
    tweak(&mut config);
    SqlShared::new(
        config,
        Arc::new(Policy::new(token.map(str::to_owned), vec![], vec![])),
    )
    .expect("open database")
}

/// Drives one session like the server would: text in, notifications, text out.
struct Client {
    session: HranaSession,
    notified: Receiver<()>,
    next_request_id: i32,
    /// Responses received but not yet asked for, by request id.
    responses: HashMap<i64, Json>,
    /// hello_ok / hello_error messages, in order.
    hellos: Vec<Json>,
}

impl Client {
    fn new(shared: &Arc<SqlShared>, version: Version, header_auth: bool) -> Client {
        let (tx, notified) = channel();
        let session = HranaSession::new(
            Arc::clone(shared),
            version,
            header_auth,
            crate::routes::Waker::new(move || {
                let _ = tx.send(());
            }),
        );
        Client {
            session,
            notified,
            next_request_id: 1,
            responses: HashMap::new(),
            hellos: Vec::new(),
        }
    }

    /// A client that said hello with the right token.
    fn ready(shared: &Arc<SqlShared>, version: Version) -> Client {
        let mut c = Client::new(shared, version, false);
        c.send(json!({"type": "hello", "jwt": TOKEN}))
            .expect("hello");
        c.drain();
        assert_eq!(c.hellos.pop(), Some(json!({"type": "hello_ok"})));
        c
    }

    fn send(&mut self, msg: Json) -> Result<(), SessionError> {
        self.session.on_text(&msg.to_string())
    }

    fn drain(&mut self) {
        while let Some(text) = self.session.poll_outgoing() {
            let msg: Json = serde_json::from_str(&text).expect("server sent valid JSON");
            match msg.get("request_id").and_then(Json::as_i64) {
                Some(id) => {
                    assert!(
                        self.responses.insert(id, msg).is_none(),
                        "duplicate response"
                    );
                }
                None => self.hellos.push(msg),
            }
        }
    }

    fn request(&mut self, request: Json) -> i32 {
        let id = self.next_request_id;
        self.next_request_id += 1;
        self.send(json!({"type": "request", "request_id": id, "request": request}))
            .expect("request accepted");
        id
    }

    fn wait(&mut self, id: i32) -> Json {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.drain();
            if let Some(msg) = self.responses.remove(&i64::from(id)) {
                return msg;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no response to request {id}");
            let _ = self
                .notified
                .recv_timeout(left.min(Duration::from_millis(200)));
            self.session.on_notified();
        }
    }

    fn call(&mut self, request: Json) -> Json {
        let id = self.request(request);
        self.wait(id)
    }

    fn ok(&mut self, request: Json) -> Json {
        let msg = self.call(request.clone());
        assert_eq!(msg["type"], "response_ok", "request {request} got {msg}");
        assert_eq!(msg["response"]["type"], request["type"]);
        msg["response"].clone()
    }

    fn err(&mut self, request: Json) -> Json {
        let msg = self.call(request.clone());
        assert_eq!(msg["type"], "response_error", "request {request} got {msg}");
        msg["error"].clone()
    }

    fn open(&mut self, stream_id: i32) {
        self.ok(json!({"type": "open_stream", "stream_id": stream_id}));
    }

    fn execute(&mut self, stream_id: i32, stmt: Json) -> Json {
        self.ok(json!({"type": "execute", "stream_id": stream_id, "stmt": stmt}))["result"].clone()
    }

    fn sql(&mut self, stream_id: i32, sql: &str) -> Json {
        self.execute(stream_id, json!({"sql": sql}))
    }

    fn sql_err(&mut self, stream_id: i32, sql: &str) -> Json {
        self.err(json!({"type": "execute", "stream_id": stream_id, "stmt": {"sql": sql}}))
    }

    /// A request that must make the session ask for a close.
    fn protocol_error(&mut self, request: Json) -> SessionError {
        let id = self.next_request_id;
        self.next_request_id += 1;
        self.send(json!({"type": "request", "request_id": id, "request": request}))
            .expect_err("protocol error expected")
    }
}

fn int(v: i64) -> Json {
    json!({"type": "integer", "value": v.to_string()})
}

fn text(s: &str) -> Json {
    json!({"type": "text", "value": s})
}

fn file_db(name: &str) -> (TempDb, Arc<SqlShared>) {
    let db = TempDb::new(name);
    let shared = shared_with(&db.path_str(), Some(TOKEN), |_| {});
    (db, shared)
}

// ----------------------------------------------------------------------------------------------
// hello and authentication
// ----------------------------------------------------------------------------------------------

#[test]
fn hello_with_the_token_is_accepted_and_can_be_repeated() {
    let (_db, shared) = file_db("hello");
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.send(json!({"type": "hello", "jwt": TOKEN}))
        .expect("second hello");
    c.drain();
    assert_eq!(c.hellos, vec![json!({"type": "hello_ok"})]);
    c.open(1);
}

#[test]
fn wrong_token_gets_hello_error_then_close_and_input_is_ignored() {
    let (_db, shared) = file_db("badtoken");
    let mut c = Client::new(&shared, Version::Hrana2, false);
    let err = c
        .send(json!({"type": "hello", "jwt": "wrong"}))
        .expect_err("auth error");
    assert_eq!(err.close_code(), 1008);
    c.drain();
    assert_eq!(c.hellos.len(), 1);
    assert_eq!(c.hellos[0]["type"], "hello_error");
    assert_eq!(c.hellos[0]["error"]["code"], "AUTH_JWT_INVALID");
    // "If the server responds with hello_error, it must ignore all further messages."
    c.send(json!({"type": "request", "request_id": 1, "request": {"type": "open_stream", "stream_id": 1}}))
        .expect("ignored");
    c.drain();
    assert!(c.responses.is_empty());
    assert!(!c.session.wants_input());
}

#[test]
fn missing_token_is_refused_unless_the_upgrade_header_carried_it() {
    let (_db, shared) = file_db("notoken");
    let mut c = Client::new(&shared, Version::Hrana2, false);
    let err = c.send(json!({"type": "hello"})).expect_err("auth error");
    assert!(matches!(err, SessionError::Auth(_)));
    c.drain();
    assert_eq!(c.hellos[0]["error"]["code"], "AUTH_JWT_MISSING");

    let mut c = Client::new(&shared, Version::Hrana2, true);
    c.send(json!({"type": "hello", "jwt": null}))
        .expect("header auth");
    c.drain();
    assert_eq!(c.hellos, vec![json!({"type": "hello_ok"})]);
    // A wrong explicit token is refused even with header auth.
    assert!(c.send(json!({"type": "hello", "jwt": "nope"})).is_err());
}

#[test]
fn auth_off_accepts_any_hello() {
    let db = TempDb::new("noauth");
    let shared = shared_with(&db.path_str(), None, |_| {});
    let mut c = Client::new(&shared, Version::Hrana2, false);
    c.send(json!({"type": "hello", "jwt": "whatever"}))
        .expect("hello");
    c.drain();
    assert_eq!(c.hellos, vec![json!({"type": "hello_ok"})]);
}

#[test]
fn request_before_hello_is_a_protocol_error() {
    let (_db, shared) = file_db("early");
    let mut c = Client::new(&shared, Version::Hrana2, true);
    let err = c.protocol_error(json!({"type": "open_stream", "stream_id": 1}));
    assert_eq!(err.close_code(), 1002);
}

#[test]
fn repeated_hello_needs_hrana2() {
    let (_db, shared) = file_db("hello1");
    let mut c = Client::ready(&shared, Version::Hrana1);
    assert!(matches!(
        c.send(json!({"type": "hello", "jwt": TOKEN})),
        Err(SessionError::Protocol(_))
    ));
}

// ----------------------------------------------------------------------------------------------
// malformed input
// ----------------------------------------------------------------------------------------------

#[test]
fn malformed_messages_close_with_protocol_error() {
    let (_db, shared) = file_db("malformed");
    for bad in [
        "not json",
        "{}",
        r#"{"type":"goodbye"}"#,
        r#"{"type":"request","request_id":1,"request":{"type":"drop_database"}}"#,
        r#"{"type":"request","request_id":"1","request":{"type":"open_stream","stream_id":1}}"#,
    ] {
        let mut c = Client::ready(&shared, Version::Hrana3);
        let err = c.session.on_text(bad).expect_err(bad);
        assert_eq!(err.close_code(), 1002, "{bad}");
        assert!(err.reason().len() <= 123);
        // Later input is ignored, no panic.
        c.session.on_text(bad).expect("ignored after failure");
    }
    let mut c = Client::ready(&shared, Version::Hrana3);
    assert_eq!(
        c.session
            .on_binary(b"\x00")
            .expect_err("binary")
            .close_code(),
        1003
    );
}

#[test]
fn unknown_stream_cursor_or_sql_id_is_a_protocol_error() {
    let (_db, shared) = file_db("unknown");
    let mut c = Client::ready(&shared, Version::Hrana3);
    c.protocol_error(json!({"type": "execute", "stream_id": 7, "stmt": {"sql": "SELECT 1"}}));
    let mut c = Client::ready(&shared, Version::Hrana3);
    c.protocol_error(json!({"type": "close_stream", "stream_id": 7}));
    let mut c = Client::ready(&shared, Version::Hrana3);
    c.protocol_error(json!({"type": "fetch_cursor", "cursor_id": 1, "max_count": 10}));
    let mut c = Client::ready(&shared, Version::Hrana3);
    c.open(1);
    c.protocol_error(json!({"type": "execute", "stream_id": 1, "stmt": {"sql_id": 5}}));
    let mut c = Client::ready(&shared, Version::Hrana3);
    c.open(1);
    c.protocol_error(json!({"type": "open_stream", "stream_id": 1}));
    let mut c = Client::ready(&shared, Version::Hrana3);
    c.open(1);
    c.protocol_error(
        json!({"type": "execute", "stream_id": 1, "stmt": {"sql": "SELECT 1", "sql_id": 1}}),
    );
    let mut c = Client::ready(&shared, Version::Hrana3);
    c.open(1);
    c.protocol_error(json!({"type": "execute", "stream_id": 1, "stmt": {}}));
}

#[test]
fn newer_requests_need_the_negotiated_version() {
    let (_db, shared) = file_db("versions");
    let mut c = Client::ready(&shared, Version::Hrana1);
    c.open(1);
    c.protocol_error(json!({"type": "sequence", "stream_id": 1, "sql": "SELECT 1"}));
    let mut c = Client::ready(&shared, Version::Hrana1);
    c.protocol_error(json!({"type": "store_sql", "sql_id": 1, "sql": "SELECT 1"}));
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.open(1);
    c.protocol_error(json!({"type": "get_autocommit", "stream_id": 1}));
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.open(1);
    c.protocol_error(
        json!({"type": "open_cursor", "stream_id": 1, "cursor_id": 1, "batch": {"steps": []}}),
    );
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.open(1);
    c.protocol_error(json!({"type": "batch", "stream_id": 1, "batch": {"steps": [
        {"stmt": {"sql": "SELECT 1"}, "condition": {"type": "is_autocommit"}}]}}));
}

// ----------------------------------------------------------------------------------------------
// execute, values
// ----------------------------------------------------------------------------------------------

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

// ----------------------------------------------------------------------------------------------
// batches
// ----------------------------------------------------------------------------------------------

/// The batch `@libsql/client` sends for `batch([...], "write")` on Hrana 2.
fn client_write_batch(stmts: &[&str]) -> Json {
    let mut steps = vec![json!({"stmt": {"sql": "BEGIN IMMEDIATE", "want_rows": false}})];
    for (i, sql) in stmts.iter().enumerate() {
        steps.push(json!({"condition": {"type": "ok", "step": i}, "stmt": {"sql": sql}}));
    }
    let last = stmts.len();
    steps.push(json!({"condition": {"type": "ok", "step": last}, "stmt": {"sql": "COMMIT"}}));
    steps.push(
        json!({"condition": {"type": "not", "cond": {"type": "ok", "step": last + 1}},
                      "stmt": {"sql": "ROLLBACK"}}),
    );
    json!({"steps": steps})
}

#[test]
fn batch_commits_when_every_step_succeeds() {
    let (_db, shared) = file_db("batchok");
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.open(1);
    c.sql(1, "CREATE TABLE b (x INTEGER UNIQUE)");
    let r = c.ok(
        json!({"type": "batch", "stream_id": 1, "batch": client_write_batch(&[
        "INSERT INTO b VALUES (1)", "INSERT INTO b VALUES (2)", "SELECT count(*) FROM b"])}),
    );
    let res = &r["result"];
    assert_eq!(
        res["step_errors"],
        json!([null, null, null, null, null, null])
    );
    assert_eq!(res["step_results"][3]["rows"], json!([[int(2)]]));
    assert_eq!(res["step_results"][5], Json::Null, "ROLLBACK skipped");
    assert_eq!(c.sql(1, "SELECT count(*) FROM b")["rows"][0][0], int(2));
}

#[test]
fn batch_rolls_back_entirely_when_a_step_fails() {
    let (_db, shared) = file_db("batchfail");
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.open(1);
    c.sql(1, "CREATE TABLE b (x INTEGER UNIQUE)");
    c.sql(1, "INSERT INTO b VALUES (9)");
    let r = c.ok(
        json!({"type": "batch", "stream_id": 1, "batch": client_write_batch(&[
        "INSERT INTO b VALUES (1)", "INSERT INTO b VALUES (9)", "INSERT INTO b VALUES (3)"])}),
    );
    let res = &r["result"];
    assert!(res["step_results"][1].is_object());
    assert_eq!(res["step_errors"][2]["code"], "SQLITE_CONSTRAINT_UNIQUE");
    assert_eq!(
        res["step_results"][3],
        Json::Null,
        "skipped after the failure"
    );
    assert_eq!(res["step_errors"][3], Json::Null);
    assert_eq!(res["step_results"][4], Json::Null, "COMMIT skipped");
    assert!(res["step_results"][5].is_object(), "ROLLBACK ran: {res}");
    let rows = c.sql(1, "SELECT x FROM b ORDER BY x")["rows"].clone();
    assert_eq!(rows, json!([[int(9)]]));
    // No transaction was left open: BEGIN works.
    c.sql(1, "BEGIN");
    c.sql(1, "ROLLBACK");
}

#[test]
fn batch_conditions() {
    let (_db, shared) = file_db("conds");
    let mut c = Client::ready(&shared, Version::Hrana3);
    c.open(1);
    let s = |sql: &str| json!({"sql": sql});
    let r = c.ok(json!({"type": "batch", "stream_id": 1, "batch": {"steps": [
        {"stmt": s("SELECT 1")},                                                    // 0 ok
        {"stmt": s("SELECT nope")},                                                 // 1 error
        {"condition": {"type": "error", "step": 1}, "stmt": s("SELECT 2")},         // 2 runs
        {"condition": {"type": "ok", "step": 1}, "stmt": s("SELECT 3")},            // 3 skipped
        {"condition": {"type": "ok", "step": 3}, "stmt": s("SELECT 4")},            // 4 skipped
        {"condition": {"type": "error", "step": 3}, "stmt": s("SELECT 5")},         // 5 skipped
        {"condition": {"type": "and", "conds": [{"type": "ok", "step": 0},
                                                {"type": "error", "step": 1}]}, "stmt": s("SELECT 6")},
        {"condition": {"type": "or", "conds": [{"type": "ok", "step": 3},
                                               {"type": "not", "cond": {"type": "ok", "step": 4}}]},
         "stmt": s("SELECT 7")},
        {"condition": {"type": "and", "conds": []}, "stmt": s("SELECT 8")},
        {"condition": {"type": "or", "conds": []}, "stmt": s("SELECT 9")},
        {"condition": {"type": "is_autocommit"}, "stmt": s("BEGIN")},               // 10 runs
        {"condition": {"type": "is_autocommit"}, "stmt": s("SELECT 11")},           // 11 skipped
        {"condition": {"type": "not", "cond": {"type": "is_autocommit"}}, "stmt": s("ROLLBACK")},
    ]}}));
    let ran: Vec<bool> = r["result"]["step_results"]
        .as_array()
        .expect("array")
        .iter()
        .zip(r["result"]["step_errors"].as_array().expect("array"))
        .map(|(res, err)| !res.is_null() || !err.is_null())
        .collect();
    assert_eq!(
        ran,
        [
            true, true, true, false, false, false, true, true, true, false, true, false, true
        ]
    );
    assert_eq!(r["result"]["step_errors"][1]["code"], "SQLITE_ERROR");
}

#[test]
fn batch_condition_must_refer_to_an_earlier_step() {
    let (_db, shared) = file_db("badcond");
    let mut c = Client::ready(&shared, Version::Hrana3);
    c.open(1);
    c.protocol_error(json!({"type": "batch", "stream_id": 1, "batch": {"steps": [
        {"condition": {"type": "ok", "step": 0}, "stmt": {"sql": "SELECT 1"}}]}}));
    let mut c = Client::ready(&shared, Version::Hrana3);
    c.open(1);
    c.protocol_error(json!({"type": "batch", "stream_id": 1, "batch": {"steps": [
        {"stmt": {"sql": "SELECT 1"}},
        {"condition": {"type": "not", "cond": {"type": "ok", "step": 5}}, "stmt": {"sql": "SELECT 1"}}]}}));
}

// ----------------------------------------------------------------------------------------------
// sequence, describe, store_sql, get_autocommit
// ----------------------------------------------------------------------------------------------

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

// ----------------------------------------------------------------------------------------------
// transactions and streams
// ----------------------------------------------------------------------------------------------

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

// ----------------------------------------------------------------------------------------------
// cursors (Hrana 3)
// ----------------------------------------------------------------------------------------------

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

// ----------------------------------------------------------------------------------------------
// limits
// ----------------------------------------------------------------------------------------------

const FOREVER: &str =
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n";

#[test]
fn statement_time_limit_interrupts() {
    let db = TempDb::new("timeout");
    let shared = shared_with(&db.path_str(), Some(TOKEN), |c| {
        c.statement_timeout = Duration::from_millis(200);
    });
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.open(1);
    let start = Instant::now();
    let e = c.sql_err(1, FOREVER);
    assert_eq!(e["code"], "SQLITE_INTERRUPT");
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("time limit of 200 ms")),
        "{e}"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    // The deadline is per statement: the next one runs normally.
    assert_eq!(c.sql(1, "SELECT 1")["rows"][0][0], int(1));
}

#[test]
fn response_size_limit() {
    let db = TempDb::new("toolarge");
    let shared = shared_with(&db.path_str(), Some(TOKEN), |c| {
        c.max_response_bytes = 64 * 1024
    });
    let mut c = Client::ready(&shared, Version::Hrana3);
    c.open(1);
    let big = "SELECT zeroblob(100000)";
    let e = c.sql_err(1, big);
    assert_eq!(e["code"], "RESPONSE_TOO_LARGE");
    assert!(
        e["message"].as_str().is_some_and(|m| m.contains("65536")),
        "{e}"
    );
    let many = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) SELECT i FROM n";
    assert_eq!(c.sql_err(1, many)["code"], "RESPONSE_TOO_LARGE");
    // Without rows it is fine.
    c.execute(1, json!({"sql": many, "want_rows": false}));
    // In a batch the step fails, and later steps without rows still run.
    let r = c.ok(json!({"type": "batch", "stream_id": 1, "batch": {"steps": [
        {"stmt": {"sql": "BEGIN"}}, {"stmt": {"sql": big}},
        {"condition": {"type": "error", "step": 1}, "stmt": {"sql": "ROLLBACK"}}]}}));
    assert_eq!(r["result"]["step_errors"][1]["code"], "RESPONSE_TOO_LARGE");
    assert!(r["result"]["step_results"][2].is_object());
    // A cursor reports it for the fetch that would be too large.
    c.ok(
        json!({"type": "open_cursor", "stream_id": 1, "cursor_id": 1, "batch": {"steps": [
        {"stmt": {"sql": "SELECT zeroblob(100000)"}}]}}),
    );
    let e = c.err(json!({"type": "fetch_cursor", "cursor_id": 1, "max_count": 100}));
    assert_eq!(e["code"], "RESPONSE_TOO_LARGE");
    let r = c.ok(json!({"type": "fetch_cursor", "cursor_id": 1, "max_count": 100}));
    assert_eq!(r["done"], true);
    assert_eq!(r["entries"][0]["type"], "error");
    c.ok(json!({"type": "close_cursor", "cursor_id": 1}));
}

#[test]
fn stream_limit_per_connection() {
    let db = TempDb::new("streams");
    let shared = shared_with(&db.path_str(), Some(TOKEN), |c| {
        c.max_streams_per_connection = 2
    });
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.open(1);
    c.open(2);
    let e = c.err(json!({"type": "open_stream", "stream_id": 3}));
    assert_eq!(e["code"], "STREAMS_TOO_MANY");
    // The failed stream answers with STREAM_NOT_OPEN and can be closed.
    let e = c.sql_err(3, "SELECT 1");
    assert_eq!(e["code"], "STREAM_NOT_OPEN");
    c.ok(json!({"type": "close_stream", "stream_id": 3}));
    c.ok(json!({"type": "close_stream", "stream_id": 2}));
    c.open(3);
    assert_eq!(c.sql(3, "SELECT 3")["rows"][0][0], int(3));
}

#[test]
fn stream_limit_for_the_server() {
    let db = TempDb::new("streamstotal");
    let shared = shared_with(&db.path_str(), Some(TOKEN), |c| c.max_streams_total = 1);
    let mut a = Client::ready(&shared, Version::Hrana2);
    let mut b = Client::ready(&shared, Version::Hrana2);
    a.open(1);
    let e = b.err(json!({"type": "open_stream", "stream_id": 1}));
    assert_eq!(e["code"], "STREAMS_TOO_MANY");
    assert_eq!(shared.live_streams(), 1);
    a.session.close();
    // The slot is released when the worker thread ends.
    let deadline = Instant::now() + Duration::from_secs(10);
    while shared.live_streams() != 0 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    b.ok(json!({"type": "close_stream", "stream_id": 1}));
    b.open(1);
}

#[test]
fn outstanding_requests_turn_wants_input_off() {
    let db = TempDb::new("backpressure");
    let shared = shared_with(&db.path_str(), Some(TOKEN), |c| {
        c.max_outstanding_requests = 3;
        c.statement_timeout = Duration::from_millis(300);
    });
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.open(1);
    assert!(c.session.wants_input());
    let ids: Vec<i32> = (0..3)
        .map(|_| c.request(json!({"type": "execute", "stream_id": 1, "stmt": {"sql": FOREVER}})))
        .collect();
    assert!(!c.session.wants_input());
    // Accepted anyway: messages already read are never refused.
    let extra = c.request(json!({"type": "execute", "stream_id": 1, "stmt": {"sql": "SELECT 1"}}));
    for id in ids {
        assert_eq!(c.wait(id)["type"], "response_error");
    }
    assert_eq!(c.wait(extra)["type"], "response_ok");
    assert!(c.session.wants_input());
    assert_eq!(c.session.in_flight(), 0);
}

#[test]
fn idle_transaction_is_rolled_back() {
    let db = TempDb::new("idletx");
    let shared = shared_with(&db.path_str(), Some(TOKEN), |c| {
        c.idle_transaction_timeout = Duration::from_millis(150);
    });
    let mut c = Client::ready(&shared, Version::Hrana3);
    c.open(1);
    c.open(2);
    c.sql(1, "CREATE TABLE t (x)");
    c.sql(1, "BEGIN IMMEDIATE");
    c.sql(1, "INSERT INTO t VALUES (1)");
    std::thread::sleep(Duration::from_millis(600));
    // The write lock was released: another stream can write.
    c.sql(2, "INSERT INTO t VALUES (2)");
    let e = c.sql_err(1, "INSERT INTO t VALUES (3)");
    assert_eq!(e["code"], "TRANSACTION_TIMEOUT");
    assert_eq!(
        c.ok(json!({"type": "get_autocommit", "stream_id": 1}))["is_autocommit"],
        true
    );
    assert_eq!(c.sql(1, "SELECT x FROM t")["rows"], json!([[int(2)]]));
}

#[test]
fn closing_the_session_stops_workers_and_releases_locks() {
    let (_db, shared) = file_db("closesession");
    let mut a = Client::ready(&shared, Version::Hrana2);
    a.open(1);
    a.sql(1, "CREATE TABLE t (x)");
    a.sql(1, "BEGIN IMMEDIATE");
    a.sql(1, "INSERT INTO t VALUES (1)");
    // A long statement is running when the session closes.
    a.request(json!({"type": "execute", "stream_id": 1, "stmt": {"sql": FOREVER}}));
    std::thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    a.session.close();
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "close must not block"
    );
    assert!(!a.session.wants_input());
    let mut b = Client::ready(&shared, Version::Hrana2);
    b.open(1);
    // busy_timeout (5 s) covers the moment the worker needs to roll back and exit.
    b.sql(1, "INSERT INTO t VALUES (2)");
    assert_eq!(b.sql(1, "SELECT x FROM t")["rows"], json!([[int(2)]]));
}

// ----------------------------------------------------------------------------------------------
// read-only and :memory:
// ----------------------------------------------------------------------------------------------

#[test]
fn read_only_refuses_writes_clearly() {
    let db = TempDb::new("readonly");
    {
        let rw = shared_with(&db.path_str(), Some(TOKEN), |_| {});
        let mut c = Client::ready(&rw, Version::Hrana2);
        c.open(1);
        c.sql(1, "CREATE TABLE t (x)");
        c.sql(1, "INSERT INTO t VALUES (1)");
    }
    let ro = shared_with(&db.path_str(), Some(TOKEN), |c| c.read_only = true);
    let mut c = Client::ready(&ro, Version::Hrana2);
    c.open(1);
    assert_eq!(c.sql(1, "SELECT x FROM t")["rows"], json!([[int(1)]]));
    for write in [
        "INSERT INTO t VALUES (2)",
        "CREATE TABLE u (y)",
        "BEGIN IMMEDIATE",
        "DELETE FROM t",
    ] {
        let e = c.sql_err(1, write);
        assert_eq!(e["code"], "SQLITE_READONLY", "{write}");
        assert!(
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("read-only")),
            "{e}"
        );
    }
    let e = c.err(
        json!({"type": "sequence", "stream_id": 1, "sql": "SELECT 1; INSERT INTO t VALUES (3)"}),
    );
    assert_eq!(e["code"], "SQLITE_READONLY");
    // Reading transactions work.
    c.sql(1, "BEGIN");
    c.sql(1, "SELECT * FROM t");
    c.sql(1, "COMMIT");
    assert_eq!(c.sql(1, "SELECT count(*) FROM t")["rows"][0][0], int(1));
}

#[test]
fn read_only_needs_an_existing_database() {
    let db = TempDb::new("readonly-missing");
    let res = SqlShared::new(
        SqlConfig {
            db: db.path_str(),
            read_only: true,
            ..SqlConfig::default()
        },
        Arc::new(Policy::new(None, vec![], vec![])),
    );
    assert!(res.is_err());
}

#[test]
fn memory_database_is_shared_by_every_stream_and_connection() {
    let shared = shared_with(":memory:", Some(TOKEN), |_| {});
    let mut a = Client::ready(&shared, Version::Hrana2);
    let mut b = Client::ready(&shared, Version::Hrana2);
    a.open(1);
    a.sql(1, "CREATE TABLE m (x)");
    a.sql(1, "INSERT INTO m VALUES (7)");
    a.ok(json!({"type": "close_stream", "stream_id": 1}));
    // Every stream is closed: the anchor connection keeps the database alive.
    b.open(1);
    assert_eq!(b.sql(1, "SELECT x FROM m")["rows"], json!([[int(7)]]));
    a.open(2);
    a.sql(2, "BEGIN");
    a.sql(2, "INSERT INTO m VALUES (8)");
    a.sql(2, "COMMIT");
    assert_eq!(b.sql(1, "SELECT count(*) FROM m")["rows"][0][0], int(2));
    // A second server-wide state has its own database.
    let other = shared_with(":memory:", Some(TOKEN), |_| {});
    let mut c = Client::ready(&other, Version::Hrana2);
    c.open(1);
    assert_eq!(c.sql_err(1, "SELECT * FROM m")["code"], "SQLITE_ERROR");
}

#[test]
fn memory_database_waits_for_table_locks_instead_of_failing() {
    let shared = shared_with(":memory:", Some(TOKEN), |_| {});
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.open(1);
    c.open(2);
    c.sql(1, "CREATE TABLE m (x)");
    c.sql(1, "BEGIN");
    c.sql(1, "INSERT INTO m VALUES (1)");
    // Stream 2 reads the locked table: it waits (on its own thread) until stream 1 commits.
    let read = c.request(
        json!({"type": "execute", "stream_id": 2, "stmt": {"sql": "SELECT count(*) FROM m"}}),
    );
    std::thread::sleep(Duration::from_millis(100));
    c.sql(1, "COMMIT");
    let msg = c.wait(read);
    assert_eq!(msg["type"], "response_ok", "{msg}");
    assert_eq!(msg["response"]["result"]["rows"][0][0], int(1));
}
