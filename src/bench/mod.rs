//! `wsbridge bench`: a WebSocket load generator on the client side of the protocol core.
//!
//! One mio loop drives every connection. Each connection keeps `in_flight` messages in the air:
//! every echo is checked byte for byte against what was sent (a sequence number in the first
//! bytes catches reordering), its round trip recorded in an HDR histogram, and the next message
//! sent at once. Every frame is masked with a fresh key from a ChaCha generator seeded by the OS
//! (RFC 6455 §5.3). `--raw-tcp` skips WebSocket entirely and echoes plain bytes: the ceiling any
//! WebSocket server is measured against.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod stream;

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::client::{WsUrl, mask_seed, random_key, tls};
use crate::protocol::deflate::{ClientOffer, CodecConfig};
use crate::protocol::frame::OpCode;
use crate::protocol::handshake::client::{Offer, parse_client_response, write_client_request};
use crate::protocol::{Connection, Event, Limits, Message, Role};
use stream::BenchStream;

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// `ws://host:port/path`.
    pub url: String,
    /// Connections opened at start.
    pub connections: usize,
    /// Payload bytes per message.
    pub size: usize,
    /// Measured time.
    pub duration: Duration,
    /// Time run before measuring.
    pub warmup: Duration,
    /// Messages in flight per connection.
    pub in_flight: usize,
    /// Send text messages instead of binary.
    pub text: bool,
    /// Plain TCP echo, no WebSocket.
    pub raw_tcp: bool,
    /// Offer permessage-deflate (RFC 7692) and compress every message; the server must accept.
    pub deflate: bool,
    /// A local server process whose CPU time to measure over the measured window.
    pub server_pid: Option<u32>,
}

/// What was measured.
pub struct BenchReport {
    /// The configuration run.
    pub config: BenchConfig,
    /// Echoes received in the measured window.
    pub messages: u64,
    /// The measured window.
    pub elapsed: Duration,
    /// Round trips, in nanoseconds.
    pub latency: Histogram<u64>,
    /// CPU seconds (user + system) the server process used in the measured window.
    pub server_cpu: Option<f64>,
}

impl BenchReport {
    /// Messages per second.
    pub fn rate(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }

    /// Server CPU seconds per million messages.
    pub fn server_cpu_per_million(&self) -> Option<f64> {
        self.server_cpu
            .map(|cpu| cpu / self.messages.max(1) as f64 * 1e6)
    }

    /// Payload megabytes per second, one way.
    pub fn megabytes_per_second(&self) -> f64 {
        self.rate() * self.config.size as f64 / 1e6
    }

    fn quantile_us(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    /// A human-readable summary.
    pub fn human(&self) -> String {
        let c = &self.config;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} connections x {} B, {} in flight each, {} for {:.1} s",
            c.connections,
            c.size,
            c.in_flight,
            if c.raw_tcp { "raw TCP" } else { "WebSocket" },
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(
            s,
            "messages: {} ({:.0}/s), {:.2} MB/s each way",
            self.messages,
            self.rate(),
            self.megabytes_per_second()
        );
        if let (Some(cpu), Some(per_million)) = (self.server_cpu, self.server_cpu_per_million()) {
            let _ = writeln!(
                s,
                "server CPU: {cpu:.2} s ({:.0}% of one core), {per_million:.2} s per million messages",
                cpu / self.elapsed.as_secs_f64() * 100.0
            );
        }
        let _ = write!(
            s,
            "round trip: p50 {:.1} us, p99 {:.1} us, p999 {:.1} us, max {:.1} us",
            self.quantile_us(0.5),
            self.quantile_us(0.99),
            self.quantile_us(0.999),
            self.latency.max() as f64 / 1000.0
        );
        s
    }

