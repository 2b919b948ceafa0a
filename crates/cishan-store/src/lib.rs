//! Storage for cishan: one implementation in portable SQL over sqlx `Any`, run on SQLite (the
//! embedded default: one file, WAL, foreign keys on) or PostgreSQL (by URL).
//!
//! Architecture invariant: this crate knows SQL and nothing about HTTP or pages. Every write goes
//! through a [`WriteTx`], which appends a hash-chained [`journal`] entry in the same transaction
//! as the change, so a change without its journal entry cannot be committed by this API.

pub mod campaigns;
pub mod journal;
pub mod ledger;
pub mod orders;
pub mod participants;
pub mod points;
pub mod pools;
mod records;
pub mod registry;
mod staging;
mod time;
pub mod translog;
pub mod volunteering;
mod walsync;

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Executor, Row, Transaction};

pub use campaigns::*;
pub use journal::{JournalEntry, JournalProblem, JournalReport, NewEntry};
pub use ledger::*;
pub use orders::*;
pub use participants::*;
pub use pools::*;
pub use records::*;
pub use registry::*;
pub use time::{format_instant, parse_instant};
pub use translog::LogLeaf;
pub use volunteering::*;

/// The number of pooled connections used for reads.
const MAX_READ_CONNECTIONS: u32 = 8;
/// How long a statement waits for a SQLite lock before failing.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;
/// Rows per multi-row INSERT in bulk loads. Small on purpose: SQLite resolves each numbered
/// `$N` parameter by a linear scan of the statement's parameter names, so one statement costs
/// about the square of its parameter count. Measured on the district-scale demo (1.3M rows of
/// 9 columns): 500 rows per statement took 159 s, 50 rows about 60 s.
pub const BULK_BATCH_ROWS: usize = 50;

/// Which database engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Everything that can go wrong in the store. The web layer maps these to HTTP in one place.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL `{0}` is not supported: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored value is invalid: {0}")]
    Corrupt(String),
    #[error("cannot sync the write-ahead log to disk: {0}")]
    LogSync(std::io::Error),
    #[error("{what} `{key}` already exists")]
    Conflict { what: &'static str, key: String },
}

impl StoreError {
    /// True when a unique or primary key constraint refused the write.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Conflict { .. } => true,
            StoreError::Database(sqlx::Error::Database(e)) => e.is_unique_violation(),
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A handle on the database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    /// Pool for reads (and for writes on PostgreSQL).
    read: AnyPool,
    /// Pool for writing transactions. On SQLite it holds one connection: SQLite admits one writer
    /// at a time, and a single writer avoids lock-upgrade deadlocks between deferred transactions.
    write: AnyPool,
    /// SQLite: the background checkpointer, stopped when the last clone of this store is dropped.
    _checkpointer: Option<Arc<Checkpointer>>,
    /// SQLite: syncs the write-ahead log after commits ([`walsync`]).
    wal: Option<Arc<walsync::WalSync>>,
    /// Commits made through [`WriteTx`], so a [`StagedCarry`] can tell whether anything was
    /// written since it was taken.
    commits: Arc<AtomicU64>,
}

/// How often the background checkpointer copies committed pages from SQLite's write-ahead log
/// into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// The log size, in pages, at which a committing writer checkpoints by itself (SQLite's own
/// default is 1,000). Only a safety net for when the background checkpointer falls behind.
const WRITER_CHECKPOINT_PAGES: u32 = 20_000;

/// Runs `PRAGMA wal_checkpoint(PASSIVE)` on a reading connection every [`CHECKPOINT_EVERY`].
///
/// With SQLite's default, the commit that takes the log past 1,000 pages copies them all into
/// the database file and syncs it before it returns: a pause of milliseconds on the one writer
/// (`cishan bench donations` ran about 8% faster without it: 7,200/s against 7,800/s). A
/// passive checkpoint on another connection does the same work on another thread without
/// blocking the writer; the log still restarts from its beginning once it is all copied, so it
/// stays small. Durability is unchanged: a commit is durable when its log frames are synced.
#[derive(Debug)]
struct Checkpointer(tokio::task::JoinHandle<()>);

