//! The use cases of cishan. Each public method of [`App`] is one thing a person or another system
//! does: it checks who may do it, validates input into domain types, runs one transaction and
//! journals the change in it.
//!
//! Architecture invariant: the app layer never speaks HTTP or HTML, and nothing above it touches
//! the store directly, so every write passes an access check and lands in the journal.

pub mod alerts;
pub mod audit;
pub mod auth;
pub mod campaigns;
pub mod card_points;
pub mod clock;
pub mod codes;
pub mod demo;
pub mod disclosure;
pub mod dispatch;
pub mod donations;
mod error;
pub mod exports;
pub mod import;
pub mod indicators;
pub mod jobs;
pub mod matching;
pub mod orders;
pub mod participants;
pub mod points;
mod points_scan;
pub mod region;
pub mod registry;
pub mod rewards;
pub mod translog;
pub mod vault;
pub mod volunteering;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use cishan_core::RegionPack;
use cishan_store::{DivisionRow, NewEntry, Store};

pub use auth::{Actor, Role, SessionInfo};
pub use clock::{Clock, FixedClock, SystemClock};
pub use error::{AppError, ErrorKind};
pub use vault::Vault;

pub type Result<T, E = AppError> = std::result::Result<T, E>;

/// The largest page any list returns.
pub const MAX_PAGE_SIZE: i64 = 100;

/// How the application is opened.
#[derive(Debug, Clone)]
pub struct Config {
    /// `sqlite://PATH` or `postgres://…`.
    pub database_url: String,
    /// Holds the keys (outside the database).
    pub data_dir: PathBuf,
}

impl Config {
    /// The default data directory and SQLite database, relative to the working directory.
    pub fn default_local() -> Config {
        Config {
            database_url: "sqlite://./cishan-data/cishan.db".into(),
            data_dir: PathBuf::from("./cishan-data"),
        }
    }
}

/// The application: store, region pack, clock and key vault. Cheap to clone: one reference
/// count (the web layer clones it for every request and middleware).
#[derive(Debug, Clone)]
pub struct App(Arc<AppParts>);

impl std::ops::Deref for App {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// What an [`App`] holds; reached through the `App`, never built on its own.
#[derive(Debug, Clone)]
pub struct AppParts {
    store: Store,
    pack: Arc<RegionPack>,
    clock: Arc<dyn Clock>,
    vault: Arc<Vault>,
    /// Signs the transparency log's tree heads (key file outside the database).
    log_key: Arc<cishan_translog::LogKey>,
    data_dir: PathBuf,
    /// The group-commit writer for donations, started on first use.
    writer: Arc<OnceLock<writer::DonationWriter>>,
    /// Signs participant, activity, certificate and receipt codes (key file outside the database).
    code_key: Arc<codes::CodeKey>,
    /// The group-commit writer for volunteer check-ins, started on first use.
    checkins: Arc<OnceLock<volunteering::CheckInWriter>>,
    /// Sessions read in the last second ([`auth::SESSION_CACHE_SECONDS`]).
    sessions: Arc<auth::SessionCache>,
    /// The parsed points rule sets and the stamp they were read under ([`App::rule_book`]).
    rule_books: Arc<points::RuleBookCache>,
    /// The dispatch index of providers, loaded on first use ([`dispatch`]).
    dispatch: Arc<dispatch::DispatchState>,
}

impl App {
    /// Opens the database, applies migrations, loads the keys and writes the pack's divisions.
    pub async fn open(config: &Config, pack: RegionPack, clock: Arc<dyn Clock>) -> Result<App> {
        let store = Store::connect(&config.database_url).await?;
        store.migrate().await?;
        let vault = open_vault(&store, &config.data_dir.join("keys"), clock.as_ref()).await?;
        let log_key =
            translog::open_log_key(&store, &config.data_dir.join("keys"), clock.as_ref()).await?;
        let code_key =
            codes::open_code_key(&store, &config.data_dir.join("keys"), clock.as_ref()).await?;
        let app = App(Arc::new(AppParts {
            store,
            pack: Arc::new(pack),
            clock,
            vault: Arc::new(vault),
            log_key: Arc::new(log_key),
            data_dir: config.data_dir.clone(),
            writer: Arc::new(OnceLock::new()),
            code_key: Arc::new(code_key),
            checkins: Arc::new(OnceLock::new()),
            sessions: Arc::default(),
            rule_books: Arc::default(),
            dispatch: Arc::default(),
        }));
        app.sync_region().await?;
        Ok(app)
    }

