//! Keys kept outside the database, and what they protect: personal identifiers are stored
//! encrypted (AES-256-GCM) and found by a keyed hash (HMAC-SHA-256), so a copy of the database
//! alone reveals neither the numbers nor, by guessing, which number belongs to whom.

use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::{AppError, Result};

const KEY_FILE: &str = "vault.key";
const KEY_BYTES: usize = 64;
const NONCE_BYTES: usize = 12;

/// Encryption and lookup keys. Debug never prints key material.
pub struct Vault {
    encryption_key: [u8; 32],
    lookup_key: [u8; 32],
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault { .. }")
    }
}

impl Vault {
    /// Loads the key file in `dir`, creating the directory and a fresh random key on first start.
    pub fn open_or_create(dir: &Path) -> Result<Vault> {
        let path = dir.join(KEY_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(AppError::internal)?;
                let mut key = vec![0_u8; KEY_BYTES];
                rand::thread_rng().fill_bytes(&mut key);
                write_private(&path, &key).map_err(AppError::internal)?;
                key
            }
            Err(e) => return Err(AppError::internal(e)),
        };
        Vault::from_bytes(&bytes).ok_or_else(|| {
            AppError::invalid(
                "data_dir",
                "vault.key_invalid",
                format!(
                    "密钥文件 {} 已损坏（应为 {KEY_BYTES} 字节）。请从备份恢复；不要删除它，否则已加密的数据将无法读取。",
                    path.display()
                ),
            )
        })
    }

    /// True when `dir` holds a key file.
    pub fn exists_in(dir: &Path) -> bool {
        dir.join(KEY_FILE).exists()
    }

    /// A public fingerprint of the keys: tells two key files apart without revealing either.
    pub fn fingerprint(&self) -> String {
        self.digest("cishan vault fingerprint v1")[..16].to_owned()
    }

    /// Builds a vault from 64 bytes of key material.
    pub fn from_bytes(bytes: &[u8]) -> Option<Vault> {
        if bytes.len() != KEY_BYTES {
            return None;
        }
        let mut encryption_key = [0_u8; 32];
        let mut lookup_key = [0_u8; 32];
        encryption_key.copy_from_slice(&bytes[..32]);
        lookup_key.copy_from_slice(&bytes[32..]);
        Some(Vault {
            encryption_key,
            lookup_key,
        })
    }

    /// A keyed hash for exact-match lookup (hex).
    pub fn digest(&self, text: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.lookup_key)
            .expect("HMAC accepts any key length");
        mac.update(text.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Encrypts `text` with a fresh random nonce; the result is `base64(nonce ‖ ciphertext)`.
    pub fn encrypt(&self, text: &str) -> String {
        let mut nonce = [0_u8; NONCE_BYTES];
        rand::thread_rng().fill_bytes(&mut nonce);
        self.encrypt_with_nonce(text, nonce)
    }

    /// Encrypts with a given nonce. Only for deterministic demo data, where each nonce is used
    /// once; reusing a nonce with the same key would leak the XOR of two plaintexts.
    pub fn encrypt_with_nonce(&self, text: &str, nonce: [u8; NONCE_BYTES]) -> String {
        let cipher = Aes256Gcm::new(&self.encryption_key.into());
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), text.as_bytes())
            .expect("AES-GCM encryption of a short text cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        B64.encode(out)
    }

    /// Decrypts what [`Vault::encrypt`] produced.
    pub fn decrypt(&self, sealed: &str) -> Result<String> {
        let corrupt = || AppError::internal(std::io::Error::other("sealed value cannot be opened"));
        let bytes = B64.decode(sealed).map_err(|_| corrupt())?;
        if bytes.len() < NONCE_BYTES {
            return Err(corrupt());
        }
        let (nonce, body) = bytes.split_at(NONCE_BYTES);
        let cipher = Aes256Gcm::new(&self.encryption_key.into());
        let plain = cipher
            .decrypt(Nonce::from_slice(nonce), body)
            .map_err(|_| corrupt())?;
        String::from_utf8(plain).map_err(|_| corrupt())
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_and_digests_are_stable() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::open_or_create(dir.path()).unwrap();
        let sealed = vault.encrypt("11010519491231002X");
        assert!(!sealed.contains("11010519491231002X"));
        assert_eq!(vault.decrypt(&sealed).unwrap(), "11010519491231002X");
        assert_ne!(
            vault.encrypt("x"),
            vault.encrypt("x"),
            "fresh nonce each time"
        );
        let again = Vault::open_or_create(dir.path()).unwrap();
        assert_eq!(vault.digest("abc"), again.digest("abc"), "the key persists");
        assert_ne!(vault.digest("abc"), vault.digest("abd"));
    }

    #[test]
    fn a_tampered_value_does_not_open() {
        let vault = Vault::from_bytes(&[7_u8; KEY_BYTES]).unwrap();
        let mut sealed = vault.encrypt("secret");
        sealed.replace_range(20..21, if &sealed[20..21] == "A" { "B" } else { "A" });
        assert!(vault.decrypt(&sealed).is_err());
    }
}
