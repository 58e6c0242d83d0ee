//! The real `libsql` crate (remote mode, Hrana 3 over HTTP) against wsbridge.
//!
//! What libsql 0.10 sends, from its source: `execute`, `execute_batch`, `prepare` (a `describe`)
//! and transactions go to `POST /v3/pipeline` with a baton once a stream is open; `query` (and
//! `Statement::query`) goes to `POST /v3/cursor` and reads the NDJSON entries as they arrive.
//! Every test starts its own server; a failing test prints the HTTP transcript.

use libsql::{named_params, params, Value};
use serde_json::Value as Json;
use wsbridge_libsql_remote_tests::{Harness, Message};

/// All rows of a query, as values.
async fn all(conn: &libsql::Connection, sql: &str, p: impl libsql::params::IntoParams) -> Vec<Vec<Value>> {
    let mut rows = conn.query(sql, p).await.unwrap_or_else(|e| panic!("query {sql:?}: {e}"));
    let mut out = Vec::new();
    while let Some(row) = rows.next().await.unwrap_or_else(|e| panic!("next row of {sql:?}: {e}")) {
        let n = row.column_count();
        out.push((0..n).map(|i| row.get_value(i).unwrap()).collect());
    }
    out
}

async fn one_int(conn: &libsql::Connection, sql: &str) -> i64 {
    let rows = all(conn, sql, ()).await;
    assert_eq!(rows.len(), 1, "{sql}: {rows:?}");
    match rows[0][0] {
        Value::Integer(i) => i,
        ref other => panic!("{sql}: expected an integer, got {other:?}"),
    }
}

fn json(m: &Message) -> Json {
    serde_json::from_slice(&m.body)
        .unwrap_or_else(|e| panic!("body of {:?} is not JSON ({e}): {}", m.start_line, String::from_utf8_lossy(&m.body)))
}

/// Requests paired with their responses, per connection in order (HTTP/1.1 without pipelining).
fn exchanges(h: &Harness) -> Vec<(Message, Message)> {
    let reqs = h.traffic.requests();
    let resps = h.traffic.responses();
    let mut out = Vec::new();
    let conns: std::collections::BTreeSet<usize> = reqs.iter().map(|m| m.conn).collect();
    for c in conns {
        let q: Vec<_> = reqs.iter().filter(|m| m.conn == c).cloned().collect();
        let r: Vec<_> = resps.iter().filter(|m| m.conn == c).cloned().collect();
        out.extend(q.into_iter().zip(r));
    }
    out
}

/// The SQL texts of a pipeline request's `execute` and `batch` requests. libsql re-serializes
/// each statement it parsed, with a `;` at the end: that is dropped here.
fn sqls_of_pipeline(body: &Json) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |sql: &Json| {
        if let Some(sql) = sql.as_str() {
            out.push(sql.trim_end().trim_end_matches(';').to_string());
        }
    };
    for r in body["requests"].as_array().into_iter().flatten() {
        push(&r["stmt"]["sql"]);
        for step in r["batch"]["steps"].as_array().into_iter().flatten() {
            push(&step["stmt"]["sql"]);
        }
    }
    out
}

