//! One TCP connection through its life: a request head, then a plain HTTP response or the
//! upgrade to WebSocket, then the close. Everything here runs on the event loop thread and never
//! blocks. What the request gets is decided in `request.rs`; the route is driven through
//! `driver.rs`; the protocol core keeps the WebSocket timers.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use mio::{Interest, Registry, Token};

use super::Routes;
use super::config::Config;
use super::listener::Door;
use super::notify::{ConnId, NotifyQueue};
use super::transport::Transport;
use crate::dissect::trace::{Direction, Tracer};
use crate::http::Refusal;
use crate::protocol::http::HeadScan;
use crate::protocol::{CloseCode, Connection, Event, Expiry, Stamp, State};
use crate::routes::{self, Ready, Route, RouteKind};

/// What the loop lends a connection while it handles one event.
pub(crate) struct Env<'a> {
    pub registry: &'a Registry,
    pub config: &'a Config,
    pub routes: &'a Routes,
    pub notify: &'a Arc<NotifyQueue>,
    pub now: Instant,
    /// `now` as a compact stamp.
    pub stamp: Stamp,
    /// The server is over its memory budget: nothing is read, no upgrade is accepted.
    pub memory_over: bool,
    /// Bytes the budget can still spare (a compressed message may inflate to no more).
    pub memory_headroom: usize,
    /// Connections to service again without waiting for readiness.
    pub runnable: &'a mut Vec<ConnId>,
    /// Connections in their opening handshake.
    pub handshaking: &'a mut usize,
    /// The loop's counters (`metrics.rs`).
    pub metrics: &'a mut super::metrics::Metrics,
}

/// Whether the loop keeps the connection after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Keep,
    Remove,
}

/// Where the connection is in its life.
pub(super) enum Phase {
    /// Waiting for the request head: the bytes of a head that came in pieces, how far they were
    /// searched, and when the client's time is up.
    Request {
        buf: Vec<u8>,
        scan: HeadScan,
        deadline: Stamp,
        door: Door,
    },
    /// Upgraded: the protocol state machine and the route behind it.
    WebSocket(Upgraded),
    /// Plain HTTP after the first request: kept alive, requests answered in order
    /// (`http1.rs`).
    Http(Box<super::http1::HttpConn>),
    /// The last bytes are queued (an HTTP response, a Close): flush, send FIN, then read and
    /// discard until the peer's FIN, so our last bytes are not destroyed by a reset (a close
    /// with unread input sends RST), or until `deadline`.
    Closing { fin: Fin, deadline: Stamp },
}

/// Whether our FIN went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fin {
    Pending,
    Sent,
}

/// The state of an upgraded connection.
pub(super) struct Upgraded {
    pub ws: Connection,
    pub route: Box<dyn Route>,
    /// Which route it is (the memory budget sheds routes that need no token first).
    pub kind: RouteKind,
    /// Whether the peer is admitted to the route, or until when it has to be.
    pub gate: Gate,
    /// Bytes read but not yet handed on, because the route stopped wanting input in the middle
    /// of a read (its requests in flight, a token being judged): handed on when it wants more.
    /// Boxed: absent, it costs a pointer (most connections never stash).
    pub stash: Option<Box<[u8]>>,
}

/// A peer's admission to its route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gate {
    /// Full limits.
    Admitted,
    /// Small messages only, and closed (1008) at this time if still not admitted.
    Until(Stamp),
}

/// What reading stands at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadState {
    /// The socket said it had no more (or a short read proved it): wait for readiness.
    Drained,
    /// Reading stopped early (budget spent, or input paused): bytes may be waiting.
    MoreWaiting,
    /// Readiness reported that the peer hung up: read until EOF, short reads included.
    HangUp,
    /// The peer's FIN arrived.
    Eof,
}

/// Whether unsent output holds reading back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pressure {
    Flowing,
    /// Over the high-water mark, and not yet drained below the low one.
    Paused,
}

/// A connection in the table.
pub(crate) struct Conn {
    pub(super) transport: Transport,
    pub id: ConnId,
    pub(super) phase: Phase,
    /// Bytes not yet taken by the socket. Lent from the loop's spare buffer while empty.
    pub out: Vec<u8>,
    read: ReadState,
    pressure: Pressure,
    /// Whether the socket is registered for `WRITABLE` too.
    wants_writable: bool,
    last_write_progress: Stamp,
    /// What the memory budget counts against this connection.
    pub charged: u32,
    /// `--trace`: annotates every byte both ways (boxed: absent, it costs a pointer).
    tracer: Option<Box<Tracer>>,
}

