//! Documents: uploaded files with their extracted text, fields and contacts.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Where a document's extraction stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Processing,
    Succeeded,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processing => "processing",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "processing" => Some(Self::Processing),
            "succeeded" => Some(Self::Succeeded),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// Why an extraction failed: a stable code and a sentence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentError {
    pub code: String,
    pub message: String,
}

/// The text of one page (1-based) and whether OCR read it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PageText {
    pub number: u32,
    pub ocr: bool,
    pub text: String,
}

/// What an extraction produced, as stored.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Extracted {
    pub page_count: Option<i64>,
    pub text: Option<String>,
    pub ocr: bool,
    pub pages: Vec<PageText>,
    /// SPEC's `fields` object: category → entries.
    pub fields: Map<String, Value>,
    /// SPEC's `contacts` entries.
    pub contacts: Vec<Value>,
    pub schema_fields: Map<String, Value>,
}

/// Corrections made by people or clients: kept apart from what extraction found, so that a
/// re-extraction leaves them in place.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Corrections {
    /// Whole categories of `fields` replaced (`emails`, `amounts`, …).
    #[serde(default)]
    pub fields: Map<String, Value>,
    /// Single `schema_fields` values replaced.
    #[serde(default)]
    pub schema_fields: Map<String, Value>,
}

/// A stored document, without its bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    pub id: String,
    pub filename: Option<String>,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub status: Status,
    pub error: Option<DocumentError>,
    pub extracted: Extracted,
    /// The client's extraction schema, as sent.
    pub schema: Option<Value>,
    pub corrections: Corrections,
    pub metadata: Map<String, Value>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// How much of a document a response shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    /// Lists: no `text`, no pages.
    Summary,
    /// One document: `text`, and per page its number and OCR flag.
    Full,
    /// The dashboard's view: also the text of each page.
    WithPages,
}

#[derive(Serialize)]
struct PageView<'a> {
    number: u32,
    ocr: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
}

/// Which values are corrections rather than what extraction found.
#[derive(Serialize)]
struct Edited {
    fields: Vec<String>,
    schema_fields: Vec<String>,
}

/// A document in the contract's shape: extracted values with the corrections laid over them.
#[derive(Serialize)]
pub struct DocumentView<'a> {
    id: &'a str,
    filename: &'a Option<String>,
    content_type: &'a str,
    size_bytes: i64,
    sha256: &'a str,
    status: Status,
    error: &'a Option<DocumentError>,
    page_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    ocr: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pages: Option<Vec<PageView<'a>>>,
    fields: Map<String, Value>,
    contacts: &'a [Value],
    schema_fields: Map<String, Value>,
    edited: Edited,
    metadata: &'a Map<String, Value>,
    version: i64,
    #[serde(with = "super::time::rfc3339")]
    created_at: i64,
    #[serde(with = "super::time::rfc3339")]
    updated_at: i64,
}

impl Document {
    /// `fields` as shown: each corrected category replaces the extracted one.
    pub fn fields(&self) -> Map<String, Value> {
        let mut fields = self.extracted.fields.clone();
        for (category, value) in &self.corrections.fields {
            fields.insert(category.clone(), value.clone());
        }
        fields
    }

    /// `schema_fields` as shown: each corrected value replaces the extracted one.
    pub fn schema_fields(&self) -> Map<String, Value> {
        let mut values = self.extracted.schema_fields.clone();
        for (name, value) in &self.corrections.schema_fields {
            values.insert(name.clone(), value.clone());
        }
        values
    }

    /// A short label for audit events: the file name, else the id.
    pub fn label(&self) -> &str {
        self.filename.as_deref().unwrap_or(&self.id)
    }

