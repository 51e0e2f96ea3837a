//! The `documents` and `document_files` tables. Every statement filters by the owning agent,
//! so another agent's document is indistinguishable from a missing one.

use serde_json::{Map, Value};
use sqlx::{Row, any::AnyRow};

use super::{Db, StoreError};
use crate::model::document::{
    Corrections, Document, DocumentError, DocumentFilter, Extracted, PageText, Status,
};

/// Every column but `text` and `pages`, which only a single document's read needs.
const SUMMARY_COLUMNS: &str = "id, filename, content_type, size_bytes, sha256, status, \
    error_code, error_message, page_count, ocr, fields, contacts, schema, schema_fields, \
    corrections, metadata, version, created_at, updated_at";

fn decode<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> Result<T, sqlx::Error> {
    serde_json::from_str(text).map_err(|err| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(err),
    })
}

fn json_text(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|err| StoreError::Other(sqlx::Error::Encode(Box::new(err))))
}

/// PostgreSQL refuses NUL in text; extracted text may hold one.
fn without_nul(text: &str) -> String {
    text.replace('\0', "")
}

fn from_row(row: &AnyRow, with_text: bool) -> Result<Document, sqlx::Error> {
    let status: String = row.try_get("status")?;
    let status = Status::parse(&status).ok_or_else(|| sqlx::Error::ColumnDecode {
        index: "status".into(),
        source: format!("unknown status {status:?}").into(),
    })?;
    let error = match (
        row.try_get::<Option<String>, _>("error_code")?,
        row.try_get::<Option<String>, _>("error_message")?,
    ) {
        (Some(code), message) => Some(DocumentError {
            code,
            message: message.unwrap_or_default(),
        }),
        (None, _) => None,
    };
    let (text, pages) = if with_text {
        (
            row.try_get::<Option<String>, _>("text")?,
            decode::<Vec<PageText>>("pages", &row.try_get::<String, _>("pages")?)?,
        )
    } else {
        (None, Vec::new())
    };
    let schema: Option<String> = row.try_get("schema")?;
    Ok(Document {
        id: row.try_get("id")?,
        filename: row.try_get("filename")?,
        content_type: row.try_get("content_type")?,
        size_bytes: row.try_get("size_bytes")?,
        sha256: row.try_get("sha256")?,
        status,
        error,
        extracted: Extracted {
            page_count: row.try_get("page_count")?,
            text,
            ocr: row.try_get::<i64, _>("ocr")? != 0,
            pages,
            fields: decode("fields", &row.try_get::<String, _>("fields")?)?,
            contacts: decode("contacts", &row.try_get::<String, _>("contacts")?)?,
            schema_fields: decode("schema_fields", &row.try_get::<String, _>("schema_fields")?)?,
        },
        schema: schema.map(|s| decode("schema", &s)).transpose()?,
        corrections: decode::<Corrections>(
            "corrections",
            &row.try_get::<String, _>("corrections")?,
        )?,
        metadata: decode::<Map<String, Value>>("metadata", &row.try_get::<String, _>("metadata")?)?,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Inserts a new document (status `processing`, nothing extracted yet) and its bytes.
pub async fn insert(
    db: &mut impl Db,
    agent_id: &str,
    doc: &Document,
    bytes: &[u8],
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO documents (id, agent_id, filename, filename_lower, content_type, size_bytes, \
         sha256, status, error_code, error_message, page_count, ocr, text, pages, fields, \
         contacts, schema, schema_fields, corrections, metadata, version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, NULL, 0, NULL, '[]', '{}', '[]', \
         $9, '{}', $10, $11, $12, $13, $14)",
    )
    .bind(&doc.id)
    .bind(agent_id)
    .bind(&doc.filename)
    .bind(doc.filename.as_deref().map(str::to_lowercase))
    .bind(&doc.content_type)
    .bind(doc.size_bytes)
    .bind(&doc.sha256)
    .bind(doc.status.as_str())
    .bind(doc.schema.as_ref().map(json_text).transpose()?)
    .bind(json_text(&doc.corrections)?)
    .bind(json_text(&doc.metadata)?)
    .bind(doc.version)
    .bind(doc.created_at)
    .bind(doc.updated_at)
    .execute(db.raw())
    .await?;
    sqlx::query("INSERT INTO document_files (document_id, agent_id, bytes) VALUES ($1, $2, $3)")
        .bind(&doc.id)
        .bind(agent_id)
        .bind(bytes.to_vec())
        .execute(db.raw())
        .await?;
    Ok(())
}

/// The agent's document `id` with its text, or `NotFound`.
pub async fn get(db: &mut impl Db, agent_id: &str, id: &str) -> Result<Document, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {SUMMARY_COLUMNS}, text, pages FROM documents WHERE id = $1 AND agent_id = $2"
    ))
    .bind(id)
    .bind(agent_id)
    .fetch_optional(db.raw())
    .await?
    .ok_or(StoreError::NotFound)?;
    Ok(from_row(&row, true)?)
}

