//! Plain types shared by every layer: records, permissions, IP lists, actors, pages. No I/O,
//! no HTTP, no SQL. Records serialise in the contract's wire shape, so each field's name and
//! format is written once.

pub mod agent;
pub mod audit;
pub mod contact;
pub mod document;
pub mod ip;
pub mod key;
pub mod member;
pub mod page;
pub mod permissions;
pub mod time;

use std::collections::BTreeMap;

/// Problems with the fields of a request, by field name, in sentences a person can act on.
pub type FieldErrors = BTreeMap<String, String>;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// A new opaque id: a readable prefix and a time-ordered UUIDv7, so ids sort by creation.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}
