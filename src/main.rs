//! The `wsbridge` command: parse arguments, build the server, run it.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use wsbridge::auth::{Policy, check_token_strength, generate_token};
use wsbridge::cli::{
    LogFormat, parse_base_path, parse_client_option, parse_mode, parse_seconds, parse_signal,
    parse_size, write_json_line,
};
use wsbridge::protocol::{Limits, Timeouts};
use wsbridge::routes::sql::{SqlConfig, SqlHttp, SqlRouteFactory, SqlShared};
use wsbridge::routes::tty::{self, TerminalPages, TtyFactory};
use wsbridge::server::config::DeflateSettings;
use wsbridge::server::listener::{Listen, LocalAddr};
use wsbridge::server::tls::TlsSource;
use wsbridge::server::{Config, Routes, Server, Stop};

#[derive(Parser)]
#[command(
    name = "wsbridge",
    version,
    about = "A WebSocket server with a hand-written RFC 6455 core"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Load-test a WebSocket echo server (or a raw TCP echo with --raw-tcp).
    Bench(BenchArgs),
    /// Annotate WebSocket frames or an opening handshake field by field, or build a frame.
    Dissect(Box<DissectArgs>),
}

#[derive(Args)]
#[command(after_help = "Examples:\n  \
    wsbridge dissect 81 85 37 fa 21 3d 7f 9f 4d 51 58\n  \
    wsbridge dissect --encode --text Hello --mask 37fa213d\n  \
    printf 'GET / HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n' | wsbridge dissect --handshake")]
struct DissectArgs {
    /// Frame bytes in hex (spaces, commas and 0x allowed); read from stdin when absent.
    hex: Vec<String>,
    /// Read raw bytes (or, with --handshake, the HTTP text) from this file.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Who sent the frames: client (must mask) or server (must not); default: guessed.
    #[arg(long, value_parser = ["client", "server"])]
    role: Option<String>,
    /// Payload bytes shown per frame.
    #[arg(long, default_value_t = 64)]
    max_payload: usize,
    /// The input is an HTTP upgrade request or response.
    #[arg(long)]
    handshake: bool,
    /// With --handshake on a response: the Sec-WebSocket-Key its request sent.
    #[arg(long)]
    key: Option<String>,
    /// Build a frame from the options below and dissect it.
    #[arg(long)]
    encode: bool,
    /// --encode: a text frame with this payload.
    #[arg(long)]
    text: Option<String>,
    /// --encode: a binary frame with this payload (hex).
    #[arg(long, value_name = "HEX")]
    binary: Option<String>,
    /// --encode: a Ping with this payload (text).
    #[arg(long)]
    ping: Option<String>,
    /// --encode: a Pong with this payload (text).
    #[arg(long)]
    pong: Option<String>,
    /// --encode: a Close with this status code (and --reason).
    #[arg(long)]
    close: Option<u16>,
    /// --encode: the Close reason.
    #[arg(long, default_value = "")]
    reason: String,
    /// --encode: force this opcode (0-15, reserved ones too).
    #[arg(long)]
    opcode: Option<u8>,
    /// --encode: clear FIN (a fragment that is not the last).
    #[arg(long)]
    no_fin: bool,
    /// --encode: set RSV bits (1 = RSV3 ... 4 = RSV1, 7 = all).
    #[arg(long, default_value_t = 0)]
    rsv: u8,
    /// --encode: mask with this key (8 hex digits), as a client must.
    #[arg(long)]
    mask: Option<String>,
    /// permessage-deflate (RFC 7692) is in use: inflate messages whose first frame has RSV1,
    /// keeping the window across messages; with --encode, compress the payload and set RSV1.
    #[arg(long)]
    deflate: bool,
}

