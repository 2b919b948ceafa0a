//! The service catalogue and orders (制单—点单—评单).
//!
//! - Catalogue: organizations and volunteer teams publish services (category, what, where they
//!   serve, weekly capacity, time windows, eligibility). Volunteers take orders in the service
//!   categories listed for them (`volunteer_categories`), editable by them and by staff.
//! - Orders: the person served (a member linked to a registry member) or staff on their behalf
//!   picks a service or turns a need into an order. Every move goes through
//!   [`cishan_core::order::next_state`] and a compare-and-set UPDATE on the stored state, so an
//!   illegal or a lost race is refused with 409 naming the current state, and changes nothing.
//!   Every move writes an event (`order_events`) and a journal entry in its transaction; with an
//!   `Idempotency-Key` a retry returns the first result.
//! - Review: once per order, by the person served or by staff recording a follow-up call
//!   (marked `on_behalf`); the rating feeds the provider's score and the organization's average.
//! - A volunteer's order, when completed, records the minutes between start and completion (as
//!   the server recorded them) as pending: they count for nothing until verified, by the review
//!   (which confirms the service took place) or by staff (who may correct them down). Verified
//!   minutes become service records under the daily maximum and points through the same act
//!   path as verified activity hours (`source_kind = service_order`), once.
//!
//! Dispatch (派单) is in [`crate::dispatch`], early warnings (预警) in [`crate::alerts`].

use cishan_core::dispatch::{Scope, TimeWindows, VOLUNTEER_WEEKLY_CAPACITY};
use cishan_core::order::{next_state, IllegalTransition, OrderAction, OrderState};
use cishan_core::volunteer::{
    credit_within_daily_max, first_minutes_of, hours_text, minutes_by_local_day, session_minutes,
};
use cishan_store::{
    format_instant, parse_instant, NewEntry, OrderEventRow, OrderFilter, OrderRow, ReviewRow,
    ServiceFullRow, ServiceRecordDetail, Stamp, UserScope, WriteTx,
};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::donations::{new_id, replay, request_hash, save_replay, IdempotencyKey, Outcome};
use crate::{Actor, App, AppError, Result, MAX_PAGE_SIZE};

/// Longest description or comment accepted.
const MAX_TEXT_CHARS: usize = 500;
/// Longest service name.
const MAX_NAME_CHARS: usize = 100;
/// Largest weekly capacity of one service.
pub const MAX_CAPACITY_PER_WEEK: i64 = 10_000;
/// Service categories a volunteer may list at most.
pub const MAX_VOLUNTEER_CATEGORIES: usize = 3;
/// The points act source of a volunteer's completed order.
pub const POINTS_SOURCE: &str = "service_order";
/// The order event (and idempotency scope) of staff verifying a volunteer's minutes.
pub const VERIFY_MINUTES: &str = "verify_minutes";
/// How far in the past a wanted time may be: one day, for clocks and for an order entered the
/// day after it was asked for. Earlier is refused (`wanted_at.past`).
pub const WANTED_AT_SLACK: SignedDuration = SignedDuration::from_hours(24);

// ---------------------------------------------------------------------------------------------
// Inputs and views

/// A service to publish (or its new definition).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceInput {
    pub org_id: String,
    /// A volunteer team of the organization publishing it, if any.
    #[serde(default)]
    pub team_id: Option<String>,
    /// A service category code of the region pack.
    pub category: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// `community`, `street` or `district`.
    pub scope: String,
    /// The community (scope `community`), or a community or street of the district.
    #[serde(default)]
    pub division_code: Option<String>,
    pub capacity_per_week: i64,
    /// E.g. `weekdays 09:00-17:00; sat 09:00-12:00` or `工作日 09:00-17:00`; empty = any time.
    #[serde(default)]
    pub time_windows: String,
    /// Assistance categories served; empty = everyone.
    #[serde(default)]
    pub eligibility: Vec<String>,
    /// `published` (default) or `withdrawn`.
    #[serde(default)]
    pub state: Option<String>,
}

/// A service in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServiceView {
    pub id: String,
    pub org_id: String,
    pub org_name: String,
    pub team_id: Option<String>,
    pub category: String,
    pub category_name: String,
    pub name: String,
    pub description: String,
    pub scope: String,
    pub scope_name: String,
    pub division_code: Option<String>,
    pub division_name: Option<String>,
    pub capacity_per_week: i64,
    pub time_windows: String,
    pub eligibility: Vec<String>,
    /// The eligible assistance categories' Chinese names, in the same order.
    pub eligibility_names: Vec<String>,
    pub state: String,
    /// Reviews of this service: count and Bayesian average in thousandths of a star.
    pub rating_count: i64,
    pub rating_milli: i64,
}

/// A volunteer's service categories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolunteerCategoriesInput {
    /// Pack service category codes, main one first (1 to 3).
    pub categories: Vec<String>,
}

/// A new order: a picked service, a need, or a household and category.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderInput {
    #[serde(default)]
    pub household_id: Option<String>,
    #[serde(default)]
    pub member_id: Option<String>,
    /// Turn this need into the order (its household and category).
    #[serde(default)]
    pub need_id: Option<String>,
    /// The service picked from the catalogue (its category).
    #[serde(default)]
    pub service_id: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// When the service is wanted (RFC 3339), if it matters.
    #[serde(default)]
    pub wanted_at: Option<String>,
}

/// An order as its parties see it (no personal data: ids and place names only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderView {
    pub id: String,
    pub household_id: String,
    pub member_id: Option<String>,
    pub need_id: Option<String>,
    pub service_id: Option<String>,
    pub category: String,
    pub category_name: String,
    pub community_code: String,
    pub community_name: String,
    pub street_code: String,
    pub street_name: String,
    pub description: String,
    pub wanted_at: Option<String>,
    pub state: String,
    pub state_name: String,
    pub provider_kind: Option<String>,
    pub provider_id: Option<String>,
    pub provider_org_id: Option<String>,
    pub accept_deadline: Option<String>,
    /// Providers passed over (rejected or let the accept deadline pass).
    pub passes: i64,
    /// Made by staff on the household's behalf.
    pub on_behalf: bool,
    pub created_at: String,
    pub dispatched_at: Option<String>,
    pub accepted_at: Option<String>,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub reviewed_at: Option<String>,
    pub cancelled_at: Option<String>,
    /// Minutes between start and completion, as the server recorded them (the volunteer's
    /// stated service).
    pub service_minutes: Option<i64>,
    /// A volunteer's minutes awaiting verification (by the review or by staff): they count
    /// nowhere yet.
    pub minutes_pending: bool,
    /// The minutes confirmed, at most `service_minutes` (staff may correct them down).
    pub verified_minutes: Option<i64>,
    pub verified_at: Option<String>,
    /// A volunteer's minutes from this order were verified and credited to their hours and
    /// points.
    pub credited: bool,
}

/// One change in an order's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderEventView {
    pub seq: i64,
    pub action: String,
    pub action_name: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub provider_id: Option<String>,
    pub actor: String,
    pub on_behalf: bool,
    pub note: String,
    pub at: String,
}

/// One dispatch of an order and what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttemptView {
    pub attempt: i64,
    pub provider_id: String,
    pub provider_kind: String,
    pub score: i64,
    pub components: Vec<ScoreComponent>,
    pub chosen_by: String,
    pub outcome: String,
    pub dispatched_at: String,
    pub deadline: String,
}

/// A line of a score's explanation (see `cishan_core::dispatch`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScoreComponent {
    /// `category`, `distance`, `capacity`, `rating` or `load`.
    pub component: String,
    pub raw: i64,
    pub detail: String,
    pub points: i64,
}

impl From<cishan_core::dispatch::Component> for ScoreComponent {
    fn from(c: cishan_core::dispatch::Component) -> ScoreComponent {
        ScoreComponent {
            component: c.component,
            raw: c.raw,
            detail: c.detail,
            points: c.points,
        }
    }
}

/// A review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReviewView {
    pub order_id: String,
    pub provider_id: String,
    pub rating: i64,
    pub comment: String,
    /// Recorded by staff from a follow-up call with the person served.
    pub on_behalf: bool,
    pub reviewed_at: String,
}

/// An order with its history, dispatch attempts and review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OrderDetail {
    pub order: OrderView,
    pub events: Vec<OrderEventView>,
    pub attempts: Vec<AttemptView>,
    pub review: Option<ReviewView>,
}

/// A reason (cancel, reject).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonInput {
    #[serde(default)]
    pub reason: Option<String>,
}

/// A rating of a completed order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewInput {
    /// 1 to 5.
    pub rating: i64,
    #[serde(default)]
    pub comment: Option<String>,
}

/// The body of a move that takes no input (accept, start, complete): empty or `{}`. Any field
/// is refused, as by every other input, so a client sending `{"minutes": 600}` learns at once
/// that it does nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveInput {}

