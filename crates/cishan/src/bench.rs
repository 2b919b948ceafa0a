//! `cishan bench`: measurements on a fresh database that is thrown away afterwards.
//!
//! - `bench donations` starts the real server in this process, signs in over HTTP and has many
//!   keep-alive clients post donations (each with its own `Idempotency-Key`) for a while; every
//!   answer must be 201, and the database must then hold exactly the donations that succeeded.
//! - `bench trace` bulk-writes donations, lots, disbursements and flows, then times
//!   `App::trace` of random donations in process.
//!
//! A development tool: it never touches an existing database (a PostgreSQL URL names the server
//! on which a database `cishan_bench_<random>` is created and dropped), and it reads no
//! `CISHAN_*` settings. No floating point: rates and times are computed in integers.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use cishan_app::{App, Config, Role, SystemClock};
use cishan_store::{
    format_instant, DisbursementRow, DonationRow, FlowRow, FundRow, LotRow, NewEntry,
    OrganizationRow, ProjectRow, WriteTx,
};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::redact_url;

/// Log filter of `cishan bench` when `RUST_LOG` is not set: the server logs every response at
/// `info`, which would measure the terminal.
pub const DEFAULT_LOG: &str = "warn";

const ORG_ID: &str = "org_bench";
const FUND_ID: &str = "fnd_bench";
const PROJECT_ID: &str = "prj_bench";
const USERNAME: &str = "bench";
/// Rows per `insert_all` call while building the trace database.
const CHUNK_ROWS: usize = 10_000;
/// Rows per transaction while building the trace database.
const TX_ROWS: usize = 200_000;
/// Donations per project in the trace database.
const DONATIONS_PER_PROJECT: u64 = 1_000;

/// What to measure.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Concurrent HTTP clients posting donations to the real server.
    Donations(DonationsArgs),
    /// `App::trace` of random donations in a database of a given size.
    Trace(TraceArgs),
    /// Charity points: balance with breakdown, and a full recompute, at district scale.
    Points(crate::bench_points::PointsArgs),
    /// Volunteer check-in scans per second over HTTP (organizers scanning participant codes).
    Checkin(crate::bench_checkin::CheckinArgs),
    /// Dispatch of orders among 470,000 volunteers and 738 services: one at a time and in a batch.
    Dispatch(crate::bench_dispatch::DispatchArgs),
}

#[derive(Debug, Clone, Args)]
pub struct DonationsArgs {
    /// Concurrent clients, each with its own keep-alive connection.
    #[arg(long, default_value_t = 64)]
    clients: u32,
    /// How long the clients post.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[command(flatten)]
    db: BenchDbArg,
}

#[derive(Debug, Clone, Args)]
pub struct TraceArgs {
    /// Donations in the database.
    #[arg(long, default_value_t = 1_000_000)]
    donations: u64,
    /// Flow links (donation → disbursement) in the database, roughly.
    #[arg(long, default_value_t = 3_000_000)]
    links: u64,
    /// Traces timed.
    #[arg(long, default_value_t = 20_000)]
    samples: u64,
    #[command(flatten)]
    db: BenchDbArg,
}

