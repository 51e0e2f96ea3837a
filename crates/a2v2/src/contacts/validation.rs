//! Validation of contact input: every field error is collected at once.
//!
//! Rules (SPEC §3 Contacts):
//! - Known writable fields: `first_name`, `last_name`, `email`, `phone`, `company`,
//!   `job_title`, `notes`, `tags`, `attributes`. `id`, `version`, `created_at`, `updated_at`
//!   and `phone_e164` are read-only; anything else is "not a known field".
//! - Text is counted in Unicode scalar values: ≤ 255, `notes` ≤ 10,000. Text fields are trimmed
//!   and an empty string is the same as `null`. Control characters are refused, except line
//!   feeds and tabs in `notes` (where `\r\n` is stored as `\n`).
//! - `tags`: ≤ 50 non-empty strings of ≤ 255 characters, trimmed; duplicates are dropped,
//!   keeping the first occurrence. `null` means no tags.
//! - `attributes`: ≤ 100 entries; keys 1–255 characters; values a string (≤ 255), a number or
//!   a boolean. `null` means no attributes. A PATCH replaces the whole object.
//! - `phone`: see [`parse_phone`].

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::{
    model::{FieldErrors, contact::ContactFields},
    validate::{FromBody, echo, email_error},
};

pub const TEXT_MAX: usize = 255;
pub const NOTES_MAX: usize = 10_000;
pub const TAGS_MAX: usize = 50;
pub const ATTRIBUTES_MAX: usize = 100;
/// Phone numbers must have this many digits.
pub const PHONE_DIGITS: std::ops::RangeInclusive<usize> = 5..=20;
/// At most this many errors about items of one list or object are reported.
const ITEM_ERRORS_MAX: usize = 10;

const READ_ONLY: [&str; 5] = ["id", "version", "created_at", "updated_at", "phone_e164"];

/// The fields that name a person; a contact needs at least one of them.
pub const IDENTITY_FIELDS: [&str; 4] = ["first_name", "last_name", "email", "phone"];

/// A validated phone number: as written, and in E.164 when it could be normalised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phone {
    pub display: String,
    pub e164: Option<String>,
}

/// Validated changes: `None` leaves a field alone, `Some(None)` clears it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContactPatch {
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub phone: Option<Option<Phone>>,
    pub company: Option<Option<String>>,
    pub job_title: Option<Option<String>>,
    pub notes: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    pub attributes: Option<Map<String, Value>>,
}

/// Why `text` breaks the length or character rules, if it does.
fn text_problem(text: &str, max: usize, multiline: bool) -> Option<String> {
    if text.chars().count() > max {
        return Some(format!("must be at most {max} characters"));
    }
    let allowed = |c: char| multiline && (c == '\n' || c == '\t');
    if text.chars().any(|c| c.is_control() && !allowed(c)) {
        return Some(if multiline {
            "must not contain control characters other than line feeds and tabs".into()
        } else {
            "must not contain control characters".into()
        });
    }
    None
}

/// A nullable text field; `None` when it has an error (recorded in `errors`).
fn text(errors: &mut FieldErrors, name: &str, value: &Value, max: usize) -> Option<Option<String>> {
    match value {
        Value::Null => Some(None),
        Value::String(raw) => {
            let multiline = name == "notes";
            let text = if multiline {
                raw.replace("\r\n", "\n").trim().to_owned()
            } else {
                raw.trim().to_owned()
            };
            match text_problem(&text, max, multiline) {
                Some(problem) => {
                    errors.insert(name.to_owned(), problem);
                    None
                }
                None => Some(Some(text).filter(|t| !t.is_empty())),
            }
        }
        _ => {
            errors.insert(name.to_owned(), "must be a string or null".into());
            None
        }
    }
}

