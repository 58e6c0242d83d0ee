//! permessage-deflate's payload transformation (RFC 7692 §7.2), one connection's state.
//!
//! Receiving: a compressed message's payload is fed as it arrives ([`Decompressor::inflate`]),
//! then [`Decompressor::finish`] appends `00 00 ff ff` (§7.2.2). Output goes to the caller's
//! `Vec`, which grows only up to the message's limit: a message inflating past it fails *while*
//! inflating (1009), so a bomb costs the limit, not what it would expand to.
//!
//! Sending: [`Compressor::compress`] compresses a whole message and strips the tail (§7.2.1),
//! or declines (small message, or no gain) and the message goes out uncompressed, RSV1 clear:
//! the choice is per message (§6).
//!
//! Both engines are allocated on first use and can be freed when nothing must be kept, so an
//! idle connection that negotiated the extension holds no heap memory. They are zlib-rs's: the
//! compressor through its own safe API (it takes memLevel and strategy, flate2 does not), the
//! inflater through flate2 (its `decompress_vec` writes into a `Vec`'s spare capacity).

use std::fmt;

use flate2::{Decompress, FlushDecompress, Status};
use zlib_rs::{DeflateConfig, DeflateFlush, Method, Strategy};

use super::extension::DeflateParams;
use crate::protocol::Role;
use crate::protocol::close::CloseCode;

/// The last 4 octets of the empty stored block a sync flush ends with: removed by the sender
/// (§7.2.1), appended by the receiver (§7.2.2).
pub const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// zlib's default compression level would be 6; BENCHMARKS.md (permessage-deflate) has the measurements behind 1.
pub const DEFAULT_LEVEL: u8 = 1;
/// zlib's default memLevel is 8; BENCHMARKS.md (permessage-deflate) has the measurements behind the choice.
pub const DEFAULT_MEM_LEVEL: u8 = 8;
/// With context takeover, messages shorter than this are sent uncompressed; BENCHMARKS.md (permessage-deflate) has the measurements.
pub const DEFAULT_MIN_SIZE: usize = 16;
/// Without context takeover, messages shorter than this are sent uncompressed: each one costs
/// a reset of the compressor and saves little; BENCHMARKS.md (permessage-deflate) has the measurements.
pub const DEFAULT_MIN_SIZE_NO_CONTEXT_TAKEOVER: usize = 128;

/// Heap bytes of a zlib-rs 0.6 raw-deflate compressor, without the parts that depend on window
/// and memLevel: a 2^16-entry `u16` hash head (fixed in zlib-rs, unlike C zlib's
/// 2^(memLevel+7)) and the state itself. Checked against a counting allocator in
/// `tests/deflate_memory.rs`.
const COMPRESSOR_FIXED_BYTES: usize = 134_272;
/// Heap bytes of a zlib-rs 0.6 inflater: its state and a 32 KiB window, whatever the window
/// bits asked for (checked likewise).
const DECOMPRESSOR_BYTES: usize = 47_552;
/// With context takeover, how many bytes longer than the message a compressed result may be and
/// still be sent compressed (see [`Compressor::compress`]).
pub const TAKEOVER_SLACK: usize = 64;
/// The least a full output `Vec` grows by while inflating.
const MIN_GROW: usize = 1024;

/// zlib-rs's constructors assert that initialisation succeeded, so a failed allocation of its
/// state panics. Contain that here: the caller then does without (sends uncompressed, or fails
/// only this connection), and the event loop goes on.
fn contained<T>(make: impl FnOnce() -> T + std::panic::UnwindSafe) -> Option<T> {
    std::panic::catch_unwind(make).ok()
}

/// Why a compressed message is refused; each fails the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeflateError {
    /// It inflates to more than the limit the caller gave.
    TooBig,
    /// Its payload is not valid DEFLATE data (RFC 1951).
    InvalidData,
    /// The inflater could not be allocated.
    NoMemory,
}

