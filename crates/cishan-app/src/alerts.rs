//! Early warnings (预警通报): orders not dispatched, accepted or completed within their limits
//! ([`crate::dispatch::OrderLimits`]), low ratings, and needs that waited too long, listed for
//! the people responsible: staff of a street see their street's, an organization's staff
//! their services' orders and ratings, district staff everything (filterable by street and
//! organization). Computed from the orders and needs at the moment of asking, so a warning
//! disappears as soon as its cause is dealt with (the order is dispatched, accepted, completed;
//! the need gets an order). A low rating stays for `low_rating_days`.

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

use cishan_store::{format_instant, OverdueColumn};

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

/// The warnings and how many of each kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlertList {
    pub total: i64,
    pub counts: Vec<AlertCount>,
    pub items: Vec<Alert>,
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

impl App {
    /// The early warnings the actor is responsible for (staff only).
    pub async fn alerts(&self, actor: &Actor, q: &AlertQuery) -> Result<AlertList> {
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
        let mut items = Vec::new();
        let checks = [
            (
                "not_dispatched",
                &["created"][..],
                OverdueColumn::CreatedAt,
                limits.dispatch_alert_minutes,
            ),
            (
                "not_accepted",
                &["created", "dispatched"][..],
                OverdueColumn::FirstDispatchedAt,
                limits.accept_alert_minutes,
            ),
            (
                "not_completed",
                &["accepted", "in_service"][..],
                OverdueColumn::AcceptedAt,
                limits.complete_alert_hours * 60,
            ),
        ];
        for (kind, states, column, minutes) in checks {
            let before = ago(now, minutes)?;
            for o in self
                .store()
                .orders_overdue(states, column, &before, MAX_ALERTS_PER_KIND)
                .await?
            {
                if street.as_deref().is_some_and(|s| s != o.street_code)
                    || org
                        .as_deref()
                        .is_some_and(|g| o.provider_org_id.as_deref() != Some(g))
                {
                    continue;
                }
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
                        "首次派单后超过 {} 分钟仍无人接单（已改派 {} 次）",
                        limits.accept_alert_minutes, o.passes
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
        let since = ago(now, limits.low_rating_days * 24 * 60)?;
        for r in self
            .store()
            .low_reviews(limits.low_rating_max, &since, MAX_ALERTS_PER_KIND)
            .await?
        {
            if street.as_deref().is_some_and(|s| s != r.street_code)
                || org
                    .as_deref()
                    .is_some_and(|g| r.provider_org_id.as_deref() != Some(g))
            {
                continue;
            }
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
        // Needs belong to households, not organizations: an organization's staff see none.
        if access.scope.org_id.is_none() && q.org_id.as_deref().is_none_or(str::is_empty) {
            let before = ago(now, limits.need_wait_days * 24 * 60)?;
            for n in self
                .store()
                .needs_waiting(&before, MAX_ALERTS_PER_KIND)
                .await?
            {
                let need_street = n
                    .street_code
                    .clone()
                    .or_else(|| self.order_street_of(&n.community_code));
                if street
                    .as_deref()
                    .is_some_and(|s| need_street.as_deref() != Some(s))
                {
                    continue;
                }
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
        let counts = KINDS
            .iter()
            .map(|(k, n)| AlertCount {
                kind: (*k).to_owned(),
                kind_name: (*n).to_owned(),
                count: i64::try_from(items.iter().filter(|a| a.kind == *k).count()).unwrap_or(0),
            })
            .collect();
        Ok(AlertList {
            total: i64::try_from(items.len()).unwrap_or(0),
            counts,
            items,
        })
    }
}
