//! The checks behind wsbridge's fuzz targets, in a library so that `cargo test` (plain stable, no
//! libFuzzer) runs every target over every committed seed, and so that the oracle is shared.
//!
//! * [`targets`]: one function per raw-bytes target (protocol parsers, the connection, the Hrana
//!   and ttyd decoders); each asserts invariants, not only "no panic".
//! * [`oracle`]: an independent reading of RFC 6455 for the server-side connection: parses whole
//!   frames, unmasks with the reference loop, reassembles, validates with `std`.
//! * [`drive`]: feeds a real [`wsbridge::protocol::Connection`] in chunks and checks each call.
//! * [`wire`]: a client-frame encoder and a server-frame parser, written apart from the crate's.
//! * [`script`]: the structured (`arbitrary`) target that builds valid client streams.
//! * [`hrana_session`], [`tty_session`]: the structured targets that drive the SQL and terminal
//!   routes' session machines whole (a real SQLite file and worker threads; a fake terminal).
//! * [`http_body`]: HTTP request bodies and Hrana-over-HTTP bodies.
//! * [`gate`]: a fresh peer and virtual clock per run for the token gate the sessions share.
//! * [`alloc`]: a global allocator that records the largest allocation inside a watched section.
//! * [`seeds`]: the named seed corpus, generated and checked by a test.

pub mod alloc;
pub mod deflate;
pub mod drive;
pub mod gate;
pub mod hrana_session;
pub mod http_body;
pub mod oracle;
pub mod script;
pub mod seeds;
pub mod targets;
pub mod tty_session;
pub mod wire;

#[global_allocator]
static ALLOC: alloc::Watching = alloc::Watching;
