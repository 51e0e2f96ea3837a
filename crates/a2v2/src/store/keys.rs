//! The `api_keys` table.

use sqlx::{Row, any::AnyRow};

use ipnet::IpNet;

use super::{Backend, Db, StoreError};
use crate::model::{
    ip,
    key::{ApiKey, KeyCore, RateLimit},
    permissions::Permissions,
};

const SELECT: &str = "SELECT k.id, k.agent_id, k.name, k.description, k.lookup_hash, \
     k.secret_ciphertext, k.preview, k.permissions, k.ip_addresses, k.expires_at, k.created_by, \
     m.email AS created_by_email, k.created_at, k.updated_at, k.last_used_at, \
     k.rate_limit_requests, k.rate_limit_seconds, k.enabled, k.previous_lookup_hash, \
     k.previous_expires_at, k.rolled_at, k.reveal_count, k.last_revealed_at, k.leak_reported_at, k.permission_uses \
     FROM api_keys k LEFT JOIN members m ON m.id = k.created_by";

/// A stored IP list, or `None` when it cannot be read: an unreadable list must not widen to
/// "any address", so such a key is not served.
fn ip_list(text: &str) -> Option<Vec<IpNet>> {
    // Most keys have no list; skip the JSON parser for them.
    if text == "[]" {
        return Some(Vec::new());
    }
    serde_json::from_str::<Vec<String>>(text)
        .ok()
        .and_then(|entries| entries.iter().map(|e| ip::parse_entry(e)).collect())
}

fn from_row(row: &AnyRow) -> Result<ApiKey, sqlx::Error> {
    let ip_nets = ip_list(&row.try_get::<String, _>("ip_addresses")?);
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
        rate_limit: rate_limit(
            row.try_get("rate_limit_requests")?,
            row.try_get("rate_limit_seconds")?,
        ),
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        previous_lookup_hash: row.try_get("previous_lookup_hash")?,
        previous_expires_at: row.try_get("previous_expires_at")?,
        rolled_at: row.try_get("rolled_at")?,
        reveal_count: row.try_get("reveal_count")?,
        last_revealed_at: row.try_get("last_revealed_at")?,
        leak_reported_at: row.try_get("leak_reported_at")?,
        permission_uses: serde_json::from_str(&row.try_get::<String, _>("permission_uses")?)
            .unwrap_or_default(),
    })
}

