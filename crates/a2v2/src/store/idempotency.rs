//! The `contact_idempotency` table: responses kept for `Idempotency-Key` replays.

use sqlx::Row;

use super::{Db, StoreError};

/// A response kept for replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    pub request_hash: String,
    pub status: u16,
    pub body: String,
    pub location: Option<String>,
}

/// The stored response for `key` created after `since`, if any.
pub async fn find(
    db: &mut impl Db,
    agent_id: &str,
    key: &str,
    since: i64,
) -> Result<Option<StoredResponse>, StoreError> {
    let row = sqlx::query(
        "SELECT request_hash, response_status, response_body, location FROM contact_idempotency \
         WHERE agent_id = $1 AND idempotency_key = $2 AND created_at > $3",
    )
    .bind(agent_id)
    .bind(key)
    .bind(since)
    .fetch_optional(db.raw())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let status: i64 = row.try_get("response_status")?;
    Ok(Some(StoredResponse {
        request_hash: row.try_get("request_hash")?,
        status: u16::try_from(status).unwrap_or(200),
        body: row.try_get("response_body")?,
        location: row.try_get("location")?,
    }))
}

/// Records `stored` under `key`, first dropping the agent's entries created at or before
/// `expired_before` (so an expired key can be used again). `Conflict(Unique)` means a
/// concurrent request took the key first.
pub async fn insert(
    db: &mut impl Db,
    agent_id: &str,
    key: &str,
    stored: &StoredResponse,
    now: i64,
    expired_before: i64,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM contact_idempotency WHERE agent_id = $1 AND created_at <= $2")
        .bind(agent_id)
        .bind(expired_before)
        .execute(db.raw())
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
    .execute(db.raw())
    .await?;
    Ok(())
}
