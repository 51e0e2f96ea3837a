//! `api_request.denied` events, bounded: the first denial of a kind (key, or client IP for
//! unknown keys, and reason) in a minute is written at once; later ones in that minute only
//! raise its count, flushed every few seconds. A flood of bad requests costs one row a minute.
//! Unknown keys are grouped by client address (an IPv6 client by its /64, which one host
//! controls whole), and at most `MAX_KINDS` kinds are tracked: beyond that, denials share one
//! overflow event per reason, so many sources cannot fill the disk either.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use dashmap::DashMap;
use serde_json::json;
use tokio::{
    sync::{Notify, mpsc},
    task::JoinHandle,
};

use crate::{
    model::{
        audit::{Actor, By, NewEvent, Origin, Target},
        new_id, now_ms,
    },
    store::{self, Store, StoreError},
};

const FLUSH_EVERY: Duration = Duration::from_secs(2);
const MAX_KINDS: usize = 10_000;
const QUEUE: usize = 4_096;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Kind {
    subject: String,
    reason: &'static str,
}

struct Slot {
    minute: i64,
    event_id: String,
    count: u64,
    flushed: u64,
}

/// Denials seen since start, before aggregation.
static SEEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub fn seen() -> u64 {
    SEEN.load(std::sync::atomic::Ordering::Relaxed)
}

/// What is known about one denied request.
pub struct Denial {
    pub reason: &'static str,
    /// The key's id, name and agent id, as the key cache holds them.
    pub key: Option<(String, String, Arc<str>)>,
    pub ip: String,
    pub user_agent: Option<String>,
    pub method: String,
    pub path: String,
    pub required_permission: Option<String>,
}

struct Pending {
    id: String,
    denial: Denial,
    /// The final count of the event this kind's previous minute wrote, when some of it was
    /// not flushed yet: written before the new event so a minute boundary loses nothing.
    retired: Option<(String, u64)>,
}

#[derive(Clone)]
pub struct Denials {
    slots: Arc<DashMap<Kind, Slot>>,
    writer: mpsc::Sender<Pending>,
    stop: Arc<Notify>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

/// The address an unknown key's denials are grouped under.
fn source_of(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => ipnet::Ipv6Net::new(v6, 64)
            .map(|net| net.trunc().to_string())
            .unwrap_or_else(|_| ip.to_owned()),
        _ => ip.to_owned(),
    }
}

impl Denials {
    /// Starts the background writer; [`Self::shutdown`] drains and stops it.
    pub fn start(store: Store) -> Self {
        let (writer, inbox) = mpsc::channel(QUEUE);
        let slots = Arc::new(DashMap::new());
        let stop = Arc::new(Notify::new());
        let task = tokio::spawn(write_events(
            store,
            inbox,
            Arc::clone(&slots),
            Arc::clone(&stop),
        ));
        Self {
            slots,
            writer,
            stop,
            task: Arc::new(Mutex::new(Some(task))),
        }
    }

    /// Writes every queued event and count, then stops the writer. Called before storage
    /// closes at shutdown, so no denial seen before it is lost.
    pub async fn shutdown(&self) {
        self.stop.notify_one();
        let task = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(task) = task
            && let Err(err) = task.await
        {
            tracing::error!(error = %err, "the audit writer failed while stopping");
        }
    }

    pub fn record(&self, denial: Denial) {
        SEEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let minute = now_ms() / 60_000;
        let mut kind = Kind {
            subject: match &denial.key {
                Some((key_id, _, _)) => key_id.clone(),
                None => source_of(&denial.ip),
            },
            reason: denial.reason,
        };
        if self.slots.len() >= MAX_KINDS && !self.slots.contains_key(&kind) {
            kind.subject = "overflow".to_owned();
        }
        let mut slot = self.slots.entry(kind).or_insert_with(|| Slot {
            minute: i64::MIN,
            event_id: String::new(),
            count: 0,
            flushed: 0,
        });
        if slot.minute == minute {
            slot.count += 1;
            return;
        }
        let id = new_id("evt");
        let retired = (slot.count > slot.flushed).then(|| (slot.event_id.clone(), slot.count));
        *slot = Slot {
            minute,
            event_id: id.clone(),
            count: 1,
            flushed: 1,
        };
        // Sent while the slot's shard is still locked: a flush that sees this slot finds its
        // event already queued, so it can insert the event before updating its count.
        if self
            .writer
            .try_send(Pending {
                id,
                denial,
                retired,
            })
            .is_err()
        {
            tracing::warn!("audit writer is behind or stopped; a denied request was not recorded");
        }
    }
}

