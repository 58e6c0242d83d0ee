//! permessage-deflate (RFC 7692), sans-IO: negotiation in [`extension`], the payload
//! transformation in [`codec`]. No sockets, no event loop, no threads.
//!
//! | module | RFC |
//! |---|---|
//! | [`extension`] | RFC 6455 §9.1 `Sec-WebSocket-Extensions`; RFC 7692 §5, §7.1 negotiation |
//! | [`codec`] | RFC 7692 §6 (RSV1 per message), §7.2 compression and decompression |
//!
//! How the connection uses it (RFC 7692 §6):
//! * RSV1 marks a compressed message and is set on its *first* frame only. RSV1 on a
//!   continuation frame or on any control frame fails the connection (1002): "the RSV1 bit is
//!   set only on the first frame" (§6.1), and control frames are never compressed (§6.1).
//! * A message whose first frame had RSV1 is fed frame by frame to
//!   [`Decompressor::inflate`] (payload bytes, unmasked, as they arrive), then
//!   [`Decompressor::finish`] once the FIN frame is in. Control frames interleaved in the
//!   fragmented message are handled as usual and never touch the inflater.
//! * To send, [`Compressor::compress`] the whole message; `true` means send `out` with RSV1 on
//!   the first frame, `false` means send the original payload with RSV1 clear.

pub mod codec;
pub mod extension;

pub use codec::{CodecConfig, Compressor, Decompressor, Deflate, DeflateError};
pub use extension::{
    Accepted, ClientOffer, DeflateParams, Extension, HeaderError, ResponseError, ServerPolicy,
    parse_extensions,
};
