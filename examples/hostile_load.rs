//! Hostile peers beside honest clients, against a running server: what the honest ones saw,
//! how the attackers' connections ended, whether acknowledged inserts survived, and the
//! server's peak memory (human lines, then one JSON line).
//!
//! ```sh
//! head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' > /tmp/tok
//! target/release/wsbridge serve --listen 127.0.0.1:7801 --token-file /tmp/tok \
//!     --max-memory 64MiB --db /tmp/h.db --shell /bin/sh &
//! target/release/examples/hostile_load ws://127.0.0.1:7801 "$(cat /tmp/tok)" $! --budget 64MiB
//! ```
//!
//! `hostile_load URL TOKEN SERVER_PID [--seconds N] [--budget SIZE] [--largest]` starts nothing,
//! it only connects. For N seconds (20) it runs (a) peers sending 1 MiB before the token to /sql
//! and /tty, reconnecting; (b) /echo peers holding an unfinished 1 MiB first fragment; (c) token
//! guessers on /sql; (d) /echo peers sending 4 MiB messages and never reading; beside an echo
//! client timing small round trips (one every millisecond), a SQL client inserting one row at a
//! time, a terminal typing `echo hi` every 250 ms, and a fresh SQL client authenticating every
//! second. The server's VmRSS is sampled every 50 ms; `--budget` (its `--max-memory`) is only
//! used to print ratios. Every peer connects from the same address as the honest clients.
//!
//! `--largest` runs no attackers: after a baseline, one admitted peer sends the largest allowed
//! message (64 MiB, frame header included) to /echo, then /sql (an execute of
//! `SELECT length('xx..')`, 60 MiB of SQL), then /tty (64 MiB of input to `cat > /dev/null`),
//! back to back for N/4 seconds each, while the echo client times its round trips. Give that
//! server a budget above the message size (the default 512MiB).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::thread::{scope, sleep};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};
use tungstenite::client::{IntoClientRequest, client_with_config};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{HandshakeError, Message};

type Ws = tungstenite::WebSocket<TcpStream>;
type Step<'a> = dyn FnMut(&mut Ws) -> Result<(), String> + 'a;
const MIB: usize = 1 << 20;
const HOLDERS: usize = 48;
const NEVER_READERS: usize = 4;
const GUESSERS: usize = 4;
/// The payload of one frame whose message, its 14-byte header included, is 64 MiB.
const LARGEST: usize = 64 * MIB - 14;
const PHASES: [&str; 4] = ["baseline", "echo", "sql", "tty"];

struct Ctx {
    addr: String,
    token: String,
    stop: AtomicBool,
    phase: AtomicUsize,
    tally: Mutex<BTreeMap<&'static str, BTreeMap<String, u64>>>,
    peak_kib: [AtomicU64; 4],
}

impl Ctx {
    fn running(&self) -> bool {
        !self.stop.load(Relaxed)
    }
    fn note(&self, who: &'static str, outcome: impl Into<String>) {
        let mut tally = self.tally.lock().unwrap();
        *tally
            .entry(who)
            .or_default()
            .entry(outcome.into())
            .or_default() += 1;
    }
}

fn main() {
    let (mut positional, mut seconds, mut budget, mut largest) = (vec![], 20.0, None, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => seconds = args.next().and_then(|s| s.parse().ok()).expect("seconds"),
            "--budget" => budget = args.next().map(|s| wsbridge::cli::parse_size(&s).unwrap()),
            "--largest" => largest = true,
            _ => positional.push(arg),
        }
    }
    let [url, token, pid] = &positional[..] else {
        panic!(
            "usage: hostile_load ws://HOST:PORT TOKEN SERVER_PID [--seconds N] [--budget SIZE] [--largest]"
        )
    };
    let pid: u32 = pid.parse().expect("SERVER_PID");
    let ctx = Ctx {
        addr: url
            .trim_start_matches("ws://")
            .trim_end_matches('/')
            .to_string(),
        token: token.clone(),
        stop: AtomicBool::new(false),
        phase: AtomicUsize::new(0),
        tally: Mutex::default(),
        peak_kib: Default::default(),
    };
    let run = Duration::from_secs_f64(seconds);
    let mut report = if largest {
        largest_mode(&ctx, pid, run)
    } else {
        attack_mode(&ctx, pid, run)
    };
    let peak = ctx.peak_kib.iter().map(|p| p.load(Relaxed)).max().unwrap();
    let hwm = proc_status_kib(pid, "VmHWM:").unwrap_or(0);
    let (peak_mib, hwm_mib) = (peak as f64 / 1024.0, hwm as f64 / 1024.0);
    println!("server VmRSS peak {peak_mib:.1} MiB (sampled every 50 ms), VmHWM {hwm_mib:.1} MiB");
    if let Some(b) = budget.map(|b| b as f64 / MIB as f64) {
        let (p, h) = (peak_mib / b, hwm_mib / b);
        println!("  against the {b:.0} MiB budget: peak RSS {p:.2}x, VmHWM {h:.2}x");
    }
    let tally = ctx.tally.lock().unwrap();
    println!("how connections ended (or failed to open):");
    for (who, outcomes) in tally.iter() {
        println!("  {who}: {outcomes:?}");
    }
    report["peak_rss_kib"] = json!(peak);
    report["vm_hwm_kib"] = json!(hwm);
    report["budget_bytes"] = json!(budget);
    report["outcomes"] = json!(*tally);
    println!("{report}");
}

