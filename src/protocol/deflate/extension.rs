//! `Sec-WebSocket-Extensions` (RFC 6455 §9.1) and the negotiation of permessage-deflate
//! (RFC 7692 §5, §7.1): the server picks the first offer it can accept, the client checks the
//! server's answer against what it offered.
//!
//! ```text
//! Sec-WebSocket-Extensions = extension-list
//! extension-list = 1#extension
//! extension = extension-token *( ";" extension-param )
//! extension-param = token [ "=" (token | quoted-string) ]
//! ```
//!
//! A header that breaks this grammar is a [`HeaderError`] (400 on the server). A well-formed
//! permessage-deflate offer with parameters this end cannot accept is only *declined*
//! ([`Decline`]): the server tries the next offer, and without one answers without the extension.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use crate::protocol::http::is_token_byte;

/// The extension's registered name (RFC 7692 §7).
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

const SERVER_NO_CONTEXT_TAKEOVER: &str = "server_no_context_takeover";
const CLIENT_NO_CONTEXT_TAKEOVER: &str = "client_no_context_takeover";
const SERVER_MAX_WINDOW_BITS: &str = "server_max_window_bits";
const CLIENT_MAX_WINDOW_BITS: &str = "client_max_window_bits";

/// One element of an extension list: a name and its parameters, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension<'a> {
    /// The extension token, e.g. `permessage-deflate`.
    pub name: &'a str,
    /// The parameters as sent.
    pub params: Vec<Param<'a>>,
}

/// `token [ "=" (token | quoted-string) ]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param<'a> {
    /// The parameter's name.
    pub name: &'a str,
    /// Its value, quotes and escapes removed (a token, per §9.1); `None` when it has none.
    pub value: Option<Cow<'a, str>>,
}

/// A `Sec-WebSocket-Extensions` value that breaks the RFC 6455 §9.1 grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderError {
    /// What is wrong, in a few words (for the 400 body and the log).
    pub reason: &'static str,
    /// The byte offset in the field value where it went wrong.
    pub offset: usize,
}

impl HeaderError {
    /// The status the server answers the upgrade request with.
    pub fn status(self) -> u16 {
        400
    }
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Sec-WebSocket-Extensions: {} at byte {}",
            self.reason, self.offset
        )
    }
}

impl std::error::Error for HeaderError {}

