//! Contacts: each agent's CRM records (SPEC §3 Contacts).
//!
//! Every query filters by the owning agent, so another agent's contact is indistinguishable
//! from a missing one. Storage is portable SQL over `sqlx::Any`; tags are also kept one per
//! row in `contact_tags` so that the `tag` filter walks an index in id order.

pub mod cache;
pub mod handlers;
pub mod idempotency;
pub mod validation;

use axum::http::{HeaderMap, HeaderValue, header};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sqlx::{AnyConnection, Row, any::AnyRow};

use crate::{error::ApiError, time_fmt};
pub use validation::Fields;

/// A stored contact.
#[derive(Clone, Debug, PartialEq)]
pub struct Contact {
    pub id: String,
    pub fields: Fields,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Contact {
    /// The contact as the API returns it.
    pub fn view(&self) -> Value {
        let f = &self.fields;
        json!({
            "id": self.id,
            "first_name": f.first_name,
            "last_name": f.last_name,
            "email": f.email,
            "phone": f.phone,
            "phone_e164": f.phone_e164,
            "company": f.company,
            "job_title": f.job_title,
            "notes": f.notes,
            "tags": f.tags,
            "attributes": f.attributes,
            "version": self.version,
            "created_at": time_fmt::to_rfc3339(self.created_at),
            "updated_at": time_fmt::to_rfc3339(self.updated_at),
        })
    }

    /// The strong entity tag of this version: `"<version>"`.
    pub fn etag(&self) -> HeaderValue {
        etag(self.version)
    }
}

pub fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// What an `If-Match` header asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// `*`: the contact must exist.
    Any,
    /// One of these versions; an entry that is not a version of ours never matches.
    Versions(Vec<i64>),
}

impl Precondition {
    /// Reads `If-Match`: `"3"`, `3`, `*`, or a comma-separated list of those. A weak tag
    /// (`W/"3"`) never matches: `If-Match` compares strongly.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let mut versions = Vec::new();
        let mut present = false;
        for value in headers.get_all(header::IF_MATCH) {
            present = true;
            let Ok(text) = value.to_str() else { continue };
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
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub limit: Option<String>,
    pub cursor: Option<String>,
    pub q: Option<String>,
    pub email: Option<String>,
    pub tag: Option<String>,
    pub updated_since: Option<String>,
}

/// Validated list filters.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Lowercased substring of names, email or company.
    pub q: Option<String>,
    pub email_lower: Option<String>,
    pub tag: Option<String>,
    pub updated_since: Option<i64>,
}

impl ListQuery {
    pub fn filter(&self) -> Result<Filter, ApiError> {
        let text = |name: &str, value: &Option<String>| -> Result<Option<String>, ApiError> {
            let Some(value) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) else {
                return Ok(None);
            };
            if value.chars().count() > validation::TEXT_MAX || value.chars().any(char::is_control) {
                return Err(ApiError::BadRequest(format!(
                    "`{name}` must be at most {} characters without control characters.",
                    validation::TEXT_MAX
                )));
            }
            Ok(Some(value.to_owned()))
        };
        let updated_since = match self.updated_since.as_deref() {
            None => None,
            Some(since) => Some(time_fmt::parse_rfc3339(since.trim()).ok_or_else(|| {
                ApiError::BadRequest(
                    "`updated_since` must be an RFC 3339 timestamp such as 2025-01-31T09:00:00Z."
                        .into(),
                )
            })?),
        };
        Ok(Filter {
            q: text("q", &self.q)?.map(|q| q.to_lowercase()),
            email_lower: text("email", &self.email)?.map(|e| e.to_lowercase()),
            tag: text("tag", &self.tag)?,
            updated_since,
        })
    }

    pub fn page(&self) -> Result<crate::pagination::Page, ApiError> {
        crate::pagination::PageQuery {
            limit: self.limit.clone(),
            cursor: self.cursor.clone(),
        }
        .page()
    }
}

const COLUMNS: &str = "c.id, c.first_name, c.last_name, c.email, c.phone, c.phone_e164, \
    c.company, c.job_title, c.notes, c.tags, c.attributes, c.version, c.created_at, c.updated_at";

fn decode<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> Result<T, sqlx::Error> {
    serde_json::from_str(text).map_err(|err| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(err),
    })
}