impl DeflateError {
    /// The status code of the Close frame that fails the connection (RFC 6455 §7.4.1).
    pub fn close_code(self) -> CloseCode {
        match self {
            DeflateError::TooBig => CloseCode::MESSAGE_TOO_BIG,
            DeflateError::InvalidData => CloseCode::INVALID_PAYLOAD,
            DeflateError::NoMemory => CloseCode::INTERNAL_ERROR,
        }
    }
}

impl fmt::Display for DeflateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeflateError::TooBig => "compressed message inflates past the size limit",
            DeflateError::InvalidData => "invalid DEFLATE data in a compressed message",
            DeflateError::NoMemory => "no memory for an inflater",
        })
    }
}

impl std::error::Error for DeflateError {}

/// How one end compresses and decompresses, derived from the agreed parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecConfig {
    /// Our compressor's LZ77 window, 8..=15: the agreed maximum, or lower to save memory
    /// (never higher). zlib makes no raw stream with 8 bits; 9 is used, whose matches reach
    /// back at most 250 bytes, within the peer's 256.
    pub window_bits: u8,
    /// We reset our compressor after each message (our side's `*_no_context_takeover`).
    pub compress_no_context_takeover: bool,
    /// The peer resets its compressor after each message, so our inflater may too.
    pub decompress_no_context_takeover: bool,
    /// zlib level, 1..=9.
    pub level: u8,
    /// zlib memLevel, 1..=9: the compressor's symbol buffer is 7 × 2^(memLevel+6) bytes.
    pub mem_level: u8,
    /// Messages shorter than this are not compressed.
    pub min_size: usize,
    /// Free each engine after a message when no context must be kept, rather than reset it.
    pub low_memory: bool,
    /// Compress every non-empty message, even small ones and those that grow: for peers that
    /// mishandle uncompressed messages on a compressed connection (kosoku 0.1.0, which runs
    /// Autobahn's cases, hands them to the case as text and fails it).
    pub compress_all: bool,
}

impl CodecConfig {
    /// The configuration of the end with `role` under `params`, with the default tuning.
    pub fn new(params: &DeflateParams, role: Role) -> Self {
        let (ours, theirs, window_bits) = match role {
            Role::Server => (
                params.server_no_context_takeover,
                params.client_no_context_takeover,
                params.server_max_window_bits,
            ),
            Role::Client => (
                params.client_no_context_takeover,
                params.server_no_context_takeover,
                params.client_max_window_bits,
            ),
        };
        CodecConfig {
            window_bits,
            compress_no_context_takeover: ours,
            decompress_no_context_takeover: theirs,
            level: DEFAULT_LEVEL,
            mem_level: DEFAULT_MEM_LEVEL,
            min_size: if ours {
                DEFAULT_MIN_SIZE_NO_CONTEXT_TAKEOVER
            } else {
                DEFAULT_MIN_SIZE
            },
            low_memory: false,
            compress_all: false,
        }
    }
}

/// The sending half: compresses whole messages (RFC 7692 §7.2.1).
///
/// Freeing it ([`Compressor::release`]) is safe at any time, even with context takeover: a new
/// compressor refers to nothing sent before it, and the peer's window holding more history
/// than needed does no harm. Only the ratio suffers. With `no_context_takeover` it holds
/// nothing between messages, so one compressor can serve many such connections in turn.
pub struct Compressor {
    config: DeflateConfig,
    no_context_takeover: bool,
    min_size: usize,
    low_memory: bool,
    compress_all: bool,
    deflate: Option<zlib_rs::Deflate>,
}

impl fmt::Debug for Compressor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compressor")
            .field("config", &self.config)
            .field("allocated", &self.deflate.is_some())
            .finish()
    }
}