    /// A copy that reads `clock` and has writers of its own (they read its clock): the demo
    /// replays past events through it.
    pub(crate) fn with_clock(&self, clock: Arc<dyn Clock>) -> App {
        App(Arc::new(AppParts {
            clock,
            writer: Arc::new(OnceLock::new()),
            checkins: Arc::new(OnceLock::new()),
            ..(*self.0).clone()
        }))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn pack(&self) -> &RegionPack {
        &self.pack
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// The directory that holds keys and evidence files (outside the database).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub(crate) fn donation_writer(&self) -> &writer::DonationWriter {
        self.writer
            .get_or_init(|| writer::DonationWriter::start(self.clone()))
    }

    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// Writes the pack's divisions, journaling only when they changed (so restarts are quiet).
    async fn sync_region(&self) -> Result<()> {
        let rows: Vec<DivisionRow> = self
            .pack
            .divisions
            .iter()
            .map(|d| DivisionRow {
                code: d.code.as_str().to_owned(),
                name: d.name.clone(),
                level: level_name(d.level).to_owned(),
                parent_code: d.parent.as_ref().map(|p| p.as_str().to_owned()),
            })
            .collect();
        let stored = self.store.divisions().await?;
        let mut wanted = rows.clone();
        wanted.sort_by(|a, b| a.code.cmp(&b.code));
        if stored == wanted {
            return Ok(());
        }
        let mut tx = self.store.begin().await?;
        tx.upsert_divisions(&rows).await?;
        tx.journal(
            self.clock.now(),
            NewEntry {
                actor: "system".into(),
                kind: "region.divisions_loaded".into(),
                subject: format!("region_{}", self.pack.code),
                payload: serde_json::json!({ "divisions": rows.len() }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The calendar date, in the region's time zone, of a stored instant (`2021-03-29T18:51:28Z`
    /// is `2021-03-30` in Shanghai). Falls back to the UTC date if the text is not an instant.
    pub fn local_date(&self, instant: &str) -> String {
        let local = cishan_store::parse_instant(instant).ok().and_then(|at| {
            let tz = jiff::tz::TimeZone::get(&self.pack.timezone).ok()?;
            Some(at.to_zoned(tz).date().to_string())
        });
        local.unwrap_or_else(|| instant.chars().take(10).collect())
    }

    /// Closes the database pools.
    pub async fn close(&self) {
        self.store.close().await;
    }
}

/// The setting that records which key file this database's personal data is encrypted with.
const VAULT_FINGERPRINT: &str = "vault_fingerprint";

/// Opens the key vault that belongs to this database. The first start creates the keys and
/// records their fingerprint; later starts refuse a missing or different key file instead of
/// silently making new keys that cannot read the data already stored.
async fn open_vault(store: &Store, dir: &Path, clock: &dyn Clock) -> Result<Vault> {
    let recorded = store.setting(VAULT_FINGERPRINT).await?;
    if recorded.is_some() && !Vault::exists_in(dir) {
        return Err(AppError::invalid(
            "data_dir",
            "vault.key_missing",
            format!(
                "数据库中的个人信息已用密钥加密，但在 {} 找不到密钥文件。请用 --data-dir 指向与该数据库一起创建的数据目录（或从备份恢复密钥）。\n\
                 The database holds data encrypted with a key, but no key file is in {}: point --data-dir at the directory created with this database.",
                dir.display(),
                dir.display()
            ),
        ));
    }
    let vault = Vault::open_or_create(dir)?;
    match recorded {
        Some(fingerprint) if fingerprint == vault.fingerprint() => {}
        Some(_) => {
            return Err(AppError::invalid(
                "data_dir",
                "vault.key_mismatch",
                format!(
                    "{} 中的密钥文件不是这个数据库所用的密钥。请用 --data-dir 指向与该数据库一起创建的数据目录。\n\
                     The key file in {} is not the key this database was encrypted with: point --data-dir at the right directory.",
                    dir.display(),
                    dir.display()
                ),
            ));
        }
        None => {
            let mut tx = store.begin().await?;
            tx.insert_setting(VAULT_FINGERPRINT, &vault.fingerprint())
                .await?;
            tx.journal(
                clock.now(),
                NewEntry {
                    actor: "system".into(),
                    kind: "vault.bound".into(),
                    subject: "vault".into(),
                    payload: serde_json::json!({ "fingerprint": vault.fingerprint() }),
                },
            )
            .await?;
            tx.commit().await?;
        }
    }
    Ok(vault)
}

/// The stable name of a division level, as stored and served.
pub fn level_name(level: cishan_core::DivisionLevel) -> &'static str {
    use cishan_core::DivisionLevel as L;
    match level {
        L::District => "district",
        L::Street => "street",
        L::Town => "town",
        L::Community => "community",
        L::Village => "village",
    }
}

/// Reads a region pack from a directory holding `pack.toml` and the files it names.
pub fn load_pack_dir(dir: &Path) -> Result<RegionPack> {
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name)).map_err(|e| {
            AppError::invalid(
                "pack",
                "pack.unreadable",
                format!("无法读取区域数据包文件 {}：{e}", dir.join(name).display()),
            )
        })
    };
    let toml = read("pack.toml")?;
    let files = cishan_core::region::file_names(&toml).map_err(pack_error)?;
    let divisions = read(&files.divisions)?;
    let indicators = read(&files.indicators)?;
    RegionPack::from_sources(&toml, &divisions, &indicators).map_err(pack_error)
}

fn pack_error(e: cishan_core::PackError) -> AppError {
    AppError::invalid("pack", "pack.invalid", format!("区域数据包有误：{e}"))
}
