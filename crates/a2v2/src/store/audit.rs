//! The `audit_events` table (append-only: a trigger refuses updates) and
//! `audit_event_counts`, the running totals of bounded denials.

use serde_json::{Value, json};
use sqlx::{Row, any::AnyRow};

use super::{Backend, Db, StoreError};
use crate::model::{
    audit::{ActionFilter, ActorRef, AuditEvent, AuditFilter, NewEvent, Order, Origin, Target},
    now_ms,
};

/// Appends `event` under `id`, normally inside the transaction of the change it records.
pub async fn insert(
    db: &mut impl Db,
    id: &str,
    actor: &ActorRef,
    origin: &Origin,
    event: NewEvent<'_>,
) -> Result<(), StoreError> {
    let target = event.target.as_ref();
    sqlx::query(
        "INSERT INTO audit_events (id, occurred_at, actor_type, actor_id, actor_label, action, \
         agent_id, target_type, target_id, target_label, ip, user_agent, details) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(id)
    .bind(now_ms())
    .bind(actor.kind.as_ref())
    .bind(actor.id.as_deref())
    .bind(actor.label.as_deref())
    .bind(event.action)
    .bind(event.agent_id)
    .bind(target.map(|t| t.kind.as_ref()))
    .bind(target.map(|t| t.id.as_str()))
    .bind(target.map(|t| t.label.as_str()))
    .bind(origin.ip.as_deref())
    .bind(origin.user_agent.as_deref().map(truncate_user_agent))
    .bind(event.details.to_string())
    .execute(db.raw())
    .await?;
    Ok(())
}

fn truncate_user_agent(ua: &str) -> &str {
    match ua.char_indices().nth(512) {
        Some((at, _)) => &ua[..at],
        None => ua,
    }
}

/// Sets the running total of a bounded denial event.
pub async fn set_count(db: &mut impl Db, event_id: &str, count: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_event_counts (event_id, count) VALUES ($1, $2) \
         ON CONFLICT (event_id) DO UPDATE SET count = excluded.count",
    )
    .bind(event_id)
    .bind(count)
    .execute(db.raw())
    .await?;
    Ok(())
}

fn from_row(row: &AnyRow) -> Result<AuditEvent, sqlx::Error> {
    let details_text: String = row.try_get("details")?;
    let details = merge_count(&details_text, row.try_get("merged_count")?);
    let target_type: Option<String> = row.try_get("target_type")?;
    let target = target_type.map(|kind| -> Result<Target, sqlx::Error> {
        Ok(Target {
            kind: kind.into(),
            id: row
                .try_get::<Option<String>, _>("target_id")?
                .unwrap_or_default(),
            label: row
                .try_get::<Option<String>, _>("target_label")?
                .unwrap_or_default(),
        })
    });
    Ok(AuditEvent {
        id: row.try_get("id")?,
        occurred_at: row.try_get("occurred_at")?,
        actor: ActorRef {
            kind: row.try_get::<String, _>("actor_type")?.into(),
            id: row.try_get("actor_id")?,
            label: row.try_get("actor_label")?,
        },
        action: row.try_get("action")?,
        agent_id: row.try_get("agent_id")?,
        target: target.transpose()?,
        ip: row.try_get("ip")?,
        user_agent: row.try_get("user_agent")?,
        details,
    })
}

/// The stored details, with a count from `audit_event_counts` (the running total of a
/// bounded denial) replacing the count written with the event.
fn merge_count(details: &str, count: Option<i64>) -> Value {
    let mut details = serde_json::from_str(details).unwrap_or_else(|_| json!({ "raw": details }));
    if let (Some(count), Value::Object(map)) = (count, &mut details) {
        map.insert("count".into(), json!(count));
    }
    details
}

enum Bind {
    Text(String),
    Int(i64),
}

/// One `WHERE` clause with its parameters, numbered `$1…` in order.
#[derive(Default)]
struct Where {
    clauses: Vec<String>,
    binds: Vec<Bind>,
}

