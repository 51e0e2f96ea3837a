//! `a2v2 keys create|list|delete|roll`: API keys from the command line, for automation.
//!
//! The same rules as the management API (`keys::input`), the same service (`keys::Keys`), an
//! audit event with a `system` actor labelled `cli`, and an entry in the key change feed,
//! through which a running server applies the change within about a second.

use anyhow::bail;
use serde_json::{Map, Value, json};

use crate::{
    config::{Config, MasterKeySource},
    crypto::{KeySecrets, MasterKey},
    error::DomainError,
    keys::{
        Keys,
        input::{CreateKey, KeyChanges, MAX_GRACE_SECONDS},
    },
    model::{
        FieldErrors,
        audit::By,
        key::{ApiKey, KeyView},
        page::Page,
        time::{opt_rfc3339, to_rfc3339},
    },
    store::{self, Store},
    validate,
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
    pub fn changes(&self) -> Result<KeyChanges, FieldErrors> {
        let (body, mut errors) = self.body();
        match validate::parse::<CreateKey>(&body) {
            Ok(CreateKey(changes)) if errors.is_empty() => Ok(changes),
            Ok(_) => Err(errors),
            Err(fields) => {
                errors.extend(fields);
                Err(errors)
            }
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

/// Refused fields as one sentence for the terminal:
/// `name (--name) must be at most 100 characters`.
fn explain(fields: &FieldErrors) -> anyhow::Error {
    anyhow::anyhow!(
        "{}",
        fields
            .iter()
            .map(|(field, problem)| format!("{field} ({}) {problem}", flag(field)))
            .collect::<Vec<_>>()
            .join("; ")
    )
}

pub(super) async fn open_store(config: &Config, migrate: bool) -> anyhow::Result<Store> {
    crate::config::ensure_dir(&config.data_dir)?;
    let store = Store::connect(&config.database_url).await?;
    if migrate {
        store.migrate().await?;
    }
    Ok(store)
}

/// The server's master key. Never generated here: a key made under a new master key would
/// not verify on the server.
pub(super) fn secrets(config: &Config) -> anyhow::Result<KeySecrets> {
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

fn no_agent(err: DomainError, agent_id: &str) -> anyhow::Error {
    match err {
        DomainError::NotFound => anyhow::anyhow!("there is no agent with id {agent_id}"),
        other => other.into(),
    }
}

/// Creates a key for `agent_id`; returns it with its secret in `key`, shown only this once.
pub async fn create(config: &Config, agent_id: &str, key: &NewKey) -> anyhow::Result<KeyView> {
    let changes = key.changes().map_err(|fields| explain(&fields))?;
    let secrets = secrets(config)?;
    let store = open_store(config, true).await?;
    let keys = Keys::new(store.clone(), secrets, config.key_reveal, config.key_lease);
    keys.check_master_key()
        .await
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let created = keys
        .create(&By::cli(), agent_id, None, changes)
        .await
        .map_err(|err| no_agent(err, agent_id));
    store.close().await;
    created
}

/// The keys of `agent_id`, newest first, without secrets.
pub async fn list(config: &Config, agent_id: &str) -> anyhow::Result<Vec<ApiKey>> {
    let store = open_store(config, false).await?;
    let listed = async {
        let mut conn = store.conn().await?;
        store::agents::get(&mut conn, agent_id).await?;
        Ok::<_, DomainError>(store::keys::list(&mut conn, agent_id).await?)
    }
    .await
    .map_err(|err| no_agent(err, agent_id));
    store.close().await;
    listed
}

/// Deletes (revokes) a key of `agent_id`; returns it as it was.
pub async fn delete(config: &Config, agent_id: &str, key_id: &str) -> anyhow::Result<ApiKey> {
    let secrets = secrets(config)?;
    let store = open_store(config, true).await?;
    let keys = Keys::new(store.clone(), secrets, config.key_reveal, config.key_lease);
    let deleted = async {
        let mut conn = store.conn().await?;
        store::agents::get(&mut conn, agent_id)
            .await
            .map_err(|err| no_agent(err.into(), agent_id))?;
        drop(conn);
        keys.delete(&By::cli(), agent_id, key_id)
            .await
            .map_err(|err| match err {
                DomainError::NotFound => {
                    anyhow::anyhow!("agent {agent_id} has no API key with id {key_id}")
                }
                other => other.into(),
            })
    }
    .await;
    store.close().await;
    deleted
}

/// Rolls a key of `agent_id`: a new secret, the old one valid for `grace_seconds` more.
pub async fn roll(
    config: &Config,
    agent_id: &str,
    key_id: &str,
    grace_seconds: u64,
) -> anyhow::Result<KeyView> {
    if grace_seconds > MAX_GRACE_SECONDS {
        bail!("--grace-seconds must be at most {MAX_GRACE_SECONDS} (a week)");
    }
    let secrets = secrets(config)?;
    let store = open_store(config, true).await?;
    let keys = Keys::new(store.clone(), secrets, config.key_reveal, config.key_lease);
    let rolled = async {
        keys.check_master_key()
            .await
            .map_err(|err| anyhow::anyhow!("{err}"))?;
        let mut conn = store.conn().await?;
        store::agents::get(&mut conn, agent_id)
            .await
            .map_err(|err| no_agent(err.into(), agent_id))?;
        drop(conn);
        keys.roll(&By::cli(), agent_id, key_id, grace_seconds)
            .await
            .map_err(|err| match err {
                DomainError::NotFound => {
                    anyhow::anyhow!("agent {agent_id} has no API key with id {key_id}")
                }
                other => other.into(),
            })
    }
    .await;
    store.close().await;
    rolled
}

/// The keys as the management API lists them.
pub fn list_json(rows: &[ApiKey]) -> Value {
    let page = Page::complete(
        rows.iter()
            .map(|row| row.view(None, crate::model::now_ms()))
            .collect(),
    );
    serde_json::to_value(page).unwrap_or_default()
}

/// The keys as a table: id, name, access, preview, created, last used.
pub fn table(rows: &[ApiKey]) -> String {
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
    use crate::{
        keys::input::mint,
        model::{
            ip,
            permissions::{Action, Area, Permission, Permissions},
        },
    };

    fn key(name: &str) -> NewKey {
        NewKey {
            name: name.to_owned(),
            ..NewKey::default()
        }
    }

    fn field_errors(result: Result<KeyChanges, FieldErrors>) -> FieldErrors {
        result.expect_err("expected a validation error")
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
        let changes = args.changes().unwrap();
        assert_eq!(changes.name.as_deref(), Some("Zapier sync"));
        assert_eq!(changes.description.as_deref(), Some("Nightly export"));
        let ips = ip::display_list(&changes.ip_nets.unwrap());
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
        let changes = key("bare").changes().unwrap();
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
        let errors = field_errors(args.changes());
        assert_eq!(errors["name"], "must be at most 100 characters");
        assert!(errors["ip_addresses"].contains("300.1.1.1"), "{errors:?}");
        assert!(
            errors["permissions"].contains("unknown action"),
            "{errors:?}"
        );
        assert_eq!(errors["expires_at"], "must be in the future");
        let message = explain(&args.changes().unwrap_err()).to_string();
        assert!(message.contains("name (--name) must be at most 100 characters"));
        assert!(message.contains("ip_addresses (--ip) entry 2"), "{message}");
    }

    #[test]
    fn permissions_must_be_written_area_colon_action() {
        let args = NewKey {
            permissions: vec!["contacts-read".into()],
            ..key("")
        };
        let errors = field_errors(args.changes());
        assert!(errors["permissions"].contains("area:action"), "{errors:?}");
        assert_eq!(errors["name"], "is required", "other problems still show");
        let unknown_area = NewKey {
            permissions: vec!["billing:read".into()],
            ..key("k")
        };
        let errors = field_errors(unknown_area.changes());
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
        .changes()
        .unwrap();
        let (with_access, secret) = mint(&secrets, true, "agt_1", None, changes, 0).unwrap();
        let (no_access, other) = mint(
            &secrets,
            true,
            "agt_1",
            None,
            key("b").changes().unwrap(),
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