#[derive(Args)]
struct BenchArgs {
    /// The server, e.g. ws://127.0.0.1:6455/echo, or wss://localhost:6455/echo with
    /// WSBRIDGE_CA_FILE naming the CA (PEM) that signed its certificate.
    url: String,
    /// Connections.
    #[arg(long, short = 'c', default_value_t = 10)]
    connections: usize,
    /// Payload bytes per message.
    #[arg(long, short = 's', value_parser = parse_size, default_value = "20")]
    size: u64,
    /// Seconds measured.
    #[arg(long, short = 'd', value_parser = parse_seconds, default_value = "10")]
    duration: Duration,
    /// Seconds run before measuring.
    #[arg(long, value_parser = parse_seconds, default_value = "1")]
    warmup: Duration,
    /// Messages in flight per connection.
    #[arg(long, short = 'k', default_value_t = 1)]
    in_flight: usize,
    /// Text messages instead of binary.
    #[arg(long)]
    text: bool,
    /// Plain TCP: send SIZE bytes, expect them back (the ceiling for any WebSocket server).
    #[arg(long)]
    raw_tcp: bool,
    /// Offer permessage-deflate and compress every message (the server must accept it).
    #[arg(long, conflicts_with = "raw_tcp")]
    deflate: bool,
    /// Print only the JSON line.
    #[arg(long)]
    json: bool,
    /// Also measure this local server process's CPU time over the measured window.
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
}

