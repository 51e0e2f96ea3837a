//! The API key format: `a2v2_` + 43 random base62 characters (256 bits from the OS CSPRNG) +
//! 6 base62 characters of CRC32 over the random part. The checksum lets a mistyped or forged
//! key be rejected before any lookup and lets secret scanners recognise leaked keys.

use rand::{RngCore, rngs::OsRng};

pub const PREFIX: &str = "a2v2_";
const RANDOM_LEN: usize = 43;
const CHECKSUM_LEN: usize = 6;
pub const KEY_LEN: usize = PREFIX.len() + RANDOM_LEN + CHECKSUM_LEN;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Generates a new key.
pub fn generate() -> String {
    let mut key = String::with_capacity(KEY_LEN);
    key.push_str(PREFIX);
    // Rejection sampling keeps every character uniform: 248 = 4 × 62. One buffer of OS
    // randomness almost always suffices; it is refilled if too many bytes were rejected.
    let mut pool = [0u8; 64];
    let mut used = pool.len();
    let mut produced = 0;
    while produced < RANDOM_LEN {
        if used == pool.len() {
            OsRng.fill_bytes(&mut pool);
            used = 0;
        }
        let byte = pool[used];
        used += 1;
        if byte < 248 {
            key.push(char::from(ALPHABET[usize::from(byte % 62)]));
            produced += 1;
        }
    }
    let checksum = checksum(&key.as_bytes()[PREFIX.len()..]);
    key.push_str(std::str::from_utf8(&checksum).unwrap_or_default());
    key
}

fn checksum(random: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut value = crc32fast::hash(random);
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    out
}

/// Checks the shape and checksum of a presented key without allocating.
pub fn is_well_formed(key: &str) -> bool {
    let bytes = key.as_bytes();
    if bytes.len() != KEY_LEN || !key.starts_with(PREFIX) {
        return false;
    }
    let body = &bytes[PREFIX.len()..];
    if !body.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    let (random, sum) = body.split_at(RANDOM_LEN);
    checksum(random) == sum
}

/// The non-secret preview shown in lists: prefix, first 4 random characters, `…`, last 4.
pub fn preview(key: &str) -> String {
    let random_start = PREFIX.len();
    let head = key.get(random_start..random_start + 4).unwrap_or_default();
    let tail = key.get(key.len().saturating_sub(4)..).unwrap_or_default();
    format!("{PREFIX}{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_keys_are_well_formed_and_distinct() {
        let a = generate();
        let b = generate();
        assert_eq!(a.len(), KEY_LEN);
        const { assert!(KEY_LEN <= 64) };
        assert!(is_well_formed(&a) && is_well_formed(&b));
        assert_ne!(a, b);
    }

    #[test]
    fn every_single_character_change_is_rejected() {
        let key = generate();
        for index in PREFIX.len()..key.len() {
            let mut bytes = key.clone().into_bytes();
            bytes[index] = if bytes[index] == b'a' { b'b' } else { b'a' };
            let changed = String::from_utf8(bytes).unwrap();
            assert!(!is_well_formed(&changed), "accepted change at {index}");
        }
    }

    #[test]
    fn malformed_keys_are_rejected() {
        let key = generate();
        assert!(!is_well_formed(""));
        assert!(!is_well_formed(&key[1..]));
        assert!(!is_well_formed(&format!("{key}x")));
        assert!(!is_well_formed(&key.replacen("a2v2_", "sk_l_", 1)));
        assert!(!is_well_formed(&key.replacen(&key[10..11], "-", 1)));
    }

    #[test]
    fn preview_shows_no_more_than_eight_key_characters() {
        let key = generate();
        let preview = preview(&key);
        assert!(preview.starts_with(&key[..9]));
        assert!(preview.ends_with(&key[key.len() - 4..]));
        assert_eq!(preview.chars().count(), 5 + 4 + 1 + 4);
    }

    proptest! {
        #[test]
        fn parser_never_panics(input in ".{0,80}") {
            let _ = is_well_formed(&input);
        }

        #[test]
        fn parser_rejects_near_misses(input in "a2v2_[0-9A-Za-z]{49}") {
            // A random body passes only if its last 6 characters happen to be its checksum.
            let (random, sum) = input.as_bytes()[PREFIX.len()..].split_at(RANDOM_LEN);
            prop_assert_eq!(is_well_formed(&input), checksum(random) == sum);
        }

        #[test]
        fn generated_keys_round_trip(_seed in 0u8..4) {
            let key = generate();
            prop_assert!(is_well_formed(&key));
            prop_assert_eq!(preview(&key).len(), preview(&generate()).len());
        }
    }
}
