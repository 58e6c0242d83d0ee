//! ttyd traffic in `--trace`: message types, the token redacted, typed input shown only with
//! `--trace-input`.

use crate::dissect::hex::preview;
use crate::dissect::trace::{Direction, MessageDecoder, TraceConfig};
use crate::protocol::frame::OpCode;

/// Decodes ttyd messages for the trace.
pub struct TtydTrace;

impl MessageDecoder for TtydTrace {
    fn name(&self) -> &'static str {
        "Tty"
    }

    fn describe(
        &self,
        direction: Direction,
        _: OpCode,
        body: &[u8],
        number: u64,
        config: TraceConfig,
    ) -> String {
        match (direction, body.first()) {
            (Direction::In, Some(b'{')) if number == 1 => {
                let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
                format!(
                    "init (AuthToken <redacted>), {} columns x {} rows",
                    value["columns"], value["rows"]
                )
            }
            (Direction::In, Some(b'0')) if config.show_input => {
                format!("'0' input: {}", preview(&body[1..], config.max_payload))
            }
            (Direction::In, Some(b'0')) => format!(
                "'0' input, {} bytes (--trace-input shows them)",
                body.len() - 1
            ),
            (Direction::In, Some(b'1')) => {
                format!("'1' resize {}", String::from_utf8_lossy(&body[1..]))
            }
            (Direction::In, Some(b'2')) => "'2' pause".into(),
            (Direction::In, Some(b'3')) => "'3' resume".into(),
            (Direction::Out, Some(b'0')) => {
                format!("'0' output: {}", preview(&body[1..], config.max_payload))
            }
            (Direction::Out, Some(b'1')) => {
                format!("'1' title {:?}", String::from_utf8_lossy(&body[1..]))
            }
            (Direction::Out, Some(b'2')) => {
                format!("'2' preferences {}", String::from_utf8_lossy(&body[1..]))
            }
            (_, Some(other)) => format!("type byte {other:#04x}, {} bytes", body.len()),
            (_, None) => "empty".into(),
        }
    }
}
