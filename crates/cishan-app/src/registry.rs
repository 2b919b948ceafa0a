//! The beneficiary registry (低收入人口库): households and their members with assistance
//! categories, per-capita income, street and community, consent; needs; the edge list
//! (边缘救助); and the staff scopes that decide who sees what.
//!
//! - Privacy: head name, ID numbers, phones, the address and the income are encrypted with the
//!   [`crate::Vault`] (key outside the database); ID numbers are found by the vault's keyed
//!   digest; every view is masked. [`App::unmask_household`] shows the clear text to an
//!   administrator, or staff with `users.can_unmask`, who states a reason, and journals which
//!   fields were read and why — never the values.
//! - Visibility: staff whose account has a street (`users.division_code`) see only that
//!   street's households; district staff and administrators see all; members see none. A
//!   household outside the caller's street is "not found" (404), so its existence is not told.

use std::collections::HashSet;

use cishan_core::assistance::{
    self, category_of, edge_gap, edge_gap_band, edge_gap_band_name, IncomeBand, CATEGORIES,
};
use cishan_core::{mask_name, mask_phone, DivisionLevel, Fen, IdNumber};
use cishan_store::{
    format_instant, parse_instant, HouseholdQuery, HouseholdRecord, MemberRow, NeedListed, NeedRow,
    NewEntry, RegistryHouseholdRow, StaffScopeRow, StoreError,
};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::donations::new_id;
use crate::participants::valid_phone;
use crate::{Actor, App, AppError, ErrorKind, Result, Role};

/// People one registration may list besides the head.
pub const MAX_MEMBERS: usize = 20;
/// The highest per-capita income accepted: ¥10,000,000 a year. Anything above is a typo.
pub const MAX_INCOME_FEN: i64 = 1_000_000_000;
/// Days after which a need nothing has reached is listed, unless the request says otherwise.
pub const DEFAULT_UNREACHED_DAYS: i64 = 30;
/// The longest waiting time a request may ask about (ten years).
pub const MAX_UNREACHED_DAYS: i64 = 3_650;
/// Households the edge list reads (and decrypts) at most in one request.
pub const MAX_EDGE_SCAN: i64 = 200_000;
/// Rows each part of the edge list returns at most (the totals count them all).
pub const MAX_EDGE_ROWS: usize = 500;
/// Longest stated reason for unmasking, and longest free text elsewhere.
const MAX_REASON_CHARS: usize = 200;
const MAX_TEXT_CHARS: usize = 500;
const MAX_NAME_CHARS: usize = 50;
/// Needs a household page or the needs list shows at most.
const MAX_NEED_ROWS: i64 = 500;
/// Assistance categories that are themselves subsistence-level: never on the edge list.
fn subsistence_codes() -> Vec<&'static str> {
    CATEGORIES
        .iter()
        .filter(|c| c.subsistence_level)
        .map(|c| c.code)
        .collect()
}

/// Relations of a member to the head of household.
pub const RELATIONS: [(&str, &str); 7] = [
    ("head", "户主"),
    ("spouse", "配偶"),
    ("child", "子女"),
    ("parent", "父母"),
    ("grandchild", "孙子女"),
    ("sibling", "兄弟姐妹"),
    ("other", "其他"),
];

fn relation_name(code: &str) -> &'static str {
    RELATIONS
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("其他", |(_, n)| n)
}

/// Fields [`App::unmask_household`] can show in clear.
pub const UNMASK_FIELDS: [&str; 5] = ["name", "id_number", "phone", "address", "income"];

// ---------------------------------------------------------------------------------------------
// Scope

/// What a staff account may see: its street (none: the whole district), its organization, and
/// whether it may unmask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StaffScope {
    pub user_id: String,
    pub is_admin: bool,
    /// `None`: district-wide.
    pub street_code: Option<String>,
    pub org_id: Option<String>,
    pub can_unmask: bool,
}

impl StaffScope {
    /// Whether the account sees the registry at all: administrators and the district's or a
    /// street's staff do; an organization's staff (`users.org_id`) do not, whatever their street,
    /// since they act for a provider, not for the office.
    pub fn sees_registry(&self) -> bool {
        self.is_admin || self.org_id.is_none()
    }

    /// Whether a household of `street` is visible: never to an organization's staff.
    pub fn sees(&self, street: Option<&str>) -> bool {
        self.sees_registry() && self.sees_street(street)
    }

    /// Whether a job or placement of `street` is visible (an organization's staff see their
    /// street's jobs, or the district's, like other staff).
    pub fn sees_street(&self, street: Option<&str>) -> bool {
        match &self.street_code {
            None => true,
            Some(own) => street == Some(own.as_str()),
        }
    }

    /// The street a list must be limited to, given what the caller asked for: `Err(())` when
    /// the caller asked for another street than their own (the list is then empty).
    fn street_filter(&self, asked: Option<&str>) -> std::result::Result<Option<String>, ()> {
        match (&self.street_code, asked.filter(|s| !s.is_empty())) {
            (Some(own), Some(asked)) if own != asked => Err(()),
            (Some(own), _) => Ok(Some(own.clone())),
            (None, asked) => Ok(asked.map(str::to_owned)),
        }
    }
}

/// A staff account and its scope, for the administrator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StaffAccountView {
    pub user_id: String,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub division_code: Option<String>,
    pub division_name: Option<String>,
    pub org_id: Option<String>,
    pub can_unmask: bool,
}

/// An administrator setting a staff account's scope.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffScopeInput {
    /// A street or town code of the region pack; absent or empty: district-wide.
    #[serde(default)]
    pub division_code: Option<String>,
    /// The provider organization the account works for, if any.
    #[serde(default)]
    pub org_id: Option<String>,
    #[serde(default)]
    pub can_unmask: bool,
}

// ---------------------------------------------------------------------------------------------
// Inputs and views

/// A household to register. The head is a member too (relation `head`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HouseholdInput {
    /// An assistance category code (`subsistence`, `near_subsistence`, …).
    pub category: String,
    /// The street or town (街道/镇) code.
    pub street_code: String,
    /// A community or village of that street.
    pub community_code: String,
    pub head_name: String,
    pub head_id_number: String,
    #[serde(default)]
    pub phone: Option<String>,
    pub address: String,
    /// Per-capita income, fen per person per year.
    pub per_capita_income_fen: i64,
    /// The other people of the household.
    #[serde(default)]
    pub members: Vec<MemberInput>,
    /// The head of household agreed to be registered (recorded with the staff member and the time).
    pub consent: bool,
}

