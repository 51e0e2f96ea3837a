//! The in-memory key cache that serves every `/v1` verification without touching storage.
//!
//! Keys are indexed by the first 16 bytes of their keyed hash in a sharded map (no global
//! lock); the full 32-byte hash is then compared in constant time. Every management change
//! updates the cache before its HTTP response is sent.
//!
//! HMAC-SHA-256 costs two SHA-256 blocks, most of a verification on CPUs without SHA
//! instructions. So a key that verified once is remembered under a 128-bit tag from SipHash
//! with per-process random keys: later requests with the same key cost a SipHash and one
//! lookup. Tags cannot be computed without the process secret, only keys that passed the full
//! check get one, and every change or removal of a key forgets its tag.

use std::{
    borrow::Borrow,
    hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState},
    net::IpAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
};

use dashmap::{DashMap, mapref::entry::Entry};
use ipnet::IpNet;
use subtle::ConstantTimeEq;

use super::{format, limiter::Limiter, usage::Usage};
use crate::{
    crypto::{KeySecrets, LookupHash, decode_hex},
    model::{
        key::KeyCore,
        permissions::{Permission, Permissions},
    },
};

/// What verification needs to know about one key. The cache holds one per key, a million in
/// a big workspace, so the entry is kept small (136 bytes, an allocation of 152 with the
/// `Arc`'s counts, which the allocator serves from its 160-byte class): the id and the name
/// share one allocation, the agent id is shared between the agent's keys, and what few keys
/// have (an IP list, a previous secret) is boxed apart.
#[derive(Debug)]
pub struct CachedKey {
    /// The id, then the name.
    text: Box<str>,
    id_len: u32,
    pub agent_id: Arc<str>,
    hash: Words,
    pub permissions: Permissions,
    pub expires_at: Option<i64>,
    /// False while the key is paused.
    pub enabled: bool,
    rare: Option<Box<Rare>>,
    pub limiter: Option<Arc<Limiter>>,
    /// Unix ms of the latest successful use; flushed to storage in batches.
    pub last_used: AtomicI64,
    flushed_last_used: AtomicI64,
    pub usage: Usage,
}

/// What few keys have.
#[derive(Debug, Default)]
struct Rare {
    ip_nets: Box<[IpNet]>,
    /// The hash of the secret before the last roll, and until when (unix ms) it works.
    previous: Option<(Words, i64)>,
}

