//! `GET /metrics`: what the loop counts as it goes (plain integers, one thread), and the
//! census of connections taken when a scrape asks for it.
//!
//! A scrape is answered after the loop's turn, not inside the connection's own handling: the
//! census walks every connection, which the connection asking cannot do while it is the one
//! being handled. So the request leaves a [`Scrape`] slot; the server fills it and wakes the
//! connection, whose pending answer then finds it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::notify::ConnId;
use crate::http::exposition::Exposition;
use crate::http::message::Response;
use crate::routes::RouteKind;
use crate::routes::http::{Pending, Progress};

/// The loop's counters.
#[derive(Default)]
pub(crate) struct Metrics {
    pub accepted: u64,
    /// Connections closed at accept: at `--max-connections`, at `--max-handshakes`.
    pub refused_connections: u64,
    pub refused_handshakes: u64,
    /// Plain HTTP responses by status.
    pub http_responses: BTreeMap<u16, u64>,
    /// Upgrades by route: echo, sql, tty.
    pub upgrades: [u64; 3],
    /// Upgrade requests refused, by status.
    pub upgrade_refusals: BTreeMap<u16, u64>,
    /// Plaintext bytes through every connection (after TLS, before it).
    pub bytes_received: u64,
    pub bytes_sent: u64,
    /// WebSocket frames, taken from each connection's protocol state after each of its turns.
    pub frames_received: u64,
    pub frames_sent: u64,
    /// Close frames by code (1005: an empty body), keyed by [`close_code_key`] so a peer
    /// choosing codes cannot grow the map (or the page's label set) past a few dozen entries.
    pub closes_sent: BTreeMap<u16, u64>,
    pub closes_received: BTreeMap<u16, u64>,
    /// Connections closed to bring the memory budget back under its limit.
    pub shed: u64,
    /// Scrapes waiting for the census.
    pub scrapes: Vec<(ConnId, Scrape)>,
}

/// Where a scrape's answer is left for its connection.
pub(crate) type Scrape = Arc<Mutex<Option<Response>>>;

/// The pending answer of a scrape: the census' page, once the server left it.
pub(crate) struct ScrapeAnswer(pub Scrape);

impl Pending for ScrapeAnswer {
    fn poll(&mut self, _now: Instant) -> Progress {
        match self.0.lock().ok().and_then(|mut slot| slot.take()) {
            Some(response) => Progress::Done(response),
            None => Progress::Waiting,
        }
    }
}

/// The key a Close code is counted under: the RFC 6455 §7.4.1 codes as themselves, the
/// registered (3000-3999) and private (4000-4999) ranges each as one, shown `3xxx` and `4xxx`.
pub(crate) fn close_code_key(code: u16) -> u16 {
    match code {
        3000..=3999 => 3000,
        4000..=4999 => 4000,
        _ => code,
    }
}

fn close_code_label(key: u16) -> String {
    match key {
        3000 => "3xxx".to_string(),
        4000 => "4xxx".to_string(),
        _ => key.to_string(),
    }
}

pub(crate) fn route_index(kind: RouteKind) -> usize {
    match kind {
        RouteKind::Echo => 0,
        RouteKind::Sql => 1,
        RouteKind::Tty => 2,
    }
}

const ROUTE_NAMES: [&str; 3] = ["echo", "sql", "tty"];

/// Where a connection stands, as the census counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ConnState {
    /// Before or in its first request (TLS handshake included).
    Handshake,
    /// Plain HTTP, kept alive.
    Http,
    /// Upgraded to a route.
    WebSocket(usize),
    /// Its last bytes are going out.
    Closing,
}

impl ConnState {
    fn labels(self) -> (&'static str, &'static str) {
        match self {
            ConnState::Handshake => ("none", "handshake"),
            ConnState::Http => ("http", "open"),
            ConnState::WebSocket(route) => (ROUTE_NAMES[route], "open"),
            ConnState::Closing => ("none", "closing"),
        }
    }
}

/// What the census found.
#[derive(Default)]
pub(crate) struct Census {
    /// By state and whether over TLS.
    pub conns: BTreeMap<(ConnState, bool), u64>,
    pub memory_used: usize,
    pub memory_limit: usize,
    pub memory_over: bool,
}

