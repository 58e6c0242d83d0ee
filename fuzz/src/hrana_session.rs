//! The structured target `hrana_session`: the SQL route's whole session machine
//! ([`HranaSession`]) driven the way the server drives it, with real worker threads on a real
//! SQLite file, by a script of client messages (`hello` with the right or a wrong token, stream,
//! statement, batch, stored-SQL and cursor requests on small ids, garbage) and of the server's
//! own steps (collect what the workers finished; let them all finish).
//!
//! The driver is the server's contract: a message is handed over only while
//! [`HranaSession::wants_input`] is true (otherwise it waits, as unread socket bytes would), the
//! outgoing queue is emptied after every call, and an `Err` ends the connection (its close code,
//! then [`HranaSession::close`]). Checked:
//! * no panic, here or on a worker thread (a worker's panic would be answered `INTERNAL`, and
//!   is caught by the answer check below only if it loses a reply; the fuzzer sees the abort);
//! * every message out is JSON of the four server kinds; every response names a request that
//!   was accepted and not yet answered, and a `response_ok` has the request's type;
//! * each `hello` gets the verdict the token deserves (`hello_ok`, or `hello_error` and close
//!   1008), a request before `hello_ok`, a request the negotiated version lacks, an unknown
//!   stream or cursor, a duplicate stream, cursor or SQL id, garbage text: close 1002; binary:
//!   close 1003;
//! * once all work is drained, every accepted request was answered exactly once, nothing is in
//!   flight, and [`HranaSession::held_bytes`] is exactly the stored SQL texts; at every step it
//!   stays under the configured limits plus a constant;
//! * after `close()` nothing is queued, and every worker thread ends (no stream slot leaks).
//!
//! Speed and determinism: the database file (in `/dev/shm` when there is one) and the two
//! server configurations are made once per thread; each run starts from a fresh schema, a fresh
//! peer address and its own virtual clock, and waits for the previous run's workers to be gone.
//! The workers are real threads, so which of two racing streams gets a write lock first can
//! differ between runs of one input (`busy_timeout` is 0: the loser gets `SQLITE_BUSY` at once,
//! never a wait); the checks hold either way.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use serde_json::{Value as Json, json};
use wsbridge::auth::Policy;
use wsbridge::routes::Waker;
use wsbridge::routes::sql::{
    HranaSession, SessionError, SqlConfig, SqlShared, Synchronous, Version,
};

use crate::gate::{fresh_run, variant_tag};

/// The token of the server that has one.
pub const TOKEN: &str = "s3cret-token-for-fuzzing";

/// At most this many actions of a script are played.
pub const MAX_ACTIONS: usize = 32;

/// How long the workers may take to answer everything in flight (or to exit after `close`).
const SETTLE_LIMIT: Duration = Duration::from_secs(15);

/// The SQL texts a script picks from.
pub const SQLS: &[&str] = &[
    "SELECT 1",
    "SELECT a, b FROM t ORDER BY a",
    "INSERT INTO t(b) VALUES ('x')",
    "UPDATE t SET b = 'y' WHERE a = 1",
    "DELETE FROM t WHERE a > 3",
    "BEGIN",
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK",
    "CREATE TABLE u(x)",
    "DROP TABLE u",
    "INSERT INTO u VALUES (1)",
    "SELECT ?, :a, @b",
    "SELECT zeroblob(3000)",
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) \
     SELECT i, 'row' FROM n",
    "SELECT 'é😀', 1.5, NULL, x'00ff', 9223372036854775807",
    "SELECT 1; SELECT 2",
    "",
    "not sql at all",
    "SAVEPOINT s",
    "RELEASE s",
    "SELECT * FROM nowhere",
];

/// Argument values a statement picks from.
fn value(i: usize) -> Json {
    match i % 6 {
        0 => json!({"type": "null"}),
        1 => json!({"type": "integer", "value": "42"}),
        2 => json!({"type": "integer", "value": "-9223372036854775808"}),
        3 => json!({"type": "float", "value": 1.5}),
        4 => json!({"type": "text", "value": "é"}),
        _ => json!({"type": "blob", "base64": "AAEC"}),
    }
}

