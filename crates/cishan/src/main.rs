//! `cishan`: the one binary of the platform. Operators run it to serve the web interface, fill a
//! demo database, apply migrations, verify the journal and create accounts.
//!
//! Architecture invariant: the binary only wires things together (configuration, logging,
//! signals, terminal output); every rule lives in `cishan-app` and below, so the web interface
//! and the command line cannot disagree.

mod admin;
mod bench;
mod bench_checkin;
mod bench_dispatch;
mod bench_points;
mod demo;
mod import;
mod points_cmd;
mod serve;
mod verify_receipt;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The database used when neither `--db` nor `CISHAN_DB` says otherwise.
pub const DEFAULT_DB: &str = "sqlite://./cishan-data/cishan.db";
/// Where keys are kept when neither `--data-dir` nor `CISHAN_DATA_DIR` says otherwise.
pub const DEFAULT_DATA_DIR: &str = "./cishan-data";
/// The address served when neither `--bind` nor `CISHAN_BIND` says otherwise.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
/// Log filter when `RUST_LOG` is not set. sqlx only speaks up for problems.
const DEFAULT_LOG: &str = "info,sqlx=warn";
/// The same for `cishan demo`, which also silences the one line per indicator actual it enters.
const DEFAULT_DEMO_LOG: &str = "info,sqlx=warn,cishan_app::indicators=warn";

/// 慈善鹿城 cishan — an open-source charity platform (Lucheng District, Wenzhou).
#[derive(Debug, Parser)]
#[command(name = "cishan", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the web interface and the JSON API.
    Serve(ServeArgs),
    /// Fill a database with deterministic synthetic demo data, then serve it.
    Demo(DemoArgs),
    /// Apply pending database migrations.
    Migrate(DbArgs),
    /// Check the journal's hash chain, the transparency log and the ledger against the database
    /// (or, with --receipt and --key, one receipt offline); exits with 1 when anything is wrong.
    Verify(VerifyArgs),
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Measure donations per second over HTTP, or trace latency, on a fresh database.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Import people or volunteers from a roster (CSV or XLSX); `sample` writes a synthetic one.
    #[command(subcommand)]
    Import(import::ImportCommand),
    /// Charity points: publish a rule version and recompute, or sync donations into points.
    #[command(subcommand)]
    Points(points_cmd::PointsCommand),
}

/// Which database.
#[derive(Debug, Clone, Args)]
struct DbArgs {
    /// Database URL: sqlite://PATH or postgres://USER@HOST/NAME.
    #[arg(long, env = "CISHAN_DB", default_value = DEFAULT_DB, value_name = "URL")]
    db: String,
}

/// What `verify` checks: the whole database, or one receipt document offline.
#[derive(Debug, Clone, Args)]
struct VerifyArgs {
    #[command(flatten)]
    app: AppArgs,
    /// A receipt document saved from GET /api/v1/receipts/{number}: checked offline against
    /// --key, without any database.
    #[arg(long, value_name = "FILE", requires = "key")]
    receipt: Option<PathBuf>,
    /// The platform's public key, saved from GET /api/v1/log/key (or its bare base64).
    #[arg(long, value_name = "FILE", requires = "receipt")]
    key: Option<PathBuf>,
}

/// What opening the application needs: database, keys and region pack.
#[derive(Debug, Clone, Args)]
struct AppArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Directory holding the keys that protect personal data (keep it out of the database backup).
    #[arg(long, env = "CISHAN_DATA_DIR", default_value = DEFAULT_DATA_DIR, value_name = "DIR")]
    data_dir: PathBuf,
    /// Region pack directory (pack.toml and its CSV files); the built-in Lucheng pack by default.
    #[arg(long, env = "CISHAN_PACK", value_name = "DIR")]
    pack: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
