//! `Idempotency-Key` for `POST /v1/contacts`.
//!
//! Per agent, a key names one request for 24 hours. The first successful response is stored in
//! the transaction that creates the contact; a retry with the same key and the same body (the
//! same JSON, whatever its key order or spacing) gets that response again and creates nothing.
//! The same key with a different body is refused with 422, since the client is reusing a key by
//! mistake. Failed requests are not stored: a corrected retry may reuse the key.

use axum::{
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};

use crate::error::ApiError;

pub const HEADER: &str = "idempotency-key";
pub const KEY_MAX: usize = 255;
/// How long a stored response is replayed.
pub const WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

/// The request's `Idempotency-Key`: 1–255 printable ASCII characters, or 400 `bad_request`.
pub fn key_from(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    let printable = bytes.iter().all(|b| (0x20..=0x7e).contains(b));
    if bytes.is_empty() || bytes.len() > KEY_MAX || !printable {
        return Err(ApiError::BadRequest(format!(
            "`Idempotency-Key` must be 1 to {KEY_MAX} printable ASCII characters, such as a UUID."
        )));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
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

/// A response kept for replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub request_hash: String,
    pub status: u16,
    pub body: String,
    pub location: Option<String>,
}

impl Stored {
    /// The stored response for a request whose body hashes to `request_hash`, or 422 when the
    /// key was first used with another body.
    pub fn replay(self, request_hash: &str) -> Result<Response, ApiError> {
        if self.request_hash != request_hash {
            return Err(ApiError::field(
                "idempotency_key",
                "was already used with a different request body; send a new Idempotency-Key \
                 for a different request",
            ));
        }
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        let version = serde_json::from_str::<Value>(&self.body)
            .ok()
            .and_then(|body| body["version"].as_i64());
        let mut response = (status, self.body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            HeaderName::from_static("idempotent-replayed"),
            HeaderValue::from_static("true"),
        );
        if let Some(location) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert(header::LOCATION, location);
        }
        if let Some(version) = version {
            headers.insert(header::ETAG, super::etag(version));
        }
        Ok(response)
    }
}

/// The live (younger than 24 h) stored response for `key`, if any.
pub async fn find(
    conn: &mut AnyConnection,
    agent_id: &str,
    key: &str,
    now: i64,
) -> Result<Option<Stored>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT request_hash, response_status, response_body, location FROM contact_idempotency \
         WHERE agent_id = $1 AND idempotency_key = $2 AND created_at > $3",
    )
    .bind(agent_id)
    .bind(key)
    .bind(now - WINDOW_MS)
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let status: i64 = row.try_get("response_status")?;
    Ok(Some(Stored {
        request_hash: row.try_get("request_hash")?,
        status: u16::try_from(status).unwrap_or(200),
        body: row.try_get("response_body")?,
        location: row.try_get("location")?,
    }))
}

/// Records `stored` under `key`, first dropping the agent's expired entries (so an expired key
/// can be used again). A unique violation means a concurrent request took the key first.
pub async fn insert(
    conn: &mut AnyConnection,
    agent_id: &str,
    key: &str,
    stored: &Stored,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM contact_idempotency WHERE agent_id = $1 AND created_at <= $2")
        .bind(agent_id)
        .bind(now - WINDOW_MS)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO contact_idempotency (agent_id, idempotency_key, request_hash, \
         response_status, response_body, location, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(agent_id)
    .bind(key)
    .bind(&stored.request_hash)
    .bind(i64::from(stored.status))
    .bind(&stored.body)
    .bind(&stored.location)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
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
        let mut headers = HeaderMap::new();
        assert_eq!(key_from(&headers).unwrap(), None);
        headers.insert(HEADER, HeaderValue::from_static("order-42"));
        assert_eq!(key_from(&headers).unwrap().as_deref(), Some("order-42"));
        headers.insert(HEADER, HeaderValue::from_str(&"k".repeat(256)).unwrap());
        assert!(key_from(&headers).is_err());
        headers.insert(HEADER, HeaderValue::from_static(""));
        assert!(key_from(&headers).is_err());
        headers.insert(HEADER, HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap());
        assert!(key_from(&headers).is_err());
    }

    #[test]
    fn a_different_body_is_refused() {
        let stored = Stored {
            request_hash: "abc".into(),
            status: 201,
            body: r#"{"id":"ct_1","version":1}"#.into(),
            location: Some("/v1/contacts/ct_1".into()),
        };
        assert!(stored.clone().replay("other").is_err());
        let response = stored.replay("abc").unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()[header::ETAG], "\"1\"");
        assert_eq!(response.headers()[header::LOCATION], "/v1/contacts/ct_1");
    }
}