#[tokio::test]
async fn execute_with_params_reports_changes_and_rowid() {
    let h = Harness::start().await;
    let conn = h.connect();
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, n INTEGER)", ()).await.unwrap();

    assert_eq!(conn.execute("INSERT INTO t(name, n) VALUES (?1, ?2)", params!["a", 10]).await.unwrap(), 1);
    assert_eq!(conn.last_insert_rowid(), 1);
    assert_eq!(
        conn.execute("INSERT INTO t(name, n) VALUES (:name, :n)", named_params! {":name": "b", ":n": 20})
            .await
            .unwrap(),
        1
    );
    assert_eq!(conn.last_insert_rowid(), 2);
    assert_eq!(conn.execute("UPDATE t SET n = n + 1 WHERE n >= ?", params![10]).await.unwrap(), 2);
    assert_eq!(conn.changes(), 2);

    let mut rows = conn.query("SELECT name, n FROM t WHERE n > ? ORDER BY id", params![0]).await.unwrap();
    assert_eq!(rows.column_count(), 2);
    assert_eq!(rows.column_name(0), Some("name"));
    assert_eq!(rows.column_name(1), Some("n"));
    let mut got = Vec::new();
    while let Some(row) = rows.next().await.unwrap() {
        got.push((row.get::<String>(0).unwrap(), row.get::<i64>(1).unwrap()));
    }
    assert_eq!(got, vec![("a".to_string(), 11), ("b".to_string(), 21)]);
    drop(rows);

    // The endpoints libsql used, and that every request carried the token.
    let lines = h.traffic.request_lines();
    assert!(lines.iter().any(|l| l == "POST /v3/pipeline"), "{lines:?}");
    assert!(lines.iter().any(|l| l == "POST /v3/cursor"), "{lines:?}");
    assert!(
        lines.iter().all(|l| l == "POST /v3/pipeline" || l == "POST /v3/cursor"),
        "unexpected endpoint: {lines:?}"
    );
    for req in h.traffic.requests() {
        assert_eq!(req.header("authorization"), Some(format!("Bearer {}", h.server.token).as_str()));
    }
    for (req, resp) in exchanges(&h) {
        assert_eq!(resp.status(), Some(200), "{} -> {}", req.start_line, resp.start_line);
    }
}

#[tokio::test]
async fn batch_executes_every_statement_in_order() {
    let h = Harness::start().await;
    let conn = h.connect();
    let mut batch = conn
        .execute_batch(
            "CREATE TABLE b(x INTEGER, y TEXT);
             INSERT INTO b VALUES (1, 'one');
             INSERT INTO b VALUES (2, 'two');
             INSERT INTO b VALUES (3, 'three');
             UPDATE b SET y = upper(y) WHERE x >= 2;",
        )
        .await
        .unwrap();
    let mut results = 0;
    while let Some(step) = batch.next_stmt_row() {
        assert!(step.is_some(), "statement {results} of the batch was not executed");
        results += 1;
    }
    assert_eq!(results, 5);
    assert_eq!(
        all(&conn, "SELECT x, y FROM b ORDER BY x", ()).await,
        vec![
            vec![Value::Integer(1), Value::Text("one".into())],
            vec![Value::Integer(2), Value::Text("TWO".into())],
            vec![Value::Integer(3), Value::Text("THREE".into())],
        ]
    );

    // A batch whose later step fails skips the steps after it (libsql chains them with
    // `ok` conditions): the insert after the failure does not happen.
    let err = conn
        .execute_batch(
            "INSERT INTO b VALUES (4, 'four');
             INSERT INTO no_such_table VALUES (5);
             INSERT INTO b VALUES (6, 'six');",
        )
        .await
        .expect_err("a batch with a failing statement must fail");
    assert!(err.to_string().contains("no such table: no_such_table"), "{err}");
    assert_eq!(one_int(&conn, "SELECT count(*) FROM b WHERE x = 4").await, 1);
    assert_eq!(one_int(&conn, "SELECT count(*) FROM b WHERE x = 6").await, 0);

    // A transactional batch is all or nothing: BEGIN, the steps, COMMIT, or ROLLBACK.
    let err = conn
        .execute_transactional_batch(
            "INSERT INTO b VALUES (7, 'seven');
             INSERT INTO no_such_table VALUES (8);",
        )
        .await
        .expect_err("the transactional batch must fail");
    assert!(err.to_string().contains("no such table: no_such_table"), "{err}");
    assert_eq!(one_int(&conn, "SELECT count(*) FROM b WHERE x = 7").await, 0, "the failed batch was not rolled back");
    assert!(conn.is_autocommit());
    conn.execute_transactional_batch("INSERT INTO b VALUES (9, 'nine'); INSERT INTO b VALUES (10, 'ten');")
        .await
        .unwrap();
    assert_eq!(one_int(&conn, "SELECT count(*) FROM b WHERE x IN (9, 10)").await, 2);

    // The failed transactional batch went out as one pipeline batch with its conditions, and the
    // server reported the error per step, not as an HTTP error.
    let (req, resp) = exchanges(&h)
        .into_iter()
        .find(|(req, _)| {
            req.method_path() == "POST /v3/pipeline" && sqls_of_pipeline(&json(req)).iter().any(|s| s.contains("VALUES (8)"))
        })
        .expect("the transactional batch request");
    assert_eq!(resp.status(), Some(200));
    let body = json(&resp);
    let batch = &body["results"][0]["response"]["result"];
    assert_eq!(body["results"][0]["type"], "ok", "{body}");
    let errors = batch["step_errors"].as_array().expect("step_errors");
    let results = batch["step_results"].as_array().expect("step_results");
    // BEGIN, insert 7, failing insert, COMMIT (skipped), ROLLBACK (run).
    assert_eq!(errors.len(), 5, "{body}");
    assert_eq!(results.len(), 5, "{body}");
    assert!(errors[2]["message"].as_str().unwrap_or("").contains("no such table"), "{body}");
    assert!(results[3].is_null() && errors[3].is_null(), "COMMIT must be skipped: {body}");
    assert!(results[4].is_object(), "ROLLBACK must run: {body} (request {})", String::from_utf8_lossy(&req.body));
}

