//! Writing HTTP/1.1 responses (RFC 9112 §4, §6).

use std::io::Write;

/// The reason phrase of the statuses this server sends (RFC 9110 §15).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Write a complete response with a body, after which the server closes the connection.
/// With `with_body` false (a `HEAD`), the fields say what the body would be and none follows
/// (RFC 9110 §9.3.2).
pub fn write_response(
    out: &mut Vec<u8>,
    status: u16,
    fields: &[(&str, &str)],
    content_type: &str,
    body: &[u8],
    with_body: bool,
) {
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {status} {}\r\nServer: wsbridge/{}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reason_phrase(status),
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    for (name, value) in fields {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if with_body {
        out.extend_from_slice(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_and_body() {
        let mut out = Vec::new();
        write_response(
            &mut out,
            404,
            &[("X-A", "b")],
            "text/plain",
            b"gone\n",
            true,
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{text}");
        assert!(text.contains("\r\nContent-Length: 5\r\n"));
        assert!(text.contains("\r\nX-A: b\r\n"));
        assert!(text.ends_with("\r\n\r\ngone\n"));
        let mut head_only = Vec::new();
        write_response(&mut head_only, 200, &[], "text/plain", b"body", false);
        let text = String::from_utf8(head_only).unwrap();
        assert!(text.contains("Content-Length: 4\r\n") && text.ends_with("\r\n\r\n"));
    }
}
