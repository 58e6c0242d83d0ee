//! HTTP/1.1 message heads (RFC 9112 §2-§5): request and response heads, parsed in httparse's
//! manner.
//!
//! * Short input is not an error: the parsers return `Ok(None)` and consume nothing.
//! * Errors name what is malformed ([`HeadError`]); the caller picks the status it answers with
//!   (the HTTP layer maps them to 400, 414 and 431).
//! * A head that arrives in pieces is searched once: [`HeadScan`] remembers how far it looked,
//!   so a head sent one byte at a time costs linear, not quadratic, time.
//! * The heads borrow from the bytes they were parsed from; only the list of field slices is
//!   allocated.

use std::fmt;

/// Bounds on a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// The longest request line (method, target, version).
    pub max_request_line: usize,
    /// The longest head, start line and fields together.
    pub max_head_bytes: usize,
    /// The most field lines.
    pub max_headers: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        HeadLimits {
            max_request_line: 4096,
            max_head_bytes: 16 * 1024,
            max_headers: 64,
        }
    }
}

/// What is wrong with a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// The request line is longer than [`HeadLimits::max_request_line`].
    RequestLineTooLong,
    /// The head is longer than [`HeadLimits::max_head_bytes`].
    HeadTooLarge,
    /// More field lines than [`HeadLimits::max_headers`].
    TooManyFields,
    /// The head is not UTF-8 (RFC 9110 §5.5 allows obs-text; this server does not).
    NotUtf8,
    /// The request line is not `method SP request-target SP HTTP-version` (RFC 9112 §3).
    MalformedRequestLine,
    /// The method is not a token (RFC 9110 §9.1).
    MalformedMethod,
    /// The target is none of origin-form, absolute-form or asterisk-form (RFC 9112 §3.2).
    MalformedTarget,
    /// The version is not `HTTP/1.x` (RFC 9112 §2.3).
    UnsupportedVersion,
    /// The status line is not `HTTP-version SP status-code SP [reason-phrase]` (RFC 9112 §4).
    MalformedStatusLine,
    /// A field line starts with whitespace (RFC 9112 §5.2: obs-fold is refused).
    ObsoleteLineFolding,
    /// A field line without a colon (RFC 9112 §5).
    MalformedField,
    /// A field name that is not a token, or whitespace before the colon (RFC 9112 §5.1).
    MalformedFieldName,
    /// A control character in a field value (RFC 9110 §5.5).
    ControlCharacterInValue,
}

impl HeadError {
    /// What is wrong, in a few words.
    pub fn as_str(self) -> &'static str {
        match self {
            HeadError::RequestLineTooLong => "request line too long",
            HeadError::HeadTooLarge => "head too large",
            HeadError::TooManyFields => "too many header fields",
            HeadError::NotUtf8 => "head is not UTF-8",
            HeadError::MalformedRequestLine => "malformed request line",
            HeadError::MalformedMethod => "malformed method",
            HeadError::MalformedTarget => "malformed request target",
            HeadError::UnsupportedVersion => "not an HTTP/1.x message",
            HeadError::MalformedStatusLine => "malformed status line",
            HeadError::ObsoleteLineFolding => "obsolete line folding",
            HeadError::MalformedField => "malformed header field",
            HeadError::MalformedFieldName => "malformed header name",
            HeadError::ControlCharacterInValue => "control character in header value",
        }
    }
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for HeadError {}

/// How far a head in progress has been searched, so each new read is looked at once.
///
/// Feed it the whole buffer received so far (it only grows between calls) and it answers
/// whether the head is complete. The request-line limit is judged as soon as it can be, whether
/// or not the head is complete, so a request gets the same verdict however its bytes were split.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeadScan {
    /// Bytes already searched for the end of the head.
    searched: usize,
    /// The length of the first line, once its CRLF was seen.
    first_line: Option<usize>,
}

impl HeadScan {
    /// A scan of a new head.
    pub fn new() -> Self {
        HeadScan::default()
    }