/// Staff verifying a volunteer's minutes of a completed order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyMinutesInput {
    /// The minutes confirmed, 0 up to what the completion recorded (`service_minutes`);
    /// omitted: all of them.
    #[serde(default)]
    pub minutes: Option<i64>,
    /// Why the minutes were corrected, if they were.
    #[serde(default)]
    pub note: Option<String>,
}

/// Which orders to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderListQuery {
    /// One state, e.g. `created`.
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub street: Option<String>,
    #[serde(default)]
    pub org_id: Option<String>,
    #[serde(default)]
    pub provider_id: Option<String>,
}

/// An organization's evaluation from its services' reviews.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OrgRatingView {
    pub org_id: String,
    pub org_name: String,
    pub rating_count: i64,
    /// Plain average in thousandths of a star (0 when unrated).
    pub average_milli: i64,
    /// Bayesian average (as dispatch scores it) in thousandths of a star.
    pub bayesian_milli: i64,
    pub services: i64,
}

// ---------------------------------------------------------------------------------------------
// Who may do what

/// The actor with their staff scope and registry memberships.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    pub(crate) actor: Actor,
    pub(crate) scope: UserScope,
    /// Households the actor is a registry member of.
    pub(crate) households: Vec<String>,
    /// Their member ids.
    pub(crate) members: Vec<String>,
}

impl Access {
    pub(crate) fn is_admin(&self) -> bool {
        self.actor.role == crate::Role::Admin
    }

    /// Staff of the district or of `street` (not an organization's staff).
    pub(crate) fn street_staff(&self, street: &str) -> bool {
        self.is_admin()
            || (self.actor.is_staff()
                && self.scope.org_id.is_none()
                && self
                    .scope
                    .division_code
                    .as_deref()
                    .is_none_or(|s| s == street))
    }

    /// District-wide staff (or an administrator).
    pub(crate) fn district_staff(&self) -> bool {
        self.is_admin()
            || (self.actor.is_staff()
                && self.scope.org_id.is_none()
                && self.scope.division_code.is_none())
    }

    pub(crate) fn org_staff(&self, org: Option<&str>) -> bool {
        self.actor.is_staff() && org.is_some() && self.scope.org_id.as_deref() == org
    }

    /// The provider holding the order: the volunteer themself, or their organization's staff.
    fn is_provider(&self, o: &OrderRow) -> bool {
        match o.provider_kind.as_deref() {
            Some("volunteer") => {
                o.provider_id.is_some() && self.actor.participant_id == o.provider_id
            }
            Some("service") => self.org_staff(o.provider_org_id.as_deref()),
            _ => false,
        }
    }

    fn served(&self, o: &OrderRow) -> bool {
        self.households.contains(&o.household_id)
    }

    pub(crate) fn may_view(&self, o: &OrderRow) -> bool {
        self.street_staff(&o.street_code) || self.is_provider(o) || self.served(o)
    }
}

/// The one answer to a need, household or member that is unknown or outside the caller's
/// scope: 404, naming the field.
fn hidden(field: &str, what: &str, message: &str) -> AppError {
    AppError {
        message: message.to_owned(),
        field: Some(field.to_owned()),
        ..AppError::not_found(what)
    }
}

