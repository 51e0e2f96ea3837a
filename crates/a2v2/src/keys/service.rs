//! Every change to a key goes through here. A change holds the write lock (so storage and the
//! in-memory cache always agree on the last write), records the changed keys in the change
//! feed in its transaction, and applies itself to this node's cache after the commit, before
//! the caller answers: the very next request sees it. The commit and the cache update run as
//! one task that a client hanging up cannot cut in two. Where other nodes share the database,
//! the change then waits until each of them reports it applied (see [`Keys::await_nodes`]).

use std::{
    collections::BTreeSet,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::{Duration, Instant},
};

use serde::Serialize;
use serde_json::json;
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::{
    cache::{CachedKey, KeyCache},
    format,
    input::{self, KeyChanges},
};
use crate::{
    audit,
    crypto::{KeySecrets, encode_hex},
    error::{DomainError, Result},
    model::{
        audit::{By, NewEvent, Target},
        ip,
        key::{ApiKey, KeyCore, KeyView},
        now_ms,
        time::opt_rfc3339,
    },
    store::{self, Constraint, Store, StoreError, Tx},
};

/// The key service: storage, the verification cache and the write lock. Cheap to clone.
#[derive(Clone)]
pub struct Keys(Arc<Inner>);

struct Inner {
    store: Store,
    cache: KeyCache,
    writes: Arc<Mutex<()>>,
    /// The key change counter's value (`sync`) that the cache reflects at least.
    version: AtomicI64,
    /// When (unix ms) the cache was last confirmed current against storage.
    confirmed_at: AtomicI64,
    lease_ms: i64,
    keep_copies: bool,
    /// Other nodes share the database, and with it the rate-limit budget.
    coordinated: bool,
    /// This process among the nodes reporting to `key_nodes`.
    node_id: String,
}

/// Keys read per query when loading them all.
const LOAD_PAGE: i64 = 1_000;

/// A node row not reported for this long belongs to a process that crashed: it is removed.
const STALE_NODE_MS: i64 = 60 * 60 * 1000;

/// The id under which the incident switch travels in the key change feed.
pub const SWITCH_ID: &str = "keys_suspension";

/// What a committed change does to the cache.
enum Effect {
    Stored(Vec<ApiKey>),
    Removed(Vec<String>),
    Suspended(bool),
}

/// A change to keys in progress: the write lock and an open transaction. Dropping it rolls
/// the transaction back.
pub struct KeyChange {
    keys: Keys,
    tx: Tx,
    guard: OwnedMutexGuard<()>,
}

impl KeyChange {
    /// The transaction, for the statements of the change.
    pub fn tx(&mut self) -> &mut Tx {
        &mut self.tx
    }

    /// Commits a change that removed `key_ids` (also by cascade, as when an agent goes).
    pub async fn commit_removed(self, key_ids: Vec<String>) -> Result<()> {
        self.commit(Effect::Removed(key_ids)).await
    }

    async fn commit(mut self, effect: Effect) -> Result<()> {
        let ids: Vec<&str> = match &effect {
            Effect::Stored(rows) => rows.iter().map(|row| row.id.as_str()).collect(),
            Effect::Removed(ids) => ids.iter().map(String::as_str).collect(),
            Effect::Suspended(_) => vec![SWITCH_ID],
        };
        let version = store::key_changes::announce(&mut self.tx, &ids).await?;
        let Self { keys, tx, guard } = self;
        let applied = keys.clone();
        tokio::spawn(async move {
            tx.commit().await?;
            match effect {
                Effect::Stored(rows) => rows.iter().for_each(|row| keys.cache_row(row)),
                Effect::Removed(ids) => ids.iter().for_each(|id| keys.0.cache.remove(id)),
                Effect::Suspended(on) => keys.0.cache.set_suspended(on),
            }
            drop(guard);
            Ok::<_, StoreError>(())
        })
        .await
        .map_err(DomainError::internal)??;
        if let Some(version) = version {
            applied.await_nodes(version).await;
        }
        Ok(())
    }
}

