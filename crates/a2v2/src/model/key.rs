//! API keys as stored and as the management API shows them (never the secret).

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde::Serialize;
use utoipa::ToSchema;

use super::{audit::ActorRef, ip, permissions::Permissions};

/// A key as stored.
#[derive(Clone, Debug)]
pub struct ApiKey {
    pub id: String,
    pub agent_id: String,
    pub name: String,
    pub description: String,
    /// Hex of the keyed hash the key is looked up by.
    pub lookup_hash: String,
    /// The encrypted copy for **Copy API Key**, when the server keeps one.
    pub secret_ciphertext: Option<String>,
    pub preview: String,
    pub permissions: Permissions,
    pub ip_nets: Vec<IpNet>,
    /// False when the stored IP list could not be read; the key is then refused.
    pub ip_list_readable: bool,
    pub expires_at: Option<i64>,
    pub created_by: Option<String>,
    pub created_by_email: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_used_at: Option<i64>,
    pub rate_limit: Option<RateLimit>,
    /// False while the key is paused: it answers like a deleted key.
    pub enabled: bool,
    /// Hex of the keyed hash of the secret before the last roll, and until when it works.
    pub previous_lookup_hash: Option<String>,
    pub previous_expires_at: Option<i64>,
    pub rolled_at: Option<i64>,
    pub reveal_count: i64,
    pub last_revealed_at: Option<i64>,
    /// When the current secret was reported leaked (cleared by a roll).
    pub leak_reported_at: Option<i64>,
    /// Last use per permission (`contacts:read` → unix ms), as last flushed.
    pub permission_uses: BTreeMap<String, i64>,
}

/// What the verification cache needs of a stored key: the start-up load reads only this.
#[derive(Clone, Debug)]
pub struct KeyCore {
    pub id: String,
    pub agent_id: String,
    pub name: String,
    /// Hex of the keyed hash the key is looked up by.
    pub lookup_hash: String,
    pub permissions: Permissions,
    /// `None` when the stored IP list could not be read; the key is then refused.
    pub ip_nets: Option<Vec<IpNet>>,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub rate_limit: Option<RateLimit>,
    pub enabled: bool,
    pub previous_lookup_hash: Option<String>,
    pub previous_expires_at: Option<i64>,
}

impl From<&ApiKey> for KeyCore {
    fn from(key: &ApiKey) -> Self {
        Self {
            id: key.id.clone(),
            agent_id: key.agent_id.clone(),
            name: key.name.clone(),
            lookup_hash: key.lookup_hash.clone(),
            permissions: key.permissions,
            ip_nets: key.ip_list_readable.then(|| key.ip_nets.clone()),
            expires_at: key.expires_at,
            last_used_at: key.last_used_at,
            rate_limit: key.rate_limit,
            enabled: key.enabled,
            previous_lookup_hash: key.previous_lookup_hash.clone(),
            previous_expires_at: key.previous_expires_at,
        }
    }
}

/// At most `requests` requests in any window of `per_seconds` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct RateLimit {
    pub requests: u32,
    pub per_seconds: u32,
}

impl RateLimit {
    pub const MAX_REQUESTS: u32 = 1_000_000;
    pub const MAX_SECONDS: u32 = 86_400;
}

/// A key as the management API returns it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct KeyView {
    pub id: String,
    pub agent_id: String,
    pub name: String,
    pub description: String,
    pub ip_addresses: Vec<String>,
    pub permissions: Permissions,
    /// The areas the key has any permission in: `contacts`, `documents`; empty is No access.
    #[schema(value_type = Vec<String>)]
    pub access: Vec<&'static str>,
    pub preview: String,
    #[serde(with = "super::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(with = "super::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
    #[serde(with = "super::time::opt_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<i64>,
    #[serde(with = "super::time::opt_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<i64>,
    pub created_by: Option<ActorRef>,
    pub rate_limit: Option<RateLimit>,
    pub enabled: bool,
    /// When the secret before the last roll stops working (absent once it has).
    #[serde(with = "super::time::opt_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub previous_expires_at: Option<i64>,
    #[serde(with = "super::time::opt_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub rolled_at: Option<i64>,
    pub reveal_count: i64,
    #[serde(with = "super::time::opt_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_revealed_at: Option<i64>,
    #[serde(with = "super::time::opt_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub leak_reported_at: Option<i64>,
    /// The secret: only in the response that creates the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl ApiKey {
    /// The management view; `last_used` is a fresher time than storage's, from memory.
    pub fn view(&self, last_used: Option<i64>, now_ms: i64) -> KeyView {
        let last_used_at = match (self.last_used_at, last_used) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        KeyView {
            id: self.id.clone(),
            agent_id: self.agent_id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            ip_addresses: ip::display_list(&self.ip_nets),
            permissions: self.permissions,
            access: self.permissions.access(),
            preview: self.preview.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            last_used_at,
            expires_at: self.expires_at,
            created_by: self.created_by.as_ref().map(|id| ActorRef {
                kind: "member".into(),
                id: Some(id.clone()),
                label: self.created_by_email.clone(),
            }),
            rate_limit: self.rate_limit,
            enabled: self.enabled,
            previous_expires_at: self.previous_expires_at.filter(|at| *at > now_ms),
            rolled_at: self.rolled_at,
            reveal_count: self.reveal_count,
            last_revealed_at: self.last_revealed_at,
            leak_reported_at: self.leak_reported_at,
            key: None,
        }
    }
}
