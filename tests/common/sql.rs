//! For the SQL tests: the server in process with a database file of its own, and a small Hrana
//! client on top of `tungstenite`.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use std::time::Duration;

use serde_json::{Value as Json, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::protocol::CloseFrame;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use super::inproc::InProcessServer;
use wsbridge::auth::Policy;
pub use wsbridge::routes::sql::TempDb;
use wsbridge::routes::sql::{SqlConfig, SqlHttp, SqlRouteFactory, SqlShared};
use wsbridge::server::{Config, Routes};

pub const TOKEN: &str = "test-token-0123456789abcdef";

/// A SQL server in this process, on a database file of its own.
pub struct TestServer {
    pub addr: SocketAddr,
    server: InProcessServer,
    pub db: TempDb,
}

impl TestServer {
    pub fn start(name: &str, tweak: impl FnOnce(&mut SqlConfig) + Send + 'static) -> TestServer {
        Self::start_with(name, Some(TOKEN), tweak)
    }

    pub fn start_with(
        name: &str,
        token: Option<&str>,
        tweak: impl FnOnce(&mut SqlConfig) + Send + 'static,
    ) -> TestServer {
        let db = TempDb::new(name);
        let db_path = db.path_str();
        let token = token.map(str::to_owned);
        let mut config = Config {
            shutdown_timeout: Duration::from_secs(1),
            ..Config::default()
        };
        config.timeouts.close_timeout = Duration::from_secs(1);
        let server = InProcessServer::start(config, move || {
            let mut sql_config = SqlConfig {
                db: db_path,
                ..SqlConfig::default()
            };
            tweak(&mut sql_config);
            let policy = Arc::new(Policy::new(token, Vec::new(), Vec::new()));
            let shared = SqlShared::new(sql_config, policy.clone()).expect("database");
            let mut routes = Routes::echo_only(policy);
            routes
                .services
                .push(Box::new(SqlHttp::new(Arc::clone(&shared))));
            routes.sql = Some(Box::new(SqlRouteFactory::new(shared)));
            routes
        });
        TestServer {
            addr: server.addr,
            server,
            db,
        }
    }

    /// A client that connected with `hrana2, hrana1` (what `@libsql/client` offers) and said
    /// hello with the token.
    pub fn client(&self) -> Hrana {
        self.client_with("hrana2, hrana1")
    }

    pub fn client_with(&self, protocols: &str) -> Hrana {
        let (mut c, _) = Hrana::connect(self.addr, "/", Some(protocols), None);
        c.hello_ok(Some(TOKEN));
        c
    }

    /// Graceful shutdown, waiting for the loop to end.
    pub fn stop(&mut self) {
        self.server.stop();
    }
}

/// A Hrana-over-WebSocket client (JSON).
pub struct Hrana {
    pub ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: i32,
    pending: HashMap<i64, Json>,
}

impl Hrana {
    /// Connects; returns the client and the subprotocol the server selected.
    pub fn connect(
        addr: SocketAddr,
        path: &str,
        protocols: Option<&str>,
        bearer: Option<&str>,
    ) -> (Hrana, Option<String>) {
        let mut request = format!("ws://{addr}{path}")
            .into_client_request()
            .expect("request");
        if let Some(p) = protocols {
            request.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_str(p).expect("header"),
            );
        }
        if let Some(token) = bearer {
            request.headers_mut().insert(
                "Authorization",
                HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
            );
        }
        let (ws, response) = tungstenite::connect(request).expect("connect");
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(20)))
                .expect("timeout");
        }
        let selected = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (
            Hrana {
                ws,
                next_id: 1,
                pending: HashMap::new(),
            },
            selected,
        )
    }

    pub fn send(&mut self, msg: &Json) {
        self.ws.send(Message::text(msg.to_string())).expect("send");
    }

    pub fn send_raw(&mut self, msg: Message) {
        self.ws.send(msg).expect("send");
    }

    /// The next text message, parsed.
    pub fn recv(&mut self) -> Json {
        loop {
            match self.ws.read().expect("read") {
                Message::Text(t) => return serde_json::from_str(t.as_str()).expect("JSON"),
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("unexpected message {other:?}"),
            }
        }
    }

    /// Reads until the server's close frame; returns it.
    pub fn expect_close(&mut self) -> Option<CloseFrame> {
        loop {
            match self.ws.read() {
                Ok(Message::Close(frame)) => return frame,
                Ok(_) => {}
                Err(e) => panic!("no close frame: {e}"),
            }
        }
    }

    pub fn hello_ok(&mut self, jwt: Option<&str>) {
        self.send(&json!({"type": "hello", "jwt": jwt}));
        assert_eq!(self.recv(), json!({"type": "hello_ok"}));
    }

    pub fn request(&mut self, request: Json) -> i32 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"type": "request", "request_id": id, "request": request}));
        id
    }

    pub fn wait(&mut self, id: i32) -> Json {
        loop {
            if let Some(msg) = self.pending.remove(&i64::from(id)) {
                return msg;
            }
            let msg = self.recv();
            let rid = msg["request_id"].as_i64().expect("a response");
            assert!(
                self.pending.insert(rid, msg).is_none(),
                "duplicate response"
            );
        }
    }

    /// Like `wait`, but `None` when the connection breaks (the server was killed).
    pub fn try_wait(&mut self, id: i32) -> Option<Json> {
        loop {
            if let Some(msg) = self.pending.remove(&i64::from(id)) {
                return Some(msg);
            }
            let msg = match self.ws.read() {
                Ok(Message::Text(t)) => serde_json::from_str::<Json>(t.as_str()).ok()?,
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                _ => return None,
            };
            let rid = msg["request_id"].as_i64()?;
            self.pending.insert(rid, msg);
        }
    }

    pub fn call(&mut self, request: Json) -> Json {
        let id = self.request(request);
        self.wait(id)
    }

    pub fn ok(&mut self, request: Json) -> Json {
        let msg = self.call(request.clone());
        assert_eq!(msg["type"], "response_ok", "{request} -> {msg}");
        msg["response"].clone()
    }

    pub fn err(&mut self, request: Json) -> Json {
        let msg = self.call(request.clone());
        assert_eq!(msg["type"], "response_error", "{request} -> {msg}");
        msg["error"].clone()
    }

    pub fn open(&mut self, stream_id: i32) {
        self.ok(json!({"type": "open_stream", "stream_id": stream_id}));
    }

    pub fn execute(&mut self, stream_id: i32, stmt: Json) -> Json {
        self.ok(json!({"type": "execute", "stream_id": stream_id, "stmt": stmt}))["result"].clone()
    }

    pub fn sql(&mut self, stream_id: i32, sql: &str) -> Json {
        self.execute(stream_id, json!({"sql": sql}))
    }

    pub fn sql_err(&mut self, stream_id: i32, sql: &str) -> Json {
        self.err(json!({"type": "execute", "stream_id": stream_id, "stmt": {"sql": sql}}))
    }
}

pub fn int(v: i64) -> Json {
    json!({"type": "integer", "value": v.to_string()})
}

pub fn text(s: &str) -> Json {
    json!({"type": "text", "value": s})
}