#[derive(Args)]
struct ServeArgs {
    /// Where to listen: HOST:PORT, or unix:/path for a Unix socket. Started by systemd with
    /// socket activation (LISTEN_FDS), the socket it passes is used instead.
    #[arg(long, default_value = "127.0.0.1:6455", value_parser = Listen::parse)]
    listen: Listen,
    /// The permissions of a unix: socket, in octal (e.g. 660: its group may connect too).
    #[arg(long, value_name = "MODE", value_parser = parse_mode)]
    listen_mode: Option<u32>,
    /// The token SQL and terminal clients must present (default: a random one, printed). At
    /// least 128 bits. On the command line it shows in `ps`: prefer WSBRIDGE_TOKEN or
    /// --token-file.
    #[arg(long, env = "WSBRIDGE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Read the token from this file (its first line).
    #[arg(long, value_name = "FILE", conflicts_with = "token")]
    token_file: Option<PathBuf>,
    /// Turn authentication off (the SQL database and the shell are open to any local client).
    #[arg(long, conflicts_with_all = ["token", "token_file"])]
    no_auth: bool,
    /// Live under this path prefix behind a reverse proxy (e.g. /term/): every route, page and
    /// endpoint moves below it; other paths are 404.
    #[arg(long, value_name = "PATH", value_parser = parse_base_path)]
    base_path: Option<String>,
    /// A reverse proxy whose X-Forwarded-For names the client, for the token throttle and the
    /// log (repeatable). From any other peer the field is ignored.
    #[arg(long = "trusted-proxy", value_name = "ADDR")]
    trusted_proxy: Vec<std::net::IpAddr>,
    /// A second listener, plain HTTP, that serves GET /metrics without the token (and /health,
    /// /version, nothing else): bind it to an interface only the scraper reaches.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// The log's format on stderr (WSBRIDGE_LOG sets its level).
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Serve TLS (https://, wss://) with this certificate chain (PEM, leaf first). Reloaded,
    /// with --tls-key, on SIGHUP; open connections keep theirs.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "tls_self_signed"
    )]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Serve TLS with a certificate for localhost generated at start (development); its
    /// SHA-256 fingerprint is printed with the URL.
    #[arg(long)]
    tls_self_signed: bool,
    /// Also accept browser pages from this origin (repeatable), e.g. https://app.example.org.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origin: Vec<String>,
    /// Also answer to this Host name (repeatable); IP literals and localhost always work.
    #[arg(long = "allow-host", value_name = "HOST")]
    allow_host: Vec<String>,
    /// Most connections at once.
    #[arg(long, default_value_t = 100_000)]
    max_connections: usize,
    /// Most connections still in their opening handshake.
    #[arg(long, default_value_t = 1_000)]
    max_handshakes: usize,
    /// Largest message, counting frame headers (e.g. 64MiB).
    #[arg(long, value_parser = parse_size, default_value = "64MiB")]
    max_message_size: u64,
    /// Everything peers can make the server hold (buffers, queues, SQL and terminal state);
    /// above it, reading stops, upgrades get 503 and the largest holders are closed.
    #[arg(long, value_parser = parse_size, default_value = "512MiB")]
    max_memory: u64,
    /// Largest frame payload.
    #[arg(long, value_parser = parse_size, default_value = "64MiB")]
    max_frame_size: u64,
    /// Seconds a client has to send its request head.
    #[arg(long, value_parser = parse_seconds, default_value = "10")]
    handshake_timeout: Duration,
    /// Seconds of silence from a peer before the server pings it.
    #[arg(long, value_parser = parse_seconds, default_value = "30")]
    ping_interval: Duration,
    /// Seconds of total silence (pongs included) before a connection is closed.
    #[arg(long, value_parser = parse_seconds, default_value = "120")]
    idle_timeout: Duration,
    /// Seconds a message in progress may go without a byte of it arriving (control frames
    /// between its fragments do not count).
    #[arg(long, value_parser = parse_seconds, default_value = "30")]
    message_stall_timeout: Duration,
    /// Seconds a kept-alive plain HTTP connection waits for its next request.
    #[arg(long, value_parser = parse_seconds, default_value = "15")]
    keep_alive_timeout: Duration,
    /// Seconds a plain HTTP request's body may take to arrive after its head (then 408).
    #[arg(long, value_parser = parse_seconds, default_value = "30")]
    http_body_timeout: Duration,
    /// Largest plain HTTP request body (a Hrana pipeline).
    #[arg(long, value_parser = parse_size, default_value = "64MiB")]
    max_body_size: u64,
    /// Seconds unsent output may stay stuck before the connection is closed.
    #[arg(long, value_parser = parse_seconds, default_value = "30")]
    write_timeout: Duration,
    /// Seconds to wait for the peer's side of the closing handshake.
    #[arg(long, value_parser = parse_seconds, default_value = "5")]
    close_timeout: Duration,
    /// permessage-deflate (RFC 7692) for clients that offer it: on, off, or inflate-only
    /// (accept it and inflate what arrives, but send everything uncompressed).
    #[arg(long, value_parser = ["on", "off", "inflate-only"], default_value = "on", value_name = "on|off|inflate-only")]
    deflate: String,
    /// The server compressor's window in bits, 9 to 15 (memory grows with it: 4 << N bytes).
    #[arg(long, value_parser = clap::value_parser!(u8).range(9..=15), default_value_t = 12, value_name = "N")]
    deflate_window_bits: u8,
    /// The compressor's zlib memLevel, 1 to 9 (its buffers: 7 << (N + 6) bytes).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=9), default_value_t = 5, value_name = "N")]
    deflate_mem_level: u8,
    /// Compress every message, even small ones and those that do not shrink (for peers that
    /// mishandle uncompressed messages on a compressed connection, such as kosoku 0.1.0).
    #[arg(long)]
    deflate_compress_all: bool,
    /// Log every frame in and out of every connection, annotated (secrets redacted).
    #[arg(long)]
    trace: bool,
    /// With --trace: payload bytes shown per frame.
    #[arg(long, default_value_t = 64, value_name = "BYTES")]
    trace_payload: usize,
    /// With --trace: show what is typed into terminals (otherwise a byte count).
    #[arg(long)]
    trace_input: bool,
    /// Seconds a graceful shutdown (SIGTERM, SIGINT) may take.
    #[arg(long, value_parser = parse_seconds, default_value = "10")]
    shutdown_timeout: Duration,
    /// The program every terminal runs (default: $SHELL, else /bin/sh); its arguments go after `--`.
    /// Clients never choose what runs.
    #[arg(long, value_name = "PROGRAM")]
    shell: Option<OsString>,
    /// Working directory of the terminal's program (default: the server's).
    #[arg(long, value_name = "DIR")]
    cwd: Option<PathBuf>,
    /// Terminals only show output: what clients type is dropped.
    #[arg(long)]
    read_only_tty: bool,
    /// An option for the terminal page, KEY=VALUE (ttyd's -t): xterm.js options (fontSize=16,
    /// fontFamily=..., cursorBlink=true, theme={"background":"#000"}) and the page's own
    /// (disableLeaveAlert=true, titleFixed=NAME, rendererType=dom). Repeatable.
    #[arg(long = "client-option", value_name = "KEY=VALUE", value_parser = parse_client_option)]
    client_option: Vec<(String, serde_json::Value)>,
    /// TERM for the terminal's program.
    #[arg(long, value_name = "NAME", default_value = "xterm-256color")]
    term: String,
    /// The signal a terminal's program gets when its client is gone (name or number; SIGKILL
    /// follows after 3 s if it is still there).
    #[arg(long, value_name = "SIGNAL", value_parser = parse_signal, default_value = "HUP")]
    signal: i32,
    /// Terminal sessions running at once; more get 503 (or Close 1013 if they raced).
    #[arg(long, value_name = "N")]
    max_sessions: Option<usize>,
    /// Serve one terminal session, then exit (further ones are refused while it runs).
    #[arg(long)]
    once: bool,
    /// Exit when the last terminal session ends.
    #[arg(long)]
    exit_no_conn: bool,
    /// Arguments for the terminal's program: `wsbridge serve --shell bash -- -l`.
    #[arg(last = true, value_name = "ARGS")]
    shell_args: Vec<OsString>,
    #[command(flatten)]
    sql: SqlArgs,
}

