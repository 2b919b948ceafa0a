//! Welfare jobs (公益岗位 / 爱心岗位): employers post jobs set aside for low-income people, staff
//! place registry members in them, and the employment rate of placed people is reported.
//!
//! - A job's positions are a cap held by a conditional UPDATE (`filled < positions`) inside the
//!   placement's transaction, after `lock_writes`, so concurrent placements never pass it.
//! - A member holds at most one active placement: checked in the transaction and held by a
//!   partial unique index.
//! - Visibility follows the registry: street staff see their street's jobs and members only.

use std::collections::BTreeMap;

use cishan_core::assistance::{permille_text, rate_permille, WORKING_AGE};
use cishan_store::{format_instant, JobListed, JobRow, NewEntry, PlacementListed, PlacementRow};
use serde::{Deserialize, Serialize};

use crate::donations::new_id;
use crate::registry::{text, StaffScope};
use crate::{Actor, App, AppError, Result};

/// Most positions one job may offer.
pub const MAX_POSITIONS: i64 = 10_000;
/// Highest monthly wage accepted: ¥1,000,000.
pub const MAX_WAGE_FEN: i64 = 100_000_000;
/// Placements a job page lists at most.
const MAX_PLACEMENT_ROWS: i64 = 1_000;

/// A job to post.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobInput {
    pub title: String,
    /// The employer organization (org_…).
    pub org_id: String,
    /// The street or town where the work is.
    pub street_code: String,
    /// `welfare` (公益岗位) or `caring` (爱心岗位).
    pub kind: String,
    pub positions: i64,
    /// Wage, fen per month.
    pub wage_fen_per_month: i64,
    #[serde(default)]
    pub description: Option<String>,
}

/// A job as staff see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct JobView {
    pub id: String,
    pub title: String,
    pub org_id: String,
    pub org_name: String,
    pub street_code: String,
    pub street_name: String,
    pub kind: String,
    pub kind_name: String,
    pub positions: i64,
    pub filled: i64,
    pub remaining: i64,
    pub wage_fen_per_month: i64,
    pub description: String,
    /// `open` or `closed`.
    pub state: String,
    pub created_at: String,
}

/// A job with its placements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct JobDetail {
    pub job: JobView,
    pub placements: Vec<PlacementView>,
}

/// Placing a registry member in a job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlacementInput {
    /// The registry member (hm_…).
    pub member_id: String,
}

/// Ending a placement.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndPlacementInput {
    pub reason: String,
}

/// A placement, with the member's name masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PlacementView {
    pub id: String,
    pub job_id: String,
    pub job_title: String,
    pub member_id: String,
    pub member_name_masked: String,
    pub household_id: String,
    pub street_code: String,
    /// `active` or `ended`.
    pub state: String,
    pub placed_at: String,
    pub ended_at: Option<String>,
    pub end_reason: Option<String>,
}

/// The employment of placed people in one street (or overall).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EmploymentRow {
    /// `None` on the overall row.
    pub street_code: Option<String>,
    pub street_name: String,
    /// Registry members ever placed.
    pub placed: i64,
    /// Of those, in a job now.
    pub employed: i64,
    /// employed / placed, per mille (rounded down); `None` when nobody was placed.
    pub employment_rate_permille: Option<i64>,
    pub employment_rate_text: String,
    /// Registry members of working age (16–59 this year).
    pub working_age_members: i64,
    /// Of those, ever placed.
    pub working_age_placed: i64,
    pub working_age_placed_permille: Option<i64>,
    pub working_age_placed_text: String,
}

/// The employment report of welfare jobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EmploymentReport {
    pub year: i16,
    pub streets: Vec<EmploymentRow>,
    pub overall: EmploymentRow,
}

fn kind_name(kind: &str) -> &'static str {
    match kind {
        "welfare" => "公益岗位",
        "caring" => "爱心岗位",
        _ => "",
    }
}

fn job_not_found() -> AppError {
    AppError {
        message: "找不到这个岗位：编号有误，或不在您负责的街道。".into(),
        ..AppError::not_found("job")
    }
}

fn rate_text(p: Option<i64>) -> String {
    p.map_or_else(|| "—".to_owned(), permille_text)
}

