//! Golden-output tests of `wsbridge dissect`: the RFC's §5.7 frames, a close frame, each class
//! of violation, handshakes, and the `--encode` round trip. The expected output lives in
//! `tests/golden/NAME.txt`; after an intended change to the output, regenerate them with
//! `UPDATE_GOLDEN=1 cargo test --release --test dissect` and review the diff.

use std::path::PathBuf;
use std::process::Command;

fn dissect(args: &[&str], stdin: Option<&str>) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wsbridge"));
    command.arg("dissect").args(args);
    let output = if let Some(input) = stdin {
        use std::io::Write;
        let mut child = command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("run wsbridge dissect");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    } else {
        command.output().expect("run wsbridge dissect")
    };
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{name}.txt"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} is missing: run with UPDATE_GOLDEN=1", path.display()));
    assert_eq!(
        actual,
        expected,
        "output of {name} differs from {}",
        path.display()
    );
}

#[test]
fn rfc_5_7_single_frame_unmasked_text() {
    golden(
        "rfc-5-7-unmasked-text",
        &dissect(&["81 05 48 65 6c 6c 6f"], None),
    );
}

#[test]
fn rfc_5_7_single_frame_masked_text() {
    golden(
        "rfc-5-7-masked-text",
        &dissect(
            &["0x81,0x85,0x37,0xfa,0x21,0x3d,0x7f,0x9f,0x4d,0x51,0x58"],
            None,
        ),
    );
}

#[test]
fn rfc_5_7_fragmented_unmasked_text() {
    golden(
        "rfc-5-7-fragmented-text",
        &dissect(&["--role", "server", "01 03 48 65 6c", "80 02 6c 6f"], None),
    );
}

#[test]
fn rfc_5_7_ping_and_pong() {
    let out = dissect(&["89 05 48 65 6c 6c 6f"], None)
        + &dissect(&["8a 85 37 fa 21 3d 7f 9f 4d 51 58"], None);
    golden("rfc-5-7-ping-pong", &out);
}

#[test]
fn rfc_5_7_extended_lengths() {
    let mut hex = String::from("82 7E 01 00");
    hex.push_str(&" 61".repeat(256));
    let mut out = dissect(&["--max-payload", "8", &hex], None);
    let mut hex = String::from("82 7F 00 00 00 00 00 01 00 00");
    hex.push_str(&" 62".repeat(65536));
    out += &dissect(&["--max-payload", "8"], Some(&hex));
    golden("rfc-5-7-extended-lengths", &out);
}

#[test]
fn close_frame_with_code_and_reason() {
    let encoded = dissect(
        &[
            "--encode",
            "--close",
            "1001",
            "--reason",
            "going away",
            "--mask",
            "0a0b0c0d",
        ],
        None,
    );
    golden("close-1001", &encoded);
}

#[test]
fn each_class_of_violation_is_explained() {
    let cases: &[(&str, &[&str])] = &[
        ("rsv1-set", &["c1 80 00 00 00 00"]),
        ("reserved-opcode", &["83 80 00 00 00 00"]),
        (
            "unmasked-client-frame",
            &["--role", "client", "81 02 68 69"],
        ),
        (
            "masked-server-frame",
            &["--role", "server", "81 82 00 00 00 00 68 69"],
        ),
        ("non-minimal-length", &["82 fe 00 02 00 00 00 00 61 62"]),
        (
            "length-msb-set",
            &["82 ff 80 00 00 00 00 00 00 00 00 00 00 00"],
        ),
        ("fragmented-control", &["09 80 00 00 00 00"]),
        (
            "control-too-long",
            &[
                "--max-payload",
                "4",
                &format!("89 fe 00 7e 00 00 00 00{}", " 00".repeat(126)),
            ],
        ),
        ("invalid-utf8", &["81 84 00 00 00 00 ce ba ed a0"]),
        ("bad-close-code", &["88 82 00 00 00 00 03 ed"]),
        ("one-byte-close", &["88 81 00 00 00 00 03"]),
        ("continuation-without-start", &["80 80 00 00 00 00"]),
        ("truncated", &["82 85 00 00 00 00 01 02"]),
        ("truncated-header", &["82 fe 00"]),
    ];
    let mut all = String::new();
    for (name, args) in cases {
        all += &format!("### {name}\n");
        all += &dissect(args, None);
        all.push('\n');
    }
    golden("violations", &all);
}

#[test]
fn handshake_request_and_response() {
    let request = "GET /chat HTTP/1.1\nHost: server.example.com\nUpgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nOrigin: http://example.com\nSec-WebSocket-Protocol: chat, superchat\nSec-WebSocket-Version: 13\n\n";
    let response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n";
    let out = dissect(&["--handshake"], Some(request))
        + "\n"
        + &dissect(
            &["--handshake", "--key", "dGhlIHNhbXBsZSBub25jZQ=="],
            Some(response),
        )
        + "\n"
        + &dissect(
            &["--handshake"],
            Some(&request.replace("Version: 13", "Version: 8")),
        );
    golden("handshake-rfc-1-2", &out);
}

#[test]
fn encode_reproduces_rfc_5_7_and_round_trips() {
    let out = dissect(&["--encode", "--text", "Hello", "--mask", "37fa213d"], None);
    assert_eq!(out.lines().next(), Some("81 85 37 fa 21 3d 7f 9f 4d 51 58"));
    let out = dissect(&["--encode", "--text", "Hello"], None);
    assert_eq!(out.lines().next(), Some("81 05 48 65 6c 6c 6f"));
    let out = dissect(&["--encode", "--text", "Hel", "--no-fin"], None);
    assert_eq!(out.lines().next(), Some("01 03 48 65 6c"));
    let out = dissect(&["--encode", "--pong", "Hello", "--mask", "37fa213d"], None);
    assert_eq!(out.lines().next(), Some("8a 85 37 fa 21 3d 7f 9f 4d 51 58"));
    // The printed bytes, dissected again, give back the same fields.
    let encoded = dissect(
        &[
            "--encode", "--binary", "00ff10", "--mask", "01020304", "--rsv", "4",
        ],
        None,
    );
    let bytes = encoded.lines().next().unwrap();
    let again = dissect(&[bytes], None);
    assert_eq!(encoded.split_once("\n\n").unwrap().1, again);
    assert!(again.contains("Unmasked payload: 00 ff 10"), "{again}");
    assert!(again.contains(".100 .... = Reserved: 0x4"), "{again}");
}
