//! What a `Sec-WebSocket-Extensions` field says, element by element and parameter by parameter
//! (RFC 6455 §9.1, RFC 7692 §7.1), for `wsbridge dissect --handshake`.

use std::fmt::Write as _;

use crate::protocol::deflate::extension::{Extension, PERMESSAGE_DEFLATE, parse_extensions};
use crate::protocol::deflate::{ClientOffer, ServerPolicy};

/// The default of `serve --deflate-window-bits` (`server::config::DeflateSettings`, which this
/// layer may not import).
const SERVE_WINDOW_BITS: u8 = 12;

/// Which side wrote the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// A client's offer (§4.1 item 11).
    Offer,
    /// A server's answer in the 101 (§4.2.2 item 5.6).
    Answer,
}

/// The note lines for one field value, each to be printed on its own indented line.
pub fn explain(value: &str, side: Side) -> Vec<String> {
    let mut elements = Vec::new();
    if let Err(error) = parse_extensions(value, &mut elements) {
        return vec![format!(
            "breaks the grammar of RFC 6455 §9.1 at byte {}: {}; a server answers 400",
            error.offset, error.reason
        )];
    }
    let mut lines = Vec::new();
    match side {
        Side::Offer => lines.push(format!(
            "{} extension offer(s), in preference order (§4.1 item 11, §9.1); the server accepts at most one of each",
            elements.len()
        )),
        Side::Answer => lines.push(
            "extensions in use; each must have been offered, or the client fails the connection (RFC 7692 §5)".into(),
        ),
    }
    for element in &elements {
        explain_element(element, side, &mut lines);
    }
    if side == Side::Offer {
        let policy = ServerPolicy {
            max_window_bits: SERVE_WINDOW_BITS,
            ..ServerPolicy::default()
        };
        let answer = match policy.negotiate([value]) {
            Ok(Some(accepted)) => format!(
                "wsbridge serve (--deflate-window-bits {SERVE_WINDOW_BITS}) would answer: {}",
                accepted.response
            ),
            _ => "wsbridge would decline: no acceptable permessage-deflate offer".into(),
        };
        lines.push(answer);
    } else if let Err(error) = ClientOffer::default().accept([value]) {
        lines.push(format!(
            "a client that offered `{}` fails the connection: {error}",
            ClientOffer::default().header_value()
        ));
    }
    lines
}

fn explain_element(element: &Extension<'_>, side: Side, lines: &mut Vec<String>) {
    if element.name != PERMESSAGE_DEFLATE {
        lines.push(format!(
            "  {}: not an extension wsbridge knows; declined by leaving it out of the 101",
            element.name
        ));
        return;
    }
    let mut line = format!(
        "  {PERMESSAGE_DEFLATE} (RFC 7692): messages with RSV1 set are DEFLATE-compressed, the 00 00 ff ff tail removed (§7.2.1)"
    );
    if element.params.is_empty() {
        let _ = write!(
            line,
            "; no parameters: both sides keep their LZ77 window across messages (context takeover) and use up to 15 bits"
        );
    }
    lines.push(line);
    for param in &element.params {
        let value = param.value.as_deref();
        let meaning = match (param.name, side) {
            ("server_no_context_takeover", Side::Offer) => "the client asks the server to reset its compressor after every message (§7.1.1.1)".into(),
            ("server_no_context_takeover", Side::Answer) => "the server resets its compressor after every message: each one inflates on its own (§7.1.1.1)".into(),
            ("client_no_context_takeover", Side::Offer) => "the client will reset its compressor after every message; the server may free its inflater between messages (§7.1.1.2)".into(),
            ("client_no_context_takeover", Side::Answer) => "the client must reset its compressor after every message (§7.1.1.2)".into(),
            ("server_max_window_bits", Side::Offer) => format!("the client asks the server to use a window of at most 2^{} bytes (§7.1.2.1)", value.unwrap_or("?")),
            ("server_max_window_bits", Side::Answer) => format!("the server compresses with a window of at most 2^{} bytes (§7.1.2.1)", value.unwrap_or("?")),
            ("client_max_window_bits", Side::Offer) => match value {
                None => "the client can use a smaller window if the server asks for one (§7.1.2.2)".into(),
                Some(bits) => format!("the client will use a window of at most 2^{bits} bytes (§7.1.2.2)"),
            },
            ("client_max_window_bits", Side::Answer) => format!("the client must compress with a window of at most 2^{} bytes (§7.1.2.2)", value.unwrap_or("?")),
            _ => "not a permessage-deflate parameter: the offer is declined (§7.1)".into(),
        };
        let shown = match value {
            Some(v) => format!("{}={v}", param.name),
            None => param.name.to_string(),
        };
        lines.push(format!("    {shown}: {meaning}"));
    }
}
