//! wsbridge: a WebSocket server whose RFC 6455 implementation is written by hand.
//!
//! * [`protocol`]: the sans-IO core (bytes in, events out; messages in, bytes out).
//! * [`server`]: the single-threaded mio event loop.
//! * [`routes`]: what a connection talks to once upgraded (echo, SQL, terminal).
#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

pub mod bench;
pub mod cli;
pub mod client;
pub mod dissect;
pub mod protocol;
pub mod routes;
pub mod server;
