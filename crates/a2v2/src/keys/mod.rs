//! API keys: validation, storage and the views returned by the management API.

pub mod cache;
pub mod command;
pub mod format;
pub mod handlers;
pub mod ip;
pub mod manage;
pub mod permissions;
pub mod sync;

use ipnet::IpNet;
use serde_json::{Map, Value, json};
use sqlx::{AnyConnection, Row, any::AnyRow};

use crate::{
    crypto::{KeySecrets, decode_hex},
    error::{ApiError, FieldErrors},
    time_fmt::{opt_rfc3339, parse_rfc3339, to_rfc3339},
};
use cache::CachedKey;
use permissions::Permissions;

pub const NAME_MAX: usize = 100;
pub const DESCRIPTION_MAX: usize = 500;

/// A key as stored.
#[derive(Clone, Debug)]
pub struct KeyRow {
    pub id: String,
    pub agent_id: String,
    pub name: String,
    pub description: String,
    pub lookup_hash: String,
    pub secret_ciphertext: Option<String>,
    pub preview: String,
    pub permissions: Permissions,
    pub ip_nets: Vec<IpNet>,
    /// False when the stored IP list could not be read; the key is then refused.
    pub ip_list_readable: bool,
    pub expires_at: Option<i64>,
    pub created_by: Option<String>,
    pub created_by_email: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_used_at: Option<i64>,
}

const SELECT: &str = "SELECT k.id, k.agent_id, k.name, k.description, k.lookup_hash, \
     k.secret_ciphertext, k.preview, k.permissions, k.ip_addresses, k.expires_at, k.created_by, \
     m.email AS created_by_email, k.created_at, k.updated_at, k.last_used_at \
     FROM api_keys k LEFT JOIN members m ON m.id = k.created_by";

