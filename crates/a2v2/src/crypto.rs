//! The master key and what is derived from it: the keyed hash used to look API keys up and
//! the cipher that keeps a copy of each key for **Copy API Key**.

use std::{io::Write, path::Path};

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use anyhow::{Context, bail};
use hmac::{Hmac, Mac};
use rand::{RngCore, rngs::OsRng};
use sha2::Sha256;

use crate::config::MasterKeySource;

type HmacSha256 = Hmac<Sha256>;

pub struct MasterKey([u8; 32]);

impl MasterKey {
    /// Reads the key from config or its file; generates the file (mode 0600) on first start.
    pub fn load(source: &MasterKeySource) -> anyhow::Result<Self> {
        match source {
            MasterKeySource::Inline(hex) => Self::from_hex(hex).context("the master key"),
            MasterKeySource::File(path) => {
                if path.exists() {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    Self::from_hex(text.trim())
                        .with_context(|| format!("the master key in {}", path.display()))
                } else {
                    Self::generate_into(path)
                }
            }
        }
    }

    fn from_hex(hex: &str) -> anyhow::Result<Self> {
        let bytes = decode_hex(hex).context("must be 64 hexadecimal characters")?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("must be 64 hexadecimal characters (32 bytes)"))?;
        Ok(Self(key))
    }

    fn generate_into(path: &Path) -> anyhow::Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
        writeln!(file, "{}", encode_hex(&key))?;
        file.sync_all()?;
        tracing::info!(path = %path.display(), "generated a new master key");
        Ok(Self(key))
    }

    fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac =
            <HmacSha256 as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable_hmac());
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

fn unreachable_hmac() -> HmacSha256 {
    // HMAC accepts keys of any length, so construction cannot fail.
    unreachable!("HMAC accepts any key length")
}

/// What the server needs of the master key to handle API keys.
#[derive(Clone)]
pub struct KeySecrets {
    lookup: HmacSha256,
    cipher: Aes256Gcm,
    /// Separate MAC for hashing session tokens.
    session: HmacSha256,
    /// Identifies the master key without revealing it.
    fingerprint: String,
}

pub type LookupHash = [u8; 32];

impl KeySecrets {
    pub fn new(master: &MasterKey) -> Self {
        let lookup_key = master.derive("a2v2 api-key lookup v1");
        let cipher_key = master.derive("a2v2 api-key copy v1");
        let session_key = master.derive("a2v2 session token v1");
        let fingerprint = encode_hex(&master.derive("a2v2 master key fingerprint v1"));
        Self {
            lookup: <HmacSha256 as Mac>::new_from_slice(&lookup_key)
                .unwrap_or_else(|_| unreachable_hmac()),
            cipher: Aes256Gcm::new((&cipher_key).into()),
            session: <HmacSha256 as Mac>::new_from_slice(&session_key)
                .unwrap_or_else(|_| unreachable_hmac()),
            fingerprint,
        }
    }

    /// A keyed hash that tells this master key apart from others, safe to store.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The keyed hash under which a key is stored and looked up.
    pub fn lookup_hash(&self, key: &str) -> LookupHash {
        let mut mac = self.lookup.clone();
        mac.update(key.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The keyed hash under which a session token is stored.
    pub fn session_hash(&self, token: &str) -> String {
        let mut mac = self.session.clone();
        mac.update(token.as_bytes());
        encode_hex(&mac.finalize().into_bytes())
    }

    /// Encrypts `key` bound to `key_id` (so a ciphertext cannot be moved to another row).
    pub fn seal(&self, key_id: &str, key: &str) -> anyhow::Result<String> {
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: key.as_bytes(),
                    aad: key_id.as_bytes(),
                },
            )
            .map_err(|_| anyhow::anyhow!("encrypting an API key failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(encode_hex(&out))
    }

    pub fn open(&self, key_id: &str, sealed_hex: &str) -> anyhow::Result<String> {
        let sealed = decode_hex(sealed_hex).context("stored key copy is not hex")?;
        if sealed.len() < 12 {
            bail!("stored key copy is too short");
        }
        let (nonce, ciphertext) = sealed.split_at(12);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: key_id.as_bytes(),
                },
            )
            .map_err(|_| {
                anyhow::anyhow!("stored key copy does not decrypt under this master key")
            })?;
        String::from_utf8(plain).context("stored key copy is not UTF-8")
    }
}

pub fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 15)]));
    }
    out
}

pub fn decode_hex(text: &str) -> anyhow::Result<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        bail!("odd length or non-ASCII");
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(Into::into))
        .collect()
}

/// A random URL-safe token of 256 bits (session cookies, CSRF tokens).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    encode_hex(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> KeySecrets {
        KeySecrets::new(&MasterKey([7; 32]))
    }

    #[test]
    fn sealed_keys_open_only_for_their_row() {
        let s = secrets();
        let sealed = s.seal("key_1", "a2v2_secret").unwrap();
        assert!(!sealed.contains("secret"));
        assert_eq!(s.open("key_1", &sealed).unwrap(), "a2v2_secret");
        assert!(s.open("key_2", &sealed).is_err());
        let other = KeySecrets::new(&MasterKey([8; 32]));
        assert!(other.open("key_1", &sealed).is_err());
    }

    #[test]
    fn lookup_hash_depends_on_the_master_key() {
        let a = secrets().lookup_hash("a2v2_x");
        assert_eq!(a, secrets().lookup_hash("a2v2_x"));
        assert_ne!(
            a,
            KeySecrets::new(&MasterKey([8; 32])).lookup_hash("a2v2_x")
        );
    }

    #[test]
    fn master_key_file_is_generated_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/master.key");
        let first = MasterKey::load(&MasterKeySource::File(path.clone())).unwrap();
        let again = MasterKey::load(&MasterKeySource::File(path.clone())).unwrap();
        assert_eq!(first.0, again.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(MasterKey::load(&MasterKeySource::Inline("xyz".into())).is_err());
    }
}