// --- The attacker mix ------------------------------------------------------------------------

fn attack_mode(ctx: &Ctx, pid: u32, run: Duration) -> Json {
    let table = format!("hostile_{}", std::process::id());
    let mut admin = sql_open(ctx).expect("the SQL client is admitted");
    let create = format!("CREATE TABLE {table} (id INTEGER PRIMARY KEY)");
    assert_eq!(
        sql_exec(&mut admin, 1, &create).unwrap()["type"],
        "response_ok"
    );
    let (start, mut echo, mut inserts, mut typing, mut joins) =
        (Instant::now(), vec![], vec![], vec![], vec![]);
    let mut acked = vec![];
    scope(|s| {
        s.spawn(|| sample_rss(ctx, pid));
        s.spawn(|| echo_bystander(ctx, &mut echo));
        s.spawn(|| {
            let mut id = 0;
            honest(ctx, "honest SQL inserter", sql_open, &mut |ws| {
                id += 1;
                let sent = Instant::now();
                let reply = sql_exec(ws, id, &format!("INSERT INTO {table} (id) VALUES ({id})"))?;
                if reply["type"] != "response_ok" {
                    ctx.note("honest SQL inserter", format!("error {}", reply["error"]));
                    return Ok(());
                }
                acked.push(id);
                inserts.push(ms(sent));
                Ok(())
            })
        });
        s.spawn(|| {
            honest(ctx, "honest terminal", tty_open, &mut |ws| {
                sleep(Duration::from_millis(250));
                let sent = Instant::now();
                tty_type_and_wait(ws, b"echo hi\r", b"\nhi\r", sent + Duration::from_secs(60))?;
                typing.push(ms(sent));
                Ok(())
            })
        });
        s.spawn(|| {
            while ctx.running() {
                let started = Instant::now();
                match sql_open(ctx) {
                    Ok(_) => joins.push(ms(started)),
                    Err(e) => ctx.note("honest fresh SQL client", e),
                }
                sleep(Duration::from_secs(1).saturating_sub(started.elapsed()));
            }
        });
        // Let the honest clients in before the attackers fill the address's token queue.
        sleep(Duration::from_millis(1500));
        for (path, protocol, opcode, who) in [
            ("/sql", "hrana3", 1, "a: 1 MiB before the token, /sql"),
            ("/tty", "tty", 2, "a: 1 MiB before the token, /tty"),
        ] {
            for _ in 0..2 {
                let big = frame(true, opcode, &vec![b'x'; MIB]);
                s.spawn(move || {
                    attacker(ctx, who, path, protocol, |c| {
                        let _ = c.set_write_timeout(Some(Duration::from_secs(2)));
                        let _ = c.write_all(&big);
                        await_close(c, Instant::now() + Duration::from_secs(5))
                    })
                });
            }
        }
        let until = start + run;
        for _ in 0..HOLDERS {
            let fragment = frame(false, 0x2, &vec![0xA5; MIB]);
            s.spawn(move || {
                attacker(
                    ctx,
                    "b: unfinished 1 MiB fragment, /echo",
                    "/echo",
                    "",
                    |c| {
                        let _ = c.set_write_timeout(Some(Duration::from_secs(5)));
                        let _ = c.write_all(&fragment);
                        await_close(c, until)
                    },
                )
            });
        }
        for i in 0..GUESSERS {
            s.spawn(move || {
                let mut n = 0;
                attacker(ctx, "c: wrong token, /sql", "/sql", "hrana3", |c| {
                    n += 1;
                    let hello = json!({"type": "hello", "jwt": format!("guess-{i}-{n:026x}")});
                    let _ = c.write_all(&frame(true, 0x1, hello.to_string().as_bytes()));
                    await_close(c, Instant::now() + Duration::from_secs(30))
                })
            });
        }
        for _ in 0..NEVER_READERS {
            let message = frame(true, 0x2, &vec![0x5A; 4 * MIB]);
            let who = "d: never reads, /echo";
            s.spawn(move || attacker(ctx, who, "/echo", "", |c| never_read(ctx, c, &message)));
        }
        sleep(until.saturating_duration_since(Instant::now()));
        ctx.stop.store(true, Relaxed);
    });
    let elapsed = start.elapsed().as_secs_f64();
    // Read the table back through the route, on the connection kept aside since the start.
    let rows = sql_exec(
        &mut admin,
        2,
        &format!("SELECT id FROM {table} ORDER BY id"),
    );
    let rows = rows.expect("read back")["response"]["result"]["rows"].clone();
    let stored: BTreeSet<i64> = rows
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| row[0]["value"].as_str().unwrap().parse().unwrap())
        .collect();
    let missing = acked.iter().filter(|id| !stored.contains(id)).count();
    println!(
        "{elapsed:.1} s: {HOLDERS} fragment holders, {NEVER_READERS} never-readers, \
         {GUESSERS} guessers, 2+2 oversized pre-auth senders"
    );
    let mut echo: Vec<f64> = echo.into_iter().map(|(_, t)| t).collect();
    let mut report = json!({
        "mode": "attack", "seconds": elapsed,
        "echo": figures("echo bystander round trip", &mut echo),
        "sql_insert": figures("SQL insert, request to response_ok", &mut inserts),
        "terminal": figures("terminal `echo hi` round trip", &mut typing),
        "fresh_sql_auth": figures("fresh SQL client, connect to hello_ok", &mut joins),
    });
    println!(
        "inserts acknowledged {} ({:.0}/s); read back {} rows; acknowledged but missing: {missing}",
        acked.len(),
        acked.len() as f64 / elapsed,
        stored.len()
    );
    report["inserts_acked"] = json!(acked.len());
    report["rows_read_back"] = json!(stored.len());
    report["acked_missing"] = json!(missing);
    report
}

