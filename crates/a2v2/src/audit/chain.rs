//! The audit log's hash chain (tamper evidence). A background task on every node seals
//! committed events in order — one sealer at a time across the deployment — linking each to
//! the hash of the one before. `a2v2 audit verify` walks the chain and names the first event
//! that was edited, deleted or written around it.

use std::time::Duration;

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{
    crypto::encode_hex,
    model::now_ms,
    store::{
        self, Store, StoreError,
        audit_chain::{Link, Sealable},
    },
};

/// How often committed events are sealed.
pub const SEAL_EVERY: Duration = Duration::from_secs(1);
/// Events are sealed when they occurred at most this long before the last sealed one: a
/// transaction that commits later than that (longer than any request may take) would be
/// reported by `verify` as written around the chain.
const LATE_COMMIT_MS: i64 = 5 * 60 * 1000;
const BATCH: i64 = 500;

/// The hash of `event` following `prev_hash`.
pub fn hash(prev_hash: &str, event: &Sealable) -> String {
    let content = json!([event.id, event.occurred_at, event.fields]).to_string();
    let mut digest = Sha256::new();
    digest.update(prev_hash.as_bytes());
    digest.update(b"\n");
    digest.update(content.as_bytes());
    encode_hex(&digest.finalize())
}

/// Seals the events committed since the last call; returns how many.
pub async fn seal(store: &Store) -> Result<u64, StoreError> {
    let mut sealed = 0u64;
    loop {
        let mut tx = store.begin().await?;
        if !store::audit_chain::try_lock(&mut tx).await? {
            return Ok(sealed);
        }
        let (mut seq, mut prev, since) = match store::audit_chain::head(&mut tx).await? {
            Some((seq, hash, at)) => (seq, hash, at - LATE_COMMIT_MS),
            None => (0, String::new(), i64::MIN),
        };
        let events = store::audit_chain::unsealed(&mut tx, since, BATCH).await?;
        for event in &events {
            seq += 1;
            let next = hash(&prev, event);
            store::audit_chain::append(&mut tx, seq, event, &prev, &next).await?;
            prev = next;
        }
        tx.commit().await?;
        sealed += events.len() as u64;
        if (events.len() as i64) < BATCH {
            return Ok(sealed);
        }
    }
}

/// Runs the sealer for as long as the server runs. It looks at storage only after this
/// process wrote events (each node seals its own; the chain takes other processes' events
/// along, and `verify` seals before it checks), so an idle or read-only node costs nothing.
pub async fn run(store: Store) {
    let mut tick = tokio::time::interval(SEAL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sealed_up_to = 0;
    loop {
        tick.tick().await;
        let written = super::events_written();
        if written == sealed_up_to {
            continue;
        }
        match seal(&store).await {
            Ok(_) => sealed_up_to = written,
            Err(err) => tracing::warn!(error = %err, "sealing audit events failed"),
        }
    }
}

/// What `verify` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The chain holds; this many events were checked.
    Intact { events: u64 },
    /// The first place where it does not.
    Broken {
        event_id: String,
        seq: Option<i64>,
        reason: &'static str,
    },
}

/// Why one link does not hold, if it does not.
fn check(link: &Link, prev: Option<&str>) -> Option<&'static str> {
    if prev.is_some_and(|prev| prev != link.prev_hash) {
        return Some("its link to the event before was changed");
    }
    let Some(event) = &link.event else {
        return Some("the event was deleted");
    };
    (hash(&link.prev_hash, event) != link.hash).then_some("the event was changed")
}

/// Walks the whole chain (from the oldest event retention kept) and then looks for events
/// that were written around it.
pub async fn verify(store: &Store) -> Result<Verdict, StoreError> {
    seal(store).await?;
    let mut conn = store.conn().await?;
    let mut after = i64::MIN;
    let mut prev: Option<String> = None;
    let mut events = 0u64;
    loop {
        let links = store::audit_chain::links(&mut conn, after, BATCH).await?;
        for link in &links {
            if let Some(reason) = check(link, prev.as_deref()) {
                return Ok(Verdict::Broken {
                    event_id: link.event_id.clone(),
                    seq: Some(link.seq),
                    reason,
                });
            }
            prev = Some(link.hash.clone());
            after = link.seq;
            events += 1;
        }
        if (links.len() as i64) < BATCH {
            break;
        }
    }
    if let Some(event_id) =
        store::audit_chain::outside(&mut conn, now_ms() - LATE_COMMIT_MS).await?
    {
        return Ok(Verdict::Broken {
            event_id,
            seq: None,
            reason: "the event is not in the chain (written around the server)",
        });
    }
    Ok(Verdict::Intact { events })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(details: &str) -> Sealable {
        Sealable {
            id: "evt_1".into(),
            occurred_at: 5,
            fields: std::array::from_fn(|i| (i == 10).then(|| details.to_owned())),
        }
    }

    #[test]
    fn a_link_breaks_when_its_event_or_its_neighbour_changes() {
        let first = event("{}");
        let link = Link {
            seq: 1,
            event_id: first.id.clone(),
            prev_hash: "p".into(),
            hash: hash("p", &first),
            event: Some(first),
        };
        assert_eq!(check(&link, Some("p")), None);
        assert!(check(&link, Some("q")).is_some());
        let edited = Link {
            event: Some(event("{\"x\":1}")),
            ..link
        };
        assert_eq!(check(&edited, Some("p")), Some("the event was changed"));
        let deleted = Link {
            event: None,
            ..edited
        };
        assert_eq!(check(&deleted, None), Some("the event was deleted"));
    }
}
