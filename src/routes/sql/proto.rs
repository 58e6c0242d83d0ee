//! The Hrana wire format (JSON encoding), versions 1 to 3.
//!
//! Shapes follow `docs/HRANA_3_SPEC.md` of the libSQL repository, section by section:
//! "Hrana over WebSocket / Messages" for [`ClientMsg`] and [`ServerMsg`], "Requests" for
//! [`Request`] and [`Response`], "Shared structures" for [`Stmt`], [`Batch`], [`BatchCond`],
//! [`StmtResult`], [`BatchResult`], [`CursorEntry`], [`DescribeResult`] and [`Value`].
//!
//! Parsing is strict about types and lenient about extra fields: "when a peer receives a protocol
//! structure that includes an unrecognized field, it must ignore this field". An unknown `type`,
//! a missing field or a value of the wrong type is a deserialization error, which the session
//! turns into a protocol-error close, never a panic.
//!
//! The structures tagged by a `type` field are parsed by [`tagged`], not by serde's
//! internally-tagged enums: those first copy the whole object into a generic tree (so a 64 MiB
//! message cost more than a gigabyte); here nothing of the peer's input is held but the typed
//! result, and nesting is bounded.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD_NO_PAD};
use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A Hrana protocol version, negotiated as a WebSocket subprotocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// `hrana1`
    Hrana1 = 1,
    /// `hrana2`: adds `sequence`, `describe`, `store_sql`/`close_sql`, `sql_id`, repeated hello.
    Hrana2 = 2,
    /// `hrana3`: adds cursors, `get_autocommit` and the `is_autocommit` batch condition.
    Hrana3 = 3,
}

impl Version {
    /// Every version this implementation speaks, highest first.
    pub const ALL: [Version; 3] = [Version::Hrana3, Version::Hrana2, Version::Hrana1];

    /// The version named by a subprotocol token, JSON encoding only (`hrana3-protobuf` is not
    /// supported). Tokens are compared exactly: RFC 6455 §4.1 subprotocol names are
    /// case-sensitive.
    pub fn from_subprotocol(token: &str) -> Option<Version> {
        match token {
            "hrana1" => Some(Version::Hrana1),
            "hrana2" => Some(Version::Hrana2),
            "hrana3" => Some(Version::Hrana3),
            _ => None,
        }
    }

    /// The subprotocol token to put in `Sec-WebSocket-Protocol`.
    pub fn subprotocol(self) -> &'static str {
        match self {
            Version::Hrana1 => "hrana1",
            Version::Hrana2 => "hrana2",
            Version::Hrana3 => "hrana3",
        }
    }

    /// The highest version among the offered subprotocols, if any is a Hrana JSON one.
    ///
    /// `@libsql/client` offers `hrana2, hrana1`; newer clients offer
    /// `hrana3-protobuf, hrana3, hrana2, hrana1`; both get their best JSON version.
    pub fn negotiate<'a>(offered: impl IntoIterator<Item = &'a str>) -> Option<Version> {
        offered
            .into_iter()
            .filter_map(|token| Version::from_subprotocol(token.trim()))
            .max()
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.subprotocol())
    }
}

// ---------------------------------------------------------------------------------------------
// Client messages
// ---------------------------------------------------------------------------------------------

/// How deep tagged structures may nest (batch conditions nest): deeper is refused rather than
/// recursed into.
const MAX_TAGGED_DEPTH: u32 = 16;

thread_local! {
    static TAGGED_DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// How deep arrays and objects may nest in a whole message.
const MAX_JSON_DEPTH: usize = 48;

/// Parse a message (or any protocol structure) from a peer's JSON text. One linear pass first
/// bounds the nesting, so the parse below costs a bounded multiple of the input however it is
/// shaped, and never recurses deep.
pub fn from_json<'de, T: Deserialize<'de>>(text: &'de str) -> serde_json::Result<T> {
    if nesting_depth(text) > MAX_JSON_DEPTH {
        return Err(de::Error::custom(format!(
            "JSON nested more than {MAX_JSON_DEPTH} deep"
        )));
    }
    serde_json::from_str(text)
}

/// The deepest nesting of arrays and objects in JSON text (strings skipped).
fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in text.as_bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Only the `type` of an object; every other field is skipped, not kept.
#[derive(Deserialize)]
struct Tag<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
}

