//! Contacts: each agent's CRM records.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

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
}

/// Validated list filters.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ContactFilter {
    /// Lowercased substring of names, email or company.
    pub q: Option<String>,
    pub email_lower: Option<String>,
    pub tag: Option<String>,
    pub updated_since: Option<i64>,
}
