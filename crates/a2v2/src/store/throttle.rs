//! The `throttle_subjects` and `throttle_failures` tables: counted sign-in, setup and invite
//! attempts per email and per client, shared by every node.

use sqlx::Row;

use super::{Backend, Db, StoreError};
use crate::model::new_id;

/// Checks the subjects' failures within `window_ms` before `now` and, when none has reached
/// `max`, counts one more for each, in the caller's transaction. Returns the ids of the
/// counted rows, or `Err(wait_ms)`-like `Ok(Blocked)` when a subject is at its limit.
pub async fn attempt(
    db: &mut impl Db,
    subjects: &[&str],
    now: i64,
    window_ms: i64,
    max: i64,
) -> Result<Attempted, StoreError> {
    // On PostgreSQL, lock the subjects (in a fixed order, so attempts cannot deadlock) so that
    // of two nodes checking the same subject, the second sees the first's count. SQLite's
    // `BEGIN IMMEDIATE` already serialises the whole transaction.
    if db.backend() == Backend::Postgres {
        let mut sorted = subjects.to_vec();
        sorted.sort_unstable();
        for subject in &sorted {
            sqlx::query(
                "INSERT INTO throttle_subjects (subject) VALUES ($1) ON CONFLICT DO NOTHING",
            )
            .bind(*subject)
            .execute(db.raw())
            .await?;
        }
        for subject in &sorted {
            sqlx::query("SELECT subject FROM throttle_subjects WHERE subject = $1 FOR UPDATE")
                .bind(*subject)
                .execute(db.raw())
                .await?;
        }
    }
    let since = now - window_ms;
    let mut wait_until = None;
    for subject in subjects {
        // The oldest of the last `max` failures: when it leaves the window, one more fits.
        let row = sqlx::query(
            "SELECT at FROM throttle_failures WHERE subject = $1 AND at > $2 \
             ORDER BY at DESC LIMIT 1 OFFSET $3",
        )
        .bind(*subject)
        .bind(since)
        .bind(max - 1)
        .fetch_optional(db.raw())
        .await?;
        if let Some(row) = row {
            let oldest: i64 = row.try_get("at")?;
            wait_until = Some(wait_until.unwrap_or(i64::MIN).max(oldest + window_ms));
        }
    }
    if let Some(until) = wait_until {
        return Ok(Attempted::Blocked {
            wait_ms: until - now,
        });
    }
    let mut ids = Vec::with_capacity(subjects.len());
    for subject in subjects {
        let id = new_id("thr");
        sqlx::query("INSERT INTO throttle_failures (id, subject, at) VALUES ($1, $2, $3)")
            .bind(&id)
            .bind(*subject)
            .bind(now)
            .execute(db.raw())
            .await?;
        ids.push(id);
    }
    Ok(Attempted::Counted { ids })
}

/// What [`attempt`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Attempted {
    /// Counted: the ids of the rows, one per subject, in the order given.
    Counted { ids: Vec<String> },
    /// A subject is at its limit; nothing was counted.
    Blocked { wait_ms: i64 },
}

/// Takes counted rows back.
pub async fn forget(db: &mut impl Db, ids: &[&str]) -> Result<(), StoreError> {
    for id in ids {
        sqlx::query("DELETE FROM throttle_failures WHERE id = $1")
            .bind(*id)
            .execute(db.raw())
            .await?;
    }
    Ok(())
}

/// Clears every failure of `subject` (an email that signed in successfully).
pub async fn clear(db: &mut impl Db, subject: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM throttle_failures WHERE subject = $1")
        .bind(subject)
        .execute(db.raw())
        .await?;
    Ok(())
}

/// Deletes failures that left the window and subjects without failures; returns how many
/// failures went.
pub async fn prune(db: &mut impl Db, before: i64) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM throttle_failures WHERE at <= $1")
        .bind(before)
        .execute(db.raw())
        .await?;
    sqlx::query(
        "DELETE FROM throttle_subjects WHERE NOT EXISTS \
         (SELECT 1 FROM throttle_failures f WHERE f.subject = throttle_subjects.subject)",
    )
    .execute(db.raw())
    .await?;
    Ok(done.rows_affected())
}
