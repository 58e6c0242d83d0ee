//! Hostile peers against the real server binary, over real sockets: big messages before the
//! token, no token at all, a token followed at once by a big request, a message that never
//! finishes, what a terminal's shell inherits, and a second interrupt while a shell refuses to
//! die. (The memory budget has its own file: `hostile_memory.rs`.)

mod common;

use std::io::{ErrorKind, Read, Write};
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value as Json, json};
use tungstenite::Message;
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{Data, OpCode};
use wsbridge::routes::tty::sys::WinSize;

const TOKEN: &str = "hostile-peers-token-0123456789abcdef";

type Ws = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

/// A WebSocket on `path` offering `protocol`, with a read timeout so a broken server fails the
/// test instead of hanging it.
fn connect_with_protocol(server: &ServerProcess, path: &str, protocol: &str) -> Ws {
    let mut request = server.ws_url(path).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    let (ws, response) = tungstenite::connect(request).expect("connect");
    assert_eq!(
        response.headers().get("Sec-WebSocket-Protocol").unwrap(),
        protocol
    );
    set_read_timeout(&ws, Duration::from_secs(20));
    ws
}

fn set_read_timeout(ws: &Ws, timeout: Duration) {
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(timeout)).unwrap();
    }
}

/// Reads until the server's Close; its code (1005 for none) and reason. Panics if the
/// connection ends without one.
fn close_of(ws: &mut Ws) -> (u16, String) {
    loop {
        match ws.read() {
            Ok(Message::Close(Some(frame))) => {
                return (frame.code.into(), frame.reason.to_string());
            }
            Ok(Message::Close(None)) => return (1005, String::new()),
            Ok(_) => continue,
            Err(e) => panic!("no Close frame: {e}"),
        }
    }
}

/// The next text message, parsed (pings and pongs skipped).
fn recv_json(ws: &mut Ws) -> Json {
    loop {
        match ws.read().expect("read") {
            Message::Text(t) => return serde_json::from_str(t.as_str()).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected message {other:?}"),
        }
    }
}

fn hello(jwt: &str) -> String {
    json!({"type": "hello", "jwt": jwt}).to_string()
}

fn request(id: i32, request: Json) -> String {
    json!({"type": "request", "request_id": id, "request": request}).to_string()
}

/// A SQL client (hrana2 on /sql) that said hello with the right token.
fn sql_client(server: &ServerProcess) -> Ws {
    let mut ws = connect_with_protocol(server, "/sql", "hrana2");
    ws.send(Message::text(hello(TOKEN))).unwrap();
    assert_eq!(recv_json(&mut ws), json!({"type": "hello_ok"}));
    ws
}

// --- 1. Before the token, only small messages -------------------------------------------------

#[test]
fn a_big_message_before_the_token_is_refused_with_1009() {
    let server = ServerProcess::start(&["--token", TOKEN, "--shell", "/bin/sh"]);
    let big = "x".repeat(1 << 20);

    // SQL: a 1 MiB text message where the hello should be.
    let mut sql = connect_with_protocol(&server, "/sql", "hrana2");
    let _ = sql.send(Message::text(big.clone()));
    assert_eq!(close_of(&mut sql).0, 1009);

    // The terminal: a 1 MiB message where the init (with the token) should be.
    let mut tty = connect_with_protocol(&server, "/tty", "tty");
    let _ = tty.send(Message::binary(big.clone().into_bytes()));
    assert_eq!(close_of(&mut tty).0, 1009);

    // Once the token is right, the same message is fine (here: a hello followed by a request
    // whose SQL text is 1 MiB, which gets a SQL error, not a close).
    let mut sql = sql_client(&server);
    let statement = json!({"type": "execute", "stream_id": 1, "stmt": {"sql": big}});
    sql.send(Message::text(request(
        1,
        json!({"type": "open_stream", "stream_id": 1}),
    )))
    .unwrap();
    sql.send(Message::text(request(2, statement))).unwrap();
    assert_eq!(recv_json(&mut sql)["type"], "response_ok");
    let reply = recv_json(&mut sql);
    assert_eq!(reply["request_id"], 2, "{reply}");
    assert_eq!(reply["type"], "response_error", "{reply}");

    // The echo route needs no token: it takes 1 MiB and echoes it.
    let mut echo = connect(&server.ws_url("/echo"));
    echo.send(Message::text(big.clone())).unwrap();
    assert_eq!(echo.read().unwrap(), Message::text(big));
}

