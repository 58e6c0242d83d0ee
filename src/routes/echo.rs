//! The echo route: every message goes back as it came. What the Autobahn suite and the
//! benchmarks talk to.

use super::{Route, RouteContext};
use crate::protocol::Message;

/// Sends each message back, same type, same bytes.
pub struct Echo;

impl Route for Echo {
    fn on_message(&mut self, message: Message<'_>, cx: &mut RouteContext<'_>) {
        cx.tx.send_message(message, cx.out);
    }
}
