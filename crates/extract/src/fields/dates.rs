//! Dates written in common forms to ISO 8601 (`YYYY-MM-DD`).
//!
//! Day/month order of numeric dates: a dot (`12.03.2026`) is always day first; for `/` and
//! `-` an unambiguous date (a part above 12) decides, otherwise the document's [`Order`].

use std::sync::LazyLock;

use regex::Regex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    DayFirst,
    MonthFirst,
}

/// Month names (English, German, French, Dutch, Spanish) and their abbreviations.
const MONTHS: &[(&str, u32)] = &[
    ("january", 1),
    ("jan", 1),
    ("januar", 1),
    ("janvier", 1),
    ("janv", 1),
    ("januari", 1),
    ("enero", 1),
    ("jänner", 1),
    ("february", 2),
    ("feb", 2),
    ("februar", 2),
    ("février", 2),
    ("fevrier", 2),
    ("févr", 2),
    ("fevr", 2),
    ("februari", 2),
    ("febrero", 2),
    ("march", 3),
    ("mar", 3),
    ("märz", 3),
    ("maerz", 3),
    ("mär", 3),
    ("mars", 3),
    ("maart", 3),
    ("marzo", 3),
    ("mrt", 3),
    ("april", 4),
    ("apr", 4),
    ("avril", 4),
    ("avr", 4),
    ("abril", 4),
    ("may", 5),
    ("mai", 5),
    ("mei", 5),
    ("mayo", 5),
    ("june", 6),
    ("jun", 6),
    ("juni", 6),
    ("juin", 6),
    ("junio", 6),
    ("july", 7),
    ("jul", 7),
    ("juli", 7),
    ("juillet", 7),
    ("juil", 7),
    ("julio", 7),
    ("august", 8),
    ("aug", 8),
    ("août", 8),
    ("aout", 8),
    ("augustus", 8),
    ("agosto", 8),
    ("september", 9),
    ("sep", 9),
    ("sept", 9),
    ("septembre", 9),
    ("septiembre", 9),
    ("october", 10),
    ("oct", 10),
    ("oktober", 10),
    ("okt", 10),
    ("octobre", 10),
    ("octubre", 10),
    ("november", 11),
    ("nov", 11),
    ("novembre", 11),
    ("noviembre", 11),
    ("december", 12),
    ("dec", 12),
    ("dezember", 12),
    ("dez", 12),
    ("décembre", 12),
    ("decembre", 12),
    ("déc", 12),
    ("diciembre", 12),
];

fn month_number(name: &str) -> Option<u32> {
    let name = name.trim_end_matches('.').to_lowercase();
    MONTHS.iter().find(|(n, _)| *n == name).map(|(_, m)| *m)
}

fn month_pattern() -> String {
    let mut names: Vec<&str> = MONTHS.iter().map(|(n, _)| *n).collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.chars().count()));
    names.join("|")
}

static ISO: LazyLock<Regex> = LazyLock::new(|| {
    crate::static_regex(
        r"\b(\d{4})([-/.])(\d{1,2})([-/.])(\d{1,2})(?:[T ]\d{1,2}:\d{2}(?::\d{2})?)?",
    )
});
static NUMERIC: LazyLock<Regex> = LazyLock::new(|| {
    crate::static_regex(r"\b(\d{1,2})\s?([./-])\s?(\d{1,2})\s?([./-])\s?(\d{4}|\d{2})\b")
});
static DAY_MONTH: LazyLock<Regex> = LazyLock::new(|| {
    crate::static_regex(&format!(
        r"(?i)\b(\d{{1,2}})(?:st|nd|rd|th|er|\.)?(?:\s+|-|\s*/\s*)(?:of\s+|de\s+)?({})\.?(?:,?\s+|-|\s*/\s*)(?:de\s+)?(\d{{4}}|\d{{2}})\b",
        month_pattern()
    ))
});
static MONTH_DAY: LazyLock<Regex> = LazyLock::new(|| {
    crate::static_regex(&format!(
        r"(?i)\b({})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?(?:\s*,\s*|\s+)(\d{{4}})\b",
        month_pattern()
    ))
});

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

fn full_year(digits: &str) -> Option<i32> {
    let y: i32 = digits.parse().ok()?;
    Some(match digits.len() {
        2 if y >= 70 => 1900 + y,
        2 => 2000 + y,
        _ => y,
    })
}

fn iso(year: i32, month: u32, day: u32) -> Option<String> {
    if !(1900..=2100).contains(&year) || !(1..=12).contains(&month) {
        return None;
    }
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(format!("{year:04}-{month:02}-{day:02}"))
}

/// A date found in a line: its ISO value and byte range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DateMatch {
    pub value: String,
    pub start: usize,
    pub end: usize,
}

