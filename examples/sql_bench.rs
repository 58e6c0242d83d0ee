//! Point SELECTs by primary key over Hrana, beside the same SELECT through rusqlite in-process
//! and beside wsbridge's own echo of messages of the same sizes.
//!
//! `cargo run --release --example sql_bench [SECONDS]` prints a table and one JSON line.
//! The server runs in this process on its own thread (the event loop plus its SQL workers), the
//! client is tungstenite on the main thread: both WebSocket rows pay the same client costs.
//! The HTTP row is Hrana over HTTP on kept-alive connections, each request carrying its
//! stream's baton (a minimal client on a blocking socket): one connection with one request at a
//! time, then one connection per stream with a request in flight on each.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tungstenite::Message;
use tungstenite::client::IntoClientRequest;
use wsbridge::auth::Policy;
use wsbridge::routes::sql::{SqlConfig, SqlHttp, SqlRouteFactory, SqlShared};
use wsbridge::server::{Config, Routes, Server};

const ROWS: i64 = 10_000;
const STREAMS: usize = 8;
const IN_FLIGHT: usize = 32;

type Ws = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .map_or(3.0, |s| s.parse().expect("seconds"));
    let duration = Duration::from_secs_f64(seconds);
    let path = std::env::temp_dir().join(format!("wsbridge-sql-bench-{}.db", std::process::id()));
    prepare(&path);

    let in_process = rusqlite_rate(&path, duration);
    let addr = start_server(&path);

    let mut sql = connect(addr, "/sql", Some("hrana2"));
    sql.send(Message::text(r#"{"type":"hello"}"#)).unwrap();
    let _hello = sql.read().unwrap();
    for stream in 0..STREAMS {
        call(
            &mut sql,
            &format!(r#"{{"type":"open_stream","stream_id":{stream}}}"#),
            stream as i64,
        );
    }
    let request = |seq: u64, stream: usize| {
        let id = (seq as i64 * 7919) % ROWS + 1;
        format!(
            r#"{{"type":"request","request_id":{seq},"request":{{"type":"execute","stream_id":{stream},"stmt":{{"sql":"SELECT v FROM kv WHERE id = ?","args":[{{"type":"integer","value":"{id}"}}],"want_rows":true}}}}}}"#
        )
    };
    let sample_request = request(1, 0);
    let sample_response = {
        sql.send(Message::text(sample_request.clone())).unwrap();
        sql.read().unwrap().into_text().unwrap().to_string()
    };
    assert!(sample_response.contains("response_ok"), "{sample_response}");

    let sql_single = run(
        &mut sql,
        duration,
        1,
        |seq| request(seq, 0),
        |r| assert!(r.contains("response_ok")),
    );
    let sql_pipelined = run(
        &mut sql,
        duration,
        IN_FLIGHT,
        |seq| request(seq, seq as usize % STREAMS),
        |r| assert!(r.contains("response_ok")),
    );

    // The echo route with the same message sizes: a request-sized message out, a
    // response-sized one back, so the transport work matches.
    let mut echo = connect(addr, "/echo", None);
    let reply_size = sample_response.len();
    let echo_request = |seq: u64| {
        let mut text = format!("{seq:020}");
        text.push_str(&"x".repeat(sample_request.len().saturating_sub(20)));
        text
    };
    // The echo comes back with the request's size; pad the request to the larger of the two
    // so neither direction is cheaper than SQL's.
    let size = sample_request.len().max(reply_size);
    let echo_single = run(
        &mut echo,
        duration,
        1,
        |seq| pad(echo_request(seq), size),
        |_| {},
    );
    let echo_pipelined = run(
        &mut echo,
        duration,
        IN_FLIGHT,
        |seq| pad(echo_request(seq), size),
        |_| {},
    );
    let (http_single, http_parallel) = http_rates(addr, duration);
    let _ = std::fs::remove_file(&path);

    println!(
        "point SELECT by primary key ({ROWS} rows), request {} B, response {} B, {seconds} s each",
        sample_request.len(),
        reply_size
    );
    println!("| path | one at a time | pipelined ({IN_FLIGHT} in flight, {STREAMS} streams) |");
    println!("|---|---|---|");
    println!("| rusqlite in-process | {in_process:.0}/s | - |");
    println!("| Hrana over WebSocket | {sql_single:.0}/s | {sql_pipelined:.0}/s |");
    println!(
        "| Hrana over HTTP, keep-alive | {http_single:.0}/s | {http_parallel:.0}/s ({STREAMS} connections, 1 in flight each) |"
    );
    println!("| echo, same sizes | {echo_single:.0}/s | {echo_pipelined:.0}/s |");
    println!(
        "| SQL / echo | {:.2} | {:.2} |",
        sql_single / echo_single,
        sql_pipelined / echo_pipelined
    );
    println!(
        "{}",
        serde_json::json!({
            "rusqlite_per_s": in_process,
            "sql_single_per_s": sql_single,
            "sql_pipelined_per_s": sql_pipelined,
            "echo_single_per_s": echo_single,
            "echo_pipelined_per_s": echo_pipelined,
            "http_single_per_s": http_single,
            "http_parallel_per_s": http_parallel,
            "request_bytes": sample_request.len(),
            "response_bytes": reply_size,
        })
    );
}

fn pad(mut text: String, size: usize) -> String {
    while text.len() < size {
        text.push('x');
    }
    text
}

fn prepare(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; CREATE TABLE kv (id INTEGER PRIMARY KEY, v TEXT NOT NULL);",
    )
    .unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    {
        let mut insert = tx.prepare("INSERT INTO kv (id, v) VALUES (?, ?)").unwrap();
        for id in 1..=ROWS {
            insert
                .execute(rusqlite::params![id, format!("value number {id}")])
                .unwrap();
        }
    }
    tx.commit().unwrap();
}

fn rusqlite_rate(path: &std::path::Path, duration: Duration) -> f64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn.prepare("SELECT v FROM kv WHERE id = ?").unwrap();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < duration {
        for _ in 0..100 {
            let id = (n as i64 * 7919) % ROWS + 1;
            let v: String = stmt.query_row([id], |row| row.get(0)).unwrap();
            std::hint::black_box(v);
            n += 1;
        }
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn start_server(path: &std::path::Path) -> SocketAddr {
    let db = path.to_string_lossy().into_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    // The server is built on its own thread: routes are not `Send`, the loop owns them.
    std::thread::spawn(move || {
        let policy = Arc::new(Policy::new(None, vec![], vec![]));
        let shared = SqlShared::new(
            SqlConfig {
                db,
                ..SqlConfig::default()
            },
            policy.clone(),
        )
        .unwrap();
        let mut routes = Routes::echo_only(policy);
        routes
            .services
            .push(Box::new(SqlHttp::new(Arc::clone(&shared))));
        routes.sql = Some(Box::new(SqlRouteFactory::new(shared)));
        let config = Config {
            listen: "127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
            ..Config::default()
        };
        let mut server = Server::bind(config, routes).unwrap();
        tx.send(server.local_addr()).unwrap();
        server.run()
    });
    rx.recv().unwrap()
}

fn connect(addr: SocketAddr, path: &str, protocol: Option<&str>) -> Ws {
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    if let Some(p) = protocol {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", p.parse().unwrap());
    }
    let (ws, _) = tungstenite::connect(request).unwrap();
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_nodelay(true).unwrap();
    }
    ws
}

fn call(ws: &mut Ws, request: &str, id: i64) {
    ws.send(Message::text(format!(
        r#"{{"type":"request","request_id":{},"request":{request}}}"#,
        1_000_000 + id
    )))
    .unwrap();
    let reply = ws.read().unwrap();
    assert!(reply.to_text().unwrap().contains("response_ok"), "{reply}");
}

/// Keep `in_flight` messages outstanding for `duration`; the rate of replies.
fn run(
    ws: &mut Ws,
    duration: Duration,
    in_flight: usize,
    make: impl Fn(u64) -> String,
    check: impl Fn(&str),
) -> f64 {
    let mut seq = 0u64;
    let mut outstanding = VecDeque::new();
    for _ in 0..in_flight {
        ws.write(Message::text(make(seq))).unwrap();
        outstanding.push_back(seq);
        seq += 1;
    }
    ws.flush().unwrap();
    let start = Instant::now();
    let mut done = 0u64;
    while start.elapsed() < duration {
        let reply = ws.read().unwrap();
        check(reply.to_text().unwrap());
        outstanding.pop_front();
        done += 1;
        ws.send(Message::text(make(seq))).unwrap();
        outstanding.push_back(seq);
        seq += 1;
    }
    let elapsed = start.elapsed();
    // Drain what is still in flight so the next run starts clean.
    while outstanding.pop_front().is_some() {
        ws.read().unwrap();
    }
    done as f64 / elapsed.as_secs_f64()
}

/// A kept-alive HTTP connection holding one Hrana stream by its baton.
struct HttpStream {
    reader: std::io::BufReader<std::net::TcpStream>,
    writer: std::net::TcpStream,
    baton: Option<String>,
}

impl HttpStream {
    fn open(addr: SocketAddr) -> HttpStream {
        let socket = std::net::TcpStream::connect(addr).unwrap();
        socket.set_nodelay(true).unwrap();
        HttpStream {
            reader: std::io::BufReader::new(socket.try_clone().unwrap()),
            writer: socket,
            baton: None,
        }
    }

    fn send(&mut self, seq: u64) {
        use std::io::Write;
        let id = (seq as i64 * 7919) % ROWS + 1;
        let baton = self
            .baton
            .as_deref()
            .map_or("null".to_owned(), |b| format!("\"{b}\""));
        let body = format!(
            r#"{{"baton":{baton},"requests":[{{"type":"execute","stmt":{{"sql":"SELECT v FROM kv WHERE id = ?","args":[{{"type":"integer","value":"{id}"}}],"want_rows":true}}}}]}}"#
        );
        let request = format!(
            "POST /v2/pipeline HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.writer.write_all(request.as_bytes()).unwrap();
    }

    fn receive(&mut self) {
        use std::io::{BufRead, Read};
        let mut line = String::new();
        let mut length = 0;
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.strip_prefix("Content-Length: ") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0u8; length];
        self.reader.read_exact(&mut body).unwrap();
        let body = String::from_utf8(body).unwrap();
        assert!(body.contains("value number"), "{body}");
        let baton = body
            .strip_prefix("{\"baton\":\"")
            .and_then(|rest| rest.split('"').next())
            .expect("a baton");
        self.baton = Some(baton.to_owned());
    }
}

/// Point SELECTs over Hrana over HTTP: one connection one at a time, then `STREAMS` connections.
fn http_rates(addr: SocketAddr, duration: Duration) -> (f64, f64) {
    let mut one = HttpStream::open(addr);
    one.send(0);
    one.receive();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < duration {
        one.send(n);
        one.receive();
        n += 1;
    }
    let single = n as f64 / start.elapsed().as_secs_f64();
    let mut streams: Vec<HttpStream> = (0..STREAMS).map(|_| HttpStream::open(addr)).collect();
    for s in &mut streams {
        s.send(0);
        s.receive();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < duration {
        for s in &mut streams {
            s.send(n);
            n += 1;
        }
        for s in &mut streams {
            s.receive();
        }
    }
    (single, n as f64 / start.elapsed().as_secs_f64())
}