#[tokio::test]
async fn transaction_commit_rollback_and_isolation() {
    let h = Harness::start().await;
    let conn = h.connect();
    conn.execute("CREATE TABLE acct(id INTEGER PRIMARY KEY, v INTEGER)", ()).await.unwrap();
    conn.execute("INSERT INTO acct VALUES (1, 100)", ()).await.unwrap();
    let other = h.connect();

    let tx = conn.transaction().await.unwrap();
    assert!(!tx.is_autocommit(), "the server must report is_autocommit = false inside BEGIN");
    assert_eq!(tx.execute("UPDATE acct SET v = v - 30 WHERE id = 1", ()).await.unwrap(), 1);
    assert_eq!(tx.execute("INSERT INTO acct VALUES (2, 30)", ()).await.unwrap(), 1);
    // Inside the transaction (a cursor on the transaction's stream, with its baton) ...
    assert_eq!(
        all(&tx, "SELECT id, v FROM acct ORDER BY id", ()).await,
        vec![vec![Value::Integer(1), Value::Integer(70)], vec![Value::Integer(2), Value::Integer(30)]]
    );
    // ... and outside it, on another stream, nothing is visible before COMMIT.
    assert_eq!(
        all(&other, "SELECT id, v FROM acct ORDER BY id", ()).await,
        vec![vec![Value::Integer(1), Value::Integer(100)]]
    );
    tx.commit().await.unwrap();
    assert_eq!(
        all(&other, "SELECT id, v FROM acct ORDER BY id", ()).await,
        vec![vec![Value::Integer(1), Value::Integer(70)], vec![Value::Integer(2), Value::Integer(30)]]
    );

    let tx = conn.transaction().await.unwrap();
    assert_eq!(tx.execute("DELETE FROM acct", ()).await.unwrap(), 2);
    assert_eq!(one_int(&tx, "SELECT count(*) FROM acct").await, 0);
    tx.rollback().await.unwrap();
    assert_eq!(one_int(&conn, "SELECT count(*) FROM acct").await, 2);
    assert_eq!(one_int(&other, "SELECT count(*) FROM acct").await, 2);

    // An interactive transaction with plain statements on the connection's own stream: libsql
    // keeps the stream (baton) open from BEGIN to COMMIT.
    conn.execute("BEGIN", ()).await.unwrap();
    assert!(!conn.is_autocommit());
    conn.execute("INSERT INTO acct VALUES (3, 3)", ()).await.unwrap();
    assert_eq!(one_int(&conn, "SELECT count(*) FROM acct").await, 3);
    assert_eq!(one_int(&other, "SELECT count(*) FROM acct").await, 2);
    conn.execute("COMMIT", ()).await.unwrap();
    assert!(conn.is_autocommit());
    assert_eq!(one_int(&other, "SELECT count(*) FROM acct").await, 3);

    // On the wire: every request after the one that opened a transaction's stream carried the
    // baton the server had just handed out, and the server ended the stream (baton null) when
    // the client closed it after COMMIT/ROLLBACK.
    let mut saw_commit = false;
    let mut saw_rollback = false;
    for (req, resp) in exchanges(&h) {
        assert_eq!(resp.status(), Some(200), "{} -> {}: {}", req.start_line, resp.start_line, String::from_utf8_lossy(&resp.body));
        if req.method_path() != "POST /v3/pipeline" {
            continue;
        }
        let q = json(&req);
        let r = json(&resp);
        let sqls = sqls_of_pipeline(&q);
        let closes = q["requests"].as_array().unwrap().iter().any(|x| x["type"] == "close");
        if sqls.iter().any(|s| s == "COMMIT" || s == "ROLLBACK") {
            assert!(q["baton"].is_string(), "COMMIT/ROLLBACK sent without a baton: {q}");
            if sqls.iter().any(|s| s == "COMMIT") {
                saw_commit = true;
            } else {
                saw_rollback = true;
            }
        }
        if sqls.iter().any(|s| s.starts_with("BEGIN")) && !closes {
            assert!(r["baton"].is_string(), "no baton after BEGIN: request {q} response {r}");
        }
        if closes {
            assert!(r["baton"].is_null(), "a closed stream must get no baton: request {q} response {r}");
        }
    }
    assert!(saw_commit && saw_rollback);
    let cursor_with_baton = h
        .traffic
        .requests()
        .iter()
        .filter(|m| m.method_path() == "POST /v3/cursor")
        .any(|m| json(m)["baton"].is_string());
    assert!(cursor_with_baton, "a query inside a transaction goes to /v3/cursor with the stream's baton");
}

