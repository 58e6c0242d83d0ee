//! A Hrana session: the state of one WebSocket connection on the SQL route, sans-IO.
//!
//! The server feeds it complete text messages ([`HranaSession::on_text`]), tells it when a
//! worker woke it ([`HranaSession::on_notified`]), and sends what
//! [`HranaSession::poll_outgoing`] returns, one text message each, in order. The session never
//! blocks: SQL runs on one worker thread per stream (see `worker.rs`).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::time::Instant;

use super::db::SqlShared;
use super::decode;
use super::error;
use super::proto::{self, ClientMsg, Error, Request, Response, ServerMsg, Version};
use super::worker::{self, Job, Outbox, StreamHandle};

pub(crate) mod resolve;
use crate::auth::{Admission, Verdict};
use crate::routes::Waker;

/// Why the session wants the WebSocket closed. Send the messages still in
/// [`HranaSession::poll_outgoing`] first (a `hello_error` may be there), then a close frame with
/// [`SessionError::close_code`] and [`SessionError::reason`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionError {
    /// The client broke the protocol: invalid JSON, unknown message type, request before
    /// `hello`, unknown stream or cursor, ... (close code 1002).
    Protocol(String),
    /// A binary message on a JSON session (close code 1003).
    Unsupported(String),
    /// Authentication failed; a `hello_error` was queued (close code 1008).
    Auth(String),
}

impl SessionError {
    /// The WebSocket close code (RFC 6455 §7.4.1).
    pub fn close_code(&self) -> u16 {
        match self {
            SessionError::Protocol(_) => 1002,
            SessionError::Unsupported(_) => 1003,
            SessionError::Auth(_) => 1008,
        }
    }

    /// The close reason, cut to fit a control frame (at most 123 bytes of UTF-8).
    pub fn reason(&self) -> &str {
        let text = match self {
            SessionError::Protocol(s) | SessionError::Unsupported(s) | SessionError::Auth(s) => s,
        };
        let mut end = text.len().min(123);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        &text[..end]
    }
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            SessionError::Protocol(s) | SessionError::Unsupported(s) | SessionError::Auth(s) => s,
        };
        write!(f, "{} ({})", text, self.close_code())
    }
}

impl std::error::Error for SessionError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No successful `hello` yet: requests are a protocol error.
    AwaitingHello,
    /// A `hello`'s token waits for its verdict; nothing more is read until then (requests the
    /// client sent after it are kept by the server, and read with the limits the verdict gives).
    CheckingHello,
    Ready,
    /// Asked to close (protocol or auth error): further input is ignored.
    Failed,
    /// `close()` was called.
    Closed,
}

enum Stream {
    Live {
        handle: StreamHandle,
        cursor: Option<i32>,
    },
    /// `open_stream` failed (limits); the id stays used until `close_stream`.
    Failed { cursor: Option<i32> },
}

impl Stream {
    fn cursor_mut(&mut self) -> &mut Option<i32> {
        match self {
            Stream::Live { cursor, .. } | Stream::Failed { cursor } => cursor,
        }
    }
}

/// One Hrana connection.
pub struct HranaSession {
    shared: Arc<SqlShared>,
    version: Version,
    /// The connection's standing with the token (a bearer header may already be presented).
    admission: Admission,
    waker: Waker,
    state: State,
    streams: HashMap<i32, Stream>,
    live_streams: usize,
    sqls: HashMap<i32, Arc<str>>,
    /// cursor id → stream id
    cursors: HashMap<i32, i32>,
    outgoing: VecDeque<String>,
    /// Bytes in `outgoing`.
    outgoing_bytes: usize,
    /// Bytes of the stored SQL texts.
    sql_bytes: usize,
    /// A large message being decoded off the loop, and its size.
    decoding: Option<Receiver<decode::Decoded>>,
    decoding_bytes: usize,
    outbox: Outbox,
    completions: Receiver<String>,
    /// Jobs sent to workers whose reply has not been collected yet.
    in_flight: usize,
}

