//! Labelled values: `Label: value` (several per line when separated by tabs or wide gaps),
//! a label ending in `:` with its value on the next line, and two-cell table rows.

use std::sync::LazyLock;

use regex::Regex;

static WIDE_GAP: LazyLock<Regex> = LazyLock::new(|| crate::static_regex(r"\t| {3,}"));

/// Labels that precede a colon without labelling a value.
const NOT_LABELS: &[&str] = &[
    "http", "https", "mailto", "ftp", "file", "re", "fwd", "note",
];

/// A label: starts with a letter, a few words, mostly letters.
fn label_like(key: &str) -> bool {
    let key = key.trim();
    let words = key.split_whitespace().count();
    let letters = key.chars().filter(|c| c.is_alphabetic()).count();
    let digits = key.chars().filter(char::is_ascii_digit).count();
    !key.is_empty()
        && key.chars().count() <= 48
        && (1..=6).contains(&words)
        && key.starts_with(char::is_alphabetic)
        && !key.ends_with(|c: char| c.is_ascii_digit())
        && letters >= 2
        && digits * 3 <= letters
        && !key.contains(['@', '/', '\\', '=', '<', '>', '{', '}', '|'])
        && !NOT_LABELS.contains(&key.to_ascii_lowercase().as_str())
}

fn clean_key(key: &str) -> String {
    key.trim().trim_end_matches(['#', '.']).trim().to_owned()
}

/// Splits `segment` at its first colon that ends a label.
fn split_pair(segment: &str) -> Option<(String, String)> {
    let at = segment.find([':', '：'])?;
    let key = &segment[..at];
    let value = segment[at..].trim_start_matches([':', '：']).trim();
    // `10:30` and `http://` are not labels.
    if value.starts_with("//") || !label_like(key) {
        return None;
    }
    Some((clean_key(key), value.to_owned()))
}

/// Labelled values in `text`, in order.
pub(crate) fn find_key_values(text: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.is_empty() || line.len() > 500 {
            continue;
        }
        let segments: Vec<&str> = WIDE_GAP
            .split(line)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        // A header row of labels over a row of values: `Invoice Date:\tDue Date:` then
        // `03/20/2023\t04/04/2023`.
        if segments.len() >= 2
            && segments
                .iter()
                .all(|s| s.ends_with(':') && label_like(s.trim_end_matches(':')))
            && let Some(next) = lines.get(i + 1)
        {
            let values: Vec<&str> = WIDE_GAP
                .split(next)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            if values.len() == segments.len() && !values.iter().any(|v| v.ends_with(':')) {
                for (key, value) in segments.iter().zip(values) {
                    out.push((clean_key(key.trim_end_matches(':')), value.to_owned()));
                }
                continue;
            }
        }
        let mut paired = false;
        for segment in &segments {
            if let Some((key, value)) = split_pair(segment) {
                paired = true;
                if !value.is_empty() {
                    out.push((key, value));
                } else if segments.len() == 1
                    && let Some(next) = lines.get(i + 1).filter(|n| !n.is_empty())
                    && split_pair(next).is_none()
                    && next.len() <= 200
                {
                    out.push((key, (*next).to_owned()));
                }
            }
        }
        if !paired
            && line.contains('\t')
            && let [key, value] = segments.as_slice()
            && label_like(key)
            && !label_like(value)
        {
            out.push((clean_key(key), (*value).to_owned()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(text: &str) -> Vec<(String, String)> {
        find_key_values(text)
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn forms_of_labelled_values() {
        assert_eq!(
            kv("Invoice Number: INV-0042"),
            [pair("Invoice Number", "INV-0042")]
        );
        assert_eq!(kv("Invoice #: 7"), [pair("Invoice", "7")]);
        assert_eq!(
            kv("Date: 2026-01-01     Due: 2026-02-01"),
            [pair("Date", "2026-01-01"), pair("Due", "2026-02-01")]
        );
        assert_eq!(kv("Bill to:\nACME Ltd\n"), [pair("Bill to", "ACME Ltd")]);
        assert_eq!(
            kv("Invoice Number\tINV-0042"),
            [pair("Invoice Number", "INV-0042")]
        );
        assert_eq!(
            kv("Invoice Date:\tDue Date:\n03/20/2023\t04/04/2023"),
            [
                pair("Invoice Date", "03/20/2023"),
                pair("Due Date", "04/04/2023")
            ]
        );
        assert!(kv("Meeting at 10:30 today").is_empty());
        assert!(kv("see https://example.com").is_empty());
        assert!(kv("Name\tCity").is_empty());
    }
}
