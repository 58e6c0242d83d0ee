//! ttyd compatibility, against the real binary: its WebSocket path `/ws`, its `/token`
//! endpoint (HTTP Basic with the token as the password, as ttyd's `-c`), its client options
//! (`--client-option`, ttyd's `-t`) in the preferences message, and its session flags
//! (`--term`, `--signal`, `--max-sessions`, `--once`, `--exit-no-conn`).
//!
//! The client writes ttyd's messages as ttyd's own frontend does (`xterm/index.ts`): the
//! first message is the JSON `{"AuthToken","columns","rows"}` as bytes, input is `'0'`
//! followed by the bytes typed.

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::ServerProcess;
use common::http::HttpConn;
use common::tty::{Client, Ws, connect_with};
use serde_json::{Value as Json, json};
use tungstenite::Message;

/// What ttyd's frontend sends first.
fn ttyd_init(ws: &mut Ws, token: &str) {
    let init = json!({"AuthToken": token, "columns": 80, "rows": 24}).to_string();
    ws.send(Message::Binary(init.into_bytes().into()))
        .expect("send the init message");
}

fn ttyd_input(client: &mut Client, text: &str) {
    let mut message = vec![b'0'];
    message.extend_from_slice(text.as_bytes());
    client
        .ws
        .send(Message::Binary(message.into()))
        .expect("send input");
}

fn basic(user: &str, password: &str) -> String {
    let pair = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

#[test]
fn a_ttyd_client_gets_its_token_from_slash_token_and_a_shell_on_slash_ws() {
    let server = ServerProcess::start(&[
        "--shell",
        "/bin/sh",
        "--term",
        "vt220",
        "--client-option",
        "fontSize=17",
        "--client-option",
        r##"theme={"background":"#101010"}"##,
        "--client-option",
        "titleFixed=build box",
    ]);
    let token = server.token();
    let mut http = HttpConn::connect(server.addr);
    // No credentials: 401 asking for Basic, which makes a browser prompt.
    let refused = http.request("GET", "/token", &[], b"");
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.header("WWW-Authenticate"),
        Some(r#"Basic realm="wsbridge", charset="UTF-8""#)
    );
    // The token as the password, any user name, as ttyd's `-c user:password` clients send it.
    let mut http = HttpConn::connect(server.addr);
    let auth = basic("anyone", &token);
    let answer = http.request("GET", "/token", &[("Authorization", &auth)], b"");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("Cache-Control"), Some("no-store"));
    let body: Json = serde_json::from_str(&answer.text()).expect("JSON");
    assert_eq!(body, json!({ "token": token }));
    // A wrong password is judged like a wrong bearer token: 401.
    let mut http = HttpConn::connect(server.addr);
    let wrong = basic("anyone", "not-the-token-0123456789abcdef");
    let refused = http.request("GET", "/token", &[("Authorization", &wrong)], b"");
    assert_eq!(refused.status, 401);

    let mut ws = connect_with(server.addr, "/ws", &[]).expect("upgrade on /ws");
    ttyd_init(&mut ws, body["token"].as_str().expect("a string"));
    let mut client = Client::new(ws);
    ttyd_input(&mut client, "echo T=$TERM.\r");
    client.wait_for("T=vt220.");
    let preferences: Json =
        serde_json::from_str(client.preferences.as_deref().expect("preferences")).expect("JSON");
    assert_eq!(
        preferences,
        json!({"fontSize": 17, "theme": {"background": "#101010"}, "titleFixed": "build box"})
    );
}

#[test]
fn max_sessions_refuses_the_next_terminal_until_one_ends() {
    let server = ServerProcess::start(&["--shell", "/bin/sh", "--max-sessions", "1"]);
    let token = server.token();
    let mut first = Client::new(connect_with(server.addr, "/ws", &[]).expect("first"));
    ttyd_init(&mut first.ws, &token);
    ttyd_input(&mut first, "echo first-$((6*7))\r");
    first.wait_for("first-42");
    let refused = connect_with(server.addr, "/tty", &[]).expect_err("a second session");
    assert_eq!(refused, "HTTP 503");
    ttyd_input(&mut first, "exit\r");
    assert_eq!(first.wait_close().0, 1000);
    // The slot is given back when the program is gone.
    let mut second = None;
    for _ in 0..100 {
        if let Ok(ws) = connect_with(server.addr, "/tty", &[]) {
            second = Some(ws);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut second = Client::new(second.expect("a session once the first ended"));
    ttyd_init(&mut second.ws, &token);
    ttyd_input(&mut second, "echo second-$((6*7))\r");
    second.wait_for("second-42");
}

#[test]
fn once_serves_one_session_then_the_server_exits() {
    let mut server = ServerProcess::start(&["--shell", "/bin/sh", "--once"]);
    let mut client = Client::new(connect_with(server.addr, "/ws", &[]).expect("upgrade"));
    ttyd_init(&mut client.ws, &server.token());
    ttyd_input(&mut client, "echo only-$((6*7))\r");
    client.wait_for("only-42");
    assert_eq!(
        connect_with(server.addr, "/ws", &[]).expect_err("a second one"),
        "HTTP 503"
    );
    ttyd_input(&mut client, "exit 3\r");
    assert_eq!(client.wait_close(), (1000, "exit 3".into()));
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("the server exits after its one session");
    assert!(status.success(), "{status:?}");
}

#[test]
fn exit_no_conn_waits_for_the_last_session() {
    let mut server = ServerProcess::start(&["--shell", "/bin/sh", "--exit-no-conn"]);
    let token = server.token();
    let mut clients: Vec<Client> = (0..2)
        .map(|i| {
            let mut client = Client::new(connect_with(server.addr, "/ws", &[]).expect("upgrade"));
            ttyd_init(&mut client.ws, &token);
            ttyd_input(&mut client, &format!("echo up-{i}-$((6*7))\r"));
            client.wait_for(&format!("up-{i}-42"));
            client
        })
        .collect();
    let mut last = clients.pop().expect("two");
    drop(clients); // the first client goes away without a word: its shell is hung up
    // The server is still there for the other one.
    ttyd_input(&mut last, "echo still-$((6*7))\r");
    last.wait_for("still-42");
    ttyd_input(&mut last, "exit\r");
    assert_eq!(last.wait_close().0, 1000);
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("the server exits when the last session ended");
    assert!(status.success(), "{status:?}");
}

#[test]
fn the_hang_up_signal_is_the_one_given() {
    let dir = std::env::temp_dir().join(format!("wsbridge-ttyd-signal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let mark = dir.join("got");
    // The program says which signal reached it, in a file, then exits.
    let script = format!(
        "trap 'echo USR1 > {m}; exit 0' USR1; trap 'echo HUP > {m}; exit 0' HUP; \
         echo ready-$((6*7)); while :; do sleep 0.05; done",
        m = mark.display()
    );
    let server = ServerProcess::start(&[
        "--shell", "/bin/sh", "--signal", "USR1", "--", "-c", &script,
    ]);
    let mut client = Client::new(connect_with(server.addr, "/ws", &[]).expect("upgrade"));
    ttyd_init(&mut client.ws, &server.token());
    client.wait_for("ready-42");
    drop(client);
    let mut got = String::new();
    for _ in 0..250 {
        got = std::fs::read_to_string(&mark).unwrap_or_default();
        if !got.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(got.trim(), "USR1");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
