//! Signed tree heads and the log's Ed25519 key.
//!
//! The log signs, for a tree size, its root and the moment of signing, the UTF-8 bytes of
//!
//! ```text
//! cishan-tree-head-v1\n{tree_size}\n{root_hash}\n{timestamp}
//! ```
//!
//! with no trailing newline, where `tree_size` is decimal without leading zeros, `root_hash` is
//! 64 lowercase hex digits and `timestamp` is RFC 3339 UTC with microseconds
//! (`2026-12-03T13:41:02.123456Z`). The first line names the format, so a signature over a tree
//! head can never be mistaken for a signature over anything else. Signatures and public keys
//! travel as standard base64 with padding.
//!
//! The private key is 32 random bytes (the Ed25519 seed) in a file of its own, created with
//! permissions 0600 on first use and never stored in the database.

use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

pub use ed25519_dalek::VerifyingKey as PublicKey;

/// The first line of every signed tree head message.
pub const HEAD_FORMAT: &str = "cishan-tree-head-v1";
/// The name of the signature algorithm, as served with the public key.
pub const ALGORITHM: &str = "ed25519";
const SEED_BYTES: usize = 32;

/// A tree head and the log's signature over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTreeHead {
    pub tree_size: u64,
    /// The root of the first `tree_size` leaves, 64 lowercase hex digits.
    pub root_hash: String,
    /// When the head was signed: RFC 3339 UTC with microseconds.
    pub timestamp: String,
    /// Ed25519 signature over [`SignedTreeHead::message`], standard base64.
    pub signature: String,
}

impl SignedTreeHead {
    /// The exact bytes the signature covers (see the module documentation).
    pub fn message(&self) -> String {
        head_message(self.tree_size, &self.root_hash, &self.timestamp)
    }

    /// The root as bytes, or `None` when `root_hash` is not 64 hex digits.
    pub fn root(&self) -> Option<Hash> {
        decode_hash(&self.root_hash)
    }
}

fn head_message(tree_size: u64, root_hex: &str, timestamp: &str) -> String {
    format!("{HEAD_FORMAT}\n{tree_size}\n{root_hex}\n{timestamp}")
}

/// Formats an instant as tree heads carry it: `2026-12-03T13:41:02.123456Z` (fixed width, the
/// same form the store uses for instants).
pub fn format_timestamp(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Lowercase hex of a hash.
pub fn encode_hash(hash: &Hash) -> String {
    hex::encode(hash)
}

/// Reads 64 hex digits (either case) as a hash.
pub fn decode_hash(text: &str) -> Option<Hash> {
    let mut hash = [0_u8; 32];
    hex::decode_to_slice(text, &mut hash).ok()?;
    Some(hash)
}

/// What can go wrong with keys and signatures.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read or write the log key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the log key file {path} is damaged: it should hold {SEED_BYTES} bytes, it holds {len}"
    )]
    Damaged { path: String, len: usize },
    #[error("not an Ed25519 public key: {0}")]
    BadPublicKey(String),
    #[error("the tree head's root hash is not 64 hex digits")]
    BadRootHash,
    #[error("the tree head's signature is not base64 of 64 bytes")]
    BadSignatureEncoding,
    #[error("the signature does not match the tree head and this public key")]
    SignatureMismatch,
}

/// The log's signing key. `Debug` never prints key material.
pub struct LogKey {
    signing: SigningKey,
}

impl std::fmt::Debug for LogKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LogKey {{ key_id: {} }}", self.key_id())
    }
}

