//! Hrana over HTTP (the Hrana 2 and 3 specs' HTTP transport, and the legacy v1 endpoints as
//! sqld serves them): the SQL route's HTTP resources, on the same workers, limits and error codes
//! as its WebSocket transport.
//!
//! | resource | what |
//! |---|---|
//! | `GET /v1`, `/v2`, `/v3` | version probes: 200, no token |
//! | `POST /v2/pipeline`, `/v3/pipeline` | a pipeline of requests on a stream named by its baton |
//! | `POST /v3/cursor` | a batch whose entries stream back as newline-delimited JSON |
//! | `POST /v1/execute`, `/v1/batch` | one statement or batch on a stream of its own |
//!
//! `GET /v3-protobuf` is not served (404): @libsql/client probes it and then uses JSON.
//!
//! * `wire`: request bodies. * `streams`: streams between requests, batons, expiry.
//! * `pipeline`: running a pipeline. * `cursor`: streaming a cursor.

mod cursor;
mod pipeline;
mod streams;
pub mod wire;

use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use self::cursor::CursorRun;
use self::pipeline::{PipelineRun, Shape};
use self::streams::{BatonError, Streams};
use self::wire::{BodyKind, Parsed, StreamRequest};
use super::db::SqlShared;
use super::decode::{self, INLINE_DECODE_MAX};
use super::error;
use super::proto::Version;
use super::session::resolve::Resolver;
use crate::http::message::Response;
use crate::routes::http::{Answer, HttpRequest, HttpService, Pending, Progress, Resource};

/// The SQL route's HTTP resources.
pub struct SqlHttp {
    shared: Arc<SqlShared>,
    streams: Arc<Mutex<Streams>>,
}

impl SqlHttp {
    pub fn new(shared: Arc<SqlShared>) -> SqlHttp {
        SqlHttp {
            streams: Arc::new(Mutex::new(Streams::new(Arc::clone(&shared)))),
            shared,
        }
    }
}

/// What fails a whole HTTP request (as sqld answers it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HttpError {
    /// Bad JSON, an unknown `sql_id`, a v3 request on v2...: 400, text.
    Protocol(String),
    Baton(BatonError),
}

impl HttpError {
    fn response(&self) -> Response {
        let text =
            |status: u16, body: String| Response::new(status, "text/plain", body.into_bytes());
        match self {
            HttpError::Protocol(message) => text(400, message.clone()),
            HttpError::Baton(BatonError::Invalid) => text(400, "Received an invalid baton".into()),
            HttpError::Baton(BatonError::Used) => {
                text(400, "Received a baton that has already been used".into())
            }
            // sqld's exact answer, which @libsql/client turns into `STREAM_EXPIRED`.
            HttpError::Baton(BatonError::Expired) => json_error(
                400,
                "STREAM_EXPIRED",
                "The stream has expired due to inactivity",
            ),
            HttpError::Baton(BatonError::TooMany) => json_error(
                503,
                error::STREAMS_TOO_MANY,
                "the server has too many open streams; try again later",
            ),
        }
    }
}

/// `{"message", "code"}` with `Content-Type: application/json` exactly: the clients read the
/// message only then (hrana-client compares the type as a string).
pub(crate) fn json_error(status: u16, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "message": message, "code": code }).to_string();
    Response::json(status, body)
}

/// What each POST resource takes, and the protocol version it speaks.
fn endpoint(path: &str) -> Option<(BodyKind, Version)> {
    Some(match path {
        "/v2/pipeline" => (BodyKind::Pipeline, Version::Hrana2),
        "/v3/pipeline" => (BodyKind::Pipeline, Version::Hrana3),
        "/v3/cursor" => (BodyKind::Cursor, Version::Hrana3),
        "/v1/execute" => (BodyKind::V1Execute, Version::Hrana2),
        "/v1/batch" => (BodyKind::V1Batch, Version::Hrana2),
        _ => return None,
    })
}

impl HttpService for SqlHttp {
    fn resource(&self, path: &str) -> Option<Resource> {
        match path {
            "/v1" | "/v2" | "/v3" => Some(Resource {
                allow: "GET, HEAD",
                needs_token: false,
            }),
            _ => endpoint(path).map(|_| Resource {
                allow: "POST",
                needs_token: true,
            }),
        }
    }

