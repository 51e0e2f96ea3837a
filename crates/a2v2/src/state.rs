//! Shared state handed to every handler: the configuration and the features' services.

use std::sync::{Arc, atomic::AtomicU64};

use crate::{
    access::guessing::Guessing, audit::denials::Denials, config::Config, contacts::Contacts,
    documents::Documents, keys::Keys, members::throttle::SignInThrottle, store::Store,
};

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub store: Store,
    pub keys: Keys,
    pub contacts: Contacts,
    pub documents: Documents,
    pub denials: Denials,
    pub throttle: SignInThrottle,
    pub guessing: Guessing,
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
    /// Paused keys, and every key while the incident switch is on.
    pub rejected_disabled: AtomicU64,
    pub rate_limited: AtomicU64,
    /// Refused because the client sent too many missing or invalid keys.
    pub guessing_refused: AtomicU64,
    /// `/v1` requests refused because the key cache could not be confirmed current.
    pub lease_expired: AtomicU64,
    pub connections: ConnectionMetrics,
}

/// Client connections: open now, and closed by why they ended.
#[derive(Default)]
pub struct ConnectionMetrics {
    pub open: AtomicU64,
    /// Ended by the client, after `Connection: close`, by an error or at shutdown.
    pub closed_normally: AtomicU64,
    pub closed_header_timeout: AtomicU64,
    pub closed_body_timeout: AtomicU64,
    pub closed_idle_timeout: AtomicU64,
    /// Answered 503 at once because `max_connections` were open.
    pub refused_at_limit: AtomicU64,
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