impl Keys {
    /// `lease` is how long the cache stays trusted after it was last confirmed current.
    pub fn new(store: Store, secrets: KeySecrets, keep_copies: bool, lease: Duration) -> Self {
        Self(Arc::new(Inner {
            cache: KeyCache::new(secrets),
            writes: Arc::new(Mutex::new(())),
            version: AtomicI64::new(0),
            confirmed_at: AtomicI64::new(i64::MIN),
            lease_ms: i64::try_from(lease.as_millis()).unwrap_or(i64::MAX),
            keep_copies,
            coordinated: store.is_shared(),
            node_id: crate::model::new_id("node"),
            store,
        }))
    }

    /// Waits until every other node that may still serve keys has applied key change
    /// `version`, for at most that node's lease: by then a node that has not applied it has
    /// gone a lease without a poll that got through (a poll that starts after the commit sees
    /// the change before it renews the lease), and refuses keys. Either way, once this
    /// returns no node serves what the change replaced.
    pub async fn await_nodes(&self, version: i64) {
        if !self.0.coordinated {
            return;
        }
        let started = Instant::now();
        let slack_ms = i64::try_from(super::sync::POLL_EVERY.as_millis()).unwrap_or(i64::MAX);
        let mut pause = Duration::from_millis(1);
        // Until the first answer, the longest lease a node may have: this node's own.
        let mut longest = self.lease();
        loop {
            let lagging = match self.0.store.conn().await {
                Ok(mut conn) => {
                    store::key_changes::lagging_nodes(&mut conn, &self.0.node_id, version, slack_ms)
                        .await
                }
                Err(err) => Err(err),
            };
            match &lagging {
                Ok(nodes) if nodes.is_empty() => return,
                Ok(nodes) => {
                    let lease_ms = nodes.iter().map(|(_, lease)| *lease).max().unwrap_or(0);
                    longest = Duration::from_millis(u64::try_from(lease_ms).unwrap_or(0));
                }
                Err(_) => {}
            }
            if started.elapsed() >= longest {
                match lagging {
                    Ok(nodes) => tracing::warn!(
                        ?nodes,
                        version,
                        "nodes did not apply a key change within their lease; they refuse keys until they catch up"
                    ),
                    Err(err) => tracing::warn!(
                        error = %err,
                        version,
                        "could not read which nodes applied a key change; waited out the lease"
                    ),
                }
                return;
            }
            tokio::time::sleep(pause.min(longest.saturating_sub(started.elapsed()))).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// This node's report to the other nodes.
    fn node_report(&self) -> store::key_changes::NodeReport<'_> {
        store::key_changes::NodeReport {
            node_id: &self.0.node_id,
            applied: self.version(),
            lease_ms: self.0.lease_ms,
        }
    }

    /// Reports this node's applied change version (coordinated stores only).
    pub async fn report(&self, db: &mut impl store::Db) -> std::result::Result<(), StoreError> {
        if !self.0.coordinated {
            return Ok(());
        }
        store::key_changes::report_node(db, &self.node_report()).await
    }

    /// [`Keys::report`] on the listening connection.
    pub async fn report_on(
        &self,
        listener: &mut store::key_changes::Listener,
    ) -> std::result::Result<(), StoreError> {
        if !self.0.coordinated {
            return Ok(());
        }
        listener.report_node(&self.node_report()).await
    }

    /// Joins the nodes that key changes wait for, before this one serves keys; rows of
    /// nodes gone for an hour without leaving go.
    pub async fn join(&self) -> Result<()> {
        if !self.0.coordinated {
            return Ok(());
        }
        let mut conn = self.0.store.conn().await?;
        store::key_changes::prune_nodes(&mut conn, STALE_NODE_MS).await?;
        self.report(&mut conn).await?;
        Ok(())
    }

    /// Leaves the nodes that key changes wait for, once this one no longer serves keys.
    pub async fn leave(&self) {
        if !self.0.coordinated {
            return;
        }
        let result = match self.0.store.conn().await {
            Ok(mut conn) => store::key_changes::forget_node(&mut conn, &self.0.node_id).await,
            Err(err) => Err(err),
        };
        if let Err(err) = result {
            tracing::warn!(error = %err, "could not leave the key nodes; other nodes wait out one lease for this one");
        }
    }

    /// Notes that the cache was found current by a check that started at `at`.
    pub fn confirm(&self, at: i64) {
        self.0.confirmed_at.fetch_max(at, Ordering::AcqRel);
    }

    /// False once the cache has gone unconfirmed for longer than the lease: this node may
    /// then be missing revocations made on other nodes, and must not serve keys.
    pub fn is_current(&self, now: i64) -> bool {
        now.saturating_sub(self.0.confirmed_at.load(Ordering::Acquire)) <= self.0.lease_ms
    }

    pub fn lease(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.0.lease_ms).unwrap_or(u64::MAX))
    }

    pub fn cache(&self) -> &KeyCache {
        &self.0.cache
    }

    pub fn secrets(&self) -> &KeySecrets {
        self.0.cache.secrets()
    }

    /// Starts a change: takes the write lock, then opens a transaction.
    pub async fn begin_change(&self) -> Result<KeyChange> {
        let guard = Arc::clone(&self.0.writes).lock_owned().await;
        let tx = self.0.store.begin().await?;
        Ok(KeyChange {
            keys: self.clone(),
            tx,
            guard,
        })
    }

    /// Serves the key as stored, or, if its stored form cannot be read, refuses it.
    fn cache_row(&self, row: &ApiKey) {
        self.cache_key(KeyCore::from(row));
    }

    fn cache_key(&self, key: KeyCore) {
        let agent_id = self.0.cache.agent_id(&key.agent_id);
        match CachedKey::from_stored(key, agent_id, self.0.coordinated) {
            Ok(cached) => self.0.cache.put(cached),
            Err(key_id) => {
                tracing::error!(%key_id, "stored key is unreadable; it is refused");
                self.0.cache.remove(&key_id);
            }
        }
    }

    /// The management view, with the last use known to this node's memory.
    pub fn view(&self, row: &ApiKey) -> KeyView {
        row.view(
            self.0.cache.get(&row.id).and_then(|k| k.last_used_at()),
            now_ms(),
        )
    }

    /// The agent's keys, newest first; `NotFound` for an unknown agent.
    pub async fn list(&self, agent_id: &str) -> Result<Vec<KeyView>> {
        let mut conn = self.0.store.conn().await?;
        store::agents::get(&mut conn, agent_id).await?;
        let rows = store::keys::list(&mut conn, agent_id).await?;
        Ok(rows.iter().map(|row| self.view(row)).collect())
    }

    pub async fn get(&self, agent_id: &str, key_id: &str) -> Result<KeyView> {
        let mut conn = self.0.store.conn().await?;
        let row = store::keys::get(&mut conn, agent_id, key_id).await?;
        Ok(self.view(&row))
    }

    /// Creates a key for the agent; returns it with its secret in `key`, shown only this
    /// once. `created_by` is the member `(id, email)` who made it.
    pub async fn create(
        &self,
        by: &By,
        agent_id: &str,
        created_by: Option<(&str, &str)>,
        changes: KeyChanges,
    ) -> Result<KeyView> {
        let (row, secret) = input::mint(
            self.secrets(),
            self.0.keep_copies,
            agent_id,
            created_by,
            changes,
            now_ms(),
        )?;
        let mut change = self.begin_change().await?;
        store::agents::get(change.tx(), agent_id).await?;
        // The agent may be deleted by a concurrent transaction after the check above.
        match store::keys::insert(change.tx(), &row).await {
            Err(StoreError::Conflict(Constraint::ForeignKey)) => return Err(DomainError::NotFound),
            other => other?,
        }
        audit::record(
            change.tx(),
            by,
            NewEvent {
                action: "api_key.created",
                agent_id: Some(agent_id),
                target: Some(Target::new("api_key", &row.id, &row.name)),
                details: json!({
                    "name": row.name,
                    "permissions": row.permissions.to_json(),
                    "ip_addresses": ip::display_list(&row.ip_nets),
                    "expires_at": opt_rfc3339(row.expires_at),
                    "preview": row.preview,
                }),
            },
        )
        .await?;
        change.commit(Effect::Stored(vec![row.clone()])).await?;
        let mut view = self.view(&row);
        view.key = Some(secret);
        Ok(view)
    }

    /// Changes name, description, IP list, permissions or expiry; effective for the very
    /// next request. `NotFound` also when another node deleted the key meanwhile.
    pub async fn update(
        &self,
        by: &By,
        agent_id: &str,
        key_id: &str,
        changes: KeyChanges,
    ) -> Result<KeyView> {
        let mut change = self.begin_change().await?;
        let mut row = store::keys::get(change.tx(), agent_id, key_id).await?;
        if changes.enabled == Some(true) && row.leak_reported_at.is_some() {
            return Err(DomainError::Conflict(
                "This key's secret was reported leaked: roll the key to give it a new secret \
                 before resuming it."
                    .into(),
            ));
        }
        let changed = input::apply(&mut row, changes);
        if changed.is_empty() {
            return Ok(self.view(&row));
        }
        row.updated_at = now_ms();
        store::keys::update(change.tx(), &row).await?;
        if changed.contains_key("rate_limit") {
            // Buckets of another width would be misread.
            store::rate_limits::forget(change.tx(), &row.id).await?;
        }
        audit::record(
            change.tx(),
            by,
            NewEvent {
                action: "api_key.updated",
                agent_id: Some(agent_id),
                target: Some(Target::new("api_key", &row.id, &row.name)),
                details: json!({
                    "changed": changed.keys().collect::<Vec<_>>(),
                    "changes": changed,
                }),
            },
        )
        .await?;
        change.commit(Effect::Stored(vec![row.clone()])).await?;
        Ok(self.view(&row))
    }

    /// Deletes (revokes) the key; it fails on this node before this returns, and on every
    /// other node as soon as the change reaches it. Returns the key as it was.
    pub async fn delete(&self, by: &By, agent_id: &str, key_id: &str) -> Result<ApiKey> {
        let mut change = self.begin_change().await?;
        let row = store::keys::get(change.tx(), agent_id, key_id).await?;
        store::keys::delete(change.tx(), &row.id).await?;
        store::rate_limits::forget(change.tx(), &row.id).await?;
        audit::record(
            change.tx(),
            by,
            NewEvent {
                action: "api_key.deleted",
                agent_id: Some(agent_id),
                target: Some(Target::new("api_key", &row.id, &row.name)),
                details: json!({ "preview": row.preview }),
            },
        )
        .await?;
        change.commit_removed(vec![row.id.clone()]).await?;
        Ok(row)
    }

    /// Gives the key a new secret (same id, settings and history). The old secret keeps
    /// working for `grace_seconds`, then fails like a deleted key, on every node. Returns the
    /// key with its new secret in `key`.
    pub async fn roll(
        &self,
        by: &By,
        agent_id: &str,
        key_id: &str,
        grace_seconds: u64,
    ) -> Result<KeyView> {
        let mut change = self.begin_change().await?;
        let mut row = store::keys::get(change.tx(), agent_id, key_id).await?;
        let now = now_ms();
        let secret = format::generate();
        let grace_ms = i64::try_from(grace_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
        (row.previous_lookup_hash, row.previous_expires_at) = if grace_ms > 0 {
            (
                Some(row.lookup_hash.clone()),
                Some(now.saturating_add(grace_ms)),
            )
        } else {
            (None, None)
        };
        row.lookup_hash = encode_hex(&self.secrets().lookup_hash(&secret));
        row.preview = format::preview(&secret);
        row.secret_ciphertext = if self.0.keep_copies {
            Some(self.secrets().seal(&row.id, &secret)?)
        } else {
            None
        };
        row.rolled_at = Some(now);
        row.leak_reported_at = None;
        row.updated_at = now;
        store::keys::update(change.tx(), &row).await?;
        audit::record(
            change.tx(),
            by,
            NewEvent {
                action: "api_key.rolled",
                agent_id: Some(agent_id),
                target: Some(Target::new("api_key", &row.id, &row.name)),
                details: json!({
                    "grace_seconds": grace_seconds,
                    "previous_expires_at": opt_rfc3339(row.previous_expires_at),
                    "preview": row.preview,
                }),
            },
        )
        .await?;
        change.commit(Effect::Stored(vec![row.clone()])).await?;
        let mut view = self.view(&row);
        view.previous_expires_at = row.previous_expires_at;
        view.key = Some(secret);
        Ok(view)
    }

    /// The incident switch: with `on`, every key of the workspace answers 401 until it is
    /// turned off again; on every node, like a revocation. Returns whether it changed.
    pub async fn suspend_all(&self, by: &By, on: bool) -> Result<bool> {
        let mut change = self.begin_change().await?;
        let member = (by.actor.kind == "member")
            .then_some(by.actor.id.as_deref())
            .flatten();
        let changed = store::keys::set_suspended(change.tx(), on, now_ms(), member).await?;
        if !changed {
            return Ok(false);
        }
        audit::record(
            change.tx(),
            by,
            NewEvent {
                action: if on { "keys.suspended" } else { "keys.resumed" },
                agent_id: None,
                target: None,
                details: json!({}),
            },
        )
        .await?;
        change.commit(Effect::Suspended(on)).await?;
        Ok(true)
    }

    pub fn is_suspended(&self) -> bool {
        self.0.cache.is_suspended()
    }

    /// A report that `presented` leaked. When it is the current secret of a key, the key is
    /// paused at once and marked reported (its row stays, so that people see what happened;
    /// a roll and resuming bring it back). When it is a previous secret still in its grace
    /// period, the grace ends. Audited with the reporter's address. Anything else is ignored,
    /// and the caller answers the same either way.
    pub async fn report_leak(&self, by: &By, presented: &str) -> Result<()> {
        if !format::is_well_formed(presented) {
            return Ok(());
        }
        let hash = encode_hex(&self.secrets().lookup_hash(presented));
        let mut change = self.begin_change().await?;
        let Some(mut row) = store::keys::find_by_hash(change.tx(), &hash).await? else {
            return Ok(());
        };
        let now = now_ms();
        let current = row.lookup_hash == hash;
        if current {
            row.enabled = false;
            row.leak_reported_at = Some(now);
        } else if row.previous_expires_at.is_some_and(|at| at > now) {
            row.previous_lookup_hash = None;
            row.previous_expires_at = None;
        } else {
            return Ok(());
        }
        row.updated_at = now;
        store::keys::update(change.tx(), &row).await?;
        audit::record(
            change.tx(),
            by,
            NewEvent {
                action: "api_key.leak_reported",
                agent_id: Some(&row.agent_id),
                target: Some(Target::new("api_key", &row.id, &row.name)),
                details: json!({
                    "secret": if current { "current" } else { "previous" },
                    "revoked": true,
                    "preview": row.preview,
                }),
            },
        )
        .await?;
        change.commit(Effect::Stored(vec![row])).await?;
        Ok(())
    }

    /// The cache entry of the agent's key, as the `/v1` guard sees it; `NotFound` when the
    /// agent has no such key.
    pub async fn cached(&self, agent_id: &str, key_id: &str) -> Result<Arc<CachedKey>> {
        let mut conn = self.0.store.conn().await?;
        store::keys::get(&mut conn, agent_id, key_id).await?;
        self.0.cache.get(key_id).ok_or(DomainError::NotFound)
    }

    /// What the key was used for: the last use of each granted permission and the recent
    /// client addresses, from storage and this node's memory.
    pub async fn usage(&self, agent_id: &str, key_id: &str) -> Result<KeyUsage> {
        let mut conn = self.0.store.conn().await?;
        let row = store::keys::get(&mut conn, agent_id, key_id).await?;
        let mut clients: Vec<(String, i64, i64)> = store::keys::clients(&mut conn, key_id).await?;
        let mut permission_uses = row.permission_uses.clone();
        if let Some(cached) = self.0.cache.get(key_id) {
            for (permission, at) in cached.usage.permission_uses() {
                let entry = permission_uses.entry(permission.name()).or_insert(at);
                *entry = (*entry).max(at);
            }
            for (ip, count, last_seen) in cached.usage.pending().clients {
                match clients.iter_mut().find(|(known, ..)| *known == ip) {
                    Some(known) => {
                        known.1 += count;
                        known.2 = known.2.max(last_seen);
                    }
                    None => clients.push((ip, count, last_seen)),
                }
            }
        }
        clients.sort_by_key(|(_, _, last_seen)| std::cmp::Reverse(*last_seen));
        clients.truncate(super::usage::RECENT_CLIENTS);
        let permissions = crate::model::permissions::Permission::all()
            .filter(|p| row.permissions.has(*p))
            .map(|p| PermissionUse {
                last_used_at: permission_uses.get(&p.name()).copied(),
                permission: p.name(),
            })
            .collect();
        Ok(KeyUsage {
            last_used_at: self.view(&row).last_used_at,
            permissions,
            clients: clients
                .into_iter()
                .map(|(ip, count, last_seen)| ClientUse {
                    ip,
                    count,
                    last_seen,
                })
                .collect(),
        })
    }

    /// Reserves rate-limit budget from the database for every limited key this node is
    /// using (several nodes on PostgreSQL); see `keys::limiter`.
    pub async fn reserve_budgets(&self) {
        if !self.0.coordinated {
            return;
        }
        let now = now_ms();
        let keys = self.0.cache.take_limited_in_use();
        // Keys stay listed while they have requests in the window; each is taken off the
        // list first, so a request arriving meanwhile lists it again by itself.
        for key in &keys {
            if let Some(limiter) = &key.limiter {
                limiter.unlist();
                if limiter.active(now) {
                    self.0.cache.note_limited_use(key);
                }
            }
        }
        for key in keys {
            let Some(limiter) = &key.limiter else {
                continue;
            };
            let Some(wanted) = limiter.wanted(now) else {
                continue;
            };
            let current = limiter.bucket_of(now);
            let asked: Vec<(i64, u32)> = wanted.iter().copied().filter(|(_, n)| *n > 0).collect();
            let result = async {
                let mut tx = self.0.store.begin().await?;
                let answer = store::rate_limits::reserve(
                    &mut tx,
                    key.id(),
                    limiter.limit.requests,
                    (current - super::limiter::BUCKETS, current),
                    &asked,
                )
                .await?;
                tx.commit().await?;
                Ok::<_, StoreError>(answer)
            }
            .await;
            match result {
                Ok((given, total)) => {
                    let mut granted = [0u32; super::limiter::BUCKETS as usize + 1];
                    let mut given = given.into_iter();
                    for (slot, (_, n)) in granted.iter_mut().zip(wanted.iter()) {
                        if *n > 0 {
                            *slot = given.next().unwrap_or(0);
                        }
                    }
                    limiter.granted(&wanted, &granted, total);
                }
                Err(err) => {
                    tracing::warn!(error = %err, "reserving rate-limit budget failed");
                    return;
                }
            }
        }
    }

    /// The key's secret for **Copy API Key**; `RevealDisabled` when the server keeps no copy.
    pub async fn reveal(&self, by: &By, agent_id: &str, key_id: &str) -> Result<String> {
        let mut tx = self.0.store.begin().await?;
        let row = store::keys::get(&mut tx, agent_id, key_id).await?;
        let sealed = match (&row.secret_ciphertext, self.0.keep_copies) {
            (Some(sealed), true) => sealed,
            _ => return Err(DomainError::RevealDisabled),
        };
        let secret = self.secrets().open(&row.id, sealed)?;
        store::keys::record_reveal(&mut tx, &row.id, now_ms()).await?;
        audit::record(
            &mut tx,
            by,
            NewEvent {
                action: "api_key.revealed",
                agent_id: Some(agent_id),
                target: Some(Target::new("api_key", &row.id, &row.name)),
                details: json!({}),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(secret)
    }

    /// Refuses a master key other than the one the data was made with: with it, no stored
    /// key would verify and no copy would open. The first start records the key's
    /// fingerprint; data from before fingerprints were kept is checked against a stored key
    /// copy, when there is one.
    pub async fn check_master_key(&self) -> Result<()> {
        let mut tx = self.0.store.begin().await?;
        let fingerprint = self.secrets().fingerprint();
        match store::master_key::fingerprint(&mut tx).await? {
            Some(stored) if stored == fingerprint => return Ok(()),
            Some(_) => return Err(wrong_master_key()),
            None => {}
        }
        if let Some((key_id, sealed)) = store::keys::any_sealed(&mut tx).await?
            && self.secrets().open(&key_id, &sealed).is_err()
        {
            return Err(wrong_master_key());
        }
        store::master_key::record(&mut tx, fingerprint).await?;
        tx.commit().await?;
        Ok(())
    }

    /// With copies turned off, deletes the copies kept from before, so that only hashes
    /// remain, as the setting promises. Recorded when there were any. Returns how many.
    pub async fn clear_copies_if_off(&self) -> Result<u64> {
        if self.0.keep_copies {
            return Ok(0);
        }
        let mut tx = self.0.store.begin().await?;
        let cleared = store::keys::clear_copies(&mut tx).await?;
        if cleared > 0 {
            audit::record(
                &mut tx,
                &By::system(),
                NewEvent {
                    action: "api_key.copies_cleared",
                    agent_id: None,
                    target: None,
                    details: json!({ "count": cleared, "reason": "key_reveal is off" }),
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(cleared)
    }

    /// The change counter's value the cache reflects at least.
    pub fn version(&self) -> i64 {
        self.0.version.load(Ordering::Acquire)
    }

    /// Notes that the cache reflects version `version` (never moving backwards).
    pub fn reached(&self, version: i64) {
        self.0.version.fetch_max(version, Ordering::AcqRel);
    }

    /// After a restored database made the counter go backwards.
    pub fn rewind(&self, version: i64) {
        self.0.version.store(version, Ordering::Release);
    }

    /// Loads every key into the cache (at start-up, and after missed changes), dropping cached
    /// keys that storage no longer has. Returns how many keys are stored.
    pub async fn load_all(&self) -> Result<usize> {
        let started = now_ms();
        let _serialised = self.0.writes.lock().await;
        let mut conn = self.0.store.conn().await?;
        // Read before the keys: every change after this version is caught by the next poll.
        let version = store::key_changes::current_version(&mut conn).await?;
        self.0
            .cache
            .set_suspended(store::keys::suspended(&mut conn).await?);
        // Ids seen, to drop cached keys storage no longer has; not needed when the cache
        // starts empty (at start-up), which keeps a million ids out of memory there.
        let mut stored = (!self.0.cache.is_empty()).then(std::collections::HashSet::new);
        if stored.is_none() {
            let total = store::keys::count(&mut conn).await?;
            self.0.cache.reserve(usize::try_from(total).unwrap_or(0));
        }
        // The next page is read while this one goes into the cache: the database builds a
        // page in about the time the cache takes to take one in. Pages are parsed here, so
        // that the reading task allocates only each page's text (memory a second allocating
        // thread would hold on to showed up in the resident size).
        let (pages, mut received) = tokio::sync::mpsc::channel(1);
        tokio::spawn(async move {
            let mut after: Option<String> = None;
            loop {
                let page = store::keys::core_page(&mut conn, after.as_deref(), LOAD_PAGE).await;
                let next = match &page {
                    Ok(page) if page.len == LOAD_PAGE => page.last.clone(),
                    _ => None,
                };
                if pages.send(page).await.is_err() || next.is_none() {
                    return;
                }
                after = next;
            }
        });
        let mut count = 0;
        while let Some(page) = received.recv().await {
            let keys = page?.keys()?;
            count += keys.len();
            if let Some(stored) = &mut stored {
                stored.extend(keys.iter().map(|key| key.id.clone()));
            }
            for key in keys {
                self.cache_key(key);
            }
        }
        if let Some(stored) = stored {
            self.0.cache.retain(|key_id| stored.contains(key_id));
        }
        self.reached(version);
        self.confirm(started);
        Ok(count)
    }

    /// Reloads `key_ids` from storage into the cache, dropping those storage no longer has.
    pub async fn refresh(&self, key_ids: &BTreeSet<String>) -> Result<()> {
        // Under the same lock as local changes, so an older read never overwrites a newer write.
        let _serialised = self.0.writes.lock().await;
        let mut conn = self.0.store.conn().await?;
        for key_id in key_ids {
            if key_id == SWITCH_ID {
                let on = store::keys::suspended(&mut conn).await?;
                self.0.cache.set_suspended(on);
                continue;
            }
            match store::keys::find(&mut conn, key_id).await? {
                Some(row) => self.cache_row(&row),
                None => self.0.cache.remove(key_id),
            }
        }
        Ok(())
    }

    /// Writes the last-used times and usage gathered in memory since the previous flush, in
    /// one transaction; they count as written only once it has committed.
    pub async fn flush_last_used(&self) {
        let keys = self.0.cache.take_used();
        if keys.is_empty() {
            return;
        }
        let used: Vec<_> = keys
            .iter()
            .filter_map(|key| Some((key, key.unflushed_use()?)))
            .collect();
        let uses: Vec<(String, i64)> = used
            .iter()
            .map(|(key, at)| (key.id().to_owned(), *at))
            .collect();
        let usage: Vec<_> = keys
            .iter()
            .map(|key| (key, key.usage.pending()))
            .filter(|(_, batch)| !batch.permissions.is_empty() || !batch.clients.is_empty())
            .collect();
        let result = async {
            let mut tx = self.0.store.begin().await?;
            store::keys::record_uses(&mut tx, &uses).await?;
            for (key, batch) in &usage {
                store::keys::record_permission_uses(&mut tx, key.id(), &batch.permissions).await?;
                store::keys::record_clients(&mut tx, key.id(), &batch.clients).await?;
            }
            tx.commit().await
        }
        .await;
        match result {
            Ok(()) => {
                for (key, at) in &used {
                    key.mark_flushed(*at);
                }
                for (key, batch) in &usage {
                    key.usage.flushed(batch);
                }
            }
            Err(err) => {
                self.0.cache.relist_used(&keys);
                tracing::warn!(error = %err, "writing last-used times and usage failed");
            }
        }
    }
}

/// What a key was used for (`GET …/usage`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyUsage {
    #[serde(with = "crate::model::time::opt_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<i64>,
    /// Every granted permission with its last use (`null`: not used since it was granted, or
    /// not since usage is recorded).
    pub permissions: Vec<PermissionUse>,
    /// The recent client addresses, most recent first.
    pub clients: Vec<ClientUse>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PermissionUse {
    pub permission: String,
    #[serde(with = "crate::model::time::opt_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClientUse {
    pub ip: String,
    pub count: i64,
    #[serde(with = "crate::model::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub last_seen: i64,
}

fn wrong_master_key() -> DomainError {
    DomainError::Conflict(
        "the master key differs from the one this data was made with: start with the master \
         key (--master-key-file or A2V2_MASTER_KEY) the data was created with, or no API key \
         will verify"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        config::MasterKeySource,
        crypto::MasterKey,
        keys::input::CreateKey,
        model::{agent::Agent, new_id},
        validate,
    };

    async fn service(dir: &std::path::Path) -> (Keys, Store, String) {
        let url = format!("sqlite://{}", dir.join("k.db").display());
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let master = MasterKey::load(&MasterKeySource::Inline("44".repeat(32))).unwrap();
        let keys = Keys::new(
            store.clone(),
            KeySecrets::new(&master),
            true,
            Duration::from_secs(5),
        );
        let agent = Agent {
            id: new_id("agt"),
            name: "a".into(),
            created_at: 0,
            updated_at: 0,
        };
        let mut tx = store.begin().await.unwrap();
        store::agents::insert(&mut tx, &agent).await.unwrap();
        tx.commit().await.unwrap();
        (keys, store, agent.id)
    }

    fn changes() -> KeyChanges {
        let body = serde_json::json!({ "name": "k" });
        validate::parse::<CreateKey>(body.as_object().unwrap())
            .unwrap()
            .0
    }

    /// A request dropped at any moment (a client hanging up) never leaves storage and this
    /// node's cache disagreeing about a key.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_request_never_splits_storage_and_cache() {
        let dir = tempfile::tempdir().unwrap();
        let (keys, store, agent) = service(dir.path()).await;
        for round in 0..60u64 {
            let key = keys
                .create(&By::system(), &agent, None, changes())
                .await
                .unwrap();
            let by = By::system();
            let deleting = keys.delete(&by, &agent, &key.id);
            let _ = tokio::time::timeout(Duration::from_micros(round * 40), deleting).await;
            // Let a commit that is still running finish.
            let _ = keys.begin_change().await.unwrap();
            let mut conn = store.conn().await.unwrap();
            let stored = store::keys::find(&mut conn, &key.id).await.unwrap();
            assert_eq!(
                stored.is_some(),
                keys.cache().get(&key.id).is_some(),
                "round {round}: storage and cache disagree"
            );
        }
    }

    /// An update of a key that is gone (deleted by another node between read and write)
    /// writes nothing and reports it gone.
    #[tokio::test]
    async fn updating_a_deleted_key_reports_it_gone() {
        let dir = tempfile::tempdir().unwrap();
        let (keys, store, agent) = service(dir.path()).await;
        let key = keys
            .create(&By::system(), &agent, None, changes())
            .await
            .unwrap();
        let mut conn = store.conn().await.unwrap();
        let mut row = store::keys::get(&mut conn, &agent, &key.id).await.unwrap();
        store::keys::delete(&mut conn, &key.id).await.unwrap();
        row.name = "renamed".into();
        assert!(matches!(
            store::keys::update(&mut conn, &row).await,
            Err(StoreError::NotFound)
        ));
    }
}