impl Compressor {
    /// A compressor for `config`, allocating nothing until the first message to compress.
    pub fn new(config: &CodecConfig) -> Self {
        // zlib refuses a raw 8-bit window (zlib-rs: StreamError, and `new_with_config` would
        // panic), so 8 becomes 9, as zlib does itself for zlib streams. That is still valid for
        // the peer's 256-byte window: zlib never matches further back than the window size
        // minus MIN_LOOKAHEAD (262), here 250 bytes. A test inflates through a real 8-bit window.
        let window_bits = config.window_bits.clamp(9, 15);
        Compressor {
            config: DeflateConfig {
                level: i32::from(config.level.clamp(1, 9)),
                method: Method::Deflated,
                window_bits: -i32::from(window_bits),
                mem_level: i32::from(config.mem_level.clamp(1, 9)),
                strategy: Strategy::Default,
            },
            no_context_takeover: config.compress_no_context_takeover,
            min_size: config.min_size,
            low_memory: config.low_memory,
            compress_all: config.compress_all,
            deflate: None,
        }
    }

    /// Compress `payload`, a whole message, appending the result to `out` (RFC 7692 §7.2.1:
    /// compress, flush with an empty stored block, remove its `00 00 ff ff`). Returns `true`
    /// when `out` received the compressed payload (send it with RSV1 set on the first frame),
    /// `false` when `out` is unchanged and the message goes as it is, RSV1 clear: it is shorter
    /// than `min_size`, or compressing would not make it shorter.
    ///
    /// With context takeover, a discarded attempt has entered the window though the peer never
    /// sees it, so the compressor must restart, and the history that makes the next messages
    /// small is lost. So in that mode a result up to [`TAKEOVER_SLACK`] bytes *longer* than the
    /// message is still sent compressed: a small message early in the stream, or a short
    /// incompressible one, costs a few bytes and keeps both windows in step. Longer
    /// incompressible messages (level 1 codes random bytes about 6% longer) go raw, with a
    /// restart.
    /// BENCHMARKS.md (permessage-deflate) has the measurements behind this.
    pub fn compress(&mut self, payload: &[u8], out: &mut Vec<u8>) -> bool {
        if payload.is_empty() {
            return false;
        }
        if self.compress_all {
            // DEFLATE's worst case at level 1: 9 bits a literal, plus block overhead.
            let worst = payload.len() + payload.len() / 8 + 32;
            return self.compress_within(payload, out, worst);
        }
        if payload.len() < self.min_size {
            return false;
        }
        let max_len = if self.no_context_takeover {
            payload.len() - 1
        } else {
            payload.len() + TAKEOVER_SLACK
        };
        self.compress_within(payload, out, max_len)
    }

    /// [`Compressor::compress`], keeping a result of at most `max_len` bytes.
    fn compress_within(&mut self, payload: &[u8], out: &mut Vec<u8>, max_len: usize) -> bool {
        let start = out.len();
        // Room for zlib to finish whatever the data (level 1 codes a literal in at most 9 bits;
        // stored blocks add 5 bytes per 64 KiB), so that a rejected result leaves a state that
        // `reset` may be called on: zlib-rs 0.6.9 corrupts the next stream at level 1 when reset
        // after running out of output space (see codec_tests.rs). If the room does run out, the state is
        // dropped instead.
        let room =
            (payload.len() + payload.len() / 8 + 64).max(max_len.saturating_add(TAIL.len() + 1));
        if out.try_reserve(room).is_err() {
            return false;
        }
        out.resize(start + room, 0);
        if self.deflate.is_none() {
            let config = self.config;
            self.deflate = contained(|| zlib_rs::Deflate::new_with_config(config));
        }
        let Some(deflate) = &mut self.deflate else {
            out.truncate(start);
            return false;
        };
        let (in_before, out_before) = (deflate.total_in(), deflate.total_out());
        let status = deflate.compress(payload, &mut out[start..], DeflateFlush::SyncFlush);
        let consumed = deflate.total_in() - in_before;
        let produced = (deflate.total_out() - out_before) as usize;
        // Room left over means the flush completed (zlib asks to be called again when full).
        let complete = status.is_ok() && consumed == payload.len() as u64 && produced < room;
        let len = produced.saturating_sub(TAIL.len());
        let ends_with_tail =
            produced >= TAIL.len() && out.get(start + len..start + produced) == Some(&TAIL[..]);
        if complete && ends_with_tail && len <= max_len {
            out.truncate(start + len);
            if self.no_context_takeover {
                self.restart();
            }
            return true;
        }
        out.truncate(start);
        if complete {
            self.restart();
        } else {
            self.deflate = None;
        }
        false
    }