/// The SQL route (Hrana over WebSocket).
#[derive(Args)]
struct SqlArgs {
    /// The SQLite database file (created if missing, WAL mode), or :memory: for one in-memory
    /// database shared by every connection.
    #[arg(long, default_value = "wsbridge.db")]
    db: String,
    /// Open the database read-only and refuse statements that write.
    #[arg(long)]
    read_only: bool,
    /// Seconds one SQL statement may run before it is interrupted.
    #[arg(long, value_parser = parse_seconds, default_value = "10")]
    sql_statement_timeout: Duration,
    /// Seconds an open SQL transaction may wait for its next request before it is rolled back.
    #[arg(long, value_parser = parse_seconds, default_value = "10")]
    sql_transaction_timeout: Duration,
    /// Largest SQL response message.
    #[arg(long, value_parser = parse_size, default_value = "10MiB")]
    sql_max_response_size: u64,
    /// Most SQL streams (one SQLite connection and thread each) per WebSocket connection.
    #[arg(long, default_value_t = 64)]
    sql_max_streams: usize,
    /// Most SQL streams in the whole server.
    #[arg(long, default_value_t = 1024)]
    sql_max_streams_total: usize,
    /// Seconds a Hrana-over-HTTP stream lives without a request (its baton then expires).
    #[arg(long, value_parser = parse_seconds, default_value = "10")]
    sql_http_stream_expiry: Duration,
}

impl SqlArgs {
    fn config(&self) -> SqlConfig {
        SqlConfig {
            db: self.db.clone(),
            read_only: self.read_only,
            statement_timeout: self.sql_statement_timeout,
            idle_transaction_timeout: self.sql_transaction_timeout,
            max_response_bytes: usize::try_from(self.sql_max_response_size).unwrap_or(usize::MAX),
            max_streams_per_connection: self.sql_max_streams,
            max_streams_total: self.sql_max_streams_total,
            http_stream_expiry: self.sql_http_stream_expiry,
            ..SqlConfig::default()
        }
    }
}