impl CachedKey {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        agent_id: Arc<str>,
        name: String,
        hash: LookupHash,
        permissions: Permissions,
        ip_nets: Vec<IpNet>,
        expires_at: Option<i64>,
        last_used: Option<i64>,
    ) -> Self {
        let last_used = last_used.unwrap_or(0);
        let id_len = u32::try_from(id.len()).unwrap_or(u32::MAX);
        let mut text = id;
        text.push_str(&name);
        Self {
            text: text.into_boxed_str(),
            id_len,
            agent_id,
            hash: words(&hash),
            permissions,
            expires_at,
            enabled: true,
            rare: (!ip_nets.is_empty()).then(|| {
                Box::new(Rare {
                    ip_nets: ip_nets.into(),
                    previous: None,
                })
            }),
            limiter: None,
            last_used: AtomicI64::new(last_used),
            flushed_last_used: AtomicI64::new(last_used),
            usage: Usage::default(),
        }
    }

    /// The cache entry of a stored key; the key's id instead when its stored form cannot be
    /// read (a malformed hash or IP list), in which case the key must be refused. `agent_id`
    /// is the row's, shared ([`KeyCache::agent_id`]); `coordinated`: its rate limit is shared
    /// with other nodes.
    pub fn from_stored(
        row: KeyCore,
        agent_id: Arc<str>,
        coordinated: bool,
    ) -> Result<Self, String> {
        let hash = decode_hash(&row.lookup_hash);
        let previous = match (&row.previous_lookup_hash, row.previous_expires_at) {
            (Some(text), Some(until)) => decode_hash(text).map(|hash| Some((hash, until))),
            _ => Some(None),
        };
        let (Some(ip_nets), Some(hash), Some(previous)) = (row.ip_nets, hash, previous) else {
            return Err(row.id);
        };
        let mut key = Self::new(
            row.id,
            agent_id,
            row.name,
            hash,
            row.permissions,
            ip_nets,
            row.expires_at,
            row.last_used_at,
        );
        key.enabled = row.enabled;
        key.set_previous(previous);
        key.limiter = row
            .rate_limit
            .map(|limit| Arc::new(Limiter::new(limit, coordinated)));
        Ok(key)
    }

    pub fn id(&self) -> &str {
        self.text.get(..self.id_len as usize).unwrap_or(&self.text)
    }

    pub fn name(&self) -> &str {
        self.text.get(self.id_len as usize..).unwrap_or_default()
    }

    /// The addresses the key may be used from; empty for any.
    pub fn ip_nets(&self) -> &[IpNet] {
        self.rare.as_ref().map_or(&[], |rare| &rare.ip_nets)
    }

    /// Sets the hash of the secret before the last roll, and until when (unix ms) it works.
    pub fn set_previous(&mut self, previous: Option<(LookupHash, i64)>) {
        let previous = previous.map(|(hash, until)| (words(&hash), until));
        match (&mut self.rare, previous) {
            (Some(rare), previous) => rare.previous = previous,
            (None, None) => {}
            (None, previous) => {
                self.rare = Some(Box::new(Rare {
                    previous,
                    ..Rare::default()
                }));
            }
        }
    }

    fn previous(&self) -> Option<&(Words, i64)> {
        self.rare.as_ref()?.previous.as_ref()
    }

    pub fn last_used_at(&self) -> Option<i64> {
        Some(self.last_used.load(Ordering::Relaxed)).filter(|ms| *ms > 0)
    }

    /// Records a use, writing the shared cache line at most once a second per key.
    fn touch(&self, now_ms: i64) {
        if now_ms - self.last_used.load(Ordering::Relaxed) >= 1000 {
            self.last_used.store(now_ms, Ordering::Relaxed);
        }
    }

    /// The last-used time not yet written to storage.
    pub fn unflushed_use(&self) -> Option<i64> {
        let used = self.last_used.load(Ordering::Relaxed);
        (used > self.flushed_last_used.load(Ordering::Relaxed)).then_some(used)
    }

    /// Marks a last-used time from [`CachedKey::unflushed_use`] as written.
    pub fn mark_flushed(&self, used: i64) {
        self.flushed_last_used.fetch_max(used, Ordering::Relaxed);
    }
}

fn decode_hash(text: &str) -> Option<LookupHash> {
    decode_hex(text).ok()?.try_into().ok()
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

/// The first 16 bytes of a lookup hash: the key of the maps by hash.
type Prefix = [u64; 2];

/// A lookup hash as its two halves in words, so that the first can be borrowed as a map key.
type Words = (Prefix, [u64; 2]);

fn words(hash: &LookupHash) -> Words {
    let word = |at: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&hash[at..at + 8]);
        u64::from_le_bytes(bytes)
    };
    ([word(0), word(8)], [word(16), word(24)])
}

/// Whether two hashes are equal, in constant time.
fn same(a: &Words, b: &Words) -> bool {
    bool::from(a.0[..].ct_eq(&b.0[..]) & a.1[..].ct_eq(&b.1[..]))
}

/// A cache entry as the key of the map by (current) secret hash: the map holds no copy of
/// the hash and no second pointer.
#[derive(Debug)]
struct ByHash(Arc<CachedKey>);

impl Hash for ByHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash.0.hash(state);
    }
}

impl PartialEq for ByHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.hash.0 == other.0.hash.0
    }
}

impl Eq for ByHash {}

impl Borrow<Prefix> for ByHash {
    fn borrow(&self) -> &Prefix {
        &self.0.hash.0
    }
}

/// A cache entry as the key of a map by key id: the map holds no copy of the id.
#[derive(Debug)]
struct ById(Arc<CachedKey>);

impl Hash for ById {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.id().hash(state);
    }
}

impl PartialEq for ById {
    fn eq(&self, other: &Self) -> bool {
        self.0.id() == other.0.id()
    }
}

