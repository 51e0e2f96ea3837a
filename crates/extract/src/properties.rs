//! Property tests: the parsers never panic on arbitrary input, detection is stable, and the
//! field parsers read back what they are given in every supported style.

use proptest::prelude::*;

use crate::fields::{amounts, dates, phones};
use crate::{Options, Page, detect, extract, find_fields, html, tabular};

fn quick_options() -> Options {
    let mut options = Options::default();
    options.limits.max_duration = std::time::Duration::from_secs(5);
    options
}

const PREFIXES: &[&[u8]] = &[
    b"",
    b"%PDF-1.7\n",
    b"PK\x03\x04",
    b"<html><body>",
    b"From: a@example.com\r\nTo: b@example.com\r\nSubject: x\r\n\r\n",
    b"a,b,c\n1,2,3\n",
    b"\xff\xfe",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn extraction_never_panics_and_detection_is_stable(
        prefix in prop::sample::select(PREFIXES),
        body in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let bytes = [prefix, body.as_slice()].concat();
        let first = detect(&bytes, None);
        prop_assert_eq!(first, detect(&bytes, None));
        if let Ok(e) = extract(&bytes, &quick_options()) {
            prop_assert_eq!(Some(e.format), first);
            prop_assert!(e.pages.iter().enumerate().all(|(i, p)| p.number == i as u32 + 1));
        }
    }

    #[test]
    fn text_parsers_never_panic(text in "\\PC{0,400}") {
        let _ = html::html_to_text(&text);
        let _ = tabular::csv_to_text(&text);
        let pages = [Page { number: 1, text: text.clone(), ocr: false }];
        let fields = find_fields(&pages, Some("DE"));
        prop_assert!(fields.emails.iter().all(|f| f.page == 1));
        for phone in &fields.phones {
            prop_assert!(phone.value.starts_with('+'));
            prop_assert!(phone.value[1..].bytes().all(|b| b.is_ascii_digit()));
        }
        for date in &fields.dates {
            prop_assert_eq!(date.value.len(), 10);
        }
        let _ = phones::parse_phone(&text, phones::region(Some("GB")));
    }

    #[test]
    fn dates_read_back_in_every_form(year in 1950i32..2090, month in 1u32..=12, day in 1u32..=28) {
        const NAMES: [&str; 12] = ["January", "February", "March", "April", "May", "June", "July",
            "August", "September", "October", "November", "December"];
        let want = format!("{year:04}-{month:02}-{day:02}");
        let name = NAMES[month as usize - 1];
        for written in [
            format!("{day} {name} {year}"),
            format!("{name} {day}, {year}"),
            format!("{year}-{month:02}-{day:02}"),
            format!("{day:02}.{month:02}.{year}"),
            format!("{day}/{month}/{year}"),
        ] {
            prop_assert_eq!(dates::parse_date(&written, dates::Order::DayFirst), Some(want.clone()), "{}", written);
        }
        let us = format!("{month}/{day}/{year}");
        prop_assert_eq!(dates::parse_date(&us, dates::Order::MonthFirst), Some(want));
    }

    #[test]
    fn amounts_read_back_in_every_style(units in 1_000u64..100_000_000, cents in 0u64..100) {
        let digits = units.to_string();
        let group = |sep: &str| {
            let mut out = String::new();
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i) % 3 == 0 {
                    out.push_str(sep);
                }
                out.push(c);
            }
            out
        };
        let want = format!("{units}.{cents:02}");
        for written in [
            format!("{}.{cents:02}", group(",")),
            format!("{},{cents:02}", group(".")),
            format!("{},{cents:02}", group(" ")),
            format!("{}.{cents:02}", group("'")),
        ] {
            prop_assert_eq!(amounts::normalize_number(&written), Some(want.clone()), "{}", written);
            let found = amounts::find_amounts(&format!("Total: {written} EUR"));
            prop_assert_eq!(found.first().map(|a| a.value.clone()), Some(want.clone()), "{}", written);
        }
    }
}
