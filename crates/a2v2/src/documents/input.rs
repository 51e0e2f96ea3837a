//! What clients send about a document: the file name, `metadata`, the extraction `schema`,
//! and PATCH bodies with corrections. Every problem is reported at once, by field.

use a2v2_extract::{Amount, Found, KeyValue, Schema};
use serde_json::{Map, Value};

use crate::{
    model::FieldErrors,
    validate::{self, FromBody},
};

pub const FILENAME_MAX: usize = 255;
pub const METADATA_KEYS_MAX: usize = 50;
pub const METADATA_KEY_MAX: usize = 64;
pub const METADATA_VALUE_MAX: usize = 1_000;
/// Entries one corrected `fields` category may hold.
pub const CORRECTION_ENTRIES_MAX: usize = 1_000;
pub const SCHEMA_FIELDS_MAX: usize = 100;
pub const SCHEMA_VALUE_MAX: usize = 1_000;

/// The categories of `fields` (SPEC §3).
pub const FIELD_CATEGORIES: [&str; 6] =
    ["emails", "phones", "urls", "dates", "amounts", "key_values"];

/// A file name as kept: the last path component, trimmed; `None` when nothing is left.
/// Control characters and an over-long name are refused.
pub fn filename(text: &str) -> Result<Option<String>, String> {
    let base = text.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    if base.is_empty() {
        return Ok(None);
    }
    match validate::text_error(base, FILENAME_MAX, false) {
        Some(err) => Err(err),
        None if base.contains(['\n', '\t']) => Err("must not contain control characters".into()),
        None => Ok(Some(base.to_owned())),
    }
}

/// `metadata`: an object of at most 50 keys whose values are strings, numbers or booleans.
pub fn metadata(value: &Value) -> Result<Map<String, Value>, String> {
    let Value::Object(map) = value else {
        return Err("must be an object".into());
    };
    if map.len() > METADATA_KEYS_MAX {
        return Err(format!("must have at most {METADATA_KEYS_MAX} keys"));
    }
    for (key, value) in map {
        if key.is_empty()
            || key.chars().count() > METADATA_KEY_MAX
            || key.chars().any(char::is_control)
        {
            return Err(format!(
                "keys must be 1–{METADATA_KEY_MAX} characters without control characters"
            ));
        }
        match value {
            Value::String(text) if text.chars().count() > METADATA_VALUE_MAX => {
                return Err(format!(
                    "values must be at most {METADATA_VALUE_MAX} characters"
                ));
            }
            Value::String(text) if text.contains('\0') => {
                return Err("values must not contain NUL characters".into());
            }
            Value::String(_) | Value::Number(_) | Value::Bool(_) => {}
            _ => return Err("values must be strings, numbers or booleans".into()),
        }
    }
    Ok(map.clone())
}

/// The `schema` part: the parsed schema and the JSON as sent (kept for re-extraction).
pub fn schema(bytes: &[u8]) -> Result<(Schema, Value), String> {
    let schema = Schema::parse(bytes)?;
    let value = serde_json::from_slice(bytes).map_err(|_| "must be a JSON object".to_owned())?;
    Ok((schema, value))
}

