//! One pipeline on a stream (Hrana 2/3 "Execute a pipeline of requests"): every request runs,
//! in order, even after an error, and gets one result. Requests that touch SQLite go to the
//! stream's worker (the same jobs as the WebSocket transport's), a window at a time; the others
//! (`store_sql`, `close_sql`) are answered here. The legacy v1 endpoints are pipelines of one
//! request whose result is reshaped.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::super::db::SqlConfig;
use super::super::error;
use super::super::proto::{Error, Response, StreamResult, Version};
use super::super::session::resolve::Resolver;
use super::super::worker::Job;
use super::streams::{Streams, Taken};
use super::wire::StreamRequest;
use super::{HttpError, json_error};
use crate::http::message::Response as HttpResponse;
use crate::routes::http::Progress;

/// Jobs sent to the worker ahead of their replies.
const WINDOW: usize = 32;

/// What the pipeline's results become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `{"baton", "base_url", "results": [...]}`
    Pipeline,
    /// `/v1/execute` and `/v1/batch`: `{"result": ...}` of the one request, or its error.
    V1,
}

/// A request on its way: answered here, or by the worker.
enum Planned {
    Ready(String),
    Job(Job),
}

/// Checks a pipeline's requests against the stream and turns them into jobs and ready results.
/// `store_sql` and `close_sql` take effect in order, so a later request may use the SQL just
/// stored. A request that breaks the protocol fails the whole pipeline (400), before any runs.
fn plan(
    requests: Vec<StreamRequest>,
    taken: &mut Taken,
    version: Version,
    limits: (usize, usize),
) -> Result<(Vec<Planned>, bool), HttpError> {
    let (max_sqls, max_sql_bytes) = limits;
    let mut sqls: HashMap<i32, Arc<str>> = taken.stream.sqls.clone();
    let mut sql_bytes = taken.stream.sql_bytes;
    let mut planned = Vec::with_capacity(requests.len());
    let mut closing = false;
    let protocol = |e: super::super::SessionError| HttpError::Protocol(e.reason().to_owned());
    for (i, request) in requests.into_iter().enumerate() {
        if closing {
            return Err(HttpError::Protocol(format!(
                "request {i} follows the `close` of its stream"
            )));
        }
        let resolver = Resolver {
            version,
            sqls: &sqls,
        };
        let request_id = i as i32;
        let item = match request {
            StreamRequest::Close => {
                closing = true;
                Planned::Job(Job::CloseStream { request_id })
            }
            StreamRequest::Execute(stmt) => Planned::Job(Job::Execute {
                request_id,
                stmt: resolver.resolve_stmt(stmt).map_err(protocol)?,
            }),
            StreamRequest::Batch(batch) => Planned::Job(Job::Batch {
                request_id,
                steps: resolver.resolve_batch(batch).map_err(protocol)?,
            }),
            StreamRequest::Sequence { sql, sql_id } => Planned::Job(Job::Sequence {
                request_id,
                sql: resolver.resolve_sql(sql, sql_id).map_err(protocol)?,
            }),
            StreamRequest::Describe { sql, sql_id } => Planned::Job(Job::Describe {
                request_id,
                sql: resolver.resolve_sql(sql, sql_id).map_err(protocol)?,
            }),
            StreamRequest::GetAutocommit => {
                resolver
                    .require(Version::Hrana3, "`get_autocommit`")
                    .map_err(protocol)?;
                Planned::Job(Job::GetAutocommit { request_id })
            }
            StreamRequest::StoreSql(req) => {
                if sqls.contains_key(&req.sql_id) {
                    return Err(HttpError::Protocol(format!(
                        "SQL text {} already exists",
                        req.sql_id
                    )));
                }
                let refusal = if sqls.len() >= max_sqls {
                    Some(format!("the stream already stores {max_sqls} SQL texts"))
                } else if sql_bytes + req.sql.len() > max_sql_bytes {
                    Some(format!(
                        "the stream's stored SQL texts would exceed {max_sql_bytes} bytes"
                    ))
                } else {
                    None
                };
                Planned::Ready(match refusal {
                    Some(message) => error_result(Error::new(error::SQL_STORE_TOO_MANY, message)),
                    None => {
                        sql_bytes += req.sql.len();
                        sqls.insert(req.sql_id, Arc::from(req.sql));
                        ok_result(Response::StoreSql {})
                    }
                })
            }
            StreamRequest::CloseSql(req) => {
                if let Some(sql) = sqls.remove(&req.sql_id) {
                    sql_bytes -= sql.len();
                }
                Planned::Ready(ok_result(Response::CloseSql {}))
            }
        };
        planned.push(item);
    }
    taken.stream.sqls = sqls;
    taken.stream.sql_bytes = sql_bytes;
    Ok((planned, closing))
}

pub(crate) fn ok_result(response: Response) -> String {
    StreamResult::Ok { response }.to_json()
}

pub(crate) fn error_result(error: Error) -> String {
    StreamResult::Error { error }.to_json()
}

/// A pipeline whose requests are with the worker.
pub(crate) struct PipelineRun {
    streams: Arc<Mutex<Streams>>,
    taken: Option<Taken>,
    shape: Shape,
    results: Vec<Option<String>>,
    /// Results the worker will give, in order.
    awaiting: VecDeque<usize>,
    /// Jobs not yet sent.
    queued: VecDeque<(usize, Job)>,
    /// The pipeline closes its stream.
    closing: bool,
    /// Bytes of the results collected, held to `max_bytes` in all.
    bytes: usize,
    max_bytes: usize,
}