/// Upgrades again and again while the run lasts; each connection's outcome is what `act` says.
fn attacker(
    ctx: &Ctx,
    who: &'static str,
    path: &str,
    protocol: &str,
    mut act: impl FnMut(&mut TcpStream) -> String,
) {
    while ctx.running() {
        match upgrade(ctx, path, protocol) {
            Ok(mut s) => ctx.note(who, act(&mut s)),
            Err(e) => {
                ctx.note(who, e);
                sleep(Duration::from_millis(50));
            }
        }
    }
}

/// (d) Sends 4 MiB messages to /echo and never reads the echoes (until the end of the run,
/// when it drains them to find its close code).
fn never_read(ctx: &Ctx, s: &mut TcpStream, message: &[u8]) -> String {
    s.set_nonblocking(true).unwrap();
    let (mut offset, mut sent, mut failed) = (0, 0, None);
    while ctx.running() && failed.is_none() {
        match s.write(&message[offset..]) {
            Ok(n) => {
                offset = (offset + n) % message.len();
                sent += usize::from(offset == 0);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => sleep(Duration::from_millis(20)),
            Err(e) => failed = Some(format!("{:?} on write", e.kind())),
        }
    }
    s.set_nonblocking(false).unwrap();
    let end = await_close(s, Instant::now() + Duration::from_secs(3));
    format!(
        "{end} ({})",
        failed.unwrap_or_else(|| format!("{sent} messages sent"))
    )
}

// --- Honest clients --------------------------------------------------------------------------

/// Runs `step` on a connection from `open` while the run lasts, reconnecting after a failure.
fn honest(ctx: &Ctx, who: &'static str, open: fn(&Ctx) -> Result<Ws, String>, step: &mut Step) {
    let mut ws = None;
    while ctx.running() {
        let result = match ws.as_mut() {
            Some(w) => step(w),
            None => open(ctx).map(|w| ws = Some(w)),
        };
        if let Err(e) = result {
            ctx.note(who, e);
            ws = None;
            sleep(Duration::from_millis(100));
        }
    }
}

/// Round trips of small messages on /echo, one every millisecond: (phase, milliseconds).
fn echo_bystander(ctx: &Ctx, samples: &mut Vec<(usize, f64)>) {
    let mut seq = 0u64;
    let open = |ctx: &Ctx| ws_connect(ctx, "/echo", None);
    honest(ctx, "honest echo bystander", open, &mut |ws| {
        seq += 1;
        let text = format!("bystander {seq:012}");
        let (phase, sent) = (ctx.phase.load(Relaxed), Instant::now());
        ws.send(Message::text(text.clone())).map_err(str)?;
        wait_for(ws, sent + Duration::from_secs(60), |m| {
            m == &Message::text(&*text)
        })?;
        samples.push((phase, ms(sent)));
        sleep(Duration::from_millis(1));
        Ok(())
    });
}

fn sample_rss(ctx: &Ctx, pid: u32) {
    while ctx.running() {
        if let Some(kib) = proc_status_kib(pid, "VmRSS:") {
            ctx.peak_kib[ctx.phase.load(Relaxed)].fetch_max(kib, Relaxed);
        }
        sleep(Duration::from_millis(50));
    }
}

// --- The largest messages --------------------------------------------------------------------

fn largest_mode(ctx: &Ctx, pid: u32, run: Duration) -> Json {
    let phase_len = run / 4;
    let echo_msg = Message::binary(vec![0xA5u8; LARGEST]);
    let sql = format!("SELECT length('{}') AS n", "x".repeat(60 * MIB));
    let sql_msg = json!({"type": "request", "request_id": 7, "request": {"type": "execute",
        "stream_id": 1, "stmt": {"sql": sql, "want_rows": true}}});
    let sql_msg = Message::text(sql_msg.to_string());
    let mut input = vec![b'0'];
    while input.len() + 1024 <= LARGEST {
        input.extend_from_slice(&[b'x'; 1023]);
        input.push(b'\r');
    }
    let tty_msg = Message::binary(input);
    let mut peers: Vec<Box<Step>> = vec![
        Box::new(|ws| {
            ws.send(echo_msg.clone()).map_err(str)?;
            let deadline = Instant::now() + Duration::from_secs(120);
            wait_for(
                ws,
                deadline,
                |m| matches!(m, Message::Binary(b) if b.len() == LARGEST),
            )
        }),
        Box::new(|ws| {
            ws.send(sql_msg.clone()).map_err(str)?;
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut answer = String::new();
            wait_for(ws, deadline, |m| {
                answer = m.to_text().unwrap_or_default().to_string();
                answer.contains(r#""request_id":7"#)
            })?;
            let right = answer.contains(&(60 * MIB).to_string());
            if right { Ok(()) } else { Err(answer) }
        }),
        Box::new(|ws| {
            let deadline = Instant::now() + Duration::from_secs(120);
            let start = b"stty -echo; echo RE''ADY; cat > /dev/null\r";
            tty_type_and_wait(ws, start, b"READY", deadline)?;
            ws.send(tty_msg.clone()).map_err(str)?;
            tty_type_and_wait(ws, b"\x04stty echo; echo DO''NE\r", b"DONE", deadline)
        }),
    ];
    let mut conns = [
        ws_connect(ctx, "/echo", None).unwrap(),
        sql_open(ctx).unwrap(),
        tty_open(ctx).unwrap(),
    ];
    let mut rounds: Vec<Vec<f64>> = vec![vec![]; 4];
    let mut samples = vec![];
    scope(|s| {
        s.spawn(|| sample_rss(ctx, pid));
        s.spawn(|| echo_bystander(ctx, &mut samples));
        sleep(phase_len);
        for (i, (peer, ws)) in peers.iter_mut().zip(&mut conns).enumerate() {
            ctx.phase.store(i + 1, Relaxed);
            let start = Instant::now();
            while start.elapsed() < phase_len {
                let t = Instant::now();
                match peer(ws) {
                    Ok(()) => rounds[i + 1].push(ms(t)),
                    Err(e) => {
                        ctx.note("largest-message peer", format!("{}: {e}", PHASES[i + 1]));
                        break;
                    }
                }
            }
        }
        ctx.stop.store(true, Relaxed);
    });
    println!(
        "an admitted peer sends 64 MiB messages (frame header included) to one route at a time"
    );
    let mut report = json!({"mode": "largest", "phase_seconds": phase_len.as_secs_f64()});
    for (phase, name) in PHASES.iter().enumerate() {
        let mut times: Vec<f64> = samples
            .iter()
            .filter(|s| s.0 == phase)
            .map(|s| s.1)
            .collect();
        let peak = ctx.peak_kib[phase].load(Relaxed);
        println!("{name}: server VmRSS peak {:.0} MiB", peak as f64 / 1024.0);
        report[name] = json!({
            "bystander_echo": figures(&format!("  {name}: bystander echo round trip"), &mut times),
            "largest_message_rounds": figures(&format!("  {name}: one 64 MiB round"), &mut rounds[phase]),
            "peak_rss_kib": peak,
        });
    }
    report
}

// --- Clients, frames, figures ----------------------------------------------------------------

fn ws_connect(ctx: &Ctx, path: &str, protocol: Option<&str>) -> Result<Ws, String> {
    let mut request = format!("ws://{}{path}", ctx.addr)
        .into_client_request()
        .unwrap();
    if let Some(p) = protocol {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", p.parse().unwrap());
    }
    let stream = TcpStream::connect(&ctx.addr).map_err(|e| format!("connect: {:?}", e.kind()))?;
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    // Unlimited, for the largest messages' echoes.
    let config = WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    match client_with_config(request, stream, Some(config)) {
        Ok((ws, _)) => {
            let _ = ws
                .get_ref()
                .set_read_timeout(Some(Duration::from_millis(100)));
            Ok(ws)
        }
        Err(HandshakeError::Failure(tungstenite::Error::Http(r))) => {
            Err(format!("http {}", r.status().as_u16()))
        }
        Err(e) => Err(format!("handshake: {e}")),
    }
}

/// Reads until a message `wanted` accepts; a Close, a failure or the deadline is an `Err`.
fn wait_for(
    ws: &mut Ws,
    deadline: Instant,
    mut wanted: impl FnMut(&Message) -> bool,
) -> Result<(), String> {
    loop {
        match ws.read() {
            Ok(Message::Close(frame)) => {
                return Err(format!("close {}", frame.map_or(1005, |f| f.code.into())));
            }
            Ok(m) if wanted(&m) => return Ok(()),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                if Instant::now() >= deadline {
                    return Err("nothing in time".into());
                }
            }
            Err(e) => return Err(format!("error: {e}")),
        }
    }
}

/// An admitted Hrana 3 connection with stream 1 open.
fn sql_open(ctx: &Ctx) -> Result<Ws, String> {
    let mut ws = ws_connect(ctx, "/sql", Some("hrana3"))?;
    let hello = json!({"type": "hello", "jwt": ctx.token}).to_string();
    ws.send(Message::text(hello)).map_err(str)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut first = String::new();
    wait_for(&mut ws, deadline, |m| {
        first = m.to_text().unwrap_or_default().into();
        m.is_text()
    })?;
    if !first.contains("hello_ok") {
        return Err(format!("no hello_ok: {first}"));
    }
    let open = json!({"type": "request", "request_id": 0,
        "request": {"type": "open_stream", "stream_id": 1}});
    ws.send(Message::text(open.to_string())).map_err(str)?;
    wait_for(&mut ws, deadline, Message::is_text)?;
    Ok(ws)
}

/// One execute on stream 1; its response.
fn sql_exec(ws: &mut Ws, id: i64, sql: &str) -> Result<Json, String> {
    let request = json!({"type": "request", "request_id": id,
        "request": {"type": "execute", "stream_id": 1, "stmt": {"sql": sql}}});
    ws.send(Message::text(request.to_string())).map_err(str)?;
    let mut reply = Json::Null;
    wait_for(ws, Instant::now() + Duration::from_secs(60), |m| {
        reply = serde_json::from_str(m.to_text().unwrap_or_default()).unwrap_or_default();
        reply["request_id"] == id
    })?;
    Ok(reply)
}

/// An admitted terminal that has printed something (its prompt).
fn tty_open(ctx: &Ctx) -> Result<Ws, String> {
    let mut ws = ws_connect(ctx, "/tty", Some("tty"))?;
    let init = json!({"AuthToken": ctx.token, "columns": 80, "rows": 24}).to_string();
    ws.send(Message::binary(init.into_bytes())).map_err(str)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    wait_for(&mut ws, deadline, |m| {
        m.clone().into_data().first() == Some(&b'0')
    })?;
    Ok(ws)
}

/// Types `keys` into the terminal and reads its output until `wanted` appears.
fn tty_type_and_wait(
    ws: &mut Ws,
    keys: &[u8],
    wanted: &[u8],
    deadline: Instant,
) -> Result<(), String> {
    ws.send(Message::binary([b"0", keys].concat()))
        .map_err(str)?;
    let mut seen = Vec::new();
    wait_for(ws, deadline, |m| match m {
        Message::Binary(b) if b.first() == Some(&b'0') => {
            seen.extend_from_slice(&b[1..]);
            seen.windows(wanted.len()).any(|w| w == wanted)
        }
        _ => false,
    })
}

/// A raw upgrade (for the attackers, who write frames by hand); the socket, or "http STATUS".
fn upgrade(ctx: &Ctx, path: &str, protocol: &str) -> Result<TcpStream, String> {
    let mut s = TcpStream::connect(&ctx.addr).map_err(|e| format!("connect: {:?}", e.kind()))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let protocol = match protocol {
        "" => String::new(),
        p => format!("Sec-WebSocket-Protocol: {p}\r\n"),
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{protocol}\r\n",
        ctx.addr
    );
    s.write_all(request.as_bytes())
        .map_err(|e| format!("{:?} on upgrade", e.kind()))?;
    let (mut head, mut byte) = (Vec::new(), [0u8]);
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return Err("no response to the upgrade".into()),
        }
    }
    match String::from_utf8_lossy(&head).split(' ').nth(1) {
        Some("101") => Ok(s),
        status => Err(format!("http {}", status.unwrap_or("?"))),
    }
}