fn from_row(row: &AnyRow) -> Result<Contact, sqlx::Error> {
    let tags: Vec<String> = decode("tags", &row.try_get::<String, _>("tags")?)?;
    let attributes: Map<String, Value> =
        decode("attributes", &row.try_get::<String, _>("attributes")?)?;
    Ok(Contact {
        id: row.try_get("id")?,
        fields: Fields {
            first_name: row.try_get("first_name")?,
            last_name: row.try_get("last_name")?,
            email: row.try_get("email")?,
            phone: row.try_get("phone")?,
            phone_e164: row.try_get("phone_e164")?,
            company: row.try_get("company")?,
            job_title: row.try_get("job_title")?,
            notes: row.try_get("notes")?,
            tags,
            attributes,
        },
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The contact `id` of `agent_id`, if there is one.
pub async fn get(
    conn: &mut AnyConnection,
    agent_id: &str,
    id: &str,
) -> Result<Option<Contact>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM contacts c WHERE c.id = $1 AND c.agent_id = $2"
    ))
    .bind(id)
    .bind(agent_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// The id of the agent's contact with this email (case-insensitively).
pub async fn id_by_email(
    conn: &mut AnyConnection,
    agent_id: &str,
    email_lower: &str,
) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query("SELECT id FROM contacts WHERE agent_id = $1 AND email_lower = $2")
        .bind(agent_id)
        .bind(email_lower)
        .fetch_optional(conn)
        .await?;
    row.map(|r| r.try_get("id")).transpose()
}

fn json_text(value: &impl serde::Serialize) -> Result<String, sqlx::Error> {
    serde_json::to_string(value).map_err(|err| sqlx::Error::Encode(Box::new(err)))
}

/// Inserts a new contact and its tags.
pub async fn insert(
    conn: &mut AnyConnection,
    agent_id: &str,
    contact: &Contact,
) -> Result<(), sqlx::Error> {
    let f = &contact.fields;
    sqlx::query(
        "INSERT INTO contacts (id, agent_id, first_name, last_name, email, email_lower, phone, \
         phone_e164, company, job_title, notes, tags, attributes, search_text, version, \
         created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    )
    .bind(&contact.id)
    .bind(agent_id)
    .bind(&f.first_name)
    .bind(&f.last_name)
    .bind(&f.email)
    .bind(f.email_lower())
    .bind(&f.phone)
    .bind(&f.phone_e164)
    .bind(&f.company)
    .bind(&f.job_title)
    .bind(&f.notes)
    .bind(json_text(&f.tags)?)
    .bind(json_text(&f.attributes)?)
    .bind(f.search_text())
    .bind(contact.version)
    .bind(contact.created_at)
    .bind(contact.updated_at)
    .execute(&mut *conn)
    .await?;
    insert_tags(conn, agent_id, &contact.id, &f.tags).await
}

async fn insert_tags(
    conn: &mut AnyConnection,
    agent_id: &str,
    contact_id: &str,
    tags: &[String],
) -> Result<(), sqlx::Error> {
    if tags.is_empty() {
        return Ok(());
    }
    let values = (0..tags.len())
        .map(|i| format!("($1, $2, ${})", i + 3))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("INSERT INTO contact_tags (contact_id, agent_id, tag) VALUES {values}");
    let mut query = sqlx::query(&sql).bind(contact_id).bind(agent_id);
    for tag in tags {
        query = query.bind(tag);
    }
    query.execute(conn).await?;
    Ok(())
}

/// Writes `contact` over the stored row if that row is still at `expected_version`.
/// Returns false when it is not (changed or deleted meanwhile): nothing was written.
/// The UPDATE comes first so that, on SQLite, the transaction takes the write lock at once.
pub async fn update_if_version(
    conn: &mut AnyConnection,
    agent_id: &str,
    contact: &Contact,
    expected_version: i64,
    tags_changed: bool,
) -> Result<bool, sqlx::Error> {
    let f = &contact.fields;
    let done = sqlx::query(
        "UPDATE contacts SET first_name = $1, last_name = $2, email = $3, email_lower = $4, \
         phone = $5, phone_e164 = $6, company = $7, job_title = $8, notes = $9, tags = $10, \
         attributes = $11, search_text = $12, version = $13, updated_at = $14 \
         WHERE id = $15 AND agent_id = $16 AND version = $17",
    )
    .bind(&f.first_name)
    .bind(&f.last_name)
    .bind(&f.email)
    .bind(f.email_lower())
    .bind(&f.phone)
    .bind(&f.phone_e164)
    .bind(&f.company)
    .bind(&f.job_title)
    .bind(&f.notes)
    .bind(json_text(&f.tags)?)
    .bind(json_text(&f.attributes)?)
    .bind(f.search_text())
    .bind(contact.version)
    .bind(contact.updated_at)
    .bind(&contact.id)
    .bind(agent_id)
    .bind(expected_version)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    if tags_changed {
        sqlx::query("DELETE FROM contact_tags WHERE contact_id = $1 AND agent_id = $2")
            .bind(&contact.id)
            .bind(agent_id)
            .execute(&mut *conn)
            .await?;
        insert_tags(conn, agent_id, &contact.id, &f.tags).await?;
    }
    Ok(true)
}

/// Deletes the contact if it is still at `expected_version`; false when it is not.
pub async fn delete_if_version(
    conn: &mut AnyConnection,
    agent_id: &str,
    id: &str,
    expected_version: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM contacts WHERE id = $1 AND agent_id = $2 AND version = $3")
        .bind(id)
        .bind(agent_id)
        .bind(expected_version)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    // Also removed by the foreign key's cascade; explicit so it never depends on that pragma.
    sqlx::query("DELETE FROM contact_tags WHERE contact_id = $1 AND agent_id = $2")
        .bind(id)
        .bind(agent_id)
        .execute(conn)
        .await?;
    Ok(true)
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

enum Bind {
    Text(String),
    Int(i64),
}

/// One page of the agent's contacts in id order, after `after`; fetches `limit + 1` rows so
/// the caller can tell whether more follow.
pub async fn list(
    conn: &mut AnyConnection,
    agent_id: &str,
    filter: &Filter,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Contact>, sqlx::Error> {
    let mut binds = vec![Bind::Text(agent_id.to_owned())];
    let mut push = |bind: Bind| {
        binds.push(bind);
        binds.len()
    };
    // With a tag, walk the tag index in contact-id order and look each contact up (CROSS JOIN
    // keeps SQLite from starting at contacts, which would scan every contact for a rare tag).
    let (from, order) = match &filter.tag {
        Some(_) => ("contact_tags t CROSS JOIN contacts c", "t.contact_id"),
        None => ("contacts c", "c.id"),
    };
    let mut conditions = vec!["c.agent_id = $1".to_owned()];
    if let Some(tag) = &filter.tag {
        let n = push(Bind::Text(tag.clone()));
        conditions.push(format!(
            "t.agent_id = $1 AND t.tag = ${n} AND c.id = t.contact_id"
        ));
    }
    if let Some(after) = after {
        let n = push(Bind::Text(after.to_owned()));
        conditions.push(format!("{order} > ${n}"));
    }
    if let Some(email) = &filter.email_lower {
        let n = push(Bind::Text(email.clone()));
        conditions.push(format!("c.email_lower = ${n}"));
    }
    if let Some(since) = filter.updated_since {
        let n = push(Bind::Int(since));
        conditions.push(format!("c.updated_at >= ${n}"));
    }
    if let Some(q) = &filter.q {
        let n = push(Bind::Text(format!("%{}%", like_escape(q))));
        conditions.push(format!("c.search_text LIKE ${n} ESCAPE '\\'"));
    }
    let n = push(Bind::Int(limit + 1));
    let sql = format!(
        "SELECT {COLUMNS} FROM {from} WHERE {} ORDER BY {order} LIMIT ${n}",
        conditions.join(" AND ")
    );
    let mut query = sqlx::query(&sql);
    for bind in binds {
        query = match bind {
            Bind::Text(text) => query.bind(text),
            Bind::Int(int) => query.bind(int),
        };
    }
    let rows = query.fetch_all(conn).await?;
    rows.iter().map(from_row).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::IF_MATCH, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn if_match_accepts_the_usual_spellings() {
        assert_eq!(Precondition::from_headers(&headers(&[])), None);
        for spelling in ["\"3\"", "3", " \"1\", \"3\" ", "W/\"3\", \"3\"", "*"] {
            let pre = Precondition::from_headers(&headers(&[spelling])).unwrap();
            assert!(pre.allows(3), "{spelling}");
        }
        assert!(
            !Precondition::from_headers(&headers(&["W/\"3\""]))
                .unwrap()
                .allows(3)
        );
        let pre = Precondition::from_headers(&headers(&["\"4\"", "abc"])).unwrap();
        assert!(!pre.allows(3));
        assert!(pre.allows(4));
        assert!(
            !Precondition::from_headers(&headers(&["nonsense"]))
                .unwrap()
                .allows(1)
        );
    }

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(like_escape("50%_off\\"), "50\\%\\_off\\\\");
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
