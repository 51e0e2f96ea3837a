//! Money amounts: a number with a currency symbol or ISO 4217 code before or after it, in
//! English (`1,234.50`), German (`1.234,50`), French (`1 234,50`) or Swiss (`1'234.50`)
//! style, negative with a minus sign or parentheses. Values are decimal strings.

use std::sync::LazyLock;

use regex::Regex;

/// Symbols and the currency each one means; `$` alone is read as US dollars.
const SYMBOLS: &[(&str, &str)] = &[
    ("US$", "USD"),
    ("CA$", "CAD"),
    ("C$", "CAD"),
    ("AU$", "AUD"),
    ("A$", "AUD"),
    ("NZ$", "NZD"),
    ("HK$", "HKD"),
    ("S$", "SGD"),
    ("R$", "BRL"),
    ("$", "USD"),
    ("€", "EUR"),
    ("£", "GBP"),
    ("¥", "JPY"),
    ("₹", "INR"),
    ("Rs.", "INR"),
    ("Rs", "INR"),
    ("₽", "RUB"),
    ("zł", "PLN"),
    ("₩", "KRW"),
    ("₺", "TRY"),
    ("₪", "ILS"),
    ("₫", "VND"),
    ("฿", "THB"),
    ("₱", "PHP"),
    ("Kč", "CZK"),
];

const CODES: &[&str] = &[
    "USD", "EUR", "GBP", "CHF", "JPY", "CNY", "INR", "PLN", "CAD", "AUD", "NZD", "SEK", "NOK",
    "DKK", "CZK", "HUF", "RUB", "BRL", "MXN", "ZAR", "SGD", "HKD", "KRW", "TRY", "AED", "SAR",
    "ILS", "RON", "BGN", "THB", "IDR", "MYR", "PHP", "TWD", "UAH", "ISK", "NGN", "EGP", "ARS",
    "CLP", "COP", "PEN", "VND", "KES", "QAR", "KWD", "MAD",
];

/// Words naming a currency, for the document's currency when no amount carries one.
const WORDS: &[(&str, &str)] = &[
    ("euro", "EUR"),
    ("euros", "EUR"),
    ("dollar", "USD"),
    ("dollars", "USD"),
    ("rupee", "INR"),
    ("rupees", "INR"),
    ("złotych", "PLN"),
    ("zloty", "PLN"),
    ("pound", "GBP"),
    ("pounds", "GBP"),
    ("franken", "CHF"),
];

fn currency_alternation() -> String {
    let mut symbols: Vec<String> = SYMBOLS.iter().map(|(s, _)| regex::escape(s)).collect();
    symbols.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let codes = CODES.join("|");
    format!(r"(?:\b(?:{codes})\b|{})", symbols.join("|"))
}

/// A number as written: space/apostrophe thousands only in groups of three.
const NUMBER: &str = r"\d{1,3}(?:[ \u{a0}\u{202f}\u{2009}'’]\d{3})+(?:[.,]\d{1,3})?|\d[\d,.]*\d|\d";

static AMOUNT: LazyLock<Regex> = LazyLock::new(|| {
    let cur = currency_alternation();
    crate::static_regex(&format!(
        r"(?P<neg1>[-−]\s?)?(?P<open1>\(\s?)?(?P<pre>{cur})[ \u{{a0}}]?(?P<neg2>[-−]\s?)?(?P<num1>{NUMBER})(?P<trail1>-)?|(?P<open2>\()?(?P<neg3>[-−]\s?)?(?P<num2>{NUMBER})[ \u{{a0}}]?(?P<post>{cur})(?P<trail2>-)?"
    ))
});

static BARE_MONEY: LazyLock<Regex> = LazyLock::new(|| {
    crate::static_regex(
        r"(?P<neg>[-−]\s?)?(?P<num>\d{1,3}(?:[,.' \u{a0}]\d{3})+[.,]\d{2}|\d+[.,]\d{2})\b",
    )
});

static LABELLED_MONEY_LINE: LazyLock<Regex> = LazyLock::new(|| {
    crate::static_regex(
        r"(?i)\b(total|subtotal|sub-total|amount|sum|tax|vat|gst|due|balance|price|paid|payment|fee|charge|betrag|summe|gesamt\w*|netto|brutto|mwst|ust|montant|prix|tva|ttc|totaal|bedrag|btw|importe|kwota|razem|suma)\b",
    )
});

fn currency_of(marker: &str) -> Option<&'static str> {
    if let Some(code) = CODES.iter().find(|c| c.eq_ignore_ascii_case(marker)) {
        return Some(code);
    }
    SYMBOLS.iter().find(|(s, _)| *s == marker).map(|(_, c)| *c)
}

