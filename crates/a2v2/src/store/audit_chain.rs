//! The `audit_chain` table: the audit log's hash chain, one row per sealed event in chain
//! order (`seq`), holding the previous event's hash and the event's own.

use sqlx::{Row, any::AnyRow};

use super::{Backend, Db, StoreError};

/// An event's stored fields, in the order they are hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealable {
    pub id: String,
    pub occurred_at: i64,
    pub fields: [Option<String>; 11],
}

const EVENT_COLUMNS: &str = "e.id, e.occurred_at, e.actor_type, e.actor_id, e.actor_label, \
     e.action, e.agent_id, e.target_type, e.target_id, e.target_label, e.ip, e.user_agent, \
     e.details";

fn sealable(row: &AnyRow) -> Result<Sealable, sqlx::Error> {
    let text = |name: &str| row.try_get::<Option<String>, _>(name);
    Ok(Sealable {
        id: row.try_get("id")?,
        occurred_at: row.try_get("occurred_at")?,
        fields: [
            text("actor_type")?,
            text("actor_id")?,
            text("actor_label")?,
            text("action")?,
            text("agent_id")?,
            text("target_type")?,
            text("target_id")?,
            text("target_label")?,
            text("ip")?,
            text("user_agent")?,
            text("details")?,
        ],
    })
}

/// Takes the chain's lock for the transaction: one sealer at a time across nodes (SQLite's
/// `BEGIN IMMEDIATE` already serialises writers). `false` when another holds it.
pub async fn try_lock(db: &mut impl Db) -> Result<bool, StoreError> {
    if db.backend() != Backend::Postgres {
        return Ok(true);
    }
    Ok(
        sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_xact_lock(7716151)")
            .fetch_one(db.raw())
            .await?,
    )
}

/// The last link: `(seq, hash, occurred_at of its event)`.
pub async fn head(db: &mut impl Db) -> Result<Option<(i64, String, i64)>, StoreError> {
    let row =
        sqlx::query("SELECT seq, hash, occurred_at FROM audit_chain ORDER BY seq DESC LIMIT 1")
            .fetch_optional(db.raw())
            .await?;
    Ok(row
        .map(|row| {
            Ok::<_, sqlx::Error>((
                row.try_get("seq")?,
                row.try_get("hash")?,
                row.try_get("occurred_at")?,
            ))
        })
        .transpose()?)
}

/// Up to `limit` events that occurred at or after `since` and are not in the chain yet,
/// oldest first.
pub async fn unsealed(
    db: &mut impl Db,
    since: i64,
    limit: i64,
) -> Result<Vec<Sealable>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS} FROM audit_events e WHERE e.occurred_at >= $1 \
         AND NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.event_id = e.id) \
         ORDER BY e.id LIMIT {limit}"
    ))
    .bind(since)
    .fetch_all(db.raw())
    .await?;
    Ok(rows.iter().map(sealable).collect::<Result<_, _>>()?)
}

/// Appends a link.
pub async fn append(
    db: &mut impl Db,
    seq: i64,
    event: &Sealable,
    prev_hash: &str,
    hash: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_chain (seq, event_id, occurred_at, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(seq)
    .bind(&event.id)
    .bind(event.occurred_at)
    .bind(prev_hash)
    .bind(hash)
    .execute(db.raw())
    .await?;
    Ok(())
}

/// Inserts already sealed events and their links in one go (for seeding big workspaces):
/// `links[i]` is `(seq, prev_hash, hash)` of `events[i]`.
pub async fn insert_sealed(
    db: &mut impl Db,
    events: &[Sealable],
    links: &[(i64, String, String)],
) -> Result<(), StoreError> {
    for chunk in events.chunks(super::rows_per_values(db, 13)) {
        let values = super::values_list(db, chunk.len(), 13);
        let sql = format!(
            "INSERT INTO audit_events (id, occurred_at, actor_type, actor_id, actor_label, \
             action, agent_id, target_type, target_id, target_label, ip, user_agent, details) \
             VALUES {values}"
        );
        let mut query = sqlx::query(&sql);
        for event in chunk {
            query = query.bind(&event.id).bind(event.occurred_at);
            for field in &event.fields {
                query = query.bind(field.as_deref());
            }
        }
        query.execute(db.raw()).await?;
    }
    let per = super::rows_per_values(db, 5);
    for (chunk, link_chunk) in events.chunks(per).zip(links.chunks(per)) {
        let values = super::values_list(db, chunk.len(), 5);
        let sql = format!(
            "INSERT INTO audit_chain (seq, event_id, occurred_at, prev_hash, hash) VALUES {values}"
        );
        let mut query = sqlx::query(&sql);
        for (event, (seq, prev_hash, hash)) in chunk.iter().zip(link_chunk) {
            query = query
                .bind(*seq)
                .bind(&event.id)
                .bind(event.occurred_at)
                .bind(prev_hash)
                .bind(hash);
        }
        query.execute(db.raw()).await?;
    }
    Ok(())
}

/// One link with its event as stored now (`None` when the event row is gone).
#[derive(Debug)]
pub struct Link {
    pub seq: i64,
    pub event_id: String,
    pub prev_hash: String,
    pub hash: String,
    pub event: Option<Sealable>,
}

/// Up to `limit` links after `after_seq`, in chain order.
pub async fn links(db: &mut impl Db, after_seq: i64, limit: i64) -> Result<Vec<Link>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT c.seq, c.event_id, c.prev_hash, c.hash, {EVENT_COLUMNS} FROM audit_chain c \
         LEFT JOIN audit_events e ON e.id = c.event_id WHERE c.seq > $1 \
         ORDER BY c.seq LIMIT {limit}"
    ))
    .bind(after_seq)
    .fetch_all(db.raw())
    .await?;
    rows.iter()
        .map(|row| {
            let event = match row.try_get::<Option<String>, _>("id")? {
                Some(_) => Some(sealable(row)?),
                None => None,
            };
            Ok(Link {
                seq: row.try_get("seq")?,
                event_id: row.try_get("event_id")?,
                prev_hash: row.try_get("prev_hash")?,
                hash: row.try_get("hash")?,
                event,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}

/// Events older than `before` that are not in the chain: written around it.
pub async fn outside(db: &mut impl Db, before: i64) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT e.id FROM audit_events e WHERE e.occurred_at < $1 \
         AND NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.event_id = e.id) \
         ORDER BY e.id LIMIT 1",
    )
    .bind(before)
    .fetch_optional(db.raw())
    .await?)
}

/// Drops the links of events purged by retention (older than `before`).
pub async fn purge(db: &mut impl Db, before: i64) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM audit_chain WHERE occurred_at < $1")
        .bind(before)
        .execute(db.raw())
        .await?;
    Ok(())
}
