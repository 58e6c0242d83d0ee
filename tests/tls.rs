//! TLS on the listener (`--tls-cert`/`--tls-key`, `--tls-self-signed`), against the real
//! binary with real clients: rustls + tungstenite for `wss://`, rustls for `https://`, curl,
//! and raw sockets for what no TLS client sends.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use common::ServerProcess;
use common::tls::{TestCa, TlsClient, connect, http_get};
use serde_json::{Value as Json, json};
use tungstenite::Message;

/// A fresh directory for one test's PEM files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wsbridge-tls-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// SHA-256 as `AB:CD:...`, computed here rather than by the server's own function.
fn sha256_hex(der: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A server with a certificate for localhost from a new CA.
fn tls_server(name: &str, extra: &[&str]) -> (ServerProcess, TestCa, PathBuf) {
    let dir = scratch(name);
    let ca = TestCa::new(&dir, "main");
    let leaf = ca.leaf(&dir, "server", &["localhost", "127.0.0.1"]);
    let cert = leaf.cert.to_string_lossy().into_owned();
    let key = leaf.key.to_string_lossy().into_owned();
    let mut args = vec!["--tls-cert", &cert, "--tls-key", &key];
    args.extend_from_slice(extra);
    (ServerProcess::start(&args), ca, dir)
}

fn websocket(stream: TlsClient, path: &str) -> tungstenite::WebSocket<TlsClient> {
    let (ws, response) =
        tungstenite::client(format!("wss://localhost{path}"), stream).expect("wss upgrade");
    assert_eq!(response.status(), 101);
    ws
}

#[test]
fn the_printed_url_is_https_with_the_served_certificates_fingerprint() {
    let (server, ca, _dir) = tls_server("url", &[]);
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let client = connect(server.addr, ca.client_config()).expect("handshake");
    let served = client
        .conn
        .peer_certificates()
        .map(|chain| sha256_hex(chain[0].as_ref()))
        .expect("a certificate");
    assert_eq!(server.tls_fingerprint.as_deref(), Some(served.as_str()));
    assert_eq!(served.len(), 32 * 3 - 1, "{served}");
    assert_eq!(
        client.conn.alpn_protocol(),
        Some(&b"http/1.1"[..]),
        "ALPN http/1.1"
    );
}

#[test]
fn wss_echo_of_text_fragments_and_a_large_binary_message() {
    let (server, ca, _dir) = tls_server("echo", &[]);
    let stream = connect(server.addr, ca.client_config()).expect("handshake");
    let mut ws = websocket(stream, "/echo");
    ws.send(Message::text("héllo over TLS")).expect("send");
    assert_eq!(ws.read().expect("echo"), Message::text("héllo over TLS"));
    // Larger than a TLS record (16 KiB) and than rustls' send buffer limit: many records each
    // way, reads that end mid-record.
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    ws.send(Message::binary(big.clone())).expect("send big");
    match ws.read().expect("echo big") {
        Message::Binary(echoed) => assert!(echoed[..] == big[..], "the echo differs"),
        other => panic!("expected binary, got {other:?}"),
    }
    for i in 0..200 {
        ws.send(Message::text(format!("message {i}")))
            .expect("send");
    }
    for i in 0..200 {
        assert_eq!(
            ws.read().expect("echo"),
            Message::text(format!("message {i}"))
        );
    }
    ws.close(Some(tungstenite::protocol::CloseFrame {
        code: tungstenite::protocol::frame::coding::CloseCode::Normal,
        reason: "done".into(),
    }))
    .expect("close");
    loop {
        match ws.read() {
            Ok(Message::Close(frame)) => {
                assert_eq!(frame.map(|f| u16::from(f.code)), Some(1000));
                break;
            }
            Ok(_) => {}
            Err(e) => panic!("before the Close: {e}"),
        }
    }
}

#[test]
fn https_health_version_page_and_keep_alive_requests() {
    let (server, ca, _dir) = tls_server("http", &[]);
    let mut stream = connect(server.addr, ca.client_config()).expect("handshake");
    // Two kept-alive requests on one TLS connection, then one with Connection: close.
    for path in ["/health", "/version"] {
        write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").expect("send");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).expect("head");
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).expect("body");
        if path == "/version" {
            assert!(body.starts_with(b"wsbridge "), "{body:?}");
        }
    }
    let page = http_get(&mut stream, "/");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("<html") || page.contains("<!doctype") || page.contains("<!DOCTYPE"));
}

