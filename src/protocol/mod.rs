//! RFC 6455, sans-IO: no sockets, no event loop, no threads. Bytes in, events out; messages in,
//! bytes out. Every part is testable and fuzzable on its own.
//!
//! | module | RFC 6455 |
//! |---|---|
//! | [`http`] | (RFC 9112) HTTP/1.1 request and response heads, incrementally |
//! | [`handshake`] | §4 opening handshake: [`handshake::server`] §4.2, [`handshake::client`] §4.1 |
//! | [`frame`] | §5.2 base framing |
//! | [`mask`] | §5.3 client-to-server masking |
//! | [`message`] | §5.4 fragmentation, §5.6 data frames |
//! | [`utf8`] | §5.6, §8.1 UTF-8 across fragments |
//! | [`close`] | §5.5.1, §7.4 Close frames and status codes |
//! | [`connection`] | §5, §7 the state machine tying them together |
//! | `receiver` | §5.2-§5.6 reading frames, reassembling, inflating (RFC 7692 §7.2.2) |
//! | [`sender`] | §5.2, §5.3 writing frames, masked on the client side |
//! | [`timers`] | §5.5.2 keep-alive Pings, idle close, §7.1.1 the wait for the peer's Close |
//! | [`deflate`] | RFC 7692 permessage-deflate: §5, §7.1 negotiation, §6, §7.2 compressed messages |
//! | [`error`] | §7.1.7 failing the connection, and the close code of each failure |
// No `unsafe` here, with one exception: the calls into masking's AVX2 and AVX-512 copies of
// the same safe loop (`mask.rs`), allowed on those blocks and justified there.
#![deny(unsafe_code)]

pub mod close;
pub mod connection;
pub mod deflate;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod http;
pub mod http_body;
pub mod mask;
pub mod message;
mod receiver;
pub mod sender;
pub mod timers;
pub mod utf8;

#[cfg(test)]
mod connection_tests;
#[cfg(test)]
mod deflate_connection_tests;
#[cfg(test)]
mod timer_tests;

pub use close::{CloseCode, CloseFrame};
pub use connection::{Connection, Event, Limits, Received, Sender, State};
pub use error::ProtocolError;
pub use frame::{FrameHeader, OpCode};
pub use message::Message;
pub use timers::{Expiry, Stamp, Timeouts};

/// Which end of the connection this is: the rules on masking differ (§5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Receives masked frames, sends unmasked ones.
    Server,
    /// Receives unmasked frames, sends masked ones.
    Client,
}
