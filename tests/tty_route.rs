//! The terminal route over a real socket, with `tungstenite` as the client (issue 4's tests).

mod common;

use std::time::Duration;

use common::tty::*;
use wsbridge::routes::tty::proto::ClientMessage;
use wsbridge::routes::tty::sys::WinSize;

#[test]
fn shell_computes() {
    let server = TestServer::start(Options::default());
    let mut client = open_session(server.addr);
    client.input(b"echo $((6*7))\r");
    client.wait_for("42\r\n");
    assert!(client.title.as_deref().unwrap().starts_with("/bin/sh"));
    assert_eq!(client.preferences.as_deref(), Some("{}"));
}

#[test]
fn resize_then_stty_size() {
    let server = TestServer::start(Options::default());
    let mut client = open_session(server.addr);
    send(
        &mut client.ws,
        &ClientMessage::Resize(WinSize {
            cols: 100,
            rows: 30,
        }),
    );
    client.input(b"stty size\r");
    client.wait_for("30 100");
}

#[test]
fn initial_size_comes_from_the_first_message() {
    let server = TestServer::start(Options::default());
    let mut ws = connect(server.addr);
    send_init(&mut ws, Some(TOKEN), WinSize { cols: 91, rows: 17 });
    let mut client = Client::new(ws);
    client.input(b"stty size\r");
    client.wait_for("17 91");
}

#[test]
fn exit_closes_1000_with_the_status() {
    let server = TestServer::start(Options::default());
    let mut client = open_session(server.addr);
    client.input(b"echo bye; exit 3\r");
    assert_eq!(client.wait_close(), (1000, "exit 3".into()));
    assert!(client.text().contains("bye"));
}

#[test]
fn killed_shell_reports_the_signal() {
    let server = TestServer::start(Options::default());
    let mut client = open_session(server.addr);
    client.input(b"kill -9 $$\r");
    assert_eq!(client.wait_close(), (1000, "signal 9".into()));
}

#[test]
fn all_output_is_flushed_before_the_close() {
    let server = TestServer::start(Options {
        program: "sh".into(),
        args: vec!["-c".into(), "seq 1 200000; exit 0".into()],
        ..Options::default()
    });
    let mut client = open_session(server.addr);
    assert_eq!(client.wait_close(), (1000, "exit 0".into()));
    assert!(client.text().ends_with("199999\r\n200000\r\n"));
}

#[test]
fn disconnect_kills_the_shell_and_reaps_it() {
    let server = TestServer::start(Options::default());
    let mut client = open_session(server.addr);
    let pid = client.shell_pid();
    assert!(process_exists(pid));
    // An abrupt disconnect: no close frame.
    drop(client);
    wait_gone(pid, Duration::from_secs(10));
    drop(server);
}

#[test]
fn disconnect_with_a_close_frame_kills_the_shell() {
    let server = TestServer::start(Options::default());
    let mut client = open_session(server.addr);
    // A background job in the same process group goes too.
    client.input(b"sleep 1000 &\r");
    let job = client.ask_number("JOB", "$!");
    let pid = client.shell_pid();
    client.ws.close(None).unwrap();
    while client.poll() {}
    wait_gone(pid, Duration::from_secs(10));
    // The job is reparented once the shell is gone; it must be killed all the same.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(format!("/proc/{job}/stat")).is_ok_and(|s| !s.contains(") Z ")) {
        assert!(
            std::time::Instant::now() < deadline,
            "background job {job} survived"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn wrong_or_missing_token_is_refused_and_nothing_runs() {
    let server = TestServer::start(Options::default());
    let before = children().len();
    let mut ws = connect(server.addr);
    send_init(&mut ws, Some("wrong"), WinSize::default());
    let mut client = Client::new(ws);
    assert_eq!(client.wait_close(), (1008, "authentication failed".into()));

    let mut ws = connect(server.addr);
    send_init(&mut ws, None, WinSize::default());
    assert_eq!(Client::new(ws).wait_close().0, 1008);

    // Input before the init message is refused too.
    let mut ws = connect(server.addr);
    send(&mut ws, &ClientMessage::Input(b"id\r"));
    assert_eq!(Client::new(ws).wait_close().0, 1008);
    assert!(children().len() <= before);
}

#[test]
fn bearer_header_or_no_auth_lets_in_without_a_token() {
    let server = TestServer::start(Options::default());
    let auth = format!("Bearer {TOKEN}");
    let mut ws = connect_with(server.addr, "/tty", &[("Authorization", &auth)]).unwrap();
    send_init(&mut ws, None, WinSize::default());
    let mut client = Client::new(ws);
    client.input(b"echo in$((1+1))\r");
    client.wait_for("in2");

    let server = TestServer::start(Options {
        token: None,
        ..Options::default()
    });
    let mut ws = connect(server.addr);
    send_init(&mut ws, None, WinSize::default());
    let mut client = Client::new(ws);
    client.input(b"echo open$((1+2))\r");
    client.wait_for("open3");
}

#[test]
fn subprotocol_on_root_path_selects_the_terminal() {
    let server = TestServer::start(Options::default());
    let mut ws = connect_with(server.addr, "/", &[]).unwrap();
    send_init(&mut ws, Some(TOKEN), WinSize::default());
    let mut client = Client::new(ws);
    client.input(b"echo root$((2*2))\r");
    client.wait_for("root4");
}

#[test]
fn foreign_origin_is_refused_before_the_upgrade() {
    let server = TestServer::start(Options::default());
    let err = connect_with(server.addr, "/tty", &[("Origin", "http://evil.example")]).unwrap_err();
    assert_eq!(err, "HTTP 403");
    let origin = format!("http://{}", server.addr);
    assert!(connect_with(server.addr, "/tty", &[("Origin", &origin)]).is_ok());
}

#[test]
fn read_only_ignores_input() {
    let server = TestServer::start(Options {
        program: "cat".into(),
        read_only: true,
        ..Options::default()
    });
    let mut client = open_session(server.addr);
    client.input(b"typed\r");
    for _ in 0..5 {
        client.poll();
    }
    assert_eq!(
        client.preferences.as_deref(),
        Some(r#"{"disableStdin":true}"#)
    );
    assert!(!client.text().contains("typed"), "{:?}", client.text());
}

#[test]
fn shutdown_sends_1001_and_hangs_up() {
    let mut server = TestServer::start(Options::default());
    let mut client = open_session(server.addr);
    let pid = client.shell_pid();
    let stopper = std::thread::spawn(move || {
        server.stop();
        server
    });
    assert_eq!(client.wait_close().0, 1001);
    while client.poll() {}
    drop(stopper.join().unwrap());
    wait_gone(pid, Duration::from_secs(10));
}

#[test]
fn page_and_assets_are_served_with_security_headers() {
    let server = TestServer::start(Options::default());
    let (head, body) = http_get(server.addr, "/?token=abc");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("content-type: text/html"), "{head}");
    assert!(lower.contains("referrer-policy: no-referrer"), "{head}");
    assert!(
        lower.contains("content-security-policy: frame-ancestors 'none'"),
        "{head}"
    );
    assert!(String::from_utf8_lossy(&body).contains("assets/app.js"));
    for path in [
        "/assets/app.js",
        "/assets/xterm.mjs",
        "/assets/addon-fit.mjs",
        "/assets/xterm.css",
        "/assets/style.css",
    ] {
        let (head, body) = http_get(server.addr, path);
        assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
        assert!(!body.is_empty());
    }
    let (head, _) = http_get(server.addr, "/assets/nope.js");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
}