/// Deserialize an object whose `type` field says what it is, without building a tree of it:
/// the object is taken as a borrowed slice of the input, its `type` read in a pass that skips
/// everything else, then `variant` parses the slice as the struct that type names (that struct
/// ignores the `type` field like any unknown one). `None` from `variant`: an unknown type.
pub(crate) fn tagged<'de, D: Deserializer<'de>, T>(
    d: D,
    expected: &'static [&'static str],
    variant: impl FnOnce(&str, &'de str) -> Option<serde_json::Result<T>>,
) -> Result<T, D::Error> {
    let raw = <&'de RawValue>::deserialize(d)?;
    let text = raw.get();
    let depth = TAGGED_DEPTH.with(|d| {
        let depth = d.get() + 1;
        d.set(depth);
        depth
    });
    let result = if depth > MAX_TAGGED_DEPTH {
        Err(de::Error::custom(format!(
            "structures nested more than {MAX_TAGGED_DEPTH} deep"
        )))
    } else {
        serde_json::from_str::<Tag<'_>>(text)
            .map_err(de::Error::custom)
            .and_then(|tag| match variant(&tag.kind, text) {
                Some(parsed) => parsed.map_err(de::Error::custom),
                None => Err(de::Error::unknown_variant(&tag.kind, expected)),
            })
    };
    TAGGED_DEPTH.with(|d| d.set(depth - 1));
    result
}

/// Parse `text` as `T`, then wrap it.
pub(crate) fn as_variant<'de, T: Deserialize<'de>, U>(
    text: &'de str,
    wrap: impl FnOnce(T) -> U,
) -> Option<serde_json::Result<U>> {
    Some(serde_json::from_str(text).map(wrap))
}

/// `type ClientMsg = HelloMsg | RequestMsg`
#[derive(Debug)]
pub enum ClientMsg {
    /// `{"type": "hello", "jwt": string | null}`; `@libsql/client` omits `jwt` without a token.
    Hello { jwt: Option<String> },
    /// `{"type": "request", "request_id": int32, "request": Request}`
    Request { request_id: i32, request: Request },
}

#[derive(Deserialize)]
struct HelloMsg {
    #[serde(default)]
    jwt: Option<String>,
}

#[derive(Deserialize)]
struct RequestMsg {
    request_id: i32,
    request: Request,
}

impl<'de> Deserialize<'de> for ClientMsg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        tagged(d, &["hello", "request"], |kind, text| match kind {
            "hello" => as_variant(text, |m: HelloMsg| ClientMsg::Hello { jwt: m.jwt }),
            "request" => as_variant(text, |m: RequestMsg| ClientMsg::Request {
                request_id: m.request_id,
                request: m.request,
            }),
            _ => None,
        })
    }
}

/// The payload of a `request` message.
#[derive(Debug)]
pub enum Request {
    OpenStream(OpenStreamReq),
    CloseStream(CloseStreamReq),
    Execute(ExecuteReq),
    Batch(BatchReq),
    OpenCursor(OpenCursorReq),
    CloseCursor(CloseCursorReq),
    FetchCursor(FetchCursorReq),
    Sequence(SequenceReq),
    Describe(DescribeReq),
    StoreSql(StoreSqlReq),
    CloseSql(CloseSqlReq),
    GetAutocommit(GetAutocommitReq),
}

