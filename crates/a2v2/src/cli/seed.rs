//! `a2v2 seed`: fills a workspace with many real rows, to try the server at scale — contacts
//! of one agent, API keys across agents, and audit events on the hash chain. Keys are minted
//! by the same code as `keys create` (they verify); contacts carry every column; the events
//! are sealed as they are written, so `a2v2 audit verify` holds. Rows go in with multi-row
//! INSERTs, many per transaction.

use std::time::Instant;

use anyhow::Context;
use serde_json::{Map, Value, json};

use super::keys::open_store;
use crate::{
    agents::{self, AgentInput},
    audit::chain,
    config::Config,
    crypto::{KeySecrets, MasterKey},
    keys::{
        input::{self, KeyChanges},
        service::Keys,
    },
    model::{
        audit::{ActorRef, By},
        contact::{Contact, ContactFields},
        key::{ApiKey, RateLimit},
        new_id, now_ms,
        permissions::{Permission, Permissions},
    },
    store::{self, Store, audit_chain::Sealable},
    validate,
};

/// Rows per transaction: big enough to amortise the commit, small enough to keep memory flat.
const BATCH: usize = 50_000;

/// What to seed.
#[derive(clap::Args, Debug)]
pub struct SeedArgs {
    /// Contacts to add to one agent
    #[arg(long, default_value_t = 0)]
    pub contacts: usize,
    /// API keys to add, spread over the agents
    #[arg(long, default_value_t = 0)]
    pub keys: usize,
    /// Audit events to add (sealed into the hash chain)
    #[arg(long, default_value_t = 0)]
    pub audit_events: usize,
    /// Agents to create for the keys (the contacts go to the first)
    #[arg(long, default_value_t = 10)]
    pub agents: usize,
    /// Put the contacts in this existing agent instead of a new one
    #[arg(long, value_name = "AGENT_ID")]
    pub agent: Option<String>,
}

/// Seeds `args` into the configured database, printing progress lines.
pub async fn run(config: &Config, args: &SeedArgs) -> anyhow::Result<()> {
    let secrets = KeySecrets::new(&MasterKey::load(&config.master_key)?);
    let store = open_store(config, true).await?;
    let keys = Keys::new(store.clone(), secrets, config.key_reveal, config.key_lease);
    keys.check_master_key()
        .await
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let result = seed(&store, &keys, config.key_reveal, args).await;
    store.close().await;
    result
}

async fn seed(
    store: &Store,
    keys: &Keys,
    keep_copies: bool,
    args: &SeedArgs,
) -> anyhow::Result<()> {
    let mut agent_ids = Vec::new();
    if let Some(agent) = &args.agent {
        let mut conn = store.conn().await?;
        store::agents::get(&mut conn, agent)
            .await
            .map_err(|_| anyhow::anyhow!("there is no agent with id {agent}"))?;
        agent_ids.push(agent.clone());
    }
    let wanted = args.agents.max(1);
    for n in agent_ids.len()..wanted {
        let body = Map::from_iter([(
            "name".to_owned(),
            Value::from(format!("Seeded agent {}", n + 1)),
        )]);
        let input: AgentInput =
            validate::parse(&body).map_err(|_| anyhow::anyhow!("invalid agent name"))?;
        let agent = agents::create(store, &By::cli(), input).await?;
        println!("agent {} ({})", agent.id, agent.name);
        agent_ids.push(agent.id);
    }
    if args.keys > 0 {
        seed_keys(store, keys.secrets(), keep_copies, &agent_ids, args.keys).await?;
    }
    if args.contacts > 0 {
        seed_contacts(store, &agent_ids[0], args.contacts).await?;
    }
    if args.audit_events > 0 {
        seed_audit(store, &agent_ids, args.audit_events).await?;
    }
    Ok(())
}

fn progress(what: &str, done: usize, total: usize, started: Instant) {
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{what}: {done}/{total} in {seconds:.1} s ({:.0} rows/s)",
        done as f64 / seconds.max(1e-9)
    );
}

async fn seed_keys(
    store: &Store,
    secrets: &KeySecrets,
    keep_copies: bool,
    agent_ids: &[String],
    total: usize,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let all = Permission::all().fold(Permissions::default(), Permissions::with);
    let (mut first, mut last) = (None, None);
    let mut done = 0;
    while done < total {
        let count = BATCH.min(total - done);
        let now = now_ms();
        let mut rows: Vec<ApiKey> = Vec::with_capacity(count);
        for i in done..done + count {
            let changes = KeyChanges {
                name: Some(format!("Seeded key {}", i + 1)),
                description: Some("Added by a2v2 seed".into()),
                permissions: Some(all),
                rate_limit: Some((i % 10 == 0).then_some(RateLimit {
                    requests: 1000,
                    per_seconds: 60,
                })),
                ..KeyChanges::default()
            };
            let (row, secret) = input::mint(
                secrets,
                keep_copies,
                &agent_ids[i % agent_ids.len()],
                None,
                changes,
                now,
            )?;
            if i == 0 {
                first = Some(secret);
            } else if i + 1 == total {
                last = Some(secret);
            }
            rows.push(row);
        }
        let mut tx = store.begin().await?;
        store::keys::insert_many(&mut tx, &rows).await?;
        tx.commit().await.context("writing keys")?;
        done += count;
        progress("keys", done, total, started);
    }
    // Two of the keys, to try them (the others' secrets are not kept anywhere).
    for (which, secret) in [("first", first), ("last", last)] {
        if let Some(secret) = secret {
            println!("{which} seeded key: {secret}");
        }
    }
    Ok(())
}

