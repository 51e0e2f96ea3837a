//! Contacts: each agent's CRM records.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::audit::ActorRef;

/// The stored, validated values of a contact.
#[derive(Clone, Debug, Default, PartialEq, Serialize, ToSchema)]
pub struct ContactFields {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub phone_e164: Option<String>,
    pub company: Option<String>,
    pub job_title: Option<String>,
    pub notes: Option<String>,
    pub tags: Vec<String>,
    /// Values are strings, numbers or booleans.
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
}

impl ContactFields {
    /// `email` lowercased: the key of the per-agent uniqueness rule and of the `email` filter.
    pub fn email_lower(&self) -> Option<String> {
        self.email.as_deref().map(str::to_lowercase)
    }

    /// What the `q` filter searches: "first last", email and company, lowercased.
    pub fn search_text(&self) -> String {
        let part = |v: &Option<String>| v.as_deref().unwrap_or_default().to_lowercase();
        format!(
            "{} {}\n{}\n{}",
            part(&self.first_name),
            part(&self.last_name),
            part(&self.email),
            part(&self.company)
        )
    }

    /// A short human label for audit events: the name, else the email, else the phone.
    pub fn label(&self) -> String {
        let name = [&self.first_name, &self.last_name]
            .iter()
            .filter_map(|v| v.as_deref())
            .collect::<Vec<_>>()
            .join(" ");
        if !name.is_empty() {
            return name;
        }
        self.email
            .clone()
            .or_else(|| self.phone.clone())
            .unwrap_or_default()
    }
}

/// A stored contact, as the API returns it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Contact {
    pub id: String,
    #[serde(flatten)]
    pub fields: ContactFields,
    pub version: i64,
    #[serde(with = "super::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(with = "super::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
    /// Who created it: the API key, member or command line (`{type, id, label}`).
    pub created_by: ActorRef,
    /// Who changed it last (the creator until the first change).
    pub updated_by: ActorRef,
}

/// Validated list filters.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ContactFilter {
    /// Lowercased substring of names, email or company.
    pub q: Option<String>,
    pub email_lower: Option<String>,
    pub tag: Option<String>,
    pub updated_since: Option<i64>,
    /// Only contacts created or last changed by this actor id (an API key or member).
    pub written_by: Option<String>,
}

/// A row of an import that was not written, and why (rows count from 1 after the header).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct SkippedRow {
    pub row: u64,
    pub reason: String,
}

/// Where a column of an imported file goes: a field such as `email`, `attributes.<name>`,
/// `first_name + last_name` (a full name), `attributes` (a JSON object) or `ignored`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct ColumnMapping {
    pub header: String,
    pub field: String,
}

/// A CSV import and its report, as far as it has got.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ContactImport {
    pub id: String,
    pub agent_id: String,
    /// `running`, `done` or `failed`.
    pub state: String,
    /// `skip` or `update`: what a row whose email is taken does.
    pub on_duplicate: String,
    pub encoding: String,
    pub columns: Vec<ColumnMapping>,
    pub total_rows: u64,
    pub processed_rows: u64,
    pub created: u64,
    pub updated: u64,
    /// Rows whose contact already held every value of the row.
    pub unchanged: u64,
    /// Rows skipped so far.
    pub skipped_count: u64,
    /// Each skipped row and why; complete once the import has ended.
    pub skipped: Vec<SkippedRow>,
    /// Why a `failed` import stopped.
    pub error: Option<String>,
    pub created_by: ActorRef,
    #[serde(with = "super::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(with = "super::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}
