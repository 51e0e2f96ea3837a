//! Adding, changing and removing members. Each function runs inside the caller's
//! transaction, applies the rules of `rules`, and appends its audit event there too, so the
//! change and its record commit together or not at all.

use serde_json::{Map, Value, json};
use sqlx::AnyConnection;

use super::{
    Member, Role,
    rules::{self, Change},
};
use crate::{
    audit::{self, Actor, Event, Origin, Target},
    error::{ApiError, FieldErrors},
    store::{is_unique_violation, new_id, now_ms},
    validate::email_error,
};

/// Who asks for a change: the audit actor, where from, and their role (`None` for the
/// operator on the command line, who is not bound by the role rules).
pub struct ByWhom<'a> {
    pub actor: Actor,
    pub origin: &'a Origin,
    pub role: Option<Role>,
}

impl ByWhom<'_> {
    fn authorize(&self, change: Change) -> Result<(), ApiError> {
        match self.role {
            Some(role) => rules::authorize(role, change).map_err(ApiError::from),
            None => Ok(()),
        }
    }
}

const ROLE_NAMES: &str = "must be one of owner, admin, member";

/// The role named by a JSON value.
pub fn role_field(value: &Value) -> Result<Role, String> {
    match value {
        Value::String(name) => Role::from_name(name).ok_or_else(|| ROLE_NAMES.to_owned()),
        Value::Null => Err("is required".to_owned()),
        _ => Err(ROLE_NAMES.to_owned()),
    }
}

/// A string field, or why it is not one.
pub fn string_field(value: Option<&Value>) -> Result<&str, String> {
    match value {
        Some(Value::String(text)) => Ok(text),
        None | Some(Value::Null) => Err("is required".to_owned()),
        Some(_) => Err("must be a string".to_owned()),
    }
}

/// Refuses fields other than `allowed`.
pub fn only_fields(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    match body.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(ApiError::field(
            &unknown.chars().take(64).collect::<String>(),
            "is not a known field",
        )),
        None => Ok(()),
    }
}

/// The new member's email (trimmed) and password, checked; all problems reported at once.
pub fn check_new(
    email: Result<&str, String>,
    role: Result<Role, String>,
    password: Option<Result<&str, String>>,
) -> Result<(String, Role, Option<String>), ApiError> {
    let mut errors = FieldErrors::new();
    let email = email
        .and_then(|email| {
            let email = email.trim();
            match email_error(email) {
                Some(err) => Err(err.to_owned()),
                None => Ok(email.to_owned()),
            }
        })
        .map_err(|err| errors.insert("email".into(), err))
        .ok();
    let role = role.map_err(|err| errors.insert("role".into(), err)).ok();
    let password = match password {
        None => Some(None),
        Some(password) => password
            .and_then(|password| match super::password_error(password) {
                Some(err) => Err(err),
                None => Ok(Some(password.to_owned())),
            })
            .map_err(|err| errors.insert("password".into(), err))
            .ok(),
    };
    match (email, role, password) {
        (Some(email), Some(role), Some(password)) if errors.is_empty() => {
            Ok((email, role, password))
        }
        _ => Err(ApiError::validation(errors)),
    }
}