impl App {
    fn job_view(&self, j: &JobListed) -> JobView {
        let r = &j.job;
        JobView {
            id: r.id.clone(),
            title: r.title.clone(),
            org_id: r.org_id.clone(),
            org_name: j.org_name.clone(),
            street_code: r.street_code.clone(),
            street_name: self.area_name(Some(&r.street_code)),
            kind: r.kind.clone(),
            kind_name: kind_name(&r.kind).to_owned(),
            positions: r.positions,
            filled: r.filled,
            remaining: r.positions - r.filled,
            wage_fen_per_month: r.wage_fen_per_month,
            description: r.description.clone(),
            state: r.state.clone(),
            created_at: r.created_at.clone(),
        }
    }

    fn placement_view(p: &PlacementListed) -> PlacementView {
        let r = &p.placement;
        PlacementView {
            id: r.id.clone(),
            job_id: r.job_id.clone(),
            job_title: p.job_title.clone(),
            member_id: r.member_id.clone(),
            member_name_masked: p.member_name_masked.clone(),
            household_id: r.household_id.clone(),
            street_code: r.street_code.clone(),
            state: r.state.clone(),
            placed_at: r.placed_at.clone(),
            ended_at: r.ended_at.clone(),
            end_reason: r.end_reason.clone(),
        }
    }

    async fn visible_job(&self, scope: &StaffScope, id: &str) -> Result<JobListed> {
        match self.store().job(id.trim()).await? {
            Some(j) if scope.sees_street(Some(&j.job.street_code)) => Ok(j),
            _ => Err(job_not_found()),
        }
    }

