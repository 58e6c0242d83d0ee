//! Durability: every write whose `response_ok` reached the client survives `kill -9` of the
//! server. Runs the real `wsbridge` binary, kills it with SIGKILL in the middle of a stream of
//! acknowledged writes, restarts it on the same file and reads everything back.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::sql::{Hrana, TOKEN, TempDb, int};
use serde_json::json;

struct Wsbridge {
    child: Child,
    addr: SocketAddr,
}

impl Wsbridge {
    fn start(db: &TempDb) -> Wsbridge {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wsbridge"))
            .args(["serve", "--listen", "127.0.0.1:0", "--token", TOKEN, "--db"])
            .arg(&db.path)
            .env("WSBRIDGE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wsbridge");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("wsbridge exited before listening")
                .expect("stdout line");
            if let Some(rest) = line.split(" listening on ").nth(1) {
                break rest.trim().parse().expect("address");
            }
        };
        // Keep draining stdout: a closed pipe would make the server's next println! fail.
        std::thread::spawn(move || lines.for_each(drop));
        Wsbridge { child, addr }
    }

    fn client(&self) -> Hrana {
        let (mut c, _) = Hrana::connect(self.addr, "/", Some("hrana2, hrana1"), None);
        c.hello_ok(Some(TOKEN));
        c
    }

    /// SIGKILL: no destructor, no checkpoint, no clean close of the database.
    fn kill_9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }
}

impl Drop for Wsbridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let db = TempDb::new("crash");
    let server = Wsbridge::start(&db);
    let mut c = server.client();
    c.open(1);
    c.sql(1, "CREATE TABLE acked (id INTEGER PRIMARY KEY, via TEXT)");
    // A committed interactive transaction, and one left open at the kill.
    c.sql(1, "BEGIN IMMEDIATE");
    c.sql(1, "INSERT INTO acked VALUES (-1, 'transaction')");
    c.sql(1, "COMMIT");
    // A batch as @libsql/client sends it.
    let r = c.ok(json!({"type": "batch", "stream_id": 1, "batch": {"steps": [
        {"stmt": {"sql": "BEGIN IMMEDIATE"}},
        {"condition": {"type": "ok", "step": 0}, "stmt": {"sql": "INSERT INTO acked VALUES (-2, 'batch')"}},
        {"condition": {"type": "ok", "step": 1}, "stmt": {"sql": "COMMIT"}},
        {"condition": {"type": "not", "cond": {"type": "ok", "step": 2}}, "stmt": {"sql": "ROLLBACK"}}]}}));
    assert_eq!(r["result"]["step_errors"][2], serde_json::Value::Null);

    // Writers on two connections insert as fast as they are acknowledged until the kill.
    let acked = Arc::new(Mutex::new(Vec::<i64>::new()));
    let mut writers = Vec::new();
    for w in 0..2i64 {
        let acked = Arc::clone(&acked);
        let addr = server.addr;
        writers.push(std::thread::spawn(move || {
            let (mut c, _) = Hrana::connect(addr, "/", Some("hrana2, hrana1"), None);
            c.hello_ok(Some(TOKEN));
            c.open(1);
            for i in 0.. {
                let id = w * 1_000_000 + i;
                let rid = c.request(json!({"type": "execute", "stream_id": 1, "stmt": {
                    "sql": "INSERT INTO acked VALUES (?, 'autocommit')", "args": [int(id)]}}));
                // Once the server is gone, reading fails: stop without recording.
                let Some(msg) = c.try_wait(rid) else {
                    return;
                };
                assert_eq!(msg["type"], "response_ok", "{msg}");
                acked.lock().expect("lock").push(id);
            }
        }));
    }
    let start = Instant::now();
    while acked.lock().expect("lock").len() < 100 && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(10));
    }
    // A write transaction still open at the kill (the writers wait for its lock meanwhile).
    let mut open_tx = server.client();
    open_tx.open(1);
    open_tx.sql(1, "BEGIN");
    open_tx.sql(1, "INSERT INTO acked VALUES (-3, 'never committed')");
    server.kill_9();
    for w in writers {
        let _ = w.join();
    }
    let acked = acked.lock().expect("lock").clone();
    assert!(
        acked.len() >= 100,
        "only {} writes acknowledged",
        acked.len()
    );

    let server = Wsbridge::start(&db);
    let mut c = server.client();
    c.open(1);
    let rows = c.sql(1, "SELECT id FROM acked ORDER BY id")["rows"].clone();
    let present: std::collections::HashSet<i64> = rows
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r[0]["value"].as_str().expect("int").parse().expect("i64"))
        .collect();
    for id in [-1, -2].into_iter().chain(acked.iter().copied()) {
        assert!(present.contains(&id), "acknowledged row {id} lost");
    }
    assert!(!present.contains(&-3), "an uncommitted row survived");
    eprintln!(
        "{} acknowledged writes, {} rows after kill -9 and restart",
        acked.len(),
        present.len()
    );
}
