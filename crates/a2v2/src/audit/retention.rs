//! Retention: events older than the configured number of days are deleted in the background,
//! once shortly after start and then every hour. The purge records itself as `audit.purged`.

use std::time::Duration;

use serde_json::json;

use super::{Actor, Event, Origin};
use crate::{
    store::{Store, now_ms},
    time_fmt::to_rfc3339,
};

const EVERY: Duration = Duration::from_secs(60 * 60);
const FIRST_AFTER: Duration = Duration::from_secs(1);
const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// Rows deleted per transaction, so a large purge never holds the write lock for long.
const BATCH: i64 = 1000;

/// The oldest time kept with `days` of retention at `now`; `None` keeps everything.
pub fn cutoff(days: u32, now: i64) -> Option<i64> {
    (days > 0).then(|| now.saturating_sub(i64::from(days).saturating_mul(DAY_MS)))
}

/// Runs the purge forever; returns at once when retention is off.
pub async fn run(store: Store, days: u32) {
    if days == 0 {
        tracing::info!("audit retention is off; events are kept forever");
        return;
    }
    tokio::time::sleep(FIRST_AFTER).await;
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        match purge(&store, days, now_ms()).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, days, "purged old audit events"),
            Err(err) => tracing::error!(error = %err, "purging old audit events failed"),
        }
    }
}

/// Deletes events older than `days` days before `now` with their counts, and counts left
/// without an event; records `audit.purged` when events were deleted. Returns how many.
pub async fn purge(store: &Store, days: u32, now: i64) -> Result<u64, sqlx::Error> {
    let Some(before) = cutoff(days, now) else {
        return Ok(0);
    };
    let batch =
        format!("SELECT id FROM audit_events WHERE occurred_at < $1 ORDER BY id LIMIT {BATCH}");
    let mut deleted = 0u64;
    loop {
        let mut tx = store.begin().await?;
        sqlx::query(&format!(
            "DELETE FROM audit_event_counts WHERE event_id IN ({batch})"
        ))
        .bind(before)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query(&format!("DELETE FROM audit_events WHERE id IN ({batch})"))
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        deleted += done;
        if done < BATCH as u64 {
            break;
        }
    }
    let mut conn = store.pool.acquire().await?;
    sqlx::query(
        "DELETE FROM audit_event_counts WHERE NOT EXISTS \
         (SELECT 1 FROM audit_events e WHERE e.id = audit_event_counts.event_id)",
    )
    .execute(&mut *conn)
    .await?;
    if deleted > 0 {
        super::record(
            &mut conn,
            &Actor::system(),
            &Origin::default(),
            Event {
                action: "audit.purged",
                agent_id: None,
                target: None,
                details: json!({
                    "count": deleted,
                    "retention_days": days,
                    "before": to_rfc3339(before),
                }),
            },
        )
        .await?;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use sqlx::Row;

    use super::*;

    #[test]
    fn cutoffs() {
        assert_eq!(cutoff(0, 10 * DAY_MS), None);
        assert_eq!(cutoff(1, 10 * DAY_MS), Some(9 * DAY_MS));
        assert_eq!(cutoff(365, 0), Some(-365 * DAY_MS));
        assert!(cutoff(u32::MAX, i64::MAX).is_some());
    }

    async fn insert_at(store: &Store, id: &str, at: i64) {
        sqlx::query(
            "INSERT INTO audit_events (id, occurred_at, actor_type, action, details) \
             VALUES ($1, $2, 'system', 'agent.created', '{}')",
        )
        .bind(id)
        .bind(at)
        .execute(&store.pool)
        .await
        .unwrap();
    }

    async fn ids(store: &Store, table: &str, column: &str) -> Vec<String> {
        sqlx::query(&format!(
            "SELECT {column} AS id FROM {table} ORDER BY {column}"
        ))
        .fetch_all(&store.pool)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get("id"))
        .collect()
    }

    #[tokio::test]
    async fn purges_old_events_their_counts_and_orphans() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("a.db").display());
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let now = 1_000 * DAY_MS;
        insert_at(&store, "evt_1", now - 40 * DAY_MS).await;
        insert_at(&store, "evt_2", now - 31 * DAY_MS).await;
        insert_at(&store, "evt_3", now - 29 * DAY_MS).await;
        for (event, count) in [("evt_1", 5), ("evt_3", 7), ("evt_gone", 9)] {
            sqlx::query("INSERT INTO audit_event_counts (event_id, count) VALUES ($1, $2)")
                .bind(event)
                .bind(count)
                .execute(&store.pool)
                .await
                .unwrap();
        }
        assert_eq!(purge(&store, 0, now).await.unwrap(), 0);
        assert_eq!(purge(&store, 30, now).await.unwrap(), 2);
        let events = ids(&store, "audit_events", "id").await;
        assert_eq!(events.len(), 2);
        assert!(events.contains(&"evt_3".to_owned()));
        assert_eq!(
            ids(&store, "audit_event_counts", "event_id").await,
            ["evt_3"]
        );
        let purged = sqlx::query(
            "SELECT actor_type, details FROM audit_events WHERE action = 'audit.purged'",
        )
        .fetch_one(&store.pool)
        .await
        .unwrap();
        assert_eq!(purged.get::<String, _>("actor_type"), "system");
        let details: serde_json::Value =
            serde_json::from_str(&purged.get::<String, _>("details")).unwrap();
        assert_eq!(details["count"], 2);
        // Nothing left to purge: no second event.
        assert_eq!(purge(&store, 30, now).await.unwrap(), 0);
        assert_eq!(ids(&store, "audit_events", "id").await.len(), 2);
    }
}
