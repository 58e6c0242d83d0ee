//! Hrana over HTTP's streams: a stream lives between requests on the server, and a client
//! names it with a **baton**, a one-use token handed out with each response (Hrana 2 spec,
//! "Hrana over HTTP": "The baton ... is used only once"). Batons are unguessable and bound to
//! a sequence number: `base64url(id ‖ seq ‖ HMAC-SHA-256(key, id ‖ seq)[..16])` with a key
//! drawn at start, so a baton cannot be forged, and a replayed one (its sequence number already
//! used) is refused. A stream idle for `http_stream_expiry` (10 s, sqld's figure) is closed (its worker rolls back) and
//! remembered as expired for a while, so its next baton gets `STREAM_EXPIRED`, not "invalid".

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::super::db::SqlShared;
use super::super::worker::{self, Encoding, Outbox, StreamHandle};
use crate::routes::Waker;

/// How long an expired stream is remembered, and how many at most.
const REMEMBER_EXPIRED: Duration = Duration::from_secs(600);
const MAX_REMEMBERED: usize = 16 * 1024;

/// One stream: its worker, the worker's replies, and what the client stored on it.
pub(crate) struct HttpStream {
    pub handle: StreamHandle,
    pub replies: Receiver<String>,
    /// Bytes of jobs queued and replies not collected (the worker's accounting).
    pub held: Arc<AtomicUsize>,
    /// Where the worker's wake-ups go: the connection whose request uses the stream now.
    wake_to: Arc<Mutex<Option<Waker>>>,
    pub sqls: HashMap<i32, Arc<str>>,
    pub sql_bytes: usize,
    /// The worker's reply to its opening has not been collected yet.
    pub opening: bool,
}

impl HttpStream {
    /// Send the worker's wake-ups to `waker` (the connection now using the stream).
    pub fn wake(&self, waker: Option<Waker>) {
        *self.wake_to.lock().unwrap_or_else(|e| e.into_inner()) = waker;
    }

    pub fn held_bytes(&self) -> usize {
        self.held.load(Ordering::Relaxed) + self.sql_bytes
    }
}

impl Drop for HttpStream {
    fn drop(&mut self) {
        // The worker rolls back and exits; its server-wide slot is released when it is done.
        self.handle.ctl.cancel();
    }
}

/// Why a baton is not accepted (each with the answer sqld gives).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BatonError {
    /// Not a baton this process issued (or its stream closed): 400, "invalid baton".
    Invalid,
    /// Its sequence number was used already (a replay, or two requests at once): 400.
    Used,
    /// The stream expired: 400 with `STREAM_EXPIRED`.
    Expired,
    /// The server has no stream to spare: 503.
    TooMany,
}

enum Slot {
    /// Waiting for the request that brings baton `seq`.
    Idle {
        stream: HttpStream,
        seq: u64,
        last_used: Instant,
    },
    /// A request is using it; its next baton carries `seq`.
    Busy,
}

/// The server's HTTP streams.
pub(crate) struct Streams {
    shared: Arc<SqlShared>,
    key: [u8; 32],
    next_id: u64,
    slots: HashMap<u64, Slot>,
    expired: HashSet<u64>,
    expired_order: VecDeque<(Instant, u64)>,
}

/// A stream taken for one request.
pub(crate) struct Taken {
    pub id: u64,
    /// The sequence number of the baton this request's response hands out.
    pub next_seq: u64,
    pub stream: HttpStream,
}

impl Streams {
    pub fn new(shared: Arc<SqlShared>) -> Streams {
        let mut key = [0u8; 32];
        if getrandom::fill(&mut key).is_err() {
            // Without randomness batons would be forgeable: refuse them all instead.
            log::error!("no randomness for the baton key: Hrana over HTTP streams are disabled");
        }
        Streams {
            shared,
            key,
            next_id: 1,
            slots: HashMap::new(),
            expired: HashSet::new(),
            expired_order: VecDeque::new(),
        }
    }