impl<'de> Deserialize<'de> for Request {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const TYPES: &[&str] = &[
            "open_stream",
            "close_stream",
            "execute",
            "batch",
            "open_cursor",
            "close_cursor",
            "fetch_cursor",
            "sequence",
            "describe",
            "store_sql",
            "close_sql",
            "get_autocommit",
        ];
        tagged(d, TYPES, |kind, text| match kind {
            "open_stream" => as_variant(text, Request::OpenStream),
            "close_stream" => as_variant(text, Request::CloseStream),
            "execute" => as_variant(text, Request::Execute),
            "batch" => as_variant(text, Request::Batch),
            "open_cursor" => as_variant(text, Request::OpenCursor),
            "close_cursor" => as_variant(text, Request::CloseCursor),
            "fetch_cursor" => as_variant(text, Request::FetchCursor),
            "sequence" => as_variant(text, Request::Sequence),
            "describe" => as_variant(text, Request::Describe),
            "store_sql" => as_variant(text, Request::StoreSql),
            "close_sql" => as_variant(text, Request::CloseSql),
            "get_autocommit" => as_variant(text, Request::GetAutocommit),
            _ => None,
        })
    }
}

#[derive(Debug, Deserialize)]
pub struct OpenStreamReq {
    pub stream_id: i32,
}

#[derive(Debug, Deserialize)]
pub struct CloseStreamReq {
    pub stream_id: i32,
}

#[derive(Debug, Deserialize)]
pub struct ExecuteReq {
    pub stream_id: i32,
    pub stmt: Stmt,
}

#[derive(Debug, Deserialize)]
pub struct BatchReq {
    pub stream_id: i32,
    pub batch: Batch,
}

#[derive(Debug, Deserialize)]
pub struct OpenCursorReq {
    pub stream_id: i32,
    pub cursor_id: i32,
    pub batch: Batch,
}

#[derive(Debug, Deserialize)]
pub struct CloseCursorReq {
    pub cursor_id: i32,
}

#[derive(Debug, Deserialize)]
pub struct FetchCursorReq {
    pub cursor_id: i32,
    pub max_count: u32,
}

#[derive(Debug, Deserialize)]
pub struct SequenceReq {
    pub stream_id: i32,
    #[serde(default)]
    pub sql: Option<String>,
    #[serde(default)]
    pub sql_id: Option<i32>,
}

#[derive(Debug, Deserialize)]
pub struct DescribeReq {
    pub stream_id: i32,
    #[serde(default)]
    pub sql: Option<String>,
    #[serde(default)]
    pub sql_id: Option<i32>,
}

#[derive(Debug, Deserialize)]
pub struct StoreSqlReq {
    pub sql_id: i32,
    pub sql: String,
}

#[derive(Debug, Deserialize)]
pub struct CloseSqlReq {
    pub sql_id: i32,
}

#[derive(Debug, Deserialize)]
pub struct GetAutocommitReq {
    pub stream_id: i32,
}

