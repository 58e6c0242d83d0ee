//! Plain HTTP/1.1 on a connection (RFC 9112): requests that are not upgrades, kept alive and
//! pipelined, answered in order. A request's head is checked (Host, Origin, framing, the token)
//! before its body is read, so a 401, 411 or 413 goes out before the client sends the body
//! (`Expect: 100-continue` is answered only once the token is right). Bodies come with
//! `Content-Length` or chunked; the service behind a resource answers at once or later, whole or
//! in chunks. Nothing here blocks: SQL runs on the workers, which wake the connection.
//!
//! Timers: the first request is a handshake (its deadline and the handshake cap); after a
//! response the connection is idle until `keep_alive_timeout`; a body must arrive within
//! `body_timeout` of its head (else 408).

use std::borrow::Cow;

use super::conn::{Conn, Env, Phase, Verdict};
use super::listener::Door;
use crate::auth::{Admission, Verdict as TokenVerdict, presented_token};
use crate::http::message::{self, After, Body, Response};
use crate::http::{Refusal, pages};
use crate::protocol::Stamp;
use crate::protocol::http::{HeadScan, RequestHead};
use crate::protocol::http_body::{BodyDecoder, BodyLength, body_length};
use crate::routes::http::{Answer, HttpRequest, Pending, Progress};

/// A connection serving plain HTTP.
pub(super) struct HttpConn {
    /// Bytes read and not yet used: a head in pieces, a body, pipelined requests.
    pub input: Vec<u8>,
    pub state: HttpState,
    /// A judged check admitted this connection: a later request presenting the same token is
    /// admitted without another.
    admitted: bool,
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
    method: String,
    path: String,
    target: Target,
    length: BodyLength,
    expect_continue: bool,
    finish: Finish,
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
    keep_alive: bool,
    head_only: bool,
    /// The request's allowed Origin, echoed in `Access-Control-Allow-Origin`.
    cors_origin: Option<String>,
}

/// The methods CORS preflights are told about, and the fields a page may send.
const CORS_METHODS: &str = "GET, POST, OPTIONS";
const CORS_HEADERS: &str = "Authorization, Content-Type";