    pub fn view(&self, detail: Detail) -> DocumentView<'_> {
        let pages = match detail {
            Detail::Summary => None,
            Detail::Full | Detail::WithPages => Some(
                self.extracted
                    .pages
                    .iter()
                    .map(|page| PageView {
                        number: page.number,
                        ocr: page.ocr,
                        text: (detail == Detail::WithPages).then_some(page.text.as_str()),
                    })
                    .collect(),
            ),
        };
        DocumentView {
            id: &self.id,
            filename: &self.filename,
            content_type: &self.content_type,
            size_bytes: self.size_bytes,
            sha256: &self.sha256,
            status: self.status,
            error: &self.error,
            page_count: self.extracted.page_count,
            text: match detail {
                Detail::Summary => None,
                Detail::Full | Detail::WithPages => {
                    Some(self.extracted.text.as_deref().unwrap_or_default())
                }
            },
            ocr: self.extracted.ocr,
            pages,
            fields: self.fields(),
            contacts: &self.extracted.contacts,
            schema_fields: self.schema_fields(),
            edited: Edited {
                fields: self.corrections.fields.keys().cloned().collect(),
                schema_fields: self.corrections.schema_fields.keys().cloned().collect(),
            },
            metadata: &self.metadata,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// Validated list filters.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DocumentFilter {
    pub status: Option<Status>,
    /// Lowercased substring of the file name.
    pub q: Option<String>,
    pub updated_since: Option<i64>,
}

/// Who asked for an extraction, kept with a queued job so that the contacts it writes are
/// recorded as that actor's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobActor {
    pub kind: String,
    pub id: Option<String>,
    pub label: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A claimed extraction job: run it, then finish it with its lease token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: String,
    pub document_id: String,
    pub agent_id: String,
    pub attempts: i64,
    pub lease_token: String,
    pub create_contacts: bool,
    pub actor: JobActor,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn document() -> Document {
        let mut fields = Map::new();
        fields.insert("emails".into(), json!([{"value": "a@b.co", "page": 1}]));
        fields.insert("urls".into(), json!([]));
        let mut schema_fields = Map::new();
        schema_fields.insert("total".into(), json!("10.00"));
        schema_fields.insert("invoice_number".into(), Value::Null);
        Document {
            id: "doc_1".into(),
            filename: Some("a.txt".into()),
            content_type: "text/plain".into(),
            size_bytes: 3,
            sha256: "ab".into(),
            status: Status::Succeeded,
            error: None,
            extracted: Extracted {
                page_count: Some(1),
                text: Some("abc".into()),
                ocr: false,
                pages: vec![PageText {
                    number: 1,
                    ocr: false,
                    text: "abc".into(),
                }],
                fields,
                contacts: vec![],
                schema_fields,
            },
            schema: None,
            corrections: Corrections::default(),
            metadata: Map::new(),
            version: 1,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn corrections_lie_over_what_was_found_and_are_marked() {
        let mut doc = document();
        doc.corrections
            .fields
            .insert("emails".into(), json!([{"value": "c@d.co", "page": 1}]));
        doc.corrections
            .schema_fields
            .insert("invoice_number".into(), json!("INV-1"));
        let view = serde_json::to_value(doc.view(Detail::Full)).unwrap();
        assert_eq!(view["fields"]["emails"][0]["value"], "c@d.co");
        assert_eq!(view["fields"]["urls"], json!([]));
        assert_eq!(view["schema_fields"]["invoice_number"], "INV-1");
        assert_eq!(view["schema_fields"]["total"], "10.00");
        assert_eq!(view["edited"]["fields"], json!(["emails"]));
        assert_eq!(view["edited"]["schema_fields"], json!(["invoice_number"]));
        assert_eq!(view["text"], "abc");
        assert_eq!(view["pages"], json!([{"number": 1, "ocr": false}]));
    }

    #[test]
    fn summaries_leave_out_the_text() {
        let view = serde_json::to_value(document().view(Detail::Summary)).unwrap();
        assert!(view.get("text").is_none());
        assert!(view.get("pages").is_none());
        let full = serde_json::to_value(document().view(Detail::WithPages)).unwrap();
        assert_eq!(full["pages"][0]["text"], "abc");
    }
}
