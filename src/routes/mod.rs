//! Routes: what an upgraded connection talks to.
//!
//! The server picks a route per connection (see [`select`]) and then drives it through the
//! [`Route`] trait: messages from the peer in, frames out through the [`RouteContext`]. A route
//! knows nothing of the event loop. One that has file descriptors of its own (a PTY master)
//! asks the context's [`Watcher`] to watch them and is told when they are ready; one that has
//! threads (SQL workers) gives them its [`Waker`]. Neither ever blocks the loop.

pub mod echo;
pub mod http;
pub mod sql;
pub mod tty;

use std::io;
use std::os::fd::RawFd;
use std::time::Instant;

use crate::auth::Admission;
pub use crate::wake::Waker;

use crate::dissect::trace::MessageDecoder;
use crate::http::Refusal;
use crate::protocol::http::RequestHead;
use crate::protocol::{CloseCode, Message, Sender};

/// The routes a connection can be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteKind {
    /// Messages come back as they went out: conformance suites and benchmarks.
    Echo,
    /// SQLite over libSQL's Hrana protocol.
    Sql,
    /// A pseudo-terminal speaking ttyd's protocol.
    Tty,
}

impl RouteKind {
    /// The path that selects this route explicitly.
    pub fn path(self) -> &'static str {
        match self {
            RouteKind::Echo => "/echo",
            RouteKind::Sql => "/sql",
            RouteKind::Tty => "/tty",
        }
    }

    /// The subprotocols this route speaks, most preferred first. A route with any must
    /// negotiate one of them.
    pub fn subprotocols(self) -> &'static [&'static str] {
        match self {
            RouteKind::Echo => &[],
            RouteKind::Sql => &["hrana3", "hrana2", "hrana1"],
            RouteKind::Tty => &["tty"],
        }
    }

    /// Whether a client must present the server's token (unless auth is off). The echo route
    /// holds nothing worth protecting; the database and the shell do.
    pub fn needs_token(self) -> bool {
        match self {
            RouteKind::Echo => false,
            RouteKind::Sql | RouteKind::Tty => true,
        }
    }

    /// How this route's messages read in `--trace` (secrets redacted).
    pub fn trace_decoder(self) -> &'static dyn MessageDecoder {
        match self {
            RouteKind::Echo => &echo::EchoTrace,
            RouteKind::Sql => &sql::trace::HranaTrace,
            RouteKind::Tty => &tty::trace::TtydTrace,
        }
    }
}

/// The route for an upgrade request, and the subprotocol to answer with.
///
/// A path that names a route decides (`/echo`, `/sql`, `/tty` or ttyd's `/ws`). On `/`, the first recognised
/// subprotocol the client offers decides (`hrana3`, `hrana2`, `hrana1`: SQL; `tty`: terminal);
/// with none, the connection is an echo and no subprotocol is selected. A route that needs a
/// subprotocol the client did not offer answers 400; an unknown path 404.
///
/// Within a route, the version is the route's most preferred one among those offered (a client
/// offering `hrana2, hrana3` gets `hrana3`).
pub fn select(head: &RequestHead<'_>) -> Result<(RouteKind, Option<&'static str>), Refusal> {
    let offered = || head.header_tokens("Sec-WebSocket-Protocol");
    let kind = match head.path() {
        "/echo" => RouteKind::Echo,
        "/sql" => RouteKind::Sql,
        // ttyd's path, so that its clients connect unchanged.
        "/tty" | "/ws" => RouteKind::Tty,
        "/" => {
            let first_known = offered().find_map(|p| {
                [RouteKind::Sql, RouteKind::Tty]
                    .into_iter()
                    .find(|k| k.subprotocols().contains(&p))
            });
            first_known.unwrap_or(RouteKind::Echo)
        }
        _ => return Err(Refusal::NotFound),
    };
    if kind.subprotocols().is_empty() {
        return Ok((kind, None));
    }
    let chosen = kind
        .subprotocols()
        .iter()
        .find(|wanted| offered().any(|p| p == **wanted));
    match chosen {
        Some(protocol) => Ok((kind, Some(*protocol))),
        None => Err(Refusal::BadRequest(match kind {
            RouteKind::Sql => "the SQL route needs subprotocol hrana3, hrana2 or hrana1",
            _ => "the terminal route needs subprotocol tty",
        })),
    }
}

/// The trace decoder for an upgrade request's route, by [`select`]'s rule (what the server
/// gives `--trace`).
pub fn trace_decoder_for(head: &RequestHead<'_>) -> Option<&'static dyn MessageDecoder> {
    select(head).ok().map(|(kind, _)| kind.trace_decoder())
}

/// Why [`Route::on_ready`] is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// One of the descriptors the route watches is ready.
    Source {
        /// Readable, or the other end hung up.
        readable: bool,
        /// Writable.
        writable: bool,
    },
    /// A thread called the route's [`Waker`].
    Woken,
    /// The connection's unsent output fell below the low-water mark.
    OutputDrained,
}

/// What a route wants to hear about a descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// Readable (or hung up).
    Read,
    /// Readable and writable.
    ReadWrite,
}

