//! Any text: the field finders (e-mails, phones, URLs, dates, amounts, labelled values).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let pages = [a2v2_extract::Page { number: 1, text, ocr: false }];
    let fields = a2v2_extract::find_fields(&pages, Some("GB"));
    assert!(fields.phones.iter().all(|p| p.value.starts_with('+')));
});
