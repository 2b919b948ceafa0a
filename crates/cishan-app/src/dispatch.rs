//! Dispatch (派单): ranking providers for an order, sending it to the best (or to the one
//! staff choose), passing over a provider who does not accept before the deadline, and batch
//! dispatch of many open orders without overloading anyone.
//!
//! The ranking is `cishan_core::dispatch`; the providers live in one in-memory
//! [`DispatchIndex`] per process, loaded from the database on first use and kept current by
//! every write that changes a provider (dispatch, reject, expiry, cancel, completion, review,
//! a service published or changed, a volunteer's categories). Those writes take the index's
//! lock before their transaction and apply their change after the commit, so the index never
//! runs ahead of the database. The database stays the authority: a dispatch takes the
//! provider's weekly capacity by a conditional UPDATE, so even a stale index cannot overload
//! anyone. One serving process per database is assumed (as SQLite's single writer implies);
//! another process's dispatches are not seen until restart.

use std::collections::HashMap;
use std::time::Duration;

use cishan_core::dispatch::{
    Candidate, DispatchIndex, OrderQuery, Provider, ProviderKind, RankError, Scope, TimeWindows,
    MAX_CANDIDATES, VOLUNTEER_WEEKLY_CAPACITY,
};
use cishan_core::order::{IllegalTransition, OrderAction, OrderState};
use cishan_core::DivisionLevel;
use cishan_store::{
    format_instant, DispatchAttemptRow, NewEntry, OrderEventRow, OrderRow, ServiceFullRow,
};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, MutexGuard};

use crate::donations::{replay, request_hash, save_replay, IdempotencyKey, Outcome};
use crate::orders::{illegal, parse_state, IndexChange, OrderView, ScoreComponent};
use crate::{Actor, App, AppError, Result};

/// Open orders one batch dispatch takes at most.
pub const MAX_BATCH_ORDERS: i64 = 20_000;
/// Expired orders one sweep handles at most (the next sweep takes the rest).
pub const MAX_SWEEP_ORDERS: i64 = 1_000;
/// The setting holding [`OrderLimits`] as JSON.
const LIMITS_SETTING: &str = "order_limits";

/// The time limits of orders: the accept deadline the sweeper enforces, and the limits past
/// which an order or a need raises an early warning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OrderLimits {
    /// A dispatched order not accepted within this is passed to the next candidate.
    pub accept_minutes: i64,
    /// An order still waiting for dispatch after this raises a warning.
    pub dispatch_alert_minutes: i64,
    /// An order first dispatched this long ago and still not accepted raises a warning.
    pub accept_alert_minutes: i64,
    /// An accepted order not completed within this raises a warning.
    pub complete_alert_hours: i64,
    /// A need open (no order) this long raises a warning.
    pub need_wait_days: i64,
    /// Reviews at or below this rating raise a warning …
    pub low_rating_max: i64,
    /// … for this many days.
    pub low_rating_days: i64,
}

impl Default for OrderLimits {
    fn default() -> OrderLimits {
        OrderLimits {
            accept_minutes: 30,
            dispatch_alert_minutes: 60,
            accept_alert_minutes: 120,
            complete_alert_hours: 72,
            need_wait_days: 14,
            low_rating_max: 2,
            low_rating_days: 30,
        }
    }
}

/// The index and what dispatch needs beside it.
#[derive(Debug, Default)]
pub(crate) struct DispatchState {
    inner: Mutex<Option<Loaded>>,
}

#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) index: DispatchIndex,
    /// Service id → (name, organization).
    services: HashMap<String, (String, String)>,
}

pub(crate) type IndexGuard<'a> = MutexGuard<'a, Option<Loaded>>;

/// A staff override: send the order to this provider instead of the best candidate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DispatchInput {
    /// A service (`svc_…`) or volunteer (`ptc_…`) id.
    #[serde(default)]
    pub provider_id: Option<String>,
}

/// A candidate with its score explained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CandidateView {
    pub provider_id: String,
    /// `service` or `volunteer`.
    pub provider_kind: String,
    /// The service's name, or the volunteer's masked name.
    pub provider_name: String,
    pub org_id: Option<String>,
    pub score: i64,
    /// `same_community`, `same_street` or `district`.
    pub distance: String,
    pub components: Vec<ScoreComponent>,
}

/// What a dispatch did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DispatchResult {
    pub order: OrderView,
    pub chosen: CandidateView,
    /// `auto` (the best candidate, or the service the household picked) or `override`.
    pub chosen_by: String,
    /// The best candidates, best first (at most 10).
    pub candidates: Vec<CandidateView>,
}

/// Batch dispatch of open orders.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchInput {
    /// Open orders to take at most, oldest first (default and most: 20,000).
    #[serde(default)]
    pub limit: Option<i64>,
}

/// What a batch dispatch did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BatchReport {
    pub considered: i64,
    pub dispatched: i64,
    /// Orders left open: no provider with capacity fits them now.
    pub without_candidate: i64,
    /// (order id, provider id, score) of each dispatch.
    pub assignments: Vec<(String, String, i64)>,
}

