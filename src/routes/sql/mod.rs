//! The SQL route: a SQLite database served over WebSocket with libSQL's Hrana protocol
//! (JSON encoding, versions 1 to 3), so that `@libsql/client` and other libSQL clients connect
//! unchanged.
//!
//! * [`proto`]: the wire format.
//! * [`session`]: [`HranaSession`], the sans-IO state of one connection.
//! * `worker`: one thread per Hrana stream, owning that stream's SQLite connection.
//! * `exec`: statements, batches, cursors on a connection.
//! * [`db`]: configuration, limits, the database file or shared in-memory database.
//!
//! This file is the glue between the server's [`Route`] trait and [`HranaSession`].

mod bind;
pub mod db;
mod decode;
mod error;
mod exec;
pub mod http;
pub mod proto;
pub mod session;
pub mod stats;
mod temp_db;
pub mod trace;
mod worker;

#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use db::{SqlConfig, SqlInitError, SqlShared, Synchronous};
pub use http::SqlHttp;
pub use proto::Version;
pub use session::{HranaSession, SessionError};
pub use temp_db::TempDb;

use super::{Ready, Route, RouteContext, RouteFactory, RouteRequest};
use crate::http::Refusal;
use crate::protocol::{CloseCode, Message};

/// Creates a [`SqlRoute`] per connection.
pub struct SqlRouteFactory {
    shared: Arc<SqlShared>,
}

impl SqlRouteFactory {
    pub fn new(shared: Arc<SqlShared>) -> SqlRouteFactory {
        SqlRouteFactory { shared }
    }
}

impl RouteFactory for SqlRouteFactory {
    fn write_metrics(&self, out: &mut crate::http::exposition::Exposition) {
        stats::SQL_STATS.write(out, self.shared.live_streams());
    }

    fn create(&self, request: RouteRequest<'_>) -> Result<Box<dyn Route>, Refusal> {
        let version =
            request
                .protocol
                .and_then(Version::from_subprotocol)
                .ok_or(Refusal::BadRequest(
                    "the SQL route needs subprotocol hrana3, hrana2 or hrana1",
                ))?;
        let session = HranaSession::new(
            Arc::clone(&self.shared),
            version,
            request.admission,
            request.waker,
        );
        Ok(Box::new(SqlRoute { session }))
    }
}

/// One Hrana connection on the event loop.
pub struct SqlRoute {
    session: HranaSession,
}

impl SqlRoute {
    /// Moves the session's responses into the connection's output, holding them back while the
    /// output is above the high-water mark (they go out on `Ready::OutputDrained`; meanwhile
    /// `wants_input` counts them, so reading stops too).
    fn flush(&mut self, cx: &mut RouteContext<'_>) {
        while cx.out.len() < cx.high_water {
            let Some(text) = self.session.poll_outgoing() else {
                break;
            };
            cx.tx.send_text(&text, cx.out);
        }
    }

    fn fail(&mut self, error: &SessionError, cx: &mut RouteContext<'_>) {
        log::debug!("SQL connection closed: {error}");
        // A hello_error must reach the client before the close frame; responses still queued
        // beyond the high-water mark are dropped (the connection is ending).
        while cx.out.len() < cx.high_water
            && let Some(text) = self.session.poll_outgoing()
        {
            cx.tx.send_text(&text, cx.out);
        }
        cx.close(CloseCode(error.close_code()), error.reason());
        self.session.close();
    }
}

impl Route for SqlRoute {
    fn on_message(&mut self, message: Message<'_>, cx: &mut RouteContext<'_>) {
        let result = match message {
            Message::Text(text) => self.session.on_text(text, cx.now),
            Message::Binary(data) => self.session.on_binary(data),
        };
        match result {
            Ok(()) => self.flush(cx),
            Err(error) => self.fail(&error, cx),
        }
    }

    fn on_ready(&mut self, why: Ready, cx: &mut RouteContext<'_>) {
        if why == Ready::Woken
            && let Err(error) = self.session.on_woken(cx.now)
        {
            return self.fail(&error, cx);
        }
        self.flush(cx);
    }

    fn wants_input(&self) -> bool {
        self.session.wants_input()
    }

    fn is_admitted(&self) -> bool {
        self.session.is_admitted()
    }

    fn held_bytes(&self) -> usize {
        self.session.held_bytes()
    }

    fn on_close(&mut self, _cx: &mut RouteContext<'_>) {
        self.session.close();
    }
}