/// `1.234,50` / `1,234.50` / `1 234,50` / `1'234.50` → `1234.50`; `None` when the separators
/// cannot be a number (e.g. `1.2.3`).
pub(crate) fn normalize_number(raw: &str) -> Option<String> {
    let s: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}' | '\u{2009}' | '\'' | '’'))
        .collect();
    if s.is_empty() || !s.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let last_comma = s.rfind(',');
    let last_dot = s.rfind('.');
    let decimal = match (last_comma, last_dot) {
        (Some(c), Some(d)) => Some(if c > d { ',' } else { '.' }),
        (Some(_), None) | (None, Some(_)) => {
            let sep = if last_comma.is_some() { ',' } else { '.' };
            let count = s.matches(sep).count();
            let after = s.rsplit(sep).next().map_or(0, str::len);
            if count > 1 || after == 3 {
                None
            } else {
                Some(sep)
            }
        }
        (None, None) => None,
    };
    let (int_part, frac_part) = match decimal {
        Some(sep) => {
            let at = s.rfind(sep)?;
            (&s[..at], Some(&s[at + 1..]))
        }
        None => (s.as_str(), None),
    };
    let thousands = match decimal {
        Some(',') => '.',
        Some(_) => ',',
        None => {
            if int_part.contains(',') {
                ','
            } else {
                '.'
            }
        }
    };
    let groups: Vec<&str> = int_part.split(thousands).collect();
    if groups.len() > 1
        && (groups[0].is_empty() || groups[0].len() > 3 || groups[1..].iter().any(|g| g.len() != 3))
    {
        return None;
    }
    let digits: String = groups.concat();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if let Some(frac) = frac_part
        && (frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let trimmed = digits.trim_start_matches('0');
    let int = if trimmed.is_empty() { "0" } else { trimmed };
    Some(match frac_part {
        Some(frac) => format!("{int}.{frac}"),
        None => int.to_owned(),
    })
}

/// One amount found in a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AmountMatch {
    pub value: String,
    pub currency: Option<String>,
    pub raw: String,
    pub start: usize,
    pub end: usize,
}

fn negate(value: String) -> String {
    if value.trim_start_matches(['0', '.']).is_empty() {
        value
    } else {
        format!("-{value}")
    }
}

/// Amounts with a currency marker in `line`.
pub(crate) fn find_amounts(line: &str) -> Vec<AmountMatch> {
    let mut out = Vec::new();
    for c in AMOUNT.captures_iter(line) {
        let Some(m) = c.get(0) else { continue };
        let (num, marker) = match (
            c.name("num1"),
            c.name("pre"),
            c.name("num2"),
            c.name("post"),
        ) {
            (Some(n), Some(p), _, _) => (n, p),
            (_, _, Some(n), Some(p)) => (n, p),
            _ => continue,
        };
        // Part of a longer token (an identifier, a version) is not an amount.
        if line[..num.start().min(m.start())].ends_with(|ch: char| ch.is_alphanumeric())
            && c.name("pre").is_none()
        {
            continue;
        }
        if line[m.end()..].starts_with(|ch: char| ch.is_ascii_digit()) {
            continue;
        }
        let Some(value) = normalize_number(num.as_str()) else {
            continue;
        };
        let mut end = m.end();
        let open = c.name("open1").or(c.name("open2")).is_some();
        let closed = open && line[end..].trim_start().starts_with(')');
        if closed {
            end += line[end..].find(')').map_or(0, |i| i + 1);
        }
        let negative = c
            .name("neg1")
            .or(c.name("neg2"))
            .or(c.name("neg3"))
            .is_some()
            || c.name("trail1").or(c.name("trail2")).is_some()
            || closed;
        let value = if negative { negate(value) } else { value };
        let start = if open && !closed {
            m.start() + line[m.start()..].find(|ch| ch != '(').unwrap_or(0)
        } else {
            m.start()
        };
        out.push(AmountMatch {
            value,
            currency: currency_of(marker.as_str()).map(str::to_owned),
            raw: line[start..end].trim().to_owned(),
            start,
            end,
        });
    }
    out
}

