//! `a2v2 keys create|list|delete`: API keys from the command line, for automation.
//!
//! The same rules as the management API (`keys::validate`), the same storage functions
//! (`keys::manage`), an audit event with a `system` actor labelled `cli`, and an entry in the
//! key change feed, through which a running server applies the change within about a second.

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

use super::{KeyChanges, KeyRow, manage};
use crate::{
    agents,
    audit::{Actor, Origin},
    config::{Config, MasterKeySource},
    crypto::{KeySecrets, MasterKey},
    error::{ApiError, FieldErrors},
    store::{Store, now_ms},
    time_fmt::{opt_rfc3339, to_rfc3339},
};

/// The fields of a new key as given on the command line.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct NewKey {
    /// Name that tells the key apart, 1–100 characters
    #[arg(long)]
    pub name: String,
    /// What the key is for, up to 500 characters
    #[arg(long)]
    pub description: Option<String>,
    /// Client IP addresses or CIDR ranges allowed to use the key, comma-separated; repeatable
    /// [default: any address]
    #[arg(long = "ip", value_name = "ADDRESSES")]
    pub ip: Vec<String>,
    /// A permission such as contacts:read (areas contacts, documents; actions create, read,
    /// update, delete); repeatable or comma-separated [default: none, "No access"]
    #[arg(long = "permission", value_name = "AREA:ACTION")]
    pub permissions: Vec<String>,
    /// When the key stops working, RFC 3339 such as 2030-01-31T00:00:00Z [default: never]
    #[arg(long, value_name = "TIME")]
    pub expires_at: Option<String>,
}

impl NewKey {
    /// The request body the management API would receive for these arguments, plus the
    /// problems that cannot be expressed in one (a permission not written `area:action`).
    fn body(&self) -> (Map<String, Value>, FieldErrors) {
        let mut body = Map::new();
        let mut errors = FieldErrors::new();
        body.insert("name".into(), json!(self.name));
        if let Some(description) = &self.description {
            body.insert("description".into(), json!(description));
        }
        if !self.ip.is_empty() {
            body.insert("ip_addresses".into(), json!(self.ip.join(", ")));
        }
        if !self.permissions.is_empty() {
            let mut areas = Map::new();
            for entry in self.permissions.iter().flat_map(|p| p.split(',')) {
                let entry = entry.trim();
                if entry.is_empty() {
                    continue;
                }
                match entry.split_once(':') {
                    Some((area, action)) => {
                        let actions = areas
                            .entry(area.trim().to_owned())
                            .or_insert_with(|| json!([]));
                        if let Value::Array(list) = actions {
                            list.push(json!(action.trim()));
                        }
                    }
                    None => {
                        let shown: String = entry.chars().take(40).collect();
                        errors.entry("permissions".into()).or_insert(format!(
                            "entry {shown:?} must be written area:action, such as contacts:read"
                        ));
                    }
                }
            }
            if !errors.contains_key("permissions") {
                body.insert("permissions".into(), Value::Object(areas));
            }
        }
        if let Some(at) = &self.expires_at {
            body.insert("expires_at".into(), json!(at));
        }
        (body, errors)
    }

    /// Validates the arguments with the API's rules, reporting every problem at once.
    pub fn changes(&self, now_ms: i64) -> Result<KeyChanges, ApiError> {
        let (body, mut errors) = self.body();
        match super::validate(&body, true, now_ms) {
            Ok(changes) if errors.is_empty() => Ok(changes),
            Ok(_) => Err(ApiError::validation(errors)),
            Err(ApiError::Validation { fields, .. }) => {
                errors.extend(fields);
                Err(ApiError::validation(errors))
            }
            Err(other) => Err(other),
        }
    }
}

/// The command line's flag for each field of a key, so that errors point at what to fix.
fn flag(field: &str) -> &str {
    match field {
        "name" => "--name",
        "description" => "--description",
        "ip_addresses" => "--ip",
        "permissions" => "--permission",
        "expires_at" => "--expires-at",
        other => other,
    }
}