/// Adds a member whose password hash (or unusable placeholder, for an invite) is ready.
/// 409 `conflict` when the email is taken, case-insensitively.
pub async fn create(
    conn: &mut AnyConnection,
    by: &ByWhom<'_>,
    email: &str,
    role: Role,
    password_hash: &str,
    details: Value,
) -> Result<Member, ApiError> {
    by.authorize(Change::Create { role })?;
    super::lock_workspace(conn).await?;
    let member = Member {
        id: new_id("mem"),
        email: email.to_owned(),
        role,
        created_at: now_ms(),
    };
    match super::insert(conn, &member, password_hash).await {
        Err(err) if is_unique_violation(&err) => {
            return Err(ApiError::Conflict(
                "A member with this email already exists.".into(),
            ));
        }
        other => other?,
    }
    let mut details = match details {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    details.insert("role".into(), json!(role.name()));
    audit::record(
        conn,
        &by.actor,
        by.origin,
        Event {
            action: "member.created",
            agent_id: None,
            target: Some(Target::new("member", &member.id, &member.email)),
            details: Value::Object(details),
        },
    )
    .await?;
    Ok(member)
}

/// What a `PATCH` asks for; the password is already hashed.
#[derive(Default)]
pub struct Patch {
    pub role: Option<Role>,
    pub password_hash: Option<String>,
}

/// Changes a member's role and/or password. A new password ends the member's other
/// sessions (`keep_session` is the token hash of the caller's own, which survives).
pub async fn update(
    conn: &mut AnyConnection,
    by: &ByWhom<'_>,
    id: &str,
    patch: Patch,
    keep_session: Option<&str>,
) -> Result<Member, ApiError> {
    super::lock_workspace(conn).await?;
    let mut member = super::find(conn, id).await?.ok_or(ApiError::NotFound)?;
    let role_change = patch.role.map(|to| Change::SetRole {
        from: member.role,
        to,
    });
    if let Some(change) = role_change {
        by.authorize(change)?;
    }
    if patch.password_hash.is_some() {
        by.authorize(Change::ResetPassword {
            target: member.role,
        })?;
    }
    if let Some(change) = role_change {
        rules::keeps_an_owner(change, super::count_owners(conn).await?)?;
    }
    let now = now_ms();
    let mut details = Map::new();
    if let Some(to) = patch.role.filter(|to| *to != member.role) {
        super::set_role(conn, &member.id, to, now).await?;
        details.insert(
            "role".into(),
            json!({ "from": member.role.name(), "to": to.name() }),
        );
        member.role = to;
    }
    if let Some(hash) = &patch.password_hash {
        super::set_password_hash(conn, &member.id, hash, now).await?;
        let ended = super::end_sessions(conn, &member.id, keep_session).await?;
        details.insert("password_reset".into(), json!(true));
        details.insert("sessions_ended".into(), json!(ended));
    }
    if !details.is_empty() {
        audit::record(
            conn,
            &by.actor,
            by.origin,
            Event {
                action: "member.updated",
                agent_id: None,
                target: Some(Target::new("member", &member.id, &member.email)),
                details: Value::Object(details),
            },
        )
        .await?;
    }
    Ok(member)
}

/// Removes a member and ends their sessions at once.
pub async fn remove(conn: &mut AnyConnection, by: &ByWhom<'_>, id: &str) -> Result<(), ApiError> {
    super::lock_workspace(conn).await?;
    let member = super::find(conn, id).await?.ok_or(ApiError::NotFound)?;
    let change = Change::Remove {
        target: member.role,
    };
    by.authorize(change)?;
    rules::keeps_an_owner(change, super::count_owners(conn).await?)?;
    // The foreign key cascades too; deleting first keeps the count for the record.
    let ended = super::end_sessions(conn, &member.id, None).await?;
    super::delete(conn, &member.id).await?;
    audit::record(
        conn,
        &by.actor,
        by.origin,
        Event {
            action: "member.deleted",
            agent_id: None,
            target: Some(Target::new("member", &member.id, &member.email)),
            details: json!({ "role": member.role.name(), "sessions_ended": ended }),
        },
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_members_are_checked_field_by_field() {
        let ok = check_new(
            Ok(" a@example.com "),
            Ok(Role::Admin),
            Some(Ok("long enough pw")),
        );
        let (email, role, password) = ok.unwrap();
        assert_eq!(email, "a@example.com");
        assert_eq!(role, Role::Admin);
        assert_eq!(password.as_deref(), Some("long enough pw"));

        let invite = check_new(Ok("a@example.com"), Ok(Role::Member), None).unwrap();
        assert_eq!(invite.2, None);

        let err = check_new(
            Ok("not an email"),
            role_field(&json!("root")),
            Some(Ok("short")),
        )
        .unwrap_err();
        match err {
            ApiError::Validation { fields, .. } => {
                assert_eq!(
                    fields.keys().collect::<Vec<_>>(),
                    ["email", "password", "role"]
                );
                assert_eq!(fields["role"], ROLE_NAMES);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn roles_and_strings_from_json() {
        assert_eq!(role_field(&json!("owner")), Ok(Role::Owner));
        assert!(role_field(&json!(1)).is_err());
        assert_eq!(role_field(&Value::Null), Err("is required".to_owned()));
        assert_eq!(string_field(Some(&json!("x"))), Ok("x"));
        assert!(string_field(Some(&json!(["x"]))).is_err());
        assert!(string_field(None).is_err());
        let body = json!({"role": "admin", "extra": 1});
        assert!(only_fields(body.as_object().unwrap(), &["role"]).is_err());
        assert!(only_fields(body.as_object().unwrap(), &["role", "extra"]).is_ok());
    }
}
