//! Early warnings (预警通报): orders not dispatched, accepted or completed within their limits
//! ([`crate::dispatch::OrderLimits`]), low ratings, and needs that waited too long, listed for
//! the people responsible: staff of a street see their street's, an organization's staff
//! their services' orders and ratings, district staff everything (filterable by street and
//! organization). Computed from the orders and needs at the moment of asking, so a warning
//! disappears as soon as its cause is dealt with (the order is dispatched, accepted, completed;
//! the need gets an order). A low rating stays for `low_rating_days`.
//!
//! The street and organization filters are in the queries, and the counts (per kind and per
//! street) are `COUNT` queries, so neither a scoped list nor a count stops at the listed cap.
//! Each order is counted by one check: an order back in `created` after a rejection or an
//! expiry whose first dispatch is older than `accept_alert_minutes` is `not_accepted` (it
//! needs re-dispatching), not also `not_dispatched`.

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

use cishan_store::{format_instant, AlertScope, OverdueColumn, OverdueQuery};

use crate::{Actor, App, AppError, Result};

/// Warnings of each kind listed at most.
pub const MAX_ALERTS_PER_KIND: i64 = 500;

/// Which warnings to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertQuery {
    /// A street (or town) code.
    #[serde(default)]
    pub street: Option<String>,
    /// A provider organization.
    #[serde(default)]
    pub org_id: Option<String>,
}

/// One warning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Alert {
    /// `not_dispatched`, `not_accepted`, `not_completed`, `low_rating` or `need_waiting`.
    pub kind: String,
    pub kind_name: String,
    /// The order (`ord_…`) or need (`need_…`) concerned.
    pub subject_id: String,
    pub household_id: String,
    pub street_code: Option<String>,
    pub street_name: Option<String>,
    pub org_id: Option<String>,
    pub provider_id: Option<String>,
    /// Since when the limit counts (created, first dispatched, accepted, reviewed, registered).
    pub since: String,
    pub detail: String,
}

/// The warnings and how many of each kind and street.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlertList {
    /// All warnings in scope (counted, not capped).
    pub total: i64,
    pub counts: Vec<AlertCount>,
    /// How many warnings each street has (all kinds), streets with none left out.
    pub by_street: Vec<StreetAlertCount>,
    /// At most 500 of each kind, oldest first (low ratings newest first).
    pub items: Vec<Alert>,
}

/// How many warnings there are, without the list (the dashboard's and the board's box).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlertSummary {
    pub total: i64,
    pub counts: Vec<AlertCount>,
    pub by_street: Vec<StreetAlertCount>,
}

/// A street's warnings, all kinds together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StreetAlertCount {
    pub street_code: String,
    pub street_name: String,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlertCount {
    pub kind: String,
    pub kind_name: String,
    pub count: i64,
}

const KINDS: [(&str, &str); 5] = [
    ("not_dispatched", "超时未派单"),
    ("not_accepted", "超时未接单"),
    ("not_completed", "超时未完成"),
    ("low_rating", "低分评价"),
    ("need_waiting", "需求久未响应"),
];

fn kind_name(kind: &str) -> String {
    KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or_else(|| kind.to_owned(), |(_, n)| (*n).to_owned())
}

fn ago(now: jiff::Timestamp, minutes: i64) -> Result<String> {
    Ok(format_instant(
        now.checked_sub(SignedDuration::from_mins(minutes))
            .map_err(AppError::internal)?,
    ))
}

/// The three overdue checks over orders, as (kind, states, column, limit in minutes).
const CHECKS: [(&str, &[&str], OverdueColumn); 3] = [
    ("not_dispatched", &["created"], OverdueColumn::CreatedAt),
    (
        "not_accepted",
        &["created", "dispatched"],
        OverdueColumn::FirstDispatchedAt,
    ),
    (
        "not_completed",
        &["accepted", "in_service"],
        OverdueColumn::AcceptedAt,
    ),
];

/// What one alert request covers, and the instants its checks compare against.
struct AlertPlan {
    scope: AlertScope,
    /// Needs belong to households, not organizations: an organization's staff see none.
    with_needs: bool,
    limits: crate::dispatch::OrderLimits,
    dispatch_before: String,
    accept_before: String,
    complete_before: String,
    rating_since: String,
    need_before: String,
}

