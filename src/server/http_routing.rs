//! Where a plain HTTP request goes, decided from its head before its body is read: the CORS
//! preflight, the probes (`/health`, `/version`), `/metrics`, ttyd's `/token`, the routes'
//! services (Hrana over HTTP), and the pages; what the token gates, and through which door
//! (`--metrics-listen` answers only the scrape and the probes). `http1.rs` then reads the
//! body, calls the service and writes the answer.

use super::conn::{Conn, Env, Phase};
use super::http1::{CORS_HEADERS, CORS_METHODS, Finish, HttpConn, HttpState, Incoming, Target};
use super::listener::Door;
use crate::auth::presented_token;
use crate::http::message::Response;
use crate::http::{Refusal, pages};
use crate::protocol::http::RequestHead;
use crate::protocol::http_body::{BodyLength, body_length};

/// The 401 for a request without a right token: `/token` asks for HTTP Basic, so that a
/// browser prompts for it; everything else for Bearer (a browser's `fetch` must not prompt).
pub(super) fn unauthorized(target: &Target) -> Refusal {
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
    pub(super) fn authorized_body(
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
}
