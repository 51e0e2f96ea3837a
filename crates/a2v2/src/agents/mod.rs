//! Agents: each owns its API keys, contacts and documents; nothing crosses agents.

use serde_json::{Map, Value, json};

use crate::{
    audit,
    error::Result,
    keys::Keys,
    model::{
        FieldErrors,
        agent::Agent,
        audit::{By, NewEvent, Target},
        new_id, now_ms,
        page::{Page, PageRequest},
    },
    store::{self, Store},
    validate::{self, FromBody},
};

pub const NAME_MAX: usize = 100;

/// The body of a create or a rename: `{name}`.
pub struct AgentInput {
    pub name: String,
}

impl FromBody for AgentInput {
    const FIELDS: &'static [&'static str] = &["name"];

    fn from_body(body: &Map<String, Value>, errors: &mut FieldErrors) -> Option<Self> {
        validate::name(errors, body, "name", NAME_MAX).map(|name| Self { name })
    }
}

/// Agents in creation order.
pub async fn list(store: &Store, page: &PageRequest) -> Result<Page<Agent>> {
    let mut conn = store.conn().await?;
    let agents = store::agents::list(&mut conn, page.after.as_deref(), page.limit + 1).await?;
    Ok(Page::from_fetched(agents, page.limit, |a| a.id.clone()))
}

pub async fn get(store: &Store, id: &str) -> Result<Agent> {
    let mut conn = store.conn().await?;
    Ok(store::agents::get(&mut conn, id).await?)
}

pub async fn create(store: &Store, by: &By, input: AgentInput) -> Result<Agent> {
    let now = now_ms();
    let agent = Agent {
        id: new_id("agt"),
        name: input.name,
        created_at: now,
        updated_at: now,
    };
    let mut tx = store.begin().await?;
    store::agents::insert(&mut tx, &agent).await?;
    audit::record(
        &mut tx,
        by,
        NewEvent {
            action: "agent.created",
            agent_id: Some(&agent.id),
            target: Some(Target::new("agent", &agent.id, &agent.name)),
            details: json!({ "name": agent.name }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(agent)
}

pub async fn rename(store: &Store, by: &By, id: &str, input: AgentInput) -> Result<Agent> {
    let mut tx = store.begin().await?;
    let mut agent = store::agents::get(&mut tx, id).await?;
    if agent.name == input.name {
        return Ok(agent);
    }
    let previous = std::mem::replace(&mut agent.name, input.name);
    agent.updated_at = now_ms();
    store::agents::update(&mut tx, &agent).await?;
    audit::record(
        &mut tx,
        by,
        NewEvent {
            action: "agent.updated",
            agent_id: Some(&agent.id),
            target: Some(Target::new("agent", &agent.id, &agent.name)),
            details: json!({ "changes": { "name": { "from": previous, "to": agent.name } } }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(agent)
}

/// Deletes the agent with its keys (revoked at once, as a key change), contacts and documents.
pub async fn delete(keys: &Keys, by: &By, id: &str) -> Result<()> {
    let mut change = keys.begin_change().await?;
    let agent = store::agents::get(change.tx(), id).await?;
    let key_ids = store::agents::delete(change.tx(), &agent.id).await?;
    audit::record(
        change.tx(),
        by,
        NewEvent {
            action: "agent.deleted",
            agent_id: Some(&agent.id),
            target: Some(Target::new("agent", &agent.id, &agent.name)),
            details: json!({ "revoked_api_keys": key_ids }),
        },
    )
    .await?;
    change.commit_removed(key_ids).await
}