/// Text that is no client message at all; each must end the session with 1002.
pub const GARBAGE: &[&str] = &[
    "",
    "{",
    "null",
    "[]",
    "{}",
    r#"{"type":"hello","jwt":5}"#,
    r#"{"type":"bye"}"#,
    r#"{"type":"request"}"#,
    r#"{"type":"request","request_id":1}"#,
    r#"{"type":"request","request_id":"1","request":{"type":"open_stream","stream_id":1}}"#,
    r#"{"type":"request","request_id":2147483648,"request":{"type":"open_stream","stream_id":1}}"#,
    r#"{"type":"request","request_id":1,"request":{"type":"nope"}}"#,
    r#"{"type":"request","request_id":1,"request":{"type":"execute","stream_id":1}}"#,
];

/// One script: the server it talks to, then what happens, in order.
#[derive(Debug, Clone, PartialEq, Eq, Arbitrary)]
pub struct Script {
    /// Bit 0: the server ([`servers`]: with a token and tight limits, or without auth);
    /// bits 1-2: the negotiated version (Hrana 1, 2, 3; 3 again); bit 3: the upgrade carried the
    /// right token (`Authorization: Bearer`).
    pub setup: u8,
    pub actions: Vec<Action>,
}

/// A statement: `sql` picks a text of [`SQLS`], a stored `sql_id` (0-3), both, or neither;
/// `args`: bits 0-1 the number of positional arguments, bits 2-4 the first value, bit 6 a named
/// argument; `want_rows`: omitted, true, false.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub struct Stmt {
    pub sql: u8,
    pub args: u8,
    pub want_rows: u8,
}

/// A batch step: `cond` bits 0-2 the kind of condition (none, ok, error, not, and, or,
/// is_autocommit), bits 3-7 the step it names (later steps, or itself, are a protocol error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub struct Step {
    pub cond: u8,
    pub stmt: Stmt,
}

/// What happens next. Stream ids are -1 to 3 (`stream % 5 - 1`), cursor ids 0 to 2, stored SQL
/// ids 0 to 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub enum Action {
    /// `hello`: `jwt % 5` is the right token, a wrong one, empty, `null`, absent. `later`: a
    /// second passes first (the token gate judges 3 checks at once, then 10 a second).
    Hello {
        jwt: u8,
        later: bool,
    },
    OpenStream {
        stream: u8,
    },
    CloseStream {
        stream: u8,
    },
    Execute {
        stream: u8,
        stmt: Stmt,
    },
    /// The first `len % 4` steps.
    Batch {
        stream: u8,
        steps: [Step; 3],
        len: u8,
    },
    Sequence {
        stream: u8,
        sql: u8,
    },
    Describe {
        stream: u8,
        sql: u8,
    },
    StoreSql {
        sql_id: u8,
        sql: u8,
    },
    CloseSql {
        sql_id: u8,
    },
    GetAutocommit {
        stream: u8,
    },
    /// The first `len % 3` steps.
    OpenCursor {
        stream: u8,
        cursor: u8,
        steps: [Step; 2],
        len: u8,
    },
    FetchCursor {
        cursor: u8,
        max_count: u8,
    },
    CloseCursor {
        cursor: u8,
    },
    /// An `execute` padded past the size decoded on the loop: decoded on the decoder thread.
    Large {
        stream: u8,
        sql: u8,
    },
    /// Text that is no client message: `GARBAGE[pick]`, or `bytes` made UTF-8.
    Garbage {
        pick: u8,
        bytes: [u8; 6],
    },
    /// A binary message.
    Binary,
    /// The waker fired: collect what is ready, without waiting.
    Poll,
    /// Let the workers finish: collect until nothing is in flight (bounded wait), the token
    /// gate having judged what waits.
    Drain,
}

const ACTION_VARIANTS: usize = 18;

