//! The audit log's query parameters: filters and paging.

use serde::Deserialize;

use crate::{
    error::DomainError,
    model::{
        audit::{ActionFilter, AuditFilter},
        page::{PageQuery, PageRequest},
        time::parse_rfc3339,
    },
};

const MAX_FILTER_CHARS: usize = 200;

/// Query parameters of `GET /api/audit-logs` and its export.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// How many events, 1–200 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_]{1,64}$")]
    pub cursor: Option<String>,
    /// An action such as `api_key.created`, or a prefix such as `api_key.*`.
    #[param(max_length = 200)]
    pub action: Option<String>,
    #[param(max_length = 200)]
    pub agent_id: Option<String>,
    #[param(max_length = 200)]
    pub actor_id: Option<String>,
    /// Events at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Events before this time (RFC 3339).
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// The export's format: `jsonl` (default) or `csv`.
    #[param(value_type = Option<String>, pattern = "^(csv|jsonl)$")]
    pub format: Option<String>,
}

fn text_param(name: &str, value: Option<&String>) -> Result<Option<String>, DomainError> {
    match value.map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) if v.chars().count() > MAX_FILTER_CHARS => Err(DomainError::BadRequest(format!(
            "`{name}` must be at most {MAX_FILTER_CHARS} characters."
        ))),
        Some(v) => Ok(Some(v.to_owned())),
    }
}

fn time_param(name: &str, value: Option<&String>) -> Result<Option<i64>, DomainError> {
    match text_param(name, value)? {
        None => Ok(None),
        Some(text) => parse_rfc3339(&text).map(Some).ok_or_else(|| {
            DomainError::BadRequest(format!(
                "`{name}` must be an RFC 3339 timestamp such as 2025-01-31T09:00:00Z."
            ))
        }),
    }
}

impl AuditQuery {
    pub fn page(&self) -> Result<PageRequest, DomainError> {
        PageQuery {
            limit: self.limit.clone(),
            cursor: self.cursor.clone(),
        }
        .page()
        .map_err(DomainError::BadRequest)
    }

    pub fn filter(&self) -> Result<AuditFilter, DomainError> {
        let action = text_param("action", self.action.as_ref())?.and_then(|action| {
            match action.strip_suffix('*') {
                Some("") => None,
                Some(prefix) => Some(ActionFilter::Prefix(prefix.to_owned())),
                None => Some(ActionFilter::Exact(action)),
            }
        });
        Ok(AuditFilter {
            action,
            agent_id: text_param("agent_id", self.agent_id.as_ref())?,
            actor_id: text_param("actor_id", self.actor_id.as_ref())?,
            since: time_param("since", self.since.as_ref())?,
            until: time_param("until", self.until.as_ref())?,
        })
    }
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
            assert!(matches!(err, DomainError::BadRequest(_)), "{bad}");
            assert!(query(&[("until", bad)]).filter().is_err());
        }
        let long = "a".repeat(MAX_FILTER_CHARS + 1);
        assert!(query(&[("agent_id", long.as_str())]).filter().is_err());
    }
}