    /// One line of JSON.
    pub fn json(&self) -> String {
        let c = &self.config;
        serde_json::json!({
            "url": c.url,
            "connections": c.connections,
            "size": c.size,
            "in_flight": c.in_flight,
            "raw_tcp": c.raw_tcp,
            "deflate": c.deflate,
            "text": c.text,
            "seconds": self.elapsed.as_secs_f64(),
            "messages": self.messages,
            "msgs_per_s": self.rate(),
            "mb_per_s": self.megabytes_per_second(),
            "p50_us": self.quantile_us(0.5),
            "p99_us": self.quantile_us(0.99),
            "p999_us": self.quantile_us(0.999),
            "max_us": self.latency.max() as f64 / 1000.0,
            "server_cpu_s": self.server_cpu,
            "server_cpu_s_per_million": self.server_cpu_per_million(),
        })
        .to_string()
    }
}

enum Phase {
    Connecting,
    Handshaking { key: String, head: Vec<u8> },
    Open,
}

struct Client {
    stream: BenchStream,
    phase: Phase,
    conn: Connection,
    out: Vec<u8>,
    sent_at: VecDeque<Instant>,
    next_seq: u64,
    expect_seq: u64,
    /// Raw mode: bytes of the echo being received.
    raw_received: Vec<u8>,
}

/// The payload of message `seq`: its sequence number, then a fixed pattern.
struct Payloads {
    size: usize,
    text: bool,
    buf: Vec<u8>,
}

impl Payloads {
    fn new(size: usize, text: bool) -> Self {
        let buf = (0..size)
            .map(|i| {
                if text {
                    b'a' + (i % 26) as u8
                } else {
                    (i * 7 + 3) as u8
                }
            })
            .collect();
        Payloads { size, text, buf }
    }

    /// Write `seq` into the first bytes (hex digits for text) and return the payload.
    fn get(&mut self, seq: u64) -> &[u8] {
        let stamp: [u8; 8] = if self.text {
            let mut hex = [0u8; 8];
            for (i, h) in hex.iter_mut().enumerate() {
                *h = b"0123456789abcdef"[((seq >> (28 - 4 * i)) & 0xf) as usize];
            }
            hex
        } else {
            seq.to_le_bytes()
        };
        let n = self.size.min(8);
        self.buf[..n].copy_from_slice(&stamp[..n]);
        &self.buf
    }
}

const WAKE_CHECK: Duration = Duration::from_millis(50);

/// Run the benchmark.
pub fn run(config: &BenchConfig) -> Result<BenchReport, String> {
    if config.connections == 0 || config.in_flight == 0 {
        return Err("--connections and --in-flight must be at least 1".into());
    }
    let url = WsUrl::parse(&config.url)?;
    if url.secure && config.raw_tcp {
        return Err("--raw-tcp echoes plain bytes: give it a ws:// URL".into());
    }
    let addr: SocketAddr = url
        .authority()
        .to_socket_addrs()
        .map_err(|e| format!("{}: {e}", url.authority()))?
        .next()
        .ok_or_else(|| format!("{}: no address", url.authority()))?;
    // Read and built once: every connection shares the configuration (and its roots).
    let tls_config = match url.secure {
        true => Some(tls::config_from_env().map_err(|e| e.to_string())?),
        false => None,
    };
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut clients = Vec::with_capacity(config.connections);
    for i in 0..config.connections {
        let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        poll.registry()
            .register(
                &mut stream,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| e.to_string())?;
        let stream = match &tls_config {
            Some(config) => {
                let tls = tls::connection_for(Arc::clone(config), &url.host)
                    .map_err(|e| e.to_string())?;
                BenchStream::tls(stream, tls)
            }
            None => BenchStream::Plain(stream),
        };
        let seed = mask_seed().map_err(|e| e.to_string())?;
        clients.push(Client {
            stream,
            phase: Phase::Connecting,
            conn: Connection::client(Limits::default(), seed),
            out: Vec::new(),
            sent_at: VecDeque::with_capacity(config.in_flight),
            next_seq: 0,
            expect_seq: 0,
            raw_received: Vec::new(),
        });
    }
    let mut driver = Driver {
        config,
        url,
        payloads: Payloads::new(config.size, config.text),
        read_buf: vec![0u8; 256 * 1024],
        open: 0,
        measuring: false,
        messages: 0,
        latency: Histogram::new_with_bounds(1, 60_000_000_000, 3).map_err(|e| e.to_string())?,
        now: Instant::now(),
        extensions: config
            .deflate
            .then(|| ClientOffer::default().header_value()),
    };
    let mut events = Events::with_capacity(1024);
    let setup_deadline = Instant::now() + Duration::from_secs(30);
    let mut measure_start = None;
    let mut measure_end = None;
    let mut cpu_at_start = None;
    loop {
        poll.poll(&mut events, Some(WAKE_CHECK)).or_else(|e| {
            if e.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(e.to_string())
            }
        })?;
        driver.now = Instant::now();
        for event in events.iter() {
            let client = &mut clients[event.token().0];
            driver.on_event(
                client,
                event.is_writable(),
                event.is_readable() || event.is_read_closed(),
            )?;
        }
        match (measure_start, measure_end) {
            (None, _) if driver.open == config.connections => {
                let start = driver.now + config.warmup;
                measure_start = Some(start);
                measure_end = Some(start + config.duration);
            }
            (None, _) if driver.now > setup_deadline => {
                return Err(format!(
                    "only {} of {} connections opened within 30 s",
                    driver.open, config.connections
                ));
            }
            (Some(start), Some(end)) => {
                if !driver.measuring && driver.now >= start {
                    driver.measuring = true;
                    cpu_at_start = config.server_pid.and_then(process_cpu_seconds);
                }
                if driver.now >= end {
                    let elapsed = driver.now - start;
                    let server_cpu = cpu_at_start
                        .zip(config.server_pid.and_then(process_cpu_seconds))
                        .map(|(before, after)| after - before);
                    return Ok(BenchReport {
                        config: config.clone(),
                        messages: driver.messages,
                        elapsed,
                        latency: driver.latency,
                        server_cpu,
                    });
                }
            }
            _ => {}
        }
    }
}

