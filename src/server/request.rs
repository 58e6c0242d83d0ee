//! A complete request head gets its answer: a plain HTTP response, or the upgrade to a route
//! (RFC 6455 §4.2), after the policy's checks.

use super::conn::{Conn, Env, Phase, Upgraded};
use crate::http::{self, Refusal, Site};
use crate::protocol::Connection;
use crate::protocol::handshake::server::{Accept, validate_upgrade, write_accept_response};
use crate::protocol::http::RequestHead;
use crate::routes::{self, Route, RouteKind, RouteRequest};

impl Conn {
    /// Answer a complete request head. Returns whether the connection was upgraded.
    pub(super) fn respond(&mut self, head: &RequestHead<'_>, env: &mut Env<'_>) -> bool {
        self.leave_request(env);
        if !head.wants_websocket() {
            let site = Site {
                policy: &env.routes.policy,
                pages: env.routes.pages.as_ref(),
            };
            http::respond(head, &site, &mut self.out);
            self.linger(env);
            return false;
        }
        match self.upgrade(head, env) {
            Ok(()) => true,
            Err(refusal) => {
                log::debug!("conn {}: upgrade refused: {refusal}", self.id.key);
                refusal.write(&mut self.out);
                self.linger(env);
                false
            }
        }
    }

    fn upgrade(&mut self, head: &RequestHead<'_>, env: &mut Env<'_>) -> Result<(), Refusal> {
        let upgrade = validate_upgrade(head)?;
        let policy = &env.routes.policy;
        policy.check_host(upgrade.host)?;
        policy.check_origin(upgrade.origin, upgrade.host)?;
        let (kind, protocol) = routes::select(head)?;
        let peer = self.transport.peer_ip();
        let bearer_authorized = policy.bearer_matches_from(upgrade.authorization, peer);
        if kind.needs_token()
            && policy.auth_required()
            && !bearer_authorized
            && let Some(wait) = peer.and_then(|ip| policy.retry_after(ip))
        {
            // Repeated wrong tokens from this address: it waits before trying again.
            return Err(Refusal::TooManyRequests(wait.as_secs().max(1)));
        }
        let request = RouteRequest {
            head,
            protocol,
            bearer_authorized,
            peer,
            waker: env.notify.waker_for(self.id),
        };
        let route: Box<dyn Route> = match kind {
            RouteKind::Echo => Box::new(routes::echo::Echo),
            RouteKind::Sql => env
                .routes
                .sql
                .as_ref()
                .ok_or(Refusal::NotFound)?
                .create(request)?,
            RouteKind::Tty => env
                .routes
                .tty
                .as_ref()
                .ok_or(Refusal::NotFound)?
                .create(request)?,
        };
        let accept = Accept {
            protocol,
            extensions: None,
        };
        write_accept_response(upgrade.key, accept, &mut self.out);
        log::debug!(
            "conn {}: upgraded to {kind:?} ({})",
            self.id.key,
            protocol.unwrap_or("-")
        );
        let mut ws = Connection::server(env.config.limits);
        // The timers start with the request that was just heard.
        ws.on_heard(env.stamp);
        self.phase = Phase::WebSocket(Upgraded { ws, route });
        self.call_route(env, |route, cx| route.on_open(cx));
        Ok(())
    }
}
