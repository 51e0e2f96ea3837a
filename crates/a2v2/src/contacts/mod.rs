//! Contacts: each agent's CRM records (SPEC §3 Contacts). Every read and write is scoped to
//! the owning agent, so another agent's contact is indistinguishable from a missing one.

mod batch;
pub mod cache;
pub mod csv;
pub mod export;
pub mod idempotency;
pub mod import;
pub mod service;
pub mod validation;

use serde::Deserialize;

use crate::{
    error::DomainError,
    model::{
        contact::ContactFilter,
        page::{PageQuery, PageRequest},
        time,
    },
};
pub use service::Contacts;

/// What an `If-Match` header asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// `*`: the contact must exist.
    Any,
    /// One of these versions; an entry that is not a version of ours never matches.
    Versions(Vec<i64>),
}

impl Precondition {
    /// Reads the values of `If-Match` headers: `"3"`, `3`, `*`, or a comma-separated list of
    /// those. A weak tag (`W/"3"`) never matches: `If-Match` compares strongly. `None` when
    /// there is no such header.
    pub fn from_if_match<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        let mut versions = Vec::new();
        let mut present = false;
        for text in values {
            present = true;
            for entry in text.split(',').map(str::trim) {
                if entry == "*" {
                    return Some(Self::Any);
                }
                if entry.starts_with("W/") {
                    continue;
                }
                let tag = entry
                    .strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    .unwrap_or(entry);
                if let Ok(version) = tag.parse::<i64>() {
                    versions.push(version);
                }
            }
        }
        present.then_some(Self::Versions(versions))
    }

    pub fn allows(&self, version: i64) -> bool {
        match self {
            Self::Any => true,
            Self::Versions(versions) => versions.contains(&version),
        }
    }
}

/// List filters (SPEC §3): unknown parameters are 400 `bad_request`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// How many items, 1–200 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_]{1,64}$")]
    pub cursor: Option<String>,
    /// Case-insensitive substring of the names, email or company.
    #[param(max_length = 255, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub q: Option<String>,
    /// Exact email, case-insensitive.
    #[param(max_length = 255, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub email: Option<String>,
    /// Contacts carrying this tag.
    #[param(max_length = 255, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub tag: Option<String>,
    /// Contacts changed at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub updated_since: Option<String>,
    /// The id of an API key or member: contacts it created or changed last.
    pub written_by: Option<String>,
}

impl ListQuery {
    pub fn filter(&self) -> Result<ContactFilter, DomainError> {
        let text = |name: &str, value: &Option<String>| -> Result<Option<String>, DomainError> {
            let Some(value) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) else {
                return Ok(None);
            };
            if value.chars().count() > validation::TEXT_MAX || value.chars().any(char::is_control) {
                return Err(DomainError::BadRequest(format!(
                    "`{name}` must be at most {} characters without control characters.",
                    validation::TEXT_MAX
                )));
            }
            Ok(Some(value.to_owned()))
        };
        let updated_since = match self.updated_since.as_deref() {
            None => None,
            Some(since) => Some(time::parse_rfc3339(since.trim()).ok_or_else(|| {
                DomainError::BadRequest(
                    "`updated_since` must be an RFC 3339 timestamp such as 2025-01-31T09:00:00Z."
                        .into(),
                )
            })?),
        };
        Ok(ContactFilter {
            q: text("q", &self.q)?.map(|q| q.to_lowercase()),
            email_lower: text("email", &self.email)?.map(|e| e.to_lowercase()),
            tag: text("tag", &self.tag)?,
            updated_since,
            written_by: text("written_by", &self.written_by)?,
        })
    }

    pub fn page(&self) -> Result<PageRequest, DomainError> {
        PageQuery {
            limit: self.limit.clone(),
            cursor: self.cursor.clone(),
        }
        .page()
        .map_err(DomainError::BadRequest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_accepts_the_usual_spellings() {
        assert_eq!(Precondition::from_if_match([]), None);
        for spelling in ["\"3\"", "3", " \"1\", \"3\" ", "W/\"3\", \"3\"", "*"] {
            let pre = Precondition::from_if_match([spelling]).unwrap();
            assert!(pre.allows(3), "{spelling}");
        }
        assert!(!Precondition::from_if_match(["W/\"3\""]).unwrap().allows(3));
        let pre = Precondition::from_if_match(["\"4\"", "abc"]).unwrap();
        assert!(!pre.allows(3));
        assert!(pre.allows(4));
        assert!(!Precondition::from_if_match(["nonsense"]).unwrap().allows(1));
    }

    #[test]
    fn list_filters_are_checked() {
        let query = ListQuery {
            q: Some(" ADA ".into()),
            email: Some("A@B.CO".into()),
            updated_since: Some("2025-01-01T00:00:00Z".into()),
            ..ListQuery::default()
        };
        let filter = query.filter().unwrap();
        assert_eq!(filter.q.as_deref(), Some("ada"));
        assert_eq!(filter.email_lower.as_deref(), Some("a@b.co"));
        assert!(filter.updated_since.is_some());
        let bad = ListQuery {
            updated_since: Some("yesterday".into()),
            ..ListQuery::default()
        };
        assert!(bad.filter().is_err());
        let control = ListQuery {
            q: Some("a\u{0}".into()),
            ..ListQuery::default()
        };
        assert!(control.filter().is_err());
    }
}
