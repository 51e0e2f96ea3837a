//! The decision of the `/v1` guard: key → validity → client IP → permission, in SPEC order,
//! without I/O. The HTTP guard calls [`authorize`]; its checks after the secret was matched
//! are [`admit`], which the access simulator calls for a key it names by id.

pub mod guessing;

use std::{net::IpAddr, sync::Arc};

use crate::{
    keys::cache::{CachedKey, KeyCache, Rejection},
    model::{ip, permissions::Permission},
};

/// Why a request was refused.
#[derive(Debug)]
pub enum Denied {
    Missing,
    Invalid(Rejection),
    IpNotAllowed(Arc<CachedKey>),
    PermissionDenied(Arc<CachedKey>, Permission),
}

/// The whole verification: parse, hash, cache lookup, expiry, client IP, permission.
pub fn authorize(
    keys: &KeyCache,
    presented: Option<&str>,
    client: IpAddr,
    required: Option<Permission>,
    now_ms: i64,
) -> Result<Arc<CachedKey>, Denied> {
    let presented = presented.ok_or(Denied::Missing)?;
    let key = keys.verify(presented, now_ms).map_err(Denied::Invalid)?;
    admit(keys, key, client, required, now_ms)
}

/// Everything after the secret: the incident switch, paused, expiry, client IP, permission.
pub fn admit(
    keys: &KeyCache,
    key: Arc<CachedKey>,
    client: IpAddr,
    required: Option<Permission>,
    now_ms: i64,
) -> Result<Arc<CachedKey>, Denied> {
    if keys.is_suspended() || !key.enabled {
        return Err(Denied::Invalid(Rejection::Disabled));
    }
    if key.expires_at.is_some_and(|at| at <= now_ms) {
        return Err(Denied::Invalid(Rejection::Expired));
    }
    if !ip::allows(key.ip_nets(), client) {
        return Err(Denied::IpNotAllowed(key));
    }
    if let Some(permission) = required
        && !key.permissions.has(permission)
    {
        return Err(Denied::PermissionDenied(key, permission));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        keys::format,
        model::permissions::{Action, Area, Permissions},
    };

    fn cache_with(ip: &str, permissions: Permissions) -> (KeyCache, String) {
        cache_with_key(ip, permissions, |_| {})
    }

    fn cache_with_key(
        ip: &str,
        permissions: Permissions,
        adjust: impl FnOnce(&mut CachedKey),
    ) -> (KeyCache, String) {
        let master = crate::crypto::MasterKey::load(&crate::config::MasterKeySource::Inline(
            "33".repeat(32),
        ))
        .unwrap();
        let cache = KeyCache::new(crate::crypto::KeySecrets::new(&master));
        let secret = format::generate();
        let mut key = CachedKey::new(
            "key_1".into(),
            "agt_1".into(),
            "k".into(),
            cache.secrets().lookup_hash(&secret),
            permissions,
            ip::parse_list(&serde_json::json!(ip)).unwrap(),
            Some(1_000),
            None,
        );
        adjust(&mut key);
        cache.put(key);
        (cache, secret)
    }

    #[test]
    fn checks_run_in_the_documented_order() {
        let read = Permission(Area::Contacts, Action::Read);
        let write = Permission(Area::Contacts, Action::Update);
        let (cache, secret) = cache_with("10.0.0.0/8", Permissions::default().with(read));
        let inside: IpAddr = "10.1.2.3".parse().unwrap();
        let outside: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(matches!(
            authorize(&cache, None, outside, Some(write), 0),
            Err(Denied::Missing)
        ));
        assert!(matches!(
            authorize(&cache, Some("a2v2_bad"), outside, Some(write), 0),
            Err(Denied::Invalid(Rejection::Malformed))
        ));
        assert!(matches!(
            authorize(&cache, Some(&secret), outside, Some(write), 0),
            Err(Denied::IpNotAllowed(_))
        ));
        assert!(matches!(
            authorize(&cache, Some(&secret), inside, Some(write), 0),
            Err(Denied::PermissionDenied(_, p)) if p == write
        ));
        assert_eq!(
            authorize(&cache, Some(&secret), inside, Some(read), 0)
                .unwrap()
                .id(),
            "key_1"
        );
        assert!(authorize(&cache, Some(&secret), inside, None, 0).is_ok());
    }

    #[test]
    fn paused_suspended_and_expired_keys_are_invalid() {
        let any: IpAddr = "192.0.2.1".parse().unwrap();
        let (cache, secret) = cache_with("", Permissions::default());
        assert!(authorize(&cache, Some(&secret), any, None, 999).is_ok());
        assert!(matches!(
            authorize(&cache, Some(&secret), any, None, 1_000),
            Err(Denied::Invalid(Rejection::Expired))
        ));
        cache.set_suspended(true);
        assert!(matches!(
            authorize(&cache, Some(&secret), any, None, 0),
            Err(Denied::Invalid(Rejection::Disabled))
        ));
        let (cache, secret) = cache_with_key("", Permissions::default(), |k| k.enabled = false);
        assert!(matches!(
            authorize(&cache, Some(&secret), any, None, 0),
            Err(Denied::Invalid(Rejection::Disabled))
        ));
    }
}
