//! Fields found in the text of each page: e-mail addresses, phone numbers, URLs, dates,
//! money amounts and labelled values, each with the page it was found on.

pub(crate) mod amounts;
pub(crate) mod dates;
pub(crate) mod keyvalues;
pub(crate) mod phones;

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;

use crate::{Amount, Fields, Found, Page};

/// At most this many entries of each kind, so a huge document cannot produce huge fields.
const MAX_PER_KIND: usize = 1_000;

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    crate::static_regex(
        r"(?i)\b[a-z0-9](?:[a-z0-9._%+\-]{0,62}[a-z0-9_%+\-])?@(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}\b",
    )
});

static URL: LazyLock<Regex> =
    LazyLock::new(|| crate::static_regex(r#"(?i)\b(?:https?://|www\.)[^\s<>"'`{}|\\^\[\]]+"#));

/// E-mail addresses in `text`, as written.
pub(crate) fn find_emails(text: &str) -> impl Iterator<Item = &str> {
    EMAIL
        .find_iter(text)
        .map(|m| m.as_str().trim_end_matches('.'))
}

/// URLs in `text`: `value` with a scheme, and the text as written.
pub(crate) fn find_urls(text: &str) -> impl Iterator<Item = (String, &str)> {
    URL.find_iter(text).filter_map(|m| {
        let mut raw = m
            .as_str()
            .trim_end_matches(['.', ',', ';', ':', '!', '?', '\'', '"']);
        // A closing parenthesis belongs to the URL only when it opened one inside it.
        while raw.ends_with(')') && raw.matches('(').count() < raw.matches(')').count() {
            raw = raw[..raw.len() - 1].trim_end_matches(['.', ',', ';', ':']);
        }
        let host = raw.split("://").nth(1).unwrap_or(raw);
        if !host.contains('.') || host.len() < 4 {
            return None;
        }
        let value = if raw.to_ascii_lowercase().starts_with("www.") {
            format!("https://{raw}")
        } else {
            raw.to_owned()
        };
        Some((value, raw))
    })
}

/// The order of ambiguous numeric dates in this document: unambiguous dates decide;
/// otherwise documents in US dollars are month first and all others day first.
pub(crate) fn date_order(text: &str) -> dates::Order {
    let (day_first, month_first) = dates::order_votes(text);
    if day_first != month_first {
        return if day_first > month_first {
            dates::Order::DayFirst
        } else {
            dates::Order::MonthFirst
        };
    }
    if amounts::dominant_currency(text).as_deref() == Some("USD") {
        dates::Order::MonthFirst
    } else {
        dates::Order::DayFirst
    }
}

fn found(value: String, raw: &str, page: u32) -> Found {
    let raw = (raw != value).then(|| raw.to_owned());
    Found { value, page, raw }
}

/// The fields of a document's pages. `default_region` (ISO 3166, e.g. `GB`) reads phone
/// numbers written without a country code.
pub fn find_fields(pages: &[Page], default_region: Option<&str>) -> Fields {
    let all_text: String = pages
        .iter()
        .map(|p| p.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let order = date_order(&all_text);
    let currency = amounts::dominant_currency(&all_text);
    let region = phones::region(default_region);
    let mut fields = Fields::default();
    let mut seen: HashSet<(u8, String)> = HashSet::new();
    let mut first = |kind: u8, value: &str| seen.insert((kind, value.to_lowercase()));
    for page in pages {
        let n = page.number;
        for line in page.text.lines() {
            for email in find_emails(line) {
                if fields.emails.len() < MAX_PER_KIND && first(0, email) {
                    fields.emails.push(found(email.to_owned(), email, n));
                }
            }
            let mut url_spans = String::new();
            for (value, raw) in find_urls(line) {
                url_spans.push_str(raw);
                if fields.urls.len() < MAX_PER_KIND && first(1, &value) {
                    fields.urls.push(found(value, raw, n));
                }
            }
            for phone in phones::find_phones(line, region) {
                if url_spans.contains(&phone.raw) {
                    continue;
                }
                if fields.phones.len() < MAX_PER_KIND && first(2, &phone.e164) {
                    fields.phones.push(found(phone.e164, &phone.raw, n));
                }
            }
            for date in dates::find_dates(line, order) {
                let raw = &line[date.start..date.end];
                if fields.dates.len() < MAX_PER_KIND && first(3, &format!("{}|{raw}", date.value)) {
                    fields.dates.push(found(date.value, raw, n));
                }
            }
            let marked = amounts::find_amounts(line);
            let labelled: Vec<_> = amounts::find_labelled_amounts(line)
                .into_iter()
                .filter(|l| !marked.iter().any(|m| l.start < m.end && m.start < l.end))
                .map(|mut l| {
                    l.currency.clone_from(&currency);
                    l
                })
                .collect();
            for a in marked.into_iter().chain(labelled) {
                if fields.amounts.len() < MAX_PER_KIND {
                    let raw = (a.raw != a.value).then_some(a.raw);
                    fields.amounts.push(Amount {
                        value: a.value,
                        currency: a.currency,
                        page: n,
                        raw,
                    });
                }
            }
        }
        for kv in keyvalues::find_key_values(&page.text) {
            if fields.key_values.len() < MAX_PER_KIND && first(4, &format!("{}\u{0}{}", kv.0, kv.1))
            {
                fields.key_values.push(crate::KeyValue {
                    key: kv.0,
                    value: kv.1,
                    page: n,
                });
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(text: &str) -> Vec<Page> {
        vec![Page {
            number: 1,
            text: text.to_owned(),
            ocr: false,
        }]
    }

    #[test]
    fn finds_every_kind() {
        let text = "Invoice Number: INV-0042\nDate: 12 March 2026\nContact: Jane <jane.doe@example.com>, +44 20 7946 0958\nSee https://example.com/terms.\nTotal: €1.234,50\n";
        let f = find_fields(&page(text), None);
        assert_eq!(f.emails[0].value, "jane.doe@example.com");
        assert_eq!(f.phones[0].value, "+442079460958");
        assert_eq!(f.phones[0].raw.as_deref(), Some("+44 20 7946 0958"));
        assert_eq!(f.urls[0].value, "https://example.com/terms");
        assert_eq!(f.dates[0].value, "2026-03-12");
        assert_eq!(f.dates[0].raw.as_deref(), Some("12 March 2026"));
        assert_eq!(f.amounts[0].value, "1234.50");
        assert_eq!(f.amounts[0].currency.as_deref(), Some("EUR"));
        assert!(
            f.key_values
                .iter()
                .any(|kv| kv.key == "Invoice Number" && kv.value == "INV-0042")
        );
    }

    #[test]
    fn urls_are_trimmed_and_given_a_scheme() {
        let urls: Vec<_> = find_urls("(see www.example.org/a_(b).) and http://x.io.").collect();
        assert_eq!(urls[0].0, "https://www.example.org/a_(b)");
        assert_eq!(urls[1].0, "http://x.io");
    }

    #[test]
    fn pages_are_kept() {
        let pages = vec![
            Page {
                number: 1,
                text: "nothing".into(),
                ocr: false,
            },
            Page {
                number: 2,
                text: "mail a@b.co".into(),
                ocr: false,
            },
        ];
        assert_eq!(find_fields(&pages, None).emails[0].page, 2);
    }
}