/// Parse one `Sec-WebSocket-Extensions` field value (RFC 6455 §9.1), appending its extensions to
/// `out` in order; call once per field line, since "the header field MAY appear multiple times"
/// (§11.3.2). Whitespace may surround the separators; empty list elements are skipped (RFC 9110
/// §5.6.1) but a value with no extension at all is an error (`1#extension`).
pub fn parse_extensions<'a>(
    value: &'a str,
    out: &mut Vec<Extension<'a>>,
) -> Result<(), HeaderError> {
    let mut p = Cursor { s: value, pos: 0 };
    let mut found = false;
    loop {
        p.skip_ows();
        match p.peek() {
            None => break,
            Some(b',') => {
                p.pos += 1;
                continue;
            }
            Some(_) => {}
        }
        let name = p.token("expected an extension name")?;
        let mut params = Vec::new();
        loop {
            p.skip_ows();
            match p.peek() {
                None | Some(b',') => break,
                Some(b';') => p.pos += 1,
                Some(_) => return Err(p.error("expected ';' or ','")),
            }
            p.skip_ows();
            let param_name = p.token("expected a parameter name")?;
            p.skip_ows();
            let value = if p.peek() == Some(b'=') {
                p.pos += 1;
                p.skip_ows();
                Some(if p.peek() == Some(b'"') {
                    p.quoted_token()?
                } else {
                    Cow::Borrowed(p.token("expected a parameter value")?)
                })
            } else {
                None
            };
            params.push(Param {
                name: param_name,
                value,
            });
        }
        out.push(Extension { name, params });
        found = true;
    }
    if found {
        Ok(())
    } else {
        Err(p.error("no extension in the list"))
    }
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn error(&self, reason: &'static str) -> HeaderError {
        HeaderError {
            reason,
            offset: self.pos,
        }
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// `token = 1*tchar`. Token bytes are ASCII, so both ends of the slice are char boundaries.
    fn token(&mut self, reason: &'static str) -> Result<&'a str, HeaderError> {
        let start = self.pos;
        while self.peek().is_some_and(is_token_byte) {
            self.pos += 1;
        }
        match self.s.get(start..self.pos) {
            Some(token) if !token.is_empty() => Ok(token),
            _ => Err(self.error(reason)),
        }
    }

    /// A quoted-string whose unescaped value is a token (§9.1: "the value after quoted-string
    /// unescaping MUST conform to the 'token' ABNF"). Borrowed unless it holds a quoted-pair.
    fn quoted_token(&mut self) -> Result<Cow<'a, str>, HeaderError> {
        self.pos += 1; // the opening quote
        let start = self.pos;
        let mut unescaped: Option<String> = None;
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated quoted-string")),
                Some(b'"') => break,
                Some(b'\\') => {
                    let owned = unescaped.get_or_insert_with(|| {
                        self.s.get(start..self.pos).unwrap_or_default().to_owned()
                    });
                    self.pos += 1;
                    match self.peek() {
                        Some(b) if is_token_byte(b) => owned.push(char::from(b)),
                        _ => return Err(self.error("quoted value is not a token")),
                    }
                }
                Some(b) if is_token_byte(b) => {
                    if let Some(owned) = &mut unescaped {
                        owned.push(char::from(b));
                    }
                }
                Some(_) => return Err(self.error("quoted value is not a token")),
            }
            self.pos += 1;
        }
        let raw = self.s.get(start..self.pos).unwrap_or_default();
        self.pos += 1; // the closing quote
        if raw.is_empty() {
            return Err(self.error("empty quoted value"));
        }
        Ok(match unescaped {
            Some(owned) => Cow::Owned(owned),
            None => Cow::Borrowed(raw),
        })
    }
}

impl fmt::Display for Extension<'_> {
    /// The canonical form, `name; param; param=value`, which [`parse_extensions`] reads back as
    /// the same extension. A value that is not a token (only possible for one built by hand) is
    /// written as a quoted-string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)?;
        for param in &self.params {
            write!(f, "; {}", param.name)?;
            if let Some(value) = &param.value {
                if !value.is_empty() && value.bytes().all(is_token_byte) {
                    write!(f, "={value}")?;
                } else {
                    f.write_str("=\"")?;
                    for c in value.chars() {
                        if c == '"' || c == '\\' {
                            f.write_char('\\')?;
                        }
                        f.write_char(c)?;
                    }
                    f.write_char('"')?;
                }
            }
        }
        Ok(())
    }
}

/// The parameters in force once permessage-deflate is agreed (RFC 7692 §7.1), the same on both
/// ends. A window of 15 stands for an absent `*_max_window_bits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its compressor after each message (§7.1.1.1).
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after each message (§7.1.1.2).
    pub client_no_context_takeover: bool,
    /// The largest LZ77 window the server compresses with, 8..=15 (§7.1.2.1).
    pub server_max_window_bits: u8,
    /// The largest LZ77 window the client compresses with, 8..=15 (§7.1.2.2).
    pub client_max_window_bits: u8,
}

/// Why a permessage-deflate offer (or answer) cannot be used as it is (RFC 7692 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decline {
    /// "an extension parameter not defined for use in an offer" (or a response).
    UnknownParam,
    /// "multiple extension parameters with the same name".
    DuplicateParam,
    /// "an extension parameter with an invalid value": a value on a flag, none on a window
    /// size that needs one, or a window size that is not a decimal 8..=15 without leading zero.
    InvalidValue,
}