impl Checkpointer {
    fn start(pool: AnyPool) -> Checkpointer {
        Checkpointer(tokio::spawn(async move {
            let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                if pool.is_closed() {
                    return;
                }
                if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&pool)
                    .await
                {
                    tracing::warn!(%error, "background checkpoint failed");
                }
            }
        }))
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Store {
    /// Opens the database at `url` (`sqlite://PATH` or `postgres://…`). For SQLite the file and
    /// its directory are created when missing.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = backend_of(url)?;
        let (url, wal) = match backend {
            Backend::Sqlite => {
                let (url, path) = sqlite_url(url)?;
                (url, Some(Arc::new(walsync::WalSync::new(&path))))
            }
            Backend::Postgres => (url.to_owned(), None),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let read = pool_options(backend, MAX_READ_CONNECTIONS, Synchronous::Full)
            .connect_with(options.clone())
            .await?;
        let write = match backend {
            // The writer's commits are synced by `WalSync` (see [`walsync`]).
            Backend::Sqlite => {
                pool_options(backend, 1, Synchronous::Normal)
                    .connect_with(options)
                    .await?
            }
            Backend::Postgres => read.clone(),
        };
        let checkpointer =
            (backend == Backend::Sqlite).then(|| Arc::new(Checkpointer::start(read.clone())));
        Ok(Store {
            backend,
            read,
            write,
            _checkpointer: checkpointer,
            wal,
            commits: Arc::new(AtomicU64::new(0)),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies every pending migration of this backend.
    pub async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.write)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.write)
                    .await?
            }
        }
        self.sync_log().await
    }

    /// The migrations this build carries for the backend: (version, description), ascending.
    pub fn migrations(&self) -> Vec<(i64, String)> {
        let migrator = match self.backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        migrator
            .iter()
            .map(|m| (m.version, m.description.to_string()))
            .collect()
    }

    /// The versions already applied to the database, ascending; empty before the first
    /// migration (when sqlx's bookkeeping table does not exist yet).
    pub async fn applied_migrations(&self) -> Result<Vec<i64>> {
        let exists = match self.backend {
            Backend::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
            }
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'"
            }
        };
        let count: i64 = sqlx::query(exists)
            .fetch_one(&self.read)
            .await?
            .try_get(0)?;
        if count == 0 {
            return Ok(Vec::new());
        }
        let rows =
            sqlx::query("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
                .fetch_all(&self.read)
                .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<i64, _>("version")?))
            .collect()
    }

    /// Starts a writing transaction. Nothing is written unless [`WriteTx::commit`] is called.
    pub async fn begin(&self) -> Result<WriteTx> {
        let tx = match self.backend {
            // Takes the write lock at once, so no read in the transaction can go stale before
            // its first write (and `WriteTx::lock_writes` needs no statement).
            Backend::Sqlite => self.write.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.write.begin().await?,
        };
        Ok(WriteTx {
            tx,
            staging: None,
            wal: self.wal.clone(),
            commits: Arc::clone(&self.commits),
            data_version: None,
        })
    }

    /// Makes every commit made so far durable (SQLite: one `fdatasync` of the write-ahead log
    /// on a blocking thread; PostgreSQL: nothing to do, its commits are durable when they
    /// return). Required after [`WriteTx::commit_before_sync`] before anyone is told.
    pub async fn sync_log(&self) -> Result<()> {
        sync_wal(self.wal.clone()).await
    }

    /// The pool for read-only queries.
    pub(crate) fn reader(&self) -> &AnyPool {
        &self.read
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    /// Closes both pools, waiting for connections to be returned.
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// A writing transaction. Every business change made through it should be paired with a
/// journal entry ([`WriteTx::journal`]) describing it.
#[derive(Debug)]
pub struct WriteTx {
    tx: Transaction<'static, Any>,
    /// Writes held back for group commit ([`staging`]); `None` unless turned on.
    staging: Option<Box<staging::Staging>>,
    /// SQLite: the log to sync after the commit.
    wal: Option<Arc<walsync::WalSync>>,
    commits: Arc<AtomicU64>,
    /// SQLite: `PRAGMA data_version` as read by [`WriteTx::stage_writes_after`].
    data_version: Option<i64>,
}

/// What a staged transaction knew of the journal's head, the transparency log's frontier,
/// receipt counters, funds, projects and organizations when it committed, for the next staged
/// transaction to start from instead of reading it all again (SQLite only).
///
/// It is used only if nothing else was written in between: no other commit through this
/// store (counted in [`Store`]) and no commit by another connection or process (SQLite's
/// `PRAGMA data_version`, read while holding the write lock). Otherwise it is dropped and
/// everything is read afresh. In `cishan bench donations` this saved about ten of the 25
/// statements each group commit sent to SQLite's worker thread.
#[derive(Debug)]
pub struct StagedCarry {
    commits: u64,
    data_version: i64,
    staging: Box<staging::Staging>,
}

impl WriteTx {
    /// Writes everything staged, then commits.
    /// Commits, and returns once the commit is durable.
    pub async fn commit(self) -> Result<()> {
        let wal = self.wal.clone();
        self.commit_before_sync().await?;
        sync_wal(wal).await
    }

    /// Commits without waiting for the disk: the changes are visible to other connections at
    /// once but survive a power loss only after the next [`Store::sync_log`] (or any later
    /// [`WriteTx::commit`]). Whoever calls this must not tell anyone that the change is
    /// recorded until such a sync has returned; the donation writer uses it to start its next
    /// batch while the last one is synced ([`walsync`]).
    pub async fn commit_before_sync(self) -> Result<()> {
        self.commit_counted().await.map(|_| ())
    }

    /// [`WriteTx::commit_before_sync`] for a transaction started with
    /// [`WriteTx::stage_writes_after`]: also returns what it knew, for the next one.
    pub async fn commit_carrying(self) -> Result<Option<StagedCarry>> {
        self.commit_counted().await
    }

    async fn commit_counted(mut self) -> Result<Option<StagedCarry>> {
        self.flush().await?;
        // Counted before the commit, while this transaction still holds the connection, so
        // no other commit can slip between the two.
        let commits = self.commits.fetch_add(1, Ordering::SeqCst) + 1;
        let carry = match (self.data_version, self.staging.as_deref_mut()) {
            (Some(data_version), Some(staging)) => Some(StagedCarry {
                commits,
                data_version,
                staging: Box::new(staging.carry()),
            }),
            _ => None,
        };
        self.tx.commit().await?;
        Ok(carry)
    }

    /// [`WriteTx::stage_writes`], starting from what the last staged transaction knew when it
    /// committed, if nothing has been written since ([`StagedCarry`]). On PostgreSQL, where
    /// other writers commit concurrently, the carry is always dropped.
    pub async fn stage_writes_after(&mut self, carry: Option<StagedCarry>) -> Result<()> {
        if !anonymous_params(&self.tx) {
            self.stage_writes();
            return Ok(());
        }
        let data_version: i64 = sqlx::query("PRAGMA data_version")
            .fetch_one(&mut *self.tx)
            .await?
            .try_get(0)?;
        self.data_version = Some(data_version);
        let commits = self.commits.load(Ordering::SeqCst);
        self.staging = Some(match carry {
            Some(carry) if carry.commits == commits && carry.data_version == data_version => {
                carry.staging
            }
            _ => Box::default(),
        });
        Ok(())
    }

    /// Turns staging on for the rest of this transaction (see [`staging`]): rows given to
    /// [`WriteTx::stage`], journal entries, log leaves and receipt numbers are kept in memory
    /// and written together by [`WriteTx::flush`] or [`WriteTx::commit`].
    pub fn stage_writes(&mut self) {
        self.staging.get_or_insert_with(Box::default);
    }

    /// Inserts a new row now, or at the next flush when staging is on. A conflict (a duplicate
    /// key) then surfaces at the flush, failing the whole transaction.
    pub async fn stage<R: BulkRow + Send + Sync + 'static>(&mut self, row: R) -> Result<()> {
        match self.staging.as_deref_mut() {
            Some(staging) => {
                staging.push(row);
                Ok(())
            }
            None => self.insert(&row).await,
        }
    }

    /// Writes everything staged. After an error the transaction must be dropped.
    pub async fn flush(&mut self) -> Result<()> {
        let Some(staging) = self.staging.as_deref_mut() else {
            return Ok(());
        };
        if !staging.is_dirty() {
            return Ok(());
        }
        staging::write_staged(&mut self.tx, staging).await
    }

    /// The connection, for a statement. Refuses while anything is staged: run
    /// [`WriteTx::flush`] first, so no statement can miss or precede a staged write.
    pub(crate) fn conn(&mut self) -> &mut sqlx::AnyConnection {
        assert!(
            !self
                .staging
                .as_deref()
                .is_some_and(staging::Staging::is_dirty),
            "a statement ran while writes were staged; WriteTx::flush must run first"
        );
        &mut self.tx
    }

    /// The connection without the staging check: only for reading tables that are never
    /// staged, or rows the staging keeps in memory anyway.
    pub(crate) fn raw(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }

    pub(crate) fn staging(&mut self) -> Option<&mut staging::Staging> {
        self.staging.as_deref_mut()
    }
}