impl HranaSession {
    /// `version`: negotiated from the subprotocol ([`Version::negotiate`]).
    /// `admission`: the connection's standing with the token; a `hello` without `jwt` is
    /// accepted once it is admitted (an `Authorization: Bearer` at the upgrade, or auth off).
    /// `waker`: called from worker threads after they queued a response, and when a token
    /// presented in `hello` has been judged.
    pub fn new(
        shared: Arc<SqlShared>,
        version: Version,
        admission: Admission,
        waker: Waker,
    ) -> HranaSession {
        let (tx, completions) = channel();
        let outbox = Outbox {
            encoding: worker::Encoding::WebSocket,
            tx,
            waker: waker.clone(),
            held: Arc::new(AtomicUsize::new(0)),
        };
        HranaSession {
            shared,
            version,
            admission,
            waker,
            state: State::AwaitingHello,
            streams: HashMap::new(),
            live_streams: 0,
            sqls: HashMap::new(),
            cursors: HashMap::new(),
            outgoing: VecDeque::new(),
            outgoing_bytes: 0,
            sql_bytes: 0,
            decoding: None,
            decoding_bytes: 0,
            outbox,
            completions,
            in_flight: 0,
        }
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// Whether the connection may use the database (its token was right, or auth is off).
    pub fn is_admitted(&self) -> bool {
        self.admission.is_admitted()
    }

    /// Handles one complete text message from the client, received at `now`.
    ///
    /// `Err` asks for the connection to be closed (after sending what `poll_outgoing` returns).
    /// Input after an error, after a failed `hello` or after `close()` is ignored.
    pub fn on_text(&mut self, text: &str, now: Instant) -> Result<(), SessionError> {
        if matches!(self.state, State::Failed | State::Closed) {
            return Ok(());
        }
        if text.len() > decode::INLINE_DECODE_MAX {
            // Decoded off the loop; nothing more is read until it is done (`wants_input`).
            self.decoding_bytes = text.len();
            self.decoding = Some(decode::submit(text.to_owned(), self.waker.clone()));
            return Ok(());
        }
        self.on_decoded(proto::from_json(text).map_err(|e| e.to_string()), now)
    }

    /// A client message, decoded (here or on the decoder thread).
    fn on_decoded(&mut self, decoded: decode::Decoded, now: Instant) -> Result<(), SessionError> {
        let msg = match decoded {
            Ok(msg) => msg,
            Err(e) => return Err(self.fail_protocol(format!("invalid client message: {e}"))),
        };
        let res = match msg {
            ClientMsg::Hello { jwt } => self.handle_hello(jwt, now),
            ClientMsg::Request {
                request_id,
                request,
            } => {
                if self.state == State::AwaitingHello {
                    Err(SessionError::Protocol(
                        "received a request before hello".to_owned(),
                    ))
                } else {
                    self.handle_request(request_id, request)
                }
            }
        };
        if res.is_err() {
            self.state = State::Failed;
        }
        res
    }

    /// A binary message: only the JSON encodings are served (`hrana3-protobuf` is not).
    pub fn on_binary(&mut self, _data: &[u8]) -> Result<(), SessionError> {
        if matches!(self.state, State::Failed | State::Closed) {
            return Ok(());
        }
        self.state = State::Failed;
        Err(SessionError::Unsupported(
            "binary messages are not accepted with the JSON encoding".to_owned(),
        ))
    }

    /// Collects the responses that workers finished and the verdict on a `hello`'s token.
    /// Call when the waker fired (calling it more often is harmless). `Err`: the token was
    /// wrong; close as [`HranaSession::on_text`] says.
    pub fn on_woken(&mut self, now: Instant) -> Result<(), SessionError> {
        if let Some(decoding) = &self.decoding
            && let Ok(decoded) = decoding.try_recv()
        {
            self.decoding = None;
            self.decoding_bytes = 0;
            if !matches!(self.state, State::Failed | State::Closed) {
                self.on_decoded(decoded, now)?;
            }
        }
        while let Ok(text) = self.completions.try_recv() {
            self.in_flight = self.in_flight.saturating_sub(1);
            self.outbox.held.fetch_sub(text.len(), Ordering::Relaxed);
            if self.state != State::Closed {
                self.outgoing_bytes += text.len();
                self.outgoing.push_back(text);
            }
        }
        if self.state == State::CheckingHello {
            let settled = self.settle_hello();
            if settled.is_err() {
                self.state = State::Failed;
            }
            return settled;
        }
        Ok(())
    }

    /// The next message to send, as JSON text for one WebSocket text frame.
    pub fn poll_outgoing(&mut self) -> Option<String> {
        let text = self.outgoing.pop_front()?;
        self.outgoing_bytes -= text.len();
        Some(text)
    }

    /// Heap bytes the client made this session hold: queued jobs, replies not yet sent, stored
    /// SQL texts (for the server's memory budget).
    pub fn held_bytes(&self) -> usize {
        self.outbox.held.load(Ordering::Relaxed)
            + self.outgoing_bytes
            + self.sql_bytes
            + self.decoding_bytes
    }

    /// False while the connection has too many requests in flight: stop reading the socket
    /// (Hrana's backpressure), and read again once this turns true.
    pub fn wants_input(&self) -> bool {
        match self.state {
            State::AwaitingHello | State::Ready => {
                self.decoding.is_none()
                    && self.in_flight + self.outgoing.len()
                        < self.shared.config().max_outstanding_requests
            }
            State::CheckingHello | State::Failed | State::Closed => false,
        }
    }

    /// Requests whose response has not been collected by `on_notified` yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Stops every stream: running statements are interrupted, workers roll back open
    /// transactions and exit on their own threads. Nothing here blocks. Idempotent.
    pub fn close(&mut self) {
        if self.state == State::Closed {
            return;
        }
        self.state = State::Closed;
        for (_, stream) in self.streams.drain() {
            if let Stream::Live { handle, .. } = stream {
                handle.ctl.cancel();
                // Dropping the job sender makes the worker leave its loop.
                drop(handle.jobs);
            }
        }
        self.live_streams = 0;
        self.cursors.clear();
        self.sqls.clear();
        self.sql_bytes = 0;
        self.outgoing.clear();
        self.outgoing_bytes = 0;
    }

    fn fail_protocol(&mut self, message: String) -> SessionError {
        self.state = State::Failed;
        SessionError::Protocol(message)
    }

    fn push(&mut self, msg: ServerMsg) {
        let text = msg.to_json();
        self.outgoing_bytes += text.len();
        self.outgoing.push_back(text);
    }

    fn respond(&mut self, request_id: i32, res: Result<Response, Error>) {
        let msg = match res {
            Ok(response) => ServerMsg::ResponseOk {
                request_id,
                response,
            },
            Err(error) => ServerMsg::ResponseError { request_id, error },
        };
        self.push(msg);
    }

    /// `hello` (Hrana 1 §hello; re-sendable from Hrana 2): a token in `jwt` is presented and
    /// judged in its turn; without one, the connection must already be admitted.
    fn handle_hello(&mut self, jwt: Option<String>, now: Instant) -> Result<(), SessionError> {
        if self.state == State::Ready && self.version < Version::Hrana2 {
            return Err(SessionError::Protocol(
                "a repeated hello needs hrana2 or later".to_owned(),
            ));
        }
        if let Some(jwt) = jwt.as_deref().filter(|j| !j.is_empty()) {
            self.admission.present(jwt, now);
        }
        self.state = State::CheckingHello;
        self.settle_hello()
    }

    /// Answer a `hello` once its verdict is known.
    fn settle_hello(&mut self) -> Result<(), SessionError> {
        let error = match self.admission.verdict() {
            Verdict::Pending => return Ok(()),
            Verdict::Admitted => {
                self.state = State::Ready;
                self.push(ServerMsg::HelloOk {});
                return Ok(());
            }
            Verdict::Refused => Error::new(
                error::AUTH_JWT_INVALID,
                "authentication failed: the token is not valid",
            ),
            Verdict::Absent => Error::new(
                error::AUTH_JWT_MISSING,
                "authentication required: send the server's token as `jwt` in hello",
            ),
        };
        let reason = error.message.clone();
        self.push(ServerMsg::HelloError { error });
        Err(SessionError::Auth(reason))
    }

    fn resolver(&self) -> resolve::Resolver<'_> {
        resolve::Resolver {
            version: self.version,
            sqls: &self.sqls,
        }
    }