/// A refusal as one sentence for the terminal: `name (--name) must be at most 100 characters`.
fn explain(err: ApiError) -> anyhow::Error {
    match err {
        ApiError::Validation { fields, .. } => anyhow::anyhow!(
            "{}",
            fields
                .iter()
                .map(|(field, problem)| format!("{field} ({}) {problem}", flag(field)))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        ApiError::Internal(err) => err,
        other => anyhow::anyhow!("{other}"),
    }
}

async fn open_store(config: &Config, migrate: bool) -> anyhow::Result<Store> {
    crate::config::ensure_dir(&config.data_dir)?;
    let store = Store::connect(&config.database_url).await?;
    if migrate {
        store.migrate().await?;
    }
    Ok(store)
}

/// The server's master key. Never generated here: a key made under a new master key would
/// not verify on the server.
fn secrets(config: &Config) -> anyhow::Result<KeySecrets> {
    if let MasterKeySource::File(path) = &config.master_key
        && !path.exists()
    {
        bail!(
            "no master key at {}: pass the server's --data-dir, --master-key-file or \
             A2V2_MASTER_KEY so that the new key verifies on it",
            path.display()
        );
    }
    Ok(KeySecrets::new(&MasterKey::load(&config.master_key)?))
}

/// Refuses a master key that cannot open the stored key copies: keys made with it would
/// not verify on the server either.
async fn check_master_key(store: &Store, secrets: &KeySecrets) -> anyhow::Result<()> {
    let sealed: Option<(String, String)> = sqlx::query_as(
        "SELECT id, secret_ciphertext FROM api_keys WHERE secret_ciphertext IS NOT NULL LIMIT 1",
    )
    .fetch_optional(&store.pool)
    .await?;
    if let Some((key_id, sealed)) = sealed
        && secrets.open(&key_id, &sealed).is_err()
    {
        bail!(
            "the master key differs from the one the stored API keys were made with: pass the \
             server's --data-dir, --master-key-file or A2V2_MASTER_KEY"
        );
    }
    Ok(())
}

fn no_agent(err: ApiError, agent_id: &str) -> anyhow::Error {
    match err {
        ApiError::NotFound => anyhow::anyhow!("there is no agent with id {agent_id}"),
        other => explain(other),
    }
}

/// Creates a key for `agent_id`; returns it with its secret, which is shown only this once.
pub async fn create(
    config: &Config,
    agent_id: &str,
    key: &NewKey,
) -> anyhow::Result<(KeyRow, String)> {
    let now = now_ms();
    let changes = key.changes(now).map_err(explain)?;
    let secrets = secrets(config)?;
    let store = open_store(config, true).await?;
    check_master_key(&store, &secrets).await?;
    let (row, secret) = super::mint(&secrets, config.key_reveal, agent_id, None, changes, now)?;
    let mut tx = store.begin().await?;
    manage::create(
        &mut tx,
        store.backend,
        &Actor::cli(),
        &Origin::default(),
        &row,
    )
    .await
    .map_err(|err| no_agent(err, agent_id))?;
    tx.commit().await?;
    store.pool.close().await;
    Ok((row, secret))
}

/// The keys of `agent_id`, newest first, without secrets.
pub async fn list(config: &Config, agent_id: &str) -> anyhow::Result<Vec<KeyRow>> {
    let store = open_store(config, false).await?;
    let mut conn = store.pool.acquire().await?;
    agents::find(&mut conn, agent_id)
        .await
        .map_err(|err| no_agent(err, agent_id))?;
    let rows = super::list(&mut conn, agent_id)
        .await
        .context("listing API keys")?;
    drop(conn);
    store.pool.close().await;
    Ok(rows)
}

/// Deletes (revokes) a key of `agent_id`; returns it as it was.
pub async fn delete(config: &Config, agent_id: &str, key_id: &str) -> anyhow::Result<KeyRow> {
    let store = open_store(config, true).await?;
    let mut tx = store.begin().await?;
    agents::find(&mut tx, agent_id)
        .await
        .map_err(|err| no_agent(err, agent_id))?;
    let row = manage::delete(
        &mut tx,
        store.backend,
        &Actor::cli(),
        &Origin::default(),
        agent_id,
        key_id,
    )
    .await
    .map_err(|err| match err {
        ApiError::NotFound => anyhow::anyhow!("agent {agent_id} has no API key with id {key_id}"),
        other => explain(other),
    })?;
    tx.commit().await?;
    store.pool.close().await;
    Ok(row)
}

/// The created key as the management API returns it, secret included.
pub fn created_json(row: &KeyRow, secret: &str) -> Value {
    let mut view = row.view(None);
    view["key"] = json!(secret);
    view
}

/// The keys as the management API lists them.
pub fn list_json(rows: &[KeyRow]) -> Value {
    let data: Vec<Value> = rows.iter().map(|row| row.view(None)).collect();
    json!({ "data": data, "has_more": false, "next_cursor": null })
}

/// The keys as a table: id, name, access, preview, created, last used.
pub fn table(rows: &[KeyRow]) -> String {
    let header = ["ID", "NAME", "ACCESS", "PREVIEW", "CREATED", "LAST USED"].map(str::to_owned);
    let lines: Vec<[String; 6]> = rows
        .iter()
        .map(|row| {
            let access = row.permissions.access();
            [
                row.id.clone(),
                one_line(&row.name),
                if access.is_empty() {
                    "No access".to_owned()
                } else {
                    access.join(", ")
                },
                row.preview.clone(),
                to_rfc3339(row.created_at),
                opt_rfc3339(row.last_used_at).unwrap_or_else(|| "never".to_owned()),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|cell| cell.chars().count());
    for line in &lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in std::iter::once(&header).chain(&lines) {
        let cells: Vec<String> = line
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Control characters (a name may hold a line break) would break the table's rows.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::permissions::{Action, Area, Permission, Permissions};

    fn key(name: &str) -> NewKey {
        NewKey {
            name: name.to_owned(),
            ..NewKey::default()
        }
    }

    fn field_errors(result: Result<KeyChanges, ApiError>) -> FieldErrors {
        match result {
            Err(ApiError::Validation { fields, .. }) => fields,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn arguments_become_the_same_changes_as_an_api_body() {
        let args = NewKey {
            name: "  Zapier sync  ".into(),
            description: Some("Nightly export".into()),
            ip: vec!["10.1.2.3/8, 1.2.3.4".into(), "1.2.3.4/32".into()],
            permissions: vec![
                "contacts:read,contacts:create".into(),
                "documents:read".into(),
            ],
            expires_at: Some("2030-01-31T00:00:00Z".into()),
        };
        let changes = args.changes(0).unwrap();
        assert_eq!(changes.name.as_deref(), Some("Zapier sync"));
        assert_eq!(changes.description.as_deref(), Some("Nightly export"));
        let ips = super::super::ip_list(&changes.ip_nets.unwrap());
        assert_eq!(ips, ["10.0.0.0/8", "1.2.3.4"]);
        let expected = Permissions::default()
            .with(Permission(Area::Contacts, Action::Read))
            .with(Permission(Area::Contacts, Action::Create))
            .with(Permission(Area::Documents, Action::Read));
        assert_eq!(changes.permissions, Some(expected));
        assert!(changes.expires_at.flatten().is_some());
    }

    #[test]
    fn no_optional_arguments_mean_any_address_no_access_and_no_expiry() {
        let changes = key("bare").changes(0).unwrap();
        assert_eq!(changes.name.as_deref(), Some("bare"));
        assert_eq!(changes.ip_nets, None);
        assert_eq!(changes.permissions, None);
        assert_eq!(changes.expires_at, None);
    }

    #[test]
    fn bad_arguments_get_the_api_messages_all_at_once() {
        let args = NewKey {
            name: "x".repeat(101),
            ip: vec!["10.0.0.1, 300.1.1.1".into()],
            permissions: vec!["contacts:fly".into()],
            expires_at: Some("2001-01-01T00:00:00Z".into()),
            ..NewKey::default()
        };
        let errors = field_errors(args.changes(1_000_000_000_000));
        assert_eq!(errors["name"], "must be at most 100 characters");
        assert!(errors["ip_addresses"].contains("300.1.1.1"), "{errors:?}");
        assert!(
            errors["permissions"].contains("unknown action"),
            "{errors:?}"
        );
        assert_eq!(errors["expires_at"], "must be in the future");
        let message = explain(args.changes(1_000_000_000_000).unwrap_err()).to_string();
        assert!(message.contains("name (--name) must be at most 100 characters"));
        assert!(message.contains("ip_addresses (--ip) entry 2"), "{message}");
    }

    #[test]
    fn permissions_must_be_written_area_colon_action() {
        let args = NewKey {
            permissions: vec!["contacts-read".into()],
            ..key("")
        };
        let errors = field_errors(args.changes(0));
        assert!(errors["permissions"].contains("area:action"), "{errors:?}");
        assert_eq!(errors["name"], "is required", "other problems still show");
        let unknown_area = NewKey {
            permissions: vec!["billing:read".into()],
            ..key("k")
        };
        let errors = field_errors(unknown_area.changes(0));
        assert!(errors["permissions"].contains("unknown area"), "{errors:?}");
    }

    #[test]
    fn the_table_shows_badges_and_never_secrets() {
        let secrets =
            KeySecrets::new(&MasterKey::load(&MasterKeySource::Inline("33".repeat(32))).unwrap());
        let changes = NewKey {
            permissions: vec!["documents:read".into()],
            ..key("line\nbreak")
        }
        .changes(0)
        .unwrap();
        let (with_access, secret) =
            super::super::mint(&secrets, true, "agt_1", None, changes, 0).unwrap();
        let (no_access, other) = super::super::mint(
            &secrets,
            true,
            "agt_1",
            None,
            key("b").changes(0).unwrap(),
            0,
        )
        .unwrap();
        let text = table(&[with_access.clone(), no_access]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("ID "));
        assert!(lines[1].contains("line break") && lines[1].contains("documents"));
        assert!(lines[1].contains(&with_access.preview) && lines[1].ends_with("never"));
        assert!(lines[2].contains("No access"));
        assert!(!text.contains(&secret) && !text.contains(&other));
        let listed = list_json(&[with_access]).to_string();
        assert!(!listed.contains(&secret));
    }
}