/// Trace lines go to the log under their own target, so `WSBRIDGE_LOG` can select them.
fn log_trace(lines: Vec<String>) {
    for line in lines {
        log::info!(target: "wsbridge::trace", "{line}");
    }
}

/// The token of a connection's socket and of its route's own descriptors.
pub(crate) fn socket_token(key: usize) -> Token {
    Token(super::FIRST_CONN_TOKEN + key * 2)
}

pub(crate) fn source_token(key: usize) -> Token {
    Token(super::FIRST_CONN_TOKEN + key * 2 + 1)
}

impl Conn {
    pub fn new(transport: Transport, id: ConnId, now: Stamp, config: &Config, door: Door) -> Self {
        Conn {
            transport,
            id,
            phase: Phase::Request {
                buf: Vec::new(),
                scan: HeadScan::new(),
                deadline: now.after(config.handshake_timeout),
                door,
            },
            out: Vec::new(),
            read: ReadState::Drained,
            pressure: Pressure::Flowing,
            wants_writable: false,
            last_write_progress: now,
            charged: 0,
            tracer: config
                .trace
                .map(|trace| Box::new(Tracer::new(id.key, trace, routes::trace_decoder_for))),
        }
    }

    /// The listener the connection came through.
    pub(super) fn door(&self) -> Door {
        match &self.phase {
            Phase::Request { door, .. } => *door,
            Phase::Http(http) => http.door,
            _ => Door::Main,
        }
    }

    pub fn is_handshaking(&self) -> bool {
        matches!(self.phase, Phase::Request { .. })
    }

    /// Whether reading is held back: by output pressure, by the route, or by the memory budget.
    fn input_paused(&self, env: &Env<'_>) -> bool {
        match &self.phase {
            // After its own Close the server reads on, whatever the route wants, until the
            // peer's Close (RFC 6455 §7.1.1): a route that stopped reading (a failed Hrana
            // hello) must not leave the closing handshake to the close timeout.
            Phase::WebSocket(up) => {
                env.memory_over
                    || self.pressure == Pressure::Paused
                    || (up.ws.state() == State::Open && !up.route.wants_input())
            }
            Phase::Http(http) => {
                env.memory_over || self.pressure == Pressure::Paused || http.input_paused()
            }
            _ => false,
        }
    }

    /// Heap bytes the peer makes this connection hold (see `budget.rs`).
    pub fn held_bytes(&self) -> usize {
        let phase = match &self.phase {
            Phase::Request { buf, .. } => buf.capacity(),
            Phase::WebSocket(up) => {
                up.ws.buffered_capacity()
                    + up.stash.as_ref().map_or(0, |s| s.len())
                    + up.route.held_bytes()
            }
            Phase::Http(http) => http.held_bytes(),
            Phase::Closing { .. } => 0,
        };
        self.out.capacity() + self.transport.buffered_bytes() + phase
    }

    /// Whether the peer is admitted to a route that needs the token: the memory budget closes
    /// such connections last.
    pub fn holds_admitted_peer(&self) -> bool {
        matches!(&self.phase, Phase::WebSocket(up) if up.kind.needs_token() && up.gate == Gate::Admitted)
    }

    /// The server is over its memory budget and this connection is among those that go:
    /// Close 1013 and release what it holds. One that has its output stuck (it does not read)
    /// is dropped at once.
    pub fn shed(&mut self, env: &mut Env<'_>) -> Verdict {
        log::info!(
            "conn {}: closed to stay within --max-memory ({} bytes held)",
            self.id.key,
            self.held_bytes()
        );
        match &mut self.phase {
            Phase::WebSocket(up) if self.out.len() < env.config.high_water / 2 => {
                up.ws.close(
                    CloseCode::TRY_AGAIN_LATER,
                    "server memory budget exhausted",
                    &mut self.out,
                );
                self.begin_closing(env);
                self.settle(env)
            }
            _ => Verdict::Remove,
        }
    }

    /// Readiness reported that the peer closed its side or the socket failed.
    pub fn note_hang_up(&mut self) {
        if self.read != ReadState::Eof {
            self.read = ReadState::HangUp;
        }
    }