/// The evidence a text gives for the order of ambiguous numeric dates: `(day_first,
/// month_first)` counts of numeric dates that only one order can read.
pub(crate) fn order_votes(text: &str) -> (usize, usize) {
    let mut votes = (0, 0);
    for c in NUMERIC.captures_iter(text) {
        if &c[2] == "." {
            continue;
        }
        let a: u32 = c[1].parse().unwrap_or(0);
        let b: u32 = c[3].parse().unwrap_or(0);
        if a > 12 && b <= 12 {
            votes.0 += 1;
        } else if b > 12 && a <= 12 {
            votes.1 += 1;
        }
    }
    votes
}

/// Every date in `line`, left to right, without overlaps.
pub(crate) fn find_dates(line: &str, order: Order) -> Vec<DateMatch> {
    let mut found: Vec<DateMatch> = Vec::new();
    let mut push = |start: usize, end: usize, value: Option<String>| {
        if let Some(value) = value {
            found.push(DateMatch { value, start, end });
        }
    };
    for c in ISO.captures_iter(line) {
        let Some(m) = c.get(0) else { continue };
        if c[2] != c[4] {
            continue;
        }
        let value = (|| iso(c[1].parse().ok()?, c[3].parse().ok()?, c[5].parse().ok()?))();
        push(m.start(), m.end(), value);
    }
    for c in NUMERIC.captures_iter(line) {
        let Some(m) = c.get(0) else { continue };
        if c[2] != c[4] {
            continue;
        }
        let value = (|| {
            let a: u32 = c[1].parse().ok()?;
            let b: u32 = c[3].parse().ok()?;
            let year = full_year(&c[5])?;
            let day_first = if &c[2] == "." || a > 12 {
                true
            } else if b > 12 {
                false
            } else {
                order == Order::DayFirst
            };
            if day_first {
                iso(year, b, a)
            } else {
                iso(year, a, b)
            }
        })();
        push(m.start(), m.end(), value);
    }
    for c in DAY_MONTH.captures_iter(line) {
        let Some(m) = c.get(0) else { continue };
        let value = (|| iso(full_year(&c[3])?, month_number(&c[2])?, c[1].parse().ok()?))();
        push(m.start(), m.end(), value);
    }
    for c in MONTH_DAY.captures_iter(line) {
        let Some(m) = c.get(0) else { continue };
        let value = (|| iso(c[3].parse().ok()?, month_number(&c[1])?, c[2].parse().ok()?))();
        push(m.start(), m.end(), value);
    }
    found.sort_by_key(|d| (d.start, std::cmp::Reverse(d.end)));
    let mut kept: Vec<DateMatch> = Vec::with_capacity(found.len());
    for d in found {
        if kept.last().is_none_or(|last| d.start >= last.end) {
            kept.push(d);
        }
    }
    kept
}

/// The first date in `text`, as ISO 8601.
pub(crate) fn parse_date(text: &str, order: Order) -> Option<String> {
    find_dates(text, order).into_iter().next().map(|d| d.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str, order: Order) -> Option<String> {
        parse_date(s, order)
    }

    #[test]
    fn written_forms() {
        let d = Order::DayFirst;
        for s in [
            "12 March 2026",
            "March 12, 2026",
            "Mar 12 2026",
            "12.03.2026",
            "2026-03-12",
            "12/03/2026",
            "12-Mar-2026",
            "12. März 2026",
            "12 mars 2026",
            "12th of March, 2026",
            "Thu, 12 Mar 2026 10:00:00 +0000",
            "2026-03-12T10:00:00Z",
            "12.03.26",
            "12 maart 2026",
            "March 12 , 2026",
        ] {
            assert_eq!(one(s, d).as_deref(), Some("2026-03-12"), "{s}");
        }
        assert_eq!(
            one("03/12/2026", Order::MonthFirst).as_deref(),
            Some("2026-03-12")
        );
        assert_eq!(
            one("13/03/2026", Order::MonthFirst).as_deref(),
            Some("2026-03-13")
        );
        assert_eq!(
            one("03/13/2026", Order::DayFirst).as_deref(),
            Some("2026-03-13")
        );
        assert_eq!(one("1er janvier 2025", d).as_deref(), Some("2025-01-01"));
    }

    #[test]
    fn rejects_impossible_dates() {
        assert_eq!(one("31.02.2026", Order::DayFirst), None);
        assert_eq!(one("2026-13-01", Order::DayFirst), None);
        assert_eq!(one("version 1.2.3", Order::DayFirst), None);
        assert_eq!(
            one("29.02.2024", Order::DayFirst).as_deref(),
            Some("2024-02-29")
        );
    }

    #[test]
    fn several_in_a_line() {
        let found = find_dates("from 1 Jan 2026 to 2026-01-31", Order::DayFirst);
        let values: Vec<_> = found.iter().map(|d| d.value.as_str()).collect();
        assert_eq!(values, ["2026-01-01", "2026-01-31"]);
    }
}