    fn mac(&self, id: u64, seq: u64) -> [u8; 16] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC takes keys of any length");
        mac.update(&id.to_be_bytes());
        mac.update(&seq.to_be_bytes());
        let tag = mac.finalize().into_bytes();
        let mut out = [0u8; 16];
        out.copy_from_slice(&tag[..16]);
        out
    }

    /// The baton for stream `id`'s request number `seq`.
    pub fn baton(&self, id: u64, seq: u64) -> String {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&id.to_be_bytes());
        bytes[8..16].copy_from_slice(&seq.to_be_bytes());
        bytes[16..].copy_from_slice(&self.mac(id, seq));
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// `(id, seq)` of a baton this process issued.
    fn verify(&self, baton: &str) -> Option<(u64, u64)> {
        let bytes = URL_SAFE_NO_PAD.decode(baton).ok()?;
        let bytes: [u8; 32] = bytes.try_into().ok()?;
        let id = u64::from_be_bytes(bytes[..8].try_into().ok()?);
        let seq = u64::from_be_bytes(bytes[8..16].try_into().ok()?);
        crate::auth::constant_time_eq(&bytes[16..], &self.mac(id, seq)).then_some((id, seq))
    }

    /// Take the stream a request names (`None`: a new stream), for the request's duration.
    pub fn take(&mut self, baton: Option<&str>, now: Instant) -> Result<Taken, BatonError> {
        let Some(baton) = baton else {
            return self.open(now);
        };
        let (id, seq) = self.verify(baton).ok_or(BatonError::Invalid)?;
        match self.slots.get(&id) {
            Some(Slot::Idle { seq: want, .. }) if *want == seq => {}
            Some(_) => return Err(BatonError::Used),
            None if self.expired.contains(&id) => return Err(BatonError::Expired),
            None => return Err(BatonError::Invalid),
        }
        match self.slots.insert(id, Slot::Busy) {
            Some(Slot::Idle { stream, seq, .. }) => Ok(Taken {
                id,
                next_seq: seq + 1,
                stream,
            }),
            _ => Err(BatonError::Invalid),
        }
    }

    fn open(&mut self, _now: Instant) -> Result<Taken, BatonError> {
        let slot = self
            .shared
            .try_acquire_stream()
            .ok_or(BatonError::TooMany)?;
        let id = self.next_id;
        self.next_id += 1;
        let (tx, replies) = channel();
        let wake_to: Arc<Mutex<Option<Waker>>> = Arc::new(Mutex::new(None));
        let forward = Arc::clone(&wake_to);
        let waker = Waker::new(move || {
            if let Some(waker) = forward.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                waker.wake();
            }
        });
        let held = Arc::new(AtomicUsize::new(0));
        let outbox = Outbox {
            encoding: Encoding::Http,
            tx,
            waker,
            held: Arc::clone(&held),
        };
        // The thread name's stream number wraps harmlessly.
        let handle = worker::spawn(slot, id as i32, -1, outbox).map_err(|e| {
            log::error!("cannot start a SQL worker thread: {e}");
            BatonError::TooMany
        })?;
        self.slots.insert(id, Slot::Busy);
        Ok(Taken {
            id,
            next_seq: 1,
            stream: HttpStream {
                handle,
                replies,
                held,
                wake_to,
                sqls: HashMap::new(),
                sql_bytes: 0,
                opening: true,
            },
        })
    }

    /// The request is done and the stream stays open: the baton of `next_seq` names it.
    pub fn put_back(&mut self, taken: Taken, now: Instant) {
        taken.stream.wake(None);
        self.slots.insert(
            taken.id,
            Slot::Idle {
                stream: taken.stream,
                seq: taken.next_seq,
                last_used: now,
            },
        );
    }

    /// The stream of `id` ended (closed by its client, or its request was abandoned).
    pub fn forget(&mut self, id: u64) {
        self.slots.remove(&id);
    }

    /// Close the streams idle past `http_stream_expiry`; forget old expiries.
    pub fn expire(&mut self, now: Instant) {
        let expiry = self.shared.config().http_stream_expiry;
        let expired: Vec<u64> = self
            .slots
            .iter()
            .filter_map(|(id, slot)| match slot {
                Slot::Idle { last_used, .. } if now.duration_since(*last_used) >= expiry => {
                    Some(*id)
                }
                _ => None,
            })
            .collect();
        for id in expired {
            self.slots.remove(&id);
            log::debug!("Hrana HTTP stream {id} expired");
            self.expired.insert(id);
            self.expired_order.push_back((now, id));
        }
        while let Some(&(at, id)) = self.expired_order.front() {
            if now.duration_since(at) < REMEMBER_EXPIRED && self.expired.len() <= MAX_REMEMBERED {
                break;
            }
            self.expired_order.pop_front();
            self.expired.remove(&id);
        }
    }

    /// Bytes held by streams waiting for their next request.
    pub fn held_bytes(&self) -> usize {
        self.slots
            .values()
            .map(|slot| match slot {
                Slot::Idle { stream, .. } => stream.held_bytes() + 256,
                Slot::Busy => 0,
            })
            .sum::<usize>()
            + self.expired.len() * 16
    }
}