/// The original bytes of the agent's document, or `NotFound`.
pub async fn bytes(db: &mut impl Db, agent_id: &str, id: &str) -> Result<Vec<u8>, StoreError> {
    let row =
        sqlx::query("SELECT bytes FROM document_files WHERE document_id = $1 AND agent_id = $2")
            .bind(id)
            .bind(agent_id)
            .fetch_optional(db.raw())
            .await?
            .ok_or(StoreError::NotFound)?;
    Ok(row.try_get("bytes")?)
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

/// Up to `limit` of the agent's documents in id (creation) order after `after`, without text.
pub async fn list(
    db: &mut impl Db,
    agent_id: &str,
    filter: &DocumentFilter,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Document>, StoreError> {
    let mut binds = vec![Bind::Text(agent_id.to_owned())];
    let mut push = |bind: Bind| {
        binds.push(bind);
        binds.len()
    };
    let mut conditions = vec!["agent_id = $1".to_owned()];
    if let Some(after) = after {
        let n = push(Bind::Text(after.to_owned()));
        conditions.push(format!("id > ${n}"));
    }
    if let Some(status) = filter.status {
        let n = push(Bind::Text(status.as_str().to_owned()));
        conditions.push(format!("status = ${n}"));
    }
    if let Some(since) = filter.updated_since {
        let n = push(Bind::Int(since));
        conditions.push(format!("updated_at >= ${n}"));
    }
    if let Some(q) = &filter.q {
        let n = push(Bind::Text(format!("%{}%", like_escape(q))));
        conditions.push(format!("filename_lower LIKE ${n} ESCAPE '\\'"));
    }
    let n = push(Bind::Int(limit));
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM documents WHERE {} ORDER BY id LIMIT ${n}",
        conditions.join(" AND ")
    );
    let mut query = sqlx::query(&sql);
    for bind in binds {
        query = match bind {
            Bind::Text(text) => query.bind(text),
            Bind::Int(int) => query.bind(int),
        };
    }
    let rows = query.fetch_all(db.raw()).await?;
    Ok(rows
        .iter()
        .map(|row| from_row(row, false))
        .collect::<Result<_, _>>()?)
}

/// Writes the file name, metadata and corrections of `doc` if the stored row is still at
/// `expected_version`; false when it is not (nothing written).
pub async fn update_if_version(
    db: &mut impl Db,
    agent_id: &str,
    doc: &Document,
    expected_version: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE documents SET filename = $1, filename_lower = $2, metadata = $3, \
         corrections = $4, version = $5, updated_at = $6 \
         WHERE id = $7 AND agent_id = $8 AND version = $9",
    )
    .bind(&doc.filename)
    .bind(doc.filename.as_deref().map(str::to_lowercase))
    .bind(json_text(&doc.metadata)?)
    .bind(json_text(&doc.corrections)?)
    .bind(doc.version)
    .bind(doc.updated_at)
    .bind(&doc.id)
    .bind(agent_id)
    .bind(expected_version)
    .execute(db.raw())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Sets the agent's document back to `processing` for another extraction. False when the
/// document is gone.
pub async fn reset_for_extraction(
    db: &mut impl Db,
    agent_id: &str,
    id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE documents SET status = 'processing', error_code = NULL, error_message = NULL, \
         version = version + 1, updated_at = $1 WHERE id = $2 AND agent_id = $3",
    )
    .bind(now)
    .bind(id)
    .bind(agent_id)
    .execute(db.raw())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Replaces the schema the document is extracted with (`None`: none).
pub async fn set_schema(
    db: &mut impl Db,
    agent_id: &str,
    id: &str,
    schema: Option<&Value>,
) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE documents SET schema = $1 WHERE id = $2 AND agent_id = $3")
        .bind(schema.map(json_text).transpose()?)
        .bind(id)
        .bind(agent_id)
        .execute(db.raw())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Stores the outcome of an extraction on the agent's document. False when it is gone.
pub async fn set_outcome(
    db: &mut impl Db,
    agent_id: &str,
    id: &str,
    outcome: Result<&Extracted, &DocumentError>,
    now: i64,
) -> Result<bool, StoreError> {
    let done = match outcome {
        Ok(extracted) => {
            let pages: Vec<PageText> = extracted
                .pages
                .iter()
                .map(|page| PageText {
                    number: page.number,
                    ocr: page.ocr,
                    text: without_nul(&page.text),
                })
                .collect();
            sqlx::query(
                "UPDATE documents SET status = 'succeeded', error_code = NULL, \
                 error_message = NULL, page_count = $1, ocr = $2, text = $3, pages = $4, \
                 fields = $5, contacts = $6, schema_fields = $7, version = version + 1, \
                 updated_at = $8 WHERE id = $9 AND agent_id = $10",
            )
            .bind(extracted.page_count)
            .bind(i64::from(extracted.ocr))
            .bind(extracted.text.as_deref().map(without_nul))
            .bind(json_text(&pages)?)
            .bind(json_text(&extracted.fields)?)
            .bind(json_text(&extracted.contacts)?)
            .bind(json_text(&extracted.schema_fields)?)
            .bind(now)
            .bind(id)
            .bind(agent_id)
            .execute(db.raw())
            .await?
        }
        Err(error) => {
            sqlx::query(
                "UPDATE documents SET status = 'failed', error_code = $1, error_message = $2, \
                 page_count = NULL, ocr = 0, text = NULL, pages = '[]', fields = '{}', \
                 contacts = '[]', schema_fields = '{}', version = version + 1, updated_at = $3 \
                 WHERE id = $4 AND agent_id = $5",
            )
            .bind(&error.code)
            .bind(without_nul(&error.message))
            .bind(now)
            .bind(id)
            .bind(agent_id)
            .execute(db.raw())
            .await?
        }
    };
    Ok(done.rows_affected() == 1)
}

/// Deletes the agent's document with its bytes and any queued job; false when it is gone.
pub async fn delete(db: &mut impl Db, agent_id: &str, id: &str) -> Result<bool, StoreError> {
    // Also removed by the foreign keys' cascade; explicit so it never depends on that pragma.
    sqlx::query("DELETE FROM extraction_jobs WHERE document_id = $1 AND agent_id = $2")
        .bind(id)
        .bind(agent_id)
        .execute(db.raw())
        .await?;
    sqlx::query("DELETE FROM document_files WHERE document_id = $1 AND agent_id = $2")
        .bind(id)
        .bind(agent_id)
        .execute(db.raw())
        .await?;
    let done = sqlx::query("DELETE FROM documents WHERE id = $1 AND agent_id = $2")
        .bind(id)
        .bind(agent_id)
        .execute(db.raw())
        .await?;
    Ok(done.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_are_escaped_and_nul_dropped() {
        assert_eq!(like_escape("50%_off\\"), "50\\%\\_off\\\\");
        assert_eq!(without_nul("a\0b"), "ab");
    }
}