impl Action {
    /// The bytes `Action::arbitrary` reads back as this action (for seeds).
    fn encode(&self, out: &mut Vec<u8>) {
        let stmt = |s: &Stmt| [s.sql, s.args, s.want_rows];
        let steps = |st: &[Step]| -> Vec<u8> {
            st.iter()
                .flat_map(|s| [s.cond, s.stmt.sql, s.stmt.args, s.stmt.want_rows])
                .collect()
        };
        let (index, fields): (usize, Vec<u8>) = match self {
            Action::Hello { jwt, later } => (0, vec![*jwt, u8::from(*later)]),
            Action::OpenStream { stream } => (1, vec![*stream]),
            Action::CloseStream { stream } => (2, vec![*stream]),
            Action::Execute { stream, stmt: s } => (3, [&[*stream][..], &stmt(s)].concat()),
            Action::Batch {
                stream,
                steps: st,
                len,
            } => (4, [&[*stream][..], &steps(st), &[*len]].concat()),
            Action::Sequence { stream, sql } => (5, vec![*stream, *sql]),
            Action::Describe { stream, sql } => (6, vec![*stream, *sql]),
            Action::StoreSql { sql_id, sql } => (7, vec![*sql_id, *sql]),
            Action::CloseSql { sql_id } => (8, vec![*sql_id]),
            Action::GetAutocommit { stream } => (9, vec![*stream]),
            Action::OpenCursor {
                stream,
                cursor,
                steps: st,
                len,
            } => (10, [&[*stream, *cursor][..], &steps(st), &[*len]].concat()),
            Action::FetchCursor { cursor, max_count } => (11, vec![*cursor, *max_count]),
            Action::CloseCursor { cursor } => (12, vec![*cursor]),
            Action::Large { stream, sql } => (13, vec![*stream, *sql]),
            Action::Garbage { pick, bytes } => (14, [&[*pick][..], bytes].concat()),
            Action::Binary => (15, vec![]),
            Action::Poll => (16, vec![]),
            Action::Drain => (17, vec![]),
        };
        out.extend(variant_tag(index, ACTION_VARIANTS));
        out.extend(fields);
    }
}

impl Script {
    /// The bytes `Script::arbitrary_take_rest` reads back as this script (for seeds).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.setup];
        for a in &self.actions {
            out.push(1);
            a.encode(&mut out);
        }
        out
    }
}

fn stream_id(b: u8) -> i32 {
    i32::from(b % 5) - 1
}

fn cursor_id(b: u8) -> i32 {
    i32::from(b % 3)
}

fn sql_id(b: u8) -> i32 {
    i32::from(b % 4)
}

/// `sql` / `sql_id` fields of a statement, `sequence` or `describe`.
fn sql_fields(pick: u8, into: &mut serde_json::Map<String, Json>) {
    let n = SQLS.len();
    match usize::from(pick) % (n + 6) {
        p if p < n => {
            into.insert("sql".into(), json!(SQLS[p]));
        }
        p if p < n + 4 => {
            into.insert("sql_id".into(), json!(p - n));
        }
        p if p == n + 4 => {
            into.insert("sql".into(), json!("SELECT 1"));
            into.insert("sql_id".into(), json!(0));
        }
        _ => {}
    }
}

fn stmt_json(s: &Stmt) -> Json {
    let mut m = serde_json::Map::new();
    sql_fields(s.sql, &mut m);
    let first = usize::from(s.args >> 2 & 7);
    let args: Vec<Json> = (0..usize::from(s.args & 3))
        .map(|i| value(first + i))
        .collect();
    if !args.is_empty() {
        m.insert("args".into(), Json::Array(args));
    }
    if s.args & 0x40 != 0 {
        m.insert(
            "named_args".into(),
            json!([{"name": ":a", "value": value(first + 1)}]),
        );
    }
    match s.want_rows % 3 {
        1 => {
            m.insert("want_rows".into(), json!(true));
        }
        2 => {
            m.insert("want_rows".into(), json!(false));
        }
        _ => {}
    }
    Json::Object(m)
}

fn cond_json(c: u8) -> Option<Json> {
    let step = c >> 3;
    Some(match c & 7 {
        1 => json!({"type": "ok", "step": step}),
        2 => json!({"type": "error", "step": step}),
        3 => json!({"type": "not", "cond": {"type": "ok", "step": step}}),
        4 => {
            json!({"type": "and", "conds": [{"type": "ok", "step": step}, {"type": "is_autocommit"}]})
        }
        5 => json!({"type": "or", "conds": [
            {"type": "error", "step": step}, {"type": "not", "cond": {"type": "is_autocommit"}}]}),
        6 => json!({"type": "is_autocommit"}),
        _ => return None,
    })
}

fn batch_json(steps: &[Step]) -> Json {
    let steps: Vec<Json> = steps
        .iter()
        .map(|s| {
            let mut m = serde_json::Map::new();
            if let Some(c) = cond_json(s.cond) {
                m.insert("condition".into(), c);
            }
            m.insert("stmt".into(), stmt_json(&s.stmt));
            Json::Object(m)
        })
        .collect();
    json!({ "steps": steps })
}

