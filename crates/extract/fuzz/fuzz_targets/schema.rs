//! Any bytes as a client's schema, then that schema over a small invoice.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(schema) = a2v2_extract::Schema::parse(data) {
        let options = a2v2_extract::Options { schema: Some(schema), ..Default::default() };
        let e = a2v2_extract::extract(b"Invoice Number: INV-1\nDate: 1 May 2026\nTotal: 12,50 EUR\n", &options);
        assert!(e.is_ok());
    }
});
