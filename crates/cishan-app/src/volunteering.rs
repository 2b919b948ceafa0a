//! Volunteering (志愿服务): teams, activities, check-in and check-out by scan in either
//! direction, organizer verification, service records, star levels and certificates.
//!
//! - Check-in: the volunteer (signed in as themself) scans the activity's code, or the
//!   organizer (staff) scans the volunteer's participant code. Scanning again while checked in
//!   changes nothing and returns the existing session; capacity is a conditional UPDATE inside
//!   the write transaction, so concurrent check-ins never pass it. Check-ins go through a
//!   group-commit writer ([`CheckInWriter`]): many scans, one transaction, each scanner answered
//!   after the commit.
//! - Check-out without check-in is refused (409). Durations are whole minutes between UTC
//!   instants (`cishan_core::volunteer`).
//! - Hours count only once the organizer verifies the session: verification writes one service
//!   record per local day, each capped by the daily maximum; withdrawing it marks those records
//!   withdrawn. Stars and certificates read verified hours only.

use std::collections::HashMap;

use cishan_core::code::{Claim, CodeKind};
use cishan_core::mask_name;
use cishan_core::volunteer::{
    credit_within_daily_max, hours_text, minutes_by_local_day, session_minutes, VolunteerRules,
};
use cishan_store::{
    format_instant, parse_instant, ActivityRow, AttendanceRow, CertificateRow, NewEntry,
    ServiceRecordDetail, TeamMemberRow, TeamRow, WriteTx,
};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::codes::CodePurpose;
use crate::donations::new_id;
use crate::{Actor, App, AppError, ErrorKind, Result};

/// Check-ins committed together at most.
pub const MAX_CHECK_IN_BATCH: usize = 256;
/// Check-ins that may wait for the writer before scanners are slowed down.
const CHECK_IN_QUEUE_DEPTH: usize = 8_192;
/// How early before an activity starts volunteers may check in.
pub const CHECK_IN_OPENS_MINUTES_BEFORE: i64 = 60;
/// Longest activity accepted: a week.
const MAX_ACTIVITY_HOURS: i64 = 7 * 24;
/// Largest capacity of one activity.
pub const MAX_CAPACITY: i64 = 100_000;
/// Attendances an activity page lists at most.
pub const MAX_ATTENDANCE_ROWS: i64 = 1_000;
/// Service records a volunteer's page lists at most.
const MAX_RECORD_ROWS: i64 = 200;
/// Longest text field (title, address, content…) accepted.
const MAX_TEXT_CHARS: usize = 500;
/// Settings that hold the volunteer rules.
const DAILY_MAX_SETTING: &str = "volunteer_daily_max_minutes";
const STAR_HOURS_SETTING: &str = "volunteer_star_hours";
/// The source kind of the points act of a verified session.
pub const POINTS_SOURCE: &str = "volunteer_session";
/// Prune used code nonces every this many check-in batches.
const PRUNE_EVERY_BATCHES: u64 = 64;

// ---------------------------------------------------------------------------------------------
// Inputs and views

/// A new activity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityInput {
    pub title: String,
    /// A service category code of the region pack (e.g. `daily_care`).
    pub category: String,
    #[serde(default)]
    pub content: Option<String>,
    /// Who the service is for (服务对象).
    #[serde(default)]
    pub recipients: Option<String>,
    pub organizer_org_id: String,
    #[serde(default)]
    pub team_id: Option<String>,
    /// A division code of the region pack (street, town, community or village).
    pub division_code: String,
    pub address: String,
    /// RFC 3339 instants.
    pub starts_at: String,
    pub ends_at: String,
    pub capacity: i64,
}

/// An activity as shown to organizers and volunteers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ActivityView {
    pub id: String,
    pub title: String,
    pub category: String,
    pub category_name: String,
    pub content: String,
    pub recipients: String,
    pub organizer_org_id: String,
    pub organizer_name: String,
    pub team_id: Option<String>,
    pub division_code: String,
    pub division_name: String,
    pub address: String,
    pub starts_at: String,
    pub ends_at: String,
    pub capacity: i64,
    pub checked_in: i64,
    /// The activity's long-lived signed code, for volunteers to scan.
    pub code: String,
}

/// A scan sent to check in or out: an activity code (scanned by the volunteer) or a
/// participant code (scanned by the organizer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanCodeInput {
    pub code: String,
}

/// One volunteer's session at one activity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionView {
    pub attendance_id: String,
    pub activity_id: String,
    pub participant_id: String,
    pub display_name_masked: String,
    /// `checked_in`, `checked_out` or `verified`.
    pub state: String,
    pub checked_in_at: String,
    pub checked_out_at: Option<String>,
    /// Whole minutes from check-in to check-out.
    pub duration_minutes: Option<i64>,
    /// Minutes that count (after verification and the daily maximum).
    pub credited_minutes: i64,
    /// `activity_code` or `participant_code`.
    pub check_in_method: String,
    pub evaluation: Option<String>,
    /// True when the scan changed nothing (already checked in, or already checked out).
    pub unchanged: bool,
}

/// An organizer's verification of a session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyInput {
    /// Quality evaluation (服务质量评价), e.g. 优秀 / 良好 / 合格.
    #[serde(default)]
    pub evaluation: Option<String>,
}

/// Taking a verification back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawInput {
    pub reason: String,
}

/// A new team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamInput {
    pub org_id: String,
    pub name: String,
}

/// A team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TeamView {
    pub id: String,
    pub org_id: String,
    pub name: String,
}

/// A certificate to issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateInput {
    pub issuing_org_id: String,
    /// What the service was (服务内容).
    pub content: String,
    /// The issuing organization's contact (phone or address).
    #[serde(default)]
    pub contact: Option<String>,
}

/// A certificate as anyone may see it: personal data masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CertificateView {
    pub number: String,
    pub issued_on: String,
    pub issuing_org_id: String,
    pub issuing_org_name: String,
    pub contact: String,
    pub volunteer_name_masked: String,
    pub id_number_masked: Option<String>,
    pub volunteer_number: Option<String>,
    pub minutes: i64,
    pub hours_text: String,
    pub content: String,
    /// The certificate's long-lived signed code.
    pub code: String,
}