/// A request's `type` and JSON.
fn request_json(a: &Action) -> Option<(&'static str, Json)> {
    let with_sql = |ty: &'static str, stream: u8, sql: u8| {
        let mut m = serde_json::Map::new();
        m.insert("type".into(), json!(ty));
        m.insert("stream_id".into(), json!(stream_id(stream)));
        sql_fields(sql, &mut m);
        (ty, Json::Object(m))
    };
    Some(match *a {
        Action::OpenStream { stream } => (
            "open_stream",
            json!({"type": "open_stream", "stream_id": stream_id(stream)}),
        ),
        Action::CloseStream { stream } => (
            "close_stream",
            json!({"type": "close_stream", "stream_id": stream_id(stream)}),
        ),
        Action::Execute { stream, stmt } => (
            "execute",
            json!({"type": "execute", "stream_id": stream_id(stream), "stmt": stmt_json(&stmt)}),
        ),
        Action::Large { stream, sql } => (
            "execute",
            json!({"type": "execute", "stream_id": stream_id(stream), "stmt": {"sql": SQLS[usize::from(sql) % SQLS.len()]}}),
        ),
        Action::Batch { stream, steps, len } => (
            "batch",
            json!({"type": "batch", "stream_id": stream_id(stream),
                   "batch": batch_json(&steps[..usize::from(len % 4)])}),
        ),
        Action::Sequence { stream, sql } => with_sql("sequence", stream, sql),
        Action::Describe { stream, sql } => with_sql("describe", stream, sql),
        Action::StoreSql { sql_id: id, sql } => (
            "store_sql",
            json!({"type": "store_sql", "sql_id": sql_id(id), "sql": SQLS[usize::from(sql) % SQLS.len()]}),
        ),
        Action::CloseSql { sql_id: id } => (
            "close_sql",
            json!({"type": "close_sql", "sql_id": sql_id(id)}),
        ),
        Action::GetAutocommit { stream } => (
            "get_autocommit",
            json!({"type": "get_autocommit", "stream_id": stream_id(stream)}),
        ),
        Action::OpenCursor {
            stream,
            cursor,
            steps,
            len,
        } => (
            "open_cursor",
            json!({"type": "open_cursor", "stream_id": stream_id(stream), "cursor_id": cursor_id(cursor),
                   "batch": batch_json(&steps[..usize::from(len % 3)])}),
        ),
        Action::FetchCursor { cursor, max_count } => (
            "fetch_cursor",
            json!({"type": "fetch_cursor", "cursor_id": cursor_id(cursor), "max_count": max_count % 8}),
        ),
        Action::CloseCursor { cursor } => (
            "close_cursor",
            json!({"type": "close_cursor", "cursor_id": cursor_id(cursor)}),
        ),
        _ => return None,
    })
}

/// The version a request type needs.
fn min_version(ty: &str) -> Version {
    match ty {
        "sequence" | "describe" | "store_sql" | "close_sql" => Version::Hrana2,
        "get_autocommit" | "open_cursor" | "fetch_cursor" | "close_cursor" => Version::Hrana3,
        _ => Version::Hrana1,
    }
}

// ---------------------------------------------------------------------------------------------
// The environment: one database file and two servers per thread.
// ---------------------------------------------------------------------------------------------

/// The servers a script talks to. 0: a token, two streams per connection, three requests in
/// flight, two stored SQL texts of 120 bytes in all, responses of 4 KiB. 1: no auth, three
/// streams per connection but two in the whole server, eight requests in flight, responses of
/// 1 KiB.
fn config(which: usize, db: &str) -> SqlConfig {
    let common = SqlConfig {
        db: db.to_owned(),
        statement_timeout: Duration::from_secs(2),
        idle_transaction_timeout: Duration::from_secs(60),
        busy_timeout: Duration::ZERO,
        synchronous: Synchronous::Normal,
        ..SqlConfig::default()
    };
    match which {
        0 => SqlConfig {
            max_streams_per_connection: 2,
            max_streams_total: 64,
            max_outstanding_requests: 3,
            max_stored_sqls: 2,
            max_stored_sql_bytes: 120,
            max_response_bytes: 4096,
            ..common
        },
        _ => SqlConfig {
            max_streams_per_connection: 3,
            max_streams_total: 2,
            max_outstanding_requests: 8,
            max_stored_sqls: 150,
            max_stored_sql_bytes: 4096,
            max_response_bytes: 1024,
            ..common
        },
    }
}

const SCHEMA: &str = "DROP TABLE IF EXISTS u; DROP TABLE IF EXISTS t; \
    CREATE TABLE t(a INTEGER PRIMARY KEY, b); \
    INSERT INTO t(b) VALUES ('one'), (x'00ff'), (NULL), (2.5);";

const FILE_PREFIX: &str = "wsbridge-fuzz-hrana-";

