//! `GET /metrics` against the real binary: behind the token, and counting what real clients
//! did (a WebSocket echo with its closing handshake, a refused upgrade, SQL over HTTP, a
//! terminal session). The Python suite parses the same page with prometheus_client.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::ServerProcess;
use common::http::HttpConn;
use tungstenite::Message;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

/// `name{labels}` → value, from the text format (comments skipped).
fn parse(page: &str) -> BTreeMap<String, f64> {
    page.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (key, value) = l.rsplit_once(' ').expect("a sample line");
            (key.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

fn scrape(server: &ServerProcess) -> BTreeMap<String, f64> {
    let mut conn = HttpConn::connect(server.addr);
    let auth = format!("Bearer {}", server.token());
    let response = conn.request("GET", "/metrics", &[("Authorization", &auth)], b"");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    parse(&response.text())
}

#[test]
fn metrics_need_the_token() {
    let server = ServerProcess::start(&[]);
    let mut conn = HttpConn::connect(server.addr);
    let response = conn.request("GET", "/metrics", &[], b"");
    assert_eq!(response.status, 401);
    let response = conn.request(
        "GET",
        "/metrics",
        &[("Authorization", "Bearer not-the-token-at-all-0123456789")],
        b"",
    );
    assert_eq!(response.status, 401);
    // (A wrong token's 401 closes the connection.)
    let mut conn = HttpConn::connect(server.addr);
    let response = conn.request("POST", "/metrics", &[], b"");
    assert_eq!(response.status, 405);
    assert_eq!(response.header("Allow"), Some("GET, HEAD"));
}

#[test]
fn metrics_count_what_clients_did() {
    let server = ServerProcess::start(&[]);
    let before = scrape(&server);
    assert_eq!(before["wsbridge_upgrades_total{route=\"echo\"}"], 0.0);
    assert!(before["wsbridge_memory_budget_limit_bytes"] > 0.0);

    // An echo with a clean closing handshake: 2 frames each way, Close 1000 both ways.
    let mut ws = common::connect(&server.ws_url("/echo"));
    ws.send(Message::text("counted")).expect("send");
    assert_eq!(ws.read().expect("echo"), Message::text("counted"));
    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
    .expect("close");
    while ws.read().is_ok() {}
    // A refused upgrade: a foreign Origin is 403.
    let (_s, head) = common::raw_upgrade(server.addr, "/echo", "Origin: http://evil.example\r\n");
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    // SQL over HTTP: one statement that works, one that fails.
    let mut conn = HttpConn::connect(server.addr);
    let auth = format!("Bearer {}", server.token());
    let body = br#"{"requests":[{"type":"execute","stmt":{"sql":"SELECT 1"}},{"type":"execute","stmt":{"sql":"SELECT * FROM missing"}},{"type":"close"}]}"#;
    let response = conn.request(
        "POST",
        "/v2/pipeline",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body,
    );
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(
        response.text().contains("no such table"),
        "{}",
        response.text()
    );

    // The connections above are gone once the server has seen their ends; the counters do
    // not wait for that, the frame totals do (a live connection's frames are read at the
    // census, a closed one's at its end: either way they are counted once).
    let mut after = scrape(&server);
    for _ in 0..100 {
        if after["wsbridge_websocket_closes_sent_total{code=\"1000\"}"] == 1.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        after = scrape(&server);
    }
    assert_eq!(after["wsbridge_upgrades_total{route=\"echo\"}"], 1.0);
    assert_eq!(
        after["wsbridge_websocket_closes_received_total{code=\"1000\"}"],
        1.0
    );
    assert_eq!(
        after["wsbridge_websocket_closes_sent_total{code=\"1000\"}"],
        1.0
    );
    assert_eq!(
        after["wsbridge_websocket_frames_total{direction=\"in\"}"],
        2.0
    );
    assert_eq!(
        after["wsbridge_websocket_frames_total{direction=\"out\"}"],
        2.0
    );
    assert_eq!(
        after["wsbridge_upgrade_refusals_total{status=\"403\"}"],
        1.0
    );
    assert_eq!(
        after["wsbridge_sql_statement_duration_seconds_count"]
            - before["wsbridge_sql_statement_duration_seconds_count"],
        2.0,
        "{before:?} {after:?}"
    );
    assert_eq!(
        after["wsbridge_sql_statement_errors_total"]
            - before["wsbridge_sql_statement_errors_total"],
        1.0
    );
    let ok_responses = |page: &BTreeMap<String, f64>| {
        page.get("wsbridge_http_responses_total{status=\"200\"}")
            .copied()
            .unwrap_or(0.0)
    };
    assert!(
        ok_responses(&after) >= ok_responses(&before) + 2.0,
        "the first scrape and the pipeline"
    );
    assert!(after["wsbridge_bytes_total{direction=\"in\"}"] > 0.0);
    assert!(after["wsbridge_connections_accepted_total"] >= 5.0);
    // The scraping connection itself is open plain HTTP.
    assert!(
        after
            .get("wsbridge_connections{route=\"http\",state=\"open\",transport=\"tcp\"}")
            .copied()
            .unwrap_or(0.0)
            >= 1.0,
        "{after:?}"
    );
}

#[test]
fn metrics_count_terminal_sessions_and_pty_bytes() {
    let server = ServerProcess::start(&["--shell", "/bin/sh"]);
    let mut ws = common::tty::connect(server.addr);
    let size = wsbridge::routes::tty::sys::WinSize { cols: 80, rows: 24 };
    common::tty::send_init(&mut ws, Some(&server.token()), size);
    let mut client = common::tty::Client::new(ws);
    client.input(b"echo metrics-$((6*7))\r");
    client.wait_for("metrics-42");
    let page = scrape(&server);
    assert_eq!(page["wsbridge_terminal_sessions"], 1.0);
    assert_eq!(page["wsbridge_upgrades_total{route=\"tty\"}"], 1.0);
    assert!(page["wsbridge_pty_bytes_total{direction=\"output\"}"] >= 10.0);
    assert!(page["wsbridge_pty_bytes_total{direction=\"input\"}"] >= 10.0);
    assert_eq!(
        page["wsbridge_connections{route=\"tty\",state=\"open\",transport=\"tcp\"}"],
        1.0
    );
}

/// Close codes a peer picks from the registered and private ranges are counted as one label
/// each, so no peer can grow the page (or the server's counters) by choosing codes.
#[test]
fn close_codes_from_the_open_ranges_share_one_label() {
    let server = ServerProcess::start(&[]);
    for code in [3001u16, 3999, 4000, 4321] {
        let mut ws = common::connect(&server.ws_url("/echo"));
        ws.close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: "".into(),
        }))
        .expect("close");
        while ws.read().is_ok() {}
    }
    let mut page = scrape(&server);
    for _ in 0..100 {
        if page.get("wsbridge_websocket_closes_sent_total{code=\"4xxx\"}") == Some(&2.0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        page = scrape(&server);
    }
    for direction in ["received", "sent"] {
        for range in ["3xxx", "4xxx"] {
            let key = format!("wsbridge_websocket_closes_{direction}_total{{code=\"{range}\"}}");
            assert_eq!(page.get(&key), Some(&2.0), "{key} in {page:?}");
        }
    }
    assert!(
        !page
            .keys()
            .any(|k| k.contains("code=\"3001\"") || k.contains("code=\"4321\"")),
        "{page:?}"
    );
}

