//! `wsbridge dissect --handshake`: an upgrade request or response annotated header by header
//! with what RFC 6455 §4 asks of it, and the `Sec-WebSocket-Accept` the key implies.

use std::fmt::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::http::Refusal;
use crate::protocol::handshake::accept_key;
use crate::protocol::handshake::server::validate_upgrade;
use crate::protocol::http::{HeadLimits, list_tokens, parse_request};

/// Dissect an HTTP request or response head. Bare `\n` line ends (as pasted from a terminal)
/// are read as `\r\n`. `key`: for a response, the `Sec-WebSocket-Key` that was sent.
pub fn dissect_handshake(text: &str, key: Option<&str>) -> String {
    let mut out = String::new();
    let normalized = normalize(text);
    if normalized.starts_with("HTTP/") {
        dissect_response(&normalized, key, &mut out);
    } else {
        dissect_request(&normalized, &mut out);
    }
    out
}

fn normalize(text: &str) -> String {
    let mut s = text.replace("\r\n", "\n").replace('\n', "\r\n");
    if !s.ends_with("\r\n\r\n") {
        s = s.trim_end_matches("\r\n").to_string() + "\r\n\r\n";
    }
    s
}

/// What §4 says of a request header (§4.1 for what a client sends, §4.2.1 for what a server
/// checks).
fn request_note(name: &str, value: &str) -> String {
    match name.to_ascii_lowercase().as_str() {
        "host" => "required (§4.1 item 4, §4.2.1 item 2): the server's authority; wsbridge also refuses names it does not answer to (DNS rebinding)".into(),
        "upgrade" => {
            let ok = list_tokens(value).any(|t| t.eq_ignore_ascii_case("websocket"));
            format!("must contain \"websocket\", any case (§4.2.1 item 3): {}", if ok { "yes" } else { "NO" })
        }
        "connection" => {
            let ok = list_tokens(value).any(|t| t.eq_ignore_ascii_case("upgrade"));
            format!("must contain the token \"Upgrade\", any case (§4.2.1 item 4): {}", if ok { "yes" } else { "NO" })
        }
        "sec-websocket-key" => {
            let mut decoded = [0u8; 32];
            match BASE64.decode_slice(value, &mut decoded) {
                Ok(16) => "a random 16-byte nonce in base64 (§4.1 item 7): 16 bytes, valid".into(),
                Ok(n) => format!("must decode to 16 bytes (§4.2.1 item 5): decodes to {n}, INVALID"),
                Err(_) => "must be base64 of 16 bytes (§4.2.1 item 5): not base64, INVALID".into(),
            }
        }
        "sec-websocket-version" => {
            if value == "13" {
                "must be 13 (§4.1 item 9): yes".into()
            } else {
                "must be 13 (§4.1 item 9): NO, a server answers 426 with Sec-WebSocket-Version: 13 (§4.4)".into()
            }
        }
        "origin" => "sent by browsers (§4.1 item 8); a server may refuse foreign origins with 403 (§10.2), wsbridge does".into(),
        "sec-websocket-protocol" => format!(
            "subprotocols offered, in preference order (§4.1 item 10): {}; the server picks at most one",
            list_tokens(value).collect::<Vec<_>>().join(", ")
        ),
        "sec-websocket-extensions" => {
            super::extensions::explain(value, super::extensions::Side::Offer).join("\n      ")
        }
        "authorization" => "credentials (value not shown); wsbridge accepts `Bearer <token>` for the SQL route".into(),
        _ => "not used by RFC 6455".into(),
    }
}

