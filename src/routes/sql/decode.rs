//! Large client messages are decoded off the event loop, on one decoder thread: a 64 MiB batch
//! takes long enough to parse that every other connection would wait for it. Small messages
//! (the common case: a few hundred bytes) are decoded in place, where a hand-off would cost
//! more than the parse.

use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, Sender, channel};

use super::proto::{self, ClientMsg};
use crate::wake::Waker;

/// Messages up to this size are decoded on the loop.
pub(crate) const INLINE_DECODE_MAX: usize = 64 << 10;

/// The result of decoding one message.
pub(crate) type Decoded = Result<ClientMsg, String>;

struct Work {
    text: String,
    reply: Sender<Decoded>,
    waker: Waker,
}

fn decoder() -> Option<&'static Sender<Work>> {
    static DECODER: OnceLock<Option<Sender<Work>>> = OnceLock::new();
    DECODER
        .get_or_init(|| {
            let (tx, rx) = channel::<Work>();
            let spawned = std::thread::Builder::new()
                .name("wsbridge-decode".into())
                .spawn(move || {
                    for work in rx {
                        let decoded =
                            proto::from_json::<ClientMsg>(&work.text).map_err(|e| e.to_string());
                        drop(work.text);
                        if work.reply.send(decoded).is_ok() {
                            work.waker.wake();
                        }
                    }
                });
            match spawned {
                Ok(_) => Some(tx),
                Err(e) => {
                    log::error!("cannot start the SQL decoder thread: {e}");
                    None
                }
            }
        })
        .as_ref()
}

/// Decode `text` on the decoder thread; `waker` is called when the result is in the returned
/// receiver. Without a decoder thread, decodes here.
pub(crate) fn submit(text: String, waker: Waker) -> Receiver<Decoded> {
    let (reply, result) = channel();
    match decoder() {
        Some(decoder) => {
            if let Err(e) = decoder.send(Work {
                text,
                reply: reply.clone(),
                waker: waker.clone(),
            }) {
                let _ = reply.send(proto::from_json(&e.0.text).map_err(|e| e.to_string()));
                waker.wake();
            }
        }
        None => {
            let _ = reply.send(proto::from_json(&text).map_err(|e| e.to_string()));
            waker.wake();
        }
    }
    result
}
