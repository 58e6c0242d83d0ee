//! The WebSocket connection state machine after the opening handshake, sans-IO.
//!
//! Bytes in: [`Connection::handle_bytes`] takes whatever the socket produced (any split, even in
//! the middle of a header), unmasks payloads in place, reassembles fragments and returns at most
//! one [`Event`] per call along with how much input it used. Bytes out: replies it owes the peer
//! (a Pong for a Ping, a Close echo, the Close that fails the connection) and everything the
//! application sends through [`Sender`] are appended to a caller's `Vec<u8>`, so several frames
//! leave in one write.
//!
//! A message that arrives whole in one read is handed out as a slice of the caller's buffer,
//! unmasked in place: no copy, no allocation. Only fragmented messages and frames split across
//! reads are copied, into a buffer that grows with what actually arrived, never with what a
//! header announced.

use super::Role;
use super::close::CloseCode;
use super::deflate::{CodecConfig, Compressor, Decompressor};
use super::error::ProtocolError;
pub use super::receiver::{Event, Limits};
use super::receiver::{Inflater, Receiver};
pub use super::sender::Sender;
use super::timers::{Expiry, Stamp, Timeouts, TimerPhase, Timers};

/// What [`Connection::handle_bytes`] did with its input.
pub struct Received<'a> {
    /// How many input bytes were used; call again with the rest.
    pub consumed: usize,
    /// The event, if one completed.
    pub event: Option<Event<'a>>,
    /// The sending half, usable while the event borrows the receiving half (an echo route
    /// sends the message straight back).
    pub tx: &'a mut Sender,
}

/// Where the closing handshake stands (§7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// This side sent a Close and waits for the peer's.
    CloseSent,
    /// The peer's Close was received (and answered), or the connection failed: nothing more is
    /// read, and the TCP connection should be closed once `out` is flushed.
    Closed,
}

/// One side of a WebSocket connection.
pub struct Connection {
    rx: Receiver,
    tx: Sender,
    timers: Timers,
}

impl Connection {
    /// A server-side connection: expects masked frames, sends unmasked ones.
    pub fn server(limits: Limits) -> Self {
        Connection {
            rx: Receiver::new(Role::Server, limits),
            tx: Sender::server(),
            timers: Timers::default(),
        }
    }

    /// A client-side connection: expects unmasked frames, masks what it sends with keys from a
    /// ChaCha generator seeded with `mask_seed` (RFC 6455 §5.3: the key "MUST be derived from a
    /// strong source of entropy"; pass 32 bytes from the operating system).
    pub fn client(limits: Limits, mask_seed: [u8; 32]) -> Self {
        Connection {
            rx: Receiver::new(Role::Client, limits),
            tx: Sender::client(mask_seed),
            timers: Timers::default(),
        }
    }