/// Validates a phone number.
///
/// A number written with a leading `+` is international: it must be a valid number for its
/// country code (per libphonenumber's metadata) and is returned normalised in E.164. A number
/// without `+` has no country to interpret it in (the API takes no default region), so it is
/// accepted as written when it looks like a phone number — only digits, spaces and `-().`,
/// 5–20 digits — and `phone_e164` stays null.
pub fn parse_phone(text: &str) -> Result<Phone, &'static str> {
    let shape_ok = text.char_indices().all(|(i, c)| {
        c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')' | '.') || (c == '+' && i == 0)
    });
    if !shape_ok {
        return Err(
            "must be a phone number such as +14155550123, using only digits, spaces, \
                    a leading +, and - ( ) .",
        );
    }
    let digits = text.chars().filter(char::is_ascii_digit).count();
    if !PHONE_DIGITS.contains(&digits) {
        return Err("must have between 5 and 20 digits");
    }
    if !text.starts_with('+') {
        return Ok(Phone {
            display: text.to_owned(),
            e164: None,
        });
    }
    // The parser is third-party code fed user input: a panic there must not take the
    // request down with it.
    let parsed = std::panic::catch_unwind(|| {
        let number = phonenumber::parse(None, text).ok()?;
        phonenumber::is_valid(&number)
            .then(|| number.format().mode(phonenumber::Mode::E164).to_string())
    })
    .ok()
    .flatten();
    match parsed {
        Some(e164) => Ok(Phone {
            display: text.to_owned(),
            e164: Some(e164),
        }),
        None => Err(
            "is not a valid international phone number; check the country code and \
                     the number of digits",
        ),
    }
}

fn phone(errors: &mut FieldErrors, value: &Value) -> Option<Option<Phone>> {
    let text = text(errors, "phone", value, TEXT_MAX)?;
    match text.as_deref().map(parse_phone) {
        None => Some(None),
        Some(Ok(phone)) => Some(Some(phone)),
        Some(Err(problem)) => {
            errors.insert("phone".into(), problem.into());
            None
        }
    }
}

fn email(errors: &mut FieldErrors, value: &Value) -> Option<Option<String>> {
    let text = text(errors, "email", value, TEXT_MAX)?;
    match text.as_deref().and_then(email_error) {
        Some(problem) => {
            errors.insert("email".into(), problem.into());
            None
        }
        None => Some(text),
    }
}

fn tags(errors: &mut FieldErrors, value: &Value) -> Option<Vec<String>> {
    let items = match value {
        Value::Null => return Some(Vec::new()),
        Value::Array(items) => items,
        _ => {
            errors.insert("tags".into(), "must be an array of strings".into());
            return None;
        }
    };
    let mut tags = Vec::new();
    let mut seen = BTreeSet::new();
    let mut item_errors = 0;
    for (i, item) in items.iter().enumerate() {
        let problem = match item {
            Value::String(raw) => {
                let tag = raw.trim();
                if tag.is_empty() {
                    Some("must not be empty".to_owned())
                } else if let Some(problem) = text_problem(tag, TEXT_MAX, false) {
                    Some(problem)
                } else {
                    if seen.insert(tag.to_owned()) {
                        tags.push(tag.to_owned());
                    }
                    None
                }
            }
            _ => Some("must be a string".to_owned()),
        };
        if let Some(problem) = problem {
            item_errors += 1;
            if item_errors <= ITEM_ERRORS_MAX {
                errors.insert(format!("tags[{i}]"), problem);
            }
        }
    }
    if tags.len() > TAGS_MAX {
        errors.insert("tags".into(), format!("must have at most {TAGS_MAX} tags"));
        return None;
    }
    (item_errors == 0).then_some(tags)
}