/// A service record as the volunteer sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ServiceRecordView {
    pub id: String,
    pub served_on: String,
    pub minutes: i64,
    pub activity_title: Option<String>,
    pub content: String,
    pub place: Option<String>,
    pub recipients: Option<String>,
    pub evaluation: Option<String>,
    pub organizer_name: Option<String>,
    pub recorded_by: Option<String>,
    /// `valid` or `withdrawn`.
    pub state: String,
}

/// A volunteer's hours: verified minutes, stars, records, sessions awaiting verification and
/// certificates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HoursView {
    pub participant_id: String,
    pub volunteer_number: Option<String>,
    pub verified_minutes: i64,
    pub hours_text: String,
    pub stars: u8,
    pub hours_to_next_star: Option<i64>,
    pub star_hours: Vec<i64>,
    pub records: Vec<ServiceRecordView>,
    /// Sessions checked in or out but not verified: they do not count yet.
    pub pending: Vec<SessionView>,
    pub certificates: Vec<CertificateView>,
}

/// The volunteer rules of this deployment, as set by an administrator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolunteerRulesInput {
    pub daily_max_minutes: i64,
    pub star_hours: Vec<i64>,
}

// ---------------------------------------------------------------------------------------------
// Validation helpers

fn text(field: &str, value: &str, what: &str, required: bool) -> Result<String> {
    let v = value.trim();
    if v.is_empty() && required {
        return Err(AppError::invalid(
            field,
            format!("{field}.required"),
            format!("请填写{what}。"),
        ));
    }
    if v.chars().count() > MAX_TEXT_CHARS {
        return Err(AppError::invalid(
            field,
            format!("{field}.too_long"),
            format!("{what}不能超过 {MAX_TEXT_CHARS} 个字。"),
        ));
    }
    if v.chars().any(|c| c.is_control() && c != '\n' && c != '\r') {
        return Err(AppError::invalid(
            field,
            format!("{field}.invalid"),
            format!("{what}含有不可见的控制字符，请重新输入。"),
        ));
    }
    Ok(v.to_owned())
}

fn instant(field: &str, value: &str, what: &str) -> Result<Timestamp> {
    value.trim().parse::<Timestamp>().map_err(|_| {
        AppError::invalid(
            field,
            format!("{field}.invalid"),
            format!("{what}应为带时区的时间，例如 2024-03-01T09:00:00+08:00。"),
        )
    })
}

fn stored_instant(text: &str) -> Result<Timestamp> {
    parse_instant(text).map_err(AppError::internal)
}

fn masked(name: &str, kind: &str) -> String {
    if kind == "organization" {
        name.to_owned()
    } else {
        mask_name(name)
    }
}

fn session_view(row: &AttendanceRow, name_masked: String, unchanged: bool) -> SessionView {
    SessionView {
        attendance_id: row.id.clone(),
        activity_id: row.activity_id.clone(),
        participant_id: row.participant_id.clone(),
        display_name_masked: name_masked,
        state: row.state.clone(),
        checked_in_at: row.checked_in_at.clone(),
        checked_out_at: row.checked_out_at.clone(),
        duration_minutes: row.duration_minutes,
        credited_minutes: row.credited_minutes,
        check_in_method: row.check_in_method.clone(),
        evaluation: row.evaluation.clone(),
        unchanged,
    }
}

fn not_a_volunteer() -> AppError {
    AppError::conflict(
        "volunteer.not_registered",
        "此人尚未注册为志愿者，不能签到。请先办理志愿者注册（或导入志愿者名册）。",
    )
}

fn activity_full(capacity: i64) -> AppError {
    AppError::conflict(
        "activity.full",
        format!("本活动名额已满（{capacity} 人），不能再签到。"),
    )
}

fn wrong_scan_kind() -> AppError {
    AppError::invalid(
        "code",
        "code.wrong_kind",
        "签到签退需要扫描活动码（志愿者本人扫）或个人一码通（组织者扫）。",
    )
}

/// Who is being checked in or out, and how.
#[derive(Debug, Clone)]
struct Scanned {
    participant_id: String,
    method: &'static str,
    /// A participant code to use up (organizer scans); `None` for activity codes.
    claim: Option<Claim>,
}

// ---------------------------------------------------------------------------------------------
// The check-in writer (group commit)

type Reply = oneshot::Sender<Result<SessionView>>;

#[derive(Debug)]
struct CheckInJob {
    actor_id: String,
    activity_id: String,
    scanned: Scanned,
    reply: Reply,
}

/// The queue in front of the check-in writer task. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct CheckInWriter {
    queue: mpsc::Sender<CheckInJob>,
}

impl CheckInWriter {
    pub(crate) fn start(app: App) -> CheckInWriter {
        let (queue, mut rx) = mpsc::channel::<CheckInJob>(CHECK_IN_QUEUE_DEPTH);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_CHECK_IN_BATCH);
            let mut batches = 0_u64;
            while rx.recv_many(&mut batch, MAX_CHECK_IN_BATCH).await > 0 {
                batches += 1;
                let prune = batches.is_multiple_of(PRUNE_EVERY_BATCHES);
                run_check_in_batch(&app, std::mem::take(&mut batch), prune).await;
            }
        });
        CheckInWriter { queue }
    }

    async fn submit(
        &self,
        actor_id: String,
        activity_id: String,
        scanned: Scanned,
    ) -> Result<SessionView> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(CheckInJob {
                actor_id,
                activity_id,
                scanned,
                reply,
            })
            .await
            .map_err(|_| AppError::internal(std::io::Error::other("check-in writer stopped")))?;
        answer.await.map_err(|_| {
            AppError::internal(std::io::Error::other("check-in writer dropped a request"))
        })?
    }
}

async fn run_check_in_batch(app: &App, jobs: Vec<CheckInJob>, prune: bool) {
    let refs: Vec<&CheckInJob> = jobs.iter().collect();
    match apply_together(app, &refs, prune).await {
        Ok(results) => {
            for (job, result) in jobs.into_iter().zip(results) {
                let _ = job.reply.send(result);
            }
        }
        Err(e) => {
            // Something failed in the database, not a refusal: run each alone so one bad
            // request cannot fail the others.
            tracing::debug!(error = %e, jobs = jobs.len(), "check-in group commit fell back to one transaction per request");
            for job in jobs {
                let result = match apply_together(app, &[&job], false).await {
                    Ok(mut results) => results.pop().unwrap_or_else(|| {
                        Err(AppError::internal(std::io::Error::other("no result")))
                    }),
                    Err(e) => Err(e),
                };
                let _ = job.reply.send(result);
            }
        }
    }
}

