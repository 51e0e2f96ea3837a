//! Audit events: who did what to what, when and from where.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// Who did it, or what it was done to: `{type, id, label}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct ActorRef {
    /// `member`, `api_key` or `system`.
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: Cow<'static, str>,
    pub id: Option<String>,
    pub label: Option<String>,
}

/// Who did it.
pub type Actor = ActorRef;

impl ActorRef {
    pub fn member(id: &str, email: &str) -> Self {
        Self {
            kind: "member".into(),
            id: Some(id.to_owned()),
            label: Some(email.to_owned()),
        }
    }

    pub fn api_key(id: &str, name: &str) -> Self {
        Self {
            kind: "api_key".into(),
            id: Some(id.to_owned()),
            label: Some(name.to_owned()),
        }
    }

    /// The operator on the command line.
    pub fn cli() -> Self {
        Self {
            kind: "system".into(),
            id: None,
            label: Some("cli".to_owned()),
        }
    }

    pub fn system() -> Self {
        Self {
            kind: "system".into(),
            id: None,
            label: Some("system".to_owned()),
        }
    }
}

/// What it was done to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Target {
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: Cow<'static, str>,
    pub id: String,
    pub label: String,
}

impl Target {
    pub fn new(kind: &'static str, id: &str, label: &str) -> Self {
        Self {
            kind: kind.into(),
            id: id.to_owned(),
            label: label.to_owned(),
        }
    }
}

/// Where the request came from.
#[derive(Clone, Debug, Default)]
pub struct Origin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Who makes a change and from where, as the audit log records it.
#[derive(Clone, Debug)]
pub struct By {
    pub actor: Actor,
    pub origin: Origin,
}

impl By {
    /// The operator on the command line.
    pub fn cli() -> Self {
        Self {
            actor: Actor::cli(),
            origin: Origin::default(),
        }
    }

    pub fn system() -> Self {
        Self {
            actor: Actor::system(),
            origin: Origin::default(),
        }
    }
}

/// One event to append. `details` must never hold a secret.
pub struct NewEvent<'a> {
    pub action: &'a str,
    pub agent_id: Option<&'a str>,
    pub target: Option<Target>,
    pub details: Value,
}

/// A stored event as the audit API returns it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AuditEvent {
    pub id: String,
    #[serde(with = "super::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub occurred_at: i64,
    pub actor: ActorRef,
    pub action: String,
    pub agent_id: Option<String>,
    pub target: Option<Target>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    #[schema(value_type = Object)]
    pub details: Value,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionFilter {
    Exact(String),
    /// `api_key.*`: every action starting with `api_key.`.
    Prefix(String),
}

/// Which events to read. `since` is inclusive, `until` exclusive (unix milliseconds).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub action: Option<ActionFilter>,
    pub agent_id: Option<String>,
    pub actor_id: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// Which way to walk the log by id (ids are time-ordered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    NewestFirst,
    OldestFirst,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_show_missing_targets_as_null() {
        let event = AuditEvent {
            id: "evt_1".into(),
            occurred_at: 0,
            actor: ActorRef::system(),
            action: "audit.purged".into(),
            agent_id: None,
            target: None,
            ip: None,
            user_agent: None,
            details: json!({ "count": 3 }),
        };
        let view = serde_json::to_value(&event).unwrap();
        assert_eq!(view["target"], Value::Null);
        assert_eq!(view["actor"]["type"], "system");
        assert_eq!(view["occurred_at"], "1970-01-01T00:00:00Z");
    }
}
