//! Agents: each owns its API keys, contacts and documents.

use serde::Serialize;

/// An agent as stored and as the management API returns it.
#[derive(Clone, Debug, Serialize)]
pub struct Agent {
    pub id: String,
    pub name: String,
    #[serde(with = "super::time::rfc3339")]
    pub created_at: i64,
    #[serde(with = "super::time::rfc3339")]
    pub updated_at: i64,
}