/// What one batch has admitted so far to one activity.
struct ActivityInBatch {
    row: ActivityRow,
    admitted: i64,
    check_ins: Vec<serde_json::Value>,
}

/// Applies check-ins in one transaction. A refusal (full, replayed, outside the time window…)
/// writes nothing for that request and is its result; an `Err` means the transaction failed.
async fn apply_together(
    app: &App,
    jobs: &[&CheckInJob],
    prune: bool,
) -> Result<Vec<Result<SessionView>>> {
    let now = app.clock().now();
    let now_text = format_instant(now);
    let mut tx = app.store().begin().await?;
    tx.lock_writes().await?;
    let mut activities: HashMap<String, Option<ActivityInBatch>> = HashMap::new();
    // Check-ins admitted in this batch, by (activity, participant): a double scan in one batch
    // returns the first.
    let mut admitted: HashMap<(String, String), (AttendanceRow, String)> = HashMap::new();
    let mut rows = Vec::new();
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        let result = check_in_one(
            app,
            &mut tx,
            job,
            now,
            &now_text,
            &mut activities,
            &mut admitted,
            &mut rows,
        )
        .await?;
        results.push(result);
    }
    for (id, state) in &activities {
        let Some(state) = state else { continue };
        if state.admitted == 0 {
            continue;
        }
        if !tx.admit_to_activity(id, state.admitted).await? {
            // The writer holds the write lock, so the count read above cannot have moved.
            return Err(AppError::internal(std::io::Error::other(
                "activity capacity changed under the write lock",
            )));
        }
        tx.journal(
            now,
            NewEntry {
                actor: "volunteering".into(),
                kind: "volunteer.checked_in".into(),
                subject: id.clone(),
                payload: serde_json::json!({ "check_ins": state.check_ins }),
            },
        )
        .await?;
    }
    if !rows.is_empty() {
        tx.insert_all(&rows).await?;
    }
    if prune {
        app.prune_code_nonces_in(&mut tx).await?;
    }
    tx.commit().await?;
    Ok(results)
}

#[expect(
    clippy::too_many_arguments,
    reason = "the batch's shared state, passed explicitly"
)]
async fn check_in_one(
    app: &App,
    tx: &mut WriteTx,
    job: &CheckInJob,
    now: Timestamp,
    now_text: &str,
    activities: &mut HashMap<String, Option<ActivityInBatch>>,
    admitted: &mut HashMap<(String, String), (AttendanceRow, String)>,
    rows: &mut Vec<AttendanceRow>,
) -> Result<Result<SessionView>> {
    let pid = &job.scanned.participant_id;
    let key = (job.activity_id.clone(), pid.clone());
    if let Some((row, name)) = admitted.get(&key) {
        return Ok(Ok(session_view(row, name.clone(), true)));
    }
    if !activities.contains_key(&job.activity_id) {
        let row = tx.activity(&job.activity_id).await?;
        activities.insert(
            job.activity_id.clone(),
            row.map(|row| ActivityInBatch {
                row,
                admitted: 0,
                check_ins: Vec::new(),
            }),
        );
    }
    let Some(Some(activity)) = activities.get_mut(&job.activity_id) else {
        return Ok(Err(activity_not_found(&job.activity_id)));
    };
    let Some(found) = tx.check_in_lookup(&job.activity_id, pid).await? else {
        return Ok(Err(AppError::invalid(
            "code",
            "code.participant_unknown",
            "这个码对应的参与者在本平台不存在（可能已注销）。",
        )));
    };
    let name = masked(&found.identity.display_name, &found.identity.kind);
    if let Some(existing) = found.attendance {
        if existing.state == "checked_in" {
            return Ok(Ok(session_view(&existing, name, true)));
        }
        return Ok(Err(AppError::conflict(
            "attendance.already_checked_out",
            "此志愿者已在本活动签退，不能再次签到。如签退有误，请联系活动组织者。",
        )));
    }
    if found.identity.volunteer_number.is_none() {
        return Ok(Err(not_a_volunteer()));
    }
    if let Err(e) = within_check_in_window(&activity.row, now) {
        return Ok(Err(e));
    }
    if activity.row.checked_in + activity.admitted >= activity.row.capacity {
        return Ok(Err(activity_full(activity.row.capacity)));
    }
    if let Some(claim) = &job.scanned.claim {
        // A refusal here (a replay) writes nothing: the insert did not happen.
        if let Err(e) = app
            .consume_code(tx, "code", claim, CodePurpose::CheckIn)
            .await
        {
            if e.kind == ErrorKind::Conflict {
                return Ok(Err(e));
            }
            return Err(e);
        }
    }
    let row = AttendanceRow {
        id: new_id("att"),
        activity_id: job.activity_id.clone(),
        participant_id: pid.clone(),
        state: "checked_in".into(),
        checked_in_at: now_text.to_owned(),
        check_in_by: job.actor_id.clone(),
        check_in_method: job.scanned.method.to_owned(),
        checked_out_at: None,
        check_out_by: None,
        duration_minutes: None,
        credited_minutes: 0,
        evaluation: None,
        verified_by: None,
        verified_at: None,
    };
    activity.admitted += 1;
    activity.check_ins.push(serde_json::json!({
        "attendance_id": row.id,
        "participant_id": pid,
        "by": job.actor_id,
        "method": row.check_in_method,
    }));
    let view = session_view(&row, name.clone(), false);
    admitted.insert(key, (row.clone(), name));
    rows.push(row);
    Ok(Ok(view))
}

/// A scan at an activity id that names no activity (a mistyped or stale link).
fn activity_not_found(activity_id: &str) -> AppError {
    AppError {
        message: format!("活动不存在：找不到编号为 `{activity_id}` 的活动，请检查链接或活动编号。"),
        ..AppError::not_found("activity")
    }
}

