//! A complete request head gets its answer: a plain HTTP response, or the upgrade to a route
//! (RFC 6455 §4.2), after the policy's checks.

use std::net::IpAddr;

use super::conn::{Conn, Env, Gate, Phase, Upgraded};
use super::listener::Door;
use crate::auth::presented_token;
use crate::http::Refusal;
use crate::protocol::Connection;
use crate::protocol::deflate::{CodecConfig, ServerPolicy};
use crate::protocol::handshake::server::{Accept, validate_upgrade, write_accept_response};
use crate::protocol::http::RequestHead;
use crate::routes::{self, Route, RouteKind, RouteRequest};

impl Conn {
    /// Answer a complete request head. Returns whether the connection was upgraded.
    pub(super) fn respond(&mut self, head: &RequestHead<'_>, env: &mut Env<'_>) -> bool {
        let door = self.door();
        self.leave_request(env);
        if door == Door::Metrics {
            // The scraper's door: no pages, no routes, no base path.
            if head.wants_websocket() {
                self.refuse_upgrade(Refusal::NotFound, env);
            } else {
                self.begin_http(head, door, env);
            }
            return false;
        }
        let below_base;
        let head = match env.config.base_path.as_deref() {
            None => head,
            Some(base) => match head.strip_path_prefix(base) {
                Some(below) => {
                    below_base = below;
                    &below_base
                }
                None if head.wants_websocket() => {
                    self.refuse_upgrade(Refusal::NotFound, env);
                    return false;
                }
                None => {
                    self.answer_outside_base(head, base, env);
                    return false;
                }
            },
        };
        if !head.wants_websocket() {
            self.begin_http(head, door, env);
            return false;
        }
        match self.upgrade(head, env) {
            Ok(()) => true,
            Err(refusal) => {
                self.refuse_upgrade(refusal, env);
                false
            }
        }
    }

    /// An upgrade request refused: the status counted, the answer written, then linger.
    fn refuse_upgrade(&mut self, refusal: Refusal, env: &mut Env<'_>) {
        log::debug!("conn {}: upgrade refused: {refusal}", self.id.key);
        *env.metrics
            .upgrade_refusals
            .entry(refusal.status())
            .or_default() += 1;
        refusal.write(&mut self.out);
        self.linger(env);
    }

    fn upgrade(&mut self, head: &RequestHead<'_>, env: &mut Env<'_>) -> Result<(), Refusal> {
        let upgrade = validate_upgrade(head)?;
        if env.memory_over {
            return Err(Refusal::Unavailable);
        }
        let deflate = self.negotiate_deflate(head, env)?;
        let policy = &env.routes.policy;
        policy.check_host(upgrade.host)?;
        policy.check_origin(upgrade.origin, upgrade.host)?;
        let (kind, protocol) = routes::select(head)?;
        let route: Box<dyn Route> = match kind {
            RouteKind::Echo => Box::new(routes::echo::Echo),
            RouteKind::Sql | RouteKind::Tty => {
                let factory = match kind {
                    RouteKind::Sql => env.routes.sql.as_ref(),
                    _ => env.routes.tty.as_ref(),
                }
                .ok_or(Refusal::NotFound)?;
                let waker = env.notify.waker_for(self.id);
                // At most MAX_WAITING connections per address wait for a token check.
                let mut admission = policy
                    .admission(self.client_ip(head, env), waker.clone(), env.now)
                    .map_err(|_| Refusal::TooManyRequests(1))?;
                if let Some(token) = presented_token(upgrade.authorization) {
                    admission.present(&token, env.now);
                }
                factory.create(RouteRequest {
                    head,
                    protocol,
                    admission,
                    waker,
                })?
            }
        };
        let accept = Accept {
            protocol,
            extensions: deflate.as_ref().map(|(_, response)| response.as_str()),
        };
        write_accept_response(upgrade.key, accept, &mut self.out);
        env.metrics.upgrades[super::metrics::route_index(kind)] += 1;
        log::debug!(
            "conn {}: upgraded to {kind:?} ({})",
            self.id.key,
            protocol.unwrap_or("-")
        );
        // Until it is admitted, a peer of a route that needs the token may send only small
        // messages, and has until the handshake deadline to present a right token.
        let gate = if route.is_admitted() {
            Gate::Admitted
        } else {
            Gate::Until(env.stamp.after(env.config.handshake_timeout))
        };
        let limits = match gate {
            Gate::Admitted => env.config.limits,
            Gate::Until(_) => env.config.pre_auth_limits,
        };
        let mut ws = Connection::server(limits);
        match &deflate {
            Some((config, _)) if env.config.deflate.compress => ws.enable_deflate(config),
            Some((config, _)) => ws.enable_inflate_only(config),
            None => {}
        }
        // The timers start with the request that was just heard.
        ws.on_heard(env.stamp);
        self.phase = Phase::WebSocket(Upgraded {
            ws,
            route,
            kind,
            gate,
            stash: None,
        });
        self.call_route(env, |route, cx| route.on_open(cx));
        Ok(())
    }

    /// The client's address: the peer's, or, when the peer is a `--trusted-proxy`, the last
    /// address in `X-Forwarded-For` (the one that proxy added; earlier ones are the client's
    /// word). What the token throttle counts and the log names.
    pub(super) fn client_ip(&self, head: &RequestHead<'_>, env: &Env<'_>) -> Option<IpAddr> {
        let peer = self.transport.peer_ip();
        if !peer.is_some_and(|ip| env.config.trusted_proxies.contains(&ip)) {
            return peer;
        }
        head.header_values("X-Forwarded-For")
            .last()
            .and_then(|value| value.rsplit(',').next())
            .and_then(|last| last.trim().parse().ok())
            .or(peer)
    }

    /// RFC 7692 §5, §7.1: accept the first permessage-deflate offer the server can honour, or
    /// none. A field that breaks RFC 6455 §9.1's grammar is a 400; an offer with parameters that
    /// cannot be accepted is only declined. When memory is short (past half the budget), neither
    /// side keeps compression context between messages, and the server frees both engines after
    /// each message.
    fn negotiate_deflate(
        &self,
        head: &RequestHead<'_>,
        env: &Env<'_>,
    ) -> Result<Option<(CodecConfig, String)>, Refusal> {
        let settings = env.config.deflate;
        let short_of_memory = env.memory_headroom < env.config.max_memory / 2;
        let policy = ServerPolicy {
            enabled: settings.enabled,
            max_window_bits: settings.window_bits,
            no_context_takeover: short_of_memory,
            // RFC 7692 §7.1.1.2: the server may ask it even when not offered; then the inflater
            // too is freed after each message.
            request_client_no_context_takeover: short_of_memory,
        };
        let accepted = policy
            .negotiate(head.header_values("Sec-WebSocket-Extensions"))
            .map_err(|error| Refusal::BadRequest(error.reason))?;
        Ok(accepted.map(|accepted| {
            let mut config = CodecConfig::new(&accepted.params, crate::protocol::Role::Server);
            config.mem_level = settings.mem_level;
            config.low_memory = short_of_memory;
            config.compress_all = settings.compress_all;
            (config, accepted.response)
        }))
    }
}
