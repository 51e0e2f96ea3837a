//! Shared state handed to every handler.

use std::sync::{
    Arc,
    atomic::{AtomicI64, AtomicU64},
};

use crate::{
    audit::denials::Denials, config::Config, keys::cache::KeyCache,
    members::throttle::SignInThrottle, store::Store,
};

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub store: Store,
    pub keys: KeyCache,
    /// Serialises key changes so that storage and the cache always agree on the last write.
    pub key_writes: tokio::sync::Mutex<()>,
    /// The key change counter's value (`keys::sync`) that the cache reflects at least.
    pub key_version: AtomicI64,
    pub denials: Denials,
    pub throttle: SignInThrottle,
    pub metrics: Metrics,
}

/// Counters exposed on `/metrics`.
#[derive(Default)]
pub struct Metrics {
    pub verified_ok: AtomicU64,
    pub rejected_malformed: AtomicU64,
    pub rejected_unknown: AtomicU64,
    pub rejected_expired: AtomicU64,
    pub denied_ip: AtomicU64,
    pub denied_permission: AtomicU64,
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}
