//! Bytes to text: byte-order marks (UTF-8, UTF-16, UTF-32), UTF-16 without a mark, UTF-8,
//! a declared charset, then Windows-1252. `None` means the bytes are not text.

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, WINDOWS_1252};

/// Decodes `bytes` as text; `declared` is a charset the document names (HTML `<meta>`).
pub(crate) fn decode_text(bytes: &[u8], declared: Option<&'static Encoding>) -> Option<String> {
    if bytes.is_empty() {
        return Some(String::new());
    }
    if let Some(text) = decode_utf32_bom(bytes) {
        return text.filter(|t| !looks_binary(t));
    }
    if let Some((encoding, bom_len)) = Encoding::for_bom(bytes) {
        let (text, _) = encoding.decode_without_bom_handling(&bytes[bom_len..]);
        return Some(text.into_owned()).filter(|t| !looks_binary(t));
    }
    if let Some(encoding) = utf16_without_bom(bytes) {
        let (text, had_errors) = encoding.decode_without_bom_handling(bytes);
        if !had_errors && !looks_binary(&text) {
            return Some(text.into_owned());
        }
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Some(text.to_owned()).filter(|t| !looks_binary(t));
    }
    let encoding = declared
        .filter(|e| *e != encoding_rs::UTF_8)
        .unwrap_or(WINDOWS_1252);
    let (text, _) = encoding.decode_without_bom_handling(bytes);
    Some(text.into_owned()).filter(|t| !looks_binary(t))
}

/// The text of UTF-16 or UTF-32 bytes (with or without a byte-order mark); `None` for
/// anything else.
pub(crate) fn wide_text(bytes: &[u8]) -> Option<String> {
    if let Some(text) = decode_utf32_bom(bytes) {
        return text;
    }
    if let Some((encoding, bom_len)) = Encoding::for_bom(bytes)
        && encoding != encoding_rs::UTF_8
    {
        return Some(
            encoding
                .decode_without_bom_handling(&bytes[bom_len..])
                .0
                .into_owned(),
        );
    }
    let encoding = utf16_without_bom(bytes)?;
    let (text, had_errors) = encoding.decode_without_bom_handling(bytes);
    (!had_errors).then(|| text.into_owned())
}

/// `Some(None)` when a UTF-32 mark is present but the content is not valid UTF-32.
fn decode_utf32_bom(bytes: &[u8]) -> Option<Option<String>> {
    let little = bytes.starts_with(&[0xFF, 0xFE, 0, 0]);
    let big = bytes.starts_with(&[0, 0, 0xFE, 0xFF]);
    if !little && !big {
        return None;
    }
    let body = &bytes[4..];
    if !body.len().is_multiple_of(4) {
        return Some(None);
    }
    let mut out = String::with_capacity(body.len() / 4);
    for chunk in body.chunks_exact(4) {
        let arr = [chunk[0], chunk[1], chunk[2], chunk[3]];
        let code = if little {
            u32::from_le_bytes(arr)
        } else {
            u32::from_be_bytes(arr)
        };
        match char::from_u32(code) {
            Some(c) => out.push(c),
            None => return Some(None),
        }
    }
    Some(Some(out))
}

/// UTF-16 text of Latin script has a zero byte in every other position.
fn utf16_without_bom(bytes: &[u8]) -> Option<&'static Encoding> {
    let sample = &bytes[..bytes.len().min(4096) & !1];
    if sample.len() < 4 {
        return None;
    }
    let pairs = sample.len() / 2;
    let even_zero = sample.iter().step_by(2).filter(|b| **b == 0).count();
    let odd_zero = sample
        .iter()
        .skip(1)
        .step_by(2)
        .filter(|b| **b == 0)
        .count();
    if odd_zero * 10 >= pairs * 7 && even_zero * 20 <= pairs {
        Some(UTF_16LE)
    } else if even_zero * 10 >= pairs * 7 && odd_zero * 20 <= pairs {
        Some(UTF_16BE)
    } else {
        None
    }
}

/// Text has no NUL and few control characters besides tab, line breaks, form feed and escape.
pub(crate) fn looks_binary(text: &str) -> bool {
    let mut total = 0usize;
    let mut control = 0usize;
    for c in text.chars().take(65_536) {
        total += 1;
        if c == '\0' {
            return true;
        }
        if c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0C' | '\x1B') && (c as u32) < 0x80
        {
            control += 1;
        }
    }
    control * 100 > total.max(1)
}

/// The charset an HTML document declares in its first bytes (`<meta charset>` or
/// `http-equiv` content type).
pub(crate) fn html_declared_charset(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = &bytes[..bytes.len().min(2048)];
    let lower: Vec<u8> = head.iter().map(u8::to_ascii_lowercase).collect();
    let needle = b"charset=";
    let at = lower.windows(needle.len()).position(|w| w == needle)?;
    let rest = &lower[at + needle.len()..];
    let rest = rest
        .strip_prefix(b"\"")
        .or_else(|| rest.strip_prefix(b"'"))
        .unwrap_or(rest);
    let end = rest
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')))
        .unwrap_or(rest.len());
    Encoding::for_label(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_utf8_utf16_utf32_and_windows_1252() {
        assert_eq!(
            decode_text("Grüße".as_bytes(), None).as_deref(),
            Some("Grüße")
        );
        let mut le = vec![0xFF, 0xFE];
        le.extend("Grüße".encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(decode_text(&le, None).as_deref(), Some("Grüße"));
        let be: Vec<u8> = "Hello there"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        assert_eq!(decode_text(&be, None).as_deref(), Some("Hello there"));
        let mut u32le = vec![0xFF, 0xFE, 0, 0];
        u32le.extend("día".chars().flat_map(|c| (c as u32).to_le_bytes()));
        assert_eq!(decode_text(&u32le, None).as_deref(), Some("día"));
        assert_eq!(
            decode_text(b"caf\xe9 \x80 5", None).as_deref(),
            Some("café € 5")
        );
    }

    #[test]
    fn binary_is_not_text() {
        assert_eq!(
            decode_text(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0", None),
            None
        );
        assert_eq!(
            decode_text(&[1, 2, 3, 4, 5, 6, 7, 8, 0xff, 0x10, 0x11], None),
            None
        );
    }

    #[test]
    fn finds_declared_charset() {
        let html = b"<html><head><meta charset=\"windows-1252\"></head>";
        assert_eq!(html_declared_charset(html), Some(WINDOWS_1252));
        let html = b"<meta http-equiv=Content-Type content='text/html; charset=ISO-8859-1'>";
        assert_eq!(html_declared_charset(html), Some(WINDOWS_1252));
    }
}
