//! Validation shared by every request body: the unknown-field rule, checked in one place, and
//! small validators used by several resources. Every problem is collected, so a client sees
//! all of them at once.

use serde_json::{Map, Value};

use crate::model::FieldErrors;

/// Field names echoed in errors are cut to this many characters.
const NAME_ECHO_MAX: usize = 64;

/// A request body validated field by field into a typed value.
pub trait FromBody: Sized {
    /// The fields the body may hold; any other is "not a known field".
    const FIELDS: &'static [&'static str];
    /// Fields the API returns but a client may not set.
    const READ_ONLY: &'static [&'static str] = &[];

    /// The value, or `None` with the reasons recorded in `errors`.
    fn from_body(body: &Map<String, Value>, errors: &mut FieldErrors) -> Option<Self>;
}

/// Validates `body` into `T`, reporting unknown and read-only fields with every other problem.
pub fn parse<T: FromBody>(body: &Map<String, Value>) -> Result<T, FieldErrors> {
    let mut errors = FieldErrors::new();
    for name in body.keys() {
        if T::READ_ONLY.contains(&name.as_str()) {
            errors.insert(name.clone(), "is read-only and cannot be set".into());
        } else if !T::FIELDS.contains(&name.as_str()) {
            errors.insert(echo(name), "is not a known field".into());
        }
    }
    match T::from_body(body, &mut errors) {
        Some(value) if errors.is_empty() => Ok(value),
        _ => Err(errors),
    }
}

/// A field name as echoed in an error: cut to a sensible length.
pub fn echo(name: &str) -> String {
    name.chars().take(NAME_ECHO_MAX).collect()
}

/// A required string field; records "is required" or "must be a string".
pub fn required_string<'a>(
    errors: &mut FieldErrors,
    body: &'a Map<String, Value>,
    name: &str,
) -> Option<&'a str> {
    match body.get(name) {
        Some(Value::String(text)) => Some(text),
        None | Some(Value::Null) => {
            errors.insert(name.into(), "is required".into());
            None
        }
        Some(_) => {
            errors.insert(name.into(), "must be a string".into());
            None
        }
    }
}

/// A boolean field that defaults to false.
pub fn flag(errors: &mut FieldErrors, body: &Map<String, Value>, name: &str) -> bool {
    match body.get(name) {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(_) => {
            errors.insert(name.into(), "must be true or false".into());
            false
        }
    }
}

/// Length in Unicode scalar values, plus a refusal of control characters.
pub fn text_error(text: &str, max: usize, required: bool) -> Option<String> {
    let count = text.chars().count();
    if required && count == 0 {
        return Some("is required".into());
    }
    if count > max {
        return Some(format!("must be at most {max} characters"));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Some("must not contain control characters".into());
    }
    None
}

/// A required single-line name: trimmed, 1–`max` characters.
pub fn name(
    errors: &mut FieldErrors,
    body: &Map<String, Value>,
    field: &str,
    max: usize,
) -> Option<String> {
    let text = required_string(errors, body, field)?.trim();
    match text_error(text, max, true) {
        Some(err) => {
            errors.insert(field.into(), err);
            None
        }
        None => Some(text.to_owned()),
    }
}

/// Why `email` is not a plausible address, if it is not.
pub fn email_error(email: &str) -> Option<&'static str> {
    if email.chars().count() > 254 {
        return Some("must be at most 254 characters");
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Some("must be an email address like name@example.com");
    };
    let plausible = !local.is_empty()
        && !local.contains('@')
        && local.chars().count() <= 64
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@')
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
    (!plausible).then_some("must be an email address like name@example.com")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_real_addresses_and_refuses_the_rest() {
        for ok in ["a@b.co", "first.last+tag@example.co.uk", "jürgen@müller.de"] {
            assert_eq!(email_error(ok), None, "{ok}");
        }
        for bad in [
            "", "a", "a@b", "@b.co", "a@.co", "a b@c.de", "a@b..de", "a@b.de\n", "a@@b.de",
        ] {
            assert!(email_error(bad).is_some(), "{bad:?}");
        }
    }

    struct Named(String);

    impl FromBody for Named {
        const FIELDS: &'static [&'static str] = &["name"];
        const READ_ONLY: &'static [&'static str] = &["id"];

        fn from_body(body: &Map<String, Value>, errors: &mut FieldErrors) -> Option<Self> {
            name(errors, body, "name", 5).map(Named)
        }
    }

    #[test]
    fn unknown_and_read_only_fields_are_reported_with_the_rest() {
        let body = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            parse::<Named>(&body(json!({"name": " ab "}))).unwrap().0,
            "ab"
        );
        let errors = parse::<Named>(&body(json!({"name": 5, "id": "x", "colour": 1})))
            .err()
            .unwrap();
        assert_eq!(errors["name"], "must be a string");
        assert_eq!(errors["id"], "is read-only and cannot be set");
        assert_eq!(errors["colour"], "is not a known field");
        let errors = parse::<Named>(&body(json!({"name": "toolong"})))
            .err()
            .unwrap();
        assert_eq!(errors["name"], "must be at most 5 characters");
    }
}