/// Numbers with two decimals on a line that names money (`Total 1.234,50`), for documents
/// that print the currency once elsewhere.
pub(crate) fn find_labelled_amounts(line: &str) -> Vec<AmountMatch> {
    if !LABELLED_MONEY_LINE.is_match(line) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for c in BARE_MONEY.captures_iter(line) {
        let Some(m) = c.get(0) else { continue };
        let Some(num) = c.name("num") else { continue };
        if line[..num.start()].ends_with(|ch: char| ch.is_alphanumeric() || ch == '.' || ch == ',')
            || line[m.end()..].starts_with(|ch: char| ch.is_ascii_digit() || ch == '%')
            || line[m.end()..].trim_start().starts_with('%')
        {
            continue;
        }
        let Some(value) = normalize_number(num.as_str()) else {
            continue;
        };
        let value = if c.name("neg").is_some() {
            negate(value)
        } else {
            value
        };
        out.push(AmountMatch {
            value,
            currency: None,
            raw: m.as_str().trim().to_owned(),
            start: m.start(),
            end: m.end(),
        });
    }
    out
}

/// The currency a text names most often (amount markers, codes, currency words).
pub(crate) fn dominant_currency(text: &str) -> Option<String> {
    fn add(counts: &mut Vec<(&'static str, usize)>, code: &'static str) {
        match counts.iter_mut().find(|(c, _)| *c == code) {
            Some(entry) => entry.1 += 1,
            None => counts.push((code, 1)),
        }
    }
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    for line in text.lines() {
        for a in find_amounts(line) {
            if let Some(code) = a
                .currency
                .as_deref()
                .and_then(|c| CODES.iter().find(|k| **k == c))
            {
                add(&mut counts, code);
            }
        }
    }
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if let Some(code) = CODES.iter().find(|c| **c == word) {
            add(&mut counts, code);
        } else if let Some((_, code)) = WORDS.iter().find(|(w, _)| w.eq_ignore_ascii_case(word)) {
            add(&mut counts, code);
        }
    }
    if counts.is_empty() {
        for c in text.chars() {
            let code = match c {
                '€' => "EUR",
                '£' => "GBP",
                '₹' => "INR",
                '$' => "USD",
                _ => continue,
            };
            add(&mut counts, code);
        }
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(c, _)| c.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_each_style() {
        for (raw, want) in [
            ("1,234.50", "1234.50"),
            ("1.234,50", "1234.50"),
            ("1 234,50", "1234.50"),
            ("1'234.50", "1234.50"),
            ("1234,5", "1234.5"),
            ("1,234", "1234"),
            ("1.234.567", "1234567"),
            ("0.99", "0.99"),
            ("12", "12"),
        ] {
            assert_eq!(normalize_number(raw).as_deref(), Some(want), "{raw}");
        }
        assert_eq!(normalize_number("1.2.3"), None);
        assert_eq!(normalize_number("12,34,56"), None);
    }

    fn amounts(line: &str) -> Vec<(String, Option<String>)> {
        find_amounts(line)
            .into_iter()
            .map(|a| (a.value, a.currency))
            .collect()
    }

    #[test]
    fn markers_before_and_after() {
        let usd = Some("USD".to_owned());
        let eur = Some("EUR".to_owned());
        assert_eq!(
            amounts("Total: $1,234.50"),
            [("1234.50".to_owned(), usd.clone())]
        );
        assert_eq!(
            amounts("Summe 1.234,50 €"),
            [("1234.50".to_owned(), eur.clone())]
        );
        assert_eq!(amounts("EUR 99"), [("99".to_owned(), eur.clone())]);
        assert_eq!(
            amounts("1 234,50 EUR"),
            [("1234.50".to_owned(), eur.clone())]
        );
        assert_eq!(
            amounts("CHF 1'234.50"),
            [("1234.50".to_owned(), Some("CHF".to_owned()))]
        );
        assert_eq!(
            amounts("Refund -$20.00"),
            [("-20.00".to_owned(), usd.clone())]
        );
        assert_eq!(
            amounts("Credit ($20.00)"),
            [("-20.00".to_owned(), usd.clone())]
        );
        assert_eq!(amounts("€ -5,00"), [("-5.00".to_owned(), eur)]);
        assert_eq!(
            amounts("₹319.00"),
            [("319.00".to_owned(), Some("INR".to_owned()))]
        );
        assert!(amounts("EURO 2026 and USDT").is_empty());
    }

    #[test]
    fn labelled_lines_and_dominant_currency() {
        let found = find_labelled_amounts("Total TTC 29,99");
        assert_eq!(found[0].value, "29.99");
        assert!(find_labelled_amounts("Page 1.00 of 2").is_empty());
        assert_eq!(
            dominant_currency("Total 5 EUR\nTax 1 EUR\n$2").as_deref(),
            Some("EUR")
        );
    }
}