fn main() -> ExitCode {
    // The command line first: `--help` and usage errors need no logger, and `--trace` decides
    // one of its targets.
    // SAFETY: the first thing main does, while this is the only thread.
    let _ = SYSTEMD_SOCKET.set(unsafe { wsbridge::sys::take_systemd_socket() });
    let cli = Cli::parse();
    let mut logger =
        env_logger::Builder::from_env(env_logger::Env::new().filter_or("WSBRIDGE_LOG", "info"));
    if let Command::Serve(args) = &cli.command
        && args.trace
    {
        // Asked for on the command line, the trace shows whatever WSBRIDGE_LOG says elsewhere.
        logger.filter_module("wsbridge::trace", log::LevelFilter::Info);
    }
    if let Command::Serve(args) = &cli.command
        && args.log_format == LogFormat::Json
    {
        logger.format(write_json_line);
    }
    logger.init();
    let result = match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Bench(args) => bench(args),
        Command::Dissect(args) => dissect(*args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("wsbridge: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The listener: systemd's socket if it passed one, else `--listen` (with `--listen-mode`).
fn listen_target(args: &ServeArgs) -> Listen {
    if let Some(fd) = SYSTEMD_SOCKET.get().copied().flatten() {
        log::info!(
            "listening on the socket systemd passed (descriptor {fd}); --listen is not used"
        );
        return Listen::Inherited(fd);
    }
    match &args.listen {
        Listen::Unix { path, .. } => Listen::Unix {
            path: path.clone(),
            mode: args.listen_mode,
        },
        other => other.clone(),
    }
}

/// The socket systemd passed, taken at the start of `main` (before any thread).
static SYSTEMD_SOCKET: std::sync::OnceLock<Option<std::os::fd::RawFd>> = std::sync::OnceLock::new();

/// Where the listener's certificate comes from, if it serves TLS.
fn tls_source(args: &ServeArgs) -> Option<TlsSource> {
    match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsSource::Files {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: args.tls_client_ca.clone(),
        }),
        _ => args.tls_self_signed.then_some(TlsSource::SelfSigned),
    }
}

fn serve(args: ServeArgs) -> Result<(), String> {
    let config = Config {
        listen: listen_target(&args),
        limits: Limits {
            max_frame_size: args.max_frame_size,
            max_message_size: args.max_message_size,
        },
        max_connections: args.max_connections,
        max_handshakes: args.max_handshakes,
        handshake_timeout: args.handshake_timeout,
        keep_alive_timeout: args.keep_alive_timeout,
        body_timeout: args.http_body_timeout,
        max_body: usize::try_from(args.max_body_size).unwrap_or(usize::MAX),
        timeouts: Timeouts {
            ping_interval: args.ping_interval,
            idle_timeout: args.idle_timeout,
            close_timeout: args.close_timeout,
            message_stall: args.message_stall_timeout,
        },
        max_memory: usize::try_from(args.max_memory).unwrap_or(usize::MAX),
        deflate: DeflateSettings {
            enabled: args.deflate != "off",
            compress: args.deflate == "on",
            window_bits: args.deflate_window_bits,
            mem_level: args.deflate_mem_level,
            compress_all: args.deflate_compress_all,
        },
        write_timeout: args.write_timeout,
        linger_timeout: args.close_timeout,
        shutdown_timeout: args.shutdown_timeout,
        trace: args.trace.then_some(wsbridge::dissect::trace::TraceConfig {
            max_payload: args.trace_payload,
            show_input: args.trace_input,
        }),
        tls: tls_source(&args),
        base_path: args.base_path.clone().filter(|base| !base.is_empty()),
        trusted_proxies: args.trusted_proxy.clone(),
        metrics_listen: args.metrics_listen,
        ..Config::default()
    };
    let given = match &args.token_file {
        Some(path) => Some(read_token_file(path)?),
        None => args.token.clone(),
    };
    if let Some(token) = &given {
        check_token_strength(token)?;
    }
    let (token, generated) = match (args.no_auth, given) {
        (true, _) => {
            log::warn!(
                "authentication is off: any client that can connect can use the SQL and terminal routes"
            );
            (None, false)
        }
        (false, Some(token)) => (Some(token), false),
        (false, None) => (
            Some(generate_token().map_err(|e| format!("cannot generate a token: {e}"))?),
            true,
        ),
    };
    let tty = terminal_config(&args)?;
    let policy = Arc::new(Policy::new(
        token.clone(),
        args.allow_host,
        args.allow_origin,
    ));
    let sql = SqlShared::new(args.sql.config(), policy.clone()).map_err(|e| e.to_string())?;
    let mut routes = Routes::echo_only(policy);
    routes
        .services
        .push(Box::new(SqlHttp::new(Arc::clone(&sql))));
    routes.sql = Some(Box::new(SqlRouteFactory::new(sql)));
    let tty = TtyFactory::new(tty, config.high_water, config.low_water);
    let sessions = tty.sessions();
    routes.tty = Some(Box::new(tty));
    routes.pages = Box::new(TerminalPages);
    let shutdown_timeout = config.shutdown_timeout;
    let mut server = Server::bind(config, routes)
        .map_err(|e| format!("cannot listen on {:?}: {e}", args.listen))?;
    server
        .handle_signals()
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let listening = server.listening_on().clone();
    let scheme = match server.tls_fingerprint() {
        Some(_) => "https",
        None => "http",
    };
    // A Unix socket is reached as localhost (curl --unix-socket PATH http://localhost/).
    let addr = match &listening {
        LocalAddr::Tcp(addr) => addr.to_string(),
        LocalAddr::Unix(_) => "localhost".to_string(),
    };
    if let LocalAddr::Tcp(tcp) = &listening
        && !tcp.ip().is_loopback()
        && scheme == "http"
    {
        log::warn!(
            "listening on {addr}, which is not a loopback address, without TLS: use --tls-cert or a TLS proxy in front"
        );
    }
    println!(
        "wsbridge {} listening on {listening}",
        env!("CARGO_PKG_VERSION")
    );
    let base = args.base_path.as_deref().unwrap_or("");
    match (&token, generated) {
        (Some(token), true) => println!("open {scheme}://{addr}{base}/?token={token}"),
        _ => println!("open {scheme}://{addr}{base}/"),
    }
    if let Some(fingerprint) = server.tls_fingerprint() {
        println!("TLS certificate SHA-256 {fingerprint}");
    }
    if args.once || args.exit_no_conn {
        let handle = server.shutdown_handle();
        sessions.when_idle(move || {
            log::info!("the last terminal session ended: shutting down (--once, --exit-no-conn)");
            handle.shutdown();
        });
    }
    if let Some(metrics) = server.metrics_addr() {
        println!("metrics on http://{metrics}/metrics (no token)");
    }
    let stop = server.run().map_err(|e| format!("event loop: {e}"))?;
    match stop {
        // Terminals were hung up when their connections closed: wait for their programs to go.
        Stop::Graceful => {
            if !tty::reaper::wait_idle(shutdown_timeout) {
                log::warn!("some terminal programs were still running at exit");
            }
        }
        // A second interrupt: kill the terminals' programs and go, without waiting.
        Stop::Forced => tty::reaper::kill_all_now(),
    }
    Ok(())
}

/// The token in `path`: its first line, without surrounding whitespace.
fn read_token_file(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--token-file {}: {e}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        return Err(format!(
            "--token-file {}: the file holds no token",
            path.display()
        ));
    }
    Ok(token)
}

