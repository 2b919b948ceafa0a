//! The journal: every change of business state, in the same transaction as the change,
//! hash-chained so that an edited, inserted or deleted entry is detected by [`Store::verify_journal`].
//!
//! Entry `n` has `hash = SHA-256(prev_hash ‖ seq ‖ recorded_at ‖ actor ‖ kind ‖ subject ‖ payload)`
//! where each field is length-prefixed (so no two different entries hash the same bytes) and
//! `prev_hash` is entry `n − 1`'s hash (64 zeros for the first). The `journal_head` row holds the
//! tip; bumping it first in every appending transaction serializes appends on both backends.

use jiff::Timestamp;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::staging::JournalCursor;
use crate::time::{format_instant, parse_instant};
use crate::{Result, Store, StoreError, WriteTx};

/// The hash that precedes the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Entries read per query while verifying, to bound memory on large journals.
const VERIFY_PAGE_ROWS: i64 = 10_000;

/// What a caller asks to record. `payload` is JSON text; it must never contain ID numbers,
/// phone numbers or other personal data in clear.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub actor: String,
    pub kind: String,
    pub subject: String,
    pub payload: serde_json::Value,
}

/// A recorded journal entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JournalEntry {
    pub seq: i64,
    pub recorded_at: String,
    pub actor: String,
    pub kind: String,
    pub subject: String,
    pub payload: String,
    pub prev_hash: String,
    pub hash: String,
}

/// One thing wrong with the stored journal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum JournalProblem {
    /// An entry's hash does not match its content: the entry was edited.
    HashMismatch { seq: i64 },
    /// An entry does not point at its predecessor: an entry before it was removed or replaced.
    BrokenLink { seq: i64 },
    /// Sequence numbers jump: entries were deleted.
    Gap { expected: i64, found: i64 },
    /// The head does not match the last entry: entries were removed from the end or the head edited.
    HeadMismatch { head_seq: i64, last_seq: i64 },
    /// A business row disagrees with the journal entry that last wrote it: the row was edited,
    /// deleted or inserted outside the platform.
    StateMismatch {
        table: String,
        key: String,
        reason: String,
    },
}

impl std::fmt::Display for JournalProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JournalProblem::HashMismatch { seq } => {
                write!(f, "entry {seq}: content does not match its hash (edited)")
            }
            JournalProblem::BrokenLink { seq } => write!(
                f,
                "entry {seq}: does not link to the previous entry (an entry was replaced or removed)"
            ),
            JournalProblem::Gap { expected, found } => write!(
                f,
                "entries {expected}..{} are missing (deleted)",
                found - 1
            ),
            JournalProblem::HeadMismatch { head_seq, last_seq } => write!(
                f,
                "the chain head says {head_seq} entries but the last entry is {last_seq} (entries removed or head edited)"
            ),
            JournalProblem::StateMismatch { table, key, reason } => {
                write!(f, "{table} {key}: {reason}")
            }
        }
    }
}

/// The result of checking the whole journal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JournalReport {
    pub entries: i64,
    pub head_hash: String,
    pub problems: Vec<JournalProblem>,
}