fn attributes(errors: &mut FieldErrors, value: &Value) -> Option<Map<String, Value>> {
    let object = match value {
        Value::Null => return Some(Map::new()),
        Value::Object(object) => object,
        _ => {
            errors.insert(
                "attributes".into(),
                "must be an object of strings, numbers and booleans".into(),
            );
            return None;
        }
    };
    if object.len() > ATTRIBUTES_MAX {
        errors.insert(
            "attributes".into(),
            format!("must have at most {ATTRIBUTES_MAX} entries"),
        );
        return None;
    }
    let mut item_errors = 0;
    for (key, value) in object {
        let problem = if key.trim().is_empty() {
            Some("names must not be empty".to_owned())
        } else if let Some(problem) = text_problem(key, TEXT_MAX, false) {
            Some(format!("name {problem}"))
        } else {
            match value {
                Value::String(text) => text_problem(text, TEXT_MAX, false),
                Value::Number(_) | Value::Bool(_) => None,
                _ => Some("must be a string, a number or a boolean".to_owned()),
            }
        };
        if let Some(problem) = problem {
            item_errors += 1;
            if item_errors <= ITEM_ERRORS_MAX {
                errors.insert(format!("attributes.{}", echo(key)), problem);
            }
        }
    }
    (item_errors == 0).then(|| object.clone())
}

impl FromBody for ContactPatch {
    const FIELDS: &'static [&'static str] = &[
        "first_name",
        "last_name",
        "email",
        "phone",
        "company",
        "job_title",
        "notes",
        "tags",
        "attributes",
    ];
    const READ_ONLY: &'static [&'static str] = &READ_ONLY;

    fn from_body(body: &Map<String, Value>, errors: &mut FieldErrors) -> Option<Self> {
        let mut patch = ContactPatch::default();
        for (name, value) in body {
            let e = &mut *errors;
            match name.as_str() {
                "first_name" => patch.first_name = text(e, name, value, TEXT_MAX),
                "last_name" => patch.last_name = text(e, name, value, TEXT_MAX),
                "company" => patch.company = text(e, name, value, TEXT_MAX),
                "job_title" => patch.job_title = text(e, name, value, TEXT_MAX),
                "notes" => patch.notes = text(e, name, value, NOTES_MAX),
                "email" => patch.email = email(e, value),
                "phone" => patch.phone = phone(e, value),
                "tags" => patch.tags = tags(e, value),
                "attributes" => patch.attributes = attributes(e, value),
                _ => {}
            }
        }
        Some(patch)
    }
}

/// The fields of a new contact: a patch applied to nothing, naming someone.
pub struct NewContact(pub ContactFields);

impl FromBody for NewContact {
    const FIELDS: &'static [&'static str] = ContactPatch::FIELDS;
    const READ_ONLY: &'static [&'static str] = ContactPatch::READ_ONLY;

    fn from_body(body: &Map<String, Value>, errors: &mut FieldErrors) -> Option<Self> {
        let patch = ContactPatch::from_body(body, errors)?;
        if !errors.is_empty() {
            return None;
        }
        let mut fields = ContactFields::default();
        fields.apply(&patch);
        match fields.identity_error() {
            Some(identity) => {
                errors.extend(identity);
                None
            }
            None => Some(Self(fields)),
        }
    }
}

/// Validates a PATCH body, reporting every field error at once.
pub fn parse_patch(body: &Map<String, Value>) -> Result<ContactPatch, FieldErrors> {
    crate::validate::parse(body)
}

/// Validates a create body into the fields of a new contact.
pub fn new_fields(body: &Map<String, Value>) -> Result<ContactFields, FieldErrors> {
    crate::validate::parse::<NewContact>(body).map(|new| new.0)
}

