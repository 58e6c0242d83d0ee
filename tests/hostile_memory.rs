//! The memory budget (`--max-memory`) against the real server binary: peers that make the server
//! hold bytes, and what the server sheds while its admitted SQL clients keep working.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value as Json, json};
use tungstenite::Message;
use tungstenite::client::IntoClientRequest;
use wsbridge::routes::sql::TempDb;

const TOKEN: &str = "hostile-memory-token-0123456789abcdef";

type Ws = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

/// A SQL client (hrana2 on /sql) that said hello with the right token.
fn sql_client(server: &ServerProcess) -> Ws {
    let mut request = server.ws_url("/sql").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "hrana2".parse().unwrap());
    let (mut ws, _) = tungstenite::connect(request).expect("connect");
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    }
    ws.send(Message::text(
        json!({"type": "hello", "jwt": TOKEN}).to_string(),
    ))
    .unwrap();
    assert_eq!(recv_json(&mut ws), json!({"type": "hello_ok"}));
    ws
}

fn recv_json(ws: &mut Ws) -> Json {
    loop {
        match ws.read().expect("read") {
            Message::Text(t) => return serde_json::from_str(t.as_str()).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected message {other:?}"),
        }
    }
}

/// Sends one request and waits for its response (the client sends one at a time).
fn call(ws: &mut Ws, id: i64, request: Json) -> Json {
    ws.send(Message::text(
        json!({"type": "request", "request_id": id, "request": request}).to_string(),
    ))
    .expect("send");
    let reply = recv_json(ws);
    assert_eq!(reply["request_id"], id, "{reply}");
    reply
}

fn execute(ws: &mut Ws, id: i64, sql: &str) -> Json {
    call(
        ws,
        id,
        json!({"type": "execute", "stream_id": 1, "stmt": {"sql": sql}}),
    )
}

/// Reads until the server's Close; its code. Panics if the connection ends without one.
fn close_code_of(ws: &mut Ws) -> u16 {
    loop {
        match ws.read() {
            Ok(Message::Close(Some(frame))) => return frame.code.into(),
            Ok(Message::Close(None)) => return 1005,
            Ok(_) => continue,
            Err(e) => panic!("no Close frame: {e}"),
        }
    }
}

/// The status code of an upgrade to /echo.
fn upgrade_status(server: &ServerProcess) -> u16 {
    let (_, head) = raw_upgrade(server.addr, "/echo", "");
    head.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"))
}

/// An unauthenticated echo peer that starts a message and feeds it 1 MiB at a time, never
/// finishing it, until it has sent `total` bytes or the socket fails; then it half-closes.
/// Returns the close code the server sent it, if any.
fn attacker(server: &ServerProcess, total: usize) -> std::thread::JoinHandle<Option<u16>> {
    let (mut s, head) = raw_upgrade(server.addr, "/echo", "");
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    std::thread::spawn(move || {
        let mut reader = s.try_clone().unwrap();
        let reading = std::thread::spawn(move || read_to_end(&mut reader));
        let chunk = vec![0xA5u8; 1 << 20];
        let first = client_frame(false, 0x2, &chunk);
        let more = client_frame(false, 0x0, &chunk);
        let mut sent = 0;
        let mut frame = &first;
        while sent < total && s.write_all(frame).is_ok() {
            sent += chunk.len();
            frame = &more;
        }
        let _ = s.shutdown(Shutdown::Write);
        let frames = server_frames(&reading.join().unwrap());
        frames
            .iter()
            .find(|(_, opcode, _)| *opcode == 0x8)
            .and_then(|(_, _, payload)| close_code(payload))
    })
}

