//! Operator commands: `migrate`, `verify` and `user add`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use cishan_store::Store;

use crate::{check_db_url, open_app, redact_url, DbArgs, RoleArg, UserAddArgs, VerifyArgs};

/// Connects without migrating or touching keys.
async fn connect(args: &DbArgs) -> anyhow::Result<Store> {
    check_db_url(&args.db)?;
    Store::connect(&args.db)
        .await
        .with_context(|| format!("cannot connect to {}", redact_url(&args.db)))
}

pub async fn migrate(args: DbArgs) -> anyhow::Result<()> {
    let store = connect(&args).await?;
    let before = store.applied_migrations().await?;
    store.migrate().await.context("migration failed")?;
    let after = store.applied_migrations().await?;
    let known = store.migrations();
    let name = |version: i64| {
        known
            .iter()
            .find(|(v, _)| *v == version)
            .map_or_else(|| format!("{version}"), |(v, d)| format!("{v:04} {d}"))
    };
    let applied: Vec<String> = after
        .iter()
        .filter(|v| !before.contains(v))
        .map(|v| name(*v))
        .collect();
    let mut out = std::io::stdout().lock();
    if applied.is_empty() {
        writeln!(
            out,
            "数据库已是最新 the database {} is up to date ({} migration(s) applied, latest {})",
            redact_url(&args.db),
            after.len(),
            after.last().map_or_else(|| "none".to_owned(), |v| name(*v))
        )?;
    } else {
        writeln!(
            out,
            "已应用 applied {} migration(s) to {}:",
            applied.len(),
            redact_url(&args.db)
        )?;
        for line in applied {
            writeln!(out, "  {line}")?;
        }
    }
    store.close().await;
    Ok(())
}

/// Connecting would create an empty database; for commands that work on an existing one, a
/// missing file is an operator's typo.
fn require_existing(db: &str) -> anyhow::Result<()> {
    if let Some(path) = sqlite_path(db) {
        anyhow::ensure!(
            Path::new(path).exists(),
            "数据库文件不存在 database file {path} does not exist; check --db, or create it with `cishan migrate --db URL`"
        );
    }
    Ok(())
}

pub async fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    if let (Some(receipt), Some(key)) = (&args.receipt, &args.key) {
        let ok = crate::verify_receipt::run(receipt, key)?;
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let db = &args.app.db;
    require_existing(&db.db)?;
    let store = connect(db).await?;
    let report = store.verify_journal().await.context(
        "cannot read the journal (is this a cishan database? run `cishan migrate` first)",
    )?;
    store.close().await;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "日志 journal of {}: {} entries, head {}",
        redact_url(&db.db),
        report.entries,
        report.head_hash
    )?;
    let mut broken = false;
    if report.is_intact() {
        writeln!(
            out,
            "完好 intact: every entry matches its hash and links to the one before"
        )?;
    } else {
        broken = true;
        writeln!(
            out,
            "已损坏 BROKEN: {} problem(s) found",
            report.problems.len()
        )?;
        for problem in &report.problems {
            writeln!(out, "  - {problem}")?;
        }
    }
    out.flush()?;
    drop(out);
    // The transparency log and the ledger need the platform's keys (the log's public key).
    let app = open_app(&args.app).await?;
    let log = app
        .verify_log()
        .await
        .context("cannot read the transparency log")?;
    let ledger = app
        .verify_ledger()
        .await
        .context("cannot read the ledger")?;
    app.close().await;
    let mut out = std::io::stdout().lock();
    for (name, problems) in [("公开日志 transparency log", log), ("账本 ledger", ledger)] {
        if problems.is_empty() {
            writeln!(out, "{name}: 完好 intact")?;
        } else {
            broken = true;
            writeln!(out, "{name}: 已损坏 BROKEN, {} problem(s)", problems.len())?;
            for problem in &problems {
                writeln!(out, "  - {problem}")?;
            }
        }
    }
    out.flush()?;
    Ok(if broken {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The file path of a `sqlite:` URL.
fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    Some(rest.split_once('?').map_or(rest, |(path, _)| path))
}

pub async fn user_add(args: UserAddArgs) -> anyhow::Result<()> {
    require_existing(&args.app.db.db)?;
    let password = read_password()?;
    let app = open_app(&args.app).await?;
    let role = match args.role {
        RoleArg::Admin => cishan_app::Role::Admin,
        RoleArg::Staff => cishan_app::Role::Staff,
    };
    let display_name = args.display_name.as_deref().unwrap_or(&args.username);
    let created = app
        .create_user(None, &args.username, display_name, &password, role)
        .await;
    app.close().await;
    let actor = created.context("cannot create the account")?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "已创建账号 created account {} ({}, role {})",
        actor.username,
        actor.user_id,
        actor.role.as_str()
    )?;
    Ok(())
}

/// The password from `CISHAN_PASSWORD`, or else the first line of standard input.
fn read_password() -> anyhow::Result<String> {
    if let Ok(password) = std::env::var("CISHAN_PASSWORD") {
        return Ok(password);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let mut err = std::io::stderr().lock();
        write!(
            err,
            "密码 password (at least {} characters; shown as you type): ",
            cishan_app::auth::MIN_PASSWORD_CHARS
        )?;
        err.flush()?;
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    anyhow::ensure!(
        !password.is_empty(),
        "没有密码 no password given: set CISHAN_PASSWORD or type it on standard input"
    );
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_are_found() {
        assert_eq!(sqlite_path("sqlite://./a/b.db"), Some("./a/b.db"));
        assert_eq!(sqlite_path("sqlite:///tmp/x.db?mode=ro"), Some("/tmp/x.db"));
        assert_eq!(sqlite_path("postgres://x"), None);
    }
}