fn text(field: &str, value: &str, what: &str, required: bool, max: usize) -> Result<String> {
    let v = value.trim();
    if v.is_empty() && required {
        return Err(AppError::invalid(
            field,
            format!("{field}.required"),
            format!("请填写{what}。"),
        ));
    }
    if v.chars().count() > max {
        return Err(AppError::invalid(
            field,
            format!("{field}.too_long"),
            format!("{what}不能超过 {max} 个字。"),
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

pub(crate) fn stored_instant(text: &str) -> Result<Timestamp> {
    parse_instant(text).map_err(AppError::internal)
}

/// The 409 of a move the state machine does not have (or lost to a concurrent one).
pub(crate) fn illegal(e: IllegalTransition) -> AppError {
    AppError::conflict("order.illegal_transition", e.message_zh())
}

pub(crate) fn parse_state(text: &str) -> Result<OrderState> {
    text.parse().map_err(AppError::internal)
}

impl App {
    pub(crate) async fn order_access(&self, actor: &Actor) -> Result<Access> {
        let scope = if actor.is_staff() {
            self.store().user_scope(&actor.user_id).await?
        } else {
            UserScope::default()
        };
        let memberships = match &actor.participant_id {
            Some(p) => self.store().registry_memberships(p).await?,
            None => Vec::new(),
        };
        Ok(Access {
            actor: actor.clone(),
            scope,
            households: memberships.iter().map(|(_, h)| h.clone()).collect(),
            members: memberships.into_iter().map(|(m, _)| m).collect(),
        })
    }

    fn order_category_name(&self, code: &str) -> String {
        self.pack()
            .service_categories
            .iter()
            .find(|c| c.code == code)
            .map_or_else(|| code.to_owned(), |c| c.name.clone())
    }

    fn order_division_name(&self, code: &str) -> String {
        self.pack()
            .division(code)
            .map_or_else(|| code.to_owned(), |d| d.name.clone())
    }

    /// The street (or town) a community belongs to, from the pack.
    pub(crate) fn order_street_of(&self, community: &str) -> Option<String> {
        let d = self.pack().division(community)?;
        match d.level {
            cishan_core::DivisionLevel::Street | cishan_core::DivisionLevel::Town => {
                Some(d.code.as_str().to_owned())
            }
            _ => d.parent.as_ref().map(|p| p.as_str().to_owned()),
        }
    }

    fn check_category(&self, field: &str, code: &str) -> Result<()> {
        if self
            .pack()
            .service_categories
            .iter()
            .any(|c| c.code == code)
        {
            return Ok(());
        }
        let known: Vec<String> = self
            .pack()
            .service_categories
            .iter()
            .map(|c| format!("{}（{}）", c.code, c.name))
            .collect();
        Err(AppError::invalid(
            field,
            "service.category_unknown",
            format!(
                "服务类别“{code}”不在本区的类别中，请从以下选择：{}。",
                known.join("、")
            ),
        ))
    }

    pub(crate) fn order_view(&self, o: &OrderRow) -> OrderView {
        let state = o.state.parse::<OrderState>().ok();
        OrderView {
            id: o.id.clone(),
            household_id: o.household_id.clone(),
            member_id: o.member_id.clone(),
            need_id: o.need_id.clone(),
            service_id: o.service_id.clone(),
            category: o.category.clone(),
            category_name: self.order_category_name(&o.category),
            community_code: o.community_code.clone(),
            community_name: self.order_division_name(&o.community_code),
            street_code: o.street_code.clone(),
            street_name: self.order_division_name(&o.street_code),
            description: o.description.clone(),
            wanted_at: o.wanted_at.clone(),
            state: o.state.clone(),
            state_name: state.map_or_else(|| o.state.clone(), |s| s.name_zh().to_owned()),
            provider_kind: o.provider_kind.clone(),
            provider_id: o.provider_id.clone(),
            provider_org_id: o.provider_org_id.clone(),
            accept_deadline: o.accept_deadline.clone(),
            passes: o.passes,
            on_behalf: o.on_behalf,
            created_at: o.created_at.clone(),
            dispatched_at: o.dispatched_at.clone(),
            accepted_at: o.accepted_at.clone(),
            started_at: o.started_at.clone(),
            completed_at: o.completed_at.clone(),
            reviewed_at: o.reviewed_at.clone(),
            cancelled_at: o.cancelled_at.clone(),
            service_minutes: o.service_minutes,
            minutes_pending: minutes_pending(o),
            verified_minutes: o.verified_minutes,
            verified_at: o.verified_at.clone(),
            credited: o.credited,
        }
    }

    // -----------------------------------------------------------------------------------------
    // Catalogue

    async fn service_row_of(
        &self,
        actor: &Actor,
        input: &ServiceInput,
        id: String,
        created_at: String,
    ) -> Result<ServiceFullRow> {
        let access = self.order_access(actor).await?;
        if !(access.district_staff()
            || access.org_staff(Some(&input.org_id))
            || access.actor.is_staff() && access.scope.org_id.is_none())
        {
            return Err(AppError::forbidden());
        }
        if self.store().organization(&input.org_id).await?.is_none() {
            return Err(AppError::invalid(
                "org_id",
                "organization.not_found",
                "找不到该组织，请检查组织编号。",
            ));
        }
        self.check_category("category", &input.category)?;
        let name = text("name", &input.name, "服务名称", true, MAX_NAME_CHARS)?;
        let description = text(
            "description",
            &input.description,
            "服务内容",
            false,
            MAX_TEXT_CHARS,
        )?;
        let scope = Scope::parse(input.scope.trim()).ok_or_else(|| {
            AppError::invalid(
                "scope",
                "service.scope_invalid",
                "服务范围只能是 community（本社区）、street（本街道）或 district（全区）。",
            )
        })?;
        let division = match input
            .division_code
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
        {
            Some(code) => {
                let d = self.pack().division(code).ok_or_else(|| {
                    AppError::invalid(
                        "division_code",
                        "division.unknown",
                        "服务地点不是本区的街道或社区，请检查区划代码。",
                    )
                })?;
                if scope == Scope::Community
                    && !matches!(
                        d.level,
                        cishan_core::DivisionLevel::Community | cishan_core::DivisionLevel::Village
                    )
                {
                    return Err(AppError::invalid(
                        "division_code",
                        "service.community_required",
                        "服务范围为本社区时，服务地点必须是一个社区（村）。",
                    ));
                }
                Some(code.to_owned())
            }
            None if scope == Scope::District => None,
            None => {
                return Err(AppError::invalid(
                    "division_code",
                    "division.required",
                    "请填写服务所在的社区或街道。",
                ));
            }
        };
        if !(1..=MAX_CAPACITY_PER_WEEK).contains(&input.capacity_per_week) {
            return Err(AppError::invalid(
                "capacity_per_week",
                "service.capacity_invalid",
                format!("每周服务能力应为 1 到 {MAX_CAPACITY_PER_WEEK} 单。"),
            ));
        }
        let windows = TimeWindows::parse(&input.time_windows)
            .map_err(|e| AppError::invalid("time_windows", "service.time_windows_invalid", e.0))?;
        let mut eligibility = Vec::new();
        for e in &input.eligibility {
            let e = e.trim();
            // Only the assistance categories households can have: an unknown code would make
            // a service nobody can order.
            if cishan_core::assistance::category_of(e).is_none() {
                let known: Vec<String> = cishan_core::assistance::CATEGORIES
                    .iter()
                    .map(|c| format!("{}（{}）", c.code, c.name))
                    .collect();
                return Err(AppError::invalid(
                    "eligibility",
                    "service.eligibility_invalid",
                    format!(
                        "服务对象“{}”不是救助类别代码。可用的代码：{}；留空表示不限。",
                        e.chars().take(40).collect::<String>(),
                        known.join("、")
                    ),
                ));
            }
            if !eligibility.iter().any(|x: &String| x == e) {
                eligibility.push(e.to_owned());
            }
        }
        let state = match input.state.as_deref().map(str::trim) {
            None | Some("") | Some("published") => "published",
            Some("withdrawn") => "withdrawn",
            Some(_) => {
                return Err(AppError::invalid(
                    "state",
                    "service.state_invalid",
                    "服务状态只能是 published（发布）或 withdrawn（下架）。",
                ))
            }
        };
        Ok(ServiceFullRow {
            id,
            provider_org_id: input.org_id.clone(),
            category: input.category.clone(),
            name,
            division_code: division,
            capacity_per_week: input.capacity_per_week,
            created_at,
            description,
            scope: scope.as_str().to_owned(),
            time_windows: windows.to_string(),
            eligibility: eligibility.join(","),
            state: state.to_owned(),
            team_id: input.team_id.clone().filter(|t| !t.trim().is_empty()),
            created_by: Some(actor.user_id.clone()),
            updated_at: Some(format_instant(self.clock().now())),
        })
    }

    /// Publishes a service (staff; an organization's staff only for their organization).
    pub async fn create_service(&self, actor: &Actor, input: &ServiceInput) -> Result<ServiceView> {
        let now = self.clock().now();
        let row = self
            .service_row_of(actor, input, new_id("svc"), format_instant(now))
            .await?;
        let mut guard = self.dispatch_lock().await;
        let mut tx = self.store().begin().await?;
        tx.insert(&row).await?;
        tx.journal(now, NewEntry {
            actor: actor.user_id.clone(),
            kind: "service.published".into(),
            subject: row.id.clone(),
            payload: serde_json::json!({ "org_id": row.provider_org_id, "category": row.category, "scope": row.scope, "capacity_per_week": row.capacity_per_week }),
        })
        .await?;
        tx.commit().await?;
        self.index_service_changed(&mut guard, &row);
        self.service_view(row).await
    }

    /// Changes a service's definition (its counters stay).
    pub async fn update_service(
        &self,
        actor: &Actor,
        id: &str,
        input: &ServiceInput,
    ) -> Result<ServiceView> {
        let old = self
            .store()
            .service_full(id)
            .await?
            .ok_or_else(|| AppError::not_found("service"))?;
        let access = self.order_access(actor).await?;
        if !(access.district_staff() || access.org_staff(Some(&old.provider_org_id))) {
            return Err(AppError::forbidden());
        }
        if input.org_id != old.provider_org_id {
            return Err(AppError::invalid(
                "org_id",
                "service.org_fixed",
                "服务的提供组织不能更改；请以新组织重新发布服务。",
            ));
        }
        let row = self
            .service_row_of(actor, input, old.id.clone(), old.created_at.clone())
            .await?;
        let row = ServiceFullRow {
            created_by: old.created_by,
            ..row
        };
        let now = self.clock().now();
        let mut guard = self.dispatch_lock().await;
        let mut tx = self.store().begin().await?;
        tx.update_service(&row).await?;
        tx.journal(now, NewEntry {
            actor: actor.user_id.clone(),
            kind: "service.updated".into(),
            subject: row.id.clone(),
            payload: serde_json::json!({ "category": row.category, "scope": row.scope, "capacity_per_week": row.capacity_per_week, "state": row.state }),
        })
        .await?;
        tx.commit().await?;
        self.index_service_changed(&mut guard, &row);
        self.service_view(row).await
    }

    async fn service_view(&self, row: ServiceFullRow) -> Result<ServiceView> {
        let org_name = self
            .store()
            .organization(&row.provider_org_id)
            .await?
            .map_or_else(|| row.provider_org_id.clone(), |o| o.name);
        let stats = self.store().provider_stats(&row.id).await?;
        let (sum, count) = stats.map_or((0, 0), |s| (s.rating_sum, s.rating_count));
        Ok(ServiceView {
            category_name: self.order_category_name(&row.category),
            scope_name: Scope::parse(&row.scope)
                .map_or("", Scope::name_zh)
                .to_owned(),
            division_name: row
                .division_code
                .as_deref()
                .map(|d| self.order_division_name(d)),
            eligibility_names: row
                .eligibility
                .split(',')
                .filter(|e| !e.is_empty())
                .map(|e| {
                    cishan_core::assistance::category_of(e)
                        .map_or_else(|| e.to_owned(), |c| c.name.to_owned())
                })
                .collect(),
            eligibility: row
                .eligibility
                .split(',')
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect(),
            rating_count: count,
            rating_milli: cishan_core::dispatch::bayesian_rating_milli(sum, count),
            id: row.id,
            org_id: row.provider_org_id,
            org_name,
            team_id: row.team_id,
            category: row.category,
            name: row.name,
            description: row.description,
            scope: row.scope,
            division_code: row.division_code,
            capacity_per_week: row.capacity_per_week,
            time_windows: row.time_windows,
            state: row.state,
        })
    }

    /// One service (public: the catalogue is open).
    pub async fn service(&self, id: &str) -> Result<ServiceView> {
        let row = self
            .store()
            .service_full(id)
            .await?
            .ok_or_else(|| AppError::not_found("service"))?;
        self.service_view(row).await
    }

    /// A page of the catalogue (published services; staff also see withdrawn ones).
    pub async fn services(
        &self,
        actor: Option<&Actor>,
        category: Option<&str>,
        org_id: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<ServiceView>> {
        let staff = actor.is_some_and(Actor::is_staff);
        let rows = self
            .store()
            .services_page(
                category.filter(|c| !c.is_empty()),
                org_id.filter(|o| !o.is_empty()),
                !staff,
                offset.max(0),
                limit.clamp(1, MAX_PAGE_SIZE),
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(self.service_view(r).await?);
        }
        Ok(out)
    }

    /// The organization's evaluation: the average of its services' reviews.
    pub async fn org_rating(&self, org_id: &str) -> Result<OrgRatingView> {
        let org = self
            .store()
            .organization(org_id)
            .await?
            .ok_or_else(|| AppError::not_found("organization"))?;
        let totals = self.store().org_rating(org_id).await?;
        let services = i64::try_from(
            self.store()
                .services_page(None, Some(org_id), false, 0, 10_000)
                .await?
                .len(),
        )
        .unwrap_or(0);
        Ok(OrgRatingView {
            org_id: org_id.to_owned(),
            org_name: org.name,
            rating_count: totals.rating_count,
            average_milli: if totals.rating_count > 0 {
                totals.rating_sum * 1_000 / totals.rating_count
            } else {
                0
            },
            bayesian_milli: cishan_core::dispatch::bayesian_rating_milli(
                totals.rating_sum,
                totals.rating_count,
            ),
            services,
        })
    }

    /// Sets a volunteer's service categories (the volunteer themself, or staff).
    pub async fn set_volunteer_categories(
        &self,
        actor: &Actor,
        participant_id: &str,
        input: &VolunteerCategoriesInput,
    ) -> Result<Vec<String>> {
        let own = actor.participant_id.as_deref() == Some(participant_id);
        if !own && !actor.is_staff() {
            return Err(AppError::forbidden());
        }
        let mut categories: Vec<String> = Vec::new();
        for c in &input.categories {
            let c = c.trim();
            self.check_category("categories", c)?;
            if !categories.iter().any(|x| x == c) {
                categories.push(c.to_owned());
            }
        }
        if categories.is_empty() || categories.len() > MAX_VOLUNTEER_CATEGORIES {
            return Err(AppError::invalid(
                "categories",
                "volunteer.categories_count",
                format!("请选择 1 到 {MAX_VOLUNTEER_CATEGORIES} 个服务类别，擅长的排在最前。"),
            ));
        }
        let now = self.clock().now();
        let mut guard = self.dispatch_lock().await;
        let mut tx = self.store().begin().await?;
        if !tx.is_volunteer(participant_id).await? {
            return Err(AppError::conflict(
                "volunteer.not_registered",
                "此人尚未注册为志愿者，不能设置服务类别。请先办理志愿者注册。",
            ));
        }
        tx.set_volunteer_categories(participant_id, &categories)
            .await?;
        tx.journal(
            now,
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "volunteer.categories_set".into(),
                subject: participant_id.to_owned(),
                payload: serde_json::json!({ "categories": categories }),
            },
        )
        .await?;
        tx.commit().await?;
        let division = self.store().participant_division(participant_id).await?;
        self.index_volunteer_changed(&mut guard, participant_id, division, categories.clone());
        Ok(categories)
    }

    /// Gives every volunteer whose roster listed skills but who has no service categories the
    /// categories those skills suggest (`cishan_core::dispatch::categories_from_skills`), so
    /// imported volunteers can be dispatched to (staff). Returns how many got categories.
    pub async fn categories_from_skills(&self, actor: &Actor) -> Result<u64> {
        actor.require_staff()?;
        let known: Vec<&str> = self
            .pack()
            .service_categories
            .iter()
            .map(|c| c.code.as_str())
            .collect();
        let mut given = 0_u64;
        let mut after = String::new();
        loop {
            let batch = self
                .store()
                .volunteers_with_skills_only(&after, 500)
                .await?;
            let Some((last, _)) = batch.last() else {
                return Ok(given);
            };
            after = last.clone();
            for (pid, skills) in batch {
                let categories = cishan_core::dispatch::categories_from_skills(
                    &skills,
                    &known,
                    MAX_VOLUNTEER_CATEGORIES,
                );
                if categories.is_empty() {
                    continue;
                }
                self.set_volunteer_categories(
                    actor,
                    &pid,
                    &VolunteerCategoriesInput { categories },
                )
                .await?;
                given += 1;
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Orders

    /// Makes an order: the person served for their own household, or staff of the household's
    /// street on its behalf. From a need, the need becomes `ordered`.
    pub async fn create_order(
        &self,
        actor: &Actor,
        key: Option<&IdempotencyKey>,
        input: &OrderInput,
    ) -> Result<Outcome<OrderView>> {
        let access = self.order_access(actor).await?;
        let hash = request_hash(input);
        // Keys are per account: another account's key never replays this one's answer.
        let scope = format!("order:create:{}", actor.user_id);
        if let Some(key) = key {
            let mut tx = self.store().begin().await?;
            if let Some(done) = replay(&mut tx, &scope, key, &hash).await? {
                return Ok(done);
            }
        }
        // The household is resolved (from the need, the household id or the member) and the
        // caller's scope checked before anything that depends on it is looked at, and an
        // unknown need, household or member gets the same 404 as one outside the caller's
        // scope: nobody learns that a household exists without being allowed to see it.
        let need_id = input
            .need_id
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty());
        let member_id = input
            .member_id
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_owned);
        let given_household = input
            .household_id
            .as_deref()
            .map(str::trim)
            .filter(|h| !h.is_empty());
        let (hidden, need, household_id) = match (need_id, given_household, &member_id) {
            (Some(id), _, _) => {
                let hidden = hidden("need_id", "need", "找不到该需求，请检查需求编号。");
                match self.store().need_brief(id).await? {
                    Some(n) => {
                        let h = n.household_id.clone();
                        (hidden, Some(n), Some(h))
                    }
                    None => return Err(hidden),
                }
            }
            (None, Some(h), _) => (
                hidden(
                    "household_id",
                    "household",
                    "找不到该家庭，请检查家庭编号。",
                ),
                None,
                Some(h.to_owned()),
            ),
            (None, None, Some(m)) => {
                let hidden = hidden("member_id", "member", "找不到该家庭成员，请检查成员编号。");
                match self.store().member_household(m).await? {
                    Some(h) => (hidden, None, Some(h)),
                    None => return Err(hidden),
                }
            }
            (None, None, None) => (
                hidden(
                    "household_id",
                    "household",
                    "找不到该家庭，请检查家庭编号。",
                ),
                None,
                None,
            ),
        };
        let household_id = match (household_id, access.households.as_slice()) {
            (Some(h), _) => h,
            (None, [only]) => only.clone(),
            (None, _) => {
                return Err(AppError::invalid(
                    "household_id",
                    "order.household_required",
                    "请指明为哪一户点单（household_id），或从一条需求（need_id）点单。",
                ))
            }
        };
        let Some(household) = self.store().household_place(&household_id).await? else {
            return Err(hidden);
        };
        let street = household
            .street_code
            .clone()
            .or_else(|| self.order_street_of(&household.community_code))
            .unwrap_or_default();
        let served = access.households.contains(&household.id);
        let on_behalf = !served;
        if on_behalf && !access.street_staff(&street) {
            return Err(hidden);
        }
        // Both a household and a need: the need must be that household's. Checked after the
        // need's household is known to be in the caller's scope, so the answer discloses
        // nothing about a need the caller may not see.
        if let (Some(n), Some(given)) = (&need, given_household) {
            if n.household_id != given {
                return Err(AppError::invalid(
                    "need_id",
                    "need.other_household",
                    "需求不属于该家庭，请选择这一户的需求。",
                ));
            }
        }
        // A need's member is the order's unless another is named.
        let member_id = member_id.or_else(|| need.as_ref().and_then(|n| n.member_id.clone()));
        let service = match input.service_id.as_deref().filter(|s| !s.is_empty()) {
            Some(id) => {
                let s = self.store().service_full(id).await?.ok_or_else(|| {
                    AppError::invalid(
                        "service_id",
                        "service.not_found",
                        "找不到该服务，请检查服务编号。",
                    )
                })?;
                if s.state != "published" {
                    return Err(AppError::conflict(
                        "service.withdrawn",
                        "该服务已下架，不能再点单。请选择其他服务。",
                    ));
                }
                Some(s)
            }
            None => None,
        };
        let category = match (
            &need,
            &service,
            input.category.as_deref().filter(|c| !c.is_empty()),
        ) {
            (Some(n), _, _) => n.category.clone(),
            (None, Some(s), _) => s.category.clone(),
            (None, None, Some(c)) => c.to_owned(),
            _ => {
                return Err(AppError::invalid(
                    "category",
                    "order.category_required",
                    "请选择服务类别，或选择一项服务、一条需求。",
                ))
            }
        };
        self.check_category("category", &category)?;
        // A category given with a picked service must be the service's: an order is never
        // silently made for another category than the one asked for.
        if let (Some(s), Some(c)) = (
            &service,
            input
                .category
                .as_deref()
                .map(str::trim)
                .filter(|c| !c.is_empty()),
        ) {
            if s.category != c {
                return Err(AppError::invalid(
                    "category",
                    "order.service_category_mismatch",
                    format!(
                        "所选服务属于“{}”类别，与所填类别“{}”不同。请改选该类别，或选择“{}”类别的服务。",
                        self.order_category_name(&s.category),
                        self.order_category_name(c),
                        self.order_category_name(c),
                    ),
                ));
            }
        }
        if let (Some(s), Some(n)) = (&service, &need) {
            if s.category != n.category {
                return Err(AppError::invalid(
                    "service_id",
                    "order.service_category_mismatch",
                    "所选服务的类别与需求的类别不同，请选择同一类别的服务。",
                ));
            }
        }
        if let Some(m) = &member_id {
            if served && !access.members.iter().any(|x| x == m) && !access.actor.is_staff() {
                return Err(AppError::forbidden());
            }
            if self.store().member_household(m).await?.as_deref() != Some(household.id.as_str()) {
                return Err(AppError::invalid(
                    "member_id",
                    "member.other_household",
                    "该成员不属于这一户，请检查。",
                ));
            }
        }
        if let Some(s) = &service {
            if !s.eligibility.is_empty()
                && !s.eligibility.split(',').any(|e| e == household.category)
            {
                return Err(AppError::conflict(
                    "service.not_eligible",
                    "该服务只面向特定救助类别的家庭，这一户不在其中。请选择其他服务。",
                ));
            }
        }
        let description = text(
            "description",
            input
                .description
                .as_deref()
                .or(need.as_ref().map(|n| n.description.as_str()))
                .unwrap_or(""),
            "需求说明",
            false,
            MAX_TEXT_CHARS,
        )?;
        let now = self.clock().now();
        let wanted_at = match input.wanted_at.as_deref().filter(|w| !w.trim().is_empty()) {
            Some(w) => {
                let wanted = w.trim().parse::<Timestamp>().map_err(|_| {
                    AppError::invalid(
                        "wanted_at",
                        "wanted_at.invalid",
                        "期望服务时间应为带时区的时间，例如 2024-03-01T09:00:00+08:00。",
                    )
                })?;
                if now
                    .checked_sub(WANTED_AT_SLACK)
                    .is_ok_and(|earliest| wanted < earliest)
                {
                    return Err(AppError::invalid(
                        "wanted_at",
                        "wanted_at.past",
                        "期望服务时间已经过去，请填写今天或以后的时间。",
                    ));
                }
                Some(format_instant(wanted))
            }
            None => None,
        };
        let at = format_instant(now);
        let row = OrderRow {
            id: new_id("ord"),
            household_id: household.id.clone(),
            member_id,
            need_id: need.as_ref().map(|n| n.id.clone()),
            service_id: service.as_ref().map(|s| s.id.clone()),
            category,
            community_code: household.community_code.clone(),
            street_code: street,
            description,
            wanted_at,
            state: OrderState::Created.as_str().into(),
            provider_kind: None,
            provider_id: None,
            provider_org_id: None,
            dispatch_week: None,
            accept_deadline: None,
            passes: 0,
            requested_by: actor.user_id.clone(),
            created_at: at.clone(),
            first_dispatched_at: None,
            dispatched_at: None,
            accepted_at: None,
            started_at: None,
            completed_at: None,
            reviewed_at: None,
            cancelled_at: None,
            service_minutes: None,
            verified_minutes: None,
            verified_by: None,
            verified_at: None,
            on_behalf,
            credited: false,
            synthetic: false,
        };
        let mut tx = self.store().begin().await?;
        if let Some(key) = key {
            if let Some(done) = replay(&mut tx, &scope, key, &hash).await? {
                return Ok(done);
            }
        }
        if let Some(n) = &need {
            if !tx.need_set_state(&n.id, &["open"], "ordered", None).await? {
                return Err(AppError::conflict(
                    "need.not_open",
                    "这条需求已有订单或已关闭，不能再点单。请刷新后查看需求的状态。",
                ));
            }
        }
        tx.insert(&row).await?;
        tx.insert(&OrderEventRow {
            order_id: row.id.clone(),
            seq: 1,
            action: "create".into(),
            from_state: None,
            to_state: row.state.clone(),
            provider_id: None,
            actor: actor.user_id.clone(),
            note: String::new(),
            at: at.clone(),
            on_behalf,
        })
        .await?;
        tx.journal(now, NewEntry {
            actor: actor.user_id.clone(),
            kind: "order.created".into(),
            subject: row.id.clone(),
            payload: serde_json::json!({ "household_id": row.household_id, "category": row.category, "need_id": row.need_id, "service_id": row.service_id, "on_behalf": on_behalf }),
        })
        .await?;
        let view = self.order_view(&row);
        if let Some(key) = key {
            save_replay(&mut tx, &scope, key, &hash, 201, &view, now).await?;
        }
        tx.commit().await?;
        Ok(Outcome {
            value: view,
            replayed: false,
        })
    }

    /// An order with its history (its parties and the staff of its street).
    pub async fn order_detail(&self, actor: &Actor, id: &str) -> Result<OrderDetail> {
        let access = self.order_access(actor).await?;
        let row = self
            .store()
            .order(id)
            .await?
            .ok_or_else(|| AppError::not_found("order"))?;
        if !access.may_view(&row) {
            return Err(AppError::not_found("order"));
        }
        let events = self
            .store()
            .order_events(id)
            .await?
            .into_iter()
            .map(|e| OrderEventView {
                action_name: action_name(&e.action),
                seq: e.seq,
                action: e.action,
                from_state: e.from_state,
                to_state: e.to_state,
                provider_id: e.provider_id,
                actor: e.actor,
                on_behalf: e.on_behalf,
                note: e.note,
                at: e.at,
            })
            .collect();
        let attempts = self
            .store()
            .dispatch_attempts(id)
            .await?
            .into_iter()
            .map(|a| AttemptView {
                components: serde_json::from_str::<Vec<cishan_core::dispatch::Component>>(
                    &a.explanation,
                )
                .unwrap_or_default()
                .into_iter()
                .map(ScoreComponent::from)
                .collect(),
                attempt: a.attempt,
                provider_id: a.provider_id,
                provider_kind: a.provider_kind,
                score: a.score,
                chosen_by: a.chosen_by,
                outcome: a.outcome,
                dispatched_at: a.dispatched_at,
                deadline: a.deadline,
            })
            .collect();
        let review = self.store().review(id).await?.map(|r| ReviewView {
            order_id: r.order_id,
            provider_id: r.provider_id,
            rating: r.rating,
            comment: r.comment,
            on_behalf: r.on_behalf,
            reviewed_at: r.reviewed_at,
        });
        Ok(OrderDetail {
            order: self.order_view(&row),
            events,
            attempts,
            review,
        })
    }

    /// Orders the actor may see, newest first: staff of a street see theirs (district staff
    /// all), an organization's staff their services' orders, a volunteer the orders they hold,
    /// the person served their household's.
    pub async fn orders(
        &self,
        actor: &Actor,
        q: &OrderListQuery,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<OrderView>> {
        let access = self.order_access(actor).await?;
        let mut f = OrderFilter::default();
        if let Some(s) = q.state.as_deref().filter(|s| !s.is_empty()) {
            parse_state(s).map_err(|_| AppError::invalid("state", "order.state_unknown", "订单状态应为 created、dispatched、accepted、in_service、completed、reviewed 或 cancelled。"))?;
            f.states = vec![s.to_owned()];
        }
        if access.actor.is_staff() && access.scope.org_id.is_some() {
            f.provider_org_id = access.scope.org_id.clone();
        } else if access.actor.is_staff() {
            f.street_code = access
                .scope
                .division_code
                .clone()
                .or(q.street.clone().filter(|s| !s.is_empty()));
            f.provider_org_id = q.org_id.clone().filter(|s| !s.is_empty());
            f.provider_id = q.provider_id.clone().filter(|s| !s.is_empty());
        } else {
            // A member sees their own: those they hold as a volunteer and their household's,
            // the orders /me/orders shows; the filters only narrow that.
            let Some(pid) = actor.participant_id.clone() else {
                return Ok(Vec::new());
            };
            f.party = Some((pid, access.households.clone()));
            f.street_code = q.street.clone().filter(|s| !s.is_empty());
            f.provider_org_id = q.org_id.clone().filter(|s| !s.is_empty());
            f.provider_id = q.provider_id.clone().filter(|s| !s.is_empty());
        }
        let rows = self
            .store()
            .orders_page(&f, offset.max(0), limit.clamp(1, MAX_PAGE_SIZE))
            .await?;
        Ok(rows.iter().map(|r| self.order_view(r)).collect())
    }

    /// Orders by state, district-wide (staff): (state, Chinese name, count).
    pub async fn order_counts(&self, actor: &Actor) -> Result<Vec<(String, String, i64)>> {
        actor.require_staff()?;
        Ok(self
            .store()
            .order_state_counts()
            .await?
            .into_iter()
            .map(|(s, n)| {
                let name = s
                    .parse::<OrderState>()
                    .map_or_else(|_| s.clone(), |x| x.name_zh().to_owned());
                (s, name, n)
            })
            .collect())
    }

    /// A member's own orders: those they hold as a volunteer and those of their household.
    pub async fn my_orders(&self, actor: &Actor) -> Result<(Vec<OrderView>, Vec<OrderView>)> {
        let access = self.order_access(actor).await?;
        let Some(pid) = actor.participant_id.clone() else {
            return Ok((Vec::new(), Vec::new()));
        };
        let held = self
            .store()
            .orders_page(
                &OrderFilter {
                    provider_id: Some(pid),
                    ..OrderFilter::default()
                },
                0,
                MAX_PAGE_SIZE,
            )
            .await?;
        let served = if access.households.is_empty() {
            Vec::new()
        } else {
            self.store()
                .orders_page(
                    &OrderFilter {
                        household_ids: access.households.clone(),
                        ..OrderFilter::default()
                    },
                    0,
                    MAX_PAGE_SIZE,
                )
                .await?
        };
        Ok((
            held.iter().map(|r| self.order_view(r)).collect(),
            served.iter().map(|r| self.order_view(r)).collect(),
        ))
    }

    pub async fn accept_order(
        &self,
        actor: &Actor,
        key: Option<&IdempotencyKey>,
        id: &str,
    ) -> Result<Outcome<OrderView>> {
        self.move_order(actor, key, id, OrderAction::Accept, &Move::default())
            .await
    }

    pub async fn start_order(
        &self,
        actor: &Actor,
        key: Option<&IdempotencyKey>,
        id: &str,
    ) -> Result<Outcome<OrderView>> {
        self.move_order(actor, key, id, OrderAction::Start, &Move::default())
            .await
    }

    pub async fn complete_order(
        &self,
        actor: &Actor,
        key: Option<&IdempotencyKey>,
        id: &str,
    ) -> Result<Outcome<OrderView>> {
        self.move_order(actor, key, id, OrderAction::Complete, &Move::default())
            .await
    }

    pub async fn reject_order(
        &self,
        actor: &Actor,
        key: Option<&IdempotencyKey>,
        id: &str,
        input: &ReasonInput,
    ) -> Result<Outcome<OrderView>> {
        self.move_order(
            actor,
            key,
            id,
            OrderAction::Reject,
            &Move {
                reason: input.reason.clone(),
                review: None,
            },
        )
        .await
    }

    pub async fn cancel_order(
        &self,
        actor: &Actor,
        key: Option<&IdempotencyKey>,
        id: &str,
        input: &ReasonInput,
    ) -> Result<Outcome<OrderView>> {
        self.move_order(
            actor,
            key,
            id,
            OrderAction::Cancel,
            &Move {
                reason: input.reason.clone(),
                review: None,
            },
        )
        .await
    }

    /// Rates a completed order, once: the person served, or staff recording a follow-up call
    /// (marked `on_behalf`).
    pub async fn review_order(
        &self,
        actor: &Actor,
        key: Option<&IdempotencyKey>,
        id: &str,
        input: &ReviewInput,
    ) -> Result<Outcome<OrderView>> {
        self.move_order(
            actor,
            key,
            id,
            OrderAction::Review,
            &Move {
                reason: None,
                review: Some(input.clone()),
            },
        )
        .await
    }

    /// One move of an order by a person (accept, start, complete, reject, cancel, review).
    async fn move_order(
        &self,
        actor: &Actor,
        key: Option<&IdempotencyKey>,
        id: &str,
        action: OrderAction,
        extra: &Move,
    ) -> Result<Outcome<OrderView>> {
        let access = self.order_access(actor).await?;
        let note = text(
            "reason",
            extra.reason.as_deref().unwrap_or(""),
            "原因",
            false,
            MAX_TEXT_CHARS,
        )?;
        let review = match &extra.review {
            Some(r) => {
                if !(1..=5).contains(&r.rating) {
                    return Err(AppError::invalid(
                        "rating",
                        "review.rating_invalid",
                        "评分应为 1 到 5 的整数（5 为最满意）。",
                    ));
                }
                Some((
                    r.rating,
                    text(
                        "comment",
                        r.comment.as_deref().unwrap_or(""),
                        "评价内容",
                        false,
                        MAX_TEXT_CHARS,
                    )?,
                ))
            }
            None => None,
        };
        let hash = request_hash(&(id, action.as_str(), extra));
        let scope = format!("order:{}:{id}:{}", action.as_str(), actor.user_id);
        // A review verifies a volunteer's pending minutes and credits them.
        let credits = action == OrderAction::Review;
        let rules = if credits {
            Some(self.volunteer_rules().await?)
        } else {
            None
        };
        let mut guard = self.dispatch_lock().await;
        let now = self.clock().now();
        let at = format_instant(now);
        let mut tx = self.store().begin().await?;
        if credits {
            // Points acts are written under the write lock (see `points::record_act`).
            tx.lock_writes().await?;
        }
        if let Some(key) = key {
            if let Some(done) = replay(&mut tx, &scope, key, &hash).await? {
                return Ok(done);
            }
        }
        let mut row = tx
            .order(id)
            .await?
            .filter(|o| access.may_view(o))
            .ok_or_else(|| AppError::not_found("order"))?;
        let provider_side = access.is_provider(&row) || access.street_staff(&row.street_code);
        let requester_side = access.served(&row) || access.street_staff(&row.street_code);
        let allowed = match action {
            OrderAction::Accept
            | OrderAction::Reject
            | OrderAction::Start
            | OrderAction::Complete => provider_side,
            OrderAction::Cancel | OrderAction::Review => requester_side,
            OrderAction::Dispatch | OrderAction::Expire => false,
        };
        if !allowed {
            return Err(AppError::forbidden());
        }
        let on_behalf = match action {
            OrderAction::Review | OrderAction::Cancel => !access.served(&row),
            _ => !access.is_provider(&row),
        };
        let from = parse_state(&row.state)?;
        let to = next_state(from, action).map_err(illegal)?;
        let lost = |tx_state: Option<OrderRow>| -> AppError {
            let current = tx_state.and_then(|o| o.state.parse().ok()).unwrap_or(from);
            illegal(IllegalTransition {
                from: current,
                action,
            })
        };
        let provider_id = row.provider_id.clone();
        let mut index_change = IndexChange::None;
        // Minutes this move (a review) verified and credited, if it did.
        let mut credited_now: Option<i64> = None;
        match action {
            OrderAction::Accept => {
                if !tx
                    .order_transition(id, from.as_str(), to.as_str(), Stamp::AcceptedAt, &at)
                    .await?
                {
                    return Err(lost(tx.order(id).await?));
                }
                tx.accept_dispatch_attempt(id).await?;
                row.accepted_at = Some(at.clone());
            }
            OrderAction::Start => {
                if !tx
                    .order_transition(id, from.as_str(), to.as_str(), Stamp::StartedAt, &at)
                    .await?
                {
                    return Err(lost(tx.order(id).await?));
                }
                row.started_at = Some(at.clone());
            }
            OrderAction::Complete => {
                let started = stored_instant(row.started_at.as_deref().unwrap_or(&at))?;
                let minutes = session_minutes(started, now);
                if !tx.order_complete(id, minutes, &at).await? {
                    return Err(lost(tx.order(id).await?));
                }
                tx.close_dispatch_attempt(id, "accepted", &at).await?;
                row.completed_at = Some(at.clone());
                row.service_minutes = Some(minutes);
                if let Some(p) = &provider_id {
                    tx.provider_completed(p).await?;
                    index_change = IndexChange::Release(p.clone(), None);
                }
                if let Some(need) = &row.need_id {
                    tx.need_set_state(need, &["ordered", "open"], "met", Some(&at))
                        .await?;
                }
                // A volunteer's minutes are pending now: they count once verified (the review,
                // or staff), like an activity's session once its organizer verifies it.
            }
            OrderAction::Reject => {
                if !tx.order_take_back(id, from.as_str()).await? {
                    return Err(lost(tx.order(id).await?));
                }
                tx.close_dispatch_attempt(id, "rejected", &at).await?;
                if let Some(p) = &provider_id {
                    tx.release_provider(p, row.dispatch_week).await?;
                    index_change = IndexChange::Release(p.clone(), row.dispatch_week);
                }
                row.state = OrderState::Created.as_str().into();
                row.provider_kind = None;
                row.provider_id = None;
                row.provider_org_id = None;
                row.dispatch_week = None;
                row.accept_deadline = None;
                row.accepted_at = None;
                row.passes += 1;
            }
            OrderAction::Cancel => {
                if !tx
                    .order_transition(id, from.as_str(), to.as_str(), Stamp::CancelledAt, &at)
                    .await?
                {
                    return Err(lost(tx.order(id).await?));
                }
                row.cancelled_at = Some(at.clone());
                if from.holds_provider() {
                    tx.close_dispatch_attempt(id, "cancelled", &at).await?;
                    if let Some(p) = &provider_id {
                        tx.release_provider(p, row.dispatch_week).await?;
                        index_change = IndexChange::Release(p.clone(), row.dispatch_week);
                    }
                }
                if let Some(need) = &row.need_id {
                    if tx.live_orders_of_need(need, id).await? == 0 {
                        tx.need_set_state(need, &["ordered"], "open", None).await?;
                    }
                }
            }
            OrderAction::Review => {
                let (rating, comment) = review.clone().unwrap_or((0, String::new()));
                if !tx
                    .order_transition(id, from.as_str(), to.as_str(), Stamp::ReviewedAt, &at)
                    .await?
                {
                    return Err(lost(tx.order(id).await?));
                }
                let p = provider_id.clone().unwrap_or_default();
                tx.insert(&ReviewRow {
                    order_id: id.to_owned(),
                    provider_id: p.clone(),
                    provider_kind: row.provider_kind.clone().unwrap_or_default(),
                    provider_org_id: row.provider_org_id.clone(),
                    street_code: row.street_code.clone(),
                    rating,
                    comment,
                    reviewed_by: actor.user_id.clone(),
                    reviewed_at: at.clone(),
                    on_behalf,
                })
                .await
                .map_err(|e| {
                    if e.is_unique_violation() {
                        AppError::conflict(
                            "review.exists",
                            "这张订单已经评价过了，每张订单只能评价一次。",
                        )
                    } else {
                        e.into()
                    }
                })?;
                tx.ensure_provider_stats(&p, row.provider_kind.as_deref().unwrap_or("service"))
                    .await?;
                tx.add_provider_rating(&p, rating).await?;
                row.reviewed_at = Some(at.clone());
                // The person served (or staff from a follow-up call) confirms the service took
                // place: the volunteer's pending minutes count, all of them. Never a volunteer
                // confirming their own minutes.
                if minutes_pending(&row) && actor.participant_id.as_deref() != Some(p.as_str()) {
                    let daily_max = rules
                        .as_ref()
                        .map_or(cishan_core::volunteer::DEFAULT_DAILY_MAX_MINUTES, |r| {
                            r.daily_max_minutes
                        });
                    let minutes = row.service_minutes.unwrap_or(0);
                    credited_now = self
                        .credit_order_minutes(
                            &mut tx,
                            &mut row,
                            minutes,
                            daily_max,
                            &actor.user_id,
                            now,
                        )
                        .await?;
                }
                index_change = IndexChange::Rating(p, rating);
            }
            OrderAction::Dispatch | OrderAction::Expire => unreachable!("refused above"),
        }
        if action != OrderAction::Reject {
            row.state = to.as_str().into();
        }
        let seq = tx.next_order_event_seq(id).await?;
        tx.insert(&OrderEventRow {
            order_id: id.to_owned(),
            seq,
            action: action.as_str().into(),
            from_state: Some(from.as_str().into()),
            to_state: to.as_str().into(),
            provider_id: provider_id.clone(),
            actor: actor.user_id.clone(),
            note: match &review {
                Some((rating, _)) => format!("{rating} 星"),
                None => note.clone(),
            },
            at: at.clone(),
            on_behalf,
        })
        .await?;
        tx.journal(
            now,
            NewEntry {
                actor: actor.user_id.clone(),
                kind: format!("order.{}", past_tense(action)),
                subject: id.to_owned(),
                payload: serde_json::json!({
                    "from": from.as_str(), "to": to.as_str(), "provider_id": provider_id,
                    "on_behalf": on_behalf, "rating": review.as_ref().map(|r| r.0),
                    "service_minutes": row.service_minutes, "credited": row.credited,
                    "verified_minutes": credited_now.and(row.verified_minutes),
                    "credited_minutes": credited_now,
                }),
            },
        )
        .await?;
        let view = self.order_view(&row);
        if let Some(key) = key {
            save_replay(&mut tx, &scope, key, &hash, 200, &view, now).await?;
        }
        tx.commit().await?;
        self.apply_index_change(&mut guard, index_change);
        drop(guard);
        if action == OrderAction::Reject {
            // The order goes to the next candidate at once; if none is free it stays open.
            let _ = self.dispatch_as_system(id).await;
        }
        let fresh = self
            .store()
            .order(id)
            .await?
            .map_or(view, |r| self.order_view(&r));
        Ok(Outcome {
            value: fresh,
            replayed: false,
        })
    }

    /// Staff verify a volunteer's minutes of a completed (or reviewed) order: all of them, or
    /// fewer (`minutes`, never above what the completion recorded). They then count, once:
    /// verifying an order already verified (by staff or by its review) changes nothing and is
    /// 409 `order.minutes_already_verified`, saying when and how many minutes were verified. A
    /// retry with the first call's `Idempotency-Key` still replays the first answer.
    pub async fn verify_order_minutes(
        &self,
        actor: &Actor,
        key: Option<&IdempotencyKey>,
        id: &str,
        input: &VerifyMinutesInput,
    ) -> Result<Outcome<OrderView>> {
        let access = self.order_access(actor).await?;
        let note = text(
            "note",
            input.note.as_deref().unwrap_or(""),
            "核验说明",
            false,
            MAX_TEXT_CHARS,
        )?;
        let hash = request_hash(&(id, VERIFY_MINUTES, input));
        let scope = format!("order:{VERIFY_MINUTES}:{id}:{}", actor.user_id);
        let rules = self.volunteer_rules().await?;
        let now = self.clock().now();
        let at = format_instant(now);
        let mut tx = self.store().begin().await?;
        // Points acts are written under the write lock (see `points::record_act`).
        tx.lock_writes().await?;
        if let Some(key) = key {
            if let Some(done) = replay(&mut tx, &scope, key, &hash).await? {
                return Ok(done);
            }
        }
        let mut row = tx
            .order(id)
            .await?
            .filter(|o| access.may_view(o))
            .ok_or_else(|| AppError::not_found("order"))?;
        // Staff of the order's street (or the district) verify; the volunteer never verifies
        // their own minutes, and the person served confirms them by reviewing.
        if !access.street_staff(&row.street_code) {
            return Err(AppError::forbidden());
        }
        if row.provider_kind.as_deref() != Some("volunteer") {
            return Err(AppError::conflict(
                "order.no_volunteer_minutes",
                "这张订单不是志愿者承接的，没有需要核验的志愿服务时长。",
            ));
        }
        if row.credited {
            return Err(self.minutes_already_verified(&row));
        }
        let state = parse_state(&row.state)?;
        if !matches!(state, OrderState::Completed | OrderState::Reviewed) {
            return Err(AppError::conflict(
                "order.not_completed",
                format!(
                    "订单当前状态为「{}」，服务完成后才能核验服务时长。",
                    state.name_zh()
                ),
            ));
        }
        let stated = row.service_minutes.unwrap_or(0);
        let minutes = input.minutes.unwrap_or(stated);
        if !(0..=stated).contains(&minutes) {
            return Err(AppError::invalid(
                "minutes",
                "order.minutes_invalid",
                format!(
                    "核验的服务时长应为 0 到 {stated} 分钟之间的整数（不能超过志愿者完成服务时记录的时长）。"
                ),
            ));
        }
        let Some(credited) = self
            .credit_order_minutes(
                &mut tx,
                &mut row,
                minutes,
                rules.daily_max_minutes,
                &actor.user_id,
                now,
            )
            .await?
        else {
            // Verified meanwhile; under the write lock this cannot happen, but nothing changed.
            let row = tx.order(id).await?.unwrap_or(row);
            return Err(self.minutes_already_verified(&row));
        };
        let corrected = minutes < stated;
        let seq = tx.next_order_event_seq(id).await?;
        tx.insert(&OrderEventRow {
            order_id: id.to_owned(),
            seq,
            action: VERIFY_MINUTES.into(),
            from_state: Some(state.as_str().into()),
            to_state: state.as_str().into(),
            provider_id: row.provider_id.clone(),
            actor: actor.user_id.clone(),
            note: match (corrected, note.is_empty()) {
                (false, _) => format!("核验 {minutes} 分钟"),
                (true, true) => format!("核验 {minutes} 分钟（原记录 {stated} 分钟）"),
                (true, false) => format!("核验 {minutes} 分钟（原记录 {stated} 分钟）：{note}"),
            },
            at: at.clone(),
            on_behalf: false,
        })
        .await?;
        tx.journal(
            now,
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "order.minutes_verified".into(),
                subject: id.to_owned(),
                payload: serde_json::json!({
                    "state": state.as_str(), "provider_id": row.provider_id,
                    "service_minutes": stated, "verified_minutes": minutes,
                    "corrected": corrected, "credited_minutes": credited,
                }),
            },
        )
        .await?;
        let view = self.order_view(&row);
        if let Some(key) = key {
            save_replay(&mut tx, &scope, key, &hash, 200, &view, now).await?;
        }
        tx.commit().await?;
        Ok(Outcome {
            value: view,
            replayed: false,
        })
    }

    /// 409 for a second verification: when and how many minutes the first one verified, so
    /// the caller sees that nothing happened this time.
    fn minutes_already_verified(&self, row: &OrderRow) -> AppError {
        let when = row.verified_at.as_deref().and_then(|at| {
            let tz = jiff::tz::TimeZone::get(&self.pack().timezone).ok()?;
            let at = parse_instant(at).ok()?;
            Some(at.to_zoned(tz).strftime("%Y-%m-%d %H:%M").to_string())
        });
        let minutes = row.verified_minutes.or(row.service_minutes).unwrap_or(0);
        let message = match when {
            Some(when) => {
                format!("这张订单的服务时长已于 {when} 核验，计入 {minutes} 分钟，不能重复核验。")
            }
            None => format!("这张订单的服务时长已核验，计入 {minutes} 分钟，不能重复核验。"),
        };
        AppError::conflict("order.minutes_already_verified", message)
    }

    /// Verifies and credits a volunteer's minutes of a completed order, once: `minutes` (at
    /// most what the completion recorded; the caller checks) become service records per local
    /// day under the daily maximum, keeping the start of the session when they were corrected
    /// down, and one points act, as verified activity hours do. `None` when the order was
    /// already verified (nothing changed), else the minutes credited (the daily maximum may
    /// have taken some).
    async fn credit_order_minutes(
        &self,
        tx: &mut WriteTx,
        row: &mut OrderRow,
        minutes: i64,
        daily_max: i64,
        by: &str,
        now: Timestamp,
    ) -> Result<Option<i64>> {
        let at = format_instant(now);
        if !tx.order_mark_verified(&row.id, minutes, by, &at).await? {
            return Ok(None);
        }
        row.credited = true;
        row.verified_minutes = Some(minutes);
        row.verified_by = Some(by.to_owned());
        row.verified_at = Some(at);
        let participant_id = row.provider_id.clone().unwrap_or_default();
        let started = stored_instant(row.started_at.as_deref().unwrap_or_default())?;
        let ended = stored_instant(row.completed_at.as_deref().unwrap_or_default())?;
        let tz = jiff::tz::TimeZone::get(&self.pack().timezone).map_err(AppError::internal)?;
        let mut credited = 0_i64;
        let mut records = Vec::new();
        for (day, day_minutes) in
            first_minutes_of(minutes_by_local_day(started, ended, &tz), minutes)
        {
            let day = day.to_string();
            let already = tx.credited_minutes_on(&participant_id, &day).await?;
            let credit = credit_within_daily_max(day_minutes, already, daily_max);
            if credit == 0 {
                continue;
            }
            credited += credit;
            records.push(ServiceRecordDetail {
                id: new_id("svc"),
                volunteer_participant_id: participant_id.clone(),
                duration_minutes: credit,
                served_on: day,
                content: format!(
                    "服务订单 {}（{}）",
                    row.id,
                    self.order_category_name(&row.category)
                ),
                attendance_id: None,
                activity_id: None,
                place: Some(self.order_division_name(&row.community_code)),
                recipients: None,
                evaluation: None,
                organizer_org_id: None,
                recorded_by: Some(by.to_owned()),
                started_at: Some(format_instant(started)),
                ended_at: Some(format_instant(ended)),
                state: "valid".into(),
            });
        }
        if !records.is_empty() {
            tx.insert_all(&records).await?;
        }
        if credited > 0 {
            crate::points::record_act(
                tx,
                crate::points::NewAct {
                    participant_id,
                    kind: cishan_core::points::ActKind::VolunteerMinutes,
                    category: Some(row.category.clone()),
                    quantity: credited,
                    source_kind: POINTS_SOURCE.into(),
                    source_id: row.id.clone(),
                    occurred_at: ended,
                    recorded_by: by.to_owned(),
                    recorded_at: now,
                    note: format!("服务订单 {}", hours_text(credited)),
                },
            )
            .await?;
        }
        Ok(Some(credited))
    }
}

/// A volunteer's minutes of a completed order that no review or staff has verified yet.
pub(crate) fn minutes_pending(o: &OrderRow) -> bool {
    o.provider_kind.as_deref() == Some("volunteer")
        && !o.credited
        && o.service_minutes.is_some()
        && matches!(o.state.as_str(), "completed" | "reviewed")
}

/// What a move carries besides its action.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
struct Move {
    reason: Option<String>,
    review: Option<ReviewInput>,
}

/// What a committed move changes in the dispatch index.
#[derive(Debug, Clone)]
pub(crate) enum IndexChange {
    None,
    /// The provider no longer holds the order; the week's slot comes back if given.
    Release(String, Option<i64>),
    Rating(String, i64),
}

fn past_tense(action: OrderAction) -> &'static str {
    match action {
        OrderAction::Dispatch => "dispatched",
        OrderAction::Accept => "accepted",
        OrderAction::Reject => "rejected",
        OrderAction::Expire => "expired",
        OrderAction::Start => "started",
        OrderAction::Complete => "completed",
        OrderAction::Review => "reviewed",
        OrderAction::Cancel => "cancelled",
    }
}

pub(crate) fn action_name(action: &str) -> String {
    match action {
        "create" => "点单".to_owned(),
        VERIFY_MINUTES => "核验服务时长".to_owned(),
        other => cishan_core::order::ALL_ACTIONS
            .iter()
            .find(|a| a.as_str() == other)
            .map_or_else(|| other.to_owned(), |a| a.name_zh().to_owned()),
    }
}

/// The default weekly capacity of a volunteer (re-exported for pages and the bench).
pub const DEFAULT_VOLUNTEER_CAPACITY: u32 = VOLUNTEER_WEEKLY_CAPACITY;

// ---------------------------------------------------------------------------------------------
// CSV import of orders

/// Rows one order import takes at most.
pub const MAX_IMPORT_ROWS: usize = 5_000;

/// One row of an order import and what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OrderImportRow {
    /// The row's line in the file (the header is line 1).
    pub line: u64,
    /// `created`, `replayed` (the same row was imported before) or `refused`.
    pub outcome: String,
    pub order_id: Option<String>,
    pub error_code: Option<String>,
    pub message: Option<String>,
}

/// Every row of an order import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OrderImportReport {
    pub created: i64,
    pub replayed: i64,
    pub refused: i64,
    pub rows: Vec<OrderImportRow>,
}

impl App {
    /// Imports orders from CSV (UTF-8, header `household_id,category,description,need_id,
    /// service_id,wanted_at`; columns other than the first two may be missing or empty). Each
    /// row goes through [`App::create_order`] like an order from a page or the API, with an
    /// idempotency key derived from the row, so importing the same file again creates nothing.
    pub async fn import_orders(&self, actor: &Actor, csv_text: &str) -> Result<OrderImportReport> {
        actor.require_staff()?;
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(csv_text.trim_start_matches('\u{feff}').as_bytes());
        let headers = reader
            .headers()
            .map_err(|_| AppError::invalid("file", "import.header_missing", "CSV 文件第一行应为表头：household_id,category,description,need_id,service_id,wanted_at。"))?
            .clone();
        let column = |name: &str| headers.iter().position(|h| h == name);
        let (household, category) = (column("household_id"), column("category"));
        if household.is_none() && column("need_id").is_none() {
            return Err(AppError::invalid(
                "file",
                "import.header_missing",
                "CSV 表头缺少 household_id（或 need_id）列。",
            ));
        }
        let mut report = OrderImportReport {
            created: 0,
            replayed: 0,
            refused: 0,
            rows: Vec::new(),
        };
        for (k, record) in reader.records().enumerate() {
            let line = u64::try_from(k).unwrap_or(u64::MAX).saturating_add(2);
            if k >= MAX_IMPORT_ROWS {
                return Err(AppError::invalid(
                    "file",
                    "import.too_many_rows",
                    format!("一次最多导入 {MAX_IMPORT_ROWS} 行订单，请拆分文件。"),
                ));
            }
            let record = match record {
                Ok(r) => r,
                Err(_) => {
                    report.refused += 1;
                    report.rows.push(OrderImportRow {
                        line,
                        outcome: "refused".into(),
                        order_id: None,
                        error_code: Some("import.row_unreadable".into()),
                        message: Some("这一行无法读取（引号或编码有误）。".into()),
                    });
                    continue;
                }
            };
            let get = |i: Option<usize>| {
                i.and_then(|i| record.get(i))
                    .map(str::to_owned)
                    .filter(|v| !v.is_empty())
            };
            let input = OrderInput {
                household_id: get(household),
                member_id: get(column("member_id")),
                need_id: get(column("need_id")),
                service_id: get(column("service_id")),
                category: get(category),
                description: get(column("description")),
                wanted_at: get(column("wanted_at")),
            };
            let digest = request_hash(&(line, &input));
            let key = IdempotencyKey::parse(&format!("orders-import-{}", &digest[..40]))?;
            match self.create_order(actor, Some(&key), &input).await {
                Ok(done) => {
                    if done.replayed {
                        report.replayed += 1;
                    } else {
                        report.created += 1;
                    }
                    report.rows.push(OrderImportRow {
                        line,
                        outcome: if done.replayed { "replayed" } else { "created" }.into(),
                        order_id: Some(done.value.id),
                        error_code: None,
                        message: None,
                    });
                }
                Err(e) if e.kind != crate::ErrorKind::Internal => {
                    report.refused += 1;
                    let field = e
                        .field
                        .clone()
                        .map(|f| format!("（{f}）"))
                        .unwrap_or_default();
                    report.rows.push(OrderImportRow {
                        line,
                        outcome: "refused".into(),
                        order_id: None,
                        error_code: Some(e.code),
                        message: Some(format!("{}{field}", e.message)),
                    });
                }
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }
}