#[derive(Debug, Clone, Args)]
struct BenchDbArg {
    /// A PostgreSQL server URL (a fresh database is created on it and dropped afterwards), or
    /// sqlite://PATH of a file that does not exist yet (kept afterwards for inspection with
    /// sqlite3; its keys are not). By default a fresh SQLite file in a temporary directory.
    #[arg(long, value_name = "URL")]
    db: Option<String>,
}

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Points(args) => crate::bench_points::run(args).await,
        BenchCommand::Checkin(args) => crate::bench_checkin::run(args).await,
        BenchCommand::Dispatch(args) => crate::bench_dispatch::run(args).await,
        BenchCommand::Donations(args) => {
            let db = BenchDb::create(args.db.db.as_deref()).await?;
            let outcome = donations(&db, &args).await;
            db.remove().await?;
            outcome
        }
        BenchCommand::Trace(args) => {
            anyhow::ensure!(args.donations > 0, "--donations must be at least 1");
            let db = BenchDb::create(args.db.db.as_deref()).await?;
            let outcome = trace(&db, &args).await;
            db.remove().await?;
            outcome
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The database
// ---------------------------------------------------------------------------------------------

/// A database made for one run, and how to get rid of it.
pub(crate) struct BenchDb {
    url: String,
    /// Keys (and the SQLite file unless one was named).
    dir: tempfile::TempDir,
    /// Server URL and name of a PostgreSQL database to drop at the end.
    drop_pg: Option<(String, String)>,
    label: String,
}

impl BenchDb {
    pub(crate) async fn create(db: Option<&str>) -> anyhow::Result<BenchDb> {
        let dir = tempfile::Builder::new()
            .prefix("cishan-bench-")
            .tempdir()
            .context("cannot create a temporary directory")?;
        match db {
            None => {
                let path = dir.path().join("bench.db");
                Ok(BenchDb {
                    url: format!("sqlite://{}", path.display()),
                    label: format!("SQLite, fresh file {}", path.display()),
                    dir,
                    drop_pg: None,
                })
            }
            Some(url) if url.starts_with("sqlite:") => {
                let path = url
                    .trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:");
                let path = path.split_once('?').map_or(path, |(p, _)| p);
                anyhow::ensure!(
                    !std::path::Path::new(path).exists(),
                    "{path} already exists: bench only writes a fresh database (omit --db for a temporary one)"
                );
                Ok(BenchDb {
                    url: url.to_owned(),
                    label: format!("SQLite, fresh file {path} (kept)"),
                    dir,
                    drop_pg: None,
                })
            }
            Some(server) if server.starts_with("postgres:") || server.starts_with("postgresql:") => {
                let name = format!("cishan_bench_{:016x}", random_u64());
                raw_execute(server, &format!("CREATE DATABASE {name}"))
                    .await
                    .with_context(|| format!("cannot create database {name} on {}", redact_url(server)))?;
                let (head, query) = match server.split_once('?') {
                    Some((h, q)) => (h, format!("?{q}")),
                    None => (server, String::new()),
                };
                let (base, _) = head
                    .rsplit_once('/')
                    .filter(|(b, _)| b.contains("://") && !b.ends_with('/'))
                    .unwrap_or((head, ""));
                Ok(BenchDb {
                    url: format!("{base}/{name}{query}"),
                    label: format!("PostgreSQL, fresh database {name} on {}", redact_url(base)),
                    dir,
                    drop_pg: Some((server.to_owned(), name)),
                })
            }
            Some(other) => anyhow::bail!(
                "the database URL `{}` is not supported: use postgres://USER@HOST/NAME or sqlite://PATH",
                redact_url(other)
            ),
        }
    }

    /// Where the run's keys are.
    pub(crate) fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// What the run writes to, for its first line of output.
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    pub(crate) async fn open(&self) -> anyhow::Result<App> {
        let config = Config {
            database_url: self.url.clone(),
            data_dir: self.data_dir(),
        };
        App::open(
            &config,
            cishan_core::region::embedded::lucheng(),
            Arc::new(SystemClock),
        )
        .await
        .with_context(|| format!("cannot open {}", redact_url(&self.url)))
    }

    /// Drops a PostgreSQL database made for the run; the temporary directory goes with `self`.
    pub(crate) async fn remove(self) -> anyhow::Result<()> {
        if let Some((server, name)) = &self.drop_pg {
            raw_execute(server, &format!("DROP DATABASE {name} WITH (FORCE)"))
                .await
                .with_context(|| format!("cannot drop the bench database {name}"))?;
        }
        Ok(())
    }
}

/// Runs one statement on its own connection (for CREATE and DROP DATABASE).
async fn raw_execute(url: &str, sql: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    sqlx::Executor::execute(&mut conn, sql).await?;
    conn.close().await?;
    Ok(())
}

/// A random number from the standard library's hasher keys: enough for names and seeds.
pub(crate) fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

/// SplitMix64: a small deterministic stream for amounts and sample picks.
#[derive(Debug)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One organization, fund and project, written through the store as the tests seed them.
async fn seed_holders(app: &App, projects: u64) -> anyhow::Result<()> {
    let created = format_instant("2024-01-01T00:00:00Z".parse()?);
    let mut tx = app.store().begin().await?;
    tx.insert(&OrganizationRow {
        id: ORG_ID.into(),
        participant_id: None,
        name: "基准测试慈善会（演示）".into(),
        credit_code: "91330302MA00000011".into(),
        kind: "foundation".into(),
        division_code: None,
        registered_on: "2021-05-01".into(),
        created_at: created.clone(),
        is_charity: true,
        public_fundraising: true,
        synthetic: true,
    })
    .await?;
    tx.insert(&FundRow {
        id: FUND_ID.into(),
        org_id: ORG_ID.into(),
        name: "基准测试基金".into(),
        created_at: created.clone(),
    })
    .await?;
    let rows: Vec<ProjectRow> = (0..projects)
        .map(|p| ProjectRow {
            id: project_id(p, projects),
            org_id: ORG_ID.into(),
            fund_id: Some(FUND_ID.into()),
            name: format!("基准测试项目 {p}"),
            summary: "基准测试".into(),
            goal_fen: 1_000_000,
            state: "fundraising".into(),
            division_code: None,
            created_at: created.clone(),
        })
        .collect();
    tx.insert_all(&rows).await?;
    note(
        &mut tx,
        "bench.seeded",
        serde_json::json!({ "projects": projects }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// `prj_bench` when there is one project, `prj_bench_N` otherwise.
fn project_id(p: u64, projects: u64) -> String {
    if projects == 1 {
        PROJECT_ID.to_owned()
    } else {
        format!("{PROJECT_ID}_{p:06}")
    }
}

async fn note(tx: &mut WriteTx, kind: &str, payload: serde_json::Value) -> anyhow::Result<()> {
    tx.journal(
        jiff::Timestamp::now(),
        NewEntry {
            actor: "bench".into(),
            kind: kind.into(),
            subject: "bench".into(),
            payload,
        },
    )
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// bench donations
// ---------------------------------------------------------------------------------------------

/// What one client saw.
#[derive(Debug, Default)]
struct ClientReport {
    latencies_us: Vec<u64>,
    failures: u64,
    first_failure: Option<String>,
}

async fn donations(db: &BenchDb, args: &DonationsArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.clients > 0, "--clients must be at least 1");
    let app = db.open().await?;
    let password = format!("bench-{:016x}", random_u64());
    app.create_user(None, USERNAME, "基准测试", &password, Role::Admin)
        .await
        .context("cannot create the bench administrator")?;
    seed_holders(&app, 1).await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot listen on 127.0.0.1:0")?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(cishan_web::serve(app.clone(), listener, async move {
        let _ = stopped.await;
    }));

    let outcome = post_donations(&app, &base, &password, db, args).await;
    let _ = stop.send(());
    server
        .await
        .context("the server task failed")?
        .context("the server stopped with an error")?;
    app.close().await;
    outcome
}

async fn post_donations(
    app: &App,
    base: &str,
    password: &str,
    db: &BenchDb,
    args: &DonationsArgs,
) -> anyhow::Result<()> {
    let session = reqwest::Client::new()
        .post(format!("{base}/api/v1/sessions"))
        .json(&serde_json::json!({ "username": USERNAME, "password": password }))
        .send()
        .await
        .context("cannot sign in")?;
    anyhow::ensure!(
        session.status() == 201,
        "signing in answered {}",
        session.status()
    );
    let session: serde_json::Value = session.json().await?;
    let token: Arc<str> = session["token"]
        .as_str()
        .context("no token in the session response")?
        .into();
    let url: Arc<str> = format!("{base}/api/v1/donations").into();
    let run = Duration::from_secs(args.seconds);
    let run_id = format!("{:08x}", random_u64() & 0xFFFF_FFFF);

    let started = Instant::now();
    let deadline = started + run;
    let mut clients = Vec::new();
    for c in 0..args.clients {
        let (token, url, run_id) = (Arc::clone(&token), Arc::clone(&url), run_id.clone());
        clients.push(tokio::spawn(async move {
            client_loop(c, &url, &token, &run_id, deadline).await
        }));
    }
    let mut report = ClientReport::default();
    for client in clients {
        let one = client.await.context("a client task failed")??;
        report.latencies_us.extend(one.latencies_us);
        report.failures += one.failures;
        if report.first_failure.is_none() {
            report.first_failure = one.first_failure;
        }
    }
    let elapsed = started.elapsed();
    let successes = u64::try_from(report.latencies_us.len())?;
    let stored = u64::try_from(app.store().count_rows("donations").await?)?;
    report.latencies_us.sort_unstable();

    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "cishan bench donations: {}; {} clients for {} s (POST /api/v1/donations, one Idempotency-Key each)",
        db.label, args.clients, args.seconds
    )?;
    writeln!(out, "donations: {successes}")?;
    writeln!(out, "failures: {}", report.failures)?;
    if let Some(first) = &report.first_failure {
        writeln!(out, "first failure: {first}")?;
    }
    writeln!(
        out,
        "donations/s: {} (over {} ms)",
        per_second(successes, elapsed),
        elapsed.as_millis()
    )?;
    writeln!(
        out,
        "latency ms: p50 {}  p95 {}  p99 {}  max {}",
        millis(percentile(&report.latencies_us, 500)),
        millis(percentile(&report.latencies_us, 950)),
        millis(percentile(&report.latencies_us, 990)),
        millis(report.latencies_us.last().copied().unwrap_or(0)),
    )?;
    writeln!(
        out,
        "database: {stored} donations ({})",
        if stored == successes {
            "= successes"
        } else {
            "DIFFERS from successes"
        }
    )?;
    out.flush()?;
    anyhow::ensure!(
        stored == successes,
        "the database holds {stored} donations but {successes} requests succeeded"
    );
    anyhow::ensure!(
        report.failures == 0,
        "{} request(s) failed",
        report.failures
    );
    Ok(())
}

