//! Hrana over HTTP against the server, over raw sockets: pipelines and batons, cursors, the
//! legacy v1 endpoints, and HTTP/1.1 itself (keep-alive, pipelining, chunked bodies,
//! `Expect: 100-continue`, CORS, and the limits with their statuses).

mod common;

use std::io::Write;
use std::time::Duration;

use common::ServerProcess;
use common::http::{HttpConn, HttpResponse, request_bytes};
use common::sql::{TOKEN, TestServer};
use serde_json::{Value as Json, json};

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

fn post(conn: &mut HttpConn, path: &str, body: &Json) -> HttpResponse {
    let auth = bearer();
    conn.request(
        "POST",
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.to_string().as_bytes(),
    )
}

fn execute(sql: &str) -> Json {
    json!({"type": "execute", "stmt": {"sql": sql}})
}

/// The rows of an `execute` result, as JSON values.
fn rows(result: &Json) -> &Json {
    &result["response"]["result"]["rows"]
}

#[test]
fn version_probes_and_health_need_no_token() {
    let server = TestServer::start("http-probes", |_| {});
    let mut c = HttpConn::connect(server.addr);
    for path in ["/v2", "/v3"] {
        let r = c.request("GET", path, &[], b"");
        assert_eq!(r.status, 200, "{path}");
        assert!(r.text().contains("Hrana over HTTP"));
    }
    // @libsql/client probes the protobuf encoding first, and must hear that it is not served.
    assert_eq!(c.request("GET", "/v3-protobuf", &[], b"").status, 404);
    let health = c.request("GET", "/health", &[], b"");
    assert_eq!((health.status, health.body.len()), (200, 0));
    let version = c.request("GET", "/version", &[], b"");
    assert!(
        version.text().starts_with("wsbridge "),
        "{}",
        version.text()
    );
    let head = c.request("HEAD", "/v2", &[], b"");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("Content-Length"), Some("44"));
}