    fn call(&self, request: HttpRequest) -> Answer {
        let Some((kind, version)) = endpoint(&request.path) else {
            // sqld's text for its version probes.
            return Answer::Now(Response::new(
                200,
                "text/plain",
                &b"Hello, this is HTTP API v2 (Hrana over HTTP)"[..],
            ));
        };
        let work = if request.body.len() <= INLINE_DECODE_MAX {
            match wire::parse(kind, &request.body) {
                Ok(parsed) => self.start(parsed, version, &request),
                Err(message) => return Answer::Now(HttpError::Protocol(message).response()),
            }
        } else {
            let body = request.body;
            let parsing = decode::off_loop(move || wire::parse(kind, &body), request.waker.clone());
            Work::Parsing {
                parsing,
                version,
                waker: request.waker,
            }
        };
        match work {
            Work::Failed(response) => Answer::Now(response),
            work => Answer::Later(Box::new(Running {
                service: self.clone_handles(),
                work,
            })),
        }
    }

    fn on_tick(&self, now: Instant) {
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .expire(now);
    }

    fn held_bytes(&self) -> usize {
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .held_bytes()
    }
}

/// Where a request's work stands.
enum Work {
    /// A large body being parsed off the loop.
    Parsing {
        parsing: Receiver<Result<Parsed, String>>,
        version: Version,
        waker: crate::routes::Waker,
    },
    Pipeline(PipelineRun),
    Cursor(CursorRun),
    Failed(Response),
}

struct Handles {
    shared: Arc<SqlShared>,
    streams: Arc<Mutex<Streams>>,
}

impl SqlHttp {
    fn clone_handles(&self) -> Handles {
        Handles {
            shared: Arc::clone(&self.shared),
            streams: Arc::clone(&self.streams),
        }
    }

    fn start(&self, parsed: Parsed, version: Version, request: &HttpRequest) -> Work {
        self.clone_handles()
            .start(parsed, version, request.now, &request.waker)
    }
}

impl Handles {
    /// Take the stream the body names and set its requests going.
    fn start(
        &self,
        parsed: Parsed,
        version: Version,
        now: Instant,
        waker: &crate::routes::Waker,
    ) -> Work {
        let (baton, requests, shape) = match parsed {
            Parsed::Pipeline(body) => (body.baton, Ok(body.requests), Shape::Pipeline),
            Parsed::Cursor(body) => (body.baton, Err(body.batch), Shape::Pipeline),
            Parsed::V1Execute(body) => (
                None,
                Ok(vec![
                    StreamRequest::Execute(body.stmt),
                    StreamRequest::Close,
                ]),
                Shape::V1,
            ),
            Parsed::V1Batch(body) => (
                None,
                Ok(vec![StreamRequest::Batch(body.batch), StreamRequest::Close]),
                Shape::V1,
            ),
        };
        let taken = self
            .streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(baton.as_deref(), now);
        let taken = match taken {
            Ok(taken) => taken,
            Err(error) => return Work::Failed(HttpError::Baton(error).response()),
        };
        taken.stream.wake(Some(waker.clone()));
        match requests {
            Ok(requests) => match PipelineRun::start(
                Arc::clone(&self.streams),
                taken,
                requests,
                version,
                shape,
                self.shared.config(),
            ) {
                Ok(run) => Work::Pipeline(run),
                Err(error) => Work::Failed(error.response()),
            },
            Err(batch) => {
                let steps = Resolver {
                    version,
                    sqls: &taken.stream.sqls,
                }
                .resolve_batch(batch);
                match steps {
                    Ok(steps) => {
                        Work::Cursor(CursorRun::start(Arc::clone(&self.streams), taken, steps))
                    }
                    Err(e) => {
                        self.streams
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .forget(taken.id);
                        Work::Failed(HttpError::Protocol(e.reason().to_owned()).response())
                    }
                }
            }
        }
    }
}

/// A request's answer in the making.
struct Running {
    service: Handles,
    work: Work,
}

impl Pending for Running {
    fn poll(&mut self, now: Instant) -> Progress {
        if let Work::Parsing {
            parsing,
            version,
            waker,
        } = &self.work
        {
            let Ok(parsed) = parsing.try_recv() else {
                return Progress::Waiting;
            };
            self.work = match parsed {
                Ok(parsed) => self.service.start(parsed, *version, now, &waker.clone()),
                Err(message) => Work::Failed(HttpError::Protocol(message).response()),
            };
        }
        match &mut self.work {
            Work::Parsing { .. } => Progress::Waiting,
            Work::Pipeline(run) => run.poll(now),
            Work::Cursor(run) => run.poll(now),
            Work::Failed(response) => {
                Progress::Done(std::mem::replace(response, Response::empty(500)))
            }
        }
    }

    fn held_bytes(&self) -> usize {
        match &self.work {
            Work::Pipeline(run) => run.held_bytes(),
            Work::Cursor(run) => run.held_bytes(),
            _ => 0,
        }
    }
}
