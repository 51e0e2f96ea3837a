//! Bytes after an HTML opening: the visible-text reader.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut options = a2v2_extract::Options::default();
    options.limits.max_duration = std::time::Duration::from_secs(10);
    let bytes = [&b"<!DOCTYPE html><html>"[..], data].concat();
    if let Ok(e) = a2v2_extract::extract(&bytes, &options) {
        assert_eq!(Some(e.format), a2v2_extract::detect(&bytes, None));
    }
});
