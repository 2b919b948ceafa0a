//! `cishan bench dispatch`: dispatch (派单) at district scale (docs/orders.md).
//!
//! Builds a fresh SQLite database with `--volunteers` volunteers (470k) spread over Lucheng's
//! communities, each with one or two service categories (as the demo gives them), `--services`
//! services (738) of organizations in the six categories with community, street or district
//! scope, households in every community, and open orders. Volunteers, households and orders are
//! generated inside SQLite (`WITH RECURSIVE` + `INSERT … SELECT`), the services through the
//! store.
//!
//! Then it measures, in release builds:
//! (0) loading the in-memory dispatch index (and the process's peak memory after it);
//! (a) ranking alone (`DispatchIndex::rank`, top 10 with explanations) of `--samples` orders;
//! (b) rank + dispatch of one order through `App::dispatch_order` (the conditional capacity
//!     UPDATE, the order's compare-and-set, attempt, event and journal rows, one commit synced
//!     to disk before it returns), for `--samples` orders: p50/p99/max;
//! (c) one batch dispatch of `--batch` open orders (`App::batch_dispatch_as`): total time.
//!
//! Targets (issue 5): (b) p99 under 10 ms; (c) under 5 s for 10,000 orders.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use cishan_app::dispatch::DispatchInput;
use cishan_app::{App, Config, Role, SystemClock};
use cishan_core::dispatch::{OrderQuery, MAX_CANDIDATES};
use cishan_core::DivisionLevel;
use cishan_store::{format_instant, NewEntry, OrganizationRow, ServiceFullRow};
use clap::Args;
use sqlx::Connection;

#[derive(Debug, Clone, Args)]
pub struct DispatchArgs {
    /// Volunteers (providers with categories).
    #[arg(long, default_value_t = 470_000)]
    volunteers: i64,
    /// Services published by organizations.
    #[arg(long, default_value_t = 738)]
    services: i64,
    /// Households the orders are for.
    #[arg(long, default_value_t = 7_660)]
    households: i64,
    /// Single dispatches timed (each takes one open order).
    #[arg(long, default_value_t = 2_000)]
    samples: i64,
    /// Open orders in the batch dispatch.
    #[arg(long, default_value_t = 10_000)]
    batch: i64,
    /// sqlite://PATH of a file that does not exist yet (kept afterwards); a temporary file by
    /// default.
    #[arg(long, value_name = "URL")]
    db: Option<String>,
}

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

