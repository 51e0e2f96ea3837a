//! Creating and deleting keys, shared by the management API and the `a2v2 keys` CLI. Each
//! function runs inside the caller's transaction: the change, its entry in the key change
//! feed (`sync::announce`) and its audit event commit together or not at all. Updating the
//! caller's own in-memory cache after the commit is left to the caller.

use serde_json::json;
use sqlx::AnyConnection;

use super::{KeyRow, ip_list, sync};
use crate::{
    agents,
    audit::{self, Actor, Event, Origin, Target},
    error::ApiError,
    store::Backend,
    time_fmt::opt_rfc3339,
};

/// Stores a minted key for its agent (404 when the agent does not exist).
pub async fn create(
    conn: &mut AnyConnection,
    backend: Backend,
    actor: &Actor,
    origin: &Origin,
    row: &KeyRow,
) -> Result<(), ApiError> {
    agents::find(conn, &row.agent_id).await?;
    // The agent may be deleted by a concurrent transaction after the check above.
    match super::insert(conn, row).await {
        Err(err) if crate::store::is_foreign_key_violation(&err) => {
            return Err(ApiError::NotFound);
        }
        other => other?,
    }
    sync::announce(conn, backend, &row.id).await?;
    audit::record(
        conn,
        actor,
        origin,
        Event {
            action: "api_key.created",
            agent_id: Some(&row.agent_id),
            target: Some(Target::new("api_key", &row.id, &row.name)),
            details: json!({
                "name": row.name,
                "permissions": row.permissions.to_json(),
                "ip_addresses": ip_list(&row.ip_nets),
                "expires_at": opt_rfc3339(row.expires_at),
                "preview": row.preview,
            }),
        },
    )
    .await?;
    Ok(())
}

/// Deletes (revokes) one key of one agent and returns it as it was (404 when the agent has
/// no such key).
pub async fn delete(
    conn: &mut AnyConnection,
    backend: Backend,
    actor: &Actor,
    origin: &Origin,
    agent_id: &str,
    key_id: &str,
) -> Result<KeyRow, ApiError> {
    let row = super::get(conn, agent_id, key_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    super::delete(conn, &row.id).await?;
    sync::announce(conn, backend, &row.id).await?;
    audit::record(
        conn,
        actor,
        origin,
        Event {
            action: "api_key.deleted",
            agent_id: Some(agent_id),
            target: Some(Target::new("api_key", &row.id, &row.name)),
            details: json!({ "preview": row.preview }),
        },
    )
    .await?;
    Ok(row)
}