    /// Forget all history: reset the state, or free it in low-memory mode.
    fn restart(&mut self) {
        if self.low_memory {
            self.deflate = None;
        } else if let Some(deflate) = &mut self.deflate {
            deflate.reset();
        }
    }

    /// Free the zlib state (see the type's documentation for why this is always safe).
    pub fn release(&mut self) {
        self.deflate = None;
    }

    /// Heap bytes held: 0 until the first compressed message and after [`Compressor::release`].
    pub fn held_bytes(&self) -> usize {
        if self.deflate.is_none() {
            return 0;
        }
        let window = (-self.config.window_bits) as usize;
        let mem_level = self.config.mem_level as usize;
        // A window of 2 × 2^w bytes, 2^w `u16` chain links, and symbol plus pending buffers.
        COMPRESSOR_FIXED_BYTES + (4 << window) + (7 << (mem_level + 6))
    }
}

/// The receiving half: inflates messages as their payload arrives (RFC 7692 §7.2.2).
///
/// The inflater always uses a 15-bit window: zlib-rs allocates 32 KiB whatever the bits, and a
/// larger window decodes any stream a smaller one does (a peer whose zlib turned an agreed 8
/// into 9 is read correctly too).
pub struct Decompressor {
    no_context_takeover: bool,
    low_memory: bool,
    inflate: Option<Decompress>,
    /// Bytes the message in progress has inflated to so far.
    inflated: usize,
    /// Payload bytes of the message in progress have been fed.
    fed: bool,
    /// Payload bytes of a message have been fed and [`Decompressor::finish`] not yet called.
    in_message: bool,
    /// A block with BFINAL set ended zlib's stream within this message.
    stream_ended: bool,
}

impl fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decompressor")
            .field("no_context_takeover", &self.no_context_takeover)
            .field("allocated", &self.inflate.is_some())
            .field("inflated", &self.inflated)
            .finish()
    }
}

impl Decompressor {
    /// An inflater for `config`, allocating nothing until the first compressed message.
    pub fn new(config: &CodecConfig) -> Self {
        Decompressor {
            no_context_takeover: config.decompress_no_context_takeover,
            low_memory: config.low_memory,
            inflate: None,
            inflated: 0,
            fed: false,
            in_message: false,
            stream_ended: false,
        }
    }

