//! The echo route: every message goes back as it came. What the Autobahn suite and the
//! benchmarks talk to.

use super::{Route, RouteContext};
use crate::dissect::trace::{Direction, MessageDecoder, TraceConfig};
use crate::protocol::Message;
use crate::protocol::frame::OpCode;

/// Sends each message back, same type, same bytes.
pub struct Echo;

impl Route for Echo {
    fn on_message(&mut self, message: Message<'_>, cx: &mut RouteContext<'_>) {
        cx.tx.send_message(message, cx.out);
    }
}

/// Echo traffic in `--trace`: nothing in it is secret, so payloads are shown raw.
pub struct EchoTrace;

impl MessageDecoder for EchoTrace {
    fn name(&self) -> &'static str {
        "Echo"
    }

    fn shows_raw_payloads(&self) -> bool {
        true
    }

    fn describe(&self, _: Direction, kind: OpCode, body: &[u8], _: u64, _: TraceConfig) -> String {
        let what = if kind == OpCode::Text {
            "text"
        } else {
            "binary"
        };
        format!("{what}, {} bytes", body.len())
    }
}
