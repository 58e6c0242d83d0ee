//! Hrana over HTTP's request bodies (Hrana 2 and 3 specs, "Hrana over HTTP"; the legacy v1
//! bodies as sqld reads them). Parsed like the WebSocket messages: no generic `Value` tree of
//! peer input, nesting bounded (`proto::from_json`).

use serde::{Deserialize, Deserializer};

use super::super::proto::{self, Batch, CloseSqlReq, Stmt, StoreSqlReq};

/// `POST /v2/pipeline`, `/v3/pipeline`: `{"baton": string | null, "requests": [...]}`
/// (@libsql/client omits `baton` on a new stream).
#[derive(Debug, Deserialize)]
pub struct PipelineBody {
    #[serde(default)]
    pub baton: Option<String>,
    pub requests: Vec<StreamRequest>,
}

/// `POST /v3/cursor`: `{"baton": string | null, "batch": Batch}`.
#[derive(Debug, Deserialize)]
pub struct CursorBody {
    #[serde(default)]
    pub baton: Option<String>,
    pub batch: Batch,
}

/// `POST /v1/execute`: `{"stmt": Stmt}`.
#[derive(Debug, Deserialize)]
pub struct V1ExecuteBody {
    pub stmt: Stmt,
}

/// `POST /v1/batch`: `{"batch": Batch}`.
#[derive(Debug, Deserialize)]
pub struct V1BatchBody {
    pub batch: Batch,
}

/// One request of a pipeline: the WebSocket transport's requests without `stream_id`.
#[derive(Debug)]
pub enum StreamRequest {
    Close,
    Execute(Stmt),
    Batch(Batch),
    Sequence {
        sql: Option<String>,
        sql_id: Option<i32>,
    },
    Describe {
        sql: Option<String>,
        sql_id: Option<i32>,
    },
    StoreSql(StoreSqlReq),
    CloseSql(CloseSqlReq),
    GetAutocommit,
}

#[cfg(test)]
impl StreamRequest {
    /// The `type` its `ok` response carries.
    pub fn kind(&self) -> &'static str {
        match self {
            StreamRequest::Close => "close",
            StreamRequest::Execute(_) => "execute",
            StreamRequest::Batch(_) => "batch",
            StreamRequest::Sequence { .. } => "sequence",
            StreamRequest::Describe { .. } => "describe",
            StreamRequest::StoreSql(_) => "store_sql",
            StreamRequest::CloseSql(_) => "close_sql",
            StreamRequest::GetAutocommit => "get_autocommit",
        }
    }
}

#[derive(Deserialize)]
struct ExecuteFields {
    stmt: Stmt,
}

#[derive(Deserialize)]
struct BatchFields {
    batch: Batch,
}

#[derive(Deserialize)]
struct SqlFields {
    #[serde(default)]
    sql: Option<String>,
    #[serde(default)]
    sql_id: Option<i32>,
}

#[derive(Deserialize)]
struct NoFields {}

impl<'de> Deserialize<'de> for StreamRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const TYPES: &[&str] = &[
            "close",
            "execute",
            "batch",
            "sequence",
            "describe",
            "store_sql",
            "close_sql",
            "get_autocommit",
        ];
        proto::tagged(d, TYPES, |kind, text| match kind {
            "close" => proto::as_variant(text, |_: NoFields| StreamRequest::Close),
            "execute" => proto::as_variant(text, |f: ExecuteFields| StreamRequest::Execute(f.stmt)),
            "batch" => proto::as_variant(text, |f: BatchFields| StreamRequest::Batch(f.batch)),
            "sequence" => proto::as_variant(text, |f: SqlFields| StreamRequest::Sequence {
                sql: f.sql,
                sql_id: f.sql_id,
            }),
            "describe" => proto::as_variant(text, |f: SqlFields| StreamRequest::Describe {
                sql: f.sql,
                sql_id: f.sql_id,
            }),
            "store_sql" => proto::as_variant(text, StreamRequest::StoreSql),
            "close_sql" => proto::as_variant(text, StreamRequest::CloseSql),
            "get_autocommit" => proto::as_variant(text, |_: NoFields| StreamRequest::GetAutocommit),
            _ => None,
        })
    }
}

/// A request body, parsed for its endpoint.
#[derive(Debug)]
pub enum Parsed {
    Pipeline(PipelineBody),
    Cursor(CursorBody),
    V1Execute(V1ExecuteBody),
    V1Batch(V1BatchBody),
}

/// Which body an endpoint takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Pipeline,
    Cursor,
    V1Execute,
    V1Batch,
}

/// Parse `body` as `kind` says. The error is the text of a 400.
pub fn parse(kind: BodyKind, body: &[u8]) -> Result<Parsed, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_owned())?;
    let parsed = match kind {
        BodyKind::Pipeline => proto::from_json(text).map(Parsed::Pipeline),
        BodyKind::Cursor => proto::from_json(text).map(Parsed::Cursor),
        BodyKind::V1Execute => proto::from_json(text).map(Parsed::V1Execute),
        BodyKind::V1Batch => proto::from_json(text).map(Parsed::V1Batch),
    };
    parsed.map_err(|e| format!("Cannot deserialize client message from JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clients_bodies_parse() {
        // @libsql/client 0.18: no baton on a new stream, floats for JS numbers.
        let js = br#"{"requests":[{"type":"store_sql","sql_id":0,"sql":"select 1"},{"type":"execute","stmt":{"sql":"select ?","args":[{"type":"float","value":1}],"named_args":[],"want_rows":true}},{"type":"close"}]}"#;
        let Parsed::Pipeline(p) = parse(BodyKind::Pipeline, js).unwrap() else {
            panic!()
        };
        assert!(p.baton.is_none());
        let kinds: Vec<_> = p.requests.iter().map(StreamRequest::kind).collect();
        assert_eq!(kinds, ["store_sql", "execute", "close"]);
        // The Rust libsql crate: explicit nulls and fields we do not know.
        let rust = br#"{"baton":null,"requests":[{"type":"batch","batch":{"steps":[{"condition":null,"stmt":{"sql":"SELECT 1;","sql_id":null,"args":[],"named_args":[],"want_rows":true,"replication_index":null}}],"replication_index":null}},{"type":"get_autocommit"},{"type":"close"}]}"#;
        let Parsed::Pipeline(p) = parse(BodyKind::Pipeline, rust).unwrap() else {
            panic!()
        };
        assert_eq!(p.requests.len(), 3);
        let cursor =
            br#"{"baton":null,"batch":{"steps":[{"condition":null,"stmt":{"sql":"SELECT 1;"}}]}}"#;
        assert!(matches!(
            parse(BodyKind::Cursor, cursor),
            Ok(Parsed::Cursor(_))
        ));
        let v1 = br#"{"stmt": {"sql": "select ?", "args": [{"type": "integer", "value": "1"}], "named_args": [], "want_rows": true}}"#;
        assert!(matches!(
            parse(BodyKind::V1Execute, v1),
            Ok(Parsed::V1Execute(_))
        ));
    }

    #[test]
    fn bad_bodies_say_why() {
        assert!(
            parse(BodyKind::Pipeline, b"{")
                .unwrap_err()
                .contains("JSON")
        );
        assert!(
            parse(
                BodyKind::Pipeline,
                br#"{"requests":[{"type":"open_stream"}]}"#
            )
            .unwrap_err()
            .contains("open_stream")
        );
        assert!(
            parse(BodyKind::Pipeline, b"\xff")
                .unwrap_err()
                .contains("UTF-8")
        );
    }
}