    /// `Ok(Some(n))` once the head (its blank line included) is the first `n` bytes of `buf`;
    /// `Ok(None)` while it is incomplete and within the limits. `check_line` applies the
    /// request-line limit (responses have none).
    fn advance(
        &mut self,
        buf: &[u8],
        limits: &HeadLimits,
        check_line: bool,
    ) -> Result<Option<usize>, HeadError> {
        if check_line {
            let line_len = match self.first_line {
                Some(len) => len,
                None => {
                    let from = self.searched.saturating_sub(1);
                    match memchr::memmem::find(&buf[from..], b"\r\n") {
                        Some(at) => {
                            self.first_line = Some(from + at);
                            from + at
                        }
                        // Without its CRLF yet, a trailing CR may be the start of it.
                        None => buf.len() - usize::from(buf.ends_with(b"\r")),
                    }
                }
            };
            // A line longer than the whole head may be is too long as a line, whether or not
            // its end has come: so the verdict (414, not 431) does not depend on how the bytes
            // were split when the head limit is below the line limit.
            if line_len > limits.max_request_line.min(limits.max_head_bytes) {
                return Err(HeadError::RequestLineTooLong);
            }
            // The line is open, exactly at the head limit, and ends in a CR: the next byte
            // decides between 431 (an LF: the line fits, the head does not) and 414 (anything
            // else: the line is longer). Wait for it rather than answer by where bytes split.
            if self.first_line.is_none()
                && buf.ends_with(b"\r")
                && buf.len() > limits.max_head_bytes
            {
                return Ok(None);
            }
        }
        let from = self.searched.saturating_sub(3);
        match memchr::memmem::find(&buf[from..], b"\r\n\r\n") {
            Some(at) => {
                let len = from + at + 4;
                if len > limits.max_head_bytes {
                    return Err(HeadError::HeadTooLarge);
                }
                Ok(Some(len))
            }
            None => {
                self.searched = buf.len();
                if buf.len() > limits.max_head_bytes {
                    return Err(HeadError::HeadTooLarge);
                }
                Ok(None)
            }
        }
    }

    /// [`parse_request`], resuming the search where the previous call on the same (grown)
    /// buffer stopped.
    pub fn request<'a>(
        &mut self,
        buf: &'a [u8],
        limits: &HeadLimits,
    ) -> Result<Option<(RequestHead<'a>, usize)>, HeadError> {
        match self.advance(buf, limits, true)? {
            Some(len) => Ok(Some((parse_request_head(&buf[..len], limits)?, len))),
            None => Ok(None),
        }
    }

    /// [`parse_response`], resuming where the previous call stopped.
    pub fn response<'a>(
        &mut self,
        buf: &'a [u8],
        limits: &HeadLimits,
    ) -> Result<Option<(ResponseHead<'a>, usize)>, HeadError> {
        match self.advance(buf, limits, false)? {
            Some(len) => Ok(Some((parse_response_head(&buf[..len], limits)?, len))),
            None => Ok(None),
        }
    }
}

/// Parse a request head from the start of `buf` (RFC 9112 §2.1, §3).
///
/// ```text
/// HTTP-message = start-line CRLF *( field-line CRLF ) CRLF [ message-body ]
/// request-line = method SP request-target SP HTTP-version
/// field-line   = field-name ":" OWS field-value OWS
/// ```
///
/// Returns `Ok(None)` while the head is incomplete and within the limits, or the head and the
/// number of bytes it took (what follows is the body, or WebSocket frames).
pub fn parse_request<'a>(
    buf: &'a [u8],
    limits: &HeadLimits,
) -> Result<Option<(RequestHead<'a>, usize)>, HeadError> {
    HeadScan::new().request(buf, limits)
}

/// Parse a response head from the start of `buf` (RFC 9112 §4).
///
/// ```text
/// status-line = HTTP-version SP status-code SP [ reason-phrase ]
/// ```
pub fn parse_response<'a>(
    buf: &'a [u8],
    limits: &HeadLimits,
) -> Result<Option<(ResponseHead<'a>, usize)>, HeadError> {
    HeadScan::new().response(buf, limits)
}

/// One field line, borrowed from the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The field name as sent (compare without case).
    pub name: &'a str,
    /// The value with surrounding whitespace removed.
    pub value: &'a str,
}

/// The field lines of a head, in order (RFC 9110 §5).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers<'a>(pub Vec<Header<'a>>);

