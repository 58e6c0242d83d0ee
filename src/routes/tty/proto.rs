//! The `tty` subprotocol, as ttyd defines it (its `src/server.h` and its frontend's `Command` enum).
//!
//! Every message is binary and its first byte says what it is:
//!
//! | direction | first byte | rest |
//! |---|---|---|
//! | client → server | `'0'` | input bytes for the terminal |
//! | client → server | `'1'` | resize: JSON `{"columns":C,"rows":R}` |
//! | client → server | `'2'` | pause output |
//! | client → server | `'3'` | resume output |
//! | client → server | `'{'` | the first message: the whole message is JSON `{"AuthToken":T,"columns":C,"rows":R}` |
//! | server → client | `'0'` | output bytes from the terminal |
//! | server → client | `'1'` | window title (UTF-8) |
//! | server → client | `'2'` | preferences: a JSON object of xterm.js options |
//!
//! Decoding never panics: any input gives a message or a [`DecodeError`].
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

use super::sys::WinSize;

/// Client to server: input bytes.
pub const INPUT: u8 = b'0';
/// Client to server: resize JSON.
pub const RESIZE: u8 = b'1';
/// Client to server: pause output.
pub const PAUSE: u8 = b'2';
/// Client to server: resume output.
pub const RESUME: u8 = b'3';
/// Client to server: the first message is a JSON object, so it starts with `{`.
pub const JSON_DATA: u8 = b'{';
/// Server to client: terminal output.
pub const OUTPUT: u8 = b'0';
/// Server to client: window title.
pub const SET_WINDOW_TITLE: u8 = b'1';
/// Server to client: preferences JSON.
pub const SET_PREFERENCES: u8 = b'2';

/// A message from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage<'a> {
    /// The first message: credentials and the initial size.
    Init(Init),
    /// Bytes typed into the terminal.
    Input(&'a [u8]),
    /// The terminal's new size; zero fields are kept as the client sent them.
    Resize(WinSize),
    /// Stop sending output until [`ClientMessage::Resume`].
    Pause,
    Resume,
}

/// The first message's content.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Init {
    /// `AuthToken`; absent or `null` gives `None`.
    pub auth_token: Option<String>,
    /// `columns`/`rows`: `None` when either is absent or zero (ttyd then uses its default size).
    pub size: Option<WinSize>,
}

/// Why a client message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// A message with no bytes at all.
    Empty,
    /// A first byte that is none of `0 1 2 3 {`.
    UnknownType(u8),
    /// The JSON of a resize or of the first message is malformed or has fields of the wrong type
    /// (sizes must be integers 0..=65535, the token a string).
    BadJson(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Empty => write!(f, "empty message"),
            DecodeError::UnknownType(b) => write!(f, "unknown message type {:?}", char::from(*b)),
            DecodeError::BadJson(e) => write!(f, "bad JSON: {e}"),
        }
    }
}

impl std::error::Error for DecodeError {}

#[derive(Deserialize, Serialize)]
struct SizeJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    columns: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rows: Option<u16>,
}

#[derive(Deserialize, Serialize)]
struct InitJson {
    #[serde(rename = "AuthToken", default)]
    auth_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    columns: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rows: Option<u16>,
}

fn size_of(columns: Option<u16>, rows: Option<u16>) -> Option<WinSize> {
    match (columns, rows) {
        (Some(cols), Some(rows)) if cols > 0 && rows > 0 => Some(WinSize { cols, rows }),
        _ => None,
    }
}

/// Parses a JSON object (not an array, which serde would also accept for a struct).
/// The longest JSON message accepted: ttyd's are a few dozen bytes.
const MAX_JSON: usize = 4096;

/// Parse a JSON object straight into `T`: unknown fields are skipped, never kept, and no tree of
/// the peer's input is built.
fn json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() > MAX_JSON {
        return Err(DecodeError::BadJson(format!(
            "a JSON message over {MAX_JSON} bytes"
        )));
    }
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return Err(DecodeError::BadJson("expected a JSON object".into()));
    }
    // JSON is UTF-8 (RFC 8259 §8.1), also in the fields skipped unread, which serde_json does
    // not check when it ignores them.
    let text = std::str::from_utf8(bytes)
        .map_err(|e| DecodeError::BadJson(format!("JSON that is not UTF-8: {e}")))?;
    serde_json::from_str(text).map_err(|e| DecodeError::BadJson(e.to_string()))
}