async fn client_loop(
    client_no: u32,
    url: &str,
    token: &str,
    run_id: &str,
    deadline: Instant,
) -> anyhow::Result<ClientReport> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()?;
    let mut report = ClientReport::default();
    let mut n = 0_u64;
    while Instant::now() < deadline {
        // Half to the fund, half to the project: both kinds of lot.
        let (holder, id) = if n & 1 == 0 {
            ("fund_id", FUND_ID)
        } else {
            ("project_id", PROJECT_ID)
        };
        let body = serde_json::json!({
            "amount_fen": 100 + (n % 997) * 100,
            holder: id,
            "channel": "cash",
            "donor_name": "基准测试",
        });
        let sent = Instant::now();
        let answer = client
            .post(url)
            .bearer_auth(token)
            .header("Idempotency-Key", format!("bench-{run_id}-{client_no}-{n}"))
            .json(&body)
            .send()
            .await;
        n += 1;
        let failure = match answer {
            Ok(res) if res.status() == 201 => match res.bytes().await {
                Ok(_) => {
                    report
                        .latencies_us
                        .push(u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX));
                    continue;
                }
                Err(e) => format!("reading the answer: {e}"),
            },
            Ok(res) => {
                let status = res.status();
                format!("{status}: {}", res.text().await.unwrap_or_default())
            }
            Err(e) => format!("{e}"),
        };
        report.failures += 1;
        report.first_failure.get_or_insert(failure);
    }
    Ok(report)
}