impl Decline {
    /// What is wrong, in a few words.
    pub fn as_str(self) -> &'static str {
        match self {
            Decline::UnknownParam => "unknown permessage-deflate parameter",
            Decline::DuplicateParam => "repeated permessage-deflate parameter",
            Decline::InvalidValue => "invalid permessage-deflate parameter value",
        }
    }
}

/// The four parameters as one element carries them; `Some(None)` is a valueless
/// `client_max_window_bits`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Raw {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    client_max_window_bits: Option<Option<u8>>,
}

/// RFC 7692 §7.1.2: "a decimal integer value without leading zeros between 8 and 15".
fn window_bits(value: &str) -> Result<u8, Decline> {
    match value.as_bytes() {
        [d @ b'8'..=b'9'] => Ok(d - b'0'),
        [b'1', d @ b'0'..=b'5'] => Ok(10 + d - b'0'),
        _ => Err(Decline::InvalidValue),
    }
}

/// Read the parameters of one permessage-deflate element, by the rules of §7.1 (the same
/// rules hold for an offer and a response: the caller checks what only one of them allows).
fn read_params(ext: &Extension<'_>) -> Result<Raw, Decline> {
    let mut raw = Raw::default();
    let mut seen = [false; 4];
    for param in &ext.params {
        let index = match param.name {
            SERVER_NO_CONTEXT_TAKEOVER => 0,
            CLIENT_NO_CONTEXT_TAKEOVER => 1,
            SERVER_MAX_WINDOW_BITS => 2,
            CLIENT_MAX_WINDOW_BITS => 3,
            _ => return Err(Decline::UnknownParam),
        };
        if std::mem::replace(&mut seen[index], true) {
            return Err(Decline::DuplicateParam);
        }
        let value = param.value.as_deref();
        match (index, value) {
            (0, None) => raw.server_no_context_takeover = true,
            (1, None) => raw.client_no_context_takeover = true,
            (2, Some(v)) => raw.server_max_window_bits = Some(window_bits(v)?),
            (3, None) => raw.client_max_window_bits = Some(None),
            (3, Some(v)) => raw.client_max_window_bits = Some(Some(window_bits(v)?)),
            _ => return Err(Decline::InvalidValue),
        }
    }
    Ok(raw)
}

/// What the server is willing to do (its side of RFC 7692 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerPolicy {
    /// Accept permessage-deflate at all.
    pub enabled: bool,
    /// The largest window the server's compressor uses, 8..=15 (announced in the answer when
    /// below 15). Compressor memory grows with it: see the codec's `held_bytes`.
    pub max_window_bits: u8,
    /// Always answer `server_no_context_takeover` (e.g. under memory pressure): the compressor
    /// keeps nothing between messages and can be freed or shared.
    pub no_context_takeover: bool,
    /// Ask the client for `client_no_context_takeover`, so the inflater can be freed between
    /// messages. (Echoed anyway when the client offers it.)
    pub request_client_no_context_takeover: bool,
}

impl Default for ServerPolicy {
    fn default() -> Self {
        ServerPolicy {
            enabled: true,
            max_window_bits: 15,
            no_context_takeover: false,
            request_client_no_context_takeover: false,
        }
    }
}

/// The server's acceptance: the parameters in force and the answer that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// What both ends now use.
    pub params: DeflateParams,
    /// The `Sec-WebSocket-Extensions` value of the 101 response.
    pub response: String,
}