#[test]
fn hrana_over_https_and_over_wss_with_the_token() {
    let (server, ca, _dir) = tls_server("sql", &[]);
    let token = server.token();
    assert!(!token.is_empty(), "a generated token is printed");
    // HTTPS: a pipeline with the bearer token.
    let mut stream = connect(server.addr, ca.client_config()).expect("handshake");
    let body = json!({"baton": null, "requests": [
        {"type": "execute", "stmt": {"sql": "SELECT 40 + 2"}},
        {"type": "close"}
    ]})
    .to_string();
    write!(
        stream,
        "POST /v2/pipeline HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response).into_owned();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let json: Json =
        serde_json::from_str(response.split("\r\n\r\n").nth(1).expect("body")).expect("JSON");
    assert_eq!(
        json["results"][0]["response"]["result"]["rows"][0][0]["value"],
        "42"
    );
    // WSS: Hrana 2 over the SQL route.
    let stream = connect(server.addr, ca.client_config()).expect("handshake");
    let mut request =
        tungstenite::client::IntoClientRequest::into_client_request("wss://localhost/sql")
            .expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "hrana2".parse().expect("header value"),
    );
    let (mut ws, response) = tungstenite::client(request, stream).expect("upgrade");
    assert_eq!(response.status(), 101);
    let send = |ws: &mut tungstenite::WebSocket<TlsClient>, msg: Json| {
        ws.send(Message::text(msg.to_string())).expect("send");
    };
    send(&mut ws, json!({"type": "hello", "jwt": token}));
    send(
        &mut ws,
        json!({"type": "request", "request_id": 1, "request": {"type": "open_stream", "stream_id": 1}}),
    );
    send(
        &mut ws,
        json!({"type": "request", "request_id": 2, "request": {"type": "execute", "stream_id": 1,
            "stmt": {"sql": "SELECT 'over wss'", "want_rows": true}}}),
    );
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let Message::Text(text) = ws.read().expect("reply") else {
            continue;
        };
        seen.push(serde_json::from_str::<Json>(&text).expect("JSON"));
    }
    assert_eq!(seen[0]["type"], "hello_ok", "{seen:?}");
    assert_eq!(
        seen[2]["response"]["result"]["rows"][0][0]["value"], "over wss",
        "{seen:?}"
    );
}

#[test]
fn plain_http_on_the_tls_port_gets_a_plain_refusal() {
    let (server, ca, _dir) = tls_server("plain", &[]);
    let mut raw = common::raw(server.addr);
    raw.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("send");
    let answer = String::from_utf8_lossy(&common::read_to_end(&mut raw)).into_owned();
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    assert!(answer.contains("use https:// or wss://"), "{answer}");
    // Bytes that are neither TLS nor HTTP: closed, and the server goes on serving.
    let mut raw = common::raw(server.addr);
    raw.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5])
        .expect("send");
    let _ = common::read_to_end(&mut raw);
    let mut stream = connect(server.addr, ca.client_config()).expect("still serving");
    assert!(http_get(&mut stream, "/health").starts_with("HTTP/1.1 200"));
}

#[test]
fn a_stalled_tls_handshake_is_closed_at_the_handshake_timeout() {
    let (server, ca, _dir) = tls_server("stall", &["--handshake-timeout", "1"]);
    // Half a ClientHello record header, then nothing.
    let mut raw = TcpStream::connect(server.addr).expect("connect");
    raw.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    raw.write_all(&[0x16, 0x03, 0x01]).expect("send");
    let mut buf = [0u8; 64];
    let n = raw.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer: {:?}", &buf[..n]);
    // A client that finished its handshake but sends no request is closed too.
    let mut stream = connect(server.addr, ca.client_config()).expect("handshake");
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{rest:?}");
}