#[tokio::test]
async fn query_streams_many_rows_through_v3_cursor() {
    const N: i64 = 3000;
    let h = Harness::start().await;
    let conn = h.connect();
    conn.execute("CREATE TABLE big(i INTEGER PRIMARY KEY, s TEXT)", ()).await.unwrap();
    let inserted = conn
        .execute(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?1)
             INSERT INTO big SELECT x, 'row ' || x FROM c",
            params![N],
        )
        .await
        .unwrap();
    assert_eq!(inserted, N as u64);

    let mut rows = conn.query("SELECT i, s FROM big WHERE i > ? ORDER BY i", params![0]).await.unwrap();
    let mut expected = 1;
    while let Some(row) = rows.next().await.unwrap() {
        assert_eq!(row.get::<i64>(0).unwrap(), expected);
        assert_eq!(row.get::<String>(1).unwrap(), format!("row {expected}"));
        expected += 1;
    }
    assert_eq!(expected - 1, N);
    drop(rows);

    // The query went through /v3/cursor, whose response is NDJSON: the cursor line with the
    // baton, step_begin, one line per row, step_end.
    let (req, resp) = exchanges(&h)
        .into_iter()
        .find(|(req, _)| {
            req.method_path() == "POST /v3/cursor"
                && json(req)["batch"]["steps"][0]["stmt"]["sql"].as_str().unwrap_or("").contains("FROM big")
        })
        .expect("a POST /v3/cursor for the query");
    assert_eq!(resp.status(), Some(200));
    let text = String::from_utf8(resp.body.clone()).expect("cursor body is UTF-8");
    let lines: Vec<Json> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("cursor line is not JSON ({e}): {l}")))
        .collect();
    assert!(lines[0].get("baton").is_some(), "first line must be the cursor response: {}", lines[0]);
    let types: Vec<&str> = lines[1..].iter().map(|l| l["type"].as_str().unwrap_or("?")).collect();
    assert_eq!(types.first(), Some(&"step_begin"), "request {}", String::from_utf8_lossy(&req.body));
    assert_eq!(types.last(), Some(&"step_end"));
    assert_eq!(types.iter().filter(|t| **t == "row").count(), N as usize);
    assert_eq!(lines[1]["cols"][0]["name"], "i");
    assert_eq!(lines[1]["cols"][1]["name"], "s");

    // A query with no table at all, and an empty result.
    let rows = all(
        &conn,
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5) SELECT x * x FROM c",
        (),
    )
    .await;
    assert_eq!(rows, (1..=5).map(|x| vec![Value::Integer(x * x)]).collect::<Vec<_>>());
    assert!(all(&conn, "SELECT i FROM big WHERE i < 0", ()).await.is_empty());
}

