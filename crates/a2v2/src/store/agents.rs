//! The `agents` table.

use sqlx::{Row, any::AnyRow};

use super::{Backend, Db, StoreError};
use crate::model::agent::Agent;

const COLUMNS: &str = "id, name, created_at, updated_at";

fn from_row(row: &AnyRow) -> Result<Agent, sqlx::Error> {
    Ok(Agent {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The agent `id`, or `NotFound`.
pub async fn get(db: &mut impl Db, id: &str) -> Result<Agent, StoreError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM agents WHERE id = $1"))
        .bind(id)
        .fetch_optional(db.raw())
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok(from_row(&row)?)
}

/// Up to `limit` agents created after `after`, oldest first.
pub async fn list(
    db: &mut impl Db,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Agent>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM agents WHERE id > $1 ORDER BY id LIMIT $2"
    ))
    .bind(after.unwrap_or(""))
    .bind(limit)
    .fetch_all(db.raw())
    .await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

pub async fn insert(db: &mut impl Db, agent: &Agent) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO agents (id, name, created_at, updated_at) VALUES ($1, $2, $3, $4)")
        .bind(&agent.id)
        .bind(&agent.name)
        .bind(agent.created_at)
        .bind(agent.updated_at)
        .execute(db.raw())
        .await?;
    Ok(())
}

pub async fn update(db: &mut impl Db, agent: &Agent) -> Result<(), StoreError> {
    sqlx::query("UPDATE agents SET name = $1, updated_at = $2 WHERE id = $3")
        .bind(&agent.name)
        .bind(agent.updated_at)
        .bind(&agent.id)
        .execute(db.raw())
        .await?;
    Ok(())
}

/// Deletes the agent with its keys, contacts and documents (by cascade) and returns the ids
/// of the keys that went with it, so the caller can revoke them everywhere.
pub async fn delete(db: &mut impl Db, id: &str) -> Result<Vec<String>, StoreError> {
    // On PostgreSQL, lock the agent before listing its keys: a key being created for it either
    // commits first (and is listed) or fails its foreign key. SQLite write transactions are
    // already serialised by `BEGIN IMMEDIATE`.
    if db.backend() == Backend::Postgres {
        sqlx::query("SELECT id FROM agents WHERE id = $1 FOR UPDATE")
            .bind(id)
            .execute(db.raw())
            .await?;
    }
    let key_ids = sqlx::query("SELECT id FROM api_keys WHERE agent_id = $1")
        .bind(id)
        .fetch_all(db.raw())
        .await?
        .iter()
        .map(|row| row.try_get("id"))
        .collect::<Result<Vec<String>, _>>()?;
    let done = sqlx::query("DELETE FROM agents WHERE id = $1")
        .bind(id)
        .execute(db.raw())
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(key_ids)
}
