//! Session-level tests: JSON in, JSON out, against real SQLite files in the temp directory.
//! This file is the harness; each topic has its own file.

mod auth;
mod batch;
mod cursors;
mod databases;
mod execute;
mod limits;
mod malformed;
mod requests;
mod streams;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
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
    /// `header_auth`: the upgrade carried the right token as `Authorization: Bearer`.
    fn new(shared: &Arc<SqlShared>, version: Version, header_auth: bool) -> Client {
        let (tx, notified) = channel();
        let waker = crate::routes::Waker::new(move || {
            let _ = tx.send(());
        });
        // Each client its own address, so the token gate's per-address rate never delays one.
        static PEERS: AtomicU32 = AtomicU32::new(1);
        let peer = std::net::IpAddr::from(PEERS.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        let now = Instant::now();
        let mut admission = shared
            .policy()
            .admission(Some(peer), waker.clone(), now)
            .expect("admission");
        if header_auth {
            admission.present(TOKEN, now);
        }
        let session = HranaSession::new(Arc::clone(shared), version, admission, waker);
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
        self.session.on_text(&msg.to_string(), Instant::now())
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
            self.session.on_woken(Instant::now()).expect("woken");
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