impl JournalReport {
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The chained hash of one entry.
pub fn entry_hash(
    prev_hash: &str,
    seq: i64,
    recorded_at: &str,
    actor: &str,
    kind: &str,
    subject: &str,
    payload: &str,
) -> String {
    let mut hasher = Sha256::new();
    let seq = seq.to_string();
    for field in [prev_hash, &seq, recorded_at, actor, kind, subject, payload] {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hex::encode(hasher.finalize())
}

impl WriteTx {
    /// Appends `entry` to the journal inside this transaction, at `now`.
    pub async fn journal(&mut self, now: Timestamp, entry: NewEntry) -> Result<JournalEntry> {
        if self.staging().is_some() {
            return self.journal_staged(now, entry).await;
        }
        let head =
            sqlx::query("UPDATE journal_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
                .fetch_one(self.conn())
                .await?;
        let seq: i64 = head.try_get("seq")?;
        let prev_hash: String = head.try_get("hash")?;
        let recorded_at = format_instant(now);
        let payload = entry.payload.to_string();
        let hash = entry_hash(
            &prev_hash,
            seq,
            &recorded_at,
            &entry.actor,
            &entry.kind,
            &entry.subject,
            &payload,
        );
        sqlx::query("UPDATE journal_head SET hash = $1 WHERE id = 1")
            .bind(&hash)
            .execute(self.conn())
            .await?;
        sqlx::query(
            "INSERT INTO journal (seq, recorded_at, actor, kind, subject, payload, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(seq)
        .bind(&recorded_at)
        .bind(&entry.actor)
        .bind(&entry.kind)
        .bind(&entry.subject)
        .bind(&payload)
        .bind(&prev_hash)
        .bind(&hash)
        .execute(self.conn())
        .await?;
        Ok(JournalEntry {
            seq,
            recorded_at,
            actor: entry.actor,
            kind: entry.kind,
            subject: entry.subject,
            payload,
            prev_hash,
            hash,
        })
    }
}

impl WriteTx {
    /// [`WriteTx::journal`] with staging on: the head is read once per transaction, each entry
    /// is chained in memory, and [`write_staged`] writes them and the head at the flush.
    async fn journal_staged(&mut self, now: Timestamp, entry: NewEntry) -> Result<JournalEntry> {
        let known = self.staging().and_then(|s| s.journal.clone());
        let cursor = match known {
            Some(cursor) => cursor,
            None => {
                // journal_head is only ever changed through the cursor while staging is on,
                // so the stored row is current.
                let head = sqlx::query("SELECT seq, hash FROM journal_head WHERE id = 1")
                    .fetch_optional(self.raw())
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("journal_head row is missing".into()))?;
                JournalCursor {
                    seq: head.try_get("seq")?,
                    hash: head.try_get("hash")?,
                    dirty: false,
                }
            }
        };
        let seq = cursor.seq + 1;
        let recorded_at = format_instant(now);
        let payload = entry.payload.to_string();
        let hash = entry_hash(
            &cursor.hash,
            seq,
            &recorded_at,
            &entry.actor,
            &entry.kind,
            &entry.subject,
            &payload,
        );
        let written = JournalEntry {
            seq,
            recorded_at,
            actor: entry.actor,
            kind: entry.kind,
            subject: entry.subject,
            payload,
            prev_hash: cursor.hash,
            hash: hash.clone(),
        };
        let staging = self.staging().expect("staging is on");
        staging.journal = Some(JournalCursor {
            seq,
            hash,
            dirty: true,
        });
        staging.journal_rows.push(written.clone());
        Ok(written)
    }
}

fn entry_from_row(row: &sqlx::any::AnyRow) -> Result<JournalEntry> {
    Ok(JournalEntry {
        seq: row.try_get("seq")?,
        recorded_at: row.try_get("recorded_at")?,
        actor: row.try_get("actor")?,
        kind: row.try_get("kind")?,
        subject: row.try_get("subject")?,
        payload: row.try_get("payload")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

impl Store {
    /// Recomputes the whole chain and compares it with the head.
    pub async fn verify_journal(&self) -> Result<JournalReport> {
        let mut problems = Vec::new();
        let mut expected_seq = 1_i64;
        let mut prev_hash = GENESIS_HASH.to_owned();
        let mut last_seq = 0_i64;
        loop {
            let rows = sqlx::query(
                "SELECT seq, recorded_at, actor, kind, subject, payload, prev_hash, hash \
                 FROM journal WHERE seq >= $1 ORDER BY seq LIMIT $2",
            )
            .bind(expected_seq)
            .bind(VERIFY_PAGE_ROWS)
            .fetch_all(self.reader())
            .await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let e = entry_from_row(row)?;
                if e.seq != expected_seq {
                    problems.push(JournalProblem::Gap {
                        expected: expected_seq,
                        found: e.seq,
                    });
                }
                if e.prev_hash != prev_hash {
                    problems.push(JournalProblem::BrokenLink { seq: e.seq });
                }
                let recomputed = entry_hash(
                    &e.prev_hash,
                    e.seq,
                    &e.recorded_at,
                    &e.actor,
                    &e.kind,
                    &e.subject,
                    &e.payload,
                );
                if recomputed != e.hash {
                    problems.push(JournalProblem::HashMismatch { seq: e.seq });
                }
                // Continue the chain from what we recomputed, so one edit is reported once and
                // entries after it are still checked against their own stored links.
                prev_hash = e.hash;
                last_seq = e.seq;
                expected_seq = e.seq + 1;
            }
        }
        let head = sqlx::query("SELECT seq, hash FROM journal_head WHERE id = 1")
            .fetch_optional(self.reader())
            .await?
            .ok_or_else(|| StoreError::Corrupt("journal_head row is missing".into()))?;
        let head_seq: i64 = head.try_get("seq")?;
        let head_hash: String = head.try_get("hash")?;
        if head_seq != last_seq || head_hash != prev_hash {
            problems.push(JournalProblem::HeadMismatch { head_seq, last_seq });
        }
        problems.extend(self.check_indicator_actuals().await?);
        Ok(JournalReport {
            entries: last_seq,
            head_hash,
            problems,
        })
    }

    /// The latest entries, newest first, at most `limit`.
    pub async fn recent_journal(&self, limit: i64) -> Result<Vec<JournalEntry>> {
        let rows = sqlx::query(
            "SELECT seq, recorded_at, actor, kind, subject, payload, prev_hash, hash \
             FROM journal ORDER BY seq DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// How many entries of `kind` about `subject` were recorded at or after `since`.
    pub async fn count_journal_since(
        &self,
        subject: &str,
        kind: &str,
        since: Timestamp,
    ) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM journal WHERE subject = $1 AND kind = $2 AND recorded_at >= $3",
        )
        .bind(subject)
        .bind(kind)
        .bind(format_instant(since))
        .fetch_one(self.reader())
        .await?;
        Ok(row.try_get("n")?)
    }

    /// The entries about one subject, oldest first.
    pub async fn journal_for_subject(&self, subject: &str) -> Result<Vec<JournalEntry>> {
        let rows = sqlx::query(
            "SELECT seq, recorded_at, actor, kind, subject, payload, prev_hash, hash \
             FROM journal WHERE subject = $1 ORDER BY seq",
        )
        .bind(subject)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(entry_from_row).collect()
    }
}

/// Parses a stored entry's time (kept here so callers need not know the storage format).
pub fn entry_time(entry: &JournalEntry) -> Result<Timestamp> {
    parse_instant(&entry.recorded_at)
}

impl Store {
    /// Replays the journal's indicator entries against `indicator_actuals`: every row must carry
    /// the value of the latest `indicator.actual_set` entry for its indicator and year, and every
    /// such entry must still have its row.
    async fn check_indicator_actuals(&self) -> Result<Vec<JournalProblem>> {
        let mut latest: std::collections::BTreeMap<(String, i64), (i64, String)> =
            std::collections::BTreeMap::new();
        let rows = sqlx::query(
            "SELECT seq, payload FROM journal WHERE kind = 'indicator.actual_set' ORDER BY seq",
        )
        .fetch_all(self.reader())
        .await?;
        for row in &rows {
            let seq: i64 = row.try_get("seq")?;
            let payload: String = row.try_get("payload")?;
            let value: serde_json::Value = serde_json::from_str(&payload)
                .map_err(|e| StoreError::Corrupt(format!("journal entry {seq}: {e}")))?;
            let code = value["indicator"].as_str().unwrap_or_default().to_owned();
            let year = value["year"].as_i64().unwrap_or_default();
            let text = value["value"].as_str().unwrap_or_default().to_owned();
            latest.insert((code, year), (seq, text));
        }
        let mut problems = Vec::new();
        let stored = sqlx::query(
            "SELECT indicator_code, year, value, journal_seq FROM indicator_actuals ORDER BY indicator_code, year",
        )
        .fetch_all(self.reader())
        .await?;
        for row in &stored {
            let code: String = row.try_get("indicator_code")?;
            let year: i64 = row.try_get("year")?;
            let value: String = row.try_get("value")?;
            let seq: i64 = row.try_get("journal_seq")?;
            let key = format!("{code}/{year}");
            let mismatch = |reason: String| JournalProblem::StateMismatch {
                table: "indicator_actuals".into(),
                key: key.clone(),
                reason,
            };
            match latest.remove(&(code.clone(), year)) {
                None => problems.push(mismatch(
                    "row has no journal entry (inserted outside the platform)".into(),
                )),
                Some((latest_seq, latest_value)) => {
                    if latest_seq != seq || latest_value != value {
                        problems.push(mismatch(format!(
                            "row holds `{value}` (entry {seq}) but the journal's latest is `{latest_value}` (entry {latest_seq}): edited outside the platform"
                        )));
                    }
                }
            }
        }
        for ((code, year), (seq, _)) in latest {
            problems.push(JournalProblem::StateMismatch {
                table: "indicator_actuals".into(),
                key: format!("{code}/{year}"),
                reason: format!(
                    "journal entry {seq} set it but the row is gone (deleted outside the platform)"
                ),
            });
        }
        Ok(problems)
    }
}
