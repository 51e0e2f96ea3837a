//! Adding, changing and removing members, and invites. Each change runs in one transaction
//! that applies the rules of `rules`, and appends its audit event there too, so the change and
//! its record commit together or not at all.

use serde_json::{Map, Value, json};

use super::{
    Argon2Pool,
    input::{AcceptInvite, CreateMember, DEFAULT_WORKSPACE_NAME, MemberPatch},
    rules::{self, Change},
    sessions::{self, NewSession},
    throttle::SignInThrottle,
};
use crate::{
    audit,
    crypto::{KeySecrets, random_token},
    error::{DomainError, Result},
    model::{
        audit::{Actor, By, NewEvent, Origin, Target},
        member::{Member, Role},
        new_id, now_ms,
        page::{Page, PageRequest},
    },
    store::{self, Constraint, Db, Store, StoreError},
};

/// How long an invite token can be used.
pub const INVITE_TTL_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// Who asks for a change: the audit actor and origin, and their role (`None` for the operator
/// on the command line, who is not bound by the role rules).
pub struct Acting {
    pub by: By,
    pub role: Option<Role>,
}

impl Acting {
    fn authorize(&self, change: Change) -> Result<()> {
        match self.role {
            Some(role) => rules::authorize(role, change).map_err(DomainError::from),
            None => Ok(()),
        }
    }
}

/// A member just added; with an invite, its one-time token and when it expires.
pub struct Created {
    pub member: Member,
    pub invite: Option<(String, i64)>,
}

/// The stored form of an invite token; the prefix keeps it apart from session token hashes.
fn invite_hash(secrets: &KeySecrets, token: &str) -> String {
    secrets.session_hash(&format!("invite:{token}"))
}

/// Members in the order they were added.
pub async fn list(store: &Store, page: &PageRequest) -> Result<Page<Member>> {
    let mut conn = store.conn().await?;
    let members = store::members::list(&mut conn, page.after.as_deref(), page.limit + 1).await?;
    Ok(Page::from_fetched(members, page.limit, |m| m.id.clone()))
}

/// Adds a member; `Conflict` when the email is taken, case-insensitively. An invited member
/// gets a real hash of a secret nobody knows: sign-in stays impossible and takes as long as
/// for anyone else.
pub async fn create(
    store: &Store,
    secrets: &KeySecrets,
    acting: &Acting,
    input: CreateMember,
) -> Result<Created> {
    // Refuse before spending a password hash on a request that cannot succeed.
    acting.authorize(Change::Create { role: input.role })?;
    let invite = input.password.is_none();
    let password_hash = super::hash_password(
        input.password.unwrap_or_else(random_token),
        Argon2Pool::Members,
    )
    .await?;
    let mut tx = store.begin().await?;
    let member = insert(
        &mut tx,
        acting,
        &input.email,
        input.role,
        &password_hash,
        json!({ "invite": invite }),
    )
    .await?;
    let invite = if invite {
        let token = random_token();
        let now = now_ms();
        let expires_at = now + INVITE_TTL_MS;
        store::invites::insert(
            &mut tx,
            &invite_hash(secrets, &token),
            &member.id,
            now,
            expires_at,
        )
        .await?;
        Some((token, expires_at))
    } else {
        None
    };
    tx.commit().await?;
    Ok(Created { member, invite })
}