/// The value at `per_mille` of a sorted list (nearest rank); 0 for an empty list.
fn percentile(sorted: &[u64], per_mille: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (sorted.len() * per_mille).div_ceil(1_000).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// Microseconds as milliseconds with three decimals.
fn millis(us: u64) -> String {
    format!("{}.{:03}", us / 1_000, us % 1_000)
}

/// `count` per second of `elapsed`, with one decimal.
fn per_second(count: u64, elapsed: Duration) -> String {
    let us = elapsed.as_micros().max(1);
    let tenths = u128::from(count) * 10_000_000 / us;
    format!("{}.{}", tenths / 10, tenths % 10)
}

// ---------------------------------------------------------------------------------------------
// bench trace
// ---------------------------------------------------------------------------------------------

/// Rows waiting to be written, in foreign-key order.
#[derive(Debug, Default)]
struct Pending {
    donations: Vec<DonationRow>,
    lots: Vec<LotRow>,
    disbursements: Vec<DisbursementRow>,
    flows: Vec<FlowRow>,
}

impl Pending {
    fn len(&self) -> usize {
        self.donations.len() + self.lots.len() + self.disbursements.len() + self.flows.len()
    }
}

/// What the trace database holds.
#[derive(Debug, Default)]
struct Built {
    donations: u64,
    disbursements: u64,
    flows: u64,
}

/// Writes what is pending, in insert-sized chunks, then reports progress.
struct Writer<'a> {
    app: &'a App,
    tx: Option<WriteTx>,
    in_tx: usize,
    bar: &'a ProgressBar,
    built: Built,
}