struct Env {
    servers: [Arc<SqlShared>; 2],
    /// Resets the schema between runs (no worker is alive then).
    admin: rusqlite::Connection,
    path: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        remove_stale_files(&dir);
        static THREADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = THREADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!("{FILE_PREFIX}{}-{n}.db", std::process::id()));
        remove_db(&path);
        let db = path.to_string_lossy().into_owned();
        let servers = [0, 1].map(|which| {
            let token = (which == 0).then(|| TOKEN.to_owned());
            let policy = Arc::new(Policy::new(token, vec![], vec![]));
            SqlShared::new(config(which, &db), policy).expect("open the fuzz database")
        });
        let admin = rusqlite::Connection::open(&path).expect("open the fuzz database");
        admin
            .execute_batch("PRAGMA synchronous = OFF")
            .expect("pragma");
        Env {
            servers,
            admin,
            path,
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        remove_db(&self.path);
    }
}

fn remove_db(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.to_path_buf().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

/// libFuzzer ends with `exit`, which runs no thread-local destructor: remove the files of
/// processes that are gone.
fn remove_stale_files(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(FILE_PREFIX)) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if !pid.is_empty() && !std::path::Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

thread_local! {
    static ENV: Env = Env::new();
}

// ---------------------------------------------------------------------------------------------
// The driver.
// ---------------------------------------------------------------------------------------------

/// A client message not yet read by the "server", and what it must do.
struct Pending {
    text: Option<String>,
    kind: Kind,
}

#[derive(Clone, Copy)]
enum Kind {
    Hello {
        jwt: Option<&'static str>,
    },
    Request {
        id: i32,
        ty: &'static str,
        action: Action,
        /// Decoded on the decoder thread: its outcome comes from `on_woken`.
        large: bool,
    },
    Garbage,
    Binary,
}

#[derive(PartialEq, Eq)]
enum Flow {
    Go,
    Stop,
}

struct Driver<'e> {
    session: HranaSession,
    shared: &'e Arc<SqlShared>,
    version: Version,
    notified: Receiver<()>,
    clock: Instant,
    inbox: VecDeque<Pending>,
    next_id: i32,
    /// Accepted requests: id → type.
    sent: HashMap<i32, &'static str>,
    answered: HashSet<i32>,
    /// The verdicts the delivered hellos must get, in order.
    hellos: VecDeque<bool>,
    /// The session said `hello_ok` (it is `Ready`).
    ready: bool,
    /// The connection's standing with the token, as the model sees it.
    admitted: bool,
    streams: HashSet<i32>,
    /// cursor → stream
    cursors: HashMap<i32, i32>,
    /// stored SQL id → its length
    stored: HashMap<i32, usize>,
    /// `store_sql` request id → (SQL id, length), until answered.
    storing: HashMap<i32, (i32, usize)>,
    limit: usize,
}

/// The size of a [`Action::Large`] message.
const LARGE: usize = (64 << 10) + 1;

