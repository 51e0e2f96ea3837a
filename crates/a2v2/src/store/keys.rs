//! The `api_keys` table.

use sqlx::{Row, any::AnyRow};

use super::{Db, StoreError};
use crate::model::{ip, key::ApiKey, permissions::Permissions};

const SELECT: &str = "SELECT k.id, k.agent_id, k.name, k.description, k.lookup_hash, \
     k.secret_ciphertext, k.preview, k.permissions, k.ip_addresses, k.expires_at, k.created_by, \
     m.email AS created_by_email, k.created_at, k.updated_at, k.last_used_at \
     FROM api_keys k LEFT JOIN members m ON m.id = k.created_by";

fn from_row(row: &AnyRow) -> Result<ApiKey, sqlx::Error> {
    let ip_text: String = row.try_get("ip_addresses")?;
    // An unreadable stored list must not widen to "any address": such a key is not served.
    let ip_nets = serde_json::from_str::<Vec<String>>(&ip_text)
        .ok()
        .and_then(|entries| entries.iter().map(|e| ip::parse_entry(e)).collect());
    Ok(ApiKey {
        id: row.try_get("id")?,
        agent_id: row.try_get("agent_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        lookup_hash: row.try_get("lookup_hash")?,
        secret_ciphertext: row.try_get("secret_ciphertext")?,
        preview: row.try_get("preview")?,
        permissions: Permissions::from_bits(row.try_get("permissions")?),
        ip_list_readable: ip_nets.is_some(),
        ip_nets: ip_nets.unwrap_or_default(),
        expires_at: row.try_get("expires_at")?,
        created_by: row.try_get("created_by")?,
        created_by_email: row.try_get("created_by_email")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

fn ip_text(key: &ApiKey) -> String {
    serde_json::Value::from(ip::display_list(&key.ip_nets)).to_string()
}

/// The agent's keys, newest first.
pub async fn list(db: &mut impl Db, agent_id: &str) -> Result<Vec<ApiKey>, StoreError> {
    let rows = sqlx::query(&format!(
        "{SELECT} WHERE k.agent_id = $1 ORDER BY k.id DESC"
    ))
    .bind(agent_id)
    .fetch_all(db.raw())
    .await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

/// Every key of every agent.
pub async fn list_all(db: &mut impl Db) -> Result<Vec<ApiKey>, StoreError> {
    let rows = sqlx::query(SELECT).fetch_all(db.raw()).await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

/// The agent's key `key_id`, or `NotFound`.
pub async fn get(db: &mut impl Db, agent_id: &str, key_id: &str) -> Result<ApiKey, StoreError> {
    let row = sqlx::query(&format!("{SELECT} WHERE k.agent_id = $1 AND k.id = $2"))
        .bind(agent_id)
        .bind(key_id)
        .fetch_optional(db.raw())
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok(from_row(&row)?)
}

/// The key `key_id` of whichever agent, if it exists.
pub async fn find(db: &mut impl Db, key_id: &str) -> Result<Option<ApiKey>, StoreError> {
    let row = sqlx::query(&format!("{SELECT} WHERE k.id = $1"))
        .bind(key_id)
        .fetch_optional(db.raw())
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

/// One stored key copy, to check that a master key can open them.
pub async fn any_sealed(db: &mut impl Db) -> Result<Option<(String, String)>, StoreError> {
    let row = sqlx::query(
        "SELECT id, secret_ciphertext FROM api_keys WHERE secret_ciphertext IS NOT NULL LIMIT 1",
    )
    .fetch_optional(db.raw())
    .await?;
    Ok(row
        .map(|row| Ok::<_, sqlx::Error>((row.try_get("id")?, row.try_get("secret_ciphertext")?)))
        .transpose()?)
}

/// Deletes every stored key copy; returns how many there were.
pub async fn clear_copies(db: &mut impl Db) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE api_keys SET secret_ciphertext = NULL WHERE secret_ciphertext IS NOT NULL",
    )
    .execute(db.raw())
    .await?;
    Ok(done.rows_affected())
}

/// Inserts a key; `Conflict(ForeignKey)` when its agent is gone.
pub async fn insert(db: &mut impl Db, key: &ApiKey) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO api_keys (id, agent_id, name, description, lookup_hash, secret_ciphertext, \
         preview, permissions, ip_addresses, expires_at, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&key.id)
    .bind(&key.agent_id)
    .bind(&key.name)
    .bind(&key.description)
    .bind(&key.lookup_hash)
    .bind(key.secret_ciphertext.as_deref())
    .bind(&key.preview)
    .bind(key.permissions.bits())
    .bind(ip_text(key))
    .bind(key.expires_at)
    .bind(key.created_by.as_deref())
    .bind(key.created_at)
    .bind(key.updated_at)
    .execute(db.raw())
    .await?;
    Ok(())
}

/// Writes the editable fields; `NotFound` when the key is gone.
pub async fn update(db: &mut impl Db, key: &ApiKey) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE api_keys SET name = $1, description = $2, permissions = $3, ip_addresses = $4, \
         expires_at = $5, updated_at = $6 WHERE id = $7",
    )
    .bind(&key.name)
    .bind(&key.description)
    .bind(key.permissions.bits())
    .bind(ip_text(key))
    .bind(key.expires_at)
    .bind(key.updated_at)
    .bind(&key.id)
    .execute(db.raw())
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Deletes the key; `NotFound` when it was already gone.
pub async fn delete(db: &mut impl Db, key_id: &str) -> Result<(), StoreError> {
    let done = sqlx::query("DELETE FROM api_keys WHERE id = $1")
        .bind(key_id)
        .execute(db.raw())
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Writes batched last-used times; never moves a time backwards.
pub async fn record_uses(db: &mut impl Db, uses: &[(String, i64)]) -> Result<(), StoreError> {
    for (key_id, at) in uses {
        sqlx::query(
            "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 \
             AND (last_used_at IS NULL OR last_used_at < $1)",
        )
        .bind(*at)
        .bind(key_id)
        .execute(db.raw())
        .await?;
    }
    Ok(())
}