impl PipelineRun {
    pub fn start(
        streams: Arc<Mutex<Streams>>,
        mut taken: Taken,
        requests: Vec<StreamRequest>,
        version: Version,
        shape: Shape,
        config: &SqlConfig,
    ) -> Result<PipelineRun, HttpError> {
        let limits = (config.max_stored_sqls, config.max_stored_sql_bytes);
        let max_bytes = config.max_response_bytes;
        let planned = plan(requests, &mut taken, version, limits);
        let (planned, closing) = match planned {
            Ok(planned) => planned,
            Err(error) => {
                // sqld drops the stream with the failed request; so does this.
                streams
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .forget(taken.id);
                return Err(error);
            }
        };
        let mut results = Vec::with_capacity(planned.len());
        let mut queued = VecDeque::new();
        for (i, item) in planned.into_iter().enumerate() {
            match item {
                Planned::Ready(text) => results.push(Some(text)),
                Planned::Job(job) => {
                    results.push(None);
                    queued.push_back((i, job));
                }
            }
        }
        Ok(PipelineRun {
            streams,
            taken: Some(taken),
            shape,
            results,
            awaiting: VecDeque::new(),
            queued,
            closing,
            bytes: 0,
            max_bytes,
        })
    }

    pub fn held_bytes(&self) -> usize {
        self.bytes + self.taken.as_ref().map_or(0, |t| t.stream.held_bytes())
    }

    pub fn poll(&mut self, now: Instant) -> Progress {
        let Some(taken) = self.taken.as_mut() else {
            return Progress::Waiting;
        };
        let stream = &mut taken.stream;
        while let Ok(mut text) = stream.replies.try_recv() {
            stream.held.fetch_sub(text.len(), Ordering::Relaxed);
            if stream.opening {
                // The worker's answer to its own opening; a failure shows in every reply after.
                stream.opening = false;
                continue;
            }
            let Some(i) = self.awaiting.pop_front() else {
                continue;
            };
            self.bytes += text.len();
            if self.bytes > self.max_bytes {
                self.bytes -= text.len();
                text = error_result(Error::new(
                    error::RESPONSE_TOO_LARGE,
                    format!(
                        "the pipeline's results would exceed {} bytes",
                        self.max_bytes
                    ),
                ));
                self.bytes += text.len();
            }
            self.results[i] = Some(text);
        }
        while self.awaiting.len() < WINDOW
            && let Some((i, job)) = self.queued.pop_front()
        {
            let size = job.heap_size();
            stream.held.fetch_add(size, Ordering::Relaxed);
            match stream.handle.jobs.send(job) {
                Ok(()) => self.awaiting.push_back(i),
                Err(_) => {
                    stream.held.fetch_sub(size, Ordering::Relaxed);
                    self.results[i] = Some(error_result(Error::new(
                        error::STREAM_NOT_OPEN,
                        "the stream's worker is gone",
                    )));
                }
            }
        }
        if !self.awaiting.is_empty() || !self.queued.is_empty() || stream.opening {
            return Progress::Waiting;
        }
        let Some(taken) = self.taken.take() else {
            return Progress::Waiting;
        };
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        let baton = if self.closing {
            streams.forget(taken.id);
            None
        } else {
            let baton = streams.baton(taken.id, taken.next_seq);
            streams.put_back(taken, now);
            Some(baton)
        };
        drop(streams);
        let results = std::mem::take(&mut self.results);
        Progress::Done(match self.shape {
            Shape::Pipeline => pipeline_response(baton, results),
            Shape::V1 => v1_response(results),
        })
    }
}

impl Drop for PipelineRun {
    fn drop(&mut self) {
        // The connection went away mid-request: the stream ends with it.
        if let Some(taken) = self.taken.take() {
            self.streams
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .forget(taken.id);
        }
    }
}

fn pipeline_response(baton: Option<String>, results: Vec<Option<String>>) -> HttpResponse {
    let mut body = String::with_capacity(
        64 + results
            .iter()
            .map(|r| r.as_ref().map_or(0, |r| r.len() + 1))
            .sum::<usize>(),
    );
    body.push_str("{\"baton\":");
    match &baton {
        // Batons are base64url: nothing to escape.
        Some(baton) => {
            body.push('"');
            body.push_str(baton);
            body.push('"');
        }
        None => body.push_str("null"),
    }
    body.push_str(",\"base_url\":null,\"results\":[");
    for (i, result) in results.into_iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(result.as_deref().unwrap_or("null"));
    }
    body.push_str("]}");
    HttpResponse::json(200, body)
}

/// `/v1/execute`, `/v1/batch`: the first result's `result`, or its error as a 400.
fn v1_response(results: Vec<Option<String>>) -> HttpResponse {
    #[derive(Deserialize)]
    struct Outer<'a> {
        #[serde(borrow, default)]
        response: Option<Inner<'a>>,
        #[serde(borrow, default)]
        error: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct Inner<'a> {
        #[serde(borrow)]
        result: &'a RawValue,
    }
    let first = results.into_iter().next().flatten().unwrap_or_default();
    match serde_json::from_str::<Outer<'_>>(&first) {
        Ok(Outer {
            response: Some(inner),
            ..
        }) => HttpResponse::json(200, format!("{{\"result\":{}}}", inner.result.get())),
        Ok(Outer {
            error: Some(error), ..
        }) => HttpResponse::json(400, error.get().to_owned()),
        _ => json_error(500, error::INTERNAL, "no result from the SQL worker"),
    }
}
