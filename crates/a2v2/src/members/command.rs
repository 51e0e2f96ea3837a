//! `a2v2 members add`: adds a member from the command line, also before the first setup
//! (then the first member must be an owner, and the workspace is created with them).

use std::{io::IsTerminal, path::Path};

use anyhow::{Context, bail};
use serde_json::json;

use super::{
    Member, Role,
    manage::{self, ByWhom},
};
use crate::{
    audit::{self, Actor, Event, Origin, Target},
    config::Config,
    error::ApiError,
    store::{Store, now_ms},
};

/// Environment variable read for the password when no file is given.
pub const PASSWORD_ENV: &str = "A2V2_MEMBER_PASSWORD";

/// Name given to a workspace created from the command line; the dashboard can rename it.
const DEFAULT_WORKSPACE_NAME: &str = "Workspace";

/// Parses `--role`.
pub fn parse_role(name: &str) -> Result<Role, String> {
    Role::from_name(name).ok_or_else(|| "must be one of owner, admin, member".to_owned())
}

/// The new member's password: from `file`, else from `env_value`, else asked on the terminal.
pub fn read_password(file: Option<&Path>, env_value: Option<String>) -> anyhow::Result<String> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the password file {}", path.display()))?;
        return Ok(strip_line_end(text));
    }
    if let Some(password) = env_value.filter(|p| !p.is_empty()) {
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        bail!("no password given: use --password-file or {PASSWORD_ENV}, or run on a terminal");
    }
    let first = prompt_hidden("Password: ")?;
    let second = prompt_hidden("Repeat the password: ")?;
    if first != second {
        bail!("the passwords differ");
    }
    Ok(first)
}

/// A password file usually ends with one newline that is not part of the password.
fn strip_line_end(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

/// Reads one line from the terminal without echoing it.
fn prompt_hidden(prompt: &str) -> anyhow::Result<String> {
    use std::io::Write;
    eprint!("{prompt}");
    std::io::stderr().flush().ok();
    let echo_off = set_echo(false);
    let mut line = String::new();
    let read = std::io::stdin().read_line(&mut line);
    if echo_off {
        set_echo(true);
    }
    eprintln!();
    read.context("reading the password")?;
    Ok(strip_line_end(line))
}

/// Turns terminal echo on or off with `stty`; false when that is not possible.
fn set_echo(on: bool) -> bool {
    std::process::Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(std::process::Stdio::inherit())
        .status()
        .is_ok_and(|status| status.success())
}

/// Turns a refusal into a sentence for the terminal, with each field's problem.
fn explain(err: ApiError) -> anyhow::Error {
    match err {
        ApiError::Validation { fields, .. } => anyhow::anyhow!(
            "{}",
            fields
                .iter()
                .map(|(field, problem)| format!("{field} {problem}"))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        ApiError::Internal(err) => err,
        other => anyhow::anyhow!("{other}"),
    }
}

/// Adds a member; the audit log records it as done by the system. Migrates the database
/// first, so it also works on a fresh data directory.
pub async fn add(
    config: &Config,
    email: &str,
    role: Role,
    password: &str,
) -> anyhow::Result<Member> {
    let (email, role, password) =
        manage::check_new(Ok(email), Ok(role), Some(Ok(password))).map_err(explain)?;
    crate::config::ensure_dir(&config.data_dir)?;
    let store = Store::connect(&config.database_url).await?;
    store.migrate().await?;
    let password_hash = super::hash_password(password.unwrap_or_default()).await?;
    let actor = Actor::system();
    let origin = Origin::default();
    let mut tx = store.begin().await?;
    let created = super::ensure_workspace(&mut tx, DEFAULT_WORKSPACE_NAME, now_ms()).await?;
    if created {
        audit::record(
            &mut tx,
            &actor,
            &origin,
            Event {
                action: "workspace.setup",
                agent_id: None,
                target: Some(Target::new("workspace", "default", DEFAULT_WORKSPACE_NAME)),
                details: json!({ "workspace_name": DEFAULT_WORKSPACE_NAME, "via": "cli" }),
            },
        )
        .await?;
    }
    if role != Role::Owner && super::count_owners(&mut tx).await? == 0 {
        bail!("the workspace has no owner yet: add the first member with --role owner");
    }
    let by = ByWhom {
        actor,
        origin: &origin,
        role: None,
    };
    let member = manage::create(
        &mut tx,
        &by,
        &email,
        role,
        &password_hash,
        json!({ "via": "cli" }),
    )
    .await
    .map_err(explain)?;
    tx.commit().await?;
    store.pool.close().await;
    Ok(member)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_files_lose_their_last_line_end_only() {
        assert_eq!(strip_line_end("secret pw\n".into()), "secret pw");
        assert_eq!(strip_line_end("secret pw\r\n".into()), "secret pw");
        assert_eq!(strip_line_end("secret pw \n\n".into()), "secret pw \n");
        assert_eq!(strip_line_end("secret".into()), "secret");
    }

    #[test]
    fn a_file_wins_over_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "from the file\n").unwrap();
        let password = read_password(Some(&path), Some("from env".into())).unwrap();
        assert_eq!(password, "from the file");
        assert_eq!(
            read_password(None, Some("from env".into())).unwrap(),
            "from env"
        );
        assert!(read_password(Some(&dir.path().join("missing")), None).is_err());
    }

    fn config(dir: &Path) -> Config {
        crate::config::ConfigArgs {
            data_dir: Some(dir.to_path_buf()),
            ..Default::default()
        }
        .resolve()
        .unwrap()
    }

    #[tokio::test]
    async fn adds_members_before_and_after_setup() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let refused = add(&config, "m@example.com", Role::Member, "long enough pw").await;
        assert!(refused.unwrap_err().to_string().contains("--role owner"));
        let owner = add(&config, "o@example.com", Role::Owner, "long enough pw")
            .await
            .unwrap();
        assert_eq!(owner.role, Role::Owner);
        let member = add(&config, "m@example.com", Role::Member, "long enough pw")
            .await
            .unwrap();
        assert_eq!(member.role, Role::Member);
        let taken = add(&config, "M@Example.com", Role::Admin, "long enough pw").await;
        assert!(taken.unwrap_err().to_string().contains("already exists"));
        let short = add(&config, "x@example.com", Role::Admin, "short").await;
        assert!(
            short
                .unwrap_err()
                .to_string()
                .contains("password must be at least 12")
        );

        let store = Store::connect(&config.database_url).await.unwrap();
        let rows = sqlx::query("SELECT action, actor_type FROM audit_events ORDER BY id")
            .fetch_all(&store.pool)
            .await
            .unwrap();
        let events: Vec<(String, String)> = rows
            .iter()
            .map(|row| {
                use sqlx::Row;
                (row.get("action"), row.get("actor_type"))
            })
            .collect();
        let expected = [
            ("workspace.setup", "system"),
            ("member.created", "system"),
            ("member.created", "system"),
        ];
        assert_eq!(
            events,
            expected.map(|(a, t)| (a.to_owned(), t.to_owned())).to_vec()
        );
    }
}
