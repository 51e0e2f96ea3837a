//! Export of an agent's contacts (optionally filtered like the list) as CSV or JSON Lines,
//! streamed page by page. The CSV columns read back with `contacts import`: tags joined by
//! `; `, attributes as one JSON object, read-only columns ignored.

use bytes::Bytes;
use futures_util::stream;
use serde_json::json;

use super::{Contacts, ListQuery};
use crate::{
    audit::{
        self,
        export::{Chunks, Format, csv_line},
    },
    error::Result,
    model::{
        audit::{By, NewEvent},
        contact::Contact,
        time::to_rfc3339,
    },
};

/// Contacts per page read from storage.
const BATCH: &str = "200";

pub const CSV_COLUMNS: [&str; 16] = [
    "id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "phone_e164",
    "company",
    "job_title",
    "notes",
    "tags",
    "attributes",
    "version",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
];

fn csv_fields(contact: &Contact) -> impl Iterator<Item = String> {
    let f = &contact.fields;
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    let attributes = if f.attributes.is_empty() {
        String::new()
    } else {
        serde_json::Value::Object(f.attributes.clone()).to_string()
    };
    let actor = |a: &crate::model::audit::ActorRef| {
        a.label.clone().or_else(|| a.id.clone()).unwrap_or_default()
    };
    [
        contact.id.clone(),
        text(&f.first_name),
        text(&f.last_name),
        text(&f.email),
        text(&f.phone),
        text(&f.phone_e164),
        text(&f.company),
        text(&f.job_title),
        text(&f.notes),
        f.tags.join("; "),
        attributes,
        contact.version.to_string(),
        to_rfc3339(contact.created_at),
        to_rfc3339(contact.updated_at),
        actor(&contact.created_by),
        actor(&contact.updated_by),
    ]
    .into_iter()
}

/// One contact as a line of the export.
pub fn line(format: Format, contact: &Contact) -> String {
    match format {
        Format::JsonLines => format!("{}\n", serde_json::to_string(contact).unwrap_or_default()),
        Format::Csv => csv_line(csv_fields(contact)),
    }
}

/// The first line of the export (the CSV header), if the format has one.
pub fn header(format: Format) -> String {
    match format {
        Format::Csv => csv_line(CSV_COLUMNS.iter().map(|c| (*c).to_owned())),
        Format::JsonLines => String::new(),
    }
}

struct Cursor {
    contacts: Contacts,
    agent_id: String,
    query: ListQuery,
    format: Format,
    header: Option<String>,
    done: bool,
}

impl Contacts {
    /// Every contact of the agent matching `query`'s filters, in creation order, as chunks.
    /// 404 for an unknown agent; 400 for bad filters (checked before the first byte). The
    /// export is recorded in the audit log: it copies personal data out of the server.
    pub async fn export(
        &self,
        by: &By,
        agent_id: &str,
        mut query: ListQuery,
        format: Format,
    ) -> Result<Chunks> {
        self.ensure_agent(agent_id).await?;
        let filter = query.filter()?;
        let mut tx = self.store.begin().await?;
        audit::record(
            &mut tx,
            by,
            NewEvent {
                action: "contact.exported",
                agent_id: Some(agent_id),
                target: None,
                details: json!({
                    "format": format.name(),
                    "q": filter.q,
                    "email": filter.email_lower,
                    "tag": filter.tag,
                    "written_by": filter.written_by,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        query.limit = Some(BATCH.into());
        query.cursor = None;
        let cursor = Cursor {
            contacts: self.clone(),
            agent_id: agent_id.to_owned(),
            query,
            format,
            header: Some(header(format)),
            done: false,
        };
        Ok(Box::pin(stream::unfold(cursor, |mut cursor| async move {
            if cursor.done {
                return None;
            }
            let mut chunk = cursor.header.take().unwrap_or_default();
            match cursor.contacts.list(&cursor.agent_id, &cursor.query).await {
                Ok(page) => {
                    for contact in &page.data {
                        chunk.push_str(&line(cursor.format, contact));
                    }
                    cursor.query.cursor = page.next_cursor.clone();
                    cursor.done = page.next_cursor.is_none();
                    Some((Ok(Bytes::from(chunk)), cursor))
                }
                Err(err) => {
                    tracing::error!(error = %err, "reading contacts for an export failed");
                    cursor.done = true;
                    Some((
                        Err(std::io::Error::other("the export stopped early")),
                        cursor,
                    ))
                }
            }
        })))
    }
}