// --- 2. The token has a deadline ---------------------------------------------------------------

#[test]
fn no_token_within_the_handshake_timeout_is_closed_with_1008() {
    let server = ServerProcess::start(&["--token", TOKEN, "--handshake-timeout", "1"]);
    // Admitted first, so its deadline (had it one) passes before the silent one's.
    let mut admitted = sql_client(&server);
    let mut silent_sql = connect_with_protocol(&server, "/sql", "hrana2");
    let mut silent_tty = connect_with_protocol(&server, "/tty", "tty");
    assert_eq!(
        close_of(&mut silent_sql),
        (1008, "no right token in time".into())
    );
    assert_eq!(close_of(&mut silent_tty).0, 1008);
    // The admitted client is not held to the deadline.
    admitted
        .send(Message::text(request(
            1,
            json!({"type": "open_stream", "stream_id": 1}),
        )))
        .unwrap();
    let reply = recv_json(&mut admitted);
    assert_eq!(
        (reply["request_id"].clone(), reply["type"].clone()),
        (json!(1), json!("response_ok")),
        "{reply}"
    );
}

// --- 3. The token and a big request in one write ------------------------------------------------

/// hello, open_stream and an execute whose SQL text is ~200 KiB (over the 64 KiB allowed before
/// the token is judged), as masked frames.
fn hello_and_big_select(value: &str) -> Vec<u8> {
    let mut bytes = client_frame(true, 0x1, hello(TOKEN).as_bytes());
    bytes.extend(client_frame(
        true,
        0x1,
        request(1, json!({"type": "open_stream", "stream_id": 1})).as_bytes(),
    ));
    let select =
        json!({"type": "execute", "stream_id": 1, "stmt": {"sql": format!("SELECT '{value}'")}});
    bytes.extend(client_frame(true, 0x1, request(2, select).as_bytes()));
    bytes
}

fn assert_big_select_answered(replies: &[Json], value: &str) {
    assert_eq!(replies[0], json!({"type": "hello_ok"}));
    assert_eq!(replies[1]["type"], "response_ok", "{}", replies[1]);
    assert_eq!(replies[1]["request_id"], 1);
    let reply = &replies[2];
    assert_eq!(reply["type"], "response_ok");
    assert_eq!(reply["request_id"], 2);
    let cell = &reply["response"]["result"]["rows"][0][0];
    assert_eq!(cell["type"], "text");
    assert!(cell["value"].as_str() == Some(value), "wrong value");
}

#[test]
fn hello_and_a_big_request_in_one_write_are_both_answered() {
    let server = ServerProcess::start(&["--token", TOKEN]);
    let value = "x".repeat(200 << 10);

    // After the handshake: the three messages in one write(2).
    let mut ws = connect_with_protocol(&server, "/sql", "hrana2");
    ws.get_mut()
        .write_all(&hello_and_big_select(&value))
        .unwrap();
    let replies: Vec<Json> = (0..3).map(|_| recv_json(&mut ws)).collect();
    assert_big_select_answered(&replies, &value);

    // The request head and the three messages in one write(2), without waiting for the 101.
    let mut s = raw(server.addr);
    let mut bytes = upgrade_request("/sql", "Sec-WebSocket-Protocol: hrana2\r\n").into_bytes();
    bytes.extend(hello_and_big_select(&value));
    s.write_all(&bytes).unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    let mut received = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let frames = loop {
        let frames = server_frames(&received);
        if frames.len() >= 3 {
            break frames;
        }
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "EOF after {} frames", frames.len());
        received.extend_from_slice(&buf[..n]);
    };
    let replies: Vec<Json> = frames
        .iter()
        .map(|(fin, opcode, payload)| {
            assert!(*fin && *opcode == 0x1, "not a whole text message");
            serde_json::from_slice(payload).unwrap()
        })
        .collect();
    assert_big_select_answered(&replies, &value);
}