#[tokio::test]
async fn cursor_reports_an_error_after_the_rows_before_it() {
    let h = Harness::start().await;
    let conn = h.connect();
    // Compiles fine (so `describe` passes); fails at the third row, when abs() overflows.
    let mut rows = conn
        .query(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5)
             SELECT CASE WHEN x < 3 THEN x ELSE abs(-9223372036854775807 - 1) END FROM c",
            (),
        )
        .await
        .unwrap();
    let mut got = Vec::new();
    let err = loop {
        match rows.next().await {
            Ok(Some(row)) => got.push(row.get::<i64>(0).unwrap()),
            Ok(None) => panic!("the query must fail, got only rows {got:?}"),
            Err(e) => break e,
        }
    };
    assert_eq!(got, vec![1, 2]);
    assert!(err.to_string().contains("integer overflow"), "{err}");
    drop(rows);
    // The connection is still usable.
    assert_eq!(one_int(&conn, "SELECT 41 + 1").await, 42);
}

#[tokio::test]
async fn values_of_every_type_round_trip() {
    let h = Harness::start().await;
    let conn = h.connect();
    conn.execute("CREATE TABLE v(k INTEGER PRIMARY KEY, x)", ()).await.unwrap();
    let blob: Vec<u8> = (0..=255u8).collect();
    let text = "héllo ✓ 😀\n\t\"quoted\" \\ \u{0}end".to_string();
    let values = vec![
        Value::Integer(0),
        Value::Integer(i64::MAX),
        Value::Integer(i64::MIN),
        Value::Integer(-1),
        Value::Real(3.25),
        Value::Real(-0.5),
        Value::Real(1e300),
        Value::Real(3.0),
        Value::Text(text.clone()),
        Value::Text(String::new()),
        Value::Blob(blob.clone()),
        Value::Blob(Vec::new()),
        Value::Null,
    ];
    for (k, v) in values.iter().enumerate() {
        conn.execute("INSERT INTO v VALUES (?, ?)", params![k as i64, v.clone()]).await.unwrap();
    }
    let rows = all(&conn, "SELECT k, x, typeof(x) FROM v ORDER BY k", ()).await;
    assert_eq!(rows.len(), values.len());
    let types = [
        "integer", "integer", "integer", "integer", "real", "real", "real", "real", "text", "text", "blob", "blob",
        "null",
    ];
    for (k, (row, v)) in rows.iter().zip(&values).enumerate() {
        assert_eq!(row[0], Value::Integer(k as i64));
        assert_eq!(&row[1], v, "value {k}");
        assert_eq!(row[2], Value::Text(types[k].into()), "typeof value {k}");
    }

    // Literals, read through typed getters too.
    let mut r = conn
        .query("SELECT 1, 2.5, 'x', x'00ff', NULL, 9007199254740993, ?, ?", params![true, 1.5f64])
        .await
        .unwrap();
    let row = r.next().await.unwrap().expect("one row");
    assert_eq!(row.get::<i64>(0).unwrap(), 1);
    assert_eq!(row.get::<f64>(1).unwrap(), 2.5);
    assert_eq!(row.get::<String>(2).unwrap(), "x");
    assert_eq!(row.get::<Vec<u8>>(3).unwrap(), vec![0x00, 0xff]);
    assert_eq!(row.get_value(4).unwrap(), Value::Null);
    assert_eq!(row.get::<Option<i64>>(4).unwrap(), None);
    // Above 2^53: integers travel as strings in Hrana JSON, so no precision is lost.
    assert_eq!(row.get::<i64>(5).unwrap(), 9007199254740993);
    assert_eq!(row.get_value(6).unwrap(), Value::Integer(1));
    assert_eq!(row.get_value(7).unwrap(), Value::Real(1.5));
    assert!(r.next().await.unwrap().is_none());
}