impl Where {
    /// `clause` holds `?` where the next placeholder goes.
    fn push(&mut self, clause: &str, bind: Bind) {
        self.binds.push(bind);
        self.clauses
            .push(clause.replace('?', &format!("${}", self.binds.len())));
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }
}

/// Time ranges holding fewer events than this are read through the time index and sorted;
/// larger ones by walking ids unless the walk would first pass this many others (see `walk`).
const NARROW_RANGE: i64 = 5_000;

/// Up to `limit` events matching `filter`, strictly after `after` in `order`, and (for
/// exports that must not chase new events) with ids below `below`.
///
/// Every filter reads through an index in id order. An action prefix becomes one walk of the
/// `(action, id)` index per matching action, merged here: the stored actions are few, and are
/// listed by skipping through that index. A time range also bounds the ids (see [`id_skew`]),
/// so the walk starts and ends near the range instead of passing the events outside it. In a
/// log whose ids do not all carry their time, a time range with no other indexed filter is
/// read through the time index and sorted when it holds few events or lies far from where the
/// id walk starts; otherwise walking ids finds a page of events sooner (SQLite has no
/// statistics to tell these apart, PostgreSQL's planner does).
pub async fn fetch(
    db: &mut impl Db,
    filter: &AuditFilter,
    order: Order,
    after: Option<&str>,
    below: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditEvent>, StoreError> {
    let actions: Vec<Option<String>> = match &filter.action {
        None => vec![None],
        Some(ActionFilter::Exact(action)) => vec![Some(action.clone())],
        Some(ActionFilter::Prefix(prefix)) => actions(db)
            .await?
            .into_iter()
            .filter(|action| action.starts_with(prefix.as_str()))
            .map(Some)
            .collect(),
    };
    let skew = match (filter.since, filter.until) {
        (None, None) => None,
        _ => id_skew(db).await?,
    };
    let mut events = Vec::new();
    for action in &actions {
        let walk = Walk {
            action: action.as_deref(),
            filter,
            skew,
            order,
            after,
            below,
        };
        events.extend(walk.run(db, limit).await?);
    }
    if actions.len() > 1 {
        match order {
            Order::NewestFirst => events.sort_by(|a, b| b.id.cmp(&a.id)),
            Order::OldestFirst => events.sort_by(|a, b| a.id.cmp(&b.id)),
        }
        events.truncate(usize::try_from(limit.max(0)).unwrap_or(usize::MAX));
    }
    Ok(events)
}

/// Every distinct stored action, skipping through the `(action, id)` index: one seek per
/// action rather than a scan of the log.
async fn actions(db: &mut impl Db) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "WITH RECURSIVE a(action) AS ( \
             SELECT MIN(action) FROM audit_events \
             UNION ALL \
             SELECT (SELECT MIN(e.action) FROM audit_events e WHERE e.action > a.action) \
             FROM a WHERE a.action IS NOT NULL) \
         SELECT action FROM a WHERE action IS NOT NULL",
    )
    .fetch_all(db.raw())
    .await?)
}

/// One walk in id order: the events of `action` (any when `None`) matching the rest of
/// `filter`, with the log's id skew if known.
struct Walk<'a> {
    action: Option<&'a str>,
    filter: &'a AuditFilter,
    skew: Option<(i64, i64)>,
    order: Order,
    after: Option<&'a str>,
    below: Option<&'a str>,
}

