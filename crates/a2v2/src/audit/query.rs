//! Reading the audit log: filters, keyset pages and the event as shown to people.

use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{AnyConnection, Row, any::AnyRow};

use crate::{
    error::ApiError,
    time_fmt::{parse_rfc3339, to_rfc3339},
};

const MAX_FILTER_CHARS: usize = 200;

/// Query parameters of `GET /api/audit-logs` and its export.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    pub limit: Option<String>,
    pub cursor: Option<String>,
    pub action: Option<String>,
    pub agent_id: Option<String>,
    pub actor_id: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub format: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionFilter {
    Exact(String),
    /// `api_key.*`: every action starting with `api_key.`.
    Prefix(String),
}

/// Which events to read. `since` is inclusive, `until` exclusive (unix milliseconds).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub action: Option<ActionFilter>,
    pub agent_id: Option<String>,
    pub actor_id: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

fn text_param(name: &str, value: Option<&String>) -> Result<Option<String>, ApiError> {
    match value.map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) if v.chars().count() > MAX_FILTER_CHARS => Err(ApiError::BadRequest(format!(
            "`{name}` must be at most {MAX_FILTER_CHARS} characters."
        ))),
        Some(v) => Ok(Some(v.to_owned())),
    }
}

fn time_param(name: &str, value: Option<&String>) -> Result<Option<i64>, ApiError> {
    match text_param(name, value)? {
        None => Ok(None),
        Some(text) => parse_rfc3339(&text).map(Some).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "`{name}` must be an RFC 3339 timestamp such as 2025-01-31T09:00:00Z."
            ))
        }),
    }
}

impl AuditQuery {
    pub fn filter(&self) -> Result<Filter, ApiError> {
        let action = text_param("action", self.action.as_ref())?.and_then(|action| {
            match action.strip_suffix('*') {
                Some("") => None,
                Some(prefix) => Some(ActionFilter::Prefix(prefix.to_owned())),
                None => Some(ActionFilter::Exact(action)),
            }
        });
        Ok(Filter {
            action,
            agent_id: text_param("agent_id", self.agent_id.as_ref())?,
            actor_id: text_param("actor_id", self.actor_id.as_ref())?,
            since: time_param("since", self.since.as_ref())?,
            until: time_param("until", self.until.as_ref())?,
        })
    }
}

/// Which way to walk the log by id (ids are time-ordered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    NewestFirst,
    OldestFirst,
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

/// A stored event, with the denial count merged in.
#[derive(Clone, Debug)]
pub struct EventRow {
    pub id: String,
    pub occurred_at: i64,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub actor_label: Option<String>,
    pub action: String,
    pub agent_id: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub target_label: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub details: Value,
}

