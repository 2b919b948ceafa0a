//! The transparency log's storage (migration `0005_translog.sql`): leaves, the hash of every
//! completed perfect subtree, and signed tree heads. The hashing and the proof algorithms are
//! `cishan-translog`'s; this module only keeps their inputs and fetches the O(log n) subtree
//! hashes each root or proof needs, in one query.
//!
//! Appends happen inside a [`WriteTx`], so a fact is in the log exactly when the change it
//! describes commits. `log_state` is bumped first: on PostgreSQL its row lock, held to commit,
//! serializes appenders; on SQLite the single writer does.

use std::collections::BTreeMap;

use cishan_translog::{Hash, NodeId, ProofError, SignedTreeHead};
use jiff::Timestamp;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::staging::{LogCursor, StagedLeaf};
use crate::time::format_instant;
use crate::{values_placeholders, Result, Store, StoreError, WriteTx};

/// Subtree addresses fetched per statement (two parameters each). A proof needs at most about
/// 2 × 63 of them, so this is one statement in practice.
const NODES_PER_QUERY: usize = 128;

/// One stored leaf.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogLeaf {
    pub leaf_index: u64,
    pub kind: String,
    pub subject: String,
    /// The exact canonical JSON text that was hashed.
    pub leaf: String,
    /// SHA-256(0x00 ‖ leaf), lowercase hex, as stored.
    pub leaf_hash: String,
    pub recorded_at: String,
}

fn to_db(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| StoreError::Corrupt(format!("log position {n} is too large")))
}

fn from_db(n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative log position {n}")))
}

fn hash_from_db(text: &str) -> Result<Hash> {
    cishan_translog::decode_hash(text)
        .ok_or_else(|| StoreError::Corrupt(format!("log hash `{text}` is not 64 hex digits")))
}

fn proof_error(e: ProofError) -> StoreError {
    StoreError::Corrupt(format!("transparency log: {e}"))
}

fn leaf_from_row(row: &AnyRow) -> Result<LogLeaf> {
    Ok(LogLeaf {
        leaf_index: from_db(row.try_get("leaf_index")?)?,
        kind: row.try_get("kind")?,
        subject: row.try_get("subject")?,
        leaf: row.try_get("leaf")?,
        leaf_hash: row.try_get("leaf_hash")?,
        recorded_at: row.try_get("recorded_at")?,
    })
}

fn head_from_row(row: &AnyRow) -> Result<SignedTreeHead> {
    Ok(SignedTreeHead {
        tree_size: from_db(row.try_get("tree_size")?)?,
        root_hash: row.try_get("root_hash")?,
        timestamp: row.try_get("timestamp")?,
        signature: row.try_get("signature")?,
    })
}

/// Reads the hashes of `ids` through `conn`, in as few statements as [`NODES_PER_QUERY`] allows.
/// Absent nodes are simply missing from the map; the proof functions report them.
async fn fetch_nodes(
    conn: &mut sqlx::AnyConnection,
    ids: &[NodeId],
) -> Result<BTreeMap<NodeId, Hash>> {
    let mut nodes = BTreeMap::new();
    for chunk in ids.chunks(NODES_PER_QUERY) {
        let condition = (0..chunk.len())
            .map(|i| format!("(level = ${} AND idx = ${})", 2 * i + 1, 2 * i + 2))
            .collect::<Vec<_>>()
            .join(" OR ");
        let sql = format!("SELECT level, idx, hash FROM log_nodes WHERE {condition}");
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(i64::from(id.level)).bind(to_db(id.index)?);
        }
        for row in query.fetch_all(&mut *conn).await? {
            let level: i64 = row.try_get("level")?;
            let level = u32::try_from(level)
                .map_err(|_| StoreError::Corrupt(format!("log node level {level}")))?;
            let index = from_db(row.try_get("idx")?)?;
            let hash: String = row.try_get("hash")?;
            nodes.insert(NodeId::new(level, index), hash_from_db(&hash)?);
        }
    }
    Ok(nodes)
}