/// A statement: `sql` or `sql_id` (exactly one), positional `args`, `named_args`, `want_rows`.
#[derive(Debug, Deserialize)]
pub struct Stmt {
    #[serde(default)]
    pub sql: Option<String>,
    #[serde(default)]
    pub sql_id: Option<i32>,
    #[serde(default)]
    pub args: Vec<Value>,
    #[serde(default)]
    pub named_args: Vec<NamedArg>,
    /// "If the field is omitted, the default value is `true`."
    #[serde(default)]
    pub want_rows: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct NamedArg {
    pub name: String,
    pub value: Value,
}

#[derive(Debug, Deserialize)]
pub struct Batch {
    pub steps: Vec<BatchStep>,
}

#[derive(Debug, Deserialize)]
pub struct BatchStep {
    #[serde(default)]
    pub condition: Option<BatchCond>,
    pub stmt: Stmt,
}

/// Batch conditions. Steps are referenced by 0-based index.
#[derive(Debug)]
pub enum BatchCond {
    Ok {
        step: u32,
    },
    Error {
        step: u32,
    },
    Not {
        cond: Box<BatchCond>,
    },
    And {
        conds: Vec<BatchCond>,
    },
    Or {
        conds: Vec<BatchCond>,
    },
    /// Hrana 3.
    IsAutocommit {},
}

#[derive(Deserialize)]
struct StepCond {
    step: u32,
}

#[derive(Deserialize)]
struct NotCond {
    cond: Box<BatchCond>,
}

#[derive(Deserialize)]
struct ListCond {
    conds: Vec<BatchCond>,
}

#[derive(Deserialize)]
struct NoFields {}

impl<'de> Deserialize<'de> for BatchCond {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const TYPES: &[&str] = &["ok", "error", "not", "and", "or", "is_autocommit"];
        tagged(d, TYPES, |kind, text| match kind {
            "ok" => as_variant(text, |c: StepCond| BatchCond::Ok { step: c.step }),
            "error" => as_variant(text, |c: StepCond| BatchCond::Error { step: c.step }),
            "not" => as_variant(text, |c: NotCond| BatchCond::Not { cond: c.cond }),
            "and" => as_variant(text, |c: ListCond| BatchCond::And { conds: c.conds }),
            "or" => as_variant(text, |c: ListCond| BatchCond::Or { conds: c.conds }),
            "is_autocommit" => as_variant(text, |_: NoFields| BatchCond::IsAutocommit {}),
            _ => None,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Server messages
// ---------------------------------------------------------------------------------------------

/// `type ServerMsg = HelloOkMsg | HelloErrorMsg | ResponseOkMsg | ResponseErrorMsg`
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    HelloOk {},
    HelloError { error: Error },
    ResponseOk { request_id: i32, response: Response },
    ResponseError { request_id: i32, error: Error },
}

impl ServerMsg {
    /// The JSON text of this message.
    pub fn to_json(&self) -> String {
        // Serializing these types cannot fail: every map key is a string and no Serialize impl
        // here returns an error. Fall back to a valid message rather than panicking anyway.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"hello_error","error":{"message":"internal serialization error","code":"INTERNAL"}}"#
                .to_owned()
        })
    }
}

/// Hrana over HTTP: one result of a pipeline, `{"type": "ok", "response": ...}` or
/// `{"type": "error", "error": ...}`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamResult {
    Ok { response: Response },
    Error { error: Error },
}

impl StreamResult {
    pub fn to_json(&self) -> String {
        // As for ServerMsg: cannot fail; a valid result rather than a panic anyway.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","error":{"message":"internal serialization error","code":"INTERNAL"}}"#
                .to_owned()
        })
    }
}

/// The payload of a `response_ok` message; its `type` matches the request's.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    OpenStream {},
    CloseStream {},
    /// Hrana over HTTP's answer to `close` (its stream's `close_stream`).
    Close {},
    Execute {
        result: StmtResult,
    },
    Batch {
        result: BatchResult,
    },
    OpenCursor {},
    CloseCursor {},
    FetchCursor {
        entries: Vec<CursorEntry>,
        done: bool,
    },
    Sequence {},
    Describe {
        result: DescribeResult,
    },
    StoreSql {},
    CloseSql {},
    GetAutocommit {
        is_autocommit: bool,
    },
}

/// `{"message": string, "code"?: string | null}`. We always send a code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Error {
    pub message: String,
    pub code: String,
}