/// A member of a household to register.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberInput {
    pub name: String,
    pub id_number: String,
    /// `spouse`, `child`, `parent`, `grandchild`, `sibling` or `other`.
    pub relation: String,
    #[serde(default)]
    pub phone: Option<String>,
    /// The member's own assistance category, when it differs from the household's.
    #[serde(default)]
    pub category: Option<String>,
}

/// Changes to a household; absent fields stay as they are (an empty phone removes it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HouseholdUpdate {
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    /// Per-capita income, fen per person per year.
    #[serde(default)]
    pub per_capita_income_fen: Option<i64>,
}

/// Which households a list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::IntoParams)]
pub struct HouseholdFilter {
    pub street_code: Option<String>,
    pub community_code: Option<String>,
    pub category: Option<String>,
    /// Exact ID number of any member (searched by keyed digest, never stored or logged).
    pub id_number: Option<String>,
}

/// A household in a list, masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HouseholdSummary {
    pub id: String,
    pub category: String,
    pub category_name: String,
    pub street_code: Option<String>,
    pub street_name: String,
    pub community_code: String,
    pub community_name: String,
    pub member_count: i64,
    pub head_name_masked: String,
    pub head_id_masked: String,
    pub created_at: String,
}

/// A page of households.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HouseholdPage {
    pub total: i64,
    pub items: Vec<HouseholdSummary>,
}

/// A member, masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MemberView {
    pub id: String,
    pub relation: String,
    pub relation_name: String,
    pub name_masked: String,
    pub id_masked: String,
    pub phone_masked: Option<String>,
    pub birth_year: i64,
    pub category: Option<String>,
    pub category_name: Option<String>,
    pub participant_id: Option<String>,
}

/// A household, masked: what every page and response shows by default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HouseholdView {
    pub id: String,
    pub category: String,
    pub category_name: String,
    pub street_code: Option<String>,
    pub street_name: String,
    pub community_code: String,
    pub community_name: String,
    pub member_count: i64,
    pub head_name_masked: String,
    pub head_id_masked: String,
    pub phone_masked: Option<String>,
    pub address_masked: String,
    /// Where the per-capita income stands (`below_subsistence`, `below_edge_line`,
    /// `above_edge_line`), not the amount; `None` when no income is recorded.
    pub income_band: Option<String>,
    pub income_band_name: Option<String>,
    pub consent_at: Option<String>,
    pub consent_by: Option<String>,
    pub registered_by: Option<String>,
    pub created_at: String,
    pub updated_at: Option<String>,
    pub members: Vec<MemberView>,
}

/// Asking to see a household's personal data in clear.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnmaskInput {
    /// Why (查询事由): required, journaled.
    pub reason: String,
    /// Which of `name`, `id_number`, `phone`, `address`, `income`; empty: all.
    #[serde(default)]
    pub fields: Vec<String>,
}

/// A member in clear: only the fields asked for are filled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UnmaskedMember {
    pub id: String,
    pub relation_name: String,
    pub name: Option<String>,
    pub id_number: Option<String>,
    pub phone: Option<String>,
}

/// A household's personal data in clear, after a journaled, reasoned request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UnmaskedHousehold {
    pub household_id: String,
    pub fields: Vec<String>,
    pub head_name: Option<String>,
    pub head_id_number: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub per_capita_income_fen: Option<i64>,
    pub members: Vec<UnmaskedMember>,
    /// The journal entry that recorded this read.
    pub journal_seq: i64,
}

/// A need to register for a household.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NeedInput {
    /// A service category code of the region pack.
    pub category: String,
    pub description: String,
    /// The member the need is for, if one.
    #[serde(default)]
    pub member_id: Option<String>,
}

/// Closing a need.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseNeedInput {
    pub reason: String,
}

/// Which needs a list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::IntoParams)]
pub struct NeedFilter {
    pub household_id: Option<String>,
    /// `open` (open and ordered, the default), `met`, `closed` or `all`.
    pub state: Option<String>,
    pub street_code: Option<String>,
}

/// A need as staff see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct NeedView {
    pub id: String,
    pub household_id: String,
    pub member_id: Option<String>,
    pub category: String,
    pub category_name: String,
    pub description: String,
    pub state: String,
    pub state_name: String,
    pub registered_by: String,
    pub registered_at: String,
    pub last_served_at: Option<String>,
    pub closed_at: Option<String>,
    pub close_reason: Option<String>,
    pub street_name: String,
    pub community_name: String,
    pub head_name_masked: String,
}

/// What the edge list asks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::IntoParams)]
pub struct EdgeQuery {
    /// Needs nothing reached for this many days are listed (default 30).
    pub unreached_days: Option<i64>,
    pub street_code: Option<String>,
}

/// A household under the edge line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EdgeIncomeItem {
    pub household_id: String,
    pub category: String,
    pub category_name: String,
    pub street_name: String,
    pub community_name: String,
    pub head_name_masked: String,
    pub member_count: i64,
    /// How far the per-capita income is under the line, coarsely: band `k` (1 to 10) means
    /// more than `(k - 1) × 10%` and at most `k × 10%` of the line. The exact gap is not
    /// given, since the line minus the gap would be the income.
    pub gap_band: i64,
    /// The band as staff read it, e.g. `低于边缘线 30%–40%`.
    pub gap_band_name: String,
}

/// A need nothing has reached for a while.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UnreachedNeed {
    pub need_id: String,
    pub household_id: String,
    pub category: String,
    pub category_name: String,
    pub description: String,
    pub state: String,
    pub street_name: String,
    pub community_name: String,
    pub head_name_masked: String,
    pub registered_at: String,
    pub last_served_at: Option<String>,
    /// Whole days since the need was last served (or registered).
    pub days_waiting: i64,
}

/// The edge list (边缘救助): households not in subsistence whose income is under the line, and
/// households with needs nothing reached in `unreached_days`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EdgeReport {
    /// The year of the clock in the region's time zone.
    pub year: i16,
    /// The year whose standard applies (the latest at or before `year` the pack has).
    pub standard_year: Option<i16>,
    pub subsistence_standard_fen: Option<i64>,
    pub edge_multiplier: String,
    /// The near-subsistence line, fen per person per year.
    pub edge_line_fen: Option<i64>,
    pub under_line_total: i64,
    /// Furthest under the line (closest to subsistence) first, at most 500.
    pub under_line: Vec<EdgeIncomeItem>,
    pub unreached_days: i64,
    pub unreached_total: i64,
    /// Longest waiting first, at most 500.
    pub unreached: Vec<UnreachedNeed>,
}

