//! The opening handshake (RFC 6455 §4), both sides, on top of the HTTP/1.1 head parser in
//! [`super::http`].
//!
//! * [`server`]: validating a client's upgrade request (§4.2.1) and the 101 reply (§4.2.2).
//! * [`client`]: the client's request (§4.1) and its checks of the server's reply.
//!
//! Only what RFC 6455 itself decides lives here. Who may connect (Host, Origin, tokens) and
//! which route answers is the server's policy, decided above this layer.

pub mod client;
pub mod server;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha1::{Digest, Sha1};

/// §1.3: the GUID appended to the key before hashing.
pub const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a key (§4.2.2, item 5.4): base64 of the SHA-1 of the key followed
/// by the GUID. Written into a fixed buffer: 20 bytes of digest are 28 characters of base64.
pub fn accept_key(key: &str) -> [u8; 28] {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WEBSOCKET_GUID.as_bytes());
    let digest = sha.finalize();
    let mut accept = [0u8; 28];
    // 20 bytes always encode to exactly 28 characters, so this cannot fail.
    let _ = BASE64.encode_slice(digest.as_slice(), &mut accept);
    accept
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6455 §1.3: "dGhlIHNhbXBsZSBub25jZQ==" gives "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".
    #[test]
    fn rfc_1_3_accept_key() {
        assert_eq!(
            &accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