const FIRST: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Margaret",
    "Ken",
    "Frances",
    "John",
    "Hedy",
    "Linus",
    "Radia",
    "Tim",
    "Sophie",
    "Katherine",
    "Dennis",
    "Annie",
    "Niklaus",
    "Zoë",
];
const LAST: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Hamilton",
    "Thompson",
    "Allen",
    "McCarthy",
    "Lamarr",
    "Torvalds",
    "Perlman",
    "Berners-Lee",
    "Wilson",
    "Johnson",
    "Ritchie",
    "Easley",
    "Wirth",
    "Meyer",
];
const COMPANY: &[&str] = &[
    "Acme",
    "Initech",
    "Globex",
    "Umbrella",
    "Hooli",
    "Stark Industries",
    "Wayne Enterprises",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
];
const TITLES: &[&str] = &["Engineer", "Buyer", "CTO", "Founder", "Analyst"];

/// Contact `i`: distinct email, varied names; the numbers are fictional (Ofcom's drama range).
fn contact(i: usize, now: i64, by: &ActorRef) -> Contact {
    let first = FIRST[i % FIRST.len()];
    let last = LAST[(i / FIRST.len()) % LAST.len()];
    let company = COMPANY[(i / 7) % COMPANY.len()];
    let digits = format!("{:03}", i % 1000);
    let mut attributes = Map::new();
    attributes.insert("seq".into(), json!(i));
    attributes.insert("source".into(), json!("seed"));
    Contact {
        id: new_id("ct"),
        fields: ContactFields {
            first_name: Some(first.into()),
            last_name: Some(last.into()),
            email: Some(format!("{}.{i}@example.com", last.to_lowercase())),
            phone: Some(format!("+44 20 7946 0{digits}")),
            phone_e164: Some(format!("+442079460{digits}")),
            company: Some(company.into()),
            job_title: Some(TITLES[i % TITLES.len()].into()),
            notes: Some(format!("Seeded contact number {i}.")),
            tags: match i % 3 {
                0 => vec!["seed".into(), format!("group-{}", i % 50)],
                1 => vec!["seed".into()],
                _ => Vec::new(),
            },
            attributes,
        },
        version: 1,
        created_at: now,
        updated_at: now,
        created_by: by.clone(),
        updated_by: by.clone(),
    }
}

async fn seed_contacts(store: &Store, agent_id: &str, total: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    let by = ActorRef::cli();
    let mut done = 0;
    while done < total {
        let count = BATCH.min(total - done);
        let now = now_ms();
        let rows: Vec<Contact> = (done..done + count).map(|i| contact(i, now, &by)).collect();
        let mut tx = store.begin().await?;
        store::contacts::insert_many(&mut tx, agent_id, &rows).await?;
        tx.commit().await.context("writing contacts")?;
        done += count;
        progress("contacts", done, total, started);
    }
    Ok(())
}

const ACTIONS: &[&str] = &[
    "contact.created",
    "contact.updated",
    "api_key.created",
    "api_key.updated",
    "member.signed_in",
    "agent.updated",
];

/// Event `i` of `total`, one every 100 ms ending now, so the time filters have a spread.
fn event(i: usize, total: usize, end: i64, agent_ids: &[String]) -> Sealable {
    let occurred_at = end - (total - i) as i64 * 100;
    let millis = u64::try_from(occurred_at).unwrap_or_default();
    let id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        millis / 1000,
        u32::try_from(millis % 1000).unwrap_or_default() * 1_000_000,
    ));
    let action = ACTIONS[i % ACTIONS.len()];
    let agent_id = &agent_ids[i % agent_ids.len()];
    let actor = format!("key_seed{}", i % 100);
    let target = action.split('.').next().unwrap_or("contact");
    Sealable {
        id: format!("evt_{}", id.simple()),
        occurred_at,
        fields: [
            Some("api_key".into()),
            Some(actor),
            Some("Seeded key".into()),
            Some(action.into()),
            Some(agent_id.clone()),
            Some(target.into()),
            Some(format!("{target}_seed{i}")),
            Some(format!("Seeded {target} {i}")),
            Some(format!("192.0.2.{}", i % 250)),
            Some("a2v2-seed".into()),
            Some(json!({ "seq": i }).to_string()),
        ],
    }
}

async fn seed_audit(store: &Store, agent_ids: &[String], total: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    // Seal what is there first, so the seeded events continue the chain from its head.
    chain::seal(store).await?;
    let end = now_ms();
    let mut done = 0;
    while done < total {
        let count = BATCH.min(total - done);
        let mut events: Vec<Sealable> = (done..done + count)
            .map(|i| event(i, total, end, agent_ids))
            .collect();
        events.sort_by(|a, b| a.id.cmp(&b.id));
        let mut tx = store.begin().await?;
        anyhow::ensure!(
            store::audit_chain::try_lock(&mut tx).await?,
            "another process is sealing the audit log; try again"
        );
        let (mut seq, mut prev) = match store::audit_chain::head(&mut tx).await? {
            Some((seq, hash, _)) => (seq, hash),
            None => (0, String::new()),
        };
        let links: Vec<(i64, String, String)> = events
            .iter()
            .map(|event| {
                seq += 1;
                let hash = chain::hash(&prev, event);
                (seq, std::mem::replace(&mut prev, hash.clone()), hash)
            })
            .collect();
        store::audit_chain::insert_sealed(&mut tx, &events, &links).await?;
        tx.commit().await.context("writing audit events")?;
        done += count;
        progress("audit events", done, total, started);
    }
    Ok(())
}