struct ServeArgs {
    #[command(flatten)]
    app: AppArgs,
    /// Address to listen on, e.g. 127.0.0.1:8080 or 0.0.0.0:80 (port 0 picks a free port).
    #[arg(long, env = "CISHAN_BIND", default_value = DEFAULT_BIND, value_name = "ADDR")]
    bind: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ScaleArg {
    /// A few thousand rows, in seconds.
    Small,
    /// The plan's district: 1.3 million residents, 470,000 volunteers (about a minute, 550 MB).
    District,
}

impl From<ScaleArg> for cishan_app::demo::Scale {
    fn from(scale: ScaleArg) -> Self {
        match scale {
            ScaleArg::Small => cishan_app::demo::Scale::Small,
            ScaleArg::District => cishan_app::demo::Scale::District,
        }
    }
}

#[derive(Debug, Clone, Args)]
struct DemoArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// How much data to generate.
    #[arg(long, value_enum, default_value_t = ScaleArg::Small)]
    scale: ScaleArg,
    /// Seed of the generator: the same seed gives the same data.
    #[arg(long, default_value_t = 2021)]
    seed: u64,
    /// Fill the database and exit instead of serving it.
    #[arg(long)]
    no_serve: bool,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account. The password is read from CISHAN_PASSWORD, or else from standard input.
    Add(UserAddArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RoleArg {
    /// District administrator: everything, including accounts.
    Admin,
    /// District staff: records data.
    Staff,
}

#[derive(Debug, Clone, Args)]
struct UserAddArgs {
    #[command(flatten)]
    app: AppArgs,
    /// Sign-in name: letters, digits, `.`, `_` and `-`.
    #[arg(long)]
    username: String,
    #[arg(long, value_enum)]
    role: RoleArg,
    /// Name shown in the interface; the username by default.
    #[arg(long)]
    display_name: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(match cli.command {
        Command::Demo(_) => DEFAULT_DEMO_LOG,
        Command::Bench(_) => bench::DEFAULT_LOG,
        _ => DEFAULT_LOG,
    });
    let outcome = match cli.command {
        Command::Serve(args) => serve::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Demo(args) => demo::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Migrate(args) => admin::migrate(args).await.map(|()| ExitCode::SUCCESS),
        Command::Verify(args) => admin::verify(args).await,
        Command::User(UserCommand::Add(args)) => {
            admin::user_add(args).await.map(|()| ExitCode::SUCCESS)
        }
        Command::Bench(command) => bench::run(command).await.map(|()| ExitCode::SUCCESS),
        Command::Import(command) => import::run(command).await.map(|()| ExitCode::SUCCESS),
        Command::Points(command) => points_cmd::run(command).await.map(|()| ExitCode::SUCCESS),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            // The one place errors reach the operator: the chain says what failed and why.
            tracing::debug!(error = ?error, "command failed");
            eprintln_error(&error);
            ExitCode::FAILURE
        }
    }
}

fn eprintln_error(error: &anyhow::Error) {
    use std::io::Write;
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "错误 error: {error}");
    for cause in error.chain().skip(1) {
        let _ = writeln!(stderr, "  原因 caused by: {cause}");
    }
}

/// Logs go to stderr, filtered by `RUST_LOG` (`default` when unset). Nothing logged names a
/// person.
fn init_logging(default: &str) {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

/// Opens the application (migrating the database) as `args` say, with the real clock.
async fn open_app(args: &AppArgs) -> anyhow::Result<cishan_app::App> {
    check_db_url(&args.db.db)?;
    let pack = match &args.pack {
        Some(dir) => cishan_app::load_pack_dir(dir)
            .with_context(|| format!("cannot load the region pack in {}", dir.display()))?,
        None => cishan_core::region::embedded::lucheng(),
    };
    let config = cishan_app::Config {
        database_url: args.db.db.clone(),
        data_dir: args.data_dir.clone(),
    };
    cishan_app::App::open(&config, pack, Arc::new(cishan_app::SystemClock))
        .await
        .with_context(|| format!("cannot open the database {}", redact_url(&args.db.db)))
}

/// Rejects a URL the store cannot use, with the forms it can.
fn check_db_url(url: &str) -> anyhow::Result<()> {
    let ok = ["sqlite:", "postgres:", "postgresql:"]
        .iter()
        .any(|scheme| url.starts_with(scheme));
    anyhow::ensure!(
        ok,
        "数据库地址无效 the database URL `{}` is not supported: use sqlite://PATH (e.g. {DEFAULT_DB}) or postgres://USER@HOST/NAME",
        redact_url(url)
    );
    Ok(())
}

/// The URL without a password, for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Completes on Ctrl-C or SIGTERM, for a graceful shutdown.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutdown requested; finishing open requests");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn passwords_are_not_repeated_in_messages() {
        assert_eq!(
            redact_url("postgres://cishan:secret@db.example/cishan"),
            "postgres://cishan:***@db.example/cishan"
        );
        assert_eq!(redact_url("sqlite://./x.db"), "sqlite://./x.db");
        assert!(check_db_url("mysql://x").is_err());
        assert!(check_db_url("sqlite://./x.db").is_ok());
    }
}
