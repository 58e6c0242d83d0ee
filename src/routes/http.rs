//! HTTP resources served by a route (Hrana over HTTP by the SQL route), behind one small trait
//! that, like [`super::Route`], knows nothing of the event loop. The server parses the request,
//! checks the token and reads the body; the service answers at once or later (its work runs on
//! threads that wake the connection through its [`Waker`]), whole or streamed in chunks.

use std::time::Instant;

use super::Waker;
use crate::http::message::Response;

/// What the server asks of a resource before it reads a request's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    /// The methods it answers, as an `Allow` field says them (`GET` includes `HEAD`).
    pub allow: &'static str,
    /// Whether a `POST` must carry the token (`Authorization: Bearer`). Version probes do not.
    pub needs_token: bool,
}

/// A request whose head and body are complete and whose token, if needed, was right.
#[derive(Debug)]
pub struct HttpRequest {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    pub body: Vec<u8>,
    /// When the request was complete.
    pub now: Instant,
    /// Wakes the connection when a [`Pending`] answer can make progress.
    pub waker: Waker,
}

/// A service's answer to a request.
pub enum Answer {
    /// Here it is.
    Now(Response),
    /// Work is under way: poll it when the connection is woken.
    Later(Box<dyn Pending>),
}

/// What a pending answer has for the connection.
#[derive(Debug)]
pub enum Progress {
    /// Nothing yet: poll again when woken.
    Waiting,
    /// The whole response.
    Done(Response),
    /// The head of a chunked response (`Body::Chunked`); chunks follow.
    Head(Response),
    /// A piece of the chunked body (poll again at once).
    Chunk(Vec<u8>),
    /// The chunked body is complete.
    End,
}

/// An answer in the making.
pub trait Pending {
    /// What is ready. Called when the connection was woken and while its output has room.
    fn poll(&mut self, now: Instant) -> Progress;

    /// Heap bytes the answer holds (results collected so far), for the memory budget.
    fn held_bytes(&self) -> usize {
        0
    }
}

/// A set of HTTP resources (the SQL route's Hrana endpoints).
pub trait HttpService {
    /// The resource at `path`, if this service has one.
    fn resource(&self, path: &str) -> Option<Resource>;

    /// Answer a complete request for one of its resources.
    fn call(&self, request: HttpRequest) -> Answer;

    /// Called every server tick: expire what has been idle too long.
    fn on_tick(&self, _now: Instant) {}

    /// Heap bytes held between requests (streams waiting for their next request), for the
    /// memory budget.
    fn held_bytes(&self) -> usize {
        0
    }
}
