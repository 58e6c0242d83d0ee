//! The server: one thread, one `mio::Poll`, every connection on it.
//!
//! The loop never blocks but in `poll`. Sockets are read until they would block (or a
//! per-connection budget is spent, so one busy peer cannot starve the rest), everything the
//! reads produce is written with one `write` per connection, and whatever the socket does not
//! take waits for `WRITABLE`. A connection whose unsent output passes the high-water mark is not
//! read until it drains (pause, not close). Blocking work lives on other threads that wake the
//! loop through the one `mio::Waker`.

mod accept;
mod budget;
pub mod config;
mod conn;
mod driver;
mod http1;
mod http_routing;
pub mod listener;
mod metrics;
pub mod notify;
mod request;
mod sys;
pub mod tls;
mod transport;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use self::budget::{MemoryBudget, Transition};
pub use self::config::Config;
use self::conn::{Conn, Env, Verdict};
use self::listener::{Door, Listener, LocalAddr};
use self::metrics::{Census, Metrics};
pub use self::notify::{ConnId, NotifyQueue};
use self::sys::SignalPipe;
use self::tls::{TlsSetup, TlsSource};
use crate::auth::Policy;
use crate::http::PageSource;
use crate::http::exposition;
use crate::http::message::Response;
use crate::http::pages::BuiltinPages;
use crate::protocol::Stamp;
use crate::routes::http::HttpService;
use crate::routes::{Ready, RouteFactory};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const SIGNALS: Token = Token(2);
/// `--metrics-listen`: the listener that answers only `/metrics`, `/health` and `/version`.
const METRICS_LISTENER: Token = Token(3);
/// Connection `k` has its socket at `FIRST_CONN_TOKEN + 2k` and its route's source at `+ 1`.
pub(crate) const FIRST_CONN_TOKEN: usize = 8;

/// How long accepting pauses when the process is out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// The size of the read buffer all connections share.
const READ_BUF_SIZE: usize = 256 * 1024;
/// The spare output buffer is shrunk back when a big message left it larger than this.
const SPARE_OUT_MAX: usize = 1 << 20;

/// What the server routes connections to, and who it lets in.
pub struct Routes {
    /// The token and the Host/Origin rules.
    pub policy: Arc<Policy>,
    /// The SQL route, if the server has one.
    pub sql: Option<Box<dyn RouteFactory>>,
    /// The terminal route, if the server has one.
    pub tty: Option<Box<dyn RouteFactory>>,
    /// Pages for plain HTTP GETs.
    pub pages: Box<dyn PageSource>,
    /// HTTP resources of the routes (Hrana over HTTP).
    pub services: Vec<Box<dyn HttpService>>,
}

impl Routes {
    /// Echo only, with the given policy and the built-in page.
    pub fn echo_only(policy: Arc<Policy>) -> Self {
        Routes {
            policy,
            sql: None,
            tty: None,
            pages: Box::new(BuiltinPages),
            services: Vec::new(),
        }
    }
}

/// How [`Server::run`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Every connection closed, or the shutdown timeout passed.
    Graceful,
    /// A second stop request: connections were dropped; the caller exits without waiting.
    Forced,
}

/// Asks a running server to shut down gracefully, from any thread.
#[derive(Clone)]
pub struct ShutdownHandle {
    requested: Arc<AtomicBool>,
    notify: Arc<NotifyQueue>,
}

impl ShutdownHandle {
    /// Start a graceful shutdown.
    pub fn shutdown(&self) {
        self.requested.store(true, Ordering::SeqCst);
        self.notify.wake();
    }
}