#[tokio::test]
async fn sql_errors_are_reported_and_the_connection_survives() {
    let h = Harness::start().await;
    let conn = h.connect();

    let err = conn.execute("INSERT INTO missing VALUES (1)", ()).await.expect_err("no such table");
    assert!(err.to_string().contains("no such table: missing"), "{err}");
    // A query is prepared (describe) before its cursor: the error comes from there.
    let err = conn.query("SELECT * FROM missing", ()).await.err().expect("no such table");
    assert!(err.to_string().contains("no such table: missing"), "{err}");

    conn.execute("CREATE TABLE u(x UNIQUE)", ()).await.unwrap();
    conn.execute("INSERT INTO u VALUES (1)", ()).await.unwrap();
    let err = conn.execute("INSERT INTO u VALUES (1)", ()).await.expect_err("duplicate");
    assert!(err.to_string().contains("UNIQUE constraint failed: u.x"), "{err}");
    let err = conn.execute("SELECT abs(-9223372036854775807 - 1)", ()).await.expect_err("overflow");
    assert!(err.to_string().contains("integer overflow"), "{err}");
    assert_eq!(one_int(&conn, "SELECT count(*) FROM u").await, 1);

    // SQL errors are Hrana errors inside a 200 response, not HTTP errors.
    let exchanges = exchanges(&h);
    let failing = exchanges
        .iter()
        .find(|(req, _)| sqls_of_pipeline(&json(req)).iter().any(|s| s == "INSERT INTO missing VALUES (1)"))
        .expect("the failing request");
    assert_eq!(failing.1.status(), Some(200));
    let body = json(&failing.1);
    let text = body.to_string();
    assert!(text.contains("no such table: missing"), "{text}");
    for (req, resp) in &exchanges {
        assert_eq!(resp.status(), Some(200), "{} -> {}", req.start_line, resp.start_line);
    }
}

#[tokio::test]
async fn prepared_statement_is_reusable() {
    let h = Harness::start().await;
    let conn = h.connect();
    conn.execute("CREATE TABLE p(a INTEGER, b TEXT)", ()).await.unwrap();
    let insert = conn.prepare("INSERT INTO p VALUES (?1, ?2)").await.unwrap();
    for i in 0..10i64 {
        assert_eq!(insert.execute(params![i, format!("v{i}")]).await.unwrap(), 1);
    }
    let select = conn.prepare("SELECT b FROM p WHERE a >= ? ORDER BY a").await.unwrap();
    for start in [0i64, 5, 9, 10] {
        let mut rows = select.query(params![start]).await.unwrap();
        let mut got = Vec::new();
        while let Some(row) = rows.next().await.unwrap() {
            got.push(row.get::<String>(0).unwrap());
        }
        assert_eq!(got, (start..10).map(|i| format!("v{i}")).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn wrong_or_missing_token_is_refused_with_401() {
    let h = Harness::start().await;
    for token in ["wrong-token-0123456789abcdefghijkl", ""] {
        let (db, traffic) = h.open_with_token(token).await;
        let conn = db.connect().unwrap();
        let err = conn.execute("SELECT 1", ()).await.expect_err("a wrong token must be refused");
        assert!(err.to_string().contains("401"), "token {token:?}: {err}");
        let err = conn.query("SELECT 1", ()).await.err().expect("a wrong token must be refused");
        assert!(err.to_string().contains("401"), "token {token:?}: {err}");
        let statuses: Vec<_> = traffic.responses().iter().map(|m| m.status()).collect();
        assert!(!statuses.is_empty() && statuses.iter().all(|s| *s == Some(401)), "{statuses:?}\n{}", traffic.transcript());
    }
    // The right token still works on the same server.
    assert_eq!(one_int(&h.connect(), "SELECT 7").await, 7);
}