    /// The socket is readable: read until the socket is drained, the budget is spent, or
    /// backpressure applies; handle what came; write what that produced.
    ///
    /// A read that fills less than the buffer has drained the socket: with edge-triggered
    /// readiness, bytes arriving after it raise a new event, so the read that would only say
    /// `WouldBlock` is skipped (one syscall less per message on small echoes). The exception is
    /// a hang-up already reported, whose EOF must be read now because no new event will come.
    pub fn on_readable(&mut self, read_buf: &mut [u8], env: &mut Env<'_>) -> Verdict {
        self.replay_stash(env);
        if let Phase::Http(_) = self.phase {
            // Pipelined requests already read (a long pipeline is worked through a turn at a
            // time) go before more is read.
            self.pump_http(env);
        }
        let mut budget = env.config.read_budget;
        loop {
            if self.has_stash() {
                // The route stopped wanting input again: the socket waits too.
                break;
            }
            if self.input_paused(env) || budget == 0 {
                if self.read != ReadState::HangUp {
                    self.read = ReadState::MoreWaiting;
                }
                if budget == 0 {
                    env.runnable.push(self.id);
                }
                break;
            }
            match self.transport.read(read_buf) {
                Ok(0) => {
                    self.read = ReadState::Eof;
                    return self.on_eof(env);
                }
                Ok(n) => {
                    env.metrics.bytes_received += n as u64;
                    if let Phase::WebSocket(up) = &mut self.phase {
                        up.ws.on_heard(env.stamp);
                    }
                    budget = budget.saturating_sub(n);
                    let drained = n < read_buf.len()
                        && self.read != ReadState::HangUp
                        && self.transport.short_read_drains();
                    self.on_bytes(&mut read_buf[..n], env);
                    if self.out.len() > env.config.high_water {
                        self.pressure = Pressure::Paused;
                    }
                    if self.has_stash() {
                        // The route stopped wanting input in the middle of this read; the rest
                        // waits in the stash (and reading is `MoreWaiting`).
                        break;
                    }
                    if drained {
                        self.read = ReadState::Drained;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.read != ReadState::HangUp {
                        self.read = ReadState::Drained;
                    }
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

    /// One of the route's descriptors is ready, or the route was woken.
    pub fn on_route_ready(&mut self, why: Ready, env: &mut Env<'_>) -> Verdict {
        if let Phase::Http(_) = self.phase {
            self.pump_http(env);
            return self.settle(env);
        }
        self.call_route(env, |route, cx| route.on_ready(why, cx));
        self.settle(env)
    }

    fn on_bytes(&mut self, bytes: &mut [u8], env: &mut Env<'_>) {
        if let Some(tracer) = &mut self.tracer {
            // Before anything is unmasked in place.
            log_trace(tracer.bytes(Direction::In, bytes));
        }
        match self.phase {
            Phase::Request { .. } => self.on_request_bytes(bytes, env),
            Phase::WebSocket(_) => self.on_frames(bytes, env),
            Phase::Http(ref mut http) => {
                http.input.extend_from_slice(bytes);
                self.pump_http(env);
            }
            // Lingering: input is read only to reach the FIN.
            Phase::Closing { .. } => {}
        }
    }

    fn on_eof(&mut self, env: &mut Env<'_>) -> Verdict {
        match self.phase {
            Phase::Request { .. } | Phase::Http(_) => return Verdict::Remove,
            Phase::WebSocket(_) => {
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

    /// Request-head bytes: parse what has come (resuming the search where the last read left
    /// it), then answer the complete head.
    fn on_request_bytes(&mut self, bytes: &mut [u8], env: &mut Env<'_>) {
        let Phase::Request { buf, scan, .. } = &mut self.phase else {
            return;
        };
        let mut pending = std::mem::take(buf);
        let mut scan = *scan;
        let buffered = !pending.is_empty();
        if buffered {
            pending.extend_from_slice(bytes);
        }
        let data: &mut [u8] = if buffered { &mut pending } else { bytes };
        let parsed = match scan.request(data, &env.config.head_limits) {
            Ok(Some((head, used))) => Ok(Some((self.respond(&head, env), used))),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        match parsed {
            Ok(None) => {
                // Keep what came so far; the head limit bounds it.
                let keep = if buffered { pending } else { bytes.to_vec() };
                if let Phase::Request {
                    buf, scan: kept, ..
                } = &mut self.phase
                {
                    *buf = keep;
                    *kept = scan;
                }
            }
            Ok(Some((upgraded, used))) => {
                if upgraded && used < data.len() {
                    // The client did not wait for the 101: frames follow the head.
                    self.on_frames(&mut data[used..], env);
                } else if let Phase::Http(http) = &mut self.phase {
                    // Plain HTTP: a body, or pipelined requests, may follow the head.
                    http.input.extend_from_slice(&data[used..]);
                    self.pump_http(env);
                }
            }
            Err(error) => {
                log::debug!("conn {}: bad request: {error}", self.id.key);
                Refusal::from(error).write(&mut self.out);
                self.leave_request(env);
                self.linger(env);
            }
        }
    }

    /// Frames from the peer, handed to the route one message at a time. When the route stops
    /// wanting input after a message, the rest waits in the stash: limits (requests in flight,
    /// the size allowed before the token is judged) hold per message, not per read.
    pub(super) fn on_frames(&mut self, bytes: &mut [u8], env: &mut Env<'_>) {
        let Conn {
            phase,
            out,
            id,
            read,
            ..
        } = self;
        let Phase::WebSocket(up) = phase else {
            return;
        };
        let Upgraded {
            ws,
            route,
            gate,
            stash,
            ..
        } = up;
        let mut watcher = super::driver::LoopWatcher::new(env.registry, id.key as usize);
        if ws.deflate_enabled() {
            ws.set_inflate_headroom(env.memory_headroom);
        }
        let mut pos = 0;
        while pos < bytes.len() {
            let open = ws.state() == State::Open;
            match ws.handle_bytes(&mut bytes[pos..], out) {
                Ok(received) => {
                    pos += received.consumed;
                    if let Some(Event::Close(frame)) = &received.event {
                        let code =
                            super::metrics::close_code_key(frame.code.map_or(1005, |code| code.0));
                        *env.metrics.closes_received.entry(code).or_default() += 1;
                    }
                    if let Some(Event::Message(message)) = received.event
                        && open
                    {
                        // (After the server's Close, messages are read and dropped.)
                        let mut cx = super::driver::context(received.tx, out, &mut watcher, env);
                        route.on_message(message, &mut cx);
                        admit(ws, route.as_ref(), gate, env);
                        if !route.wants_input() && pos < bytes.len() {
                            *stash = Some(match stash.take() {
                                None => bytes[pos..].into(),
                                Some(earlier) => [&earlier[..], &bytes[pos..]].concat().into(),
                            });
                            if *read != ReadState::HangUp && *read != ReadState::Eof {
                                *read = ReadState::MoreWaiting;
                            }
                            break;
                        }
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

    /// Hand on what waited in the stash, if the route wants it now.
    fn replay_stash(&mut self, env: &mut Env<'_>) {
        if self.input_paused(env) {
            return;
        }
        let Phase::WebSocket(up) = &mut self.phase else {
            return;
        };
        let Some(mut stash) = up.stash.take() else {
            return;
        };
        self.on_frames(&mut stash, env);
    }

    /// Call the route (if upgraded) with a context, then react to what it did.
    pub(super) fn call_route(
        &mut self,
        env: &mut Env<'_>,
        f: impl FnOnce(&mut dyn Route, &mut routes::RouteContext<'_>),
    ) {
        let Conn { phase, out, id, .. } = self;
        if let Phase::WebSocket(up) = phase {
            super::driver::call(up, out, id.key as usize, env, f);
        }
        self.after_route(env);
    }

    /// After the protocol or the route acted: a peer just admitted gets the full limits; the
    /// server closes the TCP connection first once the closing handshake completed or failed
    /// (RFC 6455 §7.1.1), when the last frames are out. (The wait for the peer's Close is the
    /// protocol's timer.)
    fn after_route(&mut self, env: &mut Env<'_>) {
        let Phase::WebSocket(up) = &mut self.phase else {
            return;
        };
        admit(&mut up.ws, up.route.as_ref(), &mut up.gate, env);
        if up.ws.state() == State::Closed {
            self.begin_closing(env);
        }
    }

    fn has_stash(&self) -> bool {
        matches!(&self.phase, Phase::WebSocket(up) if up.stash.is_some())
    }

    /// Leave the upgraded phase: the route releases everything, then linger.
    fn begin_closing(&mut self, env: &mut Env<'_>) {
        self.finish_route(env);
        self.linger(env);
    }

    fn finish_route(&mut self, env: &mut Env<'_>) {
        self.call_route_raw(env, |route, cx| route.on_close(cx));
        self.retire_counts(env);
        if let Phase::WebSocket(_) = self.phase {
            self.phase = Phase::Closing {
                fin: Fin::Pending,
                deadline: env.stamp.after(env.config.linger_timeout),
            };
        }
    }

    /// [`Conn::call_route`] without the reaction (for the route's last call).
    fn call_route_raw(
        &mut self,
        env: &mut Env<'_>,
        f: impl FnOnce(&mut dyn Route, &mut routes::RouteContext<'_>),
    ) {
        let Conn { phase, out, id, .. } = self;
        if let Phase::WebSocket(up) = phase {
            super::driver::call(up, out, id.key as usize, env, f);
        }
    }

    pub(super) fn linger(&mut self, env: &mut Env<'_>) {
        let deadline = env.stamp.after(env.config.linger_timeout);
        match &mut self.phase {
            Phase::Closing { deadline: d, .. } => *d = deadline,
            _ => {
                self.phase = Phase::Closing {
                    fin: Fin::Pending,
                    deadline,
                }
            }
        }
    }

    /// The request head is complete (or refused): this connection no longer counts against the
    /// handshake cap.
    pub(super) fn leave_request(&mut self, env: &mut Env<'_>) {
        if self.is_handshaking() {
            *env.handshaking -= 1;
            self.linger(env);
        }
    }

    /// Write what is pending, then re-evaluate backpressure and what to wait for.
    fn settle(&mut self, env: &mut Env<'_>) -> Verdict {
        self.count_frames(env);
        // Output the route produced on its own (a PTY's) counts as pressure too: the route stops
        // producing above the high-water mark and is told here when the output drained. A route
        // that refills quickly gets a few rounds, then waits its turn in `runnable`.
        let mut rounds = 0;
        loop {
            if self.out.len() > env.config.high_water {
                self.pressure = Pressure::Paused;
            }
            if self.flush(env) == Verdict::Remove {
                return Verdict::Remove;
            }
            if !(self.pressure == Pressure::Paused && self.out.len() < env.config.low_water) {
                break;
            }
            if rounds == 4 {
                env.runnable.push(self.id);
                break;
            }
            rounds += 1;
            self.pressure = Pressure::Flowing;
            if let Phase::Http(_) = self.phase {
                self.pump_http(env);
            } else {
                self.call_route(env, |route, cx| route.on_ready(Ready::OutputDrained, cx));
            }
        }
        if let Phase::Closing { fin, .. } = &mut self.phase
            && self.out.is_empty()
            && !self.transport.wants_write()
        {
            if self.read == ReadState::Eof {
                return Verdict::Remove;
            }
            if *fin == Fin::Pending {
                // FIN after our last byte; then wait for the peer's FIN.
                let _ = self.transport.shutdown_write();
                *fin = Fin::Sent;
            }
        }
        if matches!(self.read, ReadState::MoreWaiting | ReadState::HangUp)
            && !self.input_paused(env)
        {
            env.runnable.push(self.id);
        }
        Verdict::Keep
    }

    /// Write as much pending output as the socket takes: one syscall for everything queued.
    fn flush(&mut self, env: &mut Env<'_>) -> Verdict {
        while !self.out.is_empty() {
            match self.transport.write(&self.out) {
                Ok(0) => return Verdict::Remove,
                Ok(n) => {
                    env.metrics.bytes_sent += n as u64;
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
        let held = match self.transport.flush() {
            Ok(done) => !done,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => true,
            Err(e) => {
                log::debug!("conn {}: write error: {e}", self.id.key);
                return Verdict::Remove;
            }
        };
        let want_writable = !self.out.is_empty() || held;
        if want_writable != self.wants_writable {
            let interest = if want_writable {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let token = socket_token(self.id.key as usize);
            if env
                .registry
                .reregister(self.transport.socket(), token, interest)
                .is_err()
            {
                return Verdict::Remove;
            }
            self.wants_writable = want_writable;
        }
        Verdict::Keep
    }

    /// Timers: the request deadline, lingering, write progress, and the protocol's own (ping,
    /// idle, the wait for the peer's Close).
    pub fn on_tick(&mut self, env: &mut Env<'_>) -> Verdict {
        let now = env.stamp;
        let paused = self.input_paused(env);
        match &mut self.phase {
            Phase::Request { deadline, .. } => {
                if now.reached(*deadline) {
                    log::debug!("conn {}: request head timeout", self.id.key);
                    return Verdict::Remove;
                }
                Verdict::Keep
            }
            Phase::Closing { deadline, .. } => {
                if now.reached(*deadline) {
                    return Verdict::Remove;
                }
                Verdict::Keep
            }
            Phase::Http(_) => {
                if !self.out.is_empty()
                    && now.since(self.last_write_progress) >= env.config.write_timeout
                {
                    return Verdict::Remove;
                }
                let verdict = self.http_tick(env);
                if verdict == Verdict::Remove {
                    return verdict;
                }
                self.settle(env)
            }
            Phase::WebSocket(up) => {
                if let Gate::Until(deadline) = up.gate
                    && now.reached(deadline)
                {
                    log::debug!("conn {}: no right token in time", self.id.key);
                    up.gate = Gate::Admitted;
                    up.ws.close(
                        CloseCode::POLICY_VIOLATION,
                        "no right token in time",
                        &mut self.out,
                    );
                    self.after_route(env);
                    return self.settle(env);
                }
                if !self.out.is_empty()
                    && now.since(self.last_write_progress) >= env.config.write_timeout
                {
                    log::info!(
                        "conn {}: closed, no write progress for {:?}",
                        self.id.key,
                        env.config.write_timeout
                    );
                    return Verdict::Remove;
                }
                if paused {
                    // Not reading is the server's doing, not the peer's.
                    up.ws.excuse_silence(now);
                }
                match up
                    .ws
                    .handle_timeout(now, &env.config.timeouts, &mut self.out)
                {
                    None => Verdict::Keep,
                    Some(Expiry::PingSent) => self.settle(env),
                    Some(expiry @ (Expiry::Idle | Expiry::MessageStalled)) => {
                        log::debug!("conn {}: closed: {expiry:?}", self.id.key);
                        self.begin_closing(env);
                        self.settle(env)
                    }
                    Some(Expiry::CloseWaitOver) => {
                        log::debug!("conn {}: no Close from the peer in time", self.id.key);
                        Verdict::Remove
                    }
                }
            }
        }
    }

    /// Graceful shutdown: a Close 1001 to upgraded connections, requests in progress dropped.
    pub fn on_shutdown(&mut self, env: &mut Env<'_>) -> Verdict {
        match &mut self.phase {
            Phase::Request { .. } | Phase::Http(_) => Verdict::Remove,
            Phase::WebSocket(up) => {
                up.ws
                    .close(CloseCode::GOING_AWAY, "server shutting down", &mut self.out);
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
        self.call_route_raw(env, |route, cx| route.on_close(cx));
        self.retire_counts(env);
        let _ = env.registry.deregister(self.transport.socket());
    }

    /// An upgraded connection's frame counts and its Close go into the totals when it stops
    /// being upgraded (called once: the phase changes right after, or the connection goes).
    fn retire_counts(&mut self, env: &mut Env<'_>) {
        self.count_frames(env);
        let Phase::WebSocket(up) = &self.phase else {
            return;
        };
        if let Some(code) = up.ws.sent_close_code() {
            let key = super::metrics::close_code_key(code);
            *env.metrics.closes_sent.entry(key).or_default() += 1;
        }
    }

    /// The frames the protocol read and wrote since the last time, into the totals.
    fn count_frames(&mut self, env: &mut Env<'_>) {
        if let Phase::WebSocket(up) = &mut self.phase {
            let (received, sent) = up.ws.take_frame_counts();
            env.metrics.frames_received += u64::from(received);
            env.metrics.frames_sent += u64::from(sent);
        }
    }

    /// What the metrics census counts of this connection: its state and whether over TLS.
    pub fn census(&self) -> (super::metrics::ConnState, bool) {
        use super::metrics::{ConnState, route_index};
        let tls = self.transport.is_tls();
        let state = match &self.phase {
            Phase::Request { .. } => ConnState::Handshake,
            Phase::Http(_) => ConnState::Http,
            Phase::WebSocket(up) => ConnState::WebSocket(route_index(up.kind)),
            Phase::Closing { .. } => ConnState::Closing,
        };
        (state, tls)
    }
}

/// A peer of a route that needs the token is admitted once the route says so: from now on it
/// may send messages of any allowed size.
fn admit(ws: &mut Connection, route: &dyn Route, gate: &mut Gate, env: &Env<'_>) {
    if *gate != Gate::Admitted && route.is_admitted() {
        *gate = Gate::Admitted;
        ws.set_limits(env.config.limits);
    }
}
