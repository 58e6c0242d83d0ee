//! The SQL route: a SQLite database served over WebSocket with libSQL's Hrana protocol
//! (JSON encoding, versions 1 to 3), so that `@libsql/client` and other libSQL clients connect
//! unchanged.
//!
//! * [`proto`]: the wire format.
//! * [`session`]: [`HranaSession`], the sans-IO state of one connection.
//! * `worker`: one thread per Hrana stream, owning that stream's SQLite connection.
//! * `exec`: statements, batches, cursors on a connection.
//! * [`db`]: configuration, limits, the database file or shared in-memory database.

pub mod db;
mod error;
mod exec;
pub mod proto;
pub mod session;
mod worker;

#[cfg(test)]
mod tests;

pub use db::{SqlConfig, SqlInitError, SqlShared, Synchronous};
pub use proto::Version;
pub use session::{HranaSession, SessionError};
pub use worker::Notifier;