impl Walk<'_> {
    async fn run(self, db: &mut impl Db, limit: i64) -> Result<Vec<AuditEvent>, StoreError> {
        let Self {
            action,
            filter,
            skew,
            order,
            after,
            below,
        } = self;
        // Without id bounds, on SQLite a time range alone is read through the time index (the
        // unary `+` keeps the planner off the id index) when it holds few events, or when walking
        // ids would first pass many events outside it: those newer than `until` walking newest
        // first, those older than `since` walking oldest first.
        let by_time = db.backend() == Backend::Sqlite
            && skew.is_none()
            && action.is_none()
            && filter.agent_id.is_none()
            && filter.actor_id.is_none()
            && (filter.since.is_some() || filter.until.is_some())
            && (in_range(db, filter.since, filter.until).await? < NARROW_RANGE
                || match order {
                    Order::NewestFirst => {
                        filter.until.is_some()
                            && in_range(db, filter.until, None).await? >= NARROW_RANGE
                    }
                    Order::OldestFirst => {
                        filter.since.is_some()
                            && in_range(db, None, filter.since).await? >= NARROW_RANGE
                    }
                });
        let id = if by_time { "+e.id" } else { "e.id" };
        let mut cond = Where::default();
        if let Some(action) = action {
            cond.push("e.action = ?", Bind::Text(action.to_owned()));
        }
        if let Some(agent_id) = &filter.agent_id {
            cond.push("e.agent_id = ?", Bind::Text(agent_id.clone()));
        }
        if let Some(actor_id) = &filter.actor_id {
            cond.push("e.actor_id = ?", Bind::Text(actor_id.clone()));
        }
        // With id bounds the id indexes serve a time range; the unary `+` keeps the planner
        // off the time index, which would read the whole range and sort it (PostgreSQL's
        // planner takes the two ranges for independent and picks that too).
        let time = match skew {
            Some(_) => "+e.occurred_at",
            None => "e.occurred_at",
        };
        if let Some(since) = filter.since {
            cond.push(&format!("{time} >= ?"), Bind::Int(since));
        }
        if let Some(until) = filter.until {
            cond.push(&format!("{time} < ?"), Bind::Int(until));
        }
        if let Some((low, high)) = skew {
            if let Some(since) = filter.since {
                cond.push("e.id >= ?", Bind::Text(id_at(since.saturating_sub(high))));
            }
            if let Some(until) = filter.until.map(|until| until.saturating_sub(low))
                && until <= MAX_ID_MS
            {
                cond.push("e.id < ?", Bind::Text(id_at(until)));
            }
        }
        let (step, direction) = match order {
            Order::NewestFirst => ("<", "DESC"),
            Order::OldestFirst => (">", "ASC"),
        };
        if let Some(after) = after {
            cond.push(&format!("{id} {step} ?"), Bind::Text(after.to_owned()));
        }
        if let Some(below) = below {
            cond.push(&format!("{id} < ?"), Bind::Text(below.to_owned()));
        }
        let sql = format!(
            "SELECT e.id, e.occurred_at, e.actor_type, e.actor_id, e.actor_label, e.action, \
         e.agent_id, e.target_type, e.target_id, e.target_label, e.ip, e.user_agent, e.details, \
         c.count AS merged_count \
         FROM audit_events e LEFT JOIN audit_event_counts c ON c.event_id = e.id \
         {} ORDER BY {id} {direction} LIMIT {}",
            cond.sql(),
            limit.max(0),
        );
        let mut query = sqlx::query(&sql);
        for bind in cond.binds {
            query = match bind {
                Bind::Text(text) => query.bind(text),
                Bind::Int(n) => query.bind(n),
            };
        }
        let rows = query.fetch_all(db.raw()).await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }
}

/// The latest unix ms an event id can carry (48 bits).
const MAX_ID_MS: i64 = (1 << 48) - 1;

/// How far `occurred_at` lies from the time in the event's id, as `(low, high)` ms over every
/// stored event, or `None` when some id does not carry its time (or the log is empty). Kept by
/// a trigger (migration 0014). Ids `evt_` + a UUIDv7 in lowercase hex sort by the time in
/// their first 12 digits, so an event with `occurred_at >= since` has an id at or after
/// [`id_at`]`(since - high)`, and one with `occurred_at < until` an id before
/// `id_at(until - low)`: bounds that narrow the walk and never drop an event, since the time
/// conditions themselves still decide.
async fn id_skew(db: &mut impl Db) -> Result<Option<(i64, i64)>, StoreError> {
    let row = sqlx::query("SELECT low, high, irregular FROM audit_id_skew WHERE id = 1")
        .fetch_optional(db.raw())
        .await?;
    let Some(row) = row else { return Ok(None) };
    let (low, high, irregular): (Option<i64>, Option<i64>, i64) =
        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    Ok(match (low, high) {
        (Some(low), Some(high)) if irregular == 0 => Some((low, high)),
        _ => None,
    })
}

