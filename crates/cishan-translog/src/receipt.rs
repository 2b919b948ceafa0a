//! Offline verification of a receipt document (`GET /api/v1/receipts/{number}`, described in
//! `docs/ledger.md`, "Receipt document"): anyone holding the document and the log's public key
//! can check that the receipt is the one the platform logged, that the log includes it, and that
//! the platform signed that log.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::head::{decode_hash, verify_head, PublicKey, SignedTreeHead};
use crate::merkle::{leaf_hash, root_from_inclusion, Hash};

/// The receipt document as served and as saved by a donor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiptDocument {
    /// The receipt as shown to people.
    pub receipt: Value,
    /// The receipt's position in the log (0-based).
    pub leaf_index: u64,
    /// The exact leaf text (canonical JSON) whose hash is in the log.
    pub leaf: String,
    /// A signed head of a tree that includes the leaf.
    pub tree_head: SignedTreeHead,
    /// The inclusion proof of the leaf in that tree, hex hashes, deepest first.
    pub inclusion_proof: Vec<String>,
}

/// The stable names of the checks, in the order they run.
pub mod check {
    /// The text is a receipt document.
    pub const DOCUMENT: &str = "document";
    /// The logged leaf records exactly the receipt shown.
    pub const LEAF_MATCHES_RECEIPT: &str = "leaf_matches_receipt";
    /// The leaf and the proof lead to the signed root.
    pub const INCLUSION: &str = "inclusion";
    /// The platform's key signed the tree head.
    pub const SIGNATURE: &str = "signature";
}

/// The outcome of one check, with a reason a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// One of the names in [`check`].
    pub name: &'static str,
    pub passed: bool,
    /// Chinese, then English.
    pub message: String,
}

/// Every check run on one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerificationReport {
    pub checks: Vec<Check>,
}

impl VerificationReport {
    /// True when there is at least one check and every check passed.
    pub fn all_passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.passed)
    }
}

fn pass(name: &'static str, zh: &str, en: &str) -> Check {
    Check {
        name,
        passed: true,
        message: format!("{zh} / {en}"),
    }
}

fn fail(name: &'static str, zh: &str, en: &str) -> Check {
    Check {
        name,
        passed: false,
        message: format!("{zh} / {en}"),
    }
}

/// Verifies a receipt document given as text. A text that is not a receipt document yields one
/// failed [`check::DOCUMENT`] check and nothing else.
pub fn verify_receipt_text(text: &str, key: &PublicKey) -> VerificationReport {
    match serde_json::from_str::<ReceiptDocument>(text) {
        Ok(document) => verify_receipt(&document, key),
        Err(e) => VerificationReport {
            checks: vec![fail(
                check::DOCUMENT,
                &format!("文件不是收据验证文档（{e}）"),
                &format!("the file is not a receipt document ({e})"),
            )],
        },
    }
}

/// Verifies a receipt document: the leaf records the receipt, the leaf is in the signed tree,
/// and the tree head's signature is the platform's. All checks run even when one fails, so the
/// report says everything that is wrong.
pub fn verify_receipt(document: &ReceiptDocument, key: &PublicKey) -> VerificationReport {
    let checks = vec![
        pass(
            check::DOCUMENT,
            "文件是收据验证文档",
            "the file is a receipt document",
        ),
        check_leaf(document),
        check_inclusion(document),
        check_signature(document, key),
    ];
    VerificationReport { checks }
}

fn check_leaf(document: &ReceiptDocument) -> Check {
    let name = check::LEAF_MATCHES_RECEIPT;
    let leaf: Value = match serde_json::from_str(&document.leaf) {
        Ok(leaf) => leaf,
        Err(_) => {
            return fail(
                name,
                "日志叶子不是有效的 JSON",
                "the log leaf is not valid JSON",
            )
        }
    };
    if !document.receipt.is_object() {
        return fail(
            name,
            "文档中的 receipt 不是对象",
            "the document's \"receipt\" is not an object",
        );
    }
    match leaf.get("receipt") {
        None => fail(
            name,
            "日志叶子中没有收据",
            "the log leaf holds no \"receipt\"",
        ),
        Some(logged) if logged == &document.receipt => {
            let kind = leaf.get("kind").and_then(Value::as_str).unwrap_or("?");
            pass(
                name,
                &format!("日志叶子（{kind}）记载的正是这张收据"),
                &format!("the log leaf ({kind}) records exactly this receipt"),
            )
        }
        Some(logged) => {
            let fields = differing_fields(logged, &document.receipt).join(", ");
            fail(
                name,
                &format!("收据内容与日志记载不一致（字段：{fields}）"),
                &format!("the receipt differs from what the log records (fields: {fields})"),
            )
        }
    }
}

/// The top-level fields on which two receipts differ, sorted.
fn differing_fields(logged: &Value, shown: &Value) -> Vec<String> {
    let (Some(a), Some(b)) = (logged.as_object(), shown.as_object()) else {
        return vec!["receipt".into()];
    };
    let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

fn check_inclusion(document: &ReceiptDocument) -> Check {
    let name = check::INCLUSION;
    let head = &document.tree_head;
    let Some(root) = head.root() else {
        return fail(
            name,
            "树头的根哈希格式不正确",
            "the tree head's root hash is not 64 hex digits",
        );
    };
    let proof: Option<Vec<Hash>> = document
        .inclusion_proof
        .iter()
        .map(|h| decode_hash(h))
        .collect();
    let Some(proof) = proof else {
        return fail(
            name,
            "包含证明中有格式不正确的哈希",
            "the inclusion proof holds a hash that is not 64 hex digits",
        );
    };
    let leaf = leaf_hash(document.leaf.as_bytes());
    match root_from_inclusion(document.leaf_index, head.tree_size, &leaf, &proof) {
        Ok(computed) if computed == root => pass(
            name,
            &format!(
                "叶子 {} 包含在 {} 个叶子的日志树中",
                document.leaf_index, head.tree_size
            ),
            &format!(
                "leaf {} is included in the log tree of {} leaves",
                document.leaf_index, head.tree_size
            ),
        ),
        Ok(_) => fail(
            name,
            "叶子与包含证明算出的根哈希与树头不符（收据、叶子或证明被改动过）",
            "the leaf and the inclusion proof do not lead to the tree head's root (the receipt, leaf or proof was altered)",
        ),
        Err(e) => fail(
            name,
            "包含证明与叶子位置或树大小不符",
            &format!("the inclusion proof does not fit the leaf index and tree size ({e})"),
        ),
    }
}

fn check_signature(document: &ReceiptDocument, key: &PublicKey) -> Check {
    match verify_head(key, &document.tree_head) {
        Ok(()) => pass(
            check::SIGNATURE,
            "树头签名有效，由该公钥签署",
            "the tree head's signature is valid for this public key",
        ),
        Err(e) => fail(
            check::SIGNATURE,
            "树头签名无效：树头被改动过，或公钥不是本平台的",
            &format!("the tree head's signature does not verify: {e}"),
        ),
    }
}