impl Writer<'_> {
    async fn flush(&mut self, pending: &mut Pending) -> anyhow::Result<()> {
        if self.tx.is_none() {
            self.tx = Some(self.app.store().begin().await?);
        }
        let tx = self.tx.as_mut().context("a transaction is open")?;
        for chunk in pending.donations.chunks(CHUNK_ROWS) {
            tx.insert_all(chunk).await?;
            self.bar.inc(u64::try_from(chunk.len())?);
        }
        for chunk in pending.lots.chunks(CHUNK_ROWS) {
            tx.insert_all(chunk).await?;
            self.bar.inc(u64::try_from(chunk.len())?);
        }
        for chunk in pending.disbursements.chunks(CHUNK_ROWS) {
            tx.insert_all(chunk).await?;
            self.bar.inc(u64::try_from(chunk.len())?);
        }
        for chunk in pending.flows.chunks(CHUNK_ROWS) {
            tx.insert_all(chunk).await?;
            self.bar.inc(u64::try_from(chunk.len())?);
        }
        self.built.donations += u64::try_from(pending.donations.len())?;
        self.built.disbursements += u64::try_from(pending.disbursements.len())?;
        self.built.flows += u64::try_from(pending.flows.len())?;
        self.in_tx += pending.len();
        *pending = Pending::default();
        if self.in_tx >= TX_ROWS {
            self.commit().await?;
        }
        Ok(())
    }

    async fn commit(&mut self) -> anyhow::Result<()> {
        if let Some(mut tx) = self.tx.take() {
            note(
                &mut tx,
                "bench.batch",
                serde_json::json!({ "rows": self.in_tx }),
            )
            .await?;
            tx.commit().await?;
        }
        self.in_tx = 0;
        Ok(())
    }
}

async fn trace(db: &BenchDb, args: &TraceArgs) -> anyhow::Result<()> {
    let app = db.open().await?;
    let outcome = trace_in(&app, db, args).await;
    app.close().await;
    outcome
}