// ---------------------------------------------------------------------------------------------
// Validation helpers

pub(crate) fn text(field: &str, value: &str, what: &str, max: usize) -> Result<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(AppError::invalid(
            field,
            format!("{}.required", field_code(field)),
            format!("请填写{what}。"),
        ));
    }
    if v.chars().count() > max {
        return Err(AppError::invalid(
            field,
            format!("{}.too_long", field_code(field)),
            format!("{what}不能超过 {max} 个字。"),
        ));
    }
    if v.chars().any(|c| c.is_control() && c != '\n' && c != '\r') {
        return Err(AppError::invalid(
            field,
            format!("{}.invalid", field_code(field)),
            format!("{what}含有不可见的控制字符，请重新输入。"),
        ));
    }
    Ok(v.to_owned())
}

/// `members[2].name` → `member.name` for a stable machine code.
fn field_code(field: &str) -> String {
    match field.split_once('.') {
        Some((head, rest)) if head.starts_with("members[") => format!("member.{rest}"),
        _ => field.to_owned(),
    }
}

fn id_number(field: &str, value: &str, what: &str) -> Result<IdNumber> {
    IdNumber::parse(value)
        .map_err(|e| AppError::invalid(field, e.code(), format!("{what}：{}", e.message_zh())))
}

fn assistance_category(field: &str, code: &str) -> Result<&'static assistance::AssistanceCategory> {
    category_of(code.trim()).ok_or_else(|| {
        let names: Vec<String> = CATEGORIES
            .iter()
            .map(|c| format!("{}（{}）", c.code, c.name))
            .collect();
        AppError::invalid(
            field,
            "registry.category_unknown",
            format!("救助类别应为以下之一：{}。", names.join("、")),
        )
    })
}

fn stored_instant(text: &str) -> Result<Timestamp> {
    parse_instant(text).map_err(AppError::internal)
}

fn household_not_found() -> AppError {
    AppError {
        message: "找不到这户家庭：编号有误，或不在您负责的街道。".into(),
        ..AppError::not_found("household")
    }
}

fn need_state_name(state: &str) -> &'static str {
    match state {
        "open" => "待服务",
        "ordered" => "已下单",
        "met" => "已服务",
        "closed" => "已关闭",
        _ => "",
    }
}

impl App {
    // -----------------------------------------------------------------------------------------
    // Scope

    /// The scope of a staff account or administrator; members are refused.
    pub async fn staff_scope(&self, actor: &Actor) -> Result<StaffScope> {
        actor.require_staff()?;
        let is_admin = actor.role == Role::Admin;
        let row = self.store().staff_scope(&actor.user_id).await?;
        Ok(match row {
            Some(row) => StaffScope {
                user_id: actor.user_id.clone(),
                is_admin,
                // Administrators are district-wide whatever their row says.
                street_code: if is_admin { None } else { row.division_code },
                org_id: row.org_id,
                can_unmask: is_admin || row.can_unmask,
            },
            // An actor with no account row (the CLI's and the demo's own actors): district-wide,
            // unmasking only for an administrator.
            None => StaffScope {
                user_id: actor.user_id.clone(),
                is_admin,
                street_code: None,
                org_id: None,
                can_unmask: is_admin,
            },
        })
    }

    /// The scope of an account that may read the registry: as [`App::staff_scope`], and an
    /// organization's staff are refused like members (403), so no household, need, edge list or
    /// unmasking reaches them.
    pub(crate) async fn registry_scope(&self, actor: &Actor) -> Result<StaffScope> {
        let scope = self.staff_scope(actor).await?;
        if !scope.sees_registry() {
            return Err(AppError::new(
                ErrorKind::Forbidden,
                "registry.org_staff_forbidden",
                "机构工作人员不能查看低收入人口库；请由街道或区里的工作人员办理。",
            ));
        }
        Ok(scope)
    }

    /// The name of a division of the pack, or the code when unknown.
    pub(crate) fn area_name(&self, code: Option<&str>) -> String {
        code.and_then(|c| self.pack().division(c))
            .map_or_else(|| code.unwrap_or("").to_owned(), |d| d.name.clone())
    }

    /// Checks that `code` is a street or town of the pack.
    pub(crate) fn street_of_pack(&self, field: &str, code: &str) -> Result<String> {
        let code = code.trim();
        match self.pack().division(code) {
            Some(d) if matches!(d.level, DivisionLevel::Street | DivisionLevel::Town) => {
                Ok(code.to_owned())
            }
            _ => {
                let names: Vec<String> = self
                    .pack()
                    .streets_and_towns()
                    .map(|d| format!("{}（{}）", d.code.as_str(), d.name))
                    .collect();
                Err(AppError::invalid(
                    field,
                    "registry.street_unknown",
                    format!(
                        "街道（镇）代码 `{code}` 不是本区的街道或镇，应为以下之一：{}。",
                        names.join("、")
                    ),
                ))
            }
        }
    }

    fn scope_view(&self, row: StaffScopeRow) -> StaffAccountView {
        StaffAccountView {
            division_name: row
                .division_code
                .as_deref()
                .map(|c| self.area_name(Some(c))),
            user_id: row.user_id,
            username: row.username,
            display_name: row.display_name,
            role: row.role,
            division_code: row.division_code,
            org_id: row.org_id,
            can_unmask: row.can_unmask,
        }
    }

    /// Staff and administrator accounts with their scopes (administrators only).
    pub async fn staff_accounts(&self, by: &Actor) -> Result<Vec<StaffAccountView>> {
        by.require_admin()?;
        Ok(self
            .store()
            .staff_accounts()
            .await?
            .into_iter()
            .map(|r| self.scope_view(r))
            .collect())
    }