impl AlertPlan {
    fn overdue(&self, check: usize) -> OverdueQuery<'_> {
        let (_, states, column) = CHECKS[check];
        let (before, unless) = match column {
            // Once its first dispatch is older than the accept limit, a (re-)opened order is
            // the `not_accepted` check's.
            OverdueColumn::CreatedAt => (&self.dispatch_before, Some(self.accept_before.as_str())),
            OverdueColumn::FirstDispatchedAt => (&self.accept_before, None),
            OverdueColumn::AcceptedAt => (&self.complete_before, None),
        };
        OverdueQuery {
            states,
            column,
            before,
            unless_first_dispatched_before: unless,
            scope: &self.scope,
        }
    }
}

impl App {
    async fn alert_plan(&self, actor: &Actor, q: &AlertQuery) -> Result<AlertPlan> {
        actor.require_staff()?;
        let access = self.order_access(actor).await?;
        // A street's staff see their street; an organization's staff their organization.
        let street = access
            .scope
            .division_code
            .clone()
            .or_else(|| q.street.clone().filter(|s| !s.is_empty()));
        let org = access
            .scope
            .org_id
            .clone()
            .or_else(|| q.org_id.clone().filter(|s| !s.is_empty()));
        let limits = self.order_limits().await?;
        let now = self.clock().now();
        Ok(AlertPlan {
            with_needs: org.is_none(),
            scope: AlertScope {
                street,
                org_id: org,
            },
            dispatch_before: ago(now, limits.dispatch_alert_minutes)?,
            accept_before: ago(now, limits.accept_alert_minutes)?,
            complete_before: ago(now, limits.complete_alert_hours * 60)?,
            rating_since: ago(now, limits.low_rating_days * 24 * 60)?,
            need_before: ago(now, limits.need_wait_days * 24 * 60)?,
            limits,
        })
    }

    /// How many warnings of each kind and street the actor is responsible for, by `COUNT`
    /// queries (staff only).
    pub async fn alert_counts(&self, actor: &Actor, q: &AlertQuery) -> Result<AlertSummary> {
        let plan = self.alert_plan(actor, q).await?;
        self.alert_summary(&plan).await
    }

    async fn alert_summary(&self, plan: &AlertPlan) -> Result<AlertSummary> {
        let mut per_kind = Vec::new();
        for (i, (kind, _, _)) in CHECKS.iter().enumerate() {
            per_kind.push((
                *kind,
                self.store()
                    .orders_overdue_by_street(&plan.overdue(i))
                    .await?,
            ));
        }
        per_kind.push((
            "low_rating",
            self.store()
                .low_reviews_by_street(plan.limits.low_rating_max, &plan.rating_since, &plan.scope)
                .await?,
        ));
        if plan.with_needs {
            per_kind.push((
                "need_waiting",
                self.store()
                    .needs_waiting_by_street(&plan.need_before, plan.scope.street.as_deref())
                    .await?,
            ));
        }
        let mut by_street: std::collections::BTreeMap<String, i64> = Default::default();
        for (street, n) in per_kind.iter().flat_map(|(_, rows)| rows) {
            *by_street.entry(street.clone()).or_default() += n;
        }
        let counts: Vec<AlertCount> = KINDS
            .iter()
            .map(|(k, n)| AlertCount {
                kind: (*k).to_owned(),
                kind_name: (*n).to_owned(),
                count: per_kind
                    .iter()
                    .filter(|(kind, _)| kind == k)
                    .flat_map(|(_, rows)| rows.iter().map(|r| r.1))
                    .sum(),
            })
            .collect();
        Ok(AlertSummary {
            total: counts.iter().map(|c| c.count).sum(),
            counts,
            by_street: by_street
                .into_iter()
                .map(|(street_code, count)| StreetAlertCount {
                    street_name: self.area_name(Some(&street_code)),
                    street_code,
                    count,
                })
                .collect(),
        })
    }

