//! Hrana traffic in `--trace`: the message and request types, the token redacted.

use std::fmt::Write;

use crate::dissect::trace::{Direction, MessageDecoder, TraceConfig};
use crate::protocol::frame::OpCode;

/// Decodes Hrana JSON messages for the trace. (The trace keeps at most 64 KiB of a message, so
/// the JSON tree built here is bounded; the route itself never builds one.)
pub struct HranaTrace;

impl MessageDecoder for HranaTrace {
    fn name(&self) -> &'static str {
        "Sql"
    }

    fn describe(
        &self,
        _: Direction,
        _: OpCode,
        body: &[u8],
        _: u64,
        config: TraceConfig,
    ) -> String {
        let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(body) else {
            return format!("not JSON ({} bytes)", body.len());
        };
        if let Some(jwt) = value.get_mut("jwt")
            && !jwt.is_null()
        {
            *jwt = serde_json::Value::String("<redacted>".into());
        }
        let kind = value["type"].as_str().unwrap_or("?").to_string();
        let mut summary = kind.clone();
        if let Some(id) = value.get("request_id") {
            let _ = write!(summary, " #{id}");
        }
        for key in ["request", "response"] {
            if let Some(inner) = value
                .get(key)
                .and_then(|v| v.get("type"))
                .and_then(|t| t.as_str())
            {
                let _ = write!(summary, " {inner}");
            }
        }
        let json = value.to_string();
        let shown: String = json.chars().take(config.max_payload.max(16)).collect();
        let ellipsis = if shown.len() < json.len() { " ..." } else { "" };
        format!("{summary}: {shown}{ellipsis}")
    }
}