fn from_row(row: &AnyRow) -> Result<EventRow, sqlx::Error> {
    let details_text: String = row.try_get("details")?;
    let details = merge_count(&details_text, row.try_get("merged_count")?);
    Ok(EventRow {
        id: row.try_get("id")?,
        occurred_at: row.try_get("occurred_at")?,
        actor_type: row.try_get("actor_type")?,
        actor_id: row.try_get("actor_id")?,
        actor_label: row.try_get("actor_label")?,
        action: row.try_get("action")?,
        agent_id: row.try_get("agent_id")?,
        target_type: row.try_get("target_type")?,
        target_id: row.try_get("target_id")?,
        target_label: row.try_get("target_label")?,
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

impl EventRow {
    pub fn view(&self) -> Value {
        let target = self
            .target_type
            .as_ref()
            .map(|kind| json!({ "type": kind, "id": self.target_id, "label": self.target_label }));
        json!({
            "id": self.id,
            "occurred_at": to_rfc3339(self.occurred_at),
            "actor": { "type": self.actor_type, "id": self.actor_id, "label": self.actor_label },
            "action": self.action,
            "agent_id": self.agent_id,
            "target": target,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "details": self.details,
        })
    }
}

/// Up to `limit` events matching `filter`, strictly after `after` in `order`, and (for
/// exports that must not chase new events) with ids below `below`.
pub async fn fetch(
    conn: &mut AnyConnection,
    filter: &Filter,
    order: Order,
    after: Option<&str>,
    below: Option<&str>,
    limit: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    let mut cond = Where::default();
    match &filter.action {
        Some(ActionFilter::Exact(action)) => cond.push("e.action = ?", Bind::Text(action.clone())),
        Some(ActionFilter::Prefix(prefix)) => {
            // SUBSTR rather than LIKE: `_` in action names is not a wildcard, and comparison
            // stays exact under any collation. The length is our own number, not input.
            let clause = format!("SUBSTR(e.action, 1, {}) = ?", prefix.chars().count());
            cond.push(&clause, Bind::Text(prefix.clone()));
        }
        None => {}
    }
    if let Some(agent_id) = &filter.agent_id {
        cond.push("e.agent_id = ?", Bind::Text(agent_id.clone()));
    }
    if let Some(actor_id) = &filter.actor_id {
        cond.push("e.actor_id = ?", Bind::Text(actor_id.clone()));
    }
    if let Some(since) = filter.since {
        cond.push("e.occurred_at >= ?", Bind::Int(since));
    }
    if let Some(until) = filter.until {
        cond.push("e.occurred_at < ?", Bind::Int(until));
    }
    let (step, direction) = match order {
        Order::NewestFirst => ("e.id < ?", "DESC"),
        Order::OldestFirst => ("e.id > ?", "ASC"),
    };
    if let Some(after) = after {
        cond.push(step, Bind::Text(after.to_owned()));
    }
    if let Some(below) = below {
        cond.push("e.id < ?", Bind::Text(below.to_owned()));
    }
    let sql = format!(
        "SELECT e.id, e.occurred_at, e.actor_type, e.actor_id, e.actor_label, e.action, \
         e.agent_id, e.target_type, e.target_id, e.target_label, e.ip, e.user_agent, e.details, \
         c.count AS merged_count \
         FROM audit_events e LEFT JOIN audit_event_counts c ON c.event_id = e.id \
         {} ORDER BY e.id {direction} LIMIT {}",
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
    let rows = query.fetch_all(conn).await?;
    rows.iter().map(from_row).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> AuditQuery {
        let mut q = AuditQuery::default();
        for (name, value) in pairs {
            let value = Some((*value).to_owned());
            match *name {
                "action" => q.action = value,
                "agent_id" => q.agent_id = value,
                "actor_id" => q.actor_id = value,
                "since" => q.since = value,
                "until" => q.until = value,
                _ => unreachable!(),
            }
        }
        q
    }

    #[test]
    fn actions_match_exactly_or_by_prefix() {
        let filter = |action| query(&[("action", action)]).filter().unwrap().action;
        assert_eq!(
            filter("api_key.created"),
            Some(ActionFilter::Exact("api_key.created".into()))
        );
        assert_eq!(
            filter("api_key.*"),
            Some(ActionFilter::Prefix("api_key.".into()))
        );
        assert_eq!(filter("*"), None);
        assert_eq!(filter("  "), None);
    }

    #[test]
    fn times_must_be_rfc3339() {
        let ok = query(&[
            ("since", "2025-01-01T00:00:00Z"),
            ("until", "2025-01-02T00:00:00+01:00"),
        ])
        .filter()
        .unwrap();
        assert_eq!(ok.since, Some(1_735_689_600_000));
        assert_eq!(ok.until, Some(1_735_772_400_000));
        for bad in ["yesterday", "2025-01-01", "1735689600"] {
            let err = query(&[("since", bad)]).filter().unwrap_err();
            assert_eq!(err.code(), "bad_request", "{bad}");
            assert!(query(&[("until", bad)]).filter().is_err());
        }
        let long = "a".repeat(MAX_FILTER_CHARS + 1);
        assert!(query(&[("agent_id", long.as_str())]).filter().is_err());
    }

    #[test]
    fn placeholders_are_numbered_in_order() {
        let mut cond = Where::default();
        cond.push("a = ?", Bind::Text("x".into()));
        cond.push("b >= ?", Bind::Int(1));
        assert_eq!(cond.sql(), "WHERE a = $1 AND b >= $2");
        assert_eq!(Where::default().sql(), "");
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

    #[test]
    fn views_leave_missing_targets_null() {
        let row = EventRow {
            id: "evt_1".into(),
            occurred_at: 0,
            actor_type: "system".into(),
            actor_id: None,
            actor_label: Some("system".into()),
            action: "audit.purged".into(),
            agent_id: None,
            target_type: None,
            target_id: None,
            target_label: None,
            ip: None,
            user_agent: None,
            details: json!({ "count": 3 }),
        };
        let view = row.view();
        assert_eq!(view["target"], Value::Null);
        assert_eq!(view["actor"]["type"], "system");
        assert_eq!(view["occurred_at"], "1970-01-01T00:00:00Z");
    }
}
