//! E-mail (RFC 5322/MIME) through mail-parser, which decodes encoded words, transfer
//! encodings and charsets. The text is a header block (From, To, Cc, Bcc, Reply-To, Date,
//! Subject), the text bodies (HTML bodies through the HTML reader), the attachment names, and
//! the text of attached documents and messages, to a bounded depth.

use mail_parser::{Address, Message, MessageParser, MimeHeaders};

use crate::budget::Budget;
use crate::{ExtractError, Format, Options, decode, detect, html, pipeline};

fn addresses(address: Option<&Address<'_>>) -> Option<String> {
    let list: Vec<String> = address?
        .iter()
        .filter_map(|a| match (a.name(), a.address()) {
            (Some(name), Some(addr)) if !name.trim().is_empty() => {
                Some(format!("{} <{addr}>", name.trim()))
            }
            (_, Some(addr)) => Some(addr.to_owned()),
            (Some(name), None) => Some(name.to_owned()),
            (None, None) => None,
        })
        .collect();
    (!list.is_empty()).then(|| list.join(", "))
}

fn message_text(
    message: &Message<'_>,
    options: &Options,
    budget: &mut Budget,
    depth: u32,
) -> Result<String, ExtractError> {
    budget.check_time()?;
    let mut out = String::new();
    for (label, value) in [
        ("From", addresses(message.from())),
        ("To", addresses(message.to())),
        ("Cc", addresses(message.cc())),
        ("Bcc", addresses(message.bcc())),
        ("Reply-To", addresses(message.reply_to())),
        (
            "Date",
            message.header_raw("Date").map(|d| d.trim().to_owned()),
        ),
        ("Subject", message.subject().map(str::to_owned)),
    ] {
        if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
            out.push_str(&format!(
                "{label}: {}\n",
                value.split_whitespace().collect::<Vec<_>>().join(" ")
            ));
        }
    }
    for part in message.text_bodies() {
        let Some(text) = part.text_contents() else {
            continue;
        };
        out.push('\n');
        if part.is_text_html() {
            out.push_str(&html::html_to_text(text));
        } else {
            out.push_str(text);
        }
        out.push('\n');
    }
    let names: Vec<String> = message
        .attachments()
        .map(|a| {
            a.attachment_name()
                .map(str::to_owned)
                .unwrap_or_else(|| "(unnamed)".to_owned())
        })
        .collect();
    if !names.is_empty() {
        out.push_str(&format!("\nAttachments: {}\n", names.join(", ")));
    }
    for (part, name) in message.attachments().zip(&names) {
        let text = if let Some(nested) = part.message() {
            if depth >= budget.limits.max_depth {
                continue;
            }
            message_text(nested, options, budget, depth + 1)?
        } else {
            match attachment_text(part.contents(), name, options, budget, depth) {
                Ok(Some(text)) => text,
                Ok(None) => continue,
                // One unreadable attachment does not make the message unreadable.
                Err(ExtractError::LimitExceeded(m)) => return Err(ExtractError::LimitExceeded(m)),
                Err(e) => format!("(the attachment could not be read: {e})"),
            }
        };
        if !text.trim().is_empty() {
            out.push_str(&format!("\n--- {name} ---\n{text}\n"));
        }
    }
    Ok(out)
}

fn attachment_text(
    bytes: &[u8],
    name: &str,
    options: &Options,
    budget: &mut Budget,
    depth: u32,
) -> Result<Option<String>, ExtractError> {
    budget.expand(bytes.len() as u64)?;
    let Some(format) = detect(bytes, Some(name)) else {
        return Ok(None);
    };
    let is_image = matches!(
        format,
        Format::Png | Format::Jpeg | Format::Tiff | Format::Webp
    );
    if (is_image && options.ocr.is_none())
        || (format == Format::Email && depth >= budget.limits.max_depth)
    {
        return Ok(None);
    }
    let pages = pipeline::read_pages(bytes, format, options, budget, depth + 1)?;
    Ok(Some(
        pages
            .into_iter()
            .map(|p| p.text)
            .collect::<Vec<_>>()
            .join("\n"),
    ))
}

/// The text of an e-mail; `depth` counts the messages it is attached to.
pub(crate) fn read_email(
    bytes: &[u8],
    options: &Options,
    budget: &mut Budget,
    depth: u32,
) -> Result<String, ExtractError> {
    // UTF-16/32 files (a message saved by some tools) are converted first; 8-bit bytes go to
    // the parser as they are, since each MIME part names its own charset.
    let converted = decode::wide_text(bytes);
    let raw: &[u8] = converted.as_deref().map_or(bytes, str::as_bytes);
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(String::new());
    }
    let message = MessageParser::default()
        .parse(raw)
        .ok_or_else(|| ExtractError::Corrupt("the e-mail cannot be parsed".into()))?;
    Ok(pipeline::tidy(&message_text(
        &message, options, budget, depth,
    )?))
}

#[cfg(test)]
mod tests {
    use crate::{Options, extract};

    #[test]
    fn headers_bodies_and_attachments() {
        let mail = "From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.com>\r\n\
To: Bob <bob@example.com>\r\nSubject: =?utf-8?b?UmVjaG51bmcgw7xiZXIgMTAwIOKCrA==?=\r\n\
Date: Thu, 12 Mar 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
Gr=C3=BC=C3=9Fe, see the list.\r\n\
--b\r\nContent-Type: text/csv; name=\"list.csv\"\r\nContent-Disposition: attachment; filename=\"list.csv\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\nbmFtZSxlbWFpbApBbm4sYW5uQGV4YW1wbGUuY29tCg==\r\n\
--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: inner@example.com\r\nSubject: Inner\r\n\r\nNested body\r\n\
--b--\r\n";
        let e = extract(mail.as_bytes(), &Options::default()).unwrap();
        assert!(
            e.text.starts_with(
                "From: Jürgen Müller <juergen@example.com>\nTo: Bob <bob@example.com>\n"
            ),
            "{}",
            e.text
        );
        assert!(e.text.contains("Subject: Rechnung über 100 €"));
        assert!(e.text.contains("Grüße, see the list."));
        assert!(e.text.contains("Attachments: list.csv"));
        assert!(e.text.contains("name\temail\nAnn\tann@example.com"));
        assert!(e.text.contains("Nested body"));
        assert_eq!(e.fields.dates[0].value, "2026-03-12");
        let emails: Vec<&str> = e.fields.emails.iter().map(|f| f.value.as_str()).collect();
        assert!(emails.contains(&"ann@example.com") && emails.contains(&"inner@example.com"));
        assert_eq!(e.contacts[0].first_name.as_deref(), Some("Jürgen"));
    }
}