/// One corrected category of `fields`: its entries checked against the category's shape and
/// written back in it. `null` takes the correction back.
fn correction(category: &str, value: &Value) -> Result<Value, String> {
    let Value::Array(entries) = value else {
        return Err("must be an array of entries, or null to take the correction back".into());
    };
    if entries.len() > CORRECTION_ENTRIES_MAX {
        return Err(format!(
            "must have at most {CORRECTION_ENTRIES_MAX} entries"
        ));
    }
    fn reshape<T: serde::de::DeserializeOwned + serde::Serialize>(
        value: &Value,
        shape: &str,
    ) -> Result<Value, String> {
        let typed: Vec<T> = serde_json::from_value(value.clone())
            .map_err(|_| format!("entries must look like {shape}"))?;
        serde_json::to_value(typed).map_err(|err| err.to_string())
    }
    match category {
        "amounts" => {
            reshape::<Amount>(value, r#"{"value": "12.50", "currency": "EUR", "page": 1}"#)
        }
        "key_values" => reshape::<KeyValue>(
            value,
            r#"{"key": "Invoice Number", "value": "INV-1", "page": 1}"#,
        ),
        _ => reshape::<Found>(value, r#"{"value": "…", "page": 1}"#),
    }
}

/// A PATCH of a document: each `Some` is a change.
#[derive(Debug, Default, PartialEq)]
pub struct DocumentPatch {
    /// `Some(None)` clears the file name.
    pub filename: Option<Option<String>>,
    pub metadata: Option<Map<String, Value>>,
    /// Corrected categories; `None` takes a category's correction back.
    pub fields: Map<String, Value>,
    /// Corrected schema values (`null` included: "not in the document").
    pub schema_fields: Map<String, Value>,
}

impl FromBody for DocumentPatch {
    const FIELDS: &'static [&'static str] = &["filename", "metadata", "fields", "schema_fields"];
    const READ_ONLY: &'static [&'static str] = &[
        "id",
        "content_type",
        "size_bytes",
        "sha256",
        "status",
        "error",
        "page_count",
        "text",
        "ocr",
        "pages",
        "contacts",
        "edited",
        "version",
        "created_at",
        "updated_at",
    ];

    fn from_body(body: &Map<String, Value>, errors: &mut FieldErrors) -> Option<Self> {
        let mut patch = Self::default();
        match body.get("filename") {
            None => {}
            Some(Value::Null) => patch.filename = Some(None),
            Some(Value::String(text)) => match filename(text) {
                Ok(name) => patch.filename = Some(name),
                Err(err) => {
                    errors.insert("filename".into(), err);
                }
            },
            Some(_) => {
                errors.insert("filename".into(), "must be a string or null".into());
            }
        }
        match body.get("metadata") {
            None => {}
            Some(Value::Null) => patch.metadata = Some(Map::new()),
            Some(value) => match metadata(value) {
                Ok(map) => patch.metadata = Some(map),
                Err(err) => {
                    errors.insert("metadata".into(), err);
                }
            },
        }
        match body.get("fields") {
            None => {}
            Some(Value::Object(map)) => {
                for (category, value) in map {
                    let name = format!("fields.{}", validate::echo(category));
                    if !FIELD_CATEGORIES.contains(&category.as_str()) {
                        errors.insert(
                            name,
                            format!(
                                "is not a category; use one of {}",
                                FIELD_CATEGORIES.join(", ")
                            ),
                        );
                    } else if value.is_null() {
                        patch.fields.insert(category.clone(), Value::Null);
                    } else {
                        match correction(category, value) {
                            Ok(entries) => {
                                patch.fields.insert(category.clone(), entries);
                            }
                            Err(err) => {
                                errors.insert(name, err);
                            }
                        }
                    }
                }
            }
            Some(_) => {
                errors.insert("fields".into(), "must be an object".into());
            }
        }
        match body.get("schema_fields") {
            None => {}
            Some(Value::Object(map)) if map.len() > SCHEMA_FIELDS_MAX => {
                errors.insert(
                    "schema_fields".into(),
                    format!("must have at most {SCHEMA_FIELDS_MAX} entries"),
                );
            }
            Some(Value::Object(map)) => {
                for (name, value) in map {
                    let field = format!("schema_fields.{}", validate::echo(name));
                    if name.is_empty() || name.chars().count() > METADATA_KEY_MAX {
                        errors.insert(
                            field,
                            format!("names must be 1–{METADATA_KEY_MAX} characters"),
                        );
                        continue;
                    }
                    match value {
                        Value::String(text)
                            if text.chars().count() > SCHEMA_VALUE_MAX || text.contains('\0') =>
                        {
                            errors.insert(
                                field,
                                format!("must be at most {SCHEMA_VALUE_MAX} characters"),
                            );
                        }
                        Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null => {
                            patch.schema_fields.insert(name.clone(), value.clone());
                        }
                        _ => {
                            errors
                                .insert(field, "must be a string, number, boolean or null".into());
                        }
                    }
                }
            }
            Some(_) => {
                errors.insert("schema_fields".into(), "must be an object".into());
            }
        }
        Some(patch)
    }
}

/// The optional body of `POST …/extract`: a `schema` to extract with from now on, or `null`
/// to extract without one.
#[derive(Debug, Default)]
pub struct ExtractAgain {
    /// `Some(None)` drops the stored schema.
    pub schema: Option<Option<(Schema, Value)>>,
}

