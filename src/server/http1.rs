//! Plain HTTP/1.1 on a connection (RFC 9112): requests that are not upgrades, kept alive and
//! pipelined, answered in order. A request's head is checked (Host, Origin, framing, the token)
//! before its body is read, so a 401, 411 or 413 goes out before the client sends the body
//! (`Expect: 100-continue` is answered only once the token is right). Bodies come with
//! `Content-Length` or chunked; the service behind a resource answers at once or later, whole or
//! in chunks. Nothing here blocks: SQL runs on the workers, which wake the connection.
//!
//! Which request goes where (probes, metrics, `/token`, services, pages) is decided in
//! `http_routing.rs`; this file reads bodies, calls services and writes answers.
//!
//! Timers: the first request is a handshake (its deadline and the handshake cap); after a
//! response the connection is idle until `keep_alive_timeout`; a body must arrive within
//! `body_timeout` of its head (else 408).

use std::borrow::Cow;

use super::conn::{Conn, Env, Phase, Verdict};
use super::http_routing::unauthorized;
use super::listener::Door;
use crate::auth::{Admission, Verdict as TokenVerdict};
use crate::http::Refusal;
use crate::http::message::{self, After, Body, Response};
use crate::protocol::Stamp;
use crate::protocol::http::HeadScan;
use crate::protocol::http_body::{BodyDecoder, BodyLength};
use crate::routes::http::{Answer, HttpRequest, Pending, Progress};

/// A connection serving plain HTTP.
pub(super) struct HttpConn {
    /// Bytes read and not yet used: a head in pieces, a body, pipelined requests.
    pub input: Vec<u8>,
    pub state: HttpState,
    /// A judged check admitted this connection: a later request presenting the same token is
    /// admitted without another.
    pub admitted: bool,
    /// The listener it came through, which decides what it may ask for.
    pub door: Door,
}

pub(super) enum HttpState {
    /// Waiting for the next request head, until `deadline` (keep-alive).
    Idle { scan: HeadScan, deadline: Stamp },
    /// The token is being judged.
    Authorizing {
        request: Box<Incoming>,
        admission: Admission,
    },
    /// Reading the body, which must be complete by `deadline`.
    Body {
        request: Box<Incoming>,
        decoder: BodyDecoder,
        body: Vec<u8>,
        deadline: Stamp,
    },
    /// The service is answering.
    Answering {
        pending: Box<dyn Pending>,
        finish: Finish,
        streaming: bool,
    },
}

/// A request whose head was accepted, on its way to its service.
pub(super) struct Incoming {
    pub method: String,
    pub path: String,
    pub target: Target,
    pub length: BodyLength,
    pub expect_continue: bool,
    pub finish: Finish,
}

/// Who answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    /// `env.routes.services[i]`.
    Service(usize),
    /// `GET /metrics`, answered by the server after its census (`metrics.rs`).
    Metrics,
    /// ttyd's `GET /token`: the credential its clients put in their first message, handed
    /// only to a request that presents the token (HTTP Basic, as ttyd's `-c`, or Bearer).
    Token,
}

/// How a response ends: what the connection does next, and what every response carries.
#[derive(Clone)]
pub(super) struct Finish {
    pub keep_alive: bool,
    pub head_only: bool,
    /// The request's allowed Origin, echoed in `Access-Control-Allow-Origin`.
    pub cors_origin: Option<String>,
}

/// The methods CORS preflights are told about, and the fields a page may send.
pub(super) const CORS_METHODS: &str = "GET, POST, OPTIONS";
pub(super) const CORS_HEADERS: &str = "Authorization, Content-Type";

impl HttpConn {
    pub(super) fn new(door: Door) -> HttpConn {
        HttpConn {
            door,
            input: Vec::new(),
            state: HttpState::Idle {
                scan: HeadScan::new(),
                deadline: Stamp::default(),
            },
            admitted: false,
        }
    }

    /// Whether reading waits: while the token is judged and the service answers, pipelined
    /// requests stay in the socket.
    pub fn input_paused(&self) -> bool {
        matches!(
            self.state,
            HttpState::Authorizing { .. } | HttpState::Answering { .. }
        )
    }

    pub fn held_bytes(&self) -> usize {
        self.input.capacity()
            + match &self.state {
                HttpState::Body { body, .. } => body.capacity(),
                HttpState::Answering { pending, .. } => pending.held_bytes(),
                _ => 0,
            }
    }
}

impl Conn {
    pub(super) fn http(&mut self) -> Option<&mut HttpConn> {
        match &mut self.phase {
            Phase::Http(http) => Some(http),
            _ => None,
        }
    }

    /// The token's verdict, once it is known.
    pub(super) fn authorize(&mut self, env: &mut Env<'_>) {
        let Some(http) = self.http() else { return };
        let HttpState::Authorizing { admission, .. } = &mut http.state else {
            return;
        };
        let verdict = admission.verdict();
        if verdict == TokenVerdict::Pending {
            return;
        }
        let HttpState::Authorizing { request, .. } = std::mem::replace(
            &mut http.state,
            HttpState::Idle {
                scan: HeadScan::new(),
                deadline: env.stamp,
            },
        ) else {
            return;
        };
        if verdict == TokenVerdict::Admitted {
            http.admitted = true;
            self.read_body(request, env);
        } else {
            self.refuse_http(unauthorized(&request.target), request.finish, true, env);
        }
    }