impl ServerPolicy {
    /// Choose from the client's offers (RFC 7692 §5.1): the first permessage-deflate element
    /// that can be accepted, or `Ok(None)` to answer without the extension. `values` are the
    /// request's `Sec-WebSocket-Extensions` field values in order. Other extensions are ignored
    /// (§9.1: the server answers only with extensions it supports). A disabled policy does not
    /// read the field at all, so it never refuses a request over it.
    ///
    /// Per §7.1.1 and §7.1.2, the answer:
    /// * carries `server_no_context_takeover` if offered or if the policy forces it;
    /// * carries `client_no_context_takeover` if offered (the client said it will not take
    ///   over context anyway, and confirming it lets the inflater be freed) or requested;
    /// * carries `server_max_window_bits` = min(offered, policy) when offered, or the policy's
    ///   value when below 15. An offered 8 is accepted: zlib cannot make a raw stream with a
    ///   256-byte window, but its 9-bit one never reaches back more than 250 bytes (see the
    ///   codec's `CodecConfig::window_bits`);
    /// * never limits `client_max_window_bits`: zlib-rs's inflater holds a 32 KiB window
    ///   whatever the size, so a smaller client window would save nothing.
    pub fn negotiate<'a>(
        &self,
        values: impl IntoIterator<Item = &'a str>,
    ) -> Result<Option<Accepted>, HeaderError> {
        if !self.enabled {
            return Ok(None);
        }
        let mut offers = Vec::new();
        for value in values {
            parse_extensions(value, &mut offers)?;
        }
        Ok(offers
            .iter()
            .filter(|ext| ext.name == PERMESSAGE_DEFLATE)
            .find_map(|ext| read_params(ext).ok())
            .map(|offer| self.accept(offer)))
    }

    fn accept(&self, offer: Raw) -> Accepted {
        let policy_bits = self.max_window_bits.clamp(8, 15);
        let server_bits = offer
            .server_max_window_bits
            .map_or(policy_bits, |asked| asked.min(policy_bits));
        let params = DeflateParams {
            server_no_context_takeover: offer.server_no_context_takeover
                || self.no_context_takeover,
            client_no_context_takeover: offer.client_no_context_takeover
                || self.request_client_no_context_takeover,
            server_max_window_bits: server_bits,
            client_max_window_bits: 15,
        };
        let mut response = String::from(PERMESSAGE_DEFLATE);
        if params.server_no_context_takeover {
            let _ = write!(response, "; {SERVER_NO_CONTEXT_TAKEOVER}");
        }
        if params.client_no_context_takeover {
            let _ = write!(response, "; {CLIENT_NO_CONTEXT_TAKEOVER}");
        }
        if offer.server_max_window_bits.is_some() || server_bits < 15 {
            let _ = write!(response, "; {SERVER_MAX_WINDOW_BITS}={server_bits}");
        }
        Accepted { params, response }
    }
}

/// What a client offers (RFC 7692 §7.1). The default is `permessage-deflate;
/// client_max_window_bits`: any server answer is then acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientOffer {
    /// Ask the server to reset its compressor after each message.
    pub server_no_context_takeover: bool,
    /// Tell the server this client resets its compressor after each message.
    pub client_no_context_takeover: bool,
    /// Ask the server for at most this window, 8..=15.
    pub server_max_window_bits: Option<u8>,
    /// Say the server may limit this client's window: `Some(15)` is sent without a value, a
    /// smaller one as `client_max_window_bits=N` (the most the client will use). `None` leaves
    /// the parameter out, and the server may then not limit the window.
    pub client_max_window_bits: Option<u8>,
}

impl Default for ClientOffer {
    fn default() -> Self {
        ClientOffer {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: None,
            client_max_window_bits: Some(15),
        }
    }
}

