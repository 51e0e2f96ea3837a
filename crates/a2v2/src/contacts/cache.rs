//! Read cache for `GET /v1/contacts/{id}` on the embedded SQLite back end.
//!
//! With SQLite the server is the only writer of its database, so it can keep recently read
//! contacts (already serialised) in memory and answer repeated reads without a query. With
//! PostgreSQL several nodes write the same rows, so the cache is disabled there.
//!
//! Correctness rests on two rules:
//! - every path that changes or deletes a stored contact calls [`ContactCache::invalidate`]
//!   after its transaction commits and before it answers (creating a contact needs nothing:
//!   a new id is never cached);
//! - a reader stores what it read only if no invalidation happened since it started reading
//!   ([`ContactCache::generation`] then [`ContactCache::put_if_unchanged`]), checked under the
//!   entry's shard lock, so a read that raced with a write can never put the old version back.
//!
//! Entries carry their agent: a hit for another agent's key is treated as a miss, and the
//! database then answers 404 as usual. The map is sharded, so reads take no global lock.
//!
//! The cache is bounded by the bytes it holds ([`BUDGET_BYTES`]), not by a count: a contact at
//! the field limits serialises to hundreds of kilobytes, and contacts larger than
//! [`MAX_ENTRY_BYTES`] are never cached at all.

use std::sync::{
    Arc,
    atomic::{AtomicU64, AtomicUsize, Ordering},
};

use dashmap::DashMap;

/// Bytes of cached bodies kept at most; beyond that arbitrary entries make room.
pub const BUDGET_BYTES: usize = 32 * 1024 * 1024;
/// Contacts whose body is larger than this are always read from storage.
pub const MAX_ENTRY_BYTES: usize = 16 * 1024;

/// One cached contact as `GET` returns it.
#[derive(Debug)]
pub struct Entry {
    pub agent_id: String,
    pub version: i64,
    pub body: bytes::Bytes,
}

#[derive(Default)]
struct Inner {
    generation: AtomicU64,
    entries: DashMap<String, Arc<Entry>>,
    /// Bytes held by `entries` (body and id), kept in step under each entry's shard lock.
    bytes: AtomicUsize,
}

fn weight(id: &str, entry: &Entry) -> usize {
    id.len() + entry.agent_id.len() + entry.body.len()
}

/// Shared handle; cloning is cheap.
#[derive(Clone)]
pub struct ContactCache {
    inner: Option<Arc<Inner>>,
}

impl ContactCache {
    /// A cache that holds entries (`enabled`) or one that never does.
    pub fn new(enabled: bool) -> Self {
        Self {
            inner: enabled.then(|| Arc::new(Inner::default())),
        }
    }

    /// The cached contact `id` if it belongs to `agent_id`.
    pub fn get(&self, agent_id: &str, id: &str) -> Option<Arc<Entry>> {
        let inner = self.inner.as_ref()?;
        inner
            .entries
            .get(id)
            .filter(|entry| entry.agent_id == agent_id)
            .map(|entry| Arc::clone(entry.value()))
    }

    /// Taken before reading from the database; see [`Self::put_if_unchanged`].
    pub fn generation(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |inner| inner.generation.load(Ordering::SeqCst))
    }

    /// Stores `entry` unless some contact was invalidated since `generation` was taken.
    pub fn put_if_unchanged(&self, generation: u64, id: &str, entry: Arc<Entry>) {
        let Some(inner) = self.inner.as_ref() else {
            return;
        };
        if inner.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        if entry.body.len() > MAX_ENTRY_BYTES {
            return;
        }
        let added = weight(id, &entry);
        while inner.bytes.load(Ordering::Relaxed) + added > BUDGET_BYTES {
            let victim = inner.entries.iter().next().map(|e| e.key().clone());
            match victim {
                Some(victim) => inner.remove(&victim),
                None => break,
            }
        }
        // Checked again while holding the entry's shard lock: `invalidate` bumps the
        // generation before it removes (under that lock), so either we see the bump here or
        // its removal comes after our insert.
        let slot = inner.entries.entry(id.to_owned());
        if inner.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        inner.bytes.fetch_add(added, Ordering::Relaxed);
        match slot {
            dashmap::Entry::Occupied(mut occupied) => {
                let replaced = occupied.insert(entry);
                inner
                    .bytes
                    .fetch_sub(weight(id, &replaced), Ordering::Relaxed);
            }
            dashmap::Entry::Vacant(vacant) => {
                vacant.insert(entry);
            }
        }
    }

    /// Entries and bytes held.
    pub fn size(&self) -> (usize, usize) {
        self.inner.as_ref().map_or((0, 0), |inner| {
            (inner.entries.len(), inner.bytes.load(Ordering::Relaxed))
        })
    }

    /// Forgets contact `id`; call after a change to it has committed.
    pub fn invalidate(&self, id: &str) {
        if let Some(inner) = self.inner.as_ref() {
            inner.generation.fetch_add(1, Ordering::SeqCst);
            inner.remove(id);
        }
    }
}

