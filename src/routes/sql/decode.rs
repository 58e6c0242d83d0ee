//! Large client messages are decoded off the event loop, on one decoder thread: a 64 MiB batch
//! takes long enough to parse that every other connection would wait for it. Small messages
//! (the common case: a few hundred bytes) are decoded in place, where a hand-off would cost
//! more than the parse. Both transports use it: WebSocket messages and HTTP request bodies.

use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, Sender, channel};

use super::proto::{self, ClientMsg};
use crate::wake::Waker;

/// Messages up to this size are decoded on the loop.
pub(crate) const INLINE_DECODE_MAX: usize = 64 << 10;

/// The result of decoding one message.
pub(crate) type Decoded = Result<ClientMsg, String>;

type Work = Box<dyn FnOnce() + Send>;

fn decoder() -> Option<&'static Sender<Work>> {
    static DECODER: OnceLock<Option<Sender<Work>>> = OnceLock::new();
    DECODER
        .get_or_init(|| {
            let (tx, rx) = channel::<Work>();
            let spawned = std::thread::Builder::new()
                .name("wsbridge-decode".into())
                .spawn(move || {
                    for work in rx {
                        work();
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

/// Run `parse` on the decoder thread; `waker` is called when its result is in the returned
/// receiver. Without a decoder thread, runs it here.
pub(crate) fn off_loop<T: Send + 'static>(
    parse: impl FnOnce() -> T + Send + 'static,
    waker: Waker,
) -> Receiver<T> {
    let (reply, result) = channel();
    let job_waker = waker.clone();
    let work: Work = Box::new(move || {
        if reply.send(parse()).is_ok() {
            job_waker.wake();
        }
    });
    match decoder() {
        Some(decoder) => {
            if let Err(e) = decoder.send(work) {
                (e.0)();
            }
        }
        None => work(),
    }
    result
}

/// Decode a WebSocket message `text` on the decoder thread.
pub(crate) fn submit(text: String, waker: Waker) -> Receiver<Decoded> {
    off_loop(
        move || proto::from_json::<ClientMsg>(&text).map_err(|e| e.to_string()),
        waker,
    )
}