fn rate_limit(requests: Option<i64>, seconds: Option<i64>) -> Option<RateLimit> {
    Some(RateLimit {
        requests: u32::try_from(requests?).ok()?,
        per_seconds: u32::try_from(seconds?).ok()?,
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

/// A key's columns for the cache, in the order of [`CoreRow`].
const CORE_COLUMNS: &str = "id, agent_id, name, lookup_hash, permissions, ip_addresses, \
     expires_at, last_used_at, rate_limit_requests, rate_limit_seconds, enabled, \
     previous_lookup_hash, previous_expires_at";

type CoreRow = (
    String,
    String,
    String,
    String,
    i64,
    String,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    i64,
    Option<String>,
    Option<i64>,
);

/// A page of keys for the cache as the database sent it ([`core_page`]).
pub struct CorePage {
    text: String,
    /// The last id of the page, where the next starts.
    pub last: Option<String>,
    /// How many keys the page holds.
    pub len: i64,
}

impl CorePage {
    /// The page's keys.
    pub fn keys(&self) -> Result<Vec<KeyCore>, StoreError> {
        let rows: Vec<CoreRow> =
            serde_json::from_str(&self.text).map_err(|err| sqlx::Error::Decode(Box::new(err)))?;
        Ok(rows
            .into_iter()
            .map(|row| KeyCore {
                id: row.0,
                agent_id: row.1,
                name: row.2,
                lookup_hash: row.3,
                permissions: Permissions::from_bits(row.4),
                ip_nets: ip_list(&row.5),
                expires_at: row.6,
                last_used_at: row.7,
                rate_limit: rate_limit(row.8, row.9),
                enabled: row.10 != 0,
                previous_lookup_hash: row.11,
                previous_expires_at: row.12,
            })
            .collect())
    }
}

/// Up to `limit` keys of every agent in id order after `after`, with only what the cache
/// needs: the cache loads all keys a page at a time, so that a million keys never sit in
/// memory as rows at once. A page comes back as one JSON array in a single row rather than a
/// row per key: per row, the SQLite driver copies every value, converts it for `Any` and
/// hands the row from its worker thread to this one, which cost more than the rest of the
/// load together. The array is in no particular order (ordering it made PostgreSQL sort the
/// JSON values again); `MAX(id)` gives the page's end in the database's own collation.
pub async fn core_page(
    db: &mut impl Db,
    after: Option<&str>,
    limit: i64,
) -> Result<CorePage, StoreError> {
    let sql = match db.backend() {
        Backend::Sqlite => format!(
            "SELECT json_group_array(json_array({CORE_COLUMNS})), MAX(id), COUNT(*) \
             FROM (SELECT {CORE_COLUMNS} FROM api_keys WHERE id > $1 ORDER BY id LIMIT $2)"
        ),
        Backend::Postgres => format!(
            "SELECT COALESCE(json_agg(json_build_array({CORE_COLUMNS}))::text, '[]'), MAX(id), \
             COUNT(*) FROM (SELECT {CORE_COLUMNS} FROM api_keys WHERE id > $1 ORDER BY id \
             LIMIT $2) AS k"
        ),
    };
    let (text, last, len) = sqlx::query_as(&sql)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_one(db.raw())
        .await?;
    Ok(CorePage { text, last, len })
}

/// How many keys there are, of every agent.
pub async fn count(db: &mut impl Db) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM api_keys")
        .fetch_one(db.raw())
        .await?)
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
    insert_many(db, std::slice::from_ref(key)).await
}

/// Inserts keys with every column, in as few statements as the back end's parameter limit
/// allows (one key when created, many when seeding big workspaces).
pub async fn insert_many(db: &mut impl Db, keys: &[ApiKey]) -> Result<(), StoreError> {
    const COLUMNS: usize = 24;
    for chunk in keys.chunks(super::rows_per_values(db, COLUMNS)) {
        let values = super::values_list(db, chunk.len(), COLUMNS);
        let sql = format!(
            "INSERT INTO api_keys (id, agent_id, name, description, lookup_hash, \
             secret_ciphertext, preview, permissions, ip_addresses, expires_at, created_by, \
             created_at, updated_at, last_used_at, rate_limit_requests, rate_limit_seconds, \
             enabled, previous_lookup_hash, previous_expires_at, rolled_at, reveal_count, \
             last_revealed_at, leak_reported_at, permission_uses) VALUES {values}"
        );
        let mut query = sqlx::query(&sql);
        for key in chunk {
            query = query
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
                .bind(key.last_used_at)
                .bind(key.rate_limit.map(|l| i64::from(l.requests)))
                .bind(key.rate_limit.map(|l| i64::from(l.per_seconds)))
                .bind(i64::from(key.enabled))
                .bind(key.previous_lookup_hash.as_deref())
                .bind(key.previous_expires_at)
                .bind(key.rolled_at)
                .bind(key.reveal_count)
                .bind(key.last_revealed_at)
                .bind(key.leak_reported_at)
                .bind(serde_json::to_string(&key.permission_uses).unwrap_or_else(|_| "{}".into()));
        }
        query.execute(db.raw()).await?;
    }
    Ok(())
}

/// Writes the editable fields and the secret's hashes (after a roll); `NotFound` when the key is gone.
pub async fn update(db: &mut impl Db, key: &ApiKey) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE api_keys SET name = $1, description = $2, permissions = $3, ip_addresses = $4, \
         expires_at = $5, updated_at = $6, rate_limit_requests = $7, rate_limit_seconds = $8, \
         enabled = $9, lookup_hash = $10, secret_ciphertext = $11, preview = $12, \
         previous_lookup_hash = $13, previous_expires_at = $14, rolled_at = $15, \
         leak_reported_at = $16 WHERE id = $17",
    )
    .bind(&key.name)
    .bind(&key.description)
    .bind(key.permissions.bits())
    .bind(ip_text(key))
    .bind(key.expires_at)
    .bind(key.updated_at)
    .bind(key.rate_limit.map(|l| i64::from(l.requests)))
    .bind(key.rate_limit.map(|l| i64::from(l.per_seconds)))
    .bind(i64::from(key.enabled))
    .bind(&key.lookup_hash)
    .bind(key.secret_ciphertext.as_deref())
    .bind(&key.preview)
    .bind(key.previous_lookup_hash.as_deref())
    .bind(key.previous_expires_at)
    .bind(key.rolled_at)
    .bind(key.leak_reported_at)
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

/// Counts one reveal of the key's secret.
pub async fn record_reveal(db: &mut impl Db, key_id: &str, at: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE api_keys SET reveal_count = reveal_count + 1, last_revealed_at = $1 WHERE id = $2",
    )
    .bind(at)
    .bind(key_id)
    .execute(db.raw())
    .await?;
    Ok(())
}

