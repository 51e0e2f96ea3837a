//! `a2v2 agents list|create`: agents from the command line, through the same service as the
//! management API, audited with the `cli` actor.

use anyhow::Context;
use serde_json::Value;

use super::keys::open_store;
use crate::{
    agents::{self, AgentInput},
    config::Config,
    error::DomainError,
    model::{
        agent::Agent,
        audit::By,
        page::{MAX_LIMIT, PageRequest},
        time::to_rfc3339,
    },
    validate,
};

/// Every agent, oldest first.
pub async fn list(config: &Config) -> anyhow::Result<Vec<Agent>> {
    let store = open_store(config, false).await?;
    let mut all = Vec::new();
    let mut page = PageRequest {
        limit: MAX_LIMIT,
        after: None,
    };
    let listed = loop {
        match agents::list(&store, &page).await {
            Ok(found) => {
                page.after = found.next_cursor.clone();
                all.extend(found.data);
                if page.after.is_none() {
                    break Ok(all);
                }
            }
            Err(err) => break Err(anyhow::Error::from(err)),
        }
    };
    store.close().await;
    listed
}

/// Creates an agent named `name`.
pub async fn create(config: &Config, name: &str) -> anyhow::Result<Agent> {
    let body = serde_json::Map::from_iter([("name".to_owned(), Value::from(name))]);
    let input: AgentInput = validate::parse(&body).map_err(|fields| {
        anyhow::anyhow!(
            "{}",
            fields
                .iter()
                .map(|(field, problem)| format!("{field} {problem}"))
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    let store = open_store(config, true).await?;
    let created = agents::create(&store, &By::cli(), input)
        .await
        .map_err(|err: DomainError| anyhow::Error::from(err))
        .context("creating the agent");
    store.close().await;
    created
}

/// The agents as a table: id, name, created.
pub fn table(agents: &[Agent]) -> String {
    let one_line = |name: &str| -> String {
        name.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    };
    let id_width = agents.iter().map(|a| a.id.len()).max().unwrap_or(0).max(2);
    let name_width = agents
        .iter()
        .map(|a| a.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let mut out = format!("{:<id_width$}  {:<name_width$}  CREATED\n", "ID", "NAME");
    for agent in agents {
        out.push_str(&format!(
            "{:<id_width$}  {:<name_width$}  {}\n",
            agent.id,
            one_line(&agent.name),
            to_rfc3339(agent.created_at)
        ));
    }
    out
}
