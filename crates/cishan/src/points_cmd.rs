//! `cishan points recompute --rules FILE [--dry-run]`: publish a points rule version and turn
//! every difference into adjustment entries (or only show them), and `cishan points sync`: the
//! cron entry that turns new donations, refunds and card point conversions into acts and expires
//! due lots. See docs/points.md.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::{open_app, AppArgs};

#[derive(Debug, Subcommand)]
pub enum PointsCommand {
    /// Publish a rule version and recompute everyone's points (adjustment entries only).
    Recompute(RecomputeArgs),
    /// Bring donations, refunds and card point conversions into points; expire due lots.
    Sync(SyncArgs),
}

#[derive(Debug, Args)]
pub struct RecomputeArgs {
    #[command(flatten)]
    app: AppArgs,
    /// The rule set (TOML), e.g. rules/points-lucheng-v1.toml.
    #[arg(long, value_name = "FILE")]
    rules: PathBuf,
    /// Only report who would change and by how much; write nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    app: AppArgs,
}

pub async fn run(command: PointsCommand) -> anyhow::Result<()> {
    match command {
        PointsCommand::Recompute(args) => recompute(args).await,
        PointsCommand::Sync(args) => sync(args).await,
    }
}

async fn recompute(args: RecomputeArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.rules)
        .with_context(|| format!("cannot read {}", args.rules.display()))?;
    let app = open_app(&args.app).await?;
    let started = Instant::now();
    let report = app
        .recompute_points_as("cli", &text, args.dry_run)
        .await
        .map_err(|e| anyhow::anyhow!("{}（{}）", e.message, e.code))?;
    let ms = started.elapsed().as_millis();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{} 规则 rules {}（自 effective from {}）{}",
        if report.dry_run {
            "试算 dry run:"
        } else {
            "已发布并重算 applied:"
        },
        report.version,
        report.effective_from,
        if report.already_published {
            "，此前已发布 already published"
        } else {
            ""
        }
    )?;
    writeln!(
        out,
        "扫描 scanned {} 项行为 acts · 变化 changed {} · 涉及 participants {} 人 · 荣誉积分 honour {:+} · 可用积分 spendable {:+} · 调整记录 entries written {} · {} ms",
        report.acts_scanned,
        report.acts_changed,
        report.participants_affected,
        report.honour_delta,
        report.spendable_delta,
        report.entries_written,
        ms
    )?;
    for c in &report.changes {
        writeln!(
            out,
            "  {}  荣誉 honour {} → {}  可用 spendable {} → {}  ({} acts)",
            c.participant_id,
            c.honour_before,
            c.honour_after,
            c.spendable_before,
            c.spendable_after,
            c.acts_changed
        )?;
    }
    if report.participants_affected > i64::try_from(report.changes.len()).unwrap_or(0) {
        writeln!(
            out,
            "  …（只列出变化最大的 {} 人 largest changes listed）",
            report.changes.len()
        )?;
    }
    app.close().await;
    Ok(())
}

async fn sync(args: SyncArgs) -> anyhow::Result<()> {
    let app = open_app(&args.app).await?;
    let started = Instant::now();
    let report = app
        .sync_points(None)
        .await
        .map_err(|e| anyhow::anyhow!("{}（{}）", e.message, e.code))?;
    writeln!(
        std::io::stdout().lock(),
        "新增行为 acts recorded {} · 退款调整 refunds {} · 到期批次 lots expired {} · {} ms",
        report.acts_recorded,
        report.acts_refunded,
        report.lots_expired,
        started.elapsed().as_millis()
    )?;
    app.close().await;
    Ok(())
}
