//! The terminal route: a shell on a pseudo-terminal, spoken to with ttyd's `tty` subprotocol, and the
//! browser page (xterm.js) that talks to it.
//!
//! * [`sys`]: the only libc calls (PTY, fork/exec, signals, waitpid).
//! * [`proto`]: the `tty` wire messages.
//! * [`session`]: one connection's terminal, driven by the event loop.
//! * [`reaper`]: hangs up and reaps the children of closed sessions, off the loop.
//! * [`assets`]: the embedded browser page.

pub mod assets;
pub mod proto;
pub mod reaper;
pub mod session;
pub mod sys;