/// Decodes one complete client message (binary, or text carrying the same bytes).
pub fn decode_client(msg: &[u8]) -> Result<ClientMessage<'_>, DecodeError> {
    let (&kind, rest) = msg.split_first().ok_or(DecodeError::Empty)?;
    match kind {
        INPUT => Ok(ClientMessage::Input(rest)),
        RESIZE => {
            let s: SizeJson = json(rest)?;
            Ok(ClientMessage::Resize(WinSize {
                cols: s.columns.unwrap_or(0),
                rows: s.rows.unwrap_or(0),
            }))
        }
        // ttyd ignores anything after the command byte of pause/resume; so do we.
        PAUSE => Ok(ClientMessage::Pause),
        RESUME => Ok(ClientMessage::Resume),
        JSON_DATA => {
            let init: InitJson = json(msg)?;
            Ok(ClientMessage::Init(Init {
                auth_token: init.auth_token,
                size: size_of(init.columns, init.rows),
            }))
        }
        other => Err(DecodeError::UnknownType(other)),
    }
}

/// Encodes a client message (for clients and tests), appending to `out`.
pub fn encode_client(msg: &ClientMessage<'_>, out: &mut Vec<u8>) {
    match msg {
        ClientMessage::Init(init) => {
            let json = InitJson {
                auth_token: init.auth_token.clone(),
                columns: init.size.map(|s| s.cols),
                rows: init.size.map(|s| s.rows),
            };
            out.extend_from_slice(&serde_json::to_vec(&json).expect("plain struct serialises"));
        }
        ClientMessage::Input(bytes) => {
            out.push(INPUT);
            out.extend_from_slice(bytes);
        }
        ClientMessage::Resize(size) => {
            out.push(RESIZE);
            let json = SizeJson {
                columns: Some(size.cols),
                rows: Some(size.rows),
            };
            out.extend_from_slice(&serde_json::to_vec(&json).expect("plain struct serialises"));
        }
        ClientMessage::Pause => out.push(PAUSE),
        ClientMessage::Resume => out.push(RESUME),
    }
}

