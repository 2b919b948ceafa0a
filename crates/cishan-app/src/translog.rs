//! The transparency log (docs/ledger.md, "Transparency log"): public facts appended in the same
//! transaction as the change they describe, signed tree heads, proofs for anyone who asks, and
//! a full check of the stored tree.
//!
//! The signing key lives in `<data_dir>/keys/log.key`, never in the database; the database
//! records the key's id (`log_key_id`) on first start, and later starts refuse a missing or
//! different key file, exactly as for the vault: a new key would not invalidate the old heads,
//! but it would silently split the log's history between two identities.

use std::path::Path;

use cishan_store::{LogLeaf, NewEntry, Store, WriteTx};
use cishan_translog::{
    encode_hash, encode_hashes, fact_leaf, leaf_hash, node_hash, verify_head, KeyError, LogKey,
};
use serde::Serialize;
use serde_json::Value;

use crate::{App, AppError, Clock, Result};

/// The signed head type, re-exported so the layers above need not depend on `cishan-translog`
/// to name what [`App::signed_head`] returns.
pub use cishan_translog::SignedTreeHead;

/// The setting that records which key signs this database's tree heads.
const LOG_KEY_ID: &str = "log_key_id";
/// The key file's name inside `<data_dir>/keys`.
pub const LOG_KEY_FILE: &str = "log.key";
/// Leaves, nodes or heads read per query by [`App::verify_log`], so memory stays bounded.
const VERIFY_PAGE_ROWS: u64 = 2_000;
/// The actor and subject of the journal entries the log itself writes.
const SYSTEM: &str = "system";
const LOG_SUBJECT: &str = "translog";

/// The public key that verifies tree heads, as served at `GET /api/v1/log/key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogPublicKey {
    /// Always `ed25519`.
    pub algorithm: &'static str,
    /// Standard base64 of the 32-byte public key.
    pub public_key: String,
    /// Hex of the first 8 bytes of SHA-256 of the public key.
    pub key_id: String,
}

/// A leaf, the proof that it is in a tree, and that tree's signed head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InclusionProof {
    pub leaf_index: u64,
    /// The exact leaf text (canonical JSON).
    pub leaf: String,
    /// SHA-256(0x00 ‖ leaf), hex.
    pub leaf_hash: String,
    pub tree_size: u64,
    /// The root of the first `tree_size` leaves, hex.
    pub root_hash: String,
    /// Audit path, hex, deepest first (RFC 9162 §2.1.3).
    pub proof: Vec<String>,
    /// The signed head of the tree of `tree_size` leaves; `None` only when a size was asked
    /// for that the platform never signed (the root above still lets a client check the proof
    /// against a head it holds).
    pub tree_head: Option<SignedTreeHead>,
}

/// The proof that the tree of `first` leaves is a prefix of the tree of `second` leaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsistencyProof {
    pub first: u64,
    pub second: u64,
    pub first_root: String,
    pub second_root: String,
    /// Hex, in the order of RFC 9162 §2.1.4.
    pub proof: Vec<String>,
}

/// Opens the key that signs this database's tree heads: created (and its id recorded and
/// journaled) on first start, refused when missing or different later.
pub(crate) async fn open_log_key(store: &Store, dir: &Path, clock: &dyn Clock) -> Result<LogKey> {
    let path = dir.join(LOG_KEY_FILE);
    let recorded = store.setting(LOG_KEY_ID).await?;
    if recorded.is_some() && !LogKey::exists(&path) {
        return Err(AppError::invalid(
            "data_dir",
            "translog.key_missing",
            format!(
                "这个数据库的公开日志已用签名密钥签署，但在 {} 找不到密钥文件。请用 --data-dir 指向与该数据库一起创建的数据目录（或从备份恢复密钥）。\n\
                 The database's public log is signed with a key, but no key file is at {}: point --data-dir at the directory created with this database.",
                path.display(),
                path.display()
            ),
        ));
    }
    let key = LogKey::load_or_create(&path).map_err(|e| key_error(&path, e))?;
    match recorded {
        Some(id) if id == key.key_id() => {}
        Some(_) => {
            return Err(AppError::invalid(
                "data_dir",
                "translog.key_mismatch",
                format!(
                    "{} 中的签名密钥不是这个数据库的公开日志所用的密钥。请用 --data-dir 指向与该数据库一起创建的数据目录。\n\
                     The key file at {} is not the key this database's public log is signed with: point --data-dir at the right directory.",
                    path.display(),
                    path.display()
                ),
            ));
        }
        None => {
            let mut tx = store.begin().await?;
            tx.insert_setting(LOG_KEY_ID, &key.key_id()).await?;
            tx.journal(
                clock.now(),
                NewEntry {
                    actor: SYSTEM.into(),
                    kind: "translog.key_bound".into(),
                    subject: LOG_SUBJECT.into(),
                    payload: serde_json::json!({
                        "key_id": key.key_id(),
                        "public_key": key.public_key_base64(),
                    }),
                },
            )
            .await?;
            tx.commit().await?;
        }
    }
    Ok(key)
}

