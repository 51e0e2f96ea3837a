//! The in-memory key cache that serves every `/v1` verification without touching storage.
//!
//! Keys are indexed by the first 16 bytes of their keyed hash in a sharded map (no global
//! lock); the full 32-byte hash is then compared in constant time. Every management change
//! updates the cache before its HTTP response is sent.

use std::{
    hash::{BuildHasherDefault, Hasher},
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
};

use dashmap::DashMap;
use ipnet::IpNet;
use subtle::ConstantTimeEq;

use super::{format, permissions::Permissions};
use crate::crypto::{KeySecrets, LookupHash};

/// What verification needs to know about one key.
#[derive(Debug)]
pub struct CachedKey {
    pub id: String,
    pub agent_id: String,
    pub name: String,
    pub hash: LookupHash,
    pub permissions: Permissions,
    pub ip_nets: Vec<IpNet>,
    pub expires_at: Option<i64>,
    /// Unix ms of the latest successful use; flushed to storage in batches.
    pub last_used: AtomicI64,
    flushed_last_used: AtomicI64,
}

impl CachedKey {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        agent_id: String,
        name: String,
        hash: LookupHash,
        permissions: Permissions,
        ip_nets: Vec<IpNet>,
        expires_at: Option<i64>,
        last_used: Option<i64>,
    ) -> Self {
        let last_used = last_used.unwrap_or(0);
        Self {
            id,
            agent_id,
            name,
            hash,
            permissions,
            ip_nets,
            expires_at,
            last_used: AtomicI64::new(last_used),
            flushed_last_used: AtomicI64::new(last_used),
        }
    }

    pub fn last_used_at(&self) -> Option<i64> {
        Some(self.last_used.load(Ordering::Relaxed)).filter(|ms| *ms > 0)
    }

    /// Records a use, writing the shared cache line at most once a second per key.
    pub fn touch(&self, now_ms: i64) {
        if now_ms - self.last_used.load(Ordering::Relaxed) >= 1000 {
            self.last_used.store(now_ms, Ordering::Relaxed);
        }
    }
}

/// The hash map key: already uniformly random, so it needs no further hashing.
#[derive(Default)]
pub struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(word);
        }
    }

    fn write_u128(&mut self, value: u128) {
        self.0 ^= value as u64 ^ (value >> 64) as u64;
    }
}

type Index = DashMap<u128, Arc<CachedKey>, BuildHasherDefault<PrefixHasher>>;

fn index_of(hash: &LookupHash) -> u128 {
    let mut prefix = [0u8; 16];
    prefix.copy_from_slice(&hash[..16]);
    u128::from_le_bytes(prefix)
}

/// Why a presented key was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    Malformed,
    Unknown,
    Expired,
}

pub struct KeyCache {
    secrets: KeySecrets,
    by_hash: Index,
    by_id: DashMap<String, u128>,
}

impl KeyCache {
    pub fn new(secrets: KeySecrets) -> Self {
        Self {
            secrets,
            by_hash: Index::default(),
            by_id: DashMap::new(),
        }
    }

    pub fn secrets(&self) -> &KeySecrets {
        &self.secrets
    }

    /// Parses, hashes and looks up a presented key. Malformed keys never reach the map.
    pub fn verify(&self, presented: &str, now_ms: i64) -> Result<Arc<CachedKey>, Rejection> {
        if !format::is_well_formed(presented) {
            return Err(Rejection::Malformed);
        }
        let hash = self.secrets.lookup_hash(presented);
        let entry = self
            .by_hash
            .get(&index_of(&hash))
            .map(|entry| Arc::clone(entry.value()))
            .ok_or(Rejection::Unknown)?;
        if !bool::from(entry.hash.ct_eq(&hash)) {
            return Err(Rejection::Unknown);
        }
        if entry.expires_at.is_some_and(|at| at <= now_ms) {
            return Err(Rejection::Expired);
        }
        Ok(entry)
    }

    /// Adds or replaces a key, keeping its last-used time across edits.
    pub fn put(&self, key: CachedKey) {
        let index = index_of(&key.hash);
        if let Some(previous) = self.by_hash.get(&index) {
            let used = previous.last_used.load(Ordering::Relaxed);
            key.last_used.fetch_max(used, Ordering::Relaxed);
            key.flushed_last_used.fetch_max(
                previous.flushed_last_used.load(Ordering::Relaxed),
                Ordering::Relaxed,
            );
        }
        self.by_id.insert(key.id.clone(), index);
        self.by_hash.insert(index, Arc::new(key));
    }

    pub fn remove(&self, key_id: &str) {
        if let Some((_, index)) = self.by_id.remove(key_id) {
            self.by_hash.remove(&index);
        }
    }

    pub fn get(&self, key_id: &str) -> Option<Arc<CachedKey>> {
        let index = *self.by_id.get(key_id)?;
        self.by_hash.get(&index).map(|e| Arc::clone(e.value()))
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Last-used times not yet written to storage; marks them as written.
    pub fn take_unflushed_uses(&self) -> Vec<(String, i64)> {
        let mut out = Vec::new();
        for entry in &self.by_hash {
            let used = entry.last_used.load(Ordering::Relaxed);
            if used > entry.flushed_last_used.load(Ordering::Relaxed) {
                entry.flushed_last_used.store(used, Ordering::Relaxed);
                out.push((entry.id.clone(), used));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MasterKeySource;
    use crate::crypto::MasterKey;

    fn cache() -> KeyCache {
        let master = MasterKey::load(&MasterKeySource::Inline("11".repeat(32))).unwrap();
        KeyCache::new(KeySecrets::new(&master))
    }

    fn entry(cache: &KeyCache, id: &str, key: &str, expires_at: Option<i64>) -> CachedKey {
        CachedKey::new(
            id.into(),
            "agt_1".into(),
            "test".into(),
            cache.secrets().lookup_hash(key),
            Permissions::default(),
            Vec::new(),
            expires_at,
            None,
        )
    }

    #[test]
    fn verifies_known_keys_and_rejects_the_rest() {
        let cache = cache();
        let key = format::generate();
        cache.put(entry(&cache, "key_1", &key, None));
        assert_eq!(cache.verify(&key, 0).unwrap().id, "key_1");
        assert_eq!(
            cache.verify(&format::generate(), 0).unwrap_err(),
            Rejection::Unknown
        );
        assert_eq!(
            cache.verify("a2v2_nope", 0).unwrap_err(),
            Rejection::Malformed
        );
        cache.remove("key_1");
        assert_eq!(cache.verify(&key, 0).unwrap_err(), Rejection::Unknown);
        assert!(cache.is_empty());
    }

    #[test]
    fn expired_keys_are_rejected() {
        let cache = cache();
        let key = format::generate();
        cache.put(entry(&cache, "key_1", &key, Some(1_000)));
        assert!(cache.verify(&key, 999).is_ok());
        assert_eq!(cache.verify(&key, 1_000).unwrap_err(), Rejection::Expired);
    }

    #[test]
    fn uses_are_flushed_once() {
        let cache = cache();
        let key = format::generate();
        cache.put(entry(&cache, "key_1", &key, None));
        cache.verify(&key, 0).unwrap().touch(5_000);
        assert_eq!(cache.take_unflushed_uses(), [("key_1".to_owned(), 5_000)]);
        assert!(cache.take_unflushed_uses().is_empty());
        cache.put(entry(&cache, "key_1", &key, None));
        assert_eq!(cache.get("key_1").unwrap().last_used_at(), Some(5_000));
    }
}
