//! The bodies of the members and session endpoints, validated.

use serde_json::{Map, Value};

use super::password_error;
use crate::{
    model::{FieldErrors, member::Role},
    validate::{self, FromBody, email_error, required_string},
};

const ROLE_NAMES: &str = "must be one of owner, admin, member";
const WORKSPACE_NAME_MAX: usize = 100;
/// Name given to a workspace set up without one; the dashboard can rename it.
pub const DEFAULT_WORKSPACE_NAME: &str = "Workspace";

/// An email address field: trimmed and plausible.
fn email(errors: &mut FieldErrors, body: &Map<String, Value>) -> Option<String> {
    let email = required_string(errors, body, "email")?.trim();
    match email_error(email) {
        Some(err) => {
            errors.insert("email".into(), err.into());
            None
        }
        None => Some(email.to_owned()),
    }
}

/// A new password: long enough, not absurdly long.
fn new_password(errors: &mut FieldErrors, body: &Map<String, Value>) -> Option<String> {
    let password = required_string(errors, body, "password")?;
    match password_error(password) {
        Some(err) => {
            errors.insert("password".into(), err);
            None
        }
        None => Some(password.to_owned()),
    }
}

fn role(errors: &mut FieldErrors, body: &Map<String, Value>) -> Option<Role> {
    let role = match body.get("role") {
        Some(Value::String(name)) => Role::from_name(name).ok_or(ROLE_NAMES),
        None | Some(Value::Null) => Err("is required"),
        Some(_) => Err(ROLE_NAMES),
    };
    role.map_err(|err| errors.insert("role".into(), err.into()))
        .ok()
}

/// `POST /api/setup`: the first owner and the workspace's name.
pub struct Setup {
    pub email: String,
    pub password: String,
    pub workspace_name: String,
}

impl FromBody for Setup {
    const FIELDS: &'static [&'static str] = &["email", "password", "workspace_name"];

    fn from_body(body: &Map<String, Value>, errors: &mut FieldErrors) -> Option<Self> {
        let email = email(errors, body);
        let password = new_password(errors, body);
        let workspace_name = match body.get("workspace_name") {
            None | Some(Value::Null) => Some(DEFAULT_WORKSPACE_NAME.to_owned()),
            Some(_) => validate::name(errors, body, "workspace_name", WORKSPACE_NAME_MAX),
        };
        Some(Self {
            email: email?,
            password: password?,
            workspace_name: workspace_name?,
        })
    }
}

/// `POST /api/session`: an email and a password, checked only for being strings (a wrong one
/// is 401 like a wrong password).
pub struct SignIn {
    pub email: String,
    pub password: String,
}

impl FromBody for SignIn {
    const FIELDS: &'static [&'static str] = &["email", "password"];

    fn from_body(body: &Map<String, Value>, errors: &mut FieldErrors) -> Option<Self> {
        let email = required_string(errors, body, "email").map(|e| e.trim().to_owned());
        let password = required_string(errors, body, "password").map(str::to_owned);
        Some(Self {
            email: email?,
            password: password?,
        })
    }
}

/// `POST /api/session/confirm`: `{password}`.
pub struct Confirm {
    pub password: String,
}

impl FromBody for Confirm {
    const FIELDS: &'static [&'static str] = &["password"];

    fn from_body(body: &Map<String, Value>, errors: &mut FieldErrors) -> Option<Self> {
        let password = required_string(errors, body, "password").map(str::to_owned);
        Some(Self {
            password: password?,
        })
    }
}

/// `POST /api/members`: `{email, password, role}`, or `{email, role, invite: true}` to let the
/// member choose their password.
pub struct CreateMember {
    pub email: String,
    pub role: Role,
    /// `None` for an invite.
    pub password: Option<String>,
}

impl FromBody for CreateMember {
    const FIELDS: &'static [&'static str] = &["email", "password", "role", "invite"];

    fn from_body(body: &Map<String, Value>, errors: &mut FieldErrors) -> Option<Self> {
        let invite = validate::flag(errors, body, "invite");
        let password = if invite {
            if body.get("password").is_some_and(|p| !p.is_null()) {
                errors.insert(
                    "password".into(),
                    "must be left out with an invite; the member chooses it".into(),
                );
                return None;
            }
            Some(None)
        } else {
            new_password(errors, body).map(Some)
        };
        let email = email(errors, body);
        let role = role(errors, body);
        Some(Self {
            email: email?,
            role: role?,
            password: password?,
        })
    }
}

/// `PATCH /api/members/{id}`: `{role}` and/or `{password}`.
pub struct MemberPatch {
    pub role: Option<Role>,
    pub password: Option<String>,
}

impl FromBody for MemberPatch {
    const FIELDS: &'static [&'static str] = &["role", "password"];

    fn from_body(body: &Map<String, Value>, errors: &mut FieldErrors) -> Option<Self> {
        let role = body.contains_key("role").then(|| role(errors, body));
        let password = body
            .contains_key("password")
            .then(|| new_password(errors, body));
        if role.is_none() && password.is_none() {
            errors.insert("role".into(), "or `password` is required".into());
            return None;
        }
        Some(Self {
            role: role.map(|r| r.ok_or(())).transpose().ok()?,
            password: password.map(|p| p.ok_or(())).transpose().ok()?,
        })
    }
}

/// `POST /api/invites/accept`: the invite token and the member's new password.
pub struct AcceptInvite {
    pub token: String,
    pub password: String,
}

impl FromBody for AcceptInvite {
    const FIELDS: &'static [&'static str] = &["token", "password"];

    fn from_body(body: &Map<String, Value>, errors: &mut FieldErrors) -> Option<Self> {
        let token = required_string(errors, body, "token").map(|t| t.trim().to_owned());
        let password = new_password(errors, body);
        Some(Self {
            token: token?,
            password: password?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::parse;
    use serde_json::json;

    fn body(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn new_members_are_checked_field_by_field() {
        let ok: CreateMember = parse(&body(
            json!({"email": " a@example.com ", "role": "admin", "password": "long enough pw"}),
        ))
        .unwrap();
        assert_eq!(ok.email, "a@example.com");
        assert_eq!(ok.role, Role::Admin);
        assert_eq!(ok.password.as_deref(), Some("long enough pw"));

        let invite: CreateMember = parse(&body(
            json!({"email": "a@example.com", "role": "member", "invite": true}),
        ))
        .unwrap();
        assert_eq!(invite.password, None);

        let errors = parse::<CreateMember>(&body(
            json!({"email": "not an email", "role": "root", "password": "short"}),
        ))
        .err()
        .unwrap();
        assert_eq!(
            errors.keys().collect::<Vec<_>>(),
            ["email", "password", "role"]
        );
        assert_eq!(errors["role"], ROLE_NAMES);
        let errors = parse::<CreateMember>(&body(json!({"role": 1, "extra": 1})))
            .err()
            .unwrap();
        assert_eq!(errors["extra"], "is not a known field");
        assert_eq!(errors["email"], "is required");
    }

    #[test]
    fn a_patch_needs_a_role_or_a_password() {
        let errors = parse::<MemberPatch>(&body(json!({}))).err().unwrap();
        assert_eq!(errors["role"], "or `password` is required");
        let patch: MemberPatch = parse(&body(json!({"role": "owner"}))).unwrap();
        assert_eq!(patch.role, Some(Role::Owner));
        assert!(parse::<MemberPatch>(&body(json!({"password": "short"}))).is_err());
    }
}