impl Error {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
            code: code.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StmtResult {
    pub cols: Vec<Col>,
    pub rows: Vec<Vec<Value>>,
    pub affected_row_count: u64,
    /// A 64-bit signed integer, as a string in JSON.
    #[serde(serialize_with = "opt_i64_as_str")]
    pub last_insert_rowid: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Col {
    pub name: Option<String>,
    pub decltype: Option<String>,
}

/// `step_results[i]` / `step_errors[i]`; both `null` when step `i` was skipped.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BatchResult {
    pub step_results: Vec<Option<StmtResult>>,
    pub step_errors: Vec<Option<Error>>,
}

/// Hrana 3 cursor entries.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CursorEntry {
    StepBegin {
        step: u32,
        cols: Vec<Col>,
    },
    StepEnd {
        affected_row_count: u64,
        #[serde(serialize_with = "opt_i64_as_str")]
        last_insert_rowid: Option<i64>,
    },
    StepError {
        step: u32,
        error: Error,
    },
    Row {
        row: Vec<Value>,
    },
    Error {
        error: Error,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct DescribeResult {
    pub params: Vec<DescribeParam>,
    pub cols: Vec<DescribeCol>,
    pub is_explain: bool,
    pub is_readonly: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct DescribeParam {
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DescribeCol {
    pub name: String,
    pub decltype: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

/// A SQLite value:
///
/// ```text
/// { "type": "null" }
/// { "type": "integer", "value": string }   // 64-bit signed, as a decimal string
/// { "type": "float", "value": number }
/// { "type": "text", "value": string }
/// { "type": "blob", "base64": string }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Float(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// Base64 decoding that accepts input with or without `=` padding: sqld sends it unpadded,
/// js-base64 (used by `@libsql/client`) sends it padded.
const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Deserialize)]
struct IntegerValue {
    #[serde(deserialize_with = "i64_from_str_or_number")]
    value: i64,
}

#[derive(Deserialize)]
struct FloatValue {
    value: f64,
}

#[derive(Deserialize)]
struct TextValue {
    value: String,
}

#[derive(Deserialize)]
struct BlobValue<'a> {
    #[serde(borrow)]
    base64: Cow<'a, str>,
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        const TYPES: &[&str] = &["null", "integer", "float", "text", "blob"];
        tagged(d, TYPES, |kind, text| match kind {
            "null" => as_variant(text, |_: NoFields| Value::Null),
            "integer" => as_variant(text, |v: IntegerValue| Value::Integer(v.value)),
            "float" => as_variant(text, |v: FloatValue| Value::Float(v.value)),
            "text" => as_variant(text, |v: TextValue| Value::Text(v.value)),
            "blob" => Some(serde_json::from_str::<BlobValue<'_>>(text).and_then(|v| {
                BASE64_LENIENT
                    .decode(v.base64.as_bytes())
                    .map(Value::Blob)
                    .map_err(|_| de::Error::custom("blob is not valid base64"))
            })),
            _ => None,
        })
    }
}

/// The spec encodes integers as strings; a plain JSON integer is accepted too.
fn i64_from_str_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct V;
    impl de::Visitor<'_> for V {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a 64-bit signed integer as a decimal string")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<i64, E> {
            s.parse()
                .map_err(|_| E::invalid_value(de::Unexpected::Str(s), &self))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
        }
    }
    d.deserialize_any(V)
}

/// Serializes through `collect_str`, so no intermediate `String` is built.
struct Display<T>(T);

impl<T: fmt::Display> Serialize for Display<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let len = if matches!(self, Value::Null) { 1 } else { 2 };
        let mut m = s.serialize_map(Some(len))?;
        match self {
            Value::Null => m.serialize_entry("type", "null")?,
            Value::Integer(i) => {
                m.serialize_entry("type", "integer")?;
                m.serialize_entry("value", &Display(i))?;
            }
            Value::Float(x) => {
                m.serialize_entry("type", "float")?;
                if x.is_finite() {
                    m.serialize_entry("value", x)?;
                } else {
                    // JSON has no infinity and serde_json would write `null`, which every client
                    // rejects. `1e999` is valid JSON grammar and JavaScript's JSON.parse reads it
                    // as Infinity. (SQLite turns NaN into NULL, so only ±Inf reaches here.)
                    let text = if *x > 0.0 { "1e999" } else { "-1e999" };
                    match serde_json::value::RawValue::from_string(text.to_owned()) {
                        Ok(raw) => m.serialize_entry("value", &raw)?,
                        Err(_) => m.serialize_entry("value", &Option::<f64>::None)?,
                    }
                }
            }
            Value::Text(t) => {
                m.serialize_entry("type", "text")?;
                m.serialize_entry("value", t)?;
            }
            Value::Blob(b) => {
                m.serialize_entry("type", "blob")?;
                // Unpadded, exactly as sqld sends it; every Hrana client decodes that.
                m.serialize_entry(
                    "base64",
                    &Display(base64::display::Base64Display::new(b, &STANDARD_NO_PAD)),
                )?;
            }
        }
        m.end()
    }
}