/// The terminal route's settings from the command line; the program is checked now so a typo fails
/// at start, not at the first connection.
fn terminal_config(args: &ServeArgs) -> Result<tty::Config, String> {
    let program = args
        .shell
        .clone()
        .or_else(|| std::env::var_os("SHELL").filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "/bin/sh".into());
    let path = std::env::var_os("PATH");
    tty::sys::resolve_program(&program, path.as_deref())
        .map_err(|e| format!("--shell {}: {e}", program.to_string_lossy()))?;
    if let Some(dir) = &args.cwd
        && !dir.is_dir()
    {
        return Err(format!("--cwd {}: not a directory", dir.display()));
    }
    let mut command = tty::sys::Command::new(program);
    command.args = args.shell_args.clone();
    command.cwd = args.cwd.clone();
    command.env.push(("TERM".into(), args.term.clone().into()));
    let mut config = tty::Config::new(command);
    config.read_only = args.read_only_tty;
    config.hangup_signal = match args.signal {
        libc::SIGHUP => tty::sys::Signal::Hangup,
        n => tty::sys::Signal::Numbered(n),
    };
    config.client_options = args.client_option.iter().cloned().collect();
    let max = if args.once { 1 } else { usize::MAX };
    config.sessions = tty::sessions::Sessions::new(args.max_sessions.unwrap_or(max).min(max));
    Ok(config)
}

