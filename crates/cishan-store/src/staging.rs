//! Staged writes: group commit without a statement per row.
//!
//! A writer that commits many requests in one transaction (the donation writer) turns staging
//! on with [`WriteTx::stage_writes`]. From then on the hot path of a request issues no
//! statement at all:
//! - new rows given to [`WriteTx::stage`] wait in memory, grouped by table in the order their
//!   tables were first staged (so foreign keys point backwards), and go out as multi-row INSERTs;
//! - the journal's head, the transparency log's size and frontier, and receipt counters are read
//!   once and then advanced in memory ([`JournalCursor`], [`LogCursor`], receipt sequences);
//! - idempotency keys are looked up for the whole batch at once ([`WriteTx::prefetch_idempotency`])
//!   and remembered, with each key saved in this transaction.
//!
//! Everything staged is written by [`WriteTx::flush`], which [`WriteTx::commit`] calls, and
//! which every other statement on the transaction runs first: `WriteTx::conn` refuses to hand
//! out the connection while anything is staged, so a read can never miss a staged row. Reads of
//! tables that are never staged (funds, projects, organizations) may use `WriteTx::raw`.

use std::collections::{BTreeMap, HashMap};

use cishan_translog::{Hash, NodeId};

use crate::journal::JournalEntry;
use crate::records::{conflict, AnyQuery, BulkRow};
use crate::{bulk_values, IdempotentResponse, Result, StoreError};

/// Parameters per staged INSERT on PostgreSQL, and on SQLite. SQLite statements use anonymous
/// parameters ([`crate::bulk_values`]), whose binding cost is linear, so a whole batch fits in
/// one statement per table (SQLite allows 32,766 parameters).
const PARAMS_PER_STATEMENT: usize = 240;
const SQLITE_PARAMS_PER_STATEMENT: usize = 8_000;

/// Rows of `columns` values that fit in one staged INSERT on `conn`.
pub(crate) fn rows_per_statement(conn: &sqlx::AnyConnection, columns: usize) -> usize {
    let params = if crate::anonymous_params(conn) {
        SQLITE_PARAMS_PER_STATEMENT
    } else {
        PARAMS_PER_STATEMENT
    };
    (params / columns.max(1)).max(1)
}

/// `INSERT` for a staged multi-row statement on `conn`. On SQLite it is `INSERT OR FAIL`: a
/// multi-row statement that may abort on a conflict makes SQLite keep a statement journal, so
/// that it can undo just that statement. A staged write never needs that: after any error the
/// whole transaction is dropped and rolled back ([`crate::WriteTx::flush`]), so a failing
/// statement may as well leave its earlier rows in place until then. A foreign key can still
/// abort such a statement, so SQLite still keeps that journal; the write connection holds it in
/// memory (`PRAGMA temp_store = MEMORY`) instead of spilling it to a temporary file.
///
/// Foreign keys used to be deferred to the commit (`PRAGMA defer_foreign_keys`, which SQLite
/// resets at every commit) so that no statement journal was needed at all. But setting that
/// pragma expires every prepared statement of the connection, so each batch re-parsed all of
/// its statements: a fifth of the write connection's time. Without it `cishan bench donations`
/// went from 8,050–8,430 to 9,110–9,380 donations a second (back to back, same machine).
/// PostgreSQL has no such journal and no such syntax.
pub(crate) fn staged_insert(conn: &sqlx::AnyConnection) -> &'static str {
    if crate::anonymous_params(conn) {
        "INSERT OR FAIL INTO"
    } else {
        "INSERT INTO"
    }
}

/// A row of any table, boxed so rows of many tables can wait together.
pub(crate) trait StagedRow: Send + Sync {
    fn bind_into<'q>(&'q self, q: AnyQuery<'q>) -> AnyQuery<'q>;
}

impl<R: BulkRow + Send + Sync> StagedRow for R {
    fn bind_into<'q>(&'q self, q: AnyQuery<'q>) -> AnyQuery<'q> {
        self.bind(q)
    }
}

/// Rows waiting for one table.
pub(crate) struct StagedTable {
    pub(crate) table: &'static str,
    pub(crate) columns: &'static [&'static str],
    pub(crate) rows: Vec<Box<dyn StagedRow>>,
}

