//! One worker thread per Hrana stream. The thread owns the stream's `rusqlite::Connection`, runs
//! the stream's requests in the order they were sent, serializes each response to JSON (off the
//! event loop), sends it through a channel and wakes the loop (the route's [`Waker`]) to collect it.
//!
//! Every job sent to a worker gets exactly one reply, which is what the session counts to know
//! how many requests are in flight.

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use super::db::{SqlShared, StreamSlot};
use super::error::{self, Phase};
use super::exec::{self, Budget, Control, ExecStep, ExecStmt, Outcome, StreamConn};
mod cursor;

use self::cursor::CursorEnd;
use super::bind::is_rollback;
use super::proto::{
    BatchResult, CursorEntry, Error, Response, ServerMsg, StmtResult, StreamResult,
};
use crate::routes::Waker;

/// A request for a stream's worker, already validated by the session.
pub(crate) enum Job {
    Execute {
        request_id: i32,
        stmt: ExecStmt,
    },
    Batch {
        request_id: i32,
        steps: Vec<ExecStep>,
    },
    Sequence {
        request_id: i32,
        sql: Arc<str>,
    },
    Describe {
        request_id: i32,
        sql: Arc<str>,
    },
    GetAutocommit {
        request_id: i32,
    },
    OpenCursor {
        request_id: i32,
        steps: Vec<ExecStep>,
    },
    FetchCursor {
        request_id: i32,
        max_count: u32,
    },
    CloseCursor {
        request_id: i32,
    },
    CloseStream {
        request_id: i32,
    },
}

impl Job {
    /// Heap bytes the job holds (its statements), for the memory budget.
    pub(crate) fn heap_size(&self) -> usize {
        match self {
            Job::Execute { stmt, .. } => stmt.heap_size(),
            Job::Batch { steps, .. } | Job::OpenCursor { steps, .. } => {
                steps.iter().map(|s| s.stmt.heap_size()).sum()
            }
            Job::Sequence { sql, .. } | Job::Describe { sql, .. } => sql.len(),
            _ => 0,
        }
    }

    pub(crate) fn request_id(&self) -> i32 {
        match self {
            Job::Execute { request_id, .. }
            | Job::Batch { request_id, .. }
            | Job::Sequence { request_id, .. }
            | Job::Describe { request_id, .. }
            | Job::GetAutocommit { request_id }
            | Job::OpenCursor { request_id, .. }
            | Job::FetchCursor { request_id, .. }
            | Job::CloseCursor { request_id }
            | Job::CloseStream { request_id } => *request_id,
        }
    }
}

/// How a worker writes its replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// Hrana messages over WebSocket: `response_ok` / `response_error` with the request id.
    WebSocket,
    /// Results of an HTTP pipeline: `{"type": "ok" | "error", ...}`, in request order. A cursor's
    /// fetch is written as newline-delimited entries after one marker byte,
    /// [`CURSOR_MORE`] or [`CURSOR_DONE`], ready for `/v3/cursor`'s body.
    Http,
}

/// Marks a fetch's entries (HTTP encoding): more may follow.
pub(crate) const CURSOR_MORE: u8 = b'+';
/// Marks a fetch's entries (HTTP encoding): the cursor is done.
pub(crate) const CURSOR_DONE: u8 = b'.';

/// Where a worker's replies go.
#[derive(Clone)]
pub(crate) struct Outbox {
    pub encoding: Encoding,
    pub tx: Sender<String>,
    pub waker: Waker,
    /// Bytes of jobs queued for the session's workers and of replies not yet collected: the
    /// session adds a job's size when it queues it, a worker takes it off when it takes the
    /// job and adds its reply's, the session takes that off when it collects the reply.
    pub held: Arc<AtomicUsize>,
}

impl Outbox {
    /// A worker took `job` from its queue.
    pub(crate) fn took(&self, job: &Job) {
        self.held.fetch_sub(job.heap_size(), Ordering::Relaxed);
    }
}

struct Replier {
    out: Outbox,
    ctl: Arc<Control>,
    max_bytes: usize,
}