#[test]
fn the_metrics_listener_serves_the_scrape_without_the_token_and_nothing_else() {
    let server = ServerProcess::start(&["--metrics-listen", "127.0.0.1:0"]);
    let line = server.next_stdout_line();
    let addr: std::net::SocketAddr = line
        .strip_prefix("metrics on http://")
        .and_then(|rest| rest.split('/').next())
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("no metrics address in {line:?}"));
    assert!(line.ends_with("/metrics (no token)"), "{line}");

    // An echo on the main listener, counted on the page the metrics listener serves.
    let mut ws = common::connect(&server.ws_url("/echo"));
    ws.send(Message::text("counted")).expect("send");
    assert_eq!(ws.read().expect("echo"), Message::text("counted"));

    let mut conn = HttpConn::connect(addr);
    let response = conn.request("GET", "/metrics", &[], b"");
    assert_eq!(response.status, 200, "{}", response.text());
    let page = parse(&response.text());
    assert_eq!(page["wsbridge_upgrades_total{route=\"echo\"}"], 1.0);
    // Kept alive: the probes on the same connection, and nothing else.
    assert_eq!(conn.request("GET", "/health", &[], b"").status, 200);
    let version = conn.request("GET", "/version", &[], b"");
    assert!(
        version.text().starts_with("wsbridge "),
        "{}",
        version.text()
    );
    assert_eq!(conn.request("GET", "/", &[], b"").status, 404);
    let auth = format!("Bearer {}", server.token());
    let sql = conn.request(
        "POST",
        "/v2/pipeline",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        br#"{"requests":[]}"#,
    );
    assert_eq!(sql.status, 404);
    let (_s, head) = common::raw_upgrade(addr, "/echo", "");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");

    // The main listener still wants the token.
    let mut main = HttpConn::connect(server.addr);
    assert_eq!(main.request("GET", "/metrics", &[], b"").status, 401);
}