    fn require(&self, min: Version, what: &str) -> Result<(), SessionError> {
        self.resolver().require(min, what)
    }

    fn stream(&mut self, stream_id: i32) -> Result<&mut Stream, SessionError> {
        self.streams
            .get_mut(&stream_id)
            .ok_or_else(|| SessionError::Protocol(format!("stream {stream_id} not found")))
    }

    /// Sends a job to a stream's worker, or answers at once for a stream that failed to open.
    fn send_job(&mut self, stream_id: i32, job: Job) -> Result<(), SessionError> {
        let request_id = job.request_id();
        let size = job.heap_size();
        let held = Arc::clone(&self.outbox.held);
        let job = match self.stream(stream_id)? {
            Stream::Live { handle, .. } => {
                held.fetch_add(size, Ordering::Relaxed);
                match handle.jobs.send(job) {
                    Ok(()) => {
                        self.in_flight += 1;
                        return Ok(());
                    }
                    // The worker is gone (it only exits on close or when the session drops it).
                    Err(e) => {
                        held.fetch_sub(size, Ordering::Relaxed);
                        e.0
                    }
                }
            }
            Stream::Failed { .. } => job,
        };
        let res = match job {
            Job::CloseCursor { .. } => Ok(Response::CloseCursor {}),
            Job::FetchCursor { .. } => Err(Error::new(
                error::CURSOR_NOT_OPEN,
                "the cursor's stream failed to open",
            )),
            _ => Err(Error::new(
                error::STREAM_NOT_OPEN,
                format!("stream {stream_id} failed to open; close it"),
            )),
        };
        self.respond(request_id, res);
        Ok(())
    }

