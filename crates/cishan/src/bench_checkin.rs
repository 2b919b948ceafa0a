//! `cishan bench checkin`: volunteer check-in bursts over HTTP with durable commits.
//!
//! The real server runs in this process on a fresh database. Organizer desks (keep-alive HTTP
//! clients sharing one staff session) scan volunteers' participant codes as fast as they can:
//! `POST /api/v1/activities/{id}/check-in` with `{"code": …}`, each scan a different volunteer
//! (or a different activity), each code fresh and used once, so every scan is a new check-in
//! that verifies a signature, uses up a nonce, takes a place under the capacity cap and writes an
//! attendance, journaled, committed before the answer (group commit: `CheckInWriter`). Codes are
//! signed before the clock starts, with the code key the server made (as each volunteer's phone
//! would have shown them). Every answer must be 201, and the database must then hold exactly one
//! attendance per success.
//!
//! A development tool: it never touches an existing database (a PostgreSQL URL names the server
//! on which a database `cishan_bench_<random>` is created and dropped). No floating point.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use cishan_app::volunteering::ActivityInput;
use cishan_app::{App, Role};
use cishan_core::code::{self, Claim, CodeKind, SigningKey};
use cishan_store::{format_instant, NewEntry, OrganizationRow, ParticipantRow, VolunteerRow};
use clap::Args;

use crate::bench::{random_u64, BenchDb};

const ORG_ID: &str = "org_bench";
const USERNAME: &str = "bench";
/// Rows per transaction while seeding volunteers.
const SEED_TX_ROWS: usize = 20_000;
/// The most volunteers seeded (each scan is a (volunteer, activity) pair never used before).
const MAX_VOLUNTEERS: u64 = 100_000;

#[derive(Debug, Clone, Args)]
pub struct CheckinArgs {
    /// Concurrent scanners, each with its own keep-alive connection.
    #[arg(long, default_value_t = 64)]
    clients: u32,
    /// How long the scanners scan.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Codes signed in advance (the most check-ins the run can make).
    #[arg(long, default_value_t = 150_000)]
    scans: u64,
    /// A PostgreSQL server URL (a fresh database is created on it and dropped afterwards), or
    /// sqlite://PATH of a file that does not exist yet. By default a fresh SQLite file in a
    /// temporary directory.
    #[arg(long, value_name = "URL")]
    db: Option<String>,
}

pub async fn run(args: CheckinArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.clients > 0, "--clients must be at least 1");
    anyhow::ensure!(args.scans > 0, "--scans must be at least 1");
    anyhow::ensure!(
        args.seconds <= 60,
        "--seconds must be at most 60: participant codes are valid for 90 seconds"
    );
    let db = BenchDb::create(args.db.as_deref()).await?;
    let outcome = bench(&db, &args).await;
    db.remove().await?;
    outcome
}

fn volunteer_id(n: u64) -> String {
    format!("ptc_{n:020x}")
}

