//! Plain HTTP GETs: the web page and its assets. Anything else a browser asks for without an
//! upgrade gets 404.

use std::borrow::Cow;

use super::response::write_response;

/// A static response body.
pub struct Page {
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Cow<'static, [u8]>,
}

/// Where pages come from. The terminal route provides the browser terminal; until then a
/// small built-in page is served.
pub trait PageSource {
    /// The page at `path` (query removed), if any.
    fn get(&self, path: &str) -> Option<Page>;
}

/// The built-in page: says what this server is and where its routes are.
pub struct BuiltinPages;

const INDEX: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>wsbridge</title></head>
<body><h1>wsbridge</h1>
<p>A WebSocket server. Routes: <code>/echo</code>, <code>/sql</code> (Hrana), <code>/tty</code>.</p>
</body></html>
"#;

impl PageSource for BuiltinPages {
    fn get(&self, path: &str) -> Option<Page> {
        (path == "/" || path == "/index.html").then(|| Page {
            content_type: "text/html; charset=utf-8",
            body: Cow::Borrowed(INDEX.as_bytes()),
        })
    }
}

/// The headers every page carries: no referrer (the URL may carry the token), no framing
/// (clickjacking), no sniffing, no caching of a page that may hold a token.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Cache-Control", "no-store"),
];

/// Write the response for a page (its fields only when `with_body` is false: a `HEAD`).
pub fn write_page(page: &Page, with_body: bool, out: &mut Vec<u8>) {
    write_response(
        out,
        200,
        SECURITY_HEADERS,
        page.content_type,
        &page.body,
        with_body,
    );
}