impl<'a> Headers<'a> {
    /// The first value of a field, by case-insensitive name.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.0
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// How many times a field appears.
    pub fn count(&self, name: &str) -> usize {
        self.0
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .count()
    }

    /// Every value of a field, one per field line, in order.
    pub fn values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.0
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// Every element of a list-valued field, across repeated lines, in order (RFC 9110 §5.6.1).
    pub fn tokens<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.0
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .flat_map(|h| list_tokens(h.value))
    }

    /// Whether a list-valued field contains a token, compared without case.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name).any(|t| t.eq_ignore_ascii_case(token))
    }

    /// The number of field lines.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The field lines in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Header<'a>> {
        self.0.iter()
    }
}

impl<'h, 'a> IntoIterator for &'h Headers<'a> {
    type Item = &'h Header<'a>;
    type IntoIter = std::slice::Iter<'h, Header<'a>>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// The comma-separated elements of a list-valued field, trimmed, empty ones skipped
/// (RFC 9110 §5.6.1: "a recipient MUST parse and ignore a reasonable number of empty list
/// elements").
pub fn list_tokens(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(',')
        .map(|t| t.trim_matches([' ', '\t']))
        .filter(|t| !t.is_empty())
}

/// The form of a request target (RFC 9112 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetForm {
    /// `/path?query`: the usual form.
    Origin,
    /// `http://host/path?query`: "a server MUST accept the use of the absolute-form in
    /// requests" (§3.2.2); the target's authority then replaces `Host`.
    Absolute,
    /// `*`: a request about the server as a whole (`OPTIONS *`, §3.2.4).
    Asterisk,
}

/// An HTTP/1.x request head (RFC 9112 §3), borrowed from the bytes it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead<'a> {
    /// The method, case-sensitive (`GET`).
    pub method: &'a str,
    /// The request target as sent.
    pub target: &'a str,
    /// Which form the target has.
    pub form: TargetForm,
    /// The minor version of HTTP/1.x.
    pub minor_version: u8,
    /// The field lines in order.
    pub headers: Headers<'a>,
    path: &'a str,
    query: Option<&'a str>,
    authority: Option<&'a str>,
}

impl<'a> RequestHead<'a> {
    /// The path: `/` for an absolute-form target with none, `*` for the asterisk form.
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// The same head with `prefix` (a path such as `/x`, without a trailing slash) taken off
    /// the front of its path, when the path is under it: `/x/a` gives `/a`, `/x/` gives `/`.
    /// `None` for `/x` itself and for paths outside it. (A server living under a prefix behind
    /// a proxy routes what is below it.)
    pub fn strip_path_prefix(&self, prefix: &str) -> Option<RequestHead<'a>> {
        let rest = self.path.strip_prefix(prefix)?;
        if !rest.starts_with('/') {
            return None;
        }
        let mut head = self.clone();
        head.path = rest;
        if head.form == TargetForm::Origin {
            head.target = &self.target[prefix.len()..];
        }
        Some(head)
    }

    /// The query, without its `?`.
    pub fn query(&self) -> Option<&'a str> {
        self.query
    }

    /// The authority the request is for (RFC 9112 §3.2.2, §3.2): the target's own in
    /// absolute-form ("the server MUST ignore the received Host header field"), else `Host`.
    pub fn authority(&self) -> Option<&'a str> {
        self.authority.or_else(|| self.headers.get("Host"))
    }

    /// The first value of a field, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers.get(name)
    }

    /// How many times a field appears.
    pub fn header_count(&self, name: &str) -> usize {
        self.headers.count(name)
    }

    /// Every value of a field, one per field line, in order.
    pub fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.headers.values(name)
    }

    /// Every element of a list-valued field, across repeated lines.
    pub fn header_tokens<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.headers.tokens(name)
    }

    /// Whether a list-valued field contains a token, compared without case.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers.has_token(name, token)
    }

    /// Whether the client asks to upgrade to WebSocket (an `Upgrade: websocket` token).
    pub fn wants_websocket(&self) -> bool {
        self.has_token("Upgrade", "websocket")
    }
}