fn opt_i64_as_str<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(i) => s.collect_str(i),
        None => s.serialize_none(),
    }
}

/// An upper bound, close to exact, of the JSON size of a value: used to stop building a response
/// that would exceed the size limit before it is built.
pub fn value_json_size(v: &rusqlite::types::ValueRef<'_>) -> usize {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => 15,
        ValueRef::Integer(_) => 32 + 20,
        ValueRef::Real(_) => 28 + 24,
        // Escaping can expand a byte up to 6 (`\u00XX`); plain text is the common case.
        ValueRef::Text(t) => 28 + t.len() + t.len() / 8,
        ValueRef::Blob(b) => 28 + b.len().div_ceil(3) * 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Parse JSON text, as the session does (the tagged structures borrow from the text).
    fn value_from<T: serde::de::DeserializeOwned>(
        json: serde_json::Value,
    ) -> serde_json::Result<T> {
        serde_json::from_str(&json.to_string())
    }

    fn to_value<T: Serialize>(t: &T) -> serde_json::Value {
        serde_json::from_str(&serde_json::to_string(t).expect("serialize")).expect("reparse")
    }

    #[test]
    fn negotiate_picks_highest_json_version() {
        assert_eq!(
            Version::negotiate(["hrana2", "hrana1"]),
            Some(Version::Hrana2)
        );
        assert_eq!(
            Version::negotiate(["hrana3-protobuf", "hrana3", "hrana2", "hrana1"]),
            Some(Version::Hrana3)
        );
        assert_eq!(
            Version::negotiate(["hrana1", "hrana3"]),
            Some(Version::Hrana3)
        );
        assert_eq!(Version::negotiate(["tty", "HRANA2"]), None);
        assert_eq!(Version::negotiate([]), None);
    }

    #[test]
    fn values_encode_exactly_as_the_spec() {
        let big = (1i64 << 53) + 1;
        assert_eq!(to_value(&Value::Null), json!({"type": "null"}));
        assert_eq!(
            to_value(&Value::Integer(big)),
            json!({"type": "integer", "value": "9007199254740993"})
        );
        assert_eq!(
            to_value(&Value::Integer(i64::MIN)),
            json!({"type": "integer", "value": "-9223372036854775808"})
        );
        assert_eq!(
            to_value(&Value::Float(0.5)),
            json!({"type": "float", "value": 0.5})
        );
        assert_eq!(
            to_value(&Value::Text("héllo \"q\"".into())),
            json!({"type": "text", "value": "héllo \"q\""})
        );
        assert_eq!(
            to_value(&Value::Blob(vec![0, 1, 2, 255])),
            json!({"type": "blob", "base64": "AAEC/w"})
        );
        assert_eq!(
            serde_json::to_string(&Value::Float(f64::INFINITY)).expect("ser"),
            r#"{"type":"float","value":1e999}"#
        );
        assert_eq!(
            serde_json::to_string(&Value::Float(f64::NEG_INFINITY)).expect("ser"),
            r#"{"type":"float","value":-1e999}"#
        );
    }

    #[test]
    fn floats_decode_exactly_and_round_trip_to_the_same_bits() {
        // serde_json's default parser read these up to two units in the last place off; a
        // stored float must be the one the client sent (the `float_roundtrip` feature).
        for text in [
            "0.8405117300469474950376713159374e249",
            "0.52369136594558395993878180596e-155",
            "0.30000000000000004441",
            "2.2250738585072011e-308",
        ] {
            let exact: f64 = text.parse().expect("a float");
            let json = format!(r#"{{"type":"float","value":{text}}}"#);
            let v: Value = serde_json::from_str(&json).expect("float");
            assert_eq!(v, Value::Float(exact), "{text}");
            let again: Value =
                serde_json::from_str(&serde_json::to_string(&v).expect("ser")).expect("de");
            match again {
                Value::Float(b) => assert_eq!(b.to_bits(), exact.to_bits(), "{text}"),
                other => panic!("{text} came back as {other:?}"),
            }
        }
    }

    #[test]
    fn values_decode_leniently_where_harmless() {
        let v: Value = value_from(json!({"type":"integer","value":"-42"})).expect("int");
        assert_eq!(v, Value::Integer(-42));
        let v: Value = value_from(json!({"type":"integer","value":7})).expect("int");
        assert_eq!(v, Value::Integer(7));
        let v: Value = value_from(json!({"type":"float","value":3})).expect("float");
        assert_eq!(v, Value::Float(3.0));
        for b64 in ["AAEC/w", "AAEC/w==", "AAEC/w="] {
            let v: Value = value_from(json!({"type":"blob","base64": b64})).expect("blob");
            assert_eq!(v, Value::Blob(vec![0, 1, 2, 255]), "{b64}");
        }
        let v: Value = value_from(json!({"type":"null","extra":1})).expect("unknown field");
        assert_eq!(v, Value::Null);
    }

    #[test]
    fn bad_values_are_errors() {
        for bad in [
            json!({"type":"integer","value":"9223372036854775808"}),
            json!({"type":"integer","value":"12x"}),
            json!({"type":"integer","value":1.5}),
            json!({"type":"float","value":"1.5"}),
            json!({"type":"blob","base64":"!!!"}),
            json!({"type":"text"}),
            json!({"type":"bigint","value":"1"}),
            json!({"value":"1"}),
            json!([1]),
        ] {
            assert!(
                serde_json::from_str::<Value>(&bad.to_string()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn client_messages_parse() {
        let m: ClientMsg = serde_json::from_str(r#"{"type":"hello"}"#).expect("hello");
        assert!(matches!(m, ClientMsg::Hello { jwt: None }));
        let m: ClientMsg =
            serde_json::from_str(r#"{"type":"hello","jwt":"t0k"}"#).expect("hello jwt");
        assert!(matches!(m, ClientMsg::Hello { jwt: Some(ref t) } if t == "t0k"));
        let m: ClientMsg = serde_json::from_str(
            r#"{"type":"request","request_id":5,"request":{"type":"execute","stream_id":1,
               "stmt":{"sql":"SELECT ?","args":[{"type":"integer","value":"1"}],"want_rows":true}}}"#,
        )
        .expect("execute");
        match m {
            ClientMsg::Request {
                request_id: 5,
                request: Request::Execute(req),
            } => {
                assert_eq!(req.stream_id, 1);
                assert_eq!(req.stmt.sql.as_deref(), Some("SELECT ?"));
                assert_eq!(req.stmt.args, vec![Value::Integer(1)]);
                assert_eq!(req.stmt.want_rows, Some(true));
            }
            other => panic!("unexpected {other:?}"),
        }
        let m: ClientMsg = serde_json::from_str(
            r#"{"type":"request","request_id":1,"request":{"type":"batch","stream_id":0,"batch":{"steps":[
                {"stmt":{"sql":"BEGIN"}},
                {"condition":{"type":"and","conds":[{"type":"ok","step":0},
                    {"type":"not","cond":{"type":"is_autocommit"}}]},"stmt":{"sql_id":3}}]}}}"#,
        )
        .expect("batch");
        assert!(matches!(
            m,
            ClientMsg::Request {
                request: Request::Batch(_),
                ..
            }
        ));
    }

    #[test]
    fn malformed_client_messages_are_errors() {
        for bad in [
            "",
            "null",
            "[]",
            r#"{"type":"hullo"}"#,
            r#"{"jwt":"x"}"#,
            r#"{"type":"request","request_id":1}"#,
            r#"{"type":"request","request_id":1,"request":{"type":"nope"}}"#,
            r#"{"type":"request","request_id":4294967296,"request":{"type":"open_stream","stream_id":1}}"#,
            r#"{"type":"request","request_id":1,"request":{"type":"open_stream"}}"#,
            r#"{"type":"request","request_id":1,"request":{"type":"fetch_cursor","cursor_id":1,"max_count":-1}}"#,
            r#"{"type":"request","request_id":1,"request":{"type":"execute","stream_id":1,"stmt":{"args":{}}}}"#,
        ] {
            assert!(serde_json::from_str::<ClientMsg>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn server_messages_serialize() {
        assert_eq!(
            to_value(&ServerMsg::HelloOk {}),
            json!({"type": "hello_ok"})
        );
        let msg = ServerMsg::ResponseOk {
            request_id: 9,
            response: Response::Execute {
                result: StmtResult {
                    cols: vec![Col {
                        name: Some("x".into()),
                        decltype: None,
                    }],
                    rows: vec![vec![Value::Integer(1)]],
                    affected_row_count: 0,
                    last_insert_rowid: Some(12),
                },
            },
        };
        assert_eq!(
            to_value(&msg),
            json!({"type":"response_ok","request_id":9,"response":{"type":"execute","result":{
                "cols":[{"name":"x","decltype":null}],
                "rows":[[{"type":"integer","value":"1"}]],
                "affected_row_count":0,"last_insert_rowid":"12"}}})
        );
        let msg = ServerMsg::ResponseError {
            request_id: -1,
            error: Error::new("SQLITE_CONSTRAINT_UNIQUE", "UNIQUE constraint failed: t.x"),
        };
        assert_eq!(
            to_value(&msg),
            json!({"type":"response_error","request_id":-1,"error":{
                "message":"UNIQUE constraint failed: t.x","code":"SQLITE_CONSTRAINT_UNIQUE"}})
        );
        let entry = CursorEntry::StepEnd {
            affected_row_count: 1,
            last_insert_rowid: None,
        };
        assert_eq!(
            to_value(&entry),
            json!({"type":"step_end","affected_row_count":1,"last_insert_rowid":null})
        );
    }

    /// The `type` may come anywhere in an object, and nesting is bounded instead of recursed
    /// into without end (batch conditions nest).
    #[test]
    fn tagged_objects_any_field_order_and_bounded_depth() {
        let m: ClientMsg = serde_json::from_str(
            r#"{"request":{"stmt":{"sql":"SELECT 1","args":[{"value":"5","type":"integer"}]},"stream_id":1,"type":"execute"},"request_id":3,"type":"request"}"#,
        )
        .expect("type last");
        let ClientMsg::Request {
            request_id: 3,
            request: Request::Execute(req),
        } = m
        else {
            panic!("{m:?}");
        };
        assert_eq!(req.stmt.args, [Value::Integer(5)]);
        let nested = |depth: usize| {
            let cond = format!(
                r#"{}{{"type":"ok","step":0}}{}"#,
                r#"{"type":"not","cond":"#.repeat(depth),
                "}".repeat(depth)
            );
            from_json::<BatchCond>(&cond)
        };
        assert!(nested(12).is_ok());
        assert!(nested(20).is_err());
        let error = nested(100_000).expect_err("too deep").to_string();
        assert!(error.contains("nested more than 48"), "{error}");
        let error = nested(30).expect_err("too deep").to_string();
        assert!(error.contains("nested more than 16"), "{error}");
    }
}
