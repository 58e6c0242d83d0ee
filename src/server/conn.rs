//! One TCP connection through its life: opening handshake, upgraded (or a plain HTTP reply),
//! closing. Everything here runs on the event loop thread and never blocks.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::Routes;
use super::config::Config;
use super::pages::write_page;
use crate::dissect::trace::{Direction, Tracer};
use crate::protocol::handshake::{
    HandshakeError, RequestHead, parse_request, write_accept_response,
};
use crate::protocol::{CloseCode, Connection, Event, State};
use crate::routes::{
    self, ConnId, Notifier, NotifyQueue, Ready, Route, RouteContext, RouteKind, RouteRequest,
};

/// What the loop lends a connection while it handles one event.
pub(crate) struct Env<'a> {
    pub registry: &'a Registry,
    pub config: &'a Config,
    pub routes: &'a Routes,
    pub notify: &'a Arc<NotifyQueue>,
    pub now: Instant,
    /// `now` as a compact stamp.
    pub stamp: Stamp,
    /// Connections to service again without waiting for readiness.
    pub runnable: &'a mut Vec<ConnId>,
    /// Connections in their opening handshake.
    pub handshaking: &'a mut usize,
}

/// Whether the loop keeps the connection after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Keep,
    Remove,
}

enum Phase {
    /// Waiting for the request head; bytes of a head that came in pieces.
    Handshake { buf: Vec<u8> },
    /// Upgraded: the protocol state machine and the route behind it.
    Open(Upgraded),
    /// The last bytes are queued (an HTTP response, a Close): flush, send FIN, then read and
    /// discard until the peer's FIN, so our last bytes are not destroyed by a reset (a close
    /// with unread input sends RST).
    Closing { write_shut: bool },
}

/// The state of an upgraded connection.
struct Upgraded {
    ws: Connection,
    route: Box<dyn Route>,
}

/// A connection in the table.
pub(crate) struct Conn {
    stream: TcpStream,
    pub id: ConnId,
    phase: Phase,
    /// Bytes not yet taken by the socket. Lent from the loop's spare buffer while empty.
    pub out: Vec<u8>,
    writable_registered: bool,
    /// Reading stopped before the socket said WouldBlock: data may be waiting.
    read_blocked: bool,
    /// Output went over the high-water mark and has not yet drained below the low one.
    output_paused: bool,
    /// The peer sent FIN.
    eof: bool,
    /// Readiness said the peer hung up (or the socket has an error): read until EOF or error
    /// instead of stopping at a short read.
    hang_up_seen: bool,
    last_heard: Stamp,
    last_write_progress: Stamp,
    last_ping: Stamp,
    /// Handshake deadline, wait for the peer's Close, or the end of lingering.
    deadline: Option<Stamp>,
    /// `--trace`: annotates every byte both ways (boxed: absent, it costs a pointer).
    tracer: Option<Box<Tracer>>,
}

/// A time as milliseconds since the server started, in 4 bytes instead of an `Instant`'s 16:
/// thousands of idle connections each keep four of them. It wraps after 49 days, so only
/// differences between recent stamps are meaningful, which is all timers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp(u32);

impl Stamp {
    /// The stamp of `now` for a server that started at `epoch`.
    pub fn new(epoch: Instant, now: Instant) -> Stamp {
        Stamp(now.duration_since(epoch).as_millis() as u32)
    }

    /// Time from `earlier` to `self`.
    fn since(self, earlier: Stamp) -> Duration {
        Duration::from_millis(self.0.wrapping_sub(earlier.0) as u64)
    }

    fn after(self, duration: Duration) -> Stamp {
        Stamp(self.0.wrapping_add(duration.as_millis() as u32))
    }

    /// Whether `deadline` has come (it was set less than 24 days before).
    fn reached(self, deadline: Stamp) -> bool {
        (self.0.wrapping_sub(deadline.0) as i32) >= 0
    }
}

/// Trace lines go to the log under their own target, so `WSBRIDGE_LOG` can select them.
fn log_trace(lines: Vec<String>) {
    for line in lines {
        log::info!(target: "wsbridge::trace", "{line}");
    }
}

/// The token of a connection's socket and of its route's own source.
pub(crate) fn socket_token(key: usize) -> Token {
    Token(super::FIRST_CONN_TOKEN + key * 2)
}

