//! Whatever a client sends as a key: the format check and the cache lookup never panic, and
//! nothing but a well-formed key reaches the lookup.
#![no_main]

use std::sync::OnceLock;

use a2v2::{
    config::MasterKeySource,
    crypto::{KeySecrets, MasterKey},
    keys::{
        cache::{KeyCache, Rejection},
        format,
    },
};
use libfuzzer_sys::fuzz_target;

fn cache() -> &'static KeyCache {
    static CACHE: OnceLock<KeyCache> = OnceLock::new();
    CACHE.get_or_init(|| {
        let master = MasterKey::load(&MasterKeySource::Inline("42".repeat(32)))
            .unwrap_or_else(|_| unreachable!("a valid inline key"));
        KeyCache::new(KeySecrets::new(&master))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(presented) = std::str::from_utf8(data) else {
        return;
    };
    let result = cache().verify(presented, 0);
    if !format::is_well_formed(presented) {
        assert_eq!(result.err(), Some(Rejection::Malformed));
    }
    let _ = format::preview(presented);
});
