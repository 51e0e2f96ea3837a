//! Phone numbers: candidates in the text, validated and formatted (E.164) by the
//! libphonenumber port. Numbers in national form need a default region and either a phone
//! label on the line or the grouping a phone number is written with.

use std::sync::LazyLock;

use phonenumber::{Mode, country};
use regex::Regex;

static CANDIDATE: LazyLock<Regex> =
    LazyLock::new(|| crate::static_regex(r"(?:\+|\b00|\()?\d[\d \u{a0}().\-/]{4,22}\d"));

static LABEL: LazyLock<Regex> = LazyLock::new(|| {
    crate::static_regex(
        r"(?i)(\b(tel|tél|tele|telephone|téléphone|telefon|telefoon|phone|ph|fax|mobile|mob|cell|handy|gsm|call|contact|hotline|whatsapp)\b|\b[tmfp]\s?[:.])",
    )
});

/// One phone number found in a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PhoneMatch {
    pub e164: String,
    pub raw: String,
}

pub(crate) fn region(code: Option<&str>) -> Option<country::Id> {
    code.and_then(|c| c.trim().to_ascii_uppercase().parse().ok())
}

/// Parses one number as written; `None` unless it is a valid number.
pub(crate) fn parse_phone(raw: &str, region: Option<country::Id>) -> Option<String> {
    let raw = raw.trim();
    let digits = raw.chars().filter(char::is_ascii_digit).count();
    if !(7..=15).contains(&digits) {
        return None;
    }
    let international = if let Some(rest) = raw.strip_prefix("00") {
        Some(format!("+{rest}"))
    } else if raw.starts_with('+') {
        Some(raw.to_owned())
    } else {
        None
    };
    let number = match international {
        Some(intl) => phonenumber::parse(None, intl).ok()?,
        None => phonenumber::parse(Some(region?), raw).ok()?,
    };
    phonenumber::is_valid(&number)
        .then(|| phonenumber::format(&number).mode(Mode::E164).to_string())
}

/// A run of digits written like a phone number: grouped by spaces, dashes, dots or
/// parentheses, not like a date or a decimal amount.
fn phone_shaped(candidate: &str) -> bool {
    let groups = candidate
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .count();
    let has_paren = candidate.contains('(');
    let only_dots_and_commas = !candidate.contains([' ', '-', '(', '/', '\u{a0}']);
    (groups >= 2 || has_paren) && !only_dots_and_commas
}

/// Phone numbers in `line`.
pub(crate) fn find_phones(line: &str, region: Option<country::Id>) -> Vec<PhoneMatch> {
    let labelled = LABEL.is_match(line);
    let mut out = Vec::new();
    for m in CANDIDATE.find_iter(line) {
        if line[..m.start()].ends_with(|c: char| c.is_alphanumeric() || c == '.' || c == ',') {
            continue;
        }
        if line[m.end()..].starts_with(|c: char| c.is_alphanumeric()) {
            continue;
        }
        let raw = m.as_str().trim_end_matches(|c: char| !c.is_ascii_digit());
        let international = raw.starts_with('+') || raw.starts_with("00");
        if !international && (region.is_none() || !(labelled || phone_shaped(raw))) {
            continue;
        }
        if super::dates::parse_date(raw, super::dates::Order::DayFirst).is_some() {
            continue;
        }
        let raw = if raw.starts_with('(') && !raw.contains(')') {
            &raw[1..]
        } else {
            raw
        };
        if let Some(e164) = parse_phone(raw, region) {
            out.push(PhoneMatch {
                e164,
                raw: raw.trim().to_owned(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e164(line: &str, r: Option<&str>) -> Vec<String> {
        find_phones(line, region(r))
            .into_iter()
            .map(|p| p.e164)
            .collect()
    }

    #[test]
    fn international_and_national() {
        assert_eq!(e164("Tel: +44 20 7946 0958", None), ["+442079460958"]);
        assert_eq!(e164("call 0044 20 7946 0958 now", None), ["+442079460958"]);
        assert_eq!(e164("Phone: 020 7946 0958", Some("GB")), ["+442079460958"]);
        assert_eq!(e164("020 7946 0958", None), Vec::<String>::new());
        assert_eq!(e164("(870)-931-0505", Some("US")), ["+18709310505"]);
        assert_eq!(e164("Mobil +49 151 23456789", None), ["+4915123456789"]);
    }

    #[test]
    fn not_dates_or_amounts() {
        assert!(e164("Date 12.03.2026 total 1,234,567.00", Some("DE")).is_empty());
        assert!(e164("Invoice 2022089083", Some("FR")).is_empty());
    }
}
