//! The `master_key_check` table: the fingerprint of the master key the data was made with.

use sqlx::Row;

use super::{Db, StoreError};

pub async fn fingerprint(db: &mut impl Db) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT fingerprint FROM master_key_check WHERE id = 1")
        .fetch_optional(db.raw())
        .await?;
    Ok(row.map(|row| row.try_get("fingerprint")).transpose()?)
}

/// Records the fingerprint unless one is recorded already.
pub async fn record(db: &mut impl Db, fingerprint: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO master_key_check (id, fingerprint) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
    )
    .bind(fingerprint)
    .execute(db.raw())
    .await?;
    Ok(())
}
