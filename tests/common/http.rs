//! A small HTTP/1.1 client over a raw socket, for tests that control every byte: pipelining,
//! chunked bodies, `Expect: 100-continue`, limits. Responses are read whole (`Content-Length`
//! or chunked) and kept as status, fields and body.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A response as read off the wire.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One connection, with what was read past the last response kept for the next.
pub struct HttpConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl HttpConn {
    pub fn connect(addr: SocketAddr) -> HttpConn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        HttpConn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Over a stream already connected (from a chosen local address, say).
    pub fn from_stream(stream: TcpStream) -> HttpConn {
        HttpConn {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Read more bytes; false at EOF.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e) => panic!("read: {e}"),
        }
    }

    /// Whether the server closed the connection (after everything it sent was read).
    pub fn at_eof(&mut self) -> bool {
        self.buf.is_empty() && !self.fill()
    }

    fn take_line(&mut self) -> String {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 2);
                return line;
            }
            assert!(self.fill(), "EOF in the middle of a line");
        }
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill(), "EOF in the middle of a body");
        }
        self.buf.drain(..n).collect()
    }

    /// Read one response (a `HEAD`'s has no body: pass `head_only`).
    pub fn read_response_to(&mut self, head_only: bool) -> HttpResponse {
        let status_line = self.take_line();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let line = self.take_line();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("field");
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let mut response = HttpResponse {
            status,
            headers,
            body: Vec::new(),
        };
        if head_only || status == 100 || status == 204 {
            return response;
        }
        if response
            .header("Transfer-Encoding")
            .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let size = usize::from_str_radix(self.take_line().trim(), 16).expect("chunk size");
                if size == 0 {
                    assert_eq!(self.take_line(), "", "no trailers");
                    break;
                }
                let data = self.take(size);
                response.body.extend_from_slice(&data);
                assert_eq!(self.take_line(), "");
            }
        } else {
            let length: usize = response
                .header("Content-Length")
                .expect("Content-Length")
                .parse()
                .expect("length");
            response.body = self.take(length);
        }
        response
    }

    pub fn read_response(&mut self) -> HttpResponse {
        self.read_response_to(false)
    }

    /// Send a request and read its response.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        self.send(&request_bytes(method, path, headers, body));
        self.read_response_to(method == "HEAD")
    }
}

/// A request with `Host` and, for a body, `Content-Length`.
pub fn request_bytes(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (name, value) in headers {
        out += &format!("{name}: {value}\r\n");
    }
    if !body.is_empty() || method == "POST" {
        out += &format!("Content-Length: {}\r\n", body.len());
    }
    out += "\r\n";
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}