fn from_row(row: &AnyRow) -> Result<KeyRow, sqlx::Error> {
    let ip_text: String = row.try_get("ip_addresses")?;
    // An unreadable stored list must not widen to "any address": such a key is not served.
    let ip_nets = serde_json::from_str::<Vec<String>>(&ip_text)
        .ok()
        .and_then(|entries| entries.iter().map(|e| ip::parse_entry(e)).collect());
    Ok(KeyRow {
        id: row.try_get("id")?,
        agent_id: row.try_get("agent_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        lookup_hash: row.try_get("lookup_hash")?,
        secret_ciphertext: row.try_get("secret_ciphertext")?,
        preview: row.try_get("preview")?,
        permissions: Permissions::from_bits(row.try_get("permissions")?),
        ip_list_readable: ip_nets.is_some(),
        ip_nets: ip_nets.unwrap_or_default(),
        expires_at: row.try_get("expires_at")?,
        created_by: row.try_get("created_by")?,
        created_by_email: row.try_get("created_by_email")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

impl KeyRow {
    /// The management view. `last_used` comes from the cache, fresher than storage.
    pub fn view(&self, last_used: Option<i64>) -> Value {
        let last_used_at = match (self.last_used_at, last_used) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        json!({
            "id": self.id,
            "agent_id": self.agent_id,
            "name": self.name,
            "description": self.description,
            "ip_addresses": ip_list(&self.ip_nets),
            "permissions": self.permissions.to_json(),
            "access": self.permissions.access(),
            "preview": self.preview,
            "created_at": to_rfc3339(self.created_at),
            "updated_at": to_rfc3339(self.updated_at),
            "last_used_at": opt_rfc3339(last_used_at),
            "expires_at": opt_rfc3339(self.expires_at),
            "created_by": self.created_by.as_ref().map(|id| json!({
                "type": "member",
                "id": id,
                "label": self.created_by_email,
            })),
        })
    }

    pub fn to_cached(&self) -> Option<CachedKey> {
        if !self.ip_list_readable {
            return None;
        }
        let hash: [u8; 32] = decode_hex(&self.lookup_hash).ok()?.try_into().ok()?;
        Some(CachedKey::new(
            self.id.clone(),
            self.agent_id.clone(),
            self.name.clone(),
            hash,
            self.permissions,
            self.ip_nets.clone(),
            self.expires_at,
            self.last_used_at,
        ))
    }
}

pub fn ip_list(nets: &[IpNet]) -> Vec<String> {
    nets.iter().map(ip::display).collect()
}

/// Validated fields of a create or a patch; `None` leaves a field unchanged on patch.
#[derive(Debug, Default)]
pub struct KeyChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub ip_nets: Option<Vec<IpNet>>,
    pub permissions: Option<Permissions>,
    pub expires_at: Option<Option<i64>>,
}

const KNOWN_FIELDS: [&str; 5] = [
    "name",
    "description",
    "ip_addresses",
    "permissions",
    "expires_at",
];

/// Validates a create (`creating`: name required) or a patch body, collecting every field error.
pub fn validate(
    body: &Map<String, Value>,
    creating: bool,
    now_ms: i64,
) -> Result<KeyChanges, ApiError> {
    let mut errors = FieldErrors::new();
    let mut changes = KeyChanges::default();
    for field in body.keys() {
        if !KNOWN_FIELDS.contains(&field.as_str()) {
            errors.insert(
                field.chars().take(64).collect(),
                "is not a known field".into(),
            );
        }
    }
    match body.get("name") {
        Some(Value::String(name)) => match text_error(name.trim(), NAME_MAX, true) {
            Some(err) => {
                errors.insert("name".into(), err);
            }
            None => changes.name = Some(name.trim().to_owned()),
        },
        None if !creating => {}
        None | Some(Value::Null) => {
            errors.insert("name".into(), "is required".into());
        }
        Some(_) => {
            errors.insert("name".into(), "must be a string".into());
        }
    }
    match body.get("description") {
        None => {}
        Some(Value::Null) => changes.description = Some(String::new()),
        Some(Value::String(text)) => match text_error(text.trim(), DESCRIPTION_MAX, false) {
            Some(err) => {
                errors.insert("description".into(), err);
            }
            None => changes.description = Some(text.trim().to_owned()),
        },
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
    if errors.is_empty() {
        Ok(changes)
    } else {
        Err(ApiError::validation(errors))
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

pub async fn list(conn: &mut AnyConnection, agent_id: &str) -> Result<Vec<KeyRow>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "{SELECT} WHERE k.agent_id = $1 ORDER BY k.id DESC"
    ))
    .bind(agent_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

pub async fn list_all(conn: &mut AnyConnection) -> Result<Vec<KeyRow>, sqlx::Error> {
    let rows = sqlx::query(SELECT).fetch_all(conn).await?;
    rows.iter().map(from_row).collect()
}

pub async fn get(
    conn: &mut AnyConnection,
    agent_id: &str,
    key_id: &str,
) -> Result<Option<KeyRow>, sqlx::Error> {
    let row = sqlx::query(&format!("{SELECT} WHERE k.agent_id = $1 AND k.id = $2"))
        .bind(agent_id)
        .bind(key_id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn get_by_id(
    conn: &mut AnyConnection,
    key_id: &str,
) -> Result<Option<KeyRow>, sqlx::Error> {
    let row = sqlx::query(&format!("{SELECT} WHERE k.id = $1"))
        .bind(key_id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn insert(conn: &mut AnyConnection, key: &KeyRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO api_keys (id, agent_id, name, description, lookup_hash, secret_ciphertext, \
         preview, permissions, ip_addresses, expires_at, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&key.id)
    .bind(&key.agent_id)
    .bind(&key.name)
    .bind(&key.description)
    .bind(&key.lookup_hash)
    .bind(key.secret_ciphertext.as_deref())
    .bind(&key.preview)
    .bind(key.permissions.bits())
    .bind(json!(ip_list(&key.ip_nets)).to_string())
    .bind(key.expires_at)
    .bind(key.created_by.as_deref())
    .bind(key.created_at)
    .bind(key.updated_at)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn update(conn: &mut AnyConnection, key: &KeyRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE api_keys SET name = $1, description = $2, permissions = $3, ip_addresses = $4, \
         expires_at = $5, updated_at = $6 WHERE id = $7",
    )
    .bind(&key.name)
    .bind(&key.description)
    .bind(key.permissions.bits())
    .bind(json!(ip_list(&key.ip_nets)).to_string())
    .bind(key.expires_at)
    .bind(key.updated_at)
    .bind(&key.id)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn delete(conn: &mut AnyConnection, key_id: &str) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("DELETE FROM api_keys WHERE id = $1")
        .bind(key_id)
        .execute(conn)
        .await?;
    Ok(result.rows_affected() > 0)
}

/// Writes batched last-used times; never moves a time backwards.
pub async fn record_uses(
    conn: &mut AnyConnection,
    uses: &[(String, i64)],
) -> Result<(), sqlx::Error> {
    for (key_id, at) in uses {
        sqlx::query(
            "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 \
             AND (last_used_at IS NULL OR last_used_at < $1)",
        )
        .bind(*at)
        .bind(key_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A new key's row and its secret, which the caller shows once.
pub fn mint(
    secrets: &KeySecrets,
    keep_copy: bool,
    agent_id: &str,
    created_by: Option<(&str, &str)>,
    changes: KeyChanges,
    now_ms: i64,
) -> anyhow::Result<(KeyRow, String)> {
    let secret = format::generate();
    let id = crate::store::new_id("key");
    let secret_ciphertext = if keep_copy {
        Some(secrets.seal(&id, &secret)?)
    } else {
        None
    };
    let row = KeyRow {
        lookup_hash: crate::crypto::encode_hex(&secrets.lookup_hash(&secret)),
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
pub fn apply(row: &mut KeyRow, changes: KeyChanges) -> Map<String, Value> {
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
            json!({"from": ip_list(&row.ip_nets), "to": ip_list(&nets)}),
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

    fn body(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn field_errors(result: Result<KeyChanges, ApiError>) -> FieldErrors {
        match result {
            Err(ApiError::Validation { fields, .. }) => fields,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn names_are_counted_in_scalar_values_after_trimming() {
        assert!(validate(&body(json!({"name": "é".repeat(100)})), true, 0).is_ok());
        assert!(
            validate(
                &body(json!({"name": format!("  {}  ", "x".repeat(100))})),
                true,
                0
            )
            .is_ok()
        );
        let errors = field_errors(validate(&body(json!({"name": "x".repeat(101)})), true, 0));
        assert_eq!(errors["name"], "must be at most 100 characters");
        let errors = field_errors(validate(&body(json!({"name": "   "})), true, 0));
        assert_eq!(errors["name"], "is required");
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let errors = field_errors(validate(
            &body(json!({
                "name": 5,
                "description": "d".repeat(501),
                "ip_addresses": "300.1.1.1",
                "permissions": {"contacts": ["fly"]},
                "expires_at": "2001-01-01T00:00:00Z",
                "colour": "red",
            })),
            true,
            1_000_000_000_000,
        ));
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
        let changes = validate(&body(json!({"name": "a"})), true, 0).unwrap();
        let (mut row, secret) = mint(&secrets, true, "agt_1", None, changes, 0).unwrap();
        assert!(format::is_well_formed(&secret));
        let patch = validate(&body(json!({"name": "a", "description": "new"})), false, 0).unwrap();
        let changed = apply(&mut row, patch);
        assert_eq!(changed.keys().collect::<Vec<_>>(), ["description"]);
        assert!(!Value::Object(changed).to_string().contains(&secret));
    }
}