    fn handle_request(&mut self, request_id: i32, request: Request) -> Result<(), SessionError> {
        match request {
            Request::OpenStream(req) => self.open_stream(request_id, req.stream_id),
            Request::CloseStream(req) => self.close_stream(request_id, req.stream_id),
            Request::Execute(req) => {
                self.stream(req.stream_id)?;
                let stmt = self.resolver().resolve_stmt(req.stmt)?;
                self.send_job(req.stream_id, Job::Execute { request_id, stmt })
            }
            Request::Batch(req) => {
                self.stream(req.stream_id)?;
                let steps = self.resolver().resolve_batch(req.batch)?;
                self.send_job(req.stream_id, Job::Batch { request_id, steps })
            }
            Request::Sequence(req) => {
                self.require(Version::Hrana2, "`sequence`")?;
                self.stream(req.stream_id)?;
                let sql = self.resolver().resolve_sql(req.sql, req.sql_id)?;
                self.send_job(req.stream_id, Job::Sequence { request_id, sql })
            }
            Request::Describe(req) => {
                self.require(Version::Hrana2, "`describe`")?;
                self.stream(req.stream_id)?;
                let sql = self.resolver().resolve_sql(req.sql, req.sql_id)?;
                self.send_job(req.stream_id, Job::Describe { request_id, sql })
            }
            Request::StoreSql(req) => {
                self.require(Version::Hrana2, "`store_sql`")?;
                if self.sqls.contains_key(&req.sql_id) {
                    return Err(SessionError::Protocol(format!(
                        "SQL text {} already exists",
                        req.sql_id
                    )));
                }
                let config = self.shared.config();
                let (max, max_bytes) = (config.max_stored_sqls, config.max_stored_sql_bytes);
                let refusal = if self.sqls.len() >= max {
                    Some(format!("the connection already stores {max} SQL texts"))
                } else if self.sql_bytes + req.sql.len() > max_bytes {
                    Some(format!(
                        "the connection's stored SQL texts would exceed {max_bytes} bytes"
                    ))
                } else {
                    None
                };
                if let Some(message) = refusal {
                    self.respond(
                        request_id,
                        Err(Error::new(error::SQL_STORE_TOO_MANY, message)),
                    );
                    return Ok(());
                }
                self.sql_bytes += req.sql.len();
                self.sqls.insert(req.sql_id, Arc::from(req.sql));
                self.respond(request_id, Ok(Response::StoreSql {}));
                Ok(())
            }
            Request::CloseSql(req) => {
                self.require(Version::Hrana2, "`close_sql`")?;
                if let Some(sql) = self.sqls.remove(&req.sql_id) {
                    self.sql_bytes -= sql.len();
                }
                self.respond(request_id, Ok(Response::CloseSql {}));
                Ok(())
            }
            Request::GetAutocommit(req) => {
                self.require(Version::Hrana3, "`get_autocommit`")?;
                self.stream(req.stream_id)?;
                self.send_job(req.stream_id, Job::GetAutocommit { request_id })
            }
            Request::OpenCursor(req) => {
                self.require(Version::Hrana3, "`open_cursor`")?;
                let (stream_id, cursor_id) = (req.stream_id, req.cursor_id);
                if self.stream(stream_id)?.cursor_mut().is_some() {
                    return Err(SessionError::Protocol(format!(
                        "stream {stream_id} already has an open cursor"
                    )));
                }
                if self.cursors.contains_key(&cursor_id) {
                    return Err(SessionError::Protocol(format!(
                        "cursor {cursor_id} already exists"
                    )));
                }
                let steps = self.resolver().resolve_batch(req.batch)?;
                self.cursors.insert(cursor_id, stream_id);
                *self.stream(stream_id)?.cursor_mut() = Some(cursor_id);
                self.send_job(stream_id, Job::OpenCursor { request_id, steps })
            }
            Request::FetchCursor(req) => {
                self.require(Version::Hrana3, "`fetch_cursor`")?;
                let stream_id = self.cursor_stream(req.cursor_id)?;
                self.send_job(
                    stream_id,
                    Job::FetchCursor {
                        request_id,
                        max_count: req.max_count,
                    },
                )
            }
            Request::CloseCursor(req) => {
                self.require(Version::Hrana3, "`close_cursor`")?;
                let stream_id = self.cursor_stream(req.cursor_id)?;
                self.cursors.remove(&req.cursor_id);
                *self.stream(stream_id)?.cursor_mut() = None;
                self.send_job(stream_id, Job::CloseCursor { request_id })
            }
        }
    }