impl WriteTx {
    /// Appends `leaf` (canonical JSON text) to the log inside this transaction and returns its
    /// index. Stores the leaf and every perfect subtree it completes.
    pub async fn append_leaf(
        &mut self,
        now: Timestamp,
        kind: &str,
        subject: &str,
        leaf: &str,
    ) -> Result<u64> {
        if self.staging().is_some() {
            return self.append_leaf_staged(now, kind, subject, leaf).await;
        }
        let size: i64 =
            sqlx::query("UPDATE log_state SET size = size + 1 WHERE id = 1 RETURNING size")
                .fetch_one(self.conn())
                .await?
                .try_get("size")?;
        let index = from_db(size - 1)?;
        let leaf_hash = cishan_translog::leaf_hash(leaf.as_bytes());
        let wanted = cishan_translog::append_siblings(index);
        let siblings = if wanted.is_empty() {
            Vec::new()
        } else {
            let found = fetch_nodes(self.conn(), &wanted).await?;
            wanted
                .iter()
                .map(|id| {
                    found
                        .get(id)
                        .copied()
                        .ok_or_else(|| proof_error(ProofError::MissingSubtree(*id)))
                })
                .collect::<Result<Vec<Hash>>>()?
        };
        sqlx::query(
            "INSERT INTO log_leaves (leaf_index, kind, subject, leaf, leaf_hash, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(size - 1)
        .bind(kind)
        .bind(subject)
        .bind(leaf)
        .bind(cishan_translog::encode_hash(&leaf_hash))
        .bind(format_instant(now))
        .execute(self.conn())
        .await?;
        let completed = cishan_translog::completed_subtrees(index, leaf_hash, &siblings);
        let sql = format!(
            "INSERT INTO log_nodes (level, idx, hash) VALUES {}",
            values_placeholders(completed.len(), 3)
        );
        let mut query = sqlx::query(&sql);
        for (id, hash) in &completed {
            query = query
                .bind(i64::from(id.level))
                .bind(to_db(id.index)?)
                .bind(cishan_translog::encode_hash(hash));
        }
        query.execute(self.conn()).await?;
        Ok(index)
    }

    /// [`WriteTx::append_leaf`] with staging on: the size is read once per transaction, the
    /// subtrees each leaf completes are computed in memory (older siblings are fetched when
    /// first needed), and [`write_staged`] writes leaves, nodes and size at the flush.
    async fn append_leaf_staged(
        &mut self,
        now: Timestamp,
        kind: &str,
        subject: &str,
        leaf: &str,
    ) -> Result<u64> {
        if self.staging().is_some_and(|s| s.log.is_none()) {
            // log_state changes only through the cursor while staging is on.
            let size: i64 = sqlx::query("SELECT size FROM log_state WHERE id = 1")
                .fetch_optional(self.raw())
                .await?
                .ok_or_else(|| StoreError::Corrupt("log_state row is missing".into()))?
                .try_get("size")?;
            let cursor = LogCursor {
                size: from_db(size)?,
                ..LogCursor::default()
            };
            self.staging().expect("staging is on").log = Some(cursor);
        }
        let index = self
            .staging()
            .and_then(|s| s.log.as_ref())
            .map_or(0, |c| c.size);
        let wanted = cishan_translog::append_siblings(index);
        let missing: Vec<NodeId> = {
            let cursor = self
                .staging()
                .and_then(|s| s.log.as_ref())
                .expect("cursor set");
            wanted
                .iter()
                .filter(|id| !cursor.nodes.contains_key(id))
                .copied()
                .collect()
        };
        // Missing siblings are older than this transaction's appends (those are all in the
        // cursor), so the stored nodes are current.
        let fetched = if missing.is_empty() {
            BTreeMap::new()
        } else {
            fetch_nodes(self.raw(), &missing).await?
        };
        let cursor = self
            .staging()
            .and_then(|s| s.log.as_mut())
            .expect("cursor set");
        cursor.nodes.extend(fetched);
        let siblings = wanted
            .iter()
            .map(|id| {
                cursor
                    .nodes
                    .get(id)
                    .copied()
                    .ok_or_else(|| proof_error(ProofError::MissingSubtree(*id)))
            })
            .collect::<Result<Vec<Hash>>>()?;
        let leaf_hash = cishan_translog::leaf_hash(leaf.as_bytes());
        let completed = cishan_translog::completed_subtrees(index, leaf_hash, &siblings);
        // A sibling is needed only once: the subtree it completes replaces it.
        for id in &wanted {
            cursor.nodes.remove(id);
        }
        cursor.nodes.extend(completed.iter().copied());
        cursor.new_nodes.extend(completed);
        cursor.leaves.push(StagedLeaf {
            index,
            kind: kind.to_owned(),
            subject: subject.to_owned(),
            leaf: leaf.to_owned(),
            leaf_hash,
            recorded_at: format_instant(now),
        });
        cursor.size = index + 1;
        cursor.dirty = true;
        Ok(index)
    }

    /// Stores a signed tree head. A second head for the same size is refused as a conflict
    /// ([`StoreError::is_unique_violation`]).
    pub async fn insert_log_head(&mut self, head: &SignedTreeHead) -> Result<()> {
        self.flush().await?;
        sqlx::query(
            "INSERT INTO log_heads (tree_size, root_hash, timestamp, signature) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(to_db(head.tree_size)?)
        .bind(&head.root_hash)
        .bind(&head.timestamp)
        .bind(&head.signature)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// The number of leaves as this transaction sees it.
    pub async fn log_size(&mut self) -> Result<u64> {
        self.flush().await?;
        let size: i64 = sqlx::query("SELECT size FROM log_state WHERE id = 1")
            .fetch_one(self.conn())
            .await?
            .try_get("size")?;
        from_db(size)
    }
}

impl Store {
    async fn fetch_log_nodes(&self, ids: &[NodeId]) -> Result<BTreeMap<NodeId, Hash>> {
        let mut conn = self.reader().acquire().await?;
        fetch_nodes(&mut conn, ids).await
    }

    /// The number of leaves in the log.
    pub async fn log_size(&self) -> Result<u64> {
        let size: i64 = sqlx::query("SELECT size FROM log_state WHERE id = 1")
            .fetch_optional(self.reader())
            .await?
            .ok_or_else(|| StoreError::Corrupt("log_state row is missing".into()))?
            .try_get("size")?;
        from_db(size)
    }

    /// The leaf at `index`, if the log has one there.
    pub async fn log_leaf(&self, index: u64) -> Result<Option<LogLeaf>> {
        let row = sqlx::query(
            "SELECT leaf_index, kind, subject, leaf, leaf_hash, recorded_at \
             FROM log_leaves WHERE leaf_index = $1",
        )
        .bind(to_db(index)?)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(leaf_from_row).transpose()
    }

    /// Up to `limit` leaves from index `from` on, in order.
    pub async fn log_leaves_page(&self, from: u64, limit: i64) -> Result<Vec<LogLeaf>> {
        let rows = sqlx::query(
            "SELECT leaf_index, kind, subject, leaf, leaf_hash, recorded_at \
             FROM log_leaves WHERE leaf_index >= $1 ORDER BY leaf_index LIMIT $2",
        )
        .bind(to_db(from)?)
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(leaf_from_row).collect()
    }

    /// The latest leaf of `kind` about `subject` (e.g. `receipt.issued` for a receipt number).
    pub async fn log_leaf_by_subject(&self, kind: &str, subject: &str) -> Result<Option<LogLeaf>> {
        let row = sqlx::query(
            "SELECT leaf_index, kind, subject, leaf, leaf_hash, recorded_at \
             FROM log_leaves WHERE subject = $1 AND kind = $2 \
             ORDER BY leaf_index DESC LIMIT 1",
        )
        .bind(subject)
        .bind(kind)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(leaf_from_row).transpose()
    }

    /// The root of the first `tree_size` leaves; `None` when the log is smaller than that.
    pub async fn log_root(&self, tree_size: u64) -> Result<Option<Hash>> {
        if tree_size > self.log_size().await? {
            return Ok(None);
        }
        let ids = cishan_translog::root_nodes(tree_size).map_err(proof_error)?;
        let nodes = self.fetch_log_nodes(&ids).await?;
        cishan_translog::root_from(&nodes, tree_size)
            .map(Some)
            .map_err(proof_error)
    }

    /// The inclusion proof of leaf `index` in the tree of the first `tree_size` leaves, deepest
    /// hash first; `None` when the leaf is not in that tree or the log is smaller than that.
    pub async fn inclusion_proof(&self, index: u64, tree_size: u64) -> Result<Option<Vec<Hash>>> {
        if index >= tree_size || tree_size > self.log_size().await? {
            return Ok(None);
        }
        let ids = cishan_translog::inclusion_nodes(index, tree_size).map_err(proof_error)?;
        let nodes = self.fetch_log_nodes(&ids).await?;
        cishan_translog::inclusion_proof(&nodes, index, tree_size)
            .map(Some)
            .map_err(proof_error)
    }

    /// The consistency proof from the tree of `first` leaves to the tree of `second`; `None`
    /// when `first > second` or the log is smaller than `second`.
    pub async fn consistency_proof(&self, first: u64, second: u64) -> Result<Option<Vec<Hash>>> {
        if first > second || second > self.log_size().await? {
            return Ok(None);
        }
        let ids = cishan_translog::consistency_nodes(first, second).map_err(proof_error)?;
        let nodes = self.fetch_log_nodes(&ids).await?;
        cishan_translog::consistency_proof(&nodes, first, second)
            .map(Some)
            .map_err(proof_error)
    }

    /// The signed head of the largest tree, if any head was signed.
    pub async fn latest_log_head(&self) -> Result<Option<SignedTreeHead>> {
        let row = sqlx::query(
            "SELECT tree_size, root_hash, timestamp, signature \
             FROM log_heads ORDER BY tree_size DESC LIMIT 1",
        )
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(head_from_row).transpose()
    }

    /// The signed head of the tree of exactly `tree_size` leaves, if one was signed.
    pub async fn log_head(&self, tree_size: u64) -> Result<Option<SignedTreeHead>> {
        let row = sqlx::query(
            "SELECT tree_size, root_hash, timestamp, signature FROM log_heads WHERE tree_size = $1",
        )
        .bind(to_db(tree_size)?)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(head_from_row).transpose()
    }

    /// Up to `limit` signed heads of trees of `from` leaves or more, smallest first.
    pub async fn log_heads_page(&self, from: u64, limit: i64) -> Result<Vec<SignedTreeHead>> {
        let rows = sqlx::query(
            "SELECT tree_size, root_hash, timestamp, signature FROM log_heads \
             WHERE tree_size >= $1 ORDER BY tree_size LIMIT $2",
        )
        .bind(to_db(from)?)
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(head_from_row).collect()
    }

    /// Up to `limit` stored subtree hashes of `level`, from index `from` on, in order, as
    /// `(index, hex hash)`. For checking the stored tree page by page.
    pub async fn log_nodes_page(
        &self,
        level: u32,
        from: u64,
        limit: i64,
    ) -> Result<Vec<(u64, String)>> {
        let rows = sqlx::query(
            "SELECT idx, hash FROM log_nodes WHERE level = $1 AND idx >= $2 ORDER BY idx LIMIT $3",
        )
        .bind(i64::from(level))
        .bind(to_db(from)?)
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| Ok((from_db(r.try_get("idx")?)?, r.try_get("hash")?)))
            .collect()
    }

    /// The highest level that has any stored subtree, or `None` when the log is empty.
    pub async fn log_top_level(&self) -> Result<Option<u32>> {
        let row = sqlx::query("SELECT MAX(level) AS top FROM log_nodes")
            .fetch_one(self.reader())
            .await?;
        let top: Option<i64> = row.try_get("top")?;
        top.map(|t| {
            u32::try_from(t).map_err(|_| StoreError::Corrupt(format!("log node level {t}")))
        })
        .transpose()
    }
}
