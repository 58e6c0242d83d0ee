//! Limits: time, response size, streams, requests in flight, idle transactions.

use super::*;

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
    // No half commits: every later statement of the stream fails until its ROLLBACK.
    for sql in ["INSERT INTO t VALUES (4)", "SELECT x FROM t", "COMMIT"] {
        assert_eq!(c.sql_err(1, sql)["code"], "TRANSACTION_TIMEOUT", "{sql}");
    }
    let batch = c.err(json!({"type": "batch", "stream_id": 1, "batch": {"steps": [
        {"stmt": {"sql": "INSERT INTO t VALUES (5)"}}]}}));
    assert_eq!(batch["code"], "TRANSACTION_TIMEOUT");
    assert_eq!(c.sql(1, "ROLLBACK")["rows"], json!([]));
    assert_eq!(c.sql(1, "SELECT x FROM t")["rows"], json!([[int(2)]]));
}

/// The hostile-peers review's case: BEGIN, INSERT 1, idle past the timeout, then INSERT 2,
/// INSERT 3, COMMIT pipelined. Nothing of the transaction may reach the file.
#[test]
fn a_pipeline_after_an_idle_rollback_commits_nothing() {
    let db = TempDb::new("halfcommit");
    let shared = shared_with(&db.path_str(), Some(TOKEN), |c| {
        c.idle_transaction_timeout = Duration::from_millis(150);
    });
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.open(1);
    c.sql(1, "CREATE TABLE t (x)");
    c.sql(1, "BEGIN IMMEDIATE");
    c.sql(1, "INSERT INTO t VALUES (1)");
    std::thread::sleep(Duration::from_millis(600));
    let ids: Vec<i32> = [
        "INSERT INTO t VALUES (2)",
        "INSERT INTO t VALUES (3)",
        "COMMIT",
    ]
    .iter()
    .map(|sql| c.request(json!({"type": "execute", "stream_id": 1, "stmt": {"sql": sql}})))
    .collect();
    for id in ids {
        let msg = c.wait(id);
        assert_eq!(msg["type"], "response_error", "{msg}");
        assert_eq!(msg["error"]["code"], "TRANSACTION_TIMEOUT");
    }
    let mut other = Client::ready(&shared, Version::Hrana2);
    other.open(1);
    assert_eq!(other.sql(1, "SELECT count(*) FROM t")["rows"][0][0], int(0));
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