async fn trace_in(app: &App, db: &BenchDb, args: &TraceArgs) -> anyhow::Result<()> {
    let projects = args.donations.div_ceil(DONATIONS_PER_PROJECT);
    // FIFO makes about one link per disbursement plus one per donation it consumes (90% of
    // them); the rest of the links come from disbursements.
    let disbursement_target = args
        .links
        .saturating_sub(args.donations * 9 / 10)
        .max(projects);
    let started = Instant::now();
    seed_holders(app, projects).await?;

    let estimate = args.donations * 2 + disbursement_target + args.links;
    let bar = ProgressBar::new(estimate);
    bar.set_style(
        ProgressStyle::with_template(
            "building [{bar:32}] {human_pos:>10}/{human_len:10} rows {elapsed_precise}",
        )
        .context("progress bar template")?
        .progress_chars("=> "),
    );
    let mut writer = Writer {
        app,
        tx: None,
        in_tx: 0,
        bar: &bar,
        built: Built::default(),
    };
    let mut pending = Pending::default();
    let mut rng = SplitMix(0x5EED_C15A);
    let year_start = "2024-01-01T00:00:00Z".parse::<jiff::Timestamp>()?;
    let mut next_donation = 0_u64;
    let mut next_disbursement = 0_u64;
    for p in 0..projects {
        let project = project_id(p, projects);
        let count = DONATIONS_PER_PROJECT.min(args.donations - next_donation);
        let mut held = Vec::with_capacity(usize::try_from(count)?);
        for k in 0..count {
            next_donation += 1;
            let id = format!("don_{next_donation:09}");
            let amount = i64::try_from(1 + rng.below(1_000))? * 100;
            let received = format_instant(
                year_start.checked_add(jiff::SignedDuration::from_secs(i64::try_from(k * 60)?))?,
            );
            pending.lots.push(LotRow {
                donation_id: id.clone(),
                holder_kind: "project".into(),
                holder_id: project.clone(),
                order_key: format!("{received} {id}"),
                remaining_fen: amount,
            });
            pending.donations.push(DonationRow {
                id,
                amount_fen: amount,
                currency: "CNY".into(),
                project_id: Some(project.clone()),
                received_at: received,
                org_id: Some(ORG_ID.into()),
                kind: "money".into(),
                channel: "cash".into(),
                donor_name: Some("基准测试".into()),
                ..DonationRow::default()
            });
            held.push(amount);
        }
        // Pay out 90% of what the project raised in equal parts, oldest lots first.
        let raised: i64 = held.iter().sum();
        let share = disbursement_target / projects + u64::from(p < disbursement_target % projects);
        let parts = i64::try_from(share.max(1))?;
        let to_pay = raised - raised / 10;
        let mut lot = 0_usize;
        let base_lot = pending.lots.len() - held.len();
        for part in 0..parts {
            let amount = if part == parts - 1 {
                to_pay - (to_pay / parts) * (parts - 1)
            } else {
                to_pay / parts
            };
            if amount <= 0 {
                continue;
            }
            next_disbursement += 1;
            let id = format!("dsb_{next_disbursement:09}");
            let paid = format_instant(year_start.checked_add(
                jiff::SignedDuration::from_hours(24 * 200)
                    + jiff::SignedDuration::from_secs(part * 30),
            )?);
            let mut left = amount;
            while left > 0 {
                let take = left.min(held[lot]);
                if take > 0 {
                    held[lot] -= take;
                    left -= take;
                    pending.lots[base_lot + lot].remaining_fen -= take;
                    pending.flows.push(FlowRow {
                        donation_id: pending.lots[base_lot + lot].donation_id.clone(),
                        kind: "disbursement".into(),
                        ref_id: id.clone(),
                        from_id: project.clone(),
                        to_id: id.clone(),
                        amount_fen: take,
                        at: paid.clone(),
                    });
                }
                if held[lot] == 0 {
                    lot += 1;
                }
            }
            pending.disbursements.push(DisbursementRow {
                id,
                project_id: project.clone(),
                people_count: 1,
                amount_fen: amount,
                paid_at: paid,
                recipient_kind: "household".into(),
                form: "cash".into(),
                purpose: "charitable".into(),
                state: "paid".into(),
                ..DisbursementRow::default()
            });
        }
        if pending.len() >= CHUNK_ROWS {
            writer.flush(&mut pending).await?;
        }
    }
    writer.flush(&mut pending).await?;
    writer.commit().await?;
    bar.finish_and_clear();
    let build = started.elapsed();
    let built = std::mem::take(&mut writer.built);

    // Warm the caches a little, then time every trace.
    let mut sample = SplitMix(random_u64());
    for _ in 0..args.samples.min(200) {
        let id = format!("don_{:09}", 1 + sample.below(built.donations));
        app.trace(&id).await?;
    }
    let mut times = Vec::with_capacity(usize::try_from(args.samples)?);
    let mut links = 0_usize;
    let sampling = Instant::now();
    for _ in 0..args.samples {
        let id = format!("don_{:09}", 1 + sample.below(built.donations));
        let t = Instant::now();
        let traced = app.trace(&id).await?;
        times.push(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
        anyhow::ensure!(
            traced.disbursed_fen + traced.remaining_fen == traced.donation.amount_fen,
            "the trace of {id} does not add up"
        );
        links += traced.disbursements.len();
    }
    let sampled = sampling.elapsed();
    times.sort_unstable();

    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "cishan bench trace: {}; App::trace in process, {} samples",
        db.label, args.samples
    )?;
    writeln!(
        out,
        "built: {} donations, {} disbursements, {} flow links, {} projects in {} ms ({} rows/s)",
        built.donations,
        built.disbursements,
        built.flows,
        projects,
        build.as_millis(),
        per_second(
            built.donations * 2 + built.disbursements + built.flows,
            build
        )
    )?;
    writeln!(
        out,
        "disbursements per traced donation: {}",
        per_unit(u64::try_from(links)?, args.samples)
    )?;
    writeln!(
        out,
        "trace us: p50 {}  p99 {}  max {}  ({} traces/s sequential)",
        percentile(&times, 500),
        percentile(&times, 990),
        times.last().copied().unwrap_or(0),
        per_second(args.samples, sampled)
    )?;
    out.flush()?;
    Ok(())
}

/// `total / count` with two decimals.
fn per_unit(total: u64, count: u64) -> String {
    let hundredths = total * 100 / count.max(1);
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&sorted, 500), 50);
        assert_eq!(percentile(&sorted, 990), 99);
        assert_eq!(percentile(&sorted, 1_000), 100);
        assert_eq!(percentile(&[7], 990), 7);
        assert_eq!(percentile(&[], 500), 0);
    }

    #[test]
    fn rates_are_printed_without_floating_point() {
        assert_eq!(per_second(12_345, Duration::from_secs(10)), "1234.5");
        assert_eq!(millis(1_234), "1.234");
        assert_eq!(millis(56), "0.056");
        assert_eq!(per_unit(301, 100), "3.01");
    }
}
