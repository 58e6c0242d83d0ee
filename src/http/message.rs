//! HTTP/1.1 responses on a connection that may stay open (RFC 9112 §9.3): a response is built
//! as a value, then written with the framing its connection needs (a length, or chunks when it
//! is streamed) and with what the connection does next (kept alive for the next request, or
//! closed).

use std::borrow::Cow;
use std::io::Write;
use std::time::Duration;

use super::response::reason_phrase;

/// How a response's body is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// All of it, with `Content-Length`.
    Full(Cow<'static, [u8]>),
    /// Streamed in chunks after the head (RFC 9112 §7.1): `write_chunk`, then `write_last_chunk`.
    Chunked,
}

/// A response, before it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub fields: Vec<(&'static str, Cow<'static, str>)>,
    pub body: Body,
}

impl Response {
    /// A response with a whole body.
    pub fn new(
        status: u16,
        content_type: &'static str,
        body: impl Into<Cow<'static, [u8]>>,
    ) -> Response {
        Response {
            status,
            content_type,
            fields: Vec::new(),
            body: Body::Full(body.into()),
        }
    }

    /// A JSON response.
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response::new(status, "application/json", body.into())
    }

    /// An empty response.
    pub fn empty(status: u16) -> Response {
        Response::new(status, "text/plain; charset=utf-8", &b""[..])
    }

    /// A response whose body follows in chunks.
    pub fn chunked(status: u16, content_type: &'static str) -> Response {
        Response {
            status,
            content_type,
            fields: Vec::new(),
            body: Body::Chunked,
        }
    }

    pub fn with_field(mut self, name: &'static str, value: impl Into<Cow<'static, str>>) -> Self {
        self.fields.push((name, value.into()));
        self
    }

    /// Heap bytes the response holds (for the memory budget).
    pub fn held_bytes(&self) -> usize {
        match &self.body {
            Body::Full(Cow::Owned(body)) => body.capacity(),
            _ => 0,
        }
    }
}

/// What the connection does after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Waits for the next request, for at most this long (said in `Keep-Alive: timeout=`,
    /// which clients such as Node's use to retire a connection before the server does).
    KeepAlive(Duration),
    /// Closes the connection (`Connection: close`, RFC 9112 §9.6).
    Close,
}

/// Write `response`'s head, and its body unless `with_body` is false (a `HEAD`: the fields say
/// what the body would be, RFC 9110 §9.3.2). A chunked body's chunks follow separately.
pub fn write(response: &Response, after: After, with_body: bool, out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\nServer: wsbridge/{}\r\nContent-Type: {}\r\n",
        response.status,
        reason_phrase(response.status),
        env!("CARGO_PKG_VERSION"),
        response.content_type,
    );
    match &response.body {
        Body::Full(body) => {
            let _ = write!(out, "Content-Length: {}\r\n", body.len());
        }
        Body::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
    }
    match after {
        After::KeepAlive(timeout) => {
            let _ = write!(
                out,
                "Connection: keep-alive\r\nKeep-Alive: timeout={}\r\n",
                timeout.as_secs().max(1)
            );
        }
        After::Close => out.extend_from_slice(b"Connection: close\r\n"),
    }
    for (name, value) in &response.fields {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if let (Body::Full(body), true) = (&response.body, with_body) {
        out.extend_from_slice(body);
    }
}

/// RFC 9112 §7.1: one chunk (an empty `data` writes nothing: an empty chunk would end the body).
pub fn write_chunk(data: &[u8], out: &mut Vec<u8>) {
    if data.is_empty() {
        return;
    }
    let _ = write!(out, "{:x}\r\n", data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// RFC 9112 §7.1: the last chunk, with no trailer fields.
pub fn write_last_chunk(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0\r\n\r\n");
}

/// `HTTP/1.1 100 Continue` (RFC 9110 §10.1.1, §15.2.1): the client may send its body.
pub fn write_continue(out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_and_close_are_said_in_the_head() {
        let mut out = Vec::new();
        let response = Response::json(200, b"{}".to_vec()).with_field("X-A", "b");
        write(
            &response,
            After::KeepAlive(Duration::from_secs(15)),
            true,
            &mut out,
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("\r\nContent-Length: 2\r\n"));
        assert!(text.contains("\r\nConnection: keep-alive\r\nKeep-Alive: timeout=15\r\n"));
        assert!(text.contains("\r\nX-A: b\r\n"));
        assert!(text.ends_with("\r\n\r\n{}"));
        let mut out = Vec::new();
        write(&response, After::Close, false, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\r\nConnection: close\r\n") && text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn chunks_frame_a_streamed_body() {
        let mut out = Vec::new();
        write(
            &Response::chunked(200, "text/plain"),
            After::Close,
            true,
            &mut out,
        );
        write_chunk(b"hello, ", &mut out);
        write_chunk(b"", &mut out);
        write_chunk(b"0123456789abcdefg", &mut out);
        write_last_chunk(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\r\nTransfer-Encoding: chunked\r\n"));
        assert!(text.ends_with("\r\n\r\n7\r\nhello, \r\n11\r\n0123456789abcdefg\r\n0\r\n\r\n"));
    }
}
