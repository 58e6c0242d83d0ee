//! Routes: what an upgraded connection talks to.
//!
//! The server picks a route per connection (see [`select`]) and then drives it through the
//! [`Route`] trait: messages from the peer in, frames out through the [`RouteContext`]. A route
//! that has its own event source (a PTY master, worker threads) registers it with the loop's
//! registry or wakes the loop with its [`Notifier`]; it never blocks the loop.

pub mod echo;
pub mod sql;
pub mod tty;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::protocol::handshake::{HandshakeError, RequestHead};
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
}

/// The route for an upgrade request, and the subprotocol to answer with.
///
/// A path that names a route decides (`/echo`, `/sql`, `/tty`). On `/`, the first recognised
/// subprotocol the client offers decides (`hrana3`, `hrana2`, `hrana1`: SQL; `tty`: terminal);
/// with none, the connection is an echo and no subprotocol is selected. A route that needs a
/// subprotocol the client did not offer answers 400; an unknown path 404.
///
/// Within a route, the version is the route's most preferred one among those offered (a client
/// offering `hrana2, hrana3` gets `hrana3`).
pub fn select(head: &RequestHead<'_>) -> Result<(RouteKind, Option<&'static str>), HandshakeError> {
    let offered = || head.header_tokens("Sec-WebSocket-Protocol");
    let kind = match head.path() {
        "/echo" => RouteKind::Echo,
        "/sql" => RouteKind::Sql,
        "/tty" => RouteKind::Tty,
        "/" => {
            let first_known = offered().find_map(|p| {
                [RouteKind::Sql, RouteKind::Tty]
                    .into_iter()
                    .find(|k| k.subprotocols().contains(&p))
            });
            first_known.unwrap_or(RouteKind::Echo)
        }
        _ => return Err(HandshakeError::NotFound),
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
        None => Err(HandshakeError::BadRequest(match kind {
            RouteKind::Sql => "the SQL route needs subprotocol hrana3, hrana2 or hrana1",
            _ => "the terminal route needs subprotocol tty",
        })),
    }
}

/// Why [`Route::on_ready`] is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// The route's own source (registered under [`RouteContext::source_token`]) is ready.
    Source {
        /// Readable, or the other end hung up.
        readable: bool,
        /// Writable.
        writable: bool,
    },
    /// A thread called the route's [`Notifier`].
    Notified,
    /// The connection's unsent output fell below the low-water mark.
    OutputDrained,
}

/// What a route may touch while it handles something.
pub struct RouteContext<'a> {
    /// Writes frames into `out`.
    pub tx: &'a mut Sender,
    /// The connection's unsent bytes; `out.len()` is the output pressure.
    pub out: &'a mut Vec<u8>,
    /// The loop's registry, for the route's own file descriptors.
    pub registry: &'a mio::Registry,
    /// The token to register the route's own source with.
    pub source_token: mio::Token,
    /// The time of this loop iteration.
    pub now: Instant,
    /// Above this much unsent output a route should stop producing more.
    pub high_water: usize,
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

    /// The route's own source is ready, a worker notified, or output drained.
    fn on_ready(&mut self, _why: Ready, _cx: &mut RouteContext<'_>) {}

    /// `false` asks the server to stop reading the socket (backpressure); it asks again after
    /// every call into the route.
    fn wants_input(&self) -> bool {
        true
    }

    /// The connection is ending (closing handshake done, failure, timeout, shutdown). Release
    /// everything: deregister sources, stop workers, hang up children. Called exactly once.
    fn on_close(&mut self, _cx: &mut RouteContext<'_>) {}
}

/// What a route factory learns about the request it serves.
pub struct RouteRequest<'a> {
    /// The parsed request head.
    pub head: &'a RequestHead<'a>,
    /// The subprotocol negotiated, if the route has any.
    pub protocol: Option<&'static str>,
    /// Whether an `Authorization: Bearer` header carried the server's token.
    pub bearer_authorized: bool,
    /// The peer's address, for counting its wrong tokens ([`crate::server::auth::Policy::verify_token`]).
    pub peer: Option<std::net::IpAddr>,
    /// Wakes the loop for this connection from another thread.
    pub notifier: Notifier,
}

/// Creates a route per connection.
pub trait RouteFactory {
    /// A route for this request, or the HTTP error that refuses it.
    fn create(&self, request: RouteRequest<'_>) -> Result<Box<dyn Route>, HandshakeError>;
}

/// A stable identity for a connection: its table slot and a generation, so a notification for a
/// connection that has gone does not reach its slot's next occupant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId {
    /// The slot in the connection table.
    pub key: u32,
    /// Bumped for every new connection (wrapping), so a reused slot has a new identity.
    pub generation: u32,
}

/// The loop side of notifications: a waker and the connections that asked to be woken.
pub struct NotifyQueue {
    waker: mio::Waker,
    pending: Mutex<Vec<ConnId>>,
}

impl NotifyQueue {
    /// A queue that wakes the loop through `waker`.
    pub fn new(waker: mio::Waker) -> Arc<Self> {
        Arc::new(NotifyQueue {
            waker,
            pending: Mutex::new(Vec::new()),
        })
    }

    /// Wake the loop without naming a connection.
    pub fn wake(&self) {
        if let Err(error) = self.waker.wake() {
            log::error!("cannot wake the event loop: {error}");
        }
    }

    /// Move the connections that asked to be woken into `into`.
    pub fn drain(&self, into: &mut Vec<ConnId>) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        into.append(&mut pending);
    }
}

/// Wakes the event loop on behalf of one connection; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct Notifier {
    queue: Arc<NotifyQueue>,
    id: ConnId,
}

impl Notifier {
    /// A notifier for connection `id`.
    pub fn new(queue: Arc<NotifyQueue>, id: ConnId) -> Self {
        Notifier { queue, id }
    }

    /// Ask the loop to call this connection's route with [`Ready::Notified`].
    pub fn notify(&self) {
        let mut pending = self.queue.pending.lock().unwrap_or_else(|e| e.into_inner());
        let first = pending.is_empty();
        pending.push(self.id);
        drop(pending);
        // One wake-up per batch: the loop drains the whole list when it wakes.
        if first && let Err(error) = self.queue.waker.wake() {
            log::error!("cannot wake the event loop: {error}");
        }
    }

    /// The connection this notifier wakes.
    pub fn id(&self) -> ConnId {
        self.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::handshake::{HeadLimits, parse_request};

    fn route_for(
        path: &str,
        protocols: &str,
    ) -> Result<(RouteKind, Option<&'static str>), HandshakeError> {
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: a\r\n");
        if !protocols.is_empty() {
            request += &format!("Sec-WebSocket-Protocol: {protocols}\r\n");
        }
        request += "\r\n";
        let (head, _) = parse_request(request.as_bytes(), &HeadLimits::default())
            .unwrap()
            .unwrap();
        select(&head)
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
        assert_eq!(route_for("/sql", "").map_err(|e| e.status()), Err(400));
        assert_eq!(
            route_for("/tty", "hrana3").map_err(|e| e.status()),
            Err(400)
        );
        assert_eq!(route_for("/nope", "").map_err(|e| e.status()), Err(404));
    }
}
