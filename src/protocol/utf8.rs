//! UTF-8 validation across fragments (RFC 6455 §5.6, §8.1).
//!
//! §8.1: "When an endpoint is to interpret a byte stream as UTF-8 but finds that the byte stream
//! is not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the WebSocket Connection_."
//! A text message may be split across frames, and a frame across reads, anywhere, even inside a
//! character. [`Utf8Validator`] keeps the at most three bytes of an unfinished character between
//! pieces and fails at the first byte that cannot continue a valid stream, not at the end of the
//! message (Autobahn cases 6.4.x check exactly that).

use super::error::ProtocolError;

/// An incremental UTF-8 validator. The bulk of each piece goes through `std::str::from_utf8`,
/// whose ASCII fast path is hard to beat; only a character split between pieces is handled here.
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    partial: [u8; 4],
    partial_len: u8,
}

impl Utf8Validator {
    /// A validator at the start of a message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validate the next piece of the stream.
    ///
    /// Fails as soon as a byte is seen that no continuation could make valid, including the
    /// second byte of a truncated sequence (`F4 90` can never start a character).
    pub fn feed(&mut self, mut input: &[u8]) -> Result<(), ProtocolError> {
        if self.partial_len > 0 {
            let have = self.partial_len as usize;
            let want = sequence_len(self.partial[0]);
            let take = (want - have).min(input.len());
            self.partial[have..have + take].copy_from_slice(&input[..take]);
            self.partial_len += take as u8;
            match std::str::from_utf8(&self.partial[..have + take]) {
                Ok(_) => self.partial_len = 0,
                // Still a valid prefix of a character, and the input is used up.
                Err(e) if e.error_len().is_none() => return Ok(()),
                Err(_) => return Err(ProtocolError::InvalidUtf8),
            }
            input = &input[take..];
        }
        match std::str::from_utf8(input) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let tail = &input[e.valid_up_to()..];
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len() as u8;
                Ok(())
            }
            Err(_) => Err(ProtocolError::InvalidUtf8),
        }
    }

    /// The message has ended: an unfinished character is an error. Resets the validator.
    pub fn finish(&mut self) -> Result<(), ProtocolError> {
        let complete = self.partial_len == 0;
        self.partial_len = 0;
        if complete {
            Ok(())
        } else {
            Err(ProtocolError::InvalidUtf8)
        }
    }

    /// Forget any unfinished character.
    pub fn reset(&mut self) {
        self.partial_len = 0;
    }
}

/// The length of the sequence a lead byte starts. Only called on the first byte of a sequence
/// `from_utf8` reported as incomplete, which is always a valid lead byte (C2-F4).
fn sequence_len(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate_in_pieces(bytes: &[u8], cuts: &[usize]) -> Result<(), ProtocolError> {
        let mut v = Utf8Validator::new();
        let mut start = 0;
        for &cut in cuts {
            v.feed(&bytes[start..cut])?;
            start = cut;
        }
        v.feed(&bytes[start..])?;
        v.finish()
    }

    const SAMPLES: &[&[u8]] = &[
        b"Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!",
        "κόσμε".as_bytes(),
        b"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\xed\x9f\xbf\xee\x80\x80",
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited", // surrogate: invalid
        b"\xf4\x90\x80\x80",                                               // above U+10FFFF
        b"\xc0\xaf",                                                       // overlong
        b"\xe0\x80\xaf",
        b"ab\xff",
        b"\xe2\x82",         // truncated at the end
        b"\xe2\x82\xac\xe2", // truncated after a whole char
    ];

    #[test]
    fn agrees_with_std_at_every_split_point() {
        for sample in SAMPLES {
            let expected = std::str::from_utf8(sample).is_ok();
            for cut in 0..=sample.len() {
                assert_eq!(
                    validate_in_pieces(sample, &[cut]).is_ok(),
                    expected,
                    "{sample:x?} cut at {cut}"
                );
            }
            for a in 0..=sample.len() {
                for b in a..=sample.len() {
                    assert_eq!(validate_in_pieces(sample, &[a, b]).is_ok(), expected);
                }
            }
        }
    }

    #[test]
    fn every_byte_alone_agrees_with_std() {
        for sample in SAMPLES {
            let cuts: Vec<usize> = (1..sample.len()).collect();
            assert_eq!(
                validate_in_pieces(sample, &cuts).is_ok(),
                std::str::from_utf8(sample).is_ok()
            );
        }
    }

    #[test]
    fn fails_fast_on_an_impossible_prefix() {
        // Autobahn 6.4.1: the first piece ends in F4 90, which no continuation can repair.
        let mut v = Utf8Validator::new();
        assert_eq!(
            v.feed(b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"),
            Ok(())
        );
        assert_eq!(v.feed(b"\xf4\x90"), Err(ProtocolError::InvalidUtf8));
        // A split lead byte whose continuation is wrong is caught on the first bad byte.
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xf4"), Ok(()));
        assert_eq!(v.feed(b"\x90"), Err(ProtocolError::InvalidUtf8));
    }

    #[test]
    fn unfinished_character_fails_at_finish() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xe2\x82"), Ok(()));
        assert_eq!(v.finish(), Err(ProtocolError::InvalidUtf8));
        assert_eq!(v.feed(b"ok"), Ok(()));
        assert_eq!(v.finish(), Ok(()));
    }
}
