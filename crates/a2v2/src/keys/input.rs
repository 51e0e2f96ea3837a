//! What a client may set on a key, validated: the create and patch bodies, and minting.

use ipnet::IpNet;
use serde_json::{Map, Value, json};

use super::format;
use crate::{
    crypto::{KeySecrets, encode_hex},
    model::{
        FieldErrors, ip,
        key::ApiKey,
        new_id, now_ms,
        permissions::Permissions,
        time::{opt_rfc3339, parse_rfc3339},
    },
    validate::{self, FromBody},
};

pub const NAME_MAX: usize = 100;
pub const DESCRIPTION_MAX: usize = 500;

const FIELDS: &[&str] = &[
    "name",
    "description",
    "ip_addresses",
    "permissions",
    "expires_at",
];

/// Validated fields of a create or a patch; `None` leaves a field unchanged on patch.
#[derive(Debug, Default)]
pub struct KeyChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub ip_nets: Option<Vec<IpNet>>,
    pub permissions: Option<Permissions>,
    pub expires_at: Option<Option<i64>>,
}

/// The body of a create: `name` is required.
#[derive(Debug)]
pub struct CreateKey(pub KeyChanges);

/// The body of a patch: every field is optional.
#[derive(Debug)]
pub struct KeyPatch(pub KeyChanges);

impl FromBody for CreateKey {
    const FIELDS: &'static [&'static str] = FIELDS;

    fn from_body(body: &Map<String, Value>, errors: &mut FieldErrors) -> Option<Self> {
        Some(Self(changes(body, errors, true, now_ms())))
    }
}

impl FromBody for KeyPatch {
    const FIELDS: &'static [&'static str] = FIELDS;

    fn from_body(body: &Map<String, Value>, errors: &mut FieldErrors) -> Option<Self> {
        Some(Self(changes(body, errors, false, now_ms())))
    }
}

fn changes(
    body: &Map<String, Value>,
    errors: &mut FieldErrors,
    creating: bool,
    now_ms: i64,
) -> KeyChanges {
    let mut changes = KeyChanges::default();
    if creating || body.contains_key("name") {
        changes.name = validate::name(errors, body, "name", NAME_MAX);
    }
    match body.get("description") {
        None => {}
        Some(Value::Null) => changes.description = Some(String::new()),
        Some(Value::String(text)) => {
            match validate::text_error(text.trim(), DESCRIPTION_MAX, false) {
                Some(err) => {
                    errors.insert("description".into(), err);
                }
                None => changes.description = Some(text.trim().to_owned()),
            }
        }
        Some(_) => {
            errors.insert("description".into(), "must be a string".into());
        }
    }
    if let Some(value) = body.get("ip_addresses") {
        match ip::parse_list(value) {
            Ok(nets) => changes.ip_nets = Some(nets),
            Err(err) => {
                errors.insert("ip_addresses".into(), err);
            }
        }
    }
    if let Some(value) = body.get("permissions") {
        match Permissions::from_json(value) {
            Ok(set) => changes.permissions = Some(set),
            Err(err) => {
                errors.insert("permissions".into(), err);
            }
        }
    }
    match body.get("expires_at") {
        None => {}
        Some(Value::Null) => changes.expires_at = Some(None),
        Some(Value::String(text)) => match parse_rfc3339(text) {
            Some(at) if at <= now_ms => {
                errors.insert("expires_at".into(), "must be in the future".into());
            }
            Some(at) => changes.expires_at = Some(Some(at)),
            None => {
                errors.insert(
                    "expires_at".into(),
                    "must be an RFC 3339 timestamp such as 2030-01-31T00:00:00Z".into(),
                );
            }
        },
        Some(_) => {
            errors.insert(
                "expires_at".into(),
                "must be an RFC 3339 timestamp string".into(),
            );
        }
    }
    changes
}