fn key_error(path: &Path, e: KeyError) -> AppError {
    match e {
        KeyError::Damaged { .. } => AppError::invalid(
            "data_dir",
            "translog.key_invalid",
            format!(
                "签名密钥文件 {} 已损坏（应为 32 字节）。请从备份恢复；不要删除它，否则已签署的日志将无法继续。",
                path.display()
            ),
        ),
        other => AppError::internal(other),
    }
}

fn log_not_found() -> AppError {
    AppError::not_found("log_leaf")
}

fn too_large(field: &str, asked: u64, size: u64) -> AppError {
    AppError::invalid(
        field,
        "translog.size_out_of_range",
        format!(
            "公开日志目前只有 {size} 条记录，{field} 不能是 {asked}，请填写不大于 {size} 的数。"
        ),
    )
}

impl App {
    /// Appends a public fact to the log inside `tx`, so it commits or vanishes with the change
    /// it describes, and returns its leaf index.
    ///
    /// The leaf text is the canonical JSON (keys sorted at every depth, no whitespace; see
    /// `cishan_translog::canonical_json`) of the object made of `"kind": kind` and every field
    /// of `fact`: kind `receipt.issued` with fact `{"receipt": {…}}` is logged as
    /// `{"kind":"receipt.issued","receipt":{…}}`. `fact` must be an object without its own
    /// `kind`, and must hold only masked names (it is public forever). `subject` (e.g. the
    /// receipt number) is stored beside the leaf to find it again; it is not part of the leaf.
    ///
    /// Appending locks the `log_state` row until commit. Call this after the transaction has
    /// taken the journal head (money-moving transactions take it first, with
    /// `WriteTx::lock_writes`), so every transaction takes the two locks in the same order and
    /// two appenders on PostgreSQL cannot deadlock.
    pub async fn append_public_fact(
        &self,
        tx: &mut WriteTx,
        kind: &str,
        subject: &str,
        fact: &Value,
    ) -> Result<u64> {
        // A malformed fact is a programming error in the caller, not something a user can fix.
        let leaf = fact_leaf(kind, fact).map_err(AppError::internal)?;
        Ok(tx
            .append_leaf(self.clock.now(), kind, subject, &leaf)
            .await?)
    }

