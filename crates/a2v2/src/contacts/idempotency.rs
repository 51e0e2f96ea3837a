//! `Idempotency-Key` for `POST /v1/contacts`.
//!
//! Per agent, a key names one request for 24 hours. The first successful response is stored in
//! the transaction that creates the contact; a retry with the same key and the same body (the
//! same JSON, whatever its key order or spacing) gets that response again and creates nothing.
//! The same key with a different body is refused with 422, since the client is reusing a key by
//! mistake. Failed requests are not stored: a corrected retry may reuse the key.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::{error::DomainError, store::idempotency::StoredResponse};

pub const KEY_MAX: usize = 255;
/// How long a stored response is replayed.
pub const WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

/// An `Idempotency-Key` as sent: 1–255 printable ASCII characters, or `BadRequest`.
pub fn key_from(bytes: &[u8]) -> Result<String, DomainError> {
    let printable = bytes.iter().all(|b| (0x20..=0x7e).contains(b));
    if bytes.is_empty() || bytes.len() > KEY_MAX || !printable {
        return Err(DomainError::BadRequest(format!(
            "`Idempotency-Key` must be 1 to {KEY_MAX} printable ASCII characters, such as a UUID."
        )));
    }
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// A request's idempotency key and the hash of its body.
#[derive(Clone, Debug)]
pub struct Idempotency {
    pub key: String,
    pub request_hash: String,
}

/// `value` serialised with object keys sorted at every level.
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => canonical_object(map, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn canonical_object(map: &Map<String, Value>, out: &mut String) {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::String(key.clone()).to_string());
        out.push(':');
        canonical(value, out);
    }
    out.push('}');
}

/// SHA-256 (hex) of the canonical JSON of the request body.
pub fn body_hash(body: &Map<String, Value>) -> String {
    let mut text = String::new();
    canonical_object(body, &mut text);
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The stored response for a request whose body hashes to `request_hash`, or a validation
/// error when the key was first used with another body: the client is reusing a key by
/// mistake.
pub fn replay(stored: StoredResponse, request_hash: &str) -> Result<StoredResponse, DomainError> {
    if stored.request_hash != request_hash {
        return Err(DomainError::field(
            "idempotency_key",
            "was already used with a different request body; send a new Idempotency-Key \
             for a different request",
        ));
    }
    Ok(stored)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_ignores_key_order_and_spacing() {
        let object = |text: &str| -> Map<String, Value> { serde_json::from_str(text).unwrap() };
        let a = object(r#"{"b": [1, {"y": 2, "x": 1}], "a": "é"}"#);
        let b = object(r#"{"a":"é","b":[1,{"x":1,"y":2}]}"#);
        assert_eq!(body_hash(&a), body_hash(&b));
        assert_ne!(body_hash(&a), body_hash(&object(r#"{"a": "é"}"#)));
        assert_ne!(
            body_hash(&object(r#"{"a": [1, 2]}"#)),
            body_hash(&object(r#"{"a": [2, 1]}"#))
        );
    }

    #[test]
    fn keys_are_printable_ascii() {
        assert_eq!(key_from(b"order-42").unwrap(), "order-42");
        assert!(key_from("k".repeat(256).as_bytes()).is_err());
        assert!(key_from(b"").is_err());
        assert!(key_from("caf\u{e9}".as_bytes()).is_err());
    }

    #[test]
    fn a_different_body_is_refused() {
        let stored = StoredResponse {
            request_hash: "abc".into(),
            status: 201,
            body: r#"{"id":"ct_1","version":1}"#.into(),
            location: Some("/v1/contacts/ct_1".into()),
        };
        assert!(replay(stored.clone(), "other").is_err());
        assert_eq!(replay(stored.clone(), "abc").unwrap(), stored);
    }
}
