//! The terminal route: a shell on a pseudo-terminal, spoken to with ttyd's `tty` subprotocol, and the
//! browser page (xterm.js) that talks to it.
//!
//! * [`sys`]: the only libc calls (PTY, fork/exec, signals, waitpid).
//! * [`proto`]: the `tty` wire messages.
//! * [`session`]: one connection's terminal, a state machine driven by the event loop.
//! * [`sessions`]: the running sessions together (`--max-sessions`, `--once`).
//! * [`terminal`]: the program behind a session (a PTY and a child), behind a trait.
//! * [`trace`]: ttyd messages in `--trace`.
//! * [`plain`]: the screen model's fast path over plain text.
//! * [`screen`]: the server's model of a terminal's screen, and its repaint.
//! * [`reaper`]: hangs up and reaps the children of closed sessions, off the loop.
//! * [`assets`]: the embedded browser page.
//!
//! This file plugs the session into the server: [`TtyFactory`] makes a [`TtyRoute`] per
//! connection, and [`TerminalPages`] serves the page for plain HTTP GETs.

pub mod assets;
pub mod plain;
pub mod proto;
pub mod reaper;
pub mod screen;
pub mod session;
pub mod sessions;
pub mod stats;
pub mod sys;
pub mod terminal;
pub mod trace;

use std::borrow::Cow;
use std::os::fd::RawFd;
use std::sync::Arc;

use self::session::{Outcome, Session, Transport};
use super::{Interest, Ready, Route, RouteContext, RouteFactory, RouteRequest};
use crate::http::{Page, PageSource, Refusal};
use crate::protocol::{CloseCode, Message};

pub use self::session::{Config, Limits};

/// Creates a terminal session per connection.
pub struct TtyFactory {
    config: Arc<Config>,
}

impl TtyFactory {
    /// `server_high_water`/`server_low_water`: the server's output marks. The session stops reading
    /// the PTY just above the server's high-water mark, so the server pauses the connection and
    /// tells the route (`Ready::OutputDrained`) when the output has drained.
    pub fn new(mut config: Config, server_high_water: usize, server_low_water: usize) -> Self {
        config.limits.high_water = server_high_water + 1;
        config.limits.low_water = server_low_water;
        TtyFactory {
            config: Arc::new(config),
        }
    }
}

impl TtyFactory {
    /// The running sessions, for `--once` and `--exit-no-conn` to watch.
    pub fn sessions(&self) -> Arc<sessions::Sessions> {
        Arc::clone(&self.config.sessions)
    }
}

impl RouteFactory for TtyFactory {
    fn write_metrics(&self, out: &mut crate::http::exposition::Exposition) {
        stats::TTY_STATS.write(out);
    }

    fn create(&self, request: RouteRequest<'_>) -> Result<Box<dyn Route>, Refusal> {
        // Checked again when the program starts (a slot is taken then): this is the early 503.
        if !self.config.sessions.has_room() {
            return Err(Refusal::Unavailable);
        }
        Ok(Box::new(TtyRoute {
            session: Session::new(self.config.clone(), request.admission, Some(request.waker)),
            registered: Vec::new(),
        }))
    }
}

/// One connection's terminal.
pub struct TtyRoute {
    session: Session,
    /// The session's fds being watched.
    registered: Vec<RawFd>,
}

/// The connection's sender, as the session sees it.
struct Tx<'c, 'a> {
    cx: &'c mut RouteContext<'a>,
}

impl Transport for Tx<'_, '_> {
    fn send_binary(&mut self, payload: &[u8]) {
        self.cx.tx.send_binary(payload, self.cx.out);
    }

    fn send_close(&mut self, code: u16, reason: &str) {
        self.cx.close(CloseCode(code), reason);
    }

    fn unsent(&self) -> usize {
        self.cx.out.len()
    }
}

impl TtyRoute {
    fn apply(&mut self, outcome: Outcome, cx: &mut RouteContext<'_>) {
        match outcome {
            Outcome::Continue => {}
            Outcome::Spawned => {
                for fd in self.session.sources() {
                    match cx.watcher.watch(fd, Interest::ReadWrite) {
                        Ok(()) => self.registered.push(fd),
                        Err(e) => {
                            log::error!("tty: cannot watch fd {fd}: {e}");
                            self.deregister(cx);
                            self.session.close();
                            cx.close(CloseCode::INTERNAL_ERROR, "cannot watch the terminal");
                            return;
                        }
                    }
                }
                // Whatever is already pending (the child may even have exited) is picked up now.
                let outcome = self.session.handle_ready(&mut Tx { cx });
                if outcome != Outcome::Continue {
                    self.apply(outcome, cx);
                }
            }
            Outcome::Closed | Outcome::AuthFailed => self.deregister(cx),
        }
    }

    fn deregister(&mut self, cx: &mut RouteContext<'_>) {
        for fd in self.registered.drain(..) {
            cx.watcher.unwatch(fd);
        }
    }
}

impl Route for TtyRoute {
    fn on_message(&mut self, message: Message<'_>, cx: &mut RouteContext<'_>) {
        let outcome = self
            .session
            .handle_message(message.as_bytes(), cx.now, &mut Tx { cx });
        self.apply(outcome, cx);
    }

    fn on_ready(&mut self, why: Ready, cx: &mut RouteContext<'_>) {
        let outcome = match why {
            Ready::OutputDrained => self.session.handle_drained(&mut Tx { cx }),
            Ready::Source { .. } | Ready::Woken => self.session.handle_ready(&mut Tx { cx }),
        };
        self.apply(outcome, cx);
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

    fn on_close(&mut self, cx: &mut RouteContext<'_>) {
        self.deregister(cx);
        self.session.close();
    }
}

/// The browser terminal for plain HTTP GETs (`/`, `/index.html`, `/assets/...`).
pub struct TerminalPages;

impl PageSource for TerminalPages {
    fn get(&self, path: &str) -> Option<Page> {
        assets::asset(path).map(|(content_type, body)| Page {
            content_type,
            body: Cow::Borrowed(body),
        })
    }
}