#[test]
fn sighup_reloads_the_certificate_and_open_connections_keep_theirs() {
    let dir = scratch("reload");
    let first = TestCa::new(&dir, "first");
    let leaf = first.leaf(&dir, "server", &["localhost"]);
    let cert = leaf.cert.to_string_lossy().into_owned();
    let key = leaf.key.to_string_lossy().into_owned();
    let server = ServerProcess::start(&["--tls-cert", &cert, "--tls-key", &key, "--no-auth"]);
    let mut before = websocket(
        connect(server.addr, first.client_config()).expect("first CA"),
        "/echo",
    );
    // A new certificate from another CA under the same file names, then SIGHUP.
    let second = TestCa::new(&dir, "second");
    second.leaf(&dir, "server", &["localhost"]);
    server.signal(libc::SIGHUP);
    // The reload happens on the loop; a client trusting the second CA gets in once it has.
    let mut attempts = 0;
    let mut stream = loop {
        match connect(server.addr, second.client_config()) {
            Ok(stream) => break stream,
            Err(e) => {
                attempts += 1;
                assert!(attempts < 100, "never reloaded: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    assert!(http_get(&mut stream, "/health").starts_with("HTTP/1.1 200"));
    assert!(
        connect(server.addr, first.client_config()).is_err(),
        "the old certificate is no longer served"
    );
    // The connection opened before the reload still works.
    before.send(Message::text("still here")).expect("send");
    assert_eq!(before.read().expect("echo"), Message::text("still here"));
    // A broken file keeps the current certificate.
    std::fs::write(&leaf.key, "not a key").expect("write");
    server.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(200));
    let mut stream = connect(server.addr, second.client_config()).expect("kept");
    assert!(http_get(&mut stream, "/health").starts_with("HTTP/1.1 200"));
}

#[test]
fn a_client_ca_requires_client_certificates() {
    let dir = scratch("mtls");
    let ca = TestCa::new(&dir, "main");
    let leaf = ca.leaf(&dir, "server", &["localhost"]);
    let clients = TestCa::new(&dir, "clients");
    let alice = clients.leaf(&dir, "alice", &["alice"]);
    let cert = leaf.cert.to_string_lossy().into_owned();
    let key = leaf.key.to_string_lossy().into_owned();
    let client_ca = clients.cert_pem.to_string_lossy().into_owned();
    let server = ServerProcess::start(&[
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--tls-client-ca",
        &client_ca,
    ]);
    let mut stream =
        connect(server.addr, ca.client_config_with(Some(&alice))).expect("with a certificate");
    assert!(http_get(&mut stream, "/health").starts_with("HTTP/1.1 200"));
    // Without one, the handshake fails (TLS 1.3 reports it at the first read).
    let refused = connect(server.addr, ca.client_config()).and_then(|mut stream| {
        let mut byte = [0u8; 1];
        stream.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
        stream.read(&mut byte)
    });
    assert!(
        !matches!(refused, Ok(n) if n > 0),
        "no answer without a client certificate"
    );
}

#[test]
fn curl_over_https_trusting_the_test_ca() {
    let (server, ca, _dir) = tls_server("curl", &[]);
    let base = format!("https://localhost:{}", server.addr.port());
    let resolve = format!("localhost:{}:127.0.0.1", server.addr.port());
    let cacert = ca.cert_pem.to_string_lossy().into_owned();
    let curl = |args: &[&str]| {
        common::curl(
            &[
                &["--cacert", cacert.as_str(), "--resolve", resolve.as_str()],
                args,
            ]
            .concat(),
        )
    };
    assert_eq!(
        curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{http_version}",
            &format!("{base}/health")
        ]),
        "200 1.1"
    );
    let auth = format!("Authorization: Bearer {}", server.token());
    let body = json!({"requests": [
        {"type": "execute", "stmt": {"sql": "SELECT 'from curl over TLS'"}},
        {"type": "close"}
    ]})
    .to_string();
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
    assert_eq!(
        reply["results"][0]["response"]["result"]["rows"][0][0]["value"],
        "from curl over TLS"
    );
}

#[test]
fn self_signed_serves_tls_for_localhost() {
    let server = ServerProcess::start(&["--tls-self-signed", "--no-auth"]);
    assert!(server.url.starts_with("https://"), "{}", server.url);
    // curl -k: the certificate is not from a CA, the point is that TLS is served.
    let out = std::process::Command::new("curl")
        .args(["-s", "-S", "-k", "--max-time", "20", "-o", "/dev/null"])
        .args(["-w", "%{http_code}"])
        .arg(format!("https://127.0.0.1:{}/health", server.addr.port()))
        .output()
        .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    let mut raw = common::raw(server.addr);
    raw.write_all(b"GET / HTTP/1.1\r\n\r\n").expect("send");
    let _ = raw.shutdown(Shutdown::Write);
    let answer = common::read_to_end(&mut raw);
    assert!(answer.starts_with(b"HTTP/1.1 400"), "{answer:?}");
}

/// `wsbridge bench wss://`: the load generator's own TLS (rustls sans-IO on its mio loop)
/// against the server's, every echo checked byte for byte by the generator, at a size that
/// spans several TLS records; and refused when the CA it is given did not sign the server's.
#[test]
fn the_load_generator_speaks_wss_and_checks_every_echo() {
    let (server, ca, dir) = tls_server("bench", &["--no-auth"]);
    let url = format!("wss://localhost:{}/echo", server.addr.port());
    for size in ["20", "40000"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wsbridge"))
            .args(["bench", &url, "--connections", "3", "--size", size])
            .args(["--duration", "0.5", "--warmup", "0.1", "--json"])
            .env("WSBRIDGE_CA_FILE", &ca.cert_pem)
            .output()
            .expect("run wsbridge bench");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Json = serde_json::from_str(stdout.trim()).expect("the JSON report");
        assert_eq!(report["url"], url);
        assert_eq!(report["size"], size.parse::<u64>().expect("a size"));
        assert!(
            report["messages"].as_u64().expect("a count") > 0,
            "{report}"
        );
    }
    let other = TestCa::new(&dir, "other");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wsbridge"))
        .args(["bench", &url, "--duration", "0.2"])
        .env("WSBRIDGE_CA_FILE", &other.cert_pem)
        .output()
        .expect("run wsbridge bench");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("certificate"), "{stderr}");
}