impl HttpConn {
    fn new(door: Door) -> HttpConn {
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

/// The 401 for a request without a right token: `/token` asks for HTTP Basic, so that a
/// browser prompts for it; everything else for Bearer (a browser's `fetch` must not prompt).
fn unauthorized(target: &Target) -> Refusal {
    match target {
        Target::Token => Refusal::UnauthorizedBasic,
        _ => Refusal::Unauthorized,
    }
}

/// RFC 9112 §9.3: HTTP/1.1 stays open unless `Connection: close`; HTTP/1.0 closes unless
/// `Connection: keep-alive`.
fn wants_keep_alive(head: &RequestHead<'_>) -> bool {
    if head.has_token("Connection", "close") {
        return false;
    }
    head.minor_version >= 1 || head.has_token("Connection", "keep-alive")
}

impl Conn {
    fn http(&mut self) -> Option<&mut HttpConn> {
        match &mut self.phase {
            Phase::Http(http) => Some(http),
            _ => None,
        }
    }

    /// A request head that is not an upgrade: decide what it gets before its body is read.
    pub(super) fn begin_http(&mut self, head: &RequestHead<'_>, door: Door, env: &mut Env<'_>) {
        if !matches!(self.phase, Phase::Http(_)) {
            self.phase = Phase::Http(Box::new(HttpConn::new(door)));
        }
        let admitted = self.http().is_some_and(|http| http.admitted);
        let mut finish = Finish {
            keep_alive: wants_keep_alive(head),
            head_only: head.method == "HEAD",
            cors_origin: None,
        };
        // A body that cannot be delimited leaves the connection out of step: close after.
        let length = match body_length(head) {
            Ok(length) => length,
            Err(error) => return self.refuse_http(Refusal::from(error), finish, true, env),
        };
        let unread_body = !matches!(length, BodyLength::None | BodyLength::Exact(0));
        let policy = &env.routes.policy;
        let host = head.authority().unwrap_or("");
        let origin = head.header("Origin");
        if let Err(denied) = policy
            .check_host(host)
            .and_then(|()| policy.check_origin(origin, host))
        {
            return self.refuse_http(Refusal::from(denied), finish, unread_body, env);
        }
        finish.cors_origin = origin.map(str::to_owned);
        let path = head.path();
        // CORS preflight (Fetch standard §3.2.2): answered without the token, never a guess.
        if head.method == "OPTIONS" {
            let mut response = Response::empty(204)
                .with_field("Allow", CORS_METHODS)
                .with_field("Access-Control-Allow-Methods", CORS_METHODS)
                .with_field("Access-Control-Allow-Headers", CORS_HEADERS)
                .with_field("Access-Control-Max-Age", "600");
            if origin.is_none() {
                response.fields.retain(|(name, _)| *name == "Allow");
            }
            return self.finish_http(response, finish, unread_body, env);
        }
        let get = matches!(head.method, "GET" | "HEAD");
        // sqld's probes of liveness and version, answered as it answers them.
        match (path, get) {
            ("/health", true) => return self.finish_http(Response::empty(200), finish, false, env),
            ("/version", true) => {
                let version = Response::new(
                    200,
                    "text/plain; charset=utf-8",
                    concat!("wsbridge ", env!("CARGO_PKG_VERSION")).as_bytes(),
                );
                return self.finish_http(version, finish, false, env);
            }
            ("/metrics", true) => {
                let request = Box::new(Incoming {
                    method: head.method.to_owned(),
                    path: path.to_owned(),
                    target: Target::Metrics,
                    length,
                    expect_continue: false,
                    finish,
                });
                if door == Door::Metrics {
                    // The operator chose who reaches this listener: no token.
                    return self.read_body(request, env);
                }
                return self.authorized_body(request, head, admitted, unread_body, env);
            }
            ("/token", true) if env.routes.tty.is_some() && door == Door::Main => {
                let request = Box::new(Incoming {
                    method: head.method.to_owned(),
                    path: path.to_owned(),
                    target: Target::Token,
                    length,
                    expect_continue: false,
                    finish,
                });
                return self.authorized_body(request, head, admitted, unread_body, env);
            }
            ("/health" | "/version" | "/metrics", false) => {
                let refusal = Refusal::MethodNotAllowed("GET, HEAD");
                return self.refuse_http(refusal, finish, unread_body, env);
            }
            _ if door == Door::Metrics => {
                return self.refuse_http(Refusal::NotFound, finish, unread_body, env);
            }
            _ => {}
        }
        let service = env
            .routes
            .services
            .iter()
            .enumerate()
            .find_map(|(i, s)| s.resource(path).map(|r| (i, r)));
        let Some((service, resource)) = service else {
            // Pages, for GET and HEAD only.
            return match env.routes.pages.get(path) {
                Some(page) if get => {
                    let mut response =
                        Response::new(200, page.content_type, page.body.into_owned());
                    for (name, value) in pages::SECURITY_HEADERS {
                        response = response.with_field(name, *value);
                    }
                    self.finish_http(response, finish, unread_body, env)
                }
                Some(_) => self.refuse_http(
                    Refusal::MethodNotAllowed("GET, HEAD"),
                    finish,
                    unread_body,
                    env,
                ),
                None => self.refuse_http(Refusal::NotFound, finish, unread_body, env),
            };
        };
        let allowed = match head.method {
            "GET" | "HEAD" => resource.allow.contains("GET"),
            method => resource.allow.split(", ").any(|m| m == method),
        };
        if !allowed {
            let refusal = Refusal::MethodNotAllowed(resource.allow);
            return self.refuse_http(refusal, finish, unread_body, env);
        }
        if head.method != "POST" {
            // Version probes: no token, no body.
            return self.call_service(
                Incoming {
                    method: head.method.to_owned(),
                    path: path.to_owned(),
                    target: Target::Service(service),
                    length,
                    expect_continue: false,
                    finish,
                },
                Vec::new(),
                env,
            );
        }
        if length == BodyLength::None {
            return self.refuse_http(Refusal::LengthRequired, finish, false, env);
        }
        if let BodyLength::Exact(n) = length
            && n > env.config.max_body as u64
        {
            return self.refuse_http(Refusal::ContentTooLarge, finish, true, env);
        }
        let request = Box::new(Incoming {
            method: head.method.to_owned(),
            path: path.to_owned(),
            target: Target::Service(service),
            length,
            expect_continue: head
                .header("Expect")
                .is_some_and(|e| e.eq_ignore_ascii_case("100-continue")),
            finish,
        });
        if !resource.needs_token {
            return self.read_body(request, env);
        }
        self.authorized_body(request, head, admitted, unread_body, env);
    }

    /// The request's body is read once its `Authorization: Bearer` token is judged right
    /// (through the throttle); a missing or wrong one is 401.
    fn authorized_body(
        &mut self,
        request: Box<Incoming>,
        head: &RequestHead<'_>,
        admitted: bool,
        unread_body: bool,
        env: &mut Env<'_>,
    ) {
        let policy = &env.routes.policy;
        if !policy.auth_required() {
            return self.read_body(request, env);
        }
        let Some(token) = presented_token(head.header("Authorization")) else {
            // No token at all: not a guess, and nothing to queue.
            let refusal = unauthorized(&request.target);
            return self.refuse_http(refusal, request.finish, unread_body, env);
        };
        if admitted && policy.is_token(&token) {
            return self.read_body(request, env);
        }
        let waker = env.notify.waker_for(self.id);
        match policy.admission(self.client_ip(head, env), waker, env.now) {
            Ok(mut admission) => {
                admission.present(&token, env.now);
                if let Some(http) = self.http() {
                    http.state = HttpState::Authorizing { request, admission };
                }
                self.authorize(env);
            }
            Err(_) => self.refuse_http(
                Refusal::TooManyRequests(1),
                request.finish,
                unread_body,
                env,
            ),
        }
    }

    /// `--base-path /x`: `/x` itself is redirected to `/x/` (the page's relative URLs resolve
    /// below it); everything else outside is 404.
    pub(super) fn answer_outside_base(
        &mut self,
        head: &RequestHead<'_>,
        base: &str,
        env: &mut Env<'_>,
    ) {
        if !matches!(self.phase, Phase::Http(_)) {
            self.phase = Phase::Http(Box::new(HttpConn::new(Door::Main)));
        }
        let finish = Finish {
            keep_alive: wants_keep_alive(head),
            head_only: head.method == "HEAD",
            cors_origin: None,
        };
        let unread_body = !matches!(
            body_length(head),
            Ok(BodyLength::None | BodyLength::Exact(0))
        );
        if head.path() == base && matches!(head.method, "GET" | "HEAD") {
            let location = match head.query() {
                Some(query) => format!("{base}/?{query}"),
                None => format!("{base}/"),
            };
            let response = Response::empty(308).with_field("Location", location);
            return self.finish_http(response, finish, unread_body, env);
        }
        self.refuse_http(Refusal::NotFound, finish, unread_body, env);
    }

    /// The token's verdict, once it is known.
    fn authorize(&mut self, env: &mut Env<'_>) {
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

    fn read_body(&mut self, request: Box<Incoming>, env: &mut Env<'_>) {
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

    fn call_service(&mut self, request: Incoming, body: Vec<u8>, env: &mut Env<'_>) {
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

    fn refuse_http(
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
    fn finish_http(
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
