//! The cishan transparency log: public facts (receipts issued and voided, refunds, allocations,
//! disbursements) are leaves of an append-only Merkle tree hashed as in RFC 6962, whose heads
//! the platform signs with Ed25519, so anyone can check that a receipt is in the log and that
//! the log was only ever appended to.
//!
//! Architecture invariant: like `cishan-core`, this crate is pure. It does no IO except reading
//! and creating the key file ([`LogKey::load_or_create`]), has no clock (instants are passed in)
//! and no async; the store backs proofs with its table of perfect-subtree hashes through
//! [`SubtreeHashes`], and the verifiers here are the same ones the command line runs offline.

pub mod canonical;
pub mod head;
pub mod merkle;
pub mod receipt;

use serde_json::Value;

pub use canonical::canonical_json;
pub use head::{
    decode_hash, encode_hash, format_timestamp, key_id, parse_public_key, public_key_base64,
    verify_head, KeyError, LogKey, PublicKey, SignedTreeHead, ALGORITHM, HEAD_FORMAT,
};
pub use merkle::{
    append_siblings, completed_subtrees, consistency_nodes, consistency_proof, empty_root,
    inclusion_nodes, inclusion_proof, leaf_hash, node_hash, root, root_from, root_from_inclusion,
    root_nodes, verify_consistency, verify_inclusion, Hash, MemoryTree, NodeId, ProofError,
    SubtreeHashes, MAX_TREE_SIZE,
};
pub use receipt::{
    verify_receipt, verify_receipt_text, Check, ReceiptDocument, VerificationReport,
};

/// Why a fact cannot become a leaf.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeafError {
    #[error("a logged fact must be a JSON object")]
    NotAnObject,
    #[error("a logged fact must not have its own \"kind\" field")]
    KindField,
    #[error("the kind of a logged fact must not be empty")]
    EmptyKind,
}

/// The leaf text of a public fact: the canonical JSON ([`canonical_json`]) of the object made of
/// `"kind": kind` and every field of `fact`. For example kind `receipt.issued` and fact
/// `{"receipt": {"number": "…", …}}` give `{"kind":"receipt.issued","receipt":{…}}`.
/// `fact` must be an object without a `kind` field of its own.
pub fn fact_leaf(kind: &str, fact: &Value) -> Result<String, LeafError> {
    if kind.is_empty() {
        return Err(LeafError::EmptyKind);
    }
    let fields = fact.as_object().ok_or(LeafError::NotAnObject)?;
    if fields.contains_key("kind") {
        return Err(LeafError::KindField);
    }
    let mut leaf = fields.clone();
    leaf.insert("kind".into(), Value::String(kind.to_owned()));
    Ok(canonical_json(&Value::Object(leaf)))
}

/// Hex hashes, as proofs travel in JSON.
pub fn encode_hashes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(encode_hash).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_fact_leaf_is_its_kind_and_fields_in_canonical_json() {
        let leaf = fact_leaf(
            "receipt.issued",
            &json!({ "receipt": { "number": "2026-LC01-0000042", "amount_fen": 100000 } }),
        )
        .unwrap();
        assert_eq!(
            leaf,
            r#"{"kind":"receipt.issued","receipt":{"amount_fen":100000,"number":"2026-LC01-0000042"}}"#
        );
        assert_eq!(
            fact_leaf("x", &json!({ "kind": "y" })),
            Err(LeafError::KindField)
        );
        assert_eq!(fact_leaf("x", &json!([1])), Err(LeafError::NotAnObject));
        assert_eq!(fact_leaf("", &json!({})), Err(LeafError::EmptyKind));
    }
}