/// An HTTP/1.x response head (RFC 9112 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead<'a> {
    /// The minor version of HTTP/1.x.
    pub minor_version: u8,
    /// The three-digit status code.
    pub status: u16,
    /// The reason phrase, possibly empty.
    pub reason: &'a str,
    /// The field lines in order.
    pub headers: Headers<'a>,
}

/// Parse a complete request head (`head` ends with its blank line).
pub fn parse_request_head<'a>(
    head: &'a [u8],
    limits: &HeadLimits,
) -> Result<RequestHead<'a>, HeadError> {
    let (start_line, headers) = split_head(head, limits)?;
    if start_line.len() > limits.max_request_line {
        return Err(HeadError::RequestLineTooLong);
    }
    let mut parts = start_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::MalformedRequestLine);
    };
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(HeadError::MalformedMethod);
    }
    let minor_version = parse_version(version)?;
    let (form, path, query, authority) = parse_target(target)?;
    Ok(RequestHead {
        method,
        target,
        form,
        minor_version,
        headers,
        path,
        query,
        authority,
    })
}

/// Parse a complete response head.
pub fn parse_response_head<'a>(
    head: &'a [u8],
    limits: &HeadLimits,
) -> Result<ResponseHead<'a>, HeadError> {
    let (status_line, headers) = split_head(head, limits)?;
    let mut parts = status_line.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(HeadError::MalformedStatusLine);
    };
    let minor_version = parse_version(version)?;
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HeadError::MalformedStatusLine);
    }
    let status = code.parse().map_err(|_| HeadError::MalformedStatusLine)?;
    // RFC 9112 §4: `reason-phrase = 1*( HTAB / SP / VCHAR / obs-text )`: no control bytes,
    // and so no bare CR or LF.
    let reason = parts.next().unwrap_or("");
    if has_control_byte(reason) {
        return Err(HeadError::MalformedStatusLine);
    }
    Ok(ResponseHead {
        minor_version,
        status,
        reason,
        headers,
    })
}

/// The start line and the parsed field lines of a complete head.
fn split_head<'a>(
    head: &'a [u8],
    limits: &HeadLimits,
) -> Result<(&'a str, Headers<'a>), HeadError> {
    let body = head.strip_suffix(b"\r\n\r\n").unwrap_or(head);
    let text = std::str::from_utf8(body).map_err(|_| HeadError::NotUtf8)?;
    let mut lines = text.split("\r\n");
    let start_line = lines.next().unwrap_or_default();
    let mut headers = Vec::with_capacity(16);
    for line in lines {
        if headers.len() == limits.max_headers {
            return Err(HeadError::TooManyFields);
        }
        headers.push(parse_field_line(line)?);
    }
    Ok((start_line, Headers(headers)))
}

/// RFC 9112 §5: `field-line = field-name ":" OWS field-value OWS`. "No whitespace is allowed
/// between the field name and colon" (§5.1), and obs-fold is refused (§5.2).
fn parse_field_line(line: &str) -> Result<Header<'_>, HeadError> {
    if line.starts_with([' ', '\t']) {
        return Err(HeadError::ObsoleteLineFolding);
    }
    let Some((name, value)) = line.split_once(':') else {
        return Err(HeadError::MalformedField);
    };
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(HeadError::MalformedFieldName);
    }
    let value = value.trim_matches([' ', '\t']);
    if has_control_byte(value) {
        return Err(HeadError::ControlCharacterInValue);
    }
    Ok(Header { name, value })
}

/// Whether `text` holds a byte that neither a field value (RFC 9110 §5.5) nor a reason phrase
/// (RFC 9112 §4) may carry: a control byte other than HTAB, or DEL.
fn has_control_byte(text: &str) -> bool {
    text.bytes().any(|b| (b < b' ' && b != b'\t') || b == 0x7f)
}

/// RFC 9112 §2.3: `HTTP-version = "HTTP" "/" DIGIT "." DIGIT`, major version 1 here.
fn parse_version(version: &str) -> Result<u8, HeadError> {
    match version.as_bytes() {
        [
            b'H',
            b'T',
            b'T',
            b'P',
            b'/',
            b'1',
            b'.',
            minor @ b'0'..=b'9',
        ] => Ok(minor - b'0'),
        _ => Err(HeadError::UnsupportedVersion),
    }
}