impl Replier {
    /// Serializes and queues one response. Returns false if a `response_ok` was replaced by a
    /// `RESPONSE_TOO_LARGE` error because its JSON text exceeded the limit.
    fn reply(&self, request_id: i32, res: Result<Response, Error>) -> bool {
        let ok = res.is_ok();
        let mut text = self.encode(request_id, res);
        let mut fit = true;
        if ok && text.len() > self.max_bytes {
            fit = false;
            text = self.encode(request_id, Err(exec::too_large(self.max_bytes)));
        }
        let len = text.len();
        self.out.held.fetch_add(len, Ordering::Relaxed);
        if self.out.tx.send(text).is_err() {
            self.out.held.fetch_sub(len, Ordering::Relaxed);
        } else if !self.ctl.is_cancelled() {
            self.out.waker.wake();
        }
        fit
    }
}

impl Replier {
    fn encode(&self, request_id: i32, res: Result<Response, Error>) -> String {
        match (self.out.encoding, res) {
            (Encoding::WebSocket, Ok(response)) => ServerMsg::ResponseOk {
                request_id,
                response,
            }
            .to_json(),
            (Encoding::WebSocket, Err(error)) => {
                ServerMsg::ResponseError { request_id, error }.to_json()
            }
            (Encoding::Http, Ok(Response::FetchCursor { entries, done })) => {
                let mut text = String::new();
                text.push(if done { CURSOR_DONE } else { CURSOR_MORE } as char);
                for entry in &entries {
                    // Serializing an entry cannot fail (see ServerMsg::to_json).
                    if let Ok(line) = serde_json::to_string(entry) {
                        text.push_str(&line);
                        text.push('\n');
                    }
                }
                text
            }
            (Encoding::Http, Ok(Response::CloseStream {})) => StreamResult::Ok {
                response: Response::Close {},
            }
            .to_json(),
            (Encoding::Http, Ok(response)) => StreamResult::Ok { response }.to_json(),
            (Encoding::Http, Err(error)) => StreamResult::Error { error }.to_json(),
        }
    }
}

/// The session's handle on a stream's worker.
pub(crate) struct StreamHandle {
    pub jobs: Sender<Job>,
    pub ctl: Arc<Control>,
}

/// Starts the worker of a new stream. The worker opens its connection and answers the
/// `open_stream` request `open_request_id` itself.
pub(crate) fn spawn(
    slot: StreamSlot,
    stream_id: i32,
    open_request_id: i32,
    out: Outbox,
) -> io::Result<StreamHandle> {
    let (jobs, rx) = std::sync::mpsc::channel();
    let ctl = Control::new();
    let max_bytes = slot.shared().config().max_response_bytes;
    let replier = Replier {
        out,
        ctl: Arc::clone(&ctl),
        max_bytes,
    };
    std::thread::Builder::new()
        .name(format!("sql-stream-{stream_id}"))
        .stack_size(2 << 20)
        .spawn(move || {
            let worker = Worker {
                shared: Arc::clone(slot.shared()),
                rx,
                replier,
                conn: None,
                tx_timed_out: false,
                cursor_expired: false,
            };
            worker.run(open_request_id);
            drop(slot);
        })?;
    Ok(StreamHandle { jobs, ctl })
}

struct Worker {
    shared: Arc<SqlShared>,
    rx: Receiver<Job>,
    replier: Replier,
    /// `None` if the connection failed to open (or a request panicked): every request then gets
    /// `STREAM_NOT_OPEN`.
    conn: Option<StreamConn>,
    /// The transaction was rolled back by the idle timeout; the next request is told so.
    tx_timed_out: bool,
    /// The cursor was closed by the idle timeout.
    cursor_expired: bool,
}

enum Flow {
    Continue,
    Exit,
}

impl Worker {
    fn config(&self) -> &super::db::SqlConfig {
        self.shared.config()
    }