/// What a sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SweepReport {
    /// Orders whose provider let the accept deadline pass.
    pub expired: i64,
    /// Of those, sent on to the next candidate.
    pub redispatched: i64,
    /// Orders the sweep could not deal with (logged by id; the next sweep tries again, or the
    /// order waits in `created` for dispatch).
    pub failed: i64,
}

fn distance_code(d: cishan_core::dispatch::Distance) -> &'static str {
    match d {
        cishan_core::dispatch::Distance::SameCommunity => "same_community",
        cishan_core::dispatch::Distance::SameStreet => "same_street",
        cishan_core::dispatch::Distance::District => "district",
    }
}

/// The service the household picked, when it can take the order: among the ranked
/// candidates, or else serving the order's community with capacity left this week, active, and
/// not passed over for this order. Single and batch dispatch both send the order there first.
fn picked_service(
    index: &DispatchIndex,
    q: &OrderQuery<'_>,
    service: &str,
    ranked: &[Candidate],
) -> Option<Candidate> {
    if let Some(c) = ranked.iter().find(|c| c.provider_id == service) {
        return Some(c.clone());
    }
    let free = index.remaining_capacity(service, q.week).unwrap_or(0) > 0
        && !q.exclude.iter().any(|x| x == service);
    let p = index.provider(service)?;
    (free && p.active)
        .then(|| index.candidate(q, service))
        .flatten()
}

fn rank_error(e: RankError) -> AppError {
    match e {
        RankError::UnknownCategory(c) => AppError::invalid(
            "category",
            "service.category_unknown",
            format!("服务类别“{c}”不在本区的类别中。"),
        ),
        RankError::UnknownCommunity(c) => AppError::invalid(
            "community_code",
            "division.unknown",
            format!("社区“{c}”不在本区的区划中。"),
        ),
    }
}

fn no_candidate() -> AppError {
    AppError::conflict(
        "dispatch.no_candidate",
        "目前没有能接这张订单的服务者（同类别、服务范围覆盖、本周还有余量）。订单保持待派单；可稍后重试，或由工作人员指定服务者。",
    )
}

