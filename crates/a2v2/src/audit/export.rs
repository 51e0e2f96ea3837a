//! Export of the audit log as CSV or JSON Lines, streamed in batches so that a large log never
//! sits in memory.

use std::pin::Pin;

use bytes::Bytes;
use futures_util::stream::{self, Stream};
use serde_json::Value;

use crate::{
    error::DomainError,
    model::{
        audit::{AuditEvent, AuditFilter, Order},
        new_id,
        time::to_rfc3339,
    },
    store::{self, Store, StoreError},
};

/// The chunks of an export, ready to send.
pub type Chunks = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

const BATCH: i64 = 500;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
}

impl Format {
    pub fn parse(name: Option<&str>) -> Result<Self, DomainError> {
        match name.map(str::trim) {
            None | Some("") | Some("jsonl") => Ok(Self::JsonLines),
            Some("csv") => Ok(Self::Csv),
            Some(_) => Err(DomainError::BadRequest(
                "`format` must be `csv` or `jsonl`.".into(),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::JsonLines => "jsonl",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::JsonLines => "application/x-ndjson",
        }
    }

    fn header(self) -> Option<String> {
        match self {
            Self::Csv => Some(csv_line(CSV_COLUMNS.iter().map(|c| (*c).to_owned()))),
            Self::JsonLines => None,
        }
    }

    fn line(self, event: &AuditEvent) -> String {
        match self {
            Self::JsonLines => format!("{}\n", serde_json::to_string(event).unwrap_or_default()),
            Self::Csv => csv_line(csv_fields(event)),
        }
    }
}

pub const CSV_COLUMNS: [&str; 13] = [
    "id",
    "occurred_at",
    "actor_type",
    "actor_id",
    "actor_label",
    "action",
    "agent_id",
    "target_type",
    "target_id",
    "target_label",
    "ip",
    "user_agent",
    "details",
];

fn csv_fields(event: &AuditEvent) -> impl Iterator<Item = String> {
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    let target = event.target.as_ref();
    let details = match &event.details {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    [
        event.id.clone(),
        to_rfc3339(event.occurred_at),
        event.actor.kind.to_string(),
        text(&event.actor.id),
        text(&event.actor.label),
        event.action.clone(),
        text(&event.agent_id),
        target.map(|t| t.kind.to_string()).unwrap_or_default(),
        target.map(|t| t.id.clone()).unwrap_or_default(),
        target.map(|t| t.label.clone()).unwrap_or_default(),
        text(&event.ip),
        text(&event.user_agent),
        details,
    ]
    .into_iter()
}

/// One CSV field (RFC 4180): quoted when it holds a comma, quote or line break, with quotes
/// doubled. Text that a spreadsheet would run as a formula gets a leading `'`, since labels
/// such as key names and user agents come from users.
pub fn csv_field(value: &str) -> String {
    let neutralised;
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        neutralised = format!("'{value}");
        neutralised.as_str()
    } else {
        value
    };
    if value.contains([',', '"', '\n', '\r']) || value.starts_with(' ') || value.ends_with(' ') {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

pub fn csv_line(fields: impl Iterator<Item = String>) -> String {
    let mut line = fields.map(|f| csv_field(&f)).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

struct Cursor {
    store: Store,
    filter: AuditFilter,
    format: Format,
    after: Option<String>,
    below: String,
    header: Option<String>,
    done: bool,
}

/// Every event matching `filter`, oldest first, as chunks of the export. Events written after
/// the export began are left out, so it ends even while the log grows.
pub fn stream(store: Store, filter: AuditFilter, format: Format) -> Chunks {
    let cursor = Cursor {
        store,
        filter,
        format,
        after: None,
        // Ids are time-ordered: an id minted now sorts after every event already written.
        below: new_id("evt"),
        header: format.header(),
        done: false,
    };
    Box::pin(stream::unfold(cursor, |mut cursor| async move {
        if cursor.done {
            return None;
        }
        let mut chunk = cursor.header.take().unwrap_or_default();
        match next_batch(&mut cursor).await {
            Ok(rows) => {
                for row in &rows {
                    chunk.push_str(&cursor.format.line(row));
                }
                Some((Ok(Bytes::from(chunk)), cursor))
            }
            Err(err) => {
                tracing::error!(error = %err, "reading the audit log for an export failed");
                cursor.done = true;
                Some((
                    Err(std::io::Error::other("the export stopped early")),
                    cursor,
                ))
            }
        }
    }))
}

async fn next_batch(cursor: &mut Cursor) -> Result<Vec<AuditEvent>, StoreError> {
    let mut conn = cursor.store.conn().await?;
    let rows = store::audit::fetch(
        &mut conn,
        &cursor.filter,
        Order::OldestFirst,
        cursor.after.as_deref(),
        Some(&cursor.below),
        BATCH,
    )
    .await?;
    match rows.last() {
        Some(last) if rows.len() as i64 == BATCH => cursor.after = Some(last.id.clone()),
        _ => cursor.done = true,
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field(" padded"), "\" padded\"");
        assert_eq!(csv_field(""), "");
    }

    #[test]
    fn csv_fields_never_run_as_formulas() {
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_field("@cmd"), "'@cmd");
        assert_eq!(csv_field("-1,2"), "\"'-1,2\"");
    }

    #[test]
    fn formats_by_name() {
        assert_eq!(Format::parse(Some("csv")).unwrap(), Format::Csv);
        assert_eq!(Format::parse(Some("jsonl")).unwrap(), Format::JsonLines);
        assert_eq!(Format::parse(None).unwrap(), Format::JsonLines);
        assert_eq!(
            Format::parse(Some("xml")).unwrap_err().to_string(),
            "`format` must be `csv` or `jsonl`."
        );
        assert_eq!(
            Format::Csv.header().unwrap(),
            format!("{}\r\n", CSV_COLUMNS.join(","))
        );
    }
}