/// The server.
pub struct Server {
    poll: Poll,
    listener: Option<Listener>,
    local_addr: LocalAddr,
    /// `--metrics-listen`: scrapes without the token, on an address of the operator's choice.
    metrics_listener: Option<Listener>,
    conns: Slab<Conn>,
    next_generation: u32,
    config: Config,
    routes: Routes,
    notify: Arc<NotifyQueue>,
    read_buf: Vec<u8>,
    spare_out: Vec<u8>,
    runnable: Vec<ConnId>,
    handshaking: usize,
    signals: Option<SignalPipe>,
    accept_paused_until: Option<Instant>,
    /// When running out of descriptors was last logged (at most every 10 s).
    exhaustion_logged: Option<Instant>,
    /// When refusing a connection at a limit was last logged (at most every 10 s).
    refusal_logged: Option<Instant>,
    shutdown_deadline: Option<Instant>,
    shutdown_requested: Arc<AtomicBool>,
    /// Every byte peers make the server hold, against `--max-memory`.
    budget: MemoryBudget,
    /// What the budget counts for the HTTP services (streams between requests).
    services_charged: u32,
    /// Since when the budget has been over its limit, if it is.
    over_since: Option<Instant>,
    /// The origin of connections' compact time stamps.
    epoch: Instant,
    /// The TLS configuration new connections get (replaced on SIGHUP; connections keep theirs).
    tls: Option<TlsSetup>,
    /// What `GET /metrics` reports.
    metrics: Metrics,
}