fn bench(args: BenchArgs) -> Result<(), String> {
    let config = wsbridge::bench::BenchConfig {
        url: args.url,
        connections: args.connections,
        size: usize::try_from(args.size).map_err(|_| "--size too large")?,
        duration: args.duration,
        warmup: args.warmup,
        in_flight: args.in_flight,
        text: args.text,
        raw_tcp: args.raw_tcp,
        deflate: args.deflate,
        server_pid: args.server_pid,
    };
    let report = wsbridge::bench::run(&config)?;
    if !args.json {
        println!("{}", report.human());
    }
    println!("{}", report.json());
    Ok(())
}

fn dissect(args: DissectArgs) -> Result<(), String> {
    use std::io::Read;
    use wsbridge::dissect::{self, encode, frames, hex};
    use wsbridge::protocol::Role;

    let role = args.role.as_deref().map(|r| {
        if r == "client" {
            Role::Client
        } else {
            Role::Server
        }
    });
    let options = frames::Options {
        sender: role,
        max_payload: args.max_payload,
        deflate: args.deflate,
    };
    if args.encode {
        let (opcode, payload) = match (&args.text, &args.binary, &args.ping, &args.pong, args.close)
        {
            (Some(text), None, None, None, None) => (1, text.as_bytes().to_vec()),
            (None, Some(data), None, None, None) => (2, hex::parse_hex(data)?),
            (None, None, Some(text), None, None) => (9, text.as_bytes().to_vec()),
            (None, None, None, Some(text), None) => (10, text.as_bytes().to_vec()),
            (None, None, None, None, Some(code)) => (8, encode::close_body(code, &args.reason)),
            (None, None, None, None, None) => (2, Vec::new()),
            _ => {
                return Err(
                    "--encode takes one of --text, --binary, --ping, --pong, --close".into(),
                );
            }
        };
        let (payload, rsv) = if args.deflate && matches!(opcode, 1 | 2) {
            (encode::deflate_payload(&payload), args.rsv | 0b100)
        } else {
            (payload, args.rsv)
        };
        let spec = encode::FrameSpec {
            fin: !args.no_fin,
            rsv,
            opcode: args.opcode.unwrap_or(opcode),
            mask: args.mask.as_deref().map(encode::parse_mask).transpose()?,
            payload,
        };
        let bytes = encode::encode_frame(&spec);
        println!("{}", hex::hex_bytes(&bytes));
        print!("\n{}", frames::dissect_frames(&bytes, &options));
        return Ok(());
    }
    let input = match &args.file {
        Some(path) => std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?,
        None if !args.hex.is_empty() => args.hex.join(" ").into_bytes(),
        None => {
            let mut all = Vec::new();
            std::io::stdin()
                .read_to_end(&mut all)
                .map_err(|e| format!("stdin: {e}"))?;
            all
        }
    };
    if args.handshake {
        let text = String::from_utf8_lossy(&input);
        print!(
            "{}",
            dissect::handshake::dissect_handshake(&text, args.key.as_deref())
        );
        return Ok(());
    }
    let bytes = if args.file.is_some() {
        input
    } else {
        hex::parse_hex(&String::from_utf8_lossy(&input))?
    };
    print!("{}", frames::dissect_frames(&bytes, &options));
    Ok(())
}