impl LogKey {
    /// Reads the key at `path`, or, when there is no file, creates the directory and a fresh
    /// random key written with permissions 0600. Two processes starting together agree on one
    /// key: the file is created exclusively and the loser reads the winner's.
    pub fn load_or_create(path: &Path) -> Result<LogKey, KeyError> {
        let io = |source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read(path) {
            Ok(bytes) => return LogKey::from_file_bytes(path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
        }
        let key = LogKey::generate();
        match write_private(path, key.signing.as_bytes()) {
            Ok(()) => Ok(key),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let bytes = std::fs::read(path).map_err(io)?;
                LogKey::from_file_bytes(path, &bytes)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// True when `path` holds a file (whether or not it is a valid key).
    pub fn exists(path: &Path) -> bool {
        path.exists()
    }

    /// A fresh random key (not saved anywhere).
    pub fn generate() -> LogKey {
        LogKey {
            signing: SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    /// A key from its 32-byte seed. For tests and tools that need a fixed key.
    pub fn from_seed(seed: [u8; SEED_BYTES]) -> LogKey {
        LogKey {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    fn from_file_bytes(path: &Path, bytes: &[u8]) -> Result<LogKey, KeyError> {
        let seed: [u8; SEED_BYTES] = bytes.try_into().map_err(|_| KeyError::Damaged {
            path: path.display().to_string(),
            len: bytes.len(),
        })?;
        Ok(LogKey::from_seed(seed))
    }

    pub fn public_key(&self) -> PublicKey {
        self.signing.verifying_key()
    }

    /// The public key as served at `/api/v1/log/key`: standard base64 of its 32 bytes.
    pub fn public_key_base64(&self) -> String {
        public_key_base64(&self.public_key())
    }

    /// A short public name of the key: hex of the first 8 bytes of SHA-256 of the public key.
    pub fn key_id(&self) -> String {
        key_id(&self.public_key())
    }

    /// Signs the head of a tree of `tree_size` leaves with root `root`, at `at`.
    pub fn sign_head(&self, tree_size: u64, root: &Hash, at: Timestamp) -> SignedTreeHead {
        let root_hash = encode_hash(root);
        let timestamp = format_timestamp(at);
        let signature = self
            .signing
            .sign(head_message(tree_size, &root_hash, &timestamp).as_bytes());
        SignedTreeHead {
            tree_size,
            root_hash,
            timestamp,
            signature: STANDARD.encode(signature.to_bytes()),
        }
    }
}

/// Standard base64 of a public key's 32 bytes.
pub fn public_key_base64(key: &PublicKey) -> String {
    STANDARD.encode(key.as_bytes())
}

/// Hex of the first 8 bytes of SHA-256 of the public key.
pub fn key_id(key: &PublicKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// Reads a public key given either as the JSON served at `/api/v1/log/key`
/// (`{"algorithm":"ed25519","public_key":"<base64>","key_id":"…"}`) or as bare base64.
/// When the JSON carries a `key_id`, it must match the key.
pub fn parse_public_key(text: &str) -> Result<PublicKey, KeyError> {
    let text = text.trim();
    if text.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| KeyError::BadPublicKey(format!("the key file is not valid JSON: {e}")))?;
        if let Some(algorithm) = value.get("algorithm").and_then(|a| a.as_str()) {
            if algorithm != ALGORITHM {
                return Err(KeyError::BadPublicKey(format!(
                    "algorithm is `{algorithm}`, expected `{ALGORITHM}`"
                )));
            }
        }
        let encoded = value
            .get("public_key")
            .and_then(|k| k.as_str())
            .ok_or_else(|| KeyError::BadPublicKey("the JSON has no \"public_key\" text".into()))?;
        let key = decode_public_key(encoded)?;
        if let Some(id) = value.get("key_id").and_then(|k| k.as_str()) {
            if id != key_id(&key) {
                return Err(KeyError::BadPublicKey(format!(
                    "\"key_id\" is {id} but the key's id is {}",
                    key_id(&key)
                )));
            }
        }
        Ok(key)
    } else {
        decode_public_key(text)
    }
}

fn decode_public_key(encoded: &str) -> Result<PublicKey, KeyError> {
    let encoded = encoded.trim();
    let bytes = STANDARD
        .decode(encoded)
        .or_else(|_| STANDARD_NO_PAD.decode(encoded))
        .map_err(|_| KeyError::BadPublicKey("not base64".into()))?;
    let bytes: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| KeyError::BadPublicKey(format!("{} bytes, expected 32", bytes.len())))?;
    PublicKey::from_bytes(&bytes)
        .map_err(|_| KeyError::BadPublicKey("not a point on the curve".into()))
}

/// Checks the signature of `head` with `key`. Uses strict verification (no malleable or
/// small-order encodings).
pub fn verify_head(key: &PublicKey, head: &SignedTreeHead) -> Result<(), KeyError> {
    if head.root().is_none() || head.root_hash.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(KeyError::BadRootHash);
    }
    let bytes = STANDARD
        .decode(head.signature.trim())
        .map_err(|_| KeyError::BadSignatureEncoding)?;
    let bytes: [u8; 64] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| KeyError::BadSignatureEncoding)?;
    let signature = Signature::from_bytes(&bytes);
    key.verify_strict(head.message().as_bytes(), &signature)
        .map_err(|_| KeyError::SignatureMismatch)
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

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn the_signed_message_is_exactly_as_documented() {
        let key = LogKey::from_seed([7; 32]);
        let head = key.sign_head(57, &[0xab; 32], at("2026-12-03T13:41:02.5Z"));
        assert_eq!(
            head.message(),
            format!(
                "cishan-tree-head-v1\n57\n{}\n2026-12-03T13:41:02.500000Z",
                "ab".repeat(32)
            )
        );
        verify_head(&key.public_key(), &head).unwrap();
    }

    #[test]
    fn any_change_to_a_head_breaks_its_signature() {
        let key = LogKey::from_seed([1; 32]);
        let head = key.sign_head(3, &[0xab; 32], at("2026-01-01T00:00:00Z"));
        let mut bigger = head.clone();
        bigger.tree_size = 4;
        let mut other_root = head.clone();
        other_root.root_hash = "12".repeat(32);
        let mut later = head.clone();
        later.timestamp = "2026-01-01T00:00:01.000000Z".into();
        let mut upper = head.clone();
        upper.root_hash = upper.root_hash.to_uppercase();
        for bad in [bigger, other_root, later] {
            assert!(matches!(
                verify_head(&key.public_key(), &bad),
                Err(KeyError::SignatureMismatch)
            ));
        }
        assert!(matches!(
            verify_head(&key.public_key(), &upper),
            Err(KeyError::BadRootHash)
        ));
        let stranger = LogKey::from_seed([2; 32]);
        assert!(verify_head(&stranger.public_key(), &head).is_err());
    }

    #[test]
    fn the_key_file_is_created_once_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("log.key");
        assert!(!LogKey::exists(&path));
        let key = LogKey::load_or_create(&path).unwrap();
        assert!(LogKey::exists(&path));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = LogKey::load_or_create(&path).unwrap();
        assert_eq!(key.public_key_base64(), again.public_key_base64());
        assert_eq!(key.key_id().len(), 16);
        assert!(!format!("{key:?}").contains(&hex::encode(key.signing.as_bytes())));

        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(
            LogKey::load_or_create(&path),
            Err(KeyError::Damaged { len: 5, .. })
        ));
    }

    #[test]
    fn public_keys_are_read_from_json_or_bare_base64() {
        let key = LogKey::from_seed([9; 32]);
        let json = serde_json::json!({
            "algorithm": "ed25519",
            "public_key": key.public_key_base64(),
            "key_id": key.key_id(),
        })
        .to_string();
        assert_eq!(parse_public_key(&json).unwrap(), key.public_key());
        let bare = format!("{}\n", key.public_key_base64());
        assert_eq!(parse_public_key(&bare).unwrap(), key.public_key());
        let wrong_id = json.replace(&key.key_id(), "0000000000000000");
        assert!(parse_public_key(&wrong_id).is_err());
        assert!(parse_public_key("not base64!").is_err());
        assert!(parse_public_key("AAAA").is_err());
    }
}
