//! Frames on the wire, written apart from the crate's own `frame.rs` and `mask.rs` so that the
//! fuzz targets do not check the code against itself.

/// How to write a payload length: the shortest form (the only legal one) or a forced form, to
/// build the malformed lengths RFC 6455 §5.2 forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LenForm {
    /// The minimal encoding (§5.2: "the minimal number of bytes MUST be used").
    Minimal,
    /// 126 followed by 16 bits, whatever the length.
    Force16,
    /// 127 followed by 64 bits, whatever the length.
    Force64,
}

/// RFC 6455 §5.3, one byte at a time: byte `i` is XORed with `key[(offset + i) % 4]`.
pub fn xor_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= key[(offset + i) % 4];
    }
}

/// The header bytes of a frame (§5.2).
pub fn header(
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    len: u64,
    form: LenForm,
) -> Vec<u8> {
    let mut h = vec![u8::from(fin) << 7 | (rsv & 7) << 4 | (opcode & 0xf)];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let form = match form {
        LenForm::Minimal if len < 126 => None,
        LenForm::Minimal if len <= 0xffff => Some(LenForm::Force16),
        LenForm::Minimal => Some(LenForm::Force64),
        other => Some(other),
    };
    match form {
        None => h.push(mask_bit | len as u8),
        Some(LenForm::Force16) => {
            h.push(mask_bit | 126);
            h.extend_from_slice(&(len as u16).to_be_bytes());
        }
        Some(_) => {
            h.push(mask_bit | 127);
            h.extend_from_slice(&len.to_be_bytes());
        }
    }
    if let Some(key) = mask {
        h.extend_from_slice(&key);
    }
    h
}

/// A whole frame: header, then the payload masked with `mask` if given.
pub fn frame(fin: bool, rsv: u8, opcode: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut f = header(
        fin,
        rsv,
        opcode,
        mask,
        payload.len() as u64,
        LenForm::Minimal,
    );
    let start = f.len();
    f.extend_from_slice(payload);
    if let Some(key) = mask {
        xor_mask(&mut f[start..], key, 0);
    }
    f
}

/// A masked client frame with FIN set and no RSV bits: the common case.
pub fn client(opcode: u8, key: [u8; 4], payload: &[u8]) -> Vec<u8> {
    frame(true, 0, opcode, Some(key), payload)
}

/// A frame a server wrote, as read back by [`parse_server_frames`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFrame {
    pub opcode: u8,
    pub payload: Vec<u8>,
}

/// Parse everything a server wrote: see [`parse_frames`].
pub fn parse_server_frames(out: &[u8]) -> Result<Vec<ServerFrame>, String> {
    parse_frames(out, false)
}

/// Parse everything an endpoint wrote. A server's frames are never masked and a client's always
/// are (§5.1; `masked` says which, and masked payloads are returned unmasked); all carry no RSV
/// bits, use defined opcodes, minimal lengths, and (wsbridge never fragments what it sends on
/// its own) FIN; control frames hold at most 125 bytes (§5.5). Anything else, or trailing bytes,
/// is an error.
pub fn parse_frames(mut out: &[u8], masked: bool) -> Result<Vec<ServerFrame>, String> {
    let mut frames = Vec::new();
    while !out.is_empty() {
        if out.len() < 2 {
            return Err(format!("{} trailing byte(s)", out.len()));
        }
        let (b0, b1) = (out[0], out[1]);
        if b0 & 0x80 == 0 {
            return Err(format!("frame without FIN: {b0:#04x}"));
        }
        if b0 & 0x70 != 0 {
            return Err(format!("RSV bits set: {b0:#04x}"));
        }
        let opcode = b0 & 0xf;
        if !matches!(opcode, 1 | 2 | 8 | 9 | 10) {
            return Err(format!("opcode {opcode:#x}"));
        }
        if (b1 & 0x80 != 0) != masked {
            return Err(format!("mask bit {} where {masked} was due", b1 >> 7));
        }
        let (len, at) = match b1 & 0x7f {
            126 => {
                let ext = out.get(2..4).ok_or("truncated 16-bit length")?;
                let len = u16::from_be_bytes([ext[0], ext[1]]) as u64;
                if len < 126 {
                    return Err(format!("non-minimal 16-bit length {len}"));
                }
                (len, 4)
            }
            127 => {
                let ext = out.get(2..10).ok_or("truncated 64-bit length")?;
                let len = u64::from_be_bytes(ext.try_into().expect("8 bytes"));
                if len <= 0xffff || len >> 63 != 0 {
                    return Err(format!("bad 64-bit length {len}"));
                }
                (len, 10)
            }
            n => (n as u64, 2),
        };
        let (key, at) = if masked {
            let key = out.get(at..at + 4).ok_or("truncated masking key")?;
            (key.try_into().expect("4 bytes"), at + 4)
        } else {
            ([0; 4], at)
        };
        if opcode >= 8 && len > 125 {
            return Err(format!("control frame of {len} bytes"));
        }
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| len.checked_add(at))
            .filter(|&end| end <= out.len())
            .ok_or_else(|| format!("truncated payload of {len} bytes"))?;
        let mut payload = out[at..end].to_vec();
        xor_mask(&mut payload, key, 0);
        frames.push(ServerFrame { opcode, payload });
        out = &out[end..];
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_5_7_masked_hello() {
        let f = client(1, [0x37, 0xfa, 0x21, 0x3d], b"Hello");
        assert_eq!(
            f,
            [
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
            ]
        );
    }

    #[test]
    fn rfc_5_7_length_forms() {
        assert_eq!(
            header(true, 0, 2, None, 256, LenForm::Minimal),
            [0x82, 0x7e, 1, 0]
        );
        assert_eq!(
            header(true, 0, 2, None, 65536, LenForm::Minimal),
            [0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]
        );
    }

    #[test]
    fn server_frames_parse_back() {
        let mut out = frame(true, 0, 1, None, b"Hello");
        out.extend(frame(true, 0, 2, None, &[7; 300]));
        let frames = parse_server_frames(&out).expect("valid");
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[1].payload.len(), 300);
        assert!(parse_server_frames(&client(1, [1; 4], b"x")).is_err());
        assert!(parse_server_frames(&out[..out.len() - 1]).is_err());
        let masked = parse_frames(&client(1, [1, 2, 3, 4], b"Hello"), true).expect("masked");
        assert_eq!(masked[0].payload, b"Hello");
    }
}