fn dissect_request(text: &str, out: &mut String) {
    let head = match parse_request(text.as_bytes(), &HeadLimits::default()) {
        Ok(Some((head, _))) => head,
        Ok(None) => {
            let _ = writeln!(out, "incomplete request head: no blank line ends it");
            return;
        }
        Err(e) => {
            let _ = writeln!(
                out,
                "not a valid HTTP request head: {e} (answered with HTTP {})",
                Refusal::from(e).status()
            );
            return;
        }
    };
    let _ = writeln!(out, "Opening handshake, client request (RFC 6455 §4.1)");
    let _ = writeln!(
        out,
        "  Request line: {} {} HTTP/1.{}  (must be a GET of HTTP/1.1 or higher: §4.1 item 2)",
        head.method, head.target, head.minor_version
    );
    for header in &head.headers {
        let value = if header.name.eq_ignore_ascii_case("authorization") {
            "<redacted>"
        } else {
            header.value
        };
        let _ = writeln!(out, "  {}: {value}", header.name);
        let _ = writeln!(out, "      {}", request_note(header.name, header.value));
    }
    if let Some(key) = head.header("Sec-WebSocket-Key") {
        let accept = accept_key(key);
        let _ = writeln!(
            out,
            "\n  Expected Sec-WebSocket-Accept: {}\n      = base64(SHA-1(key + \"258EAFA5-E914-47DA-95CA-C5AB0DC85B11\")) (§1.3, §4.2.2 item 5.4)",
            String::from_utf8_lossy(&accept)
        );
    }
    match validate_upgrade(&head) {
        Ok(_) => {
            let _ = writeln!(
                out,
                "\n  Verdict: a valid upgrade request; a server answers 101 Switching Protocols"
            );
        }
        Err(e) => {
            let _ = writeln!(out, "\n  Verdict: refused with HTTP {}: {e}", e.status());
        }
    }
}

fn dissect_response(text: &str, key: Option<&str>, out: &mut String) {
    let mut lines = text.trim_end_matches("\r\n").split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let _ = writeln!(out, "Opening handshake, server response (RFC 6455 §4.2.2)");
    let status_ok = status_line.split(' ').nth(1) == Some("101");
    let _ = writeln!(
        out,
        "  Status line: {status_line}  (101 completes the handshake; anything else means no WebSocket: §4.1, §4.2.2): {}",
        if status_ok { "yes" } else { "NO" }
    );
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            let _ = writeln!(out, "  {line}\n      not a header line");
            continue;
        };
        let value = value.trim();
        let note = match name.to_ascii_lowercase().as_str() {
            "upgrade" => {
                "must be \"websocket\" (§4.2.2 item 5.2; the client checks: §4.1)".to_string()
            }
            "connection" => "must contain \"Upgrade\" (§4.2.2 item 5.3)".to_string(),
            "sec-websocket-accept" => match key {
                Some(key) => {
                    let expected = accept_key(key);
                    if value.as_bytes() == expected {
                        format!("matches the key {key}: yes (§4.1: the client checks it)")
                    } else {
                        format!(
                            "must be {} for the key {key}: NO, the client fails the connection",
                            String::from_utf8_lossy(&expected)
                        )
                    }
                }
                None => "base64(SHA-1(the request's key + GUID)); give --key KEY to check it"
                    .to_string(),
            },
            "sec-websocket-protocol" => {
                "the one subprotocol chosen; it must be one the client offered (§4.1)".to_string()
            }
            "sec-websocket-extensions" => {
                super::extensions::explain(value, super::extensions::Side::Answer).join("\n      ")
            }
            "sec-websocket-version" => {
                "the versions the server speaks, sent with 426 (§4.4)".to_string()
            }
            _ => "not used by RFC 6455".to_string(),
        };
        let _ = writeln!(out, "  {name}: {value}\n      {note}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_with_bare_newlines_is_read() {
        let text = "GET /chat HTTP/1.1\nHost: server.example.com\nUpgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13\n";
        let out = dissect_handshake(text, None);
        assert!(
            out.contains("Expected Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "{out}"
        );
        assert!(out.contains("Verdict: a valid upgrade request"), "{out}");
    }

    #[test]
    fn response_accept_is_checked_against_the_key() {
        let text = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        let out = dissect_handshake(text, Some("dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(out.contains("matches the key"), "{out}");
        let out = dissect_handshake(text, Some("AAAAAAAAAAAAAAAAAAAAAA=="));
        assert!(out.contains("NO, the client fails"), "{out}");
    }
}