fn percentile(sorted: &[u64], per_mille: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (sorted.len() * per_mille).div_ceil(1000).max(1);
    sorted[rank - 1]
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

const CATEGORIES: [&str; 6] = [
    "daily_care",
    "health",
    "schooling",
    "employment",
    "emotional_support",
    "skills",
];

pub async fn run(args: DispatchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.volunteers >= 0 && args.services >= 0,
        "counts must not be negative"
    );
    anyhow::ensure!(args.households > 0, "--households must be at least 1");
    let dir = tempfile::Builder::new()
        .prefix("cishan-bench-dispatch-")
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
        None => format!("sqlite://{}", dir.path().join("dispatch.db").display()),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "cishan bench dispatch · {url}")?;
    writeln!(
        out,
        "volunteers {} · services {} · households {} · single dispatches {} · batch {} · {} cores",
        args.volunteers,
        args.services,
        args.households,
        args.samples,
        args.batch,
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

    let started = Instant::now();
    let communities: Vec<(String, String)> = app
        .pack()
        .divisions
        .iter()
        .filter(|d| matches!(d.level, DivisionLevel::Community | DivisionLevel::Village))
        .filter_map(|d| {
            Some((
                d.code.as_str().to_owned(),
                d.parent.as_ref()?.as_str().to_owned(),
            ))
        })
        .collect();
    seed_services(&app, &communities, args.services).await?;
    generate(&url, &args, &communities).await?;
    writeln!(out, "generated in {} s", started.elapsed().as_secs())?;

    // (0) The index.
    let t = Instant::now();
    let providers = app
        .warm_dispatch_index()
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    writeln!(
        out,
        "(0) index loaded in {} ms: {} providers; peak memory (VmHWM) {} MiB",
        ms(t.elapsed()),
        providers,
        peak_mib().map_or("?".into(), |m| m.to_string())
    )?;

    // (a) Ranking alone, on a copy of the index.
    let index = app
        .load_dispatch_index()
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let week = app.week_of(app.clock().now());
    let mut samples = Vec::new();
    let mut found = 0_usize;
    for k in 0..usize::try_from(args.samples).unwrap_or(0) {
        let (community, _) = &communities[(k * 7919) % communities.len()];
        let q = OrderQuery {
            category: CATEGORIES[k % CATEGORIES.len()],
            community,
            assistance_category: Some("subsistence"),
            wanted: None,
            exclude: &[],
            week,
        };
        let t = Instant::now();
        let ranked = index
            .rank(&q, MAX_CANDIDATES)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        samples.push(micros(t.elapsed()));
        found += ranked.len();
    }
    drop(index);
    samples.sort_unstable();
    writeln!(
        out,
        "(a) rank (top {MAX_CANDIDATES}, explained) µs: p50 {}  p99 {}  max {}  ({} candidates per order on average)",
        percentile(&samples, 500),
        percentile(&samples, 990),
        samples.last().copied().unwrap_or(0),
        found / samples.len().max(1)
    )?;

    // (b) Rank + dispatch, one order at a time.
    let mut samples = Vec::new();
    let mut failed = 0_u64;
    for k in 1..=args.samples {
        let id = format!("ord_b{k:07}");
        let t = Instant::now();
        let done = app
            .dispatch_order(&admin, None, &id, &DispatchInput::default())
            .await;
        samples.push(micros(t.elapsed()));
        if done.is_err() {
            failed += 1;
        }
    }
    samples.sort_unstable();
    writeln!(
        out,
        "(b) rank + dispatch (one commit each) µs: p50 {}  p99 {}  max {}  ({} orders, {} without a free provider)",
        percentile(&samples, 500),
        percentile(&samples, 990),
        samples.last().copied().unwrap_or(0),
        samples.len(),
        failed
    )?;

    // (c) Batch dispatch of the rest.
    let t = Instant::now();
    let report = app
        .batch_dispatch_as("bench", args.batch, None)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
    writeln!(
        out,
        "(c) batch dispatch: {} ms for {} open orders ({} dispatched, {} without a free provider)",
        ms(t.elapsed()),
        report.considered,
        report.dispatched,
        report.without_candidate
    )?;
    app.close().await;
    Ok(())
}

