//! Agents: each owns its API keys, contacts and documents.

use serde::Serialize;
use utoipa::ToSchema;

/// An agent as stored and as the management API returns it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Agent {
    pub id: String,
    pub name: String,
    #[serde(with = "super::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(with = "super::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}
