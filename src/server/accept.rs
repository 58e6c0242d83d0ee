//! Accepting: connections taken from the listeners, refused at the limits, registered and
//! given their transport (plain, Unix, TLS) and their door (the main listener, or the
//! `--metrics-listen` one that answers only the scrape and the probes).

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::Interest;

use super::conn::{Conn, socket_token};
use super::listener::{Accepted, Door};
use super::tls::TlsStream;
use super::transport::Transport;
use super::{ACCEPT_BACKOFF, ConnId, Server};
use crate::protocol::Stamp;

impl Server {
    /// Accept every pending connection on the listener of `door`.
    pub(super) fn accept(&mut self, now: Instant, door: Door) {
        if self.accept_paused_until.is_some_and(|until| now < until) {
            return;
        }
        self.accept_paused_until = None;
        loop {
            let listener = match door {
                Door::Main => self.listener.as_ref(),
                Door::Metrics => self.metrics_listener.as_ref(),
            };
            let Some(listener) = listener else {
                return;
            };
            match listener.accept() {
                Ok((accepted, peer)) => {
                    let limit = if self.conns.len() >= self.config.max_connections {
                        Some("--max-connections")
                    } else if self.handshaking >= self.config.max_handshakes {
                        Some("--max-handshakes")
                    } else {
                        None
                    };
                    if let Some(limit) = limit {
                        if self.conns.len() >= self.config.max_connections {
                            self.metrics.refused_connections += 1;
                        } else {
                            self.metrics.refused_handshakes += 1;
                        }
                        // Logged at most every 10 s: a flood must not flood the log too.
                        if self
                            .refusal_logged
                            .is_none_or(|at| now - at >= Duration::from_secs(10))
                        {
                            log::warn!(
                                "refusing connections (first: {peer}): at the {limit} limit"
                            );
                            self.refusal_logged = Some(now);
                        }
                        accepted.refuse();
                        continue;
                    }
                    self.metrics.accepted += 1;
                    self.add_connection(accepted, now, door);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_resource_exhaustion(&e) => {
                    // The pending connections stay in the backlog; retry after a pause instead
                    // of spinning on a listener that stays readable.
                    if self
                        .exhaustion_logged
                        .is_none_or(|at| now - at >= Duration::from_secs(10))
                    {
                        log::warn!("accept: {e}; pausing accepts for {ACCEPT_BACKOFF:?} at a time");
                        self.exhaustion_logged = Some(now);
                    }
                    self.accept_paused_until = Some(now + ACCEPT_BACKOFF);
                    return;
                }
                Err(e) => log::debug!("accept: {e}"),
            }
        }
    }

    fn add_connection(&mut self, accepted: Accepted, now: Instant, door: Door) {
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let registered = match accepted {
            Accepted::Tcp(mut stream) => {
                if let Err(error) = stream.set_nodelay(true) {
                    log::debug!("set_nodelay: {error}");
                }
                self.poll
                    .registry()
                    .register(&mut stream, socket_token(key), Interest::READABLE)
                    .map(|()| Accepted::Tcp(stream))
            }
            Accepted::Unix(mut stream) => self
                .poll
                .registry()
                .register(&mut stream, socket_token(key), Interest::READABLE)
                .map(|()| Accepted::Unix(stream)),
        };
        let stream = match registered {
            Ok(stream) => stream,
            Err(error) => {
                log::warn!("register: {error}");
                return;
            }
        };
        let id = ConnId {
            key: key as u32,
            generation: self.next_generation,
        };
        self.next_generation = self.next_generation.wrapping_add(1);
        // The metrics door is plain HTTP: it is meant for a private interface.
        let tls = self.tls.as_ref().filter(|_| door == Door::Main);
        let transport = match (stream, tls) {
            (Accepted::Unix(stream), _) => Transport::Unix(stream),
            (Accepted::Tcp(stream), None) => Transport::Plain(stream),
            (Accepted::Tcp(stream), Some(setup)) => {
                match TlsStream::new(stream, Arc::clone(&setup.config)) {
                    Ok(tls) => Transport::Tls(Box::new(tls)),
                    Err(error) => {
                        log::warn!("TLS: {error}");
                        return;
                    }
                }
            }
        };
        entry.insert(Conn::new(
            transport,
            id,
            Stamp::at(self.epoch, now),
            &self.config,
            door,
        ));
        self.handshaking += 1;
    }
}

fn is_resource_exhaustion(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}
