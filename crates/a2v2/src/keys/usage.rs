//! What a key is used for, gathered on the hot path and flushed in batches like the last-used
//! time: the last use of each permission, and the recent client addresses with counts.

use std::{
    net::IpAddr,
    sync::{
        Arc, Mutex, OnceLock, PoisonError,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
};

use crate::model::permissions::{COUNT, Permission};

/// Distinct client addresses kept per key.
pub const RECENT_CLIENTS: usize = 20;

#[derive(Clone, Copy, Debug)]
struct Client {
    ip: IpAddr,
    /// Requests not yet flushed.
    count: i64,
    last_seen: i64,
    flushed_seen: i64,
}

/// One key's usage, shared by every version of the key's cache entry. Nothing is allocated
/// until the key's first request or first change: most of a big workspace's keys are idle,
/// and a million idle keys should not cost a million allocations. The counters themselves
/// wait for the first request.
#[derive(Debug, Default)]
pub struct Usage(OnceLock<Arc<Shared>>);

#[derive(Debug, Default)]
struct Shared {
    counts: OnceLock<Box<Counts>>,
    /// On the cache's list of keys for the next flush.
    listed: AtomicBool,
}

#[derive(Debug, Default)]
struct Counts {
    permissions: [AtomicI64; COUNT],
    flushed_permissions: [AtomicI64; COUNT],
    /// At most [`RECENT_CLIENTS`] entries; allocated once, on the first request.
    clients: Mutex<Vec<Client>>,
}

/// A batch to write: per-permission last uses and client sightings `(ip, count, last_seen)`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pending {
    pub permissions: Vec<(String, i64)>,
    pub clients: Vec<(String, i64, i64)>,
}

impl Usage {
    /// The same usage, for the entry that replaces this one: a request still holding the old
    /// entry records into it too.
    pub fn share(&self) -> Self {
        Self(OnceLock::from(Arc::clone(self.0.get_or_init(Arc::default))))
    }

    fn counts(&self) -> Option<&Counts> {
        self.0.get()?.counts.get().map(Box::as_ref)
    }

    /// Records a request using `permission` (if the route needs one) from `ip`.
    pub fn record(&self, permission: Option<Permission>, ip: IpAddr, now_ms: i64) {
        self.0
            .get_or_init(Arc::default)
            .counts
            .get_or_init(Box::default)
            .record(permission, ip, now_ms);
    }

    /// Puts the key on the flush list; true if it was not on it. Shared by every version of
    /// the entry, so a key is listed once however often it changes.
    pub fn list(&self) -> bool {
        let listed = &self.0.get_or_init(Arc::default).listed;
        !listed.load(Ordering::Relaxed) && !listed.swap(true, Ordering::AcqRel)
    }

    /// Takes the key off the flush list, before its pending uses are read: a request from
    /// then on lists it again.
    pub fn unlist(&self) {
        if let Some(shared) = self.0.get() {
            shared.listed.store(false, Ordering::Release);
        }
    }

    /// Last use per permission known to memory.
    pub fn permission_uses(&self) -> impl Iterator<Item = (Permission, i64)> + '_ {
        self.counts()
            .into_iter()
            .flat_map(|counts| counts.permission_uses())
    }

    /// Everything not yet written.
    pub fn pending(&self) -> Pending {
        self.counts()
            .map(|counts| counts.pending())
            .unwrap_or_default()
    }

    /// Marks a batch from [`Usage::pending`] as written.
    pub fn flushed(&self, batch: &Pending) {
        if let Some(counts) = self.counts() {
            counts.flushed(batch);
        }
    }
}

impl Counts {
    fn record(&self, permission: Option<Permission>, ip: IpAddr, now_ms: i64) {
        if let Some(permission) = permission {
            let slot = &self.permissions[permission.index()];
            if now_ms - slot.load(Ordering::Relaxed) >= 1000 {
                slot.store(now_ms, Ordering::Relaxed);
            }
        }
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = clients.iter_mut().find(|c| c.ip == ip) {
            client.count += 1;
            client.last_seen = now_ms;
            return;
        }
        let fresh = Client {
            ip,
            count: 1,
            last_seen: now_ms,
            flushed_seen: 0,
        };
        if clients.len() < RECENT_CLIENTS {
            if clients.capacity() == 0 {
                clients.reserve_exact(RECENT_CLIENTS);
            }
            clients.push(fresh);
        } else if let Some(oldest) = clients.iter_mut().min_by_key(|c| c.last_seen) {
            *oldest = fresh;
        }
    }

    fn permission_uses(&self) -> impl Iterator<Item = (Permission, i64)> + '_ {
        Permission::all()
            .map(|p| (p, self.permissions[p.index()].load(Ordering::Relaxed)))
            .filter(|(_, at)| *at > 0)
    }

    fn pending(&self) -> Pending {
        let permissions = Permission::all()
            .filter_map(|p| {
                let at = self.permissions[p.index()].load(Ordering::Relaxed);
                (at > self.flushed_permissions[p.index()].load(Ordering::Relaxed))
                    .then(|| (p.name(), at))
            })
            .collect();
        let clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        let clients = clients
            .iter()
            .filter(|c| c.count > 0 || c.last_seen > c.flushed_seen)
            .map(|c| (c.ip.to_string(), c.count, c.last_seen))
            .collect();
        Pending {
            permissions,
            clients,
        }
    }

    fn flushed(&self, batch: &Pending) {
        for (name, at) in &batch.permissions {
            if let Some(p) = Permission::all().find(|p| p.name() == *name) {
                self.flushed_permissions[p.index()].fetch_max(*at, Ordering::Relaxed);
            }
        }
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        for (ip, count, last_seen) in &batch.clients {
            if let Some(c) = clients.iter_mut().find(|c| c.ip.to_string() == *ip) {
                c.count -= count;
                c.flushed_seen = c.flushed_seen.max(*last_seen);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::permissions::{Action, Area};

    #[test]
    fn keeps_the_recent_clients_and_flushes_each_request_once() {
        let usage = Usage::default();
        let read = Permission(Area::Contacts, Action::Read);
        for n in 0..25u8 {
            usage.record(
                Some(read),
                IpAddr::from([10, 0, 0, n]),
                1_000 + i64::from(n),
            );
        }
        usage.record(None, IpAddr::from([10, 0, 0, 24]), 2_000);
        let batch = usage.pending();
        assert_eq!(batch.clients.len(), RECENT_CLIENTS);
        assert!(!batch.clients.iter().any(|(ip, ..)| ip == "10.0.0.0"));
        assert!(batch.clients.contains(&("10.0.0.24".into(), 2, 2_000)));
        assert_eq!(batch.permissions, [("contacts:read".into(), 1_000)]);
        usage.flushed(&batch);
        assert_eq!(usage.pending(), Pending::default());
        usage.record(None, IpAddr::from([10, 0, 0, 24]), 3_000);
        assert_eq!(usage.pending().clients, [("10.0.0.24".into(), 1, 3_000)]);
    }

    #[test]
    fn a_shared_usage_records_through_either_entry() {
        let idle = Usage::default();
        let shared = idle.share();
        idle.record(None, IpAddr::from([10, 0, 0, 1]), 1_000);
        shared.record(None, IpAddr::from([10, 0, 0, 1]), 2_000);
        assert_eq!(idle.pending(), shared.pending());
        assert_eq!(shared.pending().clients, [("10.0.0.1".into(), 2, 2_000)]);
    }
}
