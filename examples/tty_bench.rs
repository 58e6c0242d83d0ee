//! The terminal route's two figures: bulk output (`cat` of a 100 MB file through the PTY to a
//! WebSocket client) against reading the same output from a PTY in-process (the ceiling), and
//! the keystroke round trip (an input frame to the frame carrying its echo).
//!
//! `cargo run --release --example tty_bench [MEGABYTES] [KEYSTROKES]` prints a table and JSON.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tungstenite::Message;
use tungstenite::client::IntoClientRequest;
use wsbridge::auth::Policy;
use wsbridge::routes::tty::sys::{self, Command, PtyRead, WinSize};
use wsbridge::routes::tty::{self, TtyFactory};
use wsbridge::server::{Config, Routes, Server};

type Ws = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>;

fn main() {
    let mut args = std::env::args().skip(1);
    let megabytes: usize = args.next().map_or(100, |v| v.parse().expect("megabytes"));
    let keystrokes: usize = args.next().map_or(2000, |v| v.parse().expect("keystrokes"));
    let file = std::env::temp_dir().join(format!("wsbridge-tty-bench-{}.txt", std::process::id()));
    write_file(&file, megabytes << 20);

    let cat = || {
        let mut command = Command::new("cat");
        command.args = vec![file.clone().into_os_string()];
        command
    };
    // Alternate the two, three times each, and keep the medians: machine noise hits both.
    let addr = start_server(cat());
    let mut ceilings = Vec::new();
    let mut throughs = Vec::new();
    let mut ceiling_bytes = 0;
    for _ in 0..3 {
        let (bytes, secs) = pty_in_process(&cat());
        ceiling_bytes = bytes;
        ceilings.push(bytes as f64 / secs / 1e6);
        let (bytes, secs) = through_websocket(addr);
        assert_eq!(bytes, ceiling_bytes, "every byte arrives");
        throughs.push(bytes as f64 / secs / 1e6);
    }
    let echo_addr = start_server(Command::new("cat"));
    let (p50, p99) = keystroke_round_trip(echo_addr, keystrokes);
    let _ = std::fs::remove_file(&file);

    let ceiling = median(&mut ceilings);
    let through = median(&mut throughs);
    println!("cat of a {megabytes} MiB file ({ceiling_bytes} bytes out of the PTY, with CR added)");
    println!("| path | MB/s |");
    println!("|---|---|");
    println!(
        "medians of 3 alternating runs; runs: in-process {ceilings:.0?}, wsbridge {throughs:.0?}"
    );
    println!("| PTY read in-process (ceiling) | {ceiling:.0} |");
    println!(
        "| PTY through wsbridge to a WebSocket client | {through:.0} ({:.0}% of the ceiling) |",
        through / ceiling * 100.0
    );
    println!(
        "keystroke round trip ({keystrokes} keys, `cat` echoing): p50 {p50:.0} us, p99 {p99:.0} us"
    );
    println!(
        "{}",
        serde_json::json!({
            "megabytes": megabytes,
            "ceiling_mb_per_s": ceiling,
            "websocket_mb_per_s": through,
            "keystroke_p50_us": p50,
            "keystroke_p99_us": p99,
        })
    );
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn write_file(path: &std::path::Path, size: usize) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut written = 0;
    let mut line = 0u64;
    while written < size {
        let text =
            format!("line {line:>10}: the quick brown fox jumps over the lazy dog 0123456789\n");
        out.write_all(text.as_bytes()).unwrap();
        written += text.len();
        line += 1;
    }
    out.flush().unwrap();
}

/// Read everything `command` prints from the PTY master, in this process.
fn pty_in_process(command: &Command) -> (usize, f64) {
    let start = Instant::now();
    let (pty, mut child) = sys::spawn(command, WinSize::default()).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    let mut poll = mio::Poll::new().unwrap();
    let fd = pty.as_raw_fd();
    poll.registry()
        .register(
            &mut mio::unix::SourceFd(&fd),
            mio::Token(0),
            mio::Interest::READABLE,
        )
        .unwrap();
    let mut events = mio::Events::with_capacity(4);
    'outer: loop {
        loop {
            match pty.read(&mut buf).unwrap() {
                PtyRead::Data(n) => total += n,
                PtyRead::WouldBlock => break,
                PtyRead::Closed => break 'outer,
            }
        }
        poll.poll(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    while child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(5));
    }
    (total, secs)
}

fn start_server(command: Command) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let policy = Arc::new(Policy::new(None, vec![], vec![]));
        let config = Config {
            listen: "127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
            ..Config::default()
        };
        let mut routes = Routes::echo_only(policy.clone());
        routes.tty = Some(Box::new(TtyFactory::new(
            tty::Config::new(command),
            config.high_water,
            config.low_water,
        )));
        let mut server = Server::bind(config, routes).unwrap();
        tx.send(server.local_addr()).unwrap();
        server.run()
    });
    rx.recv().unwrap()
}

fn open_terminal(addr: SocketAddr) -> Ws {
    let mut request = format!("ws://{addr}/tty").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "tty".parse().unwrap());
    let (mut ws, _) = tungstenite::connect(request).unwrap();
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_nodelay(true).unwrap();
    }
    ws.send(Message::binary(
        &br#"{"AuthToken":"","columns":120,"rows":40}"#[..],
    ))
    .unwrap();
    ws
}

/// Output bytes received from the terminal until it closes, and the time it took.
fn through_websocket(addr: SocketAddr) -> (usize, f64) {
    let start = Instant::now();
    let mut ws = open_terminal(addr);
    let mut total = 0;
    loop {
        match ws.read() {
            Ok(Message::Binary(data)) if data.first() == Some(&b'0') => total += data.len() - 1,
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    (total, start.elapsed().as_secs_f64())
}

/// Send single keys to `cat` on the terminal and time each until its echo arrives.
fn keystroke_round_trip(addr: SocketAddr, keystrokes: usize) -> (f64, f64) {
    let mut ws = open_terminal(addr);
    let mut times = Vec::with_capacity(keystrokes);
    for i in 0..keystrokes + 100 {
        let key = b'a' + (i % 26) as u8;
        let sent = Instant::now();
        ws.send(Message::binary(vec![b'0', key])).unwrap();
        loop {
            if let Message::Binary(data) = ws.read().unwrap()
                && data.first() == Some(&b'0')
                && data.contains(&key)
            {
                break;
            }
        }
        if i >= 100 {
            times.push(sent.elapsed().as_secs_f64() * 1e6);
        }
        if i % 64 == 63 {
            // End the line so cat's line buffer stays small.
            ws.send(Message::binary(&b"0\r"[..])).unwrap();
        }
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[times.len() * 99 / 100])
}
