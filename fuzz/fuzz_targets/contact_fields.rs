//! A contact's create/patch body as JSON: validation never panics, and phone parsing is total.
#![no_main]

use a2v2::contacts::validation;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = validation::parse_phone(text);
    }
    if let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(data) {
        let _ = validation::new_fields(&body);
        let _ = validation::parse_patch(&body);
    }
});