    /// Inflate the next piece of a compressed message's payload (unmasked), appending to `out`.
    /// `limit` is the most bytes the whole message may inflate to (counted from its first
    /// byte, whatever `Vec` each piece went to). `out` grows at most to hold `limit + 1` bytes
    /// of this message (the extra byte detects an overrun); on an error `out` is left as it was
    /// before the call and the connection must fail with [`DeflateError::close_code`].
    pub fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), DeflateError> {
        self.in_message = true;
        if input.is_empty() {
            return Ok(());
        }
        self.fed = true;
        let start = out.len();
        let result = self.run(input, out, limit);
        if result.is_err() {
            out.truncate(start);
            self.abandon();
        }
        result
    }

    /// The message's last frame has been fed: append the tail and finish (§7.2.2: "Append 4
    /// octets of 0x00 0x00 0xff 0xff to the tail end of the payload of the message"). Then,
    /// when the peer takes no context over, the inflater is reset (or freed in low-memory mode).
    ///
    /// A compressed message with no payload at all is taken as empty and leaves the inflater
    /// as it was: the tail alone would leave zlib inside a stored block's header, and the next
    /// message would be misread. (A compressor flushing an empty message produces `00`.)
    pub fn finish(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<(), DeflateError> {
        if !std::mem::take(&mut self.fed) {
            self.in_message = false;
            return Ok(());
        }
        let start = out.len();
        let result = self.run(&TAIL, out, limit);
        if result.is_err() {
            out.truncate(start);
            self.abandon();
            return result;
        }
        self.inflated = 0;
        self.in_message = false;
        if self.no_context_takeover || self.stream_ended {
            // After a BFINAL block zlib takes no more input: the next message starts a stream.
            self.stream_ended = false;
            if self.low_memory && self.no_context_takeover {
                self.inflate = None;
            } else if let Some(inflate) = &mut self.inflate {
                inflate.reset(false);
            }
        }
        result
    }

    fn run(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), DeflateError> {
        if self.inflate.is_none() {
            self.inflate = contained(|| Decompress::new(false));
        }
        let Some(inflate) = &mut self.inflate else {
            return Err(DeflateError::NoMemory);
        };
        loop {
            if self.stream_ended {
                if input.is_empty() {
                    return Ok(());
                }
                // §7.2.1: "The next DEFLATE block follows the padded data", but zlib's stream
                // ended at BFINAL: read on as a new stream (usually just the padding octet and
                // the tail, an empty stored block).
                inflate.reset(false);
                self.stream_ended = false;
            }
            if out.len() == out.capacity() {
                // Grow geometrically with the message, never past `limit + 1` bytes of it.
                let allowed = limit.saturating_sub(self.inflated).saturating_add(1);
                let want = self
                    .inflated
                    .max(input.len().saturating_mul(4))
                    .max(MIN_GROW)
                    .min(allowed);
                out.try_reserve_exact(want)
                    .map_err(|_| DeflateError::TooBig)?;
            }
            let (in_before, out_before) = (inflate.total_in(), inflate.total_out());
            let status = inflate
                .decompress_vec(input, out, FlushDecompress::None)
                .map_err(|_| DeflateError::InvalidData)?;
            let consumed = (inflate.total_in() - in_before) as usize;
            let produced = (inflate.total_out() - out_before) as usize;
            input = input.get(consumed..).unwrap_or_default();
            self.inflated = self.inflated.saturating_add(produced);
            if self.inflated > limit {
                return Err(DeflateError::TooBig);
            }
            let room_left = out.len() < out.capacity();
            match status {
                Status::StreamEnd => self.stream_ended = true,
                _ if input.is_empty() && room_left => return Ok(()),
                // No progress with input and room: cannot happen on valid data.
                _ if consumed == 0 && produced == 0 && room_left => {
                    return Err(DeflateError::InvalidData);
                }
                _ => {}
            }
        }
    }

    /// After an error: drop the state; the connection is failing anyway.
    fn abandon(&mut self) {
        self.inflate = None;
        self.inflated = 0;
        self.fed = false;
        self.in_message = false;
        self.stream_ended = false;
    }

    /// Free the inflater if nothing must be kept: between messages, and only when the peer
    /// takes no context over (otherwise its next message may refer to this window). Returns
    /// whether it was freed.
    pub fn release(&mut self) -> bool {
        if self.in_message || !self.no_context_takeover {
            return false;
        }
        self.inflate = None;
        true
    }

    /// Heap bytes held: 0 until the first compressed message and after a release.
    pub fn held_bytes(&self) -> usize {
        if self.inflate.is_some() {
            DECOMPRESSOR_BYTES
        } else {
            0
        }
    }
}

/// A connection's permessage-deflate state: both halves, used independently.
#[derive(Debug)]
pub struct Deflate {
    /// What this end sends.
    pub tx: Compressor,
    /// What this end receives.
    pub rx: Decompressor,
}

impl Deflate {
    /// Both halves for `config`, allocating nothing yet.
    pub fn new(config: &CodecConfig) -> Self {
        Deflate {
            tx: Compressor::new(config),
            rx: Decompressor::new(config),
        }
    }

    /// Heap bytes held by both engines (for the server's memory budget).
    pub fn held_bytes(&self) -> usize {
        self.tx.held_bytes() + self.rx.held_bytes()
    }

    /// Free what can be freed now (under memory pressure): the compressor always, the inflater
    /// when allowed (see [`Decompressor::release`]). Returns the bytes freed.
    pub fn release_idle(&mut self) -> usize {
        let before = self.held_bytes();
        self.tx.release();
        self.rx.release();
        before - self.held_bytes()
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