impl Inner {
    fn remove(&self, id: &str) {
        if let Some((id, removed)) = self.entries.remove(id) {
            self.bytes
                .fetch_sub(weight(&id, &removed), Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn entry(agent: &str, version: i64) -> Arc<Entry> {
        Arc::new(Entry {
            agent_id: agent.into(),
            version,
            body: bytes::Bytes::from_static(b"{}"),
        })
    }

    #[test]
    fn hits_only_for_the_owning_agent() {
        let cache = ContactCache::new(true);
        cache.put_if_unchanged(cache.generation(), "ct_1", entry("agt_a", 1));
        assert_eq!(cache.get("agt_a", "ct_1").unwrap().version, 1);
        assert!(cache.get("agt_b", "ct_1").is_none());
        cache.invalidate("ct_1");
        assert!(cache.get("agt_a", "ct_1").is_none());
    }

    #[test]
    fn a_read_that_raced_a_write_is_not_stored() {
        let cache = ContactCache::new(true);
        let before = cache.generation();
        // A write commits and invalidates while the read is in flight.
        cache.invalidate("ct_1");
        cache.put_if_unchanged(before, "ct_1", entry("agt_a", 1));
        assert!(cache.get("agt_a", "ct_1").is_none());
    }

    fn sized(agent: &str, bytes: usize) -> Arc<Entry> {
        Arc::new(Entry {
            agent_id: agent.into(),
            version: 1,
            body: bytes::Bytes::from(vec![b' '; bytes]),
        })
    }

    #[test]
    fn stays_within_its_byte_budget_and_can_be_disabled() {
        let cache = ContactCache::new(true);
        let inner = cache.inner.as_ref().unwrap();
        let each = MAX_ENTRY_BYTES;
        for i in 0..(BUDGET_BYTES / each) * 2 {
            cache.put_if_unchanged(cache.generation(), &format!("ct_{i}"), sized("a", each));
            assert!(inner.bytes.load(Ordering::Relaxed) <= BUDGET_BYTES);
        }
        let held: usize = inner
            .entries
            .iter()
            .map(|e| weight(e.key(), e.value()))
            .sum();
        assert_eq!(held, inner.bytes.load(Ordering::Relaxed));
        assert!(inner.entries.len() > 1000);
        // Replacing and invalidating keep the count exact.
        cache.put_if_unchanged(cache.generation(), "ct_0", sized("a", 10));
        cache.put_if_unchanged(cache.generation(), "ct_0", sized("a", 20));
        cache.invalidate("ct_1");
        let held: usize = inner
            .entries
            .iter()
            .map(|e| weight(e.key(), e.value()))
            .sum();
        assert_eq!(held, inner.bytes.load(Ordering::Relaxed));
        let off = ContactCache::new(false);
        off.put_if_unchanged(off.generation(), "ct_1", entry("a", 1));
        assert!(off.get("a", "ct_1").is_none());
    }

    #[test]
    fn very_large_contacts_are_not_cached() {
        let cache = ContactCache::new(true);
        cache.put_if_unchanged(cache.generation(), "big", sized("a", MAX_ENTRY_BYTES + 1));
        assert!(cache.get("a", "big").is_none());
    }
}