// --- 5. A message that never finishes -----------------------------------------------------------

fn first_fragment(text: &str) -> Message {
    Message::Frame(Frame::message(
        text.as_bytes().to_vec(),
        OpCode::Data(Data::Text),
        false,
    ))
}

#[test]
fn a_fragment_followed_only_by_pings_is_closed_with_1008() {
    let server = ServerProcess::start(&["--message-stall-timeout", "1"]);

    // Pings keep the connection from being idle, but do not move the message on.
    let mut stalled = connect(&server.ws_url("/echo"));
    set_read_timeout(&stalled, Duration::from_millis(200));
    stalled.send(first_fragment("the start of")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let close = loop {
        assert!(
            Instant::now() < deadline,
            "the stalled message was never cut"
        );
        match stalled.read() {
            Ok(Message::Close(frame)) => break frame.expect("a close code"),
            Ok(Message::Pong(_)) => {}
            Ok(other) => panic!("unexpected {other:?}"),
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                stalled
                    .send(Message::Ping(b"still here".to_vec().into()))
                    .unwrap();
            }
            Err(e) => panic!("no Close frame: {e}"),
        }
    };
    assert_eq!(
        (u16::from(close.code), close.reason.as_str()),
        (1008, "message stalled")
    );

    // A message that keeps coming, a fragment at a time, is never cut, however long it takes
    // in all: here a fragment every 250 ms (well within the stall timeout) for 3 s, three
    // timeouts' worth, then the last one.
    let mut slow = connect(&server.ws_url("/echo"));
    slow.send(first_fragment("0")).unwrap();
    let start = Instant::now();
    let mut expected = String::from("0");
    let mut n = 1;
    while start.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(250));
        let piece = n.to_string();
        slow.send(Message::Frame(Frame::message(
            piece.as_bytes().to_vec(),
            OpCode::Data(Data::Continue),
            false,
        )))
        .unwrap();
        expected.push_str(&piece);
        n += 1;
    }
    slow.send(Message::Frame(Frame::message(
        b"end".to_vec(),
        OpCode::Data(Data::Continue),
        true,
    )))
    .unwrap();
    expected.push_str("end");
    assert_eq!(slow.read().unwrap(), Message::text(expected));
}

// --- 6. What a terminal's shell inherits ----------------------------------------------------------

/// `wsbridge serve` for the real binary, with the terminal's shell given.
fn serve_command(args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_wsbridge"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--db", ":memory:"])
        .args(args);
    command
}

