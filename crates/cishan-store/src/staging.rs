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
use crate::{bulk_values, IdempotentResponse, Result};

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
            tables: Vec::new(),
            journal: self.journal.take(),
            journal_rows: Vec::new(),
            log,
            receipt_seqs: std::mem::take(&mut self.receipt_seqs),
            idempotency: HashMap::new(),
            holder_orgs: std::mem::take(&mut self.holder_orgs),
            project_states: std::mem::take(&mut self.project_states),
            organizations: std::mem::take(&mut self.organizations),
            any_pools: self.any_pools,
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

/// Writes one table's staged rows with multi-row INSERTs.
pub(crate) async fn write_table(conn: &mut sqlx::AnyConnection, table: &StagedTable) -> Result<()> {
    for chunk in table
        .rows
        .chunks(rows_per_statement(conn, table.columns.len()))
    {
        let sql = format!(
            "{} {} ({}) VALUES {}",
            staged_insert(conn),
            table.table,
            table.columns.join(", "),
            bulk_values(conn, chunk.len(), table.columns.len())
        );
        let mut q = sqlx::query(&sql);
        for row in chunk {
            q = row.bind_into(q);
        }
        q.execute(&mut *conn)
            .await
            .map_err(|e| conflict(e, table.table))?;
    }
    Ok(())
}