impl Eq for ById {}

impl Borrow<str> for ById {
    fn borrow(&self) -> &str {
        self.0.id()
    }
}

/// A set of cache entries keyed by something each entry holds (its id, its secret's hash):
/// an entry that takes another's place replaces it, key included.
struct EntrySet<K: Hash + Eq, S = RandomState>(DashMap<K, (), S>);

impl<K: Hash + Eq, S: BuildHasher + Clone + Default> Default for EntrySet<K, S> {
    fn default() -> Self {
        Self(DashMap::default())
    }
}

impl<K: Hash + Eq, S: BuildHasher + Clone> EntrySet<K, S> {
    fn put(&self, key: K) {
        match self.0.entry(key) {
            Entry::Occupied(entry) => {
                entry.replace_entry(());
            }
            Entry::Vacant(entry) => {
                entry.insert(());
            }
        }
    }
}

fn reserve<K: Hash + Eq, V, S: BuildHasher + Clone>(map: &DashMap<K, V, S>, additional: usize) {
    let shards = map.shards();
    // Keys spread evenly over the shards; a little slack covers the unevenness.
    let even = additional / shards.len();
    for shard in shards {
        shard
            .write()
            .reserve(even + even / 64 + 16, |(key, _)| map.hasher().hash_one(key));
    }
}

type IdSet = EntrySet<ById>;

impl IdSet {
    fn get(&self, key_id: &str) -> Option<Arc<CachedKey>> {
        self.0.get(key_id).map(|entry| Arc::clone(&entry.key().0))
    }

    fn remove(&self, key_id: &str) -> Option<Arc<CachedKey>> {
        self.0.remove(key_id).map(|(ById(entry), ())| entry)
    }
}

type HashSet = EntrySet<ByHash, BuildHasherDefault<PrefixHasher>>;

type PreviousIndex = DashMap<Prefix, Arc<CachedKey>, BuildHasherDefault<PrefixHasher>>;

/// Why a presented key was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    Malformed,
    Unknown,
    Expired,
    /// Paused, or every key is suspended.
    Disabled,
}

pub struct KeyCache {
    secrets: KeySecrets,
    /// Every key, by its secret's hash prefix.
    by_hash: HashSet,
    /// Keys rolled within their grace period, by the previous secret's hash prefix.
    by_previous: PreviousIndex,
    by_id: IdSet,
    /// The agent ids of the keys, one copy each.
    agent_ids: DashMap<Arc<str>, ()>,
    /// Keys already verified in full, by tag, and whether by their previous secret; see the
    /// module comment.
    verified: DashMap<u128, (Arc<CachedKey>, bool), BuildHasherDefault<PrefixHasher>>,
    /// The tags of each key's current and previous secret.
    tag_of: DashMap<String, [Option<u128>; 2]>,
    tag_keys: [RandomState; 2],
    /// Rate-limited keys used on this node since their budget was last reserved (several
    /// nodes only): the reservation task visits these, not every limited key.
    in_use: Mutex<Vec<Arc<CachedKey>>>,
    /// Keys used on this node since the last flush of last-used times and usage: the flush
    /// visits these, not every cached key.
    used: Mutex<Vec<Arc<CachedKey>>>,
    /// The incident switch: every key answers like a deleted one.
    suspended: AtomicBool,
}

impl KeyCache {
    pub fn new(secrets: KeySecrets) -> Self {
        Self {
            secrets,
            by_hash: HashSet::default(),
            by_previous: PreviousIndex::default(),
            by_id: IdSet::default(),
            agent_ids: DashMap::new(),
            verified: DashMap::default(),
            tag_of: DashMap::new(),
            tag_keys: [RandomState::new(), RandomState::new()],
            in_use: Mutex::new(Vec::new()),
            used: Mutex::new(Vec::new()),
            suspended: AtomicBool::new(false),
        }
    }

    pub fn is_suspended(&self) -> bool {
        self.suspended.load(Ordering::Acquire)
    }

    pub fn set_suspended(&self, on: bool) {
        self.suspended.store(on, Ordering::Release);
    }