    /// Sets a staff account's street, organization and unmasking permission (administrators
    /// only). Takes effect on the account's next request.
    pub async fn set_staff_scope(
        &self,
        by: &Actor,
        user_id: &str,
        input: &StaffScopeInput,
    ) -> Result<StaffAccountView> {
        by.require_admin()?;
        let Some(target) = self.store().staff_scope(user_id).await? else {
            return Err(AppError::not_found("user"));
        };
        if target.role != "staff" {
            return Err(AppError::invalid(
                "user_id",
                "user.scope_not_staff",
                "只能为工作人员（staff）账号设置负责街道、所属组织和查看权限；管理员始终为全区范围。",
            ));
        }
        let division = match input.division_code.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(code) => Some(self.street_of_pack("division_code", code)?),
        };
        let org = match input.org_id.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(org) => {
                if !self.store().organization_exists(org).await? {
                    return Err(AppError::invalid(
                        "org_id",
                        "user.org_unknown",
                        format!("找不到编号为 `{org}` 的组织，请核对组织编号（org_…）。"),
                    ));
                }
                Some(org.to_owned())
            }
        };
        let now = self.clock().now();
        let mut tx = self.store().begin().await?;
        if !tx
            .set_staff_scope(
                user_id,
                division.as_deref(),
                org.as_deref(),
                input.can_unmask,
            )
            .await?
        {
            return Err(AppError::not_found("user"));
        }
        tx.journal(
            now,
            NewEntry {
                actor: by.user_id.clone(),
                kind: "user.scope_set".into(),
                subject: user_id.to_owned(),
                payload: serde_json::json!({
                    "division_code": division,
                    "org_id": org,
                    "can_unmask": input.can_unmask,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        let row = self
            .store()
            .staff_scope(user_id)
            .await?
            .ok_or_else(|| AppError::not_found("user"))?;
        Ok(self.scope_view(row))
    }

    // -----------------------------------------------------------------------------------------
    // Households

    fn decrypt_income(&self, cipher: Option<&str>) -> Result<Option<Fen>> {
        let Some(cipher) = cipher else {
            return Ok(None);
        };
        let text = self.vault().decrypt(cipher)?;
        let fen = text
            .parse::<i64>()
            .map_err(|_| AppError::internal(std::io::Error::other("stored income is not fen")))?;
        Ok(Some(Fen::new(fen)))
    }

    /// The subsistence standard and edge line of the year of the clock (or of the latest year
    /// before it the pack has a standard for).
    fn lines_now(&self) -> (i16, Option<(i16, Fen, Fen)>) {
        let year = self.local_year(self.clock().now());
        let pack = self.pack();
        let standard_year = pack
            .subsistence_standard
            .range(..=year)
            .next_back()
            .map(|(y, _)| *y);
        let lines = standard_year.and_then(|y| {
            let standard = *pack.subsistence_standard.get(&y)?;
            Some((y, standard, pack.edge_line(y)?))
        });
        (year, lines)
    }

    /// The calendar year of `at` in the region's time zone.
    pub(crate) fn local_year(&self, at: Timestamp) -> i16 {
        jiff::tz::TimeZone::get(&self.pack().timezone)
            .map_or_else(
                |_| at.to_zoned(jiff::tz::TimeZone::UTC),
                |tz| at.to_zoned(tz),
            )
            .year()
    }

    fn member_view(&self, m: &MemberRow) -> MemberView {
        MemberView {
            id: m.id.clone(),
            relation: m.relation.clone(),
            relation_name: relation_name(&m.relation).to_owned(),
            name_masked: m.name_masked.clone(),
            id_masked: m.id_masked.clone(),
            phone_masked: m.phone_masked.clone(),
            birth_year: m.birth_year,
            category_name: m
                .category
                .as_deref()
                .and_then(category_of)
                .map(|c| c.name.to_owned()),
            category: m.category.clone(),
            participant_id: m.participant_id.clone(),
        }
    }

    fn summary(&self, h: &HouseholdRecord) -> HouseholdSummary {
        HouseholdSummary {
            id: h.id.clone(),
            category: h.category.clone(),
            category_name: category_of(&h.category)
                .map_or_else(|| h.category.clone(), |c| c.name.to_owned()),
            street_name: self.area_name(h.street_code.as_deref()),
            street_code: h.street_code.clone(),
            community_name: self.area_name(Some(&h.community_code)),
            community_code: h.community_code.clone(),
            member_count: h.member_count,
            head_name_masked: h.head_name_masked.clone().unwrap_or_default(),
            head_id_masked: h.head_id_masked.clone().unwrap_or_default(),
            created_at: h.created_at.clone(),
        }
    }

    async fn household_view(&self, h: &HouseholdRecord) -> Result<HouseholdView> {
        let members = self.store().household_members(&h.id).await?;
        let income = self.decrypt_income(h.income_cipher.as_deref())?;
        let band = match (income, self.lines_now().1) {
            (Some(income), Some((_, standard, line))) => {
                Some(IncomeBand::of(income, standard, line))
            }
            _ => None,
        };
        let s = self.summary(h);
        Ok(HouseholdView {
            id: s.id,
            category: s.category,
            category_name: s.category_name,
            street_code: s.street_code,
            street_name: s.street_name,
            community_code: s.community_code,
            community_name: s.community_name,
            member_count: s.member_count,
            head_name_masked: s.head_name_masked,
            head_id_masked: s.head_id_masked,
            phone_masked: h.phone_masked.clone(),
            address_masked: h.address_masked.clone().unwrap_or_default(),
            income_band: band.map(|b| b.code().to_owned()),
            income_band_name: band.map(|b| b.name_zh().to_owned()),
            consent_at: h.consent_at.clone(),
            consent_by: h.consent_by.clone(),
            registered_by: h.registered_by.clone(),
            created_at: h.created_at.clone(),
            updated_at: h.updated_at.clone(),
            members: members.iter().map(|m| self.member_view(m)).collect(),
        })
    }

    /// The household if the caller may see it; "not found" otherwise (also for another street).
    pub(crate) async fn visible_household(
        &self,
        scope: &StaffScope,
        id: &str,
    ) -> Result<HouseholdRecord> {
        match self.store().household(id.trim()).await? {
            Some(h) if scope.sees(h.street_code.as_deref()) => Ok(h),
            _ => Err(household_not_found()),
        }
    }

    /// Registers a household with its members. Nothing is written unless every field is valid,
    /// consent is given, and no ID number is in the registry already.
    pub async fn register_household(
        &self,
        actor: &Actor,
        input: &HouseholdInput,
    ) -> Result<HouseholdView> {
        let scope = self.registry_scope(actor).await?;
        let category = assistance_category("category", &input.category)?;
        let street = self.street_of_pack("street_code", &input.street_code)?;
        if !scope.sees(Some(&street)) {
            return Err(AppError::invalid(
                "street_code",
                "registry.street_outside_scope",
                format!(
                    "您只能登记本街道（{}）的家庭。",
                    self.area_name(scope.street_code.as_deref())
                ),
            ));
        }
        let community = input.community_code.trim();
        let community_ok = self.pack().division(community).is_some_and(|d| {
            matches!(d.level, DivisionLevel::Community | DivisionLevel::Village)
                && d.parent.as_ref().is_some_and(|p| p.as_str() == street)
        });
        if !community_ok {
            return Err(AppError::invalid(
                "community_code",
                "registry.community_not_in_street",
                format!(
                    "社区（村）代码 `{community}` 不是{}下属的社区或村，请从该街道的社区中选择。",
                    self.area_name(Some(&street))
                ),
            ));
        }
        let head_name = text("head_name", &input.head_name, "户主姓名", MAX_NAME_CHARS)?;
        let head_id = id_number("head_id_number", &input.head_id_number, "户主身份证号")?;
        let phone = match input.phone.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(p) => Some(valid_phone("phone", p)?),
        };
        let address = text("address", &input.address, "家庭住址", MAX_TEXT_CHARS)?;
        if !(0..=MAX_INCOME_FEN).contains(&input.per_capita_income_fen) {
            return Err(AppError::invalid(
                "per_capita_income_fen",
                "registry.income_invalid",
                "家庭人均年收入应为 0 到 1000 万元之间的金额（以分为单位的整数）。",
            ));
        }
        if input.members.len() > MAX_MEMBERS {
            return Err(AppError::invalid(
                "members",
                "registry.too_many_members",
                format!("一户最多登记户主以外的 {MAX_MEMBERS} 名成员。"),
            ));
        }
        struct Person {
            name: String,
            id: IdNumber,
            relation: String,
            phone: Option<String>,
            category: Option<String>,
            field: String,
        }
        let mut people = vec![Person {
            name: head_name.clone(),
            id: head_id.clone(),
            relation: "head".into(),
            phone: phone.clone(),
            category: None,
            field: "head_id_number".into(),
        }];
        for (i, m) in input.members.iter().enumerate() {
            let f = |name: &str| format!("members[{i}].{name}");
            let name = text(&f("name"), &m.name, "成员姓名", MAX_NAME_CHARS)?;
            let id = id_number(&f("id_number"), &m.id_number, "成员身份证号")?;
            let relation = m.relation.trim();
            if relation == "head" || !RELATIONS.iter().any(|(c, _)| *c == relation) {
                return Err(AppError::invalid(
                    &f("relation"),
                    "member.relation_unknown",
                    "与户主关系应为 spouse（配偶）、child（子女）、parent（父母）、grandchild（孙子女）、sibling（兄弟姐妹）或 other（其他）。",
                ));
            }
            let phone = match m.phone.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(p) => Some(valid_phone(&f("phone"), p)?),
            };
            let category = match m.category.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(c) => Some(assistance_category(&f("category"), c)?.code.to_owned()),
            };
            people.push(Person {
                name,
                id,
                relation: relation.to_owned(),
                phone,
                category,
                field: f("id_number"),
            });
        }
        let mut seen = HashSet::new();
        for p in &people {
            if !seen.insert(p.id.expose().to_owned()) {
                return Err(AppError::invalid(
                    &p.field,
                    "registry.id_number_repeated",
                    "同一身份证号在本户中出现了两次，请核对成员信息。",
                ));
            }
        }
        if !input.consent {
            return Err(AppError::invalid(
                "consent",
                "registry.consent_required",
                "登记前须取得户主本人同意：请向户主说明登记用途并取得同意后，勾选“已取得本人同意”再提交。",
            ));
        }

        let now = self.clock().now();
        let now_text = format_instant(now);
        let vault = self.vault();
        let household_id = new_id("hh");
        let digests: Vec<String> = people.iter().map(|p| self.id_digest(&p.id)).collect();
        let mut members = Vec::with_capacity(people.len());
        // Member ids sort in the order entered (the head first): `hm_<household>_01`, …
        let suffix = household_id.trim_start_matches("hh_").to_owned();
        for (i, (p, digest)) in people.iter().zip(&digests).enumerate() {
            let participant_id = self
                .store()
                .participant_by_id_digest(digest)
                .await?
                .map(|r| r.id);
            members.push(MemberRow {
                id: format!("hm_{suffix}_{:02}", i + 1),
                household_id: household_id.clone(),
                participant_id,
                relation: p.relation.clone(),
                name_cipher: vault.encrypt(&p.name),
                name_masked: mask_name(&p.name),
                id_digest: digest.clone(),
                id_cipher: vault.encrypt(p.id.expose()),
                id_masked: p.id.masked(),
                phone_cipher: p.phone.as_deref().map(|x| vault.encrypt(x)),
                phone_masked: p.phone.as_deref().map(mask_phone),
                birth_year: i64::from(p.id.birth_date().year()),
                category: p.category.clone(),
                created_at: now_text.clone(),
            });
        }
        let row = RegistryHouseholdRow {
            id: household_id.clone(),
            street_code: street.clone(),
            community_code: community.to_owned(),
            category: category.code.to_owned(),
            member_count: i64::try_from(people.len()).map_err(AppError::internal)?,
            head_name_cipher: vault.encrypt(&head_name),
            head_name_masked: mask_name(&head_name),
            head_id_digest: digests[0].clone(),
            head_id_cipher: vault.encrypt(head_id.expose()),
            head_id_masked: head_id.masked(),
            phone_cipher: phone.as_deref().map(|x| vault.encrypt(x)),
            phone_masked: phone.as_deref().map(mask_phone),
            address_cipher: vault.encrypt(&address),
            address_masked: assistance::mask_address(&address),
            income_cipher: vault.encrypt(&input.per_capita_income_fen.to_string()),
            consent_at: now_text.clone(),
            consent_by: actor.user_id.clone(),
            registered_by: actor.user_id.clone(),
            created_at: now_text.clone(),
            updated_at: now_text.clone(),
            synthetic: false,
        };
        let taken = || {
            AppError::conflict(
                "registry.id_number_taken",
                "该身份证号已登记在低收入人口库中，一人只能在一户中登记。请先查询已有登记。",
            )
        };
        let mut tx = self.store().begin().await?;
        for (digest, p) in digests.iter().zip(&people) {
            if tx.member_digest_taken(digest).await? {
                return Err(AppError {
                    field: Some(p.field.clone()),
                    ..taken()
                });
            }
        }
        tx.insert(&row).await?;
        tx.insert_all(&members).await.map_err(|e: StoreError| {
            if e.is_unique_violation() {
                taken()
            } else {
                e.into()
            }
        })?;
        tx.journal(
            now,
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "registry.household_registered".into(),
                subject: household_id.clone(),
                payload: serde_json::json!({
                    "street_code": street,
                    "community_code": community,
                    "category": category.code,
                    "members": members.len(),
                    "member_ids": members.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
                    "consent_by": actor.user_id,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        let stored = self
            .store()
            .household(&household_id)
            .await?
            .ok_or_else(household_not_found)?;
        self.household_view(&stored).await
    }

    /// Households the caller may see, newest first; filters by street, community, category and
    /// the exact ID number of any member.
    pub async fn households(
        &self,
        actor: &Actor,
        filter: &HouseholdFilter,
        offset: i64,
        limit: i64,
    ) -> Result<HouseholdPage> {
        let scope = self.registry_scope(actor).await?;
        let empty = HouseholdPage {
            total: 0,
            items: Vec::new(),
        };
        let Ok(street) = scope.street_filter(filter.street_code.as_deref()) else {
            return Ok(empty);
        };
        let nonempty = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let mut query = HouseholdQuery {
            street_code: street,
            community_code: nonempty(&filter.community_code),
            category: nonempty(&filter.category),
            household_id: None,
        };
        if let Some(text) = nonempty(&filter.id_number) {
            let id = id_number("id_number", &text, "身份证号")?;
            match self
                .store()
                .member_by_id_digest(&self.id_digest(&id))
                .await?
            {
                Some(m) => query.household_id = Some(m.household_id),
                None => return Ok(empty),
            }
        }
        let (rows, total) = self
            .store()
            .households_page(&query, offset.max(0), limit.clamp(1, crate::MAX_PAGE_SIZE))
            .await?;
        Ok(HouseholdPage {
            total,
            items: rows.iter().map(|h| self.summary(h)).collect(),
        })
    }

    /// Changes a household's category, phone, address or per-capita income (a review, a new
    /// income assessment). Fields left out stay as they are; the journal names the fields
    /// changed, never their values.
    pub async fn update_household(
        &self,
        actor: &Actor,
        id: &str,
        input: &HouseholdUpdate,
    ) -> Result<HouseholdView> {
        let scope = self.registry_scope(actor).await?;
        let h = self.visible_household(&scope, id).await?;
        let vault = self.vault();
        let mut changed = Vec::new();
        let category = match input.category.as_deref().map(str::trim) {
            None | Some("") => h.category.clone(),
            Some(c) => {
                let code = assistance_category("category", c)?.code.to_owned();
                if code != h.category {
                    changed.push("category");
                }
                code
            }
        };
        let (phone_cipher, phone_masked) = match input.phone.as_deref().map(str::trim) {
            None => (h.phone_cipher.clone(), h.phone_masked.clone()),
            Some("") => {
                changed.push("phone");
                (None, None)
            }
            Some(p) => {
                let p = valid_phone("phone", p)?;
                changed.push("phone");
                (Some(vault.encrypt(&p)), Some(mask_phone(&p)))
            }
        };
        let (address_cipher, address_masked) = match input.address.as_deref() {
            None => (h.address_cipher.clone(), h.address_masked.clone()),
            Some(a) => {
                let a = text("address", a, "家庭住址", MAX_TEXT_CHARS)?;
                changed.push("address");
                (Some(vault.encrypt(&a)), Some(assistance::mask_address(&a)))
            }
        };
        let income_cipher = match input.per_capita_income_fen {
            None => h.income_cipher.clone(),
            Some(fen) if (0..=MAX_INCOME_FEN).contains(&fen) => {
                changed.push("income");
                Some(vault.encrypt(&fen.to_string()))
            }
            Some(_) => {
                return Err(AppError::invalid(
                    "per_capita_income_fen",
                    "registry.income_invalid",
                    "家庭人均年收入应为 0 到 1000 万元之间的金额（以分为单位的整数）。",
                ))
            }
        };
        if changed.is_empty() {
            return Err(AppError::invalid(
                "household",
                "registry.nothing_to_update",
                "没有要修改的内容：请填写救助类别、电话、住址或人均年收入中的至少一项。",
            ));
        }
        let now = self.clock().now();
        let mut tx = self.store().begin().await?;
        tx.update_household(&cishan_store::HouseholdUpdateRow {
            id: h.id.clone(),
            category,
            phone_cipher,
            phone_masked,
            address_cipher,
            address_masked,
            income_cipher,
            updated_at: format_instant(now),
        })
        .await?;
        tx.journal(
            now,
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "registry.household_updated".into(),
                subject: h.id.clone(),
                payload: serde_json::json!({ "fields": changed }),
            },
        )
        .await?;
        tx.commit().await?;
        let stored = self
            .store()
            .household(&h.id)
            .await?
            .ok_or_else(household_not_found)?;
        self.household_view(&stored).await
    }

    /// One household, masked.
    pub async fn household(&self, actor: &Actor, id: &str) -> Result<HouseholdView> {
        let scope = self.registry_scope(actor).await?;
        let h = self.visible_household(&scope, id).await?;
        self.household_view(&h).await
    }

    /// A household's personal data in clear, for an administrator or staff allowed to unmask,
    /// with a stated reason. The read is journaled (who, which household, which fields, why)
    /// before anything is returned; the values never are.
    pub async fn unmask_household(
        &self,
        actor: &Actor,
        id: &str,
        input: &UnmaskInput,
    ) -> Result<UnmaskedHousehold> {
        let scope = self.registry_scope(actor).await?;
        let h = self.visible_household(&scope, id).await?;
        if !scope.can_unmask {
            return Err(AppError {
                message: "您的账号没有查看完整个人信息的权限。如工作确需查看，请联系管理员开通“可查看完整信息”。".into(),
                code: "registry.unmask_forbidden".into(),
                ..AppError::forbidden()
            });
        }
        let reason = input.reason.trim();
        if reason.is_empty() {
            return Err(AppError::invalid(
                "reason",
                "registry.unmask_reason_required",
                "查看完整个人信息须填写查询事由（例如：核对救助资格、入户走访联系），请填写后再提交。",
            ));
        }
        let reason = text("reason", reason, "查询事由", MAX_REASON_CHARS)?;
        let mut fields: Vec<String> = Vec::new();
        for f in &input.fields {
            let f = f.trim();
            if !UNMASK_FIELDS.contains(&f) {
                return Err(AppError::invalid(
                    "fields",
                    "registry.unmask_field_unknown",
                    "可查看的字段为 name（姓名）、id_number（身份证号）、phone（电话）、address（住址）、income（收入）。",
                ));
            }
            if !fields.iter().any(|x| x == f) {
                fields.push(f.to_owned());
            }
        }
        if fields.is_empty() {
            fields = UNMASK_FIELDS.iter().map(|s| (*s).to_owned()).collect();
        }
        let wants = |f: &str| fields.iter().any(|x| x == f);
        let members = self.store().household_members(&h.id).await?;
        let vault = self.vault();
        let open = |c: Option<&str>| c.map(|c| vault.decrypt(c)).transpose();
        let mut out_members = Vec::with_capacity(members.len());
        for m in &members {
            out_members.push(UnmaskedMember {
                id: m.id.clone(),
                relation_name: relation_name(&m.relation).to_owned(),
                name: if wants("name") {
                    open(Some(&m.name_cipher))?
                } else {
                    None
                },
                id_number: if wants("id_number") {
                    open(Some(&m.id_cipher))?
                } else {
                    None
                },
                phone: if wants("phone") {
                    open(m.phone_cipher.as_deref())?
                } else {
                    None
                },
            });
        }
        let now = self.clock().now();
        let mut tx = self.store().begin().await?;
        let entry = tx
            .journal(
                now,
                NewEntry {
                    actor: actor.user_id.clone(),
                    kind: "registry.unmasked".into(),
                    subject: h.id.clone(),
                    payload: serde_json::json!({
                        "fields": fields,
                        "reason": reason,
                        "members": members.len(),
                    }),
                },
            )
            .await?;
        tx.commit().await?;
        Ok(UnmaskedHousehold {
            household_id: h.id.clone(),
            head_name: if wants("name") {
                open(h.head_name_cipher.as_deref())?
            } else {
                None
            },
            head_id_number: if wants("id_number") {
                open(h.head_id_cipher.as_deref())?
            } else {
                None
            },
            phone: if wants("phone") {
                open(h.phone_cipher.as_deref())?
            } else {
                None
            },
            address: if wants("address") {
                open(h.address_cipher.as_deref())?
            } else {
                None
            },
            per_capita_income_fen: if wants("income") {
                self.decrypt_income(h.income_cipher.as_deref())?
                    .map(Fen::get)
            } else {
                None
            },
            members: out_members,
            fields,
            journal_seq: entry.seq,
        })
    }

    // -----------------------------------------------------------------------------------------
    // Needs

    fn need_view(&self, n: &NeedListed) -> NeedView {
        let r = &n.need;
        NeedView {
            id: r.id.clone(),
            household_id: r.household_id.clone(),
            member_id: r.member_id.clone(),
            category_name: self
                .pack()
                .service_categories
                .iter()
                .find(|c| c.code == r.category)
                .map_or_else(|| r.category.clone(), |c| c.name.clone()),
            category: r.category.clone(),
            description: r.description.clone(),
            state: r.state.clone(),
            state_name: need_state_name(&r.state).to_owned(),
            registered_by: r.registered_by.clone(),
            registered_at: r.registered_at.clone(),
            last_served_at: r.last_served_at.clone(),
            closed_at: r.closed_at.clone(),
            close_reason: r.close_reason.clone(),
            street_name: self.area_name(n.street_code.as_deref()),
            community_name: self.area_name(Some(&n.community_code)),
            head_name_masked: n.head_name_masked.clone().unwrap_or_default(),
        }
    }

    async fn need_listed(&self, h: &HouseholdRecord, need_id: &str) -> Result<NeedView> {
        let need = self
            .store()
            .need(need_id)
            .await?
            .ok_or_else(|| AppError::not_found("need"))?;
        Ok(self.need_view(&NeedListed {
            need,
            street_code: h.street_code.clone(),
            community_code: h.community_code.clone(),
            head_name_masked: h.head_name_masked.clone(),
            household_category: h.category.clone(),
        }))
    }

    /// Registers a need for a household the caller may see.
    pub async fn register_need(
        &self,
        actor: &Actor,
        household_id: &str,
        input: &NeedInput,
    ) -> Result<NeedView> {
        let scope = self.registry_scope(actor).await?;
        let h = self.visible_household(&scope, household_id).await?;
        let category = input.category.trim();
        if !self
            .pack()
            .service_categories
            .iter()
            .any(|c| c.code == category)
        {
            let names: Vec<String> = self
                .pack()
                .service_categories
                .iter()
                .map(|c| format!("{}（{}）", c.code, c.name))
                .collect();
            return Err(AppError::invalid(
                "category",
                "need.category_unknown",
                format!("需求类别应为以下之一：{}。", names.join("、")),
            ));
        }
        let description = text(
            "description",
            &input.description,
            "需求描述",
            MAX_TEXT_CHARS,
        )?;
        let member_id = match input.member_id.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(m) => match self.store().household_member(m).await? {
                Some(row) if row.household_id == h.id => Some(row.id),
                _ => {
                    return Err(AppError::invalid(
                        "member_id",
                        "need.member_unknown",
                        "该成员不属于这户家庭，请从本户成员中选择。",
                    ))
                }
            },
        };
        let now = self.clock().now();
        let row = NeedRow {
            id: new_id("need"),
            household_id: h.id.clone(),
            member_id,
            category: category.to_owned(),
            description,
            state: "open".into(),
            registered_by: actor.user_id.clone(),
            registered_at: format_instant(now),
            last_served_at: None,
            closed_at: None,
            closed_by: None,
            close_reason: None,
        };
        let mut tx = self.store().begin().await?;
        tx.insert(&row).await?;
        tx.journal(
            now,
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "need.registered".into(),
                subject: row.id.clone(),
                payload: serde_json::json!({
                    "household_id": h.id,
                    "member_id": row.member_id,
                    "category": row.category,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        self.need_listed(&h, &row.id).await
    }

    /// Needs the caller may see: of one household, or of their street (or the district).
    pub async fn needs(&self, actor: &Actor, filter: &NeedFilter) -> Result<Vec<NeedView>> {
        let scope = self.registry_scope(actor).await?;
        let states: &[&str] = match filter.state.as_deref().map(str::trim) {
            None | Some("" | "open") => &["open", "ordered"],
            Some("met") => &["met"],
            Some("closed") => &["closed"],
            Some("all") => &["open", "ordered", "met", "closed"],
            Some(_) => {
                return Err(AppError::invalid(
                    "state",
                    "need.state_unknown",
                    "需求状态应为 open（待服务和已下单）、met（已服务）、closed（已关闭）或 all（全部）。",
                ))
            }
        };
        let household = match filter.household_id.as_deref().filter(|h| !h.is_empty()) {
            Some(h) => Some(self.visible_household(&scope, h).await?.id),
            None => None,
        };
        let Ok(street) = scope.street_filter(filter.street_code.as_deref()) else {
            return Ok(Vec::new());
        };
        let rows = self
            .store()
            .needs_listed(
                household.as_deref(),
                street.as_deref(),
                states,
                MAX_NEED_ROWS,
            )
            .await?;
        Ok(rows.iter().map(|n| self.need_view(n)).collect())
    }

    /// Closes a need (open or met) with a reason.
    pub async fn close_need(
        &self,
        actor: &Actor,
        need_id: &str,
        input: &CloseNeedInput,
    ) -> Result<NeedView> {
        let scope = self.registry_scope(actor).await?;
        let need = self
            .store()
            .need(need_id.trim())
            .await?
            .ok_or_else(|| AppError::not_found("need"))?;
        let h = match self.visible_household(&scope, &need.household_id).await {
            Ok(h) => h,
            Err(_) => return Err(AppError::not_found("need")),
        };
        let reason = text("reason", &input.reason, "关闭原因", MAX_REASON_CHARS)?;
        let now = self.clock().now();
        let mut tx = self.store().begin().await?;
        if !tx
            .close_need(&need.id, &actor.user_id, &format_instant(now), &reason)
            .await?
        {
            return Err(AppError::conflict(
                "need.not_closable",
                format!(
                    "这项需求目前为“{}”，不能关闭：已下单的需求请先在订单中处理。",
                    need_state_name(&need.state)
                ),
            ));
        }
        tx.journal(
            now,
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "need.closed".into(),
                subject: need.id.clone(),
                payload: serde_json::json!({ "household_id": h.id, "from": need.state }),
            },
        )
        .await?;
        tx.commit().await?;
        self.need_listed(&h, &need.id).await
    }

    // -----------------------------------------------------------------------------------------
    // The edge list

    /// The edge list (边缘救助) for the caller's street (or the district): households not in a
    /// subsistence-level category whose per-capita income is strictly under the near-subsistence
    /// line of the year, and needs that nothing has reached in `unreached_days` days. Incomes are
    /// decrypted here, in memory, and never returned, nor is the exact gap to the line (the line
    /// minus the gap would be the income): only a band of tenths of the line. The list is sorted
    /// here by the exact gap, largest first.
    pub async fn edge_households(&self, actor: &Actor, query: &EdgeQuery) -> Result<EdgeReport> {
        let scope = self.registry_scope(actor).await?;
        let days = query.unreached_days.unwrap_or(DEFAULT_UNREACHED_DAYS);
        if !(0..=MAX_UNREACHED_DAYS).contains(&days) {
            return Err(AppError::invalid(
                "unreached_days",
                "edge.days_invalid",
                format!("未服务天数应为 0 到 {MAX_UNREACHED_DAYS} 之间的整数。"),
            ));
        }
        let (year, lines) = self.lines_now();
        let street = scope.street_filter(query.street_code.as_deref());
        let mut report = EdgeReport {
            year,
            standard_year: lines.map(|l| l.0),
            subsistence_standard_fen: lines.map(|l| l.1.get()),
            edge_multiplier: self.pack().edge_multiplier.to_string(),
            edge_line_fen: lines.map(|l| l.2.get()),
            under_line_total: 0,
            under_line: Vec::new(),
            unreached_days: days,
            unreached_total: 0,
            unreached: Vec::new(),
        };
        let Ok(street) = street else {
            return Ok(report);
        };
        if let Some((_, _, line)) = lines {
            let excluded = subsistence_codes();
            let rows = self
                .store()
                .households_outside(street.as_deref(), &excluded, MAX_EDGE_SCAN)
                .await?;
            let mut under = Vec::new();
            for h in &rows {
                let Some(category) = category_of(&h.category) else {
                    continue;
                };
                let Some(income) = self.decrypt_income(h.income_cipher.as_deref())? else {
                    continue;
                };
                if let Some(gap) = edge_gap(category, income, line) {
                    under.push((gap.get(), h));
                }
            }
            under.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
            report.under_line_total = i64::try_from(under.len()).map_err(AppError::internal)?;
            report.under_line = under
                .into_iter()
                .take(MAX_EDGE_ROWS)
                .map(|(gap, h)| {
                    let s = self.summary(h);
                    let band = edge_gap_band(Fen::new(gap), line).unwrap_or(1);
                    EdgeIncomeItem {
                        household_id: s.id,
                        category: s.category,
                        category_name: s.category_name,
                        street_name: s.street_name,
                        community_name: s.community_name,
                        head_name_masked: s.head_name_masked,
                        member_count: s.member_count,
                        gap_band: band,
                        gap_band_name: edge_gap_band_name(band),
                    }
                })
                .collect();
        }
        let now = self.clock().now();
        let cutoff = now
            .checked_sub(SignedDuration::from_hours(days * 24))
            .map_err(AppError::internal)?;
        let (rows, total) = self
            .store()
            .unreached_needs(
                street.as_deref(),
                &format_instant(cutoff),
                i64::try_from(MAX_EDGE_ROWS).map_err(AppError::internal)?,
            )
            .await?;
        report.unreached_total = total;
        for n in &rows {
            let reached = n
                .need
                .last_served_at
                .as_deref()
                .unwrap_or(&n.need.registered_at);
            let waited = now.duration_since(stored_instant(reached)?);
            let v = self.need_view(n);
            report.unreached.push(UnreachedNeed {
                need_id: v.id,
                household_id: v.household_id,
                category: v.category,
                category_name: v.category_name,
                description: v.description,
                state: v.state,
                street_name: v.street_name,
                community_name: v.community_name,
                head_name_masked: v.head_name_masked,
                registered_at: v.registered_at,
                last_served_at: v.last_served_at,
                days_waiting: waited.as_secs() / 86_400,
            });
        }
        Ok(report)
    }
}