/// The smallest event id carrying the time `ms` (clamped to what an id can carry): every id
/// of an earlier time sorts before it, every id of this time or later at or after it.
fn id_at(ms: i64) -> String {
    format!("evt_{:012x}{:020}", ms.clamp(0, MAX_ID_MS), 0)
}

/// How many events occurred in `[since, until)`, counting no further than `NARROW_RANGE`.
async fn in_range(
    db: &mut impl Db,
    since: Option<i64>,
    until: Option<i64>,
) -> Result<i64, StoreError> {
    let sql = format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM audit_events \
         WHERE occurred_at >= $1 AND occurred_at < $2 LIMIT {NARROW_RANGE})"
    );
    Ok(sqlx::query_scalar(&sql)
        .bind(since.unwrap_or(i64::MIN))
        .bind(until.unwrap_or(i64::MAX))
        .fetch_one(db.raw())
        .await?)
}

/// Deletes up to `batch` events older than `before` with their counts; returns how many.
pub async fn purge_batch(db: &mut impl Db, before: i64, batch: i64) -> Result<u64, StoreError> {
    let oldest =
        format!("SELECT id FROM audit_events WHERE occurred_at < $1 ORDER BY id LIMIT {batch}");
    sqlx::query(&format!(
        "DELETE FROM audit_event_counts WHERE event_id IN ({oldest})"
    ))
    .bind(before)
    .execute(db.raw())
    .await?;
    let done = sqlx::query(&format!("DELETE FROM audit_events WHERE id IN ({oldest})"))
        .bind(before)
        .execute(db.raw())
        .await?;
    Ok(done.rows_affected())
}

/// Deletes counts whose event is gone.
pub async fn delete_orphan_counts(db: &mut impl Db) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM audit_event_counts WHERE NOT EXISTS \
         (SELECT 1 FROM audit_events e WHERE e.id = audit_event_counts.event_id)",
    )
    .execute(db.raw())
    .await?;
    Ok(())
}

/// Inserts a bare event at a chosen time, for tests of time-based behaviour.
#[cfg(test)]
pub async fn insert_at(db: &mut impl Db, id: &str, occurred_at: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_events (id, occurred_at, actor_type, action, details) \
         VALUES ($1, $2, 'system', 'agent.created', '{}')",
    )
    .bind(id)
    .bind(occurred_at)
    .execute(db.raw())
    .await?;
    Ok(())
}

