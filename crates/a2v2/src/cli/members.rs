//! `a2v2 members add`: adds a member from the command line, also before the first setup
//! (then the first member must be an owner, and the workspace is created with them).

use std::{io::IsTerminal, path::Path};

use anyhow::{Context, bail};

use crate::{
    config::Config,
    error::DomainError,
    members::{input::CreateMember, service},
    model::member::{Member, Role},
    store::Store,
    validate,
};

/// Environment variable read for the password when no file is given.
pub const PASSWORD_ENV: &str = "A2V2_MEMBER_PASSWORD";

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
fn explain(err: DomainError) -> anyhow::Error {
    match err {
        DomainError::Validation(fields) => anyhow::anyhow!(
            "{}",
            fields
                .iter()
                .map(|(field, problem)| format!("{field} {problem}"))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        DomainError::Internal(err) => err,
        other => anyhow::anyhow!("{other}"),
    }
}

/// Adds a member; the audit log records it as done by the system. Migrates the database
/// first, so it also works on a fresh data directory.
pub async fn add(
    config: &Config,
    email: &str,
    role: Role,
    password: String,
) -> anyhow::Result<Member> {
    let body = serde_json::Map::from_iter([
        ("email".to_owned(), email.into()),
        ("role".to_owned(), role.name().into()),
        ("password".to_owned(), password.into()),
    ]);
    let input: CreateMember =
        validate::parse(&body).map_err(|fields| explain(DomainError::Validation(fields)))?;
    crate::config::ensure_dir(&config.data_dir)?;
    let store = Store::connect(&config.database_url).await?;
    store.migrate().await?;
    let added = service::add_from_cli(
        &store,
        &input.email,
        input.role,
        input.password.unwrap_or_default(),
    )
    .await
    .map_err(explain);
    store.close().await;
    added
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
        let refused = add(
            &config,
            "m@example.com",
            Role::Member,
            "long enough pw".into(),
        )
        .await;
        assert!(refused.unwrap_err().to_string().contains("--role owner"));
        let owner = add(
            &config,
            "o@example.com",
            Role::Owner,
            "long enough pw".into(),
        )
        .await
        .unwrap();
        assert_eq!(owner.role, Role::Owner);
        let member = add(
            &config,
            "m@example.com",
            Role::Member,
            "long enough pw".into(),
        )
        .await
        .unwrap();
        assert_eq!(member.role, Role::Member);
        let taken = add(
            &config,
            "M@Example.com",
            Role::Admin,
            "long enough pw".into(),
        )
        .await;
        assert!(taken.unwrap_err().to_string().contains("already exists"));
        let short = add(&config, "x@example.com", Role::Admin, "short".into()).await;
        assert!(
            short
                .unwrap_err()
                .to_string()
                .contains("password must be at least 12")
        );

        let store = Store::connect(&config.database_url).await.unwrap();
        let page = crate::audit::list(&store, &crate::audit::query::AuditQuery::default())
            .await
            .unwrap();
        let mut events: Vec<(String, String)> = page
            .data
            .iter()
            .map(|event| (event.action.clone(), event.actor.kind.to_string()))
            .collect();
        events.reverse();
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