/// A message from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMessage<'a> {
    Output(&'a [u8]),
    Title(&'a str),
    /// A JSON object (xterm.js options such as `{"disableStdin":true}`).
    Preferences(&'a str),
}

/// Encodes a server message, appending to `out`.
pub fn encode_server(msg: &ServerMessage<'_>, out: &mut Vec<u8>) {
    let (kind, body) = match msg {
        ServerMessage::Output(b) => (OUTPUT, *b),
        ServerMessage::Title(t) => (SET_WINDOW_TITLE, t.as_bytes()),
        ServerMessage::Preferences(p) => (SET_PREFERENCES, p.as_bytes()),
    };
    out.reserve(1 + body.len());
    out.push(kind);
    out.extend_from_slice(body);
}

/// Why a server message could not be decoded (client side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerDecodeError {
    Empty,
    UnknownType(u8),
    NotUtf8,
}

/// Decodes one server message (for clients and tests).
pub fn decode_server(msg: &[u8]) -> Result<ServerMessage<'_>, ServerDecodeError> {
    let (&kind, rest) = msg.split_first().ok_or(ServerDecodeError::Empty)?;
    let text = || std::str::from_utf8(rest).map_err(|_| ServerDecodeError::NotUtf8);
    match kind {
        OUTPUT => Ok(ServerMessage::Output(rest)),
        SET_WINDOW_TITLE => Ok(ServerMessage::Title(text()?)),
        SET_PREFERENCES => Ok(ServerMessage::Preferences(text()?)),
        other => Err(ServerDecodeError::UnknownType(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttyd_frontend_messages() {
        // Exactly what ttyd's frontend sends (textEncoder.encode(...) of these strings).
        assert_eq!(decode_client(b"0ls\r"), Ok(ClientMessage::Input(b"ls\r")));
        assert_eq!(decode_client(b"0"), Ok(ClientMessage::Input(b"")));
        assert_eq!(
            decode_client(br#"1{"columns":100,"rows":30}"#),
            Ok(ClientMessage::Resize(WinSize {
                cols: 100,
                rows: 30
            }))
        );
        assert_eq!(decode_client(b"2"), Ok(ClientMessage::Pause));
        assert_eq!(decode_client(b"3"), Ok(ClientMessage::Resume));
        assert_eq!(
            decode_client(br#"{"AuthToken":"s3cret","columns":120,"rows":40}"#),
            Ok(ClientMessage::Init(Init {
                auth_token: Some("s3cret".into()),
                size: Some(WinSize {
                    cols: 120,
                    rows: 40
                }),
            }))
        );
    }

    /// A fuzz finding: serde_json skips an unknown field's string without checking its UTF-8.
    #[test]
    fn json_that_is_not_utf8_is_refused_even_where_unread() {
        assert!(matches!(
            decode_client(b"{\"x\":\"\xff\"}"),
            Err(DecodeError::BadJson(_))
        ));
        assert!(matches!(
            decode_client(b"1{\"x\":\"\xc3\",\"columns\":80,\"rows\":24}"),
            Err(DecodeError::BadJson(_))
        ));
    }

    #[test]
    fn init_variants() {
        let init = |s: &[u8]| match decode_client(s) {
            Ok(ClientMessage::Init(i)) => i,
            other => panic!("{other:?}"),
        };
        assert_eq!(init(b"{}"), Init::default());
        assert_eq!(
            init(br#"{"AuthToken":null,"columns":0,"rows":0}"#),
            Init::default()
        );
        assert_eq!(init(br#"{"columns":80}"#).size, None);
        assert_eq!(
            init(br#"{"AuthToken":"t","extra":[1,2]}"#)
                .auth_token
                .as_deref(),
            Some("t")
        );
    }

    #[test]
    fn errors_not_panics() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (b"9", "unknown"),
            (b"\xff", "unknown"),
            (b"1", "json"),
            (b"1{", "json"),
            (br#"1{"columns":-1,"rows":2}"#, "json"),
            (br#"1{"columns":65536,"rows":2}"#, "json"),
            (br#"1{"columns":1.5,"rows":2}"#, "json"),
            (br#"1{"columns":"80","rows":2}"#, "json"),
            (b"1[]", "json"),
            (b"{", "json"),
            (br#"{"AuthToken":5}"#, "json"),
            (b"{\"AuthToken\":\"\xff\"}", "json"),
            (br#"{"a":1} trailing"#, "json"),
        ];
        for (input, want) in cases {
            let got = decode_client(input);
            let ok = matches!(
                (got.as_ref(), *want),
                (Err(DecodeError::Empty), "empty")
                    | (Err(DecodeError::UnknownType(_)), "unknown")
                    | (Err(DecodeError::BadJson(_)), "json")
            );
            assert!(
                ok,
                "{:?} gave {got:?}, wanted {want}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn every_short_input_is_handled() {
        // Every one- and two-byte message decodes or errors, never panics.
        for a in 0..=255u8 {
            let _ = decode_client(&[a]);
            for b in 0..=255u8 {
                let _ = decode_client(&[a, b]);
            }
        }
    }

    #[test]
    fn round_trips() {
        let msgs = [
            ClientMessage::Input(b"echo hi\r"),
            ClientMessage::Resize(WinSize {
                cols: 100,
                rows: 30,
            }),
            ClientMessage::Pause,
            ClientMessage::Resume,
            ClientMessage::Init(Init {
                auth_token: Some("tok\"en".into()),
                size: Some(WinSize {
                    cols: 1,
                    rows: 65535,
                }),
            }),
            ClientMessage::Init(Init::default()),
        ];
        for msg in msgs {
            let mut buf = Vec::new();
            encode_client(&msg, &mut buf);
            assert_eq!(decode_client(&buf), Ok(msg));
        }
        for msg in [
            ServerMessage::Output(b"\x1b[31mred\xff"),
            ServerMessage::Title("sh (host)"),
            ServerMessage::Preferences("{}"),
        ] {
            let mut buf = Vec::new();
            encode_server(&msg, &mut buf);
            assert_eq!(decode_server(&buf), Ok(msg));
        }
        let mut buf = Vec::new();
        encode_server(&ServerMessage::Output(b"hi"), &mut buf);
        assert_eq!(buf, b"0hi");
        assert_eq!(decode_server(b""), Err(ServerDecodeError::Empty));
        assert_eq!(decode_server(b"1\xff"), Err(ServerDecodeError::NotUtf8));
        assert_eq!(
            decode_server(b"7"),
            Err(ServerDecodeError::UnknownType(b'7'))
        );
    }
}