/// Organizations and their services, through the store (as the demo writes them).
async fn seed_services(
    app: &App,
    communities: &[(String, String)],
    services: i64,
) -> anyhow::Result<()> {
    let created = format_instant(app.clock().now());
    let orgs: Vec<OrganizationRow> = (0..16)
        .map(|k| OrganizationRow {
            id: format!("org_b{k:03}"),
            participant_id: None,
            name: format!("压测服务组织{k}"),
            credit_code: format!("5233030{k:02}MJ89987X"),
            kind: "social_service".into(),
            division_code: None,
            registered_on: "2020-01-01".into(),
            created_at: created.clone(),
            is_charity: true,
            public_fundraising: false,
            synthetic: true,
        })
        .collect();
    let scopes = ["community", "street", "district"];
    let rows: Vec<ServiceFullRow> = (0..usize::try_from(services).unwrap_or(0))
        .map(|k| {
            let (community, street) = &communities[(k * 31) % communities.len()];
            let scope = scopes[k % 3];
            ServiceFullRow {
                id: format!("svc_b{k:05}"),
                provider_org_id: orgs[k % orgs.len()].id.clone(),
                category: CATEGORIES[k % CATEGORIES.len()].into(),
                name: format!("压测服务{k}"),
                division_code: Some(if scope == "street" {
                    street.clone()
                } else {
                    community.clone()
                }),
                capacity_per_week: 5 + i64::try_from(k % 40).unwrap_or(0) * 5,
                created_at: created.clone(),
                description: String::new(),
                scope: scope.into(),
                time_windows: String::new(),
                eligibility: String::new(),
                state: "published".into(),
                team_id: None,
                created_by: Some("bench".into()),
                updated_at: Some(created.clone()),
            }
        })
        .collect();
    let mut tx = app.store().begin().await?;
    tx.insert_all(&orgs).await?;
    tx.insert_all(&rows).await?;
    tx.journal(
        app.clock().now(),
        NewEntry {
            actor: "bench".into(),
            kind: "bench.seeded".into(),
            subject: "bench".into(),
            payload: serde_json::json!({ "services": rows.len() }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Volunteers (with categories), households and open orders, inside SQLite.
async fn generate(
    url: &str,
    args: &DispatchArgs,
    communities: &[(String, String)],
) -> anyhow::Result<()> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    let k = communities.len();
    let values: Vec<String> = communities
        .iter()
        .enumerate()
        .map(|(i, (c, s))| format!("({i}, '{c}', '{s}')"))
        .collect();
    let v = args.volunteers;
    let h = args.households;
    let orders = args.samples + args.batch;
    let case = |offset: i64| {
        let mut s = format!("CASE ((x + {offset}) % 6)");
        for (i, c) in CATEGORIES.iter().enumerate() {
            s.push_str(&format!(" WHEN {i} THEN '{c}'"));
        }
        s.push_str(" END");
        s
    };
    let statements = [
        "PRAGMA synchronous = OFF".to_owned(),
        "CREATE TEMP TABLE bench_communities (n INTEGER PRIMARY KEY, code TEXT, street TEXT)".to_owned(),
        format!("INSERT INTO bench_communities (n, code, street) VALUES {}", values.join(", ")),
        "BEGIN".to_owned(),
        format!(
            "INSERT INTO participants (id, kind, display_name, division_code, created_at, synthetic) \
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {v}) \
             SELECT printf('ptc_%08d', x), 'person', '志愿者' || x, b.code, '2020-01-01T00:00:00.000000Z', 1 \
             FROM c JOIN bench_communities b ON b.n = (x * 7919) % {k}"
        ),
        format!(
            "INSERT INTO volunteers (participant_id, volunteer_number, registered_at) \
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {v}) \
             SELECT printf('ptc_%08d', x), printf('ZJB%08d', x), '2020-01-01T00:00:00.000000Z' FROM c"
        ),
        format!(
            "INSERT INTO volunteer_categories (participant_id, category, rank) \
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {v}) \
             SELECT printf('ptc_%08d', x), {}, 1 FROM c",
            case(0)
        ),
        format!(
            "INSERT INTO volunteer_categories (participant_id, category, rank) \
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {v}) \
             SELECT printf('ptc_%08d', x), {}, 2 FROM c WHERE x % 3 = 0",
            case(1)
        ),
        format!(
            "INSERT INTO households (id, community_code, street_code, category, member_count, created_at, synthetic) \
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {h}) \
             SELECT printf('hh_b%06d', x), b.code, b.street, \
               CASE x % 3 WHEN 0 THEN 'subsistence' WHEN 1 THEN 'near_subsistence' ELSE 'extreme_poverty' END, \
               1, '2021-01-01T00:00:00.000000Z', 1 \
             FROM c JOIN bench_communities b ON b.n = (x * 31) % {k}"
        ),
        format!(
            "INSERT INTO orders (id, household_id, category, community_code, street_code, description, state, \
               passes, requested_by, created_at, on_behalf, credited, synthetic) \
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {orders}) \
             SELECT printf('ord_b%07d', x), hh.id, {}, hh.community_code, hh.street_code, '', 'created', \
               0, 'bench', printf('2024-01-01T00:00:00.%06dZ', x), 1, 0, 1 \
             FROM c JOIN households hh ON hh.id = printf('hh_b%06d', (x * 101) % {h} + 1)",
            case(0)
        ),
        "INSERT INTO order_events (order_id, seq, action, to_state, actor, at, on_behalf, note) \
         SELECT id, 1, 'create', 'created', 'bench', created_at, 1, '' FROM orders WHERE id LIKE 'ord_b%'"
            .to_owned(),
        "COMMIT".to_owned(),
        "ANALYZE".to_owned(),
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