    /// The signed head of the current tree: the latest stored head when it covers every leaf,
    /// otherwise a new head for the current size, signed now and stored (and journaled with
    /// its size and root only).
    pub async fn signed_head(&self) -> Result<SignedTreeHead> {
        let size = self.store.log_size().await?;
        if let Some(latest) = self.store.latest_log_head().await? {
            if latest.tree_size >= size {
                return Ok(latest);
            }
        }
        let root = self
            .store
            .log_root(size)
            .await?
            .ok_or_else(|| AppError::internal(std::io::Error::other("log root unavailable")))?;
        let head = self.log_key.sign_head(size, &root, self.clock.now());
        let mut tx = self.store.begin().await?;
        match tx.insert_log_head(&head).await {
            Ok(()) => {}
            // Another request signed this size first: its head is as good as ours.
            Err(e) if e.is_unique_violation() => {
                drop(tx);
                return self
                    .store
                    .log_head(size)
                    .await?
                    .ok_or_else(|| AppError::internal(e));
            }
            Err(e) => return Err(e.into()),
        }
        tx.journal(
            self.clock.now(),
            NewEntry {
                actor: SYSTEM.into(),
                kind: "translog.head_signed".into(),
                subject: LOG_SUBJECT.into(),
                payload: serde_json::json!({
                    "tree_size": head.tree_size,
                    "root_hash": head.root_hash,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(head)
    }

    /// The inclusion proof of leaf `leaf` in the tree of `tree_size` leaves, or, when no size is
    /// given, in the tree of the current signed head ([`App::signed_head`]).
    pub async fn inclusion_proof(
        &self,
        leaf: u64,
        tree_size: Option<u64>,
    ) -> Result<InclusionProof> {
        let (tree_size, tree_head) = match tree_size {
            None => {
                let head = self.signed_head().await?;
                (head.tree_size, Some(head))
            }
            Some(n) => {
                let size = self.store.log_size().await?;
                if n > size {
                    return Err(too_large("tree_size", n, size));
                }
                (n, self.store.log_head(n).await?)
            }
        };
        let stored: LogLeaf = self.store.log_leaf(leaf).await?.ok_or_else(log_not_found)?;
        if leaf >= tree_size {
            return Err(AppError::invalid(
                "tree_size",
                "translog.leaf_not_in_tree",
                format!(
                    "第 {leaf} 条记录不在前 {tree_size} 条记录构成的日志树中，请把 tree_size 设为大于 {leaf} 的数。"
                ),
            ));
        }
        let proof = self
            .store
            .inclusion_proof(leaf, tree_size)
            .await?
            .ok_or_else(log_not_found)?;
        let root = self
            .store
            .log_root(tree_size)
            .await?
            .ok_or_else(log_not_found)?;
        Ok(InclusionProof {
            leaf_index: leaf,
            leaf: stored.leaf,
            leaf_hash: stored.leaf_hash,
            tree_size,
            root_hash: encode_hash(&root),
            proof: encode_hashes(&proof),
            tree_head,
        })
    }

    /// The consistency proof from the tree of `first` leaves to the tree of `second` leaves.
    pub async fn consistency_proof(&self, first: u64, second: u64) -> Result<ConsistencyProof> {
        let size = self.store.log_size().await?;
        if second > size {
            return Err(too_large("second", second, size));
        }
        if first > second {
            return Err(AppError::invalid(
                "first",
                "translog.sizes_out_of_order",
                format!(
                    "first（{first}）不能大于 second（{second}）：较早的日志树不会比较晚的大。"
                ),
            ));
        }
        let proof = self
            .store
            .consistency_proof(first, second)
            .await?
            .ok_or_else(log_not_found)?;
        let first_root = self
            .store
            .log_root(first)
            .await?
            .ok_or_else(log_not_found)?;
        let second_root = self
            .store
            .log_root(second)
            .await?
            .ok_or_else(log_not_found)?;
        Ok(ConsistencyProof {
            first,
            second,
            first_root: encode_hash(&first_root),
            second_root: encode_hash(&second_root),
            proof: encode_hashes(&proof),
        })
    }

    /// The public key that verifies this platform's tree heads.
    pub fn log_public_key(&self) -> LogPublicKey {
        LogPublicKey {
            algorithm: cishan_translog::ALGORITHM,
            public_key: self.log_key.public_key_base64(),
            key_id: self.log_key.key_id(),
        }
    }

    /// Checks the whole stored log and returns what is wrong with it (empty when intact):
    /// every leaf's hash recomputed from its text, every stored subtree hash recomputed from
    /// its children, the root at every stored head, and every head's signature. Reads page by
    /// page, so memory stays bounded however long the log is.
    pub async fn verify_log(&self) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        let size = self.store.log_size().await?;
        self.check_leaves(size, &mut problems).await?;
        let levels = (u64::BITS - size.leading_zeros()).max(
            self.store
                .log_top_level()
                .await?
                .map_or(0, |top| top.saturating_add(1)),
        );
        for level in 0..levels {
            self.check_level(size, level, &mut problems).await?;
        }
        self.check_heads(size, &mut problems).await?;
        Ok(problems)
    }

    /// Every leaf in `[0, size)` is present and its stored hash is the hash of its text; no
    /// leaf lies beyond `size`.
    async fn check_leaves(&self, size: u64, problems: &mut Vec<String>) -> Result<()> {
        let mut from = 0;
        while from < size {
            let end = from.saturating_add(VERIFY_PAGE_ROWS).min(size);
            let page = self.store.log_leaves_page(from, page_limit()).await?;
            let mut expected = from;
            for leaf in page.iter().filter(|l| l.leaf_index < end) {
                if leaf.leaf_index != expected {
                    problems.push(missing("leaves", expected, leaf.leaf_index));
                }
                if encode_hash(&leaf_hash(leaf.leaf.as_bytes())) != leaf.leaf_hash {
                    problems.push(format!(
                        "leaf {}: its text does not match its stored hash (edited)",
                        leaf.leaf_index
                    ));
                }
                expected = leaf.leaf_index + 1;
            }
            if expected < end {
                problems.push(missing("leaves", expected, end));
            }
            from = end;
        }
        if let Some(extra) = self.store.log_leaves_page(size, 1).await?.first() {
            problems.push(format!(
                "leaf {} lies beyond the log's size of {size} (inserted outside the platform or size edited)",
                extra.leaf_index
            ));
        }
        Ok(())
    }

    /// Every perfect subtree of `level` that a tree of `size` leaves completes is stored and
    /// equals the hash of its children (level 0: of the leaf texts); no other is stored.
    async fn check_level(&self, size: u64, level: u32, problems: &mut Vec<String>) -> Result<()> {
        let count = size >> level;
        let what = format!("level-{level} nodes");
        let mut from = 0;
        while from < count {
            let end = from.saturating_add(VERIFY_PAGE_ROWS).min(count);
            let nodes = self.store.log_nodes_page(level, from, page_limit()).await?;
            let children = self.children(level, from, end).await?;
            let mut expected = from;
            for (index, hash) in nodes.iter().filter(|(i, _)| *i < end) {
                if *index != expected {
                    problems.push(missing(&what, expected, *index));
                }
                expected = index + 1;
                // A missing child is reported at its own level; nothing to compare here.
                let Some(recomputed) = recompute(level, *index, &children) else {
                    continue;
                };
                if &encode_hash(&recomputed) != hash {
                    problems.push(format!(
                        "node (level {level}, index {index}): its hash does not match {} (edited)",
                        if level == 0 {
                            "its leaf's text"
                        } else {
                            "its two children"
                        }
                    ));
                }
            }
            if expected < end {
                problems.push(missing(&what, expected, end));
            }
            from = end;
        }
        if let Some((index, _)) = self.store.log_nodes_page(level, count, 1).await?.first() {
            problems.push(format!(
                "node (level {level}, index {index}) lies beyond the log's size of {size} (inserted outside the platform)"
            ));
        }
        Ok(())
    }

    /// What the nodes `[from, end)` of `level` are made from: the recomputed leaf hashes for
    /// level 0, the stored nodes of the level below otherwise, by index.
    async fn children(
        &self,
        level: u32,
        from: u64,
        end: u64,
    ) -> Result<std::collections::BTreeMap<u64, [u8; 32]>> {
        let mut out = std::collections::BTreeMap::new();
        if level == 0 {
            for leaf in self.store.log_leaves_page(from, page_limit()).await? {
                if leaf.leaf_index < end {
                    out.insert(leaf.leaf_index, leaf_hash(leaf.leaf.as_bytes()));
                }
            }
        } else {
            let (lo, hi) = (from * 2, end * 2);
            let limit = i64::try_from(hi - lo).unwrap_or(i64::MAX);
            for (index, hash) in self.store.log_nodes_page(level - 1, lo, limit).await? {
                if index < hi {
                    if let Some(hash) = cishan_translog::decode_hash(&hash) {
                        out.insert(index, hash);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Every stored head is signed by this platform's key and commits to the root the stored
    /// (and already checked) tree has at its size.
    async fn check_heads(&self, size: u64, problems: &mut Vec<String>) -> Result<()> {
        let public_key = self.log_key.public_key();
        let mut from = 0;
        loop {
            let heads = self.store.log_heads_page(from, page_limit()).await?;
            let Some(last) = heads.last() else {
                break;
            };
            from = last.tree_size + 1;
            for head in &heads {
                let n = head.tree_size;
                if let Err(e) = verify_head(&public_key, head) {
                    problems.push(format!("signed head of {n} leaves: {e}"));
                }
                if n > size {
                    problems.push(format!(
                        "signed head of {n} leaves, but the log holds only {size} (leaves removed)"
                    ));
                    continue;
                }
                match self.store.log_root(n).await {
                    Ok(Some(root)) if encode_hash(&root) == head.root_hash => {}
                    Ok(_) => problems.push(format!(
                        "signed head of {n} leaves: the stored tree's root differs from the signed root (the log was rewritten)"
                    )),
                    Err(e) => problems.push(format!(
                        "signed head of {n} leaves: the root cannot be computed ({e})"
                    )),
                }
            }
        }
        Ok(())
    }
}

fn page_limit() -> i64 {
    i64::try_from(VERIFY_PAGE_ROWS).expect("a small page")
}

fn missing(what: &str, from: u64, to: u64) -> String {
    if to == from + 1 {
        format!("{what}: {from} is missing (deleted)")
    } else {
        format!("{what}: {from}..{} are missing (deleted)", to - 1)
    }
}

/// The hash node `(level, index)` should have, from `children`; `None` when a child is absent.
fn recompute(
    level: u32,
    index: u64,
    children: &std::collections::BTreeMap<u64, [u8; 32]>,
) -> Option<[u8; 32]> {
    if level == 0 {
        children.get(&index).copied()
    } else {
        let left = children.get(&(index * 2))?;
        let right = children.get(&(index * 2 + 1))?;
        Some(node_hash(left, right))
    }
}