/// The key whose current or previous secret hashes to `lookup_hash`, if any.
pub async fn find_by_hash(
    db: &mut impl Db,
    lookup_hash: &str,
) -> Result<Option<ApiKey>, StoreError> {
    let row = sqlx::query(&format!(
        "{SELECT} WHERE k.lookup_hash = $1 OR k.previous_lookup_hash = $1"
    ))
    .bind(lookup_hash)
    .fetch_optional(db.raw())
    .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

/// Writes batched per-permission last uses, merged into what is stored (never backwards).
pub async fn record_permission_uses(
    db: &mut impl Db,
    key_id: &str,
    uses: &[(String, i64)],
) -> Result<(), StoreError> {
    let Some(text) =
        sqlx::query_scalar::<_, String>("SELECT permission_uses FROM api_keys WHERE id = $1")
            .bind(key_id)
            .fetch_optional(db.raw())
            .await?
    else {
        return Ok(());
    };
    let mut stored: std::collections::BTreeMap<String, i64> =
        serde_json::from_str(&text).unwrap_or_default();
    for (permission, at) in uses {
        let entry = stored.entry(permission.clone()).or_insert(*at);
        *entry = (*entry).max(*at);
    }
    sqlx::query("UPDATE api_keys SET permission_uses = $1 WHERE id = $2")
        .bind(serde_json::to_string(&stored).unwrap_or_else(|_| "{}".into()))
        .bind(key_id)
        .execute(db.raw())
        .await?;
    Ok(())
}

/// Adds batched client sightings `(ip, count, last_seen)` of a key, keeping its 20 most
/// recent addresses.
pub async fn record_clients(
    db: &mut impl Db,
    key_id: &str,
    clients: &[(String, i64, i64)],
) -> Result<(), StoreError> {
    for (ip, count, last_seen) in clients {
        sqlx::query(
            "INSERT INTO api_key_clients (key_id, ip, count, last_seen) \
             SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM api_keys WHERE id = $1) \
             ON CONFLICT (key_id, ip) DO UPDATE SET count = api_key_clients.count + $3, \
             last_seen = CASE WHEN api_key_clients.last_seen > $4 \
             THEN api_key_clients.last_seen ELSE $4 END",
        )
        .bind(key_id)
        .bind(ip)
        .bind(*count)
        .bind(*last_seen)
        .execute(db.raw())
        .await?;
    }
    sqlx::query(
        "DELETE FROM api_key_clients WHERE key_id = $1 AND ip NOT IN \
         (SELECT ip FROM api_key_clients WHERE key_id = $1 ORDER BY last_seen DESC LIMIT 20)",
    )
    .bind(key_id)
    .execute(db.raw())
    .await?;
    Ok(())
}

/// The key's recent client addresses `(ip, count, last_seen)`, most recent first.
pub async fn clients(
    db: &mut impl Db,
    key_id: &str,
) -> Result<Vec<(String, i64, i64)>, StoreError> {
    let rows = sqlx::query(
        "SELECT ip, count, last_seen FROM api_key_clients WHERE key_id = $1 \
         ORDER BY last_seen DESC LIMIT 20",
    )
    .bind(key_id)
    .fetch_all(db.raw())
    .await?;
    Ok(rows
        .iter()
        .map(|row| {
            Ok((
                row.try_get("ip")?,
                row.try_get("count")?,
                row.try_get("last_seen")?,
            ))
        })
        .collect::<Result<_, sqlx::Error>>()?)
}

/// Whether the workspace's keys are suspended (the incident switch).
pub async fn suspended(db: &mut impl Db) -> Result<bool, StoreError> {
    Ok(
        sqlx::query("SELECT suspended_at FROM keys_suspension WHERE id = 1")
            .fetch_optional(db.raw())
            .await?
            .is_some(),
    )
}

/// Turns the incident switch on or off; returns whether it changed.
pub async fn set_suspended(
    db: &mut impl Db,
    on: bool,
    at: i64,
    by: Option<&str>,
) -> Result<bool, StoreError> {
    let done = if on {
        sqlx::query(
            "INSERT INTO keys_suspension (id, suspended_at, suspended_by) VALUES (1, $1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(at)
        .bind(by)
        .execute(db.raw())
        .await?
    } else {
        sqlx::query("DELETE FROM keys_suspension WHERE id = 1")
            .execute(db.raw())
            .await?
    };
    Ok(done.rows_affected() > 0)
}