impl std::fmt::Debug for StagedTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedTable")
            .field("table", &self.table)
            .field("rows", &self.rows.len())
            .finish()
    }
}

/// The journal's head as the staged entries leave it.
#[derive(Debug, Clone)]
pub(crate) struct JournalCursor {
    pub(crate) seq: i64,
    pub(crate) hash: String,
    /// Whether `journal_head` in the database is behind this cursor.
    pub(crate) dirty: bool,
}

/// The transparency log as the staged leaves leave it.
#[derive(Debug, Clone, Default)]
pub(crate) struct LogCursor {
    pub(crate) size: u64,
    /// Subtree hashes completed in this transaction or fetched for it.
    pub(crate) nodes: BTreeMap<NodeId, Hash>,
    /// Leaves and nodes not yet written, and whether `log_state` is behind.
    pub(crate) leaves: Vec<StagedLeaf>,
    pub(crate) new_nodes: Vec<(NodeId, Hash)>,
    pub(crate) dirty: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct StagedLeaf {
    pub(crate) index: u64,
    pub(crate) kind: String,
    pub(crate) subject: String,
    pub(crate) leaf: String,
    pub(crate) leaf_hash: Hash,
    pub(crate) recorded_at: String,
}

/// What a transaction holds back until [`WriteTx::flush`].
#[derive(Debug, Default)]
pub(crate) struct Staging {
    pub(crate) tables: Vec<StagedTable>,
    pub(crate) journal: Option<JournalCursor>,
    pub(crate) journal_rows: Vec<JournalEntry>,
    pub(crate) log: Option<LogCursor>,
    /// (organization, year) → (last sequence number handed out, whether it is unwritten).
    pub(crate) receipt_seqs: HashMap<(String, i64), (i64, bool)>,
    /// (scope, key) → the saved response, or `None` when known to be absent.
    pub(crate) idempotency: HashMap<(String, String), Option<IdempotentResponse>>,
    /// Memoized lookups of tables the staged path never writes.
    pub(crate) holder_orgs: HashMap<(String, String), Option<String>>,
    pub(crate) project_states: HashMap<String, Option<(String, String)>>,
    pub(crate) organizations: HashMap<String, Option<(String, String)>>,
    pub(crate) any_pools: Option<bool>,
}

impl Staging {
    /// Whether anything waits to be written.
    pub(crate) fn is_dirty(&self) -> bool {
        self.tables.iter().any(|t| !t.rows.is_empty())
            || !self.journal_rows.is_empty()
            || self.journal.as_ref().is_some_and(|c| c.dirty)
            || self.log.as_ref().is_some_and(|c| c.dirty)
            || self.receipt_seqs.values().any(|(_, dirty)| *dirty)
    }

    /// What the next staged transaction may start from ([`crate::StagedCarry`]): the cursors
    /// and lookups, not idempotency keys (the next batch has its own), and of the log's subtree
    /// hashes only the frontier that later appends need. Called after the flush.
    pub(crate) fn carry(&mut self) -> Staging {
        debug_assert!(!self.is_dirty(), "carried before the flush");
        let log = self.log.take().map(|mut cursor| {
            let frontier = cishan_translog::root_nodes(cursor.size).unwrap_or_default();
            cursor.nodes.retain(|id, _| frontier.contains(id));
            cursor
        });
        Staging {
            journal: self.journal.take(),
            log,
            receipt_seqs: std::mem::take(&mut self.receipt_seqs),
            holder_orgs: std::mem::take(&mut self.holder_orgs),
            project_states: std::mem::take(&mut self.project_states),
            organizations: std::mem::take(&mut self.organizations),
            any_pools: self.any_pools,
            ..Staging::default()
        }
    }

    pub(crate) fn push<R: BulkRow + Send + Sync + 'static>(&mut self, row: R) {
        let table = match self.tables.iter_mut().find(|t| t.table == R::TABLE) {
            Some(table) => table,
            None => {
                self.tables.push(StagedTable {
                    table: R::TABLE,
                    columns: R::COLUMNS,
                    rows: Vec::new(),
                });
                self.tables.last_mut().expect("just pushed")
            }
        };
        table.rows.push(Box::new(row));
    }
}