pub(crate) fn source_token(key: usize) -> Token {
    Token(super::FIRST_CONN_TOKEN + key * 2 + 1)
}

impl Conn {
    pub fn new(stream: TcpStream, id: ConnId, now: Stamp, config: &Config) -> Self {
        Conn {
            stream,
            id,
            phase: Phase::Handshake { buf: Vec::new() },
            out: Vec::new(),
            writable_registered: false,
            read_blocked: false,
            output_paused: false,
            eof: false,
            hang_up_seen: false,
            last_heard: now,
            last_write_progress: now,
            last_ping: now,
            deadline: Some(now.after(config.handshake_timeout)),
            tracer: config
                .trace
                .map(|trace| Box::new(Tracer::new(id.key, trace))),
        }
    }

    pub fn is_handshaking(&self) -> bool {
        matches!(self.phase, Phase::Handshake { .. })
    }

    /// Whether reading is held back: by output pressure or by the route.
    fn input_paused(&self) -> bool {
        match &self.phase {
            Phase::Open(up) => self.output_paused || !up.route.wants_input(),
            _ => false,
        }
    }

    /// Readiness reported that the peer closed its side or the socket failed.
    pub fn note_hang_up(&mut self) {
        self.hang_up_seen = true;
    }

    /// The socket is readable: read until the socket is drained, the budget is spent, or
    /// backpressure applies; handle what came; write what that produced.
    ///
    /// A read that fills less than the buffer has drained the socket: with edge-triggered
    /// readiness, bytes arriving after it raise a new event, so the read that would only say
    /// `WouldBlock` is skipped (one syscall less per message on small echoes). The exception is
    /// a hang-up already reported, whose EOF must be read now because no new event will come.
    pub fn on_readable(&mut self, read_buf: &mut [u8], env: &mut Env<'_>) -> Verdict {
        let mut budget = env.config.read_budget;
        loop {
            if self.input_paused() {
                self.read_blocked = true;
                break;
            }
            if budget == 0 {
                self.read_blocked = true;
                env.runnable.push(self.id);
                break;
            }
            match (&self.stream).read(read_buf) {
                Ok(0) => {
                    self.eof = true;
                    self.read_blocked = false;
                    return self.on_eof(env);
                }
                Ok(n) => {
                    self.last_heard = env.stamp;
                    budget = budget.saturating_sub(n);
                    let drained = n < read_buf.len() && !self.hang_up_seen;
                    self.on_bytes(&mut read_buf[..n], env);
                    if !self.out.is_empty() && self.out.len() > env.config.high_water {
                        self.output_paused = true;
                    }
                    if drained {
                        self.read_blocked = false;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.read_blocked = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("conn {}: read error: {e}", self.id.key);
                    return Verdict::Remove;
                }
            }
        }
        self.settle(env)
    }

    /// The socket is writable again.
    pub fn on_writable(&mut self, env: &mut Env<'_>) -> Verdict {
        self.settle(env)
    }

    /// The route's own source is ready, or a worker notified it.
    pub fn on_route_ready(&mut self, why: Ready, env: &mut Env<'_>) -> Verdict {
        self.call_route(env, |route, cx| route.on_ready(why, cx));
        self.settle(env)
    }

    fn on_bytes(&mut self, bytes: &mut [u8], env: &mut Env<'_>) {
        if let Some(tracer) = &mut self.tracer {
            // Before anything is unmasked in place.
            log_trace(tracer.bytes(Direction::In, bytes));
        }
        match self.phase {
            Phase::Handshake { .. } => self.on_handshake_bytes(bytes, env),
            Phase::Open(_) => self.on_frames(bytes, env),
            // Lingering: input is read only to reach the FIN.
            Phase::Closing { .. } => {}
        }
    }

    fn on_eof(&mut self, env: &mut Env<'_>) -> Verdict {
        match self.phase {
            Phase::Handshake { .. } => return Verdict::Remove,
            Phase::Open(_) => {
                log::debug!(
                    "conn {}: peer closed TCP without a Close frame",
                    self.id.key
                );
                self.begin_closing(env);
            }
            Phase::Closing { .. } => {}
        }
        self.settle(env)
    }

    /// RFC 6455 §4.2.1: read the request head; answer it with 101, a page, or an error.
    fn on_handshake_bytes(&mut self, bytes: &mut [u8], env: &mut Env<'_>) {
        let Phase::Handshake { buf } = &mut self.phase else {
            return;
        };
        let mut pending = std::mem::take(buf);
        let buffered = !pending.is_empty();
        if buffered {
            pending.extend_from_slice(bytes);
        }
        let data: &mut [u8] = if buffered { &mut pending } else { bytes };
        let parsed = match parse_request(data, &env.config.head_limits) {
            Ok(Some((head, used))) => Ok(Some((self.respond(&head, env), used))),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        match parsed {
            Ok(None) => {
                // Keep what came so far; the head limit bounds it.
                let keep = if buffered { pending } else { bytes.to_vec() };
                if let Phase::Handshake { buf } = &mut self.phase {
                    *buf = keep;
                }
            }
            Ok(Some((upgraded, used))) => {
                if upgraded && used < data.len() {
                    // The client did not wait for the 101: frames follow the head.
                    self.on_frames(&mut data[used..], env);
                }
            }
            Err(error) => {
                log::debug!("conn {}: bad request: {error}", self.id.key);
                error.write_response(&mut self.out);
                self.leave_handshake(env);
                self.linger(env);
            }
        }
    }

    /// Answer a complete request head. Returns whether the connection was upgraded.
    fn respond(&mut self, head: &RequestHead<'_>, env: &mut Env<'_>) -> bool {
        self.leave_handshake(env);
        if !head.wants_websocket() {
            self.serve_page(head, env);
            self.linger(env);
            return false;
        }
        match self.upgrade(head, env) {
            Ok(()) => true,
            Err(error) => {
                log::debug!("conn {}: upgrade refused: {error}", self.id.key);
                error.write_response(&mut self.out);
                self.linger(env);
                false
            }
        }
    }

    fn serve_page(&mut self, head: &RequestHead<'_>, env: &mut Env<'_>) {
        let policy = &env.routes.policy;
        let result = if head.method != "GET" {
            Err(HandshakeError::MethodNotAllowed)
        } else {
            policy
                .check_host(head.header("Host").unwrap_or(""))
                .and_then(|()| {
                    env.routes
                        .pages
                        .get(head.path())
                        .ok_or(HandshakeError::NotFound)
                })
        };
        match result {
            Ok(page) => write_page(&page, &mut self.out),
            Err(error) => error.write_response(&mut self.out),
        }
    }

    fn upgrade(&mut self, head: &RequestHead<'_>, env: &mut Env<'_>) -> Result<(), HandshakeError> {
        let upgrade = head.validate_upgrade()?;
        let policy = &env.routes.policy;
        policy.check_host(upgrade.host)?;
        policy.check_origin(upgrade.origin, upgrade.host)?;
        let (kind, protocol) = routes::select(head)?;
        let peer = self.stream.peer_addr().ok().map(|a| a.ip());
        let bearer_authorized = policy.bearer_matches_from(upgrade.authorization, peer);
        if kind != RouteKind::Echo
            && policy.auth_required()
            && !bearer_authorized
            && let Some(wait) = peer.and_then(|ip| policy.retry_after(ip))
        {
            // Repeated wrong tokens from this address: it waits before trying again.
            return Err(HandshakeError::TooManyRequests(wait.as_secs().max(1)));
        }
        let request = RouteRequest {
            head,
            protocol,
            bearer_authorized,
            peer,
            notifier: Notifier::new(env.notify.clone(), self.id),
        };
        let route: Box<dyn Route> = match kind {
            RouteKind::Echo => Box::new(routes::echo::Echo),
            RouteKind::Sql => env
                .routes
                .sql
                .as_ref()
                .ok_or(HandshakeError::NotFound)?
                .create(request)?,
            RouteKind::Tty => env
                .routes
                .tty
                .as_ref()
                .ok_or(HandshakeError::NotFound)?
                .create(request)?,
        };
        write_accept_response(upgrade.key, protocol, &mut self.out);
        log::debug!(
            "conn {}: upgraded to {kind:?} ({})",
            self.id.key,
            protocol.unwrap_or("-")
        );
        self.phase = Phase::Open(Upgraded {
            ws: Connection::server(env.config.limits),
            route,
        });
        self.deadline = None;
        self.last_ping = env.stamp;
        self.call_route(env, |route, cx| route.on_open(cx));
        Ok(())
    }

    /// Frames from the peer, handed to the route one event at a time.
    fn on_frames(&mut self, bytes: &mut [u8], env: &mut Env<'_>) {
        let Conn { phase, out, id, .. } = self;
        let Phase::Open(up) = phase else {
            return;
        };
        let Upgraded { ws, route } = up;
        let mut pos = 0;
        while pos < bytes.len() {
            match ws.handle_bytes(&mut bytes[pos..], out) {
                Ok(received) => {
                    pos += received.consumed;
                    if let Some(Event::Message(message)) = received.event {
                        let mut cx = RouteContext {
                            tx: received.tx,
                            out,
                            registry: env.registry,
                            source_token: source_token(id.key as usize),
                            now: env.now,
                            high_water: env.config.high_water,
                        };
                        route.on_message(message, &mut cx);
                    }
                }
                Err(error) => {
                    log::debug!("conn {}: failing the connection: {error}", id.key);
                    break;
                }
            }
            if ws.state() == State::Closed {
                break;
            }
        }
        self.after_route(env);
    }

    /// Call the route (if upgraded) with a context, then react to what it did.
    fn call_route(
        &mut self,
        env: &mut Env<'_>,
        f: impl FnOnce(&mut dyn Route, &mut RouteContext<'_>),
    ) {
        let Conn { phase, out, id, .. } = self;
        if let Phase::Open(up) = phase {
            let Upgraded { ws, route } = up;
            let mut cx = RouteContext {
                tx: ws.sender(),
                out,
                registry: env.registry,
                source_token: source_token(id.key as usize),
                now: env.now,
                high_water: env.config.high_water,
            };
            f(route.as_mut(), &mut cx);
        }
        self.after_route(env);
    }

    /// After the protocol or the route acted: follow the closing handshake.
    fn after_route(&mut self, env: &mut Env<'_>) {
        let Phase::Open(up) = &self.phase else {
            return;
        };
        match up.ws.state() {
            State::Open => {}
            State::CloseSent => {
                if self.deadline.is_none() {
                    self.deadline = Some(env.stamp.after(env.config.close_timeout));
                }
            }
            // The handshake completed (or failed): the server closes the TCP connection first
            // (RFC 6455 §7.1.1), once the last frames are out.
            State::Closed => self.begin_closing(env),
        }
    }

    /// Leave the upgraded phase: the route releases everything, then linger.
    fn begin_closing(&mut self, env: &mut Env<'_>) {
        if let Phase::Open(_) = self.phase {
            self.finish_route(env);
        }
        self.linger(env);
    }

    fn finish_route(&mut self, env: &mut Env<'_>) {
        let Conn { phase, out, id, .. } = self;
        if let Phase::Open(up) = phase {
            let Upgraded { ws, route } = up;
            let mut cx = RouteContext {
                tx: ws.sender(),
                out,
                registry: env.registry,
                source_token: source_token(id.key as usize),
                now: env.now,
                high_water: env.config.high_water,
            };
            route.on_close(&mut cx);
            self.phase = Phase::Closing { write_shut: false };
        }
    }

    fn linger(&mut self, env: &mut Env<'_>) {
        if !matches!(self.phase, Phase::Closing { .. }) {
            self.phase = Phase::Closing { write_shut: false };
        }
        self.deadline = Some(env.stamp.after(env.config.close_timeout));
    }

    fn leave_handshake(&mut self, env: &mut Env<'_>) {
        if self.is_handshaking() {
            *env.handshaking -= 1;
            self.phase = Phase::Closing { write_shut: false };
        }
    }

    /// Write what is pending, then re-evaluate backpressure and what to wait for.
    fn settle(&mut self, env: &mut Env<'_>) -> Verdict {
        // Output the route produced on its own (a PTY's) counts as pressure too: the route stops
        // producing above the high-water mark and is told here when the output drained. A route
        // that refills quickly gets a few rounds, then waits its turn in `runnable`.
        let mut rounds = 0;
        loop {
            if self.out.len() > env.config.high_water {
                self.output_paused = true;
            }
            if self.flush(env) == Verdict::Remove {
                return Verdict::Remove;
            }
            if !(self.output_paused && self.out.len() < env.config.low_water) {
                break;
            }
            if rounds == 4 {
                env.runnable.push(self.id);
                break;
            }
            rounds += 1;
            self.output_paused = false;
            self.call_route(env, |route, cx| route.on_ready(Ready::OutputDrained, cx));
        }
        if let Phase::Closing { write_shut } = &mut self.phase
            && self.out.is_empty()
        {
            if self.eof {
                return Verdict::Remove;
            }
            if !*write_shut {
                // FIN after our last byte; then wait for the peer's FIN.
                let _ = self.stream.shutdown(Shutdown::Write);
                *write_shut = true;
            }
        }
        if self.read_blocked && !self.input_paused() {
            env.runnable.push(self.id);
        }
        Verdict::Keep
    }

    /// Write as much pending output as the socket takes: one syscall for everything queued.
    fn flush(&mut self, env: &mut Env<'_>) -> Verdict {
        while !self.out.is_empty() {
            match (&self.stream).write(&self.out) {
                Ok(0) => return Verdict::Remove,
                Ok(n) => {
                    if let Some(tracer) = &mut self.tracer {
                        log_trace(tracer.bytes(Direction::Out, &self.out[..n]));
                    }
                    self.out.drain(..n);
                    self.last_write_progress = env.stamp;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("conn {}: write error: {e}", self.id.key);
                    return Verdict::Remove;
                }
            }
        }
        let want_writable = !self.out.is_empty();
        if want_writable != self.writable_registered {
            let interest = if want_writable {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if env
                .registry
                .reregister(
                    &mut self.stream,
                    socket_token(self.id.key as usize),
                    interest,
                )
                .is_err()
            {
                return Verdict::Remove;
            }
            self.writable_registered = want_writable;
        }
        Verdict::Keep
    }

    /// Timers: handshake and close deadlines, write progress, idle and heartbeat.
    pub fn on_tick(&mut self, env: &mut Env<'_>) -> Verdict {
        let now = env.stamp;
        let config = env.config;
        let past_deadline = self.deadline.is_some_and(|d| now.reached(d));
        match &mut self.phase {
            Phase::Handshake { .. } => {
                if past_deadline {
                    log::debug!("conn {}: handshake timeout", self.id.key);
                    return Verdict::Remove;
                }
            }
            Phase::Closing { .. } => {
                if past_deadline {
                    return Verdict::Remove;
                }
            }
            Phase::Open(up) => {
                let ws = &mut up.ws;
                if !self.out.is_empty()
                    && now.since(self.last_write_progress) >= config.write_timeout
                {
                    log::info!(
                        "conn {}: closed, no write progress for {:?}",
                        self.id.key,
                        config.write_timeout
                    );
                    return Verdict::Remove;
                }
                if ws.state() == State::CloseSent && past_deadline {
                    log::debug!("conn {}: no Close from the peer in time", self.id.key);
                    return Verdict::Remove;
                }
                if now.since(self.last_heard) >= config.idle_timeout {
                    log::debug!("conn {}: idle timeout", self.id.key);
                    ws.close(CloseCode::GOING_AWAY, "idle timeout", &mut self.out);
                    self.begin_closing(env);
                    return self.settle(env);
                }
                if now.since(self.last_heard) >= config.ping_interval
                    && now.since(self.last_ping) >= config.ping_interval
                    && ws.state() == State::Open
                {
                    ws.sender().send_ping(b"", &mut self.out);
                    self.last_ping = now;
                    return self.settle(env);
                }
            }
        }
        Verdict::Keep
    }

    /// Graceful shutdown: a Close 1001 to upgraded connections, handshakes dropped.
    pub fn on_shutdown(&mut self, env: &mut Env<'_>) -> Verdict {
        match &mut self.phase {
            Phase::Handshake { .. } => Verdict::Remove,
            Phase::Open(up) => {
                up.ws
                    .close(CloseCode::GOING_AWAY, "server shutting down", &mut self.out);
                let wait = env.config.close_timeout.min(env.config.shutdown_timeout);
                self.deadline = Some(env.stamp.after(wait));
                self.after_route(env);
                self.settle(env)
            }
            Phase::Closing { .. } => Verdict::Keep,
        }
    }

    /// The connection leaves the table: the route, if any, releases everything.
    pub fn on_remove(&mut self, env: &mut Env<'_>) {
        if self.is_handshaking() {
            *env.handshaking -= 1;
        }
        self.finish_route(env);
        let _ = env.registry.deregister(&mut self.stream);
    }
}
