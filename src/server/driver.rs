//! The route driver: builds the context a route is called with, and watches the route's own
//! descriptors on the loop's registry, so that routes never see the reactor.

use std::io;
use std::os::fd::RawFd;

use mio::unix::SourceFd;
use mio::{Registry, Token};

use super::conn::{Env, Upgraded, source_token};
use crate::protocol::Sender;
use crate::routes::{Interest, Route, RouteContext, Watcher};

/// Watches a route's descriptors under its connection's source token.
pub(super) struct LoopWatcher<'r> {
    registry: &'r Registry,
    token: Token,
}

impl<'r> LoopWatcher<'r> {
    pub fn new(registry: &'r Registry, key: usize) -> Self {
        LoopWatcher {
            registry,
            token: source_token(key),
        }
    }
}

impl Watcher for LoopWatcher<'_> {
    fn watch(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        let interest = match interest {
            Interest::Read => mio::Interest::READABLE,
            Interest::ReadWrite => mio::Interest::READABLE | mio::Interest::WRITABLE,
        };
        self.registry
            .register(&mut SourceFd(&fd), self.token, interest)
    }

    fn unwatch(&mut self, fd: RawFd) {
        if let Err(e) = self.registry.deregister(&mut SourceFd(&fd)) {
            log::warn!("cannot stop watching fd {fd}: {e}");
        }
    }
}

/// The context for one call into a route.
pub(super) fn context<'a>(
    tx: &'a mut Sender,
    out: &'a mut Vec<u8>,
    watcher: &'a mut LoopWatcher<'_>,
    env: &Env<'_>,
) -> RouteContext<'a> {
    RouteContext {
        tx,
        out,
        now: env.now,
        high_water: env.config.high_water,
        watcher,
    }
}

/// Call the route of an upgraded connection.
pub(super) fn call(
    up: &mut Upgraded,
    out: &mut Vec<u8>,
    key: usize,
    env: &Env<'_>,
    f: impl FnOnce(&mut dyn Route, &mut RouteContext<'_>),
) {
    let Upgraded { ws, route, .. } = up;
    let mut watcher = LoopWatcher::new(env.registry, key);
    let mut cx = context(ws.sender(), out, &mut watcher, env);
    f(route.as_mut(), &mut cx);
}