/// A masked client frame.
fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x11, 0x22, 0x33, 0x44];
    let mut out = vec![(u8::from(fin) << 7) | opcode];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=65535 => out.extend([0x80 | 126].into_iter().chain((n as u16).to_be_bytes())),
        n => out.extend([0x80 | 127].into_iter().chain((n as u64).to_be_bytes())),
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// Reads the server's frames until its Close: "close CODE", or how the connection ended
/// otherwise, or "open at end" when `until` passes first.
fn await_close(s: &mut TcpStream, until: Instant) -> String {
    let mut read = |n: usize| {
        let left = until.saturating_duration_since(Instant::now());
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
        let mut buf = vec![0; n];
        s.read_exact(&mut buf).map(|()| buf)
    };
    loop {
        let mut frame = || -> std::io::Result<(u8, Vec<u8>)> {
            let head = read(2)?;
            let len = match head[1] & 0x7f {
                126 => u16::from_be_bytes(read(2)?.try_into().unwrap()) as usize,
                127 => u64::from_be_bytes(read(8)?.try_into().unwrap()) as usize,
                n => n as usize,
            };
            Ok((head[0] & 0x0f, read(len)?))
        };
        match frame() {
            Ok((0x8, p)) if p.len() >= 2 => {
                return format!("close {}", u16::from_be_bytes([p[0], p[1]]));
            }
            Ok((0x8, _)) => return "close (no code)".into(),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return "open at end".into();
            }
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return "EOF without Close".into(),
            Err(e) => return format!("{:?} without Close", e.kind()),
        }
    }
}

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix(field))?;
    line.split_whitespace().next()?.parse().ok()
}

fn str(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// Prints `label: n, p50, p99, max` and returns them as JSON.
fn figures(label: &str, v: &mut [f64]) -> Json {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| {
        v.get(((v.len() as f64 * q) as usize).min(v.len().max(1) - 1))
            .copied()
    };
    let (p50, p99, max) = (
        at(0.5).unwrap_or(0.0),
        at(0.99).unwrap_or(0.0),
        at(1.0).unwrap_or(0.0),
    );
    println!(
        "{label}: n {}, p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms",
        v.len()
    );
    json!({"n": v.len(), "p50_ms": p50, "p99_ms": p99, "max_ms": max})
}