impl FromBody for ExtractAgain {
    const FIELDS: &'static [&'static str] = &["schema"];

    fn from_body(body: &Map<String, Value>, errors: &mut FieldErrors) -> Option<Self> {
        let schema = match body.get("schema") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(value @ Value::Object(_)) => {
                let json = serde_json::to_vec(value).unwrap_or_default();
                match Schema::parse(&json) {
                    Ok(parsed) => Some(Some((parsed, value.clone()))),
                    Err(err) => {
                        errors.insert("schema".into(), err);
                        None
                    }
                }
            }
            Some(_) => {
                errors.insert(
                    "schema".into(),
                    "must be an object such as {\"fields\": [{\"name\": \"total\", \"type\": \"money\"}]}, or null".into(),
                );
                None
            }
        };
        Some(Self { schema })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn extraction_again_takes_a_schema_or_null() {
        let body = json!({"schema": {"fields": [{"name": "total", "type": "money"}]}});
        let again: ExtractAgain = validate::parse(body.as_object().unwrap()).unwrap();
        let (_, value) = again.schema.unwrap().unwrap();
        assert_eq!(value["fields"][0]["name"], "total");
        let again: ExtractAgain = parse_again(json!({"schema": null})).unwrap();
        assert!(matches!(again.schema, Some(None)));
        assert!(parse_again(json!({})).unwrap().schema.is_none());
        for bad in [
            json!({"schema": {"fields": []}}),
            json!({"schema": {"fields": [{"name": "x", "type": "colour"}]}}),
            json!({"schema": "total"}),
        ] {
            let errors = parse_again(bad.clone()).unwrap_err();
            assert!(errors.contains_key("schema"), "{bad}: {errors:?}");
        }
        assert!(
            parse_again(json!({"fields": []}))
                .unwrap_err()
                .contains_key("fields")
        );
    }

    fn parse_again(body: Value) -> Result<ExtractAgain, FieldErrors> {
        validate::parse(body.as_object().unwrap())
    }

    fn parse(body: Value) -> Result<DocumentPatch, FieldErrors> {
        validate::parse(body.as_object().unwrap())
    }

    #[test]
    fn file_names_keep_their_last_component() {
        assert_eq!(
            filename("C:\\scans\\a.pdf").unwrap().as_deref(),
            Some("a.pdf")
        );
        assert_eq!(
            filename("../../etc/passwd").unwrap().as_deref(),
            Some("passwd")
        );
        assert_eq!(filename(" / ").unwrap(), None);
        assert!(filename("a\u{7}.pdf").is_err());
        assert!(filename(&"x".repeat(256)).is_err());
    }

    #[test]
    fn metadata_is_a_flat_small_object() {
        assert!(metadata(&json!({"source": "mail", "n": 3, "ok": true})).is_ok());
        assert!(metadata(&json!([1])).is_err());
        assert!(metadata(&json!({"nested": {"a": 1}})).is_err());
        let many: Map<String, Value> = (0..51).map(|i| (format!("k{i}"), json!(i))).collect();
        assert!(metadata(&Value::Object(many)).is_err());
    }

    #[test]
    fn corrections_are_checked_by_category() {
        let patch = parse(json!({
            "fields": {
                "emails": [{"value": "a@b.co", "page": 1}],
                "amounts": [{"value": "10.00", "currency": "EUR", "page": 2}],
                "urls": null
            },
            "schema_fields": {"total": "10.00", "invoice_number": null}
        }))
        .unwrap();
        assert_eq!(patch.fields["emails"][0]["value"], "a@b.co");
        assert_eq!(patch.fields["urls"], Value::Null);
        assert_eq!(patch.schema_fields["invoice_number"], Value::Null);
        let errors = parse(json!({
            "fields": {"colours": [], "emails": [{"page": 1}], "dates": "2020"},
            "schema_fields": {"x": [1]},
            "status": "succeeded"
        }))
        .unwrap_err();
        for name in [
            "fields.colours",
            "fields.emails",
            "fields.dates",
            "schema_fields.x",
            "status",
        ] {
            assert!(errors.contains_key(name), "{name}: {errors:?}");
        }
    }
}