    fn cursor_stream(&self, cursor_id: i32) -> Result<i32, SessionError> {
        self.cursors
            .get(&cursor_id)
            .copied()
            .ok_or_else(|| SessionError::Protocol(format!("cursor {cursor_id} not found")))
    }

    fn open_stream(&mut self, request_id: i32, stream_id: i32) -> Result<(), SessionError> {
        if self.streams.contains_key(&stream_id) {
            return Err(SessionError::Protocol(format!(
                "stream {stream_id} already exists"
            )));
        }
        let max = self.shared.config().max_streams_per_connection;
        // Failed streams hold no thread, but their ids must not pile up without bound either.
        if self.streams.len() >= max.saturating_mul(2).max(1) {
            return Err(SessionError::Protocol(format!(
                "too many streams (more than {} open or failed streams)",
                max.saturating_mul(2)
            )));
        }
        let failure = if self.live_streams >= max {
            Error::new(
                error::STREAMS_TOO_MANY,
                format!("this connection already has {max} open streams"),
            )
        } else if let Some(slot) = self.shared.try_acquire_stream() {
            match worker::spawn(slot, stream_id, request_id, self.outbox.clone()) {
                Ok(handle) => {
                    self.streams.insert(
                        stream_id,
                        Stream::Live {
                            handle,
                            cursor: None,
                        },
                    );
                    self.live_streams += 1;
                    self.in_flight += 1;
                    return Ok(());
                }
                Err(e) => {
                    log::error!("cannot start a SQL worker thread: {e}");
                    Error::new(error::INTERNAL, "cannot start a worker thread")
                }
            }
        } else {
            Error::new(
                error::STREAMS_TOO_MANY,
                "the server has too many open streams; try again later",
            )
        };
        self.streams
            .insert(stream_id, Stream::Failed { cursor: None });
        self.respond(request_id, Err(failure));
        Ok(())
    }

    fn close_stream(&mut self, request_id: i32, stream_id: i32) -> Result<(), SessionError> {
        let Some(mut stream) = self.streams.remove(&stream_id) else {
            return Err(SessionError::Protocol(format!(
                "stream {stream_id} not found"
            )));
        };
        if let Some(cursor_id) = stream.cursor_mut().take() {
            self.cursors.remove(&cursor_id);
        }
        match stream {
            Stream::Live { handle, .. } => {
                self.live_streams -= 1;
                if handle.jobs.send(Job::CloseStream { request_id }).is_ok() {
                    self.in_flight += 1;
                } else {
                    self.respond(request_id, Ok(Response::CloseStream {}));
                }
            }
            Stream::Failed { .. } => self.respond(request_id, Ok(Response::CloseStream {})),
        }
        Ok(())
    }

    /// The waker this session gives to its workers.
    pub fn waker(&self) -> &Waker {
        &self.waker
    }
}

impl Drop for HranaSession {
    fn drop(&mut self) {
        self.close();
    }
}