/// One organization and `count` registered volunteers.
async fn seed(app: &App, count: u64) -> anyhow::Result<()> {
    let created = format_instant("2024-01-01T00:00:00Z".parse()?);
    let mut tx = app.store().begin().await?;
    tx.insert(&OrganizationRow {
        id: ORG_ID.into(),
        participant_id: None,
        name: "基准测试志愿者协会（演示）".into(),
        credit_code: "51330302MJ8998765X".into(),
        kind: "social_group".into(),
        division_code: None,
        registered_on: "2021-05-01".into(),
        created_at: created.clone(),
        is_charity: true,
        public_fundraising: false,
        synthetic: true,
    })
    .await?;
    tx.commit().await?;
    let ids: Vec<u64> = (0..count).collect();
    for chunk in ids.chunks(SEED_TX_ROWS) {
        let participants: Vec<ParticipantRow> = chunk
            .iter()
            .map(|&n| ParticipantRow {
                id: volunteer_id(n),
                kind: "person".into(),
                display_name: "基准测试志愿者".into(),
                id_number_digest: None,
                id_number_masked: None,
                id_number_cipher: None,
                division_code: None,
                created_at: created.clone(),
                synthetic: true,
            })
            .collect();
        let volunteers: Vec<VolunteerRow> = chunk
            .iter()
            .map(|&n| VolunteerRow {
                participant_id: volunteer_id(n),
                volunteer_number: format!("BENCH{n:010}"),
                registered_at: created.clone(),
            })
            .collect();
        let mut tx = app.store().begin().await?;
        tx.insert_all(&participants).await?;
        tx.insert_all(&volunteers).await?;
        tx.journal(
            jiff::Timestamp::now(),
            NewEntry {
                actor: "bench".into(),
                kind: "bench.seeded".into(),
                subject: "bench".into(),
                payload: serde_json::json!({ "volunteers": chunk.len() }),
            },
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// What one scanner saw.
#[derive(Debug, Default)]
struct Report {
    latencies_us: Vec<u64>,
    failures: u64,
    first_failure: Option<String>,
    ran_out: bool,
}

async fn bench(db: &BenchDb, args: &CheckinArgs) -> anyhow::Result<()> {
    let app = db.open().await?;
    let password = format!("bench-{:016x}", random_u64());
    let staff = app
        .create_user(None, USERNAME, "基准测试组织者", &password, Role::Staff)
        .await
        .context("cannot create the bench organizer")?;
    let volunteers = args.scans.min(MAX_VOLUNTEERS);
    let activities = args.scans.div_ceil(volunteers);
    let seeding = Instant::now();
    seed(&app, volunteers).await?;
    let now = jiff::Timestamp::now();
    let mut activity_ids = Vec::new();
    for a in 0..activities {
        let view = app
            .create_activity(
                &staff,
                &ActivityInput {
                    title: format!("基准测试签到活动 {a}"),
                    category: "daily_care".into(),
                    organizer_org_id: ORG_ID.into(),
                    division_code: "330302006".into(),
                    address: "基准测试地址".into(),
                    starts_at: now
                        .checked_sub(jiff::SignedDuration::from_mins(30))?
                        .to_string(),
                    ends_at: now
                        .checked_add(jiff::SignedDuration::from_hours(3))?
                        .to_string(),
                    capacity: i64::try_from(volunteers)?,
                    ..ActivityInput::default()
                },
            )
            .await?;
        activity_ids.push(view.id);
    }
    let seeded = seeding.elapsed();

    // Sign every scan's code ahead, with the key the server made, as phones would show them.
    let seed_bytes: [u8; 32] = std::fs::read(db.data_dir().join("keys").join("code.key"))?
        .as_slice()
        .try_into()
        .context("the code key file is not 32 bytes")?;
    let key = SigningKey::from_bytes(&seed_bytes);
    let issued_at = jiff::Timestamp::now().as_second();
    let clients = usize::try_from(args.clients)?;
    let mut work: Vec<Vec<(String, String)>> = vec![Vec::new(); clients];
    for k in 0..args.scans {
        let claim = Claim {
            kind: CodeKind::Participant,
            subject: volunteer_id(k % volunteers),
            issued_at,
            valid_seconds: code::PARTICIPANT_VALID_SECONDS,
            nonce: random_u64() ^ k,
        };
        let payload = code::sign(&claim, &key)?;
        let activity = &activity_ids[usize::try_from(k / volunteers)?];
        work[usize::try_from(k)? % clients].push((
            format!("/api/v1/activities/{activity}/check-in"),
            serde_json::json!({ "code": payload }).to_string(),
        ));
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot listen on 127.0.0.1:0")?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(cishan_web::serve(app.clone(), listener, async move {
        let _ = stopped.await;
    }));
    let outcome = scan(&app, &base, &password, db, args, work, seeded).await;
    let _ = stop.send(());
    server
        .await
        .context("the server task failed")?
        .context("the server stopped with an error")?;
    app.close().await;
    outcome
}

async fn scan(
    app: &App,
    base: &str,
    password: &str,
    db: &BenchDb,
    args: &CheckinArgs,
    work: Vec<Vec<(String, String)>>,
    seeded: Duration,
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
    let base: Arc<str> = base.into();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for jobs in work {
        let (token, base) = (Arc::clone(&token), Arc::clone(&base));
        tasks.push(tokio::spawn(async move {
            scanner(&base, &token, jobs, deadline).await
        }));
    }
    let mut report = Report::default();
    for task in tasks {
        let one = task.await.context("a scanner task failed")??;
        report.latencies_us.extend(one.latencies_us);
        report.failures += one.failures;
        report.ran_out |= one.ran_out;
        if report.first_failure.is_none() {
            report.first_failure = one.first_failure;
        }
    }
    let elapsed = started.elapsed();
    let successes = u64::try_from(report.latencies_us.len())?;
    let stored = u64::try_from(app.store().count_attendances().await?)?;
    report.latencies_us.sort_unstable();

    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "cishan bench checkin: {}; {} scanners for {} s (POST /api/v1/activities/{{id}}/check-in, organizer scans a fresh participant code each time)",
        db.label(), args.clients, args.seconds
    )?;
    writeln!(
        out,
        "seeded: {} volunteers in {} ms",
        args.scans.min(MAX_VOLUNTEERS),
        seeded.as_millis()
    )?;
    writeln!(out, "check-ins: {successes}")?;
    writeln!(out, "failures: {}", report.failures)?;
    if let Some(first) = &report.first_failure {
        writeln!(out, "first failure: {first}")?;
    }
    if report.ran_out {
        writeln!(
            out,
            "note: scanners ran out of codes before the time was up (raise --scans)"
        )?;
    }
    writeln!(
        out,
        "check-ins/s: {} (over {} ms)",
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
        "database: {stored} attendances ({})",
        if stored == successes {
            "= successes"
        } else {
            "DIFFERS from successes"
        }
    )?;
    out.flush()?;
    anyhow::ensure!(
        stored == successes,
        "the database holds {stored} attendances but {successes} check-ins succeeded"
    );
    anyhow::ensure!(report.failures == 0, "{} scan(s) failed", report.failures);
    Ok(())
}

async fn scanner(
    base: &str,
    token: &str,
    jobs: Vec<(String, String)>,
    deadline: Instant,
) -> anyhow::Result<Report> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()?;
    let mut report = Report::default();
    let mut jobs = jobs.into_iter();
    while Instant::now() < deadline {
        let Some((path, body)) = jobs.next() else {
            report.ran_out = true;
            break;
        };
        let sent = Instant::now();
        let answer = client
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
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

fn millis(us: u64) -> String {
    format!("{}.{:03}", us / 1_000, us % 1_000)
}

fn per_second(count: u64, elapsed: Duration) -> String {
    let us = elapsed.as_micros().max(1);
    let tenths = u128::from(count) * 10_000_000 / us;
    format!("{}.{}", tenths / 10, tenths % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volunteer_ids_are_participant_ids() {
        assert_eq!(volunteer_id(255), "ptc_000000000000000000ff");
        assert_eq!(per_second(5_000, Duration::from_secs(1)), "5000.0");
        assert_eq!(percentile(&[1, 2, 3, 4], 500), 2);
    }
}
