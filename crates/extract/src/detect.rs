//! Format detection from the bytes: magic numbers, a ZIP's content types, the structure of
//! text. A file name is only a hint for text that could be CSV or an e-mail.

use std::io::Read;

use crate::{Format, decode};

/// The format of `bytes`, or `None` when the library cannot extract it.
pub fn detect(bytes: &[u8], filename: Option<&str>) -> Option<Format> {
    let extension = filename
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    if let Some(format) = detect_binary(bytes) {
        return format;
    }
    let text = decode::decode_text(bytes, decode::html_declared_charset(bytes))?;
    Some(detect_text(&text, &extension))
}

/// `Some(None)`: a binary container the library does not read.
fn detect_binary(bytes: &[u8]) -> Option<Option<Format>> {
    let head = &bytes[..bytes.len().min(1024)];
    if head.windows(5).any(|w| w == b"%PDF-") {
        return Some(Some(Format::Pdf));
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(Some(Format::Png));
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(Some(Format::Jpeg));
    }
    if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        return Some(Some(Format::Tiff));
    }
    if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        return Some(Some(Format::Webp));
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return Some(is_word_document(bytes).then_some(Format::Docx));
    }
    None
}

/// A Word document is a ZIP whose `[Content_Types].xml` names a WordprocessingML main part.
fn is_word_document(bytes: &[u8]) -> bool {
    let Ok(mut archive) = zip::ZipArchive::new(std::io::Cursor::new(bytes)) else {
        return false;
    };
    let Ok(file) = archive.by_name("[Content_Types].xml") else {
        return false;
    };
    let mut types = String::new();
    if file.take(1 << 20).read_to_string(&mut types).is_err() {
        return false;
    }
    types.contains("wordprocessingml.document.main+xml")
        || types.contains("application/vnd.ms-word.document.macroEnabled.main+xml")
        || types.contains("wordprocessingml.template.main+xml")
}

fn detect_text(text: &str, extension: &str) -> Format {
    let start = text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    if looks_like_html(start) {
        return Format::Html;
    }
    if looks_like_email(start) || (start.is_empty() && extension == "eml") {
        return Format::Email;
    }
    if looks_like_csv(start, extension) {
        return Format::Csv;
    }
    Format::Text
}

fn looks_like_html(start: &str) -> bool {
    let head: String = start
        .chars()
        .take(1024)
        .collect::<String>()
        .to_ascii_lowercase();
    let mut rest = head.as_str();
    if rest.starts_with("<?xml") {
        rest = rest.split_once("?>").map_or("", |(_, r)| r).trim_start();
    }
    while rest.starts_with("<!--") {
        rest = rest.split_once("-->").map_or("", |(_, r)| r).trim_start();
    }
    if rest.starts_with("<!doctype html") {
        return true;
    }
    // A document that opens with an HTML element.
    const ELEMENTS: &[&str] = &[
        "html",
        "head",
        "body",
        "title",
        "meta",
        "link",
        "style",
        "script",
        "div",
        "p",
        "span",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "table",
        "tr",
        "td",
        "ul",
        "ol",
        "li",
        "a",
        "b",
        "i",
        "em",
        "strong",
        "br",
        "hr",
        "img",
        "font",
        "center",
        "section",
        "article",
        "header",
        "footer",
        "nav",
        "main",
        "form",
        "pre",
        "blockquote",
        "iframe",
        "dl",
        "base",
        "noscript",
    ];
    let Some(tag) = rest.strip_prefix('<') else {
        return false;
    };
    let name: String = tag
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    let after = tag[name.len()..].chars().next();
    ELEMENTS.contains(&name.as_str()) && matches!(after, Some('>' | ' ' | '/' | '\t' | '\n' | '\r'))
}