    fn run(mut self, open_request_id: i32) {
        let opened = self.shared.open_connection().and_then(|c| {
            StreamConn::new(
                c,
                Arc::clone(&self.replier.ctl),
                self.config().statement_timeout,
                self.config().read_only,
            )
        });
        match opened {
            Ok(conn) => {
                self.conn = Some(conn);
                self.replier
                    .reply(open_request_id, Ok(Response::OpenStream {}));
            }
            Err(e) => {
                log::warn!("cannot open a database connection: {e}");
                self.replier
                    .reply(open_request_id, Err(error::from_sqlite(&e, Phase::Step)));
            }
        }
        while let Some(job) = self.next_job() {
            if self.replier.ctl.is_cancelled() {
                break;
            }
            let request_id = job.request_id();
            let flow = catch_unwind(AssertUnwindSafe(|| self.handle(job)));
            match flow {
                Ok(Flow::Continue) => {}
                Ok(Flow::Exit) => break,
                Err(_) => {
                    log::error!("a SQL worker panicked while handling request {request_id}");
                    // The connection's state is unknown: drop it (SQLite rolls back).
                    self.conn = None;
                    self.replier.reply(
                        request_id,
                        Err(Error::new(
                            error::INTERNAL,
                            "internal error in the SQL worker",
                        )),
                    );
                }
            }
        }
        if let Some(conn) = self.conn.as_mut() {
            conn.rollback();
        }
    }

    /// Waits for the next job. Inside a transaction the wait is bounded by the idle timeout,
    /// after which the transaction is rolled back.
    fn next_job(&mut self) -> Option<Job> {
        let in_tx = self.conn.as_ref().is_some_and(|c| !c.is_autocommit());
        if in_tx {
            match self.rx.recv_timeout(self.config().idle_transaction_timeout) {
                Ok(job) => {
                    self.replier.out.took(&job);
                    return Some(job);
                }
                Err(RecvTimeoutError::Disconnected) => return None,
                Err(RecvTimeoutError::Timeout) => self.idle_rollback(),
            }
        }
        let job = self.rx.recv().ok()?;
        self.replier.out.took(&job);
        Some(job)
    }

    fn idle_rollback(&mut self) {
        if let Some(conn) = self.conn.as_mut()
            && conn.rollback()
        {
            log::info!(
                "rolled back a transaction idle for more than {:?}",
                self.shared.config().idle_transaction_timeout
            );
            self.tx_timed_out = true;
        }
    }

    fn reply(&self, request_id: i32, res: Result<Response, Error>) -> bool {
        self.replier.reply(request_id, res)
    }

    fn not_open(&self, request_id: i32) {
        self.reply(
            request_id,
            Err(Error::new(
                error::STREAM_NOT_OPEN,
                "the stream failed to open (or failed earlier); close it",
            )),
        );
    }

    /// For requests that run SQL: reports a transaction rolled back by the idle timeout once.
    /// After an idle rollback the client's transaction is gone, and no later statement of it may
    /// run on its own (it would autocommit: half a transaction on disk). Every statement fails
    /// with `TRANSACTION_TIMEOUT` until the client sends `ROLLBACK` (answered as done, though
    /// SQLite has no transaction open any more) or closes the stream. Returns whether the
    /// request was answered here.
    fn answer_after_timeout(
        &mut self,
        request_id: i32,
        sqls: &[&str],
        rolled_back: Option<fn() -> Response>,
    ) -> bool {
        if !self.tx_timed_out {
            return false;
        }
        if let ([sql], Some(done)) = (sqls, rolled_back)
            && is_rollback(sql)
        {
            self.tx_timed_out = false;
            self.reply(request_id, Ok(done()));
            return true;
        }
        let secs = self.config().idle_transaction_timeout.as_secs_f64();
        self.reply(
            request_id,
            Err(Error::new(
                error::TRANSACTION_TIMEOUT,
                format!("the transaction was rolled back after being idle for more than {secs} s"),
            )),
        );
        true
    }