/// Binds one statement's values, in order.
type Binder<'a> = Box<dyn Fn(AnyQuery<'a>) -> AnyQuery<'a> + Send + Sync + 'a>;
/// A statement's SQL and the table a unique violation in it is reported against.
type Text = (String, &'static str);

/// Writes everything staged: rows with multi-row INSERTs, then the journal's entries and head,
/// the log's leaves, subtree hashes and size, and receipt counters.
///
/// On SQLite it is all one multi-statement query with anonymous parameters, which sqlx binds
/// statement by statement. Each query is a round trip to the connection's worker thread (two
/// thread wake-ups, each tens of microseconds on this machine), so a group commit that sent
/// eleven statements here now sends one. PostgreSQL takes them one by one.
pub(crate) async fn write_staged(
    conn: &mut sqlx::AnyConnection,
    staging: &mut Staging,
) -> Result<()> {
    let sqlite = crate::anonymous_params(conn);
    // Declared before the binders, which borrow from the staging with the queries' lifetime,
    // so the SQL they are bound to outlives them.
    let joined: String;
    let (texts, binders) = staged_statements(conn, staging)?;
    if sqlite && texts.len() > 1 {
        joined = texts
            .iter()
            .map(|(sql, _)| sql.as_str())
            .collect::<Vec<_>>()
            .join(";\n");
        let mut q = sqlx::query(&joined);
        for bind in &binders {
            q = bind(q);
        }
        q.execute(&mut *conn).await.map_err(|e| {
            // SQLite names the failing table in its message ("UNIQUE constraint failed:
            // donations.channel, donations.payment_ref").
            let message = match &e {
                sqlx::Error::Database(db) => db.message().to_owned(),
                _ => String::new(),
            };
            let table = texts
                .iter()
                .map(|(_, table)| *table)
                .find(|t| message.contains(&format!(" {t}.")))
                .unwrap_or("staged rows");
            conflict(e, table)
        })?;
    } else {
        for ((sql, table), bind) in texts.iter().zip(&binders) {
            bind(sqlx::query(sql))
                .execute(&mut *conn)
                .await
                .map_err(|e| conflict(e, table))?;
        }
    }
    drop(binders);
    for table in &mut staging.tables {
        table.rows.clear();
    }
    staging.journal_rows.clear();
    if let Some(cursor) = staging.journal.as_mut() {
        cursor.dirty = false;
    }
    if let Some(cursor) = staging.log.as_mut() {
        cursor.leaves.clear();
        cursor.new_nodes.clear();
        cursor.dirty = false;
    }
    for (_, dirty) in staging.receipt_seqs.values_mut() {
        *dirty = false;
    }
    Ok(())
}

/// The statements [`write_staged`] runs, in order: tables in the order they were first
/// staged (so foreign keys point backwards), then journal, log and receipt counters.
fn staged_statements<'a>(
    conn: &sqlx::AnyConnection,
    staging: &'a Staging,
) -> Result<(Vec<Text>, Vec<Binder<'a>>)> {
    let insert = staged_insert(conn);
    let sqlite = crate::anonymous_params(conn);
    // A parameter of a single-row statement: numbered on PostgreSQL; anonymous on SQLite, where
    // a numbered one would be taken from the start of a multi-statement query's values.
    let p = |n: usize| {
        if sqlite {
            "?".to_owned()
        } else {
            format!("${n}")
        }
    };
    let mut out: Vec<(Text, Binder<'a>)> = Vec::new();
    let mut rows = |table: &'static str,
                    columns: &str,
                    width: usize,
                    count: usize,
                    bind_chunk: &dyn Fn(std::ops::Range<usize>) -> Binder<'a>| {
        let per = rows_per_statement(conn, width);
        let mut start = 0;
        while start < count {
            let end = (start + per).min(count);
            out.push((
                (
                    format!(
                        "{insert} {table} ({columns}) VALUES {}",
                        bulk_values(conn, end - start, width)
                    ),
                    table,
                ),
                bind_chunk(start..end),
            ));
            start = end;
        }
    };
    for table in &staging.tables {
        rows(
            table.table,
            &table.columns.join(", "),
            table.columns.len(),
            table.rows.len(),
            &|range| {
                let chunk = &table.rows[range];
                Box::new(move |q| chunk.iter().fold(q, |q, row| row.bind_into(q)))
            },
        );
    }
    let journal = &staging.journal_rows;
    rows(
        "journal",
        "seq, recorded_at, actor, kind, subject, payload, prev_hash, hash",
        8,
        journal.len(),
        &|range| {
            let chunk = &journal[range];
            Box::new(move |q| {
                chunk.iter().fold(q, |q, e| {
                    q.bind(e.seq)
                        .bind(&e.recorded_at)
                        .bind(&e.actor)
                        .bind(&e.kind)
                        .bind(&e.subject)
                        .bind(&e.payload)
                        .bind(&e.prev_hash)
                        .bind(&e.hash)
                })
            })
        },
    );
    let log = staging.log.as_ref().filter(|c| c.dirty);
    if let Some(cursor) = log {
        // Every index and position below is smaller than the size.
        let size = i64::try_from(cursor.size).map_err(|_| {
            StoreError::Corrupt(format!("log position {} is too large", cursor.size))
        })?;
        let db = move |n: u64| i64::try_from(n).unwrap_or(size);
        let leaves = &cursor.leaves;
        rows(
            "log_leaves",
            "leaf_index, kind, subject, leaf, leaf_hash, recorded_at",
            6,
            leaves.len(),
            &|range| {
                let chunk = &leaves[range];
                Box::new(move |q| {
                    chunk.iter().fold(q, |q, l| {
                        q.bind(db(l.index))
                            .bind(&l.kind)
                            .bind(&l.subject)
                            .bind(&l.leaf)
                            .bind(cishan_translog::encode_hash(&l.leaf_hash))
                            .bind(&l.recorded_at)
                    })
                })
            },
        );
        let nodes = &cursor.new_nodes;
        if sqlite && !nodes.is_empty() {
            // How many subtrees a group completes varies with where the log stands, so as a
            // VALUES list this statement would rarely repeat, and the whole multi-statement
            // query would be compiled afresh for most groups (an eighth of the write
            // connection's time). As one JSON array it is the same text every time.
            out.push((
                (
                    format!(
                        "{insert} log_nodes (level, idx, hash) \
                         SELECT value->>0, value->>1, value->>2 FROM json_each(?)"
                    ),
                    "log_nodes",
                ),
                Box::new(move |q| {
                    let cells: Vec<String> = nodes
                        .iter()
                        .map(|(id, hash)| {
                            format!(
                                "[{},{},\"{}\"]",
                                id.level,
                                db(id.index),
                                cishan_translog::encode_hash(hash)
                            )
                        })
                        .collect();
                    q.bind(format!("[{}]", cells.join(",")))
                }),
            ));
        } else {
            rows("log_nodes", "level, idx, hash", 3, nodes.len(), &|range| {
                let chunk = &nodes[range];
                Box::new(move |q| {
                    chunk.iter().fold(q, |q, (id, hash)| {
                        q.bind(i64::from(id.level))
                            .bind(db(id.index))
                            .bind(cishan_translog::encode_hash(hash))
                    })
                })
            });
        }
        out.push((
            (
                format!("UPDATE log_state SET size = {} WHERE id = 1", p(1)),
                "log_state",
            ),
            Box::new(move |q| q.bind(size)),
        ));
    }
    if let Some(cursor) = staging.journal.as_ref().filter(|c| c.dirty) {
        out.push((
            (
                format!(
                    "UPDATE journal_head SET seq = {}, hash = {} WHERE id = 1",
                    p(1),
                    p(2)
                ),
                "journal_head",
            ),
            Box::new(move |q| q.bind(cursor.seq).bind(&cursor.hash)),
        ));
    }
    for ((org_id, year), (last, dirty)) in &staging.receipt_seqs {
        if !*dirty {
            continue;
        }
        out.push((
            (
                format!(
                    "INSERT INTO receipt_counters (org_id, year, last_seq) VALUES ({}, {}, {}) \
                     ON CONFLICT (org_id, year) DO UPDATE SET last_seq = excluded.last_seq",
                    p(1),
                    p(2),
                    p(3)
                ),
                "receipt_counters",
            ),
            Box::new(move |q| q.bind(org_id.as_str()).bind(*year).bind(*last)),
        ));
    }
    Ok(out.into_iter().unzip())
}