impl ContactFields {
    /// Applies `patch`; returns the names of the fields whose value changed.
    pub fn apply(&mut self, patch: &ContactPatch) -> Vec<&'static str> {
        fn set<T: PartialEq + Clone>(
            changed: &mut Vec<&'static str>,
            name: &'static str,
            slot: &mut T,
            value: &Option<T>,
        ) {
            if let Some(value) = value
                && slot != value
            {
                *slot = value.clone();
                changed.push(name);
            }
        }
        let mut changed = Vec::new();
        set(
            &mut changed,
            "first_name",
            &mut self.first_name,
            &patch.first_name,
        );
        set(
            &mut changed,
            "last_name",
            &mut self.last_name,
            &patch.last_name,
        );
        set(&mut changed, "email", &mut self.email, &patch.email);
        if let Some(phone) = &patch.phone {
            let display = phone.as_ref().map(|p| p.display.clone());
            let e164 = phone.as_ref().and_then(|p| p.e164.clone());
            if self.phone != display || self.phone_e164 != e164 {
                self.phone = display;
                self.phone_e164 = e164;
                changed.push("phone");
            }
        }
        set(&mut changed, "company", &mut self.company, &patch.company);
        set(
            &mut changed,
            "job_title",
            &mut self.job_title,
            &patch.job_title,
        );
        set(&mut changed, "notes", &mut self.notes, &patch.notes);
        set(&mut changed, "tags", &mut self.tags, &patch.tags);
        set(
            &mut changed,
            "attributes",
            &mut self.attributes,
            &patch.attributes,
        );
        changed
    }

    /// The error when the contact names nobody: no first or last name, email or phone.
    pub fn identity_error(&self) -> Option<FieldErrors> {
        let named = [&self.first_name, &self.last_name, &self.email, &self.phone]
            .iter()
            .any(|v| v.is_some());
        (!named).then(|| {
            IDENTITY_FIELDS
                .iter()
                .map(|name| {
                    (
                        (*name).to_owned(),
                        "is required: set at least one of first_name, last_name, email or phone"
                            .to_owned(),
                    )
                })
                .collect()
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    fn errors_of(value: Value) -> FieldErrors {
        new_fields(&object(value)).expect_err("should be refused")
    }

    #[test]
    fn accepts_a_full_contact() {
        let fields = new_fields(&object(json!({
            "first_name": "  Ada ",
            "last_name": "Lovelace",
            "email": "Ada@Example.com",
            "phone": "+44 20 7946 0958",
            "company": "Analytical Engines",
            "job_title": null,
            "notes": "line one\r\nline two\twith tab",
            "tags": ["vip", " vip ", "math"],
            "attributes": {"score": 9.5, "active": true, "tier": "gold"},
        })))
        .unwrap();
        assert_eq!(fields.first_name.as_deref(), Some("Ada"));
        assert_eq!(fields.email_lower().as_deref(), Some("ada@example.com"));
        assert_eq!(fields.phone_e164.as_deref(), Some("+442079460958"));
        assert_eq!(
            fields.notes.as_deref(),
            Some("line one\nline two\twith tab")
        );
        assert_eq!(fields.tags, vec!["vip", "math"]);
        assert_eq!(fields.job_title, None);
        assert_eq!(fields.label(), "Ada Lovelace");
        assert!(fields.search_text().contains("ada lovelace"));
    }

    #[test]
    fn needs_someone_to_name() {
        let errors = errors_of(json!({"company": "Acme", "first_name": "  "}));
        for name in IDENTITY_FIELDS {
            assert!(errors.contains_key(name), "{errors:?}");
        }
        assert!(new_fields(&object(json!({"phone": "555 0100"}))).is_ok());
    }

    #[test]
    fn collects_every_error_at_once() {
        let errors = errors_of(json!({
            "first_name": 5,
            "email": "nope",
            "phone": "call me",
            "notes": "x".repeat(NOTES_MAX + 1),
            "company": "a\u{7}b",
            "tags": "vip",
            "attributes": {"nested": {"a": 1}},
            "colour": "blue",
            "version": 3,
        }));
        let keys: Vec<&str> = errors.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "attributes.nested",
                "colour",
                "company",
                "email",
                "first_name",
                "notes",
                "phone",
                "tags",
                "version"
            ]
        );
        assert_eq!(errors["colour"], "is not a known field");
        assert_eq!(errors["notes"], "must be at most 10000 characters");
    }

    #[test]
    fn limits_are_inclusive() {
        let at_limit = json!({
            "first_name": "é".repeat(TEXT_MAX),
            "notes": "n".repeat(NOTES_MAX),
            "tags": (0..TAGS_MAX).map(|i| format!("t{i}")).collect::<Vec<_>>(),
            "attributes": (0..ATTRIBUTES_MAX).map(|i| (format!("k{i}"), json!(i))).collect::<Map<_, _>>(),
        });
        assert!(new_fields(&object(at_limit)).is_ok());
        let over = json!({
            "first_name": "é".repeat(TEXT_MAX + 1),
            "tags": (0..=TAGS_MAX).map(|i| format!("t{i}")).collect::<Vec<_>>(),
            "attributes": (0..=ATTRIBUTES_MAX).map(|i| (format!("k{i}"), json!(i))).collect::<Map<_, _>>(),
        });
        let errors = errors_of(over);
        assert_eq!(errors.len(), 3, "{errors:?}");
        let long_tag = errors_of(json!({"first_name": "A", "tags": ["x".repeat(256), ""]}));
        assert_eq!(long_tag["tags[0]"], "must be at most 255 characters");
        assert_eq!(long_tag["tags[1]"], "must not be empty");
    }

    #[test]
    fn control_characters_are_refused_outside_notes() {
        assert!(errors_of(json!({"first_name": "a\nb"})).contains_key("first_name"));
        assert!(errors_of(json!({"first_name": "A", "notes": "a\u{0}b"})).contains_key("notes"));
        assert!(errors_of(json!({"first_name": "A", "tags": ["a\tb"]})).contains_key("tags[0]"));
        let bad_key = errors_of(json!({"first_name": "A", "attributes": {"a\u{1b}": "x"}}));
        assert_eq!(bad_key.len(), 1);
        let emoji =
            new_fields(&object(json!({"first_name": "🦀 Ferris", "tags": ["🚀"]}))).unwrap();
        assert_eq!(emoji.first_name.as_deref(), Some("🦀 Ferris"));
    }

    #[test]
    fn patches_report_what_changed() {
        let mut fields = new_fields(&object(json!({"first_name": "A", "tags": ["x"]}))).unwrap();
        let patch = parse_patch(&object(
            json!({"first_name": "A", "last_name": "B", "tags": null}),
        ))
        .unwrap();
        assert_eq!(fields.apply(&patch), ["last_name", "tags"]);
        assert!(fields.tags.is_empty());
        let clear = parse_patch(&object(json!({"first_name": null, "last_name": ""}))).unwrap();
        fields.apply(&clear);
        assert!(fields.identity_error().is_some());
    }

    #[test]
    fn phones_with_a_country_code_are_normalised() {
        let ok = [
            ("+1 (415) 555-2671", Some("+14155552671")),
            ("+44 20 7946 0958", Some("+442079460958")),
            ("+49 30 901820", Some("+4930901820")),
            ("(415) 555-2671", None),
            ("020 7946 0958", None),
            ("555.0100", None),
        ];
        for (text, e164) in ok {
            let phone = parse_phone(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(phone.e164.as_deref(), e164, "{text}");
            assert_eq!(phone.display, text);
        }
        for bad in [
            "1234",
            "+1 2",
            "12+345678",
            "phone: 5550100",
            "+999 1234 5678",
            "1".repeat(21).as_str(),
            "٥٥٥٥٥٥٥",
        ] {
            assert!(parse_phone(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn the_validator_never_panics(
            keys in proptest::collection::vec("\\PC{0,12}|first_name|email|phone|tags|attributes|notes", 0..6),
            texts in proptest::collection::vec(any::<String>(), 0..6),
            numbers in proptest::collection::vec(any::<f64>(), 0..3),
        ) {
            let mut body = Map::new();
            for (i, key) in keys.iter().enumerate() {
                let text = texts.get(i).cloned().unwrap_or_default();
                let value = match i % 5 {
                    0 => json!(text),
                    1 => json!([text, i]),
                    2 => json!({ text.clone(): numbers.first().copied().unwrap_or(0.0) }),
                    3 => json!(numbers),
                    _ => Value::Null,
                };
                body.insert(key.clone(), value);
            }
            let _ = new_fields(&body);
            let _ = parse_patch(&body);
        }

        #[test]
        fn phone_parsing_never_panics(text in "[+0-9 ().-]{0,30}|\\PC{0,30}") {
            let _ = parse_phone(&text);
        }
    }
}
