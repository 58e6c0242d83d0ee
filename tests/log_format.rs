//! `--log-format json`: every line the server logs is one JSON object a log shipper can read.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::ServerProcess;

#[test]
fn json_logs_are_one_object_per_line() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wsbridge"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--db", ":memory:"])
        .args(["--token", "log-format-test-token-0123456789"])
        .args(["--log-format", "json"]);
    let mut server = ServerProcess::spawn_with_stderr(command, Stdio::piped());
    // Something worth a warning (the tests log at warn): a wrong token.
    let mut conn = common::http::HttpConn::connect(server.addr);
    let response = conn.request(
        "POST",
        "/v2/pipeline",
        &[(
            "Authorization",
            "Bearer a-wrong-token-for-the-log-0123456789",
        )],
        br#"{"requests":[]}"#,
    );
    assert_eq!(response.status, 401);
    drop(conn);
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(20)).is_some());
    let mut log = String::new();
    server
        .child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut log)
        .expect("read the log");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
        .collect();
    assert!(!lines.is_empty(), "{log}");
    for line in &lines {
        for field in ["ts", "level", "target", "msg"] {
            assert!(line[field].is_string(), "{field} in {line}");
        }
    }
    assert!(
        lines.iter().any(|l| l["level"] == "WARN"
            && l["target"] == "wsbridge::auth"
            && l["msg"].as_str().is_some_and(|m| m.contains("wrong token"))),
        "{log}"
    );
}