async fn sync_wal(wal: Option<Arc<walsync::WalSync>>) -> Result<()> {
    let Some(wal) = wal else {
        return Ok(());
    };
    tokio::task::spawn_blocking(move || wal.sync())
        .await
        .map_err(|e| StoreError::LogSync(std::io::Error::other(e)))?
        .map_err(StoreError::LogSync)
}

fn backend_of(url: &str) -> Result<Backend> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Backend::Postgres)
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}

/// Normalises `sqlite://PATH` so the file is created when missing, and creates its directory.
/// Returns the URL and the database file's path.
fn sqlite_url(url: &str) -> Result<(String, std::path::PathBuf)> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::UnsupportedUrl(url.to_owned()))?;
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if path.is_empty() || path == ":memory:" {
        // An in-memory database would be a different database per pooled connection.
        return Err(StoreError::UnsupportedUrl(url.to_owned()));
    }
    if let Some(dir) = Path::new(path).parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
    }
    let query = query.unwrap_or("mode=rwc");
    Ok((
        format!("sqlite://{path}?{query}"),
        Path::new(path).to_owned(),
    ))
}

/// SQLite's `synchronous` setting of a pool's connections.
#[derive(Debug, Clone, Copy)]
enum Synchronous {
    /// Every commit syncs the log itself.
    Full,
    /// Commits do not sync; [`walsync`] does.
    Normal,
}