impl App {
    pub(crate) async fn dispatch_lock(&self) -> IndexGuard<'_> {
        self.dispatch.inner.lock().await
    }

    /// The week a dispatch counts in: days from 1970-01-01 to the local Monday of `at`.
    pub fn week_of(&self, at: Timestamp) -> i64 {
        let tz = jiff::tz::TimeZone::get(&self.pack().timezone).unwrap_or(jiff::tz::TimeZone::UTC);
        let date = at.to_zoned(tz).date();
        let monday = date
            .checked_sub(jiff::Span::new().days(i64::from(date.weekday().to_monday_zero_offset())))
            .unwrap_or(date);
        let epoch = jiff::civil::date(1970, 1, 1);
        epoch.until(monday).map_or(0, |s| i64::from(s.get_days()))
    }

    /// The local weekday (0 = Monday) and minute of a wanted instant.
    fn wanted_of(&self, wanted_at: Option<&str>) -> Option<(u8, u16)> {
        let at = cishan_store::parse_instant(wanted_at?).ok()?;
        let tz = jiff::tz::TimeZone::get(&self.pack().timezone).ok()?;
        let z = at.to_zoned(tz);
        let minute = u16::try_from(i32::from(z.hour()) * 60 + i32::from(z.minute())).ok()?;
        Some((
            u8::try_from(z.weekday().to_monday_zero_offset()).ok()?,
            minute,
        ))
    }

    /// The order limits in force (defaults unless an administrator set them).
    pub async fn order_limits(&self) -> Result<OrderLimits> {
        match self.store().setting(LIMITS_SETTING).await? {
            Some(v) => serde_json::from_str(&v).map_err(AppError::internal),
            None => Ok(OrderLimits::default()),
        }
    }

    /// Sets the order limits (administrators only).
    pub async fn set_order_limits(
        &self,
        actor: &Actor,
        limits: &OrderLimits,
    ) -> Result<OrderLimits> {
        actor.require_admin()?;
        let fields = [
            ("accept_minutes", limits.accept_minutes, 1, 7 * 24 * 60),
            (
                "dispatch_alert_minutes",
                limits.dispatch_alert_minutes,
                1,
                30 * 24 * 60,
            ),
            (
                "accept_alert_minutes",
                limits.accept_alert_minutes,
                1,
                30 * 24 * 60,
            ),
            (
                "complete_alert_hours",
                limits.complete_alert_hours,
                1,
                365 * 24,
            ),
            ("need_wait_days", limits.need_wait_days, 1, 365),
            ("low_rating_max", limits.low_rating_max, 1, 4),
            ("low_rating_days", limits.low_rating_days, 1, 365),
        ];
        for (field, value, min, max) in fields {
            if !(min..=max).contains(&value) {
                return Err(AppError::invalid(
                    field,
                    "order_limits.invalid",
                    format!("{field} 应在 {min} 到 {max} 之间。"),
                ));
            }
        }
        let now = self.clock().now();
        let mut tx = self.store().begin().await?;
        tx.upsert_setting(
            LIMITS_SETTING,
            &serde_json::to_string(limits).map_err(AppError::internal)?,
        )
        .await?;
        tx.journal(
            now,
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "order.limits_set".into(),
                subject: LIMITS_SETTING.into(),
                payload: serde_json::to_value(limits).map_err(AppError::internal)?,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(limits.clone())
    }

    fn communities_of_pack(&self) -> Vec<(String, String)> {
        self.pack()
            .divisions
            .iter()
            .filter(|d| matches!(d.level, DivisionLevel::Community | DivisionLevel::Village))
            .filter_map(|d| {
                Some((
                    d.code.as_str().to_owned(),
                    d.parent.as_ref()?.as_str().to_owned(),
                ))
            })
            .collect()
    }

    fn service_provider(&self, row: &ServiceFullRow) -> Provider {
        let (community, street) = match row
            .division_code
            .as_deref()
            .and_then(|c| self.pack().division(c))
        {
            Some(d) if matches!(d.level, DivisionLevel::Community | DivisionLevel::Village) => (
                Some(d.code.as_str().to_owned()),
                d.parent.as_ref().map(|p| p.as_str().to_owned()),
            ),
            Some(d) if matches!(d.level, DivisionLevel::Street | DivisionLevel::Town) => {
                (None, Some(d.code.as_str().to_owned()))
            }
            _ => (None, None),
        };
        Provider {
            id: row.id.clone(),
            kind: ProviderKind::Service,
            categories: vec![row.category.clone()],
            community,
            street,
            scope: Scope::parse(&row.scope).unwrap_or(Scope::Street),
            capacity_per_week: u32::try_from(row.capacity_per_week).unwrap_or(0),
            eligibility: row
                .eligibility
                .split(',')
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect(),
            windows: TimeWindows::parse(&row.time_windows).unwrap_or_default(),
            active: row.state == "published",
            week: 0,
            used: 0,
            live: 0,
            rating_sum: 0,
            rating_count: 0,
        }
    }

    fn volunteer_provider(
        &self,
        id: String,
        division: Option<String>,
        categories: Vec<String>,
    ) -> Provider {
        let (community, street) = match division.as_deref().and_then(|c| self.pack().division(c)) {
            Some(d) if matches!(d.level, DivisionLevel::Community | DivisionLevel::Village) => (
                Some(d.code.as_str().to_owned()),
                d.parent.as_ref().map(|p| p.as_str().to_owned()),
            ),
            Some(d) if matches!(d.level, DivisionLevel::Street | DivisionLevel::Town) => {
                (None, Some(d.code.as_str().to_owned()))
            }
            _ => (None, None),
        };
        Provider {
            id,
            kind: ProviderKind::Volunteer,
            categories,
            community,
            street,
            scope: Scope::District,
            capacity_per_week: VOLUNTEER_WEEKLY_CAPACITY,
            eligibility: Vec::new(),
            windows: TimeWindows::default(),
            active: true,
            week: 0,
            used: 0,
            live: 0,
            rating_sum: 0,
            rating_count: 0,
        }
    }

    /// Builds the dispatch index from the database: every published service, every volunteer
    /// with categories, and their counters.
    pub async fn load_dispatch_index(&self) -> Result<DispatchIndex> {
        Ok(self.load_dispatch().await?.index)
    }

    async fn load_dispatch(&self) -> Result<Loaded> {
        let started = std::time::Instant::now();
        let communities = self.communities_of_pack();
        let mut index = DispatchIndex::new(
            self.pack()
                .service_categories
                .iter()
                .map(|c| c.code.as_str()),
            communities.iter().map(|(c, s)| (c.as_str(), s.as_str())),
        );
        let mut services = HashMap::new();
        for row in self.store().published_services().await? {
            services.insert(
                row.id.clone(),
                (row.name.clone(), row.provider_org_id.clone()),
            );
            index.upsert(self.service_provider(&row), false);
        }
        for v in self.store().dispatch_volunteers().await? {
            index.upsert(
                self.volunteer_provider(v.participant_id, v.division_code, v.categories),
                false,
            );
        }
        for s in self.store().provider_stats_all().await? {
            if let Some(p) = index.provider(&s.provider_id).cloned() {
                index.upsert(
                    Provider {
                        week: s.week,
                        used: u32::try_from(s.week_used).unwrap_or(u32::MAX),
                        live: u32::try_from(s.live_orders).unwrap_or(u32::MAX),
                        rating_sum: s.rating_sum,
                        rating_count: s.rating_count,
                        ..p
                    },
                    false,
                );
            }
        }
        // From here on ranking may stop reading a list early (see `DispatchIndex::sort_lists`).
        index.sort_lists();
        tracing::info!(
            dispatch.providers = index.len(),
            dispatch.load_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "dispatch index loaded"
        );
        Ok(Loaded { index, services })
    }

    async fn ensure_loaded(&self, guard: &mut IndexGuard<'_>) -> Result<()> {
        if guard.is_none() {
            **guard = Some(self.load_dispatch().await?);
        }
        Ok(())
    }

    /// Loads the dispatch index now (the server calls this at start so the first order does
    /// not wait for it).
    pub async fn warm_dispatch_index(&self) -> Result<usize> {
        let mut guard = self.dispatch_lock().await;
        self.ensure_loaded(&mut guard).await?;
        Ok(guard.as_ref().map_or(0, |l| l.index.len()))
    }

    pub(crate) fn index_service_changed(&self, guard: &mut IndexGuard<'_>, row: &ServiceFullRow) {
        if let Some(loaded) = guard.as_mut() {
            loaded.services.insert(
                row.id.clone(),
                (row.name.clone(), row.provider_org_id.clone()),
            );
            loaded.index.upsert(self.service_provider(row), true);
        }
    }

    pub(crate) fn index_volunteer_changed(
        &self,
        guard: &mut IndexGuard<'_>,
        id: &str,
        division: Option<String>,
        categories: Vec<String>,
    ) {
        if let Some(loaded) = guard.as_mut() {
            loaded.index.upsert(
                self.volunteer_provider(id.to_owned(), division, categories),
                true,
            );
        }
    }

    pub(crate) fn apply_index_change(&self, guard: &mut IndexGuard<'_>, change: IndexChange) {
        let Some(loaded) = guard.as_mut() else { return };
        match change {
            IndexChange::None => {}
            IndexChange::Release(p, week) => loaded.index.release(&p, week),
            IndexChange::Rating(p, rating) => loaded.index.add_rating(&p, rating),
        }
    }

    /// Ranks the providers for an order and dispatches it to the best one, or to
    /// `input.provider_id` (a staff override). Staff of the order's street (or the district).
    pub async fn dispatch_order(
        &self,
        actor: &Actor,
        key: Option<&IdempotencyKey>,
        id: &str,
        input: &DispatchInput,
    ) -> Result<Outcome<DispatchResult>> {
        let access = self.order_access(actor).await?;
        let order = self
            .store()
            .order(id)
            .await?
            .ok_or_else(|| AppError::not_found("order"))?;
        if !access.street_staff(&order.street_code) {
            // Those who may see the order (its provider) are refused; to anyone else it does
            // not exist, as for its candidates.
            return Err(if access.may_view(&order) {
                AppError::forbidden()
            } else {
                AppError::not_found("order")
            });
        }
        let provider = input
            .provider_id
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty());
        let hash = request_hash(&(id, input));
        let scope = format!("order:dispatch:{id}:{}", actor.user_id);
        self.dispatch_inner(
            &actor.user_id,
            key.map(|k| (k, scope.as_str(), hash.as_str())),
            id,
            provider,
        )
        .await
    }

    /// Dispatches an order for the platform itself (after a rejection or an expiry); `None`
    /// when no provider is free (the order stays open and raises a warning in time).
    pub(crate) async fn dispatch_as_system(&self, id: &str) -> Result<Option<DispatchResult>> {
        match self.dispatch_inner("system", None, id, None).await {
            Ok(done) => Ok(Some(done.value)),
            Err(e) if e.code == "dispatch.no_candidate" || e.code == "order.illegal_transition" => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn dispatch_inner(
        &self,
        by: &str,
        key: Option<(&IdempotencyKey, &str, &str)>,
        id: &str,
        provider: Option<&str>,
    ) -> Result<Outcome<DispatchResult>> {
        let mut guard = self.dispatch_lock().await;
        self.ensure_loaded(&mut guard).await?;
        let limits = self.order_limits().await?;
        let now = self.clock().now();
        let at = format_instant(now);
        let week = self.week_of(now);
        let mut tx = self.store().begin().await?;
        if let Some((key, scope, hash)) = key {
            if let Some(done) = replay(&mut tx, scope, key, hash).await? {
                return Ok(done);
            }
        }
        let mut row = tx
            .order(id)
            .await?
            .ok_or_else(|| AppError::not_found("order"))?;
        let from = parse_state(&row.state)?;
        if from != OrderState::Created {
            return Err(illegal(IllegalTransition {
                from,
                action: OrderAction::Dispatch,
            }));
        }
        let household = self.store().household_place(&row.household_id).await?;
        let exclude = tx.passed_over(id).await?;
        let wanted = self.wanted_of(row.wanted_at.as_deref());
        let loaded = guard.as_mut().expect("loaded above");
        let q = OrderQuery {
            category: &row.category,
            community: &row.community_code,
            assistance_category: household.as_ref().map(|h| h.category.as_str()),
            wanted,
            exclude: &exclude,
            week,
        };
        let candidates = loaded.index.rank(&q, MAX_CANDIDATES).map_err(rank_error)?;
        let (chosen, chosen_by) = match provider {
            Some(p) => {
                let c = loaded.index.candidate(&q, p).ok_or_else(|| {
                    AppError::invalid("provider_id", "dispatch.provider_unsuitable", "指定的服务者不提供这一类别的服务，或服务范围不覆盖这一户所在的社区。请从候选名单中选择。")
                })?;
                if loaded.index.remaining_capacity(p, week).unwrap_or(0) <= 0 {
                    return Err(AppError::conflict(
                        "dispatch.provider_full",
                        "指定的服务者本周的服务能力已经用完，请选择其他服务者。",
                    ));
                }
                (c, "override")
            }
            None => {
                let picked = row
                    .service_id
                    .as_deref()
                    .and_then(|s| picked_service(&loaded.index, &q, s, &candidates));
                (
                    picked
                        .or_else(|| candidates.first().cloned())
                        .ok_or_else(no_candidate)?,
                    "auto",
                )
            }
        };
        let capacity = i64::from(
            loaded
                .index
                .provider(&chosen.provider_id)
                .map_or(0, |p| p.capacity_per_week),
        );
        let kind = chosen.kind.as_str();
        tx.ensure_provider_stats(&chosen.provider_id, kind).await?;
        if !tx
            .take_provider_capacity(&chosen.provider_id, week, capacity, 1)
            .await?
        {
            return Err(AppError::conflict(
                "dispatch.provider_full",
                "该服务者本周的服务能力刚刚用完，请重新派单。",
            ));
        }
        let org = loaded
            .services
            .get(&chosen.provider_id)
            .map(|(_, o)| o.clone());
        let deadline = format_instant(
            now.checked_add(SignedDuration::from_mins(limits.accept_minutes))
                .map_err(AppError::internal)?,
        );
        if !tx
            .order_dispatch(
                id,
                kind,
                &chosen.provider_id,
                org.as_deref(),
                week,
                &deadline,
                &at,
            )
            .await?
        {
            let current = tx
                .order(id)
                .await?
                .and_then(|o| o.state.parse().ok())
                .unwrap_or(from);
            return Err(illegal(IllegalTransition {
                from: current,
                action: OrderAction::Dispatch,
            }));
        }
        let attempt = tx.next_dispatch_attempt(id).await?;
        let brief: Vec<serde_json::Value> = candidates
            .iter()
            .map(|c| serde_json::json!({ "provider_id": c.provider_id, "kind": c.kind.as_str(), "score": c.score }))
            .collect();
        tx.insert(&DispatchAttemptRow {
            order_id: id.to_owned(),
            attempt,
            provider_id: chosen.provider_id.clone(),
            provider_kind: kind.to_owned(),
            score: chosen.score,
            explanation: serde_json::to_string(&chosen.components).map_err(AppError::internal)?,
            candidates: serde_json::Value::Array(brief).to_string(),
            chosen_by: chosen_by.to_owned(),
            outcome: "pending".into(),
            actor: by.to_owned(),
            dispatched_at: at.clone(),
            deadline: deadline.clone(),
            closed_at: None,
        })
        .await?;
        let seq = tx.next_order_event_seq(id).await?;
        tx.insert(&OrderEventRow {
            order_id: id.to_owned(),
            seq,
            action: "dispatch".into(),
            from_state: Some(from.as_str().into()),
            to_state: OrderState::Dispatched.as_str().into(),
            provider_id: Some(chosen.provider_id.clone()),
            actor: by.to_owned(),
            note: format!(
                "{}，得分 {}",
                if chosen_by == "override" {
                    "工作人员指定"
                } else {
                    "自动匹配"
                },
                chosen.score
            ),
            at: at.clone(),
            on_behalf: false,
        })
        .await?;
        tx.journal(now, NewEntry {
            actor: by.to_owned(),
            kind: "order.dispatched".into(),
            subject: id.to_owned(),
            payload: serde_json::json!({ "provider_id": chosen.provider_id, "provider_kind": kind, "score": chosen.score, "chosen_by": chosen_by, "attempt": attempt, "week": week }),
        })
        .await?;
        row.state = OrderState::Dispatched.as_str().into();
        row.provider_kind = Some(kind.to_owned());
        row.provider_id = Some(chosen.provider_id.clone());
        row.provider_org_id = org;
        row.dispatch_week = Some(week);
        row.accept_deadline = Some(deadline);
        row.dispatched_at = Some(at.clone());
        row.first_dispatched_at = row.first_dispatched_at.or(Some(at));
        let mut views = self
            .candidate_views(
                &loaded.services,
                &[std::slice::from_ref(&chosen), candidates.as_slice()].concat(),
            )
            .await?
            .into_iter();
        let chosen_view = views
            .next()
            .ok_or_else(|| AppError::internal(std::io::Error::other("no view of the chosen")))?;
        let result = DispatchResult {
            order: self.order_view(&row),
            chosen: chosen_view,
            chosen_by: chosen_by.to_owned(),
            candidates: views.collect(),
        };
        if let Some((key, scope, hash)) = key {
            save_replay(&mut tx, scope, key, hash, 200, &result, now).await?;
        }
        tx.commit().await?;
        let assigned = loaded.index.assign(&chosen.provider_id, week);
        debug_assert!(
            assigned,
            "the database took the capacity, so the index has it"
        );
        Ok(Outcome {
            value: result,
            replayed: false,
        })
    }

    /// Candidates as shown: a service's name, a volunteer's masked name (one read for all).
    async fn candidate_views(
        &self,
        services: &HashMap<String, (String, String)>,
        candidates: &[Candidate],
    ) -> Result<Vec<CandidateView>> {
        let people: Vec<String> = candidates
            .iter()
            .filter(|c| !services.contains_key(&c.provider_id))
            .map(|c| c.provider_id.clone())
            .collect();
        let names: HashMap<String, String> = self
            .store()
            .display_names(&people)
            .await?
            .into_iter()
            .collect();
        Ok(candidates
            .iter()
            .map(|c| {
                let (name, org) = match services.get(&c.provider_id) {
                    Some((name, org)) => (name.clone(), Some(org.clone())),
                    None => (
                        names
                            .get(&c.provider_id)
                            .map_or_else(|| c.provider_id.clone(), |n| cishan_core::mask_name(n)),
                        None,
                    ),
                };
                CandidateView {
                    provider_id: c.provider_id.clone(),
                    provider_kind: c.kind.as_str().to_owned(),
                    provider_name: name,
                    org_id: org,
                    score: c.score,
                    distance: distance_code(c.distance).to_owned(),
                    components: c
                        .components
                        .iter()
                        .cloned()
                        .map(ScoreComponent::from)
                        .collect(),
                }
            })
            .collect())
    }

    /// The candidates an order would get now, without dispatching (staff of its street).
    pub async fn order_candidates(&self, actor: &Actor, id: &str) -> Result<Vec<CandidateView>> {
        let access = self.order_access(actor).await?;
        let row = self
            .store()
            .order(id)
            .await?
            .ok_or_else(|| AppError::not_found("order"))?;
        if !access.street_staff(&row.street_code) {
            return Err(AppError::not_found("order"));
        }
        let household = self.store().household_place(&row.household_id).await?;
        let mut guard = self.dispatch_lock().await;
        self.ensure_loaded(&mut guard).await?;
        let mut tx = self.store().begin().await?;
        let exclude = tx.passed_over(id).await?;
        drop(tx);
        let loaded = guard.as_ref().expect("loaded above");
        let q = OrderQuery {
            category: &row.category,
            community: &row.community_code,
            assistance_category: household.as_ref().map(|h| h.category.as_str()),
            wanted: self.wanted_of(row.wanted_at.as_deref()),
            exclude: &exclude,
            week: self.week_of(self.clock().now()),
        };
        let ranked = loaded.index.rank(&q, MAX_CANDIDATES).map_err(rank_error)?;
        self.candidate_views(&loaded.services, &ranked).await
    }

    /// Dispatches many open orders at once, oldest first, each to its best candidate with the
    /// capacity taken by the orders before it in the batch, so nobody is sent more than their
    /// remaining weekly capacity. One transaction. Staff of a street take their street's orders.
    pub async fn batch_dispatch(&self, actor: &Actor, input: &BatchInput) -> Result<BatchReport> {
        let access = self.order_access(actor).await?;
        if !access.actor.is_staff() || access.scope.org_id.is_some() {
            return Err(AppError::forbidden());
        }
        let limit = input
            .limit
            .unwrap_or(MAX_BATCH_ORDERS)
            .clamp(1, MAX_BATCH_ORDERS);
        let street = access.scope.division_code.clone();
        self.batch_dispatch_as(&actor.user_id, limit, street.as_deref())
            .await
    }

    /// [`App::batch_dispatch`] without the access check, for the bench and the demo.
    pub async fn batch_dispatch_as(
        &self,
        by: &str,
        limit: i64,
        street: Option<&str>,
    ) -> Result<BatchReport> {
        let mut guard = self.dispatch_lock().await;
        self.ensure_loaded(&mut guard).await?;
        let limits = self.order_limits().await?;
        let now = self.clock().now();
        let at = format_instant(now);
        let week = self.week_of(now);
        let deadline = format_instant(
            now.checked_add(SignedDuration::from_mins(limits.accept_minutes))
                .map_err(AppError::internal)?,
        );
        // A street's batch is the oldest open orders of that street, not of the district.
        let open = self.store().open_orders(limit, street).await?;
        let (passed, categories) = self.store().open_order_facts().await?;
        let mut passed_by: HashMap<&str, Vec<String>> = HashMap::new();
        for (o, p) in &passed {
            passed_by.entry(o.as_str()).or_default().push(p.clone());
        }
        let category_of: HashMap<&str, &str> = categories
            .iter()
            .map(|(o, c)| (o.as_str(), c.as_str()))
            .collect();
        let loaded = guard.as_mut().expect("loaded above");
        let empty = Vec::new();
        let mut plan: Vec<(&OrderRow, Candidate)> = Vec::new();
        // Provider → (orders in this batch, weekly capacity).
        let mut taken: HashMap<String, (i64, i64)> = HashMap::new();
        for o in &open {
            let exclude = passed_by.get(o.id.as_str()).unwrap_or(&empty);
            let q = OrderQuery {
                category: &o.category,
                community: &o.community_code,
                assistance_category: category_of.get(o.id.as_str()).copied(),
                wanted: self.wanted_of(o.wanted_at.as_deref()),
                exclude,
                week,
            };
            // The service the household picked first, as in single dispatch; else the best.
            let picked = o
                .service_id
                .as_deref()
                .and_then(|s| picked_service(&loaded.index, &q, s, &[]));
            let best = match picked {
                Some(c) => c,
                None => {
                    let Ok(mut ranked) = loaded.index.rank(&q, 1) else {
                        continue;
                    };
                    let Some(best) = ranked.pop() else { continue };
                    best
                }
            };
            if loaded.index.assign(&best.provider_id, week) {
                let capacity = loaded
                    .index
                    .provider(&best.provider_id)
                    .map_or(0, |p| i64::from(p.capacity_per_week));
                taken
                    .entry(best.provider_id.clone())
                    .or_insert((0, capacity))
                    .0 += 1;
                plan.push((o, best));
            }
        }
        let outcome = self
            .write_batch(
                by,
                &plan,
                &taken,
                &loaded.services,
                week,
                &at,
                &deadline,
                now,
            )
            .await;
        match outcome {
            Ok(written) => {
                // A set: looking each order up in the list was quadratic (10,000 × 10,000).
                let written: std::collections::HashSet<&str> =
                    written.iter().map(String::as_str).collect();
                // Orders someone moved meanwhile were not written: give their slots back.
                for (o, c) in &plan {
                    if !written.contains(o.id.as_str()) {
                        loaded.index.release(&c.provider_id, Some(week));
                    }
                }
                let assignments: Vec<(String, String, i64)> = plan
                    .iter()
                    .filter(|(o, _)| written.contains(o.id.as_str()))
                    .map(|(o, c)| (o.id.clone(), c.provider_id.clone(), c.score))
                    .collect();
                let considered = i64::try_from(open.len()).unwrap_or(i64::MAX);
                let dispatched = i64::try_from(assignments.len()).unwrap_or(i64::MAX);
                Ok(BatchReport {
                    considered,
                    dispatched,
                    without_candidate: considered - dispatched,
                    assignments,
                })
            }
            Err(e) => {
                // The in-memory reservations did not commit: reload from the database.
                *guard = None;
                Err(e)
            }
        }
    }

    #[expect(clippy::too_many_arguments, reason = "one batch's shared facts")]
    async fn write_batch(
        &self,
        by: &str,
        plan: &[(&OrderRow, Candidate)],
        taken: &HashMap<String, (i64, i64)>,
        services: &HashMap<String, (String, String)>,
        week: i64,
        at: &str,
        deadline: &str,
        now: Timestamp,
    ) -> Result<Vec<String>> {
        let mut tx = self.store().begin().await?;
        let mut providers: Vec<(&String, &(i64, i64))> = taken.iter().collect();
        providers.sort();
        // A few multi-row statements, not several per provider and order: 10,000 orders took
        // about 10 s one statement at a time (`cishan bench dispatch`).
        let takes: Vec<(String, String, i64, i64)> = providers
            .iter()
            .map(|(p, (n, capacity))| {
                let kind = if services.contains_key(*p) {
                    "service"
                } else {
                    "volunteer"
                };
                ((*p).clone(), kind.to_owned(), *capacity, *n)
            })
            .collect();
        if !tx.take_capacity_many(&takes, week).await? {
            return Err(AppError::conflict(
                "dispatch.provider_full",
                "批量派单时有服务者的本周服务能力已被占用，请重新批量派单。",
            ));
        }
        let moves: Vec<(String, String, String, Option<String>)> = plan
            .iter()
            .map(|(o, c)| {
                (
                    o.id.clone(),
                    c.kind.as_str().to_owned(),
                    c.provider_id.clone(),
                    services.get(&c.provider_id).map(|(_, org)| org.clone()),
                )
            })
            .collect();
        let moved: std::collections::HashSet<String> = tx
            .orders_dispatch_many(&moves, week, deadline, at)
            .await?
            .into_iter()
            .collect();
        let mut written = Vec::with_capacity(plan.len());
        let mut attempts = Vec::with_capacity(plan.len());
        let mut events = Vec::with_capacity(plan.len());
        for (o, c) in plan {
            if !moved.contains(&o.id) {
                // Someone moved the order meanwhile: give its provider the slot back.
                tx.release_provider(&c.provider_id, Some(week)).await?;
                continue;
            }
            written.push(o.id.clone());
            attempts.push(DispatchAttemptRow {
                order_id: o.id.clone(),
                attempt: o.passes + 1,
                provider_id: c.provider_id.clone(),
                provider_kind: c.kind.as_str().to_owned(),
                score: c.score,
                explanation: serde_json::to_string(&c.components).map_err(AppError::internal)?,
                candidates: serde_json::json!([{ "provider_id": c.provider_id, "kind": c.kind.as_str(), "score": c.score }]).to_string(),
                chosen_by: "batch".into(),
                outcome: "pending".into(),
                actor: by.to_owned(),
                dispatched_at: at.to_owned(),
                deadline: deadline.to_owned(),
                closed_at: None,
            });
            events.push(OrderEventRow {
                order_id: o.id.clone(),
                seq: 0,
                action: "dispatch".into(),
                from_state: Some("created".into()),
                to_state: "dispatched".into(),
                provider_id: Some(c.provider_id.clone()),
                actor: by.to_owned(),
                note: format!("批量派单，得分 {}", c.score),
                at: at.to_owned(),
                on_behalf: false,
            });
        }
        // Event and attempt numbers continue each order's own (an order may have been
        // dispatched, rejected and reopened before).
        let seqs = tx.next_event_seqs(&written).await?;
        let attempt_numbers = tx.next_attempt_numbers(&written).await?;
        for (e, seq) in events.iter_mut().zip(&seqs) {
            e.seq = *seq;
        }
        for (a, n) in attempts.iter_mut().zip(&attempt_numbers) {
            a.attempt = *n;
        }
        tx.insert_all(&attempts).await?;
        tx.insert_all(&events).await?;
        // Journal entries are chained in memory and written together at the commit.
        tx.stage_writes();
        for a in &attempts {
            tx.journal(now, NewEntry {
                actor: by.to_owned(),
                kind: "order.dispatched".into(),
                subject: a.order_id.clone(),
                payload: serde_json::json!({ "provider_id": a.provider_id, "provider_kind": a.provider_kind, "score": a.score, "chosen_by": "batch", "attempt": a.attempt, "week": week }),
            })
            .await?;
        }
        tx.commit().await?;
        Ok(written)
    }

    /// Passes over every provider whose accept deadline has passed (the order goes back to be
    /// dispatched, and is sent on to the next candidate at once if one is free). The
    /// background sweeper calls this; tests call it after moving the clock.
    pub async fn sweep_orders(&self) -> Result<SweepReport> {
        let now = self.clock().now();
        let at = format_instant(now);
        let due = self
            .store()
            .orders_past_deadline(&at, MAX_SWEEP_ORDERS)
            .await?;
        let mut report = SweepReport::default();
        for o in due {
            // One order that fails (taking it back, or sending it on) does not stop the sweep:
            // it is logged by id and code only, and the next order is dealt with.
            match self.expire_order(&o, now, &at).await {
                Ok(false) => {}
                Ok(true) => {
                    report.expired += 1;
                    match self.dispatch_as_system(&o.id).await {
                        Ok(Some(_)) => report.redispatched += 1,
                        Ok(None) => {}
                        Err(e) => {
                            report.failed += 1;
                            tracing::warn!(
                                order.id = %o.id,
                                error.code = %e.code,
                                error.kind = ?e.kind,
                                "re-dispatch after an expired accept deadline failed; the order stays open"
                            );
                        }
                    }
                }
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(
                        order.id = %o.id,
                        error.code = %e.code,
                        error.kind = ?e.kind,
                        "taking back an order past its accept deadline failed"
                    );
                }
            }
        }
        Ok(report)
    }

    /// Takes one order past its accept deadline back from its provider (one transaction);
    /// `false` when someone moved it meanwhile.
    async fn expire_order(&self, o: &OrderRow, now: Timestamp, at: &str) -> Result<bool> {
        let mut guard = self.dispatch_lock().await;
        let mut tx = self.store().begin().await?;
        if !tx
            .order_take_back(&o.id, OrderState::Dispatched.as_str())
            .await?
        {
            return Ok(false);
        }
        tx.close_dispatch_attempt(&o.id, "expired", at).await?;
        if let Some(p) = &o.provider_id {
            tx.release_provider(p, o.dispatch_week).await?;
        }
        let seq = tx.next_order_event_seq(&o.id).await?;
        tx.insert(&OrderEventRow {
            order_id: o.id.clone(),
            seq,
            action: OrderAction::Expire.as_str().into(),
            from_state: Some(OrderState::Dispatched.as_str().into()),
            to_state: OrderState::Created.as_str().into(),
            provider_id: o.provider_id.clone(),
            actor: "system".into(),
            note: "超过接单时限未接单，改派下一位".into(),
            at: at.to_owned(),
            on_behalf: false,
        })
        .await?;
        tx.journal(
            now,
            NewEntry {
                actor: "system".into(),
                kind: "order.expired".into(),
                subject: o.id.clone(),
                payload: serde_json::json!({ "provider_id": o.provider_id, "deadline": o.accept_deadline }),
            },
        )
        .await?;
        tx.commit().await?;
        if let Some(p) = &o.provider_id {
            self.apply_index_change(&mut guard, IndexChange::Release(p.clone(), o.dispatch_week));
        }
        Ok(true)
    }

    /// Runs [`App::sweep_orders`] every `every` until the app's runtime stops.
    pub fn start_order_sweeper(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let app = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                match app.sweep_orders().await {
                    Ok(r) if r.expired > 0 || r.failed > 0 => {
                        tracing::info!(
                            orders.expired = r.expired,
                            orders.redispatched = r.redispatched,
                            orders.failed = r.failed,
                            "order sweep"
                        );
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "order sweep failed"),
                }
            }
        })
    }
}