    /// The early warnings the actor is responsible for (staff only): the counts, and at most
    /// [`MAX_ALERTS_PER_KIND`] warnings of each kind.
    pub async fn alerts(&self, actor: &Actor, q: &AlertQuery) -> Result<AlertList> {
        let plan = self.alert_plan(actor, q).await?;
        let summary = self.alert_summary(&plan).await?;
        let limits = &plan.limits;
        let mut items = Vec::new();
        for (i, (kind, _, column)) in CHECKS.iter().enumerate() {
            let kind = *kind;
            for o in self
                .store()
                .orders_overdue(&plan.overdue(i), MAX_ALERTS_PER_KIND)
                .await?
            {
                let since = match column {
                    OverdueColumn::CreatedAt => o.created_at.clone(),
                    OverdueColumn::FirstDispatchedAt => {
                        o.first_dispatched_at.clone().unwrap_or_default()
                    }
                    OverdueColumn::AcceptedAt => o.accepted_at.clone().unwrap_or_default(),
                };
                let detail = match kind {
                    "not_dispatched" => format!(
                        "{}订单超过 {} 分钟仍未派出（已有 {} 位服务者未接）",
                        self.order_view(&o).category_name,
                        limits.dispatch_alert_minutes,
                        o.passes
                    ),
                    "not_accepted" => format!(
                        "首次派单后超过 {} 分钟仍无人接单（已改派 {} 次）{}",
                        limits.accept_alert_minutes,
                        o.passes,
                        if o.state == "created" {
                            "，待重新派单"
                        } else {
                            ""
                        }
                    ),
                    _ => format!(
                        "接单后超过 {} 小时仍未完成服务",
                        limits.complete_alert_hours
                    ),
                };
                items.push(Alert {
                    kind: kind.into(),
                    kind_name: kind_name(kind),
                    subject_id: o.id.clone(),
                    household_id: o.household_id.clone(),
                    street_name: Some(self.order_view(&o).street_name),
                    street_code: Some(o.street_code.clone()),
                    org_id: o.provider_org_id.clone(),
                    provider_id: o.provider_id.clone(),
                    since,
                    detail,
                });
            }
        }
        for r in self
            .store()
            .low_reviews(
                limits.low_rating_max,
                &plan.rating_since,
                &plan.scope,
                MAX_ALERTS_PER_KIND,
            )
            .await?
        {
            let order = self.store().order(&r.order_id).await?;
            items.push(Alert {
                kind: "low_rating".into(),
                kind_name: kind_name("low_rating"),
                subject_id: r.order_id.clone(),
                household_id: order.map(|o| o.household_id).unwrap_or_default(),
                street_name: self.pack().division(&r.street_code).map(|d| d.name.clone()),
                street_code: Some(r.street_code.clone()),
                org_id: r.provider_org_id.clone(),
                provider_id: Some(r.provider_id.clone()),
                since: r.reviewed_at.clone(),
                detail: format!(
                    "服务评价 {} 星{}，请回访了解情况",
                    r.rating,
                    if r.on_behalf {
                        "（工作人员回访代录）"
                    } else {
                        ""
                    }
                ),
            });
        }
        if plan.with_needs {
            for n in self
                .store()
                .needs_waiting(
                    &plan.need_before,
                    plan.scope.street.as_deref(),
                    MAX_ALERTS_PER_KIND,
                )
                .await?
            {
                let need_street = n
                    .street_code
                    .clone()
                    .or_else(|| self.order_street_of(&n.community_code));
                items.push(Alert {
                    kind: "need_waiting".into(),
                    kind_name: kind_name("need_waiting"),
                    subject_id: n.id.clone(),
                    household_id: n.household_id.clone(),
                    street_name: need_street
                        .as_deref()
                        .and_then(|s| self.pack().division(s))
                        .map(|d| d.name.clone()),
                    street_code: need_street,
                    org_id: None,
                    provider_id: None,
                    since: n.registered_at.clone(),
                    detail: format!("需求登记超过 {} 天仍没有服务订单", limits.need_wait_days),
                });
            }
        }
        Ok(AlertList {
            total: summary.total,
            counts: summary.counts,
            by_street: summary.by_street,
            items,
        })
    }
}