impl Server {
    /// Bind the listener. Raises the open-file limit as far as the hard limit allows.
    pub fn bind(config: Config, routes: Routes) -> io::Result<Server> {
        match crate::sys::raise_nofile_limit() {
            Ok(original) => log::debug!("open file limit raised from {}", original.rlim_cur),
            Err(error) => log::warn!("cannot raise the open file limit: {error}"),
        }
        let tls = match &config.tls {
            Some(source) => Some(tls::load(source).map_err(io::Error::other)?),
            None => None,
        };
        let poll = Poll::new()?;
        let mut listener = Listener::bind(&config.listen)?;
        let local_addr = listener.local_addr()?;
        if tls.is_some() && !matches!(listener, Listener::Tcp(_)) {
            return Err(io::Error::other("TLS is served on TCP listeners only"));
        }
        poll.registry()
            .register(listener.source(), LISTENER, Interest::READABLE)?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => {
                let mut listener = Listener::bind(&addr.into())?;
                poll.registry().register(
                    listener.source(),
                    METRICS_LISTENER,
                    Interest::READABLE,
                )?;
                Some(listener)
            }
            None => None,
        };
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        Ok(Server {
            poll,
            listener: Some(listener),
            local_addr,
            metrics_listener,
            // Reserved address space, not memory: pages are touched as slots are used, so the
            // table never doubles (and copies) on the way to thousands of connections.
            conns: Slab::with_capacity(config.max_connections.min(1 << 20)),
            next_generation: 0,
            budget: MemoryBudget::new(config.max_memory),
            services_charged: 0,
            over_since: None,
            config,
            routes,
            notify: NotifyQueue::new(waker),
            read_buf: vec![0; READ_BUF_SIZE],
            spare_out: Vec::new(),
            runnable: Vec::new(),
            handshaking: 0,
            signals: None,
            accept_paused_until: None,
            exhaustion_logged: None,
            refusal_logged: None,
            shutdown_deadline: None,
            shutdown_requested: Arc::new(AtomicBool::new(false)),
            epoch: Instant::now(),
            tls,
            metrics: Metrics::default(),
        })
    }

    /// The address the server listens on (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        match &self.local_addr {
            LocalAddr::Tcp(addr) => *addr,
            LocalAddr::Unix(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        }
    }

    /// Where the server listens: a TCP address or a Unix socket's path.
    pub fn listening_on(&self) -> &LocalAddr {
        &self.local_addr
    }

    /// Where `--metrics-listen` listens (the real port when bound to port 0).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        match self.metrics_listener.as_ref()?.local_addr().ok()? {
            LocalAddr::Tcp(addr) => Some(addr),
            LocalAddr::Unix(_) => None,
        }
    }

    /// The SHA-256 fingerprint of the TLS certificate, when serving TLS.
    pub fn tls_fingerprint(&self) -> Option<&str> {
        self.tls.as_ref().map(|setup| setup.fingerprint.as_str())
    }

    /// The queue through which other threads wake the loop.
    pub fn notify_queue(&self) -> Arc<NotifyQueue> {
        self.notify.clone()
    }

    /// A handle that shuts the server down from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            requested: self.shutdown_requested.clone(),
            notify: self.notify.clone(),
        }
    }

    /// SIGTERM and SIGINT start a graceful shutdown; a second one exits at once. With TLS from
    /// files, SIGHUP reloads the certificate and key.
    pub fn handle_signals(&mut self) -> io::Result<()> {
        let reloads = matches!(self.config.tls, Some(TlsSource::Files { .. }));
        let signals: &[libc::c_int] = if reloads {
            &[libc::SIGTERM, libc::SIGINT, libc::SIGHUP]
        } else {
            &[libc::SIGTERM, libc::SIGINT]
        };
        let pipe = SignalPipe::install(signals)?;
        self.poll.registry().register(
            &mut SourceFd(&pipe.raw_fd()),
            SIGNALS,
            Interest::READABLE,
        )?;
        self.signals = Some(pipe);
        Ok(())
    }

    /// Run until shut down; says how the run ended.
    pub fn run(&mut self) -> io::Result<Stop> {
        let mut events = Events::with_capacity(1024);
        let tick = self.config.tick();
        let mut next_tick = Instant::now() + tick;
        let mut ready = Vec::new();
        loop {
            let check_due = self.routes.policy.next_check_due();
            let timeout = if self.runnable.is_empty() {
                let wake_at = check_due.map_or(next_tick, |due| due.min(next_tick));
                wake_at.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            if let Err(error) = self.poll.poll(&mut events, Some(timeout)) {
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(error);
            }
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(now, Door::Main),
                    METRICS_LISTENER => self.accept(now, Door::Metrics),
                    WAKER => {
                        self.notify.drain(&mut ready);
                        for id in ready.drain(..) {
                            self.with_conn(id, now, |conn, _, env| {
                                conn.on_route_ready(Ready::Woken, env)
                            });
                        }
                        if self.shutdown_requested.swap(false, Ordering::SeqCst)
                            && let Some(stop) = self.on_stop_request(now)
                        {
                            return Ok(stop);
                        }
                    }
                    SIGNALS => {
                        let signals = self
                            .signals
                            .as_ref()
                            .map(SignalPipe::drain)
                            .unwrap_or_default();
                        for signal in signals {
                            if signal == libc::SIGHUP {
                                self.reload_tls();
                                continue;
                            }
                            log::info!("signal {signal}: shutting down");
                            if let Some(stop) = self.on_stop_request(now) {
                                return Ok(stop);
                            }
                        }
                    }
                    Token(t) => {
                        let key = (t - FIRST_CONN_TOKEN) / 2;
                        let Some(id) = self.conns.get(key).map(|c| c.id) else {
                            continue;
                        };
                        if (t - FIRST_CONN_TOKEN) % 2 == 1 {
                            let why = Ready::Source {
                                readable: event.is_readable()
                                    || event.is_read_closed()
                                    || event.is_error(),
                                writable: event.is_writable(),
                            };
                            self.with_conn(id, now, |conn, _, env| conn.on_route_ready(why, env));
                            continue;
                        }
                        if event.is_writable() {
                            self.with_conn(id, now, |conn, _, env| conn.on_writable(env));
                        }
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            let hung_up = event.is_read_closed() || event.is_error();
                            self.with_conn(id, now, |conn, buf, env| {
                                if hung_up {
                                    conn.note_hang_up();
                                }
                                conn.on_readable(buf, env)
                            });
                        }
                    }
                }
            }
            let mut runnable = std::mem::take(&mut self.runnable);
            runnable.dedup();
            for id in runnable.drain(..) {
                self.with_conn(id, now, |conn, buf, env| conn.on_readable(buf, env));
            }
            if self.runnable.is_empty() {
                self.runnable = runnable;
            }
            self.keep_within_budget(now);
            if !self.metrics.scrapes.is_empty() {
                self.answer_scrapes(now);
            }
            if check_due.is_some_and(|due| now >= due) {
                // Tokens whose turn has come are judged; their connections are woken.
                self.routes.policy.run_checks(now);
            }
            if now >= next_tick {
                self.on_tick(now);
                next_tick = now + tick;
            }
            if let Some(deadline) = self.shutdown_deadline
                && (self.conns.is_empty() || now >= deadline)
            {
                self.close_all(now);
                return Ok(Stop::Graceful);
            }
        }
    }

    /// The census, the page, and a wake-up for each connection that asked for it.
    fn answer_scrapes(&mut self, now: Instant) {
        let mut census = Census {
            memory_used: self.budget.used(),
            memory_limit: self.config.max_memory,
            memory_over: self.budget.is_over(),
            ..Census::default()
        };
        for (_, conn) in self.conns.iter() {
            *census.conns.entry(conn.census()).or_default() += 1;
        }
        let routes: Vec<&dyn RouteFactory> = [&self.routes.sql, &self.routes.tty]
            .into_iter()
            .flatten()
            .map(|route| route.as_ref())
            .collect();
        let page = self.metrics.render(&census, &routes);
        for (id, slot) in std::mem::take(&mut self.metrics.scrapes) {
            let response = Response::new(200, exposition::CONTENT_TYPE, page.clone().into_bytes());
            if let Ok(mut slot) = slot.lock() {
                *slot = Some(response);
            }
            self.with_conn(id, now, |conn, _, env| {
                conn.on_route_ready(Ready::Woken, env)
            });
        }
    }

    /// SIGHUP: read the certificate and key again. New connections get the new ones; open
    /// connections keep what they negotiated. A bad file keeps the old configuration.
    fn reload_tls(&mut self) {
        let Some(source) = &self.config.tls else {
            return;
        };
        match tls::load(source) {
            Ok(setup) => {
                log::info!(
                    "SIGHUP: TLS certificate reloaded, SHA-256 {}",
                    setup.fingerprint
                );
                self.tls = Some(setup);
            }
            Err(error) => log::error!("SIGHUP: TLS reload failed, keeping the old one: {error}"),
        }
    }

    /// Run `f` on the connection `id` (if it still exists) with the loop's shared state, and
    /// remove it if `f` says so.
    fn with_conn(
        &mut self,
        id: ConnId,
        now: Instant,
        f: impl FnOnce(&mut Conn, &mut [u8], &mut Env<'_>) -> Verdict,
    ) {
        let Server {
            poll,
            conns,
            config,
            routes,
            notify,
            read_buf,
            spare_out,
            runnable,
            handshaking,
            epoch,
            budget,
            metrics,
            ..
        } = self;
        let Some(conn) = conns.get_mut(id.key as usize).filter(|c| c.id == id) else {
            return;
        };
        // An idle connection owns no output buffer: it borrows the spare one while it works and
        // gives it back if everything was written.
        if conn.out.capacity() == 0 {
            std::mem::swap(&mut conn.out, spare_out);
        }
        let mut env = Env {
            registry: poll.registry(),
            config,
            routes,
            notify,
            now,
            stamp: Stamp::at(*epoch, now),
            memory_over: budget.is_over(),
            memory_headroom: budget.headroom(),
            runnable,
            handshaking,
            metrics,
        };
        let verdict = f(conn, read_buf, &mut env);
        if verdict == Verdict::Remove {
            conn.on_remove(&mut env);
        }
        if conn.out.is_empty() {
            if conn.out.capacity() > spare_out.capacity() {
                std::mem::swap(&mut conn.out, spare_out);
            }
            conn.out = Vec::new();
            if spare_out.capacity() > SPARE_OUT_MAX {
                *spare_out = Vec::new();
            }
        }
        let held = if verdict == Verdict::Remove {
            0
        } else {
            conn.held_bytes()
        };
        conn.charged = budget.recharge(conn.charged, held);
        if verdict == Verdict::Remove {
            conns.remove(id.key as usize);
        }
    }

    /// React when the memory budget crossed a mark: shed load above the limit, resume reading
    /// below the low mark.
    fn keep_within_budget(&mut self, now: Instant) {
        match self.budget.transition() {
            Transition::None if !self.budget.is_over() => return,
            Transition::Recovered => {
                log::info!(
                    "memory back under the budget ({} bytes held): reading resumes",
                    self.budget.used()
                );
                // Connections that stopped reading while over are given their turn again.
                self.runnable.extend(self.ids());
                self.over_since = None;
                return;
            }
            Transition::WentOver => {
                self.over_since = Some(now);
                log::warn!(
                    "over --max-memory ({} bytes held): not reading, refusing upgrades, shedding",
                    self.budget.used()
                );
            }
            Transition::None => {}
        }
        if !self.budget.needs_shedding() {
            return;
        }
        // Admitted peers within their share are held back, not closed; but when back-pressure
        // has not brought use down within the stall timeout (they hold partial messages they
        // cannot finish while nothing is read), the largest go too: otherwise nobody could move.
        let stuck = self
            .over_since
            .is_some_and(|since| now.duration_since(since) >= self.config.timeouts.message_stall);
        let share = if stuck {
            0
        } else {
            self.budget
                .share(self.config.limits.max_message_size as usize + self.config.high_water)
        };
        // Not admitted first, then the largest.
        let mut candidates: Vec<(bool, std::cmp::Reverse<u32>, ConnId)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.charged > 0)
            .map(|(_, c)| (c.holds_admitted_peer(), std::cmp::Reverse(c.charged), c.id))
            .collect();
        candidates.sort_unstable();
        for (admitted, std::cmp::Reverse(held), id) in candidates {
            if !self.budget.needs_shedding() || (admitted && held as usize <= share) {
                break;
            }
            self.metrics.shed += 1;
            self.with_conn(id, now, |conn, _, env| conn.shed(env));
        }
    }

    fn ids(&self) -> Vec<ConnId> {
        self.conns.iter().map(|(_, c)| c.id).collect()
    }

    fn on_tick(&mut self, now: Instant) {
        if self.accept_paused_until.is_some_and(|until| now >= until) {
            self.accept(now, Door::Main);
            self.accept(now, Door::Metrics);
        }
        for id in self.ids() {
            self.with_conn(id, now, |conn, _, env| conn.on_tick(env));
        }
        let mut held = 0;
        for service in &self.routes.services {
            service.on_tick(now);
            held += service.held_bytes();
        }
        self.services_charged = self.budget.recharge(self.services_charged, held);
    }

    /// A shutdown request: the first starts a graceful shutdown, a second one ends at once.
    /// Returns how `run` ends now, if it does.
    fn on_stop_request(&mut self, now: Instant) -> Option<Stop> {
        if self.shutdown_deadline.is_some() {
            log::warn!("second stop request: exiting now");
            self.close_all(now);
            return Some(Stop::Forced);
        }
        self.shutdown_deadline = Some(now + self.config.shutdown_timeout);
        for mut listener in [self.listener.take(), self.metrics_listener.take()]
            .into_iter()
            .flatten()
        {
            let _ = self.poll.registry().deregister(listener.source());
        }
        for id in self.ids() {
            self.with_conn(id, now, |conn, _, env| conn.on_shutdown(env));
        }
        self.conns.is_empty().then_some(Stop::Graceful)
    }

    fn close_all(&mut self, now: Instant) {
        for id in self.ids() {
            self.with_conn(id, now, |_, _, _| Verdict::Remove);
        }
    }
}
