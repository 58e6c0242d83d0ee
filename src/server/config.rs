//! Everything the server can be told, with defaults for a server on the open internet.

use std::net::SocketAddr;
use std::time::Duration;

use crate::protocol::http::HeadLimits;
use crate::protocol::{Limits, Timeouts};

/// Server settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen.
    pub listen: super::listener::Listen,
    /// Frame and message size limits.
    pub limits: Limits,
    /// The limits of a connection to a route that needs the token, until it presented a right
    /// one (the token message is small).
    pub pre_auth_limits: Limits,
    /// Request head limits.
    pub head_limits: HeadLimits,
    /// Everything peers can make the server hold, in bytes (see `budget.rs`).
    pub max_memory: usize,
    /// Upgraded and handshaking connections together; more are refused at accept.
    pub max_connections: usize,
    /// Connections still in their opening handshake; more are refused at accept.
    pub max_handshakes: usize,
    /// How long a client has to send its whole request head, and, on a route that needs the
    /// token, to present a right one after the upgrade.
    pub handshake_timeout: Duration,
    /// Plain HTTP: how long a kept-alive connection waits for its next request (said in
    /// `Keep-Alive: timeout=`).
    pub keep_alive_timeout: Duration,
    /// Plain HTTP: how long a request's body may take to arrive once its head has.
    pub body_timeout: Duration,
    /// Plain HTTP: the largest request body (a Hrana pipeline).
    pub max_body: usize,
    /// Ping, idle and close-wait times of upgraded connections (kept by the protocol core).
    pub timeouts: Timeouts,
    /// A connection whose unsent output has not moved for this long is closed.
    pub write_timeout: Duration,
    /// How long a connection that is done lingers for the peer's FIN (also the close wait).
    pub linger_timeout: Duration,
    /// How long a graceful shutdown may take before connections are dropped.
    pub shutdown_timeout: Duration,
    /// Stop reading a connection whose unsent output is above this many bytes...
    pub high_water: usize,
    /// ...and resume when it is below this many.
    pub low_water: usize,
    /// Bytes read from one connection before the loop turns to others.
    pub read_budget: usize,
    /// permessage-deflate (RFC 7692) as the server accepts it.
    pub deflate: DeflateSettings,
    /// `--base-path`: the prefix (`/x`, no trailing slash) the server lives under behind a
    /// proxy; requests outside it are 404.
    pub base_path: Option<String>,
    /// `--trusted-proxy`: peers whose `X-Forwarded-For` names the client (for the token
    /// throttle and the log).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// TLS on the listener (`--tls-cert`/`--tls-key`, `--tls-self-signed`), or plain TCP.
    pub tls: Option<super::tls::TlsSource>,
    /// `--metrics-listen`: a second listener, plain HTTP, that serves `GET /metrics` without
    /// the token (and `/health`, `/version`); for a private interface a scraper reaches.
    pub metrics_listen: Option<SocketAddr>,
    /// `--trace`: log every frame of every connection.
    pub trace: Option<crate::dissect::trace::TraceConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 6455)).into(),
            metrics_listen: None,
            limits: Limits::default(),
            pre_auth_limits: Limits {
                max_frame_size: 64 << 10,
                max_message_size: 64 << 10,
            },
            head_limits: HeadLimits::default(),
            max_memory: 512 << 20,
            max_connections: 100_000,
            max_handshakes: 1_000,
            handshake_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(15),
            body_timeout: Duration::from_secs(30),
            max_body: 64 << 20,
            timeouts: Timeouts::default(),
            write_timeout: Duration::from_secs(30),
            linger_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(10),
            high_water: 1 << 20,
            low_water: 256 << 10,
            read_budget: 1 << 20,
            tls: None,
            base_path: None,
            trusted_proxies: Vec::new(),
            deflate: DeflateSettings::default(),
            trace: None,
        }
    }
}

/// How the server compresses when a client offers permessage-deflate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateSettings {
    /// Accept the extension at all (`--deflate on|off|inflate-only`).
    pub enabled: bool,
    /// Compress what is sent (`--deflate inflate-only` clears it: received messages are
    /// inflated, replies go uncompressed, and no compressor is held).
    pub compress: bool,
    /// The server compressor's window, 9..=15 (`--deflate-window-bits`); announced to the client
    /// as `server_max_window_bits` below 15.
    pub window_bits: u8,
    /// zlib memLevel of the compressor, 1..=9 (`--deflate-mem-level`).
    pub mem_level: u8,
    /// Compress every message, even those that do not shrink (`--deflate-compress-all`).
    pub compress_all: bool,
}

impl Default for DeflateSettings {
    /// The window and memLevel of Python's `websockets` (12 and 5): a compressor then costs
    /// about 160 KiB instead of about 370 KiB at zlib's defaults (15 and 8), for ratios within a
    /// few percent on messages of a few KiB (BENCHMARKS.md, permessage-deflate).
    fn default() -> Self {
        DeflateSettings {
            enabled: true,
            compress: true,
            window_bits: 12,
            mem_level: 5,
            compress_all: false,
        }
    }
}

impl Config {
    /// How often timers are checked: a quarter of the shortest timeout, between 20 ms and 1 s.
    pub fn tick(&self) -> Duration {
        [
            self.handshake_timeout,
            self.timeouts.ping_interval,
            self.timeouts.idle_timeout,
            self.timeouts.close_timeout,
            self.timeouts.message_stall,
            self.write_timeout,
            self.linger_timeout,
        ]
        .into_iter()
        .min()
        .unwrap_or(Duration::from_secs(1))
        .div_f64(4.0)
        .clamp(Duration::from_millis(20), Duration::from_secs(1))
    }
}