fn pool_options(backend: Backend, max_connections: u32, sync: Synchronous) -> AnyPoolOptions {
    let options = AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(30));
    match backend {
        // A SQLite connection is a handle on a local file: it cannot go stale the way a network
        // connection can, so skip sqlx's ping before every acquire (on 1M donations it was most
        // of a trace's time: the trace's reads alone went from p99 1.7–5.3 ms to 1.1–1.7 ms).
        Backend::Sqlite => options
            .test_before_acquire(false)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    // WAL lets readers proceed while one writer commits. Every acknowledged commit
                    // is durable across power loss, not only across a process crash: readers'
                    // connections (which checkpoint) sync themselves, and the writer's commits
                    // are synced by `WalSync` before anyone is answered.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute(match sync {
                        Synchronous::Full => "PRAGMA synchronous = FULL",
                        Synchronous::Normal => "PRAGMA synchronous = NORMAL",
                    })
                    .await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    // Statement journals and temporary tables in memory: see
                    // `staging::staged_insert`.
                    conn.execute("PRAGMA temp_store = MEMORY").await?;
                    // See [`Checkpointer`].
                    conn.execute(
                        format!("PRAGMA wal_autocheckpoint = {WRITER_CHECKPOINT_PAGES}").as_str(),
                    )
                    .await?;
                    conn.execute(
                        format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}").as_str(),
                    )
                    .await?;
                    Ok(())
                })
            }),
        Backend::Postgres => options,
    }
}

/// Builds `($1, $2), ($3, $4)…` for a multi-row INSERT of `rows` rows of `columns` columns.
/// Both SQLite and PostgreSQL accept numbered `$N` placeholders.
pub(crate) fn values_placeholders(rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 5);
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..columns {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(r * columns + c + 1).to_string());
        }
        sql.push(')');
    }
    sql
}

/// Whether statements on `conn` may use anonymous `?` parameters (SQLite).
pub(crate) fn anonymous_params(conn: &sqlx::AnyConnection) -> bool {
    conn.backend_name() == "SQLite"
}

/// The `VALUES` list of a multi-row INSERT on `conn`: `$N` parameters on PostgreSQL, anonymous
/// `?` on SQLite. sqlx-sqlite asks SQLite the name of every parameter it binds, which for a
/// named or numbered one is a linear scan of the statement's names, so `$N` makes binding a
/// large statement quadratic; an anonymous parameter has no name to look up.
pub(crate) fn bulk_values(conn: &sqlx::AnyConnection, rows: usize, columns: usize) -> String {
    if !anonymous_params(conn) {
        return values_placeholders(rows, columns);
    }
    let row = format!("({})", vec!["?"; columns].join(", "));
    vec![row; rows].join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_every_cell() {
        assert_eq!(values_placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }

    #[test]
    fn urls_pick_the_backend() {
        assert_eq!(backend_of("sqlite://x.db").ok(), Some(Backend::Sqlite));
        assert_eq!(
            backend_of("postgres://postgres@127.0.0.1/x").ok(),
            Some(Backend::Postgres)
        );
        assert!(backend_of("mysql://x").is_err());
        assert!(sqlite_url("sqlite://:memory:").is_err());
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("d").join("x.db");
        let (url, path) = sqlite_url(&format!("sqlite://{}", db.display())).unwrap();
        assert_eq!(path, db);
        assert_eq!(url, format!("sqlite://{}?mode=rwc", db.display()));
    }
}