/// The event ids that have a count, in order.
#[cfg(test)]
pub async fn counted_event_ids(db: &mut impl Db) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query("SELECT event_id FROM audit_event_counts ORDER BY event_id")
        .fetch_all(db.raw())
        .await?;
    Ok(rows
        .iter()
        .map(|row| row.try_get("event_id"))
        .collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order() {
        let mut cond = Where::default();
        cond.push("a = ?", Bind::Text("x".into()));
        cond.push("b >= ?", Bind::Int(1));
        assert_eq!(cond.sql(), "WHERE a = $1 AND b >= $2");
        assert_eq!(Where::default().sql(), "");
    }

    #[test]
    fn id_bounds_sort_like_the_times_in_ids() {
        assert_eq!(id_at(0), format!("evt_{}", "0".repeat(32)));
        assert_eq!(id_at(-5), id_at(0));
        assert_eq!(
            id_at(i64::MAX),
            format!("evt_ffffffffffff{}", "0".repeat(20))
        );
        let ms = 1_764_547_200_123;
        let millis = u64::try_from(ms).unwrap();
        let id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            millis / 1000,
            u32::try_from(millis % 1000).unwrap() * 1_000_000,
        ));
        let id = format!("evt_{}", id.simple());
        assert!(id_at(ms) <= id && id < id_at(ms + 1));
        assert!(id_at(ms - 1) < id);
    }

    /// The events of `all` (id, occurred_at) a time filter lists, paged `limit` at a time.
    async fn listed(
        db: &mut impl Db,
        since: Option<i64>,
        until: Option<i64>,
        order: Order,
        limit: i64,
    ) -> Vec<String> {
        let filter = AuditFilter {
            since,
            until,
            ..AuditFilter::default()
        };
        let mut ids: Vec<String> = Vec::new();
        loop {
            let page = fetch(
                db,
                &filter,
                order,
                ids.last().map(String::as_str),
                None,
                limit,
            )
            .await
            .unwrap();
            let done = page.len() < usize::try_from(limit).unwrap();
            ids.extend(page.into_iter().map(|e| e.id));
            if done {
                return ids;
            }
        }
    }

    /// Time filters list exactly the events a scan would, whatever the ids' times say, and
    /// with ids that carry no time at all.
    async fn time_filters_match_a_scan(url: &str) {
        let store = super::super::Store::connect(url).await.unwrap();
        store.migrate().await.unwrap();
        let mut conn = store.conn().await.unwrap();
        let base: i64 = 1_764_547_200_000;
        let mut all: Vec<(String, i64)> = Vec::new();
        for n in 0..120i64 {
            // Ids 10 ms apart; occurred_at up to 45 ms either side of the id's time.
            let at = base + n * 10;
            let occurred_at = at + (n * 37 % 91) - 45;
            let id = format!("evt_{at:012x}{n:020x}");
            insert_at(&mut conn, &id, occurred_at).await.unwrap();
            all.push((id, occurred_at));
        }
        assert_eq!(id_skew(&mut conn).await.unwrap(), Some((-45, 45)));
        let windows = [
            (None, None),
            (Some(base + 300), None),
            (None, Some(base + 300)),
            (Some(base + 295), Some(base + 640)),
            (Some(base + 500), Some(base + 505)),
            (Some(base - 100), Some(base)),
            (Some(base + 2_000), None),
            (Some(i64::MIN), Some(i64::MAX)),
        ];
        for round in 0..2 {
            for (since, until) in windows {
                let mut expected: Vec<String> = all
                    .iter()
                    .filter(|(_, at)| since.is_none_or(|s| *at >= s))
                    .filter(|(_, at)| until.is_none_or(|u| *at < u))
                    .map(|(id, _)| id.clone())
                    .collect();
                expected.sort();
                let oldest = listed(&mut conn, since, until, Order::OldestFirst, 7).await;
                assert_eq!(oldest, expected, "{since:?}..{until:?}, round {round}");
                expected.reverse();
                let newest = listed(&mut conn, since, until, Order::NewestFirst, 7).await;
                assert_eq!(newest, expected, "{since:?}..{until:?}, round {round}");
            }
            if round == 0 {
                // An id without a time: the bounds are off from now on.
                insert_at(&mut conn, "evt_imported", base + 300)
                    .await
                    .unwrap();
                all.push(("evt_imported".into(), base + 300));
                assert_eq!(id_skew(&mut conn).await.unwrap(), None);
            }
        }
        drop(conn);
        store.close().await;
    }

    #[tokio::test]
    async fn time_filters_match_a_scan_on_sqlite() {
        super::super::scratch::on_sqlite(
            |url| async move { time_filters_match_a_scan(&url).await },
        )
        .await;
    }

    /// On PostgreSQL too, with `TEST_POSTGRES_URL` set (an admin connection URL).
    #[tokio::test]
    async fn time_filters_match_a_scan_on_postgres() {
        super::super::scratch::on_postgres(
            |url| async move { time_filters_match_a_scan(&url).await },
        )
        .await;
    }

    #[test]
    fn counts_from_the_side_table_win() {
        assert_eq!(
            merge_count(r#"{"count":1,"reason":"x"}"#, Some(40)),
            json!({"count": 40, "reason": "x"})
        );
        assert_eq!(merge_count(r#"{"count":1}"#, None), json!({"count": 1}));
        assert_eq!(
            merge_count("not json", Some(2)),
            json!({"raw": "not json", "count": 2})
        );
    }
}
