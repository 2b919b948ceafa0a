//! `cishan bench points`: charity points at district scale (docs/points.md).
//!
//! Builds a fresh SQLite database with `--participants` people (1.3M), the first `--volunteers`
//! of whom volunteer (470k), and `--acts` acts (10M) spread over 2021–2026: volunteer sessions
//! (with activity categories) for volunteers, money donations for everyone. The rows are
//! generated inside SQLite (`WITH RECURSIVE` + `INSERT … SELECT`, indexes built afterwards), so a
//! 10M-act database takes about a minute instead of the hours row-by-row inserts would.
//!
//! Then it measures:
//! (a) one participant's balance with its full breakdown (`App::points_statement`, including the
//!     pending-sync check), for `--samples` random participants: p50/p99/max;
//! (b) a full recompute of every act under a new rule version (`App::recompute_points_as`, dry
//!     run: read, sort, evaluate per participant on all cores, diff), with the peak memory of
//!     the process (`VmHWM`); with `--apply`, also the apply that writes the adjustments.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use cishan_app::rewards::LUCHENG_RULES;
use cishan_app::{App, Config, Role, SystemClock};
use clap::Args;
use sqlx::Connection;

#[derive(Debug, Clone, Args)]
pub struct PointsArgs {
    /// People in the database.
    #[arg(long, default_value_t = 1_300_000)]
    participants: i64,
    /// How many of them volunteer (they get volunteer sessions as well as donations).
    #[arg(long, default_value_t = 470_000)]
    volunteers: i64,
    /// Acts in the database (use e.g. --acts 200000 for a quick run).
    #[arg(long, default_value_t = 10_000_000)]
    acts: i64,
    /// Balances read and timed.
    #[arg(long, default_value_t = 2_000)]
    samples: u64,
    /// Also apply the new version (writes one adjustment entry per changed act: slow at 10M).
    #[arg(long)]
    apply: bool,
    /// sqlite://PATH of a file that does not exist yet (kept afterwards); a temporary file by
    /// default.
    #[arg(long, value_name = "URL")]
    db: Option<String>,
}

/// The peak resident memory of this process so far, in MiB (Linux `VmHWM`).
fn peak_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

fn ms(d: Duration) -> String {
    let us = d.as_micros();
    format!("{}.{:03}", us / 1000, us % 1000)
}

