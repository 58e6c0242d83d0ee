//! One worker thread per Hrana stream. The thread owns the stream's `rusqlite::Connection`, runs
//! the stream's requests in the order they were sent, serializes each response to JSON (off the
//! event loop), sends it through a channel and wakes the loop (the route's [`Waker`]) to collect it.
//!
//! Every job sent to a worker gets exactly one reply, which is what the session counts to know
//! how many requests are in flight.

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use super::db::{SqlShared, StreamSlot};
use super::error::{self, Phase};
use super::exec::{self, Budget, Control, ExecStep, ExecStmt, Outcome, StreamConn};
use super::proto::{CursorEntry, Error, Response, ServerMsg};
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

/// Where a worker's replies go.
#[derive(Clone)]
pub(crate) struct Outbox {
    pub tx: Sender<String>,
    pub waker: Waker,
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
        let (mut text, ok) = match res {
            Ok(response) => (
                ServerMsg::ResponseOk {
                    request_id,
                    response,
                }
                .to_json(),
                true,
            ),
            Err(error) => (
                ServerMsg::ResponseError { request_id, error }.to_json(),
                false,
            ),
        };
        let mut fit = true;
        if ok && text.len() > self.max_bytes {
            fit = false;
            text = ServerMsg::ResponseError {
                request_id,
                error: exec::too_large(self.max_bytes),
            }
            .to_json();
        }
        if self.out.tx.send(text).is_ok() && !self.ctl.is_cancelled() {
            self.out.waker.wake();
        }
        fit
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

/// How a cursor ended.
enum CursorEnd {
    /// `close_cursor` with this request id.
    Closed(i32),
    /// `close_stream` with this request id.
    StreamClosed(i32),
    /// The session dropped its handle.
    Disconnected,
    /// No `fetch_cursor` arrived within the idle timeout.
    IdleTimeout,
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
                Ok(job) => return Some(job),
                Err(RecvTimeoutError::Disconnected) => return None,
                Err(RecvTimeoutError::Timeout) => self.idle_rollback(),
            }
        }
        self.rx.recv().ok()
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
    fn take_tx_timeout(&mut self, request_id: i32) -> bool {
        if !self.tx_timed_out {
            return false;
        }
        self.tx_timed_out = false;
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
                if self.take_tx_timeout(request_id) {
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
                if self.take_tx_timeout(request_id) {
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
                if self.take_tx_timeout(request_id) {
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
                if self.take_tx_timeout(request_id) {
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

    /// Runs a batch through a cursor: entries are produced lazily, as `fetch_cursor` requests
    /// ask for them, with the current statement kept open between fetches.
    fn run_cursor(&mut self, steps: &[ExecStep]) -> CursorEnd {
        let config = self.shared.config();
        let mut feed = Feed {
            rx: &self.rx,
            replier: &self.replier,
            idle: config.idle_transaction_timeout,
            statement_timeout: config.statement_timeout,
            // Leave room for the envelope: the exact size is checked when replying.
            fetch_bytes: config.max_response_bytes / 2,
            pending: Vec::new(),
            pending_bytes: 0,
            fetch: None,
            end: None,
            failure: None,
        };
        let Some(conn) = self.conn.as_mut() else {
            return CursorEnd::Disconnected;
        };
        // Nothing runs before the first fetch.
        if feed.wait_fetch() {
            let mut outcomes = Vec::with_capacity(steps.len());
            for (i, step) in steps.iter().enumerate() {
                if feed.stopped() {
                    break;
                }
                let step_index = u32::try_from(i).unwrap_or(u32::MAX);
                let run = step
                    .cond
                    .as_ref()
                    .is_none_or(|c| c.eval(&outcomes, conn.is_autocommit()));
                if !run {
                    outcomes.push(Outcome::Skipped);
                    continue;
                }
                let res = {
                    let feed_cell = std::cell::RefCell::new(&mut feed);
                    let mut on_begin = |cols| {
                        let size = 64 + 32 * usize::max(1, Vec::len(&cols));
                        feed_cell.borrow_mut().push(
                            CursorEntry::StepBegin {
                                step: step_index,
                                cols,
                            },
                            size,
                        )
                    };
                    let mut on_row = |row, size| {
                        feed_cell
                            .borrow_mut()
                            .push(CursorEntry::Row { row }, size + 24)
                    };
                    conn.run_streaming(&step.stmt, &mut on_begin, &mut on_row)
                };
                if feed.stopped() {
                    break;
                }
                match res {
                    Ok((affected_row_count, last_insert_rowid)) => {
                        outcomes.push(Outcome::Ok);
                        feed.push(
                            CursorEntry::StepEnd {
                                affected_row_count,
                                last_insert_rowid: Some(last_insert_rowid),
                            },
                            96,
                        )
                        .ok();
                    }
                    Err(error) => {
                        outcomes.push(Outcome::Failed);
                        let size = 96 + error.message.len();
                        feed.push(
                            CursorEntry::StepError {
                                step: step_index,
                                error,
                            },
                            size,
                        )
                        .ok();
                    }
                }
            }
            if feed.end.is_none() {
                if feed.failure.is_none() {
                    feed.flush(true);
                }
                // The batch is over: later fetches get no entries (or the failure) and `done`.
                while feed.fetch.is_some() || feed.wait_fetch() {
                    let entries = match feed.failure.take() {
                        Some(error) => vec![CursorEntry::Error { error }],
                        None => Vec::new(),
                    };
                    feed.pending = entries;
                    feed.flush(true);
                }
            }
        }
        feed.end.unwrap_or(CursorEnd::Disconnected)
    }
}

/// The producer side of a cursor: buffers entries and answers `fetch_cursor` requests.
struct Feed<'a> {
    rx: &'a Receiver<Job>,
    replier: &'a Replier,
    idle: Duration,
    statement_timeout: Duration,
    fetch_bytes: usize,
    pending: Vec<CursorEntry>,
    pending_bytes: usize,
    /// The fetch being filled: request id and maximum number of entries.
    fetch: Option<(i32, usize)>,
    end: Option<CursorEnd>,
    /// A fetch response was too large; the cursor stops and reports this error.
    failure: Option<Error>,
}

impl Feed<'_> {
    fn stopped(&self) -> bool {
        self.end.is_some() || self.failure.is_some()
    }

    /// Adds an entry; when the current fetch is full, answers it and waits for the next one.
    /// `Err` means the cursor must stop (closed, timed out, or failed).
    fn push(&mut self, entry: CursorEntry, size: usize) -> Result<(), Error> {
        if self.stopped() {
            return Err(stop_error());
        }
        self.pending.push(entry);
        self.pending_bytes += size;
        let full = match self.fetch {
            Some((_, max)) => self.pending.len() >= max || self.pending_bytes >= self.fetch_bytes,
            None => true,
        };
        if full {
            if !self.flush(false) {
                return Err(stop_error());
            }
            if !self.wait_fetch() {
                return Err(stop_error());
            }
        }
        Ok(())
    }

    /// Answers the current fetch with the pending entries. False if the answer was too large.
    fn flush(&mut self, done: bool) -> bool {
        let Some((request_id, _)) = self.fetch.take() else {
            return true;
        };
        let entries = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let fit = self
            .replier
            .reply(request_id, Ok(Response::FetchCursor { entries, done }));
        if !fit {
            self.failure = Some(exec::too_large(self.replier.max_bytes));
        }
        fit
    }

    /// Waits for the next `fetch_cursor`. False when the cursor ends instead (`self.end`).
    fn wait_fetch(&mut self) -> bool {
        loop {
            let job = match self.rx.recv_timeout(self.idle) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    self.end = Some(CursorEnd::IdleTimeout);
                    return false;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.end = Some(CursorEnd::Disconnected);
                    return false;
                }
            };
            if self.replier.ctl.is_cancelled() {
                self.end = Some(CursorEnd::Disconnected);
                return false;
            }
            match job {
                Job::FetchCursor {
                    request_id,
                    max_count,
                } => {
                    if max_count == 0 {
                        self.replier.reply(
                            request_id,
                            Ok(Response::FetchCursor {
                                entries: Vec::new(),
                                done: false,
                            }),
                        );
                        continue;
                    }
                    self.fetch = Some((request_id, max_count as usize));
                    exec::rearm(&self.replier.ctl, self.statement_timeout);
                    return true;
                }
                Job::CloseCursor { request_id } => {
                    self.end = Some(CursorEnd::Closed(request_id));
                    return false;
                }
                Job::CloseStream { request_id } => {
                    self.end = Some(CursorEnd::StreamClosed(request_id));
                    return false;
                }
                other => {
                    self.replier.reply(
                        other.request_id(),
                        Err(Error::new(
                            "CURSOR_OPEN",
                            "a cursor is open on this stream: close it before other requests",
                        )),
                    );
                }
            }
        }
    }
}

/// The error a cursor callback returns to unwind the running statement; never sent.
fn stop_error() -> Error {
    Error::new(error::INTERNAL, "cursor stopped")
}
