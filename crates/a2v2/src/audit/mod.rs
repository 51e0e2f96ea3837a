//! The audit log: append-only events written in the same transaction as the change they
//! record; reading, export, retention and bounded denial events.

pub mod chain;
pub mod denials;
pub mod export;
pub mod query;
pub mod retention;

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;

use crate::{
    error::Result,
    model::{
        audit::{AuditEvent, By, NewEvent, Order},
        new_id,
        page::Page,
        time::to_rfc3339,
    },
    store::{self, Db, Store, StoreError},
};
use query::AuditQuery;

/// Events appended since start (an event whose transaction rolled back is counted too).
static EVENTS_WRITTEN: AtomicU64 = AtomicU64::new(0);

/// Appends `event` by `by` on `db`, normally inside the transaction of the change it records.
pub async fn record(db: &mut impl Db, by: &By, event: NewEvent<'_>) -> Result<String, StoreError> {
    let id = new_id("evt");
    store::audit::insert(db, &id, &by.actor, &by.origin, event).await?;
    EVENTS_WRITTEN.fetch_add(1, Ordering::Relaxed);
    appended();
    Ok(id)
}

/// Rows this process appended to the log, denials included; the chain's sealer compares it
/// with what it last saw.
static APPENDED: AtomicU64 = AtomicU64::new(0);

/// Notes an appended row for the sealer.
fn appended() {
    APPENDED.fetch_add(1, Ordering::Relaxed);
}

/// Rows this process appended since it started.
pub fn events_written() -> u64 {
    APPENDED.load(Ordering::Relaxed)
}

/// The audit log's numbers in Prometheus text format.
pub fn render_metrics(out: &mut String) {
    out.push_str(&format!(
        "# HELP a2v2_audit_events_written_total Audit events appended (denials counted apart).\n\
         # TYPE a2v2_audit_events_written_total counter\n\
         a2v2_audit_events_written_total {}\n\
         # HELP a2v2_denied_requests_total Denied /v1 requests, each one, before aggregation into events.\n\
         # TYPE a2v2_denied_requests_total counter\n\
         a2v2_denied_requests_total {}\n",
        EVENTS_WRITTEN.load(Ordering::Relaxed),
        denials::seen(),
    ));
}

/// Events newest first, one page.
pub async fn list(store: &Store, query: &AuditQuery) -> Result<Page<AuditEvent>> {
    let page = query.page()?;
    let filter = query.filter()?;
    let mut conn = store.conn().await?;
    let events = store::audit::fetch(
        &mut conn,
        &filter,
        Order::NewestFirst,
        page.after.as_deref(),
        None,
        page.limit + 1,
    )
    .await?;
    Ok(Page::from_fetched(events, page.limit, |e| e.id.clone()))
}

/// Starts an export: records it, then streams every matching event, oldest first.
pub async fn export(
    store: &Store,
    by: &By,
    query: &AuditQuery,
) -> Result<(export::Format, export::Chunks)> {
    let format = export::Format::parse(query.format.as_deref())?;
    let filter = query.filter()?;
    let mut tx = store.begin().await?;
    record(
        &mut tx,
        by,
        NewEvent {
            action: "audit.exported",
            agent_id: None,
            target: None,
            details: json!({
                "format": format.name(),
                "filters": {
                    "action": query.action,
                    "agent_id": filter.agent_id,
                    "actor_id": filter.actor_id,
                    "since": filter.since.map(to_rfc3339),
                    "until": filter.until.map(to_rfc3339),
                },
            }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((format, export::stream(store.clone(), filter, format)))
}
