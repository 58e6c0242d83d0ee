//! Graceful shutdown with a client on every route: SIGTERM sends Close 1001 to each, in-flight
//! work ends, the terminal's shell is hung up and reaped, and the process exits 0.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tungstenite::Message;
use tungstenite::client::IntoClientRequest;

type Ws = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

fn connect_with_protocol(url: &str, protocol: &str) -> Ws {
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    let (ws, _) = tungstenite::connect(request).expect("connect");
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    }
    ws
}

/// Read until a Close arrives; its code.
fn close_code_of(ws: &mut Ws) -> u16 {
    loop {
        match ws.read() {
            Ok(Message::Close(Some(frame))) => return frame.code.into(),
            Ok(Message::Close(None)) => return 1005,
            Ok(_) => continue,
            Err(e) => panic!("no Close frame: {e}"),
        }
    }
}

#[test]
fn sigterm_closes_every_route_with_1001_and_exits_zero() {
    let token = "shutdown-test-token-0123456789";
    let mut server = ServerProcess::start(&["--token", token, "--shell", "/bin/sh"]);

    let mut echo = connect(&server.ws_url("/echo"));
    echo.send(Message::text("ping")).unwrap();
    assert_eq!(echo.read().unwrap(), Message::text("ping"));

    let mut sql = connect_with_protocol(&server.ws_url("/"), "hrana2");
    sql.send(Message::text(format!(
        r#"{{"type":"hello","jwt":"{token}"}}"#
    )))
    .unwrap();
    let hello: serde_json::Value =
        serde_json::from_str(sql.read().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(hello["type"], "hello_ok");
    sql.send(Message::text(
        r#"{"type":"request","request_id":1,"request":{"type":"open_stream","stream_id":1}}"#,
    ))
    .unwrap();
    sql.send(Message::text(
        r#"{"type":"request","request_id":2,"request":{"type":"execute","stream_id":1,"stmt":{"sql":"BEGIN"}}}"#,
    ))
    .unwrap();

    let mut tty = connect_with_protocol(&server.ws_url("/"), "tty");
    tty.send(Message::binary(
        format!(r#"{{"AuthToken":"{token}","columns":80,"rows":24}}"#).into_bytes(),
    ))
    .unwrap();
    let mut input = b"0".to_vec();
    input.extend_from_slice(b"echo PID=$$\r");
    tty.send(Message::binary(input)).unwrap();
    let mut output = String::new();
    let start = Instant::now();
    let shell_pid: i32 = loop {
        if let Message::Binary(data) = tty.read().unwrap()
            && data.first() == Some(&b'0')
        {
            output.push_str(&String::from_utf8_lossy(&data[1..]));
        }
        if let Some(pid) = output
            .split("PID=")
            .nth(2)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|digits| digits.parse().ok())
        {
            break pid;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no pid in {output:?}"
        );
    };
    assert!(std::path::Path::new(&format!("/proc/{shell_pid}")).exists());

    server.signal(libc::SIGTERM);
    assert_eq!(close_code_of(&mut echo), 1001);
    assert_eq!(close_code_of(&mut sql), 1001);
    assert_eq!(close_code_of(&mut tty), 1001);
    // The clients answer the Close (tungstenite does on the next write or flush).
    for ws in [&mut echo, &mut sql, &mut tty] {
        let _ = ws.flush();
    }
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("the server exited");
    assert!(status.success(), "{status:?}");
    assert!(
        !std::path::Path::new(&format!("/proc/{shell_pid}")).exists(),
        "the shell {shell_pid} was left behind"
    );
}