fn within_check_in_window(activity: &ActivityRow, now: Timestamp) -> Result<()> {
    let starts = stored_instant(&activity.starts_at)?;
    let ends = stored_instant(&activity.ends_at)?;
    let opens = starts
        .checked_sub(SignedDuration::from_mins(CHECK_IN_OPENS_MINUTES_BEFORE))
        .map_err(AppError::internal)?;
    if now < opens {
        return Err(AppError::conflict(
            "activity.not_open",
            format!(
                "本活动签到尚未开始：活动开始前 {CHECK_IN_OPENS_MINUTES_BEFORE} 分钟起可以签到。"
            ),
        ));
    }
    if now > ends {
        return Err(AppError::conflict(
            "activity.ended",
            "本活动已结束，不能再签到。",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Use cases

impl App {
    pub(crate) fn check_in_writer(&self) -> &CheckInWriter {
        self.checkins
            .get_or_init(|| CheckInWriter::start(self.clone()))
    }

    /// The volunteer rules (daily maximum, star thresholds): the administrator's settings, or
    /// the defaults (8 hours; 100/300/600/1000/1500 hours).
    pub async fn volunteer_rules(&self) -> Result<VolunteerRules> {
        let mut rules = VolunteerRules::default();
        if let Some(v) = self.store().setting(DAILY_MAX_SETTING).await? {
            rules.daily_max_minutes = v.parse().map_err(AppError::internal)?;
        }
        if let Some(v) = self.store().setting(STAR_HOURS_SETTING).await? {
            rules.star_hours = VolunteerRules::parse_star_hours(&v).map_err(AppError::internal)?;
        }
        Ok(rules)
    }

    /// Sets the volunteer rules (administrators only). Applies to verifications and star
    /// levels from now on; hours already verified stay as verified.
    pub async fn set_volunteer_rules(
        &self,
        actor: &Actor,
        input: &VolunteerRulesInput,
    ) -> Result<VolunteerRules> {
        actor.require_admin()?;
        let rules = VolunteerRules {
            daily_max_minutes: input.daily_max_minutes,
            star_hours: input.star_hours.clone(),
        };
        rules.validate().map_err(|e| match e {
            cishan_core::volunteer::RulesError::DailyMax => AppError::invalid(
                "daily_max_minutes",
                "volunteer_rules.daily_max_invalid",
                "每日最多计入的服务时长应为 1 到 1440 分钟。",
            ),
            cishan_core::volunteer::RulesError::Stars => AppError::invalid(
                "star_hours",
                "volunteer_rules.stars_invalid",
                "星级门槛应为 1 到 5 个递增的正整数小时数，例如 100,300,600,1000,1500。",
            ),
        })?;
        let stars = rules
            .star_hours
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut tx = self.store().begin().await?;
        tx.upsert_setting(DAILY_MAX_SETTING, &rules.daily_max_minutes.to_string())
            .await?;
        tx.upsert_setting(STAR_HOURS_SETTING, &stars).await?;
        tx.journal(
            self.clock().now(),
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "volunteer.rules_set".into(),
                subject: "volunteer_rules".into(),
                payload: serde_json::json!({
                    "daily_max_minutes": rules.daily_max_minutes,
                    "star_hours": rules.star_hours,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(rules)
    }

    /// Creates a volunteer team of an organization (staff).
    pub async fn create_team(&self, actor: &Actor, input: &TeamInput) -> Result<TeamView> {
        actor.require_staff()?;
        let name = text("name", &input.name, "队伍名称", true)?;
        if self
            .store()
            .organization_identity(&input.org_id)
            .await?
            .is_none()
        {
            return Err(AppError::invalid(
                "org_id",
                "team.org_unknown",
                format!("找不到编号为 `{}` 的组织。", input.org_id),
            ));
        }
        let row = TeamRow {
            id: new_id("team"),
            org_id: input.org_id.clone(),
            name,
            created_by: actor.user_id.clone(),
            created_at: format_instant(self.clock().now()),
        };
        let mut tx = self.store().begin().await?;
        tx.insert(&row).await.map_err(|e| {
            if e.is_unique_violation() {
                AppError::invalid(
                    "name",
                    "team.name_taken",
                    "该组织已有同名队伍，请换一个名称。",
                )
            } else {
                e.into()
            }
        })?;
        tx.journal(
            self.clock().now(),
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "volunteer.team_created".into(),
                subject: row.id.clone(),
                payload: serde_json::json!({ "org_id": row.org_id }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(TeamView {
            id: row.id,
            org_id: row.org_id,
            name: row.name,
        })
    }

    /// Adds a registered volunteer to a team (staff). Adding someone already in it changes
    /// nothing.
    pub async fn add_team_member(
        &self,
        actor: &Actor,
        team_id: &str,
        participant_id: &str,
    ) -> Result<()> {
        actor.require_staff()?;
        if self.store().team(team_id).await?.is_none() {
            return Err(AppError::not_found("team"));
        }
        let mut tx = self.store().begin().await?;
        if !tx.is_volunteer(participant_id).await? {
            return Err(AppError {
                field: Some("participant_id".into()),
                ..not_a_volunteer()
            });
        }
        let inserted = tx
            .insert(&TeamMemberRow {
                team_id: team_id.to_owned(),
                participant_id: participant_id.to_owned(),
                joined_at: format_instant(self.clock().now()),
            })
            .await;
        match inserted {
            Ok(()) => {}
            Err(e) if e.is_unique_violation() => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        tx.journal(
            self.clock().now(),
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "volunteer.team_member_added".into(),
                subject: team_id.to_owned(),
                payload: serde_json::json!({ "participant_id": participant_id }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Creates an activity (staff). Its place is a division of the region pack plus an address.
    pub async fn create_activity(
        &self,
        actor: &Actor,
        input: &ActivityInput,
    ) -> Result<ActivityView> {
        actor.require_staff()?;
        let title = text("title", &input.title, "活动名称", true)?;
        let address = text("address", &input.address, "活动地址", true)?;
        let content = text(
            "content",
            input.content.as_deref().unwrap_or(""),
            "服务内容",
            false,
        )?;
        let recipients = text(
            "recipients",
            input.recipients.as_deref().unwrap_or(""),
            "服务对象",
            false,
        )?;
        if !self
            .pack()
            .service_categories
            .iter()
            .any(|c| c.code == input.category)
        {
            let names: Vec<String> = self
                .pack()
                .service_categories
                .iter()
                .map(|c| format!("{}（{}）", c.code, c.name))
                .collect();
            return Err(AppError::invalid(
                "category",
                "activity.category_unknown",
                format!("服务类别应为以下之一：{}。", names.join("、")),
            ));
        }
        if self.pack().division(input.division_code.trim()).is_none() {
            return Err(AppError::invalid(
                "division_code",
                "activity.division_unknown",
                format!(
                    "区划代码 `{}` 不在本区域内，请从区划列表中选择。",
                    input.division_code.trim()
                ),
            ));
        }
        let starts = instant("starts_at", &input.starts_at, "开始时间")?;
        let ends = instant("ends_at", &input.ends_at, "结束时间")?;
        if ends <= starts {
            return Err(AppError::invalid(
                "ends_at",
                "activity.ends_before_start",
                "结束时间应晚于开始时间。",
            ));
        }
        if session_minutes(starts, ends) > MAX_ACTIVITY_HOURS * 60 {
            return Err(AppError::invalid(
                "ends_at",
                "activity.too_long",
                format!("一个活动最长 {MAX_ACTIVITY_HOURS} 小时；更长的服务请分成多个活动。"),
            ));
        }
        if !(1..=MAX_CAPACITY).contains(&input.capacity) {
            return Err(AppError::invalid(
                "capacity",
                "activity.capacity_invalid",
                format!("活动名额应为 1 到 {MAX_CAPACITY} 人。"),
            ));
        }
        if self
            .store()
            .organization_identity(&input.organizer_org_id)
            .await?
            .is_none()
        {
            return Err(AppError::invalid(
                "organizer_org_id",
                "activity.organizer_unknown",
                format!("找不到编号为 `{}` 的组织。", input.organizer_org_id),
            ));
        }
        if let Some(team) = input.team_id.as_deref().filter(|t| !t.is_empty()) {
            if self.store().team(team).await?.is_none() {
                return Err(AppError::invalid(
                    "team_id",
                    "activity.team_unknown",
                    format!("找不到编号为 `{team}` 的志愿队伍。"),
                ));
            }
        }
        let now = self.clock().now();
        let row = ActivityRow {
            id: new_id("act"),
            title,
            category: input.category.clone(),
            content,
            recipients,
            organizer_org_id: input.organizer_org_id.clone(),
            team_id: input.team_id.clone().filter(|t| !t.is_empty()),
            division_code: input.division_code.trim().to_owned(),
            address,
            starts_at: format_instant(starts),
            ends_at: format_instant(ends),
            capacity: input.capacity,
            checked_in: 0,
            created_by: actor.user_id.clone(),
            created_at: format_instant(now),
        };
        let mut tx = self.store().begin().await?;
        tx.insert(&row).await?;
        tx.journal(
            now,
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "volunteer.activity_created".into(),
                subject: row.id.clone(),
                payload: serde_json::json!({
                    "organizer_org_id": row.organizer_org_id,
                    "category": row.category,
                    "division_code": row.division_code,
                    "starts_at": row.starts_at,
                    "ends_at": row.ends_at,
                    "capacity": row.capacity,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        self.activity_view_of(row).await
    }

    async fn activity_view_of(&self, row: ActivityRow) -> Result<ActivityView> {
        let organizer_name = self
            .store()
            .organization_identity(&row.organizer_org_id)
            .await?
            .map(|(name, _)| name)
            .unwrap_or_default();
        let category_name = self
            .pack()
            .service_categories
            .iter()
            .find(|c| c.code == row.category)
            .map_or_else(|| row.category.clone(), |c| c.name.clone());
        let division_name = self
            .pack()
            .division(&row.division_code)
            .map_or_else(|| row.division_code.clone(), |d| d.name.clone());
        let code = self.long_lived_code(
            CodeKind::Activity,
            &row.id,
            stored_instant(&row.created_at)?,
        )?;
        Ok(ActivityView {
            id: row.id,
            title: row.title,
            category: row.category,
            category_name,
            content: row.content,
            recipients: row.recipients,
            organizer_org_id: row.organizer_org_id,
            organizer_name,
            team_id: row.team_id,
            division_code: row.division_code,
            division_name,
            address: row.address,
            starts_at: row.starts_at,
            ends_at: row.ends_at,
            capacity: row.capacity,
            checked_in: row.checked_in,
            code,
        })
    }

    /// One activity, with its code.
    pub async fn activity(&self, id: &str) -> Result<ActivityView> {
        let row = self
            .store()
            .activity(id)
            .await?
            .ok_or_else(|| AppError::not_found("activity"))?;
        self.activity_view_of(row).await
    }

    /// Activities, the latest start first.
    pub async fn activities(&self, offset: i64, limit: i64) -> Result<Vec<ActivityView>> {
        let limit = limit.clamp(1, crate::MAX_PAGE_SIZE);
        let rows = self.store().activities_page(offset.max(0), limit).await?;
        let mut views = Vec::with_capacity(rows.len());
        for row in rows {
            views.push(self.activity_view_of(row).await?);
        }
        Ok(views)
    }

    /// The attendance list of an activity (staff).
    pub async fn activity_attendances(
        &self,
        actor: &Actor,
        activity_id: &str,
    ) -> Result<Vec<SessionView>> {
        actor.require_staff()?;
        let rows = self
            .store()
            .attendances_of_activity(activity_id, MAX_ATTENDANCE_ROWS)
            .await?;
        Ok(rows
            .iter()
            .map(|(row, name)| session_view(row, mask_name(name), false))
            .collect())
    }

    /// [`App::read_scan`], with an activity code for another activity told apart from a scan
    /// at an activity that does not exist (404, not "the wrong code").
    async fn read_scan_at(
        &self,
        actor: &Actor,
        activity_id: &str,
        payload: &str,
    ) -> Result<Scanned> {
        match self.read_scan(actor, activity_id, payload) {
            Err(e) if e.code == "code.other_activity" => {
                if self.store().activity(activity_id).await?.is_none() {
                    return Err(activity_not_found(activity_id));
                }
                Err(e)
            }
            other => other,
        }
    }

    /// Reads a check-in or check-out scan: an activity code scanned by the volunteer, or a
    /// participant code scanned by staff.
    fn read_scan(&self, actor: &Actor, activity_id: &str, payload: &str) -> Result<Scanned> {
        let claim = self.verify_code("code", payload, None)?;
        match claim.kind {
            CodeKind::Activity => {
                if claim.subject != activity_id {
                    return Err(AppError::invalid(
                        "code",
                        "code.other_activity",
                        "这是另一个活动的活动码，请扫描本活动现场的活动码。",
                    ));
                }
                let participant_id = actor.participant_id.clone().ok_or_else(|| AppError {
                    message:
                        "扫活动码签到需要用志愿者本人的账号登录；工作人员请扫描志愿者的个人码。"
                            .into(),
                    ..AppError::forbidden()
                })?;
                Ok(Scanned {
                    participant_id,
                    method: "activity_code",
                    claim: None,
                })
            }
            CodeKind::Participant => {
                actor.require_staff().map_err(|e| AppError {
                    message: "只有活动组织者（工作人员）可以扫描他人的个人码签到签退；志愿者请扫描活动码。".into(),
                    ..e
                })?;
                Ok(Scanned {
                    participant_id: claim.subject.clone(),
                    method: "participant_code",
                    claim: Some(claim),
                })
            }
            _ => Err(wrong_scan_kind()),
        }
    }

    /// Checks a volunteer in by scan (`code` is the activity's code scanned by the volunteer,
    /// or the volunteer's participant code scanned by staff). Scanning again while checked in
    /// changes nothing and returns the existing session (`unchanged: true`).
    pub async fn check_in(
        &self,
        actor: &Actor,
        activity_id: &str,
        input: &ScanCodeInput,
    ) -> Result<SessionView> {
        let scanned = self.read_scan_at(actor, activity_id, &input.code).await?;
        self.check_in_writer()
            .submit(actor.user_id.clone(), activity_id.to_owned(), scanned)
            .await
    }

    /// Checks a volunteer out by scan. Refused (409) without a check-in; a second check-out
    /// changes nothing and returns the closed session, but a participant code already used
    /// (for anything) is refused as a replay even then.
    pub async fn check_out(
        &self,
        actor: &Actor,
        activity_id: &str,
        input: &ScanCodeInput,
    ) -> Result<SessionView> {
        let scanned = self.read_scan_at(actor, activity_id, &input.code).await?;
        let pid = &scanned.participant_id;
        let now = self.clock().now();
        let mut tx = self.store().begin().await?;
        tx.lock_writes().await?;
        if tx.activity(activity_id).await?.is_none() {
            return Err(activity_not_found(activity_id));
        }
        let found = tx.check_in_lookup(activity_id, pid).await?.ok_or_else(|| {
            AppError::invalid(
                "code",
                "code.participant_unknown",
                "这个码对应的参与者在本平台不存在（可能已注销）。",
            )
        })?;
        let name = masked(&found.identity.display_name, &found.identity.kind);
        let Some(attendance) = found.attendance else {
            return Err(AppError::conflict(
                "attendance.not_checked_in",
                "此志愿者没有在本活动签到，不能签退。请先签到。",
            ));
        };
        // A participant code is used once, whatever for (docs/codes-and-volunteering.md): it is
        // used up even by a check-out that changes nothing, so a code already used (for a
        // redemption, or this same check-out) is refused as a replay here too.
        if let Some(claim) = &scanned.claim {
            self.consume_code(&mut tx, "code", claim, CodePurpose::CheckOut)
                .await?;
        }
        if attendance.state != "checked_in" {
            tx.commit().await?;
            return Ok(session_view(&attendance, name, true));
        }
        let minutes = session_minutes(stored_instant(&attendance.checked_in_at)?, now);
        let at = format_instant(now);
        if !tx
            .check_out_attendance(&attendance.id, &at, &actor.user_id, minutes)
            .await?
        {
            return Err(AppError::conflict(
                "attendance.changed",
                "签到记录刚被其他人修改，请刷新后重试。",
            ));
        }
        tx.journal(
            now,
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "volunteer.checked_out".into(),
                subject: attendance.id.clone(),
                payload: serde_json::json!({
                    "activity_id": activity_id,
                    "participant_id": pid,
                    "duration_minutes": minutes,
                    "method": scanned.method,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        let mut row = attendance;
        row.state = "checked_out".into();
        row.checked_out_at = Some(at);
        row.check_out_by = Some(actor.user_id.clone());
        row.duration_minutes = Some(minutes);
        Ok(session_view(&row, name, false))
    }

    /// The organizer verifies a checked-out session (staff): its minutes, split by local day
    /// and capped by the daily maximum, become service records and count from now on. A
    /// session already verified is returned unchanged.
    pub async fn verify_attendance(
        &self,
        actor: &Actor,
        attendance_id: &str,
        input: &VerifyInput,
    ) -> Result<SessionView> {
        actor.require_staff()?;
        let evaluation = match input.evaluation.as_deref() {
            Some(e) => {
                Some(text("evaluation", e, "服务质量评价", false)?).filter(|e| !e.is_empty())
            }
            None => None,
        };
        let rules = self.volunteer_rules().await?;
        let tz = jiff::tz::TimeZone::get(&self.pack().timezone).map_err(AppError::internal)?;
        let now = self.clock().now();
        let mut tx = self.store().begin().await?;
        tx.lock_writes().await?;
        let attendance = tx
            .attendance(attendance_id)
            .await?
            .ok_or_else(|| AppError::not_found("attendance"))?;
        self.require_organizer_staff(actor, &mut tx, &attendance.activity_id)
            .await?;
        let identity = self
            .store()
            .volunteer_identity(&attendance.participant_id)
            .await?
            .ok_or_else(|| AppError::not_found("participant"))?;
        let name = masked(&identity.display_name, &identity.kind);
        match attendance.state.as_str() {
            "verified" => return Ok(session_view(&attendance, name, true)),
            "checked_in" => {
                return Err(AppError::conflict(
                    "attendance.not_checked_out",
                    "此志愿者尚未签退，签退后才能核验服务时长。",
                ))
            }
            _ => {}
        }
        let activity = tx
            .activity(&attendance.activity_id)
            .await?
            .ok_or_else(|| AppError::not_found("activity"))?;
        let checked_in = stored_instant(&attendance.checked_in_at)?;
        let checked_out = stored_instant(attendance.checked_out_at.as_deref().unwrap_or_default())?;
        let place = format!(
            "{} {}",
            self.pack()
                .division(&activity.division_code)
                .map_or(activity.division_code.as_str(), |d| d.name.as_str()),
            activity.address
        );
        let mut credited = 0_i64;
        let mut records = Vec::new();
        for (day, minutes) in minutes_by_local_day(checked_in, checked_out, &tz) {
            let day = day.to_string();
            let already = tx
                .credited_minutes_on(&attendance.participant_id, &day)
                .await?;
            let credit = credit_within_daily_max(minutes, already, rules.daily_max_minutes);
            if credit == 0 {
                continue;
            }
            credited += credit;
            records.push(ServiceRecordDetail {
                id: new_id("svc"),
                volunteer_participant_id: attendance.participant_id.clone(),
                duration_minutes: credit,
                served_on: day,
                content: if activity.content.is_empty() {
                    activity.title.clone()
                } else {
                    activity.content.clone()
                },
                attendance_id: Some(attendance.id.clone()),
                activity_id: Some(activity.id.clone()),
                place: Some(place.clone()),
                recipients: Some(activity.recipients.clone()).filter(|r| !r.is_empty()),
                evaluation: evaluation.clone(),
                organizer_org_id: Some(activity.organizer_org_id.clone()),
                recorded_by: Some(actor.user_id.clone()),
                started_at: Some(attendance.checked_in_at.clone()),
                ended_at: attendance.checked_out_at.clone(),
                state: "valid".into(),
            });
        }
        if !records.is_empty() {
            tx.insert_all(&records).await?;
        }
        let at = format_instant(now);
        if !tx
            .verify_attendance(
                &attendance.id,
                &actor.user_id,
                &at,
                credited,
                evaluation.as_deref(),
            )
            .await?
        {
            return Err(AppError::conflict(
                "attendance.changed",
                "签到记录刚被其他人修改，请刷新后重试。",
            ));
        }
        if credited > 0 {
            self.award_volunteer_points(&mut tx, &attendance, &activity, credited, &actor.user_id)
                .await?;
        }
        tx.journal(
            now,
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "volunteer.attendance_verified".into(),
                subject: attendance.id.clone(),
                payload: serde_json::json!({
                    "activity_id": activity.id,
                    "participant_id": attendance.participant_id,
                    "duration_minutes": attendance.duration_minutes,
                    "credited_minutes": credited,
                    "service_records": records.iter().map(|r| &r.id).collect::<Vec<_>>(),
                }),
            },
        )
        .await?;
        tx.commit().await?;
        let mut row = attendance;
        row.state = "verified".into();
        row.verified_by = Some(actor.user_id.clone());
        row.verified_at = Some(at);
        row.credited_minutes = credited;
        row.evaluation = evaluation;
        Ok(session_view(&row, name, false))
    }

    /// Staff of an organization (`users.org_id`) verify only their own organization's
    /// activities; anyone else's attendance answers 404, as if it did not exist. District staff
    /// and administrators verify any.
    async fn require_organizer_staff(
        &self,
        actor: &Actor,
        tx: &mut WriteTx,
        activity_id: &str,
    ) -> Result<()> {
        let Some(own_org) = self.staff_scope(actor).await?.org_id else {
            return Ok(());
        };
        let activity = tx
            .activity(activity_id)
            .await?
            .ok_or_else(|| AppError::not_found("attendance"))?;
        if activity.organizer_org_id == own_org {
            Ok(())
        } else {
            Err(AppError::not_found("attendance"))
        }
    }

    /// Takes a verification back (staff): the session's service records are marked withdrawn,
    /// its hours stop counting and its points are reversed.
    pub async fn withdraw_verification(
        &self,
        actor: &Actor,
        attendance_id: &str,
        input: &WithdrawInput,
    ) -> Result<SessionView> {
        actor.require_staff()?;
        let reason = text("reason", &input.reason, "撤销原因", true)?;
        let now = self.clock().now();
        let mut tx = self.store().begin().await?;
        tx.lock_writes().await?;
        let attendance = tx
            .attendance(attendance_id)
            .await?
            .ok_or_else(|| AppError::not_found("attendance"))?;
        self.require_organizer_staff(actor, &mut tx, &attendance.activity_id)
            .await?;
        let identity = self
            .store()
            .volunteer_identity(&attendance.participant_id)
            .await?
            .ok_or_else(|| AppError::not_found("participant"))?;
        let name = masked(&identity.display_name, &identity.kind);
        if attendance.state != "verified" {
            return Err(AppError::conflict(
                "attendance.not_verified",
                "这条服务记录尚未核验，无需撤销。",
            ));
        }
        let withdrawn = tx.withdraw_service_records(&attendance.id).await?;
        if !tx.unverify_attendance(&attendance.id).await? {
            return Err(AppError::conflict(
                "attendance.changed",
                "签到记录刚被其他人修改，请刷新后重试。",
            ));
        }
        if attendance.credited_minutes > 0 {
            self.reverse_volunteer_points(&mut tx, &attendance, &reason, &actor.user_id)
                .await?;
        }
        tx.journal(
            now,
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "volunteer.verification_withdrawn".into(),
                subject: attendance.id.clone(),
                payload: serde_json::json!({
                    "participant_id": attendance.participant_id,
                    "credited_minutes": attendance.credited_minutes,
                    "service_records_withdrawn": withdrawn,
                    "reason": reason,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        let mut row = attendance;
        row.state = "checked_out".into();
        row.verified_by = None;
        row.verified_at = None;
        row.credited_minutes = 0;
        Ok(session_view(&row, name, false))
    }

    /// Points for verified hours (kind `volunteer_minutes`, category = the activity's), in
    /// the verification's transaction. Recording the same session again (verified after a
    /// withdrawal) restores its act instead of adding a second.
    async fn award_volunteer_points(
        &self,
        tx: &mut WriteTx,
        attendance: &AttendanceRow,
        activity: &ActivityRow,
        credited_minutes: i64,
        by: &str,
    ) -> Result<()> {
        let occurred_at = stored_instant(
            attendance
                .checked_out_at
                .as_deref()
                .unwrap_or(&attendance.checked_in_at),
        )?;
        crate::points::record_act(
            tx,
            crate::points::NewAct {
                participant_id: attendance.participant_id.clone(),
                kind: cishan_core::points::ActKind::VolunteerMinutes,
                category: Some(activity.category.clone()),
                quantity: credited_minutes,
                source_kind: POINTS_SOURCE.into(),
                source_id: attendance.id.clone(),
                occurred_at,
                recorded_by: by.to_owned(),
                recorded_at: self.clock().now(),
                note: format!("志愿服务 {}", hours_text(credited_minutes)),
            },
        )
        .await
    }

    /// Reverses the points of a withdrawn verification (a new entry; history stays).
    async fn reverse_volunteer_points(
        &self,
        tx: &mut WriteTx,
        attendance: &AttendanceRow,
        reason: &str,
        by: &str,
    ) -> Result<()> {
        crate::points::reverse_act(
            tx,
            POINTS_SOURCE,
            &attendance.id,
            reason,
            by,
            self.clock().now(),
        )
        .await
    }

    /// A volunteer's hours, stars, service records, pending sessions and certificates: the
    /// volunteer themself or staff.
    pub async fn volunteer_hours(&self, actor: &Actor, participant_id: &str) -> Result<HoursView> {
        let own = actor.participant_id.as_deref() == Some(participant_id);
        if !own && !actor.is_staff() {
            return Err(AppError::forbidden());
        }
        let identity = self
            .store()
            .volunteer_identity(participant_id)
            .await?
            .ok_or_else(|| AppError::not_found("participant"))?;
        let rules = self.volunteer_rules().await?;
        let verified_minutes = self.store().verified_minutes(participant_id).await?;
        let records = self
            .store()
            .service_records_of(participant_id, MAX_RECORD_ROWS)
            .await?
            .into_iter()
            .map(|r| ServiceRecordView {
                id: r.record.id,
                served_on: r.record.served_on,
                minutes: r.record.duration_minutes,
                activity_title: r.activity_title,
                content: r.record.content,
                place: r.record.place,
                recipients: r.record.recipients,
                evaluation: r.record.evaluation,
                organizer_name: r.organizer_name,
                recorded_by: r.record.recorded_by,
                state: r.record.state,
            })
            .collect();
        let name = masked(&identity.display_name, &identity.kind);
        let pending = self
            .store()
            .attendances_of_participant(participant_id, MAX_RECORD_ROWS)
            .await?
            .iter()
            .filter(|a| a.state != "verified")
            .map(|a| session_view(a, name.clone(), false))
            .collect();
        let mut certificates = Vec::new();
        for row in self.store().certificates_of(participant_id).await? {
            certificates.push(self.certificate_view(row, &identity).await?);
        }
        Ok(HoursView {
            participant_id: participant_id.to_owned(),
            volunteer_number: identity.volunteer_number.clone(),
            verified_minutes,
            hours_text: hours_text(verified_minutes),
            stars: rules.stars(verified_minutes),
            hours_to_next_star: rules.hours_to_next_star(verified_minutes),
            star_hours: rules.star_hours,
            records,
            pending,
            certificates,
        })
    }

    /// Issues a service certificate (staff) for the volunteer's verified hours so far.
    pub async fn issue_certificate(
        &self,
        actor: &Actor,
        participant_id: &str,
        input: &CertificateInput,
    ) -> Result<CertificateView> {
        actor.require_staff()?;
        let content = text("content", &input.content, "服务内容", true)?;
        let contact = text(
            "contact",
            input.contact.as_deref().unwrap_or(""),
            "联系方式",
            false,
        )?;
        if self
            .store()
            .organization_identity(&input.issuing_org_id)
            .await?
            .is_none()
        {
            return Err(AppError::invalid(
                "issuing_org_id",
                "certificate.org_unknown",
                format!("找不到编号为 `{}` 的组织。", input.issuing_org_id),
            ));
        }
        let identity = self
            .store()
            .volunteer_identity(participant_id)
            .await?
            .ok_or_else(|| AppError::not_found("participant"))?;
        if identity.volunteer_number.is_none() {
            return Err(not_a_volunteer());
        }
        let now = self.clock().now();
        let issued_on = self.local_date(&format_instant(now));
        let year = issued_on.get(..4).unwrap_or("0000").to_owned();
        let mut tx = self.store().begin().await?;
        tx.lock_writes().await?;
        let minutes = tx.verified_minutes(participant_id).await?;
        let prefix = format!("ZYFW-{year}-");
        let seq = tx.count_certificates_with_prefix(&prefix).await? + 1;
        let row = CertificateRow {
            number: format!("{prefix}{seq:06}"),
            participant_id: participant_id.to_owned(),
            issuing_org_id: input.issuing_org_id.clone(),
            issued_on,
            minutes,
            content,
            contact,
            issued_by: actor.user_id.clone(),
            issued_at: format_instant(now),
        };
        tx.insert(&row).await?;
        tx.journal(
            now,
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "volunteer.certificate_issued".into(),
                subject: row.number.clone(),
                payload: serde_json::json!({
                    "participant_id": participant_id,
                    "issuing_org_id": row.issuing_org_id,
                    "minutes": minutes,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        self.certificate_view(row, &identity).await
    }

    async fn certificate_view(
        &self,
        row: CertificateRow,
        identity: &cishan_store::VolunteerIdentity,
    ) -> Result<CertificateView> {
        let issuing_org_name = self
            .store()
            .organization_identity(&row.issuing_org_id)
            .await?
            .map(|(name, _)| name)
            .unwrap_or_default();
        let code = self.long_lived_code(
            CodeKind::Certificate,
            &row.number,
            stored_instant(&row.issued_at)?,
        )?;
        Ok(CertificateView {
            hours_text: hours_text(row.minutes),
            number: row.number,
            issued_on: row.issued_on,
            issuing_org_id: row.issuing_org_id,
            issuing_org_name,
            contact: row.contact,
            volunteer_name_masked: masked(&identity.display_name, &identity.kind),
            id_number_masked: identity.id_number_masked.clone(),
            volunteer_number: identity.volunteer_number.clone(),
            minutes: row.minutes,
            content: row.content,
            code,
        })
    }

    /// A certificate as anyone may see it (personal data masked).
    pub async fn certificate(&self, number: &str) -> Result<CertificateView> {
        let row = self
            .store()
            .certificate(number)
            .await?
            .ok_or_else(|| AppError::not_found("certificate"))?;
        let identity = self
            .store()
            .volunteer_identity(&row.participant_id)
            .await?
            .ok_or_else(|| AppError::not_found("certificate"))?;
        self.certificate_view(row, &identity).await
    }

    /// Checks a certificate's code: it must be a valid certificate code signed by this
    /// platform for exactly this number, and the certificate must exist.
    pub async fn verify_certificate_code(
        &self,
        number: &str,
        payload: &str,
    ) -> Result<CertificateView> {
        let claim = self.verify_code("code", payload, Some(CodeKind::Certificate))?;
        if claim.subject != number {
            return Err(AppError::invalid(
                "code",
                "certificate.code_mismatch",
                "这个证书码属于另一张证书，与本证书编号不符。请核对证书。",
            ));
        }
        self.certificate(number).await
    }
}