    pub(super) fn read_body(&mut self, request: Box<Incoming>, env: &mut Env<'_>) {
        let decoder = match BodyDecoder::new(request.length, env.config.max_body as u64) {
            Ok(decoder) => decoder,
            Err(error) => return self.refuse_http(Refusal::from(error), request.finish, true, env),
        };
        if request.expect_continue {
            message::write_continue(&mut self.out);
        }
        if let Some(http) = self.http() {
            http.state = HttpState::Body {
                request,
                decoder,
                body: Vec::new(),
                deadline: env.stamp.after(env.config.body_timeout),
            };
        }
    }

    pub(super) fn call_service(&mut self, request: Incoming, body: Vec<u8>, env: &mut Env<'_>) {
        let service = match request.target {
            Target::Service(i) => env.routes.services.get(i),
            Target::Token => {
                // Judged right (or --no-auth, where ttyd's answer is an empty token).
                let token = env.routes.policy.token().unwrap_or("");
                let body = serde_json::json!({ "token": token }).to_string();
                let response = Response::json(200, body).with_field("Cache-Control", "no-store");
                return self.finish_http(response, request.finish, false, env);
            }
            Target::Metrics => {
                let slot = super::metrics::Scrape::default();
                env.metrics.scrapes.push((self.id, slot.clone()));
                if let Some(http) = self.http() {
                    http.state = HttpState::Answering {
                        pending: Box::new(super::metrics::ScrapeAnswer(slot)),
                        finish: request.finish,
                        streaming: false,
                    };
                }
                return;
            }
        };
        let Some(service) = service else {
            return self.refuse_http(Refusal::NotFound, request.finish, false, env);
        };
        let answer = service.call(HttpRequest {
            method: request.method,
            path: request.path,
            body,
            now: env.now,
            waker: env.notify.waker_for(self.id),
        });
        match answer {
            Answer::Now(response) => self.finish_http(response, request.finish, false, env),
            Answer::Later(pending) => {
                if let Some(http) = self.http() {
                    http.state = HttpState::Answering {
                        pending,
                        finish: request.finish,
                        streaming: false,
                    };
                }
            }
        }
    }

    pub(super) fn refuse_http(
        &mut self,
        refusal: Refusal,
        finish: Finish,
        unread_body: bool,
        env: &mut Env<'_>,
    ) {
        log::debug!("conn {}: HTTP request refused: {refusal}", self.id.key);
        self.finish_http(refusal.response(), finish, unread_body, env);
    }

    /// Write a whole response; then wait for the next request, or close (when asked, when a
    /// body was left unread, or when shutting down).
    pub(super) fn finish_http(
        &mut self,
        mut response: Response,
        finish: Finish,
        unread_body: bool,
        env: &mut Env<'_>,
    ) {
        let after = self.after_response(&finish, unread_body, env);
        add_cors(&mut response, &finish);
        *env.metrics
            .http_responses
            .entry(response.status)
            .or_default() += 1;
        message::write(&response, after, !finish.head_only, &mut self.out);
        self.next_request(after, env);
    }

    fn after_response(&self, finish: &Finish, unread_body: bool, env: &Env<'_>) -> After {
        if finish.keep_alive && !unread_body {
            After::KeepAlive(env.config.keep_alive_timeout)
        } else {
            After::Close
        }
    }

    fn next_request(&mut self, after: After, env: &mut Env<'_>) {
        match (after, self.http()) {
            (After::KeepAlive(timeout), Some(http)) => {
                http.state = HttpState::Idle {
                    scan: HeadScan::new(),
                    deadline: env.stamp.after(timeout),
                };
            }
            _ => self.linger(env),
        }
    }

    /// Move the connection on as far as it goes: heads, bodies, answers, in order.
    pub(super) fn pump_http(&mut self, env: &mut Env<'_>) {
        // Each turn either finishes a step or returns; a request's answer ends with `Idle`.
        for _ in 0..64 {
            let Some(http) = self.http() else { return };
            match &mut http.state {
                HttpState::Idle { .. } => {
                    if http.input.is_empty() || !self.next_head(env) {
                        return;
                    }
                }
                HttpState::Authorizing { .. } => {
                    self.authorize(env);
                    if matches!(
                        self.http().map(|h| &h.state),
                        Some(HttpState::Authorizing { .. })
                    ) {
                        return;
                    }
                }
                HttpState::Body {
                    decoder,
                    body,
                    deadline: _,
                    ..
                } => {
                    let decoded = decoder.decode(&http.input, body);
                    match decoded {
                        Ok(d) => {
                            http.input.drain(..d.consumed);
                            if !d.done {
                                return;
                            }
                        }
                        Err(error) => {
                            let HttpState::Body { request, .. } = std::mem::replace(
                                &mut http.state,
                                HttpState::Idle {
                                    scan: HeadScan::new(),
                                    deadline: env.stamp,
                                },
                            ) else {
                                return;
                            };
                            return self.refuse_http(
                                Refusal::from(error),
                                request.finish,
                                true,
                                env,
                            );
                        }
                    }
                    let HttpState::Body { request, body, .. } = std::mem::replace(
                        &mut http.state,
                        HttpState::Idle {
                            scan: HeadScan::new(),
                            deadline: env.stamp,
                        },
                    ) else {
                        return;
                    };
                    self.call_service(*request, body, env);
                }
                HttpState::Answering { .. } => {
                    if !self.poll_answer(env) {
                        return;
                    }
                }
            }
        }
        // A long pipeline: the rest waits for the next turn of the loop.
        env.runnable.push(self.id);
    }