fn secs(d: Duration) -> String {
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

fn percentile(sorted: &[u64], per_mille: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (sorted.len() * per_mille).div_ceil(1000).max(1);
    sorted[rank - 1]
}

pub async fn run(args: PointsArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.participants > 0, "--participants must be at least 1");
    anyhow::ensure!(
        (0..=args.participants).contains(&args.volunteers),
        "--volunteers must be between 0 and --participants"
    );
    anyhow::ensure!(args.acts >= 0, "--acts must not be negative");
    let dir = tempfile::Builder::new()
        .prefix("cishan-bench-points-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let url = match &args.db {
        Some(url) => {
            anyhow::ensure!(url.starts_with("sqlite:"), "--db must be sqlite://PATH");
            let path = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:");
            anyhow::ensure!(
                !std::path::Path::new(path).exists(),
                "{path} exists already: name a new file"
            );
            url.clone()
        }
        None => format!("sqlite://{}", dir.path().join("points.db").display()),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "cishan bench points · {url}")?;
    writeln!(
        out,
        "participants {} · volunteers {} · acts {} · {} cores",
        args.participants,
        args.volunteers,
        args.acts,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    )?;
    let config = Config {
        database_url: url.clone(),
        data_dir: dir.path().to_owned(),
    };
    let app = App::open(
        &config,
        cishan_core::region::embedded::lucheng(),
        Arc::new(SystemClock),
    )
    .await?;
    let admin = app
        .create_user(None, "bench", "压测", "bench-password-1", Role::Admin)
        .await?;
    app.recompute_points_as("bench", LUCHENG_RULES, false)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;

    let started = Instant::now();
    generate(&url, &args).await?;
    writeln!(out, "generated in {} s", started.elapsed().as_secs())?;

    // (a) Balance with full breakdown.
    let mut samples = Vec::with_capacity(usize::try_from(args.samples).unwrap_or(0));
    let mut acts_seen = 0_usize;
    let mut h: u64 = 0x9E37_79B9_7F4A_7C15;
    let participants = u64::try_from(args.participants).unwrap_or(1);
    for _ in 0..args.samples {
        h ^= h << 13;
        h ^= h >> 7;
        h ^= h << 17;
        let p = h % participants + 1;
        let id = format!("ptc_b{p:07}");
        let t = Instant::now();
        let statement = app
            .points_statement(&admin, &id)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
        samples.push(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
        acts_seen += statement.acts.len();
    }
    samples.sort_unstable();
    writeln!(
        out,
        "(a) balance + breakdown µs: p50 {}  p99 {}  max {}  ({} samples, {} acts per statement on average)",
        percentile(&samples, 500),
        percentile(&samples, 990),
        samples.last().copied().unwrap_or(0),
        samples.len(),
        acts_seen / samples.len().max(1)
    )?;

    // (b) Recompute under a new version.
    let sync = Instant::now();
    app.sync_points(None)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let sync = sync.elapsed();
    let v2 = LUCHENG_RULES
        .replace("version = \"lucheng-v1\"", "version = \"lucheng-v2\"")
        .replace(
            "effective_from = \"2020-01-01\"",
            "effective_from = \"2024-01-01\"",
        )
        .replace(
            "step = 10000\npoints_per_step = 10",
            "step = 5000\npoints_per_step = 10",
        )
        .replace("daily_care = 120", "daily_care = 150");
    let before = peak_mib();
    let t = Instant::now();
    let report = app
        .recompute_points_as("bench", &v2, true)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let dry = t.elapsed();
    writeln!(
        out,
        "(b) recompute dry run: {} s for {} acts ({} changed, {} participants); the sync before it {} ms; peak memory (VmHWM) {} MiB (before the recompute {} MiB)",
        secs(dry),
        report.acts_scanned,
        report.acts_changed,
        report.participants_affected,
        ms(sync),
        peak_mib().map_or("?".into(), |m| m.to_string()),
        before.map_or("?".into(), |m| m.to_string()),
    )?;
    if args.apply {
        let t = Instant::now();
        let applied = app
            .recompute_points_as("bench", &v2, false)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        writeln!(
            out,
            "    apply: {} s, {} adjustment entries for {} participants",
            secs(t.elapsed()),
            applied.entries_written,
            applied.participants_affected
        )?;
    }
    app.close().await;
    Ok(())
}

/// Fills the database inside SQLite: participants, balance rows, acts; then the acts' indexes.
async fn generate(url: &str, args: &PointsArgs) -> anyhow::Result<()> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    let n = args.participants;
    let v = args.volunteers;
    let a = args.acts;
    let run = |sql: String| sql;
    let statements = [
        run("PRAGMA synchronous = OFF".into()),
        run("DROP INDEX IF EXISTS points_acts_participant".into()),
        run("DROP INDEX IF EXISTS points_acts_participant_id".into()),
        run("BEGIN".into()),
        run(format!(
            "INSERT INTO participants (id, kind, display_name, created_at, synthetic) \
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) \
             SELECT printf('ptc_b%07d', x), 'person', '参与者' || x, '2020-01-01T00:00:00.000000Z', 1 FROM c"
        )),
        run(format!(
            "INSERT INTO points_balances (participant_id, pkey, honour, spendable, debt, tier, updated_at) \
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) \
             SELECT printf('ptc_b%07d', x), x, 0, 0, 0, 'member', '2026-12-01T00:00:00.000000Z' FROM c"
        )),
        run("COMMIT".into()),
        run("BEGIN".into()),
        // h: a multiplicative hash of the act number; p: its participant; t: its instant.
        run(format!(
            "INSERT INTO points_acts (participant_id, pkey, kind_code, category, source_kind, source_id, \
               quantity, reversed_quantity, occurred_at, at_us, local_day, note, recorded_by, recorded_at) \
             SELECT printf('ptc_b%07d', p), p, \
               CASE WHEN vol THEN 3 ELSE 1 END, \
               CASE WHEN vol THEN (CASE x % 6 WHEN 0 THEN 'daily_care' WHEN 1 THEN 'health' \
                 WHEN 2 THEN 'schooling' WHEN 3 THEN 'employment' WHEN 4 THEN 'emotional_support' \
                 ELSE 'skills' END) END, \
               'bench', printf('b%010d', x), \
               CASE WHEN vol THEN 30 + (h / 7) % 480 ELSE 1000 + (h / 13) % 100000 END, 0, \
               strftime('%Y-%m-%dT%H:%M:%S', t, 'unixepoch') || '.000000Z', t * 1000000, \
               CAST(strftime('%Y%m%d', t + 28800, 'unixepoch') AS INTEGER), '', 'bench', \
               '2026-12-01T00:00:00.000000Z' \
             FROM (SELECT x, h, h % {n} + 1 AS p, (h % {n} + 1 <= {v} AND x % 4 <> 0) AS vol, \
                     1609459200 + ((h / 17) % 2160) * 86400 + (h / 19) % 86400 AS t \
                   FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {a}) \
                         SELECT x, (x * 2654435761) % 4294967296 AS h FROM c))"
        )),
        run("COMMIT".into()),
        run("CREATE INDEX points_acts_participant ON points_acts (pkey, at_us, seq)".into()),
        run("CREATE INDEX points_acts_participant_id ON points_acts (participant_id)".into()),
        run("ANALYZE".into()),
    ];
    for sql in statements {
        sqlx::query(&sql)
            .execute(&mut conn)
            .await
            .with_context(|| format!("generating: {}", sql.chars().take(60).collect::<String>()))?;
    }
    conn.close().await?;
    Ok(())
}
