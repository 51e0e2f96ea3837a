//! The audit log: append-only events written in the same transaction as the change they record.

pub mod denials;
pub mod export;
pub mod handlers;
pub mod query;
pub mod retention;

use serde::Serialize;
use serde_json::Value;
use sqlx::AnyConnection;

use crate::store::{new_id, now_ms};

/// Who did it.
#[derive(Clone, Debug, Serialize)]
pub struct Actor {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: Option<String>,
    pub label: Option<String>,
}

impl Actor {
    pub fn member(id: &str, email: &str) -> Self {
        Self {
            kind: "member",
            id: Some(id.to_owned()),
            label: Some(email.to_owned()),
        }
    }

    pub fn api_key(id: &str, name: &str) -> Self {
        Self {
            kind: "api_key",
            id: Some(id.to_owned()),
            label: Some(name.to_owned()),
        }
    }

    /// The operator on the command line.
    pub fn cli() -> Self {
        Self {
            kind: "system",
            id: None,
            label: Some("cli".to_owned()),
        }
    }

    pub fn system() -> Self {
        Self {
            kind: "system",
            id: None,
            label: Some("system".to_owned()),
        }
    }
}

/// What it was done to.
#[derive(Clone, Debug, Serialize)]
pub struct Target {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: String,
    pub label: String,
}

impl Target {
    pub fn new(kind: &'static str, id: &str, label: &str) -> Self {
        Self {
            kind,
            id: id.to_owned(),
            label: label.to_owned(),
        }
    }
}

/// Where the request came from.
#[derive(Clone, Debug, Default)]
pub struct Origin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// One event to append. `details` must never hold a secret.
pub struct Event<'a> {
    pub action: &'a str,
    pub agent_id: Option<&'a str>,
    pub target: Option<Target>,
    pub details: Value,
}

/// Appends `event` on `conn`, normally inside the transaction of the change it records.
pub async fn record(
    conn: &mut AnyConnection,
    actor: &Actor,
    origin: &Origin,
    event: Event<'_>,
) -> Result<String, sqlx::Error> {
    let id = new_id("evt");
    insert(conn, &id, actor, origin, event).await?;
    Ok(id)
}

/// Appends `event` under an id chosen by the caller.
pub async fn insert(
    conn: &mut AnyConnection,
    id: &str,
    actor: &Actor,
    origin: &Origin,
    event: Event<'_>,
) -> Result<(), sqlx::Error> {
    let target = event.target.as_ref();
    sqlx::query(
        "INSERT INTO audit_events (id, occurred_at, actor_type, actor_id, actor_label, action, \
         agent_id, target_type, target_id, target_label, ip, user_agent, details) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(id)
    .bind(now_ms())
    .bind(actor.kind)
    .bind(actor.id.as_deref())
    .bind(actor.label.as_deref())
    .bind(event.action)
    .bind(event.agent_id)
    .bind(target.map(|t| t.kind))
    .bind(target.map(|t| t.id.as_str()))
    .bind(target.map(|t| t.label.as_str()))
    .bind(origin.ip.as_deref())
    .bind(origin.user_agent.as_deref().map(truncate_user_agent))
    .bind(event.details.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

fn truncate_user_agent(ua: &str) -> &str {
    match ua.char_indices().nth(512) {
        Some((at, _)) => &ua[..at],
        None => ua,
    }
}