    fn handle(&mut self, job: Job) -> Flow {
        let max_bytes = self.config().max_response_bytes;
        if self.conn.is_none() {
            match job {
                Job::CloseStream { request_id } => {
                    self.reply(request_id, Ok(Response::CloseStream {}));
                    return Flow::Exit;
                }
                Job::CloseCursor { request_id } => {
                    self.reply(request_id, Ok(Response::CloseCursor {}));
                }
                other => self.not_open(other.request_id()),
            }
            return Flow::Continue;
        }
        match job {
            Job::Execute { request_id, stmt } => {
                let done = || Response::Execute {
                    result: StmtResult::default(),
                };
                if self.answer_after_timeout(request_id, &[&stmt.sql], Some(done)) {
                    return Flow::Continue;
                }
                let Some(conn) = self.conn.as_mut() else {
                    return Flow::Continue;
                };
                let mut budget = Budget::new(max_bytes);
                let res = conn
                    .execute(&stmt, &mut budget)
                    .map(|result| Response::Execute { result });
                self.reply(request_id, res);
            }
            Job::Batch { request_id, steps } => {
                let sqls: Vec<&str> = steps.iter().map(|s| &*s.stmt.sql).collect();
                let done = || Response::Batch {
                    result: BatchResult {
                        step_results: vec![Some(StmtResult::default())],
                        step_errors: vec![None],
                    },
                };
                if self.answer_after_timeout(request_id, &sqls, Some(done)) {
                    return Flow::Continue;
                }
                let Some(conn) = self.conn.as_mut() else {
                    return Flow::Continue;
                };
                let mut budget = Budget::new(max_bytes);
                let result = conn.batch(&steps, &mut budget);
                self.reply(request_id, Ok(Response::Batch { result }));
            }
            Job::Sequence { request_id, sql } => {
                let done = || Response::Sequence {};
                if self.answer_after_timeout(request_id, &[&sql], Some(done)) {
                    return Flow::Continue;
                }
                let Some(conn) = self.conn.as_mut() else {
                    return Flow::Continue;
                };
                let res = conn.sequence(&sql).map(|()| Response::Sequence {});
                self.reply(request_id, res);
            }
            Job::Describe { request_id, sql } => {
                let Some(conn) = self.conn.as_mut() else {
                    return Flow::Continue;
                };
                let res = conn
                    .describe(&sql)
                    .map(|result| Response::Describe { result });
                self.reply(request_id, res);
            }
            Job::GetAutocommit { request_id } => {
                let is_autocommit = self.conn.as_ref().is_none_or(StreamConn::is_autocommit);
                self.reply(request_id, Ok(Response::GetAutocommit { is_autocommit }));
            }
            Job::OpenCursor { request_id, steps } => {
                let sqls: Vec<&str> = steps.iter().map(|s| &*s.stmt.sql).collect();
                if self.answer_after_timeout(request_id, &sqls, None) {
                    return Flow::Continue;
                }
                self.cursor_expired = false;
                self.reply(request_id, Ok(Response::OpenCursor {}));
                return match self.run_cursor(&steps) {
                    CursorEnd::Closed(request_id) => {
                        self.reply(request_id, Ok(Response::CloseCursor {}));
                        Flow::Continue
                    }
                    CursorEnd::StreamClosed(request_id) => self.close_stream(request_id),
                    CursorEnd::Disconnected => Flow::Exit,
                    CursorEnd::IdleTimeout => {
                        self.cursor_expired = true;
                        self.idle_rollback();
                        Flow::Continue
                    }
                };
            }
            Job::FetchCursor { request_id, .. } => {
                let message = if self.cursor_expired {
                    format!(
                        "the cursor was closed after being idle for more than {:?}",
                        self.config().idle_transaction_timeout
                    )
                } else {
                    "no cursor is open on this stream".to_owned()
                };
                self.reply(request_id, Err(Error::new(error::CURSOR_NOT_OPEN, message)));
            }
            Job::CloseCursor { request_id } => {
                self.cursor_expired = false;
                self.reply(request_id, Ok(Response::CloseCursor {}));
            }
            Job::CloseStream { request_id } => return self.close_stream(request_id),
        }
        Flow::Continue
    }

    fn close_stream(&mut self, request_id: i32) -> Flow {
        if let Some(conn) = self.conn.as_mut() {
            conn.rollback();
        }
        // Close the connection before answering, so that a client that reopens a stream at
        // once finds the database unlocked.
        self.conn = None;
        self.reply(request_id, Ok(Response::CloseStream {}));
        Flow::Exit
    }
}
