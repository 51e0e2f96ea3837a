//! Retention: events older than the configured number of days are deleted in the background,
//! once shortly after start and then every hour. The purge records itself as `audit.purged`.

use std::time::Duration;

use serde_json::json;

use crate::{
    model::{
        audit::{By, NewEvent},
        now_ms,
        time::to_rfc3339,
    },
    store::{self, Store, StoreError},
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
pub async fn purge(store: &Store, days: u32, now: i64) -> Result<u64, StoreError> {
    let Some(before) = cutoff(days, now) else {
        return Ok(0);
    };
    let mut deleted = 0u64;
    loop {
        let mut tx = store.begin().await?;
        let done = store::audit::purge_batch(&mut tx, before, BATCH).await?;
        tx.commit().await?;
        deleted += done;
        if done < BATCH as u64 {
            break;
        }
    }
    let mut conn = store.conn().await?;
    store::audit::delete_orphan_counts(&mut conn).await?;
    store::audit_chain::purge(&mut conn, before).await?;
    if deleted > 0 {
        super::record(
            &mut conn,
            &By::system(),
            NewEvent {
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
    use super::*;
    use crate::model::audit::{AuditFilter, Order};

    #[test]
    fn cutoffs() {
        assert_eq!(cutoff(0, 10 * DAY_MS), None);
        assert_eq!(cutoff(1, 10 * DAY_MS), Some(9 * DAY_MS));
        assert_eq!(cutoff(365, 0), Some(-365 * DAY_MS));
        assert!(cutoff(u32::MAX, i64::MAX).is_some());
    }

    async fn events(store: &Store) -> Vec<crate::model::audit::AuditEvent> {
        let mut conn = store.conn().await.unwrap();
        store::audit::fetch(
            &mut conn,
            &AuditFilter::default(),
            Order::OldestFirst,
            None,
            None,
            100,
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn purges_old_events_their_counts_and_orphans() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("a.db").display());
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let now = 1_000 * DAY_MS;
        let mut conn = store.conn().await.unwrap();
        for (id, age) in [("evt_1", 40), ("evt_2", 31), ("evt_3", 29)] {
            store::audit::insert_at(&mut conn, id, now - age * DAY_MS)
                .await
                .unwrap();
        }
        for (event, count) in [("evt_1", 5), ("evt_3", 7), ("evt_gone", 9)] {
            store::audit::set_count(&mut conn, event, count)
                .await
                .unwrap();
        }
        drop(conn);
        assert_eq!(purge(&store, 0, now).await.unwrap(), 0);
        assert_eq!(purge(&store, 30, now).await.unwrap(), 2);
        let kept = events(&store).await;
        assert_eq!(kept.len(), 2);
        let survivor = kept.iter().find(|e| e.id == "evt_3").unwrap();
        assert_eq!(survivor.details["count"], 7, "its count survives");
        let mut conn = store.conn().await.unwrap();
        assert_eq!(
            store::audit::counted_event_ids(&mut conn).await.unwrap(),
            ["evt_3"]
        );
        let purged = kept.iter().find(|e| e.id != "evt_3").unwrap();
        assert_eq!(purged.action, "audit.purged");
        assert_eq!(purged.actor.kind, "system");
        assert_eq!(purged.details["count"], 2);
        // Nothing left to purge: no second event.
        assert_eq!(purge(&store, 30, now).await.unwrap(), 0);
        assert_eq!(events(&store).await.len(), 2);
    }
}