impl Driver<'_> {
    fn check_held(&self, when: &str) {
        let held = self.session.held_bytes();
        assert!(
            held <= self.limit,
            "held_bytes {held} over {} ({when})",
            self.limit
        );
    }

    /// Empties the outgoing queue, checking each message.
    fn collect(&mut self) {
        self.check_held("before sending");
        while let Some(text) = self.session.poll_outgoing() {
            let msg: Json = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("the session sent invalid JSON ({e}): {text}"));
            match msg["type"].as_str() {
                Some(t @ ("hello_ok" | "hello_error")) => {
                    let expected = self
                        .hellos
                        .pop_front()
                        .unwrap_or_else(|| panic!("{t} without a hello waiting: {text}"));
                    assert_eq!(t == "hello_ok", expected, "hello verdict: {text}");
                    self.ready = expected;
                }
                Some(t @ ("response_ok" | "response_error")) => {
                    let id = msg["request_id"].as_i64().expect("request_id");
                    let id = i32::try_from(id).expect("an i32 request id");
                    let ty = self
                        .sent
                        .get(&id)
                        .unwrap_or_else(|| panic!("a response to request {id}, never accepted"));
                    assert!(self.answered.insert(id), "request {id} answered twice");
                    if t == "response_ok" {
                        assert_eq!(msg["response"]["type"], *ty, "{text}");
                    } else {
                        assert!(msg["error"]["message"].is_string(), "{text}");
                    }
                    if let Some((sql_id, len)) = self.storing.remove(&id)
                        && t == "response_ok"
                    {
                        assert!(self.stored.insert(sql_id, len).is_none());
                    }
                }
                _ => panic!("unexpected server message {text}"),
            }
        }
        self.check_held("after sending");
    }

    /// The session asked for the connection to close.
    fn closing(&mut self, error: &SessionError, after: &str) -> Flow {
        let code = error.close_code();
        assert!(error.reason().len() <= 123);
        if let SessionError::Auth(_) = error {
            assert_eq!(code, 1008);
        }
        assert!(
            [1002, 1003, 1008].contains(&code),
            "{error:?} after {after}"
        );
        assert!(!self.session.wants_input(), "a failed session reads on");
        // Input after the error is ignored.
        let hello = json!({"type": "hello", "jwt": TOKEN}).to_string();
        assert_eq!(self.session.on_text(&hello, self.clock), Ok(()));
        assert_eq!(self.session.poll_outgoing(), None, "output after the error");
        Flow::Stop
    }

    fn result(&mut self, result: Result<(), SessionError>, after: &str) -> Flow {
        self.collect();
        match result {
            Ok(()) => Flow::Go,
            Err(e) => self.closing(&e, after),
        }
    }

    /// Whether a request must be refused with a protocol error, by the model.
    fn must_fail(&self, ty: &str, action: &Action) -> bool {
        if !self.ready || self.version < min_version(ty) {
            return true;
        }
        let has = |s: u8| self.streams.contains(&stream_id(s));
        match *action {
            Action::OpenStream { stream } => has(stream),
            Action::CloseStream { stream }
            | Action::Execute { stream, .. }
            | Action::Batch { stream, .. }
            | Action::Sequence { stream, .. }
            | Action::Describe { stream, .. }
            | Action::GetAutocommit { stream } => !has(stream),
            Action::StoreSql { sql_id: id, .. } => self.stored.contains_key(&sql_id(id)),
            Action::OpenCursor { stream, cursor, .. } => {
                !has(stream)
                    || self.cursors.values().any(|&s| s == stream_id(stream))
                    || self.cursors.contains_key(&cursor_id(cursor))
            }
            Action::FetchCursor { cursor, .. } | Action::CloseCursor { cursor } => {
                !self.cursors.contains_key(&cursor_id(cursor))
            }
            _ => false,
        }
    }

    fn deliver(&mut self, p: Pending) -> Flow {
        match p.kind {
            Kind::Hello { jwt } => {
                let text = p.text.expect("text");
                if self.ready && self.version < Version::Hrana2 {
                    let r = self.session.on_text(&text, self.clock);
                    assert!(
                        matches!(r, Err(SessionError::Protocol(_))),
                        "repeated hello on hrana1: {r:?}"
                    );
                    return self.result(r, "a repeated hello");
                }
                let auth_off = !self.shared.policy().auth_required();
                let ok = match jwt.filter(|j| !j.is_empty()) {
                    _ if auth_off => true,
                    Some(j) => j == TOKEN,
                    None => self.admitted,
                };
                if jwt.is_some_and(|j| !j.is_empty()) && !auth_off {
                    self.admitted = ok;
                }
                self.hellos.push_back(ok);
                self.ready = false;
                let r = self.session.on_text(&text, self.clock);
                if let Err(e) = &r {
                    assert!(matches!(e, SessionError::Auth(_)), "{e:?}");
                    assert!(!ok, "a right hello refused: {e:?}");
                }
                self.result(r, "hello")
            }
            Kind::Request {
                id,
                ty,
                action,
                large,
            } => {
                let text = p.text.expect("text");
                let must_fail = !large && self.must_fail(ty, &action);
                let r = self.session.on_text(&text, self.clock);
                match &r {
                    Ok(()) => {
                        assert!(!must_fail, "{text} accepted");
                        self.sent.insert(id, ty);
                        self.accepted(id, &action);
                    }
                    Err(e) => assert!(
                        matches!(e, SessionError::Protocol(_)),
                        "{text} refused with {e:?}"
                    ),
                }
                self.result(r, ty)
            }
            Kind::Garbage => {
                let text = p.text.expect("text");
                let r = self.session.on_text(&text, self.clock);
                assert!(
                    matches!(r, Err(SessionError::Protocol(_))),
                    "garbage {text:?} gave {r:?}"
                );
                self.result(r, "garbage")
            }
            Kind::Binary => {
                let r = self.session.on_binary(b"\x00\x01");
                assert!(matches!(r, Err(SessionError::Unsupported(_))), "{r:?}");
                self.result(r, "binary")
            }
        }
    }

    /// The model's view of what an accepted request changed.
    fn accepted(&mut self, id: i32, action: &Action) {
        match *action {
            Action::OpenStream { stream } => {
                self.streams.insert(stream_id(stream));
            }
            Action::CloseStream { stream } => {
                let s = stream_id(stream);
                self.streams.remove(&s);
                self.cursors.retain(|_, v| *v != s);
            }
            Action::StoreSql { sql_id: k, sql } => {
                let len = SQLS[usize::from(sql) % SQLS.len()].len();
                self.storing.insert(id, (sql_id(k), len));
            }
            Action::CloseSql { sql_id: k } => {
                self.stored.remove(&sql_id(k));
            }
            Action::OpenCursor { stream, cursor, .. } => {
                self.cursors.insert(cursor_id(cursor), stream_id(stream));
            }
            Action::CloseCursor { cursor } => {
                self.cursors.remove(&cursor_id(cursor));
            }
            _ => {}
        }
    }

    /// Hands over waiting messages while the session wants them.
    fn pump(&mut self) -> Flow {
        while self.session.wants_input() {
            let Some(p) = self.inbox.pop_front() else {
                break;
            };
            if self.deliver(p) == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Go
    }

    fn woken(&mut self) -> Flow {
        let r = self.session.on_woken(self.clock);
        if let Err(e) = &r {
            assert!(
                matches!(e, SessionError::Auth(_) | SessionError::Protocol(_)),
                "{e:?}"
            );
        }
        if self.result(r, "on_woken") == Flow::Stop {
            return Flow::Stop;
        }
        self.pump()
    }

    /// Lets everything finish: the token gate judges what waits (the clock jumps to when it
    /// can), workers answer, waiting messages are handed over, until nothing is in flight.
    fn drain(&mut self) -> Flow {
        let deadline = Instant::now() + SETTLE_LIMIT;
        loop {
            if self.woken() == Flow::Stop {
                return Flow::Stop;
            }
            if self.session.in_flight() == 0 && self.session.wants_input() {
                assert!(self.inbox.is_empty());
                return Flow::Go;
            }
            let policy = Arc::clone(self.shared.policy());
            if let Some(due) = policy.next_check_due() {
                self.clock = self.clock.max(due);
                policy.run_checks(self.clock);
                continue;
            }
            assert!(
                Instant::now() < deadline,
                "no progress for {SETTLE_LIMIT:?}: {} in flight, {} messages unread",
                self.session.in_flight(),
                self.inbox.len()
            );
            let _ = self.notified.recv_timeout(Duration::from_millis(20));
        }
    }

    fn act(&mut self, a: &Action) -> Flow {
        let pending = match *a {
            Action::Hello { jwt, later } => {
                if later {
                    self.clock += Duration::from_secs(1);
                }
                let jwt = match jwt % 5 {
                    0 => Some(Some(TOKEN)),
                    1 => Some(Some("wrong-token")),
                    2 => Some(Some("")),
                    3 => Some(None),
                    _ => None,
                };
                let text = match jwt {
                    Some(j) => json!({"type": "hello", "jwt": j}),
                    None => json!({"type": "hello"}),
                };
                Pending {
                    text: Some(text.to_string()),
                    kind: Kind::Hello { jwt: jwt.flatten() },
                }
            }
            Action::Garbage { pick, bytes } => {
                let text = match GARBAGE.get(usize::from(pick) % (GARBAGE.len() + 1)) {
                    Some(g) => (*g).to_owned(),
                    None => String::from_utf8_lossy(&bytes).into_owned(),
                };
                Pending {
                    text: Some(text),
                    kind: Kind::Garbage,
                }
            }
            Action::Binary => Pending {
                text: None,
                kind: Kind::Binary,
            },
            Action::Poll => return self.woken(),
            Action::Drain => return self.drain(),
            _ => {
                let (ty, request) = request_json(a).expect("a request");
                let id = self.next_id;
                self.next_id += 1;
                let mut text =
                    json!({"type": "request", "request_id": id, "request": request}).to_string();
                let large = matches!(a, Action::Large { .. });
                if large {
                    let pad = LARGE.saturating_sub(text.len());
                    text.extend(std::iter::repeat_n(' ', pad));
                }
                Pending {
                    text: Some(text),
                    kind: Kind::Request {
                        id,
                        ty,
                        action: *a,
                        large,
                    },
                }
            }
        };
        self.inbox.push_back(pending);
        self.pump()
    }
}