/// RFC 5322 structure: the first lines are header fields, among them the ones every message
/// has (From, and one of Date/Subject/To/Message-ID/MIME-Version/Received).
fn looks_like_email(start: &str) -> bool {
    let mut from = false;
    let mut other = 0;
    let mut headers = 0;
    for (i, line) in start.lines().take(200).enumerate() {
        if line.trim().is_empty() {
            break;
        }
        if i == 0 && line.starts_with("From ") {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if headers == 0 {
                return false;
            }
            continue;
        }
        let Some((name, _)) = line.split_once(':') else {
            return false;
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return false;
        }
        headers += 1;
        match name.to_ascii_lowercase().as_str() {
            "from" | "sender" => from = true,
            "to" | "cc" | "date" | "subject" | "message-id" | "mime-version" | "received"
            | "return-path" | "content-type" | "reply-to" => other += 1,
            _ => {}
        }
    }
    (from && other >= 1) || other >= 3
}

/// Rows with the same number of delimited fields; fewer rows are enough with a `.csv` name.
fn looks_like_csv(start: &str, extension: &str) -> bool {
    let hinted = matches!(extension, "csv" | "tsv");
    let sample: Vec<&str> = start
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(50)
        .collect();
    let needed = if hinted { 1 } else { 3 };
    if sample.len() < needed {
        return false;
    }
    [b',', b';', b'\t'].iter().any(|&delimiter| {
        let counts: Vec<usize> = sample
            .iter()
            .map(|l| crate::tabular::count_fields(l, delimiter))
            .collect();
        let first = counts[0];
        first >= 2 && counts.iter().filter(|c| **c == first).count() * 10 >= counts.len() * 9
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zip_with(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut buf = std::io::Cursor::new(Vec::new());
        let mut w = zip::ZipWriter::new(&mut buf);
        for (name, body) in entries {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            std::io::Write::write_all(&mut w, body.as_bytes()).unwrap();
        }
        w.finish().unwrap();
        buf.into_inner()
    }

    #[test]
    fn magic_numbers() {
        assert_eq!(detect(b"%PDF-1.7\n", None), Some(Format::Pdf));
        assert_eq!(detect(b"\x89PNG\r\n\x1a\n\0\0", None), Some(Format::Png));
        assert_eq!(
            detect(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10], None),
            Some(Format::Jpeg)
        );
        assert_eq!(detect(b"II*\0\x08\0\0\0", None), Some(Format::Tiff));
        assert_eq!(detect(b"RIFF\x10\0\0\0WEBPVP8 ", None), Some(Format::Webp));
        assert_eq!(
            detect(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0>\0", None),
            None
        );
    }

    #[test]
    fn zip_is_docx_only_with_a_word_main_part() {
        let docx = zip_with(&[(
            "[Content_Types].xml",
            r#"<Types><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#,
        )]);
        assert_eq!(detect(&docx, Some("a.docx")), Some(Format::Docx));
        let xlsx = zip_with(&[(
            "[Content_Types].xml",
            r#"<Types><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>"#,
        )]);
        assert_eq!(detect(&xlsx, Some("a.docx")), None);
        assert_eq!(detect(&zip_with(&[("a.txt", "hello")]), None), None);
    }

    #[test]
    fn text_kinds() {
        assert_eq!(detect(b"", None), Some(Format::Text));
        assert_eq!(detect(b"", Some("x.eml")), Some(Format::Email));
        assert_eq!(
            detect(b"Hello, world.\nSecond line", None),
            Some(Format::Text)
        );
        assert_eq!(
            detect(b"  <!DOCTYPE html><html><body>x", None),
            Some(Format::Html)
        );
        assert_eq!(detect(b"<p>Hi</p>", None), Some(Format::Html));
        assert_eq!(
            detect(b"<h3 class=\"t\">Jahresabschluss</h3>", None),
            Some(Format::Html)
        );
        assert_eq!(
            detect(b"<Hello> is not an element", None),
            Some(Format::Text)
        );
        let mail = b"From: A <a@example.com>\r\nTo: b@example.com\r\nSubject: Hi\r\n\r\nBody";
        assert_eq!(detect(mail, None), Some(Format::Email));
        let csv = b"name,amount,date\nA,1,2026-01-01\nB,2,2026-01-02\nC,3,2026-01-03\n";
        assert_eq!(detect(csv, None), Some(Format::Csv));
        assert_eq!(detect(b"a;b\n1;2\n", Some("x.CSV")), Some(Format::Csv));
        let prose = b"Dear Sir, thank you.\nWe met, as agreed, on Monday.\nRegards\n";
        assert_eq!(detect(prose, None), Some(Format::Text));
    }
}