/// A new key's row and its secret, which the caller shows once.
pub fn mint(
    secrets: &KeySecrets,
    keep_copy: bool,
    agent_id: &str,
    created_by: Option<(&str, &str)>,
    changes: KeyChanges,
    now_ms: i64,
) -> anyhow::Result<(ApiKey, String)> {
    let secret = format::generate();
    let id = new_id("key");
    let secret_ciphertext = if keep_copy {
        Some(secrets.seal(&id, &secret)?)
    } else {
        None
    };
    let row = ApiKey {
        lookup_hash: encode_hex(&secrets.lookup_hash(&secret)),
        preview: format::preview(&secret),
        secret_ciphertext,
        agent_id: agent_id.to_owned(),
        name: changes.name.unwrap_or_default(),
        description: changes.description.unwrap_or_default(),
        permissions: changes.permissions.unwrap_or_default(),
        ip_nets: changes.ip_nets.unwrap_or_default(),
        ip_list_readable: true,
        expires_at: changes.expires_at.flatten(),
        created_by: created_by.map(|(id, _)| id.to_owned()),
        created_by_email: created_by.map(|(_, email)| email.to_owned()),
        created_at: now_ms,
        updated_at: now_ms,
        last_used_at: None,
        id,
    };
    Ok((row, secret))
}

/// Applies a patch, returning the names of the fields that really changed with before/after.
pub fn apply(row: &mut ApiKey, changes: KeyChanges) -> Map<String, Value> {
    let mut changed = Map::new();
    if let Some(name) = changes.name.filter(|n| *n != row.name) {
        changed.insert("name".into(), json!({"from": row.name, "to": name}));
        row.name = name;
    }
    if let Some(text) = changes.description.filter(|d| *d != row.description) {
        changed.insert(
            "description".into(),
            json!({"from": row.description, "to": text}),
        );
        row.description = text;
    }
    if let Some(nets) = changes.ip_nets.filter(|n| *n != row.ip_nets) {
        changed.insert(
            "ip_addresses".into(),
            json!({"from": ip::display_list(&row.ip_nets), "to": ip::display_list(&nets)}),
        );
        row.ip_nets = nets;
        row.ip_list_readable = true;
    }
    if let Some(set) = changes.permissions.filter(|p| *p != row.permissions) {
        changed.insert(
            "permissions".into(),
            json!({"from": row.permissions.to_json(), "to": set.to_json()}),
        );
        row.permissions = set;
    }
    if let Some(at) = changes.expires_at.filter(|e| *e != row.expires_at) {
        changed.insert(
            "expires_at".into(),
            json!({"from": opt_rfc3339(row.expires_at), "to": opt_rfc3339(at)}),
        );
        row.expires_at = at;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::parse;

    fn body(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn names_are_counted_in_scalar_values_after_trimming() {
        assert!(parse::<CreateKey>(&body(json!({"name": "é".repeat(100)}))).is_ok());
        let padded = format!("  {}  ", "x".repeat(100));
        assert!(parse::<CreateKey>(&body(json!({ "name": padded }))).is_ok());
        let errors = parse::<CreateKey>(&body(json!({"name": "x".repeat(101)}))).unwrap_err();
        assert_eq!(errors["name"], "must be at most 100 characters");
        let errors = parse::<CreateKey>(&body(json!({"name": "   "}))).unwrap_err();
        assert_eq!(errors["name"], "is required");
        assert!(
            parse::<KeyPatch>(&body(json!({}))).is_ok(),
            "a patch needs no name"
        );
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let errors = parse::<CreateKey>(&body(json!({
            "name": 5,
            "description": "d".repeat(501),
            "ip_addresses": "300.1.1.1",
            "permissions": {"contacts": ["fly"]},
            "expires_at": "2001-01-01T00:00:00Z",
            "colour": "red",
        })))
        .unwrap_err();
        let names: Vec<&str> = errors.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "colour",
                "description",
                "expires_at",
                "ip_addresses",
                "name",
                "permissions"
            ]
        );
    }

    #[test]
    fn patches_record_only_real_changes() {
        let secrets = KeySecrets::new(
            &crate::crypto::MasterKey::load(&crate::config::MasterKeySource::Inline(
                "22".repeat(32),
            ))
            .unwrap(),
        );
        let CreateKey(changes) = parse(&body(json!({"name": "a"}))).unwrap();
        let (mut row, secret) = mint(&secrets, true, "agt_1", None, changes, 0).unwrap();
        assert!(format::is_well_formed(&secret));
        let KeyPatch(patch) = parse(&body(json!({"name": "a", "description": "new"}))).unwrap();
        let changed = apply(&mut row, patch);
        assert_eq!(changed.keys().collect::<Vec<_>>(), ["description"]);
        assert!(!Value::Object(changed).to_string().contains(&secret));
    }
}