/// Why a client fails the connection on the server's answer (RFC 7692 §5: "If a server gives
/// an invalid response, such as accepting a PMCE that the client did not offer, the client
/// MUST _Fail the WebSocket Connection_", and the conditions of §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseError {
    /// The value breaks the §9.1 grammar.
    Header(HeaderError),
    /// An extension other than permessage-deflate, or permessage-deflate twice.
    NotOffered,
    /// A parameter that is unknown, repeated or has an invalid value (§7.1).
    Invalid(Decline),
    /// `client_max_window_bits` though not offered, or without a value (§7.1.2.2).
    UnexpectedClientWindow,
    /// A window larger than the offer asked for.
    WindowTooLarge,
    /// An asked-for `server_no_context_takeover` or `server_max_window_bits` is missing: the
    /// server accepts those by including them (§7.1.1.1, §7.1.2.1).
    MissingParam,
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::Header(e) => e.fmt(f),
            ResponseError::NotOffered => f.write_str("server chose an extension not offered"),
            ResponseError::Invalid(d) => f.write_str(d.as_str()),
            ResponseError::UnexpectedClientWindow => {
                f.write_str("client_max_window_bits not offered or without a value")
            }
            ResponseError::WindowTooLarge => f.write_str("window larger than offered"),
            ResponseError::MissingParam => f.write_str("an offered parameter was not accepted"),
        }
    }
}

impl std::error::Error for ResponseError {}

impl ClientOffer {
    /// The `Sec-WebSocket-Extensions` value of the request.
    pub fn header_value(&self) -> String {
        let mut value = String::from(PERMESSAGE_DEFLATE);
        if self.server_no_context_takeover {
            let _ = write!(value, "; {SERVER_NO_CONTEXT_TAKEOVER}");
        }
        if self.client_no_context_takeover {
            let _ = write!(value, "; {CLIENT_NO_CONTEXT_TAKEOVER}");
        }
        if let Some(bits) = self.server_max_window_bits {
            let _ = write!(value, "; {SERVER_MAX_WINDOW_BITS}={}", bits.clamp(8, 15));
        }
        match self.client_max_window_bits {
            Some(bits) if bits < 15 => {
                let _ = write!(value, "; {CLIENT_MAX_WINDOW_BITS}={}", bits.max(8));
            }
            Some(_) => {
                let _ = write!(value, "; {CLIENT_MAX_WINDOW_BITS}");
            }
            None => {}
        }
        value
    }

    /// Check the server's answer (the 101's `Sec-WebSocket-Extensions` field values, in order)
    /// against this offer. `Ok(None)`: no extension in use. Only permessage-deflate was offered,
    /// so anything else, or two elements, fails (§9.1, RFC 7692 §5).
    pub fn accept<'a>(
        &self,
        values: impl IntoIterator<Item = &'a str>,
    ) -> Result<Option<DeflateParams>, ResponseError> {
        let mut answer = Vec::new();
        for value in values {
            parse_extensions(value, &mut answer).map_err(ResponseError::Header)?;
        }
        let ext = match answer.as_slice() {
            [] => return Ok(None),
            [ext] if ext.name == PERMESSAGE_DEFLATE => ext,
            _ => return Err(ResponseError::NotOffered),
        };
        let raw = read_params(ext).map_err(ResponseError::Invalid)?;
        if (self.server_no_context_takeover && !raw.server_no_context_takeover)
            || (self.server_max_window_bits.is_some() && raw.server_max_window_bits.is_none())
        {
            return Err(ResponseError::MissingParam);
        }
        let server_bits = raw.server_max_window_bits.unwrap_or(15);
        if server_bits > self.server_max_window_bits.unwrap_or(15) {
            return Err(ResponseError::WindowTooLarge);
        }
        let client_bits = match (raw.client_max_window_bits, self.client_max_window_bits) {
            (None, offered) => offered.unwrap_or(15),
            (Some(Some(bits)), Some(offered)) if bits <= offered => bits,
            (Some(Some(_)), Some(_)) => return Err(ResponseError::WindowTooLarge),
            (Some(_), _) => return Err(ResponseError::UnexpectedClientWindow),
        };
        Ok(Some(DeflateParams {
            server_no_context_takeover: raw.server_no_context_takeover,
            client_no_context_takeover: raw.client_no_context_takeover
                || self.client_no_context_takeover,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
        }))
    }
}

#[cfg(test)]
#[path = "extension_tests.rs"]
mod tests;