/// Waits until no worker of `shared` is alive.
fn wait_for_workers(shared: &SqlShared) {
    let deadline = Instant::now() + SETTLE_LIMIT;
    while shared.live_streams() > 0 {
        assert!(
            Instant::now() < deadline,
            "{} SQL workers still alive {SETTLE_LIMIT:?} after close",
            shared.live_streams()
        );
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// The `hrana_session` target: see the module documentation.
pub fn check(script: &Script) {
    ENV.with(|env| run(env, script));
}

fn run(env: &Env, script: &Script) {
    let which = usize::from(script.setup & 1);
    let shared = &env.servers[which];
    for s in &env.servers {
        wait_for_workers(s);
    }
    env.admin.execute_batch(SCHEMA).expect("reset the schema");
    let version = [
        Version::Hrana1,
        Version::Hrana2,
        Version::Hrana3,
        Version::Hrana3,
    ][usize::from(script.setup >> 1 & 3)];
    let header_auth = script.setup & 8 != 0;
    let (peer, clock) = fresh_run();
    for s in &env.servers {
        s.policy().run_checks(clock);
    }
    let (tx, notified) = channel();
    let waker = Waker::new(move || {
        let _ = tx.send(());
    });
    let mut admission = shared
        .policy()
        .admission(Some(peer), waker.clone(), clock)
        .expect("a fresh peer is admitted to wait");
    if header_auth {
        admission.present(TOKEN, clock);
    }
    let config = shared.config();
    let limit = config.max_stored_sql_bytes
        + (config.max_outstanding_requests + 2) * (config.max_response_bytes + 1024)
        + LARGE;
    let session = HranaSession::new(Arc::clone(shared), version, admission, waker);
    let mut d = Driver {
        session,
        shared,
        version,
        notified,
        clock,
        inbox: VecDeque::new(),
        next_id: 1,
        sent: HashMap::new(),
        answered: HashSet::new(),
        hellos: VecDeque::new(),
        ready: false,
        admitted: header_auth || !shared.policy().auth_required(),
        streams: HashSet::new(),
        cursors: HashMap::new(),
        stored: HashMap::new(),
        storing: HashMap::new(),
        limit,
    };
    let mut flow = Flow::Go;
    for a in script.actions.iter().take(MAX_ACTIONS) {
        flow = d.act(a);
        if flow == Flow::Stop {
            break;
        }
    }
    if flow == Flow::Go {
        flow = d.drain();
    }
    if flow == Flow::Go {
        assert_eq!(d.session.in_flight(), 0);
        for id in d.sent.keys() {
            assert!(d.answered.contains(id), "request {id} never answered");
        }
        let stored: usize = d.stored.values().sum();
        assert_eq!(
            d.session.held_bytes(),
            stored,
            "held bytes once drained vs the stored SQL texts {:?}",
            d.stored
        );
    }
    d.session.close();
    assert_eq!(d.session.poll_outgoing(), None);
    drop(d);
    wait_for_workers(shared);
}

#[cfg(test)]
mod tests {
    use super::*;
    use arbitrary::Unstructured;

    #[test]
    fn encode_is_read_back() {
        let steps = [Step {
            cond: 9,
            stmt: Stmt {
                sql: 1,
                args: 2,
                want_rows: 3,
            },
        }; 3];
        let script = Script {
            setup: 5,
            actions: vec![
                Action::Hello {
                    jwt: 0,
                    later: true,
                },
                Action::Batch {
                    stream: 1,
                    steps,
                    len: 2,
                },
                Action::OpenCursor {
                    stream: 2,
                    cursor: 1,
                    steps: [steps[0]; 2],
                    len: 1,
                },
                Action::Garbage {
                    pick: 200,
                    bytes: *b"abcdef",
                },
                Action::Drain,
            ],
        };
        let bytes = script.encode();
        let back = Script::arbitrary_take_rest(Unstructured::new(&bytes)).expect("decodes");
        assert_eq!(back, script);
    }

    #[test]
    fn a_plain_session_runs() {
        let script = Script {
            setup: 4, // Hrana 3, the server with a token
            actions: vec![
                Action::Hello {
                    jwt: 0,
                    later: false,
                },
                Action::OpenStream { stream: 2 },
                Action::Execute {
                    stream: 2,
                    stmt: Stmt {
                        sql: 1,
                        args: 0,
                        want_rows: 0,
                    },
                },
                Action::Drain,
            ],
        };
        check(&script);
    }
}