    /// Posts a welfare job. Street staff post for their street; staff of an organization post
    /// for that organization.
    pub async fn create_job(&self, actor: &Actor, input: &JobInput) -> Result<JobView> {
        let scope = self.staff_scope(actor).await?;
        let title = text("title", &input.title, "岗位名称", 100)?;
        let org_id = input.org_id.trim();
        if let Some(own) = scope.org_id.as_deref() {
            if own != org_id {
                return Err(AppError::invalid(
                    "org_id",
                    "job.org_outside_scope",
                    format!("您只能为本单位（{own}）发布岗位。"),
                ));
            }
        }
        if !self.store().organization_exists(org_id).await? {
            return Err(AppError::invalid(
                "org_id",
                "job.org_unknown",
                format!("找不到编号为 `{org_id}` 的用人单位，请核对组织编号（org_…）。"),
            ));
        }
        let street = self.street_of_pack("street_code", &input.street_code)?;
        if !scope.sees_street(Some(&street)) {
            return Err(AppError::invalid(
                "street_code",
                "job.street_outside_scope",
                format!(
                    "您只能发布本街道（{}）的岗位。",
                    self.area_name(scope.street_code.as_deref())
                ),
            ));
        }
        let kind = input.kind.trim();
        if kind_name(kind).is_empty() {
            return Err(AppError::invalid(
                "kind",
                "job.kind_unknown",
                "岗位类型应为 welfare（公益岗位）或 caring（爱心岗位）。",
            ));
        }
        if !(1..=MAX_POSITIONS).contains(&input.positions) {
            return Err(AppError::invalid(
                "positions",
                "job.positions_invalid",
                format!("岗位数应为 1 到 {MAX_POSITIONS} 之间的整数。"),
            ));
        }
        if !(0..=MAX_WAGE_FEN).contains(&input.wage_fen_per_month) {
            return Err(AppError::invalid(
                "wage_fen_per_month",
                "job.wage_invalid",
                "月工资应为 0 到 100 万元之间的金额（以分为单位的整数）。",
            ));
        }
        let description = match input.description.as_deref().map(str::trim) {
            None | Some("") => String::new(),
            Some(d) => text("description", d, "岗位说明", 500)?,
        };
        let now = self.clock().now();
        let now_text = format_instant(now);
        let row = JobRow {
            id: new_id("job"),
            title,
            org_id: org_id.to_owned(),
            street_code: street,
            kind: kind.to_owned(),
            positions: input.positions,
            filled: 0,
            wage_fen_per_month: input.wage_fen_per_month,
            description,
            state: "open".into(),
            created_by: actor.user_id.clone(),
            created_at: now_text.clone(),
            updated_at: now_text,
            synthetic: false,
        };
        let mut tx = self.store().begin().await?;
        tx.insert(&row).await?;
        tx.journal(
            now,
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "job.posted".into(),
                subject: row.id.clone(),
                payload: serde_json::json!({
                    "org_id": row.org_id,
                    "street_code": row.street_code,
                    "kind": row.kind,
                    "positions": row.positions,
                    "wage_fen_per_month": row.wage_fen_per_month,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        let job = self.visible_job(&scope, &row.id).await?;
        Ok(self.job_view(&job))
    }

    /// Jobs the caller may see, open first.
    pub async fn jobs(&self, actor: &Actor, offset: i64, limit: i64) -> Result<Vec<JobView>> {
        let scope = self.staff_scope(actor).await?;
        let rows = self
            .store()
            .jobs(
                scope.street_code.as_deref(),
                offset.max(0),
                limit.clamp(1, crate::MAX_PAGE_SIZE),
            )
            .await?;
        Ok(rows.iter().map(|j| self.job_view(j)).collect())
    }

    /// One job with its placements.
    pub async fn job(&self, actor: &Actor, id: &str) -> Result<JobDetail> {
        let scope = self.staff_scope(actor).await?;
        let job = self.visible_job(&scope, id).await?;
        let placements = self
            .store()
            .placements(Some(&job.job.id), None, MAX_PLACEMENT_ROWS)
            .await?;
        Ok(JobDetail {
            job: self.job_view(&job),
            placements: placements.iter().map(App::placement_view).collect(),
        })
    }

    /// The placements of a household's members (for its page).
    pub async fn household_placements(
        &self,
        actor: &Actor,
        household_id: &str,
    ) -> Result<Vec<PlacementView>> {
        let scope = self.registry_scope(actor).await?;
        let h = self.visible_household(&scope, household_id).await?;
        let rows = self
            .store()
            .placements(None, Some(&h.id), MAX_PLACEMENT_ROWS)
            .await?;
        Ok(rows.iter().map(App::placement_view).collect())
    }

    /// Closes a job to new placements (people already placed stay).
    pub async fn close_job(&self, actor: &Actor, id: &str) -> Result<JobView> {
        let scope = self.staff_scope(actor).await?;
        let job = self.visible_job(&scope, id).await?;
        let now = self.clock().now();
        let mut tx = self.store().begin().await?;
        if !tx
            .set_job_state(&job.job.id, "closed", &format_instant(now))
            .await?
        {
            return Err(AppError::conflict(
                "job.already_closed",
                "这个岗位已经关闭。",
            ));
        }
        tx.journal(
            now,
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "job.closed".into(),
                subject: job.job.id.clone(),
                payload: serde_json::json!({}),
            },
        )
        .await?;
        tx.commit().await?;
        let job = self.visible_job(&scope, id).await?;
        Ok(self.job_view(&job))
    }

    /// Places a registry member in a job: refused when the job is full or closed, or the member
    /// holds a job already. Concurrent placements never pass the positions.
    pub async fn place_member(
        &self,
        actor: &Actor,
        job_id: &str,
        input: &PlacementInput,
    ) -> Result<PlacementView> {
        let scope = self.registry_scope(actor).await?;
        let job = self.visible_job(&scope, job_id).await?;
        let member_id = input.member_id.trim();
        let member = match self.store().household_member(member_id).await? {
            Some(m) => m,
            None => {
                return Err(AppError::invalid(
                    "member_id",
                    "placement.member_unknown",
                    "找不到这名低收入人口库成员（hm_…），请从家庭详情页复制成员编号。",
                ))
            }
        };
        let household = self
            .visible_household(&scope, &member.household_id)
            .await
            .map_err(|_| {
                AppError::invalid(
                    "member_id",
                    "placement.member_unknown",
                    "找不到这名低收入人口库成员（hm_…），请从家庭详情页复制成员编号。",
                )
            })?;
        let now = self.clock().now();
        let now_text = format_instant(now);
        let row = PlacementRow {
            id: new_id("plc"),
            job_id: job.job.id.clone(),
            member_id: member.id.clone(),
            household_id: household.id.clone(),
            street_code: household
                .street_code
                .clone()
                .unwrap_or_else(|| job.job.street_code.clone()),
            state: "active".into(),
            placed_by: actor.user_id.clone(),
            placed_at: now_text.clone(),
            ended_by: None,
            ended_at: None,
            end_reason: None,
        };
        let already = || {
            AppError::conflict(
                "placement.member_already_placed",
                format!(
                    "{} 已在岗，一人同时只能安置一个岗位。如需换岗，请先结束原岗位安置。",
                    member.name_masked
                ),
            )
        };
        let mut tx = self.store().begin().await?;
        tx.lock_writes().await?;
        if tx.active_placement_of(&member.id).await?.is_some() {
            return Err(already());
        }
        if !tx.take_job_position(&job.job.id, &now_text).await? {
            return Err(if job.job.state == "open" {
                AppError::conflict(
                    "job.full",
                    format!("这个岗位的 {} 个名额已满，不能再安置。", job.job.positions),
                )
            } else {
                AppError::conflict("job.closed", "这个岗位已关闭，不能再安置。")
            });
        }
        tx.insert(&row).await.map_err(|e| {
            if e.is_unique_violation() {
                already()
            } else {
                e.into()
            }
        })?;
        tx.journal(
            now,
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "job.placed".into(),
                subject: row.id.clone(),
                payload: serde_json::json!({
                    "job_id": row.job_id,
                    "member_id": row.member_id,
                    "household_id": row.household_id,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(App::placement_view(&PlacementListed {
            placement: row,
            member_name_masked: member.name_masked.clone(),
            job_title: job.job.title.clone(),
        }))
    }

    /// Ends an active placement with a reason; the position is freed.
    pub async fn end_placement(
        &self,
        actor: &Actor,
        placement_id: &str,
        input: &EndPlacementInput,
    ) -> Result<PlacementView> {
        let scope = self.staff_scope(actor).await?;
        let not_found = || AppError::not_found("placement");
        let placement = self
            .store()
            .placement(placement_id.trim())
            .await?
            .ok_or_else(not_found)?;
        if !scope.sees_street(Some(&placement.street_code)) {
            return Err(not_found());
        }
        let reason = text("reason", &input.reason, "结束原因", 200)?;
        let now = self.clock().now();
        let now_text = format_instant(now);
        let mut tx = self.store().begin().await?;
        tx.lock_writes().await?;
        if !tx
            .end_placement(&placement.id, &actor.user_id, &now_text, &reason)
            .await?
        {
            return Err(AppError::conflict(
                "placement.not_active",
                "这条安置已经结束，不能再次结束。",
            ));
        }
        if !tx
            .release_job_position(&placement.job_id, &now_text)
            .await?
        {
            return Err(AppError::internal(std::io::Error::other(
                "an active placement's job had no filled position",
            )));
        }
        tx.journal(
            now,
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "job.placement_ended".into(),
                subject: placement.id.clone(),
                payload: serde_json::json!({ "job_id": placement.job_id, "reason": reason }),
            },
        )
        .await?;
        tx.commit().await?;
        let listed = self
            .store()
            .placements(None, Some(&placement.household_id), MAX_PLACEMENT_ROWS)
            .await?;
        listed
            .iter()
            .find(|p| p.placement.id == placement.id)
            .map(App::placement_view)
            .ok_or_else(not_found)
    }

    /// The employment rate of placed people (in a job now / ever placed), per street and
    /// overall, with the share of the registry's working-age members ever placed.
    pub async fn employment_report(&self, actor: &Actor) -> Result<EmploymentReport> {
        let scope = self.staff_scope(actor).await?;
        let year = self.local_year(self.clock().now());
        let born_to = i64::from(year - WORKING_AGE.start());
        let born_from = i64::from(year - WORKING_AGE.end());
        let mut by_street: BTreeMap<String, [i64; 4]> = BTreeMap::new();
        for c in self.store().employment_counts().await? {
            let e = by_street.entry(c.street_code).or_default();
            e[0] = c.placed;
            e[1] = c.employed;
        }
        for c in self.store().working_age_counts(born_from, born_to).await? {
            let e = by_street.entry(c.street_code).or_default();
            e[2] = c.working_age;
            e[3] = c.placed;
        }
        let make = |street: Option<String>, name: String, v: [i64; 4]| {
            let rate = rate_permille(v[1], v[0]);
            let share = rate_permille(v[3], v[2]);
            EmploymentRow {
                street_code: street,
                street_name: name,
                placed: v[0],
                employed: v[1],
                employment_rate_permille: rate,
                employment_rate_text: rate_text(rate),
                working_age_members: v[2],
                working_age_placed: v[3],
                working_age_placed_permille: share,
                working_age_placed_text: rate_text(share),
            }
        };
        let mut total = [0_i64; 4];
        let mut streets = Vec::new();
        for (street, v) in by_street {
            if !scope.sees_street(Some(&street)) {
                continue;
            }
            for (t, x) in total.iter_mut().zip(v) {
                *t += x;
            }
            let name = self.area_name(Some(&street));
            streets.push(make(Some(street), name, v));
        }
        let overall_name = match scope.street_code.as_deref() {
            Some(s) => self.area_name(Some(s)),
            None => self.pack().name.clone(),
        };
        Ok(EmploymentReport {
            year,
            streets,
            overall: make(None, overall_name, total),
        })
    }
}