#[test]
fn a_pipeline_runs_every_request_in_order_even_after_an_error() {
    let server = TestServer::start("http-pipeline", |_| {});
    let mut c = HttpConn::connect(server.addr);
    let r = post(
        &mut c,
        "/v2/pipeline",
        &json!({"baton": null, "requests": [
            execute("CREATE TABLE t (x)"),
            execute("INSERT INTO nope VALUES (1)"),
            {"type": "store_sql", "sql_id": 1, "sql": "INSERT INTO t VALUES (?)"},
            {"type": "execute", "stmt": {"sql_id": 1, "args": [{"type": "integer", "value": "7"}]}},
            {"type": "close_sql", "sql_id": 1},
            {"type": "describe", "sql": "SELECT x FROM t WHERE x > ?"},
            {"type": "sequence", "sql": "INSERT INTO t VALUES (8); INSERT INTO t VALUES (9)"},
            {"type": "batch", "batch": {"steps": [
                {"stmt": {"sql": "SELECT count(*) FROM t"}},
                {"condition": {"type": "error", "step": 0}, "stmt": {"sql": "SELECT 1"}}
            ]}},
            execute("SELECT x FROM t ORDER BY x"),
            {"type": "close"}
        ]}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    let body = r.json();
    assert_eq!(body["baton"], Json::Null, "closed by its last request");
    assert_eq!(body["base_url"], Json::Null);
    let results = body["results"].as_array().expect("results");
    let kinds: Vec<&str> = results
        .iter()
        .map(|r| match r["type"].as_str() {
            Some("ok") => r["response"]["type"].as_str().unwrap_or("?"),
            other => other.unwrap_or("?"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "execute",
            "error",
            "store_sql",
            "execute",
            "close_sql",
            "describe",
            "sequence",
            "batch",
            "execute",
            "close"
        ]
    );
    assert_eq!(results[1]["error"]["code"], "SQLITE_ERROR");
    assert_eq!(
        results[5]["response"]["result"]["params"][0]["name"],
        Json::Null
    );
    let batch = &results[7]["response"]["result"];
    assert_eq!(batch["step_results"][0]["rows"][0][0]["value"], "3");
    assert_eq!(batch["step_results"][1], Json::Null, "skipped");
    let values: Vec<&str> = rows(&results[8])
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row[0]["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["7", "8", "9"]);
}

#[test]
fn a_baton_carries_a_transaction_across_requests_and_connections() {
    let server = TestServer::start("http-baton", |_| {});
    let mut a = HttpConn::connect(server.addr);
    post(
        &mut a,
        "/v2/pipeline",
        &json!({"requests": [execute("CREATE TABLE t (x)"), {"type": "close"}]}),
    );
    let r = post(
        &mut a,
        "/v3/pipeline",
        &json!({"requests": [execute("BEGIN"), execute("INSERT INTO t VALUES (1)"), {"type": "get_autocommit"}]}),
    )
    .json();
    assert_eq!(r["results"][2]["response"]["is_autocommit"], false);
    let baton = r["baton"].as_str().expect("a baton").to_owned();
    // Another stream does not see the uncommitted row.
    let mut other = HttpConn::connect(server.addr);
    let seen = post(
        &mut other,
        "/v2/pipeline",
        &json!({"requests": [execute("SELECT count(*) FROM t"), {"type": "close"}]}),
    )
    .json();
    assert_eq!(rows(&seen["results"][0])[0][0]["value"], "0");
    // The baton works from another connection, once.
    let mut b = HttpConn::connect(server.addr);
    let r = post(
        &mut b,
        "/v3/pipeline",
        &json!({"baton": baton, "requests": [execute("INSERT INTO t VALUES (2)"), execute("COMMIT")]}),
    );
    assert_eq!(r.status, 200);
    let next = r.json()["baton"]
        .as_str()
        .expect("the next baton")
        .to_owned();
    assert_ne!(next, baton);
    // Replayed: refused, and the stream is untouched.
    let replay = post(
        &mut b,
        "/v3/pipeline",
        &json!({"baton": baton, "requests": [execute("DELETE FROM t")]}),
    );
    assert_eq!(replay.status, 400);
    assert!(
        replay.text().contains("already been used"),
        "{}",
        replay.text()
    );
    // Forged: refused.
    let mut forged = next.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let r = post(
        &mut b,
        "/v3/pipeline",
        &json!({"baton": forged, "requests": []}),
    );
    assert_eq!(
        (r.status, r.text().as_str()),
        (400, "Received an invalid baton")
    );
    let r = post(
        &mut b,
        "/v3/pipeline",
        &json!({"baton": next, "requests": [execute("SELECT count(*) FROM t"), {"type": "close"}]}),
    )
    .json();
    assert_eq!(rows(&r["results"][0])[0][0]["value"], "2");
}

#[test]
fn an_idle_stream_expires_and_its_transaction_is_rolled_back() {
    let server = TestServer::start("http-expiry", |c| {
        c.http_stream_expiry = Duration::from_millis(300);
    });
    let mut c = HttpConn::connect(server.addr);
    post(
        &mut c,
        "/v2/pipeline",
        &json!({"requests": [execute("CREATE TABLE t (x)"), {"type": "close"}]}),
    );
    let r = post(
        &mut c,
        "/v2/pipeline",
        &json!({"requests": [execute("BEGIN"), execute("INSERT INTO t VALUES (1)")]}),
    )
    .json();
    let baton = r["baton"].as_str().unwrap().to_owned();
    std::thread::sleep(Duration::from_millis(1500));
    let r = post(
        &mut c,
        "/v2/pipeline",
        &json!({"baton": baton, "requests": [execute("COMMIT")]}),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(r.json()["code"], "STREAM_EXPIRED");
    let r = post(
        &mut c,
        "/v2/pipeline",
        &json!({"requests": [execute("SELECT count(*) FROM t"), {"type": "close"}]}),
    )
    .json();
    assert_eq!(
        rows(&r["results"][0])[0][0]["value"],
        "0",
        "nothing of it committed"
    );
}

#[test]
fn a_protocol_error_fails_the_whole_pipeline_before_anything_runs() {
    let server = TestServer::start("http-protocol", |_| {});
    let mut c = HttpConn::connect(server.addr);
    post(
        &mut c,
        "/v2/pipeline",
        &json!({"requests": [execute("CREATE TABLE t (x)"), {"type": "close"}]}),
    );
    let r = post(
        &mut c,
        "/v2/pipeline",
        &json!({"requests": [execute("INSERT INTO t VALUES (1)"), {"type": "execute", "stmt": {"sql_id": 9}}]}),
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("SQL text 9 not found"), "{}", r.text());
    // get_autocommit is Hrana 3: refused on /v2.
    let r = post(
        &mut c,
        "/v2/pipeline",
        &json!({"requests": [{"type": "get_autocommit"}]}),
    );
    assert_eq!(r.status, 400);
    let r = c.request(
        "POST",
        "/v2/pipeline",
        &[("Authorization", &bearer())],
        b"{not json",
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("JSON"));
    let r = post(
        &mut c,
        "/v2/pipeline",
        &json!({"requests": [execute("SELECT count(*) FROM t"), {"type": "close"}]}),
    )
    .json();
    assert_eq!(rows(&r["results"][0])[0][0]["value"], "0");
}

#[test]
fn a_cursor_streams_its_entries_as_lines() {
    let server = TestServer::start("http-cursor", |_| {});
    let mut c = HttpConn::connect(server.addr);
    post(
        &mut c,
        "/v2/pipeline",
        &json!({"requests": [
            execute("CREATE TABLE t (x)"),
            execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) INSERT INTO t SELECT i FROM n"),
            {"type": "close"}
        ]}),
    );
    let r = post(
        &mut c,
        "/v3/cursor",
        &json!({"baton": null, "batch": {"steps": [
            {"stmt": {"sql": "SELECT x FROM t ORDER BY x"}},
            {"stmt": {"sql": "SELECT nope FROM t"}},
            {"condition": {"type": "ok", "step": 1}, "stmt": {"sql": "SELECT 1"}}
        ]}}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Transfer-Encoding"), Some("chunked"));
    let lines: Vec<Json> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let baton = lines[0]["baton"]
        .as_str()
        .expect("the first line has the baton")
        .to_owned();
    assert_eq!(lines[1]["type"], "step_begin");
    assert_eq!(lines[1]["cols"][0]["name"], "x");
    let values: Vec<i64> = lines
        .iter()
        .filter(|l| l["type"] == "row")
        .map(|l| l["row"][0]["value"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(values, (1..=5000).collect::<Vec<_>>());
    let kinds: Vec<&str> = lines[2 + 5000..]
        .iter()
        .map(|l| l["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["step_end", "step_error"],
        "the skipped step has no entries"
    );
    // The stream goes on with the baton of the first line.
    let r = post(
        &mut c,
        "/v3/pipeline",
        &json!({"baton": baton, "requests": [{"type": "get_autocommit"}, {"type": "close"}]}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["results"][0]["response"]["is_autocommit"], true);
}

#[test]
fn the_legacy_v1_endpoints_answer_one_statement_or_batch() {
    let server = TestServer::start("http-v1", |_| {});
    let mut c = HttpConn::connect(server.addr);
    let r = post(
        &mut c,
        "/v1/execute",
        &json!({"stmt": {"sql": "SELECT ? + 1 AS y", "args": [{"type": "integer", "value": "41"}]}}),
    );
    assert_eq!(r.status, 200);
    let result = &r.json()["result"];
    assert_eq!(result["cols"][0]["name"], "y");
    assert_eq!(result["rows"][0][0]["value"], "42");
    let r = post(
        &mut c,
        "/v1/batch",
        &json!({"batch": {"steps": [
            {"stmt": {"sql": "SELECT 1"}},
            {"stmt": {"sql": "SELEKT"}}
        ]}}),
    );
    assert_eq!(r.status, 200);
    let result = &r.json()["result"];
    assert_eq!(result["step_errors"][1]["code"], "SQL_PARSE_ERROR");
    let r = post(&mut c, "/v1/execute", &json!({"stmt": {"sql": "SELEKT"}}));
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["code"], "SQL_PARSE_ERROR");
}

#[test]
fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let server = TestServer::start("http-pipelining", |_| {});
    let mut c = HttpConn::connect(server.addr);
    let auth = bearer();
    let mut bytes = Vec::new();
    for i in 0..20 {
        let body =
            json!({"requests": [execute(&format!("SELECT {i}")), {"type": "close"}]}).to_string();
        bytes.extend(request_bytes(
            "POST",
            "/v2/pipeline",
            &[("Authorization", &auth)],
            body.as_bytes(),
        ));
        if i == 10 {
            bytes.extend(request_bytes("GET", "/health", &[], b""));
        }
    }
    c.send(&bytes);
    for i in 0..20 {
        let r = c.read_response();
        assert_eq!(r.status, 200);
        assert_eq!(rows(&r.json()["results"][0])[0][0]["value"], i.to_string());
        if i == 10 {
            let health = c.read_response();
            assert_eq!((health.status, health.body.len()), (200, 0));
        }
    }
}

#[test]
fn chunked_bodies_and_100_continue() {
    let server = TestServer::start("http-chunked", |_| {});
    let mut c = HttpConn::connect(server.addr);
    let body = json!({"requests": [execute("SELECT 'chunked'"), {"type": "close"}]}).to_string();
    let mut bytes = format!(
        "POST /v2/pipeline HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
        bearer()
    )
    .into_bytes();
    for piece in body.as_bytes().chunks(7) {
        bytes.extend(format!("{:x};ext=1\r\n", piece.len()).into_bytes());
        bytes.extend(piece);
        bytes.extend(b"\r\n");
    }
    bytes.extend(b"0\r\nX-Trailer: yes\r\n\r\n");
    // Sent a few bytes at a time: the decoder resumes where it stopped.
    for piece in bytes.chunks(5) {
        c.send(piece);
        c.stream.flush().unwrap();
    }
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert_eq!(rows(&r.json()["results"][0])[0][0]["value"], "chunked");
    // Expect: 100-continue: the 100 comes once the token is right, then the body is sent.
    let body = json!({"requests": [execute("SELECT 'continued'"), {"type": "close"}]}).to_string();
    c.send(
        format!(
            "POST /v2/pipeline HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
            bearer(),
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(c.read_response().status, 100);
    c.send(body.as_bytes());
    let r = c.read_response();
    assert_eq!(rows(&r.json()["results"][0])[0][0]["value"], "continued");
    // With a wrong token, no 100: a 401, and the connection closes (the body is not read).
    let mut w = HttpConn::connect(server.addr);
    w.send(b"POST /v2/pipeline HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer wrong-token-0123456789abcdef\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    let r = w.read_response();
    assert_eq!(r.status, 401);
    assert_eq!(r.header("WWW-Authenticate"), Some("Bearer"));
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(w.at_eof());
}

#[test]
fn limits_are_answered_before_the_body_with_their_statuses() {
    let server = TestServer::start("http-limits", |_| {});
    let auth = bearer();
    // 401 without a token, before any body byte.
    let mut c = HttpConn::connect(server.addr);
    c.send(b"POST /v2/pipeline HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n");
    assert_eq!(c.read_response().status, 401);
    assert!(c.at_eof());
    // 413 from Content-Length alone.
    let mut c = HttpConn::connect(server.addr);
    c.send(format!("POST /v2/pipeline HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\nContent-Length: 68719476736\r\n\r\n").as_bytes());
    assert_eq!(c.read_response().status, 413);
    assert!(c.at_eof());
    // 411 without a length.
    let mut c = HttpConn::connect(server.addr);
    c.send(
        format!("POST /v2/pipeline HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(c.read_response().status, 411);
    // 431 for a head over the limit.
    let mut c = HttpConn::connect(server.addr);
    c.send(
        format!(
            "GET /v2 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\n\r\n",
            "a".repeat(20_000)
        )
        .as_bytes(),
    );
    assert_eq!(c.read_response().status, 431);
    // 501 for a transfer coding other than chunked; 400 for both framings at once.
    let mut c = HttpConn::connect(server.addr);
    c.send(format!("POST /v2/pipeline HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\nTransfer-Encoding: gzip\r\n\r\n").as_bytes());
    assert_eq!(c.read_response().status, 501);
    let mut c = HttpConn::connect(server.addr);
    c.send(format!("POST /v2/pipeline HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n").as_bytes());
    assert_eq!(c.read_response().status, 400);
    // 405 for a method the resource does not take.
    let mut c = HttpConn::connect(server.addr);
    let r = c.request("GET", "/v2/pipeline", &[], b"");
    assert_eq!((r.status, r.header("Allow")), (405, Some("POST")));
}

#[test]
fn keep_alive_close_and_a_slow_body() {
    let server = ServerProcess::start(&["--http-body-timeout", "1", "--keep-alive-timeout", "2"]);
    let auth = format!("Bearer {}", server.token());
    let mut c = HttpConn::connect(server.addr);
    let first = c.request("GET", "/health", &[], b"");
    assert_eq!(first.header("Connection"), Some("keep-alive"));
    assert_eq!(first.header("Keep-Alive"), Some("timeout=2"));
    assert_eq!(
        c.request("GET", "/v2", &[], b"").status,
        200,
        "the same connection"
    );
    // Idle past the keep-alive timeout: the server closes.
    std::thread::sleep(Duration::from_millis(3500));
    assert!(c.at_eof());
    // `Connection: close` is honoured, and HTTP/1.0 closes by default.
    let mut c = HttpConn::connect(server.addr);
    let r = c.request("GET", "/health", &[("Connection", "close")], b"");
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(c.at_eof());
    let mut c = HttpConn::connect(server.addr);
    c.send(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    assert_eq!(c.read_response().header("Connection"), Some("close"));
    assert!(c.at_eof());
    // A body that stops coming gets 408 at its deadline.
    let mut c = HttpConn::connect(server.addr);
    c.send(format!("POST /v2/pipeline HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\nContent-Length: 100\r\n\r\n{{\"requ").as_bytes());
    let r = c.read_response();
    assert_eq!(r.status, 408);
    assert!(c.at_eof());
}

#[test]
fn cors_preflights_follow_the_origin_policy_without_a_token() {
    let server = TestServer::start("http-cors", |_| {});
    let host = server.addr.to_string();
    let origin = format!("http://{host}");
    let mut c = HttpConn::connect(server.addr);
    let preflight = format!(
        "OPTIONS /v2/pipeline HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: authorization, content-type\r\n\r\n"
    );
    c.send(preflight.as_bytes());
    let r = c.read_response();
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("Access-Control-Allow-Origin"),
        Some(origin.as_str())
    );
    assert!(
        r.header("Access-Control-Allow-Headers")
            .unwrap()
            .contains("Authorization")
    );
    assert!(
        r.header("Access-Control-Allow-Methods")
            .unwrap()
            .contains("POST")
    );
    // The request itself carries the same header.
    let body = json!({"requests": [execute("SELECT 1"), {"type": "close"}]}).to_string();
    c.send(
        format!(
            "POST /v2/pipeline HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nAuthorization: {}\r\nContent-Length: {}\r\n\r\n{body}",
            bearer(),
            body.len()
        )
        .as_bytes(),
    );
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("Access-Control-Allow-Origin"),
        Some(origin.as_str())
    );
    // Another site's page is refused.
    let mut c = HttpConn::connect(server.addr);
    c.send(format!("OPTIONS /v2/pipeline HTTP/1.1\r\nHost: {host}\r\nOrigin: http://evil.example\r\nAccess-Control-Request-Method: POST\r\n\r\n").as_bytes());
    assert_eq!(c.read_response().status, 403);
}

#[test]
fn a_websocket_upgrade_may_follow_plain_requests_on_one_connection() {
    let server = TestServer::start("http-then-ws", |_| {});
    let mut c = HttpConn::connect(server.addr);
    assert_eq!(c.request("GET", "/v2", &[], b"").status, 200);
    c.send(common::upgrade_request("/echo", "").as_bytes());
    let head = common::read_head(&mut c.stream);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    c.send(&common::client_frame(true, 1, b"after http"));
    let mut reply = [0u8; 64];
    let n = std::io::Read::read(&mut c.stream, &mut reply).expect("the echo");
    let frames = common::server_frames(&reply[..n]);
    assert_eq!(frames[0], (true, 1, b"after http".to_vec()));
}

#[test]
fn a_large_pipeline_body_is_decoded_off_the_loop_and_runs() {
    let server = TestServer::start("http-large", |_| {});
    let mut c = HttpConn::connect(server.addr);
    let blob = "x".repeat(1 << 20);
    let r = post(
        &mut c,
        "/v2/pipeline",
        &json!({"requests": [
            execute("CREATE TABLE t (x)"),
            {"type": "execute", "stmt": {"sql": "INSERT INTO t VALUES (?)", "args": [{"type": "text", "value": blob}]}},
            execute("SELECT length(x) FROM t"),
            {"type": "close"}
        ]}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        rows(&r.json()["results"][2])[0][0]["value"],
        (1 << 20).to_string()
    );
}

#[test]
fn curl_sees_health_version_and_a_pipeline() {
    let server = ServerProcess::start(&[]);
    let base = format!("http://{}", server.addr);
    let curl = common::curl;
    assert_eq!(
        curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{base}/health")
        ]),
        "200"
    );
    assert!(curl(&[&format!("{base}/version")]).starts_with("wsbridge "));
    let auth = format!("Authorization: Bearer {}", server.token());
    let body = json!({"requests": [execute("SELECT 'from curl'"), {"type": "close"}]}).to_string();
    let reply: Json = serde_json::from_str(&curl(&[
        "-H",
        &auth,
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &body,
        &format!("{base}/v2/pipeline"),
    ]))
    .expect("JSON");
    assert_eq!(rows(&reply["results"][0])[0][0]["value"], "from curl");
    // Without the token: 401 with a JSON body naming the scheme.
    let status = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--data-binary",
        &body,
        &format!("{base}/v2/pipeline"),
    ]);
    assert_eq!(status, "401");
}