    /// Feed bytes from the peer. `input` is mutable because payloads are unmasked in place.
    ///
    /// Returns how much of `input` was used and at most one event; the caller loops until all
    /// input is used. Every byte is either consumed or part of the returned event's frame, so the
    /// caller never keeps leftovers: a partial header is kept here (at most 13 bytes), partial
    /// payloads go to the reassembly buffer.
    ///
    /// On a protocol violation the Close frame with the matching code (§7.4.1) is written to
    /// `out`, the connection becomes [`State::Closed`], and the error says why (§7.1.7).
    pub fn handle_bytes<'a>(
        &'a mut self,
        input: &'a mut [u8],
        out: &mut Vec<u8>,
    ) -> Result<Received<'a>, ProtocolError> {
        let Connection { rx, tx, .. } = self;
        let (consumed, event) = rx.receive(input, tx, out)?;
        Ok(Received {
            consumed,
            event,
            tx,
        })
    }

    /// The sending half.
    pub fn sender(&mut self) -> &mut Sender {
        &mut self.tx
    }

    /// Start the closing handshake (§7.1.2). Reading goes on until the peer's Close arrives.
    pub fn close(&mut self, code: CloseCode, reason: &str, out: &mut Vec<u8>) {
        self.tx.send_close(Some(code), reason, out);
    }

    /// Where the closing handshake stands.
    pub fn state(&self) -> State {
        if self.rx.done {
            State::Closed
        } else if self.tx.close_sent() {
            State::CloseSent
        } else {
            State::Open
        }
    }

    /// Change the size limits, for what is read from now on (a server admits a peer to larger
    /// messages once it has authenticated).
    pub fn set_limits(&mut self, limits: Limits) {
        self.rx.limits = limits;
    }

    /// Bytes from the peer arrived at `now` (call once per read): the ping and idle timers
    /// count from here. The first time passed in starts the timers.
    pub fn on_heard(&mut self, now: Stamp) {
        match self.timers.phase {
            TimerPhase::Unstarted => self.timers = Timers::started(now),
            _ => self.timers.last_heard = now,
        }
    }

    /// The caller is not reading from the peer at `now` (its own back-pressure: a memory
    /// budget, output not drained, a route busy): what the peer may have sent is waiting unread,
    /// so neither silence nor a message in progress that gets no further counts against it.
    pub fn excuse_silence(&mut self, now: Stamp) {
        if self.timers.phase != TimerPhase::Unstarted {
            self.timers.last_heard = now;
            self.timers.progress_at = now;
        }
    }

    /// When [`Connection::handle_timeout`] must next be called, if ever (`None` before any time
    /// was passed in and once closed). A time already past means "now".
    pub fn poll_timeout(&self, timeouts: &Timeouts) -> Option<Stamp> {
        match (self.state(), self.timers.phase) {
            (State::Closed, _) | (_, TimerPhase::Unstarted) => None,
            (State::CloseSent, TimerPhase::CloseWait) => Some(self.timers.close_deadline),
            // Our Close went out since time was last passed in: arm the wait at once.
            (State::CloseSent, TimerPhase::Running) => Some(self.timers.last_heard),
            (State::Open, _) => {
                let deadline = self.timers.open_deadline(timeouts);
                Some(if self.rx.message.in_progress() {
                    deadline.min(self.timers.progress_at.after(timeouts.message_stall))
                } else {
                    deadline
                })
            }
        }
    }

    /// Time has come to `now`: send the keep-alive Ping, close an idle connection (1001), or
    /// end the wait for the peer's Close (see [`super::timers`]). Frames go to `out`. Calling
    /// it early, or often, is harmless.
    pub fn handle_timeout(
        &mut self,
        now: Stamp,
        timeouts: &Timeouts,
        out: &mut Vec<u8>,
    ) -> Option<Expiry> {
        let state = self.state();
        let timers = &mut self.timers;
        if timers.phase == TimerPhase::Unstarted {
            *timers = Timers::started(now);
        }
        match state {
            State::Closed => None,
            State::CloseSent => {
                if timers.phase != TimerPhase::CloseWait {
                    timers.phase = TimerPhase::CloseWait;
                    timers.close_deadline = now.after(timeouts.close_timeout);
                }
                now.reached(timers.close_deadline)
                    .then_some(Expiry::CloseWaitOver)
            }
            State::Open => {
                // A message in progress must keep coming, whatever else arrives.
                let progress = self.rx.message.progress() as u32;
                if !self.rx.message.in_progress() || progress != timers.progress_mark {
                    timers.progress_mark = progress;
                    timers.progress_at = now;
                } else if now.since(timers.progress_at) >= timeouts.message_stall {
                    self.tx
                        .send_close(Some(CloseCode::POLICY_VIOLATION), "message stalled", out);
                    return Some(Expiry::MessageStalled);
                }
                let silent = now.since(timers.last_heard);
                if silent >= timeouts.idle_timeout {
                    self.tx
                        .send_close(Some(CloseCode::GOING_AWAY), "idle timeout", out);
                    return Some(Expiry::Idle);
                }
                if silent >= timeouts.ping_interval
                    && now.since(timers.last_ping) >= timeouts.ping_interval
                {
                    timers.last_ping = now;
                    self.tx.send_ping(b"", out);
                    return Some(Expiry::PingSent);
                }
                None
            }
        }
    }

    /// The code of the Close this side sent (1005 for an empty body), if it sent one.
    pub fn sent_close_code(&self) -> Option<u16> {
        self.tx.sent_close_code()
    }

    /// Frames read and written since the last call: (received, sent).
    pub fn take_frame_counts(&mut self) -> (u32, u32) {
        (
            std::mem::take(&mut self.rx.frames),
            self.tx.take_frames_sent(),
        )
    }

    /// Heap bytes this connection holds (its reassembly buffer and, with permessage-deflate,
    /// the compression engines allocated so far), for memory accounting.
    pub fn buffered_capacity(&self) -> usize {
        self.rx.message.buffered_capacity()
            + self
                .rx
                .inflater
                .as_ref()
                .map_or(0, |i| i.engine.held_bytes())
            + self.tx.compression_held_bytes()
    }

    /// Use permessage-deflate as agreed in the handshake (RFC 7692 §6): received messages with
    /// RSV1 are inflated, sent messages compressed when that makes them shorter. Nothing is
    /// allocated until the first compressed message each way.
    pub fn enable_deflate(&mut self, config: &CodecConfig) {
        self.rx.inflater = Some(Box::new(Inflater {
            engine: Decompressor::new(config),
            active: false,
            cap: usize::MAX,
        }));
        self.tx
            .set_compressor(Some(Box::new(Compressor::new(config))));
    }

    /// Bound what a compressed message may still inflate to by the memory the caller can spare
    /// now (its server-wide budget): beyond it, as beyond the message limit, the connection
    /// fails with 1009 *while* inflating. Applies until the next call.
    pub fn set_inflate_headroom(&mut self, headroom: usize) {
        let held = self.rx.message.buffered_len();
        if let Some(inflater) = &mut self.rx.inflater {
            inflater.cap = held.saturating_add(headroom);
        }
    }

    /// Use permessage-deflate for what is received only: messages are inflated, and every
    /// message sent goes uncompressed, which RFC 7692 §6 allows (no compressor is ever held).
    pub fn enable_inflate_only(&mut self, config: &CodecConfig) {
        self.enable_deflate(config);
        self.tx.set_compressor(None);
    }

    /// Whether permessage-deflate is in use.
    pub fn deflate_enabled(&self) -> bool {
        self.rx.inflater.is_some()
    }

    /// Free the compression engines where nothing must be kept (under memory pressure): the
    /// compressor always (a fresh one refers to nothing, which is always valid for the peer),
    /// the inflater only between messages and when the peer takes no context over. Returns the
    /// bytes freed.
    pub fn release_compression(&mut self) -> usize {
        let before = self.buffered_capacity();
        self.tx.release_compressor();
        if let Some(inflater) = &mut self.rx.inflater {
            inflater.engine.release();
        }
        before - self.buffered_capacity()
    }
}