/// Watches a route's own descriptors for it; the server implements it on its event loop.
/// Readiness is edge-triggered: after [`Ready::Source`] a route reads until `EAGAIN`.
pub trait Watcher {
    /// Start reporting readiness of `fd` to the route.
    fn watch(&mut self, fd: RawFd, interest: Interest) -> io::Result<()>;
    /// Stop; call before closing `fd`.
    fn unwatch(&mut self, fd: RawFd);
}

/// What a route may touch while it handles something.
pub struct RouteContext<'a> {
    /// Writes frames into `out`.
    pub tx: &'a mut Sender,
    /// The connection's unsent bytes; `out.len()` is the output pressure.
    pub out: &'a mut Vec<u8>,
    /// The time of this loop iteration.
    pub now: Instant,
    /// Above this much unsent output a route should stop producing more.
    pub high_water: usize,
    /// Watches the route's own descriptors.
    pub watcher: &'a mut dyn Watcher,
}

impl RouteContext<'_> {
    /// Start the closing handshake with `code` (the connection ends when the peer answers or the
    /// close timeout passes).
    pub fn close(&mut self, code: CloseCode, reason: &str) {
        self.tx.send_close(Some(code), reason, self.out);
    }
}

/// A handler behind one upgraded connection.
pub trait Route {
    /// After the 101 response has been queued.
    fn on_open(&mut self, _cx: &mut RouteContext<'_>) {}

    /// A complete message from the peer.
    fn on_message(&mut self, message: Message<'_>, cx: &mut RouteContext<'_>);

    /// A watched descriptor is ready, the route was woken, or output drained.
    fn on_ready(&mut self, _why: Ready, _cx: &mut RouteContext<'_>) {}

    /// `false` asks the server to stop handing the route messages and reading the socket
    /// (backpressure); it asks again after every message and every call into the route.
    fn wants_input(&self) -> bool {
        true
    }

    /// Whether the peer may use the route: its token was right, or the route needs none. Until
    /// then the server holds the connection to small messages and a deadline.
    fn is_admitted(&self) -> bool {
        true
    }

    /// Heap bytes the route holds that its peer made it hold (queued requests and responses,
    /// stored texts, buffers): charged to the connection in the server's memory budget.
    fn held_bytes(&self) -> usize {
        0
    }

    /// The connection is ending (closing handshake done, failure, timeout, shutdown). Release
    /// everything: unwatch descriptors, stop workers, hang up children. Called exactly once.
    fn on_close(&mut self, _cx: &mut RouteContext<'_>) {}
}

/// What a route factory learns about the request it serves.
pub struct RouteRequest<'a> {
    /// The parsed request head.
    pub head: &'a RequestHead<'a>,
    /// The subprotocol negotiated, if the route has any.
    pub protocol: Option<&'static str>,
    /// The connection's standing with the server's token (a bearer header at the upgrade is
    /// already presented).
    pub admission: Admission,
    /// Wakes the loop for this connection from another thread.
    pub waker: Waker,
}

/// Creates a route per connection.
pub trait RouteFactory {
    /// A route for this request, or the refusal that answers it.
    fn create(&self, request: RouteRequest<'_>) -> Result<Box<dyn Route>, Refusal>;

    /// The route's own families for `GET /metrics`.
    fn write_metrics(&self, _out: &mut crate::http::exposition::Exposition) {}
}

#[cfg(test)]
mod trace_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::http::{HeadLimits, parse_request};

    fn route_for(path: &str, protocols: &str) -> Result<(RouteKind, Option<&'static str>), u16> {
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: a\r\n");
        if !protocols.is_empty() {
            request += &format!("Sec-WebSocket-Protocol: {protocols}\r\n");
        }
        request += "\r\n";
        let (head, _) = parse_request(request.as_bytes(), &HeadLimits::default())
            .unwrap()
            .unwrap();
        select(&head).map_err(Refusal::status)
    }

    #[test]
    fn routing_rule() {
        assert_eq!(route_for("/", ""), Ok((RouteKind::Echo, None)));
        assert_eq!(route_for("/", "chat"), Ok((RouteKind::Echo, None)));
        assert_eq!(
            route_for("/", "hrana2, hrana1"),
            Ok((RouteKind::Sql, Some("hrana2")))
        );
        assert_eq!(
            route_for("/", "hrana2, hrana3"),
            Ok((RouteKind::Sql, Some("hrana3")))
        );
        assert_eq!(
            route_for("/?token=x", "tty"),
            Ok((RouteKind::Tty, Some("tty")))
        );
        assert_eq!(
            route_for("/", "chat, tty, hrana3"),
            Ok((RouteKind::Tty, Some("tty")))
        );
        assert_eq!(route_for("/echo", "hrana3"), Ok((RouteKind::Echo, None)));
        assert_eq!(
            route_for("/sql", "hrana1"),
            Ok((RouteKind::Sql, Some("hrana1")))
        );
        assert_eq!(route_for("/sql", ""), Err(400));
        assert_eq!(route_for("/tty", "hrana3"), Err(400));
        assert_eq!(route_for("/nope", ""), Err(404));
    }

    #[test]
    fn only_echo_is_open_without_the_token() {
        assert!(!RouteKind::Echo.needs_token());
        assert!(RouteKind::Sql.needs_token() && RouteKind::Tty.needs_token());
    }
}