impl Metrics {
    /// The whole page: the loop's families, then the routes'.
    pub fn render(&self, census: &Census, routes: &[&dyn crate::routes::RouteFactory]) -> String {
        let mut out = Exposition::new();
        let conns: Vec<(Vec<(&str, &str)>, u64)> = census
            .conns
            .iter()
            .map(|(&(state, tls), &n)| {
                let (route, state) = state.labels();
                let transport = if tls { "tls" } else { "tcp" };
                (
                    vec![("route", route), ("state", state), ("transport", transport)],
                    n,
                )
            })
            .collect();
        out.multi_labeled(
            "wsbridge_connections",
            "gauge",
            "Open connections by route, state and transport.",
            &conns,
        );
        out.counter(
            "wsbridge_connections_accepted_total",
            "Connections accepted.",
            self.accepted,
        );
        out.labeled(
            "wsbridge_connections_refused_total",
            "counter",
            "Connections closed at accept, by the limit they met.",
            "limit",
            [
                ("max_connections", self.refused_connections),
                ("max_handshakes", self.refused_handshakes),
            ],
        );
        out.labeled(
            "wsbridge_upgrades_total",
            "counter",
            "WebSocket upgrades accepted, by route.",
            "route",
            ROUTE_NAMES.iter().copied().zip(self.upgrades),
        );
        let statuses: Vec<(String, u64)> = self
            .upgrade_refusals
            .iter()
            .map(|(s, n)| (s.to_string(), *n))
            .collect();
        out.labeled(
            "wsbridge_upgrade_refusals_total",
            "counter",
            "Upgrade requests refused, by HTTP status.",
            "status",
            statuses.iter().map(|(s, n)| (s.as_str(), *n)),
        );
        let statuses: Vec<(String, u64)> = self
            .http_responses
            .iter()
            .map(|(s, n)| (s.to_string(), *n))
            .collect();
        out.labeled(
            "wsbridge_http_responses_total",
            "counter",
            "Plain HTTP responses (not upgrades), by status.",
            "status",
            statuses.iter().map(|(s, n)| (s.as_str(), *n)),
        );
        out.labeled(
            "wsbridge_bytes_total",
            "counter",
            "Bytes through connections (plaintext: inside TLS).",
            "direction",
            [("in", self.bytes_received), ("out", self.bytes_sent)],
        );
        out.labeled(
            "wsbridge_websocket_frames_total",
            "counter",
            "WebSocket frames (control frames and fragments included).",
            "direction",
            [("in", self.frames_received), ("out", self.frames_sent)],
        );
        for (name, help, codes) in [
            (
                "wsbridge_websocket_closes_sent_total",
                "Close frames sent, by code (1005: no code; 3xxx, 4xxx: those ranges).",
                &self.closes_sent,
            ),
            (
                "wsbridge_websocket_closes_received_total",
                "Close frames received, by code (1005: no code; 3xxx, 4xxx: those ranges).",
                &self.closes_received,
            ),
        ] {
            let codes: Vec<(String, u64)> = codes
                .iter()
                .map(|(c, n)| (close_code_label(*c), *n))
                .collect();
            out.labeled(
                name,
                "counter",
                help,
                "code",
                codes.iter().map(|(c, n)| (c.as_str(), *n)),
            );
        }
        out.gauge(
            "wsbridge_memory_budget_used_bytes",
            "Bytes peers make the server hold, as the --max-memory budget counts them.",
            census.memory_used as f64,
        );
        out.gauge(
            "wsbridge_memory_budget_limit_bytes",
            "The --max-memory budget.",
            census.memory_limit as f64,
        );
        out.gauge(
            "wsbridge_memory_budget_over",
            "1 while the budget is over its limit (no reads, upgrades refused).",
            if census.memory_over { 1.0 } else { 0.0 },
        );
        out.counter(
            "wsbridge_memory_shed_connections_total",
            "Connections closed to bring the memory budget back under its limit.",
            self.shed,
        );
        for route in routes {
            route.write_metrics(&mut out);
        }
        out.finish()
    }
}