struct Driver<'a> {
    config: &'a BenchConfig,
    url: WsUrl,
    payloads: Payloads,
    read_buf: Vec<u8>,
    open: usize,
    measuring: bool,
    messages: u64,
    latency: Histogram<u64>,
    now: Instant,
    /// The `Sec-WebSocket-Extensions` offer, with --deflate.
    extensions: Option<String>,
}

impl Driver<'_> {
    fn offer(&self) -> Offer<'_> {
        Offer {
            protocols: &[],
            extensions: self.extensions.as_deref(),
        }
    }

    fn on_event(
        &mut self,
        client: &mut Client,
        writable: bool,
        readable: bool,
    ) -> Result<(), String> {
        if writable {
            if let Phase::Connecting = client.phase {
                let sock = client.stream.socket();
                if let Some(error) = sock.take_error().map_err(|e| e.to_string())? {
                    return Err(format!("connect: {error}"));
                }
                if sock.peer_addr().is_err() {
                    return Ok(()); // not connected yet
                }
                sock.set_nodelay(true).map_err(|e| e.to_string())?;
                if self.config.raw_tcp {
                    client.phase = Phase::Open;
                    self.open += 1;
                    self.start_sending(client);
                } else {
                    let key = random_key().map_err(|e| e.to_string())?;
                    write_client_request(
                        &mut client.out,
                        &self.url.authority(),
                        &self.url.path,
                        &key,
                        self.offer(),
                    );
                    client.phase = Phase::Handshaking {
                        key,
                        head: Vec::new(),
                    };
                }
            }
            flush(client)?;
        }
        if readable {
            self.on_readable(client)?;
            flush(client)?;
        }
        Ok(())
    }

    fn start_sending(&mut self, client: &mut Client) {
        for _ in 0..self.config.in_flight {
            self.send_next(client);
        }
    }

    fn send_next(&mut self, client: &mut Client) {
        let payload = self.payloads.get(client.next_seq);
        client.next_seq += 1;
        client.sent_at.push_back(self.now);
        if self.config.raw_tcp {
            client.out.extend_from_slice(payload);
        } else {
            let opcode = if self.config.text {
                OpCode::Text
            } else {
                OpCode::Binary
            };
            let tx = client.conn.sender();
            if self.config.deflate {
                // A whole message, so that it is compressed (RFC 7692 §6).
                let message = match opcode {
                    OpCode::Text => Message::Text(std::str::from_utf8(payload).unwrap_or("")),
                    _ => Message::Binary(payload),
                };
                tx.send_message(message, &mut client.out);
            } else {
                tx.send_frame(true, opcode, payload, &mut client.out);
            }
        }
    }

    fn on_readable(&mut self, client: &mut Client) -> Result<(), String> {
        loop {
            let n = match client.stream.read(&mut self.read_buf) {
                Ok(0) => return Err("the server closed a connection".into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("read: {e}")),
            };
            let mut buf = std::mem::take(&mut self.read_buf);
            let result = self.on_bytes(client, &mut buf[..n]);
            self.read_buf = buf;
            result?;
        }
    }

    fn on_bytes(&mut self, client: &mut Client, bytes: &mut [u8]) -> Result<(), String> {
        let mut bytes = bytes;
        if let Phase::Handshaking { key, head } = &mut client.phase {
            head.extend_from_slice(bytes);
            match parse_client_response(head, key, self.offer()) {
                Ok(None) => return Ok(()),
                Ok(Some(accepted)) => {
                    if self.config.deflate {
                        let params = ClientOffer::default()
                            .accept(accepted.extensions)
                            .map_err(|e| format!("permessage-deflate: {e}"))?
                            .ok_or("the server declined permessage-deflate")?;
                        client
                            .conn
                            .enable_deflate(&CodecConfig::new(&params, Role::Client));
                    }
                    let used = accepted.head_len;
                    let rest = head.len() - used;
                    let start = bytes.len() - rest.min(bytes.len());
                    bytes = &mut bytes[start..];
                    client.phase = Phase::Open;
                    self.open += 1;
                    self.start_sending(client);
                }
                Err(e) => return Err(format!("handshake: {e}")),
            }
        }
        if self.config.raw_tcp {
            return self.on_raw_bytes(client, bytes);
        }
        let mut pos = 0;
        while pos < bytes.len() {
            let received = client
                .conn
                .handle_bytes(&mut bytes[pos..], &mut client.out)
                .map_err(|e| format!("protocol error from the server: {e}"))?;
            pos += received.consumed;
            match received.event {
                Some(Event::Message(message)) => {
                    let data = match message {
                        Message::Text(t) => t.as_bytes(),
                        Message::Binary(b) => b,
                    };
                    let expected = self.payloads.get(client.expect_seq);
                    if data != expected {
                        return Err(format!(
                            "echo {} differs from what was sent ({} bytes back, {} sent)",
                            client.expect_seq,
                            data.len(),
                            expected.len()
                        ));
                    }
                    self.on_echo(client);
                }
                Some(Event::Close(frame)) => {
                    return Err(format!("the server closed a connection: {:?}", frame.code));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn on_raw_bytes(&mut self, client: &mut Client, mut bytes: &[u8]) -> Result<(), String> {
        let size = self.config.size;
        while !bytes.is_empty() {
            let take = (size - client.raw_received.len()).min(bytes.len());
            client.raw_received.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if client.raw_received.len() == size {
                if client.raw_received != self.payloads.get(client.expect_seq) {
                    return Err(format!(
                        "raw echo {} differs from what was sent",
                        client.expect_seq
                    ));
                }
                client.raw_received.clear();
                self.on_echo(client);
            }
        }
        Ok(())
    }

    fn on_echo(&mut self, client: &mut Client) {
        client.expect_seq += 1;
        if let Some(sent) = client.sent_at.pop_front()
            && self.measuring
        {
            self.messages += 1;
            let nanos = (self.now - sent).as_nanos().max(1) as u64;
            let _ = self.latency.record(nanos.min(self.latency.high()));
        }
        self.send_next(client);
    }
}

fn flush(client: &mut Client) -> Result<(), String> {
    client.stream.push().map_err(|e| format!("write: {e}"))?;
    while !client.out.is_empty() {
        match client.stream.write(&client.out) {
            Ok(n) => {
                client.out.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
            Err(e) => return Err(format!("write: {e}")),
        }
    }
    Ok(())
}

/// User plus system CPU seconds of a process, from `/proc/PID/stat` (fields 14 and 15, in clock
/// ticks of 1/100 s on Linux).
fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields are counted after its closing paren.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
