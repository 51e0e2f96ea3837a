//! The `contact_imports` table: each CSV import with its progress and report.

use sqlx::{Row, any::AnyRow};

use super::{
    Db, StoreError,
    contacts::{actor_from_row, decode, json_text},
};
use crate::model::contact::ContactImport;

const COLUMNS: &str = "id, agent_id, state, on_duplicate, encoding, columns, total_rows, \
    processed_rows, created, updated, unchanged, skipped_count, skipped, error, created_by_type, \
    created_by_id, created_by_label, created_at, updated_at";

fn count(row: &AnyRow, column: &str) -> Result<u64, sqlx::Error> {
    Ok(u64::try_from(row.try_get::<i64, _>(column)?).unwrap_or_default())
}

fn from_row(row: &AnyRow) -> Result<ContactImport, sqlx::Error> {
    Ok(ContactImport {
        id: row.try_get("id")?,
        agent_id: row.try_get("agent_id")?,
        state: row.try_get("state")?,
        on_duplicate: row.try_get("on_duplicate")?,
        encoding: row.try_get("encoding")?,
        columns: decode("columns", &row.try_get::<String, _>("columns")?)?,
        total_rows: count(row, "total_rows")?,
        processed_rows: count(row, "processed_rows")?,
        created: count(row, "created")?,
        updated: count(row, "updated")?,
        unchanged: count(row, "unchanged")?,
        skipped_count: count(row, "skipped_count")?,
        skipped: decode("skipped", &row.try_get::<String, _>("skipped")?)?,
        error: row.try_get("error")?,
        created_by: actor_from_row(row, "created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub async fn insert(db: &mut impl Db, import: &ContactImport) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO contact_imports ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
         $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
    ))
    .bind(&import.id)
    .bind(&import.agent_id)
    .bind(&import.state)
    .bind(&import.on_duplicate)
    .bind(&import.encoding)
    .bind(json_text(&import.columns)?)
    .bind(int(import.total_rows))
    .bind(int(import.processed_rows))
    .bind(int(import.created))
    .bind(int(import.updated))
    .bind(int(import.unchanged))
    .bind(int(import.skipped_count))
    .bind(json_text(&import.skipped)?)
    .bind(&import.error)
    .bind(import.created_by.kind.as_ref())
    .bind(&import.created_by.id)
    .bind(&import.created_by.label)
    .bind(import.created_at)
    .bind(import.updated_at)
    .execute(db.raw())
    .await?;
    Ok(())
}

/// Writes the counts of a running import.
pub async fn progress(db: &mut impl Db, import: &ContactImport) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE contact_imports SET processed_rows = $1, created = $2, updated = $3, \
         unchanged = $4, skipped_count = $5, updated_at = $6 WHERE id = $7",
    )
    .bind(int(import.processed_rows))
    .bind(int(import.created))
    .bind(int(import.updated))
    .bind(int(import.unchanged))
    .bind(int(import.skipped_count))
    .bind(import.updated_at)
    .bind(&import.id)
    .execute(db.raw())
    .await?;
    Ok(())
}

/// Writes the end of an import: its state, counts, skipped rows and error.
pub async fn finish(db: &mut impl Db, import: &ContactImport) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE contact_imports SET state = $1, processed_rows = $2, created = $3, updated = $4, \
         unchanged = $5, skipped_count = $6, skipped = $7, error = $8, updated_at = $9 \
         WHERE id = $10",
    )
    .bind(&import.state)
    .bind(int(import.processed_rows))
    .bind(int(import.created))
    .bind(int(import.updated))
    .bind(int(import.unchanged))
    .bind(int(import.skipped_count))
    .bind(json_text(&import.skipped)?)
    .bind(&import.error)
    .bind(import.updated_at)
    .bind(&import.id)
    .execute(db.raw())
    .await?;
    Ok(())
}

/// The agent's import `id`, or `NotFound`.
pub async fn get(db: &mut impl Db, agent_id: &str, id: &str) -> Result<ContactImport, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM contact_imports WHERE id = $1 AND agent_id = $2"
    ))
    .bind(id)
    .bind(agent_id)
    .fetch_optional(db.raw())
    .await?
    .ok_or(StoreError::NotFound)?;
    Ok(from_row(&row)?)
}
