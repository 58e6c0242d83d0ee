//! wsbridge: a WebSocket server whose RFC 6455 implementation is written by hand.
//!
//! Layers, each importing only those above it in this list (ARCHITECTURE.md; a test holds it):
//!
//! * [`protocol`]: the sans-IO core (bytes in, events out; messages in, bytes out).
//! * [`sys`], [`wake`], [`auth`], [`http`], [`dissect`]: libc wrappers, waking the loop from
//!   other threads, who may connect, plain HTTP, and the annotated views of the protocol.
//! * [`routes`]: what a connection talks to once upgraded (echo, SQL, terminal).
//! * [`server`]: the single-threaded mio event loop.
//! * [`client`], [`bench`], [`cli`]: the client side, the load generator, the command line.
#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

pub mod auth;
pub mod bench;
pub mod cli;
pub mod client;
pub mod dissect;
pub mod http;
pub mod protocol;
pub mod routes;
pub mod server;
pub mod sys;
pub mod wake;
