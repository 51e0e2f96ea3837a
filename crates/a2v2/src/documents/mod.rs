//! Documents: each agent's uploaded files, their extracted text, fields and contacts (SPEC §3
//! "Documents and extraction"). Every read and write is scoped to the owning agent.
//!
//! Extraction never runs on the async runtime's threads: a bounded pool of blocking workers
//! runs it, each document within a time budget. Every extraction is a job in the database
//! queue: an upload that will wait for its result takes the job's lease at once and runs it;
//! the others wait for a node's queue loop (`worker`).

pub mod input;
pub mod service;
mod worker;

use serde::Deserialize;

use crate::{
    error::DomainError,
    model::{
        document::{DocumentFilter, Status},
        page::{PageQuery, PageRequest},
        time,
    },
};
pub use service::Documents;

/// Longest `q` filter.
const QUERY_MAX: usize = 255;

/// List filters: unknown parameters are 400 `bad_request`.
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
    /// `processing`, `succeeded` or `failed`.
    #[param(pattern = "^(processing|succeeded|failed)$")]
    pub status: Option<String>,
    /// Case-insensitive substring of the file name.
    #[param(max_length = 255, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub q: Option<String>,
    /// Documents changed at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub updated_since: Option<String>,
}

impl ListQuery {
    pub fn filter(&self) -> Result<DocumentFilter, DomainError> {
        let status = match self.status.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(Status::parse(text).ok_or_else(|| {
                DomainError::BadRequest("`status` must be processing, succeeded or failed.".into())
            })?),
        };
        let q = match self.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            None => None,
            Some(q) if q.chars().count() > QUERY_MAX || q.chars().any(char::is_control) => {
                return Err(DomainError::BadRequest(format!(
                    "`q` must be at most {QUERY_MAX} characters without control characters."
                )));
            }
            Some(q) => Some(q.to_lowercase()),
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
        Ok(DocumentFilter {
            status,
            q,
            updated_since,
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
    fn list_filters_are_checked() {
        let query = ListQuery {
            status: Some("failed".into()),
            q: Some(" Invoice ".into()),
            ..ListQuery::default()
        };
        let filter = query.filter().unwrap();
        assert_eq!(filter.status, Some(Status::Failed));
        assert_eq!(filter.q.as_deref(), Some("invoice"));
        for bad in [
            ListQuery {
                status: Some("done".into()),
                ..ListQuery::default()
            },
            ListQuery {
                updated_since: Some("today".into()),
                ..ListQuery::default()
            },
            ListQuery {
                q: Some("a\u{1}".into()),
                ..ListQuery::default()
            },
        ] {
            assert!(bad.filter().is_err(), "{bad:?}");
        }
    }
}
