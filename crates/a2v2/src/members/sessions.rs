//! Dashboard sessions: first-run setup, sign-in, sign-out, and finding the member behind a
//! session token. Tokens are stored only as keyed hashes.

use serde_json::json;

use super::{
    Argon2Pool,
    input::{Setup, SignIn},
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
    },
    store::{self, Constraint, Db, Store, StoreError},
    validate::email_error,
};

/// How long a session lasts.
pub const SESSION_TTL_MS: i64 = 12 * 60 * 60 * 1000;

/// A session just started: the token goes into the cookie, the CSRF token into the body.
pub struct NewSession {
    pub member: Member,
    pub token: String,
    pub csrf_token: String,
}

/// The member behind a live session.
#[derive(Clone, Debug)]
pub struct Session {
    pub member: Member,
    pub csrf_token: String,
    /// The stored hash of the session's token.
    pub token_hash: String,
    /// When (unix ms) the member last entered their password: signing in or confirming.
    pub confirmed_at: i64,
}

/// How long a password confirmation allows copying keys.
pub const CONFIRMATION_MS: i64 = 10 * 60 * 1000;

impl Session {
    /// Whether the member entered their password within [`CONFIRMATION_MS`].
    pub fn recently_confirmed(&self, now: i64) -> bool {
        now - self.confirmed_at <= CONFIRMATION_MS
    }
}

pub async fn setup_needed(store: &Store) -> Result<bool> {
    let mut conn = store.conn().await?;
    Ok(store::members::count(&mut conn).await? == 0)
}

/// Creates the workspace and its first owner, signed in; `AlreadySetUp` once there is a member.
pub async fn setup(
    store: &Store,
    secrets: &KeySecrets,
    throttle: &SignInThrottle,
    origin: &Origin,
    input: Setup,
) -> Result<NewSession> {
    // Unauthenticated and followed by deliberately slow work: throttled like sign-ins.
    let ip = origin.ip.clone().unwrap_or_default();
    let attempt = throttle.attempt(store, None, &ip, now_ms()).await?;
    // Checked before the password hash, and again in the transaction.
    if !setup_needed(store).await? {
        return Err(DomainError::AlreadySetUp);
    }
    let password_hash = super::hash_password(input.password, Argon2Pool::Public).await?;
    let now = now_ms();
    let member = Member {
        id: new_id("mem"),
        email: input.email,
        role: Role::Owner,
        created_at: now,
    };
    let mut tx = store.begin().await?;
    if store::members::count(&mut tx).await? > 0 {
        return Err(DomainError::AlreadySetUp);
    }
    // The fixed primary key makes a concurrent second setup fail instead of adding an owner.
    match store::members::create_workspace(&mut tx, &input.workspace_name, now).await {
        Err(StoreError::Conflict(Constraint::Unique)) => return Err(DomainError::AlreadySetUp),
        other => other?,
    }
    store::members::insert(&mut tx, &member, &password_hash).await?;
    let by = By {
        actor: Actor::member(&member.id, &member.email),
        origin: origin.clone(),
    };
    audit::record(
        &mut tx,
        &by,
        NewEvent {
            action: "workspace.setup",
            agent_id: None,
            target: Some(Target::new("workspace", "default", &input.workspace_name)),
            details: json!({ "workspace_name": input.workspace_name }),
        },
    )
    .await?;
    let session = start(&mut tx, secrets, &member, origin).await?;
    tx.commit().await?;
    attempt.succeeded().await?;
    Ok(session)
}

/// Creates a session row and records `session.created`, in the caller's transaction.
pub async fn start(
    db: &mut impl Db,
    secrets: &KeySecrets,
    member: &Member,
    origin: &Origin,
) -> Result<NewSession> {
    let token = random_token();
    let csrf_token = random_token();
    let now = now_ms();
    store::sessions::insert(
        db,
        &secrets.session_hash(&token),
        &member.id,
        &csrf_token,
        now,
        now + SESSION_TTL_MS,
    )
    .await?;
    let by = By {
        actor: Actor::member(&member.id, &member.email),
        origin: origin.clone(),
    };
    audit::record(
        db,
        &by,
        NewEvent {
            action: "session.created",
            agent_id: None,
            target: Some(Target::new("member", &member.id, &member.email)),
            details: json!({}),
        },
    )
    .await?;
    Ok(NewSession {
        member: member.clone(),
        token,
        csrf_token,
    })
}

