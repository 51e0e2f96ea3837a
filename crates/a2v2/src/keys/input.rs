//! What a client may set on a key, validated: the create and patch bodies, and minting.

use ipnet::IpNet;
use serde_json::{Map, Value, json};

use super::format;
use crate::{
    crypto::{KeySecrets, encode_hex},
    model::{
        FieldErrors, ip,
        key::{ApiKey, RateLimit},
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
    "rate_limit",
    "enabled",
];

/// Validated fields of a create or a patch; `None` leaves a field unchanged on patch.
#[derive(Debug, Default)]
pub struct KeyChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub ip_nets: Option<Vec<IpNet>>,
    pub permissions: Option<Permissions>,
    pub expires_at: Option<Option<i64>>,
    pub rate_limit: Option<Option<RateLimit>>,
    pub enabled: Option<bool>,
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
    match body.get("rate_limit") {
        None => {}
        Some(Value::Null) => changes.rate_limit = Some(None),
        Some(value) => match rate_limit(value) {
            Ok(limit) => changes.rate_limit = Some(Some(limit)),
            Err(err) => {
                errors.insert("rate_limit".into(), err);
            }
        },
    }
    match body.get("enabled") {
        None => {}
        Some(Value::Bool(on)) => changes.enabled = Some(*on),
        Some(_) => {
            errors.insert("enabled".into(), "must be true or false".into());
        }
    }
    changes
}

/// `{"requests": N, "per_seconds": S}` within the contract's bounds.
fn rate_limit(value: &Value) -> Result<RateLimit, String> {
    const SHAPE: &str = "must be an object {\"requests\": N, \"per_seconds\": S}";
    let object = value.as_object().ok_or(SHAPE)?;
    if object.len() != 2 {
        return Err(SHAPE.into());
    }
    let number = |name: &str, max: u32| -> Result<u32, String> {
        object
            .get(name)
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| format!("`{name}` must be a whole number from 1 to {max}"))
    };
    Ok(RateLimit {
        requests: number("requests", RateLimit::MAX_REQUESTS)?,
        per_seconds: number("per_seconds", RateLimit::MAX_SECONDS)?,
    })
}

/// The longest grace period of a roll: a week.
pub const MAX_GRACE_SECONDS: u64 = 604_800;

/// The body of a roll: `{"grace_seconds": 0–604800}` (default 0).
#[derive(Debug)]
pub struct RollKey {
    pub grace_seconds: u64,
}

impl FromBody for RollKey {
    const FIELDS: &'static [&'static str] = &["grace_seconds"];

    fn from_body(body: &Map<String, Value>, errors: &mut FieldErrors) -> Option<Self> {
        match body.get("grace_seconds") {
            None | Some(Value::Null) => Some(Self { grace_seconds: 0 }),
            Some(value) => match value.as_u64().filter(|s| *s <= MAX_GRACE_SECONDS) {
                Some(grace_seconds) => Some(Self { grace_seconds }),
                None => {
                    errors.insert(
                        "grace_seconds".into(),
                        format!("must be a whole number of seconds from 0 to {MAX_GRACE_SECONDS}"),
                    );
                    None
                }
            },
        }
    }
}

/// The body of a leaked-key report: `{"key": …}`.
#[derive(Debug)]
pub struct LeakReport {
    pub key: String,
}

impl FromBody for LeakReport {
    const FIELDS: &'static [&'static str] = &["key"];

    fn from_body(body: &Map<String, Value>, errors: &mut FieldErrors) -> Option<Self> {
        match body.get("key") {
            Some(Value::String(key)) => Some(Self {
                key: key.trim().chars().take(200).collect(),
            }),
            _ => {
                errors.insert("key".into(), "must be the leaked key as a string".into());
                None
            }
        }
    }
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
        rate_limit: changes.rate_limit.flatten(),
        enabled: changes.enabled.unwrap_or(true),
        previous_lookup_hash: None,
        previous_expires_at: None,
        rolled_at: None,
        reveal_count: 0,
        last_revealed_at: None,
        leak_reported_at: None,
        permission_uses: Default::default(),
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
    if let Some(limit) = changes.rate_limit.filter(|l| *l != row.rate_limit) {
        changed.insert(
            "rate_limit".into(),
            json!({"from": row.rate_limit, "to": limit}),
        );
        row.rate_limit = limit;
    }
    if let Some(on) = changes.enabled.filter(|on| *on != row.enabled) {
        changed.insert("enabled".into(), json!({"from": row.enabled, "to": on}));
        row.enabled = on;
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