/// The soft and hard `RLIMIT_NOFILE` of a process, from `/proc/PID/limits`.
fn open_files_limit_of(pid: i32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

fn own_open_files_limit() -> libc::rlimit {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one struct rlimit through a pointer to a local.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    limit
}

/// Opens a terminal on the real server with the token.
fn open_terminal(server: &ServerProcess) -> common::tty::Client {
    let mut ws = common::tty::connect(server.addr);
    common::tty::send_init(&mut ws, Some(TOKEN), WinSize { cols: 80, rows: 24 });
    common::tty::Client::new(ws)
}

#[test]
fn the_shell_gets_neither_the_token_nor_the_raised_file_limit() {
    let hard = own_open_files_limit().rlim_max;
    // The server starts with a soft limit below its hard one, so it raises its own.
    let soft = 512.min(hard);
    assert!(
        soft < hard,
        "cannot test: the hard open-file limit is {hard}"
    );
    let mut command = serve_command(&["--shell", "/bin/sh"]);
    command.env("WSBRIDGE_TOKEN", TOKEN);
    // SAFETY: setrlimit is async-signal-safe and only touches the child's own limits.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let server = ServerProcess::spawn(command);
    // The token came from the environment, and the server raised its own limit.
    assert_eq!(server.token(), "");
    assert_eq!(open_files_limit_of(server.pid()), (hard, hard));

    let mut term = open_terminal(&server);
    // The command line's echo shows the expansions, not their values: ":42" appears only in
    // the output.
    term.input(b"printf 'T=%s:%s\\n' \"${WSBRIDGE_TOKEN:-none}\" \"$((40+2))\"\r");
    term.wait_for(":42");
    let text = term.text();
    assert!(text.contains("T=none:42"), "{text:?}");
    assert!(
        !text.contains(TOKEN),
        "the token reached the shell: {text:?}"
    );
    assert_eq!(u64::from(term.ask_number("N", "$(ulimit -n)")), soft);
    // What the shell runs inherits the same.
    assert_eq!(
        term.ask_number("E", "$(env | grep -c '^WSBRIDGE_TOKEN=')"),
        0
    );
}

// --- 7. A second interrupt ends everything --------------------------------------------------------

/// Live (not zombie) processes whose process group is `pgid`.
fn live_members_of_group(pgid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // state, ppid, pgrp
        if fields[0] != "Z" && fields[2] == pgid.to_string() {
            found.push(pid);
        }
    }
    found
}

/// Several terminals whose shells ignore SIGHUP and SIGTERM: the first SIGINT starts a graceful
/// shutdown (their clients never answer the Close), the second one ends the process and every
/// shell's process group with it.
#[test]
fn a_second_sigint_exits_even_when_the_shells_ignore_hangups() {
    // Long close and shutdown timeouts: without the second interrupt, the process would stay
    // far longer than the test waits for it.
    let mut server = ServerProcess::start(&[
        "--token",
        TOKEN,
        "--shell",
        "/bin/sh",
        "--close-timeout",
        "120",
        "--shutdown-timeout",
        "120",
    ]);
    let mut terms: Vec<_> = (0..4).map(|_| open_terminal(&server)).collect();
    let mut shells = Vec::new();
    for term in &mut terms {
        let shell = term.shell_pid();
        // No job control, so what the shell runs stays in its process group; SIGHUP and
        // SIGTERM ignored by the shell and (inherited) by its children.
        term.input(b"set +m; trap '' HUP TERM; echo READY=$((6*7)):; while :; do sleep 1; done\r");
        term.wait_for("READY=42:");
        assert!(!live_members_of_group(shell).is_empty());
        shells.push(shell);
    }

    server.signal(libc::SIGINT);
    // The first interrupt was handled: the clients are told the server is going away. (They
    // do not answer the Close, so the connections, and the shells, would stay for the close
    // timeout.)
    for term in &mut terms {
        loop {
            match term.ws.read() {
                Ok(Message::Close(Some(frame))) => {
                    assert_eq!(u16::from(frame.code), 1001);
                    break;
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(e) => panic!("no Close 1001: {e}"),
            }
        }
    }
    server.signal(libc::SIGINT);
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("the server exited after the second SIGINT");
    assert!(status.success(), "{status:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<_> = shells
            .iter()
            .map(|&shell| (shell, live_members_of_group(shell)))
            .filter(|(_, members)| !members.is_empty())
            .collect();
        if left.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            // Do not leave them running after the test.
            for (shell, _) in &left {
                // SAFETY: kill(2) on a process group; no memory is involved.
                unsafe { libc::kill(-(*shell as i32), libc::SIGKILL) };
            }
            panic!("shells' process groups outlived the server: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