/// Signs in: `InvalidCredentials` for a wrong email or password alike, `RateLimited` when
/// throttled. Unknown emails cost the same Argon2 work as known ones.
pub async fn sign_in(
    store: &Store,
    secrets: &KeySecrets,
    throttle: &SignInThrottle,
    origin: &Origin,
    input: SignIn,
) -> Result<NewSession> {
    let ip = origin.ip.clone().unwrap_or_default();
    let email = input.email;
    // A string that is not an email cannot match a member; it counts against the IP only
    // (and stays out of storage queries, where PostgreSQL would refuse a NUL byte).
    let plausible = email_error(&email).is_none();
    let throttled_email = plausible.then_some(email.as_str());
    let attempt = throttle
        .attempt(store, throttled_email, &ip, now_ms())
        .await?;
    let found = if plausible {
        let mut conn = store.conn().await?;
        store::members::find_by_email(&mut conn, &email).await?
    } else {
        None
    };
    let (member, hash) = match found {
        Some((member, hash)) => (Some(member), Some(hash)),
        None => (None, None),
    };
    let password_ok = super::verify_password(input.password, hash).await;
    if let Some(member) = member.filter(|_| password_ok) {
        attempt.succeeded().await?;
        let mut tx = store.begin().await?;
        let session = start(&mut tx, secrets, &member, origin).await?;
        tx.commit().await?;
        return Ok(session);
    }
    let label: String = email
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    let by = By {
        actor: Actor {
            kind: "member".into(),
            id: None,
            label: Some(label),
        },
        origin: origin.clone(),
    };
    let mut tx = store.begin().await?;
    audit::record(
        &mut tx,
        &by,
        NewEvent {
            action: "session.failed",
            agent_id: None,
            target: None,
            details: json!({ "reason": "invalid_credentials" }),
        },
    )
    .await?;
    tx.commit().await?;
    Err(DomainError::InvalidCredentials)
}

/// The live session of `token`, if there is one.
pub async fn authenticate(
    store: &Store,
    secrets: &KeySecrets,
    token: &str,
) -> Result<Option<Session>> {
    let token_hash = secrets.session_hash(token);
    let mut conn = store.conn().await?;
    let found = store::sessions::find_live(&mut conn, &token_hash, now_ms()).await?;
    Ok(found.map(|(member, csrf_token, confirmed_at)| Session {
        member,
        csrf_token,
        token_hash,
        confirmed_at,
    }))
}

/// Checks the member's password again and, when right, starts a new confirmation window for
/// this session. Throttled like sign-in; `InvalidCredentials` when wrong.
pub async fn confirm(
    store: &Store,
    throttle: &SignInThrottle,
    session: &Session,
    origin: &Origin,
    password: String,
) -> Result<()> {
    let ip = origin.ip.clone().unwrap_or_default();
    let email = session.member.email.clone();
    let attempt = throttle
        .attempt(store, Some(email.as_str()), &ip, now_ms())
        .await?;
    let hash = {
        let mut conn = store.conn().await?;
        store::members::find_by_email(&mut conn, &email)
            .await?
            .map(|(_, hash)| hash)
    };
    if !super::verify_password(password, hash).await {
        return Err(DomainError::InvalidCredentials);
    }
    attempt.succeeded().await?;
    let mut conn = store.conn().await?;
    store::sessions::confirm(&mut conn, &session.token_hash, now_ms()).await?;
    Ok(())
}

/// Ends the session with this token hash.
pub async fn sign_out(store: &Store, token_hash: &str) -> Result<()> {
    let mut conn = store.conn().await?;
    store::sessions::delete(&mut conn, token_hash).await?;
    Ok(())
}

/// Deletes expired sessions and invites; returns how many of each.
pub async fn purge_expired(store: &Store) -> Result<(u64, u64)> {
    let mut conn = store.conn().await?;
    let now = now_ms();
    let sessions = store::sessions::delete_expired(&mut conn, now).await?;
    let invites = store::invites::delete_expired(&mut conn, now).await?;
    Ok((sessions, invites))
}
