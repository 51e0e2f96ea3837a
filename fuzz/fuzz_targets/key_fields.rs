//! A key's create/patch body as JSON: IP lists, permissions and every other field are
//! validated without panicking, and accepted IP lists round-trip through their text form.
#![no_main]

use a2v2::{
    keys::input::{CreateKey, KeyPatch},
    model::{ip, permissions::Permissions},
    validate,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        if let Ok(text) = std::str::from_utf8(data) {
            let _ = ip::parse_list(&Value::String(text.to_owned()));
        }
        return;
    };
    if let Ok(nets) = ip::parse_list(&value) {
        let shown: Vec<String> = nets.iter().map(ip::display).collect();
        assert_eq!(ip::parse_list(&serde_json::json!(shown)).ok(), Some(nets));
    }
    let _ = Permissions::from_json(&value);
    if let Value::Object(body) = &value {
        let _ = validate::parse::<CreateKey>(body);
        let _ = validate::parse::<KeyPatch>(body);
    }
});
