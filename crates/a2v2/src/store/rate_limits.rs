//! The `rate_limit_keys` and `rate_limit_grants` tables: the rate-limit budget that nodes
//! sharing one database reserve from, per key and time bucket.

use super::{Backend, Db, StoreError};

/// Grants up to `wanted[i].1` requests in bucket `wanted[i].0` of key `key_id`, so that the
/// buckets `first..=last` together never hold more than `limit`. Returns what was granted, in
/// the order asked, and the window's total after the grants; forgets older buckets. Runs in the caller's
/// transaction; on PostgreSQL it locks the key's row first, so that reservations of
/// different nodes for one key take turns.
pub async fn reserve(
    db: &mut impl Db,
    key_id: &str,
    limit: u32,
    (first, last): (i64, i64),
    wanted: &[(i64, u32)],
) -> Result<(Vec<u32>, u32), StoreError> {
    if db.backend() == Backend::Postgres {
        sqlx::query("INSERT INTO rate_limit_keys (key_id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(key_id)
            .execute(db.raw())
            .await?;
        sqlx::query("SELECT key_id FROM rate_limit_keys WHERE key_id = $1 FOR UPDATE")
            .bind(key_id)
            .execute(db.raw())
            .await?;
    }
    // Buckets before the window are never asked about again.
    sqlx::query("DELETE FROM rate_limit_grants WHERE key_id = $1 AND bucket < $2")
        .bind(key_id)
        .bind(first)
        .execute(db.raw())
        .await?;
    let held: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(granted), 0) AS BIGINT) FROM rate_limit_grants \
         WHERE key_id = $1 AND bucket >= $2 AND bucket <= $3",
    )
    .bind(key_id)
    .bind(first)
    .bind(last)
    .fetch_one(db.raw())
    .await?;
    let mut total = u32::try_from(held).unwrap_or(u32::MAX);
    let mut given = Vec::with_capacity(wanted.len());
    for (bucket, want) in wanted {
        let give = if (first..=last).contains(bucket) {
            (*want).min(limit.saturating_sub(total))
        } else {
            0
        };
        if give > 0 {
            sqlx::query(
                "INSERT INTO rate_limit_grants (key_id, bucket, granted) VALUES ($1, $2, $3) \
                 ON CONFLICT (key_id, bucket) DO UPDATE \
                 SET granted = rate_limit_grants.granted + $3",
            )
            .bind(key_id)
            .bind(*bucket)
            .bind(i64::from(give))
            .execute(db.raw())
            .await?;
            total += give;
        }
        given.push(give);
    }
    Ok((given, total))
}

/// Forgets a deleted key's budget.
pub async fn forget(db: &mut impl Db, key_id: &str) -> Result<(), StoreError> {
    for table in ["rate_limit_grants", "rate_limit_keys"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE key_id = $1"))
            .bind(key_id)
            .execute(db.raw())
            .await?;
    }
    Ok(())
}