type Target<'a> = (TargetForm, &'a str, Option<&'a str>, Option<&'a str>);

/// RFC 9112 §3.2: the request target, as form, path, query and (absolute-form) authority.
///
/// ```text
/// origin-form    = absolute-path [ "?" query ]
/// absolute-form  = absolute-URI            ; here: scheme "://" authority path-abempty [ "?" query ]
/// asterisk-form  = "*"
/// ```
///
/// Visible ASCII only; no fragment (a `#` never belongs to a request target); no userinfo in
/// the authority (RFC 9110 §4.2.4: "A sender MUST NOT generate the userinfo subcomponent").
fn parse_target(target: &str) -> Result<Target<'_>, HeadError> {
    if target.is_empty() || target.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'#') {
        return Err(HeadError::MalformedTarget);
    }
    if target == "*" {
        return Ok((TargetForm::Asterisk, "*", None, None));
    }
    if target.starts_with('/') {
        let (path, query) = split_query(target);
        return Ok((TargetForm::Origin, path, query, None));
    }
    let Some((scheme, rest)) = target.split_once("://") else {
        return Err(HeadError::MalformedTarget);
    };
    if !["http", "https", "ws", "wss"]
        .iter()
        .any(|s| scheme.eq_ignore_ascii_case(s))
    {
        return Err(HeadError::MalformedTarget);
    }
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(authority_end);
    if authority.is_empty() || authority.contains('@') {
        return Err(HeadError::MalformedTarget);
    }
    let (path, query) = split_query(after);
    let path = if path.is_empty() { "/" } else { path };
    Ok((TargetForm::Absolute, path, query, Some(authority)))
}

/// `path [ "?" query ]` → the path and the query.
fn split_query(target: &str) -> (&str, Option<&str>) {
    match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    }
}