async fn insert(
    db: &mut impl Db,
    acting: &Acting,
    email: &str,
    role: Role,
    password_hash: &str,
    details: Value,
) -> Result<Member> {
    acting.authorize(Change::Create { role })?;
    store::members::lock_workspace(db).await?;
    let member = Member {
        id: new_id("mem"),
        email: email.to_owned(),
        role,
        created_at: now_ms(),
    };
    match store::members::insert(db, &member, password_hash).await {
        Err(StoreError::Conflict(Constraint::Unique)) => {
            return Err(DomainError::Conflict(
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
        db,
        &acting.by,
        NewEvent {
            action: "member.created",
            agent_id: None,
            target: Some(Target::new("member", &member.id, &member.email)),
            details: Value::Object(details),
        },
    )
    .await?;
    Ok(member)
}

/// Changes a member's role and/or password. A new password ends the member's other sessions
/// (`keep_session` is the token hash of the caller's own, which survives).
pub async fn update(
    store: &Store,
    acting: &Acting,
    id: &str,
    patch: MemberPatch,
    keep_session: Option<&str>,
) -> Result<Member> {
    let password_hash = match patch.password {
        Some(password) => Some(super::hash_password(password, Argon2Pool::Members).await?),
        None => None,
    };
    let mut tx = store.begin().await?;
    store::members::lock_workspace(&mut tx).await?;
    let mut member = store::members::get(&mut tx, id).await?;
    let role_change = patch.role.map(|to| Change::SetRole {
        from: member.role,
        to,
    });
    if let Some(change) = role_change {
        acting.authorize(change)?;
    }
    if password_hash.is_some() {
        acting.authorize(Change::ResetPassword {
            target: member.role,
        })?;
    }
    if let Some(change) = role_change {
        rules::keeps_an_owner(change, store::members::count_owners(&mut tx).await?)?;
    }
    let now = now_ms();
    let mut details = Map::new();
    if let Some(to) = patch.role.filter(|to| *to != member.role) {
        store::members::set_role(&mut tx, &member.id, to, now).await?;
        details.insert(
            "role".into(),
            json!({ "from": member.role.name(), "to": to.name() }),
        );
        member.role = to;
    }
    if let Some(hash) = &password_hash {
        store::members::set_password_hash(&mut tx, &member.id, hash, now).await?;
        let ended = store::sessions::end_for_member(&mut tx, &member.id, keep_session).await?;
        details.insert("password_reset".into(), json!(true));
        details.insert("sessions_ended".into(), json!(ended));
    }
    if !details.is_empty() {
        // An invite was issued for the member as they were: a new role or password voids it,
        // so it cannot be used to take over what the member has become.
        let voided = store::invites::delete_for_member(&mut tx, &member.id).await?;
        if voided > 0 {
            details.insert("invites_voided".into(), json!(voided));
        }
    }
    if !details.is_empty() {
        audit::record(
            &mut tx,
            &acting.by,
            NewEvent {
                action: "member.updated",
                agent_id: None,
                target: Some(Target::new("member", &member.id, &member.email)),
                details: Value::Object(details),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(member)
}

/// Removes a member and ends their sessions at once.
pub async fn remove(store: &Store, acting: &Acting, id: &str) -> Result<()> {
    let mut tx = store.begin().await?;
    store::members::lock_workspace(&mut tx).await?;
    let member = store::members::get(&mut tx, id).await?;
    let change = Change::Remove {
        target: member.role,
    };
    acting.authorize(change)?;
    rules::keeps_an_owner(change, store::members::count_owners(&mut tx).await?)?;
    // The foreign key cascades too; deleting first keeps the count for the record.
    let ended = store::sessions::end_for_member(&mut tx, &member.id, None).await?;
    store::members::delete(&mut tx, &member.id).await?;
    audit::record(
        &mut tx,
        &acting.by,
        NewEvent {
            action: "member.deleted",
            agent_id: None,
            target: Some(Target::new("member", &member.id, &member.email)),
            details: json!({ "role": member.role.name(), "sessions_ended": ended }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Sets an invited member's password and signs them in. `NotFound` for an unknown, used or
/// expired invite. Guessing tokens is throttled like guessing passwords, before any Argon2
/// work.
pub async fn accept_invite(
    store: &Store,
    secrets: &KeySecrets,
    throttle: &SignInThrottle,
    origin: &Origin,
    input: AcceptInvite,
) -> Result<NewSession> {
    let ip = origin.ip.clone().unwrap_or_default();
    let attempt = throttle.attempt(store, None, &ip, now_ms()).await?;
    let password_hash = super::hash_password(input.password, Argon2Pool::Public).await?;
    let mut tx = store.begin().await?;
    let member_id = store::invites::take(&mut tx, &invite_hash(secrets, &input.token), now_ms())
        .await?
        .ok_or(DomainError::NotFound)?;
    let member = store::members::get(&mut tx, &member_id).await?;
    store::members::set_password_hash(&mut tx, &member.id, &password_hash, now_ms()).await?;
    let by = By {
        actor: Actor::member(&member.id, &member.email),
        origin: origin.clone(),
    };
    audit::record(
        &mut tx,
        &by,
        NewEvent {
            action: "member.updated",
            agent_id: None,
            target: Some(Target::new("member", &member.id, &member.email)),
            details: json!({ "invite_accepted": true }),
        },
    )
    .await?;
    let session = sessions::start(&mut tx, secrets, &member, origin).await?;
    tx.commit().await?;
    attempt.succeeded().await?;
    Ok(session)
}

/// Adds a member from the command line, also before the first setup: then the first member
/// must be an owner, and the workspace is created with them. The audit log records the
/// system as the actor.
pub async fn add_from_cli(
    store: &Store,
    email: &str,
    role: Role,
    password: String,
) -> Result<Member> {
    let password_hash = super::hash_password(password, Argon2Pool::Members).await?;
    let acting = Acting {
        by: By::system(),
        role: None,
    };
    let mut tx = store.begin().await?;
    if store::members::ensure_workspace(&mut tx, DEFAULT_WORKSPACE_NAME, now_ms()).await? {
        audit::record(
            &mut tx,
            &acting.by,
            NewEvent {
                action: "workspace.setup",
                agent_id: None,
                target: Some(Target::new("workspace", "default", DEFAULT_WORKSPACE_NAME)),
                details: json!({ "workspace_name": DEFAULT_WORKSPACE_NAME, "via": "cli" }),
            },
        )
        .await?;
    }
    if role != Role::Owner && store::members::count_owners(&mut tx).await? == 0 {
        return Err(DomainError::Conflict(
            "the workspace has no owner yet: add the first member with --role owner".into(),
        ));
    }
    let member = insert(
        &mut tx,
        &acting,
        email,
        role,
        &password_hash,
        json!({ "via": "cli" }),
    )
    .await?;
    tx.commit().await?;
    Ok(member)
}