    /// Makes room for `keys` more keys at once: loading a million keys then does not grow the
    /// maps a step at a time, each step copying a shard's table and leaving the old to free.
    pub fn reserve(&self, keys: usize) {
        reserve(&self.by_hash.0, keys);
        reserve(&self.by_id.0, keys);
    }

    /// Notes a request of a rate-limited key, so that the reservation task visits it.
    pub fn note_limited_use(&self, key: &Arc<CachedKey>) {
        if key.limiter.as_ref().is_some_and(|limiter| limiter.list()) {
            self.in_use
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Arc::clone(key));
        }
    }

    /// Records an admitted request of `key`: its last-used time and usage, written by the
    /// next flush.
    pub fn record_use(
        &self,
        key: &Arc<CachedKey>,
        permission: Option<Permission>,
        client: IpAddr,
        now_ms: i64,
    ) {
        key.touch(now_ms);
        key.usage.record(permission, client, now_ms);
        self.list_for_flush(key);
    }

    fn list_for_flush(&self, key: &Arc<CachedKey>) {
        if key.usage.list() {
            self.used
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Arc::clone(key));
        }
    }

    /// The keys used since the last call, each once and as currently cached (deleted keys
    /// are left out), taken off the flush list.
    pub fn take_used(&self) -> Vec<Arc<CachedKey>> {
        let noted = std::mem::take(&mut *self.used.lock().unwrap_or_else(PoisonError::into_inner));
        noted
            .into_iter()
            .filter_map(|key| {
                key.usage.unlist();
                self.get(key.id())
            })
            .collect()
    }

    /// Puts keys from [`KeyCache::take_used`] back when their flush failed.
    pub fn relist_used(&self, keys: &[Arc<CachedKey>]) {
        for key in keys {
            self.list_for_flush(key);
        }
    }

    /// The rate-limited keys used since the last call, each once, as currently cached (keys
    /// changed or deleted since are left out).
    pub fn take_limited_in_use(&self) -> Vec<Arc<CachedKey>> {
        let noted =
            std::mem::take(&mut *self.in_use.lock().unwrap_or_else(PoisonError::into_inner));
        noted
            .into_iter()
            .filter(|key| {
                let current = self.get(key.id()).is_some_and(|now| Arc::ptr_eq(&now, key));
                if !current && let Some(limiter) = &key.limiter {
                    limiter.unlist();
                }
                current
            })
            .collect()
    }

    fn tag(&self, presented: &str) -> u128 {
        let [high, low] = &self.tag_keys;
        u128::from(high.hash_one(presented)) << 64 | u128::from(low.hash_one(presented))
    }

    /// The full check: keyed hash, lookup, constant-time comparison. Also says whether the
    /// secret is the key's previous one.
    fn verify_in_full(&self, presented: &str) -> Result<(Arc<CachedKey>, bool), Rejection> {
        let hash = words(&self.secrets.lookup_hash(presented));
        let current = self.by_hash.0.get(&hash.0).map(|e| Arc::clone(&e.key().0));
        if let Some(entry) = current
            && same(&entry.hash, &hash)
        {
            return Ok((entry, false));
        }
        match self.by_previous.get(&hash.0).map(|e| Arc::clone(e.value())) {
            Some(entry) if entry.previous().is_some_and(|(p, _)| same(p, &hash)) => {
                Ok((entry, true))
            }
            _ => Err(Rejection::Unknown),
        }
    }

    /// Remembers a key that passed the full check, under its tag. Done while holding the
    /// key's shard of `by_hash` (or `by_previous`, for its previous secret): a concurrent
    /// change or removal either completes before (and the entry is no longer current, so
    /// nothing is remembered) or waits and then forgets the tag. No request that starts after
    /// a removal returned can match a stale tag.
    fn remember(&self, tag: u128, entry: &Arc<CachedKey>, previous: bool) {
        let record = || {
            self.verified.insert(tag, (Arc::clone(entry), previous));
            self.tag_of.entry(entry.id().to_owned()).or_default()[usize::from(previous)] =
                Some(tag);
        };
        // `current`, the shard's read guard, lives until the end of each branch.
        match (entry.previous(), previous) {
            (Some((hash, _)), true) => {
                if let Some(current) = self.by_previous.get(&hash.0)
                    && Arc::ptr_eq(current.value(), entry)
                {
                    record();
                }
            }
            (_, true) => {}
            (_, false) => {
                if let Some(current) = self.by_hash.0.get(&entry.hash.0)
                    && Arc::ptr_eq(&current.key().0, entry)
                {
                    record();
                }
            }
        }
    }

    fn forget(&self, key_id: &str) {
        if let Some((_, tags)) = self.tag_of.remove(key_id) {
            for tag in tags.into_iter().flatten() {
                self.verified.remove(&tag);
            }
        }
    }

    pub fn secrets(&self) -> &KeySecrets {
        &self.secrets
    }

    /// Whether `presented` is a key this node verified before (and has not changed since).
    pub fn knows(&self, presented: &str) -> bool {
        format::is_well_formed(presented) && self.verified.contains_key(&self.tag(presented))
    }

    /// Parses, hashes and looks up a presented key. Malformed keys never reach the map; the
    /// secret before a roll passes only within its grace period.
    pub fn verify(&self, presented: &str, now_ms: i64) -> Result<Arc<CachedKey>, Rejection> {
        if !format::is_well_formed(presented) {
            return Err(Rejection::Malformed);
        }
        let tag = self.tag(presented);
        let remembered = self.verified.get(&tag).map(|e| {
            let (entry, previous) = e.value();
            (Arc::clone(entry), *previous)
        });
        let (entry, previous) = match remembered {
            Some(found) => found,
            None => {
                let (entry, previous) = self.verify_in_full(presented)?;
                self.remember(tag, &entry, previous);
                (entry, previous)
            }
        };
        if previous && entry.previous().is_none_or(|&(_, until)| until <= now_ms) {
            return Err(Rejection::Unknown);
        }
        Ok(entry)
    }

    /// Adds or replaces a key, keeping its last-used time, usage and (while the limit is the
    /// same) rate-limit counts across edits. Tags of secrets the key still has move to the
    /// new entry; the others are forgotten.
    pub fn put(&self, mut key: CachedKey) {
        let before = self.get(key.id());
        if let Some(before) = &before {
            let used = before.last_used.load(Ordering::Relaxed);
            key.last_used.fetch_max(used, Ordering::Relaxed);
            key.flushed_last_used.fetch_max(
                before.flushed_last_used.load(Ordering::Relaxed),
                Ordering::Relaxed,
            );
            key.usage = before.usage.share();
            if let (Some(old), Some(new)) = (&before.limiter, &key.limiter)
                && old.limit == new.limit
            {
                key.limiter = Some(Arc::clone(old));
            }
        }
        let key = Arc::new(key);
        self.by_hash.put(ByHash(Arc::clone(&key)));
        if let Some((hash, _)) = key.previous() {
            self.by_previous.insert(hash.0, Arc::clone(&key));
        }
        self.by_id.put(ById(Arc::clone(&key)));
        if let Some(before) = &before {
            if before.hash.0 != key.hash.0 {
                self.by_hash.0.remove(&before.hash.0);
            }
            if let Some((hash, _)) = before.previous()
                && key.previous().is_none_or(|(now, _)| now.0 != hash.0)
            {
                self.by_previous.remove(&hash.0);
            }
        }
        self.retag(&key, before.as_deref());
    }

    /// The shared copy of an agent id, for [`CachedKey::from_stored`].
    pub fn agent_id(&self, agent_id: &str) -> Arc<str> {
        if let Some(known) = self.agent_ids.get(agent_id) {
            return Arc::clone(known.key());
        }
        Arc::clone(self.agent_ids.entry(agent_id.into()).or_default().key())
    }

    /// After `key` replaced `before`: every remembered tag of a secret the key still has points
    /// at the new entry, the rest are forgotten. Runs after the new entry is in `by_hash`, so a
    /// concurrent `remember` of the old entry has either finished (and is re-pointed here) or
    /// finds the old entry no longer current.
    fn retag(&self, key: &Arc<CachedKey>, before: Option<&CachedKey>) {
        let Some((_, tags)) = self.tag_of.remove(key.id()) else {
            return;
        };
        let secret_of = |slot: usize| -> Option<Words> {
            let before = before?;
            match slot {
                0 => Some(before.hash),
                _ => before.previous().map(|&(hash, _)| hash),
            }
        };
        let mut kept = [None, None];
        for (slot, tag) in tags.into_iter().enumerate() {
            let Some(tag) = tag else { continue };
            let now_slot = match secret_of(slot) {
                Some(hash) if hash == key.hash => Some(0),
                Some(hash) if key.previous().is_some_and(|&(p, _)| p == hash) => Some(1),
                _ => None,
            };
            match now_slot {
                Some(now_slot) => {
                    self.verified.insert(tag, (Arc::clone(key), now_slot == 1));
                    kept[now_slot] = Some(tag);
                }
                None => {
                    self.verified.remove(&tag);
                }
            }
        }
        if kept.iter().any(Option::is_some) {
            self.tag_of.insert(key.id().to_owned(), kept);
        }
    }

    pub fn remove(&self, key_id: &str) {
        if let Some(entry) = self.by_id.remove(key_id) {
            self.by_hash.0.remove(&entry.hash.0);
            if let Some((hash, _)) = entry.previous() {
                self.by_previous.remove(&hash.0);
            }
        }
        self.forget(key_id);
    }

    /// Drops every key whose id `keep` refuses.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        let gone: Vec<String> = self
            .by_id
            .0
            .iter()
            .filter(|entry| !keep(entry.key().0.id()))
            .map(|entry| entry.key().0.id().to_owned())
            .collect();
        for key_id in gone {
            self.remove(&key_id);
        }
    }

    pub fn get(&self, key_id: &str) -> Option<Arc<CachedKey>> {
        self.by_id.get(key_id)
    }

    pub fn len(&self) -> usize {
        self.by_id.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.0.is_empty()
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
        assert_eq!(cache.verify(&key, 0).unwrap().id(), "key_1");
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
    fn changes_reach_keys_verified_before() {
        let cache = cache();
        let key = format::generate();
        cache.put(entry(&cache, "key_1", &key, None));
        assert!(cache.verify(&key, 0).is_ok());
        assert!(
            cache.verify(&key, 0).is_ok(),
            "served from the verified map"
        );
        cache.put(entry(&cache, "key_1", &key, Some(10)));
        assert!(
            cache.knows(&key),
            "an edit keeps the tag of an unchanged secret"
        );
        assert_eq!(cache.verify(&key, 10).unwrap().expires_at, Some(10));
        cache.remove("key_1");
        assert_eq!(cache.verify(&key, 0).unwrap_err(), Rejection::Unknown);
        assert!(cache.verified.is_empty() && cache.tag_of.is_empty());
    }

    #[test]
    fn a_stale_entry_is_never_remembered() {
        let cache = cache();
        let key = format::generate();
        cache.put(entry(&cache, "key_1", &key, None));
        let (stale, _) = cache.verify_in_full(&key).unwrap();
        cache.remove("key_1");
        cache.remember(cache.tag(&key), &stale, false);
        assert_eq!(cache.verify(&key, 0).unwrap_err(), Rejection::Unknown);
    }

    /// A removal that has returned is final: no later verification may pass, even one racing
    /// with a verification that was remembering the key's tag at that moment.
    #[test]
    fn a_removed_key_never_passes_afterwards() {
        let cache = Arc::new(cache());
        for round in 0..10_000 {
            let key = format::generate();
            let id = format!("key_{round}");
            cache.put(entry(&cache, &id, &key, None));
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let hammer = {
                let (cache, key, stop) = (Arc::clone(&cache), key.clone(), Arc::clone(&stop));
                std::thread::spawn(move || {
                    // The full check and `remember`, over and over, racing the removal.
                    while !stop.load(Ordering::Relaxed) {
                        if let Ok((entry, previous)) = cache.verify_in_full(&key) {
                            cache.remember(cache.tag(&key), &entry, previous);
                        }
                        std::thread::yield_now();
                    }
                })
            };
            std::thread::yield_now();
            cache.remove(&id);
            assert_eq!(
                cache.verify(&key, 0).unwrap_err(),
                Rejection::Unknown,
                "round {round}"
            );
            stop.store(true, Ordering::Relaxed);
            hammer.join().unwrap();
        }
    }

    #[test]
    fn a_rolled_key_takes_its_previous_secret_until_the_grace_ends() {
        let cache = cache();
        let old = format::generate();
        let new = format::generate();
        cache.put(entry(&cache, "key_1", &old, None));
        assert!(cache.verify(&old, 0).is_ok());
        let mut rolled = entry(&cache, "key_1", &new, None);
        rolled.set_previous(Some((cache.secrets().lookup_hash(&old), 1_000)));
        cache.put(rolled);
        assert!(cache.knows(&old) && !cache.knows(&new));
        assert_eq!(cache.verify(&new, 999).unwrap().id(), "key_1");
        assert_eq!(cache.verify(&old, 999).unwrap().id(), "key_1");
        assert_eq!(cache.verify(&old, 1_000).unwrap_err(), Rejection::Unknown);
        // Rolled again without grace: the first secret is gone from every index.
        cache.put(entry(&cache, "key_1", &format::generate(), None));
        assert_eq!(cache.verify(&old, 0).unwrap_err(), Rejection::Unknown);
        assert_eq!(cache.verify(&new, 0).unwrap_err(), Rejection::Unknown);
        assert_eq!(cache.by_hash.0.len(), 1);
        assert!(cache.by_previous.is_empty());
        assert!(cache.verified.is_empty() && cache.tag_of.is_empty());
    }

    #[test]
    fn used_keys_are_listed_once_per_flush_and_uses_written_once() {
        let cache = cache();
        let (key, idle) = (format::generate(), format::generate());
        cache.put(entry(&cache, "key_1", &key, None));
        cache.put(entry(&cache, "key_2", &idle, None));
        let client = IpAddr::from([10, 0, 0, 1]);
        let cached = cache.verify(&key, 0).unwrap();
        cache.record_use(&cached, None, client, 5_000);
        cache.record_use(&cached, None, client, 5_500);
        let taken = cache.take_used();
        assert_eq!(taken.len(), 1, "listed once, and the idle key not at all");
        assert_eq!(taken[0].unflushed_use(), Some(5_000));
        assert!(cache.take_used().is_empty());

        // A failed flush puts the key back; a written one is not written again.
        cache.relist_used(&taken);
        let taken = cache.take_used();
        assert_eq!(taken.len(), 1);
        taken[0].mark_flushed(5_000);
        assert_eq!(taken[0].unflushed_use(), None);

        // Edits keep the time, and a key listed before an edit is flushed as now cached.
        cache.record_use(&cached, None, client, 7_000);
        cache.put(entry(&cache, "key_1", &key, None));
        let taken = cache.take_used();
        assert!(!Arc::ptr_eq(&taken[0], &cached));
        assert_eq!(taken[0].unflushed_use(), Some(7_000));
        assert_eq!(cache.get("key_1").unwrap().last_used_at(), Some(7_000));

        // A key deleted after its use is left out.
        cache.record_use(&cached, None, client, 9_000);
        cache.remove("key_1");
        assert!(cache.take_used().is_empty());
    }

    fn stored(cache: &KeyCache, secret: &str) -> KeyCore {
        KeyCore {
            id: "key_1".into(),
            agent_id: "agt_1".into(),
            name: "Billing".into(),
            lookup_hash: crate::crypto::encode_hex(&cache.secrets().lookup_hash(secret)),
            permissions: Permissions::default(),
            ip_nets: Some(Vec::new()),
            expires_at: Some(9_000),
            last_used_at: Some(4_000),
            rate_limit: None,
            enabled: true,
            previous_lookup_hash: None,
            previous_expires_at: None,
        }
    }

    #[test]
    fn limited_keys_in_use_are_listed_once_and_only_while_cached() {
        let cache = cache();
        let limited = |secret: &str| {
            let mut row = stored(&cache, secret);
            row.rate_limit = Some(crate::model::key::RateLimit {
                requests: 5,
                per_seconds: 60,
            });
            CachedKey::from_stored(row, cache.agent_id("agt_1"), true).unwrap()
        };
        cache.put(limited(&format::generate()));
        let cached = cache.get("key_1").unwrap();
        for _ in 0..3 {
            cache.note_limited_use(&cached);
        }
        let taken = cache.take_limited_in_use();
        assert_eq!(taken.len(), 1, "listed once however often used");
        assert!(cache.take_limited_in_use().is_empty());

        // Off the list, a use lists it again; a key replaced meanwhile is left out.
        cached.limiter.as_ref().unwrap().unlist();
        cache.note_limited_use(&cached);
        cache.put(limited(&format::generate()));
        assert!(cache.take_limited_in_use().is_empty());

        // Without coordination (one node) nothing is listed.
        let mut row = stored(&cache, &format::generate());
        row.rate_limit = Some(crate::model::key::RateLimit {
            requests: 5,
            per_seconds: 60,
        });
        let single = Arc::new(CachedKey::from_stored(row, cache.agent_id("agt_1"), false).unwrap());
        cache.note_limited_use(&single);
        assert!(cache.take_limited_in_use().is_empty());
    }

    #[test]
    fn stored_keys_keep_every_field_and_unreadable_ones_are_refused() {
        let cache = cache();
        let (old, new) = (format::generate(), format::generate());
        let mut row = stored(&cache, &new);
        row.ip_nets = Some(vec!["10.0.0.0/8".parse().unwrap()]);
        row.rate_limit = Some(crate::model::key::RateLimit {
            requests: 5,
            per_seconds: 60,
        });
        row.previous_lookup_hash = Some(crate::crypto::encode_hex(
            &cache.secrets().lookup_hash(&old),
        ));
        row.previous_expires_at = Some(1_000);
        let agent = cache.agent_id("agt_1");
        let key = CachedKey::from_stored(row, Arc::clone(&agent), false).unwrap();
        assert_eq!((key.id(), key.name()), ("key_1", "Billing"));
        assert!(Arc::ptr_eq(&key.agent_id, &cache.agent_id("agt_1")));
        assert_eq!(key.ip_nets(), ["10.0.0.0/8".parse::<IpNet>().unwrap()]);
        assert_eq!(
            (key.expires_at, key.last_used_at()),
            (Some(9_000), Some(4_000))
        );
        assert_eq!(key.limiter.as_ref().unwrap().limit.requests, 5);
        cache.put(key);
        assert_eq!(cache.verify(&new, 0).unwrap().name(), "Billing");
        assert_eq!(cache.verify(&old, 999).unwrap().id(), "key_1");

        let plain =
            CachedKey::from_stored(stored(&cache, &new), Arc::clone(&agent), false).unwrap();
        assert!(plain.ip_nets().is_empty() && plain.limiter.is_none());
        let mut unreadable = stored(&cache, &new);
        unreadable.ip_nets = None;
        assert_eq!(
            CachedKey::from_stored(unreadable, Arc::clone(&agent), false).unwrap_err(),
            "key_1"
        );
        let mut bad_hash = stored(&cache, &new);
        bad_hash.lookup_hash = "zz".into();
        assert!(CachedKey::from_stored(bad_hash, Arc::clone(&agent), false).is_err());
        let mut bad_previous = stored(&cache, &new);
        bad_previous.previous_lookup_hash = Some("zz".into());
        bad_previous.previous_expires_at = Some(1);
        assert!(CachedKey::from_stored(bad_previous, agent, false).is_err());
    }

    #[test]
    fn reserved_maps_take_keys_as_before() {
        let cache = cache();
        cache.reserve(1_000);
        let keys: Vec<String> = (0..100).map(|_| format::generate()).collect();
        for (n, key) in keys.iter().enumerate() {
            cache.put(entry(&cache, &format!("key_{n}"), key, None));
        }
        for (n, key) in keys.iter().enumerate() {
            assert_eq!(cache.verify(key, 0).unwrap().id(), format!("key_{n}"));
        }
        assert_eq!(cache.len(), 100);
    }
}