/// Unauthenticated echo peers that start huge messages are closed (1013, largest first) to keep
/// the server within its budget; meanwhile an admitted SQL client keeps inserting, is never
/// closed, and every insert it was told succeeded is in the database afterwards.
#[test]
fn unauthenticated_hoarders_are_shed_and_acknowledged_inserts_survive() {
    let db = TempDb::new("hostile-memory");
    let db_path = db.path_str();
    // The message limit is above the memory limit: the budget, not the limit, has to act.
    let mut server = ServerProcess::start(&[
        "--token",
        TOKEN,
        "--db",
        &db_path,
        "--max-memory",
        "32MiB",
        "--max-message-size",
        "40MiB",
        "--max-frame-size",
        "40MiB",
    ]);

    let mut sql = sql_client(&server);
    assert_eq!(
        call(&mut sql, 1, json!({"type": "open_stream", "stream_id": 1}))["type"],
        "response_ok"
    );
    assert_eq!(
        execute(&mut sql, 2, "CREATE TABLE t (id INTEGER PRIMARY KEY)")["type"],
        "response_ok"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let inserter = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut acked = BTreeSet::new();
            let mut id = 3i64;
            while !stop.load(Ordering::Relaxed) || acked.len() < 20 {
                let reply = execute(&mut sql, id, &format!("INSERT INTO t (id) VALUES ({id})"));
                assert_eq!(reply["type"], "response_ok", "{reply}");
                acked.insert(id);
                id += 1;
            }
            (sql, acked)
        })
    };
    let probing = {
        let (stop, addr) = (stop.clone(), server.addr);
        std::thread::spawn(move || {
            let mut statuses = BTreeSet::new();
            while !stop.load(Ordering::Relaxed) {
                let (_, head) = raw_upgrade(addr, "/echo", "");
                statuses.insert(head.lines().next().unwrap_or_default().to_string());
                std::thread::sleep(Duration::from_millis(5));
            }
            statuses
        })
    };

    // Six peers that would hold 64 MiB each, against a budget of 32 MiB for everything.
    let attackers: Vec<_> = (0..6).map(|_| attacker(&server, 64 << 20)).collect();
    let codes: Vec<_> = attackers.into_iter().map(|a| a.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    assert!(
        codes.iter().all(|c| *c == Some(1013)),
        "close codes {codes:?}"
    );

    let statuses = probing.join().unwrap();
    for status in &statuses {
        assert!(
            status == "HTTP/1.1 101 Switching Protocols"
                || status == "HTTP/1.1 503 Service Unavailable",
            "an upgrade during the attack got {status:?}"
        );
    }

    let (mut sql, acked) = inserter.join().unwrap();
    // Read back over the same (never closed) connection...
    let reply = execute(&mut sql, 0, "SELECT id FROM t ORDER BY id");
    let rows = reply["response"]["result"]["rows"].as_array().unwrap();
    let stored: BTreeSet<i64> = rows
        .iter()
        .map(|row| row[0]["value"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        acked.is_subset(&stored),
        "acknowledged but missing: {:?}",
        acked.difference(&stored).collect::<Vec<_>>()
    );
    // ...and from the file, after the server is gone.
    drop(sql);
    server.signal(libc::SIGKILL);
    server.wait_exit(Duration::from_secs(20)).expect("killed");
    let file = rusqlite::Connection::open(&db.path).unwrap();
    let on_disk: BTreeSet<i64> = file
        .prepare("SELECT id FROM t")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        acked.is_subset(&on_disk),
        "acknowledged inserts not on disk"
    );
    eprintln!(
        "{} inserts acknowledged; upgrades during the attack: {statuses:?}",
        acked.len()
    );
}

/// Admitted peers holding less than their share each but more than the budget together are not
/// shed: the server stops reading and refuses upgrades with 503 until the messages stall (1008)
/// and their memory is released; then upgrades succeed again.
#[test]
fn over_budget_upgrades_get_503_until_memory_is_released() {
    // Each admitted peer may hold a quarter of the budget (8 MiB); each holds about 3.5 MiB.
    let server = ServerProcess::start(&[
        "--token",
        TOKEN,
        "--max-memory",
        "32MiB",
        "--max-message-size",
        "6MiB",
        "--message-stall-timeout",
        "3",
    ]);
    let mut holders: Vec<Ws> = (0..12).map(|_| sql_client(&server)).collect();
    assert_eq!(upgrade_status(&server), 101);
    let fragment = client_frame(false, 0x1, &vec![b'x'; 3584 << 10]);
    let writers: Vec<_> = holders
        .iter_mut()
        .map(|ws| {
            let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_mut() else {
                unreachable!()
            };
            let (mut s, fragment) = (s.try_clone().unwrap(), fragment.clone());
            // The server may stop reading before all of it is in: write without waiting.
            std::thread::spawn(move || {
                let _ = s.write_all(&fragment);
            })
        })
        .collect();

    // Over the budget: upgrades are refused.
    let deadline = Instant::now() + Duration::from_secs(20);
    while upgrade_status(&server) != 503 {
        assert!(Instant::now() < deadline, "upgrades never got 503");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Nobody is shed at once for holding its share. Nothing is read while over, so their
    // messages cannot go on: after the stall timeout the largest are shed (1013), and the
    // others, read again, are cut when their messages still get no further (1008).
    let mut shed = 0;
    for ws in &mut holders {
        let code = close_code_of(ws);
        assert!(matches!(code, 1008 | 1013), "closed with {code}");
        shed += usize::from(code == 1013);
    }
    assert!(shed > 0, "some were shed to get under the budget");
    drop(holders);
    for writer in writers {
        writer.join().unwrap();
    }
    // Memory released: upgrades succeed again, and echo works.
    while upgrade_status(&server) != 101 {
        assert!(Instant::now() < deadline, "upgrades never recovered");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut echo = connect(&server.ws_url("/echo"));
    echo.send(Message::text("back")).unwrap();
    assert_eq!(echo.read().unwrap(), Message::text("back"));
}