/// RFC 9110 §5.6.2: `tchar`.
pub fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Option<(RequestHead<'_>, usize)>, HeadError> {
        parse_request(bytes, &HeadLimits::default())
    }

    const REQUEST: &[u8] =
        b"GET /chat?x=1 HTTP/1.1\r\nHost: server.example.com\r\nX-Long:  a, b ,,c \r\n\r\n";

    #[test]
    fn request_head_fields_and_lists() {
        let (head, used) = parse(REQUEST).unwrap().unwrap();
        assert_eq!(used, REQUEST.len());
        assert_eq!(
            (head.method, head.path(), head.query()),
            ("GET", "/chat", Some("x=1"))
        );
        assert_eq!(head.form, TargetForm::Origin);
        assert_eq!(head.authority(), Some("server.example.com"));
        assert_eq!(head.header("x-long"), Some("a, b ,,c"));
        assert_eq!(
            head.header_tokens("X-LONG").collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert!(head.has_token("x-long", "B"));
    }

    #[test]
    fn every_split_point_is_incomplete_until_the_end() {
        for cut in 0..REQUEST.len() {
            assert_eq!(parse(&REQUEST[..cut]), Ok(None), "cut at {cut}");
        }
        let mut more = REQUEST.to_vec();
        more.extend_from_slice(b"body");
        assert_eq!(parse(&more).unwrap().unwrap().1, REQUEST.len());
    }

    /// The incremental scan sees every byte once and agrees with a parse from scratch at every
    /// point of a head fed one byte at a time.
    #[test]
    fn scan_resumes_where_it_stopped() {
        let mut scan = HeadScan::new();
        for end in 0..REQUEST.len() {
            assert_eq!(
                scan.request(&REQUEST[..end], &HeadLimits::default()),
                Ok(None)
            );
            assert!(scan.searched <= end);
        }
        let (head, used) = scan
            .request(REQUEST, &HeadLimits::default())
            .unwrap()
            .unwrap();
        assert_eq!((head.path(), used), ("/chat", REQUEST.len()));
    }

    /// RFC 9112 §3.2.2: absolute-form is accepted and its authority wins over `Host`.
    #[test]
    fn absolute_form_uses_the_target_authority() {
        let req = b"GET http://127.0.0.1:6455/sql?x HTTP/1.1\r\nHost: evil.example\r\n\r\n";
        let (head, _) = parse(req).unwrap().unwrap();
        assert_eq!(head.form, TargetForm::Absolute);
        assert_eq!((head.path(), head.query()), ("/sql", Some("x")));
        assert_eq!(head.authority(), Some("127.0.0.1:6455"));
        let (bare, _) = parse(b"GET HTTP://h HTTP/1.1\r\n\r\n").unwrap().unwrap();
        assert_eq!((bare.path(), bare.authority()), ("/", Some("h")));
        let (star, _) = parse(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((star.form, star.path()), (TargetForm::Asterisk, "*"));
        for bad in [
            "GET ftp://h/ HTTP/1.1\r\n\r\n",
            "GET http:///x HTTP/1.1\r\n\r\n",
            "GET http://u@h/ HTTP/1.1\r\n\r\n",
            "GET /a#frag HTTP/1.1\r\n\r\n",
            "GET a/b HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(
                parse(bad.as_bytes()),
                Err(HeadError::MalformedTarget),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn malformed_heads_name_what_is_wrong() {
        for (bad, error) in [
            ("GET\r\n\r\n", HeadError::MalformedRequestLine),
            ("GET / HTTP/2.0\r\n\r\n", HeadError::UnsupportedVersion),
            ("GET  / HTTP/1.1\r\n\r\n", HeadError::MalformedRequestLine),
            (
                "GET / HTTP/1.1\r\nNo colon\r\n\r\n",
                HeadError::MalformedField,
            ),
            (
                "GET / HTTP/1.1\r\n folded: x\r\n\r\n",
                HeadError::ObsoleteLineFolding,
            ),
            (
                "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
                HeadError::MalformedFieldName,
            ),
            (
                "GET / HTTP/1.1\r\nName : x\r\n\r\n",
                HeadError::MalformedFieldName,
            ),
            (
                "GET / HTTP/1.1\r\nA: \x01\r\n\r\n",
                HeadError::ControlCharacterInValue,
            ),
            ("G(T / HTTP/1.1\r\n\r\n", HeadError::MalformedMethod),
        ] {
            assert_eq!(parse(bad.as_bytes()), Err(error), "{bad:?}");
        }
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nA: \xff\r\n\r\n"),
            Err(HeadError::NotUtf8)
        );
    }

    #[test]
    fn limits_are_enforced_before_the_head_is_complete() {
        let limits = HeadLimits {
            max_request_line: 64,
            max_head_bytes: 256,
            max_headers: 4,
        };
        let long_line = format!("GET /{} HTTP/1.1", "a".repeat(100));
        assert_eq!(
            parse_request(long_line.as_bytes(), &limits),
            Err(HeadError::RequestLineTooLong)
        );
        let many_bytes = format!("GET / HTTP/1.1\r\nX: {}", "b".repeat(300));
        assert_eq!(
            parse_request(many_bytes.as_bytes(), &limits),
            Err(HeadError::HeadTooLarge)
        );
        let many_fields = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n";
        assert_eq!(
            parse_request(many_fields.as_bytes(), &limits),
            Err(HeadError::TooManyFields)
        );
    }

    /// Found by the `handshake` fuzz target (seed `request-line-over-small-limit`): a long
    /// request line got one verdict in pieces and another at once. Every split must now give
    /// the same error as the whole head.
    #[test]
    fn fuzz_request_line_limit_is_the_same_at_every_split() {
        let limits = HeadLimits {
            max_request_line: 40,
            max_head_bytes: 200,
            max_headers: 4,
        };
        let line = format!("GET /{} HTTP/1.1", "a".repeat(60));
        let long_line = format!("{line}\r\nHost: a\r\n\r\n");
        let long_head = format!("{line}\r\nX: {}\r\n\r\n", "b".repeat(300));
        for head in [long_line, long_head] {
            assert_eq!(
                parse_request(head.as_bytes(), &limits),
                Err(HeadError::RequestLineTooLong)
            );
            for cut in 0..head.len() {
                let prefix = parse_request(&head.as_bytes()[..cut], &limits);
                assert!(
                    prefix == Ok(None) || prefix == Err(HeadError::RequestLineTooLong),
                    "cut {cut}: {prefix:?}"
                );
                if cut > 41 {
                    assert_eq!(prefix, Err(HeadError::RequestLineTooLong), "cut {cut}");
                }
            }
        }
        // A CR that may start the line's CRLF is not part of the line.
        let exact = format!("GET /{} HTTP/1.1\r", "a".repeat(26));
        assert_eq!(exact.len(), 41);
        assert_eq!(parse_request(exact.as_bytes(), &limits), Ok(None));
    }

    #[test]
    fn a_line_that_reaches_the_head_limit_at_a_cr_waits_for_the_next_byte() {
        // Found by the http_head fuzz target: a 32-byte line then CR under a 32-byte head
        // limit was 431 at that prefix and 414 for the whole input.
        let limits = HeadLimits {
            max_request_line: 4096,
            max_head_bytes: 32,
            max_headers: 64,
        };
        let line = format!("GET /{} HTTP/1.1", "a".repeat(18));
        assert_eq!(line.len(), 32);
        let open = format!("{line}\r");
        assert_eq!(parse_request(open.as_bytes(), &limits), Ok(None));
        let longer = format!("{line}\rX");
        assert_eq!(
            parse_request(longer.as_bytes(), &limits),
            Err(HeadError::RequestLineTooLong)
        );
        let fits = format!("{line}\r\n");
        assert_eq!(
            parse_request(fits.as_bytes(), &limits),
            Err(HeadError::HeadTooLarge)
        );
        for whole in [longer, fits] {
            let at_once = parse_request(whole.as_bytes(), &limits);
            let mut scan = HeadScan::new();
            for cut in 0..=whole.len() {
                let got = scan.request(&whole.as_bytes()[..cut], &limits);
                if got.is_err() {
                    assert_eq!(
                        got.map(|h| h.map(|(_, n)| n)),
                        at_once.map(|h| h.map(|(_, n)| n))
                    );
                    break;
                }
                assert_eq!(got.map(|h| h.is_none()), Ok(true), "cut {cut}");
            }
        }
    }

    #[test]
    fn response_heads() {
        let text = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00";
        let (head, used) = parse_response(text, &HeadLimits::default())
            .unwrap()
            .unwrap();
        assert_eq!(
            (head.status, head.reason, used),
            (101, "Switching Protocols", text.len() - 2)
        );
        assert_eq!(head.headers.get("upgrade"), Some("websocket"));
        let (bare, _) = parse_response(b"HTTP/1.0 404 \r\n\r\n", &HeadLimits::default())
            .unwrap()
            .unwrap();
        assert_eq!((bare.status, bare.minor_version), (404, 0));
        for bad in [
            "HTTP/1.1 20 OK\r\n\r\n",
            "HTTP/1.1\r\n\r\n",
            "HTTP/1.1 2000\r\n\r\n",
            // RFC 9112 §4: no control bytes in a reason phrase (fuzz finding).
            "HTTP/1.1 101 OK\rUpgrade: x\n\x05\r\n\r\n",
            "HTTP/1.1 200 O\x7fK\r\n\r\n",
        ] {
            assert_eq!(
                parse_response(bad.as_bytes(), &HeadLimits::default()),
                Err(HeadError::MalformedStatusLine),
                "{bad:?}"
            );
        }
        for cut in 0..text.len() - 2 {
            assert_eq!(
                parse_response(&text[..cut], &HeadLimits::default()),
                Ok(None)
            );
        }
    }

    /// Fuzz finding: with a head limit below the line limit, a long first line got 431 when its
    /// bytes came in pieces and 414 when they came at once; now 414 either way.
    #[test]
    fn a_line_longer_than_the_head_limit_is_414_at_every_split() {
        let limits = HeadLimits {
            max_request_line: 64,
            max_head_bytes: 4,
            max_headers: 4,
        };
        let text = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(80));
        for cut in 5..=text.len() {
            let mut scan = HeadScan::new();
            let prefix = scan
                .request(&text.as_bytes()[..cut], &limits)
                .map(|r| r.is_some());
            assert_eq!(prefix, Err(HeadError::RequestLineTooLong), "cut at {cut}");
        }
    }
}