async fn write_events(
    store: Store,
    mut inbox: mpsc::Receiver<Pending>,
    slots: Arc<DashMap<Kind, Slot>>,
    stop: Arc<Notify>,
) {
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    loop {
        tokio::select! {
            biased;
            () = stop.notified() => {
                inbox.close();
                flush_counts(&store, &slots, &mut inbox).await;
                return;
            }
            next = inbox.recv() => match next {
                Some(event) => write(&store, event).await,
                None => {
                    flush_counts(&store, &slots, &mut inbox).await;
                    return;
                }
            },
            _ = tick.tick() => flush_counts(&store, &slots, &mut inbox).await,
        }
    }
}

async fn write(store: &Store, mut event: Pending) {
    if let Some(retired) = event.retired.take()
        && let Err(err) = set_counts(store, &[retired]).await
    {
        tracing::error!(error = %err, "updating a denial count failed");
    }
    if let Err(err) = insert(store, event).await {
        tracing::error!(error = %err, "writing an api_request.denied event failed");
    }
}

async fn insert(store: &Store, event: Pending) -> Result<(), StoreError> {
    let denial = event.denial;
    let actor = match &denial.key {
        Some((key_id, key_name, _)) => Actor::api_key(key_id, key_name),
        None => Actor {
            kind: "api_key".into(),
            id: None,
            label: Some("unknown key".to_owned()),
        },
    };
    let by = By {
        actor,
        origin: Origin {
            ip: Some(denial.ip.clone()),
            user_agent: denial.user_agent.clone(),
        },
    };
    let mut conn = store.conn().await?;
    store::audit::insert(
        &mut conn,
        &event.id,
        &by.actor,
        &by.origin,
        NewEvent {
            action: "api_request.denied",
            agent_id: denial.key.as_ref().map(|(_, _, agent)| &**agent),
            target: denial
                .key
                .as_ref()
                .map(|(id, name, _)| Target::new("api_key", id, name)),
            details: json!({
                "reason": denial.reason,
                "count": 1,
                "method": denial.method,
                "path": denial.path,
                "required_permission": denial.required_permission,
            }),
        },
    )
    .await?;
    super::appended();
    Ok(())
}

/// Writes the counts that grew since the last flush. Events already queued are inserted first:
/// a count seen here may belong to an event still in the queue.
async fn flush_counts(
    store: &Store,
    slots: &DashMap<Kind, Slot>,
    inbox: &mut mpsc::Receiver<Pending>,
) {
    let minute = now_ms() / 60_000;
    let mut pending = Vec::new();
    slots.retain(|_, slot| {
        if slot.count > slot.flushed {
            pending.push((slot.event_id.clone(), slot.count));
            slot.flushed = slot.count;
        }
        slot.minute >= minute - 1
    });
    while let Ok(event) = inbox.try_recv() {
        write(store, event).await;
    }
    if pending.is_empty() {
        return;
    }
    if let Err(err) = set_counts(store, &pending).await {
        tracing::error!(error = %err, "updating denial counts failed");
    }
}

async fn set_counts(store: &Store, counts: &[(String, u64)]) -> Result<(), StoreError> {
    let mut conn = store.conn().await?;
    for (event_id, count) in counts {
        store::audit::set_count(&mut conn, event_id, *count as i64).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_sources_are_grouped_by_their_64() {
        assert_eq!(source_of("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(source_of("2001:db8:1:2:ffff::1"), "2001:db8:1:2::/64");
        assert_eq!(source_of("192.0.2.7"), "192.0.2.7");
    }
}
