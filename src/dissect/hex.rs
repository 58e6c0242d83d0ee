//! Hex as people paste it (`81 85 37fa`, `0x81,0x85`, several lines), and bytes printed as hex
//! beside their printable text.

use std::fmt::Write;

/// Parse hex digits, ignoring whitespace, commas, colons and `0x` prefixes. A `0x` token may
/// have one digit (`0x8` is 08); otherwise every token must hold whole bytes.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    for token in text.split(|c: char| c.is_whitespace() || c == ',' || c == ':') {
        if token.is_empty() {
            continue;
        }
        let (digits, prefixed) = match token
            .strip_prefix("0x")
            .or_else(|| token.strip_prefix("0X"))
        {
            Some(rest) => (rest, true),
            None => (token, false),
        };
        let padded;
        let digits = if digits.len() % 2 == 1 {
            if !prefixed {
                return Err(format!("{token:?}: an odd number of hex digits"));
            }
            padded = format!("0{digits}");
            padded.as_str()
        } else {
            digits
        };
        for pair in digits.as_bytes().chunks(2) {
            let pair = std::str::from_utf8(pair).map_err(|_| format!("{token:?} is not hex"))?;
            bytes.push(u8::from_str_radix(pair, 16).map_err(|_| format!("{token:?} is not hex"))?);
        }
    }
    Ok(bytes)
}

/// `81 85 37 fa`.
pub fn hex_bytes(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Printable ASCII, other bytes as `.`.
pub fn printable(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            }
        })
        .collect()
}

/// Up to `max` bytes as hex then text (`48 65 6c 6c 6f  |Hello|`), saying how much was left out.
pub fn preview(bytes: &[u8], max: usize) -> String {
    let shown = &bytes[..bytes.len().min(max)];
    let mut s = format!("{}  |{}|", hex_bytes(shown), printable(shown));
    if bytes.len() > shown.len() {
        let _ = write!(s, " ... ({} more bytes)", bytes.len() - shown.len());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_as_pasted() {
        assert_eq!(parse_hex("81 85 37fa"), Ok(vec![0x81, 0x85, 0x37, 0xfa]));
        assert_eq!(parse_hex("0x81,0x05\n0x48"), Ok(vec![0x81, 0x05, 0x48]));
        assert_eq!(parse_hex("0x8"), Ok(vec![0x08]));
        assert!(parse_hex("8g").is_err());
        assert!(parse_hex("818").is_err());
    }

    #[test]
    fn previews() {
        assert_eq!(preview(b"Hello", 16), "48 65 6c 6c 6f  |Hello|");
        assert_eq!(preview(b"Hello", 2), "48 65  |He| ... (3 more bytes)");
    }
}