    /// Parse the next pipelined head from the input and act on it. Returns whether one was
    /// complete.
    fn next_head(&mut self, env: &mut Env<'_>) -> bool {
        let Some(http) = self.http() else {
            return false;
        };
        let HttpState::Idle { scan, .. } = &mut http.state else {
            return false;
        };
        let mut input = std::mem::take(&mut http.input);
        let mut kept_scan = *scan;
        let parsed = match kept_scan.request(&input, &env.config.head_limits) {
            Ok(Some((head, used))) => {
                let upgraded = self.respond(&head, env);
                Ok(Some((upgraded, used)))
            }
            Ok(None) => Ok(None),
            Err(error) => Err(error),
        };
        match parsed {
            Ok(None) => {
                if let Some(http) = self.http() {
                    http.input = input;
                    if let HttpState::Idle { scan, .. } = &mut http.state {
                        *scan = kept_scan;
                    }
                }
                false
            }
            Ok(Some((upgraded, used))) => {
                input.drain(..used);
                if upgraded {
                    if !input.is_empty() {
                        self.on_frames(&mut input, env);
                    }
                } else if let Some(http) = self.http() {
                    http.input = input;
                }
                true
            }
            Err(error) => {
                let finish = Finish {
                    keep_alive: false,
                    head_only: false,
                    cors_origin: None,
                };
                self.refuse_http(Refusal::from(error), finish, true, env);
                false
            }
        }
    }

    /// Poll the service's answer while the output has room. Returns whether the answer is done.
    fn poll_answer(&mut self, env: &mut Env<'_>) -> bool {
        loop {
            if self.out.len() >= env.config.high_water {
                return false;
            }
            let Some(http) = self.http() else {
                return false;
            };
            let HttpState::Answering {
                pending,
                finish,
                streaming,
            } = &mut http.state
            else {
                return false;
            };
            match pending.poll(env.now) {
                Progress::Waiting => return false,
                Progress::Chunk(data) => {
                    if !finish.head_only {
                        message::write_chunk(&data, &mut self.out);
                    }
                }
                Progress::Head(mut response) => {
                    *streaming = true;
                    response.body = Body::Chunked;
                    let finish = finish.clone();
                    let after = self.after_response(&finish, false, env);
                    add_cors(&mut response, &finish);
                    *env.metrics
                        .http_responses
                        .entry(response.status)
                        .or_default() += 1;
                    message::write(&response, after, !finish.head_only, &mut self.out);
                    if after == After::Close
                        && let Some(http) = self.http()
                        && let HttpState::Answering { finish, .. } = &mut http.state
                    {
                        finish.keep_alive = false;
                    }
                }
                Progress::Done(response) => {
                    let finish = finish.clone();
                    self.finish_http(response, finish, false, env);
                    return true;
                }
                Progress::End => {
                    let finish = finish.clone();
                    let was_streaming = *streaming;
                    if !finish.head_only && was_streaming {
                        message::write_last_chunk(&mut self.out);
                    }
                    let after = self.after_response(&finish, false, env);
                    self.next_request(after, env);
                    return true;
                }
            }
        }
    }

    /// Timers of a plain HTTP connection: idle keep-alive, and the body's deadline.
    pub(super) fn http_tick(&mut self, env: &mut Env<'_>) -> Verdict {
        let now = env.stamp;
        let Some(http) = self.http() else {
            return Verdict::Keep;
        };
        match &http.state {
            HttpState::Idle { deadline, .. } if now.reached(*deadline) => {
                log::debug!("conn {}: keep-alive timeout", self.id.key);
                Verdict::Remove
            }
            HttpState::Body {
                deadline, request, ..
            } if now.reached(*deadline) => {
                let finish = request.finish.clone();
                http.state = HttpState::Idle {
                    scan: HeadScan::new(),
                    deadline: now,
                };
                self.refuse_http(Refusal::RequestTimeout, finish, true, env);
                Verdict::Keep
            }
            _ => Verdict::Keep,
        }
    }
}

fn add_cors(response: &mut Response, finish: &Finish) {
    if let Some(origin) = &finish.cors_origin {
        response
            .fields
            .push(("Access-Control-Allow-Origin", Cow::Owned(origin.clone())));
        response.fields.push(("Vary", Cow::Borrowed("Origin")));
    }
}
